// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tree_listing: a folder's listing in the tree (tree.h, tree_priv.h):
 * made from a store's listing (names by the naming policy, content
 * identities in a side array), compared with the one it replaces,
 * copied back for a delta, and the changes this mount makes to it
 * (messages added, flags set) until the next listing.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "maildir.h"
#include "names.h"
#include "tree.h"
#include "tree_priv.h"

/* A message added by this mount (tree_listing.extras), allocated alone
 * with its content identity (or none): these are few, so the identity
 * rides along instead of in a side array. */
struct tree_extra {
	struct tree_msg m; /* first: a struct tree_msg * with extra set
			    * points to its struct tree_extra */
	struct store_oid oid;
};

/* An interned flag list. */
struct tree_flagset {
	UT_hash_handle hh;
	char s[]; /* NUL-terminated */
};

/* Flag lists are interned, process-wide: a folder's messages share a
 * handful of them ("", "\Seen", ...), so each costs a pointer instead
 * of a string. Entries are never freed (as many as distinct lists). */
static struct tree_flagset *tree_listing_flagsets;
static pthread_mutex_t tree_listing_flag_lock = PTHREAD_MUTEX_INITIALIZER;

/* The interned copy of flags, or NULL when out of memory. */
static const char *tree_listing_intern(const char *flags)
{
	struct tree_flagset *f;
	size_t len = strlen(flags);

	pthread_mutex_lock(&tree_listing_flag_lock);
	HASH_FIND(hh, tree_listing_flagsets, flags, len, f);
	if (!f && (f = malloc(sizeof(*f) + len + 1))) {
		memcpy(f->s, flags, len + 1);
		HASH_ADD_KEYPTR(hh, tree_listing_flagsets, f->s, len, f);
	}
	pthread_mutex_unlock(&tree_listing_flag_lock);
	return f ? f->s : NULL;
}

/* Frees a listing, its messages and their names. */
void tree_listing_free(struct tree_listing *l)
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
struct store_oid tree_listing_msg_oid(const struct tree_listing *l,
				      const struct tree_msg *m)
{
	static const struct store_oid none = {0, 0};

	if (m->extra) /* m is the first member of its struct tree_extra */
		return ((const struct tree_extra *)m)->oid;
	return l->oids ? l->oids[m - l->msgs] : none;
}

/* The message of listing l with uid, or NULL; the lock is held. */
const struct tree_msg *tree_listing_by_uid(const struct tree_listing *l,
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

/*
 * The naming policy: the first name of the form names_message() makes
 * for m that no message of the listing has yet, so that messages that
 * share date, size and Message-ID get "-2", "-3", ... in the order they
 * are named (ascending UID for a listing). Identity (UID) plays no part,
 * so a message keeps its name across folders, accounts and remounts.
 * (In the Maildir layout, that name made into maildir_name():
 * tree_maildir_msg_name().) NULL when out of memory.
 */
static char *tree_listing_name(const struct tree_listing *l, struct tree_msg *m)
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
static int tree_listing_cmp(const void *a, const void *b)
{
	const struct store_msg *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* The side array of the content identities of l's messages (in their
 * order), or NULL when none has one; *nomem_r set when one was needed
 * and no memory was left. */
static struct store_oid *tree_listing_make_oids(const struct store_listing *l,
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

/* Carries sizes found wrong by reading into a new listing, which has the
 * server's (wrong) RFC822.SIZE again. */
void tree_listing_keep_fixed_sizes(struct tree_listing *old,
				   struct tree_listing *nl)
{
	size_t i, pos;

	for (i = 0; i < old->n; i++) {
		struct tree_msg *m;

		if (!old->msgs[i].size_fixed)
			continue;
		m = tree_listing_find_uid(nl, old->msgs[i].uid, &pos);
		if (m) {
			m->size = old->msgs[i].size;
			m->size_fixed = true;
		}
	}
}

/*
 * What listing nl changes against old, the one it replaces in folder f,
 * into c: the names the kernel may hold that now name nothing, another
 * message (another inode) or a message of another size; and whether any
 * message came, went or changed its flags. Out of memory makes every
 * old name gone (the safe side). The write lock is held.
 */
void tree_listing_diff(const struct tree_folder *f,
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
 * changed flags (unless the folder list told that state and moved the
 * mtime for it already: seen_moved), or when nl's state is not the one
 * told before; to the store's time for it (nl->state.mtime) when that
 * is later. A move is put in c. The write lock is held.
 */
void tree_listing_moved(struct tree *t, struct tree_folder *f,
			const struct tree_listing *nl, struct tree_change *c)
{
	const struct store_listing *s = &nl->state;
	bool changed, moved, told = f->seen_moved;

	f->seen_moved = false;
	changed = tree_see_state(f, tree_state_of(s->uidvalidity, s->uidnext,
						  s->exists, s->modseq));
	/* Content that differs from the old listing moves the mtime,
	 * unless it is what the folder list told and moved it for already:
	 * one change, one move (a tool that scanned after the first move
	 * saw this content: a second move would only make it scan again,
	 * and a waiter of the next change would take it for that one). */
	if (changed || !told)
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
struct tree_listing *tree_listing_build(struct store_listing *l, bool maildir)
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
		qsort(l->msgs, l->n, sizeof(*l->msgs), tree_listing_cmp);
	nl->msgs = calloc(l->n ? l->n : 1, sizeof(*nl->msgs));
	nl->oids = tree_listing_make_oids(l, &nomem);
	if (!nl->msgs || nomem)
		goto nomem;
	for (i = 0; i < l->n; i++) {
		struct store_msg *sm = &l->msgs[i];
		struct tree_msg *m = &nl->msgs[nl->n++];

		m->uid = sm->uid;
		m->idhash = sm->idhash;
		m->listed_size = m->size = sm->size;
		m->date = sm->date;
		m->flags = tree_listing_intern(sm->flags ? sm->flags : "");
		if (!m->flags)
			goto nomem;
		m->ref = sm->ref;
		sm->ref = NULL;
		m->name = sm->name; /* a store's own name (POP3) */
		sm->name = NULL;
	}
	for (i = 0; i < nl->n; i++) {
		struct tree_msg *m = &nl->msgs[i], *dup;

		if (!m->name && !(m->name = tree_listing_name(nl, m)))
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

/* Copies the folder's listing as the server listed it (messages this
 * mount removed since left out) into base; the read lock is taken. */
int tree_listing_copy(struct tree *t, const char *folder, uint32_t uidvalidity,
		      struct store_listing *base)
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
					 .oid = tree_listing_msg_oid(l, m)};
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

/* The state of a folder's current listing, without messages
 * (tree.h). */
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

/* Finds uid in a listing by binary search; the lock is held. */
struct tree_msg *tree_listing_find_uid(struct tree_listing *l, uint32_t uid,
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

/* The listing of folder if it is of uidvalidity; the lock is held. */
struct tree_listing *tree_listing_of(struct tree *t, const char *folder,
				     uint32_t uidvalidity)
{
	struct tree_folder *f;

	HASH_FIND(hh_name, t->by_name, folder, strlen(folder), f);
	if (!f || !f->listing || f->listing->state.uidvalidity != uidvalidity)
		return NULL;
	return f->listing;
}

/* Adds one extra message record, named name or (name NULL) by the
 * naming policy; the lock is held. *name_r (if given) gets the name. */
int tree_listing_add_extra(struct tree_listing *l, const struct store_msg *sm,
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
	m->flags = tree_listing_intern(sm->flags ? sm->flags : "");
	if (m->flags)
		m->name = name ? strdup(name) : tree_listing_name(l, m);
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
bool tree_listing_own_name(const struct store_msg *m, const char *name)
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

/* Gives a message record another name; the lock is held. */
static void tree_listing_rekey(struct tree_listing *l, struct tree_msg *m,
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
bool tree_listing_update_flags(struct tree_listing *l, uint32_t uid,
			       const char *flags, const char *from_key,
			       const char *to_key)
{
	struct tree_msg *hits[TREE_MAX_NAMES], *m, *tmp, *own = NULL;
	char name[MAILDIR_NAME_MAX] = "";
	const char *in = tree_listing_intern(flags);
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
			tree_listing_rekey(l, own, name);
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
				tree_listing_rekey(l, hits[i], to_key);
		}
	}
	return changed;
}
