// SPDX-License-Identifier: GPL-2.0-or-later
/* fssummary: FOLDER/.summary (issue 9); being written. */
#include "fsvirt.h"

const struct fsvirt_kind fssummary_kind = {
	.name = ".summary",
};
