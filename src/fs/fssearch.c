// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fssearch: server-side search as directories of symlinks.
 *
 *   FOLDER/.search/QUERY/NAME -> ../../NAME
 *   /.search/QUERY/A/B/NAME   -> ../../../../A/B/NAME
 *
 * QUERY is an IMAP search program (search.h). Looking a QUERY up always
 * succeeds (it is a directory); listing it, or looking up anything in
 * it, runs the search: one UID SEARCH in FOLDER, or one EXAMINE + UID
 * SEARCH per selectable folder (pipelined) for the root. The UIDs found
 * are mapped to the names the folder's listing gives them
 * (tree_listing_name(), through tree_readdir()): the listing is made if
 * missing or stale, and made again once when a UID found is not in it
 * (mail that arrived since). No body is fetched. A result is kept for
 * FSSEARCH_TTL_MS and searched again after that; a query the parser or
 * the server refuses is kept as EINVAL for as long.
 *
 * Locks: fssearch_lock guards the kept results, memory only; the search
 * and the listings run without it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grow.h"
#include "clock.h"
#include "fsctx.h"
#include "fssearch.h"
#include "fsvirt.h"
#include "log.h"
#include "search.h"
#include "store.h"
#include "tree.h"

/* How long a result is reused before the server is asked again. */
#define FSSEARCH_TTL_MS 5000
/* How many results are kept (the oldest goes first). */
#define FSSEARCH_KEEP 32

/* One symlink of a result. */
struct fssearch_entry {
	char *path; /* owned: below QUERY/: "NAME" or "A/B/NAME" */
	char *target; /* owned: what the symlink points to */
};

/* The result of one query in one directory. */
struct fssearch_result {
	struct fssearch_result *next;
	const struct fsmount *fs; /* borrowed: the mount it belongs to */
	char *dir; /* owned: the directory searched, "/" for all */
	char *query; /* owned: the QUERY component as given */
	long long at; /* clock_now_ms() when made */
	time_t mtime; /* wall clock, what the entries show */
	int err; /* 0, or -EINVAL when the query was refused */
	struct fssearch_entry *e; /* owned, sorted by path */
	size_t n, cap;
};

static pthread_mutex_t fssearch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fssearch_result *fssearch_kept; /* newest first */

/* A folder to search: its server name, mount path, and where its
 * results go below QUERY/. */
struct fssearch_folder {
	char *folder; /* owned: server name */
	char *path; /* owned: mount path without the leading '/' */
	char *link; /* owned: "" in FOLDER/.search, path in /.search */
};

/* The folders a search covers. */
struct fssearch_scope {
	struct fssearch_folder *f; /* owned */
	size_t n, cap;
	/* The Maildir layout keeps messages in cur/: "cur/", else "". */
	const char *sub;
};

static void fssearch_result_free(struct fssearch_result *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->n; i++) {
		free(r->e[i].path);
		free(r->e[i].target);
	}
	free(r->e);
	free(r->dir);
	free(r->query);
	free(r);
}

static void fssearch_scope_clear(struct fssearch_scope *s)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		free(s->f[i].folder);
		free(s->f[i].path);
		free(s->f[i].link);
	}
	free(s->f);
	memset(s, 0, sizeof(*s));
}

/* Adds a folder to the scope (copies the names). */
static int fssearch_scope_add(struct fssearch_scope *s, const char *folder,
			      const char *path, const char *link)
{
	struct fssearch_folder *nf;

	if (s->n >= STORE_MAX_FOLDERS)
		return -ENOMEM;
	nf = grow_reserve(s->f, &s->cap, s->n + 1, sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	s->f = nf;
	s->f[s->n].folder = strdup(folder);
	s->f[s->n].path = strdup(path);
	s->f[s->n].link = strdup(link);
	if (!s->f[s->n].folder || !s->f[s->n].path || !s->f[s->n].link) {
		free(s->f[s->n].folder);
		free(s->f[s->n].path);
		free(s->f[s->n].link);
		return -ENOMEM;
	}
	s->n++;
	return 0;
}

/*
 * The server name of the folder whose messages the mount directory
 * path (with its leading '/') shows, or NULL when it has none (a
 * \Noselect folder, the root, no such directory). In the Maildir layout
 * they are in path/cur. No I/O: the tree as it is.
 */
static char *fssearch_folder_of(struct fsmount *fs, const char *path)
{
	struct tree_info info;
	char *folder = NULL, *look = NULL;
	enum tree_kind k;

	if (fs->cfg.maildir) {
		if (asprintf(&look, "%s/cur", path) < 0)
			return NULL;
		path = look;
	}
	k = tree_lookup(fs->tree, path, clock_mono(), ~0u, &info);
	if (k == TREE_FOLDER && info.folder &&
	    !(info.attrs & STORE_FOLDER_NOSELECT) &&
	    (!fs->cfg.maildir || info.sub == MAILDIR_SUB_CUR)) {
		folder = info.folder;
		info.folder = NULL;
	}
	tree_info_clear(&info);
	free(look);
	return folder;
}

/* Checks that dir (a real directory) can have a .search: the store can
 * search, and dir is the root or a folder holding messages. */
static int fssearch_dir_ok(struct fsmount *fs, const char *dir)
{
	struct tree_info info;
	char *folder;
	int rc;

	if (!fs->cfg.store->ops->search)
		return -ENOENT;
	rc = fsctx_resolve(fs, dir, &info);
	if (rc < 0)
		return rc;
	tree_info_clear(&info);
	if (strcmp(dir, "/") == 0)
		return 0;
	folder = fssearch_folder_of(fs, dir);
	free(folder);
	return folder ? 0 : -ENOENT;
}

/* tree_readdir()'s callback for the walk: collects subfolder names
 * (not Maildir's cur/new/tmp). The tree's lock is held: memory only. */
static int fssearch_walk_fill(void *ctx, const char *name,
			      const struct tree_info *info)
{
	struct fssearch_scope *names = ctx;

	if (info->kind != TREE_FOLDER || info->sub != MAILDIR_SUB_NONE)
		return 0;
	return fssearch_scope_add(names, "", name, "") < 0;
}

/* Every folder of the mount that holds messages, found by walking the
 * tree from the root (breadth first; the queue is the scope's paths). */
static int fssearch_scope_all(struct fsmount *fs, struct fssearch_scope *s)
{
	struct fssearch_scope queue = {0};
	size_t qi, i;
	int rc = 0;

	if (fssearch_scope_add(&queue, "", "", "") < 0)
		return -ENOMEM;
	for (qi = 0; rc == 0 && qi < queue.n; qi++) {
		struct fssearch_scope kids = {0};
		char *dir, *folder;

		if (asprintf(&dir, "/%s", queue.f[qi].path) < 0) {
			rc = -ENOMEM;
			break;
		}
		if (qi > 0 && (folder = fssearch_folder_of(fs, dir))) {
			rc = fssearch_scope_add(s, folder, queue.f[qi].path,
						queue.f[qi].path);
			free(folder);
		}
		if (rc == 0 &&
		    tree_readdir(fs->tree, dir, fssearch_walk_fill, &kids) == 0)
			for (i = 0; rc == 0 && i < kids.n; i++) {
				char *p;

				if (asprintf(&p, "%s%s%s", queue.f[qi].path,
					     qi ? "/" : "",
					     kids.f[i].path) < 0) {
					rc = -ENOMEM;
					break;
				}
				rc = fssearch_scope_add(&queue, "", p, "");
				free(p);
			}
		fssearch_scope_clear(&kids);
		free(dir);
	}
	fssearch_scope_clear(&queue);
	return rc;
}

/* The folders a search in dir covers: dir's own folder, or all. */
static int fssearch_scope(struct fsmount *fs, const char *dir,
			  struct fssearch_scope *s)
{
	struct tree_info info;
	char *folder;
	int rc;

	s->sub = fs->cfg.maildir ? "cur/" : "";
	rc = fsctx_resolve(fs, dir, &info);
	if (rc < 0)
		return rc;
	tree_info_clear(&info);
	if (strcmp(dir, "/") == 0)
		return fssearch_scope_all(fs, s);
	folder = fssearch_folder_of(fs, dir);
	if (!folder)
		return -ENOENT;
	rc = fssearch_scope_add(s, folder, dir + 1, "");
	free(folder);
	return rc;
}

/* What the store found: per folder of the scope, its UIDs. */
struct fssearch_hits {
	uint32_t *uidvalidity; /* owned, one per folder */
	uint32_t **uids; /* owned, one array per folder */
	size_t *n; /* owned: UIDs per folder */
	bool nomem;
};

/* The store's callback: copies one folder's UIDs. */
static void fssearch_hit(void *ctx, const struct store_search_hit *h)
{
	struct fssearch_hits *x = ctx;

	if (h->n == 0)
		return;
	x->uids[h->folder] = malloc(h->n * sizeof(uint32_t));
	if (!x->uids[h->folder]) {
		x->nomem = true;
		return;
	}
	memcpy(x->uids[h->folder], h->uids, h->n * sizeof(uint32_t));
	x->n[h->folder] = h->n;
	x->uidvalidity[h->folder] = h->uidvalidity;
}

/* A folder's listing as UID -> name. */
struct fssearch_names {
	uint32_t uidvalidity;
	struct fssearch_name {
		uint32_t uid;
		char *name; /* owned */
	} * m;
	size_t n, cap;
	bool nomem;
};

static void fssearch_names_clear(struct fssearch_names *nm)
{
	size_t i;

	for (i = 0; i < nm->n; i++)
		free(nm->m[i].name);
	free(nm->m);
	memset(nm, 0, sizeof(*nm));
}

/* tree_readdir()'s callback: one message's UID and name (the tree's
 * lock is held: memory only). */
static int fssearch_names_fill(void *ctx, const char *name,
			       const struct tree_info *info)
{
	struct fssearch_names *nm = ctx;
	struct fssearch_name *n2;

	if (info->kind != TREE_MESSAGE)
		return 0;
	n2 = grow_reserve(nm->m, &nm->cap, nm->n + 1, sizeof(*n2));
	if (!n2) {
		nm->nomem = true;
		return 1;
	}
	nm->m = n2;
	nm->m[nm->n].uid = info->uid;
	nm->m[nm->n].name = strdup(name);
	if (!nm->m[nm->n].name) {
		nm->nomem = true;
		return 1;
	}
	nm->uidvalidity = info->uidvalidity;
	nm->n++;
	return 0;
}

static int fssearch_uid_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct fssearch_name *)a)->uid;
	uint32_t y = ((const struct fssearch_name *)b)->uid;

	return x < y ? -1 : x > y;
}

/* The name of uid in a sorted listing, or NULL. */
static const char *fssearch_name_of(const struct fssearch_names *nm,
				    uint32_t uid)
{
	struct fssearch_name key = {uid, NULL}, *m;

	m = bsearch(&key, nm->m, nm->n, sizeof(*nm->m), fssearch_uid_cmp);
	return m ? m->name : NULL;
}

/* Reads the folder's current listing (at mount path /path, or its
 * cur/) into nm, sorted by UID. */
static int fssearch_names_load(struct fsmount *fs, const char *path,
			       const char *sub, struct fssearch_names *nm)
{
	char *dir;
	int rc;

	fssearch_names_clear(nm);
	if (asprintf(&dir, "/%s%s%.*s", path, path[0] && sub[0] ? "/" : "",
		     sub[0] ? (int)strlen(sub) - 1 : 0, sub) < 0)
		return -ENOMEM;
	rc = tree_readdir(fs->tree, dir, fssearch_names_fill, nm);
	free(dir);
	if (rc == 0 && nm->nomem)
		rc = -ENOMEM;
	if (rc == 0)
		qsort(nm->m, nm->n, sizeof(*nm->m), fssearch_uid_cmp);
	return rc;
}

/*
 * Maps the UIDs found in one folder to the names its listing has,
 * listing it first when stale, and again (once) when a UID is missing
 * or the UIDVALIDITY differs: mail that arrived since the listing.
 */
static int fssearch_map(struct fsmount *fs, const struct fssearch_folder *f,
			const char *sub, uint32_t uidvalidity,
			const uint32_t *uids, size_t n,
			struct fssearch_names *nm)
{
	size_t i;
	int attempt, rc;

	for (attempt = 0; attempt < 2; attempt++) {
		if (attempt)
			tree_expire_listing(fs->tree, f->folder);
		rc = fsctx_refresh_listing(fs, f->folder, fs->cfg.refresh);
		if (rc < 0 && attempt == 0)
			return rc;
		rc = fssearch_names_load(fs, f->path, sub, nm);
		if (rc < 0)
			return rc;
		if (nm->uidvalidity != uidvalidity && nm->n)
			continue;
		for (i = 0; i < n; i++)
			if (!fssearch_name_of(nm, uids[i]))
				break;
		if (i == n)
			return 0;
	}
	return 0; /* what is still missing was expunged meanwhile */
}

/* Adds one symlink: path below QUERY/, pointing up to the searched
 * directory (two levels for .search/QUERY, one per folder level of
 * path) and down to real (relative to that directory). */
static int fssearch_add(struct fssearch_result *r, const char *path,
			const char *real)
{
	size_t ups = 2, i, plen = strlen(path), rlen = strlen(real);
	struct fssearch_entry *ne;
	char *target;

	for (i = 0; i < plen; i++)
		ups += path[i] == '/';
	ne = grow_reserve(r->e, &r->cap, r->n + 1, sizeof(*ne));
	if (!ne)
		return -ENOMEM;
	r->e = ne;
	target = malloc(3 * ups + rlen + 1);
	if (!target)
		return -ENOMEM;
	for (i = 0; i < ups; i++)
		memcpy(target + 3 * i, "../", 3);
	memcpy(target + 3 * ups, real, rlen + 1);
	r->e[r->n].target = target;
	r->e[r->n].path = strdup(path);
	if (!r->e[r->n].path) {
		free(target);
		return -ENOMEM;
	}
	r->n++;
	return 0;
}

/* Adds the symlinks of one folder's hits. */
static int fssearch_add_folder(struct fsmount *fs, struct fssearch_result *r,
			       const struct fssearch_folder *f, const char *sub,
			       uint32_t uidvalidity, const uint32_t *uids,
			       size_t n)
{
	struct fssearch_names nm = {0};
	size_t i;
	int rc = fssearch_map(fs, f, sub, uidvalidity, uids, n, &nm);

	for (i = 0; rc == 0 && i < n; i++) {
		const char *name = fssearch_name_of(&nm, uids[i]);
		char *path, *real;

		if (!name || nm.uidvalidity != uidvalidity)
			continue;
		if (asprintf(&path, "%s%s%s", f->link, f->link[0] ? "/" : "",
			     name) < 0)
			rc = -ENOMEM;
		else if (asprintf(&real, "%s%s%s%s", f->link,
				  f->link[0] ? "/" : "", sub, name) < 0) {
			free(path);
			rc = -ENOMEM;
		} else {
			rc = fssearch_add(r, path, real);
			free(path);
			free(real);
		}
	}
	fssearch_names_clear(&nm);
	return rc;
}

static int fssearch_path_cmp(const void *a, const void *b)
{
	return strcmp(((const struct fssearch_entry *)a)->path,
		      ((const struct fssearch_entry *)b)->path);
}

/* Runs the search of the scope's folders and fills r with symlinks. */
static int fssearch_fill(struct fsmount *fs, struct fssearch_result *r,
			 const struct fssearch_scope *s,
			 const struct search_query *q)
{
	struct store *st = fs->cfg.store;
	struct fssearch_hits x = {0};
	const char **names;
	size_t i;
	int rc = -ENOMEM;

	names = calloc(s->n + 1, sizeof(*names));
	x.uidvalidity = calloc(s->n + 1, sizeof(*x.uidvalidity));
	x.uids = calloc(s->n + 1, sizeof(*x.uids));
	x.n = calloc(s->n + 1, sizeof(*x.n));
	if (!names || !x.uidvalidity || !x.uids || !x.n)
		goto out;
	for (i = 0; i < s->n; i++)
		names[i] = s->f[i].folder;
	rc = st->ops->search(st, names, s->n, q, fssearch_hit, &x);
	if (rc == 0 && x.nomem)
		rc = -ENOMEM;
	for (i = 0; rc == 0 && i < s->n; i++)
		if (x.n[i])
			rc = fssearch_add_folder(fs, r, &s->f[i], s->sub,
						 x.uidvalidity[i], x.uids[i],
						 x.n[i]);
	if (rc == 0 && r->n > 1)
		qsort(r->e, r->n, sizeof(*r->e), fssearch_path_cmp);
out:
	for (i = 0; x.uids && i < s->n; i++)
		free(x.uids[i]);
	free(x.uids);
	free(x.n);
	free(x.uidvalidity);
	free(names);
	return rc;
}

/*
 * Makes a new result for query in dir: parses the query, finds the
 * scope and searches. A query refused (by the parser or the server)
 * gives a result with err -EINVAL, which is kept like any other; other
 * failures are returned and nothing is kept.
 */
static int fssearch_run(struct fsmount *fs, const char *dir, const char *query,
			struct fssearch_result **r_r)
{
	struct fssearch_scope scope = {0};
	struct fssearch_result *r;
	struct search_query *q = NULL;
	char err[256];
	int rc;

	*r_r = NULL;
	r = calloc(1, sizeof(*r));
	if (!r || !(r->dir = strdup(dir)) || !(r->query = strdup(query))) {
		fssearch_result_free(r);
		return -ENOMEM;
	}
	r->fs = fs;
	r->mtime = time(NULL);
	rc = search_parse(query, &q, err, sizeof(err));
	if (rc == -EINVAL) {
		log_warnx("search: %s", err);
		r->err = rc;
		rc = 0;
	} else if (rc == 0) {
		rc = fssearch_scope(fs, dir, &scope);
		if (rc == 0)
			rc = fssearch_fill(fs, r, &scope, q);
		if (rc == -EINVAL) {
			r->err = rc;
			rc = 0;
		}
	}
	search_free(q);
	fssearch_scope_clear(&scope);
	r->at = clock_now_ms();
	if (rc < 0) {
		fssearch_result_free(r);
		return rc;
	}
	*r_r = r;
	return 0;
}

/* The kept result for (fs, dir, query), fresh or not; the lock is
 * held. *prev_r gets the link that points to it. */
static struct fssearch_result *fssearch_find(const struct fsmount *fs,
					     const char *dir, const char *query,
					     struct fssearch_result ***prev_r)
{
	struct fssearch_result **pp;

	for (pp = &fssearch_kept; *pp; pp = &(*pp)->next)
		if ((*pp)->fs == fs && strcmp((*pp)->dir, dir) == 0 &&
		    strcmp((*pp)->query, query) == 0)
			break;
	*prev_r = pp;
	return *pp;
}

/* Keeps r as the newest result, replacing one for the same query and
 * dropping the oldest beyond FSSEARCH_KEEP; the lock is held. */
static void fssearch_keep(struct fssearch_result *r)
{
	struct fssearch_result **pp, *old;
	size_t n = 0;

	old = fssearch_find(r->fs, r->dir, r->query, &pp);
	if (old) {
		*pp = old->next;
		fssearch_result_free(old);
	}
	r->next = fssearch_kept;
	fssearch_kept = r;
	for (pp = &fssearch_kept; *pp; pp = &(*pp)->next)
		if (++n == FSSEARCH_KEEP) {
			while ((old = (*pp)->next)) {
				(*pp)->next = old->next;
				fssearch_result_free(old);
			}
			break;
		}
}

/*
 * Calls fn with the result of query in dir, searching when there is no
 * result younger than FSSEARCH_TTL_MS. fn runs under the lock (memory
 * only) and its return is returned; a refused query gives -EINVAL.
 */
static int fssearch_use(struct fsmount *fs, const char *dir, const char *query,
			int (*fn)(const struct fssearch_result *r, void *ctx),
			void *ctx)
{
	struct fssearch_result *r, **pp;
	int rc;

	pthread_mutex_lock(&fssearch_lock);
	r = fssearch_find(fs, dir, query, &pp);
	if (r && clock_now_ms() - r->at < FSSEARCH_TTL_MS) {
		rc = r->err ? r->err : fn(r, ctx);
		pthread_mutex_unlock(&fssearch_lock);
		return rc;
	}
	pthread_mutex_unlock(&fssearch_lock);
	rc = fssearch_run(fs, dir, query, &r);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&fssearch_lock);
	fssearch_keep(r);
	rc = r->err ? r->err : fn(r, ctx);
	pthread_mutex_unlock(&fssearch_lock);
	return rc;
}

/* Splits p->rest into the QUERY (malloc'd) and what follows it below
 * QUERY/ (borrowed, "" for QUERY itself). */
static char *fssearch_split(const struct fsvirt_path *p, const char **sub_r)
{
	const char *slash = strchr(p->rest, '/');

	*sub_r = slash ? slash + 1 : "";
	return slash ? strndup(p->rest, (size_t)(slash - p->rest))
		     : strdup(p->rest);
}

/* First entry whose path is >= key (the entries are sorted). */
static size_t fssearch_lower(const struct fssearch_result *r, const char *key)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(r->e[mid].path, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* What a lookup below QUERY/ wants, and gets. */
struct fssearch_look {
	struct fsmount *fs;
	const char *path; /* the whole FUSE path, for the inode */
	const char *sub; /* below QUERY/ */
	struct stat *st; /* getattr */
	char *buf; /* readlink */
	size_t size;
};

/* getattr below QUERY/: a symlink of the result, or a folder level
 * leading to some (root searches). */
static int fssearch_stat_fn(const struct fssearch_result *r, void *ctx)
{
	struct fssearch_look *l = ctx;
	size_t len = strlen(l->sub), i = fssearch_lower(r, l->sub);

	if (i < r->n && strcmp(r->e[i].path, l->sub) == 0) {
		fsvirt_stat_link(l->fs, l->path, strlen(r->e[i].target),
				 r->mtime, l->st);
		return 0;
	}
	if (i < r->n && strncmp(r->e[i].path, l->sub, len) == 0 &&
	    r->e[i].path[len] == '/') {
		fsvirt_stat_dir(l->fs, l->path, r->mtime, l->st);
		return 0;
	}
	return -ENOENT;
}

static int fssearch_readlink_fn(const struct fssearch_result *r, void *ctx)
{
	struct fssearch_look *l = ctx;
	size_t i = fssearch_lower(r, l->sub);

	if (i >= r->n || strcmp(r->e[i].path, l->sub) != 0)
		return -ENOENT;
	snprintf(l->buf, l->size, "%s", r->e[i].target);
	return 0;
}

static int fssearch_getattr(struct fsmount *fs, const struct fsvirt_path *p,
			    struct stat *st)
{
	struct fssearch_look l = {fs, p->path, NULL, st, NULL, 0};
	char *query;
	int rc = fssearch_dir_ok(fs, p->dir);

	if (rc < 0)
		return rc;
	if (!p->rest[0]) {
		fsvirt_stat_dir(fs, p->path, fs->started, st);
		return 0;
	}
	query = fssearch_split(p, &l.sub);
	if (!query)
		return -ENOMEM;
	if (!l.sub[0]) {
		/* Any QUERY is a directory; searching waits for a look
		 * inside it. */
		fsvirt_stat_dir(fs, p->path, time(NULL), st);
		rc = 0;
	} else {
		rc = fssearch_use(fs, p->dir, query, fssearch_stat_fn, &l);
	}
	free(query);
	return rc;
}

static int fssearch_readlink(struct fsmount *fs, const struct fsvirt_path *p,
			     char *buf, size_t size)
{
	struct fssearch_look l = {fs, p->path, NULL, NULL, buf, size};
	char *query;
	int rc = fssearch_dir_ok(fs, p->dir);

	if (rc < 0)
		return rc;
	if (!size)
		return -EINVAL;
	query = fssearch_split(p, &l.sub);
	if (!query)
		return -ENOMEM;
	rc = l.sub[0]
		     ? fssearch_use(fs, p->dir, query, fssearch_readlink_fn, &l)
		     : -EINVAL;
	free(query);
	return rc;
}

/* What a listing below QUERY/ wants. */
struct fssearch_ls {
	struct fsmount *fs;
	const char *path; /* the directory's FUSE path */
	const char *sub; /* the directory below QUERY/, "" for QUERY */
	struct fsvirt_dir *d;
};

/* Adds one child of the listed directory, symlink or folder level. */
static int fssearch_ls_add(struct fssearch_ls *ls,
			   const struct fssearch_result *r, const char *name,
			   size_t len, const struct fssearch_entry *e)
{
	char child[256], *full;
	struct stat st;
	int rc;

	if (len >= sizeof(child))
		return 0; /* a name no directory entry can hold */
	memcpy(child, name, len);
	child[len] = '\0';
	if (asprintf(&full, "%s/%s", ls->path, child) < 0)
		return -ENOMEM;
	if (e)
		fsvirt_stat_link(ls->fs, full, strlen(e->target), r->mtime,
				 &st);
	else
		fsvirt_stat_dir(ls->fs, full, r->mtime, &st);
	free(full);
	rc = fsvirt_dir_add(ls->d, child, &st);
	return rc;
}

/* The children of sub: entries below it, one level down; folder levels
 * once each (the entries are sorted, so a level's entries are
 * together). */
static int fssearch_list_fn(const struct fssearch_result *r, void *ctx)
{
	struct fssearch_ls *ls = ctx;
	size_t slen = strlen(ls->sub), i = 0, lastlen = 0;
	const char *last = NULL;
	bool found = !slen;
	int rc = 0;

	if (slen)
		i = fssearch_lower(r, ls->sub);
	for (; rc == 0 && i < r->n; i++) {
		const char *rest = r->e[i].path, *slash;

		if (slen) {
			if (strncmp(rest, ls->sub, slen) != 0)
				break;
			if (rest[slen] != '/')
				continue;
			rest += slen + 1;
		}
		found = true;
		slash = strchr(rest, '/');
		if (!slash) {
			rc = fssearch_ls_add(ls, r, rest, strlen(rest),
					     &r->e[i]);
			continue;
		}
		if (last && lastlen == (size_t)(slash - rest) &&
		    strncmp(last, rest, lastlen) == 0)
			continue;
		last = rest;
		lastlen = (size_t)(slash - rest);
		rc = fssearch_ls_add(ls, r, rest, lastlen, NULL);
	}
	return rc < 0 ? rc : found ? 0 : -ENOENT;
}

static int fssearch_list(struct fsmount *fs, const struct fsvirt_path *p,
			 struct fsvirt_dir *d)
{
	struct fssearch_ls ls = {fs, p->path, NULL, d};
	char *query;
	int rc = fssearch_dir_ok(fs, p->dir);

	if (rc < 0 || !p->rest[0])
		return rc; /* .search itself lists nothing */
	query = fssearch_split(p, &ls.sub);
	if (!query)
		return -ENOMEM;
	rc = fssearch_use(fs, p->dir, query, fssearch_list_fn, &ls);
	free(query);
	return rc;
}

const struct fsvirt_kind fssearch_kind = {
	.name = ".search",
	.getattr = fssearch_getattr,
	.list = fssearch_list,
	.readlink = fssearch_readlink,
};
