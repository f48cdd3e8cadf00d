/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsnew: files being created through the mount (cp, cat >, rsync, tar),
 * held by newmsg until they are stored with APPEND (fsnew.c): their
 * kind, and the calls that make them.
 */
#ifndef MAILFS_FSNEW_H
#define MAILFS_FSNEW_H

#include <stddef.h>
#include <sys/types.h>

struct fsmount;
struct fsnode;
struct fuse_file_info;

/* A file being written in the default layout (open handles of files
 * being written are of this kind in either layout). */
extern const struct fskind fsnew_kind;

/* create: a new file at path, in a folder that holds messages. */
int fsnew_create(struct fsmount *fs, const char *path, mode_t mode,
		 struct fuse_file_info *fi);
/* Opens an existing message for writing with O_TRUNC (cp over it): its
 * close stores nothing if the bytes are the same, else a new message. */
int fsnew_open_replace(struct fsmount *fs, const char *path,
		       struct fuse_file_info *fi);
/* The node operations of fsnew_kind, for the Maildir layout's kind of
 * file being written (fsmaildir.c). */
struct stat;
struct timespec;
int fsnew_getattr(struct fsnode *n, struct stat *st);
int fsnew_open(struct fsnode *n, struct fuse_file_info *fi);
int fsnew_setxattr(struct fsnode *n, const char *name, const char *value,
		   size_t size, int xflags);
int fsnew_removexattr(struct fsnode *n, const char *name);
int fsnew_truncate(struct fsnode *n, off_t size, struct fuse_file_info *fi);
int fsnew_utimens(struct fsnode *n, const struct timespec tv[2],
		  struct fuse_file_info *fi);
int fsnew_unlink(struct fsnode *n);
/* The node operations of a file being written in either layout, all
 * but rename (the layout's): a table's initializers. */
#define FSNEW_NODE_OPS                                                \
	.getattr = fsnew_getattr, .open = fsnew_open,                 \
	.setxattr = fsnew_setxattr, .removexattr = fsnew_removexattr, \
	.truncate = fsnew_truncate, .utimens = fsnew_utimens,         \
	.unlink = fsnew_unlink

/* rename of a file being written (a temporary: stored at its new name). */
int fsnew_rename(struct fsnode *n, const char *to, unsigned flags);

#endif
