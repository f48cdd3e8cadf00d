// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsops: the FUSE operation table; see fsops.h.
 *
 * Reading a message: the cache answers what it holds; a miss fetches a
 * window starting at the missing chunk. The first is the size of the
 * first read, the next one chunk, doubling while the file is read
 * sequentially, up to FSOPS_MAX_WINDOW, so `head -c` costs about what
 * it reads and `cat` of a large message a handful of FETCH commands.
 * When the first reads of several messages of one folder follow each
 * other quickly (grep -r, rsync, tar walking a folder; head), the next
 * messages of the folder, whole or their heads, are fetched along with
 * the one asked for, in a single command (fsahead.c).
 */
#include <errno.h>
#include <fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <linux/fs.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "cache.h"
#include "clock.h"
#include "fsops.h"
#include "fsll.h"
#include "fsops_priv.h"
#include "fswatch.h"
#include "log.h"
#include "names.h"
#include "newmsg.h"
#include "store.h"
#include "tree.h"

struct fsops *fsops_get(void)
{
	return fsll_context()->private_data;
}

static int fsops_wait_ms(const struct fsops *fs)
{
	return (int)fs->cfg.timeout * 1000;
}

struct fsops *fsops_new(const struct fsops_config *cfg)
{
	struct fsops *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return NULL;
	fs->cfg = *cfg;
	fs->tree = tree_new(time(NULL));
	fs->cache = cache_new(cfg->cache_size);
	fs->newmsgs = newmsg_table_new();
	fs->parts = fsparts_cache_new();
	if (!fs->tree || !fs->cache || !fs->newmsgs || !fs->parts) {
		tree_free(fs->tree);
		cache_free(fs->cache);
		newmsg_table_free(fs->newmsgs);
		fsparts_cache_free(fs->parts);
		free(fs);
		return NULL;
	}
	if (cfg->maildir)
		tree_set_maildir(fs->tree);
	fs->uid = getuid();
	fs->gid = getgid();
	fs->started = time(NULL);
	pthread_mutex_init(&fs->scan_lock, NULL);
	pthread_mutex_init(&fs->trash_lock, NULL);
	pthread_mutex_init(&fs->quota_lock, NULL);
	return fs;
}

void fsops_set_store(struct fsops *fs, struct store *store)
{
	fs->cfg.store = store;
}

int fsops_start(struct fsops *fs, struct fsll *ll)
{
	int rc;

	fs->ll = ll;
	rc = fswatch_start(fs);
	if (rc < 0)
		return rc;
	fs->ahead = fsahead_start(fs);
	return 0;
}

void fsops_stop(struct fsops *fs)
{
	fsahead_stop(fs->ahead);
	fs->ahead = NULL;
	fswatch_stop(fs);
}

void fsops_free(struct fsops *fs)
{
	if (!fs)
		return;
	fsops_stop(fs);
	fswatch_free(fs);
	tree_free(fs->tree);
	cache_free(fs->cache);
	fsparts_cache_free(fs->parts);
	newmsg_discard_temporaries(fs->newmsgs);
	newmsg_table_free(fs->newmsgs);
	while (fs->trashed) {
		struct fsops_trashed *t = fs->trashed;

		HASH_DEL(fs->trashed, t);
		free(t);
	}
	pthread_mutex_destroy(&fs->scan_lock);
	pthread_mutex_destroy(&fs->trash_lock);
	pthread_mutex_destroy(&fs->quota_lock);
	free(fs);
}

/* Lists a folder's messages again if its listing is older than max_age;
 * costs one round trip when nothing changed, and little more than the
 * changes when the server can tell them (a delta). */
int fsops_refresh_listing(struct fsops *fs, const char *folder,
			  unsigned max_age)
{
	struct store *st = fs->cfg.store;
	struct store_listing prev, l;
	bool have_prev;
	int rc;

	max_age = fswatch_age(fs, folder, max_age);
	if (!tree_begin_refresh(fs->tree, folder, clock_mono(), max_age,
				fsops_wait_ms(fs)))
		return 0;
	have_prev = tree_listing_state(fs->tree, folder, &prev);
	if (!have_prev && (rc = fswalk_listing(fs, folder)) != 1) {
		tree_end_refresh(fs->tree, folder);
		return rc;
	}
	rc = st->ops->messages(st, folder, have_prev ? &prev : NULL, &l);
	if (rc == 2) {
		rc = tree_apply_delta(fs->tree, folder, &l, clock_mono());
		store_listing_clear(&l);
		if (rc == -EAGAIN || rc == -ESTALE) {
			log_info("%s: the changes the server reported do not "
				 "add up: listing it again",
				 folder);
			rc = st->ops->messages(st, folder, NULL, &l);
			if (rc == 0)
				rc = tree_set_listing(fs->tree, folder, &l,
						      clock_mono());
		}
	} else if (rc == 1) {
		tree_touch_listing(fs->tree, folder, clock_mono());
		rc = 0;
	} else if (rc == 0) {
		rc = tree_set_listing(fs->tree, folder, &l,
				      l.as_of ? l.as_of : clock_mono());
	}
	tree_end_refresh(fs->tree, folder);
	return rc;
}

/*
 * Finds what path names, listing the folders and the folder holding it
 * when stale (a stale listing serves when the server cannot be reached).
 * info is cleared first: tree_info_clear() is safe on it after any rc.
 */
int fsops_resolve(struct fsops *fs, const char *path, struct tree_info *info)
{
	unsigned age = fs->cfg.refresh;
	int rc;

	memset(info, 0, sizeof(*info));
	rc = fsdir_refresh_folders(fs, age);
	if (rc < 0 && tree_folders_stale(fs->tree, clock_mono(), ~0u))
		return rc;
	if (tree_lookup(fs->tree, path, clock_mono(),
			fswatch_age(fs, NULL, age), info) != TREE_UNLISTED)
		return info->kind == TREE_NONE ? -ENOENT : 0;
	rc = fsops_refresh_listing(fs, info->folder, age);
	tree_info_clear(info);
	switch (tree_lookup(fs->tree, path, clock_mono(), ~0u, info)) {
	case TREE_NONE:
		return -ENOENT;
	case TREE_UNLISTED:
		tree_info_clear(info);
		return rc < 0 ? rc : -EIO;
	default:
		return 0;
	}
}

/*
 * The mode a node shows: as given, or with -o allow_other the owner's
 * bits alone, a message's made writable (flags are set by writing its
 * xattr, which the kernel then checks, default_permissions): the kernel
 * refuses other users from its caches too, without asking mailfs.
 */
mode_t fsops_mode(const struct fsops *fs, mode_t mode)
{
	if (!fs->cfg.owner_only)
		return mode;
	mode &= S_IFMT | 0700;
	if (S_ISREG(mode) && !fs->cfg.readonly)
		mode |= 0200;
	return mode;
}

/* Fills a stat from what the tree knows. */
void fsops_stat(const struct fsops *fs, const struct tree_info *info,
		struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = info->ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_nlink = info->nlink;
	st->st_mtime = st->st_ctime = st->st_atime = info->mtime;
	st->st_blksize = 4096;
	/* A directory's mtime and ctime: when its content was last seen to
	 * change (tree.h), as on a local Maildir (mu's lazy check reads
	 * either). */
	if (info->kind == TREE_MESSAGE) {
		st->st_mode = fsops_mode(fs, S_IFREG | 0444);
		st->st_size = (off_t)info->size;
		st->st_blocks = (blkcnt_t)((info->size + 511) / 512);
	} else {
		st->st_mode = fsops_mode(
			fs, S_IFDIR | (fs->cfg.readonly ? 0555 : 0755));
	}
}

static void *fsops_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct fsops *fs = fsops_get();
	double ttl = fs->cfg.refresh;

	/* open(O_TRUNC) arrives as one call, not a truncate first: cp over
	 * an existing message must reach fsnew_open_replace(). */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* Every listing carries attributes (READDIRPLUS, never the kernel's
	 * choice of plain READDIR): no LOOKUP per entry after a listing, and
	 * a second listing refreshes what a read made stale (atime). */
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	cfg->use_ino = 1;
	cfg->readdir_ino = 1;
	cfg->entry_timeout = ttl;
	cfg->attr_timeout = ttl;
	cfg->negative_timeout = 0;
	cfg->nullpath_ok = 0;
	/* rm of an open message removes it at once: the default renames it
	 * to .fuse_hidden* in its folder, which for mail would be a move
	 * within a folder (refused). Open handles keep reading by key. */
	cfg->hard_remove = 1;
	return fs;
}

void fsops_msg_key(struct fsops *fs, const char *folder, uint64_t folder_id,
		   uint32_t uidvalidity, uint32_t uid, struct cache_key *k)
{
	memset(k, 0, sizeof(*k));
	k->folder = folder_id;
	k->uidvalidity = uidvalidity;
	k->uid = uid;
	tree_message_oid(fs->tree, folder, uidvalidity, uid, &k->oid);
}

/* Fills st for a file being created at path, of size bytes. */
void fsops_newmsg_fill(struct fsops *fs, const char *path, uint64_t size,
		       time_t mtime, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = tree_hash(path, strlen(path), TREE_HASH_SEED) | 2;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_nlink = 1;
	st->st_mode = fsops_mode(fs, S_IFREG | 0644);
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_blksize = 4096;
	st->st_mtime = st->st_ctime = st->st_atime = mtime;
}

/* Fills st for a file being created at path; false if there is none. */
static bool fsops_newmsg_stat(struct fsops *fs, const char *path,
			      struct stat *st)
{
	uint64_t size;
	time_t mtime;

	if (!newmsg_stat(fs->newmsgs, path, &size, &mtime))
		return false;
	fsops_newmsg_fill(fs, path, size, mtime, st);
	return true;
}

/* Fills st for an open file, from what its handle knows. */
static int fsops_stat_open(struct fsops *fs, struct fuse_file_info *fi,
			   struct stat *st)
{
	struct fsops_file *f =
		fi ? (struct fsops_file *)(uintptr_t)fi->fh : NULL;
	struct tree_info info = {.kind = TREE_MESSAGE, .nlink = 1};

	if (!f)
		return -ENOENT;
	if (f->newmsg) {
		uint64_t size;
		time_t mtime;

		if (!newmsg_stat(fs->newmsgs, newmsg_path(f->newmsg), &size,
				 &mtime)) {
			size = 0;
			mtime = time(NULL);
		}
		fsops_newmsg_fill(fs, newmsg_path(f->newmsg), size, mtime, st);
		return 0;
	}
	pthread_mutex_lock(&f->lock);
	info.size = f->size;
	pthread_mutex_unlock(&f->lock);
	info.ino = tree_hash(&f->key, sizeof(f->key), TREE_HASH_SEED) | 2;
	fsops_stat(fs, &info, st);
	st->st_nlink = 0; /* unlinked */
	return 0;
}

static int fsops_getattr(const char *path, struct stat *st,
			 struct fuse_file_info *fi)
{
	struct fsops *fs = fsops_get();
	struct tree_info info;
	int rc;

	/* fstat of an open file that was unlinked comes without a path
	 * (hard_remove): answer from the open file. */
	if (!path)
		return fsops_stat_open(fs, fi, st);
	if (fsops_newmsg_stat(fs, path, st))
		return 0;
	rc = fsops_resolve(fs, path, &info);
	if (rc < 0)
		return rc;
	fsops_stat(fs, &info, st);
	tree_info_clear(&info);
	return 0;
}

static int fsops_open(const char *path, struct fuse_file_info *fi)
{
	struct fsops *fs = fsops_get();
	struct fsops_file *f;
	struct tree_info info;
	struct newmsg *m;
	int rc;

	m = newmsg_get(fs->newmsgs, path);
	if (m) {
		/* Another open of a file being written: share it. */
		f = calloc(1, sizeof(*f));
		if (!f) {
			newmsg_put(fs->newmsgs, m);
			return -ENOMEM;
		}
		f->newmsg = m;
		f->writable = (fi->flags & O_ACCMODE) != O_RDONLY;
		fi->fh = (uintptr_t)f;
		fi->direct_io = 1;
		return 0;
	}
	rc = fsops_resolve(fs, path, &info);
	if (rc < 0)
		return rc;
	if (info.kind != TREE_MESSAGE) {
		tree_info_clear(&info);
		return -EISDIR;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		tree_info_clear(&info);
		if (fs->cfg.readonly)
			return -EROFS;
		/* cp over a message: a rewrite from the start is taken
		 * as a new copy (never a replacement); anything else
		 * would change a message, which IMAP cannot. */
		if ((fi->flags & O_TRUNC) &&
		    (fi->flags & O_ACCMODE) != O_RDONLY)
			return fsnew_open_replace(fs, path, fi);
		return -EACCES;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		tree_info_clear(&info);
		return -ENOMEM;
	}
	f->folder = info.folder;
	info.folder = NULL;
	f->path = strdup(path);
	f->key.folder = info.folder_id;
	f->key.uidvalidity = info.uidvalidity;
	f->key.uid = info.uid;
	f->key.oid = info.oid;
	f->size = info.size;
	f->window = CACHE_CHUNK;
	tree_info_clear(&info);
	if (!f->path) {
		free(f->folder);
		free(f);
		return -ENOMEM;
	}
	fsahead_opened(fs->ahead, f->folder, &f->key);
	pthread_mutex_init(&f->lock, NULL);
	clock_cond_init(&f->cond);
	fi->fh = (uintptr_t)f;
	/* Messages never change: the kernel may keep their pages. A
	 * read-only open has nothing to store at close: no FLUSH. */
	fi->keep_cache = 1;
	fi->noflush = 1;
	return 0;
}

static int fsops_release(const char *path, struct fuse_file_info *fi)
{
	struct fsops_file *f = (struct fsops_file *)(uintptr_t)fi->fh;

	(void)path;
	if (!f)
		return 0;
	if (f->newmsg) {
		fsnew_release(fsops_get(), f, path);
		return 0;
	}
	fsahead_closed(fsops_get()->ahead, &f->key);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f->folder);
	free(f->path);
	free(f);
	return 0;
}

/* What one read asked the store for, and where its bytes go. */
struct fsops_fetch {
	struct fsops *fs;
	const struct fsops_file *f;
	uint64_t folder_id;
	uint32_t uidvalidity;
	uint64_t from; /* where each message's piece was asked to start */
	uint64_t asked; /* bytes asked for each message */
	char *buf; /* the read's buffer: [off, off + want) */
	uint64_t off;
	size_t want;
	size_t copied; /* bytes of buf filled from [off, ...) */
	bool got; /* the message answered */
	bool eof; /* and its end was seen */
	uint64_t end; /* then, its real size */
};

/* Stores each fetched piece in the cache and copies the read's own
 * bytes straight into its buffer (the cache might not keep them). A
 * piece that does not start where it was asked for, or whose end would
 * not fit in 64 bits, is dropped: its bytes would be cached, and the
 * size corrected, at the wrong place (the store should refuse those
 * already; this keeps the arithmetic below safe whatever it does). */
static void fsops_fetch_cb(void *ctx, const struct store_piece *p)
{
	struct fsops_fetch *ft = ctx;
	struct cache_key k = ft->f->key;
	bool eof = p->len < ft->asked;

	if (p->offset != ft->from || p->len > UINT64_MAX - p->offset) {
		log_warnx("%s: ignored a piece at byte %llu, asked for %llu",
			  ft->f->path, (unsigned long long)p->offset,
			  (unsigned long long)ft->from);
		return;
	}
	/* A message that rode along: its own key. */
	if (p->uid != ft->f->key.uid)
		fsops_msg_key(ft->fs, ft->f->folder, ft->folder_id,
			      ft->uidvalidity, p->uid, &k);
	cache_store(ft->fs->cache, &k, p->offset, p->data, p->len, eof);
	if (p->uid != ft->f->key.uid)
		return;
	ft->got = true;
	if (eof) {
		ft->eof = true;
		ft->end = p->offset + p->len;
	}
	if (p->offset <= ft->off + ft->copied &&
	    p->offset + p->len > ft->off + ft->copied) {
		uint64_t from = ft->off + ft->copied - p->offset;
		size_t n = (size_t)(p->len - from);

		if (n > ft->want - ft->copied)
			n = ft->want - ft->copied;
		memcpy(ft->buf + ft->copied, p->data + from, n);
		ft->copied += n;
	}
}

/* Notes that a message's real size differs from what was listed. */
static void fsops_fix_size(struct fsops *fs, struct fsops_file *f,
			   uint64_t size)
{
	log_warnx("%s: server said %llu bytes, message has %llu", f->path,
		  (unsigned long long)f->size, (unsigned long long)size);
	pthread_mutex_lock(&f->lock);
	f->size = size;
	pthread_mutex_unlock(&f->lock);
	tree_set_size(fs->tree, f->folder, f->key.uidvalidity, f->key.uid,
		      size);
	fswatch_invalidate(fs, f->path);
}

/*
 * Fetches from the server what a read missed, starting at byte `from`
 * (chunk aligned) and copying into buf what belongs to [off, off+want).
 * Returns the bytes copied or a negative errno.
 */
static int fsops_fetch(struct fsops *fs, struct fsops_file *f, char *buf,
		       uint64_t off, size_t want, uint64_t from,
		       uint64_t window, uint64_t size)
{
	uint32_t uids[FSOPS_BATCH_MAX + 1];
	struct fsops_fetch ft = {0};
	uint64_t len;
	size_t n = 1;
	int rc;

	len = off + want - from;
	if (len < window)
		len = window;
	/* Whole chunks: a partial one could not be cached. */
	len = (len + CACHE_CHUNK - 1) / CACHE_CHUNK * CACHE_CHUNK;
	if (from + len >= size)
		len = size - from + FSOPS_SLACK;
	uids[0] = f->key.uid;
	if (from == 0) /* a scan's batch may ride along */
		n = fsahead_first_fetch(fs, f, off + want, &len, uids);
	fs->prefetched += n - 1;
	ft.fs = fs;
	ft.f = f;
	ft.folder_id = f->key.folder;
	ft.uidvalidity = f->key.uidvalidity;
	ft.from = from;
	ft.asked = len;
	ft.buf = buf;
	ft.off = off;
	ft.want = want;
	rc = fs->cfg.store->ops->fetch(fs->cfg.store, f->folder,
				       f->key.uidvalidity, uids, n, from, len,
				       fsops_fetch_cb, &ft);
	if (rc == -ESTALE)
		return -ENOENT;
	if (rc < 0)
		return rc;
	if (!ft.got) {
		/* Expunged since it was listed: list the folder again soon. */
		tree_expire_listing(fs->tree, f->folder);
		return -ENOENT;
	}
	if (ft.eof && ft.end != size)
		fsops_fix_size(fs, f, ft.end);
	return (int)ft.copied;
}

/*
 * Claims the file's next fetch for this thread, or waits (at most the
 * timeout) while another thread of the same file fetches: what the next
 * read wants is usually what that fetch brings. Returns true with
 * *window_r set when the caller should fetch (*mine_r: it owns the
 * claim); false when it waited and should look in the cache again.
 * f->lock is held.
 */
static bool fsops_claim_fetch(struct fsops *fs, struct fsops_file *f,
			      uint64_t off, uint64_t *window_r, bool *mine_r)
{
	uint64_t window;

	/* One fetch per file at a time: the next read usually wants what
	 * the running fetch brings, or what follows it. */
	if (f->fetching) {
		struct timespec ts = clock_deadline(fsops_wait_ms(fs));

		if (pthread_cond_timedwait(&f->cond, &f->lock, &ts) == 0)
			return false;
	}
	/* Reads at or a little beyond the furthest point so far continue a
	 * sequential read (the kernel's readahead may reorder them). */
	if (f->reads && off >= f->seq_off && off <= f->seq_end + f->window)
		window = f->window * 2;
	else
		window = CACHE_CHUNK;
	if (window > FSOPS_MAX_WINDOW)
		window = FSOPS_MAX_WINDOW;
	f->window = window;
	*mine_r = !f->fetching;
	f->fetching = true;
	*window_r = window;
	return true;
}

static int fsops_read(const char *path, char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct fsops *fs = fsops_get();
	struct fsops_file *f = (struct fsops_file *)(uintptr_t)fi->fh;
	uint64_t fsize, window, from;
	size_t want, got = 0;
	bool eof, mine = false, claimed, again;
	int rc;

	(void)path;
	if (off < 0)
		return -EINVAL;
	if (f->newmsg)
		return -EBADF; /* opened for writing */
	pthread_mutex_lock(&f->lock);
	fsize = f->size;
	pthread_mutex_unlock(&f->lock);
	if ((uint64_t)off >= fsize)
		return 0;
	want = size;
	if (want > fsize - (uint64_t)off)
		want = (size_t)(fsize - (uint64_t)off);
	do {
		got += cache_read(fs->cache, &f->key, (uint64_t)off + got,
				  buf + got, want - got, &eof);
		if (got < want && eof) {
			/* Fetched earlier (a scan's prefetch), found shorter
			 * than listed. */
			fsops_fix_size(fs, f, (uint64_t)off + got);
			goto done;
		}
		if (got == want || eof)
			goto done;
		claimed = false;
		if (off + got < CACHE_CHUNK &&
		    fsahead_wait(fs->ahead, &f->key, (uint64_t)off + got,
				 fsops_wait_ms(fs)))
			continue; /* fetched ahead meanwhile */
		from = ((uint64_t)off + got) / CACHE_CHUNK * CACHE_CHUNK;
		pthread_mutex_lock(&f->lock);
		claimed =
			fsops_claim_fetch(fs, f, (uint64_t)off, &window, &mine);
		pthread_mutex_unlock(&f->lock);
	} while (!claimed);

	rc = fsops_fetch(fs, f, buf + got, (uint64_t)off + got, want - got,
			 from, window, fsize);

	pthread_mutex_lock(&f->lock);
	if (mine) {
		f->fetching = false;
		pthread_cond_broadcast(&f->cond);
	}
	pthread_mutex_unlock(&f->lock);
	if (rc < 0)
		return rc;
	got += (size_t)rc;
done:
	pthread_mutex_lock(&f->lock);
	again = ++f->reads == 2; /* the reader came back for more */
	f->seq_off = (uint64_t)off;
	if ((uint64_t)off + got > f->seq_end)
		f->seq_end = (uint64_t)off + got;
	pthread_mutex_unlock(&f->lock);
	if (again)
		fsahead_read_more(fs, &f->key);
	return (int)got;
}

static int fsops_getxattr(const char *path, const char *name, char *value,
			  size_t size)
{
	struct fsops *fs = fsops_get();
	struct tree_info info;
	const char *val = NULL;
	char uid[16];
	size_t len;
	int rc;

	if (!strcmp(name, FSOPS_XATTR_STATUS))
		return fsstatus_getxattr(fs, path, value, size);
	/* ls asks every file for security.* and system.* attributes: answer
	 * those without looking the file up. "Not supported" (rather than
	 * "none") makes ls and the ACL library stop asking for the rest of
	 * the filesystem: one request instead of two per file of ls -l. */
	if (!strncmp(name, "security.", 9) || !strncmp(name, "system.", 7))
		return -EOPNOTSUPP;
	if (strcmp(name, FSOPS_XATTR_FLAGS) != 0 &&
	    (!fs->cfg.store->has_flags || strcmp(name, FSOPS_XATTR_UID) != 0) &&
	    (!fs->cfg.store->ref_xattr ||
	     strcmp(name, fs->cfg.store->ref_xattr) != 0))
		return -ENODATA;
	if (newmsg_stat(fs->newmsgs, path, &(uint64_t){0}, &(time_t){0}))
		return -ENODATA; /* being created: flags are set, not shown */
	rc = fsops_resolve(fs, path, &info);
	if (rc < 0)
		return rc;
	snprintf(uid, sizeof(uid), "%u", info.uid);
	if (info.kind != TREE_MESSAGE)
		val = NULL;
	else if (fs->cfg.store->has_flags && !strcmp(name, FSOPS_XATTR_FLAGS))
		val = info.flags;
	else if (fs->cfg.store->has_flags && !strcmp(name, FSOPS_XATTR_UID))
		val = uid;
	else if (fs->cfg.store->ref_xattr &&
		 !strcmp(name, fs->cfg.store->ref_xattr))
		val = info.store_ref;
	if (!val) {
		tree_info_clear(&info);
		return -ENODATA;
	}
	len = strlen(val);
	if (size && len > size)
		rc = -ERANGE;
	else if (size)
		memcpy(value, val, len);
	tree_info_clear(&info);
	return rc < 0 ? rc : (int)len;
}

static int fsops_listxattr(const char *path, char *list, size_t size)
{
	struct fsops *fs = fsops_get();
	const char *ref = fs->cfg.store->ref_xattr;
	struct tree_info info;
	size_t len = 0;
	char names[128];
	int rc;

	if (newmsg_stat(fs->newmsgs, path, &(uint64_t){0}, &(time_t){0}))
		return 0; /* being created */
	rc = fsops_resolve(fs, path, &info);
	if (rc < 0)
		return rc;
	if (info.kind == TREE_MESSAGE) {
		if (fs->cfg.store->has_flags) {
			memcpy(names, FSOPS_XATTR_FLAGS,
			       sizeof(FSOPS_XATTR_FLAGS));
			len += sizeof(FSOPS_XATTR_FLAGS);
		}
		if (ref && info.store_ref &&
		    strlen(ref) < sizeof(names) - len) {
			memcpy(names + len, ref, strlen(ref) + 1);
			len += strlen(ref) + 1;
		}
	}
	tree_info_clear(&info);
	if (size && len) {
		if (size < len)
			return -ERANGE;
		memcpy(list, names, len);
	}
	return (int)len;
}

/*
 * Write-back. Every change is carried to the server and confirmed before
 * the system call returns; the tree is then updated in place (and the
 * kernel's cached attributes dropped) so that the change shows at once.
 */

/* Splits path into its directory (malloc'd, "/" for the root) and its
 * last component (borrowed from path). */
char *fsops_dirname(const char *path, const char **base_r)
{
	const char *slash = strrchr(path, '/');

	*base_r = slash ? slash + 1 : path;
	if (!slash || slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/*
 * Checks that a resolved directory can hold messages: a folder, not the
 * root or a \Noselect one. On failure info is cleared.
 */
int fsops_holds_messages(struct tree_info *info)
{
	if (info->kind == TREE_MESSAGE) {
		tree_info_clear(info);
		return -ENOTDIR;
	}
	if (info->kind != TREE_FOLDER ||
	    (info->attrs & STORE_FOLDER_NOSELECT)) {
		tree_info_clear(info);
		return -EPERM; /* the root, or a folder without messages */
	}
	return 0;
}

/* For a name about to be made (a file or a folder): fails with -EEXIST
 * if path exists, else resolves its directory into dir (always clear). */
int fsops_new_name(struct fsops *fs, const char *path, struct tree_info *dir)
{
	struct tree_info here;
	const char *base;
	char *dirpath;
	int rc;

	memset(dir, 0, sizeof(*dir));
	if (fsops_resolve(fs, path, &here) == 0) {
		tree_info_clear(&here);
		return -EEXIST;
	}
	dirpath = fsops_dirname(path, &base);
	rc = dirpath ? fsops_resolve(fs, dirpath, dir) : -ENOMEM;
	free(dirpath);
	return rc;
}

/* The size limit of a new message: -o max_append and the server's
 * APPENDLIMIT, whichever is smaller (0: none). */
uint64_t fsops_append_limit(const struct fsops *fs)
{
	uint64_t server = fs->cfg.store->ops->append_limit(fs->cfg.store);
	uint64_t mine = fs->cfg.max_append;

	if (!server)
		return mine;
	return mine && mine < server ? mine : server;
}

static int fsops_truncate(const char *path, off_t size,
			  struct fuse_file_info *fi)
{
	struct fsops *fs = fsops_get();
	struct fsops_file *f =
		fi ? (struct fsops_file *)(uintptr_t)fi->fh : NULL;
	int rc;

	if (fs->cfg.readonly)
		return -EROFS;
	if (size < 0)
		return -EINVAL;
	if (fsnew_truncate(fs, path, size, f, &rc))
		return rc;
	return -EACCES; /* messages are immutable */
}

/* utimens: sets the date a file being created is stored with; accepted
 * and ignored on directories (cp -rp) and on a message when it asks for
 * the date the message has; otherwise refused on messages. */
static int fsops_utimens(const char *path, const struct timespec tv[2],
			 struct fuse_file_info *fi)
{
	struct fsops *fs = fsops_get();
	struct fsops_file *f =
		fi ? (struct fsops_file *)(uintptr_t)fi->fh : NULL;
	struct tree_info info;
	int rc;

	if (fs->cfg.readonly)
		return -EROFS;
	if (fsnew_utimens(fs, path, tv, f, &rc))
		return rc;
	rc = fsops_resolve(fs, path, &info);
	if (rc < 0)
		return rc;
	if (info.kind == TREE_MESSAGE && tv[1].tv_nsec != UTIME_OMIT &&
	    (tv[1].tv_nsec == UTIME_NOW || tv[1].tv_sec != info.mtime))
		rc = -EACCES;
	tree_info_clear(&info);
	return rc;
}

/* chmod and chown: modes and owners are the mount's; accepted on files
 * being created and directories so that cp -p works, refused on
 * messages. */
static int fsops_chattr(const char *path)
{
	struct fsops *fs = fsops_get();
	struct tree_info info;
	struct stat st;
	int rc;

	if (fs->cfg.readonly)
		return -EROFS;
	if (fsops_newmsg_stat(fs, path, &st))
		return 0;
	rc = fsops_resolve(fs, path, &info);
	if (rc < 0)
		return rc;
	rc = info.kind == TREE_MESSAGE ? -EPERM : 0;
	tree_info_clear(&info);
	return rc;
}

static int fsops_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	(void)fi;
	return fsops_chattr(path);
}

static int fsops_chown(const char *path, uid_t uid, gid_t gid,
		       struct fuse_file_info *fi)
{
	(void)uid;
	(void)gid;
	(void)fi;
	return fsops_chattr(path);
}

/* Replaces a message's flags on the server, then in the tree. */
static int fsops_set_flags(struct fsops *fs, const char *path,
			   const char *value, size_t size, int xflags)
{
	struct tree_info info;
	struct store_msg shown;
	char *text, *flags, *result = NULL;
	int rc;

	if (fs->cfg.readonly)
		return -EROFS;
	text = strndup(value, size);
	if (!text)
		return -ENOMEM;
	flags = store_flags_normalize(text);
	free(text);
	if (!flags)
		return -EINVAL;
	if (fsnew_set_flags(fs, path, flags, &rc)) {
		free(flags);
		return rc;
	}
	rc = fsops_resolve(fs, path, &info);
	if (rc < 0)
		goto out;
	if (info.kind != TREE_MESSAGE) {
		rc = -ENOTSUP;
		goto out_info;
	}
	if (xflags & XATTR_CREATE) {
		rc = -EEXIST;
		goto out_info;
	}
	tree_info_msg(&info, &shown);
	rc = fs->cfg.store->ops->set_flags(fs->cfg.store, info.folder,
					   info.uidvalidity, &shown, flags,
					   &result);
	if (rc == 0) {
		tree_set_flags(fs->tree, info.folder, info.uidvalidity,
			       info.uid, result);
		free(result);
		if (fs->cfg.maildir) /* the name follows the flags */
			fswatch_invalidate_with_dir(fs, path);
	}
out_info:
	tree_info_clear(&info);
out:
	free(flags);
	return rc;
}

static int fsops_setxattr(const char *path, const char *name, const char *value,
			  size_t size, int flags)
{
	struct fsops *fs = fsops_get();

	if (fs->cfg.readonly)
		return -EROFS;
	if (!strcmp(name, FSOPS_XATTR_UID) && fs->cfg.store->has_flags)
		return 0; /* identity is the server's: cp -a may try */
	if (strcmp(name, FSOPS_XATTR_FLAGS) != 0 || !fs->cfg.store->has_flags)
		return -ENOTSUP;
	if (!fs->cfg.store->ops->set_flags)
		return -EPERM;
	return fsops_set_flags(fs, path, value, size, flags);
}

static int fsops_removexattr(const char *path, const char *name)
{
	struct fsops *fs = fsops_get();

	if (fs->cfg.readonly)
		return -EROFS;
	if (strcmp(name, FSOPS_XATTR_FLAGS) != 0 || !fs->cfg.store->has_flags)
		return -ENODATA;
	if (!fs->cfg.store->ops->set_flags)
		return -EPERM;
	return fsops_set_flags(fs, path, "", 0, 0);
}

/*
 * Moves a message to another folder on the server. The message leaves
 * the source listing and joins the target's under its new UID, and the
 * name it was given stays readable there until the next listing (unless
 * a message of that name is already there, which is never replaced).
 */
static int fsops_move_message(struct fsops *fs, const struct tree_info *msg,
			      const char *from, const char *to)
{
	struct tree_info dir, there;
	struct store_msg shown;
	uint32_t uid, uidvalidity;
	const char *base;
	char *dirpath;
	int rc;

	dirpath = fsops_dirname(to, &base);
	if (!dirpath)
		return -ENOMEM;
	rc = fsops_resolve(fs, dirpath, &dir);
	free(dirpath);
	if (rc < 0 || (rc = fsops_holds_messages(&dir)) < 0)
		return rc;
	if (strcmp(dir.folder, msg->folder) == 0) {
		rc = -EPERM; /* names come from the message: no renaming */
		goto out;
	}
	if (fsops_resolve(fs, to, &there) == 0) {
		/* Never replaced: another message of that name stays. */
		tree_info_clear(&there);
		rc = -EEXIST;
		goto out;
	}
	tree_info_msg(msg, &shown);
	rc = fs->cfg.store->ops->move(fs->cfg.store, msg->folder,
				      msg->uidvalidity, &shown, dir.folder,
				      &uid, &uidvalidity);
	if (rc < 0)
		goto out;
	fsdir_moved(fs, msg, dir.folder, uidvalidity, uid, base);
	fswatch_invalidate_with_dir(fs, from);
	fswatch_invalidate_with_dir(fs, to);
out:
	tree_info_clear(&dir);
	return rc;
}

/* Renames a folder (and so its subfolders) on the server. */
static int fsops_rename_folder(struct fsops *fs, const struct tree_info *src,
			       const char *to)
{
	struct tree_info dst;
	char *name;
	char delim = tree_delimiter(fs->tree);
	int rc;

	if (strcasecmp(src->folder, "INBOX") == 0)
		return -EPERM;
	rc = fsops_resolve(fs, to, &dst);
	if (rc == 0) {
		tree_info_clear(&dst);
		return -EEXIST; /* folders are not merged */
	}
	if (!delim && strchr(to + 1, '/'))
		return -EPERM; /* the server has no hierarchy */
	name = names_from_path(to + 1, delim);
	if (!name)
		return -EINVAL;
	rc = fs->cfg.store->ops->rename_folder(fs->cfg.store, src->folder,
					       name);
	free(name);
	if (rc < 0)
		return rc;
	tree_expire_listing(fs->tree, NULL);
	fswatch_invalidate_with_dir(fs, src->folder_path);
	fswatch_invalidate_with_dir(fs, to);
	return 0;
}

static int fsops_rename(const char *from, const char *to, unsigned int flags)
{
	struct fsops *fs = fsops_get();
	struct tree_info src, dst;
	int rc;

	if (fs->cfg.readonly)
		return -EROFS;
	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	if (fsnew_rename(fs, from, to, flags, &rc))
		return rc;
	if (!fs->cfg.store->ops->move)
		return -EPERM;
	rc = fsops_resolve(fs, from, &src);
	if (rc < 0)
		return rc;
	if ((flags & RENAME_NOREPLACE) && fsops_resolve(fs, to, &dst) == 0) {
		tree_info_clear(&dst);
		rc = -EEXIST;
	} else if (src.kind == TREE_MESSAGE) {
		rc = fsops_move_message(fs, &src, from, to);
	} else if (src.kind == TREE_FOLDER) {
		rc = fsops_rename_folder(fs, &src, to);
	} else {
		rc = -EPERM; /* the root */
	}
	tree_info_clear(&src);
	return rc;
}

/* Remembers that this mount moved a message to Trash (uid 0: its UID
 * there is unknown), forgetting entries older than the grace period. */
static void fsops_note_trashed(struct fsops *fs, const char *trash,
			       uint32_t uidvalidity, uint32_t uid)
{
	struct fsops_trashed *t, *tmp;
	time_t now = clock_mono();

	pthread_mutex_lock(&fs->trash_lock);
	HASH_ITER(hh, fs->trashed, t, tmp)
	{
		if (now - t->at > FSOPS_TRASH_GRACE) {
			HASH_DEL(fs->trashed, t);
			free(t);
		}
	}
	if (!uid) {
		fs->trashed_blind = now;
	} else if ((t = calloc(1, sizeof(*t)))) {
		t->key.folder = tree_folder_id(trash);
		t->key.uidvalidity = uidvalidity;
		t->key.uid = uid;
		t->at = now;
		HASH_ADD(hh, fs->trashed, key, sizeof(t->key), t);
	}
	pthread_mutex_unlock(&fs->trash_lock);
}

/* True when a message of Trash was moved there by this mount within the
 * grace period (or when such a move's UID was not known). */
static bool fsops_recently_trashed(struct fsops *fs,
				   const struct tree_info *info)
{
	struct cache_key k = {.folder = info->folder_id,
			      .uidvalidity = info->uidvalidity,
			      .uid = info->uid};
	struct fsops_trashed *t;
	time_t now = clock_mono();
	bool recent;

	pthread_mutex_lock(&fs->trash_lock);
	HASH_FIND(hh, fs->trashed, &k, sizeof(k), t);
	recent = (t && now - t->at <= FSOPS_TRASH_GRACE) ||
		 clock_recent(fs->trashed_blind, now, FSOPS_TRASH_GRACE + 1);
	pthread_mutex_unlock(&fs->trash_lock);
	return recent;
}

/* The server name of the Trash folder, created if there is none. */
static char *fsops_trash(struct fsops *fs)
{
	char *trash = tree_trash(fs->tree);
	int rc;

	if (trash)
		return trash;
	log_info("creating a Trash folder for deleted messages");
	rc = fs->cfg.store->ops->create_folder(fs->cfg.store, "Trash");
	if (rc < 0 && rc != -EEXIST) {
		/* Servers whose folders all live under INBOX. */
		char name[16], delim = tree_delimiter(fs->tree);

		snprintf(name, sizeof(name), "INBOX%cTrash",
			 delim ? delim : '.');
		rc = fs->cfg.store->ops->create_folder(fs->cfg.store, name);
		if (rc < 0 && rc != -EEXIST)
			return NULL;
	}
	tree_expire_listing(fs->tree, NULL);
	fsdir_refresh_folders(fs, 0);
	fswatch_invalidate(fs, "/");
	return tree_trash(fs->tree);
}

/*
 * rm: moves the message to Trash, like every mail client, so that an
 * accidental rm -r can be undone. In Trash itself, or with
 * -o delete=expunge, the message is expunged (that UID alone).
 */
static int fsops_unlink(const char *path)
{
	struct fsops *fs = fsops_get();
	struct tree_info info;
	struct store_msg shown;
	char *trash = NULL;
	int rc;

	if (fs->cfg.readonly)
		return -EROFS;
	if (fsnew_unlink(fs, path, &rc))
		return rc;
	rc = fsops_resolve(fs, path, &info);
	if (rc < 0)
		return rc;
	if (info.kind != TREE_MESSAGE) {
		rc = -EISDIR;
		goto out;
	}
	if (!fs->cfg.store->ops->expunge) {
		rc = -EPERM;
		goto out;
	}
	/* Without moves there is no Trash: rm removes for good. */
	if (!fs->cfg.expunge_on_delete && fs->cfg.store->ops->move) {
		trash = fsops_trash(fs);
		if (!trash) {
			rc = -EIO;
			goto out;
		}
	}
	tree_info_msg(&info, &shown);
	if (trash && strcmp(trash, info.folder) == 0 &&
	    fsops_recently_trashed(fs, &info)) {
		log_warnx("%s was moved to Trash a moment ago: not expunging "
			  "it (-o delete=expunge removes mail for good)",
			  path);
		rc = -EPERM;
	} else if (!trash || strcmp(trash, info.folder) == 0) {
		rc = fs->cfg.store->ops->expunge(fs->cfg.store, info.folder,
						 info.uidvalidity, &shown);
		if (rc == 0)
			tree_remove_message(fs->tree, info.folder,
					    info.uidvalidity, info.uid);
	} else {
		uint32_t uid, uidvalidity;

		rc = fs->cfg.store->ops->move(fs->cfg.store, info.folder,
					      info.uidvalidity, &shown, trash,
					      &uid, &uidvalidity);
		if (rc == 0) {
			fsops_note_trashed(fs, trash, uidvalidity, uid);
			fsdir_moved(fs, &info, trash, uidvalidity, uid, NULL);
		}
	}
	if (rc == 0)
		fswatch_invalidate_with_dir(fs, path);
out:
	free(trash);
	tree_info_clear(&info);
	return rc;
}

static int fsops_mkdir(const char *path, mode_t mode)
{
	struct fsops *fs = fsops_get();
	struct tree_info info;
	char delim = tree_delimiter(fs->tree);
	char *name;
	int rc;

	(void)mode;
	if (fs->cfg.readonly)
		return -EROFS;
	if (!fs->cfg.store->ops->create_folder)
		return -EPERM;
	rc = fsops_new_name(fs, path, &info);
	if (rc < 0)
		return rc;
	if (info.kind == TREE_MESSAGE)
		rc = -ENOTDIR;
	else if (info.kind == TREE_FOLDER &&
		 ((info.attrs & STORE_FOLDER_NOINFERIORS) || !delim))
		rc = -EPERM;
	tree_info_clear(&info);
	if (rc < 0)
		return rc;
	name = names_from_path(path + 1, delim);
	if (!name)
		return -EINVAL;
	rc = fs->cfg.store->ops->create_folder(fs->cfg.store, name);
	/* The folder list just had no such folder: a server that says it
	 * exists (Dovecot can, while another session opens a mailbox) is
	 * asked again, and a folder that is there now is what mkdir asked
	 * for. */
	if (rc == -EEXIST) {
		tree_expire_listing(fs->tree, NULL);
		if (fsdir_refresh_folders(fs, 0) == 0 &&
		    tree_has_folder(fs->tree, name))
			rc = 0;
	}
	free(name);
	if (rc < 0)
		return rc;
	tree_expire_listing(fs->tree, NULL);
	fswatch_invalidate_with_dir(fs, path);
	return 0;
}

/* rmdir: deletes an empty folder; ENOTEMPTY while it holds messages or
 * subfolders (the server checks again just before deleting). */
static int fsops_rmdir(const char *path)
{
	struct fsops *fs = fsops_get();
	struct tree_info info;
	int rc;

	if (fs->cfg.readonly)
		return -EROFS;
	if (!fs->cfg.store->ops->delete_folder)
		return -EPERM;
	rc = fsops_resolve(fs, path, &info);
	if (rc < 0)
		return rc;
	if (info.kind == TREE_ROOT) {
		rc = -EBUSY;
	} else if (info.kind != TREE_FOLDER) {
		rc = -ENOTDIR;
	} else if (strcasecmp(info.folder, "INBOX") == 0) {
		rc = -EPERM;
	} else if (info.nlink > 2) {
		rc = -ENOTEMPTY;
	} else {
		rc = fs->cfg.store->ops->delete_folder(fs->cfg.store,
						       info.folder);
	}
	if (rc == 0) {
		tree_expire_listing(fs->tree, NULL);
		fswatch_invalidate_with_dir(fs, path);
	}
	tree_info_clear(&info);
	return rc;
}

static const struct fuse_operations fsops_table = {
	.init = fsops_init,
	.getattr = fsops_getattr,
	.opendir = fsdir_open,
	.readdir = fsdir_read,
	.releasedir = fsdir_release,
	.open = fsops_open,
	.read = fsops_read,
	.release = fsops_release,
	.getxattr = fsops_getxattr,
	.listxattr = fsops_listxattr,
	.statfs = fsstatus_statfs,
	.create = fsnew_create,
	.write = fsnew_write,
	.flush = fsnew_flush,
	.truncate = fsops_truncate,
	.utimens = fsops_utimens,
	.chmod = fsops_chmod,
	.chown = fsops_chown,
	.setxattr = fsops_setxattr,
	.removexattr = fsops_removexattr,
	.rename = fsops_rename,
	.unlink = fsops_unlink,
	.mkdir = fsops_mkdir,
	.rmdir = fsops_rmdir,
};

const struct fuse_operations *fsops_inner_operations(void)
{
	return &fsops_table;
}
