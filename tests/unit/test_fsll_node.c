// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of fsll's node table (fsll_node.c): nodes found by id and
 * by (parent, name), paths built from them, names taken away (stale
 * ids), and the message inode numbers the resolver maps back.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsll_priv.h"

/* A resolver that knows one message: inode 2^33 + 7 is "/F/m.eml". */
static size_t test_fsll_node_resolve(void *ctx, uint64_t ino, char *buf,
				     size_t size)
{
	(void)ctx;
	if (ino != (1ull << 33) + 7)
		return 0;
	return (size_t)snprintf(buf, size, "/F/m.eml");
}

static uint64_t test_fsll_node_ino(void *ctx, const char *path)
{
	(void)ctx;
	return strcmp(path, "/F/m.eml") == 0 ? (1ull << 33) + 7 : 0;
}

/* A table with no session: what the node functions need. */
static struct fsll *test_fsll_node_table(void)
{
	struct fsll *ll = calloc(1, sizeof(*ll));

	ck_assert_ptr_nonnull(ll);
	pthread_mutex_init(&ll->lock, NULL);
	ll->resolve = test_fsll_node_resolve;
	ll->path_ino = test_fsll_node_ino;
	return ll;
}

static void test_fsll_node_free(struct fsll *ll)
{
	struct fsll_node *n, *tmp;

	HASH_ITER(hh_id, ll->by_id, n, tmp)
	{
		fsll_node_drop(ll, n);
	}
	pthread_mutex_destroy(&ll->lock);
	free(ll);
}

/* Checks the path of id, or its error. */
static void test_fsll_node_path_is(struct fsll *ll, uint64_t id,
				   const char *want, int want_err)
{
	int err = 0;
	char *p = fsll_node_path(ll, id, &err);

	if (want) {
		ck_assert_ptr_nonnull(p);
		ck_assert_str_eq(p, want);
	} else {
		ck_assert_ptr_null(p);
		ck_assert_int_eq(err, want_err);
	}
	free(p);
}

START_TEST(test_paths_of_stored_nodes)
{
	struct fsll *ll = test_fsll_node_table();
	char *p;
	int err = 0;

	ck_assert_ptr_nonnull(fsll_node_add(ll, 2, FUSE_ROOT_ID, "F"));
	ck_assert_ptr_nonnull(fsll_node_add(ll, 3, 2, "Sub"));
	ck_assert_ptr_nonnull(fsll_node_add(ll, 4, 3, ".new"));
	test_fsll_node_path_is(ll, FUSE_ROOT_ID, "/", 0);
	test_fsll_node_path_is(ll, 2, "/F", 0);
	test_fsll_node_path_is(ll, 4, "/F/Sub/.new", 0);
	ck_assert_ptr_eq(fsll_node_find_name(ll, 3, ".new"),
			 fsll_node_find_id(ll, 4));
	ck_assert_ptr_null(fsll_node_find_name(ll, 2, ".new"));
	p = fsll_node_child_path(ll, 3, "x.eml", &err);
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, "/F/Sub/x.eml");
	free(p);
	ck_assert_uint_eq(fsll_node_path_id(ll, "/F/Sub/.new"), 4);
	ck_assert_uint_eq(fsll_node_path_id(ll, "/F/Nope"), 0);
	test_fsll_node_free(ll);
}
END_TEST

START_TEST(test_unnamed_and_unknown_ids_are_stale)
{
	struct fsll *ll = test_fsll_node_table();
	struct fsll_node *dir;

	dir = fsll_node_add(ll, 2, FUSE_ROOT_ID, "F");
	ck_assert_ptr_nonnull(fsll_node_add(ll, 3, 2, "a"));
	/* rmdir of F: it stays known by id, without a path; so do the
	 * nodes under it */
	fsll_node_unname(ll, dir);
	ck_assert_ptr_eq(fsll_node_find_id(ll, 2), dir);
	ck_assert_ptr_null(fsll_node_find_name(ll, FUSE_ROOT_ID, "F"));
	test_fsll_node_path_is(ll, 2, NULL, ESTALE);
	test_fsll_node_path_is(ll, 3, NULL, ESTALE);
	/* a name taken again gets a node of its own */
	ck_assert_ptr_nonnull(fsll_node_add(ll, 5, FUSE_ROOT_ID, "F"));
	test_fsll_node_path_is(ll, 5, "/F", 0);
	/* ids never given, or forgotten */
	test_fsll_node_path_is(ll, 99, NULL, ESTALE);
	fsll_node_drop(ll, fsll_node_find_id(ll, 3));
	test_fsll_node_path_is(ll, 3, NULL, ESTALE);
	test_fsll_node_free(ll);
}
END_TEST

START_TEST(test_message_ids_come_from_the_resolver)
{
	struct fsll *ll = test_fsll_node_table();
	uint64_t ino = (1ull << 33) + 7;

	/* nothing stored for a listed message: its path is asked for */
	test_fsll_node_path_is(ll, ino, "/F/m.eml", 0);
	ck_assert(fsll_node_computed(ll, ino, "/F/m.eml"));
	ck_assert(!fsll_node_computed(ll, ino, "/F/other.eml"));
	ck_assert(!fsll_node_computed(ll, 7, "/F/m.eml")); /* below 2^32 */
	/* by path: through the folder's stored node, then the resolver */
	ck_assert_uint_eq(fsll_node_path_id(ll, "/F/m.eml"), 0);
	ck_assert_ptr_nonnull(fsll_node_add(ll, 3, FUSE_ROOT_ID, "F"));
	ck_assert_uint_eq(fsll_node_path_id(ll, "/F/m.eml"), ino);
	/* a message no longer listed: stale */
	test_fsll_node_path_is(ll, ino + 1, NULL, ESTALE);
	/* renamed through the mount: a stored node under the new name
	 * wins over the resolver */
	ck_assert_ptr_nonnull(fsll_node_add(ll, 2, FUSE_ROOT_ID, "G"));
	ck_assert_ptr_nonnull(fsll_node_add(ll, ino, 2, "n.eml"));
	test_fsll_node_path_is(ll, ino, "/G/n.eml", 0);
	test_fsll_node_free(ll);
}
END_TEST

START_TEST(test_names_too_long_are_refused)
{
	struct fsll *ll = test_fsll_node_table();
	char name[NAME_MAX + 2];
	char *p;
	int err = 0;

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	ck_assert_ptr_null(fsll_node_add(ll, 2, FUSE_ROOT_ID, name));
	ck_assert_ptr_null(fsll_node_find_name(ll, FUSE_ROOT_ID, name));
	p = fsll_node_child_path(ll, FUSE_ROOT_ID, name, &err);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(err, ENAMETOOLONG);
	test_fsll_node_free(ll);
}
END_TEST

Suite *fsll_node_suite(void)
{
	Suite *s = suite_create("fsll_node");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_paths_of_stored_nodes);
	tcase_add_test(tc, test_unnamed_and_unknown_ids_are_stale);
	tcase_add_test(tc, test_message_ids_come_from_the_resolver);
	tcase_add_test(tc, test_names_too_long_are_refused);
	suite_add_tcase(s, tc);
	return s;
}
