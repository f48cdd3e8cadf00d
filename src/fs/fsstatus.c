// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsstatus: the mount's status as `key=value` lines, read with
 * `getfattr --only-values -n user.mail.status MOUNTPOINT`. The set of keys is fixed
 * and documented (README, mailfs(1)); values never hold a newline.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "fsll.h"
#include "fsctx.h"
#include "fsstatus.h"
#include "fswatch.h"
#include "log.h"
#include "store.h"

/*
 * The mount's state, as `state` shows it, and in *mode_r the `mode` line's
 * value (NULL for a store without offline mode: no line). Both come from
 * one reading, so they never disagree: offline while the store serves
 * without the server (the disk cache's offline mode, which `mode` names,
 * "offline (forced)" with -o offline) and also when the last connection
 * attempt failed (a server just lost, before the disk cache has confirmed
 * it and switched).
 */
static const char *fsstatus_state(struct fsmount *fs, const char **mode_r)
{
	struct store *store = fs->cfg.store;
	const char *off = store->ops->offline_mode
				  ? store->ops->offline_mode(store)
				  : NULL;
	bool online = !off && store_get_stats(store)->online;

	*mode_r = !store->ops->offline_mode ? NULL
		  : off			    ? off
		  : online		    ? "online"
					    : "offline";
	return online ? "online" : "offline";
}

/* Writes the status text into buf (at most len bytes); its length. */
static size_t fsstatus_format(struct fsmount *fs, char *buf, size_t len)
{
	const struct store_stats *st = store_get_stats(fs->cfg.store);
	struct cache_stats cs;
	char last[512], when[32] = "";
	const char *state, *mode;
	time_t at;
	struct tm tm;
	int n;

	state = fsstatus_state(fs, &mode);
	cache_get_stats(fs->cache, &cs);
	if (!log_last_warning(last, sizeof(last), &at))
		last[0] = '\0';
	else if (gmtime_r(&at, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(buf, len,
		     "account=%s\n"
		     "state=%s\n"
		     "connections_open=%u\n"
		     "connections_busy=%u\n"
		     "bytes_fetched=%llu\n"
		     "messages_fetched=%llu\n"
		     "messages_prefetched=%llu\n"
		     "messages_pushed=%llu\n"
		     "cache_bytes=%llu\n"
		     "cache_limit=%llu\n"
		     "cache_hits=%llu\n"
		     "cache_misses=%llu\n"
		     "fuse_nodes=%zu\n"
		     "last_error=%s\n"
		     "last_error_time=%s\n"
		     "%s%s%s",
		     fs->cfg.account ? fs->cfg.account : "", state,
		     st->conns_open, st->conns_busy,
		     (unsigned long long)st->bytes_fetched,
		     (unsigned long long)st->messages_fetched,
		     (unsigned long long)fs->prefetched,
		     (unsigned long long)fs->pushed,
		     (unsigned long long)cs.bytes,
		     (unsigned long long)fs->cfg.cache_size,
		     (unsigned long long)cs.hits, (unsigned long long)cs.misses,
		     fs->ll ? fsll_stored_nodes(fs->ll) : (size_t)0, last, when,
		     mode ? "mode=" : "", mode ? mode : "", mode ? "\n" : "");
	if (n < 0)
		return 0;
	if ((size_t)n >= len)
		return len - 1;
	/* The kernel's requests so far, by kind: what a tool costs. */
	if (fs->ll && (size_t)n + 32 < len) {
		n += snprintf(buf + n, len - (size_t)n, "fuse_requests=");
		n += (int)fsll_format_requests(fs->ll, buf + n,
					       len - (size_t)n - 1);
		buf[n++] = '\n';
		buf[n] = '\0';
	}
	/* What push watches now. */
	if ((size_t)n < len)
		n += (int)fswatch_format_push(fs, buf + n, len - (size_t)n);
	/* The store's own lines (the disk cache's, say) follow. */
	if (fs->cfg.store->ops->status)
		n += (int)fs->cfg.store->ops->status(fs->cfg.store, buf + n,
						     len - (size_t)n);
	return (size_t)n;
}

int fsstatus_getxattr(struct fsmount *fs, const char *path, char *value,
		      size_t size)
{
	char buf[4096];
	size_t len;

	if (strcmp(path, "/") != 0)
		return -ENODATA;
	len = fsstatus_format(fs, buf, sizeof(buf));
	if (!size)
		return (int)len;
	if (size < len)
		return -ERANGE;
	memcpy(value, buf, len);
	return (int)len;
}

/* The quota, asked again once the last answer is older than refresh
 * seconds. No lock is held while the server is asked. */
static void fsstatus_quota(struct fsmount *fs, uint64_t *used_r,
			   uint64_t *limit_r)
{
	time_t now = clock_mono();
	uint64_t used = 0, limit = 0;
	bool ask;
	int rc;

	pthread_mutex_lock(&fs->quota_lock);
	ask = !clock_recent(fs->quota_at, now, fs->cfg.refresh);
	if (ask)
		fs->quota_at = now; /* one asker at a time */
	*used_r = fs->quota_used;
	*limit_r = fs->quota_limit;
	pthread_mutex_unlock(&fs->quota_lock);
	if (!ask || !fs->cfg.store->ops->quota)
		return;
	rc = fs->cfg.store->ops->quota(fs->cfg.store, &used, &limit);
	if (rc < 0)
		return; /* keep what was known */
	pthread_mutex_lock(&fs->quota_lock);
	fs->quota_used = *used_r = rc ? used : 0;
	fs->quota_limit = *limit_r = rc ? limit : 0;
	pthread_mutex_unlock(&fs->quota_lock);
}

int fsstatus_statfs(const char *path, struct statvfs *st)
{
	struct fsmount *fs = fsctx_get();
	uint64_t used, limit;

	(void)path;
	memset(st, 0, sizeof(*st));
	st->f_bsize = 4096;
	st->f_frsize = 4096;
	st->f_namemax = 255;
	fsstatus_quota(fs, &used, &limit);
	if (limit) {
		st->f_blocks = limit / st->f_frsize;
		st->f_bfree = st->f_bavail =
			used < limit ? (limit - used) / st->f_frsize : 0;
	}
	return 0;
}
