// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for imap_parse. Every valid input is fed whole, a byte at
 * a time, and cut in two at every position, and must give the same
 * parse (printed by dump_resp()); every invalid one must fail at the
 * same byte with the same message however it is cut.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imap_parse.h"

/* Called by the runner (tests/unit/main.c). */
static void uid_set_cb(void *ctx, uint32_t lo, uint32_t hi)
{
	char *out = ctx;

	sprintf(out + strlen(out), "[%u-%u]", lo, hi);
}

START_TEST(test_uid_set)
{
	char out[256];

	out[0] = 0;
	ck_assert(imap_parse_uid_set("1:3,7,12:9", 10, 100, uid_set_cb, out));
	ck_assert_str_eq(out, "[1-3][7-7][9-12]");
	out[0] = 0;
	ck_assert(imap_parse_uid_set("4294967295", 10, 100, uid_set_cb, out));
	ck_assert_str_eq(out, "[4294967295-4294967295]");
	out[0] = 0;
	ck_assert(!imap_parse_uid_set("4294967296", 10, 100, uid_set_cb, out));
	ck_assert(!imap_parse_uid_set("0", 1, 100, uid_set_cb, out));
	ck_assert(!imap_parse_uid_set("1:*", 3, 100, uid_set_cb, out));
	ck_assert(!imap_parse_uid_set("1,,2", 4, 100, uid_set_cb, out));
	ck_assert(!imap_parse_uid_set("1,", 2, 100, uid_set_cb, out));
	ck_assert(!imap_parse_uid_set("", 0, 100, uid_set_cb, out));
	ck_assert(!imap_parse_uid_set(":3", 2, 100, uid_set_cb, out));
	out[0] = 0;
	/* The bound on ranges holds, after the ones before it. */
	ck_assert(!imap_parse_uid_set("1,2,3", 5, 2, uid_set_cb, out));
	ck_assert_str_eq(out, "[1-1][2-2]");
	out[0] = 0;
	/* len limits what is read: no NUL needed. */
	ck_assert(imap_parse_uid_set("5:6,9", 3, 10, uid_set_cb, out));
	ck_assert_str_eq(out, "[5-6]");
}
END_TEST

Suite *imap_parse_suite(void);

#define MAX_LINE 8192
#define MAX_LIT ((size_t)16 << 20)

/* A growing string for the printed parse trees. */
struct sb {
	char *s; /* owned */
	size_t len;
	size_t cap;
};

/* Appends n bytes to b (aborts the test when out of memory). */
static void sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->cap - b->len <= n) {
		b->cap = (b->len + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		ck_assert_ptr_nonnull(b->s);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* Appends a C string to b. */
static void sb_str(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* Appends bytes readably: \" and \\ escaped, control bytes as \xNN. */
static void dump_bytes(struct sb *b, const char *s, size_t n)
{
	char e[8];
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			e[0] = '\\';
			e[1] = (char)c;
			sb_add(b, e, 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(e, sizeof(e), "\\x%02x", c);
			sb_str(b, e);
		} else {
			sb_add(b, (const char *)&c, 1);
		}
	}
}

/* Appends one token: atoms bare, strings quoted, lists in parens.
 * Also checks the invariants of struct imap_tok. */
static void dump_tok(struct sb *b, const struct imap_tok *t)
{
	size_t i;

	switch (t->type) {
	case IMAP_TOK_ATOM:
		ck_assert_ptr_nonnull(t->str);
		ck_assert_int_eq(t->str[t->len], '\0');
		ck_assert_uint_gt(t->len, 0);
		sb_add(b, t->str, t->len);
		break;
	case IMAP_TOK_STRING:
		ck_assert_ptr_nonnull(t->str);
		ck_assert_int_eq(t->str[t->len], '\0');
		sb_str(b, "\"");
		dump_bytes(b, t->str, t->len);
		sb_str(b, "\"");
		break;
	case IMAP_TOK_NIL:
		ck_assert_ptr_null(t->str);
		sb_str(b, "NIL");
		break;
	case IMAP_TOK_LIST:
		ck_assert_ptr_null(t->str);
		ck_assert(t->n_items == 0 || t->items != NULL);
		ck_assert(t->n_items > 0 || t->items == NULL);
		sb_str(b, "(");
		for (i = 0; i < t->n_items; i++) {
			if (i)
				sb_str(b, " ");
			dump_tok(b, &t->items[i]);
		}
		sb_str(b, ")");
		break;
	default:
		ck_abort_msg("bad token type %d", t->type);
	}
}

/* Appends one response and a newline, e.g.
 *   a1 OK [COPYUID 38 10:12 20:22] text="done"
 *   * 12 FETCH (UID 5 BODY[] "hello")
 * and checks which fields are set for each kind of response. */
static void dump_resp(struct sb *b, const struct imap_resp *r)
{
	static const char *const status[] = {"",    "OK",  "NO",
					     "BAD", "BYE", "PREAUTH"};
	size_t i;

	ck_assert(r->n_code == 0 || r->code != NULL);
	ck_assert(r->n_toks == 0 || r->toks != NULL);
	switch (r->kind) {
	case IMAP_RESP_CONTINUE:
		ck_assert_ptr_null(r->tag);
		sb_str(b, "+");
		break;
	case IMAP_RESP_UNTAGGED:
		ck_assert_ptr_null(r->tag);
		sb_str(b, "*");
		break;
	case IMAP_RESP_TAGGED:
		ck_assert_ptr_nonnull(r->tag);
		sb_str(b, r->tag);
		break;
	}
	if (r->status != IMAP_STATUS_NONE) {
		ck_assert_int_ne(r->kind, IMAP_RESP_CONTINUE);
		ck_assert_uint_eq(r->n_toks, 0);
		sb_str(b, " ");
		sb_str(b, status[r->status]);
		if (r->n_code) {
			sb_str(b, " [");
			for (i = 0; i < r->n_code; i++) {
				if (i)
					sb_str(b, " ");
				dump_tok(b, &r->code[i]);
			}
			sb_str(b, "]");
		}
	} else {
		ck_assert_uint_eq(r->n_code, 0);
	}
	if (r->status != IMAP_STATUS_NONE || r->kind == IMAP_RESP_CONTINUE) {
		ck_assert_ptr_nonnull(r->text);
		sb_str(b, " text=\"");
		dump_bytes(b, r->text, strlen(r->text));
		sb_str(b, "\"");
	} else {
		ck_assert_ptr_null(r->text);
		ck_assert_uint_gt(r->n_toks, 0);
		for (i = 0; i < r->n_toks; i++) {
			sb_str(b, " ");
			dump_tok(b, &r->toks[i]);
		}
	}
	sb_str(b, "\n");
}

/* What feeding one input gave. */
struct run {
	struct sb dump; /* owned: the responses, one a line */
	int rc; /* 1 all complete, 0 input ended inside one, -1 */
	size_t err_at; /* -1: offset in the input of the refused byte */
	char err[256];
};

/*
 * Feeds in[0, len) to a new parser in pieces: first cut bytes, then
 * the rest chunk bytes at a time, feeding again what a response left
 * of each piece.
 */
static void run_feed(const char *in, size_t len, size_t cut, size_t chunk,
		     size_t max_line, size_t max_lit, struct run *r)
{
	struct imap_parser *p = imap_parse_new(max_line, max_lit);
	const struct imap_resp *resp;
	size_t pos = 0, end, consumed;
	int rc = 1;

	ck_assert_ptr_nonnull(p);
	memset(r, 0, sizeof(*r));
	while (pos < len) {
		end = pos == 0 ? cut : pos + chunk;
		if (end > len)
			end = len;
		while (pos < end) {
			rc = imap_parse_feed(p, in + pos, end - pos, &consumed,
					      &resp);
			ck_assert_uint_le(consumed, end - pos);
			if (rc < 0) {
				ck_assert_ptr_null(resp);
				r->rc = -1;
				r->err_at = pos + consumed;
				snprintf(r->err, sizeof(r->err), "%s",
					 imap_parse_error(p));
				imap_parse_free(p);
				return;
			}
			if (rc == 0) {
				ck_assert_uint_eq(consumed, end - pos);
				ck_assert_ptr_null(resp);
			} else {
				ck_assert_int_eq(rc, 1);
				ck_assert_uint_gt(consumed, 0);
				dump_resp(&r->dump, resp);
			}
			pos += consumed;
		}
	}
	r->rc = rc;
	imap_parse_free(p);
}

/* Feeds a valid input whole, byte by byte and cut at every position;
 * each must give want. */
static void check_valid(const char *in, size_t len, const char *want)
{
	struct run r;
	size_t k;

	run_feed(in, len, len, len, MAX_LINE, MAX_LIT, &r);
	ck_assert_msg(r.rc == 1, "whole: rc %d (%s) for %s", r.rc, r.err, in);
	ck_assert_str_eq(r.dump.s, want);
	free(r.dump.s);

	run_feed(in, len, 1, 1, MAX_LINE, MAX_LIT, &r);
	ck_assert_msg(r.rc == 1, "bytewise: rc %d (%s)", r.rc, r.err);
	ck_assert_str_eq(r.dump.s, want);
	free(r.dump.s);

	for (k = 1; k < len; k++) {
		run_feed(in, len, k, len, MAX_LINE, MAX_LIT, &r);
		ck_assert_msg(r.rc == 1, "cut at %zu: rc %d (%s)", k, r.rc,
			      r.err);
		ck_assert_msg(strcmp(r.dump.s, want) == 0,
			      "cut at %zu: got %s want %s", k, r.dump.s, want);
		free(r.dump.s);
	}
}

/* Feeds an invalid input whole, byte by byte and cut at every position;
 * each must fail at the same byte with the same message, which holds
 * want_err. */
static void check_error(const char *in, size_t len, size_t max_line,
			size_t max_lit, const char *want_err)
{
	struct run r;
	size_t at, k;
	char err[256];

	run_feed(in, len, len, len, max_line, max_lit, &r);
	free(r.dump.s);
	ck_assert_msg(r.rc == -1, "accepted: %s", in);
	ck_assert_msg(strstr(r.err, want_err), "error \"%s\" lacks \"%s\"",
		      r.err, want_err);
	at = r.err_at;
	memcpy(err, r.err, sizeof(err));

	run_feed(in, len, 1, 1, max_line, max_lit, &r);
	free(r.dump.s);
	ck_assert_int_eq(r.rc, -1);
	ck_assert_uint_eq(r.err_at, at);
	ck_assert_str_eq(r.err, err);

	for (k = 1; k < len; k++) {
		run_feed(in, len, k, len, max_line, max_lit, &r);
		free(r.dump.s);
		ck_assert_int_eq(r.rc, -1);
		ck_assert_msg(r.err_at == at,
			      "cut at %zu: error at %zu not %zu", k, r.err_at,
			      at);
		ck_assert_str_eq(r.err, err);
	}
}

struct valid_case {
	const char *in;
	size_t len;
	const char *want;
};

/* V() takes the length from the literal, so inputs may hold NULs. */
#define V(in, want)                      \
	{                                \
		in, sizeof(in) - 1, want \
	}

static const struct valid_case valid_cases[] = {
	/* the examples of the requirements */
	V("* 12 FETCH (UID 5 FLAGS (\\Seen $Label1) RFC822.SIZE 1234 "
	  "INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" BODY[]<0> {5}\r\n"
	  "hello)\r\n",
	  "* 12 FETCH (UID 5 FLAGS (\\Seen $Label1) RFC822.SIZE 1234 "
	  "INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" BODY[]<0> "
	  "\"hello\")\n"),
	V("* LIST (\\HasNoChildren \\Noselect) \".\" \"INBOX.Sub\"\r\n",
	  "* LIST (\\HasNoChildren \\Noselect) \".\" \"INBOX.Sub\"\n"),
	V("* LIST () NIL INBOX\r\n", "* LIST () NIL INBOX\n"),
	V("* LIST (\\Marked) \"/\" {7}\r\nfoo bar\r\n",
	  "* LIST (\\Marked) \"/\" \"foo bar\"\n"),
	V("* ESEARCH (TAG \"a3\") UID ALL 1:3,5\r\n",
	  "* ESEARCH (TAG \"a3\") UID ALL 1:3,5\n"),
	V("* 3 EXPUNGE\r\n", "* 3 EXPUNGE\n"),
	V("* VANISHED (EARLIER) 1:5\r\n", "* VANISHED (EARLIER) 1:5\n"),
	V("* STATUS \"INBOX\" (MESSAGES 3 UIDNEXT 9)\r\n",
	  "* STATUS \"INBOX\" (MESSAGES 3 UIDNEXT 9)\n"),
	V("* CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN\r\n",
	  "* CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN\n"),
	V("* FLAGS (\\Answered \\Flagged)\r\n",
	  "* FLAGS (\\Answered \\Flagged)\n"),
	V("* 5 EXISTS\r\n", "* 5 EXISTS\n"),
	/* status responses, codes and text */
	V("* OK [PERMANENTFLAGS (\\Seen \\*)] Limited\r\n",
	  "* OK [PERMANENTFLAGS (\\Seen \\*)] text=\"Limited\"\n"),
	V("a1 OK [COPYUID 38 10:12 20:22] Done\r\n",
	  "a1 OK [COPYUID 38 10:12 20:22] text=\"Done\"\n"),
	V("* OK [CAPABILITY IMAP4rev1 SASL-IR ID IDLE LITERAL+ AUTH=PLAIN] "
	  "Dovecot ready.\r\n",
	  "* OK [CAPABILITY IMAP4rev1 SASL-IR ID IDLE LITERAL+ AUTH=PLAIN] "
	  "text=\"Dovecot ready.\"\n"),
	V("* OK [UIDVALIDITY 3857529045] UIDs valid\r\n",
	  "* OK [UIDVALIDITY 3857529045] text=\"UIDs valid\"\n"),
	V("* NO [ALERT]\r\n", "* NO [ALERT] text=\"\"\n"),
	V("* OK\r\n", "* OK text=\"\"\n"),
	V("* OK \r\n", "* OK text=\"\"\n"),
	V("* ok hello world\r\n", "* OK text=\"hello world\"\n"),
	V("a2 NO no such mailbox\r\n", "a2 NO text=\"no such mailbox\"\n"),
	V("A003 bad [PARSE] syntax error\r\n",
	  "A003 BAD [PARSE] text=\"syntax error\"\n"),
	V("a4 OK\r\n", "a4 OK text=\"\"\n"),
	V("* BYE Logging out\r\n", "* BYE text=\"Logging out\"\n"),
	V("* PREAUTH [CAPABILITY IMAP4rev1] hi\r\n",
	  "* PREAUTH [CAPABILITY IMAP4rev1] text=\"hi\"\n"),
	V("* NO [BADCHARSET (UTF-8 US-ASCII)] charset\r\n",
	  "* NO [BADCHARSET (UTF-8 US-ASCII)] text=\"charset\"\n"),
	V("* OK [HIGHESTMODSEQ 715194045007]\r\n",
	  "* OK [HIGHESTMODSEQ 715194045007] text=\"\"\n"),
	V("* OK [X NIL \"q\" ] t\r\n", "* OK [X NIL \"q\"] text=\"t\"\n"),
	V("* OK [ALERT]text\r\n", "* OK [ALERT] text=\"text\"\n"),
	V("* OK [REFERRAL imap://u;AUTH=*@h/] go\r\n",
	  "* OK [REFERRAL imap://u;AUTH=*@h/] text=\"go\"\n"),
	V("* OK text {5}\r\n", "* OK text=\"text {5}\"\n"),
	V("* OK caf\xc3\xa9\tx [y] (z\r\n",
	  "* OK text=\"caf\xc3\xa9\\x09x [y] (z\"\n"),
	V("A.1-x] OK fine\r\n", "A.1-x] OK text=\"fine\"\n"),
	/* continuation requests */
	V("+ \r\n", "+ text=\"\"\n"),
	V("+\r\n", "+ text=\"\"\n"),
	V("+ Ready for literal\r\n", "+ text=\"Ready for literal\"\n"),
	V("+ YGgGCSqGSIb3EgECAgIAb1kwV6ADAgEFoQMCAQ+iSzBJoAMCAQGhQgRA\r\n",
	  "+ "
	  "text=\"YGgGCSqGSIb3EgECAgIAb1kwV6ADAgEFoQMCAQ+"
	  "iSzBJoAMCAQGhQgRA\"\n"),
	V("+ see {5}\r\n", "+ text=\"see {5}\"\n"),
	/* NIL only as a whole token */
	V("* 1 FETCH (ENVELOPE (NIL \"NIL\" NILS nil Nil NIL[] "
	  "{3}\r\nNIL))\r\n",
	  "* 1 FETCH (ENVELOPE (NIL \"NIL\" NILS NIL NIL NIL[] \"NIL\"))\n"),
	/* quoted strings */
	V("* LIST () \"\\\\\" \"a\\\"b\\\\c\"\r\n",
	  "* LIST () \"\\\\\" \"a\\\"b\\\\c\"\n"),
	V("* LIST () \"/\" \"Re\xc3\xa7us\"\r\n",
	  "* LIST () \"/\" \"Re\xc3\xa7us\"\n"),
	V("* 1 FETCH (X \"a{5}\" Y \"(\" \"]\")\r\n",
	  "* 1 FETCH (X \"a{5}\" Y \"(\" \"]\")\n"),
	/* lists */
	V("* X \"\" () ((a (b (c))) ()) (())\r\n",
	  "* X \"\" () ((a (b (c))) ()) (())\n"),
	V("* 1 FETCH (FLAGS ())\r\n", "* 1 FETCH (FLAGS ())\n"),
	V("* (a) b\r\n", "* (a) b\n"),
	V("* X (a)(b)\"c\"\"d\"(e)f\r\n", "* X (a) (b) \"c\" \"d\" (e) f\n"),
	/* spaces */
	V("* SEARCH\r\n", "* SEARCH\n"),
	V("* SEARCH \r\n", "* SEARCH\n"),
	V("* SEARCH  2 3   4 \r\n", "* SEARCH 2 3 4\n"),
	/* atoms */
	V("* 2 FETCH (BODY[HEADER.FIELDS (FROM TO)]<0> {4}\r\nab\r\n "
	  "BODY[]<4096> NIL)\r\n",
	  "* 2 FETCH (BODY[HEADER.FIELDS (FROM TO)]<0> \"ab\\x0d\\x0a\" "
	  "BODY[]<4096> NIL)\n"),
	V("* 2 FETCH (body[header.fields (A)] NIL BINARY.SIZE[1 2] 3)\r\n",
	  "* 2 FETCH (body[header.fields (A)] NIL BINARY.SIZE[1 2] 3)\n"),
	V("* LIST () \"/\" foo]bar\r\n", "* LIST () \"/\" foo]bar\n"),
	V("* LIST () \"/\" ]\r\n", "* LIST () \"/\" ]\n"),
	V("* LIST () \"/\" foo[bar\r\n", "* LIST () \"/\" foo[bar\n"),
	V("* LIST () \"/\" ~peter/mail\r\n", "* LIST () \"/\" ~peter/mail\n"),
	V("* LIST () \"/\" ~\r\n", "* LIST () \"/\" ~\n"),
	V("* LIST () \"/\" a{b\"c\r\n", "* LIST () \"/\" a{b\"c\n"),
	/* literals */
	V("* 1 FETCH (BODY[] {11}\r\n)\r\n\0\"{5}\r\nx)\r\n",
	  "* 1 FETCH (BODY[] \")\\x0d\\x0a\\x00\\\"{5}\\x0d\\x0ax\")\n"),
	V("* 1 FETCH (BODY[] {0}\r\n)\r\n", "* 1 FETCH (BODY[] \"\")\n"),
	V("* 1 FETCH (BODY[1] {2}\r\nab BODY[2] {3}\r\ncde)\r\n",
	  "* 1 FETCH (BODY[1] \"ab\" BODY[2] \"cde\")\n"),
	V("* 1 FETCH (BODY[] {5+}\r\nhello)\r\n",
	  "* 1 FETCH (BODY[] \"hello\")\n"),
	V("* 1 FETCH (BINARY[1] ~{4}\r\na\0b\xff)\r\n",
	  "* 1 FETCH (BINARY[1] \"a\\x00b\xff\")\n"),
	V("* LIST (\\Marked) \"/\" {3}\r\nfoo\r\n",
	  "* LIST (\\Marked) \"/\" \"foo\"\n"),
	V("* STATUS {5}\r\nINBOX (MESSAGES 3)\r\n",
	  "* STATUS \"INBOX\" (MESSAGES 3)\n"),
	V("* 1 FETCH (BODY[] {123}\r\n0123456789)(\r\n\"\\{}[]"
	  "0123456789012345678901234567890123456789012345678901234567890123"
	  "456789012345678901234567890123456789012)\r\n",
	  "* 1 FETCH (BODY[] \"0123456789)(\\x0d\\x0a\\\"\\\\{}[]"
	  "0123456789012345678901234567890123456789012345678901234567890123"
	  "456789012345678901234567890123456789012\")\n"),
	/* bare LF line ends */
	V("* 5 EXISTS\n", "* 5 EXISTS\n"),
	V("a1 OK done\n", "a1 OK text=\"done\"\n"),
	V("+\n", "+ text=\"\"\n"),
	V("* 1 FETCH (BODY[] {2}\nab)\n", "* 1 FETCH (BODY[] \"ab\")\n"),
	/* several responses in one input */
	V("* 5 EXISTS\r\na1 OK [READ-WRITE] done\r\n",
	  "* 5 EXISTS\na1 OK [READ-WRITE] text=\"done\"\n"),
	V("* 1 FETCH (BODY[] {3}\r\n\r\n\r)\r\n* 2 EXPUNGE\n+ go\r\n",
	  "* 1 FETCH (BODY[] \"\\x0d\\x0a\\x0d\")\n* 2 EXPUNGE\n"
	  "+ text=\"go\"\n"),
};

/* Each valid case gives its parse however the input is cut. */
START_TEST(test_valid)
{
	const struct valid_case *c = &valid_cases[_i];

	check_valid(c->in, c->len, c->want);
}
END_TEST

struct error_case {
	const char *in;
	size_t len;
	size_t max_line; /* 0: MAX_LINE */
	size_t max_lit; /* 0: MAX_LIT */
	const char *err;
};

#define E(in, max_line, max_lit, err)                      \
	{                                                  \
		in, sizeof(in) - 1, max_line, max_lit, err \
	}

static const struct error_case error_cases[] = {
	/* refused at the '}', before any byte of the literal */
	E("* 1 FETCH (BODY[] {99999999999}", 0, 0,
	  "literal of 99999999999 bytes exceeds limit of 16777216"),
	E("* 1 FETCH (BODY[] {17}", 0, 16,
	  "literal of 17 bytes exceeds limit of 16"),
	E("* 1 FETCH (BODY[] ~{17}", 0, 16,
	  "literal of 17 bytes exceeds limit of 16"),
	E("* 1 FETCH (BODY[] {18446744073709551615}", 0, 0,
	  "literal of 18446744073709551615 bytes exceeds limit"),
	E("* 1 FETCH (BODY[] {18446744073709551616}", 0, 0,
	  "literal size does not fit in 64 bits"),
	E("* 1 FETCH (BODY[] {99999999999999999999999}\r\n", 0, 0,
	  "literal size does not fit in 64 bits"),
	E("* 1 FETCH (BODY[] {1x}\r\n", 0, 0,
	  "invalid character 'x' in literal size"),
	E("* 1 FETCH (BODY[] {}\r\n", 0, 0, "literal size missing, found '}'"),
	E("* 1 FETCH (BODY[] {5+x}\r\n", 0, 0,
	  "invalid character 'x' in literal size"),
	E("* 1 FETCH (BODY[] {-1}\r\n", 0, 0, "literal size missing"),
	E("* 1 FETCH (BODY[] {5} \r\n", 0, 0,
	  "literal size followed by 0x20, not end of line"),
	E("* 1 FETCH (BODY[] {5}x", 0, 0, "literal size followed by 'x'"),
	/* max_line */
	E("* 1 FETCH (UID 1 FLAGS (\\Seen \\Answered))\r\n", 32, 0,
	  "response longer than 32 bytes outside literals"),
	E("* 1 FETCH (BODY[] {3}\r\nabc FLAGS (\\Seen \\Answered))\r\n", 32, 0,
	  "response longer than 32 bytes outside literals"),
	/* lists */
	E("* 1 FETCH (UID 1))\r\n", 0, 0, "unbalanced ')'"),
	E("* )\r\n", 0, 0, "unbalanced ')'"),
	E("* 1 FETCH (UID 1\r\n", 0, 0, "1 list(s) not closed at end of line"),
	E("* 1 FETCH (UID (1\n", 0, 0, "2 list(s) not closed at end of line"),
	/* quoted strings */
	E("* LIST () \"/\" \"a\\qb\"\r\n", 0, 0,
	  "invalid escape: 'q' after '\\' in quoted string"),
	E("* LIST () \"/\" \"a\\\r\n", 0, 0, "invalid escape: 0x0d"),
	E("* LIST () \"/\" \"a\rb\"\r\n", 0, 0,
	  "quoted string not closed at end of line"),
	E("* LIST () \"/\" \"a\nb\"\r\n", 0, 0,
	  "quoted string not closed at end of line"),
	E("* LIST () \"/\" \"ab\r\n", 0, 0,
	  "quoted string not closed at end of line"),
	E("* 1 FETCH (X \"a\0\")\r\n", 0, 0, "NUL byte outside a literal"),
	/* framing */
	E("\r\n", 0, 0, "empty response line"),
	E("\n", 0, 0, "empty response line"),
	E("(foo) OK\r\n", 0, 0, "invalid tag starting with '('"),
	E(" a1 OK\r\n", 0, 0, "invalid tag starting with 0x20"),
	E("\xc3\xa9 OK\r\n", 0, 0, "invalid tag starting with 0xc3"),
	E("a\"1 OK\r\n", 0, 0, "invalid character '\"' in tag"),
	E("a1\r\n", 0, 0, "tagged response without a status"),
	E("a1 \r\n", 0, 0, "tagged response without a status"),
	E("a1 FOO bar\r\n", 0, 0, "tagged response is not OK, NO or BAD"),
	E("a1 BYE x\r\n", 0, 0, "tagged response is not OK, NO or BAD"),
	E("a1 PREAUTH\r\n", 0, 0, "tagged response is not OK, NO or BAD"),
	E("a1 (x)\r\n", 0, 0, "tagged response is not OK, NO or BAD"),
	E("a1 {3}\r\nabc\r\n", 0, 0, "tagged response is not OK, NO or BAD"),
	E("a1 ~{3}\r\nabc\r\n", 0, 0, "tagged response is not OK, NO or BAD"),
	E("a1 \"OK\"\r\n", 0, 0, "tagged response is not OK, NO or BAD"),
	E("*OK\r\n", 0, 0, "expected SP after '*', found 'O'"),
	E("*\r\n", 0, 0, "expected SP after '*', found 0x0d"),
	E("* \r\n", 0, 0, "empty untagged response"),
	E("+foo\r\n", 0, 0, "expected SP after '+', found 'f'"),
	E("* 5 EXISTS\rX", 0, 0, "CR not followed by LF"),
	E("* OK a\rb\r\n", 0, 0, "CR not followed by LF"),
	E("* 5 EX\0ISTS\r\n", 0, 0, "NUL byte outside a literal"),
	E("* OK hi\0\r\n", 0, 0, "NUL byte outside a literal"),
	/* response codes */
	E("* OK [ALERT\r\n", 0, 0, "response code not closed by ']'"),
	E("* OK []\r\n", 0, 0, "empty response code"),
	E("* OK [X (a] b\r\n", 0, 0, "response code ends inside a list"),
	E("* OK [A)] x\r\n", 0, 0, "unbalanced ')'"),
	/* '[' opens a section only after BODY, BINARY, BINARY.SIZE: the
	 * first ']' ends the code (a flag holds no ']') */
	E("* OK [PERMANENTFLAGS (x[a b])] t\r\n", 0, 0,
	  "response code ends inside a list"),
	/* the second response is bad; the first was fine */
	E("* 5 EXISTS\r\n* 6 EXISTS)\r\n", 0, 0, "unbalanced ')'"),
};

/* Each error case fails at the same byte, however the input is cut. */
START_TEST(test_error)
{
	const struct error_case *c = &error_cases[_i];

	check_error(c->in, c->len, c->max_line ? c->max_line : MAX_LINE,
		    c->max_lit ? c->max_lit : MAX_LIT, c->err);
}
END_TEST

/* A literal that is too big is refused at its '}', with nothing after
 * it fed, and the parser stays failed. */
START_TEST(test_literal_refused_early)
{
	static const char in[] = "* 1 FETCH (BODY[] {99999999999}";
	struct imap_parser *p = imap_parse_new(MAX_LINE, MAX_LIT);
	const struct imap_resp *r;
	size_t consumed;

	ck_assert_int_eq(imap_parse_feed(p, in, strlen(in), &consumed, &r),
			 -1);
	ck_assert_uint_eq(consumed, strlen(in) - 1);
	ck_assert_ptr_null(r);
	ck_assert_str_eq(imap_parse_error(p),
			 "literal of 99999999999 bytes exceeds limit of "
			 "16777216");
	ck_assert_int_eq(imap_parse_feed(p, "\r\n", 2, &consumed, &r), -1);
	ck_assert_uint_eq(consumed, 0);
	ck_assert_str_eq(imap_parse_error(p),
			 "literal of 99999999999 bytes exceeds limit of "
			 "16777216");
	imap_parse_free(p);
}
END_TEST

/* Literals each within the bound are still refused when together they
 * exceed max_line + max_literal: one response cannot grow without end. */
START_TEST(test_literals_bounded_together)
{
	static const char head[] = "* 1 FETCH (A {90}\r\n";
	struct imap_parser *p = imap_parse_new(40, 100);
	const struct imap_resp *r;
	char body[90];
	size_t consumed;

	memset(body, 'x', sizeof(body));
	ck_assert_int_eq(imap_parse_feed(p, head, strlen(head), &consumed, &r),
			 0);
	ck_assert_int_eq(imap_parse_feed(p, body, sizeof(body), &consumed, &r),
			 0);
	ck_assert_int_eq(imap_parse_feed(p, " B {90}", 7, &consumed, &r), -1);
	ck_assert_str_eq(imap_parse_error(p),
			 "response exceeds 140 bytes in all");
	imap_parse_free(p);
}
END_TEST

/* Tokens are bounded by number too: 2-byte "()" lists cost far more
 * memory than their bytes. */
START_TEST(test_token_count_bounded)
{
	size_t n = 2 * (IMAP_PARSER_MAX_TOKENS + 1), i;
	char *in = malloc(n + 8);
	struct imap_parser *p = imap_parse_new(n + 64, MAX_LIT);
	const struct imap_resp *r;
	size_t consumed;

	memcpy(in, "* X ", 4);
	for (i = 0; i < n; i += 2)
		memcpy(in + 4 + i, "()", 2);
	memcpy(in + 4 + n, "\r\n", 2);
	ck_assert_int_eq(imap_parse_feed(p, in, n + 6, &consumed, &r), -1);
	ck_assert_ptr_nonnull(strstr(imap_parse_error(p), "tokens"));
	imap_parse_free(p);
	free(in);
}
END_TEST

/* The fields of each kind of response, beyond what dump_resp() shows. */
START_TEST(test_fields)
{
	static const char in[] = "a7 NO [TRYCREATE] no mailbox\r\n"
				 "* 3 FETCH (BODY[] {3}\r\na\0b FLAGS ())\r\n"
				 "+ more\r\n";
	struct imap_parser *p = imap_parse_new(MAX_LINE, MAX_LIT);
	const struct imap_resp *r;
	const struct imap_tok *l;
	size_t off = 0, consumed, len;

	ck_assert_int_eq(imap_parse_feed(p, in, sizeof(in) - 1, &consumed, &r),
			 1);
	ck_assert_uint_eq(consumed, strlen("a7 NO [TRYCREATE] no mailbox\r\n"));
	ck_assert_int_eq(r->kind, IMAP_RESP_TAGGED);
	ck_assert_str_eq(r->tag, "a7");
	ck_assert_int_eq(r->status, IMAP_STATUS_NO);
	ck_assert_uint_eq(r->n_code, 1);
	ck_assert(imap_parse_tok_is(&r->code[0], "trycreate"));
	ck_assert_str_eq(r->text, "no mailbox");
	ck_assert_ptr_null(r->toks);
	off += consumed;

	ck_assert_int_eq(imap_parse_feed(p, in + off, sizeof(in) - 1 - off,
					  &consumed, &r),
			 1);
	off += consumed;
	ck_assert_int_eq(r->kind, IMAP_RESP_UNTAGGED);
	ck_assert_ptr_null(r->tag);
	ck_assert_int_eq(r->status, IMAP_STATUS_NONE);
	ck_assert_ptr_null(r->code);
	ck_assert_ptr_null(r->text);
	ck_assert_uint_eq(r->n_toks, 3);
	l = &r->toks[2];
	ck_assert_int_eq(l->type, IMAP_TOK_LIST);
	ck_assert_uint_eq(l->n_items, 4);
	ck_assert_int_eq(l->items[1].type, IMAP_TOK_STRING);
	ck_assert_uint_eq(l->items[1].len, 3);
	ck_assert_mem_eq(l->items[1].str, "a\0b", 4);
	ck_assert_int_eq(l->items[3].type, IMAP_TOK_LIST);
	ck_assert_uint_eq(l->items[3].n_items, 0);
	ck_assert_ptr_null(l->items[3].items);
	ck_assert_ptr_null(imap_parse_tok_str(&l->items[3], &len));
	ck_assert_uint_eq(len, 0);

	ck_assert_int_eq(imap_parse_feed(p, in + off, sizeof(in) - 1 - off,
					  &consumed, &r),
			 1);
	ck_assert_uint_eq(off + consumed, sizeof(in) - 1);
	ck_assert_int_eq(r->kind, IMAP_RESP_CONTINUE);
	ck_assert_int_eq(r->status, IMAP_STATUS_NONE);
	ck_assert_str_eq(r->text, "more");
	ck_assert_uint_eq(r->n_toks, 0);

	ck_assert_int_eq(imap_parse_feed(p, "", 0, &consumed, &r), 0);
	ck_assert_uint_eq(consumed, 0);
	imap_parse_free(p);
}
END_TEST

/* Parses one line that must be a data response and returns it. */
static const struct imap_resp *parse1(struct imap_parser *p, const char *in)
{
	const struct imap_resp *r;
	size_t consumed;

	ck_assert_int_eq(imap_parse_feed(p, in, strlen(in), &consumed, &r), 1);
	ck_assert_uint_eq(consumed, strlen(in));
	return r;
}

/*
 * A '[' keeps spaces in its atom only in a fetch item's section: in a
 * flag list "x[a \Recent b]" is three atoms (fuzz_imap_session found a
 * server making it one flag with spaces), in a response code too, and
 * BODY[HEADER.FIELDS (A B)]<0> stays one.
 */
START_TEST(test_brackets_outside_sections)
{
	struct imap_parser *p = imap_parse_new(MAX_LINE, MAX_LIT);
	const struct imap_resp *r;
	const struct imap_tok *l;

	r = parse1(p, "* 1 FETCH (UID 1 FLAGS (\\Seen x[a \\Recent b]) "
		      "BODY[HEADER.FIELDS (A B)]<0> NIL)\r\n");
	ck_assert_uint_eq(r->n_toks, 3);
	l = &r->toks[2];
	ck_assert_uint_eq(l->n_items, 6);
	l = &l->items[3];
	ck_assert_int_eq(l->type, IMAP_TOK_LIST);
	ck_assert_uint_eq(l->n_items, 4);
	ck_assert_str_eq(l->items[0].str, "\\Seen");
	ck_assert_str_eq(l->items[1].str, "x[a");
	ck_assert_str_eq(l->items[2].str, "\\Recent");
	ck_assert_str_eq(l->items[3].str, "b]");
	ck_assert_str_eq(r->toks[2].items[4].str,
			 "BODY[HEADER.FIELDS (A B)]<0>");

	r = parse1(p, "* FLAGS (x[a (y) [z)\r\n");
	l = &r->toks[1];
	ck_assert_uint_eq(l->n_items, 3);
	ck_assert_str_eq(l->items[0].str, "x[a");
	ck_assert_int_eq(l->items[1].type, IMAP_TOK_LIST);
	ck_assert_str_eq(l->items[2].str, "[z");

	r = parse1(p, "* OK [PERMANENTFLAGS (\\Seen x[a \\*)] ok\r\n");
	ck_assert_uint_eq(r->n_code, 2);
	l = &r->code[1];
	ck_assert_uint_eq(l->n_items, 3);
	ck_assert_str_eq(l->items[1].str, "x[a");
	ck_assert_str_eq(l->items[2].str, "\\*");
	imap_parse_free(p);
}
END_TEST

/* imap_parse_tok_is(), imap_parse_tok_u32/u64() and imap_parse_tok_str(). */
START_TEST(test_tok_helpers)
{
	struct imap_parser *p = imap_parse_new(MAX_LINE, MAX_LIT);
	const struct imap_resp *r;
	const struct imap_tok *t;
	uint32_t u32;
	uint64_t u64;
	size_t len;

	r = parse1(p, "* 0 4294967295 4294967296 18446744073709551615 "
		      "18446744073709551616 00042 12a \"7\" NIL fetch () "
		      "-1\r\n");
	t = r->toks;
	ck_assert(imap_parse_tok_u32(&t[0], &u32));
	ck_assert_uint_eq(u32, 0);
	ck_assert(imap_parse_tok_u32(&t[1], &u32));
	ck_assert_uint_eq(u32, 4294967295u);
	ck_assert(!imap_parse_tok_u32(&t[2], &u32));
	ck_assert(imap_parse_tok_u64(&t[2], &u64));
	ck_assert_uint_eq(u64, 4294967296u);
	ck_assert(imap_parse_tok_u64(&t[3], &u64));
	ck_assert(u64 == UINT64_MAX);
	ck_assert(!imap_parse_tok_u64(&t[4], &u64));
	ck_assert(imap_parse_tok_u32(&t[5], &u32));
	ck_assert_uint_eq(u32, 42);
	ck_assert(!imap_parse_tok_u32(&t[6], &u32));
	ck_assert(!imap_parse_tok_u32(&t[7], &u32)); /* a string, not an atom */
	ck_assert(!imap_parse_tok_u64(&t[8], &u64));
	ck_assert(!imap_parse_tok_u32(&t[10], &u32));
	ck_assert(!imap_parse_tok_u32(&t[11], &u32));

	ck_assert(imap_parse_tok_is(&t[9], "FETCH"));
	ck_assert(imap_parse_tok_is(&t[9], "fEtCh"));
	ck_assert(!imap_parse_tok_is(&t[9], "FETC"));
	ck_assert(!imap_parse_tok_is(&t[9], "FETCHX"));
	ck_assert(!imap_parse_tok_is(&t[7], "7"));
	ck_assert(!imap_parse_tok_is(&t[8], "NIL"));
	ck_assert(!imap_parse_tok_is(&t[10], ""));

	ck_assert_str_eq(imap_parse_tok_str(&t[7], &len), "7");
	ck_assert_uint_eq(len, 1);
	ck_assert_str_eq(imap_parse_tok_str(&t[9], NULL), "fetch");
	len = 99;
	ck_assert_ptr_null(imap_parse_tok_str(&t[8], &len));
	ck_assert_uint_eq(len, 0);
	imap_parse_free(p);
}
END_TEST

/* max_line counts every byte outside literals, line ends included:
 * exactly max_line bytes pass, one more fails. */
START_TEST(test_max_line_boundary)
{
	static const char in[] = "* 1 FETCH (BODY[] {5}\r\nhello)\r\n";
	size_t outside = strlen(in) - 5;
	struct run r;
	char err[80];

	run_feed(in, strlen(in), 1, 1, outside, 5, &r);
	ck_assert_int_eq(r.rc, 1);
	ck_assert_str_eq(r.dump.s, "* 1 FETCH (BODY[] \"hello\")\n");
	free(r.dump.s);
	snprintf(err, sizeof(err),
		 "response longer than %zu bytes outside literals",
		 outside - 1);
	check_error(in, strlen(in), outside - 1, 5, err);
	check_error(in, strlen(in), outside, 4,
		    "literal of 5 bytes exceeds limit of 4");
}
END_TEST

/* Lists nest up to IMAP_PARSER_MAX_DEPTH levels, no deeper. */
START_TEST(test_depth)
{
	char in[4 * IMAP_PARSER_MAX_DEPTH + 32], want[sizeof(in)];
	size_t n = 0, w = 0;
	int i;

	n += sprintf(in + n, "* X ");
	w += sprintf(want + w, "* X ");
	for (i = 0; i < IMAP_PARSER_MAX_DEPTH; i++) {
		in[n++] = '(';
		want[w++] = '(';
	}
	for (i = 0; i < IMAP_PARSER_MAX_DEPTH; i++) {
		in[n++] = ')';
		want[w++] = ')';
	}
	n += sprintf(in + n, "\r\n");
	w += sprintf(want + w, "\n");
	check_valid(in, n, want);

	n = sprintf(in, "* X ");
	for (i = 0; i <= IMAP_PARSER_MAX_DEPTH; i++)
		in[n++] = '(';
	n += sprintf(in + n, "\r\n");
	check_error(in, n, MAX_LINE, MAX_LIT,
		    "lists nested deeper than 64 levels");
}
END_TEST

/*
 * An empty list in the very first response of a parser ("* ()", or
 * "[()]" in a code) closes before any token was ever pushed, while the
 * token stack is still NULL: no pointer may be computed from it (that
 * was undefined behaviour, which UBSan reports under make asan-check).
 * Found by tests/fuzz/fuzz_imap_parse.
 */
START_TEST(test_imap_parse_empty_list_first)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"* ()\r\n", "* ()\n"},
		{"* (())\r\n", "* (())\n"},
		{"* OK [()] x\r\n", "* OK [()] text=\"x\"\n"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_valid(cases[i].in, strlen(cases[i].in), cases[i].want);
}
END_TEST

/* Nanoseconds since an arbitrary point. */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A bound for the timed tests that only a quadratic parser misses. */
#define SLOW_NS ((uint64_t)5 * 1000000000u)

/* Reports a timing when MAILFS_TEST_TIMING is set. */
static void report_time(const char *what, uint64_t ns)
{
	if (getenv("MAILFS_TEST_TIMING"))
		fprintf(stderr, "%s: %.3f ms\n", what, ns / 1e6);
}

/*
 * Parses the first n of the FETCH responses test_many_responses() made,
 * all fed as one buffer, and checks them with plain ifs (each ck_assert
 * costs a system call). Returns the time taken, or 0 if a response was
 * wrong.
 */
static uint64_t parse_fetches(const char *buf, size_t len, int n)
{
	struct imap_parser *p = imap_parse_new(MAX_LINE, MAX_LIT);
	const struct imap_resp *r;
	size_t off = 0, consumed;
	uint32_t seq, uid;
	uint64_t t = now_ns();
	int i;

	for (i = 1; i <= n; i++) {
		if (imap_parse_feed(p, buf + off, len - off, &consumed, &r) !=
			    1 ||
		    r->n_toks != 3 || !imap_parse_tok_u32(&r->toks[0], &seq) ||
		    seq != (uint32_t)i || !imap_parse_tok_is(&r->toks[1], "FETCH") ||
		    r->toks[2].n_items != 6 ||
		    !imap_parse_tok_u32(&r->toks[2].items[1], &uid) ||
		    uid != (uint32_t)i + 1000)
			break;
		off += consumed;
	}
	t = now_ns() - t;
	imap_parse_free(p);
	return i > n ? t : 0;
}

/*
 * 10,000 FETCH responses in one buffer come out one by one, in linear
 * time: the parser never rescans what it has consumed. Ten times the
 * responses must take about ten times as long, not a hundred (the best
 * of three runs of each, to damp noise).
 */
START_TEST(test_many_responses)
{
	enum { N = 10000 };
	struct imap_parser *p = imap_parse_new(MAX_LINE, MAX_LIT);
	const struct imap_resp *r;
	char *buf = malloc((size_t)N * 100);
	size_t len = 0, tenth = 0, off = 0, consumed;
	uint64_t t, t_all = UINT64_MAX, t_tenth = UINT64_MAX;
	int i;

	ck_assert_ptr_nonnull(buf);
	for (i = 1; i <= N; i++) {
		len += sprintf(buf + len,
			       "* %d FETCH (UID %d FLAGS (\\Seen $L%d) "
			       "RFC822.SIZE %d)\r\n",
			       i, i + 1000, i, i * 3);
		if (i == N / 10)
			tenth = len;
	}
	for (i = 0; i < 3; i++) {
		t = parse_fetches(buf, len, N);
		ck_assert_uint_ne(t, 0);
		t_all = t < t_all ? t : t_all;
		t = parse_fetches(buf, tenth, N / 10);
		ck_assert_uint_ne(t, 0);
		t_tenth = t < t_tenth ? t : t_tenth;
	}
	report_time("10000 FETCH responses", t_all);
	report_time("1000 FETCH responses", t_tenth);
	ck_assert_msg(t_all < 40 * t_tenth + 2000000,
		      "10000 responses took %.1f ms, 1000 took %.1f ms",
		      t_all / 1e6, t_tenth / 1e6);
	ck_assert_msg(t_all < SLOW_NS, "took %.0f ms", t_all / 1e6);

	/* and the last one ends exactly at the end of the buffer */
	while (imap_parse_feed(p, buf + off, len - off, &consumed, &r) == 1)
		off += consumed;
	ck_assert_uint_eq(off, len);
	ck_assert_uint_eq(consumed, 0);
	free(buf);
	imap_parse_free(p);
}
END_TEST

/* A 16 MiB literal (every byte value, CRLFs and NULs included) fed in
 * 64 KiB pieces is copied in bulk; max_literal is exactly its size. */
START_TEST(test_big_literal)
{
	static const char head[] = "* 1 FETCH (UID 7 BODY[] {16777216}\r\n";
	static const char tail[] = " FLAGS (\\Seen))\r\n";
	const size_t lit = (size_t)16 << 20, chunk = 64 << 10;
	size_t len = strlen(head) + lit + strlen(tail);
	char *buf = malloc(len);
	struct imap_parser *p = imap_parse_new(MAX_LINE, lit);
	const struct imap_resp *r = NULL;
	const struct imap_tok *l;
	size_t off = 0, n, consumed, i;
	uint64_t t0;
	int rc = 0;

	ck_assert_ptr_nonnull(buf);
	memcpy(buf, head, strlen(head));
	for (i = 0; i < lit; i++)
		buf[strlen(head) + i] = (char)(i * 7 + (i >> 9));
	memcpy(buf + strlen(head) + lit, tail, strlen(tail));

	t0 = now_ns();
	while (off < len) {
		n = len - off < chunk ? len - off : chunk;
		rc = imap_parse_feed(p, buf + off, n, &consumed, &r);
		ck_assert_int_ge(rc, 0);
		off += consumed;
	}
	t0 = now_ns() - t0;
	report_time("16 MiB literal in 64 KiB pieces", t0);
	ck_assert_msg(t0 < SLOW_NS, "took %.0f ms", t0 / 1e6);
	ck_assert_int_eq(rc, 1);
	ck_assert_uint_eq(r->n_toks, 3);
	l = &r->toks[2];
	ck_assert_uint_eq(l->n_items, 6);
	ck_assert_int_eq(l->items[3].type, IMAP_TOK_STRING);
	ck_assert_uint_eq(l->items[3].len, lit);
	ck_assert(memcmp(l->items[3].str, buf + strlen(head), lit) == 0);
	ck_assert(imap_parse_tok_is(&l->items[4], "FLAGS"));
	free(buf);
	imap_parse_free(p);
}
END_TEST

/* The parser's test suite, registered by the Makefile. */
Suite *imap_parse_suite(void)
{
	Suite *s = suite_create("imap_parse");
	TCase *tc = tcase_create("tables");
	TCase *big = tcase_create("big");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_valid, 0,
			    sizeof(valid_cases) / sizeof(valid_cases[0]));
	tcase_add_loop_test(tc, test_error, 0,
			    sizeof(error_cases) / sizeof(error_cases[0]));
	tcase_add_test(tc, test_literal_refused_early);
	tcase_add_test(tc, test_literals_bounded_together);
	tcase_add_test(tc, test_token_count_bounded);
	tcase_add_test(tc, test_fields);
	tcase_add_test(tc, test_tok_helpers);
	tcase_add_test(tc, test_brackets_outside_sections);
	tcase_add_test(tc, test_max_line_boundary);
	tcase_add_test(tc, test_depth);
	tcase_add_test(tc, test_imap_parse_empty_list_first);
	tcase_add_test(tc, test_uid_set);
	suite_add_tcase(s, tc);

	tcase_set_timeout(big, 120);
	tcase_add_test(big, test_many_responses);
	tcase_add_test(big, test_big_literal);
	suite_add_tcase(s, big);
	return s;
}
