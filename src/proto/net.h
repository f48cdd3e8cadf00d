/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * net: TCP connections, TLS and timeouts. The only module that talks to
 * OpenSSL. Every wait on the network is bounded by the connection's
 * timeout; nothing here ever blocks forever.
 *
 * Return contract: functions returning int give 0 on success and a
 * negative errno on failure (-ETIMEDOUT when a wait ran out,
 * -ECONNRESET when the peer went away, -EPROTO for a TLS failure,
 * -EMSGSIZE for an overlong line). Functions that take an `err` buffer
 * also write one human readable line there (no trailing newline),
 * suitable for showing to the user as is.
 *
 * Timeouts: a timeout_ms below 0 is taken as 0 (never wait). A read
 * (net_read, and each refill inside net_read_line) has one deadline for
 * its first byte; net_write bounds each wait for the socket separately,
 * so a long upload that keeps moving is not cut off; the TLS handshake
 * has one deadline for the whole handshake. Name resolution is bounded
 * only by the system resolver's own timeouts.
 *
 * Dead connections: after a failed or refused net_start_tls, a failed
 * net_write, -EMSGSIZE, or a net_read_line error once part of an
 * overlong line was consumed, every later read/write returns the same
 * error; the caller can only net_close(). -ETIMEDOUT from net_read or
 * net_read_line (short line) leaves the connection usable: the call can
 * be repeated.
 *
 * A TLS peer that closes TCP without close_notify gives end of stream,
 * as in plaintext; mail protocols frame every response, so truncation
 * is caught by the caller.
 *
 * SIGPIPE is never raised: every send uses MSG_NOSIGNAL, TLS included.
 *
 * Compression (net_start_deflate(), IMAP COMPRESS=DEFLATE): sits below
 * the read buffer and above TLS; every call above keeps its contract,
 * counting inflated bytes. Corrupt compressed input gives -EPROTO and
 * leaves the connection dead.
 */
#ifndef MAILFS_NET_H
#define MAILFS_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "sha256.h"

struct net_conn;
struct net_tls_ctx;

/*
 * Creates the TLS settings shared by every connection of a mount.
 * cafile: PEM file of trusted CAs, or NULL for the system store.
 * insecure: skip certificate and host name verification.
 * Returns NULL (and fills err) when the CA file cannot be loaded.
 * The context is immutable once made and safe to share between threads.
 */
struct net_tls_ctx *net_tls_ctx_new(const char *cafile, bool insecure,
				    char *err, size_t errlen);
void net_tls_ctx_free(struct net_tls_ctx *ctx);

/*
 * Resolves host and connects to host:port (port is a decimal string),
 * trying each address in turn, each attempt bounded by timeout_ms.
 * Returns the connection (owned by the caller) or NULL with err filled,
 * e.g. "cannot connect to mail.example.org:993: Connection refused".
 */
struct net_conn *net_connect(const char *host, const char *port, int timeout_ms,
			     char *err, size_t errlen);

/*
 * Wraps an already connected stream socket (a socketpair, a socket made
 * elsewhere; used by the unit tests) and switches it to non-blocking
 * mode. On success the connection owns fd; on failure NULL is returned
 * with errno set and fd still belongs to the caller.
 */
struct net_conn *net_conn_from_fd(int fd, int timeout_ms);

/*
 * Starts TLS on an open connection (implicit TLS right after connect, or
 * after STARTTLS/STLS was accepted). Sends SNI for host and, unless the
 * context is insecure, verifies the chain and that the certificate
 * matches host. Refuses (-EPROTO) if plaintext bytes are still buffered,
 * since those could be injected by an attacker before the handshake.
 */
int net_start_tls(struct net_conn *c, struct net_tls_ctx *ctx, const char *host,
		  char *err, size_t errlen);

bool net_is_tls(const struct net_conn *c);

/*
 * Starts COMPRESS=DEFLATE (RFC 4978) once the server has accepted it:
 * from now on what net_write() gets is deflated (raw deflate, a sync
 * flush ending every call, so the server can read each command whole),
 * then encrypted if TLS is on; what is read is decrypted, then
 * inflated, in bounded pieces into the read buffer or the caller's (a
 * compression bomb costs time, never memory). pending holds the bytes
 * the caller had read past the server's OK: the start of the compressed
 * stream, as are bytes still buffered here (together at most 16 KiB,
 * else -EPROTO). Any failure leaves the connection dead: the server
 * compresses already, so going on without is impossible.
 */
int net_start_deflate(struct net_conn *c, const void *pending, size_t len,
		      char *err, size_t errlen);

bool net_is_compressed(const struct net_conn *c);

/* Sets the bound of every later wait on this connection. */
void net_set_timeout(struct net_conn *c, int timeout_ms);

/*
 * Reads up to len bytes, from the internal buffer first, waiting at most
 * the timeout for the first byte. Returns the number of bytes (> 0),
 * 0 at end of stream, or a negative errno.
 */
ssize_t net_read(struct net_conn *c, void *buf, size_t len);

/*
 * Reads one line ending in LF. The line is stored in buf without its
 * CRLF (or bare LF) and NUL terminated; its length goes to *len_r.
 * A line longer than max - 1 bytes gives -EMSGSIZE (the connection is
 * then unusable). End of stream before LF gives -ECONNRESET.
 */
int net_read_line(struct net_conn *c, char *buf, size_t max, size_t *len_r);

/* Writes all of buf or fails; each wait for the socket is bounded. */
int net_write(struct net_conn *c, const void *buf, size_t len);

/* Bytes already received and buffered but not yet consumed (with
 * compression: inflated bytes, and compressed ones not inflated yet). */
size_t net_buffered(const struct net_conn *c);

/* Waits at most ms for data to read (buffered or TLS-pending counts;
 * with compression, only bytes that inflate to something do, so that
 * a read after 1 finds data at once). Returns 1 when there is some (or
 * end of stream), 0 when none came, -errno on an error. A wait that
 * ends empty leaves the connection as it was. */
int net_wait_readable(struct net_conn *c, int ms);

/* True when the peer has closed its side (or reset the connection):
 * checked without waiting, before a command is written, so that a
 * command is never sent into a connection already known dead. */
bool net_peer_gone(const struct net_conn *c);

/*
 * The stop switch, for a process that is exiting (unmounted, or asked
 * to stop by a signal): from this call on, every wait of every
 * connection, in any thread, blocked now or started later, ends at once
 * with -ECANCELED, and net_connect() refuses. Bytes that go out without
 * waiting still do (a LOGOUT), but no answer is waited for. Cannot be
 * undone. Thread-safe; not for a signal handler.
 */
void net_stop_all(void);
/* True once net_stop_all() was called. */
bool net_stopping(void);

/* Closes the connection (TLS close_notify best effort) and frees it. */
void net_close(struct net_conn *c);

#endif
