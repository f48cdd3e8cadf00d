// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsahead: scans and their read-ahead (grep -r, cat *, rsync; head,
 * file(1), a header cache). When the first reads of messages of one
 * folder follow each other quickly, it is a scan: a miss at the start
 * of a message fetches a batch of the messages that follow with it, and
 * this thread fetches the batch after it while the reader consumes the
 * current one, so that the transfer overlaps the reader's own work
 * instead of adding to it. It runs as background work: it never takes
 * the last free session of the pool (store_set_background()), and stays
 * at most one batch ahead of the reader.
 *
 * What rides along follows what the reader reads: while it reads whole
 * messages, whole bodies (of messages up to FS_PREFETCH_SIZE); when
 * it left the last message after its first read, short of its end (a
 * run of short reads at the head of each file), only heads, as long as
 * that first read. The first read of a message outside a scan of whole
 * bodies asks for what it reads (in FSAHEAD_HEAD_ROUND steps), not a
 * whole chunk: cut chunks are cached as such (cache.h), never as whole.
 *
 * Across folders (grep -r over an account): when first reads that miss
 * move from folder to folder quickly (twice), and the reader reads whole
 * bodies, this thread fetches the small bodies of the folders that
 * follow the reader's (those already listed, which fswalk lists ahead
 * of the walk) in one pipeline (store_ops.fetch_many): at most
 * FSAHEAD_FOLDERS folders after the reader's, FSAHEAD_BATCH messages
 * and bytes_max bytes a batch, listing the next folders first when the
 * walk's listings end within reach (fswalk_ahead()). The reader going
 * past half of those folders asks for the next batch; a reader that
 * stops asks for nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "clock.h"
#include "fsahead.h"
#include "fsctx.h"
#include "fsll.h"
#include "fswalk.h"
#include "log.h"
#include "store.h"
#include "tree.h"

/* A batch fetched ahead: at most this many messages, and bytes up to
 * FSAHEAD_BYTES or a quarter of the memory cache. */
#define FSAHEAD_BATCH 4096
#define FSAHEAD_BYTES (16u * 1024 * 1024)
/* Bytes of bodies on disk put into the kernel's page cache at most for
 * one scan's start (fsahead_push_local()). */
#define FSAHEAD_PUSH_BYTES (256u * 1024 * 1024)
/* Once its reader overtook it, the push goes on this many messages
 * after the reader's last READ (fsahead_push_passed()). */
#define FSAHEAD_PUSH_LEAD 3u
/* A first read asks for its own bytes rounded up to this, at least
 * FSAHEAD_HEAD_MIN (the kernel's first readahead of a 4 KiB read). */
#define FSAHEAD_HEAD_ROUND 4096u
#define FSAHEAD_HEAD_MIN (16u * 1024)
/* Read-ahead across folders: at most this many folders after the
 * reader's, each batch (fswalk lists as many at once). */
#define FSAHEAD_FOLDERS 32
/* Steps from folder to folder (first reads that missed, each within
 * FS_SCAN_GAP_MS of the last) that make a walk reading bodies: two
 * folders may be a user reading two messages. */
#define FSAHEAD_WALK_STEPS 2

/* Folders with messages open that are tracked. */
#define FSAHEAD_OPEN_SLOTS 64

/* A folder with n messages open. */
struct fsahead_open {
	uint64_t folder;
	unsigned n; /* 0: a free slot */
};

/* Messages of one folder in a batch being fetched: first..last. */
struct fsahead_span {
	struct cache_key key; /* uid: the first */
	uint32_t last;
};

/* What the worker is asked to fetch next: the messages after `after`. */
struct fsahead_req {
	char *folder; /* owned; NULL: nothing asked */
	uint64_t folder_id;
	uint32_t uidvalidity;
	uint32_t after;
	uint64_t head; /* bytes of each message; 0: whole bodies */
};

struct fsahead {
	struct fsmount *fs; /* borrowed */
	pthread_t thread;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond; /* a request came, or stop */
	pthread_cond_t arrived; /* a message of the batch arrived */
	bool stop;
	/* No more pages put into the kernel's page cache (the mount is
	 * ending); pushing counts those being put now. */
	bool quiet;
	unsigned pushing;
	pthread_cond_t pushed; /* pushing went to 0 */
	struct fsahead_req req;
	/* Bodies on disk to put into the page cache, after push.after */
	struct fsahead_req push;
	/* The folder being put into the page cache now (0: none), and the
	 * last UID there its reader read itself (a READ: it overtook the
	 * push, which goes on after that UID rather than behind it). */
	_Atomic uint64_t push_folder;
	_Atomic uint32_t push_reader;
	/* The batch last fetched ahead: a first read of one of its
	 * messages asks for the batch after it. */
	uint64_t mark_folder;
	uint32_t mark_first, mark_last; /* 0: none */
	uint64_t mark_head; /* its head length; 0: whole bodies */
	/* The batch being fetched now (one span per folder): a reader of
	 * one of its messages waits for it to arrive instead of fetching
	 * it again. */
	struct fsahead_span inflight[FSAHEAD_FOLDERS];
	size_t n_inflight;
	uint64_t bytes_max;
	/* Across folders: the folder the reader opened a message of last
	 * (its name owned), the folder of the last first read that missed
	 * and when, whether the reader reads heads, a batch asked for,
	 * and the folders of the last batch. */
	char *reader;
	uint64_t reader_id;
	uint64_t miss_folder;
	long long miss_ms;
	unsigned walk_steps;
	bool heads;
	bool walk_asked;
	uint64_t walk_marks[FSAHEAD_FOLDERS];
	size_t n_walk_marks;
	/* Folders with messages open (a reader's fetch may be under way
	 * there): left out of batches across folders. Opens beyond the
	 * table are counted in open_other, and stop those batches. */
	struct fsahead_open open[FSAHEAD_OPEN_SLOTS];
	unsigned open_other;
};

/* Where a background fetch's pieces go. */
struct fsahead_fetch {
	struct fsahead *a;
	struct cache *cache;
	const char *folder; /* borrowed */
	struct cache_key key; /* uid set per piece */
	uint64_t asked;
};

/*
 * Puts a message's first piece, just fetched ahead, into the kernel's
 * page cache (fsll_store()): the reader it was fetched for then reads
 * it with no READ request, and on a read-only mount with no request at
 * all. Only a whole body of the size stat shows: the kernel zeroes the
 * last page past what it is given when that reaches the size it knows,
 * so a piece of a body could show zeroes where a size it knows is short
 * (the rest of a body is read as before). A message the kernel holds no
 * inode for yet (not looked up) is left to its READ.
 */
static void fsahead_push(struct fsahead_fetch *ft, const struct store_piece *p)
{
	struct fsmount *fs = ft->a->fs;
	uint64_t ino, size = 0;

	if (!fs->ll || !p->len)
		return;
	ino = tree_ino_of(fs->tree, ft->folder, ft->key.uidvalidity, p->uid,
			  &size);
	if (!ino || p->len != size)
		return;
	pthread_mutex_lock(&ft->a->lock);
	if (ft->a->quiet) {
		pthread_mutex_unlock(&ft->a->lock);
		return;
	}
	ft->a->pushing++;
	pthread_mutex_unlock(&ft->a->lock);
	if (fsll_store(fs->ll, ino, p->data, p->len) == 0)
		atomic_fetch_add_explicit(&fs->pushed, 1, memory_order_relaxed);
	pthread_mutex_lock(&ft->a->lock);
	if (--ft->a->pushing == 0)
		pthread_cond_broadcast(&ft->a->pushed);
	pthread_mutex_unlock(&ft->a->lock);
}

void fsahead_quiesce(struct fsahead *a, int wait_ms)
{
	struct timespec deadline = clock_deadline(wait_ms);

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->quiet = true;
	while (a->pushing &&
	       pthread_cond_timedwait(&a->pushed, &a->lock, &deadline) == 0)
		;
	pthread_mutex_unlock(&a->lock);
}

static void fsahead_piece(void *ctx, const struct store_piece *p)
{
	struct fsahead_fetch *ft = ctx;
	struct cache_key k;

	if (p->offset != 0)
		return;
	fsctx_msg_key(ft->a->fs, ft->folder, ft->key.folder,
		      ft->key.uidvalidity, p->uid, &k);
	cache_store(ft->cache, &k, 0, p->data, p->len, p->len < ft->asked);
	/* Readers waiting for this message go on. */
	pthread_mutex_lock(&ft->a->lock);
	pthread_cond_broadcast(&ft->a->arrived);
	pthread_mutex_unlock(&ft->a->lock);
	fsahead_push(ft, p);
}

/* True when the first head bytes of a message of size bytes (all of
 * them when fewer) are cached. */
static bool fsahead_has_head(struct cache *c, const struct cache_key *k,
			     uint64_t size, uint64_t head)
{
	return cache_holds(c, k, (size < head ? size : head) - (size > 0));
}

/* The batch in flight has landed: readers waiting for it go on. */
static void fsahead_landed(struct fsahead *a)
{
	pthread_mutex_lock(&a->lock);
	a->n_inflight = 0;
	pthread_cond_broadcast(&a->arrived);
	pthread_mutex_unlock(&a->lock);
}

/* A batch across folders being planned: the requests, their UIDs and
 * where their pieces go. */
struct fsahead_walk {
	char *names[FSAHEAD_FOLDERS]; /* owned */
	uint32_t uidvalidity[FSAHEAD_FOLDERS];
	size_t n_names;
	struct store_fetch_req reqs[FSAHEAD_FOLDERS];
	struct fsahead_fetch ft[FSAHEAD_FOLDERS];
	size_t n;
	uint32_t *uids; /* owned: FSAHEAD_BATCH */
	uint64_t *sizes; /* owned: FSAHEAD_BATCH */
	size_t used; /* of uids */
	uint64_t bytes;
};

/* Adds folder i of w to the batch: its small messages not cached yet,
 * while the batch's bounds allow. False once they are reached. */
static bool fsahead_walk_folder(struct fsahead *a, struct fsahead_walk *w,
				size_t i)
{
	struct fsmount *fs = a->fs;
	struct fsahead_fetch *ft = &w->ft[w->n];
	uint32_t *uids = w->uids + w->used;
	uint64_t *sizes = w->sizes + w->used, len = 0;
	size_t got, j, m = 0;

	got = tree_next_messages(fs->tree, w->names[i], w->uidvalidity[i], 0,
				 FSAHEAD_BATCH - w->used, FS_PREFETCH_SIZE,
				 uids, sizes);
	*ft = (struct fsahead_fetch){a,
				     fs->cache,
				     w->names[i],
				     {.folder = tree_folder_id(w->names[i]),
				      .uidvalidity = w->uidvalidity[i]},
				     0};
	for (j = 0; j < got && w->bytes < a->bytes_max; j++) {
		fsctx_msg_key(fs, w->names[i], ft->key.folder,
			      w->uidvalidity[i], uids[j], &ft->key);
		if (cache_has(fs->cache, &ft->key, 0))
			continue;
		uids[m++] = uids[j];
		w->bytes += sizes[j];
		if (sizes[j] + FS_SLACK > len)
			len = sizes[j] + FS_SLACK;
	}
	if (m) {
		ft->asked = len;
		w->reqs[w->n++] = (struct store_fetch_req){
			.folder = w->names[i],
			.uidvalidity = w->uidvalidity[i],
			.uids = uids,
			.n = m,
			.len = len,
			.cb = fsahead_piece,
			.ctx = ft};
		w->used += m;
	}
	return w->used < FSAHEAD_BATCH && w->bytes < a->bytes_max;
}

/* The slot of folder in the table of open folders, or NULL. The lock
 * is held. */
static struct fsahead_open *fsahead_open_slot(struct fsahead *a,
					      uint64_t folder)
{
	size_t i;

	for (i = 0; i < FSAHEAD_OPEN_SLOTS; i++)
		if (a->open[i].n && a->open[i].folder == folder)
			return &a->open[i];
	return NULL;
}

/* Marks w's batch as in flight, leaving out the folder the reader is
 * in now and every folder with a message open (a reader's fetch may be
 * under way there: the two would fetch the same messages), and notes
 * the folders looked at (fetched or cached already) for
 * fsahead_opened(). The lock is held. */
static void fsahead_walk_mark(struct fsahead *a, struct fsahead_walk *w)
{
	size_t i, k = 0;

	for (i = 0; i < w->n && !a->open_other; i++) {
		struct fsahead_fetch *ft = w->reqs[i].ctx;

		if (ft->key.folder == a->reader_id ||
		    fsahead_open_slot(a, ft->key.folder))
			continue;
		w->reqs[k] = w->reqs[i];
		a->inflight[k].key = ft->key;
		a->inflight[k].key.uid = w->reqs[i].uids[0];
		a->inflight[k++].last = w->reqs[i].uids[w->reqs[i].n - 1];
	}
	w->n = k;
	a->n_inflight = k;
	for (i = k = 0; i < w->n_names; i++) {
		uint64_t id = tree_folder_id(w->names[i]);

		if (id != a->reader_id)
			a->walk_marks[k++] = id;
	}
	a->n_walk_marks = k;
}

/* Fetches, in one pipeline, the bodies of the folders after `after`
 * (the reader's) that are not cached yet, within the batch bounds. */
static void fsahead_walk_run(struct fsahead *a, const char *after)
{
	struct fsmount *fs = a->fs;
	struct store *st = fs->cfg.store;
	struct fsahead_walk w = {0};
	size_t i, msgs = 0;
	int rc;

	if (!st->ops->fetch_many)
		return;
	w.uids = malloc(FSAHEAD_BATCH * sizeof(*w.uids));
	w.sizes = malloc(FSAHEAD_BATCH * sizeof(*w.sizes));
	if (!w.uids || !w.sizes)
		goto out;
	w.n_names = tree_listed_after(fs->tree, after, FSAHEAD_FOLDERS, w.names,
				      w.uidvalidity);
	/* The walk's listings end within reach: list the next folders
	 * first (while the reader works on those listed already). */
	if (w.n_names < FSAHEAD_FOLDERS &&
	    fswalk_ahead(fs, w.n_names ? w.names[w.n_names - 1] : after) > 0) {
		for (i = 0; i < w.n_names; i++)
			free(w.names[i]);
		w.n_names = tree_listed_after(fs->tree, after, FSAHEAD_FOLDERS,
					      w.names, w.uidvalidity);
	}
	for (i = 0; i < w.n_names && fsahead_walk_folder(a, &w, i); i++)
		;
	pthread_mutex_lock(&a->lock);
	fsahead_walk_mark(a, &w);
	pthread_mutex_unlock(&a->lock);
	if (w.n == 0)
		goto out;
	for (i = 0; i < w.n; i++)
		msgs += w.reqs[i].n;
	log_debug("read-ahead: %zu messages of %zu folders after %s", msgs, w.n,
		  after);
	rc = st->ops->fetch_many(st, w.reqs, w.n);
	fsahead_landed(a);
	if (rc == 0)
		fs->prefetched += msgs;
	else
		log_debug("read-ahead after %s: %s", after, strerror(-rc));
out:
	for (i = 0; i < w.n_names; i++)
		free(w.names[i]);
	free(w.uids);
	free(w.sizes);
}

/* Fetches the batch after r->after that is not cached yet, and marks
 * it so that the reader's arrival asks for the next one. */
static void fsahead_run(struct fsahead *a, const struct fsahead_req *r)
{
	struct fsmount *fs = a->fs;
	uint32_t uids[FSAHEAD_BATCH], keep[FSAHEAD_BATCH];
	uint64_t sizes[FSAHEAD_BATCH], total = 0, len = 0;
	struct fsahead_fetch ft = {
		a,
		fs->cache,
		r->folder,
		{.folder = r->folder_id, .uidvalidity = r->uidvalidity},
		0};
	size_t n, i, m = 0;
	int rc;

	n = tree_next_messages(
		fs->tree, r->folder, r->uidvalidity, r->after, FSAHEAD_BATCH,
		r->head ? UINT64_MAX : FS_PREFETCH_SIZE, uids, sizes);
	for (i = 0; i < n && total < a->bytes_max; i++) {
		fsctx_msg_key(fs, r->folder, r->folder_id, r->uidvalidity,
			      uids[i], &ft.key);
		if ((r->head ? fsahead_has_head(fs->cache, &ft.key, sizes[i],
						r->head)
			     : cache_has(fs->cache, &ft.key, 0)) ||
		    fsctx_local(fs, r->folder, r->uidvalidity, uids[i]))
			continue;
		keep[m++] = uids[i];
		total += r->head ? r->head : sizes[i];
		if (sizes[i] + FS_SLACK > len)
			len = sizes[i] + FS_SLACK;
	}
	if (m == 0)
		return;
	if (r->head)
		len = r->head;
	pthread_mutex_lock(&a->lock);
	a->mark_folder = r->folder_id;
	a->mark_first = keep[0];
	a->mark_last = keep[m - 1];
	a->mark_head = r->head;
	a->inflight[0].key = (struct cache_key){.folder = r->folder_id,
						.uidvalidity = r->uidvalidity,
						.uid = keep[0]};
	a->inflight[0].last = keep[m - 1];
	a->n_inflight = 1;
	pthread_mutex_unlock(&a->lock);
	ft.asked = len;
	rc = fs->cfg.store->ops->fetch(fs->cfg.store, r->folder, r->uidvalidity,
				       keep, m, 0, len, fsahead_piece, &ft);
	fsahead_landed(a);
	if (rc == 0)
		fs->prefetched += m;
	else
		log_debug("read-ahead in %s: %s", r->folder, strerror(-rc));
}

/* A piece read from disk for fsahead_push_run(): into the page cache,
 * nowhere else (the reader reads the disk itself if it comes first). */
static void fsahead_push_piece(void *ctx, const struct store_piece *p)
{
	if (p->offset == 0)
		fsahead_push(ctx, p);
}

/*
 * True when the push of the bodies on disk should leave uid to its
 * reader: the reader read a message at or past uid - FSAHEAD_PUSH_LEAD
 * itself. A page being put waits for a READ of it in flight, and a body
 * the reader has passed is put for nothing, so once overtaken (reader
 * not 0) the push goes on that many messages after the reader's last
 * READ instead.
 */
static bool fsahead_push_passed(struct fsahead *a, uint32_t uid)
{
	uint32_t reader =
		atomic_load_explicit(&a->push_reader, memory_order_relaxed);

	return reader && uid <= reader + FSAHEAD_PUSH_LEAD;
}

/*
 * Puts the bodies on disk of the folder of r, after r->after, into the
 * kernel's page cache, in UID order (the order a lister reads them in),
 * FSAHEAD_PUSH_BYTES at most, each read from disk just before it is
 * put: the scan that started then reads them with no READ request.
 * Bodies its reader overtook are left out (fsahead_push_passed()).
 * Stops when asked to, or at a newer request of either kind.
 */
static void fsahead_push_run(struct fsahead *a, const struct fsahead_req *r)
{
	struct fsmount *fs = a->fs;
	uint32_t uids[256];
	uint64_t sizes[256], total = 0;
	struct fsahead_fetch ft = {
		a,
		fs->cache,
		r->folder,
		{.folder = r->folder_id, .uidvalidity = r->uidvalidity},
		0};
	uint32_t after = r->after;
	size_t n, i;
	bool stop;

	while (total < FSAHEAD_PUSH_BYTES) {
		n = tree_next_messages(fs->tree, r->folder, r->uidvalidity,
				       after, 256, FS_PREFETCH_SIZE, uids,
				       sizes);
		if (n == 0)
			break;
		after = uids[n - 1];
		for (i = 0; i < n && total < FSAHEAD_PUSH_BYTES; i++) {
			if (fsahead_push_passed(a, uids[i]) ||
			    !fsctx_local(fs, r->folder, r->uidvalidity,
					 uids[i]))
				continue;
			pthread_mutex_lock(&a->lock);
			/* A read-ahead for bodies not on disk goes first:
			 * readers wait for those. */
			stop = a->stop || a->quiet || a->push.folder ||
			       a->req.folder;
			pthread_mutex_unlock(&a->lock);
			if (stop)
				goto out;
			total += sizes[i];
			ft.asked = sizes[i] + FS_SLACK;
			if (fs->cfg.store->ops->fetch(
				    fs->cfg.store, r->folder, r->uidvalidity,
				    &uids[i], 1, 0, ft.asked,
				    fsahead_push_piece, &ft) < 0)
				goto out;
		}
	}
out:
	pthread_mutex_lock(&a->lock);
	if (!a->push.folder) /* else a newer push is told its reader */
		atomic_store(&a->push_folder, 0);
	pthread_mutex_unlock(&a->lock);
}

/*
 * True when this request is the first read, within FS_SCAN_GAP_MS, of
 * the process that just listed folder to its end (fsdir_read()): the
 * start of a scan, claimed once. scan_lock is held.
 */
static bool fsahead_lister_reads(struct fsmount *fs, uint64_t folder,
				 long long now)
{
	if (fs->listed_folder != folder ||
	    fs->listed_pid != fsll_context()->pid ||
	    now - fs->listed_ms > FS_SCAN_GAP_MS)
		return false;
	fs->listed_folder = 0;
	return true;
}

/* A reader read f from disk itself: when the push of f's folder is
 * under way, it goes on after f (fsahead_push_passed()). */
static void fsahead_push_overtaken(struct fsahead *a, const struct fsfile *f)
{
	uint32_t seen;

	if (atomic_load_explicit(&a->push_folder, memory_order_relaxed) !=
	    f->key.folder)
		return;
	seen = atomic_load_explicit(&a->push_reader, memory_order_relaxed);
	while (f->key.uid > seen && !atomic_compare_exchange_weak(
					    &a->push_reader, &seen, f->key.uid))
		;
}

void fsahead_push_local(struct fsmount *fs, const struct fsfile *f)
{
	struct fsahead *a = fs->ahead;
	long long now = clock_now_ms();
	bool lister;
	char *folder;

	if (!a || !fs->ll)
		return;
	pthread_mutex_lock(&fs->scan_lock);
	lister = fsahead_lister_reads(fs, f->key.folder, now);
	pthread_mutex_unlock(&fs->scan_lock);
	if (!lister) {
		fsahead_push_overtaken(a, f);
		return;
	}
	if (!(folder = strdup(f->folder)))
		return;
	pthread_mutex_lock(&a->lock);
	free(a->push.folder);
	a->push = (struct fsahead_req){folder, f->key.folder,
				       f->key.uidvalidity, f->key.uid, 0};
	/* From now on, before the push starts too, its reader's READs
	 * are noted. */
	atomic_store(&a->push_reader, 0);
	atomic_store(&a->push_folder, f->key.folder);
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

static void *fsahead_main(void *arg)
{
	struct fsahead *a = arg;
	struct fsahead_req r;

	store_set_background(true);
	pthread_mutex_lock(&a->lock);
	while (!a->stop) {
		if (a->req.folder) {
			r = a->req;
			a->req.folder = NULL;
			pthread_mutex_unlock(&a->lock);
			fsahead_run(a, &r);
			free(r.folder);
		} else if (a->push.folder) {
			r = a->push;
			a->push.folder = NULL;
			pthread_mutex_unlock(&a->lock);
			fsahead_push_run(a, &r);
			free(r.folder);
		} else if (a->walk_asked && a->reader) {
			char *after = strdup(a->reader);

			a->walk_asked = false;
			pthread_mutex_unlock(&a->lock);
			if (after)
				fsahead_walk_run(a, after);
			free(after);
		} else {
			pthread_cond_wait(&a->cond, &a->lock);
			continue;
		}
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	return NULL;
}

struct fsahead *fsahead_start(struct fsmount *fs)
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
	clock_cond_init(&a->pushed);
	if (pthread_create(&a->thread, NULL, fsahead_main, a)) {
		pthread_mutex_destroy(&a->lock);
		pthread_cond_destroy(&a->cond);
		pthread_cond_destroy(&a->arrived);
		pthread_cond_destroy(&a->pushed);
		free(a);
		return NULL;
	}
	pthread_setname_np(a->thread, "mailfs-ahead");
	return a;
}

void fsahead_stop(struct fsahead *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	a->quiet = true;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	free(a->req.folder);
	free(a->push.folder);
	free(a->reader);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->cond);
	pthread_cond_destroy(&a->arrived);
	pthread_cond_destroy(&a->pushed);
	free(a);
}

/* True when the message of k is in the batch being fetched. The lock
 * is held. */
static bool fsahead_in_flight(const struct fsahead *a,
			      const struct cache_key *k)
{
	size_t i;

	for (i = 0; i < a->n_inflight; i++) {
		const struct fsahead_span *sp = &a->inflight[i];

		if (sp->key.folder == k->folder &&
		    sp->key.uidvalidity == k->uidvalidity &&
		    k->uid >= sp->key.uid && k->uid <= sp->last)
			return true;
	}
	return false;
}

bool fsahead_wait(struct fsahead *a, const struct cache_key *k, uint64_t off,
		  long ms)
{
	struct timespec deadline = clock_deadline(ms);
	bool have = false;

	if (!a)
		return false;
	pthread_mutex_lock(&a->lock);
	while (fsahead_in_flight(a, k)) {
		have = cache_holds(a->fs->cache, k, off);
		if (have || pthread_cond_timedwait(&a->arrived, &a->lock,
						   &deadline) == ETIMEDOUT)
			break;
	}
	if (!have)
		have = cache_holds(a->fs->cache, k, off);
	pthread_mutex_unlock(&a->lock);
	return have;
}

/* Asks for the batch after `after` (replacing a request not yet
 * taken: the reader has moved on), of heads of head bytes (0: whole
 * bodies). The lock is held. */
static void fsahead_ask(struct fsahead *a, const char *folder,
			const struct cache_key *k, uint32_t after,
			uint64_t head)
{
	char *name = strdup(folder);

	if (!name)
		return;
	free(a->req.folder);
	a->req = (struct fsahead_req){name, k->folder, k->uidvalidity, after,
				      head};
	a->mark_first = a->mark_last = 0;
	pthread_cond_signal(&a->cond);
}

/* A scan's miss fetched a batch ending at UID last (heads of head
 * bytes, 0: whole bodies): fetch the next. */
static void fsahead_batch_fetched(struct fsahead *a, const char *folder,
				  const struct cache_key *k, uint32_t last,
				  uint64_t head)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	fsahead_ask(a, folder, k, last, head);
	pthread_mutex_unlock(&a->lock);
}

/* The reader opened a message of folder (id k->folder): when it
 * entered another folder, one of the second half of those the last
 * batch across folders looked at, ask for the batch after it. The lock
 * is held. */
static void fsahead_walk_opened(struct fsahead *a, const char *folder,
				const struct cache_key *k)
{
	char *name;
	size_t i;

	if (a->reader_id == k->folder && a->reader)
		return;
	name = strdup(folder);
	if (!name)
		return;
	free(a->reader);
	a->reader = name;
	a->reader_id = k->folder;
	for (i = 0; i < a->n_walk_marks; i++) {
		if (a->walk_marks[i] != k->folder)
			continue;
		/* Still walking: this counts as its last step. Past half
		 * of the folders ahead, the next ones are asked for (a
		 * batch of many folders a round trip, not one). */
		a->walk_steps++;
		a->miss_folder = k->folder;
		a->miss_ms = clock_now_ms();
		if (2 * i + 1 >= a->n_walk_marks) {
			a->walk_asked = true;
			pthread_cond_signal(&a->cond);
		}
		break;
	}
}

void fsahead_opened(struct fsahead *a, const char *folder,
		    const struct cache_key *k)
{
	struct fsahead_open *o;
	size_t i;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	o = fsahead_open_slot(a, k->folder);
	for (i = 0; !o && i < FSAHEAD_OPEN_SLOTS; i++)
		if (!a->open[i].n)
			o = &a->open[i];
	if (o) {
		o->folder = k->folder;
		o->n++;
	} else {
		a->open_other++;
	}
	if (a->mark_first && a->mark_folder == k->folder &&
	    k->uid >= a->mark_first && k->uid <= a->mark_last)
		fsahead_ask(a, folder, k, a->mark_last, a->mark_head);
	fsahead_walk_opened(a, folder, k);
	pthread_mutex_unlock(&a->lock);
}

void fsahead_closed(struct fsahead *a, const struct cache_key *k)
{
	struct fsahead_open *o;

	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	o = fsahead_open_slot(a, k->folder);
	if (o)
		o->n--;
	else if (a->open_other)
		a->open_other--;
	pthread_mutex_unlock(&a->lock);
}

/*
 * A first read that missed, of a message of k's folder; batch: the scan
 * of that folder decided what rides along (heads: only heads). When
 * such reads went from folder to folder FSAHEAD_WALK_STEPS times, each
 * a moment after the last, and the reader reads whole bodies, it walks
 * through folders: on entering this folder, ask for the folders after
 * it. Returns whether it walks.
 */
static bool fsahead_walk_miss(struct fsahead *a, const struct cache_key *k,
			      unsigned batch, bool heads)
{
	long long now = clock_now_ms();
	bool walking;

	if (!a || !a->fs->cfg.store->ops->fetch_many)
		return false;
	pthread_mutex_lock(&a->lock);
	if (batch)
		a->heads = heads;
	if (a->miss_folder != k->folder) {
		if (a->miss_ms && now - a->miss_ms <= FS_SCAN_GAP_MS)
			a->walk_steps++;
		else
			a->walk_steps = 0;
	}
	walking = a->walk_steps >= FSAHEAD_WALK_STEPS &&
		  a->reader_id == k->folder && !a->heads;
	if (walking && a->miss_folder != k->folder) {
		a->walk_asked = true;
		pthread_cond_signal(&a->cond);
	}
	a->miss_folder = k->folder;
	a->miss_ms = now;
	pthread_mutex_unlock(&a->lock);
	return walking;
}

/*
 * Decides whether a first read of the message of k (short: it ends
 * before the message does) is part of a scan of its folder, and returns
 * how many following messages to fetch with it (0 when it is not a
 * scan); *heads_r: only their heads. The batch grows while the scan goes
 * on. What the reader did with the message before decides heads: it left
 * it after a short first read (heads), or came back for more (whole).
 */
static unsigned fsahead_scan(struct fsmount *fs, const struct cache_key *k,
			     bool short_read, bool *heads_r)
{
	struct fsscan *s = NULL, *oldest = &fs->scans[0];
	long long now = clock_now_ms();
	unsigned batch = 0, i;

	pthread_mutex_lock(&fs->scan_lock);
	for (i = 0; i < FS_SCAN_SLOTS && !s; i++) {
		if (fs->scans[i].batch && fs->scans[i].folder_id == k->folder)
			s = &fs->scans[i];
		else if (fs->scans[i].last < oldest->last)
			oldest = &fs->scans[i];
	}
	if (s && s->prev_uid == k->uid) {
		/* The same message again (cat after head): no step. */
		*heads_r = s->heads;
		pthread_mutex_unlock(&fs->scan_lock);
		return 0;
	}
	if (s && now - s->last <= FS_SCAN_GAP_MS) {
		batch = s->batch;
		if (s->batch < FS_BATCH_MAX)
			s->batch *= 2;
		if (s->prev_short)
			s->heads = !s->prev_more;
	} else {
		if (!s) {
			s = oldest;
			s->folder_id = k->folder;
		}
		s->batch = FS_BATCH_MIN;
		s->heads = false;
		/* A walk through the folder (grep -r, tar, cp -r), whose
		 * next reads the batch saves a round trip. */
		if (fsahead_lister_reads(fs, k->folder, now)) {
			batch = s->batch;
			s->batch *= 2;
		}
	}
	s->prev_uid = k->uid;
	s->prev_short = short_read;
	s->prev_more = false;
	s->last = now;
	*heads_r = s->heads;
	pthread_mutex_unlock(&fs->scan_lock);
	return batch;
}

void fsahead_read_more(struct fsmount *fs, const struct cache_key *k)
{
	unsigned i;

	pthread_mutex_lock(&fs->scan_lock);
	for (i = 0; i < FS_SCAN_SLOTS; i++) {
		struct fsscan *s = &fs->scans[i];

		if (s->batch && s->folder_id == k->folder &&
		    s->prev_uid == k->uid)
			s->prev_more = true;
	}
	pthread_mutex_unlock(&fs->scan_lock);
}

/*
 * The messages after f's that ride along with a fetch of len bytes from
 * its start, into uids + 1 (room for `batch`): heads of len bytes of
 * any size, or whole bodies of those up to FS_PREFETCH_SIZE, of at
 * most FS_BATCH_BYTES in all; those cached already are left out.
 * *len_r grows to the longest whole body. Returns how many.
 */
static size_t fsahead_ride_along(struct fsmount *fs, struct fsfile *f,
				 unsigned batch, bool heads, uint64_t *len_r,
				 uint32_t *uids)
{
	uint64_t sizes[FS_BATCH_MAX + 1], total = *len_r, len = *len_r;
	bool local[FS_BATCH_MAX + 1];
	struct cache_key k = f->key;
	size_t n = 1, i, more;

	more = tree_next_messages(
		fs->tree, f->folder, f->key.uidvalidity, f->key.uid, batch,
		heads ? UINT64_MAX : FS_PREFETCH_SIZE, uids + 1, sizes + 1);
	/* Those on disk are read at once by their own reader (asked
	 * before the read-ahead's lock: the store takes its own). */
	for (i = 1; i <= more; i++)
		local[i] =
			fsctx_local(fs, f->folder, f->key.uidvalidity, uids[i]);
	if (fs->ahead)
		pthread_mutex_lock(&fs->ahead->lock);
	for (i = 1; i <= more && total < FS_BATCH_BYTES; i++) {
		fsctx_msg_key(fs, f->folder, f->key.folder, f->key.uidvalidity,
			      uids[i], &k);
		/* Those the read-ahead is fetching arrive anyway. */
		if (local[i] ||
		    (fs->ahead && fsahead_in_flight(fs->ahead, &k)) ||
		    (heads ? fsahead_has_head(fs->cache, &k, sizes[i], *len_r)
			   : cache_has(fs->cache, &k, 0)))
			continue;
		uids[n++] = uids[i];
		total += heads ? *len_r : sizes[i];
		if (!heads && sizes[i] + FS_SLACK > len)
			len = sizes[i] + FS_SLACK;
	}
	if (fs->ahead)
		pthread_mutex_unlock(&fs->ahead->lock);
	*len_r = len;
	return n - 1;
}

size_t fsahead_first_fetch(struct fsmount *fs, struct fsfile *f, uint64_t end,
			   uint64_t *len_r, uint32_t *uids)
{
	uint64_t size, head, len = *len_r;
	unsigned batch;
	bool first, cut, heads = false;
	size_t n = 1;

	pthread_mutex_lock(&f->lock);
	size = f->size;
	first = f->reads == 0;
	pthread_mutex_unlock(&f->lock);
	uids[0] = f->key.uid;
	head = (end + FSAHEAD_HEAD_ROUND - 1) / FSAHEAD_HEAD_ROUND *
	       FSAHEAD_HEAD_ROUND;
	if (head < FSAHEAD_HEAD_MIN)
		head = FSAHEAD_HEAD_MIN;
	batch = fsahead_scan(fs, &f->key, end < size, &heads);
	/* A walk reading bodies: the folder's first message already
	 * brings the others along (its scan would wait for a second). */
	if (fsahead_walk_miss(fs->ahead, &f->key, batch, heads) && !batch &&
	    first)
		batch = FS_BATCH_MIN;
	/* head -c, file(1), a header cache: a first read outside a scan of
	 * whole bodies asks for what it reads. */
	cut = first && (!batch || heads) && head < size && head < len;
	if (cut)
		len = head;
	if (batch && heads && cut)
		n += fsahead_ride_along(fs, f, batch, true, &len, uids);
	else if (batch && !heads && size <= FS_PREFETCH_SIZE)
		n += fsahead_ride_along(fs, f, batch, false, &len, uids);
	if (n > 1)
		fsahead_batch_fetched(fs->ahead, f->folder, &f->key,
				      uids[n - 1], heads ? len : 0);
	*len_r = len;
	return n;
}
