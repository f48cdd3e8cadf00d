// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for names: modified UTF-7 both ways, the %XX escaping of
 * path components, and whole names to paths and back, all from tables.
 * Then POP3 UIDLs to file names and back, from tables, for every byte,
 * and for many random UIDLs.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"

/* Called by the runner (tests/unit/main.c). */
/* Message names: the expected hashes are SHA-256 prefixes computed
 * independently (Python's hashlib). */
START_TEST(test_message_names)
{
	static const char h1[] = "Message-ID: <abc@example.org>\r\n\r\n";
	static const char folded[] = "Subject: x\r\nmessage-id:\r\n"
				     "\t<abc@example.org>  \r\n"
				     "X-Other: y\r\n\r\nMessage-ID: <no>\r\n";
	static const char spaced[] = "Message-Id : <a b@x>\n\n";
	static const char none[] = "From: a@b\r\n\r\nMessage-ID: <late>\r\n";
	static const char lookalike[] = "Message-IDs: <x>\r\n";
	char name[NAMES_MESSAGE_MAX];

	ck_assert_uint_eq(names_msgid_hash(h1, strlen(h1)), 0xd2d06054);
	ck_assert_uint_eq(names_msgid_hash(folded, strlen(folded)), 0xd2d06054);
	ck_assert_uint_eq(names_msgid_hash(spaced, strlen(spaced)), 0xdcd7418b);
	ck_assert_uint_eq(names_msgid_hash(none, strlen(none)), 0xe3b0c442);
	ck_assert_uint_eq(names_msgid_hash(lookalike, strlen(lookalike)),
			  0xe3b0c442);
	ck_assert_uint_eq(names_msgid_hash("", 0), 0xe3b0c442);
	/* Cut anywhere, never a crash. */
	for (size_t i = 0; i <= strlen(folded); i++)
		names_msgid_hash(folded, i);
	names_message(name, 1700000000, 4321, 0xd2d06054, 0);
	ck_assert_str_eq(name, "20231114T221320Z-4321-d2d06054.eml");
	names_message(name, 0, 0, 0, 1);
	ck_assert_str_eq(name, "19700101T000000Z-0-00000000.eml");
	names_message(name, 1700000000, 4321, 0xd2d06054, 17);
	ck_assert_str_eq(name, "20231114T221320Z-4321-d2d06054-17.eml");
	names_message(name, (time_t)1 << 50, UINT64_MAX, 0xffffffff, 0);
	ck_assert_str_eq(name, "00000000T000000Z-18446744073709551615-"
			       "ffffffff.eml");
}
END_TEST

/* Components over 255 bytes are cut deterministically, with a hash of
 * the server's name, never inside a character or a %XX escape. */
START_TEST(test_long_components)
{
	char a[400], b[400], *pa, *pb, *pc;
	size_t i;

	memset(a, 'a', 300);
	a[300] = '\0';
	strcpy(b, a);
	b[299] = 'b';
	pa = names_to_path(a, '/');
	pb = names_to_path(b, '/');
	ck_assert_uint_eq(strlen(pa), 255);
	ck_assert_uint_eq(strlen(pb), 255);
	ck_assert_str_ne(pa, pb);
	ck_assert_int_eq(memcmp(pa, a, 246), 0);
	ck_assert_int_eq(pa[246], '~');
	free(pb);
	pb = names_to_path(a, '/');
	ck_assert_str_eq(pa, pb); /* the same at every listing */
	free(pa);
	free(pb);
	/* U+00E9 is two bytes in UTF-8: 130 of them, 260 bytes. */
	a[0] = '\0';
	for (i = 0; i < 130; i++)
		strcat(a, "\xc3\xa9");
	pb = names_mutf7_encode(a);
	pc = names_to_path(pb, '/');
	ck_assert_uint_le(strlen(pc), 255);
	ck_assert_uint_eq(strlen(pc) % 2, 1); /* 2-byte chars + "~" + 8 */
	free(pb);
	free(pc);
	/* 100 escapes of 3 bytes: never cut inside one. */
	memset(a, '\t', 100);
	a[100] = '\0';
	pc = names_to_path(a, '/');
	ck_assert_uint_le(strlen(pc), 255);
	ck_assert_uint_eq((strlen(pc) - 9) % 3, 0);
	free(pc);
	/* Short ones are untouched. */
	memset(a, 'x', 255);
	a[255] = '\0';
	pc = names_to_path(a, '/');
	ck_assert_str_eq(pc, a);
	free(pc);
}
END_TEST

Suite *names_suite(void);

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* UTF-8 and its modified UTF-7: each must give the other. */
static const struct {
	const char *utf8;
	const char *mutf7;
} mutf7_pairs[] = {
	{"", ""},
	{"INBOX", "INBOX"},
	{"&", "&-"},
	{"&&", "&-&-"},
	{"R&D", "R&-D"},
	{"&-", "&--"},
	{" !\"#$%'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~",
	 " !\"#$%'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~"},
	{"~peter/mail/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e/"
	 "\xe5\x8f\xb0\xe5\x8c\x97",
	 "~peter/mail/&ZeVnLIqe-/&U,BTFw-"},
	{"Re\xc3\xa7us", "Re&AOc-us"},
	{"Envoy\xc3\xa9s", "Envoy&AOk-s"},
	{"\xc3\x9cn\xc3\xaf"
	 "c\xc3\xb6"
	 "d\xc3\xa9",
	 "&ANw-n&AO8-c&APY-d&AOk-"},
	/* one, two and three UTF-16 units: 2, 4 and 0 bits of padding */
	{"\xe6\x97\xa5", "&ZeU-"},
	{"\xe6\x97\xa5\xe6\x9c\xac", "&ZeVnLA-"},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "&ZeVnLIqe-"},
	{"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe6\x97\xa5\xe6\x9c\xac"
	 "\xe8\xaa\x9e",
	 "&ZeVnLIqeZeVnLIqe-"},
	/* '&' between two runs: three runs, not one */
	{"\xe6\x97\xa5&\xe6\x9c\xac", "&ZeU-&-&Zyw-"},
	/* surrogate pairs */
	{"\xf0\x9f\x98\x80", "&2D3eAA-"},
	{"a\xf0\x9f\x98\x80"
	 "b\xe2\x82\xac"
	 "c",
	 "a&2D3eAA-b&IKw-c"},
	{"\xf4\x8f\xbf\xbf", "&2,,f,w-"},
	{"\xef\xbf\xbf", "&,,8-"},
	/* control characters and DEL are base64 encoded too */
	{"a\tb", "a&AAk-b"},
	{"\x7f", "&AH8-"},
	{"\x01\xc2\x80", "&AAEAgA-"},
};

/* Encoding and decoding the pairs, both ways. */
START_TEST(test_mutf7_pairs)
{
	char *enc = names_mutf7_encode(mutf7_pairs[_i].utf8);
	char *dec = names_mutf7_decode(mutf7_pairs[_i].mutf7);

	ck_assert_ptr_nonnull(enc);
	ck_assert_str_eq(enc, mutf7_pairs[_i].mutf7);
	ck_assert_ptr_nonnull(dec);
	ck_assert_str_eq(dec, mutf7_pairs[_i].utf8);
	free(enc);
	free(dec);
}
END_TEST

/* Modified UTF-7 the decoder refuses, and why. */
static const char *const mutf7_bad[] = {
	"&", /* no run and no '-' */
	"&ZeU", /* run without '-' */
	"a&ZeVnLA", /* idem */
	"&Ze!-", /* '!' is not base64 */
	"&Ze/-", /* '/' is standard base64, not modified */
	"&ZeU=-", /* no padding in modified base64 */
	"&ZeU -", /* SP inside a run */
	"&ZeV-", /* leftover bits not zero */
	"&ZeVnLB-", /* idem */
	"&ZeVn-", /* 3 bytes: an odd count */
	"&Ze-", /* 1 byte */
	"&ZeUA-", /* a superfluous character */
	"&AGE-", /* 'a' must be written as itself */
	"&AGEAYg-", /* "ab" likewise */
	"&ACY-", /* '&' must be "&-" */
	"&ZeUAYQ-", /* printable ASCII after a real character */
	"&AAA-", /* U+0000 */
	"&2D0-", /* high surrogate alone */
	"&2D3YPQ-", /* high surrogate followed by a high one */
	"&2D0AYQ-", /* high surrogate followed by 'a' */
	"&3gA-", /* low surrogate alone */
	"&ZeU-&Zyw-", /* two runs that the encoder writes as one */
	"&AGE-&AGI-", /* idem (and printable ASCII) */
	"Re\xc3\xa7us", /* 8-bit byte written directly */
	"a\tb", /* control character written directly */
	"a\x7f", /* DEL written directly */
	"a\nb",
};

/* Each of mutf7_bad is refused. */
START_TEST(test_mutf7_bad)
{
	char *dec = names_mutf7_decode(mutf7_bad[_i]);

	ck_assert_msg(dec == NULL, "\"%s\" decoded to \"%s\"", mutf7_bad[_i],
		      dec);
}
END_TEST

/* UTF-8 the encoder refuses. */
static const char *const utf8_bad[] = {
	"\x80", /* continuation byte alone */
	"a\xbfz",
	"\xc0\xaf", /* overlong '/' */
	"\xc1\xbf", /* overlong */
	"\xe0\x80\xaf", /* overlong, 3 bytes */
	"\xf0\x80\x80\xaf", /* overlong, 4 bytes */
	"\xf0\x8f\xbf\xbf", /* overlong U+FFFF */
	"\xed\xa0\x80", /* U+D800, a surrogate */
	"\xed\xbf\xbf", /* U+DFFF */
	"\xed\xa0\xbd\xed\xb8\x80", /* a surrogate pair in UTF-8 (CESU) */
	"\xf4\x90\x80\x80", /* U+110000 */
	"\xf5\x80\x80\x80",
	"\xf8\x88\x80\x80\x80", /* 5-byte form */
	"\xfe",
	"\xff",
	"\xe6\x97", /* truncated */
	"\xe6\x97z",
	"\xf0\x9f\x98",
	"\xc3",
};

/* Each of utf8_bad is refused. */
START_TEST(test_utf8_bad)
{
	char *enc = names_mutf7_encode(utf8_bad[_i]);

	ck_assert_msg(enc == NULL, "bad UTF-8 #%d encoded to \"%s\"", _i, enc);
}
END_TEST

/* Every code point from U+0001 to U+10FFFF, surrogates aside, encodes
 * and decodes back to itself, alone and between letters. */
START_TEST(test_mutf7_all_code_points)
{
	char in[16], *enc, *dec;
	unsigned int cp;
	int bad = 0;

	for (cp = 1; cp <= 0x10ffff && !bad; cp++) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		if (cp < 0x80)
			snprintf(in, sizeof(in), "x%cy", cp);
		else if (cp < 0x800)
			snprintf(in, sizeof(in), "x%c%cy", 0xc0 | cp >> 6,
				 0x80 | (cp & 0x3f));
		else if (cp < 0x10000)
			snprintf(in, sizeof(in), "x%c%c%cy", 0xe0 | cp >> 12,
				 0x80 | (cp >> 6 & 0x3f), 0x80 | (cp & 0x3f));
		else
			snprintf(in, sizeof(in), "x%c%c%c%cy", 0xf0 | cp >> 18,
				 0x80 | (cp >> 12 & 0x3f),
				 0x80 | (cp >> 6 & 0x3f), 0x80 | (cp & 0x3f));
		enc = names_mutf7_encode(in);
		dec = enc ? names_mutf7_decode(enc) : NULL;
		if (!dec || strcmp(dec, in) != 0)
			bad = (int)cp;
		free(enc);
		free(dec);
	}
	ck_assert_msg(bad == 0, "U+%04X does not round trip", bad);
}
END_TEST

/* A component and how names_escape() shows it. */
static const struct {
	const char *raw;
	const char *escaped;
} escapes[] = {
	{"", ""},
	{"INBOX", "INBOX"},
	{".", "%2E"},
	{"..", "%2E%2E"},
	{"...", "..."},
	{".a", ".a"},
	{"a.", "a."},
	{"%", "%25"},
	{"100%", "100%25"},
	{"100%25", "100%2525"},
	{"%2E", "%252E"},
	{"a/b", "a%2Fb"},
	{"/", "%2F"},
	{"a\tb\x01\x1f\x7f", "a%09b%01%1F%7F"},
	{"\r\n", "%0D%0A"},
	{"Re\xc3\xa7us", "Re\xc3\xa7us"},
	{"&-+,~ []", "&-+,~ []"},
	/* the mount's reserved names: the leading dot escaped */
	{".search", "%2Esearch"},
	{".parts", "%2Eparts"},
	{".summary", "%2Esummary"},
	{".Search", ".Search"},
	{".searchx", ".searchx"},
	{"x.search", "x.search"},
	{"%2Esearch", "%252Esearch"},
};

/* names_escape() on the escapes table. */
START_TEST(test_escape)
{
	char *e = names_escape(escapes[_i].raw);

	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e, escapes[_i].escaped);
	free(e);
}
END_TEST

/* Every byte value, alone and in company, escapes to one path level. */
START_TEST(test_escape_all_bytes)
{
	char in[4], all[256], *e;
	int c;

	for (c = 1; c < 256; c++) {
		snprintf(in, sizeof(in), "%c", c);
		e = names_escape(in);
		ck_assert_ptr_nonnull(e);
		ck_assert_ptr_null(strchr(e, '/'));
		free(e);
		all[c - 1] = (char)c;
	}
	all[255] = '\0';
	e = names_escape(all);
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_null(strchr(e, '/'));
	free(e);
}
END_TEST

/* A server name, its delimiter and the path it shows as. */
static const struct {
	const char *mailbox;
	char delim;
	const char *path;
	int reversible; /* names_from_path() gives mailbox back */
} to_paths[] = {
	{"INBOX", '.', "INBOX", 1},
	{"INBOX.Sent", '.', "INBOX/Sent", 1},
	{"INBOX.a/b", '.', "INBOX/a%2Fb", 1},
	{"a/b.c/d", '.', "a%2Fb/c%2Fd", 1},
	{"INBOX.Re&AOc-us", '.', "INBOX/Re\xc3\xa7us", 1},
	{"INBOX.R&-D", '.', "INBOX/R&D", 1},
	{"a/b", '/', "a/b", 1},
	{"a.b/c", '/', "a.b/c", 1},
	{"~peter/mail/&ZeVnLIqe-/&U,BTFw-", '/',
	 "~peter/mail/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e/"
	 "\xe5\x8f\xb0\xe5\x8c\x97",
	 1},
	{"a/./b", '/', "a/%2E/b", 1},
	{"a/.search/.parts", '/', "a/%2Esearch/%2Eparts", 1},
	{".summary", '\0', "%2Esummary", 1},
	{".summary", '.', "%2Esummary", 0},
	{".summary/x", '/', "%2Esummary/x", 1},
	{"a/../b", '/', "a/%2E%2E/b", 1},
	{"100%", '/', "100%25", 1},
	{"a\\b", '\\', "a/b", 1},
	/* flat namespace */
	{"a/b", '\0', "a%2Fb", 1},
	{"a.b", '\0', "a.b", 1},
	{"..", '\0', "%2E%2E", 1},
	{"&ZeU-", '\0', "\xe6\x97\xa5", 1},
	/* empty components: shown as one component */
	{"INBOX.", '.', "INBOX.", 0},
	{".INBOX", '.', ".INBOX", 0},
	{"a..b", '.', "a..b", 0},
	{"/foo", '/', "%2Ffoo", 1},
	{"a//b", '/', "a%2F%2Fb", 1},
	{"", '.', "", 0},
	/* not canonical modified UTF-7 (or 8-bit): shown byte for byte,
	 * with '&' and 8-bit bytes escaped too, so that no such name shows
	 * as the path of a canonical one */
	{"INBOX.&bad", '.', "INBOX/%26bad", 0},
	{"INBOX.Re\xc3\xa7us", '.', "INBOX/Re%C3%A7us", 0},
	{"a\tb/c", '/', "a%09b/c", 0},
	{"&AGE-/x", '/', "%26AGE-/x", 0},
	{"100%&", '/', "100%25%26", 0},
	{"&AOc", '/', "%26AOc", 0},
	{"&-AOc", '/', "&AOc", 1},
	/* a delimiter that is a base64 character does not cut a run */
	{"&ZeU-+&Zyw-", '+', "\xe6\x97\xa5/\xe6\x9c\xac", 1},
	{"a+&2D3eAA-+b", '+', "a/\xf0\x9f\x98\x80/b", 1},
	{"a+&+AA-+b", '+', "a/\xef\xa0\x80/b", 1}, /* U+F800 */
	/* nor does a '-' delimiter cut off a run's closing '-' */
	{"a-&AOk--b", '-', "a/\xc3\xa9/b", 1},
	{"R&--D", '-', "R&/D", 1},
	{"&AAo-]", '-', "%0A]", 1},
};

/* names_to_path(), and names_from_path() back where it can. */
START_TEST(test_to_path)
{
	char *p = names_to_path(to_paths[_i].mailbox, to_paths[_i].delim);
	char *m;

	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p, to_paths[_i].path);
	m = names_from_path(p, to_paths[_i].delim);
	if (to_paths[_i].reversible) {
		ck_assert_ptr_nonnull(m);
		ck_assert_str_eq(m, to_paths[_i].mailbox);
	} else {
		ck_assert(m == NULL || strcmp(m, to_paths[_i].mailbox) != 0);
	}
	free(p);
	free(m);
}
END_TEST

/* A path, a delimiter and the server name (NULL: refused). */
static const struct {
	const char *path;
	char delim;
	const char *mailbox;
} from_paths[] = {
	{"INBOX/Sent", '.', "INBOX.Sent"},
	{"INBOX/a%2Fb", '.', "INBOX.a/b"},
	{"INBOX/a/b", '/', "INBOX/a/b"},
	{"a%2Fb", '/', "a/b"}, /* with '/' a %2F is a separator too */
	{"R&D", '.', "R&-D"},
	{"Re\xc3\xa7us", '/', "Re&AOc-us"},
	{"Re%C3%A7us", '/', "Re&AOc-us"},
	{"100%", '/', "100%"},
	{"%2e", '/', "."},
	{"%2Esearch", '/', ".search"},
	{"a/%2Eparts", '/', "a/.parts"},
	{"%2esummary", '\0', ".summary"},
	{"a%09b", '.', "a&AAk-b"},
	{"a%2Fb", '\0', "a/b"},
	{"a.b", '\0', "a.b"},
	{"a/b", '&', "a&b"},
	{"\xc3\xa9/b", '-', "&AOk--b"},
	/* refused */
	{"INBOX/a.b", '.', NULL}, /* holds the delimiter */
	{"INBOX/a%2Eb", '.', NULL},
	{"%2E", '.', NULL},
	{"a\\b", '\\', NULL},
	{"\xc3\xa9", '&', NULL}, /* "&AOk-" would be two levels */
	{"a%26b", '&', NULL},
	{"a/b", '\0', NULL}, /* a flat namespace has no levels */
	{"", '.', NULL}, /* empty components */
	{"", '\0', NULL},
	{"/a", '/', NULL},
	{"a/", '/', NULL},
	{"a//b", '.', NULL},
	{".", '/', NULL}, /* "." and ".." as such */
	{".search", '/', NULL}, /* reserved names as such */
	{"a/.parts", '/', NULL},
	{".summary", '\0', NULL},
	{"a/../b", '/', NULL},
	{"a/./b", '.', NULL},
	{"a%00b", '/', NULL},
	{"\xff", '/', NULL}, /* invalid UTF-8 */
	{"a/\xc0\xaf", '/', NULL},
	{"%C0%AF", '/', NULL},
	{"%ED%A0%80", '.', NULL},
};

/* names_from_path() on the from_paths table. */
START_TEST(test_from_path)
{
	char *m = names_from_path(from_paths[_i].path, from_paths[_i].delim);

	if (!from_paths[_i].mailbox) {
		ck_assert_msg(m == NULL, "\"%s\" gave \"%s\"",
			      from_paths[_i].path, m);
		return;
	}
	ck_assert_ptr_nonnull(m);
	ck_assert_str_eq(m, from_paths[_i].mailbox);
	free(m);
}
END_TEST

/* Canonical server names survive names_to_path() and names_from_path()
 * with each delimiter they can be used with. */
START_TEST(test_round_trip)
{
	static const char *const names[] = {
		"INBOX", "R&-D",  "&ZeVnLIqe-", "a&2D3eAA-b", "100%",
		"%2E",	 "&AAk-", "~x",		"Re&AOc-us",  "..",
		".",	 "a b",	  ".search",	".parts",     ".summary",
	};
	static const char delims[] = {'.', '/', '\0'};
	char name[64], *p, *m;
	size_t i, j, k;

	for (i = 0; i < N_OF(names); i++) {
		for (j = 0; j < N_OF(names); j++) {
			for (k = 0; k < N_OF(delims); k++) {
				if (delims[k] && strchr(names[i], delims[k]))
					continue;
				if (delims[k] && strchr(names[j], delims[k]))
					continue;
				/* flat: no levels to combine */
				if (!delims[k] && j > 0)
					continue;
				if (delims[k])
					snprintf(name, sizeof(name), "%s%c%s",
						 names[i], delims[k], names[j]);
				else
					snprintf(name, sizeof(name), "%s",
						 names[i]);
				p = names_to_path(name, delims[k]);
				ck_assert_ptr_nonnull(p);
				m = names_from_path(p, delims[k]);
				ck_assert_msg(m && strcmp(m, name) == 0,
					      "%s -> %s -> %s", name, p,
					      m ? m : "NULL");
				free(p);
				free(m);
			}
		}
	}
}
END_TEST

/* The names test suite, registered by the Makefile. */
Suite *names_suite(void)
{
	Suite *s = suite_create("names");
	TCase *tc = tcase_create("tables");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_mutf7_pairs, 0, N_OF(mutf7_pairs));
	tcase_add_loop_test(tc, test_mutf7_bad, 0, N_OF(mutf7_bad));
	tcase_add_loop_test(tc, test_utf8_bad, 0, N_OF(utf8_bad));
	tcase_add_test(tc, test_mutf7_all_code_points);
	tcase_add_loop_test(tc, test_escape, 0, N_OF(escapes));
	tcase_add_test(tc, test_escape_all_bytes);
	tcase_add_loop_test(tc, test_to_path, 0, N_OF(to_paths));
	tcase_add_loop_test(tc, test_from_path, 0, N_OF(from_paths));
	tcase_add_test(tc, test_round_trip);
	suite_add_tcase(s, tc);
	return s;
}

/* A POP3 UIDL and the file name it gets: each must give the other. */
static const struct {
	const char *uidl;
	const char *file;
} uidl_pairs[] = {
	{"000000014f2a8b11", "000000014f2a8b11"},
	{"GmailId18f3", "%47mail%49d18f3"},
	{"a.b/c", "a%2Eb%2Fc"},
	{"UID%1", "%55%49%44%251"},
	/* kept as they are */
	{"a", "a"},
	{"z", "z"},
	{"0", "0"},
	{"9", "9"},
	{"-", "-"},
	{"_", "_"},
	{"-_-", "-_-"},
	{"0123456789abcdefghijklmnopqrstuvwxyz-_"
	 "0123456789abcdefghijklmnopqrstuv",
	 "0123456789abcdefghijklmnopqrstuvwxyz-_"
	 "0123456789abcdefghijklmnopqrstuv"},
	/* upper case: escaped, so that case folding loses nothing */
	{"A", "%41"},
	{"Z", "%5A"},
	{"Aa", "%41a"},
	{"aA", "a%41"},
	/* no dot at all, so none in front either */
	{".", "%2E"},
	{"..", "%2E%2E"},
	{".hidden", "%2Ehidden"},
	{"name.", "name%2E"},
	/* what some file system or other does not like */
	{"/", "%2F"},
	{"\\", "%5C"},
	{":", "%3A"},
	{"*?\"<>|", "%2A%3F%22%3C%3E%7C"},
	{"~", "%7E"},
	{"!", "%21"},
	{"#$&'()+,;=@[]^`{}", "%23%24%26%27%28%29%2B%2C%3B%3D%40%5B%5D%5E%60"
			      "%7B%7D"},
	/* the escape character itself */
	{"%", "%25"},
	{"%25", "%2525"},
	{"%%", "%25%25"},
	/* UIDLs as servers make them */
	{"1f3870be274f6c49b3e31a0c6728957f",
	 "1f3870be274f6c49b3e31a0c6728957f"},
	{"UID1234-1234567890", "%55%49%441234-1234567890"},
	{"AAAAAQAAABM=", "%41%41%41%41%41%51%41%41%41%42%4D%3D"},
	{"<1234.5678@host>", "%3C1234%2E5678%40host%3E"},
};

/* names_uidl_to_file() and names_file_to_uidl() on the pairs. */
START_TEST(test_uidl_pairs)
{
	char *f = names_uidl_to_file(uidl_pairs[_i].uidl);
	char *u = names_file_to_uidl(uidl_pairs[_i].file);

	ck_assert_ptr_nonnull(f);
	ck_assert_str_eq(f, uidl_pairs[_i].file);
	ck_assert_ptr_nonnull(u);
	ck_assert_str_eq(u, uidl_pairs[_i].uidl);
	free(f);
	free(u);
}
END_TEST

/* Not UIDLs (RFC 1939 7): names_uidl_to_file() refuses them. */
static const char *const uidl_bad[] = {
	"", /* empty */
	" ", /* 0x20 is not allowed */
	"a b",
	"a\tb",
	"a\r\n",
	"\x01",
	"\x7f", /* DEL */
	"a\x7f",
	"\x80", /* 8-bit */
	"Re\xc3\xa7u",
	"\xff",
	/* 71 bytes */
	"0123456789abcdefghijklmnopqrstuvwxyz-_"
	"0123456789abcdefghijklmnopqrstuvw",
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	"AAAA",
};

/* Each of uidl_bad is refused. */
START_TEST(test_uidl_bad)
{
	char *f = names_uidl_to_file(uidl_bad[_i]);

	ck_assert_msg(f == NULL, "bad UIDL #%d gave \"%s\"", _i, f);
}
END_TEST

/* File names that names_uidl_to_file() never makes. */
static const char *const uidl_file_bad[] = {
	"", /* no UIDL is empty */
	/* bytes that must be escaped, written as they are */
	"A",
	"aBc",
	".",
	".a",
	"a.b",
	"a/b",
	"~",
	"%41.",
	/* bytes that are never part of a file name */
	"a b",
	"a\tb",
	"a\n",
	"\x7f",
	"Re\xc3\xa7u",
	/* lower-case hex */
	"%4a",
	"%2e",
	"%2f",
	"%5a",
	/* escapes of bytes kept as they are */
	"%61", /* 'a' */
	"%7A", /* 'z' */
	"%30", /* '0' */
	"%39", /* '9' */
	"%2D", /* '-' */
	"%5F", /* '_' */
	"x%61y",
	/* escapes of bytes that are not valid in a UIDL */
	"%00",
	"%20",
	"%0A",
	"%7F",
	"%80",
	"%FF",
	/* broken escapes */
	"%",
	"a%",
	"%4",
	"a%4",
	"%G1",
	"%4G",
	"%%41",
	"% 41",
	"%-41",
	"%+4",
	/* more than 70 bytes of UIDL */
	"0123456789abcdefghijklmnopqrstuvwxyz-_"
	"0123456789abcdefghijklmnopqrstuvw",
	"%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"
	"%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"
	"%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"
	"%41%41%41%41%41",
};

/* Each of uidl_file_bad is refused. */
START_TEST(test_uidl_file_bad)
{
	char *u = names_file_to_uidl(uidl_file_bad[_i]);

	ck_assert_msg(u == NULL, "\"%s\" gave \"%s\"", uidl_file_bad[_i], u);
}
END_TEST

/*
 * True when the file name f made from uidl is what names.h promises: at
 * most 210 bytes, three per escaped byte and one per other, no '/' or
 * '.', upper-case letters only as hex digits of an escape; and
 * names_file_to_uidl() gives uidl back. Tests no assertion, as it is
 * called many times and Check's assertions are slow.
 */
static bool uidl_file_ok(const char *uidl, const char *f)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, want = 0;
	bool ok = true;
	char c, *u;

	if (!f)
		return false;
	for (i = 0; uidl[i]; i++) {
		c = uidl[i];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_')
			want += 1;
		else
			want += 3;
	}
	if (strlen(f) != want || want > 210)
		return false;
	for (i = 0; f[i] && ok; i++) {
		c = f[i];
		if (c == '%') {
			ok = f[i + 1] && strchr(hex, f[i + 1]) && f[i + 2] &&
			     strchr(hex, f[i + 2]);
			i += 2;
			continue;
		}
		ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		     c == '-' || c == '_';
	}
	if (!ok)
		return false;
	u = names_file_to_uidl(f);
	ok = u && strcmp(u, uidl) == 0;
	free(u);
	return ok;
}

/* Each of the 94 bytes a UIDL may hold, alone, in company, and 70 of
 * it: the longest UIDL and, escaped, the longest name. */
START_TEST(test_uidl_all_bytes)
{
	char in[80], *f;
	int c, kept = 0;

	for (c = 0x21; c <= 0x7e; c++) {
		snprintf(in, sizeof(in), "%c", c);
		f = names_uidl_to_file(in);
		ck_assert_msg(uidl_file_ok(in, f), "\"%s\" gave \"%s\"", in,
			      f ? f : "NULL");
		kept += strlen(f) == 1;
		free(f);

		snprintf(in, sizeof(in), "x%cy%c", c, c);
		f = names_uidl_to_file(in);
		ck_assert_msg(uidl_file_ok(in, f), "\"%s\" gave \"%s\"", in,
			      f ? f : "NULL");
		free(f);

		memset(in, c, 70);
		in[70] = '\0';
		f = names_uidl_to_file(in);
		ck_assert_msg(uidl_file_ok(in, f), "\"%s\" gave \"%s\"", in,
			      f ? f : "NULL");
		free(f);
	}
	ck_assert_int_eq(kept, 26 + 10 + 2);
}
END_TEST

/* A small fixed pseudo-random sequence (xorshift32), so that a failure
 * can be seen again. */
static uint32_t uidl_rand(uint32_t *state)
{
	uint32_t x = *state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

/* Fills uidl (71 bytes or more) with a UIDL of 1-70 random bytes; half
 * the time 1-6 bytes from a small alphabet with letters in both cases,
 * so that UIDLs that differ only in case come up. */
static void random_uidl(char *uidl, uint32_t *state)
{
	static const char small[] = "aAbB.%0";
	size_t i, n = 1 + uidl_rand(state) % 70;
	bool from_small = uidl_rand(state) & 1;

	if (from_small)
		n = 1 + n % 6;
	for (i = 0; i < n; i++) {
		if (from_small)
			uidl[i] = small[uidl_rand(state) % (sizeof(small) - 1)];
		else
			uidl[i] = (char)(0x21 + uidl_rand(state) % 94);
	}
	uidl[n] = '\0';
}

/* Random UIDLs survive names_uidl_to_file() and names_file_to_uidl(). */
START_TEST(test_uidl_random)
{
	uint32_t state = 0x2545f491;
	char uidl[80], bad[80] = "", *f;
	int i;

	for (i = 0; i < 20000 && !bad[0]; i++) {
		random_uidl(uidl, &state);
		f = names_uidl_to_file(uidl);
		if (!uidl_file_ok(uidl, f))
			strcpy(bad, uidl);
		free(f);
	}
	ck_assert_msg(bad[0] == '\0', "\"%s\" does not round trip", bad);
}
END_TEST

/* A UIDL and its file name folded to lower case. */
struct uidl_folded {
	char uidl[72];
	char *folded; /* owned */
};

/* Orders uidl_folded by folded name, for qsort(). */
static int cmp_folded(const void *a, const void *b)
{
	const struct uidl_folded *x = a, *y = b;

	return strcmp(x->folded, y->folded);
}

/*
 * No two different UIDLs get names that are equal but for case: all
 * UIDLs of 1 and 2 bytes, and random ones, have their names folded to
 * lower case, sorted, and neighbours compared.
 */
START_TEST(test_uidl_case_fold)
{
	const size_t n_short = 94 + 94 * 94, n_random = 20000;
	struct uidl_folded *all;
	uint32_t state = 0x9e3779b9;
	size_t i, j, n = 0, clash = 0;
	char *f;

	all = calloc(n_short + n_random, sizeof(*all));
	ck_assert_ptr_nonnull(all);
	for (i = 0; i < 94; i++) {
		snprintf(all[n++].uidl, sizeof(all->uidl), "%c", (int)i + 0x21);
		for (j = 0; j < 94; j++)
			snprintf(all[n++].uidl, sizeof(all->uidl), "%c%c",
				 (int)i + 0x21, (int)j + 0x21);
	}
	for (i = 0; i < n_random; i++)
		random_uidl(all[n++].uidl, &state);
	for (i = 0; i < n; i++) {
		f = names_uidl_to_file(all[i].uidl);
		ck_assert_ptr_nonnull(f);
		for (j = 0; f[j]; j++)
			if (f[j] >= 'A' && f[j] <= 'Z')
				f[j] = (char)(f[j] - 'A' + 'a');
		all[i].folded = f;
	}
	qsort(all, n, sizeof(*all), cmp_folded);
	for (i = 1; i < n && !clash; i++)
		if (strcmp(all[i - 1].folded, all[i].folded) == 0 &&
		    strcmp(all[i - 1].uidl, all[i].uidl) != 0)
			clash = i;
	ck_assert_msg(clash == 0, "\"%s\" and \"%s\" both fold to \"%s\"",
		      all[clash ? clash - 1 : 0].uidl, all[clash].uidl,
		      all[clash].folded);
	for (i = 0; i < n; i++)
		free(all[i].folded);
	free(all);
}
END_TEST

/* The tests of the POP3 UIDL <-> file name mapping, registered by the
 * Makefile. */
Suite *names_uidl_suite(void)
{
	Suite *s = suite_create("names_uidl");
	TCase *tc = tcase_create("tables");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_uidl_pairs, 0, N_OF(uidl_pairs));
	tcase_add_loop_test(tc, test_uidl_bad, 0, N_OF(uidl_bad));
	tcase_add_loop_test(tc, test_uidl_file_bad, 0, N_OF(uidl_file_bad));
	tcase_add_test(tc, test_uidl_all_bytes);
	tcase_add_test(tc, test_uidl_random);
	tcase_add_test(tc, test_uidl_case_fold);
	tcase_add_test(tc, test_message_names);
	tcase_add_test(tc, test_long_components);
	suite_add_tcase(s, tc);
	return s;
}
