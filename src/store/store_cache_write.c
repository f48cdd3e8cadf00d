// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * store_cache_write: the disk-cache store's changes. Every change passes
 * one gate (store_cache_write_change()): online, with no change kept
 * offline waiting, it goes to the server; offline, or while kept
 * changes wait to be sent, a change to a message (flags, move, removal,
 * new message) is kept in the journal (fsynced before the call returns)
 * and shown at once, and a folder change is refused with EROFS. A change
 * that finds the server unreachable on its way is kept instead (a new
 * message only while none of its bytes were sent).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diskcache.h"
#include "journal.h"
#include "log.h"
#include "store.h"
#include "store_cache_priv.h"

/*
 * The gate of every change. A change makes the folder list's states out
 * of date (a move or a new folder touches other folders too): they are
 * all forgotten. Returns 0 (send it to the server), 1 (keep it in the
 * journal: jlock is held, the caller writes the entry and lets go), or
 * -EROFS (offline without a journal, or a change the journal does not
 * keep: folder changes).
 */
static int store_cache_write_change(struct store_cache *sc, const char *folder,
				    bool keepable)
{
	store_cache_seen_drop(sc, NULL);
	if (!sc->offline && !sc->j)
		return 0;
	pthread_mutex_lock(&sc->jlock);
	if (!store_cache_journaling(sc)) {
		pthread_mutex_unlock(&sc->jlock);
		return 0;
	}
	if (sc->j && keepable)
		return 1;
	pthread_mutex_unlock(&sc->jlock);
	store_cache_refused(sc, sc->j ? "a folder change" : "a change", folder);
	return -EROFS;
}

/*
 * After a change failed on the server: when the server turned out to be
 * unreachable (the connection was lost and a new one found nobody), the
 * mount goes offline and the change is kept instead (1, jlock held, as
 * from store_cache_write_change()). Else the loss is only suspected (the
 * reconnect thread checks) and the error stands (0).
 */
static int store_cache_write_kept_instead(struct store_cache *sc, int rc)
{
	if (rc >= 0)
		return 0;
	store_cache_check_lost(sc, rc);
	if (!sc->j || sc->forced || rc != -EIO ||
	    !store_get_stats(sc->inner)->unreachable)
		return 0;
	store_cache_go_offline(sc);
	pthread_mutex_lock(&sc->jlock);
	return 1;
}

/* The UIDVALIDITY a folder's saved listing has, 0 when none is saved or
 * its UIDs reach the range the mount gives (JOURNAL_UID_BASE). */
static uint32_t store_cache_write_saved_uidvalidity(struct store_cache *sc,
						    const char *folder)
{
	struct store_listing st;

	if (!diskcache_get_state(sc->dc, folder, &st) ||
	    st.uidnext >= JOURNAL_UID_BASE)
		return 0;
	return st.uidvalidity;
}

/* An entry about msg (what the mount showed of it). */
static void store_cache_write_entry(struct journal_entry *e,
				    enum journal_kind kind, const char *folder,
				    uint32_t uidvalidity,
				    const struct store_msg *msg)
{
	memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->folder = (char *)folder;
	e->uidvalidity = uidvalidity;
	e->uid = msg->uid;
	e->size = msg->size;
	e->date = msg->date;
	e->idhash = msg->idhash;
	e->flags = msg->flags;
}

/* Logs a kept change (debug) and wakes nothing: the reconnect thread
 * sends it when the server is back. Lets go of jlock. */
static int store_cache_write_kept(struct store_cache *sc, int rc,
				  const char *what, const char *folder)
{
	pthread_mutex_unlock(&sc->jlock);
	/* The reconnect thread's wait is shortened while changes wait. */
	pthread_mutex_lock(&sc->lock);
	pthread_cond_signal(&sc->cond);
	pthread_mutex_unlock(&sc->lock);
	if (rc < 0)
		log_warnx("offline: %s in %s could not be kept: %s", what,
			  folder, strerror(-rc));
	else
		log_debug("offline: %s in %s kept for later", what, folder);
	return rc < 0 ? -EIO : 0;
}

/* Keeps a flag change (add and remove, measured against what the mount
 * showed); *result_r: the flags shown from now on. jlock held. */
static int store_cache_write_keep_flags(struct store_cache *sc,
					const char *folder,
					uint32_t uidvalidity,
					const struct store_msg *msg,
					const char *add, const char *remove,
					char **result_r)
{
	struct journal_entry e;
	int rc;

	*result_r = journal_flags_apply(msg->flags, add, remove);
	if (!*result_r)
		return store_cache_write_kept(sc, -ENOMEM, "a flag change",
					      folder);
	store_cache_write_entry(&e, JOURNAL_FLAGS, folder, uidvalidity, msg);
	e.add = (char *)add;
	e.remove = (char *)remove;
	rc = journal_add(sc->j, &e);
	if (rc < 0) {
		free(*result_r);
		*result_r = NULL;
	}
	return store_cache_write_kept(sc, rc, "a flag change", folder);
}

/* store_ops.set_flags: to the server, or kept as the flags to add and
 * remove against what the mount showed. */
int store_cache_write_set_flags(struct store *st, const char *folder,
				uint32_t uidvalidity,
				const struct store_msg *msg, const char *flags,
				char **result_r)
{
	struct store_cache *sc = store_cache_of(st);
	char *add, *remove;
	int rc = store_cache_write_change(sc, folder, true);

	if (rc == 0) {
		rc = sc->inner->ops->set_flags(sc->inner, folder, uidvalidity,
					       msg, flags, result_r);
		if (store_cache_write_kept_instead(sc, rc) == 0)
			return rc;
	} else if (rc < 0) {
		return rc;
	}
	if (journal_flags_diff(msg->flags, flags, &add, &remove) < 0)
		return store_cache_write_kept(sc, -ENOMEM, "a flag change",
					      folder);
	rc = store_cache_write_keep_flags(sc, folder, uidvalidity, msg, add,
					  remove, result_r);
	free(add);
	free(remove);
	return rc;
}

/* store_ops.change_flags: to the server, or kept. */
int store_cache_write_change_flags(struct store *st, const char *folder,
				   uint32_t uidvalidity,
				   const struct store_msg *msg, const char *add,
				   const char *remove, char **result_r)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_write_change(sc, folder, true);

	if (rc == 0) {
		rc = sc->inner->ops->change_flags(sc->inner, folder,
						  uidvalidity, msg, add, remove,
						  result_r);
		if (store_cache_write_kept_instead(sc, rc) == 0)
			return rc;
	} else if (rc < 0) {
		return rc;
	}
	return store_cache_write_keep_flags(sc, folder, uidvalidity, msg, add,
					    remove, result_r);
}

/* Keeps a move (or, with target NULL, a removal for good); a moved
 * message shows in target under a UID the mount gives (*uid_r), when
 * target's listing is saved. jlock held. */
static int store_cache_write_keep_move(struct store_cache *sc,
				       const char *folder, uint32_t uidvalidity,
				       const struct store_msg *msg,
				       const char *target, uint32_t *uid_r,
				       uint32_t *uidvalidity_r)
{
	struct journal_entry e;
	int rc;

	store_cache_write_entry(&e, target ? JOURNAL_MOVE : JOURNAL_EXPUNGE,
				folder, uidvalidity, msg);
	e.target = (char *)target;
	if (target) {
		e.new_uidvalidity =
			store_cache_write_saved_uidvalidity(sc, target);
		e.new_uid = e.new_uidvalidity
				    ? journal_uid_of(journal_next_seq(sc->j))
				    : 0;
	}
	rc = journal_add(sc->j, &e);
	if (uid_r) {
		*uid_r = rc == 0 ? e.new_uid : 0;
		*uidvalidity_r = rc == 0 ? e.new_uidvalidity : 0;
	}
	return store_cache_write_kept(sc, rc, target ? "a move" : "a removal",
				      folder);
}

/* Moves a message; when the server told its new UID (COPYUID), what
 * the disk cache holds of it is re-keyed to that UID. */
int store_cache_write_move(struct store *st, const char *folder,
			   uint32_t uidvalidity, const struct store_msg *msg,
			   const char *target, uint32_t *uid_r,
			   uint32_t *uidvalidity_r)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_write_change(sc, folder, true);

	if (rc == 0) {
		rc = sc->inner->ops->move(sc->inner, folder, uidvalidity, msg,
					  target, uid_r, uidvalidity_r);
		if (store_cache_write_kept_instead(sc, rc) == 1)
			return store_cache_write_keep_move(
				sc, folder, uidvalidity, msg, target, uid_r,
				uidvalidity_r);
	} else if (rc == 1) {
		return store_cache_write_keep_move(sc, folder, uidvalidity, msg,
						   target, uid_r,
						   uidvalidity_r);
	}
	/* The body on disk follows the message to its new UID. */
	if (rc == 0 && *uid_r && *uidvalidity_r)
		diskcache_rekey(sc->dc, folder, uidvalidity, msg->uid, target,
				*uidvalidity_r, *uid_r, true);
	return rc;
}

/* store_ops.expunge: to the server, or kept. */
int store_cache_write_expunge(struct store *st, const char *folder,
			      uint32_t uidvalidity, const struct store_msg *msg)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_write_change(sc, folder, true);

	if (rc == 0) {
		rc = sc->inner->ops->expunge(sc->inner, folder, uidvalidity,
					     msg);
		if (store_cache_write_kept_instead(sc, rc) == 0)
			return rc;
	} else if (rc < 0) {
		return rc;
	}
	return store_cache_write_keep_move(sc, folder, uidvalidity, msg, NULL,
					   NULL, NULL);
}

/* store_ops.create_folder: to the server only (EROFS offline). */
int store_cache_write_create_folder(struct store *st, const char *name)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_write_change(sc, name, false);

	if (rc == 0) {
		rc = sc->inner->ops->create_folder(sc->inner, name);
		store_cache_check_lost(sc, rc);
	}
	return rc;
}

/* store_ops.delete_folder: to the server only (EROFS offline). */
int store_cache_write_delete_folder(struct store *st, const char *name)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_write_change(sc, name, false);

	if (rc == 0) {
		rc = sc->inner->ops->delete_folder(sc->inner, name);
		store_cache_check_lost(sc, rc);
	}
	return rc;
}

/* store_ops.rename_folder: to the server only (EROFS offline). */
int store_cache_write_rename_folder(struct store *st, const char *from,
				    const char *to)
{
	struct store_cache *sc = store_cache_of(st);
	int rc = store_cache_write_change(sc, from, false);

	if (rc == 0) {
		rc = sc->inner->ops->rename_folder(sc->inner, from, to);
		store_cache_check_lost(sc, rc);
	}
	return rc;
}

/* A new message's bytes as APPEND pulls them, counted: a message the
 * server lost after some were sent cannot be kept instead (the reader
 * cannot go back). */
struct store_cache_write_reader {
	long (*read)(void *ctx, char *buf, size_t len);
	void *ctx;
	uint64_t got;
};

/* Reads for APPEND from the caller's reader, counting the bytes. */
static long store_cache_write_reader_read(void *ctx, char *buf, size_t len)
{
	struct store_cache_write_reader *r = ctx;
	long n = r->read(r->ctx, buf, len);

	if (n > 0)
		r->got += (uint64_t)n;
	return n;
}

/* Keeps a new message: its bytes in the spool, shown in folder under a
 * UID the mount gives when folder's listing is saved. jlock held. */
static int store_cache_write_keep_append(struct store_cache *sc,
					 const char *folder, const char *flags,
					 time_t date, uint64_t size,
					 struct store_cache_write_reader *r,
					 uint32_t *uid_r,
					 uint32_t *uidvalidity_r)
{
	struct journal_entry e;
	int rc;

	memset(&e, 0, sizeof(e));
	e.kind = JOURNAL_APPEND;
	e.folder = (char *)folder;
	e.flags = (char *)(flags ? flags : "");
	e.size = size;
	e.date = date ? date : time(NULL);
	e.new_uidvalidity = store_cache_write_saved_uidvalidity(sc, folder);
	e.new_uid =
		e.new_uidvalidity ? journal_uid_of(journal_next_seq(sc->j)) : 0;
	rc = journal_add_append(sc->j, &e, store_cache_write_reader_read, r);
	*uid_r = rc == 0 ? e.new_uid : 0;
	*uidvalidity_r = rc == 0 ? e.new_uidvalidity : 0;
	return store_cache_write_kept(sc, rc, "a new message", folder);
}

/* store_ops.append: to the server, or kept in the journal's spool (also
 * when the server turns out to be gone before a byte was sent). */
int store_cache_write_append(struct store *st, const char *folder,
			     const char *flags, time_t date, uint64_t size,
			     long (*read)(void *ctx, char *buf, size_t len),
			     void *ctx, uint32_t *uid_r,
			     uint32_t *uidvalidity_r)
{
	struct store_cache *sc = store_cache_of(st);
	struct store_cache_write_reader *r = calloc(1, sizeof(*r));
	int rc;

	*uid_r = 0;
	*uidvalidity_r = 0;
	if (!r)
		return -ENOMEM;
	r->read = read;
	r->ctx = ctx;
	rc = store_cache_write_change(sc, folder, true);
	if (rc == 0) {
		rc = sc->inner->ops->append(sc->inner, folder, flags, date,
					    size, store_cache_write_reader_read,
					    r, uid_r, uidvalidity_r);
		/* Kept instead only when no byte was pulled yet. */
		if ((r->got == 0 || rc >= 0) &&
		    store_cache_write_kept_instead(sc, rc) == 1)
			rc = 1;
		else if (rc < 0)
			store_cache_check_lost(sc, rc);
	}
	if (rc == 1)
		rc = store_cache_write_keep_append(
			sc, folder, flags, date, size, r, uid_r, uidvalidity_r);
	free(r);
	return rc;
}

/* store_ops.append_limit: the server's. */
uint64_t store_cache_write_append_limit(struct store *st)
{
	struct store_cache *sc = store_cache_of(st);

	return sc->inner->ops->append_limit(sc->inner);
}
