// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_msgdate: the Date: parser (msgdate.h) on the input as a raw
 * message, and on "Date: " + input as a header ended by CRLF and by LF.
 * A time found must lie between 1970 and the end of 9999; the two line
 * ends must give the same answer when the input holds no line break.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgdate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* 10000-01-01T00:00:00Z: no date the parser accepts reaches it. */
#define FUZZ_MSGDATE_END 253402300800ll

/* Stops the run, naming the property that failed. */
#define FUZZ_MSGDATE_CHECK(cond)                                               \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_msgdate: %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

/* Parses len bytes at msg; checks the range of what it finds. */
static bool fuzz_msgdate_parse(const char *msg, size_t len, time_t *t_r)
{
	time_t t = -12345;

	if (!msgdate_parse(msg, len, &t)) {
		FUZZ_MSGDATE_CHECK(t == -12345); /* left alone */
		return false;
	}
	FUZZ_MSGDATE_CHECK(t >= 0 && (long long)t < FUZZ_MSGDATE_END);
	*t_r = t;
	return true;
}

/* "Date: " + the input + eol + a blank line and a body. */
static char *fuzz_msgdate_wrap(const uint8_t *data, size_t size,
			       const char *eol, size_t *len_r)
{
	size_t el = strlen(eol), len = 6 + size + 2 * el + 4;
	char *m = malloc(len);

	if (!m)
		return NULL;
	memcpy(m, "Date: ", 6);
	memcpy(m + 6, data, size);
	memcpy(m + 6 + size, eol, el);
	memcpy(m + 6 + size + el, eol, el);
	memcpy(m + 6 + size + 2 * el, "body", 4);
	*len_r = len;
	return m;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	time_t t1 = 0, t2 = 0;
	char *crlf, *lf;
	size_t n1, n2;
	bool ok1, ok2;

	fuzz_msgdate_parse((const char *)data, size, &t1);
	if (size > 1024)
		return 0;
	crlf = fuzz_msgdate_wrap(data, size, "\r\n", &n1);
	lf = fuzz_msgdate_wrap(data, size, "\n", &n2);
	if (crlf && lf) {
		ok1 = fuzz_msgdate_parse(crlf, n1, &t1);
		ok2 = fuzz_msgdate_parse(lf, n2, &t2);
		if (!memchr(data, '\n', size) && !memchr(data, '\r', size)) {
			FUZZ_MSGDATE_CHECK(ok1 == ok2);
			FUZZ_MSGDATE_CHECK(!ok1 || t1 == t2);
		}
	}
	free(crlf);
	free(lf);
	return 0;
}
