// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * names: IMAP mailbox names <-> mount paths (see names.h).
 *
 * Modified UTF-7 (RFC 3501 section 5.1.3) is decoded strictly: only the
 * one encoding a conforming server produces for a name is accepted, so
 * that decoding and encoding are exact inverses and two different
 * server names never show as the same path. Names that fail are shown
 * byte for byte instead.
 */
#include "names.h"
#include "sha256.h"
#include "strbuf.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The modified base64 digits (RFC 3501 section 5.1.3): ',' for '/'. */
static const char names_b64_digits[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/* Appends one byte to b. */
static void names_putc(struct strbuf *b, char c)
{
	strbuf_append(b, &c, 1);
}

/* Hands the string over to the caller (owned by the caller), or frees
 * it and returns NULL if an append failed or ok is false. */
static char *names_finish(struct strbuf *b, bool ok)
{
	if (!ok) {
		strbuf_free(b);
		return NULL;
	}
	return strbuf_steal(b);
}

/* Appends code point cp (valid, not a surrogate) as UTF-8. */
static void names_put_utf8(struct strbuf *b, uint32_t cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		u[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	strbuf_append(b, u, n);
}

/*
 * Reads one UTF-8 character at *sp, advancing *sp past it. Strict:
 * refuses (-1) stray continuation bytes, truncated sequences, overlong
 * forms, UTF-16 surrogates and code points above U+10FFFF.
 */
static int32_t names_utf8_next(const unsigned char **sp)
{
	uint32_t cp;
	size_t n = strbuf_utf8_len(*sp, strnlen((const char *)*sp, 4), &cp);

	if (n == 0)
		return -1;
	*sp += n;
	return (int32_t)cp;
}

/* True for the bytes that modified UTF-7 writes as themselves. */
static bool names_is_direct(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e;
}

/* Value of a modified base64 character, -1 for any other byte. */
static int names_b64_value(unsigned char c)
{
	if (c == ',')
		return 63;
	return c == '/' ? -1 : strbuf_b64_value(c);
}

/*
 * Takes one UTF-16 unit of a base64 run. *hi holds a high surrogate
 * waiting for its low half (0 if none). Refuses units that must not be
 * base64 encoded (U+0000 and printable ASCII) and unpaired surrogates.
 */
static bool names_put_unit(struct strbuf *b, uint32_t u, uint32_t *hi)
{
	if (*hi) {
		if (u < 0xdc00 || u > 0xdfff)
			return false;
		names_put_utf8(b,
			       0x10000 + ((*hi - 0xd800) << 10) + (u - 0xdc00));
		*hi = 0;
		return true;
	}
	if (u >= 0xd800 && u <= 0xdbff) {
		*hi = u;
		return true;
	}
	if (u >= 0xdc00 && u <= 0xdfff)
		return false;
	if (u == 0 || (u >= 0x20 && u <= 0x7e))
		return false;
	names_put_utf8(b, u);
	return true;
}

/*
 * Decodes the base64 run that starts at s (just after its '&') up to
 * and including its '-'. Returns the byte after the '-', or NULL if the
 * run is invalid: a byte outside the alphabet or a missing '-', an odd
 * number of bytes or a superfluous character (6 or more bits left
 * over), non-zero leftover bits, or a unit names_put_unit() refuses.
 */
static const unsigned char *names_decode_run(struct strbuf *b,
					     const unsigned char *s)
{
	uint32_t bits = 0, hi = 0;
	int nbits = 0, v;

	for (; *s != '-'; s++) {
		v = names_b64_value(*s); /* also refuses the final NUL */
		if (v < 0)
			return NULL;
		bits = bits << 6 | (uint32_t)v;
		nbits += 6;
		if (nbits >= 16) {
			nbits -= 16;
			if (!names_put_unit(b, bits >> nbits & 0xffff, &hi))
				return NULL;
			bits &= (1u << nbits) - 1;
		}
	}
	if (nbits >= 6 || bits != 0 || hi)
		return NULL;
	return s + 1;
}

/*
 * Decodes modified UTF-7 into UTF-8, strictly (names.h lists what is
 * refused). run_end remembers where the last base64 run ended, to
 * refuse a run that starts right there.
 */
char *names_mutf7_decode(const char *in)
{
	const unsigned char *s = (const unsigned char *)in;
	const unsigned char *run_end = NULL;
	struct strbuf b = {0};

	while (*s) {
		if (!names_is_direct(*s))
			return names_finish(&b, false);
		if (*s != '&') {
			names_putc(&b, (char)*s++);
			continue;
		}
		if (s[1] == '-') {
			names_putc(&b, '&');
			s += 2;
			continue;
		}
		if (s == run_end)
			return names_finish(&b, false);
		s = names_decode_run(&b, s + 1);
		if (!s)
			return names_finish(&b, false);
		run_end = s;
	}
	return names_finish(&b, true);
}

/* Appends UTF-16 unit u to a base64 run; *bits and *nbits hold the bits
 * not written yet (fewer than 6). */
static void names_put_b64_unit(struct strbuf *b, uint32_t u, uint32_t *bits,
			       int *nbits)
{
	*bits = *bits << 16 | u;
	*nbits += 16;
	while (*nbits >= 6) {
		*nbits -= 6;
		names_putc(b, names_b64_digits[*bits >> *nbits & 0x3f]);
	}
	*bits &= (1u << *nbits) - 1;
}

/*
 * Encodes UTF-8 into modified UTF-7: printable ASCII as itself, '&' as
 * "&-", every run of other characters as one base64 run of UTF-16.
 */
char *names_mutf7_encode(const char *in)
{
	const unsigned char *s = (const unsigned char *)in;
	struct strbuf b = {0};
	uint32_t bits, cp;
	int32_t c;
	int nbits;

	while (*s) {
		if (names_is_direct(*s)) {
			if (*s == '&')
				strbuf_append(&b, "&-", 2);
			else
				names_putc(&b, (char)*s);
			s++;
			continue;
		}
		names_putc(&b, '&');
		bits = 0;
		nbits = 0;
		while (*s && !names_is_direct(*s)) {
			c = names_utf8_next(&s);
			if (c < 0)
				return names_finish(&b, false);
			cp = (uint32_t)c;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				names_put_b64_unit(&b, 0xd800 + (cp >> 10),
						   &bits, &nbits);
				names_put_b64_unit(&b, 0xdc00 + (cp & 0x3ff),
						   &bits, &nbits);
			} else {
				names_put_b64_unit(&b, cp, &bits, &nbits);
			}
		}
		if (nbits)
			names_putc(
				&b,
				names_b64_digits[bits << (6 - nbits) & 0x3f]);
		names_putc(&b, '-');
	}
	return names_finish(&b, true);
}

/* The reserved names (see names.h). */
static const char *const names_reserved_list[] = {".search", ".parts",
						  ".summary"};

/* True when the n bytes at s are exactly one of the reserved names. */
bool names_reserved(const char *s, size_t n)
{
	size_t i;

	for (i = 0;
	     i < sizeof(names_reserved_list) / sizeof(names_reserved_list[0]);
	     i++)
		if (strlen(names_reserved_list[i]) == n &&
		    memcmp(names_reserved_list[i], s, n) == 0)
			return true;
	return false;
}

/* True for the bytes names_escape() writes as %XX. */
static bool names_needs_escape(unsigned char c)
{
	return c == '%' || c == '/' || (c >= 0x01 && c <= 0x1f) || c == 0x7f;
}

/*
 * Escapes one component into b; raw (a server name that is not
 * canonical modified UTF-7, or holds 8-bit bytes) also escapes '&' and
 * every byte over 0x7f, so that it can never show as the same path as
 * a canonical name, whose decoded form has those as themselves.
 */
static void names_escape_into_as(struct strbuf *b, const char *s, size_t n,
				 bool raw)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;
	char e[3];
	size_t i;

	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) {
		strbuf_append(b, n == 1 ? "%2E" : "%2E%2E", 3 * n);
		return;
	}
	/* The mount's own virtual names are never a folder's. */
	i = 0;
	if (names_reserved(s, n)) {
		strbuf_append(b, "%2E", 3);
		i = 1;
	}
	for (; i < n; i++) {
		c = (unsigned char)s[i];
		if (!names_needs_escape(c) &&
		    !(raw && (c == '&' || c >= 0x80))) {
			names_putc(b, (char)c);
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 0xf];
		strbuf_append(b, e, 3);
	}
}

/* Appends the n bytes at s to b, escaped as names.h says. */
static void names_escape_into(struct strbuf *b, const char *s, size_t n)
{
	names_escape_into_as(b, s, n, false);
}

/* Escapes one component for display (see names.h). */
char *names_escape(const char *component)
{
	struct strbuf b = {0};

	names_escape_into(&b, component, strlen(component));
	return names_finish(&b, true);
}

/* One function names every account's local directory (POP3 store and
 * IMAP disk cache), so both tell user, host and port apart alike. */
char *names_account_key(const char *user, const char *host, const char *port)
{
	char *who, *safe;

	if (asprintf(&who, "%s@%s%s%s", user, host, port ? ":" : "",
		     port ? port : "") < 0)
		return NULL;
	safe = names_escape(who);
	free(who);
	return safe;
}

/* Appends the n bytes at s to b with %XX undone; false on %00. */
static bool names_unescape_into(struct strbuf *b, const char *s, size_t n)
{
	int hi, lo;
	size_t i;

	for (i = 0; i < n; i++) {
		hi = lo = -1;
		if (s[i] == '%' && n - i >= 3) {
			hi = strbuf_hex_value((unsigned char)s[i + 1]);
			lo = strbuf_hex_value((unsigned char)s[i + 2]);
		}
		if (hi < 0 || lo < 0) {
			names_putc(b, s[i]);
			continue;
		}
		if (hi == 0 && lo == 0)
			return false;
		names_putc(b, (char)(hi << 4 | lo));
		i += 2;
	}
	return true;
}

/*
 * Length of the component at s: up to the next delim or the end. A
 * base64 run is skipped whole, its closing '-' included, so that a
 * delimiter that is also a base64 character or '-' (odd choices, but
 * legal) does not cut it.
 */
static size_t names_component_len(const char *s, char delim)
{
	size_t i = 0;

	while (s[i] && s[i] != delim) {
		if (s[i] == '&') {
			while (s[i + 1] &&
			       names_b64_value((unsigned char)s[i + 1]) >= 0)
				i++;
			if (s[i + 1] == '-')
				i++;
		}
		i++;
	}
	return i;
}

/* True when splitting name at delim gives an empty component. */
static bool names_has_empty_component(const char *name, char delim)
{
	size_t n;

	for (;;) {
		n = names_component_len(name, delim);
		if (n == 0)
			return true;
		if (!name[n])
			return false;
		name += n + 1;
	}
}

/*
 * Cuts a component longer than NAMES_MAX_COMPONENT bytes to a shorter
 * prefix (at a character boundary, never inside a %XX escape) plus "~"
 * and 8 hex digits of the SHA-256 of the server's component, so that the
 * name fits a file system's 255 bytes, stays the same at every listing
 * and differs from every other cut name.
 */
static void names_component_shorten(struct strbuf *b, size_t start,
				    const char *server, size_t n)
{
	unsigned char digest[NET_SHA256_LEN];
	size_t keep = NAMES_MAX_COMPONENT - 9;
	char tail[10];

	if (b->failed || b->len - start <= NAMES_MAX_COMPONENT)
		return;
	while (keep > 0 &&
	       (((unsigned char)b->data[start + keep] & 0xc0) == 0x80 ||
		(keep >= 1 && b->data[start + keep - 1] == '%') ||
		(keep >= 2 && b->data[start + keep - 2] == '%')))
		keep--;
	net_sha256(server, n, digest);
	snprintf(tail, sizeof(tail), "~%02x%02x%02x%02x", digest[0], digest[1],
		 digest[2], digest[3]);
	b->len = start + keep;
	b->data[b->len] = '\0';
	strbuf_append(b, tail, 9);
}

/* Appends one server component (n bytes at s), decoded and escaped, or
 * escaped byte for byte when it is not valid modified UTF-7; shortened
 * when too long for a file name. */
static void names_component_to_path(struct strbuf *b, const char *s, size_t n)
{
	char *raw = strndup(s, n);
	size_t start = b->len;
	char *dec;

	if (!raw) {
		b->failed = true;
		return;
	}
	dec = names_mutf7_decode(raw);
	if (dec)
		names_escape_into(b, dec, strlen(dec));
	else
		names_escape_into_as(b, raw, n, true);
	names_component_shorten(b, start, raw, n);
	free(dec);
	free(raw);
}

/*
 * Server name to mount path. A name that would give an empty component
 * (a leading, trailing or doubled delimiter) is shown as one component,
 * as if the namespace were flat, since a path cannot hold an empty one.
 */
char *names_to_path(const char *mailbox, char delim)
{
	struct strbuf b = {0};
	size_t n;

	if (delim == '\0' || names_has_empty_component(mailbox, delim)) {
		names_component_to_path(&b, mailbox, strlen(mailbox));
		return names_finish(&b, true);
	}
	for (;;) {
		n = names_component_len(mailbox, delim);
		names_component_to_path(&b, mailbox, n);
		if (!mailbox[n])
			break;
		names_putc(&b, '/');
		mailbox += n + 1;
	}
	return names_finish(&b, true);
}

/*
 * Appends the server form of one path component (n bytes at s, n > 0)
 * to b. False if it cannot be one: "." or "..", a %00, the delimiter
 * inside it (unless the delimiter is '/'), also in its modified UTF-7
 * form (a delimiter '&' starts every base64 run), or invalid UTF-8.
 */
static bool names_component_from_path(struct strbuf *b, const char *s, size_t n,
				      char delim)
{
	struct strbuf u = {0};
	char *enc = NULL;
	bool ok;

	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	if (names_reserved(s, n))
		return false; /* written %2E... by names_to_path() */
	/* n > 0, so u.data is set unless out of memory */
	ok = names_unescape_into(&u, s, n) && !strbuf_failed(&u);
	if (ok && delim != '/' && delim != '\0' && memchr(u.data, delim, u.len))
		ok = false;
	if (ok)
		enc = names_mutf7_encode(u.data);
	if (enc && delim != '/' && delim != '\0' &&
	    names_component_len(enc, delim) != strlen(enc)) {
		free(enc);
		enc = NULL;
	}
	if (enc)
		strbuf_append(b, enc, strlen(enc));
	free(enc);
	strbuf_free(&u);
	return enc != NULL;
}

/*
 * Mount path to server name. With a flat namespace (delim '\0') the
 * path must be a single component.
 */
char *names_from_path(const char *path, char delim)
{
	struct strbuf b = {0};
	const char *slash;
	size_t n;

	for (;;) {
		slash = strchr(path, '/');
		n = slash ? (size_t)(slash - path) : strlen(path);
		if (n == 0 || !names_component_from_path(&b, path, n, delim))
			return names_finish(&b, false);
		if (!slash)
			break;
		if (delim == '\0')
			return names_finish(&b, false);
		names_putc(&b, delim);
		path = slash + 1;
	}
	return names_finish(&b, true);
}

/*
 * POP3 UIDLs <-> local file names (see names.h). Only lower-case
 * letters, digits, '-' and '_' stand for themselves; everything else is
 * escaped, upper-case hex only, so that each UIDL has exactly one name
 * and no two names are the same but for case.
 */

/* Longest UIDL, RFC 1939 section 7. */
#define NAMES_UIDL_MAX 70

/* True for a byte that may be part of a UIDL. */
static bool names_uidl_byte(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

/* True for a UIDL byte that a file name holds as itself. */
static bool names_uidl_keeps(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_';
}

/* Value of an upper-case hex digit, -1 for any other byte (lower-case
 * digits too: names_uidl_to_file() never writes them). */
static int names_hex_upper_value(unsigned char c)
{
	return c >= 'a' && c <= 'f' ? -1 : strbuf_hex_value(c);
}

/* UIDL to file name: checks the UIDL, then escapes every byte that is
 * not kept. At most 3 bytes out per byte in, so one allocation. */
char *names_uidl_to_file(const char *uidl)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, len = strnlen(uidl, NAMES_UIDL_MAX + 1);
	unsigned char c;
	char *out, *o;

	if (len == 0 || len > NAMES_UIDL_MAX)
		return NULL;
	for (i = 0; i < len; i++)
		if (!names_uidl_byte((unsigned char)uidl[i]))
			return NULL;
	out = malloc(3 * len + 1);
	if (!out)
		return NULL;
	o = out;
	for (i = 0; i < len; i++) {
		c = (unsigned char)uidl[i];
		if (names_uidl_keeps(c)) {
			*o++ = (char)c;
			continue;
		}
		*o++ = '%';
		*o++ = hex[c >> 4];
		*o++ = hex[c & 0xf];
	}
	*o = '\0';
	return out;
}

/* File name to UIDL: undoes the escapes and refuses anything that
 * names_uidl_to_file() would have written otherwise. */
char *names_file_to_uidl(const char *file)
{
	const unsigned char *s = (const unsigned char *)file;
	char uidl[NAMES_UIDL_MAX + 1];
	size_t len = 0;
	int hi, lo;
	unsigned char c;

	while (*s) {
		if (len == NAMES_UIDL_MAX)
			return NULL;
		if (names_uidl_keeps(*s)) {
			uidl[len++] = (char)*s++;
			continue;
		}
		if (*s != '%')
			return NULL;
		/* a NUL after the '%' fails here, so no read goes past it */
		hi = names_hex_upper_value(s[1]);
		lo = hi < 0 ? -1 : names_hex_upper_value(s[2]);
		if (lo < 0)
			return NULL;
		c = (unsigned char)(hi << 4 | lo);
		if (!names_uidl_byte(c) || names_uidl_keeps(c))
			return NULL;
		uidl[len++] = (char)c;
		s += 3;
	}
	if (len == 0)
		return NULL;
	uidl[len] = '\0';
	return strdup(uidl);
}

/* A message's file name (see names.h): its date, size and Message-ID
 * hash, and n from the second message of a folder with the same ones. */
void names_message(char *buf, time_t date, uint64_t size, uint32_t idhash,
		   unsigned n)
{
	struct tm tm;
	char when[20];

	if (!gmtime_r(&date, &tm) ||
	    strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm) == 0 ||
	    tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
		strcpy(when, "00000000T000000Z"); /* a date no calendar has */
	if (n < 2)
		snprintf(buf, NAMES_MESSAGE_MAX, "%s-%llu-%08x.eml", when,
			 (unsigned long long)size, idhash);
	else
		snprintf(buf, NAMES_MESSAGE_MAX, "%s-%llu-%08x-%u.eml", when,
			 (unsigned long long)size, idhash, n);
}

/* The end of the header line that starts at p (at its LF, or at end). */
static const char *names_line_end(const char *p, const char *end)
{
	const char *lf = memchr(p, '\n', (size_t)(end - p));

	return lf ? lf : end;
}

/* True when the field starting at p (up to eol) is Message-ID; *value_r
 * gets where its value starts. */
static bool names_is_msgid(const char *p, const char *eol, const char **value_r)
{
	static const char name[] = "message-id";
	size_t i;

	if ((size_t)(eol - p) < sizeof(name))
		return false;
	for (i = 0; i < sizeof(name) - 1; i++)
		if ((p[i] | 0x20) != name[i])
			return false;
	p += i;
	while (p < eol && (*p == ' ' || *p == '\t'))
		p++; /* obsolete syntax allows blanks before the colon */
	if (p == eol || *p != ':')
		return false;
	*value_r = p + 1;
	return true;
}

/* The first 32 bits of the SHA-256 of hdr's Message-ID value, unfolded
 * and trimmed (see names.h). */
uint32_t names_msgid_hash(const char *hdr, size_t len)
{
	const char *p = hdr, *end = hdr + len, *value = NULL;
	unsigned char digest[NET_SHA256_LEN];
	char *buf;
	size_t n = 0;

	while (p < end && !value) {
		const char *eol = names_line_end(p, end);

		if (p == eol || (*p == '\r' && p + 1 == eol))
			break; /* the blank line: the header ends */
		if (*p != ' ' && *p != '\t' && names_is_msgid(p, eol, &value))
			break;
		p = eol < end ? eol + 1 : end;
	}
	buf = malloc(value ? (size_t)(end - value) + 1 : 1);
	if (value && buf) {
		/* Unfold: the field runs on while lines start with blanks. */
		for (p = value; p < end; p++) {
			if (*p == '\n') {
				if (p + 1 >= end ||
				    (p[1] != ' ' && p[1] != '\t'))
					break;
				continue;
			}
			if (*p != '\r')
				buf[n++] = *p;
		}
	}
	if (buf) {
		size_t start = 0;

		while (start < n && (buf[start] == ' ' || buf[start] == '\t'))
			start++;
		while (n > start && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
			n--;
		net_sha256(buf + start, n - start, digest);
	} else {
		net_sha256("", 0, digest);
	}
	free(buf);
	return (uint32_t)digest[0] << 24 | (uint32_t)digest[1] << 16 |
	       (uint32_t)digest[2] << 8 | digest[3];
}
