/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsnode: the top of the fs layer. Each request is resolved once into a
 * node (struct fsnode, fskind.h: its kind and what the tree knows of
 * it), then served by its kind's table of operations: the root, a
 * folder, a Maildir folder and its cur/, new/ and tmp/, a message (in
 * either layout), a file being written (in either layout), and the
 * virtual names (.parts, .search, .summary; fsvnode.c). fsll serves
 * fsnode_operations().
 */
#ifndef MAILFS_FSNODE_H
#define MAILFS_FSNODE_H

#include <stdbool.h>

#include "fskind.h"

struct fsmount;
struct fuse_operations;

/* Resolves path into n (release with fsnode_clear(), safe after any
 * return): 0 or -errno (-ENOENT: nothing there). */
int fsnode_resolve(struct fsmount *fs, const char *path, struct fsnode *n);
void fsnode_clear(struct fsnode *n);

/* The table fsll serves. */
const struct fuse_operations *fsnode_operations(void);
/* fsll's no-open predicate: path is a file sized only once open. */
bool fsnode_sized_at_open(const char *path);

#endif
