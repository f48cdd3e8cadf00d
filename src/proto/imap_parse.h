/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * imap_parse: a pure IMAP response parser. No I/O: bytes go in through
 * imap_parse_feed(), complete responses come out. It accepts input split
 * anywhere (inside a literal, between CR and LF, in the middle of a
 * literal's size) and bounds every size it is given.
 *
 * Grammar handled (RFC 3501 / 9051 server responses):
 *   "+ " text                              continuation request
 *   "* " / tag, then either
 *     OK | NO | BAD | BYE | PREAUTH ["[" code "]"] text   status response
 *     or any sequence of tokens              data response
 * Tokens: atom (may contain "[...]" with spaces after BODY, BINARY and
 * BINARY.SIZE, as in BODY[HEADER.FIELDS (A B)]<0>, and "\Flag"), number
 * (an atom of digits), "quoted" (with \" and \\),
 * {N} literal, ~{N} literal8, NIL, and (parenthesised lists), nested.
 *
 * Details of what is accepted:
 *  - A line ends at CRLF or at a bare LF. A CR not followed by LF, a NUL
 *    outside a literal, and CR or LF inside a quoted string are errors.
 *  - An atom runs up to SP, '(', ')', CR or LF; inside the "[...]" of a
 *    section (the '[' right after BODY, BINARY or BINARY.SIZE, any case)
 *    SP, '(' and ')' are part of it; any other '[' is a plain byte of the
 *    atom ("x[a \Recent" is two atoms). A ']' with no section open is part
 *    of the atom too (mailbox names), except inside a response code,
 *    where it ends the atom and the code. An atom that is "NIL" in any
 *    case is a NIL token ("NILS" stays an atom).
 *  - {N}, {N+} and ~{N} must be at the start of a token and at the end
 *    of a line; the response continues after the N bytes of the literal.
 *  - Runs of spaces between tokens and trailing spaces are accepted.
 *  - The text of a status or continuation response is not tokenised:
 *    "* OK done {5}" is text, not a literal.
 *  - A tagged response must be OK, NO or BAD. The tag is 1*<ASTRING-CHAR
 *    except "+">, and must be followed by a single SP.
 */
#ifndef MAILFS_IMAP_PARSE_H
#define MAILFS_IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum imap_tok_type {
	IMAP_TOK_ATOM, /* includes numbers and \Flags */
	IMAP_TOK_STRING, /* quoted, literal or literal8 */
	IMAP_TOK_NIL,
	IMAP_TOK_LIST,
};

/* Lists nested deeper than this are refused. */
#define IMAP_PARSER_MAX_DEPTH 64
/* Most tokens (atoms, strings, NILs, lists) in one response. */
#define IMAP_PARSER_MAX_TOKENS 200000

struct imap_tok {
	enum imap_tok_type type;
	/* ATOM, STRING: the bytes, NUL terminated; a literal may hold NULs,
	 * so use len. Borrowed from the response. NULL (len 0) for NIL and
	 * LIST. */
	const char *str;
	size_t len;
	/* LIST: its items. Borrowed from the response. NULL when n_items
	 * is 0 and for the other types. */
	const struct imap_tok *items;
	size_t n_items;
};

enum imap_resp_kind {
	IMAP_RESP_CONTINUE, /* "+ ..." */
	IMAP_RESP_UNTAGGED, /* "* ..." */
	IMAP_RESP_TAGGED,
};

enum imap_status {
	IMAP_STATUS_NONE, /* a data response, not a status response */
	IMAP_STATUS_OK,
	IMAP_STATUS_NO,
	IMAP_STATUS_BAD,
	IMAP_STATUS_BYE,
	IMAP_STATUS_PREAUTH,
};

struct imap_resp {
	enum imap_resp_kind kind;
	const char *tag; /* TAGGED only, else NULL */
	enum imap_status status;
	/* Status responses: the response code, tokenised ("[COPYUID 3 1:2
	 * 7:8]" gives the atoms COPYUID, 3, 1:2, 7:8), and the human text.
	 * CONTINUE: text holds what follows "+ ". code is NULL when there is
	 * no code (n_code 0). text is "" when empty, NULL for data
	 * responses. */
	const struct imap_tok *code;
	size_t n_code;
	const char *text;
	/* Data responses: every token after the "*" (e.g. "12", "FETCH",
	 * (list)), or "LIST", (list), "/", "INBOX". NULL (n_toks 0) for
	 * status and continuation responses. */
	const struct imap_tok *toks;
	size_t n_toks;
};

struct imap_parser;

/*
 * max_line bounds the text of one response outside literals (all its
 * lines together, counting line ends and the {N} markers); max_literal
 * bounds each literal, and a larger {N} is refused as soon as its '}'
 * arrives; all literals of one response together may not exceed
 * max_line + max_literal bytes either.
 * Returns NULL only when out of memory.
 */
struct imap_parser *imap_parse_new(size_t max_line, size_t max_literal);
void imap_parse_free(struct imap_parser *p);

/*
 * Feeds len bytes of server output.
 *
 * Returns 1 when a complete response was parsed: *resp_r points to it
 * (owned by the parser, valid until the next call of feed or free) and
 * *consumed_r says how many bytes of buf were used; feed the rest
 * again. Returns 0 when all of buf was consumed and no response is
 * complete yet (*consumed_r == len). Returns -1 on malformed input or an
 * exceeded bound; imap_parse_error() then says why, and the parser
 * must not be fed again (the connection is out of sync).
 */
/*
 * On -1, *consumed_r is the offset in buf of the byte that was refused
 * and *resp_r is NULL; running out of memory also gives -1.
 */
int imap_parse_feed(struct imap_parser *p, const char *buf, size_t len,
		     size_t *consumed_r, const struct imap_resp **resp_r);

/* Why the last feed returned -1 (a static or parser-owned string). */
const char *imap_parse_error(const struct imap_parser *p);

/* True when tok is an atom equal to s, ignoring ASCII case (a NIL
 * token is not an atom). */
bool imap_parse_tok_is(const struct imap_tok *tok, const char *s);

/* Parses an atom of decimal digits into *n_r. Fails (false) on anything
 * else, on an empty atom and on overflow. */
bool imap_parse_tok_u32(const struct imap_tok *tok, uint32_t *n_r);
bool imap_parse_tok_u64(const struct imap_tok *tok, uint64_t *n_r);

/* The bytes of an atom or string, NULL for NIL or a list (then *len_r
 * is 0). len_r may be NULL. */
const char *imap_parse_tok_str(const struct imap_tok *tok, size_t *len_r);

/*
 * Parses a set of UIDs such as "1:3,7,12:9" (RFC 3501 sequence-set
 * without "*", as VANISHED, ESEARCH and COPYUID send them), calling
 * cb(ctx, lo, hi) for each range with lo <= hi (a reversed range is
 * turned round). Stops after max ranges. Returns false on anything
 * malformed (a zero, "*", an empty element, overflow, too many
 * ranges), after cb saw the ranges before it.
 */
bool imap_parse_uid_set(const char *str, size_t len, size_t max,
			void (*cb)(void *ctx, uint32_t lo, uint32_t hi),
			void *ctx);

#endif
