/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fssearch: the .search virtual name's table (fssearch.c; see fsvirt.h).
 */
#ifndef MAILFS_FSSEARCH_H
#define MAILFS_FSSEARCH_H

#include "fsvirt.h"

extern const struct fsvirt_kind fssearch_kind;

#endif
