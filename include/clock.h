/* SPDX-License-Identifier: GPL-2.0-or-later */
/* clock: the two kinds of time the program waits with. */
#ifndef MAILFS_CLOCK_H
#define MAILFS_CLOCK_H

#include <pthread.h>
#include <time.h>

/* Seconds of the monotonic clock: ages of listings and sessions. */
time_t clock_mono(void);

/* The instant ms milliseconds from now, as pthread_cond_timedwait()
 * wants its deadline for a condition made by clock_cond_init(). */
struct timespec clock_deadline(long ms);

/* Makes a condition variable whose timed waits use the monotonic clock,
 * so that a change of the wall clock neither stretches nor cuts them. */
void clock_cond_init(pthread_cond_t *cond);

#endif
