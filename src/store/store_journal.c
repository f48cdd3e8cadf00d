// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * store_journal: what store_cache does with the journal of offline
 * changes (journal.c keeps it on disk): showing the changes kept in a
 * listing (the overlay), finding the bytes of a message a kept change
 * put in a folder, and sending the changes to the server in order once
 * it can be reached (replay), with RFC 4549's conflict rules: a change
 * to a message or folder gone meanwhile is dropped with a log line, a
 * new message the server refuses is kept in the spool and counted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diskcache.h"
#include "journal.h"
#include "log.h"
#include "names.h"
#include "search.h"
#include "store.h"
#include "store_journal.h"

/* How many kept moves a message may have been through (a chain of
 * offline moves) before its bytes are looked for. */
#define STORE_JOURNAL_MAX_CHAIN 64

/* Whether an entry still changes what the mount shows: pending, or a
 * new message the server refused (kept in the spool, shown). */
static bool store_journal_live(const struct journal_entry *e)
{
	return journal_is_pending(e->state) ||
	       (e->state == JOURNAL_FAILED && e->kind == JOURNAL_APPEND);
}

/* The index of uid in a listing, or -1. */
static long store_journal_index(const struct store_listing *l, uint32_t uid)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->msgs[i].uid == uid)
			return (long)i;
	return -1;
}

static void store_journal_remove(struct store_listing *l, uint32_t uid)
{
	long i = store_journal_index(l, uid);

	if (i < 0)
		return;
	free(l->msgs[i].flags);
	free(l->msgs[i].name);
	free(l->msgs[i].ref);
	memmove(&l->msgs[i], &l->msgs[i + 1],
		(l->n - (size_t)i - 1) * sizeof(*l->msgs));
	l->n--;
}

/* Adds the message an entry put in the listing's folder. */
static int store_journal_add(struct store_listing *l,
			     const struct journal_entry *e)
{
	struct store_msg *m;

	if (store_journal_index(l, e->new_uid) >= 0)
		return 0;
	m = realloc(l->msgs, (l->n + 1) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	l->msgs = m;
	m = &l->msgs[l->n];
	memset(m, 0, sizeof(*m));
	m->uid = e->new_uid;
	m->size = e->size;
	m->date = (time_t)e->date;
	m->idhash = e->idhash;
	m->flags = strdup(e->flags ? e->flags : "");
	if (!m->flags)
		return -ENOMEM;
	l->n++;
	return 0;
}

static int store_journal_by_uid(const void *a, const void *b)
{
	const struct store_msg *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

int store_journal_overlay(struct journal *j, const char *folder,
			  struct store_listing *l)
{
	struct journal_entry *e;
	size_t n;
	int rc = 0;

	if (l->delta || journal_entries(j, &e, &n) < 0)
		return l->delta ? -EINVAL : -ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct journal_entry *x = &e[i];
		bool here = strcmp(x->folder, folder) == 0 &&
			    x->uidvalidity == l->uidvalidity;
		long k;

		if (!store_journal_live(x))
			continue;
		switch (x->kind) {
		case JOURNAL_FLAGS:
			k = here ? store_journal_index(l, x->uid) : -1;
			if (k >= 0) {
				char *f = journal_flags_apply(
					l->msgs[k].flags, x->add, x->remove);

				if (f) {
					free(l->msgs[k].flags);
					l->msgs[k].flags = f;
				}
			}
			break;
		case JOURNAL_MOVE:
			if (here)
				store_journal_remove(l, x->uid);
			if (strcmp(x->target, folder) == 0 &&
			    x->new_uidvalidity == l->uidvalidity && x->new_uid)
				rc = store_journal_add(l, x);
			break;
		case JOURNAL_EXPUNGE:
			if (here)
				store_journal_remove(l, x->uid);
			break;
		case JOURNAL_APPEND:
			if (strcmp(x->folder, folder) == 0 &&
			    x->new_uidvalidity == l->uidvalidity && x->new_uid)
				rc = store_journal_add(l, x);
			break;
		}
	}
	if (l->n)
		qsort(l->msgs, l->n, sizeof(*l->msgs), store_journal_by_uid);
	l->exists = (uint32_t)l->n;
	journal_entries_free(e, n);
	return rc;
}

bool store_journal_touches(struct journal *j, const char *folder)
{
	struct journal_entry *e;
	size_t n;
	bool hit = false;

	if (journal_entries(j, &e, &n) < 0)
		return true;
	for (size_t i = 0; i < n && !hit; i++)
		hit = store_journal_live(&e[i]) &&
		      (strcmp(e[i].folder, folder) == 0 ||
		       (e[i].target && strcmp(e[i].target, folder) == 0));
	journal_entries_free(e, n);
	return hit;
}

/* The entry that put uid in (folder, uidvalidity), or NULL. */
static const struct journal_entry *
store_journal_origin(const struct journal_entry *e, size_t n,
		     const char *folder, uint32_t uidvalidity, uint32_t uid)
{
	for (size_t i = n; i-- > 0;) {
		const struct journal_entry *x = &e[i];
		const char *where = x->kind == JOURNAL_MOVE	? x->target
				    : x->kind == JOURNAL_APPEND ? x->folder
								: NULL;

		if (where && x->new_uid == uid &&
		    x->new_uidvalidity == uidvalidity &&
		    strcmp(where, folder) == 0)
			return x;
	}
	return NULL;
}

int store_journal_body(struct journal *j, const char *folder,
		       uint32_t uidvalidity, uint32_t uid,
		       struct store_journal_src *src)
{
	struct journal_entry *e;
	const struct journal_entry *x;
	size_t n;
	int rc = -ENOENT, hops;

	memset(src, 0, sizeof(*src));
	src->fd = -1;
	if (uid < JOURNAL_UID_BASE)
		return 0;
	if (journal_entries(j, &e, &n) < 0)
		return -ENOMEM;
	for (hops = 0; hops < STORE_JOURNAL_MAX_CHAIN; hops++) {
		x = store_journal_origin(e, n, folder, uidvalidity, uid);
		if (!x)
			break;
		if (x->state == JOURNAL_DONE && x->real_uid) {
			/* The server has it now, where the change put it. */
			src->folder =
				strdup(x->kind == JOURNAL_MOVE ? x->target
							       : x->folder);
			src->uidvalidity = x->real_uidvalidity;
			src->uid = x->real_uid;
			rc = src->folder ? 1 : -ENOMEM;
			break;
		}
		if (x->kind == JOURNAL_APPEND) {
			src->fd = journal_spool_open(j, x->seq);
			src->size = x->size;
			rc = src->fd >= 0 ? 2 : src->fd;
			break;
		}
		if (!journal_is_pending(x->state))
			break; /* a move dropped or done without a UID */
		/* A pending move: the bytes are the source's. */
		folder = x->folder;
		uidvalidity = x->uidvalidity;
		uid = x->uid;
		if (uid < JOURNAL_UID_BASE) {
			src->folder = strdup(folder);
			src->uidvalidity = uidvalidity;
			src->uid = uid;
			rc = src->folder ? 1 : -ENOMEM;
			break;
		}
	}
	journal_entries_free(e, n);
	return rc;
}

void store_journal_src_clear(struct store_journal_src *src)
{
	free(src->folder);
	if (src->fd >= 0)
		close(src->fd);
	memset(src, 0, sizeof(*src));
	src->fd = -1;
}

/* ---------------------------------------------------------- replay */

/* Reads a spool file for APPEND. */
static long store_journal_read_fd(void *ctx, char *buf, size_t len)
{
	int fd = *(int *)ctx;
	ssize_t r;

	do
		r = read(fd, buf, len);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : (long)r;
}

/* The message's name as the default layout shows it, for log lines. */
static void store_journal_name(const struct journal_entry *e, char *buf)
{
	names_message(buf, (time_t)e->date, e->size, e->idhash, 0);
}

/*
 * Where the message an entry is about is on the server now: itself, or
 * when a kept change put it there (uid the mount gave), where the
 * server put it when that change was sent. False when that change did
 * not go through or the server told no UID.
 */
static bool store_journal_resolve(const struct journal_entry *e, size_t n,
				  const struct journal_entry *x,
				  uint32_t *uidvalidity_r, uint32_t *uid_r)
{
	const struct journal_entry *o;

	*uidvalidity_r = x->uidvalidity;
	*uid_r = x->uid;
	if (x->uid < JOURNAL_UID_BASE)
		return true;
	o = store_journal_origin(e, (size_t)(x - e), x->folder, x->uidvalidity,
				 x->uid);
	if (!o || o->state != JOURNAL_DONE || !o->real_uid)
		return false;
	*uidvalidity_r = o->real_uidvalidity;
	*uid_r = o->real_uid;
	return true;
}

/* The Message-ID value of a spool file's message (searched in its first
 * 64 KiB, up to the blank line), NULL when it has none. */
static char *store_journal_msgid(int fd)
{
	char *buf = malloc(65537), *p, *end, *id = NULL;
	ssize_t n = buf ? pread(fd, buf, 65536, 0) : -1;

	if (n <= 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	end = buf + n;
	for (p = buf; p < end && !id;) {
		char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t len = (eol ? eol : end) - p;

		if (len == 0 || (len == 1 && *p == '\r'))
			break; /* the header ends */
		if (len > 11 && strncasecmp(p, "Message-ID:", 11) == 0) {
			char *v = p + 11, *e = p + len;

			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			while (e > v &&
			       (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
				e--;
			if (e > v)
				id = strndup(v, (size_t)(e - v));
		}
		p = eol ? eol + 1 : end;
	}
	free(buf);
	return id;
}

/* A search's answer: the first UID found. */
static void store_journal_hit(void *ctx, const struct store_search_hit *h)
{
	uint32_t *found = ctx;

	if (h->n) {
		found[0] = h->uidvalidity;
		found[1] = h->uids[h->n - 1];
	}
}

/*
 * Whether folder holds the message of a spool file already (by its
 * Message-ID): an APPEND cut short may have been taken by the server
 * before the cut. 1 with its UID, 0 when not (or it cannot tell).
 */
static int store_journal_stored(struct store *inner, const char *folder, int fd,
				uint32_t *uidvalidity_r, uint32_t *uid_r)
{
	char *id = store_journal_msgid(fd), *prog, *q;
	struct search_query *query = NULL;
	uint32_t found[2] = {0, 0};
	char err[256];
	const char *p;

	if (!id || !inner->ops->search)
		goto none;
	/* One path component as the search module reads it: the value
	 * quoted, '%' and '/' as %25 and %2F. */
	prog = malloc(strlen(id) * 3 + 32);
	if (!prog)
		goto none;
	q = prog + sprintf(prog, "HEADER Message-ID \"");
	for (p = id; *p; p++) {
		if (*p == '%' || *p == '/')
			q += sprintf(q, "%%%02X", (unsigned char)*p);
		else if (*p == '"' || *p == '\\')
			q += sprintf(q, "\\%c", *p);
		else
			*q++ = *p;
	}
	strcpy(q, "\"");
	if (search_parse(prog, &query, err, sizeof(err)) == 0)
		inner->ops->search(inner, &folder, 1, query, store_journal_hit,
				   found);
	search_free(query);
	free(prog);
none:
	free(id);
	*uidvalidity_r = found[0];
	*uid_r = found[1];
	return found[1] != 0;
}

/* Sends one entry; the inner store's errno (0: the server has it). */
static int store_journal_send(struct store *inner, struct diskcache *dc,
			      struct journal *j, const struct journal_entry *x,
			      uint32_t uidvalidity, uint32_t uid,
			      uint32_t *nuv_r, uint32_t *nuid_r)
{
	struct store_msg msg = {.uid = uid,
				.size = x->size,
				.date = (time_t)x->date,
				.idhash = x->idhash,
				.flags = x->flags};
	char *result = NULL;
	int rc = -EPERM, fd;

	*nuv_r = *nuid_r = 0;
	switch (x->kind) {
	case JOURNAL_FLAGS:
		if (!inner->ops->change_flags)
			break;
		if (!(x->add && *x->add) && !(x->remove && *x->remove))
			return 0;
		rc = inner->ops->change_flags(inner, x->folder, uidvalidity,
					      &msg, x->add ? x->add : "",
					      x->remove ? x->remove : "",
					      &result);
		free(result);
		break;
	case JOURNAL_MOVE:
		if (!inner->ops->move)
			break;
		rc = inner->ops->move(inner, x->folder, uidvalidity, &msg,
				      x->target, nuid_r, nuv_r);
		if (rc == 0 && *nuid_r && *nuv_r && dc)
			diskcache_rekey(dc, x->folder, uidvalidity, uid,
					x->target, *nuv_r, *nuid_r, true);
		break;
	case JOURNAL_EXPUNGE:
		if (!inner->ops->expunge)
			break;
		rc = inner->ops->expunge(inner, x->folder, uidvalidity, &msg);
		break;
	case JOURNAL_APPEND:
		if (!inner->ops->append)
			break;
		fd = journal_spool_open(j, x->seq);
		if (fd < 0)
			return fd;
		if (x->state == JOURNAL_SENDING &&
		    store_journal_stored(inner, x->folder, fd, nuv_r, nuid_r)) {
			log_info(
				"offline change: a new message in %s was "
				"stored already (its sending was cut after the "
				"server took it): not stored again",
				x->folder);
			close(fd);
			return 0;
		}
		/* Cut from here on, the server may have it: the next try
		 * looks first. */
		rc = journal_mark(j, x->seq, JOURNAL_SENDING, 0, 0);
		if (rc < 0) {
			close(fd);
			return rc;
		}
		rc = inner->ops->append(
			inner, x->folder, x->flags, (time_t)x->date, x->size,
			store_journal_read_fd, &fd, nuid_r, nuv_r);
		close(fd);
		break;
	}
	return rc;
}

int store_journal_replay(struct journal *j, struct store *inner,
			 struct diskcache *dc,
			 void (*touched)(void *ctx, const char *folder),
			 void *ctx, struct store_journal_counts *c)
{
	struct journal_entry *e;
	size_t n;
	int rc = 0;

	if (journal_entries(j, &e, &n) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct journal_entry *x = &e[i];
		char name[NAMES_MESSAGE_MAX], path[4200];
		uint32_t uv, uid, nuv, nuid;
		enum journal_state st;
		int r;

		if (!journal_is_pending(x->state))
			continue;
		store_scope_clear();
		store_journal_name(x, name);
		if (!store_journal_resolve(e, n, x, &uv, &uid)) {
			log_warnx("offline change to %s in %s dropped: the "
				  "change that put it there did not go "
				  "through",
				  name, x->folder);
			r = -ENOENT;
			nuv = nuid = 0;
		} else {
			r = store_journal_send(inner, dc, j, x, uv, uid, &nuv,
					       &nuid);
		}
		if (r < 0 && store_scope_last() == STORE_SCOPE_CONNECTION) {
			/* The connection, not the change: again later. */
			rc = -EIO;
			break;
		}
		if (r == 0) {
			st = JOURNAL_DONE;
			c->sent++;
		} else if (x->kind == JOURNAL_APPEND) {
			st = JOURNAL_FAILED;
			c->failed++;
			journal_spool_path(j, x->seq, path, sizeof(path));
			log_warnx("offline change: the server refused the new "
				  "message %s in %s (%s): kept in %s",
				  name, x->folder, strerror(-r), path);
		} else {
			st = JOURNAL_DROPPED;
			c->dropped++;
			log_warnx("offline change dropped: %s %s in %s (%s)",
				  x->kind == JOURNAL_FLAGS  ? "flags of"
				  : x->kind == JOURNAL_MOVE ? "move of"
							    : "removal of",
				  name, x->folder,
				  r == -ENOENT ? "the message or folder is "
						 "gone"
					       : strerror(-r));
		}
		r = journal_mark(j, x->seq, st, nuv, nuid);
		if (r < 0) {
			log_warnx("journal: cannot record a sent change: %s",
				  strerror(-r));
			rc = r;
			break;
		}
		x->state = st;
		x->real_uidvalidity = nuv;
		x->real_uid = nuid;
		touched(ctx, x->folder);
		if (x->target)
			touched(ctx, x->target);
	}
	journal_entries_free(e, n);
	return rc;
}
