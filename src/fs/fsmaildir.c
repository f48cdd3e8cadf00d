// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsmaildir: the FUSE operations the Maildir layout (-o layout=maildir)
 * changes: its kinds of node (a folder, its cur/, new/ and tmp/, a
 * message, a file being written) and its mkdir. The layout itself (paths, names,
 * listings) is the tree's naming policy; what is left here:
 *  - a rename within a folder's cur/ that changes only the letters
 *    after ":2," changes those system flags on the server (+FLAGS /
 *    -FLAGS of the changed ones alone, so keywords stay), and nothing
 *    else: a rename never stores, moves or expunges there;
 *  - a file renamed from tmp/ into new/ or cur/ is stored (by fsnew)
 *    with the flags of its letters;
 *  - cur/, new/ and tmp/ cannot be renamed, removed or hold folders.
 * Moves between folders, unlink and the rest are the default layout's.
 */
#include <errno.h>
#include <fuse.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fsattr.h"
#include "fsctx.h"
#include "fsdir.h"
#include "fsedit.h"
#include "fsmaildir.h"
#include "fsmsg.h"
#include "fsnew.h"
#include "fskind.h"
#include "fspath.h"
#include "fswatch.h"
#include "log.h"
#include "maildir.h"
#include "newmsg.h"
#include "store.h"
#include "tree.h"

/* Resolves the directory holding path into dir (to be cleared; it is
 * initialised on every path, as fsctx_resolve() does). */
static int fsmaildir_parent(struct fsmount *fs, const char *path,
			    struct tree_info *dir)
{
	const char *base;
	char *dirpath = fspath_dirname(path, &base);
	int rc;

	memset(dir, 0, sizeof(*dir));
	if (!dirpath)
		return -ENOMEM;
	rc = fsctx_resolve(fs, dirpath, dir);
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
	if (maildir_parse(fspath_base(to), &stem, &mask) < 0 || !stem)
		return -EINVAL;
	if (!mask)
		return 0;
	maildir_mask_flags(mask, flags, sizeof(flags));
	return newmsg_set_flags(m, flags);
}

/* Changes a message's system flags on the server: +FLAGS for those in
 * mask it lacks, -FLAGS for those it has outside mask. *result_r gets
 * its flags afterwards (owned). */
static int fsmaildir_store_letters(struct fsmount *fs,
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
static int fsmaildir_set_letters(struct fsmount *fs,
				 const struct tree_info *msg, const char *from,
				 const char *to, unsigned flags)
{
	const char *fbase = fspath_base(from), *tbase = fspath_base(to);
	size_t fstem, tstem;
	unsigned fmask, tmask;
	struct tree_info there;
	char *result = NULL;
	int rc;

	if (fsctx_resolve(fs, to, &there) == 0) {
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
			    result, fspath_alias(true, from),
			    fspath_alias(true, to));
	free(result);
	fswatch_invalidate_with_dir(fs, from);
	fswatch_invalidate_with_dir(fs, to);
	return 0;
}

/* rename of a message in the Maildir layout: into cur/ of its own
 * folder, a change of its letters (flags); into another folder's cur/
 * or new/, a move; anything else (back into new/, into tmp/) EPERM. */
static int fsmaildir_rename_msg(struct fsnode *n, const char *to,
				unsigned flags)
{
	struct fsmount *fs = n->fs;
	struct tree_info dir;
	int rc = fsmaildir_parent(fs, to, &dir);

	if (rc < 0)
		return rc;
	if (dir.kind != TREE_FOLDER)
		rc = fsedit_rename_message(n, to, flags);
	else if (strcmp(dir.folder, n->info.folder) != 0)
		rc = dir.sub == MAILDIR_SUB_TMP
			     ? -EPERM
			     : fsedit_rename_message(n, to, flags);
	else if (dir.sub == MAILDIR_SUB_CUR)
		rc = fsmaildir_set_letters(fs, &n->info, n->path, to, flags);
	else
		rc = -EPERM; /* back into new/ or tmp/ */
	tree_info_clear(&dir);
	return rc;
}

/* rename of a Maildir folder: not into a cur/, new/ or tmp/. */
static int fsmaildir_rename_folder(struct fsnode *n, const char *to,
				   unsigned flags)
{
	struct tree_info dir;
	int rc = fsmaildir_parent(n->fs, to, &dir);

	if (rc == 0)
		rc = dir.kind == TREE_FOLDER && dir.sub
			     ? -EPERM
			     : fsedit_rename_folder(n, to, flags);
	tree_info_clear(&dir);
	return rc;
}

/* rename of a file being written: from tmp/ into new/ or cur/, stored
 * with the flags of its letters. */
static int fsmaildir_rename_new(struct fsnode *n, const char *to,
				unsigned flags)
{
	struct fsmount *fs = n->fs;
	struct tree_info dir;
	struct newmsg *m;
	int rc = fsmaildir_parent(fs, to, &dir);

	if (rc < 0)
		return rc;
	m = newmsg_get(fs->newmsgs, n->path);
	rc = m ? fsmaildir_deliver(m, to, &dir) : -ENOENT;
	if (m)
		newmsg_put(fs->newmsgs, m);
	tree_info_clear(&dir);
	return rc < 0 ? rc : fsnew_rename(n, to, flags);
}

int fsmaildir_mkdir(struct fsmount *fs, const char *path, mode_t mode)
{
	struct tree_info dir;
	int rc;

	rc = fsmaildir_parent(fs, path, &dir);
	if (rc < 0)
		return rc;
	/* No folder inside cur/, new/ or tmp/; a folder level named cur,
	 * new or tmp is made as %63ur, %6Eew, %74mp. */
	if (dir.sub || maildir_sub_of(fspath_base(path)))
		rc = -EPERM;
	tree_info_clear(&dir);
	return rc < 0 ? rc : fsedit_mkdir(fs, path, mode);
}

/* rmdir of a Maildir folder: one whose only directories are cur/, new/
 * and tmp/ is deleted as in the default layout (the server refuses
 * while it holds messages); cur/, new/ and tmp/ stay while their folder
 * does. */
static int fsmaildir_rmdir(struct fsnode *n)
{
	struct fsmount *fs = n->fs;
	const struct tree_info *info = &n->info;
	int rc;

	if (info->nlink != 5 || !fs->cfg.store->ops->delete_folder ||
	    strcasecmp(info->folder, "INBOX") == 0)
		return fsedit_rmdir(n);
	rc = fs->cfg.store->ops->delete_folder(fs->cfg.store, info->folder);
	if (rc == 0) {
		tree_expire_listing(fs->tree, NULL);
		fswatch_invalidate_with_dir(fs, n->path);
	}
	return rc;
}

/* EPERM: cur/, new/ and tmp/ are neither removed nor renamed. */
static int fsmaildir_eperm(struct fsnode *n)
{
	(void)n;
	return -EPERM;
}

const struct fskind fsmaildir_folder_kind = {
	.name = "maildir folder",
	FSDIR_OPS,
	.rmdir = fsmaildir_rmdir,
	.rename = fsmaildir_rename_folder,
};

const struct fskind fsmaildir_sub_kind = {
	.name = "maildir cur/new/tmp",
	FSDIR_OPS,
	.rmdir = fsmaildir_eperm,
};

const struct fskind fsmaildir_msg_kind = {
	.name = "maildir message",
	FSMSG_NODE_OPS,
	.rename = fsmaildir_rename_msg,
};

/* A file being written in the Maildir layout: as in the default one,
 * but delivered from tmp/ by a rename (handles are fsnew_kind's). */
const struct fskind fsmaildir_new_kind = {
	.name = "maildir new file",
	FSNEW_NODE_OPS,
	.rename = fsmaildir_rename_new,
};
