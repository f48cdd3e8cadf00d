/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store_journal: the offline changes of the journal (journal.h) as the
 * disk-cache store uses them: shown in listings, their bytes found, and
 * sent to the server (replay). See store_journal.c.
 */
#ifndef MAILFS_STORE_JOURNAL_H
#define MAILFS_STORE_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

struct journal;
struct store;
struct store_listing;
struct diskcache;

/*
 * Shows the kept changes in a full listing of folder (the saved one):
 * flags changed, messages moved out or removed gone, messages moved in
 * or new there (with the UIDs the mount gave them) added. 0 or -errno.
 */
int store_journal_overlay(struct journal *j, const char *folder,
			  struct store_listing *l);
/* Whether a kept change (pending, or a refused new message) is about
 * folder, as its source or its target. */
bool store_journal_touches(struct journal *j, const char *folder);

/* Where the bytes of a message are. */
struct store_journal_src {
	char *folder; /* owned: a message of the server (or disk cache) */
	uint32_t uidvalidity, uid;
	int fd; /* or a spool file (owned), of size bytes */
	uint64_t size;
};

/*
 * The bytes of (folder, uidvalidity, uid) when a kept change put it
 * there (uid >= JOURNAL_UID_BASE): 1 with src's folder/uidvalidity/uid,
 * 2 with src's fd, 0 when uid is not one the mount gave, -ENOENT when
 * the change is gone.
 */
int store_journal_body(struct journal *j, const char *folder,
		       uint32_t uidvalidity, uint32_t uid,
		       struct store_journal_src *src);
void store_journal_src_clear(struct store_journal_src *src);

struct store_journal_counts {
	unsigned sent, dropped, failed;
};

/*
 * Sends the pending changes to inner, in order, each marked in the
 * journal as the server answers: done, dropped (a conflict, logged with
 * the message's name), or for a refused new message failed (kept, its
 * spool file named in the log). A moved message's body on disk follows
 * it (diskcache_rekey). touched(ctx, folder) for each folder a change
 * was about. -EIO when the connection failed (the rest stays pending).
 */
int store_journal_replay(struct journal *j, struct store *inner,
			 struct diskcache *dc,
			 void (*touched)(void *ctx, const char *folder),
			 void *ctx, struct store_journal_counts *c);

#endif
