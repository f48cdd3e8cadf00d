// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsnode: resolves each request once and dispatches it to its node's
 * kind; see fsnode.h. What is decided here, before any kind runs:
 *  - a change (create, write, truncate, utimens, chmod, chown, xattrs
 *    set or removed, rename, link, unlink, mkdir, rmdir) on a read-only
 *    mount or a virtual path is EROFS;
 *  - the mount's status attribute and the security.* and system.*
 *    attributes ls asks every file for are answered without resolving;
 *  - operations on an open file or directory go to the kind its handle
 *    was opened by, without resolving the path at all.
 * The layout's namespace operations (create, mkdir, link) are not a
 * node's: they name something that is not there yet.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>

#include "fsattr.h"
#include "fsctx.h"
#include "fsdir.h"
#include "fsedit.h"
#include "fsmaildir.h"
#include "fsmount.h"
#include "fsmsg.h"
#include "fsnew.h"
#include "fsnode.h"
#include "fsstatus.h"
#include "fsvnode.h"
#include "newmsg.h"

/* The kind of a node the tree resolved, by the mount's layout. */
static const struct fskind *fsnode_tree_kind(const struct fsmount *fs,
					     const struct tree_info *info,
					     enum fsnode_type *type_r)
{
	bool md = fs->cfg.maildir;

	switch (info->kind) {
	case TREE_ROOT:
		*type_r = FSNODE_ROOT;
		return &fsdir_root_kind;
	case TREE_MESSAGE:
		*type_r = FSNODE_MESSAGE;
		return md ? &fsmaildir_msg_kind : &fsmsg_kind;
	default:
		if (info->sub) {
			*type_r = FSNODE_SUBDIR;
			return &fsmaildir_sub_kind;
		}
		*type_r = FSNODE_FOLDER;
		return md ? &fsmaildir_folder_kind : &fsdir_folder_kind;
	}
}

/* Resolves path: a virtual name (pure parsing), a file being written
 * (memory), or what the tree names (listings refreshed when stale). */
int fsnode_resolve(struct fsmount *fs, const char *path, struct fsnode *n)
{
	int rc;

	memset(n, 0, sizeof(*n));
	n->fs = fs;
	n->path = path;
	rc = fsvnode_parse(path, &n->vp);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		n->type = FSNODE_VIRTUAL;
		n->kind = &fsvnode_kind;
		return 0;
	}
	if (newmsg_stat(fs->newmsgs, path, &(uint64_t){0}, &(time_t){0})) {
		n->type = FSNODE_NEWMSG;
		n->kind = fs->cfg.maildir ? &fsmaildir_new_kind : &fsnew_kind;
		return 0;
	}
	rc = fsctx_resolve(fs, path, &n->info);
	if (rc < 0)
		return rc;
	n->kind = fsnode_tree_kind(fs, &n->info, &n->type);
	return 0;
}

void fsnode_clear(struct fsnode *n)
{
	tree_info_clear(&n->info);
	fsvirt_path_clear(&n->vp);
}

/* EROFS for a change on a read-only mount. */
static int fsnode_writable(const struct fsmount *fs)
{
	return fs->cfg.readonly ? -EROFS : 0;
}

/* Resolves path for a change: EROFS on a read-only mount or a virtual
 * path, else fsnode_resolve(). An open file unlinked since (hard_remove)
 * comes without a path, with its handle in fi: the node is then the
 * handle's kind alone (no tree information), which its truncate,
 * utimens and chattr serve through the handle. */
static int fsnode_resolve_change(const char *path, struct fuse_file_info *fi,
				 struct fsnode *n)
{
	struct fsmount *fs = fsctx_get();
	int rc = fsnode_writable(fs);

	memset(n, 0, sizeof(*n));
	if (rc == 0 && !path) {
		n->fs = fs;
		n->kind = fskind_of_handle(fi);
		if (!n->kind)
			return -ESTALE;
		return n->kind == &fsvnode_kind ? -EROFS : 0;
	}
	if (rc == 0)
		rc = fsnode_resolve(fs, path, n);
	if (rc == 0 && n->type == FSNODE_VIRTUAL)
		rc = -EROFS;
	return rc;
}

static int fsnode_getattr(const char *path, struct stat *st,
			  struct fuse_file_info *fi)
{
	struct fsmount *fs = fsctx_get();
	const struct fskind *hk = fskind_of_handle(fi);
	struct fsnode n;
	int rc;

	/* fstat of an open file that was unlinked comes without a path
	 * (hard_remove): its handle answers. */
	if (!path)
		return hk && hk->fgetattr ? hk->fgetattr(fs, fi, st) : -ENOENT;
	rc = fsnode_resolve(fs, path, &n);
	if (rc == 0) {
		/* A virtual file being read shows the size it reached. */
		rc = -ENOSYS;
		if (n.type == FSNODE_VIRTUAL && hk == n.kind && hk->fgetattr)
			rc = hk->fgetattr(fs, fi, st);
		if (rc == -ENOSYS)
			rc = n.kind->getattr ? n.kind->getattr(&n, st)
					     : -ENOENT;
	}
	fsnode_clear(&n);
	return rc;
}

static int fsnode_open(const char *path, struct fuse_file_info *fi)
{
	struct fsnode n;
	int rc = fsnode_resolve(fsctx_get(), path, &n);

	if (rc == 0)
		rc = n.kind->open ? n.kind->open(&n, fi) : -EISDIR;
	fsnode_clear(&n);
	return rc;
}

static int fsnode_opendir(const char *path, struct fuse_file_info *fi)
{
	struct fsnode n;
	int rc = fsnode_resolve(fsctx_get(), path, &n);

	if (rc == 0)
		rc = n.kind->opendir ? n.kind->opendir(&n, fi) : -ENOTDIR;
	fsnode_clear(&n);
	return rc;
}

static int fsnode_read(const char *path, char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	const struct fskind *k = fskind_of_handle(fi);

	return k && k->read ? k->read(fsctx_get(), path, buf, size, off, fi)
			    : -EBADF;
}

static int fsnode_write(const char *path, const char *buf, size_t size,
			off_t off, struct fuse_file_info *fi)
{
	const struct fskind *k = fskind_of_handle(fi);

	return k && k->write ? k->write(fsctx_get(), path, buf, size, off, fi)
			     : -EBADF;
}

static int fsnode_flush(const char *path, struct fuse_file_info *fi)
{
	const struct fskind *k = fskind_of_handle(fi);

	return k && k->flush ? k->flush(fsctx_get(), path, fi) : 0;
}

static int fsnode_release(const char *path, struct fuse_file_info *fi)
{
	const struct fskind *k = fskind_of_handle(fi);

	if (k && k->release)
		k->release(fsctx_get(), path, fi);
	fi->fh = 0;
	return 0;
}

static int fsnode_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
			  off_t off, struct fuse_file_info *fi,
			  enum fuse_readdir_flags flags)
{
	const struct fskind *k = fskind_of_handle(fi);

	return k && k->readdir ? k->readdir(fsctx_get(), path, buf, filler, off,
					    fi, flags)
			       : -EBADF;
}

static int fsnode_releasedir(const char *path, struct fuse_file_info *fi)
{
	const struct fskind *k = fskind_of_handle(fi);

	(void)path;
	if (k && k->releasedir)
		k->releasedir(fsctx_get(), fi);
	fi->fh = 0;
	return 0;
}

static int fsnode_readlink(const char *path, char *buf, size_t size)
{
	struct fsnode n;
	int rc = fsnode_resolve(fsctx_get(), path, &n);

	if (rc == 0)
		rc = n.kind->readlink ? n.kind->readlink(&n, buf, size)
				      : -EINVAL;
	fsnode_clear(&n);
	return rc;
}

/* getxattr: ls asks every file for security.* and system.* attributes:
 * answered without looking the file up. "Not supported" (rather than
 * "none") makes ls and the ACL library stop asking for the rest of the
 * filesystem: one request instead of two per file of ls -l. */
static int fsnode_getxattr(const char *path, const char *name, char *value,
			   size_t size)
{
	struct fsmount *fs = fsctx_get();
	struct fsnode n;
	int rc;

	if (!strncmp(name, "security.", 9) || !strncmp(name, "system.", 7))
		return -EOPNOTSUPP;
	if (!strcmp(name, FS_XATTR_STATUS) && !fsvirt_is_virtual(path))
		return fsstatus_getxattr(fs, path, value, size);
	rc = fsnode_resolve(fs, path, &n);
	if (rc == 0)
		rc = n.kind->getxattr ? n.kind->getxattr(&n, name, value, size)
				      : -ENODATA;
	fsnode_clear(&n);
	return rc;
}

static int fsnode_listxattr(const char *path, char *list, size_t size)
{
	struct fsnode n;
	int rc = fsnode_resolve(fsctx_get(), path, &n);

	if (rc == 0)
		rc = n.kind->listxattr ? n.kind->listxattr(&n, list, size) : 0;
	fsnode_clear(&n);
	return rc;
}

static int fsnode_setxattr(const char *path, const char *name,
			   const char *value, size_t size, int flags)
{
	struct fsnode n;
	int rc = fsnode_resolve_change(path, NULL, &n);

	if (rc == 0)
		rc = n.kind->setxattr
			     ? n.kind->setxattr(&n, name, value, size, flags)
			     : -ENOTSUP;
	fsnode_clear(&n);
	return rc;
}

static int fsnode_removexattr(const char *path, const char *name)
{
	struct fsnode n;
	int rc = fsnode_resolve_change(path, NULL, &n);

	if (rc == 0)
		rc = n.kind->removexattr ? n.kind->removexattr(&n, name)
					 : -ENODATA;
	fsnode_clear(&n);
	return rc;
}

static int fsnode_truncate(const char *path, off_t size,
			   struct fuse_file_info *fi)
{
	struct fsnode n;
	int rc;

	if (size < 0 && !fsnode_writable(fsctx_get()))
		return -EINVAL;
	rc = fsnode_resolve_change(path, fi, &n);
	if (rc == 0)
		rc = n.kind->truncate ? n.kind->truncate(&n, size, fi)
				      : -EACCES; /* messages are immutable */
	fsnode_clear(&n);
	return rc;
}

static int fsnode_utimens(const char *path, const struct timespec tv[2],
			  struct fuse_file_info *fi)
{
	struct fsnode n;
	int rc = fsnode_resolve_change(path, fi, &n);

	if (rc == 0 && n.kind->utimens)
		rc = n.kind->utimens(&n, tv, fi);
	fsnode_clear(&n);
	return rc;
}

/* chmod and chown: modes and owners are the mount's; each kind says
 * whether it accepts the call (cp -p) or refuses it. */
static int fsnode_chattr(const char *path, struct fuse_file_info *fi)
{
	struct fsnode n;
	int rc = fsnode_resolve_change(path, fi, &n);

	if (rc == 0 && n.kind->chattr)
		rc = n.kind->chattr(&n);
	fsnode_clear(&n);
	return rc;
}

static int fsnode_chmod(const char *path, mode_t mode,
			struct fuse_file_info *fi)
{
	(void)mode;
	return fsnode_chattr(path, fi);
}

static int fsnode_chown(const char *path, uid_t uid, gid_t gid,
			struct fuse_file_info *fi)
{
	(void)uid;
	(void)gid;
	return fsnode_chattr(path, fi);
}

static int fsnode_unlink(const char *path)
{
	struct fsnode n;
	int rc = fsnode_resolve_change(path, NULL, &n);

	if (rc == 0)
		rc = n.kind->unlink ? n.kind->unlink(&n) : -EISDIR;
	fsnode_clear(&n);
	return rc;
}

static int fsnode_rmdir(const char *path)
{
	struct fsnode n;
	int rc = fsnode_resolve_change(path, NULL, &n);

	if (rc == 0)
		rc = n.kind->rmdir ? n.kind->rmdir(&n) : -ENOTDIR;
	fsnode_clear(&n);
	return rc;
}

/* rename: the source's kind decides; nothing moves into or out of a
 * virtual path, and nothing is exchanged. */
static int fsnode_rename(const char *from, const char *to, unsigned flags)
{
	struct fsnode n;
	int rc;

	if (fsvirt_is_virtual(to))
		return -EROFS;
	rc = fsnode_resolve_change(from, NULL, &n);
	if (rc == 0 && (flags & RENAME_EXCHANGE))
		rc = -EINVAL;
	if (rc == 0)
		rc = n.kind->rename ? n.kind->rename(&n, to, flags) : -EPERM;
	fsnode_clear(&n);
	return rc;
}

/* create: a new file in a folder (fsnew.c), in either layout. */
static int fsnode_create(const char *path, mode_t mode,
			 struct fuse_file_info *fi)
{
	struct fsmount *fs = fsctx_get();

	if (fsvirt_is_virtual(path))
		return -EROFS;
	if (fsnode_writable(fs))
		return -EROFS;
	return fsnew_create(fs, path, mode, fi);
}

/* mkdir: a new folder, by the layout's rules. */
static int fsnode_mkdir(const char *path, mode_t mode)
{
	struct fsmount *fs = fsctx_get();

	if (fsvirt_is_virtual(path))
		return -EROFS;
	if (fsnode_writable(fs))
		return -EROFS;
	return fs->cfg.maildir ? fsmaildir_mkdir(fs, path, mode)
			       : fsedit_mkdir(fs, path, mode);
}

/* link(2): EPERM in every layout, a message has one name per folder
 * (Python's Maildir.add() then renames). */
static int fsnode_link(const char *from, const char *to)
{
	if (fsvirt_is_virtual(from) || fsvirt_is_virtual(to))
		return -EROFS;
	return -EPERM;
}

/* statfs: the mount's, whatever the path. */
static int fsnode_statfs(const char *path, struct statvfs *st)
{
	return fsstatus_statfs(path, st);
}

static const struct fuse_operations fsnode_table = {
	.init = fsmount_init,
	.getattr = fsnode_getattr,
	.readlink = fsnode_readlink,
	.opendir = fsnode_opendir,
	.readdir = fsnode_readdir,
	.releasedir = fsnode_releasedir,
	.open = fsnode_open,
	.read = fsnode_read,
	.release = fsnode_release,
	.flush = fsnode_flush,
	.getxattr = fsnode_getxattr,
	.listxattr = fsnode_listxattr,
	.statfs = fsnode_statfs,
	.create = fsnode_create,
	.write = fsnode_write,
	.truncate = fsnode_truncate,
	.utimens = fsnode_utimens,
	.chmod = fsnode_chmod,
	.chown = fsnode_chown,
	.setxattr = fsnode_setxattr,
	.removexattr = fsnode_removexattr,
	.rename = fsnode_rename,
	.link = fsnode_link,
	.unlink = fsnode_unlink,
	.mkdir = fsnode_mkdir,
	.rmdir = fsnode_rmdir,
};

const struct fuse_operations *fsnode_operations(void)
{
	return &fsnode_table;
}

bool fsnode_sized_at_open(const char *path)
{
	return fsvnode_sized_at_open(path);
}
