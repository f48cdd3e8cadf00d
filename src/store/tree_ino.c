// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tree_ino: the inode numbers of the tree (tree.h, tree_priv.h): each
 * folder incarnation's upper half, given once per tree, and the index
 * that maps a listed message's number back to its path
 * (tree_ino_path()).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "tree.h"
#include "tree_priv.h"

/*
 * A folder incarnation, (folder, UIDVALIDITY), and the upper half its
 * messages' inode numbers carry. An upper half is given once per tree:
 * when the incarnation ends (the folder left the folder list, or its
 * UIDVALIDITY changed) it is retired, out of binds_by_key, and never
 * given again, so that an inode number the kernel may still hold for a
 * message never names another message, whatever the folder names and
 * UIDVALIDITYs the server shows.
 */
struct tree_bind {
	struct {
		uint64_t folder_id;
		uint32_t uidvalidity;
	} key;
	uint32_t hi;
	bool retired;
	UT_hash_handle hh_key;
	UT_hash_handle hh_hi;
};

/* One entry of the inode index: the folder whose messages' inode
 * numbers have upper half hi, unless two folders share it. */
struct tree_hi {
	uint32_t hi;
	bool ambiguous;
	struct tree_folder *f; /* valid while hi_gen == gen */
	UT_hash_handle hh;
};

/*
 * Inode of a message: the upper half its folder incarnation was given
 * (tree_ino_bind()), the UID below. Within a folder, inode order is UID
 * order, which is listing order: walkers that read big directories in
 * inode order (GNU fts, hence grep -r and find, above 10,000 entries)
 * then read messages in the order read-ahead fetches them. The upper
 * half is never 0, so 0 and 1 (the root) are avoided.
 */
uint64_t tree_ino_msg(const struct tree_listing *l, uint32_t uid)
{
	return (uint64_t)l->hi << 32 | uid;
}

/* The upper half a hash of (folder, UIDVALIDITY) gives: the first one
 * tried, so that inode numbers stay the same across remounts. */
static uint32_t tree_ino_hi_hash(uint64_t folder_id, uint32_t uidvalidity)
{
	uint64_t h = tree_hash(&folder_id, sizeof(folder_id), TREE_HASH_SEED);
	uint32_t hi;

	h = tree_hash(&uidvalidity, sizeof(uidvalidity), h);
	hi = (uint32_t)(h >> 32) ^ (uint32_t)h;
	return hi ? hi : 1;
}

/*
 * The upper half of (folder_id, uidvalidity)'s inode numbers: the one
 * it was given, or else its hash, or, when another incarnation (live or
 * retired) has that one, the next free value. 0 when out of memory.
 * The write lock is held.
 */
uint32_t tree_ino_bind(struct tree *t, uint64_t folder_id, uint32_t uidvalidity)
{
	struct tree_bind *b, *other;
	uint32_t hi;

	b = calloc(1, sizeof(*b));
	if (!b)
		return 0;
	b->key.folder_id = folder_id;
	b->key.uidvalidity = uidvalidity;
	HASH_FIND(hh_key, t->binds_by_key, &b->key, sizeof(b->key), other);
	if (other) {
		free(b);
		return other->hi;
	}
	hi = tree_ino_hi_hash(folder_id, uidvalidity);
	for (;;) {
		HASH_FIND(hh_hi, t->binds_by_hi, &hi, sizeof(hi), other);
		if (!other)
			break;
		if (++hi == 0)
			hi = 1;
	}
	b->hi = hi;
	HASH_ADD(hh_key, t->binds_by_key, key, sizeof(b->key), b);
	HASH_ADD(hh_hi, t->binds_by_hi, hi, sizeof(b->hi), b);
	return hi;
}

/* Ends the incarnation whose messages carry the upper half hi: the
 * value stays taken. The write lock is held. */
void tree_ino_retire(struct tree *t, uint32_t hi)
{
	struct tree_bind *b;

	HASH_FIND(hh_hi, t->binds_by_hi, &hi, sizeof(hi), b);
	if (b && !b->retired) {
		HASH_DELETE(hh_key, t->binds_by_key, b);
		b->retired = true;
	}
}

/* The inode number of a folder's directory: a hash of its id, never
 * 0 or 1 (the root). */
uint64_t tree_ino_folder(const struct tree_folder *f)
{
	uint64_t h = tree_hash("dir", 3, f->id);

	return h < 2 ? h + 2 : h;
}

/* Frees the inode index. */
static void tree_ino_index_clear(struct tree *t)
{
	struct tree_hi *e, *tmp;

	HASH_ITER(hh, t->hi_index, e, tmp)
	{
		HASH_DEL(t->hi_index, e);
		free(e);
	}
	t->hi_built = false;
}

/* Rebuilds the inode index from the listed folders; the read lock and
 * hi_lock are held. Out of memory leaves it partial: a message not
 * found is then only a node more in fsll. */
static void tree_ino_index_rebuild(struct tree *t)
{
	struct tree_folder *f, *tmp;
	struct tree_hi *e;
	uint32_t hi;

	tree_ino_index_clear(t);
	HASH_ITER(hh_path, t->by_path, f, tmp)
	{
		if (!f->listing)
			continue;
		hi = f->listing->hi;
		HASH_FIND(hh, t->hi_index, &hi, sizeof(hi), e);
		if (e) {
			e->ambiguous = true;
			continue;
		}
		e = calloc(1, sizeof(*e));
		if (!e)
			break;
		e->hi = hi;
		e->f = f;
		HASH_ADD(hh, t->hi_index, hi, sizeof(e->hi), e);
	}
	t->hi_built = true;
	t->hi_gen = t->gen;
}

/* The mount path of the listed message whose inode number is ino,
 * from the listings in memory alone (tree.h): fsll stores no node for
 * it. */
size_t tree_ino_path(struct tree *t, uint64_t ino, char *buf, size_t size)
{
	uint32_t hi = (uint32_t)(ino >> 32), uid = (uint32_t)ino;
	const struct tree_folder *f = NULL;
	const struct tree_msg *m = NULL;
	struct tree_hi *e;
	size_t len = 0;
	int n;

	if (!hi || !uid || !size)
		return 0;
	pthread_rwlock_rdlock(&t->lock);
	if (t->maildir)
		goto out;
	pthread_mutex_lock(&t->hi_lock);
	if (!t->hi_built || t->hi_gen != t->gen)
		tree_ino_index_rebuild(t);
	HASH_FIND(hh, t->hi_index, &hi, sizeof(hi), e);
	if (e && !e->ambiguous)
		f = e->f;
	pthread_mutex_unlock(&t->hi_lock);
	if (f && f->listing)
		m = tree_listing_by_uid(f->listing, uid);
	if (m && m->name && !m->gone && !m->alias) {
		n = snprintf(buf, size, "/%s%s%s", f->path,
			     f->path[0] ? "/" : "", m->name);
		if (n > 0 && (size_t)n < size)
			len = (size_t)n;
	}
out:
	pthread_rwlock_unlock(&t->lock);
	return len;
}

uint64_t tree_ino_of(struct tree *t, const char *folder, uint32_t uidvalidity,
		     uint32_t uid, uint64_t *size_r)
{
	const struct tree_msg *m = NULL;
	struct tree_folder *f;
	struct tree_hi *e;
	uint64_t ino = 0;
	uint32_t hi = 0;

	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (t->maildir || !uid || !f || !f->listing ||
	    f->listing->state.uidvalidity != uidvalidity)
		goto out;
	pthread_mutex_lock(&t->hi_lock);
	if (!t->hi_built || t->hi_gen != t->gen)
		tree_ino_index_rebuild(t);
	HASH_FIND(hh, t->hi_index, &f->listing->hi, sizeof(hi), e);
	if (e && !e->ambiguous && e->f == f)
		hi = f->listing->hi;
	pthread_mutex_unlock(&t->hi_lock);
	if (hi)
		m = tree_listing_by_uid(f->listing, uid);
	if (m && m->name && !m->gone && !m->alias) {
		ino = (uint64_t)hi << 32 | uid;
		*size_r = m->size;
	}
out:
	pthread_rwlock_unlock(&t->lock);
	return ino;
}

/* Frees the inode index and every incarnation's upper half (at the
 * tree's end). */
void tree_ino_free(struct tree *t)
{
	struct tree_bind *b, *tmp;

	tree_ino_index_clear(t);
	HASH_CLEAR(hh_key, t->binds_by_key);
	HASH_ITER(hh_hi, t->binds_by_hi, b, tmp)
	{
		HASH_DELETE(hh_hi, t->binds_by_hi, b);
		free(b);
	}
}
