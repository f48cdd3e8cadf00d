/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * safedir: opens the directories mailfs keeps its own files in (the
 * disk cache, the POP3 store), making what is missing, and refuses one
 * that another user could have planted or could change, as OpenSSH
 * does for its files:
 *
 *   - the directory itself (the last component) must be a real
 *     directory, not a symbolic link; owned by the user mailfs runs as
 *     (geteuid()); writable by no group and no others. It is made 0700
 *     if missing, and set to 0700 through its descriptor;
 *   - every directory on the way to it must be owned by that user or by
 *     root, and writable by no group and no others unless it has the
 *     sticky bit (/tmp); a symbolic link on the way is followed only
 *     when it is owned by that user or by root (whoever else planted it
 *     could point it anywhere).
 *
 * The walk is done with openat() from "/", one component at a time
 * (O_NOFOLLOW, O_DIRECTORY, checks on the opened descriptor), so a
 * component swapped while it is checked is never the one used.
 */
#ifndef MAILFS_SAFEDIR_H
#define MAILFS_SAFEDIR_H

#include <stddef.h>

/*
 * Opens path (absolute), making it and missing directories on the way
 * (0700). Returns a descriptor of it (O_RDONLY | O_DIRECTORY, close on
 * exec), or -1 with err naming the path at fault and why.
 */
int safedir_open(const char *path, char *err, size_t errlen);

/*
 * Opens the directory name inside dirfd (shown as "shown" in messages),
 * made 0700 if missing, under the rules of the last component above.
 * A descriptor, or -1 with err filled.
 */
int safedir_openat(int dirfd, const char *name, const char *shown, char *err,
		   size_t errlen);

#endif
