// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of msgstruct.c: BODYSTRUCTURE and ENVELOPE as Dovecot and
 * hostile servers send them (deep nesting, 10,000 parts, missing or
 * malformed fields, absurd sizes), the names .parts gives, and the
 * lines of .summary.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_parse.h"
#include "msgstruct.h"
#include "strbuf.h"

/* A parser holding one "* 1 FETCH (KEY value)" response. */
struct msgstruct_t {
	struct imap_parser *p;
	const struct imap_resp *r;
	struct strbuf line;
};

/* Parses "* 1 FETCH (KEY <value>)" and returns value's token. */
static const struct imap_tok *
msgstruct_t_parse(struct msgstruct_t *t, const char *key, const char *value)
{
	size_t used;

	memset(t, 0, sizeof(*t));
	strbuf_printf(&t->line, "* 1 FETCH (UID 7 %s %s)\r\n", key, value);
	ck_assert(!strbuf_failed(&t->line));
	t->p = imap_parse_new(16u << 20, 1u << 20);
	ck_assert_int_eq(
		imap_parse_feed(t->p, t->line.data, t->line.len, &used, &t->r),
		1);
	ck_assert_uint_eq(t->r->n_toks, 3);
	ck_assert_uint_eq(t->r->toks[2].n_items, 4);
	return &t->r->toks[2].items[3];
}

static void msgstruct_t_free(struct msgstruct_t *t)
{
	imap_parse_free(t->p);
	strbuf_free(&t->line);
}

/* Parses a BODYSTRUCTURE: the return code, *ms_r the result. */
static int msgstruct_t_body(const char *value, struct msgstruct **ms_r)
{
	struct msgstruct_t t;
	int rc = msgstruct_parse(msgstruct_t_parse(&t, "BODYSTRUCTURE", value),
				 ms_r);

	msgstruct_t_free(&t);
	return rc;
}

START_TEST(test_single_text)
{
	struct msgstruct *ms;

	ck_assert_int_eq(msgstruct_t_body("(\"TEXT\" \"PLAIN\" (\"CHARSET\" "
					  "\"iso-8859-1\") NIL NIL "
					  "\"QUOTED-PRINTABLE\" 123 4 NIL NIL "
					  "NIL NIL)",
					  &ms),
			 0);
	ck_assert_uint_eq(ms->n, 1);
	ck_assert_str_eq(ms->parts[0].section, "1");
	ck_assert_str_eq(ms->parts[0].type, "text");
	ck_assert_str_eq(ms->parts[0].subtype, "plain");
	ck_assert_str_eq(ms->parts[0].charset, "iso-8859-1");
	ck_assert_int_eq(ms->parts[0].enc, MSGSTRUCT_ENC_QP);
	ck_assert_uint_eq(ms->parts[0].size, 123);
	ck_assert_int_eq(ms->parts[0].role, MSGSTRUCT_TEXT);
	ck_assert_str_eq(ms->parts[0].name, "text");
	msgstruct_free(ms);
}
END_TEST

/* multipart/mixed: (alternative: text, html), a PDF with an RFC 2231
 * name, an unnamed PNG, an attached message, a second text part. */
START_TEST(test_mixed_names)
{
	struct msgstruct *ms;
	static const char *const names[] = {
		"text",	      "html",	    "\xe2\x82\xac rates.pdf",
		"part-3.png", "part-4.eml", "part-5.txt",
		"notes.txt",
	};
	static const char *const sections[] = {
		"1.1", "1.2", "2", "3", "4", "5", "6",
	};
	size_t i;

	ck_assert_int_eq(
		msgstruct_t_body(
			"(((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL "
			"\"7bit\" 10 1 NIL NIL NIL NIL)(\"text\" \"html\" "
			"(\"charset\" \"utf-8\") NIL NIL \"base64\" 20 1 NIL "
			"NIL NIL NIL) \"alternative\" (\"boundary\" \"x\") NIL "
			"NIL NIL)(\"application\" \"pdf\" (\"name\" "
			"\"old.pdf\") NIL NIL \"base64\" 3000 NIL "
			"(\"attachment\" (\"filename*\" "
			"\"utf-8''%E2%82%AC%20rates.pdf\")) NIL NIL)"
			"(\"image\" \"png\" NIL NIL NIL \"base64\" 400 NIL NIL "
			"NIL NIL)(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" "
			"500 (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL) "
			"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 5 1 NIL NIL "
			"NIL NIL) 9 NIL NIL NIL NIL)(\"text\" \"plain\" NIL "
			"NIL NIL \"7bit\" 6 1 NIL NIL NIL NIL)(\"text\" "
			"\"plain\" (\"name\" \"notes.txt\") NIL NIL \"8bit\" 7 "
			"1 NIL (\"inline\" NIL) NIL NIL) \"mixed\" "
			"(\"boundary\" \"y\") NIL NIL NIL)",
			&ms),
		0);
	ck_assert_uint_eq(ms->n, 7);
	for (i = 0; i < ms->n; i++) {
		ck_assert_str_eq(ms->parts[i].name, names[i]);
		ck_assert_str_eq(ms->parts[i].section, sections[i]);
	}
	ck_assert(ms->parts[2].disp_attachment);
	ck_assert(ms->parts[4].is_message);
	ck_assert_uint_eq(ms->parts[4].size, 500);
	ck_assert_int_eq(ms->parts[1].enc, MSGSTRUCT_ENC_BASE64);
	msgstruct_free(ms);
}
END_TEST

/* Names that clash with the fixed names or with each other get -2,
 * -3, ... before the extension; names that are unsafe are made safe. */
START_TEST(test_name_clashes)
{
	struct msgstruct *ms;
	static const char *const names[] = {
		"text",	    "a.pdf",  "a-2.pdf", "a-2-2.pdf", "text-2",
		"header-2", "html-2", "_",	 "x_y",	      "part-10.bin",
	};
	size_t i;

	ck_assert_int_eq(
		msgstruct_t_body(
			"((\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1 NIL NIL "
			"NIL NIL)"
			"(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL "
			"\"base64\" 1 NIL NIL NIL NIL)"
			"(\"application\" \"pdf\" (\"name\" \"a.pdf\") NIL NIL "
			"\"base64\" 1 NIL NIL NIL NIL)"
			"(\"application\" \"pdf\" (\"name\" \"a-2.pdf\") NIL "
			"NIL "
			"\"base64\" 1 NIL NIL NIL NIL)"
			"(\"text\" \"plain\" (\"name\" \"text\") NIL NIL "
			"\"7bit\" 1 1 NIL NIL NIL NIL)"
			"(\"text\" \"plain\" (\"name\" \"header\") NIL NIL "
			"\"7bit\" 1 1 NIL NIL NIL NIL)"
			"(\"text\" \"html\" NIL NIL NIL \"7bit\" 1 1 NIL "
			"(\"attachment\" (\"filename\" \"html\")) NIL NIL)"
			"(\"a\" \"b\" (\"name\" \".\") NIL NIL NIL 1 NIL NIL "
			"NIL "
			"NIL)"
			"(\"a\" \"b\" (\"name\" \"x/y\") NIL NIL NIL 1 NIL NIL "
			"NIL NIL)"
			"(\"application\" \"x-whatever\" (\"name\" \"\") NIL "
			"NIL "
			"\"base64\" 1 NIL NIL NIL NIL) \"mixed\")",
			&ms),
		0);
	ck_assert_uint_eq(ms->n, 10);
	for (i = 0; i < ms->n; i++)
		ck_assert_str_eq(ms->parts[i].name, names[i]);
	msgstruct_free(ms);
}
END_TEST

/* A body nested n levels deep: n multiparts around one text part. */
static char *msgstruct_t_nested(unsigned n)
{
	struct strbuf b = {0};
	unsigned i;

	for (i = 0; i < n; i++)
		strbuf_puts(&b, "(");
	strbuf_puts(&b, "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 1 1)");
	for (i = 0; i < n; i++)
		strbuf_puts(&b, " \"mixed\")");
	return strbuf_steal(&b);
}

START_TEST(test_deep_nesting)
{
	struct msgstruct *ms = NULL;
	char *body = msgstruct_t_nested(MSGSTRUCT_MAX_DEPTH - 1);

	ck_assert_int_eq(msgstruct_t_body(body, &ms), 0);
	ck_assert_uint_eq(ms->n, 1);
	ck_assert_int_eq(ms->parts[0].role, MSGSTRUCT_TEXT);
	ck_assert_uint_eq(strlen(ms->parts[0].section),
			  2 * (MSGSTRUCT_MAX_DEPTH - 1) - 1);
	msgstruct_free(ms);
	free(body);
	body = msgstruct_t_nested(MSGSTRUCT_MAX_DEPTH + 10);
	ck_assert_int_eq(msgstruct_t_body(body, &ms), -EINVAL);
	ck_assert_ptr_null(ms);
	free(body);
}
END_TEST

START_TEST(test_ten_thousand_parts)
{
	struct msgstruct *ms = NULL;
	struct strbuf b = {0};
	unsigned i;

	strbuf_puts(&b, "(");
	for (i = 0; i < 10000; i++)
		strbuf_puts(&b,
			    "(\"application\" \"octet-stream\" (\"name\" "
			    "\"same.bin\") NIL NIL \"base64\" 10 NIL NIL NIL "
			    "NIL)");
	strbuf_puts(&b, " \"mixed\")");
	ck_assert_int_eq(msgstruct_t_body(strbuf_str(&b), &ms), 0);
	ck_assert_uint_eq(ms->n, MSGSTRUCT_MAX_PARTS);
	ck_assert(ms->truncated);
	ck_assert_str_eq(ms->parts[0].name, "same.bin");
	ck_assert_str_eq(ms->parts[999].name, "same-1000.bin");
	ck_assert_str_eq(ms->parts[999].section, "1000");
	msgstruct_free(ms);
	strbuf_free(&b);
}
END_TEST

/* Missing, malformed and absurd fields: defaults, never a crash. */
START_TEST(test_hostile_fields)
{
	static const char *const ok[] = {
		"(\"text\")",
		"(\"text\" \"plain\")",
		"(NIL NIL NIL NIL NIL NIL NIL)",
		"(\"text\" \"plain\" \"notalist\" NIL NIL \"7bit\" \"big\")",
		"(\"text\" \"plain\" (\"charset\") NIL NIL \"x-uuencode\" "
		"18446744073709551616 1)",
		"(\"text\" \"plain\" (\"a\" \"b\" \"c\") NIL NIL \"7bit\" "
		"99999999999999 1 NIL (\"attachment\") NIL NIL)",
		"(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 5 NIL NIL 3)",
		"(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 5)",
		"(\"a\" \"b\" NIL NIL NIL NIL 1 NIL (NIL NIL) NIL)",
		"(\"a\" \"b\" NIL NIL NIL NIL 1 NIL (\"attachment\" "
		"(\"filename\" NIL)) NIL)",
		"((\"text\" \"plain\") (\"text\" \"plain\"))",
		"(() \"mixed\")",
	};
	struct msgstruct *ms;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int rc = msgstruct_t_body(ok[i], &ms);

		ck_assert_msg(rc == 0 || rc == -EINVAL, "%s: %d", ok[i], rc);
		if (rc == 0) {
			ck_assert_uint_ge(ms->n, 1);
			ck_assert_uint_le(ms->parts[0].size,
					  MSGSTRUCT_MAX_SIZE);
			ck_assert_ptr_nonnull(ms->parts[0].name);
		}
		msgstruct_free(ms);
	}
	ck_assert_int_eq(msgstruct_t_body("(\"text\" \"plain\" NIL NIL NIL "
					  "\"7bit\" 99999999999999 1)",
					  &ms),
			 0);
	ck_assert_uint_eq(ms->parts[0].size, MSGSTRUCT_MAX_SIZE);
	msgstruct_free(ms);
	ck_assert_int_eq(msgstruct_t_body("NIL", &ms), -EINVAL);
	ck_assert_int_eq(msgstruct_t_body("()", &ms), -EINVAL);
	ck_assert_int_eq(msgstruct_t_body("\"text\"", &ms), -EINVAL);
}
END_TEST

START_TEST(test_envelope_and_summary_line)
{
	struct msgstruct_envelope e;
	struct strbuf out = {0};
	struct msgstruct_t t;
	const struct imap_tok *env;

	env = msgstruct_t_parse(
		&t, "ENVELOPE",
		"(\"Mon, 4 Mar 2024 10:00:00 +0000\" "
		"\"=?ISO-8859-1?Q?Caf=E9?=\tand\x01 more\" "
		"((NIL NIL \"team\" NIL)(\"=?UTF-8?Q?Andr=C3=A9?=\" NIL "
		"\"andre\" \"example.org\")(NIL NIL NIL NIL)) NIL NIL NIL NIL "
		"NIL "
		"NIL NIL)");
	ck_assert(msgstruct_envelope(env, &e));
	msgstruct_summary_line(&out, "n.eml", 1709546400, "\\Seen $Work", 1234,
			       &e);
	ck_assert_str_eq(strbuf_str(&out),
			 "n.eml\t2024-03-04T10:00:00Z\t\\Seen $Work\t1234\t"
			 "Andr\xc3\xa9 <andre@example.org>\t"
			 "Caf\xc3\xa9 and  more\n");
	msgstruct_t_free(&t);

	/* no name, no host; NIL subject */
	env = msgstruct_t_parse(&t, "ENVELOPE",
				"(NIL NIL ((NIL NIL \"root\" NIL)))");
	/* a mailbox without host is a group start: no address */
	ck_assert(msgstruct_envelope(env, &e));
	strbuf_reset(&out);
	msgstruct_summary_line(&out, "x", 0, "", 0, &e);
	ck_assert_str_eq(strbuf_str(&out),
			 "x\t1970-01-01T00:00:00Z\t\t0\t\t\n");
	msgstruct_t_free(&t);

	env = msgstruct_t_parse(&t, "ENVELOPE",
				"(NIL \"s\" ((NIL NIL \"bob\" \"h\")))");
	ck_assert(msgstruct_envelope(env, &e));
	strbuf_reset(&out);
	msgstruct_summary_line(&out, "y", 0, NULL, 1, &e);
	ck_assert_str_eq(strbuf_str(&out),
			 "y\t1970-01-01T00:00:00Z\t\t1\tbob@h\ts\n");
	msgstruct_t_free(&t);

	env = msgstruct_t_parse(&t, "ENVELOPE", "(NIL)");
	ck_assert(!msgstruct_envelope(env, &e));
	msgstruct_t_free(&t);
	env = msgstruct_t_parse(&t, "ENVELOPE", "NIL");
	ck_assert(!msgstruct_envelope(env, &e));
	msgstruct_t_free(&t);
	strbuf_free(&out);
}
END_TEST

Suite *msgstruct_suite(void)
{
	Suite *s = suite_create("msgstruct");
	TCase *tc = tcase_create("msgstruct");

	tcase_add_test(tc, test_single_text);
	tcase_add_test(tc, test_mixed_names);
	tcase_add_test(tc, test_name_clashes);
	tcase_add_test(tc, test_deep_nesting);
	tcase_add_test(tc, test_ten_thousand_parts);
	tcase_add_test(tc, test_hostile_fields);
	tcase_add_test(tc, test_envelope_and_summary_line);
	suite_add_tcase(s, tc);
	return s;
}
