// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * imap_login: what imap_open() does once connected: implicit TLS or
 * STARTTLS, the greeting, the capabilities, the login and COMPRESS.
 *
 * The login itself is login.c's driver, shared with POP3; this file
 * gives it IMAP's operations: LOGIN as the password command, and
 * AUTHENTICATE as a command whose continuation requests (the SASL
 * challenges) are handed to the driver, which answers them.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "imap.h"
#include "imap_priv.h"
#include "log.h"
#include "login.h"
#include "net.h"
#include "strbuf.h"

/* One login: the session and the AUTHENTICATE command in flight. */
struct imap_login {
	struct imap_session *s;
	struct imap_cmd cmd;
	char trace[64];
	const char *chal; /* the last challenge, valid until the next read */
	size_t chal_len;
};

/* A greeting that failed: from a POP3 server, or (never came over a
 * cleartext connection) from one waiting for a TLS handshake. Says
 * what to try. */
static void imap_login_greeting_hint(struct imap_session *s)
{
	size_t len = strlen(s->err.text);

	/* The greeting is the first thing read: still in the buffer. */
	if (s->rlen >= 3 && !memcmp(s->rbuf, "+OK", 3)) {
		imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
			     "%s:%s speaks POP3, not IMAP: use pop3s:// or "
			     "pop3://, or the IMAP port",
			     s->cfg->host, s->cfg->port);
		return;
	}
	if (s->cfg->tls == IMAP_TLS_IMPLICIT || s->err.errnum != ETIMEDOUT)
		return;
	snprintf(s->err.text + len, sizeof(s->err.text) - len,
		 " (no greeting: if %s is a TLS port, use imaps://)",
		 s->cfg->port);
}

/* Reads the greeting: OK or PREAUTH go on, BYE or anything else fails. */
static int imap_login_greeting(struct imap_session *s)
{
	const struct imap_resp *r;

	if (imap_read_resp(s, &r) < 0) {
		imap_login_greeting_hint(s);
		return -1;
	}
	if (r->kind != IMAP_RESP_UNTAGGED ||
	    (r->status != IMAP_STATUS_OK && r->status != IMAP_STATUS_PREAUTH)) {
		char text[128];

		imap_clean_text(text, sizeof(text), r->text);
		imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
			     "%s:%s refused the session: %s", s->cfg->host,
			     s->cfg->port,
			     r->status == IMAP_STATUS_BYE
				     ? text
				     : "not an IMAP greeting");
		return -1;
	}
	imap_status_code(s, r);
	/* Dovecot's login process hands what follows the login to the
	 * mail process, so a command sent with the login is answered
	 * right after it. Not every server does: Cyrus 3.6 reads
	 * AUTHENTICATE again after a command pipelined behind it. */
	s->then_ok = r->text && strstr(r->text, "Dovecot") != NULL;
	imap_state_set(s, r->status == IMAP_STATUS_PREAUTH
				  ? IMAP_STATE_AUTH
				  : IMAP_STATE_NOT_AUTH);
	return 0;
}

/* The TLS handshake, implicit or after STARTTLS. A certificate refusal
 * is final (AUTH); a reset or a timeout is the network's (EIO, not
 * EACCES). */
static int imap_login_handshake(struct imap_session *s)
{
	char err[sizeof(s->err.text)];
	int rc = net_start_tls(s->conn, s->cfg->tls_ctx, s->cfg->host, err,
			       sizeof(err));

	if (rc < 0) {
		imap_set_err(s, rc == -EPROTO ? IMAP_ERR_AUTH : IMAP_ERR_NET,
			     -rc, "%s", err);
		imap_state_set(s, IMAP_STATE_BROKEN);
		return -1;
	}
	return 0;
}

/* Runs STARTTLS and the TLS handshake; capabilities are then forgotten,
 * since what was said in cleartext cannot be trusted. */
static int imap_login_starttls(struct imap_session *s)
{
	if (!(s->caps & IMAP_CAP_STARTTLS)) {
		imap_set_err(s, IMAP_ERR_AUTH, EPROTO,
			     "%s:%s does not offer STARTTLS; refusing to log "
			     "in without TLS (use imaps://, or -o tls=none "
			     "to accept a cleartext session)",
			     s->cfg->host, s->cfg->port);
		return -1;
	}
	if (imap_run(s, "STARTTLS", NULL, NULL) < 0)
		return -1;
	if (s->rpos < s->rlen || net_buffered(s->conn)) {
		imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
			     "%s sent data after STARTTLS (possible attack)",
			     s->cfg->host);
		return -1;
	}
	if (imap_login_handshake(s) < 0)
		return -1;
	s->caps = 0;
	return 0;
}

/*
 * Sends the login command c, with the session's then in the same write
 * when the login is the whole exchange and the server is known to take
 * it (imap_open_then()). The tags are minted in that order, so then is
 * answered right after the login.
 */
static int imap_login_send_cmd(struct imap_session *s, struct imap_cmd *c,
			       bool whole)
{
	struct imap_cmd two[2];
	int rc;

	if (!whole || !s->then || !s->then_ok)
		return imap_cmd_send(s, c, 1);
	two[0] = *c;
	two[1] = *s->then;
	rc = imap_cmd_send(s, two, 2);
	*c = two[0];
	*s->then = two[1];
	if (rc < 0)
		s->then->tag[0] = '\0';
	return rc;
}

/* Whether a command of these parts goes out in one write: no literal
 * waits for the server's "+". */
static bool imap_login_one_write(const struct imap_session *s,
				 const struct imap_part *parts, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (parts[i].literal && !imap_literal_plus(s, parts[i].len))
			return false;
	return true;
}

/* The password command: LOGIN with quoted strings, or literals for
 * what cannot be quoted. The trace hides both. */
static int imap_login_password(void *ctx, const char *user, const char *secret)
{
	struct imap_session *s = ((struct imap_login *)ctx)->s;
	struct strbuf u = {0}, pass = {0};
	struct imap_part parts[4];
	struct imap_cmd c = {.parts = parts,
			     .trace = "LOGIN <credentials hidden>"};
	bool whole;
	int rc;

	parts[c.n_parts++] = (struct imap_part){"LOGIN ", 6, false};
	if (imap_quote(&u, user))
		parts[c.n_parts++] = (struct imap_part){u.data, u.len, false};
	else
		parts[c.n_parts++] =
			(struct imap_part){user, strlen(user), true};
	parts[c.n_parts++] = (struct imap_part){" ", 1, false};
	if (imap_quote(&pass, secret))
		parts[c.n_parts++] =
			(struct imap_part){pass.data, pass.len, false};
	else
		parts[c.n_parts++] =
			(struct imap_part){secret, strlen(secret), true};
	whole = imap_login_one_write(s, parts, c.n_parts);
	if (strbuf_failed(&u) || strbuf_failed(&pass)) {
		imap_set_nomem(s);
		rc = -1;
	} else if (imap_login_send_cmd(s, &c, whole) < 0) {
		rc = -1;
	} else {
		/* A literal that waits for its "+" is sent from here. */
		rc = imap_cmd_wait(s, &c) == 0 ? 0 : -1;
	}
	strbuf_wipe(&u);
	strbuf_wipe(&pass);
	return rc;
}

/* AUTHENTICATE's continuation request: a challenge, handed to the
 * login driver (imap_login_challenge()), which answers it. */
static int imap_login_cont(struct imap_session *s, struct imap_cmd *c,
			   const struct imap_resp *r)
{
	struct imap_login *l = c->ctx;

	(void)s;
	l->chal = r->text ? r->text : "";
	l->chal_len = strlen(l->chal);
	return 1;
}

/*
 * A line of the exchange: first "AUTHENTICATE mech [ir]", a command
 * whose challenges come back through imap_login_cont(); then each
 * response (or "*"), written as it is.
 */
static int imap_login_send(void *ctx, const char *line, const char *trace,
			   enum login_line kind)
{
	struct imap_login *l = ctx;
	struct strbuf out = {0};
	int rc;

	if (kind != LOGIN_LINE_RESPONSE) {
		snprintf(l->trace, sizeof(l->trace), "%s", trace);
		l->cmd = (struct imap_cmd){.text = line,
					   .trace = l->trace,
					   .cont = imap_login_cont,
					   .ctx = l};
		rc = imap_login_send_cmd(l->s, &l->cmd,
					 kind == LOGIN_LINE_WHOLE);
		l->cmd.text = NULL; /* the caller wipes it */
		return rc;
	}
	if (l->s->cfg->trace)
		log_debug("C: %s", trace ? trace : line);
	strbuf_printf(&out, "%s\r\n", line);
	return imap_net_write_wipe(l->s, &out);
}

/* Reads AUTHENTICATE's answer up to its next challenge or its end. */
static int imap_login_challenge(void *ctx, const char **chal_r, size_t *len_r)
{
	struct imap_login *l = ctx;
	int rc = imap_cmd_wait(l->s, &l->cmd);

	if (rc == 1) {
		*chal_r = l->chal;
		*len_r = l->chal_len;
	}
	return rc;
}

/* A NO or BAD is the server's refusal of the login. */
static bool imap_login_refused(void *ctx, char *text, size_t size)
{
	struct imap_session *s = ((struct imap_login *)ctx)->s;

	if (s->err.kind != IMAP_ERR_NO && s->err.kind != IMAP_ERR_BAD)
		return false;
	snprintf(text, size, "%s", s->err.text);
	return true;
}

/* Records the driver's failure: a refusal keeps the response code of
 * the server's answer, with the driver's text. */
static void imap_login_fail(void *ctx, enum login_err kind, int errnum,
			    const char *text)
{
	struct imap_session *s = ((struct imap_login *)ctx)->s;

	switch (kind) {
	case LOGIN_ERR_REFUSED:
		s->err.kind = IMAP_ERR_AUTH;
		snprintf(s->err.text, sizeof(s->err.text), "%s", text);
		break;
	case LOGIN_ERR_AUTH:
		imap_set_err(s, IMAP_ERR_AUTH, errnum, "%s", text);
		break;
	case LOGIN_ERR_PROTO:
		imap_set_err(s, IMAP_ERR_PROTO, errnum, "%s", text);
		break;
	case LOGIN_ERR_NOMEM:
		imap_set_err(s, IMAP_ERR_NOMEM, errnum, "%s", text);
		break;
	}
}

/* The operations login_run() drives, in struct login_ops order. */
static const struct login_ops imap_login_ops = {
	"AUTHENTICATE",	      "AUTH=",
	imap_login_password,  imap_login_send,
	imap_login_challenge, imap_login_refused,
	imap_login_fail};

/* Logs in through the shared driver, the way cfg->auth asks, then
 * forgets capabilities that the login's OK did not restate. */
static int imap_login_authenticate(struct imap_session *s)
{
	const struct imap_config *cfg = s->cfg;
	const struct login_user who = {cfg->host, cfg->port, cfg->user,
				       cfg->auth, &cfg->credential};
	struct login_offer offer = {.offered = s->mechs};
	struct imap_login l = {.s = s};

	if (s->caps & IMAP_CAP_AUTH_PLAIN)
		offer.mechs |= 1u << SASL_MECH_PLAIN;
	if (s->caps & IMAP_CAP_AUTH_XOAUTH2)
		offer.mechs |= 1u << SASL_MECH_XOAUTH2;
	if (s->caps & IMAP_CAP_AUTH_OAUTHBEARER)
		offer.mechs |= 1u << SASL_MECH_OAUTHBEARER;
	/* SASL-IR: the initial response goes with the command, however
	 * long; without, after the server's first "+". */
	offer.ir_line_max = (s->caps & IMAP_CAP_SASL_IR) ? SIZE_MAX : 0;
	if (s->caps & IMAP_CAP_LOGINDISABLED)
		offer.password_disabled = "LOGIN";
	if (login_run(&imap_login_ops, &l, &who, &offer) < 0)
		return -1;
	imap_state_set(s, IMAP_STATE_AUTH);
	/* The OK may carry the new capabilities; ask only if not. */
	if (!s->done || s->done->n_code == 0 ||
	    !imap_parse_tok_is(&s->done->code[0], "CAPABILITY"))
		s->caps = 0;
	return 0;
}

/*
 * Reads the answer of the command sent with the login (imap_open_then()),
 * which comes right after the login's. Only a broken session fails: a
 * NO or BAD is then's own result.
 */
static int imap_login_then(struct imap_session *s)
{
	struct imap_cmd *c = s->then;

	if (!c || !c->tag[0])
		return 0;
	s->err.kind = IMAP_ERR_NONE;
	c->rc = imap_cmd_wait(s, c) == 0 ? 0 : -1;
	c->err = s->err;
	if (c->rc < 0 && s->err.kind != IMAP_ERR_NO &&
	    s->err.kind != IMAP_ERR_BAD)
		return -1;
	s->err.kind = IMAP_ERR_NONE;
	return 0;
}

/*
 * COMPRESS DEFLATE (RFC 4978) when asked for and offered: every later
 * byte is compressed both ways, in net. The server starts compressing
 * right after its OK, so bytes already read past it go to net as the
 * start of its stream. A NO or BAD (say, COMPRESSIONACTIVE) leaves the
 * session as it was; only a lost connection fails.
 */
static int imap_login_compress(struct imap_session *s)
{
	char err[256];
	int rc;

	if (!s->cfg->compress || !(s->caps & IMAP_CAP_COMPRESS_DEFLATE))
		return 0;
	if (imap_run(s, "COMPRESS DEFLATE", NULL, NULL) < 0) {
		if (s->err.kind != IMAP_ERR_NO && s->err.kind != IMAP_ERR_BAD)
			return -1;
		log_debug("%s refused COMPRESS: %s", s->cfg->host, s->err.text);
		s->err.kind = IMAP_ERR_NONE;
		return 0;
	}
	rc = net_start_deflate(s->conn, s->rbuf + s->rpos, s->rlen - s->rpos,
			       err, sizeof(err));
	s->rpos = s->rlen = 0;
	if (rc < 0) {
		imap_set_err(s, rc == -ENOMEM ? IMAP_ERR_NOMEM : IMAP_ERR_PROTO,
			     -rc, "%s: %s", s->cfg->host, err);
		imap_state_set(s, IMAP_STATE_BROKEN);
		return -1;
	}
	log_debug("compression on (COMPRESS=DEFLATE%s)",
		  net_is_tls(s->conn) ? ", under TLS" : "");
	return 0;
}

/*
 * From a connected session to one logged in: implicit TLS, the
 * greeting (*greeted_r once it came), STARTTLS (refusing PREAUTH over
 * cleartext), the capabilities, the login unless PREAUTH, COMPRESS.
 * Returns 0, or -1 with the session's error.
 */
int imap_login_run(struct imap_session *s, bool *greeted_r)
{
	const struct imap_config *cfg = s->cfg;

	if (cfg->tls == IMAP_TLS_IMPLICIT && imap_login_handshake(s) < 0)
		return -1;
	if (imap_login_greeting(s) < 0)
		return -1;
	*greeted_r = true;
	if (cfg->tls == IMAP_TLS_STARTTLS) {
		if (s->state == IMAP_STATE_AUTH) {
			imap_set_err(s, IMAP_ERR_AUTH, EPROTO,
				     "%s logged us in before STARTTLS "
				     "(PREAUTH); refusing a cleartext session",
				     cfg->host);
			return -1;
		}
		if (!s->caps && imap_run(s, "CAPABILITY", NULL, NULL) < 0)
			return -1;
		if (imap_login_starttls(s) < 0)
			return -1;
	}
	if (s->state == IMAP_STATE_NOT_AUTH) {
		if (!s->caps && imap_run(s, "CAPABILITY", NULL, NULL) < 0)
			return -1;
		if (imap_login_authenticate(s) < 0)
			return -1;
		if (imap_login_then(s) < 0)
			return -1;
	}
	if (!s->caps && imap_run(s, "CAPABILITY", NULL, NULL) < 0)
		return -1;
	return imap_login_compress(s);
}
