// SPDX-License-Identifier: GPL-2.0-or-later
/* strbuf: growable NUL-terminated buffer; see strbuf.h. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

/* Makes room for extra more bytes plus the NUL; false when that fails. */
static bool strbuf_grow(struct strbuf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (b->failed)
		return false;
	if (extra > SIZE_MAX - b->len - 1)
		goto fail;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		goto fail;
	b->data = p;
	b->cap = cap;
	return true;
fail:
	b->failed = true;
	return false;
}

void strbuf_append(struct strbuf *b, const void *data, size_t len)
{
	if (!strbuf_grow(b, len))
		return;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void strbuf_puts(struct strbuf *b, const char *s)
{
	strbuf_append(b, s, strlen(s));
}

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!strbuf_grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void strbuf_base64(struct strbuf *b, const void *data, size_t len)
{
	static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmno"
				     "pqrstuvwxyz0123456789+/";
	const unsigned char *in = data;
	char quad[4];
	size_t i;

	for (i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		quad[0] = digits[v >> 18];
		quad[1] = digits[(v >> 12) & 63];
		quad[2] = i + 1 < len ? digits[(v >> 6) & 63] : '=';
		quad[3] = i + 2 < len ? digits[v & 63] : '=';
		strbuf_append(b, quad, 4);
	}
}

int strbuf_hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t strbuf_utf8_len(const unsigned char *s, size_t n, uint32_t *cp_r)
{
	size_t len, i;
	uint32_t cp;

	if (n == 0)
		return 0;
	if (s[0] < 0x80)
		len = 1, cp = s[0];
	else if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	if (cp_r)
		*cp_r = cp;
	return len;
}

int strbuf_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

bool strbuf_unbase64(struct strbuf *b, const char *text, size_t len)
{
	size_t start = b->len, i, ndigits;
	uint32_t acc = 0;
	unsigned nbits = 0;

	/* Padding: at most two '=', only at the end of a whole quantum. */
	ndigits = len;
	while (ndigits > 0 && text[ndigits - 1] == '=' && len - ndigits < 2)
		ndigits--;
	if (ndigits < len && len % 4 != 0)
		return false;
	if (ndigits % 4 == 1)
		return false;
	for (i = 0; i < ndigits; i++) {
		int v = strbuf_b64_value((unsigned char)text[i]);

		if (v < 0)
			goto fail;
		acc = (acc << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits >= 8) {
			unsigned char byte =
				(unsigned char)(acc >> (nbits - 8));

			nbits -= 8;
			acc &= (1u << nbits) - 1;
			strbuf_append(b, &byte, 1);
		}
	}
	return true;
fail:
	if (b->data && !b->failed) {
		explicit_bzero(b->data + start, b->len - start);
		b->len = start;
		b->data[start] = '\0';
	}
	return false;
}

bool strbuf_failed(const struct strbuf *b)
{
	return b->failed;
}

const char *strbuf_str(const struct strbuf *b)
{
	return b->data ? b->data : "";
}

void strbuf_reset(struct strbuf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void strbuf_wipe(struct strbuf *b)
{
	if (b->data)
		explicit_bzero(b->data, b->cap);
	strbuf_free(b);
}

void strbuf_free(struct strbuf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

char *strbuf_steal(struct strbuf *b)
{
	char *p = b->failed ? NULL : b->data;

	if (b->failed)
		free(b->data);
	if (!p)
		p = b->failed ? NULL : strdup("");
	memset(b, 0, sizeof(*b));
	return p;
}
