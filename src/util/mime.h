/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mime: the decoding a message's parts and header words need, pure (no
 * I/O, no global state): quoted-printable and base64 (lenient, as mail
 * needs: what cannot be decoded is kept or skipped, never refused),
 * charsets to UTF-8 (iconv; a byte that does not decode becomes U+FFFD),
 * RFC 2047 encoded words, RFC 2231 parameter values, and file names
 * made safe for a directory.
 *
 * Every function appends to a strbuf (check strbuf_failed() for memory)
 * and accepts any bytes, of any length.
 */
#ifndef MAILFS_MIME_H
#define MAILFS_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

/* Quoted-printable (RFC 2045 6.7): "=XX" is the byte, "=" at a line's
 * end a soft break; a "=" followed by anything else is kept as is. */
void mime_qp_decode(struct strbuf *out, const char *in, size_t len);
/* The "Q" encoding of RFC 2047: as quoted-printable, '_' is a space. */
void mime_q_decode(struct strbuf *out, const char *in, size_t len);
/* Base64 (RFC 2045 6.8): characters outside the alphabet are skipped,
 * decoding ends at the first '='; a last incomplete group gives the
 * bytes it holds whole. */
void mime_b64_decode(struct strbuf *out, const char *in, size_t len);

/*
 * Converts text in charset (NULL or "": US-ASCII) to UTF-8. A byte
 * sequence that is invalid in the charset becomes U+FFFD, as does every
 * byte over 0x7f when the charset is unknown. With lf, CRLF becomes LF.
 * NUL bytes are kept.
 */
void mime_to_utf8(struct strbuf *out, const char *charset, const char *in,
		  size_t len, bool lf);

/*
 * Decodes the RFC 2047 encoded words of a header value
 * ("=?ISO-8859-1?Q?Caf=E9?=") into UTF-8; white space between two
 * encoded words is dropped; the rest is taken as UTF-8 (invalid bytes
 * become U+FFFD). Control characters are kept (callers decide).
 */
void mime_decode_words(struct strbuf *out, const char *in, size_t len);

/* One parameter of a Content-Type or Content-Disposition, as the
 * server gives it (borrowed). */
struct mime_param {
	const char *name;
	const char *value;
};

/*
 * The value of parameter `name` in UTF-8, malloc'd, or NULL when absent
 * (or out of memory): RFC 2231 (name*=charset'lang'%XX..., continuations
 * name*0, name*1*, ... in order), else name= with RFC 2047 words
 * decoded. Names compare without case. At most 64 continuations.
 */
char *mime_param(const struct mime_param *p, size_t n, const char *name);

/* The longest file name mime_safe_name() makes, in bytes. */
#define MIME_NAME_MAX 255
/*
 * Appends name (UTF-8) made safe as one directory entry: '/', control
 * characters and DEL become '_', "." and ".." become "_" and "__",
 * a name over MIME_NAME_MAX bytes is cut at a character boundary
 * (keeping an extension of up to 16 bytes). An empty result stays
 * empty (the caller names the part otherwise).
 */
void mime_safe_name(struct strbuf *out, const char *name);

#endif
