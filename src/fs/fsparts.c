// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsparts: FOLDER/.parts/NAME/PART (IMAP only; ENOENT on a store that
 * cannot fetch sections). FOLDER/.parts lists every message of FOLDER
 * as a directory; FOLDER/.parts/NAME holds `header`, `text`, `html` and
 * the attachments, named by msgstruct_name_parts() from the message's
 * BODYSTRUCTURE, which is fetched once and kept in a small cache
 * (FSPARTS_CACHE entries, least recently used out).
 *
 * Reading a part fetches only its section. A part whose bytes the
 * server can give as they are shown (an identity transfer encoding, or
 * any encoding with BINARY) is streamed in growing windows of
 * BODY.PEEK[s]<o.l> or BINARY.PEEK[s]<o.l>. The others are fetched
 * whole and decoded here: the header block, text and html (transfer
 * encoding, then charset to UTF-8 with LF line ends) and base64 or
 * quoted-printable attachments on a server without BINARY (or whose
 * BINARY refuses a broken encoding).
 *
 * Sizes: the kernel cuts reads at the st_size it was told (wc -c, tail
 * and cp trust it too), so a part's size is exact before the kernel
 * sees it. The structure gives most (BINARY.SIZE, identity encodings,
 * the header block fetched with it); a listing gives the others bare
 * (no attributes), and their getattr, or open, reads them whole once
 * and notes the size in the cache. Only a part too big to read whole
 * (FSPARTS_WHOLE_MAX) keeps an upper bound, and is direct_io.
 *
 * Locks: the cache's mutex (memory only) guards the cache, every
 * msgstruct_part's known/known_size and the structure's header_known,
 * header_size and header; a handle's mutex guards its buffers. Neither
 * is held while fetching.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fsctx.h"
#include "fsparts.h"
#include "fsvirt.h"
#include "log.h"
#include "mime.h"
#include "msgstruct.h"
#include "store.h"
#include "strbuf.h"
#include "tree.h"

/* Structures kept. */
#define FSPARTS_CACHE 64
/* The largest section read whole (text, html, header, decoded here). */
#define FSPARTS_WHOLE_MAX (64u * 1024 * 1024)
/* Streaming windows: the first, and the largest. */
#define FSPARTS_WINDOW_MIN (128u * 1024)
#define FSPARTS_WINDOW_MAX (8u * 1024 * 1024)
/* text and html: UTF-8 takes at most this many bytes per source byte. */
#define FSPARTS_UTF8_GROWTH 3

/* A message's structure, shared by reference. */
struct fsparts_ref {
	struct msgstruct *ms; /* owned */
	unsigned refs; /* under the cache's lock */
};

struct fsparts_slot {
	uint64_t folder_id;
	uint32_t uidvalidity, uid;
	struct fsparts_ref *ref; /* one reference; NULL when free */
	uint64_t used; /* the cache's clock at the last use */
};

struct fsparts_cache {
	pthread_mutex_t lock;
	struct fsparts_slot slots[FSPARTS_CACHE];
	uint64_t clock;
};

/* A message named by a .parts path. */
struct fsparts_msg {
	struct tree_info info; /* owned: the message (folder, uid, size) */
	const char *part; /* borrowed: the part's name, NULL for the dir */
};

/* What a handle or a stat needs of one part, copied out of the cache. */
struct fsparts_view {
	char section[MSGSTRUCT_SECTION_MAX + 8]; /* "HEADER" for the header */
	enum msgstruct_role role;
	enum msgstruct_enc enc;
	bool header;
	bool binary; /* the server may undo the encoding */
	bool stream; /* read in windows, as the server gives it */
	bool exact; /* size is the file's exact size */
	uint64_t size; /* else an upper bound */
	uint64_t wire; /* what reading it whole fetches, at most */
	char charset[64];
	size_t index; /* in the structure (not for the header) */
};

/* An open part. */
struct fsparts_file {
	char *path; /* owned */
	char *folder; /* owned */
	uint64_t folder_id;
	uint32_t uidvalidity, uid;
	time_t mtime;
	struct fsparts_view v;
	pthread_mutex_t lock; /* the fields below */
	uint64_t size;
	bool exact;
	char *data; /* owned: whole mode, once read */
	size_t len;
	bool loaded;
	/* stream mode: the last two windows fetched (kernel readahead
	 * reads out of order), [0] the newest */
	struct fsparts_window {
		char *data; /* owned */
		uint64_t off;
		size_t len;
	} win[2];
	uint64_t window; /* the next window's size */
	uint64_t seq_end; /* where the last window ended */
	bool fetching; /* a thread is fetching a window */
	pthread_cond_t cond; /* signalled when it is done */
};

static int fsparts_learn(struct fsmount *fs, const struct fsvirt_path *p,
			 const struct fsparts_msg *m, struct fsparts_ref *r,
			 struct fsparts_view *v);
static int fsparts_load(struct fsmount *fs, struct fsparts_file *f);

/* An empty structure cache (one per mount). */
struct fsparts_cache *fsparts_cache_new(void)
{
	struct fsparts_cache *c = calloc(1, sizeof(*c));

	if (c)
		pthread_mutex_init(&c->lock, NULL);
	return c;
}

/* Drops one reference (the cache's lock is held). */
static void fsparts_unref_locked(struct fsparts_ref *r)
{
	if (r && --r->refs == 0) {
		msgstruct_free(r->ms);
		free(r);
	}
}

/* Drops one reference, taking the cache's lock. */
static void fsparts_unref(struct fsmount *fs, struct fsparts_ref *r)
{
	pthread_mutex_lock(&fs->parts->lock);
	fsparts_unref_locked(r);
	pthread_mutex_unlock(&fs->parts->lock);
}

/* Frees the cache and the structures no open file holds. */
void fsparts_cache_free(struct fsparts_cache *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < FSPARTS_CACHE; i++)
		fsparts_unref_locked(c->slots[i].ref);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* A reference to the cached structure of a message, or NULL. */
static struct fsparts_ref *fsparts_lookup(struct fsmount *fs, uint64_t fid,
					  uint32_t uidvalidity, uint32_t uid)
{
	struct fsparts_cache *c = fs->parts;
	struct fsparts_ref *r = NULL;
	size_t i;

	pthread_mutex_lock(&c->lock);
	for (i = 0; i < FSPARTS_CACHE && !r; i++) {
		struct fsparts_slot *s = &c->slots[i];

		if (s->ref && s->folder_id == fid &&
		    s->uidvalidity == uidvalidity && s->uid == uid) {
			r = s->ref;
			r->refs++;
			s->used = ++c->clock;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* Keeps a structure in the cache (taking ms), evicting the least
 * recently used; returns a reference for the caller, NULL when out of
 * memory. */
static struct fsparts_ref *fsparts_insert(struct fsmount *fs, uint64_t fid,
					  uint32_t uidvalidity, uint32_t uid,
					  struct msgstruct *ms)
{
	struct fsparts_cache *c = fs->parts;
	struct fsparts_ref *r = calloc(1, sizeof(*r));
	struct fsparts_slot *s = &c->slots[0];
	size_t i;

	if (!r) {
		msgstruct_free(ms);
		return NULL;
	}
	r->ms = ms;
	r->refs = 2; /* the slot's and the caller's */
	pthread_mutex_lock(&c->lock);
	for (i = 0; i < FSPARTS_CACHE; i++) {
		struct fsparts_slot *t = &c->slots[i];

		if (!t->ref ||
		    (t->folder_id == fid && t->uidvalidity == uidvalidity &&
		     t->uid == uid)) {
			s = t;
			break;
		}
		if (t->used < s->used)
			s = t;
	}
	fsparts_unref_locked(s->ref);
	s->ref = r;
	s->folder_id = fid;
	s->uidvalidity = uidvalidity;
	s->uid = uid;
	s->used = ++c->clock;
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* The structure of a message, from the cache or the server. */
static int fsparts_structure(struct fsmount *fs, const struct tree_info *msg,
			     struct fsparts_ref **r_r)
{
	struct msgstruct *ms = NULL;
	int rc;

	*r_r = fsparts_lookup(fs, msg->folder_id, msg->uidvalidity, msg->uid);
	if (*r_r)
		return 0;
	rc = fs->cfg.store->ops->structure(fs->cfg.store, msg->folder,
					   msg->uidvalidity, msg->uid, &ms);
	if (rc == -ESTALE) {
		tree_expire_listing(fs->tree, msg->folder);
		return -ENOENT;
	}
	if (rc < 0)
		return rc;
	*r_r = fsparts_insert(fs, msg->folder_id, msg->uidvalidity, msg->uid,
			      ms);
	return *r_r ? 0 : -ENOMEM;
}

/* Resolves the message of a .parts path (p->rest is "NAME" or
 * "NAME/PART"); -ENOENT unless it names a message of p->dir. */
static int fsparts_msg(struct fsmount *fs, const struct fsvirt_path *p,
		       struct fsparts_msg *m)
{
	const char *slash = strchr(p->rest, '/');
	size_t nlen = slash ? (size_t)(slash - p->rest) : strlen(p->rest);
	size_t dlen = strlen(p->dir);
	char *path;
	int rc;

	memset(m, 0, sizeof(*m));
	if (nlen == 0 || (slash && (!slash[1] || strchr(slash + 1, '/'))))
		return -ENOENT;
	path = malloc(dlen + nlen + 2);
	if (!path)
		return -ENOMEM;
	snprintf(path, dlen + nlen + 2, "%s/%.*s",
		 strcmp(p->dir, "/") ? p->dir : "", (int)nlen, p->rest);
	rc = fsctx_resolve(fs, path, &m->info);
	free(path);
	if (rc < 0)
		return rc;
	if (m->info.kind != TREE_MESSAGE) {
		tree_info_clear(&m->info);
		return -ENOENT;
	}
	m->part = slash ? slash + 1 : NULL;
	return 0;
}

/* Fills the view of the header block of a message of msg_size bytes:
 * exact once the structure came with it or it was read (the cache's
 * lock is held). */
static void fsparts_view_header(const struct msgstruct *ms, uint64_t msg_size,
				struct fsparts_view *v)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->section, sizeof(v->section), "HEADER");
	v->header = true;
	v->wire = msg_size;
	v->exact = ms->header_known;
	v->size = ms->header_known ? ms->header_size : msg_size;
}

/* Fills the view of part i (the cache's lock is held). */
static void fsparts_view_part(const struct msgstruct *ms, size_t i,
			      struct fsparts_view *v)
{
	const struct msgstruct_part *p = &ms->parts[i];
	bool text = p->role != MSGSTRUCT_ATTACHMENT;

	memset(v, 0, sizeof(*v));
	snprintf(v->section, sizeof(v->section), "%s", p->section);
	v->role = p->role;
	v->enc = p->enc;
	v->index = i;
	v->binary = ms->binary && p->enc != MSGSTRUCT_ENC_IDENTITY &&
		    p->enc != MSGSTRUCT_ENC_OTHER;
	if (p->charset)
		snprintf(v->charset, sizeof(v->charset), "%s", p->charset);
	v->stream = !text && (p->enc == MSGSTRUCT_ENC_IDENTITY ||
			      p->enc == MSGSTRUCT_ENC_OTHER || v->binary);
	v->wire = p->size;
	if (p->known) {
		v->exact = true;
		v->size = p->known_size;
	} else if (!text && p->exact) {
		v->exact = true;
		v->size = p->exact_size;
	} else if (!text && (p->enc == MSGSTRUCT_ENC_IDENTITY ||
			     p->enc == MSGSTRUCT_ENC_OTHER)) {
		v->exact = true;
		v->size = p->size;
	} else {
		/* decoding never grows; UTF-8 at most triples */
		v->size = text ? p->size * FSPARTS_UTF8_GROWTH : p->size;
	}
}

/* The view of the part called name; -ENOENT if the message has none. */
static int fsparts_view(struct fsmount *fs, const struct fsparts_msg *m,
			struct fsparts_ref *r, const char *name,
			struct fsparts_view *v)
{
	bool header = !strcmp(name, "header");
	size_t i = 0;

	pthread_mutex_lock(&fs->parts->lock);
	if (header) {
		fsparts_view_header(r->ms, m->info.size, v);
	} else {
		for (; i < r->ms->n; i++)
			if (!strcmp(r->ms->parts[i].name, name))
				break;
		if (i < r->ms->n)
			fsparts_view_part(r->ms, i, v);
	}
	pthread_mutex_unlock(&fs->parts->lock);
	return header || i < r->ms->n ? 0 : -ENOENT;
}

/* True when the store can serve .parts. */
static bool fsparts_supported(const struct fsmount *fs)
{
	const struct store_ops *ops = fs->cfg.store->ops;

	return ops->structure && ops->fetch_section;
}

/* getattr: .parts and each NAME are directories (no fetch); a part
 * is a file whose size comes from the structure (fetched once), or is
 * learnt by reading the part (fsparts_learn()). */
static int fsparts_getattr(struct fsmount *fs, const struct fsvirt_path *p,
			   struct stat *st)
{
	struct fsparts_ref *r = NULL;
	struct fsparts_view v;
	struct fsparts_msg m;
	struct tree_info info;
	int rc;

	if (!fsparts_supported(fs))
		return -ENOENT;
	if (!*p->rest) {
		rc = fsvirt_folder(fs, p->dir, &info);
		if (rc == 0)
			fsvirt_stat_dir(fs, p->path, info.mtime, st);
		tree_info_clear(&info);
		return rc;
	}
	rc = fsparts_msg(fs, p, &m);
	if (rc < 0)
		return rc;
	if (!m.part) {
		fsvirt_stat_dir(fs, p->path, m.info.mtime, st);
		goto out;
	}
	rc = fsparts_structure(fs, &m.info, &r);
	if (rc == 0)
		rc = fsparts_view(fs, &m, r, m.part, &v);
	if (rc == 0)
		rc = fsparts_learn(fs, p, &m, r, &v);
	if (rc == 0)
		fsvirt_stat_file(fs, p->path, v.size, m.info.mtime, st);
out:
	if (r)
		fsparts_unref(fs, r);
	tree_info_clear(&m.info);
	return rc;
}

/* tree_readdir()'s callback for .parts: every message as a directory
 * (the tree's lock is held: memory only). */
struct fsparts_list {
	struct fsmount *fs;
	const struct fsvirt_path *p;
	struct fsvirt_dir *d;
	int rc;
};

/* Adds each message of the folder as a directory. */
static int fsparts_list_fill(void *ctx, const char *name,
			     const struct tree_info *info)
{
	struct fsparts_list *l = ctx;
	size_t len = strlen(l->p->path) + strlen(name) + 2;
	char *full;
	struct stat st;

	if (info->kind != TREE_MESSAGE)
		return 0;
	full = malloc(len);
	if (!full) {
		l->rc = -ENOMEM;
		return 1;
	}
	snprintf(full, len, "%s/%s", l->p->path, name);
	fsvirt_stat_dir(l->fs, full, info->mtime, &st);
	free(full);
	l->rc = fsvirt_dir_add(l->d, name, &st);
	return l->rc < 0;
}

/* Adds one part of a message's directory to a listing: bare (no
 * attributes for the kernel) unless its size is exact, so that a stat
 * asks getattr, which learns it. */
static int fsparts_list_part(struct fsmount *fs, const struct fsvirt_path *p,
			     const char *name, const struct fsparts_view *v,
			     time_t mtime, struct fsvirt_dir *d)
{
	size_t len = strlen(p->path) + strlen(name) + 2;
	char *full = malloc(len);
	struct stat st;

	if (!full)
		return -ENOMEM;
	snprintf(full, len, "%s/%s", p->path, name);
	fsvirt_stat_file(fs, full, v->size, mtime, &st);
	free(full);
	return v->exact ? fsvirt_dir_add(d, name, &st)
			: fsvirt_dir_add_bare(d, name, &st);
}

/* Lists a message's directory: header, then its parts in order. */
static int fsparts_list_msg(struct fsmount *fs, const struct fsvirt_path *p,
			    const struct fsparts_msg *m, struct fsvirt_dir *d)
{
	struct fsparts_view *views = NULL;
	struct fsparts_ref *r;
	struct fsparts_view v;
	size_t i, n;
	int rc;

	rc = fsparts_structure(fs, &m->info, &r);
	if (rc < 0)
		return rc;
	n = r->ms->n;
	views = n ? calloc(n, sizeof(*views)) : NULL;
	if (n && !views)
		rc = -ENOMEM;
	pthread_mutex_lock(&fs->parts->lock);
	fsparts_view_header(r->ms, m->info.size, &v);
	for (i = 0; rc == 0 && i < n; i++)
		fsparts_view_part(r->ms, i, &views[i]);
	pthread_mutex_unlock(&fs->parts->lock);
	if (rc == 0)
		rc = fsparts_list_part(fs, p, "header", &v, m->info.mtime, d);
	/* names cannot change once made: read them without the lock */
	for (i = 0; rc == 0 && i < n; i++)
		rc = fsparts_list_part(fs, p, r->ms->parts[i].name, &views[i],
				       m->info.mtime, d);
	free(views);
	fsparts_unref(fs, r);
	return rc;
}

/* list: .parts (every message) or .parts/NAME (its parts). */
static int fsparts_list(struct fsmount *fs, const struct fsvirt_path *p,
			struct fsvirt_dir *d)
{
	struct fsparts_list l = {fs, p, d, 0};
	struct fsparts_msg m;
	struct tree_info info;
	int rc;

	if (!fsparts_supported(fs))
		return -ENOENT;
	if (!*p->rest) {
		rc = fsvirt_folder(fs, p->dir, &info);
		tree_info_clear(&info);
		if (rc < 0)
			return rc;
		rc = tree_readdir(fs->tree, p->dir, fsparts_list_fill, &l);
		return rc < 0 ? rc : l.rc;
	}
	rc = fsparts_msg(fs, p, &m);
	if (rc < 0)
		return rc;
	rc = m.part ? -ENOTDIR : fsparts_list_msg(fs, p, &m, d);
	tree_info_clear(&m.info);
	return rc;
}

/* Frees an open part. */
static void fsparts_file_free(struct fsparts_file *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f->path);
	free(f->folder);
	free(f->data);
	free(f->win[0].data);
	free(f->win[1].data);
	free(f);
}

/* Makes the handle of part m->part of message m (r: its structure),
 * with what to fetch and how to decode it: *f_r, or NULL on failure. */
static int fsparts_file_new(struct fsmount *fs, const char *path,
			    const struct fsparts_msg *m, struct fsparts_ref *r,
			    struct fsparts_file **f_r)
{
	struct fsparts_file *f = calloc(1, sizeof(*f));
	int rc;

	*f_r = NULL;
	if (!f)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	clock_cond_init(&f->cond);
	rc = fsparts_view(fs, m, r, m->part, &f->v);
	if (rc == 0 && (!(f->path = strdup(path)) ||
			!(f->folder = strdup(m->info.folder))))
		rc = -ENOMEM;
	if (rc < 0) {
		fsparts_file_free(f);
		return rc;
	}
	f->folder_id = m->info.folder_id;
	f->uidvalidity = m->info.uidvalidity;
	f->uid = m->info.uid;
	f->mtime = m->info.mtime;
	f->size = f->v.size;
	f->exact = f->v.exact;
	f->window = FSPARTS_WINDOW_MIN;
	*f_r = f;
	return 0;
}

/* Gives a header block's new handle the bytes its structure came with,
 * when the cache kept them: its reads fetch nothing. */
static void fsparts_take_header(struct fsmount *fs, struct fsparts_ref *r,
				struct fsparts_file *f)
{
	char *copy = NULL;
	size_t len = 0;

	if (!f->v.header)
		return;
	pthread_mutex_lock(&fs->parts->lock);
	if (r->ms->header && r->ms->header_known) {
		len = (size_t)r->ms->header_size;
		copy = malloc(len + 1);
		if (copy)
			memcpy(copy, r->ms->header, len);
	}
	pthread_mutex_unlock(&fs->parts->lock);
	if (!copy)
		return;
	f->data = copy;
	f->len = len;
	f->loaded = true;
	f->size = len;
	f->exact = true;
}

/* open: a part's handle. Its size is made exact first (read whole when
 * the structure does not give it: fstat shows it), so that the kernel
 * may keep the pages (parts never change); only a part too big to read
 * whole keeps an upper bound, and is direct_io. */
static int fsparts_open(struct fsmount *fs, const struct fsvirt_path *p,
			struct fuse_file_info *fi, void **file_r)
{
	struct fsparts_ref *r = NULL;
	struct fsparts_file *f = NULL;
	struct fsparts_msg m;
	int rc;

	if (!fsparts_supported(fs))
		return -ENOENT;
	if (!*p->rest)
		return -EISDIR;
	rc = fsparts_msg(fs, p, &m);
	if (rc < 0)
		return rc;
	if (!m.part) {
		tree_info_clear(&m.info);
		return -EISDIR;
	}
	rc = fsparts_structure(fs, &m.info, &r);
	if (rc == 0)
		rc = fsparts_file_new(fs, p->path, &m, r, &f);
	if (rc < 0)
		goto out;
	fsparts_take_header(fs, r, f);
	if (!f->exact && f->v.wire < FSPARTS_WHOLE_MAX) {
		rc = fsparts_load(fs, f);
		if (rc < 0)
			goto out;
	}
	if (f->exact)
		fi->keep_cache = 1;
	else
		fi->direct_io = 1;
	*file_r = f;
	f = NULL;
out:
	fsparts_file_free(f);
	if (r)
		fsparts_unref(fs, r);
	tree_info_clear(&m.info);
	return rc;
}

/* Collects a fetched piece. */
static void fsparts_piece_cb(void *ctx, const char *data, size_t len)
{
	strbuf_append(ctx, data, len);
}

/* Fetches a whole section (in STORE_MAX_PIECE windows) into out. */
static int fsparts_fetch_all(struct fsmount *fs, struct fsparts_file *f,
			     bool binary, struct strbuf *out)
{
	uint64_t off = 0;
	size_t before;
	int rc;

	for (;;) {
		before = out->len;
		rc = fs->cfg.store->ops->fetch_section(
			fs->cfg.store, f->folder, f->uidvalidity, f->uid,
			f->v.section, binary, off, STORE_MAX_PIECE,
			fsparts_piece_cb, out);
		if (rc < 0)
			return rc == -ESTALE ? -ENOENT : rc;
		if (strbuf_failed(out))
			return -ENOMEM;
		if (out->len - before < STORE_MAX_PIECE)
			return 0;
		off += STORE_MAX_PIECE;
		if (off >= FSPARTS_WHOLE_MAX) {
			log_warnx("%s: a part over %u MiB is not read whole",
				  f->path, FSPARTS_WHOLE_MAX >> 20);
			return -EFBIG;
		}
	}
}

/* Undoes a transfer encoding here (the server did not). */
static void fsparts_decode(enum msgstruct_enc enc, const struct strbuf *in,
			   struct strbuf *out)
{
	const char *d = in->data ? in->data : "";

	if (enc == MSGSTRUCT_ENC_BASE64)
		mime_b64_decode(out, d, in->len);
	else if (enc == MSGSTRUCT_ENC_QP)
		mime_qp_decode(out, d, in->len);
	else
		strbuf_append(out, d, in->len);
}

/* Records a part's exact size in the cache, for later stats. */
static void fsparts_note_size(struct fsmount *fs, struct fsparts_file *f,
			      uint64_t size)
{
	struct fsparts_ref *r;

	r = fsparts_lookup(fs, f->folder_id, f->uidvalidity, f->uid);
	if (!r)
		return;
	pthread_mutex_lock(&fs->parts->lock);
	if (f->v.header && !r->ms->header_known) {
		r->ms->header_known = true;
		r->ms->header_size = size;
	} else if (!f->v.header && f->v.index < r->ms->n) {
		r->ms->parts[f->v.index].known = true;
		r->ms->parts[f->v.index].known_size = size;
	}
	fsparts_unref_locked(r);
	pthread_mutex_unlock(&fs->parts->lock);
}

/* Reads a part whole and makes what its file shows. */
static int fsparts_load(struct fsmount *fs, struct fsparts_file *f)
{
	struct strbuf raw = {0}, dec = {0}, out = {0};
	bool binary;
	int rc;

	pthread_mutex_lock(&f->lock);
	binary = f->v.binary;
	pthread_mutex_unlock(&f->lock);
	rc = fsparts_fetch_all(fs, f, binary, &raw);
	if (rc == -EILSEQ && binary) {
		/* The server cannot decode it: decode what can be. */
		log_warnx("%s: the server could not decode section %s", f->path,
			  f->v.section);
		strbuf_reset(&raw);
		binary = false;
		rc = fsparts_fetch_all(fs, f, false, &raw);
	}
	if (rc < 0)
		goto out;
	if (binary || f->v.header)
		strbuf_append(&dec, raw.data ? raw.data : "", raw.len);
	else
		fsparts_decode(f->v.enc, &raw, &dec);
	strbuf_free(&raw);
	if (f->v.role == MSGSTRUCT_ATTACHMENT) {
		out = dec;
		dec = (struct strbuf){0};
	} else {
		mime_to_utf8(&out, f->v.charset, dec.data, dec.len, true);
	}
	if (strbuf_failed(&out) || strbuf_failed(&dec)) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_lock(&f->lock);
	if (!f->loaded) {
		f->len = out.len;
		f->data = strbuf_steal(&out);
		if (!f->data)
			f->len = 0;
		f->loaded = true;
		f->size = f->len;
		f->exact = true;
	}
	pthread_mutex_unlock(&f->lock);
	fsparts_note_size(fs, f, f->len);
out:
	strbuf_free(&raw);
	strbuf_free(&dec);
	strbuf_free(&out);
	return rc;
}

/*
 * Makes a view's size exact before the kernel sees it (it cuts reads at
 * st_size): reads the part whole, as a read of it would, and notes the
 * size in the cache. A part too big to read whole (it cannot be read
 * but streamed) keeps its upper bound.
 */
static int fsparts_learn(struct fsmount *fs, const struct fsvirt_path *p,
			 const struct fsparts_msg *m, struct fsparts_ref *r,
			 struct fsparts_view *v)
{
	struct fsparts_file *f;
	int rc;

	if (v->exact || v->wire >= FSPARTS_WHOLE_MAX)
		return 0;
	rc = fsparts_file_new(fs, p->path, m, r, &f);
	if (rc == 0)
		rc = fsparts_load(fs, f);
	if (rc == 0) {
		v->size = f->size;
		v->exact = true;
	}
	fsparts_file_free(f);
	return rc;
}

/* Copies what the loaded data holds of [off, off + size). */
static int fsparts_read_loaded(struct fsparts_file *f, char *buf, size_t size,
			       off_t off)
{
	int n = 0;

	pthread_mutex_lock(&f->lock);
	if ((uint64_t)off < f->len) {
		if (size > f->len - (size_t)off)
			size = f->len - (size_t)off;
		memcpy(buf, f->data + off, size);
		n = (int)size;
	}
	pthread_mutex_unlock(&f->lock);
	return n;
}

/* Copies from a stream window; -1 when none holds off. f->lock is
 * held. */
static int fsparts_from_window(struct fsparts_file *f, char *buf, size_t size,
			       uint64_t off)
{
	const struct fsparts_window *w;
	size_t have, i;

	for (i = 0; i < 2; i++) {
		w = &f->win[i];
		if (!w->data || off < w->off || off >= w->off + w->len)
			continue;
		have = (size_t)(w->off + w->len - off);
		if (size > have)
			size = have;
		memcpy(buf, w->data + (off - w->off), size);
		return (int)size;
	}
	return f->exact && off >= f->size ? 0 : -1;
}

/*
 * Claims the next fetch of a streamed part for this thread, or waits
 * (at most the timeout) while another thread fetches: what a read wants
 * is usually what that fetch brings. Returns a byte count (or 0 at the
 * end) when a window now holds off; -1 with *window_r set when the
 * caller should fetch (*mine_r: it owns the claim). f->lock is held.
 */
static int fsparts_claim(struct fsmount *fs, struct fsparts_file *f, char *buf,
			 size_t size, uint64_t off, uint64_t *window_r,
			 bool *mine_r)
{
	struct timespec ts = clock_deadline((long)fs->cfg.timeout * 1000);
	int rc;

	while ((rc = fsparts_from_window(f, buf, size, off)) < 0 && f->fetching)
		if (pthread_cond_timedwait(&f->cond, &f->lock, &ts) != 0)
			break;
	if (rc >= 0)
		return rc;
	if (off == f->seq_end && f->window < FSPARTS_WINDOW_MAX)
		f->window *= 2;
	else if (off != f->seq_end)
		f->window = FSPARTS_WINDOW_MIN;
	*window_r = f->window < size ? size : f->window;
	*mine_r = !f->fetching;
	f->fetching = true;
	return -1;
}

/* Reads a streamed part: a window, else a fetch of the next window
 * (growing while reads are sequential), one thread at a time. */
static int fsparts_read_stream(struct fsmount *fs, struct fsparts_file *f,
			       char *buf, size_t size, uint64_t off)
{
	struct strbuf got = {0};
	uint64_t window = 0;
	bool mine = false;
	int rc, n;

	pthread_mutex_lock(&f->lock);
	rc = fsparts_claim(fs, f, buf, size, off, &window, &mine);
	pthread_mutex_unlock(&f->lock);
	if (rc >= 0)
		return rc;
	rc = fs->cfg.store->ops->fetch_section(
		fs->cfg.store, f->folder, f->uidvalidity, f->uid, f->v.section,
		f->v.binary, off, window, fsparts_piece_cb, &got);
	if (rc == -ESTALE)
		rc = -ENOENT;
	if (rc == 0 && strbuf_failed(&got))
		rc = -ENOMEM;
	pthread_mutex_lock(&f->lock);
	if (mine) {
		f->fetching = false;
		pthread_cond_broadcast(&f->cond);
	}
	if (rc == 0) {
		free(f->win[1].data);
		f->win[1] = f->win[0];
		f->win[0].len = got.len;
		f->win[0].data = strbuf_steal(&got);
		f->win[0].off = off;
		f->seq_end = off + f->win[0].len;
		if (f->win[0].len < window && !f->exact) {
			f->exact = true;
			f->size = off + f->win[0].len;
		}
		n = fsparts_from_window(f, buf, size, off);
		rc = n < 0 ? 0 : n; /* nothing there: the end */
	}
	pthread_mutex_unlock(&f->lock);
	strbuf_free(&got);
	return rc;
}

/* read: what open loaded; else streamed parts by window, the others
 * whole at the first read (and on a server that cannot decode a
 * streamed one). */
static int fsparts_read(struct fsmount *fs, void *file, char *buf, size_t size,
			off_t off)
{
	struct fsparts_file *f = file;
	bool loaded, stream;
	int rc;

	if (size == 0)
		return 0;
	pthread_mutex_lock(&f->lock);
	stream = f->v.stream && !f->loaded;
	pthread_mutex_unlock(&f->lock);
	if (stream) {
		rc = fsparts_read_stream(fs, f, buf, size, (uint64_t)off);
		if (rc != -EILSEQ)
			return rc;
		/* The server cannot undo the encoding: decode it here. */
		log_warnx("%s: the server could not decode section %s", f->path,
			  f->v.section);
		pthread_mutex_lock(&f->lock);
		f->v.stream = false;
		f->v.binary = false;
		f->exact = false;
		pthread_mutex_unlock(&f->lock);
	}
	pthread_mutex_lock(&f->lock);
	loaded = f->loaded;
	pthread_mutex_unlock(&f->lock);
	if (!loaded && (rc = fsparts_load(fs, f)) < 0)
		return rc;
	return fsparts_read_loaded(f, buf, size, off);
}

/* fstat: the size the open part knows now. */
static int fsparts_fgetattr(struct fsmount *fs, void *file, struct stat *st)
{
	struct fsparts_file *f = file;

	pthread_mutex_lock(&f->lock);
	fsvirt_stat_file(fs, f->path, f->size, f->mtime, st);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

/* release: the open part goes. */
static void fsparts_release(struct fsmount *fs, void *file)
{
	fsparts_file_free(file);
}

const struct fsvirt_kind fsparts_kind = {
	.name = ".parts",
	.getattr = fsparts_getattr,
	.list = fsparts_list,
	.open = fsparts_open,
	.read = fsparts_read,
	.fgetattr = fsparts_fgetattr,
	.release = fsparts_release,
};
