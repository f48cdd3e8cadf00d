// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsmsg: a message's kind (see fsmsg.h): reading it.
 *
 * Reading a message: the cache answers what it holds; a miss fetches a
 * window starting at the missing chunk. The first is the size of the
 * first read, the next one chunk, doubling while the file is read
 * sequentially, up to FS_MAX_WINDOW, so `head -c` costs about what it
 * reads and `cat` of a large message a handful of FETCH commands. When
 * the first reads of several messages of one folder follow each other
 * quickly (grep -r, rsync, tar walking a folder; head), the next
 * messages of the folder, whole or their heads, are fetched along with
 * the one asked for, in a single command (fsahead.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "clock.h"
#include "fsahead.h"
#include "fsattr.h"
#include "fsctx.h"
#include "fsedit.h"
#include "fsmsg.h"
#include "fsnew.h"
#include "fskind.h"
#include "fswatch.h"
#include "log.h"
#include "store.h"
#include "tree.h"

/* fstat of an open message, from what its handle knows (an unlinked
 * one, hard_remove, comes without a path). */
static int fsmsg_fgetattr(struct fsmount *fs, struct fuse_file_info *fi,
			  struct stat *st)
{
	struct fsfile *f = (struct fsfile *)(uintptr_t)fi->fh;
	struct tree_info info = {.kind = TREE_MESSAGE, .nlink = 1};

	pthread_mutex_lock(&f->lock);
	info.size = f->size;
	pthread_mutex_unlock(&f->lock);
	info.ino = tree_hash(&f->key, sizeof(f->key), TREE_HASH_SEED) | 2;
	fsctx_stat(fs, &info, st);
	st->st_nlink = 0; /* unlinked */
	return 0;
}

/* stat of a node the tree knows (the root, folders, messages). */
int fsmsg_getattr(struct fsnode *n, struct stat *st)
{
	fsctx_stat(n->fs, &n->info, st);
	return 0;
}

/* open of a message: read-only, served from the cache and the store; an
 * open for writing with O_TRUNC (cp over it) makes a new message. */
int fsmsg_open(struct fsnode *n, struct fuse_file_info *fi)
{
	struct fsmount *fs = n->fs;
	struct tree_info *info = &n->info;
	struct fsfile *f;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		if (fs->cfg.readonly)
			return -EROFS;
		/* cp over a message: a rewrite from the start is taken
		 * as a new copy (never a replacement); anything else
		 * would change a message, which IMAP cannot. */
		if ((fi->flags & O_TRUNC) &&
		    (fi->flags & O_ACCMODE) != O_RDONLY)
			return fsnew_open_replace(fs, n->path, fi);
		return -EACCES;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->kind = &fsmsg_kind;
	f->folder = info->folder;
	info->folder = NULL;
	f->path = strdup(n->path);
	f->key.folder = info->folder_id;
	f->key.uidvalidity = info->uidvalidity;
	f->key.uid = info->uid;
	f->key.oid = info->oid;
	f->size = info->size;
	f->window = CACHE_CHUNK;
	f->local = fsctx_local(fs, f->folder, f->key.uidvalidity, f->key.uid);
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

/* The last close of a message open for reading. */
static void fsmsg_release(struct fsmount *fs, const char *path,
			  struct fuse_file_info *fi)
{
	struct fsfile *f = (struct fsfile *)(uintptr_t)fi->fh;

	(void)path;
	fsahead_closed(fs->ahead, &f->key);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	free(f->folder);
	free(f->path);
	free(f);
}

/* What one read asked the store for, and where its bytes go. */
struct fsmsg_fetch {
	struct fsmount *fs;
	const struct fsfile *f;
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
static void fsmsg_fetch_cb(void *ctx, const struct store_piece *p)
{
	struct fsmsg_fetch *ft = ctx;
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
		fsctx_msg_key(ft->fs, ft->f->folder, ft->folder_id,
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
static void fsmsg_fix_size(struct fsmount *fs, struct fsfile *f, uint64_t size)
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
static int fsmsg_fetch(struct fsmount *fs, struct fsfile *f, char *buf,
		       uint64_t off, size_t want, uint64_t from,
		       uint64_t window, uint64_t size)
{
	uint32_t uids[FS_BATCH_MAX + 1];
	struct fsmsg_fetch ft = {0};
	uint64_t len;
	size_t n = 1;
	int rc;

	len = off + want - from;
	if (len < window)
		len = window;
	/* Whole chunks: a partial one could not be cached. */
	len = (len + CACHE_CHUNK - 1) / CACHE_CHUNK * CACHE_CHUNK;
	if (from + len >= size)
		len = size - from + FS_SLACK;
	uids[0] = f->key.uid;
	/* A scan's batch may ride along; a body on disk is read alone,
	 * at once (nothing to overlap with a transfer). */
	if (from == 0 && !f->local)
		n = fsahead_first_fetch(fs, f, off + want, &len, uids);
	else if (from == 0)
		fsahead_push_local(fs, f);
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
	store_scope_clear();
	rc = fs->cfg.store->ops->fetch(fs->cfg.store, f->folder,
				       f->key.uidvalidity, uids, n, from, len,
				       fsmsg_fetch_cb, &ft);
	/* The folder is gone, or is another one now (UIDVALIDITY): its
	 * listing is void, list it again at the next look. */
	if (rc < 0 && store_scope_last() == STORE_SCOPE_FOLDER)
		tree_expire_listing(fs->tree, f->folder);
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
		fsmsg_fix_size(fs, f, ft.end);
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
static bool fsmsg_claim_fetch(struct fsmount *fs, struct fsfile *f,
			      uint64_t off, uint64_t *window_r, bool *mine_r)
{
	uint64_t window;

	/* One fetch per file at a time: the next read usually wants what
	 * the running fetch brings, or what follows it. */
	if (f->fetching) {
		struct timespec ts = clock_deadline(fsctx_wait_ms(fs));

		if (pthread_cond_timedwait(&f->cond, &f->lock, &ts) == 0)
			return false;
	}
	/* Reads at or a little beyond the furthest point so far continue a
	 * sequential read (the kernel's readahead may reorder them). */
	if (f->reads && off >= f->seq_off && off <= f->seq_end + f->window)
		window = f->window * 2;
	else
		window = CACHE_CHUNK;
	if (window > FS_MAX_WINDOW)
		window = FS_MAX_WINDOW;
	f->window = window;
	*mine_r = !f->fetching;
	f->fetching = true;
	*window_r = window;
	return true;
}

/* read of a message open for reading. */
static int fsmsg_read(struct fsmount *fs, const char *path, char *buf,
		      size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fsfile *f = (struct fsfile *)(uintptr_t)fi->fh;
	uint64_t fsize, window, from;
	size_t want, got = 0;
	bool eof, mine = false, claimed, again;
	int rc;

	(void)path;
	if (off < 0)
		return -EINVAL;
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
			fsmsg_fix_size(fs, f, (uint64_t)off + got);
			goto done;
		}
		if (got == want || eof)
			goto done;
		claimed = false;
		if (off + got < CACHE_CHUNK && !f->local &&
		    fsahead_wait(fs->ahead, &f->key, (uint64_t)off + got,
				 fsctx_wait_ms(fs)))
			continue; /* fetched ahead meanwhile */
		from = ((uint64_t)off + got) / CACHE_CHUNK * CACHE_CHUNK;
		pthread_mutex_lock(&f->lock);
		claimed =
			fsmsg_claim_fetch(fs, f, (uint64_t)off, &window, &mine);
		pthread_mutex_unlock(&f->lock);
	} while (!claimed);

	rc = fsmsg_fetch(fs, f, buf + got, (uint64_t)off + got, want - got,
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
	if (again && !f->local)
		fsahead_read_more(fs, &f->key);
	return (int)got;
}

/* A message of the default layout. Its name comes from the server: it
 * is moved, never renamed within its folder; rm sends it to Trash. */
const struct fskind fsmsg_kind = {
	.name = "message",
	FSMSG_NODE_OPS,
	.rename = fsedit_rename_message,
	.fgetattr = fsmsg_fgetattr,
	.read = fsmsg_read,
	.release = fsmsg_release,
};
