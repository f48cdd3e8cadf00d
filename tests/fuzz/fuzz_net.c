// SPDX-License-Identifier: GPL-2.0-or-later
/* fuzz_net: the fake network of the session fuzz targets (fuzz_net.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_net.h"
#include "net.h"

/* Room asked for in the server end's send buffer; the kernel may give
 * less (net.core.wmem_max), which only shortens long scripts. */
#define FUZZ_NET_SNDBUF (1024 * 1024)

/* The client end waiting for fuzz_net_connect(), and the server end
 * kept open (so that the client's writes succeed) until the next
 * script; -1 when none. */
static int fuzz_net_client = -1;
static int fuzz_net_server = -1;

/* Closes both ends left from an earlier script. */
void fuzz_net_end(void)
{
	if (fuzz_net_client >= 0)
		close(fuzz_net_client);
	if (fuzz_net_server >= 0)
		close(fuzz_net_server);
	fuzz_net_client = fuzz_net_server = -1;
}

/* Makes a socketpair, writes the script into the server end without
 * blocking, and shuts that end's sending side so the client sees EOF
 * after the script. */
int fuzz_net_script(const void *data, size_t len)
{
	int sv[2], size = FUZZ_NET_SNDBUF;
	const char *p = data;

	fuzz_net_end();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
		       sv) < 0)
		return -1;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	while (len > 0) {
		ssize_t n = send(sv[1], p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* the socket is full: the rest is dropped */
		p += n;
		len -= (size_t)n;
	}
	shutdown(sv[1], SHUT_WR);
	fuzz_net_client = sv[0];
	fuzz_net_server = sv[1];
	return 0;
}

/* Hands out the scripted connection once, as net_connect() would hand
 * out a new one; ownership of the client end goes with it. */
struct net_conn *fuzz_net_connect(const char *host, const char *port,
				  int timeout_ms, char *err, size_t errlen)
{
	struct net_conn *c;

	if (fuzz_net_client < 0) {
		snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port,
			 strerror(ECONNREFUSED));
		return NULL;
	}
	c = net_conn_from_fd(fuzz_net_client, timeout_ms);
	if (!c) {
		snprintf(err, errlen, "cannot connect to %s:%s: %s", host, port,
			 strerror(errno));
		return NULL;
	}
	fuzz_net_client = -1;
	return c;
}
