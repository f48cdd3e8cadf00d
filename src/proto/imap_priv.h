/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * imap_priv: what the files of the IMAP client share and nothing else
 * includes. imap.c is the session core (its state, reading responses,
 * the command object, the untagged responses every command may bring);
 * imap_login.c connects and logs in; imap_mailbox.c lists, selects and
 * changes mailboxes; imap_sync.c lists and resyncs messages;
 * imap_fetch.c fetches bodies and items; imap_push.c idles and sets
 * NOTIFY; imap_net_write.c stores flags, copies, expunges and appends;
 * imap_search.c searches.
 *
 * Every command goes through struct imap_cmd: imap_cmd_send() is the
 * one place that mints tags, and imap_cmd_wait() the one loop that
 * reads a command's responses, continuation requests included.
 */
#ifndef MAILFS_IMAP_PRIV_H
#define MAILFS_IMAP_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "imap.h"
#include "imap_parse.h"
#include "strbuf.h"

#define IMAP_READ_BUF (64 * 1024)
/* The most ranges of UIDs read from one VANISHED or ESEARCH response. */
#define IMAP_MAX_UID_RANGES 2000000

enum imap_state {
	IMAP_STATE_GREETING,
	IMAP_STATE_NOT_AUTH,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
	IMAP_STATE_BROKEN, /* connection lost or out of sync */
};

struct imap_session {
	const struct imap_config *cfg; /* borrowed */
	unsigned conn_id; /* in the log */
	struct net_conn *conn; /* owned */
	struct imap_parser *parser; /* owned */
	enum imap_state state; /* changed by imap_state_set() only */
	unsigned caps;
	/* The SASL mechanisms of the last capability list, space-separated,
	 * for an error message naming what the server offers. */
	char mechs[128];
	uint64_t appendlimit;
	unsigned next_tag; /* the number of the last tag minted */
	char *selected; /* owned: selected mailbox, NULL if none */
	bool selected_ro;
	bool changed;
	bool qresync_on; /* ENABLE QRESYNC was accepted */
	bool bye;
	struct imap_mailbox mb;
	struct strbuf permflags; /* PERMANENTFLAGS of the mailbox, " "-joined */
	bool have_permflags;
	/* COPYUID / APPENDUID of the last command (0 when not given). */
	uint32_t new_uidvalidity, new_uid;
	uint32_t copied_uid; /* COPYUID's source UID */
	struct imap_error err;
	/* The tagged completion of the last command; valid until the next
	 * read from the server. */
	const struct imap_resp *done;
	char *rbuf; /* owned, IMAP_READ_BUF bytes */
	size_t rpos, rlen;
	/* Borrowed, during imap_open_then() only: the command to send in
	 * the same write as the login's, when the login is one command
	 * the server answers without a challenge, on a server known to
	 * take it (then_ok, from the greeting: imap_login_greeting()). */
	struct imap_cmd *then;
	bool then_ok;
};

/*
 * A handler sees each untagged response of a command first; it returns
 * true when it consumed the response.
 */
typedef bool (*imap_handler)(void *ctx, struct imap_session *s,
			     const struct imap_resp *r);

struct imap_cmd;

/*
 * A continuation handler answers a "+" that comes during a command (a
 * SASL challenge, the go-ahead for APPEND's data or for idling). It
 * returns 0 to go on reading the command's responses, 1 to hand the
 * "+" to imap_cmd_wait()'s caller (r stays valid until the next read),
 * or -1 with the session's error set.
 */
typedef int (*imap_cont_handler)(struct imap_session *s, struct imap_cmd *c,
				 const struct imap_resp *r);

/* One piece of a command: text as is, or a string sent as a literal. */
struct imap_part {
	const char *data;
	size_t len;
	bool literal;
};

/*
 * A command: its text (or its parts, literals among them), the handlers
 * of its untagged responses and of a continuation request, and, once
 * finished, its result. Commands are sent in one write
 * (imap_cmd_send(), which tags them) and finished in order
 * (imap_cmd_finish()), so that a pipeline of them costs one round trip.
 * A literal that needs the server's "+" (no LITERAL+) is sent by
 * imap_cmd_wait() when the "+" comes; only the last command of a
 * pipeline may have one.
 */
struct imap_cmd {
	const char *text; /* borrowed: without tag and CRLF; or NULL and: */
	const struct imap_part *parts; /* borrowed: the command in pieces */
	size_t n_parts;
	/* What the trace shows instead of the command (it holds secrets,
	 * or literals); NULL: the text. */
	const char *trace;
	imap_handler h;
	imap_cont_handler cont;
	void *ctx;
	/* Data must still go out after a "+" (a synchronising literal,
	 * APPEND's message, idling): a completion before is a refusal. */
	bool pending;
	size_t next_part; /* the literal whose data waits for the "+" */
	char tag[16]; /* set by imap_cmd_send() */
	int rc; /* once finished: 0, or -1 with err */
	struct imap_error err;
};

void imap_set_err(struct imap_session *s, enum imap_err_kind kind, int errnum,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void imap_set_nomem(struct imap_session *s);
void imap_state_set(struct imap_session *s, enum imap_state state);
void imap_clean_text(char *buf, size_t size, const char *text);
int imap_read_resp(struct imap_session *s, const struct imap_resp **r_r);
void imap_status_code(struct imap_session *s, const struct imap_resp *r);
void imap_untagged(struct imap_session *s, const struct imap_resp *r);
int imap_net_write(struct imap_session *s, const void *data, size_t len);
int imap_net_write_wipe(struct imap_session *s, struct strbuf *out);

int imap_cmd_send(struct imap_session *s, struct imap_cmd *c, size_t n);
int imap_cmd_wait(struct imap_session *s, struct imap_cmd *c);
int imap_cmd_finish(struct imap_session *s, struct imap_cmd *c, size_t n);
int imap_cmd_run(struct imap_session *s, struct imap_cmd *c, size_t n);
int imap_run(struct imap_session *s, const char *cmd, imap_handler h,
	     void *ctx);

bool imap_literal_plus(const struct imap_session *s, size_t len);
bool imap_quote(struct strbuf *b, const char *str);
bool imap_arg_mailbox(const struct imap_session *s, struct strbuf *b,
		      const char *name);
bool imap_atom_char(unsigned char c);
void imap_flags_take(struct strbuf *flags, const struct imap_tok *list);
const struct imap_tok *imap_resp_fetch_items(const struct imap_resp *r);
const char *imap_status_mailbox(const struct imap_resp *r);
bool imap_date_parse(const char *str, size_t len, time_t *t_r);

/* imap_login.c: greeting, STARTTLS, login and COMPRESS of imap_open(). */
int imap_login_run(struct imap_session *s, bool *greeted_r);

/*
 * imap_open() that sends then (a command without literals or
 * continuation, zeroed by the caller) in the same write as the login
 * command, when the login is one command that the server answers
 * without a challenge (LOGIN, or AUTHENTICATE PLAIN with its initial
 * response): its answer comes in the same round trip. Its handler sees
 * its untagged answers before the capabilities are asked for again.
 * Once open: then->tag is empty when it was not sent (the caller runs
 * it itself if it still wants it); else then->rc and then->err tell its
 * result. A NO or BAD to then does not fail the open.
 */
int imap_open_then(const struct imap_config *cfg, struct imap_session **s_r,
		   struct imap_error *err, struct imap_cmd *then);

/* imap_mailbox.c: the selection as SELECT and EXAMINE change it. */
int imap_mailbox_select_begin(struct imap_session *s, const char *mailbox,
			      bool readonly, struct strbuf *cmd);
void imap_mailbox_select_forget(struct imap_session *s, bool readonly);
int imap_mailbox_select_end(struct imap_session *s, const char *mailbox,
			    bool readonly, struct imap_mailbox *mb_r);
int imap_mailbox_run(struct imap_session *s, const char *verb, const char *a,
		     const char *b);
int imap_mailbox_examine_done(struct imap_session *s, const char *mailbox,
			      struct imap_cmd *c, size_t n,
			      struct imap_mailbox *mb_r);

#endif
