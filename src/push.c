// SPDX-License-Identifier: GPL-2.0-or-later
/* push: IDLE on one folder in a thread of its own; see push.h. */
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

/* IDLE is renewed before servers' 30-minute inactivity limit. */
#define PUSH_IDLE_MS (25 * 60 * 1000)
/* Pause before reopening a session that failed. */
#define PUSH_RETRY_MS 5000

struct push {
	const struct imap_config *cfg; /* borrowed */
	char *folder;                  /* owned */
	void (*changed)(void *ctx, const char *folder);
	void *ctx;
	pthread_t thread;
	_Atomic bool stop;
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
	if (!(imap_caps(s) & IMAP_CAP_IDLE)) {
		log_info("push: the server has no IDLE; changes by other "
			 "clients show after -o refresh seconds");
		p->stop = true;
	} else if (imap_select(s, p->folder, true, false, &mb) == 0) {
		log_debug("push: idling on %s", p->folder);
		while (!p->stop &&
		       imap_idle(s, PUSH_IDLE_MS, push_stopping, p,
				 &changed) == 0) {
			if (changed)
				p->changed(p->ctx, p->folder);
		}
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
			void (*changed)(void *ctx, const char *folder),
			void *ctx)
{
	struct push *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->cfg = cfg;
	p->folder = strdup(folder);
	p->changed = changed;
	p->ctx = ctx;
	if (!p->folder || pthread_create(&p->thread, NULL, push_main, p)) {
		free(p->folder);
		free(p);
		return NULL;
	}
	return p;
}

void push_stop(struct push *p)
{
	if (!p)
		return;
	p->stop = true;
	pthread_join(p->thread, NULL);
	free(p->folder);
	free(p);
}
