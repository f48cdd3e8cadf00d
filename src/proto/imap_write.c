// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * imap_net_write: changes to messages: flags (UID STORE, with the flags the
 * mailbox allows), UID MOVE and COPY, the expunge of one message, and
 * APPEND, whose message is streamed as a literal (after the server's
 * "+" unless LITERAL+). See imap.h for the contract.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap.h"
#include "imap_parse.h"
#include "imap_priv.h"
#include "strbuf.h"

/* True for one of the five system flags a client may set. */
static bool imap_write_system_flag(const char *flag)
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
static bool imap_write_keyword(const char *flag)
{
	const unsigned char *p = (const unsigned char *)flag;

	if (!*p || strlen(flag) > 200)
		return false;
	for (; *p; p++)
		if (!imap_atom_char(*p))
			return false;
	return true;
}

/* Whether flag may be stored in the selected mailbox. */
bool imap_write_flag_allowed(const struct imap_session *s, const char *flag)
{
	const char *perm = strbuf_str(&s->permflags);
	bool system = imap_write_system_flag(flag);
	size_t len = strlen(flag);
	const char *p;

	if (!system && !imap_write_keyword(flag))
		return false;
	if (!s->have_permflags)
		return true;
	for (p = perm; (p = strchr(p, ' ')) && p[1]; p++)
		if (strncasecmp(p + 1, flag, len) == 0 && p[1 + len] == ' ')
			return true;
	return !system && strstr(perm, " \\* ") != NULL;
}

/* Context of UID STORE: the message and the flags it reports. */
struct imap_write_store_ctx {
	uint32_t uid;
	struct strbuf flags;
	bool seen;
};

/* Takes "* N FETCH (UID u FLAGS (...))" for the stored message. */
static bool imap_write_store_handler(void *ctx, struct imap_session *s,
				     const struct imap_resp *r)
{
	struct imap_write_store_ctx *sc = ctx;
	const struct imap_tok *l = imap_resp_fetch_items(r), *flags = NULL;
	uint32_t uid = 0;
	size_t i;

	if (!l)
		return false;
	for (i = 0; i + 1 < l->n_items; i += 2) {
		if (imap_parse_tok_is(&l->items[i], "UID"))
			imap_parse_tok_u32(&l->items[i + 1], &uid);
		else if (imap_parse_tok_is(&l->items[i], "FLAGS") &&
			 l->items[i + 1].type == IMAP_TOK_LIST)
			flags = &l->items[i + 1];
	}
	if (uid != sc->uid || !flags)
		return false;
	strbuf_reset(&sc->flags);
	imap_flags_take(&sc->flags, flags);
	sc->seen = true;
	return true;
}

/* UID STORE FLAGS: replaces a message's flags. */
int imap_write_flags(struct imap_session *s, uint32_t uid, const char *flags,
		     char **result_r)
{
	return imap_write_flags_mode(s, uid, 0, flags, result_r);
}

/* UID STORE [+-]FLAGS: sets, adds or removes flags. */
int imap_write_flags_mode(struct imap_session *s, uint32_t uid, char mode,
			  const char *flags, char **result_r)
{
	struct imap_write_store_ctx sc = {uid, {0}, false};
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
	rc = imap_run(s, cmd.data, imap_write_store_handler, &sc);
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

/* UID MOVE or COPY of one message; COPYUID when it names it. */
int imap_write_copy(struct imap_session *s, uint32_t uid, const char *target,
		    bool move, uint32_t *uid_r, uint32_t *uidvalidity_r)
{
	char verb[32];
	int rc;

	snprintf(verb, sizeof(verb), "UID %s %u", move ? "MOVE" : "COPY", uid);
	rc = imap_mailbox_run(s, verb, target, NULL);
	/* A COPYUID for another source UID tells nothing of this one (the
	 * disk cache would re-key the body to the wrong message). */
	if (rc < 0 || s->copied_uid != uid)
		s->new_uid = s->new_uidvalidity = 0;
	*uid_r = s->new_uid;
	*uidvalidity_r = s->new_uidvalidity;
	return rc;
}

/* Expunges exactly one message (UIDPLUS's UID EXPUNGE). */
int imap_write_expunge(struct imap_session *s, uint32_t uid)
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

/* Streams size bytes from read() to the server as literal data; any
 * shortfall breaks the session, so the server never stores a partial
 * message. */
static int imap_write_stream(struct imap_session *s, uint64_t size,
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
		if (imap_net_write(s, buf, (size_t)n) < 0)
			goto out;
		sent += (uint64_t)n;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* What APPEND streams: size bytes from read(ctx, ...). */
struct imap_write_append_ctx {
	uint64_t size;
	long (*read)(void *ctx, char *buf, size_t len);
	void *ctx;
};

/* APPEND's "+" (under LITERAL+, right after the command goes): the
 * message, then the CRLF that ends the command. */
static int imap_write_append_data(struct imap_session *s, struct imap_cmd *c,
				  const struct imap_resp *r)
{
	struct imap_write_append_ctx *a = c->ctx;

	(void)r;
	c->pending = false;
	c->cont = NULL;
	if (imap_write_stream(s, a->size, a->read, a->ctx) < 0 ||
	    imap_net_write(s, "\r\n", 2) < 0)
		return -1;
	return 0;
}

/* APPEND of a message with its flags and date; APPENDUID when given. */
int imap_write_append(struct imap_session *s, const char *mailbox,
		      const char *flags, time_t date, uint64_t size,
		      long (*read)(void *ctx, char *buf, size_t len), void *ctx,
		      uint32_t *uid_r, uint32_t *uidvalidity_r)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct imap_write_append_ctx a = {size, read, ctx};
	struct imap_cmd c = {.ctx = &a};
	struct strbuf cmd = {0};
	bool plus = s->caps & IMAP_CAP_LITERALPLUS;
	struct tm tm;
	int rc = -1;

	*uid_r = *uidvalidity_r = 0;
	strbuf_puts(&cmd, "APPEND ");
	if (!imap_arg_mailbox(s, &cmd, mailbox)) {
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
	strbuf_printf(&cmd, " {%llu%s}", (unsigned long long)size,
		      plus ? "+" : "");
	if (strbuf_failed(&cmd)) {
		imap_set_nomem(s);
		goto out;
	}
	c.text = strbuf_str(&cmd);
	if (!plus) {
		c.pending = true;
		c.cont = imap_write_append_data;
	}
	if (imap_cmd_send(s, &c, 1) < 0 ||
	    (plus && imap_write_append_data(s, &c, NULL) < 0))
		goto out;
	rc = imap_cmd_wait(s, &c) == 0 ? 0 : -1;
	if (rc == 0) {
		*uid_r = s->new_uid;
		*uidvalidity_r = s->new_uidvalidity;
	}
out:
	strbuf_free(&cmd);
	return rc;
}
