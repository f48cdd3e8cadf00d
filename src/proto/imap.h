/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * imap: one IMAP client session on one connection (RFC 3501 / 9051 with
 * UIDPLUS, MOVE, CONDSTORE, LITERAL+, SASL-IR, SPECIAL-USE). A session is
 * used by one thread at a time; the store module pools them.
 *
 * Return contract: functions returning int give 0 when the server said
 * OK, and -1 otherwise; imap_error() then tells what happened (a NO or
 * BAD with its response code, a lost connection, a timeout, a protocol
 * violation). After a connection or protocol error imap_usable() is
 * false and the session must be closed and reopened. Messages are always
 * addressed by UID, never by sequence number.
 */
#ifndef MAILFS_IMAP_H
#define MAILFS_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "sasl.h"

struct net_tls_ctx;

enum imap_tls {
	IMAP_TLS_IMPLICIT,
	IMAP_TLS_STARTTLS,
	IMAP_TLS_NONE,
};

struct imap_config {
	const char *host; /* borrowed */
	const char *port; /* borrowed */
	const char *user; /* borrowed */
	enum sasl_auth auth; /* how to log in */
	/* Asked for the password or access token at every login. */
	struct sasl_credential credential;
	enum imap_tls tls;
	struct net_tls_ctx *tls_ctx; /* borrowed */
	int timeout_ms;
	bool trace; /* protocol trace through log_debug(), no credentials */
	/* Largest literal accepted from the server; FETCH windows must fit. */
	size_t max_literal;
	/* COMPRESS=DEFLATE (RFC 4978) after login when the server offers
	 * it (-o compress, on by default). */
	bool compress;
};

enum imap_cap {
	IMAP_CAP_STARTTLS = 1u << 0,
	IMAP_CAP_LOGINDISABLED = 1u << 1,
	IMAP_CAP_AUTH_PLAIN = 1u << 2,
	IMAP_CAP_SASL_IR = 1u << 3,
	IMAP_CAP_LITERALPLUS = 1u << 4,
	IMAP_CAP_LITERALMINUS = 1u << 5,
	IMAP_CAP_UIDPLUS = 1u << 6,
	IMAP_CAP_MOVE = 1u << 7,
	IMAP_CAP_CONDSTORE = 1u << 8,
	IMAP_CAP_QRESYNC = 1u << 9,
	IMAP_CAP_ESEARCH = 1u << 10,
	IMAP_CAP_SPECIAL_USE = 1u << 11,
	IMAP_CAP_LIST_EXTENDED = 1u << 12,
	IMAP_CAP_APPENDLIMIT = 1u << 13,
	IMAP_CAP_IDLE = 1u << 14,
	IMAP_CAP_IMAP4REV1 = 1u << 15,
	IMAP_CAP_AUTH_LOGIN = 1u << 16,
	IMAP_CAP_UNSELECT = 1u << 17,
	IMAP_CAP_AUTH_XOAUTH2 = 1u << 18,
	IMAP_CAP_AUTH_OAUTHBEARER = 1u << 19,
	IMAP_CAP_BINARY = 1u << 20, /* RFC 3516 */
	IMAP_CAP_COMPRESS_DEFLATE = 1u << 21, /* RFC 4978 */
	IMAP_CAP_OBJECTID = 1u << 22, /* RFC 8474: EMAILID */
	IMAP_CAP_X_GM_EXT_1 = 1u << 23, /* Gmail: X-GM-MSGID */
	IMAP_CAP_QUOTA = 1u << 24,
	IMAP_CAP_NOTIFY = 1u << 25,
	IMAP_CAP_LIST_STATUS = 1u << 26, /* RFC 5819 */
};

enum imap_err_kind {
	IMAP_ERR_NONE,
	IMAP_ERR_NO, /* the server refused: see code and text */
	IMAP_ERR_BAD, /* the server did not understand us */
	IMAP_ERR_NET, /* connection lost or timed out: see errnum */
	IMAP_ERR_PROTO, /* the server broke the protocol */
	IMAP_ERR_AUTH, /* login refused, or no way to log in safely */
	IMAP_ERR_NOMEM,
};

struct imap_error {
	enum imap_err_kind kind;
	int errnum; /* IMAP_ERR_NET: positive errno (ETIMEDOUT...) */
	char code[32]; /* response code atom, e.g. "NONEXISTENT", or "" */
	char text[512]; /* one line, for the user */
	/* imap_open(): the server could not be reached (name not
	 * resolved, connection refused or timed out, reset before the
	 * greeting), as opposed to a refusal (certificate, login) */
	bool unreachable;
};

/* Mailbox state learned by SELECT/EXAMINE. */
struct imap_mailbox {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t exists;
	uint64_t highestmodseq; /* 0 without CONDSTORE */
	bool readonly;
};

/* One mailbox from LIST. */
enum imap_mbox_attr {
	IMAP_MBOX_NOSELECT = 1u << 0,
	IMAP_MBOX_NOINFERIORS = 1u << 1,
	IMAP_MBOX_HASCHILDREN = 1u << 2,
	IMAP_MBOX_TRASH = 1u << 3,
	IMAP_MBOX_NONEXISTENT = 1u << 4,
};

struct imap_list_entry {
	const char *name; /* borrowed: raw modified UTF-7 name */
	char delim; /* '\0' when NIL (flat) */
	unsigned attrs; /* enum imap_mbox_attr */
	/* A STATUS response that LIST-STATUS sends after the mailbox's
	 * LIST line: only name and the counts below are set (0: not
	 * told; modseq only where the server has CONDSTORE). */
	bool status_only;
	uint32_t messages;
	uint32_t uidnext, uidvalidity;
	uint64_t modseq;
};

/* RFC822.SIZE is taken as at most this (larger is a lie). */
#define IMAP_MAX_MESSAGE (1ull << 40)

/* The longest content identity taken (RFC 8474's objectid: 1 to 255
 * characters); a longer or malformed one is no identity. */
#define IMAP_MAX_OBJECTID 255

/* One message's metadata from UID FETCH. */
struct imap_msg_meta {
	uint32_t uid;
	uint64_t size; /* RFC822.SIZE */
	time_t date; /* INTERNALDATE */
	const char *flags; /* borrowed: space separated, \Recent left out */
	/* borrowed: BODY[HEADER.FIELDS (MESSAGE-ID)], the Message-ID
	 * field as the message has it (NULL, 0 when not sent) */
	const char *msgid_hdr;
	size_t msgid_len;
	/* The message's content identity where the listing asked for one:
	 * its kind (imap_oid_kind(), static) and the server's text
	 * (borrowed, NUL terminated); both NULL when not sent or
	 * malformed. */
	const char *oid_kind;
	const char *oid;
};

/* A piece of a message body from BODY[]<off>. */
struct imap_body_part {
	uint32_t uid;
	uint64_t offset;
	const char *data; /* borrowed */
	size_t len;
};

struct imap_session;

/*
 * Which content identity a listing asks for on this session: "EMAILID"
 * (OBJECTID, RFC 8474), "X-GM-MSGID" (Gmail's X-GM-EXT-1), or NULL when
 * the server offers neither. The FETCH of every listing asks for it.
 */
const char *imap_oid_kind(const struct imap_session *s);

/*
 * Connects, secures (implicit TLS or STARTTLS; refuses to go on in
 * cleartext unless cfg->tls is IMAP_TLS_NONE), reads the capabilities,
 * asks cfg->credential for the secret and logs in as cfg->auth says:
 * by default AUTHENTICATE PLAIN when offered, else LOGIN (never LOGIN
 * under LOGINDISABLED); a forced mechanism (PLAIN, XOAUTH2, OAUTHBEARER)
 * or LOGIN must be offered, or the login fails naming what the server
 * offers. AUTHENTICATE sends its initial response with SASL-IR when
 * offered, else after the server's "+". Once logged in, turns on
 * COMPRESS=DEFLATE when cfg->compress asks and the server offers it (a
 * refusal leaves the session uncompressed). On failure returns -1 and
 * fills err with one line for the user (with the status of an OAuth2
 * error).
 * cfg must outlive the session.
 */
int imap_open(const struct imap_config *cfg, struct imap_session **s_r,
	      struct imap_error *err);

/*
 * imap_open() that also lists every mailbox, as imap_mailbox_list()
 * does, in the same round trip as the login when the login is one
 * command (LOGIN, or AUTHENTICATE PLAIN with SASL-IR): *listed_r then
 * says cb got the whole answer. When false, cb may have been called
 * for an answer that does not serve: the caller drops what it got.
 */
int imap_open_listing(const struct imap_config *cfg, struct imap_session **s_r,
		      struct imap_error *err,
		      void (*cb)(void *ctx, const struct imap_list_entry *e),
		      void *ctx, bool *listed_r);

/* Logs out politely (bounded wait) if usable, then frees. NULL is fine. */
void imap_close(struct imap_session *s);

bool imap_usable(const struct imap_session *s);
/* True when the server has closed the connection already (checked
 * without waiting): nothing sent on it could arrive. */
bool imap_peer_gone(const struct imap_session *s);
/*
 * GETQUOTAROOT INBOX: the STORAGE resource of its first quota root, in
 * KiB (RFC 9208). Returns 1 with the figures, 0 when the server has no
 * QUOTA or no storage limit, -1 on failure.
 */
int imap_quota(struct imap_session *s, uint64_t *used_kib_r,
	       uint64_t *limit_kib_r);

/*
 * IDLE (RFC 2177) on the selected mailbox: waits up to max_ms for the
 * server to report a change (EXISTS, EXPUNGE, FETCH, VANISHED), ending
 * early when stop(ctx) says so (asked every half second), then sends
 * DONE and reads the completion. *changed_r tells whether anything was
 * reported. With notified set, a "* STATUS mailbox (..)" that NOTIFY
 * sends goes to notified(ctx, mailbox), also between DONE and the end,
 * and idling goes on for at most a second more (a server may hold back
 * another change until DONE). Returns 0 or -1 (imap_error() says why).
 */
int imap_push_idle(struct imap_session *s, int max_ms, bool (*stop)(void *ctx),
		   void (*notified)(void *ctx, const char *mailbox), void *ctx,
		   bool *changed_r);

/*
 * NOTIFY SET (RFC 5465) for every personal mailbox: the server then
 * reports new, expunged and re-flagged messages there as STATUS
 * responses, which imap_push_idle() hands to its notified callback (as
 * this does with those that come during the command).
 */
int imap_push_notify_set(struct imap_session *s,
			 void (*notified)(void *ctx, const char *mailbox),
			 void *ctx);

/* The session's number in the log (log_conn_new()). */
unsigned imap_conn_id(const struct imap_session *s);
unsigned imap_caps(const struct imap_session *s);
/* APPENDLIMIT in bytes, 0 when the server announced none. */
uint64_t imap_appendlimit(const struct imap_session *s);
const struct imap_error *imap_error(const struct imap_session *s);

/* NOOP: keeps the session alive and collects mailbox changes. */
int imap_noop(struct imap_session *s);

/* LIST "" "*" (with RETURN (SPECIAL-USE) when the server has it, and
 * STATUS with LIST-STATUS, the selected mailbox left first so that its
 * STATUS is current); cb is called once per mailbox. */
int imap_mailbox_list(struct imap_session *s,
		      void (*cb)(void *ctx, const struct imap_list_entry *e),
		      void *ctx);

/* LIST of one mailbox: its attributes (enum imap_mbox_attr). A NO with
 * code NONEXISTENT when the server does not list it. */
int imap_mailbox_attrs(struct imap_session *s, const char *mailbox,
		       unsigned *attrs_r);

/*
 * EXAMINE (readonly) or SELECT a mailbox, with CONDSTORE when offered.
 * Skips the command when the mailbox is already selected in a mode that
 * suits, unless force is set. *mb_r gets the state.
 */
int imap_mailbox_select(struct imap_session *s, const char *mailbox,
			bool readonly, bool force, struct imap_mailbox *mb_r);

/* The mailbox this session has selected, or NULL. */
const char *imap_mailbox_selected(const struct imap_session *s);

/*
 * EXAMINE mailbox and UID FETCH 1:* (...) sent together, so that a first
 * listing costs one round trip: EXAMINE (as imap_mailbox_select(),
 * read-only, always sent) and UID FETCH 1:* (UID FLAGS RFC822.SIZE
 * INTERNALDATE, the Message-ID header field and the content identity
 * of imap_oid_kind()), one command whatever the number of messages. cb
 * is called for each message in the order the server sends them.
 */
int imap_sync_list(struct imap_session *s, const char *mailbox,
		   void (*cb)(void *ctx, const struct imap_msg_meta *m),
		   void *ctx, struct imap_mailbox *mb_r);

/*
 * imap_sync_list() for n mailboxes, all sent in one write: n first
 * listings in one round trip. cb(ctx, i, m) gets the messages of
 * mailboxes[i]; done(ctx, i, rc, mb) is called for each mailbox once
 * its answers are in, in order, with rc 0 (mb its state) or -1 (the
 * session's error says why). Returns -1 when the session failed.
 */
int imap_sync_list_many(struct imap_session *s, const char *const *mailboxes,
			size_t n,
			void (*cb)(void *ctx, size_t i,
				   const struct imap_msg_meta *m),
			void (*done)(void *ctx, size_t i, int rc,
				     const struct imap_mailbox *mb),
			void *ctx);

/* How a resync learned what changed. */
enum imap_resync_how {
	IMAP_RESYNC_QRESYNC, /* EXAMINE (QRESYNC ..): VANISHED and flags */
	IMAP_RESYNC_CONDSTORE, /* CHANGEDSINCE, expunges by UID SEARCH */
	IMAP_RESYNC_FLAGS, /* every message's flags: the complete set */
};

/* What an earlier listing knew of a mailbox. */
struct imap_resync_state {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t exists;
	uint64_t modseq; /* HIGHESTMODSEQ, 0 when unknown */
};

/* Where a resync reports; called in the order the server answers. */
struct imap_resync_ops {
	/* a message new since the earlier listing (UID >= its UIDNEXT) */
	void (*meta)(void *ctx, const struct imap_msg_meta *m);
	/* the flags of a known message: changed ones (QRESYNC,
	 * CONDSTORE) or all of them (FLAGS) */
	void (*flags)(void *ctx, uint32_t uid, const char *flags);
	/* UIDs lo..hi were expunged (some may never have been known) */
	void (*vanished)(void *ctx, uint32_t lo, uint32_t hi);
	/* UIDs lo..hi below UIDNEXT exist (CONDSTORE when the count
	 * shows expunges; *present_r tells) */
	void (*present)(void *ctx, uint32_t lo, uint32_t hi);
};

/*
 * Brings an earlier listing of mailbox up to date in one round trip
 * (two with CONDSTORE alone when messages were expunged): EXAMINEs it
 * (read-only), with QRESYNC (enabled on first use) or CONDSTORE where
 * offered, and reports changes through ops. *mb_r gets the state: when
 * its UIDVALIDITY is not prev's, nothing reported counts and the
 * caller lists the mailbox again. *how_r says what the reports mean
 * (FLAGS: the flags of every message, so a known message not reported
 * is gone); *present_r whether ops->present named the survivors.
 */
int imap_sync_resync(struct imap_session *s, const char *mailbox,
		     const struct imap_resync_state *prev,
		     const struct imap_resync_ops *ops, void *ctx,
		     struct imap_mailbox *mb_r, enum imap_resync_how *how_r,
		     bool *present_r);

/*
 * UID FETCH uids (BODY.PEEK[]<offset.len>) on the selected mailbox: one
 * command for a set of messages (uids is an IMAP sequence set such as
 * "12" or "12:40,45"); never sets \Seen. cb gets each piece of body;
 * messages that no longer exist give no call. 
 */
int imap_fetch_body(struct imap_session *s, const char *uids, uint64_t offset,
		    uint64_t len,
		    void (*cb)(void *ctx, const struct imap_body_part *p),
		    void *ctx);

/*
 * The same on mailbox, examined in the same write (one round trip): the
 * session need not have it selected, and has it selected (read-only)
 * afterwards when the EXAMINE succeeded. When its UIDVALIDITY is not
 * uidvalidity, *stale_r is set and no piece reaches cb (the UIDs name
 * other messages). Returns 0, or -1 with the session's error (the
 * EXAMINE's when that failed).
 */
int imap_fetch_examine_body(struct imap_session *s, const char *mailbox,
			    uint32_t uidvalidity, const char *uids,
			    uint64_t offset, uint64_t len,
			    void (*cb)(void *ctx,
				       const struct imap_body_part *p),
			    void *ctx, bool *stale_r);

/* One mailbox's part of imap_fetch_examine_body_many(). */
struct imap_body_req {
	const char *mailbox; /* borrowed */
	uint32_t uidvalidity;
	const char *uids; /* borrowed: an IMAP sequence set */
	uint64_t offset, len;
	void (*cb)(void *ctx, const struct imap_body_part *p);
	void *ctx;
	/* Filled in: 0, or -1 with err (the EXAMINE's when that failed);
	 * stale: the mailbox's UIDVALIDITY is not uidvalidity (no piece of
	 * it reached cb). */
	int rc;
	bool stale;
	struct imap_error err;
};

/*
 * imap_fetch_examine_body() for n mailboxes in one write: EXAMINE and
 * UID FETCH of each, one after another, so that bodies of many
 * mailboxes cost one round trip (read-ahead across folders). Each
 * request gets its own result; one that failed does not stop the
 * others. The session has the last mailbox selected afterwards (when
 * its EXAMINE succeeded). Returns 0 while the session stays usable,
 * else -1 with its error.
 */
int imap_fetch_examine_body_many(struct imap_session *s,
				 struct imap_body_req *r, size_t n);

/*
 * UID FETCH set (UID items) on the selected mailbox, for items the
 * caller interprets (ENVELOPE, BODYSTRUCTURE, BINARY.SIZE[1],
 * BINARY.PEEK[1]<0.100>, ...): cb gets each message's item list
 * (name, value, name, value, ...; borrowed, valid during the call) and
 * returns true when it took the response. set is a UID set ("12",
 * "1:*"); items may only hold letters, digits and ".[]<> ()-", so that
 * nothing else can reach the command line.
 */
struct imap_tok;
int imap_fetch_items(struct imap_session *s, const char *set, const char *items,
		     bool (*cb)(void *ctx, uint32_t uid,
				const struct imap_tok *items),
		     void *ctx);
/* An INTERNALDATE string token as a time (UTC); false if it is none. */
bool imap_internaldate(const struct imap_tok *t, time_t *t_r);
/* EXISTS of the selected mailbox, as last reported. */
uint32_t imap_exists(const struct imap_session *s);

/*
 * Whether flag (one system flag such as \Seen, or a keyword) may be
 * stored in the selected mailbox: it must be a valid IMAP flag, and be
 * listed in PERMANENTFLAGS (or keywords be allowed by \*).
 */
bool imap_write_flag_allowed(const struct imap_session *s, const char *flag);

/*
 * UID STORE uid FLAGS (flags) on the mailbox selected read-write:
 * replaces the message's flags. *result_r gets the flags the server
 * reports afterwards (malloc'd, \Recent left out), or NULL if it sent
 * none (the message is gone).
 */
int imap_write_flags(struct imap_session *s, uint32_t uid, const char *flags,
		     char **result_r);
/* The same with mode '+' (UID STORE uid +FLAGS (flags): adds them) or
 * '-' (-FLAGS: removes them), leaving other flags as they are; mode 0
 * is imap_write_flags(). */
int imap_write_flags_mode(struct imap_session *s, uint32_t uid, char mode,
			  const char *flags, char **result_r);

/*
 * UID MOVE (move) or UID COPY of one message of the selected mailbox to
 * target. *uid_r gets the message's UID in the target from COPYUID, or
 * 0 when the server did not say; *uidvalidity_r the target's UIDVALIDITY
 * (0 likewise).
 */
int imap_write_copy(struct imap_session *s, uint32_t uid, const char *target,
		    bool move, uint32_t *uid_r, uint32_t *uidvalidity_r);

/* UID STORE uid +FLAGS.SILENT (\Deleted) then UID EXPUNGE uid: removes
 * exactly that message (needs UIDPLUS; a bare EXPUNGE is never sent). */
int imap_write_expunge(struct imap_session *s, uint32_t uid);

/* CREATE, DELETE and RENAME of mailboxes (server names). DELETE and
 * RENAME first leave the mailbox if it is selected. */
int imap_mailbox_create(struct imap_session *s, const char *mailbox);
int imap_mailbox_delete(struct imap_session *s, const char *mailbox);
int imap_mailbox_rename(struct imap_session *s, const char *from,
			const char *to);

/* Leaves the selected mailbox without expunging anything (UNSELECT, or
 * EXAMINE of a mailbox that cannot exist where UNSELECT is missing). */
int imap_mailbox_unselect(struct imap_session *s);

/*
 * APPEND of size bytes, pulled from read(ctx, buf, len) (which returns
 * the bytes it put in buf, 0 at the end, or -1), with the given flags
 * (may be "") and INTERNALDATE date (0 for now). *uid_r and
 * *uidvalidity_r get APPENDUID's values, or 0.
 */
int imap_write_append(struct imap_session *s, const char *mailbox,
		      const char *flags, time_t date, uint64_t size,
		      long (*read)(void *ctx, char *buf, size_t len), void *ctx,
		      uint32_t *uid_r, uint32_t *uidvalidity_r);

struct search_query;

/* The answer to one UID SEARCH. */
struct imap_search_result {
	struct imap_mailbox mb; /* imap_search_mailboxes(): from EXAMINE */
	uint32_t *uids; /* owned: ascending, without repeats */
	size_t n;
	bool cut; /* the server sent more than max UIDs */
	/* imap_search_mailboxes(): this mailbox's EXAMINE or SEARCH
	 * failed, with the server's answer in err. */
	bool failed;
	struct imap_error err;
};

void imap_search_result_clear(struct imap_search_result *res);

/*
 * UID SEARCH with the program q (search.h) on the selected mailbox,
 * as "UID SEARCH RETURN (ALL) ..." (RFC 4731, one compact answer) when
 * the server has ESEARCH; string arguments go quoted or as literals.
 * res gets at most max UIDs (res->cut when there were more).
 */
int imap_search_uid(struct imap_session *s, const struct search_query *q,
		    size_t max, struct imap_search_result *res);

/*
 * EXAMINE and UID SEARCH of q in each of n mailboxes, results[i] for
 * mailboxes[i] (n entries, owned by the caller, each cleared with
 * imap_search_result_clear()). The pairs are pipelined, written in
 * batches of at most 16 KiB ahead of the answers, when every literal can
 * go non-synchronising (LITERAL+ / LITERAL-); else one pair at a time.
 * A mailbox that fails is marked in its result and the others go on.
 * Returns -1 only when the session broke (imap_error() says why).
 */
int imap_search_mailboxes(struct imap_session *s, const char *const *mailboxes,
			  size_t n, const struct search_query *q, size_t max,
			  struct imap_search_result *results);

#endif
