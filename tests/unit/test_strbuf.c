// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for strbuf's shared byte helpers: hex digit values and the
 * strict UTF-8 sequence length that mime, search and names use. Each
 * sequence is handed over in a buffer of exactly its length, so that a
 * read past the end shows under ASan.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

/* Called by the runner (tests/unit/main.c). */
Suite *strbuf_suite(void);

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_hex_value)
{
	unsigned c;

	for (c = 0; c < 256; c++) {
		int want = c >= '0' && c <= '9'	  ? (int)(c - '0')
			   : c >= 'a' && c <= 'f' ? (int)(c - 'a' + 10)
			   : c >= 'A' && c <= 'F' ? (int)(c - 'A' + 10)
						  : -1;

		ck_assert_int_eq(strbuf_hex_value((unsigned char)c), want);
	}
}
END_TEST

/* A sequence, how many bytes of it are given, and the answer. */
static const struct {
	const char *s;
	size_t n;
	size_t len; /* 0: invalid */
	unsigned cp;
} utf8_vectors[] = {
	{"A", 1, 1, 'A'},
	{"\x7f", 1, 1, 0x7f},
	{"\xc3\xa9", 2, 2, 0xe9},
	{"\xe2\x82\xac", 3, 3, 0x20ac},
	{"\xf0\x9f\x98\x80", 4, 4, 0x1f600},
	{"\xf4\x8f\xbf\xbf", 4, 4, 0x10ffff},
	{"\xc3\xa9x", 3, 2, 0xe9}, /* only the first sequence */
	{"", 0, 0, 0}, /* nothing given */
	{"\x80", 1, 0, 0}, /* stray continuation byte */
	{"\xc0\xaf", 2, 0, 0}, /* overlong '/' */
	{"\xc1\xbf", 2, 0, 0}, /* overlong */
	{"\xe0\x80\xaf", 3, 0, 0}, /* overlong, 3 bytes */
	{"\xf0\x80\x80\xaf", 4, 0, 0}, /* overlong, 4 bytes */
	{"\xed\xa0\x80", 3, 0, 0}, /* surrogate U+D800 */
	{"\xed\xbf\xbf", 3, 0, 0}, /* surrogate U+DFFF */
	{"\xf4\x90\x80\x80", 4, 0, 0}, /* above U+10FFFF */
	{"\xf5\x80\x80\x80", 4, 0, 0}, /* lead byte never valid */
	{"\xff", 1, 0, 0},
	{"\xe2\x82", 2, 0, 0}, /* truncated */
	{"\xe2\x82\xac", 2, 0, 0}, /* truncated by n */
	{"\xe2\x28\xac", 3, 0, 0}, /* bad continuation */
};

START_TEST(test_utf8_len)
{
	unsigned char *buf =
		malloc(utf8_vectors[_i].n ? utf8_vectors[_i].n : 1);
	uint32_t cp = 0xdeadbeef;
	size_t len;

	ck_assert_ptr_nonnull(buf);
	memcpy(buf, utf8_vectors[_i].s, utf8_vectors[_i].n);
	len = strbuf_utf8_len(buf, utf8_vectors[_i].n, &cp);
	ck_assert_uint_eq(len, utf8_vectors[_i].len);
	if (len)
		ck_assert_uint_eq(cp, utf8_vectors[_i].cp);
	else
		ck_assert_uint_eq(cp, 0xdeadbeef); /* left alone */
	ck_assert_uint_eq(strbuf_utf8_len(buf, utf8_vectors[_i].n, NULL), len);
	free(buf);
}
END_TEST

Suite *strbuf_suite(void)
{
	Suite *s = suite_create("strbuf");
	TCase *tc = tcase_create("bytes");

	tcase_add_test(tc, test_hex_value);
	tcase_add_loop_test(tc, test_utf8_len, 0, (int)N_OF(utf8_vectors));
	suite_add_tcase(s, tc);
	return s;
}
