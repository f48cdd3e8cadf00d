// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * imap: one client session; see imap.h for the contract.
 *
 * Commands are written whole, then responses are read and fed to the
 * parser until the command's tagged completion. Untagged responses go
 * first to the command's handler and, unless it took them, to
 * imap_untagged(), which keeps the capability and mailbox state.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "imap.h"
#include "imap_parse.h"
#include "log.h"
#include "net.h"
#include "sasl.h"
#include "search.h"
#include "strbuf.h"

#define IMAP_READ_BUF (64 * 1024)
/* Bound of the text of one response outside literals: LIST, FETCH and
 * SEARCH lines of a big mailbox stay well below it. */
#define IMAP_MAX_LINE (4 * 1024 * 1024)
#define IMAP_LOGOUT_TIMEOUT_MS 2000
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
	enum imap_state state;
	unsigned caps;
	/* The SASL mechanisms of the last capability list, space-separated,
	 * for an error message naming what the server offers. */
	char mechs[128];
	uint64_t appendlimit;
	unsigned next_tag;
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
};

/*
 * A handler sees each untagged response of a command first; it returns
 * true when it consumed the response.
 */
typedef bool (*imap_handler)(void *ctx, struct imap_session *s,
			     const struct imap_resp *r);

/*
 * A continuation handler answers a "+" that comes during a command (a
 * SASL challenge); it returns 0, or -1 with the session's error set.
 */
typedef int (*imap_cont_handler)(void *ctx, struct imap_session *s,
				 const struct imap_resp *r);

/* One piece of a command: text as is, or a string sent as a literal. */
struct imap_part {
	const char *data;
	size_t len;
	bool literal;
};

static void imap_set_err(struct imap_session *s, enum imap_err_kind kind,
			 int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Records an error; connection and protocol errors also break the
 * session, since its stream can no longer be trusted to be in step. */
static void imap_set_err(struct imap_session *s, enum imap_err_kind kind,
			 int errnum, const char *fmt, ...)
{
	va_list ap;

	s->err.kind = kind;
	s->err.errnum = errnum;
	s->err.code[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(s->err.text, sizeof(s->err.text), fmt, ap);
	va_end(ap);
	if (kind == IMAP_ERR_NET || kind == IMAP_ERR_PROTO)
		s->state = IMAP_STATE_BROKEN;
}

/* Copies a server text into buf keeping only printable ASCII, so that a
 * hostile server cannot put escape sequences on the user's terminal. */
static void imap_clean_text(char *buf, size_t size, const char *text)
{
	size_t i = 0;

	for (; text && *text && i + 1 < size; text++) {
		unsigned char c = *text;

		buf[i++] = (c >= 0x20 && c < 0x7f) ? c : '?';
	}
	buf[i] = '\0';
}

/* Records a NO or BAD completion with its response code and text. */
static void imap_set_status_err(struct imap_session *s,
				const struct imap_resp *r)
{
	s->err.kind = r->status == IMAP_STATUS_NO ? IMAP_ERR_NO : IMAP_ERR_BAD;
	s->err.errnum = 0;
	s->err.code[0] = '\0';
	if (r->n_code > 0 && r->code[0].type == IMAP_TOK_ATOM)
		imap_clean_text(s->err.code, sizeof(s->err.code),
				r->code[0].str);
	imap_clean_text(s->err.text, sizeof(s->err.text), r->text);
}

/* Renders a token for the trace; literals are shown by size only. */
static void imap_trace_tok(struct strbuf *b, const struct imap_tok *t)
{
	size_t i;

	switch (t->type) {
	case IMAP_TOK_ATOM:
		strbuf_append(b, t->str, t->len);
		break;
	case IMAP_TOK_NIL:
		strbuf_puts(b, "NIL");
		break;
	case IMAP_TOK_STRING:
		if (t->len > 200 || memchr(t->str, '\n', t->len) ||
		    memchr(t->str, '\0', t->len))
			strbuf_printf(b, "{%zu bytes}", t->len);
		else
			strbuf_printf(b, "\"%.*s\"", (int)t->len, t->str);
		break;
	case IMAP_TOK_LIST:
		strbuf_puts(b, "(");
		for (i = 0; i < t->n_items; i++) {
			const struct imap_tok *k = i ? &t->items[i - 1] : NULL;

			if (i)
				strbuf_puts(b, " ");
			/* Message content never shows, however short. */
			if (k && t->items[i].type == IMAP_TOK_STRING &&
			    k->type == IMAP_TOK_ATOM &&
			    (!strncasecmp(k->str, "BODY", 4) ||
			     !strncasecmp(k->str, "BINARY", 6) ||
			     !strncasecmp(k->str, "RFC822", 6)))
				strbuf_printf(b, "{%zu bytes}",
					      t->items[i].len);
			else
				imap_trace_tok(b, &t->items[i]);
		}
		strbuf_puts(b, ")");
		break;
	}
}

/* Writes one parsed server response to the debug trace. */
static void imap_trace_resp(const struct imap_session *s,
			    const struct imap_resp *r)
{
	static const char *const status[] = {"",    "OK",  "NO",
					     "BAD", "BYE", "PREAUTH"};
	struct strbuf b = {0};
	size_t i;

	if (!s->cfg->trace)
		return;
	strbuf_puts(&b, r->kind == IMAP_RESP_CONTINUE	? "+"
			: r->kind == IMAP_RESP_UNTAGGED ? "*"
							: r->tag);
	if (r->status != IMAP_STATUS_NONE) {
		strbuf_printf(&b, " %s", status[r->status]);
		if (r->n_code) {
			strbuf_puts(&b, " [");
			for (i = 0; i < r->n_code; i++) {
				if (i)
					strbuf_puts(&b, " ");
				imap_trace_tok(&b, &r->code[i]);
			}
			strbuf_puts(&b, "]");
		}
	}
	for (i = 0; i < r->n_toks; i++) {
		strbuf_puts(&b, " ");
		imap_trace_tok(&b, &r->toks[i]);
	}
	if (r->text && *r->text)
		strbuf_printf(&b, " %s", r->text);
	if (b.len > 400)
		b.len = 400;
	log_debug("S: %.*s", (int)b.len, strbuf_str(&b));
	strbuf_free(&b);
}

/* Reads the next complete response from the server into *r_r. */
static int imap_read_resp(struct imap_session *s, const struct imap_resp **r_r)
{
	for (;;) {
		if (s->rpos < s->rlen) {
			size_t used = 0;
			int rc =
				imap_parser_feed(s->parser, s->rbuf + s->rpos,
						 s->rlen - s->rpos, &used, r_r);

			s->rpos += used;
			if (rc < 0) {
				imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
					     "bad response from %s: %s",
					     s->cfg->host,
					     imap_parser_error(s->parser));
				return -1;
			}
			if (rc == 1) {
				imap_trace_resp(s, *r_r);
				return 0;
			}
		}
		ssize_t n = net_read(s->conn, s->rbuf, IMAP_READ_BUF);

		if (n <= 0) {
			int e = n == 0 ? ECONNRESET : (int)-n;

			if (e == ETIMEDOUT)
				imap_set_err(s, IMAP_ERR_NET, e,
					     "%s did not answer within %d s",
					     s->cfg->host,
					     s->cfg->timeout_ms / 1000);
			else
				imap_set_err(s, IMAP_ERR_NET, e,
					     "connection to %s lost%s: %s",
					     s->cfg->host,
					     s->bye ? " (server said BYE)" : "",
					     strerror(e));
			return -1;
		}
		s->rpos = 0;
		s->rlen = (size_t)n;
	}
}

/* Adds a mechanism to the list of those offered, while it fits; the
 * name is cleaned, since it only goes into messages. */
static void imap_add_mech(struct imap_session *s, const char *name)
{
	size_t len = strlen(s->mechs), n = strlen(name);

	if (n == 0 || len + n + 2 > sizeof(s->mechs))
		return;
	if (len)
		s->mechs[len++] = ' ';
	imap_clean_text(s->mechs + len, sizeof(s->mechs) - len, name);
}

/* Records the capabilities named by a list of atoms. */
static void imap_parse_caps(struct imap_session *s, const struct imap_tok *t,
			    size_t n)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {
		{"IMAP4rev1", IMAP_CAP_IMAP4REV1},
		{"IMAP4rev2", IMAP_CAP_IMAP4REV1},
		{"STARTTLS", IMAP_CAP_STARTTLS},
		{"LOGINDISABLED", IMAP_CAP_LOGINDISABLED},
		{"AUTH=PLAIN", IMAP_CAP_AUTH_PLAIN},
		{"AUTH=LOGIN", IMAP_CAP_AUTH_LOGIN},
		{"AUTH=XOAUTH2", IMAP_CAP_AUTH_XOAUTH2},
		{"AUTH=OAUTHBEARER", IMAP_CAP_AUTH_OAUTHBEARER},
		{"SASL-IR", IMAP_CAP_SASL_IR},
		{"LITERAL+", IMAP_CAP_LITERALPLUS},
		{"LITERAL-", IMAP_CAP_LITERALMINUS},
		{"UIDPLUS", IMAP_CAP_UIDPLUS},
		{"MOVE", IMAP_CAP_MOVE},
		{"CONDSTORE", IMAP_CAP_CONDSTORE},
		{"QRESYNC", IMAP_CAP_QRESYNC},
		{"ESEARCH", IMAP_CAP_ESEARCH},
		{"SPECIAL-USE", IMAP_CAP_SPECIAL_USE},
		{"LIST-EXTENDED", IMAP_CAP_LIST_EXTENDED},
		{"IDLE", IMAP_CAP_IDLE},
		{"UNSELECT", IMAP_CAP_UNSELECT},
		{"APPENDLIMIT", IMAP_CAP_APPENDLIMIT},
		{"QUOTA", IMAP_CAP_QUOTA},
		{"NOTIFY", IMAP_CAP_NOTIFY},
		{"LIST-STATUS", IMAP_CAP_LIST_STATUS},
		{"BINARY", IMAP_CAP_BINARY},
		{"COMPRESS=DEFLATE", IMAP_CAP_COMPRESS_DEFLATE},
		{"OBJECTID", IMAP_CAP_OBJECTID},
		{"X-GM-EXT-1", IMAP_CAP_X_GM_EXT_1},
	};
	size_t i, j;

	s->caps = 0;
	s->appendlimit = 0;
	s->mechs[0] = '\0';
	for (i = 0; i < n; i++) {
		if (t[i].type != IMAP_TOK_ATOM)
			continue;
		for (j = 0; j < sizeof(names) / sizeof(names[0]); j++)
			if (imap_tok_is(&t[i], names[j].name))
				s->caps |= names[j].bit;
		if (strncasecmp(t[i].str, "AUTH=", 5) == 0)
			imap_add_mech(s, t[i].str + 5);
		if (strncasecmp(t[i].str, "APPENDLIMIT=", 12) == 0) {
			s->caps |= IMAP_CAP_APPENDLIMIT;
			s->appendlimit = strtoull(t[i].str + 12, NULL, 10);
		}
	}
}

/* True for an ATOM-CHAR of RFC 3501/9051: a CHAR that is not one of the
 * atom-specials ( ) { SP CTL % * " \ ]. */
static bool imap_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("(){%*\"\\]", c);
}

/*
 * True for a flag as the grammar has it in FETCH FLAGS, the FLAGS
 * response and (perm) PERMANENTFLAGS: an atom, or "\" and an atom
 * (flag-keyword, flag-extension, the system flags), or "\*" in
 * PERMANENTFLAGS. Anything else from a server (a string, "b]", an atom
 * with a space from a parser that kept one) is no flag: it is left out
 * rather than shown as one, since it could never be written back.
 */
static bool imap_flag_token(const struct imap_tok *f, bool perm)
{
	const unsigned char *p = (const unsigned char *)f->str;
	size_t i = 0;

	if (f->type != IMAP_TOK_ATOM)
		return false;
	if (f->len > 0 && p[0] == '\\') {
		i = 1;
		if (perm && f->len == 2 && p[1] == '*')
			return true;
	}
	if (i == f->len)
		return false;
	for (; i < f->len; i++)
		if (!imap_atom_char(p[i]))
			return false;
	return true;
}

/* Takes what a status response's code tells about the session. */
static void imap_status_code(struct imap_session *s, const struct imap_resp *r)
{
	const struct imap_tok *c = r->code;
	uint64_t v;

	if (r->n_code == 0)
		return;
	if (imap_tok_is(&c[0], "CAPABILITY"))
		imap_parse_caps(s, c + 1, r->n_code - 1);
	else if (r->n_code >= 2 && imap_tok_is(&c[0], "UIDVALIDITY"))
		imap_tok_u32(&c[1], &s->mb.uidvalidity);
	else if (r->n_code >= 2 && imap_tok_is(&c[0], "UIDNEXT"))
		imap_tok_u32(&c[1], &s->mb.uidnext);
	else if (r->n_code >= 2 && imap_tok_is(&c[0], "HIGHESTMODSEQ") &&
		 imap_tok_u64(&c[1], &v))
		s->mb.highestmodseq = v;
	else if (r->n_code == 4 && imap_tok_is(&c[0], "COPYUID")) {
		/* Only single messages are copied, so the sets are UIDs. */
		if (!imap_tok_u32(&c[1], &s->new_uidvalidity) ||
		    !imap_tok_u32(&c[2], &s->copied_uid) ||
		    !imap_tok_u32(&c[3], &s->new_uid))
			s->new_uidvalidity = s->new_uid = 0;
	} else if (r->n_code == 3 && imap_tok_is(&c[0], "APPENDUID")) {
		if (!imap_tok_u32(&c[1], &s->new_uidvalidity) ||
		    !imap_tok_u32(&c[2], &s->new_uid))
			s->new_uidvalidity = s->new_uid = 0;
	} else if (r->n_code == 2 && imap_tok_is(&c[0], "PERMANENTFLAGS") &&
		   c[1].type == IMAP_TOK_LIST) {
		size_t i;

		strbuf_reset(&s->permflags);
		for (i = 0; i < c[1].n_items; i++) {
			if (!imap_flag_token(&c[1].items[i], true))
				continue;
			strbuf_puts(&s->permflags, " ");
			strbuf_append(&s->permflags, c[1].items[i].str,
				      c[1].items[i].len);
		}
		strbuf_puts(&s->permflags, " ");
		s->have_permflags = !strbuf_failed(&s->permflags);
	} else if (imap_tok_is(&c[0], "READ-ONLY"))
		s->mb.readonly = true;
	else if (imap_tok_is(&c[0], "READ-WRITE"))
		s->mb.readonly = false;
}

static void imap_select_forget(struct imap_session *s, bool readonly);
static bool imap_uid_count(const struct imap_tok *set, uint32_t *n_r);

/* Default handling of an untagged response no command handler took. */
static void imap_untagged(struct imap_session *s, const struct imap_resp *r)
{
	uint32_t n;

	if (r->status != IMAP_STATUS_NONE) {
		if (r->status == IMAP_STATUS_BYE)
			s->bye = true;
		imap_status_code(s, r);
		return;
	}
	if (r->n_toks >= 1 && imap_tok_is(&r->toks[0], "CAPABILITY")) {
		imap_parse_caps(s, r->toks + 1, r->n_toks - 1);
		return;
	}
	if (r->n_toks >= 2 && imap_tok_u32(&r->toks[0], &n)) {
		if (imap_tok_is(&r->toks[1], "EXISTS")) {
			if (n != s->mb.exists)
				s->changed = true;
			s->mb.exists = n;
		} else if (imap_tok_is(&r->toks[1], "EXPUNGE")) {
			s->changed = true;
			if (s->mb.exists)
				s->mb.exists--;
		} else if (imap_tok_is(&r->toks[1], "FETCH")) {
			s->changed = true; /* a flag changed under us */
		}
		return;
	}
	if (r->n_toks >= 1 && imap_tok_is(&r->toks[0], "VANISHED")) {
		/* A live VANISHED (QRESYNC's EXPUNGE) lowers EXISTS;
		 * VANISHED (EARLIER) reports the past. */
		s->changed = true;
		if (r->n_toks == 2 && imap_uid_count(&r->toks[1], &n))
			s->mb.exists = n >= s->mb.exists ? 0 : s->mb.exists - n;
	}
}

static void imap_uid_count_cb(void *ctx, uint32_t lo, uint32_t hi)
{
	uint64_t *n = ctx;

	*n += (uint64_t)hi - lo + 1;
}

/* How many UIDs an atom such as "3:5,9" names; false if unreadable. */
static bool imap_uid_count(const struct imap_tok *set, uint32_t *n_r)
{
	uint64_t n = 0;

	if (set->type != IMAP_TOK_ATOM ||
	    !imap_uid_set_parse(set->str, set->len, IMAP_MAX_UID_RANGES,
				imap_uid_count_cb, &n))
		return false;
	*n_r = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	return true;
}

/* Sends bytes, turning a failure into a session error. */
static int imap_write(struct imap_session *s, const void *data, size_t len)
{
	int rc = net_write(s->conn, data, len);

	if (rc < 0) {
		imap_set_err(s, IMAP_ERR_NET, -rc, "cannot write to %s: %s",
			     s->cfg->host, strerror(-rc));
		return -1;
	}
	return 0;
}

/*
 * Waits for the continuation request "+" that lets a synchronising
 * literal (or a SASL step) go out. A tagged completion instead means the
 * server refused the command: that is returned as its error.
 */
static int imap_wait_continue(struct imap_session *s, const char *tag,
			      imap_handler h, void *ctx)
{
	const struct imap_resp *r;

	for (;;) {
		if (imap_read_resp(s, &r) < 0)
			return -1;
		if (r->kind == IMAP_RESP_CONTINUE)
			return 0;
		if (r->kind == IMAP_RESP_UNTAGGED) {
			if (!h || !h(ctx, s, r))
				imap_untagged(s, r);
			continue;
		}
		if (strcmp(r->tag, tag) != 0) {
			imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
				     "%s answered an unknown tag",
				     s->cfg->host);
			return -1;
		}
		s->done = r;
		if (r->status == IMAP_STATUS_OK) {
			imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
				     "%s completed a command before its data",
				     s->cfg->host);
			return -1;
		}
		imap_set_status_err(s, r);
		return -1;
	}
}

/*
 * Reads responses until the tagged completion of tag. A continuation
 * request goes to cont when there is one, and is a protocol error
 * otherwise.
 */
static int imap_wait_cont(struct imap_session *s, const char *tag,
			  imap_handler h, imap_cont_handler cont, void *ctx)
{
	const struct imap_resp *r;

	for (;;) {
		if (imap_read_resp(s, &r) < 0)
			return -1;
		if (r->kind == IMAP_RESP_UNTAGGED) {
			if (!h || !h(ctx, s, r))
				imap_untagged(s, r);
			continue;
		}
		if (r->kind == IMAP_RESP_CONTINUE && cont) {
			if (cont(ctx, s, r) < 0)
				return -1;
			continue;
		}
		if (r->kind == IMAP_RESP_CONTINUE) {
			imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
				     "%s sent an unexpected continuation",
				     s->cfg->host);
			return -1;
		}
		if (strcmp(r->tag, tag) != 0) {
			imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
				     "%s answered an unknown tag",
				     s->cfg->host);
			return -1;
		}
		s->done = r;
		imap_status_code(s, r);
		if (r->status == IMAP_STATUS_OK)
			return 0;
		if (r->status == IMAP_STATUS_NO ||
		    r->status == IMAP_STATUS_BAD) {
			imap_set_status_err(s, r);
			return -1;
		}
		imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
			     "%s completed a command without OK, NO or BAD",
			     s->cfg->host);
		return -1;
	}
}

/* Reads responses until the tagged completion of tag. */
static int imap_wait(struct imap_session *s, const char *tag, imap_handler h,
		     void *ctx)
{
	return imap_wait_cont(s, tag, h, NULL, ctx);
}

/*
 * Runs one command made of parts: text parts go as they are, literal
 * parts as {N+} (LITERAL+) or as {N} after the server's "+". trace is
 * what the debug trace shows instead of the text when it holds secrets.
 */
static int imap_run_parts(struct imap_session *s, const struct imap_part *p,
			  size_t n, const char *trace, imap_handler h,
			  void *ctx)
{
	struct strbuf out = {0};
	char tag[16];
	size_t i;

	if (s->state == IMAP_STATE_BROKEN) {
		imap_set_err(s, IMAP_ERR_NET, ENOTCONN,
			     "connection to %s is broken", s->cfg->host);
		return -1;
	}
	snprintf(tag, sizeof(tag), "M%u", ++s->next_tag);
	strbuf_printf(&out, "%s ", tag);
	s->err.kind = IMAP_ERR_NONE;
	s->new_uid = s->new_uidvalidity = s->copied_uid = 0;
	s->done = NULL;
	for (i = 0; i < n; i++) {
		if (!p[i].literal) {
			strbuf_append(&out, p[i].data, p[i].len);
			continue;
		}
		bool plus =
			(s->caps & IMAP_CAP_LITERALPLUS) ||
			((s->caps & IMAP_CAP_LITERALMINUS) && p[i].len <= 4096);

		strbuf_printf(&out, "{%zu%s}\r\n", p[i].len, plus ? "+" : "");
		if (strbuf_failed(&out))
			goto nomem;
		if (!plus) {
			if (imap_write(s, out.data, out.len) < 0 ||
			    imap_wait_continue(s, tag, h, ctx) < 0)
				goto out;
			strbuf_reset(&out);
		}
		strbuf_append(&out, p[i].data, p[i].len);
	}
	strbuf_puts(&out, "\r\n");
	if (strbuf_failed(&out))
		goto nomem;
	if (s->cfg->trace) {
		if (trace)
			log_debug("C: %s %s", tag, trace);
		else if (n == 1)
			log_debug("C: %.*s", (int)(out.len - 2), out.data);
	}
	if (imap_write(s, out.data, out.len) < 0)
		goto out;
	strbuf_wipe(&out);
	return imap_wait(s, tag, h, ctx);
nomem:
	imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
out:
	strbuf_wipe(&out);
	return -1;
}

/*
 * A command: its text, the handler of its untagged responses and of a
 * continuation request, and, once finished, its result. Commands are
 * sent in one write (imap_cmd_send()) and finished in order
 * (imap_cmd_finish()), so that a pipeline of them costs one round trip.
 * Commands with literals go through imap_run_parts().
 */
struct imap_cmd {
	const char *text; /* borrowed: without tag and CRLF */
	imap_handler h;
	imap_cont_handler cont;
	void *ctx;
	char tag[16];
	int rc; /* once finished: 0, or -1 with err */
	struct imap_error err;
};

/* Tags the n commands and writes them in one go. On failure every
 * command is finished with the session's error. */
static int imap_cmd_send(struct imap_session *s, struct imap_cmd *c, size_t n)
{
	struct strbuf out = {0};
	size_t i;
	int rc = -1;

	s->err.kind = IMAP_ERR_NONE;
	s->new_uid = s->new_uidvalidity = s->copied_uid = 0;
	s->done = NULL;
	if (s->state == IMAP_STATE_BROKEN) {
		imap_set_err(s, IMAP_ERR_NET, ENOTCONN,
			     "connection to %s is broken", s->cfg->host);
		goto out;
	}
	for (i = 0; i < n; i++) {
		snprintf(c[i].tag, sizeof(c[i].tag), "M%u", ++s->next_tag);
		strbuf_printf(&out, "%s %s\r\n", c[i].tag, c[i].text);
		if (s->cfg->trace)
			log_debug("C: %s %s", c[i].tag, c[i].text);
	}
	if (strbuf_failed(&out)) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	rc = imap_write(s, out.data, out.len);
out:
	strbuf_free(&out);
	for (i = 0; rc < 0 && i < n; i++) {
		c[i].rc = -1;
		c[i].err = s->err;
	}
	return rc;
}

/*
 * Reads the answers of n sent commands, in order, each through its own
 * handlers. Every command is finished, even after one failed, so that
 * the session stays in step; once the connection is lost the rest fail
 * with that error. Returns 0 when all succeeded; otherwise -1, with the
 * session's error the first failure's.
 */
static int imap_cmd_finish(struct imap_session *s, struct imap_cmd *c, size_t n)
{
	const struct imap_error *first = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s->state == IMAP_STATE_BROKEN) {
			c[i].rc = -1;
			c[i].err = s->err;
		} else {
			s->err.kind = IMAP_ERR_NONE;
			c[i].rc = imap_wait_cont(s, c[i].tag, c[i].h, c[i].cont,
						 c[i].ctx);
			c[i].err = s->err;
		}
		if (c[i].rc < 0 && !first)
			first = &c[i].err;
	}
	if (first)
		s->err = *first;
	return first ? -1 : 0;
}

/* Sends n commands together and finishes them. */
static int imap_cmd_run(struct imap_session *s, struct imap_cmd *c, size_t n)
{
	if (imap_cmd_send(s, c, n) < 0)
		return -1;
	return imap_cmd_finish(s, c, n);
}

/* Runs a one-line command. */
static int imap_run(struct imap_session *s, const char *cmd, imap_handler h,
		    void *ctx)
{
	struct imap_cmd c = {.text = cmd, .h = h, .ctx = ctx};

	return imap_cmd_run(s, &c, 1);
}

/* Appends s as an IMAP quoted string; false when it cannot be one (it
 * holds CR, LF, NUL or 8-bit bytes) and must go as a literal. */
static bool imap_quote(struct strbuf *b, const char *str)
{
	const char *p;

	for (p = str; *p; p++)
		if (*p == '\r' || *p == '\n' || (unsigned char)*p >= 0x80)
			return false;
	strbuf_puts(b, "\"");
	for (p = str; *p; p++) {
		if (*p == '"' || *p == '\\')
			strbuf_puts(b, "\\");
		strbuf_append(b, p, 1);
	}
	strbuf_puts(b, "\"");
	return true;
}

/*
 * Appends a mailbox name as an IMAP astring: quoted when it can be, else
 * (8-bit bytes, CR, LF: names that are not modified UTF-7) as a
 * non-synchronizing literal, which needs no round trip, so that such a
 * name still fits in one command string. False when the server takes
 * no such literal (no LITERAL+, or LITERAL- and over 4096 bytes).
 */
static bool imap_mailbox_arg(const struct imap_session *s, struct strbuf *b,
			     const char *name)
{
	size_t len = strlen(name);

	if (imap_quote(b, name))
		return true;
	if (!(s->caps & IMAP_CAP_LITERALPLUS) &&
	    !((s->caps & IMAP_CAP_LITERALMINUS) && len <= 4096))
		return false;
	strbuf_printf(b, "{%zu+}\r\n", len);
	strbuf_append(b, name, len);
	return true;
}

/* A greeting that failed: from a POP3 server, or (never came over a
 * cleartext connection) from one waiting for a TLS handshake. Says
 * what to try. */
static void imap_greeting_hint(struct imap_session *s)
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
static int imap_greeting(struct imap_session *s)
{
	const struct imap_resp *r;

	if (imap_read_resp(s, &r) < 0) {
		imap_greeting_hint(s);
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
	s->state = r->status == IMAP_STATUS_PREAUTH ? IMAP_STATE_AUTH
						    : IMAP_STATE_NOT_AUTH;
	return 0;
}

/* Runs STARTTLS and the TLS handshake; capabilities are then forgotten,
 * since what was said in cleartext cannot be trusted. */
static int imap_starttls(struct imap_session *s)
{
	char err[256];
	int rc;

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
	rc = net_start_tls(s->conn, s->cfg->tls_ctx, s->cfg->host, err,
			   sizeof(err));
	if (rc < 0) {
		/* A certificate refusal is final; a reset or a timeout
		 * in the handshake is the network's (EIO, not EACCES). */
		imap_set_err(s, rc == -EPROTO ? IMAP_ERR_AUTH : IMAP_ERR_NET,
			     -rc, "%s", err);
		s->state = IMAP_STATE_BROKEN;
		return -1;
	}
	s->caps = 0;
	return 0;
}

/* State of one AUTHENTICATE exchange, for its continuation handler. */
struct imap_sasl {
	struct sasl_client client;
	bool cancelled; /* "*" went out: the client gave up */
};

/*
 * Turns a refused login into a clear AUTH error: the user, the host,
 * the server's text and, after AUTHENTICATE, why the client cancelled
 * or the status of the server's OAuth2 error. sasl is NULL after LOGIN.
 */
static void imap_login_failed(struct imap_session *s,
			      const struct imap_sasl *sasl)
{
	struct strbuf b = {0};

	if (s->err.kind != IMAP_ERR_NO && s->err.kind != IMAP_ERR_BAD)
		return;
	strbuf_printf(&b, "login as %.40s on %.60s failed", s->cfg->user,
		      s->cfg->host);
	if (sasl && sasl->cancelled)
		strbuf_printf(&b, " (%s)", sasl->client.error);
	else if (sasl && sasl->client.server_status[0])
		strbuf_printf(&b, " (%s error status: %s)",
			      sasl_mech_name(sasl->client.mech),
			      sasl->client.server_status);
	/* The server's text comes last: if the line is cut, that is. */
	strbuf_printf(&b, ": %s", s->err.text);
	s->err.kind = IMAP_ERR_AUTH;
	snprintf(s->err.text, sizeof(s->err.text), "%s",
		 strbuf_failed(&b) ? "login failed" : strbuf_str(&b));
	strbuf_free(&b);
}

/*
 * Answers a challenge during AUTHENTICATE with the mechanism's response,
 * or with "*" (cancel) when the mechanism gives up; the server then
 * fails the command. The trace never shows credentials.
 */
static int imap_sasl_cont(void *ctx, struct imap_session *s,
			  const struct imap_resp *r)
{
	struct imap_sasl *x = ctx;
	struct strbuf out = {0};
	const char *text = r->text ? r->text : "";
	int rc;

	if (x->cancelled) {
		imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
			     "%s went on with AUTHENTICATE after it was "
			     "cancelled",
			     s->cfg->host);
		return -1;
	}
	if (sasl_client_step(&x->client, text, strlen(text), &out) < 0) {
		x->cancelled = true;
		strbuf_reset(&out);
		strbuf_puts(&out, "*");
	}
	if (s->cfg->trace)
		log_debug("C: %s", x->client.secret_out ? "<credentials hidden>"
				   : out.len		? strbuf_str(&out)
							: "(empty response)");
	strbuf_puts(&out, "\r\n");
	if (strbuf_failed(&out)) {
		strbuf_wipe(&out);
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	rc = imap_write(s, out.data, out.len);
	strbuf_wipe(&out);
	return rc;
}

/*
 * AUTHENTICATE with a SASL mechanism: the initial response goes with the
 * command under SASL-IR, else after the server's first "+"; every
 * challenge is answered by imap_sasl_cont().
 */
static int imap_auth_sasl(struct imap_session *s, struct imap_sasl *x,
			  enum sasl_mech mech, const char *secret)
{
	const struct imap_config *c = s->cfg;
	const char *name = sasl_mech_name(mech);
	struct strbuf ir = {0}, cmd = {0};
	char tag[16];
	int rc = -1;

	sasl_client_init(&x->client, mech, c->user, secret, c->host, c->port);
	x->cancelled = false;
	if (sasl_client_start(&x->client,
			      (s->caps & IMAP_CAP_SASL_IR) ? SIZE_MAX : 0,
			      &ir) < 0) {
		imap_set_err(s, IMAP_ERR_AUTH, EINVAL, "%s", x->client.error);
		goto out;
	}
	snprintf(tag, sizeof(tag), "M%u", ++s->next_tag);
	strbuf_printf(&cmd, "%s AUTHENTICATE %s", tag, name);
	if (ir.len) {
		strbuf_puts(&cmd, " ");
		strbuf_append(&cmd, ir.data, ir.len);
	}
	strbuf_puts(&cmd, "\r\n");
	if (strbuf_failed(&cmd) || strbuf_failed(&ir)) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	if (c->trace)
		log_debug("C: %s AUTHENTICATE %s%s", tag, name,
			  ir.len ? " <credentials hidden>" : "");
	s->err.kind = IMAP_ERR_NONE;
	s->done = NULL;
	if (imap_write(s, cmd.data, cmd.len) < 0)
		goto out;
	strbuf_wipe(&cmd);
	rc = imap_wait_cont(s, tag, NULL, imap_sasl_cont, x);
out:
	strbuf_wipe(&ir);
	strbuf_wipe(&cmd);
	return rc;
}

/* LOGIN with quoted strings, or literals for what cannot be quoted. */
static int imap_login(struct imap_session *s, const char *secret)
{
	const struct imap_config *c = s->cfg;
	struct strbuf user = {0}, pass = {0};
	struct imap_part parts[4];
	size_t n = 0;
	int rc;

	parts[n++] = (struct imap_part){"LOGIN ", 6, false};
	if (imap_quote(&user, c->user))
		parts[n++] = (struct imap_part){user.data, user.len, false};
	else
		parts[n++] = (struct imap_part){c->user, strlen(c->user), true};
	parts[n++] = (struct imap_part){" ", 1, false};
	if (imap_quote(&pass, secret))
		parts[n++] = (struct imap_part){pass.data, pass.len, false};
	else
		parts[n++] = (struct imap_part){secret, strlen(secret), true};
	if (strbuf_failed(&user) || strbuf_failed(&pass)) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		rc = -1;
	} else {
		rc = imap_run_parts(s, parts, n, "LOGIN <credentials hidden>",
				    NULL, NULL);
	}
	strbuf_wipe(&user);
	strbuf_wipe(&pass);
	return rc;
}

/*
 * Picks the way to log in from cfg->auth and the capabilities: *sasl_r
 * tells AUTHENTICATE (with *mech_r) from LOGIN. A way the server does
 * not offer gives an AUTH error naming what it offers.
 */
static int imap_login_way(struct imap_session *s, bool *sasl_r,
			  enum sasl_mech *mech_r)
{
	static const unsigned mech_caps[] = {
		[SASL_MECH_PLAIN] = IMAP_CAP_AUTH_PLAIN,
		[SASL_MECH_XOAUTH2] = IMAP_CAP_AUTH_XOAUTH2,
		[SASL_MECH_OAUTHBEARER] = IMAP_CAP_AUTH_OAUTHBEARER,
	};
	enum sasl_auth auth = s->cfg->auth;
	const char *offers = s->mechs[0] ? s->mechs : "no SASL mechanism";

	if (sasl_auth_mech(auth, mech_r)) {
		*sasl_r = true;
		if (s->caps & mech_caps[*mech_r])
			return 0;
		imap_set_err(s, IMAP_ERR_AUTH, EACCES,
			     "%s does not offer AUTH=%s (-o auth=%s); it "
			     "offers %s",
			     s->cfg->host, sasl_mech_name(*mech_r),
			     sasl_auth_name(auth), offers);
		return -1;
	}
	*mech_r = SASL_MECH_PLAIN;
	*sasl_r = auth == SASL_AUTH_DEFAULT && (s->caps & IMAP_CAP_AUTH_PLAIN);
	if (*sasl_r || !(s->caps & IMAP_CAP_LOGINDISABLED))
		return 0;
	if (auth == SASL_AUTH_LOGIN)
		imap_set_err(s, IMAP_ERR_AUTH, EACCES,
			     "%s disables LOGIN (-o auth=login); it offers %s",
			     s->cfg->host, offers);
	else
		imap_set_err(s, IMAP_ERR_AUTH, EACCES,
			     "%s disables LOGIN and offers no AUTH=PLAIN",
			     s->cfg->host);
	return -1;
}

/* Logs in the way cfg->auth asks, with a secret fetched for this very
 * login (a token may have been refreshed since the last one). */
static int imap_authenticate(struct imap_session *s)
{
	struct imap_sasl x;
	enum sasl_mech mech;
	char err[256], *secret;
	bool sasl;
	int rc;

	if (imap_login_way(s, &sasl, &mech) < 0)
		return -1;
	secret = sasl_secret_get(&s->cfg->credential, err, sizeof(err));
	if (!secret) {
		imap_set_err(s, IMAP_ERR_AUTH, EACCES, "%s", err);
		return -1;
	}
	rc = sasl ? imap_auth_sasl(s, &x, mech, secret) : imap_login(s, secret);
	sasl_secret_free(secret);
	if (rc < 0) {
		imap_login_failed(s, sasl ? &x : NULL);
		return -1;
	}
	s->state = IMAP_STATE_AUTH;
	/* The OK may carry the new capabilities; ask only if not. */
	if (!s->done || s->done->n_code == 0 ||
	    !imap_tok_is(&s->done->code[0], "CAPABILITY"))
		s->caps = 0;
	return 0;
}

/*
 * COMPRESS DEFLATE (RFC 4978) when asked for and offered: every later
 * byte is compressed both ways, in net. The server starts compressing
 * right after its OK, so bytes already read past it go to net as the
 * start of its stream. A NO or BAD (say, COMPRESSIONACTIVE) leaves the
 * session as it was; only a lost connection fails.
 */
static int imap_compress(struct imap_session *s)
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
		s->state = IMAP_STATE_BROKEN;
		return -1;
	}
	log_debug("compression on (COMPRESS=DEFLATE%s)",
		  net_is_tls(s->conn) ? ", under TLS" : "");
	return 0;
}

int imap_open(const struct imap_config *cfg, struct imap_session **s_r,
	      struct imap_error *err)
{
	struct imap_session *s;
	char msg[sizeof(err->text)];
	bool greeted = false, connected = false;

	s = calloc(1, sizeof(*s));
	if (!s)
		goto fail_nomem;
	s->cfg = cfg;
	s->conn_id = log_conn_new();
	s->rbuf = malloc(IMAP_READ_BUF);
	s->parser = imap_parser_new(IMAP_MAX_LINE, cfg->max_literal);
	if (!s->rbuf || !s->parser)
		goto fail_free;
	s->conn = net_connect(cfg->host, cfg->port, cfg->timeout_ms, msg,
			      sizeof(msg));
	if (!s->conn) {
		imap_set_err(s, IMAP_ERR_NET, ECONNREFUSED, "%s", msg);
		goto fail_report;
	}
	connected = true;
	if (cfg->tls == IMAP_TLS_IMPLICIT) {
		int rc = net_start_tls(s->conn, cfg->tls_ctx, cfg->host, msg,
				       sizeof(msg));

		if (rc < 0) {
			/* As in imap_starttls(): only a refusal is AUTH. */
			imap_set_err(
				s, rc == -EPROTO ? IMAP_ERR_AUTH : IMAP_ERR_NET,
				-rc, "%s", msg);
			goto fail_report;
		}
	}
	if (imap_greeting(s) < 0)
		goto fail_report;
	greeted = true;
	if (cfg->tls == IMAP_TLS_STARTTLS) {
		if (s->state == IMAP_STATE_AUTH) {
			imap_set_err(s, IMAP_ERR_AUTH, EPROTO,
				     "%s logged us in before STARTTLS "
				     "(PREAUTH); refusing a cleartext session",
				     cfg->host);
			goto fail_report;
		}
		if (!s->caps && imap_run(s, "CAPABILITY", NULL, NULL) < 0)
			goto fail_report;
		if (imap_starttls(s) < 0)
			goto fail_report;
	}
	if (s->state == IMAP_STATE_NOT_AUTH) {
		if (!s->caps && imap_run(s, "CAPABILITY", NULL, NULL) < 0)
			goto fail_report;
		if (imap_authenticate(s) < 0)
			goto fail_report;
	}
	if (!s->caps && imap_run(s, "CAPABILITY", NULL, NULL) < 0)
		goto fail_report;
	if (imap_compress(s) < 0)
		goto fail_report;
	*s_r = s;
	return 0;

fail_report:
	*err = s->err;
	/* Unreachable: no connection (name, refusal, connect timeout), or
	 * one reset before the greeting; not a greeting that is slow to
	 * come, nor anything after it. */
	err->unreachable = !greeted && err->kind == IMAP_ERR_NET &&
			   (!connected || err->errnum != ETIMEDOUT);
	if (err->kind == IMAP_ERR_NET && err->errnum != ECONNREFUSED &&
	    strstr(err->text, cfg->host) == NULL) {
		snprintf(msg, sizeof(msg), "%s", err->text);
		snprintf(err->text, sizeof(err->text), "%.60s: %.180s",
			 cfg->host, msg);
	}
	net_close(s->conn);
	imap_parser_free(s->parser);
	free(s->rbuf);
	/* A PERMANENTFLAGS code in the greeting or in an untagged answer
	 * before the failure has filled it already. */
	strbuf_free(&s->permflags);
	free(s);
	return -1;
fail_free:
	imap_parser_free(s->parser);
	free(s->rbuf);
	free(s);
fail_nomem:
	memset(err, 0, sizeof(*err));
	err->kind = IMAP_ERR_NOMEM;
	err->errnum = ENOMEM;
	snprintf(err->text, sizeof(err->text), "out of memory");
	return -1;
}

void imap_close(struct imap_session *s)
{
	if (!s)
		return;
	log_set_conn(s->conn_id);
	if (s->state != IMAP_STATE_BROKEN) {
		net_set_timeout(s->conn, IMAP_LOGOUT_TIMEOUT_MS);
		imap_run(s, "LOGOUT", NULL, NULL);
	}
	net_close(s->conn);
	imap_parser_free(s->parser);
	free(s->rbuf);
	free(s->selected);
	strbuf_free(&s->permflags);
	free(s);
	log_set_conn(0);
}

bool imap_usable(const struct imap_session *s)
{
	return s->state != IMAP_STATE_BROKEN && !s->bye;
}

bool imap_peer_gone(const struct imap_session *s)
{
	return !s->conn || net_peer_gone(s->conn);
}

/* "* STATUS mailbox (...)": the mailbox's name, or NULL. */
static const char *imap_status_mailbox(const struct imap_resp *r)
{
	if (r->kind != IMAP_RESP_UNTAGGED || r->status != IMAP_STATUS_NONE ||
	    r->n_toks != 3 || !imap_tok_is(&r->toks[0], "STATUS") ||
	    r->toks[2].type != IMAP_TOK_LIST)
		return NULL;
	return imap_tok_str(&r->toks[1], NULL);
}

/* Where NOTIFY's STATUS reports go while a command runs. */
struct imap_notify_ctx {
	void (*notified)(void *ctx, const char *mailbox);
	void *ctx;
};

static bool imap_notify_handler(void *ctx, struct imap_session *s,
				const struct imap_resp *r)
{
	struct imap_notify_ctx *nc = ctx;
	const char *mailbox = imap_status_mailbox(r);

	(void)s;
	if (!mailbox)
		return false;
	nc->notified(nc->ctx, mailbox);
	return true;
}

int imap_idle(struct imap_session *s, int max_ms, bool (*stop)(void *ctx),
	      void (*notified)(void *ctx, const char *mailbox), void *ctx,
	      bool *changed_r)
{
	long long end = clock_now_ms() + max_ms;
	struct imap_notify_ctx nc = {notified, ctx};
	const struct imap_resp *r;
	char line[32], tag[16];
	int rc = 0;

	*changed_r = false;
	if (!(s->caps & IMAP_CAP_IDLE)) {
		imap_set_err(s, IMAP_ERR_BAD, ENOTSUP, "%s has no IDLE",
			     s->cfg->host);
		return -1;
	}
	snprintf(tag, sizeof(tag), "M%u", ++s->next_tag);
	snprintf(line, sizeof(line), "%s IDLE\r\n", tag);
	s->changed = false;
	if (s->cfg->trace)
		log_debug("C: %s IDLE", tag);
	if (imap_write(s, line, strlen(line)) < 0 ||
	    imap_wait_continue(s, tag, NULL, NULL) < 0)
		return -1;
	/* Idling: untagged responses until a change, the end or a stop. */
	while (!s->changed && clock_now_ms() < end && !(stop && stop(ctx))) {
		long long left = end - clock_now_ms();

		rc = net_wait_readable(s->conn, left < 500 ? (int)left : 500);
		if (rc < 0) {
			imap_set_err(s, IMAP_ERR_NET, -rc,
				     "connection to %s lost while idling",
				     s->cfg->host);
			s->state = IMAP_STATE_BROKEN;
			return -1;
		}
		if (rc == 0)
			continue;
		if (imap_read_resp(s, &r) < 0)
			return -1;
		if (r->kind != IMAP_RESP_UNTAGGED) {
			imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
				     "%s ended IDLE on its own", s->cfg->host);
			s->state = IMAP_STATE_BROKEN;
			return -1;
		}
		if (notified && imap_status_mailbox(r)) {
			notified(ctx, imap_status_mailbox(r));
			/* Dovecot 2.3 may hold back a change made while it
			 * reports another until DONE: IDLE ends a second
			 * after a report, so that the caller's next IDLE
			 * comes after a DONE that brings it. */
			if (end > clock_now_ms() + 1000)
				end = clock_now_ms() + 1000;
			continue;
		}
		imap_untagged(s, r);
		if (s->bye)
			return -1;
	}
	if (s->cfg->trace)
		log_debug("C: DONE");
	/* A report may come after DONE, before the end of IDLE (Dovecot
	 * sends one it held back): it goes where the others went. */
	if (imap_write(s, "DONE\r\n", 6) < 0 ||
	    imap_wait(s, tag, notified ? imap_notify_handler : NULL,
		      notified ? &nc : NULL) < 0)
		return -1;
	*changed_r = s->changed;
	return 0;
}

int imap_notify_set(struct imap_session *s, const char *const *mailboxes,
		    size_t n, void (*notified)(void *ctx, const char *mailbox),
		    void *ctx)
{
	struct imap_notify_ctx nc = {notified, ctx};
	struct strbuf cmd = {0};
	size_t i;
	int rc;

	if (!(s->caps & IMAP_CAP_NOTIFY)) {
		imap_set_err(s, IMAP_ERR_BAD, ENOTSUP, "%s has no NOTIFY",
			     s->cfg->host);
		return -1;
	}
	if (!mailboxes) {
		strbuf_puts(&cmd, "NOTIFY SET (personal");
	} else {
		strbuf_puts(&cmd, "NOTIFY SET (mailboxes (");
		for (i = 0; i < n; i++) {
			if (i)
				strbuf_puts(&cmd, " ");
			if (!imap_mailbox_arg(s, &cmd, mailboxes[i]))
				cmd.failed = true;
		}
		strbuf_puts(&cmd, ")");
	}
	strbuf_puts(&cmd, " (MessageNew MessageExpunge FlagChange))");
	if (strbuf_failed(&cmd)) {
		strbuf_free(&cmd);
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	/* A flag change in a folder not selected is reported (a STATUS
	 * with HIGHESTMODSEQ) only once CONDSTORE is on (RFC 5465, FlagChange):
	 * without it, only new and expunged messages would be heard of. */
	if ((s->caps & IMAP_CAP_CONDSTORE) &&
	    imap_run(s, "ENABLE CONDSTORE", NULL, NULL) < 0 &&
	    !imap_usable(s)) {
		strbuf_free(&cmd);
		return -1;
	}
	rc = imap_run(s, strbuf_str(&cmd), imap_notify_handler, &nc);
	strbuf_free(&cmd);
	return rc;
}

unsigned imap_conn_id(const struct imap_session *s)
{
	return s->conn_id;
}

unsigned imap_caps(const struct imap_session *s)
{
	return s->caps;
}

uint64_t imap_appendlimit(const struct imap_session *s)
{
	return s->appendlimit;
}

const struct imap_error *imap_error(const struct imap_session *s)
{
	return &s->err;
}

int imap_noop(struct imap_session *s)
{
	return imap_run(s, "NOOP", NULL, NULL);
}

/* Context of GETQUOTAROOT. */
struct imap_quota_ctx {
	uint64_t used, limit;
	bool found;
};

/* Takes "* QUOTA root (STORAGE used limit ...)"; the first STORAGE. */
static bool imap_quota_handler(void *ctx, struct imap_session *s,
			       const struct imap_resp *r)
{
	struct imap_quota_ctx *q = ctx;
	const struct imap_tok *l;
	size_t i;

	(void)s;
	if (r->status != IMAP_STATUS_NONE || r->n_toks < 2 ||
	    !imap_tok_is(&r->toks[0], "QUOTA"))
		return false;
	l = &r->toks[r->n_toks - 1];
	if (l->type != IMAP_TOK_LIST || q->found)
		return true;
	for (i = 0; i + 2 < l->n_items; i += 3) {
		if (imap_tok_is(&l->items[i], "STORAGE") &&
		    imap_tok_u64(&l->items[i + 1], &q->used) &&
		    imap_tok_u64(&l->items[i + 2], &q->limit)) {
			q->found = true;
			break;
		}
	}
	return true;
}

int imap_quota(struct imap_session *s, uint64_t *used_kib_r,
	       uint64_t *limit_kib_r)
{
	struct imap_quota_ctx q = {0};

	if (!(s->caps & IMAP_CAP_QUOTA))
		return 0;
	if (imap_run(s, "GETQUOTAROOT INBOX", imap_quota_handler, &q) < 0)
		return -1;
	if (!q.found || q.limit == 0)
		return 0;
	*used_kib_r = q.used;
	*limit_kib_r = q.limit;
	return 1;
}

/* Context of a LIST command. */
struct imap_list_ctx {
	void (*cb)(void *ctx, const struct imap_list_entry *e);
	void *ctx;
};

/* Takes one "* LIST (attrs) delim name ..." response. */
/* "* STATUS name (MESSAGES n UIDNEXT u ...)" after a LIST line
 * (LIST-STATUS); an item that does not parse counts as not told. */
static bool imap_list_status(struct imap_list_ctx *lc,
			     const struct imap_resp *r)
{
	const struct imap_tok *l = &r->toks[2];
	struct imap_list_entry e = {.status_only = true};
	bool have_messages = false;
	size_t i, len;

	e.name = imap_tok_str(&r->toks[1], &len);
	if (!e.name || strlen(e.name) != len)
		return true;

	for (i = 0; i + 1 < l->n_items; i += 2) {
		const struct imap_tok *k = &l->items[i], *v = &l->items[i + 1];

		if (imap_tok_is(k, "MESSAGES"))
			have_messages = imap_tok_u32(v, &e.messages);
		else if (imap_tok_is(k, "UIDNEXT") &&
			 !imap_tok_u32(v, &e.uidnext))
			e.uidnext = 0;
		else if (imap_tok_is(k, "UIDVALIDITY") &&
			 !imap_tok_u32(v, &e.uidvalidity))
			e.uidvalidity = 0;
		else if (imap_tok_is(k, "HIGHESTMODSEQ") &&
			 !imap_tok_u64(v, &e.modseq))
			e.modseq = 0;
	}
	if (have_messages)
		lc->cb(lc->ctx, &e);
	return true;
}

static bool imap_list_handler(void *ctx, struct imap_session *s,
			      const struct imap_resp *r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} attrs[] = {
		{"\\Noselect", IMAP_MBOX_NOSELECT},
		{"\\NonExistent", IMAP_MBOX_NOSELECT | IMAP_MBOX_NONEXISTENT},
		{"\\NoInferiors", IMAP_MBOX_NOINFERIORS},
		{"\\HasChildren", IMAP_MBOX_HASCHILDREN},
		{"\\Trash", IMAP_MBOX_TRASH},
	};
	struct imap_list_ctx *lc = ctx;
	struct imap_list_entry e = {0};
	const struct imap_tok *t = r->toks;
	size_t i, j, len;

	if (imap_status_mailbox(r))
		return imap_list_status(lc, r);
	if (r->status != IMAP_STATUS_NONE || r->n_toks < 4 ||
	    !imap_tok_is(&t[0], "LIST"))
		return false;
	if (t[1].type != IMAP_TOK_LIST)
		return true;
	for (i = 0; i < t[1].n_items; i++)
		for (j = 0; j < sizeof(attrs) / sizeof(attrs[0]); j++)
			if (imap_tok_is(&t[1].items[i], attrs[j].name))
				e.attrs |= attrs[j].bit;
	if (t[2].type == IMAP_TOK_STRING && t[2].len == 1)
		e.delim = t[2].str[0];
	else if (t[2].type != IMAP_TOK_NIL)
		return true;
	e.name = imap_tok_str(&t[3], &len);
	/* A name with NUL, CR or LF could not be used in a command. */
	if (!e.name || len == 0 || strlen(e.name) != len ||
	    strpbrk(e.name, "\r\n"))
		return true;
	lc->cb(lc->ctx, &e);
	return true;
}

/* The LIST commands imap_list() sends (string pieces joined). */
#define IMAP_LIST_PLAIN "LIST \"\" \"*\" RETURN ("
#define IMAP_LIST_SU "LIST \"\" \"*\" RETURN (SPECIAL-USE "
#define IMAP_LIST_STATUS "STATUS (MESSAGES UIDNEXT UIDVALIDITY))"
#define IMAP_LIST_STATUS_MODSEQ \
	"STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))"

/* The selected mailbox was left (UNSELECT). */
static void imap_left_mailbox(struct imap_session *s)
{
	free(s->selected);
	s->selected = NULL;
	s->state = IMAP_STATE_AUTH;
}

/*
 * Runs a LIST that asks for STATUS. The STATUS of the selected mailbox
 * is the session's view of it, which another client's changes do not
 * reach until a command syncs it (Dovecot answers with the state the
 * view had): the mailbox is left first, UNSELECT sent in the same write
 * as the LIST.
 */
static int imap_list_fresh(struct imap_session *s, const char *cmd,
			   struct imap_list_ctx *lc)
{
	struct imap_cmd c[2] = {
		{.text = "UNSELECT"},
		{.text = cmd, .h = imap_list_handler, .ctx = lc},
	};

	if (s->state != IMAP_STATE_SELECTED)
		return imap_run(s, cmd, imap_list_handler, lc);
	if (!(s->caps & IMAP_CAP_UNSELECT)) {
		if (imap_unselect(s) < 0)
			return -1;
		return imap_run(s, cmd, imap_list_handler, lc);
	}
	imap_cmd_run(s, c, 2);
	if (c[0].rc == 0)
		imap_left_mailbox(s);
	if (c[1].rc == 0)
		return 0;
	s->err = c[1].err;
	return -1;
}

int imap_list(struct imap_session *s,
	      void (*cb)(void *ctx, const struct imap_list_entry *e), void *ctx)
{
	struct imap_list_ctx lc = {cb, ctx};
	const char *cmd = "LIST \"\" \"*\"";

	if ((s->caps & IMAP_CAP_SPECIAL_USE) &&
	    (s->caps & IMAP_CAP_LIST_EXTENDED))
		cmd = "LIST \"\" \"*\" RETURN (SPECIAL-USE)";
	/* How many messages each folder holds, in the same answer: walks
	 * list ahead only folders of reasonable size. With UIDNEXT,
	 * UIDVALIDITY and HIGHESTMODSEQ, a saved listing of a folder
	 * that has not changed needs no command of its own
	 * (store_cache.c). */
	if ((s->caps & IMAP_CAP_LIST_STATUS) &&
	    (s->caps & IMAP_CAP_LIST_EXTENDED))
		cmd = (s->caps & IMAP_CAP_CONDSTORE)
			      ? ((s->caps & IMAP_CAP_SPECIAL_USE)
					 ? IMAP_LIST_SU IMAP_LIST_STATUS_MODSEQ
					 : IMAP_LIST_PLAIN
						   IMAP_LIST_STATUS_MODSEQ)
			      : ((s->caps & IMAP_CAP_SPECIAL_USE)
					 ? IMAP_LIST_SU IMAP_LIST_STATUS
					 : IMAP_LIST_PLAIN IMAP_LIST_STATUS);
	if ((s->caps & IMAP_CAP_LIST_STATUS) &&
	    (s->caps & IMAP_CAP_LIST_EXTENDED))
		return imap_list_fresh(s, cmd, &lc);
	return imap_run(s, cmd, imap_list_handler, &lc);
}

/* Keeps the attributes of the one mailbox asked for. */
struct imap_attrs_ctx {
	const char *name;
	unsigned attrs;
	bool found;
};

static void imap_attrs_cb(void *ctx, const struct imap_list_entry *e)
{
	struct imap_attrs_ctx *ac = ctx;

	if (!e->status_only && strcmp(e->name, ac->name) == 0) {
		ac->attrs = e->attrs;
		ac->found = true;
	}
}

int imap_mailbox_attrs(struct imap_session *s, const char *mailbox,
		       unsigned *attrs_r)
{
	struct imap_attrs_ctx ac = {mailbox, 0, false};
	struct imap_list_ctx lc = {imap_attrs_cb, &ac};
	struct strbuf cmd = {0};
	int rc;

	strbuf_puts(&cmd, "LIST \"\" ");
	if (!imap_mailbox_arg(s, &cmd, mailbox) || strbuf_failed(&cmd)) {
		strbuf_free(&cmd);
		imap_set_err(s, IMAP_ERR_BAD, EINVAL,
			     "mailbox name cannot be sent");
		return -1;
	}
	rc = imap_run(s, cmd.data, imap_list_handler, &lc);
	strbuf_free(&cmd);
	if (rc == 0 && !ac.found) {
		imap_set_err(s, IMAP_ERR_NO, ENOENT, "no mailbox %s", mailbox);
		snprintf(s->err.code, sizeof(s->err.code), "NONEXISTENT");
		return -1;
	}
	*attrs_r = ac.attrs;
	return rc;
}

/*
 * Builds "EXAMINE|SELECT mailbox [(CONDSTORE)]" into cmd and forgets the
 * mailbox selected so far: whatever the answer, it no longer is.
 */
static int imap_select_begin(struct imap_session *s, const char *mailbox,
			     bool readonly, struct strbuf *cmd)
{
	strbuf_puts(cmd, readonly ? "EXAMINE " : "SELECT ");
	if (!imap_mailbox_arg(s, cmd, mailbox)) {
		imap_set_err(s, IMAP_ERR_BAD, EINVAL,
			     "mailbox name cannot be sent");
		return -1;
	}
	if (s->caps & IMAP_CAP_CONDSTORE)
		strbuf_puts(cmd, " (CONDSTORE)");
	if (strbuf_failed(cmd)) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	imap_select_forget(s, readonly);
	return 0;
}

/* Forgets the mailbox selected so far, as a SELECT or EXAMINE (readonly)
 * about to be sent does whatever its answer. */
static void imap_select_forget(struct imap_session *s, bool readonly)
{
	free(s->selected);
	s->selected = NULL;
	memset(&s->mb, 0, sizeof(s->mb));
	s->mb.readonly = readonly;
	s->have_permflags = false;
	strbuf_reset(&s->permflags);
	if (s->state == IMAP_STATE_SELECTED)
		s->state = IMAP_STATE_AUTH;
}

/* Records a successful SELECT or EXAMINE. */
static int imap_select_end(struct imap_session *s, const char *mailbox,
			   bool readonly, struct imap_mailbox *mb_r)
{
	s->selected = strdup(mailbox);
	if (!s->selected) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	s->selected_ro = readonly;
	s->state = IMAP_STATE_SELECTED;
	s->changed = false;
	*mb_r = s->mb;
	return 0;
}

int imap_select(struct imap_session *s, const char *mailbox, bool readonly,
		bool force, struct imap_mailbox *mb_r)
{
	struct strbuf cmd = {0};
	int rc;

	if (!force && s->selected && strcmp(s->selected, mailbox) == 0 &&
	    (readonly || !s->selected_ro) && s->state == IMAP_STATE_SELECTED) {
		*mb_r = s->mb;
		return 0;
	}
	rc = imap_select_begin(s, mailbox, readonly, &cmd);
	if (rc == 0)
		rc = imap_run(s, strbuf_str(&cmd), NULL, NULL);
	strbuf_free(&cmd);
	if (rc < 0)
		return -1;
	return imap_select_end(s, mailbox, readonly, mb_r);
}

const char *imap_selected(const struct imap_session *s)
{
	return s->state == IMAP_STATE_SELECTED ? s->selected : NULL;
}

bool imap_mailbox_changed(const struct imap_session *s)
{
	return s->changed;
}

/* Reads n digits at *p into *v. */
static bool imap_date_num(const char **p, const char *end, int n, int *v)
{
	int i;

	*v = 0;
	for (i = 0; i < n; i++, (*p)++) {
		if (*p >= end || **p < '0' || **p > '9')
			return false;
		*v = *v * 10 + (**p - '0');
	}
	return true;
}

/* Checks that the next byte is c and steps over it. */
static bool imap_date_sep(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return false;
	(*p)++;
	return true;
}

/* Parses an INTERNALDATE ("17-Jul-1996 02:44:25 -0700", the day may be
 * " 7" or "7") into UTC; by hand, as a listing parses one per message. */
static bool imap_parse_date(const char *str, size_t len, time_t *t_r)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *p = str, *end = str + len, *m;
	int day, year, hh, mm, ss, zone, i;
	char sign;
	struct tm tm = {0};
	time_t t;

	if (len > 40)
		return false;
	if (len > 0 && *p == ' ')
		p++;
	/* One or two digits of day. */
	if (!imap_date_num(&p, end, 1, &day))
		return false;
	if (p < end && *p >= '0' && *p <= '9')
		day = day * 10 + (*p++ - '0');
	if (!imap_date_sep(&p, end, '-') || end - p < 4)
		return false;
	for (m = NULL, i = 0; i < 12 && !m; i++)
		if (strncasecmp(p, months + 3 * i, 3) == 0)
			m = months + 3 * i;
	p += 3;
	if (!m || !imap_date_sep(&p, end, '-') ||
	    !imap_date_num(&p, end, 4, &year) || !imap_date_sep(&p, end, ' ') ||
	    !imap_date_num(&p, end, 2, &hh) || !imap_date_sep(&p, end, ':') ||
	    !imap_date_num(&p, end, 2, &mm) || !imap_date_sep(&p, end, ':') ||
	    !imap_date_num(&p, end, 2, &ss) || !imap_date_sep(&p, end, ' ') ||
	    p >= end)
		return false;
	sign = *p++;
	if (!imap_date_num(&p, end, 4, &zone) || p != end ||
	    (sign != '+' && sign != '-') || day < 1 || day > 31 || hh > 23 ||
	    mm > 59 || ss > 60 || year < 1900)
		return false;
	tm.tm_year = year - 1900;
	tm.tm_mon = (int)(m - months) / 3;
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	t = timegm(&tm);
	zone = (zone / 100) * 3600 + (zone % 100) * 60;
	*t_r = sign == '+' ? t - zone : t + zone;
	return true;
}

/* What a listing asks of each message: what stat shows, the
 * Message-ID that message names are made of (names.h), and the content
 * identity where the server gives one (imap_oid_kind()). */
#define IMAP_META_ITEMS_WITH(oid)                  \
	"(UID FLAGS RFC822.SIZE INTERNALDATE " oid \
	"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])"
#define IMAP_META_FETCH "UID FETCH 1:* "

const char *imap_oid_kind(const struct imap_session *s)
{
	if (s->caps & IMAP_CAP_OBJECTID)
		return "EMAILID";
	if (s->caps & IMAP_CAP_X_GM_EXT_1)
		return "X-GM-MSGID";
	return NULL;
}

/* The FETCH items of a listing on this session (static text). */
static const char *imap_meta_items(const struct imap_session *s)
{
	if (s->caps & IMAP_CAP_OBJECTID)
		return IMAP_META_ITEMS_WITH("EMAILID ");
	if (s->caps & IMAP_CAP_X_GM_EXT_1)
		return IMAP_META_ITEMS_WITH("X-GM-MSGID ");
	return IMAP_META_ITEMS_WITH("");
}

/* The FETCH of a whole listing on this session (static text). */
static const char *imap_meta_fetch(const struct imap_session *s)
{
	if (s->caps & IMAP_CAP_OBJECTID)
		return IMAP_META_FETCH IMAP_META_ITEMS_WITH("EMAILID ");
	if (s->caps & IMAP_CAP_X_GM_EXT_1)
		return IMAP_META_FETCH IMAP_META_ITEMS_WITH("X-GM-MSGID ");
	return IMAP_META_FETCH IMAP_META_ITEMS_WITH("");
}

/* Context of UID FETCH for metadata. */
struct imap_meta_ctx {
	void (*cb)(void *ctx, const struct imap_msg_meta *m);
	void *ctx;
	struct strbuf flags;
	char oid[IMAP_MAX_OBJECTID + 1]; /* the last message's identity */
};

/* Returns the item list of a "* N FETCH (...)" response, or NULL. */
static const struct imap_tok *imap_fetch_items(const struct imap_resp *r)
{
	uint32_t seq;

	if (r->status != IMAP_STATUS_NONE || r->n_toks != 3 ||
	    !imap_tok_u32(&r->toks[0], &seq) ||
	    !imap_tok_is(&r->toks[1], "FETCH") ||
	    r->toks[2].type != IMAP_TOK_LIST || r->toks[2].n_items % 2)
		return NULL;
	return &r->toks[2];
}

/* What imap_meta_parse() found in a FETCH response. */
enum imap_meta_have {
	IMAP_META_UID = 1u << 0,
	IMAP_META_FLAGS = 1u << 1,
	IMAP_META_SIZE = 1u << 2,
	IMAP_META_DATE = 1u << 3,
	IMAP_META_ALL = 15u,
};

/*
 * Reads a content identity (the item's value v) into oid (room for
 * IMAP_MAX_OBJECTID + 1): for "EMAILID", RFC 8474's "(objectid)", 1 to
 * 255 of ALPHA, DIGIT, "_" and "-"; for "X-GM-MSGID", a number of up to
 * 20 digits. False (and oid empty) for anything else.
 */
static bool imap_oid_parse(const char *kind, const struct imap_tok *v,
			   char *oid)
{
	const struct imap_tok *id = v;
	bool gm = strcmp(kind, "X-GM-MSGID") == 0;
	size_t i;

	oid[0] = '\0';
	if (!gm) {
		if (v->type != IMAP_TOK_LIST || v->n_items != 1)
			return false;
		id = &v->items[0];
	}
	if (id->type != IMAP_TOK_ATOM || id->len == 0 ||
	    id->len > (gm ? 20 : IMAP_MAX_OBJECTID))
		return false;
	for (i = 0; i < id->len; i++) {
		unsigned char c = (unsigned char)id->str[i];

		if (!(c >= '0' && c <= '9') &&
		    (gm || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     c == '_' || c == '-')))
			return false;
	}
	memcpy(oid, id->str, id->len);
	oid[id->len] = '\0';
	return true;
}

/*
 * Reads "* N FETCH (UID u FLAGS (..) RFC822.SIZE s INTERNALDATE d
 * BODY[HEADER.FIELDS (MESSAGE-ID)] h)", any item missing, into *m (its
 * flags in the buffer flags), with the content identity of kind
 * oid_kind (imap_oid_kind(); NULL: none asked) in the buffer oid.
 * Returns what it found (enum imap_meta_have), 0 when r is no FETCH
 * response.
 */
static unsigned imap_meta_parse(struct strbuf *flags, char *oid,
				const char *oid_kind, const struct imap_resp *r,
				struct imap_msg_meta *m)
{
	const struct imap_tok *l = imap_fetch_items(r);
	unsigned have = 0;
	size_t i, j;

	memset(m, 0, sizeof(*m));
	if (!l)
		return 0;
	strbuf_reset(flags);
	for (i = 0; i + 1 < l->n_items; i += 2) {
		const struct imap_tok *k = &l->items[i], *v = &l->items[i + 1];

		if (imap_tok_is(k, "UID")) {
			if (imap_tok_u32(v, &m->uid) && m->uid)
				have |= IMAP_META_UID;
		} else if (imap_tok_is(k, "RFC822.SIZE")) {
			/* A size beyond any real message is a lie: the
			 * bytes will tell (fsops corrects sizes). */
			if (imap_tok_u64(v, &m->size))
				have |= IMAP_META_SIZE;
			if (m->size > IMAP_MAX_MESSAGE)
				m->size = IMAP_MAX_MESSAGE;
		} else if (imap_tok_is(k, "INTERNALDATE")) {
			/* An unreadable date shows as 1970, rather than
			 * hiding the message. */
			if (v->type == IMAP_TOK_STRING)
				have |= IMAP_META_DATE;
			if (v->type != IMAP_TOK_STRING ||
			    !imap_parse_date(v->str, v->len, &m->date))
				m->date = 0;
		} else if (k->type == IMAP_TOK_ATOM && k->len > 18 &&
			   strncasecmp(k->str, "BODY[HEADER.FIELDS", 18) == 0) {
			m->msgid_hdr = imap_tok_str(v, &m->msgid_len);
		} else if (oid_kind && imap_tok_is(k, oid_kind)) {
			m->oid = imap_oid_parse(oid_kind, v, oid) ? oid : NULL;
			m->oid_kind = m->oid ? oid_kind : NULL;
		} else if (imap_tok_is(k, "FLAGS") &&
			   v->type == IMAP_TOK_LIST) {
			have |= IMAP_META_FLAGS;
			for (j = 0; j < v->n_items; j++) {
				const struct imap_tok *f = &v->items[j];

				if (!imap_flag_token(f, false) ||
				    imap_tok_is(f, "\\Recent"))
					continue;
				if (flags->len)
					strbuf_puts(flags, " ");
				strbuf_append(flags, f->str, f->len);
			}
		}
	}
	m->flags = strbuf_str(flags);
	return have;
}

/* Takes a FETCH response with every item of a listing; an unsolicited
 * flag update lacks size and date: not ours. */
static bool imap_meta_handler(void *ctx, struct imap_session *s,
			      const struct imap_resp *r)
{
	struct imap_meta_ctx *mc = ctx;
	struct imap_msg_meta m;

	if (imap_meta_parse(&mc->flags, mc->oid, imap_oid_kind(s), r, &m) !=
	    IMAP_META_ALL)
		return false;
	mc->cb(mc->ctx, &m);
	return true;
}

int imap_fetch_meta(struct imap_session *s,
		    void (*cb)(void *ctx, const struct imap_msg_meta *m),
		    void *ctx)
{
	struct imap_meta_ctx mc = {cb, ctx, {0}, {0}};
	int rc;

	if (s->mb.exists == 0)
		return 0; /* "1:*" on an empty mailbox upsets some servers */
	rc = imap_run(s, imap_meta_fetch(s), imap_meta_handler, &mc);
	strbuf_free(&mc.flags);
	return rc;
}

/*
 * Finishes an EXAMINE sent as c[0] with FETCH commands after it: the
 * EXAMINE's result counts, and a FETCH that failed on an empty mailbox
 * ("1:*" upsets some servers) does not. Records the selection.
 */
static int imap_examine_done(struct imap_session *s, const char *mailbox,
			     struct imap_cmd *c, size_t n,
			     struct imap_mailbox *mb_r)
{
	size_t i;

	imap_cmd_finish(s, c, n);
	if (c[0].rc < 0) {
		s->err = c[0].err;
		return -1;
	}
	if (imap_select_end(s, mailbox, true, mb_r) < 0)
		return -1;
	for (i = 1; i < n; i++) {
		if (c[i].rc < 0 && (s->mb.exists > 0 || !imap_usable(s))) {
			s->err = c[i].err;
			return -1;
		}
	}
	return 0;
}

int imap_examine_list(struct imap_session *s, const char *mailbox,
		      void (*cb)(void *ctx, const struct imap_msg_meta *m),
		      void *ctx, struct imap_mailbox *mb_r)
{
	struct imap_meta_ctx mc = {cb, ctx, {0}, {0}};
	struct strbuf cmd = {0};
	struct imap_cmd c[2] = {
		{0},
		{.text = imap_meta_fetch(s),
		 .h = imap_meta_handler,
		 .ctx = &mc},
	};
	int rc = -1;

	if (imap_select_begin(s, mailbox, true, &cmd) < 0)
		goto out;
	c[0].text = strbuf_str(&cmd);
	if (imap_cmd_send(s, c, 2) < 0)
		goto out;
	rc = imap_examine_done(s, mailbox, c, 2, mb_r);
out:
	strbuf_free(&mc.flags);
	strbuf_free(&cmd);
	return rc;
}

/* Passes one mailbox's message on with its index (the context starts
 * with the imap_meta_ctx, then cb, ctx and index). */
struct imap_many_head {
	struct imap_meta_ctx mc;
	void (*cb)(void *ctx, size_t i, const struct imap_msg_meta *m);
	void *ctx;
	size_t i;
};

static void imap_many_meta(void *ctx, const struct imap_msg_meta *m)
{
	struct imap_many_head *h = ctx;

	h->cb(h->ctx, h->i, m);
}

int imap_examine_list_many(struct imap_session *s, const char *const *mailboxes,
			   size_t n,
			   void (*cb)(void *ctx, size_t i,
				      const struct imap_msg_meta *m),
			   void (*done)(void *ctx, size_t i, int rc,
					const struct imap_mailbox *mb),
			   void *ctx)
{
	struct imap_many_head *mcs = NULL;
	struct strbuf *ex = NULL;
	struct imap_cmd *c = NULL;
	struct imap_mailbox mb;
	size_t i;
	int rc = -1;

	mcs = calloc(n, sizeof(*mcs));
	ex = calloc(n, sizeof(*ex));
	c = calloc(2 * n, sizeof(*c));
	if (!mcs || !ex || !c) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		strbuf_puts(&ex[i], "EXAMINE ");
		if (!imap_mailbox_arg(s, &ex[i], mailboxes[i]))
			ex[i].failed = true;
		if (s->caps & IMAP_CAP_CONDSTORE)
			strbuf_puts(&ex[i], " (CONDSTORE)");
		if (strbuf_failed(&ex[i])) {
			imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM,
				     "out of memory");
			goto out;
		}
		mcs[i].mc.cb = imap_many_meta;
		mcs[i].mc.ctx = &mcs[i];
		mcs[i].cb = cb;
		mcs[i].ctx = ctx;
		mcs[i].i = i;
		c[2 * i] = (struct imap_cmd){.text = strbuf_str(&ex[i])};
		c[2 * i + 1] = (struct imap_cmd){.text = imap_meta_fetch(s),
						 .h = imap_meta_handler,
						 .ctx = &mcs[i].mc};
	}
	imap_select_forget(s, true);
	if (imap_cmd_send(s, c, 2 * n) < 0)
		goto out;
	/* Each mailbox is done as soon as its two answers are in. */
	for (i = 0; i < n; i++) {
		int one = imap_examine_done(s, mailboxes[i], c + 2 * i, 2, &mb);

		done(ctx, i, one < 0 ? -1 : 0, &mb);
		if (i + 1 < n)
			imap_select_forget(s, true);
	}
	rc = imap_usable(s) ? 0 : -1;
out:
	for (i = 0; mcs && ex && i < n; i++) {
		strbuf_free(&mcs[i].mc.flags);
		strbuf_free(&ex[i]);
	}
	free(mcs);
	free(ex);
	free(c);
	return rc;
}

/* What a resync learns, passed on to its caller's callbacks. */
struct imap_resync_ctx {
	const struct imap_resync_ops *ops;
	void *ctx;
	struct imap_session *s;
	uint32_t uidnext; /* messages from here on are new */
	uint32_t fresh; /* new messages seen */
	bool present; /* ops->present was called */
	struct strbuf flags;
	char oid[IMAP_MAX_OBJECTID + 1];
};

static void imap_resync_vanished(void *ctx, uint32_t lo, uint32_t hi)
{
	struct imap_resync_ctx *rc = ctx;

	rc->ops->vanished(rc->ctx, lo, hi);
}

/* Counts a live VANISHED (not EARLIER) against EXISTS. */
static void imap_resync_gone(void *ctx, uint32_t lo, uint32_t hi)
{
	struct imap_session *s = ctx;
	uint64_t n = (uint64_t)hi - lo + 1;

	s->mb.exists = n >= s->mb.exists ? 0 : s->mb.exists - (uint32_t)n;
}

static void imap_resync_present(void *ctx, uint32_t lo, uint32_t hi)
{
	struct imap_resync_ctx *rc = ctx;

	rc->present = true;
	rc->ops->present(rc->ctx, lo, hi);
}

/* "* VANISHED [(EARLIER)] uid-set": reported; a live one also counts
 * against EXISTS. */
static bool imap_resync_vanished_resp(struct imap_resync_ctx *rc,
				      const struct imap_resp *r)
{
	const struct imap_tok *set = &r->toks[1];
	bool earlier = false;

	if (r->n_toks == 3 && set->type == IMAP_TOK_LIST && set->n_items == 1 &&
	    imap_tok_is(&set->items[0], "EARLIER")) {
		earlier = true;
		set = &r->toks[2];
	} else if (r->n_toks != 2) {
		return false;
	}
	if (set->type != IMAP_TOK_ATOM ||
	    !imap_uid_set_parse(set->str, set->len, IMAP_MAX_UID_RANGES,
				imap_resync_vanished, rc)) {
		log_warnx("%s sent a VANISHED response that cannot be read",
			  rc->s->cfg->host);
		rc->s->changed = true;
		return true;
	}
	if (!earlier)
		imap_uid_set_parse(set->str, set->len, IMAP_MAX_UID_RANGES,
				   imap_resync_gone, rc->s);
	return true;
}

/* "* ESEARCH (TAG ..) UID ALL set" and "* SEARCH n n ..": the UIDs
 * that exist. */
static bool imap_resync_search_resp(struct imap_resync_ctx *rc,
				    const struct imap_resp *r)
{
	size_t i;
	uint32_t uid;

	if (imap_tok_is(&r->toks[0], "SEARCH")) {
		for (i = 1; i < r->n_toks; i++)
			if (imap_tok_u32(&r->toks[i], &uid) && uid)
				imap_resync_present(rc, uid, uid);
		rc->present = true;
		return true;
	}
	rc->present = true;
	for (i = 1; i + 1 < r->n_toks; i++) {
		const struct imap_tok *v = &r->toks[i + 1];

		if (imap_tok_is(&r->toks[i], "ALL") &&
		    v->type == IMAP_TOK_ATOM &&
		    !imap_uid_set_parse(v->str, v->len, IMAP_MAX_UID_RANGES,
					imap_resync_present, rc))
			rc->present = false; /* the caller relists */
	}
	return true;
}

/* Untagged data during a resync: new messages, flag changes, VANISHED
 * and search results. */
static bool imap_resync_handler(void *ctx, struct imap_session *s,
				const struct imap_resp *r)
{
	struct imap_resync_ctx *rc = ctx;
	struct imap_msg_meta m;
	unsigned have;

	if (r->status != IMAP_STATUS_NONE || r->n_toks < 1)
		return false;
	if (imap_tok_is(&r->toks[0], "VANISHED") && r->n_toks >= 2)
		return imap_resync_vanished_resp(rc, r);
	if (imap_tok_is(&r->toks[0], "ESEARCH") ||
	    imap_tok_is(&r->toks[0], "SEARCH"))
		return imap_resync_search_resp(rc, r);
	have = imap_meta_parse(&rc->flags, rc->oid, imap_oid_kind(s), r, &m);
	if (!(have & IMAP_META_UID) || !(have & IMAP_META_FLAGS))
		return false;
	if (have == IMAP_META_ALL && m.uid >= rc->uidnext) {
		rc->fresh++;
		rc->ops->meta(rc->ctx, &m);
	} else if (m.uid < rc->uidnext) {
		rc->ops->flags(rc->ctx, m.uid, m.flags);
	}
	return true;
}

/* "* ENABLED QRESYNC": QRESYNC is on for this session. */
static bool imap_enabled_handler(void *ctx, struct imap_session *s,
				 const struct imap_resp *r)
{
	size_t i;

	(void)ctx;
	if (r->status != IMAP_STATUS_NONE || r->n_toks < 1 ||
	    !imap_tok_is(&r->toks[0], "ENABLED"))
		return false;
	for (i = 1; i < r->n_toks; i++)
		if (imap_tok_is(&r->toks[i], "QRESYNC"))
			s->qresync_on = true;
	return true;
}

/*
 * Builds the resync pipeline for how into c (returns how many): with
 * QRESYNC, [ENABLE QRESYNC,] EXAMINE (QRESYNC (v m)) and the new
 * messages; with CONDSTORE, EXAMINE (CONDSTORE), the flags changed
 * since m and the new messages; without, EXAMINE, every message's
 * flags and the new messages.
 */
static size_t imap_resync_cmds(struct imap_session *s, const char *mailbox,
			       enum imap_resync_how how, uint32_t uidvalidity,
			       uint64_t modseq, uint32_t uidnext,
			       struct strbuf *ex, struct strbuf *fl,
			       struct strbuf *meta, struct imap_cmd *c,
			       struct imap_resync_ctx *rc)
{
	size_t n = 0;

	if (how == IMAP_RESYNC_QRESYNC && !s->qresync_on)
		c[n++] = (struct imap_cmd){.text = "ENABLE QRESYNC",
					   .h = imap_enabled_handler};
	strbuf_puts(ex, "EXAMINE ");
	if (!imap_mailbox_arg(s, ex, mailbox))
		ex->failed = true;
	if (how == IMAP_RESYNC_QRESYNC)
		strbuf_printf(ex, " (QRESYNC (%u %llu))", uidvalidity,
			      (unsigned long long)modseq);
	else if (how == IMAP_RESYNC_CONDSTORE)
		strbuf_puts(ex, " (CONDSTORE)");
	c[n++] = (struct imap_cmd){
		.text = strbuf_str(ex), .h = imap_resync_handler, .ctx = rc};
	if (how == IMAP_RESYNC_CONDSTORE)
		strbuf_printf(fl,
			      "UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE %llu)",
			      (unsigned long long)modseq);
	else if (how == IMAP_RESYNC_FLAGS)
		strbuf_puts(fl, "UID FETCH 1:* (UID FLAGS)");
	if (how != IMAP_RESYNC_QRESYNC)
		c[n++] = (struct imap_cmd){.text = strbuf_str(fl),
					   .h = imap_resync_handler,
					   .ctx = rc};
	strbuf_printf(meta, "UID FETCH %u:* %s", uidnext ? uidnext : 1,
		      imap_meta_items(s));
	c[n++] = (struct imap_cmd){
		.text = strbuf_str(meta), .h = imap_resync_handler, .ctx = rc};
	return n;
}

/* With CONDSTORE alone, expunges show only in the count: when known
 * and new messages do not add up to EXISTS, asks which of the known
 * UIDs still exist (ESEARCH where offered: a few bytes for a run). */
static int imap_resync_search(struct imap_session *s,
			      struct imap_resync_ctx *rc, uint32_t known)
{
	char cmd[96];
	struct imap_cmd c = {.text = cmd, .h = imap_resync_handler, .ctx = rc};

	if ((uint64_t)known + rc->fresh == s->mb.exists || rc->uidnext < 2)
		return 0;
	snprintf(cmd, sizeof(cmd), "UID SEARCH %sUID 1:%u",
		 (s->caps & IMAP_CAP_ESEARCH) ? "RETURN (ALL) " : "",
		 rc->uidnext - 1);
	if (imap_cmd_run(s, &c, 1) < 0)
		return -1;
	if (!rc->present)
		/* no answer at all: nothing known is left */
		rc->present = true;
	return 0;
}

int imap_resync(struct imap_session *s, const char *mailbox,
		const struct imap_resync_state *prev,
		const struct imap_resync_ops *ops, void *ctx,
		struct imap_mailbox *mb_r, enum imap_resync_how *how_r,
		bool *present_r)
{
	struct imap_resync_ctx rc = {
		.ops = ops, .ctx = ctx, .s = s, .uidnext = prev->uidnext};
	struct strbuf ex = {0}, fl = {0}, meta = {0};
	struct imap_cmd c[4];
	enum imap_resync_how how = IMAP_RESYNC_FLAGS;
	size_t n;
	int ret = -1;

	if ((s->caps & IMAP_CAP_QRESYNC) && prev->modseq)
		how = IMAP_RESYNC_QRESYNC;
	else if ((s->caps & IMAP_CAP_CONDSTORE) && prev->modseq)
		how = IMAP_RESYNC_CONDSTORE;
	/* The mailbox is no longer selected, whatever the answer. */
	imap_select_forget(s, true);
	n = imap_resync_cmds(s, mailbox, how, prev->uidvalidity, prev->modseq,
			     prev->uidnext, &ex, &fl, &meta, c, &rc);
	if (strbuf_failed(&ex) || strbuf_failed(&fl) || strbuf_failed(&meta)) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	if (imap_cmd_send(s, c, n) < 0)
		goto out;
	/* ENABLE's own failure is not the resync's: the EXAMINE after it
	 * fails too, and QRESYNC is then not used again. */
	if (c[0].h == imap_enabled_handler) {
		imap_cmd_finish(s, c, 1);
		if (!s->qresync_on)
			s->caps &= ~(unsigned)IMAP_CAP_QRESYNC;
		ret = imap_examine_done(s, mailbox, c + 1, n - 1, mb_r);
	} else {
		ret = imap_examine_done(s, mailbox, c, n, mb_r);
	}
	if (ret == 0 && how == IMAP_RESYNC_CONDSTORE &&
	    mb_r->uidvalidity == prev->uidvalidity)
		ret = imap_resync_search(s, &rc, prev->exists);
	*mb_r = s->mb;
	*how_r = how;
	*present_r = rc.present;
out:
	strbuf_free(&rc.flags);
	strbuf_free(&ex);
	strbuf_free(&fl);
	strbuf_free(&meta);
	return ret;
}

/* Context of UID FETCH for bodies. */
struct imap_body_ctx {
	void (*cb)(void *ctx, const struct imap_body_part *p);
	void *ctx;
	uint64_t offset; /* asked for: every piece must start there */
	bool bad; /* a piece started elsewhere, or its end would wrap */
	bool drop; /* pieces of another UIDVALIDITY: not handed on */
};

/*
 * Parses what follows "BODY[]" in a FETCH item: "<origin>" in decimal
 * digits only (no sign, no blanks, no overflow; strtoull would take
 * "<-1>" as 2^64 - 1), or nothing for a piece from the start. False
 * for anything else.
 */
static bool imap_body_origin(const char *o, uint64_t *off_r)
{
	uint64_t n = 0;
	unsigned d;

	if (*o == '\0') {
		*off_r = 0;
		return true;
	}
	if (*o++ != '<' || *o < '0' || *o > '9')
		return false;
	for (; *o >= '0' && *o <= '9'; o++) {
		d = (unsigned)(*o - '0');
		if (n > (UINT64_MAX - d) / 10)
			return false;
		n = n * 10 + d;
	}
	if (o[0] != '>' || o[1] != '\0')
		return false;
	*off_r = n;
	return true;
}

/* Takes "* N FETCH (UID u BODY[]<off> data)"; items may come in any
 * order. A NIL body means the message is gone. A piece that does not
 * start where it was asked for (RFC 3501 6.4.5: the origin is the one
 * asked), or whose end does not fit in 64 bits, is refused: its bytes
 * would land at the wrong place of the file. */
static bool imap_body_handler(void *ctx, struct imap_session *s,
			      const struct imap_resp *r)
{
	struct imap_body_ctx *bc = ctx;
	const struct imap_tok *l = imap_fetch_items(r);
	struct imap_body_part p = {0};
	bool have_body = false;
	size_t i;

	if (!l)
		return false;
	for (i = 0; i + 1 < l->n_items; i += 2) {
		const struct imap_tok *k = &l->items[i], *v = &l->items[i + 1];

		if (imap_tok_is(k, "UID")) {
			imap_tok_u32(v, &p.uid);
		} else if (k->type == IMAP_TOK_ATOM && k->len >= 6 &&
			   strncasecmp(k->str, "BODY[]", 6) == 0) {
			if (!imap_body_origin(k->str + 6, &p.offset) ||
			    p.offset != bc->offset ||
			    (v->type == IMAP_TOK_STRING &&
			     v->len > UINT64_MAX - p.offset)) {
				bc->bad = true;
				return true;
			}
			/* Dovecot answers NIL for a message expunged
			 * meanwhile: that is no data, not an empty body. */
			if (v->type != IMAP_TOK_STRING)
				return true;
			p.data = v->str;
			p.len = v->len;
			have_body = true;
		}
	}
	if (p.uid == 0 || !have_body)
		return false;
	if (!bc->drop)
		bc->cb(bc->ctx, &p);
	return true;
}

/* Builds "UID FETCH uids (BODY.PEEK[]<offset.len>)" into cmd; -1 (with
 * the session's error) for a malformed set or no memory. */
static int imap_fetch_body_cmd(struct imap_session *s, const char *uids,
			       uint64_t offset, uint64_t len,
			       struct strbuf *cmd)
{
	if (!*uids || strspn(uids, "0123456789:,") != strlen(uids)) {
		imap_set_err(s, IMAP_ERR_BAD, EINVAL, "bad UID set");
		return -1;
	}
	strbuf_printf(cmd, "UID FETCH %s (BODY.PEEK[]<%llu.%llu>)", uids,
		      (unsigned long long)offset, (unsigned long long)len);
	if (strbuf_failed(cmd)) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	return 0;
}

/* After a body FETCH: a server that misplaced bytes is not to be
 * trusted with the next command either (the stream is in step). */
static int imap_fetch_body_done(struct imap_session *s,
				const struct imap_body_ctx *bc, int rc)
{
	if (bc->bad && imap_usable(s)) {
		imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
			     "%s sent a body piece that does not start at "
			     "byte %llu as asked",
			     s->cfg->host, (unsigned long long)bc->offset);
		rc = -1;
	}
	return rc;
}

int imap_fetch_body(struct imap_session *s, const char *uids, uint64_t offset,
		    uint64_t len,
		    void (*cb)(void *ctx, const struct imap_body_part *p),
		    void *ctx)
{
	struct imap_body_ctx bc = {cb, ctx, offset, false, false};
	struct strbuf cmd = {0};
	int rc;

	rc = imap_fetch_body_cmd(s, uids, offset, len, &cmd);
	if (rc == 0)
		rc = imap_run(s, cmd.data, imap_body_handler, &bc);
	strbuf_free(&cmd);
	return imap_fetch_body_done(s, &bc, rc);
}

/*
 * EXAMINE mailbox and the body FETCH in one write, so that a session
 * that had another mailbox selected costs one round trip, not two. The
 * EXAMINE's answer comes before any of the FETCH's, so its UIDVALIDITY
 * is known before a single piece is handed on: under another one, the
 * UIDs name other messages, and their pieces are dropped. A failed
 * EXAMINE leaves no mailbox selected, so the FETCH then fails too and
 * sends nothing.
 */
int imap_examine_fetch_body(struct imap_session *s, const char *mailbox,
			    uint32_t uidvalidity, const char *uids,
			    uint64_t offset, uint64_t len,
			    void (*cb)(void *ctx,
				       const struct imap_body_part *p),
			    void *ctx, bool *stale_r)
{
	struct imap_body_ctx bc = {cb, ctx, offset, false, false};
	struct strbuf ex = {0}, cmd = {0};
	struct imap_cmd c[2] = {{.h = NULL},
				{.h = imap_body_handler, .ctx = &bc}};
	struct imap_mailbox mb;
	int rc = -1;

	*stale_r = false;
	if (imap_fetch_body_cmd(s, uids, offset, len, &cmd) < 0 ||
	    imap_select_begin(s, mailbox, true, &ex) < 0)
		goto out;
	c[0].text = ex.data;
	c[1].text = cmd.data;
	if (imap_cmd_send(s, c, 2) < 0)
		goto out;
	if (imap_cmd_finish(s, c, 1) == 0 &&
	    imap_select_end(s, mailbox, true, &mb) == 0 &&
	    mb.uidvalidity != uidvalidity) {
		*stale_r = true;
		bc.drop = true;
	}
	rc = c[0].rc;
	if (imap_cmd_finish(s, c + 1, 1) < 0 && rc == 0)
		rc = -1;
	if (c[0].rc < 0)
		s->err = c[0].err; /* why the FETCH failed too */
	rc = imap_fetch_body_done(s, &bc, rc);
out:
	strbuf_free(&ex);
	strbuf_free(&cmd);
	return rc;
}

/* Finishes request i of imap_examine_fetch_body_many(): its EXAMINE
 * and FETCH (c[0], c[1]), each request with its own result, as
 * imap_examine_fetch_body() does for one. */
static void imap_body_many_finish(struct imap_session *s,
				  struct imap_body_req *r,
				  struct imap_body_ctx *bc, struct imap_cmd *c)
{
	struct imap_mailbox mb;

	r->stale = false;
	if (imap_cmd_finish(s, c, 1) == 0 &&
	    imap_select_end(s, r->mailbox, true, &mb) == 0 &&
	    mb.uidvalidity != r->uidvalidity) {
		r->stale = true;
		bc->drop = true;
	}
	r->rc = c[0].rc;
	if (imap_cmd_finish(s, c + 1, 1) < 0 && r->rc == 0)
		r->rc = -1;
	r->rc = imap_fetch_body_done(s, bc, r->rc);
	r->err = c[0].rc < 0 ? c[0].err : s->err;
}

int imap_examine_fetch_body_many(struct imap_session *s,
				 struct imap_body_req *r, size_t n)
{
	struct imap_body_ctx *bc = calloc(n ? n : 1, sizeof(*bc));
	struct strbuf *cmd = calloc(2 * n + 1, sizeof(*cmd));
	struct imap_cmd *c = calloc(2 * n + 1, sizeof(*c));
	size_t i;
	int rc = -1;

	if (!bc || !cmd || !c) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		bc[i] = (struct imap_body_ctx){r[i].cb, r[i].ctx, r[i].offset,
					       false, false};
		if (imap_fetch_body_cmd(s, r[i].uids, r[i].offset, r[i].len,
					&cmd[2 * i + 1]) < 0 ||
		    imap_select_begin(s, r[i].mailbox, true, &cmd[2 * i]) < 0)
			goto out;
		c[2 * i].text = cmd[2 * i].data;
		c[2 * i + 1] = (struct imap_cmd){.text = cmd[2 * i + 1].data,
						 .h = imap_body_handler,
						 .ctx = &bc[i]};
	}
	if (imap_cmd_send(s, c, 2 * n) < 0)
		goto out;
	/* Each mailbox's pieces are handed on as they come. */
	for (i = 0; i < n; i++) {
		if (i > 0)
			imap_select_forget(s, true);
		imap_body_many_finish(s, &r[i], &bc[i], c + 2 * i);
	}
	rc = imap_usable(s) ? 0 : -1;
out:
	for (i = 0; cmd && i < 2 * n; i++)
		strbuf_free(&cmd[i]);
	free(bc);
	free(cmd);
	free(c);
	return rc;
}

bool imap_internaldate(const struct imap_tok *t, time_t *t_r)
{
	return t && t->type == IMAP_TOK_STRING &&
	       imap_parse_date(t->str, t->len, t_r);
}

/* Context of imap_uid_fetch(). */
struct imap_items_ctx {
	bool (*cb)(void *ctx, uint32_t uid, const struct imap_tok *items);
	void *ctx;
};

/* Hands "* N FETCH (... UID u ...)" to the caller's callback. */
static bool imap_items_handler(void *ctx, struct imap_session *s,
			       const struct imap_resp *r)
{
	struct imap_items_ctx *ic = ctx;
	const struct imap_tok *l = imap_fetch_items(r);
	uint32_t uid = 0;
	size_t i;

	if (!l)
		return false;
	for (i = 0; i + 1 < l->n_items; i += 2)
		if (imap_tok_is(&l->items[i], "UID"))
			imap_tok_u32(&l->items[i + 1], &uid);
	if (uid == 0)
		return false;
	return ic->cb(ic->ctx, uid, l);
}

int imap_uid_fetch(struct imap_session *s, const char *set, const char *items,
		   bool (*cb)(void *ctx, uint32_t uid,
			      const struct imap_tok *items),
		   void *ctx)
{
	struct imap_items_ctx ic = {cb, ctx};
	struct strbuf cmd = {0};
	int rc;

	if (!*set || strspn(set, "0123456789:,*") != strlen(set) || !*items ||
	    strspn(items, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			  "0123456789.[]<> ()-") != strlen(items)) {
		imap_set_err(s, IMAP_ERR_BAD, EINVAL, "bad UID FETCH");
		return -1;
	}
	strbuf_printf(&cmd, "UID FETCH %s (UID %s)", set, items);
	if (strbuf_failed(&cmd)) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		rc = -1;
	} else {
		rc = imap_run(s, cmd.data, imap_items_handler, &ic);
	}
	strbuf_free(&cmd);
	return rc;
}

uint32_t imap_exists(const struct imap_session *s)
{
	return s->mb.exists;
}

/* True for one of the five system flags a client may set. */
static bool imap_system_flag(const char *flag)
{
	static const char *const flags[] = {"\\Answered", "\\Flagged",
					    "\\Deleted", "\\Seen", "\\Draft"};
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (strcasecmp(flag, flags[i]) == 0)
			return true;
	return false;
}

/* True for a keyword: a non-empty atom without the characters IMAP
 * forbids in one. */
static bool imap_keyword(const char *flag)
{
	const unsigned char *p = (const unsigned char *)flag;

	if (!*p || strlen(flag) > 200)
		return false;
	for (; *p; p++)
		if (!imap_atom_char(*p))
			return false;
	return true;
}

bool imap_flag_allowed(const struct imap_session *s, const char *flag)
{
	const char *perm = strbuf_str(&s->permflags);
	bool system = imap_system_flag(flag);
	size_t len = strlen(flag);
	const char *p;

	if (!system && !imap_keyword(flag))
		return false;
	if (!s->have_permflags)
		return true;
	for (p = perm; (p = strchr(p, ' ')) && p[1]; p++)
		if (strncasecmp(p + 1, flag, len) == 0 && p[1 + len] == ' ')
			return true;
	return !system && strstr(perm, " \\* ") != NULL;
}

/* Context of UID STORE: the message and the flags it reports. */
struct imap_store_ctx {
	uint32_t uid;
	struct strbuf flags;
	bool seen;
};

/* Takes "* N FETCH (UID u FLAGS (...))" for the stored message. */
static bool imap_store_handler(void *ctx, struct imap_session *s,
			       const struct imap_resp *r)
{
	struct imap_store_ctx *sc = ctx;
	const struct imap_tok *l = imap_fetch_items(r), *flags = NULL;
	uint32_t uid = 0;
	size_t i;

	if (!l)
		return false;
	for (i = 0; i + 1 < l->n_items; i += 2) {
		if (imap_tok_is(&l->items[i], "UID"))
			imap_tok_u32(&l->items[i + 1], &uid);
		else if (imap_tok_is(&l->items[i], "FLAGS") &&
			 l->items[i + 1].type == IMAP_TOK_LIST)
			flags = &l->items[i + 1];
	}
	if (uid != sc->uid || !flags)
		return false;
	strbuf_reset(&sc->flags);
	for (i = 0; i < flags->n_items; i++) {
		const struct imap_tok *f = &flags->items[i];

		if (!imap_flag_token(f, false) || imap_tok_is(f, "\\Recent"))
			continue;
		if (sc->flags.len)
			strbuf_puts(&sc->flags, " ");
		strbuf_append(&sc->flags, f->str, f->len);
	}
	sc->seen = true;
	return true;
}

int imap_store_flags(struct imap_session *s, uint32_t uid, const char *flags,
		     char **result_r)
{
	return imap_store_flags_mode(s, uid, 0, flags, result_r);
}

int imap_store_flags_mode(struct imap_session *s, uint32_t uid, char mode,
			  const char *flags, char **result_r)
{
	struct imap_store_ctx sc = {uid, {0}, false};
	struct strbuf cmd = {0};
	int rc;

	*result_r = NULL;
	if (mode)
		strbuf_printf(&cmd, "UID STORE %u %cFLAGS (%s)", uid, mode,
			      flags);
	else
		strbuf_printf(&cmd, "UID STORE %u FLAGS (%s)", uid, flags);
	if (strbuf_failed(&cmd)) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	rc = imap_run(s, cmd.data, imap_store_handler, &sc);
	strbuf_free(&cmd);
	if (rc == 0 && sc.seen) {
		*result_r = strdup(strbuf_str(&sc.flags));
		if (!*result_r) {
			imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM,
				     "out of memory");
			rc = -1;
		}
	}
	strbuf_free(&sc.flags);
	return rc;
}

/* Runs "VERB <quoted mailbox>" or "VERB <mailbox> <mailbox>". */
static int imap_run_mailboxes(struct imap_session *s, const char *verb,
			      const char *a, const char *b)
{
	struct strbuf cmd = {0};
	bool ok;
	int rc;

	strbuf_puts(&cmd, verb);
	strbuf_puts(&cmd, " ");
	ok = imap_mailbox_arg(s, &cmd, a);
	if (ok && b) {
		strbuf_puts(&cmd, " ");
		ok = imap_mailbox_arg(s, &cmd, b);
	}
	if (!ok || strbuf_failed(&cmd)) {
		strbuf_free(&cmd);
		imap_set_err(s, IMAP_ERR_BAD, EINVAL,
			     "mailbox name cannot be sent");
		return -1;
	}
	rc = imap_run(s, cmd.data, NULL, NULL);
	strbuf_free(&cmd);
	return rc;
}

int imap_copy(struct imap_session *s, uint32_t uid, const char *target,
	      bool move, uint32_t *uid_r, uint32_t *uidvalidity_r)
{
	char verb[32];
	int rc;

	snprintf(verb, sizeof(verb), "UID %s %u", move ? "MOVE" : "COPY", uid);
	rc = imap_run_mailboxes(s, verb, target, NULL);
	/* A COPYUID for another source UID tells nothing of this one (the
	 * disk cache would re-key the body to the wrong message). */
	if (rc < 0 || s->copied_uid != uid)
		s->new_uid = s->new_uidvalidity = 0;
	*uid_r = s->new_uid;
	*uidvalidity_r = s->new_uidvalidity;
	return rc;
}

int imap_expunge_uid(struct imap_session *s, uint32_t uid)
{
	char cmd[64];

	if (!(s->caps & IMAP_CAP_UIDPLUS)) {
		imap_set_err(s, IMAP_ERR_NO, EPERM,
			     "%s lacks UIDPLUS: cannot expunge one message "
			     "without expunging others",
			     s->cfg->host);
		snprintf(s->err.code, sizeof(s->err.code), "CANNOT");
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "UID STORE %u +FLAGS.SILENT (\\Deleted)",
		 uid);
	if (imap_run(s, cmd, NULL, NULL) < 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "UID EXPUNGE %u", uid);
	return imap_run(s, cmd, NULL, NULL);
}

int imap_unselect(struct imap_session *s)
{
	int rc;

	if (s->state != IMAP_STATE_SELECTED)
		return 0;
	if (s->caps & IMAP_CAP_UNSELECT) {
		rc = imap_run(s, "UNSELECT", NULL, NULL);
	} else {
		/* A failed EXAMINE leaves no mailbox selected, and unlike
		 * CLOSE it never expunges. */
		imap_run(s, "EXAMINE \"\"", NULL, NULL);
		rc = imap_usable(s) ? 0 : -1;
	}
	if (rc == 0)
		imap_left_mailbox(s);
	return rc;
}

int imap_create(struct imap_session *s, const char *mailbox)
{
	return imap_run_mailboxes(s, "CREATE", mailbox, NULL);
}

int imap_delete(struct imap_session *s, const char *mailbox)
{
	if (s->selected && strcmp(s->selected, mailbox) == 0 &&
	    imap_unselect(s) < 0)
		return -1;
	return imap_run_mailboxes(s, "DELETE", mailbox, NULL);
}

int imap_rename(struct imap_session *s, const char *from, const char *to)
{
	if (s->selected && strcmp(s->selected, from) == 0 &&
	    imap_unselect(s) < 0)
		return -1;
	return imap_run_mailboxes(s, "RENAME", from, to);
}

/* Streams size bytes from read() to the server as literal data; any
 * shortfall breaks the session, so the server never stores a partial
 * message. */
static int imap_send_stream(struct imap_session *s, uint64_t size,
			    long (*read)(void *ctx, char *buf, size_t len),
			    void *ctx)
{
	char *buf = malloc(IMAP_READ_BUF);
	uint64_t sent = 0;
	int rc = -1;

	if (!buf) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	while (sent < size) {
		size_t want = size - sent < IMAP_READ_BUF
				      ? (size_t)(size - sent)
				      : IMAP_READ_BUF;
		long n = read(ctx, buf, want);

		if (n <= 0 || (size_t)n > want) {
			imap_set_err(s, IMAP_ERR_NET, EIO,
				     "message data ended early");
			goto out;
		}
		if (imap_write(s, buf, (size_t)n) < 0)
			goto out;
		sent += (uint64_t)n;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

int imap_append(struct imap_session *s, const char *mailbox, const char *flags,
		time_t date, uint64_t size,
		long (*read)(void *ctx, char *buf, size_t len), void *ctx,
		uint32_t *uid_r, uint32_t *uidvalidity_r)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct strbuf cmd = {0};
	bool plus = s->caps & IMAP_CAP_LITERALPLUS;
	char tag[16];
	struct tm tm;
	int rc = -1;

	*uid_r = *uidvalidity_r = 0;
	if (s->state == IMAP_STATE_BROKEN) {
		imap_set_err(s, IMAP_ERR_NET, ENOTCONN,
			     "connection to %s is broken", s->cfg->host);
		return -1;
	}
	snprintf(tag, sizeof(tag), "M%u", ++s->next_tag);
	s->err.kind = IMAP_ERR_NONE;
	s->new_uid = s->new_uidvalidity = s->copied_uid = 0;
	strbuf_printf(&cmd, "%s APPEND ", tag);
	if (!imap_mailbox_arg(s, &cmd, mailbox)) {
		imap_set_err(s, IMAP_ERR_BAD, EINVAL,
			     "mailbox name cannot be sent");
		goto out;
	}
	if (flags && *flags)
		strbuf_printf(&cmd, " (%s)", flags);
	if (date && gmtime_r(&date, &tm))
		strbuf_printf(&cmd, " \"%02d-%.3s-%04d %02d:%02d:%02d +0000\"",
			      tm.tm_mday, months + 3 * tm.tm_mon,
			      tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
			      tm.tm_sec);
	strbuf_printf(&cmd, " {%llu%s}\r\n", (unsigned long long)size,
		      plus ? "+" : "");
	if (strbuf_failed(&cmd)) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	log_debug("C: %.*s", (int)cmd.len - 2, cmd.data);
	if (imap_write(s, cmd.data, cmd.len) < 0)
		goto out;
	if (!plus && imap_wait_continue(s, tag, NULL, NULL) < 0)
		goto out;
	if (imap_send_stream(s, size, read, ctx) < 0 ||
	    imap_write(s, "\r\n", 2) < 0)
		goto out;
	rc = imap_wait(s, tag, NULL, NULL);
	if (rc == 0) {
		*uid_r = s->new_uid;
		*uidvalidity_r = s->new_uidvalidity;
	}
out:
	strbuf_free(&cmd);
	return rc;
}

/* Collects the UIDs of one UID SEARCH: "* SEARCH n ..." or, with
 * RETURN (ALL), "* ESEARCH (TAG "t") UID ALL set". */
struct imap_search_ctx {
	const char *tag; /* the command's tag, for ESEARCH's TAG */
	struct imap_search_result *res;
	size_t cap, max;
	bool nomem;
};

/* Adds the UIDs of a "* SEARCH" response (numbers, and a "(MODSEQ n)"
 * that a CONDSTORE server may append, which is skipped). */
static void imap_search_plain(struct imap_search_ctx *c,
			      const struct imap_resp *r)
{
	struct imap_search_result *res = c->res;
	size_t i;
	uint32_t uid;

	for (i = 1; i < r->n_toks; i++) {
		if (!imap_tok_u32(&r->toks[i], &uid) || uid == 0)
			continue;
		if (res->n >= c->max) {
			res->cut = true;
			return;
		}
		if (res->n == c->cap) {
			size_t nc = c->cap ? 2 * c->cap : 64;
			uint32_t *nu = realloc(res->uids, nc * sizeof(*nu));

			if (!nu) {
				c->nomem = true;
				return;
			}
			res->uids = nu;
			c->cap = nc;
		}
		res->uids[res->n++] = uid;
	}
}

/* Takes "* ESEARCH [(TAG "t")] [UID] (name value)*" when it answers
 * this command; only ALL carries UIDs (MIN, MAX, COUNT are skipped). */
static bool imap_search_esearch(struct imap_search_ctx *c,
				const struct imap_resp *r)
{
	size_t i = 1;
	const struct imap_tok *t;
	int rc;

	if (i < r->n_toks && r->toks[i].type == IMAP_TOK_LIST) {
		t = &r->toks[i];
		if (t->n_items != 2 || !imap_tok_is(&t->items[0], "TAG") ||
		    t->items[1].type != IMAP_TOK_STRING ||
		    strcmp(t->items[1].str, c->tag) != 0)
			return false; /* another command's */
		i++;
	}
	if (i < r->n_toks && imap_tok_is(&r->toks[i], "UID"))
		i++;
	for (; i + 1 < r->n_toks; i += 2) {
		if (!imap_tok_is(&r->toks[i], "ALL"))
			continue;
		t = &r->toks[i + 1];
		if (t->type != IMAP_TOK_ATOM)
			continue;
		rc = search_uid_set(t->str, t->len, &c->res->uids, &c->res->n,
				    &c->cap, c->max);
		if (rc == 1)
			c->res->cut = true;
		else if (rc < 0) /* out of memory, or malformed: no answer */
			c->nomem = true;
	}
	return true;
}

static bool imap_search_handler(void *ctx, struct imap_session *s,
				const struct imap_resp *r)
{
	struct imap_search_ctx *c = ctx;

	if (r->status != IMAP_STATUS_NONE || r->n_toks < 1)
		return false;
	if (imap_tok_is(&r->toks[0], "SEARCH")) {
		imap_search_plain(c, r);
		return true;
	}
	if (imap_tok_is(&r->toks[0], "ESEARCH"))
		return imap_search_esearch(c, r);
	return false;
}

static int imap_search_u32cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts a result and drops repeats (a server may send SEARCH in any
 * order, or in several responses). */
static void imap_search_tidy(struct imap_search_result *res)
{
	size_t i, o = 0;

	if (res->n > 1)
		qsort(res->uids, res->n, sizeof(*res->uids),
		      imap_search_u32cmp);
	for (i = 0; i < res->n; i++)
		if (o == 0 || res->uids[o - 1] != res->uids[i])
			res->uids[o++] = res->uids[i];
	res->n = o;
}

void imap_search_result_clear(struct imap_search_result *res)
{
	free(res->uids);
	memset(res, 0, sizeof(*res));
}

/* "UID SEARCH [RETURN (ALL)] " for this session. */
static const char *imap_search_verb(const struct imap_session *s)
{
	return (s->caps & IMAP_CAP_ESEARCH) ? "UID SEARCH RETURN (ALL) "
					    : "UID SEARCH ";
}

int imap_uid_search(struct imap_session *s, const struct search_query *q,
		    size_t max, struct imap_search_result *res)
{
	struct imap_search_ctx c = {.res = res, .max = max};
	struct search_wire w;
	struct imap_part *parts = NULL;
	char tag[16], trace[640];
	size_t i;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (search_emit(q, &w) < 0) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	parts = calloc(w.n + 1, sizeof(*parts));
	if (!parts) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	parts[0].data = imap_search_verb(s);
	parts[0].len = strlen(parts[0].data);
	for (i = 0; i < w.n; i++) {
		parts[i + 1].data = w.text.data + w.parts[i].off;
		parts[i + 1].len = w.parts[i].len;
		parts[i + 1].literal = w.parts[i].literal;
	}
	i = (size_t)snprintf(trace, sizeof(trace), "%s", parts[0].data);
	search_wire_render(&w, false, trace + i, sizeof(trace) - i);
	/* The tag imap_run_parts() will use, for ESEARCH's TAG. */
	snprintf(tag, sizeof(tag), "M%u", s->next_tag + 1);
	c.tag = tag;
	rc = imap_run_parts(s, parts, w.n + 1, trace, imap_search_handler, &c);
	if (rc == 0 && c.nomem) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM,
			     "out of memory, or a malformed ESEARCH");
		rc = -1;
	}
out:
	free(parts);
	search_wire_free(&w);
	if (rc < 0)
		imap_search_result_clear(res);
	else
		imap_search_tidy(res);
	return rc;
}

/*
 * Appends "tag UID SEARCH ... \r\n" with every literal non-synchronising,
 * so that it can be pipelined. False when a literal cannot go so
 * (neither LITERAL+ nor LITERAL- for its size).
 */
static bool imap_search_line(const struct imap_session *s, const char *tag,
			     const struct search_wire *w, struct strbuf *out)
{
	size_t i;

	strbuf_printf(out, "%s %s", tag, imap_search_verb(s));
	for (i = 0; i < w->n; i++) {
		const struct search_part *p = &w->parts[i];

		if (p->literal) {
			if (!(s->caps & IMAP_CAP_LITERALPLUS) &&
			    !((s->caps & IMAP_CAP_LITERALMINUS) &&
			      p->len <= 4096))
				return false;
			strbuf_printf(out, "{%zu+}\r\n", p->len);
		}
		strbuf_append(out, w->text.data + p->off, p->len);
	}
	strbuf_puts(out, "\r\n");
	return true;
}

/* The most commands bytes written ahead of reading in one pipelined
 * batch, so that neither side can block the other on full buffers. */
#define IMAP_SEARCH_BATCH_BYTES (16 * 1024)

/* Reads the answers of one pipelined EXAMINE + UID SEARCH pair into res.
 * Returns -1 only when the session broke. */
static int imap_search_pair(struct imap_session *s, const char *mailbox,
			    const char *tag1, const char *tag2, size_t max,
			    struct imap_search_result *res)
{
	struct imap_search_ctx c = {.tag = tag2, .res = res, .max = max};
	struct strbuf scratch = {0};
	int rc;

	/* Forget the previous mailbox's state before this one's arrives. */
	rc = imap_select_begin(s, mailbox, true, &scratch);
	strbuf_free(&scratch);
	if (rc == 0)
		rc = imap_wait(s, tag1, NULL, NULL);
	if (rc == 0)
		rc = imap_select_end(s, mailbox, true, &res->mb);
	if (rc < 0) {
		res->failed = true;
		res->err = s->err;
	}
	if (!imap_usable(s))
		return -1;
	rc = imap_wait(s, tag2, imap_search_handler, &c);
	if (rc < 0 && !res->failed) {
		res->failed = true;
		res->err = s->err;
	}
	if (c.nomem && !res->failed) {
		res->failed = true;
		res->err.kind = IMAP_ERR_NOMEM;
		snprintf(res->err.text, sizeof(res->err.text),
			 "out of memory, or a malformed ESEARCH");
	}
	if (res->failed) {
		free(res->uids);
		res->uids = NULL;
		res->n = 0;
	} else {
		imap_search_tidy(res);
	}
	return imap_usable(s) ? 0 : -1;
}

/* Sends one batch of EXAMINE + UID SEARCH pairs for mailboxes [*i, n)
 * and reads their answers; *i moves past the batch. */
static int imap_search_batch(struct imap_session *s,
			     const char *const *mailboxes, size_t n, size_t *i,
			     const struct search_wire *w, size_t max,
			     struct imap_search_result *results)
{
	struct strbuf out = {0}, cmd = {0};
	size_t first = *i, j;
	char tags[2][16];
	unsigned tag0 = s->next_tag + 1;
	int rc = -1;

	for (j = first;
	     j < n && (j == first || out.len < IMAP_SEARCH_BATCH_BYTES); j++) {
		strbuf_reset(&cmd);
		if (imap_select_begin(s, mailboxes[j], true, &cmd) < 0) {
			results[j].failed = true; /* cannot be sent */
			results[j].err = s->err;
			continue;
		}
		snprintf(tags[0], 16, "M%u", ++s->next_tag);
		snprintf(tags[1], 16, "M%u", ++s->next_tag);
		strbuf_printf(&out, "%s %s\r\n", tags[0], strbuf_str(&cmd));
		imap_search_line(s, tags[1], w, &out);
		if (s->cfg->trace)
			log_debug("C: %s %s / %s UID SEARCH ...", tags[0],
				  strbuf_str(&cmd), tags[1]);
	}
	*i = j;
	if (strbuf_failed(&out)) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		goto out;
	}
	s->err.kind = IMAP_ERR_NONE;
	if (out.len && imap_write(s, out.data, out.len) < 0)
		goto out;
	for (j = first; j < *i; j++) {
		if (results[j].failed)
			continue; /* not sent */
		snprintf(tags[0], 16, "M%u", tag0++);
		snprintf(tags[1], 16, "M%u", tag0++);
		if (imap_search_pair(s, mailboxes[j], tags[0], tags[1], max,
				     &results[j]) < 0)
			goto out;
	}
	rc = 0;
out:
	strbuf_free(&cmd);
	strbuf_free(&out);
	return rc;
}

int imap_search_mailboxes(struct imap_session *s, const char *const *mailboxes,
			  size_t n, const struct search_query *q, size_t max,
			  struct imap_search_result *results)
{
	struct search_wire w;
	struct strbuf probe = {0};
	struct imap_mailbox mb = {0};
	size_t i = 0;
	bool pipelined;
	int rc = 0;

	memset(results, 0, n * sizeof(*results));
	if (search_emit(q, &w) < 0) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	pipelined = imap_search_line(s, "M0", &w, &probe);
	strbuf_free(&probe);
	while (rc == 0 && i < n) {
		if (pipelined) {
			rc = imap_search_batch(s, mailboxes, n, &i, &w, max,
					       results);
			continue;
		}
		/* Literals that need the server's "+": one at a time. */
		if (imap_select(s, mailboxes[i], true, true, &mb) < 0 ||
		    imap_uid_search(s, q, max, &results[i]) < 0) {
			results[i].failed = true;
			results[i].err = s->err;
		}
		results[i].mb = mb;
		rc = imap_usable(s) ? 0 : -1;
		i++;
	}
	search_wire_free(&w);
	return rc;
}
