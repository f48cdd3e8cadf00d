// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsvirt: what the virtual kinds share (see fsvirt.h): finding and
 * splitting a virtual path, their attributes, the folder they name, and
 * the snapshot a virtual directory lists.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "fsctx.h"
#include "fsvirt.h"
#include "names.h"
#include "store.h"
#include "tree.h"

/* Seeds the inode hash of virtual paths apart from the tree's. */
#define FSVIRT_INO_SEED (TREE_HASH_SEED ^ 0x7669727475616cull)
/* The most entries one virtual directory lists. */
#define FSVIRT_DIR_MAX 2000000u

/* Finds the first reserved component of path (names_reserved()), where
 * it starts and ends; false when path is an ordinary one. */
bool fsvirt_find_reserved(const char *path, size_t *start_r, size_t *end_r)
{
	size_t i = 0, n;

	if (!path)
		return false;
	while (path[i]) {
		while (path[i] == '/')
			i++;
		n = strcspn(path + i, "/");
		if (n && names_reserved(path + i, n)) {
			*start_r = i;
			*end_r = i + n;
			return true;
		}
		i += n;
	}
	return false;
}

/* Tells whether path is virtual, without allocating. */
bool fsvirt_is_virtual(const char *path)
{
	size_t a, b;

	return fsvirt_find_reserved(path, &a, &b);
}

/* Splits a virtual path, whose reserved component is [start, end), into
 * the real directory, the kind and the rest (see fsvirt.h). */
int fsvirt_split(const char *path, size_t start, size_t end,
		 const struct fsvirt_kind *k, struct fsvirt_path *p)
{
	size_t dlen, rlen;
	const char *rest;

	dlen = start;
	while (dlen > 1 && path[dlen - 1] == '/')
		dlen--;
	rest = path + end;
	while (*rest == '/')
		rest++;
	rlen = strlen(rest);
	while (rlen && rest[rlen - 1] == '/')
		rlen--;
	p->kind = k;
	p->path = path;
	p->dir = dlen <= 1 ? strdup("/") : strndup(path, dlen);
	p->rest = strndup(rest, rlen);
	if (!p->dir || !p->rest) {
		fsvirt_path_clear(p);
		return -ENOMEM;
	}
	return 1;
}

/* Frees what fsvnode_parse() allocated. */
void fsvirt_path_clear(struct fsvirt_path *p)
{
	free(p->dir);
	free(p->rest);
	p->dir = p->rest = NULL;
}

uint64_t fsvirt_ino(const char *path)
{
	return tree_hash(path, strlen(path), FSVIRT_INO_SEED) | 1;
}

/* Fills the fields every virtual node shares. */
static void fsvirt_stat_common(const struct fsmount *fs, const char *path,
			       time_t mtime, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = fsvirt_ino(path);
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	st->st_mtime = st->st_atime = mtime;
	st->st_ctime = fs->started;
}

/* A read-only directory of the mount's owner (fsvirt.h). */
void fsvirt_stat_dir(const struct fsmount *fs, const char *path, time_t mtime,
		     struct stat *st)
{
	fsvirt_stat_common(fs, path, mtime, st);
	st->st_mode = fsctx_mode(fs, S_IFDIR | 0555);
	st->st_nlink = 2;
}

/* A read-only regular file of the mount's owner (fsvirt.h). */
void fsvirt_stat_file(const struct fsmount *fs, const char *path, uint64_t size,
		      time_t mtime, struct stat *st)
{
	fsvirt_stat_common(fs, path, mtime, st);
	st->st_mode = fsctx_mode(fs, S_IFREG | 0444);
	st->st_nlink = 1;
	st->st_size = (off_t)size;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
}

/* A symlink of the mount's owner (fsvirt.h). */
void fsvirt_stat_link(const struct fsmount *fs, const char *path, uint64_t size,
		      time_t mtime, struct stat *st)
{
	fsvirt_stat_common(fs, path, mtime, st);
	st->st_mode = S_IFLNK | 0777;
	st->st_nlink = 1;
	st->st_size = (off_t)size;
}

/* Resolves a kind's directory as a folder with messages (fsvirt.h). */
int fsvirt_folder(struct fsmount *fs, const char *dir, struct tree_info *info)
{
	struct store_listing state;
	int rc = fsctx_resolve(fs, dir, info);

	if (rc < 0)
		return rc;
	if (info->kind == TREE_ROOT && tree_has_folder(fs->tree, "")) {
		/* A flat store keeps its messages in the root. */
		free(info->folder);
		info->kind = TREE_FOLDER;
		info->folder = strdup("");
		if (!info->folder)
			return -ENOMEM;
	}
	if (info->kind != TREE_FOLDER ||
	    (info->attrs & STORE_FOLDER_NOSELECT)) {
		tree_info_clear(info);
		return -ENOENT;
	}
	rc = fsctx_refresh_listing(fs, info->folder, fs->cfg.refresh);
	if (!tree_listing_state(fs->tree, info->folder, &state)) {
		tree_info_clear(info);
		return rc < 0 ? rc : -EIO;
	}
	info->uidvalidity = state.uidvalidity;
	return 0;
}

/* Adds one entry to a listing being made; plus: with its attributes
 * for the kernel. */
static int fsvirt_dir_put(struct fsvirt_dir *d, const char *name,
			  const struct stat *st, bool plus)
{
	struct fsvirt_entry *ne;

	if (d->n >= FSVIRT_DIR_MAX)
		return -ENOMEM;
	ne = grow_reserve(d->e, &d->cap, d->n + 1, sizeof(*ne));
	if (!ne)
		return -ENOMEM;
	d->e = ne;
	d->e[d->n].name = strdup(name);
	if (!d->e[d->n].name)
		return -ENOMEM;
	d->e[d->n].st = *st;
	d->e[d->n].plus = plus;
	d->n++;
	return 0;
}

int fsvirt_dir_add(struct fsvirt_dir *d, const char *name,
		   const struct stat *st)
{
	return fsvirt_dir_put(d, name, st, true);
}

int fsvirt_dir_add_bare(struct fsvirt_dir *d, const char *name,
			const struct stat *st)
{
	return fsvirt_dir_put(d, name, st, false);
}

/* Frees a virtual directory's snapshot. */
void fsvirt_dir_free(struct fsvirt_dir *d)
{
	size_t i;

	if (!d)
		return;
	for (i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	free(d);
}

struct fsvirt_dir *fsvirt_dir_new(void)
{
	return calloc(1, sizeof(struct fsvirt_dir));
}

/* readdir from a snapshot, with offsets (1 ".", 2 "..", 3 + i entry i)
 * and full attributes, except for entries added bare. */
int fsvirt_dir_fill(const struct fsvirt_dir *d, void *buf, fuse_fill_dir_t fill,
		    off_t off, const struct stat *dot,
		    const struct stat *dotdot)
{
	size_t i;

	if (off < 1 && fill(buf, ".", dot, 1, FUSE_FILL_DIR_PLUS))
		return 0;
	if (off < 2 && fill(buf, "..", dotdot, 2, FUSE_FILL_DIR_PLUS))
		return 0;
	for (i = off > 2 ? (size_t)off - 2 : 0; i < d->n; i++)
		if (fill(buf, d->e[i].name, &d->e[i].st, (off_t)i + 3,
			 d->e[i].plus ? FUSE_FILL_DIR_PLUS : 0))
			break;
	return 0;
}
