// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests of the journal of offline changes: what is added survives a
 * reopen, a log cut at every byte gives back exactly the changes whose
 * records were whole, a damaged record keeps what came before it (and
 * the file aside), spool files hold a new message's bytes, states and
 * compaction, and the flag arithmetic a kept change uses. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"

static char dir[256];

static int rm_cb(const char *p, const struct stat *st, int f, struct FTW *w)
{
	(void)st;
	(void)f;
	(void)w;
	return remove(p);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mailfs-jn-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	chmod(dir, 0700);
}

static void teardown(void)
{
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static struct journal *jopen(void)
{
	char err[512];
	struct journal *j = journal_open(dir, err, sizeof(err));

	ck_assert_msg(j != NULL, "%s", err);
	return j;
}

/* A flag change of uid in folder. */
static int add_flags(struct journal *j, const char *folder, uint32_t uid,
		     const char *add, const char *remove)
{
	struct journal_entry e = {0};

	e.kind = JOURNAL_FLAGS;
	e.folder = (char *)folder;
	e.uidvalidity = 7;
	e.uid = uid;
	e.add = (char *)add;
	e.remove = (char *)remove;
	return journal_add(j, &e);
}

struct src {
	const char *data;
	size_t len, off;
};

static long src_read(void *ctx, char *buf, size_t len)
{
	struct src *s = ctx;
	size_t n = s->len - s->off < len ? s->len - s->off : len;

	memcpy(buf, s->data + s->off, n);
	s->off += n;
	return (long)n;
}

static void log_path(char *buf, size_t len)
{
	snprintf(buf, len, "%s/journal/log", dir);
}

static unsigned char *slurp(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;

	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len_r = (size_t)n;
	return buf;
}

static void spit(const char *path, const unsigned char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fwrite(buf, 1, len, f), len);
	fclose(f);
}

START_TEST(test_entries_survive_reopen)
{
	struct journal *j = jopen();
	struct journal_entry *e, m = {0};
	size_t n;
	unsigned p, f;

	ck_assert_int_eq(add_flags(j, "INBOX", 3, "\\Seen", ""), 0);
	m.kind = JOURNAL_MOVE;
	m.folder = "INBOX";
	m.uidvalidity = 7;
	m.uid = 4;
	m.target = "Archive";
	m.new_uidvalidity = 9;
	m.new_uid = journal_uid_of(journal_next_seq(j));
	m.size = 1234;
	m.date = 1700000000;
	m.idhash = 0xabcdef01;
	m.flags = "\\Flagged";
	ck_assert_int_eq(journal_add(j, &m), 0);
	ck_assert_uint_eq(m.new_uid, journal_uid_of(m.seq));
	journal_close(j);

	j = jopen();
	journal_counts(j, &p, &f);
	ck_assert_uint_eq(p, 2);
	ck_assert_uint_eq(f, 0);
	ck_assert_int_eq(journal_entries(j, &e, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_int_eq(e[0].kind, JOURNAL_FLAGS);
	ck_assert_str_eq(e[0].add, "\\Seen");
	ck_assert_ptr_null(e[0].remove);
	ck_assert_int_eq(e[1].kind, JOURNAL_MOVE);
	ck_assert_str_eq(e[1].target, "Archive");
	ck_assert_uint_eq(e[1].uid, 4);
	ck_assert_uint_eq(e[1].size, 1234);
	ck_assert_int_eq(e[1].date, 1700000000);
	ck_assert_uint_eq(e[1].idhash, 0xabcdef01);
	ck_assert_str_eq(e[1].flags, "\\Flagged");
	ck_assert_uint_ge(e[1].new_uid, JOURNAL_UID_BASE);
	ck_assert_uint_gt(e[1].seq, e[0].seq);
	journal_entries_free(e, n);
	/* Seqs go on after a reopen: the UIDs the mount gives stay new. */
	ck_assert_uint_gt(journal_next_seq(j), m.seq);
	journal_close(j);
}
END_TEST

/* A log cut at every length gives back exactly the entries whose
 * records are whole, never a bad one, and takes new entries after. */
START_TEST(test_cut_at_every_byte)
{
	struct journal *j = jopen();
	char path[300];
	unsigned char *full;
	size_t len, cut;
	size_t ends[8], k = 0;
	struct stat st;

	log_path(path, sizeof(path));
	for (int i = 0; i < 6; i++) {
		ck_assert_int_eq(add_flags(j, i % 2 ? "INBOX" : "Lists/a b",
					   (uint32_t)(10 + i), "\\Seen",
					   i % 3 ? "\\Flagged" : ""),
				 0);
		ck_assert_int_eq(stat(path, &st), 0);
		ends[k++] = (size_t)st.st_size;
	}
	journal_close(j);
	full = slurp(path, &len);
	for (cut = 0; cut <= len; cut++) {
		struct journal_entry *e;
		size_t n, whole = 0;
		unsigned p, f;

		spit(path, full, cut);
		j = jopen();
		for (size_t i = 0; i < k; i++)
			whole += ends[i] <= cut;
		ck_assert_int_eq(journal_entries(j, &e, &n), 0);
		ck_assert_msg(n == whole, "cut at %zu: %zu entries, want %zu",
			      cut, n, whole);
		for (size_t i = 0; i < n; i++) {
			ck_assert_uint_eq(e[i].uid, 10 + i);
			ck_assert_str_eq(e[i].add, "\\Seen");
		}
		journal_entries_free(e, n);
		/* The cut tail is gone: a new entry after it reads back. */
		ck_assert_int_eq(add_flags(j, "INBOX", 99, "\\Draft", ""), 0);
		journal_close(j);
		j = jopen();
		journal_counts(j, &p, &f);
		ck_assert_uint_eq(p, whole + 1);
		journal_close(j);
	}
	free(full);
}
END_TEST

/* A record whose bytes changed: what came before it is kept, the file
 * is kept aside, nothing after it is taken for a change. */
START_TEST(test_damaged_record_kept_aside)
{
	struct journal *j = jopen();
	char path[300], aside[300];
	unsigned char *buf;
	size_t len, first;
	struct stat st;
	unsigned p, f;

	log_path(path, sizeof(path));
	ck_assert_int_eq(add_flags(j, "INBOX", 1, "\\Seen", ""), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	first = (size_t)st.st_size;
	ck_assert_int_eq(add_flags(j, "INBOX", 2, "\\Seen", ""), 0);
	ck_assert_int_eq(add_flags(j, "INBOX", 3, "\\Seen", ""), 0);
	journal_close(j);
	buf = slurp(path, &len);
	buf[first + 12] ^= 0x40; /* inside the second record's body */
	spit(path, buf, len);
	free(buf);
	j = jopen();
	journal_counts(j, &p, &f);
	ck_assert_uint_eq(p, 1);
	journal_close(j);
	snprintf(aside, sizeof(aside), "%s/journal", dir);
	{
		char cmd[400];

		snprintf(cmd, sizeof(cmd), "ls %s | grep -q '^log.damaged-'",
			 aside);
		ck_assert_int_eq(system(cmd), 0);
	}
}
END_TEST

START_TEST(test_spool_and_states)
{
	static const char msg[] =
		"Message-ID: <a@b>\r\nSubject: x\r\n\r\nhi\r\n";
	struct journal *j = jopen();
	struct journal_entry e = {0}, *all;
	struct src s = {msg, sizeof(msg) - 1, 0};
	char buf[128], path[400];
	size_t n;
	unsigned p, f;
	int fd;
	ssize_t r;

	e.kind = JOURNAL_APPEND;
	e.folder = "Drafts";
	e.size = sizeof(msg) - 1;
	e.flags = "\\Draft";
	ck_assert_int_eq(journal_add_append(j, &e, src_read, &s), 0);
	ck_assert_uint_ne(e.idhash, 0); /* from its Message-ID */
	fd = journal_spool_open(j, e.seq);
	ck_assert_int_ge(fd, 0);
	r = read(fd, buf, sizeof(buf));
	close(fd);
	ck_assert_int_eq(r, (ssize_t)sizeof(msg) - 1);
	ck_assert_int_eq(memcmp(buf, msg, sizeof(msg) - 1), 0);

	/* Refused: kept, counted, its bytes still there. */
	ck_assert_int_eq(journal_mark(j, e.seq, JOURNAL_FAILED, 0, 0), 0);
	ck_assert_int_eq(add_flags(j, "INBOX", 5, "", "\\Seen"), 0);
	journal_counts(j, &p, &f);
	ck_assert_uint_eq(p, 1);
	ck_assert_uint_eq(f, 1);
	ck_assert_int_eq(journal_entries(j, &all, &n), 0);
	ck_assert_int_eq(journal_mark(j, all[1].seq, JOURNAL_DONE, 0, 0), 0);
	journal_entries_free(all, n);
	ck_assert_int_eq(journal_compact(j), 0);
	journal_close(j);

	/* The next mount tries the refused message again. */
	j = jopen();
	journal_counts(j, &p, &f);
	ck_assert_uint_eq(p, 1);
	ck_assert_uint_eq(f, 0);
	ck_assert_int_eq(journal_mark(j, e.seq, JOURNAL_DONE, 3, 44), 0);
	journal_spool_path(j, e.seq, path, sizeof(path));
	ck_assert_int_ne(access(path, F_OK), 0); /* sent: spool file gone */
	journal_counts(j, &p, &f);
	ck_assert_uint_eq(p + f, 0);
	journal_close(j);
}
END_TEST

/* An APPEND cut while being sent stays to be sent, marked so that the
 * next try looks for it first. */
START_TEST(test_sending_survives_reopen)
{
	struct journal *j = jopen();
	struct journal_entry *e;
	size_t n;
	unsigned p, f;

	ck_assert_int_eq(add_flags(j, "INBOX", 1, "\\Seen", ""), 0);
	ck_assert_int_eq(journal_entries(j, &e, &n), 0);
	ck_assert_int_eq(journal_mark(j, e[0].seq, JOURNAL_SENDING, 0, 0), 0);
	journal_entries_free(e, n);
	journal_close(j);
	j = jopen();
	journal_counts(j, &p, &f);
	ck_assert_uint_eq(p, 1);
	ck_assert_int_eq(journal_entries(j, &e, &n), 0);
	ck_assert_int_eq(e[0].state, JOURNAL_SENDING);
	journal_entries_free(e, n);
	journal_close(j);
}
END_TEST

START_TEST(test_spool_short_source_fails)
{
	struct journal *j = jopen();
	struct journal_entry e = {0};
	struct src s = {"abc", 3, 0};
	unsigned p, f;

	e.kind = JOURNAL_APPEND;
	e.folder = "INBOX";
	e.size = 10; /* more than the source gives */
	ck_assert_int_lt(journal_add_append(j, &e, src_read, &s), 0);
	journal_counts(j, &p, &f);
	ck_assert_uint_eq(p, 0);
	ck_assert_int_lt(journal_spool_open(j, e.seq), 0);
	journal_close(j);
}
END_TEST

START_TEST(test_flags_arithmetic)
{
	char *a, *r, *x;

	x = journal_flags_apply("\\Seen $Label1", "\\Flagged", "\\Seen");
	ck_assert_str_eq(x, "$Label1 \\Flagged");
	free(x);
	x = journal_flags_apply("", "\\Seen \\seen", "");
	ck_assert_str_eq(x, "\\Seen");
	free(x);
	ck_assert_int_eq(
		journal_flags_diff("\\Seen $Label1", "\\seen \\Draft", &a, &r),
		0);
	ck_assert_str_eq(a, "\\Draft");
	ck_assert_str_eq(r, "$Label1");
	free(a);
	free(r);
	ck_assert_int_eq(journal_flags_diff(NULL, "", &a, &r), 0);
	ck_assert_str_eq(a, "");
	ck_assert_str_eq(r, "");
	free(a);
	free(r);
}
END_TEST

/* The codec alone: garbage never parses as a change. */
START_TEST(test_parse_rejects_garbage)
{
	unsigned char junk[256];
	struct journal_entry *e = NULL;
	size_t n = 0, used;
	bool bad;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)(i * 37 + 11);
	used = journal_parse(junk, sizeof(junk), &e, &n, &bad);
	ck_assert_uint_eq(used, 0);
	ck_assert_uint_eq(n, 0);
	journal_entries_free(e, n);
}
END_TEST

Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_entries_survive_reopen);
	tcase_add_test(tc, test_cut_at_every_byte);
	tcase_add_test(tc, test_damaged_record_kept_aside);
	tcase_add_test(tc, test_spool_and_states);
	tcase_add_test(tc, test_spool_short_source_fails);
	tcase_add_test(tc, test_sending_survives_reopen);
	tcase_add_test(tc, test_flags_arithmetic);
	tcase_add_test(tc, test_parse_rejects_garbage);
	suite_add_tcase(s, tc);
	return s;
}
