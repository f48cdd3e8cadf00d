/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsdir: directory listings from a snapshot taken at opendir, the kinds
 * of the root and of a folder, and what fsll asks about inode numbers
 * (fsdir.c).
 */
#ifndef MAILFS_FSDIR_H
#define MAILFS_FSDIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <fuse.h>

struct fsmount;
struct fsnode;

extern const struct fskind fsdir_root_kind;
extern const struct fskind fsdir_folder_kind;

/* The directory operations of every kind of directory that lists the
 * tree (root, folders, Maildir folders and their cur/, new/, tmp/). */
int fsdir_open(struct fsnode *n, struct fuse_file_info *fi);
int fsdir_read(struct fsmount *fs, const char *path, void *buf,
	       fuse_fill_dir_t filler, off_t offset, struct fuse_file_info *fi,
	       enum fuse_readdir_flags flags);
void fsdir_release(struct fsmount *fs, struct fuse_file_info *fi);
/* The operations of every directory that lists the tree, as a table's
 * initializers. */
#define FSDIR_OPS                                        \
	.getattr = fsmsg_getattr, .opendir = fsdir_open, \
	.readdir = fsdir_read, .releasedir = fsdir_release

/* The entries "." and ".." of the directory at path: a directory each,
 * with the inode number stat shows for it and for its parent. */
void fsdir_dots(struct fsmount *fs, const char *path, struct stat *dot,
		struct stat *dotdot);
/* fsll's resolver (fsll_resolve_fn; ctx is the mount): the path of the
 * listed message whose inode number is ino into buf; its length, 0 if
 * none. */
size_t fsdir_ino_path(void *ctx, uint64_t ino, char *buf, size_t size);
/* fsll's fsll_ino_fn: the inode number of the listed message at path, 0
 * if none (the listings in memory only, however old). */
uint64_t fsdir_path_ino(void *ctx, const char *path);

#endif
