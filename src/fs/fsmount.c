// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsmount: the mount object's life (see fsmount.h): made before FUSE
 * checks the options, given its store once logged in, started with the
 * session (invalidations, push, read-ahead), stopped and freed after
 * the session ends; and the FUSE connection's settings at init.
 */
#include <fuse.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "cache.h"
#include "fsahead.h"
#include "fsctx.h"
#include "fsmount.h"
#include "fsparts.h"
#include "fsstate.h"
#include "fswatch.h"
#include "newmsg.h"
#include "tree.h"

struct fsmount *fsmount_new(const struct fsmount_config *cfg)
{
	struct fsmount *fs = calloc(1, sizeof(*fs));

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

void fsmount_set_store(struct fsmount *fs, struct store *store)
{
	fs->cfg.store = store;
}

int fsmount_start(struct fsmount *fs, struct fsll *ll)
{
	int rc;

	fs->ll = ll;
	fs->refresh = fsctx_refresh_listing;
	fs->refresh_folders = fsctx_refresh_folders;
	rc = fswatch_start(fs);
	if (rc < 0)
		return rc;
	fs->ahead = fsahead_start(fs);
	return 0;
}

void fsmount_ready(struct fsmount *fs)
{
	fswatch_list_folders(fs);
}

void fsmount_stopping(struct fsmount *fs)
{
	fsahead_quiesce(fs->ahead, 500);
}

void fsmount_stop(struct fsmount *fs)
{
	fsahead_stop(fs->ahead);
	fs->ahead = NULL;
	fswatch_stop(fs);
}

void fsmount_free(struct fsmount *fs)
{
	if (!fs)
		return;
	fsmount_stop(fs);
	fswatch_free(fs);
	tree_free(fs->tree);
	cache_free(fs->cache);
	fsparts_cache_free(fs->parts);
	newmsg_discard_temporaries(fs->newmsgs);
	newmsg_table_free(fs->newmsgs);
	while (fs->trashed) {
		struct fstrashed *t = fs->trashed;

		HASH_DEL(fs->trashed, t);
		free(t);
	}
	pthread_mutex_destroy(&fs->scan_lock);
	pthread_mutex_destroy(&fs->trash_lock);
	pthread_mutex_destroy(&fs->quota_lock);
	free(fs);
}

void *fsmount_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct fsmount *fs = fsctx_get();
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
