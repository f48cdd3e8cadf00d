// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests of tree: folders, listings, lookups and directory entries. */
#include <check.h>
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "tree.h"

static struct store_folder folders_dot[] = {
	{"INBOX", '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
	{"Archive.2024", '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0,
	 0}, /* parent Archive not listed */
	{"Re&AOc-us", '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
	{"a/b", '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
	{"Lists", '.', STORE_FOLDER_NOSELECT, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
	{"Lists.dev", '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
	{"Trash", '.', STORE_FOLDER_TRASH, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
};

static struct tree *make_tree(void)
{
	struct tree *t = tree_new(1000);
	struct store_folder f[7];
	size_t i;

	for (i = 0; i < 7; i++) {
		f[i] = folders_dot[i];
		f[i].name = strdup(folders_dot[i].name);
	}
	ck_assert_int_eq(tree_set_folders(t, f, 7, 100, NULL), 0);
	for (i = 0; i < 7; i++)
		free(f[i].name);
	return t;
}

/* The path of the message of uid in dir, as list_folder() makes it:
 * a few rotating buffers, so that one call may use two. */
static const char *mp(const char *dir, uint32_t uid)
{
	static char buf[4][128];
	static unsigned next;
	char *b = buf[next++ % 4];

	snprintf(b, 128, "%s%s19700101T01%02u%02uZ-%u-abc%05x.eml", dir,
		 *dir ? "/" : "", (5000 + uid) / 60 % 60, (5000 + uid) % 60,
		 uid * 10, uid);
	return b;
}

/* Installs a listing of uids 1..n (uid i has i*10 bytes, date 5000+i). */
static void list_folder(struct tree *t, const char *folder, uint32_t n,
			uint32_t uidvalidity, time_t now)
{
	struct store_listing l = {0};
	uint32_t i;

	l.uidvalidity = uidvalidity;
	l.uidnext = n + 1;
	l.exists = n;
	l.modseq = 77;
	l.msgs = calloc(n ? n : 1, sizeof(*l.msgs));
	/* Deliberately out of order: the tree sorts by UID. */
	for (i = 0; i < n; i++) {
		uint32_t uid = n - i;

		l.msgs[i].uid = uid;
		l.msgs[i].size = uid * 10;
		l.msgs[i].date = 5000 + uid;
		l.msgs[i].idhash = 0xabc00000u + uid;
		l.msgs[i].flags = strdup(uid % 2 ? "\\Seen" : "");
	}
	l.n = n;
	ck_assert_int_eq(tree_set_listing(t, folder, &l, now), 0);
	ck_assert_ptr_null(l.msgs);
}

START_TEST(test_folders_and_paths)
{
	struct tree *t = make_tree();
	struct tree_info i;

	ck_assert_int_eq(tree_lookup(t, "/", 100, 30, &i), TREE_ROOT);
	/* INBOX, Archive, Reçus, a%2Fb, Lists, Trash */
	ck_assert_uint_eq(i.nlink, 2 + 6);
	tree_info_clear(&i);
	ck_assert_int_eq(tree_lookup(t, "/Archive", 100, 30, &i), TREE_FOLDER);
	ck_assert(i.attrs & STORE_FOLDER_NOSELECT);
	ck_assert_str_eq(i.folder, "Archive");
	ck_assert_uint_eq(i.nlink, 3);
	tree_info_clear(&i);
	ck_assert_int_eq(tree_lookup(t, "/Archive/2024", 100, 30, &i),
			 TREE_FOLDER);
	ck_assert_str_eq(i.folder, "Archive.2024");
	tree_info_clear(&i);
	ck_assert_int_eq(tree_lookup(t, "/Reçus", 100, 30, &i), TREE_FOLDER);
	ck_assert_str_eq(i.folder, "Re&AOc-us");
	tree_info_clear(&i);
	ck_assert_int_eq(tree_lookup(t, "/a%2Fb", 100, 30, &i), TREE_FOLDER);
	ck_assert_str_eq(i.folder, "a/b");
	tree_info_clear(&i);
	ck_assert_int_eq(tree_lookup(t, "/nope", 100, 30, &i), TREE_NONE);
	ck_assert_int_eq(tree_lookup(t, mp("/Lists", 1), 100, 30, &i),
			 TREE_NONE);
	tree_free(t);
}
END_TEST

START_TEST(test_listing_lookup)
{
	struct tree *t = make_tree();
	struct tree_info i, j;
	time_t before;

	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 3), 100, 30, &i),
			 TREE_UNLISTED);
	ck_assert_str_eq(i.folder, "INBOX");
	tree_info_clear(&i);
	list_folder(t, "INBOX", 5, 42, 100);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 3), 110, 30, &i),
			 TREE_MESSAGE);
	ck_assert_uint_eq(i.uid, 3);
	ck_assert_uint_eq(i.size, 30);
	ck_assert_int_eq(i.mtime, 5003);
	ck_assert_uint_eq(i.uidvalidity, 42);
	ck_assert_str_eq(i.flags, "\\Seen");
	ck_assert_ptr_null(i.store_ref);
	ck_assert_int_eq(tree_lookup(t, "/INBOX/03.eml", 110, 30, &j),
			 TREE_NONE);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 6), 110, 30, &j),
			 TREE_NONE);
	/* Stale after max_age: the caller must list again. */
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 3), 130, 30, &j),
			 TREE_UNLISTED);
	tree_info_clear(&j);
	/* Inodes are stable across listings, and differ per UIDVALIDITY. */
	list_folder(t, "INBOX", 5, 42, 200);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 3), 200, 30, &j),
			 TREE_MESSAGE);
	ck_assert_uint_eq(i.ino, j.ino);
	tree_info_clear(&j);
	/* The same content again: the folder's mtime stays the mount's
	 * start (tree.h). */
	ck_assert_int_eq(tree_lookup(t, "/INBOX", 200, 30, &j), TREE_FOLDER);
	ck_assert_int_eq(j.mtime, 1000);
	tree_info_clear(&j);
	before = time(NULL);
	list_folder(t, "INBOX", 5, 43, 200);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 3), 200, 30, &j),
			 TREE_MESSAGE);
	ck_assert_uint_ne(i.ino, j.ino);
	tree_info_clear(&j);
	/* Another UIDVALIDITY: the content changed, the mtime is now. */
	ck_assert_int_eq(tree_lookup(t, "/INBOX", 200, 30, &j), TREE_FOLDER);
	ck_assert_int_ge(j.mtime, before);
	tree_info_clear(&j);
	tree_info_clear(&i);
	tree_free(t);
}
END_TEST

/* tree_ino_path(): a listed message's inode number maps back to its
 * path (the folder from the upper half, the UID below), in every listed
 * folder; nothing else does, and a removed message no longer. */
START_TEST(test_ino_path)
{
	struct tree *t = make_tree();
	struct tree_info i;
	char buf[256];

	list_folder(t, "INBOX", 5, 42, 100);
	list_folder(t, "Lists.dev", 300, 7, 100);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 3), 100, 30, &i),
			 TREE_MESSAGE);
	ck_assert_uint_eq(tree_ino_path(t, i.ino, buf, sizeof(buf)),
			  strlen(mp("/INBOX", 3)));
	ck_assert_str_eq(buf, mp("/INBOX", 3));
	/* a buffer too small: none */
	ck_assert_uint_eq(tree_ino_path(t, i.ino, buf, 10), 0);
	/* a UID the folder does not have names nothing */
	ck_assert_uint_eq(tree_ino_path(t, (i.ino & ~0xffffffffull) | 6, buf,
					sizeof(buf)),
			  0);
	tree_remove_message(t, "INBOX", 42, 3);
	ck_assert_uint_eq(tree_ino_path(t, i.ino, buf, sizeof(buf)), 0);
	tree_info_clear(&i);
	ck_assert_int_eq(tree_lookup(t, mp("/Lists/dev", 299), 100, 30, &i),
			 TREE_MESSAGE);
	ck_assert_uint_ne(tree_ino_path(t, i.ino, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, mp("/Lists/dev", 299));
	/* a new UIDVALIDITY: the old numbers name nothing */
	list_folder(t, "Lists.dev", 300, 8, 100);
	ck_assert_uint_eq(tree_ino_path(t, i.ino, buf, sizeof(buf)), 0);
	tree_info_clear(&i);
	/* folders and the root are no messages */
	ck_assert_int_eq(tree_lookup(t, "/INBOX", 100, 30, &i), TREE_FOLDER);
	ck_assert_uint_eq(tree_ino_path(t, i.ino, buf, sizeof(buf)), 0);
	tree_info_clear(&i);
	ck_assert_uint_eq(tree_ino_path(t, 1, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(tree_ino_path(t, 0, buf, sizeof(buf)), 0);
	tree_free(t);
}
END_TEST

/* Replaces the folder list with the n folders named (no attributes). */
static void set_folders(struct tree *t, const char *const *names, size_t n,
			time_t now)
{
	struct store_folder f[8];
	size_t i;

	ck_assert_uint_le(n, 8);
	for (i = 0; i < n; i++) {
		memset(&f[i], 0, sizeof(f[i]));
		f[i].name = strdup(names[i]);
		f[i].delim = '.';
		f[i].messages = STORE_COUNT_UNKNOWN;
	}
	ck_assert_int_eq(tree_set_folders(t, f, n, now, NULL), 0);
	for (i = 0; i < n; i++)
		free(f[i].name);
}

/* The inode number of the message of uid in dir (listed), which maps
 * back to its path. */
static uint64_t msg_ino(struct tree *t, const char *dir, uint32_t uid)
{
	struct tree_info i;
	char buf[256];
	uint64_t ino;

	ck_assert_int_eq(tree_lookup(t, mp(dir, uid), 100, 30, &i),
			 TREE_MESSAGE);
	ino = i.ino;
	tree_info_clear(&i);
	ck_assert_uint_ne(tree_ino_path(t, ino, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, mp(dir, uid));
	return ino;
}

/* The upper half a hash of (folder, UIDVALIDITY) gives, as tree_ino.c tries
 * it first (on a little-endian machine). */
static uint32_t hash_hi(const char *folder, uint32_t uidvalidity)
{
	uint64_t id = tree_folder_id(folder);
	uint64_t h = tree_hash(&id, sizeof(id), TREE_HASH_SEED);
	uint32_t hi;

	h = tree_hash(&uidvalidity, sizeof(uidvalidity), h);
	hi = (uint32_t)(h >> 32) ^ (uint32_t)h;
	return hi ? hi : 1;
}

/*
 * An inode number the kernel may still hold for one message never names
 * another: a folder that leaves the folder list and comes back, or
 * whose UIDVALIDITY changes and changes back, is a new incarnation, even
 * with the same (name, UIDVALIDITY): its messages get new numbers and
 * the old ones name nothing. Two folders whose (name, UIDVALIDITY) hash
 * alike get different numbers (the names were found by a birthday
 * search on the hash, see tests/integration/test_requests.py).
 */
START_TEST(test_ino_never_reused)
{
	static const char *const with[] = {"INBOX", "Other"};
	static const char *const without[] = {"Other"};
	static const char *const twins[] = {"Cua1d159", "Cub17f8a"};
	struct tree *t = tree_new(1000);
	uint64_t x, y, z, a, b;
	char buf[256];

	set_folders(t, with, 2, 100);
	list_folder(t, "INBOX", 2, 1, 100);
	x = msg_ino(t, "/INBOX", 1);
	/* relisted, the same incarnation: the same number */
	list_folder(t, "INBOX", 2, 1, 100);
	ck_assert_uint_eq(msg_ino(t, "/INBOX", 1), x);
	/* gone from the folder list, then back with UIDVALIDITY 1 */
	set_folders(t, without, 1, 100);
	ck_assert_uint_eq(tree_ino_path(t, x, buf, sizeof(buf)), 0);
	set_folders(t, with, 2, 100);
	list_folder(t, "INBOX", 2, 1, 100);
	y = msg_ino(t, "/INBOX", 1);
	ck_assert_uint_ne(y, x);
	ck_assert_uint_eq(tree_ino_path(t, x, buf, sizeof(buf)), 0);
	/* UIDVALIDITY 2, then 1 again */
	list_folder(t, "INBOX", 2, 2, 100);
	ck_assert_uint_eq(tree_ino_path(t, y, buf, sizeof(buf)), 0);
	z = msg_ino(t, "/INBOX", 1);
	list_folder(t, "INBOX", 2, 1, 100);
	ck_assert_uint_ne(msg_ino(t, "/INBOX", 1), x);
	ck_assert_uint_ne(msg_ino(t, "/INBOX", 1), y);
	ck_assert_uint_ne(msg_ino(t, "/INBOX", 1), z);
	ck_assert_uint_eq(tree_ino_path(t, x, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(tree_ino_path(t, y, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(tree_ino_path(t, z, buf, sizeof(buf)), 0);
	/* two folders whose upper halves hash alike: the first bound
	 * gets the hash (numbers stay across remounts), the other the
	 * next free value */
	ck_assert_uint_eq(hash_hi(twins[0], 1), hash_hi(twins[1], 1));
	set_folders(t, twins, 2, 100);
	list_folder(t, twins[0], 2, 1, 100);
	list_folder(t, twins[1], 2, 1, 100);
	a = msg_ino(t, "/Cua1d159", 1);
	b = msg_ino(t, "/Cub17f8a", 1);
	ck_assert_uint_ne(a, b);
	ck_assert_uint_eq(a >> 32, hash_hi(twins[0], 1));
	ck_assert_uint_eq(b >> 32, hash_hi(twins[0], 1) + 1);
	tree_free(t);
}
END_TEST

struct names {
	char *v[64];
	time_t mtime[64];
	int n;
};

static int collect(void *ctx, const char *name, const struct tree_info *info)
{
	struct names *n = ctx;

	n->mtime[n->n] = info->mtime;
	n->v[n->n++] = strdup(name);
	return 0;
}

static void names_free(struct names *n)
{
	while (n->n)
		free(n->v[--n->n]);
}

START_TEST(test_readdir)
{
	struct tree *t = make_tree();
	struct names n = {{0}, {0}, 0};
	int k;
	bool inbox = false, archive = false;

	ck_assert_int_eq(tree_readdir(t, "/", collect, &n), 0);
	ck_assert_int_eq(n.n, 6);
	for (k = 0; k < n.n; k++) {
		inbox |= strcmp(n.v[k], "INBOX") == 0;
		archive |= strcmp(n.v[k], "Archive") == 0;
	}
	ck_assert(inbox && archive);
	names_free(&n);
	list_folder(t, "INBOX", 3, 1, 100);
	ck_assert_int_eq(tree_readdir(t, "/INBOX", collect, &n), 0);
	ck_assert_int_eq(n.n, 3);
	/* Messages come in UID order. */
	ck_assert_str_eq(n.v[0], mp("", 1));
	ck_assert_str_eq(n.v[1], mp("", 2));
	ck_assert_str_eq(n.v[2], mp("", 3));
	names_free(&n);
	ck_assert_int_eq(tree_readdir(t, "/Archive", collect, &n), 0);
	ck_assert_int_eq(n.n, 1);
	ck_assert_str_eq(n.v[0], "2024");
	names_free(&n);
	ck_assert_int_eq(tree_readdir(t, "/missing", collect, &n), -ENOENT);
	tree_free(t);
}
END_TEST

START_TEST(test_folders_replace_keeps_listing)
{
	struct tree *t = make_tree();
	struct store_folder f[2] = {
		{strdup("INBOX"), '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
		{strdup("New"), '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0}};
	struct tree_info i;

	list_folder(t, "INBOX", 2, 1, 100);
	ck_assert_int_eq(tree_set_folders(t, f, 2, 105, NULL), 0);
	free(f[0].name);
	free(f[1].name);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 2), 110, 30, &i),
			 TREE_MESSAGE);
	tree_info_clear(&i);
	ck_assert_int_eq(tree_lookup(t, "/Archive", 110, 30, &i), TREE_NONE);
	ck_assert_int_eq(tree_lookup(t, "/New", 110, 30, &i), TREE_FOLDER);
	tree_info_clear(&i);
	ck_assert(!tree_folders_stale(t, 110, 30));
	ck_assert(tree_folders_stale(t, 135, 30));
	tree_free(t);
}
END_TEST

START_TEST(test_parent_listed_after_child)
{
	struct tree *t = tree_new(0);
	struct store_folder f[2] = {
		{strdup("A/B"), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
		{strdup("A"), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0}};
	struct tree_info i;

	ck_assert_int_eq(tree_set_folders(t, f, 2, 1, NULL), 0);
	free(f[0].name);
	free(f[1].name);
	ck_assert_int_eq(tree_lookup(t, "/A", 1, 30, &i), TREE_FOLDER);
	/* A is selectable: the server listed it. */
	ck_assert(!(i.attrs & STORE_FOLDER_NOSELECT));
	ck_assert_uint_eq(i.nlink, 3);
	tree_info_clear(&i);
	tree_free(t);
}
END_TEST

START_TEST(test_size_fix_and_next)
{
	struct tree *t = make_tree();
	struct tree_info i;
	uint32_t uids[8];
	uint64_t sizes[8];

	list_folder(t, "INBOX", 10, 7, 100);
	tree_set_size(t, "INBOX", 7, 4, 12345);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 4), 100, 30, &i),
			 TREE_MESSAGE);
	ck_assert_uint_eq(i.size, 12345);
	tree_info_clear(&i);
	/* After uid 3: 4 (too big now), 5, 6, 7 ... */
	ck_assert_uint_eq(
		tree_next_messages(t, "INBOX", 7, 3, 3, 1000, uids, sizes), 3);
	ck_assert_uint_eq(uids[0], 5);
	ck_assert_uint_eq(uids[2], 7);
	ck_assert_uint_eq(sizes[0], 50);
	/* Wrong UIDVALIDITY gives nothing. */
	ck_assert_uint_eq(
		tree_next_messages(t, "INBOX", 8, 3, 3, 1000, uids, sizes), 0);
	tree_free(t);
}
END_TEST

START_TEST(test_refresh_coordination)
{
	struct tree *t = make_tree();

	ck_assert(tree_begin_refresh(t, "INBOX", 100, 30, 0));
	/* Someone is refreshing: a second caller gives up after waiting. */
	ck_assert(!tree_begin_refresh(t, "INBOX", 100, 30, 50));
	list_folder(t, "INBOX", 1, 1, 100);
	tree_end_refresh(t, "INBOX");
	/* Fresh now: nothing to do. */
	ck_assert(!tree_begin_refresh(t, "INBOX", 110, 30, 0));
	/* The folder list is fresh too (listed at 100). */
	ck_assert(!tree_begin_refresh(t, NULL, 110, 30, 0));
	ck_assert(tree_begin_refresh(t, NULL, 140, 30, 0));
	tree_end_refresh(t, NULL);
	tree_free(t);
}
END_TEST

/* An expired listing is stale whatever the clock reads: early after
 * boot the monotonic clock is smaller than refresh (here 5 s against
 * 3600), and "expired" must not read as "listed at 0, a moment ago". */
START_TEST(test_expired_early_after_boot)
{
	struct tree *t = make_tree();

	ck_assert(tree_begin_refresh(t, "INBOX", 2, 3600, 0));
	list_folder(t, "INBOX", 1, 1, 2);
	tree_end_refresh(t, "INBOX");
	ck_assert(!tree_begin_refresh(t, "INBOX", 5, 3600, 0));
	tree_expire_listing(t, "INBOX");
	ck_assert(tree_begin_refresh(t, "INBOX", 5, 3600, 0));
	tree_end_refresh(t, "INBOX");
	tree_expire_listing(t, NULL);
	ck_assert(tree_begin_refresh(t, NULL, 5, 3600, 0));
	tree_end_refresh(t, NULL);
	tree_free(t);
}
END_TEST

/* clock_recent() never takes an unset time for a recent one, and the
 * clock never reads as unset. */
START_TEST(test_clock_never)
{
	ck_assert(!clock_recent(CLOCK_NEVER, 1, 3600));
	ck_assert(!clock_recent(CLOCK_NEVER, 0, 3600));
	ck_assert(clock_recent(1, 2, 3600));
	ck_assert(!clock_recent(1, 3601, 3600));
	ck_assert(clock_mono() != CLOCK_NEVER);
}
END_TEST

/* Names identify the message: date (UTC), size as listed, Message-ID
 * hash; true duplicates get -2, -3 in ascending UID order; UIDs play no
 * part, so the same message has the same name in any folder. */
/* Looks path up and checks it is the message of that uid. */
static void expect_uid(struct tree *t, const char *path, uint32_t uid)
{
	struct tree_info i;

	ck_assert_int_eq(tree_lookup(t, path, 100, 30, &i), TREE_MESSAGE);
	ck_assert_uint_eq(i.uid, uid);
	ck_assert_uint_eq(i.idhash, 0x0badcafe);
	ck_assert_uint_eq(i.listed_size, 1234);
	tree_info_clear(&i);
}

START_TEST(test_names_identify_messages)
{
	static const char base[] = "/INBOX/20231114T221320Z-1234-0badcafe";
	struct tree *t = make_tree();
	struct store_listing l = {0};
	struct store_msg sm = {0};
	struct tree_info i;
	uint32_t uids[3] = {9, 4, 7};
	char path[128];
	size_t k;

	l.uidvalidity = 5;
	l.msgs = calloc(3, sizeof(*l.msgs));
	for (k = 0; k < 3; k++) {
		l.msgs[k].uid = uids[k];
		l.msgs[k].size = 1234;
		l.msgs[k].date = 1700000000; /* 2023-11-14 22:13:20 UTC */
		l.msgs[k].idhash = 0x0badcafe;
		l.msgs[k].flags = strdup("");
	}
	l.n = 3;
	ck_assert_int_eq(tree_set_listing(t, "INBOX", &l, 100), 0);
	/* -2, -3 in ascending UID order. */
	snprintf(path, sizeof(path), "%s.eml", base);
	expect_uid(t, path, 4);
	snprintf(path, sizeof(path), "%s-2.eml", base);
	expect_uid(t, path, 7);
	snprintf(path, sizeof(path), "%s-3.eml", base);
	expect_uid(t, path, 9);
	/* One more added by this mount takes the next free suffix, and the
	 * name it was given finds it too. */
	sm.uid = 12;
	sm.size = 1234;
	sm.date = 1700000000;
	sm.idhash = 0x0badcafe;
	sm.flags = "";
	ck_assert_int_eq(tree_add_message(t, "INBOX", 5, &sm, "given.eml"), 0);
	snprintf(path, sizeof(path), "%s-4.eml", base);
	expect_uid(t, path, 12);
	expect_uid(t, "/INBOX/given.eml", 12);
	/* Given one of its own names, it keeps that one. */
	sm.uid = 13;
	ck_assert_int_eq(
		tree_add_message(t, "INBOX", 5, &sm,
				 "20231114T221320Z-1234-0badcafe-9.eml"),
		0);
	snprintf(path, sizeof(path), "%s-9.eml", base);
	expect_uid(t, path, 13);
	snprintf(path, sizeof(path), "%s-5.eml", base);
	ck_assert_int_eq(tree_lookup(t, path, 100, 30, &i), TREE_NONE);
	/* A corrected size does not rename. */
	tree_set_size(t, "INBOX", 5, 4, 1300);
	snprintf(path, sizeof(path), "%s.eml", base);
	expect_uid(t, path, 4);
	ck_assert_int_eq(tree_lookup(t, path, 100, 30, &i), TREE_MESSAGE);
	ck_assert_uint_eq(i.size, 1300);
	tree_info_clear(&i);
	tree_free(t);
}
END_TEST

/* Adds a message to a delta: flags_only for a known one. */
static void delta_add(struct store_listing *d, uint32_t uid, bool known,
		      const char *flags)
{
	struct store_msg *m;

	d->msgs = realloc(d->msgs, (d->n + 1) * sizeof(*d->msgs));
	m = &d->msgs[d->n++];
	memset(m, 0, sizeof(*m));
	m->uid = uid;
	m->flags_only = known;
	m->flags = strdup(flags);
	if (!known) {
		m->size = uid * 10;
		m->date = 5000 + uid;
		m->idhash = 0xabc00000u + uid;
	}
}

START_TEST(test_delta_merge)
{
	struct tree *t = make_tree();
	struct store_listing d = {0}, st;
	struct tree_info i;

	list_folder(t, "INBOX", 10, 42, 100);
	/* 3 and 5..6 expunged, 4 flagged (twice: the later report wins),
	 * 11 and 12 new, a VANISHED for a UID never known. */
	d.uidvalidity = 42;
	d.uidnext = 13;
	d.exists = 9;
	d.modseq = 90;
	d.delta = true;
	store_ranges_add(&d.vanished, 5, 6);
	store_ranges_add(&d.vanished, 3, 3);
	store_ranges_add(&d.vanished, 400, 500);
	store_ranges_normalize(&d.vanished);
	delta_add(&d, 4, true, "\\Seen");
	delta_add(&d, 12, false, "");
	delta_add(&d, 4, true, "\\Flagged");
	delta_add(&d, 11, false, "\\Draft");
	ck_assert_int_eq(tree_apply_delta(t, "INBOX", &d, 110), 0);
	store_listing_clear(&d);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 3), 110, 30, &i),
			 TREE_NONE);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 6), 110, 30, &i),
			 TREE_NONE);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 4), 110, 30, &i),
			 TREE_MESSAGE);
	ck_assert_str_eq(i.flags, "\\Flagged");
	tree_info_clear(&i);
	/* Unreported flags stay. */
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 7), 110, 30, &i),
			 TREE_MESSAGE);
	ck_assert_str_eq(i.flags, "\\Seen");
	tree_info_clear(&i);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 11), 110, 30, &i),
			 TREE_MESSAGE);
	ck_assert_str_eq(i.flags, "\\Draft");
	tree_info_clear(&i);
	ck_assert(tree_listing_state(t, "INBOX", &st));
	ck_assert_uint_eq(st.uidnext, 13);
	ck_assert_uint_eq(st.modseq, 90);

	/* A count that does not add up is refused: the caller relists. */
	memset(&d, 0, sizeof(d));
	d.uidvalidity = 42;
	d.exists = 3;
	d.delta = true;
	ck_assert_int_eq(tree_apply_delta(t, "INBOX", &d, 120), -EAGAIN);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 7), 120, 30, &i),
			 TREE_MESSAGE);
	tree_info_clear(&i);
	/* So is one for another UIDVALIDITY. */
	d.uidvalidity = 43;
	d.exists = 9;
	ck_assert_int_eq(tree_apply_delta(t, "INBOX", &d, 120), -ESTALE);

	/* complete: every message still there is reported; present: the
	 * survivors among the known. */
	memset(&d, 0, sizeof(d));
	d.uidvalidity = 42;
	d.exists = 2;
	d.delta = true;
	d.complete = true;
	delta_add(&d, 1, true, "");
	delta_add(&d, 2, true, "\\Answered");
	ck_assert_int_eq(tree_apply_delta(t, "INBOX", &d, 130), 0);
	store_listing_clear(&d);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 7), 130, 30, &i),
			 TREE_NONE);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 2), 130, 30, &i),
			 TREE_MESSAGE);
	ck_assert_str_eq(i.flags, "\\Answered");
	tree_info_clear(&i);
	memset(&d, 0, sizeof(d));
	d.uidvalidity = 42;
	d.exists = 1;
	d.delta = true;
	d.have_present = true;
	store_ranges_add(&d.present, 2, 2);
	ck_assert_int_eq(tree_apply_delta(t, "INBOX", &d, 140), 0);
	store_listing_clear(&d);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 1), 140, 30, &i),
			 TREE_NONE);
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", 2), 140, 30, &i),
			 TREE_MESSAGE);
	tree_info_clear(&i);
	tree_free(t);
}
END_TEST

/* Installs a listing of uids 1..n as list_folder() does, each uid in
 * with_oid (a bit per uid) given a content identity made from it. */
static void list_folder_ids(struct tree *t, const char *folder, uint32_t n,
			    uint32_t with_oid)
{
	struct store_listing l = {0};
	char id[16];
	uint32_t i;

	l.uidvalidity = 42;
	l.uidnext = n + 1;
	l.exists = n;
	l.msgs = calloc(n ? n : 1, sizeof(*l.msgs));
	/* Out of order: the identities must follow the sort. */
	for (i = 0; i < n; i++) {
		uint32_t uid = n - i;

		l.msgs[i].uid = uid;
		l.msgs[i].size = uid * 10;
		l.msgs[i].date = 5000 + uid;
		l.msgs[i].idhash = 0xabc00000u + uid;
		l.msgs[i].flags = strdup("");
		snprintf(id, sizeof(id), "M%u", uid);
		if (with_oid & (1u << uid))
			l.msgs[i].oid = store_oid_make("EMAILID", id, uid * 10);
	}
	l.n = n;
	ck_assert_int_eq(tree_set_listing(t, folder, &l, 100), 0);
}

/* True when uid of INBOX has the identity list_folder_ids() gives it. */
static bool has_own_oid(struct tree *t, uint32_t uid)
{
	struct store_oid o, want;
	struct tree_info i;
	char id[16];
	bool r;

	snprintf(id, sizeof(id), "M%u", uid);
	want = store_oid_make("EMAILID", id, uid * 10);
	r = tree_message_oid(t, "INBOX", 42, uid, &o);
	ck_assert(!r || (o.a == want.a && o.b == want.b));
	ck_assert_int_eq(tree_lookup(t, mp("/INBOX", uid), 100, 30, &i),
			 TREE_MESSAGE);
	ck_assert_int_eq(r, !store_oid_none(&i.oid));
	ck_assert(!r || (i.oid.a == want.a && i.oid.b == want.b));
	tree_info_clear(&i);
	return r;
}

/* Content identities: each message keeps its own (a listing given in
 * any order), a listing without any has none, and a message this mount
 * adds, or a delta brings, keeps what it came with. */
START_TEST(test_identities)
{
	struct tree *t = make_tree();
	struct store_listing d = {0};
	struct store_msg sm = {0};
	uint32_t uid;

	list_folder_ids(t, "INBOX", 6, 1u << 2 | 1u << 5);
	for (uid = 1; uid <= 6; uid++)
		ck_assert_int_eq(has_own_oid(t, uid), uid == 2 || uid == 5);
	list_folder_ids(t, "INBOX", 6, 0);
	for (uid = 1; uid <= 6; uid++)
		ck_assert(!has_own_oid(t, uid));
	/* Added by this mount to a listing without identities. */
	sm.uid = 9;
	sm.size = 90;
	sm.date = 5009;
	sm.idhash = 0xabc00000u + 9;
	sm.oid = store_oid_make("EMAILID", "M9", 90);
	sm.flags = "";
	ck_assert_int_eq(tree_add_message(t, "INBOX", 42, &sm, NULL), 0);
	ck_assert(has_own_oid(t, 9));
	ck_assert(!has_own_oid(t, 3));
	/* A delta: known messages keep theirs, a new one brings its own. */
	list_folder_ids(t, "INBOX", 6, 1u << 4);
	d.uidvalidity = 42;
	d.uidnext = 8;
	d.exists = 7;
	d.delta = true;
	delta_add(&d, 7, false, "");
	d.msgs[0].oid = store_oid_make("EMAILID", "M7", 70);
	ck_assert_int_eq(tree_apply_delta(t, "INBOX", &d, 100), 0);
	store_listing_clear(&d);
	for (uid = 1; uid <= 7; uid++)
		ck_assert_int_eq(has_own_oid(t, uid), uid == 4 || uid == 7);
	tree_free(t);
}
END_TEST

START_TEST(test_unlisted_after)
{
	struct tree *t = tree_new(1000);
	struct store_folder f[6] = {
		{strdup("W.a"), '.', 0, 10, 0, 0, 0, 0},
		{strdup("W.b"), '.', 0, 50000, 0, 0, 0,
		 0}, /* over the budget */
		{strdup("W.c"), '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
		{strdup("Big"), '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0,
		 0}, /* elsewhere */
		{strdup("W.d"), '.', 0, 30, 0, 0, 0, 0},
		{strdup("Huge"), '.', 0, 95, 0, 0, 0, 0},
	};
	char *names[8];
	size_t n, i;

	ck_assert_int_eq(tree_set_folders(t, f, 6, 100, NULL), 0);
	n = tree_unlisted_after(t, "W.a", 8, 100, names);
	/* From after W.a, wrapping: W.c (same directory, size unknown),
	 * W.d (30 of 100); Huge (95) no longer fits; Big unknown and
	 * elsewhere; W.b over the budget. */
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(names[0], "W.c");
	ck_assert_str_eq(names[1], "W.d");
	for (i = 0; i < n; i++)
		free(names[i]);
	for (i = 0; i < 6; i++)
		free(f[i].name);
	tree_free(t);
}
END_TEST

/* The folders ahead of a walk's reader that the read-ahead across
 * folders may fetch: listed ones, in folder-list order, no wrapping,
 * \Noselect parents skipped, up to the first one not listed. */
START_TEST(test_listed_after)
{
	struct tree *t = tree_new(1000);
	struct store_folder f[6] = {
		{strdup("A"), '.', STORE_FOLDER_NOSELECT, 0, 0, 0, 0, 0},
		{strdup("A.a"), '.', 0, 3, 0, 0, 0, 0},
		{strdup("A.b"), '.', 0, 3, 0, 0, 0, 0},
		{strdup("B"), '.', STORE_FOLDER_NOSELECT, 0, 0, 0, 0, 0},
		{strdup("B.c"), '.', 0, 3, 0, 0, 0, 0},
		{strdup("B.d"), '.', 0, 3, 0, 0, 0, 0},
	};
	uint32_t uv[8];
	char *names[8];
	size_t n, i;

	ck_assert_int_eq(tree_set_folders(t, f, 6, 100, NULL), 0);
	list_folder(t, "A.a", 3, 7, 100);
	list_folder(t, "A.b", 3, 8, 100);
	list_folder(t, "B.c", 3, 9, 100);
	ck_assert_uint_eq(tree_listed_after(t, "B.d", 8, names, uv), 0);
	n = tree_listed_after(t, "A.a", 8, names, uv);
	/* B.d has no listing: the walk has not got that far. */
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(names[0], "A.b");
	ck_assert_uint_eq(uv[0], 8);
	ck_assert_str_eq(names[1], "B.c");
	ck_assert_uint_eq(uv[1], 9);
	for (i = 0; i < n; i++)
		free(names[i]);
	n = tree_listed_after(t, "A.a", 1, names, uv);
	ck_assert_uint_eq(n, 1);
	free(names[0]);
	ck_assert_uint_eq(tree_listed_after(t, "Nowhere", 8, names, uv), 0);
	for (i = 0; i < 6; i++)
		free(f[i].name);
	tree_free(t);
}
END_TEST

/* A server name of `levels` levels of `comp` bytes each, delimiter
 * '/', its first level starting with the digits of tag (so that names
 * differ there). */
static char *deep_name(size_t levels, size_t comp, unsigned tag)
{
	char *name = malloc(levels * (comp + 1)), *p = name, digits[16];
	size_t i, n = (size_t)snprintf(digits, sizeof(digits), "%u", tag);

	ck_assert_ptr_nonnull(name);
	for (i = 0; i < levels; i++, p += comp + 1) {
		memset(p, 'a' + (char)(i % 26), comp);
		p[comp] = '/';
	}
	name[levels * (comp + 1) - 1] = '\0';
	memcpy(name, digits, n < comp ? n : comp);
	return name;
}

/* Bytes the process has allocated (the tree's memory, in a test). */
static size_t allocated(void)
{
	return mallinfo2().uordblks;
}

/* A hostile LIST name: every level of a deep name was an implied
 * folder holding its full name and path, so memory grew with the
 * square of the name's length (a 20 KB name of 10,000 levels took 234
 * MB). Such names are left out now, without a parent, and the other
 * folders stay. */
START_TEST(test_deep_folder_name_is_left_out)
{
	struct tree *t = tree_new(1000);
	struct store_folder f[4] = {
		{strdup("INBOX"), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
		{deep_name(8000, 1, 0), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0,
		 0},
		{deep_name(10000, 1, 1), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0,
		 0},
		{strdup("Lists/dev"), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
	};
	struct names names = {{0}, {0}, 0};
	struct tree_skipped sk;
	struct tree_info i;
	size_t before, k;

	ck_assert_uint_eq(strlen(f[1].name), 15999); /* 8000 levels */
	ck_assert_uint_eq(strlen(f[2].name), 19999); /* 20 KB */
	before = allocated();
	ck_assert_int_eq(tree_set_folders(t, f, 4, 100, &sk), 0);
	ck_assert_uint_lt(allocated() - before, 64 * 1024);
	ck_assert_uint_eq(sk.deep, 1);
	ck_assert_uint_eq(sk.long_name, 1);
	ck_assert_uint_eq(sk.long_path + sk.over_budget, 0);
	ck_assert_int_eq(tree_lookup(t, "/Lists/dev", 100, 30, &i),
			 TREE_FOLDER);
	tree_info_clear(&i);
	/* no implied parent of the names left out */
	ck_assert_int_eq(tree_lookup(t, "/0", 100, 30, &i), TREE_NONE);
	ck_assert_int_eq(tree_lookup(t, "/1", 100, 30, &i), TREE_NONE);
	ck_assert_int_eq(tree_readdir(t, "/", collect, &names), 0);
	ck_assert_int_eq(names.n, 2);
	ck_assert(!strcmp(names.v[0], "INBOX") || !strcmp(names.v[1], "INBOX"));
	ck_assert(!strcmp(names.v[0], "Lists") || !strcmp(names.v[1], "Lists"));
	names_free(&names);
	for (k = 0; k < 4; k++)
		free(f[k].name);
	tree_free(t);
}
END_TEST

/* Each bound at its edge: 64 levels are taken, 65 not; a path of 4015
 * bytes is taken, one of 4266 not; a level longer than a file name
 * shows cut (so its length alone is no reason); a name of 16384 bytes
 * is taken, one of 16385 not. */
START_TEST(test_folder_bounds_at_the_edge)
{
	struct tree *t = tree_new(1000);
	struct store_folder f[8] = {
		{deep_name(64, 1, 0), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
		{deep_name(65, 1, 1), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
		{deep_name(16, 250, 2), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0,
		 0},
		{deep_name(17, 250, 3), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0,
		 0},
		{deep_name(1, 10000, 4), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0,
		 0},
		{deep_name(1, 16384, 5), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0,
		 0},
		{deep_name(1, 16385, 6), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0,
		 0},
		{strdup("INBOX"), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
	};
	static const bool taken[8] = {true, false, true,  false,
				      true, true,  false, true};
	struct tree_skipped sk;
	struct tree_info i;
	size_t k;
	char *path;

	ck_assert_int_eq(tree_set_folders(t, f, 8, 100, &sk), 0);
	ck_assert_uint_eq(sk.deep, 1);
	ck_assert_uint_eq(sk.long_path, 1);
	ck_assert_uint_eq(sk.long_name, 1);
	ck_assert_uint_eq(sk.over_budget, 0);
	for (k = 0; k < 8; k++) {
		path = tree_folder_path(t, f[k].name);
		ck_assert_msg((path != NULL) == taken[k], "folder %zu", k);
		if (path) {
			char *abs = malloc(strlen(path) + 2);

			ck_assert_uint_le(strlen(path), TREE_MAX_PATH);
			abs[0] = '/';
			strcpy(abs + 1, path);
			ck_assert_int_eq(tree_lookup(t, abs, 100, 30, &i),
					 TREE_FOLDER);
			ck_assert_str_eq(i.folder, f[k].name);
			tree_info_clear(&i);
			free(abs);
		}
		free(path);
		free(f[k].name);
	}
	tree_free(t);
}
END_TEST

/* Many folders whose implied parents cost the most the other bounds
 * allow (16 levels of 250 bytes, each with a new first level): the
 * table stops at TREE_MAX_FOLDER_BYTES (the rest are counted, not
 * kept), and the folders listed first stay. */
START_TEST(test_folder_table_budget)
{
	size_t n = 1500, k, kept = 0, before;
	struct store_folder *f = calloc(n + 1, sizeof(*f));
	struct tree *t = tree_new(1000);
	struct tree_skipped sk;
	struct tree_info i;
	char *path;

	ck_assert_ptr_nonnull(f);
	f[0] = (struct store_folder){
		strdup("INBOX"), '/', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0};
	for (k = 1; k <= n; k++)
		f[k] = (struct store_folder){deep_name(16, 250, (unsigned)k),
					     '/',
					     0,
					     STORE_COUNT_UNKNOWN,
					     0,
					     0,
					     0,
					     0};
	before = allocated();
	ck_assert_int_eq(tree_set_folders(t, f, n + 1, 100, &sk), 0);
	ck_assert_uint_lt(allocated() - before,
			  TREE_MAX_FOLDER_BYTES + 8 * 1024 * 1024);
	ck_assert_uint_gt(sk.over_budget, 0);
	ck_assert_uint_eq(sk.deep + sk.long_path + sk.long_name, 0);
	for (k = 1; k <= n; k++) {
		path = tree_folder_path(t, f[k].name);
		kept += path != NULL;
		free(path);
	}
	ck_assert_uint_eq(kept + sk.over_budget, n);
	ck_assert_int_eq(tree_lookup(t, "/INBOX", 100, 30, &i), TREE_FOLDER);
	tree_info_clear(&i);
	tree_free(t);
	for (k = 0; k <= n; k++)
		free(f[k].name);
	free(f);
}
END_TEST

START_TEST(test_uid_ranges)
{
	struct store_ranges r = {0};

	store_ranges_add(&r, 10, 12);
	store_ranges_add(&r, 1, 1);
	store_ranges_add(&r, 13, 13);
	store_ranges_add(&r, 5, 2); /* turned round */
	store_ranges_add(&r, 11, 11);
	store_ranges_add(&r, 4000000000u, 4294967295u);
	store_ranges_normalize(&r);
	ck_assert_uint_eq(r.n, 3); /* 1:5, 10:13, 4000000000:* */
	ck_assert(store_ranges_has(&r, 1));
	ck_assert(store_ranges_has(&r, 5));
	ck_assert(!store_ranges_has(&r, 6));
	ck_assert(store_ranges_has(&r, 13));
	ck_assert(!store_ranges_has(&r, 14));
	ck_assert(store_ranges_has(&r, 4294967295u));
	ck_assert(!store_ranges_has(&r, 0));
	store_ranges_free(&r);
	ck_assert(!store_ranges_has(&r, 1));
}
END_TEST

/* What the hook was told (tree_set_hook()). */
struct told {
	size_t n;
	char folder[16][32]; /* "/" for the root */
	char dir[16][32];
	time_t mtime[16];
	size_t gone[16];
};

static void told_hook(void *ctx, const struct tree_change *c)
{
	struct told *w = ctx;

	if (w->n == 16)
		return;
	snprintf(w->folder[w->n], 32, "%s", c->folder ? c->folder : "/");
	snprintf(w->dir[w->n], 32, "%s", c->dir);
	w->mtime[w->n] = c->mtime;
	w->gone[w->n] = c->n_gone;
	w->n++;
}

/* The mtime a path shows (0 when it names nothing). */
static time_t mtime_of(struct tree *t, const char *path)
{
	struct tree_info i;
	time_t m = 0;

	if (tree_lookup(t, path, 100, 30, &i) != TREE_NONE)
		m = i.mtime;
	tree_info_clear(&i);
	return m;
}

/* Installs a listing of uids 1..n in state (uv, n + 1, n, modseq) where
 * uid `flagged` (0: none) also has \Flagged, with the store's mtime. */
static void list_state(struct tree *t, const char *folder, uint32_t n,
		       uint32_t uv, uint64_t modseq, uint32_t flagged,
		       time_t mtime)
{
	struct store_listing l = {0};
	uint32_t i;

	l.uidvalidity = uv;
	l.uidnext = n + 1;
	l.exists = n;
	l.modseq = modseq;
	l.mtime = mtime;
	l.msgs = calloc(n ? n : 1, sizeof(*l.msgs));
	for (i = 0; i < n; i++) {
		l.msgs[i].uid = i + 1;
		l.msgs[i].size = 100 + i;
		l.msgs[i].date = 7000 + i;
		l.msgs[i].idhash = 0x1000u + i;
		l.msgs[i].flags = strdup(i + 1 == flagged ? "\\Flagged \\Seen"
							  : "\\Seen");
	}
	l.n = n;
	ck_assert_int_eq(tree_set_listing(t, folder, &l, 100), 0);
}

/* A folder list of A..F, each told in state (1, 4, 3, modseq), with the
 * store's mtimes given (NULL: none), and G told no state. */
static void set_letters(struct tree *t, const time_t *mtimes, uint64_t modseq)
{
	struct store_folder f[7];
	size_t i;

	memset(f, 0, sizeof(f));
	for (i = 0; i < 7; i++) {
		char name[2] = {(char)('A' + i), '\0'};

		f[i].name = strdup(name);
		f[i].delim = '.';
		f[i].messages = i < 6 ? 3 : STORE_COUNT_UNKNOWN;
		f[i].uidvalidity = i < 6 ? 1 : 0;
		f[i].uidnext = i < 6 ? 4 : 0;
		f[i].modseq = i < 6 ? modseq : 0;
		f[i].mtime = mtimes ? mtimes[i] : 0;
	}
	ck_assert_int_eq(tree_set_folders(t, f, 7, 100, NULL), 0);
	for (i = 0; i < 7; i++)
		free(f[i].name);
}

/*
 * Directory mtimes (tree.h): never 0, the store's time when it gives
 * one, the mount's start else; unchanged by listings of the content the
 * folder list told; moved to now (and told to the hook) when messages
 * change or the state does, and never back.
 */
START_TEST(test_mtime_moves_with_content)
{
	struct tree *t = tree_new(1000);
	time_t kept[7] = {0, 500, 0, 0, 0, 0, 0}, before, m;
	struct told w = {0};

	tree_set_hook(t, told_hook, &w);
	set_letters(t, kept, 9);
	ck_assert_int_eq(mtime_of(t, "/"), 1000);
	ck_assert_int_eq(mtime_of(t, "/A"), 1000); /* the mount's start */
	ck_assert_int_eq(mtime_of(t, "/B"), 500); /* the store's */
	ck_assert_int_eq(mtime_of(t, "/G"), 1000);
	ck_assert_uint_eq(w.n, 0);
	/* Listings of the content the list told move nothing, however
	 * often; the store's earlier time does not take it back. */
	list_state(t, "A", 3, 1, 9, 0, 0);
	list_state(t, "A", 3, 1, 9, 0, 400);
	list_state(t, "B", 3, 1, 9, 0, 500);
	ck_assert_int_eq(mtime_of(t, "/A"), 1000);
	ck_assert_int_eq(mtime_of(t, "/B"), 500);
	ck_assert_uint_eq(w.n, 0);
	/* Another client flagged a message: the listing shows it. */
	before = time(NULL);
	list_state(t, "A", 3, 1, 10, 2, 0);
	m = mtime_of(t, "/A");
	ck_assert_int_ge(m, before);
	ck_assert_int_le(m, time(NULL));
	ck_assert_uint_eq(w.n, 1);
	ck_assert_str_eq(w.folder[0], "A");
	ck_assert_str_eq(w.dir[0], "/A");
	ck_assert_int_eq(w.mtime[0], m);
	ck_assert_uint_eq(w.gone[0], 0);
	/* The same flags again: nothing moves, nothing is told. */
	list_state(t, "A", 3, 1, 10, 2, 0);
	ck_assert_uint_eq(w.n, 1);
	/* An expunge: the name is gone and the mtime moves. */
	list_state(t, "B", 2, 1, 11, 0, 0);
	ck_assert_int_ge(mtime_of(t, "/B"), before);
	ck_assert_uint_eq(w.n, 2);
	ck_assert_uint_eq(w.gone[1], 1);
	/* Only the state moved (HIGHESTMODSEQ: a change no listed item
	 * shows, a keyword say): the mtime moves too. */
	list_state(t, "C", 3, 1, 9, 0, 0);
	list_state(t, "C", 3, 1, 12, 0, 0);
	ck_assert_int_ge(mtime_of(t, "/C"), before);
	/* The store's later time is taken (a change a former mount saw),
	 * and a change seen now does not take it back. */
	list_state(t, "D", 3, 1, 9, 0, before + 5000);
	ck_assert_int_eq(mtime_of(t, "/D"), before + 5000);
	list_state(t, "D", 4, 1, 13, 0, 0);
	ck_assert_int_eq(mtime_of(t, "/D"), before + 5000);
	ck_assert_int_eq(mtime_of(t, "/E"), 1000);
	tree_free(t);
}
END_TEST

/* The folder list: a folder whose state moved since it was last told (a
 * change while nothing listed it) moves its mtime, and its listing is
 * made stale. */
START_TEST(test_mtime_folder_list)
{
	struct tree *t = tree_new(1000);
	struct told w = {0};
	struct tree_info i;
	time_t before = time(NULL);

	tree_set_hook(t, told_hook, &w);
	set_letters(t, NULL, 9);
	list_state(t, "A", 3, 1, 9, 0, 0);
	set_letters(t, NULL, 9); /* the same states: nothing */
	ck_assert_int_eq(mtime_of(t, "/A"), 1000);
	ck_assert_uint_eq(w.n, 0);
	ck_assert_int_eq(tree_lookup(t, mp("/A", 1), 101, 1000, &i),
			 TREE_NONE); /* listed: found or not, no listing */
	tree_info_clear(&i);
	set_letters(t, NULL, 10); /* every told state moved */
	ck_assert_int_ge(mtime_of(t, "/A"), before);
	ck_assert_int_ge(mtime_of(t, "/F"), before);
	ck_assert_int_eq(mtime_of(t, "/G"), 1000); /* told nothing */
	ck_assert_uint_eq(w.n, 6);
	/* A's listing is stale: what a tool reads next is listed again. */
	ck_assert_int_eq(tree_lookup(t, mp("/A", 1), 101, 1000, &i),
			 TREE_UNLISTED);
	tree_info_clear(&i);
	/* Its listing then shows the state told: no second move. */
	w.n = 0;
	list_state(t, "A", 3, 1, 10, 0, 0);
	ck_assert_uint_eq(w.n, 0);
	tree_free(t);
}
END_TEST

/*
 * One change, one move: the folder list tells a folder's new state (an
 * expunge) and moves its mtime; the listing that then shows that state,
 * in a later second, moves it no more (a tool waiting for the next
 * change would take a second move for it). A change after that, which
 * only a listing shows, moves it again.
 */
START_TEST(test_mtime_told_change_moves_once)
{
	struct tree *t = tree_new(1000);
	struct store_folder f = {.delim = '.',
				 .messages = 2,
				 .uidvalidity = 1,
				 .uidnext = 3,
				 .modseq = 11};
	time_t m;

	set_letters(t, NULL, 9);
	list_state(t, "A", 3, 1, 9, 0, 0);
	f.name = strdup("A");
	ck_assert_int_eq(tree_set_folders(t, &f, 1, 100, NULL), 0);
	free(f.name);
	m = mtime_of(t, "/A");
	ck_assert_int_gt(m, 1000);
	while (time(NULL) <= m)
		usleep(20000);
	list_state(t, "A", 2, 1, 11, 0, 0);
	ck_assert_int_eq(mtime_of(t, "/A"), m);
	list_state(t, "A", 2, 1, 12, 2, 0);
	ck_assert_int_gt(mtime_of(t, "/A"), m);
	tree_free(t);
}
END_TEST

/* Changes through the mount move the mtime (a change to what is there
 * already does not); directories that gain or lose a subfolder move
 * theirs. */
START_TEST(test_mtime_mount_changes_and_subfolders)
{
	struct tree *t = tree_new(1000);
	struct store_msg sm = {
		.uid = 9, .size = 50, .date = 7100, .flags = (char *)""};
	struct store_folder more[7];
	time_t before = time(NULL);
	struct told w = {0};
	size_t k;

	tree_set_hook(t, told_hook, &w);
	set_letters(t, NULL, 9);
	list_state(t, "A", 3, 1, 9, 0, 0);
	list_state(t, "B", 3, 1, 9, 0, 0);
	tree_set_flags(t, "A", 1, 1, "\\Seen"); /* what it has */
	tree_remove_message(t, "A", 1, 99); /* no such message */
	ck_assert_int_eq(mtime_of(t, "/A"), 1000);
	ck_assert_uint_eq(w.n, 0);
	tree_set_flags(t, "A", 1, 1, "\\Seen \\Answered");
	ck_assert_int_ge(mtime_of(t, "/A"), before);
	tree_remove_message(t, "B", 1, 2);
	ck_assert_int_ge(mtime_of(t, "/B"), before);
	ck_assert_int_eq(tree_add_message(t, "E", 1, &sm, NULL), 0);
	ck_assert_int_ge(mtime_of(t, "/E"), before); /* never listed */
	tree_mark_changed(t, "F");
	ck_assert_int_ge(mtime_of(t, "/F"), before);
	ck_assert_int_eq(mtime_of(t, "/C"), 1000);
	ck_assert_uint_eq(w.n, 4);
	ck_assert_str_eq(w.folder[2], "E");
	ck_assert_int_eq(w.mtime[2], mtime_of(t, "/E"));
	/* D.x appears (D moves), G goes (the root moves). */
	memset(more, 0, sizeof(more));
	for (k = 0; k < 7; k++) {
		char name[4] = {(char)('A' + k), '\0'};

		if (k == 6)
			strcpy(name, "D.x");
		more[k].name = strdup(name);
		more[k].delim = '.';
		more[k].messages = STORE_COUNT_UNKNOWN;
	}
	w.n = 0;
	ck_assert_int_eq(tree_set_folders(t, more, 7, 100, NULL), 0);
	for (k = 0; k < 7; k++)
		free(more[k].name);
	ck_assert_int_ge(mtime_of(t, "/D"), before);
	ck_assert_int_ge(mtime_of(t, "/"), before);
	ck_assert_int_ge(mtime_of(t, "/D/x"), before); /* new: now */
	ck_assert_int_eq(mtime_of(t, "/C"), 1000);
	ck_assert_uint_eq(w.n, 2);
	tree_free(t);
}
END_TEST

/* The Maildir layout: cur/, new/ and tmp/ show their folder's mtime, in
 * lookups and in listing entries; a message delivered into new/ and one
 * moved from new/ to cur/ (mblaze's minc) move it. */
START_TEST(test_mtime_maildir)
{
	struct tree *t = tree_new(1000);
	struct store_msg sm = {
		.uid = 4, .size = 50, .date = 7100, .flags = (char *)""};
	time_t kept[7] = {0, 0, 0, 0, 0, 0, 600}, before;
	struct names n = {0};
	int k;

	tree_set_maildir(t);
	set_letters(t, kept, 9);
	list_state(t, "A", 3, 1, 9, 0, 0);
	ck_assert_int_eq(mtime_of(t, "/A"), 1000);
	ck_assert_int_eq(mtime_of(t, "/A/cur"), 1000);
	ck_assert_int_eq(mtime_of(t, "/A/new"), 1000);
	ck_assert_int_eq(mtime_of(t, "/A/tmp"), 1000);
	ck_assert_int_eq(mtime_of(t, "/G/cur"), 600);
	ck_assert_int_eq(tree_readdir(t, "/G", collect, &n), 0);
	ck_assert_int_eq(n.n, 3);
	for (k = 0; k < n.n; k++)
		ck_assert_int_eq(n.mtime[k], 600);
	names_free(&n);
	ck_assert_int_eq(tree_readdir(t, "/", collect, &n), 0);
	ck_assert_int_eq(n.n, 7);
	for (k = 0; k < n.n; k++)
		ck_assert_int_eq(n.mtime[k], strcmp(n.v[k], "G") ? 1000 : 600);
	names_free(&n);
	before = time(NULL);
	ck_assert_int_eq(tree_add_message(t, "A", 1, &sm, "new/1.M1.h"), 0);
	ck_assert_int_ge(mtime_of(t, "/A/new"), before);
	ck_assert_int_eq(mtime_of(t, "/A/new"), mtime_of(t, "/A/cur"));
	/* A rename that changes no flag and no name: nothing; one from
	 * new/ into cur/: the names moved. */
	list_state(t, "B", 3, 1, 9, 0, 0);
	tree_maildir_rename(t, "B", 1, 1, "\\Seen", "x", "x");
	ck_assert_int_eq(mtime_of(t, "/B/cur"), 1000);
	tree_maildir_rename(t, "B", 1, 1, "\\Seen", "new/y", "y:2,S");
	ck_assert_int_ge(mtime_of(t, "/B/cur"), before);
	tree_free(t);
}
END_TEST

Suite *tree_suite(void)
{
	Suite *s = suite_create("tree");
	TCase *tc = tcase_create("tree");

	tcase_add_test(tc, test_folders_and_paths);
	tcase_add_test(tc, test_listing_lookup);
	tcase_add_test(tc, test_names_identify_messages);
	tcase_add_test(tc, test_readdir);
	tcase_add_test(tc, test_folders_replace_keeps_listing);
	tcase_add_test(tc, test_parent_listed_after_child);
	tcase_add_test(tc, test_size_fix_and_next);
	tcase_add_test(tc, test_refresh_coordination);
	tcase_add_test(tc, test_expired_early_after_boot);
	tcase_add_test(tc, test_clock_never);
	tcase_add_test(tc, test_delta_merge);
	tcase_add_test(tc, test_identities);
	tcase_add_test(tc, test_uid_ranges);
	tcase_add_test(tc, test_unlisted_after);
	tcase_add_test(tc, test_listed_after);
	tcase_add_test(tc, test_ino_path);
	tcase_add_test(tc, test_ino_never_reused);
	tcase_add_test(tc, test_deep_folder_name_is_left_out);
	tcase_add_test(tc, test_folder_bounds_at_the_edge);
	tcase_add_test(tc, test_folder_table_budget);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_mtime_moves_with_content);
	tcase_add_test(tc, test_mtime_folder_list);
	tcase_add_test(tc, test_mtime_told_change_moves_once);
	tcase_add_test(tc, test_mtime_mount_changes_and_subfolders);
	tcase_add_test(tc, test_mtime_maildir);
	suite_add_tcase(s, tc);
	return s;
}
