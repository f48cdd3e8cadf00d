/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * journal: changes made while the server cannot be reached, kept on disk
 * until the server has them (disconnected operation, RFC 4549).
 *
 * It lives beside the disk cache, in `journal/` of the cache directory
 * (under the same lock): `log`, an append-only file of records, and
 * `spool/`, the bytes of each new message. Every record is written and
 * fsynced before journal_add() returns, so a change the mount accepted
 * survives SIGKILL and power loss; a record cut short by a crash is cut
 * off at the next open, and a damaged one makes the open keep the file
 * aside (never drop what follows it silently).
 *
 * An entry is pending until journal_mark() says what became of it: done
 * (the server confirmed), dropped (a conflict: the message or folder is
 * gone), or failed (a new message the server refused: its spool file is
 * kept and it is counted until a later replay stores it). The journal
 * only keeps them; store_cache decides what to send and when.
 */
#ifndef MAILFS_JOURNAL_H
#define MAILFS_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The UIDs the mount gives the messages a change put in a folder before
 * the server tells their own: the top of the UID space, which no server
 * reaches (store_cache refuses to journal in a folder whose UIDNEXT
 * does). */
#define JOURNAL_UID_BASE 0xFFF00000u
/* The most entries kept at once (the log refuses more). */
#define JOURNAL_MAX_ENTRIES 65536u
/* The largest record read back (a folder name is at most 16 KiB). */
#define JOURNAL_MAX_RECORD (256u * 1024)

enum journal_kind {
	JOURNAL_FLAGS = 1, /* +FLAGS add, -FLAGS remove */
	JOURNAL_MOVE = 2, /* to target */
	JOURNAL_EXPUNGE = 3, /* that UID alone */
	JOURNAL_APPEND = 4, /* a new message, bytes in the spool */
};

enum journal_state {
	JOURNAL_PENDING = 0,
	JOURNAL_DONE = 1,
	JOURNAL_DROPPED = 2,
	JOURNAL_FAILED = 3,
	/* Pending, and sent at least once without an answer (a new
	 * message's APPEND cut short): the server may have it already. */
	JOURNAL_SENDING = 4,
};

/* Whether an entry is still to be sent (pending or sending). */
static inline bool journal_is_pending(enum journal_state s)
{
	return s == JOURNAL_PENDING || s == JOURNAL_SENDING;
}

/*
 * One change. The message it is about is (folder, uidvalidity, uid), as
 * the mount showed it (uid may be one the mount gave, >= JOURNAL_UID_BASE);
 * size, date and idhash are that message's (its name), and for an APPEND
 * the new message's. MOVE and APPEND show the message as (target or
 * folder, new_uidvalidity, new_uid) until the server tells real_uid.
 */
struct journal_entry {
	uint64_t seq;
	enum journal_kind kind;
	enum journal_state state;
	char *folder; /* owned: server name */
	uint32_t uidvalidity, uid;
	char *add, *remove; /* owned, FLAGS: space separated */
	char *target; /* owned, MOVE: server name */
	char *flags; /* owned, MOVE, APPEND: its flags */
	uint32_t new_uidvalidity, new_uid;
	uint32_t real_uidvalidity, real_uid; /* once done, 0 if not told */
	uint64_t size;
	int64_t date;
	uint32_t idhash;
};

struct journal;

/*
 * Opens (making it if need be) the journal in dir (the disk cache's
 * directory, already checked by safedir and locked by the caller). NULL
 * with err set on failure.
 */
struct journal *journal_open(const char *dir, char *err, size_t errlen);
void journal_close(struct journal *j);

/* Adds a change (its seq is given here, into e->seq) and makes it
 * durable. -ENOSPC when JOURNAL_MAX_ENTRIES are kept, or an errno of
 * the write. */
int journal_add(struct journal *j, struct journal_entry *e);
/* Adds a new message: its size bytes, pulled from read(), go to a spool
 * file first (fsynced), then the entry. */
int journal_add_append(struct journal *j, struct journal_entry *e,
		       long (*read)(void *ctx, char *buf, size_t len),
		       void *ctx);
/* Records what became of entry seq (and where the server put the
 * message, for done); a done APPEND's spool file goes after. */
int journal_mark(struct journal *j, uint64_t seq, enum journal_state state,
		 uint32_t real_uidvalidity, uint32_t real_uid);

/* A copy of every entry still kept (pending, failed, and the done and
 * dropped ones of this mount), in order: free with
 * journal_entries_free(). */
int journal_entries(struct journal *j, struct journal_entry **e_r, size_t *n_r);
void journal_entries_free(struct journal_entry *e, size_t n);
void journal_entry_clear(struct journal_entry *e);

void journal_counts(struct journal *j, unsigned *pending_r, unsigned *failed_r);
/* The next seq journal_add() will give: the UID the mount shows a new
 * message or a moved one under is JOURNAL_UID_BASE plus it (mod 2^20). */
uint64_t journal_next_seq(struct journal *j);
uint32_t journal_uid_of(uint64_t seq);

/* A spool file, opened for reading (-errno if none); its path for a log
 * line. */
int journal_spool_open(struct journal *j, uint64_t seq);
void journal_spool_path(struct journal *j, uint64_t seq, char *buf, size_t len);

/* Writes the log anew with the pending and failed entries only (temp
 * file, fsync, rename): called when no change is pending. */
int journal_compact(struct journal *j);

/* Flags as pure text (space separated, compared without case). */
/* flags + add - remove, newly allocated. */
char *journal_flags_apply(const char *flags, const char *add,
			  const char *remove);
/* What turns from into to: *add_r and *remove_r newly allocated. */
int journal_flags_diff(const char *from, const char *to, char **add_r,
		       char **remove_r);

/* The record codec (unit tests, fuzzing): encodes an entry or a state
 * record into buf (NULL: size only); returns its length. */
size_t journal_encode(const struct journal_entry *e, bool state_only,
		      unsigned char *buf);
/* Parses the records of a log image (after its header), applying each
 * to the entries; returns the bytes that parsed whole, sets *bad_r when
 * a whole record did not check (damage, not a cut). */
size_t journal_parse(const unsigned char *buf, size_t len,
		     struct journal_entry **e, size_t *n, bool *bad_r);

#endif
