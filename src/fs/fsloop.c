// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsloop: serving the FUSE session, and knowing at once when it ends;
 * see fsloop.h.
 *
 * There is one session per process, so the signal handler finds it and
 * the watcher's pipe in file-scope variables, set for the length of
 * fsloop_run() only.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fsloop.h"

/* The pipe's messages: a signal came; a read found the connection
 * ended (unmounted); the loop has returned. */
#define FSLOOP_SIGNALLED 's'
#define FSLOOP_UNMOUNTED 'u'
#define FSLOOP_OVER 'q'

/* How often (ms) the watcher looks at the FUSE device itself, for an
 * unmount while every worker is busy and none is reading. */
#define FSLOOP_CHECK_MS 1000

static struct fuse_session *fsloop_se;
static int fsloop_pipe[2] = {-1, -1};
static volatile sig_atomic_t fsloop_signum;
/* Set when libfuse's loop has returned (the watcher then ends). */
static atomic_bool fsloop_over;
/* Set while the watcher runs: it, not the handler, ends the session. */
static atomic_bool fsloop_watching;

/* The signals that stop mailfs. */
static const int fsloop_signals[] = {SIGHUP, SIGINT, SIGTERM};
#define FSLOOP_NSIG (sizeof(fsloop_signals) / sizeof(fsloop_signals[0]))

/* What the watcher needs; lives on fsloop_run()'s stack. */
struct fsloop_watch {
	struct fuse_session *se;
	pthread_t main; /* the thread running libfuse's loop */
	void (*stopping)(void *ctx);
	void *ctx;
	bool stopped; /* stopping was called (watcher, then main after the
		       * join: never both at once) */
	bool reads_seen; /* the device's reads go through fsloop_dev_read */
};

/* Wakes the watcher, which ends the session after `stopping` (or ends it
 * itself when no watcher runs); async-signal-safe. */
static void fsloop_handler(int sig)
{
	int saved = errno;
	char c = FSLOOP_SIGNALLED;

	fsloop_signum = sig;
	if (fsloop_se && !atomic_load(&fsloop_watching))
		fuse_session_exit(fsloop_se);
	if (write(fsloop_pipe[1], &c, 1) < 0) {
		/* a full pipe already holds a wake-up */
	}
	errno = saved;
}

/* Calls the caller's stopping once. */
static void fsloop_stop_once(struct fsloop_watch *w)
{
	if (w->stopped)
		return;
	w->stopped = true;
	if (w->stopping)
		w->stopping(w->ctx);
}

/*
 * The FUSE device's read for libfuse (fuse_session_custom_io()): read(2),
 * as libfuse's own, except that a read that finds the connection ended
 * (ENODEV: unmounted, or aborted through fusectl) tells the watcher at
 * once. Any idle worker is in this read, so the unmount is seen at once
 * without the watcher polling the device: the kernel wakes every poller
 * of the device for each request it queues, and a poller would cost a
 * wake-up and a context switch per request.
 */
static ssize_t fsloop_dev_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);
	int saved = errno;
	char c = FSLOOP_UNMOUNTED;

	(void)userdata;
	if (n < 0 && saved == ENODEV && fsloop_pipe[1] >= 0) {
		if (write(fsloop_pipe[1], &c, 1) < 0) {
			/* a full pipe already holds a wake-up */
		}
		errno = saved;
	}
	return n;
}

/* The FUSE device's write for libfuse: writev(2), as libfuse's own. */
static ssize_t fsloop_dev_writev(int fd, struct iovec *iov, int count,
				 void *userdata)
{
	(void)userdata;
	return writev(fd, iov, count);
}

static const struct fuse_custom_io fsloop_dev_io = {
	.read = fsloop_dev_read,
	.writev = fsloop_dev_writev,
};

/* True when the kernel ended the FUSE connection: a poll with no wait,
 * which does not stay on the device's wait queue. */
static bool fsloop_dev_ended(struct fuse_session *se)
{
	struct pollfd pfd = {.fd = fuse_session_fd(se), .events = 0};

	return poll(&pfd, 1, 0) > 0 &&
	       (pfd.revents & (POLLERR | POLLHUP | POLLNVAL));
}

/*
 * The watcher: waits for a signal's byte, the unmount or the end of the
 * loop. The unmount comes as a byte from fsloop_dev_read(), or, while
 * every worker is busy and none reads, from a look at the device every
 * FSLOOP_CHECK_MS; without fsloop_dev_read() (libfuse refused it), from
 * the device's POLLERR. After a signal it also interrupts the loop's
 * thread with it, in case another thread took the signal and the loop
 * sleeps on. It ends the session only after `stopping`: while stopping
 * runs, the loop still serves the requests the kernel queued, which
 * whatever stopping waits for may need (a page being put into the page
 * cache waits for the READ of it in flight).
 */
static void fsloop_watch_loop(struct fsloop_watch *w)
{
	struct pollfd pfd[2] = {{.fd = fuse_session_fd(w->se), .events = 0},
				{.fd = fsloop_pipe[0], .events = POLLIN}};
	int timeout = w->reads_seen ? FSLOOP_CHECK_MS : -1;
	bool kicked = false;
	char buf[16];
	ssize_t n, i;
	int rc;

	if (w->reads_seen)
		pfd[0].fd = -1;
	for (;;) {
		rc = poll(pfd, 2, timeout);
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			return; /* main calls stopping after the loop */
		}
		if (rc == 0 && timeout >= 0 && fsloop_dev_ended(w->se)) {
			timeout = -1; /* the loop ends by itself now */
			fsloop_stop_once(w);
		}
		if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
			pfd[0].fd = -1; /* the loop ends by itself now */
			fsloop_stop_once(w);
		}
		if (!(pfd[1].revents & POLLIN))
			continue;
		n = read(fsloop_pipe[0], buf, sizeof(buf));
		if (atomic_load(&fsloop_over))
			return;
		for (i = 0; i < n; i++) {
			if (buf[i] == FSLOOP_OVER)
				return;
			fsloop_stop_once(w);
			if (buf[i] == FSLOOP_UNMOUNTED) {
				timeout = -1;
				continue;
			}
			if (!kicked) {
				kicked = true;
				fuse_session_exit(w->se);
				pthread_kill(w->main, fsloop_signum);
			}
		}
	}
}

/* The watcher thread: fsloop_watch_loop(); once it ends, a signal's
 * handler ends the session itself. */
static void *fsloop_watch_main(void *arg)
{
	fsloop_watch_loop(arg);
	atomic_store(&fsloop_watching, false);
	return NULL;
}

/* Installs the handlers (saving the old ones in old) or puts the old
 * ones back. SIGPIPE is ignored meanwhile, as libfuse's own handlers
 * do. 0 or -errno. */
static int fsloop_handlers(bool install, struct sigaction old[])
{
	struct sigaction sa;
	size_t i;

	if (!install) {
		for (i = 0; i < FSLOOP_NSIG; i++)
			sigaction(fsloop_signals[i], &old[i], NULL);
		sigaction(SIGPIPE, &old[FSLOOP_NSIG], NULL);
		return 0;
	}
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, &old[FSLOOP_NSIG]) < 0)
		return -errno;
	/* No SA_RESTART: the loop's wait must see EINTR. */
	sa.sa_handler = fsloop_handler;
	for (i = 0; i < FSLOOP_NSIG; i++)
		if (sigaction(fsloop_signals[i], &sa, &old[i]) < 0)
			return -errno;
	return 0;
}

/* Starts the watcher with the stop signals blocked, so that it never
 * takes one itself. True when it runs. */
static bool fsloop_start_watcher(struct fsloop_watch *w, pthread_t *t)
{
	sigset_t set, old;
	size_t i;
	int rc;

	sigemptyset(&set);
	for (i = 0; i < FSLOOP_NSIG; i++)
		sigaddset(&set, fsloop_signals[i]);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	atomic_store(&fsloop_watching, true);
	rc = pthread_create(t, NULL, fsloop_watch_main, w);
	if (rc)
		atomic_store(&fsloop_watching, false);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		pthread_setname_np(*t, "mailfs-stop");
	return rc == 0;
}

/* libfuse's loop, multithreaded (16 threads at most) or not. */
static int fsloop_serve(struct fuse_session *se, bool single_thread)
{
	struct fuse_loop_config *lc;
	int rc;

	if (single_thread)
		return fuse_session_loop(se);
	lc = fuse_loop_cfg_create();
	if (!lc)
		return -ENOMEM;
	fuse_loop_cfg_set_clone_fd(lc, 0);
	fuse_loop_cfg_set_max_threads(lc, 16);
	rc = fuse_session_loop_mt(se, lc);
	fuse_loop_cfg_destroy(lc);
	return rc;
}

int fsloop_run(struct fuse_session *se, bool single_thread,
	       void (*stopping)(void *ctx), void *ctx)
{
	struct fsloop_watch w = {.se = se,
				 .main = pthread_self(),
				 .stopping = stopping,
				 .ctx = ctx};
	struct sigaction old[FSLOOP_NSIG + 1];
	char over = FSLOOP_OVER;
	bool watching;
	pthread_t watcher;
	int rc;

	if (pipe2(fsloop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	atomic_store(&fsloop_over, false);
	fsloop_se = se;
	/* The same descriptor, read and written through fsloop_dev_io. */
	w.reads_seen = fuse_session_custom_io(se, &fsloop_dev_io,
					      fuse_session_fd(se)) == 0;
	rc = fsloop_handlers(true, old);
	if (rc == 0) {
		watching = fsloop_start_watcher(&w, &watcher);
		rc = fsloop_serve(se, single_thread);
		if (watching) {
			/* A full pipe wakes the watcher all the same, and
			 * it reads the flag then. */
			atomic_store(&fsloop_over, true);
			if (write(fsloop_pipe[1], &over, 1) < 0) {
				/* the pipe is full: it is readable */
			}
			pthread_join(watcher, NULL);
			atomic_store(&fsloop_watching, false);
		}
	}
	/* The loop's own error, or an end the watcher did not see. */
	fsloop_stop_once(&w);
	fsloop_handlers(false, old);
	fsloop_se = NULL;
	close(fsloop_pipe[0]);
	close(fsloop_pipe[1]);
	fsloop_pipe[0] = fsloop_pipe[1] = -1;
	/* A positive value is the signal that ended the loop (libfuse's
	 * handlers set it; ours do not): a requested stop, not a failure. */
	return rc > 0 ? 0 : rc;
}
