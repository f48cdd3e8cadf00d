// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fusefloor: the fastest read-only FUSE file system over a local
 * directory we know how to write, for `make bench` only. A grep through
 * it measures what FUSE itself costs on this machine: the floor under
 * mailfs's figures for cached mail. It is on libfuse's low-level API and
 * asks the kernel for as few requests as it can be made to send:
 *
 *  - OPEN and OPENDIR are answered ENOSYS: the kernel then stops sending
 *    them (and RELEASE, RELEASEDIR) for the whole connection, keeps pages
 *    and directory listings between opens, and READ comes with fh 0;
 *  - FLUSH, ACCESS and LISTXATTR are answered ENOSYS, after which the
 *    kernel stops sending them;
 *  - every listing is READDIRPLUS (READDIRPLUS_AUTO cleared), so each
 *    entry comes with its attributes: no LOOKUP per file after a listing;
 *  - entries and attributes are valid for a day; the mount is read-only,
 *    so that no read makes the kernel drop cached attributes (atime).
 *
 * A node's id is the source's inode number (the source root's is 1). The
 * node table holds one entry per inode the kernel knows (looked up or
 * listed with attributes, and not yet forgotten): its number, the
 * kernel's reference count and its path below the source. Each request
 * is one or two system calls on that path; READ opens the file, reads
 * and closes it. The source is one file system: a mount point below it
 * is not crossed.
 *
 * The requests served, by kind, are in the root's extended attribute
 * user.floor.requests ("LOOKUP:3 READ:200 ..."), as mailfs has them in
 * user.mail.status: every kind a read-only mount of plain files and
 * directories gets, and the GETXATTR that reads them. Being there, like
 * mailfs's attributes, it makes the kernel ask for the others too (ls -l
 * asks for two a file, answered ENODATA), where a file system without
 * any would answer ENOSYS once; grep asks for none.
 *
 *   fusefloor [-s] [-f] [-O|-F] SOURCE_DIR MOUNTPOINT [FUSE options]
 *
 * -s serves the requests in one thread (fuse_session_loop), else in up to
 * 16 threads (fuse_session_loop_mt), as mailfs does.
 *
 * Two more modes give the floor under a writable mount, which must hear
 * of every close to report a failed store to close():
 *  -O answers OPEN (handle 0, keep the page cache, no FLUSH) and RELEASE,
 *     as a writable mailfs mount does: two requests per file opened;
 *  -F answers FLUSH (no error) instead of ENOSYS, with OPEN still
 *     ENOSYS: what no-open writes would cost, the kernel's one signal of
 *     a close then being the FLUSH it sends at every close.
 */
#define FUSE_USE_VERSION 314
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <uthash.h>
#include <unistd.h>

/* One inode the kernel knows. */
struct fusefloor_node {
	ino_t ino; /* node id: the source's st_ino, 1 for the root */
	uint64_t nlookup; /* the kernel's references not yet forgotten */
	UT_hash_handle hh; /* in fusefloor_nodes, by ino */
	char path[]; /* below the source ("." for the root) */
};

/* The request kinds counted for user.floor.requests. */
enum fusefloor_op {
	FUSEFLOOR_LOOKUP,
	FUSEFLOOR_FORGET,
	FUSEFLOOR_GETATTR,
	FUSEFLOOR_OPEN,
	FUSEFLOOR_READ,
	FUSEFLOOR_FLUSH,
	FUSEFLOOR_RELEASE,
	FUSEFLOOR_OPENDIR,
	FUSEFLOOR_READDIR,
	FUSEFLOOR_READDIRPLUS,
	FUSEFLOOR_GETXATTR,
	FUSEFLOOR_LISTXATTR,
	FUSEFLOOR_ACCESS,
	FUSEFLOOR_STATFS,
	FUSEFLOOR_OPS
};

static const char *const fusefloor_op_names[FUSEFLOOR_OPS] = {
	"LOOKUP",   "FORGET",	 "GETATTR", "OPEN",    "READ",
	"FLUSH",    "RELEASE",	 "OPENDIR", "READDIR", "READDIRPLUS",
	"GETXATTR", "LISTXATTR", "ACCESS",  "STATFS",
};

static const double fusefloor_timeout = 86400; /* entries, attributes */
static int fusefloor_src = -1; /* the source directory */
static dev_t fusefloor_dev; /* its file system */
static ino_t fusefloor_src_ino; /* its inode number */
static struct fusefloor_node *fusefloor_nodes; /* by ino */
static pthread_mutex_t fusefloor_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic unsigned long long fusefloor_counts[FUSEFLOOR_OPS];
static int fusefloor_answer_open; /* -O */
static int fusefloor_answer_flush; /* -F */

/* Counts one request of kind op. */
static void fusefloor_count(enum fusefloor_op op)
{
	atomic_fetch_add_explicit(&fusefloor_counts[op], 1,
				  memory_order_relaxed);
}

/* The node with id ino, or NULL. The kernel holds a reference on a node
 * while a request names it, so the node outlives the request without the
 * lock. */
static struct fusefloor_node *fusefloor_node(fuse_ino_t ino)
{
	struct fusefloor_node *n;
	ino_t key = (ino_t)ino;

	pthread_mutex_lock(&fusefloor_lock);
	HASH_FIND(hh, fusefloor_nodes, &key, sizeof(key), n);
	pthread_mutex_unlock(&fusefloor_lock);
	return n;
}

/* The node id of a source inode: its st_ino, 1 for the source root. */
static ino_t fusefloor_id(const struct stat *st)
{
	return st->st_ino == fusefloor_src_ino ? FUSE_ROOT_ID : st->st_ino;
}

/* Stats name in the directory of parent (a node) into e, and takes one
 * kernel reference on its node (added if new): what LOOKUP and each
 * READDIRPLUS entry give the kernel. dirfd is the parent's directory if
 * open, else -1. Returns 0 or an errno. */
static int fusefloor_lookup_in(struct fusefloor_node *parent, int dirfd,
			       const char *name, struct fuse_entry_param *e)
{
	struct fusefloor_node *n;
	char path[PATH_MAX];
	int len;

	if (strcmp(parent->path, ".") == 0)
		len = snprintf(path, sizeof(path), "%s", name);
	else
		len = snprintf(path, sizeof(path), "%s/%s", parent->path, name);
	if (len < 0 || (size_t)len >= sizeof(path))
		return ENAMETOOLONG;
	memset(e, 0, sizeof(*e));
	if (fstatat(dirfd >= 0 ? dirfd : fusefloor_src,
		    dirfd >= 0 ? name : path, &e->attr,
		    AT_SYMLINK_NOFOLLOW) < 0)
		return errno;
	if (e->attr.st_dev != fusefloor_dev)
		return EXDEV;
	/* Inode 1 below the root would take the root's node id. */
	if (e->attr.st_ino == FUSE_ROOT_ID &&
	    e->attr.st_ino != fusefloor_src_ino)
		return EIO;
	e->attr.st_ino = fusefloor_id(&e->attr);
	e->ino = e->attr.st_ino;
	e->attr_timeout = fusefloor_timeout;
	e->entry_timeout = fusefloor_timeout;
	pthread_mutex_lock(&fusefloor_lock);
	HASH_FIND(hh, fusefloor_nodes, &e->attr.st_ino, sizeof(ino_t), n);
	if (!n) {
		n = malloc(sizeof(*n) + (size_t)len + 1);
		if (!n) {
			pthread_mutex_unlock(&fusefloor_lock);
			return ENOMEM;
		}
		n->ino = e->attr.st_ino;
		n->nlookup = 0;
		memcpy(n->path, path, (size_t)len + 1);
		HASH_ADD(hh, fusefloor_nodes, ino, sizeof(n->ino), n);
	}
	n->nlookup++;
	pthread_mutex_unlock(&fusefloor_lock);
	return 0;
}

/* Drops count kernel references on node ino; the node goes with the
 * last (the root's stays). */
static void fusefloor_unref(fuse_ino_t ino, uint64_t count)
{
	struct fusefloor_node *n;
	ino_t key = (ino_t)ino;

	pthread_mutex_lock(&fusefloor_lock);
	HASH_FIND(hh, fusefloor_nodes, &key, sizeof(key), n);
	if (n && ino != FUSE_ROOT_ID) {
		n->nlookup -= count < n->nlookup ? count : n->nlookup;
		if (!n->nlookup) {
			HASH_DEL(fusefloor_nodes, n);
			free(n);
		}
	}
	pthread_mutex_unlock(&fusefloor_lock);
}

/* Every listing with attributes, pages and listings kept (the kernel's
 * default once OPEN is ENOSYS). */
static void fusefloor_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	if (!(conn->capable & FUSE_CAP_READDIRPLUS))
		fuse_log(FUSE_LOG_WARNING, "fusefloor: no READDIRPLUS in "
					   "this kernel: a LOOKUP per file\n");
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
}

static void fusefloor_lookup(fuse_req_t req, fuse_ino_t parent,
			     const char *name)
{
	struct fusefloor_node *p = fusefloor_node(parent);
	struct fuse_entry_param e;
	int err;

	fusefloor_count(FUSEFLOOR_LOOKUP);
	err = p ? fusefloor_lookup_in(p, -1, name, &e) : ESTALE;
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

static void fusefloor_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fusefloor_count(FUSEFLOOR_FORGET);
	fusefloor_unref(ino, nlookup);
	fuse_reply_none(req);
}

static void fusefloor_forget_multi(fuse_req_t req, size_t count,
				   struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++) {
		fusefloor_count(FUSEFLOOR_FORGET);
		fusefloor_unref(forgets[i].ino, forgets[i].nlookup);
	}
	fuse_reply_none(req);
}

static void fusefloor_getattr(fuse_req_t req, fuse_ino_t ino,
			      struct fuse_file_info *fi)
{
	struct fusefloor_node *n = fusefloor_node(ino);
	struct stat st;

	(void)fi;
	fusefloor_count(FUSEFLOOR_GETATTR);
	if (!n)
		fuse_reply_err(req, ESTALE);
	else if (fstatat(fusefloor_src, n->path, &st, AT_SYMLINK_NOFOLLOW) < 0)
		fuse_reply_err(req, errno);
	else {
		st.st_ino = n->ino;
		fuse_reply_attr(req, &st, fusefloor_timeout);
	}
}

/* OPEN, OPENDIR, FLUSH, ACCESS and LISTXATTR: ENOSYS once, and the
 * kernel sends no more (they are counted, as every request the kernel can
 * send a read-only mount is). With -O an OPEN is answered as a writable
 * mailfs mount answers a read-only open of a cached message: no handle,
 * pages kept, no FLUSH at close. */
static void fusefloor_open(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	(void)ino;
	fusefloor_count(FUSEFLOOR_OPEN);
	if (!fusefloor_answer_open) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	fi->fh = 0;
	fi->keep_cache = 1;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

/* RELEASE (-O only): nothing to free. */
static void fusefloor_release(fuse_req_t req, fuse_ino_t ino,
			      struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fusefloor_count(FUSEFLOOR_RELEASE);
	fuse_reply_err(req, 0);
}

static void fusefloor_opendir(fuse_req_t req, fuse_ino_t ino,
			      struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fusefloor_count(FUSEFLOOR_OPENDIR);
	fuse_reply_err(req, ENOSYS);
}

static void fusefloor_flush(fuse_req_t req, fuse_ino_t ino,
			    struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fusefloor_count(FUSEFLOOR_FLUSH);
	fuse_reply_err(req, fusefloor_answer_flush ? 0 : ENOSYS);
}

static void fusefloor_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	(void)ino;
	(void)mask;
	fusefloor_count(FUSEFLOOR_ACCESS);
	fuse_reply_err(req, ENOSYS);
}

static void fusefloor_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	(void)ino;
	(void)size;
	fusefloor_count(FUSEFLOOR_LISTXATTR);
	fuse_reply_err(req, ENOSYS);
}

/* The source's file system's figures (grep's fts asks, once a walk). */
static void fusefloor_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	(void)ino;
	fusefloor_count(FUSEFLOOR_STATFS);
	if (fstatvfs(fusefloor_src, &st) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &st);
}

/* Reads straight from the source file into the reply. */
static void fusefloor_read(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct fusefloor_node *n = fusefloor_node(ino);
	int fd;

	(void)fi;
	fusefloor_count(FUSEFLOOR_READ);
	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	fd = openat(fusefloor_src, n->path, O_RDONLY | O_NOFOLLOW);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
	close(fd);
}

/* A listing from offset off (a telldir() cookie, 0 at the start), as many
 * entries as fit in size bytes; with their attributes when plus. */
static void fusefloor_list(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, int plus)
{
	struct fusefloor_node *n = fusefloor_node(ino);
	size_t used = 0;
	struct dirent *d;
	char *out;
	DIR *dir;
	int fd, err = 0;

	if (!n) {
		fuse_reply_err(req, ESTALE);
		return;
	}
	out = malloc(size);
	fd = openat(fusefloor_src, n->path, O_RDONLY | O_DIRECTORY);
	dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!out || !dir) {
		err = out ? errno : ENOMEM;
		if (fd >= 0)
			close(fd);
		free(out);
		fuse_reply_err(req, err);
		return;
	}
	if (off)
		seekdir(dir, off);
	for (;;) {
		struct fuse_entry_param e;
		size_t len;
		off_t next;
		int dots;

		errno = 0;
		d = readdir(dir);
		if (!d) {
			err = errno; /* 0 at the end */
			break;
		}
		next = telldir(dir);
		dots = strcmp(d->d_name, ".") == 0 ||
		       strcmp(d->d_name, "..") == 0;
		memset(&e, 0, sizeof(e));
		e.attr.st_ino = d->d_ino;
		e.attr.st_mode = (mode_t)DTTOIF(d->d_type);

		/* The size first: an entry that does not fit must not be
		 * looked up (the kernel would never learn of the reference),
		 * and comes first in the next call. */
		len = plus ? fuse_add_direntry_plus(req, NULL, 0, d->d_name,
						    NULL, 0)
			   : fuse_add_direntry(req, NULL, 0, d->d_name, NULL,
					       0);
		if (used + len > size)
			break;
		/* "." and ".." without attributes (node id 0), as the kernel
		 * knows them; an entry that cannot be stat'ed is skipped. */
		if (plus && !dots &&
		    fusefloor_lookup_in(n, dirfd(dir), d->d_name, &e) != 0)
			continue;
		if (plus)
			fuse_add_direntry_plus(req, out + used, size - used,
					       d->d_name, &e, next);
		else
			fuse_add_direntry(req, out + used, size - used,
					  d->d_name, &e.attr, next);
		used += len;
	}
	closedir(dir);
	if (err && !used)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, out, used);
	free(out);
}

static void fusefloor_readdir(fuse_req_t req, fuse_ino_t ino, size_t size,
			      off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	fusefloor_count(FUSEFLOOR_READDIR);
	fusefloor_list(req, ino, size, off, 0);
}

static void fusefloor_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
				  off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	fusefloor_count(FUSEFLOOR_READDIRPLUS);
	fusefloor_list(req, ino, size, off, 1);
}

/* user.floor.requests of the root: the requests served so far, by kind.
 * Any other attribute is absent. */
static void fusefloor_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			       size_t size)
{
	char text[512];
	size_t used = 0;
	int i;

	fusefloor_count(FUSEFLOOR_GETXATTR);
	if (ino != FUSE_ROOT_ID || strcmp(name, "user.floor.requests") != 0) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	text[0] = '\0';
	for (i = 0; i < FUSEFLOOR_OPS; i++) {
		unsigned long long c = atomic_load_explicit(
			&fusefloor_counts[i], memory_order_relaxed);

		if (c)
			used += (size_t)snprintf(
				text + used, sizeof(text) - used, "%s%s:%llu",
				used ? " " : "", fusefloor_op_names[i], c);
	}
	if (!size)
		fuse_reply_xattr(req, used);
	else if (size < used)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, text, used);
}

static const struct fuse_lowlevel_ops fusefloor_ops = {
	.init = fusefloor_init,
	.lookup = fusefloor_lookup,
	.forget = fusefloor_forget,
	.forget_multi = fusefloor_forget_multi,
	.getattr = fusefloor_getattr,
	.open = fusefloor_open,
	.read = fusefloor_read,
	.flush = fusefloor_flush,
	.release = fusefloor_release,
	.opendir = fusefloor_opendir,
	.readdir = fusefloor_readdir,
	.readdirplus = fusefloor_readdirplus,
	.getxattr = fusefloor_getxattr,
	.listxattr = fusefloor_listxattr,
	.access = fusefloor_access,
	.statfs = fusefloor_statfs,
};

/* Serves the mount until it is unmounted: in one thread, or in up to 16
 * (mailfs's settings). */
static int fusefloor_loop(struct fuse_session *se, int single)
{
	struct fuse_loop_config *lc;
	int rc;

	if (single)
		return fuse_session_loop(se);
	lc = fuse_loop_cfg_create();
	if (!lc)
		return -1;
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_max_threads(lc, 16);
	rc = fuse_session_loop_mt(se, lc);
	fuse_loop_cfg_destroy(lc);
	return rc;
}

int main(int argc, char *argv[])
{
	struct fuse_cmdline_opts opts = {0};
	struct fuse_args args;
	struct fuse_session *se;
	struct fusefloor_node *root;
	struct stat st;
	int i, rc = 1;

	/* The same malloc settings as mailfs (main.c), so that memory
	 * figures compare. */
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	/* -O and -F are ours (taken out); the first argument that is not
	 * an option is the source; libfuse sees the rest. */
	for (i = 1; i < argc && argv[i][0] == '-';) {
		if (strcmp(argv[i], "-O") && strcmp(argv[i], "-F")) {
			i++;
			continue;
		}
		if (argv[i][1] == 'O')
			fusefloor_answer_open = 1;
		else
			fusefloor_answer_flush = 1;
		memmove(argv + i, argv + i + 1,
			(size_t)(argc - i) * sizeof(*argv));
		argc--;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: fusefloor [-s] [-f] [-O|-F] "
				"SOURCE_DIR MOUNTPOINT [FUSE options]\n");
		return 2;
	}
	fusefloor_src = open(argv[i], O_RDONLY | O_DIRECTORY);
	if (fusefloor_src < 0 || fstat(fusefloor_src, &st) < 0) {
		perror(argv[i]);
		return 1;
	}
	fusefloor_dev = st.st_dev;
	fusefloor_src_ino = st.st_ino;
	root = calloc(1, sizeof(*root) + 2);
	if (!root)
		return 1;
	root->ino = FUSE_ROOT_ID;
	strcpy(root->path, ".");
	HASH_ADD(hh, fusefloor_nodes, ino, sizeof(root->ino), root);
	memmove(argv + i, argv + i + 1, (size_t)(argc - i) * sizeof(*argv));
	args = (struct fuse_args)FUSE_ARGS_INIT(argc - 1, argv);
	if (fuse_parse_cmdline(&args, &opts) != 0 || !opts.mountpoint) {
		fprintf(stderr, "usage: fusefloor [-s] [-f] [-O|-F] "
				"SOURCE_DIR MOUNTPOINT [FUSE options]\n");
		goto out;
	}
	if (fuse_opt_add_arg(&args, "-oro,fsname=fusefloor") != 0)
		goto out;
	se = fuse_session_new(&args, &fusefloor_ops, sizeof(fusefloor_ops),
			      NULL);
	if (!se)
		goto out;
	if (fuse_set_signal_handlers(se) == 0) {
		if (fuse_session_mount(se, opts.mountpoint) == 0) {
			if (fuse_daemonize(opts.foreground) == 0)
				rc = fusefloor_loop(se, opts.singlethread) < 0;
			fuse_session_unmount(se);
		}
		fuse_remove_signal_handlers(se);
	}
	fuse_session_destroy(se);
out:
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	return rc;
}
