// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * search: IMAP search programs from a path component; see search.h.
 *
 * Three steps: the component is decoded and checked (UTF-8, length),
 * split into tokens, and parsed by recursive descent into a key tree,
 * every argument checked and kept as a value. search_emit() then writes
 * the tree back from those values only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grow.h"
#include "search.h"

enum search_tok_type {
	SEARCH_TOK_ATOM,
	SEARCH_TOK_QUOTED,
	SEARCH_TOK_OPEN,
	SEARCH_TOK_CLOSE,
};

struct search_tok {
	enum search_tok_type type;
	const char *s; /* borrowed from the parser's buffer; use len */
	size_t len;
};

struct search_parser {
	char *buf; /* owned: the decoded component, tokens cut in place */
	struct search_tok *toks; /* owned */
	size_t n_toks, pos;
	size_t n_keys;
	bool utf8;
	char *err;
	size_t errlen;
};

static const struct {
	const char *name;
	enum search_kind kind;
} search_keys[] = {
	{"ALL", SEARCH_PLAIN},	     {"ANSWERED", SEARCH_PLAIN},
	{"BCC", SEARCH_STRING},	     {"BEFORE", SEARCH_DATE},
	{"BODY", SEARCH_STRING},     {"CC", SEARCH_STRING},
	{"DELETED", SEARCH_PLAIN},   {"DRAFT", SEARCH_PLAIN},
	{"FLAGGED", SEARCH_PLAIN},   {"FROM", SEARCH_STRING},
	{"HEADER", SEARCH_HEADER},   {"KEYWORD", SEARCH_KEYWORD},
	{"LARGER", SEARCH_NUMBER},   {"NEW", SEARCH_PLAIN},
	{"NOT", SEARCH_NOT},	     {"OLD", SEARCH_PLAIN},
	{"ON", SEARCH_DATE},	     {"OR", SEARCH_OR},
	{"RECENT", SEARCH_PLAIN},    {"SEEN", SEARCH_PLAIN},
	{"SENTBEFORE", SEARCH_DATE}, {"SENTON", SEARCH_DATE},
	{"SENTSINCE", SEARCH_DATE},  {"SINCE", SEARCH_DATE},
	{"SMALLER", SEARCH_NUMBER},  {"SUBJECT", SEARCH_STRING},
	{"TEXT", SEARCH_STRING},     {"TO", SEARCH_STRING},
	{"UID", SEARCH_SET},	     {"UNANSWERED", SEARCH_PLAIN},
	{"UNDELETED", SEARCH_PLAIN}, {"UNDRAFT", SEARCH_PLAIN},
	{"UNFLAGGED", SEARCH_PLAIN}, {"UNKEYWORD", SEARCH_KEYWORD},
	{"UNSEEN", SEARCH_PLAIN},
};

static const char *const search_months[12] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	"Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

static int search_fail(struct search_parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Records why the query is refused (once: the first reason wins) and
 * returns -EINVAL. */
static int search_fail(struct search_parser *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err && p->errlen && !p->err[0]) {
		va_start(ap, fmt);
		vsnprintf(p->err, p->errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* Copies at most 40 bytes of a token for a message, printable ASCII
 * only, so that the log never carries control characters. */
static const char *search_show(const struct search_tok *t, char *buf,
			       size_t size)
{
	size_t i, o = 0;

	for (i = 0; i < t->len && o + 4 < size && i < 40; i++) {
		unsigned char c = t->s[i];

		buf[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (i < t->len && o + 3 < size) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

/* Decodes %2F and %25 of the component into p->buf and checks that it
 * is UTF-8 of bounded length. */
static int search_decode(struct search_parser *p, const char *in)
{
	size_t n = strlen(in), i, o = 0;

	if (n > SEARCH_MAX_QUERY)
		return search_fail(p, "query longer than %d bytes",
				   SEARCH_MAX_QUERY);
	p->buf = malloc(n + 1);
	if (!p->buf)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		int hi = -1, lo = -1;

		if (in[i] == '%' && i + 2 < n) {
			hi = strbuf_hex_value((unsigned char)in[i + 1]);
			lo = strbuf_hex_value((unsigned char)in[i + 2]);
		}
		if (hi >= 0 && lo >= 0) {
			int v = hi * 16 + lo;

			if (v == '/' || v == '%') {
				p->buf[o++] = (char)v;
				i += 2;
				continue;
			}
		}
		p->buf[o++] = in[i];
	}
	p->buf[o] = '\0';
	for (i = 0; i < o;) {
		size_t l = strbuf_utf8_len((unsigned char *)p->buf + i, o - i,
					   NULL);

		if (!l)
			return search_fail(p, "query is not UTF-8 (byte %zu)",
					   i);
		i += l;
	}
	return 0;
}

/* Adds a token (the buffer holds at most SEARCH_MAX_QUERY bytes, so
 * there are at most that many tokens). */
static void search_push(struct search_parser *p, enum search_tok_type type,
			const char *s, size_t len)
{
	struct search_tok *t = &p->toks[p->n_toks++];

	t->type = type;
	t->s = s;
	t->len = len;
}

/* Reads a "quoted" token starting at *i (on the quote), unescaping \"
 * and \\ in place. */
static int search_lex_quoted(struct search_parser *p, size_t *i)
{
	char *b = p->buf, *start = b + *i + 1, *o = start;
	size_t j = *i + 1;

	for (;;) {
		if (b[j] == '\0')
			return search_fail(p, "unterminated quoted string");
		if (b[j] == '"')
			break;
		if (b[j] == '\\') {
			if (b[j + 1] != '"' && b[j + 1] != '\\')
				return search_fail(
					p, "only \\\" and \\\\ may be escaped "
					   "in a quoted string");
			j++;
		}
		*o++ = b[j++];
	}
	search_push(p, SEARCH_TOK_QUOTED, start, (size_t)(o - start));
	*o = '\0'; /* o <= b + j: the closing quote at the latest */
	*i = j + 1;
	if (b[*i] && b[*i] != ' ' && b[*i] != '\t' && b[*i] != ')')
		return search_fail(p, "a quoted string must be followed by a "
				      "space or ')'");
	return 0;
}

/* Splits the decoded query into tokens (each known by its bytes and
 * length; quoted strings are unescaped in place). */
static int search_lex(struct search_parser *p)
{
	size_t n = strlen(p->buf), i = 0;
	char *b = p->buf;

	p->toks = calloc(n + 1, sizeof(*p->toks));
	if (!p->toks)
		return -ENOMEM;
	while (i < n) {
		size_t start;

		if (b[i] == ' ' || b[i] == '\t') {
			i++;
		} else if (b[i] == '(') {
			search_push(p, SEARCH_TOK_OPEN, "(", 1);
			i++;
		} else if (b[i] == ')') {
			search_push(p, SEARCH_TOK_CLOSE, ")", 1);
			i++;
		} else if (b[i] == '"') {
			int rc = search_lex_quoted(p, &i);

			if (rc < 0)
				return rc;
		} else {
			start = i;
			while (i < n && b[i] != ' ' && b[i] != '\t' &&
			       b[i] != '(' && b[i] != ')' && b[i] != '"')
				i++;
			search_push(p, SEARCH_TOK_ATOM, b + start, i - start);
		}
	}
	return 0;
}

/* The next token, or NULL at the end. */
static const struct search_tok *search_next(struct search_parser *p)
{
	return p->pos < p->n_toks ? &p->toks[p->pos++] : NULL;
}

/* A copy of a token's bytes (tokens are not all NUL-ended in place). */
static char *search_dup(const struct search_tok *t)
{
	char *s = malloc(t->len + 1);

	if (s) {
		memcpy(s, t->s, t->len);
		s[t->len] = '\0';
	}
	return s;
}

/* Whether the token is an atom equal to word, ignoring case. */
static bool search_tok_is(const struct search_tok *t, const char *word)
{
	return t->type == SEARCH_TOK_ATOM && strlen(word) == t->len &&
	       strncasecmp(t->s, word, t->len) == 0;
}

/* Parses a decimal number of at most 10 digits up to 2^32 - 1 in
 * s[0..len); false on anything else. */
static bool search_u32(const char *s, size_t len, uint32_t *n_r)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*n_r = (uint32_t)v;
	return true;
}

/* One element of a sequence set: a non-zero number or '*', re-printed
 * into out. */
static bool search_seq_number(const char *s, size_t len, char *out, size_t size)
{
	uint32_t n;

	if (len == 1 && s[0] == '*') {
		snprintf(out, size, "*");
		return true;
	}
	if (!search_u32(s, len, &n) || n == 0)
		return false;
	snprintf(out, size, "%u", n);
	return true;
}

/* Parses a sequence set (n, n:m, '*', joined by ',') and re-prints it
 * from its values into *out (malloc'd). */
static int search_seq_set(struct search_parser *p, const struct search_tok *t,
			  char **out, size_t *len_r)
{
	/* Each element re-printed takes at most 21 bytes with its ','. */
	size_t cap = (size_t)SEARCH_MAX_SET * 22 + 1, o = 0, elems = 0, i = 0;
	char *buf, a[12], b[12], shown[48];

	if (t->type != SEARCH_TOK_ATOM || t->len == 0)
		goto bad;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	while (i <= t->len) {
		size_t j = i, colon = 0;

		while (j < t->len && t->s[j] != ',') {
			if (t->s[j] == ':' && !colon)
				colon = j - i + 1;
			j++;
		}
		if (++elems > SEARCH_MAX_SET) {
			free(buf);
			return search_fail(p,
					   "sequence set of more than %d "
					   "elements",
					   SEARCH_MAX_SET);
		}
		if (colon) {
			if (!search_seq_number(t->s + i, colon - 1, a, 12) ||
			    !search_seq_number(t->s + i + colon, j - i - colon,
					       b, 12))
				goto bad_free;
			o += (size_t)snprintf(buf + o, cap - o, "%s%s:%s",
					      o ? "," : "", a, b);
		} else {
			if (!search_seq_number(t->s + i, j - i, a, 12))
				goto bad_free;
			o += (size_t)snprintf(buf + o, cap - o, "%s%s",
					      o ? "," : "", a);
		}
		i = j + 1;
	}
	*out = buf;
	*len_r = o;
	return 0;
bad_free:
	free(buf);
bad:
	return search_fail(p, "not a sequence set: \"%s\"",
			   search_show(t, shown, sizeof(shown)));
}

/* Days in month mon (1..12) of year. */
static int search_mdays(int mon, int year)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return days[mon - 1] + (mon == 2 && leap);
}

/* Parses d-Mon-yyyy (day of one or two digits, English month, four
 * digit year from 1000) into k, and checks the day exists. */
static int search_date(struct search_parser *p, const struct search_tok *t,
		       struct search_key *k)
{
	const char *s = t->s;
	size_t dl = 0;
	uint32_t day, year;
	char shown[48];
	int m;

	while (dl < t->len && s[dl] >= '0' && s[dl] <= '9')
		dl++;
	if (dl < 1 || dl > 2 || t->len != dl + 9 || s[dl] != '-' ||
	    s[dl + 4] != '-')
		goto bad;
	if (!search_u32(s, dl, &day) || !search_u32(s + dl + 5, 4, &year) ||
	    year < 1000)
		goto bad;
	for (m = 0; m < 12; m++)
		if (strncasecmp(s + dl + 1, search_months[m], 3) == 0)
			break;
	if (m == 12 || day < 1 || (int)day > search_mdays(m + 1, (int)year))
		goto bad;
	k->day = (int)day;
	k->mon = m + 1;
	k->year = (int)year;
	return 0;
bad:
	return search_fail(p, "%s wants a date as d-Mon-yyyy, not \"%s\"",
			   k->name, search_show(t, shown, sizeof(shown)));
}

/* Checks that a string argument is within bounds, and copies it. */
static int search_string(struct search_parser *p, const struct search_tok *t,
			 struct search_key *k, int i)
{
	size_t j;

	if (t->type != SEARCH_TOK_ATOM && t->type != SEARCH_TOK_QUOTED)
		return search_fail(p, "%s wants a string, not '%c'", k->name,
				   t->s[0]);
	if (t->len > SEARCH_MAX_STRING)
		return search_fail(p,
				   "string argument of %s longer than %d "
				   "bytes",
				   k->name, SEARCH_MAX_STRING);
	for (j = 0; j < t->len; j++)
		if ((unsigned char)t->s[j] >= 0x80)
			p->utf8 = true;
	k->arg[i] = search_dup(t);
	if (!k->arg[i])
		return -ENOMEM;
	k->arg_len[i] = t->len;
	return 0;
}

/* Checks a KEYWORD argument: a flag keyword is an IMAP atom (no
 * specials, no backslash), sent as one, so it must be plain ASCII. */
static int search_keyword(struct search_parser *p, const struct search_tok *t,
			  struct search_key *k)
{
	char shown[48];
	size_t j;

	if (t->type != SEARCH_TOK_ATOM || t->len == 0 || t->len > 255)
		goto bad;
	for (j = 0; j < t->len; j++) {
		unsigned char c = t->s[j];

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c))
			goto bad;
	}
	k->arg[0] = search_dup(t);
	if (!k->arg[0])
		return -ENOMEM;
	k->arg_len[0] = t->len;
	return 0;
bad:
	return search_fail(p, "%s wants a keyword (an IMAP atom), not \"%s\"",
			   k->name, search_show(t, shown, sizeof(shown)));
}

static int search_key_parse(struct search_parser *p, struct search_key *k,
			    int depth);

/* Room for one more key in *keys (n of them, room for *cap), the room
 * added zeroed; false when out of memory. */
static bool search_keys_room(struct search_key **keys, size_t n, size_t *cap)
{
	size_t old = *cap;
	struct search_key *nk = grow_reserve(*keys, cap, n + 1, sizeof(*nk));

	if (!nk)
		return false;
	memset(nk + old, 0, (*cap - old) * sizeof(*nk));
	*keys = nk;
	return true;
}

/* Parses n sub-keys (n == 0: until ')') into k->sub. */
static int search_subkeys(struct search_parser *p, struct search_key *k,
			  size_t n, int depth)
{
	size_t cap = 0;
	int rc;

	for (;;) {
		if (n && k->n_sub == n)
			return 0;
		if (!n) {
			if (p->pos >= p->n_toks)
				return search_fail(p, "'(' without ')'");
			if (p->toks[p->pos].type == SEARCH_TOK_CLOSE) {
				p->pos++;
				return k->n_sub ? 0
						: search_fail(p, "empty ()");
			}
		}
		if (!search_keys_room(&k->sub, k->n_sub, &cap))
			return -ENOMEM;
		rc = search_key_parse(p, &k->sub[k->n_sub++], depth + 1);
		if (rc < 0)
			return rc;
	}
}

/* Parses the argument(s) of a key of known kind. */
static int search_args(struct search_parser *p, struct search_key *k, int depth)
{
	const struct search_tok *t = NULL;
	char shown[48];
	int i;

	switch (k->kind) {
	case SEARCH_PLAIN:
		return 0;
	case SEARCH_NOT:
		return search_subkeys(p, k, 1, depth);
	case SEARCH_OR:
		return search_subkeys(p, k, 2, depth);
	case SEARCH_LIST:
		return search_subkeys(p, k, 0, depth);
	default:
		break;
	}
	for (i = 0; i < (k->kind == SEARCH_HEADER ? 2 : 1); i++) {
		int rc;

		t = search_next(p);
		if (!t)
			return search_fail(p, "%s needs an argument", k->name);
		switch (k->kind) {
		case SEARCH_STRING:
		case SEARCH_HEADER:
			rc = search_string(p, t, k, i);
			break;
		case SEARCH_KEYWORD:
			rc = search_keyword(p, t, k);
			break;
		case SEARCH_DATE:
			rc = search_date(p, t, k);
			break;
		case SEARCH_NUMBER:
			rc = (t->type == SEARCH_TOK_ATOM &&
			      search_u32(t->s, t->len, &k->number))
				     ? 0
				     : search_fail(p,
						   "%s wants a number below "
						   "2^32, not \"%s\"",
						   k->name,
						   search_show(t, shown,
							       sizeof(shown)));
			break;
		default: /* SEARCH_SET */
			rc = search_seq_set(p, t, &k->arg[0], &k->arg_len[0]);
			break;
		}
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Parses one search key (with its arguments and sub-keys) into k. */
static int search_key_parse(struct search_parser *p, struct search_key *k,
			    int depth)
{
	const struct search_tok *t;
	char shown[48];
	size_t i;

	if (depth > SEARCH_MAX_DEPTH)
		return search_fail(p, "query nested deeper than %d",
				   SEARCH_MAX_DEPTH);
	if (++p->n_keys > SEARCH_MAX_KEYS)
		return search_fail(p, "more than %d search keys",
				   SEARCH_MAX_KEYS);
	t = search_next(p);
	if (!t)
		return search_fail(p, "query ends where a key was expected");
	if (t->type == SEARCH_TOK_OPEN) {
		k->kind = SEARCH_LIST;
		return search_args(p, k, depth);
	}
	if (t->type == SEARCH_TOK_CLOSE)
		return search_fail(p, "')' without '('");
	if (t->type == SEARCH_TOK_QUOTED)
		return search_fail(p, "a search key cannot be quoted: \"%s\"",
				   search_show(t, shown, sizeof(shown)));
	if ((t->s[0] >= '0' && t->s[0] <= '9') || t->s[0] == '*') {
		k->kind = SEARCH_SET;
		return search_seq_set(p, t, &k->arg[0], &k->arg_len[0]);
	}
	for (i = 0; i < sizeof(search_keys) / sizeof(search_keys[0]); i++)
		if (search_tok_is(t, search_keys[i].name))
			break;
	if (i == sizeof(search_keys) / sizeof(search_keys[0]))
		return search_fail(p, "unknown search key \"%s\"",
				   search_show(t, shown, sizeof(shown)));
	k->kind = search_keys[i].kind;
	k->name = search_keys[i].name;
	return search_args(p, k, depth);
}

/* Frees what a key owns (not the key itself). */
static void search_key_clear(struct search_key *k)
{
	size_t i;

	free(k->arg[0]);
	free(k->arg[1]);
	for (i = 0; i < k->n_sub; i++)
		search_key_clear(&k->sub[i]);
	free(k->sub);
}

void search_free(struct search_query *q)
{
	size_t i;

	if (!q)
		return;
	for (i = 0; i < q->n; i++)
		search_key_clear(&q->keys[i]);
	free(q->keys);
	free(q);
}

/* Parses every top-level key into q. */
static int search_top(struct search_parser *p, struct search_query *q)
{
	size_t cap = 0;
	int rc;

	if (p->n_toks == 0)
		return search_fail(p, "empty query");
	while (p->pos < p->n_toks) {
		if (!search_keys_room(&q->keys, q->n, &cap))
			return -ENOMEM;
		rc = search_key_parse(p, &q->keys[q->n++], 0);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int search_parse(const char *component, struct search_query **q_r, char *err,
		 size_t errlen)
{
	struct search_parser p = {.err = err, .errlen = errlen};
	struct search_query *q;
	int rc;

	*q_r = NULL;
	if (err && errlen)
		err[0] = '\0';
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	rc = search_decode(&p, component);
	if (rc == 0)
		rc = search_lex(&p);
	if (rc == 0)
		rc = search_top(&p, q);
	q->utf8 = p.utf8;
	free(p.buf);
	free(p.toks);
	if (rc < 0) {
		if (rc == -ENOMEM)
			search_fail(&p, "out of memory");
		search_free(q);
		return rc;
	}
	*q_r = q;
	return 0;
}

/* Appends bytes to the wire buffer. */
static void search_put(struct search_wire *w, const char *data, size_t len)
{
	if (w->failed)
		return;
	strbuf_append(&w->text, data, len);
	w->failed = strbuf_failed(&w->text);
}

/* Starts a new part (text or literal) at the end of the buffer, unless
 * the last part is text and so is this one. */
static void search_part_begin(struct search_wire *w, bool literal)
{
	struct search_part *np;

	if (w->failed)
		return;
	if (w->n && !literal && !w->parts[w->n - 1].literal)
		return;
	np = grow_reserve(w->parts, &w->n_cap, w->n + 1, sizeof(*np));
	if (!np) {
		w->failed = true;
		return;
	}
	w->parts = np;
	w->parts[w->n].off = w->text.len;
	w->parts[w->n].len = 0;
	w->parts[w->n].literal = literal;
	w->n++;
}

/* Appends text to the current text part. */
static void search_text(struct search_wire *w, const char *s)
{
	size_t len = strlen(s);

	search_part_begin(w, false);
	search_put(w, s, len);
	if (!w->failed)
		w->parts[w->n - 1].len += len;
}

/* Appends a string argument: quoted when it is printable ASCII, else a
 * literal part of its own. */
static void search_emit_string(struct search_wire *w, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			break;
	if (i < len) {
		search_part_begin(w, true);
		search_put(w, s, len);
		if (!w->failed)
			w->parts[w->n - 1].len = len;
		return;
	}
	search_text(w, "\"");
	for (i = 0; i < len; i++) {
		char c[3] = {'\\', s[i], '\0'};

		search_text(w, (s[i] == '"' || s[i] == '\\') ? c : c + 1);
	}
	search_text(w, "\"");
}

/* Writes one key from its parsed values. */
static void search_emit_key(struct search_wire *w, const struct search_key *k)
{
	char num[32];
	size_t i;

	if (k->kind == SEARCH_LIST) {
		search_text(w, "(");
		for (i = 0; i < k->n_sub; i++) {
			if (i)
				search_text(w, " ");
			search_emit_key(w, &k->sub[i]);
		}
		search_text(w, ")");
		return;
	}
	if (k->name) {
		search_text(w, k->name);
		if (k->kind != SEARCH_PLAIN)
			search_text(w, " ");
	}
	switch (k->kind) {
	case SEARCH_STRING:
		search_emit_string(w, k->arg[0], k->arg_len[0]);
		break;
	case SEARCH_HEADER:
		search_emit_string(w, k->arg[0], k->arg_len[0]);
		search_text(w, " ");
		search_emit_string(w, k->arg[1], k->arg_len[1]);
		break;
	case SEARCH_KEYWORD: /* checked: atom characters only */
	case SEARCH_SET: /* re-printed from numbers */
		search_text(w, k->arg[0]);
		break;
	case SEARCH_DATE:
		snprintf(num, sizeof(num), "%d-%s-%04d", k->day,
			 search_months[k->mon - 1], k->year);
		search_text(w, num);
		break;
	case SEARCH_NUMBER:
		snprintf(num, sizeof(num), "%u", k->number);
		search_text(w, num);
		break;
	case SEARCH_NOT:
	case SEARCH_OR:
		for (i = 0; i < k->n_sub; i++) {
			if (i)
				search_text(w, " ");
			search_emit_key(w, &k->sub[i]);
		}
		break;
	default:
		break;
	}
}

int search_emit(const struct search_query *q, struct search_wire *w)
{
	size_t i;

	memset(w, 0, sizeof(*w));
	if (q->utf8)
		search_text(w, "CHARSET UTF-8 ");
	for (i = 0; i < q->n; i++) {
		if (i)
			search_text(w, " ");
		search_emit_key(w, &q->keys[i]);
	}
	if (w->failed) {
		search_wire_free(w);
		return -ENOMEM;
	}
	return 0;
}

void search_wire_free(struct search_wire *w)
{
	strbuf_free(&w->text);
	free(w->parts);
	memset(w, 0, sizeof(*w));
}

size_t search_wire_render(const struct search_wire *w, bool show_literals,
			  char *buf, size_t size)
{
	size_t i, o = 0;

	for (i = 0; i < w->n; i++) {
		const struct search_part *pt = &w->parts[i];
		char head[48];
		size_t hl = 0;

		if (pt->literal)
			hl = (size_t)snprintf(head, sizeof(head),
					      show_literals ? "{%zu}\r\n"
							    : "{%zu bytes}",
					      pt->len);
		if (hl && o < size)
			memcpy(buf + o, head, hl < size - o ? hl : size - o);
		o += hl;
		if (pt->literal && !show_literals)
			continue;
		if (o < size)
			memcpy(buf + o, w->text.data + pt->off,
			       pt->len < size - o ? pt->len : size - o);
		o += pt->len;
	}
	if (size)
		buf[o < size ? o : size - 1] = '\0';
	return o;
}

/* Appends one UID to the growing array; false when out of memory. */
static bool search_add_uid(uint32_t **uids, size_t *n, size_t *cap,
			   uint32_t uid)
{
	uint32_t *nu = grow_reserve(*uids, cap, *n + 1, sizeof(*nu));

	if (!nu)
		return false;
	*uids = nu;
	(*uids)[(*n)++] = uid;
	return true;
}

int search_uid_set(const char *set, size_t len, uint32_t **uids, size_t *n,
		   size_t *cap, size_t max)
{
	size_t i = 0;

	while (i < len) {
		size_t j = i, colon = 0;
		uint32_t a, b, lo, hi, u;

		while (j < len && set[j] != ',') {
			if (set[j] == ':') {
				if (colon)
					return -1;
				colon = j;
			}
			j++;
		}
		if (colon) {
			if (!search_u32(set + i, colon - i, &a) ||
			    !search_u32(set + colon + 1, j - colon - 1, &b))
				return -1;
		} else if (!search_u32(set + i, j - i, &a)) {
			return -1;
		} else {
			b = a;
		}
		if (a == 0 || b == 0)
			return -1;
		lo = a < b ? a : b;
		hi = a < b ? b : a;
		for (u = lo;; u++) {
			if (*n >= max)
				return 1;
			if (!search_add_uid(uids, n, cap, u))
				return -1;
			if (u == hi)
				break;
		}
		if (j == len)
			return 0;
		i = j + 1;
		if (i == len)
			return -1; /* a trailing ',' */
	}
	return len ? 0 : -1;
}
