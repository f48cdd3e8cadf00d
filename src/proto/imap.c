// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * imap: one client session; see imap.h for the contract. This file is
 * the session's core (imap_priv.h says what the others do): its state,
 * reading responses, the command object, the untagged responses any
 * command may bring, opening and closing.
 *
 * Commands are written whole, then responses are read and fed to the
 * parser until the command's tagged completion. Untagged responses go
 * first to the command's handler and, unless it took them, to
 * imap_untagged(), which keeps the capability and mailbox state.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"
#include "imap_parse.h"
#include "imap_priv.h"
#include "log.h"
#include "login.h"
#include "net.h"
#include "strbuf.h"

/* Bound of the text of one response outside literals: LIST, FETCH and
 * SEARCH lines of a big mailbox stay well below it. */
#define IMAP_MAX_LINE (4 * 1024 * 1024)
#define IMAP_LOGOUT_TIMEOUT_MS 2000

/* The name of a state, for the log. */
static const char *imap_state_name(enum imap_state state)
{
	switch (state) {
	case IMAP_STATE_GREETING:
		return "greeting";
	case IMAP_STATE_NOT_AUTH:
		return "not authenticated";
	case IMAP_STATE_AUTH:
		return "authenticated";
	case IMAP_STATE_SELECTED:
		return "selected";
	case IMAP_STATE_BROKEN:
		return "broken";
	}
	return "?";
}

/* Moves the session to another state: the one place that does, so that
 * the debug log tells every transition. */
void imap_state_set(struct imap_session *s, enum imap_state state)
{
	if (s->state == state)
		return;
	log_debug("IMAP state %s -> %s", imap_state_name(s->state),
		  imap_state_name(state));
	s->state = state;
}

/* Records an error; connection and protocol errors also break the
 * session, since its stream can no longer be trusted to be in step. */
void imap_set_err(struct imap_session *s, enum imap_err_kind kind, int errnum,
		  const char *fmt, ...)
{
	va_list ap;

	s->err.kind = kind;
	s->err.errnum = errnum;
	s->err.code[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(s->err.text, sizeof(s->err.text), fmt, ap);
	va_end(ap);
	if (kind == IMAP_ERR_NET || kind == IMAP_ERR_PROTO)
		imap_state_set(s, IMAP_STATE_BROKEN);
}

/* Records running out of memory, the error said in the most places. */
void imap_set_nomem(struct imap_session *s)
{
	imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
}

/* Copies a server text (NULL: none) into buf keeping only printable
 * ASCII, so that a hostile server cannot put escape sequences on the
 * user's terminal. */
void imap_clean_text(char *buf, size_t size, const char *text)
{
	login_clean_text(buf, size, text ? text : "", text ? strlen(text) : 0);
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
int imap_read_resp(struct imap_session *s, const struct imap_resp **r_r)
{
	for (;;) {
		if (s->rpos < s->rlen) {
			size_t used = 0;
			int rc =
				imap_parse_feed(s->parser, s->rbuf + s->rpos,
						 s->rlen - s->rpos, &used, r_r);

			s->rpos += used;
			if (rc < 0) {
				imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
					     "bad response from %s: %s",
					     s->cfg->host,
					     imap_parse_error(s->parser));
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
			if (imap_parse_tok_is(&t[i], names[j].name))
				s->caps |= names[j].bit;
		if (strncasecmp(t[i].str, "AUTH=", 5) == 0)
			login_add_mech(s->mechs, sizeof(s->mechs), t[i].str + 5,
				       t[i].len - 5);
		if (strncasecmp(t[i].str, "APPENDLIMIT=", 12) == 0) {
			s->caps |= IMAP_CAP_APPENDLIMIT;
			s->appendlimit = strtoull(t[i].str + 12, NULL, 10);
		}
	}
}

/* True for an ATOM-CHAR of RFC 3501/9051: a CHAR that is not one of the
 * atom-specials ( ) { SP CTL % * " \ ]. */
bool imap_atom_char(unsigned char c)
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

/* Puts the flags of a FLAGS list into flags, space separated: those of
 * the grammar (imap_flag_token()) but \Recent, which is no flag to
 * keep. */
void imap_flags_take(struct strbuf *flags, const struct imap_tok *list)
{
	size_t i;

	for (i = 0; i < list->n_items; i++) {
		const struct imap_tok *f = &list->items[i];

		if (!imap_flag_token(f, false) || imap_parse_tok_is(f, "\\Recent"))
			continue;
		if (flags->len)
			strbuf_puts(flags, " ");
		strbuf_append(flags, f->str, f->len);
	}
}

/* Takes what a status response's code tells about the session. */
void imap_status_code(struct imap_session *s, const struct imap_resp *r)
{
	const struct imap_tok *c = r->code;
	uint64_t v;

	if (r->n_code == 0)
		return;
	if (imap_parse_tok_is(&c[0], "CAPABILITY"))
		imap_parse_caps(s, c + 1, r->n_code - 1);
	else if (r->n_code >= 2 && imap_parse_tok_is(&c[0], "UIDVALIDITY"))
		imap_parse_tok_u32(&c[1], &s->mb.uidvalidity);
	else if (r->n_code >= 2 && imap_parse_tok_is(&c[0], "UIDNEXT"))
		imap_parse_tok_u32(&c[1], &s->mb.uidnext);
	else if (r->n_code >= 2 && imap_parse_tok_is(&c[0], "HIGHESTMODSEQ") &&
		 imap_parse_tok_u64(&c[1], &v))
		s->mb.highestmodseq = v;
	else if (r->n_code == 4 && imap_parse_tok_is(&c[0], "COPYUID")) {
		/* Only single messages are copied, so the sets are UIDs. */
		if (!imap_parse_tok_u32(&c[1], &s->new_uidvalidity) ||
		    !imap_parse_tok_u32(&c[2], &s->copied_uid) ||
		    !imap_parse_tok_u32(&c[3], &s->new_uid))
			s->new_uidvalidity = s->new_uid = 0;
	} else if (r->n_code == 3 && imap_parse_tok_is(&c[0], "APPENDUID")) {
		if (!imap_parse_tok_u32(&c[1], &s->new_uidvalidity) ||
		    !imap_parse_tok_u32(&c[2], &s->new_uid))
			s->new_uidvalidity = s->new_uid = 0;
	} else if (r->n_code == 2 && imap_parse_tok_is(&c[0], "PERMANENTFLAGS") &&
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
	} else if (imap_parse_tok_is(&c[0], "READ-ONLY"))
		s->mb.readonly = true;
	else if (imap_parse_tok_is(&c[0], "READ-WRITE"))
		s->mb.readonly = false;
}

static bool imap_uid_count(const struct imap_tok *set, uint32_t *n_r);

/* Default handling of an untagged response no command handler took. */
void imap_untagged(struct imap_session *s, const struct imap_resp *r)
{
	uint32_t n;

	if (r->status != IMAP_STATUS_NONE) {
		if (r->status == IMAP_STATUS_BYE)
			s->bye = true;
		imap_status_code(s, r);
		return;
	}
	if (r->n_toks >= 1 && imap_parse_tok_is(&r->toks[0], "CAPABILITY")) {
		imap_parse_caps(s, r->toks + 1, r->n_toks - 1);
		return;
	}
	if (r->n_toks >= 2 && imap_parse_tok_u32(&r->toks[0], &n)) {
		if (imap_parse_tok_is(&r->toks[1], "EXISTS")) {
			if (n != s->mb.exists)
				s->changed = true;
			s->mb.exists = n;
		} else if (imap_parse_tok_is(&r->toks[1], "EXPUNGE")) {
			s->changed = true;
			if (s->mb.exists)
				s->mb.exists--;
		} else if (imap_parse_tok_is(&r->toks[1], "FETCH")) {
			s->changed = true; /* a flag changed under us */
		}
		return;
	}
	if (r->n_toks >= 1 && imap_parse_tok_is(&r->toks[0], "VANISHED")) {
		/* A live VANISHED (QRESYNC's EXPUNGE) lowers EXISTS;
		 * VANISHED (EARLIER) reports the past. */
		s->changed = true;
		if (r->n_toks == 2 && imap_uid_count(&r->toks[1], &n))
			s->mb.exists = n >= s->mb.exists ? 0 : s->mb.exists - n;
	}
}

/* Adds the UIDs lo..hi to the count at ctx. */
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
	    !imap_parse_uid_set(set->str, set->len, IMAP_MAX_UID_RANGES,
				imap_uid_count_cb, &n))
		return false;
	*n_r = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
	return true;
}

/* Sends bytes, turning a failure into a session error. */
int imap_net_write(struct imap_session *s, const void *data, size_t len)
{
	int rc = net_write(s->conn, data, len);

	if (rc < 0) {
		imap_set_err(s, IMAP_ERR_NET, -rc, "cannot write to %s: %s",
			     s->cfg->host, strerror(-rc));
		return -1;
	}
	return 0;
}

/* Sends what out holds and wipes it (it may hold a secret): -1 with
 * the session's error when it could not be built or sent. */
int imap_net_write_wipe(struct imap_session *s, struct strbuf *out)
{
	int rc = -1;

	if (strbuf_failed(out))
		imap_set_nomem(s);
	else
		rc = imap_net_write(s, out->data, out->len);
	strbuf_wipe(out);
	return rc;
}

/* True when a literal of len bytes may go without waiting for the
 * server's "+" (LITERAL+, or LITERAL- up to 4096 bytes). */
bool imap_literal_plus(const struct imap_session *s, size_t len)
{
	return (s->caps & IMAP_CAP_LITERALPLUS) ||
	       ((s->caps & IMAP_CAP_LITERALMINUS) && len <= 4096);
}

/*
 * Appends the parts of c from c->next_part on to out: text as it is,
 * literals as {N+} and their data, up to the end of the command (CRLF)
 * or to the header of a literal that must wait for the server's "+",
 * which leaves c pending on that part.
 */
static void imap_cmd_render(const struct imap_session *s, struct imap_cmd *c,
			    struct strbuf *out)
{
	const struct imap_part *p;
	bool plus;

	for (; c->next_part < c->n_parts; c->next_part++) {
		p = &c->parts[c->next_part];
		if (!p->literal) {
			strbuf_append(out, p->data, p->len);
			continue;
		}
		plus = imap_literal_plus(s, p->len);
		strbuf_printf(out, "{%zu%s}\r\n", p->len, plus ? "+" : "");
		if (!plus) {
			c->pending = true;
			return;
		}
		strbuf_append(out, p->data, p->len);
	}
	strbuf_puts(out, "\r\n");
	c->pending = false;
}

/* Writes a command to the debug trace, as its trace text when it has
 * one (a command with secrets or literals always does). */
static void imap_cmd_trace(const struct imap_session *s,
			   const struct imap_cmd *c)
{
	if (!s->cfg->trace)
		return;
	if (c->trace)
		log_debug("C: %s %s", c->tag, c->trace);
	else if (c->text)
		log_debug("C: %s %s", c->tag, c->text);
}

/* Tags the n commands and writes them in one go: the one place where
 * tags are minted. On failure every command is finished with the
 * session's error. */
int imap_cmd_send(struct imap_session *s, struct imap_cmd *c, size_t n)
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
		strbuf_printf(&out, "%s ", c[i].tag);
		if (c[i].parts) {
			c[i].next_part = 0;
			imap_cmd_render(s, &c[i], &out);
		} else {
			strbuf_puts(&out, c[i].text);
			strbuf_puts(&out, "\r\n");
		}
		imap_cmd_trace(s, &c[i]);
		if (c[i].pending && i + 1 < n) {
			imap_set_err(s, IMAP_ERR_BAD, EINVAL,
				     "a command waiting for the server's "
				     "go-ahead cannot be pipelined");
			goto out;
		}
	}
	if (strbuf_failed(&out)) {
		imap_set_nomem(s);
		goto out;
	}
	rc = imap_net_write(s, out.data, out.len);
out:
	/* A command may hold a secret (LOGIN, AUTHENTICATE). */
	strbuf_wipe(&out);
	for (i = 0; rc < 0 && i < n; i++) {
		c[i].rc = -1;
		c[i].err = s->err;
	}
	return rc;
}

/* The server's "+" for a literal of c: sends its data and the rest of
 * the command, up to the next literal that must wait. */
static int imap_cmd_literal(struct imap_session *s, struct imap_cmd *c)
{
	const struct imap_part *p = &c->parts[c->next_part];
	struct strbuf out = {0};

	strbuf_append(&out, p->data, p->len);
	c->next_part++;
	imap_cmd_render(s, c, &out);
	return imap_net_write_wipe(s, &out);
}

/* A continuation request during c: the go-ahead for a literal's data,
 * or the command's own continuation handler's, or a protocol error. */
static int imap_cmd_cont(struct imap_session *s, struct imap_cmd *c,
			 const struct imap_resp *r)
{
	if (c->parts && c->pending)
		return imap_cmd_literal(s, c);
	if (c->cont)
		return c->cont(s, c, r);
	imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
		     "%s sent an unexpected continuation", s->cfg->host);
	return -1;
}

/* The tagged completion r of c: 0 for OK, else -1 with the error. A
 * completion while data still waits for the "+" is a refusal (or, as
 * OK, a protocol error). */
static int imap_cmd_done(struct imap_session *s, struct imap_cmd *c,
			 const struct imap_resp *r)
{
	if (strcmp(r->tag, c->tag) != 0) {
		imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
			     "%s answered an unknown tag", s->cfg->host);
		return -1;
	}
	s->done = r;
	if (c->pending) {
		if (r->status == IMAP_STATUS_OK)
			imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
				     "%s completed a command before its data",
				     s->cfg->host);
		else
			imap_set_status_err(s, r);
		return -1;
	}
	imap_status_code(s, r);
	if (r->status == IMAP_STATUS_OK)
		return 0;
	if (r->status == IMAP_STATUS_NO || r->status == IMAP_STATUS_BAD) {
		imap_set_status_err(s, r);
		return -1;
	}
	imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
		     "%s completed a command without OK, NO or BAD",
		     s->cfg->host);
	return -1;
}

/*
 * Reads the responses of c, a sent command, up to its tagged
 * completion: untagged ones go to its handler, a continuation request
 * to imap_cmd_cont(). The one loop that reads a command's answer.
 * Returns 0 (OK), -1 (the session's error says why), or 1 when the
 * continuation handler handed a "+" to the caller, who calls again to
 * go on.
 */
int imap_cmd_wait(struct imap_session *s, struct imap_cmd *c)
{
	const struct imap_resp *r;
	int rc;

	for (;;) {
		if (imap_read_resp(s, &r) < 0)
			return -1;
		if (r->kind == IMAP_RESP_UNTAGGED) {
			if (!c->h || !c->h(c->ctx, s, r))
				imap_untagged(s, r);
			continue;
		}
		if (r->kind != IMAP_RESP_CONTINUE)
			return imap_cmd_done(s, c, r);
		rc = imap_cmd_cont(s, c, r);
		if (rc != 0)
			return rc;
	}
}

/*
 * Reads the answers of n sent commands, in order, each through its own
 * handlers (none of which hands a "+" back). Every command is finished,
 * even after one failed, so that the session stays in step; once the
 * connection is lost the rest fail with that error. Returns 0 when all
 * succeeded; otherwise -1, with the session's error the first
 * failure's.
 */
int imap_cmd_finish(struct imap_session *s, struct imap_cmd *c, size_t n)
{
	const struct imap_error *first = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s->state == IMAP_STATE_BROKEN) {
			c[i].rc = -1;
			c[i].err = s->err;
		} else {
			s->err.kind = IMAP_ERR_NONE;
			c[i].rc = imap_cmd_wait(s, &c[i]) == 0 ? 0 : -1;
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
int imap_cmd_run(struct imap_session *s, struct imap_cmd *c, size_t n)
{
	if (imap_cmd_send(s, c, n) < 0)
		return -1;
	return imap_cmd_finish(s, c, n);
}

/* Runs a one-line command. */
int imap_run(struct imap_session *s, const char *cmd, imap_handler h, void *ctx)
{
	struct imap_cmd c = {.text = cmd, .h = h, .ctx = ctx};

	return imap_cmd_run(s, &c, 1);
}

/* Appends s as an IMAP quoted string; false when it cannot be one (it
 * holds CR, LF, NUL or 8-bit bytes) and must go as a literal. */
bool imap_quote(struct strbuf *b, const char *str)
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
bool imap_arg_mailbox(const struct imap_session *s, struct strbuf *b,
		      const char *name)
{
	size_t len = strlen(name);

	if (imap_quote(b, name))
		return true;
	if (!imap_literal_plus(s, len))
		return false;
	strbuf_printf(b, "{%zu+}\r\n", len);
	strbuf_append(b, name, len);
	return true;
}

/* Connects and logs in (imap_login_run()); on failure tells whether
 * the server was unreachable, for offline mode. */
int imap_open(const struct imap_config *cfg, struct imap_session **s_r,
	      struct imap_error *err)
{
	return imap_open_then(cfg, s_r, err, NULL);
}

int imap_open_then(const struct imap_config *cfg, struct imap_session **s_r,
		   struct imap_error *err, struct imap_cmd *then)
{
	struct imap_session *s;
	char msg[sizeof(err->text)];
	bool greeted = false;

	s = calloc(1, sizeof(*s));
	if (!s)
		goto fail_nomem;
	s->cfg = cfg;
	s->conn_id = log_conn_new();
	s->rbuf = malloc(IMAP_READ_BUF);
	s->parser = imap_parse_new(IMAP_MAX_LINE, cfg->max_literal);
	if (!s->rbuf || !s->parser)
		goto fail_free;
	s->conn = net_connect(cfg->host, cfg->port, cfg->timeout_ms, msg,
			      sizeof(msg));
	if (!s->conn) {
		imap_set_err(s, IMAP_ERR_NET, ECONNREFUSED, "%s", msg);
		goto fail_report;
	}
	s->then = then;
	if (imap_login_run(s, &greeted) < 0)
		goto fail_report;
	s->then = NULL;
	*s_r = s;
	return 0;

fail_report:
	*err = s->err;
	/* Unreachable: no connection (name, refusal, connect timeout), or
	 * one reset before the greeting; not a greeting that is slow to
	 * come, nor anything after it. */
	err->unreachable = !greeted && err->kind == IMAP_ERR_NET &&
			   (!s->conn || err->errnum != ETIMEDOUT);
	if (err->kind == IMAP_ERR_NET && err->errnum != ECONNREFUSED &&
	    strstr(err->text, cfg->host) == NULL) {
		snprintf(msg, sizeof(msg), "%s", err->text);
		snprintf(err->text, sizeof(err->text), "%.60s: %.180s",
			 cfg->host, msg);
	}
	net_close(s->conn);
	imap_parse_free(s->parser);
	free(s->rbuf);
	/* A PERMANENTFLAGS code in the greeting or in an untagged answer
	 * before the failure has filled it already. */
	strbuf_free(&s->permflags);
	free(s);
	return -1;
fail_free:
	imap_parse_free(s->parser);
	free(s->rbuf);
	free(s);
fail_nomem:
	memset(err, 0, sizeof(*err));
	err->kind = IMAP_ERR_NOMEM;
	err->errnum = ENOMEM;
	snprintf(err->text, sizeof(err->text), "out of memory");
	return -1;
}

/* Says LOGOUT (a bounded wait) on a usable session, then frees it. */
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
	imap_parse_free(s->parser);
	free(s->rbuf);
	free(s->selected);
	strbuf_free(&s->permflags);
	free(s);
	log_set_conn(0);
}

/* Whether commands may still go out: not broken, no BYE heard. */
bool imap_usable(const struct imap_session *s)
{
	return s->state != IMAP_STATE_BROKEN && !s->bye;
}

/* Whether the server hung up already, asked without waiting. */
bool imap_peer_gone(const struct imap_session *s)
{
	return !s->conn || net_peer_gone(s->conn);
}

/* The session's number in the log. */
unsigned imap_conn_id(const struct imap_session *s)
{
	return s->conn_id;
}

/* The capabilities (enum imap_cap) as last announced. */
unsigned imap_caps(const struct imap_session *s)
{
	return s->caps;
}

/* APPENDLIMIT in bytes, 0 when none was announced. */
uint64_t imap_appendlimit(const struct imap_session *s)
{
	return s->appendlimit;
}

/* Why the last command failed. */
const struct imap_error *imap_error(const struct imap_session *s)
{
	return &s->err;
}

/* EXISTS of the selected mailbox, as last reported. */
uint32_t imap_exists(const struct imap_session *s)
{
	return s->mb.exists;
}

/* The content identity a listing asks for (see imap.h). */
const char *imap_oid_kind(const struct imap_session *s)
{
	if (s->caps & IMAP_CAP_OBJECTID)
		return "EMAILID";
	if (s->caps & IMAP_CAP_X_GM_EXT_1)
		return "X-GM-MSGID";
	return NULL;
}

/* NOOP: keeps the session alive, collects mailbox changes. */
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
	    !imap_parse_tok_is(&r->toks[0], "QUOTA"))
		return false;
	l = &r->toks[r->n_toks - 1];
	if (l->type != IMAP_TOK_LIST || q->found)
		return true;
	for (i = 0; i + 2 < l->n_items; i += 3) {
		if (imap_parse_tok_is(&l->items[i], "STORAGE") &&
		    imap_parse_tok_u64(&l->items[i + 1], &q->used) &&
		    imap_parse_tok_u64(&l->items[i + 2], &q->limit)) {
			q->found = true;
			break;
		}
	}
	return true;
}

/* GETQUOTAROOT INBOX: the STORAGE figures of its first root. */
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
bool imap_date_parse(const char *str, size_t len, time_t *t_r)
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

/* An INTERNALDATE string token as a time (UTC). */
bool imap_internaldate(const struct imap_tok *t, time_t *t_r)
{
	return t && t->type == IMAP_TOK_STRING &&
	       imap_date_parse(t->str, t->len, t_r);
}

/* Returns the item list of a "* N FETCH (...)" response, or NULL. */
const struct imap_tok *imap_resp_fetch_items(const struct imap_resp *r)
{
	uint32_t seq;

	if (r->status != IMAP_STATUS_NONE || r->n_toks != 3 ||
	    !imap_parse_tok_u32(&r->toks[0], &seq) ||
	    !imap_parse_tok_is(&r->toks[1], "FETCH") ||
	    r->toks[2].type != IMAP_TOK_LIST || r->toks[2].n_items % 2)
		return NULL;
	return &r->toks[2];
}

/* "* STATUS mailbox (...)": the mailbox's name, or NULL. */
const char *imap_status_mailbox(const struct imap_resp *r)
{
	if (r->kind != IMAP_RESP_UNTAGGED || r->status != IMAP_STATUS_NONE ||
	    r->n_toks != 3 || !imap_parse_tok_is(&r->toks[0], "STATUS") ||
	    r->toks[2].type != IMAP_TOK_LIST)
		return NULL;
	return imap_parse_tok_str(&r->toks[1], NULL);
}
