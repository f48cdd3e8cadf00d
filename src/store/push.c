// SPDX-License-Identifier: GPL-2.0-or-later
/* push: NOTIFY for the folders in use, or IDLE on INBOX, in a thread of
 * its own; see push.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "imap.h"
#include "log.h"
#include "push.h"
#include "store.h"

/* IDLE is renewed before servers' 30-minute inactivity limit. */
#define PUSH_IDLE_MS (25 * 60 * 1000)
/* The first IDLE after NOTIFY SET ends this soon: Dovecot 2.3 holds back
 * a change made in the moments after NOTIFY SET (it came only at DONE),
 * and a DONE flushes it. */
#define PUSH_FIRST_IDLE_MS 1000
/* Pause before reopening a session that failed. */
#define PUSH_RETRY_MS 5000
/* Folders listed this recently are looked at again after a new push
 * session starts (changes in between were not reported). */
#define PUSH_RECENT_MS (10 * 60 * 1000)
/* At most this many of them (the most recently listed). */
#define PUSH_MAX_FOLDERS 256

/* A folder listed lately. */
struct push_folder {
	char *name; /* owned */
	long long at_ms; /* when last listed (clock_now_ms) */
};

struct push {
	const struct imap_config *cfg; /* borrowed */
	char *folder; /* owned: watched without NOTIFY */
	store_event_fn event;
	void *ctx;
	pthread_t thread;
	_Atomic bool stop;
	unsigned sessions; /* NOTIFY sessions so far (push thread only) */
	pthread_mutex_t lock; /* recent, n_recent */
	struct push_folder recent[PUSH_MAX_FOLDERS];
	size_t n_recent;
};

static bool push_stopping(void *ctx)
{
	struct push *p = ctx;

	return p->stop;
}

/* Sleeps ms, or less if asked to stop. */
static void push_pause(struct push *p, long ms)
{
	struct timespec ts = {0, 100 * 1000 * 1000};

	for (; ms > 0 && !p->stop; ms -= 100)
		nanosleep(&ts, NULL);
}

/* Sends an event of kind about folder up. */
static void push_event(struct push *p, enum store_event_kind kind,
		       const char *folder)
{
	struct store_event ev = {.kind = kind, .folder = folder};

	p->event(p->ctx, &ev);
}

/* A NOTIFY STATUS: another client changed mailbox. */
static void push_notified(void *ctx, const char *mailbox)
{
	struct push *p = ctx;

	log_debug("push: %s changed", mailbox);
	push_event(p, STORE_EVENT_CHANGED, mailbox);
}

void push_listed(struct push *p, const char *folder)
{
	long long now = clock_now_ms();
	size_t i, oldest = 0;
	char *name;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	for (i = 0; i < p->n_recent; i++) {
		if (strcmp(p->recent[i].name, folder) == 0) {
			p->recent[i].at_ms = now;
			pthread_mutex_unlock(&p->lock);
			return;
		}
		if (p->recent[i].at_ms < p->recent[oldest].at_ms)
			oldest = i;
	}
	name = strdup(folder);
	if (name) {
		if (p->n_recent == PUSH_MAX_FOLDERS)
			free(p->recent[oldest].name);
		else
			oldest = p->n_recent++;
		p->recent[oldest] =
			(struct push_folder){.name = name, .at_ms = now};
	}
	pthread_mutex_unlock(&p->lock);
}

/* Reports every folder listed lately as changed: what happened while no
 * session watched (before this one, or during a reconnection) was not
 * reported, so their listings are looked at again. */
static void push_recheck(struct push *p)
{
	char *names[PUSH_MAX_FOLDERS];
	long long now = clock_now_ms();
	size_t i, n = 0;

	pthread_mutex_lock(&p->lock);
	for (i = 0; i < p->n_recent; i++)
		if (now - p->recent[i].at_ms < PUSH_RECENT_MS &&
		    (names[n] = strdup(p->recent[i].name)))
			n++;
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < n; i++) {
		push_event(p, STORE_EVENT_CHANGED, names[i]);
		free(names[i]);
	}
}

/* With NOTIFY: one session, idling, hears of changes in every folder of
 * the account (a superset of the folders in use, set once: renewing the
 * set while idling lost reports on Dovecot 2.3). */
static void push_notify_loop(struct push *p, struct imap_session *s)
{
	bool changed;

	if (imap_push_notify_set(s, push_notified, p) < 0)
		return;
	log_debug("push: NOTIFY for every folder");
	push_event(p, STORE_EVENT_WATCHING, NULL);
	/* After a reconnection: what changed while no session watched. The
	 * first session starts with the mount, before listings matter. */
	if (p->sessions++ > 0)
		push_recheck(p);
	if (imap_push_idle(s, PUSH_FIRST_IDLE_MS, push_stopping, push_notified,
			   p, &changed) == 0)
		while (!p->stop &&
		       imap_push_idle(s, PUSH_IDLE_MS, push_stopping,
				      push_notified, p, &changed) == 0)
			;
	push_event(p, STORE_EVENT_BLIND, NULL);
}

/* One session: examine the folder, then IDLE until it fails or the
 * thread is asked to stop. */
static void push_session(struct push *p)
{
	struct imap_session *s;
	struct imap_mailbox mb;
	struct imap_error err;
	bool changed;

	if (imap_open(p->cfg, &s, &err) < 0) {
		log_debug("push: %s", err.text);
		return;
	}
	if ((imap_caps(s) & IMAP_CAP_NOTIFY) &&
	    (imap_caps(s) & IMAP_CAP_IDLE)) {
		push_notify_loop(p, s);
	} else if (!(imap_caps(s) & IMAP_CAP_IDLE)) {
		log_info("push: the server has no IDLE; changes by other "
			 "clients show after -o refresh seconds");
		p->stop = true;
	} else if (imap_mailbox_select(s, p->folder, true, false, &mb) == 0) {
		log_debug("push: idling on %s", p->folder);
		push_event(p, STORE_EVENT_WATCHING, p->folder);
		/* What changed before the IDLE began was not reported. */
		if (p->sessions++ > 0)
			push_event(p, STORE_EVENT_CHANGED, p->folder);
		while (!p->stop &&
		       imap_push_idle(s, PUSH_IDLE_MS, push_stopping, NULL, p,
				      &changed) == 0) {
			if (changed)
				push_event(p, STORE_EVENT_CHANGED, p->folder);
		}
		push_event(p, STORE_EVENT_BLIND, NULL);
	}
	if (!p->stop)
		log_debug("push: %s", imap_error(s)->text);
	imap_close(s);
}

static void *push_main(void *arg)
{
	struct push *p = arg;

	while (!p->stop) {
		push_session(p);
		push_pause(p, PUSH_RETRY_MS);
	}
	return NULL;
}

struct push *push_start(const struct imap_config *cfg, const char *folder,
			store_event_fn event, void *ctx)
{
	struct push *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->cfg = cfg;
	pthread_mutex_init(&p->lock, NULL);
	p->folder = strdup(folder);
	p->event = event;
	p->ctx = ctx;
	if (!p->folder || pthread_create(&p->thread, NULL, push_main, p)) {
		pthread_mutex_destroy(&p->lock);
		free(p->folder);
		free(p);
		return NULL;
	}
	pthread_setname_np(p->thread, "mailfs-push");
	return p;
}

void push_stop(struct push *p)
{
	if (!p)
		return;
	p->stop = true;
	pthread_join(p->thread, NULL);
	for (size_t i = 0; i < p->n_recent; i++)
		free(p->recent[i].name);
	pthread_mutex_destroy(&p->lock);
	free(p->folder);
	free(p);
}
