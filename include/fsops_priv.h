/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsops_priv: what the files behind the FUSE operation table share:
 * fsops.c (dispatch, reading, folders, Trash) and fsnew.c (files being
 * created: new messages and temporaries). Not for other modules.
 */
#ifndef MAILFS_FSOPS_PRIV_H
#define MAILFS_FSOPS_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <fuse.h>
#include <uthash.h>

#include "cache.h"
#include "fsops.h"
#include "tree.h"

struct fuse_file_info;
struct newmsg;
struct fswatch;

#define FSOPS_MAX_WINDOW (8u * 1024 * 1024)
/* Bytes asked for beyond a message's expected end: a message longer
 * than its RFC822.SIZE shows up as such instead of being cut. */
#define FSOPS_SLACK CACHE_CHUNK
/* Prefetching: messages up to this size ride along with a scan's miss,
 * at most FSOPS_BATCH_MAX of them or FSOPS_BATCH_BYTES in all. */
#define FSOPS_PREFETCH_SIZE (1024u * 1024)
#define FSOPS_BATCH_MIN 16
#define FSOPS_BATCH_MAX 1024
#define FSOPS_BATCH_BYTES (16u * 1024 * 1024)
/* First reads of two messages closer than this make a scan. */
#define FSOPS_SCAN_GAP_MS 2000
#define FSOPS_SCAN_SLOTS 16

#define FSOPS_XATTR_FLAGS "user.mail.flags"
/* A message's UID: readable by name, never listed (so rsync -X and
 * cp -a do not copy it); setting it is accepted and ignored. */
#define FSOPS_XATTR_UID "user.mail.uid"
/* A message rm moved to Trash is not expunged from Trash by another rm
 * for this long, so that an rm -r reaching Trash after other folders
 * cannot destroy what it has just moved there. */
#define FSOPS_TRASH_GRACE 300

/* A message this mount moved to Trash, and when. */
struct fsops_trashed {
	struct cache_key key; /* hash key */
	time_t at; /* monotonic */
	UT_hash_handle hh;
};

/* A folder being read message after message (fsahead.c). */
struct fsops_scan {
	uint64_t folder_id;
	long long last; /* clock_now_ms() */
	unsigned batch; /* messages to fetch with the next miss */
	/* The message whose first read came last: its first read ended
	 * before its end (short), and the reader came back for more. */
	uint32_t prev_uid;
	bool prev_short, prev_more;
	bool heads; /* the reader reads heads only: heads ride along */
};

struct fsops {
	struct fsops_config cfg;
	struct tree *tree; /* owned */
	struct cache *cache; /* owned */
	uid_t uid;
	gid_t gid;
	time_t started; /* the ctime virtual directories show */
	_Atomic uint64_t prefetched; /* messages fetched ahead of reads */
	pthread_mutex_t quota_lock; /* the three below */
	time_t quota_at; /* monotonic; 0: never asked */
	uint64_t quota_used, quota_limit; /* bytes; limit 0: none */
	pthread_mutex_t scan_lock;
	struct fsops_scan scans[FSOPS_SCAN_SLOTS];
	struct fsll *ll; /* borrowed */
	/* owned: store events in, kernel invalidations out (fswatch.c) */
	struct fswatch *watch;
	struct newmsg_table *newmsgs; /* owned: files being created */
	_Atomic long long walk_last_ms; /* the last first listing (fswalk) */
	struct fsahead *ahead; /* owned: background read-ahead, or NULL */
	pthread_mutex_t trash_lock; /* the two below */
	struct fsops_trashed *trashed; /* owned */
	time_t trashed_blind; /* a move to Trash with no UID known */
	struct fsparts_cache *parts; /* owned: message structures (fsparts) */
	/* What the last folder list left out (tree.h's bounds), logged when
	 * it changes; only the thread refreshing the list uses it. */
	struct tree_skipped folders_skipped;
};

/* An open file: a message being read, or (newmsg set) one being
 * written. */
struct fsops_file {
	struct newmsg *newmsg; /* a reference, or NULL */
	bool writable; /* opened for writing (FLUSH has no flags) */
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

/* The cache key of message uid of folder (server name; folder_id its
 * tree_folder_id()) under uidvalidity: with the message's content
 * identity when its listing gives one (tree_message_oid()), so that
 * copies of one message share one cached body. */
void fsops_msg_key(struct fsops *fs, const char *folder, uint64_t folder_id,
		   uint32_t uidvalidity, uint32_t uid, struct cache_key *k);

/* fsops' own table, behind fsvirt's dispatcher. */
const struct fuse_operations *fsops_inner_operations(void);

/* The mount's fsops, from the FUSE context of the calling operation. */
struct fsops *fsops_get(void);
/* Finds what path names, listing what is stale; 0 or -errno. info is
 * initialised on every path (tree_info_clear() is always safe). */
int fsops_resolve(struct fsops *fs, const char *path, struct tree_info *info);
/* Lists a folder again if its listing is older than max_age. */
int fsops_refresh_listing(struct fsops *fs, const char *folder,
			  unsigned max_age);
/* Splits path into its directory (malloc'd, "/" for the root) and its
 * last component (borrowed from path). */
char *fsops_dirname(const char *path, const char **base_r);
/* Checks that a resolved directory can hold messages (clears it if
 * not). */
int fsops_holds_messages(struct tree_info *info);
/* -EEXIST if path exists, else resolves its directory into dir (dir is
 * initialised on every path). */
int fsops_new_name(struct fsops *fs, const char *path, struct tree_info *dir);
/* The size limit of a new message (0: none). */
uint64_t fsops_append_limit(const struct fsops *fs);
/* Fills st for a file being created at path, of size bytes. */
void fsops_newmsg_fill(struct fsops *fs, const char *path, uint64_t size,
		       time_t mtime, struct stat *st);

/* The mount's status, `getfattr --only-values -n user.mail.status MNT`:
 * readable by name on the root, never listed (rsync -X skips it). */
#define FSOPS_XATTR_STATUS "user.mail.status"
int fsstatus_getxattr(struct fsops *fs, const char *path, char *value,
		      size_t size);
/* statfs: the account's quota (GETQUOTAROOT), asked at most once per
 * refresh interval, as the size of the filesystem for df. */
int fsstatus_statfs(const char *path, struct statvfs *st);

/* The mode bits a node of mode (type and bits) shows (fsops.c). */
mode_t fsops_mode(const struct fsops *fs, mode_t mode);
/* Fills st from what the tree knows. */
void fsops_stat(const struct fsops *fs, const struct tree_info *info,
		struct stat *st);

/* fsdir.c: the folder list, listed again (store->folders()) if older
 * than max_age, one thread at a time; folders the tree leaves out are
 * logged. 0 or -errno. */
int fsdir_refresh_folders(struct fsops *fs, unsigned max_age);
/* fsdir.c: directory listings from a snapshot taken at opendir. */
int fsdir_open(const char *path, struct fuse_file_info *fi);
int fsdir_read(const char *path, void *buf, fuse_fill_dir_t filler,
	       off_t offset, struct fuse_file_info *fi,
	       enum fuse_readdir_flags flags);
int fsdir_release(const char *path, struct fuse_file_info *fi);
/* A message moved to target (new UID uid, 0 if not told): the tree and
 * the memory cache follow it. */
void fsdir_moved(struct fsops *fs, const struct tree_info *msg,
		 const char *target, uint32_t uidvalidity, uint32_t uid,
		 const char *alias);
/* The entries "." and ".." of the directory at path: a directory each,
 * with the inode number stat shows for it and for its parent. */
void fsdir_dots(struct fsops *fs, const char *path, struct stat *dot,
		struct stat *dotdot);

/* fswalk.c: the first listing of folder during a walk, with the folders
 * ahead of it in the same round trip. 1 when it is no walk (the caller
 * lists folder alone), else 0 or -errno for folder. The caller holds
 * folder's refresh mark. */
int fswalk_listing(struct fsops *fs, const char *folder);
/* fswalk.c: first listings of up to 32 folders never listed after
 * `after`, in one round trip, for the read-ahead across folders (the
 * caller's thread is background work). Returns how many were asked
 * for, or -errno. */
int fswalk_ahead(struct fsops *fs, const char *after);

/* fsahead.c: scans and their read-ahead, in the background too. */
struct fsahead;
struct cache_key;
struct fsahead *fsahead_start(struct fsops *fs);
void fsahead_stop(struct fsahead *a);
/* Plans a fetch from byte 0 of f for a read of [0, end): uids[0] is f's
 * UID; the messages that ride along follow it (room for
 * FSOPS_BATCH_MAX + 1 in all); *len_r: bytes to ask of each, on entry
 * what f alone would be asked. Returns how many UIDs. */
size_t fsahead_first_fetch(struct fsops *fs, struct fsops_file *f, uint64_t end,
			   uint64_t *len_r, uint32_t *uids);
/* The message of k was read a second time since it was opened. */
void fsahead_read_more(struct fsops *fs, const struct cache_key *k);
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

/* fsnew.c: files being created. Each returns 0 or -errno. */
int fsnew_create(const char *path, mode_t mode, struct fuse_file_info *fi);
int fsnew_write(const char *path, const char *buf, size_t size, off_t off,
		struct fuse_file_info *fi);
int fsnew_flush(const char *path, struct fuse_file_info *fi);
/* Opens an existing message for writing with O_TRUNC (cp over it):
 * its close stores nothing if the bytes are the same, else a new
 * message. */
int fsnew_open_replace(struct fsops *fs, const char *path,
		       struct fuse_file_info *fi);
/* The last release of a file being created. */
void fsnew_release(struct fsops *fs, struct fsops_file *f, const char *path);
/* Operations on a path that may be a file being created: each returns
 * true when path is one, with the result in *rc_r. */
bool fsnew_truncate(struct fsops *fs, const char *path, off_t size,
		    struct fsops_file *f, int *rc_r);
bool fsnew_utimens(struct fsops *fs, const char *path,
		   const struct timespec tv[2], struct fsops_file *f,
		   int *rc_r);
bool fsnew_set_flags(struct fsops *fs, const char *path, const char *flags,
		     int *rc_r);
bool fsnew_rename(struct fsops *fs, const char *from, const char *to,
		  unsigned flags, int *rc_r);
bool fsnew_unlink(struct fsops *fs, const char *path, int *rc_r);

/* fsparts.c: the bounded cache of message structures behind .parts. */
struct fsparts_cache;
struct fsparts_cache *fsparts_cache_new(void);
void fsparts_cache_free(struct fsparts_cache *c);

/* fsmaildir.c: the operations the Maildir layout (-o layout=maildir)
 * changes, in front of fsops' own: each passes to fsops' in the default
 * layout. */
int fsmaildir_rename(const char *from, const char *to, unsigned flags);
int fsmaildir_mkdir(const char *path, mode_t mode);
int fsmaildir_rmdir(const char *path);
/* link(2): EPERM in every layout (Python's Maildir.add() then renames). */
int fsmaildir_link(const char *from, const char *to);
/* The name a message stored or moved to the mount path `to` is found
 * under until the next listing: its last component, or "new/NAME" in a
 * Maildir new/. Points into to. */
const char *fsmaildir_alias(const struct fsops *fs, const char *to);

#endif
