// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * store_pop3: a POP3 maildrop as one flat folder backed by a local store.
 *
 * The local store is the user's mail, not a cache: a directory (0700)
 * with
 *   cur/<name>.eml   downloaded messages (0600), <name> from the UIDL
 *                    (names_uidl_to_file(): stable, unique, safe on any
 *                    filesystem)
 *   tmp/             downloads in progress (removed at start)
 *   index            "<id> <uidl>" lines: the local number of each UIDL,
 *                    so inodes and cache keys stay stable across mounts
 *   deleted          UIDLs removed by the user, to DELE on the server
 *   lock             flock()ed while mounted (mountlock.h)
 *
 * One worker thread owns the POP3 session (servers lock the maildrop, so
 * there is only ever one). Every `refresh` seconds, or at once when a
 * reader waits for a message, it logs in, lists (UIDL + LIST), DELEs what
 * the user removed, downloads what the store lacks (asked-for messages
 * first), and QUITs. A download is written to tmp/, fsynced, given its
 * Date: as mtime, renamed into cur/ and cur/ fsynced; only then is the
 * message DELEd (unless -o keep), and the deletions take effect at QUIT.
 * Killed at any point, a message is on the server, in the store, or both
 * (then it is not downloaded again: its file name is its UIDL).
 *
 * Listing and reading never wait for the network, except a read of a
 * message not downloaded yet, and the listings of a mount until its
 * first session has listed the server (within the timeout; see
 * store_pop3_wait_listed()).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uthash.h>

#include "clock.h"
#include "log.h"
#include "mountlock.h"
#include "msgdate.h"
#include "names.h"
#include "pop3.h"
#include "safedir.h"
#include "store.h"

#define STORE_POP3_UIDVALIDITY 1

/* One message known locally, on the server, or both. */
struct store_pop3_msg {
	char uidl[POP3_MAX_UIDL + 1]; /* hash key */
	uint32_t id; /* local number, from the index */
	char *file; /* owned: "<name>.eml" */
	bool stored; /* in cur/ */
	uint64_t size; /* stored: file size; else the LIST size */
	time_t date; /* stored: the file's mtime */
	bool on_server; /* in the last listing of the server */
	unsigned num; /* its number in the current session, 0 if none */
	bool wanted; /* a reader waits for it */
	bool queued; /* its RETR is on the way in this session */
	bool failed; /* its last download failed */
	UT_hash_handle hh; /* by uidl */
	UT_hash_handle hh_id; /* by id */
};

/* A UIDL the user removed, to DELE on the server. */
struct store_pop3_tomb {
	char uidl[POP3_MAX_UIDL + 1];
	bool deleted; /* DELEd in the current session */
	UT_hash_handle hh;
};

struct store_pop3 {
	struct store base;
	const struct pop3_config *cfg; /* borrowed */
	bool keep;
	unsigned refresh;
	char *dir; /* owned */
	int dirfd, curfd, tmpfd, lockfd;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond; /* the worker waits and readers wait on it */
	struct store_pop3_msg *by_uidl, *by_id;
	struct store_pop3_tomb *tombs;
	uint32_t next_id;
	uint64_t gen; /* changes whenever the listing would */
	uint64_t progress; /* bytes downloaded so far, for waiting readers */
	bool index_dirty;
	bool kick; /* a session is wanted now */
	bool stop;
	bool in_session;
	unsigned sessions_failed; /* readers give up after a failed one */
	unsigned sessions_ended; /* sessions run in this mount */
	bool listed; /* the server's listing was merged in this mount */
	bool fresh; /* the store was made by this mount: nothing offline */
	bool offline_start; /* the login at mount could not reach the server */
	pthread_t worker;
	bool worker_running;
};

/* The POP3 store behind the vtable's store (its first member). */
static struct store_pop3 *store_pop3_of(struct store *st)
{
	return (struct store_pop3 *)st;
}

/* fsyncs a directory: a rename or unlink in it is then durable. */
static int store_pop3_sync_dir(int fd)
{
	return fsync(fd) < 0 ? -errno : 0;
}

/* Finds or adds a message by UIDL, giving new ones a local number. The
 * lock is held (or the store is not shared yet). */
static struct store_pop3_msg *store_pop3_msg_get(struct store_pop3 *sp,
						 const char *uidl, uint32_t id)
{
	struct store_pop3_msg *m;
	char *name;

	HASH_FIND_STR(sp->by_uidl, uidl, m);
	if (m)
		return m;
	if (id) {
		/* A number used twice (a damaged index) gets a new one: two
		 * messages must never share a cache key. */
		HASH_FIND(hh_id, sp->by_id, &id, sizeof(id), m);
		if (m)
			id = 0;
	}
	name = names_uidl_to_file(uidl);
	if (!name)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m || asprintf(&m->file, "%s.eml", name) < 0) {
		free(m);
		free(name);
		return NULL;
	}
	free(name);
	snprintf(m->uidl, sizeof(m->uidl), "%s", uidl);
	m->id = id ? id : sp->next_id++;
	if (m->id >= sp->next_id)
		sp->next_id = m->id + 1;
	HASH_ADD_STR(sp->by_uidl, uidl, m);
	HASH_ADD(hh_id, sp->by_id, id, sizeof(m->id), m);
	if (!id)
		sp->index_dirty = true;
	return m;
}

/* Forgets a message (both hashes) and frees it; the lock is held. */
static void store_pop3_msg_del(struct store_pop3 *sp, struct store_pop3_msg *m)
{
	HASH_DEL(sp->by_uidl, m);
	HASH_DELETE(hh_id, sp->by_id, m);
	free(m->file);
	free(m);
}

/* Writes path (relative to the store) atomically: tmp file, fsync,
 * rename, fsync of the directory. */
static int store_pop3_write_file(struct store_pop3 *sp, const char *name,
				 const char *data, size_t len)
{
	char tmp[64];
	ssize_t n;
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%.40s.new", name);
	fd = openat(sp->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0600);
	if (fd < 0)
		return -errno;
	n = write(fd, data, len);
	if (n < 0 || (size_t)n != len || fsync(fd) < 0)
		rc = n < 0 ? -errno : -EIO;
	close(fd);
	if (rc == 0 && renameat(sp->dirfd, tmp, sp->dirfd, name) < 0)
		rc = -errno;
	if (rc == 0)
		rc = store_pop3_sync_dir(sp->dirfd);
	return rc;
}

/* Writes the index of local numbers: "<id> <uidl>" lines. */
static void store_pop3_print_index(struct store_pop3 *sp, FILE *f)
{
	struct store_pop3_msg *m, *tmp;

	fprintf(f, "mailfs-pop3-index 1\nnext %u\n", sp->next_id);
	HASH_ITER(hh, sp->by_uidl, m, tmp)
	{
		fprintf(f, "%u %s\n", m->id, m->uidl);
	}
}

/* Writes the removed UIDLs, one a line. */
static void store_pop3_print_tombs(struct store_pop3 *sp, FILE *f)
{
	struct store_pop3_tomb *t, *tmp;

	HASH_ITER(hh, sp->tombs, t, tmp)
	{
		fprintf(f, "%s\n", t->uidl);
	}
}

/* Saves one of the store's state files (made by print) atomically; the
 * lock is held. Failures are logged and returned. */
static int store_pop3_save(struct store_pop3 *sp, const char *name,
			   void (*print)(struct store_pop3 *sp, FILE *f))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	if (!f)
		return -ENOMEM;
	print(sp, f);
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	rc = store_pop3_write_file(sp, name, buf, len);
	if (rc < 0)
		log_warnx("cannot save %s/%s: %s", sp->dir, name,
			  strerror(-rc));
	free(buf);
	return rc;
}

/* Saves the index; the lock is held. */
static void store_pop3_save_index(struct store_pop3 *sp)
{
	if (store_pop3_save(sp, "index", store_pop3_print_index) == 0)
		sp->index_dirty = false;
}

/* Saves the list of removed UIDLs; the lock is held. */
static int store_pop3_save_tombs(struct store_pop3 *sp)
{
	return store_pop3_save(sp, "deleted", store_pop3_print_tombs);
}

/* True for a UIDL as RFC 1939 has them: 1 to 70 bytes 0x21-0x7e. */
static bool store_pop3_valid_uidl(const char *u)
{
	size_t n = strlen(u);

	if (n < 1 || n > POP3_MAX_UIDL)
		return false;
	for (; *u; u++)
		if ((unsigned char)*u < 0x21 || (unsigned char)*u > 0x7e)
			return false;
	return true;
}

/* Reads index and deleted, then what cur/ holds; clears tmp/. */
static int store_pop3_load(struct store_pop3 *sp)
{
	char line[256], uidl[POP3_MAX_UIDL + 2];
	struct dirent *de;
	unsigned id;
	DIR *d;
	FILE *f;
	int fd;

	sp->next_id = 1;
	fd = openat(sp->dirfd, "index", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && (f = fdopen(fd, "r"))) {
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "next %u", &id) == 1 && id > 0)
				sp->next_id = id;
			else if (sscanf(line, "%u %71s", &id, uidl) == 2 &&
				 id > 0 && store_pop3_valid_uidl(uidl))
				store_pop3_msg_get(sp, uidl, id);
		}
		fclose(f);
	}
	fd = openat(sp->dirfd, "deleted", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && (f = fdopen(fd, "r"))) {
		while (fgets(line, sizeof(line), f)) {
			struct store_pop3_tomb *t;

			if (sscanf(line, "%71s", uidl) != 1 ||
			    !store_pop3_valid_uidl(uidl))
				continue;
			HASH_FIND_STR(sp->tombs, uidl, t);
			if (t || !(t = calloc(1, sizeof(*t))))
				continue;
			snprintf(t->uidl, sizeof(t->uidl), "%s", uidl);
			HASH_ADD_STR(sp->tombs, uidl, t);
		}
		fclose(f);
	}
	/* Partial downloads of an earlier run: their messages are still on
	 * the server. */
	d = fdopendir(dup(sp->tmpfd));
	if (d) {
		while ((de = readdir(d)))
			if (de->d_name[0] != '.')
				unlinkat(sp->tmpfd, de->d_name, 0);
		closedir(d);
	}
	d = fdopendir(dup(sp->curfd));
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		struct store_pop3_tomb *t;
		struct store_pop3_msg *m;
		struct stat st;
		char *u;

		if (n < 5 || strcmp(de->d_name + n - 4, ".eml") != 0)
			continue;
		de->d_name[n - 4] = '\0';
		u = names_file_to_uidl(de->d_name);
		de->d_name[n - 4] = '.';
		if (!u)
			continue;
		HASH_FIND_STR(sp->tombs, u, t);
		if (t) {
			/* Removed by the user; the unlink did not happen. */
			unlinkat(sp->curfd, de->d_name, 0);
			free(u);
			continue;
		}
		m = store_pop3_msg_get(sp, u, 0);
		free(u);
		if (!m || fstatat(sp->curfd, de->d_name, &st, 0) < 0)
			continue;
		m->stored = true;
		m->size = (uint64_t)st.st_size;
		m->date = st.st_mtime;
	}
	closedir(d);
	if (sp->index_dirty)
		store_pop3_save_index(sp);
	return 0;
}

/* Where downloaded bytes go, and how far they got. */
struct store_pop3_download {
	struct store_pop3 *sp;
	int fd;
	uint64_t written;
};

/* Writes a piece of a message being downloaded to its file in tmp/,
 * counting the bytes; -1 when the store cannot be written (logged). */
static int store_pop3_download_write(void *ctx, const char *data, size_t len)
{
	struct store_pop3_download *dl = ctx;

	while (len) {
		ssize_t n = write(dl->fd, data, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_warn("cannot write the store");
			return -1;
		}
		data += n;
		len -= (size_t)n;
		dl->written += (uint64_t)n;
	}
	pthread_mutex_lock(&dl->sp->lock);
	dl->sp->progress += 1;
	pthread_cond_broadcast(&dl->sp->cond);
	pthread_mutex_unlock(&dl->sp->lock);
	return 0;
}

/* The date a stored message shows: its Date: header, else now. */
static time_t store_pop3_message_date(int fd)
{
	char head[64 * 1024];
	ssize_t n = pread(fd, head, sizeof(head), 0);
	time_t t;

	if (n > 0 && msgdate_parse(head, (size_t)n, &t))
		return t;
	return time(NULL);
}

/* A writer that drops what it is given: reads the answer to a RETR
 * whose message cannot be stored, so that the stream stays in step. */
static int store_pop3_discard(void *ctx, const char *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	return 0;
}

/*
 * Reads the answer to a RETR already sent and stores the message in
 * cur/: written to tmp/, given its Date: as mtime, fsynced, renamed, and
 * cur/ fsynced. Returns 0 when it is safely stored, -1 for a session
 * error (see pop3_error()), or a negative errno (local).
 */
static int store_pop3_download(struct store_pop3 *sp, struct pop3_session *s,
			       struct store_pop3_msg *m, unsigned num,
			       uint64_t list_size)
{
	struct store_pop3_download dl = {sp, -1, 0};
	uint64_t max = list_size * 2 > list_size + (1u << 20)
			       ? list_size * 2
			       : list_size + (1u << 20);
	struct timespec times[2];
	char file[NAME_MAX + 1];
	struct store_pop3_tomb *tomb;
	int rc;

	/* Nothing may return before the RETR's answer is read: the next
	 * pipelined answer would be taken for this message. */
	pthread_mutex_lock(&sp->lock);
	snprintf(file, sizeof(file), "%s", m->file);
	pthread_mutex_unlock(&sp->lock);
	dl.fd = openat(sp->tmpfd, file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
		       0600);
	if (dl.fd < 0) {
		rc = -errno;
		log_warn("cannot create %s/tmp/%s", sp->dir, file);
		if (pop3_retr_read(s, num, max, store_pop3_discard, NULL,
				   NULL) < 0 &&
		    !pop3_usable(s))
			rc = -1;
		goto out;
	}
	if (pop3_retr_read(s, num, max, store_pop3_download_write, &dl, NULL) <
	    0) {
		rc = -1;
		goto out_unlink;
	}
	times[0].tv_sec = times[1].tv_sec = store_pop3_message_date(dl.fd);
	times[0].tv_nsec = times[1].tv_nsec = 0;
	futimens(dl.fd, times);
	if (fsync(dl.fd) < 0 ||
	    renameat(sp->tmpfd, file, sp->curfd, file) < 0) {
		rc = -errno;
		goto out_unlink;
	}
	rc = store_pop3_sync_dir(sp->curfd);
	if (rc < 0)
		goto out; /* renamed, but maybe not durable: no DELE */
	sp->base.stats.messages_fetched++;
	sp->base.stats.bytes_fetched += (uint64_t)lseek(dl.fd, 0, SEEK_END);
	pthread_mutex_lock(&sp->lock);
	HASH_FIND_STR(sp->tombs, m->uidl, tomb);
	if (tomb) {
		/* Removed by the user while it downloaded: it goes (and is
		 * DELEd), rather than coming back. */
		unlinkat(sp->curfd, file, 0);
		store_pop3_sync_dir(sp->curfd);
	} else {
		m->stored = true;
		m->failed = false;
		m->size = dl.written;
		m->date = times[1].tv_sec;
		sp->gen++;
	}
	pthread_cond_broadcast(&sp->cond);
	pthread_mutex_unlock(&sp->lock);
	goto out;
out_unlink:
	unlinkat(sp->tmpfd, file, 0);
out:
	if (dl.fd >= 0)
		close(dl.fd);
	return rc;
}

/* Picks the next message to download: a wanted one first, else the
 * first missing one in server order. The lock is held. */
static struct store_pop3_msg *
store_pop3_next_download(struct store_pop3 *sp, const struct pop3_msg *list,
			 size_t n)
{
	struct store_pop3_msg *m, *first = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		struct store_pop3_tomb *t;

		HASH_FIND_STR(sp->by_uidl, list[i].uidl, m);
		HASH_FIND_STR(sp->tombs, list[i].uidl, t);
		if (!m || m->stored || t || m->failed || m->queued || !m->num)
			continue;
		if (m->wanted)
			return m;
		if (!first)
			first = m;
	}
	return first;
}

/* Takes in the server's listing: numbers, sizes, new UIDLs; forgets
 * tombstones of messages the server no longer has. The lock is held. */
static void store_pop3_merge_listing(struct store_pop3 *sp,
				     const struct pop3_msg *list, size_t n)
{
	struct store_pop3_msg *m, *tmp;
	struct store_pop3_tomb *t, *ttmp;
	bool tombs_changed = false;
	size_t i;

	HASH_ITER(hh, sp->by_uidl, m, tmp)
	{
		m->num = 0;
		m->failed = false;
		m->queued = false;
	}
	for (i = 0; i < n; i++) {
		m = store_pop3_msg_get(sp, list[i].uidl, 0);
		if (!m)
			continue;
		m->num = list[i].num;
		if (!m->stored)
			m->size = list[i].size;
	}
	HASH_ITER(hh, sp->by_uidl, m, tmp)
	{
		bool was = m->on_server;

		m->on_server = m->num != 0;
		if (was != m->on_server)
			sp->gen++;
		if (!m->on_server && !m->stored) {
			store_pop3_msg_del(sp, m); /* gone everywhere */
			sp->index_dirty = true;
		}
	}
	HASH_ITER(hh, sp->tombs, t, ttmp)
	{
		HASH_FIND_STR(sp->by_uidl, t->uidl, m);
		if (!m || !m->on_server) {
			HASH_DEL(sp->tombs, t);
			free(t);
			tombs_changed = true;
		}
	}
	if (tombs_changed)
		store_pop3_save_tombs(sp);
	if (sp->index_dirty)
		store_pop3_save_index(sp);
	sp->gen++;
	sp->listed = true;
}

/* A command whose answer is still to be read, in the order sent. */
struct store_pop3_pending {
	struct store_pop3_msg *m; /* RETR: the message; DELE: NULL */
	unsigned num;
	uint64_t size;
};

#define STORE_POP3_PIPELINE 16
/*
 * Downloads what the store lacks, wanted messages first. Where the
 * server allows pipelining, up to STORE_POP3_PIPELINE RETRs are on the
 * way at once, so a message costs far less than a round trip; each
 * message is stored durably before its DELE is sent (unless -o keep).
 * Returns 0, or -1 when the session broke (logged).
 */
static int store_pop3_download_all(struct store_pop3 *sp,
				   struct pop3_session *s,
				   const struct pop3_msg *list, size_t n)
{
	struct store_pop3_pending q[2 * STORE_POP3_PIPELINE + 1];
	const size_t cap = sizeof(q) / sizeof(q[0]);
	size_t head = 0, len = 0, window = 1, retrs = 0;
	int rc = 0;

	if (pop3_can_pipeline(s))
		window = STORE_POP3_PIPELINE;
	for (;;) {
		struct store_pop3_pending e;
		int drc;

		while (retrs < window && len < cap) {
			struct store_pop3_msg *m;

			pthread_mutex_lock(&sp->lock);
			m = sp->stop ? NULL
				     : store_pop3_next_download(sp, list, n);
			if (m)
				m->queued = true;
			e = (struct store_pop3_pending){m, m ? m->num : 0,
							m ? m->size : 0};
			pthread_mutex_unlock(&sp->lock);
			if (!m)
				break;
			if (pop3_retr_send(s, e.num) < 0)
				goto broken;
			q[(head + len++) % cap] = e;
			retrs++;
		}
		if (len == 0)
			break;
		e = q[head];
		head = (head + 1) % cap;
		len--;
		if (!e.m) {
			/* The answer to a DELE. */
			if (pop3_status_read(s) < 0) {
				log_warnx("%s", pop3_error(s)->text);
				if (!pop3_usable(s))
					goto out;
			}
			continue;
		}
		retrs--;
		drc = store_pop3_download(sp, s, e.m, e.num, e.size);
		pthread_mutex_lock(&sp->lock);
		e.m->queued = false;
		if (drc != 0) {
			e.m->failed = true;
			pthread_cond_broadcast(&sp->cond);
		}
		pthread_mutex_unlock(&sp->lock);
		if (drc == -1) {
			log_warnx("%s", pop3_error(s)->text);
			if (!pop3_usable(s))
				goto out;
		}
		/* Safely stored: now it may leave the server. */
		if (drc == 0 && !sp->keep) {
			if (pop3_dele_send(s, e.num) < 0)
				goto broken;
			q[(head + len++) % cap] =
				(struct store_pop3_pending){NULL, e.num, 0};
		}
	}
	return 0;
broken:
	log_warnx("%s", pop3_error(s)->text);
out:
	rc = -1;
	pthread_mutex_lock(&sp->lock);
	for (; len; len--, head = (head + 1) % cap)
		if (q[head].m)
			q[head].m->queued = false;
	pthread_mutex_unlock(&sp->lock);
	return rc;
}

static void store_pop3_prune_tombs(struct store_pop3 *sp,
				   const struct pop3_msg *list, size_t n);

/* One POP3 session: list, DELE what the user removed, download what is
 * missing, QUIT. Returns 0 or -1 (logged). */
static int store_pop3_session(struct store_pop3 *sp)
{
	struct pop3_session *s = NULL;
	struct pop3_msg *list = NULL;
	struct pop3_error err;
	struct store_pop3_tomb *t, *tmp;
	struct store_pop3_msg *m;
	size_t n = 0, i;
	int rc = -1;

	if (pop3_open(sp->cfg, &s, &err) < 0) {
		sp->base.stats.online = false;
		log_warnx("%s", err.text);
		return -1;
	}
	sp->base.stats.online = true;
	if (pop3_list(s, &list, &n) < 0) {
		log_warnx("%s", pop3_error(s)->text);
		goto out_close;
	}
	pthread_mutex_lock(&sp->lock);
	store_pop3_merge_listing(sp, list, n);
	pthread_cond_broadcast(&sp->cond);
	pthread_mutex_unlock(&sp->lock);

	store_pop3_prune_tombs(sp, list, n);
	/*
	 * With -o pop3_delete: messages the user removed, and messages
	 * stored by an earlier session that ended before its QUIT: DELE
	 * them.
	 */
	for (i = 0; i < n; i++) {
		struct stat st;
		bool stored;

		pthread_mutex_lock(&sp->lock);
		HASH_FIND_STR(sp->tombs, list[i].uidl, t);
		HASH_FIND_STR(sp->by_uidl, list[i].uidl, m);
		/* Trust the disk, not the flag: the file must be there, as
		 * long as the server says the message is. */
		stored = m && m->stored &&
			 fstatat(sp->curfd, m->file, &st, 0) == 0 &&
			 (uint64_t)st.st_size == list[i].size;
		pthread_mutex_unlock(&sp->lock);
		/* Kept mail is never DELEd: rm only forgets it here. */
		if (sp->keep || (!t && !stored))
			continue;
		if (pop3_dele(s, list[i].num) < 0) {
			log_warnx("%s", pop3_error(s)->text);
			if (!pop3_usable(s))
				goto out_close;
			continue;
		}
		/* Only this thread removes tombstones: t is still there. */
		if (t) {
			pthread_mutex_lock(&sp->lock);
			t->deleted = true;
			pthread_mutex_unlock(&sp->lock);
		}
	}
	rc = store_pop3_download_all(sp, s, list, n);
	if (rc < 0)
		goto out_close;
	rc = pop3_quit(s, &err);
	s = NULL;
	if (rc < 0) {
		log_warnx("%s", err.text);
		goto out;
	}
	/* The DELEs took effect: those tombstones are done. */
	pthread_mutex_lock(&sp->lock);
	HASH_ITER(hh, sp->tombs, t, tmp)
	{
		if (t->deleted) {
			HASH_DEL(sp->tombs, t);
			free(t);
		}
	}
	store_pop3_save_tombs(sp);
	pthread_mutex_unlock(&sp->lock);
	goto out;
out_close:
	pop3_close(s);
out:
	pthread_mutex_lock(&sp->lock);
	HASH_ITER(hh, sp->tombs, t, tmp)
	{
		t->deleted = false;
	}
	pthread_mutex_unlock(&sp->lock);
	free(list);
	return rc;
}

/* Forgets tombstones of UIDLs the server no longer lists: they can
 * never come back, so the file stays as small as the server's list. */
static void store_pop3_prune_tombs(struct store_pop3 *sp,
				   const struct pop3_msg *list, size_t n)
{
	struct store_pop3_tomb *t, *tmp;
	bool changed = false;
	size_t i;

	pthread_mutex_lock(&sp->lock);
	HASH_ITER(hh, sp->tombs, t, tmp)
	{
		for (i = 0; i < n && strcmp(list[i].uidl, t->uidl); i++)
			;
		if (i == n) {
			HASH_DEL(sp->tombs, t);
			free(t);
			changed = true;
		}
	}
	if (changed)
		store_pop3_save_tombs(sp);
	pthread_mutex_unlock(&sp->lock);
}

/* The worker: a session at start, then every refresh seconds or when a
 * reader asks for a message. */
static void *store_pop3_worker(void *arg)
{
	struct store_pop3 *sp = arg;
	struct timespec next;
	int rc;

	pthread_mutex_lock(&sp->lock);
	while (!sp->stop) {
		sp->kick = false;
		sp->in_session = true;
		pthread_mutex_unlock(&sp->lock);
		rc = store_pop3_session(sp);
		pthread_mutex_lock(&sp->lock);
		sp->in_session = false;
		sp->sessions_ended++;
		if (rc < 0)
			sp->sessions_failed++;
		pthread_cond_broadcast(&sp->cond);
		next = clock_deadline((long)sp->refresh * 1000);
		while (!sp->stop && !sp->kick &&
		       pthread_cond_timedwait(&sp->cond, &sp->lock, &next) !=
			       ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&sp->lock);
	return NULL;
}

/* store_ops.folders: the one folder, named "" (the mount's root). */
static int store_pop3_folders(struct store *st, struct store_folder **f_r,
			      size_t *n_r)
{
	struct store_folder *f = calloc(1, sizeof(*f));

	(void)st;
	if (!f || !(f->name = strdup(""))) {
		free(f);
		return -ENOMEM;
	}
	*f_r = f;
	*n_r = 1;
	return 0;
}

/*
 * Waits, the lock held, until this mount knows the server's listing, so
 * that a listing right after mount shows the messages on the server
 * rather than only what the store held (the first session lists at
 * once; the README promises them at once). The wait ends when a session
 * lists or ends, or at the request's deadline (the timeout). A store
 * made before is then shown as it is (offline, as when the server was
 * unreachable at mount: no wait then). A store made by this mount has
 * nothing to show but would look like an empty maildrop: it asks for a
 * session if none is under way, and fails with -EIO when no listing
 * came in time.
 */
static int store_pop3_wait_listed(struct store_pop3 *sp)
{
	unsigned ended = sp->sessions_ended;
	struct timespec ts;

	if (sp->listed)
		return 0;
	if (!sp->fresh && (sp->offline_start || sp->sessions_ended > 0))
		return 0;
	if (sp->sessions_ended > 0 && !sp->in_session) {
		sp->kick = true;
		pthread_cond_broadcast(&sp->cond);
	}
	ts = clock_deadline(sp->cfg->timeout_ms);
	while (!sp->listed && !sp->stop && sp->sessions_ended == ended &&
	       pthread_cond_timedwait(&sp->cond, &sp->lock, &ts) != ETIMEDOUT)
		;
	if (sp->listed || !sp->fresh)
		return 0;
	log_warnx("no listing from the server yet: nothing to show");
	return -EIO;
}

/* store_ops.messages: the messages stored here or on the server, but
 * those the user removed, from memory (no network; the first listing
 * of a mount waits for its first session, see store_pop3_wait_listed());
 * 1 when prev is still current. */
static int store_pop3_messages(struct store *st, const char *folder,
			       const struct store_listing *prev,
			       struct store_listing *out)
{
	struct store_pop3 *sp = store_pop3_of(st);
	struct store_pop3_msg *m, *tmp;
	size_t n = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (*folder)
		return -ENOENT;
	pthread_mutex_lock(&sp->lock);
	rc = store_pop3_wait_listed(sp);
	if (rc < 0)
		goto out;
	out->uidvalidity = STORE_POP3_UIDVALIDITY;
	out->modseq = sp->gen;
	out->uidnext = sp->next_id;
	if (prev && prev->modseq == sp->gen)
		goto unchanged;
	out->msgs = calloc(HASH_CNT(hh, sp->by_uidl) + 1, sizeof(*out->msgs));
	if (!out->msgs) {
		rc = -ENOMEM;
		goto out;
	}
	HASH_ITER(hh, sp->by_uidl, m, tmp)
	{
		struct store_msg *sm = &out->msgs[n];
		struct store_pop3_tomb *t;

		HASH_FIND_STR(sp->tombs, m->uidl, t);
		if (t || (!m->stored && !m->on_server))
			continue;
		sm->uid = m->id;
		sm->size = m->size;
		sm->date = m->stored ? m->date : 0;
		sm->flags = strdup("");
		sm->name = strdup(m->file);
		sm->ref = strdup(m->uidl);
		n++;
		if (!sm->flags || !sm->name || !sm->ref) {
			out->n = n;
			store_listing_clear(out);
			rc = -ENOMEM;
			goto out;
		}
	}
	out->n = n;
	out->exists = (uint32_t)n;
out:
	pthread_mutex_unlock(&sp->lock);
	return rc;
unchanged:
	pthread_mutex_unlock(&sp->lock);
	return 1;
}

/* The message of local number id, or NULL; the lock is held. */
static struct store_pop3_msg *store_pop3_by_id(struct store_pop3 *sp,
					       uint32_t id)
{
	struct store_pop3_msg *m;

	HASH_FIND(hh_id, sp->by_id, &id, sizeof(id), m);
	return m;
}

/*
 * Waits until the message of local number id is stored, asking the
 * worker for it, and copies its file name into file. Gives up with -EIO
 * when a download or session fails or no byte arrived for the timeout,
 * and -ENOENT when the message is gone. The record is looked up again
 * after every wait: the worker may free it meanwhile. The lock is held.
 */
static int store_pop3_wait_stored(struct store_pop3 *sp, uint32_t id,
				  char *file, size_t size)
{
	unsigned failed = sp->sessions_failed;
	uint64_t progress = sp->progress;
	bool asked = false;
	struct store_pop3_msg *m;

	while ((m = store_pop3_by_id(sp, id)) && !m->stored) {
		struct timespec ts;

		if (m->failed && asked)
			return -EIO;
		if (!m->on_server)
			return -ENOENT;
		if (sp->sessions_failed != failed)
			return -EIO;
		if (!m->wanted || !asked) {
			m->wanted = true;
			m->failed = false;
			asked = true;
			sp->kick = true;
			pthread_cond_broadcast(&sp->cond);
		}
		ts = clock_deadline(sp->cfg->timeout_ms + 1000);
		if (pthread_cond_timedwait(&sp->cond, &sp->lock, &ts) ==
			    ETIMEDOUT &&
		    sp->progress == progress) {
			m = store_pop3_by_id(sp, id);
			if (m && m->stored)
				break;
			log_warnx("no progress downloading message %u", id);
			return -EIO;
		}
		progress = sp->progress;
	}
	if (!m)
		return -ENOENT;
	snprintf(file, size, "%s", m->file);
	return 0;
}

/* store_ops.fetch: the messages' bytes from their files in cur/,
 * waiting for the download of the first (the one being read) when it
 * is not stored yet; the others only when they are. */
static int store_pop3_fetch(struct store *st, const char *folder,
			    uint32_t uidvalidity, const uint32_t *uids,
			    size_t n, uint64_t offset, uint64_t len,
			    void (*cb)(void *ctx, const struct store_piece *p),
			    void *ctx)
{
	struct store_pop3 *sp = store_pop3_of(st);
	char *buf = NULL;
	size_t i;
	int rc = 0;

	if (*folder || uidvalidity != STORE_POP3_UIDVALIDITY)
		return store_fail(-ESTALE, STORE_SCOPE_FOLDER);
	if (len > STORE_MAX_PIECE)
		len = STORE_MAX_PIECE;
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	for (i = 0; i < n && rc == 0; i++) {
		struct store_piece p = {uids[i], offset, buf, 0};
		char file[NAME_MAX + 1];
		struct store_pop3_msg *m;
		ssize_t got;
		int fd, wrc;

		/* Only the message asked for is worth waiting for: the others
		 * (a scan's prefetch) are served if already stored. */
		pthread_mutex_lock(&sp->lock);
		m = store_pop3_by_id(sp, uids[i]);
		if (i == 0)
			wrc = store_pop3_wait_stored(sp, uids[i], file,
						     sizeof(file));
		else if (m && m->stored)
			wrc = snprintf(file, sizeof(file), "%s", m->file) < 0;
		else
			wrc = -ENOENT;
		pthread_mutex_unlock(&sp->lock);
		if (wrc == -EIO)
			rc = -EIO;
		if (wrc)
			continue; /* gone, or not here yet: no piece */
		fd = openat(sp->curfd, file, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* removed meanwhile */
		got = pread(fd, buf, len, (off_t)offset);
		close(fd);
		if (got < 0) {
			rc = -EIO;
			break;
		}
		p.len = (size_t)got;
		cb(ctx, &p);
	}
	free(buf);
	return rc;
}

/* rm: the message leaves the store for good and, if it is still on the
 * server, is DELEd there at the next session. The tombstone is written
 * before the file goes, so a crash in between cannot bring it back. */
static int store_pop3_expunge(struct store *st, const char *folder,
			      uint32_t uidvalidity, const struct store_msg *msg)
{
	struct store_pop3 *sp = store_pop3_of(st);
	uint32_t uid = msg->uid;
	struct store_pop3_tomb *t;
	struct store_pop3_msg *m;
	int rc = 0;

	if (*folder || uidvalidity != STORE_POP3_UIDVALIDITY)
		return -ENOENT;
	pthread_mutex_lock(&sp->lock);
	HASH_FIND(hh_id, sp->by_id, &uid, sizeof(uid), m);
	if (!m) {
		rc = -ENOENT;
		goto out;
	}
	HASH_FIND_STR(sp->tombs, m->uidl, t);
	if (!t && (m->on_server || sp->keep)) {
		t = calloc(1, sizeof(*t));
		if (!t) {
			rc = -ENOMEM;
			goto out;
		}
		snprintf(t->uidl, sizeof(t->uidl), "%s", m->uidl);
		HASH_ADD_STR(sp->tombs, uidl, t);
		rc = store_pop3_save_tombs(sp);
		if (rc < 0) {
			HASH_DEL(sp->tombs, t);
			free(t);
			goto out;
		}
	}
	if (m->stored) {
		if (unlinkat(sp->curfd, m->file, 0) < 0 && errno != ENOENT) {
			rc = -errno;
			goto out;
		}
		store_pop3_sync_dir(sp->curfd);
		m->stored = false;
	}
	if (!m->on_server) {
		store_pop3_msg_del(sp, m);
		sp->index_dirty = true;
		store_pop3_save_index(sp);
	}
	sp->gen++;
	if (t)
		sp->kick = true; /* DELE it soon */
	pthread_cond_broadcast(&sp->cond);
out:
	pthread_mutex_unlock(&sp->lock);
	return rc;
}

/* store_ops.append_limit: none (POP3 cannot add messages). */
static uint64_t store_pop3_append_limit(struct store *st)
{
	(void)st;
	return 0;
}

/* store_ops.destroy: stops the worker and frees what the store holds. */
static void store_pop3_destroy(struct store *st)
{
	struct store_pop3 *sp = store_pop3_of(st);
	struct store_pop3_msg *m, *tmp;
	struct store_pop3_tomb *t, *ttmp;

	if (sp->worker_running) {
		pthread_mutex_lock(&sp->lock);
		sp->stop = true;
		pthread_cond_broadcast(&sp->cond);
		pthread_mutex_unlock(&sp->lock);
		pthread_join(sp->worker, NULL);
	}
	HASH_ITER(hh, sp->by_uidl, m, tmp)
	{
		store_pop3_msg_del(sp, m);
	}
	HASH_ITER(hh, sp->tombs, t, ttmp)
	{
		HASH_DEL(sp->tombs, t);
		free(t);
	}
	mountlock_release(sp->lockfd);
	if (sp->tmpfd >= 0)
		close(sp->tmpfd);
	if (sp->curfd >= 0)
		close(sp->curfd);
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	pthread_mutex_destroy(&sp->lock);
	pthread_cond_destroy(&sp->cond);
	free(sp->dir);
	free(sp);
}

static const struct store_ops store_pop3_ops = {
	.folders = store_pop3_folders,
	.messages = store_pop3_messages,
	.fetch = store_pop3_fetch,
	.expunge = store_pop3_expunge,
	.append_limit = store_pop3_append_limit,
	.destroy = store_pop3_destroy,
};

/* The store directory for USER@HOST[:PORT] under the data home. */
static char *store_pop3_dir_for(const char *user, const char *host,
				const char *port)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	char *safe, *dir = NULL;

	safe = names_account_key(user, host, port);
	if (!safe)
		return NULL;
	if (xdg && *xdg == '/') {
		if (asprintf(&dir, "%s/mailfs/pop3/%s", xdg, safe) < 0)
			dir = NULL;
	} else if (home && *home == '/') {
		if (asprintf(&dir, "%s/.local/share/mailfs/pop3/%s", home,
			     safe) < 0)
			dir = NULL;
	}
	free(safe);
	return dir;
}

/* The default local store of an account (see store.h). */
char *store_pop3_default_dir(const char *user, const char *host,
			     const char *port)
{
	char *dir = store_pop3_dir_for(user, host, port), *old;
	struct stat st;

	if (!dir || !port || stat(dir, &st) == 0)
		return dir;
	/* Stores made before the port was part of the name stay where
	 * they are: their mail may be gone from the server. */
	old = store_pop3_dir_for(user, host, NULL);
	if (old && stat(old, &st) == 0 && S_ISDIR(st.st_mode)) {
		fprintf(stderr,
			"mailfs: using the local store %s (made before store "
			"names held the port)\n",
			old);
		free(dir);
		return old;
	}
	free(old);
	return dir;
}

/*
 * Opens (making it if need be) the store directory and its parts,
 * refusing any that another user could have planted or change
 * (safedir.h), and locks it against a second mount (mountlock.h: one
 * that is exiting is waited for, at most the timeout).
 */
static int store_pop3_open_dir(struct store_pop3 *sp, char *err, size_t errlen)
{
	char why[512], sub[PATH_MAX + 8];

	sp->dirfd = safedir_open(sp->dir, why, sizeof(why));
	if (sp->dirfd < 0)
		goto fail;
	sp->lockfd = mountlock_take(sp->dirfd, sp->dir, "store",
				    sp->cfg->timeout_ms, err, errlen);
	if (sp->lockfd < 0)
		return -1;
	snprintf(sub, sizeof(sub), "%s/cur", sp->dir);
	sp->curfd = safedir_openat(sp->dirfd, "cur", sub, why, sizeof(why));
	if (sp->curfd < 0)
		goto fail;
	snprintf(sub, sizeof(sub), "%s/tmp", sp->dir);
	sp->tmpfd = safedir_openat(sp->dirfd, "tmp", sub, why, sizeof(why));
	if (sp->tmpfd < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot use the local store: %s", why);
	return -1;
}

/* Makes the POP3 store over dir (see store.h). */
struct store *store_pop3_new(const struct pop3_config *cfg, const char *dir,
			     bool keep, unsigned refresh, char *err,
			     size_t errlen)
{
	struct store_pop3 *sp = calloc(1, sizeof(*sp));
	struct pop3_session *s;
	struct pop3_error perr;
	struct stat st;
	bool existed;

	if (!sp) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	sp->base.ops = &store_pop3_ops;
	sp->base.ref_xattr = "user.mail.uidl";
	sp->cfg = cfg;
	sp->keep = keep;
	sp->refresh = refresh ? refresh : 1;
	sp->dirfd = sp->curfd = sp->tmpfd = sp->lockfd = -1;
	sp->gen = 1;
	pthread_mutex_init(&sp->lock, NULL);
	clock_cond_init(&sp->cond);
	sp->dir = strdup(dir);
	if (!sp->dir) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	existed = stat(dir, &st) == 0;
	/*
	 * Log in once now, so that a wrong password or certificate is
	 * reported before mounting. An unreachable server is not fatal
	 * when a store exists: it is used offline. Without one (a mistyped
	 * host, say) there is nothing to show: that fails, and no empty
	 * store is made.
	 */
	if (pop3_open(cfg, &s, &perr) < 0) {
		if (perr.kind != POP3_ERR_NET) {
			snprintf(err, errlen, "%s", perr.text);
			goto fail;
		}
		if (!existed) {
			snprintf(err, errlen,
				 "%s (and there is no local store "
				 "%s to use offline)",
				 perr.text, sp->dir);
			goto fail;
		}
		fprintf(stderr,
			"mailfs: %s; mounting the local store %s "
			"offline, will retry every %u s\n",
			perr.text, sp->dir, sp->refresh);
		sp->offline_start = true;
	} else {
		pop3_quit(s, &perr);
	}
	sp->fresh = !existed;
	if (store_pop3_open_dir(sp, err, errlen) < 0)
		goto fail;
	if (store_pop3_load(sp) < 0) {
		snprintf(err, errlen, "cannot read the store %s: %s", sp->dir,
			 strerror(errno));
		goto fail;
	}
	return &sp->base;
fail:
	store_pop3_destroy(&sp->base);
	return NULL;
}

/* Starts the worker thread (see store.h). */
int store_pop3_start(struct store *st)
{
	struct store_pop3 *sp = store_pop3_of(st);
	int rc = pthread_create(&sp->worker, NULL, store_pop3_worker, sp);

	if (rc)
		return -rc;
	pthread_setname_np(sp->worker, "mailfs-pop3");
	sp->worker_running = true;
	return 0;
}
