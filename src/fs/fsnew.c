// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsnew: files being created through the mount (cp, cat >, rsync, tar),
 * held by newmsg until they are stored with APPEND.
 *
 * When a message is stored:
 *  - an ordinary new file, at its creator's close;
 *  - a temporary (a name starting with '.', as rsync's .NAME.XXXXXX),
 *    never at close: at its rename to a name without the dot, which
 *    returns the APPEND's result; unlinking it discards it;
 *  - never from a timer: a caller always sees a failure.
 * A message that is already in the folder, byte for byte, under the
 * name the new one is given is not stored again, so a second identical
 * cp -r or rsync stores nothing (true duplicates under other names, as
 * "-2" names, are stored: they are what the source holds). A stored message is never replaced or removed
 * by a write: a rename onto another message fails with EEXIST, a
 * rewrite of one with other bytes stores a new message beside it.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "fsattr.h"
#include "fsctx.h"
#include "fsll.h"
#include "fsnew.h"
#include "fskind.h"
#include "fspath.h"
#include "fswatch.h"
#include "log.h"
#include "names.h"
#include "newmsg.h"
#include "store.h"

/* What a store compares with: the new message, read from its start. */
struct fsnew_cmp {
	struct newmsg *m;
	uint64_t at; /* bytes compared so far */
	bool differ;
	char buf[64 * 1024];
};

/* Compares one fetched piece with the new message's next bytes. */
static void fsnew_cmp_cb(void *ctx, const struct store_piece *p)
{
	struct fsnew_cmp *c = ctx;
	size_t done = 0;

	if (c->differ || p->offset != c->at) {
		c->differ = true;
		return;
	}
	while (done < p->len) {
		size_t want = p->len - done;
		long n;

		if (want > sizeof(c->buf))
			want = sizeof(c->buf);
		n = newmsg_read(c->m, c->buf, want);
		if (n <= 0 || memcmp(c->buf, p->data + done, (size_t)n) != 0) {
			c->differ = true;
			return;
		}
		done += (size_t)n;
	}
	c->at += p->len;
}

/*
 * True when the stored message info holds exactly the size bytes of m
 * (as they would be APPENDed). Fetches the stored one in pieces; a
 * fetch that fails counts as "not the same" (the caller then stores the
 * new one: a duplicate at worst, never a loss).
 */
static bool fsnew_same(struct fsmount *fs, const struct tree_info *info,
		       struct newmsg *m, uint64_t size)
{
	struct fsnew_cmp *c;
	uint64_t off;
	bool same;

	if (info->kind != TREE_MESSAGE || info->size != size)
		return false;
	c = calloc(1, sizeof(*c));
	if (!c)
		return false;
	c->m = m;
	newmsg_rewind(m);
	for (off = 0; off < size && !c->differ; off += STORE_MAX_PIECE) {
		uint64_t len = size - off;

		if (len > STORE_MAX_PIECE)
			len = STORE_MAX_PIECE;
		if (fs->cfg.store->ops->fetch(fs->cfg.store, info->folder,
					      info->uidvalidity, &info->uid, 1,
					      off, len, fsnew_cmp_cb, c) < 0 ||
		    c->at != off + len)
			c->differ = true;
	}
	/* Nothing may follow: the new message ends where the stored one
	 * does. */
	same = !c->differ && newmsg_read(m, c->buf, 1) == 0;
	free(c);
	return same;
}

/*
 * Looks at `at`, the name m is to be stored under: returns 1 when a
 * stored message there has m's bytes already, 0 when there is none or
 * (not exclusive) it holds other bytes, -EEXIST when it holds other
 * bytes and exclusive is set.
 */
static int fsnew_find_copy(struct fsmount *fs, const char *at, struct newmsg *m,
			   uint64_t size, bool exclusive)
{
	struct tree_info info;
	bool same;

	if (fsctx_resolve(fs, at, &info) < 0)
		return 0;
	same = fsnew_same(fs, &info, m, size);
	tree_info_clear(&info);
	return same ? 1 : exclusive ? -EEXIST : 0;
}

/*
 * Stores m in folder (server name) under the mount path `to` (its own
 * path, or a rename's target): once, with bare LFs turned into CRLF, the
 * date set on it as INTERNALDATE and its flags, unless the folder holds
 * it already. It then shows under its own name, and `to` keeps finding
 * it until the next listing. exclusive: `to` may not hold another
 * message (a rename). A failed APPEND stores nothing and fails the
 * call; it is not sent again (the server may have executed it).
 */
static int fsnew_store(struct fsmount *fs, struct newmsg *m, const char *to,
		       const char *folder, bool exclusive)
{
	char *flags = NULL;
	struct store_msg sm = {0};
	uint32_t uid, uidvalidity, idhash;
	uint64_t size, limit;
	time_t date;
	int rc;

	if (!newmsg_begin_store(m, &size, &date, &idhash, &flags, &rc)) {
		/* Nothing to store: a rename must not pretend it did. */
		if (rc == 0 && exclusive) {
			rc = newmsg_empty(m) ? -EINVAL : -EIO;
			log_warnx("%s: %s", to,
				  rc == -EINVAL ? "an empty message is not "
						  "stored"
						: "its store failed already");
		}
		goto out;
	}
	limit = fsctx_append_limit(fs);
	if (limit && size > limit) {
		newmsg_end_store(m, false);
		rc = -EFBIG;
		goto out;
	}
	rc = fsnew_find_copy(fs, to, m, size, exclusive);
	if (rc != 0) {
		/* Already there (nothing more to store), or refused with
		 * nothing sent: it may still go elsewhere. */
		if (rc == 1)
			newmsg_end_store(m, true);
		else
			newmsg_cancel_store(m);
		if (rc == 1)
			log_info("%s: the folder holds this message already; "
				 "not stored again",
				 to);
		rc = rc == 1 ? 0 : rc;
		goto done;
	}
	newmsg_rewind(m);
	rc = fs->cfg.store->ops->append(fs->cfg.store, folder, flags, date,
					size, newmsg_read, m, &uid,
					&uidvalidity);
	newmsg_end_store(m, rc == 0);
	if (rc < 0)
		goto out;
	sm.uid = uid;
	sm.size = size;
	sm.date = date ? date : time(NULL);
	sm.idhash = idhash;
	sm.flags = flags;
	if (!uid || tree_add_message(fs->tree, folder, uidvalidity, &sm,
				     fspath_alias(fs->cfg.maildir, to)) < 0)
		tree_expire_listing(fs->tree, folder);
done:
	if (rc == 0) {
		newmsg_forget(fs->newmsgs, m);
		fswatch_invalidate_with_dir(fs, to);
	}
out:
	free(flags);
	return rc;
}

/* Registers a new file at path (replace: over a stored message, which
 * stays) and opens it. */
static int fsnew_open_new(struct fsmount *fs, const char *path, bool replace,
			  struct fuse_file_info *fi)
{
	struct fsfile *f;
	struct tree_info dir;
	const char *base;
	char *dirpath;
	int rc;

	if (fs->cfg.readonly)
		return -EROFS;
	if (!fs->cfg.store->ops->append)
		return -EACCES;
	newmsg_sweep(fs->newmsgs, fs->cfg.temp_idle);
	if (replace) {
		dirpath = fspath_dirname(path, &base);
		rc = dirpath ? fsctx_resolve(fs, dirpath, &dir) : -ENOMEM;
		free(dirpath);
	} else {
		rc = fsctx_new_name(fs, path, &dir);
	}
	if (rc < 0)
		return rc;
	rc = fsctx_holds_messages(&dir);
	if (rc < 0)
		return rc;
	f = calloc(1, sizeof(*f));
	if (!f) {
		tree_info_clear(&dir);
		return -ENOMEM;
	}
	/* Files in a Maildir tmp/ are temporaries: stored at their rename
	 * into new/ or cur/. */
	f->newmsg = newmsg_create(fs->newmsgs, path, dir.folder, fs->cfg.tmpdir,
				  fsll_context()->pid,
				  dir.sub == MAILDIR_SUB_TMP, &rc);
	tree_info_clear(&dir);
	if (!f->newmsg) {
		free(f);
		return rc;
	}
	f->kind = &fsnew_kind;
	f->writable = true;
	fi->fh = (uintptr_t)f;
	fi->direct_io = 1;
	return 0;
}

int fsnew_create(struct fsmount *fs, const char *path, mode_t mode,
		 struct fuse_file_info *fi)
{
	(void)mode;
	return fsnew_open_new(fs, path, false, fi);
}

/* Another open of a file being written: shares it. */
int fsnew_open(struct fsnode *n, struct fuse_file_info *fi)
{
	struct fsmount *fs = n->fs;
	struct newmsg *m = newmsg_get(fs->newmsgs, n->path);
	struct fsfile *f;

	if (!m)
		return -ENOENT;
	f = calloc(1, sizeof(*f));
	if (!f) {
		newmsg_put(fs->newmsgs, m);
		return -ENOMEM;
	}
	f->kind = &fsnew_kind;
	f->newmsg = m;
	f->writable = (fi->flags & O_ACCMODE) != O_RDONLY;
	fi->fh = (uintptr_t)f;
	fi->direct_io = 1;
	return 0;
}

/* stat of a file being written, by path. */
int fsnew_getattr(struct fsnode *n, struct stat *st)
{
	return fsctx_newmsg_stat(n->fs, n->path, st) ? 0 : -ENOENT;
}

/* fstat of a file being written, from its handle (perhaps stored, or
 * unlinked, since). */
static int fsnew_fgetattr(struct fsmount *fs, struct fuse_file_info *fi,
			  struct stat *st)
{
	struct fsfile *f = (struct fsfile *)(uintptr_t)fi->fh;
	uint64_t size;
	time_t mtime;

	newmsg_size(f->newmsg, &size, &mtime);
	fsctx_newmsg_fill(fs, newmsg_path(f->newmsg), size, mtime, st);
	return 0;
}

int fsnew_open_replace(struct fsmount *fs, const char *path,
		       struct fuse_file_info *fi)
{
	/* The stored message stays in the tree; the new file shadows its
	 * path until it is closed. */
	return fsnew_open_new(fs, path, true, fi);
}

/* write to a file being written. */
static int fsnew_write(struct fsmount *fs, const char *path, const char *buf,
		       size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fsfile *f = (struct fsfile *)(uintptr_t)fi->fh;
	ssize_t n;

	n = newmsg_write(f->newmsg, buf, size, off, fsctx_append_limit(fs));
	if (n == -EFBIG)
		log_warnx("%s: larger than the %llu bytes the server takes",
			  newmsg_path(f->newmsg),
			  (unsigned long long)fsctx_append_limit(fs));
	return (int)n;
}

/* Stores a file being created at its own path (not a temporary). */
static int fsnew_store_here(struct fsmount *fs, struct newmsg *m)
{
	char *path = strdup(newmsg_path(m)), *folder;
	int rc;

	folder = strdup(newmsg_folder(m));
	rc = path && folder ? fsnew_store(fs, m, path, folder, false) : -ENOMEM;
	free(path);
	free(folder);
	return rc;
}

/* flush: the creator's close stores the file. */
static int fsnew_flush(struct fsmount *fs, const char *path,
		       struct fuse_file_info *fi)
{
	struct fsfile *f = (struct fsfile *)(uintptr_t)fi->fh;

	if (!f->writable || newmsg_temporary(f->newmsg))
		return 0;
	/* FUSE flushes at every close of every copy of the descriptor: a
	 * forked child's, too. Only the creator's close stores; should it
	 * never come, the last release does. */
	if (fsll_context()->pid != newmsg_creator(f->newmsg))
		return 0;
	if (newmsg_empty(f->newmsg))
		log_warnx("%s: an empty message is not stored", path);
	return fsnew_store_here(fs, f->newmsg);
}

/* The last release of a file being written stores it, should its
 * creator's close not have. */
static void fsnew_release(struct fsmount *fs, const char *path,
			  struct fuse_file_info *fi)
{
	struct fsfile *f = (struct fsfile *)(uintptr_t)fi->fh;
	int rc;

	if (f->writable && !newmsg_temporary(f->newmsg) &&
	    newmsg_last_handle(fs->newmsgs, f->newmsg)) {
		rc = fsnew_store_here(fs, f->newmsg);
		if (rc < 0)
			log_warnx("%s: not stored: %s", path, strerror(-rc));
	}
	newmsg_put(fs->newmsgs, f->newmsg);
	free(f);
}

/* The file being written that fi holds (when it holds one), or the one
 * at path (with a reference the caller drops with fsnew_done()). */
static struct newmsg *fsnew_find(struct fsmount *fs, const char *path,
				 struct fuse_file_info *fi)
{
	if (fskind_of_handle(fi) == &fsnew_kind)
		return ((struct fsfile *)(uintptr_t)fi->fh)->newmsg;
	return newmsg_get(fs->newmsgs, path);
}

static void fsnew_done(struct fsmount *fs, struct newmsg *m,
		       struct fuse_file_info *fi)
{
	if (fskind_of_handle(fi) != &fsnew_kind)
		newmsg_put(fs->newmsgs, m);
}

/* truncate of a file being written. */
int fsnew_truncate(struct fsnode *n, off_t size, struct fuse_file_info *fi)
{
	struct newmsg *m = fsnew_find(n->fs, n->path, fi);
	int rc;

	if (!m)
		return -ENOENT;
	rc = newmsg_truncate(m, (uint64_t)size, fsctx_append_limit(n->fs));
	fsnew_done(n->fs, m, fi);
	return rc;
}

/* utimens: the date the file is stored with. */
int fsnew_utimens(struct fsnode *n, const struct timespec tv[2],
		  struct fuse_file_info *fi)
{
	struct newmsg *m = fsnew_find(n->fs, n->path, fi);

	if (!m)
		return -ENOENT;
	if (tv[1].tv_nsec != UTIME_OMIT)
		newmsg_set_date(m, tv[1].tv_nsec == UTIME_NOW ? time(NULL)
							      : tv[1].tv_sec);
	fsnew_done(n->fs, m, fi);
	return 0;
}

/* Sets the flags the file will be stored with (for the APPEND). */
static int fsnew_apply_flags(struct fsnode *n, const char *flags, int xflags)
{
	struct newmsg *m = newmsg_get(n->fs->newmsgs, n->path);
	int rc;

	(void)xflags;
	if (!m)
		return -ENOENT;
	rc = newmsg_set_flags(m, flags);
	newmsg_put(n->fs->newmsgs, m);
	return rc;
}

/* setxattr: user.mail.flags, kept for the APPEND (as a message's). */
int fsnew_setxattr(struct fsnode *n, const char *name, const char *value,
		   size_t size, int xflags)
{
	return fsattr_flags_xattr(n, name, value, size, xflags,
				  fsnew_apply_flags);
}

/* removexattr of the flags: none then. */
int fsnew_removexattr(struct fsnode *n, const char *name)
{
	return fsattr_flags_xattr(n, name, NULL, 0, 0, fsnew_apply_flags);
}

/* unlink: a temporary is discarded; a file still being written is
 * busy. */
int fsnew_unlink(struct fsnode *n)
{
	struct fsmount *fs = n->fs;
	struct newmsg *m = newmsg_get(fs->newmsgs, n->path);
	int rc;

	if (!m)
		return -ENOENT;
	if (newmsg_temporary(m)) {
		newmsg_forget(fs->newmsgs, m); /* discarded */
		fswatch_invalidate_with_dir(fs, n->path);
		rc = 0;
	} else {
		rc = -EBUSY; /* still being written */
	}
	newmsg_put(fs->newmsgs, m);
	return rc;
}

/*
 * rename of a file being created: a temporary renamed to another
 * temporary name just moves; renamed to a name without the dot, it is
 * stored there (the rename returns the APPEND's result). A file still
 * being written is busy.
 */
int fsnew_rename(struct fsnode *n, const char *to, unsigned flags)
{
	struct fsmount *fs = n->fs;
	const char *from = n->path;
	struct newmsg *m = newmsg_get(fs->newmsgs, from);
	struct tree_info dir;
	const char *base;
	char *dirpath;
	int rc;

	if (!m)
		return -ENOENT;
	dirpath = fspath_dirname(to, &base);
	rc = dirpath ? fsctx_resolve(fs, dirpath, &dir) : -ENOMEM;
	free(dirpath);
	if (rc == 0)
		rc = fsctx_holds_messages(&dir);
	if (rc < 0)
		goto out;
	if (!newmsg_temporary(m) || (flags & RENAME_EXCHANGE)) {
		rc = -EBUSY;
	} else if (newmsg_stat(fs->newmsgs, to, &(uint64_t){0}, &(time_t){0})) {
		rc = -EBUSY; /* another file being written is there */
	} else if (base[0] == '.' || dir.sub == MAILDIR_SUB_TMP) {
		rc = newmsg_rename(fs->newmsgs, m, to, dir.folder);
	} else if (!fs->cfg.store->ops->append) {
		rc = -EACCES;
	} else {
		rc = fsnew_store(fs, m, to, dir.folder, true);
		if (rc == 0 && strcmp(from, to) != 0)
			fswatch_invalidate_with_dir(fs, from);
	}
	tree_info_clear(&dir);
out:
	newmsg_put(fs->newmsgs, m);
	return rc;
}

/* A file being written, in the default layout. */
const struct fskind fsnew_kind = {
	.name = "new file",
	FSNEW_NODE_OPS,
	.rename = fsnew_rename,
	.fgetattr = fsnew_fgetattr,
	.write = fsnew_write,
	.flush = fsnew_flush,
	.release = fsnew_release,
};
