// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * diskcache_writer: the disk cache's writer thread (diskcache.h,
 * diskcache_priv.h): every write (body pieces, listings, the folder
 * list, mtimes, re-keys, forgets) taken from the queue in batches, each
 * in one transaction; LRU times saved, evictions, and the sweep of
 * files no row holds at start.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "cache.h"
#include "clock.h"
#include "diskcache.h"
#include "diskcache_priv.h"
#include "log.h"

/* How often the writer saves LRU times when nothing else is queued. */
#define DISKCACHE_LRU_MS 2000

/* A row of the bodies table, as a re-key reads it. */
struct diskcache_row {
	char section[DISKCACHE_SECTION_MAX];
	uint32_t chunk;
	size_t len;
	uint64_t total; /* not 0 on the message's last chunk */
};

/* Stops caching after a write failed for want of room (or a damaged
 * database); reads go on from the server. */
void diskcache_writer_stop(struct diskcache *dc, const char *why, bool broken)
{
	pthread_mutex_lock(&dc->lock);
	if (dc->writing)
		log_warnx("disk cache %s: %s: caching stops for this mount",
			  dc->dir, why);
	dc->writing = false;
	dc->broken |= broken;
	pthread_cond_broadcast(&dc->done_cond);
	pthread_mutex_unlock(&dc->lock);
	if (broken)
		unlink(dc->db_path); /* the next mount makes a new one */
}

/* Reacts to an SQLite failure of the writer. */
void diskcache_writer_failed(struct diskcache *dc, int rc)
{
	if (rc == SQLITE_FULL || rc == SQLITE_IOERR)
		diskcache_writer_stop(dc, "the disk is full", false);
	else if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB)
		diskcache_writer_stop(dc, "the database is damaged", true);
	else if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
		log_warnx("disk cache: %s", sqlite3_errstr(rc));
}

/* Writes a chunk of a body; one of an object's body (folder 0) with the
 * object's row (diskcache_object_write()). */
static void diskcache_writer_chunk(struct diskcache *dc,
				   const struct diskcache_job *j)
{
	if (j->key.folder == 0 &&
	    diskcache_object_write(dc, j->key.uid, &j->oid, j->total) !=
		    SQLITE_OK)
		return;
	diskcache_body_write(dc, &j->key, j->chunk, j->data, j->len, j->eof,
			     j->total);
}

/* Removes every file and row of a body section. */
static void diskcache_writer_forget(struct diskcache *dc,
				    const struct diskcache_mkey *k)
{
	char path[4096];
	sqlite3_int64 v[3] = {k->folder, k->uidvalidity, k->uid};
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(dc->db,
			       "SELECT chunk FROM bodies WHERE folder = ? AND"
			       " uidvalidity = ? AND uid = ? AND section = ?",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, v[0]);
		sqlite3_bind_int64(st, 2, v[1]);
		sqlite3_bind_int64(st, 3, v[2]);
		sqlite3_bind_text(st, 4, k->section, -1, SQLITE_STATIC);
		while (sqlite3_step(st) == SQLITE_ROW) {
			diskcache_body_path(
				dc, k, (uint32_t)sqlite3_column_int64(st, 0),
				path, sizeof(path));
			unlink(path);
		}
		sqlite3_finalize(st);
	}
	diskcache_writer_failed(
		dc, diskcache_db_run(dc->db,
				     "DELETE FROM bodies WHERE folder"
				     " = ? AND uidvalidity = ? AND"
				     " uid = ? AND section = ?",
				     3, v, k->section));
	/* An object goes with its body (diskcache_body_drop()). */
	if (k->folder == 0)
		diskcache_writer_failed(
			dc, diskcache_db_run(dc->db,
					     "DELETE FROM objects WHERE"
					     " id = ?",
					     1, v + 2, NULL));
}

/* The rows of every section of the message of k (writer); malloc'd,
 * NULL when there are none or on failure. */
static struct diskcache_row *
diskcache_writer_msg_rows(struct diskcache *dc, const struct diskcache_mkey *k,
			  size_t *n_r)
{
	struct diskcache_row *rows = NULL, *r;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;

	*n_r = 0;
	if (sqlite3_prepare_v2(dc->db,
			       "SELECT section, chunk, len, total FROM bodies"
			       " WHERE folder = ? AND uidvalidity = ? AND"
			       " uid = ?",
			       -1, &st, NULL) != SQLITE_OK)
		return NULL;
	sqlite3_bind_int64(st, 1, k->folder);
	sqlite3_bind_int64(st, 2, k->uidvalidity);
	sqlite3_bind_int64(st, 3, k->uid);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *sec = (const char *)sqlite3_column_text(st, 0);
		sqlite3_int64 chunk = sqlite3_column_int64(st, 1);
		sqlite3_int64 len = sqlite3_column_int64(st, 2);
		sqlite3_int64 total = sqlite3_column_int64(st, 3);

		if (!sec || strlen(sec) >= DISKCACHE_SECTION_MAX || chunk < 0 ||
		    chunk > UINT32_MAX / 2 || len <= 0 || len > CACHE_CHUNK ||
		    total < 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 16;

			r = realloc(rows, ncap * sizeof(*rows));
			if (!r)
				break;
			rows = r;
			cap = ncap;
		}
		r = &rows[n++];
		memset(r, 0, sizeof(*r));
		memcpy(r->section, sec, strlen(sec));
		r->chunk = (uint32_t)chunk;
		r->len = (size_t)len;
		r->total = (uint64_t)total;
	}
	sqlite3_finalize(st);
	*n_r = n;
	return rows;
}

/* Removes every file, row and index entry of every section of the
 * message of k (writer). */
static void diskcache_writer_forget_msg(struct diskcache *dc,
					const struct diskcache_mkey *k)
{
	sqlite3_int64 v[3] = {k->folder, k->uidvalidity, k->uid};
	struct diskcache_row *rows;
	struct diskcache_mkey sk;
	char path[4096];
	size_t n, i;

	pthread_mutex_lock(&dc->lock);
	diskcache_body_drop_msg(dc, k);
	pthread_mutex_unlock(&dc->lock);
	rows = diskcache_writer_msg_rows(dc, k, &n);
	for (i = 0; i < n; i++) {
		if (!diskcache_key(&sk, k->folder, k->uidvalidity, k->uid,
				   rows[i].section))
			continue;
		diskcache_body_path(dc, &sk, rows[i].chunk, path, sizeof(path));
		unlink(path);
	}
	free(rows);
	diskcache_writer_failed(
		dc, diskcache_db_run(dc->db,
				     "DELETE FROM bodies WHERE folder"
				     " = ? AND uidvalidity = ? AND"
				     " uid = ?",
				     3, v, NULL));
}

/*
 * A message moved or copied to another folder (j->to): every piece on
 * disk of j->key is read back and checked (header, length, checksum),
 * then written anew under the new key through the usual temporary name,
 * rename and row, so that each file names and checks its own key. What
 * the new key held before is removed first: the pieces of two messages
 * are never mixed. A whole message whose last piece disagrees with the
 * source's listed size (j->total, when known) is not carried over. With
 * j->move, the old key's pieces are removed afterwards. Into an object
 * (j->to.folder 0: diskcache_object_promote()), the whole message's
 * pieces only, under the object's row, while the object lives. A crash part way
 * leaves pieces that are each right for their key, or none (rows and
 * files not committed together are swept or missed at the next mount).
 */
static void diskcache_writer_rekey(struct diskcache *dc,
				   const struct diskcache_job *j)
{
	sqlite3_int64 v[1] = {j->to.folder};
	struct diskcache_mkey from, to;
	struct diskcache_row *rows;
	char *buf;
	size_t n, i;
	int rc;

	/* Into an object (a promotion): its row, the whole message only,
	 * and only while the object lives. */
	if (j->to.folder == 0) {
		rc = diskcache_object_write(dc, j->to.uid, &j->oid, j->total);
		if (rc != SQLITE_OK)
			return;
	} else {
		rc = diskcache_db_run(dc->db,
				      "INSERT OR IGNORE INTO folders(id, name)"
				      " VALUES(?, ?)",
				      1, v, j->folder);
		diskcache_writer_failed(dc, rc);
		diskcache_writer_forget_msg(dc, &j->to);
	}
	rows = diskcache_writer_msg_rows(dc, &j->key, &n);
	buf = malloc(CACHE_CHUNK);
	for (i = 0; buf && rc == SQLITE_OK && i < n; i++) {
		const struct diskcache_row *r = &rows[i];
		uint64_t end = (uint64_t)r->chunk * CACHE_CHUNK + r->len;

		if (j->to.folder == 0 && r->section[0])
			continue;
		if (!diskcache_key(&from, j->key.folder, j->key.uidvalidity,
				   j->key.uid, r->section) ||
		    !diskcache_key(&to, j->to.folder, j->to.uidvalidity,
				   j->to.uid, r->section))
			continue;
		/* The size checks of diskcache_store(), once more. */
		if (!r->section[0] && j->total &&
		    (end > j->total || (r->total && r->total != j->total) ||
		     (r->total && end != r->total)))
			continue;
		if (diskcache_body_read_chunk(dc, &from, r->chunk, buf, r->len))
			continue;
		if (!diskcache_body_write(dc, &to, r->chunk, buf, r->len,
					  r->total != 0, r->total))
			break;
	}
	free(buf);
	free(rows);
	if (j->move)
		diskcache_writer_forget_msg(dc, &j->key);
}

/* Drops every body of folder id whose UIDVALIDITY is not uv. */
static void diskcache_writer_drop_uidvalidity(struct diskcache *dc, uint32_t id,
					      uint32_t uv)
{
	struct diskcache_body *b, *bt;
	char path[4096];
	sqlite3_int64 v[2] = {id, uv};
	sqlite3_stmt *st;

	pthread_mutex_lock(&dc->lock);
	HASH_ITER(hh, dc->bodies, b, bt)
	{
		if (b->key.folder == id && b->key.uidvalidity != uv)
			diskcache_body_drop(dc, b);
	}
	pthread_mutex_unlock(&dc->lock);
	if (sqlite3_prepare_v2(dc->db,
			       "SELECT DISTINCT uidvalidity FROM bodies WHERE"
			       " folder = ? AND uidvalidity <> ?",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, uv);
		while (sqlite3_step(st) == SQLITE_ROW) {
			snprintf(path, sizeof(path), "%s/bodies/%u-%u", dc->dir,
				 id, (uint32_t)sqlite3_column_int64(st, 0));
			nftw(path, diskcache_db_rm_cb, 4, FTW_DEPTH | FTW_PHYS);
		}
		sqlite3_finalize(st);
	}
	diskcache_writer_failed(
		dc, diskcache_db_run(dc->db,
				     "DELETE FROM bodies WHERE folder"
				     " = ? AND uidvalidity <> ?",
				     2, v, NULL));
}

/* Saves a folder's listing: its state and every message. */
static void diskcache_writer_listing(struct diskcache *dc,
				     const struct diskcache_job *j)
{
	const struct store_listing *l = &j->listing;
	sqlite3_int64 v[6] = {j->key.folder};
	sqlite3_stmt *st;
	size_t i;
	int rc;

	rc = diskcache_db_run(dc->db,
			      "INSERT OR IGNORE INTO folders(id, name)"
			      " VALUES(?, ?)",
			      1, v, j->folder);
	v[1] = l->uidvalidity;
	v[2] = l->uidnext;
	v[3] = l->exists;
	v[4] = (sqlite3_int64)l->modseq;
	v[5] = j->key.folder;
	if (rc == SQLITE_OK)
		rc = diskcache_db_run(
			dc->db,
			"UPDATE folders SET listed = 1, ids = 1,"
			" uidvalidity = ?2, uidnext = ?3,"
			" nexists = ?4, modseq = ?5 WHERE id = ?6",
			6, v, NULL);
	if (rc == SQLITE_OK)
		rc = diskcache_db_run(dc->db,
				      "DELETE FROM msgs WHERE folder = ?", 1, v,
				      NULL);
	if (rc != SQLITE_OK) {
		diskcache_writer_failed(dc, rc);
		return;
	}
	rc = sqlite3_prepare_v2(dc->db,
				"INSERT OR REPLACE INTO msgs(folder, uid, size,"
				" date, idhash, flags, oid_a, oid_b)"
				" VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
				-1, &st, NULL);
	for (i = 0; rc == SQLITE_OK && i < l->n; i++) {
		const struct store_msg *m = &l->msgs[i];

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, j->key.folder);
		sqlite3_bind_int64(st, 2, m->uid);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)m->size);
		sqlite3_bind_int64(st, 4, (sqlite3_int64)m->date);
		sqlite3_bind_int64(st, 5, m->idhash);
		sqlite3_bind_text(st, 6, m->flags, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 7, (sqlite3_int64)m->oid.a);
		sqlite3_bind_int64(st, 8, (sqlite3_int64)m->oid.b);
		rc = sqlite3_step(st);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	sqlite3_finalize(st);
	diskcache_writer_failed(dc, rc);
	diskcache_writer_drop_uidvalidity(dc, j->key.folder, l->uidvalidity);
}

/* Saves the folder list. */
static void diskcache_writer_folders(struct diskcache *dc,
				     const struct diskcache_job *j)
{
	struct diskcache_folder *f;
	sqlite3_int64 v[4];
	size_t i;
	int rc;

	rc = diskcache_db_run(dc->db, "UPDATE folders SET in_list = 0", 0, NULL,
			      NULL);
	for (i = 0; rc == SQLITE_OK && i < j->n_folders; i++) {
		pthread_mutex_lock(&dc->lock);
		f = diskcache_folder(dc, j->folders[i].name, false);
		v[0] = f ? f->id : 0;
		pthread_mutex_unlock(&dc->lock);
		if (!v[0])
			continue;
		rc = diskcache_db_run(dc->db,
				      "INSERT OR IGNORE INTO folders(id, name)"
				      " VALUES(?, ?)",
				      1, v, j->folders[i].name);
		v[0] = j->folders[i].delim;
		v[1] = j->folders[i].attrs;
		v[2] = (sqlite3_int64)i;
		pthread_mutex_lock(&dc->lock);
		v[3] = f->id;
		pthread_mutex_unlock(&dc->lock);
		if (rc == SQLITE_OK)
			rc = diskcache_db_run(
				dc->db,
				"UPDATE folders SET delim = ?1,"
				" attrs = ?2, pos = ?3, in_list = 1"
				" WHERE id = ?4",
				4, v, NULL);
	}
	diskcache_writer_failed(dc, rc);
}

/* Saves a folder's mtime (never lowering it) and, when the job has
 * one, the state it is for. */
static void diskcache_writer_mtime(struct diskcache *dc,
				   const struct diskcache_job *j)
{
	const struct store_listing *l = &j->listing;
	sqlite3_int64 v[6] = {j->key.folder,  (sqlite3_int64)j->mtime,
			      l->uidvalidity, l->uidnext,
			      l->exists,      (sqlite3_int64)l->modseq};
	int rc;

	rc = diskcache_db_run(dc->db,
			      "INSERT OR IGNORE INTO folders(id, name)"
			      " VALUES(?, ?)",
			      1, v, j->folder);
	if (rc == SQLITE_OK && j->has_mstate)
		rc = diskcache_db_run(
			dc->db,
			"UPDATE folders SET mtime = max(mtime, ?2),"
			" mt_uidvalidity = ?3, mt_uidnext = ?4,"
			" mt_exists = ?5, mt_modseq = ?6,"
			" mt_known = 1 WHERE id = ?1",
			6, v, NULL);
	else if (rc == SQLITE_OK)
		rc = diskcache_db_run(
			dc->db,
			"UPDATE folders SET mtime = max(mtime, ?2)"
			" WHERE id = ?1",
			2, v, NULL);
	diskcache_writer_failed(dc, rc);
}

/* One job of the writer. */
static void diskcache_writer_do(struct diskcache *dc,
				const struct diskcache_job *j)
{
	switch (j->kind) {
	case DISKCACHE_JOB_CHUNK:
		diskcache_writer_chunk(dc, j);
		break;
	case DISKCACHE_JOB_FORGET:
		diskcache_writer_forget(dc, &j->key);
		break;
	case DISKCACHE_JOB_LISTING:
		diskcache_writer_listing(dc, j);
		break;
	case DISKCACHE_JOB_FOLDERS:
		diskcache_writer_folders(dc, j);
		break;
	case DISKCACHE_JOB_MTIME:
		diskcache_writer_mtime(dc, j);
		break;
	case DISKCACHE_JOB_REKEY:
		diskcache_writer_rekey(dc, j);
		break;
	}
}

/* Saves the LRU times of bodies read since the last time, in one go. */
static void diskcache_writer_save_lru(struct diskcache *dc)
{
	struct diskcache_body *b, *bt;
	struct diskcache_mkey *keys = NULL;
	int64_t *used = NULL;
	size_t n = 0, cap = 0, i;
	sqlite3_stmt *st;

	pthread_mutex_lock(&dc->lock);
	HASH_ITER(hh, dc->bodies, b, bt)
	{
		if (!b->used_dirty)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			void *nk = realloc(keys, nc * sizeof(*keys));
			void *nu =
				nk ? realloc(used, nc * sizeof(*used)) : NULL;

			if (nk)
				keys = nk;
			if (!nu)
				break;
			used = nu;
			cap = nc;
		}
		keys[n] = b->key;
		used[n++] = b->used;
		b->used_dirty = false;
	}
	pthread_mutex_unlock(&dc->lock);
	if (n && sqlite3_prepare_v2(dc->db,
				    "UPDATE bodies SET used = ? WHERE folder ="
				    " ? AND uidvalidity = ? AND uid = ? AND"
				    " section = ?",
				    -1, &st, NULL) == SQLITE_OK) {
		for (i = 0; i < n; i++) {
			sqlite3_reset(st);
			sqlite3_bind_int64(st, 1, used[i]);
			sqlite3_bind_int64(st, 2, keys[i].folder);
			sqlite3_bind_int64(st, 3, keys[i].uidvalidity);
			sqlite3_bind_int64(st, 4, keys[i].uid);
			sqlite3_bind_text(st, 5, keys[i].section, -1,
					  SQLITE_STATIC);
			sqlite3_step(st);
		}
		sqlite3_finalize(st);
	}
	free(keys);
	free(used);
}

/* Evicts the least recently used bodies while over the limit. */
static void diskcache_writer_evict(struct diskcache *dc)
{
	struct diskcache_mkey k;

	for (;;) {
		struct diskcache_body *b;

		pthread_mutex_lock(&dc->lock);
		b = dc->oldest;
		if (!b || dc->stats.bytes <= dc->max_bytes) {
			pthread_mutex_unlock(&dc->lock);
			return;
		}
		k = b->key;
		diskcache_body_drop(dc, b);
		pthread_mutex_unlock(&dc->lock);
		diskcache_writer_forget(dc, &k);
	}
}

/* Takes every queued job (lock held). */
static struct diskcache_job *diskcache_writer_take(struct diskcache *dc,
						   uint64_t *seq_r)
{
	struct diskcache_job *j = dc->head;

	dc->head = dc->tail = NULL;
	*seq_r = dc->seq_queued;
	return j;
}

/* True when a body file's name (in directory F-V) is one the index
 * holds; temporaries and unknown names are not. Lock held. */
static bool diskcache_writer_known_file(struct diskcache *dc, uint32_t folder,
					uint32_t uv, const char *name)
{
	char sec[DISKCACHE_SECTION_MAX + 2], tail;
	struct diskcache_mkey k;
	struct diskcache_body *b;
	unsigned uid, chunk;

	if (sscanf(name, "%u-%17[A-Za-z0-9.]-%u%c", &uid, sec, &chunk, &tail) !=
		    3 ||
	    (sec[0] != 'm' && sec[0] != 's') || (sec[0] == 'm' && sec[1]) ||
	    !diskcache_key(&k, folder, uv, uid, sec + 1))
		return false;
	b = diskcache_body_get(dc, &k, false);
	return b && diskcache_body_has(b, chunk);
}

/*
 * Removes body files the index does not know: temporaries and pieces
 * whose row a SIGKILL kept from being committed, so that they do not
 * take room outside the bound. Runs in the writer thread before any
 * write, so no file it checks is being made.
 */
static void diskcache_writer_sweep(struct diskcache *dc)
{
	char path[4096];
	struct dirent *e, *f;
	unsigned folder, uv, removed = 0;
	DIR *top, *d;

	snprintf(path, sizeof(path), "%s/bodies", dc->dir);
	top = opendir(path);
	while (top && (e = readdir(top))) {
		char tail;

		if (sscanf(e->d_name, "%u-%u%c", &folder, &uv, &tail) != 2)
			continue;
		snprintf(path, sizeof(path), "%s/bodies/%s", dc->dir,
			 e->d_name);
		d = opendir(path);
		while (d && (f = readdir(d))) {
			bool known;

			if (f->d_name[0] == '.')
				continue;
			pthread_mutex_lock(&dc->lock);
			known = diskcache_writer_known_file(dc, folder, uv,
							    f->d_name);
			pthread_mutex_unlock(&dc->lock);
			if (!known && unlinkat(dirfd(d), f->d_name, 0) == 0)
				removed++;
		}
		if (d)
			closedir(d);
	}
	if (top)
		closedir(top);
	if (removed)
		log_info("disk cache: removed %u body files no index row "
			 "held (an interrupted write)",
			 removed);
}

/* The writer: takes the queue, does it in one transaction, saves LRU
 * times, evicts, and tells waiters. */
void *diskcache_writer_main(void *arg)
{
	struct diskcache *dc = arg;
	struct diskcache_job *j, *next;
	uint64_t seq, bytes;
	bool first = true; /* the sweep counts as the first job */

	diskcache_writer_sweep(dc);
	pthread_mutex_lock(&dc->lock);
	for (;; first = false) {
		if (!dc->head && !dc->stop && !first) {
			struct timespec ts = clock_deadline(DISKCACHE_LRU_MS);

			pthread_cond_timedwait(&dc->cond, &dc->lock, &ts);
		}
		j = diskcache_writer_take(dc, &seq);
		pthread_mutex_unlock(&dc->lock);
		bytes = 0;
		diskcache_db_exec(dc->db, "BEGIN");
		for (; j; j = next) {
			next = j->next;
			bytes += j->len;
			pthread_mutex_lock(&dc->lock);
			bool skip =
				dc->broken || (!dc->writing &&
					       j->kind != DISKCACHE_JOB_FORGET);
			pthread_mutex_unlock(&dc->lock);
			if (!skip)
				diskcache_writer_do(dc, j);
			diskcache_job_free(j);
		}
		diskcache_writer_save_lru(dc);
		diskcache_writer_failed(
			dc, sqlite3_exec(dc->db, "COMMIT", NULL, NULL, NULL));
		diskcache_writer_evict(dc);
		/* The pages a batch read or wrote stay cached by SQLite
		 * (2 MB by default, 20 bytes a message after saving a
		 * listing of 100,000): give them back between batches. */
		sqlite3_db_release_memory(dc->db);
		pthread_mutex_lock(&dc->lock);
		dc->queued_bytes -= bytes;
		dc->seq_done = seq;
		pthread_cond_broadcast(&dc->done_cond);
		if (dc->stop && !dc->head)
			break;
	}
	pthread_mutex_unlock(&dc->lock);
	return NULL;
}
