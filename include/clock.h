/* SPDX-License-Identifier: GPL-2.0-or-later */
/* clock: the two kinds of time the program waits with. */
#ifndef MAILFS_CLOCK_H
#define MAILFS_CLOCK_H

#include <time.h>

/* Seconds of the monotonic clock: ages of listings and sessions. */
time_t clock_mono(void);

/* The CLOCK_REALTIME instant ms milliseconds from now, as
 * pthread_cond_timedwait() wants its deadline. */
struct timespec clock_deadline(long ms);

#endif
