// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests of account: the named-account config file. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "account.h"

static bool known(const char *key)
{
	return !strcmp(key, "password_command") || !strcmp(key, "keep") ||
	       !strcmp(key, "ro") || !strcmp(key, "cafile") ||
	       !strcmp(key, "timeout");
}

/* Writes text to a fresh 0600 file; returns its path (static). */
static const char *config(const char *text, mode_t mode)
{
	static char path[] = "/tmp/mailfs-account-test-XXXXXX";
	int fd;

	strcpy(path, "/tmp/mailfs-account-test-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
	fchmod(fd, mode);
	close(fd);
	return path;
}

START_TEST(test_account_values)
{
	const char *p = config("  # c\n[a]\nurl = imaps://x@y\n"
			       "\n[b]\n url=imap://me@h \n"
			       "mountpoint = ~/m\n"
			       "password_command = pass show a,b\\c\n"
			       "keep = true\nro = false\ncafile = ~/ca.pem\n",
			       0600);
	struct account a;
	char err[256], want[512];

	setenv("HOME", "/home/t", 1);
	ck_assert_int_eq(account_load(p, "b", known, &a, err, sizeof(err)), 0);
	ck_assert_str_eq(a.url, "imap://me@h");
	ck_assert_str_eq(a.mountpoint, "/home/t/m");
	ck_assert_uint_eq(a.n_opts, 3);
	/* Commas and backslashes escaped for fuse_opt. */
	ck_assert_str_eq(a.opts[0], "password_command=pass show a\\,b\\\\c");
	ck_assert_str_eq(a.opts[1], "keep");
	ck_assert_str_eq(a.opts[2], "cafile=/home/t/ca.pem");
	account_free(&a);
	ck_assert_int_eq(account_load(p, "a", known, &a, err, sizeof(err)), 0);
	ck_assert_ptr_null(a.mountpoint);
	account_free(&a);
	ck_assert_int_eq(account_load(p, "c", known, &a, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: no account [c]", p);
	ck_assert_str_eq(err, want);
	unlink(p);
}
END_TEST

START_TEST(test_account_refusals)
{
	struct account a;
	char err[256];
	const char *p;

	p = config("[a]\nurl = imaps://x@y\nbogus = 1\n", 0600);
	ck_assert_int_eq(account_load(p, "a", known, &a, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ":3: unknown option 'bogus'"));
	unlink(p);
	p = config("[a]\nurl = imaps://x@y\npassword = pw\n", 0600);
	ck_assert_int_eq(account_load(p, "a", known, &a, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, ":3: there is no password key"));
	ck_assert_ptr_null(strstr(err, "pw\n"));
	unlink(p);
	p = config("[a]\nmountpoint = /m\n", 0600);
	ck_assert_int_eq(account_load(p, "a", known, &a, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "has no url"));
	unlink(p);
	p = config("[a]\nurl = imaps://x@y\n", 0660);
	ck_assert_int_eq(account_load(p, "a", known, &a, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "may write it"));
	unlink(p);
	/* Readable by others: fine, unless a password option is in it
	 * (in any account). */
	p = config("[a]\nurl = imaps://x@y\n", 0644);
	ck_assert_int_eq(account_load(p, "a", known, &a, err, sizeof(err)), 0);
	account_free(&a);
	unlink(p);
	p = config("[a]\nurl = imaps://x@y\n[b]\npassword_command = x\n", 0644);
	ck_assert_int_eq(account_load(p, "a", known, &a, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "password option"));
	unlink(p);
}
END_TEST

Suite *account_suite(void)
{
	Suite *s = suite_create("account");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_account_values);
	tcase_add_test(tc, test_account_refusals);
	suite_add_tcase(s, tc);
	return s;
}
