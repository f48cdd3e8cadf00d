/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fuzz_net: a fake network for the session fuzz targets. The session
 * code connects with net_connect(); the targets are linked with
 *   -Wl,--wrap=net_connect -Wl,--defsym=__wrap_net_connect=fuzz_net_connect
 * so that this connect hands out one end of a socketpair instead, whose
 * other end already holds a script of server bytes and then shows end
 * of stream. Nothing waits: once the script is read, every read sees
 * EOF at once. What the client writes is left unread in the socket.
 */
#ifndef MAILFS_FUZZ_NET_H
#define MAILFS_FUZZ_NET_H

#include <stddef.h>

struct net_conn;

/*
 * Makes the connection that the next connect gets: its peer has sent the
 * len bytes at data (as much as the socket takes; the rest is dropped)
 * and closed its sending side. Returns 0, or -1 if no socket could be
 * made. A connection not taken is dropped by the next call or by
 * fuzz_net_end().
 */
int fuzz_net_script(const void *data, size_t len);

/* Closes the server end of the last script's connection. */
void fuzz_net_end(void);

/* Stands in for net_connect() (see above): the connection made by
 * fuzz_net_script(), once; "connection refused" otherwise. */
struct net_conn *fuzz_net_connect(const char *host, const char *port,
				  int timeout_ms, char *err, size_t errlen);

#endif
