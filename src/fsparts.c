// SPDX-License-Identifier: GPL-2.0-or-later
/* fsparts: FOLDER/.parts/NAME/PART (issue 9); being written. */
#include "fsvirt.h"

const struct fsvirt_kind fsparts_kind = {
	.name = ".parts",
};
