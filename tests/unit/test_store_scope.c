// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the store's failure scopes (store.h): what a failed
 * IMAP command reaches, and the calling thread's record of it.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "imap.h"
#include "store.h"

/* An IMAP error of kind with response code code. */
static struct imap_error test_store_scope_err(enum imap_err_kind kind,
					      const char *code)
{
	struct imap_error e;

	memset(&e, 0, sizeof(e));
	e.kind = kind;
	strncpy(e.code, code, sizeof(e.code) - 1);
	return e;
}

START_TEST(test_imap_failures_say_how_far_they_reach)
{
	struct imap_error e;

	e = test_store_scope_err(IMAP_ERR_NET, "");
	ck_assert_int_eq(store_scope_imap(&e), STORE_SCOPE_CONNECTION);
	e = test_store_scope_err(IMAP_ERR_PROTO, "");
	ck_assert_int_eq(store_scope_imap(&e), STORE_SCOPE_CONNECTION);
	e = test_store_scope_err(IMAP_ERR_AUTH, "");
	ck_assert_int_eq(store_scope_imap(&e), STORE_SCOPE_CONNECTION);
	e = test_store_scope_err(IMAP_ERR_NO, "NONEXISTENT");
	ck_assert_int_eq(store_scope_imap(&e), STORE_SCOPE_FOLDER);
	e = test_store_scope_err(IMAP_ERR_NO, "trycreate");
	ck_assert_int_eq(store_scope_imap(&e), STORE_SCOPE_FOLDER);
	e = test_store_scope_err(IMAP_ERR_NO, "EXPUNGEISSUED");
	ck_assert_int_eq(store_scope_imap(&e), STORE_SCOPE_MESSAGE);
	e = test_store_scope_err(IMAP_ERR_NO, "");
	ck_assert_int_eq(store_scope_imap(&e), STORE_SCOPE_MESSAGE);
	e = test_store_scope_err(IMAP_ERR_NONE, "");
	ck_assert_int_eq(store_scope_imap(&e), STORE_SCOPE_NONE);
}
END_TEST

/* Another thread's failure: recorded there, not here. */
static void *test_store_scope_other(void *arg)
{
	(void)arg;
	store_fail(-EIO, STORE_SCOPE_CONNECTION);
	return NULL;
}

START_TEST(test_the_record_is_the_calling_threads)
{
	pthread_t t;

	store_scope_clear();
	ck_assert_int_eq(store_scope_last(), STORE_SCOPE_NONE);
	ck_assert_int_eq(store_fail(-ESTALE, STORE_SCOPE_FOLDER), -ESTALE);
	ck_assert_int_eq(store_scope_last(), STORE_SCOPE_FOLDER);
	ck_assert_int_eq(pthread_create(&t, NULL, test_store_scope_other, NULL),
			 0);
	pthread_join(t, NULL);
	ck_assert_int_eq(store_scope_last(), STORE_SCOPE_FOLDER);
	store_scope_clear();
	ck_assert_int_eq(store_scope_last(), STORE_SCOPE_NONE);
}
END_TEST

Suite *store_scope_suite(void)
{
	Suite *s = suite_create("store_scope");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_imap_failures_say_how_far_they_reach);
	tcase_add_test(tc, test_the_record_is_the_calling_threads);
	suite_add_tcase(s, tc);
	return s;
}
