// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * imap_parse: an incremental IMAP response parser (see imap_parse.h).
 *
 * One state machine is fed a byte at a time, except for the contents of
 * literals, which are copied with memcpy in whole chunks as they
 * arrive. The state between feeds is the machine's state plus what it
 * has built so far, so input may be cut anywhere and nothing is ever
 * scanned twice.
 *
 * Everything the caller will see as bytes (tag, atoms, strings, text)
 * is appended to one buffer, p->data, each piece NUL terminated. Since
 * that buffer moves when it grows, tokens are first recorded as offsets
 * (struct rtok) and turned into the struct imap_tok array the caller
 * sees only when the response is complete.
 *
 * Lists: the tokens of every open list are pushed on p->stk and p->lvl[]
 * says where the items of each open list start. When a list closes, its
 * items are moved as one block to p->out and the list token, which
 * points at that block, takes their place on p->stk. So the items of
 * every list end up contiguous in p->out, as struct imap_tok wants, in
 * time linear in the number of tokens. The "[...]" of a response code
 * is handled like a list at the top level.
 */
#include "imap_parse.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A data buffer larger than this (grown by a big literal) is freed
 * between responses instead of being kept for the next one. */
#define DATA_KEEP ((size_t)1 << 20)
/* Token arrays larger than this are freed between responses. */
#define TOKENS_KEEP ((size_t)4096)

/* Room kept after a literal for the rest of its response, so that the
 * few bytes after a big literal do not make its buffer grow again. */
#define LITERAL_SLACK 4096

enum state {
	S_START, /* first byte of a response */
	S_AFTER_PLUS, /* "+" read: SP or end of line */
	S_AFTER_STAR, /* "*" read: SP */
	S_TAG, /* in the tag */
	S_TOKENS, /* between tokens */
	S_ATOM, /* in an atom */
	S_QUOTED, /* in a quoted string */
	S_QUOTED_ESC, /* after '\' in a quoted string */
	S_LIT_SIZE, /* after "{" or "~{": the digits */
	S_LIT_PLUS, /* after "{N+": '}' */
	S_LIT_EOL, /* after "{N}": end of line */
	S_LITERAL, /* the bytes of a literal */
	S_AFTER_STATUS, /* after OK/NO/...: SP or end of line */
	S_STATUS_SP, /* after "OK ": '[' of a code, or text */
	S_AFTER_CODE, /* after the ']' of a code: SP, then text */
	S_TEXT, /* human text, up to the end of the line */
	S_CR, /* a CR was read: LF must follow */
	S_DONE, /* response complete and handed out */
	S_ERROR, /* failed; p->err says why */
};

/* A token while its response is being parsed: offsets, not pointers. */
struct rtok {
	enum imap_tok_type type;
	size_t off; /* ATOM, STRING: start of the bytes in p->data */
	size_t len; /* ATOM, STRING: byte count; LIST: item count */
	size_t first; /* LIST: index of the first item in p->out */
};

struct imap_parser {
	size_t max_line;
	size_t max_literal;
	char err[160];

	enum state state;
	enum state cr_ret; /* the state that handles the LF after a CR */
	size_t line_used; /* bytes of this response outside literals */

	/* The response being built. */
	enum imap_resp_kind kind;
	enum imap_status status;
	bool first_word; /* the next token may be the status word */
	bool in_code; /* inside the "[...]" of a status response */
	bool has_text;
	size_t tag_off;
	size_t text_off;
	size_t code_first; /* index in p->out */
	size_t n_code;

	/* The token being read. */
	size_t tok_off; /* start of its bytes in p->data */
	size_t brackets; /* '[' open in a section of the current atom */
	uint64_t lit_size; /* {N}: the size read so far */
	bool lit_digits; /* {N}: a digit was read */
	size_t lit_left; /* literal bytes still to come */

	/* Open lists: index in p->stk of each one's first item. */
	size_t lvl[IMAP_PARSER_MAX_DEPTH];
	size_t n_lvl;

	char *data; /* owned */
	size_t data_len;
	size_t data_cap;
	struct rtok *stk; /* owned: tokens of the open lists */
	size_t n_stk;
	size_t stk_cap;
	struct rtok *out; /* owned: items of closed lists, by list */
	size_t n_out;
	size_t out_cap;
	struct imap_tok *fin; /* owned: p->out as the caller sees it */
	size_t fin_cap;
	struct imap_resp resp;
};

/*
 * Records why parsing failed and moves the parser to the error state,
 * which it never leaves. Returns -1 so that callers can return it.
 */
__attribute__((format(printf, 2, 3))) static int imap_parse_fail(struct imap_parser *p,
						      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	p->state = S_ERROR;
	return -1;
}

/* Describes byte c for an error message: 'x' if printable, else 0xNN.
 * buf must hold 8 bytes; returns buf. */
static const char *imap_parse_show(char *buf, unsigned char c)
{
	if (c > 0x20 && c < 0x7f)
		snprintf(buf, 8, "'%c'", c);
	else
		snprintf(buf, 8, "0x%02x", c);
	return buf;
}

/* ASCII-only lower case, so that no locale can change how the
 * protocol's keywords compare. */
static unsigned char imap_parse_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* True when the n bytes at a and b are equal, ignoring ASCII case. */
static bool imap_parse_caseeq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (imap_parse_lower(a[i]) != imap_parse_lower(b[i]))
			return false;
	return true;
}

/* True for the bytes a tag may hold: ASTRING-CHAR except '+' (RFC 3501
 * section 9). */
static bool imap_parse_is_tag_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return !strchr("(){%*\"\\+", c);
}

/*
 * Capacity for an array of cap elements of size bytes that must hold
 * len + need: doubled, or exactly what is needed when that is more (so
 * a big literal does not take twice its size). 0 on overflow.
 */
static size_t imap_parse_new_cap(size_t cap, size_t len, size_t need, size_t size)
{
	size_t want, ncap;

	if (len > SIZE_MAX - need)
		return 0;
	want = len + need;
	ncap = cap < 32 ? 64 : (cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2);
	if (ncap < want)
		ncap = want;
	if (ncap > SIZE_MAX / size)
		return 0;
	return ncap;
}

/* Makes room for need more bytes in p->data. False when out of memory. */
static bool imap_parse_data_reserve(struct imap_parser *p, size_t need)
{
	size_t cap;
	char *n;

	if (p->data_cap - p->data_len >= need)
		return true;
	cap = imap_parse_new_cap(p->data_cap, p->data_len, need, 1);
	n = cap ? realloc(p->data, cap) : NULL;
	if (!n)
		return false;
	p->data = n;
	p->data_cap = cap;
	return true;
}

/* Appends one byte to p->data; imap_parse_step() has made room for it. */
static void imap_parse_put(struct imap_parser *p, char c)
{
	p->data[p->data_len++] = c;
}

/* Pushes a finished token on p->stk. False when out of memory. */
static bool imap_parse_stk_push(struct imap_parser *p, const struct rtok *t)
{
	size_t cap;
	struct rtok *n;

	if (p->n_stk == p->stk_cap) {
		cap = imap_parse_new_cap(p->stk_cap, p->n_stk, 1, sizeof(*n));
		n = cap ? realloc(p->stk, cap * sizeof(*n)) : NULL;
		if (!n)
			return false;
		p->stk = n;
		p->stk_cap = cap;
	}
	p->stk[p->n_stk++] = *t;
	return true;
}

/* Appends count tokens (the items of one list) to p->out as one block.
 * False when out of memory. */
static bool imap_parse_out_append(struct imap_parser *p, const struct rtok *t,
		       size_t count)
{
	size_t cap;
	struct rtok *n;

	if (p->out_cap - p->n_out < count) {
		cap = imap_parse_new_cap(p->out_cap, p->n_out, count, sizeof(*n));
		n = cap ? realloc(p->out, cap * sizeof(*n)) : NULL;
		if (!n)
			return false;
		p->out = n;
		p->out_cap = cap;
	}
	if (count)
		memcpy(p->out + p->n_out, t, count * sizeof(*t));
	p->n_out += count;
	return true;
}

/*
 * Forgets the last response so that the next byte starts a new one.
 * The buffers are kept for reuse, except a data buffer that a big
 * literal made large.
 */
static void imap_parse_reset(struct imap_parser *p)
{
	p->state = S_START;
	p->line_used = 0;
	p->kind = IMAP_RESP_UNTAGGED;
	p->status = IMAP_STATUS_NONE;
	p->first_word = false;
	p->in_code = false;
	p->has_text = false;
	p->n_code = 0;
	p->lit_left = 0;
	p->n_lvl = 0;
	p->n_stk = 0;
	p->n_out = 0;
	p->data_len = 0;
	if (p->data_cap > DATA_KEEP) {
		free(p->data);
		p->data = NULL;
		p->data_cap = 0;
	}
	/* Token arrays a huge response grew are not kept either. */
	if (p->stk_cap > TOKENS_KEEP || p->out_cap > TOKENS_KEEP ||
	    p->fin_cap > TOKENS_KEEP) {
		free(p->stk);
		free(p->out);
		free(p->fin);
		p->stk = NULL;
		p->out = NULL;
		p->fin = NULL;
		p->stk_cap = p->out_cap = p->fin_cap = 0;
	}
}

/* Creates a parser with the given bounds; see imap_parse.h. */
struct imap_parser *imap_parse_new(size_t max_line, size_t max_literal)
{
	struct imap_parser *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->max_line = max_line;
	p->max_literal = max_literal;
	snprintf(p->err, sizeof(p->err), "no error");
	imap_parse_reset(p);
	return p;
}

/* Frees the parser and every response it handed out. */
void imap_parse_free(struct imap_parser *p)
{
	if (!p)
		return;
	free(p->data);
	free(p->stk);
	free(p->out);
	free(p->fin);
	free(p);
}

/* The status a response's first word names, or IMAP_STATUS_NONE. */
static enum imap_status imap_parse_status_word(const char *s, size_t len)
{
	static const struct {
		const char *word;
		enum imap_status status;
	} words[] = {
		{"OK", IMAP_STATUS_OK},		  {"NO", IMAP_STATUS_NO},
		{"BAD", IMAP_STATUS_BAD},	  {"BYE", IMAP_STATUS_BYE},
		{"PREAUTH", IMAP_STATUS_PREAUTH},
	};
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].word) == len &&
		    imap_parse_caseeq(s, words[i].word, len))
			return words[i].status;
	return IMAP_STATUS_NONE;
}

/*
 * Takes a finished token. The first token after "* " or the tag decides
 * whether this is a status response (the word is then consumed, not
 * kept) or a data response; a tagged response must be a status one.
 * Sets the next state: S_TOKENS, or S_AFTER_STATUS after a status word.
 */
static int imap_parse_push_tok(struct imap_parser *p, const struct rtok *t)
{
	enum imap_status st;

	p->state = S_TOKENS;
	if (p->first_word) {
		p->first_word = false;
		st = IMAP_STATUS_NONE;
		if (t->type == IMAP_TOK_ATOM)
			st = imap_parse_status_word(p->data + t->off, t->len);
		if (p->kind == IMAP_RESP_TAGGED &&
		    (st == IMAP_STATUS_NONE || st == IMAP_STATUS_BYE ||
		     st == IMAP_STATUS_PREAUTH))
			return imap_parse_fail(p, "tagged response is not OK, NO or BAD");
		if (st != IMAP_STATUS_NONE) {
			p->status = st;
			p->state = S_AFTER_STATUS;
			return 0;
		}
	}
	/* Each token costs far more memory than the bytes that make it
	 * (a 2-byte "()" is a list): their number is bounded too. */
	if (p->n_stk + p->n_out >= IMAP_PARSER_MAX_TOKENS)
		return imap_parse_fail(p, "response has more than %d tokens",
			    IMAP_PARSER_MAX_TOKENS);
	if (!imap_parse_stk_push(p, t))
		return imap_parse_fail(p, "out of memory");
	return 0;
}

/* Ends the atom being read; the byte that ended it is then handled in
 * the state imap_parse_push_tok() chose. "NIL" in any case becomes a NIL token. */
static int imap_parse_end_atom(struct imap_parser *p)
{
	struct rtok t = {.type = IMAP_TOK_ATOM,
			 .off = p->tok_off,
			 .len = p->data_len - p->tok_off};

	imap_parse_put(p, '\0');
	if (t.len == 3 && imap_parse_caseeq(p->data + t.off, "NIL", 3))
		t.type = IMAP_TOK_NIL;
	return imap_parse_push_tok(p, &t);
}

/* Ends the literal whose bytes have all been copied to p->data. */
static int imap_parse_end_literal(struct imap_parser *p)
{
	struct rtok t = {.type = IMAP_TOK_STRING,
			 .off = p->tok_off,
			 .len = p->data_len - p->tok_off};

	imap_parse_put(p, '\0'); /* room reserved with the literal */
	return imap_parse_push_tok(p, &t);
}

/* Closes the innermost open list: its items go to p->out as one block
 * and the list takes their place on p->stk. */
static int imap_parse_close_list(struct imap_parser *p)
{
	size_t start = p->lvl[--p->n_lvl];
	struct rtok t = {.type = IMAP_TOK_LIST,
			 .len = p->n_stk - start,
			 .first = p->n_out};

	/* An empty list moves nothing, and p->stk may still be NULL (a
	 * "* ()" first response): no pointer arithmetic on it then. */
	if (t.len && !imap_parse_out_append(p, p->stk + start, t.len))
		return imap_parse_fail(p, "out of memory");
	p->n_stk = start;
	return imap_parse_push_tok(p, &t);
}

/* Closes the response code at its ']'. Its tokens are all that is on
 * p->stk, since a status response has no data tokens. */
static int imap_parse_end_code(struct imap_parser *p)
{
	if (p->n_stk == 0)
		return imap_parse_fail(p, "empty response code");
	p->code_first = p->n_out;
	p->n_code = p->n_stk;
	if (!imap_parse_out_append(p, p->stk, p->n_stk))
		return imap_parse_fail(p, "out of memory");
	p->n_stk = 0;
	p->in_code = false;
	p->state = S_AFTER_CODE;
	return 0;
}

/* Starts the human text of a status or continuation response here. */
static void imap_parse_begin_text(struct imap_parser *p)
{
	p->text_off = p->data_len;
	p->has_text = true;
	p->state = S_TEXT;
}

/* Remembers which state handles the LF that must follow a CR. */
static int imap_parse_saw_cr(struct imap_parser *p)
{
	p->cr_ret = p->state;
	p->state = S_CR;
	return 0;
}

/* The end of a line between tokens ends the response, if it is whole. */
static int imap_parse_tokens_eol(struct imap_parser *p)
{
	if (p->first_word)
		return imap_parse_fail(p, p->kind == IMAP_RESP_TAGGED
				       ? "tagged response without a status"
				       : "empty untagged response");
	if (p->in_code)
		return imap_parse_fail(p, "response code not closed by ']'");
	if (p->n_lvl)
		return imap_parse_fail(p, "%zu list(s) not closed at end of line",
			    p->n_lvl);
	p->state = S_DONE;
	return 0;
}

/*
 * S_TOKENS: between tokens, c starts the next one or ends the line.
 * Returns 0 when c was used, 1 when the new state must see it again,
 * -1 on error (this is the contract of every on_*() handler).
 */
static int imap_parse_on_tokens(struct imap_parser *p, unsigned char c)
{
	switch (c) {
	case ' ':
		return 0;
	case '\r':
		return imap_parse_saw_cr(p);
	case '\n':
		return imap_parse_tokens_eol(p);
	}
	if (p->first_word && p->kind == IMAP_RESP_TAGGED && strchr("()\"{", c))
		return imap_parse_fail(p, "tagged response is not OK, NO or BAD");
	switch (c) {
	case '(':
		p->first_word = false;
		if (p->n_lvl == IMAP_PARSER_MAX_DEPTH)
			return imap_parse_fail(p, "lists nested deeper than %d levels",
				    IMAP_PARSER_MAX_DEPTH);
		p->lvl[p->n_lvl++] = p->n_stk;
		return 0;
	case ')':
		if (p->n_lvl == 0)
			return imap_parse_fail(p, "unbalanced ')'");
		return imap_parse_close_list(p);
	case '"':
		p->tok_off = p->data_len;
		p->state = S_QUOTED;
		return 0;
	case '{':
		p->lit_size = 0;
		p->lit_digits = false;
		p->state = S_LIT_SIZE;
		return 0;
	case ']':
		if (p->in_code) {
			if (p->n_lvl)
				return imap_parse_fail(p, "response code ends inside "
					       "a list");
			return imap_parse_end_code(p);
		}
		break;
	}
	p->tok_off = p->data_len;
	p->brackets = 0;
	p->state = S_ATOM;
	return 1;
}

/*
 * True when the atom read so far names a fetch item that a section
 * follows (RFC 3501/9051 msg-att: "BODY" section, "BINARY"
 * section-binary, "BINARY.SIZE" section-binary): only there may a "[...]"
 * hold spaces and parentheses (BODY[HEADER.FIELDS (A B)]). Elsewhere '['
 * is an atom character like any other: the flag "x[a" ends at its space.
 */
static bool imap_parse_section_item(const struct imap_parser *p)
{
	static const char *const items[] = {"BODY", "BINARY", "BINARY.SIZE"};
	size_t len = p->data_len - p->tok_off, i;

	for (i = 0; i < sizeof(items) / sizeof(items[0]); i++)
		if (len == strlen(items[i]) &&
		    imap_parse_caseeq(p->data + p->tok_off, items[i], len))
			return true;
	return false;
}

/* S_ATOM: c continues or ends the atom (see the header for the rules). */
static int imap_parse_on_atom(struct imap_parser *p, unsigned char c)
{
	switch (c) {
	case ' ':
	case '(':
	case ')':
		if (p->brackets)
			break;
		return imap_parse_end_atom(p) < 0 ? -1 : 1;
	case '\r':
	case '\n':
		/* Even inside "[": CR and LF never belong to an atom, and
		 * a mailbox name may hold a lone '['. */
		return imap_parse_end_atom(p) < 0 ? -1 : 1;
	case '[':
		if (p->brackets || imap_parse_section_item(p))
			p->brackets++;
		break;
	case ']':
		if (p->brackets) {
			p->brackets--;
			break;
		}
		if (p->in_code)
			return imap_parse_end_atom(p) < 0 ? -1 : 1;
		break;
	case '{':
		/* "~{" at the start of a token begins a literal8. */
		if (p->data_len - p->tok_off == 1 &&
		    p->data[p->tok_off] == '~') {
			if (p->first_word && p->kind == IMAP_RESP_TAGGED)
				return imap_parse_fail(p, "tagged response is not OK, "
					       "NO or BAD");
			p->data_len = p->tok_off;
			p->lit_size = 0;
			p->lit_digits = false;
			p->state = S_LIT_SIZE;
			return 0;
		}
		break;
	}
	imap_parse_put(p, c);
	return 0;
}

/* S_QUOTED: c is a byte of a quoted string, its end, or an escape. */
static int imap_parse_on_quoted(struct imap_parser *p, unsigned char c)
{
	struct rtok t;

	switch (c) {
	case '"':
		t = (struct rtok){.type = IMAP_TOK_STRING,
				  .off = p->tok_off,
				  .len = p->data_len - p->tok_off};
		imap_parse_put(p, '\0');
		return imap_parse_push_tok(p, &t);
	case '\\':
		p->state = S_QUOTED_ESC;
		return 0;
	case '\r':
	case '\n':
		return imap_parse_fail(p, "quoted string not closed at end of line");
	}
	imap_parse_put(p, c);
	return 0;
}

/* S_QUOTED_ESC: only \\ and \" are valid escapes. */
static int imap_parse_on_quoted_esc(struct imap_parser *p, unsigned char c)
{
	char b[8];

	if (c != '\\' && c != '"')
		return imap_parse_fail(p,
			    "invalid escape: %s after '\\' in quoted "
			    "string",
			    imap_parse_show(b, c));
	imap_parse_put(p, c);
	p->state = S_QUOTED;
	return 0;
}

/* S_LIT_SIZE: the digits of {N}, checked for overflow and, at the '}',
 * against max_literal, before any byte of the literal is accepted. */
static int imap_parse_on_lit_size(struct imap_parser *p, unsigned char c)
{
	char b[8];
	unsigned int d;

	if (c >= '0' && c <= '9') {
		d = c - '0';
		if (p->lit_size > (UINT64_MAX - d) / 10)
			return imap_parse_fail(p, "literal size does not fit in 64 bits");
		p->lit_size = p->lit_size * 10 + d;
		p->lit_digits = true;
		return 0;
	}
	if (!p->lit_digits)
		return imap_parse_fail(p, "literal size missing, found %s", imap_parse_show(b, c));
	if (c == '+') {
		p->state = S_LIT_PLUS;
		return 0;
	}
	if (c != '}')
		return imap_parse_fail(p, "invalid character %s in literal size",
			    imap_parse_show(b, c));
	if (p->lit_size > (uint64_t)p->max_literal)
		return imap_parse_fail(p,
			    "literal of %" PRIu64 " bytes exceeds limit of %zu",
			    p->lit_size, p->max_literal);
	/* Many literals in one response are bounded together too. */
	if (p->data_len + p->lit_size > (uint64_t)p->max_literal + p->max_line)
		return imap_parse_fail(p, "response exceeds %zu bytes in all",
			    p->max_literal + p->max_line);
	p->state = S_LIT_EOL;
	return 0;
}

/* S_LIT_PLUS: "{N+" must be closed by '}'. */
static int imap_parse_on_lit_plus(struct imap_parser *p, unsigned char c)
{
	char b[8];

	if (c != '}')
		return imap_parse_fail(p, "invalid character %s in literal size",
			    imap_parse_show(b, c));
	p->state = S_LIT_SIZE;
	return imap_parse_on_lit_size(p, c);
}

/* S_LIT_EOL: "{N}" must end the line; then the literal's bytes follow.
 * Room for all of them is made now, so that they can be copied in as
 * they come. */
static int imap_parse_on_lit_eol(struct imap_parser *p, unsigned char c)
{
	char b[8];
	size_t size = (size_t)p->lit_size; /* <= max_literal */

	if (c == '\r')
		return imap_parse_saw_cr(p);
	if (c != '\n')
		return imap_parse_fail(p, "literal size followed by %s, not end of line",
			    imap_parse_show(b, c));
	if (size > SIZE_MAX - LITERAL_SLACK ||
	    !imap_parse_data_reserve(p, size + LITERAL_SLACK))
		return imap_parse_fail(p, "out of memory for a literal of %zu bytes",
			    size);
	p->tok_off = p->data_len;
	p->lit_left = size;
	if (size == 0)
		return imap_parse_end_literal(p);
	p->state = S_LITERAL;
	return 0;
}

/* S_AFTER_STATUS: after OK/NO/BAD/BYE/PREAUTH comes SP, or the end of
 * the line (no text). Anything else is taken as text. */
static int imap_parse_on_after_status(struct imap_parser *p, unsigned char c)
{
	if (c == ' ') {
		p->state = S_STATUS_SP;
		return 0;
	}
	imap_parse_begin_text(p);
	return 1;
}

/* S_STATUS_SP: '[' starts a response code, anything else the text. */
static int imap_parse_on_status_sp(struct imap_parser *p, unsigned char c)
{
	if (c == '[') {
		p->in_code = true;
		p->state = S_TOKENS;
		return 0;
	}
	imap_parse_begin_text(p);
	return 1;
}

/* S_AFTER_CODE: one SP may separate the code from the text. */
static int imap_parse_on_after_code(struct imap_parser *p, unsigned char c)
{
	imap_parse_begin_text(p);
	return c == ' ' ? 0 : 1;
}

/* S_TEXT: text runs to the end of the line. */
static int imap_parse_on_text(struct imap_parser *p, unsigned char c)
{
	if (c == '\r')
		return imap_parse_saw_cr(p);
	if (c == '\n') {
		imap_parse_put(p, '\0');
		p->state = S_DONE;
		return 0;
	}
	imap_parse_put(p, c);
	return 0;
}

/* S_START: '+', '*' or the first byte of a tag. */
static int imap_parse_on_start(struct imap_parser *p, unsigned char c)
{
	char b[8];

	switch (c) {
	case '+':
		p->kind = IMAP_RESP_CONTINUE;
		p->state = S_AFTER_PLUS;
		return 0;
	case '*':
		p->kind = IMAP_RESP_UNTAGGED;
		p->state = S_AFTER_STAR;
		return 0;
	case '\r':
	case '\n':
		return imap_parse_fail(p, "empty response line");
	}
	if (!imap_parse_is_tag_char(c))
		return imap_parse_fail(p, "invalid tag starting with %s", imap_parse_show(b, c));
	p->kind = IMAP_RESP_TAGGED;
	p->tag_off = p->data_len;
	imap_parse_put(p, c);
	p->state = S_TAG;
	return 0;
}

/* S_TAG: the tag runs up to a single SP. */
static int imap_parse_on_tag(struct imap_parser *p, unsigned char c)
{
	char b[8];

	if (c == ' ') {
		imap_parse_put(p, '\0');
		p->first_word = true;
		p->state = S_TOKENS;
		return 0;
	}
	if (c == '\r' || c == '\n')
		return imap_parse_fail(p, "tagged response without a status");
	if (!imap_parse_is_tag_char(c))
		return imap_parse_fail(p, "invalid character %s in tag", imap_parse_show(b, c));
	imap_parse_put(p, c);
	return 0;
}

/* One byte outside a literal: runs the handlers until one uses it. */
static int imap_parse_step(struct imap_parser *p, unsigned char c)
{
	char b[8];
	int r;

	if (c == '\0')
		return imap_parse_fail(p, "NUL byte outside a literal");
	/* A byte adds at most two bytes to data: itself and the NUL that
	 * ends the token before it. */
	if (!imap_parse_data_reserve(p, 2))
		return imap_parse_fail(p, "out of memory");
	do {
		switch (p->state) {
		case S_START:
			r = imap_parse_on_start(p, c);
			break;
		case S_TAG:
			r = imap_parse_on_tag(p, c);
			break;
		case S_AFTER_STAR:
			if (c != ' ')
				return imap_parse_fail(p,
					    "expected SP after '*', found %s",
					    imap_parse_show(b, c));
			p->first_word = true;
			p->state = S_TOKENS;
			r = 0;
			break;
		case S_AFTER_PLUS:
			if (c != ' ' && c != '\r' && c != '\n')
				return imap_parse_fail(p,
					    "expected SP after '+', found %s",
					    imap_parse_show(b, c));
			imap_parse_begin_text(p);
			r = c == ' ' ? 0 : 1;
			break;
		case S_TOKENS:
			r = imap_parse_on_tokens(p, c);
			break;
		case S_ATOM:
			r = imap_parse_on_atom(p, c);
			break;
		case S_QUOTED:
			r = imap_parse_on_quoted(p, c);
			break;
		case S_QUOTED_ESC:
			r = imap_parse_on_quoted_esc(p, c);
			break;
		case S_LIT_SIZE:
			r = imap_parse_on_lit_size(p, c);
			break;
		case S_LIT_PLUS:
			r = imap_parse_on_lit_plus(p, c);
			break;
		case S_LIT_EOL:
			r = imap_parse_on_lit_eol(p, c);
			break;
		case S_AFTER_STATUS:
			r = imap_parse_on_after_status(p, c);
			break;
		case S_STATUS_SP:
			r = imap_parse_on_status_sp(p, c);
			break;
		case S_AFTER_CODE:
			r = imap_parse_on_after_code(p, c);
			break;
		case S_TEXT:
			r = imap_parse_on_text(p, c);
			break;
		case S_CR:
			if (c != '\n')
				return imap_parse_fail(p, "CR not followed by LF");
			p->state = p->cr_ret;
			r = 1;
			break;
		default: /* S_LITERAL, S_DONE, S_ERROR: not reached */
			return imap_parse_fail(p, "internal error: state %d", p->state);
		}
	} while (r > 0);
	return r;
}

/* Builds the struct imap_resp of the complete response: the remaining
 * top-level tokens go to p->out, then offsets become pointers. */
static int imap_parse_finish(struct imap_parser *p)
{
	struct imap_resp *r = &p->resp;
	size_t toks_first = p->n_out;
	size_t n_toks = p->n_stk;
	struct imap_tok *n;
	size_t i, cap;

	if (!imap_parse_out_append(p, p->stk, p->n_stk))
		return imap_parse_fail(p, "out of memory");
	p->n_stk = 0;
	if (p->n_out > p->fin_cap) {
		cap = imap_parse_new_cap(p->fin_cap, 0, p->n_out, sizeof(*n));
		n = cap ? realloc(p->fin, cap * sizeof(*n)) : NULL;
		if (!n)
			return imap_parse_fail(p, "out of memory");
		p->fin = n;
		p->fin_cap = cap;
	}
	for (i = 0; i < p->n_out; i++) {
		const struct rtok *t = &p->out[i];
		struct imap_tok *f = &p->fin[i];

		*f = (struct imap_tok){.type = t->type};
		if (t->type == IMAP_TOK_ATOM || t->type == IMAP_TOK_STRING) {
			f->str = p->data + t->off;
			f->len = t->len;
		} else if (t->type == IMAP_TOK_LIST && t->len) {
			f->items = p->fin + t->first;
			f->n_items = t->len;
		}
	}
	*r = (struct imap_resp){.kind = p->kind, .status = p->status};
	if (p->kind == IMAP_RESP_TAGGED)
		r->tag = p->data + p->tag_off;
	if (p->n_code) {
		r->code = p->fin + p->code_first;
		r->n_code = p->n_code;
	}
	if (p->has_text)
		r->text = p->data + p->text_off;
	if (n_toks) {
		r->toks = p->fin + toks_first;
		r->n_toks = n_toks;
	}
	return 0;
}

/* Feeds bytes to the parser; see imap_parse.h for the contract. */
int imap_parse_feed(struct imap_parser *p, const char *buf, size_t len,
		     size_t *consumed_r, const struct imap_resp **resp_r)
{
	size_t i = 0, n;

	*resp_r = NULL;
	*consumed_r = 0;
	if (p->state == S_ERROR)
		return -1;
	if (p->state == S_DONE)
		imap_parse_reset(p);
	while (i < len) {
		if (p->state == S_LITERAL) {
			n = len - i < p->lit_left ? len - i : p->lit_left;
			memcpy(p->data + p->data_len, buf + i, n);
			p->data_len += n;
			p->lit_left -= n;
			i += n;
			if (p->lit_left == 0 && imap_parse_end_literal(p) < 0)
				goto failed;
			continue;
		}
		if (p->line_used == p->max_line) {
			imap_parse_fail(p,
			     "response longer than %zu bytes outside "
			     "literals",
			     p->max_line);
			goto failed;
		}
		p->line_used++;
		if (imap_parse_step(p, (unsigned char)buf[i]) < 0)
			goto failed;
		i++;
		if (p->state == S_DONE) {
			if (imap_parse_finish(p) < 0)
				goto failed;
			*consumed_r = i;
			*resp_r = &p->resp;
			return 1;
		}
	}
	*consumed_r = len;
	return 0;
failed:
	*consumed_r = i;
	return -1;
}

/* Why the last feed failed. */
const char *imap_parse_error(const struct imap_parser *p)
{
	return p->err;
}

/* Case-insensitive comparison of an atom with a keyword. */
bool imap_parse_tok_is(const struct imap_tok *tok, const char *s)
{
	size_t n = strlen(s);

	return tok && tok->type == IMAP_TOK_ATOM && tok->len == n &&
	       imap_parse_caseeq(tok->str, s, n);
}

/* Parses an atom of decimal digits, refusing overflow. */
bool imap_parse_tok_u64(const struct imap_tok *tok, uint64_t *n_r)
{
	uint64_t n = 0;
	unsigned int d;
	size_t i;

	if (!tok || tok->type != IMAP_TOK_ATOM || tok->len == 0)
		return false;
	for (i = 0; i < tok->len; i++) {
		if (tok->str[i] < '0' || tok->str[i] > '9')
			return false;
		d = tok->str[i] - '0';
		if (n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*n_r = n;
	return true;
}

/* Like imap_parse_tok_u64(), limited to 32 bits (UIDs, sequence numbers). */
bool imap_parse_tok_u32(const struct imap_tok *tok, uint32_t *n_r)
{
	uint64_t n;

	if (!imap_parse_tok_u64(tok, &n) || n > UINT32_MAX)
		return false;
	*n_r = (uint32_t)n;
	return true;
}

/* The bytes of an atom or a string; NULL for NIL and lists. */
const char *imap_parse_tok_str(const struct imap_tok *tok, size_t *len_r)
{
	if (!tok ||
	    (tok->type != IMAP_TOK_ATOM && tok->type != IMAP_TOK_STRING)) {
		if (len_r)
			*len_r = 0;
		return NULL;
	}
	if (len_r)
		*len_r = tok->len;
	return tok->str;
}

/* Reads one UID (1 to 2^32-1) at str[*pos]; false if there is none. */
static bool imap_parse_uid_at(const char *str, size_t len, size_t *pos,
			      uint32_t *uid_r)
{
	uint64_t n = 0;
	size_t start = *pos;

	while (*pos < len && str[*pos] >= '0' && str[*pos] <= '9') {
		n = n * 10 + (uint64_t)(str[*pos] - '0');
		if (n > UINT32_MAX)
			return false;
		(*pos)++;
	}
	if (*pos == start || n == 0)
		return false;
	*uid_r = (uint32_t)n;
	return true;
}

bool imap_parse_uid_set(const char *str, size_t len, size_t max,
			void (*cb)(void *ctx, uint32_t lo, uint32_t hi),
			void *ctx)
{
	size_t pos = 0, n = 0;
	uint32_t lo, hi;

	if (!str || len == 0)
		return false;
	for (;;) {
		if (!imap_parse_uid_at(str, len, &pos, &lo))
			return false;
		hi = lo;
		if (pos < len && str[pos] == ':') {
			pos++;
			if (!imap_parse_uid_at(str, len, &pos, &hi))
				return false;
		}
		if (n++ == max)
			return false;
		cb(ctx, lo <= hi ? lo : hi, lo <= hi ? hi : lo);
		if (pos == len)
			return true;
		if (str[pos++] != ',')
			return false;
	}
}
