// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests of safedir: directories made private, and those another
 * user could have planted or could change refused (symbolic links,
 * other owners, group- or world-writable ones), with what they hold
 * left untouched. The owner checks chown to uid 65534 and need root;
 * they are skipped otherwise. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testdir.h"
#include "safedir.h"

#define OTHER_UID 65534

static char base[256];

static void setup(void)
{
	testdir_make(base, sizeof(base), "sd");
}

static void teardown(void)
{
	testdir_remove(base);
}

/* base/rel into buf. */
static const char *at(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", base, rel);
	return buf;
}

/* Makes base/rel a directory of the given mode (umask aside). */
static void make_dir(const char *rel, mode_t mode)
{
	char p[512];

	ck_assert_int_eq(mkdir(at(p, sizeof(p), rel), 0700), 0);
	ck_assert_int_eq(chmod(p, mode), 0);
}

/* The mode bits of base/rel (not following a link). */
static mode_t mode_of(const char *rel)
{
	char p[512];
	struct stat st;

	ck_assert_int_eq(lstat(at(p, sizeof(p), rel), &st), 0);
	return st.st_mode & 07777;
}

/* safedir_open(base/rel): the descriptor, closed; err kept. */
static int try_open(const char *rel, char *err, size_t len)
{
	char p[512];
	int fd;

	err[0] = '\0';
	fd = safedir_open(at(p, sizeof(p), rel), err, len);
	if (fd >= 0)
		close(fd);
	return fd;
}

/* Expects safedir_open(base/rel) to fail naming base/fault and why. */
static void refused(const char *rel, const char *fault, const char *why)
{
	char err[512], p[512];

	ck_assert_int_lt(try_open(rel, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, at(p, sizeof(p), fault)) != NULL, "%s", err);
	ck_assert_msg(strstr(err, why) != NULL, "%s", err);
}

START_TEST(test_missing_directories_are_made_private)
{
	char err[512];

	ck_assert_int_ge(try_open("a/b/c", err, sizeof(err)), 0);
	ck_assert_uint_eq(mode_of("a"), 0700);
	ck_assert_uint_eq(mode_of("a/b/c"), 0700);
	/* An existing one of ours is made 0700. */
	make_dir("d", 0755);
	ck_assert_int_ge(try_open("d", err, sizeof(err)), 0);
	ck_assert_uint_eq(mode_of("d"), 0700);
	/* A relative path is not taken. */
	ck_assert_int_lt(safedir_open("x/y", err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_symlink_as_the_directory_is_refused)
{
	char p[512], q[512], err[512];

	make_dir("elsewhere", 0755);
	close(creat(at(p, sizeof(p), "elsewhere/keep"), 0644));
	make_dir("mailfs", 0700);
	ck_assert_int_eq(symlink(at(p, sizeof(p), "elsewhere"),
				 at(q, sizeof(q), "mailfs/acct")),
			 0);
	refused("mailfs/acct", "mailfs/acct", "symbolic link");
	/* The target is as it was: not chmodded, nothing made in it. */
	ck_assert_uint_eq(mode_of("elsewhere"), 0755);
	ck_assert_int_ne(access(at(p, sizeof(p), "elsewhere/bodies"), F_OK), 0);
	/* safedir_openat() refuses it too. */
	{
		int dfd = open(at(p, sizeof(p), "mailfs"),
			       O_RDONLY | O_DIRECTORY);

		ck_assert_int_ge(dfd, 0);
		ck_assert_int_lt(
			safedir_openat(dfd, "acct", "acct", err, sizeof(err)),
			0);
		ck_assert_ptr_nonnull(strstr(err, "symbolic link"));
		close(dfd);
	}
	/* A link to a file is no directory either. */
	close(creat(at(p, sizeof(p), "file"), 0600));
	ck_assert_int_eq(symlink(p, at(q, sizeof(q), "mailfs/f")), 0);
	refused("mailfs/f", "mailfs/f", "symbolic link");
}
END_TEST

START_TEST(test_directory_of_another_user_is_refused)
{
	char p[512];

	if (geteuid() != 0)
		return;
	make_dir("acct", 0700);
	ck_assert_int_eq(chown(at(p, sizeof(p), "acct"), OTHER_UID, OTHER_UID),
			 0);
	refused("acct", "acct", "owned by uid 65534");
	ck_assert_uint_eq(mode_of("acct"), 0700);
	/* On the way, too. */
	make_dir("theirs", 0755);
	ck_assert_int_eq(
		chown(at(p, sizeof(p), "theirs"), OTHER_UID, OTHER_UID), 0);
	refused("theirs/acct", "theirs", "owned by uid 65534");
	ck_assert_int_ne(access(at(p, sizeof(p), "theirs/acct"), F_OK), 0);
}
END_TEST

START_TEST(test_writable_by_others_is_refused)
{
	char err[512];

	make_dir("open", 0770);
	refused("open", "open", "writable by its group or others");
	ck_assert_uint_eq(mode_of("open"), 0770);
	/* On the way: refused unless sticky, as /tmp is. */
	make_dir("shared", 0777);
	refused("shared/acct", "shared", "writable by its group or others");
	make_dir("sticky", 01777);
	ck_assert_int_ge(try_open("sticky/acct", err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_links_on_the_way)
{
	char p[512], q[512], err[512];

	/* The user's own link (~/.cache -> /big/disk) is followed. */
	make_dir("real", 0700);
	ck_assert_int_eq(
		symlink(at(p, sizeof(p), "real"), at(q, sizeof(q), "cache")),
		0);
	ck_assert_int_ge(try_open("cache/mailfs/acct", err, sizeof(err)), 0);
	ck_assert_uint_eq(mode_of("real/mailfs/acct"), 0700);
	/* A relative one too. */
	ck_assert_int_eq(symlink("real", at(q, sizeof(q), "rel")), 0);
	ck_assert_int_ge(try_open("rel/mailfs/acct", err, sizeof(err)), 0);
	if (geteuid() != 0)
		return;
	/* One another user planted is not. */
	make_dir("other", 0700);
	ck_assert_int_eq(
		symlink(at(p, sizeof(p), "other"), at(q, sizeof(q), "planted")),
		0);
	ck_assert_int_eq(lchown(q, OTHER_UID, OTHER_UID), 0);
	refused("planted/acct", "planted", "not followed");
	ck_assert_int_ne(access(at(p, sizeof(p), "other/acct"), F_OK), 0);
}
END_TEST

Suite *safedir_suite(void)
{
	Suite *s = suite_create("safedir");
	TCase *tc = tcase_create("safedir");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_missing_directories_are_made_private);
	tcase_add_test(tc, test_symlink_as_the_directory_is_refused);
	tcase_add_test(tc, test_directory_of_another_user_is_refused);
	tcase_add_test(tc, test_writable_by_others_is_refused);
	tcase_add_test(tc, test_links_on_the_way);
	suite_add_tcase(s, tc);
	return s;
}
