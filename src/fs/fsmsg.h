/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsmsg: a message's kind: open, read, fstat and release (fsmsg.c); its
 * attributes are fsattr's and its changes fsedit's.
 */
#ifndef MAILFS_FSMSG_H
#define MAILFS_FSMSG_H

#include <sys/stat.h>
#include <fuse.h>

struct fsnode;

/* A message of the default layout (open handles of messages in either
 * layout are of this kind). */
extern const struct fskind fsmsg_kind;

/* The node operations of a message in either layout, all but rename
 * (the layout's): a table's initializers (fsattr.h, fsedit.h needed). */
#define FSMSG_NODE_OPS                                                  \
	.getattr = fsmsg_getattr, .open = fsmsg_open,                   \
	.getxattr = fsattr_getxattr, .listxattr = fsattr_listxattr,     \
	.setxattr = fsattr_setxattr, .removexattr = fsattr_removexattr, \
	.utimens = fsattr_utimens, .chattr = fsattr_chattr,             \
	.unlink = fsedit_unlink

/* stat of any node the tree knows, from the tree. */
int fsmsg_getattr(struct fsnode *n, struct stat *st);
/* open of a message (read-only; cp over it: fsnew_open_replace()). */
int fsmsg_open(struct fsnode *n, struct fuse_file_info *fi);

#endif
