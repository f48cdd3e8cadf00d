// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * imap_search: UID SEARCH with a program of search.h, on the selected
 * mailbox or on many mailboxes (EXAMINE + UID SEARCH pairs, pipelined
 * when every literal can go without the server's "+"). See imap.h for
 * the contract.
 *
 * ESEARCH answers name the tag of their command: a handler knows it
 * from the command object, tagged when it is sent, before any answer
 * is read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap.h"
#include "imap_parse.h"
#include "imap_priv.h"
#include "search.h"
#include "strbuf.h"

/* Collects the UIDs of one UID SEARCH: "* SEARCH n ..." or, with
 * RETURN (ALL), "* ESEARCH (TAG "t") UID ALL set". */
struct imap_search_ctx {
	/* The command's tag (imap_cmd.tag), for ESEARCH's TAG. */
	const char *tag;
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
		if (!imap_parse_tok_u32(&r->toks[i], &uid) || uid == 0)
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
		if (t->n_items != 2 || !imap_parse_tok_is(&t->items[0], "TAG") ||
		    t->items[1].type != IMAP_TOK_STRING ||
		    strcmp(t->items[1].str, c->tag) != 0)
			return false; /* another command's */
		i++;
	}
	if (i < r->n_toks && imap_parse_tok_is(&r->toks[i], "UID"))
		i++;
	for (; i + 1 < r->n_toks; i += 2) {
		if (!imap_parse_tok_is(&r->toks[i], "ALL"))
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

/* Takes the SEARCH and ESEARCH answers of the command. */
static bool imap_search_handler(void *ctx, struct imap_session *s,
				const struct imap_resp *r)
{
	struct imap_search_ctx *c = ctx;

	if (r->status != IMAP_STATUS_NONE || r->n_toks < 1)
		return false;
	if (imap_parse_tok_is(&r->toks[0], "SEARCH")) {
		imap_search_plain(c, r);
		return true;
	}
	if (imap_parse_tok_is(&r->toks[0], "ESEARCH"))
		return imap_search_esearch(c, r);
	return false;
}

/* qsort() order of UIDs. */
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

/* Frees a result's UIDs and zeroes it. */
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

/*
 * The parts of "UID SEARCH [RETURN (ALL)] ..." for the wire form w
 * (pointing into it: it must outlive them), and its text for the trace
 * in trace (literals shown by size). NULL when out of memory.
 */
static struct imap_part *imap_search_parts(const struct imap_session *s,
					   const struct search_wire *w,
					   char *trace, size_t size)
{
	struct imap_part *parts = calloc(w->n + 1, sizeof(*parts));
	size_t i;

	if (!parts)
		return NULL;
	parts[0].data = imap_search_verb(s);
	parts[0].len = strlen(parts[0].data);
	for (i = 0; i < w->n; i++) {
		parts[i + 1].data = w->text.data + w->parts[i].off;
		parts[i + 1].len = w->parts[i].len;
		parts[i + 1].literal = w->parts[i].literal;
	}
	i = (size_t)snprintf(trace, size, "%s", parts[0].data);
	search_wire_render(w, false, trace + i, size - i);
	return parts;
}

/* True when every literal of w can go without the server's "+", so
 * that the search can be pipelined. */
static bool imap_search_pipelinable(const struct imap_session *s,
				    const struct search_wire *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		if (w->parts[i].literal &&
		    !imap_literal_plus(s, w->parts[i].len))
			return false;
	return true;
}

/* UID SEARCH of q on the selected mailbox. */
int imap_search_uid(struct imap_session *s, const struct search_query *q,
		    size_t max, struct imap_search_result *res)
{
	struct imap_search_ctx sc = {.res = res, .max = max};
	struct imap_cmd c = {.h = imap_search_handler, .ctx = &sc};
	struct search_wire w;
	char trace[640];
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (search_emit(q, &w) < 0) {
		imap_set_nomem(s);
		return -1;
	}
	c.parts = imap_search_parts(s, &w, trace, sizeof(trace));
	if (!c.parts) {
		imap_set_nomem(s);
		goto out;
	}
	c.n_parts = w.n + 1;
	c.trace = trace;
	sc.tag = c.tag; /* set when the command is sent */
	rc = imap_cmd_run(s, &c, 1);
	if (rc == 0 && sc.nomem) {
		imap_set_err(s, IMAP_ERR_NOMEM, ENOMEM,
			     "out of memory, or a malformed ESEARCH");
		rc = -1;
	}
out:
	free((void *)c.parts);
	search_wire_free(&w);
	if (rc < 0)
		imap_search_result_clear(res);
	else
		imap_search_tidy(res);
	return rc;
}

/* The most commands bytes written ahead of reading in one pipelined
 * batch, so that neither side can block the other on full buffers. */
#define IMAP_SEARCH_BATCH_BYTES (16 * 1024)

/* Reads the answers of one pipelined EXAMINE + UID SEARCH pair (c[0],
 * c[1]) into res. Returns -1 only when the session broke. */
static int imap_search_pair(struct imap_session *s, const char *mailbox,
			    struct imap_cmd *c, struct imap_search_result *res)
{
	struct imap_search_ctx *sc = c[1].ctx;
	int rc;

	/* Forget the previous mailbox's state before this one's arrives. */
	imap_mailbox_select_forget(s, true);
	rc = imap_cmd_finish(s, &c[0], 1);
	if (rc == 0)
		rc = imap_mailbox_select_end(s, mailbox, true, &res->mb);
	if (rc < 0) {
		res->failed = true;
		res->err = s->err;
	}
	if (!imap_usable(s))
		return -1;
	rc = imap_cmd_finish(s, &c[1], 1);
	if (rc < 0 && !res->failed) {
		res->failed = true;
		res->err = s->err;
	}
	if (sc->nomem && !res->failed) {
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

/* One mailbox of a pipelined batch: its EXAMINE's text and where its
 * search's answer goes. */
struct imap_search_one {
	struct strbuf ex;
	struct imap_search_ctx sc;
};

/* Sends one batch of EXAMINE + UID SEARCH pairs (the search as the
 * parts p) for mailboxes [*i, n) and reads their answers; *i moves
 * past the batch. */
static int imap_search_batch(struct imap_session *s,
			     const char *const *mailboxes, size_t n, size_t *i,
			     const struct imap_cmd *p, size_t max,
			     struct imap_search_result *results)
{
	size_t first = *i, j, k = 0, bytes = 0, sent;
	struct imap_search_one *one = calloc(n - first, sizeof(*one));
	struct imap_cmd *c = calloc(2 * (n - first), sizeof(*c));
	int rc = -1;

	if (!one || !c) {
		imap_set_nomem(s);
		goto out;
	}
	for (j = first;
	     j < n && (j == first || bytes < IMAP_SEARCH_BATCH_BYTES); j++) {
		struct imap_search_one *o = &one[j - first];

		if (imap_mailbox_select_begin(s, mailboxes[j], true, &o->ex) <
		    0) {
			results[j].failed = true; /* cannot be sent */
			results[j].err = s->err;
			continue;
		}
		o->sc = (struct imap_search_ctx){.res = &results[j],
						 .max = max};
		c[k] = (struct imap_cmd){.text = strbuf_str(&o->ex)};
		c[k + 1] = *p;
		c[k + 1].ctx = &o->sc;
		o->sc.tag = c[k + 1].tag; /* set when the command is sent */
		bytes += o->ex.len + p->n_parts * 16 + 32;
		k += 2;
	}
	*i = j;
	if (k && imap_cmd_send(s, c, k) < 0)
		goto out;
	for (j = first, sent = 0; j < *i; j++) {
		if (results[j].failed)
			continue; /* not sent */
		if (imap_search_pair(s, mailboxes[j], c + sent, &results[j]) <
		    0)
			goto out;
		sent += 2;
	}
	rc = 0;
out:
	for (j = 0; one && j < n - first; j++)
		strbuf_free(&one[j].ex);
	free(one);
	free(c);
	return rc;
}

/* EXAMINE and UID SEARCH of q in each of n mailboxes. */
int imap_search_mailboxes(struct imap_session *s, const char *const *mailboxes,
			  size_t n, const struct search_query *q, size_t max,
			  struct imap_search_result *results)
{
	struct imap_cmd p = {.h = imap_search_handler};
	struct search_wire w;
	struct imap_mailbox mb = {0};
	char trace[640];
	size_t i = 0;
	bool pipelined;
	int rc = 0;

	memset(results, 0, n * sizeof(*results));
	if (search_emit(q, &w) < 0) {
		imap_set_nomem(s);
		return -1;
	}
	pipelined = imap_search_pipelinable(s, &w);
	if (pipelined) {
		p.parts = imap_search_parts(s, &w, trace, sizeof(trace));
		p.n_parts = w.n + 1;
		p.trace = trace;
		if (!p.parts) {
			imap_set_nomem(s);
			rc = -1;
		}
	}
	while (rc == 0 && i < n) {
		if (pipelined) {
			rc = imap_search_batch(s, mailboxes, n, &i, &p, max,
					       results);
			continue;
		}
		/* Literals that need the server's "+": one at a time. */
		if (imap_mailbox_select(s, mailboxes[i], true, true, &mb) < 0 ||
		    imap_search_uid(s, q, max, &results[i]) < 0) {
			results[i].failed = true;
			results[i].err = s->err;
		}
		results[i].mb = mb;
		rc = imap_usable(s) ? 0 : -1;
		i++;
	}
	free((void *)p.parts);
	search_wire_free(&w);
	return rc;
}
