// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mime: transfer encodings, charsets, encoded words, parameters and
 * safe file names; see mime.h. Pure: iconv is the only library used,
 * and each conversion opens and closes its own descriptor.
 */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime.h"

/* U+FFFD REPLACEMENT CHARACTER in UTF-8. */
static const char mime_fffd[] = "\xef\xbf\xbd";
/* Longest charset name taken (longer ones are unknown). */
#define MIME_CHARSET_MAX 64
/* Most RFC 2231 continuations of one parameter. */
#define MIME_MAX_SECTIONS 64

/* Quoted-printable or (q) RFC 2047's Q: one pass, see mime.h. */
static void mime_qp(struct strbuf *out, const char *in, size_t len, bool q)
{
	size_t i = 0, start = 0;
	int hi, lo;
	char c;

	while (i < len) {
		if (in[i] != '=' && !(q && in[i] == '_')) {
			i++;
			continue;
		}
		strbuf_append(out, in + start, i - start);
		if (in[i] == '_') {
			strbuf_append(out, " ", 1);
			start = ++i;
			continue;
		}
		/* a soft line break: "=" CRLF or "=" LF, blanks allowed */
		size_t j = i + 1;

		while (j < len && (in[j] == ' ' || in[j] == '\t'))
			j++;
		if (j < len && in[j] == '\n') {
			start = i = j + 1;
			continue;
		}
		if (j + 1 < len && in[j] == '\r' && in[j + 1] == '\n') {
			start = i = j + 2;
			continue;
		}
		hi = i + 2 < len ? strbuf_hex_value((unsigned char)in[i + 1])
				 : -1;
		lo = i + 2 < len ? strbuf_hex_value((unsigned char)in[i + 2])
				 : -1;
		if (hi < 0 || lo < 0) {
			strbuf_append(out, "=", 1);
			start = ++i;
			continue;
		}
		c = (char)(hi << 4 | lo);
		strbuf_append(out, &c, 1);
		start = i = i + 3;
	}
	strbuf_append(out, in + start, len - start);
}

/* Quoted-printable (see mime.h). */
void mime_qp_decode(struct strbuf *out, const char *in, size_t len)
{
	mime_qp(out, in, len, false);
}

/* RFC 2047 "Q" (see mime.h). */
void mime_q_decode(struct strbuf *out, const char *in, size_t len)
{
	mime_qp(out, in, len, true);
}

/* Lenient base64: see mime.h. */
void mime_b64_decode(struct strbuf *out, const char *in, size_t len)
{
	unsigned char buf[3 * 256];
	uint32_t acc = 0;
	size_t i, n = 0;
	int bits = 0, v;

	for (i = 0; i < len && in[i] != '='; i++) {
		v = strbuf_b64_value((unsigned char)in[i]);
		if (v < 0)
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
		if (n == sizeof(buf)) {
			strbuf_append(out, buf, n);
			n = 0;
		}
	}
	strbuf_append(out, buf, n);
}

/* Appends in as UTF-8, each byte that starts no valid sequence as
 * U+FFFD. */
static void mime_utf8_clean(struct strbuf *out, const char *in, size_t len)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, start = 0, n;

	while (i < len) {
		n = strbuf_utf8_len(s + i, len - i, NULL);
		if (n) {
			i += n;
			continue;
		}
		strbuf_append(out, in + start, i - start);
		strbuf_append(out, mime_fffd, 3);
		start = ++i;
	}
	strbuf_append(out, in + start, len - start);
}

/* True when charset names UTF-8 or ASCII (or is empty). */
static bool mime_is_utf8(const char *charset)
{
	return !charset || !*charset || !strcasecmp(charset, "utf-8") ||
	       !strcasecmp(charset, "utf8") ||
	       !strcasecmp(charset, "us-ascii") ||
	       !strcasecmp(charset, "ascii");
}

/* Converts with an open iconv descriptor, U+FFFD for what does not
 * convert. */
static void mime_iconv(struct strbuf *out, iconv_t cd, const char *in,
		       size_t len)
{
	char buf[4096], *ip = (char *)in, *op;
	size_t il = len, ol;

	while (il > 0) {
		op = buf;
		ol = sizeof(buf);
		size_t r = iconv(cd, &ip, &il, &op, &ol);

		strbuf_append(out, buf, sizeof(buf) - ol);
		if (r != (size_t)-1)
			break;
		if (errno == E2BIG)
			continue;
		/* EILSEQ: skip the byte; EINVAL: a cut sequence at the
		 * end; anything else: give up on the rest */
		strbuf_append(out, mime_fffd, 3);
		if (errno != EILSEQ)
			break;
		ip++;
		il--;
		iconv(cd, NULL, NULL, NULL, NULL);
	}
	op = buf;
	ol = sizeof(buf);
	if (iconv(cd, NULL, NULL, &op, &ol) != (size_t)-1)
		strbuf_append(out, buf, sizeof(buf) - ol);
}

/* Turns each CRLF from byte `from` of out on into LF, in place. */
static void mime_crlf_to_lf(struct strbuf *out, size_t from)
{
	size_t i, j;

	if (strbuf_failed(out) || !out->data)
		return;
	for (i = j = from; i < out->len; i++) {
		if (out->data[i] == '\r' && i + 1 < out->len &&
		    out->data[i + 1] == '\n')
			continue;
		out->data[j++] = out->data[i];
	}
	out->len = j;
	out->data[j] = '\0';
}

/*
 * Charset to UTF-8 through iconv, U+FFFD for what does not convert.
 * iconv's own output is checked again: glibc turns UCS-4 (and its other
 * spellings of UTF-8) above U+10FFFF into 4-byte sequences that are not
 * UTF-8, and the result must be strict UTF-8 for names and summaries.
 */
void mime_to_utf8(struct strbuf *out, const char *charset, const char *in,
		  size_t len, bool lf)
{
	size_t from = out->len;
	struct strbuf conv = {0};
	iconv_t cd = (iconv_t)-1;

	if (!in)
		in = "";
	if (!mime_is_utf8(charset) && strlen(charset) <= MIME_CHARSET_MAX)
		cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1) {
		mime_utf8_clean(out, in, len);
	} else {
		mime_iconv(&conv, cd, in, len);
		iconv_close(cd);
		if (strbuf_failed(&conv))
			out->failed = true;
		else
			mime_utf8_clean(out, conv.data ? conv.data : "",
					conv.len);
		strbuf_free(&conv);
	}
	if (lf)
		mime_crlf_to_lf(out, from);
}

/* One encoded word at in[0..len): "=?charset[*lang]?Q|B?text?=". On
 * success fills its parts and returns its length; 0 if it is none. */
static size_t mime_word(const char *in, size_t len, char *charset,
			size_t cs_size, char *enc, const char **text_r,
			size_t *text_len_r)
{
	const char *p = in + 2, *end = in + len, *q, *t;
	size_t n;

	if (len < 8 || in[0] != '=' || in[1] != '?')
		return 0;
	q = memchr(p, '?', (size_t)(end - p));
	if (!q || q == p || (size_t)(q - p) >= cs_size)
		return 0;
	n = (size_t)(q - p);
	memcpy(charset, p, n);
	charset[n] = '\0';
	if (strchr(charset, '*'))
		*strchr(charset, '*') = '\0'; /* RFC 2231 language */
	if (end - q < 4 || q[2] != '?')
		return 0;
	*enc = (char)(q[1] & ~0x20);
	if (*enc != 'Q' && *enc != 'B')
		return 0;
	t = q + 3;
	for (q = t; q + 1 < end; q++) {
		if (q[0] == '?' && q[1] == '=') {
			*text_r = t;
			*text_len_r = (size_t)(q - t);
			return (size_t)(q + 2 - in);
		}
		if (q[0] == ' ' || q[0] == '\t' || q[0] == '\r' || q[0] == '\n')
			return 0;
	}
	return 0;
}

/* RFC 2047 words of a header value to UTF-8 (see mime.h); adjacent
 * words of one charset are joined before converting, so that a character
 * split between two words survives. */
void mime_decode_words(struct strbuf *out, const char *in, size_t len)
{
	char charset[MIME_CHARSET_MAX + 1], run_cs[MIME_CHARSET_MAX + 1];
	struct strbuf run = {0}; /* decoded bytes of adjacent words */
	size_t i = 0, plain = 0, w, gap, tlen;
	bool in_run = false;
	const char *text;
	char enc;

	run_cs[0] = '\0';
	while (i < len) {
		w = in[i] == '='
			    ? mime_word(in + i, len - i, charset,
					sizeof(charset), &enc, &text, &tlen)
			    : 0;
		if (!w) {
			i++;
			continue;
		}
		/* white space alone between two words is dropped */
		for (gap = plain;
		     gap < i && (in[gap] == ' ' || in[gap] == '\t' ||
				 in[gap] == '\r' || in[gap] == '\n');
		     gap++)
			;
		if (!in_run || gap < i || strcasecmp(run_cs, charset) != 0) {
			if (in_run)
				mime_to_utf8(out, run_cs, run.data, run.len,
					     false);
			strbuf_reset(&run);
			if (!in_run || gap < i)
				mime_utf8_clean(out, in + plain, i - plain);
		}
		in_run = true;
		memcpy(run_cs, charset, sizeof(charset));
		if (enc == 'Q')
			mime_q_decode(&run, text, tlen);
		else
			mime_b64_decode(&run, text, tlen);
		i += w;
		plain = i;
	}
	if (in_run)
		mime_to_utf8(out, run_cs, run.data, run.len, false);
	strbuf_free(&run);
	mime_utf8_clean(out, in + plain, len - plain);
}

/* Appends s with its %XX escapes undone (RFC 2231 extended values). */
static void mime_pct_decode(struct strbuf *out, const char *s)
{
	int hi, lo;
	char c;

	for (; *s; s++) {
		if (s[0] == '%' &&
		    (hi = strbuf_hex_value((unsigned char)s[1])) >= 0 &&
		    (lo = strbuf_hex_value((unsigned char)s[2])) >= 0) {
			c = (char)(hi << 4 | lo);
			strbuf_append(out, &c, 1);
			s += 2;
		} else {
			strbuf_append(out, s, 1);
		}
	}
}

/*
 * Tells what the parameter called pname is to name: -1 not it, -2 the
 * plain form (name=), else an RFC 2231 section (0 for name* too), with
 * *ext_r set when its value is %-encoded (a trailing '*').
 */
static int mime_param_section(const char *pname, const char *name, bool *ext_r)
{
	size_t n = strlen(name);
	const char *p;
	int sec = 0;

	*ext_r = false;
	if (strncasecmp(pname, name, n) != 0)
		return -1;
	p = pname + n;
	if (!*p)
		return -2;
	if (*p++ != '*')
		return -1;
	if (!*p) {
		*ext_r = true;
		return 0;
	}
	if (*p < '0' || *p > '9' || (p[0] == '0' && p[1] >= '0' && p[1] <= '9'))
		return -1;
	for (; *p >= '0' && *p <= '9'; p++)
		if ((sec = sec * 10 + (*p - '0')) >= MIME_MAX_SECTIONS)
			return -1;
	if (*p == '*') {
		*ext_r = true;
		p++;
	}
	return *p ? -1 : sec;
}

/* Joins the RFC 2231 sections of a parameter into UTF-8. */
static char *mime_param_2231(const struct mime_param **secs, const bool *ext,
			     size_t nsec)
{
	struct strbuf raw = {0}, out = {0};
	char charset[MIME_CHARSET_MAX + 1] = "";
	const char *v, *q1, *q2;
	size_t i;

	for (i = 0; i < nsec && secs[i]; i++) {
		v = secs[i]->value ? secs[i]->value : "";
		if (i == 0 && ext[0] && (q1 = strchr(v, '\'')) &&
		    (q2 = strchr(q1 + 1, '\''))) {
			if ((size_t)(q1 - v) <= MIME_CHARSET_MAX) {
				memcpy(charset, v, (size_t)(q1 - v));
				charset[q1 - v] = '\0';
			}
			v = q2 + 1;
		}
		if (ext[i])
			mime_pct_decode(&raw, v);
		else
			strbuf_puts(&raw, v);
	}
	mime_to_utf8(&out, charset, raw.data ? raw.data : "", raw.len, false);
	strbuf_free(&raw);
	if (!out.data)
		strbuf_append(&out, "", 0);
	return strbuf_steal(&out);
}

/* A parameter's value: RFC 2231 sections first, else the plain one. */
char *mime_param(const struct mime_param *p, size_t n, const char *name)
{
	const struct mime_param *secs[MIME_MAX_SECTIONS] = {0}, *plain = NULL;
	bool ext[MIME_MAX_SECTIONS] = {0}, e, any = false;
	struct strbuf out = {0};
	size_t i;
	int sec;

	for (i = 0; i < n; i++) {
		if (!p[i].name)
			continue;
		sec = mime_param_section(p[i].name, name, &e);
		if (sec == -2 && !plain) {
			plain = &p[i];
		} else if (sec >= 0 && !secs[sec]) {
			secs[sec] = &p[i];
			ext[sec] = e;
			any = true;
		}
	}
	if (any && secs[0])
		return mime_param_2231(secs, ext, MIME_MAX_SECTIONS);
	if (!plain)
		return NULL;
	mime_decode_words(&out, plain->value ? plain->value : "",
			  plain->value ? strlen(plain->value) : 0);
	if (!out.data)
		strbuf_append(&out, "", 0);
	return strbuf_steal(&out);
}

/* A name made safe as a directory entry (see mime.h). */
void mime_safe_name(struct strbuf *out, const char *name)
{
	size_t len = strlen(name), start = out->len, i, ext = 0, stem;
	const char *dot;
	char c;

	for (i = 0; i < len; i++) {
		c = name[i];
		if (c == '/' || (unsigned char)c < 0x20 || c == 0x7f)
			c = '_';
		strbuf_append(out, &c, 1);
	}
	if (strbuf_failed(out) || !out->data)
		return;
	if (!strcmp(out->data + start, ".") ||
	    !strcmp(out->data + start, "..")) {
		memset(out->data + start, '_', out->len - start);
		return;
	}
	if (out->len - start <= MIME_NAME_MAX)
		return;
	dot = strrchr(out->data + start, '.');
	if (dot && dot > out->data + start &&
	    (size_t)(out->data + out->len - dot) <= 16)
		ext = (size_t)(out->data + out->len - dot);
	stem = MIME_NAME_MAX - ext;
	/* cut at a character boundary */
	while (stem > 0 &&
	       ((unsigned char)out->data[start + stem] & 0xc0) == 0x80)
		stem--;
	memmove(out->data + start + stem, out->data + out->len - ext, ext);
	out->len = start + stem + ext;
	out->data[out->len] = '\0';
}
