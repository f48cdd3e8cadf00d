// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_imap_session: one IMAP session (imap*.c) against a server whose
 * answers come from the fuzzer, over the fake network of fuzz_net.h.
 *
 * The server says a plausible greeting with capabilities first; the
 * first input byte picks which (see fuzz_imap_session_greeting()); the
 * rest of the input is everything the server sends after it, except
 * that from a marker on it is a compressed stream (COMPRESS=DEFLATE,
 * which the client asks for when the server offers it): after
 * "#DEFLATE#" the rest is deflated here, a sync flush after each line as
 * a server flushes each response, so that the session goes on through
 * the inflater; after "#RAWZ#" the rest goes as it is, arbitrary bytes
 * for the inflater to judge (fuzz_imap_session_script()). The client
 * then logs in and runs each operation a mount uses: LIST, LIST of one
 * mailbox, EXAMINE + UID FETCH 1:* together, SELECT, body FETCHes,
 * STORE, COPY, MOVE, EXPUNGE, APPEND, quota, NOOP and LOGOUT. Commands are tagged M1, M2, ... in that order. Each operation
 * runs whatever the previous one gave (a broken session fails at once).
 * The callbacks check what imap.h promises them; ASan and UBSan check
 * the rest, LeakSanitizer that a failed session frees everything.
 *
 * Kept apart from the other targets: the login API is expected to
 * change, and only this file would need to follow.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_net.h"
#include "imap.h"
#include "log.h"
#include "search.h"

#define ZLIB_CONST
#include <zlib.h>

/* The session's credential callback: the secret is its context. */
static int fuzz_imap_session_secret(void *ctx, char *buf, size_t len, char *err,
				    size_t errlen)
{
	(void)err;
	(void)errlen;
	snprintf(buf, len, "%s", (const char *)ctx);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every wait is short: a script never stalls (it ends in EOF), but a
 * full socket could. */
#define FUZZ_IMAP_SESSION_TIMEOUT_MS 100
/* The largest literal the client accepts, as a mount would set it. */
#define FUZZ_IMAP_SESSION_MAX_LITERAL (1024 * 1024)
/* The window of the body FETCHes. */
#define FUZZ_IMAP_SESSION_OFFSET 131072u
#define FUZZ_IMAP_SESSION_LEN 4096u

/* The markers of the compressed part of the input (see the top). */
#define FUZZ_IMAP_SESSION_DEFLATE "#DEFLATE#"
#define FUZZ_IMAP_SESSION_RAWZ "#RAWZ#"
#define FUZZ_IMAP_SESSION_DOVECOT "#DOVECOT#"

/* Stops the run, naming the promise that was broken. */
#define FUZZ_IMAP_SESSION_CHECK(cond)                                     \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "fuzz_imap_session: %s:%d: %s\n", \
				__FILE__, __LINE__, #cond);               \
			abort();                                          \
		}                                                         \
	} while (0)

/* What the message bodies asked for must come back as. */
struct fuzz_imap_session_fetch {
	uint64_t offset;
	uint64_t len;
};

/* The message APPEND sends, and how much of it was read. */
static const char fuzz_imap_session_msg[] =
	"From: a@example.org\r\nSubject: fuzz\r\n\r\nbody\r\n";

struct fuzz_imap_session_append {
	size_t pos;
};

/* Where read bytes are summed to, so that reading them is not
 * optimised away. */
static volatile unsigned char fuzz_imap_session_sink;

/* Reads every byte of a piece the session hands out, so that ASan sees
 * a length that runs past its buffer. */
static void fuzz_imap_session_touch(const char *p, size_t len)
{
	unsigned char sum = 0;
	size_t i;

	for (i = 0; i < len; i++)
		sum += (unsigned char)p[i];
	fuzz_imap_session_sink = sum;
}

/* Flags as the session hands them out: space separated, \Recent left
 * out, each a flag of the grammar (RFC 3501/9051: an atom, or "\" and
 * an atom), so that it can be written back as it reads. */
static void fuzz_imap_session_flags(const char *flags)
{
	const char *p = flags;
	size_t n, i;

	FUZZ_IMAP_SESSION_CHECK(flags != NULL);
	while (*p) {
		n = strcspn(p, " ");
		FUZZ_IMAP_SESSION_CHECK(n > 0);
		FUZZ_IMAP_SESSION_CHECK(n != 7 ||
					strncasecmp(p, "\\Recent", 7));
		i = p[0] == '\\';
		FUZZ_IMAP_SESSION_CHECK(i < n);
		for (; i < n; i++)
			FUZZ_IMAP_SESSION_CHECK((unsigned char)p[i] > 0x20 &&
						(unsigned char)p[i] < 0x7f &&
						!strchr("(){%*\"\\]", p[i]));
		p += n;
		if (*p)
			p++;
	}
}

/* A mailbox from LIST: a name that can be sent back in a command. */
static void fuzz_imap_session_list_cb(void *ctx,
				      const struct imap_list_entry *e)
{
	(void)ctx;
	FUZZ_IMAP_SESSION_CHECK(e->name != NULL && e->name[0] != '\0');
	FUZZ_IMAP_SESSION_CHECK(!strpbrk(e->name, "\r\n"));
}

/* One message of a listing. */
static void fuzz_imap_session_meta_cb(void *ctx, const struct imap_msg_meta *m)
{
	(void)ctx;
	FUZZ_IMAP_SESSION_CHECK(m->uid != 0);
	fuzz_imap_session_flags(m->flags);
	FUZZ_IMAP_SESSION_CHECK(m->size <= IMAP_MAX_MESSAGE);
	FUZZ_IMAP_SESSION_CHECK(m->msgid_hdr != NULL || m->msgid_len == 0);
	if (m->msgid_hdr)
		fuzz_imap_session_touch(m->msgid_hdr, m->msgid_len);
	/* A content identity: one the listing asked for, within RFC 8474's
	 * objectid (or digits for X-GM-MSGID). */
	FUZZ_IMAP_SESSION_CHECK(!m->oid == !m->oid_kind);
	if (m->oid) {
		size_t n = strlen(m->oid);

		FUZZ_IMAP_SESSION_CHECK(n > 0 && n <= IMAP_MAX_OBJECTID);
		FUZZ_IMAP_SESSION_CHECK(strspn(m->oid,
					       "abcdefghijklmnopqrstuvwxyz"
					       "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
					       "0123456789_-") == n);
	}
}

/* A piece of a body: where it was asked for, and never past the end of
 * what 64-bit offsets can say. */
static void fuzz_imap_session_body_cb(void *ctx, const struct imap_body_part *p)
{
	const struct fuzz_imap_session_fetch *f = ctx;

	FUZZ_IMAP_SESSION_CHECK(p->uid != 0);
	FUZZ_IMAP_SESSION_CHECK(p->data != NULL || p->len == 0);
	FUZZ_IMAP_SESSION_CHECK(p->offset == f->offset);
	FUZZ_IMAP_SESSION_CHECK(p->len <= UINT64_MAX - p->offset);
	if (p->data)
		fuzz_imap_session_touch(p->data, p->len);
}

/* APPEND's reader: the message, then the end. */
static long fuzz_imap_session_read(void *ctx, char *buf, size_t len)
{
	struct fuzz_imap_session_append *a = ctx;
	size_t left = sizeof(fuzz_imap_session_msg) - 1 - a->pos;

	if (len > left)
		len = left;
	memcpy(buf, fuzz_imap_session_msg + a->pos, len);
	a->pos += len;
	return (long)len;
}

/*
 * The greeting the server starts with. The bits of sel choose the
 * capabilities, so that each way of logging in and of sending literals
 * is reached: AUTH=PLAIN, SASL-IR, LITERAL+, UIDPLUS and MOVE,
 * CONDSTORE, SPECIAL-USE and LIST-EXTENDED, QUOTA UNSELECT APPENDLIMIT;
 * the top bit leaves the capabilities out of the greeting (the client
 * then asks with CAPABILITY) and makes the password need a literal.
 */
static size_t fuzz_imap_session_greeting(unsigned sel, bool dovecot, char *buf,
					 size_t size)
{
	static const char *const caps[] = {
		" AUTH=PLAIN",
		" SASL-IR",
		" LITERAL+",
		" UIDPLUS MOVE",
		" CONDSTORE QRESYNC ESEARCH",
		" SPECIAL-USE LIST-EXTENDED LIST-STATUS NOTIFY",
		" QUOTA UNSELECT APPENDLIMIT=1000",
	};
	size_t i, n;

	if (sel & 0x80)
		return (size_t)snprintf(buf, size, "* OK fuzz ready\r\n");
	n = (size_t)snprintf(buf, size, "* OK [CAPABILITY IMAP4rev1");
	for (i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		if (sel & (1u << i))
			n += (size_t)snprintf(buf + n, size - n, "%s", caps[i]);
	n += (size_t)snprintf(buf + n, size - n, "] %s ready\r\n",
			      dovecot ? "Dovecot" : "fuzz");
	return n;
}

/* UID SEARCH of one mailbox, and of three pipelined: whatever the
 * server sends, a result is bounded and ascending without repeats. */
static void fuzz_imap_session_search(struct imap_session *s)
{
	static const char *const boxes[] = {"INBOX", "A", "B"};
	struct imap_search_result one, many[3];
	struct search_query *q;
	char err[128];
	size_t i, j;

	if (search_parse("OR SUBJECT Gr\xc3\xbc\xc3\x9f UID 1:5,9", &q, err,
			 sizeof(err)) < 0)
		return;
	if (imap_search_uid(s, q, 1000, &one) == 0) {
		FUZZ_IMAP_SESSION_CHECK(one.n <= 1000);
		for (j = 1; j < one.n; j++)
			FUZZ_IMAP_SESSION_CHECK(one.uids[j - 1] < one.uids[j]);
		imap_search_result_clear(&one);
	}
	imap_search_mailboxes(s, boxes, 3, q, 1000, many);
	for (i = 0; i < 3; i++) {
		FUZZ_IMAP_SESSION_CHECK(many[i].n <= 1000);
		for (j = 1; j < many[i].n; j++)
			FUZZ_IMAP_SESSION_CHECK(many[i].uids[j - 1] <
						many[i].uids[j]);
		imap_search_result_clear(&many[i]);
	}
	search_free(q);
}

static void fuzz_imap_session_meta_i(void *ctx, size_t i,
				     const struct imap_msg_meta *m)
{
	(void)i;
	fuzz_imap_session_meta_cb(ctx, m);
}

static void fuzz_imap_session_many_done(void *ctx, size_t i, int rc,
					const struct imap_mailbox *mb)
{
	(void)ctx;
	FUZZ_IMAP_SESSION_CHECK(i < 3);
	(void)rc;
	(void)mb;
}

static void fuzz_imap_session_flags_cb(void *ctx, uint32_t uid,
				       const char *flags)
{
	(void)ctx;
	FUZZ_IMAP_SESSION_CHECK(uid != 0 && flags != NULL);
}

static void fuzz_imap_session_range_cb(void *ctx, uint32_t lo, uint32_t hi)
{
	(void)ctx;
	FUZZ_IMAP_SESSION_CHECK(lo != 0 && lo <= hi);
}

static void fuzz_imap_session_status_cb(void *ctx, const char *mailbox)
{
	(void)ctx;
	FUZZ_IMAP_SESSION_CHECK(mailbox != NULL);
}

/* Resync (whichever way the capabilities allow), first listings of
 * several mailboxes in one pipeline, and NOTIFY: every report is sane
 * whatever the server sends. */
static void fuzz_imap_session_resync(struct imap_session *s)
{
	static const char *const boxes[] = {"INBOX", "A", "B"};
	static const struct imap_resync_ops ops = {
		.meta = fuzz_imap_session_meta_cb,
		.flags = fuzz_imap_session_flags_cb,
		.vanished = fuzz_imap_session_range_cb,
		.present = fuzz_imap_session_range_cb,
	};
	struct imap_resync_state st = {5, 8, 3, 100};
	enum imap_resync_how how;
	struct imap_mailbox mb;
	bool present;

	imap_sync_resync(s, "INBOX", &st, &ops, NULL, &mb, &how, &present);
	st.modseq = 0;
	imap_sync_resync(s, "A", &st, &ops, NULL, &mb, &how, &present);
	imap_sync_list_many(s, boxes, 3, fuzz_imap_session_meta_i,
			    fuzz_imap_session_many_done, NULL);
	imap_push_notify_set(s, fuzz_imap_session_status_cb, NULL);
}

/* Runs the operations of a mount, one after the other, on the session. */
static void fuzz_imap_session_run(struct imap_session *s)
{
	struct fuzz_imap_session_fetch f0 = {0, FUZZ_IMAP_SESSION_LEN};
	struct fuzz_imap_session_fetch f1 = {FUZZ_IMAP_SESSION_OFFSET,
					     FUZZ_IMAP_SESSION_LEN};
	struct fuzz_imap_session_append ap = {0};
	struct imap_mailbox mb;
	uint64_t used, limit;
	uint32_t uid, uidv;
	unsigned attrs;
	char *flags = NULL;
	bool stale;

	imap_mailbox_list(s, fuzz_imap_session_list_cb, NULL);
	imap_mailbox_attrs(s, "INBOX", &attrs);
	imap_sync_list(s, "INBOX", fuzz_imap_session_meta_cb, NULL, &mb);
	imap_mailbox_select(s, "INBOX", false, true, &mb);
	imap_fetch_body(s, "1:3", f0.offset, f0.len, fuzz_imap_session_body_cb,
			&f0);
	imap_fetch_body(s, "7", f1.offset, f1.len, fuzz_imap_session_body_cb,
			&f1);
	imap_fetch_examine_body(s, "Archive", 42, "2:4", f0.offset, f0.len,
				fuzz_imap_session_body_cb, &f0, &stale);
	(void)imap_write_flag_allowed(s, "\\Seen");
	(void)imap_write_flag_allowed(s, "$Junk");
	if (imap_write_flags(s, 1, "\\Seen \\Flagged", &flags) == 0 && flags)
		fuzz_imap_session_flags(flags);
	free(flags);
	imap_write_copy(s, 1, "Trash", false, &uid, &uidv);
	imap_write_copy(s, 2, "Archive", true, &uid, &uidv);
	imap_write_expunge(s, 3);
	imap_write_append(s, "INBOX", "\\Seen", 1700000000,
			  sizeof(fuzz_imap_session_msg) - 1,
			  fuzz_imap_session_read, &ap, &uid, &uidv);
	imap_quota(s, &used, &limit);
	imap_noop(s);
	fuzz_imap_session_search(s);
	fuzz_imap_session_resync(s);
	(void)imap_mailbox_selected(s);
	imap_mailbox_create(s, "New");
	imap_mailbox_rename(s, "INBOX", "Old");
	imap_mailbox_delete(s, "Old");
	imap_mailbox_unselect(s);
}

/*
 * Raw-deflates n bytes at p onto the end of out (*len bytes so far, *cap
 * allocated; grown as needed), a sync flush after every line. Returns
 * false when out of memory (out is still the caller's to free).
 */
static bool fuzz_imap_session_deflate(const uint8_t *p, size_t n,
				      unsigned char **out, size_t *len,
				      size_t *cap)
{
	z_stream z = {0};
	const uint8_t *end = p + n, *lf;
	unsigned char *grown;
	bool ok = true;

	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return false;
	while (ok && p < end) {
		lf = memchr(p, '\n', (size_t)(end - p));
		z.next_in = p;
		z.avail_in =
			(uInt)(lf ? (size_t)(lf + 1 - p) : (size_t)(end - p));
		p += z.avail_in;
		do {
			if (*cap - *len < 64) {
				grown = realloc(*out, *cap * 2);
				if (!grown) {
					ok = false;
					break;
				}
				*out = grown;
				*cap *= 2;
			}
			z.next_out = *out + *len;
			z.avail_out = (uInt)(*cap - *len);
			deflate(&z, Z_SYNC_FLUSH);
			*len = *cap - z.avail_out;
		} while (z.avail_in > 0 || z.avail_out == 0);
	}
	deflateEnd(&z);
	return ok;
}

/* fuzz_imap_session_script() past the #DOVECOT# marker: data[0] is
 * unused (sel is given). */
static unsigned char *fuzz_imap_session_build(uint8_t sel, bool dovecot,
					      const uint8_t *data, size_t size,
					      size_t *len_r)
{
	static const char def[] = FUZZ_IMAP_SESSION_DEFLATE;
	static const char raw[] = FUZZ_IMAP_SESSION_RAWZ;
	const uint8_t *d = memmem(data + 1, size - 1, def, sizeof(def) - 1);
	const uint8_t *r = memmem(data + 1, size - 1, raw, sizeof(raw) - 1);
	size_t cap = 256 + 2 * size, len, plain;
	unsigned char *out = malloc(cap);

	if (!out)
		return NULL;
	len = fuzz_imap_session_greeting(sel, dovecot, (char *)out, 256);
	if (d && (!r || d < r)) {
		plain = (size_t)(d - data) - 1;
		memcpy(out + len, data + 1, plain);
		len += plain;
		d += sizeof(def) - 1;
		if (!fuzz_imap_session_deflate(d, (size_t)(data + size - d),
					       &out, &len, &cap)) {
			free(out);
			return NULL;
		}
	} else {
		/* #RAWZ# itself goes nowhere: the bytes after it follow
		 * the plain part directly. */
		plain = r ? (size_t)(r - data) - 1 : size - 1;
		memcpy(out + len, data + 1, plain);
		len += plain;
		if (r) {
			r += sizeof(raw) - 1;
			memcpy(out + len, r, (size_t)(data + size - r));
			len += (size_t)(data + size - r);
		}
	}
	*len_r = len;
	return out;
}

/*
 * What the server sends: the greeting sel picks, then the input up to a
 * marker as it is, then the rest deflated (#DEFLATE#) or as it is
 * (#RAWZ#). Input that starts with #DOVECOT# (after sel; the marker goes
 * nowhere) makes the greeting Dovecot's, so that the folder list goes
 * with the login (imap_open_listing()). Returns the script (to free)
 * with its length in *len_r, or NULL when out of memory.
 */
static unsigned char *fuzz_imap_session_script(const uint8_t *data, size_t size,
					       size_t *len_r)
{
	static const char dv[] = FUZZ_IMAP_SESSION_DOVECOT;
	bool dovecot = size > sizeof(dv) - 1 &&
		       memcmp(data + 1, dv, sizeof(dv) - 1) == 0;
	uint8_t sel = data[0];

	if (dovecot) {
		data += sizeof(dv) - 1;
		size -= sizeof(dv) - 1;
	}
	return fuzz_imap_session_build(sel, dovecot, data, size, len_r);
}

/* A folder of the list that went with the login: a name, always. */
static void fuzz_imap_session_listed(void *ctx, const struct imap_list_entry *e)
{
	FUZZ_IMAP_SESSION_CHECK(e->name != NULL);
	(*(size_t *)ctx)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_config cfg = {
		.host = "fuzz.invalid",
		.port = "143",
		.user = "user",
		.credential = {fuzz_imap_session_secret, (void *)"secret"},
		.tls = IMAP_TLS_NONE,
		.timeout_ms = FUZZ_IMAP_SESSION_TIMEOUT_MS,
		.max_literal = FUZZ_IMAP_SESSION_MAX_LITERAL,
		.compress = true,
	};
	struct imap_session *s = NULL;
	struct imap_error err;
	unsigned char *script;
	size_t n, listed_n = 0;
	bool listed;

	if (size == 0)
		return 0;
	/* The trace is always built (that code sees every response too);
	 * FUZZ_TRACE=1 shows it, to check what a seed reaches. */
	cfg.trace = true;
	if (getenv("FUZZ_TRACE"))
		log_init(true);
	script = fuzz_imap_session_script(data, size, &n);
	if (!script)
		return 0;
	if (data[0] & 0x80)
		cfg.credential.ctx = (void *)"s\xc3\xa9\"cret"; /* 8-bit */
	if (fuzz_net_script(script, n) < 0) {
		free(script);
		return 0;
	}
	free(script);
	if (imap_open_listing(&cfg, &s, &err, fuzz_imap_session_listed,
			      &listed_n, &listed) == 0) {
		FUZZ_IMAP_SESSION_CHECK(s != NULL);
		fuzz_imap_session_run(s);
		imap_close(s);
	} else {
		FUZZ_IMAP_SESSION_CHECK(err.kind != IMAP_ERR_NONE);
		FUZZ_IMAP_SESSION_CHECK(
			memchr(err.text, '\0', sizeof(err.text)) != NULL);
	}
	fuzz_net_end();
	return 0;
}
