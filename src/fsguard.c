// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsguard: the operation table fsll serves to FUSE. It wraps fsvirt's (which
 * hands ordinary paths to fsops and virtual ones to their kinds) and
 * lets through only requests from the mount's owner (and root): with
 * -o allow_other, other users see the mount but every read and change
 * gets EACCES, since mailfs acts with the owner's credentials on the
 * server. Without allow_other the kernel refuses them already; this is
 * the same rule, held by mailfs itself. Every request also gets its
 * deadline here (clock_request_begin()).
 */
#include <errno.h>
#include <fuse.h>

#include "clock.h"
#include "fsll.h"
#include "fsops_priv.h"
#include "fsvirt.h"

/* Starts serving a request: its deadline is `timeout` from now, so
 * that the request returns within it whatever it takes (clock.h). */
static void fsguard_begin(void)
{
	const struct fsops *fs = fsll_context()->private_data;

	clock_request_begin((long)fs->cfg.timeout * 1000);
}

/* Starts a request and tells whether its caller may use the mount. */
static bool fsguard_ok(void)
{
	const struct fuse_context *c = fsll_context();
	const struct fsops *fs = c->private_data;

	fsguard_begin();
	return c->uid == fs->uid || c->uid == 0;
}

/* The table behind the guard: fsvirt's dispatcher, which hands
 * ordinary paths to fsops (and fsmaildir) and virtual ones to their
 * kinds. */
static const struct fuse_operations *fsguard_inner(void)
{
	return fsvirt_operations();
}

static int fsguard_getattr(const char *p, struct stat *st,
			   struct fuse_file_info *fi)
{
	return fsguard_ok() ? fsguard_inner()->getattr(p, st, fi) : -EACCES;
}

static int fsguard_readdir(const char *p, void *buf, fuse_fill_dir_t fill,
			   off_t off, struct fuse_file_info *fi,
			   enum fuse_readdir_flags flags)
{
	return fsguard_ok() ? fsguard_inner()->readdir(p, buf, fill, off, fi,
						       flags) :
			      -EACCES;
}

static int fsguard_readlink(const char *p, char *buf, size_t size)
{
	return fsguard_ok() ? fsguard_inner()->readlink(p, buf, size) :
			      -EACCES;
}

static int fsguard_opendir(const char *p, struct fuse_file_info *fi)
{
	return fsguard_ok() ? fsguard_inner()->opendir(p, fi) : -EACCES;
}

static int fsguard_releasedir(const char *p, struct fuse_file_info *fi)
{
	fsguard_begin();
	return fsguard_inner()->releasedir(p, fi);
}

static int fsguard_open(const char *p, struct fuse_file_info *fi)
{
	return fsguard_ok() ? fsguard_inner()->open(p, fi) : -EACCES;
}

static int fsguard_read(const char *p, char *buf, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	return fsguard_ok() ? fsguard_inner()->read(p, buf, size, off, fi) :
			      -EACCES;
}

static int fsguard_getxattr(const char *p, const char *name, char *value,
			    size_t size)
{
	return fsguard_ok() ? fsguard_inner()->getxattr(p, name, value, size) :
			      -EACCES;
}

static int fsguard_listxattr(const char *p, char *list, size_t size)
{
	return fsguard_ok() ? fsguard_inner()->listxattr(p, list, size) :
			      -EACCES;
}

static int fsguard_statfs(const char *p, struct statvfs *st)
{
	return fsguard_ok() ? fsguard_inner()->statfs(p, st) : -EACCES;
}

static int fsguard_create(const char *p, mode_t mode,
			  struct fuse_file_info *fi)
{
	return fsguard_ok() ? fsguard_inner()->create(p, mode, fi) : -EACCES;
}

static int fsguard_write(const char *p, const char *buf, size_t size,
			 off_t off, struct fuse_file_info *fi)
{
	return fsguard_ok() ? fsguard_inner()->write(p, buf, size, off, fi) :
			      -EACCES;
}

static int fsguard_truncate(const char *p, off_t size,
			    struct fuse_file_info *fi)
{
	return fsguard_ok() ? fsguard_inner()->truncate(p, size, fi) :
			      -EACCES;
}

static int fsguard_utimens(const char *p, const struct timespec tv[2],
			   struct fuse_file_info *fi)
{
	return fsguard_ok() ? fsguard_inner()->utimens(p, tv, fi) : -EACCES;
}

static int fsguard_chmod(const char *p, mode_t mode, struct fuse_file_info *fi)
{
	return fsguard_ok() ? fsguard_inner()->chmod(p, mode, fi) : -EACCES;
}

static int fsguard_chown(const char *p, uid_t uid, gid_t gid,
			 struct fuse_file_info *fi)
{
	return fsguard_ok() ? fsguard_inner()->chown(p, uid, gid, fi) :
			      -EACCES;
}

static int fsguard_setxattr(const char *p, const char *name,
			    const char *value, size_t size, int flags)
{
	return fsguard_ok() ? fsguard_inner()->setxattr(p, name, value, size,
							flags) :
			      -EACCES;
}

static int fsguard_removexattr(const char *p, const char *name)
{
	return fsguard_ok() ? fsguard_inner()->removexattr(p, name) : -EACCES;
}

static int fsguard_rename(const char *from, const char *to, unsigned flags)
{
	return fsguard_ok() ? fsguard_inner()->rename(from, to, flags) : -EACCES;
}

static int fsguard_link(const char *from, const char *to)
{
	return fsguard_ok() ? fsguard_inner()->link(from, to) : -EACCES;
}

static int fsguard_unlink(const char *p)
{
	return fsguard_ok() ? fsguard_inner()->unlink(p) : -EACCES;
}

static int fsguard_mkdir(const char *p, mode_t mode)
{
	return fsguard_ok() ? fsguard_inner()->mkdir(p, mode) : -EACCES;
}

static int fsguard_rmdir(const char *p)
{
	return fsguard_ok() ? fsguard_inner()->rmdir(p) : -EACCES;
}

/* Runs inside FUSE's init: the private data is not set before. */
static void *fsguard_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	return fsguard_inner()->init(conn, cfg);
}

/* flush and release end what an allowed open began: never refused. */
static int fsguard_flush(const char *p, struct fuse_file_info *fi)
{
	fsguard_begin();
	return fsguard_inner()->flush(p, fi);
}

static int fsguard_release(const char *p, struct fuse_file_info *fi)
{
	fsguard_begin();
	return fsguard_inner()->release(p, fi);
}

static const struct fuse_operations fsguard_table = {
	.init = fsguard_init,
	.getattr = fsguard_getattr,
	.readlink = fsguard_readlink,
	.opendir = fsguard_opendir,
	.readdir = fsguard_readdir,
	.releasedir = fsguard_releasedir,
	.open = fsguard_open,
	.read = fsguard_read,
	.release = fsguard_release,
	.getxattr = fsguard_getxattr,
	.listxattr = fsguard_listxattr,
	.statfs = fsguard_statfs,
	.create = fsguard_create,
	.write = fsguard_write,
	.flush = fsguard_flush,
	.truncate = fsguard_truncate,
	.utimens = fsguard_utimens,
	.chmod = fsguard_chmod,
	.chown = fsguard_chown,
	.setxattr = fsguard_setxattr,
	.removexattr = fsguard_removexattr,
	.rename = fsguard_rename,
	.link = fsguard_link,
	.unlink = fsguard_unlink,
	.mkdir = fsguard_mkdir,
	.rmdir = fsguard_rmdir,
};

const struct fuse_operations *fsops_operations(void)
{
	return &fsguard_table;
}
