// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsdir: directory listings. opendir takes a snapshot of the directory
 * (refreshing a stale listing first), so that each readdir call resumes
 * at its offset in O(1): listing a folder costs O(n) however many calls
 * the kernel makes, and a listing that changes between two calls can
 * neither skip nor repeat an entry. Entries carry offsets (1, 2, ...):
 * with offsets, fsll hands their attributes to the kernel along with
 * the names (readdirplus), so `ls -l` needs no lookup per file. Also the
 * tree's answers fsll asks for about message inode numbers.
 */
#include <errno.h>
#include <fuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "fsops_priv.h"
#include "log.h"
#include "fsvirt.h"
#include "names.h"
#include "newmsg.h"
#include "store.h"

/* Logs what a folder list left out, one line per bound, when it differs
 * from what the last list left out (the list is asked again every
 * `refresh` seconds). */
static void fsdir_log_skipped(struct fsops *fs, const struct tree_skipped *sk)
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

int fsdir_refresh_folders(struct fsops *fs, unsigned max_age)
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
			fsdir_log_skipped(fs, &sk);
	}
	tree_end_refresh(fs->tree, NULL);
	return rc;
}

/* One entry of a snapshot, compact: its name lives in the snapshot's
 * name arena. */
struct fsdir_entry {
	uint64_t ino;
	uint64_t size;
	int64_t mtime;
	uint32_t name; /* offset in names */
	uint32_t nlink;
	uint8_t kind; /* enum tree_kind: TREE_FOLDER or TREE_MESSAGE */
	uint8_t is_new; /* a file being created */
};

struct fsdir_snap {
	struct fsops *fs;
	struct fsdir_entry *e; /* owned */
	size_t n, cap;
	char *names; /* owned: NUL-separated */
	size_t nlen, ncap;
	bool nomem;
};

/* Appends one entry; on failure marks the snapshot. */
static void fsdir_add(struct fsdir_snap *d, const char *name,
		      const struct fsdir_entry *e)
{
	size_t len = strlen(name) + 1;

	/* Reachable by name only (fsvirt.h): never listed, so that find,
	 * rsync, tar and du do not walk into them. */
	if (d->nomem || names_reserved(name, len - 1))
		return;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct fsdir_entry *ne = realloc(d->e, cap * sizeof(*ne));

		if (!ne)
			goto nomem;
		d->e = ne;
		d->cap = cap;
	}
	if (d->nlen + len > d->ncap) {
		size_t cap = d->ncap ? d->ncap * 2 : 4096;
		char *nn;

		while (cap < d->nlen + len)
			cap *= 2;
		if (cap > UINT32_MAX || !(nn = realloc(d->names, cap)))
			goto nomem;
		d->names = nn;
		d->ncap = cap;
	}
	memcpy(d->names + d->nlen, name, len);
	d->e[d->n] = *e;
	d->e[d->n].name = (uint32_t)d->nlen;
	d->nlen += len;
	d->n++;
	return;
nomem:
	d->nomem = true;
}

/* tree_readdir()'s callback (the tree's lock is held: memory only). */
static int fsdir_fill_tree(void *ctx, const char *name,
			   const struct tree_info *info)
{
	struct fsdir_entry e = {
		.ino = info->ino,
		.size = info->size,
		.mtime = info->mtime,
		.nlink = info->nlink,
		.kind = (uint8_t)info->kind,
	};

	fsdir_add(ctx, name, &e);
	return 0;
}

/* newmsg_list()'s callback: a file being created. */
static void fsdir_fill_new(void *ctx, const char *name, uint64_t size,
			   time_t mtime)
{
	struct fsdir_entry e = {
		.size = size,
		.mtime = mtime,
		.nlink = 1,
		.kind = TREE_MESSAGE,
		.is_new = 1,
	};

	fsdir_add(ctx, name, &e);
}

static void fsdir_free(struct fsdir_snap *d)
{
	if (!d)
		return;
	free(d->e);
	free(d->names);
	free(d);
}

/* Resolves the directory at path, refreshing its listing when stale;
 * *folder_r gets the server name of a folder holding messages (or NULL).
 * Returns 0 or -errno. */
static int fsdir_prepare(struct fsops *fs, const char *path, char **folder_r)
{
	struct tree_info info;
	int rc;

	*folder_r = NULL;
	rc = fsops_resolve(fs, path, &info);
	if (rc < 0)
		return rc;
	if (info.kind == TREE_MESSAGE) {
		tree_info_clear(&info);
		return -ENOTDIR;
	}
	if (info.kind == TREE_ROOT && tree_has_folder(fs->tree, "")) {
		/* A flat store keeps its messages in the root. */
		info.kind = TREE_FOLDER;
		info.folder = strdup("");
		if (!info.folder)
			return -ENOMEM;
	}
	if (info.kind == TREE_FOLDER && !(info.attrs & STORE_FOLDER_NOSELECT)) {
		rc = fsops_refresh_listing(fs, info.folder, fs->cfg.refresh);
		if (rc < 0 && !tree_listing_state(fs->tree, info.folder,
						  &(struct store_listing){0})) {
			tree_info_clear(&info);
			return rc;
		}
	}
	if (info.kind == TREE_FOLDER) {
		*folder_r = info.folder;
		info.folder = NULL;
	}
	tree_info_clear(&info);
	return 0;
}

int fsdir_open(const char *path, struct fuse_file_info *fi)
{
	struct fsops *fs = fsops_get();
	struct fsdir_snap *d;
	char *folder;
	int rc;

	newmsg_sweep(fs->newmsgs, fs->cfg.temp_idle);
	rc = fsdir_prepare(fs, path, &folder);
	if (rc < 0)
		return rc;
	d = calloc(1, sizeof(*d));
	if (!d) {
		free(folder);
		return -ENOMEM;
	}
	d->fs = fs;
	rc = tree_readdir(fs->tree, path, fsdir_fill_tree, d);
	if (rc == 0 && folder)
		newmsg_list(fs->newmsgs, path, fsdir_fill_new, d);
	free(folder);
	if (rc == 0 && d->nomem)
		rc = -ENOMEM;
	if (rc < 0) {
		fsdir_free(d);
		return rc;
	}
	fi->fh = (uintptr_t)d;
	return 0;
}

/* The stat of one snapshot entry; path is the directory's. A file being
 * created is filled from its path, on the heap (no stack array sized by
 * a name); without memory it gets the snapshot's size and date. */
static void fsdir_stat(struct fsdir_snap *d, const char *path,
		       const struct fsdir_entry *e, struct stat *st)
{
	struct tree_info info = {
		.kind = e->kind,
		.ino = e->ino,
		.size = e->size,
		.mtime = (time_t)e->mtime,
		.nlink = e->nlink,
	};
	const char *name = d->names + e->name;
	char *full;

	if (e->is_new && asprintf(&full, "%s/%s", path, name) >= 0) {
		fsops_newmsg_fill(d->fs, full, e->size, (time_t)e->mtime, st);
		free(full);
		return;
	}
	fsops_stat(d->fs, &info, st);
}

/* The inode number stat shows for the directory at path (memory only;
 * 1, the root's, when the tree no longer has it). */
static uint64_t fsdir_ino(struct fsops *fs, const char *path)
{
	struct tree_info info;
	uint64_t ino = 1;

	if (fsvirt_is_virtual(path))
		return fsvirt_ino(path);
	if (tree_lookup(fs->tree, path, clock_mono(), UINT_MAX, &info) ==
		    TREE_FOLDER ||
	    info.kind == TREE_ROOT)
		ino = info.ino;
	tree_info_clear(&info);
	return ino;
}

void fsdir_dots(struct fsops *fs, const char *path, struct stat *dot,
		struct stat *dotdot)
{
	const char *base;
	char *parent = fsops_dirname(path, &base);

	memset(dot, 0, sizeof(*dot));
	memset(dotdot, 0, sizeof(*dotdot));
	dot->st_mode = dotdot->st_mode = S_IFDIR;
	dot->st_ino = fsdir_ino(fs, path);
	dotdot->st_ino = parent ? fsdir_ino(fs, parent) : 1;
	free(parent);
}

int fsdir_read(const char *path, void *buf, fuse_fill_dir_t filler,
	       off_t offset, struct fuse_file_info *fi,
	       enum fuse_readdir_flags flags)
{
	struct fsdir_snap *d = (struct fsdir_snap *)(uintptr_t)fi->fh;
	struct stat dot, dotdot;
	struct stat st;
	size_t i;

	(void)flags;
	if (!d)
		return -EBADF;
	/* Offsets: 1 is ".", 2 is "..", 3 + i is entry i. Each carries
	 * its inode number: glibc's readdir skips an entry of inode 0. */
	if (offset < 2)
		fsdir_dots(d->fs, path, &dot, &dotdot);
	if (offset < 1 && filler(buf, ".", &dot, 1, FUSE_FILL_DIR_PLUS))
		return 0;
	if (offset < 2 && filler(buf, "..", &dotdot, 2, FUSE_FILL_DIR_PLUS))
		return 0;
	for (i = offset > 2 ? (size_t)offset - 2 : 0; i < d->n; i++) {
		fsdir_stat(d, path, &d->e[i], &st);
		if (filler(buf, d->names + d->e[i].name, &st, (off_t)i + 3,
			   FUSE_FILL_DIR_PLUS))
			break;
	}
	return 0;
}

int fsdir_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	fsdir_free((struct fsdir_snap *)(uintptr_t)fi->fh);
	fi->fh = 0;
	return 0;
}

size_t fsdir_ino_path(void *ctx, uint64_t ino, char *buf, size_t size)
{
	struct fsops *fs = ctx;

	return tree_ino_path(fs->tree, ino, buf, size);
}

uint64_t fsdir_path_ino(void *ctx, const char *path)
{
	struct fsops *fs = ctx;
	struct tree_info info;
	uint64_t ino = 0;

	if (tree_lookup(fs->tree, path, clock_mono(), UINT_MAX, &info) ==
	    TREE_MESSAGE)
		ino = info.ino;
	tree_info_clear(&info);
	return ino;
}

/*
 * A message (msg) was moved to folder target, where the server gave it
 * uid under uidvalidity (0: not told): the tree shows it there at once
 * (under the name alias, or its own), and its body in the memory cache
 * follows it to the new key, so reading it there fetches nothing again.
 * When the new UID is unknown, target's listing is asked for anew.
 */
void fsdir_moved(struct fsops *fs, const struct tree_info *msg,
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
