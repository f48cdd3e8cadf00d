/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsedit: changes through the store, for the kinds' tables: rm of a
 * message (to Trash, or expunged), moves, folders renamed, made and
 * removed (fsedit.c). Each gets a resolved node (fsnode.h), on a
 * writable mount.
 */
#ifndef MAILFS_FSEDIT_H
#define MAILFS_FSEDIT_H

#include <sys/types.h>

struct fsmount;
struct fsnode;

int fsedit_unlink(struct fsnode *n);
/* A message to another folder. */
int fsedit_rename_message(struct fsnode *n, const char *to, unsigned flags);
int fsedit_rename_folder(struct fsnode *n, const char *to, unsigned flags);
/* An empty folder (not INBOX). */
int fsedit_rmdir(struct fsnode *n);
/* A new folder at path (the default layout's mkdir). */
int fsedit_mkdir(struct fsmount *fs, const char *path, mode_t mode);

#endif
