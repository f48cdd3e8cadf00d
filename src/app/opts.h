/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * opts: the command line. Parses `mailfs [options] URL MOUNTPOINT`,
 * keeps FUSE's own options for fuse_new(), finds the password, and runs
 * the commands that print a secret (password_command, oauth2_command):
 * those two in opts_secret.c.
 */
#ifndef MAILFS_OPTS_H
#define MAILFS_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sasl.h"

struct fuse_args;

enum opts_proto {
	OPTS_PROTO_IMAP,
	OPTS_PROTO_POP3,
};

enum opts_tls {
	OPTS_TLS_IMPLICIT, /* imaps://, pop3s:// */
	OPTS_TLS_STARTTLS, /* imap:// (STARTTLS), pop3:// (STLS) */
	OPTS_TLS_NONE, /* imap:// with -o tls=none: cleartext */
};

struct opts_url {
	enum opts_proto proto;
	enum opts_tls tls;
	char *user; /* owned, percent-decoded */
	char *host; /* owned, without IPv6 brackets */
	char *port; /* owned, decimal */
};

enum opts_delete {
	OPTS_DELETE_TRASH, /* rm moves to Trash (default) */
	OPTS_DELETE_EXPUNGE, /* rm expunges */
};

struct opts {
	struct opts_url url;
	char *url_text; /* owned: as given */
	char *mountpoint; /* owned: absolute */
	char *cafile; /* owned: absolute, or NULL for the system store */
	bool insecure;
	char *password_command; /* owned */
	char *password_file; /* owned: absolute */
	char *env_password; /* owned: $MAILFS_PASSWORD, taken at start */
	enum sasl_auth auth; /* -o auth= */
	char *oauth2_command; /* owned: prints an access token */
	char *tls; /* owned: "none" or NULL */
	unsigned connections;
	unsigned timeout; /* seconds */
	uint64_t cache_size; /* bytes */
	uint64_t disk_cache; /* bytes of the IMAP disk cache, 0: none */
	bool offline; /* -o offline: serve the disk cache only */
	bool compress; /* -o compress=yes|no: IMAP COMPRESS=DEFLATE */
	/* -o offline_changes=yes|no: changes made offline kept and sent
	 * later (yes), or refused with EROFS */
	bool offline_changes;
	char *prefetch; /* owned: -o prefetch= as given, or NULL */
	unsigned refresh; /* seconds */
	unsigned temp_idle; /* seconds an unused temporary file is kept */
	bool readonly; /* -o ro */
	bool allow_other; /* -o allow_other: other users see the mount */
	enum opts_delete delete_mode;
	bool maildir; /* -o layout=maildir */
	uint64_t max_append; /* bytes, 0 = the server's limit only */
	char *store_dir; /* owned: POP3 local store, NULL = default */
	bool pop3_delete; /* POP3: delete what is safely stored here */
	bool nonempty; /* mount over a non-empty directory */
	bool foreground;
	bool debug;
	bool single_thread;
};

/*
 * Parses a mailbox URL: SCHEME://USER@HOST[:PORT][/] where SCHEME is
 * imap, imaps, pop3 or pop3s. USER may be percent-encoded; HOST may be
 * an IPv6 literal in brackets. Returns 0, or -1 with err filled.
 */
int opts_parse_url(const char *text, struct opts_url *url_r, char *err,
		   size_t errlen);
void opts_url_free(struct opts_url *url);

/* Parses a byte count with an optional K, M or G suffix (powers of 1024).
 * Returns false on garbage, zero-free overflow, or an empty string. */
bool opts_parse_size(const char *text, uint64_t *bytes_r);

/*
 * Makes HOME and the XDG base directories mailfs uses (XDG_CONFIG_HOME,
 * XDG_CACHE_HOME, XDG_DATA_HOME) those of the user mailfs runs as, before
 * anything reads them (mailfs and the commands it runs): mount(8) runs
 * the helper of a `user` fstab line as that user but with HOME=/root,
 * where the user may create nothing. A HOME that is not a directory
 * owned by getuid() is replaced by the passwd entry's home (unset when
 * there is none); an XDG variable is dropped (its default under HOME
 * then holds) unless it is absolute and it, or the nearest of its
 * ancestors that exists, is owned by getuid(). Call once, before any
 * thread starts (it changes the environment).
 */
void opts_user_env(void);

/*
 * Parses argv into *o and leaves in fargs the arguments meant for FUSE
 * (argv[0], the mount point and unknown -o options). Returns 0 to go on,
 * 1 when the work is done (--help, --version were printed), or -1 after
 * printing an error. On 1 and -1, *o holds nothing to free (all zero);
 * fargs must be freed (fuse_opt_free_args()) in every case.
 */
int opts_parse(int argc, char **argv, struct opts *o, struct fuse_args *fargs);
/* True when key is an option mailfs or FUSE knows (a config file's). */
bool opts_known_key(const char *key);

/* Longest option name opts_suggest() and opts_edit_distance() compare. */
#define OPTS_NAME_MAX 64

/*
 * The edit distance of a and b (insertions, deletions, substitutions and
 * swaps of neighbours, one each); UINT_MAX when one is longer than
 * OPTS_NAME_MAX.
 */
unsigned opts_edit_distance(const char *a, const char *b);

/*
 * Finds the option (mailfs's or libfuse's) whose name is closest to key,
 * an option name without its value ("conections"; "-x" for a dash
 * option), and puts that name into buf. Returns false when none is close
 * enough to be meant (more than a third of the letters off).
 */
bool opts_suggest(const char *key, char *buf, size_t len);
void opts_free(struct opts *o);

/*
 * Finds the password, in this order: password_command (first line of
 * its output, within -o timeout; see opts_secret_command()),
 * password_file (refused if group or others may read it),
 * $MAILFS_PASSWORD (then removed from the environment), a prompt on the
 * terminal. Returns a malloc'd string (owned by the caller, to be wiped)
 * or NULL with err filled.
 */
char *opts_secret_password(const struct opts *o, char *err, size_t errlen);

/*
 * Runs cmd with /bin/sh -c and puts the first line it prints into buf
 * (len bytes with the NUL; a longer line is an error, not cut). stdin
 * and stderr are the caller's; the rest of the output is read and
 * dropped. The command runs in its own process group (the terminal's
 * foreground while it runs, when mailfs has that), which is killed when
 * no line came within timeout_s seconds (at least 1), or when the
 * command still runs half a second after its line: mailfs never waits
 * for more than the line. what names the option in messages
 * ("oauth2_command"), noun what it prints ("token"). Returns 0,
 * or -1 with err filled: the command could not run, exited non-zero or
 * by a signal on its own, printed no line in time, or printed an empty
 * first line. buf is wiped on failure.
 */
int opts_secret_command(const char *what, const char *noun, const char *cmd,
			unsigned timeout_s, char *buf, size_t len, char *err,
			size_t errlen);

#endif
