/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsll_priv: what fsll.c (requests) and fsll_node.c (the node table)
 * share. Not for other modules.
 */
#ifndef MAILFS_FSLL_PRIV_H
#define MAILFS_FSLL_PRIV_H

#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>

#include "fsll.h"

/* The requests counted for the status (fsll_format_requests()). */
enum fsll_op {
	FSLL_OP_LOOKUP,
	FSLL_OP_FORGET,
	FSLL_OP_GETATTR,
	FSLL_OP_SETATTR,
	FSLL_OP_READLINK,
	FSLL_OP_MKDIR,
	FSLL_OP_UNLINK,
	FSLL_OP_RMDIR,
	FSLL_OP_RENAME,
	FSLL_OP_LINK,
	FSLL_OP_OPEN,
	FSLL_OP_READ,
	FSLL_OP_WRITE,
	FSLL_OP_FLUSH,
	FSLL_OP_RELEASE,
	FSLL_OP_OPENDIR,
	FSLL_OP_READDIR,
	FSLL_OP_READDIRPLUS,
	FSLL_OP_RELEASEDIR,
	FSLL_OP_STATFS,
	FSLL_OP_SETXATTR,
	FSLL_OP_GETXATTR,
	FSLL_OP_LISTXATTR,
	FSLL_OP_REMOVEXATTR,
	FSLL_OP_CREATE,
	FSLL_OP_MAX
};

/* Stored node ids are below this; message inode numbers are not. */
#define FSLL_COMPUTED_MIN (1ull << 32)

/* A node the kernel holds that fsll must remember (see fsll.h). */
struct fsll_node {
	uint64_t id;
	uint64_t parent;
	uint64_t nlookup;
	bool unlinked; /* removed: out of by_name, found by id only */
	bool renamed; /* a message's own node id kept under a new name:
		       * its lookups were not counted, so the first FORGET
		       * ends it */
	UT_hash_handle hh_id;
	UT_hash_handle hh_name;
	size_t keylen;
	char key[]; /* parent id (8 bytes), then the name and a NUL */
};

/* A file or directory the kernel holds open (fsll_open_any, create),
 * until its release: what fsll_release_open() ends at exit. */
struct fsll_open {
	uint64_t fh; /* hash key: the open's handle (never 0 here) */
	fuse_ino_t ino;
	bool dir;
	struct fuse_file_info fi; /* as the open left it */
	UT_hash_handle hh;
};

/*
 * What an OPEN would have made, for reads served without one (no-open
 * mode, fsll_set_no_open()): the operation's open state of an inode,
 * made at its first read (or, for a file sized at open, its first
 * getattr) and kept for the next ones, so that a read's window keeps
 * growing and a virtual file's text stays the one its size was told
 * from. At most FSLL_RH_MAX (least recently used out first); one goes
 * when the kernel forgets its inode or mailfs invalidates it.
 */
struct fsll_rh {
	uint64_t ino; /* hash key */
	char *path; /* owned: as opened, for the release */
	struct fuse_file_info fi;
	unsigned refs; /* requests using it now */
	bool gone; /* out of the table: the last user releases it */
	long long made_ms; /* clock_now_ms() */
	unsigned long gen; /* which making (a sized file's mtime ns) */
	/* In the table's use order: newer, older (fsll.rh_newest). */
	struct fsll_rh *newer, *older;
	UT_hash_handle hh;
};

#define FSLL_RH_MAX 256
/* A file sized at open (a virtual file's text) is made again after this
 * at its next getattr: what it shows stays that fresh. */
#define FSLL_RH_SIZED_MS 1000

struct fsll {
	struct fuse_session *se;
	const struct fuse_operations *ops;
	void *private_data;
	fsll_resolve_fn resolve;
	fsll_ino_fn path_ino;
	void *resolve_ctx;
	double entry_timeout, attr_timeout;
	uid_t owner; /* the only user (with root) served */
	_Atomic uint64_t requests[FSLL_OP_MAX]; /* served, by kind */
	unsigned timeout_s; /* each request's deadline */
	pthread_mutex_t lock; /* the two tables, next_id and opens */
	struct fsll_node *by_id, *by_name;
	struct fsll_open *opens; /* uthash by fh */
	uint64_t next_id;
	/* No-open mode (fsll_set_no_open()); the handles, under lock. */
	bool no_open;
	bool (*sized_at_open)(const char *path);
	struct fsll_rh *rhs;
	/* The table's handles by last use: an eviction takes the oldest
	 * unused in O(1) when none is in use. */
	struct fsll_rh *rh_newest, *rh_oldest;
	_Atomic unsigned long rh_gen; /* mtime nanoseconds of a sized file */
};

/* The node table (fsll_node.c); the lock is held for each. */
struct fsll_node *fsll_node_find_name(struct fsll *ll, uint64_t parent,
				      const char *name);
struct fsll_node *fsll_node_find_id(struct fsll *ll, uint64_t id);
struct fsll_node *fsll_node_add(struct fsll *ll, uint64_t id, uint64_t parent,
				const char *name);
void fsll_node_drop(struct fsll *ll, struct fsll_node *n);
void fsll_node_unname(struct fsll *ll, struct fsll_node *n);
/* Paths of node ids (malloc'd), or NULL with *err_r (ESTALE, ENOMEM,
 * ENAMETOOLONG); each takes the lock itself where it needs it. */
char *fsll_node_path(struct fsll *ll, uint64_t id, int *err_r);
char *fsll_node_child_path(struct fsll *ll, uint64_t dir, const char *name,
			   int *err_r);
/* True when ino is a message inode number the resolver maps to path. */
bool fsll_node_computed(struct fsll *ll, uint64_t ino, const char *path);
/* The node id of path through the stored nodes, or 0. */
uint64_t fsll_node_path_id(struct fsll *ll, const char *path);

#endif
