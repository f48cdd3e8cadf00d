// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * store_imap_read: the store vtable's reads over IMAP that are not
 * listings: message bodies (one folder, or several in one round trip),
 * the parts of messages (a folder's summary, a message's structure, one
 * section's bytes), search and quota. Each runs on a pooled session
 * through store_imap_run() (store_imap.c), and each can be repeated, so
 * each is retried once on a new session when the pooled one was
 * dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"
#include "imap_parse.h"
#include "log.h"
#include "msgstruct.h"
#include "store.h"
#include "store_imap_priv.h"
#include "strbuf.h"

/* Writes uids (ascending) as an IMAP sequence set with ranges. */
static void store_imap_read_uid_set(struct strbuf *b, const uint32_t *uids,
				    const bool *skip, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;

		if (skip[i]) {
			i++;
			continue;
		}
		while (j + 1 < n && !skip[j + 1] && uids[j + 1] == uids[j] + 1)
			j++;
		if (b->len)
			strbuf_puts(b, ",");
		if (j > i)
			strbuf_printf(b, "%u:%u", uids[i], uids[j]);
		else
			strbuf_printf(b, "%u", uids[i]);
		i = j + 1;
	}
}

/* A body fetch: what was asked and which messages answered. */
struct store_imap_read_fetch {
	const char *folder;
	uint32_t uidvalidity;
	const uint32_t *uids;
	size_t n;
	uint64_t offset, len;
	void (*cb)(void *ctx, const struct store_piece *p);
	void *ctx;
	bool *seen; /* owned, n entries */
	struct store_stats *stats;
};

/* Takes one body piece: handed to the caller once per message asked for
 * (a binary search in the sorted UIDs), ignored otherwise. */
static void store_imap_read_body_cb(void *ctx, const struct imap_body_part *bp)
{
	struct store_imap_read_fetch *f = ctx;
	struct store_piece p = {bp->uid, bp->offset, bp->data, bp->len};
	size_t lo = 0, hi = f->n;

	f->stats->bytes_fetched += bp->len;
	if (bp->offset == 0)
		f->stats->messages_fetched++;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->uids[mid] < bp->uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == f->n || f->uids[lo] != bp->uid || f->seen[lo])
		return; /* not asked for, or already had: ignore */
	f->seen[lo] = true;
	f->cb(f->ctx, &p);
}

/* One UID FETCH of the messages not seen yet; with examine, the folder
 * is examined in the same round trip (imap_fetch_examine_body()). A NO
 * [EXPUNGEISSUED] still delivered what exists, so it counts as
 * success. */
static int store_imap_read_fetch_once(struct imap_session *s,
				      struct store_imap_read_fetch *f,
				      bool examine)
{
	struct strbuf set = {0};
	bool stale = false;
	int rc;

	store_imap_read_uid_set(&set, f->uids, f->seen, f->n);
	if (strbuf_failed(&set)) {
		strbuf_free(&set);
		return -ENOMEM;
	}
	if (!set.len) {
		strbuf_free(&set);
		return 0;
	}
	if (examine)
		rc = imap_fetch_examine_body(
			s, f->folder, f->uidvalidity, set.data, f->offset,
			f->len, store_imap_read_body_cb, f, &stale);
	else
		rc = imap_fetch_body(s, set.data, f->offset, f->len,
				     store_imap_read_body_cb, f);
	strbuf_free(&set);
	if (rc < 0 && imap_error(s)->kind == IMAP_ERR_NO &&
	    strcasecmp(imap_error(s)->code, "EXPUNGEISSUED") == 0)
		rc = 0;
	if (rc == 0 && stale)
		return store_fail(-ESTALE, STORE_SCOPE_FOLDER);
	return rc < 0 ? STORE_IMAP_FAILED : 0;
}

/* Fetches the messages not seen yet on one session, examining the
 * folder in the same round trip when it is not the one selected. */
static int store_imap_read_fetch_op(struct imap_session *s, void *arg)
{
	struct store_imap_read_fetch *f = arg;
	struct imap_mailbox mb;
	const char *sel = imap_mailbox_selected(s);
	bool missing = false, examined = !sel || strcmp(sel, f->folder) != 0;
	size_t i;
	int rc;

	if (examined) {
		rc = store_imap_read_fetch_once(s, f, true);
	} else {
		rc = store_imap_select(s, f->folder, true, f->uidvalidity);
		if (rc == 0)
			rc = store_imap_read_fetch_once(s, f, false);
	}
	if (rc)
		return rc;
	for (i = 0; i < f->n; i++)
		missing |= !f->seen[i];
	/* A session that selected the folder a while ago may not know of
	 * newer messages yet: select again and ask once more (not when
	 * it was examined just now). */
	if (missing && !examined) {
		if (imap_mailbox_select(s, f->folder, true, true, &mb) < 0)
			return STORE_IMAP_FAILED;
		if (mb.uidvalidity == f->uidvalidity)
			return store_imap_read_fetch_once(s, f, false);
	}
	return 0;
}

/* store_ops.fetch: [offset, offset + len) of each message of uids, each
 * piece to cb. */
int store_imap_read_fetch(struct store *st, const char *folder,
			  uint32_t uidvalidity, const uint32_t *uids, size_t n,
			  uint64_t offset, uint64_t len,
			  void (*cb)(void *ctx, const struct store_piece *p),
			  void *ctx)
{
	struct store_imap_read_fetch f = {.folder = folder,
					  .uidvalidity = uidvalidity,
					  .uids = uids,
					  .n = n,
					  .offset = offset,
					  .len = len,
					  .cb = cb,
					  .ctx = ctx,
					  .stats = &st->stats};
	int rc;

	if (n == 0)
		return 0;
	if (f.len > STORE_MAX_PIECE)
		f.len = STORE_MAX_PIECE;
	f.seen = calloc(n, sizeof(*f.seen));
	if (!f.seen)
		return -ENOMEM;
	rc = store_imap_run(st, folder, true, store_imap_read_fetch_op, &f);
	free(f.seen);
	return rc;
}

/* Bodies of several folders on one session: one store_imap_read_fetch per
 * request, each with its own seen[] (a retry asks only for the rest). */
struct store_imap_read_many_fetch {
	struct store_fetch_req *reqs;
	struct store_imap_read_fetch *f; /* owned, n of them */
	size_t n;
};

/* Why request r (of fetch f) failed, as an errno; a NO
 * [EXPUNGEISSUED] still delivered what exists: success. */
static int store_imap_read_req_rc(const struct imap_body_req *r)
{
	if (r->rc == 0)
		return r->stale ? store_fail(-ESTALE, STORE_SCOPE_FOLDER) : 0;
	if (r->err.kind == IMAP_ERR_NO &&
	    strcasecmp(r->err.code, "EXPUNGEISSUED") == 0)
		return 0;
	return -store_errno_imap(&r->err);
}

/* On one session: EXAMINE + UID FETCH of each folder's messages not
 * seen yet (after a retry, only those), all in one write; each
 * request's result into its rc. */
static int store_imap_read_fetch_many_op(struct imap_session *s, void *arg)
{
	struct store_imap_read_many_fetch *a = arg;
	struct imap_body_req *r = calloc(a->n, sizeof(*r));
	struct strbuf *sets = calloc(a->n, sizeof(*sets));
	size_t *which = calloc(a->n, sizeof(*which));
	size_t i, k = 0;
	int rc = -ENOMEM;

	if (!r || !sets || !which)
		goto out;
	for (i = 0; i < a->n; i++) {
		struct store_imap_read_fetch *f = &a->f[i];

		store_imap_read_uid_set(&sets[i], f->uids, f->seen, f->n);
		if (strbuf_failed(&sets[i]))
			goto out;
		if (!sets[i].len)
			continue; /* all seen (before a retry) */
		r[k] = (struct imap_body_req){.mailbox = f->folder,
					      .uidvalidity = f->uidvalidity,
					      .uids = sets[i].data,
					      .len = f->len,
					      .cb = store_imap_read_body_cb,
					      .ctx = f};
		which[k++] = i;
	}
	rc = 0;
	if (k && imap_fetch_examine_body_many(s, r, k) < 0)
		rc = STORE_IMAP_FAILED;
	for (i = 0; rc == 0 && i < k; i++)
		a->reqs[which[i]].rc = store_imap_read_req_rc(&r[i]);
out:
	for (i = 0; sets && i < a->n; i++)
		strbuf_free(&sets[i]);
	free(sets);
	free(which);
	free(r);
	return rc;
}

/* store_ops.fetch_many: bodies of several folders in one round trip
 * (the read-ahead across folders), retried once on a new session when
 * the connection was lost. */
int store_imap_read_fetch_many(struct store *st, struct store_fetch_req *reqs,
			       size_t n)
{
	struct store_imap_read_many_fetch a = {
		reqs, calloc(n ? n : 1, sizeof(*a.f)), n};
	size_t i;
	int rc = -ENOMEM;

	for (i = 0; a.f && i < n; i++) {
		reqs[i].rc = 0;
		a.f[i] = (struct store_imap_read_fetch){
			.folder = reqs[i].folder,
			.uidvalidity = reqs[i].uidvalidity,
			.uids = reqs[i].uids,
			.n = reqs[i].n,
			.len = reqs[i].len < STORE_MAX_PIECE ? reqs[i].len
							     : STORE_MAX_PIECE,
			.cb = reqs[i].cb,
			.ctx = reqs[i].ctx,
			.seen = calloc(reqs[i].n ? reqs[i].n : 1, sizeof(bool)),
			.stats = &st->stats};
		if (!a.f[i].seen)
			break;
	}
	if (a.f && i == n)
		rc = n ? store_imap_run(st, reqs[0].folder, true,
					store_imap_read_fetch_many_op, &a)
		       : 0;
	for (i = 0; a.f && i < n; i++)
		free(a.f[i].seen);
	free(a.f);
	return rc;
}

/* Storage quota of INBOX's quota root, in KiB until returned. */
struct store_imap_read_quota {
	uint64_t used, limit;
	bool found;
};

/* GETQUOTAROOT INBOX on one session. */
static int store_imap_read_quota_op(struct imap_session *s, void *arg)
{
	struct store_imap_read_quota *q = arg;
	int rc = imap_quota(s, &q->used, &q->limit);

	q->found = rc == 1;
	return rc < 0 ? STORE_IMAP_FAILED : 0;
}

/* store_ops.quota: bytes used and allowed in INBOX's quota root; 1 when
 * the server told them, 0 when it has no quota. */
int store_imap_read_quota(struct store *st, uint64_t *used_r, uint64_t *limit_r)
{
	struct store_imap_read_quota q = {0};
	int rc =
		store_imap_run(st, "INBOX", true, store_imap_read_quota_op, &q);

	if (rc < 0 || !q.found)
		return rc;
	*used_r = q.used * 1024;
	*limit_r = q.limit * 1024;
	return 1;
}

/* A search: what was asked, and each folder's answer. */
struct store_imap_read_search {
	const char *const *folders;
	size_t n;
	const struct search_query *q;
	struct imap_search_result *res; /* owned, n entries */
};

/* Whether a failed result is the server refusing the query (NO or BAD
 * to UID SEARCH, after EXAMINE worked) rather than a folder gone. */
static bool store_imap_read_search_refused(const struct imap_search_result *r)
{
	return r->failed && r->mb.uidvalidity != 0 &&
	       (r->err.kind == IMAP_ERR_NO || r->err.kind == IMAP_ERR_BAD);
}

/* Frees the results of an attempt (before a retry, or at the end). */
static void store_imap_read_search_clear(struct store_imap_read_search *x)
{
	size_t i;

	for (i = 0; i < x->n; i++)
		imap_search_result_clear(&x->res[i]);
}

/*
 * EXAMINE and UID SEARCH of each folder, pipelined. The EXAMINE is sent
 * even when the folder is selected already: a server searches the view
 * it last synchronised, which may not hold mail delivered since.
 */
static int store_imap_read_search_op(struct imap_session *s, void *arg)
{
	struct store_imap_read_search *x = arg;

	store_imap_read_search_clear(x);
	return imap_search_mailboxes(s, x->folders, x->n, x->q,
				     STORE_MAX_MESSAGES, x->res) < 0
		       ? STORE_IMAP_FAILED
		       : 0;
}

/* Reports each folder searched to cb; -EINVAL (logged with the
 * server's text) when the server refused the query. */
static int store_imap_read_search_report(
	struct store_imap_read_search *x,
	void (*cb)(void *ctx, const struct store_search_hit *h), void *ctx)
{
	size_t i;

	for (i = 0; i < x->n; i++) {
		const struct imap_search_result *r = &x->res[i];

		if (store_imap_read_search_refused(r)) {
			log_warnx("search refused by the server: %s",
				  r->err.text);
			return -EINVAL;
		}
	}
	for (i = 0; i < x->n; i++) {
		const struct imap_search_result *r = &x->res[i];
		struct store_search_hit h = {i, r->mb.uidvalidity, r->uids,
					     r->n};

		if (r->failed) {
			log_debug("search skips %s: %s", x->folders[i],
				  r->err.text);
			continue;
		}
		if (r->cut)
			log_warnx("search in %s: more than %u results, showing "
				  "the first",
				  x->folders[i], STORE_MAX_MESSAGES);
		cb(ctx, &h);
	}
	return 0;
}

/* store_ops.search: the query in each folder, pipelined on one session,
 * each folder's hits to cb. */
int store_imap_read_search(struct store *st, const char *const *folders,
			   size_t n, const struct search_query *q,
			   void (*cb)(void *ctx,
				      const struct store_search_hit *h),
			   void *ctx)
{
	struct store_imap_read_search x = {folders, n, q, NULL};
	int rc;

	if (n == 0)
		return 0;
	x.res = calloc(n, sizeof(*x.res));
	if (!x.res)
		return -ENOMEM;
	rc = store_imap_run(st, n == 1 ? folders[0] : NULL, true,
			    store_imap_read_search_op, &x);
	if (rc == 0)
		rc = store_imap_read_search_report(&x, cb, ctx);
	store_imap_read_search_clear(&x);
	free(x.res);
	return rc;
}

/*
 * Parts of messages: the summary of a folder (ENVELOPE of every
 * message), a message's structure (BODYSTRUCTURE, BINARY.SIZE) and one
 * section's bytes (BODY.PEEK or BINARY.PEEK, partial).
 */

/* The most sections whose BINARY.SIZE one command asks for. */
#define STORE_IMAP_READ_MAX_SIZES 64

struct store_imap_read_summary {
	const char *folder;
	uint32_t uidvalidity;
	void (*cb)(void *ctx, const struct store_summary *m);
	void *ctx;
	struct strbuf flags;
};

/* Takes one message's UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE. */
static bool store_imap_read_summary_cb(void *ctx, uint32_t uid,
				       const struct imap_tok *l)
{
	struct store_imap_read_summary *a = ctx;
	struct store_summary m = {.uid = uid};
	bool have_env = false, have_size = false;
	size_t i, j;

	strbuf_reset(&a->flags);
	for (i = 0; i + 1 < l->n_items; i += 2) {
		const struct imap_tok *k = &l->items[i], *v = &l->items[i + 1];

		if (imap_parse_tok_is(k, "ENVELOPE")) {
			/* a malformed one still gives the line, empty */
			have_env = true;
			msgstruct_envelope(v, &m.env);
		} else if (imap_parse_tok_is(k, "RFC822.SIZE")) {
			have_size = imap_parse_tok_u64(v, &m.size);
			if (m.size > IMAP_MAX_MESSAGE)
				m.size = IMAP_MAX_MESSAGE;
		} else if (imap_parse_tok_is(k, "INTERNALDATE")) {
			if (!imap_internaldate(v, &m.date))
				m.date = 0;
		} else if (imap_parse_tok_is(k, "FLAGS") &&
			   v->type == IMAP_TOK_LIST) {
			for (j = 0; j < v->n_items; j++) {
				const struct imap_tok *f = &v->items[j];

				if (f->type != IMAP_TOK_ATOM ||
				    imap_parse_tok_is(f, "\\Recent"))
					continue;
				if (a->flags.len)
					strbuf_puts(&a->flags, " ");
				strbuf_append(&a->flags, f->str, f->len);
			}
		}
	}
	if (!have_env || !have_size)
		return false; /* an unsolicited update: not ours */
	m.flags = strbuf_str(&a->flags);
	a->cb(a->ctx, &m);
	return true;
}

/* Examines the folder and fetches the summary items of every message. */
static int store_imap_read_summary_op(struct imap_session *s, void *arg)
{
	struct store_imap_read_summary *a = arg;
	int rc = store_imap_select(s, a->folder, true, a->uidvalidity);

	if (rc)
		return rc;
	if (imap_exists(s) == 0)
		return 0; /* "1:*" on an empty mailbox upsets some servers */
	if (imap_fetch_items(s, "1:*",
			     "FLAGS RFC822.SIZE INTERNALDATE ENVELOPE",
			     store_imap_read_summary_cb, a) < 0)
		return STORE_IMAP_FAILED;
	return 0;
}

/* store_ops.summary: flags, size, date and envelope of every message of
 * folder, each to cb. */
int store_imap_read_summary(
	struct store *st, const char *folder, uint32_t uidvalidity,
	void (*cb)(void *ctx, const struct store_summary *m), void *ctx)
{
	struct store_imap_read_summary a = {folder, uidvalidity, cb, ctx, {0}};
	int rc = store_imap_run(st, folder, true, store_imap_read_summary_op,
				&a);

	strbuf_free(&a.flags);
	return rc;
}

struct store_imap_read_structure {
	const char *folder;
	uint32_t uidvalidity, uid;
	struct msgstruct *ms; /* owned until handed over */
	int parse_rc;
	/* BODY[HEADER], which may come before BODYSTRUCTURE */
	bool header_known;
	uint64_t header_size;
	char *header; /* owned: when no more than MSGSTRUCT_HEADER_KEEP */
	bool nomem;
};

/* Takes BODYSTRUCTURE and BODY[HEADER] of the message asked for. */
static bool store_imap_read_structure_cb(void *ctx, uint32_t uid,
					 const struct imap_tok *l)
{
	struct store_imap_read_structure *a = ctx;
	bool ours = false;
	size_t i;

	if (uid != a->uid)
		return false;
	for (i = 0; i + 1 < l->n_items; i += 2) {
		const struct imap_tok *k = &l->items[i], *v = &l->items[i + 1];

		if (imap_parse_tok_is(k, "BODYSTRUCTURE") && !a->ms) {
			a->parse_rc = msgstruct_parse(v, &a->ms);
			ours = true;
		} else if (imap_parse_tok_is(k, "BODY[HEADER]") &&
			   v->type == IMAP_TOK_STRING && !a->header_known) {
			a->header_known = true;
			a->header_size = v->len;
			if (v->len <= MSGSTRUCT_HEADER_KEEP) {
				a->header = malloc(v->len + 1);
				if (a->header) {
					memcpy(a->header, v->str, v->len);
					a->header[v->len] = '\0';
				}
				a->nomem |= !a->header;
			}
			ours = true;
		}
	}
	return ours;
}

/* Takes BINARY.SIZE[section] n of the message asked for. */
static bool store_imap_read_sizes_cb(void *ctx, uint32_t uid,
				     const struct imap_tok *l)
{
	struct store_imap_read_structure *a = ctx;
	char sec[MSGSTRUCT_SECTION_MAX + 16];
	uint64_t n;
	size_t i, j;

	if (uid != a->uid)
		return false;
	for (i = 0; i + 1 < l->n_items; i += 2) {
		const struct imap_tok *k = &l->items[i];

		if (k->type != IMAP_TOK_ATOM || k->len < 13 ||
		    strncasecmp(k->str, "BINARY.SIZE[", 12) != 0 ||
		    !imap_parse_tok_u64(&l->items[i + 1], &n))
			continue;
		for (j = 0; j < a->ms->n; j++) {
			snprintf(sec, sizeof(sec), "BINARY.SIZE[%s]",
				 a->ms->parts[j].section);
			if (strcasecmp(sec, k->str) == 0) {
				a->ms->parts[j].exact = true;
				a->ms->parts[j].exact_size =
					n > MSGSTRUCT_MAX_SIZE
						? MSGSTRUCT_MAX_SIZE
						: n;
			}
		}
	}
	return true;
}

/* Asks BINARY.SIZE of the parts whose decoded size the structure does
 * not give (base64, quoted-printable), STORE_IMAP_READ_MAX_SIZES parts a
 * command: every part's file then has its exact size at the first
 * stat, without a fetch of the part. */
static int store_imap_read_sizes(struct imap_session *s,
				 struct store_imap_read_structure *a)
{
	struct strbuf items = {0};
	char uid[16];
	size_t i = 0, n;
	int rc = 0;

	snprintf(uid, sizeof(uid), "%u", a->uid);
	while (rc == 0 && i < a->ms->n) {
		strbuf_reset(&items);
		for (n = 0; i < a->ms->n && n < STORE_IMAP_READ_MAX_SIZES;
		     i++) {
			struct msgstruct_part *p = &a->ms->parts[i];

			if (p->enc == MSGSTRUCT_ENC_IDENTITY) {
				p->exact = true;
				p->exact_size = p->size;
				continue;
			}
			if (p->enc == MSGSTRUCT_ENC_OTHER)
				continue;
			strbuf_printf(&items, "%sBINARY.SIZE[%s]", n ? " " : "",
				      p->section);
			n++;
		}
		if (strbuf_failed(&items))
			rc = -ENOMEM;
		else if (n &&
			 imap_fetch_items(s, uid, items.data,
					  store_imap_read_sizes_cb, a) < 0) {
			/* A NO (a part the server cannot decode:
			 * UNKNOWN-CTE) only leaves those sizes unknown. */
			if (imap_error(s)->kind == IMAP_ERR_NO)
				log_debug("%s: UID %u: no BINARY.SIZE: %s",
					  a->folder, a->uid,
					  imap_error(s)->text);
			else
				rc = STORE_IMAP_FAILED;
		}
	}
	strbuf_free(&items);
	return rc;
}

/* Examines the folder and fetches the message's BODYSTRUCTURE and
 * header, then the decoded sizes of its parts where the server has
 * BINARY. */
static int store_imap_read_structure_op(struct imap_session *s, void *arg)
{
	struct store_imap_read_structure *a = arg;
	char uid[16];
	int rc = store_imap_select(s, a->folder, true, a->uidvalidity);

	if (rc)
		return rc;
	msgstruct_free(a->ms);
	a->ms = NULL;
	a->parse_rc = 0;
	free(a->header);
	a->header = NULL;
	a->header_known = a->nomem = false;
	snprintf(uid, sizeof(uid), "%u", a->uid);
	/* The header block comes along, so that its file's size is exact
	 * from the first stat (a few kB, in the same round trip). */
	if (imap_fetch_items(s, uid, "BODYSTRUCTURE BODY.PEEK[HEADER]",
			     store_imap_read_structure_cb, a) < 0)
		return STORE_IMAP_FAILED;
	if (a->parse_rc < 0) {
		log_warnx("%s: UID %u: a BODYSTRUCTURE that cannot be read",
			  a->folder, a->uid);
		return a->parse_rc == -ENOMEM ? -ENOMEM : -EIO;
	}
	if (!a->ms)
		return -ENOENT; /* expunged */
	if (a->nomem)
		return -ENOMEM;
	a->ms->header_known = a->header_known;
	a->ms->header_size = a->header_size > MSGSTRUCT_MAX_SIZE
				     ? MSGSTRUCT_MAX_SIZE
				     : a->header_size;
	a->ms->header = a->header;
	a->header = NULL;
	a->ms->binary = (imap_caps(s) & IMAP_CAP_BINARY) != 0;
	if (a->ms->binary)
		return store_imap_read_sizes(s, a);
	for (size_t i = 0; i < a->ms->n; i++) {
		if (a->ms->parts[i].enc == MSGSTRUCT_ENC_IDENTITY) {
			a->ms->parts[i].exact = true;
			a->ms->parts[i].exact_size = a->ms->parts[i].size;
		}
	}
	return 0;
}

/* store_ops.structure: the parts of one message (*ms_r, owned by the
 * caller). */
int store_imap_read_structure(struct store *st, const char *folder,
			      uint32_t uidvalidity, uint32_t uid,
			      struct msgstruct **ms_r)
{
	struct store_imap_read_structure a = {
		.folder = folder, .uidvalidity = uidvalidity, .uid = uid};
	int rc = store_imap_run(st, folder, true, store_imap_read_structure_op,
				&a);

	free(a.header);
	if (rc < 0) {
		msgstruct_free(a.ms);
		return rc;
	}
	*ms_r = a.ms;
	return 0;
}

struct store_imap_read_section {
	const char *folder;
	uint32_t uidvalidity, uid;
	const char *section;
	bool binary;
	uint64_t offset, len;
	void (*cb)(void *ctx, const char *data, size_t len);
	void *ctx;
	struct store_stats *stats;
	bool got;
	bool bad; /* a piece at another place than asked */
};

/* Takes BODY[section]<offset> (or BINARY[...]) of the message. */
static bool store_imap_read_section_cb(void *ctx, uint32_t uid,
				       const struct imap_tok *l)
{
	struct store_imap_read_section *a = ctx;
	char want[MSGSTRUCT_SECTION_MAX + 48];
	size_t i, n;

	if (uid != a->uid)
		return false;
	n = (size_t)snprintf(want, sizeof(want), "%s[%s]",
			     a->binary ? "BINARY" : "BODY", a->section);
	for (i = 0; i + 1 < l->n_items; i += 2) {
		const struct imap_tok *k = &l->items[i], *v = &l->items[i + 1];
		uint64_t origin = 0;

		if (k->type != IMAP_TOK_ATOM || k->len < n ||
		    strncasecmp(k->str, want, n) != 0)
			continue;
		if (k->str[n] == '<') {
			char *end;

			origin = strtoull(k->str + n + 1, &end, 10);
			if (*end != '>' || end[1])
				origin = UINT64_MAX;
		} else if (k->str[n]) {
			continue;
		}
		if (a->got || v->type != IMAP_TOK_STRING)
			return true; /* NIL: gone */
		if (origin != a->offset || v->len > a->len) {
			a->bad = true;
			return true;
		}
		a->got = true;
		a->stats->bytes_fetched += v->len;
		a->cb(a->ctx, v->str, v->len);
		return true;
	}
	return false;
}

/* Examines the folder and fetches the bytes asked for of one section. */
static int store_imap_read_section_op(struct imap_session *s, void *arg)
{
	struct store_imap_read_section *a = arg;
	char uid[16], items[MSGSTRUCT_SECTION_MAX + 64];
	const struct imap_error *e;
	int rc = store_imap_select(s, a->folder, true, a->uidvalidity);

	if (rc)
		return rc;
	snprintf(uid, sizeof(uid), "%u", a->uid);
	snprintf(items, sizeof(items), "%s.PEEK[%s]<%llu.%llu>",
		 a->binary ? "BINARY" : "BODY", a->section,
		 (unsigned long long)a->offset, (unsigned long long)a->len);
	a->got = a->bad = false;
	if (imap_fetch_items(s, uid, items, store_imap_read_section_cb, a) <
	    0) {
		/* The server cannot undo the encoding: an unknown one
		 * (UNKNOWN-CTE, RFC 3516), or bytes that are not of it
		 * (Dovecot: PARSE). The caller decodes what it can. */
		e = imap_error(s);
		if (a->binary && e->kind == IMAP_ERR_NO &&
		    (strcasecmp(e->code, "UNKNOWN-CTE") == 0 ||
		     strcasecmp(e->code, "PARSE") == 0))
			return -EILSEQ;
		return STORE_IMAP_FAILED;
	}
	if (a->bad) {
		log_warnx("%s: UID %u: section %s came at another place or "
			  "longer than asked",
			  a->folder, a->uid, a->section);
		return -EIO;
	}
	return a->got ? 0 : -ENOENT;
}

/* store_ops.fetch_section: [offset, offset + len) of one section of a
 * message, encoded (BODY) or decoded by the server (BINARY). */
int store_imap_read_fetch_section(
	struct store *st, const char *folder, uint32_t uidvalidity,
	uint32_t uid, const char *section, bool binary, uint64_t offset,
	uint64_t len, void (*cb)(void *ctx, const char *data, size_t len),
	void *ctx)
{
	struct store_imap_read_section a = {
		.folder = folder,
		.uidvalidity = uidvalidity,
		.uid = uid,
		.section = section,
		.binary = binary,
		.offset = offset,
		.len = len > STORE_MAX_PIECE ? STORE_MAX_PIECE : len,
		.cb = cb,
		.ctx = ctx,
		.stats = &st->stats};

	if (strlen(section) >= MSGSTRUCT_SECTION_MAX || a.len == 0)
		return -EINVAL;
	return store_imap_run(st, folder, true, store_imap_read_section_op, &a);
}
