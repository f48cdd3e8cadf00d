/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsparts: the .parts virtual name's table (fsparts.c; see fsvirt.h).
 */
#ifndef MAILFS_FSPARTS_H
#define MAILFS_FSPARTS_H

#include "fsvirt.h"

extern const struct fsvirt_kind fsparts_kind;

/* The bounded cache of message structures behind .parts (the mount
 * owns one). */
struct fsparts_cache;
struct fsparts_cache *fsparts_cache_new(void);
void fsparts_cache_free(struct fsparts_cache *c);

#endif
