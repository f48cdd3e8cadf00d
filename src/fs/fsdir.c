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

#include "grow.h"
#include "clock.h"
#include "fsctx.h"
#include "fsdir.h"
#include "fsedit.h"
#include "fsmsg.h"
#include "fskind.h"
#include "fspath.h"
#include "fsll.h"
#include "log.h"
#include "fsvirt.h"
#include "names.h"
#include "newmsg.h"
#include "store.h"

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
	const struct fskind *kind; /* first: see fsnode.h */
	struct fsmount *fs;
	struct fsdir_entry *e; /* owned */
	size_t n, cap;
	char *names; /* owned: NUL-separated */
	size_t nlen, ncap;
	bool nomem;
	uint64_t folder_id; /* a folder's (0: the root) */
};

/* Appends one entry; on failure marks the snapshot. */
static void fsdir_add(struct fsdir_snap *d, const char *name,
		      const struct fsdir_entry *e)
{
	size_t len = strlen(name) + 1;
	struct fsdir_entry *ne;
	char *nn;

	/* Reachable by name only (fsvirt.h): never listed, so that find,
	 * rsync, tar and du do not walk into them. */
	if (d->nomem || names_reserved(name, len - 1))
		return;
	ne = grow_reserve(d->e, &d->cap, d->n + 1, sizeof(*ne));
	if (!ne)
		goto nomem;
	d->e = ne;
	/* names are found by a 32-bit offset */
	if (d->nlen + len > UINT32_MAX)
		goto nomem;
	nn = grow_reserve(d->names, &d->ncap, d->nlen + len, 1);
	if (!nn)
		goto nomem;
	d->names = nn;
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

/* Takes the directory node resolved (info, cleared), refreshing its
 * listing when stale;
 * *folder_r gets the server name of a folder holding messages (or NULL).
 * Returns 0 or -errno. */
static int fsdir_prepare(struct fsmount *fs, struct tree_info *node,
			 char **folder_r)
{
	struct tree_info info = *node;
	int rc;

	memset(node, 0, sizeof(*node)); /* info owns what node did */
	*folder_r = NULL;
	if (info.kind == TREE_ROOT && tree_has_folder(fs->tree, "")) {
		/* A flat store keeps its messages in the root. */
		info.kind = TREE_FOLDER;
		info.folder = strdup("");
		if (!info.folder)
			return -ENOMEM;
	}
	if (info.kind == TREE_FOLDER && !(info.attrs & STORE_FOLDER_NOSELECT)) {
		rc = fsctx_refresh_listing(fs, info.folder, fs->cfg.refresh);
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

/* opendir of the root or a folder: a snapshot of its listing. */
int fsdir_open(struct fsnode *n, struct fuse_file_info *fi)
{
	struct fsmount *fs = n->fs;
	const char *path = n->path;
	struct fsdir_snap *d;
	char *folder;
	int rc;

	newmsg_sweep(fs->newmsgs, fs->cfg.temp_idle);
	rc = fsdir_prepare(fs, &n->info, &folder);
	if (rc < 0)
		return rc;
	d = calloc(1, sizeof(*d));
	if (!d) {
		free(folder);
		return -ENOMEM;
	}
	d->kind = n->kind;
	d->fs = fs;
	rc = tree_readdir(fs->tree, path, fsdir_fill_tree, d);
	if (rc == 0 && folder) {
		newmsg_list(fs->newmsgs, path, fsdir_fill_new, d);
		d->folder_id = tree_folder_id(folder);
	}
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
		fsctx_newmsg_fill(d->fs, full, e->size, (time_t)e->mtime, st);
		free(full);
		return;
	}
	fsctx_stat(d->fs, &info, st);
}

/* The inode number stat shows for the directory at path (memory only;
 * 1, the root's, when the tree no longer has it). */
static uint64_t fsdir_ino(struct fsmount *fs, const char *path)
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

void fsdir_dots(struct fsmount *fs, const char *path, struct stat *dot,
		struct stat *dotdot)
{
	const char *base;
	char *parent = fspath_dirname(path, &base);

	memset(dot, 0, sizeof(*dot));
	memset(dotdot, 0, sizeof(*dotdot));
	dot->st_mode = dotdot->st_mode = S_IFDIR;
	dot->st_ino = fsdir_ino(fs, path);
	dotdot->st_ino = parent ? fsdir_ino(fs, parent) : 1;
	free(parent);
}

/* readdir from the snapshot opendir took. */
int fsdir_read(struct fsmount *fs, const char *path, void *buf,
	       fuse_fill_dir_t filler, off_t offset, struct fuse_file_info *fi,
	       enum fuse_readdir_flags flags)
{
	struct fsdir_snap *d = (struct fsdir_snap *)(uintptr_t)fi->fh;
	struct stat dot, dotdot;
	struct stat st;
	size_t i;

	(void)fs;
	(void)flags;
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
	if (i == d->n && d->folder_id) {
		/* Listed to its end: what this process reads next there
		 * is likely the folder, message after message. */
		pthread_mutex_lock(&d->fs->scan_lock);
		d->fs->listed_folder = d->folder_id;
		d->fs->listed_pid = fsll_context()->pid;
		d->fs->listed_ms = clock_now_ms();
		pthread_mutex_unlock(&d->fs->scan_lock);
	}
	return 0;
}

void fsdir_release(struct fsmount *fs, struct fuse_file_info *fi)
{
	(void)fs;
	fsdir_free((struct fsdir_snap *)(uintptr_t)fi->fh);
	fi->fh = 0;
}

size_t fsdir_ino_path(void *ctx, uint64_t ino, char *buf, size_t size)
{
	struct fsmount *fs = ctx;

	return tree_ino_path(fs->tree, ino, buf, size);
}

uint64_t fsdir_path_ino(void *ctx, const char *path)
{
	struct fsmount *fs = ctx;
	struct tree_info info;
	uint64_t ino = 0;

	if (tree_lookup(fs->tree, path, clock_mono(), UINT_MAX, &info) ==
	    TREE_MESSAGE)
		ino = info.ino;
	tree_info_clear(&info);
	return ino;
}

/* EBUSY: the root is not removed. */
static int fsdir_ebusy(struct fsnode *n)
{
	(void)n;
	return -EBUSY;
}

/* The mount's root: the top-level folders (or a flat store's
 * messages). */
const struct fskind fsdir_root_kind = {
	.name = "root",
	FSDIR_OPS,
	.rmdir = fsdir_ebusy,
};

/* A folder of the default layout: its messages and subfolders. */
const struct fskind fsdir_folder_kind = {
	.name = "folder",
	FSDIR_OPS,
	.rmdir = fsedit_rmdir,
	.rename = fsedit_rename_folder,
};
