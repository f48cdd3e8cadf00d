/* SPDX-License-Identifier: GPL-2.0-or-later */
/* clock: the two kinds of time the program waits with. */
#ifndef MAILFS_CLOCK_H
#define MAILFS_CLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

/*
 * A time that never was: clock_mono() never returns it. The monotonic
 * clock starts near 0 when the machine boots, so 0 as "long ago" would
 * be "a moment ago" for the first minutes of uptime: a time that may
 * be unset is compared only through clock_recent().
 */
#define CLOCK_NEVER ((time_t)0)

/* Seconds of the monotonic clock (never CLOCK_NEVER): ages of listings
 * and sessions. MAILFS_TEST_UPTIME=N in the environment makes it start
 * at N, as on a machine booted N seconds ago (for tests). */
time_t clock_mono(void);

/* True when `at` is set (not CLOCK_NEVER) and less than max_age
 * seconds before now. */
bool clock_recent(time_t at, time_t now, unsigned max_age);

/*
 * One deadline per FUSE request: the thread serving a request sets it
 * when the request arrives (fsll_begin()), and every wait of that thread, on
 * the network or on another thread, ends by then, however many steps or
 * retries the request takes. Threads that serve no request (POP3
 * download, invalidation) have none.
 */
void clock_request_begin(long ms);
/* Milliseconds left to the current request's deadline (0 when it has
 * passed); LONG_MAX when the thread serves no request. */
long clock_request_left_ms(void);

/* Milliseconds since an arbitrary start, on the monotonic clock. */
long long clock_now_ms(void);

/* The instant ms milliseconds from now (or the request's deadline, if
 * sooner), as pthread_cond_timedwait() wants its deadline for a
 * condition made by clock_cond_init(). */
struct timespec clock_deadline(long ms);

/* Makes a condition variable whose timed waits use the monotonic clock,
 * so that a change of the wall clock neither stretches nor cuts them. */
void clock_cond_init(pthread_cond_t *cond);

#endif
