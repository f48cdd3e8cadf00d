/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * account: named accounts, so that `mailfs NAME [MOUNTPOINT]` (and the
 * systemd unit mailfs@NAME) mount what ~/.config/mailfs/config says.
 *
 * The file is INI-like:
 *
 *   # a comment line
 *   [work]
 *   url = imaps://me@mail.example.org
 *   mountpoint = ~/mail/work
 *   password_command = pass show mail/work
 *   keep = true
 *
 * One [NAME] section per account; `url` (required), `mountpoint`
 * (optional) and any -o option as `key = value`, flags as `key = true`
 * (`false` leaves them out). There is no password key. The file is
 * refused when group or others may write it or another user owns it,
 * since it names commands that mailfs runs, and when others may read it
 * while it holds a password option.
 */
#ifndef MAILFS_ACCOUNT_H
#define MAILFS_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>

struct account {
	char *url; /* owned */
	char *mountpoint; /* owned, ~ expanded; NULL if the file has none */
	char **opts; /* owned: "key=value" or "key", fuse_opt-escaped */
	size_t n_opts;
};

/* $XDG_CONFIG_HOME/mailfs/config, else ~/.config/mailfs/config;
 * malloc'd, NULL if neither variable is set. */
char *account_config_path(void);

/*
 * Loads account name from the file at path into *a (account_free()).
 * known(key) tells which option keys exist; others are bad lines.
 * Returns 0, or -1 with err set to one line naming the file (and the
 * line, for a bad line).
 */
int account_load(const char *path, const char *name,
		 bool (*known)(const char *key), struct account *a, char *err,
		 size_t errlen);
void account_free(struct account *a);

#endif
