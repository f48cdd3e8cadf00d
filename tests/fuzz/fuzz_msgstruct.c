// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_msgstruct: server output through the IMAP parser, then every
 * list of every response through msgstruct (as a BODYSTRUCTURE, and as
 * an ENVELOPE made into a .summary line), and the raw input through
 * mime's decoders. Nothing may crash or leak; each part gets a name
 * that is a safe directory entry; what mime promises as UTF-8 must be
 * valid UTF-8.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap_parse.h"
#include "mime.h"
#include "msgstruct.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MSGSTRUCT_CHECK(cond)                                     \
	do {                                                           \
		if (!(cond)) {                                         \
			fprintf(stderr, "fuzz_msgstruct: %s:%d: %s\n", \
				__FILE__, __LINE__, #cond);            \
			abort();                                       \
		}                                                      \
	} while (0)

/* True when s[0..len) is valid UTF-8 (no overlongs, surrogates). */
static bool fuzz_msgstruct_utf8(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n, k;
	uint32_t cp;

	while (i < len) {
		if (u[i] < 0x80) {
			i++;
			continue;
		}
		if (u[i] >= 0xc2 && u[i] <= 0xdf)
			n = 2, cp = u[i] & 0x1f;
		else if (u[i] >= 0xe0 && u[i] <= 0xef)
			n = 3, cp = u[i] & 0x0f;
		else if (u[i] >= 0xf0 && u[i] <= 0xf4)
			n = 4, cp = u[i] & 0x07;
		else
			return false;
		if (len - i < n)
			return false;
		for (k = 1; k < n; k++) {
			if ((u[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (u[i + k] & 0x3f);
		}
		if ((n == 3 &&
		     (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += n;
	}
	return true;
}

/* Checks a parsed structure's invariants. */
static void fuzz_msgstruct_check(const struct msgstruct *ms)
{
	size_t i, j;

	FUZZ_MSGSTRUCT_CHECK(ms->n <= MSGSTRUCT_MAX_PARTS);
	for (i = 0; i < ms->n; i++) {
		const char *n = ms->parts[i].name;

		FUZZ_MSGSTRUCT_CHECK(n && *n && strlen(n) <= MIME_NAME_MAX);
		FUZZ_MSGSTRUCT_CHECK(!strchr(n, '/') && strcmp(n, ".") &&
				     strcmp(n, "..") && strcmp(n, "header"));
		FUZZ_MSGSTRUCT_CHECK(ms->parts[i].size <= MSGSTRUCT_MAX_SIZE);
		for (j = 0; j < i; j++)
			FUZZ_MSGSTRUCT_CHECK(strcmp(n, ms->parts[j].name));
	}
}

/* Every list token under t, as a body and as an envelope. */
static void fuzz_msgstruct_tok(const struct imap_tok *t, unsigned depth)
{
	struct msgstruct_envelope e;
	struct msgstruct *ms = NULL;
	struct strbuf line = {0};
	size_t i;

	if (t->type != IMAP_TOK_LIST || depth > 4)
		return;
	if (msgstruct_parse(t, &ms) == 0) {
		fuzz_msgstruct_check(ms);
		msgstruct_free(ms);
	}
	if (msgstruct_envelope(t, &e)) {
		msgstruct_summary_line(&line, "n", 0, "\\Seen", 1, &e);
		FUZZ_MSGSTRUCT_CHECK(strbuf_failed(&line) ||
				     fuzz_msgstruct_utf8(line.data, line.len));
		strbuf_free(&line);
	}
	for (i = 0; i < t->n_items; i++)
		fuzz_msgstruct_tok(&t->items[i], depth + 1);
}

/* The raw input through mime's decoders. */
static void fuzz_msgstruct_mime(const char *s, size_t size)
{
	static const char *const charsets[] = {"utf-8",	      "iso-8859-1",
					       "shift_jis",   "utf-16",
					       "iso-2022-jp", "x-none"};
	struct strbuf b = {0};
	struct mime_param p[3];
	char *str = strndup(s, size), *v;

	if (!str)
		return;
	mime_qp_decode(&b, s, size);
	mime_b64_decode(&b, s, size);
	strbuf_reset(&b);
	mime_decode_words(&b, s, size);
	FUZZ_MSGSTRUCT_CHECK(strbuf_failed(&b) ||
			     fuzz_msgstruct_utf8(b.data, b.len));
	strbuf_reset(&b);
	mime_to_utf8(&b, charsets[size % 6], s, size, size & 1);
	FUZZ_MSGSTRUCT_CHECK(strbuf_failed(&b) ||
			     fuzz_msgstruct_utf8(b.data, b.len));
	strbuf_reset(&b);
	p[0].name = "name*0*";
	p[0].value = str;
	p[1].name = "name*1";
	p[1].value = str + strlen(str) / 2;
	p[2].name = "name";
	p[2].value = str;
	v = mime_param(p, 3 - size % 2, size % 3 ? "name" : "other");
	if (v) {
		mime_safe_name(&b, v);
		FUZZ_MSGSTRUCT_CHECK(b.len <= MIME_NAME_MAX);
		free(v);
	}
	strbuf_free(&b);
	free(str);
}

/* One input: mime on the bytes, msgstruct on what the parser makes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser *p = imap_parse_new(1u << 20, 1u << 20);
	const char *buf = (const char *)data;
	const struct imap_resp *r;
	size_t used, i;

	fuzz_msgstruct_mime(buf, size);
	if (!p)
		return 0;
	while (size > 0 && imap_parse_feed(p, buf, size, &used, &r) == 1) {
		for (i = 0; i < r->n_toks; i++)
			fuzz_msgstruct_tok(&r->toks[i], 0);
		buf += used;
		size -= used;
	}
	imap_parse_free(p);
	return 0;
}
