/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store_cache_priv: what the files of the disk-cache store share:
 * store_cache.c (folder lists and listings, offline mode and the
 * reconnect thread, the operation table), store_cache_read.c (bodies
 * from disk first, and the reads that go to the server) and
 * store_cache_write.c (changes, kept in the journal while offline). Not
 * for other modules.
 */
#ifndef MAILFS_STORE_CACHE_PRIV_H
#define MAILFS_STORE_CACHE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store.h"
#include "store_journal.h"

struct diskcache;
struct journal;
struct prefetch;
struct store_cache_relist;
struct store_cache_seen;

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
	/* Offline changes: the journal (owned, NULL without), and the gate
	 * (jlock, held while a change is written to it: never across
	 * network I/O) that decides whether a change goes to the journal
	 * or to the server, and that going back online takes. */
	struct journal *j;
	pthread_mutex_t jlock;
	struct store_cache_relist *relist; /* under seen_lock */
	struct store_journal_counts replayed; /* this mount's */
};

/* store_cache.c */
/* The disk-cache store behind the vtable's store (its first member). */
struct store_cache *store_cache_of(struct store *st);
/* Logs why a call was refused offline, at most once a second; folder
 * may be NULL. */
void store_cache_refused(struct store_cache *sc, const char *what,
			 const char *folder);
/* After a call to the server that gave rc: when it found the server
 * unreachable, the reconnect thread checks once more and then switches
 * to offline mode. */
void store_cache_check_lost(struct store_cache *sc, int rc);
/* Forgets the folder states of the folder list (all of them with folder
 * NULL, or one folder's). */
void store_cache_seen_drop(struct store_cache *sc, const char *folder);
/* Whether a change goes to the journal now: offline, or while changes
 * kept offline wait to be sent (none may overtake them). */
bool store_cache_journaling(struct store_cache *sc);
/* Switches to offline mode at once, with its log line. */
void store_cache_go_offline(struct store_cache *sc);

/* store_cache_read.c: the operations of the same names (store.h). */
int store_cache_read_fetch(struct store *st, const char *folder,
			   uint32_t uidvalidity, const uint32_t *uids, size_t n,
			   uint64_t offset, uint64_t len,
			   void (*cb)(void *ctx, const struct store_piece *p),
			   void *ctx);
bool store_cache_read_local(struct store *st, const char *folder,
			    uint32_t uidvalidity, uint32_t uid);
int store_cache_read_fetch_many(struct store *st, struct store_fetch_req *reqs,
				size_t n);
int store_cache_read_quota(struct store *st, uint64_t *used_r,
			   uint64_t *limit_r);
int store_cache_read_summary(
	struct store *st, const char *folder, uint32_t uidvalidity,
	void (*cb)(void *ctx, const struct store_summary *m), void *ctx);
int store_cache_read_structure(struct store *st, const char *folder,
			       uint32_t uidvalidity, uint32_t uid,
			       struct msgstruct **ms_r);
int store_cache_read_fetch_section(
	struct store *st, const char *folder, uint32_t uidvalidity,
	uint32_t uid, const char *section, bool binary, uint64_t offset,
	uint64_t len, void (*cb)(void *ctx, const char *data, size_t len),
	void *ctx);
int store_cache_read_search(struct store *st, const char *const *folders,
			    size_t n, const struct search_query *q,
			    void (*cb)(void *ctx,
				       const struct store_search_hit *h),
			    void *ctx);

/* store_cache_write.c: the operations of the same names (store.h). */
int store_cache_write_set_flags(struct store *st, const char *folder,
				uint32_t uidvalidity,
				const struct store_msg *msg, const char *flags,
				char **result_r);
int store_cache_write_change_flags(struct store *st, const char *folder,
				   uint32_t uidvalidity,
				   const struct store_msg *msg, const char *add,
				   const char *remove, char **result_r);
int store_cache_write_move(struct store *st, const char *folder,
			   uint32_t uidvalidity, const struct store_msg *msg,
			   const char *target, uint32_t *uid_r,
			   uint32_t *uidvalidity_r);
int store_cache_write_expunge(struct store *st, const char *folder,
			      uint32_t uidvalidity,
			      const struct store_msg *msg);
int store_cache_write_create_folder(struct store *st, const char *name);
int store_cache_write_delete_folder(struct store *st, const char *name);
int store_cache_write_rename_folder(struct store *st, const char *from,
				    const char *to);
int store_cache_write_append(struct store *st, const char *folder,
			     const char *flags, time_t date, uint64_t size,
			     long (*read)(void *ctx, char *buf, size_t len),
			     void *ctx, uint32_t *uid_r,
			     uint32_t *uidvalidity_r);
uint64_t store_cache_write_append_limit(struct store *st);

#endif
