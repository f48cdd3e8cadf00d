// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsvnode: the virtual names' kind of node (see fsvnode.h). A path
 * whose components include a reserved name (.parts, .search, .summary)
 * is served by that name's table (struct fsvirt_kind: fsparts.c,
 * fssearch.c, fssummary.c); this file adapts those tables to fsnode's.
 * Everything here is read-only: fsnode refuses changes to a virtual
 * path before they reach a kind.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdlib.h>
#include <string.h>

#include "fsctx.h"
#include "fsdir.h"
#include "fskind.h"
#include "fsparts.h"
#include "fssearch.h"
#include "fssummary.h"
#include "fsvirt.h"
#include "fsvnode.h"

static const struct fsvirt_kind *const fsvnode_kinds[] = {
	&fssearch_kind,
	&fsparts_kind,
	&fssummary_kind,
};

/* What fi->fh holds for an open virtual file or directory. */
struct fsvnode_handle {
	const struct fskind *node_kind; /* first: &fsvnode_kind */
	const struct fsvirt_kind *kind; /* borrowed */
	void *file; /* the kind's own handle (files) */
	struct fsvirt_dir *dir; /* owned (directories) */
};

/* The kind of the first reserved component of path, and where it is;
 * NULL when path is an ordinary one. */
static const struct fsvirt_kind *fsvnode_find(const char *path, size_t *start_r,
					      size_t *end_r)
{
	size_t i, len;

	if (!fsvirt_find_reserved(path, start_r, end_r))
		return NULL;
	len = *end_r - *start_r;
	for (i = 0; i < sizeof(fsvnode_kinds) / sizeof(fsvnode_kinds[0]); i++)
		if (strlen(fsvnode_kinds[i]->name) == len &&
		    memcmp(fsvnode_kinds[i]->name, path + *start_r, len) == 0)
			return fsvnode_kinds[i];
	return NULL;
}

bool fsvnode_sized_at_open(const char *path)
{
	size_t a, b;
	const struct fsvirt_kind *k = fsvnode_find(path, &a, &b);

	return k && k->sized_at_open;
}

/* Splits a virtual path into the real directory, the kind and the rest
 * (see fsvirt.h). */
int fsvnode_parse(const char *path, struct fsvirt_path *p)
{
	const struct fsvirt_kind *k;
	size_t start, end;

	k = fsvnode_find(path, &start, &end);
	if (!k)
		return 0;
	return fsvirt_split(path, start, end, k, p);
}

/* stat of a virtual node, by its kind. */
static int fsvnode_getattr(struct fsnode *n, struct stat *st)
{
	const struct fsvirt_kind *k = n->vp.kind;

	return k->getattr ? k->getattr(n->fs, &n->vp, st) : -ENOENT;
}

/* fstat of an open virtual file: the size its text has reached; -ENOSYS
 * when the kind (or a directory) cannot tell, to ask by path. */
static int fsvnode_fgetattr(struct fsmount *fs, struct fuse_file_info *fi,
			    struct stat *st)
{
	struct fsvnode_handle *h = (struct fsvnode_handle *)(uintptr_t)fi->fh;

	if (!h->file || !h->kind->fgetattr)
		return -ENOSYS;
	return h->kind->fgetattr(fs, h->file, st);
}

/* opendir: a virtual directory's snapshot, made by its kind's list. */
static int fsvnode_opendir(struct fsnode *n, struct fuse_file_info *fi)
{
	const struct fsvirt_kind *k = n->vp.kind;
	struct fsvnode_handle *h;
	int rc;

	h = calloc(1, sizeof(*h));
	if (h)
		h->dir = fsvirt_dir_new();
	if (!h || !h->dir) {
		rc = -ENOMEM;
		goto fail;
	}
	h->node_kind = &fsvnode_kind;
	h->kind = k;
	rc = k->list ? k->list(n->fs, &n->vp, h->dir) : -ENOTDIR;
	if (rc < 0)
		goto fail;
	fi->fh = (uintptr_t)h;
	return 0;
fail:
	if (h)
		fsvirt_dir_free(h->dir);
	free(h);
	return rc;
}

/* readdir of a virtual directory: from the snapshot opendir made. */
static int fsvnode_readdir(struct fsmount *fs, const char *path, void *buf,
			   fuse_fill_dir_t fill, off_t off,
			   struct fuse_file_info *fi,
			   enum fuse_readdir_flags flags)
{
	struct fsvnode_handle *h = (struct fsvnode_handle *)(uintptr_t)fi->fh;
	struct stat dot, dotdot;

	(void)flags;
	if (!h->dir)
		return -ENOTDIR;
	if (off < 2)
		fsdir_dots(fs, path, &dot, &dotdot);
	return fsvirt_dir_fill(h->dir, buf, fill, off, &dot, &dotdot);
}

/* releasedir: frees a virtual directory's snapshot. */
static void fsvnode_releasedir(struct fsmount *fs, struct fuse_file_info *fi)
{
	struct fsvnode_handle *h = (struct fsvnode_handle *)(uintptr_t)fi->fh;

	(void)fs;
	fsvirt_dir_free(h->dir);
	free(h);
}

/* open: read-only for virtual files (EROFS otherwise), by the kind. */
static int fsvnode_open(struct fsnode *n, struct fuse_file_info *fi)
{
	const struct fsvirt_kind *k = n->vp.kind;
	struct fsvnode_handle *h;
	int rc;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return -EROFS;
	if (!k->open)
		return -ENOENT;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->node_kind = &fsvnode_kind;
	h->kind = k;
	rc = k->open(n->fs, &n->vp, fi, &h->file);
	if (rc < 0) {
		free(h);
		return rc;
	}
	fi->fh = (uintptr_t)h;
	fi->noflush = 1; /* read-only: nothing to flush at close */
	return 0;
}

/* read: the kind's, from its handle. */
static int fsvnode_read(struct fsmount *fs, const char *path, char *buf,
			size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fsvnode_handle *h = (struct fsvnode_handle *)(uintptr_t)fi->fh;

	(void)path;
	if (!h->file || !h->kind->read)
		return -EBADF;
	if (off < 0)
		return -EINVAL;
	return h->kind->read(fs, h->file, buf, size, off);
}

/* release: the kind's handle goes, then the wrapper. */
static void fsvnode_release(struct fsmount *fs, const char *path,
			    struct fuse_file_info *fi)
{
	struct fsvnode_handle *h = (struct fsvnode_handle *)(uintptr_t)fi->fh;

	(void)path;
	if (h->file && h->kind->release)
		h->kind->release(fs, h->file);
	free(h);
}

/* readlink: only virtual paths hold symlinks. */
static int fsvnode_readlink(struct fsnode *n, char *buf, size_t size)
{
	const struct fsvirt_kind *k = n->vp.kind;

	return k->readlink ? k->readlink(n->fs, &n->vp, buf, size) : -EINVAL;
}

/* getxattr: the kind's (ENODATA without one). */
static int fsvnode_getxattr(struct fsnode *n, const char *name, char *value,
			    size_t size)
{
	const struct fsvirt_kind *k = n->vp.kind;

	return k->getxattr ? k->getxattr(n->fs, &n->vp, name, value, size)
			   : -ENODATA;
}

/* listxattr: the kind's (empty without one). */
static int fsvnode_listxattr(struct fsnode *n, char *list, size_t size)
{
	const struct fsvirt_kind *k = n->vp.kind;

	return k->listxattr ? k->listxattr(n->fs, &n->vp, list, size) : 0;
}

const struct fskind fsvnode_kind = {
	.name = "virtual",
	.getattr = fsvnode_getattr,
	.open = fsvnode_open,
	.opendir = fsvnode_opendir,
	.readlink = fsvnode_readlink,
	.getxattr = fsvnode_getxattr,
	.listxattr = fsvnode_listxattr,
	.fgetattr = fsvnode_fgetattr,
	.read = fsvnode_read,
	.release = fsvnode_release,
	.readdir = fsvnode_readdir,
	.releasedir = fsvnode_releasedir,
};
