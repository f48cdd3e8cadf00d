/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fswatch: keeps what the kernel caches true as the mail changes (see
 * fswatch.c): store events in, kernel invalidations out, and folders
 * that other clients changed listed again in the background. Part of
 * the fs layer: every function takes the mount (struct fsmount).
 */
#ifndef MAILFS_FSWATCH_H
#define MAILFS_FSWATCH_H

#include <stddef.h>

struct fsmount;

/* Starts the two threads, hooks the tree's listing changes and asks
 * the store for its events; 0 or -errno. */
int fswatch_start(struct fsmount *fs);
/* Ends the threads (queued work is dropped); events still coming from
 * the store are ignored from then on. */
void fswatch_stop(struct fsmount *fs);
/* Stops, then frees everything. */
void fswatch_free(struct fsmount *fs);

/* Queues path's inode (attributes, pages, a directory's listing) for
 * invalidation in the kernel; with_dir: its directory's too. */
void fswatch_invalidate(struct fsmount *fs, const char *path);
void fswatch_invalidate_with_dir(struct fsmount *fs, const char *path);

/* Another client changed folder (server name): its listing is stale,
 * the kernel is told, and a folder listed before is listed again in
 * the background. Memory only. */
void fswatch_folder_changed(struct fsmount *fs, const char *folder);

/* Lists the folders in the background when the list is older than
 * `refresh` (at mount: the first lookup then finds it). */
void fswatch_list_folders(struct fsmount *fs);

/*
 * The age up to which folder's listing (NULL: any folder's) may be used
 * without asking the server: max_age, or, while push reports every
 * change to it, the time since push began watching (a listing made
 * since then is kept until push reports a change). 0 stays 0.
 */
unsigned fswatch_age(struct fsmount *fs, const char *folder, unsigned max_age);

/* The status line `push=…` into buf (len bytes, NUL-terminated): "all"
 * (every folder is watched), a folder's server name (that one, in
 * IDLE), or "off"; its length. */
size_t fswatch_format_push(struct fsmount *fs, char *buf, size_t len);

#endif
