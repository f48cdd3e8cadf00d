/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsmount: the mount object (struct fsmount, fsstate.h): its life, apart
 * from the operations on its nodes (fsnode.h). main makes it, gives it
 * its store and session, and frees it.
 */
#ifndef MAILFS_FSMOUNT_H
#define MAILFS_FSMOUNT_H

#include "fsconfig.h"

struct fsll;
struct fsmount;
struct fuse_config;
struct fuse_conn_info;
struct store;

struct fsmount *fsmount_new(const struct fsmount_config *cfg);
/* Gives the mount its store, once logged in (fsmount_new() comes first,
 * so that FUSE checks the options before any connection). */
void fsmount_set_store(struct fsmount *fs, struct store *store);
/* Tells the mount its FUSE session, so that it can invalidate the
 * kernel's caches; starts the threads that do so and read ahead. */
int fsmount_start(struct fsmount *fs, struct fsll *ll);
/* The store is ready (its disk cache open): the folder list is asked
 * for in the background now, when older than `refresh`, so that the
 * mount's first lookup finds it instead of waiting a round trip. */
void fsmount_ready(struct fsmount *fs);
/* The mount is ending (a signal or the unmount), the FUSE loop still
 * serving: stops what must not outlive the loop (pages put into the
 * kernel's page cache wait for READs of them in flight). */
void fsmount_stopping(struct fsmount *fs);
/* Stops those threads; call before the FUSE session is destroyed. */
void fsmount_stop(struct fsmount *fs);
void fsmount_free(struct fsmount *fs);
/* FUSE's init: the connection's capabilities and the kernel's cache
 * timeouts. */
void *fsmount_init(struct fuse_conn_info *conn, struct fuse_config *cfg);

#endif
