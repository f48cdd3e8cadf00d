// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsedit: changes to the tree through the store (see fsedit.h): moves,
 * rm (to Trash), folders made, renamed and removed. Each is carried to
 * the server and confirmed before the call returns; the tree follows,
 * and the kernel's caches of what changed are dropped.
 */
#include <errno.h>
#include <fuse.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uthash.h>

#include "clock.h"
#include "fsctx.h"
#include "fsedit.h"
#include "fskind.h"
#include "fspath.h"
#include "fswatch.h"
#include "log.h"
#include "names.h"
#include "store.h"
#include "tree.h"

/*
 * Moves a message to another folder on the server. The message leaves
 * the source listing and joins the target's under its new UID, and the
 * name it was given stays readable there until the next listing (unless
 * a message of that name is already there, which is never replaced).
 */
static int fsedit_move_message(struct fsmount *fs, const struct tree_info *msg,
			       const char *from, const char *to)
{
	struct tree_info dir, there;
	struct store_msg shown;
	uint32_t uid, uidvalidity;
	const char *base;
	char *dirpath;
	int rc;

	dirpath = fspath_dirname(to, &base);
	if (!dirpath)
		return -ENOMEM;
	rc = fsctx_resolve(fs, dirpath, &dir);
	free(dirpath);
	if (rc < 0 || (rc = fsctx_holds_messages(&dir)) < 0)
		return rc;
	if (strcmp(dir.folder, msg->folder) == 0) {
		rc = -EPERM; /* names come from the message: no renaming */
		goto out;
	}
	if (fsctx_resolve(fs, to, &there) == 0) {
		/* Never replaced: another message of that name stays. */
		tree_info_clear(&there);
		rc = -EEXIST;
		goto out;
	}
	tree_info_msg(msg, &shown);
	rc = fs->cfg.store->ops->move(fs->cfg.store, msg->folder,
				      msg->uidvalidity, &shown, dir.folder,
				      &uid, &uidvalidity);
	if (rc < 0)
		goto out;
	fsctx_moved(fs, msg, dir.folder, uidvalidity, uid, base);
	fswatch_invalidate_with_dir(fs, from);
	fswatch_invalidate_with_dir(fs, to);
out:
	tree_info_clear(&dir);
	return rc;
}

/* Renames a folder (and so its subfolders) on the server. */
static int fsedit_rename_tree(struct fsmount *fs, const struct tree_info *src,
			      const char *to)
{
	struct tree_info dst;
	char *name;
	char delim = tree_delimiter(fs->tree);
	int rc;

	if (strcasecmp(src->folder, "INBOX") == 0)
		return -EPERM;
	rc = fsctx_resolve(fs, to, &dst);
	if (rc == 0) {
		tree_info_clear(&dst);
		return -EEXIST; /* folders are not merged */
	}
	if (!delim && strchr(to + 1, '/'))
		return -EPERM; /* the server has no hierarchy */
	name = names_from_path(to + 1, delim);
	if (!name)
		return -EINVAL;
	rc = fs->cfg.store->ops->rename_folder(fs->cfg.store, src->folder,
					       name);
	free(name);
	if (rc < 0)
		return rc;
	tree_expire_listing(fs->tree, NULL);
	fswatch_invalidate_with_dir(fs, src->folder_path);
	fswatch_invalidate_with_dir(fs, to);
	return 0;
}

/* Checks what every rename through the store needs: moves, and a
 * target that is free when RENAME_NOREPLACE asks for one. */
static int fsedit_rename_check(struct fsmount *fs, const char *to,
			       unsigned flags)
{
	struct tree_info dst;

	if (!fs->cfg.store->ops->move)
		return -EPERM;
	if ((flags & RENAME_NOREPLACE) && fsctx_resolve(fs, to, &dst) == 0) {
		tree_info_clear(&dst);
		return -EEXIST;
	}
	return 0;
}

/* rename of a message: a move to another folder. */
int fsedit_rename_message(struct fsnode *n, const char *to, unsigned flags)
{
	int rc = fsedit_rename_check(n->fs, to, flags);

	return rc < 0 ? rc : fsedit_move_message(n->fs, &n->info, n->path, to);
}

/* rename of a folder (and so of its subfolders). */
int fsedit_rename_folder(struct fsnode *n, const char *to, unsigned flags)
{
	int rc = fsedit_rename_check(n->fs, to, flags);

	return rc < 0 ? rc : fsedit_rename_tree(n->fs, &n->info, to);
}

/* Remembers that this mount moved a message to Trash (uid 0: its UID
 * there is unknown), forgetting entries older than the grace period. */
static void fsedit_note_trashed(struct fsmount *fs, const char *trash,
				uint32_t uidvalidity, uint32_t uid)
{
	struct fstrashed *t, *tmp;
	time_t now = clock_mono();

	pthread_mutex_lock(&fs->trash_lock);
	HASH_ITER(hh, fs->trashed, t, tmp)
	{
		if (now - t->at > FS_TRASH_GRACE) {
			HASH_DEL(fs->trashed, t);
			free(t);
		}
	}
	if (!uid) {
		fs->trashed_blind = now;
	} else if ((t = calloc(1, sizeof(*t)))) {
		t->key.folder = tree_folder_id(trash);
		t->key.uidvalidity = uidvalidity;
		t->key.uid = uid;
		t->at = now;
		HASH_ADD(hh, fs->trashed, key, sizeof(t->key), t);
	}
	pthread_mutex_unlock(&fs->trash_lock);
}

/* True when a message of Trash was moved there by this mount within the
 * grace period (or when such a move's UID was not known). */
static bool fsedit_recently_trashed(struct fsmount *fs,
				    const struct tree_info *info)
{
	struct cache_key k = {.folder = info->folder_id,
			      .uidvalidity = info->uidvalidity,
			      .uid = info->uid};
	struct fstrashed *t;
	time_t now = clock_mono();
	bool recent;

	pthread_mutex_lock(&fs->trash_lock);
	HASH_FIND(hh, fs->trashed, &k, sizeof(k), t);
	recent = (t && now - t->at <= FS_TRASH_GRACE) ||
		 clock_recent(fs->trashed_blind, now, FS_TRASH_GRACE + 1);
	pthread_mutex_unlock(&fs->trash_lock);
	return recent;
}

/* The server name of the Trash folder, created if there is none. */
static char *fsedit_trash(struct fsmount *fs)
{
	char *trash = tree_trash(fs->tree);
	int rc;

	if (trash)
		return trash;
	log_info("creating a Trash folder for deleted messages");
	rc = fs->cfg.store->ops->create_folder(fs->cfg.store, "Trash");
	if (rc < 0 && rc != -EEXIST) {
		/* Servers whose folders all live under INBOX. */
		char name[16], delim = tree_delimiter(fs->tree);

		snprintf(name, sizeof(name), "INBOX%cTrash",
			 delim ? delim : '.');
		rc = fs->cfg.store->ops->create_folder(fs->cfg.store, name);
		if (rc < 0 && rc != -EEXIST)
			return NULL;
	}
	tree_expire_listing(fs->tree, NULL);
	fsctx_refresh_folders(fs, 0);
	fswatch_invalidate(fs, "/");
	return tree_trash(fs->tree);
}

/*
 * rm: moves the message to Trash, like every mail client, so that an
 * accidental rm -r can be undone. In Trash itself, or with
 * -o delete=expunge, the message is expunged (that UID alone).
 */
int fsedit_unlink(struct fsnode *n)
{
	struct fsmount *fs = n->fs;
	const char *path = n->path;
	const struct tree_info *info = &n->info;
	struct store_msg shown;
	char *trash = NULL;
	int rc;

	if (!fs->cfg.store->ops->expunge)
		return -EPERM;
	/* Without moves there is no Trash: rm removes for good. */
	if (!fs->cfg.expunge_on_delete && fs->cfg.store->ops->move) {
		trash = fsedit_trash(fs);
		if (!trash)
			return -EIO;
	}
	tree_info_msg(info, &shown);
	if (trash && strcmp(trash, info->folder) == 0 &&
	    fsedit_recently_trashed(fs, info)) {
		log_warnx("%s was moved to Trash a moment ago: not expunging "
			  "it (-o delete=expunge removes mail for good)",
			  path);
		rc = -EPERM;
	} else if (!trash || strcmp(trash, info->folder) == 0) {
		rc = fs->cfg.store->ops->expunge(fs->cfg.store, info->folder,
						 info->uidvalidity, &shown);
		if (rc == 0)
			tree_remove_message(fs->tree, info->folder,
					    info->uidvalidity, info->uid);
	} else {
		uint32_t uid, uidvalidity;

		rc = fs->cfg.store->ops->move(fs->cfg.store, info->folder,
					      info->uidvalidity, &shown, trash,
					      &uid, &uidvalidity);
		if (rc == 0) {
			fsedit_note_trashed(fs, trash, uidvalidity, uid);
			fsctx_moved(fs, info, trash, uidvalidity, uid, NULL);
		}
	}
	if (rc == 0)
		fswatch_invalidate_with_dir(fs, path);
	free(trash);
	return rc;
}

int fsedit_mkdir(struct fsmount *fs, const char *path, mode_t mode)
{
	struct tree_info info;
	char delim = tree_delimiter(fs->tree);
	char *name;
	int rc;

	(void)mode;
	if (!fs->cfg.store->ops->create_folder)
		return -EPERM;
	rc = fsctx_new_name(fs, path, &info);
	if (rc < 0)
		return rc;
	if (info.kind == TREE_MESSAGE)
		rc = -ENOTDIR;
	else if (info.kind == TREE_FOLDER &&
		 ((info.attrs & STORE_FOLDER_NOINFERIORS) || !delim))
		rc = -EPERM;
	tree_info_clear(&info);
	if (rc < 0)
		return rc;
	name = names_from_path(path + 1, delim);
	if (!name)
		return -EINVAL;
	rc = fs->cfg.store->ops->create_folder(fs->cfg.store, name);
	/* The folder list just had no such folder: a server that says it
	 * exists (Dovecot can, while another session opens a mailbox) is
	 * asked again, and a folder that is there now is what mkdir asked
	 * for. */
	if (rc == -EEXIST) {
		tree_expire_listing(fs->tree, NULL);
		if (fsctx_refresh_folders(fs, 0) == 0 &&
		    tree_has_folder(fs->tree, name))
			rc = 0;
	}
	free(name);
	if (rc < 0)
		return rc;
	tree_expire_listing(fs->tree, NULL);
	fswatch_invalidate_with_dir(fs, path);
	return 0;
}

/* rmdir: deletes an empty folder; ENOTEMPTY while it holds messages or
 * subfolders (the server checks again just before deleting). */
int fsedit_rmdir(struct fsnode *n)
{
	struct fsmount *fs = n->fs;
	const struct tree_info *info = &n->info;
	int rc;

	if (!fs->cfg.store->ops->delete_folder)
		return -EPERM;
	if (strcasecmp(info->folder, "INBOX") == 0)
		return -EPERM;
	if (info->nlink > 2)
		return -ENOTEMPTY;
	rc = fs->cfg.store->ops->delete_folder(fs->cfg.store, info->folder);
	if (rc == 0) {
		tree_expire_listing(fs->tree, NULL);
		fswatch_invalidate_with_dir(fs, n->path);
	}
	return rc;
}
