// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * store_imap: the store vtable over IMAP, with a pool of sessions.
 *
 * Each session is used by one thread at a time. A thread asks the pool
 * for a session, preferring one that already has the wanted folder
 * selected (saving a SELECT round trip), waits at most the timeout when
 * all are busy, and reopens a session that was dropped. Read-only
 * operations are retried once on a fresh session when a reused one turns
 * out to have been dropped by the server; a timeout is not retried, so
 * no operation waits much longer than the timeout.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap.h"
#include "log.h"
#include "store.h"
#include "strbuf.h"

struct store_imap_slot {
	struct imap_session *sess; /* owned, NULL when closed */
	bool busy;
};

struct store_imap {
	struct store base;
	const struct imap_config *cfg; /* borrowed */
	pthread_mutex_t lock;          /* slots */
	pthread_cond_t cond;
	struct store_imap_slot *slots; /* owned */
	unsigned n_slots;
};

static struct store_imap *store_imap_of(struct store *st)
{
	return (struct store_imap *)st;
}

/* Absolute CLOCK_REALTIME deadline ms from now, for timed waits. */
static struct timespec store_imap_deadline(int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/*
 * Takes a session for a thread: one with folder selected if possible,
 * else any open one, else a closed slot that gets opened here (outside
 * the lock). Returns the slot index or a negative errno.
 */
static int store_imap_get(struct store_imap *si, const char *folder,
			  bool *fresh_r)
{
	struct timespec deadline = store_imap_deadline(si->cfg->timeout_ms);
	struct store_imap_slot *slot = NULL;
	struct imap_error err;
	unsigned i;
	int idx = -1;

	*fresh_r = false;
	pthread_mutex_lock(&si->lock);
	while (idx < 0) {
		int open_idx = -1, closed_idx = -1;

		for (i = 0; i < si->n_slots; i++) {
			const char *sel;

			if (si->slots[i].busy)
				continue;
			if (!si->slots[i].sess) {
				if (closed_idx < 0)
					closed_idx = (int)i;
				continue;
			}
			sel = imap_selected(si->slots[i].sess);
			if (folder && sel && strcmp(sel, folder) == 0) {
				idx = (int)i;
				break;
			}
			if (open_idx < 0)
				open_idx = (int)i;
		}
		if (idx < 0)
			idx = open_idx >= 0 ? open_idx : closed_idx;
		if (idx >= 0)
			break;
		if (pthread_cond_timedwait(&si->cond, &si->lock, &deadline) ==
		    ETIMEDOUT) {
			pthread_mutex_unlock(&si->lock);
			log_warnx("all %u connections stayed busy for %d s",
				  si->n_slots, si->cfg->timeout_ms / 1000);
			return -EIO;
		}
	}
	slot = &si->slots[idx];
	slot->busy = true;
	pthread_mutex_unlock(&si->lock);

	if (slot->sess && !imap_usable(slot->sess)) {
		imap_close(slot->sess);
		slot->sess = NULL;
	}
	if (!slot->sess) {
		if (imap_open(si->cfg, &slot->sess, &err) < 0) {
			log_warnx("%s", err.text);
			slot->sess = NULL;
			pthread_mutex_lock(&si->lock);
			slot->busy = false;
			pthread_cond_signal(&si->cond);
			pthread_mutex_unlock(&si->lock);
			return -store_errno_imap(&err);
		}
		*fresh_r = true;
	}
	return idx;
}

/* Gives a session back; a broken one is closed first. */
static void store_imap_put(struct store_imap *si, int idx)
{
	struct store_imap_slot *slot = &si->slots[idx];

	if (slot->sess && !imap_usable(slot->sess)) {
		imap_close(slot->sess);
		slot->sess = NULL;
	}
	pthread_mutex_lock(&si->lock);
	slot->busy = false;
	pthread_cond_signal(&si->cond);
	pthread_mutex_unlock(&si->lock);
}

/*
 * Turns a failed command into an errno, logging it. Returns 0 when the
 * operation may be retried on a new session: the connection was found
 * dropped (not timed out) on a session that had been idle in the pool.
 */
static int store_imap_fail(struct imap_session *s, bool fresh, int attempt)
{
	const struct imap_error *e = imap_error(s);

	if (e->kind == IMAP_ERR_NET && e->errnum != ETIMEDOUT && !fresh &&
	    attempt == 0) {
		log_debug("retrying on a new connection: %s", e->text);
		return 0;
	}
	if (e->kind == IMAP_ERR_NO && strcmp(e->code, "NONEXISTENT") == 0)
		log_debug("%s", e->text);
	else
		log_warnx("%s", e->text);
	return -store_errno_imap(e);
}

/* Collects LIST entries into a growing array. */
struct store_imap_list {
	struct store_folder *f;
	size_t n, cap;
	bool nomem;
};

static void store_imap_list_cb(void *ctx, const struct imap_list_entry *e)
{
	struct store_imap_list *l = ctx;
	struct store_folder *f;

	if (l->nomem)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;

		f = realloc(l->f, cap * sizeof(*f));
		if (!f) {
			l->nomem = true;
			return;
		}
		l->f = f;
		l->cap = cap;
	}
	f = &l->f[l->n];
	f->name = strdup(e->name);
	if (!f->name) {
		l->nomem = true;
		return;
	}
	f->delim = e->delim;
	f->attrs = 0;
	if (e->attrs & IMAP_MBOX_NOSELECT)
		f->attrs |= STORE_FOLDER_NOSELECT;
	if (e->attrs & IMAP_MBOX_NOINFERIORS)
		f->attrs |= STORE_FOLDER_NOINFERIORS;
	if (e->attrs & IMAP_MBOX_TRASH)
		f->attrs |= STORE_FOLDER_TRASH;
	l->n++;
}

static int store_imap_folders(struct store *st, struct store_folder **f_r,
			      size_t *n_r)
{
	struct store_imap *si = store_imap_of(st);
	int attempt, idx, rc = -EIO;
	bool fresh;

	for (attempt = 0; attempt < 2; attempt++) {
		struct store_imap_list l = { 0 };
		struct imap_session *s;

		idx = store_imap_get(si, NULL, &fresh);
		if (idx < 0)
			return idx;
		s = si->slots[idx].sess;
		if (imap_list(s, store_imap_list_cb, &l) == 0 && !l.nomem) {
			store_imap_put(si, idx);
			*f_r = l.f;
			*n_r = l.n;
			return 0;
		}
		rc = l.nomem ? -ENOMEM : store_imap_fail(s, fresh, attempt);
		store_imap_put(si, idx);
		store_folders_free(l.f, l.n);
		if (rc < 0)
			return rc;
	}
	return -EIO;
}

/* Collects message metadata into a growing array. */
struct store_imap_meta {
	struct store_msg *m;
	size_t n, cap;
	bool nomem;
};

static void store_imap_meta_cb(void *ctx, const struct imap_msg_meta *mm)
{
	struct store_imap_meta *l = ctx;
	struct store_msg *m;

	if (l->nomem)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;

		m = realloc(l->m, cap * sizeof(*m));
		if (!m) {
			l->nomem = true;
			return;
		}
		l->m = m;
		l->cap = cap;
	}
	m = &l->m[l->n];
	memset(m, 0, sizeof(*m));
	m->uid = mm->uid;
	m->size = mm->size;
	m->date = mm->date;
	m->flags = strdup(mm->flags);
	if (!m->flags) {
		l->nomem = true;
		return;
	}
	l->n++;
}

static int store_imap_messages(struct store *st, const char *folder,
			       const struct store_listing *prev,
			       struct store_listing *out)
{
	struct store_imap *si = store_imap_of(st);
	int attempt, idx, rc = -EIO;
	bool fresh;

	memset(out, 0, sizeof(*out));
	for (attempt = 0; attempt < 2; attempt++) {
		struct store_imap_meta l = { 0 };
		struct imap_mailbox mb;
		struct imap_session *s;

		idx = store_imap_get(si, folder, &fresh);
		if (idx < 0)
			return idx;
		s = si->slots[idx].sess;
		if (imap_select(s, folder, true, true, &mb) < 0)
			goto fail;
		out->uidvalidity = mb.uidvalidity;
		out->uidnext = mb.uidnext;
		out->exists = mb.exists;
		out->modseq = mb.highestmodseq;
		/* HIGHESTMODSEQ moves on every change, flags included; without
		 * it a flag change cannot be seen, so list again. */
		if (prev && mb.highestmodseq &&
		    prev->modseq == mb.highestmodseq &&
		    prev->uidvalidity == mb.uidvalidity &&
		    prev->uidnext == mb.uidnext && prev->exists == mb.exists) {
			store_imap_put(si, idx);
			return 1;
		}
		if (imap_fetch_meta(s, store_imap_meta_cb, &l) < 0 || l.nomem) {
			out->msgs = l.m;
			out->n = l.n;
			store_listing_clear(out);
			if (l.nomem) {
				store_imap_put(si, idx);
				return -ENOMEM;
			}
			goto fail;
		}
		out->msgs = l.m;
		out->n = l.n;
		store_imap_put(si, idx);
		return 0;
fail:
		rc = store_imap_fail(s, fresh, attempt);
		store_imap_put(si, idx);
		if (rc < 0)
			return rc;
	}
	return -EIO;
}

/* Writes uids (ascending) as an IMAP sequence set with ranges. */
static void store_imap_uid_set(struct strbuf *b, const uint32_t *uids,
			       size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i;

		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
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

/* Forwards body pieces and remembers which messages answered. */
struct store_imap_fetch {
	void (*cb)(void *ctx, const struct store_piece *p);
	void *ctx;
	const uint32_t *uids;
	size_t n;
	bool *seen; /* owned, n entries */
};

static void store_imap_body_cb(void *ctx, const struct imap_body_part *bp)
{
	struct store_imap_fetch *f = ctx;
	struct store_piece p = { bp->uid, bp->offset, bp->data, bp->len };
	size_t lo = 0, hi = f->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->uids[mid] < bp->uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == f->n || f->uids[lo] != bp->uid)
		return; /* not asked for: ignore */
	f->seen[lo] = true;
	f->cb(f->ctx, &p);
}

/*
 * Runs one UID FETCH of uids on session s. A NO [EXPUNGEISSUED] still
 * delivered what exists, so it counts as success.
 */
static int store_imap_fetch_once(struct imap_session *s,
				 struct store_imap_fetch *f, uint64_t offset,
				 uint64_t len)
{
	struct strbuf set = { 0 };
	size_t i;
	int rc;

	for (i = 0; i < f->n; i++)
		if (!f->seen[i])
			store_imap_uid_set(&set, &f->uids[i], 1);
	if (strbuf_failed(&set)) {
		strbuf_free(&set);
		return -ENOMEM;
	}
	if (!set.len) {
		strbuf_free(&set);
		return 0;
	}
	rc = imap_fetch_body(s, set.data, offset, len, store_imap_body_cb, f);
	strbuf_free(&set);
	if (rc < 0 && imap_error(s)->kind == IMAP_ERR_NO &&
	    strcasecmp(imap_error(s)->code, "EXPUNGEISSUED") == 0)
		rc = 0;
	return rc;
}

static int store_imap_fetch(struct store *st, const char *folder,
			    uint32_t uidvalidity, const uint32_t *uids,
			    size_t n, uint64_t offset, uint64_t len,
			    void (*cb)(void *ctx, const struct store_piece *p),
			    void *ctx)
{
	struct store_imap *si = store_imap_of(st);
	struct store_imap_fetch f = { cb, ctx, uids, n, NULL };
	int attempt, idx, rc = -EIO;
	bool fresh;
	size_t i;

	if (n == 0)
		return 0;
	if (len > STORE_MAX_PIECE)
		len = STORE_MAX_PIECE;
	f.seen = calloc(n, sizeof(*f.seen));
	if (!f.seen)
		return -ENOMEM;
	for (attempt = 0; attempt < 2; attempt++) {
		struct imap_mailbox mb;
		struct imap_session *s;
		bool missing = false;

		idx = store_imap_get(si, folder, &fresh);
		if (idx < 0) {
			rc = idx;
			break;
		}
		s = si->slots[idx].sess;
		if (imap_select(s, folder, true, false, &mb) < 0)
			goto fail;
		if (mb.uidvalidity != uidvalidity &&
		    imap_select(s, folder, true, true, &mb) < 0)
			goto fail;
		if (mb.uidvalidity != uidvalidity) {
			store_imap_put(si, idx);
			rc = -ESTALE;
			break;
		}
		if (store_imap_fetch_once(s, &f, offset, len) < 0)
			goto fail;
		for (i = 0; i < n; i++)
			missing |= !f.seen[i];
		/* A session that selected the folder a while ago may not know
		 * of newer messages yet: select again and ask once more. */
		if (missing && imap_select(s, folder, true, true, &mb) == 0 &&
		    mb.uidvalidity == uidvalidity &&
		    store_imap_fetch_once(s, &f, offset, len) < 0)
			goto fail;
		store_imap_put(si, idx);
		rc = 0;
		break;
fail:
		rc = store_imap_fail(s, fresh, attempt);
		store_imap_put(si, idx);
		if (rc < 0)
			break;
		rc = -EIO;
	}
	free(f.seen);
	return rc;
}

static void store_imap_destroy(struct store *st)
{
	struct store_imap *si = store_imap_of(st);
	unsigned i;

	for (i = 0; i < si->n_slots; i++)
		imap_close(si->slots[i].sess);
	free(si->slots);
	pthread_mutex_destroy(&si->lock);
	pthread_cond_destroy(&si->cond);
	free(si);
}

static const struct store_ops store_imap_ops = {
	.folders = store_imap_folders,
	.messages = store_imap_messages,
	.fetch = store_imap_fetch,
	.destroy = store_imap_destroy,
};

struct store *store_imap_new(const struct imap_config *cfg,
			     unsigned connections, char *err, size_t errlen)
{
	struct store_imap *si;
	struct imap_error ierr;

	si = calloc(1, sizeof(*si));
	if (!si)
		goto nomem;
	si->slots = calloc(connections, sizeof(*si->slots));
	if (!si->slots) {
		free(si);
		goto nomem;
	}
	si->base.ops = &store_imap_ops;
	si->cfg = cfg;
	si->n_slots = connections;
	pthread_mutex_init(&si->lock, NULL);
	pthread_cond_init(&si->cond, NULL);
	if (imap_open(cfg, &si->slots[0].sess, &ierr) < 0) {
		snprintf(err, errlen, "%s", ierr.text);
		goto free_slots;
	}
	return &si->base;

free_slots:
	pthread_mutex_destroy(&si->lock);
	pthread_cond_destroy(&si->cond);
	free(si->slots);
	free(si);
	return NULL;
nomem:
	snprintf(err, errlen, "out of memory");
	return NULL;
}
