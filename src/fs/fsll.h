/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsll: mailfs on libfuse's low-level API. The kernel names files by
 * node id; mailfs' operations (fsvirt's table, struct fuse_operations)
 * take paths. fsll keeps the node ids the kernel holds and turns each
 * request's node id into a path, as libfuse's high-level layer does,
 * but it does not keep a node for every file the kernel knows:
 *
 *   - a message whose inode number the tree maps back to the same path
 *     (fsll_resolve_fn, tree_ino_path()) gets that inode number as its
 *     node id, and nothing is stored for it: its path is asked for again
 *     at each request. That is every listed message of an ordinary
 *     folder, so a listing of 100,000 messages costs no node at all;
 *   - everything else (the root's children, folders, files being
 *     written, virtual paths, a message under a second name, any name
 *     whose inode number is ambiguous) gets a stored node with a node id
 *     below 2^32, which message inode numbers never are, counted by the
 *     kernel's lookups and freed at FORGET;
 *   - a message renamed through the mount keeps its node id under the
 *     new name in a stored node, until the kernel forgets it.
 *
 * READ and WRITE build no path: they come on a handle (an open's, or in
 * no-open mode the one kept per inode, made through the path the first
 * time), which knows its file.
 *
 * Each request is checked and timed once, here: only the owner (the
 * user mailfs runs as) and root are served, others get EACCES; and the
 * request gets one deadline, `timeout` seconds, for all the operations
 * it runs. fsll gives the operations the request's caller through
 * fsll_context(), the high-level fuse_get_context()'s counterpart.
 */
#ifndef MAILFS_FSLL_H
#define MAILFS_FSLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <fuse.h>

struct fuse_args;
struct fuse_session;
struct fsll;

/* Writes the path ("/F/NAME") of the message whose inode number is ino
 * into buf (size bytes, NUL-terminated) and returns its length; 0 when
 * it names no listed message (or not one only), or the path does not
 * fit. Memory only: must not block on the network. */
typedef size_t (*fsll_resolve_fn)(void *ctx, uint64_t ino, char *buf,
				  size_t size);
/* The inode number of the message at path, 0 if none is listed there;
 * memory only (for invalidations, outside any request). */
typedef uint64_t (*fsll_ino_fn)(void *ctx, const char *path);

/*
 * A low-level session serving ops (path based; init's fuse_config gives
 * the timeouts) with private_data as the context's private_data, after
 * FUSE's own options in args are checked; each request must end within
 * timeout_s seconds; resolve and path_ino get resolve_ctx. NULL when
 * the options are wrong (libfuse printed why) or out of memory.
 */
struct fsll *fsll_new(struct fuse_args *args, const struct fuse_operations *ops,
		      void *private_data, unsigned timeout_s,
		      fsll_resolve_fn resolve, fsll_ino_fn path_ino,
		      void *resolve_ctx);
struct fuse_session *fsll_session(struct fsll *ll);
/*
 * No-open mode, for a read-only mount: OPEN and FLUSH are answered
 * ENOSYS (once each: the kernel then sends no OPEN, RELEASE or FLUSH
 * for files on this connection, and keeps their pages between opens),
 * and a READ that comes without a handle is served through the state
 * the operation's open makes, kept per inode (at most 256, the least
 * recently used out first; dropped when the kernel forgets the inode or
 * it is invalidated). A file sized_at_open() says is sized only once
 * open (a virtual file's text) has its getattr told through that state,
 * made anew when more than a second old, with attributes the kernel
 * may not keep (every read asks again). Directories keep OPENDIR.
 */
void fsll_set_no_open(struct fsll *ll, bool (*sized_at_open)(const char *path));
/* Asks the kernel to drop what it caches of path's inode (attributes,
 * pages, a directory's listing); 0, or a negative errno such as -ENOENT
 * when the kernel holds no inode for it. Not from inside a request on
 * that inode. */
int fsll_invalidate_path(struct fsll *ll, const char *path);
/*
 * Puts the first len bytes of the file whose inode number is ino into
 * the kernel's page cache (FUSE_NOTIFY_STORE), so that reads of them
 * send no request; not while a handle open for writing holds ino (its
 * writer's bytes are not these): -EBUSY then. 0, or a negative errno
 * such as -ENOENT when the kernel holds no such inode. No lock is held
 * meanwhile: the kernel may wait for a READ of the same page in flight.
 */
int fsll_store(struct fsll *ll, uint64_t ino, const void *data, size_t len);
/* Asks the kernel to forget the name `name` in the directory at dir
 * (the name went, or names another file now); 0, or a negative errno
 * such as -ENOENT when the kernel holds no such directory or name. Not
 * from inside a request on that directory. */
int fsll_invalidate_entry(struct fsll *ll, const char *dir, const char *name);
/* The requests served so far, by kind, as "LOOKUP:3 READ:10" (kinds
 * never served left out) into buf; its length (the status's
 * fuse_requests). */
size_t fsll_format_requests(struct fsll *ll, char *buf, size_t size);
/* How many nodes are stored (the status's fuse_nodes). */
size_t fsll_stored_nodes(struct fsll *ll);
/*
 * Once the session has ended: releases what the kernel still held open
 * and can no longer release (a reader's file when mailfs stopped), as
 * its release would have, in the calling thread. A file open for
 * writing is left as it is: its release would store what may be half
 * written. Before the store and the operations' state are freed.
 */
void fsll_release_open(struct fsll *ll);
/* Destroys the session (unmount first) and every node. */
void fsll_free(struct fsll *ll);

/* The calling request's caller and the mount's private data (valid in a
 * request thread, and in init). */
struct fuse_context *fsll_context(void);

#endif
