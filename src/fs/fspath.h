/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fspath: pure helpers on the mount's paths (no state, no I/O).
 */
#ifndef MAILFS_FSPATH_H
#define MAILFS_FSPATH_H

#include <stdbool.h>

/* Splits path into its directory (malloc'd, "/" for the root) and its
 * last component (borrowed from path). */
char *fspath_dirname(const char *path, const char **base_r);
/* The name a message stored or moved to the mount path `to` is found
 * under until the next listing: its last component, or "new/NAME" in a
 * Maildir new/ (maildir: the mount's layout). Points into to. */
const char *fspath_alias(bool maildir, const char *to);
/* The last component of path (borrowed). */
const char *fspath_base(const char *path);

#endif
