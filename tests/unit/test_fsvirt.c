// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of fsvnode_parse(): which paths are virtual, which kind
 * they go to, and how they split into the real directory and the rest.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "fsparts.h"
#include "fssearch.h"
#include "fssummary.h"
#include "fsvirt.h"
#include "fsvnode.h"

/* A path, and its kind ("" when ordinary), directory and rest. */
static const struct {
	const char *path, *kind, *dir, *rest;
} parses[] = {
	{"/", "", NULL, NULL},
	{"/INBOX", "", NULL, NULL},
	{"/INBOX/20240315T093012Z-4821-1f3a9c0e.eml", "", NULL, NULL},
	{"/%2Esearch", "", NULL, NULL},
	{"/INBOX/.Search", "", NULL, NULL},
	{"/INBOX/.searchx", "", NULL, NULL},
	{"/INBOX/x.parts", "", NULL, NULL},
	{"/.search", ".search", "/", ""},
	{"/.search/FROM alice", ".search", "/", "FROM alice"},
	{"/.search/Q/A/B/n.eml", ".search", "/", "Q/A/B/n.eml"},
	{"/INBOX/.search/Q/n.eml", ".search", "/INBOX", "Q/n.eml"},
	{"/A/B/.parts", ".parts", "/A/B", ""},
	{"/A/B/.parts/n.eml", ".parts", "/A/B", "n.eml"},
	{"/A/B/.parts/n.eml/text", ".parts", "/A/B", "n.eml/text"},
	{"/INBOX/.summary", ".summary", "/INBOX", ""},
	{"/.summary", ".summary", "/", ""},
	{"/INBOX/cur/.parts/x/header", ".parts", "/INBOX/cur", "x/header"},
	/* the first reserved component decides */
	{"/INBOX/.parts/.summary", ".parts", "/INBOX", ".summary"},
	{"/INBOX/.search/.parts/x", ".search", "/INBOX", ".parts/x"},
};

START_TEST(test_parse)
{
	struct fsvirt_path p = {0};
	int rc = fsvnode_parse(parses[_i].path, &p);

	if (!parses[_i].dir) {
		ck_assert_int_eq(rc, 0);
		ck_assert(!fsvirt_is_virtual(parses[_i].path));
		return;
	}
	ck_assert_int_eq(rc, 1);
	ck_assert(fsvirt_is_virtual(parses[_i].path));
	ck_assert_str_eq(p.kind->name, parses[_i].kind);
	ck_assert_str_eq(p.dir, parses[_i].dir);
	ck_assert_str_eq(p.rest, parses[_i].rest);
	ck_assert_str_eq(p.path, parses[_i].path);
	fsvirt_path_clear(&p);
}
END_TEST

/* The tables the dispatcher routes to are the kinds named so. */
START_TEST(test_kinds)
{
	ck_assert_str_eq(fssearch_kind.name, ".search");
	ck_assert_str_eq(fsparts_kind.name, ".parts");
	ck_assert_str_eq(fssummary_kind.name, ".summary");
	ck_assert(!fsvirt_is_virtual(NULL));
}
END_TEST

Suite *fsvirt_suite(void)
{
	Suite *s = suite_create("fsvirt");
	TCase *tc = tcase_create("fsvirt");

	tcase_add_loop_test(tc, test_parse, 0,
			    sizeof(parses) / sizeof(parses[0]));
	tcase_add_test(tc, test_kinds);
	suite_add_tcase(s, tc);
	return s;
}
