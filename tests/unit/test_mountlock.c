// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests of mountlock: a holder that is serving makes a second
 * taker give up at once; one that is exiting (said so, or its mount is
 * gone) is waited for, and the wait is bounded. flock() locks of two
 * open files conflict within one process, so one process plays both. */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testdir.h"
#include "mountlock.h"

static char dir[256];
static int dirfd_;

static void setup(void)
{
	testdir_make(dir, sizeof(dir), "ml");
	dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(dirfd_, 0);
	/* The state is process-wide: start from the first one. */
	mountlock_announce(MOUNTLOCK_STARTING, NULL);
}

static void teardown(void)
{
	close(dirfd_);
	testdir_remove(dir);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* mountlock_take() of dir with wait_ms; *ms_r gets how long it took. */
static int take(int wait_ms, char *err, size_t len, long *ms_r)
{
	long t0 = now_ms();
	int fd = mountlock_take(dirfd_, dir, "cache", wait_ms, err, len);

	*ms_r = now_ms() - t0;
	return fd;
}

START_TEST(test_serving_holder_is_refused_at_once)
{
	char err[512], want[64];
	long ms;
	int fd = take(0, err, sizeof(err), &ms), fd2;

	ck_assert_msg(fd >= 0, "%s", err);
	/* Starting: alive, so in use, without waiting. */
	fd2 = take(5000, err, sizeof(err), &ms);
	ck_assert_int_lt(fd2, 0);
	snprintf(want, sizeof(want), "in use by another mailfs (pid %ld)",
		 (long)getpid());
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);
	ck_assert_msg(strstr(err, dir) != NULL, "%s", err);
	ck_assert_int_lt(ms, 1000);
	/* Mounted, and its mount is there ("/" is one): the same. */
	ck_assert(mountlock_is_mounted(0, "/", NULL));
	mountlock_announce(MOUNTLOCK_MOUNTED, "/");
	ck_assert_int_lt(take(5000, err, sizeof(err), &ms), 0);
	ck_assert_msg(strstr(err, want) != NULL, "%s", err);
	ck_assert_int_lt(ms, 1000);
	mountlock_release(fd);
}
END_TEST

/* Releases a lock after a pause, as an exiting mailfs would. */
struct late_release {
	int fd;
	long after_ms;
};

static void *release_later(void *arg)
{
	struct late_release *r = arg;
	struct timespec ts = {r->after_ms / 1000,
			      (r->after_ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
	mountlock_release(r->fd);
	return NULL;
}

START_TEST(test_exiting_holder_is_waited_for)
{
	struct late_release r = {.after_ms = 300};
	char err[512], line[128];
	pthread_t t;
	long ms;
	int fd2;
	ssize_t n;

	r.fd = take(0, err, sizeof(err), &ms);
	ck_assert_msg(r.fd >= 0, "%s", err);
	mountlock_announce(MOUNTLOCK_EXITING, NULL);
	n = pread(r.fd, line, sizeof(line) - 1, 0);
	ck_assert_int_gt(n, 0);
	line[n] = '\0';
	ck_assert_ptr_nonnull(strstr(line, "exiting"));
	ck_assert_int_eq(pthread_create(&t, NULL, release_later, &r), 0);
	fd2 = take(5000, err, sizeof(err), &ms);
	pthread_join(t, NULL);
	ck_assert_msg(fd2 >= 0, "%s", err);
	ck_assert_int_ge(ms, 250);
	ck_assert_int_lt(ms, 3000);
	mountlock_release(fd2);
}
END_TEST

START_TEST(test_wait_is_bounded)
{
	char err[512];
	long ms;
	int fd = take(0, err, sizeof(err), &ms);

	ck_assert_msg(fd >= 0, "%s", err);
	mountlock_announce(MOUNTLOCK_EXITING, NULL);
	ck_assert_int_lt(take(400, err, sizeof(err), &ms), 0);
	ck_assert_msg(strstr(err, "exiting but did not let it go") != NULL,
		      "%s", err);
	ck_assert_int_ge(ms, 350);
	ck_assert_int_lt(ms, 2000);
	mountlock_release(fd);
}
END_TEST

START_TEST(test_holder_whose_mount_is_gone_is_exiting)
{
	char err[512], line[512];
	long ms;
	int fd = take(0, err, sizeof(err), &ms);
	ssize_t n;

	ck_assert_msg(fd >= 0, "%s", err);
	/* Unmounted a moment ago, before it could say it is exiting. */
	ck_assert(!mountlock_is_mounted(0, dir, NULL));
	mountlock_announce(MOUNTLOCK_MOUNTED, dir);
	n = pread(fd, line, sizeof(line) - 1, 0);
	ck_assert_int_gt(n, 0);
	line[n] = '\0';
	ck_assert_ptr_nonnull(strstr(line, " mounted\n"));
	ck_assert_ptr_nonnull(strstr(line, dir));
	ck_assert_int_lt(take(300, err, sizeof(err), &ms), 0);
	ck_assert_int_ge(ms, 250);
	ck_assert_msg(strstr(err, "exiting") != NULL, "%s", err);
	mountlock_release(fd);
	/* Free now. */
	fd = take(0, err, sizeof(err), &ms);
	ck_assert_msg(fd >= 0, "%s", err);
	mountlock_release(fd);
}
END_TEST

Suite *mountlock_suite(void)
{
	Suite *s = suite_create("mountlock");
	TCase *tc = tcase_create("mountlock");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_serving_holder_is_refused_at_once);
	tcase_add_test(tc, test_exiting_holder_is_waited_for);
	tcase_add_test(tc, test_wait_is_bounded);
	tcase_add_test(tc, test_holder_whose_mount_is_gone_is_exiting);
	suite_add_tcase(s, tc);
	return s;
}
