// SPDX-License-Identifier: GPL-2.0-or-later
/* clock: see clock.h. */
#include <limits.h>

#include "clock.h"

time_t clock_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* The serving thread's request deadline, in clock_now_ms() terms; 0 when
 * it serves none. */
static _Thread_local long long clock_req_deadline;

long long clock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
