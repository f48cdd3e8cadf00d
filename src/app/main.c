// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * main: parse the command line, log in, then mount.
 *
 * The first connection is opened and authenticated before anything is
 * mounted and before the process daemonizes, so that a wrong password,
 * an untrusted certificate or an unreachable server is reported on the
 * terminal with a non-zero exit status and nothing stays mounted.
 */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "diskcache.h"
#include "journal.h"
#include "fsll.h"
#include "fsloop.h"
#include "fsdir.h"
#include "fsmount.h"
#include "fsnode.h"
#include "fsvirt.h"
#include "imap.h"
#include "log.h"
#include "mountlock.h"
#include "net.h"
#include "opts.h"
#include "pop3.h"
#include "prefetch.h"
#include "store.h"

/* What the credential callback needs. */
struct main_secret {
	const struct opts *o; /* borrowed */
	char *password; /* owned, wiped at exit: NULL with OAuth2 */
};

/*
 * The credential callback of every session (see sasl.h): the password
 * found at start-up, or, for OAuth2, a token printed by oauth2_command,
 * run anew at each login (bounded by -o timeout) so that a token the
 * helper refreshed is picked up.
 */
static int main_credential(void *ctx, char *buf, size_t len, char *err,
			   size_t errlen)
{
	const struct main_secret *ms = ctx;
	size_t n;

	if (!ms->password)
		return opts_secret_command(
			"oauth2_command", "token", ms->o->oauth2_command,
			ms->o->timeout, buf, len, err, errlen);
	n = strlen(ms->password);
	if (n >= len) {
		snprintf(err, errlen, "the password is longer than %zu bytes",
			 len - 1);
		return -1;
	}
	memcpy(buf, ms->password, n + 1);
	return 0;
}

/* Warns about settings that weaken the connection's security. */
static void main_security_warnings(const struct opts *o)
{
	if (o->url.tls == OPTS_TLS_NONE)
		fprintf(stderr,
			"mailfs: WARNING: -o tls=none: the %s and all "
			"mail cross the network UNENCRYPTED\n",
			sasl_auth_is_oauth(o->auth) ? "access token"
						    : "password");
	if (o->insecure)
		fprintf(stderr,
			"mailfs: WARNING: -o insecure: the server's "
			"certificate is NOT verified; anyone on the path can "
			"read your mail and password\n");
}

/* Opens the account's disk cache; NULL (with a warning) if it cannot
 * be used: the mount then works without it. */
static struct diskcache *main_disk_cache(const struct opts *o)
{
	char *dir =
		diskcache_default_dir(o->url.user, o->url.host, o->url.port);
	struct diskcache *dc;
	char err[512];

	if (!dir) {
		fprintf(stderr, "mailfs: warning: no place for the disk "
				"cache (set HOME or XDG_CACHE_HOME)\n");
		return NULL;
	}
	dc = diskcache_open(dir, o->disk_cache, (int)o->timeout * 1000, err,
			    sizeof(err));
	if (!dc)
		fprintf(stderr, "mailfs: warning: no disk cache: %s\n", err);
	free(dir);
	return dc;
}

/*
 * The journal of changes made offline, beside the disk cache (under its
 * lock): opened even on a read-only mount, whose changes are refused
 * before the store, so that what an earlier mount kept is still sent.
 * Without it (-o offline_changes=no, or it cannot be opened) changes
 * are refused offline, as they were.
 */
static void main_journal(const struct opts *o, struct store *cst,
			 struct diskcache *dc)
{
	struct journal *j;
	char err[512];

	if (!o->offline_changes)
		return;
	j = journal_open(diskcache_dir(dc), err, sizeof(err));
	if (!j) {
		fprintf(stderr,
			"mailfs: warning: changes made offline will be "
			"refused: %s\n",
			err);
		return;
	}
	store_cache_set_journal(cst, j);
}

/*
 * The IMAP store over the disk cache: with a cache that holds the
 * account's folders, an unreachable server (or -o offline) mounts
 * offline; without one it fails as before.
 */
static struct store *main_cached_store(const struct opts *o,
				       struct imap_config *cfg, char *err,
				       size_t errlen)
{
	struct diskcache *dc = main_disk_cache(o);
	bool cached = dc && diskcache_has_folders(dc), offline = false;
	unsigned bg =
		o->connections >= 3 ? o->connections - 2 : o->connections - 1;
	enum store_imap_start how = STORE_IMAP_CONNECT;
	struct store *st, *cst;
	char **names = NULL;
	bool all = false;

	if (o->offline && !cached) {
		snprintf(err, errlen,
			 "-o offline: there is no disk cache of this account "
			 "to serve");
		diskcache_close(dc);
		return NULL;
	}
	if (o->offline)
		how = STORE_IMAP_NO_CONNECT;
	else if (cached)
		how = STORE_IMAP_MAY_BE_OFFLINE;
	st = store_imap_start(cfg, o->connections, how, &offline, err, errlen);
	if (!st || !dc) {
		diskcache_close(dc);
		return st;
	}
	if (o->offline)
		fprintf(stderr, "mailfs: -o offline: serving the disk cache "
				"only\n");
	else if (offline)
		fprintf(stderr,
			"mailfs: warning: %s; mounting offline from the disk "
			"cache\n",
			err);
	if (o->prefetch && prefetch_parse(o->prefetch, &names, &all) < 0)
		names = NULL;
	cst = store_cache_new(st, dc, offline, o->offline, names, all, bg,
			      o->refresh);
	if (!cst) {
		prefetch_free_names(names);
		diskcache_close(dc);
		st->ops->destroy(st);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	main_journal(o, cst, dc);
	return cst;
}

/* Makes the IMAP store; its first session logs in here. */
static struct store *main_imap_store(const struct opts *o,
				     struct imap_config *cfg,
				     struct main_secret *ms,
				     struct net_tls_ctx *tls, char *err,
				     size_t errlen)
{
	cfg->host = o->url.host;
	cfg->port = o->url.port;
	cfg->user = o->url.user;
	cfg->auth = o->auth;
	cfg->credential = (struct sasl_credential){main_credential, ms};
	cfg->tls = o->url.tls == OPTS_TLS_IMPLICIT   ? IMAP_TLS_IMPLICIT
		   : o->url.tls == OPTS_TLS_STARTTLS ? IMAP_TLS_STARTTLS
						     : IMAP_TLS_NONE;
	cfg->tls_ctx = tls;
	cfg->timeout_ms = (int)o->timeout * 1000;
	cfg->trace = o->debug;
	cfg->max_literal = STORE_MAX_PIECE + 64 * 1024;
	cfg->compress = o->compress;
	if (!o->disk_cache)
		return store_imap_new(cfg, o->connections, err, errlen);
	return main_cached_store(o, cfg, err, errlen);
}

/* The port, for the store's name, when it is not the scheme's default. */
static const char *main_pop3_port(const struct opts *o)
{
	const char *def = o->url.tls == OPTS_TLS_IMPLICIT ? "995" : "110";

	return strcmp(o->url.port, def) ? o->url.port : NULL;
}

/* Makes the POP3 store over its local directory; logs in once. */
static struct store *main_pop3_store(const struct opts *o,
				     struct pop3_config *cfg,
				     struct main_secret *ms,
				     struct net_tls_ctx *tls, char *err,
				     size_t errlen)
{
	struct store *st;
	char *dir;

	cfg->host = o->url.host;
	cfg->port = o->url.port;
	cfg->user = o->url.user;
	cfg->auth = o->auth;
	cfg->credential = (struct sasl_credential){main_credential, ms};
	cfg->tls = o->url.tls == OPTS_TLS_IMPLICIT   ? POP3_TLS_IMPLICIT
		   : o->url.tls == OPTS_TLS_STARTTLS ? POP3_TLS_STLS
						     : POP3_TLS_NONE;
	cfg->tls_ctx = tls;
	cfg->timeout_ms = (int)o->timeout * 1000;
	cfg->trace = o->debug;
	dir = o->store_dir ? strdup(o->store_dir)
			   : store_pop3_default_dir(o->url.user, o->url.host,
						    main_pop3_port(o));
	if (!dir) {
		snprintf(err, errlen,
			 "no place for the local store: set "
			 "HOME, XDG_DATA_HOME or -o store=DIR");
		return NULL;
	}
	st = store_pop3_new(cfg, dir, !o->pop3_delete, o->refresh, err, errlen);
	free(dir);
	return st;
}

/*
 * Refuses a mount point that is already mounted on (an autofs trigger
 * directory is not busy) and, unless -o nonempty, one that holds files:
 * mounting over either hides what is there. Returns 0 or -1 after one
 * line on stderr.
 */
static int main_check_mountpoint(const struct opts *o)
{
	struct dirent *e;
	DIR *d;

	if (mountlock_is_mounted(0, o->mountpoint, "autofs")) {
		fprintf(stderr, "mailfs: %s is already a mount point\n",
			o->mountpoint);
		return -1;
	}
	if (o->nonempty)
		return 0;
	d = opendir(o->mountpoint);
	if (!d) {
		fprintf(stderr, "mailfs: mount point %s: %s\n", o->mountpoint,
			strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) &&
	       (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")))
		;
	closedir(d);
	if (e) {
		fprintf(stderr,
			"mailfs: mount point %s is not empty (-o nonempty "
			"mounts over it all the same)\n",
			o->mountpoint);
		return -1;
	}
	return 0;
}

/*
 * Names the mount after its account, so that findmnt and df tell
 * accounts apart: fsname is the URL (it never holds a password: those
 * are refused) and the type is fuse.mailfs. Added before the command
 * line's own options, which win.
 */
static int main_name_mount(const struct opts *o, struct fuse_args *args,
			   char *name, size_t namelen)
{
	static const char *const schemes[] = {"imap", "imaps", "pop3", "pop3s"};
	int scheme = (o->url.proto == OPTS_PROTO_POP3 ? 2 : 0) +
		     (o->url.tls == OPTS_TLS_IMPLICIT);
	bool v6 = strchr(o->url.host, ':') != NULL;
	char opt[2100], *p = opt;
	size_t i;
	int rc;

	snprintf(name, namelen, "%s://%s@%s%s%s:%s", schemes[scheme],
		 o->url.user, v6 ? "[" : "", o->url.host, v6 ? "]" : "",
		 o->url.port);
	p += sprintf(p, "fsname=");
	for (i = 0; name[i] && p < opt + sizeof(opt) - 20; i++) {
		if (name[i] == ',' || name[i] == '\\')
			*p++ = '\\';
		*p++ = name[i];
	}
	strcpy(p, ",subtype=mailfs");
	/* Insert after argv[0], ahead of the command line's -o. */
	rc = fuse_opt_insert_arg(args, 1, "-o");
	if (rc == 0)
		rc = fuse_opt_insert_arg(args, 2, opt);
	return rc;
}

/* Tells systemd (Type=notify) that the mount is up, when it asks. */
static void main_notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') ||
	    (len = strlen(path)) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* an abstract socket */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) <
	    0)
		log_warnx("cannot notify systemd: %s", strerror(errno));
	close(fd);
}

/*
 * Called once, from fsloop's watcher, as soon as the mount is unmounted
 * or a signal asks mailfs to stop, while FUSE requests may still be
 * waiting on the server: every network wait ends now (a request in
 * flight fails; the sessions are closed without waiting for the
 * server), and a mailfs started meanwhile on the same cache or store
 * learns that this one is exiting and waits for it to let go.
 */
static void main_stopping(void *ctx)
{
	mountlock_announce(MOUNTLOCK_EXITING, NULL);
	net_stop_all();
	/* After the network: a READ a page being pushed waits for ends. */
	fsmount_stopping(ctx);
}

/* The mount object, with the options' settings. */
static struct fsmount *main_new_mount(const struct opts *o, const char *account)
{
	return fsmount_new(&(struct fsmount_config){
		/* POP3 listings are local and cheap: the worker's refresh
		 * decides how often the server is asked. */
		.refresh = o->url.proto == OPTS_PROTO_POP3 ? 1 : o->refresh,
		.timeout = o->timeout,
		.cache_size = o->cache_size,
		.readonly = o->readonly,
		.owner_only = o->allow_other,
		.expunge_on_delete = o->delete_mode == OPTS_DELETE_EXPUNGE,
		.maildir = o->maildir,
		.max_append = o->max_append,
		.temp_idle = o->temp_idle,
		.tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
		.account = account,
	});
}

/* The low-level FUSE session serving fs (FUSE's own options checked
 * here); NULL when they are wrong (libfuse printed why). */
static struct fsll *main_new_session(const struct opts *o,
				     struct fuse_args *args, struct fsmount *fs)
{
	struct fsll *ll;

	/* Other users see an allow_other mount: the kernel checks the
	 * owner-only modes it shows, even for what it has cached. */
	if (o->allow_other &&
	    fuse_opt_add_arg(args, "-odefault_permissions") != 0) {
		fprintf(stderr, "mailfs: out of memory\n");
		return NULL;
	}
	ll = fsll_new(args, fsnode_operations(), fs, o->timeout, fsdir_ino_path,
		      fsdir_path_ino, fs);
	/* A read-only mount stores nothing at a close: the kernel may
	 * serve cached mail without OPEN, FLUSH or RELEASE. */
	if (ll && o->readonly)
		fsll_set_no_open(ll, fsnode_sized_at_open);
	return ll;
}

/* Serves the mounted session until it ends: daemonized, the mount and
 * its store started, then stopped in the order the shutdown needs. The
 * exit status. */
static int main_serve(const struct opts *o, struct fsmount *fs, struct fsll *ll,
		      struct store *store)
{
	int rc, status = EXIT_FAILURE;

	if (fuse_daemonize(o->foreground) != 0)
		return status;
	if (!o->foreground)
		log_to_syslog();
	rc = fsmount_start(fs, ll);
	if (rc == 0 && o->url.proto == OPTS_PROTO_POP3)
		rc = store_pop3_start(store);
	else if (rc == 0 && store->inner)
		rc = store_cache_begin(store);
	if (rc < 0) {
		log_warnx("cannot start: %s", strerror(-rc));
		return status;
	}
	fsmount_ready(fs);
	mountlock_announce(MOUNTLOCK_MOUNTED, o->mountpoint);
	main_notify_ready();
	if (fsloop_run(fsll_session(ll), o->single_thread, main_stopping,
		       fs) == 0)
		status = EXIT_SUCCESS;
	/* What readers still held open: no release will come for it. */
	fsll_release_open(ll);
	/* Fast from here on: nothing waits on the network any more. The
	 * invalidation thread stops before the unmount closes the FUSE
	 * device it writes to; the store lets go of the disk cache before
	 * it closes its sessions. */
	fsmount_stop(fs);
	return status;
}

int main(int argc, char **argv)
{
	struct fuse_args args;
	struct opts o;
	struct imap_config icfg = {0};
	struct pop3_config pcfg = {0};
	struct net_tls_ctx *tls = NULL;
	struct store *store = NULL;
	struct fsmount *fs = NULL;
	struct fsll *ll = NULL;
	struct main_secret ms = {0};
	char err[512], account[1024];
	int rc, status = EXIT_FAILURE;

	/* Two malloc arenas, not one per FUSE thread: the per-message
	 * memory of big listings would otherwise fragment across a dozen
	 * of them (about 100 bytes a message more after ls -l). */
	mallopt(M_ARENA_MAX, 2);
	/* Blocks of 256 KiB and more get pages of their own, given back
	 * when freed. glibc otherwise raises that threshold to the largest
	 * block freed so far, so that libfuse's buffer of a big directory
	 * (about 200 bytes an entry) stays in the heap after each listing:
	 * a second ls -l of 100,000 messages kept 22 MB more. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);

	opts_user_env();
	rc = opts_parse(argc, argv, &o, &args);
	if (rc != 0) {
		fuse_opt_free_args(&args);
		return rc > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	}
	log_init(o.debug);
	log_timestamps(o.foreground);
	main_security_warnings(&o);
	/* Everything that needs no connection is checked first: the mount
	 * point, and every option (opts_parse() refuses unknown ones,
	 * fsll_new() bad values of FUSE's). */
	if (main_check_mountpoint(&o) < 0)
		goto free_opts;
	if (main_name_mount(&o, &args, account, sizeof(account)) < 0) {
		fprintf(stderr, "mailfs: out of memory\n");
		goto free_opts;
	}
	fs = main_new_mount(&o, account);
	if (!fs) {
		fprintf(stderr, "mailfs: out of memory\n");
		goto free_opts;
	}
	ll = main_new_session(&o, &args, fs);
	if (!ll)
		goto free_fs; /* libfuse printed why (or out of memory) */
	ms.o = &o;
	/* OAuth2 tokens are fetched at each login instead. */
	if (!sasl_auth_is_oauth(o.auth)) {
		ms.password = opts_secret_password(&o, err, sizeof(err));
		if (!ms.password) {
			fprintf(stderr, "mailfs: %s\n", err);
			goto destroy_fuse;
		}
	}
	tls = net_tls_ctx_new(o.cafile, o.insecure, err, sizeof(err));
	if (!tls) {
		fprintf(stderr, "mailfs: %s\n", err);
		goto wipe_password;
	}
	if (o.url.proto == OPTS_PROTO_IMAP)
		store = main_imap_store(&o, &icfg, &ms, tls, err, sizeof(err));
	else
		store = main_pop3_store(&o, &pcfg, &ms, tls, err, sizeof(err));
	if (!store) {
		fprintf(stderr, "mailfs: %s\n", err);
		goto free_tls;
	}
	fsmount_set_store(fs, store);
	if (fuse_session_mount(fsll_session(ll), o.mountpoint) != 0)
		goto free_store;
	status = main_serve(&o, fs, ll, store);
	/* unmount */
	mountlock_announce(MOUNTLOCK_EXITING, NULL);
	net_stop_all();
	fuse_session_unmount(fsll_session(ll));
free_store:
	store->ops->destroy(store);
free_tls:
	net_tls_ctx_free(tls);
wipe_password:
	if (ms.password)
		explicit_bzero(ms.password, strlen(ms.password));
	free(ms.password);
destroy_fuse:
	fsll_free(ll);
free_fs:
	fsmount_free(fs);
free_opts:
	opts_free(&o);
	fuse_opt_free_args(&args);
	return status;
}
