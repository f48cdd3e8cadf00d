/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pop3: one POP3 client session (RFC 1939, CAPA and SASL from RFC 2449 /
 * 5034, STLS from RFC 2595). Used by one thread at a time.
 *
 * Return contract: functions returning int give 0 when the server said
 * +OK, and -1 otherwise; pop3_error() then tells what happened (-ERR with
 * its text, a lost connection or timeout, a protocol violation such as an
 * overlong line or a message longer than allowed). After anything but an
 * -ERR, pop3_usable() is false and the session must be closed. Deletions
 * (DELE) take effect only at a successful pop3_quit(); closing a session
 * any other way deletes nothing.
 */
#ifndef MAILFS_POP3_H
#define MAILFS_POP3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sasl.h"

struct net_tls_ctx;

enum pop3_tls {
	POP3_TLS_IMPLICIT,
	POP3_TLS_STLS,
	POP3_TLS_NONE,
};

struct pop3_config {
	const char *host; /* borrowed */
	const char *port; /* borrowed */
	const char *user; /* borrowed */
	enum sasl_auth auth; /* how to log in */
	/* Asked for the password or access token at every login. */
	struct sasl_credential credential;
	enum pop3_tls tls;
	struct net_tls_ctx *tls_ctx; /* borrowed */
	int timeout_ms;
	bool trace; /* protocol trace through log_debug(), no credentials */
};

enum pop3_err_kind {
	POP3_ERR_NONE,
	POP3_ERR_ERR, /* the server answered -ERR: see text */
	POP3_ERR_NET, /* connection lost or timed out: see errnum */
	POP3_ERR_PROTO, /* the server broke the protocol or a bound */
	POP3_ERR_AUTH, /* login refused, or no safe way to log in */
	POP3_ERR_NOMEM,
};

struct pop3_error {
	enum pop3_err_kind kind;
	int errnum; /* positive errno: ETIMEDOUT, ECONNRESET, EMSGSIZE... */
	char text[512]; /* one line, for the user */
};

/* Largest message size accepted from LIST, and UIDL length (RFC 1939). */
#define POP3_MAX_MESSAGE (1024ull * 1024 * 1024)
#define POP3_MAX_UIDL 70
/* Most messages a maildrop may list; message numbers are 1 to this. */
#define POP3_MAX_COUNT 1000000

/* One message of the maildrop, from UIDL and LIST together. */
struct pop3_msg {
	unsigned num; /* message number in this session */
	uint64_t size; /* LIST size */
	char uidl[POP3_MAX_UIDL + 1];
};

struct pop3_session;

/*
 * Connects, secures (implicit TLS, or STLS — refusing to go on in
 * cleartext unless cfg->tls is POP3_TLS_NONE), asks cfg->credential for
 * the secret and logs in as cfg->auth says: by default AUTH PLAIN when
 * the server lists SASL PLAIN in CAPA, else USER/PASS; a forced
 * mechanism (PLAIN, XOAUTH2, OAUTHBEARER) must be listed, or the login
 * fails naming what the server offers; auth=login is USER/PASS. AUTH
 * carries the initial response when the line stays within 255 bytes
 * (RFC 5034), else the response follows the server's "+". APOP is never
 * needed. On failure returns -1 and fills err with one line for the
 * user (with the status of an OAuth2 error). cfg must outlive the
 * session.
 */
int pop3_open(const struct pop3_config *cfg, struct pop3_session **s_r,
	      struct pop3_error *err);

/* Ends the session without QUIT (so without deleting anything) and
 * frees it. NULL is fine. */
void pop3_close(struct pop3_session *s);

/* QUIT: commits the DELEs of this session, then frees it whatever the
 * answer. Returns 0 only when the server confirmed (+OK); err (may be
 * NULL) gets the outcome. A session that is no longer usable is closed
 * without QUIT (its DELEs are lost) and gives -1. */
int pop3_quit(struct pop3_session *s, struct pop3_error *err);

bool pop3_usable(const struct pop3_session *s);
const struct pop3_error *pop3_error(const struct pop3_session *s);

/*
 * UIDL and LIST: the maildrop as an array sorted by message number
 * (*msgs_r owned by the caller). Fails (POP3_ERR_PROTO) on a bogus
 * listing: a size above POP3_MAX_MESSAGE, a UIDL that is empty, too long
 * or not printable, duplicate UIDLs or numbers, or numbers that differ
 * between UIDL and LIST, more than POP3_MAX_COUNT messages or a number
 * above it. -ERR when the server has no UIDL. An empty maildrop gives
 * *n_r 0 and *msgs_r NULL; on failure both are NULL/0 too.
 */
int pop3_list(struct pop3_session *s, struct pop3_msg **msgs_r, size_t *n_r);

/*
 * Pipelining (when the server lists PIPELINING in CAPA): commands sent
 * with the _send functions are answered in order; each answer is then
 * read with the matching _read function. A -ERR answer leaves the
 * stream in step.
 */
bool pop3_can_pipeline(const struct pop3_session *s);
/* RETR num (its answer read by pop3_retr_read()). */
int pop3_retr_send(struct pop3_session *s, unsigned num);
/*
 * Reads the answer to an earlier pop3_retr_send() of num: the message
 * with dot-stuffing undone and CRLF kept (a bare LF from the server is
 * passed on as is), handed to write(ctx, data, len) in pieces (write
 * returns 0, or -1 to abort, which breaks the session). More than max
 * bytes is a protocol error (an endless message). *size_r gets the
 * bytes delivered (also on failure; size_r may be NULL). A message line
 * longer than 64 KiB is a protocol error too. An abort by write gives
 * POP3_ERR_NET with errnum ECANCELED.
 */
int pop3_retr_read(struct pop3_session *s, unsigned num, uint64_t max,
		   int (*write)(void *ctx, const char *data, size_t len),
		   void *ctx, uint64_t *size_r);
int pop3_dele_send(struct pop3_session *s, unsigned num);
/* Reads a one-line answer (+OK or -ERR) to an earlier _send. */
int pop3_status_read(struct pop3_session *s);

/* DELE num: marks a message for deletion at QUIT. */
int pop3_dele(struct pop3_session *s, unsigned num);

#endif
