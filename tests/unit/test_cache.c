// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests of cache: chunks, partial reads, the end of a message, LRU. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

/* A message body of n bytes whose every byte depends on its offset. */
static char *body(size_t n)
{
	char *b = malloc(n ? n : 1);
	size_t i;

	for (i = 0; i < n; i++)
		b[i] = (char)(i * 7 + i / 251);
	return b;
}

START_TEST(test_whole_small)
{
	struct cache *c = cache_new(1 << 20);
	struct cache_key k = {.folder = 1, .uidvalidity = 2, .uid = 3};
	char *b = body(5000), out[8000];
	bool eof;

	ck_assert_uint_eq(cache_read(c, &k, 0, out, 100, &eof), 0);
	ck_assert(!eof);
	cache_store(c, &k, 0, b, 5000, true);
	ck_assert_uint_eq(cache_read(c, &k, 0, out, sizeof(out), &eof), 5000);
	ck_assert(eof);
	ck_assert_mem_eq(out, b, 5000);
	ck_assert_uint_eq(cache_read(c, &k, 4990, out, 100, &eof), 10);
	ck_assert(eof);
	ck_assert_uint_eq(cache_read(c, &k, 5000, out, 100, &eof), 0);
	ck_assert(eof);
	/* Another UID or UIDVALIDITY is another message. */
	k.uid = 4;
	ck_assert_uint_eq(cache_read(c, &k, 0, out, 100, &eof), 0);
	k.uid = 3;
	k.uidvalidity = 9;
	ck_assert_uint_eq(cache_read(c, &k, 0, out, 100, &eof), 0);
	free(b);
	cache_free(c);
}
END_TEST

START_TEST(test_partial_not_eof)
{
	struct cache *c = cache_new(16 << 20);
	struct cache_key k = {.folder = 1, .uidvalidity = 1, .uid = 1};
	size_t n = 3 * CACHE_CHUNK + 100;
	char *b = body(n), *out = malloc(n);
	bool eof;

	/* A window that is not the end ends with a cut chunk: its bytes
	 * are served, never as the end of the message. */
	cache_store(c, &k, 0, b, CACHE_CHUNK + 10, false);
	ck_assert_uint_eq(cache_read(c, &k, 0, out, n, &eof), CACHE_CHUNK + 10);
	ck_assert(!eof);
	ck_assert_mem_eq(out, b, CACHE_CHUNK + 10);
	ck_assert(cache_has(c, &k, 0));
	ck_assert(!cache_has(c, &k, CACHE_CHUNK));
	ck_assert(cache_holds(c, &k, CACHE_CHUNK + 9));
	ck_assert(!cache_holds(c, &k, CACHE_CHUNK + 10));
	/* The rest, fetched later, joins up. */
	cache_store(c, &k, CACHE_CHUNK, b + CACHE_CHUNK, n - CACHE_CHUNK, true);
	ck_assert_uint_eq(cache_read(c, &k, 0, out, n, &eof), n);
	ck_assert(eof);
	ck_assert_mem_eq(out, b, n);
	ck_assert_uint_eq(cache_read(c, &k, 100, out, 2 * CACHE_CHUNK, &eof),
			  2 * CACHE_CHUNK);
	ck_assert(!eof);
	ck_assert_mem_eq(out, b + 100, 2 * CACHE_CHUNK);
	/* Unaligned stores are refused rather than misplaced (a message
	 * with nothing cached). */
	k.uid++;
	cache_store(c, &k, 10, b + 10, 100, true);
	ck_assert_uint_eq(cache_read(c, &k, 10, out, 100, &eof), 0);
	free(b);
	free(out);
	cache_free(c);
}
END_TEST

START_TEST(test_cut_head)
{
	struct cache *c = cache_new(16 << 20);
	struct cache_key k = {.folder = 7, .uidvalidity = 7, .uid = 7};
	size_t n = 2 * CACHE_CHUNK + 5000;
	char *b = body(n), *out = malloc(n);
	bool eof;

	/* The head of a message (head -c): kept, served, never whole. */
	cache_store(c, &k, 0, b, 16384, false);
	ck_assert_uint_eq(cache_read(c, &k, 0, out, 4096, &eof), 4096);
	ck_assert_mem_eq(out, b, 4096);
	ck_assert_uint_eq(cache_read(c, &k, 100, out, 20000, &eof), 16284);
	ck_assert(!eof);
	ck_assert_uint_eq(cache_read(c, &k, 16384, out, 100, &eof), 0);
	ck_assert(!eof);
	ck_assert(!cache_has(c, &k, 0));
	ck_assert(cache_holds(c, &k, 16383));
	ck_assert(!cache_holds(c, &k, 16384));
	/* A shorter head does not replace it, a longer one does. */
	cache_store(c, &k, 0, b, 8192, false);
	ck_assert_uint_eq(cache_read(c, &k, 0, out, n, &eof), 16384);
	cache_store(c, &k, 0, b, 32768, false);
	ck_assert_uint_eq(cache_read(c, &k, 0, out, n, &eof), 32768);
	ck_assert(!eof);
	/* The whole chunks replace it, and a head never replaces them. */
	cache_store(c, &k, 0, b, n, true);
	cache_store(c, &k, 0, b, 16384, false);
	ck_assert(cache_has(c, &k, 0));
	ck_assert_uint_eq(cache_read(c, &k, 0, out, n, &eof), n);
	ck_assert(eof);
	ck_assert_mem_eq(out, b, n);
	/* A head as long as a small message is not its end either. */
	k.uid = 8;
	cache_store(c, &k, 0, b, 3000, false);
	ck_assert_uint_eq(cache_read(c, &k, 0, out, 3000, &eof), 3000);
	ck_assert(!eof);
	ck_assert_uint_eq(cache_read(c, &k, 0, out, 4000, &eof), 3000);
	ck_assert(!eof);
	free(b);
	free(out);
	cache_free(c);
}
END_TEST

START_TEST(test_exact_chunk_multiple)
{
	struct cache *c = cache_new(16 << 20);
	struct cache_key k = {.folder = 5, .uidvalidity = 5, .uid = 5};
	char *b = body(2 * CACHE_CHUNK), *out = malloc(3 * CACHE_CHUNK);
	bool eof;

	cache_store(c, &k, 0, b, 2 * CACHE_CHUNK, true);
	ck_assert_uint_eq(cache_read(c, &k, 0, out, 3 * CACHE_CHUNK, &eof),
			  2 * CACHE_CHUNK);
	ck_assert(eof);
	/* An empty message is known to be empty. */
	k.uid = 6;
	cache_store(c, &k, 0, b, 0, true);
	ck_assert_uint_eq(cache_read(c, &k, 0, out, 10, &eof), 0);
	ck_assert(eof);
	free(b);
	free(out);
	cache_free(c);
}
END_TEST

START_TEST(test_lru_bound)
{
	struct cache *c = cache_new(4 * CACHE_CHUNK + 1024);
	char *b = body(CACHE_CHUNK), out[16];
	struct cache_stats st;
	struct cache_key k = {.folder = 1, .uidvalidity = 1, .uid = 0};
	bool eof;
	uint32_t i;

	for (i = 1; i <= 10; i++) {
		k.uid = i;
		cache_store(c, &k, 0, b, CACHE_CHUNK, true);
		/* Keep message 1 young by reading it. */
		k.uid = 1;
		cache_read(c, &k, 0, out, sizeof(out), &eof);
	}
	cache_get_stats(c, &st);
	ck_assert_uint_le(st.bytes, 4 * CACHE_CHUNK);
	ck_assert_uint_ge(st.evictions, 6);
	k.uid = 1;
	ck_assert(cache_has(c, &k, 0));
	k.uid = 10;
	ck_assert(cache_has(c, &k, 0));
	k.uid = 2;
	ck_assert(!cache_has(c, &k, 0));
	free(b);
	cache_free(c);
}
END_TEST

/* A moved message's chunks go to its new key; what the new key held
 * (another, longer message) is dropped first, never mixed in. */
START_TEST(test_rekey)
{
	struct cache *c = cache_new(64 << 20);
	struct cache_key ka = {.folder = 1, .uidvalidity = 2, .uid = 3},
			 kb = {.folder = 5, .uidvalidity = 6, .uid = 7},
			 kc = {.folder = 1, .uidvalidity = 2, .uid = 4};
	size_t na = 2 * CACHE_CHUNK, nb = 4 * CACHE_CHUNK + 9;
	char *a = body(na), *b = malloc(nb), *out = malloc(nb);
	struct cache_stats st;
	bool eof;

	memset(b, 'B', nb);
	/* a: its first two chunks only (no end yet); b: whole. */
	cache_store(c, &ka, 0, a, na, false);
	cache_store(c, &kb, 0, b, nb, true);
	cache_store(c, &kc, 0, "other", 5, true);
	cache_rekey(c, &ka, &kb);
	ck_assert_uint_eq(cache_read(c, &ka, 0, out, 100, &eof), 0);
	ck_assert_uint_eq(cache_read(c, &kb, 0, out, nb, &eof), na);
	ck_assert(!eof);
	ck_assert_mem_eq(out, a, na);
	ck_assert(!cache_has(c, &kb, 2 * CACHE_CHUNK));
	ck_assert(!cache_has(c, &kb, 4 * CACHE_CHUNK));
	ck_assert_uint_eq(cache_read(c, &kc, 0, out, 100, &eof), 5);
	ck_assert_mem_eq(out, "other", 5);
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.bytes, na + 5);
	ck_assert_uint_eq(st.chunks, 3);
	/* Re-keying onto itself, or a key with nothing, changes nothing. */
	cache_rekey(c, &kb, &kb);
	ck_assert_uint_eq(cache_read(c, &kb, 0, out, nb, &eof), na);
	cache_rekey(c, &ka, &kc);
	ck_assert_uint_eq(cache_read(c, &kc, 0, out, 100, &eof), 0);
	free(a);
	free(b);
	free(out);
	cache_free(c);
}
END_TEST

/*
 * Content identity: keys naming one identity (two folders, two UIDs)
 * share one body; a key of another identity, or of the same server id
 * with another size (store_oid_make()), or with none, never sees it; a
 * move between two keys of one identity keeps the chunks.
 */
START_TEST(test_identity)
{
	struct cache *c = cache_new(64 << 20);
	size_t n = CACHE_CHUNK + 77;
	struct store_oid x = store_oid_make("EMAILID", "Mabc", n);
	struct cache_key a = {
		.folder = 1, .uidvalidity = 2, .uid = 3, .oid = x};
	struct cache_key b = {
		.folder = 9, .uidvalidity = 8, .uid = 7, .oid = x};
	struct cache_key plain = {.folder = 1, .uidvalidity = 2, .uid = 3};
	struct cache_key other = {
		.folder = 9,
		.uidvalidity = 8,
		.uid = 7,
		.oid = store_oid_make("EMAILID", "Mabc", n + 1)};
	struct cache_key gm = {.folder = 9,
			       .uidvalidity = 8,
			       .uid = 7,
			       .oid = store_oid_make("X-GM-MSGID", "Mabc", n)};
	char *m = body(n), *out = malloc(n + 10);
	struct cache_stats st;
	bool eof;

	ck_assert(!store_oid_none(&x));
	ck_assert(!store_oid_none(&other.oid));
	cache_store(c, &a, 0, m, n, true);
	ck_assert_uint_eq(cache_read(c, &b, 0, out, n + 10, &eof), n);
	ck_assert(eof);
	ck_assert_mem_eq(out, m, n);
	ck_assert(cache_has(c, &b, CACHE_CHUNK));
	ck_assert_uint_eq(cache_read(c, &plain, 0, out, 10, &eof), 0);
	ck_assert_uint_eq(cache_read(c, &other, 0, out, 10, &eof), 0);
	ck_assert_uint_eq(cache_read(c, &gm, 0, out, 10, &eof), 0);
	cache_get_stats(c, &st);
	ck_assert_uint_eq(st.bytes, n);
	/* A move from a to b: one identity, nothing moves or goes. */
	cache_rekey(c, &a, &b);
	ck_assert_uint_eq(cache_read(c, &a, 0, out, n, &eof), n);
	ck_assert_mem_eq(out, m, n);
	free(m);
	free(out);
	cache_free(c);
}
END_TEST

Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *tc = tcase_create("cache");

	tcase_add_test(tc, test_whole_small);
	tcase_add_test(tc, test_partial_not_eof);
	tcase_add_test(tc, test_cut_head);
	tcase_add_test(tc, test_exact_chunk_multiple);
	tcase_add_test(tc, test_lru_bound);
	tcase_add_test(tc, test_rekey);
	tcase_add_test(tc, test_identity);
	suite_add_tcase(s, tc);
	return s;
}
