/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsstate: the mount's state, the data every file of the fs layer
 * shares (struct fsmount), and an open message's handle (struct
 * fsfile). Types and constants only: no functions are declared here,
 * so that every fs file may include it whatever its layer (see
 * docs/design.md, "The fs layer").
 */
#ifndef MAILFS_FSSTATE_H
#define MAILFS_FSSTATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <uthash.h>

#include "cache.h"
#include "fsconfig.h"
#include "tree.h"

struct fskind;
struct fuse_file_info;
struct newmsg;
struct fswatch;

#define FS_MAX_WINDOW (8u * 1024 * 1024)
/* Bytes asked for beyond a message's expected end: a message longer
 * than its RFC822.SIZE shows up as such instead of being cut. */
#define FS_SLACK CACHE_CHUNK
/* Prefetching: messages up to this size ride along with a scan's miss,
 * at most FS_BATCH_MAX of them or FS_BATCH_BYTES in all. */
#define FS_PREFETCH_SIZE (1024u * 1024)
#define FS_BATCH_MIN 16
#define FS_BATCH_MAX 1024
#define FS_BATCH_BYTES (16u * 1024 * 1024)
/* First reads of two messages closer than this make a scan. */
#define FS_SCAN_GAP_MS 2000
#define FS_SCAN_SLOTS 16

#define FS_XATTR_FLAGS "user.mail.flags"
/* A message's UID: readable by name, never listed (so rsync -X and
 * cp -a do not copy it); setting it is accepted and ignored. */
#define FS_XATTR_UID "user.mail.uid"
/* The mount's status (fsstatus.c): readable by name on the root. */
#define FS_XATTR_STATUS "user.mail.status"
/* A message rm moved to Trash is not expunged from Trash by another rm
 * for this long, so that an rm -r reaching Trash after other folders
 * cannot destroy what it has just moved there. */
#define FS_TRASH_GRACE 300

/* A message this mount moved to Trash, and when. */
struct fstrashed {
	struct cache_key key; /* hash key */
	time_t at; /* monotonic */
	UT_hash_handle hh;
};

/* A folder being read message after message (fsahead.c). */
struct fsscan {
	uint64_t folder_id;
	long long last; /* clock_now_ms() */
	unsigned batch; /* messages to fetch with the next miss */
	/* The message whose first read came last: its first read ended
	 * before its end (short), and the reader came back for more. */
	uint32_t prev_uid;
	bool prev_short, prev_more;
	bool heads; /* the reader reads heads only: heads ride along */
};

struct fsmount {
	struct fsmount_config cfg;
	struct tree *tree; /* owned */
	struct cache *cache; /* owned */
	uid_t uid;
	gid_t gid;
	time_t started; /* the ctime virtual directories show */
	_Atomic uint64_t prefetched; /* messages fetched ahead of reads */
	pthread_mutex_t quota_lock; /* the three below */
	time_t quota_at; /* monotonic; 0: never asked */
	uint64_t quota_used, quota_limit; /* bytes; limit 0: none */
	pthread_mutex_t scan_lock; /* the scans and the listing below */
	struct fsscan scans[FS_SCAN_SLOTS];
	/* The last folder a process listed to its end (fsdir), which it
	 * then usually reads message after message (grep -r, tar, cp -r,
	 * rsync): its first read there starts a scan at once. */
	uint64_t listed_folder;
	pid_t listed_pid;
	long long listed_ms; /* clock_now_ms() */
	/* clock_now_ms() of the last folder list a missing folder name
	 * asked for (fsctx_resolve()) */
	atomic_llong folders_missed_ms;
	/* message bodies put into the kernel's page cache ahead of their
	 * readers (fsahead_push()), for the status */
	_Atomic uint64_t pushed;
	struct fsll *ll; /* borrowed */
	/* fsctx_refresh_listing() and fsctx_refresh_folders(), for fswatch
	 * (which sits below fsctx) */
	int (*refresh)(struct fsmount *fs, const char *folder, unsigned age);
	int (*refresh_folders)(struct fsmount *fs, unsigned age);
	/* owned: store events in, kernel invalidations out (fswatch.c) */
	struct fswatch *watch;
	struct newmsg_table *newmsgs; /* owned: files being created */
	_Atomic long long walk_last_ms; /* the last first listing (fswalk) */
	struct fsahead *ahead; /* owned: background read-ahead, or NULL */
	pthread_mutex_t trash_lock; /* the two below */
	struct fstrashed *trashed; /* owned */
	time_t trashed_blind; /* a move to Trash with no UID known */
	struct fsparts_cache *parts; /* owned: message structures (fsparts) */
	/* What the last folder list left out (tree.h's bounds), logged when
	 * it changes; only the thread refreshing the list uses it. */
	struct tree_skipped folders_skipped;
};

/* An open file: a message being read, or (newmsg set) one being
 * written. */
struct fsfile {
	const struct fskind *kind; /* first: see fsnode.h */
	struct newmsg *newmsg; /* a reference, or NULL */
	bool writable; /* opened for writing (FLUSH has no flags) */
	bool local; /* its body was on disk at open (store.h) */
	char *folder; /* owned: server name */
	char *path; /* owned */
	struct cache_key key;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond;
	uint64_t size;
	uint64_t seq_off; /* where the last read started */
	uint64_t seq_end; /* the furthest end read so far */
	uint64_t window;
	uint64_t reads; /* reads served so far */
	bool fetching; /* a thread is fetching for this file */
};

#endif
