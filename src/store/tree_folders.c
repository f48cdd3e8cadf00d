// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tree_folders: the tree's folder table (tree.h, tree_priv.h): made
 * from a folder list within its bounds, with the parents the server did
 * not list, and what the tree knew of each folder (its listing, its
 * mtime) carried over to the new table.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "clock.h"
#include "maildir.h"
#include "names.h"
#include "tree.h"
#include "tree_priv.h"

/* The mount path of a folder's server name: names_to_path(), with the
 * levels named cur, new or tmp escaped in the Maildir layout; cut to
 * its length (the table keeps it, and counts it: tree_folders_cost()). */
static char *tree_folders_path_of(bool maildir, const char *name, char delim)
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

/* Frees one folder record with its listing. */
static void tree_folders_free_one(struct tree_folder *f)
{
	tree_listing_free(f->listing);
	free(f->name);
	free(f->path);
	free(f);
}

/* Frees every folder of a table linked through hh_path. */
void tree_folders_free(struct tree_folder *by_path)
{
	struct tree_folder *f, *tmp;

	HASH_ITER(hh_path, by_path, f, tmp)
	{
		HASH_DELETE(hh_path, by_path, f);
		tree_folders_free_one(f);
	}
}

/* Makes a folder record; path is taken (owned). */
static struct tree_folder *tree_folders_make(const char *name, char *path,
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
static size_t tree_folders_cost(const struct tree_folder *f)
{
	return sizeof(*f) + strlen(f->name) + strlen(f->path) + 2;
}

/* Adds the parents of the server name `name` that the new table lacks
 * ("A" and "A.B" for "A.B.C"), as \Noselect folders, adding their cost
 * to *used. Their server names are the child's name cut at a delimiter,
 * so they are exact. The caller bounds the levels (TREE_MAX_DEPTH). */
static int tree_folders_add_parents(struct tree_folder **by_path,
				    struct tree_folder **by_name,
				    const char *name, char delim, bool maildir,
				    size_t *used)
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
			path = tree_folders_path_of(maildir, dup, delim);
			if (path)
				HASH_FIND(hh_path, *by_path, path, strlen(path),
					  p);
			if (p) { /* another name shows as that path */
				free(path);
				*cut = delim;
				continue;
			}
			p = path ? tree_folders_make(dup, path, delim,
						     STORE_FOLDER_NOSELECT)
				 : NULL;
			if (!p) {
				free(path);
				rc = -ENOMEM;
				break;
			}
			p->implied = true;
			*used += tree_folders_cost(p);
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
static size_t tree_folders_levels(const char *name, char delim, size_t max)
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
static char *tree_folders_bounded_path(const struct tree *t,
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
	if (tree_folders_levels(f->name, f->delim, TREE_MAX_DEPTH) >
	    TREE_MAX_DEPTH) {
		sk->deep++;
		return NULL;
	}
	path = f->name[0] ? tree_folders_path_of(t->maildir, f->name, f->delim)
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
unsigned tree_folders_count_subfolders(struct tree_folder *by_path)
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
int tree_folders_build(struct tree *t, const struct store_folder *fl, size_t n,
		       struct tree_folder **by_path_r,
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
		path = tree_folders_bounded_path(t, &fl[i], &sk, &rc);
		if (!path)
			continue;
		HASH_FIND(hh_path, by_path, path, strlen(path), f);
		if (f && f->implied) {
			/* Listed after one of its children: now real. */
			HASH_DELETE(hh_path, by_path, f);
			HASH_DELETE(hh_name, by_name, f);
			used -= tree_folders_cost(f);
			tree_folders_free_one(f);
		} else if (f) {
			/* Two server names, one path: keep the first. */
			free(path);
			continue;
		}
		f = tree_folders_make(fl[i].name, path, fl[i].delim,
				      fl[i].attrs);
		if (!f) {
			free(path);
			rc = -ENOMEM;
			break;
		}
		f->messages = fl[i].messages;
		used += tree_folders_cost(f);
		f->mtime = fl[i].mtime;
		if (fl[i].uidvalidity && fl[i].uidnext &&
		    fl[i].messages != STORE_COUNT_UNKNOWN)
			tree_see_state(f, tree_state_of(fl[i].uidvalidity,
							fl[i].uidnext,
							fl[i].messages,
							fl[i].modseq));
		HASH_ADD_KEYPTR(hh_path, by_path, f->path, strlen(f->path), f);
		HASH_ADD_KEYPTR(hh_name, by_name, f->name, strlen(f->name), f);
		rc = tree_folders_add_parents(&by_path, &by_name, f->name,
					      f->delim, t->maildir, &used);
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
 * too (what a tool reads after seeing the new mtime is listed again),
 * and the listing that shows that state moves the mtime no more. A
 * folder new to the tree takes the store's mtime, else the mount's
 * start (at the first list) or now. The write lock is held.
 */
void tree_folders_carry(struct tree *t, struct tree_folder *by_path,
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
		f->seen_moved = old->seen_moved;
		moved = tree_move_mtime(t, f, store_mtime);
		if (has_told && tree_see_state(f, told)) {
			moved |= tree_move_mtime(t, f, wall);
			f->seen_moved = true;
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
static void tree_folders_parent_moved(struct tree *t,
				      struct tree_folder *by_path,
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
void tree_folders_parents(struct tree *t, struct tree_folder *by_path,
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
			tree_folders_parent_moved(t, by_path, f, wall, cs);
	}
	HASH_ITER(hh_path, t->by_path, f, tmp)
	{
		HASH_FIND(hh_name, by_name, f->name, strlen(f->name), other);
		if (!other)
			tree_folders_parent_moved(t, by_path, f, wall, cs);
	}
}

/* True when the folder list is older than max_age, or absent
 * (tree.h). */
bool tree_folders_stale(struct tree *t, time_t now, unsigned max_age)
{
	bool stale;

	pthread_rwlock_rdlock(&t->lock);
	stale = !t->folders_listed ||
		!clock_recent(t->folders_at, now, max_age);
	pthread_rwlock_unlock(&t->lock);
	return stale;
}
