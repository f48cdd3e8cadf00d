// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_names: the name mappings of names.h and the inverse properties
 * that header documents, checked on every input:
 *  - modified UTF-7: decode and encode are exact inverses both ways;
 *  - an escaped component holds no '/', no control character and is
 *    never "." or "..";
 *  - names_from_path(names_to_path(m)) == m for a name whose every
 *    component is valid modified UTF-7 and non-empty (plain delimiters);
 *    for any path, names_from_path() of its names_to_path() is stable;
 *  - UIDL file names: one to one both ways, at most 210 bytes, only
 *    [a-z0-9_%-] and upper-case hex digits;
 *  - names_message() and names_msgid_hash() never fail on any value.
 * The first byte picks the delimiter; the rest is the string (up to a
 * NUL) and, whole, the header given to names_msgid_hash().
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the run, naming the property that failed and the string. */
#define FUZZ_NAMES_CHECK(cond, s)                                             \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "fuzz_names: %s:%d: %s for \"%s\"\n", \
				__FILE__, __LINE__, #cond, (s));              \
			abort();                                              \
		}                                                             \
	} while (0)

/* True when a and b are both NULL or equal strings. */
static bool fuzz_names_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Modified UTF-7 both ways: whatever decodes encodes back to itself;
 * whatever encodes (valid UTF-8) decodes back, in printable ASCII. */
static void fuzz_names_mutf7(const char *s)
{
	char *dec = names_mutf7_decode(s), *enc, *back;
	const char *p;

	if (dec) {
		enc = names_mutf7_encode(dec);
		FUZZ_NAMES_CHECK(fuzz_names_same(enc, s), s);
		free(enc);
	}
	free(dec);
	enc = names_mutf7_encode(s);
	if (enc) {
		for (p = enc; *p; p++)
			FUZZ_NAMES_CHECK(*p >= 0x20 && *p <= 0x7e, s);
		back = names_mutf7_decode(enc);
		FUZZ_NAMES_CHECK(fuzz_names_same(back, s), s);
		free(back);
	}
	free(enc);
}

/* %XX escaping of one component: safe to show. */
static void fuzz_names_escape(const char *s)
{
	char *esc = names_escape(s);
	const char *p;

	FUZZ_NAMES_CHECK(esc != NULL, s);
	FUZZ_NAMES_CHECK(strcmp(esc, ".") != 0 && strcmp(esc, "..") != 0, s);
	for (p = esc; *p; p++)
		FUZZ_NAMES_CHECK(*p != '/' && (unsigned char)*p >= 0x20 &&
					 *p != 0x7f,
				 s);
	free(esc);
}

/* True when every delim-separated component of name is non-empty and
 * valid modified UTF-7: then the name has a path that maps back to it.
 * Only for delimiters that cannot occur inside a base64 run. */
static bool fuzz_names_clean(const char *name, char delim)
{
	const char *p = name, *end;
	bool ok = true;
	char *part, *dec;

	for (;;) {
		end = delim ? strchr(p, delim) : NULL;
		if (!end)
			end = p + strlen(p);
		if (end == p)
			return false;
		part = strndup(p, (size_t)(end - p));
		dec = part ? names_mutf7_decode(part) : NULL;
		ok = dec != NULL;
		free(dec);
		free(part);
		if (!ok || !*end)
			return ok;
		p = end + 1;
	}
}

/* True when a path has a level that names_to_path() may have cut (it
 * keeps levels to NAMES_MAX_COMPONENT bytes, ending a cut one in "~" and
 * a hash): such a path does not lead back to its server name. */
static bool fuzz_names_cut(const char *path)
{
	size_t n = 0;

	for (; *path; path++) {
		n = *path == '/' ? 0 : n + 1;
		if (n >= NAMES_MAX_COMPONENT - 9)
			return true;
	}
	return false;
}

/* Mailbox name to path and back; then the same from the other side. */
static void fuzz_names_paths(const char *s, char delim)
{
	char *path = names_to_path(s, delim), *back, *again, *path2;
	bool plain = delim == '/' || delim == '.' || delim == '\0';

	FUZZ_NAMES_CHECK(path != NULL, s);
	back = names_from_path(path, delim);
	if (plain && fuzz_names_clean(s, delim) && !fuzz_names_cut(path))
		FUZZ_NAMES_CHECK(fuzz_names_same(back, s), s);
	free(back);
	free(path);

	/* A path the user typed: its server name, if any, is a fixed
	 * point of the round trip. */
	back = names_from_path(s, delim);
	if (back) {
		path2 = names_to_path(back, delim);
		FUZZ_NAMES_CHECK(path2 != NULL, s);
		again = names_from_path(path2, delim);
		if (!fuzz_names_cut(path2))
			FUZZ_NAMES_CHECK(fuzz_names_same(again, back), s);
		free(again);
		free(path2);
	}
	free(back);
}

/* UIDLs and their file names map one to one. */
static void fuzz_names_uidl(const char *s)
{
	char *file = names_uidl_to_file(s), *back;
	const char *p;

	if (file) {
		FUZZ_NAMES_CHECK(strlen(file) <= 210, s);
		for (p = file; *p; p++)
			FUZZ_NAMES_CHECK(strchr("abcdefghijklmnopqrstuvwxyz"
						"0123456789_-%ABCDEF",
						*p) != NULL,
					 s);
		back = names_file_to_uidl(file);
		FUZZ_NAMES_CHECK(fuzz_names_same(back, s), s);
		free(back);
	}
	free(file);
	back = names_file_to_uidl(s);
	if (back) {
		FUZZ_NAMES_CHECK(strlen(back) <= 70, s);
		file = names_uidl_to_file(back);
		FUZZ_NAMES_CHECK(fuzz_names_same(file, s), s);
		free(file);
	}
	free(back);
}

/* A message name from values taken from the input: bounded, and only
 * [0-9A-Za-z.-], whatever the date and size. */
static void fuzz_names_message(const uint8_t *data, size_t size)
{
	char buf[NAMES_MESSAGE_MAX + 16];
	uint8_t raw[8 + 8 + 4 + 4] = {0};
	int64_t date;
	uint64_t msize;
	uint32_t hash, n;
	size_t len;

	memcpy(raw, data, size < sizeof(raw) ? size : sizeof(raw));
	memcpy(&date, raw, 8);
	memcpy(&msize, raw + 8, 8);
	memcpy(&hash, raw + 16, 4);
	memcpy(&n, raw + 20, 4);
	memset(buf, 'x', sizeof(buf));
	names_message(buf, (time_t)date, msize, hash, n);
	len = strnlen(buf, NAMES_MESSAGE_MAX);
	FUZZ_NAMES_CHECK(len < NAMES_MESSAGE_MAX, "(names_message)");
	FUZZ_NAMES_CHECK(strspn(buf, "0123456789abcdefghijklmnopqrstuvwxyz"
				     "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-") == len,
			 buf);
	FUZZ_NAMES_CHECK(len > 4 && strcmp(buf + len - 4, ".eml") == 0, buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = {'/', '.', '\0', '\\', ',',
				      '&', '-', 'A',  '+',  (char)0xe9};
	char delim;
	char *s;

	if (size == 0)
		return 0;
	delim = delims[data[0] % sizeof(delims)];
	s = strndup((const char *)data + 1, size - 1);
	if (!s)
		return 0;
	fuzz_names_mutf7(s);
	fuzz_names_escape(s);
	fuzz_names_paths(s, delim);
	fuzz_names_uidl(s);
	fuzz_names_message(data, size);
	(void)names_msgid_hash((const char *)data + 1, size - 1);
	free(s);
	return 0;
}
