// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * main: parse the command line, log in, then mount.
 *
 * The first connection is opened and authenticated before anything is
 * mounted and before the process daemonizes, so that a wrong password,
 * an untrusted certificate or an unreachable server is reported on the
 * terminal with a non-zero exit status and nothing stays mounted.
 */
#include <errno.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsops.h"
#include "imap.h"
#include "log.h"
#include "net.h"
#include "opts.h"
#include "pop3.h"
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
	return store_imap_new(cfg, o->connections, err, errlen);
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
			   : store_pop3_default_dir(o->url.user, o->url.host);
	if (!dir) {
		snprintf(err, errlen,
			 "no place for the local store: set "
			 "HOME, XDG_DATA_HOME or -o store=DIR");
		return NULL;
	}
	st = store_pop3_new(cfg, dir, o->keep, o->refresh, err, errlen);
	free(dir);
	return st;
}

/* Serves the mount until it is unmounted or a signal arrives. */
static int main_loop(struct fuse *fuse, const struct opts *o)
{
	struct fuse_session *se = fuse_get_session(fuse);
	struct fuse_loop_config *lc;
	int rc;

	if (fuse_set_signal_handlers(se) != 0)
		return -1;
	if (o->single_thread) {
		rc = fuse_loop(fuse);
	} else {
		lc = fuse_loop_cfg_create();
		if (!lc) {
			fuse_remove_signal_handlers(se);
			return -1;
		}
		fuse_loop_cfg_set_clone_fd(lc, 0);
		fuse_loop_cfg_set_max_threads(lc, 16);
		rc = fuse_loop_mt(fuse, lc);
		fuse_loop_cfg_destroy(lc);
	}
	fuse_remove_signal_handlers(se);
	return rc;
}

int main(int argc, char **argv)
{
	struct fuse_args args;
	struct opts o;
	struct imap_config icfg = {0};
	struct pop3_config pcfg = {0};
	struct net_tls_ctx *tls = NULL;
	struct store *store = NULL;
	struct fsops *fs = NULL;
	struct fuse *fuse = NULL;
	struct main_secret ms = {0};
	char err[512];
	int rc, status = EXIT_FAILURE;

	rc = opts_parse(argc, argv, &o, &args);
	if (rc != 0) {
		fuse_opt_free_args(&args);
		return rc > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	}
	log_init(o.debug);
	main_security_warnings(&o);
	ms.o = &o;
	/* OAuth2 tokens are fetched at each login instead. */
	if (!sasl_auth_is_oauth(o.auth)) {
		ms.password = opts_password(&o, err, sizeof(err));
		if (!ms.password) {
			fprintf(stderr, "mailfs: %s\n", err);
			goto free_opts;
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
	fs = fsops_new(&(struct fsops_config){
		.store = store,
		/* POP3 listings are local and cheap: the worker's refresh
		 * decides how often the server is asked. */
		.refresh = o.url.proto == OPTS_PROTO_POP3 ? 1 : o.refresh,
		.timeout = o.timeout,
		.cache_size = o.cache_size,
		.readonly = o.readonly,
		.expunge_on_delete = o.delete_mode == OPTS_DELETE_EXPUNGE,
		.max_append = o.max_append,
		.temp_idle = o.temp_idle,
		.tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
	});
	if (!fs) {
		fprintf(stderr, "mailfs: out of memory\n");
		goto free_store;
	}
	fuse = fuse_new(&args, fsops_operations(),
			sizeof(struct fuse_operations), fs);
	if (!fuse)
		goto free_fs; /* fuse_new printed why */
	if (fuse_mount(fuse, o.mountpoint) != 0)
		goto destroy_fuse;
	if (fuse_daemonize(o.foreground) != 0)
		goto unmount;
	if (!o.foreground)
		log_to_syslog();
	rc = fsops_start(fs, fuse);
	if (rc == 0 && o.url.proto == OPTS_PROTO_POP3)
		rc = store_pop3_start(store);
	if (rc < 0) {
		log_warnx("cannot start: %s", strerror(-rc));
		goto unmount;
	}
	if (main_loop(fuse, &o) == 0)
		status = EXIT_SUCCESS;
	fsops_stop(fs);

unmount:
	fuse_unmount(fuse);
destroy_fuse:
	fuse_destroy(fuse);
free_fs:
	fsops_free(fs);
free_store:
	store->ops->destroy(store);
free_tls:
	net_tls_ctx_free(tls);
wipe_password:
	if (ms.password)
		explicit_bzero(ms.password, strlen(ms.password));
	free(ms.password);
free_opts:
	opts_free(&o);
	fuse_opt_free_args(&args);
	return status;
}
