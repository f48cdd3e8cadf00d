/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsvnode: the kind of node of the virtual names (.parts, .search,
 * .summary), adapting each name's table (struct fsvirt_kind) to
 * fsnode's (fsvnode.c).
 */
#ifndef MAILFS_FSVNODE_H
#define MAILFS_FSVNODE_H

#include <stdbool.h>

#include "fsvirt.h"

extern const struct fskind fsvnode_kind;

/* Splits path when it is virtual: fills *p (release with
 * fsvirt_path_clear()) and returns 1; 0 when path is an ordinary one (p
 * untouched); -ENOMEM. Pure: no lookup, no I/O. */
int fsvnode_parse(const char *path, struct fsvirt_path *p);
/* True when path is a file of a kind sized at open (the fsll no-open
 * mode's predicate). */
bool fsvnode_sized_at_open(const char *path);

#endif
