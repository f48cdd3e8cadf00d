/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fssummary: the .summary virtual name's table (fssummary.c; see fsvirt.h).
 */
#ifndef MAILFS_FSSUMMARY_H
#define MAILFS_FSSUMMARY_H

#include "fsvirt.h"

extern const struct fsvirt_kind fssummary_kind;

#endif
