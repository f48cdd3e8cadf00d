// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * store_cache_read: the disk-cache store's reads other than listings.
 * Bodies come from disk first (a piece on disk costs no FETCH), the rest
 * from the server, each piece written to disk on its way up; a message
 * a change kept offline put in a folder is read from the journal's
 * spool or from where it really is. The parts of messages, search and
 * quota go to the server: offline they fail at once, with a log line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diskcache.h"
#include "journal.h"
#include "store.h"
#include "store_cache_priv.h"
#include "store_journal.h"

/* A fetch from the server: each piece goes to disk, then to the
 * caller. */
struct store_cache_read_fetch {
	struct store_cache *sc;
	const char *folder;
	uint32_t uidvalidity;
	uint64_t len;
	void (*cb)(void *ctx, const struct store_piece *p);
	void *ctx;
};

/* A piece fetched from the server: to disk, then to the caller. */
static void store_cache_read_piece(void *ctx, const struct store_piece *p)
{
	struct store_cache_read_fetch *f = ctx;

	diskcache_store(f->sc->dc, f->folder, f->uidvalidity, p->uid,
			DISKCACHE_WHOLE, p->offset, p->data, p->len,
			p->len < f->len, false, 0);
	f->cb(f->ctx, p);
}

/* A piece of a message the server holds under another key, handed up
 * under the UID the mount shows. */
struct store_cache_read_alias {
	uint32_t uid;
	void (*cb)(void *ctx, const struct store_piece *p);
	void *ctx;
};

/* A piece of the message a kept change shows under another UID, handed
 * up under that UID. */
static void store_cache_read_alias_piece(void *ctx, const struct store_piece *p)
{
	struct store_cache_read_alias *a = ctx;
	struct store_piece q = *p;

	q.uid = a->uid;
	a->cb(a->ctx, &q);
}

/*
 * The bytes [offset, offset + len) of a message a kept change put in
 * folder (uid >= JOURNAL_UID_BASE): from its spool file (a new
 * message), or from where it is (a moved one: the disk cache, else the
 * server when online). 0 with the piece given to cb, -EIO when they
 * cannot be had now, -ENOENT when the change is gone.
 */
static int store_cache_read_fetch_kept(
	struct store_cache *sc, const char *folder, uint32_t uidvalidity,
	uint32_t uid, uint64_t offset, uint64_t len,
	void (*cb)(void *ctx, const struct store_piece *p), void *ctx)
{
	struct store_journal_src src;
	struct store_cache_read_alias a = {uid, cb, ctx};
	char *data = NULL;
	size_t dlen = 0;
	int rc = store_journal_body(sc->j, folder, uidvalidity, uid, &src);

	if (rc == 2) {
		uint64_t want = offset >= src.size	  ? 0
				: src.size - offset < len ? src.size - offset
							  : len;
		ssize_t r = 0;

		data = malloc(want ? (size_t)want : 1);
		if (!data) {
			rc = -ENOMEM;
		} else {
			while (dlen < want) {
				r = pread(src.fd, data + dlen,
					  (size_t)want - dlen,
					  (off_t)(offset + dlen));
				if (r <= 0)
					break;
				dlen += (size_t)r;
			}
			rc = dlen == want ? 0 : -EIO;
		}
	} else if (rc == 1) {
		rc = diskcache_read(sc->dc, src.folder, src.uidvalidity,
				    src.uid, DISKCACHE_WHOLE, offset, len,
				    &data, &dlen);
		if (rc < 0 && !sc->offline) {
			struct store_cache_read_fetch f = {
				sc,
				src.folder,
				src.uidvalidity,
				len,
				store_cache_read_alias_piece,
				&a};

			rc = sc->inner->ops->fetch(sc->inner, src.folder,
						   src.uidvalidity, &src.uid, 1,
						   offset, len,
						   store_cache_read_piece, &f);
			store_cache_check_lost(sc, rc);
			store_journal_src_clear(&src);
			return rc;
		}
		if (rc < 0)
			rc = -EIO;
	}
	if (rc == 0) {
		struct store_piece p = {uid, offset, data, dlen};

		cb(ctx, &p);
	}
	free(data);
	store_journal_src_clear(&src);
	return rc;
}

/*
 * Bodies: pieces on disk are served from there; the others are asked
 * of the server in one command. Offline, a fetch whose first message
 * (the one being read; the others ride along) is not on disk fails with
 * EIO: a partly cached body is never served short.
 */
int store_cache_read_fetch(struct store *st, const char *folder,
			   uint32_t uidvalidity, const uint32_t *uids, size_t n,
			   uint64_t offset, uint64_t len,
			   void (*cb)(void *ctx, const struct store_piece *p),
			   void *ctx)
{
	struct store_cache *sc = store_cache_of(st);
	struct store_cache_read_fetch f = {sc,	folder, uidvalidity,
					   len, cb,	ctx};
	uint32_t *rest = calloc(n + 1, sizeof(*rest));
	size_t i, nrest = 0;
	bool first_done = false;
	int rc;

	if (!rest)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		char *data;
		size_t dlen;

		if (sc->j && uids[i] >= JOURNAL_UID_BASE) {
			rc = store_cache_read_fetch_kept(sc, folder,
							 uidvalidity, uids[i],
							 offset, len, cb, ctx);
			if (i == 0 && rc < 0) {
				free(rest);
				if (rc == -EIO)
					store_cache_refused(
						sc,
						"reading a message not "
						"cached",
						folder);
				return rc;
			}
			first_done |= i == 0;
			continue;
		}

		if (diskcache_read(sc->dc, folder, uidvalidity, uids[i],
				   DISKCACHE_WHOLE, offset, len, &data,
				   &dlen) == 0) {
			struct store_piece p = {uids[i], offset, data, dlen};

			cb(ctx, &p);
			free(data);
			first_done |= i == 0;
			continue;
		}
		rest[nrest++] = uids[i];
	}
	if (!nrest || (sc->offline && first_done)) {
		free(rest);
		return 0;
	}
	if (sc->offline) {
		free(rest);
		store_cache_refused(sc, "reading a message not cached", folder);
		return -EIO;
	}
	rc = sc->inner->ops->fetch(sc->inner, folder, uidvalidity, rest, nrest,
				   offset, len, store_cache_read_piece, &f);
	free(rest);
	store_cache_check_lost(sc, rc);
	return rc;
}

/* A message is local when its whole body is on disk; a kept change's
 * message (its own UIDs) never is: its bytes may be anywhere. */
bool store_cache_read_local(struct store *st, const char *folder,
			    uint32_t uidvalidity, uint32_t uid)
{
	struct store_cache *sc = store_cache_of(st);

	if (uid >= JOURNAL_UID_BASE)
		return false;
	return diskcache_has_all(sc->dc, folder, uidvalidity, uid,
				 DISKCACHE_WHOLE);
}

/* For the read-ahead across folders: hands f's caller the range
 * [offset, offset + f->len) of each message of uids that is all on
 * disk; the others go into rest (room for n), but for those a kept
 * change put there (the reader's own fetch reads them). *first_r: the
 * first message was on disk. Returns how many are left. */
static size_t store_cache_read_from_disk(struct store_cache_read_fetch *f,
					 const uint32_t *uids, size_t n,
					 uint64_t offset, uint32_t *rest,
					 bool *first_r)
{
	size_t i, nrest = 0;

	for (i = 0; i < n; i++) {
		char *data;
		size_t dlen;

		if (f->sc->j && uids[i] >= JOURNAL_UID_BASE)
			continue;
		if (diskcache_read(f->sc->dc, f->folder, f->uidvalidity,
				   uids[i], DISKCACHE_WHOLE, offset, f->len,
				   &data, &dlen) == 0) {
			struct store_piece p = {uids[i], offset, data, dlen};

			f->cb(f->ctx, &p);
			free(data);
			*first_r |= i == 0;
			continue;
		}
		rest[nrest++] = uids[i];
	}
	return nrest;
}

/* Bodies of several folders (read-ahead across folders): what is on
 * disk from there, the rest from the IMAP store in one pipeline, each
 * piece written to disk on its way up. Offline: -EAGAIN (read-ahead
 * only). */
int store_cache_read_fetch_many(struct store *st, struct store_fetch_req *reqs,
				size_t n)
{
	struct store_cache *sc = store_cache_of(st);
	struct store_fetch_req *rest = calloc(n + 1, sizeof(*rest));
	struct store_cache_read_fetch *f = calloc(n + 1, sizeof(*f));
	size_t *which = calloc(n + 1, sizeof(*which));
	size_t i, k = 0;
	uint32_t *uids;
	bool first = false;
	int rc = -ENOMEM;

	if (sc->offline) {
		rc = -EAGAIN;
		goto out;
	}
	for (i = 0; rest && f && which && i < n; i++) {
		reqs[i].rc = 0;
		f[k] = (struct store_cache_read_fetch){
			sc,	     reqs[i].folder, reqs[i].uidvalidity,
			reqs[i].len, reqs[i].cb,     reqs[i].ctx};
		uids = calloc(reqs[i].n + 1, sizeof(*uids));
		if (!uids)
			goto out;
		rest[k] = reqs[i];
		rest[k].uids = uids;
		rest[k].n = store_cache_read_from_disk(
			&f[k], reqs[i].uids, reqs[i].n, 0, uids, &first);
		rest[k].cb = store_cache_read_piece;
		rest[k].ctx = &f[k];
		which[k] = i;
		if (rest[k].n)
			k++;
		else
			free(uids);
	}
	if (i < n)
		goto out;
	rc = k ? sc->inner->ops->fetch_many(sc->inner, rest, k) : 0;
	for (i = 0; rc == 0 && i < k; i++)
		reqs[which[i]].rc = rest[i].rc;
	store_cache_check_lost(sc, rc);
out:
	for (i = 0; rest && i < k; i++)
		free((uint32_t *)rest[i].uids);
	free(rest);
	free(f);
	free(which);
	return rc;
}

/* store_ops.quota: the server's figures; offline, -EIO. */
int store_cache_read_quota(struct store *st, uint64_t *used_r,
			   uint64_t *limit_r)
{
	struct store_cache *sc = store_cache_of(st);

	if (sc->offline)
		return -EIO;
	return sc->inner->ops->quota(sc->inner, used_r, limit_r);
}

/* The part and search operations go to the server: offline they fail
 * at once (EIO), with a log line. */
int store_cache_read_summary(
	struct store *st, const char *folder, uint32_t uidvalidity,
	void (*cb)(void *ctx, const struct store_summary *m), void *ctx)
{
	struct store_cache *sc = store_cache_of(st);
	int rc;

	if (sc->offline) {
		store_cache_refused(sc, "summary (not cached)", folder);
		return -EIO;
	}
	rc = sc->inner->ops->summary(sc->inner, folder, uidvalidity, cb, ctx);
	store_cache_check_lost(sc, rc);
	return rc;
}

/* store_ops.structure, from the server (see
 * store_cache_read_summary()). */
int store_cache_read_structure(struct store *st, const char *folder,
			       uint32_t uidvalidity, uint32_t uid,
			       struct msgstruct **ms_r)
{
	struct store_cache *sc = store_cache_of(st);
	int rc;

	if (sc->offline) {
		store_cache_refused(sc, "message structure (not cached)",
				    folder);
		return -EIO;
	}
	rc = sc->inner->ops->structure(sc->inner, folder, uidvalidity, uid,
				       ms_r);
	store_cache_check_lost(sc, rc);
	return rc;
}

/* store_ops.fetch_section, from the server (see
 * store_cache_read_summary()). */
int store_cache_read_fetch_section(
	struct store *st, const char *folder, uint32_t uidvalidity,
	uint32_t uid, const char *section, bool binary, uint64_t offset,
	uint64_t len, void (*cb)(void *ctx, const char *data, size_t len),
	void *ctx)
{
	struct store_cache *sc = store_cache_of(st);
	int rc;

	if (sc->offline) {
		store_cache_refused(sc, "part (not cached)", folder);
		return -EIO;
	}
	rc = sc->inner->ops->fetch_section(sc->inner, folder, uidvalidity, uid,
					   section, binary, offset, len, cb,
					   ctx);
	store_cache_check_lost(sc, rc);
	return rc;
}

/* store_ops.search, on the server (see store_cache_read_summary()). */
int store_cache_read_search(struct store *st, const char *const *folders,
			    size_t n, const struct search_query *q,
			    void (*cb)(void *ctx,
				       const struct store_search_hit *h),
			    void *ctx)
{
	struct store_cache *sc = store_cache_of(st);
	int rc;

	if (sc->offline) {
		store_cache_refused(sc, "search", NULL);
		return -EIO;
	}
	rc = sc->inner->ops->search(sc->inner, folders, n, q, cb, ctx);
	store_cache_check_lost(sc, rc);
	return rc;
}
