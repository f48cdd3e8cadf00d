/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cache: message bodies in memory, least recently used out first. No
 * I/O. A message is held as chunks of CACHE_CHUNK bytes at aligned
 * offsets, so a partial read (head -c) keeps only what was fetched and
 * a later read continues where it stopped.
 *
 * Keys are (folder id, UIDVALIDITY, UID): stable for a message's whole
 * life on the server, so a cached body can never be shown for another
 * message. A message whose server gives it a content identity (a
 * key's oid: OBJECTID, X-GM-MSGID, with its RFC822.SIZE) is held under
 * that identity alone, so that its copies in other folders (a
 * server-side copy, a move by another client, a Gmail label) share one
 * body; an identity reused for a message of another size is another
 * oid (store_oid_make()), so never those bytes. A disk tier is meant to
 * sit under this interface: callers only see read/store/forget.
 *
 * Thread-safe: one mutex, held only for lookups and copies.
 */
#ifndef MAILFS_CACHE_H
#define MAILFS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define CACHE_CHUNK (128 * 1024)

struct cache_key {
	uint64_t folder; /* a stable hash of the folder's server name */
	uint32_t uidvalidity;
	uint32_t uid;
	/* The message's content identity, or none: when set, what its
	 * chunks are kept under (folder, UIDVALIDITY and UID then do not
	 * count). */
	struct store_oid oid;
};

struct cache_stats {
	uint64_t bytes; /* body bytes held */
	uint64_t chunks;
	uint64_t hits; /* cache_read calls fully served */
	uint64_t misses;
	uint64_t evictions; /* chunks dropped to stay under the limit */
};

struct cache;

/* max_bytes bounds the body bytes held. Returns NULL when out of memory. */
struct cache *cache_new(uint64_t max_bytes);
void cache_free(struct cache *c);

/*
 * Copies up to len bytes of the message from offset off into buf, as far
 * as consecutive chunks are present. Returns the number of bytes copied;
 * *eof_r tells whether the copy stopped at the message's known end.
 */
size_t cache_read(struct cache *c, const struct cache_key *k, uint64_t off,
		  char *buf, size_t len, bool *eof_r);

/*
 * Stores bytes fetched from offset off, which must be a multiple of
 * CACHE_CHUNK. When eof is set, the message ends at off + len and the
 * last, shorter chunk is kept too; otherwise a trailing partial chunk is
 * kept as a cut chunk (unless a longer or whole one is there): reads get
 * its bytes and then a miss with *eof_r false, never an end.
 */
void cache_store(struct cache *c, const struct cache_key *k, uint64_t off,
		 const char *data, size_t len, bool eof);

/* True when the whole chunk holding offset off of the message is
 * present (a cut chunk does not count). */
bool cache_has(struct cache *c, const struct cache_key *k, uint64_t off);
/* True when the byte at offset off is present, or the message is known
 * to end before it. */
bool cache_holds(struct cache *c, const struct cache_key *k, uint64_t off);

/*
 * The message of key from now has key to (it was moved to another
 * folder, COPYUID told its new UID): its chunks are moved to key to.
 * What was held under key to before is dropped first, so the chunks of
 * two messages are never mixed under one key. Nothing moves when both
 * keys name one identity.
 */
void cache_rekey(struct cache *c, const struct cache_key *from,
		 const struct cache_key *to);

void cache_get_stats(struct cache *c, struct cache_stats *st_r);

#endif
