// SPDX-License-Identifier: GPL-2.0-or-later
/* Unit tests of opts: URLs, sizes and the command line, from tables. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_opt.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "diskcache.h"
#include "opts.h"
#include "store.h"

static const struct {
	const char *url;
	int ok;
	enum opts_proto proto;
	enum opts_tls tls;
	const char *user, *host, *port;
} url_cases[] = {
	{"imaps://me@mail.example.org", 1, OPTS_PROTO_IMAP, OPTS_TLS_IMPLICIT,
	 "me", "mail.example.org", "993"},
	{"imap://me@mail.example.org", 1, OPTS_PROTO_IMAP, OPTS_TLS_STARTTLS,
	 "me", "mail.example.org", "143"},
	{"pop3s://me@host", 1, OPTS_PROTO_POP3, OPTS_TLS_IMPLICIT, "me", "host",
	 "995"},
	{"pop3://me@host:1110/", 1, OPTS_PROTO_POP3, OPTS_TLS_STARTTLS, "me",
	 "host", "1110"},
	{"IMAPS://me@host:10993", 1, OPTS_PROTO_IMAP, OPTS_TLS_IMPLICIT, "me",
	 "host", "10993"},
	{"imaps://me%40example.org@host", 1, OPTS_PROTO_IMAP, OPTS_TLS_IMPLICIT,
	 "me@example.org", "host", "993"},
	{"imaps://a@b@host", 1, OPTS_PROTO_IMAP, OPTS_TLS_IMPLICIT, "a@b",
	 "host", "993"},
	{"imaps://me@[::1]:993", 1, OPTS_PROTO_IMAP, OPTS_TLS_IMPLICIT, "me",
	 "::1", "993"},
	{"imaps://me@[::1]", 1, OPTS_PROTO_IMAP, OPTS_TLS_IMPLICIT, "me", "::1",
	 "993"},
	{"imaps://host", 0, 0, 0, NULL, NULL, NULL},
	{"imaps://@host", 0, 0, 0, NULL, NULL, NULL},
	{"http://me@host", 0, 0, 0, NULL, NULL, NULL},
	{"imaps://me@host:0", 0, 0, 0, NULL, NULL, NULL},
	{"imaps://me@host:65536", 0, 0, 0, NULL, NULL, NULL},
	{"imaps://me@host:99x", 0, 0, 0, NULL, NULL, NULL},
	{"imaps://me@host:", 0, 0, 0, NULL, NULL, NULL},
	{"imaps://me@host/INBOX", 0, 0, 0, NULL, NULL, NULL},
	{"imaps://me@", 0, 0, 0, NULL, NULL, NULL},
	{"imaps://me%4@host", 0, 0, 0, NULL, NULL, NULL},
	{"imaps://me%0a@host", 0, 0, 0, NULL, NULL, NULL},
	{"imaps://me@ho st", 0, 0, 0, NULL, NULL, NULL},
	{"imaps://me@[::1", 0, 0, 0, NULL, NULL, NULL},
};

START_TEST(test_url)
{
	struct opts_url u;
	char err[256] = "";
	int rc = opts_parse_url(url_cases[_i].url, &u, err, sizeof(err));

	if (!url_cases[_i].ok) {
		ck_assert_msg(rc < 0, "%s accepted", url_cases[_i].url);
		ck_assert_msg(err[0], "no error message for %s",
			      url_cases[_i].url);
		return;
	}
	ck_assert_msg(rc == 0, "%s: %s", url_cases[_i].url, err);
	ck_assert_int_eq(u.proto, url_cases[_i].proto);
	ck_assert_int_eq(u.tls, url_cases[_i].tls);
	ck_assert_str_eq(u.user, url_cases[_i].user);
	ck_assert_str_eq(u.host, url_cases[_i].host);
	ck_assert_str_eq(u.port, url_cases[_i].port);
	opts_url_free(&u);
}
END_TEST

static const struct {
	const char *text;
	int ok;
	uint64_t bytes;
} size_cases[] = {
	{"0", 1, 0},
	{"4096", 1, 4096},
	{"64M", 1, 64ull << 20},
	{"64m", 1, 64ull << 20},
	{"2G", 1, 2ull << 30},
	{"10K", 1, 10240},
	{"10KB", 1, 10240},
	{"", 0, 0},
	{"M", 0, 0},
	{"12X", 0, 0},
	{"1MM", 0, 0},
	{"-1", 0, 0},
	{"99999999999999999999", 0, 0},
	{"17179869184G", 0, 0},
};

START_TEST(test_size)
{
	uint64_t v = 12345;
	bool ok = opts_parse_size(size_cases[_i].text, &v);

	ck_assert_msg(ok == (bool)size_cases[_i].ok, "'%s'",
		      size_cases[_i].text);
	if (ok)
		ck_assert_uint_eq(v, size_cases[_i].bytes);
}
END_TEST

/* Parses a command line given as one string of words. */
static int parse_words(const char *line, struct opts *o, struct fuse_args *fa)
{
	static char buf[1024];
	static char *argv[32];
	int argc = 0;
	char *w;

	snprintf(buf, sizeof(buf), "%s", line);
	for (w = strtok(buf, " "); w && argc < 31; w = strtok(NULL, " "))
		argv[argc++] = w;
	argv[argc] = NULL;
	return opts_parse(argc, argv, o, fa);
}

START_TEST(test_cmdline_defaults)
{
	struct fuse_args fa;
	struct opts o;

	ck_assert_int_eq(parse_words("mailfs imaps://me@h /tmp", &o, &fa), 0);
	ck_assert_uint_eq(o.connections, 4);
	ck_assert_uint_eq(o.timeout, 30);
	ck_assert_uint_eq(o.refresh, 30);
	ck_assert_uint_eq(o.cache_size, 64ull << 20);
	ck_assert_str_eq(o.mountpoint, "/tmp");
	ck_assert_ptr_null(o.cafile);
	ck_assert(!o.foreground && !o.debug && !o.insecure);
	ck_assert_int_eq(o.auth, SASL_AUTH_DEFAULT);
	ck_assert_ptr_null(o.oauth2_command);
	ck_assert(!o.maildir);
	ck_assert(o.compress);
	ck_assert_int_eq(o.delete_mode, OPTS_DELETE_TRASH);
	ck_assert_int_eq(fa.argc, 1); /* only argv[0] is left for FUSE */
	opts_free(&o);
	fuse_opt_free_args(&fa);
}
END_TEST

START_TEST(test_cmdline_options)
{
	struct fuse_args fa;
	struct opts o;

	ck_assert_int_eq(
		parse_words("mailfs -f -s -o connections=2,timeout=5 -o "
			    "cache_size=8M,refresh=7,insecure -o allow_other "
			    "-o ro,layout=maildir,compress=no,delete=expunge "
			    "imap://u@h:1143 /tmp",
			    &o, &fa),
		0);
	ck_assert(o.foreground && o.single_thread && o.insecure && o.readonly);
	ck_assert(o.maildir);
	ck_assert(!o.compress);
	ck_assert_int_eq(o.delete_mode, OPTS_DELETE_EXPUNGE);
	ck_assert_uint_eq(o.connections, 2);
	ck_assert_uint_eq(o.timeout, 5);
	ck_assert_uint_eq(o.refresh, 7);
	ck_assert_uint_eq(o.cache_size, 8ull << 20);
	ck_assert_str_eq(o.url.port, "1143");
	/* FUSE keeps what is its own: allow_other and ro. */
	ck_assert_int_eq(fa.argc, 3);
	ck_assert_str_eq(fa.argv[1], "-o");
	ck_assert_ptr_nonnull(strstr(fa.argv[2], "allow_other"));
	ck_assert_ptr_nonnull(strstr(fa.argv[2], "ro"));
	opts_free(&o);
	fuse_opt_free_args(&fa);
}
END_TEST

START_TEST(test_cmdline_pop3_refresh)
{
	struct fuse_args fa;
	struct opts o;

	ck_assert_int_eq(parse_words("mailfs pop3s://u@h /tmp", &o, &fa), 0);
	ck_assert_uint_eq(o.refresh, 60);
	opts_free(&o);
	fuse_opt_free_args(&fa);
}
END_TEST

/* -o auth= and the secret options that go with each way. */
static const struct {
	const char *line;
	enum sasl_auth auth;
	const char *oauth2_command;
} auth_cmdlines[] = {
	{"mailfs -o auth=plain imaps://me@h /tmp", SASL_AUTH_PLAIN, NULL},
	{"mailfs -o auth=login,password_file=/tmp pop3s://me@h /tmp",
	 SASL_AUTH_LOGIN, NULL},
	{"mailfs -o auth=xoauth2,oauth2_command=oama imaps://me@h /tmp",
	 SASL_AUTH_XOAUTH2, "oama"},
	{"mailfs -o oauth2_command=get-token -o auth=oauthbearer "
	 "pop3s://me@h /tmp",
	 SASL_AUTH_OAUTHBEARER, "get-token"},
};

START_TEST(test_cmdline_auth)
{
	struct fuse_args fa;
	struct opts o;

	ck_assert_int_eq(parse_words(auth_cmdlines[_i].line, &o, &fa), 0);
	ck_assert_int_eq(o.auth, auth_cmdlines[_i].auth);
	if (auth_cmdlines[_i].oauth2_command)
		ck_assert_str_eq(o.oauth2_command,
				 auth_cmdlines[_i].oauth2_command);
	else
		ck_assert_ptr_null(o.oauth2_command);
	ck_assert_int_eq(fa.argc, 1);
	opts_free(&o);
	fuse_opt_free_args(&fa);
}
END_TEST

static const char *const bad_cmdlines[] = {
	"mailfs",
	"mailfs imaps://me@h",
	"mailfs imaps://me@h /tmp extra",
	"mailfs -o connections=0 imaps://me@h /tmp",
	"mailfs -o connections=65 imaps://me@h /tmp",
	"mailfs -o timeout=0 imaps://me@h /tmp",
	"mailfs -o cache_size=12Q imaps://me@h /tmp",
	"mailfs -o cache_size=1K imaps://me@h /tmp",
	"mailfs -o tls=none imaps://me@h /tmp",
	"mailfs -o tls=maybe imap://me@h /tmp",
	"mailfs -o delete=shred imaps://me@h /tmp",
	"mailfs -o layout=mh imaps://me@h /tmp",
	"mailfs -o layout=maildir pop3s://me@h /tmp",
	"mailfs -o compress=maybe imaps://me@h /tmp",
	"mailfs -o compress= imaps://me@h /tmp",
	"mailfs ftp://me@h /tmp",
	"mailfs imaps://me@h /nonexistent/dir",
	"mailfs -o auth=cram-md5 imaps://me@h /tmp",
	"mailfs -o auth= imaps://me@h /tmp",
	"mailfs -o auth=XOAUTH2,oauth2_command=t imaps://me@h /tmp",
	"mailfs -o auth=xoauth2 imaps://me@h /tmp",
	"mailfs -o auth=oauthbearer pop3s://me@h /tmp",
	"mailfs -o oauth2_command=t imaps://me@h /tmp",
	"mailfs -o auth=plain,oauth2_command=t imaps://me@h /tmp",
	"mailfs -o auth=xoauth2,oauth2_command=t,password_command=p "
	"imaps://me@h /tmp",
	"mailfs -o auth=oauthbearer,oauth2_command=t,password_file=/tmp "
	"imaps://me@h /tmp",
};

START_TEST(test_cmdline_bad)
{
	struct fuse_args fa;
	struct opts o;
	int rc;

	/* Errors go to stderr; keep the test output readable. */
	fflush(stderr);
	int saved = dup(2);
	freopen("/dev/null", "w", stderr);
	rc = parse_words(bad_cmdlines[_i], &o, &fa);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ck_assert_msg(rc < 0, "accepted: %s", bad_cmdlines[_i]);
	opts_free(&o);
	fuse_opt_free_args(&fa);
}
END_TEST

/*
 * A command line that is refused, or that only asks for --version,
 * leaves nothing in the options to free: main() returns at once, and
 * the strings parsed so far leaked (LeakSanitizer in make asan-check).
 */
START_TEST(test_opts_refused_cmdline_keeps_nothing)
{
	static const char *const lines[] = {
		"mailfs -o password_file=/p,connections=0 imaps://me@h /tmp",
		"mailfs -o cafile=/ca,timeout=0 imaps://me@h /tmp",
		"mailfs -o store=/s imaps://me@h /tmp extra",
		"mailfs -o tls=none imaps://me@h /tmp",
		"mailfs -o password_command=x imaps://me@h /tmp --version",
	};
	struct fuse_args fa;
	struct opts o;
	size_t i;
	int rc, out, err, null;

	for (i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		/* What it prints is not the test's: keep the output clean. */
		fflush(stdout);
		fflush(stderr);
		out = dup(1);
		err = dup(2);
		null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		rc = parse_words(lines[i], &o, &fa);
		fflush(stdout);
		fflush(stderr);
		dup2(out, 1);
		dup2(err, 2);
		close(out);
		close(err);
		close(null);
		ck_assert_msg(rc != 0, "accepted: %s", lines[i]);
		ck_assert_ptr_null(o.url_text);
		ck_assert_ptr_null(o.mountpoint);
		ck_assert_ptr_null(o.password_file);
		ck_assert_ptr_null(o.password_command);
		ck_assert_ptr_null(o.cafile);
		ck_assert_ptr_null(o.tls);
		ck_assert_ptr_null(o.store_dir);
		ck_assert_ptr_null(o.url.host);
		fuse_opt_free_args(&fa);
	}
}
END_TEST

START_TEST(test_password_file_mode)
{
	char path[] = "/tmp/mailfs-pw-XXXXXX", err[256];
	struct opts o = {0};
	char *pw;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "s3cret\nignored\n", 15), 15);
	close(fd);
	o.password_file = path;
	chmod(path, 0600);
	pw = opts_secret_password(&o, err, sizeof(err));
	ck_assert_ptr_nonnull(pw);
	ck_assert_str_eq(pw, "s3cret");
	free(pw);
	chmod(path, 0640);
	pw = opts_secret_password(&o, err, sizeof(err));
	ck_assert_ptr_null(pw);
	ck_assert_ptr_nonnull(strstr(err, "group or others"));
	unlink(path);
}
END_TEST

START_TEST(test_password_sources)
{
	struct opts o = {0};
	char err[256];
	char *pw;

	o.timeout = 5;
	o.password_command = "printf 'from-cmd\\nsecond\\n'";
	pw = opts_secret_password(&o, err, sizeof(err));
	ck_assert_ptr_nonnull(pw);
	ck_assert_str_eq(pw, "from-cmd");
	free(pw);
	o.password_command = "exit 3";
	ck_assert_ptr_null(opts_secret_password(&o, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "failed"));
	o.password_command = NULL;
	/* $MAILFS_PASSWORD, as opts_parse() took it out of the
	 * environment. */
	o.env_password = "from-env";
	pw = opts_secret_password(&o, err, sizeof(err));
	ck_assert_ptr_nonnull(pw);
	ck_assert_str_eq(pw, "from-env");
	free(pw);
}
END_TEST

/* One line of stderr from a bad command line: the refusal of an OAuth2
 * setting is a single line that names what is missing. */
static const struct {
	const char *line;
	const char *want;
} auth_refusals[] = {
	{"mailfs -o auth=xoauth2 imaps://me@h /tmp",
	 "mailfs: -o auth=xoauth2 needs -o oauth2_command=CMD, a command that "
	 "prints an access token\n"},
	{"mailfs -o oauth2_command=t imaps://me@h /tmp",
	 "mailfs: -o oauth2_command needs -o auth=xoauth2 or -o "
	 "auth=oauthbearer\n"},
	{"mailfs -o auth=md5 imaps://me@h /tmp",
	 "mailfs: -o auth= takes plain, login, xoauth2 or oauthbearer\n"},
};

/* Parses line (which must be refused) and puts what it printed on stderr
 * into out. */
static void parse_refused(const char *line, char *out, size_t len)
{
	char path[] = "/tmp/mailfs-opts-XXXXXX";
	struct fuse_args fa;
	struct opts o;
	int fd = mkstemp(path), saved;
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	unlink(path);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	ck_assert_msg(parse_words(line, &o, &fa) < 0, "accepted: %s", line);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, len - 1, 0);
	close(fd);
	ck_assert_int_gt(n, 0);
	out[n] = '\0';
	opts_free(&o);
	fuse_opt_free_args(&fa);
}

START_TEST(test_cmdline_auth_message)
{
	char out[512];

	parse_refused(auth_refusals[_i].line, out, sizeof(out));
	ck_assert_str_eq(out, auth_refusals[_i].want);
}
END_TEST

/* Options that neither mailfs nor libfuse takes: mailfs says so itself,
 * naming the option meant (libfuse would say "unknown option(s)"). */
static const struct {
	const char *line;
	const char *want;
} unknown_refusals[] = {
	{"mailfs -o conections=4 imaps://me@h /tmp",
	 "mailfs: unknown option 'conections' (did you mean 'connections'?)\n"},
	{"mailfs -o ro,alow_other imaps://me@h /tmp",
	 "mailfs: unknown option 'alow_other' (did you mean 'allow_other'?)\n"},
	{"mailfs -o pasword_file=/p imaps://me@h /tmp",
	 "mailfs: unknown option 'pasword_file' (did you mean "
	 "'password_file'?)\n"},
	{"mailfs -o cahce_size=8M imaps://me@h /tmp",
	 "mailfs: unknown option 'cahce_size' (did you mean 'cache_size'?)\n"},
	{"mailfs --verison imaps://me@h /tmp",
	 "mailfs: unknown option '--verison' (did you mean '--version'?)\n"},
	{"mailfs -o frobnicate imaps://me@h /tmp",
	 "mailfs: unknown option 'frobnicate' (mailfs --help lists them)\n"},
	{"mailfs -z imaps://me@h /tmp",
	 "mailfs: unknown option '-z' (mailfs --help lists them)\n"},
	{"mailfs -o connections imaps://me@h /tmp",
	 "mailfs: -o connections needs a value (-o connections=...)\n"},
	{"mailfs -o insecure=yes imaps://me@h /tmp",
	 "mailfs: -o insecure takes no value\n"},
	{"mailfs -o noauto imaps://me@h /tmp",
	 "mailfs: -o noauto is an option of mount(8) (an fstab line), not of "
	 "mailfs\n"},
};

START_TEST(test_cmdline_unknown_message)
{
	char out[512];

	parse_refused(unknown_refusals[_i].line, out, sizeof(out));
	ck_assert_str_eq(out, unknown_refusals[_i].want);
}
END_TEST

/* What libfuse takes is still passed on to it, untouched. */
START_TEST(test_cmdline_fuse_options)
{
	struct fuse_args fa;
	struct opts o;

	ck_assert_int_eq(
		parse_words(
			"mailfs -o allow_other,default_permissions,"
			"max_read=65536,blksize=4096,noatime,rw,nosuid,"
			"nodev,noexec,auto_unmount,user=me imaps://me@h /tmp",
			&o, &fa),
		0);
	ck_assert_int_eq(fa.argc, 3);
	ck_assert_str_eq(fa.argv[2],
			 "allow_other,default_permissions,max_read=65536,"
			 "blksize=4096,noatime,rw,nosuid,nodev,noexec,"
			 "auto_unmount,user=me");
	opts_free(&o);
	fuse_opt_free_args(&fa);
}
END_TEST

/* The closest option name, and none when nothing is close. */
static const struct {
	const char *key;
	const char *want; /* NULL: no suggestion */
} suggest_cases[] = {
	{"conections", "connections"},
	{"connection", "connections"},
	{"conenctions", "connections"}, /* two letters swapped */
	{"timout", "timeout"},
	{"cafle", "cafile"},
	{"passwordfile", "password_file"},
	{"password_comand", "password_command"},
	{"oauth_command", "oauth2_command"},
	{"alow_other", "allow_other"},
	{"defualt_permissions", "default_permissions"},
	{"nosiud", "nosuid"},
	{"fsnam", "fsname"},
	{"--verison", "--version"},
	{"--hepl", "--help"},
	{"frobnicate", NULL},
	{"relatime", NULL},
	{"xyz", NULL},
	{"-z", NULL},
	{"", NULL},
	{"connectionsconnectionsconnectionsconnectionsconnectionsconnectionsc",
	 NULL},
};

START_TEST(test_suggest)
{
	char buf[OPTS_NAME_MAX + 1] = "";
	bool found = opts_suggest(suggest_cases[_i].key, buf, sizeof(buf));

	if (!suggest_cases[_i].want) {
		ck_assert_msg(!found, "%s: suggested %s", suggest_cases[_i].key,
			      buf);
		return;
	}
	ck_assert_msg(found, "%s: nothing suggested", suggest_cases[_i].key);
	ck_assert_str_eq(buf, suggest_cases[_i].want);
}
END_TEST

START_TEST(test_edit_distance)
{
	ck_assert_uint_eq(opts_edit_distance("", ""), 0);
	ck_assert_uint_eq(opts_edit_distance("abc", ""), 3);
	ck_assert_uint_eq(opts_edit_distance("", "abc"), 3);
	ck_assert_uint_eq(opts_edit_distance("kitten", "sitting"), 3);
	ck_assert_uint_eq(opts_edit_distance("ab", "ba"), 1);
	ck_assert_uint_eq(opts_edit_distance("ca", "abc"), 3);
	ck_assert_uint_eq(opts_edit_distance("conections", "connections"), 1);
	/* A small buffer is no overflow: no suggestion fits. */
	{
		char small[4] = "x";

		ck_assert(!opts_suggest("conections", small, sizeof(small)));
	}
}
END_TEST

/* What a secret command prints or does, and what comes of it. */
static const struct {
	const char *cmd;
	size_t len; /* of the buffer */
	const char *secret; /* NULL: must fail */
	const char *want; /* in the error */
} commands[] = {
	{"printf 'tok-1\\nsecond\\n'", 64, "tok-1", NULL},
	{"printf 'tok-2\\r\\n'", 64, "tok-2", NULL},
	{"printf tok-3", 64, "tok-3", NULL},
	{"printf 123456789012345", 16, "123456789012345", NULL},
	{"printf 1234567890123456", 16, NULL,
	 "oauth2_command printed a line longer than 15 bytes"},
	{"echo; echo late", 64, NULL, "oauth2_command printed no token"},
	{"true", 64, NULL, "oauth2_command printed no token"},
	{"echo tok; exit 3", 64, NULL, "oauth2_command failed (exit status 3)"},
	{"echo tok; kill -9 $$", 64, NULL,
	 "oauth2_command was killed by signal 9"},
	{"yes | head -c 2000000", 64, NULL,
	 "oauth2_command printed more than 1048576 bytes"},
	{"echo tok >&2; echo tok2", 64, "tok2", NULL},
	{"/nonexistent/helper", 64, NULL,
	 "oauth2_command failed (exit status "
	 "127)"},
};

START_TEST(test_secret_command)
{
	char buf[64], err[256] = "";
	int rc, saved, devnull = open("/dev/null", O_WRONLY);

	/* The commands' stderr is ours: keep the test output readable. */
	fflush(stderr);
	saved = dup(2);
	dup2(devnull, 2);
	close(devnull);
	rc = opts_secret_command("oauth2_command", "token", commands[_i].cmd, 5,
				 buf, commands[_i].len, err, sizeof(err));
	dup2(saved, 2);
	close(saved);
	if (commands[_i].secret) {
		ck_assert_msg(rc == 0, "%s: %s", commands[_i].cmd, err);
		ck_assert_str_eq(buf, commands[_i].secret);
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_str_eq(err, commands[_i].want);
		ck_assert_str_eq(buf, "");
	}
}
END_TEST

/* Milliseconds on the monotonic clock. */
static long long test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* True while process pid exists and is not a zombie. */
static bool test_alive(int pid)
{
	char path[64], stat[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(stat, 1, sizeof(stat) - 1, f);
	fclose(f);
	stat[n] = '\0';
	p = strrchr(stat, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* The pid that cmd (which writes it to pidfile) left running. */
static int read_pid(const char *pidfile)
{
	FILE *f = fopen(pidfile, "r");
	int pid = 0;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fscanf(f, "%d", &pid), 1);
	fclose(f);
	unlink(pidfile);
	return pid;
}

/* Waits a second at most for pid to die: gone, or a zombie waiting for
 * whoever adopted it. */
static void assert_dies(int pid)
{
	int i;

	for (i = 0; i < 100 && test_alive(pid); i++)
		usleep(10000);
	ck_assert_msg(!test_alive(pid), "process %d lives", pid);
}

/*
 * A command that prints nothing is killed at the timeout, with what it
 * started (its process group): the wait is bounded whatever it does.
 */
START_TEST(test_secret_command_timeout)
{
	char pidfile[] = "/tmp/mailfs-opts-pidXXXXXX", cmd[256], buf[64],
	     err[256];
	long long t0, took;
	int fd = mkstemp(pidfile);

	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "sleep 30 & echo $! > %s; wait", pidfile);
	t0 = test_now_ms();
	ck_assert_int_eq(opts_secret_command("oauth2_command", "token", cmd, 1,
					     buf, sizeof(buf), err,
					     sizeof(err)),
			 -1);
	took = test_now_ms() - t0;
	ck_assert_msg(took >= 1000 && took < 2000, "took %lld ms", took);
	ck_assert_str_eq(
		err, "oauth2_command printed no token within 1 s (-o timeout)");
	assert_dies(read_pid(pidfile));
}
END_TEST

/*
 * A command that prints its line and goes on with its stdout open (here
 * through a child of its own) gives the line at once: mailfs stops
 * waiting a moment after it, well before the timeout, and kills what is
 * left running. password_command had no timeout and read to the end of
 * the output: this held start-up for as long as the command ran.
 */
START_TEST(test_secret_command_line_then_lingers)
{
	/* Each writes the pid of what lingers to the file named between
	 * its two halves. */
	static const char *const cmds[][2] = {
		{"sleep 30 & echo $! > ", "; echo tok; wait"},
		{"echo $$ > ", "; echo tok; exec sleep 30"},
		{"echo $$ > ", "; printf tok; exec >&-; exec sleep 30"},
	};
	char pidfile[] = "/tmp/mailfs-opts-pidXXXXXX", cmd[256], buf[64],
	     err[256] = "";
	long long t0, took;
	int fd = mkstemp(pidfile);

	ck_assert_int_ge(fd, 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "%s%s%s", cmds[_i][0], pidfile, cmds[_i][1]);
	t0 = test_now_ms();
	ck_assert_msg(opts_secret_command("password_command", "password", cmd,
					  10, buf, sizeof(buf), err,
					  sizeof(err)) == 0,
		      "%s: %s", cmd, err);
	took = test_now_ms() - t0;
	ck_assert_str_eq(buf, "tok");
	ck_assert_msg(took < 1500, "took %lld ms", took);
	assert_dies(read_pid(pidfile));
}
END_TEST

/*
 * The command starts with no blocked signals, whatever the calling
 * thread blocks (FUSE's worker threads block them all).
 */
START_TEST(test_secret_command_signals)
{
	sigset_t term, old;
	char buf[64], err[256];

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &old);
	ck_assert_int_eq(opts_secret_command("oauth2_command", "token",
					     "kill -TERM $$; echo tok", 5, buf,
					     sizeof(buf), err, sizeof(err)),
			 -1);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	ck_assert_str_eq(err, "oauth2_command was killed by signal 15");
}
END_TEST

/* Sets (value not NULL) or unsets an environment variable. */
static void set_env(const char *name, const char *value)
{
	if (value)
		setenv(name, value, 1);
	else
		unsetenv(name);
}

/*
 * The environment of a `user` fstab mount: mount(8) runs mailfs as the
 * user with HOME=/root (and whatever XDG variables the caller had). The
 * paths mailfs makes its files in are then the user's, from the passwd
 * entry; XDG variables into a directory of someone else's are dropped,
 * the user's own kept. Here "someone else" owns a directory chowned to
 * another uid (root may) or "/" (when not run as root).
 */
START_TEST(test_user_env)
{
	static const char *const names[] = {"HOME", "XDG_CONFIG_HOME",
					    "XDG_CACHE_HOME", "XDG_DATA_HOME"};
	char *saved[4], mine[] = "/tmp/mailfs-home-XXXXXX",
			theirs_tmp[] = "/tmp/mailfs-other-XXXXXX", path[512],
			*dir;
	const char *theirs = "/";
	struct passwd *pw = getpwuid(getuid());
	size_t i;

	ck_assert_ptr_nonnull(pw);
	for (i = 0; i < 4; i++) {
		const char *v = getenv(names[i]);

		saved[i] = v ? strdup(v) : NULL;
	}
	ck_assert_ptr_nonnull(mkdtemp(mine));
	ck_assert_ptr_nonnull(mkdtemp(theirs_tmp));
	if (getuid() == 0) {
		ck_assert_int_eq(chown(theirs_tmp, 4242, 4242), 0);
		theirs = theirs_tmp;
	}

	/* HOME someone else's: the passwd entry's. XDG variables into
	 * their directory (made or not yet) go; those into mine stay. */
	set_env("HOME", theirs);
	snprintf(path, sizeof(path), "%s/.cache", theirs);
	set_env("XDG_CACHE_HOME", path);
	snprintf(path, sizeof(path), "%s/not/made/yet", theirs);
	set_env("XDG_DATA_HOME", path);
	snprintf(path, sizeof(path), "%s/not/made/yet", mine);
	set_env("XDG_CONFIG_HOME", path);
	opts_user_env();
	ck_assert_str_eq(getenv("HOME"), pw->pw_dir);
	ck_assert_ptr_null(getenv("XDG_CACHE_HOME"));
	ck_assert_ptr_null(getenv("XDG_DATA_HOME"));
	ck_assert_str_eq(getenv("XDG_CONFIG_HOME"), path);
	/* What mailfs derives from them is then the user's. */
	dir = diskcache_default_dir("me", "h", "993");
	snprintf(path, sizeof(path), "%s/.cache/mailfs/me@h:993", pw->pw_dir);
	ck_assert_str_eq(dir, path);
	free(dir);
	dir = store_pop3_default_dir("me", "h", "995");
	ck_assert_ptr_nonnull(strstr(dir, "/.local/share/mailfs/pop3/"));
	ck_assert_msg(!strncmp(dir, pw->pw_dir, strlen(pw->pw_dir)), "%s", dir);
	free(dir);

	/* HOME mine (not the passwd entry's): kept. A relative XDG
	 * variable is no path at all. */
	set_env("HOME", mine);
	set_env("XDG_CACHE_HOME", "relative/cache");
	opts_user_env();
	ck_assert_str_eq(getenv("HOME"), mine);
	ck_assert_ptr_null(getenv("XDG_CACHE_HOME"));

	/* No HOME: the passwd entry's. */
	set_env("HOME", NULL);
	opts_user_env();
	ck_assert_str_eq(getenv("HOME"), pw->pw_dir);
	/* A HOME that does not exist: the same. */
	set_env("HOME", "/nonexistent/mailfs-home");
	opts_user_env();
	ck_assert_str_eq(getenv("HOME"), pw->pw_dir);

	for (i = 0; i < 4; i++) {
		set_env(names[i], saved[i]);
		free(saved[i]);
	}
	rmdir(mine);
	rmdir(theirs_tmp);
}
END_TEST

Suite *opts_suite(void)
{
	Suite *s = suite_create("opts");
	TCase *tc = tcase_create("opts");

	tcase_add_loop_test(tc, test_url, 0,
			    sizeof(url_cases) / sizeof(url_cases[0]));
	tcase_add_loop_test(tc, test_size, 0,
			    sizeof(size_cases) / sizeof(size_cases[0]));
	tcase_add_test(tc, test_cmdline_defaults);
	tcase_add_test(tc, test_cmdline_options);
	tcase_add_test(tc, test_cmdline_pop3_refresh);
	tcase_add_loop_test(tc, test_cmdline_bad, 0,
			    sizeof(bad_cmdlines) / sizeof(bad_cmdlines[0]));
	tcase_add_loop_test(tc, test_cmdline_auth, 0,
			    sizeof(auth_cmdlines) / sizeof(auth_cmdlines[0]));
	tcase_add_loop_test(tc, test_cmdline_auth_message, 0,
			    sizeof(auth_refusals) / sizeof(auth_refusals[0]));
	tcase_add_loop_test(tc, test_secret_command, 0,
			    sizeof(commands) / sizeof(commands[0]));
	tcase_add_test(tc, test_secret_command_timeout);
	tcase_add_loop_test(tc, test_secret_command_line_then_lingers, 0, 3);
	tcase_add_loop_test(tc, test_cmdline_unknown_message, 0,
			    sizeof(unknown_refusals) /
				    sizeof(unknown_refusals[0]));
	tcase_add_test(tc, test_cmdline_fuse_options);
	tcase_add_loop_test(tc, test_suggest, 0,
			    sizeof(suggest_cases) / sizeof(suggest_cases[0]));
	tcase_add_test(tc, test_edit_distance);
	tcase_add_test(tc, test_user_env);
	tcase_add_test(tc, test_secret_command_signals);
	tcase_add_test(tc, test_opts_refused_cmdline_keeps_nothing);
	tcase_add_test(tc, test_password_file_mode);
	tcase_add_test(tc, test_password_sources);
	suite_add_tcase(s, tc);
	return s;
}
