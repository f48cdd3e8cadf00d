// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * imap_push: hearing of changes as they happen: IDLE (RFC 2177) on the
 * selected mailbox, and NOTIFY (RFC 5465) for every personal mailbox,
 * whose STATUS reports come during IDLE. See imap.h for the contract.
 *
 * IDLE is a command whose continuation request ("+ idling") starts the
 * wait: its continuation handler reads what the server reports until a
 * change, the end or a stop, then sends DONE, and the command's
 * completion is read as any other's.
 */
#include <errno.h>
#include <stdio.h>

#include "clock.h"
#include "imap.h"
#include "imap_parse.h"
#include "imap_priv.h"
#include "log.h"
#include "net.h"

/* Where NOTIFY's STATUS reports go while a command runs. */
struct imap_push_notify_ctx {
	void (*notified)(void *ctx, const char *mailbox);
	void *ctx;
};

/* One IDLE: where reports go, when it ends, who may stop it. */
struct imap_push_idle_ctx {
	struct imap_push_notify_ctx nc;
	bool (*stop)(void *ctx);
	long long end; /* clock_now_ms() */
};

/* Hands a NOTIFY report ("* STATUS mailbox (..)") to the callback. */
static bool imap_push_notify_handler(void *ctx, struct imap_session *s,
				     const struct imap_resp *r)
{
	struct imap_push_notify_ctx *nc = ctx;
	const char *mailbox = imap_status_mailbox(r);

	(void)s;
	if (!mailbox)
		return false;
	nc->notified(nc->ctx, mailbox);
	return true;
}

/*
 * IDLE's "+": idles, reading untagged responses until a change, the end
 * or a stop, then sends DONE; the command's completion (and a report
 * that comes before it) is then read by imap_cmd_wait().
 */
static int imap_push_idle_cont(struct imap_session *s, struct imap_cmd *c,
			       const struct imap_resp *r)
{
	struct imap_push_idle_ctx *ic = c->ctx;
	void *ctx = ic->nc.ctx;
	int rc;

	while (!s->changed && clock_now_ms() < ic->end &&
	       !(ic->stop && ic->stop(ctx))) {
		long long left = ic->end - clock_now_ms();

		rc = net_wait_readable(s->conn, left < 500 ? (int)left : 500);
		if (rc < 0) {
			imap_set_err(s, IMAP_ERR_NET, -rc,
				     "connection to %s lost while idling",
				     s->cfg->host);
			return -1;
		}
		if (rc == 0)
			continue;
		if (imap_read_resp(s, &r) < 0)
			return -1;
		if (r->kind != IMAP_RESP_UNTAGGED) {
			imap_set_err(s, IMAP_ERR_PROTO, EPROTO,
				     "%s ended IDLE on its own", s->cfg->host);
			return -1;
		}
		if (ic->nc.notified && imap_status_mailbox(r)) {
			ic->nc.notified(ctx, imap_status_mailbox(r));
			/* Dovecot 2.3 may hold back a change made while it
			 * reports another until DONE: IDLE ends a second
			 * after a report, so that the caller's next IDLE
			 * comes after a DONE that brings it. */
			if (ic->end > clock_now_ms() + 1000)
				ic->end = clock_now_ms() + 1000;
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
	c->pending = false;
	c->cont = NULL;
	c->h = ic->nc.notified ? imap_push_notify_handler : NULL;
	c->ctx = &ic->nc;
	return imap_net_write(s, "DONE\r\n", 6);
}

/* IDLE for at most max_ms, or until a change or a stop. */
int imap_push_idle(struct imap_session *s, int max_ms, bool (*stop)(void *ctx),
		   void (*notified)(void *ctx, const char *mailbox), void *ctx,
		   bool *changed_r)
{
	struct imap_push_idle_ctx ic = {
		{notified, ctx}, stop, clock_now_ms() + max_ms};
	struct imap_cmd c = {.text = "IDLE",
			     .pending = true,
			     .cont = imap_push_idle_cont,
			     .ctx = &ic};

	*changed_r = false;
	if (!(s->caps & IMAP_CAP_IDLE)) {
		imap_set_err(s, IMAP_ERR_BAD, ENOTSUP, "%s has no IDLE",
			     s->cfg->host);
		return -1;
	}
	s->changed = false;
	if (imap_cmd_send(s, &c, 1) < 0 || imap_cmd_wait(s, &c) != 0)
		return -1;
	*changed_r = s->changed;
	return 0;
}

/* NOTIFY SET for every personal mailbox: new, expunged and re-flagged
 * messages are reported as STATUS responses. */
int imap_push_notify_set(struct imap_session *s,
			 void (*notified)(void *ctx, const char *mailbox),
			 void *ctx)
{
	struct imap_push_notify_ctx nc = {notified, ctx};

	if (!(s->caps & IMAP_CAP_NOTIFY)) {
		imap_set_err(s, IMAP_ERR_BAD, ENOTSUP, "%s has no NOTIFY",
			     s->cfg->host);
		return -1;
	}
	/* A flag change in a folder not selected is reported (a STATUS
	 * with HIGHESTMODSEQ) only once CONDSTORE is on (RFC 5465, FlagChange):
	 * without it, only new and expunged messages would be heard of. */
	if ((s->caps & IMAP_CAP_CONDSTORE) &&
	    imap_run(s, "ENABLE CONDSTORE", NULL, NULL) < 0 && !imap_usable(s))
		return -1;
	return imap_run(s,
			"NOTIFY SET (personal (MessageNew MessageExpunge "
			"FlagChange))",
			imap_push_notify_handler, &nc);
}
