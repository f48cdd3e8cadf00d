// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fspath: pure helpers on the mount's paths; see fspath.h.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fspath.h"

/* Splits path into its directory (malloc'd, "/" for the root) and its
 * last component (borrowed from path). */
char *fspath_dirname(const char *path, const char **base_r)
{
	const char *slash = strrchr(path, '/');

	*base_r = slash ? slash + 1 : path;
	if (!slash || slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

const char *fspath_base(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

const char *fspath_alias(bool maildir, const char *to)
{
	const char *slash = strrchr(to, '/'), *base = slash ? slash + 1 : to;

	if (maildir && slash && slash - to >= 4 &&
	    strncmp(slash - 4, "/new", 4) == 0)
		return slash - 3;
	return base;
}
