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

void log_init(bool debug);
/* Switches from stderr to syslog (called after daemonizing). */
void log_to_syslog(void);
bool log_debugging(void);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
