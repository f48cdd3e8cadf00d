// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsmaildir: the FUSE operations the Maildir layout (-o layout=maildir)
 * changes, in front of fsops' own. The layout itself (paths, names,
 * listings) is the tree's naming policy; what is left here:
 *  - a rename within a folder's cur/ that changes only the letters
 *    after ":2," changes those system flags on the server (+FLAGS /
 *    -FLAGS of the changed ones alone, so keywords stay), and nothing
 *    else: a rename never stores, moves or expunges there;
 *  - a file renamed from tmp/ into new/ or cur/ is stored (by fsnew)
 *    with the flags of its letters;
 *  - cur/, new/ and tmp/ cannot be renamed, removed or hold folders.
 * Moves between folders, unlink and the rest are fsops' as they are.
 */
#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fsops_priv.h"
#include "fswatch.h"
#include "log.h"
#include "maildir.h"
#include "newmsg.h"
#include "store.h"
#include "tree.h"

const char *fsmaildir_alias(const struct fsops *fs, const char *to)
{
	const char *slash = strrchr(to, '/'), *base = slash ? slash + 1 : to;

	if (fs->cfg.maildir && slash && slash - to >= 4 &&
	    strncmp(slash - 4, "/new", 4) == 0)
		return slash - 3;
	return base;
}

/* The last component of a path (borrowed). */
static const char *fsmaildir_base(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Resolves the directory holding path into dir (to be cleared; it is
 * initialised on every path, as fsops_resolve() does). */
static int fsmaildir_parent(struct fsops *fs, const char *path,
			    struct tree_info *dir)
{
	const char *base;
	char *dirpath = fsops_dirname(path, &base);
	int rc;

	memset(dir, 0, sizeof(*dir));
	if (!dirpath)
		return -ENOMEM;
	rc = fsops_resolve(fs, dirpath, dir);
	free(dirpath);
	return rc;
}

/*
 * A file from tmp/ renamed into new/ or cur/: its letters become the
 * flags it is stored with (a malformed info fails with EINVAL before
 * anything is sent). The store itself is fsnew's, at the rename.
 */
static int fsmaildir_deliver(struct newmsg *m, const char *to,
			     const struct tree_info *dir)
{
	char flags[128];
	unsigned mask;
	size_t stem;

	if (!newmsg_temporary(m) || dir->kind != TREE_FOLDER ||
	    (dir->sub != MAILDIR_SUB_NEW && dir->sub != MAILDIR_SUB_CUR))
		return 0;
	if (maildir_parse(fsmaildir_base(to), &stem, &mask) < 0 || !stem)
		return -EINVAL;
	if (!mask)
		return 0;
	maildir_mask_flags(mask, flags, sizeof(flags));
	return newmsg_set_flags(m, flags);
}

/* Changes a message's system flags on the server: +FLAGS for those in
 * mask it lacks, -FLAGS for those it has outside mask. *result_r gets
 * its flags afterwards (owned). */
static int fsmaildir_store_letters(struct fsops *fs,
				   const struct tree_info *msg, unsigned mask,
				   char **result_r)
{
	unsigned now = maildir_flags_mask(msg->flags);
	char add[128], remove[128];
	struct store_msg shown;

	if (!((now ^ mask) & (mask | now))) {
		*result_r = strdup(msg->flags);
		return *result_r ? 0 : -ENOMEM;
	}
	if (!fs->cfg.store->ops->change_flags)
		return -EPERM;
	maildir_mask_flags(mask & ~now, add, sizeof(add));
	maildir_mask_flags(now & ~mask, remove, sizeof(remove));
	tree_info_msg(msg, &shown);
	return fs->cfg.store->ops->change_flags(fs->cfg.store, msg->folder,
						msg->uidvalidity, &shown, add,
						remove, result_r);
}

/*
 * A rename of a message into cur/ of its own folder: the part before
 * ":2," must stay (EINVAL otherwise, as for a malformed info or an
 * unknown letter); the letters after it become the message's system
 * flags. Only those flags change: nothing is stored, moved or expunged.
 */
static int fsmaildir_set_letters(struct fsops *fs, const struct tree_info *msg,
				 const char *from, const char *to,
				 unsigned flags)
{
	const char *fbase = fsmaildir_base(from), *tbase = fsmaildir_base(to);
	size_t fstem, tstem;
	unsigned fmask, tmask;
	struct tree_info there;
	char *result = NULL;
	int rc;

	if (fsops_resolve(fs, to, &there) == 0) {
		/* Another message of that name is never replaced. */
		rc = there.uid != msg->uid || (flags & RENAME_NOREPLACE)
			     ? -EEXIST
			     : 0;
		tree_info_clear(&there);
		if (rc < 0 || strcmp(from, to) == 0)
			return rc;
	}
	if (maildir_parse(tbase, &tstem, &tmask) < 0 ||
	    maildir_parse(fbase, &fstem, &fmask) < 0 || fstem != tstem ||
	    strncmp(fbase, tbase, fstem) != 0)
		return -EINVAL;
	rc = fsmaildir_store_letters(fs, msg, tmask, &result);
	if (rc < 0)
		return rc;
	tree_maildir_rename(fs->tree, msg->folder, msg->uidvalidity, msg->uid,
			    result, fsmaildir_alias(fs, from),
			    fsmaildir_alias(fs, to));
	free(result);
	fswatch_invalidate_with_dir(fs, from);
	fswatch_invalidate_with_dir(fs, to);
	return 0;
}

/* What a rename of an existing path does in the Maildir layout; dir is
 * the target's directory. */
static int fsmaildir_rename_existing(struct fsops *fs, const char *from,
				     const char *to, unsigned flags,
				     const struct tree_info *dir)
{
	struct tree_info src;
	int rc;

	rc = fsops_resolve(fs, from, &src);
	if (rc < 0)
		return rc;
	if (src.kind == TREE_FOLDER && (src.sub || dir->sub))
		rc = -EPERM; /* cur/, new/, tmp/ stay; no folder in them */
	else if (src.kind != TREE_MESSAGE || dir->kind != TREE_FOLDER)
		rc = fsops_inner_operations()->rename(from, to, flags);
	else if (strcmp(dir->folder, src.folder) != 0)
		rc = dir->sub == MAILDIR_SUB_TMP
			     ? -EPERM
			     : fsops_inner_operations()->rename(from, to,
								flags);
	else if (dir->sub == MAILDIR_SUB_CUR)
		rc = fsmaildir_set_letters(fs, &src, from, to, flags);
	else
		rc = -EPERM; /* back into new/ or tmp/ */
	tree_info_clear(&src);
	return rc;
}

int fsmaildir_rename(const char *from, const char *to, unsigned flags)
{
	struct fsops *fs = fsops_get();
	struct tree_info dir;
	struct newmsg *m;
	int rc;

	if (!fs->cfg.maildir)
		return fsops_inner_operations()->rename(from, to, flags);
	if (fs->cfg.readonly)
		return -EROFS;
	if (flags & RENAME_EXCHANGE)
		return -EINVAL;
	rc = fsmaildir_parent(fs, to, &dir);
	if (rc < 0)
		return rc;
	m = newmsg_get(fs->newmsgs, from);
	if (m) {
		rc = fsmaildir_deliver(m, to, &dir);
		newmsg_put(fs->newmsgs, m);
		if (rc == 0)
			rc = fsops_inner_operations()->rename(from, to, flags);
	} else {
		rc = fsmaildir_rename_existing(fs, from, to, flags, &dir);
	}
	tree_info_clear(&dir);
	return rc;
}

int fsmaildir_mkdir(const char *path, mode_t mode)
{
	struct fsops *fs = fsops_get();
	struct tree_info dir;
	int rc;

	if (!fs->cfg.maildir)
		return fsops_inner_operations()->mkdir(path, mode);
	rc = fsmaildir_parent(fs, path, &dir);
	if (rc < 0)
		return rc;
	/* No folder inside cur/, new/ or tmp/; a folder level named cur,
	 * new or tmp is made as %63ur, %6Eew, %74mp. */
	if (dir.sub || maildir_sub_of(fsmaildir_base(path)))
		rc = -EPERM;
	tree_info_clear(&dir);
	return rc < 0 ? rc : fsops_inner_operations()->mkdir(path, mode);
}

/* rmdir: cur/, new/ and tmp/ stay while their folder does; a folder
 * whose only directories are those three is deleted as in the default
 * layout (the server refuses while it holds messages). */
int fsmaildir_rmdir(const char *path)
{
	struct fsops *fs = fsops_get();
	struct tree_info info;
	int rc;

	if (!fs->cfg.maildir)
		return fsops_inner_operations()->rmdir(path);
	if (fs->cfg.readonly)
		return -EROFS;
	rc = fsops_resolve(fs, path, &info);
	if (rc < 0)
		return rc;
	if (info.kind == TREE_FOLDER && info.sub) {
		rc = -EPERM;
	} else if (info.kind != TREE_FOLDER || info.nlink != 5 ||
		   !fs->cfg.store->ops->delete_folder ||
		   strcasecmp(info.folder, "INBOX") == 0) {
		rc = fsops_inner_operations()->rmdir(path);
	} else {
		rc = fs->cfg.store->ops->delete_folder(fs->cfg.store,
						       info.folder);
		if (rc == 0) {
			tree_expire_listing(fs->tree, NULL);
			fswatch_invalidate_with_dir(fs, path);
		}
	}
	tree_info_clear(&info);
	return rc;
}

int fsmaildir_link(const char *from, const char *to)
{
	(void)from;
	(void)to;
	return -EPERM; /* a message has one name per folder */
}
