/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fskind: what a kind of node is (struct fskind, its table of
 * operations) and what its operations get (struct fsnode, a resolved
 * request target). Types only, for the kinds (fsdir, fsmsg, fsnew,
 * fsmaildir, fsvnode) and the dispatcher above them (fsnode.c), which
 * resolves each request once and picks the kind. A request on an open
 * file or directory is not resolved: its handle begins with the kind
 * that opened it.
 */
#ifndef MAILFS_FSKIND_H
#define MAILFS_FSKIND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <fuse.h>

#include "fsvirt.h"
#include "tree.h"

struct fsmount;

/* What a path names. */
enum fsnode_type {
	FSNODE_ROOT,
	FSNODE_FOLDER,
	FSNODE_SUBDIR, /* a Maildir folder's cur/, new/ or tmp/ */
	FSNODE_MESSAGE,
	FSNODE_NEWMSG, /* a file being written (fsnew.c) */
	FSNODE_VIRTUAL,
};

/* A resolved request target. */
struct fsnode {
	struct fsmount *fs;
	const char *path; /* borrowed: as FUSE gave it */
	enum fsnode_type type;
	const struct fskind *kind; /* borrowed: a static table */
	struct tree_info info; /* root, folders, messages (always clear) */
	struct fsvirt_path vp; /* FSNODE_VIRTUAL */
};

/*
 * One kind's operations. Those on a node get it resolved; those on an
 * open file or directory get the mount, the path FUSE gave (NULL once
 * unlinked) and fi, whose fh points at a handle that begins with a
 * `const struct fskind *` (the kind that opened it). A NULL operation
 * answers: getattr ENOENT, open and opendir ENOTDIR or EISDIR, readlink
 * EINVAL, getxattr ENODATA, listxattr nothing, setxattr ENOTSUP,
 * removexattr ENODATA, truncate EACCES, utimens and chattr 0, unlink
 * EISDIR, rmdir ENOTDIR, rename EPERM; read and write EBADF, flush 0.
 * Changes reach a kind only on a writable mount (EROFS before).
 */
struct fskind {
	const char *name; /* for the debug log */
	int (*getattr)(struct fsnode *n, struct stat *st);
	int (*open)(struct fsnode *n, struct fuse_file_info *fi);
	int (*opendir)(struct fsnode *n, struct fuse_file_info *fi);
	int (*readlink)(struct fsnode *n, char *buf, size_t size);
	int (*getxattr)(struct fsnode *n, const char *name, char *value,
			size_t size);
	int (*listxattr)(struct fsnode *n, char *list, size_t size);
	int (*setxattr)(struct fsnode *n, const char *name, const char *value,
			size_t size, int flags);
	int (*removexattr)(struct fsnode *n, const char *name);
	int (*truncate)(struct fsnode *n, off_t size,
			struct fuse_file_info *fi);
	int (*utimens)(struct fsnode *n, const struct timespec tv[2],
		       struct fuse_file_info *fi);
	int (*chattr)(struct fsnode *n); /* chmod, chown */
	int (*unlink)(struct fsnode *n);
	int (*rmdir)(struct fsnode *n);
	int (*rename)(struct fsnode *n, const char *to, unsigned flags);

	int (*fgetattr)(struct fsmount *fs, struct fuse_file_info *fi,
			struct stat *st);
	int (*read)(struct fsmount *fs, const char *path, char *buf,
		    size_t size, off_t off, struct fuse_file_info *fi);
	int (*write)(struct fsmount *fs, const char *path, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi);
	int (*flush)(struct fsmount *fs, const char *path,
		     struct fuse_file_info *fi);
	void (*release)(struct fsmount *fs, const char *path,
			struct fuse_file_info *fi);
	int (*readdir)(struct fsmount *fs, const char *path, void *buf,
		       fuse_fill_dir_t filler, off_t off,
		       struct fuse_file_info *fi,
		       enum fuse_readdir_flags flags);
	void (*releasedir)(struct fsmount *fs, struct fuse_file_info *fi);
	/* Its files' size is known only once open (see fsvirt.h). */
	bool sized_at_open;
};

/* The kind of the handle an open fi holds (NULL: none). */
static inline const struct fskind *fskind_of_handle(struct fuse_file_info *fi)
{
	return fi && fi->fh ? *(const struct fskind *const *)(uintptr_t)fi->fh
			    : NULL;
}

#endif
