// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * login: the login driver IMAP and POP3 share; see login.h.
 *
 * The exchange: the command that starts it ("AUTHENTICATE PLAIN ...",
 * "AUTH PLAIN ...") carries the initial response where it fits; each challenge then gets the
 * mechanism's answer (sasl_client_step()), or "*" when the mechanism
 * gives up, after which the server fails the command. A server that
 * goes on after a "*", or sends more challenges than any mechanism
 * needs, breaks the exchange.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "login.h"
#include "sasl.h"
#include "strbuf.h"

/* Longest text a failure records (as the sessions' error texts). */
#define LOGIN_TEXT_MAX 512
/* Most challenges one exchange may bring: more than any mechanism
 * needs (the empty one, an OAuth2 error, then a cancel). */
#define LOGIN_MAX_CHALLENGES 4

/* One login: the protocol's operations and what login_run() got. */
struct login {
	const struct login_ops *ops;
	void *ctx;
	const struct login_user *who;
	const struct login_offer *offer;
};

/* State of one SASL exchange. */
struct login_sasl {
	struct sasl_client client;
	bool cancelled; /* "*" went out: the client gave up */
};

static void login_fail(const struct login *p, enum login_err kind, int errnum,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Formats a failure's text and records it through the protocol. */
static void login_fail(const struct login *p, enum login_err kind, int errnum,
		       const char *fmt, ...)
{
	char text[LOGIN_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	p->ops->fail(p->ctx, kind, errnum, text);
}

/* Copies server text keeping printable ASCII only (see login.h). */
void login_clean_text(char *buf, size_t size, const char *text, size_t len)
{
	size_t i;

	for (i = 0; i < len && i + 1 < size; i++) {
		unsigned char c = text[i];

		buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	buf[i] = '\0';
}

/* Adds a mechanism's cleaned name to the list, while it fits. */
void login_add_mech(char *buf, size_t size, const char *name, size_t len)
{
	size_t used = strlen(buf);

	if (len == 0 || used + len + 2 > size)
		return;
	if (used)
		buf[used++] = ' ';
	login_clean_text(buf + used, size - used, name, len);
}

/*
 * Picks the way to log in from p->who->auth and what the server offers:
 * *sasl_r tells SASL (with *mech_r) from the password command. A way
 * the server does not offer fails, naming what it offers.
 */
static int login_way(const struct login *p, bool *sasl_r,
		     enum sasl_mech *mech_r)
{
	const char *offers =
		p->offer->offered[0] ? p->offer->offered : "no SASL mechanism";

	if (sasl_auth_mech(p->who->auth, mech_r)) {
		*sasl_r = true;
		if (p->offer->mechs & (1u << *mech_r))
			return 0;
		login_fail(p, LOGIN_ERR_AUTH, EACCES,
			   "%s does not offer %s%s (-o auth=%s); it offers %s",
			   p->who->host, p->ops->mech_word,
			   sasl_mech_name(*mech_r),
			   sasl_auth_name(p->who->auth), offers);
		return -1;
	}
	*mech_r = SASL_MECH_PLAIN;
	*sasl_r = p->who->auth == SASL_AUTH_DEFAULT &&
		  (p->offer->mechs & (1u << SASL_MECH_PLAIN));
	if (*sasl_r || !p->offer->password_disabled)
		return 0;
	if (p->who->auth == SASL_AUTH_LOGIN)
		login_fail(p, LOGIN_ERR_AUTH, EACCES,
			   "%s disables %s (-o auth=login); it offers %s",
			   p->who->host, p->offer->password_disabled, offers);
	else
		login_fail(p, LOGIN_ERR_AUTH, EACCES,
			   "%s disables %s and offers no %sPLAIN", p->who->host,
			   p->offer->password_disabled, p->ops->mech_word);
	return -1;
}

/*
 * Answers one challenge with the mechanism's response, or with "*"
 * (cancel) when the mechanism gives up; the server then fails the
 * command. The trace never shows credentials.
 */
static int login_answer(const struct login *p, struct login_sasl *x,
			const char *chal, size_t len)
{
	struct strbuf out = {0};
	int rc;

	if (x->cancelled) {
		login_fail(p, LOGIN_ERR_PROTO, EPROTO,
			   "%s went on with %s after it was cancelled",
			   p->who->host, p->ops->sasl_verb);
		return -1;
	}
	if (sasl_client_step(&x->client, chal, len, &out) < 0) {
		x->cancelled = true;
		strbuf_reset(&out);
		strbuf_puts(&out, "*");
	}
	if (strbuf_failed(&out)) {
		strbuf_wipe(&out);
		login_fail(p, LOGIN_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	rc = p->ops->send(p->ctx, strbuf_str(&out),
			  x->client.secret_out ? "<credentials hidden>"
			  : out.len	       ? NULL
					       : "(empty response)",
			  LOGIN_LINE_RESPONSE);
	strbuf_wipe(&out);
	return rc;
}

/* The room for the base64 initial response on the command that starts
 * the exchange for mech ("VERB MECH IR" CRLF). */
static size_t login_ir_max(const struct login *p, const char *mech)
{
	size_t max = p->offer->ir_line_max;
	size_t used = strlen(p->ops->sasl_verb) + strlen(mech) + 4;

	if (max == SIZE_MAX)
		return SIZE_MAX;
	return max > used ? max - used : 0;
}

/* Sends "VERB MECH [IR]", the command that starts the exchange; the
 * trace hides the initial response. PLAIN's initial response is the
 * whole exchange (LOGIN_LINE_WHOLE). */
static int login_start(const struct login *p, enum sasl_mech mech,
		       const struct strbuf *ir)
{
	const char *name = sasl_mech_name(mech);
	struct strbuf line = {0};
	char trace[64];
	int rc;

	strbuf_printf(&line, "%s %s", p->ops->sasl_verb, name);
	if (ir->len)
		strbuf_printf(&line, " %s", strbuf_str(ir));
	if (strbuf_failed(&line)) {
		strbuf_wipe(&line);
		login_fail(p, LOGIN_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	snprintf(trace, sizeof(trace), "%s %s%s", p->ops->sasl_verb, name,
		 ir->len ? " <credentials hidden>" : "");
	rc = p->ops->send(p->ctx, strbuf_str(&line), trace,
			  mech == SASL_MECH_PLAIN && ir->len
				  ? LOGIN_LINE_WHOLE
				  : LOGIN_LINE_START);
	strbuf_wipe(&line);
	return rc;
}

/*
 * The SASL exchange: the initial response goes with the command where
 * the protocol has room for it, else after the server's first, empty,
 * challenge; every challenge is answered by login_answer() until the
 * server's final answer.
 */
static int login_sasl(const struct login *p, struct login_sasl *x,
		      enum sasl_mech mech, const char *secret)
{
	const char *name = sasl_mech_name(mech), *chal;
	struct strbuf ir = {0};
	size_t len;
	unsigned n;
	int rc = -1;

	sasl_client_init(&x->client, mech, p->who->user, secret, p->who->host,
			 p->who->port);
	x->cancelled = false;
	if (sasl_client_start(&x->client, login_ir_max(p, name), &ir) < 0) {
		login_fail(p, LOGIN_ERR_AUTH, EINVAL, "%s", x->client.error);
		goto out;
	}
	if (strbuf_failed(&ir)) {
		login_fail(p, LOGIN_ERR_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	if (login_start(p, mech, &ir) < 0)
		goto out;
	for (n = 0; (rc = p->ops->challenge(p->ctx, &chal, &len)) == 1; n++) {
		if (n == LOGIN_MAX_CHALLENGES) {
			login_fail(p, LOGIN_ERR_PROTO, EPROTO,
				   "%s sent more than %d SASL challenges",
				   p->who->host, LOGIN_MAX_CHALLENGES);
			rc = -1;
			break;
		}
		if (login_answer(p, x, chal, len) < 0) {
			rc = -1;
			break;
		}
	}
out:
	strbuf_wipe(&ir);
	return rc;
}

/*
 * Turns a refused login into a clear failure: the user, the host, the
 * server's text and, after SASL, why the client cancelled or the status
 * of the server's OAuth2 error. x is NULL after the password command.
 * Other failures (the network, the protocol) are left as they are.
 */
static void login_failed(const struct login *p, const struct login_sasl *x)
{
	char said[LOGIN_TEXT_MAX];
	struct strbuf b = {0};

	if (!p->ops->refused(p->ctx, said, sizeof(said)))
		return;
	strbuf_printf(&b, "login as %.40s on %.60s failed", p->who->user,
		      p->who->host);
	if (x && x->cancelled)
		strbuf_printf(&b, " (%s)", x->client.error);
	else if (x && x->client.server_status[0])
		strbuf_printf(&b, " (%s error status: %s)",
			      sasl_mech_name(x->client.mech),
			      x->client.server_status);
	/* The server's text comes last: if the line is cut, that is. */
	strbuf_printf(&b, ": %s", said);
	p->ops->fail(p->ctx, LOGIN_ERR_REFUSED, EACCES,
		     strbuf_failed(&b) ? "login failed" : strbuf_str(&b));
	strbuf_free(&b);
}

/* Logs in (see login.h): the way, the secret, the exchange, and a
 * refusal made clear. */
int login_run(const struct login_ops *ops, void *ctx,
	      const struct login_user *who, const struct login_offer *offer)
{
	const struct login l = {ops, ctx, who, offer}, *p = &l;
	struct login_sasl x;
	enum sasl_mech mech;
	char err[256], *secret;
	bool sasl;
	int rc;

	if (login_way(p, &sasl, &mech) < 0)
		return -1;
	/* Fetched for this very login: a token may have been refreshed
	 * since the last one. */
	secret = sasl_secret_get(who->credential, err, sizeof(err));
	if (!secret) {
		login_fail(p, LOGIN_ERR_AUTH, EACCES, "%s", err);
		return -1;
	}
	rc = sasl ? login_sasl(p, &x, mech, secret)
		  : ops->password(ctx, who->user, secret);
	sasl_secret_free(secret);
	if (rc < 0)
		login_failed(p, sasl ? &x : NULL);
	return rc;
}
