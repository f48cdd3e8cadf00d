// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * imap_mailbox: mailboxes on one session: LIST (with SPECIAL-USE and
 * LIST-STATUS where offered), the attributes of one mailbox, SELECT and
 * EXAMINE and the selection they leave, UNSELECT, CREATE, DELETE and
 * RENAME. See imap.h for the contract.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"
#include "imap_parse.h"
#include "imap_priv.h"
#include "log.h"
#include "strbuf.h"

/* Context of a LIST command. */
struct imap_mailbox_list_ctx {
	void (*cb)(void *ctx, const struct imap_list_entry *e);
	void *ctx;
};

/* "* STATUS name (MESSAGES n UIDNEXT u ...)" after a LIST line
 * (LIST-STATUS); an item that does not parse counts as not told. */
static bool imap_mailbox_list_status(struct imap_mailbox_list_ctx *lc,
				     const struct imap_resp *r)
{
	const struct imap_tok *l = &r->toks[2];
	struct imap_list_entry e = {.status_only = true};
	bool have_messages = false;
	size_t i, len;

	e.name = imap_parse_tok_str(&r->toks[1], &len);
	if (!e.name || strlen(e.name) != len)
		return true;

	for (i = 0; i + 1 < l->n_items; i += 2) {
		const struct imap_tok *k = &l->items[i], *v = &l->items[i + 1];

		if (imap_parse_tok_is(k, "MESSAGES"))
			have_messages = imap_parse_tok_u32(v, &e.messages);
		else if (imap_parse_tok_is(k, "UIDNEXT") &&
			 !imap_parse_tok_u32(v, &e.uidnext))
			e.uidnext = 0;
		else if (imap_parse_tok_is(k, "UIDVALIDITY") &&
			 !imap_parse_tok_u32(v, &e.uidvalidity))
			e.uidvalidity = 0;
		else if (imap_parse_tok_is(k, "HIGHESTMODSEQ") &&
			 !imap_parse_tok_u64(v, &e.modseq))
			e.modseq = 0;
	}
	if (have_messages)
		lc->cb(lc->ctx, &e);
	return true;
}

/* Takes one "* LIST (attrs) delim name ..." response, and the STATUS
 * that LIST-STATUS sends after it. */
static bool imap_mailbox_list_handler(void *ctx, struct imap_session *s,
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
	struct imap_mailbox_list_ctx *lc = ctx;
	struct imap_list_entry e = {0};
	const struct imap_tok *t = r->toks;
	size_t i, j, len;

	if (imap_status_mailbox(r))
		return imap_mailbox_list_status(lc, r);
	if (r->status != IMAP_STATUS_NONE || r->n_toks < 4 ||
	    !imap_parse_tok_is(&t[0], "LIST"))
		return false;
	if (t[1].type != IMAP_TOK_LIST)
		return true;
	for (i = 0; i < t[1].n_items; i++)
		for (j = 0; j < sizeof(attrs) / sizeof(attrs[0]); j++)
			if (imap_parse_tok_is(&t[1].items[i], attrs[j].name))
				e.attrs |= attrs[j].bit;
	if (t[2].type == IMAP_TOK_STRING && t[2].len == 1)
		e.delim = t[2].str[0];
	else if (t[2].type != IMAP_TOK_NIL)
		return true;
	e.name = imap_parse_tok_str(&t[3], &len);
	/* A name with NUL, CR or LF could not be used in a command. */
	if (!e.name || len == 0 || strlen(e.name) != len ||
	    strpbrk(e.name, "\r\n"))
		return true;
	lc->cb(lc->ctx, &e);
	return true;
}

#define IMAP_LIST_PLAIN "LIST \"\" \"*\" RETURN ("
#define IMAP_LIST_SU "LIST \"\" \"*\" RETURN (SPECIAL-USE "
#define IMAP_LIST_STATUS "STATUS (MESSAGES UIDNEXT UIDVALIDITY))"
#define IMAP_LIST_STATUS_MODSEQ \
	"STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))"

/* The selected mailbox was left (UNSELECT). */
static void imap_mailbox_left(struct imap_session *s)
{
	free(s->selected);
	s->selected = NULL;
	imap_state_set(s, IMAP_STATE_AUTH);
}

/*
 * Runs a LIST that asks for STATUS. The STATUS of the selected mailbox
 * is the session's view of it, which another client's changes do not
 * reach until a command syncs it (Dovecot answers with the state the
 * view had): the mailbox is left first, UNSELECT sent in the same write
 * as the LIST.
 */
static int imap_mailbox_list_fresh(struct imap_session *s, const char *cmd,
				   struct imap_mailbox_list_ctx *lc)
{
	struct imap_cmd c[2] = {
		{.text = "UNSELECT"},
		{.text = cmd, .h = imap_mailbox_list_handler, .ctx = lc},
	};

	if (s->state != IMAP_STATE_SELECTED)
		return imap_run(s, cmd, imap_mailbox_list_handler, lc);
	if (!(s->caps & IMAP_CAP_UNSELECT)) {
		if (imap_mailbox_unselect(s) < 0)
			return -1;
		return imap_run(s, cmd, imap_mailbox_list_handler, lc);
	}
	imap_cmd_run(s, c, 2);
	if (c[0].rc == 0)
		imap_mailbox_left(s);
	if (c[1].rc == 0)
		return 0;
	s->err = c[1].err;
	return -1;
}

/* The LIST of every mailbox that a server of these capabilities is
 * asked, with what it can add to each line. */
static const char *imap_mailbox_list_text(unsigned caps)
{
	const char *cmd = "LIST \"\" \"*\"";

	if ((caps & IMAP_CAP_SPECIAL_USE) && (caps & IMAP_CAP_LIST_EXTENDED))
		cmd = "LIST \"\" \"*\" RETURN (SPECIAL-USE)";
	/* How many messages each folder holds, in the same answer: walks
	 * list ahead only folders of reasonable size. With UIDNEXT,
	 * UIDVALIDITY and HIGHESTMODSEQ, a saved listing of a folder
	 * that has not changed needs no command of its own
	 * (store_cache.c). */
	if ((caps & IMAP_CAP_LIST_STATUS) && (caps & IMAP_CAP_LIST_EXTENDED))
		cmd = (caps & IMAP_CAP_CONDSTORE)
			      ? ((caps & IMAP_CAP_SPECIAL_USE)
					 ? IMAP_LIST_SU IMAP_LIST_STATUS_MODSEQ
					 : IMAP_LIST_PLAIN
						   IMAP_LIST_STATUS_MODSEQ)
			      : ((caps & IMAP_CAP_SPECIAL_USE)
					 ? IMAP_LIST_SU IMAP_LIST_STATUS
					 : IMAP_LIST_PLAIN IMAP_LIST_STATUS);
	return cmd;
}

/* LIST of every mailbox, with what the server can add to each line. */
int imap_mailbox_list(struct imap_session *s,
		      void (*cb)(void *ctx, const struct imap_list_entry *e),
		      void *ctx)
{
	struct imap_mailbox_list_ctx lc = {cb, ctx};
	const char *cmd = imap_mailbox_list_text(s->caps);

	if ((s->caps & IMAP_CAP_LIST_STATUS) &&
	    (s->caps & IMAP_CAP_LIST_EXTENDED))
		return imap_mailbox_list_fresh(s, cmd, &lc);
	return imap_run(s, cmd, imap_mailbox_list_handler, &lc);
}

/*
 * imap_open() that lists every mailbox in the login's round trip
 * (imap_open_then()). The capabilities that decide the form of LIST are
 * known only from the login's answer, so the richest form goes out; its
 * answer counts only when it is the form imap_mailbox_list() would have
 * sent (a server without LIST-STATUS answers BAD, or lists without
 * states). A new session has no mailbox selected, so LIST-STATUS needs
 * no UNSELECT.
 */
int imap_open_listing(const struct imap_config *cfg, struct imap_session **s_r,
		      struct imap_error *err,
		      void (*cb)(void *ctx, const struct imap_list_entry *e),
		      void *ctx, bool *listed_r)
{
	struct imap_mailbox_list_ctx lc = {cb, ctx};
	const char *text = imap_mailbox_list_text(
		IMAP_CAP_LIST_STATUS | IMAP_CAP_LIST_EXTENDED |
		IMAP_CAP_CONDSTORE | IMAP_CAP_SPECIAL_USE);
	struct imap_cmd c = {
		.text = text, .h = imap_mailbox_list_handler, .ctx = &lc};

	*listed_r = false;
	if (imap_open_then(cfg, s_r, err, &c) < 0) {
		/* The session went out of step, or was closed, after the
		 * command went with the login: once more without it. Not
		 * after a refused login, nor a server that stopped
		 * answering (that would wait out a second timeout). */
		if (!c.tag[0] || err->unreachable ||
		    (err->kind != IMAP_ERR_PROTO &&
		     (err->kind != IMAP_ERR_NET || err->errnum == ETIMEDOUT)))
			return -1;
		log_info("%s: the session failed with a command sent along "
			 "with the login (%s): logging in again without",
			 cfg->host, err->text);
		return imap_open(cfg, s_r, err);
	}
	if (!c.tag[0])
		return 0;
	*listed_r = c.rc == 0 &&
		    strcmp(imap_mailbox_list_text((*s_r)->caps), text) == 0;
	if (!*listed_r)
		log_debug("the folder list sent with the login does not "
			  "serve: %s",
			  c.rc == 0 ? "another form is due" : c.err.text);
	return 0;
}

/* Keeps the attributes of the one mailbox asked for. */
struct imap_mailbox_attrs_ctx {
	const char *name;
	unsigned attrs;
	bool found;
};

/* Keeps the attributes of the mailbox asked for. */
static void imap_mailbox_attrs_cb(void *ctx, const struct imap_list_entry *e)
{
	struct imap_mailbox_attrs_ctx *ac = ctx;

	if (!e->status_only && strcmp(e->name, ac->name) == 0) {
		ac->attrs = e->attrs;
		ac->found = true;
	}
}

/* LIST of one mailbox: its attributes, NONEXISTENT when not listed. */
int imap_mailbox_attrs(struct imap_session *s, const char *mailbox,
		       unsigned *attrs_r)
{
	struct imap_mailbox_attrs_ctx ac = {mailbox, 0, false};
	struct imap_mailbox_list_ctx lc = {imap_mailbox_attrs_cb, &ac};
	struct strbuf cmd = {0};
	int rc;

	strbuf_puts(&cmd, "LIST \"\" ");
	if (!imap_arg_mailbox(s, &cmd, mailbox) || strbuf_failed(&cmd)) {
		strbuf_free(&cmd);
		imap_set_err(s, IMAP_ERR_BAD, EINVAL,
			     "mailbox name cannot be sent");
		return -1;
	}
	rc = imap_run(s, cmd.data, imap_mailbox_list_handler, &lc);
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
int imap_mailbox_select_begin(struct imap_session *s, const char *mailbox,
			      bool readonly, struct strbuf *cmd)
{
	strbuf_puts(cmd, readonly ? "EXAMINE " : "SELECT ");
	if (!imap_arg_mailbox(s, cmd, mailbox)) {
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
	imap_mailbox_select_forget(s, readonly);
	return 0;
}

/* Forgets the mailbox selected so far, as a SELECT or EXAMINE (readonly)
 * about to be sent does whatever its answer. */
void imap_mailbox_select_forget(struct imap_session *s, bool readonly)
{
	free(s->selected);
	s->selected = NULL;
	memset(&s->mb, 0, sizeof(s->mb));
	s->mb.readonly = readonly;
	s->have_permflags = false;
	strbuf_reset(&s->permflags);
	if (s->state == IMAP_STATE_SELECTED)
		imap_state_set(s, IMAP_STATE_AUTH);
}

/* Records a successful SELECT or EXAMINE. */
int imap_mailbox_select_end(struct imap_session *s, const char *mailbox,
			    bool readonly, struct imap_mailbox *mb_r)
{
	s->selected = strdup(mailbox);
	if (!s->selected) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM, "out of memory");
		return -1;
	}
	s->selected_ro = readonly;
	imap_state_set(s, IMAP_STATE_SELECTED);
	s->changed = false;
	*mb_r = s->mb;
	return 0;
}

/*
 * Finishes an EXAMINE sent as c[0] with FETCH commands after it: the
 * EXAMINE's result counts, and a FETCH that failed on an empty mailbox
 * ("1:*" upsets some servers) does not. Records the selection.
 */
int imap_mailbox_examine_done(struct imap_session *s, const char *mailbox,
			      struct imap_cmd *c, size_t n,
			      struct imap_mailbox *mb_r)
{
	size_t i;

	imap_cmd_finish(s, c, n);
	if (c[0].rc < 0) {
		s->err = c[0].err;
		return -1;
	}
	if (imap_mailbox_select_end(s, mailbox, true, mb_r) < 0)
		return -1;
	for (i = 1; i < n; i++) {
		if (c[i].rc < 0 && (s->mb.exists > 0 || !imap_usable(s))) {
			s->err = c[i].err;
			return -1;
		}
	}
	return 0;
}

/* SELECT or EXAMINE, skipped when the selection already suits. */
int imap_mailbox_select(struct imap_session *s, const char *mailbox,
			bool readonly, bool force, struct imap_mailbox *mb_r)
{
	struct strbuf cmd = {0};
	int rc;

	if (!force && s->selected && strcmp(s->selected, mailbox) == 0 &&
	    (readonly || !s->selected_ro) && s->state == IMAP_STATE_SELECTED) {
		*mb_r = s->mb;
		return 0;
	}
	rc = imap_mailbox_select_begin(s, mailbox, readonly, &cmd);
	if (rc == 0)
		rc = imap_run(s, strbuf_str(&cmd), NULL, NULL);
	strbuf_free(&cmd);
	if (rc < 0)
		return -1;
	return imap_mailbox_select_end(s, mailbox, readonly, mb_r);
}

/* The mailbox selected, or NULL. */
const char *imap_mailbox_selected(const struct imap_session *s)
{
	return s->state == IMAP_STATE_SELECTED ? s->selected : NULL;
}

/* Leaves the selected mailbox without expunging anything. */
int imap_mailbox_unselect(struct imap_session *s)
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
		imap_mailbox_left(s);
	return rc;
}

/* Runs "VERB <quoted mailbox>" or "VERB <mailbox> <mailbox>". */
int imap_mailbox_run(struct imap_session *s, const char *verb, const char *a,
		     const char *b)
{
	struct strbuf cmd = {0};
	bool ok;
	int rc;

	strbuf_puts(&cmd, verb);
	strbuf_puts(&cmd, " ");
	ok = imap_arg_mailbox(s, &cmd, a);
	if (ok && b) {
		strbuf_puts(&cmd, " ");
		ok = imap_arg_mailbox(s, &cmd, b);
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

/* CREATE mailbox. */
int imap_mailbox_create(struct imap_session *s, const char *mailbox)
{
	return imap_mailbox_run(s, "CREATE", mailbox, NULL);
}

/* DELETE mailbox, leaving it first if it is selected. */
int imap_mailbox_delete(struct imap_session *s, const char *mailbox)
{
	if (s->selected && strcmp(s->selected, mailbox) == 0 &&
	    imap_mailbox_unselect(s) < 0)
		return -1;
	return imap_mailbox_run(s, "DELETE", mailbox, NULL);
}

/* RENAME from to, leaving from first if it is selected. */
int imap_mailbox_rename(struct imap_session *s, const char *from,
			const char *to)
{
	if (s->selected && strcmp(s->selected, from) == 0 &&
	    imap_mailbox_unselect(s) < 0)
		return -1;
	return imap_mailbox_run(s, "RENAME", from, to);
}
