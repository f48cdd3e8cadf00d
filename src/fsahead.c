// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsahead: background read-ahead for scans (grep -r, cat *, rsync). A
 * scan's miss fetches a batch of the messages that follow (fsops.c);
 * this thread fetches the batch after it while the reader consumes the
 * current one, so that the transfer overlaps the reader's own work
 * instead of adding to it. It runs as background work: it never takes
 * the last free session of the pool (store_set_background()), and stays
 * at most one batch ahead of the reader.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "clock.h"
#include "fsops_priv.h"
#include "log.h"
#include "store.h"
#include "tree.h"

/* A batch fetched ahead: at most this many messages, and bytes up to
 * FSAHEAD_BYTES or a quarter of the memory cache. */
#define FSAHEAD_BATCH 4096
#define FSAHEAD_BYTES (16u * 1024 * 1024)

/* What the worker is asked to fetch next: the messages after `after`. */
struct fsahead_req {
	char *folder; /* owned; NULL: nothing asked */
	uint64_t folder_id;
	uint32_t uidvalidity;
	uint32_t after;
};

struct fsahead {
	struct fsops *fs; /* borrowed */
	pthread_t thread;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond; /* a request came, or stop */
	pthread_cond_t arrived; /* a message of the batch arrived */
	bool stop;
	struct fsahead_req req;
	/* The batch last fetched ahead: a first read of one of its
	 * messages asks for the batch after it. */
	uint64_t mark_folder;
	uint32_t mark_first, mark_last; /* 0: none */
	/* The batch being fetched now: a reader of one of its messages
	 * waits for it to arrive instead of fetching it again. */
	bool inflight;
	struct cache_key inflight_key; /* uid: the first */
	uint32_t inflight_last;
	uint64_t bytes_max;
};

/* Where a background fetch's pieces go. */
struct fsahead_fetch {
	struct fsahead *a;
	struct cache *cache;
	struct cache_key key; /* uid set per piece */
	uint64_t asked;
};

static void fsahead_piece(void *ctx, const struct store_piece *p)
{
	struct fsahead_fetch *ft = ctx;
	struct cache_key k = ft->key;

	if (p->offset != 0)
		return;
	k.uid = p->uid;
	cache_store(ft->cache, &k, 0, p->data, p->len, p->len < ft->asked);
	/* Readers waiting for this message go on. */
	pthread_mutex_lock(&ft->a->lock);
	pthread_cond_broadcast(&ft->a->arrived);
	pthread_mutex_unlock(&ft->a->lock);
}

/* Fetches the batch after r->after that is not cached yet, and marks
 * it so that the reader's arrival asks for the next one. */
static void fsahead_run(struct fsahead *a, const struct fsahead_req *r)
{
	struct fsops *fs = a->fs;
	uint32_t uids[FSAHEAD_BATCH], keep[FSAHEAD_BATCH];
	uint64_t sizes[FSAHEAD_BATCH], total = 0, len = 0;
	struct fsahead_fetch ft = {
		a, fs->cache, {r->folder_id, r->uidvalidity, 0}, 0};
	size_t n, i, m = 0;
	int rc;

	n = tree_next_messages(fs->tree, r->folder, r->uidvalidity, r->after,
			       FSAHEAD_BATCH, FSOPS_PREFETCH_SIZE, uids, sizes);
	for (i = 0; i < n && total < a->bytes_max; i++) {
		ft.key.uid = uids[i];
		if (cache_has(fs->cache, &ft.key, 0))
			continue;
		keep[m++] = uids[i];
		total += sizes[i];
		if (sizes[i] + FSOPS_SLACK > len)
			len = sizes[i] + FSOPS_SLACK;
	}
	if (m == 0)
		return;
	pthread_mutex_lock(&a->lock);
	a->mark_folder = r->folder_id;
	a->mark_first = keep[0];
	a->mark_last = keep[m - 1];
	a->inflight = true;
	a->inflight_key =
		(struct cache_key){r->folder_id, r->uidvalidity, keep[0]};
	a->inflight_last = keep[m - 1];
	pthread_mutex_unlock(&a->lock);
	ft.asked = len;
	rc = fs->cfg.store->ops->fetch(fs->cfg.store, r->folder, r->uidvalidity,
				       keep, m, 0, len, fsahead_piece, &ft);
	pthread_mutex_lock(&a->lock);
	a->inflight = false;
	pthread_cond_broadcast(&a->arrived);
	pthread_mutex_unlock(&a->lock);
	if (rc == 0)
		fs->prefetched += m;
	else
		log_debug("read-ahead in %s: %s", r->folder, strerror(-rc));
}

static void *fsahead_main(void *arg)
{
	struct fsahead *a = arg;
	struct fsahead_req r;

	store_set_background(true);
	pthread_mutex_lock(&a->lock);
	while (!a->stop) {
		if (!a->req.folder) {
			pthread_cond_wait(&a->cond, &a->lock);
			continue;
		}
		r = a->req;
		a->req.folder = NULL;
		pthread_mutex_unlock(&a->lock);
		fsahead_run(a, &r);
		free(r.folder);
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

struct fsahead *fsahead_start(struct fsops *fs)
{
	struct fsahead *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->fs = fs;
	a->bytes_max = fs->cfg.cache_size / 4;
	if (a->bytes_max > FSAHEAD_BYTES)
		a->bytes_max = FSAHEAD_BYTES;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->cond, NULL);
	clock_cond_init(&a->arrived);
	if (pthread_create(&a->thread, NULL, fsahead_main, a)) {
		pthread_mutex_destroy(&a->lock);
		pthread_cond_destroy(&a->cond);
		pthread_cond_destroy(&a->arrived);
		free(a);
		return NULL;
	}
	return a;
}

void fsahead_stop(struct fsahead *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	free(a->req.folder);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	pthread_cond_destroy(&a->arrived);
	free(a);
}

bool fsahead_wait(struct fsahead *a, const struct cache_key *k, long ms)
{
	struct timespec deadline = clock_deadline(ms);
	bool have = false;

	if (!a)
		return false;
	pthread_mutex_lock(&a->lock);
	while (a->inflight && a->inflight_key.folder == k->folder &&
	       a->inflight_key.uidvalidity == k->uidvalidity &&
	       k->uid >= a->inflight_key.uid && k->uid <= a->inflight_last) {
		have = cache_has(a->fs->cache, k, 0);
		if (have || pthread_cond_timedwait(&a->arrived, &a->lock,
						   &deadline) == ETIMEDOUT)
			break;
	}
	if (!have)
		have = cache_has(a->fs->cache, k, 0);
	pthread_mutex_unlock(&a->lock);
	return have;
}

/* Asks for the batch after `after` (replacing a request not yet
 * taken: the reader has moved on). The lock is held. */
static void fsahead_ask(struct fsahead *a, const char *folder,
			const struct cache_key *k, uint32_t after)
{
	char *name = strdup(folder);

	if (!name)
		return;
	free(a->req.folder);
	a->req = (struct fsahead_req){name, k->folder, k->uidvalidity, after};
	a->mark_first = a->mark_last = 0;
	pthread_cond_signal(&a->cond);
}

void fsahead_batch_fetched(struct fsahead *a, const char *folder,
			   const struct cache_key *k, uint32_t last)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	fsahead_ask(a, folder, k, last);
	pthread_mutex_unlock(&a->lock);
}

void fsahead_opened(struct fsahead *a, const char *folder,
		    const struct cache_key *k)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	if (a->mark_first && a->mark_folder == k->folder &&
	    k->uid >= a->mark_first && k->uid <= a->mark_last)
		fsahead_ask(a, folder, k, a->mark_last);
	pthread_mutex_unlock(&a->lock);
}
