// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests of diskcache (bodies, listings, folder list, damage, sizes,
 * UIDVALIDITY, LRU, permissions, folder mtimes, migration) and of
 * prefetch_parse(). */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "testdir.h"
#include "cache.h"
#include "diskcache.h"
#include "prefetch.h"

static char tmpdir[256];

static void setup(void)
{
	testdir_make(tmpdir, sizeof(tmpdir), "dc");
}

static void teardown(void)
{
	testdir_remove(tmpdir);
}

/* A message body of n bytes whose every byte depends on its offset. */
static char *body(size_t n, unsigned seed)
{
	char *b = malloc(n ? n : 1);
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (char)(i * 7 + i / 251 + seed);
	return b;
}

static struct diskcache *open_started(uint64_t max)
{
	char err[256];
	struct diskcache *dc = diskcache_open(tmpdir, max, 0, err, sizeof(err));

	ck_assert_msg(dc != NULL, "%s", err);
	ck_assert_int_eq(diskcache_start(dc), 0);
	return dc;
}

/* Saves a listing of folder: UIDs 1..n with the given sizes. */
static void put_listing_of(struct diskcache *dc, const char *folder,
			   uint32_t uidvalidity, const uint64_t *sizes,
			   size_t n)
{
	struct store_msg m[8];
	struct store_listing l = {.uidvalidity = uidvalidity,
				  .uidnext = (uint32_t)n + 1,
				  .exists = (uint32_t)n,
				  .modseq = 77,
				  .msgs = m,
				  .n = n};
	size_t i;

	memset(m, 0, sizeof(m));
	for (i = 0; i < n; i++) {
		m[i].uid = (uint32_t)i + 1;
		m[i].size = sizes[i];
		m[i].date = 1700000000 + (time_t)i;
		m[i].idhash = 0xabc00000u + (uint32_t)i;
		m[i].flags = (char *)(i ? "\\Seen" : "");
	}
	diskcache_put_listing(dc, folder, &l);
}

/* Saves a listing of folder F: UIDs 1..n with the given sizes. */
static void put_listing(struct diskcache *dc, uint32_t uidvalidity,
			const uint64_t *sizes, size_t n)
{
	put_listing_of(dc, "F", uidvalidity, sizes, n);
}

/* Reads [off, off + len) of UID uid of folder; the length or -1. */
static long get_of(struct diskcache *dc, const char *folder, uint32_t uv,
		   uint32_t uid, uint64_t off, uint64_t len, char **data_r)
{
	size_t n;

	*data_r = NULL;
	if (diskcache_read(dc, folder, uv, uid, DISKCACHE_WHOLE, off, len,
			   data_r, &n) < 0)
		return -1;
	return (long)n;
}

/* Reads [off, off + len) of UID uid; returns the length or -1. */
static long get(struct diskcache *dc, uint32_t uv, uint32_t uid, uint64_t off,
		uint64_t len, char **data_r)
{
	size_t n;

	*data_r = NULL;
	if (diskcache_read(dc, "F", uv, uid, DISKCACHE_WHOLE, off, len, data_r,
			   &n) < 0)
		return -1;
	return (long)n;
}

START_TEST(test_round_trip_and_remount)
{
	uint64_t sizes[2] = {5000, 3 * CACHE_CHUNK + 10};
	struct diskcache *dc = open_started(1 << 30);
	char *a = body(5000, 1), *b = body(sizes[1], 2), *d;
	struct store_folder fl[2] = {
		{"INBOX", '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0},
		{"F", '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0}};
	struct store_folder *got;
	struct store_listing l;
	size_t n;

	ck_assert(!diskcache_has_folders(dc));
	diskcache_put_folders(dc, fl, 2);
	put_listing(dc, 9, sizes, 2);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 5000, true, false,
			0);
	diskcache_store(dc, "F", 9, 2, DISKCACHE_WHOLE, 0, b, sizes[1], true,
			false, 0);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert_int_eq(get(dc, 9, 1, 0, 5000 + CACHE_CHUNK, &d), 5000);
	ck_assert_mem_eq(d, a, 5000);
	free(d);
	/* Another UIDVALIDITY is never served. */
	ck_assert_int_eq(get(dc, 10, 1, 0, 100, &d), -1);
	diskcache_close(dc);

	dc = open_started(1 << 30);
	ck_assert(diskcache_has_folders(dc));
	ck_assert_int_eq(diskcache_get_folders(dc, &got, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(got[0].name, "INBOX");
	ck_assert_str_eq(got[1].name, "F");
	store_folders_free(got, n);
	ck_assert_int_eq(diskcache_get_listing(dc, "F", &l), 0);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_uint_eq(l.uidvalidity, 9);
	ck_assert_uint_eq(l.modseq, 77);
	ck_assert_uint_eq(l.msgs[1].size, sizes[1]);
	ck_assert_uint_eq(l.msgs[1].idhash, 0xabc00001u);
	ck_assert_str_eq(l.msgs[1].flags, "\\Seen");
	store_listing_clear(&l);
	/* A range in the middle, across chunks, and the end. */
	ck_assert_int_eq(get(dc, 9, 2, CACHE_CHUNK, 2 * CACHE_CHUNK, &d),
			 2 * CACHE_CHUNK);
	ck_assert_mem_eq(d, b + CACHE_CHUNK, 2 * CACHE_CHUNK);
	free(d);
	ck_assert_int_eq(get(dc, 9, 2, 3 * CACHE_CHUNK, 2 * CACHE_CHUNK, &d),
			 10);
	free(d);
	ck_assert(diskcache_has_all(dc, "F", 9, 2, DISKCACHE_WHOLE));
	diskcache_close(dc);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_wrong_size_is_never_kept)
{
	uint64_t sizes[1] = {5000};
	struct diskcache *dc = open_started(1 << 30);
	char *a = body(6000, 1), *d;

	put_listing(dc, 9, sizes, 1);
	/* Shorter than listed, longer than listed: neither is kept. */
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 4999, true, false,
			0);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 6000, true, false,
			0);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert_int_eq(get(dc, 9, 1, 0, 8000, &d), -1);
	/* Not listed at all: not kept either. */
	diskcache_store(dc, "F", 9, 2, DISKCACHE_WHOLE, 0, a, 100, true, false,
			0);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert_int_eq(get(dc, 9, 2, 0, 8000, &d), -1);
	diskcache_close(dc);
	free(a);
}
END_TEST

START_TEST(test_partial_body_is_never_served_as_whole)
{
	uint64_t sizes[1] = {2 * CACHE_CHUNK + 100};
	struct diskcache *dc = open_started(1 << 30);
	char *a = body(sizes[0], 3), *d;

	put_listing(dc, 9, sizes, 1);
	/* The first chunk only, end not seen. */
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, CACHE_CHUNK,
			false, false, 0);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert_int_eq(get(dc, 9, 1, 0, 4096, &d), 4096);
	ck_assert_mem_eq(d, a, 4096);
	free(d);
	ck_assert_int_eq(get(dc, 9, 1, 0, 2 * CACHE_CHUNK, &d), -1);
	ck_assert_int_eq(get(dc, 9, 1, CACHE_CHUNK, 10, &d), -1);
	ck_assert(!diskcache_has_all(dc, "F", 9, 1, DISKCACHE_WHOLE));
	/* The end without eof: the short last chunk is not kept. */
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, CACHE_CHUNK,
			a + CACHE_CHUNK, CACHE_CHUNK + 100, false, false, 0);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert_int_eq(get(dc, 9, 1, 0, sizes[0] + CACHE_CHUNK, &d), -1);
	ck_assert_int_eq(get(dc, 9, 1, 0, 2 * CACHE_CHUNK, &d),
			 2 * CACHE_CHUNK);
	free(d);
	diskcache_close(dc);
	free(a);
}
END_TEST

/* The path of the one body file in the cache (there must be one). */
static void one_body_file(char *out, size_t len)
{
	char dir[512];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/bodies/1-9", tmpdir);
	d = opendir(dir);
	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) && e->d_name[0] == '.')
		;
	ck_assert_ptr_nonnull(e);
	snprintf(out, len, "%s/%s", dir, e->d_name);
	closedir(d);
}

START_TEST(test_damaged_file_is_discarded)
{
	uint64_t sizes[1] = {5000};
	struct diskcache *dc = open_started(1 << 30);
	char *a = body(5000, 4), *d, path[1024];
	struct diskcache_stats st;
	int fd;

	put_listing(dc, 9, sizes, 1);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 5000, true, false,
			0);
	ck_assert(diskcache_flush(dc, 10000));
	one_body_file(path, sizeof(path));
	fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "zz", 2, 1000), 2);
	close(fd);
	ck_assert_int_eq(get(dc, 9, 1, 0, 8000, &d), -1);
	diskcache_get_stats(dc, &st);
	ck_assert_uint_eq(st.dropped, 1);
	/* Stored again, it is served again. */
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 5000, true, false,
			0);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert_int_eq(get(dc, 9, 1, 0, 8000, &d), 5000);
	ck_assert_mem_eq(d, a, 5000);
	free(d);
	/* Truncated. */
	ck_assert_int_eq(truncate(path, 100), 0);
	ck_assert_int_eq(get(dc, 9, 1, 0, 8000, &d), -1);
	diskcache_close(dc);
	free(a);
}
END_TEST

START_TEST(test_new_uidvalidity_drops_bodies)
{
	uint64_t sizes[1] = {5000};
	struct diskcache *dc = open_started(1 << 30);
	char *a = body(5000, 5), *d;

	put_listing(dc, 9, sizes, 1);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 5000, true, false,
			0);
	ck_assert(diskcache_flush(dc, 10000));
	put_listing(dc, 10, sizes, 1);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert_int_eq(get(dc, 9, 1, 0, 8000, &d), -1);
	ck_assert_int_eq(get(dc, 10, 1, 0, 8000, &d), -1);
	diskcache_close(dc);
	free(a);
}
END_TEST

START_TEST(test_lru_bound)
{
	uint64_t sizes[3] = {8000, 8000, 8000};
	struct diskcache *dc = open_started(20000);
	struct diskcache_stats st;
	char *a = body(8000, 6), *d;
	uint32_t uid;

	put_listing(dc, 9, sizes, 3);
	for (uid = 1; uid <= 2; uid++)
		diskcache_store(dc, "F", 9, uid, DISKCACHE_WHOLE, 0, a, 8000,
				true, false, 0);
	ck_assert(diskcache_flush(dc, 10000));
	/* UID 1 used last: UID 2 is the oldest when 3 arrives. */
	ck_assert_int_eq(get(dc, 9, 1, 0, 9000, &d), 8000);
	free(d);
	diskcache_store(dc, "F", 9, 3, DISKCACHE_WHOLE, 0, a, 8000, true, false,
			0);
	ck_assert(diskcache_flush(dc, 10000));
	diskcache_get_stats(dc, &st);
	ck_assert_uint_le(st.bytes, 20000);
	ck_assert_int_eq(get(dc, 9, 2, 0, 9000, &d), -1);
	ck_assert_int_eq(get(dc, 9, 1, 0, 9000, &d), 8000);
	free(d);
	ck_assert_int_eq(get(dc, 9, 3, 0, 9000, &d), 8000);
	free(d);
	diskcache_close(dc);
	free(a);
}
END_TEST

START_TEST(test_garbage_database_starts_anew)
{
	uint64_t sizes[1] = {5000};
	struct diskcache *dc = open_started(1 << 30);
	struct store_folder fl[1] = {
		{"F", '.', 0, STORE_COUNT_UNKNOWN, 0, 0, 0, 0}};
	char path[512], junk[4096], *a = body(5000, 7), *d;
	int fd;

	diskcache_put_folders(dc, fl, 1);
	put_listing(dc, 9, sizes, 1);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 5000, true, false,
			0);
	diskcache_close(dc);
	snprintf(path, sizeof(path), "%s/cache.db", tmpdir);
	memset(junk, 'j', sizeof(junk));
	fd = open(path, O_WRONLY | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, junk, sizeof(junk)), sizeof(junk));
	close(fd);
	dc = open_started(1 << 30);
	ck_assert(!diskcache_has_folders(dc));
	ck_assert_int_eq(get(dc, 9, 1, 0, 8000, &d), -1);
	/* And it works. */
	put_listing(dc, 9, sizes, 1);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 5000, true, false,
			0);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert_int_eq(get(dc, 9, 1, 0, 8000, &d), 5000);
	free(d);
	diskcache_close(dc);
	free(a);
}
END_TEST

/* A database as mailfs wrote it before folder mtimes (schema 1): one
 * folder F in the folder list, listed with 2 messages. */
static void make_schema_1(void)
{
	char path[512];
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/cache.db", tmpdir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(
		sqlite3_exec(
			db,
			"PRAGMA journal_mode=WAL;"
			"CREATE TABLE meta(k TEXT PRIMARY KEY, v TEXT);"
			"INSERT INTO meta VALUES('schema', '1');"
			"CREATE TABLE folders(id INTEGER PRIMARY KEY,"
			" name TEXT UNIQUE NOT NULL, delim INTEGER DEFAULT 0,"
			" attrs INTEGER DEFAULT 0, in_list INTEGER DEFAULT 0,"
			" pos INTEGER DEFAULT 0, listed INTEGER DEFAULT 0,"
			" uidvalidity INTEGER DEFAULT 0,"
			" uidnext INTEGER DEFAULT 0,"
			" nexists INTEGER DEFAULT 0,"
			" modseq INTEGER DEFAULT 0);"
			"CREATE TABLE msgs(folder INTEGER, uid INTEGER,"
			" size INTEGER, date INTEGER, idhash INTEGER,"
			" flags TEXT, PRIMARY KEY(folder, uid)) WITHOUT ROWID;"
			"CREATE TABLE bodies(folder INTEGER,"
			" uidvalidity INTEGER, uid INTEGER, section TEXT,"
			" chunk INTEGER, len INTEGER, total INTEGER,"
			" used INTEGER, PRIMARY KEY(folder, uidvalidity, uid,"
			" section, chunk)) WITHOUT ROWID;"
			"INSERT INTO folders VALUES(1, 'F', 46, 0, 1, 0, 1,"
			" 9, 3, 2, 77);"
			"INSERT INTO msgs VALUES(1, 1, 5000, 1700000000, 1,"
			" '');"
			"INSERT INTO msgs VALUES(1, 2, 6000, 1700000001, 2,"
			" '\\Seen');",
			NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
}

/* A listing state (no messages). */
static struct store_listing state(uint32_t uidnext, uint64_t modseq)
{
	struct store_listing s = {.uidvalidity = 9,
				  .uidnext = uidnext,
				  .exists = uidnext - 1,
				  .modseq = modseq};

	return s;
}

/*
 * Folder mtimes (diskcache_mtime()): a cache of schema 1 is migrated
 * with everything it held; a folder's mtime is kept with the state it
 * was seen in, moves to now for another state, is never lowered, and
 * comes back after a remount.
 */
START_TEST(test_mtimes_kept_and_schema_1_migrated)
{
	struct store_listing s1 = state(3, 77), s2 = state(4, 80);
	struct store_listing l;
	struct store_folder *f;
	struct diskcache *dc;
	char path[512], err[256];
	sqlite3 *db;
	sqlite3_stmt *st;
	size_t n;

	make_schema_1();
	dc = diskcache_open(tmpdir, 1 << 30, 0, err, sizeof(err));
	ck_assert_msg(dc != NULL, "%s", err);
	ck_assert_int_eq(diskcache_start(dc), 0);
	/* What schema 1 held is there. */
	ck_assert(diskcache_has_folders(dc));
	ck_assert(diskcache_get_state(dc, "F", &l));
	ck_assert_uint_eq(l.modseq, 77);
	ck_assert_int_eq(diskcache_get_listing(dc, "F", &l), 0);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.msgs[1].flags, "\\Seen");
	store_listing_clear(&l);
	/* No mtime kept yet. */
	ck_assert_int_eq(diskcache_mtime(dc, "F", NULL, 5000), 0);
	ck_assert_int_eq(diskcache_mtime(dc, "G", NULL, 5000), 0);
	/* First seen: now; the same state later: the same time. */
	ck_assert_int_eq(diskcache_mtime(dc, "F", &s1, 5000), 5000);
	ck_assert_int_eq(diskcache_mtime(dc, "F", &s1, 6000), 5000);
	ck_assert_int_eq(diskcache_mtime(dc, "F", NULL, 6000), 5000);
	/* Another state: now. */
	ck_assert_int_eq(diskcache_mtime(dc, "F", &s2, 7000), 7000);
	ck_assert_int_eq(diskcache_mtime(dc, "F", &s2, 7500), 7000);
	/* What the mount showed is kept, never lowered; the state stays. */
	diskcache_keep_mtime(dc, "F", 8000);
	diskcache_keep_mtime(dc, "F", 100);
	ck_assert_int_eq(diskcache_mtime(dc, "F", &s2, 9000), 8000);
	/* A clock set back: the time does not go back. */
	ck_assert_int_eq(diskcache_mtime(dc, "F", &s1, 50), 8000);
	diskcache_keep_mtime(dc, "H", 4000); /* a folder new to the cache */
	diskcache_close(dc);

	dc = open_started(1 << 30);
	ck_assert_int_eq(diskcache_mtime(dc, "F", NULL, 10000), 8000);
	ck_assert_int_eq(diskcache_mtime(dc, "F", &s1, 10000), 8000);
	ck_assert_int_eq(diskcache_mtime(dc, "F", &s2, 11000), 11000);
	ck_assert_int_eq(diskcache_mtime(dc, "H", NULL, 10000), 4000);
	/* The saved folder list (offline) carries them. */
	ck_assert_int_eq(diskcache_get_folders(dc, &f, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(f[0].name, "F");
	ck_assert_int_eq(f[0].mtime, 11000);
	store_folders_free(f, n);
	diskcache_close(dc);
	snprintf(path, sizeof(path), "%s/cache.db", tmpdir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db,
					    "SELECT v FROM meta WHERE"
					    " k = 'schema'",
					    -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "3");
	sqlite3_finalize(st);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_modes_and_lock)
{
	uint64_t sizes[1] = {5000};
	struct diskcache *dc = open_started(1 << 30), *dc2;
	char *a = body(5000, 8), path[1024], err[256];
	struct stat st;

	put_listing(dc, 9, sizes, 1);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 5000, true, false,
			0);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert_int_eq(stat(tmpdir, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/cache.db", tmpdir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	one_body_file(path, sizeof(path));
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(st.st_mode & 0777, 0600);
	/* A second user of the same cache is refused. */
	dc2 = diskcache_open(tmpdir, 1 << 30, 0, err, sizeof(err));
	ck_assert_ptr_null(dc2);
	ck_assert_ptr_nonnull(strstr(err, "in use"));
	diskcache_close(dc);
	free(a);
}
END_TEST

START_TEST(test_default_dir)
{
	char *d;

	setenv("XDG_CACHE_HOME", "/x/cache", 1);
	d = diskcache_default_dir("me@example.org", "imap.example.org", "993");
	ck_assert_str_eq(d,
			 "/x/cache/mailfs/me@example.org@imap.example.org:993");
	free(d);
	d = diskcache_default_dir("a/b", "h", "1");
	ck_assert_str_eq(d, "/x/cache/mailfs/a%2Fb@h:1");
	free(d);
	unsetenv("XDG_CACHE_HOME");
	setenv("HOME", "/home/u", 1);
	d = diskcache_default_dir("u", "h", "143");
	ck_assert_str_eq(d, "/home/u/.cache/mailfs/u@h:143");
	free(d);
}
END_TEST

START_TEST(test_prefetch_parse)
{
	char **v;
	bool all;

	ck_assert_int_eq(prefetch_parse("all", &v, &all), 0);
	ck_assert(all);
	ck_assert_ptr_null(v);
	ck_assert_int_eq(prefetch_parse("%61ll", &v, &all), 0);
	ck_assert(!all);
	ck_assert_str_eq(v[0], "all");
	ck_assert_ptr_null(v[1]);
	prefetch_free_names(v);
	ck_assert_int_eq(prefetch_parse("INBOX:a%3Ab%2Cc%25d:x/y", &v, &all),
			 0);
	ck_assert_str_eq(v[0], "INBOX");
	ck_assert_str_eq(v[1], "a:b,c%d");
	ck_assert_str_eq(v[2], "x/y");
	ck_assert_ptr_null(v[3]);
	prefetch_free_names(v);
	ck_assert_int_eq(prefetch_parse("a::b", &v, &all), -1);
	ck_assert_int_eq(prefetch_parse(":a", &v, &all), -1);
	ck_assert_int_eq(prefetch_parse("a:", &v, &all), -1);
	ck_assert_int_eq(prefetch_parse("%zz", &v, &all), -1);
	ck_assert_int_eq(prefetch_parse("a%2", &v, &all), -1);
	ck_assert_int_eq(prefetch_parse("%00", &v, &all), -1);
}
END_TEST

START_TEST(test_unindexed_files_are_swept)
{
	uint64_t sizes[1] = {5000};
	struct diskcache *dc = open_started(1 << 30);
	char *a = body(5000, 9), *d, path[1024], orphan[1100], tmp[1100];
	struct store_listing l;
	int fd;

	put_listing(dc, 9, sizes, 1);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 5000, true, false,
			0);
	diskcache_close(dc);
	one_body_file(path, sizeof(path));
	/* What a SIGKILL can leave: a piece without its row, a temporary. */
	snprintf(orphan, sizeof(orphan), "%s/bodies/1-9/7-m-0", tmpdir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(orphan, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	fd = open(tmp, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	dc = open_started(1 << 30);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert_int_ne(access(orphan, F_OK), 0);
	ck_assert_int_ne(access(tmp, F_OK), 0);
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_eq(diskcache_get_listing(dc, "F", &l), 0);
	store_listing_clear(&l);
	ck_assert_int_eq(get(dc, 9, 1, 0, 8000, &d), 5000);
	free(d);
	diskcache_close(dc);
	free(a);
}
END_TEST

/* The path of body file name (UID-m-CHUNK) of UIDVALIDITY uv, whatever
 * the folder's id; false when there is none. */
static bool body_file_of(uint32_t uv, const char *name, char *path, size_t len)
{
	char dir[512], want[32];
	struct dirent *e;
	bool found = false;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/bodies", tmpdir);
	snprintf(want, sizeof(want), "-%u", uv);
	d = opendir(dir);
	while (d && !found && (e = readdir(d))) {
		size_t n = strlen(e->d_name), w = strlen(want);
		struct stat st;

		if (n <= w || strcmp(e->d_name + n - w, want) != 0)
			continue;
		snprintf(path, len, "%s/%s/%s", dir, e->d_name, name);
		found = stat(path, &st) == 0;
	}
	if (d)
		closedir(d);
	return found;
}

/* A moved message's body is written again under its new key (and
 * checked there as such), the old key's goes, and both stay so across a
 * remount. */
START_TEST(test_rekey_moves_body)
{
	uint64_t sizes[2] = {5000, 3 * CACHE_CHUNK + 10}, gsizes[1] = {1};
	struct diskcache *dc = open_started(1 << 30);
	char *a = body(5000, 1), *b = body(sizes[1], 2), *d, path[1024];
	int round;

	put_listing(dc, 9, sizes, 2);
	put_listing_of(dc, "G", 20, gsizes, 1);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 5000, true, false,
			0);
	diskcache_store(dc, "F", 9, 2, DISKCACHE_WHOLE, 0, b, sizes[1], true,
			false, 0);
	ck_assert(diskcache_flush(dc, 10000));
	diskcache_rekey(dc, "F", 9, 2, "G", 20, 7, true);
	/* A target the cache never heard of is made. */
	diskcache_rekey(dc, "F", 9, 1, "H", 30, 4, true);
	ck_assert(diskcache_flush(dc, 10000));
	for (round = 0; round < 2; round++) {
		ck_assert_int_eq(get_of(dc, "G", 20, 7, 0, sizes[1] + 100, &d),
				 (long)sizes[1]);
		ck_assert_mem_eq(d, b, sizes[1]);
		free(d);
		ck_assert(diskcache_has_all(dc, "G", 20, 7, DISKCACHE_WHOLE));
		ck_assert_int_eq(get_of(dc, "H", 30, 4, 0, 9000, &d), 5000);
		ck_assert_mem_eq(d, a, 5000);
		free(d);
		ck_assert_int_eq(get(dc, 9, 2, 0, 100, &d), -1);
		ck_assert_int_eq(get(dc, 9, 1, 0, 100, &d), -1);
		ck_assert(!body_file_of(9, "2-m-0", path, sizeof(path)));
		ck_assert(body_file_of(20, "7-m-3", path, sizeof(path)));
		diskcache_close(dc);
		dc = open_started(1 << 30);
	}
	diskcache_close(dc);
	free(a);
	free(b);
}
END_TEST

/* Re-keyed onto a key that held another message's pieces (longer, other
 * bytes), the new key serves the moved message alone: none of the other
 * one's pieces stay under it, in this mount or the next. */
START_TEST(test_rekey_onto_another_never_mixes)
{
	uint64_t sizes[1] = {CACHE_CHUNK + 5000};
	uint64_t gsizes[7] = {1, 1, 1, 1, 1, 1, 4 * CACHE_CHUNK + 3};
	struct diskcache *dc = open_started(1 << 30);
	char *a = body(sizes[0], 1), *c = body(gsizes[6], 3), *d;
	int round;

	put_listing(dc, 9, sizes, 1);
	put_listing_of(dc, "G", 20, gsizes, 7);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, sizes[0], true,
			false, 0);
	diskcache_store(dc, "G", 20, 7, DISKCACHE_WHOLE, 0, c, gsizes[6], true,
			false, 0);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert(diskcache_has_all(dc, "G", 20, 7, DISKCACHE_WHOLE));
	diskcache_rekey(dc, "F", 9, 1, "G", 20, 7, true);
	ck_assert(diskcache_flush(dc, 10000));
	for (round = 0; round < 2; round++) {
		long n = get_of(dc, "G", 20, 7, 0, gsizes[6], &d);

		ck_assert_int_eq(n, (long)sizes[0]);
		ck_assert_mem_eq(d, a, sizes[0]);
		free(d);
		/* Past the moved message's end: nothing, never c's bytes. */
		n = get_of(dc, "G", 20, 7, 2 * CACHE_CHUNK, 100, &d);
		ck_assert_int_le(n, 0);
		free(d);
		n = get_of(dc, "G", 20, 7, CACHE_CHUNK, 100, &d);
		ck_assert_int_eq(n, 100);
		ck_assert_mem_eq(d, a + CACHE_CHUNK, 100);
		free(d);
		diskcache_close(dc);
		dc = open_started(1 << 30);
	}
	diskcache_close(dc);
	free(a);
	free(c);
}
END_TEST

/* A piece of the source that fails its check is not carried over: the
 * new key misses where it would have been, and is right elsewhere. */
START_TEST(test_rekey_skips_damaged_piece)
{
	uint64_t sizes[1] = {2 * CACHE_CHUNK + 10}, gsizes[1] = {1};
	struct diskcache *dc = open_started(1 << 30);
	char *a = body(sizes[0], 5), *d, path[1024];
	int fd;

	put_listing(dc, 9, sizes, 1);
	put_listing_of(dc, "G", 20, gsizes, 1);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, sizes[0], true,
			false, 0);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert(body_file_of(9, "1-m-1", path, sizeof(path)));
	fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "zz", 2, 1000), 2);
	close(fd);
	diskcache_rekey(dc, "F", 9, 1, "G", 20, 3, true);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert_int_eq(get_of(dc, "G", 20, 3, 0, sizes[0], &d), -1);
	ck_assert_int_eq(get_of(dc, "G", 20, 3, CACHE_CHUNK, 100, &d), -1);
	ck_assert_int_eq(get_of(dc, "G", 20, 3, 0, 100, &d), 100);
	ck_assert_mem_eq(d, a, 100);
	free(d);
	ck_assert_int_eq(get_of(dc, "G", 20, 3, 2 * CACHE_CHUNK, 100, &d), 10);
	ck_assert_mem_eq(d, a + 2 * CACHE_CHUNK, 10);
	free(d);
	diskcache_close(dc);
	free(a);
}
END_TEST

/* ---- content identities (objects) ---- */

/* Saves a listing of folder: UIDs first, first + 1, ... with the given
 * sizes and content identities. */
static void put_listing_ids(struct diskcache *dc, const char *folder,
			    uint32_t uidvalidity, uint32_t first,
			    const uint64_t *sizes, const struct store_oid *oids,
			    size_t n)
{
	struct store_msg m[8];
	struct store_listing l = {.uidvalidity = uidvalidity,
				  .uidnext = first + (uint32_t)n,
				  .exists = (uint32_t)n,
				  .modseq = 5,
				  .msgs = m,
				  .n = n};
	size_t i;

	ck_assert_uint_le(n, 8);
	memset(m, 0, sizeof(m));
	for (i = 0; i < n; i++) {
		m[i].uid = first + (uint32_t)i;
		m[i].size = sizes[i];
		m[i].date = 1700000000;
		m[i].oid = oids[i];
		m[i].flags = "";
	}
	diskcache_put_listing(dc, folder, &l);
}

/* Opens the cache again and reads the saved listings of the folders
 * named (NULL-terminated), as a mount's first listings do: the listed
 * sizes and identities are known from then on. */
static struct diskcache *reopen(struct diskcache *dc, uint64_t max, ...)
{
	struct store_listing l;
	const char *folder;
	va_list ap;

	diskcache_close(dc);
	dc = open_started(max);
	va_start(ap, max);
	while ((folder = va_arg(ap, const char *))) {
		ck_assert_int_eq(diskcache_get_listing(dc, folder, &l), 0);
		store_listing_clear(&l);
	}
	va_end(ap);
	return dc;
}

/* A server-side copy: folder G lists the messages of F under other UIDs
 * with the same identities; what was kept for F is read for G (across a
 * remount too), each under its own size, and stored once. */
START_TEST(test_identity_shared_by_copies)
{
	uint64_t sizes[2] = {5000, 2 * CACHE_CHUNK + 7};
	struct store_oid oids[2] = {store_oid_make("EMAILID", "Ma", sizes[0]),
				    store_oid_make("EMAILID", "Mb", sizes[1])};
	struct diskcache *dc = open_started(1 << 30);
	char *a = body(sizes[0], 1), *b = body(sizes[1], 2), *d;
	struct diskcache_stats st;
	int round;

	put_listing_ids(dc, "F", 9, 1, sizes, oids, 2);
	put_listing_ids(dc, "G", 30, 100, sizes, oids, 2);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, sizes[0], true,
			false, 0);
	diskcache_store(dc, "F", 9, 2, DISKCACHE_WHOLE, 0, b, sizes[1], true,
			false, 0);
	ck_assert(diskcache_flush(dc, 10000));
	diskcache_get_stats(dc, &st);
	ck_assert_uint_eq(st.bytes, sizes[0] + sizes[1]);
	for (round = 0; round < 2; round++) {
		ck_assert_int_eq(get_of(dc, "G", 30, 100, 0, 9000, &d),
				 (long)sizes[0]);
		ck_assert_mem_eq(d, a, sizes[0]);
		free(d);
		ck_assert_int_eq(get_of(dc, "G", 30, 101, CACHE_CHUNK,
					2 * CACHE_CHUNK, &d),
				 (long)(sizes[1] - CACHE_CHUNK));
		ck_assert_mem_eq(d, b + CACHE_CHUNK, sizes[1] - CACHE_CHUNK);
		free(d);
		ck_assert(diskcache_has_all(dc, "G", 30, 101, DISKCACHE_WHOLE));
		ck_assert(diskcache_has_all(dc, "F", 9, 1, DISKCACHE_WHOLE));
		/* A UID G does not list has no identity: nothing. */
		ck_assert_int_eq(get_of(dc, "G", 30, 102, 0, 10, &d), -1);
		dc = reopen(dc, 1 << 30, "F", "G", NULL);
	}
	/* Stored again through G: still one copy on disk. */
	diskcache_store(dc, "G", 30, 100, DISKCACHE_WHOLE, 0, a, sizes[0], true,
			false, 0);
	ck_assert(diskcache_flush(dc, 10000));
	diskcache_get_stats(dc, &st);
	ck_assert_uint_eq(st.bytes, sizes[0] + sizes[1]);
	diskcache_close(dc);
	free(a);
	free(b);
}
END_TEST

/*
 * An identity a server reuses for a message of another size: under
 * store_oid_make() it is another oid (another object); and an oid that
 * came with another listed size all the same (the check itself) is
 * never served: the read misses, and a store keeps that message under
 * its own key, the object's bytes untouched.
 */
START_TEST(test_identity_of_another_size_is_never_served)
{
	uint64_t fsizes[1] = {5000}, gsizes[1] = {5001};
	struct store_oid x = store_oid_make("X-GM-MSGID", "42", fsizes[0]);
	struct store_oid x2 = store_oid_make("X-GM-MSGID", "42", gsizes[0]);
	struct diskcache *dc = open_started(1 << 30);
	char *a = body(5000, 1), *c = body(5001, 9), *d;
	int round;

	ck_assert(x.a != x2.a || x.b != x2.b);
	put_listing_ids(dc, "F", 9, 1, fsizes, &x, 1);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 5000, true, false,
			0);
	ck_assert(diskcache_flush(dc, 10000));
	/* The reused identity, as oids are made: a miss. */
	put_listing_ids(dc, "G", 30, 1, gsizes, &x2, 1);
	ck_assert_int_eq(get_of(dc, "G", 30, 1, 0, 9000, &d), -1);
	ck_assert(!diskcache_has_all(dc, "G", 30, 1, DISKCACHE_WHOLE));
	/* The same oid with another size: a miss too, in this mount and the
	 * next. */
	for (round = 0; round < 2; round++) {
		put_listing_ids(dc, "G", 30, 1, gsizes, &x, 1);
		ck_assert_int_eq(get_of(dc, "G", 30, 1, 0, 9000, &d), -1);
		ck_assert_int_eq(get_of(dc, "G", 30, 1, 0, 10, &d), -1);
		ck_assert(!diskcache_has_all(dc, "G", 30, 1, DISKCACHE_WHOLE));
		dc = reopen(dc, 1 << 30, "F", "G", NULL);
	}
	/* Fetched from the server, it is kept and served as its own. */
	put_listing_ids(dc, "G", 30, 1, gsizes, &x, 1);
	diskcache_store(dc, "G", 30, 1, DISKCACHE_WHOLE, 0, c, 5001, true,
			false, 0);
	ck_assert(diskcache_flush(dc, 10000));
	for (round = 0; round < 2; round++) {
		ck_assert_int_eq(get_of(dc, "G", 30, 1, 0, 9000, &d), 5001);
		ck_assert_mem_eq(d, c, 5001);
		free(d);
		/* And F's message is still F's bytes. */
		ck_assert_int_eq(get_of(dc, "F", 9, 1, 0, 9000, &d), 5000);
		ck_assert_mem_eq(d, a, 5000);
		free(d);
		dc = reopen(dc, 1 << 30, "F", "G", NULL);
	}
	diskcache_close(dc);
	free(a);
	free(c);
}
END_TEST

/* A body kept under a message's own key before its listing gave an
 * identity is still served; an object's damaged piece is discarded
 * (the object with it) and what is stored next is served. */
START_TEST(test_identity_keys_and_damage)
{
	uint64_t sizes[1] = {5000};
	struct store_oid x = store_oid_make("EMAILID", "Mx", sizes[0]);
	struct diskcache *dc = open_started(1 << 30);
	char *a = body(5000, 3), *d, path[1024];
	struct diskcache_stats st;
	int fd;

	put_listing(dc, 9, sizes, 1);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 5000, true, false,
			0);
	ck_assert(diskcache_flush(dc, 10000));
	put_listing_ids(dc, "F", 9, 1, sizes, &x, 1);
	ck_assert_int_eq(get(dc, 9, 1, 0, 9000, &d), 5000);
	ck_assert_mem_eq(d, a, 5000);
	free(d);
	/* Now kept under the identity too: G reads it. */
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 5000, true, false,
			0);
	ck_assert(diskcache_flush(dc, 10000));
	put_listing_ids(dc, "G", 30, 7, sizes, &x, 1);
	ck_assert_int_eq(get_of(dc, "G", 30, 7, 0, 9000, &d), 5000);
	ck_assert_mem_eq(d, a, 5000);
	free(d);
	ck_assert(body_file_of(0, "1-m-0", path, sizeof(path)));
	fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, "zz", 2, 1000), 2);
	close(fd);
	ck_assert_int_eq(get_of(dc, "G", 30, 7, 0, 9000, &d), -1);
	diskcache_get_stats(dc, &st);
	ck_assert_uint_eq(st.dropped, 1);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert(!body_file_of(0, "1-m-0", path, sizeof(path)));
	diskcache_store(dc, "G", 30, 7, DISKCACHE_WHOLE, 0, a, 5000, true,
			false, 0);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert_int_eq(get_of(dc, "G", 30, 7, 0, 9000, &d), 5000);
	ck_assert_mem_eq(d, a, 5000);
	free(d);
	/* Under a new id: the damaged one's is never given again. */
	ck_assert(body_file_of(0, "2-m-0", path, sizeof(path)));
	diskcache_close(dc);
	free(a);
}
END_TEST

/* Objects are evicted like bodies, and come back when stored again. */
START_TEST(test_identity_lru)
{
	uint64_t sizes[3] = {8000, 8000, 8000};
	struct store_oid oids[3] = {store_oid_make("EMAILID", "M1", 8000),
				    store_oid_make("EMAILID", "M2", 8000),
				    store_oid_make("EMAILID", "M3", 8000)};
	struct diskcache *dc = open_started(20000);
	struct diskcache_stats st;
	char *a = body(8000, 6), *d;
	uint32_t uid;

	put_listing_ids(dc, "F", 9, 1, sizes, oids, 3);
	put_listing_ids(dc, "G", 8, 1, sizes, oids, 3);
	for (uid = 1; uid <= 3; uid++)
		diskcache_store(dc, "F", 9, uid, DISKCACHE_WHOLE, 0, a, 8000,
				true, false, 0);
	ck_assert(diskcache_flush(dc, 10000));
	diskcache_get_stats(dc, &st);
	ck_assert_uint_le(st.bytes, 20000);
	ck_assert_int_eq(get_of(dc, "G", 8, 1, 0, 9000, &d), -1);
	ck_assert_int_eq(get_of(dc, "G", 8, 3, 0, 9000, &d), 8000);
	free(d);
	diskcache_store(dc, "G", 8, 1, DISKCACHE_WHOLE, 0, a, 8000, true, false,
			0);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert_int_eq(get_of(dc, "F", 9, 1, 0, 9000, &d), 8000);
	ck_assert_mem_eq(d, a, 8000);
	free(d);
	dc = reopen(dc, 20000, "F", NULL);
	ck_assert_int_eq(get_of(dc, "F", 9, 1, 0, 9000, &d), 8000);
	free(d);
	diskcache_close(dc);
	free(a);
}
END_TEST

/* A body kept under its message's own key before the listing gave its
 * identity (a cache of schema 2) moves to the identity's object when it
 * is read: then another folder's copy finds it, in this mount and the
 * next. */
START_TEST(test_identity_promotes_older_body)
{
	uint64_t sizes[1] = {CACHE_CHUNK + 900};
	struct store_oid x = store_oid_make("EMAILID", "Mold", sizes[0]);
	struct diskcache *dc = open_started(1 << 30);
	char *a = body(sizes[0], 7), *d, path[1024];
	int round;

	put_listing(dc, 9, sizes, 1);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, sizes[0], true,
			false, 0);
	ck_assert(diskcache_flush(dc, 10000));
	put_listing_ids(dc, "F", 9, 1, sizes, &x, 1);
	put_listing_ids(dc, "G", 30, 4, sizes, &x, 1);
	ck_assert_int_eq(get_of(dc, "G", 30, 4, 0, 10, &d), -1);
	ck_assert_int_eq(get(dc, 9, 1, 0, 10, &d), 10);
	free(d);
	ck_assert(diskcache_flush(dc, 10000));
	for (round = 0; round < 2; round++) {
		ck_assert_int_eq(get_of(dc, "G", 30, 4, 0, 2 * CACHE_CHUNK, &d),
				 (long)sizes[0]);
		ck_assert_mem_eq(d, a, sizes[0]);
		free(d);
		ck_assert_int_eq(get(dc, 9, 1, 0, 2 * CACHE_CHUNK, &d),
				 (long)sizes[0]);
		ck_assert_mem_eq(d, a, sizes[0]);
		free(d);
		ck_assert(body_file_of(0, "1-m-1", path, sizeof(path)));
		ck_assert(!body_file_of(9, "1-m-0", path, sizeof(path)));
		dc = reopen(dc, 1 << 30, "F", "G", NULL);
	}
	diskcache_close(dc);
	free(a);
}
END_TEST

/* A message moved through the mount keeps its identity: read under its
 * new UID before the target's next listing, nothing is copied. */
START_TEST(test_identity_rekey_keeps_object)
{
	uint64_t sizes[1] = {5000}, gsizes[1] = {1};
	struct store_oid x = store_oid_make("EMAILID", "Mm", 5000), none = {0};
	struct diskcache *dc = open_started(1 << 30);
	char *a = body(5000, 4), *d, path[1024];

	put_listing_ids(dc, "F", 9, 1, sizes, &x, 1);
	put_listing_ids(dc, "G", 20, 1, gsizes, &none, 1);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, a, 5000, true, false,
			0);
	ck_assert(diskcache_flush(dc, 10000));
	diskcache_rekey(dc, "F", 9, 1, "G", 20, 7, true);
	ck_assert(diskcache_flush(dc, 10000));
	ck_assert_int_eq(get_of(dc, "G", 20, 7, 0, 9000, &d), 5000);
	ck_assert_mem_eq(d, a, 5000);
	free(d);
	ck_assert(!body_file_of(20, "7-m-0", path, sizeof(path)));
	ck_assert(body_file_of(0, "1-m-0", path, sizeof(path)));
	diskcache_close(dc);
	free(a);
}
END_TEST

/* A database as mailfs wrote it before content identities (schema 2):
 * folder F listed with 2 messages, the first one's body on disk. */
static void make_schema_2(const char *first_body, size_t len)
{
	char path[512];
	sqlite3 *db;
	struct diskcache *dc;
	uint64_t sizes[2] = {5000, 6000};

	/* Made by this mailfs, then taken back to what schema 2 had. */
	dc = open_started(1 << 30);
	put_listing(dc, 9, sizes, 2);
	diskcache_store(dc, "F", 9, 1, DISKCACHE_WHOLE, 0, first_body, len,
			true, false, 0);
	diskcache_close(dc);
	snprintf(path, sizeof(path), "%s/cache.db", tmpdir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(
		sqlite3_exec(db,
			     "DROP TABLE objects;"
			     "ALTER TABLE folders DROP COLUMN ids;"
			     "ALTER TABLE msgs DROP COLUMN oid_a;"
			     "ALTER TABLE msgs DROP COLUMN oid_b;"
			     "UPDATE meta SET v = '2' WHERE k = 'schema';",
			     NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
}

/* A cache of schema 2 is migrated: its listing and bodies are served
 * as they were (offline too), but online the folder is to be listed
 * again, once, for its identities. */
START_TEST(test_schema_2_migrated)
{
	uint64_t sizes[2] = {5000, 6000};
	struct store_oid oids[2] = {store_oid_make("EMAILID", "M1", 5000),
				    store_oid_make("EMAILID", "M2", 6000)};
	char *a = body(5000, 2), *d, path[512];
	struct store_listing l;
	struct diskcache *dc;
	sqlite3 *db;
	sqlite3_stmt *st;

	make_schema_2(a, 5000);
	dc = open_started(1 << 30);
	ck_assert(diskcache_get_state(dc, "F", &l));
	ck_assert(!diskcache_listing_has_ids(dc, "F"));
	ck_assert(diskcache_listing_has_ids(dc, "G")); /* none saved */
	ck_assert_int_eq(diskcache_get_listing(dc, "F", &l), 0);
	ck_assert_uint_eq(l.n, 2);
	ck_assert(store_oid_none(&l.msgs[0].oid));
	store_listing_clear(&l);
	ck_assert_int_eq(get(dc, 9, 1, 0, 9000, &d), 5000);
	ck_assert_mem_eq(d, a, 5000);
	free(d);
	/* Listed again with identities: saved with them. */
	put_listing_ids(dc, "F", 9, 1, sizes, oids, 2);
	ck_assert(diskcache_listing_has_ids(dc, "F"));
	diskcache_close(dc);
	dc = open_started(1 << 30);
	ck_assert(diskcache_listing_has_ids(dc, "F"));
	ck_assert_int_eq(diskcache_get_listing(dc, "F", &l), 0);
	ck_assert_uint_eq(l.n, 2);
	ck_assert(l.msgs[1].oid.a == oids[1].a && l.msgs[1].oid.b == oids[1].b);
	store_listing_clear(&l);
	/* The body kept before is still served (its own key). */
	ck_assert_int_eq(get(dc, 9, 1, 0, 9000, &d), 5000);
	ck_assert_mem_eq(d, a, 5000);
	free(d);
	diskcache_close(dc);
	snprintf(path, sizeof(path), "%s/cache.db", tmpdir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db,
					    "SELECT v FROM meta WHERE"
					    " k = 'schema'",
					    -1, &st, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "3");
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(a);
}
END_TEST

Suite *diskcache_suite(void)
{
	Suite *s = suite_create("diskcache");
	TCase *tc = tcase_create("diskcache");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_round_trip_and_remount);
	tcase_add_test(tc, test_wrong_size_is_never_kept);
	tcase_add_test(tc, test_partial_body_is_never_served_as_whole);
	tcase_add_test(tc, test_damaged_file_is_discarded);
	tcase_add_test(tc, test_new_uidvalidity_drops_bodies);
	tcase_add_test(tc, test_lru_bound);
	tcase_add_test(tc, test_garbage_database_starts_anew);
	tcase_add_test(tc, test_mtimes_kept_and_schema_1_migrated);
	tcase_add_test(tc, test_modes_and_lock);
	tcase_add_test(tc, test_unindexed_files_are_swept);
	tcase_add_test(tc, test_rekey_moves_body);
	tcase_add_test(tc, test_rekey_onto_another_never_mixes);
	tcase_add_test(tc, test_rekey_skips_damaged_piece);
	tcase_add_test(tc, test_identity_shared_by_copies);
	tcase_add_test(tc, test_identity_of_another_size_is_never_served);
	tcase_add_test(tc, test_identity_keys_and_damage);
	tcase_add_test(tc, test_identity_lru);
	tcase_add_test(tc, test_identity_rekey_keeps_object);
	tcase_add_test(tc, test_identity_promotes_older_body);
	tcase_add_test(tc, test_schema_2_migrated);
	tcase_add_test(tc, test_default_dir);
	tcase_add_test(tc, test_prefetch_parse);
	suite_add_tcase(s, tc);
	return s;
}
