/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sasl: the client side of the SASL mechanisms mailfs speaks, written
 * once for IMAP (AUTHENTICATE) and POP3 (AUTH): PLAIN (RFC 4616),
 * XOAUTH2 (Google's and Microsoft's format) and OAUTHBEARER (RFC 7628).
 * Pure: it builds the responses, base64 encoded as both protocols send
 * them, and reads the server's challenges; imap and pop3 do the I/O.
 *
 * Also here, because IMAP and POP3 share them: how a session logs in
 * (-o auth=), and the credential callback that hands out a freshly
 * obtained secret (a password, or an OAuth2 access token that may have
 * been refreshed since the last login) at every login.
 */
#ifndef MAILFS_SASL_H
#define MAILFS_SASL_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf;

/* How a session logs in (-o auth=). */
enum sasl_auth {
	SASL_AUTH_DEFAULT, /* SASL PLAIN when offered, else as LOGIN */
	SASL_AUTH_PLAIN, /* SASL PLAIN only */
	SASL_AUTH_LOGIN, /* IMAP LOGIN command, POP3 USER/PASS: no SASL */
	SASL_AUTH_XOAUTH2, /* SASL XOAUTH2 with an access token */
	SASL_AUTH_OAUTHBEARER, /* SASL OAUTHBEARER with an access token */
};

enum sasl_mech {
	SASL_MECH_PLAIN,
	SASL_MECH_XOAUTH2,
	SASL_MECH_OAUTHBEARER,
};

/* Size of the buffer a secret is fetched into (NUL included): access
 * tokens of some providers run to several kilobytes. */
#define SASL_SECRET_MAX 16384

/* Where a session gets its secret at each login. */
struct sasl_credential {
	/*
	 * Puts a freshly obtained secret (the password, or an access
	 * token) into buf, NUL terminated, at most len bytes with the NUL.
	 * Returns 0, or -1 with err filled with one line for the user.
	 * Called at every login, from any thread, possibly concurrently.
	 */
	int (*get)(void *ctx, char *buf, size_t len, char *err, size_t errlen);
	void *ctx; /* borrowed */
};

/*
 * Asks cred for a secret, into a malloc'd buffer of SASL_SECRET_MAX
 * bytes that the caller gives back to sasl_secret_free(). Returns NULL
 * with err filled when the callback fails or memory runs out. (The
 * callback may do I/O, such as running a command; sasl itself does
 * none.)
 */
char *sasl_secret_get(const struct sasl_credential *cred, char *err,
		      size_t errlen);

/* Wipes and frees a secret from sasl_secret_get(). NULL is fine. */
void sasl_secret_free(char *secret);

/* The mechanism's name on the wire ("PLAIN", "XOAUTH2", "OAUTHBEARER"). */
const char *sasl_mech_name(enum sasl_mech mech);

/* The mechanism named by [name, name+len), case-insensitively; false
 * when mailfs does not speak it. */
bool sasl_mech_lookup(const char *name, size_t len, enum sasl_mech *mech_r);

/* The mechanism a forced -o auth= asks for; false for DEFAULT and
 * LOGIN, which leave the choice to the protocol. */
bool sasl_auth_mech(enum sasl_auth auth, enum sasl_mech *mech_r);

/* True for the OAuth2 ways, whose secret is an access token. */
bool sasl_auth_is_oauth(enum sasl_auth auth);

/* The -o auth= word for auth ("plain", ...; "default"). */
const char *sasl_auth_name(enum sasl_auth auth);

enum sasl_state {
	SASL_STATE_START, /* nothing sent yet */
	SASL_STATE_WAIT_EMPTY, /* the initial response waits for "+" */
	SASL_STATE_SENT, /* the credentials went out */
	SASL_STATE_ACKED, /* the server's error was acknowledged */
	SASL_STATE_ABORTED, /* the client gave up: the exchange is cancelled */
};

/* One authentication exchange. All pointers are borrowed and must
 * outlive it; it holds no copy of the secret. */
struct sasl_client {
	enum sasl_mech mech;
	const char *user; /* authentication identity / OAuth2 user */
	const char *secret; /* password or access token */
	const char *host; /* OAUTHBEARER host= */
	const char *port; /* OAUTHBEARER port= */
	enum sasl_state state;
	/* True when the response last produced holds credentials, which a
	 * trace must then hide. */
	bool secret_out;
	/* The "status" of the server's error challenge (an OAuth2 failure),
	 * printable ASCII only; "" when there was none. */
	char server_status[64];
	/* Why sasl_client_start() or sasl_client_step() failed. */
	char error[160];
};

void sasl_client_init(struct sasl_client *c, enum sasl_mech mech,
		      const char *user, const char *secret, const char *host,
		      const char *port);

/*
 * Builds the initial response. When its base64 form fits in max bytes
 * it is appended to out, to go with the command (IMAP SASL-IR, POP3
 * AUTH's argument); otherwise out gets nothing and the command goes
 * alone: sasl_client_step() then gives the response to the server's
 * first, empty, challenge. Returns 0, or -1 with c->error when the user
 * or secret holds a byte the mechanism cannot carry (nothing may be
 * sent then).
 */
int sasl_client_start(struct sasl_client *c, size_t max, struct strbuf *out);

/*
 * Answers the challenge [challenge, challenge+len) (base64 text, as the
 * server sent it after "+ "): appends the base64 response, possibly
 * empty, to out and returns 0. An OAuth2 error challenge is answered as
 * RFC 7628 3.2.3 and Google's XOAUTH2 say (a dummy "\x01", an empty
 * response), after which the server fails the command; its status is
 * kept in c->server_status. Returns -1, with c->error, when the exchange
 * must be cancelled instead (the client sends "*").
 */
int sasl_client_step(struct sasl_client *c, const char *challenge, size_t len,
		     struct strbuf *out);

#endif
