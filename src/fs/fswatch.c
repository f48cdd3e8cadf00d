// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fswatch: the mount between the store and the kernel. Store events
 * come in (store.h: a folder changed, push watches or went blind), and
 * what the kernel caches is kept true: names that went are dropped
 * (inval_entry), inodes whose attributes or pages changed are dropped
 * (inval_inode), and a folder another client changed is listed again
 * in the background, so that the kernel learns of an expunge within the
 * push report's round trip, not at the next look. A directory whose
 * mtime moved (tree.h) is dropped too, and the store is handed the new
 * mtime to keep across mounts.
 *
 * Two threads, each with its queue: one asks the kernel to invalidate
 * (memory and a write to /dev/fuse; never from inside a request, which
 * could deadlock on the inode it serves), one lists changed folders
 * again (network). The lock guards the queues and the push scope, and
 * is never held across either.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fsll.h"
#include "fspath.h"
#include "fsstate.h"
#include "fswatch.h"
#include "log.h"
#include "tree.h"

/* What push covers. */
enum fswatch_scope {
	FSWATCH_NONE,
	FSWATCH_ONE, /* scope_folder, in IDLE */
	FSWATCH_ALL, /* every folder (NOTIFY) */
};

/* One piece of queued work. */
struct fswatch_job {
	char *path; /* owned: a mount path; a server name for a resync */
	char *name; /* owned: a name in path to drop, or NULL (the inode
		     * of path) */
	struct fswatch_job *next;
};

/* A queue and the thread that empties it. */
struct fswatch_queue {
	struct fswatch *w;
	pthread_t thread;
	bool running;
	struct fswatch_job *head, **tail;
	void (*run)(struct fswatch *w, const struct fswatch_job *j);
};

struct fswatch {
	struct fsmount *fs; /* borrowed */
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond;
	bool stop;
	struct fswatch_queue inval, resync;
	enum fswatch_scope scope;
	char *scope_folder; /* owned */
	time_t since; /* clock_mono() when the scope began */
};

/* Frees a job. */
static void fswatch_job_free(struct fswatch_job *j)
{
	free(j->path);
	free(j->name);
	free(j);
}

/* Queues a job (path and name copied) unless the same is queued; out of
 * memory drops it (the kernel's entries then time out as before). */
static void fswatch_queue_add(struct fswatch *w, struct fswatch_queue *q,
			      const char *path, const char *name)
{
	struct fswatch_job *j, *e;

	pthread_mutex_lock(&w->lock);
	if (!q->running || w->stop) {
		pthread_mutex_unlock(&w->lock);
		return;
	}
	for (e = q->head; e; e = e->next)
		if (!strcmp(e->path, path) &&
		    (name ? e->name && !strcmp(e->name, name) : !e->name)) {
			pthread_mutex_unlock(&w->lock);
			return;
		}
	pthread_mutex_unlock(&w->lock);
	j = calloc(1, sizeof(*j));
	if (!j || !(j->path = strdup(path)) ||
	    (name && !(j->name = strdup(name)))) {
		if (j)
			fswatch_job_free(j);
		return;
	}
	pthread_mutex_lock(&w->lock);
	*q->tail = j;
	q->tail = &j->next;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* A queue's thread: runs its jobs in order until asked to stop. */
static void *fswatch_queue_main(void *arg)
{
	struct fswatch_queue *q = arg;
	struct fswatch *w = q->w;
	struct fswatch_job *j;

	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		if (!q->head) {
			pthread_cond_wait(&w->cond, &w->lock);
			continue;
		}
		j = q->head;
		q->head = j->next;
		if (!q->head)
			q->tail = &q->head;
		pthread_mutex_unlock(&w->lock);
		q->run(w, j);
		fswatch_job_free(j);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Asks the kernel to drop a name, or an inode's attributes and pages. */
static void fswatch_run_inval(struct fswatch *w, const struct fswatch_job *j)
{
	if (j->name)
		fsll_invalidate_entry(w->fs->ll, j->path, j->name);
	else
		fsll_invalidate_path(w->fs->ll, j->path);
}

/* Lists a folder another client changed again, at once: the listing's
 * changes reach the kernel through the tree's hook. An empty path is
 * the folder list, asked for when older than `refresh`. */
static void fswatch_run_resync(struct fswatch *w, const struct fswatch_job *j)
{
	int rc;

	if (!*j->path) {
		rc = w->fs->refresh_folders(w->fs, w->fs->cfg.refresh);
		if (rc < 0)
			log_debug("listing the folders: %s", strerror(-rc));
		return;
	}
	rc = w->fs->refresh(w->fs, j->path, 0);
	if (rc < 0)
		log_debug("%s: listing it again after a change: %s", j->path,
			  strerror(-rc));
}

/* The directory in the mount where a listing's name lives: the folder's
 * own, or in the Maildir layout its cur/ or (for "new/NAME") new/;
 * *base_r gets the name in it. malloc'd. */
static char *fswatch_name_dir(const struct fsmount *fs, const char *dir,
			      const char *name, const char **base_r)
{
	size_t dl = strcmp(dir, "/") ? strlen(dir) : 0;
	const char *sub = NULL;
	char *p;

	*base_r = name;
	if (fs->cfg.maildir) {
		sub = "cur";
		if (!strncmp(name, "new/", 4)) {
			sub = "new";
			*base_r = name + 4;
		}
	}
	p = malloc(dl + (sub ? 5 : 0) + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, dl);
	if (sub)
		sprintf(p + dl, "/%s", sub);
	else if (!dl)
		strcpy(p, "/");
	else
		p[dl] = '\0';
	return p;
}

/*
 * The tree's hook: a listing changed names or content, or a directory's
 * mtime moved. The kernel is told (queued: this runs in whatever thread
 * made the change): names that went, and the attributes of the folder's
 * directory and, in the Maildir layout, of its cur/ and new/, which show
 * the same mtime. A moved mtime is also given to the store to keep, so
 * that a later mount never shows an earlier one.
 */
static void fswatch_tree_changed(void *ctx, const struct tree_change *c)
{
	struct fswatch *w = ctx;
	struct store *st = w->fs->cfg.store;
	const char *base;
	char *d;
	size_t i;

	if (!c->folder) { /* the root: subfolders came or went */
		fswatch_queue_add(w, &w->inval, c->dir, NULL);
		return;
	}
	if (c->mtime && st->ops->keep_mtime)
		st->ops->keep_mtime(st, c->folder, c->mtime);
	for (i = 0; i < c->n_gone; i++) {
		d = fswatch_name_dir(w->fs, c->dir, c->gone[i], &base);
		if (d)
			fswatch_queue_add(w, &w->inval, d, base);
		free(d);
	}
	fswatch_queue_add(w, &w->inval, c->dir, NULL);
	if (w->fs->cfg.maildir) {
		for (i = 0; i < 2; i++) {
			d = fswatch_name_dir(w->fs, c->dir, i ? "new/x" : "x",
					     &base);
			if (d)
				fswatch_queue_add(w, &w->inval, d, NULL);
			free(d);
		}
	}
}

/* A store event (store.h), from the store's thread: memory only. */
static void fswatch_event(void *ctx, const struct store_event *ev)
{
	struct fswatch *w = ctx;
	char *copy = NULL;

	switch (ev->kind) {
	case STORE_EVENT_CHANGED:
		fswatch_folder_changed(w->fs, ev->folder);
		return;
	case STORE_EVENT_WATCHING:
		if (ev->folder && !(copy = strdup(ev->folder)))
			return; /* not trusted to watch: refresh as before */
		pthread_mutex_lock(&w->lock);
		free(w->scope_folder);
		w->scope_folder = copy;
		w->scope = ev->folder ? FSWATCH_ONE : FSWATCH_ALL;
		/* A listing made before this instant may miss a change
		 * made before the watch began. */
		w->since = clock_mono() + 1;
		pthread_mutex_unlock(&w->lock);
		return;
	case STORE_EVENT_BLIND:
		pthread_mutex_lock(&w->lock);
		w->scope = FSWATCH_NONE;
		pthread_mutex_unlock(&w->lock);
		return;
	}
}

void fswatch_list_folders(struct fsmount *fs)
{
	if (fs->watch)
		fswatch_queue_add(fs->watch, &fs->watch->resync, "", NULL);
}

void fswatch_folder_changed(struct fsmount *fs, const char *folder)
{
	char *path = tree_folder_path(fs->tree, folder);
	bool listed = tree_listing_state(fs->tree, folder,
					 &(struct store_listing){0});
	char *full;

	/* A folder never listed moves its mtime now (tools then list it);
	 * a listed one when the listing below finds what changed. */
	if (!listed)
		tree_mark_changed(fs->tree, folder);
	tree_expire_listing(fs->tree, folder);
	if (path && (full = malloc(strlen(path) + 2))) {
		sprintf(full, "/%s", path);
		fswatch_invalidate(fs, full);
		free(full);
	}
	free(path);
	/* Listed before: list it again now, so that the kernel drops what
	 * went (an unlisted folder is listed when it is looked at). */
	if (fs->watch && listed)
		fswatch_queue_add(fs->watch, &fs->watch->resync, folder, NULL);
}

unsigned fswatch_age(struct fsmount *fs, const char *folder, unsigned max_age)
{
	struct fswatch *w = fs->watch;
	time_t now = clock_mono(), age = 0;

	if (!w || max_age == 0)
		return max_age;
	pthread_mutex_lock(&w->lock);
	if (w->scope == FSWATCH_ALL || (w->scope == FSWATCH_ONE && folder &&
					!strcmp(folder, w->scope_folder)))
		age = now - w->since + 1;
	pthread_mutex_unlock(&w->lock);
	return age > (time_t)max_age
		       ? (unsigned)(age < UINT_MAX ? age : UINT_MAX)
		       : max_age;
}

size_t fswatch_format_push(struct fsmount *fs, char *buf, size_t len)
{
	struct fswatch *w = fs->watch;
	int n;

	if (!len)
		return 0;
	if (!w) {
		n = snprintf(buf, len, "push=off\n");
	} else {
		pthread_mutex_lock(&w->lock);
		n = snprintf(buf, len, "push=%s\n",
			     w->scope == FSWATCH_ALL   ? "all"
			     : w->scope == FSWATCH_ONE ? w->scope_folder
						       : "off");
		pthread_mutex_unlock(&w->lock);
	}
	if (n < 0)
		n = 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

void fswatch_invalidate(struct fsmount *fs, const char *path)
{
	if (fs->watch)
		fswatch_queue_add(fs->watch, &fs->watch->inval, path, NULL);
}

void fswatch_invalidate_with_dir(struct fsmount *fs, const char *path)
{
	const char *base;
	char *dir = fspath_dirname(path, &base);

	fswatch_invalidate(fs, path);
	if (dir)
		fswatch_invalidate(fs, dir);
	free(dir);
}

/* Starts one queue's thread. */
static int fswatch_queue_start(struct fswatch *w, struct fswatch_queue *q,
			       void (*run)(struct fswatch *,
					   const struct fswatch_job *))
{
	int rc;

	q->w = w;
	q->run = run;
	q->tail = &q->head;
	rc = pthread_create(&q->thread, NULL, fswatch_queue_main, q);
	if (rc)
		return -rc;
	pthread_setname_np(q->thread, "mailfs-watch");
	q->running = true;
	return 0;
}

int fswatch_start(struct fsmount *fs)
{
	struct fswatch *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	w->fs = fs;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->inval.tail = &w->inval.head;
	w->resync.tail = &w->resync.head;
	fs->watch = w;
	rc = fswatch_queue_start(w, &w->inval, fswatch_run_inval);
	if (rc == 0)
		rc = fswatch_queue_start(w, &w->resync, fswatch_run_resync);
	if (rc < 0) {
		fswatch_stop(fs);
		return rc;
	}
	tree_set_hook(fs->tree, fswatch_tree_changed, w);
	if (fs->cfg.store->ops->watch)
		fs->cfg.store->ops->watch(fs->cfg.store, fswatch_event, w);
	return 0;
}

/* Empties a queue whose thread has ended. */
static void fswatch_queue_drain(struct fswatch_queue *q)
{
	struct fswatch_job *j;

	while ((j = q->head)) {
		q->head = j->next;
		fswatch_job_free(j);
	}
	q->tail = &q->head;
}

void fswatch_stop(struct fsmount *fs)
{
	struct fswatch *w = fs->watch;

	if (!w)
		return;
	tree_set_hook(fs->tree, NULL, NULL);
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (w->inval.running)
		pthread_join(w->inval.thread, NULL);
	if (w->resync.running)
		pthread_join(w->resync.thread, NULL);
	w->inval.running = w->resync.running = false;
}

void fswatch_free(struct fsmount *fs)
{
	struct fswatch *w = fs->watch;

	if (!w)
		return;
	fswatch_stop(fs);
	fswatch_queue_drain(&w->inval);
	fswatch_queue_drain(&w->resync);
	free(w->scope_folder);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	fs->watch = NULL;
	free(w);
}
