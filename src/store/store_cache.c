// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * store_cache: the store the mount uses when the disk cache is on. It
 * wraps the IMAP store and keeps what passes through on disk
 * (diskcache): the folder list and each listing after every successful
 * one, and fetched bodies. It answers from disk first:
 *
 * - a folder's first listing of a mount is the saved one, handed to the
 *   IMAP store as `prev` so that it is only brought up to date (one
 *   resync round trip when nothing changed);
 * - a body piece on disk costs no FETCH.
 *
 * Offline mode: when the server cannot be reached (at mount, or lost
 * later: the IMAP store's stats say `unreachable`), listings and bodies
 * come from disk only; a body that is not all there fails with EIO, at
 * once and with a log line; a thread tries to reconnect with backoff
 * and goes back online by itself. Changes made offline (flags, moves,
 * removals, new messages) are kept in the journal (journal.c, fsynced
 * before the call returns) and shown at once (store_journal.c's
 * overlay); when the server can be reached again they are sent, in
 * order, before any new change (every change goes to the journal while
 * one is pending), and the folders they touched are listed anew. Folder
 * changes stay EROFS offline, and so does everything without a journal
 * (-o offline_changes=no).
 *
 * This file holds folder lists and listings, offline mode, the reconnect
 * thread and the operation table; the other reads are in
 * store_cache_read.c, the changes in store_cache_write.c
 * (store_cache_priv.h joins them).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "diskcache.h"
#include "journal.h"
#include "log.h"
#include "prefetch.h"
#include "store.h"
#include "store_cache_priv.h"
#include "store_journal.h"
#include "uthash.h"

/* Reconnect attempts: the first after this, doubling up to the last
 * (the shorter last while changes made offline wait to be sent: they
 * reach the server within seconds of its return). */
#define STORE_CACHE_BACKOFF_MIN_MS 2000
#define STORE_CACHE_BACKOFF_MAX_MS 30000
#define STORE_CACHE_BACKOFF_PENDING_MS 4000
/* A suspected loss is checked after the pool's pause after a failed
 * connection attempt (store_imap.c: 1 s). */
#define STORE_CACHE_CONFIRM_MS 1100

/* A folder to list anew in full: kept changes showed it other than the
 * server has it. */
struct store_cache_relist {
	char *name; /* owned: server name */
	UT_hash_handle hh;
};

/* What the folder list last told of one folder (IMAP LIST-STATUS). */
struct store_cache_seen {
	char *name; /* owned: server name */
	uint32_t messages, uidnext, uidvalidity;
	uint64_t modseq;
	UT_hash_handle hh;
};

/* The disk-cache store behind the vtable's store (its first member). */
struct store_cache *store_cache_of(struct store *st)
{
	return (struct store_cache *)st;
}

/* Logs why a call was refused offline, at most once a second. */
void store_cache_refused(struct store_cache *sc, const char *what,
			 const char *folder)
{
	long long now = clock_now_ms();

	if (now - sc->last_refusal_log < 1000)
		return;
	sc->last_refusal_log = now;
	log_warnx("offline (the server cannot be reached): %s%s%s refused",
		  what, folder ? " in " : "", folder ? folder : "");
}

/* A call found the server unreachable (rc, right after the call): the
 * reconnect thread checks
 * once more (a connection cut at the wrong moment is no lost server)
 * and then switches to offline mode. */
void store_cache_check_lost(struct store_cache *sc, int rc)
{
	/* Only a failure of the connection (its scope, recorded by the
	 * call that failed, in this thread) says the server may be gone;
	 * a message or a folder refused says nothing of it. */
	if (rc >= 0 || sc->forced || sc->offline ||
	    store_scope_last() != STORE_SCOPE_CONNECTION ||
	    !store_get_stats(sc->inner)->unreachable)
		return;
	pthread_mutex_lock(&sc->lock);
	sc->suspect = true;
	pthread_cond_signal(&sc->cond);
	pthread_mutex_unlock(&sc->lock);
}

/* The reconnect thread's check of a suspected loss (lock held on entry
 * and exit): after the pool's pause, one more connection attempt. */
static void store_cache_confirm_lost(struct store_cache *sc)
{
	struct timespec ts = clock_deadline(STORE_CACHE_CONFIRM_MS);
	struct store_folder *f;
	size_t n;
	int rc;

	while (!sc->stop &&
	       pthread_cond_timedwait(&sc->cond, &sc->lock, &ts) != ETIMEDOUT)
		;
	if (sc->stop)
		return;
	pthread_mutex_unlock(&sc->lock);
	rc = sc->inner->ops->folders(sc->inner, &f, &n);
	if (rc == 0) {
		diskcache_put_folders(sc->dc, f, n);
		store_folders_free(f, n);
	} else if (store_get_stats(sc->inner)->unreachable) {
		log_warnx("the server cannot be reached: offline mode, "
			  "serving what the disk cache holds");
		sc->offline = true;
	}
	pthread_mutex_lock(&sc->lock);
	sc->suspect = false;
}

/* Forgets the folder states of the folder list (all of them, or one
 * folder's); the lock is not held. */
void store_cache_seen_drop(struct store_cache *sc, const char *folder)
{
	struct store_cache_seen *e, *tmp;

	pthread_mutex_lock(&sc->seen_lock);
	HASH_ITER(hh, sc->seen, e, tmp)
	{
		if (folder && strcmp(e->name, folder) != 0)
			continue;
		HASH_DEL(sc->seen, e);
		free(e->name);
		free(e);
	}
	pthread_mutex_unlock(&sc->seen_lock);
}

/* Keeps the states a folder list told (those with HIGHESTMODSEQ: without
 * it, a flag change would go unseen), asked for at `at`. */
static void store_cache_seen_set(struct store_cache *sc,
				 const struct store_folder *f, size_t n,
				 time_t at)
{
	struct store_cache_seen *e;
	size_t i;

	store_cache_seen_drop(sc, NULL);
	pthread_mutex_lock(&sc->seen_lock);
	sc->seen_at = at;
	for (i = 0; i < n; i++) {
		if (!f[i].modseq || !f[i].uidvalidity || !f[i].uidnext ||
		    f[i].messages == STORE_COUNT_UNKNOWN)
			continue;
		e = calloc(1, sizeof(*e));
		if (!e || !(e->name = strdup(f[i].name))) {
			free(e);
			break;
		}
		e->messages = f[i].messages;
		e->uidnext = f[i].uidnext;
		e->uidvalidity = f[i].uidvalidity;
		e->modseq = f[i].modseq;
		HASH_ADD_KEYPTR(hh, sc->seen, e->name, strlen(e->name), e);
	}
	pthread_mutex_unlock(&sc->seen_lock);
}

/* The state of folder's saved listing, when it is one to use online:
 * one saved before mailfs asked for content identities is not (the
 * folder is listed in full once, so that its messages get theirs). */
static bool store_cache_saved_state(struct store_cache *sc, const char *folder,
				    struct store_listing *state_r)
{
	if (!diskcache_get_state(sc->dc, folder, state_r))
		return false;
	if (diskcache_listing_has_ids(sc->dc, folder))
		return true;
	log_debug("%s: its saved listing has no message identities: listing "
		  "it in full",
		  folder);
	return false;
}

/* True when the folder list, told less than `refresh` seconds ago,
 * shows the folder in the state st (a saved listing's): same
 * UIDVALIDITY, UIDNEXT, message count and HIGHESTMODSEQ, so nothing was
 * added, expunged or re-flagged since. *at_r: when the list was asked
 * for. */
static bool store_cache_seen_same(struct store_cache *sc, const char *folder,
				  const struct store_listing *st, time_t *at_r)
{
	struct store_cache_seen *e;
	bool same;

	pthread_mutex_lock(&sc->seen_lock);
	HASH_FIND_STR(sc->seen, folder, e);
	same = e && clock_recent(sc->seen_at, clock_mono(), sc->refresh) &&
	       e->uidvalidity == st->uidvalidity && e->uidnext == st->uidnext &&
	       e->messages == st->exists && e->modseq == st->modseq;
	*at_r = sc->seen_at;
	pthread_mutex_unlock(&sc->seen_lock);
	return same;
}

/*
 * The saved listing of a folder the folder list shows unchanged since it
 * was saved: no command at all. Its as_of is when the folder list was
 * asked for, so that the tree lists the folder again `refresh` seconds
 * after that, as after any listing. 0, or -1 when it cannot be used.
 */
static int store_cache_saved_unchanged(struct store_cache *sc,
				       const char *folder,
				       struct store_listing *out)
{
	struct store_listing state;
	time_t at;

	memset(out, 0, sizeof(*out));
	if (!store_cache_saved_state(sc, folder, &state) ||
	    !store_cache_seen_same(sc, folder, &state, &at) ||
	    diskcache_get_listing(sc->dc, folder, out) < 0)
		return -1;
	/* Saved again meanwhile: only the state checked will do. */
	if (!store_cache_seen_same(sc, folder, out, &at)) {
		store_listing_clear(out);
		return -1;
	}
	out->as_of = at;
	log_debug("%s: unchanged since its saved listing (folder list)",
		  folder);
	return 0;
}

/*
 * Gives each folder of a list from the server the time its content was
 * last seen to change (diskcache_mtime()): the kept one while the
 * STATUS the list carries (LIST-STATUS) is the state it was kept for,
 * else now, so that a folder that changed while no mount watched shows
 * a later mtime from the first look. A folder the list tells no state
 * of keeps the kept time (0 if none).
 */
static void store_cache_stamp_folders(struct store_cache *sc,
				      struct store_folder *f, size_t n)
{
	struct store_listing state;
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < n; i++) {
		bool told = f[i].uidvalidity && f[i].uidnext &&
			    f[i].messages != STORE_COUNT_UNKNOWN;

		memset(&state, 0, sizeof(state));
		state.uidvalidity = f[i].uidvalidity;
		state.uidnext = f[i].uidnext;
		state.exists = f[i].messages;
		state.modseq = f[i].modseq;
		f[i].mtime = diskcache_mtime(sc->dc, f[i].name,
					     told ? &state : NULL, now);
	}
}

/* store_ops.folders: the server's list (saved, and its folder states
 * kept for store_cache_seen_same()); offline, the saved one. */
static int store_cache_folders(struct store *st, struct store_folder **f_r,
			       size_t *n_r)
{
	struct store_cache *sc = store_cache_of(st);
	int rc;

	if (!sc->offline) {
		time_t at = clock_mono();

		rc = sc->inner->ops->folders(sc->inner, f_r, n_r);
		if (rc == 0) {
			store_cache_seen_set(sc, *f_r, *n_r, at);
			store_cache_stamp_folders(sc, *f_r, *n_r);
			diskcache_put_folders(sc->dc, *f_r, *n_r);
			return 0;
		}
		store_cache_check_lost(sc, rc);
		if (!sc->offline)
			return rc;
	}
	rc = diskcache_get_folders(sc->dc, f_r, n_r);
	return rc == 0 ? 0 : -EIO;
}

/* True when two listing states are the same (no messages compared). */
static bool store_cache_same_state(const struct store_listing *a,
				   const struct store_listing *b)
{
	return a->uidvalidity == b->uidvalidity && a->uidnext == b->uidnext &&
	       a->exists == b->exists && a->modseq == b->modseq;
}

/* Whether a change goes to the journal now: offline, or while changes
 * kept offline wait to be sent (none may overtake them). */
bool store_cache_journaling(struct store_cache *sc)
{
	unsigned pending, failed;

	if (sc->offline)
		return true;
	if (!sc->j)
		return false;
	journal_counts(sc->j, &pending, &failed);
	return pending > 0;
}

/* Offline (or while kept changes to the folder wait to be sent): the
 * listing the tree has stays (1), else the saved one, with the kept
 * changes shown. */
static int store_cache_messages_offline(struct store_cache *sc,
					const char *folder,
					const struct store_listing *prev,
					struct store_listing *out)
{
	memset(out, 0, sizeof(*out));
	if (prev) {
		*out = *prev;
		out->msgs = NULL;
		out->n = 0;
		return 1;
	}
	if (diskcache_get_listing(sc->dc, folder, out) == 0) {
		if (sc->j && store_journal_overlay(sc->j, folder, out) < 0) {
			store_listing_clear(out);
			return -ENOMEM;
		}
		return 0;
	}
	store_cache_refused(sc, "listing (not cached)", folder);
	return -EIO;
}

/* Marks a folder to be listed anew in full (kept changes were shown in
 * it), and tells the layers above that it changed. */
static void store_cache_touched(void *ctx, const char *folder)
{
	struct store_cache *sc = ctx;
	struct store_cache_relist *r;

	pthread_mutex_lock(&sc->seen_lock);
	HASH_FIND_STR(sc->relist, folder, r);
	if (!r && (r = calloc(1, sizeof(*r))) && !(r->name = strdup(folder))) {
		free(r);
		r = NULL;
	} else if (r && !r->hh.key) {
		HASH_ADD_KEYPTR(hh, sc->relist, r->name, strlen(r->name), r);
	}
	pthread_mutex_unlock(&sc->seen_lock);
}

/* Whether folder is to be listed anew in full; forgets it (take). */
static bool store_cache_relisting(struct store_cache *sc, const char *folder,
				  bool take)
{
	struct store_cache_relist *r;

	pthread_mutex_lock(&sc->seen_lock);
	HASH_FIND_STR(sc->relist, folder, r);
	if (r && take) {
		HASH_DEL(sc->relist, r);
		free(r->name);
		free(r);
	}
	pthread_mutex_unlock(&sc->seen_lock);
	return r != NULL;
}

/*
 * Turns the IMAP store's delta against the saved listing into a full
 * listing (0), which is saved; when the changes do not add up, lists
 * the folder again in full. A delta against the caller's listing (the
 * saved one lags behind it) goes up as it is (2): the saved listing
 * stays older, which a later resync from it still brings up to date.
 */
static int store_cache_merge(struct store_cache *sc, const char *folder,
			     const struct store_listing *saved,
			     struct store_listing *out)
{
	struct store_listing full;
	int rc;

	if (!saved)
		return 2;
	rc = store_listing_merge(saved, out, &full);
	store_listing_clear(out);
	if (rc == 0) {
		*out = full;
		return 0;
	}
	log_info("%s: the changes the server reported do not add up: "
		 "listing it again",
		 folder);
	return sc->inner->ops->messages(sc->inner, folder, NULL, out);
}

/*
 * A listing: the saved one (when the caller has none, or has the same
 * state without messages) is given to the IMAP store as prev, so that
 * it is only brought up to date. A full answer is saved.
 */
static int store_cache_messages_get(struct store *st, const char *folder,
				    const struct store_listing *prev,
				    struct store_listing *out)
{
	struct store_cache *sc = store_cache_of(st);
	struct store_listing saved = {0}, state;
	const struct store_listing *use = prev;
	bool have_saved = false;
	int rc;

	if (sc->offline || (sc->j && store_cache_journaling(sc) &&
			    store_journal_touches(sc->j, folder)))
		return store_cache_messages_offline(sc, folder, prev, out);
	/* Kept changes were shown in it: the tree's listing is not the
	 * server's, only a full one will do. */
	if (prev && store_cache_relisting(sc, folder, false))
		prev = NULL;
	if (!prev && store_cache_saved_unchanged(sc, folder, out) == 0) {
		store_cache_relisting(sc, folder, true);
		return 0;
	}
	if (store_cache_saved_state(sc, folder, &state) &&
	    (!prev || (!prev->msgs && store_cache_same_state(prev, &state))) &&
	    diskcache_get_listing(sc->dc, folder, &saved) == 0) {
		have_saved = true;
		use = &saved;
	}
	rc = sc->inner->ops->messages(sc->inner, folder, use, out);
	if (rc == 2)
		rc = store_cache_merge(sc, folder, have_saved ? &saved : NULL,
				       out);
	if (rc == 1 && have_saved && !prev) {
		/* Unchanged since the saved listing: that is the answer. */
		saved.uidnext = out->uidnext;
		saved.exists = out->exists;
		saved.modseq = out->modseq;
		store_listing_clear(out);
		*out = saved;
		return 0;
	}
	store_listing_clear(&saved);
	if (rc == 0) {
		diskcache_put_listing(sc->dc, folder, out);
		store_cache_relisting(sc, folder, true);
	}
	store_cache_check_lost(sc, rc);
	if (rc < 0 && sc->offline)
		return store_cache_messages_offline(sc, folder, prev, out);
	return rc;
}

/* Gives a listing going up (full or a delta) the time the folder's
 * content was last seen to change, from its state (offline: the kept
 * time; the state may be old). */
static void store_cache_stamp(struct store_cache *sc, const char *folder,
			      struct store_listing *l)
{
	l->mtime = diskcache_mtime(sc->dc, folder, sc->offline ? NULL : l,
				   time(NULL));
}

/* A listing (store_cache_messages_get()), with its mtime. */
static int store_cache_messages(struct store *st, const char *folder,
				const struct store_listing *prev,
				struct store_listing *out)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_messages_get(st, folder, prev, out);

	if (rc == 0 || rc == 2)
		store_cache_stamp(sc, folder, out);
	return rc;
}

/* Switches to offline mode at once, with its log line (a change found
 * the server gone: it is kept rather than refused). */
void store_cache_go_offline(struct store_cache *sc)
{
	if (sc->offline)
		return;
	log_warnx("the server cannot be reached: offline mode, serving what "
		  "the disk cache holds%s",
		  sc->j ? "; changes are kept and sent later" : "");
	sc->offline = true;
	pthread_mutex_lock(&sc->lock);
	pthread_cond_signal(&sc->cond);
	pthread_mutex_unlock(&sc->lock);
}

/* A walk's first listings: each saved as it arrives, then passed on.
 * Offline, -EAGAIN: the caller lists folders one by one, from the
 * saved listings. */
struct store_cache_many {
	struct store_cache *sc;
	const char *const *folders; /* the inner store's */
	const size_t *index; /* the caller's index of each */
	void (*done)(void *ctx, size_t i, int rc, struct store_listing *l);
	void *ctx;
};

/* A folder of a walk is listed: a full listing is saved and stamped,
 * then handed to the caller under its own index. */
static void store_cache_many_done(void *ctx, size_t i, int rc,
				  struct store_listing *l)
{
	struct store_cache_many *m = ctx;

	if (rc == 0) {
		diskcache_put_listing(m->sc->dc, m->folders[i], l);
		store_cache_stamp(m->sc, m->folders[i], l);
	}
	m->done(m->ctx, m->index[i], rc, l);
}

/*
 * Listings of several folders (a walk). A folder whose saved listing the
 * folder list shows unchanged costs nothing; one saved but changed is
 * brought up to date by a resync: the first (asked for) now, the others
 * when the walk gets there (done() is not called for them). Only folders
 * never saved are listed together by the IMAP store.
 */
static int store_cache_messages_many(struct store *st,
				     const char *const *folders, size_t n,
				     void (*done)(void *ctx, size_t i, int rc,
						  struct store_listing *l),
				     void *ctx)
{
	struct store_cache *sc = store_cache_of(st);
	struct store_cache_many m = {sc, NULL, NULL, done, ctx};
	const char **rest = calloc(n ? n : 1, sizeof(*rest));
	size_t *index = calloc(n ? n : 1, sizeof(*index));
	struct store_listing l, state;
	size_t i, k = 0;
	int rc = 0;

	if (!rest || !index) {
		free(rest);
		free(index);
		return -ENOMEM;
	}
	if (sc->offline) {
		rc = -EAGAIN;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (store_cache_saved_unchanged(sc, folders[i], &l) == 0) {
			store_cache_stamp(sc, folders[i], &l);
			done(ctx, i, 0, &l);
			store_listing_clear(&l);
		} else if (store_cache_saved_state(sc, folders[i], &state)) {
			if (i > 0)
				continue;
			memset(&l, 0, sizeof(l));
			rc = store_cache_messages(st, folders[0], NULL, &l);
			done(ctx, 0, rc, &l);
			store_listing_clear(&l);
			if (rc < 0 && sc->offline)
				goto out;
			rc = 0;
		} else {
			rest[k] = folders[i];
			index[k++] = i;
		}
	}
	if (k > 0) {
		m.folders = rest;
		m.index = index;
		rc = sc->inner->ops->messages_many(sc->inner, rest, k,
						   store_cache_many_done, &m);
		store_cache_check_lost(sc, rc);
	}
out:
	free(rest);
	free(index);
	return rc;
}

/* Keeps the mtime the mount showed for a folder (store.h). */
static void store_cache_keep_mtime(struct store *st, const char *folder,
				   time_t mtime)
{
	diskcache_keep_mtime(store_cache_of(st)->dc, folder, mtime);
}

/* An event from the server's store, passed up; a change push reported
 * makes that folder's state in the folder list out of date. */
static void store_cache_pushed(void *ctx, const struct store_event *ev)
{
	struct store_cache *sc = ctx;

	if (ev->kind == STORE_EVENT_CHANGED)
		store_cache_seen_drop(sc, ev->folder);
	/* The push session was lost: perhaps the server with it, which is
	 * checked now rather than at the next call (the mount goes offline
	 * within `timeout` though nothing is asked of it). */
	if (ev->kind == STORE_EVENT_BLIND && !sc->offline && !sc->forced) {
		pthread_mutex_lock(&sc->lock);
		sc->suspect = true;
		pthread_cond_signal(&sc->cond);
		pthread_mutex_unlock(&sc->lock);
	}
	sc->event(sc->event_ctx, ev);
}

/* store_ops.watch: the server's events, passed up through
 * store_cache_pushed(). */
static int store_cache_watch(struct store *st, store_event_fn event, void *ctx)
{
	struct store_cache *sc = store_cache_of(st);

	sc->event = event;
	sc->event_ctx = ctx;
	return sc->inner->ops->watch(sc->inner, store_cache_pushed, sc);
}

/* How the status names the offline mode, NULL while online (the mount's
 * `state` and `mode` lines come from it, see fsstatus). */
static const char *store_cache_offline_mode(struct store *st)
{
	struct store_cache *sc = store_cache_of(st);

	return sc->forced ? "offline (forced)" : sc->offline ? "offline" : NULL;
}

/* The status lines of the disk cache and prefetching. */
static size_t store_cache_status(struct store *st, char *buf, size_t len)
{
	struct store_cache *sc = store_cache_of(st);
	struct diskcache_stats ds;
	int n;

	diskcache_get_stats(sc->dc, &ds);
	n = snprintf(buf, len,
		     "disk_cache_bytes=%llu\n"
		     "disk_cache_limit=%llu\n"
		     "disk_cache_hits=%llu\n"
		     "disk_cache_misses=%llu\n"
		     "disk_cache_discarded=%llu\n"
		     "disk_cache_writing=%s\n",
		     (unsigned long long)ds.bytes, (unsigned long long)ds.limit,
		     (unsigned long long)ds.hits, (unsigned long long)ds.misses,
		     (unsigned long long)ds.dropped, ds.writing ? "yes" : "no");
	if (n < 0)
		return 0;
	if ((size_t)n >= len)
		return len ? len - 1 : 0;
	if (sc->j) {
		unsigned pending, failed;
		int k;

		journal_counts(sc->j, &pending, &failed);
		k = snprintf(buf + n, len - (size_t)n,
			     "pending_changes=%u\nfailed_changes=%u\n", pending,
			     failed);
		if (k < 0 || (size_t)k >= len - (size_t)n)
			return (size_t)n;
		n += k;
	}
	if (sc->pf)
		n += (int)prefetch_status(sc->pf, buf + n, len - (size_t)n);
	return (size_t)n;
}

/* Tells the layers above that each folder kept changes touched has
 * changed (they are listed anew, in full). */
static void store_cache_tell_touched(struct store_cache *sc)
{
	struct store_cache_relist *r, *tmp;
	char **names = NULL;
	size_t n = 0, i;

	pthread_mutex_lock(&sc->seen_lock);
	names = calloc(HASH_COUNT(sc->relist) + 1, sizeof(*names));
	HASH_ITER(hh, sc->relist, r, tmp)
	{
		if (names && (names[n] = strdup(r->name)))
			n++;
	}
	pthread_mutex_unlock(&sc->seen_lock);
	for (i = 0; i < n; i++) {
		struct store_event ev = {STORE_EVENT_CHANGED, names[i]};

		store_cache_seen_drop(sc, names[i]);
		if (sc->event)
			sc->event(sc->event_ctx, &ev);
		free(names[i]);
	}
	free(names);
}

/*
 * Sends the kept changes (the server answered a moment ago), and once
 * none is pending goes online: under jlock, so that no change is kept
 * after the last look and left behind. 0 when online, -EIO when the
 * connection failed again (still offline).
 */
static int store_cache_replay(struct store_cache *sc)
{
	struct store_journal_counts c = {0, 0, 0};
	unsigned pending, failed;
	bool logged = false;
	int rc = 0;

	for (;;) {
		pthread_mutex_lock(&sc->jlock);
		journal_counts(sc->j, &pending, &failed);
		if (!pending) {
			sc->offline = false;
			pthread_mutex_unlock(&sc->jlock);
			break;
		}
		pthread_mutex_unlock(&sc->jlock);
		if (!logged)
			log_warnx("sending %u change%s made offline", pending,
				  pending == 1 ? "" : "s");
		logged = true;
		rc = store_journal_replay(sc->j, sc->inner, sc->dc,
					  store_cache_touched, sc, &c);
		if (rc < 0)
			break;
	}
	sc->replayed.sent += c.sent;
	sc->replayed.dropped += c.dropped;
	sc->replayed.failed += c.failed;
	if (logged)
		log_warnx("offline changes %s: %u sent, %u dropped, %u kept "
			  "(refused)",
			  rc < 0 ? "cut short (the server is gone again)"
				 : "sent",
			  c.sent, c.dropped, c.failed);
	if (rc == 0 && logged)
		journal_compact(sc->j);
	store_cache_tell_touched(sc);
	return rc;
}

/* Whether kept changes wait while the mount is online (a mount that
 * started with some left from the last one). */
static bool store_cache_replay_due(struct store_cache *sc)
{
	unsigned pending, failed;

	if (!sc->j || sc->forced)
		return false;
	journal_counts(sc->j, &pending, &failed);
	return pending > 0;
}

/* Tries to reach the server again, waiting longer after each failure,
 * while offline (and not forced); then sends the changes kept offline
 * and goes back online. */
static void *store_cache_reconnect_main(void *arg)
{
	struct store_cache *sc = arg;
	long backoff = STORE_CACHE_BACKOFF_MIN_MS;

	pthread_mutex_lock(&sc->lock);
	while (!sc->stop) {
		struct timespec ts;
		struct store_folder *f;
		size_t n;
		int rc;

		if (!sc->offline && sc->suspect) {
			store_cache_confirm_lost(sc);
			continue;
		}
		if (!sc->offline && store_cache_replay_due(sc)) {
			pthread_mutex_unlock(&sc->lock);
			if (store_cache_replay(sc) < 0)
				store_cache_go_offline(sc);
			pthread_mutex_lock(&sc->lock);
			continue;
		}
		if (!sc->offline) {
			backoff = STORE_CACHE_BACKOFF_MIN_MS;
			pthread_cond_wait(&sc->cond, &sc->lock);
			continue;
		}
		ts = clock_deadline(
			store_cache_replay_due(sc) &&
					backoff > STORE_CACHE_BACKOFF_PENDING_MS
				? STORE_CACHE_BACKOFF_PENDING_MS
				: backoff);
		if (pthread_cond_timedwait(&sc->cond, &sc->lock, &ts) !=
			    ETIMEDOUT ||
		    sc->stop)
			continue;
		pthread_mutex_unlock(&sc->lock);
		rc = sc->inner->ops->folders(sc->inner, &f, &n);
		if (rc == 0) {
			diskcache_put_folders(sc->dc, f, n);
			store_folders_free(f, n);
			log_warnx("the server can be reached again%s",
				  store_cache_replay_due(sc)
					  ? ": sending the changes made "
					    "offline first"
					  : ": online");
			if (!sc->j)
				sc->offline = false;
			else if (store_cache_replay(sc) == 0)
				backoff = STORE_CACHE_BACKOFF_MIN_MS;
		} else if (!store_get_stats(sc->inner)->unreachable) {
			log_warnx("reconnecting: the server refused us; "
				  "staying offline");
		}
		pthread_mutex_lock(&sc->lock);
		if (!sc->offline)
			continue;
		backoff = backoff * 2 > STORE_CACHE_BACKOFF_MAX_MS
				  ? STORE_CACHE_BACKOFF_MAX_MS
				  : backoff * 2;
	}
	pthread_mutex_unlock(&sc->lock);
	return NULL;
}

/* See store.h: the journal of changes made offline (owned from here
 * on). */
void store_cache_set_journal(struct store *st, struct journal *j)
{
	store_cache_of(st)->j = j;
}

/* See store.h: opens the disk cache, starts the reconnect thread
 * (unless -o offline) and prefetching. */
int store_cache_begin(struct store *st)
{
	struct store_cache *sc = store_cache_of(st);
	int rc;

	rc = diskcache_start(sc->dc);
	if (rc < 0)
		return rc;
	if (!sc->forced) {
		rc = pthread_create(&sc->thread, NULL,
				    store_cache_reconnect_main, sc);
		if (rc)
			return -rc;
		pthread_setname_np(sc->thread, "mailfs-reconn");
		sc->thread_running = true;
	}
	if (sc->prefetch || sc->prefetch_all) {
		if (sc->bg_sessions == 0) {
			log_warnx("prefetch needs connections=2 or more (one "
				  "stays free for reads): not started");
			return 0;
		}
		sc->pf = prefetch_start(&sc->base, sc->dc, &sc->offline,
					sc->prefetch, sc->prefetch_all,
					sc->bg_sessions);
		if (!sc->pf)
			return -ENOMEM;
	}
	return 0;
}

/* store_ops.destroy: stops prefetching and the reconnect thread, closes
 * the disk cache, the inner store and the journal. */
static void store_cache_destroy(struct store *st)
{
	struct store_cache *sc = store_cache_of(st);
	char **p;

	prefetch_stop(sc->pf);
	if (sc->thread_running) {
		pthread_mutex_lock(&sc->lock);
		sc->stop = true;
		pthread_cond_signal(&sc->cond);
		pthread_mutex_unlock(&sc->lock);
		pthread_join(sc->thread, NULL);
	}
	diskcache_close(sc->dc);
	sc->inner->ops->destroy(sc->inner);
	journal_close(sc->j);
	pthread_mutex_destroy(&sc->jlock);
	pthread_mutex_lock(&sc->seen_lock);
	{
		struct store_cache_relist *r, *tmp;

		HASH_ITER(hh, sc->relist, r, tmp)
		{
			HASH_DEL(sc->relist, r);
			free(r->name);
			free(r);
		}
	}
	pthread_mutex_unlock(&sc->seen_lock);
	store_cache_seen_drop(sc, NULL);
	pthread_mutex_destroy(&sc->seen_lock);
	for (p = sc->prefetch; p && *p; p++)
		free(*p);
	free(sc->prefetch);
	pthread_mutex_destroy(&sc->lock);
	pthread_cond_destroy(&sc->cond);
	free(sc);
}

/* Fills the table: each operation the inner store has, wrapped. */
static void store_cache_fill_ops(struct store_cache *sc)
{
	const struct store_ops *in = sc->inner->ops;
	struct store_ops *o = &sc->ops;

	o->folders = store_cache_folders;
	o->messages = store_cache_messages;
	o->messages_many = in->messages_many ? store_cache_messages_many : NULL;
	o->summary = in->summary ? store_cache_read_summary : NULL;
	o->structure = in->structure ? store_cache_read_structure : NULL;
	o->fetch_section =
		in->fetch_section ? store_cache_read_fetch_section : NULL;
	o->search = in->search ? store_cache_read_search : NULL;
	o->fetch = store_cache_read_fetch;
	o->fetch_many = in->fetch_many ? store_cache_read_fetch_many : NULL;
	o->local = store_cache_read_local;
	o->set_flags = in->set_flags ? store_cache_write_set_flags : NULL;
	o->change_flags =
		in->change_flags ? store_cache_write_change_flags : NULL;
	o->move = in->move ? store_cache_write_move : NULL;
	o->expunge = in->expunge ? store_cache_write_expunge : NULL;
	o->create_folder =
		in->create_folder ? store_cache_write_create_folder : NULL;
	o->delete_folder =
		in->delete_folder ? store_cache_write_delete_folder : NULL;
	o->rename_folder =
		in->rename_folder ? store_cache_write_rename_folder : NULL;
	o->append = in->append ? store_cache_write_append : NULL;
	o->quota = in->quota ? store_cache_read_quota : NULL;
	o->append_limit =
		in->append_limit ? store_cache_write_append_limit : NULL;
	o->watch = in->watch ? store_cache_watch : NULL;
	o->keep_mtime = store_cache_keep_mtime;
	o->status = store_cache_status;
	o->offline_mode = store_cache_offline_mode;
	o->destroy = store_cache_destroy;
}

/* See store.h. */
struct store *store_cache_new(struct store *inner, struct diskcache *dc,
			      bool offline, bool forced, char **prefetch,
			      bool prefetch_all, unsigned bg_sessions,
			      unsigned refresh)
{
	struct store_cache *sc = calloc(1, sizeof(*sc));

	if (!sc)
		return NULL;
	sc->inner = inner;
	sc->dc = dc;
	sc->offline = offline || forced;
	sc->forced = forced;
	sc->prefetch = prefetch;
	sc->prefetch_all = prefetch_all;
	sc->bg_sessions = bg_sessions;
	sc->refresh = refresh;
	pthread_mutex_init(&sc->seen_lock, NULL);
	pthread_mutex_init(&sc->jlock, NULL);
	store_cache_fill_ops(sc);
	sc->base.ops = &sc->ops;
	sc->base.ref_xattr = inner->ref_xattr;
	sc->base.has_flags = inner->has_flags;
	sc->base.inner = inner;
	pthread_mutex_init(&sc->lock, NULL);
	clock_cond_init(&sc->cond);
	return &sc->base;
}
