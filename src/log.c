// SPDX-License-Identifier: GPL-2.0-or-later
/* log: stderr before daemonizing, syslog after; see log.h. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "log.h"

static bool log_debug_on;
static bool log_syslog;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_init(bool debug)
{
	log_debug_on = debug;
}

void log_to_syslog(void)
{
	openlog("mailfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = true;
}

bool log_debugging(void)
{
	return log_debug_on;
}

/* Replaces control characters (a server's text may carry terminal
 * escapes) with '?'; UTF-8 and other bytes above 0x7f stay. */
static void log_sanitize(char *msg)
{
	for (; *msg; msg++)
		if ((unsigned char)*msg < 0x20 || *msg == 0x7f)
			*msg = '?';
}

/*
 * Writes one message at priority pri, with ": strerror(err)" appended
 * when err is not 0. One lock keeps lines from interleaving on stderr.
 */
static void log_vmsg(int pri, int err, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void log_vmsg(int pri, int err, const char *fmt, va_list ap)
{
	char msg[2048];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_sanitize(msg);
	if (log_syslog) {
		if (err)
			syslog(pri, "%s: %s", msg, strerror(err));
		else
			syslog(pri, "%s", msg);
		return;
	}
	pthread_mutex_lock(&log_lock);
	if (err)
		fprintf(stderr, "mailfs: %s: %s\n", msg, strerror(err));
	else
		fprintf(stderr, "mailfs: %s\n", msg);
	pthread_mutex_unlock(&log_lock);
}

void log_warn(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_WARNING, saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_WARNING, 0, fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_INFO, 0, fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!log_debug_on)
		return;
	va_start(ap, fmt);
	log_vmsg(LOG_DEBUG, 0, fmt, ap);
	va_end(ap);
}
