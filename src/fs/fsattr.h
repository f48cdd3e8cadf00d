/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsattr: a message's attributes, for the message kinds' tables (each
 * gets a resolved message node; see fsnode.h).
 */
#ifndef MAILFS_FSATTR_H
#define MAILFS_FSATTR_H

#include <stddef.h>
#include <time.h>

struct fsnode;
struct fuse_file_info;

int fsattr_getxattr(struct fsnode *n, const char *name, char *value,
		    size_t size);
int fsattr_listxattr(struct fsnode *n, char *list, size_t size);
int fsattr_setxattr(struct fsnode *n, const char *name, const char *value,
		    size_t size, int flags);
int fsattr_removexattr(struct fsnode *n, const char *name);
int fsattr_utimens(struct fsnode *n, const struct timespec tv[2],
		   struct fuse_file_info *fi);
int fsattr_chattr(struct fsnode *n);
/* setxattr (value) or removexattr (value NULL) of name: the flags
 * checked and normalized for apply, the UID's set ignored, other names
 * refused; for every kind that takes flags (messages, files being
 * written). */
int fsattr_flags_xattr(struct fsnode *n, const char *name, const char *value,
		       size_t size, int xflags,
		       int (*apply)(struct fsnode *n, const char *flags,
				    int xflags));

#endif
