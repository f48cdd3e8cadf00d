// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests of what the push thread runs when a folder changed
 * (fswatch_folder_changed()). */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "fsmount.h"
#include "fsctx.h"
#include "fsstate.h"
#include "fswatch.h"
#include "fswatch.h"
#include "tree.h"

/* The stack the call runs on, and the unmapped gap below it. */
#define TEST_FSDIR_STACK (64 * 1024)
#define TEST_FSDIR_GAP (4 * 1024 * 1024)

struct test_fsdir_call {
	struct fsmount *fs;
	const char *folder;
};

static void *test_fsdir_main(void *arg)
{
	struct test_fsdir_call *c = arg;

	fswatch_folder_changed(c->fs, c->folder);
	return NULL;
}

/* Runs fswatch_folder_changed(fs, folder) on a thread whose stack is
 * TEST_FSDIR_STACK bytes with TEST_FSDIR_GAP bytes of PROT_NONE below:
 * a stack array larger than the stack faults there (SIGSEGV: an error
 * of the test) instead of writing over whatever lies below, as it does
 * between mailfs' threads. */
static void test_fsdir_on_small_stack(struct fsmount *fs, const char *folder)
{
	size_t total = TEST_FSDIR_GAP + TEST_FSDIR_STACK;
	char *map = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
			 -1, 0);
	struct test_fsdir_call c = {fs, folder};
	pthread_attr_t attr;
	pthread_t th;

	ck_assert_ptr_ne(map, MAP_FAILED);
	ck_assert_int_eq(mprotect(map + TEST_FSDIR_GAP, TEST_FSDIR_STACK,
				  PROT_READ | PROT_WRITE),
			 0);
	pthread_attr_init(&attr);
	ck_assert_int_eq(pthread_attr_setstack(&attr, map + TEST_FSDIR_GAP,
					       TEST_FSDIR_STACK),
			 0);
	ck_assert_int_eq(pthread_create(&th, &attr, test_fsdir_main, &c), 0);
	pthread_join(th, NULL);
	pthread_attr_destroy(&attr);
	munmap(map, total);
}

/* An empty listing of folder, made at time 100. */
static void test_fsdir_list(struct tree *t, const char *folder)
{
	struct store_listing l = {0};

	l.uidvalidity = 1;
	l.uidnext = 1;
	l.msgs = calloc(1, sizeof(*l.msgs));
	ck_assert_int_eq(tree_set_listing(t, folder, &l, 100), 0);
}

/*
 * NOTIFY names the folder that changed, and the server names the
 * folders: the path fswatch_folder_changed() builds for the kernel's
 * invalidation is as long as the server made it. It was a stack array
 * sized by that path (a VLA) on the push thread, so a long enough name
 * ran the thread off its stack. Here a folder of 300 levels of 250
 * bytes (a 75 KB path, more than the 64 KiB stack) and INBOX change: no
 * fault, and each listing is stale afterwards. Since the folder table has bounds
 * (tree.h: 64 levels, 4,095-byte paths) the tree leaves that folder
 * out and only INBOX is called here; -Wvla keeps stack arrays out.
 */
START_TEST(test_folder_changed_stack_is_bounded)
{
	struct fsmount_config cfg = {0};
	struct fsmount *fs = fsmount_new(&cfg);
	struct store_folder f[2] = {
		{"INBOX", '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
		{NULL, '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
	};
	size_t levels = 300, comp = 250, i;
	const char *names[2];
	struct tree_info info;
	char *name, *path, *msg;

	ck_assert_ptr_nonnull(fs);
	name = malloc(levels * (comp + 1));
	ck_assert_ptr_nonnull(name);
	for (i = 0; i < levels; i++) {
		memset(name + i * (comp + 1), 'a' + (char)(i % 26), comp);
		name[i * (comp + 1) + comp] = i + 1 < levels ? '/' : '\0';
	}
	f[0].name = strdup("INBOX");
	f[1].name = name;
	ck_assert_int_eq(tree_set_folders(fs->tree, f, 2, 100, NULL), 0);
	names[0] = "INBOX";
	names[1] = name;
	for (i = 0; i < 2; i++) {
		path = tree_folder_path(fs->tree, names[i]);
		if (!path)
			continue; /* a name the tree does not take */
		test_fsdir_list(fs->tree, names[i]);
		msg = malloc(strlen(path) + 8);
		ck_assert_ptr_nonnull(msg);
		strcpy(msg, path);
		strcat(msg, "/x.eml");
		/* Fresh: a name the listing lacks is no message. */
		ck_assert_int_eq(tree_lookup(fs->tree, msg, 100, 1, &info),
				 TREE_NONE);
		tree_info_clear(&info);
		/* No watch started: nothing is queued for the kernel. */
		test_fsdir_on_small_stack(fs, names[i]);
		/* Stale: the name must be looked for in a new listing. */
		ck_assert_int_eq(tree_lookup(fs->tree, msg, 100, 1, &info),
				 TREE_UNLISTED);
		tree_info_clear(&info);
		free(msg);
		free(path);
	}
	free(f[0].name);
	free(name);
	fsmount_free(fs);
}
END_TEST

Suite *fsdir_suite(void)
{
	Suite *s = suite_create("fsdir");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_folder_changed_stack_is_bounded);
	suite_add_tcase(s, tc);
	return s;
}
