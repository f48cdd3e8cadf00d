// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fswalk: listings of the folders ahead of a walk (find, grep -r, rsync,
 * an ls of every folder). When first listings of folders come close
 * together, the next folders never listed are listed along with the one
 * asked for, all in one round trip (store_ops.messages_many), so that a walk through
 * hundreds of folders costs a few round trips instead of one each.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fsstate.h"
#include "fswalk.h"
#include "log.h"
#include "store.h"
#include "tree.h"

/* First listings closer than this make a walk. */
#define FSWALK_GAP_MS 2000
/* Folders listed in one go during a walk, the one asked for included,
 * holding at most FSWALK_BUDGET messages in all (where the folder list
 * tells their sizes; otherwise only folders of the same directory). */
#define FSWALK_BATCH 32
#define FSWALK_BUDGET 20000

/* Where a batch's listings go. */
struct fswalk_batch {
	struct fsmount *fs;
	char **names; /* owned, n of them */
	bool *began; /* the tree marked names[i] as being refreshed */
	size_t n;
	int rc0; /* the result for the folder asked for (names[0]) */
};

/* Installs one listing of a batch and lets waiters for it go on. */
static void fswalk_done(void *ctx, size_t i, int rc, struct store_listing *l)
{
	struct fswalk_batch *b = ctx;

	if (rc == 0)
		rc = tree_set_listing(b->fs->tree, b->names[i], l,
				      l->as_of ? l->as_of : clock_mono());
	if (i == 0)
		b->rc0 = rc;
	if (b->began[i]) {
		tree_end_refresh(b->fs->tree, b->names[i]);
		b->began[i] = false;
	}
}

/* True when this first listing follows another one closely. */
static bool fswalk_walking(struct fsmount *fs)
{
	long long now = clock_now_ms();
	long long last = atomic_exchange(&fs->walk_last_ms, now);

	return last && now - last < FSWALK_GAP_MS;
}

/* Marks names[from..n) as being listed by this thread; those another
 * thread is listing already are left out (and freed). Returns the new
 * n. */
static size_t fswalk_claim(struct fsmount *fs, char **names, bool *began,
			   size_t from, size_t n)
{
	size_t i;

	for (i = from; i < n; i++) {
		began[i] = tree_begin_refresh(fs->tree, names[i], clock_mono(),
					      fs->cfg.refresh, 0);
		if (!began[i]) {
			free(names[i]);
			names[i--] = names[--n];
			began[n] = false;
		}
	}
	return n;
}

/* Ends the refresh marks fswalk_claim() took that no listing ended,
 * and frees names[from..n). */
static void fswalk_release(struct fsmount *fs, char **names, bool *began,
			   size_t from, size_t n)
{
	size_t i;

	for (i = from; i < n; i++) {
		if (began[i])
			tree_end_refresh(fs->tree, names[i]);
		free(names[i]);
	}
}

int fswalk_listing(struct fsmount *fs, const char *folder)
{
	struct store *st = fs->cfg.store;
	struct fswalk_batch b = {.fs = fs, .rc0 = -EIO};
	char *names[FSWALK_BATCH];
	bool began[FSWALK_BATCH];
	size_t n;
	int rc;

	if (!st->ops->messages_many || !fswalk_walking(fs))
		return 1;
	names[0] = (char *)folder;
	began[0] = false; /* the caller ends its own refresh */
	n = 1 + tree_unlisted_after(fs->tree, folder, FSWALK_BATCH - 1,
				    FSWALK_BUDGET, names + 1);
	n = fswalk_claim(fs, names, began, 1, n);
	if (n == 1)
		return 1;
	log_debug("walk: listing %s and %zu folders after it", folder, n - 1);
	b.names = names;
	b.began = began;
	b.n = n;
	rc = st->ops->messages_many(st, (const char *const *)names, n,
				    fswalk_done, &b);
	fswalk_release(fs, names, began, 1, n);
	if (rc == -EAGAIN)
		return 1; /* not now (offline): one folder at a time */
	return rc < 0 ? rc : b.rc0;
}

int fswalk_ahead(struct fsmount *fs, const char *after)
{
	struct store *st = fs->cfg.store;
	struct fswalk_batch b = {.fs = fs};
	char *names[FSWALK_BATCH];
	bool began[FSWALK_BATCH];
	size_t n;
	int rc;

	if (!st->ops->messages_many)
		return 0;
	n = tree_unlisted_after(fs->tree, after, FSWALK_BATCH, FSWALK_BUDGET,
				names);
	n = fswalk_claim(fs, names, began, 0, n);
	if (n == 0)
		return 0;
	log_debug("walk: listing %zu folders after %s ahead of the reader", n,
		  after);
	b.names = names;
	b.began = began;
	b.n = n;
	rc = st->ops->messages_many(st, (const char *const *)names, n,
				    fswalk_done, &b);
	fswalk_release(fs, names, began, 0, n);
	return rc < 0 ? rc : (int)n;
}
