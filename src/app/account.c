// SPDX-License-Identifier: GPL-2.0-or-later
/* account: named accounts from the config file; see account.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "account.h"

#define ACCOUNT_MAX_LINE 4096

char *account_config_path(void)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char *path = NULL;

	if (xdg && xdg[0] == '/') {
		if (asprintf(&path, "%s/mailfs/config", xdg) < 0)
			path = NULL;
	} else if (home && home[0]) {
		if (asprintf(&path, "%s/.config/mailfs/config", home) < 0)
			path = NULL;
	}
	return path;
}

void account_free(struct account *a)
{
	size_t i;

	free(a->url);
	free(a->mountpoint);
	for (i = 0; i < a->n_opts; i++)
		free(a->opts[i]);
	free(a->opts);
	memset(a, 0, sizeof(*a));
}

/* Trims blanks at both ends, in place. */
static char *account_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* "~/x" -> "$HOME/x"; anything else as it is. malloc'd. */
static char *account_expand(const char *v)
{
	const char *home = getenv("HOME");
	char *out;

	if (v[0] == '~' && (v[1] == '/' || !v[1]) && home) {
		if (asprintf(&out, "%s%s", home, v + 1) < 0)
			return NULL;
		return out;
	}
	return strdup(v);
}

/* key=value as one fuse_opt argument: ',' and '\' escaped. */
static char *account_opt(const char *key, const char *value)
{
	size_t klen = strlen(key), vlen = value ? strlen(value) : 0, i;
	char *out = malloc(klen + 2 + 2 * vlen), *p;

	if (!out)
		return NULL;
	memcpy(out, key, klen);
	p = out + klen;
	if (value) {
		*p++ = '=';
		for (i = 0; i < vlen; i++) {
			if (value[i] == ',' || value[i] == '\\')
				*p++ = '\\';
			*p++ = value[i];
		}
	}
	*p = '\0';
	return out;
}

static int account_add_opt(struct account *a, char *opt)
{
	char **n = opt ? realloc(a->opts, (a->n_opts + 1) * sizeof(*n)) : NULL;

	if (!n) {
		free(opt);
		return -1;
	}
	a->opts = n;
	a->opts[a->n_opts++] = opt;
	return 0;
}

/* Checks who may change or read the file (see account.h). */
static int account_check_file(int fd, const char *path, bool has_secret_opt,
			      char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_uid != getuid()) {
		snprintf(err, errlen,
			 "%s: owned by another user; refused, since it names "
			 "commands that mailfs runs",
			 path);
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen,
			 "%s: group or others may write it; refused, since "
			 "it names commands that mailfs runs (chmod go-w)",
			 path);
		return -1;
	}
	if (has_secret_opt && (st.st_mode & (S_IRGRP | S_IROTH))) {
		snprintf(err, errlen,
			 "%s: holds a password option and group or others "
			 "may read it; refused (chmod 600)",
			 path);
		return -1;
	}
	return 0;
}

/* Takes one "key = value" line of the wanted section into a. Returns 0,
 * or -1 with err set. */
static int account_take(struct account *a, char *line, const char *path,
			unsigned lineno, bool (*known)(const char *key),
			bool *secret, char *err, size_t errlen)
{
	char *eq = strchr(line, '='), *key, *value;

	if (!eq) {
		snprintf(err, errlen, "%s:%u: expected key = value", path,
			 lineno);
		return -1;
	}
	*eq = '\0';
	key = account_trim(line);
	value = account_trim(eq + 1);
	if (!strcmp(key, "password")) {
		snprintf(err, errlen,
			 "%s:%u: there is no password key: use "
			 "password_command or password_file",
			 path, lineno);
		return -1;
	}
	if (!strcmp(key, "url")) {
		free(a->url);
		a->url = strdup(value);
		return a->url ? 0 : -1;
	}
	if (!strcmp(key, "mountpoint")) {
		free(a->mountpoint);
		a->mountpoint = account_expand(value);
		return a->mountpoint ? 0 : -1;
	}
	if (!*key || !known(key)) {
		snprintf(err, errlen, "%s:%u: unknown option '%s'", path,
			 lineno, key);
		return -1;
	}
	if (!strncmp(key, "password_", 9) || !strcmp(key, "oauth2_command"))
		*secret = true;
	if (!strcmp(value, "false"))
		return 0;
	if (!strcmp(key, "password_file") || !strcmp(key, "cafile") ||
	    !strcmp(key, "store")) {
		char *path_value = account_expand(value);
		int rc = account_add_opt(
			a, path_value ? account_opt(key, path_value) : NULL);

		free(path_value);
		return rc;
	}
	return account_add_opt(
		a, account_opt(key, strcmp(value, "true") ? value : NULL));
}

int account_load(const char *path, const char *name,
		 bool (*known)(const char *key), struct account *a, char *err,
		 size_t errlen)
{
	char line[ACCOUNT_MAX_LINE];
	bool in = false, found = false, secret = false;
	unsigned lineno = 0;
	FILE *f;
	int rc = 0;

	memset(a, 0, sizeof(*a));
	f = fopen(path, "re");
	if (!f) {
		snprintf(err, errlen, "account '%s': %s: %s", name, path,
			 strerror(errno));
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		bool whole = strchr(line, '\n') || feof(f);
		char *l = account_trim(line);

		lineno++;
		if (!whole) {
			snprintf(err, errlen, "%s:%u: line too long", path,
				 lineno);
			rc = -1;
		} else if (!*l || *l == '#') {
			continue;
		} else if (*l == '[') {
			char *close = strchr(l, ']');

			if (!close || close[1]) {
				snprintf(err, errlen, "%s:%u: expected [NAME]",
					 path, lineno);
				rc = -1;
				break;
			}
			*close = '\0';
			in = !strcmp(account_trim(l + 1), name);
			found |= in;
		} else if (in) {
			rc = account_take(a, l, path, lineno, known, &secret,
					  err, errlen);
		} else if (!strchr(l, '=')) {
			snprintf(err, errlen, "%s:%u: expected key = value",
				 path, lineno);
			rc = -1;
		} else {
			/* Another account's: only who may read it matters. */
			secret |= !strncmp(l, "password_", 9) ||
				  !strncmp(l, "oauth2_command", 14);
		}
	}
	if (rc == 0)
		rc = account_check_file(fileno(f), path, secret, err, errlen);
	fclose(f);
	if (rc == 0 && !found) {
		snprintf(err, errlen, "%s: no account [%s]", path, name);
		rc = -1;
	} else if (rc == 0 && !a->url) {
		snprintf(err, errlen, "%s: account [%s] has no url", path,
			 name);
		rc = -1;
	}
	if (rc < 0)
		account_free(a);
	return rc;
}
