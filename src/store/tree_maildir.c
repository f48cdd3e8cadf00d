// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tree_maildir: what the Maildir layout (tree_set_maildir()) changes in
 * the tree (tree.h, tree_priv.h): lookups and listings of F/cur, F/new
 * and F/tmp, the names of messages (maildir_name()) and the names this
 * mount gave them.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "maildir.h"
#include "names.h"
#include "tree.h"
#include "tree_priv.h"

/*
 * tree_lookup() in the Maildir layout for a path that is no folder:
 * F/cur, F/new, F/tmp (folder info with sub set) or a message in F/cur
 * (key NAME) or F/new (key "new/NAME"). The lock is held.
 */
int tree_maildir_lookup(struct tree *t, const char *path, time_t now,
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
	info->maybe_folder = true;
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
	info->maybe_folder = false; /* a message's name, in cur/ or new/ */
	return m ? tree_msg_info(f, m, info) : 0;
}

/* Calls fill for cur/, new/ and tmp/ of a folder (Maildir layout). */
int tree_maildir_fill_subs(const struct tree_folder *f,
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
		info.ino = tree_hash(name, 3, tree_ino_folder(f)) | 2;
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
int tree_maildir_readdir(struct tree *t, const char *path,
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

/* True when a message of the listing (not m) has the default name base;
 * the lock is held. */
static bool tree_maildir_base_taken(const struct tree_listing *l,
				    const char *base)
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
 * default name, numbered as tree_listing_name() numbers them (kept in
 * m->base), made into maildir_name(). */
char *tree_maildir_msg_name(const struct tree_listing *l, struct tree_msg *m)
{
	char base[NAMES_MESSAGE_MAX], name[MAILDIR_NAME_MAX];
	unsigned n;

	for (n = 1; n < UINT_MAX; n++) {
		names_message(base, m->date, m->listed_size, m->idhash, n);
		if (!tree_maildir_base_taken(l, base))
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
int tree_maildir_names(struct tree_listing *l)
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

/*
 * Carries the names this mount gave messages in the Maildir layout (a
 * delivery into new/, a rename) from old into a new listing nl of the
 * same UIDVALIDITY, for each message still there with the same flags: a
 * tool handed that name (Python's Maildir.add() returns it) finds the
 * message under it until its flags change, whenever push or a refresh
 * lists the folder again. The lock is held; out of memory drops a name.
 */
void tree_maildir_keep_user_names(struct tree_listing *old,
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
		own = tree_listing_find_uid(nl, m->uid, &pos);
		if (!own || own->flags != m->flags)
			continue;
		memset(&sm, 0, sizeof(sm));
		sm.uid = own->uid;
		sm.idhash = own->idhash;
		sm.oid = tree_listing_msg_oid(nl, own);
		sm.size = own->size;
		sm.date = own->date;
		sm.flags = (char *)own->flags;
		if (tree_listing_add_extra(nl, &sm, m->name, false, NULL,
					   &named) == 0 &&
		    named) {
			named->user_named = true;
			own->alias = true;
		}
	}
}

/* tree_add_message() in the Maildir layout: the message gets its own
 * name; a name the mount gave it (alias) is listed instead until the
 * next listing, its own found but not listed. The lock is held. */
int tree_maildir_add(struct tree_listing *l, const struct store_msg *m,
		     const char *alias)
{
	char name[MAILDIR_NAME_MAX];
	struct tree_msg *own, *named;
	int rc;

	rc = tree_listing_add_extra(l, m, NULL, false, name, &own);
	if (rc < 0 || !alias || strcmp(alias, name) == 0)
		return rc;
	rc = tree_listing_add_extra(l, m, alias, false, NULL, &named);
	if (named) {
		named->user_named = true;
		own->alias = true;
	}
	return rc;
}

/* Sets a message's flags after a rename in the Maildir layout, moving
 * the name this mount gave it (tree.h). */
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
		changed = tree_listing_update_flags(l, uid, flags, from_key,
						    to_key);
	/* New flags, or a name that moved (new/ into cur/): the
	 * directories' content changed. */
	if (changed || (from_key && to_key && strcmp(from_key, to_key)))
		tree_content_changed(t, folder, &cs);
	tree_unlock_tell(t, &cs);
}
