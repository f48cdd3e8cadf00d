// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * diskcache: the persistent cache of an IMAP account; see diskcache.h.
 * This file holds the cache's index of folders in memory (their place
 * in the folder list, their saved listings' states, listed sizes and
 * content identities, mtimes), the calls diskcache.h declares and the
 * writer's queue; the parts it calls are diskcache_db.c (the database:
 * schema, checks, migrations, loading, saved listings), diskcache_body.c
 * (body files, their index and LRU order), diskcache_object.c (bodies
 * kept once per content identity) and diskcache_writer.c (the writer
 * thread), which share diskcache_priv.h.
 *
 * Layout of the cache directory:
 *   lock                 flock()ed while a mount uses the cache (mountlock.h)
 *   cache.db (-wal,-shm) SQLite: meta, folders, msgs, bodies
 *   bodies/F-V/U-S-C     one piece of a body: folder id F, UIDVALIDITY V,
 *                        UID U, section S ("m" for the whole message),
 *                        chunk number C; a header, then the bytes
 *   bodies/0-0/O-m-C     one piece of the whole message of object O: a
 *                        content identity (store_oid) and its size, in
 *                        the table objects, shared by every message
 *                        the server gives that identity
 *
 * The database is the index of what is on disk; the header of each
 * body file repeats its key and carries its length and checksum, so a
 * file that lost its row, a row that lost its file, a truncated or
 * overwritten file all come out as a miss, never as bytes.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "cache.h"
#include "clock.h"
#include "diskcache.h"
#include "diskcache_priv.h"
#include "log.h"
#include "mountlock.h"
#include "names.h"
#include "safedir.h"

/* Bytes of bodies queued for the writer at most; more are dropped
 * (foreground) or wait (background filling). */
#define DISKCACHE_QUEUE_MAX (64u * 1024 * 1024)

/* Fills a key; false when the section is not one the cache keeps
 * (too long, or a byte outside [A-Za-z0-9.]). */
bool diskcache_key(struct diskcache_mkey *k, uint32_t folder,
		   uint32_t uidvalidity, uint32_t uid, const char *section)
{
	size_t i, n = strlen(section);

	memset(k, 0, sizeof(*k));
	if (n >= DISKCACHE_SECTION_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = section[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.'))
			return false;
	}
	k->folder = folder;
	k->uidvalidity = uidvalidity;
	k->uid = uid;
	memcpy(k->section, section, n);
	return true;
}

/* The cache directory of an account under $XDG_CACHE_HOME or ~/.cache
 * (diskcache.h), malloc'd. */
char *diskcache_default_dir(const char *user, const char *host,
			    const char *port)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char *acct = names_account_key(user, host, port), *dir = NULL;

	if (!acct)
		return NULL;
	if (xdg && *xdg == '/') {
		if (asprintf(&dir, "%s/mailfs/%s", xdg, acct) < 0)
			dir = NULL;
	} else if (home && *home == '/') {
		if (asprintf(&dir, "%s/.cache/mailfs/%s", home, acct) < 0)
			dir = NULL;
	}
	free(acct);
	return dir;
}

/* Adds a folder to the table (lock held or not yet shared). */
struct diskcache_folder *diskcache_folder_add(struct diskcache *dc,
					      const char *name, uint32_t id)
{
	struct diskcache_folder *f = calloc(1, sizeof(*f));

	if (!f || !(f->name = strdup(name))) {
		free(f);
		return NULL;
	}
	f->id = id;
	if (id >= dc->next_folder_id)
		dc->next_folder_id = id + 1;
	HASH_ADD_KEYPTR(hh, dc->folders, f->name, strlen(f->name), f);
	return f;
}

/* Frees the in-memory tables. */
void diskcache_free_tables(struct diskcache *dc)
{
	struct diskcache_body *b, *bt;
	struct diskcache_folder *f, *ft;
	struct diskcache_object *o, *ot;

	HASH_ITER(hh, dc->bodies, b, bt)
	{
		diskcache_body_drop(dc, b);
	}
	HASH_ITER(hh, dc->objects, o, ot)
	{
		diskcache_object_drop(dc, o->id);
	}
	HASH_ITER(hh, dc->folders, f, ft)
	{
		HASH_DEL(dc->folders, f);
		free(f->name);
		free(f->uids);
		free(f->sizes);
		free(f->oids);
		free(f);
	}
	dc->stats.bytes = 0;
	dc->next_folder_id = 1;
	dc->next_object_id = 1;
	dc->have_folder_list = false;
}

/* Opens the cache in dir (diskcache.h): the directory checked
 * (safedir) and locked (mountlock), the database checked and loaded
 * (made anew when damaged), the bodies directory made. */
struct diskcache *diskcache_open(const char *dir, uint64_t max_bytes,
				 int wait_ms, char *err, size_t errlen)
{
	struct diskcache *dc = calloc(1, sizeof(*dc));
	char why[256], bodies[4096];
	int dirfd = -1, bodiesfd;

	if (!dc || !(dc->dir = strdup(dir)) ||
	    asprintf(&dc->db_path, "%s/cache.db", dir) < 0) {
		snprintf(err, errlen, "out of memory");
		if (dc)
			free(dc->dir);
		free(dc);
		return NULL;
	}
	dc->lock_fd = -1;
	dc->max_bytes = max_bytes;
	dc->stats.limit = max_bytes;
	dc->next_folder_id = 1;
	dc->next_object_id = 1;
	pthread_mutex_init(&dc->lock, NULL);
	clock_cond_init(&dc->cond);
	clock_cond_init(&dc->done_cond);
	/* A directory (and its parents) no other user can have planted or
	 * change: then the paths used below stay the ones checked. */
	dirfd = safedir_open(dir, err, errlen);
	if (dirfd < 0)
		goto fail;
	dc->lock_fd = mountlock_take(dirfd, dir, "cache", wait_ms, err, errlen);
	if (dc->lock_fd < 0)
		goto fail;
	if (diskcache_db_load(dc, why, sizeof(why)) < 0) {
		log_warnx("disk cache %s is damaged (%s): starting a new one",
			  dir, why);
		diskcache_db_wipe(dc);
		if (diskcache_db_load(dc, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "cannot make the cache %s: %s",
				 dir, why);
			goto fail;
		}
	}
	snprintf(bodies, sizeof(bodies), "%s/bodies", dir);
	bodiesfd = safedir_openat(dirfd, "bodies", bodies, err, errlen);
	if (bodiesfd < 0)
		goto fail;
	close(bodiesfd);
	close(dirfd);
	dc->writing = true;
	dc->stats.writing = true;
	return dc;
fail:
	if (dirfd >= 0)
		close(dirfd);
	diskcache_close(dc);
	return NULL;
}

/* The cache's directory, borrowed (diskcache.h). */
const char *diskcache_dir(const struct diskcache *dc)
{
	return dc->dir;
}

/* True when an earlier mount saved a folder list (diskcache.h). */
bool diskcache_has_folders(struct diskcache *dc)
{
	bool r;

	pthread_mutex_lock(&dc->lock);
	r = dc->have_folder_list;
	pthread_mutex_unlock(&dc->lock);
	return r;
}

/* Orders folders by their place in the list. */
static int diskcache_pos_cmp(const void *a, const void *b)
{
	const struct diskcache_folder *x = *(struct diskcache_folder *const *)a;
	const struct diskcache_folder *y = *(struct diskcache_folder *const *)b;

	return (x->pos > y->pos) - (x->pos < y->pos);
}

/* The saved folder list, in its order (diskcache.h). */
int diskcache_get_folders(struct diskcache *dc, struct store_folder **f_r,
			  size_t *n_r)
{
	struct diskcache_folder *f, *ft, **v = NULL;
	struct store_folder *out = NULL;
	size_t n = 0, i;
	int rc = -ENOMEM;

	pthread_mutex_lock(&dc->lock);
	if (!dc->have_folder_list || dc->broken) {
		pthread_mutex_unlock(&dc->lock);
		return -ENOENT;
	}
	v = calloc(HASH_COUNT(dc->folders) + 1, sizeof(*v));
	if (!v)
		goto out;
	HASH_ITER(hh, dc->folders, f, ft)
	{
		if (f->in_list)
			v[n++] = f;
	}
	qsort(v, n, sizeof(*v), diskcache_pos_cmp);
	out = calloc(n + 1, sizeof(*out));
	if (!out)
		goto out;
	for (i = 0; i < n; i++) {
		out[i].name = strdup(v[i]->name);
		out[i].delim = v[i]->delim;
		out[i].attrs = v[i]->attrs;
		out[i].messages = STORE_COUNT_UNKNOWN;
		out[i].mtime = v[i]->mtime;
		if (!out[i].name) {
			store_folders_free(out, i);
			out = NULL;
			goto out;
		}
	}
	rc = 0;
out:
	pthread_mutex_unlock(&dc->lock);
	free(v);
	*f_r = out;
	*n_r = rc == 0 ? n : 0;
	return rc;
}

/* Folder of that name, made (with a new id) if missing; lock held. */
struct diskcache_folder *diskcache_folder(struct diskcache *dc,
					  const char *name, bool make)
{
	struct diskcache_folder *f;

	HASH_FIND(hh, dc->folders, name, strlen(name), f);
	if (f || !make)
		return f;
	return diskcache_folder_add(dc, name, dc->next_folder_id);
}

/* Queues a job (lock held) and wakes the writer. */
void diskcache_queue(struct diskcache *dc, struct diskcache_job *j)
{
	j->next = NULL;
	if (dc->tail)
		dc->tail->next = j;
	else
		dc->head = j;
	dc->tail = j;
	dc->queued_bytes += j->len;
	dc->seq_queued++;
	pthread_cond_signal(&dc->cond);
}

/* Frees a job and what it owns. */
void diskcache_job_free(struct diskcache_job *j)
{
	free(j->data);
	free(j->folder);
	store_listing_clear(&j->listing);
	store_folders_free(j->folders, j->n_folders);
	free(j);
}

/* Saves the folder list: the index now, the database through the
 * writer (diskcache.h). */
void diskcache_put_folders(struct diskcache *dc, const struct store_folder *fl,
			   size_t n)
{
	struct diskcache_job *j = calloc(1, sizeof(*j));
	struct diskcache_folder *f, *ft;
	size_t i;

	if (!j || !(j->folders = calloc(n + 1, sizeof(*j->folders))))
		goto fail;
	for (i = 0; i < n; i++) {
		j->folders[i].name = strdup(fl[i].name);
		j->folders[i].delim = fl[i].delim;
		j->folders[i].attrs = fl[i].attrs;
		j->n_folders = i + 1;
		if (!j->folders[i].name)
			goto fail;
	}
	j->kind = DISKCACHE_JOB_FOLDERS;
	pthread_mutex_lock(&dc->lock);
	HASH_ITER(hh, dc->folders, f, ft)
	{
		f->in_list = false;
	}
	for (i = 0; i < n; i++) {
		f = diskcache_folder(dc, fl[i].name, true);
		if (!f)
			continue;
		f->in_list = true;
		f->pos = (int)i;
		f->delim = fl[i].delim;
		f->attrs = fl[i].attrs;
	}
	dc->have_folder_list = true;
	if (dc->writing && !dc->broken)
		diskcache_queue(dc, j);
	else
		diskcache_job_free(j);
	pthread_mutex_unlock(&dc->lock);
	return;
fail:
	if (j)
		diskcache_job_free(j);
}

/* The state of a folder's saved listing, from memory (diskcache.h). */
bool diskcache_get_state(struct diskcache *dc, const char *folder,
			 struct store_listing *state_r)
{
	struct diskcache_folder *f;
	bool r = false;

	memset(state_r, 0, sizeof(*state_r));
	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	if (f && f->has_state && !dc->broken) {
		*state_r = f->state;
		state_r->msgs = NULL;
		state_r->n = 0;
		r = true;
	}
	pthread_mutex_unlock(&dc->lock);
	return r;
}

/* True when two listing states are the same (messages not compared). */
static bool diskcache_same_state(const struct store_listing *a,
				 const struct store_listing *b)
{
	return a->uidvalidity == b->uidvalidity && a->uidnext == b->uidnext &&
	       a->exists == b->exists && a->modseq == b->modseq;
}

/* Queues the write of folder f's mtime, with the state it is for when
 * with_state (lock held). Out of memory loses it: a later mount then
 * finds the folder changed (a later mtime), never an earlier one. */
static void diskcache_queue_mtime(struct diskcache *dc,
				  const struct diskcache_folder *f,
				  bool with_state)
{
	struct diskcache_job *j;

	if (!dc->writing || dc->broken)
		return;
	j = calloc(1, sizeof(*j));
	if (!j || !(j->folder = strdup(f->name))) {
		free(j);
		return;
	}
	j->kind = DISKCACHE_JOB_MTIME;
	j->key.folder = f->id;
	j->mtime = f->mtime;
	j->has_mstate = with_state;
	j->listing.uidvalidity = f->mstate.uidvalidity;
	j->listing.uidnext = f->mstate.uidnext;
	j->listing.exists = f->mstate.exists;
	j->listing.modseq = f->mstate.modseq;
	diskcache_queue(dc, j);
}

/* A folder's kept mtime, moved to now when its state is not the one
 * it was kept for (diskcache.h). */
time_t diskcache_mtime(struct diskcache *dc, const char *folder,
		       const struct store_listing *state, time_t now)
{
	struct diskcache_folder *f;
	time_t t = 0;

	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, state != NULL);
	if (f && state &&
	    !(f->has_mstate && f->mtime &&
	      diskcache_same_state(&f->mstate, state))) {
		if (now > f->mtime)
			f->mtime = now;
		memset(&f->mstate, 0, sizeof(f->mstate));
		f->mstate.uidvalidity = state->uidvalidity;
		f->mstate.uidnext = state->uidnext;
		f->mstate.exists = state->exists;
		f->mstate.modseq = state->modseq;
		f->has_mstate = true;
		diskcache_queue_mtime(dc, f, true);
	}
	if (f)
		t = f->mtime;
	pthread_mutex_unlock(&dc->lock);
	return t;
}

/* Keeps a later mtime for a folder (diskcache.h). */
void diskcache_keep_mtime(struct diskcache *dc, const char *folder,
			  time_t mtime)
{
	struct diskcache_folder *f;

	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, true);
	if (f && mtime > f->mtime) {
		f->mtime = mtime;
		diskcache_queue_mtime(dc, f, false);
	}
	pthread_mutex_unlock(&dc->lock);
}

/* True when a message of l has a content identity. */
static bool diskcache_has_oids(const struct store_listing *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!store_oid_none(&l->msgs[i].oid))
			return true;
	return false;
}

/* Replaces a folder's listed sizes and identities with those of l
 * (lock held); the identities only when one of them is not none. */
static void diskcache_set_sizes(struct diskcache_folder *f,
				const struct store_listing *l)
{
	uint32_t *uids = malloc((l->n + 1) * sizeof(*uids));
	uint64_t *sizes = malloc((l->n + 1) * sizeof(*sizes));
	bool with_oids = diskcache_has_oids(l);
	struct store_oid *oids =
		with_oids ? malloc((l->n + 1) * sizeof(*oids)) : NULL;
	size_t i;

	free(f->uids);
	free(f->sizes);
	free(f->oids);
	f->uids = NULL;
	f->sizes = NULL;
	f->oids = NULL;
	f->n = 0;
	if (!uids || !sizes || (with_oids && !oids)) {
		free(uids);
		free(sizes);
		free(oids);
		return;
	}
	for (i = 0; i < l->n; i++) {
		uids[i] = l->msgs[i].uid;
		sizes[i] = l->msgs[i].size;
		if (oids)
			oids[i] = l->msgs[i].oid;
	}
	f->uids = uids;
	f->sizes = sizes;
	f->oids = oids;
	f->n = l->n;
	f->state = *l;
	f->state.msgs = NULL;
	f->state.n = 0;
	f->has_state = true;
}

/* Where uid is or would go in a folder's listed UIDs (lock held). */
static size_t diskcache_listed_pos(const struct diskcache_folder *f,
				   uint32_t uid)
{
	size_t lo = 0, hi = f->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The listed size of a message (lock held), and its content identity
 * (oid_r may be NULL; none when it has none); false if not listed. */
bool diskcache_listed(const struct diskcache_folder *f, uint32_t uidvalidity,
		      uint32_t uid, uint64_t *size_r, struct store_oid *oid_r)
{
	size_t lo;

	if (!f->has_state || f->state.uidvalidity != uidvalidity)
		return false;
	lo = diskcache_listed_pos(f, uid);
	if (lo == f->n || f->uids[lo] != uid)
		return false;
	*size_r = f->sizes[lo];
	if (oid_r && f->oids)
		*oid_r = f->oids[lo];
	else if (oid_r)
		memset(oid_r, 0, sizeof(*oid_r));
	return true;
}

/* The listed size of a message (lock held); false if not listed. */
static bool diskcache_listed_size(const struct diskcache_folder *f,
				  uint32_t uidvalidity, uint32_t uid,
				  uint64_t *size_r)
{
	return diskcache_listed(f, uidvalidity, uid, size_r, NULL);
}

/* True when the listing's UIDs ascend (the size lookup needs it). */
static bool diskcache_sorted(const struct store_listing *l)
{
	size_t i;

	for (i = 1; i < l->n; i++)
		if (l->msgs[i].uid <= l->msgs[i - 1].uid)
			return false;
	return true;
}

/* Deep copy of a listing; false when out of memory. */
static bool diskcache_copy_listing(struct store_listing *to,
				   const struct store_listing *from)
{
	size_t i;

	*to = *from;
	to->msgs = calloc(from->n + 1, sizeof(*to->msgs));
	to->n = 0;
	if (!to->msgs)
		return false;
	for (i = 0; i < from->n; i++) {
		to->msgs[i] = from->msgs[i];
		to->msgs[i].name = NULL;
		to->msgs[i].ref = NULL;
		to->msgs[i].flags =
			strdup(from->msgs[i].flags ? from->msgs[i].flags : "");
		to->n = i + 1;
		if (!to->msgs[i].flags)
			return false;
	}
	return true;
}

/* Saves a folder's listing: its sizes and identities in the index
 * now, a copy through the writer (diskcache.h). */
void diskcache_put_listing(struct diskcache *dc, const char *folder,
			   const struct store_listing *l)
{
	struct diskcache_job *j = calloc(1, sizeof(*j));
	struct diskcache_folder *f;

	if (!j || !(j->folder = strdup(folder)) || !diskcache_sorted(l) ||
	    !diskcache_copy_listing(&j->listing, l)) {
		if (j)
			diskcache_job_free(j);
		return;
	}
	j->kind = DISKCACHE_JOB_LISTING;
	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, true);
	if (f) {
		diskcache_set_sizes(f, l);
		f->ids = true;
		j->key.folder = f->id;
	}
	if (f && dc->writing && !dc->broken)
		diskcache_queue(dc, j);
	else
		diskcache_job_free(j);
	pthread_mutex_unlock(&dc->lock);
}

/* False when a folder's saved listing predates content identities
 * (diskcache.h). */
bool diskcache_listing_has_ids(struct diskcache *dc, const char *folder)
{
	struct diskcache_folder *f;
	bool r;

	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	r = !f || !f->has_state || f->ids;
	pthread_mutex_unlock(&dc->lock);
	return r;
}

/* A folder's saved listing, read with no lock held on a connection of
 * its own (diskcache.h); its sizes then known to the index. */
int diskcache_get_listing(struct diskcache *dc, const char *folder,
			  struct store_listing *out)
{
	struct diskcache_folder *f;
	uint32_t id = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	if (f && f->has_state && !dc->broken)
		id = f->id;
	pthread_mutex_unlock(&dc->lock);
	if (!id)
		return -ENOENT;
	rc = diskcache_db_read_listing(dc, id, out);
	if (rc < 0) {
		if (rc == -EIO)
			log_warnx("disk cache: the saved listing of %s is "
				  "damaged: listing it from the server",
				  folder);
		store_listing_clear(out);
		memset(out, 0, sizeof(*out));
		return rc;
	}
	/* The listed sizes, unless a newer listing came meanwhile. */
	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	if (f && f->id == id && f->state.uidvalidity == out->uidvalidity &&
	    f->state.modseq == out->modseq &&
	    f->state.uidnext == out->uidnext &&
	    f->state.exists == out->exists && !f->uids)
		diskcache_set_sizes(f, out);
	pthread_mutex_unlock(&dc->lock);
	return 0;
}

/* Reads a range of a message's section from disk (diskcache.h): the
 * pieces are found under the lock, read and checked without it. */
int diskcache_read(struct diskcache *dc, const char *folder,
		   uint32_t uidvalidity, uint32_t uid, const char *section,
		   uint64_t off, uint64_t len, char **data_r, size_t *len_r)
{
	struct diskcache_folder *f;
	struct diskcache_body *b = NULL;
	struct diskcache_mkey k;
	uint64_t end = 0, total = 0, c;
	bool known = false;
	char *buf, *piece = NULL;

	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	if (f && !dc->broken)
		b = diskcache_body_of_msg(dc, f, uidvalidity, uid, section, &k);
	if (!b || len > STORE_MAX_PIECE + CACHE_CHUNK ||
	    !diskcache_body_plan(b, off, len, &end)) {
		dc->stats.misses++;
		pthread_mutex_unlock(&dc->lock);
		return -ENOENT;
	}
	known = b->total_known;
	total = b->total;
	b->used = ++dc->tick;
	b->used_dirty = true;
	diskcache_body_lru_unlink(dc, b);
	diskcache_body_lru_push(dc, b);
	pthread_mutex_unlock(&dc->lock);

	buf = malloc(end - off + 1);
	if (!buf)
		goto fail;
	for (c = off / CACHE_CHUNK; c * CACHE_CHUNK < end; c++) {
		struct diskcache_body tmp = {.total = total,
					     .total_known = known};
		size_t clen = diskcache_body_chunk_len(&tmp, c);
		uint64_t from = c * CACHE_CHUNK, a, z;
		/* A chunk wholly inside the range is read in place; one cut
		 * by it goes through a piece of its own. */
		bool whole = from >= off && from + clen <= end;
		const char *why;

		if (!whole && !piece && !(piece = malloc(CACHE_CHUNK)))
			goto fail;
		why = diskcache_body_read_chunk(
			dc, &k, (uint32_t)c, whole ? buf + (from - off) : piece,
			clen);
		if (why) {
			diskcache_body_damaged(dc, &k, why);
			goto fail;
		}
		a = from < off ? off : from;
		z = from + clen < end ? from + clen : end;
		if (!whole && z > a)
			memcpy(buf + (a - off), piece + (a - from), z - a);
	}
	free(piece);
	pthread_mutex_lock(&dc->lock);
	dc->stats.hits++;
	f = diskcache_folder(dc, folder, false);
	if (f)
		diskcache_object_promote(dc, f, uidvalidity, uid, section, &k);
	pthread_mutex_unlock(&dc->lock);
	*data_r = buf;
	*len_r = (size_t)(end - off);
	return 0;
fail:
	free(buf);
	free(piece);
	pthread_mutex_lock(&dc->lock);
	dc->stats.misses++;
	pthread_mutex_unlock(&dc->lock);
	return -ENOENT;
}

/* True when all of a message's section is on disk (diskcache.h). */
bool diskcache_has_all(struct diskcache *dc, const char *folder,
		       uint32_t uidvalidity, uint32_t uid, const char *section)
{
	struct diskcache_folder *f;
	struct diskcache_body *b = NULL;
	struct diskcache_mkey k;
	uint64_t end;
	bool r = false;

	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	if (f)
		b = diskcache_body_of_msg(dc, f, uidvalidity, uid, section, &k);
	if (b && b->total_known)
		r = diskcache_body_plan(b, 0, b->total + 1, &end);
	pthread_mutex_unlock(&dc->lock);
	return r;
}

/* Waits for room in the queue (lock held); false when there is none. */
static bool diskcache_room(struct diskcache *dc, size_t len, bool wait, int ms)
{
	struct timespec ts = clock_deadline(ms);

	while (dc->queued_bytes + len > DISKCACHE_QUEUE_MAX && dc->writing &&
	       !dc->stop) {
		if (!wait || pthread_cond_timedwait(&dc->done_cond, &dc->lock,
						    &ts) == ETIMEDOUT)
			return false;
	}
	return dc->writing && !dc->stop && !dc->broken;
}

/* Queues one chunk of a body (lock held). */
static void diskcache_queue_chunk(struct diskcache *dc,
				  const struct diskcache_mkey *k,
				  uint32_t chunk, const char *data, size_t len,
				  bool eof, uint64_t total,
				  const struct diskcache_object *o)
{
	struct diskcache_job *j = calloc(1, sizeof(*j));

	if (!j || !(j->data = malloc(len ? len : 1))) {
		free(j);
		return;
	}
	memcpy(j->data, data, len);
	j->kind = DISKCACHE_JOB_CHUNK;
	j->key = *k;
	j->chunk = chunk;
	j->len = len;
	j->eof = eof;
	j->total = total;
	if (o)
		j->oid = o->oid;
	diskcache_queue(dc, j);
}

/* Queues the whole pieces of fetched bytes for the writer
 * (diskcache.h), under the message's object when it has one. */
void diskcache_store(struct diskcache *dc, const char *folder,
		     uint32_t uidvalidity, uint32_t uid, const char *section,
		     uint64_t off, const char *data, size_t len, bool eof,
		     bool wait, int ms)
{
	struct diskcache_folder *f;
	struct diskcache_object *o = NULL;
	struct diskcache_body *b;
	struct diskcache_mkey k;
	uint64_t size, c, end = off + len;

	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	if (!f || !diskcache_key(&k, f->id, uidvalidity, uid, section) ||
	    !diskcache_listed_size(f, uidvalidity, uid, &size) ||
	    !dc->max_bytes)
		goto out;
	/* A message with a content identity is kept once for all of its
	 * copies, under its object (of the same size: see
	 * diskcache_object_of_msg()). */
	o = diskcache_object_of_msg(dc, f, uidvalidity, uid, section, true);
	if (o)
		diskcache_object_key(&k, o);
	/* A body that disagrees with its listed size is never kept. */
	if ((eof && end != size) || end > size) {
		diskcache_body_forget(dc, &k);
		goto out;
	}
	if (!diskcache_room(dc, len, wait, ms))
		goto out;
	b = diskcache_body_get(dc, &k, false);
	for (c = (off + CACHE_CHUNK - 1) / CACHE_CHUNK;
	     c * CACHE_CHUNK < end && c <= UINT32_MAX; c++) {
		uint64_t from = c * CACHE_CHUNK;
		uint64_t clen =
			size - from < CACHE_CHUNK ? size - from : CACHE_CHUNK;
		bool last = from + clen == size;

		if (from + clen > end || (last && clen < CACHE_CHUNK && !eof))
			break;
		if (b && diskcache_body_has(b, (uint32_t)c))
			continue;
		diskcache_queue_chunk(dc, &k, (uint32_t)c, data + (from - off),
				      (size_t)clen, last && eof, size, o);
	}
out:
	pthread_mutex_unlock(&dc->lock);
}

/* Adds a message to a folder's listed sizes and identities (lock
 * held): one moved there through the mount, which its saved listing
 * does not have yet. Out of memory leaves it out (a miss, never wrong
 * bytes). */
static void diskcache_listed_add(struct diskcache_folder *f,
				 uint32_t uidvalidity, uint32_t uid,
				 uint64_t size, const struct store_oid *oid)
{
	uint32_t *uids;
	uint64_t *sizes;
	struct store_oid *oids = NULL;
	bool with_oids = f->oids || !store_oid_none(oid);
	size_t at;

	if (!f->has_state || f->state.uidvalidity != uidvalidity || !f->uids ||
	    !f->sizes)
		return;
	at = diskcache_listed_pos(f, uid);
	if (at < f->n && f->uids[at] == uid)
		return;
	uids = realloc(f->uids, (f->n + 2) * sizeof(*uids));
	if (uids)
		f->uids = uids;
	sizes = realloc(f->sizes, (f->n + 2) * sizeof(*sizes));
	if (sizes)
		f->sizes = sizes;
	/* The first identity of a listing that had none makes its side
	 * array (all none until then). */
	if (with_oids)
		oids = f->oids ? realloc(f->oids, (f->n + 2) * sizeof(*oids))
			       : calloc(f->n + 2, sizeof(*oids));
	if (oids)
		f->oids = oids;
	if (!uids || !sizes || (with_oids && !oids))
		return;
	memmove(uids + at + 1, uids + at, (f->n - at) * sizeof(*uids));
	memmove(sizes + at + 1, sizes + at, (f->n - at) * sizeof(*sizes));
	uids[at] = uid;
	sizes[at] = size;
	if (oids) {
		memmove(oids + at + 1, oids + at, (f->n - at) * sizeof(*oids));
		oids[at] = *oid;
	}
	f->n++;
}

/* Queues the copy of a moved or copied message's pieces to its new
 * key (diskcache.h). */
void diskcache_rekey(struct diskcache *dc, const char *folder,
		     uint32_t uidvalidity, uint32_t uid, const char *target,
		     uint32_t new_uidvalidity, uint32_t new_uid, bool move)
{
	struct diskcache_job *j = calloc(1, sizeof(*j));
	struct diskcache_folder *f, *t;
	struct store_oid oid;
	uint64_t size;

	if (!j || !(j->folder = strdup(target))) {
		free(j);
		return;
	}
	j->kind = DISKCACHE_JOB_REKEY;
	j->move = move;
	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	t = diskcache_folder(dc, target, true);
	if (!f || !t || !uidvalidity || !uid || !new_uidvalidity || !new_uid ||
	    !dc->max_bytes || !dc->writing || dc->broken ||
	    !diskcache_key(&j->key, f->id, uidvalidity, uid, DISKCACHE_WHOLE) ||
	    !diskcache_key(&j->to, t->id, new_uidvalidity, new_uid,
			   DISKCACHE_WHOLE) ||
	    diskcache_body_same_msg(&j->key, &j->to)) {
		pthread_mutex_unlock(&dc->lock);
		diskcache_job_free(j);
		return;
	}
	if (diskcache_listed(f, uidvalidity, uid, &size, &oid)) {
		j->total = size;
		/* One with a content identity is kept under it: the new
		 * UID has it too (RFC 8474: a move or copy keeps the
		 * EMAILID) until the target's next listing says. */
		if (!store_oid_none(&oid))
			diskcache_listed_add(t, new_uidvalidity, new_uid, size,
					     &oid);
	}
	/* Until the writer has copied the pieces, the new key has none. */
	diskcache_body_drop_msg(dc, &j->to);
	diskcache_queue(dc, j);
	pthread_mutex_unlock(&dc->lock);
}

/* The cache's counters (diskcache.h). */
void diskcache_get_stats(struct diskcache *dc, struct diskcache_stats *st_r)
{
	pthread_mutex_lock(&dc->lock);
	*st_r = dc->stats;
	st_r->writing = dc->writing && !dc->broken;
	pthread_mutex_unlock(&dc->lock);
}

/* Opens the writer's connection and starts the writer thread
 * (diskcache.h); without a database, caching stops for the mount. */
int diskcache_start(struct diskcache *dc)
{
	char why[256];
	int rc;

	dc->db = diskcache_db_open(dc, why, sizeof(why));
	if (!dc->db) {
		log_warnx("disk cache %s: %s: caching stops for this mount",
			  dc->dir, why);
		dc->writing = false;
		return 0;
	}
	dc->seq_queued++; /* the writer's sweep, for diskcache_flush() */
	rc = pthread_create(&dc->thread, NULL, diskcache_writer_main, dc);
	if (rc) {
		sqlite3_close(dc->db);
		dc->db = NULL;
		return -rc;
	}
	pthread_setname_np(dc->thread, "mailfs-dcwrite");
	dc->running = true;
	return 0;
}

/* Waits (at most ms) for the writer to do what was queued before the
 * call (diskcache.h). */
bool diskcache_flush(struct diskcache *dc, int ms)
{
	struct timespec ts = clock_deadline(ms);
	bool done;
	uint64_t seq;

	pthread_mutex_lock(&dc->lock);
	seq = dc->seq_queued;
	while (dc->running && dc->seq_done < seq &&
	       pthread_cond_timedwait(&dc->done_cond, &dc->lock, &ts) !=
		       ETIMEDOUT)
		;
	done = !dc->running || dc->seq_done >= seq;
	pthread_mutex_unlock(&dc->lock);
	return done;
}

/* Stops the writer after what is queued, then frees everything
 * (diskcache.h). */
void diskcache_close(struct diskcache *dc)
{
	struct diskcache_job *j;

	if (!dc)
		return;
	if (dc->running) {
		pthread_mutex_lock(&dc->lock);
		dc->stop = true;
		pthread_cond_signal(&dc->cond);
		pthread_mutex_unlock(&dc->lock);
		pthread_join(dc->thread, NULL);
	}
	sqlite3_close(dc->db);
	while ((j = dc->head)) {
		dc->head = j->next;
		diskcache_job_free(j);
	}
	diskcache_free_tables(dc);
	mountlock_release(dc->lock_fd);
	pthread_mutex_destroy(&dc->lock);
	pthread_cond_destroy(&dc->cond);
	pthread_cond_destroy(&dc->done_cond);
	free(dc->dir);
	free(dc->db_path);
	free(dc);
}
