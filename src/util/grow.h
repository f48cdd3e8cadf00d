/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * grow: room in an array that grows as it is filled, doubling, with the
 * size checked against overflow. The one helper for the arrays the
 * modules build one element at a time (listings, ranges, parts, keys).
 */
#ifndef MAILFS_GROW_H
#define MAILFS_GROW_H

#include <stddef.h>

/* The room a first allocation has, in elements. */
#define GROW_MIN 16

/*
 * Makes room for need elements of elem bytes (elem > 0) in the array p,
 * which has room for *cap of them. Returns p as it is when it has that
 * room; else p realloc()ed to twice its room, or more when need is
 * larger (GROW_MIN at first), with *cap updated. Returns NULL, leaving
 * p (still the caller's to free) and *cap as they were, when out of
 * memory or when need elements would not fit a size_t. A need of 0
 * counts as 1, so that NULL always means failure:
 *
 *	m = grow_reserve(a->msgs, &a->cap, a->n + 1, sizeof(*m));
 *	if (!m)
 *		return -ENOMEM;
 *	a->msgs = m;
 */
void *grow_reserve(void *p, size_t *cap, size_t need, size_t elem);

#endif
