// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * journal: the offline changes' log and spool; see journal.h.
 *
 * The log is a header ("MAILFSJ1", then the next seq as 8 bytes little
 * endian) and records, each `length (4) | CRC-32 of the body (4) | body`.
 * A body is an entry (type 1) or a state (type 2) of an earlier entry;
 * numbers are little endian, strings a 4-byte length and their bytes.
 * Records are only appended, each fsynced before the call returns; the
 * file is written anew (temp file, fsync, rename) only by compaction.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "grow.h"
#include "journal.h"
#include "log.h"
#include "names.h"
#include "safedir.h"

#define JOURNAL_MAGIC "MAILFSJ1"
#define JOURNAL_HEADER 16
#define JOURNAL_MAX_STRING 65536u
#define JOURNAL_IO 65536

struct journal {
	pthread_mutex_t lock; /* everything below; held across the log's
			       * writes (changes are one ordered log) */
	char *dir; /* owned: the journal directory, for log lines */
	int dirfd, spoolfd, logfd;
	struct journal_entry *e; /* owned, in seq order */
	size_t n, cap;
	uint64_t next_seq;
};

/* ------------------------------------------------------------ codec */

/* Where an encoding goes: buf (NULL: only counted) at off. */
struct journal_wr {
	unsigned char *buf;
	size_t off;
};

static void journal_put(struct journal_wr *w, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		if (w->buf)
			w->buf[w->off + i] = (unsigned char)(v >> (8 * i));
	w->off += bytes;
}

static void journal_putstr(struct journal_wr *w, const char *s)
{
	size_t len = s ? strlen(s) : 0;

	journal_put(w, len, 4);
	if (w->buf && len)
		memcpy(w->buf + w->off, s, len);
	w->off += len;
}

/* The body of a record: an entry, or (state_only) its state. */
static size_t journal_body(const struct journal_entry *e, bool state_only,
			   unsigned char *buf)
{
	struct journal_wr w = {buf, 0};

	if (state_only) {
		journal_put(&w, 2, 1);
		journal_put(&w, e->seq, 8);
		journal_put(&w, e->state, 1);
		journal_put(&w, e->real_uidvalidity, 4);
		journal_put(&w, e->real_uid, 4);
		return w.off;
	}
	journal_put(&w, 1, 1);
	journal_put(&w, e->seq, 8);
	journal_put(&w, e->kind, 1);
	journal_putstr(&w, e->folder);
	journal_put(&w, e->uidvalidity, 4);
	journal_put(&w, e->uid, 4);
	journal_putstr(&w, e->add);
	journal_putstr(&w, e->remove);
	journal_putstr(&w, e->target);
	journal_putstr(&w, e->flags);
	journal_put(&w, e->new_uidvalidity, 4);
	journal_put(&w, e->new_uid, 4);
	journal_put(&w, e->size, 8);
	journal_put(&w, (uint64_t)e->date, 8);
	journal_put(&w, e->idhash, 4);
	return w.off;
}

size_t journal_encode(const struct journal_entry *e, bool state_only,
		      unsigned char *buf)
{
	size_t n = journal_body(e, state_only, buf ? buf + 8 : NULL);
	struct journal_wr w = {buf, 0};

	if (buf) {
		journal_put(&w, n, 4);
		journal_put(&w, (uint32_t)crc32(0, buf + 8, (uInt)n), 4);
	}
	return n + 8;
}

/* A bounded reader over one record's body. */
struct journal_rd {
	const unsigned char *p, *end;
	bool bad;
};

static uint64_t journal_get(struct journal_rd *r, unsigned bytes)
{
	uint64_t v = 0;

	if (r->bad || (size_t)(r->end - r->p) < bytes) {
		r->bad = true;
		return 0;
	}
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)r->p[i] << (8 * i);
	r->p += bytes;
	return v;
}

/* A string field (NUL terminated copy), NULL when empty or bad. */
static char *journal_getstr(struct journal_rd *r)
{
	uint32_t len = (uint32_t)journal_get(r, 4);
	char *s;

	if (r->bad || len > JOURNAL_MAX_STRING ||
	    (size_t)(r->end - r->p) < len) {
		r->bad = true;
		return NULL;
	}
	if (len == 0)
		return NULL;
	if (memchr(r->p, '\0', len)) {
		r->bad = true;
		return NULL;
	}
	s = strndup((const char *)r->p, len);
	if (!s)
		r->bad = true;
	r->p += len;
	return s;
}

void journal_entry_clear(struct journal_entry *e)
{
	free(e->folder);
	free(e->add);
	free(e->remove);
	free(e->target);
	free(e->flags);
	memset(e, 0, sizeof(*e));
}

void journal_entries_free(struct journal_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		journal_entry_clear(&e[i]);
	free(e);
}

/* Room for one more entry in a growing array (grow_reserve()). */
static bool journal_grow(struct journal_entry **e, size_t n, size_t *cap)
{
	struct journal_entry *ne = grow_reserve(*e, cap, n + 1, sizeof(**e));

	if (!ne)
		return false;
	*e = ne;
	return true;
}

/* The entry of seq (entries are in seq order), NULL if none. */
static struct journal_entry *journal_find(struct journal_entry *e, size_t n,
					  uint64_t seq)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (e[mid].seq == seq)
			return &e[mid];
		if (e[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Applies one record's body; false when it does not make sense. */
static bool journal_apply(const unsigned char *body, size_t len,
			  struct journal_entry **e, size_t *n, size_t *cap)
{
	struct journal_rd r = {body, body + len, false};
	struct journal_entry ne = {0}, *old;
	unsigned type = (unsigned)journal_get(&r, 1);

	if (type == 2) {
		uint64_t seq = journal_get(&r, 8);
		unsigned state = (unsigned)journal_get(&r, 1);
		uint32_t uv = (uint32_t)journal_get(&r, 4);
		uint32_t uid = (uint32_t)journal_get(&r, 4);

		if (r.bad || r.p != r.end || state > JOURNAL_SENDING)
			return false;
		old = journal_find(*e, *n, seq);
		if (!old)
			return false;
		old->state = (enum journal_state)state;
		old->real_uidvalidity = uv;
		old->real_uid = uid;
		return true;
	}
	if (type != 1)
		return false;
	ne.seq = journal_get(&r, 8);
	ne.kind = (enum journal_kind)journal_get(&r, 1);
	ne.folder = journal_getstr(&r);
	ne.uidvalidity = (uint32_t)journal_get(&r, 4);
	ne.uid = (uint32_t)journal_get(&r, 4);
	ne.add = journal_getstr(&r);
	ne.remove = journal_getstr(&r);
	ne.target = journal_getstr(&r);
	ne.flags = journal_getstr(&r);
	ne.new_uidvalidity = (uint32_t)journal_get(&r, 4);
	ne.new_uid = (uint32_t)journal_get(&r, 4);
	ne.size = journal_get(&r, 8);
	ne.date = (int64_t)journal_get(&r, 8);
	ne.idhash = (uint32_t)journal_get(&r, 4);
	if (r.bad || r.p != r.end || ne.kind < JOURNAL_FLAGS ||
	    ne.kind > JOURNAL_APPEND || !ne.folder ||
	    (ne.kind == JOURNAL_MOVE && !ne.target) ||
	    (*n && (*e)[*n - 1].seq >= ne.seq) || *n >= JOURNAL_MAX_ENTRIES ||
	    !journal_grow(e, *n, cap)) {
		journal_entry_clear(&ne);
		return false;
	}
	(*e)[(*n)++] = ne;
	return true;
}

/* Parses records with entries whose array capacity is cap. */
static size_t journal_parse_cap(const unsigned char *buf, size_t len,
				struct journal_entry **e, size_t *n,
				size_t *cap, bool *bad_r)
{
	size_t off = 0;

	*bad_r = false;
	while (len - off >= 8) {
		const unsigned char *p = buf + off;
		uint32_t rlen = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
				(uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		uint32_t crc = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
			       (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;

		if (rlen == 0 || rlen > JOURNAL_MAX_RECORD) {
			*bad_r = true;
			break;
		}
		if (len - off - 8 < rlen)
			break; /* cut short: the tail of a crash */
		if ((uint32_t)crc32(0, p + 8, rlen) != crc ||
		    !journal_apply(p + 8, rlen, e, n, cap)) {
			*bad_r = true;
			break;
		}
		off += 8 + rlen;
	}
	return off;
}

size_t journal_parse(const unsigned char *buf, size_t len,
		     struct journal_entry **e, size_t *n, bool *bad_r)
{
	size_t cap = *n; /* the caller's array is full: grow from here */

	return journal_parse_cap(buf, len, e, n, &cap, bad_r);
}

/* ------------------------------------------------------------ files */

/* Writes all of buf at fd's end. */
static int journal_write_all(int fd, const unsigned char *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Appends one record to the log and makes it durable; a failed write
 * is cut off again, so that the log never ends in a half record that a
 * later record would follow. Lock held. */
static int journal_append_record(struct journal *j,
				 const struct journal_entry *e, bool state_only)
{
	size_t len = journal_encode(e, state_only, NULL);
	unsigned char *buf = malloc(len);
	off_t end;
	int rc;

	if (!buf)
		return -ENOMEM;
	journal_encode(e, state_only, buf);
	end = lseek(j->logfd, 0, SEEK_END);
	if (end < 0) {
		free(buf);
		return -errno;
	}
	rc = journal_write_all(j->logfd, buf, len);
	if (rc == 0 && fsync(j->logfd) < 0)
		rc = -errno;
	if (rc < 0 && ftruncate(j->logfd, end) == 0)
		fsync(j->logfd);
	free(buf);
	return rc;
}

/* The header of a log that starts at seq. */
static void journal_header(unsigned char *h, uint64_t next_seq)
{
	struct journal_wr w = {h, 8};

	memcpy(h, JOURNAL_MAGIC, 8);
	journal_put(&w, next_seq, 8);
}

/* Writes the log anew (entries pending or failed, failed ones with their
 * state) into a temp file, then renames it over the log. Lock held. */
static int journal_rewrite(struct journal *j)
{
	unsigned char h[JOURNAL_HEADER];
	int fd, rc = 0;

	fd = openat(j->dirfd, "log.new",
		    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		    0600);
	if (fd < 0)
		return -errno;
	journal_header(h, j->next_seq);
	rc = journal_write_all(fd, h, sizeof(h));
	for (size_t i = 0; rc == 0 && i < j->n; i++) {
		struct journal_entry *e = &j->e[i];
		size_t len;
		unsigned char *buf;

		if (!journal_is_pending(e->state) && e->state != JOURNAL_FAILED)
			continue;
		for (int s = 0; rc == 0 && s < 2; s++) {
			if (s == 1 && e->state == JOURNAL_PENDING)
				break;
			len = journal_encode(e, s == 1, NULL);
			buf = malloc(len);
			if (!buf) {
				rc = -ENOMEM;
				break;
			}
			journal_encode(e, s == 1, buf);
			rc = journal_write_all(fd, buf, len);
			free(buf);
		}
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && renameat(j->dirfd, "log.new", j->dirfd, "log") < 0)
		rc = -errno;
	if (rc < 0) {
		unlinkat(j->dirfd, "log.new", 0);
		return rc;
	}
	fsync(j->dirfd);
	fd = openat(j->dirfd, "log",
		    O_RDWR | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	close(j->logfd);
	j->logfd = fd;
	return 0;
}

/* Reads the whole log (bounded by the entry limit times the record
 * limit). */
static int journal_read_all(int fd, unsigned char **buf_r, size_t *len_r)
{
	struct stat st;
	unsigned char *buf;
	size_t off = 0;

	if (fstat(fd, &st) < 0)
		return -errno;
	if ((uint64_t)st.st_size >
	    (uint64_t)JOURNAL_MAX_ENTRIES * 2 * JOURNAL_MAX_RECORD)
		return -EFBIG;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (off < (size_t)st.st_size) {
		ssize_t r = pread(fd, buf + off, (size_t)st.st_size - off,
				  (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	*buf_r = buf;
	*len_r = off;
	return 0;
}

/* Logs spool files that no kept entry owns (a crash between the spool
 * file and its entry): kept, never removed, for the user to look at. */
static void journal_orphans(struct journal *j)
{
	int fd = dup(j->spoolfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		char *end;
		unsigned long long seq = strtoull(de->d_name, &end, 10);
		struct journal_entry *e;

		if (de->d_name[0] == '.' || strcmp(end, ".eml") != 0)
			continue;
		e = journal_find(j->e, j->n, seq);
		if (!e || e->kind != JOURNAL_APPEND)
			log_warnx("journal: %s/spool/%s belongs to no change "
				  "(a crash while it was written?): kept",
				  j->dir, de->d_name);
	}
	closedir(d);
}

/* Loads the log at open: a cut tail is cut off, a damaged file is kept
 * aside under another name (what parsed before the damage is kept). */
static int journal_load(struct journal *j)
{
	unsigned char *buf = NULL;
	size_t len = 0, used;
	bool bad = false;
	int rc;

	rc = journal_read_all(j->logfd, &buf, &len);
	if (rc < 0)
		return rc;
	if (len < JOURNAL_HEADER || memcmp(buf, JOURNAL_MAGIC, 8) != 0) {
		if (len > 0) {
			log_warnx("journal: %s/log has no journal header: "
				  "kept as log.damaged",
				  j->dir);
			renameat(j->dirfd, "log", j->dirfd, "log.damaged");
		}
		free(buf);
		j->next_seq = 1;
		return journal_rewrite(j);
	}
	{
		struct journal_rd r = {buf + 8, buf + 16, false};

		j->next_seq = journal_get(&r, 8);
	}
	used = journal_parse_cap(buf + JOURNAL_HEADER, len - JOURNAL_HEADER,
				 &j->e, &j->n, &j->cap, &bad);
	if (bad) {
		char name[64];

		snprintf(name, sizeof(name), "log.damaged-%lld",
			 (long long)time(NULL));
		log_warnx("journal: %s/log is damaged after %zu changes: kept "
			  "as %s; the changes before the damage are kept",
			  j->dir, j->n, name);
		if (linkat(j->dirfd, "log", j->dirfd, name, 0) < 0)
			log_warnx("journal: cannot keep %s: %s", name,
				  strerror(errno));
	} else if (JOURNAL_HEADER + used < len) {
		log_info("journal: %zu bytes of a change cut short by a crash "
			 "are cut off (the change was never accepted)",
			 len - JOURNAL_HEADER - used);
	}
	free(buf);
	if (j->n && j->e[j->n - 1].seq >= j->next_seq)
		j->next_seq = j->e[j->n - 1].seq + 1;
	if (!j->next_seq)
		j->next_seq = 1;
	/* Done and dropped entries of the last mount are not needed. */
	rc = journal_rewrite(j);
	if (rc == 0) {
		size_t k = 0;

		for (size_t i = 0; i < j->n; i++) {
			/* A new message refused before is tried again at
			 * each mount (the quota may have room now). */
			if (j->e[i].state == JOURNAL_FAILED)
				j->e[i].state = JOURNAL_PENDING;
			if (journal_is_pending(j->e[i].state))
				j->e[k++] = j->e[i];
			else
				journal_entry_clear(&j->e[i]);
		}
		j->n = k;
	}
	return rc;
}

struct journal *journal_open(const char *dir, char *err, size_t errlen)
{
	struct journal *j = calloc(1, sizeof(*j));
	char shown[4200];
	int top = -1;

	if (!j) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	j->dirfd = j->spoolfd = j->logfd = -1;
	pthread_mutex_init(&j->lock, NULL);
	if (asprintf(&j->dir, "%s/journal", dir) < 0) {
		j->dir = NULL;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	top = safedir_open(dir, err, errlen);
	if (top < 0)
		goto fail;
	j->dirfd = safedir_openat(top, "journal", j->dir, err, errlen);
	close(top);
	if (j->dirfd < 0)
		goto fail;
	snprintf(shown, sizeof(shown), "%s/spool", j->dir);
	j->spoolfd = safedir_openat(j->dirfd, "spool", shown, err, errlen);
	if (j->spoolfd < 0)
		goto fail;
	j->logfd = openat(j->dirfd, "log",
			  O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
			  0600);
	if (j->logfd < 0) {
		snprintf(err, errlen, "%s/log: %s", j->dir, strerror(errno));
		goto fail;
	}
	if (journal_load(j) < 0) {
		snprintf(err, errlen, "%s/log: cannot write it anew: %s",
			 j->dir, strerror(errno));
		goto fail;
	}
	journal_orphans(j);
	return j;
fail:
	journal_close(j);
	return NULL;
}

void journal_close(struct journal *j)
{
	if (!j)
		return;
	if (j->logfd >= 0)
		close(j->logfd);
	if (j->spoolfd >= 0)
		close(j->spoolfd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	journal_entries_free(j->e, j->n);
	pthread_mutex_destroy(&j->lock);
	free(j->dir);
	free(j);
}

uint32_t journal_uid_of(uint64_t seq)
{
	return JOURNAL_UID_BASE + (uint32_t)(seq % 0xFFFFFu);
}

uint64_t journal_next_seq(struct journal *j)
{
	uint64_t s;

	pthread_mutex_lock(&j->lock);
	s = j->next_seq;
	pthread_mutex_unlock(&j->lock);
	return s;
}

/* A deep copy of an entry (false when out of memory). */
static bool journal_copy(struct journal_entry *to,
			 const struct journal_entry *from)
{
	*to = *from;
	to->folder = from->folder ? strdup(from->folder) : NULL;
	to->add = from->add ? strdup(from->add) : NULL;
	to->remove = from->remove ? strdup(from->remove) : NULL;
	to->target = from->target ? strdup(from->target) : NULL;
	to->flags = from->flags ? strdup(from->flags) : NULL;
	if ((from->folder && !to->folder) || (from->add && !to->add) ||
	    (from->remove && !to->remove) || (from->target && !to->target) ||
	    (from->flags && !to->flags)) {
		journal_entry_clear(to);
		return false;
	}
	return true;
}

/* Makes room for one more entry in memory: the done and dropped ones of
 * this mount go first when the bound is reached. Lock held. */
static int journal_room(struct journal *j)
{
	if (j->n >= JOURNAL_MAX_ENTRIES) {
		size_t k = 0;

		for (size_t i = 0; i < j->n; i++) {
			if (journal_is_pending(j->e[i].state) ||
			    j->e[i].state == JOURNAL_FAILED)
				j->e[k++] = j->e[i];
			else
				journal_entry_clear(&j->e[i]);
		}
		j->n = k;
		if (j->n >= JOURNAL_MAX_ENTRIES)
			return -ENOSPC;
	}
	return journal_grow(&j->e, j->n, &j->cap) ? 0 : -ENOMEM;
}

/* Adds an entry whose seq is already next_seq. Lock held. */
static int journal_add_locked(struct journal *j, struct journal_entry *e)
{
	int rc = journal_room(j);

	if (rc < 0)
		return rc;
	e->state = JOURNAL_PENDING;
	rc = journal_append_record(j, e, false);
	if (rc < 0)
		return rc;
	if (!journal_copy(&j->e[j->n], e)) {
		/* On disk but not in memory: the next open has it. */
		j->next_seq++;
		return -ENOMEM;
	}
	j->n++;
	j->next_seq++;
	return 0;
}

int journal_add(struct journal *j, struct journal_entry *e)
{
	int rc;

	pthread_mutex_lock(&j->lock);
	e->seq = j->next_seq;
	rc = journal_add_locked(j, e);
	pthread_mutex_unlock(&j->lock);
	return rc;
}

/* Writes e->size bytes from read() into spool file e->seq, fsynced
 * with its directory; e->idhash from its Message-ID, as a listing of
 * the server names it. */
static int journal_spool_write(struct journal *j, struct journal_entry *e,
			       long (*read)(void *ctx, char *buf, size_t len),
			       void *ctx)
{
	char name[32], *buf = malloc(JOURNAL_IO);
	uint64_t done = 0, size = e->size;
	int fd, rc = 0;

	if (!buf)
		return -ENOMEM;
	snprintf(name, sizeof(name), "%llu.eml", (unsigned long long)e->seq);
	fd = openat(j->spoolfd, name,
		    O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	while (rc == 0 && done < size) {
		size_t want = size - done < JOURNAL_IO ? (size_t)(size - done)
						       : JOURNAL_IO;
		long r = read(ctx, buf, want);

		if (r <= 0) {
			rc = r < 0 ? (int)r : -EIO;
			break;
		}
		if (done == 0)
			e->idhash = names_msgid_hash(buf, (size_t)r);
		rc = journal_write_all(fd, (unsigned char *)buf, (size_t)r);
		done += (uint64_t)r;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	close(fd);
	free(buf);
	if (rc == 0 && fsync(j->spoolfd) < 0)
		rc = -errno;
	if (rc < 0)
		unlinkat(j->spoolfd, name, 0);
	return rc;
}

int journal_add_append(struct journal *j, struct journal_entry *e,
		       long (*read)(void *ctx, char *buf, size_t len),
		       void *ctx)
{
	int rc;

	pthread_mutex_lock(&j->lock);
	e->seq = j->next_seq;
	rc = journal_room(j);
	if (rc == 0)
		rc = journal_spool_write(j, e, read, ctx);
	if (rc == 0) {
		rc = journal_add_locked(j, e);
		if (rc < 0 && rc != -ENOMEM) {
			char name[32];

			snprintf(name, sizeof(name), "%llu.eml",
				 (unsigned long long)e->seq);
			unlinkat(j->spoolfd, name, 0);
		}
	}
	pthread_mutex_unlock(&j->lock);
	return rc;
}

int journal_mark(struct journal *j, uint64_t seq, enum journal_state state,
		 uint32_t real_uidvalidity, uint32_t real_uid)
{
	struct journal_entry *e, tmp;
	int rc;

	pthread_mutex_lock(&j->lock);
	e = journal_find(j->e, j->n, seq);
	if (!e) {
		pthread_mutex_unlock(&j->lock);
		return -ENOENT;
	}
	tmp = *e;
	tmp.state = state;
	tmp.real_uidvalidity = real_uidvalidity;
	tmp.real_uid = real_uid;
	rc = journal_append_record(j, &tmp, true);
	if (rc == 0) {
		e->state = state;
		e->real_uidvalidity = real_uidvalidity;
		e->real_uid = real_uid;
		if (e->kind == JOURNAL_APPEND && state == JOURNAL_DONE) {
			char name[32];

			snprintf(name, sizeof(name), "%llu.eml",
				 (unsigned long long)seq);
			unlinkat(j->spoolfd, name, 0);
		}
	}
	pthread_mutex_unlock(&j->lock);
	return rc;
}

int journal_entries(struct journal *j, struct journal_entry **e_r, size_t *n_r)
{
	struct journal_entry *e;
	size_t i;

	pthread_mutex_lock(&j->lock);
	e = calloc(j->n ? j->n : 1, sizeof(*e));
	for (i = 0; e && i < j->n; i++) {
		if (!journal_copy(&e[i], &j->e[i])) {
			journal_entries_free(e, i);
			e = NULL;
		}
	}
	*n_r = e ? j->n : 0;
	pthread_mutex_unlock(&j->lock);
	*e_r = e;
	return e ? 0 : -ENOMEM;
}

void journal_counts(struct journal *j, unsigned *pending_r, unsigned *failed_r)
{
	unsigned p = 0, f = 0;

	pthread_mutex_lock(&j->lock);
	for (size_t i = 0; i < j->n; i++) {
		p += journal_is_pending(j->e[i].state);
		f += j->e[i].state == JOURNAL_FAILED;
	}
	pthread_mutex_unlock(&j->lock);
	*pending_r = p;
	*failed_r = f;
}

int journal_spool_open(struct journal *j, uint64_t seq)
{
	char name[32];
	int fd;

	snprintf(name, sizeof(name), "%llu.eml", (unsigned long long)seq);
	fd = openat(j->spoolfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? -errno : fd;
}

void journal_spool_path(struct journal *j, uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "%s/spool/%llu.eml", j->dir,
		 (unsigned long long)seq);
}

int journal_compact(struct journal *j)
{
	int rc;

	pthread_mutex_lock(&j->lock);
	rc = journal_rewrite(j);
	pthread_mutex_unlock(&j->lock);
	return rc;
}

/* ------------------------------------------------------------ flags */

/* The next flag of a space separated list at *p (moved past it): its
 * start, with *len_r; NULL at the list's end. */
static const char *journal_next_flag(const char **p, size_t *len_r)
{
	const char *s = *p;

	if (!s)
		return NULL;
	while (*s == ' ')
		s++;
	if (!*s)
		return NULL;
	*len_r = strcspn(s, " ");
	*p = s + *len_r;
	return s;
}

/* Whether the space separated list has flag (len bytes), without case. */
static bool journal_has_flag(const char *list, const char *flag, size_t len)
{
	const char *p = list, *f;
	size_t n;

	while ((f = journal_next_flag(&p, &n)))
		if (n == len && strncasecmp(f, flag, len) == 0)
			return true;
	return false;
}

/* Appends to out (of room for all of it) each flag of list, once, that
 * other has (in_other) or has not. */
static void journal_flags_pick(char *out, const char *list, const char *other,
			       bool in_other)
{
	const char *p = list, *f;
	size_t n;

	while ((f = journal_next_flag(&p, &n))) {
		if (journal_has_flag(other, f, n) != in_other ||
		    journal_has_flag(out, f, n))
			continue;
		if (*out)
			strcat(out, " ");
		strncat(out, f, n);
	}
}

char *journal_flags_apply(const char *flags, const char *add,
			  const char *remove)
{
	size_t len = (flags ? strlen(flags) : 0) + (add ? strlen(add) : 0) + 2;
	char *out = calloc(1, len), *kept;

	if (!out)
		return NULL;
	kept = calloc(1, len);
	if (!kept) {
		free(out);
		return NULL;
	}
	journal_flags_pick(kept, flags, remove ? remove : "", false);
	journal_flags_pick(kept, add, remove ? remove : "", false);
	strcpy(out, kept);
	free(kept);
	return out;
}

int journal_flags_diff(const char *from, const char *to, char **add_r,
		       char **remove_r)
{
	*add_r = calloc(1, (to ? strlen(to) : 0) + 1);
	*remove_r = calloc(1, (from ? strlen(from) : 0) + 1);
	if (!*add_r || !*remove_r) {
		free(*add_r);
		free(*remove_r);
		*add_r = *remove_r = NULL;
		return -ENOMEM;
	}
	journal_flags_pick(*add_r, to, from ? from : "", false);
	journal_flags_pick(*remove_r, from, to ? to : "", false);
	return 0;
}
