// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * pop3: one client session; see pop3.h for the contract.
 *
 * Commands are single lines, each answered by one status line ("+OK" or
 * "-ERR"), and for CAPA, UIDL, LIST and RETR a dot-terminated multi-line
 * body after a +OK.
 *
 * Reading: the session splits lines itself from its own buffer, filled
 * by net_read(), instead of using net_read_line(). RETR must pass every
 * line end on exactly as the server sent it (CRLF, or a bare LF), and
 * net_read_line() removes either without saying which. Lines are handed
 * out as pointers into that buffer, so a message goes from net's buffer
 * to the write callback with one copy, in runs of many lines. A line
 * never spans more than the buffer: a longer one is a protocol error, so
 * memory stays bounded whatever the server sends.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "login.h"
#include "net.h"
#include "pop3.h"
#include "sasl.h"
#include "strbuf.h"

/* Read buffer, and so the longest message line, line end included. */
#define POP3_RBUF_SIZE (64 * 1024)
/* Longest status, CAPA, UIDL or LIST line, line end included. */
#define POP3_STATUS_MAX (8 * 1024)
/* Longest message line (RFC 5322 allows 1000): the whole buffer. */
#define POP3_DATA_MAX POP3_RBUF_SIZE
/* More CAPA lines than any server has: an endless CAPA is an error. */
#define POP3_MAX_CAPA_LINES 1000
/* Most of a server line shown in the trace. */
#define POP3_TRACE_MAX 200
/* Longest AUTH command line with its initial response (RFC 5034 4). */
#define POP3_AUTH_LINE_MAX 255

#define POP3_CAP_STLS 0x1u
#define POP3_CAP_SASL_PLAIN 0x2u
#define POP3_CAP_PIPELINING 0x4u
#define POP3_CAP_SASL_XOAUTH2 0x8u
#define POP3_CAP_SASL_OAUTHBEARER 0x10u

enum pop3_state {
	POP3_STATE_AUTHORIZATION, /* connected, not logged in yet */
	POP3_STATE_TRANSACTION, /* logged in */
	POP3_STATE_BROKEN, /* connection lost or out of step */
};

struct pop3_session {
	const struct pop3_config *cfg; /* borrowed */
	struct net_conn *conn; /* owned */
	enum pop3_state state;
	unsigned caps; /* POP3_CAP_*, from the last CAPA */
	/* The SASL mechanisms of the last CAPA, space-separated, for an
	 * error message naming what the server offers. */
	char mechs[128];
	struct pop3_error err;
	size_t rpos; /* first unconsumed byte in rbuf */
	size_t rlen; /* end of the received bytes in rbuf */
	char rbuf[POP3_RBUF_SIZE];
};

/* One line from the server, without its line end. */
struct pop3_line {
	const char *data; /* borrowed from rbuf: valid until the next fill */
	size_t len;
	size_t eol; /* bytes of the line end that followed: 1 (LF), 2 (CRLF) */
};

/* The size of one message, from LIST. */
struct pop3_size {
	unsigned num;
	uint64_t size;
};

static void pop3_set_err(struct pop3_session *s, enum pop3_err_kind kind,
			 int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/*
 * Records an error. Anything but -ERR breaks the session (see pop3.h):
 * after a lost connection, a protocol violation or a failure halfway
 * through a response, the stream is no longer in step with commands.
 */
static void pop3_set_err(struct pop3_session *s, enum pop3_err_kind kind,
			 int errnum, const char *fmt, ...)
{
	va_list ap;

	s->err.kind = kind;
	s->err.errnum = errnum;
	va_start(ap, fmt);
	vsnprintf(s->err.text, sizeof(s->err.text), fmt, ap);
	va_end(ap);
	if (kind != POP3_ERR_ERR)
		s->state = POP3_STATE_BROKEN;
}

/* Forgets the error of the previous command. */
static void pop3_clear_err(struct pop3_session *s)
{
	s->err.kind = POP3_ERR_NONE;
	s->err.errnum = 0;
	s->err.text[0] = '\0';
}

/* Formats a timeout for messages: 30000 -> "30", 300 -> "0.3". */
static void pop3_fmt_secs(int ms, char *buf, size_t len)
{
	snprintf(buf, len, "%g", ms / 1000.0);
}

/*
 * Turns a failed net_read() or net_write() (a negative errno, or 0 for
 * end of stream) into the session's error; it always breaks the session.
 */
static void pop3_net_err(struct pop3_session *s, long rc, const char *what)
{
	const char *host = s->cfg->host;
	char secs[32];
	int e = rc == 0 ? ECONNRESET : (int)-rc;

	if (e == ETIMEDOUT) {
		pop3_fmt_secs(s->cfg->timeout_ms, secs, sizeof(secs));
		pop3_set_err(s, POP3_ERR_NET, e,
			     "%s did not answer within %s s", host, secs);
	} else if (rc == 0) {
		pop3_set_err(s, POP3_ERR_NET, e, "%s closed the connection",
			     host);
	} else {
		pop3_set_err(s, POP3_ERR_NET, e, "cannot %s %s: %s", what, host,
			     strerror(e));
	}
}

/*
 * Writes one server line to the debug trace, cleaned and shortened.
 * Message lines never come here: only status and listing lines.
 */
static void pop3_trace_line(const struct pop3_session *s,
			    const struct pop3_line *l)
{
	char text[POP3_TRACE_MAX + 1];

	if (!s->cfg->trace)
		return;
	login_clean_text(text, sizeof(text), l->data, l->len);
	log_debug("S: %s%s", text, l->len > POP3_TRACE_MAX ? "..." : "");
}

/*
 * Looks for a complete line of at most max bytes (line end included) in
 * what is buffered, without reading. Returns 1 with *l filled and the
 * line consumed, 0 when more bytes are needed, or -1 when the line is
 * already longer than max (the caller reports it).
 */
static int pop3_scan_line(struct pop3_session *s, size_t max,
			  struct pop3_line *l)
{
	const char *start = s->rbuf + s->rpos;
	size_t avail = s->rlen - s->rpos;
	const char *lf = memchr(start, '\n', avail < max ? avail : max);

	if (!lf)
		return avail >= max ? -1 : 0;
	l->data = start;
	l->len = (size_t)(lf - start);
	l->eol = 1;
	if (l->len > 0 && start[l->len - 1] == '\r') {
		l->len--;
		l->eol = 2;
	}
	s->rpos += l->len + l->eol;
	return 1;
}

/*
 * Moves the unconsumed bytes (part of a line, shorter than the buffer,
 * see pop3_scan_line()) to the front and reads more behind them. Every
 * pointer into the buffer is invalid afterwards. Each read waits at most
 * the session's timeout.
 */
static int pop3_fill(struct pop3_session *s)
{
	size_t avail = s->rlen - s->rpos;
	ssize_t n;

	if (s->rpos > 0) {
		memmove(s->rbuf, s->rbuf + s->rpos, avail);
		s->rpos = 0;
		s->rlen = avail;
	}
	n = net_read(s->conn, s->rbuf + s->rlen, sizeof(s->rbuf) - s->rlen);
	if (n <= 0) {
		pop3_net_err(s, (long)n, "read from");
		return -1;
	}
	s->rlen += (size_t)n;
	return 0;
}

/* Reads one status or listing line (at most POP3_STATUS_MAX bytes). */
static int pop3_read_line(struct pop3_session *s, struct pop3_line *l)
{
	for (;;) {
		int rc = pop3_scan_line(s, POP3_STATUS_MAX, l);

		if (rc > 0)
			return 0;
		if (rc < 0) {
			pop3_set_err(s, POP3_ERR_PROTO, EMSGSIZE,
				     "%s sent a line longer than %d bytes",
				     s->cfg->host, POP3_STATUS_MAX);
			return -1;
		}
		if (pop3_fill(s) < 0)
			return -1;
	}
}

/* True when the line is the status word (+OK, -ERR) alone or followed
 * by a space and text. */
static bool pop3_is_status(const struct pop3_line *l, const char *word)
{
	size_t n = strlen(word);

	return l->len >= n && memcmp(l->data, word, n) == 0 &&
	       (l->len == n || l->data[n] == ' ');
}

/* Copies the text of an -ERR line (after "-ERR ") for the user. */
static void pop3_err_text(const struct pop3_line *l, char *buf, size_t size)
{
	if (l->len > 5)
		login_clean_text(buf, size, l->data + 5, l->len - 5);
	else
		buf[0] = '\0';
}

/*
 * Reads a status line, or a SASL challenge ("+ text"): 0 for +OK; 1 for
 * a challenge, whose text (after "+ ") is *chal_r, valid until the next
 * read; for -ERR a POP3_ERR_ERR with the server's text (the session
 * stays usable); anything else is a protocol error.
 */
static int pop3_read_answer(struct pop3_session *s, const char **chal_r,
			    size_t *chal_len_r)
{
	struct pop3_line l;
	char text[64];

	if (pop3_read_line(s, &l) < 0)
		return -1;
	pop3_trace_line(s, &l);
	if (pop3_is_status(&l, "+OK"))
		return 0;
	if (pop3_is_status(&l, "-ERR")) {
		pop3_clear_err(s);
		s->err.kind = POP3_ERR_ERR;
		pop3_err_text(&l, s->err.text, sizeof(s->err.text));
		if (!s->err.text[0])
			snprintf(s->err.text, sizeof(s->err.text),
				 "%s answered -ERR", s->cfg->host);
		return -1;
	}
	if (l.len > 0 && l.data[0] == '+' && (l.len == 1 || l.data[1] == ' ')) {
		*chal_r = l.len > 2 ? l.data + 2 : "";
		*chal_len_r = l.len > 2 ? l.len - 2 : 0;
		return 1;
	}
	login_clean_text(text, sizeof(text), l.data, l.len);
	pop3_set_err(s, POP3_ERR_PROTO, EPROTO,
		     "%s sent a bad status line: \"%s\"", s->cfg->host, text);
	return -1;
}

/* Reads a status line: as pop3_read_answer(), where a SASL challenge is
 * a protocol error. */
static int pop3_read_status(struct pop3_session *s)
{
	const char *chal;
	size_t len;
	int rc = pop3_read_answer(s, &chal, &len);

	if (rc <= 0)
		return rc;
	pop3_set_err(s, POP3_ERR_PROTO, EPROTO,
		     "%s sent a SASL challenge where none was expected",
		     s->cfg->host);
	return -1;
}

/*
 * Reads one line of a multi-line response with dot-stuffing undone.
 * Returns 1 with *l filled, 0 at the terminating ".", -1 on error.
 */
static int pop3_read_item(struct pop3_session *s, struct pop3_line *l)
{
	if (pop3_read_line(s, l) < 0)
		return -1;
	if (l->len > 0 && l->data[0] == '.') {
		if (l->len == 1)
			return 0;
		l->data++;
		l->len--;
	}
	return 1;
}

/*
 * Sends one command line. trace is what the debug trace shows instead
 * of the command when the command holds a secret. The line is built in
 * a strbuf that is wiped afterwards, since it may hold a password.
 */
static int pop3_send(struct pop3_session *s, const char *cmd, const char *trace)
{
	struct strbuf b = {0};
	int rc;

	if (s->state == POP3_STATE_BROKEN) {
		pop3_set_err(s, POP3_ERR_NET, ENOTCONN,
			     "connection to %s is broken", s->cfg->host);
		return -1;
	}
	strbuf_puts(&b, cmd);
	strbuf_puts(&b, "\r\n");
	if (strbuf_failed(&b)) {
		strbuf_wipe(&b);
		pop3_set_err(s, POP3_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	if (s->cfg->trace)
		log_debug("C: %s", trace ? trace : cmd);
	rc = net_write(s->conn, b.data, b.len);
	strbuf_wipe(&b);
	if (rc < 0) {
		pop3_net_err(s, rc, "write to");
		return -1;
	}
	return 0;
}

/* Runs a command and reads its status line; see pop3_read_status(). */
static int pop3_command(struct pop3_session *s, const char *cmd,
			const char *trace)
{
	pop3_clear_err(s);
	if (pop3_send(s, cmd, trace) < 0)
		return -1;
	return pop3_read_status(s);
}

/*
 * Reads the rest of a multi-line response and forgets it, keeping the
 * stream in step (after a pipelined command whose answer is not used).
 */
static int pop3_skip_items(struct pop3_session *s)
{
	struct pop3_line l;
	int rc;

	while ((rc = pop3_read_item(s, &l)) > 0)
		;
	return rc;
}

/* Compares a word of len bytes with name, ignoring case. */
static bool pop3_word_is(const char *word, size_t len, const char *name)
{
	return strlen(name) == len && strncasecmp(word, name, len) == 0;
}

/*
 * Takes the next space-separated word of [*p, end): its start and
 * length. Returns false when only spaces are left.
 */
static bool pop3_next_word(const char **p, const char *end, const char **w,
			   size_t *wlen)
{
	const char *q = *p;

	while (q < end && *q == ' ')
		q++;
	if (q == end)
		return false;
	*w = q;
	while (q < end && *q != ' ')
		q++;
	*wlen = (size_t)(q - *w);
	*p = q;
	return true;
}

/* The capability bit of a SASL mechanism. */
static unsigned pop3_mech_cap(enum sasl_mech mech)
{
	switch (mech) {
	case SASL_MECH_PLAIN:
		return POP3_CAP_SASL_PLAIN;
	case SASL_MECH_XOAUTH2:
		return POP3_CAP_SASL_XOAUTH2;
	case SASL_MECH_OAUTHBEARER:
		return POP3_CAP_SASL_OAUTHBEARER;
	}
	return 0;
}

/* Records one mechanism of a SASL line: its bit, and its name in the
 * list of those offered while that fits (cleaned: it goes into
 * messages). */
static void pop3_add_mech(struct pop3_session *s, const char *w, size_t wlen)
{
	enum sasl_mech mech;

	if (sasl_mech_lookup(w, wlen, &mech))
		s->caps |= pop3_mech_cap(mech);
	login_add_mech(s->mechs, sizeof(s->mechs), w, wlen);
}

/* Records what one CAPA line tells: STLS, PIPELINING, SASL mechanisms. */
static void pop3_parse_capa(struct pop3_session *s, const struct pop3_line *l)
{
	const char *p = l->data, *end = l->data + l->len, *w;
	size_t wlen;

	if (!pop3_next_word(&p, end, &w, &wlen))
		return;
	if (pop3_word_is(w, wlen, "STLS")) {
		s->caps |= POP3_CAP_STLS;
	} else if (pop3_word_is(w, wlen, "PIPELINING")) {
		s->caps |= POP3_CAP_PIPELINING;
	} else if (pop3_word_is(w, wlen, "SASL")) {
		while (pop3_next_word(&p, end, &w, &wlen))
			pop3_add_mech(s, w, wlen);
	}
}

/*
 * Asks for the capabilities, replacing what was known. An -ERR (a server
 * older than RFC 2449) is not an error: the server then has none.
 */
static int pop3_capa(struct pop3_session *s)
{
	struct pop3_line l;
	unsigned n = 0;
	int rc;

	s->caps = 0;
	s->mechs[0] = '\0';
	if (pop3_command(s, "CAPA", NULL) < 0) {
		if (s->err.kind != POP3_ERR_ERR)
			return -1;
		pop3_clear_err(s);
		return 0;
	}
	while ((rc = pop3_read_item(s, &l)) > 0) {
		if (++n > POP3_MAX_CAPA_LINES) {
			pop3_set_err(s, POP3_ERR_PROTO, EPROTO,
				     "%s sent more than %d CAPA lines",
				     s->cfg->host, POP3_MAX_CAPA_LINES);
			return -1;
		}
		pop3_trace_line(s, &l);
		pop3_parse_capa(s, &l);
	}
	return rc;
}

/* Reads the greeting, which must be +OK (an APOP timestamp in it is
 * ignored: APOP is never used). */
static int pop3_greeting(struct pop3_session *s)
{
	const struct pop3_config *c = s->cfg;
	struct pop3_line l;
	char text[128];

	if (pop3_read_line(s, &l) < 0) {
		size_t len = strlen(s->err.text);

		/* The server may be waiting for a TLS handshake. */
		if (c->tls != POP3_TLS_IMPLICIT && s->err.errnum == ETIMEDOUT)
			snprintf(s->err.text + len, sizeof(s->err.text) - len,
				 " (no greeting: if %s is a TLS port, use "
				 "pop3s://)",
				 c->port);
		return -1;
	}
	pop3_trace_line(s, &l);
	if (pop3_is_status(&l, "+OK"))
		return 0;
	if (l.len > 4 && !memcmp(l.data, "* OK", 4)) {
		pop3_set_err(s, POP3_ERR_PROTO, EPROTO,
			     "%.60s:%.10s speaks IMAP, not POP3: use imaps:// "
			     "or imap://, or the POP3 port",
			     c->host, c->port);
		return -1;
	}
	if (pop3_is_status(&l, "-ERR")) {
		pop3_err_text(&l, text, sizeof(text));
		pop3_set_err(s, POP3_ERR_ERR, 0,
			     "%.60s:%.10s refused the session: %s", c->host,
			     c->port, text[0] ? text : "-ERR");
	} else {
		login_clean_text(text, sizeof(text), l.data, l.len);
		pop3_set_err(s, POP3_ERR_PROTO, EPROTO,
			     "%.60s:%.10s did not greet as a POP3 server: "
			     "\"%.60s\"",
			     c->host, c->port, text);
	}
	return -1;
}

/*
 * STLS and the TLS handshake, then CAPA again: capabilities said in
 * cleartext cannot be trusted. Refuses to go on in cleartext when the
 * server does not offer STLS or refuses it.
 */
static int pop3_stls(struct pop3_session *s)
{
	const struct pop3_config *c = s->cfg;
	char msg[sizeof(((struct pop3_error *)0)->text)];
	int rc;

	if (!(s->caps & POP3_CAP_STLS)) {
		pop3_set_err(s, POP3_ERR_AUTH, EPROTO,
			     "%s:%s does not offer STLS; refusing to log in "
			     "without TLS (use pop3s://, or -o tls=none to "
			     "accept a cleartext session)",
			     c->host, c->port);
		return -1;
	}
	if (pop3_command(s, "STLS", NULL) < 0) {
		if (s->err.kind == POP3_ERR_ERR) {
			snprintf(msg, sizeof(msg), "%s", s->err.text);
			pop3_set_err(s, POP3_ERR_AUTH, EPROTO,
				     "%.60s refused STLS (%.100s); refusing to "
				     "log in without TLS",
				     c->host, msg);
		}
		return -1;
	}
	/* Bytes after the +OK came before the handshake: maybe injected. */
	if (s->rpos < s->rlen || net_buffered(s->conn)) {
		pop3_set_err(s, POP3_ERR_PROTO, EPROTO,
			     "%s sent data after STLS (possible attack)",
			     c->host);
		return -1;
	}
	rc = net_start_tls(s->conn, c->tls_ctx, c->host, msg, sizeof(msg));
	if (rc < 0) {
		pop3_set_err(s, rc == -EPROTO ? POP3_ERR_AUTH : POP3_ERR_NET,
			     -rc, "%s", msg);
		return -1;
	}
	return pop3_capa(s);
}

/* USER and PASS, the password command. Neither may hold a line break,
 * which would end the command early and let the rest be taken as
 * another command. */
static int pop3_user_pass(void *ctx, const char *user, const char *secret)
{
	struct pop3_session *s = ctx;
	struct strbuf cmd = {0};
	int rc = -1;

	if (strpbrk(user, "\r\n") || strpbrk(secret, "\r\n")) {
		pop3_set_err(s, POP3_ERR_AUTH, EINVAL,
			     "the user name or password holds a line break, "
			     "which USER/PASS cannot send");
		return -1;
	}
	strbuf_printf(&cmd, "USER %s", user);
	if (strbuf_failed(&cmd)) {
		pop3_set_err(s, POP3_ERR_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	if (pop3_command(s, strbuf_str(&cmd), NULL) < 0)
		goto out;
	strbuf_wipe(&cmd);
	strbuf_printf(&cmd, "PASS %s", secret);
	if (strbuf_failed(&cmd)) {
		pop3_set_err(s, POP3_ERR_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	rc = pop3_command(s, strbuf_str(&cmd), "PASS <hidden>");
out:
	strbuf_wipe(&cmd);
	return rc;
}

/* A line of the exchange: first "AUTH mech [ir]", then each response
 * (or "*"). */
static int pop3_login_send(void *ctx, const char *line, const char *trace,
			   enum login_line kind)
{
	if (kind != LOGIN_LINE_RESPONSE)
		pop3_clear_err(ctx);
	return pop3_send(ctx, line, trace);
}

/* Reads AUTH's next challenge ("+ text") or its final +OK or -ERR. */
static int pop3_login_challenge(void *ctx, const char **chal_r, size_t *len_r)
{
	return pop3_read_answer(ctx, chal_r, len_r);
}

/* An -ERR is the server's refusal of the login. */
static bool pop3_login_refused(void *ctx, char *text, size_t size)
{
	struct pop3_session *s = ctx;

	if (s->err.kind != POP3_ERR_ERR)
		return false;
	snprintf(text, size, "%s", s->err.text);
	return true;
}

/* Records the driver's failure; a refusal is an AUTH error. */
static void pop3_login_fail(void *ctx, enum login_err kind, int errnum,
			    const char *text)
{
	static const enum pop3_err_kind kinds[] = {
		[LOGIN_ERR_REFUSED] = POP3_ERR_AUTH,
		[LOGIN_ERR_AUTH] = POP3_ERR_AUTH,
		[LOGIN_ERR_PROTO] = POP3_ERR_PROTO,
		[LOGIN_ERR_NOMEM] = POP3_ERR_NOMEM,
	};

	pop3_set_err(ctx, kinds[kind], errnum, "%s", text);
}

/* The operations login_run() drives, in struct login_ops order. */
static const struct login_ops pop3_login_ops = {"AUTH",
						"SASL ",
						pop3_user_pass,
						pop3_login_send,
						pop3_login_challenge,
						pop3_login_refused,
						pop3_login_fail};

/* Logs in through the shared driver, the way cfg->auth asks. */
static int pop3_login(struct pop3_session *s)
{
	const struct pop3_config *cfg = s->cfg;
	const struct login_user who = {cfg->host, cfg->port, cfg->user,
				       cfg->auth, &cfg->credential};
	/* RFC 5034: the AUTH line with its initial response stays within
	 * 255 bytes; a longer response follows the server's "+". */
	struct login_offer offer = {0, s->mechs, POP3_AUTH_LINE_MAX, NULL};
	enum sasl_mech m;

	for (m = SASL_MECH_PLAIN; m <= SASL_MECH_OAUTHBEARER; m++)
		if (s->caps & pop3_mech_cap(m))
			offer.mechs |= 1u << m;
	if (login_run(&pop3_login_ops, s, &who, &offer) < 0)
		return -1;
	s->state = POP3_STATE_TRANSACTION;
	return 0;
}

/* Connects, secures and logs in (see pop3.h). */
int pop3_open(const struct pop3_config *cfg, struct pop3_session **s_r,
	      struct pop3_error *err)
{
	struct pop3_session *s;
	char msg[sizeof(((struct pop3_error *)0)->text)];
	int rc;

	*s_r = NULL;
	log_conn_new();
	s = calloc(1, sizeof(*s));
	if (!s)
		goto fail_nomem;
	s->cfg = cfg;
	s->state = POP3_STATE_AUTHORIZATION;
	s->conn = net_connect(cfg->host, cfg->port, cfg->timeout_ms, msg,
			      sizeof(msg));
	if (!s->conn) {
		pop3_set_err(s, POP3_ERR_NET, ECONNREFUSED, "%s", msg);
		goto fail_report;
	}
	if (cfg->tls == POP3_TLS_IMPLICIT) {
		rc = net_start_tls(s->conn, cfg->tls_ctx, cfg->host, msg,
				   sizeof(msg));
		if (rc < 0) {
			pop3_set_err(
				s, rc == -EPROTO ? POP3_ERR_AUTH : POP3_ERR_NET,
				-rc, "%s", msg);
			goto fail_report;
		}
	}
	if (pop3_greeting(s) < 0 || pop3_capa(s) < 0)
		goto fail_report;
	if (cfg->tls == POP3_TLS_STLS && pop3_stls(s) < 0)
		goto fail_report;
	if (pop3_login(s) < 0)
		goto fail_report;
	*s_r = s;
	return 0;

fail_report:
	*err = s->err;
	net_close(s->conn);
	free(s);
	return -1;
fail_nomem:
	memset(err, 0, sizeof(*err));
	err->kind = POP3_ERR_NOMEM;
	err->errnum = ENOMEM;
	snprintf(err->text, sizeof(err->text), "out of memory");
	return -1;
}

/* Closes the connection without QUIT, so the server deletes nothing. */
void pop3_close(struct pop3_session *s)
{
	if (!s)
		return;
	net_close(s->conn);
	free(s);
}

/*
 * QUIT, which makes the server commit the DELEs; a broken session is not
 * sent anything (its DELEs are lost, as the contract says). The session
 * is freed in every case.
 */
int pop3_quit(struct pop3_session *s, struct pop3_error *err)
{
	char text[sizeof(s->err.text)];
	int rc = -1;

	if (s->state == POP3_STATE_BROKEN) {
		pop3_set_err(s, POP3_ERR_NET, ENOTCONN,
			     "connection to %s is broken; nothing was deleted",
			     s->cfg->host);
	} else {
		rc = pop3_command(s, "QUIT", NULL);
		if (rc < 0 && s->err.kind == POP3_ERR_ERR) {
			snprintf(text, sizeof(text), "%s", s->err.text);
			pop3_set_err(s, POP3_ERR_ERR, 0,
				     "%.60s answered QUIT with -ERR (some "
				     "deletions may not be done): %.120s",
				     s->cfg->host, text);
		}
	}
	if (err)
		*err = s->err;
	pop3_close(s);
	return rc;
}

/* Whether commands may still go out on the session. */
bool pop3_usable(const struct pop3_session *s)
{
	return s->state != POP3_STATE_BROKEN;
}

/* Why the last command failed. */
const struct pop3_error *pop3_error(const struct pop3_session *s)
{
	return &s->err;
}

/* Whether the server takes pipelined commands (PIPELINING). */
bool pop3_can_pipeline(const struct pop3_session *s)
{
	return s->caps & POP3_CAP_PIPELINING;
}

/* Sends DELE num; pop3_status_read() reads the answer. */
int pop3_dele_send(struct pop3_session *s, unsigned num)
{
	char cmd[32];

	snprintf(cmd, sizeof(cmd), "DELE %u", num);
	return pop3_send(s, cmd, NULL);
}

/* Reads the status line that answers an earlier _send. */
int pop3_status_read(struct pop3_session *s)
{
	pop3_clear_err(s);
	return pop3_read_status(s);
}

/* DELE num, answer included. */
int pop3_dele(struct pop3_session *s, unsigned num)
{
	pop3_clear_err(s);
	if (pop3_dele_send(s, num) < 0)
		return -1;
	return pop3_read_status(s);
}

/*
 * Parses a decimal number of at most limit at *p, moving *p past it.
 * False when there is no digit or the value is above limit (which also
 * keeps it from overflowing: limit is far below UINT64_MAX / 10).
 */
static bool pop3_parse_u64(const char **p, const char *end, uint64_t limit,
			   uint64_t *v_r)
{
	const char *q = *p;
	uint64_t v = 0;

	if (q == end || *q < '0' || *q > '9')
		return false;
	for (; q < end && *q >= '0' && *q <= '9'; q++) {
		v = v * 10 + (uint64_t)(*q - '0');
		if (v > limit)
			return false;
	}
	*p = q;
	*v_r = v;
	return true;
}

/*
 * Parses the message number at the start of a UIDL or LIST line and the
 * spaces after it: a number from 1 to POP3_MAX_COUNT (numbers count the
 * messages of the maildrop, so none can be above the count limit).
 */
static bool pop3_parse_num(const char **p, const char *end, unsigned *num_r)
{
	uint64_t v;

	if (!pop3_parse_u64(p, end, POP3_MAX_COUNT, &v) || v == 0 ||
	    *p == end || **p != ' ')
		return false;
	while (*p < end && **p == ' ')
		(*p)++;
	*num_r = (unsigned)v;
	return true;
}

/* Records a listing line that cannot be parsed, quoting its start. */
static void pop3_bad_line(struct pop3_session *s, const char *cmd,
			  const struct pop3_line *l)
{
	char text[64];

	login_clean_text(text, sizeof(text), l->data, l->len);
	pop3_set_err(s, POP3_ERR_PROTO, EPROTO, "%s sent a bad %s line: \"%s\"",
		     s->cfg->host, cmd, text);
}

/*
 * Makes room in arr (of *cap elements of size elem) for element n,
 * doubling, within POP3_MAX_COUNT elements. Returns the array, maybe
 * moved, or NULL when out of memory (arr is then still valid).
 */
static void *pop3_grow(void *arr, size_t *cap, size_t n, size_t elem)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return arr;
	ncap = *cap ? *cap * 2 : 64;
	if (ncap > POP3_MAX_COUNT)
		ncap = POP3_MAX_COUNT;
	if (ncap <= n)
		return NULL; /* callers check the count first: not reached */
	p = realloc(arr, ncap * elem);
	if (p)
		*cap = ncap;
	return p;
}

/* Refuses one more listing line once POP3_MAX_COUNT were taken. */
static bool pop3_check_count(struct pop3_session *s, size_t n, const char *cmd)
{
	if (n < POP3_MAX_COUNT)
		return true;
	pop3_set_err(s, POP3_ERR_PROTO, EPROTO,
		     "%s lists more than %u messages in %s", s->cfg->host,
		     (unsigned)POP3_MAX_COUNT, cmd);
	return false;
}

/*
 * Reads the body of a UIDL response into a new array (*msgs_r, owned by
 * the caller, also on failure): "NUM SP UIDL" lines, each UIDL 1 to
 * POP3_MAX_UIDL characters from 0x21 to 0x7e (RFC 1939).
 */
static int pop3_read_uidl(struct pop3_session *s, struct pop3_msg **msgs_r,
			  size_t *n_r)
{
	struct pop3_line l;
	size_t cap = 0, i;
	int rc;

	while ((rc = pop3_read_item(s, &l)) > 0) {
		const char *p = l.data, *end = l.data + l.len;
		struct pop3_msg *m;
		unsigned num;
		size_t len;

		if (!pop3_check_count(s, *n_r, "UIDL"))
			return -1;
		if (!pop3_parse_num(&p, end, &num)) {
			pop3_bad_line(s, "UIDL", &l);
			return -1;
		}
		len = (size_t)(end - p);
		if (len == 0 || len > POP3_MAX_UIDL) {
			pop3_set_err(s, POP3_ERR_PROTO, EPROTO,
				     "%s sent a UIDL of %zu characters for "
				     "message %u (allowed: 1 to %d)",
				     s->cfg->host, len, num, POP3_MAX_UIDL);
			return -1;
		}
		for (i = 0; i < len; i++) {
			unsigned char c = p[i];

			if (c <= 0x20 || c >= 0x7f) {
				pop3_set_err(s, POP3_ERR_PROTO, EPROTO,
					     "%s sent a UIDL with a space or "
					     "control character for message %u",
					     s->cfg->host, num);
				return -1;
			}
		}
		m = pop3_grow(*msgs_r, &cap, *n_r, sizeof(*m));
		if (!m) {
			pop3_set_err(s, POP3_ERR_NOMEM, ENOMEM,
				     "out of memory");
			return -1;
		}
		*msgs_r = m;
		m += (*n_r)++;
		memset(m, 0, sizeof(*m));
		m->num = num;
		memcpy(m->uidl, p, len);
		m->uidl[len] = '\0';
	}
	return rc;
}

/*
 * Reads the body of a LIST response into a new array (*sizes_r, owned by
 * the caller, also on failure): "NUM SP SIZE" lines, where RFC 1939
 * allows more text after the size.
 */
static int pop3_read_sizes(struct pop3_session *s, struct pop3_size **sizes_r,
			   size_t *n_r)
{
	struct pop3_line l;
	size_t cap = 0;
	int rc;

	while ((rc = pop3_read_item(s, &l)) > 0) {
		const char *p = l.data, *end = l.data + l.len;
		struct pop3_size *sz;
		unsigned num;
		uint64_t size;

		if (!pop3_check_count(s, *n_r, "LIST"))
			return -1;
		if (!pop3_parse_num(&p, end, &num) || p == end || *p < '0' ||
		    *p > '9') {
			pop3_bad_line(s, "LIST", &l);
			return -1;
		}
		if (!pop3_parse_u64(&p, end, POP3_MAX_MESSAGE, &size)) {
			pop3_set_err(s, POP3_ERR_PROTO, EMSGSIZE,
				     "%s lists message %u bigger than the "
				     "limit of %llu bytes",
				     s->cfg->host, num,
				     (unsigned long long)POP3_MAX_MESSAGE);
			return -1;
		}
		if (p < end && *p != ' ') {
			pop3_bad_line(s, "LIST", &l);
			return -1;
		}
		sz = pop3_grow(*sizes_r, &cap, *n_r, sizeof(*sz));
		if (!sz) {
			pop3_set_err(s, POP3_ERR_NOMEM, ENOMEM,
				     "out of memory");
			return -1;
		}
		*sizes_r = sz;
		(*sizes_r)[*n_r].num = num;
		(*sizes_r)[*n_r].size = size;
		(*n_r)++;
	}
	return rc;
}

/* qsort() order of messages by number. */
static int pop3_cmp_msg(const void *a, const void *b)
{
	const struct pop3_msg *x = a, *y = b;

	return (x->num > y->num) - (x->num < y->num);
}

/* qsort() order of sizes by number. */
static int pop3_cmp_size(const void *a, const void *b)
{
	const struct pop3_size *x = a, *y = b;

	return (x->num > y->num) - (x->num < y->num);
}

/* qsort() order of pointers to messages by UIDL, then by number (so
 * that an error names duplicates in a stable order). */
static int pop3_cmp_uidl(const void *a, const void *b)
{
	const struct pop3_msg *const *x = a, *const *y = b;
	int c = strcmp((*x)->uidl, (*y)->uidl);

	return c ? c : pop3_cmp_msg(*x, *y);
}

/*
 * Checks the two listings against each other and puts the sizes into
 * msgs: both sorted by number, each number once, the same numbers in
 * both, each UIDL once.
 */
static int pop3_merge(struct pop3_session *s, struct pop3_msg *msgs, size_t n,
		      struct pop3_size *sizes, size_t n_sizes)
{
	const char *host = s->cfg->host;
	struct pop3_msg **by_uidl;
	unsigned dup;
	size_t i;

	/* An empty listing has a NULL array, which qsort() must not see. */
	if (n > 1)
		qsort(msgs, n, sizeof(*msgs), pop3_cmp_msg);
	if (n_sizes > 1)
		qsort(sizes, n_sizes, sizeof(*sizes), pop3_cmp_size);
	for (i = 1; i < n; i++) {
		dup = msgs[i].num;
		if (dup == msgs[i - 1].num)
			goto dup_num;
	}
	for (i = 1; i < n_sizes; i++) {
		dup = sizes[i].num;
		if (dup == sizes[i - 1].num)
			goto dup_num;
	}
	for (i = 0; i < n && i < n_sizes; i++)
		if (msgs[i].num != sizes[i].num)
			break;
	if (i < n || i < n_sizes) {
		pop3_set_err(s, POP3_ERR_PROTO, EPROTO,
			     "%s lists different messages in UIDL (%zu) and "
			     "LIST (%zu)",
			     host, n, n_sizes);
		return -1;
	}
	for (i = 0; i < n; i++)
		msgs[i].size = sizes[i].size;
	if (n < 2)
		return 0;
	by_uidl = malloc(n * sizeof(*by_uidl));
	if (!by_uidl) {
		pop3_set_err(s, POP3_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++)
		by_uidl[i] = &msgs[i];
	qsort(by_uidl, n, sizeof(*by_uidl), pop3_cmp_uidl);
	for (i = 1; i < n; i++)
		if (strcmp(by_uidl[i]->uidl, by_uidl[i - 1]->uidl) == 0)
			break;
	if (i < n)
		pop3_set_err(s, POP3_ERR_PROTO, EPROTO,
			     "%s gives messages %u and %u the same UIDL", host,
			     by_uidl[i - 1]->num, by_uidl[i]->num);
	free(by_uidl);
	return i < n ? -1 : 0;
dup_num:
	pop3_set_err(s, POP3_ERR_PROTO, EPROTO, "%s lists message %u twice",
		     host, dup);
	return -1;
}

/*
 * UIDL and LIST, sent together when the server allows PIPELINING. When
 * UIDL gets -ERR under pipelining, the answer to LIST is still read, so
 * that the session stays in step and usable.
 */
int pop3_list(struct pop3_session *s, struct pop3_msg **msgs_r, size_t *n_r)
{
	bool pipelined = s->caps & POP3_CAP_PIPELINING;
	struct pop3_msg *msgs = NULL;
	struct pop3_size *sizes = NULL;
	struct pop3_error uidl_err;
	size_t n = 0, n_sizes = 0;
	int rc = -1;

	*msgs_r = NULL;
	*n_r = 0;
	pop3_clear_err(s);
	if (pop3_send(s, "UIDL", NULL) < 0 ||
	    (pipelined && pop3_send(s, "LIST", NULL) < 0))
		goto out;
	if (pop3_read_status(s) < 0) {
		if (!pipelined || s->err.kind != POP3_ERR_ERR)
			goto out;
		uidl_err = s->err;
		if (pop3_read_status(s) == 0 && pop3_skip_items(s) < 0)
			goto out;
		if (pop3_usable(s))
			s->err = uidl_err;
		goto out;
	}
	if (pop3_read_uidl(s, &msgs, &n) < 0)
		goto out;
	if (s->cfg->trace)
		log_debug("S: (%zu UIDL lines)", n);
	if (pipelined ? pop3_read_status(s) < 0
		      : pop3_command(s, "LIST", NULL) < 0)
		goto out;
	if (pop3_read_sizes(s, &sizes, &n_sizes) < 0)
		goto out;
	if (s->cfg->trace)
		log_debug("S: (%zu LIST lines)", n_sizes);
	if (pop3_merge(s, msgs, n, sizes, n_sizes) < 0)
		goto out;
	*msgs_r = msgs;
	*n_r = n;
	msgs = NULL;
	rc = 0;
out:
	free(sizes);
	free(msgs);
	return rc;
}

/* State of one RETR: the run of bytes not yet handed to write(). */
struct pop3_retr_ctx {
	struct pop3_session *s;
	unsigned num;
	int (*write)(void *ctx, const char *data, size_t len);
	void *ctx;
	const char *run; /* in the session's rbuf, or NULL */
	size_t run_len;
	uint64_t delivered; /* bytes handed to write() */
};

/* Hands the pending run to write(); a refusal breaks the session, since
 * the rest of the message is left unread on the connection. */
static int pop3_retr_flush(struct pop3_retr_ctx *r)
{
	int rc;

	if (r->run_len == 0)
		return 0;
	rc = r->write(r->ctx, r->run, r->run_len);
	if (rc == 0)
		r->delivered += r->run_len;
	r->run = NULL;
	r->run_len = 0;
	if (rc != 0) {
		pop3_set_err(r->s, POP3_ERR_NET, ECANCELED,
			     "reading message %u from %s was aborted", r->num,
			     r->s->cfg->host);
		return -1;
	}
	return 0;
}

/* Sends RETR num; pop3_retr_read() reads the answer. */
int pop3_retr_send(struct pop3_session *s, unsigned num)
{
	char cmd[32];

	snprintf(cmd, sizeof(cmd), "RETR %u", num);
	return pop3_send(s, cmd, NULL);
}

/*
 * RETR: each line, its stuffed dot removed, goes on with the line end
 * it came with; "." ends the message (with CRLF, or a bare LF for
 * symmetry with bare-LF lines). Consecutive lines that lie next to each
 * other in the buffer are joined into one run for write(); the run is
 * handed over before the buffer is refilled (which moves its contents),
 * so write() sees pieces of up to 64 KiB rather than one call a line.
 */
int pop3_retr_read(struct pop3_session *s, unsigned num, uint64_t max,
		   int (*write)(void *ctx, const char *data, size_t len),
		   void *ctx, uint64_t *size_r)
{
	struct pop3_retr_ctx r = {s, num, write, ctx, NULL, 0, 0};
	uint64_t total = 0; /* bytes delivered and pending */
	struct pop3_line l;
	int rc = -1;

	pop3_clear_err(s);
	if (pop3_read_status(s) < 0)
		goto out;
	for (;;) {
		int found = pop3_scan_line(s, POP3_DATA_MAX, &l);
		const char *piece;
		size_t len;

		if (found < 0) {
			pop3_set_err(s, POP3_ERR_PROTO, EMSGSIZE,
				     "message %u from %s has a line longer "
				     "than %d bytes",
				     num, s->cfg->host, POP3_DATA_MAX);
			goto out;
		}
		if (found == 0) {
			if (pop3_retr_flush(&r) < 0 || pop3_fill(s) < 0)
				goto out;
			continue;
		}
		if (l.len == 1 && l.data[0] == '.')
			break;
		piece = l.data;
		len = l.len + l.eol;
		if (l.len > 0 && l.data[0] == '.') {
			piece++;
			len--;
		}
		if (len > max - total) {
			pop3_set_err(s, POP3_ERR_PROTO, EMSGSIZE,
				     "message %u from %s is longer than %llu "
				     "bytes",
				     num, s->cfg->host,
				     (unsigned long long)max);
			goto out;
		}
		total += len;
		if (r.run && r.run + r.run_len == piece) {
			r.run_len += len;
		} else {
			if (pop3_retr_flush(&r) < 0)
				goto out;
			r.run = piece;
			r.run_len = len;
		}
	}
	if (pop3_retr_flush(&r) < 0)
		goto out;
	if (s->cfg->trace)
		log_debug("S: (message %u, %llu bytes)", num,
			  (unsigned long long)r.delivered);
	rc = 0;
out:
	if (size_r)
		*size_r = r.delivered;
	return rc;
}
