/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsahead: scans (a folder read message after message) and their
 * read-ahead, in the background too (fsahead.c).
 */
#ifndef MAILFS_FSAHEAD_H
#define MAILFS_FSAHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fsstate.h"

struct fsahead;
struct cache_key;
struct fsahead *fsahead_start(struct fsmount *fs);
void fsahead_stop(struct fsahead *a);
/* Plans a fetch from byte 0 of f for a read of [0, end): uids[0] is f's
 * UID; the messages that ride along follow it (room for FS_BATCH_MAX + 1
 * in all); *len_r: bytes to ask of each, on entry what f alone would be
 * asked. Returns how many UIDs. */
size_t fsahead_first_fetch(struct fsmount *fs, struct fsfile *f, uint64_t end,
			   uint64_t *len_r, uint32_t *uids);
/* The mount is ending: no more pages are put into the kernel's page
 * cache; waits (at most wait_ms) for those being put now. Called while
 * the FUSE loop still serves: a page being put waits for a READ of it
 * in flight. */
void fsahead_quiesce(struct fsahead *a, int wait_ms);
/* f's body is on disk and its first read came: if that is the first
 * read of the process that just listed the folder (a scan), the bodies
 * on disk after it are put into the kernel's page cache in the
 * background, so that its next reads send no request; any other such
 * read in the folder being put tells the push its reader overtook it
 * there, and the push goes on after f. */
void fsahead_push_local(struct fsmount *fs, const struct fsfile *f);
/* The message of k was read a second time since it was opened. */
void fsahead_read_more(struct fsmount *fs, const struct cache_key *k);
/* A message was opened: if it belongs to the batch fetched ahead, the
 * reader has reached it, so fetch the one after. */
void fsahead_opened(struct fsahead *a, const char *folder,
		    const struct cache_key *k);
/* The message of k, opened (fsahead_opened()), was released. */
void fsahead_closed(struct fsahead *a, const struct cache_key *k);
/* When the message of k is in the batch being fetched ahead, waits (at
 * most ms) for its byte at off to arrive. True when it is cached. */
bool fsahead_wait(struct fsahead *a, const struct cache_key *k, uint64_t off,
		  long ms);

#endif
