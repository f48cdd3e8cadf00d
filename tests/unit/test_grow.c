// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for grow_reserve(): the first room, doubling, a need beyond
 * twice the room, no move while there is room, the elements kept across
 * a move, and a size that would not fit a size_t refused before any
 * allocation (with the array and its room left as they were). No test
 * asks for a huge allocation that could succeed: ASan would stop the
 * run.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"

/* Called by the runner (tests/unit/main.c). */
Suite *grow_suite(void);

/* A first need gets GROW_MIN elements (or the need, when larger). */
START_TEST(test_first)
{
	size_t cap = 0;
	int *a = grow_reserve(NULL, &cap, 1, sizeof(*a));

	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(cap, GROW_MIN);
	free(a);
	cap = 0;
	a = grow_reserve(NULL, &cap, GROW_MIN * 3 + 1, sizeof(*a));
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_ge(cap, GROW_MIN * 3 + 1);
	free(a);
}
END_TEST

/* A need of 0 is one of 1: the result is never NULL on success. */
START_TEST(test_need_zero)
{
	size_t cap = 0;
	char *a = grow_reserve(NULL, &cap, 0, 1);

	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(cap, GROW_MIN);
	ck_assert_ptr_eq(grow_reserve(a, &cap, 0, 1), a);
	ck_assert_uint_eq(cap, GROW_MIN);
	free(a);
}
END_TEST

/* Filling one element at a time: the room doubles when full, the array
 * stays where it is while it has room, and the elements written so far
 * survive every move. */
START_TEST(test_fill)
{
	uint32_t *a = NULL, *na;
	size_t cap = 0, n, want = GROW_MIN;

	for (n = 0; n < 10000; n++) {
		na = grow_reserve(a, &cap, n + 1, sizeof(*a));
		ck_assert_ptr_nonnull(na);
		if (n < want)
			ck_assert_ptr_eq(na, a ? a : na);
		if (n == want)
			want *= 2;
		ck_assert_uint_eq(cap, want);
		a = na;
		a[n] = (uint32_t)n * 2654435761u;
	}
	for (n = 0; n < 10000; n++)
		ck_assert_uint_eq(a[n], (uint32_t)n * 2654435761u);
	free(a);
}
END_TEST

/* A need more than twice the room gets at least that need, still a
 * power-of-two multiple of the room. */
START_TEST(test_big_step)
{
	size_t cap = 0;
	char *a = grow_reserve(NULL, &cap, 1, 8), *na;

	ck_assert_ptr_nonnull(a);
	memset(a, 'x', GROW_MIN * 8);
	na = grow_reserve(a, &cap, GROW_MIN * 5, 8);
	ck_assert_ptr_nonnull(na);
	ck_assert_uint_eq(cap, GROW_MIN * 8);
	ck_assert_int_eq(na[0], 'x');
	ck_assert_int_eq(na[GROW_MIN * 8 - 1], 'x');
	free(na);
}
END_TEST

/* A size that does not fit a size_t fails at once, leaving the array
 * and its room as they were (the array still usable, and freed by the
 * caller). */
START_TEST(test_overflow)
{
	size_t cap = 0, before;
	uint64_t *a = grow_reserve(NULL, &cap, 3, sizeof(*a));

	ck_assert_ptr_nonnull(a);
	a[2] = 42;
	before = cap;
	ck_assert_ptr_null(
		grow_reserve(a, &cap, SIZE_MAX / sizeof(*a) + 1, sizeof(*a)));
	ck_assert_uint_eq(cap, before);
	ck_assert_ptr_null(grow_reserve(a, &cap, SIZE_MAX, sizeof(*a)));
	ck_assert_uint_eq(cap, before);
	ck_assert_uint_eq(a[2], 42);
	/* Elements so large that GROW_MIN of them do not fit. */
	cap = 0;
	ck_assert_ptr_null(grow_reserve(NULL, &cap, 2, SIZE_MAX / 2 + 1));
	ck_assert_uint_eq(cap, 0);
	free(a);
}
END_TEST

Suite *grow_suite(void)
{
	Suite *s = suite_create("grow");
	TCase *tc = tcase_create("reserve");

	tcase_add_test(tc, test_first);
	tcase_add_test(tc, test_need_zero);
	tcase_add_test(tc, test_fill);
	tcase_add_test(tc, test_big_step);
	tcase_add_test(tc, test_overflow);
	suite_add_tcase(s, tc);
	return s;
}
