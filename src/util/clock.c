// SPDX-License-Identifier: GPL-2.0-or-later
/* clock: see clock.h. */
#include <limits.h>
#include <stdlib.h>

#include "clock.h"

/* Milliseconds added to the monotonic clock: 0, or what makes the
 * process start at MAILFS_TEST_UPTIME seconds of uptime. */
static long long clock_shift_ms;
static pthread_once_t clock_shift_once = PTHREAD_ONCE_INIT;

/*
 * Reads MAILFS_TEST_UPTIME once. The tests set it so that mailfs sees
 * the clock of a machine that booted that many seconds ago, which is
 * when a "long ago" of 0 looks recent (CLOCK_MONOTONIC starts near 0
 * at boot): they find such mistakes on any machine, not only on a
 * fresh one.
 */
static void clock_shift_init(void)
{
	const char *v = getenv("MAILFS_TEST_UPTIME");
	struct timespec ts;
	char *end;
	long long up;

	if (!v || !*v)
		return;
	up = strtoll(v, &end, 10);
	if (*end || up < 0 || up > 86400LL * 365)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	clock_shift_ms = up * 1000 -
			 ((long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* The raw monotonic clock in milliseconds, with the test shift. */
static long long clock_raw_ms(void)
{
	struct timespec ts;

	pthread_once(&clock_shift_once, clock_shift_init);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
	       clock_shift_ms;
}

/* Whole seconds of clock_raw_ms(), one more than elapsed, so that the
 * clock never reads CLOCK_NEVER, even in the first second of uptime. */
time_t clock_mono(void)
{
	return (time_t)(clock_raw_ms() / 1000) + 1;
}

bool clock_recent(time_t at, time_t now, unsigned max_age)
{
	return at != CLOCK_NEVER && now - at < (time_t)max_age;
}

/* The serving thread's request deadline, in clock_now_ms() terms; 0 when
 * it serves none. */
static _Thread_local long long clock_req_deadline;

/* Never 0, which clock_req_deadline keeps for "no request". */
long long clock_now_ms(void)
{
	return clock_raw_ms() + 1000;
}

void clock_request_begin(long ms)
{
	clock_req_deadline = clock_now_ms() + (ms > 0 ? ms : 0);
}

long clock_request_left_ms(void)
{
	long long left;

	if (!clock_req_deadline)
		return LONG_MAX;
	left = clock_req_deadline - clock_now_ms();
	return left > 0 ? (long)left : 0;
}

struct timespec clock_deadline(long ms)
{
	struct timespec ts;
	long left = clock_request_left_ms();

	if (ms > left)
		ms = left;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

void clock_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}
