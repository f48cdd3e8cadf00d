// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * safedir: the directories mailfs keeps its own files in, opened only
 * when no other user can have planted or change them; see safedir.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safedir.h"

/* Symbolic links followed on the way at most (as the kernel's 40). */
#define SAFEDIR_MAX_LINKS 40

/* fstat of fd, the directory shown; 0 or -1 with err. */
static int safedir_stat(int fd, const char *shown, struct stat *st, char *err,
			size_t errlen)
{
	if (fstat(fd, st) == 0)
		return 0;
	snprintf(err, errlen, "cannot look at %s: %s", shown, strerror(errno));
	return -1;
}

/* Checks a directory on the way, opened as fd: owned by us or root,
 * and writable by nobody else unless sticky. 0 or -1 with err. */
static int safedir_check_way(int fd, const char *shown, char *err,
			     size_t errlen)
{
	uid_t me = geteuid();
	struct stat st;

	if (safedir_stat(fd, shown, &st, err, errlen) < 0)
		return -1;
	if (st.st_uid != me && st.st_uid != 0) {
		snprintf(err, errlen,
			 "%s is owned by uid %u, neither root nor uid %u that "
			 "mailfs runs as: that user could replace what is in "
			 "it",
			 shown, (unsigned)st.st_uid, (unsigned)me);
		return -1;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		snprintf(err, errlen,
			 "%s is writable by its group or others (and not "
			 "sticky): they could replace what is in it",
			 shown);
		return -1;
	}
	return 0;
}

/* Checks the directory itself, opened as fd: owned by us, writable by
 * nobody else; then makes it 0700. 0 or -1 with err. */
static int safedir_check_own(int fd, const char *shown, char *err,
			     size_t errlen)
{
	uid_t me = geteuid();
	struct stat st;

	if (safedir_stat(fd, shown, &st, err, errlen) < 0)
		return -1;
	if (st.st_uid != me) {
		snprintf(
			err, errlen,
			"%s is owned by uid %u, not by uid %u that mailfs runs "
			"as",
			shown, (unsigned)st.st_uid, (unsigned)me);
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(err, errlen,
			 "%s is writable by its group or others, who could "
			 "have put files in it (chmod 700 it if they did not)",
			 shown);
		return -1;
	}
	if ((st.st_mode & 07777) != 0700 && fchmod(fd, 0700) < 0) {
		snprintf(err, errlen, "cannot make %s private: %s", shown,
			 strerror(errno));
		return -1;
	}
	return 0;
}

/* lstat()s name in dirfd, making it a directory (0700) if missing.
 * 0 or -1 with err. */
static int safedir_stat_or_make(int dirfd, const char *name, const char *shown,
				struct stat *st, char *err, size_t errlen)
{
	if (fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	if (errno == ENOENT &&
	    (mkdirat(dirfd, name, 0700) == 0 || errno == EEXIST) &&
	    fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	snprintf(err, errlen, "cannot make %s: %s", shown, strerror(errno));
	return -1;
}

int safedir_openat(int dirfd, const char *name, const char *shown, char *err,
		   size_t errlen)
{
	struct stat st;
	int fd;

	if (safedir_stat_or_make(dirfd, name, shown, &st, err, errlen) < 0)
		return -1;
	if (S_ISLNK(st.st_mode)) {
		snprintf(err, errlen,
			 "%s is a symbolic link: mailfs keeps its files only "
			 "in a real directory of its user's (give the "
			 "link's target instead)",
			 shown);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", shown);
		return -1;
	}
	fd = openat(dirfd, name,
		    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", shown,
			 errno == ELOOP || errno == ENOTDIR
				 ? "it changed while it was checked"
				 : strerror(errno));
		return -1;
	}
	if (safedir_check_own(fd, shown, err, errlen) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Follows the symbolic link name in *dirfd (checked as owned by us or
 * root): *rest becomes its target followed by what came after it, and
 * for an absolute target *dirfd becomes "/" and shown is emptied.
 * 0 or -1 with err.
 */
static int safedir_follow(int *dirfd, const char *name, char **rest,
			  const char *next, char *shown, const struct stat *st,
			  char *err, size_t errlen)
{
	uid_t me = geteuid();
	char target[PATH_MAX], *joined;
	ssize_t n;
	int root;

	if (st->st_uid != me && st->st_uid != 0) {
		snprintf(err, errlen,
			 "%s is a symbolic link owned by uid %u, neither root "
			 "nor uid %u that mailfs runs as: not followed",
			 shown, (unsigned)st->st_uid, (unsigned)me);
		return -1;
	}
	n = readlinkat(*dirfd, name, target, sizeof(target) - 1);
	if (n <= 0) {
		snprintf(err, errlen, "cannot read the link %s: %s", shown,
			 n < 0 ? strerror(errno) : "it is empty");
		return -1;
	}
	target[n] = '\0';
	if (asprintf(&joined, "%s/%s", target, next) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(*rest);
	*rest = joined;
	/* Relative: from the link's own directory, shown as that. */
	*strrchr(shown, '/') = '\0';
	if (target[0] != '/')
		return 0;
	root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		snprintf(err, errlen, "cannot open /: %s", strerror(errno));
		return -1;
	}
	close(*dirfd);
	*dirfd = root;
	shown[0] = '\0';
	return 0;
}

/* Appends "/name" to shown (PATH_MAX bytes), cut short if need be. */
static void safedir_shown_add(char *shown, const char *name)
{
	size_t len = strlen(shown);

	snprintf(shown + len, PATH_MAX - len, "/%s", name);
}

int safedir_open(const char *path, char *err, size_t errlen)
{
	char shown[PATH_MAX] = "", *rest, *p, *name, *next;
	unsigned links = 0;
	struct stat st;
	int dirfd, fd = -1;

	if (path[0] != '/') {
		snprintf(err, errlen, "%s is not an absolute path", path);
		return -1;
	}
	rest = strdup(path);
	dirfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (!rest || dirfd < 0) {
		snprintf(err, errlen, "cannot open /: %s",
			 rest ? strerror(errno) : "out of memory");
		goto out;
	}
	if (safedir_check_way(dirfd, "/", err, errlen) < 0)
		goto out;
	for (p = rest;;) {
		while (*p == '/')
			p++;
		name = p;
		p += strcspn(p, "/");
		next = *p ? p + 1 : p;
		*p = '\0';
		p = next;
		if (!*name) {
			/* "/" alone: not a directory mailfs may own */
			snprintf(err, errlen,
				 "%s is not a directory of its own", path);
			goto out;
		}
		if (!strcmp(name, "."))
			continue;
		safedir_shown_add(shown, name);
		if (!next[strspn(next, "/")]) {
			/* the last component: the directory itself */
			fd = safedir_openat(dirfd, name, shown, err, errlen);
			goto out;
		}
		if (safedir_stat_or_make(dirfd, name, shown, &st, err, errlen) <
		    0)
			goto out;
		if (S_ISLNK(st.st_mode)) {
			if (++links > SAFEDIR_MAX_LINKS) {
				snprintf(err, errlen,
					 "%s: too many symbolic links", path);
				goto out;
			}
			if (safedir_follow(&dirfd, name, &rest, next, shown,
					   &st, err, errlen) < 0)
				goto out;
			p = rest;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			snprintf(err, errlen, "%s is not a directory", shown);
			goto out;
		}
		fd = openat(dirfd, name,
			    O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			snprintf(err, errlen, "cannot open %s: %s", shown,
				 errno == ENOTDIR
					 ? "it changed while it was checked"
					 : strerror(errno));
			goto out;
		}
		close(dirfd);
		dirfd = fd;
		fd = -1;
		if (safedir_check_way(dirfd, shown, err, errlen) < 0)
			goto out;
	}
out:
	if (dirfd >= 0)
		close(dirfd);
	free(rest);
	return fd;
}
