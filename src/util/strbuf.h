/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * strbuf: a growable byte buffer, always NUL terminated, for building
 * protocol commands and small strings. Allocation failure is sticky:
 * later appends do nothing and strbuf_failed() says so, so callers check
 * once at the end instead of after every append.
 */
#ifndef MAILFS_STRBUF_H
#define MAILFS_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf {
	char *data; /* owned; NULL until the first append */
	size_t len;
	size_t cap;
	bool failed;
};

void strbuf_append(struct strbuf *b, const void *data, size_t len);
void strbuf_puts(struct strbuf *b, const char *s);
void strbuf_printf(struct strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends the standard base64 (RFC 4648, padded) encoding of data. */
void strbuf_base64(struct strbuf *b, const void *data, size_t len);
/*
 * Appends the bytes that the base64 text [text, text+len) encodes
 * (RFC 4648 alphabet; the '=' padding may be left out). Returns false,
 * appending nothing, when the text is not base64: another character, a
 * misplaced '=', or a length no encoding has.
 */
bool strbuf_unbase64(struct strbuf *b, const char *text, size_t len);
/* The 6-bit value of a standard base64 digit, or -1 for any other byte. */
int strbuf_b64_value(unsigned char c);
/* The value of a hex digit (either case), or -1 for any other byte. */
int strbuf_hex_value(unsigned char c);
/*
 * The length of the valid UTF-8 sequence at s (n bytes available), 0 if
 * there is none: stray continuation bytes, truncated sequences, overlong
 * forms, UTF-16 surrogates and code points above U+10FFFF are refused.
 * *cp_r (may be NULL) gets the code point.
 */
size_t strbuf_utf8_len(const unsigned char *s, size_t n, uint32_t *cp_r);
bool strbuf_failed(const struct strbuf *b);
/* The contents ("" when empty); borrowed, valid until the next change. */
const char *strbuf_str(const struct strbuf *b);
void strbuf_reset(struct strbuf *b);
/* Wipes the contents (they may hold a password) and frees them. */
void strbuf_wipe(struct strbuf *b);
void strbuf_free(struct strbuf *b);
/* Hands the contents to the caller (malloc'd, may be NULL on failure). */
char *strbuf_steal(struct strbuf *b);

#endif
