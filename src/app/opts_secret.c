// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * opts_secret: the secrets the command line points to (see opts.h): the
 * password (password_command, password_file, $MAILFS_PASSWORD or a
 * prompt on the terminal) and the commands that print a secret
 * (password_command, oauth2_command), run under a deadline in a process
 * group of their own.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "opts.h"

#define OPTS_SECRET_PASSWORD_MAX 1024
/* Most output a secret command may print (all lines together). */
#define OPTS_SECRET_COMMAND_OUTPUT_MAX (1024 * 1024)
/* How long a secret command may go on once its first line is read (it
 * normally exits at once) before its process group is killed. */
#define OPTS_SECRET_COMMAND_GRACE_MS 500

/* Cuts s at the first CR or LF. */
static void opts_secret_chomp(char *s)
{
	s[strcspn(s, "\r\n")] = '\0';
}

/* Milliseconds on the monotonic clock. */
static long long opts_secret_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The controlling terminal, opened, when this process is in its
 * foreground process group (mailfs started from a shell, before it
 * daemonizes); else -1. A command run in a process group of its own is
 * given the terminal for its time, so that it may still prompt there:
 * in a background group, reading it would stop the command (SIGTTIN)
 * until the timeout killed it.
 */
static int opts_secret_terminal(void)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd >= 0 && tcgetpgrp(fd) != getpgrp()) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Takes the terminal back from the command's process group, and closes
 * it. SIGTTOU is blocked meanwhile: mailfs is in a background group
 * until tcsetpgrp() has run. */
static void opts_secret_terminal_restore(int tty)
{
	sigset_t ttou, old;

	if (tty < 0)
		return;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	pthread_sigmask(SIG_BLOCK, &ttou, &old);
	if (tcsetpgrp(tty, getpgrp()) < 0)
		perror("mailfs: cannot take the terminal back");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(tty);
}

/*
 * Starts /bin/sh -c cmd in a process group of its own (killed whole at
 * the timeout), with its stdout on a new pipe, whose read end goes to
 * *fd_r; with tty >= 0, that group becomes the terminal's foreground.
 * The child gets no blocked and no ignored signals (FUSE's threads block
 * them all, and an ignored SIGPIPE would survive exec). Returns 0 or
 * -errno.
 */
static int opts_secret_spawn(const char *cmd, int tty, pid_t *pid_r, int *fd_r)
{
	char *argv[] = {"sh", "-c", (char *)cmd, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int p[2], rc;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], STDOUT_FILENO);
	/* Run in the child after its setpgid(), with every signal blocked
	 * (glibc's posix_spawn), so SIGTTOU does not stop it. */
	if (tty >= 0)
		posix_spawn_file_actions_addtcsetpgrp_np(&fa, tty);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
						POSIX_SPAWN_SETSIGDEF |
						POSIX_SPAWN_SETPGROUP);
	rc = posix_spawn(pid_r, "/bin/sh", &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		return -rc;
	}
	*fd_r = p[0];
	return 0;
}

/*
 * Reads a command's output: the first line (up to CR, LF or the end of
 * the output) into buf, the rest read and dropped. Once that line is
 * complete (*line_r set), *deadline is brought forward to at most
 * OPTS_SECRET_COMMAND_GRACE_MS later: mailfs has what it needs, and a command
 * that keeps its stdout open (a helper left running, `echo pw; sleep
 * 20`) must not hold it up. Returns 0 at the end of the output, or
 * -ETIMEDOUT (*deadline passed first), -EMSGSIZE (first line too long
 * for buf), -EFBIG (more than OPTS_SECRET_COMMAND_OUTPUT_MAX bytes) or another
 * -errno.
 */
static int opts_secret_read_line(int fd, long long *deadline, char *buf,
				 size_t len, bool *line_r)
{
	char chunk[4096];
	size_t n = 0, total = 0;
	bool too_long = false;
	int rc = 0;

	*line_r = false;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		long long left = *deadline - opts_secret_now_ms();
		ssize_t r;
		size_t i;

		if (left <= 0) {
			rc = -ETIMEDOUT;
			break;
		}
		if (poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (pfd.revents == 0)
			continue;
		r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : 0;
			break;
		}
		total += (size_t)r;
		if (total > OPTS_SECRET_COMMAND_OUTPUT_MAX) {
			rc = -EFBIG;
			break;
		}
		for (i = 0; i < (size_t)r && !*line_r && !too_long; i++) {
			if (chunk[i] == '\n' || chunk[i] == '\r')
				*line_r = true;
			else if (n + 1 >= len)
				too_long = true;
			else
				buf[n++] = chunk[i];
		}
		if (*line_r && *deadline > opts_secret_now_ms() +
						   OPTS_SECRET_COMMAND_GRACE_MS)
			*deadline = opts_secret_now_ms() +
				    OPTS_SECRET_COMMAND_GRACE_MS;
	}
	explicit_bzero(chunk, sizeof(chunk));
	buf[n] = '\0';
	if (too_long) {
		*line_r = false;
		return -EMSGSIZE;
	}
	if (rc == 0 && !*line_r) {
		/* The end of the output ends the line too. */
		*line_r = true;
		if (*deadline >
		    opts_secret_now_ms() + OPTS_SECRET_COMMAND_GRACE_MS)
			*deadline = opts_secret_now_ms() +
				    OPTS_SECRET_COMMAND_GRACE_MS;
	}
	return rc;
}

/*
 * Waits for the command to end; at the deadline, or at once when
 * kill_now is set, its process group is killed first. Returns true when
 * it was killed so (its status then tells nothing of its own).
 */
static bool opts_secret_reap(pid_t pid, long long deadline, bool kill_now,
			     int *status_r)
{
	while (!kill_now) {
		pid_t r = waitpid(pid, status_r, WNOHANG);

		if (r == pid || (r < 0 && errno != EINTR))
			return false;
		if (opts_secret_now_ms() >= deadline)
			kill_now = true;
		else
			nanosleep(&(struct timespec){0, 10 * 1000 * 1000},
				  NULL);
	}
	kill(-pid, SIGKILL);
	while (waitpid(pid, status_r, 0) < 0 && errno == EINTR)
		;
	return true;
}

/* Runs a command that prints a secret and takes its first line (see
 * opts.h): spawned, read under the deadline, reaped, and every way it
 * can fail told in err. */
int opts_secret_command(const char *what, const char *noun, const char *cmd,
			unsigned timeout_s, char *buf, size_t len, char *err,
			size_t errlen)
{
	long long deadline = opts_secret_now_ms() + timeout_s * 1000ll;
	int fd, rc, status = 0, tty = opts_secret_terminal();
	bool line, killed;
	pid_t pid;

	buf[0] = '\0';
	rc = opts_secret_spawn(cmd, tty, &pid, &fd);
	if (rc < 0) {
		opts_secret_terminal_restore(tty);
		snprintf(err, errlen, "cannot run %s: %s", what, strerror(-rc));
		return -1;
	}
	rc = opts_secret_read_line(fd, &deadline, buf, len, &line);
	close(fd);
	/* With the line read, a command still running at the (shortened)
	 * deadline is killed: what it does then is not mailfs's concern. */
	killed = opts_secret_reap(pid, deadline, rc < 0 && rc != -ETIMEDOUT,
				  &status);
	opts_secret_terminal_restore(tty);
	if (rc == -EMSGSIZE)
		snprintf(err, errlen, "%s printed a line longer than %zu bytes",
			 what, len - 1);
	else if (rc == -EFBIG)
		snprintf(err, errlen, "%s printed more than %d bytes", what,
			 OPTS_SECRET_COMMAND_OUTPUT_MAX);
	else if (rc < 0 && rc != -ETIMEDOUT)
		snprintf(err, errlen, "%s: %s", what, strerror(-rc));
	else if (!line)
		snprintf(err, errlen,
			 "%s printed no %s within %u s (-o timeout)", what,
			 noun, timeout_s);
	else if (!killed && WIFSIGNALED(status))
		snprintf(err, errlen, "%s was killed by signal %d", what,
			 WTERMSIG(status));
	else if (!killed && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
		snprintf(err, errlen, "%s failed (exit status %d)", what,
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	else if (!buf[0])
		snprintf(err, errlen, "%s printed no %s", what, noun);
	else
		return 0;
	explicit_bzero(buf, len);
	return -1;
}

/* Runs password_command, bounded by -o timeout, and keeps the first line
 * of its output. */
static char *opts_secret_password_command(const char *cmd, unsigned timeout_s,
					  char *err, size_t errlen)
{
	char buf[OPTS_SECRET_PASSWORD_MAX];
	char *pw;

	if (opts_secret_command("password_command", "password", cmd, timeout_s,
				buf, sizeof(buf), err, errlen) < 0)
		return NULL;
	pw = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	if (!pw)
		snprintf(err, errlen, "out of memory");
	return pw;
}

/* Reads the first line of path, refusing a file others may read. */
static char *opts_secret_password_file(const char *path, char *err,
				       size_t errlen)
{
	char buf[OPTS_SECRET_PASSWORD_MAX];
	struct stat st;
	char *pw;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "password_file %s: %s", path,
			 strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "password_file %s is not a regular file",
			 path);
		goto fail_close;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen,
			 "password_file %s may be read by group or others "
			 "(chmod 600 it)",
			 path);
		goto fail_close;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		snprintf(err, errlen, "password_file %s: %s", path,
			 strerror(errno));
		goto fail_close;
	}
	close(fd);
	buf[n] = '\0';
	opts_secret_chomp(buf);
	if (!*buf) {
		snprintf(err, errlen, "password_file %s is empty", path);
		return NULL;
	}
	pw = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return pw;
fail_close:
	close(fd);
	return NULL;
}

/* Prompts on the controlling terminal with echo off. */
static char *opts_secret_password_prompt(const struct opts *o, char *err,
					 size_t errlen)
{
	char buf[OPTS_SECRET_PASSWORD_MAX];
	struct termios old, noecho;
	bool echo_off;
	char *pw = NULL;
	FILE *tty;

	tty = fopen("/dev/tty", "r+");
	if (!tty) {
		snprintf(err, errlen,
			 "no password given and no terminal to ask on: use "
			 "-o password_command=, -o password_file= or "
			 "MAILFS_PASSWORD");
		return NULL;
	}
	fprintf(tty, "Password for %s@%s: ", o->url.user, o->url.host);
	fflush(tty);
	echo_off = tcgetattr(fileno(tty), &old) == 0;
	if (echo_off) {
		noecho = old;
		noecho.c_lflag &= ~ECHO;
		tcsetattr(fileno(tty), TCSAFLUSH, &noecho);
	}
	if (fgets(buf, sizeof(buf), tty)) {
		opts_secret_chomp(buf);
		pw = strdup(buf);
		explicit_bzero(buf, sizeof(buf));
	}
	if (echo_off)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputc('\n', tty);
	fclose(tty);
	if (!pw)
		snprintf(err, errlen, "no password read from the terminal");
	return pw;
}

/* Finds the password (see opts.h): password_command, password_file,
 * $MAILFS_PASSWORD taken at start, else a prompt. */
char *opts_secret_password(const struct opts *o, char *err, size_t errlen)
{
	const char *env;
	char *pw;

	if (o->password_command)
		return opts_secret_password_command(o->password_command,
						    o->timeout, err, errlen);
	if (o->password_file)
		return opts_secret_password_file(o->password_file, err, errlen);
	env = o->env_password;
	if (env) {
		pw = strdup(env);
		if (!pw)
			snprintf(err, errlen, "out of memory");
		return pw;
	}
	return opts_secret_password_prompt(o, err, errlen);
}
