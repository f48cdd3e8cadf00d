/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsloop: serves a FUSE session until it is unmounted or a signal
 * (SIGINT, SIGTERM, SIGHUP) asks mailfs to stop, and says so at once.
 *
 * libfuse's loop returns only after every request being served has
 * finished, and a request may be waiting on the network for up to
 * `timeout`. So a watcher thread waits beside the loop for either end:
 * a signal (its handler wakes the watcher through a pipe; the watcher
 * ends the session once `stopping` returned, so that the loop still
 * serves what stopping may wait for) or the unmount (e.g. fusermount3 -u: the first worker whose
 * read of the FUSE device fails with ENODEV wakes the watcher through
 * the same pipe; the watcher does not poll the device, since the kernel
 * wakes every poller of it at each request, but looks at it once a
 * second in case every worker is busy). It then
 * calls `stopping` once, in its own thread, while the loop is still
 * winding down: the caller cuts what those requests wait for (network
 * I/O, see net_stop_all()) and tells others that the mount is exiting.
 */
#ifndef MAILFS_FSLOOP_H
#define MAILFS_FSLOOP_H

#include <stdbool.h>

struct fuse_session;

/*
 * Installs the signal handlers (SIGPIPE ignored), serves se until it
 * ends (multithreaded, up to 16 threads, or single-threaded), then
 * removes the handlers. stopping(ctx) is called exactly once: when a
 * signal or the unmount is seen, or, if the loop ended another way, just
 * before returning. 0 after a signal or an unmount, negative on an
 * error of the loop.
 */
int fsloop_run(struct fuse_session *se, bool single_thread,
	       void (*stopping)(void *ctx), void *ctx);

#endif
