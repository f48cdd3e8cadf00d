/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsnode: the top of the fs layer. Each request is resolved once into a
 * node (struct fsnode: its kind and what the tree knows of it), then
 * served by its kind's table of operations (struct fskind): the root, a
 * folder, a Maildir folder and its cur/, new/ and tmp/, a message (in
 * either layout), a file being written (in either layout), and the
 * virtual names (.parts, .search, .summary; fsvnode.c). A request on an
 * open file or directory (read, write, flush, release, readdir) is not
 * resolved at all: its handle begins with the kind that opened it.
 *
 * fsll serves fsnode_operations(). Every operation of a kind returns 0
 * (or a byte count) or a negative errno, within the request's deadline.
 */
#ifndef MAILFS_FSNODE_H
#define MAILFS_FSNODE_H

#include <stdbool.h>
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
		       struct fuse_file_info *fi, enum fuse_readdir_flags flags);
	void (*releasedir)(struct fsmount *fs, struct fuse_file_info *fi);
	/* Its files' size is known only once open (see fsvirt.h). */
	bool sized_at_open;
};

/* The kind of the handle an open fi holds (NULL: none). */
static inline const struct fskind *fsnode_handle_kind(struct fuse_file_info *fi)
{
	return fi && fi->fh ? *(const struct fskind *const *)(uintptr_t)fi->fh
			    : NULL;
}

/* Resolves path into n (release with fsnode_clear(), safe after any
 * return): 0 or -errno (-ENOENT: nothing there). */
int fsnode_resolve(struct fsmount *fs, const char *path, struct fsnode *n);
void fsnode_clear(struct fsnode *n);

/* The table fsll serves. */
const struct fuse_operations *fsnode_operations(void);
/* fsll's no-open predicate: path is a file sized only once open. */
bool fsnode_sized_at_open(const char *path);

#endif
