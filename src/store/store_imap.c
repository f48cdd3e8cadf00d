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
 *
 * This file holds the pool, the listings, push and the operation table;
 * the other reads are in store_imap_read.c, the changes in
 * store_imap_write.c (store_imap_priv.h joins them).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "grow.h"
#include "imap.h"
#include "log.h"
#include "push.h"
#include "names.h"
#include "store.h"
#include "store_imap_priv.h"

/* After a connection attempt failed on the network, requests fail at
 * once for this long rather than each waiting out its timeout. */
#define STORE_IMAP_REOPEN_PAUSE_MS 1000
/* The least time a request must have left to retry on a new session. */
#define STORE_IMAP_RETRY_MIN_MS 500
/* A pooled session idle longer than this is checked before use. */
#define STORE_IMAP_IDLE_CHECK 60
/* The folder list answered with the first login serves a folders() call
 * this soon after it (the mount asks as it starts), not later. */
#define STORE_IMAP_EARLY_LIST_MS 2000

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
	/* The folder list answered in the first login's round trip
	 * (imap_open_listing()), for the first folders() call, and
	 * clock_now_ms() when it came (0: none). Under lock. */
	struct store_imap_list *early;
	long long early_ms;
};

/* The IMAP store behind the vtable's store (its first member). */
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
			return store_fail(-EIO, STORE_SCOPE_CONNECTION);
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
		return store_fail(-EIO, STORE_SCOPE_CONNECTION);
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
			return store_fail(-store_errno_imap(&err),
					  STORE_SCOPE_CONNECTION);
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

/* Runs op on a pooled session: see store_imap_priv.h. */
int store_imap_run(struct store *st, const char *folder, bool repeatable,
		   store_imap_op op, void *arg)
{
	struct store_imap *si = store_imap_of(st);
	int attempt, idx, rc = -EIO;
	bool fresh;

	store_scope_clear();
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
		rc = store_fail(-store_errno_imap(e), store_scope_imap(e));
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

/* Selects folder and checks its UIDVALIDITY: see store_imap_priv.h. */
int store_imap_select(struct imap_session *s, const char *folder, bool readonly,
		      uint32_t uidvalidity)
{
	struct imap_mailbox mb;

	if (imap_mailbox_select(s, folder, readonly, false, &mb) < 0)
		return STORE_IMAP_FAILED;
	if (mb.uidvalidity != uidvalidity &&
	    imap_mailbox_select(s, folder, readonly, true, &mb) < 0)
		return STORE_IMAP_FAILED;
	return mb.uidvalidity == uidvalidity
		       ? 0
		       : store_fail(-ESTALE, STORE_SCOPE_FOLDER);
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

/* Set once a bound's line is logged: the folder list is asked for again
 * and again (every `refresh`, at a missing folder name), the same line
 * each time would be noise; the tree logs what it shows less of when
 * that changes. */
static atomic_bool store_imap_logged_long_name, store_imap_logged_capped;

/* Whether a listed name may be kept (store.h's bounds); logs the first
 * one left out for each bound, once a mount. */
static bool store_imap_list_keep(struct store_imap_list *l, const char *name)
{
	size_t len = strnlen(name, STORE_MAX_FOLDER_NAME + 1);

	if (len > STORE_MAX_FOLDER_NAME) {
		if (!l->long_name &&
		    !atomic_exchange(&store_imap_logged_long_name, true))
			log_warnx("the server lists a folder name over %u "
				  "bytes: not shown",
				  STORE_MAX_FOLDER_NAME);
		l->long_name = true;
		return false;
	}
	if (l->n == STORE_MAX_FOLDERS ||
	    l->bytes + len > STORE_MAX_FOLDER_BYTES) {
		if (!l->capped &&
		    !atomic_exchange(&store_imap_logged_capped, true))
			log_warnx("the server lists more than %u folders or "
				  "%u MiB of names: showing the first %zu",
				  STORE_MAX_FOLDERS,
				  STORE_MAX_FOLDER_BYTES >> 20, l->n);
		l->capped = true;
		return false;
	}
	return true;
}

/* Takes one LIST (or LIST-STATUS) answer: a new folder at the end of
 * the array, or the state of the one listed just before. */
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
	f = grow_reserve(l->f, &l->cap, l->n + 1, sizeof(*f));
	if (!f) {
		l->nomem = true;
		return;
	}
	l->f = f;
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

/* LIST on one session, into a list emptied first (a retry starts over). */
static int store_imap_folders_op(struct imap_session *s, void *arg)
{
	struct store_imap_list *l = arg;

	store_folders_free(l->f, l->n);
	memset(l, 0, sizeof(*l));
	if (imap_mailbox_list(s, store_imap_list_cb, l) < 0)
		return STORE_IMAP_FAILED;
	return l->nomem ? -ENOMEM : 0;
}

/* The folder list answered with the first login, once, if it came less
 * than STORE_IMAP_EARLY_LIST_MS ago; NULL otherwise. Owned by the
 * caller. */
static struct store_imap_list *store_imap_early_take(struct store_imap *si)
{
	struct store_imap_list *l;
	long long at;

	pthread_mutex_lock(&si->lock);
	l = si->early;
	at = si->early_ms;
	si->early = NULL;
	si->early_ms = 0;
	pthread_mutex_unlock(&si->lock);
	if (l && clock_now_ms() - at <= STORE_IMAP_EARLY_LIST_MS)
		return l;
	if (l)
		store_folders_free(l->f, l->n);
	free(l);
	return NULL;
}

/* store_ops.folders: every folder the server lists, within store.h's
 * bounds. The first call right after the store started takes the list
 * that came with the login, at no round trip. */
static int store_imap_folders(struct store *st, struct store_folder **f_r,
			      size_t *n_r)
{
	struct store_imap_list l = {0}, *early;
	int rc;

	early = store_imap_early_take(store_imap_of(st));
	if (early) {
		log_debug("folder list: the one answered with the login");
		*f_r = early->f;
		*n_r = early->n;
		free(early);
		return 0;
	}

	rc = store_imap_run(st, NULL, true, store_imap_folders_op, &l);
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
	m = grow_reserve(out->msgs, &l->cap, out->n + 1, sizeof(*m));
	if (!m) {
		l->nomem = true;
		return NULL;
	}
	out->msgs = m;
	m = &out->msgs[out->n];
	memset(m, 0, sizeof(*m));
	return m;
}

/* Takes one message of a listing (UID, size, date, flags, Message-ID
 * hash, content identity). */
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

/* A resync's report of UIDs expunged since the listing it started from. */
static void store_imap_delta_vanished(void *ctx, uint32_t lo, uint32_t hi)
{
	struct store_imap_meta *l = ctx;

	if (!store_ranges_add(&l->out->vanished, lo, hi))
		l->nomem = true;
}

/* A resync's report of UIDs below UIDNEXT that still exist (CONDSTORE
 * without QRESYNC, when the count shows expunges). */
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

/* A listing on one session: a resync against l->prev when it has a
 * state, else (or when only a full one will do) EXAMINE and FETCH of
 * every message. */
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

/* store_ops.messages: 0 for a full listing, 2 for a delta against prev,
 * 1 when prev is unchanged. */
static int store_imap_messages(struct store *st, const char *folder,
			       const struct store_listing *prev,
			       struct store_listing *out)
{
	struct store_imap_meta l = {.folder = folder, .prev = prev, .out = out};
	int rc;

	memset(out, 0, sizeof(*out));
	rc = store_imap_run(st, folder, true, store_imap_messages_op, &l);
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

/* Takes one message of the i-th folder of a store_imap_many. */
static void store_imap_many_meta(void *ctx, size_t i,
				 const struct imap_msg_meta *m)
{
	struct store_imap_many *a = ctx;

	store_imap_meta_cb(&a->metas[i], m);
}

/* The i-th folder of a store_imap_many is listed (or failed): its
 * listing is handed to the caller, then freed. */
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

/* First listings of the folders not done yet, pipelined on one session
 * (a retry goes on from where the last attempt stopped). */
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

/* store_ops.messages_many: first listings of several folders in one
 * pipeline, each handed to done() as it completes. */
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
		rc = store_imap_run(st, NULL, true, store_imap_many_op, &a);
	for (i = 0; a.outs && i < n; i++)
		store_listing_clear(&a.outs[i]);
	free(a.metas);
	free(a.outs);
	for (i = 0; rc == 0 && i < n; i++)
		push_listed(store_imap_of(st)->push, folders[i]);
	return rc;
}

/* store_ops.append_limit: the server's APPENDLIMIT, 0 if it told none. */
static uint64_t store_imap_append_limit(struct store *st)
{
	return store_imap_of(st)->appendlimit;
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
	if (si->spare_running)
		pthread_setname_np(si->spare, "mailfs-spare");
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

/* store_ops.destroy: stops push and the spare session's thread, closes
 * every session. */
static void store_imap_destroy(struct store *st)
{
	struct store_imap *si = store_imap_of(st);
	unsigned i;

	push_stop(si->push);
	if (si->spare_running)
		pthread_join(si->spare, NULL);
	for (i = 0; i < si->n_slots; i++)
		imap_close(si->slots[i].sess);
	if (si->early)
		store_folders_free(si->early->f, si->early->n);
	free(si->early);
	free(si->slots);
	pthread_mutex_destroy(&si->lock);
	pthread_cond_destroy(&si->cond);
	free(si);
}

static const struct store_ops store_imap_ops = {
	.folders = store_imap_folders,
	.messages = store_imap_messages,
	.messages_many = store_imap_messages_many,
	.fetch = store_imap_read_fetch,
	.fetch_many = store_imap_read_fetch_many,
	.set_flags = store_imap_write_set_flags,
	.change_flags = store_imap_write_change_flags,
	.move = store_imap_write_move,
	.expunge = store_imap_write_expunge,
	.create_folder = store_imap_write_create_folder,
	.delete_folder = store_imap_write_delete_folder,
	.rename_folder = store_imap_write_rename_folder,
	.append = store_imap_write_append,
	.quota = store_imap_read_quota,
	.append_limit = store_imap_append_limit,
	.summary = store_imap_read_summary,
	.structure = store_imap_read_structure,
	.fetch_section = store_imap_read_fetch_section,
	.watch = store_imap_watch,
	.search = store_imap_read_search,
	.destroy = store_imap_destroy,
};

/* See store.h: store_imap_start() that must connect. */
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

/* Opens the first session into slot 0, with the folder list in the
 * login's round trip where it can come (kept for the first folders()):
 * a mount's first lookup needs it, and asking after the login would
 * cost one more round trip. */
static int store_imap_open_first(struct store_imap *si, struct imap_error *err)
{
	struct store_imap_list *l = calloc(1, sizeof(*l));
	bool listed = false;
	int rc;

	if (!l)
		return imap_open(si->cfg, &si->slots[0].sess, err);
	rc = imap_open_listing(si->cfg, &si->slots[0].sess, err,
			       store_imap_list_cb, l, &listed);
	if (rc == 0 && listed && !l->nomem) {
		si->early = l;
		si->early_ms = clock_now_ms();
		return 0;
	}
	store_folders_free(l->f, l->n);
	free(l);
	return rc;
}

/* See store.h. Opens the first session (unless told not to), which says
 * whether push may take a connection. */
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
	    store_imap_open_first(si, &ierr) < 0) {
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
