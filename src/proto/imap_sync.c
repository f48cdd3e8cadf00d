// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * imap_sync: what a mailbox holds: first listings (EXAMINE and UID FETCH
 * 1:* in one write, for one mailbox or many) and resyncs of an earlier
 * listing (QRESYNC, CONDSTORE or every message's flags). See imap.h for
 * the contract.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"
#include "imap_parse.h"
#include "imap_priv.h"
#include "log.h"
#include "strbuf.h"

/* What a listing asks of each message: what stat shows, the
 * Message-ID that message names are made of (names.h), and the content
 * identity where the server gives one (imap_oid_kind()). */
#define IMAP_META_ITEMS_WITH(oid)                  \
	"(UID FLAGS RFC822.SIZE INTERNALDATE " oid \
	"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
#define IMAP_META_FETCH "UID FETCH 1:* "

/* The FETCH items of a listing on this session (static text). */
static const char *imap_sync_meta_items(const struct imap_session *s)
{
	if (s->caps & IMAP_CAP_OBJECTID)
		return IMAP_META_ITEMS_WITH("EMAILID ");
	if (s->caps & IMAP_CAP_X_GM_EXT_1)
		return IMAP_META_ITEMS_WITH("X-GM-MSGID ");
	return IMAP_META_ITEMS_WITH("");
}

/* The FETCH of a whole listing on this session (static text). */
static const char *imap_sync_meta_fetch(const struct imap_session *s)
{
	if (s->caps & IMAP_CAP_OBJECTID)
		return IMAP_META_FETCH IMAP_META_ITEMS_WITH("EMAILID ");
	if (s->caps & IMAP_CAP_X_GM_EXT_1)
		return IMAP_META_FETCH IMAP_META_ITEMS_WITH("X-GM-MSGID ");
	return IMAP_META_FETCH IMAP_META_ITEMS_WITH("");
}

/* Context of UID FETCH for metadata. */
struct imap_sync_meta_ctx {
	void (*cb)(void *ctx, const struct imap_msg_meta *m);
	void *ctx;
	struct strbuf flags;
	char oid[IMAP_MAX_OBJECTID + 1]; /* the last message's identity */
};

/* What imap_sync_meta_parse() found in a FETCH response. */
enum imap_meta_have {
	IMAP_META_UID = 1u << 0,
	IMAP_META_FLAGS = 1u << 1,
	IMAP_META_SIZE = 1u << 2,
	IMAP_META_DATE = 1u << 3,
	IMAP_META_ALL = 15u,
};

/*
 * Reads a content identity (the item's value v) into oid (room for
 * IMAP_MAX_OBJECTID + 1): for "EMAILID", RFC 8474's "(objectid)", 1 to
 * 255 of ALPHA, DIGIT, "_" and "-"; for "X-GM-MSGID", a number of up to
 * 20 digits. False (and oid empty) for anything else.
 */
static bool imap_sync_oid_parse(const char *kind, const struct imap_tok *v,
				char *oid)
{
	const struct imap_tok *id = v;
	bool gm = strcmp(kind, "X-GM-MSGID") == 0;
	size_t i;

	oid[0] = '\0';
	if (!gm) {
		if (v->type != IMAP_TOK_LIST || v->n_items != 1)
			return false;
		id = &v->items[0];
	}
	if (id->type != IMAP_TOK_ATOM || id->len == 0 ||
	    id->len > (gm ? 20 : IMAP_MAX_OBJECTID))
		return false;
	for (i = 0; i < id->len; i++) {
		unsigned char c = (unsigned char)id->str[i];

		if (!(c >= '0' && c <= '9') &&
		    (gm || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     c == '_' || c == '-')))
			return false;
	}
	memcpy(oid, id->str, id->len);
	oid[id->len] = '\0';
	return true;
}

/*
 * Reads "* N FETCH (UID u FLAGS (..) RFC822.SIZE s INTERNALDATE d
 * BODY[HEADER.FIELDS (MESSAGE-ID)] h)", any item missing, into *m (its
 * flags in the buffer flags), with the content identity of kind
 * oid_kind (imap_oid_kind(); NULL: none asked) in the buffer oid.
 * Returns what it found (enum imap_meta_have), 0 when r is no FETCH
 * response.
 */
static unsigned imap_sync_meta_parse(struct strbuf *flags, char *oid,
				     const char *oid_kind,
				     const struct imap_resp *r,
				     struct imap_msg_meta *m)
{
	const struct imap_tok *l = imap_resp_fetch_items(r);
	unsigned have = 0;
	size_t i;

	memset(m, 0, sizeof(*m));
	if (!l)
		return 0;
	strbuf_reset(flags);
	for (i = 0; i + 1 < l->n_items; i += 2) {
		const struct imap_tok *k = &l->items[i], *v = &l->items[i + 1];

		if (imap_parse_tok_is(k, "UID")) {
			if (imap_parse_tok_u32(v, &m->uid) && m->uid)
				have |= IMAP_META_UID;
		} else if (imap_parse_tok_is(k, "RFC822.SIZE")) {
			/* A size beyond any real message is a lie: the
			 * bytes will tell (fsops corrects sizes). */
			if (imap_parse_tok_u64(v, &m->size))
				have |= IMAP_META_SIZE;
			if (m->size > IMAP_MAX_MESSAGE)
				m->size = IMAP_MAX_MESSAGE;
		} else if (imap_parse_tok_is(k, "INTERNALDATE")) {
			/* An unreadable date shows as 1970, rather than
			 * hiding the message. */
			if (v->type == IMAP_TOK_STRING)
				have |= IMAP_META_DATE;
			if (v->type != IMAP_TOK_STRING ||
			    !imap_date_parse(v->str, v->len, &m->date))
				m->date = 0;
		} else if (k->type == IMAP_TOK_ATOM && k->len > 18 &&
			   strncasecmp(k->str, "BODY[HEADER.FIELDS", 18) == 0) {
			m->msgid_hdr = imap_parse_tok_str(v, &m->msgid_len);
		} else if (oid_kind && imap_parse_tok_is(k, oid_kind)) {
			m->oid = imap_sync_oid_parse(oid_kind, v, oid) ? oid
								       : NULL;
			m->oid_kind = m->oid ? oid_kind : NULL;
		} else if (imap_parse_tok_is(k, "FLAGS") &&
			   v->type == IMAP_TOK_LIST) {
			have |= IMAP_META_FLAGS;
			imap_flags_take(flags, v);
		}
	}
	m->flags = strbuf_str(flags);
	return have;
}

/* Takes a FETCH response with every item of a listing; an unsolicited
 * flag update lacks size and date: not ours. */
static bool imap_sync_meta_handler(void *ctx, struct imap_session *s,
				   const struct imap_resp *r)
{
	struct imap_sync_meta_ctx *mc = ctx;
	struct imap_msg_meta m;

	if (imap_sync_meta_parse(&mc->flags, mc->oid, imap_oid_kind(s), r,
				 &m) != IMAP_META_ALL)
		return false;
	mc->cb(mc->ctx, &m);
	return true;
}

/* EXAMINE and the listing's UID FETCH 1:* in one write. */
int imap_sync_list(struct imap_session *s, const char *mailbox,
		   void (*cb)(void *ctx, const struct imap_msg_meta *m),
		   void *ctx, struct imap_mailbox *mb_r)
{
	struct imap_sync_meta_ctx mc = {cb, ctx, {0}, {0}};
	struct strbuf cmd = {0};
	struct imap_cmd c[2] = {
		{0},
		{.text = imap_sync_meta_fetch(s),
		 .h = imap_sync_meta_handler,
		 .ctx = &mc},
	};
	int rc = -1;

	if (imap_mailbox_select_begin(s, mailbox, true, &cmd) < 0)
		goto out;
	c[0].text = strbuf_str(&cmd);
	if (imap_cmd_send(s, c, 2) < 0)
		goto out;
	rc = imap_mailbox_examine_done(s, mailbox, c, 2, mb_r);
out:
	strbuf_free(&mc.flags);
	strbuf_free(&cmd);
	return rc;
}

/* Passes one mailbox's message on with its index (the context starts
 * with the imap_sync_meta_ctx, then cb, ctx and index). */
struct imap_sync_many_head {
	struct imap_sync_meta_ctx mc;
	void (*cb)(void *ctx, size_t i, const struct imap_msg_meta *m);
	void *ctx;
	size_t i;
};

/* Hands one mailbox's message on with the mailbox's index. */
static void imap_sync_many_meta(void *ctx, const struct imap_msg_meta *m)
{
	struct imap_sync_many_head *h = ctx;

	h->cb(h->ctx, h->i, m);
}

/* First listings of n mailboxes, all sent in one write. */
int imap_sync_list_many(struct imap_session *s, const char *const *mailboxes,
			size_t n,
			void (*cb)(void *ctx, size_t i,
				   const struct imap_msg_meta *m),
			void (*done)(void *ctx, size_t i, int rc,
				     const struct imap_mailbox *mb),
			void *ctx)
{
	struct imap_sync_many_head *mcs = NULL;
	struct strbuf *ex = NULL;
	struct imap_cmd *c = NULL;
	struct imap_mailbox mb;
	size_t i;
	int rc = -1;

	mcs = calloc(n, sizeof(*mcs));
	ex = calloc(n, sizeof(*ex));
	c = calloc(2 * n, sizeof(*c));
	if (!mcs || !ex || !c) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		strbuf_puts(&ex[i], "EXAMINE ");
		if (!imap_arg_mailbox(s, &ex[i], mailboxes[i]))
			ex[i].failed = true;
		if (s->caps & IMAP_CAP_CONDSTORE)
			strbuf_puts(&ex[i], " (CONDSTORE)");
		if (strbuf_failed(&ex[i])) {
			imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM,
				     "out of memory");
			goto out;
		}
		mcs[i].mc.cb = imap_sync_many_meta;
		mcs[i].mc.ctx = &mcs[i];
		mcs[i].cb = cb;
		mcs[i].ctx = ctx;
		mcs[i].i = i;
		c[2 * i] = (struct imap_cmd){.text = strbuf_str(&ex[i])};
		c[2 * i + 1] =
			(struct imap_cmd){.text = imap_sync_meta_fetch(s),
					  .h = imap_sync_meta_handler,
					  .ctx = &mcs[i].mc};
	}
	imap_mailbox_select_forget(s, true);
	if (imap_cmd_send(s, c, 2 * n) < 0)
		goto out;
	/* Each mailbox is done as soon as its two answers are in. */
	for (i = 0; i < n; i++) {
		int one = imap_mailbox_examine_done(s, mailboxes[i], c + 2 * i,
						    2, &mb);

		done(ctx, i, one < 0 ? -1 : 0, &mb);
		if (i + 1 < n)
			imap_mailbox_select_forget(s, true);
	}
	rc = imap_usable(s) ? 0 : -1;
out:
	for (i = 0; mcs && ex && i < n; i++) {
		strbuf_free(&mcs[i].mc.flags);
		strbuf_free(&ex[i]);
	}
	free(mcs);
	free(ex);
	free(c);
	return rc;
}

/* What a resync learns, passed on to its caller's callbacks. */
struct imap_sync_resync_ctx {
	const struct imap_resync_ops *ops;
	void *ctx;
	struct imap_session *s;
	uint32_t uidnext; /* messages from here on are new */
	uint32_t fresh; /* new messages seen */
	bool present; /* ops->present was called */
	struct strbuf flags;
	char oid[IMAP_MAX_OBJECTID + 1];
};

/* Reports UIDs lo..hi as expunged. */
static void imap_sync_vanished(void *ctx, uint32_t lo, uint32_t hi)
{
	struct imap_sync_resync_ctx *rc = ctx;

	rc->ops->vanished(rc->ctx, lo, hi);
}

/* Counts a live VANISHED (not EARLIER) against EXISTS. */
static void imap_sync_gone(void *ctx, uint32_t lo, uint32_t hi)
{
	struct imap_session *s = ctx;
	uint64_t n = (uint64_t)hi - lo + 1;

	s->mb.exists = n >= s->mb.exists ? 0 : s->mb.exists - (uint32_t)n;
}

/* Reports UIDs lo..hi as present. */
static void imap_sync_present(void *ctx, uint32_t lo, uint32_t hi)
{
	struct imap_sync_resync_ctx *rc = ctx;

	rc->present = true;
	rc->ops->present(rc->ctx, lo, hi);
}

/* "* VANISHED [(EARLIER)] uid-set": reported; a live one also counts
 * against EXISTS. */
static bool imap_sync_vanished_resp(struct imap_sync_resync_ctx *rc,
				    const struct imap_resp *r)
{
	const struct imap_tok *set = &r->toks[1];
	bool earlier = false;

	if (r->n_toks == 3 && set->type == IMAP_TOK_LIST && set->n_items == 1 &&
	    imap_parse_tok_is(&set->items[0], "EARLIER")) {
		earlier = true;
		set = &r->toks[2];
	} else if (r->n_toks != 2) {
		return false;
	}
	if (set->type != IMAP_TOK_ATOM ||
	    !imap_parse_uid_set(set->str, set->len, IMAP_MAX_UID_RANGES,
				imap_sync_vanished, rc)) {
		log_warnx("%s sent a VANISHED response that cannot be read",
			  rc->s->cfg->host);
		rc->s->changed = true;
		return true;
	}
	if (!earlier)
		imap_parse_uid_set(set->str, set->len, IMAP_MAX_UID_RANGES,
				   imap_sync_gone, rc->s);
	return true;
}

/* "* ESEARCH (TAG ..) UID ALL set" and "* SEARCH n n ..": the UIDs
 * that exist. */
static bool imap_sync_search_resp(struct imap_sync_resync_ctx *rc,
				  const struct imap_resp *r)
{
	size_t i;
	uint32_t uid;

	if (imap_parse_tok_is(&r->toks[0], "SEARCH")) {
		for (i = 1; i < r->n_toks; i++)
			if (imap_parse_tok_u32(&r->toks[i], &uid) && uid)
				imap_sync_present(rc, uid, uid);
		rc->present = true;
		return true;
	}
	rc->present = true;
	for (i = 1; i + 1 < r->n_toks; i++) {
		const struct imap_tok *v = &r->toks[i + 1];

		if (imap_parse_tok_is(&r->toks[i], "ALL") &&
		    v->type == IMAP_TOK_ATOM &&
		    !imap_parse_uid_set(v->str, v->len, IMAP_MAX_UID_RANGES,
					imap_sync_present, rc))
			rc->present = false; /* the caller relists */
	}
	return true;
}

/* Untagged data during a resync: new messages, flag changes, VANISHED
 * and search results. */
static bool imap_sync_resync_handler(void *ctx, struct imap_session *s,
				     const struct imap_resp *r)
{
	struct imap_sync_resync_ctx *rc = ctx;
	struct imap_msg_meta m;
	unsigned have;

	if (r->status != IMAP_STATUS_NONE || r->n_toks < 1)
		return false;
	if (imap_parse_tok_is(&r->toks[0], "VANISHED") && r->n_toks >= 2)
		return imap_sync_vanished_resp(rc, r);
	if (imap_parse_tok_is(&r->toks[0], "ESEARCH") ||
	    imap_parse_tok_is(&r->toks[0], "SEARCH"))
		return imap_sync_search_resp(rc, r);
	have = imap_sync_meta_parse(&rc->flags, rc->oid, imap_oid_kind(s), r,
				    &m);
	if (!(have & IMAP_META_UID) || !(have & IMAP_META_FLAGS))
		return false;
	if (have == IMAP_META_ALL && m.uid >= rc->uidnext) {
		rc->fresh++;
		rc->ops->meta(rc->ctx, &m);
	} else if (m.uid < rc->uidnext) {
		rc->ops->flags(rc->ctx, m.uid, m.flags);
	}
	return true;
}

/* "* ENABLED QRESYNC": QRESYNC is on for this session. */
static bool imap_sync_enabled_handler(void *ctx, struct imap_session *s,
				      const struct imap_resp *r)
{
	size_t i;

	(void)ctx;
	if (r->status != IMAP_STATUS_NONE || r->n_toks < 1 ||
	    !imap_parse_tok_is(&r->toks[0], "ENABLED"))
		return false;
	for (i = 1; i < r->n_toks; i++)
		if (imap_parse_tok_is(&r->toks[i], "QRESYNC"))
			s->qresync_on = true;
	return true;
}

/*
 * Builds the resync pipeline for how into c (returns how many): with
 * QRESYNC, [ENABLE QRESYNC,] EXAMINE (QRESYNC (v m)) and the new
 * messages; with CONDSTORE, EXAMINE (CONDSTORE), the flags changed
 * since m and the new messages; without, EXAMINE, every message's
 * flags and the new messages.
 */
static size_t imap_sync_resync_cmds(struct imap_session *s, const char *mailbox,
				    enum imap_resync_how how,
				    uint32_t uidvalidity, uint64_t modseq,
				    uint32_t uidnext, struct strbuf *ex,
				    struct strbuf *fl, struct strbuf *meta,
				    struct imap_cmd *c,
				    struct imap_sync_resync_ctx *rc)
{
	size_t n = 0;

	if (how == IMAP_RESYNC_QRESYNC && !s->qresync_on)
		c[n++] = (struct imap_cmd){.text = "ENABLE QRESYNC",
					   .h = imap_sync_enabled_handler};
	strbuf_puts(ex, "EXAMINE ");
	if (!imap_arg_mailbox(s, ex, mailbox))
		ex->failed = true;
	if (how == IMAP_RESYNC_QRESYNC)
		strbuf_printf(ex, " (QRESYNC (%u %llu))", uidvalidity,
			      (unsigned long long)modseq);
	else if (how == IMAP_RESYNC_CONDSTORE)
		strbuf_puts(ex, " (CONDSTORE)");
	c[n++] = (struct imap_cmd){.text = strbuf_str(ex),
				   .h = imap_sync_resync_handler,
				   .ctx = rc};
	if (how == IMAP_RESYNC_CONDSTORE)
		strbuf_printf(fl,
			      "UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE %llu)",
			      (unsigned long long)modseq);
	else if (how == IMAP_RESYNC_FLAGS)
		strbuf_puts(fl, "UID FETCH 1:* (UID FLAGS)");
	if (how != IMAP_RESYNC_QRESYNC)
		c[n++] = (struct imap_cmd){.text = strbuf_str(fl),
					   .h = imap_sync_resync_handler,
					   .ctx = rc};
	strbuf_printf(meta, "UID FETCH %u:* %s", uidnext ? uidnext : 1,
		      imap_sync_meta_items(s));
	c[n++] = (struct imap_cmd){.text = strbuf_str(meta),
				   .h = imap_sync_resync_handler,
				   .ctx = rc};
	return n;
}

/* With CONDSTORE alone, expunges show only in the count: when known
 * and new messages do not add up to EXISTS, asks which of the known
 * UIDs still exist (ESEARCH where offered: a few bytes for a run). */
static int imap_sync_resync_search(struct imap_session *s,
				   struct imap_sync_resync_ctx *rc,
				   uint32_t known)
{
	char cmd[96];
	struct imap_cmd c = {
		.text = cmd, .h = imap_sync_resync_handler, .ctx = rc};

	if ((uint64_t)known + rc->fresh == s->mb.exists || rc->uidnext < 2)
		return 0;
	snprintf(cmd, sizeof(cmd), "UID SEARCH %sUID 1:%u",
		 (s->caps & IMAP_CAP_ESEARCH) ? "RETURN (ALL) " : "",
		 rc->uidnext - 1);
	if (imap_cmd_run(s, &c, 1) < 0)
		return -1;
	if (!rc->present)
		/* no answer at all: nothing known is left */
		rc->present = true;
	return 0;
}

/* Brings an earlier listing up to date, the best way offered. */
int imap_sync_resync(struct imap_session *s, const char *mailbox,
		     const struct imap_resync_state *prev,
		     const struct imap_resync_ops *ops, void *ctx,
		     struct imap_mailbox *mb_r, enum imap_resync_how *how_r,
		     bool *present_r)
{
	struct imap_sync_resync_ctx rc = {
		.ops = ops, .ctx = ctx, .s = s, .uidnext = prev->uidnext};
	struct strbuf ex = {0}, fl = {0}, meta = {0};
	struct imap_cmd c[4];
	enum imap_resync_how how = IMAP_RESYNC_FLAGS;
	size_t n;
	int ret = -1;

	if ((s->caps & IMAP_CAP_QRESYNC) && prev->modseq)
		how = IMAP_RESYNC_QRESYNC;
	else if ((s->caps & IMAP_CAP_CONDSTORE) && prev->modseq)
		how = IMAP_RESYNC_CONDSTORE;
	/* The mailbox is no longer selected, whatever the answer. */
	imap_mailbox_select_forget(s, true);
	n = imap_sync_resync_cmds(s, mailbox, how, prev->uidvalidity,
				  prev->modseq, prev->uidnext, &ex, &fl, &meta,
				  c, &rc);
	if (strbuf_failed(&ex) || strbuf_failed(&fl) || strbuf_failed(&meta)) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	if (imap_cmd_send(s, c, n) < 0)
		goto out;
	/* ENABLE's own failure is not the resync's: the EXAMINE after it
	 * fails too, and QRESYNC is then not used again. */
	if (c[0].h == imap_sync_enabled_handler) {
		imap_cmd_finish(s, c, 1);
		if (!s->qresync_on)
			s->caps &= ~(unsigned)IMAP_CAP_QRESYNC;
		ret = imap_mailbox_examine_done(s, mailbox, c + 1, n - 1, mb_r);
	} else {
		ret = imap_mailbox_examine_done(s, mailbox, c, n, mb_r);
	}
	if (ret == 0 && how == IMAP_RESYNC_CONDSTORE &&
	    mb_r->uidvalidity == prev->uidvalidity)
		ret = imap_sync_resync_search(s, &rc, prev->exists);
	*mb_r = s->mb;
	*how_r = how;
	*present_r = rc.present;
out:
	strbuf_free(&rc.flags);
	strbuf_free(&ex);
	strbuf_free(&fl);
	strbuf_free(&meta);
	return ret;
}
