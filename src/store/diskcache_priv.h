/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * diskcache_priv: what the parts of diskcache (diskcache.c,
 * diskcache_db.c, diskcache_body.c, diskcache_object.c,
 * diskcache_writer.c) share: the records of the cache and the
 * functions one part calls in another. Not for use outside them: the
 * rest of mailfs uses diskcache.h.
 */
#ifndef MAILFS_DISKCACHE_PRIV_H
#define MAILFS_DISKCACHE_PRIV_H

#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <uthash.h>

#include "diskcache.h"
#include "store.h"

/* Bytes of a section name in a key, its NUL included. */
#define DISKCACHE_SECTION_MAX 16

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
 * diskcache_db_load_objects()).
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

/* diskcache.c: the folder index, the queue */
bool diskcache_key(struct diskcache_mkey *k, uint32_t folder,
		   uint32_t uidvalidity, uint32_t uid, const char *section);
struct diskcache_folder *diskcache_folder_add(struct diskcache *dc,
					      const char *name, uint32_t id);
void diskcache_free_tables(struct diskcache *dc);
struct diskcache_folder *diskcache_folder(struct diskcache *dc,
					  const char *name, bool make);
void diskcache_queue(struct diskcache *dc, struct diskcache_job *j);
void diskcache_job_free(struct diskcache_job *j);
bool diskcache_listed(const struct diskcache_folder *f, uint32_t uidvalidity,
		      uint32_t uid, uint64_t *size_r, struct store_oid *oid_r);

/* diskcache_db.c: the database */
int diskcache_db_rm_cb(const char *path, const struct stat *st, int flag,
		       struct FTW *ftw);
void diskcache_db_wipe(struct diskcache *dc);
int diskcache_db_exec(sqlite3 *db, const char *sql);
sqlite3 *diskcache_db_open(struct diskcache *dc, char *why, size_t whylen);
int diskcache_db_load(struct diskcache *dc, char *why, size_t whylen);
int diskcache_db_read_listing(struct diskcache *dc, uint32_t id,
			      struct store_listing *out);
int diskcache_db_run(sqlite3 *db, const char *sql, int nint,
		     const sqlite3_int64 *ints, const char *text);

/* diskcache_body.c: body files and their index */
void diskcache_body_path(const struct diskcache *dc,
			 const struct diskcache_mkey *k, uint32_t chunk,
			 char *buf, size_t len);
void diskcache_body_lru_push(struct diskcache *dc, struct diskcache_body *b);
void diskcache_body_lru_unlink(struct diskcache *dc, struct diskcache_body *b);
struct diskcache_body *diskcache_body_get(struct diskcache *dc,
					  const struct diskcache_mkey *k,
					  bool make);
bool diskcache_body_set(struct diskcache_body *b, uint32_t chunk);
bool diskcache_body_has(const struct diskcache_body *b, uint32_t chunk);
void diskcache_body_drop(struct diskcache *dc, struct diskcache_body *b);
bool diskcache_body_same_msg(const struct diskcache_mkey *b,
			     const struct diskcache_mkey *k);
void diskcache_body_drop_msg(struct diskcache *dc,
			     const struct diskcache_mkey *k);
void diskcache_body_damaged(struct diskcache *dc,
			    const struct diskcache_mkey *k, const char *why);
const char *diskcache_body_read_chunk(struct diskcache *dc,
				      const struct diskcache_mkey *k,
				      uint32_t chunk, char *out, size_t len);
bool diskcache_body_plan(struct diskcache_body *b, uint64_t off, uint64_t len,
			 uint64_t *end_r);
size_t diskcache_body_chunk_len(const struct diskcache_body *b, uint64_t c);
struct diskcache_body *diskcache_body_of_msg(struct diskcache *dc,
					     const struct diskcache_folder *f,
					     uint32_t uidvalidity, uint32_t uid,
					     const char *section,
					     struct diskcache_mkey *k);
void diskcache_body_forget(struct diskcache *dc,
			   const struct diskcache_mkey *k);
bool diskcache_body_write(struct diskcache *dc,
			  const struct diskcache_mkey *key, uint32_t chunk,
			  const char *data, size_t len, bool eof,
			  uint64_t total);

/* diskcache_object.c: bodies kept once per identity */
struct diskcache_object *diskcache_object_by_id(struct diskcache *dc,
						uint32_t id);
struct diskcache_object *diskcache_object_add(struct diskcache *dc,
					      const struct store_oid *oid,
					      uint64_t size, uint32_t id);
void diskcache_object_drop(struct diskcache *dc, uint32_t id);
struct diskcache_object *
diskcache_object_of_msg(struct diskcache *dc, const struct diskcache_folder *f,
			uint32_t uidvalidity, uint32_t uid, const char *section,
			bool make);
void diskcache_object_key(struct diskcache_mkey *k,
			  const struct diskcache_object *o);
void diskcache_object_promote(struct diskcache *dc,
			      const struct diskcache_folder *f,
			      uint32_t uidvalidity, uint32_t uid,
			      const char *section,
			      const struct diskcache_mkey *k);
int diskcache_object_write(struct diskcache *dc, uint32_t id,
			   const struct store_oid *oid, uint64_t size);

/* diskcache_writer.c: the writer thread */
void diskcache_writer_stop(struct diskcache *dc, const char *why, bool broken);
void diskcache_writer_failed(struct diskcache *dc, int rc);
void *diskcache_writer_main(void *arg);

#endif
