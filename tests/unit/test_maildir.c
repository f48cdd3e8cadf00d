// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the Maildir layout: the pure naming rules (maildir.c)
 * from tables, then the tree's Maildir naming policy: folders with
 * cur/, new/ and tmp/, escaped levels, names made from the default
 * name, names following flags, and names this mount gave.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maildir.h"
#include "tree.h"

START_TEST(test_letters_and_flags)
{
	static const struct {
		const char *flags, *letters, *imap;
	} cases[] = {
		{"", "", ""},
		{"\\Seen", "S", "\\Seen"},
		{"\\seen \\FLAGGED", "FS", "\\Flagged \\Seen"},
		{"\\Deleted \\Answered $Forwarded \\Draft \\Flagged \\Seen",
		 "DFPRST",
		 "\\Draft \\Flagged $Forwarded \\Answered \\Seen \\Deleted"},
		{"$Junk \\Seen NonJunk \\Recent", "S", "\\Seen"},
		{"  \\Answered   ", "R", "\\Answered"},
	};
	char buf[128];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned mask = maildir_flags_mask(cases[i].flags);

		maildir_mask_letters(mask, buf);
		ck_assert_str_eq(buf, cases[i].letters);
		maildir_mask_flags(mask, buf, sizeof(buf));
		ck_assert_str_eq(buf, cases[i].imap);
	}
	ck_assert_uint_eq(maildir_flags_mask(NULL), 0);
}
END_TEST

START_TEST(test_names)
{
	char buf[MAILDIR_NAME_MAX];

	ck_assert(maildir_name(buf, sizeof(buf),
			       "20231114T221320Z-4321-d2d06054.eml", 7,
			       "\\Seen \\Flagged $label1"));
	ck_assert_str_eq(buf, "20231114T221320Z-4321-d2d06054,U=7:2,FS");
	ck_assert(maildir_name(buf, sizeof(buf),
			       "20231114T221320Z-4321-d2d06054-2.eml",
			       4294967295u, ""));
	ck_assert_str_eq(buf,
			 "20231114T221320Z-4321-d2d06054-2,U=4294967295:2,");
	ck_assert(!maildir_name(buf, 10, "20231114T221320Z-4321-d2d06054.eml",
				1, ""));
}
END_TEST

START_TEST(test_parse)
{
	static const struct {
		const char *name;
		int rc;
		size_t stem;
		unsigned mask;
	} cases[] = {
		{"abc,U=1:2,", 0, 7, 0},
		{"abc,U=1:2,FS", 0, 7, MAILDIR_FLAGGED | MAILDIR_SEEN},
		{"abc:2,SF", 0, 3, MAILDIR_FLAGGED | MAILDIR_SEEN},
		{"abc:2,DFPRST", 0, 3, 0x3f},
		{"1700000000.M1P2Q3.host", 0, 22, 0},
		{"abc:2,X", -EINVAL, 3, 0},
		{"abc:2,a", -EINVAL, 3, 0}, /* keywords are not shown */
		{"abc:2,s", -EINVAL, 3, 0},
		{"abc:2,SS", -EINVAL, 3, 0},
		{"abc:1,S", -EINVAL, 3, 0},
		{"abc:2", -EINVAL, 3, 0},
		{"abc:", -EINVAL, 3, 0},
		{"abc:2,S:2,S", -EINVAL, 3, 0},
	};
	size_t i, stem;
	unsigned mask;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = maildir_parse(cases[i].name, &stem, &mask);

		ck_assert_msg(rc == cases[i].rc, "%s", cases[i].name);
		ck_assert_uint_eq(stem, cases[i].stem);
		if (rc == 0)
			ck_assert_uint_eq(mask, cases[i].mask);
	}
}
END_TEST

START_TEST(test_escape)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"cur", "%63ur"},	  {"new", "%6Eew"},
		{"tmp", "%74mp"},	  {"Cur", "Cur"},
		{"curl", "curl"},	  {"INBOX", "INBOX"},
		{"a/cur/b", "a/%63ur/b"}, {"new/tmp", "%6Eew/%74mp"},
	};
	size_t i;

	ck_assert_int_eq(maildir_sub_of("cur"), MAILDIR_SUB_CUR);
	ck_assert_int_eq(maildir_sub_of("new"), MAILDIR_SUB_NEW);
	ck_assert_int_eq(maildir_sub_of("tmp"), MAILDIR_SUB_TMP);
	ck_assert_int_eq(maildir_sub_of("cu"), MAILDIR_SUB_NONE);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = maildir_escape_path(cases[i].in);

		ck_assert_str_eq(p, cases[i].out);
		free(p);
	}
}
END_TEST

static struct tree *make_maildir_tree(void)
{
	static const struct store_folder folders[] = {
		{"INBOX", '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
		{"Archive.cur", '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0,
		 0}, /* parent Archive implied */
		{"Lists", '.', STORE_FOLDER_NOSELECT, STORE_COUNT_UNKNOWN, 0, 0,
		 0, 0},
		{"Lists.dev", '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
	};
	struct store_folder f[4];
	struct tree *t = tree_new(1000);
	size_t i;

	tree_set_maildir(t);
	for (i = 0; i < 4; i++) {
		f[i] = folders[i];
		f[i].name = strdup(folders[i].name);
	}
	ck_assert_int_eq(tree_set_folders(t, f, 4, 100, NULL), 0);
	for (i = 0; i < 4; i++)
		free(f[i].name);
	return t;
}

/* Lists uids 1..3 in folder: uid 1 and 2 share date, size and
 * Message-ID (so 2 gets "-2"), uid 3 is \Seen \Flagged with a keyword. */
static void list3(struct tree *t, const char *folder)
{
	struct store_listing l = {.uidvalidity = 9, .uidnext = 4, .exists = 3};
	uint32_t i;

	l.msgs = calloc(3, sizeof(*l.msgs));
	for (i = 0; i < 3; i++) {
		l.msgs[i].uid = i + 1;
		l.msgs[i].size = i == 2 ? 300 : 100;
		l.msgs[i].date = 1700000000;
		l.msgs[i].idhash = 0xd2d06054;
		l.msgs[i].flags =
			strdup(i == 2 ? "\\Seen $Work \\Flagged" : "");
	}
	l.n = 3;
	ck_assert_int_eq(tree_set_listing(t, folder, &l, 100), 0);
}

#define N1 "20231114T221320Z-100-d2d06054,U=1:2,"
#define N2 "20231114T221320Z-100-d2d06054-2,U=2:2,"
#define N3 "20231114T221320Z-300-d2d06054,U=3:2,FS"

/* Collects the names tree_readdir() gives, space separated. */
static int collect(void *ctx, const char *name, const struct tree_info *info)
{
	char *out = ctx;

	(void)info;
	strcat(out, name);
	strcat(out, " ");
	return 0;
}

static void ls(struct tree *t, const char *path, const char *want)
{
	char out[1024] = "";

	ck_assert_int_eq(tree_readdir(t, path, collect, out), 0);
	ck_assert_str_eq(out, want);
}

START_TEST(test_tree_layout)
{
	struct tree *t = make_maildir_tree();
	struct tree_info i;

	list3(t, "INBOX");
	ck_assert_int_eq(tree_lookup(t, "/INBOX", 100, 30, &i), TREE_FOLDER);
	/* The folder's own directory holds no messages. */
	ck_assert(i.attrs & STORE_FOLDER_NOSELECT);
	ck_assert_uint_eq(i.nlink, 5);
	ck_assert_int_eq(i.sub, MAILDIR_SUB_NONE);
	tree_info_clear(&i);
	ck_assert_int_eq(tree_lookup(t, "/INBOX/cur", 100, 30, &i),
			 TREE_FOLDER);
	ck_assert_int_eq(i.sub, MAILDIR_SUB_CUR);
	ck_assert_str_eq(i.folder, "INBOX");
	ck_assert(!(i.attrs & STORE_FOLDER_NOSELECT));
	tree_info_clear(&i);
	ck_assert_int_eq(tree_lookup(t, "/INBOX/tmp", 100, 30, &i),
			 TREE_FOLDER);
	ck_assert_int_eq(i.sub, MAILDIR_SUB_TMP);
	tree_info_clear(&i);
	ck_assert_int_eq(tree_lookup(t, "/INBOX/cur/" N3, 100, 30, &i),
			 TREE_MESSAGE);
	ck_assert_uint_eq(i.uid, 3);
	tree_info_clear(&i);
	ck_assert_int_eq(tree_lookup(t, "/INBOX/new/" N3, 100, 30, &i),
			 TREE_NONE);
	ck_assert_int_eq(tree_lookup(t, "/INBOX/" N3, 100, 30, &i), TREE_NONE);
	ck_assert_int_eq(tree_lookup(t, "/INBOX/cur/" N3, 200, 30, &i),
			 TREE_UNLISTED);
	tree_info_clear(&i);
	ck_assert_int_eq(tree_lookup(t, "/INBOX/cur/x/y", 100, 30, &i),
			 TREE_NONE);
	/* A real folder level named cur is escaped; its parent was implied
	 * (\Noselect): no cur/ of its own. */
	ck_assert_int_eq(tree_lookup(t, "/Archive/%63ur/cur", 100, 30, &i),
			 TREE_FOLDER);
	ck_assert_str_eq(i.folder, "Archive.cur");
	tree_info_clear(&i);
	ck_assert_int_eq(tree_lookup(t, "/Archive/cur", 100, 30, &i),
			 TREE_NONE);
	ck_assert_int_eq(tree_lookup(t, "/Lists/cur", 100, 30, &i), TREE_NONE);

	ls(t, "/", "INBOX Archive Lists ");
	ls(t, "/INBOX", "cur new tmp ");
	ls(t, "/INBOX/cur", N1 " " N2 " " N3 " ");
	ls(t, "/INBOX/new", "");
	ls(t, "/INBOX/tmp", "");
	ls(t, "/Archive", "%63ur ");
	ls(t, "/Lists", "dev ");
	ls(t, "/Lists/dev", "cur new tmp ");
	ck_assert_int_eq(tree_readdir(t, "/Lists/cur", collect, (char[64]){0}),
			 -ENOENT);
	tree_free(t);
}
END_TEST

START_TEST(test_tree_names_follow_flags)
{
	struct tree *t = make_maildir_tree();
	struct tree_info i;

	list3(t, "INBOX");
	tree_set_flags(t, "INBOX", 9, 1, "\\Answered \\Seen");
	ls(t, "/INBOX/cur",
	   "20231114T221320Z-100-d2d06054,U=1:2,RS " N2 " " N3 " ");
	ck_assert_int_eq(tree_lookup(t, "/INBOX/cur/" N1, 100, 30, &i),
			 TREE_NONE);
	ck_assert_int_eq(tree_lookup(t,
				     "/INBOX/cur/20231114T221320Z-100-d2d06054,"
				     "U=1:2,RS",
				     100, 30, &i),
			 TREE_MESSAGE);
	ck_assert_str_eq(i.flags, "\\Answered \\Seen");
	tree_info_clear(&i);
	/* A wrong UIDVALIDITY changes nothing. */
	tree_set_flags(t, "INBOX", 8, 2, "\\Seen");
	ck_assert_int_eq(tree_lookup(t, "/INBOX/cur/" N2, 100, 30, &i),
			 TREE_MESSAGE);
	tree_info_clear(&i);
	tree_free(t);
}
END_TEST

START_TEST(test_tree_delivered_names)
{
	struct tree *t = make_maildir_tree();
	struct store_msg m = {.uid = 4,
			      .size = 100,
			      .date = 1700000000,
			      .idhash = 0xd2d06054,
			      .flags = ""};
	struct tree_info i;

	list3(t, "INBOX");
	/* Delivered into new/: listed there (not in cur/) until the next
	 * listing; its own name is found. Numbered after uid 2: "-3". */
	ck_assert_int_eq(tree_add_message(t, "INBOX", 9, &m, "new/17.M1P2.h"),
			 0);
	ls(t, "/INBOX/new", "17.M1P2.h ");
	ls(t, "/INBOX/cur", N1 " " N2 " " N3 " ");
	ck_assert_int_eq(tree_lookup(t, "/INBOX/new/17.M1P2.h", 100, 30, &i),
			 TREE_MESSAGE);
	ck_assert_uint_eq(i.uid, 4);
	tree_info_clear(&i);
	ck_assert_int_eq(
		tree_lookup(t,
			    "/INBOX/cur/20231114T221320Z-100-d2d06054-3,U=4:2,",
			    100, 30, &i),
		TREE_MESSAGE);
	tree_info_clear(&i);
	/* Moved to cur/ with a letter: the name moves with it. */
	tree_maildir_rename(t, "INBOX", 9, 4, "\\Seen", "new/17.M1P2.h",
			    "17.M1P2.h:2,S");
	ls(t, "/INBOX/new", "");
	ls(t, "/INBOX/cur", N1 " " N2 " " N3 " 17.M1P2.h:2,S ");
	/* Renamed to its own name: that one is listed, the other gone. */
	tree_maildir_rename(t, "INBOX", 9, 4, "\\Seen", "17.M1P2.h:2,S",
			    "20231114T221320Z-100-d2d06054-3,U=4:2,S");
	ls(t, "/INBOX/cur",
	   N1 " " N2 " " N3 " 20231114T221320Z-100-d2d06054-3,U=4:2,S ");
	ck_assert_int_eq(
		tree_lookup(t, "/INBOX/cur/17.M1P2.h:2,S", 100, 30, &i),
		TREE_NONE);
	/* Removed: every name goes. */
	tree_remove_message(t, "INBOX", 9, 4);
	ls(t, "/INBOX/cur", N1 " " N2 " " N3 " ");
	tree_free(t);
}
END_TEST

Suite *maildir_suite(void)
{
	Suite *s = suite_create("maildir");
	TCase *tc = tcase_create("maildir");

	tcase_add_test(tc, test_letters_and_flags);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_parse);
	tcase_add_test(tc, test_escape);
	tcase_add_test(tc, test_tree_layout);
	tcase_add_test(tc, test_tree_names_follow_flags);
	tcase_add_test(tc, test_tree_delivered_names);
	suite_add_tcase(s, tc);
	return s;
}
