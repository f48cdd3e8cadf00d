// SPDX-License-Identifier: GPL-2.0-or-later
/* log: stderr before daemonizing, syslog after; see log.h. */
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "log.h"

static bool log_debug_on;
static bool log_syslog;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static bool log_stamps;
static _Atomic unsigned log_conns;
static _Thread_local unsigned log_conn;
static char log_last[512]; /* under log_lock */
static time_t log_last_at;

void log_timestamps(bool on)
{
	log_stamps = on;
}

unsigned log_conn_new(void)
{
	unsigned id = ++log_conns;

	log_conn = id;
	return id;
}

void log_set_conn(unsigned id)
{
	log_conn = id;
}

bool log_last_warning(char *buf, size_t len, time_t *when_r)
{
	bool any;

	pthread_mutex_lock(&log_lock);
	any = log_last_at != 0;
	snprintf(buf, len, "%s", log_last);
	*when_r = log_last_at;
	pthread_mutex_unlock(&log_lock);
	return any;
}

/* "2026-11-26 10:48:10.123 ": local time to the millisecond. */
static void log_stamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ld ", ts.tv_nsec / 1000000);
}

void log_init(bool debug)
{
	log_debug_on = debug;
}

void log_to_syslog(void)
{
	openlog("mailfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = true;
}

/* Replaces control characters (a server's text may carry terminal
 * escapes) with '?'; UTF-8 and other bytes above 0x7f stay. */
static void log_sanitize(char *msg)
{
	unsigned char *p = (unsigned char *)msg;

	while (*p) {
		unsigned cp = *p, len = 1, i;

		if (cp >= 0x80) {
			/* A UTF-8 sequence: its length and code point. */
			len = cp >= 0xf0   ? 4
			      : cp >= 0xe0 ? 3
			      : cp >= 0xc2 ? 2
					   : 0;
			cp &= len == 4 ? 0x07 : len == 3 ? 0x0f : 0x1f;
			for (i = 1; i < len; i++) {
				if ((p[i] & 0xc0) != 0x80)
					break;
				cp = cp << 6 | (p[i] & 0x3f);
			}
			if (len == 0 || i < len || cp > 0x10ffff) {
				*p++ = '?'; /* not UTF-8: that byte goes */
				continue;
			}
		}
		/* C0 and C1 controls and DEL: a terminal would act on them. */
		if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f))
			memset(p, '?', len);
		p += len;
	}
}

/*
 * Writes one message at priority pri, with ": strerror(err)" appended
 * when err is not 0. One lock keeps lines from interleaving on stderr.
 */
static void log_vmsg(int pri, int err, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static void log_vmsg(int pri, int err, const char *fmt, va_list ap)
{
	char msg[2048], stamp[40] = "";
	size_t off = 0;

	if (pri == LOG_DEBUG && log_conn)
		off = (size_t)snprintf(msg, sizeof(msg), "[#%u] ", log_conn);
	vsnprintf(msg + off, sizeof(msg) - off, fmt, ap);
	log_sanitize(msg);
	if (pri <= LOG_WARNING) {
		pthread_mutex_lock(&log_lock);
		snprintf(log_last, sizeof(log_last), "%.400s%s%.100s", msg,
			 err ? ": " : "", err ? strerror(err) : "");
		log_last_at = time(NULL);
		pthread_mutex_unlock(&log_lock);
	}
	if (log_stamps && !log_syslog)
		log_stamp(stamp, sizeof(stamp));
	if (log_syslog) {
		if (err)
			syslog(pri, "%s: %s", msg, strerror(err));
		else
			syslog(pri, "%s", msg);
		return;
	}
	pthread_mutex_lock(&log_lock);
	if (err)
		fprintf(stderr, "%smailfs: %s: %s\n", stamp, msg,
			strerror(err));
	else
		fprintf(stderr, "%smailfs: %s\n", stamp, msg);
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
