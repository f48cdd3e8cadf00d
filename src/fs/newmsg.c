// SPDX-License-Identifier: GPL-2.0-or-later
/* newmsg: messages being written into the mount; see newmsg.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "names.h"
#include "newmsg.h"

#define NEWMSG_IO 65536
/* How much of a new message is searched for its Message-ID field. */
#define NEWMSG_MAX_HEADER (1024 * 1024)

struct newmsg {
	char *path; /* owned */
	char *folder; /* owned: server name */
	const char *name; /* borrowed from path: the file name */
	int fd; /* owned: unlinked temporary file */
	pid_t creator;
	unsigned refs;
	bool registered;
	bool temporary; /* named ".*": only a rename stores it */
	time_t used; /* monotonic: the last change or open */
	pthread_mutex_t lock; /* what follows */
	uint64_t size;
	time_t date;
	char *flags; /* owned, NULL for none */
	bool storing;
	bool stored;
	bool tried; /* a store was attempted: never sent twice */
	/* newmsg_read() position: raw offset, and a CRLF half sent. */
	uint64_t rpos;
	bool prev_cr;
	bool lf_due;
	struct newmsg *next; /* in the table */
};

struct newmsg_table {
	pthread_mutex_t lock; /* list, refs, registered */
	struct newmsg *list;
};

struct newmsg_table *newmsg_table_new(void)
{
	struct newmsg_table *t = calloc(1, sizeof(*t));

	if (t)
		pthread_mutex_init(&t->lock, NULL);
	return t;
}

static void newmsg_free(struct newmsg *m)
{
	if (m->fd >= 0)
		close(m->fd);
	pthread_mutex_destroy(&m->lock);
	free(m->path);
	free(m->folder);
	free(m->flags);
	free(m);
}

void newmsg_table_free(struct newmsg_table *t)
{
	if (!t)
		return;
	while (t->list) {
		struct newmsg *m = t->list;

		t->list = m->next;
		newmsg_free(m);
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* Finds a registered path; the table lock is held. */
static struct newmsg *newmsg_find(struct newmsg_table *t, const char *path)
{
	struct newmsg *m;

	for (m = t->list; m; m = m->next)
		if (strcmp(m->path, path) == 0)
			return m;
	return NULL;
}

/* Makes an unlinked temporary file: the bytes never outlive the
 * process and no other user can open them. */
static int newmsg_tmpfile(const char *tmpdir)
{
	char *tmpl;
	int fd;

	fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	if (asprintf(&tmpl, "%s/mailfs-new-XXXXXX", tmpdir) < 0)
		return -ENOMEM;
	fd = mkostemp(tmpl, O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	else
		unlink(tmpl);
	free(tmpl);
	return fd;
}

struct newmsg *newmsg_create(struct newmsg_table *t, const char *path,
			     const char *folder, const char *tmpdir,
			     pid_t creator, bool temporary, int *err_r)
{
	struct newmsg *m = calloc(1, sizeof(*m));
	const char *slash;

	if (!m) {
		*err_r = -ENOMEM;
		return NULL;
	}
	m->fd = -1;
	m->creator = creator;
	pthread_mutex_init(&m->lock, NULL);
	m->path = strdup(path);
	m->folder = strdup(folder);
	if (!m->path || !m->folder) {
		*err_r = -ENOMEM;
		goto fail;
	}
	slash = strrchr(m->path, '/');
	m->name = slash ? slash + 1 : m->path;
	m->temporary = temporary || m->name[0] == '.';
	m->used = clock_mono();
	m->fd = newmsg_tmpfile(tmpdir);
	if (m->fd < 0) {
		*err_r = m->fd;
		goto fail;
	}
	pthread_mutex_lock(&t->lock);
	if (newmsg_find(t, path)) {
		pthread_mutex_unlock(&t->lock);
		*err_r = -EEXIST;
		goto fail;
	}
	m->refs = 2; /* the table's and the caller's */
	m->registered = true;
	m->next = t->list;
	t->list = m;
	pthread_mutex_unlock(&t->lock);
	return m;
fail:
	newmsg_free(m);
	return NULL;
}

struct newmsg *newmsg_get(struct newmsg_table *t, const char *path)
{
	struct newmsg *m;

	pthread_mutex_lock(&t->lock);
	m = newmsg_find(t, path);
	if (m)
		m->refs++;
	pthread_mutex_unlock(&t->lock);
	return m;
}

/* Unlinks m from the list and drops the table's reference; the lock is
 * held. Returns true when m is to be freed. */
static bool newmsg_unregister(struct newmsg_table *t, struct newmsg *m)
{
	struct newmsg **p;

	if (!m->registered)
		return false;
	for (p = &t->list; *p; p = &(*p)->next) {
		if (*p == m) {
			*p = m->next;
			break;
		}
	}
	m->registered = false;
	return --m->refs == 0;
}

void newmsg_put(struct newmsg_table *t, struct newmsg *m)
{
	bool last;

	pthread_mutex_lock(&t->lock);
	last = --m->refs == 0;
	/* The last handle is gone: a message never stored is dropped,
	 * unless it is a temporary waiting for its rename. */
	if (!last && m->refs == 1 && m->registered && !m->temporary)
		last = newmsg_unregister(t, m);
	m->used = clock_mono();
	pthread_mutex_unlock(&t->lock);
	if (last)
		newmsg_free(m);
}

void newmsg_forget(struct newmsg_table *t, struct newmsg *m)
{
	bool last;

	pthread_mutex_lock(&t->lock);
	last = newmsg_unregister(t, m);
	pthread_mutex_unlock(&t->lock);
	if (last)
		newmsg_free(m);
}

/* The size and date of m as they are now (an open handle's own, found
 * or not by its path). */
void newmsg_size(struct newmsg *m, uint64_t *size_r, time_t *mtime_r)
{
	pthread_mutex_lock(&m->lock);
	*size_r = m->size;
	*mtime_r = m->date ? m->date : time(NULL);
	pthread_mutex_unlock(&m->lock);
}

bool newmsg_stat(struct newmsg_table *t, const char *path, uint64_t *size_r,
		 time_t *mtime_r)
{
	struct newmsg *m = newmsg_get(t, path);

	if (!m)
		return false;
	newmsg_size(m, size_r, mtime_r);
	newmsg_put(t, m);
	return true;
}

void newmsg_list(struct newmsg_table *t, const char *dir,
		 void (*fill)(void *ctx, const char *name, uint64_t size,
			      time_t mtime),
		 void *ctx)
{
	size_t dlen = strcmp(dir, "/") == 0 ? 0 : strlen(dir);
	struct newmsg *m;

	pthread_mutex_lock(&t->lock);
	for (m = t->list; m; m = m->next) {
		uint64_t size;
		time_t mtime;

		/* m->name follows the last '/' of m->path. */
		if ((size_t)(m->name - m->path) != dlen + 1 ||
		    strncmp(m->path, dir, dlen) != 0)
			continue;
		pthread_mutex_lock(&m->lock);
		size = m->size;
		mtime = m->date ? m->date : time(NULL);
		pthread_mutex_unlock(&m->lock);
		fill(ctx, m->name, size, mtime);
	}
	pthread_mutex_unlock(&t->lock);
}

ssize_t newmsg_write(struct newmsg *m, const char *buf, size_t size, off_t off,
		     uint64_t limit)
{
	ssize_t n;

	pthread_mutex_lock(&m->lock);
	if (m->stored || m->storing || m->tried) {
		n = -EROFS;
	} else if (off < 0) {
		n = -EINVAL;
	} else if (limit && (uint64_t)off + size > limit) {
		n = -EFBIG;
	} else {
		n = pwrite(m->fd, buf, size, off);
		if (n < 0)
			n = -errno;
		else if ((uint64_t)off + (uint64_t)n > m->size)
			m->size = (uint64_t)off + (uint64_t)n;
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

int newmsg_truncate(struct newmsg *m, uint64_t size, uint64_t limit)
{
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (m->stored || m->storing)
		rc = -EROFS;
	else if (limit && size > limit)
		rc = -EFBIG;
	else if (ftruncate(m->fd, (off_t)size) < 0)
		rc = -errno;
	else
		m->size = size;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

void newmsg_set_date(struct newmsg *m, time_t date)
{
	pthread_mutex_lock(&m->lock);
	m->date = date;
	pthread_mutex_unlock(&m->lock);
}

int newmsg_set_flags(struct newmsg *m, const char *flags)
{
	char *dup = strdup(flags);

	if (!dup)
		return -ENOMEM;
	pthread_mutex_lock(&m->lock);
	if (m->storing || m->stored) {
		pthread_mutex_unlock(&m->lock);
		free(dup);
		return -EROFS; /* too late: the message is on its way */
	}
	free(m->flags);
	m->flags = dup;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

pid_t newmsg_creator(const struct newmsg *m)
{
	return m->creator;
}

bool newmsg_last_handle(struct newmsg_table *t, const struct newmsg *m)
{
	bool last;

	pthread_mutex_lock(&t->lock);
	last = m->refs == (m->registered ? 2u : 1u);
	pthread_mutex_unlock(&t->lock);
	return last;
}

const char *newmsg_folder(const struct newmsg *m)
{
	return m->folder;
}

const char *newmsg_path(const struct newmsg *m)
{
	return m->path;
}

bool newmsg_empty(struct newmsg *m)
{
	bool empty;

	pthread_mutex_lock(&m->lock);
	empty = m->size == 0;
	pthread_mutex_unlock(&m->lock);
	return empty;
}

/* Counts the bytes the message has once bare LFs become CRLF. */
static int newmsg_crlf_size(struct newmsg *m, uint64_t *size_r)
{
	char buf[NEWMSG_IO];
	uint64_t pos = 0, extra = 0;
	bool prev_cr = false;

	while (pos < m->size) {
		ssize_t n = pread(m->fd, buf, sizeof(buf), (off_t)pos);
		ssize_t i;

		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		for (i = 0; i < n; i++) {
			if (buf[i] == '\n' && !prev_cr)
				extra++;
			prev_cr = buf[i] == '\r';
		}
		pos += (uint64_t)n;
	}
	*size_r = m->size + extra;
	return 0;
}

/* Reads the start of the message, up to its blank line (or
 * NEWMSG_MAX_HEADER bytes), and hashes its Message-ID; m->lock held. */
static uint32_t newmsg_idhash(struct newmsg *m)
{
	size_t cap = m->size < NEWMSG_MAX_HEADER ? (size_t)m->size
						 : NEWMSG_MAX_HEADER;
	char *buf = malloc(cap ? cap : 1);
	ssize_t n = buf ? pread(m->fd, buf, cap, 0) : -1;
	uint32_t h = names_msgid_hash(buf && n > 0 ? buf : "",
				      n > 0 ? (size_t)n : 0);

	free(buf);
	return h;
}

bool newmsg_begin_store(struct newmsg *m, uint64_t *size_r, time_t *date_r,
			uint32_t *idhash_r, char **flags_r, int *err_r)
{
	bool go = false;

	*err_r = 0;
	pthread_mutex_lock(&m->lock);
	if (m->stored || m->storing || m->tried || m->size == 0)
		goto out;
	*err_r = newmsg_crlf_size(m, size_r);
	if (*err_r)
		goto out;
	*date_r = m->date;
	*idhash_r = newmsg_idhash(m);
	*flags_r = strdup(m->flags ? m->flags : "");
	if (!*flags_r) {
		*err_r = -ENOMEM;
		goto out;
	}
	m->storing = true;
	go = true;
out:
	pthread_mutex_unlock(&m->lock);
	return go;
}

void newmsg_cancel_store(struct newmsg *m)
{
	pthread_mutex_lock(&m->lock);
	m->storing = false;
	pthread_mutex_unlock(&m->lock);
}

void newmsg_end_store(struct newmsg *m, bool stored)
{
	pthread_mutex_lock(&m->lock);
	m->storing = false;
	m->stored = stored;
	m->tried = true;
	pthread_mutex_unlock(&m->lock);
}

void newmsg_rewind(struct newmsg *m)
{
	m->rpos = 0;
	m->prev_cr = false;
	m->lf_due = false;
}

long newmsg_read(void *ctx, char *buf, size_t len)
{
	struct newmsg *m = ctx;
	char in[NEWMSG_IO / 2];
	size_t out = 0;

	if (len == 0)
		return 0;
	if (m->lf_due) {
		buf[out++] = '\n';
		m->lf_due = false;
	}
	while (out < len && m->rpos < m->size) {
		size_t want = len - out;
		ssize_t n, i;

		if (want > sizeof(in))
			want = sizeof(in);
		n = pread(m->fd, in, want, (off_t)m->rpos);
		if (n <= 0)
			return -1;
		for (i = 0; i < n && out < len; i++) {
			if (in[i] == '\n' && !m->prev_cr) {
				buf[out++] = '\r';
				if (out == len) {
					/* The LF goes out with the next call. */
					m->lf_due = true;
					m->prev_cr = false;
					i++;
					break;
				}
			}
			buf[out++] = in[i];
			m->prev_cr = in[i] == '\r';
		}
		m->rpos += (uint64_t)i;
	}
	return (long)out;
}

bool newmsg_temporary(const struct newmsg *m)
{
	return m->temporary;
}

int newmsg_rename(struct newmsg_table *t, struct newmsg *m, const char *path,
		  const char *folder)
{
	char *p = strdup(path), *f = strdup(folder);
	const char *slash;
	int rc = 0;

	if (!p || !f) {
		free(p);
		free(f);
		return -ENOMEM;
	}
	pthread_mutex_lock(&t->lock);
	if (newmsg_find(t, path)) {
		rc = -EEXIST;
	} else {
		free(m->path);
		free(m->folder);
		m->path = p;
		m->folder = f;
		slash = strrchr(p, '/');
		m->name = slash ? slash + 1 : p;
		p = f = NULL;
		m->used = clock_mono();
	}
	pthread_mutex_unlock(&t->lock);
	free(p);
	free(f);
	return rc;
}

void newmsg_discard_temporaries(struct newmsg_table *t)
{
	struct newmsg *m, *next, *dead = NULL;

	pthread_mutex_lock(&t->lock);
	for (m = t->list; m; m = next) {
		next = m->next;
		if (!m->temporary)
			continue;
		log_warnx("%s: temporary file never renamed, discarded at "
			  "unmount",
			  m->path);
		if (newmsg_unregister(t, m)) {
			m->next = dead;
			dead = m;
		}
	}
	pthread_mutex_unlock(&t->lock);
	while (dead) {
		m = dead;
		dead = m->next;
		newmsg_free(m);
	}
}

void newmsg_sweep(struct newmsg_table *t, unsigned max_idle)
{
	struct newmsg *m, *next, *dead = NULL;
	time_t now = clock_mono();

	pthread_mutex_lock(&t->lock);
	for (m = t->list; m; m = next) {
		next = m->next;
		/* Only the table's reference left: nobody has it open. */
		if (!m->temporary || m->refs != 1 ||
		    now - m->used < (time_t)max_idle)
			continue;
		log_warnx("%s: temporary file unused for %u s, discarded "
			  "(only a rename stores a message: to a name "
			  "without a leading dot, or from a Maildir tmp/)",
			  m->path, max_idle);
		if (newmsg_unregister(t, m)) {
			m->next = dead;
			dead = m;
		}
	}
	pthread_mutex_unlock(&t->lock);
	while (dead) {
		m = dead;
		dead = m->next;
		newmsg_free(m);
	}
}
