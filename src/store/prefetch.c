// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * prefetch: fills the disk cache with whole folders; see prefetch.h.
 *
 * One planner thread lists the folders and cuts what is missing into
 * batches (up to PREFETCH_BATCH_MSGS messages or PREFETCH_BATCH_BYTES,
 * a message larger than that in pieces of its own); worker threads
 * fetch the batches through the store, whose disk-cache layer keeps
 * every piece, and wait for the disk writer before counting them done.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "clock.h"
#include "diskcache.h"
#include "log.h"
#include "names.h"
#include "prefetch.h"
#include "store.h"

#define PREFETCH_BATCH_MSGS 1024
#define PREFETCH_BATCH_BYTES (8u * 1024 * 1024)
/* Batches planned ahead of the workers at most (per worker). */
#define PREFETCH_AHEAD 2
/* How long a worker waits for the disk writer after a batch. */
#define PREFETCH_FLUSH_MS 60000
#define PREFETCH_PROGRESS_S 10

struct prefetch_batch {
	char *folder; /* owned */
	uint32_t uidvalidity;
	uint32_t *uids; /* owned */
	size_t n;
	uint64_t offset, len;
	bool counts; /* its messages count as done when it is */
	uint64_t bytes;
	struct prefetch_batch *next;
};

enum prefetch_state {
	PREFETCH_WAITING, /* offline */
	PREFETCH_LISTING,
	PREFETCH_FETCHING,
	PREFETCH_DONE,
};

struct prefetch {
	struct store *st; /* borrowed */
	struct diskcache *dc; /* borrowed */
	_Atomic bool *offline; /* borrowed */
	char **folders; /* borrowed */
	bool all;
	unsigned nthreads;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond;
	bool stop;
	bool planned; /* no more batches will come */
	struct prefetch_batch *head, *tail;
	unsigned queued;
	unsigned busy; /* workers with a batch */
	enum prefetch_state state;
	uint64_t total, done, bytes, failed;
	unsigned folders_done;
	time_t started, last_progress; /* monotonic */
	pthread_t planner;
	pthread_t *workers; /* owned */
	unsigned started_workers;
};

static const char *const prefetch_state_names[] = {
	"waiting (offline)", "listing", "fetching", "done"};

/* Undoes %XX escapes in place; false for a bad one. */
static bool prefetch_unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		unsigned v;

		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		if (sscanf(s + 1, "%2x", &v) != 1 || !s[1] || !s[2] || v == 0)
			return false;
		*o++ = (char)v;
		s += 2;
	}
	*o = '\0';
	return true;
}

void prefetch_free_names(char **names)
{
	char **p;

	for (p = names; p && *p; p++)
		free(*p);
	free(names);
}

int prefetch_parse(const char *text, char ***folders_r, bool *all_r)
{
	char **v = NULL, *dup, *tok, *save = NULL;
	size_t n = 0;

	*folders_r = NULL;
	*all_r = false;
	if (strcmp(text, "all") == 0) {
		*all_r = true;
		return 0;
	}
	dup = strdup(text);
	if (!dup)
		return -1;
	v = calloc(strlen(text) / 2 + 2, sizeof(*v));
	if (!v)
		goto fail;
	/* strtok_r would skip empty names ("a::b"): refuse those. */
	for (tok = dup; tok; tok = save) {
		save = strchr(tok, ':');
		if (save)
			*save++ = '\0';
		if (!*tok || !prefetch_unescape(tok) || !*tok)
			goto fail;
		v[n] = strdup(tok);
		if (!v[n++])
			goto fail;
	}
	free(dup);
	*folders_r = v;
	return 0;
fail:
	free(dup);
	prefetch_free_names(v);
	return -1;
}

/* Sleeps ms unless stopped; lock held. False when stopping. */
static bool prefetch_pause(struct prefetch *pf, long ms)
{
	struct timespec ts = clock_deadline(ms);

	if (!pf->stop)
		pthread_cond_timedwait(&pf->cond, &pf->lock, &ts);
	return !pf->stop;
}

/* Queues a batch, waiting while enough are ahead. Lock held. */
static bool prefetch_queue(struct prefetch *pf, struct prefetch_batch *b)
{
	while (pf->queued >= pf->nthreads * PREFETCH_AHEAD && !pf->stop)
		pthread_cond_wait(&pf->cond, &pf->lock);
	if (pf->stop)
		return false;
	b->next = NULL;
	if (pf->tail)
		pf->tail->next = b;
	else
		pf->head = b;
	pf->tail = b;
	pf->queued++;
	pthread_cond_broadcast(&pf->cond);
	return true;
}

static void prefetch_batch_free(struct prefetch_batch *b)
{
	if (!b)
		return;
	free(b->folder);
	free(b->uids);
	free(b);
}

/* A new batch of folder (lock not needed). */
static struct prefetch_batch *prefetch_batch_new(const char *folder,
						 uint32_t uidvalidity)
{
	struct prefetch_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->folder = strdup(folder);
	b->uids = calloc(PREFETCH_BATCH_MSGS, sizeof(*b->uids));
	b->uidvalidity = uidvalidity;
	if (!b->folder || !b->uids) {
		prefetch_batch_free(b);
		return NULL;
	}
	return b;
}

/* Queues the pieces of one large message, each a batch of its own. */
static bool prefetch_large(struct prefetch *pf, const char *folder,
			   uint32_t uidvalidity, const struct store_msg *m)
{
	uint64_t off;

	for (off = 0; off < m->size + 1; off += PREFETCH_BATCH_BYTES) {
		struct prefetch_batch *b =
			prefetch_batch_new(folder, uidvalidity);
		bool ok;

		if (!b)
			return false;
		b->uids[0] = m->uid;
		b->n = 1;
		b->offset = off;
		b->len = m->size - off > PREFETCH_BATCH_BYTES
				 ? PREFETCH_BATCH_BYTES
				 : m->size - off + CACHE_CHUNK;
		b->counts = off + PREFETCH_BATCH_BYTES > m->size;
		b->bytes = b->len;
		pthread_mutex_lock(&pf->lock);
		ok = prefetch_queue(pf, b);
		pthread_mutex_unlock(&pf->lock);
		if (!ok) {
			prefetch_batch_free(b);
			return false;
		}
		if (b->counts)
			break;
	}
	return true;
}

/* Hands a batch under way to the workers; a new one is started. */
static bool prefetch_flush_batch(struct prefetch *pf,
				 struct prefetch_batch **bp)
{
	struct prefetch_batch *b = *bp;
	bool ok;

	*bp = NULL;
	if (!b || !b->n) {
		prefetch_batch_free(b);
		return true;
	}
	b->counts = true;
	pthread_mutex_lock(&pf->lock);
	ok = prefetch_queue(pf, b);
	pthread_mutex_unlock(&pf->lock);
	if (!ok)
		prefetch_batch_free(b);
	return ok;
}

/* Plans one folder: lists it and queues what is not on disk. */
static bool prefetch_folder(struct prefetch *pf, const char *folder)
{
	struct prefetch_batch *b = NULL;
	struct store_listing l;
	uint64_t missing = 0, bytes = 0;
	size_t i;
	int rc;

	rc = pf->st->ops->messages(pf->st, folder, NULL, &l);
	if (rc != 0) {
		log_warnx("prefetch: cannot list %s: %s", folder,
			  strerror(rc < 0 ? -rc : EIO));
		return rc != -EIO || !*pf->offline;
	}
	for (i = 0; i < l.n; i++) {
		const struct store_msg *m = &l.msgs[i];

		if (diskcache_has_all(pf->dc, folder, l.uidvalidity, m->uid,
				      DISKCACHE_WHOLE))
			continue;
		missing++;
		bytes += m->size;
		pthread_mutex_lock(&pf->lock);
		pf->total++;
		pthread_mutex_unlock(&pf->lock);
		if (m->size + CACHE_CHUNK > PREFETCH_BATCH_BYTES) {
			if (!prefetch_large(pf, folder, l.uidvalidity, m))
				goto stop;
			continue;
		}
		if (b &&
		    (b->n == PREFETCH_BATCH_MSGS ||
		     b->bytes + m->size > PREFETCH_BATCH_BYTES) &&
		    !prefetch_flush_batch(pf, &b))
			goto stop;
		if (!b && !(b = prefetch_batch_new(folder, l.uidvalidity)))
			goto stop;
		b->uids[b->n++] = m->uid;
		b->bytes += m->size;
		if (m->size + CACHE_CHUNK > b->len)
			b->len = m->size + CACHE_CHUNK;
	}
	if (!prefetch_flush_batch(pf, &b))
		goto stop;
	log_info("prefetch: %s: %llu of %zu messages (%llu bytes) to fetch",
		 folder, (unsigned long long)missing, l.n,
		 (unsigned long long)bytes);
	store_listing_clear(&l);
	return true;
stop:
	prefetch_batch_free(b);
	store_listing_clear(&l);
	return false;
}

/* True when the folder is one the user asked for. */
static bool prefetch_wanted(const struct prefetch *pf,
			    const struct store_folder *f)
{
	char *path, **p;
	bool r = false;

	if (f->attrs & STORE_FOLDER_NOSELECT)
		return false;
	if (pf->all)
		return true;
	path = names_to_path(f->name, f->delim);
	for (p = pf->folders; path && p && *p && !r; p++)
		r = strcmp(*p, path) == 0;
	free(path);
	return r;
}

/* Waits while the store is offline; false when stopping. */
static bool prefetch_wait_online(struct prefetch *pf)
{
	bool go = true;

	pthread_mutex_lock(&pf->lock);
	while (*pf->offline && (go = prefetch_pause(pf, 1000)))
		pf->state = PREFETCH_WAITING;
	pthread_mutex_unlock(&pf->lock);
	return go;
}

/* The planner: waits to be online, lists the folders, plans each. */
static void *prefetch_plan_main(void *arg)
{
	struct prefetch *pf = arg;
	struct store_folder *f = NULL;
	size_t n = 0, i;
	char **p;
	int rc;

	do {
		if (!prefetch_wait_online(pf))
			goto out;
		pthread_mutex_lock(&pf->lock);
		pf->state = PREFETCH_LISTING;
		pthread_mutex_unlock(&pf->lock);
		rc = pf->st->ops->folders(pf->st, &f, &n);
	} while (rc == 0 && *pf->offline &&
		 (store_folders_free(f, n), f = NULL, true));
	if (rc < 0) {
		log_warnx("prefetch: cannot list the folders: %s",
			  strerror(-rc));
		goto out;
	}
	for (p = pf->folders; p && *p; p++) {
		for (i = 0; i < n; i++) {
			char *path = names_to_path(f[i].name, f[i].delim);
			bool same = path && strcmp(path, *p) == 0;

			free(path);
			if (same)
				break;
		}
		if (i == n)
			log_warnx("prefetch: no folder %s", *p);
	}
	pthread_mutex_lock(&pf->lock);
	pf->state = PREFETCH_FETCHING;
	pthread_mutex_unlock(&pf->lock);
	for (i = 0; i < n; i++) {
		if (!prefetch_wanted(pf, &f[i]))
			continue;
		if (!prefetch_wait_online(pf) ||
		    !prefetch_folder(pf, f[i].name))
			break;
		pthread_mutex_lock(&pf->lock);
		pf->folders_done++;
		pthread_mutex_unlock(&pf->lock);
	}
out:
	store_folders_free(f, n);
	pthread_mutex_lock(&pf->lock);
	pf->planned = true;
	pthread_cond_broadcast(&pf->cond);
	pthread_mutex_unlock(&pf->lock);
	return NULL;
}

/* Discards a fetch callback's piece: the store's disk layer kept it. */
static void prefetch_piece(void *ctx, const struct store_piece *p)
{
	(void)ctx;
	(void)p;
}

/* Logs progress every PREFETCH_PROGRESS_S seconds, and the end. Lock
 * held. */
static void prefetch_progress(struct prefetch *pf)
{
	time_t now = clock_mono();

	if (pf->planned && !pf->head && !pf->busy &&
	    pf->state != PREFETCH_DONE) {
		pf->state = PREFETCH_DONE;
		log_info("prefetch: done: %llu messages (%llu bytes) in %lld "
			 "s, %llu failed",
			 (unsigned long long)pf->done,
			 (unsigned long long)pf->bytes,
			 (long long)(now - pf->started),
			 (unsigned long long)pf->failed);
		return;
	}
	if (now - pf->last_progress < PREFETCH_PROGRESS_S)
		return;
	pf->last_progress = now;
	log_info("prefetch: %llu of %llu messages (%llu bytes)",
		 (unsigned long long)pf->done, (unsigned long long)pf->total,
		 (unsigned long long)pf->bytes);
}

/* Fetches one batch; its pieces reach the disk cache on the way. */
static void prefetch_run(struct prefetch *pf, struct prefetch_batch *b)
{
	int rc;

	/* Background work: with no session to spare for it (one always
	 * stays free for foreground calls), it waits its turn, asking
	 * again every 25 ms (a session is often back within a round trip:
	 * waiting longer left a worker idle while its batch could run). */
	while ((rc = pf->st->ops->fetch(pf->st, b->folder, b->uidvalidity,
					b->uids, b->n, b->offset, b->len,
					prefetch_piece, NULL)) == -EAGAIN &&
	       !pf->stop)
		nanosleep(&(struct timespec){0, 25 * 1000 * 1000}, NULL);
	if (rc == 0)
		diskcache_flush(pf->dc, PREFETCH_FLUSH_MS);
	pthread_mutex_lock(&pf->lock);
	if (rc == 0) {
		pf->bytes += b->bytes;
		if (b->counts)
			pf->done += b->n;
	} else if (b->counts) {
		pf->failed += b->n;
	}
	pthread_mutex_unlock(&pf->lock);
	if (rc < 0)
		log_warnx("prefetch: %s: a batch of %zu messages failed: %s",
			  b->folder, b->n, strerror(-rc));
}

/* A worker: takes batches until there are none and none will come. */
static void *prefetch_work_main(void *arg)
{
	struct prefetch *pf = arg;
	struct prefetch_batch *b;

	store_set_background(true);
	pthread_mutex_lock(&pf->lock);
	for (;;) {
		while (!pf->head && !pf->planned && !pf->stop)
			pthread_cond_wait(&pf->cond, &pf->lock);
		if (pf->stop || !pf->head)
			break;
		if (*pf->offline) {
			prefetch_pause(pf, 1000);
			continue;
		}
		b = pf->head;
		pf->head = b->next;
		if (!pf->head)
			pf->tail = NULL;
		pf->queued--;
		pf->busy++;
		pthread_cond_broadcast(&pf->cond);
		pthread_mutex_unlock(&pf->lock);
		prefetch_run(pf, b);
		prefetch_batch_free(b);
		pthread_mutex_lock(&pf->lock);
		pf->busy--;
		prefetch_progress(pf);
	}
	prefetch_progress(pf);
	pthread_mutex_unlock(&pf->lock);
	return NULL;
}

struct prefetch *prefetch_start(struct store *st, struct diskcache *dc,
				_Atomic bool *offline, char **folders, bool all,
				unsigned threads)
{
	struct prefetch *pf = calloc(1, sizeof(*pf));
	unsigned i;

	if (!pf || !(pf->workers = calloc(threads, sizeof(*pf->workers)))) {
		free(pf);
		return NULL;
	}
	pf->st = st;
	pf->dc = dc;
	pf->offline = offline;
	pf->folders = folders;
	pf->all = all;
	pf->nthreads = threads;
	pf->started = pf->last_progress = clock_mono();
	pthread_mutex_init(&pf->lock, NULL);
	clock_cond_init(&pf->cond);
	if (pthread_create(&pf->planner, NULL, prefetch_plan_main, pf)) {
		free(pf->workers);
		free(pf);
		return NULL;
	}
	pthread_setname_np(pf->planner, "mailfs-plan");
	for (i = 0; i < threads; i++) {
		if (pthread_create(&pf->workers[i], NULL, prefetch_work_main,
				   pf))
			break;
		pthread_setname_np(pf->workers[i], "mailfs-prefetch");
		pf->started_workers++;
	}
	log_info("prefetch: started, %u connection%s", pf->started_workers,
		 pf->started_workers == 1 ? "" : "s");
	return pf;
}

void prefetch_stop(struct prefetch *pf)
{
	struct prefetch_batch *b;
	unsigned i;

	if (!pf)
		return;
	pthread_mutex_lock(&pf->lock);
	pf->stop = true;
	pthread_cond_broadcast(&pf->cond);
	pthread_mutex_unlock(&pf->lock);
	pthread_join(pf->planner, NULL);
	for (i = 0; i < pf->started_workers; i++)
		pthread_join(pf->workers[i], NULL);
	while ((b = pf->head)) {
		pf->head = b->next;
		prefetch_batch_free(b);
	}
	free(pf->workers);
	pthread_mutex_destroy(&pf->lock);
	pthread_cond_destroy(&pf->cond);
	free(pf);
}

size_t prefetch_status(struct prefetch *pf, char *buf, size_t len)
{
	int n;

	pthread_mutex_lock(&pf->lock);
	n = snprintf(
		buf, len,
		"prefetch=%s\n"
		"prefetch_messages=%llu/%llu\n"
		"prefetch_bytes=%llu\n",
		prefetch_state_names[pf->state], (unsigned long long)pf->done,
		(unsigned long long)pf->total, (unsigned long long)pf->bytes);
	pthread_mutex_unlock(&pf->lock);
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : (len ? len - 1 : 0);
}
