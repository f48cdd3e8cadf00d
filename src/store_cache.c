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
 * come from disk only; a body that is not all there fails with EIO and
 * every change with EROFS, at once and with a log line; a thread tries
 * to reconnect with backoff and goes back online by itself.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "diskcache.h"
#include "log.h"
#include "prefetch.h"
#include "store.h"
#include "uthash.h"

/* Reconnect attempts: the first after this, doubling up to the last. */
#define STORE_CACHE_BACKOFF_MIN_MS 2000
#define STORE_CACHE_BACKOFF_MAX_MS 30000
/* A suspected loss is checked after the pool's pause after a failed
 * connection attempt (store_imap.c: 1 s). */
#define STORE_CACHE_CONFIRM_MS 1100

/* What the folder list last told of one folder (IMAP LIST-STATUS). */
struct store_cache_seen {
	char *name; /* owned: server name */
	uint32_t messages, uidnext, uidvalidity;
	uint64_t modseq;
	UT_hash_handle hh;
};

struct store_cache {
	struct store base;
	struct store_ops ops; /* the inner store's, wrapped */
	struct store *inner; /* owned */
	struct diskcache *dc; /* owned */
	_Atomic bool offline;
	bool forced; /* -o offline: never connect */
	_Atomic long long last_refusal_log; /* clock_now_ms() */
	pthread_mutex_t lock; /* the reconnect thread's wait */
	pthread_cond_t cond;
	bool stop;
	bool suspect; /* a call found the server unreachable */
	bool thread_running;
	pthread_t thread;
	struct prefetch *pf; /* owned, NULL without -o prefetch */
	char **prefetch; /* owned, NULL-terminated mount paths */
	bool prefetch_all;
	unsigned bg_sessions;
	/* The last folder list's states, trusted for `refresh` seconds
	 * from seen_at; dropped on any change through the mount and, per
	 * folder, when push reports one. */
	pthread_mutex_t seen_lock; /* the three below; no I/O under it */
	struct store_cache_seen *seen;
	time_t seen_at; /* clock_mono() */
	unsigned refresh;
	store_event_fn event; /* watch()'s */
	void *event_ctx;
};

static struct store_cache *store_cache_of(struct store *st)
{
	return (struct store_cache *)st;
}

/* Logs why a call was refused offline, at most once a second. */
static void store_cache_refused(struct store_cache *sc, const char *what,
				const char *folder)
{
	long long now = clock_now_ms();

	if (now - sc->last_refusal_log < 1000)
		return;
	sc->last_refusal_log = now;
	log_warnx("offline (the server cannot be reached): %s%s%s refused",
		  what, folder ? " in " : "", folder ? folder : "");
}

/* A call found the server unreachable: the reconnect thread checks
 * once more (a connection cut at the wrong moment is no lost server)
 * and then switches to offline mode. */
static void store_cache_check_lost(struct store_cache *sc, int rc)
{
	if (rc >= 0 || sc->forced || sc->offline ||
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
static void store_cache_seen_drop(struct store_cache *sc, const char *folder)
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
	if (!diskcache_get_state(sc->dc, folder, &state) ||
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

/* Offline: the listing the tree has stays (1), else the saved one. */
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
	if (diskcache_get_listing(sc->dc, folder, out) == 0)
		return 0;
	store_cache_refused(sc, "listing (not cached)", folder);
	return -EIO;
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

	if (sc->offline)
		return store_cache_messages_offline(sc, folder, prev, out);
	if (!prev && store_cache_saved_unchanged(sc, folder, out) == 0)
		return 0;
	if ((!prev ||
	     (!prev->msgs && diskcache_get_state(sc->dc, folder, &state) &&
	      store_cache_same_state(prev, &state))) &&
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
	if (rc == 0)
		diskcache_put_listing(sc->dc, folder, out);
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

/* A fetch from the server: each piece goes to disk, then to the
 * caller. */
struct store_cache_fetch {
	struct store_cache *sc;
	const char *folder;
	uint32_t uidvalidity;
	uint64_t len;
	void (*cb)(void *ctx, const struct store_piece *p);
	void *ctx;
};

static void store_cache_piece(void *ctx, const struct store_piece *p)
{
	struct store_cache_fetch *f = ctx;

	diskcache_store(f->sc->dc, f->folder, f->uidvalidity, p->uid,
			DISKCACHE_WHOLE, p->offset, p->data, p->len,
			p->len < f->len, false, 0);
	f->cb(f->ctx, p);
}

/* Hands f's caller the range [offset, offset + f->len) of each message
 * of uids that is all on disk; the others go into rest (room for n).
 * *first_r: the first message was on disk. Returns how many are left. */
static size_t store_cache_from_disk(struct store_cache_fetch *f,
				    const uint32_t *uids, size_t n,
				    uint64_t offset, uint32_t *rest,
				    bool *first_r)
{
	size_t i, nrest = 0;

	for (i = 0; i < n; i++) {
		char *data;
		size_t dlen;

		if (diskcache_read(f->sc->dc, f->folder, f->uidvalidity,
				   uids[i], DISKCACHE_WHOLE, offset, f->len,
				   &data, &dlen) == 0) {
			struct store_piece p = {uids[i], offset, data, dlen};

			f->cb(f->ctx, &p);
			free(data);
			*first_r |= i == 0;
			continue;
		}
		rest[nrest++] = uids[i];
	}
	return nrest;
}

/*
 * Bodies: pieces on disk are served from there; the others are asked
 * of the server in one command. Offline, a fetch whose first message
 * (the one being read; the others ride along) is not on disk fails with
 * EIO: a partly cached body is never served short.
 */
static int store_cache_fetch(struct store *st, const char *folder,
			     uint32_t uidvalidity, const uint32_t *uids,
			     size_t n, uint64_t offset, uint64_t len,
			     void (*cb)(void *ctx, const struct store_piece *p),
			     void *ctx)
{
	struct store_cache *sc = store_cache_of(st);
	struct store_cache_fetch f = {sc, folder, uidvalidity, len, cb, ctx};
	uint32_t *rest = calloc(n + 1, sizeof(*rest));
	size_t nrest;
	bool first_done = false;
	int rc;

	if (!rest)
		return -ENOMEM;
	nrest = store_cache_from_disk(&f, uids, n, offset, rest, &first_done);
	if (!nrest || (sc->offline && first_done)) {
		free(rest);
		return 0;
	}
	if (sc->offline) {
		free(rest);
		store_cache_refused(sc, "reading a message not cached", folder);
		return -EIO;
	}
	rc = sc->inner->ops->fetch(sc->inner, folder, uidvalidity, rest, nrest,
				   offset, len, store_cache_piece, &f);
	free(rest);
	store_cache_check_lost(sc, rc);
	return rc;
}

/* Bodies of several folders (read-ahead across folders): what is on
 * disk from there, the rest from the IMAP store in one pipeline, each
 * piece written to disk on its way up. Offline: -EAGAIN (read-ahead
 * only). */
static int store_cache_fetch_many(struct store *st,
				  struct store_fetch_req *reqs, size_t n)
{
	struct store_cache *sc = store_cache_of(st);
	struct store_fetch_req *rest = calloc(n + 1, sizeof(*rest));
	struct store_cache_fetch *f = calloc(n + 1, sizeof(*f));
	size_t *which = calloc(n + 1, sizeof(*which));
	size_t i, k = 0;
	uint32_t *uids;
	bool first = false;
	int rc = -ENOMEM;

	if (sc->offline) {
		rc = -EAGAIN;
		goto out;
	}
	for (i = 0; rest && f && which && i < n; i++) {
		reqs[i].rc = 0;
		f[k] = (struct store_cache_fetch){
			sc,	     reqs[i].folder, reqs[i].uidvalidity,
			reqs[i].len, reqs[i].cb,     reqs[i].ctx};
		uids = calloc(reqs[i].n + 1, sizeof(*uids));
		if (!uids)
			goto out;
		rest[k] = reqs[i];
		rest[k].uids = uids;
		rest[k].n = store_cache_from_disk(&f[k], reqs[i].uids,
						  reqs[i].n, 0, uids, &first);
		rest[k].cb = store_cache_piece;
		rest[k].ctx = &f[k];
		which[k] = i;
		if (rest[k].n)
			k++;
		else
			free(uids);
	}
	if (i < n)
		goto out;
	rc = k ? sc->inner->ops->fetch_many(sc->inner, rest, k) : 0;
	for (i = 0; rc == 0 && i < k; i++)
		reqs[which[i]].rc = rest[i].rc;
	store_cache_check_lost(sc, rc);
out:
	for (i = 0; rest && i < k; i++)
		free((uint32_t *)rest[i].uids);
	free(rest);
	free(f);
	free(which);
	return rc;
}

/* The guard of every change: EROFS while offline. A change makes the
 * folder list's states out of date (a move or a new folder touches
 * other folders too): they are all forgotten. */
static int store_cache_change(struct store_cache *sc, const char *folder)
{
	store_cache_seen_drop(sc, NULL);
	if (!sc->offline)
		return 0;
	store_cache_refused(sc, "a change", folder);
	return -EROFS;
}

static int store_cache_set_flags(struct store *st, const char *folder,
				 uint32_t uidvalidity, uint32_t uid,
				 const char *flags, char **result_r)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_change(sc, folder);

	if (rc == 0) {
		rc = sc->inner->ops->set_flags(sc->inner, folder, uidvalidity,
					       uid, flags, result_r);
		store_cache_check_lost(sc, rc);
	}
	return rc;
}

static int store_cache_change_flags(struct store *st, const char *folder,
				    uint32_t uidvalidity, uint32_t uid,
				    const char *add, const char *remove,
				    char **result_r)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_change(sc, folder);

	if (rc == 0) {
		rc = sc->inner->ops->change_flags(sc->inner, folder,
						  uidvalidity, uid, add, remove,
						  result_r);
		store_cache_check_lost(sc, rc);
	}
	return rc;
}

/* Moves a message; when the server told its new UID (COPYUID), what
 * the disk cache holds of it is re-keyed to that UID. */
static int store_cache_move(struct store *st, const char *folder,
			    uint32_t uidvalidity, uint32_t uid,
			    const char *target, uint32_t *uid_r,
			    uint32_t *uidvalidity_r)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_change(sc, folder);

	if (rc == 0) {
		rc = sc->inner->ops->move(sc->inner, folder, uidvalidity, uid,
					  target, uid_r, uidvalidity_r);
		store_cache_check_lost(sc, rc);
	}
	/* The body on disk follows the message to its new UID. */
	if (rc == 0 && *uid_r && *uidvalidity_r)
		diskcache_rekey(sc->dc, folder, uidvalidity, uid, target,
				*uidvalidity_r, *uid_r, true);
	return rc;
}

static int store_cache_expunge(struct store *st, const char *folder,
			       uint32_t uidvalidity, uint32_t uid)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_change(sc, folder);

	if (rc == 0) {
		rc = sc->inner->ops->expunge(sc->inner, folder, uidvalidity,
					     uid);
		store_cache_check_lost(sc, rc);
	}
	return rc;
}

static int store_cache_create_folder(struct store *st, const char *name)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_change(sc, name);

	if (rc == 0) {
		rc = sc->inner->ops->create_folder(sc->inner, name);
		store_cache_check_lost(sc, rc);
	}
	return rc;
}

static int store_cache_delete_folder(struct store *st, const char *name)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_change(sc, name);

	if (rc == 0) {
		rc = sc->inner->ops->delete_folder(sc->inner, name);
		store_cache_check_lost(sc, rc);
	}
	return rc;
}

static int store_cache_rename_folder(struct store *st, const char *from,
				     const char *to)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_change(sc, from);

	if (rc == 0) {
		rc = sc->inner->ops->rename_folder(sc->inner, from, to);
		store_cache_check_lost(sc, rc);
	}
	return rc;
}

static int store_cache_append(struct store *st, const char *folder,
			      const char *flags, time_t date, uint64_t size,
			      long (*read)(void *ctx, char *buf, size_t len),
			      void *ctx, uint32_t *uid_r,
			      uint32_t *uidvalidity_r)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_change(sc, folder);

	*uid_r = 0;
	*uidvalidity_r = 0;
	if (rc == 0) {
		rc = sc->inner->ops->append(sc->inner, folder, flags, date,
					    size, read, ctx, uid_r,
					    uidvalidity_r);
		store_cache_check_lost(sc, rc);
	}
	return rc;
}

static int store_cache_quota(struct store *st, uint64_t *used_r,
			     uint64_t *limit_r)
{
	struct store_cache *sc = store_cache_of(st);

	if (sc->offline)
		return -EIO;
	return sc->inner->ops->quota(sc->inner, used_r, limit_r);
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
		} else if (diskcache_get_state(sc->dc, folders[i], &state)) {
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

/* The part and search operations go to the server: offline they fail
 * at once (EIO), with a log line. */
static int
store_cache_summary(struct store *st, const char *folder, uint32_t uidvalidity,
		    void (*cb)(void *ctx, const struct store_summary *m),
		    void *ctx)
{
	struct store_cache *sc = store_cache_of(st);
	int rc;

	if (sc->offline) {
		store_cache_refused(sc, "summary (not cached)", folder);
		return -EIO;
	}
	rc = sc->inner->ops->summary(sc->inner, folder, uidvalidity, cb, ctx);
	store_cache_check_lost(sc, rc);
	return rc;
}

static int store_cache_structure(struct store *st, const char *folder,
				 uint32_t uidvalidity, uint32_t uid,
				 struct msgstruct **ms_r)
{
	struct store_cache *sc = store_cache_of(st);
	int rc;

	if (sc->offline) {
		store_cache_refused(sc, "message structure (not cached)",
				    folder);
		return -EIO;
	}
	rc = sc->inner->ops->structure(sc->inner, folder, uidvalidity, uid,
				       ms_r);
	store_cache_check_lost(sc, rc);
	return rc;
}

static int store_cache_fetch_section(
	struct store *st, const char *folder, uint32_t uidvalidity,
	uint32_t uid, const char *section, bool binary, uint64_t offset,
	uint64_t len, void (*cb)(void *ctx, const char *data, size_t len),
	void *ctx)
{
	struct store_cache *sc = store_cache_of(st);
	int rc;

	if (sc->offline) {
		store_cache_refused(sc, "part (not cached)", folder);
		return -EIO;
	}
	rc = sc->inner->ops->fetch_section(sc->inner, folder, uidvalidity, uid,
					   section, binary, offset, len, cb,
					   ctx);
	store_cache_check_lost(sc, rc);
	return rc;
}

static int store_cache_search(struct store *st, const char *const *folders,
			      size_t n, const struct search_query *q,
			      void (*cb)(void *ctx,
					 const struct store_search_hit *h),
			      void *ctx)
{
	struct store_cache *sc = store_cache_of(st);
	int rc;

	if (sc->offline) {
		store_cache_refused(sc, "search", NULL);
		return -EIO;
	}
	rc = sc->inner->ops->search(sc->inner, folders, n, q, cb, ctx);
	store_cache_check_lost(sc, rc);
	return rc;
}

static uint64_t store_cache_append_limit(struct store *st)
{
	struct store_cache *sc = store_cache_of(st);

	return sc->inner->ops->append_limit(sc->inner);
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
	sc->event(sc->event_ctx, ev);
}

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
	if (sc->pf)
		n += (int)prefetch_status(sc->pf, buf + n, len - (size_t)n);
	return (size_t)n;
}

/* Tries to reach the server again, waiting longer after each failure,
 * while offline (and not forced); then back online. */
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
		if (!sc->offline) {
			backoff = STORE_CACHE_BACKOFF_MIN_MS;
			pthread_cond_wait(&sc->cond, &sc->lock);
			continue;
		}
		ts = clock_deadline(backoff);
		if (pthread_cond_timedwait(&sc->cond, &sc->lock, &ts) !=
			    ETIMEDOUT ||
		    sc->stop)
			continue;
		pthread_mutex_unlock(&sc->lock);
		rc = sc->inner->ops->folders(sc->inner, &f, &n);
		if (rc == 0) {
			diskcache_put_folders(sc->dc, f, n);
			store_folders_free(f, n);
			sc->offline = false;
			log_warnx("the server can be reached again: online");
		} else if (!store_get_stats(sc->inner)->unreachable) {
			log_warnx("reconnecting: the server refused us; "
				  "staying offline");
		}
		pthread_mutex_lock(&sc->lock);
		backoff = backoff * 2 > STORE_CACHE_BACKOFF_MAX_MS
				  ? STORE_CACHE_BACKOFF_MAX_MS
				  : backoff * 2;
	}
	pthread_mutex_unlock(&sc->lock);
	return NULL;
}

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
	o->summary = in->summary ? store_cache_summary : NULL;
	o->structure = in->structure ? store_cache_structure : NULL;
	o->fetch_section = in->fetch_section ? store_cache_fetch_section : NULL;
	o->search = in->search ? store_cache_search : NULL;
	o->fetch = store_cache_fetch;
	o->fetch_many = in->fetch_many ? store_cache_fetch_many : NULL;
	o->set_flags = in->set_flags ? store_cache_set_flags : NULL;
	o->change_flags = in->change_flags ? store_cache_change_flags : NULL;
	o->move = in->move ? store_cache_move : NULL;
	o->expunge = in->expunge ? store_cache_expunge : NULL;
	o->create_folder = in->create_folder ? store_cache_create_folder : NULL;
	o->delete_folder = in->delete_folder ? store_cache_delete_folder : NULL;
	o->rename_folder = in->rename_folder ? store_cache_rename_folder : NULL;
	o->append = in->append ? store_cache_append : NULL;
	o->quota = in->quota ? store_cache_quota : NULL;
	o->append_limit = in->append_limit ? store_cache_append_limit : NULL;
	o->watch = in->watch ? store_cache_watch : NULL;
	o->keep_mtime = store_cache_keep_mtime;
	o->status = store_cache_status;
	o->offline_mode = store_cache_offline_mode;
	o->destroy = store_cache_destroy;
}

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
	store_cache_fill_ops(sc);
	sc->base.ops = &sc->ops;
	sc->base.ref_xattr = inner->ref_xattr;
	sc->base.has_flags = inner->has_flags;
	sc->base.inner = inner;
	pthread_mutex_init(&sc->lock, NULL);
	clock_cond_init(&sc->cond);
	return &sc->base;
}
