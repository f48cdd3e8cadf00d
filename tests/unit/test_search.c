// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for search: queries from a table with the exact wire form
 * each must give (rendered with synchronising literals, as a server
 * reads it), queries that must be refused, injection attempts whose
 * wire form must stay one command, and the UID sets servers send.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search.h"

/* Called by the runner (tests/unit/main.c). */
Suite *search_suite(void);

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Parses q and renders its wire form into out; returns the rc. */
static int render(const char *q, char *out, size_t size, bool *utf8_r)
{
	struct search_query *sq;
	struct search_wire w;
	char err[256];
	int rc = search_parse(q, &sq, err, sizeof(err));

	if (rc < 0)
		return rc;
	ck_assert_int_eq(search_emit(sq, &w), 0);
	search_wire_render(&w, true, out, size);
	if (utf8_r)
		*utf8_r = sq->utf8;
	search_wire_free(&w);
	search_free(sq);
	return 0;
}

static const struct {
	const char *in, *wire;
} good[] = {
	{"ALL", "ALL"},
	{"from alice", "FROM \"alice\""},
	{"FROM alice SINCE 1-Jan-2024", "FROM \"alice\" SINCE 1-Jan-2024"},
	{"OR SUBJECT invoice BODY \"net 30\"",
	 "OR SUBJECT \"invoice\" BODY \"net 30\""},
	{"since 01-feb-2024", "SINCE 1-Feb-2024"},
	{"ON 29-Feb-2024", "ON 29-Feb-2024"},
	{"SINCE \"1-Jan-2024\"", "SINCE 1-Jan-2024"}, /* RFC 3501 date */
	{"NOT SEEN", "NOT SEEN"},
	{"NOT (SEEN FLAGGED)", "NOT (SEEN FLAGGED)"},
	{"NOT(SEEN)", "NOT (SEEN)"},
	{"(OR FROM a TO b) UNDELETED", "(OR FROM \"a\" TO \"b\") UNDELETED"},
	{"HEADER X-Mailer mutt", "HEADER \"X-Mailer\" \"mutt\""},
	{"HEADER List-Id \"\"", "HEADER \"List-Id\" \"\""},
	{"LARGER 1000 SMALLER 4294967295", "LARGER 1000 SMALLER 4294967295"},
	{"LARGER 007", "LARGER 7"},
	{"UID 1:3,7,10:*", "UID 1:3,7,10:*"},
	{"UID 0005", "UID 5"},
	{"1:*", "1:*"},
	{"KEYWORD $Junk UNKEYWORD work", "KEYWORD $Junk UNKEYWORD work"},
	{"SUBJECT a%2Fb%25c", "SUBJECT \"a/b%c\""},
	{"SUBJECT 100%", "SUBJECT \"100%\""},
	{"SUBJECT %41", "SUBJECT \"%41\""},
	{"SUBJECT \"say \\\"hi\\\" \\\\o/\"",
	 "SUBJECT \"say \\\"hi\\\" \\\\o/\""},
	{"  ANSWERED\tDRAFT  ", "ANSWERED DRAFT"},
	{"SENTBEFORE 1-Jan-2000 SENTON 2-Jan-2000 SENTSINCE 3-Jan-2000 BEFORE "
	 "4-Jan-2000",
	 "SENTBEFORE 1-Jan-2000 SENTON 2-Jan-2000 SENTSINCE 3-Jan-2000 BEFORE "
	 "4-Jan-2000"},
	{"NEW OLD RECENT DELETED UNSEEN UNFLAGGED UNDRAFT UNANSWERED",
	 "NEW OLD RECENT DELETED UNSEEN UNFLAGGED UNDRAFT UNANSWERED"},
	{"CC c BCC d TEXT e", "CC \"c\" BCC \"d\" TEXT \"e\""},
	/* What looks like protocol is a string like any other. */
	{"SUBJECT {5}", "SUBJECT \"{5}\""},
	{"SUBJECT \"x\\\" ALL\"", "SUBJECT \"x\\\" ALL\""},
	/* Non-ASCII goes as a literal, with CHARSET UTF-8. */
	{"SUBJECT Grüße", "CHARSET UTF-8 SUBJECT {7}\r\nGrüße"},
	{"FROM \"Zoë\" TO x", "CHARSET UTF-8 FROM {4}\r\nZoë TO \"x\""},
};

START_TEST(test_good)
{
	char out[512];
	bool utf8 = false;

	ck_assert_int_eq(render(good[_i].in, out, sizeof(out), &utf8), 0);
	ck_assert_str_eq(out, good[_i].wire);
	ck_assert(utf8 == (strstr(good[_i].wire, "CHARSET") != NULL));
}
END_TEST

static const char *const bad[] = {
	"",
	"   ",
	"FOO",
	"FROM",
	"SINCE 32-Jan-2024",
	"SINCE 29-Feb-2023",
	"SINCE 1-Foo-2024",
	"SINCE 1-Jan-24",
	"SINCE 2024-01-01",
	"LARGER 4294967296",
	"LARGER -1",
	"LARGER 1k",
	"UID 0",
	"UID 1::3",
	"UID 1,",
	"UID ,1",
	"UID a",
	"0",
	"OR SEEN",
	"NOT",
	"(SEEN",
	"SEEN)",
	"()",
	"\"SEEN\"",
	"SUBJECT \"open",
	"SUBJECT \"a\\x\"",
	"SUBJECT \"a\"b",
	"KEYWORD \\Seen",
	"KEYWORD \"a b\"",
	"KEYWORD a*",
	"SUBJECT \xff",
	"SUBJECT \xc3",
	"SUBJECT \xc0\xaf",
	"SUBJECT \xed\xa0\x80",
	"HEADER X",
	"{5}",
	"SEEN\r\nA1 DELETE INBOX",
};

START_TEST(test_bad)
{
	struct search_query *q = (void *)1;
	char err[256];

	ck_assert_int_eq(search_parse(bad[_i], &q, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(q);
	ck_assert_msg(err[0] != '\0', "no reason for \"%s\"", bad[_i]);
	for (const char *p = err; *p; p++)
		ck_assert((unsigned char)*p >= 0x20 &&
			  (unsigned char)*p < 0x7f);
}
END_TEST

/* Bounds: nesting, key count, string length, set size, query size. */
START_TEST(test_bounds)
{
	struct search_query *q;
	char err[256], *s;
	size_t i;

	s = malloc(SEARCH_MAX_QUERY * 2 + 16);
	ck_assert_ptr_nonnull(s);
	s[0] = '\0';
	for (i = 0; i < SEARCH_MAX_DEPTH + 2; i++)
		strcat(s, "NOT ");
	strcat(s, "SEEN");
	ck_assert_int_eq(search_parse(s, &q, err, sizeof(err)), -EINVAL);
	ck_assert(strstr(err, "nested") != NULL);

	s[0] = '\0';
	for (i = 0; i < SEARCH_MAX_KEYS + 1; i++)
		strcat(s, "SEEN ");
	ck_assert_int_eq(search_parse(s, &q, err, sizeof(err)), -EINVAL);

	strcpy(s, "SUBJECT ");
	memset(s + 8, 'a', SEARCH_MAX_STRING + 1);
	s[8 + SEARCH_MAX_STRING + 1] = '\0';
	ck_assert_int_eq(search_parse(s, &q, err, sizeof(err)), -EINVAL);
	s[8 + SEARCH_MAX_STRING] = '\0';
	ck_assert_int_eq(search_parse(s, &q, err, sizeof(err)), 0);
	search_free(q);

	memset(s, 'a', SEARCH_MAX_QUERY + 1);
	s[SEARCH_MAX_QUERY + 1] = '\0';
	ck_assert_int_eq(search_parse(s, &q, err, sizeof(err)), -EINVAL);

	strcpy(s, "UID 1");
	for (i = 0; i < SEARCH_MAX_SET; i++)
		strcat(s, ",1");
	ck_assert_int_eq(search_parse(s, &q, err, sizeof(err)), -EINVAL);
	free(s);
}
END_TEST

/*
 * Injection: whatever the query holds, the wire form must be one
 * command: outside literals no CR, LF or NUL, and every literal is
 * announced with its exact length, so the server reads its bytes as
 * data. Checked by walking the rendered text as a server would.
 */
static const char *const inject[] = {
	"SUBJECT \"a\r\nA2 DELETE INBOX\"",
	"SUBJECT \"\r\n\"",
	"BODY \"x\nA2 LOGOUT\"",
	"SUBJECT \"{5}\r\nhello\"",
	"SUBJECT \"{5+}\"",
	"SUBJECT \"\\\"\r\nA2 NOOP\"",
	"HEADER \"X\r\nA2 NOOP\" \"\xc3\xa9\r\n\"",
	"OR SUBJECT \"\xe2\x82\xac\" BODY \"a\\\\\"",
	"SUBJECT a\rb",
};

/* Walks a wire form like a server: returns how many command lines it
 * holds (literals skipped by their announced length). */
static int count_lines(const char *w, size_t len)
{
	size_t i = 0;
	int lines = 1;

	while (i < len) {
		if (w[i] == '{') {
			char *end;
			unsigned long n = strtoul(w + i + 1, &end, 10);

			if (*end == '}' && end[1] == '\r' && end[2] == '\n') {
				i = (size_t)(end - w) + 3 + n;
				continue;
			}
		}
		if (w[i] == '\r' || w[i] == '\n' || w[i] == '\0')
			lines++;
		i++;
	}
	return lines;
}

START_TEST(test_inject)
{
	struct search_query *q;
	struct search_wire w;
	char err[256], out[1024];
	size_t i, len;
	bool in_quote = false;

	ck_assert_int_eq(search_parse(inject[_i], &q, err, sizeof(err)), 0);
	ck_assert_int_eq(search_emit(q, &w), 0);
	/* No CR, LF, NUL or 8-bit byte in any text part; quotes balanced. */
	for (i = 0; i < w.n; i++) {
		const char *t = w.text.data + w.parts[i].off;
		size_t j;

		if (w.parts[i].literal)
			continue;
		for (j = 0; j < w.parts[i].len; j++) {
			unsigned char c = t[j];

			ck_assert(c >= 0x20 && c < 0x7f);
			if (c == '\\' && in_quote) {
				j++;
				continue;
			}
			if (c == '"')
				in_quote = !in_quote;
		}
		ck_assert(!in_quote);
	}
	len = search_wire_render(&w, true, out, sizeof(out));
	ck_assert_uint_lt(len, sizeof(out));
	ck_assert_int_eq(count_lines(out, len), 1);
	search_wire_free(&w);
	search_free(q);
}
END_TEST

/* The trace form never shows literal bytes. */
START_TEST(test_render_trace)
{
	struct search_query *q;
	struct search_wire w;
	char err[64], out[128];

	ck_assert_int_eq(
		search_parse("SUBJECT \"a\r\nb\" SEEN", &q, err, sizeof(err)),
		0);
	ck_assert_int_eq(search_emit(q, &w), 0);
	search_wire_render(&w, false, out, sizeof(out));
	ck_assert_str_eq(out, "SUBJECT {4 bytes} SEEN");
	/* A buffer too small is cut and terminated. */
	ck_assert_uint_eq(search_wire_render(&w, false, out, 5), 22);
	ck_assert_str_eq(out, "SUBJ");
	search_wire_free(&w);
	search_free(q);
}
END_TEST

START_TEST(test_uid_set)
{
	uint32_t *u = NULL;
	size_t n = 0, cap = 0;

	ck_assert_int_eq(search_uid_set("1:3,7,10:9", 10, &u, &n, &cap, 100),
			 0);
	ck_assert_uint_eq(n, 6);
	ck_assert_uint_eq(u[0], 1);
	ck_assert_uint_eq(u[2], 3);
	ck_assert_uint_eq(u[3], 7);
	ck_assert_uint_eq(u[4], 9);
	ck_assert_uint_eq(u[5], 10);
	n = 0;
	/* A huge range stops at max. */
	ck_assert_int_eq(search_uid_set("1:4294967295", 12, &u, &n, &cap, 50),
			 1);
	ck_assert_uint_eq(n, 50);
	n = 0;
	ck_assert_int_eq(search_uid_set("4294967295", 10, &u, &n, &cap, 5), 0);
	ck_assert_uint_eq(u[0], 4294967295u);
	static const char *const bad_sets[] = {
		"",	 "0", "1:",  ":2",	   "1,", ",1",
		"1:2:3", "*", "1:*", "4294967296", "a",	 "1 2",
	};
	for (size_t i = 0; i < N_OF(bad_sets); i++) {
		n = 0;
		ck_assert_msg(search_uid_set(bad_sets[i], strlen(bad_sets[i]),
					     &u, &n, &cap, 100) < 0,
			      "accepted \"%s\"", bad_sets[i]);
	}
	free(u);
}
END_TEST

Suite *search_suite(void)
{
	Suite *s = suite_create("search");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_good, 0, N_OF(good));
	tcase_add_loop_test(tc, test_bad, 0, N_OF(bad));
	tcase_add_loop_test(tc, test_inject, 0, N_OF(inject));
	tcase_add_test(tc, test_bounds);
	tcase_add_test(tc, test_render_trace);
	tcase_add_test(tc, test_uid_set);
	suite_add_tcase(s, tc);
	return s;
}
