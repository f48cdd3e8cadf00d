// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * msgstruct: BODYSTRUCTURE and ENVELOPE into C, and part names; see
 * msgstruct.h.
 *
 * A body is a list: a multipart one starts with the lists of its parts,
 * followed by its subtype and extension data; a single part is
 * (type subtype (params) id description encoding size ...), with the
 * line count after a text part, the envelope, body and line count after
 * a message/rfc822 part, then MD5, (disposition (params)), language and
 * location, each of which may be missing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grow.h"
#include "imap_parse.h"
#include "mime.h"
#include "msgstruct.h"

/* The most parameters of one part taken into account. */
#define MSGSTRUCT_MAX_PARAMS 128

/* The parse in progress. */
struct msgstruct_build {
	struct msgstruct *ms;
	size_t cap;
	bool nomem;
};

/* Copies a string or atom token into buf (size bytes), lower-cased and
 * cut; "" for anything else. */
static void msgstruct_lower(const struct imap_tok *t, char *buf, size_t size)
{
	size_t len = 0, i;
	const char *s = t ? imap_parse_tok_str(t, &len) : NULL;

	if (!s || t->type == IMAP_TOK_LIST)
		len = 0;
	if (len >= size)
		len = size - 1;
	for (i = 0; i < len; i++) {
		char c = s[i];

		buf[i] = (c >= 'A' && c <= 'Z')
				 ? (char)(c + 32)
				 : ((unsigned char)c < 0x20 ? '_' : c);
	}
	buf[len] = '\0';
}

/* A string token as a C string (NUL-free part), or NULL. */
static const char *msgstruct_str(const struct imap_tok *t)
{
	if (!t || (t->type != IMAP_TOK_STRING && t->type != IMAP_TOK_ATOM))
		return NULL;
	return t->str;
}

/* Collects a parameter list ("name" "value" ...) as mime_params,
 * pointing into the tokens. Returns the count. */
static size_t msgstruct_params(const struct imap_tok *l, struct mime_param *p,
			       size_t max)
{
	size_t i, n = 0;

	if (!l || l->type != IMAP_TOK_LIST)
		return 0;
	for (i = 0; i + 1 < l->n_items && n < max; i += 2) {
		p[n].name = msgstruct_str(&l->items[i]);
		p[n].value = msgstruct_str(&l->items[i + 1]);
		if (p[n].name)
			n++;
	}
	return n;
}

/* A new leaf at the end of the table, or NULL (full or no memory). */
static struct msgstruct_part *msgstruct_add(struct msgstruct_build *b,
					    const char *section)
{
	struct msgstruct *ms = b->ms;
	struct msgstruct_part *p;

	if (ms->n >= MSGSTRUCT_MAX_PARTS) {
		ms->truncated = true;
		return NULL;
	}
	p = grow_reserve(ms->parts, &b->cap, ms->n + 1, sizeof(*p));
	if (!p) {
		b->nomem = true;
		return NULL;
	}
	ms->parts = p;
	p = &ms->parts[ms->n++];
	memset(p, 0, sizeof(*p));
	snprintf(p->section, sizeof(p->section), "%s", section);
	return p;
}

/* The encoding named by a Content-Transfer-Encoding token. */
static enum msgstruct_enc msgstruct_enc(const struct imap_tok *t)
{
	char e[32];

	msgstruct_lower(t, e, sizeof(e));
	if (!*e || !strcmp(e, "7bit") || !strcmp(e, "8bit") ||
	    !strcmp(e, "binary"))
		return MSGSTRUCT_ENC_IDENTITY;
	if (!strcmp(e, "base64"))
		return MSGSTRUCT_ENC_BASE64;
	if (!strcmp(e, "quoted-printable"))
		return MSGSTRUCT_ENC_QP;
	return MSGSTRUCT_ENC_OTHER;
}

/* Takes the disposition ("attachment" ("filename" "x")) of a part. */
static void msgstruct_disposition(struct msgstruct_build *b,
				  struct msgstruct_part *p,
				  const struct imap_tok *d)
{
	struct mime_param params[MSGSTRUCT_MAX_PARAMS];
	char kind[32];
	size_t n;

	if (!d || d->type != IMAP_TOK_LIST || d->n_items < 1)
		return;
	msgstruct_lower(&d->items[0], kind, sizeof(kind));
	p->disp_attachment = !strcmp(kind, "attachment");
	if (d->n_items < 2)
		return;
	n = msgstruct_params(&d->items[1], params, MSGSTRUCT_MAX_PARAMS);
	free(p->filename);
	p->filename = mime_param(params, n, "filename");
}

/* Fills a leaf from a single-part body list l. */
static void msgstruct_leaf(struct msgstruct_build *b, const struct imap_tok *l,
			   const char *section)
{
	struct mime_param params[MSGSTRUCT_MAX_PARAMS];
	struct msgstruct_part *p = msgstruct_add(b, section);
	const struct imap_tok *it = l->items;
	size_t n, ext;

	if (!p)
		return;
	msgstruct_lower(&it[0], p->type, sizeof(p->type));
	if (l->n_items > 1)
		msgstruct_lower(&it[1], p->subtype, sizeof(p->subtype));
	n = l->n_items > 2
		    ? msgstruct_params(&it[2], params, MSGSTRUCT_MAX_PARAMS)
		    : 0;
	p->charset = mime_param(params, n, "charset");
	p->filename = mime_param(params, n, "name");
	p->enc =
		l->n_items > 5 ? msgstruct_enc(&it[5]) : MSGSTRUCT_ENC_IDENTITY;
	if (l->n_items > 6 && !imap_parse_tok_u64(&it[6], &p->size))
		p->size = 0;
	if (p->size > MSGSTRUCT_MAX_SIZE)
		p->size = MSGSTRUCT_MAX_SIZE;
	ext = 7;
	if (!strcmp(p->type, "text"))
		ext = 8;
	if (!strcmp(p->type, "message") &&
	    (!strcmp(p->subtype, "rfc822") || !strcmp(p->subtype, "global"))) {
		p->is_message = true;
		if (l->n_items > 8 && it[8].type == IMAP_TOK_LIST)
			ext = 10;
	}
	/* ext: MD5, then the disposition */
	if (l->n_items > ext + 1) {
		char *name = p->filename;

		p->filename = NULL;
		msgstruct_disposition(b, p, &it[ext + 1]);
		if (!p->filename)
			p->filename = name;
		else
			free(name);
	}
}

/* Parses body list l at section (the parent's prefix for multiparts). */
static int msgstruct_body(struct msgstruct_build *b, const struct imap_tok *l,
			  const char *section, unsigned depth)
{
	char sub[MSGSTRUCT_SECTION_MAX];
	size_t i;
	int rc, len;

	if (!l || l->type != IMAP_TOK_LIST || l->n_items < 1)
		return -EINVAL;
	if (depth >= MSGSTRUCT_MAX_DEPTH)
		return -EINVAL;
	if (l->items[0].type != IMAP_TOK_LIST) {
		msgstruct_leaf(b, l, *section ? section : "1");
		return b->nomem ? -ENOMEM : 0;
	}
	for (i = 0; i < l->n_items && l->items[i].type == IMAP_TOK_LIST; i++) {
		if (b->ms->truncated)
			return 0;
		len = snprintf(sub, sizeof(sub), "%s%s%zu", section,
			       *section ? "." : "", i + 1);
		if (len < 0 || (size_t)len >= sizeof(sub))
			return -EINVAL;
		rc = msgstruct_body(b, &l->items[i], sub, depth + 1);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Frees a structure and its parts. */
void msgstruct_free(struct msgstruct *ms)
{
	size_t i;

	if (!ms)
		return;
	for (i = 0; i < ms->n; i++) {
		free(ms->parts[i].charset);
		free(ms->parts[i].filename);
		free(ms->parts[i].name);
	}
	free(ms->parts);
	free(ms->header);
	free(ms);
}

/* BODYSTRUCTURE to C, then names (see msgstruct.h). */
int msgstruct_parse(const struct imap_tok *body, struct msgstruct **ms_r)
{
	struct msgstruct_build b = {0};
	int rc;

	*ms_r = NULL;
	b.ms = calloc(1, sizeof(*b.ms));
	if (!b.ms)
		return -ENOMEM;
	rc = msgstruct_body(&b, body, "", 0);
	if (rc == 0 && b.nomem)
		rc = -ENOMEM;
	if (rc == 0)
		rc = msgstruct_name_parts(b.ms);
	if (rc < 0) {
		msgstruct_free(b.ms);
		return rc;
	}
	*ms_r = b.ms;
	return 0;
}

/* The extension a part without a file name gets, from its type. */
static const char *msgstruct_ext(const struct msgstruct_part *p)
{
	static const struct {
		const char *type, *ext;
	} exts[] = {
		{"text/plain", ".txt"},
		{"text/html", ".html"},
		{"text/calendar", ".ics"},
		{"text/csv", ".csv"},
		{"text/xml", ".xml"},
		{"text/rfc822-headers", ".txt"},
		{"text/enriched", ".txt"},
		{"image/png", ".png"},
		{"image/jpeg", ".jpg"},
		{"image/gif", ".gif"},
		{"image/webp", ".webp"},
		{"image/svg+xml", ".svg"},
		{"application/pdf", ".pdf"},
		{"application/zip", ".zip"},
		{"application/json", ".json"},
		{"application/xml", ".xml"},
		{"application/gzip", ".gz"},
		{"application/pgp-signature", ".asc"},
		{"application/pgp-encrypted", ".asc"},
		{"application/pkcs7-signature", ".p7s"},
		{"application/ics", ".ics"},
		{"audio/mpeg", ".mp3"},
		{"video/mp4", ".mp4"},
		{"message/delivery-status", ".txt"},
		{"message/disposition-notification", ".txt"},
	};
	char full[sizeof(p->type) + sizeof(p->subtype) + 1];
	size_t i;

	if (p->is_message)
		return ".eml";
	snprintf(full, sizeof(full), "%s/%s", p->type, p->subtype);
	for (i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (!strcmp(full, exts[i].type))
			return exts[i].ext;
	if (!strcmp(p->type, "text"))
		return ".txt";
	return ".bin";
}

/* True when name is taken: a fixed name or an earlier part's. */
static bool msgstruct_taken(const struct msgstruct *ms, size_t upto,
			    const char *name)
{
	size_t i;

	if (!strcmp(name, "header") || !strcmp(name, "text") ||
	    !strcmp(name, "html"))
		return true;
	for (i = 0; i < upto; i++)
		if (ms->parts[i].name && !strcmp(ms->parts[i].name, name))
			return true;
	return false;
}

/* Gives name (malloc'd, safe) a "-N" suffix before its extension until
 * it is free among the first upto parts; returns the free name. */
static char *msgstruct_unique(const struct msgstruct *ms, size_t upto,
			      char *name)
{
	const char *dot;
	size_t stem, ext, cut;
	char suffix[16], *cand;
	unsigned k;

	if (!msgstruct_taken(ms, upto, name))
		return name;
	dot = strrchr(name, '.');
	if (!dot || dot == name || strlen(dot) > 16)
		dot = name + strlen(name);
	stem = (size_t)(dot - name);
	ext = strlen(dot);
	cand = malloc(MIME_NAME_MAX + 1);
	if (!cand) {
		free(name);
		return NULL;
	}
	for (k = 2;; k++) {
		snprintf(suffix, sizeof(suffix), "-%u", k);
		cut = stem;
		while (cut + strlen(suffix) + ext > MIME_NAME_MAX && cut > 0)
			cut--;
		while (cut > 0 && ((unsigned char)name[cut] & 0xc0) == 0x80)
			cut--;
		snprintf(cand, MIME_NAME_MAX + 1, "%.*s%s%s", (int)cut, name,
			 suffix, dot);
		if (!msgstruct_taken(ms, upto, cand))
			break;
	}
	free(name);
	return cand;
}

/* The safe file name of an attachment, malloc'd ("" if it has none). */
static char *msgstruct_file_name(const struct msgstruct_part *p)
{
	struct strbuf b = {0};

	if (p->filename)
		mime_safe_name(&b, p->filename);
	if (!b.len) {
		strbuf_reset(&b);
		strbuf_printf(&b, "part-%s%s", p->section, msgstruct_ext(p));
	}
	return strbuf_steal(&b);
}

/* Gives each part its .parts name (see msgstruct.h). */
int msgstruct_name_parts(struct msgstruct *ms)
{
	bool have_text = false, have_html = false;
	struct msgstruct_part *p;
	size_t i;

	for (i = 0; i < ms->n; i++) {
		p = &ms->parts[i];
		free(p->name);
		p->name = NULL;
		p->role = MSGSTRUCT_ATTACHMENT;
		if (!strcmp(p->type, "text") && !p->disp_attachment &&
		    !p->filename && !p->is_message) {
			if (!have_text && !strcmp(p->subtype, "plain")) {
				have_text = true;
				p->role = MSGSTRUCT_TEXT;
			} else if (!have_html && !strcmp(p->subtype, "html")) {
				have_html = true;
				p->role = MSGSTRUCT_HTML;
			}
		}
		if (p->role == MSGSTRUCT_TEXT)
			p->name = strdup("text");
		else if (p->role == MSGSTRUCT_HTML)
			p->name = strdup("html");
		else
			p->name = msgstruct_file_name(p);
		if (p->name && p->role == MSGSTRUCT_ATTACHMENT)
			p->name = msgstruct_unique(ms, i, p->name);
		if (!p->name)
			return -ENOMEM;
	}
	return 0;
}

/* A string field of an envelope or address: its bytes, or NULL. */
static const char *msgstruct_field(const struct imap_tok *t, size_t *len_r)
{
	*len_r = 0;
	if (!t || t->type != IMAP_TOK_STRING)
		return NULL;
	*len_r = t->len;
	return t->str;
}

/* Subject and first real From address of an ENVELOPE. */
bool msgstruct_envelope(const struct imap_tok *env,
			struct msgstruct_envelope *e)
{
	const struct imap_tok *from, *a, *pick = NULL;
	size_t i;

	memset(e, 0, sizeof(*e));
	if (!env || env->type != IMAP_TOK_LIST || env->n_items < 3)
		return false;
	e->subject = msgstruct_field(&env->items[1], &e->subject_len);
	from = &env->items[2];
	if (from->type != IMAP_TOK_LIST)
		return true;
	/* the first real address: groups are (NIL NIL name NIL) ...
	 * (NIL NIL NIL NIL) */
	for (i = 0; i < from->n_items && !pick; i++) {
		a = &from->items[i];
		if (a->type == IMAP_TOK_LIST && a->n_items >= 4 &&
		    a->items[2].type == IMAP_TOK_STRING &&
		    a->items[3].type == IMAP_TOK_STRING)
			pick = a;
	}
	if (!pick)
		return true;
	e->from_name = msgstruct_field(&pick->items[0], &e->from_name_len);
	e->from_mailbox =
		msgstruct_field(&pick->items[2], &e->from_mailbox_len);
	e->from_host = msgstruct_field(&pick->items[3], &e->from_host_len);
	return true;
}

/* Appends a field with every control character (C0, DEL) as a space. */
static void msgstruct_field_out(struct strbuf *out, const char *s, size_t len)
{
	size_t start = out->len, i;

	strbuf_append(out, s, len);
	if (strbuf_failed(out) || !out->data)
		return;
	for (i = start; i < out->len; i++)
		if ((unsigned char)out->data[i] < 0x20 || out->data[i] == 0x7f)
			out->data[i] = ' ';
}

/* Appends header text decoded (RFC 2047) and cleaned. */
static void msgstruct_decoded_out(struct strbuf *out, const char *s, size_t len)
{
	struct strbuf d = {0};

	mime_decode_words(&d, s ? s : "", s ? len : 0);
	msgstruct_field_out(out, d.data ? d.data : "", d.len);
	if (d.failed)
		out->failed = true;
	strbuf_free(&d);
}

/* One line of .summary (see msgstruct.h). */
void msgstruct_summary_line(struct strbuf *out, const char *name, time_t date,
			    const char *flags, uint64_t size,
			    const struct msgstruct_envelope *e)
{
	struct strbuf addr = {0};
	char when[32];
	struct tm tm;

	if (!gmtime_r(&date, &tm) ||
	    !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(when, sizeof(when), "1970-01-01T00:00:00Z");
	msgstruct_field_out(out, name, strlen(name));
	strbuf_printf(out, "\t%s\t", when);
	msgstruct_field_out(out, flags ? flags : "", flags ? strlen(flags) : 0);
	strbuf_printf(out, "\t%llu\t", (unsigned long long)size);
	if (e->from_mailbox) {
		strbuf_append(&addr, e->from_mailbox, e->from_mailbox_len);
		if (e->from_host) {
			strbuf_puts(&addr, "@");
			strbuf_append(&addr, e->from_host, e->from_host_len);
		}
	}
	if (e->from_name && e->from_name_len) {
		msgstruct_decoded_out(out, e->from_name, e->from_name_len);
		if (addr.len) {
			strbuf_puts(out, " <");
			msgstruct_decoded_out(out, addr.data, addr.len);
			strbuf_puts(out, ">");
		}
	} else if (addr.len) {
		msgstruct_decoded_out(out, addr.data, addr.len);
	}
	strbuf_puts(out, "\t");
	msgstruct_decoded_out(out, e->subject, e->subject_len);
	strbuf_puts(out, "\n");
	if (addr.failed)
		out->failed = true;
	strbuf_free(&addr);
}
