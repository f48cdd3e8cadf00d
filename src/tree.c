// SPDX-License-Identifier: GPL-2.0-or-later
/* tree: the folders and listings the mount shows; see tree.h. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uthash.h>

#include "clock.h"
#include "maildir.h"
#include "names.h"
#include "tree.h"

struct tree_msg {
	uint32_t uid;
	uint32_t idhash; /* what the name is made of, with date */
	uint64_t listed_size; /* and the size as listed */
	uint64_t size; /* what stat shows */
	time_t date;
	const char *flags; /* interned (tree_intern()): never freed */
	char *name; /* owned */
	char *ref; /* owned: the store's own id (POP3 UIDL), or NULL */
	char *base; /* owned: Maildir layout: the default layout's name,
		     * which the name is made from (NULL for an alias) */
	bool alias; /* another name for a message: found, not listed */
	bool user_named; /* Maildir layout: a name this mount gave it
			  * (delivered or moved under), listed instead of
			  * its own until its flags change
			  * (tree_keep_user_names()) */
	bool size_fixed; /* size corrected from the bytes: kept over the
			   * server's RFC822.SIZE in later listings */
	bool gone; /* removed since the listing: neither */
	bool extra; /* in tree_listing.extras: a struct tree_extra */
	struct tree_msg *next_extra; /* in tree_listing.extras */
	UT_hash_handle hh; /* by name */
};

/* A message added by this mount (tree_listing.extras), allocated alone
 * with its content identity (or none): these are few, so the identity
 * rides along instead of in a side array. */
struct tree_extra {
	struct tree_msg m; /* first: a struct tree_msg * with extra set
			    * points to its struct tree_extra */
	struct store_oid oid;
};

/* One folder's listing; messages sorted by UID. */
struct tree_listing {
	struct store_listing state; /* msgs == NULL */
	struct tree_msg *msgs; /* owned array */
	size_t n;
	/* The content identities of msgs (store_msg.oid), index for
	 * index; owned, NULL when no message of the listing has one (a
	 * server without OBJECTID or X-GM-MSGID pays nothing). */
	struct store_oid *oids;
	struct tree_msg *by_name; /* uthash over msgs and extras */
	/* Messages added by this mount since the listing (moved or
	 * appended here), each allocated alone; owned. */
	struct tree_msg *extras;
	bool maildir; /* named by the Maildir layout */
	uint32_t hi; /* its messages' inode numbers' upper half */
};

/* A folder's state as the server tells it: what changes whenever its
 * content does (HIGHESTMODSEQ only with CONDSTORE). */
struct tree_state {
	uint32_t uidvalidity, uidnext, exists;
	uint64_t modseq;
};

struct tree_folder {
	char *name; /* owned: server name */
	char *path; /* owned: mount path, "" for the root's own messages */
	const char *base; /* borrowed from path: last component */
	char delim;
	unsigned attrs;
	uint32_t messages; /* from the folder list, or STORE_COUNT_UNKNOWN */
	uint64_t id;
	unsigned subfolders;
	bool implied; /* a parent the server did not list */
	struct tree_listing *listing; /* owned, NULL until listed */
	time_t listed_at;
	/* Wall clock: when its content was last seen to change (for a
	 * directory without messages: its subfolders); what its
	 * directory, cur/ and new/ show as mtime. Never goes back. */
	time_t mtime;
	/* The last state the folder list or a listing told (has_seen):
	 * another one means the content changed meanwhile. */
	struct tree_state seen;
	bool has_seen;
	UT_hash_handle hh_path;
	UT_hash_handle hh_name;
};

/* A folder being refreshed (the folder list is "\n"). */
struct tree_busy {
	char *name; /* owned */
	UT_hash_handle hh;
};

struct tree {
	pthread_rwlock_t lock; /* folders, listings, timestamps */
	struct tree_folder *by_path;
	struct tree_folder *by_name;
	bool folders_listed;
	bool folders_known; /* a folder list was set once (never reset) */
	time_t folders_at;
	time_t root_mtime; /* the mount's start, moved when top-level
			    * folders come or go */
	unsigned top_folders;
	/* Refresh coordination; taken before lock, never after it. */
	pthread_mutex_t busy_lock;
	pthread_cond_t busy_cond;
	struct tree_busy *busy;
	bool maildir; /* the Maildir layout (tree_set_maildir()) */
	uint64_t gen; /* counts write locks: what the index below is of */
	/* Which folder a message inode number's upper half names
	 * (tree_ino_path()); rebuilt at first use after any change. Taken
	 * inside a read lock of `lock`, never across anything else. */
	pthread_mutex_t hi_lock;
	struct tree_hi *hi_index;
	uint64_t hi_gen;
	bool hi_built;
	/* Which folder incarnation each upper half was given to, for the
	 * tree's life (under the write lock of `lock`; see tree_bind()). */
	struct tree_bind *binds_by_key; /* live incarnations */
	struct tree_bind *binds_by_hi; /* every upper half ever given */
	/* Told what each new listing changed (tree_set_hook()). */
	void (*hook)(void *ctx, const struct tree_change *c);
	void *hook_ctx;
};

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

#define TREE_FOLDER_LIST_KEY "\n"
/* Installing a listing this big returns free memory to the system. */
#define TREE_TRIM_MESSAGES 10000

/* An interned flag list. */
struct tree_flagset {
	UT_hash_handle hh;
	char s[]; /* NUL-terminated */
};

/* Flag lists are interned, process-wide: a folder's messages share a
 * handful of them ("", "\Seen", ...), so each costs a pointer instead
 * of a string. Entries are never freed (as many as distinct lists). */
static struct tree_flagset *tree_flagsets;
static pthread_mutex_t tree_flag_lock = PTHREAD_MUTEX_INITIALIZER;

/* The interned copy of flags, or NULL when out of memory. */
static const char *tree_intern(const char *flags)
{
	struct tree_flagset *f;
	size_t len = strlen(flags);

	pthread_mutex_lock(&tree_flag_lock);
	HASH_FIND(hh, tree_flagsets, flags, len, f);
	if (!f && (f = malloc(sizeof(*f) + len + 1))) {
		memcpy(f->s, flags, len + 1);
		HASH_ADD_KEYPTR(hh, tree_flagsets, f->s, len, f);
	}
	pthread_mutex_unlock(&tree_flag_lock);
	return f ? f->s : NULL;
}

/* Takes the write lock; whatever is written invalidates the inode
 * index. */
static void tree_wrlock(struct tree *t)
{
	pthread_rwlock_wrlock(&t->lock);
	t->gen++;
}

uint64_t tree_hash(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = seed;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t tree_folder_id(const char *folder)
{
	return tree_hash(folder, strlen(folder), TREE_HASH_SEED);
}

/*
 * Inode of a message: the upper half its folder incarnation was given
 * (tree_bind()), the UID below. Within a folder, inode order is UID
 * order, which is listing order: walkers that read big directories in
 * inode order (GNU fts, hence grep -r and find, above 10,000 entries)
 * then read messages in the order read-ahead fetches them. The upper
 * half is never 0, so 0 and 1 (the root) are avoided.
 */
static uint64_t tree_msg_ino(const struct tree_listing *l, uint32_t uid)
{
	return (uint64_t)l->hi << 32 | uid;
}

/* The upper half a hash of (folder, UIDVALIDITY) gives: the first one
 * tried, so that inode numbers stay the same across remounts. */
static uint32_t tree_hi_hash(uint64_t folder_id, uint32_t uidvalidity)
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
static uint32_t tree_bind(struct tree *t, uint64_t folder_id,
			  uint32_t uidvalidity)
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
	hi = tree_hi_hash(folder_id, uidvalidity);
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
static void tree_retire(struct tree *t, uint32_t hi)
{
	struct tree_bind *b;

	HASH_FIND(hh_hi, t->binds_by_hi, &hi, sizeof(hi), b);
	if (b && !b->retired) {
		HASH_DELETE(hh_key, t->binds_by_key, b);
		b->retired = true;
	}
}

static uint64_t tree_folder_ino(const struct tree_folder *f)
{
	uint64_t h = tree_hash("dir", 3, f->id);

	return h < 2 ? h + 2 : h;
}

struct tree *tree_new(time_t root_mtime)
{
	struct tree *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	pthread_rwlock_init(&t->lock, NULL);
	pthread_mutex_init(&t->hi_lock, NULL);
	pthread_mutex_init(&t->busy_lock, NULL);
	clock_cond_init(&t->busy_cond);
	t->root_mtime = root_mtime;
	return t;
}

/* Frees a listing, its messages and their names. */
static void tree_listing_free(struct tree_listing *l)
{
	size_t i;

	if (!l)
		return;
	HASH_CLEAR(hh, l->by_name);
	for (i = 0; i < l->n; i++) {
		free(l->msgs[i].name);
		free(l->msgs[i].ref);
		free(l->msgs[i].base);
	}
	while (l->extras) {
		struct tree_msg *m = l->extras;

		l->extras = m->next_extra;
		free(m->name);
		free(m->base);
		free(m); /* its struct tree_extra, of which it is the first
			  * member */
	}
	free(l->msgs);
	free(l->oids);
	free(l);
}

/* The content identity of message m of listing l (or none): an extra's
 * own, else the listing's side array's, which a listing without
 * identities does not have. The lock is held. */
static struct store_oid tree_msg_oid(const struct tree_listing *l,
				     const struct tree_msg *m)
{
	static const struct store_oid none = {0, 0};

	if (m->extra) /* m is the first member of its struct tree_extra */
		return ((const struct tree_extra *)m)->oid;
	return l->oids ? l->oids[m - l->msgs] : none;
}

void tree_set_maildir(struct tree *t)
{
	t->maildir = true;
}

/* The mount path of a folder's server name: names_to_path(), with the
 * levels named cur, new or tmp escaped in the Maildir layout; cut to
 * its length (the table keeps it, and counts it: tree_folder_cost()). */
static char *tree_name_to_path(bool maildir, const char *name, char delim)
{
	char *path = names_to_path(name, delim), *escaped, *cut;

	if (path && maildir) {
		escaped = maildir_escape_path(path);
		free(path);
		path = escaped;
	}
	if (path && (cut = realloc(path, strlen(path) + 1)))
		path = cut;
	return path;
}

static void tree_folder_free(struct tree_folder *f)
{
	tree_listing_free(f->listing);
	free(f->name);
	free(f->path);
	free(f);
}

/* Frees every folder of a table linked through hh_path. */
static void tree_folders_free(struct tree_folder *by_path)
{
	struct tree_folder *f, *tmp;

	HASH_ITER(hh_path, by_path, f, tmp)
	{
		HASH_DELETE(hh_path, by_path, f);
		tree_folder_free(f);
	}
}

/* Frees the inode index. */
static void tree_hi_clear(struct tree *t)
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
static void tree_hi_rebuild(struct tree *t)
{
	struct tree_folder *f, *tmp;
	struct tree_hi *e;
	uint32_t hi;

	tree_hi_clear(t);
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

/* The message of listing l with uid, or NULL; the lock is held. */
static const struct tree_msg *tree_msg_by_uid(const struct tree_listing *l,
					      uint32_t uid)
{
	const struct tree_msg *m;
	size_t lo = 0, hi = l->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (l->msgs[mid].uid == uid)
			return &l->msgs[mid];
		if (l->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (m = l->extras; m; m = m->next_extra)
		if (m->uid == uid)
			return m;
	return NULL;
}

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
		tree_hi_rebuild(t);
	HASH_FIND(hh, t->hi_index, &hi, sizeof(hi), e);
	if (e && !e->ambiguous)
		f = e->f;
	pthread_mutex_unlock(&t->hi_lock);
	if (f && f->listing)
		m = tree_msg_by_uid(f->listing, uid);
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

/* Frees the inode index and every incarnation's upper half (at the
 * tree's end). */
static void tree_ino_free(struct tree *t)
{
	struct tree_bind *b, *tmp;

	tree_hi_clear(t);
	HASH_CLEAR(hh_key, t->binds_by_key);
	HASH_ITER(hh_hi, t->binds_by_hi, b, tmp)
	{
		HASH_DELETE(hh_hi, t->binds_by_hi, b);
		free(b);
	}
}

void tree_free(struct tree *t)
{
	struct tree_busy *b, *tmp;

	if (!t)
		return;
	HASH_CLEAR(hh_name, t->by_name);
	tree_folders_free(t->by_path);
	HASH_ITER(hh, t->busy, b, tmp)
	{
		HASH_DEL(t->busy, b);
		free(b->name);
		free(b);
	}
	tree_ino_free(t);
	pthread_rwlock_destroy(&t->lock);
	pthread_mutex_destroy(&t->hi_lock);
	pthread_mutex_destroy(&t->busy_lock);
	pthread_cond_destroy(&t->busy_cond);
	free(t);
}

void tree_info_msg(const struct tree_info *i, struct store_msg *msg)
{
	memset(msg, 0, sizeof(*msg));
	msg->uid = i->uid;
	msg->size = i->listed_size;
	msg->date = i->mtime;
	msg->idhash = i->idhash;
	msg->oid = i->oid;
	msg->flags = i->flags;
}

void tree_info_clear(struct tree_info *i)
{
	free(i->folder);
	free(i->folder_path);
	free(i->flags);
	free(i->store_ref);
	memset(i, 0, sizeof(*i));
}

/* Frees what a change report holds. */
static void tree_change_clear(struct tree_change *c)
{
	size_t i;

	for (i = 0; i < c->n_gone; i++)
		free(c->gone[i]);
	free(c->gone);
	free(c->folder);
	free(c->dir);
	memset(c, 0, sizeof(*c));
}

/* Adds name to c's gone names; false when out of memory. */
static bool tree_change_gone(struct tree_change *c, const char *name)
{
	char **g;

	if (c->n_gone == c->cap_gone) {
		size_t cap = c->cap_gone ? 2 * c->cap_gone : 16;

		g = realloc(c->gone, cap * sizeof(*g));
		if (!g)
			return false;
		c->gone = g;
		c->cap_gone = cap;
	}
	c->gone[c->n_gone] = strdup(name);
	return c->gone[c->n_gone] ? (c->n_gone++, true) : false;
}

/* Names folder f (NULL: the root) in a change report, once; false
 * (nomem set) when out of memory. */
static bool tree_change_init(struct tree_change *c, const struct tree_folder *f)
{
	const char *path = f ? f->path : "";

	if (c->dir)
		return true;
	c->folder = f ? strdup(f->name) : NULL;
	c->dir = malloc(strlen(path) + 2);
	if ((f && !c->folder) || !c->dir) {
		free(c->folder);
		free(c->dir);
		c->folder = c->dir = NULL;
		c->nomem = true;
		return false;
	}
	sprintf(c->dir, "/%s", path);
	return true;
}

/* The wall clock, in the seconds mtimes show. */
static time_t tree_wall(void)
{
	return time(NULL);
}

/* Moves folder f's mtime (NULL: the root's) to at if that is later;
 * true when it moved. The write lock is held. */
static bool tree_move_mtime(struct tree *t, struct tree_folder *f, time_t at)
{
	time_t *m = f ? &f->mtime : &t->root_mtime;

	if (at <= *m)
		return false;
	*m = at;
	return true;
}

/* The state a listing or the folder list tells. */
static struct tree_state tree_state_of(uint32_t uidvalidity, uint32_t uidnext,
				       uint32_t exists, uint64_t modseq)
{
	return (struct tree_state){uidvalidity, uidnext, exists, modseq};
}

/* Takes the state a listing or the folder list told of f: true when it
 * is not the one told before (the content changed meanwhile). The
 * write lock is held. */
static bool tree_see_state(struct tree_folder *f, struct tree_state s)
{
	bool moved = f->has_seen &&
		     (f->seen.uidvalidity != s.uidvalidity ||
		      f->seen.uidnext != s.uidnext ||
		      f->seen.exists != s.exists || f->seen.modseq != s.modseq);

	f->seen = s;
	f->has_seen = true;
	return moved;
}

/* Change reports gathered under the write lock, told after it. */
struct tree_changes {
	struct tree_change *c; /* owned */
	size_t n, cap;
};

/* Adds a report of folder f (NULL: the root) whose mtime moved; out of
 * memory drops it (the kernel's attributes then time out). */
static void tree_changes_add(struct tree *t, struct tree_changes *cs,
			     const struct tree_folder *f)
{
	struct tree_change *c;

	if (!t->hook)
		return;
	if (cs->n == cs->cap) {
		size_t cap = cs->cap ? 2 * cs->cap : 8;

		c = realloc(cs->c, cap * sizeof(*c));
		if (!c)
			return;
		cs->c = c;
		cs->cap = cap;
	}
	c = &cs->c[cs->n];
	memset(c, 0, sizeof(*c));
	if (!tree_change_init(c, f))
		return;
	c->mtime = f ? f->mtime : t->root_mtime;
	cs->n++;
}

/* Tells the hook (read under the write lock, which is now released)
 * each report, and frees them. */
static void tree_changes_tell(struct tree_changes *cs,
			      void (*hook)(void *ctx,
					   const struct tree_change *c),
			      void *ctx)
{
	size_t i;

	for (i = 0; i < cs->n; i++) {
		if (hook)
			hook(ctx, &cs->c[i]);
		tree_change_clear(&cs->c[i]);
	}
	free(cs->c);
	memset(cs, 0, sizeof(*cs));
}

/* Makes a folder record; path is taken (owned). */
static struct tree_folder *tree_folder_new(const char *name, char *path,
					   char delim, unsigned attrs)
{
	struct tree_folder *f = calloc(1, sizeof(*f));
	const char *slash;

	if (!f)
		return NULL;
	f->name = strdup(name);
	if (!f->name) {
		free(f);
		return NULL;
	}
	f->path = path;
	slash = strrchr(path, '/');
	f->base = slash ? slash + 1 : path;
	f->delim = delim;
	f->attrs = attrs;
	f->messages = STORE_COUNT_UNKNOWN;
	f->id = tree_folder_id(name);
	return f;
}

/* What a folder record costs the table's budget (TREE_MAX_FOLDER_BYTES):
 * the record and its two strings. */
static size_t tree_folder_cost(const struct tree_folder *f)
{
	return sizeof(*f) + strlen(f->name) + strlen(f->path) + 2;
}

/* Adds the parents of the server name `name` that the new table lacks
 * ("A" and "A.B" for "A.B.C"), as \Noselect folders, adding their cost
 * to *used. Their server names are the child's name cut at a delimiter,
 * so they are exact. The caller bounds the levels (TREE_MAX_DEPTH). */
static int tree_add_parents(struct tree_folder **by_path,
			    struct tree_folder **by_name, const char *name,
			    char delim, bool maildir, size_t *used)
{
	char *dup, *cut;
	int rc = 0;

	if (!delim)
		return 0;
	dup = strdup(name);
	if (!dup)
		return -ENOMEM;
	for (cut = strchr(dup, delim); cut; cut = strchr(cut + 1, delim)) {
		struct tree_folder *p;
		char *path;

		*cut = '\0';
		HASH_FIND(hh_name, *by_name, dup, strlen(dup), p);
		if (!p && *dup) {
			path = tree_name_to_path(maildir, dup, delim);
			if (path)
				HASH_FIND(hh_path, *by_path, path, strlen(path),
					  p);
			if (p) { /* another name shows as that path */
				free(path);
				*cut = delim;
				continue;
			}
			p = path ? tree_folder_new(dup, path, delim,
						   STORE_FOLDER_NOSELECT)
				 : NULL;
			if (!p) {
				free(path);
				rc = -ENOMEM;
				break;
			}
			p->implied = true;
			*used += tree_folder_cost(p);
			HASH_ADD_KEYPTR(hh_path, *by_path, p->path,
					strlen(p->path), p);
			HASH_ADD_KEYPTR(hh_name, *by_name, p->name,
					strlen(p->name), p);
		}
		*cut = delim;
	}
	free(dup);
	return rc;
}

/* Levels of a server name: its delimiters plus one (each delimiter
 * makes an implied parent), counted up to max + 1. */
static size_t tree_name_levels(const char *name, char delim, size_t max)
{
	size_t levels = 1;

	if (!delim)
		return 1;
	for (; *name && levels <= max; name++)
		levels += *name == delim;
	return levels;
}

/* The path of folder f of a folder list, or NULL with *rc set: -ENOMEM,
 * or 0 (counted in *sk) when it exceeds a bound (tree.h) other than the
 * budget. Checks the name before converting it, so that a hostile one
 * costs no more than its length. */
static char *tree_bounded_path(const struct tree *t,
			       const struct store_folder *f,
			       struct tree_skipped *sk, int *rc)
{
	char *path;

	*rc = 0;
	if (strnlen(f->name, STORE_MAX_FOLDER_NAME + 1) >
	    STORE_MAX_FOLDER_NAME) {
		sk->long_name++;
		return NULL;
	}
	if (tree_name_levels(f->name, f->delim, TREE_MAX_DEPTH) >
	    TREE_MAX_DEPTH) {
		sk->deep++;
		return NULL;
	}
	path = f->name[0] ? tree_name_to_path(t->maildir, f->name, f->delim)
			  : strdup("");
	if (!path) {
		*rc = -ENOMEM;
	} else if (strlen(path) > TREE_MAX_PATH) {
		sk->long_path++;
		free(path);
		path = NULL;
	}
	return path;
}

/* Counts the subfolders of each folder of a new table (the root's own
 * folder, "", is none); returns the top-level ones. */
static unsigned tree_count_subfolders(struct tree_folder *by_path)
{
	struct tree_folder *f, *tmp, *parent;
	unsigned top = 0;

	HASH_ITER(hh_path, by_path, f, tmp)
	{
		const char *slash = strrchr(f->path, '/');

		if (!f->path[0])
			continue;
		if (!slash) {
			top++;
			continue;
		}
		HASH_FIND(hh_path, by_path, f->path, (size_t)(slash - f->path),
			  parent);
		if (parent)
			parent->subfolders++;
	}
	return top;
}

/*
 * The folder table of a folder list, with the parents the server did
 * not list, into *by_path_r and *by_name_r (not shared yet). Each
 * folder holds what the list told of it (its state, when complete, as
 * seen; the store's mtime), which tree_folders_carry() merges with
 * what the tree knew. Folders beyond a bound (tree.h) are left out,
 * counted in *skipped (if given). 0 or -ENOMEM (nothing made).
 */
static int tree_folders_build(struct tree *t, const struct store_folder *fl,
			      size_t n, struct tree_folder **by_path_r,
			      struct tree_folder **by_name_r,
			      struct tree_skipped *skipped)
{
	struct tree_folder *by_path = NULL, *by_name = NULL, *f;
	struct tree_skipped sk = {0};
	size_t i, used = 0;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		char *path;

		if (used >= TREE_MAX_FOLDER_BYTES) {
			sk.over_budget++;
			continue;
		}
		path = tree_bounded_path(t, &fl[i], &sk, &rc);
		if (!path)
			continue;
		HASH_FIND(hh_path, by_path, path, strlen(path), f);
		if (f && f->implied) {
			/* Listed after one of its children: now real. */
			HASH_DELETE(hh_path, by_path, f);
			HASH_DELETE(hh_name, by_name, f);
			used -= tree_folder_cost(f);
			tree_folder_free(f);
		} else if (f) {
			/* Two server names, one path: keep the first. */
			free(path);
			continue;
		}
		f = tree_folder_new(fl[i].name, path, fl[i].delim, fl[i].attrs);
		if (!f) {
			free(path);
			rc = -ENOMEM;
			break;
		}
		f->messages = fl[i].messages;
		used += tree_folder_cost(f);
		f->mtime = fl[i].mtime;
		if (fl[i].uidvalidity && fl[i].uidnext &&
		    fl[i].messages != STORE_COUNT_UNKNOWN)
			tree_see_state(f, tree_state_of(fl[i].uidvalidity,
							fl[i].uidnext,
							fl[i].messages,
							fl[i].modseq));
		HASH_ADD_KEYPTR(hh_path, by_path, f->path, strlen(f->path), f);
		HASH_ADD_KEYPTR(hh_name, by_name, f->name, strlen(f->name), f);
		rc = tree_add_parents(&by_path, &by_name, f->name, f->delim,
				      t->maildir, &used);
	}
	if (skipped)
		*skipped = sk;
	if (rc < 0) {
		HASH_CLEAR(hh_name, by_name);
		tree_folders_free(by_path);
		return rc;
	}
	*by_path_r = by_path;
	*by_name_r = by_name;
	return 0;
}

/*
 * Carries what the tree knew of each folder that stays into the new
 * table: its listing and its mtime, which moves to the store's when
 * that is later, and to now when the list tells another state than the
 * one seen before: the content changed, so the listing is made stale
 * too (what a tool reads after seeing the new mtime is listed again). A
 * folder new to the tree takes the store's mtime, else the mount's
 * start (at the first list) or now. The write lock is held.
 */
static void tree_folders_carry(struct tree *t, struct tree_folder *by_path,
			       time_t wall, struct tree_changes *cs)
{
	struct tree_folder *f, *tmp, *old;

	HASH_ITER(hh_path, by_path, f, tmp)
	{
		struct tree_state told = f->seen;
		bool has_told = f->has_seen, moved;
		time_t store_mtime = f->mtime;

		HASH_FIND(hh_name, t->by_name, f->name, strlen(f->name), old);
		if (!old) {
			if (!f->mtime)
				f->mtime =
					t->folders_known ? wall : t->root_mtime;
			continue;
		}
		f->listing = old->listing;
		f->listed_at = old->listed_at;
		old->listing = NULL;
		f->mtime = old->mtime;
		f->seen = old->seen;
		f->has_seen = old->has_seen;
		moved = tree_move_mtime(t, f, store_mtime);
		if (has_told && tree_see_state(f, told)) {
			moved |= tree_move_mtime(t, f, wall);
			if (f->listing)
				f->listed_at = CLOCK_NEVER;
		}
		if (moved)
			tree_changes_add(t, cs, f);
	}
}

/* A subfolder f came into or went from the directory holding it (a
 * folder of the new table by_path, or the root): that directory's mtime
 * moves to wall. The write lock is held. */
static void tree_parent_moved(struct tree *t, struct tree_folder *by_path,
			      const struct tree_folder *f, time_t wall,
			      struct tree_changes *cs)
{
	size_t len = (size_t)(f->base - f->path);
	struct tree_folder *parent = NULL;

	if (!f->path[0])
		return; /* the root's own messages */
	if (len)
		HASH_FIND(hh_path, by_path, f->path, len - 1, parent);
	if (len && !parent)
		return;
	if (tree_move_mtime(t, parent, wall))
		tree_changes_add(t, cs, parent);
}

/* After a folder list that is not the mount's first: directories that
 * gained or lost a subfolder move their mtime. The write lock is held;
 * the new table's mtimes are carried already. */
static void tree_folders_parents(struct tree *t, struct tree_folder *by_path,
				 struct tree_folder *by_name, time_t wall,
				 struct tree_changes *cs)
{
	struct tree_folder *f, *tmp, *other;

	if (!t->folders_known)
		return;
	HASH_ITER(hh_path, by_path, f, tmp)
	{
		HASH_FIND(hh_name, t->by_name, f->name, strlen(f->name), other);
		if (!other)
			tree_parent_moved(t, by_path, f, wall, cs);
	}
	HASH_ITER(hh_path, t->by_path, f, tmp)
	{
		HASH_FIND(hh_name, by_name, f->name, strlen(f->name), other);
		if (!other)
			tree_parent_moved(t, by_path, f, wall, cs);
	}
}

/* Releases the write lock, then tells the hook of the reports gathered
 * under it. */
static void tree_unlock_tell(struct tree *t, struct tree_changes *cs)
{
	void (*hook)(void *ctx, const struct tree_change *c) = t->hook;
	void *ctx = t->hook_ctx;

	pthread_rwlock_unlock(&t->lock);
	tree_changes_tell(cs, hook, ctx);
}

int tree_set_folders(struct tree *t, const struct store_folder *fl, size_t n,
		     time_t now, struct tree_skipped *skipped)
{
	struct tree_folder *by_path, *by_name, *f, *tmp, *old_path;
	struct tree_changes cs = {0};
	unsigned top;
	time_t wall;
	int rc;

	rc = tree_folders_build(t, fl, n, &by_path, &by_name, skipped);
	if (rc < 0)
		return rc;
	top = tree_count_subfolders(by_path);

	tree_wrlock(t);
	wall = tree_wall();
	/* Folders that stay keep their listings and mtimes. */
	tree_folders_carry(t, by_path, wall, &cs);
	tree_folders_parents(t, by_path, by_name, wall, &cs);
	/* Folders that left the list end their incarnations. */
	HASH_ITER(hh_path, t->by_path, f, tmp)
	{
		if (f->listing)
			tree_retire(t, f->listing->hi);
	}
	old_path = t->by_path;
	HASH_CLEAR(hh_name, t->by_name);
	t->by_path = by_path;
	t->by_name = by_name;
	t->folders_listed = t->folders_known = true;
	t->folders_at = now;
	t->top_folders = top;
	tree_unlock_tell(t, &cs);

	tree_folders_free(old_path);
	return 0;
}

bool tree_folders_stale(struct tree *t, time_t now, unsigned max_age)
{
	bool stale;

	pthread_rwlock_rdlock(&t->lock);
	stale = !t->folders_listed ||
		!clock_recent(t->folders_at, now, max_age);
	pthread_rwlock_unlock(&t->lock);
	return stale;
}

/* The links of a folder's directory: its subfolders and, in the Maildir
 * layout, cur/, new/ and tmp/ of a folder that holds messages. */
static unsigned tree_folder_nlink(const struct tree *t,
				  const struct tree_folder *f)
{
	unsigned n = 2 + f->subfolders;

	if (t->maildir && !(f->attrs & STORE_FOLDER_NOSELECT))
		n += 3;
	return n;
}

/* Fills info for a folder; the lock is held. In the Maildir layout the
 * folder's own directory holds no messages (its cur/ does). */
static int tree_folder_info(const struct tree *t, const struct tree_folder *f,
			    struct tree_info *info)
{
	info->kind = TREE_FOLDER;
	info->ino = tree_folder_ino(f);
	info->nlink = tree_folder_nlink(t, f);
	info->mtime = f->mtime;
	info->attrs = f->attrs;
	if (t->maildir)
		info->attrs |= STORE_FOLDER_NOSELECT;
	info->folder_id = f->id;
	info->uidvalidity = f->listing ? f->listing->state.uidvalidity : 0;
	info->folder = strdup(f->name);
	info->folder_path = strdup(f->path);
	return info->folder && info->folder_path ? 0 : -ENOMEM;
}

/* Fills info for a message of folder f; the lock is held. */
static int tree_msg_info(const struct tree_folder *f, const struct tree_msg *m,
			 struct tree_info *info)
{
	uint32_t uv = f->listing->state.uidvalidity;

	info->kind = TREE_MESSAGE;
	info->ino = tree_msg_ino(f->listing, m->uid);
	info->nlink = 1;
	info->size = m->size;
	info->mtime = m->date;
	info->folder_id = f->id;
	info->uidvalidity = uv;
	info->uid = m->uid;
	info->idhash = m->idhash;
	info->listed_size = m->listed_size;
	info->oid = tree_msg_oid(f->listing, m);
	info->folder = strdup(f->name);
	info->folder_path = strdup(f->path);
	info->flags = strdup(m->flags ? m->flags : "");
	if (m->ref)
		info->store_ref = strdup(m->ref);
	return info->folder && info->folder_path && info->flags &&
			       (!m->ref || info->store_ref)
		       ? 0
		       : -ENOMEM;
}

static bool tree_fresh(const struct tree_folder *f, time_t now,
		       unsigned max_age)
{
	return f->listing && clock_recent(f->listed_at, now, max_age);
}

/* The folder holding messages whose directory is the first len bytes
 * of path; the lock is held. */
static struct tree_folder *tree_msg_folder(struct tree *t, const char *path,
					   size_t len)
{
	struct tree_folder *f;

	HASH_FIND(hh_path, t->by_path, path, len, f);
	return f && !(f->attrs & STORE_FOLDER_NOSELECT) ? f : NULL;
}

/*
 * tree_lookup() in the Maildir layout for a path that is no folder:
 * F/cur, F/new, F/tmp (folder info with sub set) or a message in F/cur
 * (key NAME) or F/new (key "new/NAME"). The lock is held.
 */
static int tree_maildir_lookup(struct tree *t, const char *path, time_t now,
			       unsigned max_age, struct tree_info *info)
{
	const char *slash = strrchr(path, '/'),
		   *base = slash ? slash + 1 : path;
	const char *dslash;
	struct tree_folder *f;
	enum maildir_sub sub;
	struct tree_msg *m;
	char key[NAMES_MAX_COMPONENT + 8];
	int rc;

	info->kind = TREE_NONE;
	if (!slash)
		return 0;
	sub = maildir_sub_of(base);
	f = sub ? tree_msg_folder(t, path, (size_t)(slash - path)) : NULL;
	if (f) {
		rc = tree_folder_info(t, f, info);
		info->attrs = f->attrs;
		info->sub = sub;
		info->nlink = 2;
		info->ino = tree_hash(base, 3, info->ino) | 2;
		return rc;
	}
	/* F/sub/NAME */
	for (dslash = slash; dslash > path && dslash[-1] != '/'; dslash--)
		;
	if (dslash == path || (size_t)(slash - dslash) != 3)
		return 0;
	memcpy(key, dslash, 3);
	key[3] = '\0';
	sub = maildir_sub_of(key);
	f = sub == MAILDIR_SUB_CUR || sub == MAILDIR_SUB_NEW
		    ? tree_msg_folder(t, path, (size_t)(dslash - 1 - path))
		    : NULL;
	if (!f || !*base || strlen(base) > NAMES_MAX_COMPONENT)
		return 0;
	if (!tree_fresh(f, now, max_age)) {
		info->kind = TREE_UNLISTED;
		info->folder = strdup(f->name);
		return info->folder ? 0 : -ENOMEM;
	}
	snprintf(key, sizeof(key), "%s%s", sub == MAILDIR_SUB_NEW ? "new/" : "",
		 base);
	HASH_FIND(hh, f->listing->by_name, key, strlen(key), m);
	return m ? tree_msg_info(f, m, info) : 0;
}

enum tree_kind tree_lookup(struct tree *t, const char *path, time_t now,
			   unsigned max_age, struct tree_info *info)
{
	struct tree_folder *f;
	struct tree_msg *m;
	const char *slash, *base;
	int rc = 0;

	memset(info, 0, sizeof(*info));
	while (*path == '/')
		path++;
	pthread_rwlock_rdlock(&t->lock);
	if (!*path) {
		info->kind = TREE_ROOT;
		info->ino = 1;
		info->nlink = 2 + t->top_folders;
		info->mtime = t->root_mtime;
		/* A flat store's messages are the root's. */
		HASH_FIND(hh_name, t->by_name, "", 0, f);
		if (f && f->mtime > info->mtime)
			info->mtime = f->mtime;
		goto out;
	}
	HASH_FIND(hh_path, t->by_path, path, strlen(path), f);
	if (f) {
		rc = tree_folder_info(t, f, info);
		goto out;
	}
	if (t->maildir) {
		rc = tree_maildir_lookup(t, path, now, max_age, info);
		goto out;
	}
	slash = strrchr(path, '/');
	base = slash ? slash + 1 : path;
	HASH_FIND(hh_path, t->by_path, path, slash ? (size_t)(slash - path) : 0,
		  f);
	if (!f || (f->attrs & STORE_FOLDER_NOSELECT) || !*base) {
		info->kind = TREE_NONE;
		goto out;
	}
	if (!tree_fresh(f, now, max_age)) {
		info->kind = TREE_UNLISTED;
		info->folder = strdup(f->name);
		rc = info->folder ? 0 : -ENOMEM;
		goto out;
	}
	HASH_FIND(hh, f->listing->by_name, base, strlen(base), m);
	if (m)
		rc = tree_msg_info(f, m, info);
	else
		info->kind = TREE_NONE;
out:
	pthread_rwlock_unlock(&t->lock);
	if (rc < 0) {
		tree_info_clear(info);
		info->kind = TREE_NONE;
	}
	return info->kind;
}

/* True when a subfolder of the directory at path (plen bytes) is
 * called name. The lock is held. The key is built in a buffer of fixed
 * size, or on the heap when longer (no stack array sized by a name);
 * without memory, no clash is seen. */
static bool tree_subfolder_named(const struct tree *t, const char *path,
				 size_t plen, const char *name)
{
	size_t len = plen + 1 + strlen(name) + 1;
	char buf[PATH_MAX], *sub = len <= sizeof(buf) ? buf : malloc(len);
	struct tree_folder *clash = NULL;

	if (!sub)
		return false;
	snprintf(sub, len, "%s%s%s", path, plen ? "/" : "", name);
	HASH_FIND(hh_path, t->by_path, sub, strlen(sub), clash);
	if (sub != buf)
		free(sub);
	return clash != NULL;
}

/* Passes one message of dir to fill, unless it is hidden (gone, an
 * alias, or shadowed by a subfolder of the same name). Returns what fill
 * returned. The lock is held. */
static int tree_fill_msg(struct tree *t, const struct tree_folder *dir,
			 const char *path, const struct tree_msg *m,
			 enum maildir_sub in,
			 int (*fill)(void *ctx, const char *name,
				     const struct tree_info *info),
			 void *ctx)
{
	const char *name = m->name;
	struct tree_info info;

	if (m->gone || m->alias)
		return 0;
	if (t->maildir) {
		/* Names in new/ are keyed "new/NAME"; no folder is there. */
		bool is_new = strncmp(name, "new/", 4) == 0;

		if (is_new != (in == MAILDIR_SUB_NEW))
			return 0;
		name += is_new ? 4 : 0;
	} else if (tree_subfolder_named(t, path, strlen(path), name)) {
		return 0;
	}
	memset(&info, 0, sizeof(info));
	info.kind = TREE_MESSAGE;
	info.ino = tree_msg_ino(dir->listing, m->uid);
	info.nlink = 1;
	info.size = m->size;
	info.mtime = m->date;
	info.uidvalidity = dir->listing->state.uidvalidity;
	info.uid = m->uid;
	return fill(ctx, name, &info);
}

/* Calls fill for cur/, new/ and tmp/ of a folder (Maildir layout). */
static int tree_fill_subs(const struct tree_folder *f,
			  int (*fill)(void *ctx, const char *name,
				      const struct tree_info *info),
			  void *ctx)
{
	enum maildir_sub sub;
	struct tree_info info;

	for (sub = MAILDIR_SUB_CUR; sub <= MAILDIR_SUB_TMP; sub++) {
		const char *name = maildir_sub_name(sub);

		memset(&info, 0, sizeof(info));
		info.kind = TREE_FOLDER;
		info.ino = tree_hash(name, 3, tree_folder_ino(f)) | 2;
		info.nlink = 2;
		info.mtime = f->mtime;
		info.sub = sub;
		if (fill(ctx, name, &info))
			return 1;
	}
	return 0;
}

/* tree_readdir() of F/cur, F/new or F/tmp (Maildir layout); the lock
 * is held. Returns -ENOENT when path is none of them. */
static int tree_maildir_readdir(struct tree *t, const char *path,
				int (*fill)(void *ctx, const char *name,
					    const struct tree_info *info),
				void *ctx)
{
	const char *slash = strrchr(path, '/');
	const struct tree_msg *m;
	struct tree_folder *dir;
	enum maildir_sub sub;
	size_t i;

	if (!slash || !(sub = maildir_sub_of(slash + 1)))
		return -ENOENT;
	dir = tree_msg_folder(t, path, (size_t)(slash - path));
	if (!dir)
		return -ENOENT;
	if (sub == MAILDIR_SUB_TMP || !dir->listing)
		return 0;
	for (i = 0; i < dir->listing->n; i++)
		if (tree_fill_msg(t, dir, path, &dir->listing->msgs[i], sub,
				  fill, ctx))
			return 0;
	for (m = dir->listing->extras; m; m = m->next_extra)
		if (tree_fill_msg(t, dir, path, m, sub, fill, ctx))
			return 0;
	return 0;
}

int tree_readdir(struct tree *t, const char *path,
		 int (*fill)(void *ctx, const char *name,
			     const struct tree_info *info),
		 void *ctx)
{
	struct tree_folder *dir = NULL, *f, *tmp;
	const struct tree_msg *m;
	struct tree_info info;
	size_t plen, i;
	int rc = 0;

	while (*path == '/')
		path++;
	plen = strlen(path);
	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_path, t->by_path, path, plen, dir);
	if (!dir && plen && t->maildir) {
		rc = tree_maildir_readdir(t, path, fill, ctx);
		goto out;
	}
	if (!dir && plen) {
		rc = -ENOENT;
		goto out;
	}
	HASH_ITER(hh_path, t->by_path, f, tmp)
	{
		const char *rest = f->path + plen;

		if (!f->path[0] || strncmp(f->path, path, plen) != 0)
			continue;
		if (plen) {
			if (*rest != '/')
				continue;
			rest++;
		}
		if (strchr(rest, '/'))
			continue;
		memset(&info, 0, sizeof(info));
		info.kind = TREE_FOLDER;
		info.ino = tree_folder_ino(f);
		info.nlink = tree_folder_nlink(t, f);
		info.mtime = f->mtime;
		if (fill(ctx, rest, &info))
			goto out;
	}
	if (t->maildir) {
		/* A folder's messages are in its cur/. */
		if (dir && dir->path[0] &&
		    !(dir->attrs & STORE_FOLDER_NOSELECT))
			tree_fill_subs(dir, fill, ctx);
		goto out;
	}
	if (!dir || !dir->listing)
		goto out;
	for (i = 0; i < dir->listing->n; i++)
		if (tree_fill_msg(t, dir, path, &dir->listing->msgs[i],
				  MAILDIR_SUB_NONE, fill, ctx))
			goto out;
	for (m = dir->listing->extras; m; m = m->next_extra)
		if (tree_fill_msg(t, dir, path, m, MAILDIR_SUB_NONE, fill, ctx))
			goto out;
out:
	pthread_rwlock_unlock(&t->lock);
	return rc;
}

/*
 * The naming policy: the first name of the form names_message() makes
 * for m that no message of the listing has yet, so that messages that
 * share date, size and Message-ID get "-2", "-3", ... in the order they
 * are named (ascending UID for a listing). Identity (UID) plays no part,
 * so a message keeps its name across folders, accounts and remounts.
 */
/* True when a message of the listing (not m) has the default name base;
 * the lock is held. */
static bool tree_base_taken(const struct tree_listing *l, const char *base)
{
	const struct tree_msg *m;
	size_t i;

	for (i = 0; i < l->n; i++)
		if (!l->msgs[i].gone && l->msgs[i].base &&
		    strcmp(l->msgs[i].base, base) == 0)
			return true;
	for (m = l->extras; m; m = m->next_extra)
		if (!m->gone && m->base && strcmp(m->base, base) == 0)
			return true;
	return false;
}

/* The Maildir layout's name for a message added to a listing: its
 * default name, numbered as tree_msg_name() numbers them (kept in
 * m->base), made into maildir_name(). */
static char *tree_maildir_msg_name(const struct tree_listing *l,
				   struct tree_msg *m)
{
	char base[NAMES_MESSAGE_MAX], name[MAILDIR_NAME_MAX];
	unsigned n;

	for (n = 1; n < UINT_MAX; n++) {
		names_message(base, m->date, m->listed_size, m->idhash, n);
		if (!tree_base_taken(l, base))
			break;
	}
	free(m->base);
	m->base = strdup(base);
	if (!m->base ||
	    !maildir_name(name, sizeof(name), base, m->uid, m->flags))
		return NULL;
	return strdup(name);
}

/* Turns a listing named by the default policy into the Maildir
 * layout's names: each default name is kept as the base. */
static int tree_maildir_names(struct tree_listing *l)
{
	char name[MAILDIR_NAME_MAX];
	size_t i;

	HASH_CLEAR(hh, l->by_name);
	l->maildir = true;
	for (i = 0; i < l->n; i++) {
		struct tree_msg *m = &l->msgs[i];

		if (!maildir_name(name, sizeof(name), m->name, m->uid,
				  m->flags))
			return -ENOMEM;
		m->base = m->name;
		m->name = strdup(name);
		if (!m->name)
			return -ENOMEM;
		HASH_ADD_KEYPTR(hh, l->by_name, m->name, strlen(m->name), m);
	}
	return 0;
}

static char *tree_msg_name(const struct tree_listing *l, struct tree_msg *m)
{
	char name[NAMES_MESSAGE_MAX];
	struct tree_msg *dup;
	unsigned n;

	if (l->maildir)
		return tree_maildir_msg_name(l, m);
	for (n = 1; n < UINT_MAX; n++) {
		names_message(name, m->date, m->listed_size, m->idhash, n);
		HASH_FIND(hh, l->by_name, name, strlen(name), dup);
		if (!dup)
			break;
	}
	return strdup(name);
}

/* Orders a store's messages by UID (qsort), the order a listing keeps
 * them in. */
static int tree_msg_cmp(const void *a, const void *b)
{
	const struct store_msg *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* The side array of the content identities of l's messages (in their
 * order), or NULL when none has one; *nomem_r set when one was needed
 * and no memory was left. */
static struct store_oid *tree_listing_oids(const struct store_listing *l,
					   bool *nomem_r)
{
	struct store_oid *oids;
	size_t i;

	*nomem_r = false;
	for (i = 0; i < l->n && store_oid_none(&l->msgs[i].oid); i++)
		;
	if (i == l->n)
		return NULL;
	oids = malloc(l->n * sizeof(*oids));
	if (!oids) {
		*nomem_r = true;
		return NULL;
	}
	for (i = 0; i < l->n; i++)
		oids[i] = l->msgs[i].oid;
	return oids;
}

static struct tree_msg *tree_find_uid(struct tree_listing *l, uint32_t uid,
				      size_t *pos_r);

/* Carries sizes found wrong by reading into a new listing, which has the
 * server's (wrong) RFC822.SIZE again. */
static void tree_keep_fixed_sizes(struct tree_listing *old,
				  struct tree_listing *nl)
{
	size_t i, pos;

	for (i = 0; i < old->n; i++) {
		struct tree_msg *m;

		if (!old->msgs[i].size_fixed)
			continue;
		m = tree_find_uid(nl, old->msgs[i].uid, &pos);
		if (m) {
			m->size = old->msgs[i].size;
			m->size_fixed = true;
		}
	}
}

static int tree_add_extra(struct tree_listing *l, const struct store_msg *sm,
			  const char *name, bool alias, char *name_r,
			  struct tree_msg **m_r);

/*
 * Carries the names this mount gave messages in the Maildir layout (a
 * delivery into new/, a rename) from old into a new listing nl of the
 * same UIDVALIDITY, for each message still there with the same flags: a
 * tool handed that name (Python's Maildir.add() returns it) finds the
 * message under it until its flags change, whenever push or a refresh
 * lists the folder again. The lock is held; out of memory drops a name.
 */
static void tree_keep_user_names(struct tree_listing *old,
				 struct tree_listing *nl)
{
	struct tree_msg *m, *own, *named;
	struct store_msg sm;
	size_t pos;

	if (!old->maildir || !nl->maildir)
		return;
	for (m = old->extras; m; m = m->next_extra) {
		if (!m->user_named || m->gone)
			continue;
		own = tree_find_uid(nl, m->uid, &pos);
		if (!own || own->flags != m->flags)
			continue;
		memset(&sm, 0, sizeof(sm));
		sm.uid = own->uid;
		sm.idhash = own->idhash;
		sm.oid = tree_msg_oid(nl, own);
		sm.size = own->size;
		sm.date = own->date;
		sm.flags = (char *)own->flags;
		if (tree_add_extra(nl, &sm, m->name, false, NULL, &named) ==
			    0 &&
		    named) {
			named->user_named = true;
			own->alias = true;
		}
	}
}

void tree_set_hook(struct tree *t,
		   void (*hook)(void *ctx, const struct tree_change *c),
		   void *ctx)
{
	tree_wrlock(t);
	t->hook = hook;
	t->hook_ctx = ctx;
	pthread_rwlock_unlock(&t->lock);
}

/*
 * What listing nl changes against old, the one it replaces in folder f,
 * into c: the names the kernel may hold that now name nothing, another
 * message (another inode) or a message of another size; and whether any
 * message came, went or changed its flags. Out of memory makes every
 * old name gone (the safe side). The write lock is held.
 */
static void tree_diff(const struct tree_folder *f,
		      const struct tree_listing *old,
		      const struct tree_listing *nl, struct tree_change *c)
{
	const struct tree_msg *m, *n, *tmp;
	size_t listed = 0;

	if (!tree_change_init(c, f))
		return;
	HASH_ITER(hh, old->by_name, m, tmp)
	{
		if (m->gone || m->alias)
			continue;
		listed++;
		HASH_FIND(hh, nl->by_name, m->name, strlen(m->name), n);
		if (n && n->uid == m->uid && old->hi == nl->hi &&
		    n->size == m->size) {
			if (n->flags != m->flags)
				c->content = true;
			continue;
		}
		c->content = true;
		if (!tree_change_gone(c, m->name))
			c->nomem = true;
	}
	if (listed != HASH_CNT(hh, nl->by_name))
		c->content = true;
}

/*
 * Moves folder f's mtime for its new listing nl, given what c found
 * against the listing it replaces: to now when messages came, went or
 * changed flags, or when nl's state is not the one told before; to the
 * store's time for it (nl->state.mtime) when that is later. A move is
 * put in c. The write lock is held.
 */
static void tree_listing_moved(struct tree *t, struct tree_folder *f,
			       const struct tree_listing *nl,
			       struct tree_change *c)
{
	const struct store_listing *s = &nl->state;
	bool changed, moved;

	changed = tree_see_state(f, tree_state_of(s->uidvalidity, s->uidnext,
						  s->exists, s->modseq));
	changed |= c->content || c->n_gone || c->nomem;
	moved = changed && tree_move_mtime(t, f, tree_wall());
	moved |= tree_move_mtime(t, f, s->mtime);
	if (moved && tree_change_init(c, f))
		c->mtime = f->mtime;
}

/*
 * The listing a store's listing l makes, to be installed: its messages
 * (taken from l, which is cleared in every case) sorted by UID, with
 * the side array of their content identities, named by the naming
 * policy (the Maildir layout's with maildir). NULL when out of memory.
 * No lock is held: the new listing is not shared yet.
 */
static struct tree_listing *tree_listing_build(struct store_listing *l,
					       bool maildir)
{
	struct tree_listing *nl = calloc(1, sizeof(*nl));
	size_t i;
	bool nomem;

	if (!nl)
		goto nomem;
	/* Named in ascending UID order, which decides who gets "-2";
	 * sorted before the copy, so that the identities' side array
	 * follows the same order. */
	if (l->n > 1)
		qsort(l->msgs, l->n, sizeof(*l->msgs), tree_msg_cmp);
	nl->msgs = calloc(l->n ? l->n : 1, sizeof(*nl->msgs));
	nl->oids = tree_listing_oids(l, &nomem);
	if (!nl->msgs || nomem)
		goto nomem;
	for (i = 0; i < l->n; i++) {
		struct store_msg *sm = &l->msgs[i];
		struct tree_msg *m = &nl->msgs[nl->n++];

		m->uid = sm->uid;
		m->idhash = sm->idhash;
		m->listed_size = m->size = sm->size;
		m->date = sm->date;
		m->flags = tree_intern(sm->flags ? sm->flags : "");
		if (!m->flags)
			goto nomem;
		m->ref = sm->ref;
		sm->ref = NULL;
		m->name = sm->name; /* a store's own name (POP3) */
		sm->name = NULL;
	}
	for (i = 0; i < nl->n; i++) {
		struct tree_msg *m = &nl->msgs[i], *dup;

		if (!m->name && !(m->name = tree_msg_name(nl, m)))
			goto nomem;
		HASH_FIND(hh, nl->by_name, m->name, strlen(m->name), dup);
		if (!dup)
			HASH_ADD_KEYPTR(hh, nl->by_name, m->name,
					strlen(m->name), m);
	}
	if (maildir && tree_maildir_names(nl) < 0)
		goto nomem;
	nl->state = *l;
	nl->state.msgs = NULL;
	nl->state.n = 0;
	nl->state.delta = nl->state.complete = nl->state.have_present = false;
	memset(&nl->state.vanished, 0, sizeof(nl->state.vanished));
	memset(&nl->state.present, 0, sizeof(nl->state.present));
	store_listing_clear(l);
	return nl;
nomem:
	tree_listing_free(nl);
	store_listing_clear(l);
	return NULL;
}

int tree_set_listing(struct tree *t, const char *folder,
		     struct store_listing *l, time_t now)
{
	struct tree_listing *nl = tree_listing_build(l, t->maildir),
			    *old = NULL;
	void (*hook)(void *ctx, const struct tree_change *c);
	struct tree_change change = {0};
	struct tree_folder *f;
	void *hook_ctx;
	size_t n;

	if (!nl)
		return -ENOMEM;
	n = nl->n;
	tree_wrlock(t);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (f) {
		old = f->listing;
		if (old && old->state.uidvalidity == nl->state.uidvalidity) {
			tree_keep_fixed_sizes(old, nl);
			tree_keep_user_names(old, nl);
		} else if (old) {
			tree_retire(t, old->hi);
		}
		nl->hi = tree_bind(t, f->id, nl->state.uidvalidity);
		if (!nl->hi) {
			pthread_rwlock_unlock(&t->lock);
			tree_listing_free(nl);
			return -ENOMEM;
		}
		if (old)
			tree_diff(f, old, nl, &change);
		tree_listing_moved(t, f, nl, &change);
		f->listing = nl;
		f->listed_at = now;
		nl = NULL;
	}
	hook = t->hook;
	hook_ctx = t->hook_ctx;
	pthread_rwlock_unlock(&t->lock);
	if (hook && change.dir &&
	    (change.content || change.n_gone || change.nomem || change.mtime))
		hook(hook_ctx, &change);
	tree_change_clear(&change);
	tree_listing_free(old);
	tree_listing_free(nl);
	/* A big listing leaves the memory its making used (the store's
	 * array, parse buffers, the old listing) free but held by malloc,
	 * spread over the threads' arenas: give it back. */
	if (n >= TREE_TRIM_MESSAGES)
		malloc_trim(0);
	return 0;
}

/* Copies the folder's listing as the server listed it (messages this
 * mount removed since left out) into base; the read lock is taken. */
static int tree_listing_copy(struct tree *t, const char *folder,
			     uint32_t uidvalidity, struct store_listing *base)
{
	struct tree_folder *f;
	struct tree_listing *l;
	size_t i;
	int rc = 0;

	memset(base, 0, sizeof(*base));
	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	l = f ? f->listing : NULL;
	if (!l || l->state.uidvalidity != uidvalidity) {
		rc = -ESTALE;
		goto out;
	}
	base->uidvalidity = uidvalidity;
	base->msgs = calloc(l->n + 1, sizeof(*base->msgs));
	if (!base->msgs) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < l->n; i++) {
		const struct tree_msg *m = &l->msgs[i];
		struct store_msg *sm = &base->msgs[base->n];

		if (m->gone)
			continue;
		*sm = (struct store_msg){.uid = m->uid,
					 .size = m->listed_size,
					 .date = m->date,
					 .idhash = m->idhash,
					 .oid = tree_msg_oid(l, m)};
		sm->flags = strdup(m->flags ? m->flags : "");
		if (!sm->flags) {
			rc = -ENOMEM;
			break;
		}
		base->n++;
	}
out:
	pthread_rwlock_unlock(&t->lock);
	return rc;
}

int tree_apply_delta(struct tree *t, const char *folder,
		     struct store_listing *d, time_t now)
{
	struct store_listing base, full;
	int rc;

	rc = tree_listing_copy(t, folder, d->uidvalidity, &base);
	if (rc == 0)
		rc = store_listing_merge(&base, d, &full);
	store_listing_clear(&base);
	if (rc < 0)
		return rc;
	return tree_set_listing(t, folder, &full, now);
}

/* Whether f sits in the directory dir (of dir_len bytes) of the mount. */
static bool tree_in_dir(const struct tree_folder *f, const char *dir,
			size_t dir_len)
{
	size_t len = (size_t)(f->base - f->path);

	/* f->base follows its directory's path and a '/'. */
	if (dir_len == 0)
		return len == 0;
	return len == dir_len + 1 && strncmp(f->path, dir, dir_len) == 0;
}

size_t tree_unlisted_after(struct tree *t, const char *folder, size_t max,
			   uint64_t budget, char **names_r)
{
	struct tree_folder *f, *start = NULL;
	size_t n = 0, dir_len = 0;
	int pass;

	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), start);
	if (start && start->base > start->path)
		dir_len = (size_t)(start->base - start->path) - 1;
	/* From the folder after this one to the end, then from the start
	 * to it: the order the folder list came in. */
	for (pass = 0; start && pass < 2 && n < max; pass++) {
		f = pass == 0 ? start->hh_path.next : t->by_path;
		for (; f && n < max; f = f->hh_path.next) {
			if (pass == 1 && f == start)
				break;
			if (f->listing || f->implied ||
			    (f->attrs & STORE_FOLDER_NOSELECT))
				continue;
			/* Folders of known size while the budget lasts;
			 * of unknown size, only the walk's own directory. */
			if (f->messages != STORE_COUNT_UNKNOWN) {
				if (f->messages > budget)
					continue;
				budget -= f->messages;
			} else if (!tree_in_dir(f, start->path, dir_len)) {
				continue;
			}
			names_r[n] = strdup(f->name);
			if (!names_r[n])
				break;
			n++;
		}
	}
	pthread_rwlock_unlock(&t->lock);
	return n;
}

size_t tree_listed_after(struct tree *t, const char *folder, size_t max,
			 char **names_r, uint32_t *uidvalidity_r)
{
	struct tree_folder *f, *start;
	size_t n = 0;

	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), start);
	for (f = start ? start->hh_path.next : NULL; f && n < max;
	     f = f->hh_path.next) {
		if (f->implied || (f->attrs & STORE_FOLDER_NOSELECT))
			continue;
		if (!f->listing)
			break; /* the walk has not listed this far yet */
		names_r[n] = strdup(f->name);
		if (!names_r[n])
			break;
		uidvalidity_r[n++] = f->listing->state.uidvalidity;
	}
	pthread_rwlock_unlock(&t->lock);
	return n;
}

void tree_touch_listing(struct tree *t, const char *folder, time_t now)
{
	struct tree_folder *f;

	tree_wrlock(t);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (f && f->listing)
		f->listed_at = now;
	pthread_rwlock_unlock(&t->lock);
}

void tree_expire_listing(struct tree *t, const char *folder)
{
	struct tree_folder *f;

	tree_wrlock(t);
	if (!folder) {
		t->folders_listed = false;
	} else {
		HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
		if (f && f->listing)
			f->listed_at = CLOCK_NEVER;
	}
	pthread_rwlock_unlock(&t->lock);
}

bool tree_listing_state(struct tree *t, const char *folder,
			struct store_listing *state_r)
{
	struct tree_folder *f;
	bool found = false;

	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (f && f->listing) {
		*state_r = f->listing->state;
		found = true;
	}
	pthread_rwlock_unlock(&t->lock);
	return found;
}

/* True when the folder (or folder list) needs no refresh; takes the
 * read lock. */
static bool tree_is_fresh(struct tree *t, const char *folder, time_t now,
			  unsigned max_age)
{
	struct tree_folder *f;
	bool fresh;

	if (!folder)
		return !tree_folders_stale(t, now, max_age);
	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	fresh = f && tree_fresh(f, now, max_age);
	pthread_rwlock_unlock(&t->lock);
	return fresh;
}

bool tree_begin_refresh(struct tree *t, const char *folder, time_t now,
			unsigned max_age, int wait_ms)
{
	const char *key = folder ? folder : TREE_FOLDER_LIST_KEY;
	struct timespec deadline = clock_deadline(wait_ms);
	struct tree_busy *b;
	bool go = false;

	pthread_mutex_lock(&t->busy_lock);
	for (;;) {
		if (tree_is_fresh(t, folder, now, max_age))
			break;
		HASH_FIND_STR(t->busy, key, b);
		if (!b) {
			b = calloc(1, sizeof(*b));
			if (b)
				b->name = strdup(key);
			if (!b || !b->name) {
				free(b);
				break;
			}
			HASH_ADD_KEYPTR(hh, t->busy, b->name, strlen(b->name),
					b);
			go = true;
			break;
		}
		if (pthread_cond_timedwait(&t->busy_cond, &t->busy_lock,
					   &deadline) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&t->busy_lock);
	return go;
}

void tree_end_refresh(struct tree *t, const char *folder)
{
	const char *key = folder ? folder : TREE_FOLDER_LIST_KEY;
	struct tree_busy *b;

	pthread_mutex_lock(&t->busy_lock);
	HASH_FIND_STR(t->busy, key, b);
	if (b) {
		HASH_DEL(t->busy, b);
		free(b->name);
		free(b);
	}
	pthread_cond_broadcast(&t->busy_cond);
	pthread_mutex_unlock(&t->busy_lock);
}

/* Finds uid in a listing by binary search; the lock is held. */
static struct tree_msg *tree_find_uid(struct tree_listing *l, uint32_t uid,
				      size_t *pos_r)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos_r = lo;
	return lo < l->n && l->msgs[lo].uid == uid ? &l->msgs[lo] : NULL;
}

void tree_set_size(struct tree *t, const char *folder, uint32_t uidvalidity,
		   uint32_t uid, uint64_t size)
{
	struct tree_folder *f;
	struct tree_msg *m;
	size_t pos;

	tree_wrlock(t);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (f && f->listing && f->listing->state.uidvalidity == uidvalidity) {
		m = tree_find_uid(f->listing, uid, &pos);
		if (m) {
			m->size = size;
			m->size_fixed = true;
		}
	}
	pthread_rwlock_unlock(&t->lock);
}

bool tree_message_oid(struct tree *t, const char *folder, uint32_t uidvalidity,
		      uint32_t uid, struct store_oid *oid_r)
{
	struct tree_folder *f;
	struct tree_msg *m = NULL;
	size_t pos;

	memset(oid_r, 0, sizeof(*oid_r));
	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (f && f->listing && f->listing->state.uidvalidity == uidvalidity) {
		m = tree_find_uid(f->listing, uid, &pos);
		if (!m)
			for (m = f->listing->extras; m && m->uid != uid;
			     m = m->next_extra)
				;
	}
	if (m)
		*oid_r = tree_msg_oid(f->listing, m);
	pthread_rwlock_unlock(&t->lock);
	return m && !store_oid_none(oid_r);
}

size_t tree_next_messages(struct tree *t, const char *folder,
			  uint32_t uidvalidity, uint32_t uid, size_t max,
			  uint64_t max_size, uint32_t *uids_r,
			  uint64_t *sizes_r)
{
	struct tree_folder *f;
	size_t pos, n = 0;

	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (!f || !f->listing || f->listing->state.uidvalidity != uidvalidity)
		goto out;
	if (tree_find_uid(f->listing, uid, &pos))
		pos++;
	for (; pos < f->listing->n && n < max; pos++) {
		const struct tree_msg *m = &f->listing->msgs[pos];

		if (m->size > max_size || m->gone)
			continue;
		uids_r[n] = m->uid;
		sizes_r[n] = m->size;
		n++;
	}
out:
	pthread_rwlock_unlock(&t->lock);
	return n;
}

/* The listing of folder if it is of uidvalidity; the lock is held. */
static struct tree_listing *tree_listing_of(struct tree *t, const char *folder,
					    uint32_t uidvalidity)
{
	struct tree_folder *f;

	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (!f || !f->listing || f->listing->state.uidvalidity != uidvalidity)
		return NULL;
	return f->listing;
}

/* folder's content changed (a change this mount made, or one push
 * reported): its mtime moves to now. The write lock is held. */
static void tree_content_changed(struct tree *t, const char *folder,
				 struct tree_changes *cs)
{
	struct tree_folder *f;

	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (f && tree_move_mtime(t, f, tree_wall()))
		tree_changes_add(t, cs, f);
}

void tree_mark_changed(struct tree *t, const char *folder)
{
	struct tree_changes cs = {0};

	tree_wrlock(t);
	tree_content_changed(t, folder, &cs);
	tree_unlock_tell(t, &cs);
}

void tree_remove_message(struct tree *t, const char *folder,
			 uint32_t uidvalidity, uint32_t uid)
{
	struct tree_changes cs = {0};
	struct tree_listing *l;
	struct tree_msg *m, *tmp;
	bool found = false;

	tree_wrlock(t);
	l = tree_listing_of(t, folder, uidvalidity);
	if (l) {
		HASH_ITER(hh, l->by_name, m, tmp)
		{
			if (m->uid != uid)
				continue;
			HASH_DEL(l->by_name, m);
			m->gone = true;
			found = true;
		}
		/* The server's state moved on: the next refresh must list. */
		l->state.modseq = 0;
	}
	if (found)
		tree_content_changed(t, folder, &cs);
	tree_unlock_tell(t, &cs);
}

/* Adds one extra message record, named name or (name NULL) by the
 * naming policy; the lock is held. *name_r (if given) gets the name. */
static int tree_add_extra(struct tree_listing *l, const struct store_msg *sm,
			  const char *name, bool alias, char *name_r,
			  struct tree_msg **m_r)
{
	struct tree_msg *m, *dup = NULL;
	struct tree_extra *e;

	if (m_r)
		*m_r = NULL;
	if (name)
		HASH_FIND(hh, l->by_name, name, strlen(name), dup);
	if (dup)
		return 0; /* the name is taken: keep what is there */
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->oid = sm->oid;
	m = &e->m;
	m->extra = true;
	m->uid = sm->uid;
	m->idhash = sm->idhash;
	m->listed_size = m->size = sm->size;
	m->date = sm->date;
	m->alias = alias;
	m->flags = tree_intern(sm->flags ? sm->flags : "");
	m->name = !m->flags ? NULL : name ? strdup(name) : tree_msg_name(l, m);
	if (!m->name || !m->flags) {
		free(m->name);
		free(m->base);
		free(e);
		return -ENOMEM;
	}
	if (name_r)
		snprintf(name_r, MAILDIR_NAME_MAX, "%s", m->name);
	if (m_r)
		*m_r = m;
	m->next_extra = l->extras;
	l->extras = m;
	HASH_ADD_KEYPTR(hh, l->by_name, m->name, strlen(m->name), m);
	return 0;
}

/* True when name is one the naming policy may give m (any suffix). */
static bool tree_own_name(const struct store_msg *m, const char *name)
{
	char base[NAMES_MESSAGE_MAX];
	size_t len;

	if (!name)
		return false;
	names_message(base, m->date, m->size, m->idhash, 0);
	len = strlen(base) - 4; /* without ".eml" */
	if (strncmp(name, base, len) != 0)
		return false;
	name += len;
	if (*name == '-' && name[1] >= '2' && name[1] <= '9') {
		for (name++; *name >= '0' && *name <= '9'; name++)
			;
	}
	return strcmp(name, ".eml") == 0;
}

/* tree_add_message() in the Maildir layout: the message gets its own
 * name; a name the mount gave it (alias) is listed instead until the
 * next listing, its own found but not listed. The lock is held. */
static int tree_maildir_add(struct tree_listing *l, const struct store_msg *m,
			    const char *alias)
{
	char name[MAILDIR_NAME_MAX];
	struct tree_msg *own, *named;
	int rc;

	rc = tree_add_extra(l, m, NULL, false, name, &own);
	if (rc < 0 || !alias || strcmp(alias, name) == 0)
		return rc;
	rc = tree_add_extra(l, m, alias, false, NULL, &named);
	if (named) {
		named->user_named = true;
		own->alias = true;
	}
	return rc;
}

int tree_add_message(struct tree *t, const char *folder, uint32_t uidvalidity,
		     const struct store_msg *m, const char *alias)
{
	struct tree_changes cs = {0};
	struct tree_listing *l;
	char name[MAILDIR_NAME_MAX];
	int rc = 0;

	tree_wrlock(t);
	l = tree_listing_of(t, folder, uidvalidity);
	if (l && l->maildir) {
		rc = tree_maildir_add(l, m, alias);
		l->state.modseq = 0;
	} else if (l) {
		/* Given one of its own names (a restored "-2"), it keeps it:
		 * its twin may come later under the other one. */
		rc = tree_add_extra(l, m,
				    tree_own_name(m, alias) ? alias : NULL,
				    false, name, NULL);
		if (rc == 0 && alias && strcmp(alias, name) != 0)
			rc = tree_add_extra(l, m, alias, true, NULL, NULL);
		l->state.modseq = 0;
	}
	/* Stored on the server, listed or not: the content changed. */
	tree_content_changed(t, folder, &cs);
	tree_unlock_tell(t, &cs);
	return rc;
}

/* Gives a message record another name; the lock is held. */
static void tree_rekey(struct tree_listing *l, struct tree_msg *m,
		       const char *name)
{
	char *dup = strdup(name);

	if (!dup)
		return;
	HASH_DEL(l->by_name, m);
	free(m->name);
	m->name = dup;
	HASH_ADD_KEYPTR(hh, l->by_name, m->name, strlen(m->name), m);
}

/* The most names one message has at once (its own, one alias, and a
 * few more for safety). */
#define TREE_MAX_NAMES 8

/*
 * Sets the flags of every record of uid; in the Maildir layout renames
 * its own names after them and moves the alias from_key (if it is one)
 * to to_key. True when a record's flags changed. The lock is held.
 */
static bool tree_update_flags(struct tree_listing *l, uint32_t uid,
			      const char *flags, const char *from_key,
			      const char *to_key)
{
	struct tree_msg *hits[TREE_MAX_NAMES], *m, *tmp, *own = NULL;
	char name[MAILDIR_NAME_MAX] = "";
	const char *in = tree_intern(flags);
	bool changed = false;
	size_t n = 0, i;

	if (!in)
		return false;
	HASH_ITER(hh, l->by_name, m, tmp)
	{
		if (m->uid != uid)
			continue;
		changed |= m->flags != in;
		m->flags = in;
		if (n < TREE_MAX_NAMES)
			hits[n++] = m;
	}
	if (!l->maildir)
		return changed;
	for (i = 0; i < n; i++) {
		if (!hits[i]->base || !maildir_name(name, sizeof(name),
						    hits[i]->base, uid, flags))
			continue;
		own = hits[i];
		if (strcmp(name, own->name) != 0)
			tree_rekey(l, own, name);
	}
	for (i = 0; i < n && from_key && to_key; i++) {
		if (!hits[i]->user_named || strcmp(hits[i]->name, from_key))
			continue;
		if (own && strcmp(to_key, own->name) == 0) {
			/* Back to its own name: that one is listed. */
			HASH_DEL(l->by_name, hits[i]);
			hits[i]->gone = true;
			own->alias = false;
		} else {
			HASH_FIND(hh, l->by_name, to_key, strlen(to_key), m);
			if (!m)
				tree_rekey(l, hits[i], to_key);
		}
	}
	return changed;
}

void tree_set_flags(struct tree *t, const char *folder, uint32_t uidvalidity,
		    uint32_t uid, const char *flags)
{
	tree_maildir_rename(t, folder, uidvalidity, uid, flags, NULL, NULL);
}

void tree_maildir_rename(struct tree *t, const char *folder,
			 uint32_t uidvalidity, uint32_t uid, const char *flags,
			 const char *from_key, const char *to_key)
{
	struct tree_changes cs = {0};
	struct tree_listing *l;
	bool changed = false;

	tree_wrlock(t);
	l = tree_listing_of(t, folder, uidvalidity);
	if (l)
		changed = tree_update_flags(l, uid, flags, from_key, to_key);
	/* New flags, or a name that moved (new/ into cur/): the
	 * directories' content changed. */
	if (changed || (from_key && to_key && strcmp(from_key, to_key)))
		tree_content_changed(t, folder, &cs);
	tree_unlock_tell(t, &cs);
}

char *tree_trash(struct tree *t)
{
	struct tree_folder *f, *tmp, *named = NULL;
	char *name = NULL;

	pthread_rwlock_rdlock(&t->lock);
	HASH_ITER(hh_path, t->by_path, f, tmp)
	{
		if ((f->attrs & STORE_FOLDER_TRASH) &&
		    !(f->attrs & STORE_FOLDER_NOSELECT)) {
			named = f;
			break;
		}
		if (f->attrs & STORE_FOLDER_NOSELECT)
			continue;
		/* "Trash", else "INBOX/Trash" (servers with everything
		 * under INBOX). */
		if (strcasecmp(f->path, "Trash") == 0)
			named = f;
		else if (!named && strcasecmp(f->path, "INBOX/Trash") == 0)
			named = f;
	}
	if (named)
		name = strdup(named->name);
	pthread_rwlock_unlock(&t->lock);
	return name;
}

char tree_delimiter(struct tree *t)
{
	struct tree_folder *f, *tmp;
	char delim = '\0';

	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, "INBOX", 5, f);
	if (f && !f->implied) {
		delim = f->delim;
	} else {
		HASH_ITER(hh_path, t->by_path, f, tmp)
		{
			if (!f->implied && f->delim) {
				delim = f->delim;
				break;
			}
		}
	}
	pthread_rwlock_unlock(&t->lock);
	return delim;
}

bool tree_has_folder(struct tree *t, const char *folder)
{
	struct tree_folder *f;

	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	pthread_rwlock_unlock(&t->lock);
	return f != NULL;
}

char *tree_folder_path(struct tree *t, const char *folder)
{
	struct tree_folder *f;
	char *path = NULL;

	pthread_rwlock_rdlock(&t->lock);
	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (f)
		path = strdup(f->path);
	pthread_rwlock_unlock(&t->lock);
	return path;
}
