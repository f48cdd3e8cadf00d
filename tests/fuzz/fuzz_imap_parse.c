// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_imap_parse: the IMAP response parser (imap_parse.h) fed the input
 * whole, then again cut into chunks at positions derived from the input.
 * The contract says input may be cut anywhere, so both runs must give
 * the same responses (compared as a canonical dump of their tokens), the
 * same outcome (an error at the same byte with the same message, or
 * none) and end in the same state. A difference, or a response that
 * breaks the invariants of struct imap_tok, aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_parse.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the run with a message: libFuzzer then keeps the input. */
#define FUZZ_IMAP_PARSE_CHECK(cond)                                     \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "fuzz_imap_parse: %s:%d: %s\n", \
				__FILE__, __LINE__, #cond);             \
			abort();                                        \
		}                                                       \
	} while (0)

/* A deterministic generator of chunk sizes, seeded from the input. */
struct fuzz_imap_parse_rng {
	uint64_t state;
};

/* FNV-1a of the input: the seed of the cuts and of the parser's bounds,
 * so that one input always runs the same way. */
static uint64_t fuzz_imap_parse_hash(const uint8_t *data, size_t size)
{
	uint64_t h = 14695981039346656037ull;
	size_t i;

	for (i = 0; i < size; i++) {
		h ^= data[i];
		h *= 1099511628211ull;
	}
	return h;
}

/* The next number of the xorshift64 generator. */
static uint64_t fuzz_imap_parse_next(struct fuzz_imap_parse_rng *r)
{
	uint64_t x = r->state ? r->state : 0x9e3779b97f4a7c15ull;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	r->state = x;
	return x;
}

/* Appends bytes with everything but printable ASCII as \xNN, so that
 * the dump shows NULs inside literals too. */
static void fuzz_imap_parse_bytes(struct strbuf *b, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			strbuf_printf(b, "\\x%02x", c);
		else
			strbuf_append(b, &s[i], 1);
	}
}

/* Appends one token and checks what struct imap_tok promises: bytes
 * NUL terminated, non-empty atoms, items only for non-empty lists. */
static void fuzz_imap_parse_tok(struct strbuf *b, const struct imap_tok *t,
				unsigned depth)
{
	size_t i;

	FUZZ_IMAP_PARSE_CHECK(depth <= IMAP_PARSER_MAX_DEPTH + 1);
	switch (t->type) {
	case IMAP_TOK_ATOM:
	case IMAP_TOK_STRING:
		FUZZ_IMAP_PARSE_CHECK(t->str != NULL);
		FUZZ_IMAP_PARSE_CHECK(t->str[t->len] == '\0');
		FUZZ_IMAP_PARSE_CHECK(t->type == IMAP_TOK_STRING || t->len > 0);
		FUZZ_IMAP_PARSE_CHECK(t->items == NULL && t->n_items == 0);
		strbuf_puts(b, t->type == IMAP_TOK_ATOM ? "a\"" : "s\"");
		fuzz_imap_parse_bytes(b, t->str, t->len);
		strbuf_puts(b, "\"");
		break;
	case IMAP_TOK_NIL:
		FUZZ_IMAP_PARSE_CHECK(t->str == NULL && t->len == 0);
		FUZZ_IMAP_PARSE_CHECK(t->items == NULL && t->n_items == 0);
		strbuf_puts(b, "NIL");
		break;
	case IMAP_TOK_LIST:
		FUZZ_IMAP_PARSE_CHECK(t->str == NULL);
		FUZZ_IMAP_PARSE_CHECK((t->n_items == 0) == (t->items == NULL));
		strbuf_puts(b, "(");
		for (i = 0; i < t->n_items; i++) {
			if (i)
				strbuf_puts(b, " ");
			fuzz_imap_parse_tok(b, &t->items[i], depth + 1);
		}
		strbuf_puts(b, ")");
		break;
	default:
		FUZZ_IMAP_PARSE_CHECK(!"unknown token type");
	}
}

/* Appends one response as a line, checking which fields its kind may
 * set (see struct imap_resp). */
static void fuzz_imap_parse_resp(struct strbuf *b, const struct imap_resp *r)
{
	size_t i;

	FUZZ_IMAP_PARSE_CHECK((r->n_code == 0) == (r->code == NULL));
	FUZZ_IMAP_PARSE_CHECK((r->n_toks == 0) == (r->toks == NULL));
	FUZZ_IMAP_PARSE_CHECK((r->kind == IMAP_RESP_TAGGED) ==
			      (r->tag != NULL));
	if (r->kind == IMAP_RESP_TAGGED)
		FUZZ_IMAP_PARSE_CHECK(r->status == IMAP_STATUS_OK ||
				      r->status == IMAP_STATUS_NO ||
				      r->status == IMAP_STATUS_BAD);
	if (r->status != IMAP_STATUS_NONE || r->kind == IMAP_RESP_CONTINUE) {
		FUZZ_IMAP_PARSE_CHECK(r->text != NULL && r->n_toks == 0);
	} else {
		FUZZ_IMAP_PARSE_CHECK(r->text == NULL && r->n_code == 0);
		FUZZ_IMAP_PARSE_CHECK(r->n_toks > 0);
	}
	strbuf_printf(b, "kind=%d status=%d tag=", (int)r->kind,
		      (int)r->status);
	if (r->tag)
		fuzz_imap_parse_bytes(b, r->tag, strlen(r->tag));
	strbuf_puts(b, " code=[");
	for (i = 0; i < r->n_code; i++) {
		strbuf_puts(b, " ");
		fuzz_imap_parse_tok(b, &r->code[i], 0);
	}
	strbuf_puts(b, " ] toks=");
	for (i = 0; i < r->n_toks; i++) {
		strbuf_puts(b, " ");
		fuzz_imap_parse_tok(b, &r->toks[i], 0);
	}
	if (r->text) {
		strbuf_puts(b, " text=");
		fuzz_imap_parse_bytes(b, r->text, strlen(r->text));
	}
	strbuf_puts(b, "\n");
}

/*
 * Feeds one chunk, starting at offset base of the input, handing each
 * complete response to the dump. Returns false once the parser failed;
 * the dump then ends with where and why.
 */
static bool fuzz_imap_parse_feed(struct imap_parser *p, struct strbuf *dump,
				 const char *buf, size_t len, size_t base)
{
	const struct imap_resp *r;
	size_t used, pos = 0;
	int rc;

	while (pos < len) {
		rc = imap_parse_feed(p, buf + pos, len - pos, &used, &r);
		FUZZ_IMAP_PARSE_CHECK(used <= len - pos);
		if (rc < 0) {
			FUZZ_IMAP_PARSE_CHECK(r == NULL);
			strbuf_printf(dump, "error at %zu: %s\n",
				      base + pos + used, imap_parse_error(p));
			return false;
		}
		if (rc == 0) {
			FUZZ_IMAP_PARSE_CHECK(used == len - pos && r == NULL);
			return true;
		}
		FUZZ_IMAP_PARSE_CHECK(rc == 1 && r != NULL && used > 0);
		fuzz_imap_parse_resp(dump, r);
		pos += used;
	}
	return true;
}

/* Ends a run: the state the input left is part of the outcome too, seen
 * through the parser's answer to the same bytes after it (which end a
 * literal of up to ten bytes still to come, a list and a line). */
static void fuzz_imap_parse_end(struct imap_parser *p, struct strbuf *dump,
				bool ok, size_t size)
{
	static const char tail[] = "0123456789)\r\n* OK end\r\n";

	if (ok) {
		strbuf_puts(dump, "end\n");
		fuzz_imap_parse_feed(p, dump, tail, sizeof(tail) - 1, size);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t lines[] = {64, 1024, 64 * 1024};
	static const size_t literals[] = {16, 4096, 1024 * 1024};
	static const size_t maxcut[] = {1, 3, 16, 256, 65536};
	const char *in = (const char *)data;
	struct strbuf whole = {0}, cut = {0};
	struct fuzz_imap_parse_rng rng = {fuzz_imap_parse_hash(data, size)};
	size_t max_line, max_lit, most, pos = 0, n;
	struct imap_parser *p;
	bool ok;

	max_line = lines[fuzz_imap_parse_next(&rng) % 3];
	max_lit = literals[fuzz_imap_parse_next(&rng) % 3];
	most = maxcut[fuzz_imap_parse_next(&rng) % 5];

	p = imap_parse_new(max_line, max_lit);
	FUZZ_IMAP_PARSE_CHECK(p != NULL);
	ok = fuzz_imap_parse_feed(p, &whole, in, size, 0);
	fuzz_imap_parse_end(p, &whole, ok, size);
	imap_parse_free(p);

	p = imap_parse_new(max_line, max_lit);
	FUZZ_IMAP_PARSE_CHECK(p != NULL);
	ok = true;
	while (ok && pos < size) {
		n = 1 + fuzz_imap_parse_next(&rng) % most;
		if (n > size - pos)
			n = size - pos;
		ok = fuzz_imap_parse_feed(p, &cut, in + pos, n, pos);
		pos += n;
	}
	fuzz_imap_parse_end(p, &cut, ok, size);
	imap_parse_free(p);

	FUZZ_IMAP_PARSE_CHECK(!strbuf_failed(&whole) && !strbuf_failed(&cut));
	if (strcmp(strbuf_str(&whole), strbuf_str(&cut)) != 0) {
		fprintf(stderr,
			"fuzz_imap_parse: whole and cut (at most %zu bytes a "
			"feed) differ\n--- whole:\n%s--- cut:\n%s",
			most, strbuf_str(&whole), strbuf_str(&cut));
		abort();
	}
	strbuf_free(&whole);
	strbuf_free(&cut);
	return 0;
}
