// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * imap_fetch: message contents: pieces of bodies (BODY.PEEK[]<o.l>) on
 * the selected mailbox or on one examined in the same write, for one
 * mailbox or many, and UID FETCH of items the caller reads itself. See
 * imap.h for the contract.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"
#include "imap_parse.h"
#include "imap_priv.h"
#include "strbuf.h"

/* Context of UID FETCH for bodies. */
struct imap_fetch_body_ctx {
	void (*cb)(void *ctx, const struct imap_body_part *p);
	void *ctx;
	uint64_t offset; /* asked for: every piece must start there */
	bool bad; /* a piece started elsewhere, or its end would wrap */
	bool drop; /* pieces of another UIDVALIDITY: not handed on */
};

/*
 * Parses what follows "BODY[]" in a FETCH item: "<origin>" in decimal
 * digits only (no sign, no blanks, no overflow; strtoull would take
 * "<-1>" as 2^64 - 1), or nothing for a piece from the start. False
 * for anything else.
 */
static bool imap_fetch_body_origin(const char *o, uint64_t *off_r)
{
	uint64_t n = 0;
	unsigned d;

	if (*o == '\0') {
		*off_r = 0;
		return true;
	}
	if (*o++ != '<' || *o < '0' || *o > '9')
		return false;
	for (; *o >= '0' && *o <= '9'; o++) {
		d = (unsigned)(*o - '0');
		if (n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	if (o[0] != '>' || o[1] != '\0')
		return false;
	*off_r = n;
	return true;
}

/* Takes "* N FETCH (UID u BODY[]<off> data)"; items may come in any
 * order. A NIL body means the message is gone. A piece that does not
 * start where it was asked for (RFC 3501 6.4.5: the origin is the one
 * asked), or whose end does not fit in 64 bits, is refused: its bytes
 * would land at the wrong place of the file. */
static bool imap_fetch_body_handler(void *ctx, struct imap_session *s,
				    const struct imap_resp *r)
{
	struct imap_fetch_body_ctx *bc = ctx;
	const struct imap_tok *l = imap_resp_fetch_items(r);
	struct imap_body_part p = {0};
	bool have_body = false;
	size_t i;

	if (!l)
		return false;
	for (i = 0; i + 1 < l->n_items; i += 2) {
		const struct imap_tok *k = &l->items[i], *v = &l->items[i + 1];

		if (imap_parse_tok_is(k, "UID")) {
			imap_parse_tok_u32(v, &p.uid);
		} else if (k->type == IMAP_TOK_ATOM && k->len >= 6 &&
			   strncasecmp(k->str, "BODY[]", 6) == 0) {
			if (!imap_fetch_body_origin(k->str + 6, &p.offset) ||
			    p.offset != bc->offset ||
			    (v->type == IMAP_TOK_STRING &&
			     v->len > UINT64_MAX - p.offset)) {
				bc->bad = true;
				return true;
			}
			/* Dovecot answers NIL for a message expunged
			 * meanwhile: that is no data, not an empty body. */
			if (v->type != IMAP_TOK_STRING)
				return true;
			p.data = v->str;
			p.len = v->len;
			have_body = true;
		}
	}
	if (p.uid == 0 || !have_body)
		return false;
	if (!bc->drop)
		bc->cb(bc->ctx, &p);
	return true;
}

/* Builds "UID FETCH uids (BODY.PEEK[]<offset.len>)" into cmd; -1 (with
 * the session's error) for a malformed set or no memory. */
static int imap_fetch_body_cmd(struct imap_session *s, const char *uids,
			       uint64_t offset, uint64_t len,
			       struct strbuf *cmd)
{
	if (!*uids || strspn(uids, "0123456789:,") != strlen(uids)) {
		imap_set_err(s, IMAP_ERR_BAD, EINVAL, "bad UID set");
		return -1;
	}
	strbuf_printf(cmd, "UID FETCH %s (BODY.PEEK[]<%llu.%llu>)", uids,
		      (unsigned long long)offset, (unsigned long long)len);
	if (strbuf_failed(cmd)) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	return 0;
}

/* After a body FETCH: a server that misplaced bytes is not to be
 * trusted with the next command either (the stream is in step). */
static int imap_fetch_body_done(struct imap_session *s,
				const struct imap_fetch_body_ctx *bc, int rc)
{
	if (bc->bad && imap_usable(s)) {
		imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
			     "%s sent a body piece that does not start at "
			     "byte %llu as asked",
			     s->cfg->host, (unsigned long long)bc->offset);
		rc = -1;
	}
	return rc;
}

/* UID FETCH of a piece of bodies on the selected mailbox. */
int imap_fetch_body(struct imap_session *s, const char *uids, uint64_t offset,
		    uint64_t len,
		    void (*cb)(void *ctx, const struct imap_body_part *p),
		    void *ctx)
{
	struct imap_fetch_body_ctx bc = {cb, ctx, offset, false, false};
	struct strbuf cmd = {0};
	int rc;

	rc = imap_fetch_body_cmd(s, uids, offset, len, &cmd);
	if (rc == 0)
		rc = imap_run(s, cmd.data, imap_fetch_body_handler, &bc);
	strbuf_free(&cmd);
	return imap_fetch_body_done(s, &bc, rc);
}

/*
 * EXAMINE mailbox and the body FETCH in one write, so that a session
 * that had another mailbox selected costs one round trip, not two. The
 * EXAMINE's answer comes before any of the FETCH's, so its UIDVALIDITY
 * is known before a single piece is handed on: under another one, the
 * UIDs name other messages, and their pieces are dropped. A failed
 * EXAMINE leaves no mailbox selected, so the FETCH then fails too and
 * sends nothing.
 */
int imap_fetch_examine_body(struct imap_session *s, const char *mailbox,
			    uint32_t uidvalidity, const char *uids,
			    uint64_t offset, uint64_t len,
			    void (*cb)(void *ctx,
				       const struct imap_body_part *p),
			    void *ctx, bool *stale_r)
{
	struct imap_fetch_body_ctx bc = {cb, ctx, offset, false, false};
	struct strbuf ex = {0}, cmd = {0};
	struct imap_cmd c[2] = {{.h = NULL},
				{.h = imap_fetch_body_handler, .ctx = &bc}};
	struct imap_mailbox mb;
	int rc = -1;

	*stale_r = false;
	if (imap_fetch_body_cmd(s, uids, offset, len, &cmd) < 0 ||
	    imap_mailbox_select_begin(s, mailbox, true, &ex) < 0)
		goto out;
	c[0].text = ex.data;
	c[1].text = cmd.data;
	if (imap_cmd_send(s, c, 2) < 0)
		goto out;
	if (imap_cmd_finish(s, c, 1) == 0 &&
	    imap_mailbox_select_end(s, mailbox, true, &mb) == 0 &&
	    mb.uidvalidity != uidvalidity) {
		*stale_r = true;
		bc.drop = true;
	}
	rc = c[0].rc;
	if (imap_cmd_finish(s, c + 1, 1) < 0 && rc == 0)
		rc = -1;
	if (c[0].rc < 0)
		s->err = c[0].err; /* why the FETCH failed too */
	rc = imap_fetch_body_done(s, &bc, rc);
out:
	strbuf_free(&ex);
	strbuf_free(&cmd);
	return rc;
}

/* Finishes request i of imap_fetch_examine_body_many(): its EXAMINE
 * and FETCH (c[0], c[1]), each request with its own result, as
 * imap_fetch_examine_body() does for one. */
static void imap_fetch_body_many_finish(struct imap_session *s,
					struct imap_body_req *r,
					struct imap_fetch_body_ctx *bc,
					struct imap_cmd *c)
{
	struct imap_mailbox mb;

	r->stale = false;
	if (imap_cmd_finish(s, c, 1) == 0 &&
	    imap_mailbox_select_end(s, r->mailbox, true, &mb) == 0 &&
	    mb.uidvalidity != r->uidvalidity) {
		r->stale = true;
		bc->drop = true;
	}
	r->rc = c[0].rc;
	if (imap_cmd_finish(s, c + 1, 1) < 0 && r->rc == 0)
		r->rc = -1;
	r->rc = imap_fetch_body_done(s, bc, r->rc);
	r->err = c[0].rc < 0 ? c[0].err : s->err;
}

/* EXAMINE and body FETCH of n mailboxes in one write. */
int imap_fetch_examine_body_many(struct imap_session *s,
				 struct imap_body_req *r, size_t n)
{
	struct imap_fetch_body_ctx *bc = calloc(n ? n : 1, sizeof(*bc));
	struct strbuf *cmd = calloc(2 * n + 1, sizeof(*cmd));
	struct imap_cmd *c = calloc(2 * n + 1, sizeof(*c));
	size_t i;
	int rc = -1;

	if (!bc || !cmd || !c) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		bc[i] = (struct imap_fetch_body_ctx){r[i].cb, r[i].ctx,
						     r[i].offset, false, false};
		if (imap_fetch_body_cmd(s, r[i].uids, r[i].offset, r[i].len,
					&cmd[2 * i + 1]) < 0 ||
		    imap_mailbox_select_begin(s, r[i].mailbox, true,
					      &cmd[2 * i]) < 0)
			goto out;
		c[2 * i].text = cmd[2 * i].data;
		c[2 * i + 1] = (struct imap_cmd){.text = cmd[2 * i + 1].data,
						 .h = imap_fetch_body_handler,
						 .ctx = &bc[i]};
	}
	if (imap_cmd_send(s, c, 2 * n) < 0)
		goto out;
	/* Each mailbox's pieces are handed on as they come. */
	for (i = 0; i < n; i++) {
		if (i > 0)
			imap_mailbox_select_forget(s, true);
		imap_fetch_body_many_finish(s, &r[i], &bc[i], c + 2 * i);
	}
	rc = imap_usable(s) ? 0 : -1;
out:
	for (i = 0; cmd && i < 2 * n; i++)
		strbuf_free(&cmd[i]);
	free(bc);
	free(cmd);
	free(c);
	return rc;
}

/* Context of imap_fetch_items(). */
struct imap_fetch_items_ctx {
	bool (*cb)(void *ctx, uint32_t uid, const struct imap_tok *items);
	void *ctx;
};

/* Hands "* N FETCH (... UID u ...)" to the caller's callback. */
static bool imap_fetch_items_handler(void *ctx, struct imap_session *s,
				     const struct imap_resp *r)
{
	struct imap_fetch_items_ctx *ic = ctx;
	const struct imap_tok *l = imap_resp_fetch_items(r);
	uint32_t uid = 0;
	size_t i;

	if (!l)
		return false;
	for (i = 0; i + 1 < l->n_items; i += 2)
		if (imap_parse_tok_is(&l->items[i], "UID"))
			imap_parse_tok_u32(&l->items[i + 1], &uid);
	if (uid == 0)
		return false;
	return ic->cb(ic->ctx, uid, l);
}

/* UID FETCH of items the caller reads, checked to be harmless. */
int imap_fetch_items(struct imap_session *s, const char *set, const char *items,
		     bool (*cb)(void *ctx, uint32_t uid,
				const struct imap_tok *items),
		     void *ctx)
{
	struct imap_fetch_items_ctx ic = {cb, ctx};
	struct strbuf cmd = {0};
	int rc;

	if (!*set || strspn(set, "0123456789:,*") != strlen(set) || !*items ||
	    strspn(items, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			  "0123456789.[]<> ()-") != strlen(items)) {
		imap_set_err(s, IMAP_ERR_BAD, EINVAL, "bad UID FETCH");
		return -1;
	}
	strbuf_printf(&cmd, "UID FETCH %s (UID %s)", set, items);
	if (strbuf_failed(&cmd)) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		rc = -1;
	} else {
		rc = imap_run(s, cmd.data, imap_fetch_items_handler, &ic);
	}
	strbuf_free(&cmd);
	return rc;
}
