/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * log: messages for the user and the protocol trace.
 *
 * Before the process daemonizes everything goes to stderr; after, to
 * syslog (daemon facility) unless running in the foreground.
 * log_warn() appends ": strerror(errno)", log_warnx() does not (the
 * OpenSMTPD convention). log_debug() prints only with -d.
 */
#ifndef MAILFS_LOG_H
#define MAILFS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

void log_init(bool debug);
/* Switches from stderr to syslog (called after daemonizing). */
void log_to_syslog(void);

/* With -f: stamp each line with the local time (after start-up, whose
 * errors stay plain one-line messages). */
void log_timestamps(bool on);
/* Connections are numbered (log_conn_new()); the protocol trace of the
 * connection a thread works on (log_set_conn()) carries "[#N]". */
unsigned log_conn_new(void);
void log_set_conn(unsigned id);
/* The last warning logged and when (wall clock); false if none. */
bool log_last_warning(char *buf, size_t len, time_t *when_r);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
