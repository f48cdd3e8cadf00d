// SPDX-License-Identifier: GPL-2.0-or-later
/* opts: the command line and the mailbox URL; see opts.h. The password
 * and the commands that print a secret are in opts_secret.c. */
#include <ctype.h>
#include <errno.h>
#include <fuse_opt.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "account.h"
#include "opts.h"
#include "strbuf.h"
#include "prefetch.h"

enum {
	KEY_HELP,
	KEY_VERSION,
	KEY_FOREGROUND,
	KEY_DEBUG,
	KEY_SINGLE,
	KEY_RO,
	KEY_ALLOW_OTHER,
	KEY_INSECURE,
	KEY_KEEP,
	KEY_CACHE_SIZE,
	KEY_MAX_APPEND,
	KEY_DELETE,
	KEY_LAYOUT,
	KEY_POP3_DELETE,
	KEY_CONNECTIONS,
	KEY_TIMEOUT,
	KEY_REFRESH,
	KEY_TEMP_IDLE,
	KEY_NONEMPTY,
	KEY_AUTH,
	KEY_DISK_CACHE,
	KEY_OFFLINE,
	KEY_COMPRESS,
	KEY_OFFLINE_CHANGES,
};

/* State shared with the fuse_opt callback while parsing; the templates
 * below store straight into its copy of the options. */
struct opts_ctx {
	struct opts o;
	int positional;
	int error;
};

#define OPT(t, field)                                    \
	{                                                \
		t, offsetof(struct opts_ctx, o.field), 0 \
	}

static const struct fuse_opt opts_spec[] = {
	OPT("cafile=%s", cafile),
	OPT("password_command=%s", password_command),
	OPT("password_file=%s", password_file),
	OPT("oauth2_command=%s", oauth2_command),
	OPT("tls=%s", tls),
	FUSE_OPT_KEY("connections=", KEY_CONNECTIONS),
	FUSE_OPT_KEY("timeout=", KEY_TIMEOUT),
	FUSE_OPT_KEY("refresh=", KEY_REFRESH),
	FUSE_OPT_KEY("temp_idle=", KEY_TEMP_IDLE),
	OPT("store=%s", store_dir),
	FUSE_OPT_KEY("cache_size=", KEY_CACHE_SIZE),
	FUSE_OPT_KEY("disk_cache=", KEY_DISK_CACHE),
	FUSE_OPT_KEY("offline", KEY_OFFLINE),
	FUSE_OPT_KEY("compress=", KEY_COMPRESS),
	FUSE_OPT_KEY("offline_changes=", KEY_OFFLINE_CHANGES),
	OPT("prefetch=%s", prefetch),
	FUSE_OPT_KEY("max_append=", KEY_MAX_APPEND),
	FUSE_OPT_KEY("delete=", KEY_DELETE),
	FUSE_OPT_KEY("layout=", KEY_LAYOUT),
	FUSE_OPT_KEY("auth=", KEY_AUTH),
	FUSE_OPT_KEY("insecure", KEY_INSECURE),
	FUSE_OPT_KEY("keep", KEY_KEEP),
	FUSE_OPT_KEY("pop3_delete", KEY_POP3_DELETE),
	FUSE_OPT_KEY("nonempty", KEY_NONEMPTY),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("-f", KEY_FOREGROUND),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("-s", KEY_SINGLE),
	FUSE_OPT_END,
};

static const char opts_usage[] =
	"usage: mailfs [options] URL MOUNTPOINT\n"
	"       mailfs [options] NAME [MOUNTPOINT]\n"
	"\n"
	"NAME is an account of ~/.config/mailfs/config ($XDG_CONFIG_HOME).\n"
	"URL is one of\n"
	"  imaps://USER@HOST[:PORT]   IMAP over TLS (port 993)\n"
	"  imap://USER@HOST[:PORT]    IMAP with STARTTLS (port 143)\n"
	"  pop3s://USER@HOST[:PORT]   POP3 over TLS (port 995)\n"
	"  pop3://USER@HOST[:PORT]    POP3 with STLS (port 110)\n"
	"USER may be percent-encoded (me%40example.org).\n"
	"\n"
	"options:\n"
	"  -h, --help               print this help and exit\n"
	"  -V, --version            print the version and exit\n"
	"  -f                       stay in the foreground\n"
	"  -d                       debug: foreground, protocol trace on "
	"stderr\n"
	"                           (credentials are never shown)\n"
	"  -s                       single-threaded\n"
	"  -o cafile=PATH           trust the CA certificates in PATH (PEM)\n"
	"  -o insecure              do not verify the server's certificate\n"
	"  -o tls=none              imap:// or pop3:// in cleartext: no TLS,\n"
	"                           not even STARTTLS (refused with imaps://)\n"
	"  -o password_command=CMD  password is the first line CMD prints\n"
	"  -o password_file=PATH    password is the first line of PATH\n"
	"                           (must not be readable by group/others)\n"
	"  -o auth=WAY              how to log in: plain (SASL PLAIN), login\n"
	"                           (IMAP LOGIN, POP3 USER/PASS), xoauth2 or\n"
	"                           oauthbearer (OAuth2: oauth2_command);\n"
	"                           default: PLAIN when offered, else login\n"
	"  -o oauth2_command=CMD    the access token is the first line CMD\n"
	"                           prints; run again at every login\n"
	"  -o connections=N         IMAP connections to use (default 4)\n"
	"  -o timeout=SECONDS       bound of every network wait (default 30)\n"
	"  -o cache_size=BYTES      memory for message bodies, K/M/G suffixes\n"
	"                           allowed (default 64M)\n"
	"  -o disk_cache=BYTES      IMAP: disk for the persistent cache of\n"
	"                           listings and bodies (default 1G, 0: none)\n"
	"                           in $XDG_CACHE_HOME/mailfs\n"
	"  -o offline               IMAP: serve what the disk cache holds\n"
	"  -o offline_changes=yes|no  IMAP: keep changes made offline in the\n"
	"                           disk cache and send them when the\n"
	"                           server is back (default yes); no: EROFS\n"
	"  -o prefetch=F[:F...]     IMAP: fill the disk cache with folders\n"
	"                           (as the mount shows them; %XX for : , %)\n"
	"                           in the background; prefetch=all: all\n"
	"  -o compress=yes|no       IMAP: COMPRESS=DEFLATE when the server\n"
	"                           offers it (default yes)\n"
	"  -o refresh=SECONDS       how stale a listing may get (default 30,\n"
	"                           60 for POP3)\n"
	"  -o ro                    mount read-only\n"
	"  -o delete=trash|expunge  what rm does (default trash)\n"
	"  -o layout=default|maildir  maildir: every folder a Maildir (cur/,\n"
	"                           new/, tmp/) for mutt, notmuch, mu (IMAP)\n"
	"  -o max_append=BYTES      largest message to create (default: the\n"
	"                           server's APPENDLIMIT)\n"
	"  -o temp_idle=SECONDS     discard a temporary file (.NAME) left\n"
	"                           unused this long (default 3600)\n"
	"  -o store=DIR             POP3: where downloaded mail is kept\n"
	"  -o pop3_delete           POP3: delete from the server what is "
	"safely\n"
	"                           stored here (default: keep it there)\n"
	"  -o nonempty              mount over a non-empty directory\n"
	"Without password options, $MAILFS_PASSWORD is used, else a prompt.\n"
	"Secrets are never taken from the command line.\n"
	"Other -o options are FUSE's (see mount.fuse3(8)). With allow_other,\n"
	"other users see the mount, but only its owner (and root) may use "
	"it.\n";

/* Turns a value into an absolute path, so that it survives the chdir("/")
 * of daemonizing. Returns 0 or -1 (errno set). */
static int opts_absolute(char **path)
{
	char *abs;

	if (!*path || (*path)[0] == '/')
		return 0;
	abs = realpath(*path, NULL);
	if (!abs)
		return -1;
	free(*path);
	*path = abs;
	return 0;
}

/* A decimal count for an option: digits only, below UINT_MAX. */
static bool opts_parse_count(const char *text, unsigned *n_r)
{
	unsigned long v;
	char *end;

	if (*text < '0' || *text > '9')
		return false;
	errno = 0;
	v = strtoul(text, &end, 10);
	if (*end || errno || v >= UINT_MAX)
		return false;
	*n_r = (unsigned)v;
	return true;
}

/* Parses the value of -o auth=. Returns 0, or -1 for an unknown word. */
static int opts_parse_auth(const char *text, enum sasl_auth *auth_r)
{
	static const enum sasl_auth ways[] = {
		SASL_AUTH_PLAIN,
		SASL_AUTH_LOGIN,
		SASL_AUTH_XOAUTH2,
		SASL_AUTH_OAUTHBEARER,
	};
	size_t i;

	for (i = 0; i < sizeof(ways) / sizeof(ways[0]); i++) {
		if (strcmp(text, sasl_auth_name(ways[i])) == 0) {
			*auth_r = ways[i];
			return 0;
		}
	}
	return -1;
}

/*
 * What libfuse 3.14 takes itself in fuse_session_new() (the tables of its
 * lib/fuse_lowlevel.c and lib/mount.c): '=' ends those with a value.
 * Anything else it refuses with a bare "unknown option(s)", so mailfs
 * refuses it first, naming the closest option (opts_refuse_unknown()).
 */
static const char *const opts_fuse_keys[] = {
	"allow_other",	"allow_root", "auto_unmount", "default_permissions",
	"blkdev",	"fsname=",    "subtype=",     "max_read=",
	"blksize=",	"context=",   "fscontext=",   "defcontext=",
	"rootcontext=", "user=",      "rw",	      "ro",
	"suid",		"nosuid",     "dev",	      "nodev",
	"exec",		"noexec",     "atime",	      "noatime",
	"sync",		"async",      "dirsync",      "debug",
	"--debug",	"-r",	      "-n",	      NULL,
};

/* mount(8)'s own options, which a config file may repeat from an fstab
 * line: mount.fuse3 keeps them from mailfs there. */
static const char *const opts_mount_keys[] = {
	"user", "users", "nouser", "_netdev", "auto", "noauto", "nofail", NULL,
};

/* Other mount(8) options a config file has always been allowed to hold
 * (libfuse refuses them all the same). */
static const char *const opts_config_keys[] = {
	"diratime", "nodiratime", "relatime", "norelatime", "strictatime", NULL,
};

/* The i-th option the command line takes, mailfs's own then libfuse's, as
 * a template ("cafile=%s", "connections=", "insecure", "-f"); NULL past
 * the last. */
static const char *opts_cmdline_option(size_t i)
{
	size_t n = sizeof(opts_spec) / sizeof(opts_spec[0]) - 1;

	return i < n ? opts_spec[i].templ : opts_fuse_keys[i - n];
}

/* The length of a template's option name (up to its '='). */
static size_t opts_name_len(const char *templ)
{
	return strcspn(templ, "=");
}

/* True when libfuse takes arg (an argument mailfs's templates did not
 * match): its key with a value where the template has '=', else the
 * whole word. */
static bool opts_fuse_takes(const char *arg)
{
	size_t i;

	for (i = 0; opts_fuse_keys[i]; i++) {
		const char *k = opts_fuse_keys[i];
		size_t n = strlen(k);

		if (k[n - 1] == '=' ? !strncmp(arg, k, n) : !strcmp(arg, k))
			return true;
	}
	return false;
}

/* The edit distance of a and b (see opts.h). */
unsigned opts_edit_distance(const char *a, const char *b)
{
	/* Three rows of the optimal string alignment distance: the
	 * Levenshtein distance plus swaps of two neighbours. */
	unsigned rows[3][OPTS_NAME_MAX + 1], *prev2 = rows[0], *prev = rows[1],
					     *cur = rows[2];
	size_t la = strlen(a), lb = strlen(b), i, j;

	if (la > OPTS_NAME_MAX || lb > OPTS_NAME_MAX)
		return UINT_MAX;
	for (j = 0; j <= lb; j++)
		prev[j] = (unsigned)j;
	for (i = 1; i <= la; i++) {
		unsigned *t;

		cur[0] = (unsigned)i;
		for (j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] != b[j - 1], d;

			d = prev[j - 1] + cost;
			if (prev[j] + 1 < d)
				d = prev[j] + 1;
			if (cur[j - 1] + 1 < d)
				d = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < d)
				d = prev2[j - 2] + 1;
			cur[j] = d;
		}
		t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	return prev[lb];
}

/* The known option closest to key, when close enough to be meant (see
 * opts.h). */
bool opts_suggest(const char *key, char *buf, size_t len)
{
	/* At most a third of the letters wrong (one in a word of four or
	 * five, none in a shorter one, "-z" being no typo of "-h"): farther
	 * than that, a "did you mean" misleads more than it helps. */
	size_t klen = strlen(key), i;
	unsigned limit = klen < 4   ? 0
			 : klen < 6 ? 1
				    : (unsigned)(klen / 3),
		 best = UINT_MAX;
	const char *t, *found = NULL;
	char name[OPTS_NAME_MAX + 1];

	for (i = 0; (t = opts_cmdline_option(i)); i++) {
		size_t n = opts_name_len(t);
		unsigned d;

		if ((t[0] == '-') != (key[0] == '-') || n > OPTS_NAME_MAX)
			continue;
		memcpy(name, t, n);
		name[n] = '\0';
		d = opts_edit_distance(key, name);
		if (d <= limit && d < best) {
			best = d;
			found = t;
		}
	}
	if (!found || opts_name_len(found) >= len)
		return false;
	snprintf(buf, len, "%.*s", (int)opts_name_len(found), found);
	return true;
}

/*
 * Says why an argument that neither mailfs nor libfuse takes is refused:
 * one of mount(8), a known option without the value it needs (or with
 * one it does not take), else an unknown one with the closest known
 * name, if one is close. libfuse would only say "unknown option(s)".
 */
static void opts_refuse_unknown(const char *arg)
{
	size_t n = opts_name_len(arg);
	char key[OPTS_NAME_MAX + 1], near[OPTS_NAME_MAX + 1];
	const char *t;
	size_t i;

	snprintf(key, sizeof(key), "%.*s", (int)n, arg);
	for (i = 0; opts_mount_keys[i]; i++) {
		if (!strcmp(opts_mount_keys[i], key)) {
			fprintf(stderr,
				"mailfs: -o %s is an option of mount(8) (an "
				"fstab line), not of mailfs\n",
				key);
			return;
		}
	}
	for (i = 0; n <= OPTS_NAME_MAX && (t = opts_cmdline_option(i)); i++) {
		if (opts_name_len(t) != n || strncmp(t, arg, n) != 0)
			continue;
		if (t[n] == '=')
			fprintf(stderr,
				"mailfs: -o %s needs a value (-o %s=...)\n",
				key, key);
		else
			fprintf(stderr, "mailfs: -o %s takes no value\n", key);
		return;
	}
	if (opts_suggest(key, near, sizeof(near)))
		fprintf(stderr,
			"mailfs: unknown option '%s' (did you mean '%s'?)\n",
			key, near);
	else
		fprintf(stderr,
			"mailfs: unknown option '%s' (mailfs --help lists "
			"them)\n",
			key);
}

/*
 * Takes the value of an option that is one of a few words (delete=,
 * layout=, compress=, auth=). Returns 0, or -1 after saying which words
 * the option takes.
 */
static int opts_word(struct opts *o, int key, const char *val)
{
	switch (key) {
	case KEY_DELETE:
		if (strcmp(val, "trash") && strcmp(val, "expunge")) {
			fprintf(stderr,
				"mailfs: -o delete= takes trash or expunge\n");
			return -1;
		}
		o->delete_mode = strcmp(val, "trash") == 0
					 ? OPTS_DELETE_TRASH
					 : OPTS_DELETE_EXPUNGE;
		return 0;
	case KEY_LAYOUT:
		if (strcmp(val, "default") && strcmp(val, "maildir")) {
			fprintf(stderr, "mailfs: -o layout= takes default or "
					"maildir\n");
			return -1;
		}
		o->maildir = strcmp(val, "maildir") == 0;
		return 0;
	case KEY_COMPRESS:
	case KEY_OFFLINE_CHANGES:
		if (strcmp(val, "yes") && strcmp(val, "no")) {
			fprintf(stderr, "mailfs: -o %s= takes yes or no\n",
				key == KEY_COMPRESS ? "compress"
						    : "offline_changes");
			return -1;
		}
		if (key == KEY_COMPRESS)
			o->compress = strcmp(val, "yes") == 0;
		else
			o->offline_changes = strcmp(val, "yes") == 0;
		return 0;
	default:
		if (opts_parse_auth(val, &o->auth) < 0) {
			fprintf(stderr, "mailfs: -o auth= takes plain, login, "
					"xoauth2 or oauthbearer\n");
			return -1;
		}
		return 0;
	}
}

/*
 * fuse_opt callback: handles the keyed options and positional arguments.
 * Returns 0 to drop the argument, 1 to keep it for FUSE, -1 to stop.
 */
static int opts_proc(void *data, const char *arg, int key,
		     struct fuse_args *outargs)
{
	struct opts_ctx *ctx = data;
	struct opts *o = &ctx->o;
	const char *val = strchr(arg, '=');

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (ctx->positional == 0)
			o->url_text = strdup(arg);
		else if (ctx->positional == 1)
			o->mountpoint = strdup(arg);
		else {
			fprintf(stderr, "mailfs: unexpected argument '%s'\n",
				arg);
			ctx->error = 1;
			return -1;
		}
		ctx->positional++;
		return 0;
	case KEY_HELP:
		fputs(opts_usage, stdout);
		ctx->error = 2;
		return -1;
	case KEY_VERSION:
		printf("mailfs %s\n", MAILFS_VERSION);
		ctx->error = 2;
		return -1;
	case KEY_FOREGROUND:
		o->foreground = true;
		return 0;
	case KEY_DEBUG:
		o->debug = true;
		o->foreground = true;
		return 0;
	case KEY_SINGLE:
		o->single_thread = true;
		return 0;
	case KEY_RO:
		o->readonly = true;
		return 1; /* the kernel enforces it too */
	case KEY_ALLOW_OTHER:
		o->allow_other = true;
		return 1; /* FUSE's too */
	case KEY_INSECURE:
		o->insecure = true;
		return 0;
	case KEY_KEEP:
		return 0; /* the default now; still accepted */
	case KEY_POP3_DELETE:
		o->pop3_delete = true;
		return 0;
	case KEY_NONEMPTY:
		o->nonempty = true;
		return 0; /* libfuse 3 refuses it: mailfs checks itself */
	case KEY_OFFLINE:
		o->offline = true;
		return 0;
	case KEY_CACHE_SIZE:
	case KEY_MAX_APPEND:
	case KEY_DISK_CACHE:
		if (!opts_parse_size(val + 1, key == KEY_CACHE_SIZE
						      ? &o->cache_size
					      : key == KEY_DISK_CACHE
						      ? &o->disk_cache
						      : &o->max_append)) {
			fprintf(stderr, "mailfs: bad size in -o %s\n", arg);
			ctx->error = 1;
			return -1;
		}
		return 0;
	case KEY_CONNECTIONS:
	case KEY_TIMEOUT:
	case KEY_REFRESH:
	case KEY_TEMP_IDLE:
		if (!opts_parse_count(val + 1,
				      key == KEY_CONNECTIONS ? &o->connections
				      : key == KEY_TIMEOUT   ? &o->timeout
				      : key == KEY_REFRESH   ? &o->refresh
							     : &o->temp_idle)) {
			fprintf(stderr, "mailfs: -o %s: not a whole number\n",
				arg);
			ctx->error = 1;
			return -1;
		}
		return 0;
	case KEY_DELETE:
	case KEY_LAYOUT:
	case KEY_COMPRESS:
	case KEY_OFFLINE_CHANGES:
	case KEY_AUTH:
		if (opts_word(o, key, val + 1) < 0) {
			ctx->error = 1;
			return -1;
		}
		return 0;
	default:
		if (opts_fuse_takes(arg))
			return 1; /* FUSE's own option */
		opts_refuse_unknown(arg);
		ctx->error = 1;
		return -1;
	}
}

/* Checks that the ways of getting a secret fit -o auth=. Returns 0 or
 * -1 after printing why. */
static int opts_validate_auth(const struct opts *o)
{
	bool oauth = sasl_auth_is_oauth(o->auth);

	if (oauth && !o->oauth2_command) {
		fprintf(stderr,
			"mailfs: -o auth=%s needs -o oauth2_command=CMD, a "
			"command that prints an access token\n",
			sasl_auth_name(o->auth));
		return -1;
	}
	if (!oauth && o->oauth2_command) {
		fprintf(stderr, "mailfs: -o oauth2_command needs -o "
				"auth=xoauth2 or -o auth=oauthbearer\n");
		return -1;
	}
	if (oauth && (o->password_command || o->password_file)) {
		fprintf(stderr,
			"mailfs: -o auth=%s takes the access token from "
			"oauth2_command, not from password_command or "
			"password_file\n",
			sasl_auth_name(o->auth));
		return -1;
	}
	return 0;
}

/* Checks the parsed options against each other and fills the defaults
 * that depend on the URL. Returns 0 or -1 after printing why. */
static int opts_validate(struct opts *o)
{
	struct stat st;
	char err[256];

	if (!o->url_text || !o->mountpoint) {
		fprintf(stderr, "mailfs: need a URL and a mount point "
				"(mailfs --help)\n");
		return -1;
	}
	if (opts_parse_url(o->url_text, &o->url, err, sizeof(err)) < 0) {
		fprintf(stderr, "mailfs: %s\n", err);
		return -1;
	}
	if (o->tls) {
		if (strcmp(o->tls, "none") != 0) {
			fprintf(stderr, "mailfs: -o tls= takes only 'none'\n");
			return -1;
		}
		if (o->url.tls == OPTS_TLS_IMPLICIT) {
			fprintf(stderr, "mailfs: -o tls=none contradicts "
					"an imaps:// or pop3s:// URL\n");
			return -1;
		}
		o->url.tls = OPTS_TLS_NONE;
	}
	if (opts_validate_auth(o) < 0)
		return -1;
	if (o->connections < 1 || o->connections > 64) {
		fprintf(stderr, "mailfs: connections must be 1 to 64\n");
		return -1;
	}
	if (o->timeout < 1 || o->timeout > 3600) {
		fprintf(stderr, "mailfs: timeout must be 1 to 3600 seconds\n");
		return -1;
	}
	if (o->cache_size < 1024 * 1024) {
		fprintf(stderr, "mailfs: cache_size must be at least 1M\n");
		return -1;
	}
	if (o->url.proto == OPTS_PROTO_POP3 && (o->offline || o->prefetch)) {
		fprintf(stderr, "mailfs: -o offline and -o prefetch are for "
				"IMAP accounts (POP3 keeps its local store)\n");
		return -1;
	}
	if (o->prefetch) {
		char **names;
		bool all;

		if (prefetch_parse(o->prefetch, &names, &all) < 0) {
			fprintf(stderr,
				"mailfs: -o prefetch=%s: an empty "
				"folder name or a bad %%XX escape\n",
				o->prefetch);
			return -1;
		}
		prefetch_free_names(names);
	}
	if ((o->offline || o->prefetch) && o->disk_cache == 0) {
		fprintf(stderr, "mailfs: -o offline and -o prefetch need the "
				"disk cache (disk_cache=0 turns it off)\n");
		return -1;
	}
	if (o->refresh == UINT_MAX)
		o->refresh = o->url.proto == OPTS_PROTO_POP3 ? 60 : 30;
	if (o->maildir && o->url.proto == OPTS_PROTO_POP3) {
		fprintf(stderr, "mailfs: -o layout=maildir is for IMAP "
				"accounts\n");
		return -1;
	}
	if (opts_absolute(&o->mountpoint) < 0 || stat(o->mountpoint, &st) < 0) {
		fprintf(stderr, "mailfs: mount point %s: %s\n", o->mountpoint,
			strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "mailfs: mount point %s is not a directory\n",
			o->mountpoint);
		return -1;
	}
	if (opts_absolute(&o->cafile) < 0) {
		fprintf(stderr, "mailfs: cafile %s: %s\n", o->cafile,
			strerror(errno));
		return -1;
	}
	if (opts_absolute(&o->password_file) < 0) {
		fprintf(stderr, "mailfs: password_file %s: %s\n",
			o->password_file, strerror(errno));
		return -1;
	}
	if (o->store_dir && o->store_dir[0] != '/') {
		char cwd[PATH_MAX], *abs;

		/* The store may not exist yet: no realpath(). */
		if (!getcwd(cwd, sizeof(cwd)) ||
		    asprintf(&abs, "%s/%s", cwd, o->store_dir) < 0) {
			fprintf(stderr, "mailfs: store %s: %s\n", o->store_dir,
				strerror(errno));
			return -1;
		}
		free(o->store_dir);
		o->store_dir = abs;
	}
	return 0;
}

/* Whether key is an option mailfs, libfuse or mount(8) knows (see
 * opts.h). */
bool opts_known_key(const char *key)
{
	size_t i, n = strlen(key);
	const char *t;

	for (i = 0; (t = opts_cmdline_option(i)); i++)
		if (t[0] != '-' && opts_name_len(t) == n && !strncmp(t, key, n))
			return true;
	for (i = 0; opts_mount_keys[i]; i++)
		if (!strcmp(opts_mount_keys[i], key))
			return true;
	for (i = 0; opts_config_keys[i]; i++)
		if (!strcmp(opts_config_keys[i], key))
			return true;
	/* mount(8)'s options for its helpers: x-systemd.automount... */
	return !strncmp(key, "x-", 2);
}

/* The positions of the first two arguments that are no options. */
static void opts_positionals(int argc, char **argv, int pos[2])
{
	int i, n = 0;

	pos[0] = pos[1] = -1;
	for (i = 1; i < argc && n < 2; i++) {
		if (!strcmp(argv[i], "-o")) {
			i++;
			continue;
		}
		if (argv[i][0] != '-')
			pos[n++] = i;
	}
}

/*
 * `mailfs NAME [MOUNTPOINT]`: rewrites the arguments as the account's
 * options, then the command line's (which win, coming later), with the
 * account's URL (and mount point, if none is given). Leaves args as they
 * are when the first argument is a URL. Returns 0 or -1 after printing
 * why.
 */
static int opts_account_args(int argc, char **argv, struct fuse_args *out)
{
	struct account a;
	char err[512], *path;
	int pos[2], i, rc = 0;
	size_t k;

	opts_positionals(argc, argv, pos);
	if (pos[0] < 0 || strstr(argv[pos[0]], "://"))
		return 0;
	path = account_config_path();
	if (!path) {
		fprintf(stderr,
			"mailfs: account '%s': set HOME or "
			"XDG_CONFIG_HOME\n",
			argv[pos[0]]);
		return -1;
	}
	if (account_load(path, argv[pos[0]], opts_known_key, &a, err,
			 sizeof(err)) < 0) {
		fprintf(stderr, "mailfs: %s\n", err);
		free(path);
		return -1;
	}
	free(path);
	if (pos[1] < 0 && !a.mountpoint) {
		fprintf(stderr,
			"mailfs: account '%s' has no mountpoint: "
			"give one\n",
			argv[pos[0]]);
		account_free(&a);
		return -1;
	}
	rc |= fuse_opt_add_arg(out, argv[0]);
	for (k = 0; k < a.n_opts; k++) {
		rc |= fuse_opt_add_arg(out, "-o");
		rc |= fuse_opt_add_arg(out, a.opts[k]);
	}
	for (i = 1; i < argc; i++)
		rc |= fuse_opt_add_arg(out, i == pos[0] ? a.url : argv[i]);
	if (pos[1] < 0)
		rc |= fuse_opt_add_arg(out, a.mountpoint);
	account_free(&a);
	if (rc) {
		fprintf(stderr, "mailfs: out of memory\n");
		return -1;
	}
	return 0;
}

/*
 * Takes $MAILFS_PASSWORD out of the environment at once, whichever
 * source the password comes from: wiped where it lies (/proc/PID/environ
 * shows that memory) and removed, so that no child (password_command,
 * oauth2_command) inherits it.
 */
static void opts_take_env_password(struct opts *o)
{
	char *env = getenv("MAILFS_PASSWORD");

	if (!env)
		return;
	o->env_password = strdup(env);
	explicit_bzero(env, strlen(env));
	unsetenv("MAILFS_PASSWORD");
}

/*
 * True when path, or the nearest of its ancestors that exists (a cache
 * directory not made yet), belongs to uid. A relative path never does
 * (the XDG variables must be absolute).
 */
static bool opts_owned_path(const char *path, uid_t uid)
{
	char *p = path[0] == '/' ? strdup(path) : NULL, *slash;
	struct stat st;
	bool owned = false;

	while (p) {
		if (stat(p, &st) == 0) {
			owned = st.st_uid == uid;
			break;
		}
		slash = strrchr(p, '/');
		if (errno != ENOENT || !slash)
			break;
		if (slash == p)
			slash[1] = '\0'; /* "/" itself, next */
		else
			*slash = '\0';
	}
	free(p);
	return owned;
}

/* Makes HOME and the XDG directories the user's (see opts.h). */
void opts_user_env(void)
{
	static const char *const xdg[] = {"XDG_CONFIG_HOME", "XDG_CACHE_HOME",
					  "XDG_DATA_HOME"};
	const char *home = getenv("HOME");
	uid_t uid = getuid();
	struct stat st;
	size_t i;

	if (!home || home[0] != '/' || stat(home, &st) < 0 ||
	    st.st_uid != uid) {
		struct passwd *pw = getpwuid(uid);

		if (pw && pw->pw_dir && pw->pw_dir[0] == '/')
			setenv("HOME", pw->pw_dir, 1);
		else
			unsetenv("HOME");
	}
	for (i = 0; i < sizeof(xdg) / sizeof(xdg[0]); i++) {
		const char *v = getenv(xdg[i]);

		if (v && !opts_owned_path(v, uid))
			unsetenv(xdg[i]);
	}
}

/* Parses the command line into o and fargs (see opts.h). */
int opts_parse(int argc, char **argv, struct opts *o, struct fuse_args *fargs)
{
	struct opts_ctx ctx = {0};
	struct fuse_args acct = FUSE_ARGS_INIT(0, NULL);
	int rc;

	fargs->argc = argc;
	fargs->argv = argv;
	fargs->allocated = 0;
	if (opts_account_args(argc, argv, &acct) < 0) {
		fuse_opt_free_args(&acct);
		return -1;
	}
	if (acct.argc)
		*fargs = acct;

	ctx.o.connections = 4;
	ctx.o.timeout = 30;
	ctx.o.cache_size = 64ull * 1024 * 1024;
	ctx.o.disk_cache = 1024ull * 1024 * 1024;
	ctx.o.refresh = UINT_MAX;
	ctx.o.temp_idle = 3600;
	ctx.o.compress = true;
	ctx.o.offline_changes = true;
	rc = fuse_opt_parse(fargs, &ctx, opts_spec, opts_proc);
	*o = ctx.o;
	if (rc < 0) {
		/* Freed here: the caller returns at once (main did so
		 * without freeing it, a leak LeakSanitizer found). */
		opts_free(o);
		if (ctx.error == 2)
			return 1;
		if (!ctx.error)
			fprintf(stderr, "mailfs: cannot parse the options\n");
		return -1;
	}
	opts_take_env_password(o);
	if (opts_validate(o) < 0) {
		opts_free(o);
		return -1;
	}
	return 0;
}

/* Frees what a parsed URL owns and clears it. */
void opts_url_free(struct opts_url *url)
{
	free(url->user);
	free(url->host);
	free(url->port);
	memset(url, 0, sizeof(*url));
}

/* Frees what o owns and clears it. */
void opts_free(struct opts *o)
{
	opts_url_free(&o->url);
	free(o->url_text);
	free(o->mountpoint);
	free(o->cafile);
	if (o->env_password) {
		explicit_bzero(o->env_password, strlen(o->env_password));
		free(o->env_password);
	}
	free(o->password_command);
	free(o->password_file);
	free(o->oauth2_command);
	free(o->tls);
	free(o->store_dir);
	free(o->prefetch);
	memset(o, 0, sizeof(*o));
}

/* Percent-decodes [s, s+len) into a new string; NULL on a bad escape or
 * a decoded NUL or control character. */
static char *opts_pct_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1);
	size_t i, j = 0;

	if (!out)
		return NULL;
	for (i = 0; i < len; i++) {
		unsigned char c = s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= len)
				goto fail;
			hi = strbuf_hex_value((unsigned char)s[i + 1]);
			lo = strbuf_hex_value((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				goto fail;
			c = hi * 16 + lo;
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			goto fail;
		out[j++] = c;
	}
	out[j] = '\0';
	return out;
fail:
	free(out);
	return NULL;
}

/* True when the URL holds a password (USER:PASSWORD@HOST). */
static bool opts_url_has_password(const char *text)
{
	const char *p = strstr(text, "://"), *at;

	at = p ? strrchr(p + 3, '@') : NULL;
	return at && memchr(p + 3, ':', (size_t)(at - p - 3));
}

/* Takes the scheme off text: *proto_r, *tls_r and the default *port_r
 * of the scheme, and where the rest starts; NULL for another scheme. */
static const char *opts_url_scheme(const char *text, enum opts_proto *proto_r,
				   enum opts_tls *tls_r, const char **port_r)
{
	static const struct {
		const char *scheme;
		enum opts_proto proto;
		enum opts_tls tls;
		const char *port;
	} schemes[] = {
		{"imaps://", OPTS_PROTO_IMAP, OPTS_TLS_IMPLICIT, "993"},
		{"imap://", OPTS_PROTO_IMAP, OPTS_TLS_STARTTLS, "143"},
		{"pop3s://", OPTS_PROTO_POP3, OPTS_TLS_IMPLICIT, "995"},
		{"pop3://", OPTS_PROTO_POP3, OPTS_TLS_STARTTLS, "110"},
	};
	size_t i;

	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t n = strlen(schemes[i].scheme);

		if (strncasecmp(text, schemes[i].scheme, n) == 0) {
			*proto_r = schemes[i].proto;
			*tls_r = schemes[i].tls;
			*port_r = schemes[i].port;
			return text + n;
		}
	}
	return NULL;
}

/* Parses the port after the host, [host_end, end) (empty: port, the
 * scheme's), into u->port. Returns 0, or -1 with err filled. */
static int opts_url_port(const char *text, const char *host_end,
			 const char *end, const char *port, struct opts_url *u,
			 char *err, size_t errlen)
{
	if (host_end < end) {
		unsigned long n;
		char *stop;

		if (*host_end != ':' || host_end + 1 == end) {
			snprintf(err, errlen, "URL '%s': bad port", text);
			return -1;
		}
		errno = 0;
		n = strtoul(host_end + 1, &stop, 10);
		if (stop != end || n < 1 || n > 65535 ||
		    !isdigit((unsigned char)host_end[1])) {
			snprintf(err, errlen, "URL '%s': bad port", text);
			return -1;
		}
		u->port = strndup(host_end + 1, end - host_end - 1);
	} else {
		u->port = strdup(port);
	}
	if (!u->port) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* Parses HOST[:PORT] at [host, end), HOST perhaps an IPv6 literal in
 * brackets, into u->host and u->port (port when none is given). Returns
 * 0, or -1 with err filled. */
static int opts_url_host(const char *text, const char *host, const char *end,
			 const char *port, struct opts_url *u, char *err,
			 size_t errlen)
{
	const char *host_end;
	size_t i;

	if (*host == '[') {
		host_end = memchr(host, ']', end - host);
		if (!host_end) {
			snprintf(err, errlen, "URL '%s': unclosed '['", text);
			return -1;
		}
		u->host = strndup(host + 1, host_end - host - 1);
		host_end++;
	} else {
		host_end = memchr(host, ':', end - host);
		if (!host_end)
			host_end = end;
		u->host = strndup(host, host_end - host);
	}
	if (!u->host || !*u->host) {
		snprintf(err, errlen, "URL '%s' has no host", text);
		return -1;
	}
	for (i = 0; u->host[i]; i++) {
		unsigned char c = u->host[i];

		if (!isalnum(c) && !strchr(".-:_", c)) {
			snprintf(err, errlen, "URL '%s': bad host name", text);
			return -1;
		}
	}
	return opts_url_port(text, host_end, end, port, u, err, errlen);
}

/* Parses a mailbox URL (see opts.h). */
int opts_parse_url(const char *text, struct opts_url *url_r, char *err,
		   size_t errlen)
{
	struct opts_url u = {0};
	const char *p, *at, *port = NULL, *end;

	/* A password in the URL would sit in argv, fstab and logs: refuse
	 * it before anything else, and never echo the URL then. */
	if (opts_url_has_password(text)) {
		snprintf(err, errlen,
			 "the URL holds a password (USER:PASSWORD@HOST): "
			 "remove it and use -o password_file=, "
			 "-o password_command= or a named account");
		return -1;
	}
	p = opts_url_scheme(text, &u.proto, &u.tls, &port);
	if (!p) {
		snprintf(err, errlen,
			 "URL '%s' must start with imaps://, imap://, "
			 "pop3s:// or pop3://",
			 text);
		return -1;
	}
	end = p + strlen(p);
	if (end > p && end[-1] == '/')
		end--;
	if (memchr(p, '/', end - p) || memchr(p, '?', end - p) ||
	    memchr(p, '#', end - p)) {
		snprintf(err, errlen, "URL '%s' must not have a path", text);
		return -1;
	}
	at = memrchr(p, '@', end - p);
	if (!at || at == p) {
		snprintf(err, errlen, "URL '%s' has no user (USER@HOST)", text);
		return -1;
	}
	u.user = opts_pct_decode(p, at - p);
	if (!u.user) {
		snprintf(err, errlen, "URL '%s': bad %%-escape in the user",
			 text);
		goto fail;
	}
	if (opts_url_host(text, at + 1, end, port, &u, err, errlen) < 0)
		goto fail;
	*url_r = u;
	return 0;
fail:
	opts_url_free(&u);
	return -1;
}

/* Parses a byte count with an optional K, M or G suffix (see opts.h). */
bool opts_parse_size(const char *text, uint64_t *bytes_r)
{
	uint64_t n = 0, mult = 1;
	const char *p = text;

	if (!isdigit((unsigned char)*p))
		return false;
	for (; isdigit((unsigned char)*p); p++) {
		if (n > (UINT64_MAX - 9) / 10)
			return false;
		n = n * 10 + (*p - '0');
	}
	switch (toupper((unsigned char)*p)) {
	case '\0':
		break;
	case 'K':
		mult = 1024;
		break;
	case 'M':
		mult = 1024 * 1024;
		break;
	case 'G':
		mult = 1024 * 1024 * 1024;
		break;
	default:
		return false;
	}
	if (*p && p[1] != '\0' &&
	    !(toupper((unsigned char)p[1]) == 'B' && p[2] == '\0'))
		return false;
	if (n > UINT64_MAX / mult)
		return false;
	*bytes_r = n * mult;
	return true;
}
