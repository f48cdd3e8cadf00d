// SPDX-License-Identifier: GPL-2.0-or-later
/* cache: chunked LRU cache of message bodies; see cache.h. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "cache.h"

/* Memory a chunk costs besides its bytes, counted against the limit so
 * that many tiny messages cannot exceed it through bookkeeping. */
#define CACHE_OVERHEAD 128

struct cache_id {
	struct cache_key msg;
	uint64_t chunk; /* offset / CACHE_CHUNK */
};

struct cache_chunk {
	struct cache_id id; /* hash key */
	char *data; /* owned */
	size_t len;
	bool eof; /* the message ends at the end of this chunk */
	struct cache_chunk *lru_prev, *lru_next; /* next = older */
	UT_hash_handle hh;
};

struct cache {
	pthread_mutex_t lock;
	uint64_t max_bytes;
	uint64_t used; /* bytes + overhead of every chunk */
	struct cache_chunk *table; /* uthash */
	struct cache_chunk *newest, *oldest;
	struct cache_stats stats;
};

struct cache *cache_new(uint64_t max_bytes)
{
	struct cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->max_bytes = max_bytes;
	return c;
}

/* Unlinks a chunk from the LRU list. */
static void cache_lru_unlink(struct cache *c, struct cache_chunk *ch)
{
	if (ch->lru_prev)
		ch->lru_prev->lru_next = ch->lru_next;
	else
		c->newest = ch->lru_next;
	if (ch->lru_next)
		ch->lru_next->lru_prev = ch->lru_prev;
	else
		c->oldest = ch->lru_prev;
	ch->lru_prev = ch->lru_next = NULL;
}

/* Puts a chunk at the young end of the LRU list. */
static void cache_lru_push(struct cache *c, struct cache_chunk *ch)
{
	ch->lru_prev = NULL;
	ch->lru_next = c->newest;
	if (c->newest)
		c->newest->lru_prev = ch;
	c->newest = ch;
	if (!c->oldest)
		c->oldest = ch;
}

/* Removes and frees a chunk; the lock is held. */
static void cache_drop(struct cache *c, struct cache_chunk *ch)
{
	HASH_DEL(c->table, ch);
	cache_lru_unlink(c, ch);
	c->used -= ch->len + CACHE_OVERHEAD;
	c->stats.bytes -= ch->len;
	c->stats.chunks--;
	free(ch->data);
	free(ch);
}

void cache_free(struct cache *c)
{
	if (!c)
		return;
	while (c->table)
		cache_drop(c, c->table);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* What a message's chunks are kept under: its identity alone when it
 * has one, else (folder, UIDVALIDITY, UID); zeroed around, since the
 * key is hashed and compared with its padding. */
static void cache_msg_id(const struct cache_key *k, struct cache_key *id)
{
	memset(id, 0, sizeof(*id));
	if (!store_oid_none(&k->oid)) {
		id->oid = k->oid;
		return;
	}
	id->folder = k->folder;
	id->uidvalidity = k->uidvalidity;
	id->uid = k->uid;
}

static struct cache_chunk *cache_find(struct cache *c,
				      const struct cache_key *k, uint64_t chunk)
{
	struct cache_id id;
	struct cache_chunk *ch;

	memset(&id, 0, sizeof(id)); /* the key is hashed with its padding */
	cache_msg_id(k, &id.msg);
	id.chunk = chunk;
	HASH_FIND(hh, c->table, &id, sizeof(id), ch);
	return ch;
}

size_t cache_read(struct cache *c, const struct cache_key *k, uint64_t off,
		  char *buf, size_t len, bool *eof_r)
{
	size_t done = 0;

	*eof_r = false;
	pthread_mutex_lock(&c->lock);
	while (done < len) {
		uint64_t pos = off + done;
		struct cache_chunk *ch = cache_find(c, k, pos / CACHE_CHUNK);
		size_t in = pos % CACHE_CHUNK, n;

		if (!ch)
			break;
		cache_lru_unlink(c, ch);
		cache_lru_push(c, ch);
		if (in >= ch->len) {
			*eof_r = ch->eof;
			break;
		}
		n = ch->len - in;
		if (n > len - done)
			n = len - done;
		memcpy(buf + done, ch->data + in, n);
		done += n;
		if (ch->eof && in + n == ch->len) {
			*eof_r = true;
			break;
		}
	}
	if (done == len || *eof_r)
		c->stats.hits++;
	else
		c->stats.misses++;
	pthread_mutex_unlock(&c->lock);
	return done;
}

/* Drops the oldest chunks until the cache is within its limit. */
static void cache_evict(struct cache *c)
{
	while (c->used > c->max_bytes && c->oldest) {
		cache_drop(c, c->oldest);
		c->stats.evictions++;
	}
}

/* Adds or replaces one chunk; the lock is held. Failing to allocate only
 * means the chunk is not cached. */
static void cache_put(struct cache *c, const struct cache_key *k,
		      uint64_t chunk, const char *data, size_t len, bool eof)
{
	struct cache_chunk *ch = cache_find(c, k, chunk);

	if (ch)
		cache_drop(c, ch);
	if (len + CACHE_OVERHEAD > c->max_bytes)
		return;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return;
	ch->data = malloc(len ? len : 1);
	if (!ch->data) {
		free(ch);
		return;
	}
	memcpy(ch->data, data, len);
	cache_msg_id(k, &ch->id.msg);
	ch->id.chunk = chunk;
	ch->len = len;
	ch->eof = eof;
	HASH_ADD(hh, c->table, id, sizeof(ch->id), ch);
	cache_lru_push(c, ch);
	c->used += len + CACHE_OVERHEAD;
	c->stats.bytes += len;
	c->stats.chunks++;
	cache_evict(c);
}

/* True when a chunk of the message at chunk offset `at` holds at least
 * `len` bytes or is whole (CACHE_CHUNK long or the message's last). The
 * lock is held. */
static bool cache_holds_locked(struct cache *c, const struct cache_key *k,
			       uint64_t at, size_t len)
{
	struct cache_chunk *ch = cache_find(c, k, at / CACHE_CHUNK);

	return ch && (ch->len >= len || ch->eof);
}

void cache_store(struct cache *c, const struct cache_key *k, uint64_t off,
		 const char *data, size_t len, bool eof)
{
	size_t pos = 0;

	if (off % CACHE_CHUNK)
		return;
	pthread_mutex_lock(&c->lock);
	while (pos < len || (eof && pos == len)) {
		size_t n = len - pos;
		bool last;

		if (n > CACHE_CHUNK)
			n = CACHE_CHUNK;
		last = pos + n == len;
		/* A cut chunk (the head of a message fetched alone) is
		 * kept where nothing longer is: reads are served what it
		 * holds and fetch the rest. It never passes for a whole
		 * one: it is neither CACHE_CHUNK long nor flagged eof. */
		if (n < CACHE_CHUNK && !eof) {
			if (!cache_holds_locked(c, k, off + pos, n))
				cache_put(c, k, (off + pos) / CACHE_CHUNK,
					  data + pos, n, false);
			break;
		}
		/* A message whose size is a multiple of the chunk size ends
		 * with a full chunk flagged eof. */
		cache_put(c, k, (off + pos) / CACHE_CHUNK, data + pos, n,
			  eof && last);
		pos += n;
		if (last)
			break;
	}
	pthread_mutex_unlock(&c->lock);
}

bool cache_has(struct cache *c, const struct cache_key *k, uint64_t off)
{
	bool found;

	pthread_mutex_lock(&c->lock);
	found = cache_holds_locked(c, k, off / CACHE_CHUNK * CACHE_CHUNK,
				   CACHE_CHUNK);
	pthread_mutex_unlock(&c->lock);
	return found;
}

bool cache_holds(struct cache *c, const struct cache_key *k, uint64_t off)
{
	bool found;

	pthread_mutex_lock(&c->lock);
	found = cache_holds_locked(c, k, off / CACHE_CHUNK * CACHE_CHUNK,
				   off % CACHE_CHUNK + 1);
	pthread_mutex_unlock(&c->lock);
	return found;
}

/* Drops the chunks of key k (lock held). */
static void cache_forget_locked(struct cache *c, const struct cache_key *k)
{
	struct cache_chunk *ch, *tmp;
	struct cache_key id;

	cache_msg_id(k, &id);
	HASH_ITER(hh, c->table, ch, tmp)
	{
		if (memcmp(&ch->id.msg, &id, sizeof(id)) == 0)
			cache_drop(c, ch);
	}
}

/*
 * Moves the chunks of from to key to, keeping their place in the LRU
 * list: they are taken out of the table first and put back under the new
 * key, so the iteration never meets a moved chunk. When out of memory for
 * that list, from is only forgotten (a miss, never wrong bytes).
 */
void cache_rekey(struct cache *c, const struct cache_key *from_key,
		 const struct cache_key *to_key)
{
	struct cache_chunk *ch, *tmp, **moved = NULL;
	struct cache_key from_id, to_id;
	const struct cache_key *from = &from_id, *to = &to_id;
	size_t n = 0, i;

	cache_msg_id(from_key, &from_id);
	cache_msg_id(to_key, &to_id);
	if (memcmp(from, to, sizeof(*to)) == 0)
		return;
	pthread_mutex_lock(&c->lock);
	cache_forget_locked(c, to);
	HASH_ITER(hh, c->table, ch, tmp)
	{
		if (memcmp(&ch->id.msg, from, sizeof(*from)) == 0)
			n++;
	}
	if (n)
		moved = calloc(n, sizeof(*moved));
	if (!moved) {
		cache_forget_locked(c, from);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	n = 0;
	HASH_ITER(hh, c->table, ch, tmp)
	{
		if (memcmp(&ch->id.msg, from, sizeof(*from)) == 0) {
			HASH_DEL(c->table, ch);
			moved[n++] = ch;
		}
	}
	for (i = 0; i < n; i++) {
		ch = moved[i];
		ch->id.msg = *to;
		HASH_ADD(hh, c->table, id, sizeof(ch->id), ch);
	}
	pthread_mutex_unlock(&c->lock);
	free(moved);
}

void cache_get_stats(struct cache *c, struct cache_stats *st_r)
{
	pthread_mutex_lock(&c->lock);
	*st_r = c->stats;
	pthread_mutex_unlock(&c->lock);
}
