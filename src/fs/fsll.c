// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsll: mailfs on libfuse's low-level API; see fsll.h.
 *
 * Locking: one mutex (ll->lock) over the node tables, held for memory
 * work only: never across an operation, the resolver or a reply. An
 * operation gets the path built under the lock and runs without it.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <uthash.h>

#include "clock.h"
#include "fsll.h"
#include "fsll_priv.h"

/* Their names, as the kernel's (and libfuse's debug log) are. */
static const char *const fsll_op_names[FSLL_OP_MAX] = {
	"LOOKUP",   "FORGET",	"GETATTR",     "SETATTR",     "READLINK",
	"MKDIR",    "UNLINK",	"RMDIR",       "RENAME",      "LINK",
	"OPEN",	    "READ",	"WRITE",       "FLUSH",	      "RELEASE",
	"OPENDIR",  "READDIR",	"READDIRPLUS", "RELEASEDIR",  "STATFS",
	"SETXATTR", "GETXATTR", "LISTXATTR",   "REMOVEXATTR", "CREATE",
};

static __thread struct fuse_context fsll_ctx;

struct fuse_context *fsll_context(void)
{
	return &fsll_ctx;
}

/*
 * Starts serving req, of kind op (counted): the context operations
 * read, and the request's
 * one deadline (clock.h), `timeout` from now, which every step of the
 * request shares however many operations it runs (setattr's mode, size
 * and times; rename's look at its source; create's stat).
 */
static struct fsll *fsll_begin(fuse_req_t req, enum fsll_op op)
{
	struct fsll *ll = fuse_req_userdata(req);
	const struct fuse_ctx *c = fuse_req_ctx(req);

	atomic_fetch_add_explicit(&ll->requests[op], 1, memory_order_relaxed);
	fsll_ctx.uid = c->uid;
	fsll_ctx.gid = c->gid;
	fsll_ctx.pid = c->pid;
	fsll_ctx.umask = c->umask;
	fsll_ctx.private_data = ll->private_data;
	clock_request_begin((long)ll->timeout_s * 1000);
	return ll;
}

/*
 * The guard, once per request: only the mount's owner (and root) may
 * use it. With -o allow_other other users see the mount, but mailfs
 * acts on the server with the owner's credentials, so every request of
 * theirs is answered EACCES here (and the kernel refuses most of them
 * before, see fsll.h). False when req was answered so.
 */
static bool fsll_allowed(struct fsll *ll, fuse_req_t req)
{
	if (fsll_ctx.uid == ll->owner || fsll_ctx.uid == 0)
		return true;
	fuse_reply_err(req, EACCES);
	return false;
}

/* The path of ino for req; NULL when there is none, req then answered
 * with the error. */
static char *fsll_req_path(struct fsll *ll, fuse_req_t req, fuse_ino_t ino)
{
	int err;
	char *p = fsll_node_path(ll, ino, &err);

	if (!p)
		fuse_reply_err(req, err);
	return p;
}

/* The path of name in dir for req, as fsll_req_path(). */
static char *fsll_req_child(struct fsll *ll, fuse_req_t req, fuse_ino_t dir,
			    const char *name)
{
	int err;
	char *p = fsll_node_child_path(ll, dir, name, &err);

	if (!p)
		fuse_reply_err(req, err);
	return p;
}

/*
 * The node id the kernel gets for (parent, name) at path with st, one
 * lookup counted: the stored node's, the inode number of a message
 * (nothing stored), or a new stored node's. 0 when out of memory.
 */
static uint64_t fsll_enter(struct fsll *ll, uint64_t parent, const char *name,
			   const char *path, const struct stat *st)
{
	struct fsll_node *n;
	uint64_t id = 0;
	bool computed;

	pthread_mutex_lock(&ll->lock);
	n = fsll_node_find_name(ll, parent, name);
	if (n) {
		n->nlookup++;
		id = n->id;
	}
	pthread_mutex_unlock(&ll->lock);
	if (id)
		return id;
	computed = fsll_node_computed(ll, (uint64_t)st->st_ino, path);
	pthread_mutex_lock(&ll->lock);
	n = fsll_node_find_name(ll, parent, name);
	if (n) {
		n->nlookup++;
		id = n->id;
	} else if (computed) {
		id = (uint64_t)st->st_ino;
	} else if (ll->next_id < FSLL_COMPUTED_MIN &&
		   (n = fsll_node_add(ll, ll->next_id, parent, name))) {
		ll->next_id++;
		n->nlookup = 1;
		id = n->id;
	}
	pthread_mutex_unlock(&ll->lock);
	return id;
}

/* Fills e for an entry of id with st. */
static void fsll_entry(struct fsll *ll, struct fuse_entry_param *e, uint64_t id,
		       const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->ino = id;
	e->attr = *st;
	e->attr_timeout = ll->attr_timeout;
	e->entry_timeout = ll->entry_timeout;
}

/* Ends a no-open handle (no lock held): the operation's release. */
static void fsll_rh_release(struct fsll *ll, struct fsll_rh *h)
{
	if (ll->ops->release)
		ll->ops->release(h->path, &h->fi);
	free(h->path);
	free(h);
}

/* Takes a handle out of the use order (lock held). */
static void fsll_rh_lru_cut(struct fsll *ll, struct fsll_rh *h)
{
	if (h->newer)
		h->newer->older = h->older;
	else
		ll->rh_newest = h->older;
	if (h->older)
		h->older->newer = h->newer;
	else
		ll->rh_oldest = h->newer;
	h->newer = h->older = NULL;
}

/* Puts a handle first in the use order (lock held): just used. */
static void fsll_rh_lru_front(struct fsll *ll, struct fsll_rh *h)
{
	if (ll->rh_newest == h)
		return;
	if (h->newer || h->older || ll->rh_oldest == h)
		fsll_rh_lru_cut(ll, h);
	h->older = ll->rh_newest;
	if (ll->rh_newest)
		ll->rh_newest->newer = h;
	ll->rh_newest = h;
	if (!ll->rh_oldest)
		ll->rh_oldest = h;
}

/* Takes a handle out of the table (lock held): returned when unused
 * (the caller releases it), else its last user will. */
static struct fsll_rh *fsll_rh_unlink(struct fsll *ll, struct fsll_rh *h)
{
	fsll_rh_lru_cut(ll, h);
	HASH_DEL(ll->rhs, h);
	h->gone = true;
	return h->refs ? NULL : h;
}

/* Drops ino's no-open handle, if any (forgotten or invalidated). */
static void fsll_rh_drop(struct fsll *ll, uint64_t ino)
{
	struct fsll_rh *h, *done = NULL;

	if (!ll->no_open)
		return;
	pthread_mutex_lock(&ll->lock);
	HASH_FIND(hh, ll->rhs, &ino, sizeof(ino), h);
	if (h)
		done = fsll_rh_unlink(ll, h);
	pthread_mutex_unlock(&ll->lock);
	if (done)
		fsll_rh_release(ll, done);
}

/* Gives a handle back after a request. */
static void fsll_rh_put(struct fsll *ll, struct fsll_rh *h)
{
	bool last;

	pthread_mutex_lock(&ll->lock);
	last = --h->refs == 0 && h->gone;
	pthread_mutex_unlock(&ll->lock);
	if (last)
		fsll_rh_release(ll, h);
}

/* Makes room in the table (lock held): the least recently used unused
 * handles beyond FSLL_RH_MAX go into out (at most max of them). */
static size_t fsll_rh_evict(struct fsll *ll, struct fsll_rh **out, size_t max)
{
	size_t n = 0;

	while (n < max && HASH_COUNT(ll->rhs) > FSLL_RH_MAX) {
		struct fsll_rh *lru = ll->rh_oldest;

		while (lru && lru->refs)
			lru = lru->newer;
		if (!lru)
			break;
		out[n++] = fsll_rh_unlink(ll, lru);
	}
	return n;
}

/* The no-open handle kept for ino, with a reference (fsll_rh_put()), or
 * NULL: memory only, no path. */
static struct fsll_rh *fsll_rh_find(struct fsll *ll, uint64_t ino)
{
	struct fsll_rh *h;

	pthread_mutex_lock(&ll->lock);
	HASH_FIND(hh, ll->rhs, &ino, sizeof(ino), h);
	if (h) {
		h->refs++;
		fsll_rh_lru_front(ll, h);
	}
	pthread_mutex_unlock(&ll->lock);
	return h;
}

/*
 * The no-open handle of ino (at path), taken for one request: the one
 * kept, or one made now by the operation's open (read-only). With
 * remake, one made more than FSLL_RH_SIZED_MS ago is made anew (a file
 * sized at open: what its getattr tells is that fresh). NULL with
 * *err_r (a positive errno) when the open failed.
 */
static struct fsll_rh *fsll_rh_get(struct fsll *ll, uint64_t ino,
				   const char *path, bool remake, int *err_r)
{
	struct fsll_rh *h, *other, *old = NULL, *victims[4];
	long long now = clock_now_ms();
	size_t nv, i;
	int rc;

	pthread_mutex_lock(&ll->lock);
	HASH_FIND(hh, ll->rhs, &ino, sizeof(ino), h);
	if (h && remake && now - h->made_ms > FSLL_RH_SIZED_MS) {
		old = fsll_rh_unlink(ll, h);
		h = NULL;
	}
	if (h) {
		h->refs++;
		fsll_rh_lru_front(ll, h);
	}
	pthread_mutex_unlock(&ll->lock);
	if (old)
		fsll_rh_release(ll, old);
	old = NULL;
	if (h)
		return h;
	h = calloc(1, sizeof(*h));
	if (!h || !(h->path = strdup(path))) {
		free(h);
		*err_r = ENOMEM;
		return NULL;
	}
	h->ino = ino;
	h->gen = atomic_fetch_add(&ll->rh_gen, 1) + 1;
	h->fi.flags = O_RDONLY;
	h->made_ms = now;
	h->refs = 1;
	rc = ll->ops->open ? ll->ops->open(path, &h->fi) : 0;
	if (rc < 0) {
		free(h->path);
		free(h);
		*err_r = -rc;
		return NULL;
	}
	pthread_mutex_lock(&ll->lock);
	HASH_FIND(hh, ll->rhs, &ino, sizeof(ino), other);
	if (other && !remake) {
		/* Another request made one meanwhile: that one serves. */
		other->refs++;
		h->gone = true;
		h->refs = 0;
		old = h;
		h = other;
	} else {
		if (other)
			old = fsll_rh_unlink(ll, other);
		HASH_ADD(hh, ll->rhs, ino, sizeof(h->ino), h);
		fsll_rh_lru_front(ll, h);
	}
	nv = fsll_rh_evict(ll, victims, 4);
	pthread_mutex_unlock(&ll->lock);
	if (old)
		fsll_rh_release(ll, old);
	for (i = 0; i < nv; i++)
		if (victims[i])
			fsll_rh_release(ll, victims[i]);
	return h;
}

/* Forgets n lookups of id; a no-open handle of it goes with the last
 * (a message's inode, which fsll counts no lookups of: with any). */
static void fsll_forget_one(struct fsll *ll, uint64_t id, uint64_t nlookup)
{
	struct fsll_node *n;
	bool gone = true;

	pthread_mutex_lock(&ll->lock);
	n = fsll_node_find_id(ll, id);
	if (n) {
		if (n->renamed || n->nlookup <= nlookup) {
			fsll_node_drop(ll, n);
		} else {
			n->nlookup -= nlookup;
			gone = false;
		}
	}
	pthread_mutex_unlock(&ll->lock);
	if (gone)
		fsll_rh_drop(ll, id);
}

/*
 * getattr of path for ino: as the operation says, except for a file
 * sized at open in no-open mode (a virtual file's text), told through
 * its no-open handle (made anew when a second old), its mtime's
 * nanoseconds that handle's generation so that a text made anew drops
 * the kernel's pages. *timeout_r: how long the kernel may keep it (0
 * for such a file: every read asks again).
 */
static int fsll_getattr_of(struct fsll *ll, uint64_t ino, const char *path,
			   struct stat *st, struct fuse_file_info *fi,
			   double *timeout_r)
{
	struct fsll_rh *h;
	int rc, err;

	memset(st, 0, sizeof(*st));
	*timeout_r = ll->attr_timeout;
	/* A getattr the kernel makes for a read (fh 0: no open) is as
	 * one without a file. */
	if (ll->no_open && fi && !fi->fh)
		fi = NULL;
	if (!ll->no_open || fi || !path || !ll->sized_at_open ||
	    !ll->sized_at_open(path))
		return ll->ops->getattr(path, st, fi);
	h = fsll_rh_get(ll, ino, path, true, &err);
	if (!h)
		return -err;
	rc = ll->ops->getattr(path, st, &h->fi);
	st->st_mtim.tv_nsec = (long)(h->gen % 1000000000u);
	fsll_rh_put(ll, h);
	*timeout_r = 0;
	return rc;
}

/* getattr of path and an entry reply for (parent, name); the common end
 * of lookup, mkdir, link and create (fi set: the new open file). */
static int fsll_stat_entry(struct fsll *ll, uint64_t parent, const char *name,
			   const char *path, struct fuse_file_info *fi,
			   struct fuse_entry_param *e)
{
	bool sized = ll->no_open && !fi && ll->sized_at_open &&
		     ll->sized_at_open(path);
	double timeout = ll->attr_timeout;
	struct stat st;
	uint64_t id;
	int rc;

	memset(&st, 0, sizeof(st));
	rc = ll->ops->getattr(path, &st, fi);
	if (rc < 0)
		return rc;
	id = fsll_enter(ll, parent, name, path, &st);
	if (!id)
		return -ENOMEM;
	/* A file sized at open (no-open mode): its size is its text's,
	 * told again at every read. */
	if (sized && fsll_getattr_of(ll, id, path, &st, NULL, &timeout) < 0)
		timeout = 0;
	fsll_entry(ll, e, id, &st);
	e->attr_timeout = timeout;
	return 0;
}

/* Sends an entry reply; the kernel did not take it (an interrupted
 * request): the lookup is forgotten again. */
static void fsll_reply_entry(struct fsll *ll, fuse_req_t req,
			     const struct fuse_entry_param *e)
{
	if (fuse_reply_entry(req, e) == -ENOENT)
		fsll_forget_one(ll, e->ino, 1);
}

static void fsll_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fsll *ll = userdata;
	struct fuse_config cfg;
	void *pd;

	memset(&cfg, 0, sizeof(cfg));
	cfg.entry_timeout = 1;
	cfg.attr_timeout = 1;
	fsll_ctx.private_data = ll->private_data;
	if (ll->ops->init) {
		pd = ll->ops->init(conn, &cfg);
		if (pd)
			ll->private_data = pd;
	}
	ll->entry_timeout = cfg.entry_timeout;
	ll->attr_timeout = cfg.attr_timeout;
}

static void fsll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_LOOKUP);
	struct fuse_entry_param e;
	int rc;
	char *path;

	if (!fsll_allowed(ll, req))
		return;
	path = fsll_req_child(ll, req, parent, name);
	if (!path)
		return;
	rc = fsll_stat_entry(ll, parent, name, path, NULL, &e);
	free(path);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fsll_reply_entry(ll, req, &e);
}

static void fsll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fsll *ll = fuse_req_userdata(req);

	atomic_fetch_add_explicit(&ll->requests[FSLL_OP_FORGET], 1,
				  memory_order_relaxed);
	fsll_forget_one(ll, ino, nlookup);
	fuse_reply_none(req);
}

static void fsll_forget_multi(fuse_req_t req, size_t count,
			      struct fuse_forget_data *forgets)
{
	struct fsll *ll = fuse_req_userdata(req);
	size_t i;

	atomic_fetch_add_explicit(&ll->requests[FSLL_OP_FORGET], 1,
				  memory_order_relaxed);
	for (i = 0; i < count; i++)
		fsll_forget_one(ll, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

/* The path for a request on ino that may carry an open file (fi): NULL
 * is then allowed for a removed file, as libfuse's hard_remove does.
 * False when the request was answered already (an error). */
static bool fsll_path_fi(struct fsll *ll, fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi, char **path_r)
{
	int err;

	*path_r = fsll_node_path(ll, ino, &err);
	if (*path_r || (fi && err == ESTALE))
		return true;
	fuse_reply_err(req, err);
	return false;
}

static void fsll_getattr(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_GETATTR);
	struct stat st;
	double timeout;
	char *path;
	int rc;

	if (!fsll_allowed(ll, req))
		return;
	if (!fsll_path_fi(ll, req, ino, fi, &path))
		return;
	rc = fsll_getattr_of(ll, ino, path, &st, fi, &timeout);
	free(path);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, timeout);
}

/* setattr, as the separate path operations it stands for, in libfuse's
 * high-level order: mode, owner, size, times. */
static void fsll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			 int to_set, struct fuse_file_info *fi)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_SETATTR);
	const struct fuse_operations *o = ll->ops;
	struct stat st;
	char *path;
	int rc = 0;

	if (!fsll_allowed(ll, req))
		return;
	if (!fsll_path_fi(ll, req, ino, fi, &path))
		return;
	if (to_set & FUSE_SET_ATTR_MODE)
		rc = o->chmod ? o->chmod(path, attr->st_mode, fi) : -ENOSYS;
	if (rc == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		rc = o->chown ? o->chown(path,
					 (to_set & FUSE_SET_ATTR_UID)
						 ? attr->st_uid
						 : (uid_t)-1,
					 (to_set & FUSE_SET_ATTR_GID)
						 ? attr->st_gid
						 : (gid_t)-1,
					 fi)
			      : -ENOSYS;
	if (rc == 0 && (to_set & FUSE_SET_ATTR_SIZE))
		rc = o->truncate ? o->truncate(path, attr->st_size, fi)
				 : -ENOSYS;
	if (rc == 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec tv[2] = {{.tv_nsec = UTIME_OMIT},
					 {.tv_nsec = UTIME_OMIT}};

		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		rc = o->utimens ? o->utimens(path, tv, fi) : -ENOSYS;
	}
	if (rc == 0) {
		memset(&st, 0, sizeof(st));
		rc = o->getattr(path, &st, fi);
	}
	free(path);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, ll->attr_timeout);
}

static void fsll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_READLINK);
	char buf[PATH_MAX + 1], *path;
	int rc;

	if (!fsll_allowed(ll, req))
		return;
	path = fsll_req_path(ll, req, ino);
	if (!path)
		return;
	rc = ll->ops->readlink ? ll->ops->readlink(path, buf, sizeof(buf))
			       : -ENOSYS;
	free(path);
	buf[sizeof(buf) - 1] = '\0';
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, buf);
}

static void fsll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_MKDIR);
	struct fuse_entry_param e;
	int rc;
	char *path;

	if (!fsll_allowed(ll, req))
		return;
	path = fsll_req_child(ll, req, parent, name);
	if (!path)
		return;
	rc = ll->ops->mkdir ? ll->ops->mkdir(path, mode) : -ENOSYS;
	if (rc == 0)
		rc = fsll_stat_entry(ll, parent, name, path, NULL, &e);
	free(path);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fsll_reply_entry(ll, req, &e);
}

/* unlink and rmdir: the node leaves its name once the operation did. */
static void fsll_remove(fuse_req_t req, fuse_ino_t parent, const char *name,
			bool dir)
{
	struct fsll *ll = fsll_begin(req, dir ? FSLL_OP_RMDIR : FSLL_OP_UNLINK);
	int rc;
	char *path;

	if (!fsll_allowed(ll, req))
		return;
	path = fsll_req_child(ll, req, parent, name);
	if (!path)
		return;
	if (dir)
		rc = ll->ops->rmdir ? ll->ops->rmdir(path) : -ENOSYS;
	else
		rc = ll->ops->unlink ? ll->ops->unlink(path) : -ENOSYS;
	free(path);
	if (rc == 0) {
		pthread_mutex_lock(&ll->lock);
		fsll_node_unname(ll, fsll_node_find_name(ll, parent, name));
		pthread_mutex_unlock(&ll->lock);
	}
	fuse_reply_err(req, -rc);
}

static void fsll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fsll_remove(req, parent, name, false);
}

static void fsll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fsll_remove(req, parent, name, true);
}

/*
 * rename: the kernel keeps the source's node id under the new name, so
 * the node follows: a stored one is renamed; a message's own (computed)
 * id, which would now resolve to its old place or nowhere, gets a
 * stored node under the new name until the kernel forgets it.
 */
static void fsll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			fuse_ino_t newparent, const char *newname,
			unsigned int flags)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_RENAME);
	struct fsll_node *n, *t;
	char *from, *to = NULL;
	struct stat st;
	uint64_t computed = 0;
	int err, rc;

	if (!fsll_allowed(ll, req))
		return;
	from = fsll_node_child_path(ll, parent, name, &err);
	if (from)
		to = fsll_node_child_path(ll, newparent, newname, &err);
	if (!from || !to) {
		free(from);
		fuse_reply_err(req, err);
		return;
	}
	memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&ll->lock);
	n = fsll_node_find_name(ll, parent, name);
	pthread_mutex_unlock(&ll->lock);
	if (!n && ll->ops->getattr(from, &st, NULL) == 0 &&
	    fsll_node_computed(ll, (uint64_t)st.st_ino, from))
		computed = (uint64_t)st.st_ino;
	rc = ll->ops->rename ? ll->ops->rename(from, to, flags) : -ENOSYS;
	free(from);
	free(to);
	if (rc == 0) {
		pthread_mutex_lock(&ll->lock);
		t = fsll_node_find_name(ll, newparent, newname);
		n = fsll_node_find_name(ll, parent, name);
		if (t != n)
			fsll_node_unname(ll, t);
		if (n && t != n) {
			uint64_t id = n->id, nl = n->nlookup;
			bool renamed = n->renamed;

			fsll_node_drop(ll, n);
			n = fsll_node_add(ll, id, newparent, newname);
			if (n) {
				n->nlookup = nl;
				n->renamed = renamed;
			}
		} else if (!n && computed) {
			t = fsll_node_find_id(ll, computed);
			if (t)
				fsll_node_drop(ll, t);
			n = fsll_node_add(ll, computed, newparent, newname);
			if (n) {
				n->nlookup = 1;
				n->renamed = true;
			}
		}
		pthread_mutex_unlock(&ll->lock);
	}
	fuse_reply_err(req, -rc);
}

static void fsll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		      const char *newname)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_LINK);
	struct fuse_entry_param e;
	char *from, *to = NULL;
	int err, rc;

	if (!fsll_allowed(ll, req))
		return;
	from = fsll_node_path(ll, ino, &err);
	if (from)
		to = fsll_node_child_path(ll, newparent, newname, &err);
	if (!from || !to) {
		free(from);
		fuse_reply_err(req, err);
		return;
	}
	rc = ll->ops->link ? ll->ops->link(from, to) : -ENOSYS;
	if (rc == 0)
		rc = fsll_stat_entry(ll, newparent, newname, to, NULL, &e);
	free(from);
	free(to);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fsll_reply_entry(ll, req, &e);
}

/* Notes an open handle (before the reply: its release may come at
 * once); false when out of memory. A handle of 0 holds nothing. */
static bool fsll_open_note(struct fsll *ll, fuse_ino_t ino, bool dir,
			   const struct fuse_file_info *fi)
{
	struct fsll_open *o;

	if (!fi->fh)
		return true;
	o = calloc(1, sizeof(*o));
	if (!o)
		return false;
	o->fh = fi->fh;
	o->ino = ino;
	o->dir = dir;
	o->fi = *fi;
	pthread_mutex_lock(&ll->lock);
	HASH_ADD(hh, ll->opens, fh, sizeof(o->fh), o);
	pthread_mutex_unlock(&ll->lock);
	return true;
}

/* Forgets the open handle fh (released). */
static void fsll_open_forget(struct fsll *ll, uint64_t fh)
{
	struct fsll_open *o;

	if (!fh)
		return;
	pthread_mutex_lock(&ll->lock);
	HASH_FIND(hh, ll->opens, &fh, sizeof(fh), o);
	if (o)
		HASH_DEL(ll->opens, o);
	pthread_mutex_unlock(&ll->lock);
	free(o);
}

/* open and opendir: the operation, then the reply; an open the kernel
 * did not take (an interrupted request) is released again. */
static void fsll_open_any(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi, bool dir)
{
	struct fsll *ll = fsll_begin(req, dir ? FSLL_OP_OPENDIR : FSLL_OP_OPEN);
	int (*op_open)(const char *, struct fuse_file_info *) =
		dir ? ll->ops->opendir : ll->ops->open;
	int (*op_release)(const char *, struct fuse_file_info *) =
		dir ? ll->ops->releasedir : ll->ops->release;
	char *path;
	int rc;

	if (!fsll_allowed(ll, req))
		return;
	path = fsll_req_path(ll, req, ino);
	if (!path)
		return;
	rc = op_open ? op_open(path, fi) : 0;
	if (rc == 0 && !fsll_open_note(ll, ino, dir, fi)) {
		if (op_release)
			op_release(path, fi);
		rc = -ENOMEM;
	}
	if (rc < 0) {
		fuse_reply_err(req, -rc);
	} else if (fuse_reply_open(req, fi) == -ENOENT) {
		fsll_open_forget(ll, fi->fh);
		if (op_release)
			op_release(path, fi);
	}
	free(path);
}

/* release and releasedir: never refused; the path is NULL for a file
 * removed meanwhile. */
static void fsll_release_any(fuse_req_t req, fuse_ino_t ino,
			     struct fuse_file_info *fi, bool dir)
{
	struct fsll *ll =
		fsll_begin(req, dir ? FSLL_OP_RELEASEDIR : FSLL_OP_RELEASE);
	int (*op_release)(const char *, struct fuse_file_info *) =
		dir ? ll->ops->releasedir : ll->ops->release;
	char *path;
	int err;

	path = fsll_node_path(ll, ino, &err);
	fsll_open_forget(ll, fi->fh);
	if (op_release)
		op_release(path, fi);
	free(path);
	fuse_reply_err(req, 0);
}

static void fsll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fsll *ll = fuse_req_userdata(req);

	if (ll->no_open) {
		/* Once: the kernel sends no OPEN nor RELEASE for files
		 * from now on, and keeps their pages between opens. */
		atomic_fetch_add_explicit(&ll->requests[FSLL_OP_OPEN], 1,
					  memory_order_relaxed);
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fsll_open_any(req, ino, fi, false);
}

static void fsll_opendir(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	fsll_open_any(req, ino, fi, true);
}

static void fsll_release(fuse_req_t req, fuse_ino_t ino,
			 struct fuse_file_info *fi)
{
	fsll_release_any(req, ino, fi, false);
}

static void fsll_releasedir(fuse_req_t req, fuse_ino_t ino,
			    struct fuse_file_info *fi)
{
	fsll_release_any(req, ino, fi, true);
}

static void fsll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_READ);
	struct fsll_rh *h = NULL;
	char *path = NULL, *buf;
	int rc, err;

	if (!fsll_allowed(ll, req))
		return;
	/* The hot path: a handle serves the read, no path is built. In
	 * no-open mode the handle an open would have made is kept per
	 * inode; only its making needs the path. */
	if (ll->no_open && !fi->fh) {
		h = fsll_rh_find(ll, ino);
		if (!h) {
			if (!fsll_path_fi(ll, req, ino, NULL, &path))
				return;
			h = fsll_rh_get(ll, ino, path, false, &err);
			free(path);
			path = NULL;
			if (!h) {
				fuse_reply_err(req, err);
				return;
			}
		}
		fi = &h->fi;
	}
	buf = malloc(size ? size : 1);
	if (!buf) {
		if (h)
			fsll_rh_put(ll, h);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = fi->fh ? ll->ops->read(NULL, buf, size, off, fi) : -EBADF;
	if (h)
		fsll_rh_put(ll, h);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, buf, (size_t)rc);
	free(buf);
}

static void fsll_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		       size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_WRITE);
	int rc;

	(void)ino;
	if (!fsll_allowed(ll, req))
		return;
	/* A write always comes on an open handle, which knows its file:
	 * no path is built. */
	rc = ll->ops->write ? ll->ops->write(NULL, buf, size, off, fi)
			    : -ENOSYS;
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, (size_t)rc);
}

static void fsll_flush(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_FLUSH);
	char *path;
	int rc;

	/* No-open mode (a read-only mount): nothing to store at a close;
	 * once, and the kernel sends no FLUSH from now on. */
	if (ll->no_open) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (!fsll_path_fi(ll, req, ino, fi, &path))
		return;
	rc = ll->ops->flush ? ll->ops->flush(path, fi) : 0;
	free(path);
	fuse_reply_err(req, -rc);
}

/* One readdir reply being filled. */
struct fsll_dirbuf {
	struct fsll *ll;
	fuse_req_t req;
	fuse_ino_t dir;
	const char *path; /* the directory's */
	bool plus;
	char *buf;
	size_t size, used;
	int err;
};

/* The operations' fill callback: adds an entry while it fits (1 when
 * full). In readdirplus an entry that fits gets its node, one lookup
 * counted, as a LOOKUP would; "." and ".." get none. */
static int fsll_fill(void *ctx, const char *name, const struct stat *st,
		     off_t off, enum fuse_fill_dir_flags flags)
{
	struct fsll_dirbuf *d = ctx;
	struct fuse_entry_param e;
	struct stat s;
	size_t need;
	bool dot = !strcmp(name, ".") || !strcmp(name, "..");

	if (off <= 0) {
		/* every table gives offsets; a whole listing at once is
		 * not supported */
		d->err = EIO;
		return 1;
	}
	memset(&s, 0, sizeof(s));
	if (st) {
		s.st_ino = st->st_ino;
		s.st_mode = st->st_mode;
	}
	if (!d->plus) {
		need = fuse_add_direntry(d->req, NULL, 0, name, NULL, 0);
		if (d->used + need > d->size)
			return 1;
		fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used,
				  name, &s, off);
		d->used += need;
		return 0;
	}
	need = fuse_add_direntry_plus(d->req, NULL, 0, name, NULL, 0);
	if (d->used + need > d->size)
		return 1;
	memset(&e, 0, sizeof(e));
	e.attr = s;
	if (st && (flags & FUSE_FILL_DIR_PLUS) && !dot) {
		size_t dl = strcmp(d->path, "/") ? strlen(d->path) : 0,
		       nl = strlen(name);
		char full[PATH_MAX + NAME_MAX + 2];

		if (dl + nl + 2 <= sizeof(full)) {
			memcpy(full, d->path, dl);
			full[dl] = '/';
			memcpy(full + dl + 1, name, nl + 1);
			e.ino = fsll_enter(d->ll, d->dir, name, full, st);
		}
		if (e.ino) {
			e.attr = *st;
			e.attr_timeout = d->ll->attr_timeout;
			e.entry_timeout = d->ll->entry_timeout;
		}
	}
	fuse_add_direntry_plus(d->req, d->buf + d->used, d->size - d->used,
			       name, &e, off);
	d->used += need;
	return 0;
}

static void fsll_readdir_any(fuse_req_t req, fuse_ino_t ino, size_t size,
			     off_t off, struct fuse_file_info *fi, bool plus)
{
	struct fsll *ll =
		fsll_begin(req, plus ? FSLL_OP_READDIRPLUS : FSLL_OP_READDIR);
	struct fsll_dirbuf d = {.ll = ll, .req = req, .dir = ino, .plus = plus};
	char *path;
	int rc;

	if (!fsll_allowed(ll, req))
		return;
	path = fsll_req_path(ll, req, ino);
	if (!path)
		return;
	d.path = path;
	d.size = size;
	d.buf = malloc(size ? size : 1);
	if (!d.buf) {
		free(path);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = ll->ops->readdir(path, &d, fsll_fill, off, fi,
			      plus ? FUSE_READDIR_PLUS : 0);
	if (rc == 0 && d.err)
		rc = -d.err;
	if (rc < 0 && d.used == 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
	free(path);
}

static void fsll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	fsll_readdir_any(req, ino, size, off, fi, false);
}

static void fsll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			     off_t off, struct fuse_file_info *fi)
{
	fsll_readdir_any(req, ino, size, off, fi, true);
}

static void fsll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_STATFS);
	struct statvfs st;
	char *path;
	int rc;

	if (!fsll_allowed(ll, req))
		return;
	path = fsll_req_path(ll, req, ino);
	if (!path)
		return;
	memset(&st, 0, sizeof(st));
	rc = ll->ops->statfs ? ll->ops->statfs(path, &st) : 0;
	if (!ll->ops->statfs) {
		st.f_namemax = 255;
		st.f_bsize = 512;
	}
	free(path);
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_statfs(req, &st);
}

static void fsll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			  const char *value, size_t size, int flags)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_SETXATTR);
	char *path;
	int rc;

	if (!fsll_allowed(ll, req))
		return;
	path = fsll_req_path(ll, req, ino);
	if (!path)
		return;
	rc = ll->ops->setxattr
		     ? ll->ops->setxattr(path, name, value, size, flags)
		     : -ENOSYS;
	free(path);
	fuse_reply_err(req, -rc);
}

/* getxattr and listxattr: the size alone when asked with size 0. */
static void fsll_xattr_reply(fuse_req_t req, int rc, size_t size,
			     const char *buf)
{
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)rc);
	else
		fuse_reply_buf(req, buf, (size_t)rc);
}

/* What getxattr and listxattr need first: the caller allowed, the
 * node's path and a buffer of size bytes (NULL for size 0, a query of
 * the length). False when it replied already. */
static bool fsll_xattr_begin(struct fsll *ll, fuse_req_t req, fuse_ino_t ino,
			     size_t size, char **path_r, char **buf_r)
{
	int err;

	*buf_r = NULL;
	if (!fsll_allowed(ll, req))
		return false;
	*path_r = fsll_node_path(ll, ino, &err);
	if (!*path_r || (size && !(*buf_r = malloc(size)))) {
		fuse_reply_err(req, *path_r ? ENOMEM : err);
		free(*path_r);
		return false;
	}
	return true;
}

static void fsll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			  size_t size)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_GETXATTR);
	char *path, *buf;
	int rc;

	if (!fsll_xattr_begin(ll, req, ino, size, &path, &buf))
		return;
	rc = ll->ops->getxattr ? ll->ops->getxattr(path, name, buf, size)
			       : -ENOSYS;
	free(path);
	fsll_xattr_reply(req, rc, size, buf);
	free(buf);
}

static void fsll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_LISTXATTR);
	char *path, *buf;
	int rc;

	if (!fsll_xattr_begin(ll, req, ino, size, &path, &buf))
		return;
	rc = ll->ops->listxattr ? ll->ops->listxattr(path, buf, size) : -ENOSYS;
	free(path);
	fsll_xattr_reply(req, rc, size, buf);
	free(buf);
}

static void fsll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_REMOVEXATTR);
	char *path;
	int rc;

	if (!fsll_allowed(ll, req))
		return;
	path = fsll_req_path(ll, req, ino);
	if (!path)
		return;
	rc = ll->ops->removexattr ? ll->ops->removexattr(path, name) : -ENOSYS;
	free(path);
	fuse_reply_err(req, -rc);
}

static void fsll_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, struct fuse_file_info *fi)
{
	struct fsll *ll = fsll_begin(req, FSLL_OP_CREATE);
	struct fuse_entry_param e;
	int rc;
	char *path;

	if (!fsll_allowed(ll, req))
		return;
	path = fsll_req_child(ll, req, parent, name);
	if (!path)
		return;
	if (!ll->ops->create) {
		free(path);
		fuse_reply_err(req, ENOSYS);
		return;
	}
	rc = ll->ops->create(path, mode, fi);
	if (rc == 0) {
		rc = fsll_stat_entry(ll, parent, name, path, fi, &e);
		if (rc == 0 && !fsll_open_note(ll, e.ino, false, fi))
			rc = -ENOMEM;
		if (rc < 0 && ll->ops->release)
			ll->ops->release(path, fi);
	}
	if (rc < 0) {
		free(path);
		fuse_reply_err(req, -rc);
		return;
	}
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		fsll_open_forget(ll, fi->fh);
		if (ll->ops->release)
			ll->ops->release(path, fi);
		fsll_forget_one(ll, e.ino, 1);
	}
	free(path);
}

static const struct fuse_lowlevel_ops fsll_ops = {
	.init = fsll_init,
	.lookup = fsll_lookup,
	.forget = fsll_forget,
	.forget_multi = fsll_forget_multi,
	.getattr = fsll_getattr,
	.setattr = fsll_setattr,
	.readlink = fsll_readlink,
	.mkdir = fsll_mkdir,
	.unlink = fsll_unlink,
	.rmdir = fsll_rmdir,
	.rename = fsll_rename,
	.link = fsll_link,
	.open = fsll_open,
	.read = fsll_read,
	.write = fsll_write,
	.flush = fsll_flush,
	.release = fsll_release,
	.opendir = fsll_opendir,
	.readdir = fsll_readdir,
	.readdirplus = fsll_readdirplus,
	.releasedir = fsll_releasedir,
	.statfs = fsll_statfs,
	.setxattr = fsll_setxattr,
	.getxattr = fsll_getxattr,
	.listxattr = fsll_listxattr,
	.removexattr = fsll_removexattr,
	.create = fsll_create,
};

struct fsll *fsll_new(struct fuse_args *args, const struct fuse_operations *ops,
		      void *private_data, unsigned timeout_s,
		      fsll_resolve_fn resolve, fsll_ino_fn path_ino,
		      void *resolve_ctx)
{
	struct fsll *ll = calloc(1, sizeof(*ll));

	if (!ll)
		return NULL;
	ll->ops = ops;
	ll->owner = getuid();
	ll->timeout_s = timeout_s;
	ll->private_data = private_data;
	ll->resolve = resolve;
	ll->path_ino = path_ino;
	ll->resolve_ctx = resolve_ctx;
	ll->next_id = FUSE_ROOT_ID + 1;
	pthread_mutex_init(&ll->lock, NULL);
	ll->se = fuse_session_new(args, &fsll_ops, sizeof(fsll_ops), ll);
	if (!ll->se) {
		pthread_mutex_destroy(&ll->lock);
		free(ll);
		return NULL;
	}
	return ll;
}

struct fuse_session *fsll_session(struct fsll *ll)
{
	return ll->se;
}

void fsll_set_no_open(struct fsll *ll, bool (*sized_at_open)(const char *path))
{
	ll->no_open = true;
	ll->sized_at_open = sized_at_open;
}

int fsll_store(struct fsll *ll, uint64_t ino, const void *data, size_t len)
{
	struct fuse_bufvec bv = FUSE_BUFVEC_INIT(len);
	struct fsll_open *o, *tmp;
	bool writing = false;

	pthread_mutex_lock(&ll->lock);
	HASH_ITER(hh, ll->opens, o, tmp)
	{
		if (o->ino == ino && (o->fi.flags & O_ACCMODE) != O_RDONLY) {
			writing = true;
			break;
		}
	}
	pthread_mutex_unlock(&ll->lock);
	if (writing)
		return -EBUSY;
	bv.buf[0].mem = (void *)data;
	return fuse_lowlevel_notify_store(ll->se, ino, 0, &bv, 0);
}

int fsll_invalidate_path(struct fsll *ll, const char *path)
{
	uint64_t id = fsll_node_path_id(ll, path);

	if (!id)
		return -ENOENT;
	fsll_rh_drop(ll, id);
	return fuse_lowlevel_notify_inval_inode(ll->se, id, 0, 0);
}

int fsll_invalidate_entry(struct fsll *ll, const char *dir, const char *name)
{
	uint64_t id = fsll_node_path_id(ll, dir);

	if (!id)
		return -ENOENT;
	return fuse_lowlevel_notify_inval_entry(ll->se, id, name, strlen(name));
}

size_t fsll_format_requests(struct fsll *ll, char *buf, size_t size)
{
	size_t used = 0;
	unsigned i;
	int n;

	if (!size)
		return 0;
	buf[0] = '\0';
	for (i = 0; i < FSLL_OP_MAX; i++) {
		uint64_t c = atomic_load_explicit(&ll->requests[i],
						  memory_order_relaxed);

		if (!c)
			continue;
		n = snprintf(buf + used, size - used, "%s%s:%llu",
			     used ? " " : "", fsll_op_names[i],
			     (unsigned long long)c);
		if (n < 0 || (size_t)n >= size - used) {
			buf[used] = '\0';
			break;
		}
		used += (size_t)n;
	}
	return used;
}

size_t fsll_stored_nodes(struct fsll *ll)
{
	size_t n;

	pthread_mutex_lock(&ll->lock);
	n = HASH_CNT(hh_id, ll->by_id);
	pthread_mutex_unlock(&ll->lock);
	return n;
}

void fsll_release_open(struct fsll *ll)
{
	struct fsll_open *opens, *o, *tmp;
	struct fsll_rh *h, *htmp, *unused = NULL;
	char *path;
	int err;

	pthread_mutex_lock(&ll->lock);
	opens = ll->opens;
	ll->opens = NULL;
	/* No-open handles: the unused ones end below, those in use with
	 * their last request. */
	HASH_ITER(hh, ll->rhs, h, htmp)
	{
		if (fsll_rh_unlink(ll, h))
			HASH_ADD(hh, unused, ino, sizeof(h->ino), h);
	}
	pthread_mutex_unlock(&ll->lock);
	/* The operations read the context of a request: the mount's
	 * owner's, in this thread. */
	memset(&fsll_ctx, 0, sizeof(fsll_ctx));
	fsll_ctx.uid = getuid();
	fsll_ctx.gid = getgid();
	fsll_ctx.pid = getpid();
	fsll_ctx.private_data = ll->private_data;
	HASH_ITER(hh, opens, o, tmp)
	{
		int (*op_release)(const char *, struct fuse_file_info *) =
			o->dir ? ll->ops->releasedir : ll->ops->release;

		HASH_DEL(opens, o);
		/* A file open for writing is not released: its release
		 * would store what may be half written. */
		if (op_release &&
		    (o->dir || ((o->fi.flags & O_ACCMODE) == O_RDONLY &&
				!(o->fi.flags & O_TRUNC)))) {
			path = fsll_node_path(ll, o->ino, &err);
			op_release(path, &o->fi);
			free(path);
		}
		free(o);
	}
	HASH_ITER(hh, unused, h, htmp)
	{
		HASH_DEL(unused, h);
		fsll_rh_release(ll, h);
	}
}

void fsll_free(struct fsll *ll)
{
	struct fsll_node *n, *tmp;
	struct fsll_open *o, *otmp;

	if (!ll)
		return;
	fuse_session_destroy(ll->se);
	/* fsll_release_open() ran before the store went: only handles of
	 * files open for writing are left, never released (the process is
	 * exiting; their temporary files go with the table of files being
	 * created). */
	HASH_ITER(hh, ll->opens, o, otmp)
	{
		HASH_DEL(ll->opens, o);
		free(o);
	}
	HASH_CLEAR(hh_name, ll->by_name);
	HASH_ITER(hh_id, ll->by_id, n, tmp)
	{
		HASH_DELETE(hh_id, ll->by_id, n);
		free(n);
	}
	pthread_mutex_destroy(&ll->lock);
	free(ll);
}
