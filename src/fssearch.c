// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fssearch: FOLDER/.search/QUERY/ and /.search/QUERY/ (issue 9). This
 * is the hook the search kind fills in; until then every lookup under
 * .search is ENOENT (fsvirt.h: a NULL getattr).
 */
#include "fsvirt.h"

const struct fsvirt_kind fssearch_kind = {
	.name = ".search",
};
