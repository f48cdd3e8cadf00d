// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * mountlock: a mount's lock on a directory of its own, which tells a
 * holder that is exiting from one that is serving; see mountlock.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "mountlock.h"

/* Locks one process holds at most (the cache; a POP3 store). */
#define MOUNTLOCK_MAX 4
/* How often a lock whose holder is exiting is tried again. */
#define MOUNTLOCK_POLL_MS 20
/* Room for a mount point escaped as in mountinfo (4 bytes a byte). */
#define MOUNTLOCK_ESCAPED (4 * PATH_MAX)

static const char *const mountlock_names[] = {"starting", "mounted", "exiting"};

/* This process's locks and what it announced; under mountlock_mu. */
static pthread_mutex_t mountlock_mu = PTHREAD_MUTEX_INITIALIZER;
static int mountlock_fds[MOUNTLOCK_MAX];
static size_t mountlock_n;
static enum mountlock_state mountlock_cur = MOUNTLOCK_STARTING;
static char mountlock_mp[MOUNTLOCK_ESCAPED]; /* escaped */

/* Escapes path as mountinfo does (space, tab, newline and backslash as
 * \ooo) into out (MOUNTLOCK_ESCAPED bytes); false if it does not fit. */
static bool mountlock_escape(const char *path, char *out)
{
	size_t n = 0;

	for (; *path; path++) {
		unsigned char c = (unsigned char)*path;

		if (n + 5 > MOUNTLOCK_ESCAPED)
			return false;
		if (c == ' ' || c == '\t' || c == '\n' || c == '\\')
			n += (size_t)sprintf(out + n, "\\%03o", c);
		else
			out[n++] = (char)c;
	}
	out[n] = '\0';
	return true;
}

/* Whether escaped (a mount point as mountinfo writes it) is mounted in
 * pid's table by a file system other than skip_type. */
static bool mountlock_in_table(pid_t pid, const char *escaped,
			       const char *skip_type)
{
	char path[64], *line = NULL, *f[5], *save, *dash, type[256];
	size_t cap = 0;
	bool found = false;
	FILE *fp;
	int i;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%ld/mountinfo", (long)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/mountinfo");
	fp = fopen(path, "re");
	while (fp && !found && getline(&line, &cap, fp) > 0) {
		dash = strstr(line, " - ");
		if (!dash || sscanf(dash + 3, "%255s", type) != 1)
			continue;
		*dash = '\0';
		/* Field 5 is the mount point. */
		f[0] = strtok_r(line, " ", &save);
		for (i = 1; i < 5 && f[i - 1]; i++)
			f[i] = strtok_r(NULL, " ", &save);
		if (f[4] && !strcmp(f[4], escaped) &&
		    (!skip_type || strcmp(type, skip_type)))
			found = true;
	}
	free(line);
	if (fp)
		fclose(fp);
	return found;
}

bool mountlock_is_mounted(pid_t pid, const char *path, const char *skip_type)
{
	char *escaped = malloc(MOUNTLOCK_ESCAPED);
	bool r;

	if (!escaped)
		return false;
	r = mountlock_escape(path, escaped) &&
	    mountlock_in_table(pid, escaped, skip_type);
	free(escaped);
	return r;
}

/* Writes this process's line into fd (mountlock_mu held; a local file
 * that no FUSE request waits on). */
static void mountlock_write(int fd)
{
	static char buf[MOUNTLOCK_ESCAPED + 64];
	int n;

	n = snprintf(buf, sizeof(buf), "mailfs %ld %s\n%s%s", (long)getpid(),
		     mountlock_names[mountlock_cur],
		     mountlock_cur == MOUNTLOCK_MOUNTED ? mountlock_mp : "",
		     mountlock_cur == MOUNTLOCK_MOUNTED ? "\n" : "");
	if (n < 0 || (size_t)n >= sizeof(buf))
		return;
	/* A line left stale only makes another mailfs wait, bounded. */
	if (pwrite(fd, buf, (size_t)n, 0) != n || ftruncate(fd, n) < 0)
		return;
}

/*
 * Reads the holder's line from fd: true when it is alive and serving
 * (starting, or mounted with its mount still there), or wrote nothing.
 * *pid_r gets its pid (0 if unknown).
 */
static bool mountlock_holder_live(int fd, long *pid_r)
{
	char *buf = malloc(MOUNTLOCK_ESCAPED + 64), state[16], *mp, *end;
	bool live = false;
	ssize_t n;
	long pid;

	*pid_r = 0;
	if (!buf)
		return true; /* cannot tell: do not wait */
	n = pread(fd, buf, MOUNTLOCK_ESCAPED + 63, 0);
	if (n == 0) {
		/* A mailfs that writes no line (an older one), or one that
		 * has just made the file: as before, in use. */
		free(buf);
		return true;
	}
	if (n > 0)
		buf[n] = '\0';
	if (n < 0 || sscanf(buf, "mailfs %ld %15s", &pid, state) != 2 ||
	    pid <= 0) {
		free(buf);
		return false; /* half written: read again */
	}
	*pid_r = pid;
	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
		live = false; /* its lock outlived it for a moment */
	} else if (!strcmp(state, "starting")) {
		live = true;
	} else if (!strcmp(state, "mounted")) {
		mp = strchr(buf, '\n');
		end = mp ? strchr(mp + 1, '\n') : NULL;
		if (end) {
			*end = '\0';
			live = mountlock_in_table((pid_t)pid, mp + 1, "autofs");
		}
	}
	free(buf);
	return live;
}

/* Adds fd to this process's locks and writes the state into it. */
static void mountlock_register(int fd)
{
	pthread_mutex_lock(&mountlock_mu);
	if (mountlock_n < MOUNTLOCK_MAX)
		mountlock_fds[mountlock_n++] = fd;
	mountlock_write(fd);
	pthread_mutex_unlock(&mountlock_mu);
}

/* The message for a lock that stays taken. */
static void mountlock_busy(char *err, size_t errlen, const char *what,
			   const char *dir, long pid, const char *tail)
{
	char who[32] = "";

	if (pid > 0)
		snprintf(who, sizeof(who), " (pid %ld)", pid);
	snprintf(err, errlen, "the %s %s is in use by another mailfs%s%s", what,
		 dir, who, tail);
}

int mountlock_take(int dirfd, const char *dir, const char *what, int wait_ms,
		   char *err, size_t errlen)
{
	long long deadline = clock_now_ms() + (wait_ms > 0 ? wait_ms : 0);
	struct timespec pause = {0, MOUNTLOCK_POLL_MS * 1000000L};
	long pid;
	int fd;

	fd = openat(dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open %s/lock: %s", dir,
			 strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			snprintf(err, errlen, "cannot lock %s/lock: %s", dir,
				 strerror(errno));
			close(fd);
			return -1;
		}
		if (mountlock_holder_live(fd, &pid)) {
			mountlock_busy(err, errlen, what, dir, pid, "");
			close(fd);
			return -1;
		}
		if (clock_now_ms() >= deadline) {
			mountlock_busy(err, errlen, what, dir, pid,
				       ", which is exiting but did not let it "
				       "go in time");
			close(fd);
			return -1;
		}
		nanosleep(&pause, NULL);
	}
	mountlock_register(fd);
	return fd;
}

void mountlock_release(int fd)
{
	size_t i;

	if (fd < 0)
		return;
	pthread_mutex_lock(&mountlock_mu);
	for (i = 0; i < mountlock_n; i++) {
		if (mountlock_fds[i] == fd) {
			mountlock_fds[i] = mountlock_fds[--mountlock_n];
			break;
		}
	}
	pthread_mutex_unlock(&mountlock_mu);
	close(fd);
}

void mountlock_announce(enum mountlock_state state, const char *mountpoint)
{
	size_t i;

	pthread_mutex_lock(&mountlock_mu);
	mountlock_cur = state;
	if (state == MOUNTLOCK_MOUNTED &&
	    !mountlock_escape(mountpoint ? mountpoint : "", mountlock_mp))
		mountlock_mp[0] = '\0';
	for (i = 0; i < mountlock_n; i++)
		mountlock_write(mountlock_fds[i]);
	pthread_mutex_unlock(&mountlock_mu);
}
