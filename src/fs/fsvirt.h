/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsvirt: the mount's virtual names, and what their kinds share. A path whose components include one of the reserved
 * names (names_reserved(): ".search", ".parts", ".summary") is virtual:
 *
 *   DIR/.parts/NAME/PART           DIR/.summary
 *   DIR/.search/QUERY/NAME         /.search/QUERY/FOLDER.../NAME
 *
 * DIR is a real directory of the mount ("/" for the root); the first
 * reserved component found, left to right, decides the kind. Each kind
 * is a small table of operations (struct fsvirt_kind), so that a kind
 * is added without touching the operations of the others; fsvnode.c
 * serves them as one kind of node. Every change to a virtual path
 * (create, mkdir, unlink, rename, setxattr, truncate, utimens, chmod,
 * ...) is EROFS (fsnode.c).
 * Real directories never list a reserved name: folders of such a name
 * on the server are shown escaped ("%2Esearch", names.h), and a file
 * cannot be created under one.
 */
#ifndef MAILFS_FSVIRT_H
#define MAILFS_FSVIRT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <fuse.h>

struct fsmount;
struct fsvirt_dir;

/* A virtual path, split by fsvnode_parse(). */
struct fsvirt_path {
	const struct fsvirt_kind *kind; /* borrowed: a static table */
	char *dir; /* owned: the real directory holding the reserved
		    * name: "/" or "/A/B" (no trailing '/') */
	char *rest; /* owned: what follows the reserved component, ""
		     * for the component itself, else "X" or "X/Y/..."
		     * (no leading or trailing '/') */
	const char *path; /* borrowed: the whole path as FUSE gave it */
};

/*
 * One kind of virtual node. Every operation gets the mount (fs) and the
 * parsed path, and returns 0 (or a byte count) or a negative errno;
 * each must return within the request's deadline (clock.h). An
 * operation left NULL gives: getattr ENOENT, list ENOTDIR, open EISDIR
 * (on a directory) or ENOENT, readlink EINVAL, getxattr ENODATA,
 * listxattr an empty list.
 */
struct fsvirt_kind {
	const char *name; /* the reserved component: ".parts" */
	int (*getattr)(struct fsmount *fs, const struct fsvirt_path *p,
		       struct stat *st);
	/* opendir: adds the directory's entries to d (fsvirt_dir_add());
	 * fsvirt keeps the snapshot until releasedir and serves readdir
	 * from it, "." and ".." included. */
	int (*list)(struct fsmount *fs, const struct fsvirt_path *p,
		    struct fsvirt_dir *d);
	/* open (read-only; writes are refused before): *file_r gets the
	 * kind's handle, passed to read and release. May set
	 * fi->direct_io or fi->keep_cache. */
	int (*open)(struct fsmount *fs, const struct fsvirt_path *p,
		    struct fuse_file_info *fi, void **file_r);
	int (*read)(struct fsmount *fs, void *file, char *buf, size_t size,
		    off_t off);
	/* fstat of an open file (NULL: getattr by path). */
	int (*fgetattr)(struct fsmount *fs, void *file, struct stat *st);
	void (*release)(struct fsmount *fs, void *file);
	/* A symlink's target, NUL-terminated, cut to size. */
	int (*readlink)(struct fsmount *fs, const struct fsvirt_path *p,
			char *buf, size_t size);
	int (*getxattr)(struct fsmount *fs, const struct fsvirt_path *p,
			const char *name, char *value, size_t size);
	int (*listxattr)(struct fsmount *fs, const struct fsvirt_path *p,
			 char *list, size_t size);
	/* Its files' size is known only once open (a text made at open):
	 * on a mount without OPEN (fsll_set_no_open()) their getattr is
	 * told through an open file. */
	bool sized_at_open;
};

/* Finds the first reserved component of path: where it starts and
 * ends; false when path is an ordinary one. Pure. */
bool fsvirt_find_reserved(const char *path, size_t *start_r, size_t *end_r);
/* Fills *p for path, whose first reserved component [start, end) is of
 * kind k: 1, or -ENOMEM. */
int fsvirt_split(const char *path, size_t start, size_t end,
		 const struct fsvirt_kind *k, struct fsvirt_path *p);
void fsvirt_path_clear(struct fsvirt_path *p);
/* True when path is virtual (no allocation). */
bool fsvirt_is_virtual(const char *path);
/* The inode number a virtual path shows: a stable hash of it. */
uint64_t fsvirt_ino(const char *path);

/* Stat helpers for the kinds: a read-only directory or regular file of
 * the mount's owner; the inode is a stable hash of path. */
void fsvirt_stat_dir(const struct fsmount *fs, const char *path, time_t mtime,
		     struct stat *st);
void fsvirt_stat_file(const struct fsmount *fs, const char *path, uint64_t size,
		      time_t mtime, struct stat *st);
void fsvirt_stat_link(const struct fsmount *fs, const char *path, uint64_t size,
		      time_t mtime, struct stat *st);

/*
 * Resolves dir (a kind's p->dir) as a folder that holds messages, its
 * listing refreshed when stale: info gets the folder (server name;
 * "" for a flat store's root), its uidvalidity and mtime (release with
 * tree_info_clear(), which is safe after any return: info is always
 * initialised). -ENOENT when dir is no such folder.
 */
struct tree_info;
int fsvirt_folder(struct fsmount *fs, const char *dir, struct tree_info *info);

/* Adds an entry to a listing being made (list): name is copied. 0 or
 * -ENOMEM. fsvirt_dir_add_bare() lists it without its attributes (only
 * st's inode number and type go with the name): the kernel then asks
 * getattr when it is stat'ed, for an entry whose size the listing does
 * not know exactly (the kernel cuts reads at the size it was told). */
int fsvirt_dir_add(struct fsvirt_dir *d, const char *name,
		   const struct stat *st);
int fsvirt_dir_add_bare(struct fsvirt_dir *d, const char *name,
			const struct stat *st);

/* A virtual directory's snapshot (fsvnode.c makes and lists it; the
 * kinds' list adds to it). */
struct fsvirt_entry {
	char *name; /* owned */
	struct stat st;
	bool plus; /* st goes to the kernel with the name (readdirplus) */
};
struct fsvirt_dir {
	struct fsvirt_entry *e; /* owned */
	size_t n, cap;
};
struct fsvirt_dir *fsvirt_dir_new(void);
void fsvirt_dir_free(struct fsvirt_dir *d);
/* readdir from d: ".", "..", then its entries, from offset off. */
int fsvirt_dir_fill(const struct fsvirt_dir *d, void *buf, fuse_fill_dir_t fill,
		    off_t off, const struct stat *dot,
		    const struct stat *dotdot);

#endif
