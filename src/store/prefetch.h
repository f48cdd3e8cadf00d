/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * prefetch: -o prefetch=FOLDER[:FOLDER...] / prefetch=all. Fills the
 * disk cache with whole folders in the background, so that they can be
 * read in full offline: each folder is listed (through the store, which
 * saves the listing), and the messages not yet on disk are fetched in
 * batches (one UID FETCH of many messages each, pipelined by the
 * server) by up to `threads` threads at once, each holding one session:
 * the caller gives fewer threads than sessions, so one always stays
 * free for foreground calls. Waits while the store is offline. Progress
 * goes to the log and to the status (prefetch_status()).
 */
#ifndef MAILFS_PREFETCH_H
#define MAILFS_PREFETCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct store;
struct diskcache;
struct prefetch;

/*
 * Starts filling: folders are mount paths (as the mount shows them,
 * NULL-terminated, borrowed until prefetch_stop()), or all (every
 * folder that holds messages). st is the disk-cache store (borrowed);
 * offline points at its offline flag. NULL when out of memory.
 */
struct prefetch *prefetch_start(struct store *st, struct diskcache *dc,
				_Atomic bool *offline, char **folders, bool all,
				unsigned threads);
/* Stops (after the batches under way) and frees pf; NULL is fine. */
void prefetch_stop(struct prefetch *pf);
/* Appends prefetch=..., prefetch_messages=D/T, prefetch_bytes=N lines;
 * returns the bytes written (at most len - 1). */
size_t prefetch_status(struct prefetch *pf, char *buf, size_t len);

/*
 * Parses the value of -o prefetch=: "all", or mount paths separated by
 * ':', each with %XX escapes undone (%3A for ':', %2C for ',', %25 for
 * '%'; so a folder named all is %61ll). Returns 0 with *folders_r
 * (malloc'd, NULL-terminated; NULL for "all") and *all_r, or -1 for an
 * empty name or a bad escape.
 */
int prefetch_parse(const char *text, char ***folders_r, bool *all_r);
void prefetch_free_names(char **names);

#endif
