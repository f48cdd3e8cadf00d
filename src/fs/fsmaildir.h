/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsmaildir: the Maildir layout's (-o layout=maildir) kinds of node and
 * its mkdir (fsmaildir.c).
 */
#ifndef MAILFS_FSMAILDIR_H
#define MAILFS_FSMAILDIR_H

#include <sys/types.h>

struct fsmount;

/* A folder (\Noselect, holding cur/, new/ and tmp/). */
extern const struct fskind fsmaildir_folder_kind;
/* A folder's cur/, new/ or tmp/. */
extern const struct fskind fsmaildir_sub_kind;
extern const struct fskind fsmaildir_msg_kind;
extern const struct fskind fsmaildir_new_kind;

/* mkdir: no folder inside cur/, new/ or tmp/. */
int fsmaildir_mkdir(struct fsmount *fs, const char *path, mode_t mode);

#endif
