// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsctx: the services every kind of node uses; see fsctx.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cache.h"
#include "clock.h"
#include "fsctx.h"
#include "fsll.h"
#include "fspath.h"
#include "fswalk.h"
#include "fswatch.h"
#include "log.h"
#include "newmsg.h"
#include "store.h"
#include "tree.h"

/* A folder name missing from the folder list lists the folders again
 * at most once in this many ms (fsctx_resolve()). */
#define FSCTX_MISS_MS 1000

struct fsmount *fsctx_get(void)
{
	return fsll_context()->private_data;
}

int fsctx_wait_ms(const struct fsmount *fs)
{
	return (int)fs->cfg.timeout * 1000;
}

/* Lists a folder's messages again if its listing is older than max_age;
 * costs one round trip when nothing changed, and little more than the
 * changes when the server can tell them (a delta). */
int fsctx_refresh_listing(struct fsmount *fs, const char *folder,
			  unsigned max_age)
{
	struct store *st = fs->cfg.store;
	struct store_listing prev, l;
	bool have_prev;
	int rc;

	max_age = fswatch_age(fs, folder, max_age);
	if (!tree_begin_refresh(fs->tree, folder, clock_mono(), max_age,
				fsctx_wait_ms(fs)))
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
 * A name that only a folder could have, and no folder has, lists the
 * folders again first (at most once in FSCTX_MISS_MS): a folder another
 * client made since shows at once when asked for by name, although the
 * list was made at mount, before anyone asked (fsmount_ready()).
 * info is cleared first: tree_info_clear() is safe on it after any rc.
 */
int fsctx_resolve(struct fsmount *fs, const char *path, struct tree_info *info)
{
	unsigned age = fs->cfg.refresh;
	enum tree_kind kind;
	long long now_ms, last;
	int rc;

	memset(info, 0, sizeof(*info));
	rc = fsctx_refresh_folders(fs, age);
	if (rc < 0 && tree_folders_stale(fs->tree, clock_mono(), ~0u))
		return rc;
	kind = tree_lookup(fs->tree, path, clock_mono(),
			   fswatch_age(fs, NULL, age), info);
	now_ms = clock_now_ms();
	last = atomic_load(&fs->folders_missed_ms);
	if (kind == TREE_NONE && info->maybe_folder &&
	    (last == 0 || now_ms - last >= FSCTX_MISS_MS) &&
	    atomic_compare_exchange_strong(&fs->folders_missed_ms, &last,
					   now_ms) &&
	    fsctx_refresh_folders(fs, 0) == 0) {
		tree_info_clear(info);
		kind = tree_lookup(fs->tree, path, clock_mono(),
				   fswatch_age(fs, NULL, age), info);
	}
	if (kind != TREE_UNLISTED)
		return info->kind == TREE_NONE ? -ENOENT : 0;
	rc = fsctx_refresh_listing(fs, info->folder, age);
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
mode_t fsctx_mode(const struct fsmount *fs, mode_t mode)
{
	if (!fs->cfg.owner_only)
		return mode;
	mode &= S_IFMT | 0700;
	if (S_ISREG(mode) && !fs->cfg.readonly)
		mode |= 0200;
	return mode;
}

/* Fills a stat from what the tree knows. */
void fsctx_stat(const struct fsmount *fs, const struct tree_info *info,
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
		st->st_mode = fsctx_mode(fs, S_IFREG | 0444);
		st->st_size = (off_t)info->size;
		st->st_blocks = (blkcnt_t)((info->size + 511) / 512);
	} else {
		st->st_mode = fsctx_mode(
			fs, S_IFDIR | (fs->cfg.readonly ? 0555 : 0755));
	}
}

bool fsctx_local(const struct fsmount *fs, const char *folder,
		 uint32_t uidvalidity, uint32_t uid)
{
	struct store *st = fs->cfg.store;

	return st->ops->local && st->ops->local(st, folder, uidvalidity, uid);
}

void fsctx_msg_key(struct fsmount *fs, const char *folder, uint64_t folder_id,
		   uint32_t uidvalidity, uint32_t uid, struct cache_key *k)
{
	memset(k, 0, sizeof(*k));
	k->folder = folder_id;
	k->uidvalidity = uidvalidity;
	k->uid = uid;
	tree_message_oid(fs->tree, folder, uidvalidity, uid, &k->oid);
}

/* Fills st for a file being created at path, of size bytes. */
void fsctx_newmsg_fill(struct fsmount *fs, const char *path, uint64_t size,
		       time_t mtime, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = tree_hash(path, strlen(path), TREE_HASH_SEED) | 2;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_nlink = 1;
	st->st_mode = fsctx_mode(fs, S_IFREG | 0644);
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_blksize = 4096;
	st->st_mtime = st->st_ctime = st->st_atime = mtime;
}

/* Fills st for a file being created at path; false if there is none. */
bool fsctx_newmsg_stat(struct fsmount *fs, const char *path, struct stat *st)
{
	uint64_t size;
	time_t mtime;

	if (!newmsg_stat(fs->newmsgs, path, &size, &mtime))
		return false;
	fsctx_newmsg_fill(fs, path, size, mtime, st);
	return true;
}

/*
 * Checks that a resolved directory can hold messages: a folder, not the
 * root or a \Noselect one. On failure info is cleared.
 */
int fsctx_holds_messages(struct tree_info *info)
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
int fsctx_new_name(struct fsmount *fs, const char *path, struct tree_info *dir)
{
	struct tree_info here;
	const char *base;
	char *dirpath;
	int rc;

	memset(dir, 0, sizeof(*dir));
	if (fsctx_resolve(fs, path, &here) == 0) {
		tree_info_clear(&here);
		return -EEXIST;
	}
	dirpath = fspath_dirname(path, &base);
	rc = dirpath ? fsctx_resolve(fs, dirpath, dir) : -ENOMEM;
	free(dirpath);
	return rc;
}

/* The size limit of a new message: -o max_append and the server's
 * APPENDLIMIT, whichever is smaller (0: none). */
uint64_t fsctx_append_limit(const struct fsmount *fs)
{
	uint64_t server = fs->cfg.store->ops->append_limit(fs->cfg.store);
	uint64_t mine = fs->cfg.max_append;

	if (!server)
		return mine;
	return mine && mine < server ? mine : server;
}

/* Logs what a folder list left out, one line per bound, when it differs
 * from what the last list left out (the list is asked again every
 * `refresh` seconds). */
static void fsctx_log_skipped(struct fsmount *fs, const struct tree_skipped *sk)
{
	if (!memcmp(sk, &fs->folders_skipped, sizeof(*sk)))
		return;
	fs->folders_skipped = *sk;
	if (sk->long_name)
		log_warnx("%zu folders not shown: a name over %u bytes",
			  sk->long_name, STORE_MAX_FOLDER_NAME);
	if (sk->deep)
		log_warnx("%zu folders not shown: deeper than %d levels",
			  sk->deep, TREE_MAX_DEPTH);
	if (sk->long_path)
		log_warnx("%zu folders not shown: a path over %d bytes",
			  sk->long_path, TREE_MAX_PATH);
	if (sk->over_budget)
		log_warnx("%zu folders not shown: the folder list reached "
			  "%u MiB",
			  sk->over_budget, TREE_MAX_FOLDER_BYTES >> 20);
}

int fsctx_refresh_folders(struct fsmount *fs, unsigned max_age)
{
	struct tree_skipped sk;
	struct store_folder *f;
	size_t n;
	int rc;

	if (!tree_begin_refresh(fs->tree, NULL, clock_mono(), max_age,
				(int)fs->cfg.timeout * 1000))
		return 0;
	rc = fs->cfg.store->ops->folders(fs->cfg.store, &f, &n);
	if (rc == 0) {
		rc = tree_set_folders(fs->tree, f, n, clock_mono(), &sk);
		store_folders_free(f, n);
		if (rc == 0)
			fsctx_log_skipped(fs, &sk);
	}
	tree_end_refresh(fs->tree, NULL);
	return rc;
}

/*
 * A message (msg) was moved to folder target, where the server gave it
 * uid under uidvalidity (0: not told): the tree shows it there at once
 * (under the name alias, or its own), and its body in the memory cache
 * follows it to the new key, so reading it there fetches nothing again.
 * When the new UID is unknown, target's listing is asked for anew.
 */
void fsctx_moved(struct fsmount *fs, const struct tree_info *msg,
		 const char *target, uint32_t uidvalidity, uint32_t uid,
		 const char *alias)
{
	/* A message with a content identity keeps it (RFC 8474: a move
	 * keeps the EMAILID): its body stays where it is. */
	struct cache_key from = {msg->folder_id, msg->uidvalidity, msg->uid,
				 msg->oid};
	struct cache_key to = {tree_folder_id(target), uidvalidity, uid,
			       msg->oid};
	struct store_msg sm = {0};

	tree_remove_message(fs->tree, msg->folder, msg->uidvalidity, msg->uid);
	if (uid && uidvalidity)
		cache_rekey(fs->cache, &from, &to);
	sm.uid = uid;
	sm.size = msg->listed_size;
	sm.idhash = msg->idhash;
	sm.oid = msg->oid;
	sm.date = msg->mtime;
	sm.flags = msg->flags;
	if (!uid ||
	    tree_add_message(fs->tree, target, uidvalidity, &sm, alias) < 0)
		tree_expire_listing(fs->tree, target);
}
