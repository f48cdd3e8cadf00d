// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_journal: the journal's record parser (journal_parse()) on any
 * bytes, as a damaged log would give it. It must never crash or read
 * out of bounds; what it takes must be whole records (the bytes used
 * never exceed the input), every entry it keeps must be well formed (a
 * folder, a known kind, a target for a move, seqs rising), and encoding
 * those entries again and parsing that must give the same entries.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the run, naming the property that failed. */
#define FUZZ_JOURNAL_CHECK(cond)                                               \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_journal: %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

/* Whether two optional strings are equal. */
static bool fuzz_journal_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct journal_entry *e = NULL, *again = NULL;
	size_t n = 0, n2 = 0, used, len = 0, off = 0;
	unsigned char *buf;
	bool bad;

	used = journal_parse(data, size, &e, &n, &bad);
	FUZZ_JOURNAL_CHECK(used <= size);
	for (size_t i = 0; i < n; i++) {
		FUZZ_JOURNAL_CHECK(e[i].folder != NULL);
		FUZZ_JOURNAL_CHECK(e[i].kind >= JOURNAL_FLAGS &&
				   e[i].kind <= JOURNAL_APPEND);
		FUZZ_JOURNAL_CHECK(e[i].kind != JOURNAL_MOVE || e[i].target);
		FUZZ_JOURNAL_CHECK(i == 0 || e[i - 1].seq < e[i].seq);
		len += journal_encode(&e[i], false, NULL) +
		       journal_encode(&e[i], true, NULL);
	}
	buf = malloc(len ? len : 1);
	FUZZ_JOURNAL_CHECK(buf != NULL);
	for (size_t i = 0; i < n; i++) {
		off += journal_encode(&e[i], false, buf + off);
		off += journal_encode(&e[i], true, buf + off);
	}
	FUZZ_JOURNAL_CHECK(journal_parse(buf, len, &again, &n2, &bad) == len);
	FUZZ_JOURNAL_CHECK(!bad && n2 == n);
	for (size_t i = 0; i < n; i++) {
		FUZZ_JOURNAL_CHECK(again[i].seq == e[i].seq);
		FUZZ_JOURNAL_CHECK(again[i].kind == e[i].kind);
		FUZZ_JOURNAL_CHECK(again[i].state == e[i].state);
		FUZZ_JOURNAL_CHECK(again[i].uid == e[i].uid);
		FUZZ_JOURNAL_CHECK(again[i].size == e[i].size);
		FUZZ_JOURNAL_CHECK(fuzz_journal_same(again[i].folder,
						     e[i].folder));
		FUZZ_JOURNAL_CHECK(fuzz_journal_same(again[i].target,
						     e[i].target));
		FUZZ_JOURNAL_CHECK(fuzz_journal_same(again[i].add, e[i].add));
		FUZZ_JOURNAL_CHECK(fuzz_journal_same(again[i].flags,
						     e[i].flags));
	}
	free(buf);
	journal_entries_free(e, n);
	journal_entries_free(again, n2);
	return 0;
}
