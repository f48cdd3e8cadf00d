/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diskcache: an IMAP account's persistent cache under
 * $XDG_CACHE_HOME/mailfs/<account>/ (~/.cache/mailfs/...): the folder
 * list, each folder's listing state and messages (UIDVALIDITY,
 * HIGHESTMODSEQ, UIDNEXT; UID, size, date, idhash, flags) and the time
 * its content was last seen to change (its mtime) in SQLite (WAL
 * mode, file `cache.db`), and message bodies as plain files in
 * CACHE_CHUNK pieces under `bodies/`, keyed by (folder, UIDVALIDITY, UID,
 * section). Directories are 0700, files 0600. No network I/O.
 *
 * Crash safety: each body file is written under a temporary name and
 * renamed into place; its header repeats its key, length and a 64-bit
 * checksum of its bytes, all checked at every read. A file that fails a
 * check, a body longer or shorter than the listed RFC822.SIZE, or a
 * database that fails its check at open is discarded (never served) and
 * the bytes come from the server again.
 *
 * Threads: every write (bodies, listings, folder list, LRU times,
 * evictions) goes through one writer thread, queued with a copy of the
 * data; callers never wait on disk writes. Reads of body files happen in
 * the calling thread with no lock held; the in-memory index of what is
 * on disk has one mutex, held only for memory work. A listing is read
 * from the database on a connection of the caller's own, again with no
 * lock held.
 *
 * Bounded by max_bytes of body data, least recently used out first.
 * A full disk stops caching (one log line); reads go on from the server.
 */
#ifndef MAILFS_DISKCACHE_H
#define MAILFS_DISKCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* The section of a whole message (BODY[]). */
#define DISKCACHE_WHOLE ""

struct diskcache_stats {
	uint64_t bytes; /* body bytes on disk */
	uint64_t limit;
	uint64_t hits; /* fetches answered from disk */
	uint64_t misses;
	uint64_t dropped; /* damaged files or wrong sizes discarded */
	bool writing; /* caching goes on (false after a full disk) */
};

struct diskcache;

/*
 * $XDG_CACHE_HOME/mailfs/<account> (or ~/.cache/mailfs/<account>),
 * <account> from names_account_key(). malloc'd; NULL when neither
 * variable is usable.
 */
char *diskcache_default_dir(const char *user, const char *host,
			    const char *port);

/*
 * Opens (making it if need be) the cache in dir, checks its database
 * (a damaged one is removed with its bodies and made anew, with a log
 * line) and loads the folder list and the index of bodies. dir must be
 * a directory no other user can have planted or change (safedir.h:
 * not a symbolic link, owned by the user mailfs runs as, ...). Locks
 * dir against a second mount (mountlock.h: a mount that is exiting is
 * waited for, at most wait_ms; one that is serving refuses at once).
 * No thread is started (call diskcache_start() after daemonizing).
 * Returns NULL with err filled (the path at fault and why) on failure.
 */
struct diskcache *diskcache_open(const char *dir, uint64_t max_bytes,
				 int wait_ms, char *err, size_t errlen);
/* Starts the writer thread. 0 or a negative errno. */
int diskcache_start(struct diskcache *dc);
/* Writes what is queued, stops the writer and frees everything. */
void diskcache_close(struct diskcache *dc);
/* Waits (at most ms) until the writer has done what was queued before
 * the call. True when it has. */
bool diskcache_flush(struct diskcache *dc, int ms);

/* True when the cache holds a folder list (an earlier mount wrote one):
 * then the account can be mounted offline. */
bool diskcache_has_folders(struct diskcache *dc);
/* The cache's directory (borrowed), where the journal lives too. */
const char *diskcache_dir(const struct diskcache *dc);

/* The folder list as last saved; *f_r owned by the caller
 * (store_folders_free()). -ENOENT when there is none. */
int diskcache_get_folders(struct diskcache *dc, struct store_folder **f_r,
			  size_t *n_r);
/* Saves the folder list (copied; written by the writer thread). */
void diskcache_put_folders(struct diskcache *dc, const struct store_folder *f,
			   size_t n);

/* The state of a folder's saved listing (no messages). False if none. */
bool diskcache_get_state(struct diskcache *dc, const char *folder,
			 struct store_listing *state_r);
/* A folder's saved listing with its messages, read from the database
 * (out owned by the caller, store_listing_clear()). 0, -ENOENT, or
 * another negative errno. Also tells the cache the listed sizes. */
int diskcache_get_listing(struct diskcache *dc, const char *folder,
			  struct store_listing *out);
/* Saves a folder's listing (copied). Bodies of another UIDVALIDITY of
 * that folder are dropped. Also tells the cache the listed sizes and
 * content identities. */
void diskcache_put_listing(struct diskcache *dc, const char *folder,
			   const struct store_listing *l);
/* False when the saved listing of folder was saved before mailfs asked
 * for content identities (a cache of schema 2 or older): it has none,
 * so online the folder is to be listed in full once; offline it serves
 * as it is. True otherwise, and when there is no saved listing. */
bool diskcache_listing_has_ids(struct diskcache *dc, const char *folder);

/*
 * When folder's content was last seen to change (wall clock seconds),
 * kept across mounts: with state (a listing's, or the folder list's
 * STATUS), the kept time if it was kept for that same state (UIDVALIDITY,
 * UIDNEXT, message count, HIGHESTMODSEQ), else now (or the kept time if
 * later), kept from then on with state; without state (not known), the
 * kept time. 0 when none is kept and state is NULL. Never less than a
 * time kept before. Memory only (the write is queued).
 */
time_t diskcache_mtime(struct diskcache *dc, const char *folder,
		       const struct store_listing *state, time_t now);
/* Keeps mtime as folder's when it is later than the kept one (the
 * state it is for stays). Memory only (the write is queued). */
void diskcache_keep_mtime(struct diskcache *dc, const char *folder,
			  time_t mtime);

/*
 * Reads bytes [off, off + len) of a message's section from disk, or up
 * to its end when it ends before off + len. Returns 0 with *data_r
 * (malloc'd, owned by the caller) and *len_r, when every byte of that
 * range is on disk and checked; -ENOENT when some are missing (nothing
 * is returned: a part is never served as the whole).
 */
int diskcache_read(struct diskcache *dc, const char *folder,
		   uint32_t uidvalidity, uint32_t uid, const char *section,
		   uint64_t off, uint64_t len, char **data_r, size_t *len_r);
/* True when every byte of the message's section is on disk. */
bool diskcache_has_all(struct diskcache *dc, const char *folder,
		       uint32_t uidvalidity, uint32_t uid, const char *section);

/*
 * Queues bytes of a message fetched from offset off (eof: the message
 * ends at off + len). Whole CACHE_CHUNK pieces are kept, and the last
 * shorter one at the end. A whole message (section DISKCACHE_WHOLE)
 * whose end disagrees with its listed size is not kept (and what was
 * kept of it is dropped). With wait, blocks (at most ms) while the queue
 * is full instead of dropping the bytes: background filling only.
 *
 * Content identity: a whole message whose listing gives it one
 * (store_msg.oid) is kept once under that identity and its listed size
 * (an object), and read back (diskcache_read(), diskcache_has_all())
 * for every message of any folder listed with the same identity and
 * size: a server-side copy, a message another client moved, a Gmail
 * label cost no fetch. A body kept under an identity is checked against
 * the listed RFC822.SIZE of the message it is read for, and an identity
 * listed with another size is another object: never another message's
 * bytes. A body kept under the message's own key (before its listing
 * gave an identity) is still served.
 */
void diskcache_store(struct diskcache *dc, const char *folder,
		     uint32_t uidvalidity, uint32_t uid, const char *section,
		     uint64_t off, const char *data, size_t len, bool eof,
		     bool wait, int ms);

/*
 * A message moved (move) or copied to folder target, where COPYUID told
 * its UID and UIDVALIDITY: what is on disk of it is written again under
 * the new key (by the writer thread; each piece read back and checked
 * first, and a whole message that disagrees with its listed size left
 * out), after whatever the new key held is dropped; with move, the old
 * key's pieces go. Memory only here: the work is queued. A crash loses
 * pieces of the copy, never attaches bytes to a key not theirs.
 */
void diskcache_rekey(struct diskcache *dc, const char *folder,
		     uint32_t uidvalidity, uint32_t uid, const char *target,
		     uint32_t new_uidvalidity, uint32_t new_uid, bool move);

void diskcache_get_stats(struct diskcache *dc, struct diskcache_stats *st_r);

#endif
