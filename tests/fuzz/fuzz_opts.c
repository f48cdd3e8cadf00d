// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_opts: the URL parser (opts_parse_url) and the size parser
 * (opts_parse_size) on the input as one string. A URL that parses must
 * give a user, a host of the allowed characters and a port of 1 to
 * 65535; one that does not must say why. A size that parses must parse
 * again, written as plain digits, to the same value.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"
#include "prefetch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the run, naming the property that failed and the input. */
#define FUZZ_OPTS_CHECK(cond, s)                                             \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_opts: %s:%d: %s for \"%s\"\n", \
				__FILE__, __LINE__, #cond, (s));             \
			abort();                                             \
		}                                                            \
	} while (0)

/* Checks what a parsed URL promises (see struct opts_url). */
static void fuzz_opts_url(const char *s)
{
	struct opts_url u = {0};
	char err[512];
	const char *p;
	unsigned long port;

	err[0] = '\0';
	if (opts_parse_url(s, &u, err, sizeof(err)) < 0) {
		FUZZ_OPTS_CHECK(err[0] != '\0', s);
		FUZZ_OPTS_CHECK(!u.user && !u.host && !u.port, s);
		return;
	}
	FUZZ_OPTS_CHECK(u.user && u.host && u.port, s);
	FUZZ_OPTS_CHECK(u.host[0] != '\0', s);
	for (p = u.host; *p; p++)
		FUZZ_OPTS_CHECK(
			isalnum((unsigned char)*p) || strchr(".-:_", *p), s);
	for (p = u.user; *p; p++)
		FUZZ_OPTS_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f, s);
	FUZZ_OPTS_CHECK(
		u.port[0] && strspn(u.port, "0123456789") == strlen(u.port), s);
	port = strtoul(u.port, NULL, 10);
	FUZZ_OPTS_CHECK(port >= 1 && port <= 65535, s);
	FUZZ_OPTS_CHECK(
		u.proto == OPTS_PROTO_IMAP || u.proto == OPTS_PROTO_POP3, s);
	opts_url_free(&u);
}

/* A size that parses is a fixed point of printing and parsing. */
static void fuzz_opts_size(const char *s)
{
	uint64_t v = 0, again = 0;
	char buf[32];

	if (!opts_parse_size(s, &v))
		return;
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	FUZZ_OPTS_CHECK(opts_parse_size(buf, &again) && again == v, s);
	if (strspn(s, "0123456789") == strlen(s))
		FUZZ_OPTS_CHECK(v == strtoull(s, NULL, 10), s);
}

/* A -o prefetch= value that parses gives non-empty names which, with
 * ':', ',' and '%' escaped again and joined by ':', parse back to the
 * same names. */
static void fuzz_opts_prefetch(const char *s)
{
	char **v = NULL, **w = NULL, *joined, *o;
	size_t i, len = 1;
	bool all = false;

	if (prefetch_parse(s, &v, &all) < 0) {
		FUZZ_OPTS_CHECK(!v, s);
		return;
	}
	FUZZ_OPTS_CHECK(all == !v, s);
	if (all)
		return;
	for (i = 0; v[i]; i++)
		len += 3 * strlen(v[i]) + 1;
	joined = o = malloc(len);
	FUZZ_OPTS_CHECK(joined != NULL, s);
	for (i = 0; v[i]; i++) {
		const char *p;

		FUZZ_OPTS_CHECK(v[i][0] != '\0', s);
		if (i)
			*o++ = ':';
		for (p = v[i]; *p; p++) {
			if (strchr(":,%", *p))
				o += sprintf(o, "%%%02X", (unsigned char)*p);
			else
				*o++ = *p;
		}
	}
	*o = '\0';
	if (strcmp(joined, "all") != 0) {
		FUZZ_OPTS_CHECK(prefetch_parse(joined, &w, &all) == 0 && w, s);
		for (i = 0; v[i]; i++)
			FUZZ_OPTS_CHECK(w[i] && strcmp(v[i], w[i]) == 0, s);
		FUZZ_OPTS_CHECK(!w[i], s);
	}
	prefetch_free_names(w);
	prefetch_free_names(v);
	free(joined);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = strndup((const char *)data, size);

	if (!s)
		return 0;
	fuzz_opts_url(s);
	fuzz_opts_size(s);
	fuzz_opts_prefetch(s);
	(void)opts_known_key(s);
	free(s);
	return 0;
}
