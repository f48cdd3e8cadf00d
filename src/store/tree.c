// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tree: the folders and listings the mount shows; see tree.h. This file
 * holds the tree itself, lookups, directory listings, refresh
 * coordination, change reports and the operations tree.h declares; the
 * parts it calls are tree_folders.c (the folder table), tree_listing.c
 * (listings and their messages), tree_maildir.c (the Maildir layout)
 * and tree_ino.c (inode numbers), which share tree_priv.h.
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uthash.h>

#include "clock.h"
#include "maildir.h"
#include "tree.h"
#include "tree_priv.h"

#define TREE_FOLDER_LIST_KEY "\n"

/* Installing a listing this big returns free memory to the system. */
#define TREE_TRIM_MESSAGES 10000

/* A folder being refreshed (the folder list is "\n"). */
struct tree_busy {
	char *name; /* owned */
	UT_hash_handle hh;
};

/* Takes the write lock; whatever is written invalidates the inode
 * index. */
void tree_wrlock(struct tree *t)
{
	pthread_rwlock_wrlock(&t->lock);
	t->gen++;
}

/* FNV-1a over data from seed (tree.h): stable across runs, so inode
 * numbers and cache keys made from it stay the same across mounts. */
uint64_t tree_hash(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = seed;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* The stable id of a folder, a hash of its server name (tree.h). */
uint64_t tree_folder_id(const char *folder)
{
	return tree_hash(folder, strlen(folder), TREE_HASH_SEED);
}

/* Makes an empty tree whose root shows root_mtime (tree.h). */
struct tree *tree_new(time_t root_mtime)
{
	struct tree *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	pthread_rwlock_init(&t->lock, NULL);
	pthread_mutex_init(&t->hi_lock, NULL);
	pthread_mutex_init(&t->busy_lock, NULL);
	clock_cond_init(&t->busy_cond);
	t->root_mtime = root_mtime;
	return t;
}

/* Switches to the Maildir layout, before any folder is set (tree.h). */
void tree_set_maildir(struct tree *t)
{
	t->maildir = true;
}

/* Frees the tree with its folders, listings and inode numbers. */
void tree_free(struct tree *t)
{
	struct tree_busy *b, *tmp;

	if (!t)
		return;
	HASH_CLEAR(hh_name, t->by_name);
	tree_folders_free(t->by_path);
	HASH_ITER(hh, t->busy, b, tmp)
	{
		HASH_DEL(t->busy, b);
		free(b->name);
		free(b);
	}
	tree_ino_free(t);
	pthread_rwlock_destroy(&t->lock);
	pthread_mutex_destroy(&t->hi_lock);
	pthread_mutex_destroy(&t->busy_lock);
	pthread_cond_destroy(&t->busy_cond);
	free(t);
}

/* The store message a change to i's message is made with (tree.h);
 * msg borrows i's flags. */
void tree_info_msg(const struct tree_info *i, struct store_msg *msg)
{
	memset(msg, 0, sizeof(*msg));
	msg->uid = i->uid;
	msg->size = i->listed_size;
	msg->date = i->mtime;
	msg->idhash = i->idhash;
	msg->oid = i->oid;
	msg->flags = i->flags;
}

/* Frees what a lookup's copy holds (tree.h). */
void tree_info_clear(struct tree_info *i)
{
	free(i->folder);
	free(i->folder_path);
	free(i->flags);
	free(i->store_ref);
	memset(i, 0, sizeof(*i));
}

/* Frees what a change report holds. */
static void tree_change_clear(struct tree_change *c)
{
	size_t i;

	for (i = 0; i < c->n_gone; i++)
		free(c->gone[i]);
	free(c->gone);
	free(c->folder);
	free(c->dir);
	memset(c, 0, sizeof(*c));
}

/* Adds name to c's gone names; false when out of memory. */
bool tree_change_gone(struct tree_change *c, const char *name)
{
	char **g;

	if (c->n_gone == c->cap_gone) {
		size_t cap = c->cap_gone ? 2 * c->cap_gone : 16;

		g = realloc(c->gone, cap * sizeof(*g));
		if (!g)
			return false;
		c->gone = g;
		c->cap_gone = cap;
	}
	c->gone[c->n_gone] = strdup(name);
	return c->gone[c->n_gone] ? (c->n_gone++, true) : false;
}

/* Names folder f (NULL: the root) in a change report, once; false
 * (nomem set) when out of memory. */
bool tree_change_init(struct tree_change *c, const struct tree_folder *f)
{
	const char *path = f ? f->path : "";

	if (c->dir)
		return true;
	c->folder = f ? strdup(f->name) : NULL;
	c->dir = malloc(strlen(path) + 2);
	if ((f && !c->folder) || !c->dir) {
		free(c->folder);
		free(c->dir);
		c->folder = c->dir = NULL;
		c->nomem = true;
		return false;
	}
	sprintf(c->dir, "/%s", path);
	return true;
}

/* The wall clock, in the seconds mtimes show. */
time_t tree_wall(void)
{
	return time(NULL);
}

/* Moves folder f's mtime (NULL: the root's) to at if that is later;
 * true when it moved. The write lock is held. */
bool tree_move_mtime(struct tree *t, struct tree_folder *f, time_t at)
{
	time_t *m = f ? &f->mtime : &t->root_mtime;

	if (at <= *m)
		return false;
	*m = at;
	return true;
}

/* The state a listing or the folder list tells. */
struct tree_state tree_state_of(uint32_t uidvalidity, uint32_t uidnext,
				uint32_t exists, uint64_t modseq)
{
	return (struct tree_state){uidvalidity, uidnext, exists, modseq};
}

/* Takes the state a listing or the folder list told of f: true when it
 * is not the one told before (the content changed meanwhile). The
 * write lock is held. */
bool tree_see_state(struct tree_folder *f, struct tree_state s)
{
	bool moved = f->has_seen &&
		     (f->seen.uidvalidity != s.uidvalidity ||
		      f->seen.uidnext != s.uidnext ||
		      f->seen.exists != s.exists || f->seen.modseq != s.modseq);

	f->seen = s;
	f->has_seen = true;
	return moved;
}

/* Adds a report of folder f (NULL: the root) whose mtime moved; out of
 * memory drops it (the kernel's attributes then time out). */
void tree_changes_add(struct tree *t, struct tree_changes *cs,
		      const struct tree_folder *f)
{
	struct tree_change *c;

	if (!t->hook)
		return;
	if (cs->n == cs->cap) {
		size_t cap = cs->cap ? 2 * cs->cap : 8;

		c = realloc(cs->c, cap * sizeof(*c));
		if (!c)
			return;
		cs->c = c;
		cs->cap = cap;
	}
	c = &cs->c[cs->n];
	memset(c, 0, sizeof(*c));
	if (!tree_change_init(c, f))
		return;
	c->mtime = f ? f->mtime : t->root_mtime;
	cs->n++;
}

/* Tells the hook (read under the write lock, which is now released)
 * each report, and frees them. */
static void tree_changes_tell(struct tree_changes *cs,
			      void (*hook)(void *ctx,
					   const struct tree_change *c),
			      void *ctx)
{
	size_t i;

	for (i = 0; i < cs->n; i++) {
		if (hook)
			hook(ctx, &cs->c[i]);
		tree_change_clear(&cs->c[i]);
	}
	free(cs->c);
	memset(cs, 0, sizeof(*cs));
}

/* Releases the write lock, then tells the hook of the reports gathered
 * under it. */
void tree_unlock_tell(struct tree *t, struct tree_changes *cs)
{
	void (*hook)(void *ctx, const struct tree_change *c) = t->hook;
	void *ctx = t->hook_ctx;

	pthread_rwlock_unlock(&t->lock);
	tree_changes_tell(cs, hook, ctx);
}

/* Replaces the folder table with one made from a folder list, outside
 * the lock, keeping what the tree knew of the folders that stay
 * (tree.h); the folders that left end their inode incarnations. */
int tree_set_folders(struct tree *t, const struct store_folder *fl, size_t n,
		     time_t now, struct tree_skipped *skipped)
{
	struct tree_folder *by_path, *by_name, *f, *tmp, *old_path;
	struct tree_changes cs = {0};
	unsigned top;
	time_t wall;
	int rc;

	rc = tree_folders_build(t, fl, n, &by_path, &by_name, skipped);
	if (rc < 0)
		return rc;
	top = tree_folders_count_subfolders(by_path);

	tree_wrlock(t);
	wall = tree_wall();
	/* Folders that stay keep their listings and mtimes. */
	tree_folders_carry(t, by_path, wall, &cs);
	tree_folders_parents(t, by_path, by_name, wall, &cs);
	/* Folders that left the list end their incarnations. */
	HASH_ITER(hh_path, t->by_path, f, tmp)
	{
		if (f->listing)
			tree_ino_retire(t, f->listing->hi);
	}
	old_path = t->by_path;
	HASH_CLEAR(hh_name, t->by_name);
	t->by_path = by_path;
	t->by_name = by_name;
	t->folders_listed = t->folders_known = true;
	t->folders_at = now;
	t->top_folders = top;
	tree_unlock_tell(t, &cs);

	tree_folders_free(old_path);
	return 0;
}

/* The links of a folder's directory: its subfolders and, in the Maildir
 * layout, cur/, new/ and tmp/ of a folder that holds messages. */
static unsigned tree_folder_nlink(const struct tree *t,
				  const struct tree_folder *f)
{
	unsigned n = 2 + f->subfolders;

	if (t->maildir && !(f->attrs & STORE_FOLDER_NOSELECT))
		n += 3;
	return n;
}

/* Fills info for a folder; the lock is held. In the Maildir layout the
 * folder's own directory holds no messages (its cur/ does). */
int tree_folder_info(const struct tree *t, const struct tree_folder *f,
		     struct tree_info *info)
{
	info->kind = TREE_FOLDER;
	info->ino = tree_ino_folder(f);
	info->nlink = tree_folder_nlink(t, f);
	info->mtime = f->mtime;
	info->attrs = f->attrs;
	if (t->maildir)
		info->attrs |= STORE_FOLDER_NOSELECT;
	info->folder_id = f->id;
	info->uidvalidity = f->listing ? f->listing->state.uidvalidity : 0;
	info->folder = strdup(f->name);
	info->folder_path = strdup(f->path);
	return info->folder && info->folder_path ? 0 : -ENOMEM;
}

/* Fills info for a message of folder f; the lock is held. */
int tree_msg_info(const struct tree_folder *f, const struct tree_msg *m,
		  struct tree_info *info)
{
	uint32_t uv = f->listing->state.uidvalidity;

	info->kind = TREE_MESSAGE;
	info->ino = tree_ino_msg(f->listing, m->uid);
	info->nlink = 1;
	info->size = m->size;
	info->mtime = m->date;
	info->folder_id = f->id;
	info->uidvalidity = uv;
	info->uid = m->uid;
	info->idhash = m->idhash;
	info->listed_size = m->listed_size;
	info->oid = tree_listing_msg_oid(f->listing, m);
	info->folder = strdup(f->name);
	info->folder_path = strdup(f->path);
	info->flags = strdup(m->flags ? m->flags : "");
	if (m->ref)
		info->store_ref = strdup(m->ref);
	return info->folder && info->folder_path && info->flags &&
			       (!m->ref || info->store_ref)
		       ? 0
		       : -ENOMEM;
}

/* True when folder f has a listing younger than max_age; the lock is
 * held. */
bool tree_fresh(const struct tree_folder *f, time_t now, unsigned max_age)
{
	return f->listing && clock_recent(f->listed_at, now, max_age);
}

/* The folder holding messages whose directory is the first len bytes
 * of path; the lock is held. */
struct tree_folder *tree_msg_folder(struct tree *t, const char *path,
				    size_t len)
{
	struct tree_folder *f;

	HASH_FIND(hh_path, t->by_path, path, len, f);
	return f && !(f->attrs & STORE_FOLDER_NOSELECT) ? f : NULL;
}

/* Looks a path up into a copy (tree.h): the root, a folder, a message
 * of a fresh listing, or TREE_UNLISTED when the listing is stale. */
enum tree_kind tree_lookup(struct tree *t, const char *path, time_t now,
			   unsigned max_age, struct tree_info *info)
{
	struct tree_folder *f;
	struct tree_msg *m;
	const char *slash, *base;
	int rc = 0;

	memset(info, 0, sizeof(*info));
	while (*path == '/')
		path++;
	pthread_rwlock_rdlock(&t->lock);
	if (!*path) {
		info->kind = TREE_ROOT;
		info->ino = 1;
		info->nlink = 2 + t->top_folders;
		info->mtime = t->root_mtime;
		/* A flat store's messages are the root's. */
		HASH_FIND(hh_name, t->by_name, "", 0, f);
		if (f && f->mtime > info->mtime)
			info->mtime = f->mtime;
		goto out;
	}
	HASH_FIND(hh_path, t->by_path, path, strlen(path), f);
	if (f) {
		rc = tree_folder_info(t, f, info);
		goto out;
	}
	if (t->maildir) {
		rc = tree_maildir_lookup(t, path, now, max_age, info);
		goto out;
	}
	slash = strrchr(path, '/');
	base = slash ? slash + 1 : path;
	HASH_FIND(hh_path, t->by_path, path, slash ? (size_t)(slash - path) : 0,
		  f);
	if (!f || (f->attrs & STORE_FOLDER_NOSELECT) || !*base) {
		info->kind = TREE_NONE;
		info->maybe_folder = true;
		goto out;
	}
	if (!tree_fresh(f, now, max_age)) {
		info->kind = TREE_UNLISTED;
		info->folder = strdup(f->name);
		rc = info->folder ? 0 : -ENOMEM;
		goto out;
	}
	HASH_FIND(hh, f->listing->by_name, base, strlen(base), m);
	if (m)
		rc = tree_msg_info(f, m, info);
	else
		info->kind = TREE_NONE;
out:
	pthread_rwlock_unlock(&t->lock);
	if (rc < 0) {
		tree_info_clear(info);
		info->kind = TREE_NONE;
	}
	return info->kind;
}

/* True when a subfolder of the directory at path (plen bytes) is
 * called name. The lock is held. The key is built in a buffer of fixed
 * size, or on the heap when longer (no stack array sized by a name);
 * without memory, no clash is seen. */
static bool tree_subfolder_named(const struct tree *t, const char *path,
				 size_t plen, const char *name)
{
	size_t len = plen + 1 + strlen(name) + 1;
	char buf[PATH_MAX], *sub = len <= sizeof(buf) ? buf : malloc(len);
	struct tree_folder *clash = NULL;

	if (!sub)
		return false;
	snprintf(sub, len, "%s%s%s", path, plen ? "/" : "", name);
	HASH_FIND(hh_path, t->by_path, sub, strlen(sub), clash);
	if (sub != buf)
		free(sub);
	return clash != NULL;
}

/* Passes one message of dir to fill, unless it is hidden (gone, an
 * alias, or shadowed by a subfolder of the same name). Returns what fill
 * returned. The lock is held. */
int tree_fill_msg(struct tree *t, const struct tree_folder *dir,
		  const char *path, const struct tree_msg *m,
		  enum maildir_sub in,
		  int (*fill)(void *ctx, const char *name,
			      const struct tree_info *info),
		  void *ctx)
{
	const char *name = m->name;
	struct tree_info info;

	if (m->gone || m->alias)
		return 0;
	if (t->maildir) {
		/* Names in new/ are keyed "new/NAME"; no folder is there. */
		bool is_new = strncmp(name, "new/", 4) == 0;

		if (is_new != (in == MAILDIR_SUB_NEW))
			return 0;
		name += is_new ? 4 : 0;
	} else if (tree_subfolder_named(t, path, strlen(path), name)) {
		return 0;
	}
	memset(&info, 0, sizeof(info));
	info.kind = TREE_MESSAGE;
	info.ino = tree_ino_msg(dir->listing, m->uid);
	info.nlink = 1;
	info.size = m->size;
	info.mtime = m->date;
	info.uidvalidity = dir->listing->state.uidvalidity;
	info.uid = m->uid;
	return fill(ctx, name, &info);
}

/* Passes each entry of the directory at path to fill under the read
 * lock (tree.h): subfolders, then messages in listing order. */
int tree_readdir(struct tree *t, const char *path,
		 int (*fill)(void *ctx, const char *name,
			     const struct tree_info *info),
		 void *ctx)
{
	struct tree_folder *dir = NULL, *f, *tmp;
	const struct tree_msg *m;
	struct tree_info info;
	size_t plen, i;
	int rc = 0;

	while (*path == '/')
		path++;
	plen = strlen(path);
	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_path, t->by_path, path, plen, dir);
	if (!dir && plen && t->maildir) {
		rc = tree_maildir_readdir(t, path, fill, ctx);
		goto out;
	}
	if (!dir && plen) {
		rc = -ENOENT;
		goto out;
	}
	HASH_ITER(hh_path, t->by_path, f, tmp)
	{
		const char *rest = f->path + plen;

		if (!f->path[0] || strncmp(f->path, path, plen) != 0)
			continue;
		if (plen) {
			if (*rest != '/')
				continue;
			rest++;
		}
		if (strchr(rest, '/'))
			continue;
		memset(&info, 0, sizeof(info));
		info.kind = TREE_FOLDER;
		info.ino = tree_ino_folder(f);
		info.nlink = tree_folder_nlink(t, f);
		info.mtime = f->mtime;
		if (fill(ctx, rest, &info))
			goto out;
	}
	if (t->maildir) {
		/* A folder's messages are in its cur/. */
		if (dir && dir->path[0] &&
		    !(dir->attrs & STORE_FOLDER_NOSELECT))
			tree_maildir_fill_subs(dir, fill, ctx);
		goto out;
	}
	if (!dir || !dir->listing)
		goto out;
	for (i = 0; i < dir->listing->n; i++)
		if (tree_fill_msg(t, dir, path, &dir->listing->msgs[i],
				  MAILDIR_SUB_NONE, fill, ctx))
			goto out;
	for (m = dir->listing->extras; m; m = m->next_extra)
		if (tree_fill_msg(t, dir, path, m, MAILDIR_SUB_NONE, fill, ctx))
			goto out;
out:
	pthread_rwlock_unlock(&t->lock);
	return rc;
}

/* Sets the hook told of changes after the lock is released (tree.h). */
void tree_set_hook(struct tree *t,
		   void (*hook)(void *ctx, const struct tree_change *c),
		   void *ctx)
{
	tree_wrlock(t);
	t->hook = hook;
	t->hook_ctx = ctx;
	pthread_rwlock_unlock(&t->lock);
}

/* Installs a folder's new listing, made outside the lock (tree.h):
 * carries over what this mount learned of the old one, binds its inode
 * numbers, and tells the hook what changed. */
int tree_set_listing(struct tree *t, const char *folder,
		     struct store_listing *l, time_t now)
{
	struct tree_listing *nl = tree_listing_build(l, t->maildir),
			    *old = NULL;
	void (*hook)(void *ctx, const struct tree_change *c);
	struct tree_change change = {0};
	struct tree_folder *f;
	void *hook_ctx;
	size_t n;

	if (!nl)
		return -ENOMEM;
	n = nl->n;
	tree_wrlock(t);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (f) {
		old = f->listing;
		if (old && old->state.uidvalidity == nl->state.uidvalidity) {
			tree_listing_keep_fixed_sizes(old, nl);
			tree_maildir_keep_user_names(old, nl);
		} else if (old) {
			tree_ino_retire(t, old->hi);
		}
		nl->hi = tree_ino_bind(t, f->id, nl->state.uidvalidity);
		if (!nl->hi) {
			pthread_rwlock_unlock(&t->lock);
			tree_listing_free(nl);
			return -ENOMEM;
		}
		if (old)
			tree_listing_diff(f, old, nl, &change);
		tree_listing_moved(t, f, nl, &change);
		f->listing = nl;
		f->listed_at = now;
		nl = NULL;
	}
	hook = t->hook;
	hook_ctx = t->hook_ctx;
	pthread_rwlock_unlock(&t->lock);
	if (hook && change.dir &&
	    (change.content || change.n_gone || change.nomem || change.mtime))
		hook(hook_ctx, &change);
	tree_change_clear(&change);
	tree_listing_free(old);
	tree_listing_free(nl);
	/* A big listing leaves the memory its making used (the store's
	 * array, parse buffers, the old listing) free but held by malloc,
	 * spread over the threads' arenas: give it back. */
	if (n >= TREE_TRIM_MESSAGES)
		malloc_trim(0);
	return 0;
}

/* Merges a delta into a copy of the folder's listing and installs the
 * result (tree.h). */
int tree_apply_delta(struct tree *t, const char *folder,
		     struct store_listing *d, time_t now)
{
	struct store_listing base, full;
	int rc;

	rc = tree_listing_copy(t, folder, d->uidvalidity, &base);
	if (rc == 0)
		rc = store_listing_merge(&base, d, &full);
	store_listing_clear(&base);
	if (rc < 0)
		return rc;
	return tree_set_listing(t, folder, &full, now);
}

/* Whether f sits in the directory dir (of dir_len bytes) of the mount. */
static bool tree_in_dir(const struct tree_folder *f, const char *dir,
			size_t dir_len)
{
	size_t len = (size_t)(f->base - f->path);

	/* f->base follows its directory's path and a '/'. */
	if (dir_len == 0)
		return len == 0;
	return len == dir_len + 1 && strncmp(f->path, dir, dir_len) == 0;
}

/* Folders never listed after folder, for a walk's pipelined first
 * listings (tree.h). */
size_t tree_unlisted_after(struct tree *t, const char *folder, size_t max,
			   uint64_t budget, char **names_r)
{
	struct tree_folder *f, *start = NULL;
	size_t n = 0, dir_len = 0;
	int pass;

	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), start);
	if (start && start->base > start->path)
		dir_len = (size_t)(start->base - start->path) - 1;
	/* From the folder after this one to the end, then from the start
	 * to it: the order the folder list came in. */
	for (pass = 0; start && pass < 2 && n < max; pass++) {
		f = pass == 0 ? start->hh_path.next : t->by_path;
		for (; f && n < max; f = f->hh_path.next) {
			if (pass == 1 && f == start)
				break;
			if (f->listing || f->implied ||
			    (f->attrs & STORE_FOLDER_NOSELECT))
				continue;
			/* Folders of known size while the budget lasts;
			 * of unknown size, only the walk's own directory. */
			if (f->messages != STORE_COUNT_UNKNOWN) {
				if (f->messages > budget)
					continue;
				budget -= f->messages;
			} else if (!tree_in_dir(f, start->path, dir_len)) {
				continue;
			}
			names_r[n] = strdup(f->name);
			if (!names_r[n])
				break;
			n++;
		}
	}
	pthread_rwlock_unlock(&t->lock);
	return n;
}

/* Listed folders that follow folder, for read-ahead across folders
 * (tree.h). */
size_t tree_listed_after(struct tree *t, const char *folder, size_t max,
			 char **names_r, uint32_t *uidvalidity_r)
{
	struct tree_folder *f, *start;
	size_t n = 0;

	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), start);
	for (f = start ? start->hh_path.next : NULL; f && n < max;
	     f = f->hh_path.next) {
		if (f->implied || (f->attrs & STORE_FOLDER_NOSELECT))
			continue;
		if (!f->listing)
			break; /* the walk has not listed this far yet */
		names_r[n] = strdup(f->name);
		if (!names_r[n])
			break;
		uidvalidity_r[n++] = f->listing->state.uidvalidity;
	}
	pthread_rwlock_unlock(&t->lock);
	return n;
}

/* Marks a folder's listing fresh without changing it (tree.h). */
void tree_touch_listing(struct tree *t, const char *folder, time_t now)
{
	struct tree_folder *f;

	tree_wrlock(t);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (f && f->listing)
		f->listed_at = now;
	pthread_rwlock_unlock(&t->lock);
}

/* Makes a folder's listing (or, with folder NULL, the folder list)
 * stale, so that the next lookup lists it (tree.h). */
void tree_expire_listing(struct tree *t, const char *folder)
{
	struct tree_folder *f;

	tree_wrlock(t);
	if (!folder) {
		t->folders_listed = false;
	} else {
		HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
		if (f && f->listing)
			f->listed_at = CLOCK_NEVER;
	}
	pthread_rwlock_unlock(&t->lock);
}

/* True when the folder (or folder list) needs no refresh; takes the
 * read lock. */
static bool tree_is_fresh(struct tree *t, const char *folder, time_t now,
			  unsigned max_age)
{
	struct tree_folder *f;
	bool fresh;

	if (!folder)
		return !tree_folders_stale(t, now, max_age);
	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	fresh = f && tree_fresh(f, now, max_age);
	pthread_rwlock_unlock(&t->lock);
	return fresh;
}

/* Claims the refresh of a folder (or the folder list), or waits for
 * the thread that has it (tree.h): one listing at a time per folder. */
bool tree_begin_refresh(struct tree *t, const char *folder, time_t now,
			unsigned max_age, int wait_ms)
{
	const char *key = folder ? folder : TREE_FOLDER_LIST_KEY;
	struct timespec deadline = clock_deadline(wait_ms);
	struct tree_busy *b;
	bool go = false;

	pthread_mutex_lock(&t->busy_lock);
	for (;;) {
		if (tree_is_fresh(t, folder, now, max_age))
			break;
		HASH_FIND_STR(t->busy, key, b);
		if (!b) {
			b = calloc(1, sizeof(*b));
			if (b)
				b->name = strdup(key);
			if (!b || !b->name) {
				free(b);
				break;
			}
			HASH_ADD_KEYPTR(hh, t->busy, b->name, strlen(b->name),
					b);
			go = true;
			break;
		}
		if (pthread_cond_timedwait(&t->busy_cond, &t->busy_lock,
					   &deadline) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&t->busy_lock);
	return go;
}

/* Ends a refresh tree_begin_refresh() claimed and wakes its waiters. */
void tree_end_refresh(struct tree *t, const char *folder)
{
	const char *key = folder ? folder : TREE_FOLDER_LIST_KEY;
	struct tree_busy *b;

	pthread_mutex_lock(&t->busy_lock);
	HASH_FIND_STR(t->busy, key, b);
	if (b) {
		HASH_DEL(t->busy, b);
		free(b->name);
		free(b);
	}
	pthread_cond_broadcast(&t->busy_cond);
	pthread_mutex_unlock(&t->busy_lock);
}

/* Corrects a message's size from its bytes (tree.h); kept over the
 * server's in later listings. */
void tree_set_size(struct tree *t, const char *folder, uint32_t uidvalidity,
		   uint32_t uid, uint64_t size)
{
	struct tree_folder *f;
	struct tree_msg *m;
	size_t pos;

	tree_wrlock(t);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (f && f->listing && f->listing->state.uidvalidity == uidvalidity) {
		m = tree_listing_find_uid(f->listing, uid, &pos);
		if (m) {
			m->size = size;
			m->size_fixed = true;
		}
	}
	pthread_rwlock_unlock(&t->lock);
}

/* A listed (or added) message's content identity (tree.h). */
bool tree_message_oid(struct tree *t, const char *folder, uint32_t uidvalidity,
		      uint32_t uid, struct store_oid *oid_r)
{
	struct tree_folder *f;
	struct tree_msg *m = NULL;
	size_t pos;

	memset(oid_r, 0, sizeof(*oid_r));
	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (f && f->listing && f->listing->state.uidvalidity == uidvalidity) {
		m = tree_listing_find_uid(f->listing, uid, &pos);
		if (!m)
			for (m = f->listing->extras; m && m->uid != uid;
			     m = m->next_extra)
				;
	}
	if (m)
		*oid_r = tree_listing_msg_oid(f->listing, m);
	pthread_rwlock_unlock(&t->lock);
	return m && !store_oid_none(oid_r);
}

/* The messages after uid in listing order, for a scan's prefetch
 * (tree.h). */
size_t tree_next_messages(struct tree *t, const char *folder,
			  uint32_t uidvalidity, uint32_t uid, size_t max,
			  uint64_t max_size, uint32_t *uids_r,
			  uint64_t *sizes_r)
{
	struct tree_folder *f;
	size_t pos, n = 0;

	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (!f || !f->listing || f->listing->state.uidvalidity != uidvalidity)
		goto out;
	if (tree_listing_find_uid(f->listing, uid, &pos))
		pos++;
	for (; pos < f->listing->n && n < max; pos++) {
		const struct tree_msg *m = &f->listing->msgs[pos];

		if (m->size > max_size || m->gone)
			continue;
		uids_r[n] = m->uid;
		sizes_r[n] = m->size;
		n++;
	}
out:
	pthread_rwlock_unlock(&t->lock);
	return n;
}

/* folder's content changed (a change this mount made, or one push
 * reported): its mtime moves to now. The write lock is held. */
void tree_content_changed(struct tree *t, const char *folder,
			  struct tree_changes *cs)
{
	struct tree_folder *f;

	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (f && tree_move_mtime(t, f, tree_wall()))
		tree_changes_add(t, cs, f);
}

/* Another client changed folder: its mtime moves to now (tree.h). */
void tree_mark_changed(struct tree *t, const char *folder)
{
	struct tree_changes cs = {0};

	tree_wrlock(t);
	tree_content_changed(t, folder, &cs);
	tree_unlock_tell(t, &cs);
}

/* Hides a message this mount moved away or expunged until the next
 * listing (tree.h). */
void tree_remove_message(struct tree *t, const char *folder,
			 uint32_t uidvalidity, uint32_t uid)
{
	struct tree_changes cs = {0};
	struct tree_listing *l;
	struct tree_msg *m, *tmp;
	bool found = false;

	tree_wrlock(t);
	l = tree_listing_of(t, folder, uidvalidity);
	if (l) {
		HASH_ITER(hh, l->by_name, m, tmp)
		{
			if (m->uid != uid)
				continue;
			HASH_DEL(l->by_name, m);
			m->gone = true;
			found = true;
		}
		/* The server's state moved on: the next refresh must list. */
		l->state.modseq = 0;
	}
	if (found)
		tree_content_changed(t, folder, &cs);
	tree_unlock_tell(t, &cs);
}

/* Shows a message this mount stored or moved in until the next
 * listing, under its own name and alias (tree.h). */
int tree_add_message(struct tree *t, const char *folder, uint32_t uidvalidity,
		     const struct store_msg *m, const char *alias)
{
	struct tree_changes cs = {0};
	struct tree_listing *l;
	char name[MAILDIR_NAME_MAX];
	int rc = 0;

	tree_wrlock(t);
	l = tree_listing_of(t, folder, uidvalidity);
	if (l && l->maildir) {
		rc = tree_maildir_add(l, m, alias);
		l->state.modseq = 0;
	} else if (l) {
		/* Given one of its own names (a restored "-2"), it keeps it:
		 * its twin may come later under the other one. */
		rc = tree_listing_add_extra(
			l, m, tree_listing_own_name(m, alias) ? alias : NULL,
			false, name, NULL);
		if (rc == 0 && alias && strcmp(alias, name) != 0)
			rc = tree_listing_add_extra(l, m, alias, true, NULL,
						    NULL);
		l->state.modseq = 0;
	}
	/* Stored on the server, listed or not: the content changed. */
	tree_content_changed(t, folder, &cs);
	tree_unlock_tell(t, &cs);
	return rc;
}

/* Sets a message's flags as this mount changed them (tree.h). */
void tree_set_flags(struct tree *t, const char *folder, uint32_t uidvalidity,
		    uint32_t uid, const char *flags)
{
	tree_maildir_rename(t, folder, uidvalidity, uid, flags, NULL, NULL);
}

/* The server name of the Trash folder, malloc'd (tree.h). */
char *tree_trash(struct tree *t)
{
	struct tree_folder *f, *tmp, *named = NULL;
	char *name = NULL;

	pthread_rwlock_rdlock(&t->lock);
	HASH_ITER(hh_path, t->by_path, f, tmp)
	{
		if ((f->attrs & STORE_FOLDER_TRASH) &&
		    !(f->attrs & STORE_FOLDER_NOSELECT)) {
			named = f;
			break;
		}
		if (f->attrs & STORE_FOLDER_NOSELECT)
			continue;
		/* "Trash", else "INBOX/Trash" (servers with everything
		 * under INBOX). */
		if (strcasecmp(f->path, "Trash") == 0)
			named = f;
		else if (!named && strcasecmp(f->path, "INBOX/Trash") == 0)
			named = f;
	}
	if (named)
		name = strdup(named->name);
	pthread_rwlock_unlock(&t->lock);
	return name;
}

/* The hierarchy delimiter new folder names are made with (tree.h). */
char tree_delimiter(struct tree *t)
{
	struct tree_folder *f, *tmp;
	char delim = '\0';

	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, "INBOX", 5, f);
	if (f && !f->implied) {
		delim = f->delim;
	} else {
		HASH_ITER(hh_path, t->by_path, f, tmp)
		{
			if (!f->implied && f->delim) {
				delim = f->delim;
				break;
			}
		}
	}
	pthread_rwlock_unlock(&t->lock);
	return delim;
}

/* True when the folder list has that server name (tree.h). */
bool tree_has_folder(struct tree *t, const char *folder)
{
	struct tree_folder *f;

	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	pthread_rwlock_unlock(&t->lock);
	return f != NULL;
}

/* The mount path of a folder's server name, malloc'd (tree.h). */
char *tree_folder_path(struct tree *t, const char *folder)
{
	struct tree_folder *f;
	char *path = NULL;

	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (f)
		path = strdup(f->path);
	pthread_rwlock_unlock(&t->lock);
	return path;
}
