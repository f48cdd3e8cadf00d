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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = strndup((const char *)data, size);

	if (!s)
		return 0;
	fuzz_opts_url(s);
	fuzz_opts_size(s);
	(void)opts_known_key(s);
	free(s);
	return 0;
}
