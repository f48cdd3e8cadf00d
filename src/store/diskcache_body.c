// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * diskcache_body: the disk cache's bodies (diskcache.h,
 * diskcache_priv.h): the body files (header, checksum, written under a
 * temporary name and renamed), their index in memory (which chunks of
 * which section are on disk) in LRU order, and what a read of a
 * message finds there.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uthash.h>

#include "cache.h"
#include "diskcache.h"
#include "diskcache_priv.h"
#include "log.h"

#define DISKCACHE_MAGIC "MAILFSB1"

/* The header in front of every body file. */
struct diskcache_hdr {
	char magic[8];
	uint32_t folder, uidvalidity, uid, chunk;
	uint32_t len, eof;
	uint64_t total; /* the message's size when eof, else 0 */
	uint64_t sum; /* diskcache_body_sum() of the bytes */
	char section[DISKCACHE_SECTION_MAX];
};

/* A 64-bit checksum of a body piece (FNV-1a, 8 bytes a step over four
 * lanes, so that a big piece costs little): any changed byte shows. */
static uint64_t diskcache_body_sum(const char *data, size_t len)
{
	uint64_t h[4] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull,
			 0x9ce484222325cbf2ull, 0x2325cbf29ce48422ull};
	size_t i = 0;
	int k;

	for (; i + 32 <= len; i += 32) {
		for (k = 0; k < 4; k++) {
			uint64_t w;

			memcpy(&w, data + i + 8 * k, 8);
			h[k] = (h[k] ^ w) * 0x100000001b3ull;
			h[k] ^= h[k] >> 29;
		}
	}
	for (; i < len; i++)
		h[i & 3] =
			(h[i & 3] ^ (unsigned char)data[i]) * 0x100000001b3ull;
	return (h[0] * 31 + h[1]) * 31 + (h[2] ^ (h[3] >> 7)) + len;
}

/* The path of a body file (relative to the cache directory). */
void diskcache_body_path(const struct diskcache *dc,
			 const struct diskcache_mkey *k, uint32_t chunk,
			 char *buf, size_t len)
{
	snprintf(buf, len, "%s/bodies/%u-%u/%u-%s%s-%u", dc->dir, k->folder,
		 k->uidvalidity, k->uid, k->section[0] ? "s" : "m", k->section,
		 chunk);
}

/* Puts a body at the young end of the LRU list (lock held). */
void diskcache_body_lru_push(struct diskcache *dc, struct diskcache_body *b)
{
	b->older = dc->newest;
	b->newer = NULL;
	if (dc->newest)
		dc->newest->newer = b;
	dc->newest = b;
	if (!dc->oldest)
		dc->oldest = b;
}

/* Takes a body out of the LRU list (lock held). */
void diskcache_body_lru_unlink(struct diskcache *dc, struct diskcache_body *b)
{
	if (b->newer)
		b->newer->older = b->older;
	else
		dc->newest = b->older;
	if (b->older)
		b->older->newer = b->newer;
	else
		dc->oldest = b->newer;
	b->newer = b->older = NULL;
}

/* Finds or makes the index entry of a body (lock held). */
struct diskcache_body *diskcache_body_get(struct diskcache *dc,
					  const struct diskcache_mkey *k,
					  bool make)
{
	struct diskcache_body *b;

	HASH_FIND(hh, dc->bodies, k, sizeof(*k), b);
	if (b || !make)
		return b;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->key = *k;
	HASH_ADD(hh, dc->bodies, key, sizeof(b->key), b);
	diskcache_body_lru_push(dc, b);
	return b;
}

/* Marks chunk present in b (lock held). False when out of memory. */
bool diskcache_body_set(struct diskcache_body *b, uint32_t chunk)
{
	if (chunk >= b->nchunks) {
		uint32_t n = chunk + 8;
		uint8_t *h = realloc(b->have, (n + 7) / 8);

		if (!h)
			return false;
		memset(h + (b->nchunks + 7) / 8, 0,
		       (n + 7) / 8 - (b->nchunks + 7) / 8);
		b->have = h;
		b->nchunks = n;
	}
	b->have[chunk / 8] |= (uint8_t)(1u << (chunk % 8));
	return true;
}

/* True when chunk of b is on disk (lock held). */
bool diskcache_body_has(const struct diskcache_body *b, uint32_t chunk)
{
	return chunk < b->nchunks && (b->have[chunk / 8] & (1u << (chunk % 8)));
}

/* Removes an index entry (lock held); its files stay until a forget.
 * An object's body takes the object with it: a store of that identity
 * later makes a new one, under a new id. */
void diskcache_body_drop(struct diskcache *dc, struct diskcache_body *b)
{
	if (b->key.folder == 0)
		diskcache_object_drop(dc, b->key.uid);
	HASH_DEL(dc->bodies, b);
	diskcache_body_lru_unlink(dc, b);
	dc->stats.bytes -= b->bytes;
	free(b->have);
	free(b);
}

/* True when b is a section of the message of k (k's section aside). */
bool diskcache_body_same_msg(const struct diskcache_mkey *b,
			     const struct diskcache_mkey *k)
{
	return b->folder == k->folder && b->uidvalidity == k->uidvalidity &&
	       b->uid == k->uid;
}

/* Drops every section of the message of k from the index (lock held). */
void diskcache_body_drop_msg(struct diskcache *dc,
			     const struct diskcache_mkey *k)
{
	struct diskcache_body *b, *bt;

	HASH_ITER(hh, dc->bodies, b, bt)
	{
		if (diskcache_body_same_msg(&b->key, k))
			diskcache_body_drop(dc, b);
	}
}

/* Notes that a body file failed a check: the whole section is
 * forgotten (index now, files by the writer). Lock not held. */
void diskcache_body_damaged(struct diskcache *dc,
			    const struct diskcache_mkey *k, const char *why)
{
	struct diskcache_job *j = calloc(1, sizeof(*j));
	struct diskcache_body *b;

	log_warnx("disk cache: a body piece of UID %u is %s: discarded, "
		  "fetched again",
		  k->uid, why);
	pthread_mutex_lock(&dc->lock);
	dc->stats.dropped++;
	b = diskcache_body_get(dc, k, false);
	if (b)
		diskcache_body_drop(dc, b);
	if (j) {
		j->kind = DISKCACHE_JOB_FORGET;
		j->key = *k;
		diskcache_queue(dc, j);
	}
	pthread_mutex_unlock(&dc->lock);
}

/*
 * Reads one body file into out (len bytes expected), checking its
 * header against key, chunk and length, and its checksum. 0 or a
 * reason for the log.
 */
const char *diskcache_body_read_chunk(struct diskcache *dc,
				      const struct diskcache_mkey *k,
				      uint32_t chunk, char *out, size_t len)
{
	struct diskcache_hdr h;
	char path[4096], extra;
	/* One read: the header, the bytes, and one more to tell a file
	 * longer than its header says. */
	struct iovec iov[3] = {
		{&h, sizeof(h)}, {out, len}, {&extra, sizeof(extra)}};
	ssize_t r;
	int fd;

	diskcache_body_path(dc, k, chunk, path, sizeof(path));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return "missing";
	r = preadv(fd, iov, 3, 0);
	close(fd);
	if (r < 0)
		return "unreadable";
	if ((uint64_t)r != sizeof(h) + (uint64_t)len)
		return "of the wrong size";
	if (memcmp(h.magic, DISKCACHE_MAGIC, 8) != 0 || h.folder != k->folder ||
	    h.uidvalidity != k->uidvalidity || h.uid != k->uid ||
	    h.chunk != chunk || h.len != len ||
	    memcmp(h.section, k->section, sizeof(h.section)) != 0)
		return "not what its name says";
	if (h.sum != diskcache_body_sum(out, len))
		return "damaged (checksum)";
	return NULL;
}

/* Finds which chunks a read needs, with the lock held: false when one
 * is missing. *end_r gets the end of the bytes to return. */
bool diskcache_body_plan(struct diskcache_body *b, uint64_t off, uint64_t len,
			 uint64_t *end_r)
{
	uint64_t end = off + len, c;

	if (b->total_known && end > b->total)
		end = b->total;
	if (end < off)
		end = off;
	for (c = off / CACHE_CHUNK; c * CACHE_CHUNK < end; c++)
		if (c > UINT32_MAX || !diskcache_body_has(b, (uint32_t)c))
			return false;
	/* Without a known end, the bytes must all be there. */
	if (!b->total_known && end < off + len)
		return false;
	*end_r = end;
	return true;
}

/* The length of a chunk on disk. */
size_t diskcache_body_chunk_len(const struct diskcache_body *b, uint64_t c)
{
	uint64_t start = c * CACHE_CHUNK;

	if (b->total_known && b->total - start < CACHE_CHUNK)
		return (size_t)(b->total - start);
	return CACHE_CHUNK;
}

/*
 * What is on disk of a message's section (lock held), its key in *k:
 * the body of the message's object (diskcache_object_of_msg()) when there
 * is one and it is of the object's size (the message's listed
 * RFC822.SIZE; one that is not is dropped, never served), else the
 * body under the message's own key (kept before its listing gave the
 * identity, or when it has none). NULL when neither is there.
 */
struct diskcache_body *diskcache_body_of_msg(struct diskcache *dc,
					     const struct diskcache_folder *f,
					     uint32_t uidvalidity, uint32_t uid,
					     const char *section,
					     struct diskcache_mkey *k)
{
	struct diskcache_object *o = diskcache_object_of_msg(
		dc, f, uidvalidity, uid, section, false);
	struct diskcache_body *b;

	if (o) {
		diskcache_object_key(k, o);
		b = diskcache_body_get(dc, k, false);
		if (b && b->total_known && b->total != o->size) {
			diskcache_body_forget(dc, k);
			b = NULL;
		}
		if (b)
			return b;
	}
	if (!diskcache_key(k, f->id, uidvalidity, uid, section))
		return NULL;
	return diskcache_body_get(dc, k, false);
}

/* Drops what is kept of a body (lock held): index now, files later. */
void diskcache_body_forget(struct diskcache *dc, const struct diskcache_mkey *k)
{
	struct diskcache_body *b = diskcache_body_get(dc, k, false);
	struct diskcache_job *j;

	if (!b)
		return;
	diskcache_body_drop(dc, b);
	dc->stats.dropped++;
	j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->kind = DISKCACHE_JOB_FORGET;
	j->key = *k;
	diskcache_queue(dc, j);
}

/*
 * Writes one body chunk file and its row; then marks it present in the
 * index. False when it was not written. The file is written in place,
 * under its own name: no reader opens it before the index says it is
 * there, which is after it is whole, and one a crash cut short has no
 * committed row (the row follows the file in the batch's transaction),
 * so the start's sweep removes it; its header and checksum tell a
 * damaged one anyway. A chunk the index has already is not written
 * again (two fetches of it queued), so no reader sees it rewritten.
 */
bool diskcache_body_write(struct diskcache *dc,
			  const struct diskcache_mkey *key, uint32_t chunk,
			  const char *data, size_t len, bool eof,
			  uint64_t total)
{
	struct diskcache_hdr h = {0};
	char path[4096], dir[4096];
	sqlite3_int64 v[8];
	struct diskcache_body *b;
	bool had;
	int fd, rc;

	pthread_mutex_lock(&dc->lock);
	b = diskcache_body_get(dc, key, false);
	had = b && diskcache_body_has(b, chunk);
	pthread_mutex_unlock(&dc->lock);
	if (had)
		return true;
	diskcache_body_path(dc, key, chunk, path, sizeof(path));
	memcpy(h.magic, DISKCACHE_MAGIC, 8);
	h.folder = key->folder;
	h.uidvalidity = key->uidvalidity;
	h.uid = key->uid;
	h.chunk = chunk;
	h.len = (uint32_t)len;
	h.eof = eof;
	h.total = eof ? total : 0;
	h.sum = diskcache_body_sum(data, len);
	memcpy(h.section, key->section, sizeof(h.section));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0 && errno == ENOENT) {
		/* The folder's first body: its directory. */
		snprintf(dir, sizeof(dir), "%s/bodies/%u-%u", dc->dir,
			 key->folder, key->uidvalidity);
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			goto io_failed;
		fd = open(path,
			  O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			  0600);
	}
	if (fd < 0)
		goto io_failed;
	/* A short write sets no errno: it means the disk is full. */
	errno = ENOSPC;
	if (writev(fd, (struct iovec[]){{&h, sizeof(h)}, {(void *)data, len}},
		   2) != (ssize_t)(sizeof(h) + len)) {
		int e = errno;

		close(fd);
		unlink(path);
		errno = e;
		goto io_failed;
	}
	if (close(fd) < 0) {
		int e = errno;

		unlink(path);
		errno = e;
		goto io_failed;
	}
	v[0] = key->folder;
	v[1] = key->uidvalidity;
	v[2] = key->uid;
	v[3] = chunk;
	v[4] = (sqlite3_int64)len;
	v[5] = eof ? (sqlite3_int64)total : 0;
	pthread_mutex_lock(&dc->lock);
	v[6] = ++dc->tick;
	pthread_mutex_unlock(&dc->lock);
	rc = diskcache_db_run(
		dc->db,
		"INSERT OR REPLACE INTO bodies(folder, uidvalidity,"
		" uid, chunk, len, total, used, section)"
		" VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
		7, v, key->section);
	if (rc != SQLITE_OK) {
		diskcache_writer_failed(dc, rc);
		return false;
	}
	pthread_mutex_lock(&dc->lock);
	b = diskcache_body_get(dc, key, true);
	if (b && !diskcache_body_has(b, chunk) &&
	    diskcache_body_set(b, chunk)) {
		b->bytes += len;
		dc->stats.bytes += len;
		b->used = v[6];
		if (eof) {
			b->total = total;
			b->total_known = true;
		}
	}
	pthread_mutex_unlock(&dc->lock);
	return true;
io_failed:
	if (errno == ENOSPC || errno == EDQUOT)
		diskcache_writer_stop(dc, "the disk is full", false);
	else
		log_warnx("disk cache: cannot write %s: %s", path,
			  strerror(errno));
	return false;
}
