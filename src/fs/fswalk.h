/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fswalk: first listings of several folders in one round trip, for a
 * walk over the tree (find, grep -r) and the read-ahead across folders.
 * Below fsctx: it uses the mount's tree and store only.
 */
#ifndef MAILFS_FSWALK_H
#define MAILFS_FSWALK_H

#include "fsstate.h"

/* The first listing of folder during a walk, with the folders ahead of
 * it in the same round trip. 1 when it is no walk (the caller lists
 * folder alone), else 0 or -errno for folder. The caller holds folder's
 * refresh mark. */
int fswalk_listing(struct fsmount *fs, const char *folder);
/* First listings of up to 32 folders never listed after `after`, in one
 * round trip, for the read-ahead across folders (the caller's thread is
 * background work). Returns how many were asked for, or -errno. */
int fswalk_ahead(struct fsmount *fs, const char *after);

#endif
