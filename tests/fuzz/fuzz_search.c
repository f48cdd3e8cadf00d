// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_search: the search-program parser (search.h) on the input as a
 * path component (cut at its first NUL, as a path would be). A query
 * accepted must emit a wire form that is one command: text parts of
 * printable ASCII only, with balanced quotes, literal parts of the
 * length announced. Without literals, the wire form must parse again
 * (with '%' and '/' escaped again) and emit itself: the emitter writes
 * only what the parser accepts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "search.h"

/* The wire form as a path component again: '%' and '/' escaped as
 * %25 and %2F, which the parser decodes. malloc'd, or NULL. */
static char *fuzz_search_component(const struct search_wire *w)
{
	size_t len = search_wire_render(w, true, NULL, 0), i, o = 0;
	char *text = malloc(len + 1), *out = malloc(3 * len + 1);

	if (!text || !out) {
		free(text);
		free(out);
		return NULL;
	}
	search_wire_render(w, true, text, len + 1);
	for (i = 0; i < len; i++) {
		if (text[i] == '%' || text[i] == '/') {
			memcpy(out + o, text[i] == '%' ? "%25" : "%2F", 3);
			o += 3;
		} else {
			out[o++] = text[i];
		}
	}
	out[o] = '\0';
	free(text);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the run, naming the property that failed. */
#define FUZZ_SEARCH_CHECK(cond)                                               \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "fuzz_search: %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                             \
			abort();                                              \
		}                                                             \
	} while (0)

/* Checks the text parts: printable ASCII, quotes balanced within the
 * wire form. Returns whether there was a literal. */
static bool fuzz_search_check_wire(const struct search_wire *w)
{
	bool in_quote = false, lit = false;
	size_t i, j, end = 0;

	for (i = 0; i < w->n; i++) {
		const char *t = w->text.data + w->parts[i].off;

		FUZZ_SEARCH_CHECK(w->parts[i].off == end);
		end += w->parts[i].len;
		FUZZ_SEARCH_CHECK(end <= w->text.len);
		if (w->parts[i].literal) {
			FUZZ_SEARCH_CHECK(!in_quote);
			lit = true;
			continue;
		}
		for (j = 0; j < w->parts[i].len; j++) {
			unsigned char c = t[j];

			FUZZ_SEARCH_CHECK(c >= 0x20 && c < 0x7f);
			if (in_quote && c == '\\') {
				j++;
				FUZZ_SEARCH_CHECK(j < w->parts[i].len);
				FUZZ_SEARCH_CHECK(t[j] == '"' || t[j] == '\\');
				continue;
			}
			if (c == '"')
				in_quote = !in_quote;
		}
	}
	FUZZ_SEARCH_CHECK(end == w->text.len);
	FUZZ_SEARCH_CHECK(!in_quote);
	return lit;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct search_query *q, *q2;
	struct search_wire w, w2;
	char err[256], *in, *text;

	in = malloc(size + 1);
	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (search_parse(in, &q, err, sizeof(err)) < 0) {
		FUZZ_SEARCH_CHECK(err[0] != '\0');
		free(in);
		return 0;
	}
	free(in);
	if (search_emit(q, &w) < 0) {
		search_free(q);
		return 0;
	}
	if (!fuzz_search_check_wire(&w) && !q->utf8) {
		text = fuzz_search_component(&w);
		if (text) {
			FUZZ_SEARCH_CHECK(
				search_parse(text, &q2, err, sizeof(err)) == 0);
			FUZZ_SEARCH_CHECK(search_emit(q2, &w2) == 0);
			FUZZ_SEARCH_CHECK(w2.text.len == w.text.len &&
					  memcmp(w2.text.data, w.text.data,
						 w.text.len) == 0);
			search_wire_free(&w2);
			search_free(q2);
			free(text);
		}
	}
	search_wire_free(&w);
	search_free(q);
	return 0;
}
