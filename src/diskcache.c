// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * diskcache: the persistent cache of an IMAP account; see diskcache.h.
 *
 * Layout of the cache directory:
 *   lock                 flock()ed while a mount uses the cache (mountlock.h)
 *   cache.db (-wal,-shm) SQLite: meta, folders, msgs, bodies
 *   bodies/F-V/U-S-C     one piece of a body: folder id F, UIDVALIDITY V,
 *                        UID U, section S ("m" for the whole message),
 *                        chunk number C; a header, then the bytes
 *   bodies/0-0/O-m-C     one piece of the whole message of object O: a
 *                        content identity (store_oid) and its size, in
 *                        the table objects, shared by every message
 *                        the server gives that identity
 *
 * The database is the index of what is on disk; the header of each
 * body file repeats its key and carries its length and checksum, so a
 * file that lost its row, a row that lost its file, a truncated or
 * overwritten file all come out as a miss, never as bytes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "cache.h"
#include "clock.h"
#include "diskcache.h"
#include "log.h"
#include "mountlock.h"
#include "names.h"
#include "safedir.h"

#define DISKCACHE_MAGIC "MAILFSB1"
#define DISKCACHE_SCHEMA "3"
/* Bytes of bodies queued for the writer at most; more are dropped
 * (foreground) or wait (background filling). */
#define DISKCACHE_QUEUE_MAX (64u * 1024 * 1024)
/* How often the writer saves LRU times when nothing else is queued. */
#define DISKCACHE_LRU_MS 2000
#define DISKCACHE_SECTION_MAX 16
/* Longest flags text of one message taken from the database. */
#define DISKCACHE_FLAGS_MAX 4096

/* The header in front of every body file. */
struct diskcache_hdr {
	char magic[8];
	uint32_t folder, uidvalidity, uid, chunk;
	uint32_t len, eof;
	uint64_t total; /* the message's size when eof, else 0 */
	uint64_t sum; /* diskcache_sum() of the bytes */
	char section[DISKCACHE_SECTION_MAX];
};

/* A message section's identity on disk. */
struct diskcache_mkey {
	uint32_t folder, uidvalidity, uid;
	char section[DISKCACHE_SECTION_MAX];
};

/*
 * A content identity whose whole message is kept once for every
 * message the server gives it (struct store_oid): its bodies are keyed
 * (0, 0, id), folder 0 being no folder's. Ids are never given twice
 * while a row or a file of the old one may be left (see
 * diskcache_load_objects()).
 */
struct diskcache_object {
	struct store_oid oid; /* hash key (hh) */
	uint32_t id; /* hash key (hh_id) */
	uint64_t size; /* the RFC822.SIZE the oid was made with */
	UT_hash_handle hh, hh_id;
};

/* What is on disk of one message section. */
struct diskcache_body {
	struct diskcache_mkey key; /* hash key */
	uint64_t total; /* size when known (its end was seen), else 0 */
	bool total_known;
	uint32_t nchunks; /* bits in have */
	uint8_t *have; /* owned: one bit per chunk on disk */
	uint64_t bytes;
	int64_t used; /* LRU tick */
	bool used_dirty; /* used not saved yet */
	struct diskcache_body *newer, *older;
	UT_hash_handle hh;
};

/* A folder the cache knows: its id for body keys, its place in the
 * folder list, its saved listing's state and listed sizes. */
struct diskcache_folder {
	char *name; /* owned; hash key */
	uint32_t id;
	char delim;
	unsigned attrs;
	bool in_list;
	int pos;
	bool has_state;
	struct store_listing state; /* no messages */
	/* When the folder's content was last seen to change (wall clock;
	 * 0: never), and the state it was seen in (diskcache_mtime()). */
	time_t mtime;
	bool has_mstate;
	struct store_listing mstate; /* no messages */
	uint32_t *uids; /* owned: the listed messages, ascending */
	uint64_t *sizes; /* owned */
	/* owned: their content identities, NULL when none has one (a
	 * server without OBJECTID or X-GM-MSGID pays nothing) */
	struct store_oid *oids;
	size_t n;
	/* The saved listing was made by a mailfs that asked for content
	 * identities (schema 3 on): one made before is used offline, but
	 * listed in full again online (diskcache_listing_has_ids()). */
	bool ids;
	UT_hash_handle hh;
};

enum diskcache_job_kind {
	DISKCACHE_JOB_CHUNK,
	DISKCACHE_JOB_FORGET,
	DISKCACHE_JOB_LISTING,
	DISKCACHE_JOB_FOLDERS,
	DISKCACHE_JOB_MTIME,
	DISKCACHE_JOB_REKEY,
};

/* One piece of work for the writer thread; it owns its data. */
struct diskcache_job {
	enum diskcache_job_kind kind;
	struct diskcache_mkey key;
	uint32_t chunk;
	char *data; /* owned */
	size_t len;
	bool eof;
	uint64_t total;
	char *folder; /* owned */
	struct store_listing listing; /* owned */
	struct store_folder *folders; /* owned */
	size_t n_folders;
	time_t mtime; /* DISKCACHE_JOB_MTIME: with listing's state if
		       * has_mstate */
	bool has_mstate;
	/* DISKCACHE_JOB_REKEY: key (no section) is moved or copied to to
	 * (no section), a folder's of name folder. */
	struct diskcache_mkey to;
	bool move;
	/* DISKCACHE_JOB_CHUNK of an object's body (key.folder 0): its
	 * identity, total being its size. */
	struct store_oid oid;
	struct diskcache_job *next;
};

struct diskcache {
	char *dir; /* owned */
	char *db_path; /* owned */
	int lock_fd;
	uint64_t max_bytes;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond; /* the writer waits for jobs */
	pthread_cond_t done_cond; /* flushers and full queues wait */
	struct diskcache_body *bodies; /* uthash */
	struct diskcache_body *newest, *oldest;
	struct diskcache_folder *folders; /* uthash by name */
	uint32_t next_folder_id;
	struct diskcache_object *objects; /* uthash by oid (hh) */
	struct diskcache_object *objects_by_id; /* uthash by id (hh_id) */
	uint32_t next_object_id;
	bool have_folder_list;
	int64_t tick;
	struct diskcache_job *head, *tail;
	uint64_t queued_bytes;
	uint64_t seq_queued, seq_done;
	bool stop, running, writing, broken;
	struct diskcache_stats stats;
	pthread_t thread;
	sqlite3 *db; /* the writer's connection */
};

/* A 64-bit checksum of a body piece (FNV-1a, 8 bytes a step over four
 * lanes, so that a big piece costs little): any changed byte shows. */
static uint64_t diskcache_sum(const char *data, size_t len)
{
	uint64_t h[4] = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull,
			 0x9ce484222325cbf2ull, 0x2325cbf29ce48422ull};
	size_t i = 0;
	int k;

	for (; i + 32 <= len; i += 32) {
		for (k = 0; k < 4; k++) {
			uint64_t w;

			memcpy(&w, data + i + 8 * k, 8);
			h[k] = (h[k] ^ w) * 0x100000001b3ull;
			h[k] ^= h[k] >> 29;
		}
	}
	for (; i < len; i++)
		h[i & 3] =
			(h[i & 3] ^ (unsigned char)data[i]) * 0x100000001b3ull;
	return (h[0] * 31 + h[1]) * 31 + (h[2] ^ (h[3] >> 7)) + len;
}

/* Fills a key; false when the section is not one the cache keeps
 * (too long, or a byte outside [A-Za-z0-9.]). */
static bool diskcache_key(struct diskcache_mkey *k, uint32_t folder,
			  uint32_t uidvalidity, uint32_t uid,
			  const char *section)
{
	size_t i, n = strlen(section);

	memset(k, 0, sizeof(*k));
	if (n >= DISKCACHE_SECTION_MAX)
		return false;
	for (i = 0; i < n; i++) {
		char c = section[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '.'))
			return false;
	}
	k->folder = folder;
	k->uidvalidity = uidvalidity;
	k->uid = uid;
	memcpy(k->section, section, n);
	return true;
}

/* The path of a body file (relative to the cache directory). */
static void diskcache_body_path(const struct diskcache *dc,
				const struct diskcache_mkey *k, uint32_t chunk,
				char *buf, size_t len)
{
	snprintf(buf, len, "%s/bodies/%u-%u/%u-%s%s-%u", dc->dir, k->folder,
		 k->uidvalidity, k->uid, k->section[0] ? "s" : "m", k->section,
		 chunk);
}

char *diskcache_default_dir(const char *user, const char *host,
			    const char *port)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char *acct = names_account_key(user, host, port), *dir = NULL;

	if (!acct)
		return NULL;
	if (xdg && *xdg == '/') {
		if (asprintf(&dir, "%s/mailfs/%s", xdg, acct) < 0)
			dir = NULL;
	} else if (home && *home == '/') {
		if (asprintf(&dir, "%s/.cache/mailfs/%s", home, acct) < 0)
			dir = NULL;
	}
	free(acct);
	return dir;
}

/* nftw callback: removes what it is given (depth first). */
static int diskcache_rm_cb(const char *path, const struct stat *st, int flag,
			   struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Removes the database and every body: the cache starts empty. */
static void diskcache_wipe(struct diskcache *dc)
{
	static const char *const ext[] = {"", "-wal", "-shm", "-journal"};
	char path[4096];
	size_t i;

	for (i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", dc->db_path, ext[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/bodies", dc->dir);
	nftw(path, diskcache_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs SQL that returns nothing of interest. */
static int diskcache_exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* Runs a one-value query into buf; 0 or -1. */
static int diskcache_query_text(sqlite3 *db, const char *sql, char *buf,
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

static const char diskcache_schema[] =
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
static const char diskcache_migrate_1[] =
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
static const char diskcache_migrate_2[] =
	"BEGIN;"
	"ALTER TABLE folders ADD COLUMN ids INTEGER DEFAULT 0;"
	"ALTER TABLE msgs ADD COLUMN oid_a INTEGER DEFAULT 0;"
	"ALTER TABLE msgs ADD COLUMN oid_b INTEGER DEFAULT 0;"
	"UPDATE meta SET v = '3' WHERE k = 'schema';"
	"COMMIT;";

/* Runs one migration step; 0 or -1 (its transaction rolled back). */
static int diskcache_migrate(sqlite3 *db, const char *sql, const char *what)
{
	if (diskcache_exec(db, sql) < 0) {
		diskcache_exec(db, "ROLLBACK");
		return -1;
	}
	log_info("disk cache: %s", what);
	return 0;
}

/* Reads the schema into buf, migrating an older one first; 0 or -1
 * (the transaction of a failed migration is rolled back). */
static int diskcache_schema_of(sqlite3 *db, char *buf, size_t len)
{
	const char *q = "SELECT v FROM meta WHERE k='schema'";

	if (diskcache_query_text(db, q, buf, len) < 0)
		return -1;
	if (strcmp(buf, "1") == 0 &&
	    (diskcache_migrate(db, diskcache_migrate_1,
			       "schema 1 brought to 2 (folder mtimes)") < 0 ||
	     diskcache_query_text(db, q, buf, len) < 0))
		return -1;
	if (strcmp(buf, "2") == 0 &&
	    (diskcache_migrate(db, diskcache_migrate_2,
			       "schema 2 brought to 3 (content "
			       "identities)") < 0 ||
	     diskcache_query_text(db, q, buf, len) < 0))
		return -1;
	return 0;
}

/* Opens the database read-write and checks it: WAL mode, its schema
 * (an older one is migrated), SQLite's quick check. NULL when any of it
 * fails. */
static sqlite3 *diskcache_db_open(struct diskcache *dc, char *why,
				  size_t whylen)
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
	if (diskcache_query_text(db, "PRAGMA journal_mode=WAL", buf,
				 sizeof(buf)) < 0 ||
	    strcasecmp(buf, "wal") != 0)
		goto fail;
	if (diskcache_query_text(db, "PRAGMA quick_check", buf, sizeof(buf)) <
		    0 ||
	    strcmp(buf, "ok") != 0)
		goto fail;
	if (diskcache_exec(db, "PRAGMA synchronous=NORMAL") < 0 ||
	    diskcache_exec(db, diskcache_schema) < 0)
		goto fail;
	if (diskcache_schema_of(db, buf, sizeof(buf)) < 0 ||
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

/* Adds a folder to the table (lock held or not yet shared). */
static struct diskcache_folder *
diskcache_folder_add(struct diskcache *dc, const char *name, uint32_t id)
{
	struct diskcache_folder *f = calloc(1, sizeof(*f));

	if (!f || !(f->name = strdup(name))) {
		free(f);
		return NULL;
	}
	f->id = id;
	if (id >= dc->next_folder_id)
		dc->next_folder_id = id + 1;
	HASH_ADD_KEYPTR(hh, dc->folders, f->name, strlen(f->name), f);
	return f;
}

/* Loads the folder table. 0 or -1. */
static int diskcache_load_folders(struct diskcache *dc, sqlite3 *db)
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

/* The object of a content identity, NULL if none (lock held). */
static struct diskcache_object *
diskcache_object_find(struct diskcache *dc, const struct store_oid *oid)
{
	struct diskcache_object *o;

	HASH_FIND(hh, dc->objects, oid, sizeof(*oid), o);
	return o;
}

static struct diskcache_object *diskcache_object_by_id(struct diskcache *dc,
						       uint32_t id)
{
	struct diskcache_object *o;

	HASH_FIND(hh_id, dc->objects_by_id, &id, sizeof(id), o);
	return o;
}

/* Adds an object (lock held, or the cache not yet shared); NULL when
 * out of memory or when the id or the identity is taken. */
static struct diskcache_object *
diskcache_object_add(struct diskcache *dc, const struct store_oid *oid,
		     uint64_t size, uint32_t id)
{
	struct diskcache_object *o;

	if (!id || store_oid_none(oid) || diskcache_object_find(dc, oid) ||
	    diskcache_object_by_id(dc, id) || !(o = calloc(1, sizeof(*o))))
		return NULL;
	o->oid = *oid;
	o->size = size;
	o->id = id;
	HASH_ADD(hh, dc->objects, oid, sizeof(o->oid), o);
	HASH_ADD(hh_id, dc->objects_by_id, id, sizeof(o->id), o);
	if (id >= dc->next_object_id)
		dc->next_object_id = id + 1;
	return o;
}

/* Forgets an object (lock held); its files and rows go with its
 * body (diskcache_write_forget()). */
static void diskcache_object_drop(struct diskcache *dc, uint32_t id)
{
	struct diskcache_object *o = diskcache_object_by_id(dc, id);

	if (!o)
		return;
	HASH_DELETE(hh, dc->objects, o);
	HASH_DELETE(hh_id, dc->objects_by_id, o);
	free(o);
}

/* Puts a body at the young end of the LRU list (lock held). */
static void diskcache_lru_push(struct diskcache *dc, struct diskcache_body *b)
{
	b->older = dc->newest;
	b->newer = NULL;
	if (dc->newest)
		dc->newest->newer = b;
	dc->newest = b;
	if (!dc->oldest)
		dc->oldest = b;
}

static void diskcache_lru_unlink(struct diskcache *dc, struct diskcache_body *b)
{
	if (b->newer)
		b->newer->older = b->older;
	else
		dc->newest = b->older;
	if (b->older)
		b->older->newer = b->newer;
	else
		dc->oldest = b->newer;
	b->newer = b->older = NULL;
}

/* Finds or makes the index entry of a body (lock held). */
static struct diskcache_body *diskcache_body_get(struct diskcache *dc,
						 const struct diskcache_mkey *k,
						 bool make)
{
	struct diskcache_body *b;

	HASH_FIND(hh, dc->bodies, k, sizeof(*k), b);
	if (b || !make)
		return b;
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->key = *k;
	HASH_ADD(hh, dc->bodies, key, sizeof(b->key), b);
	diskcache_lru_push(dc, b);
	return b;
}

/* Marks chunk present in b (lock held). False when out of memory. */
static bool diskcache_body_set(struct diskcache_body *b, uint32_t chunk)
{
	if (chunk >= b->nchunks) {
		uint32_t n = chunk + 8;
		uint8_t *h = realloc(b->have, (n + 7) / 8);

		if (!h)
			return false;
		memset(h + (b->nchunks + 7) / 8, 0,
		       (n + 7) / 8 - (b->nchunks + 7) / 8);
		b->have = h;
		b->nchunks = n;
	}
	b->have[chunk / 8] |= (uint8_t)(1u << (chunk % 8));
	return true;
}

static bool diskcache_body_has(const struct diskcache_body *b, uint32_t chunk)
{
	return chunk < b->nchunks && (b->have[chunk / 8] & (1u << (chunk % 8)));
}

/* Removes an index entry (lock held); its files stay until a forget.
 * An object's body takes the object with it: a store of that identity
 * later makes a new one, under a new id. */
static void diskcache_body_drop(struct diskcache *dc, struct diskcache_body *b)
{
	if (b->key.folder == 0)
		diskcache_object_drop(dc, b->key.uid);
	HASH_DEL(dc->bodies, b);
	diskcache_lru_unlink(dc, b);
	dc->stats.bytes -= b->bytes;
	free(b->have);
	free(b);
}

/* True when b is a section of the message of k (k's section aside). */
static bool diskcache_same_msg(const struct diskcache_mkey *b,
			       const struct diskcache_mkey *k)
{
	return b->folder == k->folder && b->uidvalidity == k->uidvalidity &&
	       b->uid == k->uid;
}

/* Drops every section of the message of k from the index (lock held). */
static void diskcache_drop_msg_locked(struct diskcache *dc,
				      const struct diskcache_mkey *k)
{
	struct diskcache_body *b, *bt;

	HASH_ITER(hh, dc->bodies, b, bt)
	{
		if (diskcache_same_msg(&b->key, k))
			diskcache_body_drop(dc, b);
	}
}

/*
 * Loads the objects, after dropping the rows that name nothing: body
 * rows of an id without an object row, and objects without a body row
 * (a crash between the writes of a batch, or an eviction). A dropped
 * id may be given again: no row names it any more, and the files left
 * of it are removed by the writer's sweep before it writes anything.
 * 0 or -1.
 */
static int diskcache_load_objects(struct diskcache *dc, sqlite3 *db)
{
	sqlite3_stmt *st;
	int rc;

	if (diskcache_exec(db, "DELETE FROM bodies WHERE folder = 0 AND uid"
			       " NOT IN (SELECT id FROM objects)") < 0 ||
	    diskcache_exec(db,
			   "DELETE FROM objects WHERE id NOT IN"
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
static int diskcache_load_bodies(struct diskcache *dc, sqlite3 *db)
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
		diskcache_lru_unlink(dc, b);
		diskcache_lru_push(dc, b);
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

/* Frees the in-memory tables. */
static void diskcache_free_tables(struct diskcache *dc)
{
	struct diskcache_body *b, *bt;
	struct diskcache_folder *f, *ft;
	struct diskcache_object *o, *ot;

	HASH_ITER(hh, dc->bodies, b, bt)
	{
		diskcache_body_drop(dc, b);
	}
	HASH_ITER(hh, dc->objects, o, ot)
	{
		diskcache_object_drop(dc, o->id);
	}
	HASH_ITER(hh, dc->folders, f, ft)
	{
		HASH_DEL(dc->folders, f);
		free(f->name);
		free(f->uids);
		free(f->sizes);
		free(f->oids);
		free(f);
	}
	dc->stats.bytes = 0;
	dc->next_folder_id = 1;
	dc->next_object_id = 1;
	dc->have_folder_list = false;
}

/* Opens, checks and loads the database; 0 or -1 with why filled. */
static int diskcache_load(struct diskcache *dc, char *why, size_t whylen)
{
	sqlite3 *db = diskcache_db_open(dc, why, whylen);
	int rc;

	if (!db)
		return -1;
	rc = diskcache_load_folders(dc, db);
	if (rc == 0)
		rc = diskcache_load_objects(dc, db);
	if (rc == 0)
		rc = diskcache_load_bodies(dc, db);
	if (rc < 0)
		snprintf(why, whylen, "%s", sqlite3_errmsg(db));
	sqlite3_close(db);
	if (rc < 0)
		diskcache_free_tables(dc);
	return rc;
}

struct diskcache *diskcache_open(const char *dir, uint64_t max_bytes,
				 int wait_ms, char *err, size_t errlen)
{
	struct diskcache *dc = calloc(1, sizeof(*dc));
	char why[256], bodies[4096];
	int dirfd = -1, bodiesfd;

	if (!dc || !(dc->dir = strdup(dir)) ||
	    asprintf(&dc->db_path, "%s/cache.db", dir) < 0) {
		snprintf(err, errlen, "out of memory");
		if (dc)
			free(dc->dir);
		free(dc);
		return NULL;
	}
	dc->lock_fd = -1;
	dc->max_bytes = max_bytes;
	dc->stats.limit = max_bytes;
	dc->next_folder_id = 1;
	dc->next_object_id = 1;
	pthread_mutex_init(&dc->lock, NULL);
	clock_cond_init(&dc->cond);
	clock_cond_init(&dc->done_cond);
	/* A directory (and its parents) no other user can have planted or
	 * change: then the paths used below stay the ones checked. */
	dirfd = safedir_open(dir, err, errlen);
	if (dirfd < 0)
		goto fail;
	dc->lock_fd = mountlock_take(dirfd, dir, "cache", wait_ms, err, errlen);
	if (dc->lock_fd < 0)
		goto fail;
	if (diskcache_load(dc, why, sizeof(why)) < 0) {
		log_warnx("disk cache %s is damaged (%s): starting a new one",
			  dir, why);
		diskcache_wipe(dc);
		if (diskcache_load(dc, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "cannot make the cache %s: %s",
				 dir, why);
			goto fail;
		}
	}
	snprintf(bodies, sizeof(bodies), "%s/bodies", dir);
	bodiesfd = safedir_openat(dirfd, "bodies", bodies, err, errlen);
	if (bodiesfd < 0)
		goto fail;
	close(bodiesfd);
	close(dirfd);
	dc->writing = true;
	dc->stats.writing = true;
	return dc;
fail:
	if (dirfd >= 0)
		close(dirfd);
	diskcache_close(dc);
	return NULL;
}

const char *diskcache_dir(const struct diskcache *dc)
{
	return dc->dir;
}

bool diskcache_has_folders(struct diskcache *dc)
{
	bool r;

	pthread_mutex_lock(&dc->lock);
	r = dc->have_folder_list;
	pthread_mutex_unlock(&dc->lock);
	return r;
}

/* Orders folders by their place in the list. */
static int diskcache_pos_cmp(const void *a, const void *b)
{
	const struct diskcache_folder *x = *(struct diskcache_folder *const *)a;
	const struct diskcache_folder *y = *(struct diskcache_folder *const *)b;

	return (x->pos > y->pos) - (x->pos < y->pos);
}

int diskcache_get_folders(struct diskcache *dc, struct store_folder **f_r,
			  size_t *n_r)
{
	struct diskcache_folder *f, *ft, **v = NULL;
	struct store_folder *out = NULL;
	size_t n = 0, i;
	int rc = -ENOMEM;

	pthread_mutex_lock(&dc->lock);
	if (!dc->have_folder_list || dc->broken) {
		pthread_mutex_unlock(&dc->lock);
		return -ENOENT;
	}
	v = calloc(HASH_COUNT(dc->folders) + 1, sizeof(*v));
	if (!v)
		goto out;
	HASH_ITER(hh, dc->folders, f, ft)
	{
		if (f->in_list)
			v[n++] = f;
	}
	qsort(v, n, sizeof(*v), diskcache_pos_cmp);
	out = calloc(n + 1, sizeof(*out));
	if (!out)
		goto out;
	for (i = 0; i < n; i++) {
		out[i].name = strdup(v[i]->name);
		out[i].delim = v[i]->delim;
		out[i].attrs = v[i]->attrs;
		out[i].messages = STORE_COUNT_UNKNOWN;
		out[i].mtime = v[i]->mtime;
		if (!out[i].name) {
			store_folders_free(out, i);
			out = NULL;
			goto out;
		}
	}
	rc = 0;
out:
	pthread_mutex_unlock(&dc->lock);
	free(v);
	*f_r = out;
	*n_r = rc == 0 ? n : 0;
	return rc;
}

/* Folder of that name, made (with a new id) if missing; lock held. */
static struct diskcache_folder *diskcache_folder(struct diskcache *dc,
						 const char *name, bool make)
{
	struct diskcache_folder *f;

	HASH_FIND(hh, dc->folders, name, strlen(name), f);
	if (f || !make)
		return f;
	return diskcache_folder_add(dc, name, dc->next_folder_id);
}

/* Queues a job (lock held) and wakes the writer. */
static void diskcache_queue(struct diskcache *dc, struct diskcache_job *j)
{
	j->next = NULL;
	if (dc->tail)
		dc->tail->next = j;
	else
		dc->head = j;
	dc->tail = j;
	dc->queued_bytes += j->len;
	dc->seq_queued++;
	pthread_cond_signal(&dc->cond);
}

/* Frees a job and what it owns. */
static void diskcache_job_free(struct diskcache_job *j)
{
	free(j->data);
	free(j->folder);
	store_listing_clear(&j->listing);
	store_folders_free(j->folders, j->n_folders);
	free(j);
}

void diskcache_put_folders(struct diskcache *dc, const struct store_folder *fl,
			   size_t n)
{
	struct diskcache_job *j = calloc(1, sizeof(*j));
	struct diskcache_folder *f, *ft;
	size_t i;

	if (!j || !(j->folders = calloc(n + 1, sizeof(*j->folders))))
		goto fail;
	for (i = 0; i < n; i++) {
		j->folders[i].name = strdup(fl[i].name);
		j->folders[i].delim = fl[i].delim;
		j->folders[i].attrs = fl[i].attrs;
		j->n_folders = i + 1;
		if (!j->folders[i].name)
			goto fail;
	}
	j->kind = DISKCACHE_JOB_FOLDERS;
	pthread_mutex_lock(&dc->lock);
	HASH_ITER(hh, dc->folders, f, ft)
	{
		f->in_list = false;
	}
	for (i = 0; i < n; i++) {
		f = diskcache_folder(dc, fl[i].name, true);
		if (!f)
			continue;
		f->in_list = true;
		f->pos = (int)i;
		f->delim = fl[i].delim;
		f->attrs = fl[i].attrs;
	}
	dc->have_folder_list = true;
	if (dc->writing && !dc->broken)
		diskcache_queue(dc, j);
	else
		diskcache_job_free(j);
	pthread_mutex_unlock(&dc->lock);
	return;
fail:
	if (j)
		diskcache_job_free(j);
}

bool diskcache_get_state(struct diskcache *dc, const char *folder,
			 struct store_listing *state_r)
{
	struct diskcache_folder *f;
	bool r = false;

	memset(state_r, 0, sizeof(*state_r));
	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	if (f && f->has_state && !dc->broken) {
		*state_r = f->state;
		state_r->msgs = NULL;
		state_r->n = 0;
		r = true;
	}
	pthread_mutex_unlock(&dc->lock);
	return r;
}

/* True when two listing states are the same (messages not compared). */
static bool diskcache_same_state(const struct store_listing *a,
				 const struct store_listing *b)
{
	return a->uidvalidity == b->uidvalidity && a->uidnext == b->uidnext &&
	       a->exists == b->exists && a->modseq == b->modseq;
}

/* Queues the write of folder f's mtime, with the state it is for when
 * with_state (lock held). Out of memory loses it: a later mount then
 * finds the folder changed (a later mtime), never an earlier one. */
static void diskcache_queue_mtime(struct diskcache *dc,
				  const struct diskcache_folder *f,
				  bool with_state)
{
	struct diskcache_job *j;

	if (!dc->writing || dc->broken)
		return;
	j = calloc(1, sizeof(*j));
	if (!j || !(j->folder = strdup(f->name))) {
		free(j);
		return;
	}
	j->kind = DISKCACHE_JOB_MTIME;
	j->key.folder = f->id;
	j->mtime = f->mtime;
	j->has_mstate = with_state;
	j->listing.uidvalidity = f->mstate.uidvalidity;
	j->listing.uidnext = f->mstate.uidnext;
	j->listing.exists = f->mstate.exists;
	j->listing.modseq = f->mstate.modseq;
	diskcache_queue(dc, j);
}

time_t diskcache_mtime(struct diskcache *dc, const char *folder,
		       const struct store_listing *state, time_t now)
{
	struct diskcache_folder *f;
	time_t t = 0;

	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, state != NULL);
	if (f && state &&
	    !(f->has_mstate && f->mtime &&
	      diskcache_same_state(&f->mstate, state))) {
		if (now > f->mtime)
			f->mtime = now;
		memset(&f->mstate, 0, sizeof(f->mstate));
		f->mstate.uidvalidity = state->uidvalidity;
		f->mstate.uidnext = state->uidnext;
		f->mstate.exists = state->exists;
		f->mstate.modseq = state->modseq;
		f->has_mstate = true;
		diskcache_queue_mtime(dc, f, true);
	}
	if (f)
		t = f->mtime;
	pthread_mutex_unlock(&dc->lock);
	return t;
}

void diskcache_keep_mtime(struct diskcache *dc, const char *folder,
			  time_t mtime)
{
	struct diskcache_folder *f;

	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, true);
	if (f && mtime > f->mtime) {
		f->mtime = mtime;
		diskcache_queue_mtime(dc, f, false);
	}
	pthread_mutex_unlock(&dc->lock);
}

/* True when a message of l has a content identity. */
static bool diskcache_has_oids(const struct store_listing *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!store_oid_none(&l->msgs[i].oid))
			return true;
	return false;
}

/* Replaces a folder's listed sizes and identities with those of l
 * (lock held); the identities only when one of them is not none. */
static void diskcache_set_sizes(struct diskcache_folder *f,
				const struct store_listing *l)
{
	uint32_t *uids = malloc((l->n + 1) * sizeof(*uids));
	uint64_t *sizes = malloc((l->n + 1) * sizeof(*sizes));
	bool with_oids = diskcache_has_oids(l);
	struct store_oid *oids =
		with_oids ? malloc((l->n + 1) * sizeof(*oids)) : NULL;
	size_t i;

	free(f->uids);
	free(f->sizes);
	free(f->oids);
	f->uids = NULL;
	f->sizes = NULL;
	f->oids = NULL;
	f->n = 0;
	if (!uids || !sizes || (with_oids && !oids)) {
		free(uids);
		free(sizes);
		free(oids);
		return;
	}
	for (i = 0; i < l->n; i++) {
		uids[i] = l->msgs[i].uid;
		sizes[i] = l->msgs[i].size;
		if (oids)
			oids[i] = l->msgs[i].oid;
	}
	f->uids = uids;
	f->sizes = sizes;
	f->oids = oids;
	f->n = l->n;
	f->state = *l;
	f->state.msgs = NULL;
	f->state.n = 0;
	f->has_state = true;
}

/* Where uid is or would go in a folder's listed UIDs (lock held). */
static size_t diskcache_listed_pos(const struct diskcache_folder *f,
				   uint32_t uid)
{
	size_t lo = 0, hi = f->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The listed size of a message (lock held), and its content identity
 * (oid_r may be NULL; none when it has none); false if not listed. */
static bool diskcache_listed(const struct diskcache_folder *f,
			     uint32_t uidvalidity, uint32_t uid,
			     uint64_t *size_r, struct store_oid *oid_r)
{
	size_t lo;

	if (!f->has_state || f->state.uidvalidity != uidvalidity)
		return false;
	lo = diskcache_listed_pos(f, uid);
	if (lo == f->n || f->uids[lo] != uid)
		return false;
	*size_r = f->sizes[lo];
	if (oid_r && f->oids)
		*oid_r = f->oids[lo];
	else if (oid_r)
		memset(oid_r, 0, sizeof(*oid_r));
	return true;
}

static bool diskcache_listed_size(const struct diskcache_folder *f,
				  uint32_t uidvalidity, uint32_t uid,
				  uint64_t *size_r)
{
	return diskcache_listed(f, uidvalidity, uid, size_r, NULL);
}

/*
 * The object a message's section is kept under (lock held): the object
 * of its content identity when the folder's listing gives it one, the
 * section is the whole message and the object's size is the message's
 * listed RFC822.SIZE; made (with a new id) when make is set and there
 * is none. NULL: the message is kept under its own key.
 */
static struct diskcache_object *
diskcache_msg_object(struct diskcache *dc, const struct diskcache_folder *f,
		     uint32_t uidvalidity, uint32_t uid, const char *section,
		     bool make)
{
	struct diskcache_object *o;
	struct store_oid oid;
	uint64_t size;

	if (section[0] || !diskcache_listed(f, uidvalidity, uid, &size, &oid) ||
	    store_oid_none(&oid))
		return NULL;
	o = diskcache_object_find(dc, &oid);
	if (o)
		return o->size == size ? o : NULL;
	if (!make || dc->next_object_id == UINT32_MAX)
		return NULL;
	return diskcache_object_add(dc, &oid, size, dc->next_object_id);
}

/* The key of an object's body. */
static void diskcache_object_key(struct diskcache_mkey *k,
				 const struct diskcache_object *o)
{
	diskcache_key(k, 0, 0, o->id, DISKCACHE_WHOLE);
}

/* True when the listing's UIDs ascend (the size lookup needs it). */
static bool diskcache_sorted(const struct store_listing *l)
{
	size_t i;

	for (i = 1; i < l->n; i++)
		if (l->msgs[i].uid <= l->msgs[i - 1].uid)
			return false;
	return true;
}

/* Deep copy of a listing; false when out of memory. */
static bool diskcache_copy_listing(struct store_listing *to,
				   const struct store_listing *from)
{
	size_t i;

	*to = *from;
	to->msgs = calloc(from->n + 1, sizeof(*to->msgs));
	to->n = 0;
	if (!to->msgs)
		return false;
	for (i = 0; i < from->n; i++) {
		to->msgs[i] = from->msgs[i];
		to->msgs[i].name = NULL;
		to->msgs[i].ref = NULL;
		to->msgs[i].flags =
			strdup(from->msgs[i].flags ? from->msgs[i].flags : "");
		to->n = i + 1;
		if (!to->msgs[i].flags)
			return false;
	}
	return true;
}

void diskcache_put_listing(struct diskcache *dc, const char *folder,
			   const struct store_listing *l)
{
	struct diskcache_job *j = calloc(1, sizeof(*j));
	struct diskcache_folder *f;

	if (!j || !(j->folder = strdup(folder)) || !diskcache_sorted(l) ||
	    !diskcache_copy_listing(&j->listing, l)) {
		if (j)
			diskcache_job_free(j);
		return;
	}
	j->kind = DISKCACHE_JOB_LISTING;
	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, true);
	if (f) {
		diskcache_set_sizes(f, l);
		f->ids = true;
		j->key.folder = f->id;
	}
	if (f && dc->writing && !dc->broken)
		diskcache_queue(dc, j);
	else
		diskcache_job_free(j);
	pthread_mutex_unlock(&dc->lock);
}

bool diskcache_listing_has_ids(struct diskcache *dc, const char *folder)
{
	struct diskcache_folder *f;
	bool r;

	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	r = !f || !f->has_state || f->ids;
	pthread_mutex_unlock(&dc->lock);
	return r;
}

/* Reads the messages of folder id from db into out; 0 or -errno. */
static int diskcache_read_msgs(sqlite3 *db, uint32_t id,
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
static int diskcache_read_state(sqlite3 *db, uint32_t id,
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
static int diskcache_read_listing(struct diskcache *dc, uint32_t id,
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
	rc = diskcache_exec(db, "BEGIN") < 0 ? -EIO : 0;
	if (rc == 0)
		rc = diskcache_read_state(db, id, out);
	if (rc == 0)
		rc = diskcache_read_msgs(db, id, out);
	sqlite3_close(db);
	return rc;
}

int diskcache_get_listing(struct diskcache *dc, const char *folder,
			  struct store_listing *out)
{
	struct diskcache_folder *f;
	uint32_t id = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	if (f && f->has_state && !dc->broken)
		id = f->id;
	pthread_mutex_unlock(&dc->lock);
	if (!id)
		return -ENOENT;
	rc = diskcache_read_listing(dc, id, out);
	if (rc < 0) {
		if (rc == -EIO)
			log_warnx("disk cache: the saved listing of %s is "
				  "damaged: listing it from the server",
				  folder);
		store_listing_clear(out);
		memset(out, 0, sizeof(*out));
		return rc;
	}
	/* The listed sizes, unless a newer listing came meanwhile. */
	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	if (f && f->id == id && f->state.uidvalidity == out->uidvalidity &&
	    f->state.modseq == out->modseq &&
	    f->state.uidnext == out->uidnext &&
	    f->state.exists == out->exists && !f->uids)
		diskcache_set_sizes(f, out);
	pthread_mutex_unlock(&dc->lock);
	return 0;
}

/* Notes that a body file failed a check: the whole section is
 * forgotten (index now, files by the writer). Lock not held. */
static void diskcache_damaged(struct diskcache *dc,
			      const struct diskcache_mkey *k, const char *why)
{
	struct diskcache_job *j = calloc(1, sizeof(*j));
	struct diskcache_body *b;

	log_warnx("disk cache: a body piece of UID %u is %s: discarded, "
		  "fetched again",
		  k->uid, why);
	pthread_mutex_lock(&dc->lock);
	dc->stats.dropped++;
	b = diskcache_body_get(dc, k, false);
	if (b)
		diskcache_body_drop(dc, b);
	if (j) {
		j->kind = DISKCACHE_JOB_FORGET;
		j->key = *k;
		diskcache_queue(dc, j);
	}
	pthread_mutex_unlock(&dc->lock);
}

/*
 * Reads one body file into out (len bytes expected), checking its
 * header against key, chunk and length, and its checksum. 0 or a
 * reason for the log.
 */
static const char *diskcache_read_chunk(struct diskcache *dc,
					const struct diskcache_mkey *k,
					uint32_t chunk, char *out, size_t len)
{
	struct diskcache_hdr h;
	char path[4096];
	struct stat st;
	ssize_t r;
	int fd;

	diskcache_body_path(dc, k, chunk, path, sizeof(path));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return "missing";
	if (fstat(fd, &st) < 0 ||
	    (uint64_t)st.st_size != sizeof(h) + (uint64_t)len) {
		close(fd);
		return "of the wrong size";
	}
	r = pread(fd, &h, sizeof(h), 0);
	if (r == (ssize_t)sizeof(h))
		r = pread(fd, out, len, sizeof(h));
	close(fd);
	if (r != (ssize_t)len)
		return "unreadable";
	if (memcmp(h.magic, DISKCACHE_MAGIC, 8) != 0 || h.folder != k->folder ||
	    h.uidvalidity != k->uidvalidity || h.uid != k->uid ||
	    h.chunk != chunk || h.len != len ||
	    memcmp(h.section, k->section, sizeof(h.section)) != 0)
		return "not what its name says";
	if (h.sum != diskcache_sum(out, len))
		return "damaged (checksum)";
	return NULL;
}

/* Finds which chunks a read needs, with the lock held: false when one
 * is missing. *end_r gets the end of the bytes to return. */
static bool diskcache_plan(struct diskcache_body *b, uint64_t off, uint64_t len,
			   uint64_t *end_r)
{
	uint64_t end = off + len, c;

	if (b->total_known && end > b->total)
		end = b->total;
	if (end < off)
		end = off;
	for (c = off / CACHE_CHUNK; c * CACHE_CHUNK < end; c++)
		if (c > UINT32_MAX || !diskcache_body_has(b, (uint32_t)c))
			return false;
	/* Without a known end, the bytes must all be there. */
	if (!b->total_known && end < off + len)
		return false;
	*end_r = end;
	return true;
}

/* The length of a chunk on disk. */
static size_t diskcache_chunk_len(const struct diskcache_body *b, uint64_t c)
{
	uint64_t start = c * CACHE_CHUNK;

	if (b->total_known && b->total - start < CACHE_CHUNK)
		return (size_t)(b->total - start);
	return CACHE_CHUNK;
}

static void diskcache_forget_locked(struct diskcache *dc,
				    const struct diskcache_mkey *k);

/*
 * What is on disk of a message's section (lock held), its key in *k:
 * the body of the message's object (diskcache_msg_object()) when there
 * is one and it is of the object's size (the message's listed
 * RFC822.SIZE; one that is not is dropped, never served), else the
 * body under the message's own key (kept before its listing gave the
 * identity, or when it has none). NULL when neither is there.
 */
static struct diskcache_body *
diskcache_msg_body(struct diskcache *dc, const struct diskcache_folder *f,
		   uint32_t uidvalidity, uint32_t uid, const char *section,
		   struct diskcache_mkey *k)
{
	struct diskcache_object *o =
		diskcache_msg_object(dc, f, uidvalidity, uid, section, false);
	struct diskcache_body *b;

	if (o) {
		diskcache_object_key(k, o);
		b = diskcache_body_get(dc, k, false);
		if (b && b->total_known && b->total != o->size) {
			diskcache_forget_locked(dc, k);
			b = NULL;
		}
		if (b)
			return b;
	}
	if (!diskcache_key(k, f->id, uidvalidity, uid, section))
		return NULL;
	return diskcache_body_get(dc, k, false);
}

/*
 * A whole message just served from its own key while its listing gives
 * it a content identity (kept before the identity was known: a cache of
 * schema 2, or a store that came before the listing): when all of it is
 * there and no object of that identity exists yet, the writer moves its
 * pieces to a new object (read back, checked and written anew, as a
 * re-key does), so that the other messages of that identity find them.
 * Lock held.
 */
static void diskcache_promote_locked(struct diskcache *dc,
				     const struct diskcache_folder *f,
				     uint32_t uidvalidity, uint32_t uid,
				     const char *section,
				     const struct diskcache_mkey *k)
{
	struct diskcache_object *o;
	struct diskcache_body *b;
	struct diskcache_job *j;
	struct store_oid oid;
	uint64_t size, end;

	if (section[0] || k->folder == 0 || !dc->writing || dc->broken ||
	    !diskcache_listed(f, uidvalidity, uid, &size, &oid) ||
	    store_oid_none(&oid) || diskcache_object_find(dc, &oid))
		return;
	b = diskcache_body_get(dc, k, false);
	if (!b || !b->total_known || b->total != size ||
	    !diskcache_plan(b, 0, size + 1, &end))
		return;
	o = diskcache_msg_object(dc, f, uidvalidity, uid, section, true);
	j = o ? calloc(1, sizeof(*j)) : NULL;
	if (!j)
		return; /* the object fills at the next store of it */
	j->kind = DISKCACHE_JOB_REKEY;
	j->key = *k;
	diskcache_object_key(&j->to, o);
	j->move = true;
	j->total = size;
	j->oid = oid;
	diskcache_queue(dc, j);
}

int diskcache_read(struct diskcache *dc, const char *folder,
		   uint32_t uidvalidity, uint32_t uid, const char *section,
		   uint64_t off, uint64_t len, char **data_r, size_t *len_r)
{
	struct diskcache_folder *f;
	struct diskcache_body *b = NULL;
	struct diskcache_mkey k;
	uint64_t end = 0, total = 0, c;
	bool known = false;
	char *buf, *piece = NULL;

	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	if (f && !dc->broken)
		b = diskcache_msg_body(dc, f, uidvalidity, uid, section, &k);
	if (!b || len > STORE_MAX_PIECE + CACHE_CHUNK ||
	    !diskcache_plan(b, off, len, &end)) {
		dc->stats.misses++;
		pthread_mutex_unlock(&dc->lock);
		return -ENOENT;
	}
	known = b->total_known;
	total = b->total;
	b->used = ++dc->tick;
	b->used_dirty = true;
	diskcache_lru_unlink(dc, b);
	diskcache_lru_push(dc, b);
	pthread_mutex_unlock(&dc->lock);

	buf = malloc(end - off + 1);
	piece = malloc(CACHE_CHUNK);
	if (!buf || !piece)
		goto fail;
	for (c = off / CACHE_CHUNK; c * CACHE_CHUNK < end; c++) {
		struct diskcache_body tmp = {.total = total,
					     .total_known = known};
		size_t clen = diskcache_chunk_len(&tmp, c);
		uint64_t from = c * CACHE_CHUNK, a, z;
		const char *why;

		why = diskcache_read_chunk(dc, &k, (uint32_t)c, piece, clen);
		if (why) {
			diskcache_damaged(dc, &k, why);
			goto fail;
		}
		a = from < off ? off : from;
		z = from + clen < end ? from + clen : end;
		if (z > a)
			memcpy(buf + (a - off), piece + (a - from), z - a);
	}
	free(piece);
	pthread_mutex_lock(&dc->lock);
	dc->stats.hits++;
	f = diskcache_folder(dc, folder, false);
	if (f)
		diskcache_promote_locked(dc, f, uidvalidity, uid, section, &k);
	pthread_mutex_unlock(&dc->lock);
	*data_r = buf;
	*len_r = (size_t)(end - off);
	return 0;
fail:
	free(buf);
	free(piece);
	pthread_mutex_lock(&dc->lock);
	dc->stats.misses++;
	pthread_mutex_unlock(&dc->lock);
	return -ENOENT;
}

bool diskcache_has_all(struct diskcache *dc, const char *folder,
		       uint32_t uidvalidity, uint32_t uid, const char *section)
{
	struct diskcache_folder *f;
	struct diskcache_body *b = NULL;
	struct diskcache_mkey k;
	uint64_t end;
	bool r = false;

	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	if (f)
		b = diskcache_msg_body(dc, f, uidvalidity, uid, section, &k);
	if (b && b->total_known)
		r = diskcache_plan(b, 0, b->total + 1, &end);
	pthread_mutex_unlock(&dc->lock);
	return r;
}

/* Drops what is kept of a body (lock held): index now, files later. */
static void diskcache_forget_locked(struct diskcache *dc,
				    const struct diskcache_mkey *k)
{
	struct diskcache_body *b = diskcache_body_get(dc, k, false);
	struct diskcache_job *j;

	if (!b)
		return;
	diskcache_body_drop(dc, b);
	dc->stats.dropped++;
	j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->kind = DISKCACHE_JOB_FORGET;
	j->key = *k;
	diskcache_queue(dc, j);
}

/* Waits for room in the queue (lock held); false when there is none. */
static bool diskcache_room(struct diskcache *dc, size_t len, bool wait, int ms)
{
	struct timespec ts = clock_deadline(ms);

	while (dc->queued_bytes + len > DISKCACHE_QUEUE_MAX && dc->writing &&
	       !dc->stop) {
		if (!wait || pthread_cond_timedwait(&dc->done_cond, &dc->lock,
						    &ts) == ETIMEDOUT)
			return false;
	}
	return dc->writing && !dc->stop && !dc->broken;
}

/* Queues one chunk of a body (lock held). */
static void diskcache_queue_chunk(struct diskcache *dc,
				  const struct diskcache_mkey *k,
				  uint32_t chunk, const char *data, size_t len,
				  bool eof, uint64_t total,
				  const struct diskcache_object *o)
{
	struct diskcache_job *j = calloc(1, sizeof(*j));

	if (!j || !(j->data = malloc(len ? len : 1))) {
		free(j);
		return;
	}
	memcpy(j->data, data, len);
	j->kind = DISKCACHE_JOB_CHUNK;
	j->key = *k;
	j->chunk = chunk;
	j->len = len;
	j->eof = eof;
	j->total = total;
	if (o)
		j->oid = o->oid;
	diskcache_queue(dc, j);
}

void diskcache_store(struct diskcache *dc, const char *folder,
		     uint32_t uidvalidity, uint32_t uid, const char *section,
		     uint64_t off, const char *data, size_t len, bool eof,
		     bool wait, int ms)
{
	struct diskcache_folder *f;
	struct diskcache_object *o = NULL;
	struct diskcache_body *b;
	struct diskcache_mkey k;
	uint64_t size, c, end = off + len;

	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	if (!f || !diskcache_key(&k, f->id, uidvalidity, uid, section) ||
	    !diskcache_listed_size(f, uidvalidity, uid, &size) ||
	    !dc->max_bytes)
		goto out;
	/* A message with a content identity is kept once for all of its
	 * copies, under its object (of the same size: see
	 * diskcache_msg_object()). */
	o = diskcache_msg_object(dc, f, uidvalidity, uid, section, true);
	if (o)
		diskcache_object_key(&k, o);
	/* A body that disagrees with its listed size is never kept. */
	if ((eof && end != size) || end > size) {
		diskcache_forget_locked(dc, &k);
		goto out;
	}
	if (!diskcache_room(dc, len, wait, ms))
		goto out;
	b = diskcache_body_get(dc, &k, false);
	for (c = (off + CACHE_CHUNK - 1) / CACHE_CHUNK;
	     c * CACHE_CHUNK < end && c <= UINT32_MAX; c++) {
		uint64_t from = c * CACHE_CHUNK;
		uint64_t clen =
			size - from < CACHE_CHUNK ? size - from : CACHE_CHUNK;
		bool last = from + clen == size;

		if (from + clen > end || (last && clen < CACHE_CHUNK && !eof))
			break;
		if (b && diskcache_body_has(b, (uint32_t)c))
			continue;
		diskcache_queue_chunk(dc, &k, (uint32_t)c, data + (from - off),
				      (size_t)clen, last && eof, size, o);
	}
out:
	pthread_mutex_unlock(&dc->lock);
}

/* Adds a message to a folder's listed sizes and identities (lock
 * held): one moved there through the mount, which its saved listing
 * does not have yet. Out of memory leaves it out (a miss, never wrong
 * bytes). */
static void diskcache_listed_add(struct diskcache_folder *f,
				 uint32_t uidvalidity, uint32_t uid,
				 uint64_t size, const struct store_oid *oid)
{
	uint32_t *uids;
	uint64_t *sizes;
	struct store_oid *oids = NULL;
	bool with_oids = f->oids || !store_oid_none(oid);
	size_t at;

	if (!f->has_state || f->state.uidvalidity != uidvalidity || !f->uids ||
	    !f->sizes)
		return;
	at = diskcache_listed_pos(f, uid);
	if (at < f->n && f->uids[at] == uid)
		return;
	uids = realloc(f->uids, (f->n + 2) * sizeof(*uids));
	if (uids)
		f->uids = uids;
	sizes = realloc(f->sizes, (f->n + 2) * sizeof(*sizes));
	if (sizes)
		f->sizes = sizes;
	/* The first identity of a listing that had none makes its side
	 * array (all none until then). */
	if (with_oids)
		oids = f->oids ? realloc(f->oids, (f->n + 2) * sizeof(*oids))
			       : calloc(f->n + 2, sizeof(*oids));
	if (oids)
		f->oids = oids;
	if (!uids || !sizes || (with_oids && !oids))
		return;
	memmove(uids + at + 1, uids + at, (f->n - at) * sizeof(*uids));
	memmove(sizes + at + 1, sizes + at, (f->n - at) * sizeof(*sizes));
	uids[at] = uid;
	sizes[at] = size;
	if (oids) {
		memmove(oids + at + 1, oids + at, (f->n - at) * sizeof(*oids));
		oids[at] = *oid;
	}
	f->n++;
}

void diskcache_rekey(struct diskcache *dc, const char *folder,
		     uint32_t uidvalidity, uint32_t uid, const char *target,
		     uint32_t new_uidvalidity, uint32_t new_uid, bool move)
{
	struct diskcache_job *j = calloc(1, sizeof(*j));
	struct diskcache_folder *f, *t;
	struct store_oid oid;
	uint64_t size;

	if (!j || !(j->folder = strdup(target))) {
		free(j);
		return;
	}
	j->kind = DISKCACHE_JOB_REKEY;
	j->move = move;
	pthread_mutex_lock(&dc->lock);
	f = diskcache_folder(dc, folder, false);
	t = diskcache_folder(dc, target, true);
	if (!f || !t || !uidvalidity || !uid || !new_uidvalidity || !new_uid ||
	    !dc->max_bytes || !dc->writing || dc->broken ||
	    !diskcache_key(&j->key, f->id, uidvalidity, uid, DISKCACHE_WHOLE) ||
	    !diskcache_key(&j->to, t->id, new_uidvalidity, new_uid,
			   DISKCACHE_WHOLE) ||
	    diskcache_same_msg(&j->key, &j->to)) {
		pthread_mutex_unlock(&dc->lock);
		diskcache_job_free(j);
		return;
	}
	if (diskcache_listed(f, uidvalidity, uid, &size, &oid)) {
		j->total = size;
		/* One with a content identity is kept under it: the new
		 * UID has it too (RFC 8474: a move or copy keeps the
		 * EMAILID) until the target's next listing says. */
		if (!store_oid_none(&oid))
			diskcache_listed_add(t, new_uidvalidity, new_uid, size,
					     &oid);
	}
	/* Until the writer has copied the pieces, the new key has none. */
	diskcache_drop_msg_locked(dc, &j->to);
	diskcache_queue(dc, j);
	pthread_mutex_unlock(&dc->lock);
}

void diskcache_get_stats(struct diskcache *dc, struct diskcache_stats *st_r)
{
	pthread_mutex_lock(&dc->lock);
	*st_r = dc->stats;
	st_r->writing = dc->writing && !dc->broken;
	pthread_mutex_unlock(&dc->lock);
}

/* ---- the writer thread ---- */

/* Stops caching after a write failed for want of room (or a damaged
 * database); reads go on from the server. */
static void diskcache_stop_writing(struct diskcache *dc, const char *why,
				   bool broken)
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
static void diskcache_db_failed(struct diskcache *dc, int rc)
{
	if (rc == SQLITE_FULL || rc == SQLITE_IOERR)
		diskcache_stop_writing(dc, "the disk is full", false);
	else if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB)
		diskcache_stop_writing(dc, "the database is damaged", true);
	else if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
		log_warnx("disk cache: %s", sqlite3_errstr(rc));
}

/* Runs a statement with up to three integer and one text binding
 * given as a printf-less list; returns the SQLite code. */
static int diskcache_run(sqlite3 *db, const char *sql, int nint,
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

/* Writes one body chunk file (temporary name, then rename) and its row;
 * then marks it present in the index. False when it was not written. */
static bool diskcache_write_piece(struct diskcache *dc,
				  const struct diskcache_mkey *key,
				  uint32_t chunk, const char *data, size_t len,
				  bool eof, uint64_t total)
{
	struct diskcache_hdr h = {0};
	char path[4096], tmp[4200], dir[4096];
	sqlite3_int64 v[8];
	struct diskcache_body *b;
	int fd, rc;

	snprintf(dir, sizeof(dir), "%s/bodies/%u-%u", dc->dir, key->folder,
		 key->uidvalidity);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		goto io_failed;
	diskcache_body_path(dc, key, chunk, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	memcpy(h.magic, DISKCACHE_MAGIC, 8);
	h.folder = key->folder;
	h.uidvalidity = key->uidvalidity;
	h.uid = key->uid;
	h.chunk = chunk;
	h.len = (uint32_t)len;
	h.eof = eof;
	h.total = eof ? total : 0;
	h.sum = diskcache_sum(data, len);
	memcpy(h.section, key->section, sizeof(h.section));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		goto io_failed;
	/* A short write sets no errno: it means the disk is full. */
	errno = ENOSPC;
	if (write(fd, &h, sizeof(h)) != (ssize_t)sizeof(h) ||
	    write(fd, data, len) != (ssize_t)len) {
		int e = errno;

		close(fd);
		unlink(tmp);
		errno = e;
		goto io_failed;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		int e = errno;

		unlink(tmp);
		errno = e;
		goto io_failed;
	}
	v[0] = key->folder;
	v[1] = key->uidvalidity;
	v[2] = key->uid;
	v[3] = chunk;
	v[4] = (sqlite3_int64)len;
	v[5] = eof ? (sqlite3_int64)total : 0;
	pthread_mutex_lock(&dc->lock);
	v[6] = ++dc->tick;
	pthread_mutex_unlock(&dc->lock);
	rc = diskcache_run(dc->db,
			   "INSERT OR REPLACE INTO bodies(folder, uidvalidity,"
			   " uid, chunk, len, total, used, section)"
			   " VALUES(?, ?, ?, ?, ?, ?, ?, ?)",
			   7, v, key->section);
	if (rc != SQLITE_OK) {
		diskcache_db_failed(dc, rc);
		return false;
	}
	pthread_mutex_lock(&dc->lock);
	b = diskcache_body_get(dc, key, true);
	if (b && !diskcache_body_has(b, chunk) &&
	    diskcache_body_set(b, chunk)) {
		b->bytes += len;
		dc->stats.bytes += len;
		b->used = v[6];
		if (eof) {
			b->total = total;
			b->total_known = true;
		}
	}
	pthread_mutex_unlock(&dc->lock);
	return true;
io_failed:
	if (errno == ENOSPC || errno == EDQUOT)
		diskcache_stop_writing(dc, "the disk is full", false);
	else
		log_warnx("disk cache: cannot write %s: %s", path,
			  strerror(errno));
	return false;
}

/*
 * Writes the row of object id (oid, size), unless the object was
 * dropped meanwhile (evicted, or a piece of it found damaged): its id
 * is then not written again. SQLITE_OK when the object's pieces may be
 * written (-1 when it is gone).
 */
static int diskcache_write_object(struct diskcache *dc, uint32_t id,
				  const struct store_oid *oid, uint64_t size)
{
	sqlite3_int64 v[4] = {id, (sqlite3_int64)oid->a, (sqlite3_int64)oid->b,
			      (sqlite3_int64)size};
	struct diskcache_object *o;
	bool live;
	int rc;

	pthread_mutex_lock(&dc->lock);
	o = diskcache_object_by_id(dc, id);
	live = o && o->size == size && o->oid.a == oid->a && o->oid.b == oid->b;
	pthread_mutex_unlock(&dc->lock);
	if (!live)
		return -1;
	rc = diskcache_run(dc->db,
			   "INSERT OR IGNORE INTO objects(id, oid_a, oid_b,"
			   " size) VALUES(?, ?, ?, ?)",
			   4, v, NULL);
	diskcache_db_failed(dc, rc);
	return rc;
}

/* Writes a chunk of a body; one of an object's body (folder 0) with the
 * object's row (diskcache_write_object()). */
static void diskcache_write_chunk(struct diskcache *dc,
				  const struct diskcache_job *j)
{
	if (j->key.folder == 0 &&
	    diskcache_write_object(dc, j->key.uid, &j->oid, j->total) !=
		    SQLITE_OK)
		return;
	diskcache_write_piece(dc, &j->key, j->chunk, j->data, j->len, j->eof,
			      j->total);
}

/* Removes every file and row of a body section. */
static void diskcache_write_forget(struct diskcache *dc,
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
	diskcache_db_failed(dc, diskcache_run(dc->db,
					      "DELETE FROM bodies WHERE folder"
					      " = ? AND uidvalidity = ? AND"
					      " uid = ? AND section = ?",
					      3, v, k->section));
	/* An object goes with its body (diskcache_body_drop()). */
	if (k->folder == 0)
		diskcache_db_failed(dc,
				    diskcache_run(dc->db,
						  "DELETE FROM objects WHERE"
						  " id = ?",
						  1, v + 2, NULL));
}

/* A row of the bodies table, as a re-key reads it. */
struct diskcache_row {
	char section[DISKCACHE_SECTION_MAX];
	uint32_t chunk;
	size_t len;
	uint64_t total; /* not 0 on the message's last chunk */
};

/* The rows of every section of the message of k (writer); malloc'd,
 * NULL when there are none or on failure. */
static struct diskcache_row *diskcache_msg_rows(struct diskcache *dc,
						const struct diskcache_mkey *k,
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
static void diskcache_write_forget_msg(struct diskcache *dc,
				       const struct diskcache_mkey *k)
{
	sqlite3_int64 v[3] = {k->folder, k->uidvalidity, k->uid};
	struct diskcache_row *rows;
	struct diskcache_mkey sk;
	char path[4096];
	size_t n, i;

	pthread_mutex_lock(&dc->lock);
	diskcache_drop_msg_locked(dc, k);
	pthread_mutex_unlock(&dc->lock);
	rows = diskcache_msg_rows(dc, k, &n);
	for (i = 0; i < n; i++) {
		if (!diskcache_key(&sk, k->folder, k->uidvalidity, k->uid,
				   rows[i].section))
			continue;
		diskcache_body_path(dc, &sk, rows[i].chunk, path, sizeof(path));
		unlink(path);
	}
	free(rows);
	diskcache_db_failed(dc, diskcache_run(dc->db,
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
 * (j->to.folder 0: diskcache_promote_locked()), the whole message's
 * pieces only, under the object's row, while the object lives. A crash part way
 * leaves pieces that are each right for their key, or none (rows and
 * files not committed together are swept or missed at the next mount).
 */
static void diskcache_write_rekey(struct diskcache *dc,
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
		rc = diskcache_write_object(dc, j->to.uid, &j->oid, j->total);
		if (rc != SQLITE_OK)
			return;
	} else {
		rc = diskcache_run(dc->db,
				   "INSERT OR IGNORE INTO folders(id, name)"
				   " VALUES(?, ?)",
				   1, v, j->folder);
		diskcache_db_failed(dc, rc);
		diskcache_write_forget_msg(dc, &j->to);
	}
	rows = diskcache_msg_rows(dc, &j->key, &n);
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
		if (diskcache_read_chunk(dc, &from, r->chunk, buf, r->len))
			continue;
		if (!diskcache_write_piece(dc, &to, r->chunk, buf, r->len,
					   r->total != 0, r->total))
			break;
	}
	free(buf);
	free(rows);
	if (j->move)
		diskcache_write_forget_msg(dc, &j->key);
}

/* Drops every body of folder id whose UIDVALIDITY is not uv. */
static void diskcache_drop_uidvalidity(struct diskcache *dc, uint32_t id,
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
			nftw(path, diskcache_rm_cb, 4, FTW_DEPTH | FTW_PHYS);
		}
		sqlite3_finalize(st);
	}
	diskcache_db_failed(dc, diskcache_run(dc->db,
					      "DELETE FROM bodies WHERE folder"
					      " = ? AND uidvalidity <> ?",
					      2, v, NULL));
}

/* Saves a folder's listing: its state and every message. */
static void diskcache_write_listing(struct diskcache *dc,
				    const struct diskcache_job *j)
{
	const struct store_listing *l = &j->listing;
	sqlite3_int64 v[6] = {j->key.folder};
	sqlite3_stmt *st;
	size_t i;
	int rc;

	rc = diskcache_run(dc->db,
			   "INSERT OR IGNORE INTO folders(id, name)"
			   " VALUES(?, ?)",
			   1, v, j->folder);
	v[1] = l->uidvalidity;
	v[2] = l->uidnext;
	v[3] = l->exists;
	v[4] = (sqlite3_int64)l->modseq;
	v[5] = j->key.folder;
	if (rc == SQLITE_OK)
		rc = diskcache_run(dc->db,
				   "UPDATE folders SET listed = 1, ids = 1,"
				   " uidvalidity = ?2, uidnext = ?3,"
				   " nexists = ?4, modseq = ?5 WHERE id = ?6",
				   6, v, NULL);
	if (rc == SQLITE_OK)
		rc = diskcache_run(dc->db, "DELETE FROM msgs WHERE folder = ?",
				   1, v, NULL);
	if (rc != SQLITE_OK) {
		diskcache_db_failed(dc, rc);
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
	diskcache_db_failed(dc, rc);
	diskcache_drop_uidvalidity(dc, j->key.folder, l->uidvalidity);
}

/* Saves the folder list. */
static void diskcache_write_folders(struct diskcache *dc,
				    const struct diskcache_job *j)
{
	struct diskcache_folder *f;
	sqlite3_int64 v[4];
	size_t i;
	int rc;

	rc = diskcache_run(dc->db, "UPDATE folders SET in_list = 0", 0, NULL,
			   NULL);
	for (i = 0; rc == SQLITE_OK && i < j->n_folders; i++) {
		pthread_mutex_lock(&dc->lock);
		f = diskcache_folder(dc, j->folders[i].name, false);
		v[0] = f ? f->id : 0;
		pthread_mutex_unlock(&dc->lock);
		if (!v[0])
			continue;
		rc = diskcache_run(dc->db,
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
			rc = diskcache_run(dc->db,
					   "UPDATE folders SET delim = ?1,"
					   " attrs = ?2, pos = ?3, in_list = 1"
					   " WHERE id = ?4",
					   4, v, NULL);
	}
	diskcache_db_failed(dc, rc);
}

/* Saves a folder's mtime (never lowering it) and, when the job has
 * one, the state it is for. */
static void diskcache_write_mtime(struct diskcache *dc,
				  const struct diskcache_job *j)
{
	const struct store_listing *l = &j->listing;
	sqlite3_int64 v[6] = {j->key.folder,  (sqlite3_int64)j->mtime,
			      l->uidvalidity, l->uidnext,
			      l->exists,      (sqlite3_int64)l->modseq};
	int rc;

	rc = diskcache_run(dc->db,
			   "INSERT OR IGNORE INTO folders(id, name)"
			   " VALUES(?, ?)",
			   1, v, j->folder);
	if (rc == SQLITE_OK && j->has_mstate)
		rc = diskcache_run(dc->db,
				   "UPDATE folders SET mtime = max(mtime, ?2),"
				   " mt_uidvalidity = ?3, mt_uidnext = ?4,"
				   " mt_exists = ?5, mt_modseq = ?6,"
				   " mt_known = 1 WHERE id = ?1",
				   6, v, NULL);
	else if (rc == SQLITE_OK)
		rc = diskcache_run(dc->db,
				   "UPDATE folders SET mtime = max(mtime, ?2)"
				   " WHERE id = ?1",
				   2, v, NULL);
	diskcache_db_failed(dc, rc);
}

/* One job of the writer. */
static void diskcache_do(struct diskcache *dc, const struct diskcache_job *j)
{
	switch (j->kind) {
	case DISKCACHE_JOB_CHUNK:
		diskcache_write_chunk(dc, j);
		break;
	case DISKCACHE_JOB_FORGET:
		diskcache_write_forget(dc, &j->key);
		break;
	case DISKCACHE_JOB_LISTING:
		diskcache_write_listing(dc, j);
		break;
	case DISKCACHE_JOB_FOLDERS:
		diskcache_write_folders(dc, j);
		break;
	case DISKCACHE_JOB_MTIME:
		diskcache_write_mtime(dc, j);
		break;
	case DISKCACHE_JOB_REKEY:
		diskcache_write_rekey(dc, j);
		break;
	}
}

/* Saves the LRU times of bodies read since the last time, in one go. */
static void diskcache_save_lru(struct diskcache *dc)
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
static void diskcache_evict(struct diskcache *dc)
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
		diskcache_write_forget(dc, &k);
	}
}

/* Takes every queued job (lock held). */
static struct diskcache_job *diskcache_take(struct diskcache *dc,
					    uint64_t *seq_r)
{
	struct diskcache_job *j = dc->head;

	dc->head = dc->tail = NULL;
	*seq_r = dc->seq_queued;
	return j;
}

/* True when a body file's name (in directory F-V) is one the index
 * holds; temporaries and unknown names are not. Lock held. */
static bool diskcache_known_file(struct diskcache *dc, uint32_t folder,
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
static void diskcache_sweep(struct diskcache *dc)
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
			known = diskcache_known_file(dc, folder, uv, f->d_name);
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
static void *diskcache_main(void *arg)
{
	struct diskcache *dc = arg;
	struct diskcache_job *j, *next;
	uint64_t seq, bytes;
	bool first = true; /* the sweep counts as the first job */

	diskcache_sweep(dc);
	pthread_mutex_lock(&dc->lock);
	for (;; first = false) {
		if (!dc->head && !dc->stop && !first) {
			struct timespec ts = clock_deadline(DISKCACHE_LRU_MS);

			pthread_cond_timedwait(&dc->cond, &dc->lock, &ts);
		}
		j = diskcache_take(dc, &seq);
		pthread_mutex_unlock(&dc->lock);
		bytes = 0;
		diskcache_exec(dc->db, "BEGIN");
		for (; j; j = next) {
			next = j->next;
			bytes += j->len;
			pthread_mutex_lock(&dc->lock);
			bool skip =
				dc->broken || (!dc->writing &&
					       j->kind != DISKCACHE_JOB_FORGET);
			pthread_mutex_unlock(&dc->lock);
			if (!skip)
				diskcache_do(dc, j);
			diskcache_job_free(j);
		}
		diskcache_save_lru(dc);
		diskcache_db_failed(
			dc, sqlite3_exec(dc->db, "COMMIT", NULL, NULL, NULL));
		diskcache_evict(dc);
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

int diskcache_start(struct diskcache *dc)
{
	char why[256];
	int rc;

	dc->db = diskcache_db_open(dc, why, sizeof(why));
	if (!dc->db) {
		log_warnx("disk cache %s: %s: caching stops for this mount",
			  dc->dir, why);
		dc->writing = false;
		return 0;
	}
	dc->seq_queued++; /* the writer's sweep, for diskcache_flush() */
	rc = pthread_create(&dc->thread, NULL, diskcache_main, dc);
	if (rc) {
		sqlite3_close(dc->db);
		dc->db = NULL;
		return -rc;
	}
	dc->running = true;
	return 0;
}

bool diskcache_flush(struct diskcache *dc, int ms)
{
	struct timespec ts = clock_deadline(ms);
	bool done;
	uint64_t seq;

	pthread_mutex_lock(&dc->lock);
	seq = dc->seq_queued;
	while (dc->running && dc->seq_done < seq &&
	       pthread_cond_timedwait(&dc->done_cond, &dc->lock, &ts) !=
		       ETIMEDOUT)
		;
	done = !dc->running || dc->seq_done >= seq;
	pthread_mutex_unlock(&dc->lock);
	return done;
}

void diskcache_close(struct diskcache *dc)
{
	struct diskcache_job *j;

	if (!dc)
		return;
	if (dc->running) {
		pthread_mutex_lock(&dc->lock);
		dc->stop = true;
		pthread_cond_signal(&dc->cond);
		pthread_mutex_unlock(&dc->lock);
		pthread_join(dc->thread, NULL);
	}
	sqlite3_close(dc->db);
	while ((j = dc->head)) {
		dc->head = j->next;
		diskcache_job_free(j);
	}
	diskcache_free_tables(dc);
	mountlock_release(dc->lock_fd);
	pthread_mutex_destroy(&dc->lock);
	pthread_cond_destroy(&dc->cond);
	pthread_cond_destroy(&dc->done_cond);
	free(dc->dir);
	free(dc->db_path);
	free(dc);
}
