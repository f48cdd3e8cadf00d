/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store: what the filesystem needs from a mail server, as a small
 * vtable that the IMAP store (store_imap.c) implements and a POP3 store
 * can implement too. Every operation returns 0 or a negative errno; the
 * mapping from protocol errors to errno lives in one place per protocol
 * (store_errno_imap()).
 */
#ifndef MAILFS_STORE_H
#define MAILFS_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "msgstruct.h"

struct imap_error;
struct imap_config;

/* The most bytes one fetch may ask of one message: the protocol layer
 * refuses larger literals, which bounds what a server can make us hold. */
#define STORE_MAX_PIECE (16u * 1024 * 1024)
/* The most folders and messages of one folder that a listing keeps: a
 * server that sends more is shown that many (with a log line), so that
 * it cannot make mailfs grow without bound. */
#define STORE_MAX_FOLDERS 200000u
#define STORE_MAX_MESSAGES 2000000u
/* A folder name the server sends longer than this (bytes) is left out,
 * and so is every folder once the names add up to
 * STORE_MAX_FOLDER_BYTES: no usable folder comes near (a path in the
 * mount is at most PATH_MAX, 4096 bytes, and a name takes at most a few
 * bytes per byte of path), and a server cannot make mailfs hold more. */
#define STORE_MAX_FOLDER_NAME 16384u
#define STORE_MAX_FOLDER_BYTES (64u * 1024 * 1024)

enum store_folder_attr {
	STORE_FOLDER_NOSELECT = 1u << 0, /* a directory without messages */
	STORE_FOLDER_NOINFERIORS = 1u << 1,
	STORE_FOLDER_TRASH = 1u << 2,
};

struct store_folder {
	char *name; /* owned: the server's name (modified UTF-7) */
	char delim; /* hierarchy delimiter, '\0' if flat */
	unsigned attrs;
	/* Messages in it, when the folder list tells (IMAP LIST-STATUS),
	 * else STORE_COUNT_UNKNOWN. */
	uint32_t messages;
	/* Its state as the folder list told it (LIST-STATUS), 0 when
	 * not told (modseq: only with CONDSTORE). */
	uint32_t uidnext, uidvalidity;
	uint64_t modseq;
	/* When the store last saw the folder's content change (wall
	 * clock; store_cache keeps it across mounts), 0 when it cannot
	 * tell. */
	time_t mtime;
};

#define STORE_COUNT_UNKNOWN UINT32_MAX

/*
 * A message's content identity, where the server gives one that stays
 * with the message's bytes across folders (OBJECTID's EMAILID, RFC
 * 8474; Gmail's X-GM-MSGID): 128 bits of a SHA-256 of the kind of
 * identity, the server's text and the message's RFC822.SIZE, so that an
 * identity a server reuses for a message of another size is another
 * one. All zero: the server gives none (store_oid_none()). Two messages
 * of one account with the same oid are taken to have the same bytes:
 * their bodies are cached once (cache.h, diskcache.h).
 */
struct store_oid {
	uint64_t a, b;
};

static inline bool store_oid_none(const struct store_oid *o)
{
	return o->a == 0 && o->b == 0;
}

/* The oid of a message of size bytes whose identity of that kind
 * ("EMAILID", "X-GM-MSGID") the server gives as id (a NUL-terminated
 * text): never all zero. */
struct store_oid store_oid_make(const char *kind, const char *id,
				uint64_t size);

/* A message: its identity (uid, within a folder and UIDVALIDITY) and
 * what its name is made of (date, size, idhash; see names_message()),
 * unless the store names it itself (name). */
struct store_msg {
	uint32_t uid;
	uint64_t size;
	time_t date;
	uint32_t idhash; /* names_msgid_hash() of its Message-ID */
	struct store_oid oid; /* its content identity, or none */
	char *flags; /* owned: space separated, as IMAP spells them */
	char *name; /* owned: the file name, NULL for names_message() */
	char *ref; /* owned: the store's own id (POP3 UIDL), or NULL */
	/* In a delta (store_listing.delta): a known message whose flags
	 * are given (only uid and flags are set), not a new one. */
	bool flags_only;
};

/* UIDs lo..hi, lo <= hi. */
struct store_uid_range {
	uint32_t lo, hi;
};

/* A set of UIDs as ranges; store_ranges_normalize() sorts and merges
 * them so that store_ranges_has() can search. */
struct store_ranges {
	struct store_uid_range *r; /* owned */
	size_t n, cap;
};

/*
 * A folder's listing, or only its state when msgs is NULL, or (delta)
 * the changes since an earlier listing: msgs then holds the messages
 * new since it and the known messages whose flags changed
 * (flags_only), vanished the UIDs expunged since; with present set,
 * every known message outside it is gone too; with complete set, every
 * message still there appears in msgs (flags_only for the known ones),
 * so a known message absent from msgs is gone. exists is the count
 * after the changes, which a merge checks.
 */
struct store_listing {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t exists;
	uint64_t modseq; /* 0 if the server has no CONDSTORE */
	struct store_msg *msgs; /* owned */
	size_t n;
	bool delta;
	bool complete;
	bool have_present;
	struct store_ranges vanished; /* owned */
	struct store_ranges present; /* owned */
	/* clock_mono() when the listing was last known true, if before it
	 * was made (a saved listing that the folder list showed
	 * unchanged): its age counts from then. 0: when made. */
	time_t as_of;
	/* When the store last saw the folder's content change (wall
	 * clock), 0 when it cannot tell: see store_folder.mtime. */
	time_t mtime;
};

/* A piece of a message's body, handed to a fetch callback. */
struct store_piece {
	uint32_t uid;
	uint64_t offset;
	const char *data; /* borrowed, valid during the callback */
	size_t len;
};

/* One message of a folder's summary (borrowed, valid during the
 * callback). */
struct store_summary {
	uint32_t uid;
	uint64_t size;
	time_t date;
	const char *flags; /* space separated, \Recent left out */
	struct msgstruct_envelope env; /* raw From and Subject */
};

struct store;
struct search_query;

/* One folder's part of a fetch across folders (store_ops.fetch_many). */
struct store_fetch_req {
	const char *folder; /* borrowed */
	uint32_t uidvalidity;
	const uint32_t *uids; /* borrowed, ascending */
	size_t n;
	uint64_t len; /* bytes [0, len) of each message */
	void (*cb)(void *ctx, const struct store_piece *p);
	void *ctx;
	/* Filled in: 0, -ESTALE (UIDVALIDITY is no longer uidvalidity),
	 * or another negative errno. */
	int rc;
};

/* One folder's answer to a search: the UIDs (ascending) of its messages
 * that match, under its UIDVALIDITY. */
struct store_search_hit {
	size_t folder; /* index into the folders searched */
	uint32_t uidvalidity;
	const uint32_t *uids; /* borrowed, valid during the callback */
	size_t n;
};

/*
 * What the store tells the layers above as it happens (watch()), from
 * its own thread: events flow up, never calls down.
 *
 *   STORE_EVENT_CHANGED   another client changed folder: messages came,
 *                         went or were re-flagged;
 *   STORE_EVENT_WATCHING  changes in folder (NULL: in every folder) are
 *                         reported from now on, until
 *   STORE_EVENT_BLIND     no change is reported any more (the push
 *                         session was lost): what happens now is
 *                         learnt only by asking.
 */
enum store_event_kind {
	STORE_EVENT_CHANGED,
	STORE_EVENT_WATCHING,
	STORE_EVENT_BLIND,
};

struct store_event {
	enum store_event_kind kind;
	const char *folder; /* borrowed: server name, or NULL */
};

typedef void (*store_event_fn)(void *ctx, const struct store_event *ev);

struct store_ops {
	/* Lists every folder. *f_r is owned by the caller
	 * (store_folders_free()). */
	int (*folders)(struct store *st, struct store_folder **f_r,
		       size_t *n_r);
	/*
	 * Lists a folder's messages into *out (owned by the caller,
	 * store_listing_clear()). If prev (the state of an earlier
	 * listing) is given and the folder has not changed since, returns
	 * 1 and leaves out with the state only; if the store can tell
	 * what changed, returns 2 with out a delta (see store_listing) to
	 * merge into that listing. A UIDVALIDITY that changed, or a
	 * HIGHESTMODSEQ that went backwards, gives a full listing (0),
	 * with a log line.
	 */
	int (*messages)(struct store *st, const char *folder,
			const struct store_listing *prev,
			struct store_listing *out);
	/*
	 * First listings of n folders at once, in as few round trips as
	 * the protocol allows (for walks through many folders). done(ctx,
	 * i, rc, l) is called for each folder as its listing arrives:
	 * rc 0 with l (the callee takes its messages), or a negative
	 * errno. Returns 0, or a negative errno when the store failed
	 * (folders not yet done then got no call). NULL: not offered.
	 */
	int (*messages_many)(struct store *st, const char *const *folders,
			     size_t n,
			     void (*done)(void *ctx, size_t i, int rc,
					  struct store_listing *l),
			     void *ctx);
	/*
	 * Fetches bytes [offset, offset + len) of each of the n messages
	 * (uids ascending) of a folder, in one round trip where the
	 * protocol allows. cb gets each piece; a message with fewer bytes
	 * gives a shorter piece, one that no longer exists gives none.
	 * -ESTALE if the folder's UIDVALIDITY is no longer uidvalidity.
	 */
	int (*fetch)(struct store *st, const char *folder, uint32_t uidvalidity,
		     const uint32_t *uids, size_t n, uint64_t offset,
		     uint64_t len,
		     void (*cb)(void *ctx, const struct store_piece *p),
		     void *ctx);

	/*
	 * Bytes [0, len) of messages of several folders (reqs[i]: see
	 * struct store_fetch_req), in one round trip where the protocol
	 * allows (read-ahead across the folders of a walk). Each request
	 * gets its pieces through its own cb and its own rc. Returns 0,
	 * or a negative errno when the store failed as a whole (the rc of
	 * requests not done then tell nothing). NULL: not offered.
	 */
	int (*fetch_many)(struct store *st, struct store_fetch_req *reqs,
			  size_t n);

	/* True when a message's whole body is on this machine (the disk
	 * cache holds it): a fetch of it crosses no network, so a reader
	 * fetches it itself rather than wait for a read-ahead, and a
	 * read-ahead leaves it out. Memory only, no I/O. NULL: never. */
	bool (*local)(struct store *st, const char *folder,
		      uint32_t uidvalidity, uint32_t uid);

	/* Write-back. Each returns only once the server confirmed (or,
	 * for store_cache offline, once the change is kept on disk to be
	 * sent later). A store that cannot do one leaves it NULL: the
	 * operation is refused. A store without move (no Trash) has rm
	 * expunge directly. The message a change is about is msg: its
	 * identity (uid, with folder and uidvalidity) and what the mount
	 * showed of it (flags, size, date, idhash; borrowed), which a change
	 * kept for later is measured against. */

	/* Replaces a message's flags (space separated); *result_r gets the
	 * flags the server reports (owned by the caller). -EINVAL for a
	 * flag the server does not keep or IMAP does not allow. */
	int (*set_flags)(struct store *st, const char *folder,
			 uint32_t uidvalidity, const struct store_msg *msg,
			 const char *flags, char **result_r);
	/* Adds the flags add and removes the flags remove (space
	 * separated, either may be ""), leaving the others (keywords) as
	 * they are; *result_r as for set_flags. */
	int (*change_flags)(struct store *st, const char *folder,
			    uint32_t uidvalidity, const struct store_msg *msg,
			    const char *add, const char *remove,
			    char **result_r);
	/* Moves a message to target; *uid_r gets its UID there (0 when
	 * unknown) and *uidvalidity_r the target's UIDVALIDITY. -EPERM
	 * when the server cannot move without risk to other mail; -ENOENT
	 * when the message or target is gone. */
	int (*move)(struct store *st, const char *folder, uint32_t uidvalidity,
		    const struct store_msg *msg, const char *target,
		    uint32_t *uid_r, uint32_t *uidvalidity_r);
	/* Removes exactly one message for good (UID EXPUNGE). */
	int (*expunge)(struct store *st, const char *folder,
		       uint32_t uidvalidity, const struct store_msg *msg);
	int (*create_folder)(struct store *st, const char *name);
	/* Deletes an empty folder: -ENOTEMPTY if it holds messages. */
	int (*delete_folder)(struct store *st, const char *name);
	int (*rename_folder)(struct store *st, const char *from,
			     const char *to);
	/* Stores a new message of size bytes pulled from read(). */
	int (*append)(struct store *st, const char *folder, const char *flags,
		      time_t date, uint64_t size,
		      long (*read)(void *ctx, char *buf, size_t len), void *ctx,
		      uint32_t *uid_r, uint32_t *uidvalidity_r);
	/* The account's storage quota in bytes: 1 with the figures, 0
	 * when the server has none, or a negative errno. NULL: none. */
	int (*quota)(struct store *st, uint64_t *used_r, uint64_t *limit_r);
	/* The largest message the server accepts, 0 if it said nothing. */
	uint64_t (*append_limit)(struct store *st);

	/* Reading parts of messages (IMAP only; NULL: none, ENOENT). */

	/* Every message of a folder with its envelope, date, flags and
	 * size, in one command for the whole folder: cb once per
	 * message. -ESTALE if the folder's UIDVALIDITY changed. */
	int (*summary)(struct store *st, const char *folder,
		       uint32_t uidvalidity,
		       void (*cb)(void *ctx, const struct store_summary *m),
		       void *ctx);
	/* A message's structure (BODYSTRUCTURE), with exact decoded
	 * sizes (BINARY.SIZE) where the server offers BINARY; *ms_r is
	 * owned by the caller. -ENOENT when the message is gone. */
	int (*structure)(struct store *st, const char *folder,
			 uint32_t uidvalidity, uint32_t uid,
			 struct msgstruct **ms_r);
	/*
	 * Bytes [offset, offset + len) of one section of a message
	 * ("HEADER", "1", "2.1"): as stored (BODY.PEEK), or with binary
	 * its transfer encoding undone by the server (BINARY.PEEK; only
	 * when the structure says binary). cb gets the bytes once (fewer
	 * at the section's end, none past it). -ENOENT when the message
	 * is gone; -EILSEQ when the server cannot undo the encoding.
	 */
	int (*fetch_section)(
		struct store *st, const char *folder, uint32_t uidvalidity,
		uint32_t uid, const char *section, bool binary, uint64_t offset,
		uint64_t len,
		void (*cb)(void *ctx, const char *data, size_t len), void *ctx);

	/*
	 * Searches each of n folders on the server with the program q
	 * (search.h); fetches no message. cb gets every folder searched
	 * (n may be 0), after the whole search, in the order given. A
	 * folder that cannot be opened (gone since it was listed) is
	 * skipped. -EINVAL when the server rejects the query (its text is
	 * logged). NULL: the store cannot search.
	 */
	int (*search)(struct store *st, const char *const *folders, size_t n,
		      const struct search_query *q,
		      void (*cb)(void *ctx, const struct store_search_hit *h),
		      void *ctx);

	/* Called once the mount is up (threads may start). Starts
	 * reporting, as events (struct store_event) from another thread,
	 * changes made by other clients (new, expunged or re-flagged
	 * messages) as they happen, and which folders are watched: the
	 * callback must not block. A store with a pool may also open a
	 * spare session in the background, so that the first parallel
	 * work (read-ahead, a walk) need not wait for a login. NULL: the
	 * store has no push (listings are refreshed every `refresh`
	 * seconds). */
	int (*watch)(struct store *st, store_event_fn event, void *ctx);

	/* The mount showed folder's content as changed at mtime (wall
	 * clock seconds): kept where the store keeps state across mounts
	 * (store_cache: the disk cache), so that a later mount never
	 * shows the folder with an earlier time. Memory only (the write is
	 * queued): it must not block. NULL: nothing is kept. */
	void (*keep_mtime)(struct store *st, const char *folder, time_t mtime);

	/* Appends `key=value` lines of the store's own to the mount's
	 * status (user.mail.status); returns the bytes written (at most
	 * len - 1, NUL terminated). NULL: none. */
	size_t (*status)(struct store *st, char *buf, size_t len);

	/* For a store that can serve without the server (the disk cache):
	 * NULL while it uses the server, else how the status names its
	 * offline mode ("offline", "offline (forced)"). The status shows
	 * the mount's `state` and `mode` from it and store_stats.online
	 * together (fsstatus). NULL op: the store has no offline mode. */
	const char *(*offline_mode)(struct store *st);

	void (*destroy)(struct store *st);
};

/* What the mount's status (user.mail.status) shows of a store; each
 * store keeps it up to date. */
struct store_stats {
	_Atomic bool online; /* the last connection attempt worked */
	_Atomic unsigned conns_open; /* sessions open now */
	_Atomic unsigned conns_busy; /* sessions in use now */
	_Atomic uint64_t bytes_fetched; /* message bytes from the server */
	_Atomic uint64_t messages_fetched; /* first pieces of messages */
	/* The last connection attempt found no server (unresolved name,
	 * refused, timed out, reset before the greeting): a cause for
	 * offline mode, unlike a refused login or certificate. */
	_Atomic bool unreachable;
	/* Calls that failed on the connection (dropped, timed out, not
	 * made), not on the server's answer: a caller that compares it
	 * before and after a failed call tells the two apart. */
	_Atomic unsigned long long net_failures;
};

struct store {
	const struct store_ops *ops;
	struct store_stats stats;
	/* The extended attribute that shows a message's ref (e.g.
	 * "user.mail.uidl"), NULL when messages have none. */
	const char *ref_xattr;
	/* Whether messages have IMAP flags (user.mail.flags). */
	bool has_flags;
	/* borrowed: the store this one wraps (store_cache), whose stats
	 * are the connection's; NULL for a protocol's own store. */
	struct store *inner;
};

/*
 * Marks the calling thread as doing background work (read-ahead,
 * prefetch): its store calls never take the last free connection, so
 * that one always stays for foreground calls, and fail with -EAGAIN at
 * once instead of waiting for one.
 */
void store_set_background(bool on);
bool store_is_background(void);

/* The connection statistics of a store (those of the store it wraps,
 * if it wraps one). */
const struct store_stats *store_get_stats(const struct store *st);

void store_folders_free(struct store_folder *f, size_t n);
void store_listing_clear(struct store_listing *l);

/* Adds lo..hi to a set; false (and the set unchanged) when out of
 * memory or when it holds STORE_MAX_MESSAGES ranges already. */
bool store_ranges_add(struct store_ranges *rs, uint32_t lo, uint32_t hi);
/* Sorts the ranges and merges the ones that touch or overlap. */
void store_ranges_normalize(struct store_ranges *rs);
/* Whether uid is in a normalized set. */
bool store_ranges_has(const struct store_ranges *rs, uint32_t uid);
void store_ranges_free(struct store_ranges *rs);

/*
 * Merges a delta (store_listing.delta) into base, a full listing of the
 * same UIDVALIDITY (else -ESTALE), giving the full listing out (owned by
 * the caller; base is left as it is, d's new messages are taken). Known
 * messages keep their size, date and Message-ID hash, so their names.
 * -EAGAIN when the result does not hold d->exists messages: the changes
 * do not add up, and the folder must be listed in full.
 */
int store_listing_merge(const struct store_listing *base,
			struct store_listing *d, struct store_listing *out);

/*
 * Makes the IMAP store: a pool of up to `connections` sessions, the
 * first of which is opened (and logged in) here, so that a wrong
 * password or an untrusted certificate is reported before mounting.
 * cfg and the strings it points to must outlive the store. Returns NULL
 * with err filled (one line) on failure.
 */
struct store *store_imap_new(const struct imap_config *cfg,
			     unsigned connections, char *err, size_t errlen);

/* How store_imap_start() treats the first connection. */
enum store_imap_start {
	STORE_IMAP_CONNECT, /* it must work (store_imap_new()) */
	STORE_IMAP_MAY_BE_OFFLINE, /* an unreachable server is no failure */
	STORE_IMAP_NO_CONNECT, /* not tried (-o offline) */
};

/*
 * store_imap_new() with a choice for the first connection: with
 * STORE_IMAP_MAY_BE_OFFLINE, a server that cannot be reached (see
 * store_stats.unreachable) still gives a store, with *offline_r set and
 * err holding why; a refused login or certificate still fails.
 * Sessions are then opened when first needed.
 */
struct store *store_imap_start(const struct imap_config *cfg,
			       unsigned connections, enum store_imap_start how,
			       bool *offline_r, char *err, size_t errlen);

/*
 * The disk-cache store (store_cache.c): wraps an IMAP store (owned) with
 * a disk cache (owned). Listings and bodies are kept on disk and used
 * first; with the server unreachable (offline), cached listings and
 * bodies are served, other reads fail with EIO and changes with EROFS,
 * and a thread reconnects with backoff. forced: -o offline (never
 * connect). prefetch: folders (server names, NULL-terminated, owned) to
 * fill in the background, or NULL; bg_sessions: how many sessions
 * background work may take; refresh: how long (seconds) the states a
 * folder list tells are trusted (a saved listing of a folder it shows
 * unchanged is used without a command). Threads start with
 * store_cache_begin().
 */
struct diskcache;
struct journal;
/* The journal of offline changes (owned; NULL: -o offline_changes=no,
 * every change refused offline with EROFS), before store_cache_begin().
 * Without it, offline changes are refused. */
void store_cache_set_journal(struct store *st, struct journal *j);
struct store *store_cache_new(struct store *inner, struct diskcache *dc,
			      bool offline, bool forced, char **prefetch,
			      bool prefetch_all, unsigned bg_sessions,
			      unsigned refresh);
/* Starts the disk writer, the reconnect thread and prefetching (after
 * daemonizing). 0 or a negative errno. */
int store_cache_begin(struct store *st);

/*
 * Turns a list of flags as a user typed it (separated by any white
 * space) into IMAP's form, single spaces between. Returns a malloc'd
 * string, or NULL when a flag is not valid IMAP (a system flag other
 * than \Answered \Flagged \Deleted \Seen \Draft, or a keyword with a
 * character IMAP forbids) or memory ran out.
 */
char *store_flags_normalize(const char *in);

struct pop3_config;

/*
 * Makes the POP3 store over the local store directory dir (created 0700
 * if missing, locked against a second mount). Logs in once, so that a
 * wrong password or certificate is reported before mounting; an
 * unreachable server only gives a warning (the store is used offline).
 * keep: leave messages on the server. refresh: seconds between sessions.
 */
struct store *store_pop3_new(const struct pop3_config *cfg, const char *dir,
			     bool keep, unsigned refresh, char *err,
			     size_t errlen);
/* Starts the download thread (after daemonizing: threads do not survive
 * fork). */
int store_pop3_start(struct store *st);
/* $XDG_DATA_HOME/mailfs/pop3/USER@HOST[:PORT] (or ~/.local/share/...),
 * malloc'd; NULL if neither variable is usable. port is NULL for the
 * scheme's default port. A store made at USER@HOST before ports were
 * part of the name is used (with a line on stderr) when the new one
 * does not exist. */
char *store_pop3_default_dir(const char *user, const char *host,
			     const char *port);

/*
 * How far a store call's failure reaches, beside its errno (which alone
 * cannot tell: ENOENT is a message gone, or a folder): the store records
 * it as it fails (store_fail()), and the layers above read it right
 * after the call, in the same thread, to act on it:
 *   STORE_SCOPE_MESSAGE     this message (gone, refused): nothing else;
 *   STORE_SCOPE_FOLDER      the folder (gone, or its UIDVALIDITY changed):
 *                           its listing is void, list it again;
 *   STORE_SCOPE_CONNECTION  the server, not the mail (lost, timed out,
 *                           unreachable, login refused): try again later,
 *                           go offline, keep a change.
 */
enum store_scope {
	STORE_SCOPE_NONE,
	STORE_SCOPE_MESSAGE,
	STORE_SCOPE_FOLDER,
	STORE_SCOPE_CONNECTION,
};
/* Records scope as the calling thread's last failure and returns err:
 * `return store_fail(-ESTALE, STORE_SCOPE_FOLDER);`. */
int store_fail(int err, enum store_scope scope);
/* The scope of the calling thread's last failure since
 * store_scope_clear(); STORE_SCOPE_NONE when none was recorded. */
enum store_scope store_scope_last(void);
void store_scope_clear(void);
/* The scope of a failed IMAP command: the connection for a lost one or
 * a protocol breach, the folder for NONEXISTENT or TRYCREATE, else the
 * message (or the command) alone. */
enum store_scope store_scope_imap(const struct imap_error *e);

/* The (positive) errno for a failed IMAP command: one mapping for the whole
 * program (NONEXISTENT -> ENOENT, a lost connection -> EIO, ...). */
int store_errno_imap(const struct imap_error *e);

#endif
