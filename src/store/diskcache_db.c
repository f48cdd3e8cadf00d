// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * diskcache_db: the disk cache's database (diskcache.h,
 * diskcache_priv.h): its schema, the checks at open and the migrations
 * of older schemas, the loading of the index at open, the reading of a
 * saved listing on a connection of the caller's own, and the helpers
 * every SQL statement of the cache goes through.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uthash.h>

#include "cache.h"
#include "diskcache.h"
#include "diskcache_priv.h"
#include "log.h"

#define DISKCACHE_SCHEMA "3"

/* Longest flags text of one message taken from the database. */
#define DISKCACHE_FLAGS_MAX 4096

/* nftw callback: removes what it is given (depth first). */
int diskcache_db_rm_cb(const char *path, const struct stat *st, int flag,
		       struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Removes the database and every body: the cache starts empty. */
void diskcache_db_wipe(struct diskcache *dc)
{
	static const char *const ext[] = {"", "-wal", "-shm", "-journal"};
	char path[4096];
	size_t i;

	for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", dc->db_path, ext[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/bodies", dc->dir);
	nftw(path, diskcache_db_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs SQL that returns nothing of interest. */
int diskcache_db_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* Runs a one-value query into buf; 0 or -1. */
static int diskcache_db_query_text(sqlite3 *db, const char *sql, char *buf,
				   size_t len)
{
	sqlite3_stmt *st;
	int rc = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0)) {
		snprintf(buf, len, "%s",
			 (const char *)sqlite3_column_text(st, 0));
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

static const char diskcache_db_schema[] =
	"CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT);"
	"INSERT OR IGNORE INTO meta VALUES('schema', '" DISKCACHE_SCHEMA "');"
	"CREATE TABLE IF NOT EXISTS folders(id INTEGER PRIMARY KEY,"
	" name TEXT UNIQUE NOT NULL, delim INTEGER DEFAULT 0,"
	" attrs INTEGER DEFAULT 0, in_list INTEGER DEFAULT 0,"
	" pos INTEGER DEFAULT 0, listed INTEGER DEFAULT 0,"
	" uidvalidity INTEGER DEFAULT 0, uidnext INTEGER DEFAULT 0,"
	" nexists INTEGER DEFAULT 0, modseq INTEGER DEFAULT 0,"
	" mtime INTEGER DEFAULT 0, mt_uidvalidity INTEGER DEFAULT 0,"
	" mt_uidnext INTEGER DEFAULT 0, mt_exists INTEGER DEFAULT 0,"
	" mt_modseq INTEGER DEFAULT 0, mt_known INTEGER DEFAULT 0,"
	" ids INTEGER DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS msgs(folder INTEGER, uid INTEGER,"
	" size INTEGER, date INTEGER, idhash INTEGER, flags TEXT,"
	" oid_a INTEGER DEFAULT 0, oid_b INTEGER DEFAULT 0,"
	" PRIMARY KEY(folder, uid)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS bodies(folder INTEGER,"
	" uidvalidity INTEGER, uid INTEGER, section TEXT, chunk INTEGER,"
	" len INTEGER, total INTEGER, used INTEGER,"
	" PRIMARY KEY(folder, uidvalidity, uid, section, chunk))"
	" WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS objects(id INTEGER PRIMARY KEY,"
	" oid_a INTEGER, oid_b INTEGER, size INTEGER);";

/*
 * Brings a database of schema 1 to schema 2: the folders' mtimes (when
 * their content was last seen to change, and in which state) are new
 * columns, 0 for what an older mailfs saved. Everything else stays.
 */
static const char diskcache_db_migrate_1[] =
	"BEGIN;"
	"ALTER TABLE folders ADD COLUMN mtime INTEGER DEFAULT 0;"
	"ALTER TABLE folders ADD COLUMN mt_uidvalidity INTEGER DEFAULT 0;"
	"ALTER TABLE folders ADD COLUMN mt_uidnext INTEGER DEFAULT 0;"
	"ALTER TABLE folders ADD COLUMN mt_exists INTEGER DEFAULT 0;"
	"ALTER TABLE folders ADD COLUMN mt_modseq INTEGER DEFAULT 0;"
	"ALTER TABLE folders ADD COLUMN mt_known INTEGER DEFAULT 0;"
	"UPDATE meta SET v = '2' WHERE k = 'schema';"
	"COMMIT;";

/*
 * Brings a database of schema 2 to schema 3: messages' content
 * identities (OBJECTID, X-GM-MSGID) are new columns of msgs, 0 (none)
 * for what an older mailfs saved, and the folders' ids column tells
 * which saved listings asked for them (none of the older ones: each is
 * listed in full once online, diskcache_listing_has_ids()). The table
 * objects (bodies kept once per identity) is made by the schema itself.
 * Everything else stays: bodies keep their keys and are served.
 */
static const char diskcache_db_migrate_2[] =
	"BEGIN;"
	"ALTER TABLE folders ADD COLUMN ids INTEGER DEFAULT 0;"
	"ALTER TABLE msgs ADD COLUMN oid_a INTEGER DEFAULT 0;"
	"ALTER TABLE msgs ADD COLUMN oid_b INTEGER DEFAULT 0;"
	"UPDATE meta SET v = '3' WHERE k = 'schema';"
	"COMMIT;";

/* Runs one migration step; 0 or -1 (its transaction rolled back). */
static int diskcache_db_migrate(sqlite3 *db, const char *sql, const char *what)
{
	if (diskcache_db_exec(db, sql) < 0) {
		diskcache_db_exec(db, "ROLLBACK");
		return -1;
	}
	log_info("disk cache: %s", what);
	return 0;
}

/* Reads the schema into buf, migrating an older one first; 0 or -1
 * (the transaction of a failed migration is rolled back). */
static int diskcache_db_schema_of(sqlite3 *db, char *buf, size_t len)
{
	const char *q = "SELECT v FROM meta WHERE k='schema'";

	if (diskcache_db_query_text(db, q, buf, len) < 0)
		return -1;
	if (strcmp(buf, "1") == 0 &&
	    (diskcache_db_migrate(db, diskcache_db_migrate_1,
				  "schema 1 brought to 2 (folder mtimes)") <
		     0 ||
	     diskcache_db_query_text(db, q, buf, len) < 0))
		return -1;
	if (strcmp(buf, "2") == 0 &&
	    (diskcache_db_migrate(db, diskcache_db_migrate_2,
				  "schema 2 brought to 3 (content "
				  "identities)") < 0 ||
	     diskcache_db_query_text(db, q, buf, len) < 0))
		return -1;
	return 0;
}

/* Opens the database read-write and checks it: WAL mode, its schema
 * (an older one is migrated), SQLite's quick check. NULL when any of it
 * fails. */
sqlite3 *diskcache_db_open(struct diskcache *dc, char *why, size_t whylen)
{
	char buf[64];
	sqlite3 *db = NULL;
	int fd;

	/* Made 0600 first: SQLite gives -wal and -shm the same mode. */
	fd = open(dc->db_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	close(fd);
	if (sqlite3_open_v2(dc->db_path, &db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(db, 2000);
	if (diskcache_db_query_text(db, "PRAGMA journal_mode=WAL", buf,
				    sizeof(buf)) < 0 ||
	    strcasecmp(buf, "wal") != 0)
		goto fail;
	if (diskcache_db_query_text(db, "PRAGMA quick_check", buf,
				    sizeof(buf)) < 0 ||
	    strcmp(buf, "ok") != 0)
		goto fail;
	if (diskcache_db_exec(db, "PRAGMA synchronous=NORMAL") < 0 ||
	    diskcache_db_exec(db, diskcache_db_schema) < 0)
		goto fail;
	if (diskcache_db_schema_of(db, buf, sizeof(buf)) < 0 ||
	    strcmp(buf, DISKCACHE_SCHEMA) != 0) {
		snprintf(why, whylen, "unknown schema");
		sqlite3_close(db);
		return NULL;
	}
	return db;
fail:
	snprintf(why, whylen, "%s", db ? sqlite3_errmsg(db) : "no memory");
	sqlite3_close(db);
	return NULL;
}

/* Loads the folder table. 0 or -1. */
static int diskcache_db_load_folders(struct diskcache *dc, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
			       "SELECT id, name, delim, attrs, in_list, pos,"
			       " listed, uidvalidity, uidnext, nexists, modseq,"
			       " mtime, mt_uidvalidity, mt_uidnext, mt_exists,"
			       " mt_modseq, mt_known, ids FROM folders",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);
		struct diskcache_folder *f;
		sqlite3_int64 id = sqlite3_column_int64(st, 0);

		if (!name || id <= 0 || id >= UINT32_MAX - 1)
			continue;
		f = diskcache_folder_add(dc, name, (uint32_t)id);
		if (!f)
			break;
		f->delim = (char)sqlite3_column_int(st, 2);
		f->attrs = (unsigned)sqlite3_column_int(st, 3);
		f->in_list = sqlite3_column_int(st, 4) != 0;
		f->pos = sqlite3_column_int(st, 5);
		f->has_state = sqlite3_column_int(st, 6) != 0;
		f->state.uidvalidity = (uint32_t)sqlite3_column_int64(st, 7);
		f->state.uidnext = (uint32_t)sqlite3_column_int64(st, 8);
		f->state.exists = (uint32_t)sqlite3_column_int64(st, 9);
		f->state.modseq = (uint64_t)sqlite3_column_int64(st, 10);
		f->mtime = (time_t)sqlite3_column_int64(st, 11);
		f->mstate.uidvalidity = (uint32_t)sqlite3_column_int64(st, 12);
		f->mstate.uidnext = (uint32_t)sqlite3_column_int64(st, 13);
		f->mstate.exists = (uint32_t)sqlite3_column_int64(st, 14);
		f->mstate.modseq = (uint64_t)sqlite3_column_int64(st, 15);
		f->has_mstate = sqlite3_column_int(st, 16) != 0;
		f->ids = sqlite3_column_int(st, 17) != 0;
		if (f->mtime < 0)
			f->mtime = 0;
		dc->have_folder_list |= f->in_list;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/*
 * Loads the objects, after dropping the rows that name nothing: body
 * rows of an id without an object row, and objects without a body row
 * (a crash between the writes of a batch, or an eviction). A dropped
 * id may be given again: no row names it any more, and the files left
 * of it are removed by the writer's sweep before it writes anything.
 * 0 or -1.
 */
static int diskcache_db_load_objects(struct diskcache *dc, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc;

	if (diskcache_db_exec(db, "DELETE FROM bodies WHERE folder = 0 AND uid"
				  " NOT IN (SELECT id FROM objects)") < 0 ||
	    diskcache_db_exec(
		    db, "DELETE FROM objects WHERE id NOT IN"
			" (SELECT uid FROM bodies WHERE folder = 0)") < 0 ||
	    sqlite3_prepare_v2(db, "SELECT id, oid_a, oid_b, size FROM objects",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 id = sqlite3_column_int64(st, 0);
		sqlite3_int64 size = sqlite3_column_int64(st, 3);
		struct store_oid oid = {(uint64_t)sqlite3_column_int64(st, 1),
					(uint64_t)sqlite3_column_int64(st, 2)};

		if (id <= 0 || id >= UINT32_MAX || size < 0)
			continue;
		diskcache_object_add(dc, &oid, (uint64_t)size, (uint32_t)id);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Loads the index of bodies, oldest use first. 0 or -1. */
static int diskcache_db_load_bodies(struct diskcache *dc, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
			       "SELECT folder, uidvalidity, uid, section,"
			       " chunk, len, total, used FROM bodies"
			       " ORDER BY used",
			       -1, &st, NULL) != SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *sec = (const char *)sqlite3_column_text(st, 3);
		sqlite3_int64 chunk = sqlite3_column_int64(st, 4);
		sqlite3_int64 len = sqlite3_column_int64(st, 5);
		sqlite3_int64 total = sqlite3_column_int64(st, 6);
		struct diskcache_mkey k;
		struct diskcache_body *b;

		if (!sec || chunk < 0 || chunk > UINT32_MAX / 2 || len <= 0 ||
		    len > CACHE_CHUNK || total < 0 ||
		    !diskcache_key(&k, (uint32_t)sqlite3_column_int64(st, 0),
				   (uint32_t)sqlite3_column_int64(st, 1),
				   (uint32_t)sqlite3_column_int64(st, 2), sec))
			continue;
		/* An object's body: the whole message of a known object. */
		if (k.folder == 0 && (k.uidvalidity != 0 || k.section[0] ||
				      !diskcache_object_by_id(dc, k.uid)))
			continue;
		b = diskcache_body_get(dc, &k, true);
		if (!b || !diskcache_body_set(b, (uint32_t)chunk))
			break;
		/* Loaded oldest first: each newer one goes in front. */
		diskcache_body_lru_unlink(dc, b);
		diskcache_body_lru_push(dc, b);
		if (total > 0) {
			b->total = (uint64_t)total;
			b->total_known = true;
		}
		b->bytes += (uint64_t)len;
		dc->stats.bytes += (uint64_t)len;
		b->used = sqlite3_column_int64(st, 7);
		if (b->used > dc->tick)
			dc->tick = b->used;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Opens, checks and loads the database; 0 or -1 with why filled. */
int diskcache_db_load(struct diskcache *dc, char *why, size_t whylen)
{
	sqlite3 *db = diskcache_db_open(dc, why, whylen);
	int rc;

	if (!db)
		return -1;
	rc = diskcache_db_load_folders(dc, db);
	if (rc == 0)
		rc = diskcache_db_load_objects(dc, db);
	if (rc == 0)
		rc = diskcache_db_load_bodies(dc, db);
	if (rc < 0)
		snprintf(why, whylen, "%s", sqlite3_errmsg(db));
	sqlite3_close(db);
	if (rc < 0)
		diskcache_free_tables(dc);
	return rc;
}

/* Reads the messages of folder id from db into out; 0 or -errno. */
static int diskcache_db_read_msgs(sqlite3 *db, uint32_t id,
				  struct store_listing *out)
{
	sqlite3_stmt *st;
	size_t cap = 0;
	int rc;

	if (sqlite3_prepare_v2(db,
			       "SELECT uid, size, date, idhash, flags, oid_a,"
			       " oid_b FROM msgs WHERE folder = ? ORDER BY uid",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *flags = (const char *)sqlite3_column_text(st, 4);
		sqlite3_int64 uid = sqlite3_column_int64(st, 0);
		sqlite3_int64 size = sqlite3_column_int64(st, 1);
		struct store_msg *m;

		if (!flags || strlen(flags) > DISKCACHE_FLAGS_MAX || uid <= 0 ||
		    uid > UINT32_MAX || size < 0 ||
		    (out->n && out->msgs[out->n - 1].uid >= uid) ||
		    out->n >= STORE_MAX_MESSAGES) {
			rc = SQLITE_CORRUPT;
			break;
		}
		if (out->n == cap) {
			cap = cap ? cap * 2 : 256;
			m = realloc(out->msgs, cap * sizeof(*m));
			if (!m) {
				rc = SQLITE_NOMEM;
				break;
			}
			out->msgs = m;
		}
		m = &out->msgs[out->n];
		memset(m, 0, sizeof(*m));
		m->uid = (uint32_t)uid;
		m->size = (uint64_t)size;
		m->date = (time_t)sqlite3_column_int64(st, 2);
		m->idhash = (uint32_t)sqlite3_column_int64(st, 3);
		m->oid.a = (uint64_t)sqlite3_column_int64(st, 5);
		m->oid.b = (uint64_t)sqlite3_column_int64(st, 6);
		m->flags = strdup(flags);
		if (!m->flags) {
			rc = SQLITE_NOMEM;
			break;
		}
		out->n++;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

/* Reads a folder's saved state into out; 0, -ENOENT or -EIO. */
static int diskcache_db_read_state(sqlite3 *db, uint32_t id,
				   struct store_listing *out)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
			       "SELECT uidvalidity, uidnext, nexists, modseq"
			       " FROM folders WHERE id = ? AND listed = 1",
			       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		out->uidvalidity = (uint32_t)sqlite3_column_int64(st, 0);
		out->uidnext = (uint32_t)sqlite3_column_int64(st, 1);
		out->exists = (uint32_t)sqlite3_column_int64(st, 2);
		out->modseq = (uint64_t)sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

/*
 * Reads a folder's state and messages in one read transaction (the
 * writer saves both in one), so that they always belong together, on a
 * connection of this call's own: no lock is held while the database is
 * read.
 */
int diskcache_db_read_listing(struct diskcache *dc, uint32_t id,
			      struct store_listing *out)
{
	sqlite3 *db = NULL;
	int rc;

	if (sqlite3_open_v2(dc->db_path, &db,
			    SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return -EIO;
	}
	sqlite3_busy_timeout(db, 2000);
	rc = diskcache_db_exec(db, "BEGIN") < 0 ? -EIO : 0;
	if (rc == 0)
		rc = diskcache_db_read_state(db, id, out);
	if (rc == 0)
		rc = diskcache_db_read_msgs(db, id, out);
	sqlite3_close(db);
	return rc;
}

/* Runs a statement with up to three integer and one text binding
 * given as a printf-less list; returns the SQLite code. */
int diskcache_db_run(sqlite3 *db, const char *sql, int nint,
		     const sqlite3_int64 *ints, const char *text)
{
	sqlite3_stmt *st;
	int rc, i;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	for (i = 0; i < nint; i++)
		sqlite3_bind_int64(st, i + 1, ints[i]);
	if (text)
		sqlite3_bind_text(st, nint + 1, text, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}
