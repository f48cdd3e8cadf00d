/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsstatus: the mount's status and its df (fsstatus.c).
 */
#ifndef MAILFS_FSSTATUS_H
#define MAILFS_FSSTATUS_H

#include <stddef.h>
#include <sys/statvfs.h>

struct fsmount;

/* The mount's status, `getfattr --only-values -n user.mail.status MNT`:
 * readable by name on the root, never listed (rsync -X skips it). */
int fsstatus_getxattr(struct fsmount *fs, const char *path, char *value,
		      size_t size);
/* statfs: the account's quota (GETQUOTAROOT), asked at most once per
 * refresh interval, as the size of the filesystem for df. */
int fsstatus_statfs(const char *path, struct statvfs *st);

#endif
