// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * diskcache_object: whole messages kept once per content identity
 * (diskcache.h, diskcache_priv.h): the objects (identity, listed size,
 * id), the object a message is kept under, the promotion of a body kept
 * under a message's own key, and the object's row.
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "diskcache.h"
#include "diskcache_priv.h"

/* The object of a content identity, NULL if none (lock held). */
static struct diskcache_object *
diskcache_object_find(struct diskcache *dc, const struct store_oid *oid)
{
	struct diskcache_object *o;

	HASH_FIND(hh, dc->objects, oid, sizeof(*oid), o);
	return o;
}

/* The object of an id, NULL if none (lock held). */
struct diskcache_object *diskcache_object_by_id(struct diskcache *dc,
						uint32_t id)
{
	struct diskcache_object *o;

	HASH_FIND(hh_id, dc->objects_by_id, &id, sizeof(id), o);
	return o;
}

/* Adds an object (lock held, or the cache not yet shared); NULL when
 * out of memory or when the id or the identity is taken. */
struct diskcache_object *diskcache_object_add(struct diskcache *dc,
					      const struct store_oid *oid,
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
 * body (diskcache_writer_forget()). */
void diskcache_object_drop(struct diskcache *dc, uint32_t id)
{
	struct diskcache_object *o = diskcache_object_by_id(dc, id);

	if (!o)
		return;
	HASH_DELETE(hh, dc->objects, o);
	HASH_DELETE(hh_id, dc->objects_by_id, o);
	free(o);
}

/*
 * The object a message's section is kept under (lock held): the object
 * of its content identity when the folder's listing gives it one, the
 * section is the whole message and the object's size is the message's
 * listed RFC822.SIZE; made (with a new id) when make is set and there
 * is none. NULL: the message is kept under its own key.
 */
struct diskcache_object *
diskcache_object_of_msg(struct diskcache *dc, const struct diskcache_folder *f,
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
void diskcache_object_key(struct diskcache_mkey *k,
			  const struct diskcache_object *o)
{
	diskcache_key(k, 0, 0, o->id, DISKCACHE_WHOLE);
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
void diskcache_object_promote(struct diskcache *dc,
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
	    !diskcache_body_plan(b, 0, size + 1, &end))
		return;
	o = diskcache_object_of_msg(dc, f, uidvalidity, uid, section, true);
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

/*
 * Writes the row of object id (oid, size), unless the object was
 * dropped meanwhile (evicted, or a piece of it found damaged): its id
 * is then not written again. SQLITE_OK when the object's pieces may be
 * written (-1 when it is gone).
 */
int diskcache_object_write(struct diskcache *dc, uint32_t id,
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
	rc = diskcache_db_run(dc->db,
			      "INSERT OR IGNORE INTO objects(id, oid_a, oid_b,"
			      " size) VALUES(?, ?, ?, ?)",
			      4, v, NULL);
	diskcache_writer_failed(dc, rc);
	return rc;
}
