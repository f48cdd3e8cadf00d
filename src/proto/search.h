/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * search: a pure parser of IMAP search programs (RFC 3501 / 9051 search
 * keys) as a user types them in one path component (`.search/QUERY`),
 * and their re-emission for the wire. No I/O.
 *
 * The component is UTF-8 with "%2F" and "%25" decoded (a path component
 * cannot hold '/'); other '%' sequences stay as they are. Tokens are
 * separated by spaces or tabs; '(' and ')' stand alone; a "quoted"
 * token takes \" and \\. Keys are matched without regard to case.
 *
 * Nothing the user typed goes to the server verbatim: keys are sent as
 * this module spells them, numbers, dates and sets as it re-prints them
 * from their parsed values, keywords only when they are plain IMAP atoms,
 * and every string argument as a quoted string (printable ASCII) or a
 * literal (anything else: CR, LF, 8-bit bytes), so that no query can
 * end the command early or start a second one.
 */
#ifndef MAILFS_SEARCH_H
#define MAILFS_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* Bounds of one query: its bytes, its keys, its nesting, one string
 * argument, and the numbers of one sequence set. */
#define SEARCH_MAX_QUERY 4096
#define SEARCH_MAX_KEYS 256
#define SEARCH_MAX_DEPTH 32
#define SEARCH_MAX_STRING 1024
#define SEARCH_MAX_SET 1000

enum search_kind {
	SEARCH_PLAIN, /* a key without argument: ALL, SEEN, ... */
	SEARCH_STRING, /* FROM x, BODY x, ...: one string */
	SEARCH_HEADER, /* HEADER field value: two strings */
	SEARCH_KEYWORD, /* KEYWORD / UNKEYWORD atom */
	SEARCH_DATE, /* BEFORE d-Mon-yyyy, ... */
	SEARCH_NUMBER, /* LARGER n, SMALLER n */
	SEARCH_SET, /* a message sequence set, or UID set */
	SEARCH_NOT, /* NOT key: one sub-key */
	SEARCH_OR, /* OR key key: two sub-keys */
	SEARCH_LIST, /* ( key ... ): one or more sub-keys */
};

struct search_key {
	enum search_kind kind;
	const char *name; /* borrowed, static: the key as sent, "FROM";
			     NULL for a bare sequence set and a list */
	char *arg[2]; /* owned: strings, keyword, or the set as
			     re-printed; NULL when unused */
	size_t arg_len[2];
	int day, mon, year; /* SEARCH_DATE: mon 1..12 */
	uint32_t number; /* SEARCH_NUMBER */
	struct search_key *sub; /* owned: NOT, OR, LIST sub-keys */
	size_t n_sub;
};

/* A parsed query: its keys, all of which must match. */
struct search_query {
	struct search_key *keys; /* owned */
	size_t n;
	bool utf8; /* a string argument is not ASCII: CHARSET UTF-8 */
};

/*
 * Parses one path component into *q_r (owned by the caller,
 * search_free()). Returns 0, or -EINVAL with a one-line reason in err
 * (for the log), or -ENOMEM.
 */
int search_parse(const char *component, struct search_query **q_r, char *err,
		 size_t errlen);
void search_free(struct search_query *q);

/* One piece of the wire form: text sent as it is, or the bytes of a
 * string sent as a literal. off indexes search_wire.buf. */
struct search_part {
	size_t off, len;
	bool literal;
};

/* The search program as it goes after "UID SEARCH [RETURN (...)] ":
 * "CHARSET UTF-8 " first when the query needs it. */
struct search_wire {
	struct strbuf text; /* owned: every part's bytes, one after another */
	struct search_part *parts; /* owned */
	size_t n, n_cap;
	bool failed; /* out of memory */
};

/* Builds the wire form of q into *w (zeroed first; search_wire_free()).
 * Returns 0 or -ENOMEM. */
int search_emit(const struct search_query *q, struct search_wire *w);
void search_wire_free(struct search_wire *w);

/*
 * Writes the wire form as one string into buf (at most size bytes,
 * always terminated) the way a server would receive it with
 * synchronising literals: a literal as "{N}\r\n" followed by its bytes.
 * For tests and the debug trace (where literal bytes are shown as
 * "{N bytes}" when show_literals is false). Returns the length it
 * needed.
 */
size_t search_wire_render(const struct search_wire *w, bool show_literals,
			  char *buf, size_t size);

/*
 * Parses an IMAP sequence set of UIDs as a server sends it ("1:3,7",
 * ranges either way round, no '*'), appending each UID to *uids
 * (growing it, at most max in all; *n counts them). Returns 1 when the
 * set was cut at max, 0 when whole, -1 when malformed or out of memory.
 */
int search_uid_set(const char *set, size_t len, uint32_t **uids, size_t *n,
		   size_t *cap, size_t max);

#endif
