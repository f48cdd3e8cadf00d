// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsattr: a message's attributes: its flags and identity as extended
 * attributes, its date, its mode (see fsattr.h). Every change is carried
 * to the server and confirmed before the call returns; the tree is then
 * updated in place and the kernel's cached attributes dropped, so that
 * the change shows at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "fsattr.h"
#include "fskind.h"
#include "fsstate.h"
#include "fswatch.h"
#include "store.h"
#include "tree.h"

/* getxattr of a message: its flags, its UID, or the store's own name
 * for it (POP3's UIDL). */
int fsattr_getxattr(struct fsnode *n, const char *name, char *value,
		    size_t size)
{
	struct store *st = n->fs->cfg.store;
	const struct tree_info *info = &n->info;
	const char *val = NULL;
	char uid[16];
	size_t len;

	snprintf(uid, sizeof(uid), "%u", info->uid);
	if (st->has_flags && !strcmp(name, FS_XATTR_FLAGS))
		val = info->flags;
	else if (st->has_flags && !strcmp(name, FS_XATTR_UID))
		val = uid;
	else if (st->ref_xattr && !strcmp(name, st->ref_xattr))
		val = info->store_ref;
	if (!val)
		return -ENODATA;
	len = strlen(val);
	if (size && len > size)
		return -ERANGE;
	if (size)
		memcpy(value, val, len);
	return (int)len;
}

/* listxattr of a message: its flags and the store's name (the UID is
 * readable by name only, so that rsync -X and cp -a do not copy it). */
int fsattr_listxattr(struct fsnode *n, char *list, size_t size)
{
	struct store *st = n->fs->cfg.store;
	const char *ref = st->ref_xattr;
	size_t len = 0;
	char names[128];

	if (st->has_flags) {
		memcpy(names, FS_XATTR_FLAGS, sizeof(FS_XATTR_FLAGS));
		len += sizeof(FS_XATTR_FLAGS);
	}
	if (ref && n->info.store_ref && strlen(ref) < sizeof(names) - len) {
		memcpy(names + len, ref, strlen(ref) + 1);
		len += strlen(ref) + 1;
	}
	if (size && len) {
		if (size < len)
			return -ERANGE;
		memcpy(list, names, len);
	}
	return (int)len;
}

/* utimens of a message: accepted when it asks for the date the message
 * has (cp -p of a copy), refused otherwise: a message's date is its
 * own. */
int fsattr_utimens(struct fsnode *n, const struct timespec tv[2],
		   struct fuse_file_info *fi)
{
	(void)fi;
	if (tv[1].tv_nsec != UTIME_OMIT &&
	    (tv[1].tv_nsec == UTIME_NOW || tv[1].tv_sec != n->info.mtime))
		return -EACCES;
	return 0;
}

/* chmod and chown of a message: modes and owners are the mount's. */
int fsattr_chattr(struct fsnode *n)
{
	(void)n;
	return -EPERM;
}

/* Replaces a message's flags on the server, then in the tree. */
static int fsattr_apply(struct fsnode *n, const char *flags, int xflags)
{
	struct fsmount *fs = n->fs;
	struct tree_info *info = &n->info;
	struct store_msg shown;
	char *result = NULL;
	int rc;

	if (xflags & XATTR_CREATE)
		return -EEXIST;
	tree_info_msg(info, &shown);
	rc = fs->cfg.store->ops->set_flags(fs->cfg.store, info->folder,
					   info->uidvalidity, &shown, flags,
					   &result);
	if (rc == 0) {
		tree_set_flags(fs->tree, info->folder, info->uidvalidity,
			       info->uid, result);
		free(result);
		if (fs->cfg.maildir) /* the name follows the flags */
			fswatch_invalidate_with_dir(fs, n->path);
	}
	return rc;
}

/*
 * setxattr (value) or removexattr (value NULL) of name on n: the flags
 * (user.mail.flags), normalized and handed to apply; the UID is the
 * server's, and setting it (cp -a may try) is accepted and ignored;
 * any other name is refused (ENOTSUP to set, ENODATA to remove).
 */
int fsattr_flags_xattr(struct fsnode *n, const char *name, const char *value,
		       size_t size, int xflags,
		       int (*apply)(struct fsnode *n, const char *flags,
				    int xflags))
{
	struct store *st = n->fs->cfg.store;
	char *text, *flags;
	int rc;

	if (value && !strcmp(name, FS_XATTR_UID) && st->has_flags)
		return 0;
	if (strcmp(name, FS_XATTR_FLAGS) != 0 || !st->has_flags)
		return value ? -ENOTSUP : -ENODATA;
	if (!st->ops->set_flags)
		return -EPERM;
	text = value ? strndup(value, size) : strdup("");
	if (!text)
		return -ENOMEM;
	flags = store_flags_normalize(text);
	free(text);
	if (!flags)
		return -EINVAL;
	rc = apply(n, flags, xflags);
	free(flags);
	return rc;
}

int fsattr_setxattr(struct fsnode *n, const char *name, const char *value,
		    size_t size, int flags)
{
	return fsattr_flags_xattr(n, name, value, size, flags, fsattr_apply);
}

/* removexattr of a message's flags: clears them all. */
int fsattr_removexattr(struct fsnode *n, const char *name)
{
	return fsattr_flags_xattr(n, name, NULL, 0, 0, fsattr_apply);
}
