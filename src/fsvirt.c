// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsvirt: the dispatcher in front of fsops' own table; see fsvirt.h.
 * A virtual path goes to its kind's table, a change to one is EROFS,
 * and every other path goes to fsops (and fsmaildir) unchanged.
 *
 * Which table an open handle belongs to follows from its path, which
 * cannot move between the two worlds: nothing is renamed into or out of
 * a virtual path, and a real folder never has a reserved name.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdlib.h>
#include <string.h>

#include "fsops_priv.h"
#include "fsvirt.h"
#include "names.h"
#include "store.h"
#include "tree.h"

/* Seeds the inode hash of virtual paths apart from the tree's. */
#define FSVIRT_INO_SEED (TREE_HASH_SEED ^ 0x7669727475616cull)
/* The most entries one virtual directory lists. */
#define FSVIRT_DIR_MAX 2000000u

static const struct fsvirt_kind *const fsvirt_kinds[] = {
	&fssearch_kind,
	&fsparts_kind,
	&fssummary_kind,
};

/* One entry of a virtual directory's snapshot. */
struct fsvirt_entry {
	char *name; /* owned */
	struct stat st;
	bool plus; /* st goes to the kernel with the name (readdirplus) */
};

/* A virtual directory's listing, made at opendir. */
struct fsvirt_dir {
	struct fsvirt_entry *e; /* owned */
	size_t n, cap;
};

/* What fi->fh holds for an open virtual file or directory. */
struct fsvirt_handle {
	const struct fsvirt_kind *kind; /* borrowed */
	void *file; /* the kind's own handle (files) */
	struct fsvirt_dir *dir; /* owned (directories) */
};

/* The kind whose reserved name is the n bytes at s, or NULL. */
static const struct fsvirt_kind *fsvirt_kind_of(const char *s, size_t n)
{
	size_t i;

	if (!names_reserved(s, n))
		return NULL;
	for (i = 0; i < sizeof(fsvirt_kinds) / sizeof(fsvirt_kinds[0]); i++)
		if (strlen(fsvirt_kinds[i]->name) == n &&
		    memcmp(fsvirt_kinds[i]->name, s, n) == 0)
			return fsvirt_kinds[i];
	return NULL;
}

/* Finds the first reserved component of path: its kind, and where it
 * starts and ends; NULL when path is an ordinary one. */
static const struct fsvirt_kind *fsvirt_find(const char *path, size_t *start_r,
					     size_t *end_r)
{
	const struct fsvirt_kind *k;
	size_t i = 0, n;

	if (!path)
		return NULL;
	while (path[i]) {
		while (path[i] == '/')
			i++;
		n = strcspn(path + i, "/");
		if (n && (k = fsvirt_kind_of(path + i, n))) {
			*start_r = i;
			*end_r = i + n;
			return k;
		}
		i += n;
	}
	return NULL;
}

/* Tells whether path is virtual, without allocating. */
bool fsvirt_is_virtual(const char *path)
{
	size_t a, b;

	return fsvirt_find(path, &a, &b) != NULL;
}

bool fsvirt_sized_at_open(const char *path)
{
	size_t a, b;
	const struct fsvirt_kind *k = fsvirt_find(path, &a, &b);

	return k && k->sized_at_open;
}

/* Splits a virtual path into the real directory, the kind and the rest
 * (see fsvirt.h). */
int fsvirt_parse(const char *path, struct fsvirt_path *p)
{
	const struct fsvirt_kind *k;
	size_t start, end, dlen, rlen;
	const char *rest;

	k = fsvirt_find(path, &start, &end);
	if (!k)
		return 0;
	dlen = start;
	while (dlen > 1 && path[dlen - 1] == '/')
		dlen--;
	rest = path + end;
	while (*rest == '/')
		rest++;
	rlen = strlen(rest);
	while (rlen && rest[rlen - 1] == '/')
		rlen--;
	p->kind = k;
	p->path = path;
	p->dir = dlen <= 1 ? strdup("/") : strndup(path, dlen);
	p->rest = strndup(rest, rlen);
	if (!p->dir || !p->rest) {
		fsvirt_path_clear(p);
		return -ENOMEM;
	}
	return 1;
}

/* Frees what fsvirt_parse() allocated. */
void fsvirt_path_clear(struct fsvirt_path *p)
{
	free(p->dir);
	free(p->rest);
	p->dir = p->rest = NULL;
}

uint64_t fsvirt_ino(const char *path)
{
	return tree_hash(path, strlen(path), FSVIRT_INO_SEED) | 1;
}

/* Fills the fields every virtual node shares. */
static void fsvirt_stat_common(const struct fsops *fs, const char *path,
			       time_t mtime, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = fsvirt_ino(path);
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	st->st_mtime = st->st_atime = mtime;
	st->st_ctime = fs->started;
}

/* A read-only directory of the mount's owner (fsvirt.h). */
void fsvirt_stat_dir(const struct fsops *fs, const char *path, time_t mtime,
		     struct stat *st)
{
	fsvirt_stat_common(fs, path, mtime, st);
	st->st_mode = fsops_mode(fs, S_IFDIR | 0555);
	st->st_nlink = 2;
}

/* A read-only regular file of the mount's owner (fsvirt.h). */
void fsvirt_stat_file(const struct fsops *fs, const char *path, uint64_t size,
		      time_t mtime, struct stat *st)
{
	fsvirt_stat_common(fs, path, mtime, st);
	st->st_mode = fsops_mode(fs, S_IFREG | 0444);
	st->st_nlink = 1;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
}

/* A symlink of the mount's owner (fsvirt.h). */
void fsvirt_stat_link(const struct fsops *fs, const char *path, uint64_t size,
		      time_t mtime, struct stat *st)
{
	fsvirt_stat_common(fs, path, mtime, st);
	st->st_mode = S_IFLNK | 0777;
	st->st_nlink = 1;
	st->st_size = (off_t)size;
}

/* Resolves a kind's directory as a folder with messages (fsvirt.h). */
int fsvirt_folder(struct fsops *fs, const char *dir, struct tree_info *info)
{
	struct store_listing state;
	int rc = fsops_resolve(fs, dir, info);

	if (rc < 0)
		return rc;
	if (info->kind == TREE_ROOT && tree_has_folder(fs->tree, "")) {
		/* A flat store keeps its messages in the root. */
		free(info->folder);
		info->kind = TREE_FOLDER;
		info->folder = strdup("");
		if (!info->folder)
			return -ENOMEM;
	}
	if (info->kind != TREE_FOLDER ||
	    (info->attrs & STORE_FOLDER_NOSELECT)) {
		tree_info_clear(info);
		return -ENOENT;
	}
	rc = fsops_refresh_listing(fs, info->folder, fs->cfg.refresh);
	if (!tree_listing_state(fs->tree, info->folder, &state)) {
		tree_info_clear(info);
		return rc < 0 ? rc : -EIO;
	}
	info->uidvalidity = state.uidvalidity;
	return 0;
}

/* Adds one entry to a listing being made; plus: with its attributes
 * for the kernel. */
static int fsvirt_dir_put(struct fsvirt_dir *d, const char *name,
			  const struct stat *st, bool plus)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		struct fsvirt_entry *ne;

		if (d->n >= FSVIRT_DIR_MAX)
			return -ENOMEM;
		ne = realloc(d->e, cap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		d->e = ne;
		d->cap = cap;
	}
	d->e[d->n].name = strdup(name);
	if (!d->e[d->n].name)
		return -ENOMEM;
	d->e[d->n].st = *st;
	d->e[d->n].plus = plus;
	d->n++;
	return 0;
}

int fsvirt_dir_add(struct fsvirt_dir *d, const char *name,
		   const struct stat *st)
{
	return fsvirt_dir_put(d, name, st, true);
}

int fsvirt_dir_add_bare(struct fsvirt_dir *d, const char *name,
			const struct stat *st)
{
	return fsvirt_dir_put(d, name, st, false);
}

/* Frees a virtual directory's snapshot. */
static void fsvirt_dir_free(struct fsvirt_dir *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	free(d);
}

/* The table ordinary paths go to: fsops' own. */
static const struct fuse_operations *fsvirt_inner(void)
{
	return fsops_inner_operations();
}

/* The virtual handle in fi (only for a virtual path). */
static struct fsvirt_handle *fsvirt_handle_of(struct fuse_file_info *fi)
{
	return fi ? (struct fsvirt_handle *)(uintptr_t)fi->fh : NULL;
}

/* getattr: a virtual path's kind, from its open handle when there is
 * one (so a file being read shows the size it has reached). */
static int fsvirt_getattr(const char *path, struct stat *st,
			  struct fuse_file_info *fi)
{
	struct fsvirt_handle *h = fsvirt_handle_of(fi);
	struct fsvirt_path p;
	int rc = fsvirt_parse(path, &p);

	if (rc == 0)
		return fsvirt_inner()->getattr(path, st, fi);
	if (rc < 0)
		return rc;
	if (h && h->file && p.kind->fgetattr)
		rc = p.kind->fgetattr(fsops_get(), h->file, st);
	else if (p.kind->getattr)
		rc = p.kind->getattr(fsops_get(), &p, st);
	else
		rc = -ENOENT;
	fsvirt_path_clear(&p);
	return rc;
}

/* opendir: a virtual directory's snapshot, made by its kind's list. */
static int fsvirt_opendir(const char *path, struct fuse_file_info *fi)
{
	struct fsvirt_handle *h;
	struct fsvirt_path p;
	int rc = fsvirt_parse(path, &p);

	if (rc == 0)
		return fsvirt_inner()->opendir(path, fi);
	if (rc < 0)
		return rc;
	h = calloc(1, sizeof(*h));
	if (h)
		h->dir = calloc(1, sizeof(*h->dir));
	if (!h || !h->dir) {
		rc = -ENOMEM;
		goto fail;
	}
	h->kind = p.kind;
	rc = p.kind->list ? p.kind->list(fsops_get(), &p, h->dir) : -ENOTDIR;
	if (rc < 0)
		goto fail;
	fsvirt_path_clear(&p);
	fi->fh = (uintptr_t)h;
	return 0;
fail:
	if (h)
		fsvirt_dir_free(h->dir);
	free(h);
	fsvirt_path_clear(&p);
	return rc;
}

/* readdir of a virtual directory: from the snapshot opendir made, with
 * offsets (1 ".", 2 "..", 3 + i entry i) and full attributes, except
 * for entries added bare (fsvirt_dir_add_bare()). */
static int fsvirt_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
			  off_t off, struct fuse_file_info *fi,
			  enum fuse_readdir_flags flags)
{
	struct fsvirt_handle *h = fsvirt_handle_of(fi);
	struct stat dot, dotdot;
	size_t i;

	if (!fsvirt_is_virtual(path))
		return fsvirt_inner()->readdir(path, buf, fill, off, fi, flags);
	if (!h || !h->dir)
		return -EBADF;
	if (off < 2)
		fsdir_dots(fsops_get(), path, &dot, &dotdot);
	if (off < 1 && fill(buf, ".", &dot, 1, FUSE_FILL_DIR_PLUS))
		return 0;
	if (off < 2 && fill(buf, "..", &dotdot, 2, FUSE_FILL_DIR_PLUS))
		return 0;
	for (i = off > 2 ? (size_t)off - 2 : 0; i < h->dir->n; i++)
		if (fill(buf, h->dir->e[i].name, &h->dir->e[i].st, (off_t)i + 3,
			 h->dir->e[i].plus ? FUSE_FILL_DIR_PLUS : 0))
			break;
	return 0;
}

/* releasedir: frees a virtual directory's snapshot. */
static int fsvirt_releasedir(const char *path, struct fuse_file_info *fi)
{
	struct fsvirt_handle *h = fsvirt_handle_of(fi);

	if (!fsvirt_is_virtual(path))
		return fsvirt_inner()->releasedir(path, fi);
	if (h)
		fsvirt_dir_free(h->dir);
	free(h);
	fi->fh = 0;
	return 0;
}

/* open: read-only for virtual files (EROFS otherwise), by the kind. */
static int fsvirt_open(const char *path, struct fuse_file_info *fi)
{
	struct fsvirt_handle *h;
	struct fsvirt_path p;
	int rc = fsvirt_parse(path, &p);

	if (rc == 0)
		return fsvirt_inner()->open(path, fi);
	if (rc < 0)
		return rc;
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		rc = -EROFS;
		goto out;
	}
	if (!p.kind->open) {
		rc = -ENOENT;
		goto out;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		rc = -ENOMEM;
		goto out;
	}
	h->kind = p.kind;
	rc = p.kind->open(fsops_get(), &p, fi, &h->file);
	if (rc < 0) {
		free(h);
	} else {
		fi->fh = (uintptr_t)h;
		fi->noflush = 1; /* read-only: nothing to flush at close */
	}
out:
	fsvirt_path_clear(&p);
	return rc;
}

/* read: the kind's, from its handle. */
static int fsvirt_read(const char *path, char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fsvirt_handle *h = fsvirt_handle_of(fi);

	if (!fsvirt_is_virtual(path))
		return fsvirt_inner()->read(path, buf, size, off, fi);
	if (!h || !h->kind->read)
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	return h->kind->read(fsops_get(), h->file, buf, size, off);
}

/* release: the kind's handle goes, then the wrapper. */
static int fsvirt_release(const char *path, struct fuse_file_info *fi)
{
	struct fsvirt_handle *h = fsvirt_handle_of(fi);

	if (!fsvirt_is_virtual(path))
		return fsvirt_inner()->release(path, fi);
	if (h && h->kind->release)
		h->kind->release(fsops_get(), h->file);
	free(h);
	fi->fh = 0;
	return 0;
}

/* flush: nothing to store for a virtual file. */
static int fsvirt_flush(const char *path, struct fuse_file_info *fi)
{
	if (!fsvirt_is_virtual(path))
		return fsvirt_inner()->flush(path, fi);
	return 0;
}

/* readlink: only virtual paths hold symlinks. */
static int fsvirt_readlink(const char *path, char *buf, size_t size)
{
	struct fsvirt_path p;
	int rc = fsvirt_parse(path, &p);

	if (rc == 0)
		return -EINVAL;
	if (rc < 0)
		return rc;
	rc = p.kind->readlink ? p.kind->readlink(fsops_get(), &p, buf, size)
			      : -EINVAL;
	fsvirt_path_clear(&p);
	return rc;
}

/* getxattr: the kind's (ENODATA without one). */
static int fsvirt_getxattr(const char *path, const char *name, char *value,
			   size_t size)
{
	struct fsvirt_path p;
	int rc = fsvirt_parse(path, &p);

	if (rc == 0)
		return fsvirt_inner()->getxattr(path, name, value, size);
	if (rc < 0)
		return rc;
	rc = p.kind->getxattr
		     ? p.kind->getxattr(fsops_get(), &p, name, value, size)
		     : -ENODATA;
	fsvirt_path_clear(&p);
	return rc;
}

/* listxattr: the kind's (empty without one). */
static int fsvirt_listxattr(const char *path, char *list, size_t size)
{
	struct fsvirt_path p;
	int rc = fsvirt_parse(path, &p);

	if (rc == 0)
		return fsvirt_inner()->listxattr(path, list, size);
	if (rc < 0)
		return rc;
	rc = p.kind->listxattr ? p.kind->listxattr(fsops_get(), &p, list, size)
			       : 0;
	fsvirt_path_clear(&p);
	return rc;
}

/* Changes: EROFS on a virtual path, fsops' (or fsmaildir's) otherwise. */

static int fsvirt_create(const char *path, mode_t mode,
			 struct fuse_file_info *fi)
{
	return fsvirt_is_virtual(path) ? -EROFS
				       : fsvirt_inner()->create(path, mode, fi);
}

/* write: never to a virtual file. */
static int fsvirt_write(const char *path, const char *buf, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	return fsvirt_is_virtual(path)
		       ? -EROFS
		       : fsvirt_inner()->write(path, buf, size, off, fi);
}

/* truncate: never of a virtual file. */
static int fsvirt_truncate(const char *path, off_t size,
			   struct fuse_file_info *fi)
{
	return fsvirt_is_virtual(path)
		       ? -EROFS
		       : fsvirt_inner()->truncate(path, size, fi);
}

/* utimens: virtual times cannot be set. */
static int fsvirt_utimens(const char *path, const struct timespec tv[2],
			  struct fuse_file_info *fi)
{
	return fsvirt_is_virtual(path) ? -EROFS
				       : fsvirt_inner()->utimens(path, tv, fi);
}

/* chmod: virtual modes cannot be changed. */
static int fsvirt_chmod(const char *path, mode_t mode,
			struct fuse_file_info *fi)
{
	return fsvirt_is_virtual(path) ? -EROFS
				       : fsvirt_inner()->chmod(path, mode, fi);
}

/* chown: virtual owners cannot be changed. */
static int fsvirt_chown(const char *path, uid_t uid, gid_t gid,
			struct fuse_file_info *fi)
{
	return fsvirt_is_virtual(path)
		       ? -EROFS
		       : fsvirt_inner()->chown(path, uid, gid, fi);
}

/* setxattr: virtual nodes have no settable attributes. */
static int fsvirt_setxattr(const char *path, const char *name,
			   const char *value, size_t size, int flags)
{
	return fsvirt_is_virtual(path)
		       ? -EROFS
		       : fsvirt_inner()->setxattr(path, name, value, size,
						  flags);
}

/* removexattr: likewise. */
static int fsvirt_removexattr(const char *path, const char *name)
{
	return fsvirt_is_virtual(path)
		       ? -EROFS
		       : fsvirt_inner()->removexattr(path, name);
}

/* rename: nothing moves into or out of a virtual path. */
static int fsvirt_rename(const char *from, const char *to, unsigned flags)
{
	if (fsvirt_is_virtual(from) || fsvirt_is_virtual(to))
		return -EROFS;
	return fsmaildir_rename(from, to, flags);
}

/* link: no links into or out of a virtual path. */
static int fsvirt_link(const char *from, const char *to)
{
	if (fsvirt_is_virtual(from) || fsvirt_is_virtual(to))
		return -EROFS;
	return fsmaildir_link(from, to);
}

/* unlink: virtual files cannot be removed. */
static int fsvirt_unlink(const char *path)
{
	return fsvirt_is_virtual(path) ? -EROFS : fsvirt_inner()->unlink(path);
}

/* mkdir: no directory is made in a virtual path (nor named so). */
static int fsvirt_mkdir(const char *path, mode_t mode)
{
	return fsvirt_is_virtual(path) ? -EROFS : fsmaildir_mkdir(path, mode);
}

/* rmdir: virtual directories cannot be removed. */
static int fsvirt_rmdir(const char *path)
{
	return fsvirt_is_virtual(path) ? -EROFS : fsmaildir_rmdir(path);
}

/* init: fsops' (the mount's settings). */
static void *fsvirt_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	return fsvirt_inner()->init(conn, cfg);
}

/* statfs: the mount's, whatever the path. */
static int fsvirt_statfs(const char *path, struct statvfs *st)
{
	return fsvirt_inner()->statfs(path, st);
}

static const struct fuse_operations fsvirt_table = {
	.init = fsvirt_init,
	.getattr = fsvirt_getattr,
	.readlink = fsvirt_readlink,
	.opendir = fsvirt_opendir,
	.readdir = fsvirt_readdir,
	.releasedir = fsvirt_releasedir,
	.open = fsvirt_open,
	.read = fsvirt_read,
	.release = fsvirt_release,
	.flush = fsvirt_flush,
	.getxattr = fsvirt_getxattr,
	.listxattr = fsvirt_listxattr,
	.statfs = fsvirt_statfs,
	.create = fsvirt_create,
	.write = fsvirt_write,
	.truncate = fsvirt_truncate,
	.utimens = fsvirt_utimens,
	.chmod = fsvirt_chmod,
	.chown = fsvirt_chown,
	.setxattr = fsvirt_setxattr,
	.removexattr = fsvirt_removexattr,
	.rename = fsvirt_rename,
	.link = fsvirt_link,
	.unlink = fsvirt_unlink,
	.mkdir = fsvirt_mkdir,
	.rmdir = fsvirt_rmdir,
};

/* The dispatcher's table, which fsll serves. */
const struct fuse_operations *fsvirt_operations(void)
{
	return &fsvirt_table;
}
