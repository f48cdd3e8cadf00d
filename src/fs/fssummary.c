// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fssummary: FOLDER/.summary, one line per message of the folder,
 * sorted by file name:
 *
 *   NAME TAB DATE TAB FLAGS TAB SIZE TAB FROM TAB SUBJECT
 *
 * (msgstruct_summary_line()). Opening it lists the folder (when stale)
 * and sends one UID FETCH 1:* (FLAGS RFC822.SIZE INTERNALDATE ENVELOPE)
 * for the whole folder; the text lives in the open file only (never
 * beside the listing) and is freed at release. NAME is the message's
 * name in the listing at that moment, found by UID; a message the
 * listing and the fetch do not both have is left out. The file is
 * direct_io: its size is known only once it is open.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "fsctx.h"
#include "fssummary.h"
#include "fsvirt.h"
#include "log.h"
#include "msgstruct.h"
#include "store.h"
#include "strbuf.h"
#include "tree.h"

/* One message of the listing: its UID and name. */
struct fssummary_name {
	uint32_t uid;
	char *name; /* owned */
};

/* One line made, and the name it sorts by. */
struct fssummary_line {
	const char *name; /* borrowed from the names table */
	size_t off, len; /* in the lines buffer */
};

/* What opening the summary builds. */
struct fssummary_build {
	struct fssummary_name *names; /* owned, sorted by uid */
	size_t n_names, cap_names;
	struct fssummary_line *lines; /* owned */
	size_t n_lines, cap_lines;
	struct strbuf text; /* the lines, in fetch order */
	bool nomem;
};

/* An open .summary: its text. */
struct fssummary_file {
	char *data; /* owned */
	size_t len;
	char *path; /* owned: for fstat */
	time_t mtime;
};

/* tree_readdir()'s callback: keeps each message's UID and name (the
 * tree's lock is held: memory only). */
static int fssummary_fill(void *ctx, const char *name,
			  const struct tree_info *info)
{
	struct fssummary_build *b = ctx;
	struct fssummary_name *nn;

	if (info->kind != TREE_MESSAGE)
		return 0;
	nn = grow_reserve(b->names, &b->cap_names, b->n_names + 1, sizeof(*nn));
	if (!nn) {
		b->nomem = true;
		return 1;
	}
	b->names = nn;
	nn = &b->names[b->n_names];
	nn->uid = info->uid;
	nn->name = strdup(name);
	if (!nn->name) {
		b->nomem = true;
		return 1;
	}
	b->n_names++;
	return 0;
}

/* Orders names by UID. */
static int fssummary_cmp_uid(const void *a, const void *b)
{
	const struct fssummary_name *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Orders lines by name. */
static int fssummary_cmp_line(const void *a, const void *b)
{
	const struct fssummary_line *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* The name of the message uid in the listing, or NULL. */
static const char *fssummary_name_of(const struct fssummary_build *b,
				     uint32_t uid)
{
	struct fssummary_name key = {.uid = uid}, *hit;

	hit = bsearch(&key, b->names, b->n_names, sizeof(*b->names),
		      fssummary_cmp_uid);
	return hit ? hit->name : NULL;
}

/* The store's callback: one line per message that the listing has. */
static void fssummary_cb(void *ctx, const struct store_summary *m)
{
	struct fssummary_build *b = ctx;
	const char *name = fssummary_name_of(b, m->uid);
	struct fssummary_line *l;
	size_t off = b->text.len;

	if (!name || b->nomem)
		return;
	l = grow_reserve(b->lines, &b->cap_lines, b->n_lines + 1, sizeof(*l));
	if (!l) {
		b->nomem = true;
		return;
	}
	b->lines = l;
	msgstruct_summary_line(&b->text, name, m->date, m->flags, m->size,
			       &m->env);
	if (strbuf_failed(&b->text)) {
		b->nomem = true;
		return;
	}
	l = &b->lines[b->n_lines++];
	l->name = name;
	l->off = off;
	l->len = b->text.len - off;
}

/* Frees what opening the summary built. */
static void fssummary_build_free(struct fssummary_build *b)
{
	size_t i;

	for (i = 0; i < b->n_names; i++)
		free(b->names[i].name);
	free(b->names);
	free(b->lines);
	strbuf_free(&b->text);
}

/* The lines sorted by name, as one malloc'd text. */
static char *fssummary_sorted(struct fssummary_build *b, size_t *len_r)
{
	char *out = malloc(b->text.len + 1);
	size_t i, pos = 0;

	if (!out)
		return NULL;
	qsort(b->lines, b->n_lines, sizeof(*b->lines), fssummary_cmp_line);
	for (i = 0; i < b->n_lines; i++) {
		memcpy(out + pos, b->text.data + b->lines[i].off,
		       b->lines[i].len);
		pos += b->lines[i].len;
	}
	out[pos] = '\0';
	*len_r = pos;
	return out;
}

/* Checks that p names a .summary of a folder whose store can make
 * one; info gets the folder. */
static int fssummary_folder(struct fsmount *fs, const struct fsvirt_path *p,
			    struct tree_info *info)
{
	if (*p->rest)
		return -ENOENT;
	if (!fs->cfg.store->ops->summary)
		return -ENOENT;
	return fsvirt_folder(fs, p->dir, info);
}

/* getattr: a file of the folder (its size shows once open). */
static int fssummary_getattr(struct fsmount *fs, const struct fsvirt_path *p,
			     struct stat *st)
{
	struct tree_info info;
	int rc = fssummary_folder(fs, p, &info);

	if (rc < 0)
		return rc;
	/* The size is known once open (direct_io). */
	fsvirt_stat_file(fs, p->path, 0, info.mtime, st);
	tree_info_clear(&info);
	return 0;
}

/* Makes the summary once: the listing's names, then the envelopes;
 * -ESTALE when the folder's UIDVALIDITY changed in between. */
static int fssummary_make(struct fsmount *fs, const struct fsvirt_path *p,
			  struct fssummary_file **f_r)
{
	struct fssummary_build b = {0};
	struct fssummary_file *f = NULL;
	struct tree_info info;
	int rc = fssummary_folder(fs, p, &info);

	if (rc < 0)
		return rc;
	rc = tree_readdir(fs->tree, p->dir, fssummary_fill, &b);
	if (rc == 0 && b.nomem)
		rc = -ENOMEM;
	if (rc < 0)
		goto out;
	qsort(b.names, b.n_names, sizeof(*b.names), fssummary_cmp_uid);
	rc = fs->cfg.store->ops->summary(fs->cfg.store, info.folder,
					 info.uidvalidity, fssummary_cb, &b);
	if (rc == -ESTALE)
		tree_expire_listing(fs->tree, info.folder);
	if (rc == 0 && b.nomem)
		rc = -ENOMEM;
	if (rc < 0)
		goto out;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(p->path)) ||
	    !(f->data = fssummary_sorted(&b, &f->len))) {
		rc = -ENOMEM;
		goto out;
	}
	f->mtime = info.mtime;
	*f_r = f;
	f = NULL;
out:
	if (f) {
		free(f->path);
		free(f);
	}
	fssummary_build_free(&b);
	tree_info_clear(&info);
	return rc;
}

/* open: lists the folder, fetches every envelope in one command and
 * keeps the sorted lines in the open file; once more, with a new
 * listing, when the folder was recreated meanwhile (UIDVALIDITY). */
static int fssummary_open(struct fsmount *fs, const struct fsvirt_path *p,
			  struct fuse_file_info *fi, void **file_r)
{
	struct fssummary_file *f = NULL;
	int rc = fssummary_make(fs, p, &f);

	if (rc == -ESTALE)
		rc = fssummary_make(fs, p, &f);
	if (rc == -ESTALE)
		rc = -EIO;
	if (rc < 0)
		return rc;
	fi->direct_io = 1;
	*file_r = f;
	return 0;
}

/* read: from the open file's text. */
static int fssummary_read(struct fsmount *fs, void *file, char *buf,
			  size_t size, off_t off)
{
	struct fssummary_file *f = file;

	if ((uint64_t)off >= f->len)
		return 0;
	if (size > f->len - (size_t)off)
		size = f->len - (size_t)off;
	memcpy(buf, f->data + off, size);
	return (int)size;
}

/* fstat: the size of the open file's text. */
static int fssummary_fgetattr(struct fsmount *fs, void *file, struct stat *st)
{
	struct fssummary_file *f = file;

	fsvirt_stat_file(fs, f->path, f->len, f->mtime, st);
	return 0;
}

/* release: the text goes with the file. */
static void fssummary_release(struct fsmount *fs, void *file)
{
	struct fssummary_file *f = file;

	if (!f)
		return;
	free(f->data);
	free(f->path);
	free(f);
}

const struct fsvirt_kind fssummary_kind = {
	.name = ".summary",
	.getattr = fssummary_getattr,
	.open = fssummary_open,
	.read = fssummary_read,
	.fgetattr = fssummary_fgetattr,
	.release = fssummary_release,
	.sized_at_open = true,
};
