/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * login: the one login driver of IMAP and POP3. It picks the way to log
 * in (-o auth= and what the server offers), fetches the secret for this
 * very login (sasl_secret_get()), runs the SASL exchange through sasl's
 * client or the protocol's own password command, and turns a refusal
 * into one clear line for the user. The protocol gives it a small table
 * of operations that do the I/O (struct login_ops): it starts the
 * exchange, reads the server's challenges, answers them, and records
 * the errors in its own terms. The secret never reaches a trace or a
 * message: a response that holds credentials goes out with the trace
 * text "<credentials hidden>".
 *
 * Also here, because both protocols need them for what they tell the
 * user: cleaning server text, and the list of mechanisms offered.
 */
#ifndef MAILFS_LOGIN_H
#define MAILFS_LOGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "sasl.h"

/* What kind of failure the driver records (login_ops.fail). */
enum login_err {
	LOGIN_ERR_REFUSED, /* the server refused: who, where and why */
	LOGIN_ERR_AUTH, /* no way to log in safely, no secret, bad secret */
	LOGIN_ERR_PROTO, /* the server broke the exchange */
	LOGIN_ERR_NOMEM,
};

/* A line login_ops.send() writes: the command that starts the exchange,
 * or that command when it is the whole exchange (its initial response
 * completes the mechanism, PLAIN: the server's next word is the end of
 * the login, never a challenge), or a response to a challenge. */
enum login_line {
	LOGIN_LINE_START,
	LOGIN_LINE_WHOLE,
	LOGIN_LINE_RESPONSE,
};

/* The protocol's side of a login; ctx is login_run()'s. */
struct login_ops {
	/* The command of the SASL exchange ("AUTHENTICATE", "AUTH"), and
	 * how messages name a mechanism ("AUTH=", "SASL "). */
	const char *sasl_verb;
	const char *mech_word;
	/* The protocol's own login with user and secret (IMAP LOGIN,
	 * POP3 USER/PASS): 0, or -1 with the session's error set. */
	int (*password)(void *ctx, const char *user, const char *secret);
	/* Sends one line (without its line end): first, the command that
	 * starts the exchange; then each response. trace, when not NULL,
	 * is what the trace shows instead of the line. */
	int (*send)(void *ctx, const char *line, const char *trace,
		    enum login_line kind);
	/* Reads the server's answer: 1 with a challenge (base64 text,
	 * valid until the next call), 0 when the login succeeded, -1 when
	 * it failed (the session's error says why). */
	int (*challenge)(void *ctx, const char **chal_r, size_t *len_r);
	/* Classifies a failure: true when the session's last error is the
	 * server's refusal (NO or BAD, -ERR), whose text goes to text. */
	bool (*refused)(void *ctx, char *text, size_t size);
	/* Records a failure of the login as the session's error. */
	void (*fail)(void *ctx, enum login_err kind, int errnum,
		     const char *text);
};

/* Who logs in where, and how (-o auth=). All borrowed. */
struct login_user {
	const char *host, *port, *user;
	enum sasl_auth auth;
	const struct sasl_credential *credential;
};

/* What the server offers for logging in. */
struct login_offer {
	/* The SASL mechanisms: bit 1u << enum sasl_mech each. */
	unsigned mechs;
	/* Their names as the server listed them (login_add_mech()). */
	const char *offered;
	/* The longest line the command that starts the exchange may be
	 * with its initial response, line end included: 0 when it takes
	 * none (the response follows the server's first "+"), SIZE_MAX
	 * for no bound. */
	size_t ir_line_max;
	/* The password command when the server disables it (IMAP's
	 * LOGINDISABLED: "LOGIN"), else NULL. */
	const char *password_disabled;
};

/*
 * Logs in: by default SASL PLAIN when offered, else the password
 * command; a forced mechanism must be offered, or the login fails
 * naming what the server offers; auth=login is the password command.
 * Returns 0 when logged in, or -1 with the failure recorded through
 * ops->fail() (a refusal as "login as USER on HOST failed (...): what
 * the server said").
 */
int login_run(const struct login_ops *ops, void *ctx,
	      const struct login_user *who, const struct login_offer *offer);

/* Copies len bytes of server text into buf (always NUL terminated),
 * keeping only printable ASCII: a hostile server cannot put escape
 * sequences on the user's terminal or in the log. */
void login_clean_text(char *buf, size_t size, const char *text, size_t len);

/* Adds a mechanism's name (len bytes, cleaned) to the space-separated
 * list of those offered in buf, while it fits. */
void login_add_mech(char *buf, size_t size, const char *name, size_t len);

#endif
