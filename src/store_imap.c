// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * store_imap: the store vtable over IMAP, with a pool of sessions.
 *
 * Each session is used by one thread at a time. A thread asks the pool
 * for a session, preferring one that already has the wanted folder
 * selected (saving a SELECT round trip), waits at most the timeout when
 * all are busy, and reopens a session that was dropped. A session idle
 * for a while is checked with NOOP before use, so that a command that
 * changes mail is not sent into a connection the server has closed.
 *
 * Every operation runs through store_imap_run(). Operations that can be
 * repeated without effect (listing, reading, setting flags) are retried
 * once on a fresh session when a pooled one turns out to be dropped; a
 * timeout is not retried, so no operation waits much longer than the
 * timeout. Operations that change mail are never repeated: a repeat
 * could copy or store a message twice.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "imap.h"
#include "log.h"
#include "push.h"
#include "names.h"
#include "store.h"
#include "strbuf.h"

/* After a connection attempt failed on the network, requests fail at
 * once for this long rather than each waiting out its timeout. */
#define STORE_IMAP_REOPEN_PAUSE_MS 1000
/* The least time a request must have left to retry on a new session. */
#define STORE_IMAP_RETRY_MIN_MS 500
/* A pooled session idle longer than this is checked before use. */
#define STORE_IMAP_IDLE_CHECK 60

struct store_imap_slot {
	struct imap_session *sess; /* owned, NULL when closed */
	bool busy;
	time_t last_used; /* monotonic seconds */
};

struct store_imap {
	struct store base;
	const struct imap_config *cfg; /* borrowed */
	pthread_mutex_t lock; /* slots */
	pthread_cond_t cond;
	struct store_imap_slot *slots; /* owned */
	unsigned n_slots;
	uint64_t appendlimit;
	bool push_ok;       /* a connection is kept for push */
	struct push *push; /* owned, NULL until watch() */
	/* clock_now_ms() of the last connection attempt that failed on
	 * the network; read and written without the lock (a hint). */
	_Atomic long long open_failed_at;
};

/*
 * An operation on one session. Returns 0 on success, STORE_IMAP_FAILED
 * when an IMAP command failed (imap_error() says how), or a negative
 * errno decided by the operation itself.
 */
#define STORE_IMAP_FAILED 1
typedef int (*store_imap_op)(struct imap_session *s, void *arg);

static struct store_imap *store_imap_of(struct store *st)
{
	return (struct store_imap *)st;
}

/* Picks a free slot: one with folder selected, else any open one, else
 * a closed one; -1 if all are busy. The lock is held. */
static int store_imap_pick(struct store_imap *si, const char *folder)
{
	int open_idx = -1, closed_idx = -1;
	unsigned i;

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
		if (folder && sel && strcmp(sel, folder) == 0)
			return (int)i;
		if (open_idx < 0)
			open_idx = (int)i;
	}
	return open_idx >= 0 ? open_idx : closed_idx;
}

/*
 * Takes a session for a thread, opening (or checking, after a long idle)
 * it outside the lock. Returns the slot index or a negative errno;
 * *fresh_r tells whether the session was just opened.
 */
static int store_imap_get(struct store_imap *si, const char *folder,
			  bool *fresh_r)
{
	struct timespec deadline = clock_deadline(si->cfg->timeout_ms);
	struct store_imap_slot *slot;
	struct imap_error err;
	int idx;

	*fresh_r = false;
	pthread_mutex_lock(&si->lock);
	while ((idx = store_imap_pick(si, folder)) < 0) {
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

	/* A session the server has closed (it restarted, say) is replaced
	 * before anything is written to it: then even a change, which is
	 * never retried, goes out on a live connection. */
	si->base.stats.conns_busy++;
	if (slot->sess) {
		log_set_conn(imap_conn_id(slot->sess));
		if (!imap_usable(slot->sess) || imap_peer_gone(slot->sess) ||
		    (clock_mono() - slot->last_used > STORE_IMAP_IDLE_CHECK &&
		     imap_noop(slot->sess) < 0)) {
			imap_close(slot->sess);
			slot->sess = NULL;
			si->base.stats.conns_open--;
		}
	}
	if (!slot->sess && clock_now_ms() - si->open_failed_at <
				   STORE_IMAP_REOPEN_PAUSE_MS) {
		/* The server could not be reached a moment ago: a request
		 * right after (the kernel's retry of a read, say) fails
		 * at once instead of spending its own timeout too. */
		pthread_mutex_lock(&si->lock);
		slot->busy = false;
		pthread_cond_signal(&si->cond);
		pthread_mutex_unlock(&si->lock);
		si->base.stats.conns_busy--;
		return -EIO;
	}
	if (!slot->sess) {
		if (imap_open(si->cfg, &slot->sess, &err) < 0) {
			if (err.kind == IMAP_ERR_NET)
				si->open_failed_at = clock_now_ms();
			si->base.stats.online = false;
			si->base.stats.unreachable = err.unreachable;
			si->base.stats.conns_busy--;
			log_warnx("%s", err.text);
			slot->sess = NULL;
			pthread_mutex_lock(&si->lock);
			slot->busy = false;
			pthread_cond_signal(&si->cond);
			pthread_mutex_unlock(&si->lock);
			return -store_errno_imap(&err);
		}
		si->base.stats.online = true;
		si->base.stats.unreachable = false;
		si->base.stats.conns_open++;
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
		si->base.stats.conns_open--;
	}
	si->base.stats.conns_busy--;
	log_set_conn(0);
	slot->last_used = clock_mono();
	pthread_mutex_lock(&si->lock);
	slot->busy = false;
	pthread_cond_signal(&si->cond);
	pthread_mutex_unlock(&si->lock);
}

/*
 * Runs op on a session (preferring one with folder selected). When
 * repeatable, a pooled session found dropped (not timed out) gives one
 * more try on a new session. Returns 0 or a negative errno; IMAP errors
 * are logged and mapped by store_errno_imap().
 */
static int store_imap_run(struct store_imap *si, const char *folder,
			  bool repeatable, store_imap_op op, void *arg)
{
	int attempt, idx, rc = -EIO;
	bool fresh;

	for (attempt = 0; attempt < 2; attempt++) {
		const struct imap_error *e;
		struct imap_session *s;

		idx = store_imap_get(si, folder, &fresh);
		if (idx < 0)
			return idx;
		s = si->slots[idx].sess;
		rc = op(s, arg);
		if (rc != STORE_IMAP_FAILED) {
			store_imap_put(si, idx);
			return rc;
		}
		e = imap_error(s);
		rc = -store_errno_imap(e);
		/* A retry only while the request has time left for one. */
		if (repeatable && attempt == 0 && !fresh &&
		    e->kind == IMAP_ERR_NET && e->errnum != ETIMEDOUT &&
		    clock_request_left_ms() > STORE_IMAP_RETRY_MIN_MS) {
			log_debug("retrying on a new connection: %s", e->text);
			store_imap_put(si, idx);
			continue;
		}
		if (e->kind == IMAP_ERR_NO &&
		    (rc == -ENOENT || rc == -EEXIST || rc == -ENOTEMPTY))
			log_debug("%s", e->text);
		else
			log_warnx("%s", e->text);
		store_imap_put(si, idx);
		break;
	}
	return rc;
}

/* Selects folder (read-write unless readonly) and checks that its
 * UIDVALIDITY is still uidvalidity: -ESTALE if not. */
static int store_imap_select(struct imap_session *s, const char *folder,
			     bool readonly, uint32_t uidvalidity)
{
	struct imap_mailbox mb;

	if (imap_select(s, folder, readonly, false, &mb) < 0)
		return STORE_IMAP_FAILED;
	if (mb.uidvalidity != uidvalidity &&
	    imap_select(s, folder, readonly, true, &mb) < 0)
		return STORE_IMAP_FAILED;
	return mb.uidvalidity == uidvalidity ? 0 : -ESTALE;
}

/* Collects LIST entries into a growing array. */
struct store_imap_list {
	struct store_folder *f;
	size_t n, cap;
	bool nomem;
	bool capped;
};

static void store_imap_list_cb(void *ctx, const struct imap_list_entry *e)
{
	struct store_imap_list *l = ctx;
	struct store_folder *f;

	if (l->nomem)
		return;
	if (l->n == STORE_MAX_FOLDERS) {
		if (!l->capped)
			log_warnx("the server lists more than %u folders: "
				  "showing the first %u",
				  STORE_MAX_FOLDERS, STORE_MAX_FOLDERS);
		l->capped = true;
		return;
	}
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

static int store_imap_folders_op(struct imap_session *s, void *arg)
{
	struct store_imap_list *l = arg;

	store_folders_free(l->f, l->n);
	memset(l, 0, sizeof(*l));
	if (imap_list(s, store_imap_list_cb, l) < 0)
		return STORE_IMAP_FAILED;
	return l->nomem ? -ENOMEM : 0;
}

static int store_imap_folders(struct store *st, struct store_folder **f_r,
			      size_t *n_r)
{
	struct store_imap_list l = {0};
	int rc;

	rc = store_imap_run(store_imap_of(st), NULL, true,
			    store_imap_folders_op, &l);
	if (rc < 0) {
		store_folders_free(l.f, l.n);
		return rc;
	}
	*f_r = l.f;
	*n_r = l.n;
	return 0;
}

/* Collects message metadata into a growing array. */
struct store_imap_meta {
	const char *folder;
	const struct store_listing *prev;
	struct store_listing *out;
	size_t cap;
	bool nomem;
	bool unchanged;
	bool capped;
};

static void store_imap_meta_cb(void *ctx, const struct imap_msg_meta *mm)
{
	struct store_imap_meta *l = ctx;
	struct store_listing *out = l->out;
	struct store_msg *m;

	if (l->nomem)
		return;
	if (out->n == STORE_MAX_MESSAGES) {
		if (!l->capped)
			log_warnx("%s holds more than %u messages: showing "
				  "the first %u",
				  l->folder, STORE_MAX_MESSAGES,
				  STORE_MAX_MESSAGES);
		l->capped = true;
		return;
	}
	if (out->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;

		m = realloc(out->msgs, cap * sizeof(*m));
		if (!m) {
			l->nomem = true;
			return;
		}
		out->msgs = m;
		l->cap = cap;
	}
	m = &out->msgs[out->n];
	memset(m, 0, sizeof(*m));
	m->uid = mm->uid;
	m->size = mm->size;
	m->date = mm->date;
	m->idhash = names_msgid_hash(mm->msgid_hdr ? mm->msgid_hdr : "",
				     mm->msgid_len);
	m->flags = strdup(mm->flags);
	if (!m->flags) {
		l->nomem = true;
		return;
	}
	out->n++;
}

static int store_imap_messages_op(struct imap_session *s, void *arg)
{
	struct store_imap_meta *l = arg;
	const struct store_listing *prev = l->prev;
	struct store_listing *out = l->out;
	struct imap_mailbox mb;

	store_listing_clear(out);
	l->cap = 0;
	l->unchanged = false;
	if (!prev) {
		/* A first listing: EXAMINE and FETCH in one round trip. */
		if (imap_examine_list(s, l->folder, store_imap_meta_cb, l,
				      &mb) < 0)
			return STORE_IMAP_FAILED;
		out->uidvalidity = mb.uidvalidity;
		out->uidnext = mb.uidnext;
		out->exists = mb.exists;
		out->modseq = mb.highestmodseq;
		return l->nomem ? -ENOMEM : 0;
	}
	if (imap_select(s, l->folder, true, true, &mb) < 0)
		return STORE_IMAP_FAILED;
	out->uidvalidity = mb.uidvalidity;
	out->uidnext = mb.uidnext;
	out->exists = mb.exists;
	out->modseq = mb.highestmodseq;
	/* HIGHESTMODSEQ moves on every change, flags included; without it
	 * a flag change cannot be seen, so list again. */
	if (prev && mb.highestmodseq && prev->modseq == mb.highestmodseq &&
	    prev->uidvalidity == mb.uidvalidity &&
	    prev->uidnext == mb.uidnext && prev->exists == mb.exists) {
		l->unchanged = true;
		return 0;
	}
	if (imap_fetch_meta(s, store_imap_meta_cb, l) < 0)
		return STORE_IMAP_FAILED;
	return l->nomem ? -ENOMEM : 0;
}

static int store_imap_messages(struct store *st, const char *folder,
			       const struct store_listing *prev,
			       struct store_listing *out)
{
	struct store_imap_meta l = {.folder = folder, .prev = prev, .out = out};
	int rc;

	memset(out, 0, sizeof(*out));
	rc = store_imap_run(store_imap_of(st), folder, true,
			    store_imap_messages_op, &l);
	if (rc < 0) {
		store_listing_clear(out);
		return rc;
	}
	return l.unchanged ? 1 : 0;
}

/* Writes uids (ascending) as an IMAP sequence set with ranges. */
static void store_imap_uid_set(struct strbuf *b, const uint32_t *uids,
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
struct store_imap_fetch {
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

static void store_imap_body_cb(void *ctx, const struct imap_body_part *bp)
{
	struct store_imap_fetch *f = ctx;
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

/* One UID FETCH of the messages not seen yet. A NO [EXPUNGEISSUED]
 * still delivered what exists, so it counts as success. */
static int store_imap_fetch_once(struct imap_session *s,
				 struct store_imap_fetch *f)
{
	struct strbuf set = {0};
	int rc;

	store_imap_uid_set(&set, f->uids, f->seen, f->n);
	if (strbuf_failed(&set)) {
		strbuf_free(&set);
		return -ENOMEM;
	}
	if (!set.len) {
		strbuf_free(&set);
		return 0;
	}
	rc = imap_fetch_body(s, set.data, f->offset, f->len, store_imap_body_cb,
			     f);
	strbuf_free(&set);
	if (rc < 0 && imap_error(s)->kind == IMAP_ERR_NO &&
	    strcasecmp(imap_error(s)->code, "EXPUNGEISSUED") == 0)
		rc = 0;
	return rc < 0 ? STORE_IMAP_FAILED : 0;
}

static int store_imap_fetch_op(struct imap_session *s, void *arg)
{
	struct store_imap_fetch *f = arg;
	struct imap_mailbox mb;
	bool missing = false;
	size_t i;
	int rc;

	rc = store_imap_select(s, f->folder, true, f->uidvalidity);
	if (rc)
		return rc;
	rc = store_imap_fetch_once(s, f);
	if (rc)
		return rc;
	for (i = 0; i < f->n; i++)
		missing |= !f->seen[i];
	/* A session that selected the folder a while ago may not know of
	 * newer messages yet: select again and ask once more. */
	if (missing) {
		if (imap_select(s, f->folder, true, true, &mb) < 0)
			return STORE_IMAP_FAILED;
		if (mb.uidvalidity == f->uidvalidity)
			return store_imap_fetch_once(s, f);
	}
	return 0;
}

static int store_imap_fetch(struct store *st, const char *folder,
			    uint32_t uidvalidity, const uint32_t *uids,
			    size_t n, uint64_t offset, uint64_t len,
			    void (*cb)(void *ctx, const struct store_piece *p),
			    void *ctx)
{
	struct store_imap_fetch f = {
		.folder = folder, .uidvalidity = uidvalidity, .uids = uids,
		.n = n, .offset = offset, .len = len, .cb = cb, .ctx = ctx,
		.stats = &st->stats};
	int rc;

	if (n == 0)
		return 0;
	if (f.len > STORE_MAX_PIECE)
		f.len = STORE_MAX_PIECE;
	f.seen = calloc(n, sizeof(*f.seen));
	if (!f.seen)
		return -ENOMEM;
	rc = store_imap_run(store_imap_of(st), folder, true,
			    store_imap_fetch_op, &f);
	free(f.seen);
	return rc;
}

/* Arguments of the operations on one message. */
struct store_imap_msg {
	const char *folder;
	uint32_t uidvalidity;
	uint32_t uid;
	const char *flags; /* set_flags; change_flags: those to add */
	const char *remove; /* change_flags: the flags to remove */
	char *result; /* set_flags, change_flags: owned */
	const char *target; /* move */
	uint32_t new_uid, new_uidvalidity;
};

/* True when every flag of want appears in have (space separated). */
static bool store_imap_flags_kept(const char *want, const char *have)
{
	char *dup = strdup(want), *tok, *save = NULL;
	bool ok = dup != NULL;

	for (tok = dup ? strtok_r(dup, " ", &save) : NULL; tok && ok;
	     tok = strtok_r(NULL, " ", &save)) {
		const char *p = have;
		size_t len = strlen(tok);

		ok = false;
		while (p && *p && !ok) {
			ok = strncasecmp(p, tok, len) == 0 &&
			     (p[len] == ' ' || p[len] == '\0');
			p = strchr(p, ' ');
			if (p)
				p++;
		}
	}
	free(dup);
	return ok;
}

/* After a STORE: the flags the server reports must hold every flag
 * asked for (a flag it does not keep fails with EINVAL). */
static int store_imap_flags_result(const struct store_imap_msg *m)
{
	if (!m->result)
		return -ENOENT;
	if (!store_imap_flags_kept(m->flags, m->result)) {
		log_warnx("the server did not keep all of the flags '%s' "
			  "(it has '%s')",
			  m->flags, m->result);
		return -EINVAL;
	}
	return 0;
}

static int store_imap_set_flags_op(struct imap_session *s, void *arg)
{
	struct store_imap_msg *m = arg;
	char *dup, *tok, *save = NULL;
	int rc;

	rc = store_imap_select(s, m->folder, false, m->uidvalidity);
	if (rc)
		return rc == -ESTALE ? -ENOENT : rc;
	dup = strdup(m->flags);
	if (!dup)
		return -ENOMEM;
	for (tok = strtok_r(dup, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		if (!imap_flag_allowed(s, tok)) {
			log_warnx("flag '%s' is not allowed here", tok);
			free(dup);
			return -EINVAL;
		}
	}
	free(dup);
	free(m->result);
	m->result = NULL;
	if (imap_store_flags(s, m->uid, m->flags, &m->result) < 0)
		return STORE_IMAP_FAILED;
	return store_imap_flags_result(m);
}

static int store_imap_set_flags(struct store *st, const char *folder,
				uint32_t uidvalidity, uint32_t uid,
				const char *flags, char **result_r)
{
	struct store_imap_msg m = {.folder = folder,
				   .uidvalidity = uidvalidity,
				   .uid = uid,
				   .flags = flags};
	int rc;

	rc = store_imap_run(store_imap_of(st), folder, true,
			    store_imap_set_flags_op, &m);
	if (rc < 0) {
		free(m.result);
		return rc;
	}
	*result_r = m.result;
	return 0;
}

/* True when the server may store every flag of flags (space
 * separated) in the selected mailbox. */
static bool store_imap_flags_allowed(struct imap_session *s, const char *flags)
{
	char *dup = strdup(flags), *tok, *save = NULL;
	bool ok = dup != NULL;

	for (tok = dup ? strtok_r(dup, " ", &save) : NULL; tok && ok;
	     tok = strtok_r(NULL, " ", &save)) {
		ok = imap_flag_allowed(s, tok);
		if (!ok)
			log_warnx("flag '%s' is not allowed here", tok);
	}
	free(dup);
	return ok;
}

/* +FLAGS then -FLAGS, each only when it has flags: the message's other
 * flags (keywords) are never sent, so they stay whatever they are. */
static int store_imap_change_flags_op(struct imap_session *s, void *arg)
{
	struct store_imap_msg *m = arg;
	int rc;

	rc = store_imap_select(s, m->folder, false, m->uidvalidity);
	if (rc)
		return rc == -ESTALE ? -ENOENT : rc;
	if (!store_imap_flags_allowed(s, m->flags))
		return -EINVAL;
	free(m->result);
	m->result = NULL;
	if (*m->flags &&
	    imap_store_flags_mode(s, m->uid, '+', m->flags, &m->result) < 0)
		return STORE_IMAP_FAILED;
	if (*m->remove) {
		free(m->result);
		m->result = NULL;
		if (imap_store_flags_mode(s, m->uid, '-', m->remove,
					  &m->result) < 0)
			return STORE_IMAP_FAILED;
	}
	return store_imap_flags_result(m);
}

static int store_imap_change_flags(struct store *st, const char *folder,
				   uint32_t uidvalidity, uint32_t uid,
				   const char *add, const char *remove,
				   char **result_r)
{
	struct store_imap_msg m = {.folder = folder,
				   .uidvalidity = uidvalidity,
				   .uid = uid,
				   .flags = add,
				   .remove = remove};
	int rc;

	if (!*add && !*remove)
		return -EINVAL;
	rc = store_imap_run(store_imap_of(st), folder, true,
			    store_imap_change_flags_op, &m);
	if (rc < 0) {
		free(m.result);
		return rc;
	}
	*result_r = m.result;
	return 0;
}

/*
 * Moves one message: UID MOVE where the server has MOVE, else UID COPY,
 * then \Deleted and UID EXPUNGE of that UID alone. Cut at any point, the
 * message is in the source, the target, or both.
 */
static int store_imap_move_op(struct imap_session *s, void *arg)
{
	struct store_imap_msg *m = arg;
	unsigned caps = imap_caps(s);
	int rc;

	if (!(caps & (IMAP_CAP_MOVE | IMAP_CAP_UIDPLUS))) {
		log_warnx("the server has neither MOVE nor UIDPLUS: moving "
			  "would need an EXPUNGE of every deleted message, "
			  "so it is refused");
		return -EPERM;
	}
	rc = store_imap_select(s, m->folder, false, m->uidvalidity);
	if (rc)
		return rc == -ESTALE ? -ENOENT : rc;
	if (caps & IMAP_CAP_MOVE) {
		if (imap_copy(s, m->uid, m->target, true, &m->new_uid,
			      &m->new_uidvalidity) < 0)
			return STORE_IMAP_FAILED;
		return 0;
	}
	if (imap_copy(s, m->uid, m->target, false, &m->new_uid,
		      &m->new_uidvalidity) < 0)
		return STORE_IMAP_FAILED;
	if (imap_expunge_uid(s, m->uid) < 0) {
		log_warnx("message %u was copied to %s but could not be "
			  "removed from %s: it is now in both",
			  m->uid, m->target, m->folder);
		return STORE_IMAP_FAILED;
	}
	return 0;
}

static int store_imap_move(struct store *st, const char *folder,
			   uint32_t uidvalidity, uint32_t uid,
			   const char *target, uint32_t *uid_r,
			   uint32_t *uidvalidity_r)
{
	struct store_imap_msg m = {
		.folder = folder, .uidvalidity = uidvalidity, .uid = uid};
	int rc;

	m.target = target;
	rc = store_imap_run(store_imap_of(st), folder, false,
			    store_imap_move_op, &m);
	*uid_r = rc == 0 ? m.new_uid : 0;
	*uidvalidity_r = rc == 0 ? m.new_uidvalidity : 0;
	return rc;
}

static int store_imap_expunge_op(struct imap_session *s, void *arg)
{
	struct store_imap_msg *m = arg;
	int rc;

	rc = store_imap_select(s, m->folder, false, m->uidvalidity);
	if (rc)
		return rc == -ESTALE ? -ENOENT : rc;
	return imap_expunge_uid(s, m->uid) < 0 ? STORE_IMAP_FAILED : 0;
}

static int store_imap_expunge(struct store *st, const char *folder,
			      uint32_t uidvalidity, uint32_t uid)
{
	struct store_imap_msg m = {
		.folder = folder, .uidvalidity = uidvalidity, .uid = uid};

	return store_imap_run(store_imap_of(st), folder, false,
			      store_imap_expunge_op, &m);
}

/* Storage quota of INBOX's quota root, in KiB until returned. */
struct store_imap_quota {
	uint64_t used, limit;
	bool found;
};

static int store_imap_quota_op(struct imap_session *s, void *arg)
{
	struct store_imap_quota *q = arg;
	int rc = imap_quota(s, &q->used, &q->limit);

	q->found = rc == 1;
	return rc < 0 ? STORE_IMAP_FAILED : 0;
}

static int store_imap_quota(struct store *st, uint64_t *used_r,
			    uint64_t *limit_r)
{
	struct store_imap_quota q = {0};
	int rc = store_imap_run(store_imap_of(st), "INBOX", true,
				store_imap_quota_op, &q);

	if (rc < 0 || !q.found)
		return rc;
	*used_r = q.used * 1024;
	*limit_r = q.limit * 1024;
	return 1;
}

/* Arguments of the folder operations. */
struct store_imap_folder_args {
	const char *name;
	const char *to;
};

static int store_imap_create_op(struct imap_session *s, void *arg)
{
	struct store_imap_folder_args *a = arg;

	return imap_create(s, a->name) < 0 ? STORE_IMAP_FAILED : 0;
}

static int store_imap_create_folder(struct store *st, const char *name)
{
	struct store_imap_folder_args a = {name, NULL};

	return store_imap_run(store_imap_of(st), NULL, false,
			      store_imap_create_op, &a);
}

/* Deletes a folder only if it has no messages: IMAP's DELETE would
 * take them along. The check and the DELETE use one session, back to
 * back, to keep the window for another client's delivery small. */
static int store_imap_delete_op(struct imap_session *s, void *arg)
{
	struct store_imap_folder_args *a = arg;
	struct imap_mailbox mb;

	if (imap_select(s, a->name, true, true, &mb) < 0) {
		unsigned attrs;
		struct imap_error refused;
		int e;

		/* Only a \Noselect folder may be deleted unexamined: it
		 * cannot hold messages. Any other refusal (no right to read,
		 * in use...) stands, since DELETE would take the messages. */
		if (imap_error(s)->kind != IMAP_ERR_NO)
			return STORE_IMAP_FAILED;
		refused = *imap_error(s);
		if (imap_mailbox_attrs(s, a->name, &attrs) < 0)
			return STORE_IMAP_FAILED;
		if (!(attrs & IMAP_MBOX_NOSELECT)) {
			log_warnx("%s: not deleted, it cannot be examined: %s",
				  a->name, refused.text);
			e = store_errno_imap(&refused);
			return e == EIO ? -EACCES : -e;
		}
	} else if (mb.exists > 0) {
		return -ENOTEMPTY;
	}
	return imap_delete(s, a->name) < 0 ? STORE_IMAP_FAILED : 0;
}

static int store_imap_delete_folder(struct store *st, const char *name)
{
	struct store_imap_folder_args a = {name, NULL};

	return store_imap_run(store_imap_of(st), name, false,
			      store_imap_delete_op, &a);
}

static int store_imap_rename_op(struct imap_session *s, void *arg)
{
	struct store_imap_folder_args *a = arg;

	return imap_rename(s, a->name, a->to) < 0 ? STORE_IMAP_FAILED : 0;
}

static int store_imap_rename_folder(struct store *st, const char *from,
				    const char *to)
{
	struct store_imap_folder_args a = {from, to};

	return store_imap_run(store_imap_of(st), from, false,
			      store_imap_rename_op, &a);
}

/* Arguments of APPEND. */
struct store_imap_append {
	const char *folder;
	const char *flags;
	time_t date;
	uint64_t size;
	long (*read)(void *ctx, char *buf, size_t len);
	void *ctx;
	uint32_t uid, uidvalidity;
};

static int store_imap_append_op(struct imap_session *s, void *arg)
{
	struct store_imap_append *a = arg;

	return imap_append(s, a->folder, a->flags, a->date, a->size, a->read,
			   a->ctx, &a->uid, &a->uidvalidity) < 0
		       ? STORE_IMAP_FAILED
		       : 0;
}

static int store_imap_append(struct store *st, const char *folder,
			     const char *flags, time_t date, uint64_t size,
			     long (*read)(void *ctx, char *buf, size_t len),
			     void *ctx, uint32_t *uid_r,
			     uint32_t *uidvalidity_r)
{
	struct store_imap_append a = {folder, flags, date, size,
				      read,   ctx,   0,	   0};
	int rc;

	rc = store_imap_run(store_imap_of(st), NULL, false,
			    store_imap_append_op, &a);
	*uid_r = a.uid;
	*uidvalidity_r = a.uidvalidity;
	return rc;
}

static uint64_t store_imap_append_limit(struct store *st)
{
	return store_imap_of(st)->appendlimit;
}

/* Reports changes other clients make to INBOX as they happen (IDLE). */
static int store_imap_watch(struct store *st,
			    void (*changed)(void *ctx, const char *folder),
			    void *ctx)
{
	struct store_imap *si = store_imap_of(st);

	if (!si->push_ok || si->push)
		return 0;
	si->push = push_start(si->cfg, "INBOX", changed, ctx);
	return si->push ? 0 : -ENOMEM;
}

static void store_imap_destroy(struct store *st)
{
	struct store_imap *si = store_imap_of(st);
	unsigned i;

	push_stop(si->push);
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
	.set_flags = store_imap_set_flags,
	.change_flags = store_imap_change_flags,
	.move = store_imap_move,
	.expunge = store_imap_expunge,
	.create_folder = store_imap_create_folder,
	.delete_folder = store_imap_delete_folder,
	.rename_folder = store_imap_rename_folder,
	.append = store_imap_append,
	.quota = store_imap_quota,
	.append_limit = store_imap_append_limit,
	.watch = store_imap_watch,
	.destroy = store_imap_destroy,
};

struct store *store_imap_new(const struct imap_config *cfg,
			     unsigned connections, char *err, size_t errlen)
{
	return store_imap_start(cfg, connections, STORE_IMAP_CONNECT, NULL,
				err, errlen);
}

/* The first connection could not be made (or was not to be tried):
 * with offline allowed, the store starts without a session. */
static bool store_imap_start_offline(struct store_imap *si,
				     enum store_imap_start how,
				     const struct imap_error *ierr,
				     bool *offline_r)
{
	if (how == STORE_IMAP_CONNECT ||
	    (how == STORE_IMAP_MAY_BE_OFFLINE && !ierr->unreachable))
		return false;
	si->base.stats.online = false;
	si->base.stats.unreachable = true;
	if (how == STORE_IMAP_MAY_BE_OFFLINE)
		si->open_failed_at = clock_now_ms();
	*offline_r = true;
	return true;
}

struct store *store_imap_start(const struct imap_config *cfg,
			       unsigned connections,
			       enum store_imap_start how, bool *offline_r,
			       char *err, size_t errlen)
{
	struct store_imap *si;
	struct imap_error ierr = {0};

	si = calloc(1, sizeof(*si));
	if (!si)
		goto nomem;
	si->slots = calloc(connections, sizeof(*si->slots));
	if (!si->slots) {
		free(si);
		goto nomem;
	}
	si->base.ops = &store_imap_ops;
	si->base.has_flags = true;
	si->cfg = cfg;
	si->n_slots = connections;
	pthread_mutex_init(&si->lock, NULL);
	clock_cond_init(&si->cond);
	if (offline_r)
		*offline_r = false;
	if (how == STORE_IMAP_NO_CONNECT ||
	    imap_open(cfg, &si->slots[0].sess, &ierr) < 0) {
		snprintf(err, errlen, "%s",
			 how == STORE_IMAP_NO_CONNECT ? "-o offline"
						      : ierr.text);
		if (store_imap_start_offline(si, how, &ierr, offline_r))
			return &si->base;
		goto free_slots;
	}
	si->slots[0].last_used = clock_mono();
	si->base.stats.online = true;
	si->base.stats.conns_open = 1;
	log_set_conn(0);
	si->appendlimit = imap_appendlimit(si->slots[0].sess);
	/* Push takes one of the connections (never the last two: one
	 * always stays free for foreground calls). */
	if (connections >= 3 &&
	    (imap_caps(si->slots[0].sess) & IMAP_CAP_IDLE)) {
		si->n_slots = connections - 1;
		si->push_ok = true;
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
