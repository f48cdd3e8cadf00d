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
#include "imap_parse.h"
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
	bool spare; /* busy opening the spare session: counts as free
		     * for background work (store_imap_free()) */
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
	unsigned connections; /* as configured (push may take one) */
	bool push_ok; /* a connection is kept for push */
	bool push_started; /* under lock */
	struct push *push; /* owned, NULL until watch() */
	/* watch()'s callback, kept for push started late (under lock). */
	store_event_fn event;
	void *event_ctx;
	/* What the first session tells (APPENDLIMIT, IDLE) is known: false
	 * while a mount that started offline has not connected yet. */
	_Atomic bool first_known;
	pthread_t spare; /* opens a second session (watch()) */
	bool spare_running;
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
		sel = imap_mailbox_selected(si->slots[i].sess);
		if (folder && sel && strcmp(sel, folder) == 0)
			return (int)i;
		if (open_idx < 0)
			open_idx = (int)i;
	}
	return open_idx >= 0 ? open_idx : closed_idx;
}

/* Slots not in use (open or not), the one the spare session is being
 * opened on included: it is free in a moment, and a foreground call
 * that finds every slot taken meanwhile waits at most for that login,
 * while background work refused now would start later; the lock is
 * held. */
static unsigned store_imap_free(const struct store_imap *si)
{
	unsigned i, n = 0;

	for (i = 0; i < si->n_slots; i++)
		n += !si->slots[i].busy || si->slots[i].spare;
	return n;
}

static void store_imap_push_start(struct store_imap *si);

/*
 * The first session of a mount that started offline (store_cache): what
 * store_imap_start() would have learnt from it (APPENDLIMIT, and whether
 * push may take a connection), and push started if watch() asked for it
 * meanwhile. Push takes the pool's last slot only if it is closed and
 * free, so that the pool never holds more than `connections`.
 */
static void store_imap_first_session(struct store_imap *si, int idx)
{
	struct imap_session *s = si->slots[idx].sess;
	unsigned last;
	bool start = false;

	pthread_mutex_lock(&si->lock);
	if (si->first_known) {
		pthread_mutex_unlock(&si->lock);
		return;
	}
	si->first_known = true;
	si->appendlimit = imap_appendlimit(s);
	last = si->n_slots - 1;
	if (si->connections >= 3 && (imap_caps(s) & IMAP_CAP_IDLE) &&
	    (int)last != idx && !si->slots[last].busy &&
	    !si->slots[last].sess) {
		si->n_slots = last;
		si->push_ok = true;
		start = si->event && !si->push_started;
		si->push_started |= start;
	}
	pthread_mutex_unlock(&si->lock);
	if (start) {
		log_info("connected: push started");
		store_imap_push_start(si);
	}
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
	if (store_is_background() && store_imap_free(si) < 2) {
		pthread_mutex_unlock(&si->lock);
		return -EAGAIN;
	}
	while ((idx = store_imap_pick(si, folder)) < 0) {
		if (pthread_cond_timedwait(&si->cond, &si->lock, &deadline) ==
		    ETIMEDOUT) {
			pthread_mutex_unlock(&si->lock);
			log_warnx("all %u connections stayed busy for %d s",
				  si->n_slots, si->cfg->timeout_ms / 1000);
			si->base.stats.net_failures++;
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
		    (!clock_recent(slot->last_used, clock_mono(),
				   STORE_IMAP_IDLE_CHECK + 1) &&
		     imap_noop(slot->sess) < 0)) {
			imap_close(slot->sess);
			slot->sess = NULL;
			si->base.stats.conns_open--;
		}
	}
	if (!slot->sess &&
	    clock_now_ms() - si->open_failed_at < STORE_IMAP_REOPEN_PAUSE_MS) {
		/* The server could not be reached a moment ago: a request
		 * right after (the kernel's retry of a read, say) fails
		 * at once instead of spending its own timeout too. */
		pthread_mutex_lock(&si->lock);
		slot->busy = false;
		pthread_cond_signal(&si->cond);
		pthread_mutex_unlock(&si->lock);
		si->base.stats.conns_busy--;
		si->base.stats.net_failures++;
		return -EIO;
	}
	if (!slot->sess) {
		if (imap_open(si->cfg, &slot->sess, &err) < 0) {
			if (err.kind == IMAP_ERR_NET) {
				si->open_failed_at = clock_now_ms();
				si->base.stats.net_failures++;
			}
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
		if (!si->first_known)
			store_imap_first_session(si, idx);
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
		if (e->kind == IMAP_ERR_NET)
			si->base.stats.net_failures++;
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

	if (imap_mailbox_select(s, folder, readonly, false, &mb) < 0)
		return STORE_IMAP_FAILED;
	if (mb.uidvalidity != uidvalidity &&
	    imap_mailbox_select(s, folder, readonly, true, &mb) < 0)
		return STORE_IMAP_FAILED;
	return mb.uidvalidity == uidvalidity ? 0 : -ESTALE;
}

/* Collects LIST entries into a growing array. */
struct store_imap_list {
	struct store_folder *f;
	size_t n, cap;
	size_t bytes; /* of the names kept */
	bool nomem;
	bool capped; /* STORE_MAX_FOLDERS or STORE_MAX_FOLDER_BYTES reached */
	bool long_name; /* a name over STORE_MAX_FOLDER_NAME was left out */
};

/* Whether a listed name may be kept (store.h's bounds); logs the first
 * one left out for each bound. */
static bool store_imap_list_keep(struct store_imap_list *l, const char *name)
{
	size_t len = strnlen(name, STORE_MAX_FOLDER_NAME + 1);

	if (len > STORE_MAX_FOLDER_NAME) {
		if (!l->long_name)
			log_warnx("the server lists a folder name over %u "
				  "bytes: not shown",
				  STORE_MAX_FOLDER_NAME);
		l->long_name = true;
		return false;
	}
	if (l->n == STORE_MAX_FOLDERS ||
	    l->bytes + len > STORE_MAX_FOLDER_BYTES) {
		if (!l->capped)
			log_warnx("the server lists more than %u folders or "
				  "%u MiB of names: showing the first %zu",
				  STORE_MAX_FOLDERS,
				  STORE_MAX_FOLDER_BYTES >> 20, l->n);
		l->capped = true;
		return false;
	}
	return true;
}

static void store_imap_list_cb(void *ctx, const struct imap_list_entry *e)
{
	struct store_imap_list *l = ctx;
	struct store_folder *f;

	if (l->nomem)
		return;
	if (e->status_only) {
		/* Its LIST line came just before. */
		size_t i;

		for (i = l->n; i > 0 && i + 8 > l->n; i--) {
			if (strcmp(l->f[i - 1].name, e->name) == 0) {
				l->f[i - 1].messages = e->messages;
				l->f[i - 1].uidnext = e->uidnext;
				l->f[i - 1].uidvalidity = e->uidvalidity;
				l->f[i - 1].modseq = e->modseq;
				break;
			}
		}
		return;
	}
	if (!store_imap_list_keep(l, e->name))
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
	/* Every field not told below is "not known" (0): the mtime too,
	 * which the tree then takes from elsewhere. */
	memset(f, 0, sizeof(*f));
	f->name = strdup(e->name);
	if (!f->name) {
		l->nomem = true;
		return;
	}
	l->bytes += strlen(f->name);
	f->delim = e->delim;
	f->messages = STORE_COUNT_UNKNOWN;
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
	if (imap_mailbox_list(s, store_imap_list_cb, l) < 0)
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

/* A new, zeroed message at the end of the listing being made, or NULL
 * (out of memory, or the listing is full: logged once). */
static struct store_msg *store_imap_meta_slot(struct store_imap_meta *l)
{
	struct store_listing *out = l->out;
	struct store_msg *m;

	if (l->nomem)
		return NULL;
	if (out->n == STORE_MAX_MESSAGES) {
		if (!l->capped)
			log_warnx("%s holds more than %u messages: showing "
				  "the first %u",
				  l->folder, STORE_MAX_MESSAGES,
				  STORE_MAX_MESSAGES);
		l->capped = true;
		return NULL;
	}
	if (out->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;

		m = realloc(out->msgs, cap * sizeof(*m));
		if (!m) {
			l->nomem = true;
			return NULL;
		}
		out->msgs = m;
		l->cap = cap;
	}
	m = &out->msgs[out->n];
	memset(m, 0, sizeof(*m));
	return m;
}

static void store_imap_meta_cb(void *ctx, const struct imap_msg_meta *mm)
{
	struct store_imap_meta *l = ctx;
	struct store_msg *m = store_imap_meta_slot(l);

	if (!m)
		return;
	m->uid = mm->uid;
	m->size = mm->size;
	m->date = mm->date;
	m->idhash = names_msgid_hash(mm->msgid_hdr ? mm->msgid_hdr : "",
				     mm->msgid_len);
	if (mm->oid && mm->oid_kind)
		m->oid = store_oid_make(mm->oid_kind, mm->oid, mm->size);
	m->flags = strdup(mm->flags);
	if (!m->flags) {
		l->nomem = true;
		return;
	}
	l->out->n++;
}

/* A resync's report of a known message's flags. */
static void store_imap_delta_flags(void *ctx, uint32_t uid, const char *flags)
{
	struct store_imap_meta *l = ctx;
	struct store_msg *m = store_imap_meta_slot(l);

	if (!m)
		return;
	m->uid = uid;
	m->flags_only = true;
	m->flags = strdup(flags);
	if (!m->flags) {
		l->nomem = true;
		return;
	}
	l->out->n++;
}

static void store_imap_delta_vanished(void *ctx, uint32_t lo, uint32_t hi)
{
	struct store_imap_meta *l = ctx;

	if (!store_ranges_add(&l->out->vanished, lo, hi))
		l->nomem = true;
}

static void store_imap_delta_present(void *ctx, uint32_t lo, uint32_t hi)
{
	struct store_imap_meta *l = ctx;

	if (!store_ranges_add(&l->out->present, lo, hi))
		l->nomem = true;
}

/* Fills the state of a listing from what EXAMINE said. */
static void store_imap_state(struct store_listing *out,
			     const struct imap_mailbox *mb)
{
	out->uidvalidity = mb->uidvalidity;
	out->uidnext = mb->uidnext;
	out->exists = mb->exists;
	out->modseq = mb->highestmodseq;
}

/*
 * Brings l->prev up to date with a delta in l->out (or finds it
 * unchanged). Sets *relist when only a full listing will do: the
 * server refused the resync, UIDVALIDITY changed or HIGHESTMODSEQ went
 * back (each logged).
 */
static int store_imap_resync(struct imap_session *s, struct store_imap_meta *l,
			     bool *relist)
{
	static const struct imap_resync_ops ops = {
		.meta = store_imap_meta_cb,
		.flags = store_imap_delta_flags,
		.vanished = store_imap_delta_vanished,
		.present = store_imap_delta_present,
	};
	const struct store_listing *prev = l->prev;
	struct imap_resync_state st = {prev->uidvalidity, prev->uidnext,
				       prev->exists, prev->modseq};
	struct store_listing *out = l->out;
	enum imap_resync_how how;
	struct imap_mailbox mb;
	bool present;

	*relist = false;
	if (imap_sync_resync(s, l->folder, &st, &ops, l, &mb, &how, &present) <
	    0) {
		if (!imap_usable(s) || imap_error(s)->kind != IMAP_ERR_BAD)
			return STORE_IMAP_FAILED;
		log_info("%s: the server refused the resync (%s): listing "
			 "it again",
			 l->folder, imap_error(s)->text);
		*relist = true;
		return 0;
	}
	store_imap_state(out, &mb);
	if (mb.uidvalidity != prev->uidvalidity) {
		log_info("%s: UIDVALIDITY changed from %u to %u: what was "
			 "known of it is dropped",
			 l->folder, prev->uidvalidity, mb.uidvalidity);
		*relist = true;
		return 0;
	}
	if (how != IMAP_RESYNC_FLAGS && mb.highestmodseq < prev->modseq) {
		log_warnx("%s: HIGHESTMODSEQ went back from %llu to %llu: "
			  "listing it again",
			  l->folder, (unsigned long long)prev->modseq,
			  (unsigned long long)mb.highestmodseq);
		*relist = true;
		return 0;
	}
	if (l->nomem || l->capped) {
		*relist = !l->nomem;
		return l->nomem ? -ENOMEM : 0;
	}
	if (how != IMAP_RESYNC_FLAGS && out->n == 0 && out->vanished.n == 0 &&
	    mb.highestmodseq == prev->modseq && mb.exists == prev->exists &&
	    mb.uidnext == prev->uidnext) {
		l->unchanged = true;
		return 0;
	}
	out->delta = true;
	out->complete = how == IMAP_RESYNC_FLAGS;
	out->have_present = present;
	store_ranges_normalize(&out->vanished);
	store_ranges_normalize(&out->present);
	return 0;
}

static int store_imap_messages_op(struct imap_session *s, void *arg)
{
	struct store_imap_meta *l = arg;
	struct store_listing *out = l->out;
	struct imap_mailbox mb;
	bool relist = true;
	int rc;

	store_listing_clear(out);
	l->cap = 0;
	l->unchanged = l->nomem = l->capped = false;
	if (l->prev && l->prev->uidvalidity) {
		rc = store_imap_resync(s, l, &relist);
		if (rc != 0 || !relist)
			return rc;
		store_listing_clear(out);
		l->cap = 0;
		l->capped = false;
	}
	/* A first listing: EXAMINE and FETCH in one round trip. */
	if (imap_sync_list(s, l->folder, store_imap_meta_cb, l, &mb) < 0)
		return STORE_IMAP_FAILED;
	store_imap_state(out, &mb);
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
	push_listed(store_imap_of(st)->push, folder);
	if (l.unchanged)
		return 1;
	return out->delta ? 2 : 0;
}

/* First listings of several folders on one session. */
struct store_imap_many {
	const char *const *folders;
	size_t n;
	struct store_imap_meta *metas;
	struct store_listing *outs;
	struct imap_session *s;
	size_t next; /* folders done so far */
	void (*done)(void *ctx, size_t i, int rc, struct store_listing *l);
	void *ctx;
};

static void store_imap_many_meta(void *ctx, size_t i,
				 const struct imap_msg_meta *m)
{
	struct store_imap_many *a = ctx;

	store_imap_meta_cb(&a->metas[i], m);
}

static void store_imap_many_done(void *ctx, size_t i, int rc,
				 const struct imap_mailbox *mb)
{
	struct store_imap_many *a = ctx;
	struct store_listing *out = &a->outs[i];

	a->next = i + 1;
	if (rc < 0) {
		rc = -store_errno_imap(imap_error(a->s));
		log_debug("%s: %s", a->folders[i], imap_error(a->s)->text);
	} else if (a->metas[i].nomem) {
		rc = -ENOMEM;
	} else {
		store_imap_state(out, mb);
	}
	a->done(a->ctx, i, rc, rc < 0 ? NULL : out);
	store_listing_clear(out);
}

static int store_imap_many_op(struct imap_session *s, void *arg)
{
	struct store_imap_many *a = arg;
	size_t i;

	a->s = s;
	for (i = a->next; i < a->n; i++) {
		store_listing_clear(&a->outs[i]);
		a->metas[i] = (struct store_imap_meta){.folder = a->folders[i],
						       .out = &a->outs[i]};
	}
	if (imap_sync_list_many(s, a->folders + a->next, a->n - a->next,
				store_imap_many_meta, store_imap_many_done,
				a) < 0 &&
	    !imap_usable(s))
		return STORE_IMAP_FAILED;
	return 0;
}

static int store_imap_messages_many(struct store *st,
				    const char *const *folders, size_t n,
				    void (*done)(void *ctx, size_t i, int rc,
						 struct store_listing *l),
				    void *ctx)
{
	struct store_imap_many a = {
		.folders = folders, .n = n, .done = done, .ctx = ctx};
	size_t i;
	int rc = -ENOMEM;

	a.metas = calloc(n ? n : 1, sizeof(*a.metas));
	a.outs = calloc(n ? n : 1, sizeof(*a.outs));
	if (a.metas && a.outs)
		rc = store_imap_run(store_imap_of(st), NULL, true,
				    store_imap_many_op, &a);
	for (i = 0; a.outs && i < n; i++)
		store_listing_clear(&a.outs[i]);
	free(a.metas);
	free(a.outs);
	for (i = 0; rc == 0 && i < n; i++)
		push_listed(store_imap_of(st)->push, folders[i]);
	return rc;
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

/* One UID FETCH of the messages not seen yet; with examine, the folder
 * is examined in the same round trip (imap_fetch_examine_body()). A NO
 * [EXPUNGEISSUED] still delivered what exists, so it counts as
 * success. */
static int store_imap_fetch_once(struct imap_session *s,
				 struct store_imap_fetch *f, bool examine)
{
	struct strbuf set = {0};
	bool stale = false;
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
	if (examine)
		rc = imap_fetch_examine_body(s, f->folder, f->uidvalidity,
					     set.data, f->offset, f->len,
					     store_imap_body_cb, f, &stale);
	else
		rc = imap_fetch_body(s, set.data, f->offset, f->len,
				     store_imap_body_cb, f);
	strbuf_free(&set);
	if (rc < 0 && imap_error(s)->kind == IMAP_ERR_NO &&
	    strcasecmp(imap_error(s)->code, "EXPUNGEISSUED") == 0)
		rc = 0;
	if (rc == 0 && stale)
		return -ESTALE;
	return rc < 0 ? STORE_IMAP_FAILED : 0;
}

static int store_imap_fetch_op(struct imap_session *s, void *arg)
{
	struct store_imap_fetch *f = arg;
	struct imap_mailbox mb;
	const char *sel = imap_mailbox_selected(s);
	bool missing = false, examined = !sel || strcmp(sel, f->folder) != 0;
	size_t i;
	int rc;

	if (examined) {
		rc = store_imap_fetch_once(s, f, true);
	} else {
		rc = store_imap_select(s, f->folder, true, f->uidvalidity);
		if (rc == 0)
			rc = store_imap_fetch_once(s, f, false);
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
			return store_imap_fetch_once(s, f, false);
	}
	return 0;
}

static int store_imap_fetch(struct store *st, const char *folder,
			    uint32_t uidvalidity, const uint32_t *uids,
			    size_t n, uint64_t offset, uint64_t len,
			    void (*cb)(void *ctx, const struct store_piece *p),
			    void *ctx)
{
	struct store_imap_fetch f = {.folder = folder,
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
	rc = store_imap_run(store_imap_of(st), folder, true,
			    store_imap_fetch_op, &f);
	free(f.seen);
	return rc;
}

/* Bodies of several folders on one session: one store_imap_fetch per
 * request, each with its own seen[] (a retry asks only for the rest). */
struct store_imap_many_fetch {
	struct store_fetch_req *reqs;
	struct store_imap_fetch *f; /* owned, n of them */
	size_t n;
};

/* Why request r (of fetch f) failed, as an errno; a NO
 * [EXPUNGEISSUED] still delivered what exists: success. */
static int store_imap_req_rc(const struct imap_body_req *r)
{
	if (r->rc == 0)
		return r->stale ? -ESTALE : 0;
	if (r->err.kind == IMAP_ERR_NO &&
	    strcasecmp(r->err.code, "EXPUNGEISSUED") == 0)
		return 0;
	return -store_errno_imap(&r->err);
}

/* On one session: EXAMINE + UID FETCH of each folder's messages not
 * seen yet (after a retry, only those), all in one write; each
 * request's result into its rc. */
static int store_imap_fetch_many_op(struct imap_session *s, void *arg)
{
	struct store_imap_many_fetch *a = arg;
	struct imap_body_req *r = calloc(a->n, sizeof(*r));
	struct strbuf *sets = calloc(a->n, sizeof(*sets));
	size_t *which = calloc(a->n, sizeof(*which));
	size_t i, k = 0;
	int rc = -ENOMEM;

	if (!r || !sets || !which)
		goto out;
	for (i = 0; i < a->n; i++) {
		struct store_imap_fetch *f = &a->f[i];

		store_imap_uid_set(&sets[i], f->uids, f->seen, f->n);
		if (strbuf_failed(&sets[i]))
			goto out;
		if (!sets[i].len)
			continue; /* all seen (before a retry) */
		r[k] = (struct imap_body_req){.mailbox = f->folder,
					      .uidvalidity = f->uidvalidity,
					      .uids = sets[i].data,
					      .len = f->len,
					      .cb = store_imap_body_cb,
					      .ctx = f};
		which[k++] = i;
	}
	rc = 0;
	if (k && imap_fetch_examine_body_many(s, r, k) < 0)
		rc = STORE_IMAP_FAILED;
	for (i = 0; rc == 0 && i < k; i++)
		a->reqs[which[i]].rc = store_imap_req_rc(&r[i]);
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
static int store_imap_fetch_many(struct store *st, struct store_fetch_req *reqs,
				 size_t n)
{
	struct store_imap_many_fetch a = {reqs, calloc(n ? n : 1, sizeof(*a.f)),
					  n};
	size_t i;
	int rc = -ENOMEM;

	for (i = 0; a.f && i < n; i++) {
		reqs[i].rc = 0;
		a.f[i] = (struct store_imap_fetch){
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
		rc = n ? store_imap_run(store_imap_of(st), reqs[0].folder, true,
					store_imap_fetch_many_op, &a)
		       : 0;
	for (i = 0; a.f && i < n; i++)
		free(a.f[i].seen);
	free(a.f);
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
		if (!imap_write_flag_allowed(s, tok)) {
			log_warnx("flag '%s' is not allowed here", tok);
			free(dup);
			return -EINVAL;
		}
	}
	free(dup);
	free(m->result);
	m->result = NULL;
	if (imap_write_flags(s, m->uid, m->flags, &m->result) < 0)
		return STORE_IMAP_FAILED;
	return store_imap_flags_result(m);
}

static int store_imap_set_flags(struct store *st, const char *folder,
				uint32_t uidvalidity,
				const struct store_msg *msg, const char *flags,
				char **result_r)
{
	struct store_imap_msg m = {.folder = folder,
				   .uidvalidity = uidvalidity,
				   .uid = msg->uid,
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
		ok = imap_write_flag_allowed(s, tok);
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
	    imap_write_flags_mode(s, m->uid, '+', m->flags, &m->result) < 0)
		return STORE_IMAP_FAILED;
	if (*m->remove) {
		free(m->result);
		m->result = NULL;
		if (imap_write_flags_mode(s, m->uid, '-', m->remove,
					  &m->result) < 0)
			return STORE_IMAP_FAILED;
	}
	return store_imap_flags_result(m);
}

static int store_imap_change_flags(struct store *st, const char *folder,
				   uint32_t uidvalidity,
				   const struct store_msg *msg, const char *add,
				   const char *remove, char **result_r)
{
	struct store_imap_msg m = {.folder = folder,
				   .uidvalidity = uidvalidity,
				   .uid = msg->uid,
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

/* With UIDPLUS, a MOVE or COPY answered without a COPYUID for the
 * message moved or copied nothing: the message was gone (another client
 * expunged it). */
static bool store_imap_moved_nothing(struct imap_session *s,
				     const struct store_imap_msg *m)
{
	if (!(imap_caps(s) & IMAP_CAP_UIDPLUS) || m->new_uid)
		return false;
	log_info("message %u of %s is gone: nothing was moved", m->uid,
		 m->folder);
	return true;
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
		if (imap_write_copy(s, m->uid, m->target, true, &m->new_uid,
				    &m->new_uidvalidity) < 0)
			return STORE_IMAP_FAILED;
		return store_imap_moved_nothing(s, m) ? -ENOENT : 0;
	}
	if (imap_write_copy(s, m->uid, m->target, false, &m->new_uid,
			    &m->new_uidvalidity) < 0)
		return STORE_IMAP_FAILED;
	/* Nothing was copied: nothing may be removed. */
	if (store_imap_moved_nothing(s, m))
		return -ENOENT;
	if (imap_write_expunge(s, m->uid) < 0) {
		log_warnx("message %u was copied to %s but could not be "
			  "removed from %s: it is now in both",
			  m->uid, m->target, m->folder);
		return STORE_IMAP_FAILED;
	}
	return 0;
}

static int store_imap_move(struct store *st, const char *folder,
			   uint32_t uidvalidity, const struct store_msg *msg,
			   const char *target, uint32_t *uid_r,
			   uint32_t *uidvalidity_r)
{
	struct store_imap_msg m = {
		.folder = folder, .uidvalidity = uidvalidity, .uid = msg->uid};
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
	return imap_write_expunge(s, m->uid) < 0 ? STORE_IMAP_FAILED : 0;
}

static int store_imap_expunge(struct store *st, const char *folder,
			      uint32_t uidvalidity, const struct store_msg *msg)
{
	struct store_imap_msg m = {
		.folder = folder, .uidvalidity = uidvalidity, .uid = msg->uid};

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

	return imap_mailbox_create(s, a->name) < 0 ? STORE_IMAP_FAILED : 0;
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

	if (imap_mailbox_select(s, a->name, true, true, &mb) < 0) {
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
	return imap_mailbox_delete(s, a->name) < 0 ? STORE_IMAP_FAILED : 0;
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

	return imap_mailbox_rename(s, a->name, a->to) < 0 ? STORE_IMAP_FAILED
							  : 0;
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

	return imap_write_append(s, a->folder, a->flags, a->date, a->size,
				 a->read, a->ctx, &a->uid, &a->uidvalidity) < 0
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

/* A search: what was asked, and each folder's answer. */
struct store_imap_search {
	const char *const *folders;
	size_t n;
	const struct search_query *q;
	struct imap_search_result *res; /* owned, n entries */
};

/* Whether a failed result is the server refusing the query (NO or BAD
 * to UID SEARCH, after EXAMINE worked) rather than a folder gone. */
static bool store_imap_search_refused(const struct imap_search_result *r)
{
	return r->failed && r->mb.uidvalidity != 0 &&
	       (r->err.kind == IMAP_ERR_NO || r->err.kind == IMAP_ERR_BAD);
}

/* Frees the results of an attempt (before a retry, or at the end). */
static void store_imap_search_clear(struct store_imap_search *x)
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
static int store_imap_search_op(struct imap_session *s, void *arg)
{
	struct store_imap_search *x = arg;

	store_imap_search_clear(x);
	return imap_search_mailboxes(s, x->folders, x->n, x->q,
				     STORE_MAX_MESSAGES, x->res) < 0
		       ? STORE_IMAP_FAILED
		       : 0;
}

/* Reports each folder searched to cb; -EINVAL (logged with the
 * server's text) when the server refused the query. */
static int store_imap_search_report(
	struct store_imap_search *x,
	void (*cb)(void *ctx, const struct store_search_hit *h), void *ctx)
{
	size_t i;

	for (i = 0; i < x->n; i++) {
		const struct imap_search_result *r = &x->res[i];

		if (store_imap_search_refused(r)) {
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

static int store_imap_search(struct store *st, const char *const *folders,
			     size_t n, const struct search_query *q,
			     void (*cb)(void *ctx,
					const struct store_search_hit *h),
			     void *ctx)
{
	struct store_imap_search x = {folders, n, q, NULL};
	int rc;

	if (n == 0)
		return 0;
	x.res = calloc(n, sizeof(*x.res));
	if (!x.res)
		return -ENOMEM;
	rc = store_imap_run(store_imap_of(st), n == 1 ? folders[0] : NULL, true,
			    store_imap_search_op, &x);
	if (rc == 0)
		rc = store_imap_search_report(&x, cb, ctx);
	store_imap_search_clear(&x);
	free(x.res);
	return rc;
}

/*
 * Opens a second pooled session ahead of need and leaves it idle in the
 * pool. Background work (read-ahead, walk listings) may only use a
 * session when another stays free, so with one session open its first
 * batch would wait for a new connection: at 40 ms RTT that is about
 * 200 ms (TCP, TLS, greeting, login) in the middle of a grep.
 */
static void *store_imap_spare_main(void *arg)
{
	struct store_imap *si = arg;
	struct store_imap_slot *slot = NULL;
	struct imap_error err;
	unsigned i, open = 0;

	pthread_mutex_lock(&si->lock);
	for (i = 0; i < si->n_slots; i++) {
		if (si->slots[i].sess)
			open++;
		else if (!si->slots[i].busy && !slot)
			slot = &si->slots[i];
	}
	if (open >= 2 || !slot) {
		pthread_mutex_unlock(&si->lock);
		return NULL;
	}
	slot->busy = slot->spare = true;
	pthread_mutex_unlock(&si->lock);
	si->base.stats.conns_busy++;
	if (imap_open(si->cfg, &slot->sess, &err) == 0) {
		si->base.stats.conns_open++;
		log_debug("opened a spare session");
	} else {
		slot->sess = NULL;
		log_debug("spare session: %s", err.text);
	}
	pthread_mutex_lock(&si->lock);
	slot->spare = false;
	pthread_mutex_unlock(&si->lock);
	store_imap_put(si, (int)(slot - si->slots));
	return NULL;
}

/* Reports changes other clients make as they happen (push.c), and opens
 * the spare session (store_imap_spare_main()). */
static int store_imap_watch(struct store *st, store_event_fn event, void *ctx)
{
	struct store_imap *si = store_imap_of(st);
	bool start;

	/* Only where background work may run beside a foreground call
	 * (three pooled sessions or more, see store_imap_get()). */
	if (si->n_slots >= 3 && si->base.stats.online && !si->spare_running)
		si->spare_running =
			pthread_create(&si->spare, NULL, store_imap_spare_main,
				       si) == 0;
	pthread_mutex_lock(&si->lock);
	si->event = event;
	si->event_ctx = ctx;
	start = si->push_ok && !si->push_started;
	si->push_started |= start;
	pthread_mutex_unlock(&si->lock);
	if (start)
		store_imap_push_start(si);
	return 0;
}

/* Starts the push thread (once: push_started was set under the lock);
 * without it, changes show after `refresh` seconds, as without push. */
static void store_imap_push_start(struct store_imap *si)
{
	si->push = push_start(si->cfg, "INBOX", si->event, si->event_ctx);
	if (!si->push)
		log_warnx("push could not start: changes by other clients "
			  "show after -o refresh seconds");
}

static void store_imap_destroy(struct store *st)
{
	struct store_imap *si = store_imap_of(st);
	unsigned i;

	push_stop(si->push);
	if (si->spare_running)
		pthread_join(si->spare, NULL);
	for (i = 0; i < si->n_slots; i++)
		imap_close(si->slots[i].sess);
	free(si->slots);
	pthread_mutex_destroy(&si->lock);
	pthread_cond_destroy(&si->cond);
	free(si);
}

/*
 * Parts of messages: the summary of a folder (ENVELOPE of every
 * message), a message's structure (BODYSTRUCTURE, BINARY.SIZE) and one
 * section's bytes (BODY.PEEK or BINARY.PEEK, partial).
 */

/* The most sections whose BINARY.SIZE one command asks for. */
#define STORE_IMAP_MAX_SIZES 64

struct store_imap_summary {
	const char *folder;
	uint32_t uidvalidity;
	void (*cb)(void *ctx, const struct store_summary *m);
	void *ctx;
	struct strbuf flags;
};

/* Takes one message's UID FLAGS RFC822.SIZE INTERNALDATE ENVELOPE. */
static bool store_imap_summary_cb(void *ctx, uint32_t uid,
				  const struct imap_tok *l)
{
	struct store_imap_summary *a = ctx;
	struct store_summary m = {.uid = uid};
	bool have_env = false, have_size = false;
	size_t i, j;

	strbuf_reset(&a->flags);
	for (i = 0; i + 1 < l->n_items; i += 2) {
		const struct imap_tok *k = &l->items[i], *v = &l->items[i + 1];

		if (imap_tok_is(k, "ENVELOPE")) {
			/* a malformed one still gives the line, empty */
			have_env = true;
			msgstruct_envelope(v, &m.env);
		} else if (imap_tok_is(k, "RFC822.SIZE")) {
			have_size = imap_tok_u64(v, &m.size);
			if (m.size > IMAP_MAX_MESSAGE)
				m.size = IMAP_MAX_MESSAGE;
		} else if (imap_tok_is(k, "INTERNALDATE")) {
			if (!imap_internaldate(v, &m.date))
				m.date = 0;
		} else if (imap_tok_is(k, "FLAGS") &&
			   v->type == IMAP_TOK_LIST) {
			for (j = 0; j < v->n_items; j++) {
				const struct imap_tok *f = &v->items[j];

				if (f->type != IMAP_TOK_ATOM ||
				    imap_tok_is(f, "\\Recent"))
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

static int store_imap_summary_op(struct imap_session *s, void *arg)
{
	struct store_imap_summary *a = arg;
	int rc = store_imap_select(s, a->folder, true, a->uidvalidity);

	if (rc)
		return rc;
	if (imap_exists(s) == 0)
		return 0; /* "1:*" on an empty mailbox upsets some servers */
	if (imap_fetch_items(s, "1:*",
			     "FLAGS RFC822.SIZE INTERNALDATE ENVELOPE",
			     store_imap_summary_cb, a) < 0)
		return STORE_IMAP_FAILED;
	return 0;
}

static int
store_imap_summary(struct store *st, const char *folder, uint32_t uidvalidity,
		   void (*cb)(void *ctx, const struct store_summary *m),
		   void *ctx)
{
	struct store_imap_summary a = {folder, uidvalidity, cb, ctx, {0}};
	int rc = store_imap_run(store_imap_of(st), folder, true,
				store_imap_summary_op, &a);

	strbuf_free(&a.flags);
	return rc;
}

struct store_imap_structure {
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
static bool store_imap_structure_cb(void *ctx, uint32_t uid,
				    const struct imap_tok *l)
{
	struct store_imap_structure *a = ctx;
	bool ours = false;
	size_t i;

	if (uid != a->uid)
		return false;
	for (i = 0; i + 1 < l->n_items; i += 2) {
		const struct imap_tok *k = &l->items[i], *v = &l->items[i + 1];

		if (imap_tok_is(k, "BODYSTRUCTURE") && !a->ms) {
			a->parse_rc = msgstruct_parse(v, &a->ms);
			ours = true;
		} else if (imap_tok_is(k, "BODY[HEADER]") &&
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
static bool store_imap_sizes_cb(void *ctx, uint32_t uid,
				const struct imap_tok *l)
{
	struct store_imap_structure *a = ctx;
	char sec[MSGSTRUCT_SECTION_MAX + 16];
	uint64_t n;
	size_t i, j;

	if (uid != a->uid)
		return false;
	for (i = 0; i + 1 < l->n_items; i += 2) {
		const struct imap_tok *k = &l->items[i];

		if (k->type != IMAP_TOK_ATOM || k->len < 13 ||
		    strncasecmp(k->str, "BINARY.SIZE[", 12) != 0 ||
		    !imap_tok_u64(&l->items[i + 1], &n))
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
 * not give (base64, quoted-printable), STORE_IMAP_MAX_SIZES parts a
 * command: every part's file then has its exact size at the first
 * stat, without a fetch of the part. */
static int store_imap_sizes(struct imap_session *s,
			    struct store_imap_structure *a)
{
	struct strbuf items = {0};
	char uid[16];
	size_t i = 0, n;
	int rc = 0;

	snprintf(uid, sizeof(uid), "%u", a->uid);
	while (rc == 0 && i < a->ms->n) {
		strbuf_reset(&items);
		for (n = 0; i < a->ms->n && n < STORE_IMAP_MAX_SIZES; i++) {
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
		else if (n && imap_fetch_items(s, uid, items.data,
					       store_imap_sizes_cb, a) < 0) {
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

static int store_imap_structure_op(struct imap_session *s, void *arg)
{
	struct store_imap_structure *a = arg;
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
			     store_imap_structure_cb, a) < 0)
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
		return store_imap_sizes(s, a);
	for (size_t i = 0; i < a->ms->n; i++) {
		if (a->ms->parts[i].enc == MSGSTRUCT_ENC_IDENTITY) {
			a->ms->parts[i].exact = true;
			a->ms->parts[i].exact_size = a->ms->parts[i].size;
		}
	}
	return 0;
}

static int store_imap_structure(struct store *st, const char *folder,
				uint32_t uidvalidity, uint32_t uid,
				struct msgstruct **ms_r)
{
	struct store_imap_structure a = {
		.folder = folder, .uidvalidity = uidvalidity, .uid = uid};
	int rc = store_imap_run(store_imap_of(st), folder, true,
				store_imap_structure_op, &a);

	free(a.header);
	if (rc < 0) {
		msgstruct_free(a.ms);
		return rc;
	}
	*ms_r = a.ms;
	return 0;
}

struct store_imap_section {
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
static bool store_imap_section_cb(void *ctx, uint32_t uid,
				  const struct imap_tok *l)
{
	struct store_imap_section *a = ctx;
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

static int store_imap_section_op(struct imap_session *s, void *arg)
{
	struct store_imap_section *a = arg;
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
	if (imap_fetch_items(s, uid, items, store_imap_section_cb, a) < 0) {
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

static int store_imap_fetch_section(
	struct store *st, const char *folder, uint32_t uidvalidity,
	uint32_t uid, const char *section, bool binary, uint64_t offset,
	uint64_t len, void (*cb)(void *ctx, const char *data, size_t len),
	void *ctx)
{
	struct store_imap_section a = {
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
	return store_imap_run(store_imap_of(st), folder, true,
			      store_imap_section_op, &a);
}

static const struct store_ops store_imap_ops = {
	.folders = store_imap_folders,
	.messages = store_imap_messages,
	.messages_many = store_imap_messages_many,
	.fetch = store_imap_fetch,
	.fetch_many = store_imap_fetch_many,
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
	.summary = store_imap_summary,
	.structure = store_imap_structure,
	.fetch_section = store_imap_fetch_section,
	.watch = store_imap_watch,
	.search = store_imap_search,
	.destroy = store_imap_destroy,
};

struct store *store_imap_new(const struct imap_config *cfg,
			     unsigned connections, char *err, size_t errlen)
{
	return store_imap_start(cfg, connections, STORE_IMAP_CONNECT, NULL, err,
				errlen);
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
			       unsigned connections, enum store_imap_start how,
			       bool *offline_r, char *err, size_t errlen)
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
	si->connections = connections;
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
	si->first_known = true;
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
