// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of mime.c: quoted-printable, base64, charsets to UTF-8,
 * RFC 2047 encoded words, RFC 2231 parameters and safe file names, with
 * broken input that must decode as far as it can and never fail.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* An input, and what it decodes to. */
struct mime_case {
	const char *in;
	const char *out;
};

static const struct mime_case qp_cases[] = {
	{"", ""},
	{"plain", "plain"},
	{"Caf=E9", "Caf\xe9"},
	{"caf=e9", "caf\xe9"},
	{"a=\r\nb", "ab"},
	{"a=\nb", "ab"},
	{"a= \t\r\nb", "ab"},
	{"=3D=3d", "=="},
	{"a=ZZb", "a=ZZb"},
	{"a=4", "a=4"},
	{"end=", "end="},
	{"x_y", "x_y"},
	{"line\r\nnext", "line\r\nnext"},
};

START_TEST(test_qp)
{
	struct strbuf b = {0};

	mime_qp_decode(&b, qp_cases[_i].in, strlen(qp_cases[_i].in));
	ck_assert_str_eq(strbuf_str(&b), qp_cases[_i].out);
	strbuf_free(&b);
}
END_TEST

START_TEST(test_q_underscore)
{
	struct strbuf b = {0};

	mime_q_decode(&b, "a_b=5Fc", 7);
	ck_assert_str_eq(strbuf_str(&b), "a b_c");
	strbuf_free(&b);
}
END_TEST

static const struct mime_case b64_cases[] = {
	{"", ""},
	{"SGVsbG8=", "Hello"},
	{"SGVs\r\nbG8=", "Hello"},
	{" S G V s b G 8 ", "Hello"},
	{"SGVsbG", "Hell"},
	{"SGVsbG8=ignored", "Hello"},
	{"S*G!V#s$b%G^8", "Hello"},
	{"QQ==", "A"},
	{"Q", ""},
	{"====", ""},
};

START_TEST(test_b64)
{
	struct strbuf b = {0};

	mime_b64_decode(&b, b64_cases[_i].in, strlen(b64_cases[_i].in));
	ck_assert_str_eq(strbuf_str(&b), b64_cases[_i].out);
	strbuf_free(&b);
}
END_TEST

/* A charset, bytes in it, and the UTF-8 (with lf: CRLF made LF). */
static const struct {
	const char *charset;
	const char *in;
	const char *out;
	int lf;
} utf8_cases[] = {
	{NULL, "plain", "plain", 0},
	{"us-ascii", "a\r\nb", "a\nb", 1},
	{"us-ascii", "a\r\nb", "a\r\nb", 0},
	{"utf-8", "caf\xc3\xa9", "caf\xc3\xa9", 0},
	{"UTF-8", "bad\xff!", "bad\xef\xbf\xbd!", 0},
	{"utf-8", "cut\xe2\x82", "cut\xef\xbf\xbd\xef\xbf\xbd", 0},
	{"utf-8", "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd", 0},
	{"utf-8", "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 0},
	{"iso-8859-1", "caf\xe9", "caf\xc3\xa9", 0},
	{"ISO-8859-1", "\xe9\r\n\xe8", "\xc3\xa9\n\xc3\xa8", 1},
	{"latin1", "\xfc", "\xc3\xbc", 0},
	{"windows-1252", "\x80 5", "\xe2\x82\xac 5", 0},
	{"iso-8859-15", "\xa4", "\xe2\x82\xac", 0},
	{"koi8-r", "\xf0\xd2\xc9", "\xd0\x9f\xd1\x80\xd0\xb8", 0},
	{"shift_jis", "\x93\xfa", "\xe6\x97\xa5", 0},
	{"shift_jis", "ok\x81", "ok\xef\xbf\xbd", 0},
	{"x-no-such-charset", "a\xc3\xa9\xff", "a\xc3\xa9\xef\xbf\xbd", 0},
	{"iso-8859-1\"; rm -rf", "a", "a", 0},
};

START_TEST(test_to_utf8)
{
	struct strbuf b = {0};

	mime_to_utf8(&b, utf8_cases[_i].charset, utf8_cases[_i].in,
		     strlen(utf8_cases[_i].in), utf8_cases[_i].lf);
	ck_assert_str_eq(strbuf_str(&b), utf8_cases[_i].out);
	strbuf_free(&b);
}
END_TEST

/* NUL bytes pass, and every output is valid UTF-8 whatever the input. */
START_TEST(test_to_utf8_nul_and_junk)
{
	struct strbuf b = {0};
	char junk[256];
	size_t i;

	mime_to_utf8(&b, "utf-8", "a\0b", 3, false);
	ck_assert_uint_eq(b.len, 3);
	ck_assert(memcmp(b.data, "a\0b", 3) == 0);
	strbuf_reset(&b);
	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (char)i;
	mime_to_utf8(&b, "utf-16", junk, sizeof(junk), true);
	mime_to_utf8(&b, "iso-2022-jp", junk, sizeof(junk), true);
	mime_to_utf8(&b, "utf-8", junk, sizeof(junk), true);
	ck_assert(!strbuf_failed(&b));
	/* glibc's iconv gives F4 90 80 80 for U+110000 from UCS-4: not
	 * UTF-8, so each of its bytes becomes U+FFFD */
	strbuf_reset(&b);
	mime_to_utf8(&b, "UCS-4BE", "\0\x11\0\0\0\0\0A", 8, false);
	ck_assert_str_eq(strbuf_str(&b), "\xef\xbf\xbd\xef\xbf\xbd"
					 "\xef\xbf\xbd\xef\xbf\xbd" "A");
	strbuf_free(&b);
}
END_TEST

static const struct mime_case word_cases[] = {
	{"plain text", "plain text"},
	{"=?ISO-8859-1?Q?Caf=E9?=", "Caf\xc3\xa9"},
	{"=?iso-8859-1?q?caf=e9_cr=e8me?=", "caf\xc3\xa9 cr\xc3\xa8me"},
	{"=?UTF-8?B?R3LDvMOfZQ==?= from", "Gr\xc3\xbc\xc3\x9f"
					  "e from"},
	{"a =?UTF-8?Q?b?= c", "a b c"},
	{"=?UTF-8?Q?a?= =?UTF-8?Q?b?=", "ab"},
	{"=?UTF-8?Q?a?=\r\n =?UTF-8?Q?b?=", "ab"},
	{"=?UTF-8?Q?a?= x =?UTF-8?Q?b?=", "a x b"},
	{"=?UTF-8?Q?=E2=9C?= =?UTF-8?Q?=93?=", "\xe2\x9c\x93"},
	{"=?ISO-8859-1?Q?=E9?= =?UTF-8?Q?=C3=A9?=", "\xc3\xa9\xc3\xa9"},
	{"=?utf-8*en?Q?hi?=", "hi"},
	{"=?utf-8?X?abc?=", "=?utf-8?X?abc?="},
	{"=?utf-8?Q?no end", "=?utf-8?Q?no end"},
	{"=??Q?x?=", "=??Q?x?="},
	{"=?", "=?"},
	{"bad \xff byte", "bad \xef\xbf\xbd byte"},
	{"=?UTF-8?Q?bad=FF?=", "bad\xef\xbf\xbd"},
	{"=?x-unknown?Q?a=E9?=", "a\xef\xbf\xbd"},
	{"=?UTF-8?B?!!!?=", ""},
	{"tab\there", "tab\there"},
};

START_TEST(test_words)
{
	struct strbuf b = {0};

	mime_decode_words(&b, word_cases[_i].in, strlen(word_cases[_i].in));
	ck_assert_str_eq(strbuf_str(&b), word_cases[_i].out);
	strbuf_free(&b);
}
END_TEST

START_TEST(test_param)
{
	static const struct mime_param plain[] = {{"charset", "utf-8"},
						  {"NAME", "report.pdf"}};
	static const struct mime_param rfc2231[] = {
		{"filename*", "utf-8''%E2%82%AC%20rates.pdf"}};
	static const struct mime_param cont[] = {
		{"filename*1*", "%A9b"},
		{"filename*0*", "iso-8859-1'fr'a%E9"},
		{"filename*2", "c.txt"},
		{"filename", "fallback.txt"}};
	static const struct mime_param cont_utf8[] = {
		{"filename*0*", "utf-8''a%C3"}, {"filename*1*", "%A9b"}};
	static const struct mime_param words[] = {
		{"name", "=?UTF-8?Q?r=C3=A9sum=C3=A9.pdf?="}};
	static const struct mime_param broken[] = {
		{"filename*0*", "no-quotes%41"},
		{"filename*99", "far"},
		{"filename*00", "leading zero"},
		{"filename*1x", "junk"},
		{NULL, "x"},
		{"filename*1", NULL}};
	static const struct mime_param gap[] = {{"name*1", "b"}};
	char *v;

	v = mime_param(plain, N_OF(plain), "name");
	ck_assert_str_eq(v, "report.pdf");
	free(v);
	ck_assert_ptr_null(mime_param(plain, N_OF(plain), "filename"));
	v = mime_param(rfc2231, N_OF(rfc2231), "filename");
	ck_assert_str_eq(v, "\xe2\x82\xac rates.pdf");
	free(v);
	v = mime_param(cont, N_OF(cont), "filename");
	ck_assert_str_eq(v, "a\xc3\xa9\xc2\xa9"
			    "bc.txt");
	free(v);
	v = mime_param(cont_utf8, N_OF(cont_utf8), "filename");
	ck_assert_str_eq(v, "a\xc3\xa9"
			    "b");
	free(v);
	v = mime_param(words, N_OF(words), "name");
	ck_assert_str_eq(v, "r\xc3\xa9sum\xc3\xa9.pdf");
	free(v);
	v = mime_param(broken, N_OF(broken), "filename");
	ck_assert_str_eq(v, "no-quotesA");
	free(v);
	/* continuations without a first one: as if absent */
	ck_assert_ptr_null(mime_param(gap, N_OF(gap), "name"));
}
END_TEST

START_TEST(test_safe_name)
{
	static const struct mime_case cases[] = {
		{"report.pdf", "report.pdf"},
		{"a/b\\c", "a_b\\c"},
		{"../../etc/passwd", ".._.._etc_passwd"},
		{".", "_"},
		{"..", "__"},
		{"...", "..."},
		{"tab\there\x7f\x01", "tab_here__"},
		{"", ""},
		{"caf\xc3\xa9.txt", "caf\xc3\xa9.txt"},
	};
	struct strbuf b = {0};
	char longname[600];
	size_t i;

	for (i = 0; i < N_OF(cases); i++) {
		strbuf_reset(&b);
		mime_safe_name(&b, cases[i].in);
		ck_assert_str_eq(strbuf_str(&b), cases[i].out);
	}
	/* too long: cut to 255 bytes, the extension kept */
	memset(longname, 'a', 400);
	strcpy(longname + 400, ".pdf");
	strbuf_reset(&b);
	mime_safe_name(&b, longname);
	ck_assert_uint_eq(b.len, MIME_NAME_MAX);
	ck_assert_str_eq(b.data + b.len - 4, ".pdf");
	/* never cut inside a character */
	for (i = 0; i < 290; i++)
		memcpy(longname + 2 * i, "\xc3\xa9", 2);
	longname[580] = '\0';
	strbuf_reset(&b);
	mime_safe_name(&b, longname);
	ck_assert_uint_le(b.len, MIME_NAME_MAX);
	ck_assert_uint_eq(b.len % 2, 0);
	strbuf_free(&b);
}
END_TEST

Suite *mime_suite(void)
{
	Suite *s = suite_create("mime");
	TCase *tc = tcase_create("mime");

	tcase_add_loop_test(tc, test_qp, 0, N_OF(qp_cases));
	tcase_add_test(tc, test_q_underscore);
	tcase_add_loop_test(tc, test_b64, 0, N_OF(b64_cases));
	tcase_add_loop_test(tc, test_to_utf8, 0, N_OF(utf8_cases));
	tcase_add_test(tc, test_to_utf8_nul_and_junk);
	tcase_add_loop_test(tc, test_words, 0, N_OF(word_cases));
	tcase_add_test(tc, test_param);
	tcase_add_test(tc, test_safe_name);
	suite_add_tcase(s, tc);
	return s;
}
