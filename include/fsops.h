/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsops: the FUSE operations (path based; fsll serves them). They translate
 * paths through the tree, refresh listings through the store when they
 * are older than `refresh` seconds, and read bodies through the cache,
 * fetching what is missing in growing windows. Every operation returns
 * 0 (or a byte count) or a negative errno.
 */
#ifndef MAILFS_FSOPS_H
#define MAILFS_FSOPS_H

#include <stdbool.h>
#include <stdint.h>

struct fsll;
struct fuse_operations;
struct store;

struct fsops_config {
	struct store *store; /* borrowed */
	unsigned refresh; /* seconds a listing may be reused */
	unsigned timeout; /* seconds; bounds waits for other threads */
	uint64_t cache_size; /* bytes of message bodies kept in memory */
	bool readonly;
	bool owner_only; /* -o allow_other: modes for the owner alone */
	bool expunge_on_delete; /* rm expunges instead of moving to Trash */
	bool maildir; /* -o layout=maildir: a Maildir tree */
	uint64_t max_append; /* largest new message, 0: the server's */
	const char *tmpdir; /* borrowed: where new messages are held */
	const char *account; /* borrowed: the URL, for the status */
	unsigned temp_idle; /* seconds an unused temporary (.NAME) file
				 * is kept before it is discarded */
};

struct fsops;

struct fsops *fsops_new(const struct fsops_config *cfg);
/* Gives fsops its store, once logged in (fsops_new() comes first, so
 * that FUSE checks the options before any connection). */
void fsops_set_store(struct fsops *fs, struct store *store);
/* Tells fsops the FUSE session, so that it can invalidate the kernel's
 * cached attributes; starts the thread that does so. */
int fsops_start(struct fsops *fs, struct fsll *ll);
/* fsll's resolver (fsll_resolve_fn; ctx is the fsops; in fsdir.c): the
 * path of the listed message whose inode number is ino into buf; its
 * length, 0 if none. */
size_t fsdir_ino_path(void *ctx, uint64_t ino, char *buf, size_t size);
/* fsll's fsll_ino_fn (fsdir.c): the inode number of the listed message
 * at path, 0 if none (the listings in memory only, however old). */
uint64_t fsdir_path_ino(void *ctx, const char *path);
/* Stops that thread; call before the FUSE instance is destroyed. */
void fsops_stop(struct fsops *fs);
void fsops_free(struct fsops *fs);

#endif
