// SPDX-License-Identifier: GPL-2.0-or-later
/* grow: room in a growing array; see grow.h. */
#include <stdint.h>
#include <stdlib.h>

#include "grow.h"

/* Room for need elements in p (see grow.h): the new room is the old
 * doubled until it holds need, kept below SIZE_MAX bytes. */
void *grow_reserve(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t max = SIZE_MAX / elem, ncap;
	void *np;

	if (need == 0)
		need = 1;
	if (need <= *cap)
		return p;
	if (need > max)
		return NULL;
	ncap = *cap < GROW_MIN ? GROW_MIN : *cap;
	while (ncap < need)
		ncap = ncap > max / 2 ? max : ncap * 2;
	if (ncap > max)
		ncap = max;
	np = realloc(p, ncap * elem);
	if (!np)
		return NULL;
	*cap = ncap;
	return np;
}
