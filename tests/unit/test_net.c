// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of net: real sockets on loopback and socketpairs, a real
 * TLS server (OpenSSL, in a thread) with a throwaway CA made here.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define ZLIB_CONST
#include <zlib.h>

#include "net.h"

/* Generous bound for waits that should succeed at once. */
#define T_LONG_MS 5000
/* Short timeout for the tests that expect one to run out. */
#define T_SHORT_MS 200
/* The size of net's read buffer, to make reads bigger than it. */
#define NET_TEST_BIG 65536

/* ---- helpers: sockets and clocks ---- */

/* Milliseconds on the monotonic clock. */
static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/*
 * Opens a listening TCP socket on 127.0.0.1 with a kernel-chosen port,
 * written as a decimal string to port. Returns the socket (owned by the
 * caller).
 */
static int listen_loopback(int backlog, char *port, size_t len)
{
	struct sockaddr_in sa = {0};
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(fd, backlog), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(port, len, "%u", ntohs(sa.sin_port));
	return fd;
}

/* Makes a socketpair; sv[0] goes to net, sv[1] plays the server. */
static void make_pair(int sv[2])
{
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
}

/* Sends all of s on a blocking socket, never raising SIGPIPE. */
static void send_all(int fd, const void *s, size_t len)
{
	const char *p = s;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

/* What a writer thread sends: fragments, with pauses between them. */
struct frag_writer {
	int fd; /* owned: closed when done */
	const char *const *frags; /* borrowed, NULL-terminated */
	const char *big; /* borrowed; sent after the fragments if set */
	size_t big_len;
	pthread_t thread;
};

/*
 * Sends each fragment as its own write with a pause in between, so the
 * reader sees them arrive separately, then closes the socket.
 */
static void *frag_writer_main(void *arg)
{
	struct frag_writer *w = arg;
	size_t i;

	for (i = 0; w->frags && w->frags[i]; i++) {
		send_all(w->fd, w->frags[i], strlen(w->frags[i]));
		usleep(3000);
	}
	if (w->big)
		send_all(w->fd, w->big, w->big_len);
	close(w->fd);
	return NULL;
}

/* Starts a writer thread that owns fd from now on. */
static void frag_writer_start(struct frag_writer *w, int fd,
			      const char *const *frags)
{
	w->fd = fd;
	w->frags = frags;
	ck_assert_int_eq(pthread_create(&w->thread, NULL, frag_writer_main, w),
			 0);
}

/* Waits for the writer thread to finish (it closes its socket). */
static void frag_writer_join(struct frag_writer *w)
{
	pthread_join(w->thread, NULL);
}

/* Reads one line and checks it. */
static void expect_line(struct net_conn *c, const char *want)
{
	char buf[256];
	size_t len = 12345;
	int rc = net_read_line(c, buf, sizeof(buf), &len);

	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(len, strlen(want));
	ck_assert_mem_eq(buf, want, len);
	ck_assert_int_eq(buf[len], '\0');
}

/* Reads exactly len bytes with net_read, in whatever pieces come. */
static void read_exact(struct net_conn *c, void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = net_read(c, p, len);

		ck_assert_int_gt(n, 0);
		p += n;
		len -= (size_t)n;
	}
}

/* ---- plain TCP ---- */

/* Nobody listens: NULL and a message that says "refused". */
START_TEST(test_connect_refused)
{
	char port[16], err[256] = "";
	int fd = listen_loopback(1, port, sizeof(port));
	struct net_conn *c;

	close(fd); /* nobody listens on port now */
	c = net_connect("127.0.0.1", port, T_LONG_MS, err, sizeof(err));
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err, "refused") != NULL, "err: %s", err);
	ck_assert_msg(strstr(err, "cannot connect to 127.0.0.1:") == err,
		      "err: %s", err);
	ck_assert_msg(strstr(err, port) != NULL, "err: %s", err);
}
END_TEST

/* A name that cannot resolve: NULL and "cannot resolve NAME: ...". */
START_TEST(test_connect_unresolvable)
{
	char err[256] = "";
	struct net_conn *c;

	/* An empty label: glibc refuses it without asking any DNS server. */
	c = net_connect("bad..name", "143", T_LONG_MS, err, sizeof(err));
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err, "cannot resolve bad..name: ") == err,
		      "err: %s", err);
}
END_TEST

/*
 * Finds the socket of this process whose local address is addr (the
 * connection net made is opaque, so it is found by its port).
 */
static int find_local_socket(const struct sockaddr_in *addr, int skip)
{
	struct sockaddr_in sa;
	socklen_t sl;
	int fd;

	for (fd = 3; fd < 1024; fd++) {
		sl = sizeof(sa);
		if (fd == skip ||
		    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0 ||
		    sl != sizeof(sa) || sa.sin_family != AF_INET)
			continue;
		if (sa.sin_port == addr->sin_port &&
		    sa.sin_addr.s_addr == addr->sin_addr.s_addr)
			return fd;
	}
	return -1;
}

/* A connect works and sets non-blocking, TCP_NODELAY, SO_KEEPALIVE. */
START_TEST(test_connect_ok_and_options)
{
	char port[16], err[256] = "";
	int lfd = listen_loopback(1, port, sizeof(port));
	struct sockaddr_in peer;
	socklen_t sl = sizeof(peer);
	struct net_conn *c;
	int sfd, cfd, v;

	c = net_connect("127.0.0.1", port, T_LONG_MS, err, sizeof(err));
	ck_assert_msg(c != NULL, "err: %s", err);
	ck_assert(!net_is_tls(c));
	ck_assert_uint_eq(net_buffered(c), 0);
	sfd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(sfd, 0);
	ck_assert_int_eq(getpeername(sfd, (struct sockaddr *)&peer, &sl), 0);
	cfd = find_local_socket(&peer, sfd);
	ck_assert_int_ge(cfd, 0);
	sl = sizeof(v);
	ck_assert_int_eq(getsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &v, &sl), 0);
	ck_assert_int_ne(v, 0);
	ck_assert_int_eq(getsockopt(cfd, SOL_SOCKET, SO_KEEPALIVE, &v, &sl), 0);
	ck_assert_int_ne(v, 0);
	ck_assert_int_ne(fcntl(cfd, F_GETFL) & O_NONBLOCK, 0);
	ck_assert_int_ne(fcntl(cfd, F_GETFD) & FD_CLOEXEC, 0);
	net_close(c);
	/* net_close closed the socket: the server sees end of stream. */
	ck_assert_int_eq(recv(sfd, err, sizeof(err), 0), 0);
	close(sfd);
	close(lfd);
}
END_TEST

/*
 * "localhost" usually resolves to ::1 first, where nobody listens here:
 * the next address must be tried.
 */
START_TEST(test_connect_next_address)
{
	char port[16], err[256] = "";
	int lfd = listen_loopback(1, port, sizeof(port));
	struct net_conn *c;

	c = net_connect("localhost", port, T_LONG_MS, err, sizeof(err));
	ck_assert_msg(c != NULL, "err: %s", err);
	net_close(c);
	close(lfd);
}
END_TEST

/* IPv6 literals are bracketed in messages: "[::1]:port". */
START_TEST(test_connect_ipv6_message)
{
	char port[16], err[256] = "";
	int fd = listen_loopback(1, port, sizeof(port));
	struct net_conn *c;

	close(fd);
	c = net_connect("::1", port, T_LONG_MS, err, sizeof(err));
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err, "cannot connect to [::1]:") == err, "err: %s",
		      err);
}
END_TEST

/*
 * With the accept queue full (backlog 0, one connection waiting), Linux
 * drops further SYNs, so the next connect can only time out.
 */
START_TEST(test_connect_timeout)
{
	char port[16], err[256] = "";
	int lfd = listen_loopback(0, port, sizeof(port));
	struct sockaddr_in sa = {0};
	struct net_conn *c;
	int fill[4], i;
	long t0, dt;

	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((unsigned short)atoi(port));
	for (i = 0; i < 4; i++) {
		fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		connect(fill[i], (struct sockaddr *)&sa, sizeof(sa));
	}
	usleep(50000);
	t0 = now_ms();
	c = net_connect("127.0.0.1", port, T_SHORT_MS, err, sizeof(err));
	dt = now_ms() - t0;
	ck_assert_ptr_null(c);
	ck_assert_msg(strstr(err, "timed out connecting to 127.0.0.1:") == err,
		      "err: %s", err);
	ck_assert_msg(strstr(err, "after 0.2 s") != NULL, "err: %s", err);
	ck_assert_int_ge(dt, T_SHORT_MS - 20);
	ck_assert_int_lt(dt, 3 * T_SHORT_MS);
	for (i = 0; i < 4; i++)
		close(fill[i]);
	close(lfd);
}
END_TEST

/* A peer that accepts but never writes: -ETIMEDOUT after the timeout. */
START_TEST(test_read_timeout)
{
	char port[16], err[256] = "", buf[64];
	int lfd = listen_loopback(1, port, sizeof(port));
	struct net_conn *c;
	long t0, dt;
	ssize_t n;
	int sfd;

	c = net_connect("127.0.0.1", port, T_SHORT_MS, err, sizeof(err));
	ck_assert_msg(c != NULL, "err: %s", err);
	sfd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(sfd, 0);
	t0 = now_ms();
	n = net_read(c, buf, sizeof(buf));
	dt = now_ms() - t0;
	ck_assert_int_eq(n, -ETIMEDOUT);
	ck_assert_int_ge(dt, T_SHORT_MS - 20);
	ck_assert_int_lt(dt, 3 * T_SHORT_MS);

	/* A timed-out line read can be repeated; nothing is lost. */
	send_all(sfd, "par", 3);
	ck_assert_int_eq(net_read_line(c, buf, sizeof(buf), &(size_t){0}),
			 -ETIMEDOUT);
	send_all(sfd, "tial\r\n", 6);
	net_set_timeout(c, T_LONG_MS);
	expect_line(c, "partial");
	net_close(c);
	close(sfd);
	close(lfd);
}
END_TEST

/* Does nothing: only there so that SIGALRM interrupts system calls. */
static void on_alarm(int sig)
{
	(void)sig;
}

/*
 * Signals arriving every 20 ms (handler without SA_RESTART, so poll()
 * fails with EINTR) neither end the wait early nor stretch it.
 */
START_TEST(test_read_timeout_eintr)
{
	struct itimerval it = {.it_interval = {.tv_usec = 20000},
			       .it_value = {.tv_usec = 20000}};
	struct itimerval off = {0};
	struct sigaction sa = {0}, old;
	struct net_conn *c;
	char buf[16];
	long t0, dt;
	ssize_t n;
	int sv[2];

	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(SIGALRM, &sa, &old), 0);
	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_SHORT_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
	t0 = now_ms();
	n = net_read(c, buf, sizeof(buf));
	dt = now_ms() - t0;
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	ck_assert_int_eq(n, -ETIMEDOUT);
	ck_assert_int_ge(dt, T_SHORT_MS - 20);
	ck_assert_int_lt(dt, 3 * T_SHORT_MS);
	net_close(c);
	close(sv[1]);
}
END_TEST

/* Lines arriving in odd pieces: CRLF split, bare LF, empty line. */
START_TEST(test_read_line_fragments)
{
	static const char *const frags[] = {
		"* OK",	    " hello", "\r", "\n",  "bare lf\n", "\r\n",
		"a\rb\r\n", "x",      "y",  "z\r", "\nlast",	NULL};
	struct frag_writer w = {0};
	struct net_conn *c;
	char buf[64];
	size_t len;
	int sv[2];

	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	frag_writer_start(&w, sv[1], frags);
	expect_line(c, "* OK hello");
	expect_line(c, "bare lf");
	expect_line(c, "");
	expect_line(c, "a\rb");
	expect_line(c, "xyz");
	/* "last" then end of stream: not a line. */
	ck_assert_int_eq(net_read_line(c, buf, sizeof(buf), &len), -ECONNRESET);
	frag_writer_join(&w);
	net_close(c);
}
END_TEST

/* A line, then a literal's bytes read with net_read, then a line. */
START_TEST(test_read_line_then_read)
{
	static const char *const frags[] = {"* 1 FETCH (BODY[] {11}\r\nhel",
					    "lo", " world)\r", "\n", NULL};
	struct frag_writer w = {0};
	struct net_conn *c;
	char lit[12] = "";
	int sv[2];

	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	frag_writer_start(&w, sv[1], frags);
	expect_line(c, "* 1 FETCH (BODY[] {11}");
	read_exact(c, lit, 11);
	ck_assert_str_eq(lit, "hello world");
	expect_line(c, ")");
	/* The peer closed: end of stream. */
	ck_assert_int_eq(net_read(c, lit, sizeof(lit)), 0);
	frag_writer_join(&w);
	net_close(c);
}
END_TEST

/* max - 1 bytes of content fit, with the CR split from the LF. */
START_TEST(test_read_line_exact_fit)
{
	static const char *const frags[] = {"1234567\r", "\n", "1234567\n",
					    NULL};
	struct frag_writer w = {0};
	struct net_conn *c;
	char buf[8];
	size_t len;
	int sv[2];

	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	frag_writer_start(&w, sv[1], frags);
	ck_assert_int_eq(net_read_line(c, buf, sizeof(buf), &len), 0);
	ck_assert_uint_eq(len, 7);
	ck_assert_str_eq(buf, "1234567");
	ck_assert_int_eq(net_read_line(c, buf, sizeof(buf), &len), 0);
	ck_assert_str_eq(buf, "1234567");
	frag_writer_join(&w);
	net_close(c);
}
END_TEST

/* max bytes of content (one too many): -EMSGSIZE, then dead. */
START_TEST(test_read_line_too_long)
{
	static const char *const frags[] = {"12345678\r\n", "ok\r\n", NULL};
	struct frag_writer w = {0};
	struct net_conn *c;
	char buf[8];
	size_t len;
	int sv[2];

	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	frag_writer_start(&w, sv[1], frags);
	ck_assert_int_eq(net_read_line(c, buf, sizeof(buf), &len), -EMSGSIZE);
	/* The connection is unusable from now on. */
	ck_assert_int_eq(net_read_line(c, buf, sizeof(buf), &len), -EMSGSIZE);
	ck_assert_int_eq(net_read(c, buf, sizeof(buf)), -EMSGSIZE);
	ck_assert_int_eq(net_write(c, "x", 1), -EMSGSIZE);
	frag_writer_join(&w);
	net_close(c);
}
END_TEST

/* An overlong line is refused as soon as it is known, not at its LF. */
START_TEST(test_read_line_too_long_no_lf)
{
	char buf[16], junk[100];
	struct net_conn *c;
	size_t len;
	long t0;
	int sv[2];

	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	memset(junk, 'x', sizeof(junk));
	send_all(sv[1], junk, sizeof(junk));
	t0 = now_ms();
	ck_assert_int_eq(net_read_line(c, buf, sizeof(buf), &len), -EMSGSIZE);
	ck_assert_int_lt(now_ms() - t0, T_LONG_MS / 2);
	net_close(c);
	close(sv[1]);
}
END_TEST

/* End of stream in the middle of a line: -ECONNRESET. */
START_TEST(test_read_line_eof_mid_line)
{
	static const char *const frags[] = {"* OK\r\n", "* partial", NULL};
	struct frag_writer w = {0};
	struct net_conn *c;
	char buf[64];
	size_t len;
	int sv[2];

	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	frag_writer_start(&w, sv[1], frags);
	expect_line(c, "* OK");
	ck_assert_int_eq(net_read_line(c, buf, sizeof(buf), &len), -ECONNRESET);
	frag_writer_join(&w);
	net_close(c);
}
END_TEST

/* Lines longer than the internal buffer go through the caller's. */
START_TEST(test_read_line_longer_than_buffer)
{
	static const char *const frags[] = {"first\r\n", NULL};
	const size_t n = 200000;
	struct frag_writer w = {0};
	struct net_conn *c;
	char *big = malloc(2 * (n + 2) + 8);
	char *buf = malloc(n + 1);
	size_t len, i;
	int sv[2];

	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(buf);
	/* Line 1: n bytes fitting exactly; line 2: n bytes, too long. */
	for (i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	memcpy(big + n, "\r\n", 2);
	memset(big + n + 2, 'z', n);
	memcpy(big + 2 * n + 2, "\r\n", 2);
	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	w.big = big;
	w.big_len = 2 * n + 4;
	frag_writer_start(&w, sv[1], frags);
	expect_line(c, "first");
	ck_assert_int_eq(net_read_line(c, buf, n + 1, &len), 0);
	ck_assert_uint_eq(len, n);
	ck_assert_mem_eq(buf, big, n);
	ck_assert_int_eq(buf[n], '\0');
	ck_assert_int_eq(net_read_line(c, buf, n, &len), -EMSGSIZE);
	net_close(c);
	frag_writer_join(&w);
	free(big);
	free(buf);
}
END_TEST

/* Buffered bytes come first; a big read on an empty buffer works too. */
START_TEST(test_read_buffered_then_big)
{
	const size_t n = 300000;
	struct frag_writer w = {0};
	struct net_conn *c;
	char *big = malloc(n), *got = malloc(n);
	char small[8];
	size_t i;
	int sv[2];

	ck_assert_ptr_nonnull(big);
	ck_assert_ptr_nonnull(got);
	for (i = 0; i < n; i++)
		big[i] = (char)(i * 7);
	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	send_all(sv[1], "line\r\nabc", 9);
	expect_line(c, "line");
	ck_assert_uint_eq(net_buffered(c), 3);
	ck_assert_int_eq(net_read(c, small, 2), 2);
	ck_assert_mem_eq(small, "ab", 2);
	/* A big buffer still gets only the one buffered byte first. */
	ck_assert_int_eq(net_read(c, got, n), 1);
	ck_assert_int_eq(got[0], 'c');
	ck_assert_uint_eq(net_buffered(c), 0);
	/* Now more than the socket holds, read straight into got. */
	w.big = big;
	w.big_len = n;
	frag_writer_start(&w, sv[1], NULL);
	read_exact(c, got, n);
	ck_assert_mem_eq(got, big, n);
	ck_assert_int_eq(net_read(c, got, n), 0);
	ck_assert_int_eq(net_read(c, got, 0), 0);
	frag_writer_join(&w);
	net_close(c);
	free(big);
	free(got);
}
END_TEST

/* Writing to a vanished peer fails with an error, not with SIGPIPE. */
START_TEST(test_write_peer_gone_no_sigpipe)
{
	char port[16], err[256] = "", chunk[4096];
	int lfd = listen_loopback(1, port, sizeof(port));
	struct net_conn *c;
	int sfd, rc = 0, i, sv[2];

	/* Socketpair: EPIPE at once. */
	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	close(sv[1]);
	ck_assert_int_eq(net_write(c, "x", 1), -ECONNRESET);
	net_close(c);

	/* TCP: the first writes may still be accepted, then RST. */
	c = net_connect("127.0.0.1", port, T_LONG_MS, err, sizeof(err));
	ck_assert_msg(c != NULL, "err: %s", err);
	sfd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(sfd, 0);
	close(sfd);
	memset(chunk, 'x', sizeof(chunk));
	for (i = 0; i < 100 && rc == 0; i++) {
		rc = net_write(c, chunk, sizeof(chunk));
		usleep(1000);
	}
	ck_assert_int_eq(rc, -ECONNRESET);
	net_close(c);
	close(lfd);
}
END_TEST

/* A peer that never reads: net_write gives -ETIMEDOUT in time. */
START_TEST(test_write_timeout)
{
	const size_t n = 16 << 20;
	struct net_conn *c;
	char *big = calloc(1, n);
	long t0, dt;
	int sv[2];

	ck_assert_ptr_nonnull(big);
	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_SHORT_MS);
	ck_assert_ptr_nonnull(c);
	t0 = now_ms();
	ck_assert_int_eq(net_write(c, big, n), -ETIMEDOUT);
	dt = now_ms() - t0;
	ck_assert_int_ge(dt, T_SHORT_MS - 20);
	ck_assert_int_lt(dt, 3 * T_SHORT_MS);
	/* Part of the data may have gone: the connection is dead. */
	ck_assert_int_eq(net_write(c, "x", 1), -ETIMEDOUT);
	net_close(c);
	close(sv[1]);
	free(big);
}
END_TEST

/* ---- COMPRESS=DEFLATE: a zlib peer on the other end ---- */

/* The peer's two streams: raw deflate both ways, as RFC 4978 says. */
struct zpeer {
	z_stream def; /* what the peer sends */
	z_stream inf; /* what the client sent */
};

static void zpeer_init(struct zpeer *zp)
{
	memset(zp, 0, sizeof(*zp));
	ck_assert_int_eq(deflateInit2(&zp->def, 6, Z_DEFLATED, -15, 8,
				      Z_DEFAULT_STRATEGY),
			 Z_OK);
	ck_assert_int_eq(inflateInit2(&zp->inf, -15), Z_OK);
}

static void zpeer_free(struct zpeer *zp)
{
	deflateEnd(&zp->def);
	inflateEnd(&zp->inf);
}

/* Deflates len bytes with the given flush into a new buffer; its length
 * goes to *out_len. */
static unsigned char *zpeer_deflate(struct zpeer *zp, const void *data,
				    size_t len, int flush, size_t *out_len)
{
	size_t cap = deflateBound(&zp->def, len) + 64, n = 0;
	unsigned char *out = malloc(cap);
	int r;

	ck_assert_ptr_nonnull(out);
	zp->def.next_in = data;
	zp->def.avail_in = (uInt)len;
	do {
		zp->def.next_out = out + n;
		zp->def.avail_out = (uInt)(cap - n);
		r = deflate(&zp->def, flush);
		ck_assert(r == Z_OK || r == Z_STREAM_END || r == Z_BUF_ERROR);
		n = cap - zp->def.avail_out;
		if (zp->def.avail_out == 0) {
			cap *= 2;
			out = realloc(out, cap);
			ck_assert_ptr_nonnull(out);
		}
	} while (zp->def.avail_in > 0 || zp->def.avail_out == 0);
	*out_len = n;
	return out;
}

/* Deflates and sends len bytes with the given flush. */
static void zpeer_send(struct zpeer *zp, int fd, const void *data, size_t len,
		       int flush)
{
	size_t n;
	unsigned char *z = zpeer_deflate(zp, data, len, flush, &n);

	send_all(fd, z, n);
	free(z);
}

/*
 * Reads what the client sent up to the end of a sync flush (00 00 FF FF
 * last) and inflates it into out; returns the length. Every net_write
 * must end so: the test fails (times out) otherwise.
 */
static size_t zpeer_recv(struct zpeer *zp, int fd, unsigned char *out,
			 size_t cap)
{
	static const unsigned char mark[4] = {0, 0, 0xff, 0xff};
	unsigned char raw[262144];
	size_t got = 0;
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;

	while (got < 4 || memcmp(raw + got - 4, mark, 4) != 0) {
		ck_assert_int_eq(poll(&p, 1, T_LONG_MS), 1);
		n = recv(fd, raw + got, sizeof(raw) - got, 0);
		ck_assert_int_gt(n, 0);
		got += (size_t)n;
	}
	zp->inf.next_in = raw;
	zp->inf.avail_in = (uInt)got;
	zp->inf.next_out = out;
	zp->inf.avail_out = (uInt)cap;
	ck_assert_int_eq(inflate(&zp->inf, Z_SYNC_FLUSH), Z_OK);
	ck_assert_uint_eq(zp->inf.avail_in, 0);
	return cap - zp->inf.avail_out;
}

/* Repetitive text of len bytes, as mail is. */
static char *ztext(size_t len)
{
	static const char line[] = "Subject: the same line, over and over\r\n";
	char *t = malloc(len);
	size_t i;

	ck_assert_ptr_nonnull(t);
	for (i = 0; i < len; i++)
		t[i] = line[i % (sizeof(line) - 1)];
	return t;
}

/*
 * The compressed stream starts with bytes the caller read past the OK
 * and bytes net itself still held; lines, a big literal and small reads
 * come out whole, in order; writes reach the peer whole (sync flush),
 * small and big, and the big one much smaller than it was.
 */
START_TEST(test_deflate_roundtrip)
{
	const size_t big_n = 1 << 20, rnd_n = 40000;
	unsigned char *z, *in = malloc(big_n + rnd_n);
	char *big = ztext(big_n), *got = malloc(big_n + rnd_n);
	struct frag_writer w = {0};
	struct zpeer zp;
	struct net_conn *c;
	size_t zn, i, k;
	char head[64];
	int sv[2];

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(got);
	zpeer_init(&zp);
	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert(!net_is_compressed(c));
	z = zpeer_deflate(&zp, "* 1 EXISTS\r\nM2 OK done\r\n", 24, Z_SYNC_FLUSH,
			  &zn);
	ck_assert_uint_gt(zn, 10);
	/* The OK, then 6 compressed bytes that net reads along with it. */
	snprintf(head, sizeof(head), "M1 OK go\r\n");
	send_all(sv[1], head, strlen(head));
	send_all(sv[1], z + 4, 6);
	expect_line(c, "M1 OK go");
	ck_assert_uint_eq(net_buffered(c), 6);
	/* The first 4 the caller had read already: they come first. */
	ck_assert_int_eq(net_start_deflate(c, z, 4, NULL, 0), 0);
	ck_assert(net_is_compressed(c));
	send_all(sv[1], z + 10, zn - 10);
	free(z);
	expect_line(c, "* 1 EXISTS");
	expect_line(c, "M2 OK done");
	/* A literal of 1 MiB: read in small and in big pieces. */
	snprintf(head, sizeof(head), "* 1 FETCH (BODY[] {%zu}\r\n", big_n);
	z = zpeer_deflate(&zp, head, strlen(head), Z_NO_FLUSH, &zn);
	send_all(sv[1], z, zn);
	free(z);
	z = zpeer_deflate(&zp, big, big_n, Z_SYNC_FLUSH, &zn);
	ck_assert_uint_lt(zn, big_n / 50);
	w.big = (const char *)z;
	w.big_len = zn;
	frag_writer_start(&w, dup(sv[1]), NULL);
	snprintf(head, sizeof(head), "* 1 FETCH (BODY[] {%zu}", big_n);
	expect_line(c, head);
	ck_assert_int_eq(net_read(c, got, 5), 5);
	read_exact(c, got + 5, big_n - 5);
	ck_assert_mem_eq(got, big, big_n);
	frag_writer_join(&w);
	free(z);
	/* Writes: one command, then a big upload of text and noise. */
	ck_assert_int_eq(net_write(c, "M3 NOOP\r\n", 9), 0);
	ck_assert_uint_eq(zpeer_recv(&zp, sv[1], in, big_n + rnd_n), 9);
	ck_assert_mem_eq(in, "M3 NOOP\r\n", 9);
	memcpy(got, big, big_n);
	for (i = 0; i < rnd_n; i++)
		got[big_n + i] = (char)(rand() & 0xff);
	ck_assert_int_eq(net_write(c, got, big_n + rnd_n), 0);
	k = zpeer_recv(&zp, sv[1], in, big_n + rnd_n);
	ck_assert_uint_eq(k, big_n + rnd_n);
	ck_assert_mem_eq(in, got, k);
	/* No TLS over compression, and no second start. */
	ck_assert_int_eq(net_start_deflate(c, NULL, 0, NULL, 0), -EINVAL);
	net_close(c);
	close(sv[1]);
	zpeer_free(&zp);
	free(big);
	free(got);
	free(in);
}
END_TEST

/* Garbage where compressed data should be: -EPROTO, and for good. */
START_TEST(test_deflate_corrupt)
{
	/* BTYPE 11 is reserved: invalid at once. */
	static const unsigned char bad[] = {0x07, 0x01, 0x02, 0x03};
	struct net_conn *c;
	size_t len;
	char buf[64];
	int sv[2];

	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(net_start_deflate(c, NULL, 0, NULL, 0), 0);
	send_all(sv[1], bad, sizeof(bad));
	ck_assert_int_eq(net_read_line(c, buf, sizeof(buf), &len), -EPROTO);
	ck_assert_int_eq(net_read(c, buf, sizeof(buf)), -EPROTO);
	ck_assert_int_eq(net_write(c, "x", 1), -EPROTO);
	ck_assert_int_eq(net_wait_readable(c, 10), -EPROTO);
	net_close(c);
	close(sv[1]);
}
END_TEST

/* Too much compressed data came with the OK to hold: refused, dead. */
START_TEST(test_deflate_too_much_pending)
{
	char *junk = calloc(1, 20000);
	char err[256] = "";
	struct net_conn *c;
	int sv[2];

	ck_assert_ptr_nonnull(junk);
	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(net_start_deflate(c, junk, 20000, err, sizeof(err)),
			 -EPROTO);
	ck_assert_msg(strstr(err, "20000 bytes") != NULL, "err: %s", err);
	ck_assert_int_eq(net_write(c, "x", 1), -EPROTO);
	net_close(c);
	close(sv[1]);
	free(junk);
}
END_TEST

/* What a flooding peer does: sync flushes with nothing in them. */
struct zflood {
	int fd; /* borrowed */
	size_t phase; /* where in zempty4 the stream stands */
	volatile bool stop;
	pthread_t thread;
};

/* Four empty blocks with fixed codes (3 header bits and the 7-bit end
 * of block each, 40 bits): any number of them in a row is a valid
 * stream, and they inflate (to nothing) much slower than they can be
 * sent. */
static const unsigned char zempty4[5] = {0x02, 0x08, 0x20, 0x80, 0x00};

static void *zflood_main(void *arg)
{
	struct zflood *f = arg;
	unsigned char *block = malloc(65535);
	size_t fill;

	ck_assert_ptr_nonnull(block);
	/* 64 KiB of empty blocks per send, so that there is always input
	 * waiting. */
	for (fill = 0; fill < 65535; fill += sizeof(zempty4))
		memcpy(block + fill, zempty4, sizeof(zempty4));
	/* A blocking send sends all: the stream stays in phase. */
	if (send(f->fd, block + f->phase, fill - f->phase, MSG_NOSIGNAL) > 0)
		while (!f->stop)
			if (send(f->fd, block, fill, MSG_NOSIGNAL) < 0)
				break;
	free(block);
	return NULL;
}

/* Fills the socket's send buffer (raised to 32 MiB where allowed) with
 * empty blocks, without blocking; returns where in zempty4 the stream
 * stops (a send may take part of a block). */
static size_t zflood_fill(int fd)
{
	int size = 32 << 20, flags = fcntl(fd, F_GETFL);
	unsigned char block[65535];
	size_t fill, phase = 0;
	ssize_t n;

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	for (fill = 0; fill < sizeof(block); fill += sizeof(zempty4))
		memcpy(block + fill, zempty4, sizeof(zempty4));
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	while ((n = send(fd, block + phase, fill - phase, MSG_NOSIGNAL)) > 0)
		phase = (phase + (size_t)n) % sizeof(zempty4);
	fcntl(fd, F_SETFL, flags);
	return phase;
}

/*
 * Input that inflates to nothing does not wake net_wait_readable and
 * does not stretch a read's deadline, even when it never stops coming;
 * data after it is found.
 */
START_TEST(test_deflate_empty_input_bounded)
{
	struct zflood f = {0};
	struct zpeer zp;
	struct net_conn *c;
	char buf[64];
	long t0, dt;
	int sv[2];

	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_SHORT_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(net_start_deflate(c, NULL, 0, NULL, 0), 0);
	zpeer_init(&zp);
	zpeer_send(&zp, sv[1], "", 0, Z_SYNC_FLUSH);
	ck_assert_int_eq(net_wait_readable(c, T_SHORT_MS), 0);
	ck_assert_int_eq(net_read(c, buf, sizeof(buf)), -ETIMEDOUT);
	zpeer_send(&zp, sv[1], "* OK\r\n", 6, Z_SYNC_FLUSH);
	ck_assert_int_eq(net_wait_readable(c, T_LONG_MS), 1);
	ck_assert_uint_eq(net_buffered(c), 6);
	expect_line(c, "* OK");
	zpeer_free(&zp);
	net_close(c);
	close(sv[1]);

	/* A peer that floods empty blocks: the deadline holds. The socket
	 * is filled first (32 MiB where root may raise the bound) and the
	 * flood keeps it full, so input never runs out while net reads. */
	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_SHORT_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(net_start_deflate(c, NULL, 0, NULL, 0), 0);
	f.phase = zflood_fill(sv[1]);
	f.fd = sv[1];
	ck_assert_int_eq(pthread_create(&f.thread, NULL, zflood_main, &f), 0);
	t0 = now_ms();
	ck_assert_int_eq(net_read(c, buf, sizeof(buf)), -ETIMEDOUT);
	dt = now_ms() - t0;
	ck_assert_int_ge(dt, T_SHORT_MS - 20);
	ck_assert_int_lt(dt, 2 * T_SHORT_MS);
	t0 = now_ms();
	ck_assert_int_eq(net_wait_readable(c, T_SHORT_MS), 0);
	dt = now_ms() - t0;
	ck_assert_int_ge(dt, T_SHORT_MS - 20);
	ck_assert_int_lt(dt, 2 * T_SHORT_MS);
	f.stop = true;
	net_close(c);
	pthread_join(f.thread, NULL);
	close(sv[1]);
}
END_TEST

/* The peer whose stream inflates to far more than any buffer. */
struct zbomb {
	int fd; /* owned: closed when done */
	size_t total; /* bytes of zeros it stands for */
	pthread_t thread;
};

static void *zbomb_main(void *arg)
{
	struct zbomb *b = arg;
	static const unsigned char zeros[65536];
	unsigned char out[65536];
	struct zpeer zp;
	size_t done;
	int flush;

	/* Fixed buffers only: what the process grows by is net's doing. */
	zpeer_init(&zp);
	for (done = 0; done < b->total; done += sizeof(zeros)) {
		flush = done + sizeof(zeros) < b->total ? Z_NO_FLUSH
							: Z_SYNC_FLUSH;
		zp.def.next_in = zeros;
		zp.def.avail_in = sizeof(zeros);
		do {
			zp.def.next_out = out;
			zp.def.avail_out = sizeof(out);
			deflate(&zp.def, flush);
			send_all(b->fd, out, sizeof(out) - zp.def.avail_out);
		} while (zp.def.avail_out == 0);
	}
	zpeer_free(&zp);
	close(b->fd);
	return NULL;
}

/* The largest resident set so far, in KiB. */
static long max_rss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/*
 * A compression bomb (256 MiB of zeros in about 256 KiB): every byte
 * comes out through the bounded buffers, and the process does not grow
 * by more than a few MiB; a line that long is refused.
 */
START_TEST(test_deflate_bomb_bounded)
{
	const size_t total = 256u << 20;
	struct zbomb b = {.total = total};
	char *buf = malloc(1 << 20);
	struct net_conn *c;
	size_t got = 0, len;
	long rss0;
	ssize_t n;
	int sv[2];

	ck_assert_ptr_nonnull(buf);
	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(net_start_deflate(c, NULL, 0, NULL, 0), 0);
	b.fd = sv[1];
	rss0 = max_rss_kib();
	ck_assert_int_eq(pthread_create(&b.thread, NULL, zbomb_main, &b), 0);
	while ((n = net_read(c, buf, 1 << 20)) > 0) {
		ck_assert_int_le(n, 1 << 20);
		got += (size_t)n;
	}
	ck_assert_int_eq(n, 0);
	ck_assert_uint_eq(got, total);
	pthread_join(b.thread, NULL);
	net_close(c);
	/* 16 MiB (room for sanitizer builds) is far below 256. */
	ck_assert_int_lt(max_rss_kib() - rss0, 16 * 1024);

	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(net_start_deflate(c, NULL, 0, NULL, 0), 0);
	b.fd = sv[1];
	ck_assert_int_eq(pthread_create(&b.thread, NULL, zbomb_main, &b), 0);
	ck_assert_int_eq(net_read_line(c, buf, 4096, &len), -EMSGSIZE);
	net_close(c);
	pthread_join(b.thread, NULL);
	free(buf);
}
END_TEST

/* The server ends its deflate stream: what came is read, then EOF. */
START_TEST(test_deflate_stream_end)
{
	struct zpeer zp;
	struct net_conn *c;
	char buf[64];
	int sv[2];

	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(net_start_deflate(c, NULL, 0, NULL, 0), 0);
	zpeer_init(&zp);
	zpeer_send(&zp, sv[1], "* BYE\r\n", 7, Z_FINISH);
	expect_line(c, "* BYE");
	ck_assert_int_eq(net_wait_readable(c, T_SHORT_MS), 1);
	ck_assert_int_eq(net_read(c, buf, sizeof(buf)), 0);
	zpeer_free(&zp);
	net_close(c);
	close(sv[1]);
}
END_TEST

/* The functions that accept NULL do. */
START_TEST(test_close_null)
{
	net_close(NULL);
	net_tls_ctx_free(NULL);
	ck_assert(!net_is_tls(NULL));
	ck_assert_uint_eq(net_buffered(NULL), 0);
	ck_assert(!net_is_compressed(NULL));
}
END_TEST

/* Calls net_stop_all() after 200 ms (another thread, as at unmount). */
static void *stop_later(void *arg)
{
	struct timespec ts = {0, 200 * 1000 * 1000};

	(void)arg;
	nanosleep(&ts, NULL);
	net_stop_all();
	return NULL;
}

/*
 * What test_stop_all_ends_every_wait checks, in a child process of its
 * own (the switch cannot be undone). Exit status 0, or the number of
 * the check that failed.
 */
static int stop_all_child(void)
{
	char buf[16], port[16], err[256];
	struct net_conn *c;
	pthread_t t;
	long t0, ms;
	int sv[2], lfd;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 1;
	c = net_conn_from_fd(sv[0], 30000);
	if (!c || net_stopping())
		return 2;
	/* A read blocked with a 30 s timeout ends when the switch flips. */
	pthread_create(&t, NULL, stop_later, NULL);
	t0 = now_ms();
	if (net_read(c, buf, sizeof(buf)) != -ECANCELED)
		return 3;
	ms = now_ms() - t0;
	pthread_join(t, NULL);
	if (ms < 150 || ms > 2000 || !net_stopping())
		return 4;
	/* Later waits end at once; what goes out without waiting does. */
	t0 = now_ms();
	if (net_wait_readable(c, 30000) != -ECANCELED || now_ms() - t0 > 500)
		return 5;
	if (net_write(c, "a LOGOUT\r\n", 10) != 0 ||
	    recv(sv[1], buf, sizeof(buf), 0) != 10)
		return 6;
	net_close(c);
	close(sv[1]);
	/* No new connection. */
	lfd = listen_loopback(1, port, sizeof(port));
	if (net_connect("127.0.0.1", port, 30000, err, sizeof(err)) ||
	    !strstr(err, "stopping"))
		return 7;
	close(lfd);
	return 0;
}

START_TEST(test_stop_all_ends_every_wait)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(stop_all_child());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* ---- TLS: a throwaway PKI ---- */

/* The throwaway PKI, made once by pki_setup(). */
static struct {
	char dir[64];
	char ca_path[128]; /* PEM of ca */
	char other_path[128]; /* PEM of an unrelated CA */
	char empty_path[128]; /* an empty file */
	EVP_PKEY *ca_key, *other_key, *srv_key;
	X509 *ca, *other, *srv;
} pki;

/* Adds one X.509v3 extension given in openssl.cnf syntax. */
static void add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);

	ck_assert_ptr_nonnull(ext);
	ck_assert_int_eq(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/*
 * Makes a certificate for key named cn, signed by issuer (self-signed
 * when issuer is NULL); a CA when san is NULL, else a server
 * certificate with those subjectAltNames.
 */
static X509 *make_cert(EVP_PKEY *key, const char *cn, long serial, X509 *issuer,
		       EVP_PKEY *issuer_key, const char *san)
{
	X509 *x = X509_new();
	X509V3_CTX v3;

	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(X509_set_version(x, 2), 1);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
	ck_assert_int_eq(X509_set_pubkey(x, key), 1);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	add_ext(x, &v3, NID_subject_key_identifier, "hash");
	if (!san) {
		add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add_ext(x, &v3, NID_authority_key_identifier, "keyid:always");
		add_ext(x, &v3, NID_basic_constraints, "CA:FALSE");
		add_ext(x, &v3, NID_key_usage, "critical,digitalSignature");
		add_ext(x, &v3, NID_ext_key_usage, "serverAuth");
		add_ext(x, &v3, NID_subject_alt_name, san);
	}
	ck_assert_int_gt(
		X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()), 0);
	return x;
}

/* Writes a certificate as PEM to path. */
static void write_pem(const char *path, X509 *x)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	if (x)
		ck_assert_int_eq(PEM_write_X509(f, x), 1);
	ck_assert_int_eq(fclose(f), 0);
}

/* Unchecked fixture: makes the PKI once; forked tests inherit it. */
static void pki_setup(void)
{
	snprintf(pki.dir, sizeof(pki.dir), "/tmp/mailfs-net-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(pki.dir));
	snprintf(pki.ca_path, sizeof(pki.ca_path), "%s/ca.pem", pki.dir);
	snprintf(pki.other_path, sizeof(pki.other_path), "%s/other.pem",
		 pki.dir);
	snprintf(pki.empty_path, sizeof(pki.empty_path), "%s/empty.pem",
		 pki.dir);
	pki.ca_key = EVP_EC_gen("P-256");
	pki.other_key = EVP_EC_gen("P-256");
	pki.srv_key = EVP_EC_gen("P-256");
	ck_assert_ptr_nonnull(pki.ca_key);
	ck_assert_ptr_nonnull(pki.other_key);
	ck_assert_ptr_nonnull(pki.srv_key);
	pki.ca = make_cert(pki.ca_key, "mailfs test CA", 1, NULL, NULL, NULL);
	pki.other =
		make_cert(pki.other_key, "unrelated CA", 2, NULL, NULL, NULL);
	pki.srv = make_cert(pki.srv_key, "localhost", 3, pki.ca, pki.ca_key,
			    "DNS:localhost,IP:127.0.0.1");
	write_pem(pki.ca_path, pki.ca);
	write_pem(pki.other_path, pki.other);
	write_pem(pki.empty_path, NULL);
}

/* Unchecked fixture: removes the PKI's files and frees it. */
static void pki_teardown(void)
{
	unlink(pki.ca_path);
	unlink(pki.other_path);
	unlink(pki.empty_path);
	rmdir(pki.dir);
	X509_free(pki.ca);
	X509_free(pki.other);
	X509_free(pki.srv);
	EVP_PKEY_free(pki.ca_key);
	EVP_PKEY_free(pki.other_key);
	EVP_PKEY_free(pki.srv_key);
}

/* ---- TLS: a tiny server in a thread ---- */

enum srv_mode {
	SRV_ECHO, /* greet, then echo */
	SRV_KEYUPDATE, /* echo, asking for a key update before each reply */
	SRV_RENEG, /* TLS 1.2 echo, renegotiating before the first reply */
	SRV_CLOSE, /* hang up right after the handshake */
	SRV_DEFLATE, /* greet, then echo compressed (COMPRESS=DEFLATE) */
};

struct tls_server {
	int lfd; /* owned */
	char port[16];
	SSL_CTX *ctx; /* owned */
	enum srv_mode mode;
	const char *preamble; /* borrowed; plaintext sent before TLS */
	bool handshake_ok; /* read after join */
	bool reneg_ok; /* a renegotiation was requested and completed */
	size_t wire_in; /* SRV_DEFLATE: bytes received inside TLS */
	size_t plain_in; /* SRV_DEFLATE: the same inflated */
	pthread_t thread;
};

/*
 * SRV_DEFLATE: greets, then inflates what comes and sends it back
 * deflated, each reply ending in a sync flush, counting the bytes
 * before and after inflating.
 */
static void server_deflate_echo(struct tls_server *s, SSL *ssl)
{
	unsigned char in[16384], out[65536], *z;
	struct zpeer zp;
	size_t n, w, zn, k;

	if (!SSL_write_ex(ssl, "* OK greeting\r\n", 15, &w))
		return;
	zpeer_init(&zp);
	while (SSL_read_ex(ssl, in, sizeof(in), &n)) {
		s->wire_in += n;
		zp.inf.next_in = in;
		zp.inf.avail_in = (uInt)n;
		do {
			zp.inf.next_out = out;
			zp.inf.avail_out = sizeof(out);
			if (inflate(&zp.inf, Z_SYNC_FLUSH) < 0 &&
			    zp.inf.avail_out == sizeof(out))
				goto done;
			k = sizeof(out) - zp.inf.avail_out;
			s->plain_in += k;
			z = zpeer_deflate(&zp, out, k, Z_SYNC_FLUSH, &zn);
			if (!SSL_write_ex(ssl, z, zn, &w)) {
				free(z);
				goto done;
			}
			free(z);
		} while (zp.inf.avail_out == 0);
	}
	SSL_shutdown(ssl);
done:
	zpeer_free(&zp);
}

/*
 * Serves one connection. Blocks SIGPIPE in this thread only: OpenSSL's
 * socket BIO writes with write(2), and a client that went away must not
 * kill the test process (the signal then stays pending on this thread
 * and dies with it), while the main thread keeps the default action so
 * the SIGPIPE test of net stays meaningful.
 */
static void *server_main(void *arg)
{
	struct tls_server *s = arg;
	struct pollfd p = {.fd = s->lfd, .events = POLLIN};
	struct timeval tv = {.tv_sec = 5};
	bool reneg_done = false;
	char buf[16384];
	size_t n, w;
	sigset_t set;
	SSL *ssl;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (poll(&p, 1, T_LONG_MS) != 1)
		return NULL;
	fd = accept(s->lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (s->preamble)
		send_all(fd, s->preamble, strlen(s->preamble));
	ssl = SSL_new(s->ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		goto out;
	s->handshake_ok = true;
	if (s->mode == SRV_CLOSE)
		goto out;
	if (s->mode == SRV_DEFLATE) {
		server_deflate_echo(s, ssl);
		goto out;
	}
	if (s->mode == SRV_ECHO &&
	    !SSL_write_ex(ssl, "* OK greeting\r\n", 15, &w))
		goto out;
	while (SSL_read_ex(ssl, buf, sizeof(buf), &n)) {
		if (s->mode == SRV_KEYUPDATE &&
		    !SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED))
			break;
		if (s->mode == SRV_RENEG && !reneg_done) {
			if (!SSL_renegotiate(ssl) || SSL_do_handshake(ssl) != 1)
				break;
			reneg_done = true;
		}
		if (!SSL_write_ex(ssl, buf, n, &w))
			break;
		if (reneg_done && !SSL_renegotiate_pending(ssl))
			s->reneg_ok = true;
	}
	SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return NULL;
}

/* Starts a server with the test PKI's certificate (and its CA). */
static void server_start(struct tls_server *s, enum srv_mode mode,
			 const char *preamble)
{
	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->preamble = preamble;
	s->lfd = listen_loopback(4, s->port, sizeof(s->port));
	s->ctx = SSL_CTX_new(TLS_server_method());
	ck_assert_ptr_nonnull(s->ctx);
	ck_assert_int_eq(SSL_CTX_use_certificate(s->ctx, pki.srv), 1);
	ck_assert_int_eq(SSL_CTX_use_PrivateKey(s->ctx, pki.srv_key), 1);
	ck_assert_int_eq(SSL_CTX_add1_chain_cert(s->ctx, pki.ca), 1);
	if (mode == SRV_RENEG)
		SSL_CTX_set_max_proto_version(s->ctx, TLS1_2_VERSION);
	ck_assert_int_eq(pthread_create(&s->thread, NULL, server_main, s), 0);
}

/* Waits for the server to finish its connection, then frees it. */
static void server_stop(struct tls_server *s)
{
	pthread_join(s->thread, NULL);
	SSL_CTX_free(s->ctx);
	close(s->lfd);
}

/*
 * Connects to the server and starts TLS expecting host. Returns the
 * result of net_start_tls; *c_r gets the connection either way.
 */
static int tls_connect(struct tls_server *s, struct net_tls_ctx *ctx,
		       const char *host, struct net_conn **c_r, char *err,
		       size_t errlen)
{
	struct net_conn *c;

	c = net_connect("127.0.0.1", s->port, T_LONG_MS, err, errlen);
	ck_assert_msg(c != NULL, "err: %s", err);
	*c_r = c;
	return net_start_tls(c, ctx, host, err, errlen);
}

/* Sends count bytes in chunks and checks that each comes back. */
static void echo_bytes(struct net_conn *c, size_t count)
{
	const size_t chunk = 16384;
	char *out = malloc(chunk), *in = malloc(2 * NET_TEST_BIG);
	size_t done, i, k;

	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(in);
	for (done = 0; done < count; done += k) {
		k = count - done < chunk ? count - done : chunk;
		for (i = 0; i < k; i++)
			out[i] = (char)(done + i * 31);
		ck_assert_int_eq(net_write(c, out, k), 0);
		/* Alternate a small buffer and one bigger than ours. */
		if (done / chunk % 2 == 0) {
			read_exact(c, in, k);
		} else {
			ssize_t n = net_read(c, in, 2 * NET_TEST_BIG);

			ck_assert_int_gt(n, 0);
			read_exact(c, in + n, k - (size_t)n);
		}
		ck_assert_mem_eq(in, out, k);
	}
	free(out);
	free(in);
}

/* CA file errors are clear; good files and the system store load. */
START_TEST(test_tls_ctx_files)
{
	char err[256] = "", missing[160];
	struct net_tls_ctx *t;

	snprintf(missing, sizeof(missing), "%s/missing.pem", pki.dir);
	t = net_tls_ctx_new(missing, false, err, sizeof(err));
	ck_assert_ptr_null(t);
	ck_assert_msg(strstr(err, missing) && strstr(err, "No such file"),
		      "err: %s", err);
	t = net_tls_ctx_new(pki.empty_path, false, err, sizeof(err));
	ck_assert_ptr_null(t);
	ck_assert_msg(strstr(err, "CA file") && strstr(err, pki.empty_path),
		      "err: %s", err);
	t = net_tls_ctx_new(pki.ca_path, false, err, sizeof(err));
	ck_assert_msg(t != NULL, "err: %s", err);
	net_tls_ctx_free(t);
	t = net_tls_ctx_new(NULL, false, err, sizeof(err));
	ck_assert_msg(t != NULL, "err: %s", err);
	net_tls_ctx_free(t);
	t = net_tls_ctx_new(NULL, true, err, sizeof(err));
	ck_assert_msg(t != NULL, "err: %s", err);
	net_tls_ctx_free(t);
}
END_TEST

/* Verified TLS with the right CA; data goes both ways. */
START_TEST(test_tls_verified_roundtrip)
{
	struct net_tls_ctx *ctx;
	struct tls_server s;
	struct net_conn *c;
	char err[256] = "";

	ctx = net_tls_ctx_new(pki.ca_path, false, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "err: %s", err);
	server_start(&s, SRV_ECHO, NULL);
	ck_assert_msg(tls_connect(&s, ctx, "localhost", &c, err, sizeof(err)) ==
			      0,
		      "err: %s", err);
	ck_assert(net_is_tls(c));
	/* Greeting right after the handshake, behind the TLS 1.3 session
	 * tickets: those must not look like end of stream. */
	expect_line(c, "* OK greeting");
	ck_assert_int_eq(net_write(c, "a1 NOOP\r\n", 9), 0);
	expect_line(c, "a1 NOOP");
	echo_bytes(c, 256 * 1024);
	net_close(c);
	server_stop(&s);
	ck_assert(s.handshake_ok);
	net_tls_ctx_free(ctx);
}
END_TEST

/* An IP literal is checked against the certificate's IP names. */
START_TEST(test_tls_ip_literal)
{
	struct net_tls_ctx *ctx;
	struct tls_server s;
	struct net_conn *c;
	char err[256] = "";

	ctx = net_tls_ctx_new(pki.ca_path, false, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "err: %s", err);
	server_start(&s, SRV_ECHO, NULL);
	ck_assert_msg(tls_connect(&s, ctx, "127.0.0.1", &c, err, sizeof(err)) ==
			      0,
		      "err: %s", err);
	expect_line(c, "* OK greeting");
	net_close(c);
	server_stop(&s);

	server_start(&s, SRV_ECHO, NULL);
	ck_assert_int_eq(
		tls_connect(&s, ctx, "127.0.0.2", &c, err, sizeof(err)),
		-EPROTO);
	ck_assert_msg(strstr(err, "127.0.0.2") &&
			      strstr(err, "does not match IP address"),
		      "err: %s", err);
	net_close(c);
	server_stop(&s);
	net_tls_ctx_free(ctx);
}
END_TEST

/* A certificate from a CA we do not trust: "not trusted: ...". */
START_TEST(test_tls_untrusted)
{
	struct net_tls_ctx *ctx;
	struct tls_server s;
	struct net_conn *c;
	char err[256] = "";

	ctx = net_tls_ctx_new(pki.other_path, false, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "err: %s", err);
	server_start(&s, SRV_ECHO, NULL);
	ck_assert_int_eq(
		tls_connect(&s, ctx, "localhost", &c, err, sizeof(err)),
		-EPROTO);
	ck_assert_msg(strstr(err, "TLS certificate of localhost not "
				  "trusted: ") == err,
		      "err: %s", err);
	ck_assert(!net_is_tls(c));
	/* Never fall back to plaintext after a failed handshake. */
	ck_assert_int_eq(net_write(c, "x", 1), -EPROTO);
	net_close(c);
	server_stop(&s);
	ck_assert(!s.handshake_ok);
	net_tls_ctx_free(ctx);
}
END_TEST

/* A certificate for another name: the message names both sides. */
START_TEST(test_tls_wrong_name)
{
	struct net_tls_ctx *ctx;
	struct tls_server s;
	struct net_conn *c;
	char err[256] = "";

	ctx = net_tls_ctx_new(pki.ca_path, false, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "err: %s", err);
	server_start(&s, SRV_ECHO, NULL);
	ck_assert_int_eq(
		tls_connect(&s, ctx, "example.org", &c, err, sizeof(err)),
		-EPROTO);
	ck_assert_msg(strstr(err, "TLS certificate of example.org does not "
				  "match host name") == err,
		      "err: %s", err);
	ck_assert_msg(strstr(err, "localhost, 127.0.0.1"), "err: %s", err);
	net_close(c);
	server_stop(&s);
	net_tls_ctx_free(ctx);
}
END_TEST

/* insecure skips both chain and name checks. */
START_TEST(test_tls_insecure)
{
	struct net_tls_ctx *ctx;
	struct tls_server s;
	struct net_conn *c;
	char err[256] = "";

	/* Wrong CA and wrong name: both ignored. */
	ctx = net_tls_ctx_new(pki.other_path, true, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "err: %s", err);
	server_start(&s, SRV_ECHO, NULL);
	ck_assert_msg(
		tls_connect(&s, ctx, "example.org", &c, err, sizeof(err)) == 0,
		"err: %s", err);
	expect_line(c, "* OK greeting");
	echo_bytes(c, 20000);
	net_close(c);
	server_stop(&s);
	net_tls_ctx_free(ctx);
}
END_TEST

/*
 * COMPRESS under TLS: what net writes is deflated inside TLS (the
 * server inflates what it decrypts) and what the server sends deflated
 * comes back out whole; text shrinks on the wire; TLS cannot start on
 * top of compression.
 */
START_TEST(test_tls_deflate)
{
	struct net_tls_ctx *ctx;
	struct tls_server s;
	struct net_conn *c;
	char err[256] = "";
	char *text = ztext(200000), *back = malloc(200000);

	ck_assert_ptr_nonnull(back);
	ctx = net_tls_ctx_new(pki.ca_path, false, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "err: %s", err);
	server_start(&s, SRV_DEFLATE, NULL);
	ck_assert_msg(tls_connect(&s, ctx, "localhost", &c, err, sizeof(err)) ==
			      0,
		      "err: %s", err);
	expect_line(c, "* OK greeting");
	ck_assert_int_eq(net_start_deflate(c, NULL, 0, err, sizeof(err)), 0);
	ck_assert(net_is_tls(c) && net_is_compressed(c));
	ck_assert_int_eq(net_start_tls(c, ctx, "localhost", err, sizeof(err)),
			 -EINVAL);
	echo_bytes(c, 100000);
	ck_assert_int_eq(net_write(c, text, 200000), 0);
	read_exact(c, back, 200000);
	ck_assert_mem_eq(back, text, 200000);
	net_close(c);
	server_stop(&s);
	ck_assert_uint_eq(s.plain_in, 300000);
	ck_assert_uint_lt(s.wire_in, 100000 + 200000 / 20);
	net_tls_ctx_free(ctx);
	free(text);
	free(back);
}
END_TEST

/* STARTTLS: a plaintext greeting, then TLS on the same connection. */
START_TEST(test_tls_starttls)
{
	struct net_tls_ctx *ctx;
	struct tls_server s;
	struct net_conn *c;
	char err[256] = "";

	ctx = net_tls_ctx_new(pki.ca_path, false, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "err: %s", err);
	server_start(&s, SRV_ECHO, "* OK plaintext\r\n");
	c = net_connect("127.0.0.1", s.port, T_LONG_MS, err, sizeof(err));
	ck_assert_msg(c != NULL, "err: %s", err);
	expect_line(c, "* OK plaintext");
	ck_assert_msg(net_start_tls(c, ctx, "localhost", err, sizeof(err)) == 0,
		      "err: %s", err);
	expect_line(c, "* OK greeting");
	echo_bytes(c, 1000);
	net_close(c);
	server_stop(&s);
	net_tls_ctx_free(ctx);
}
END_TEST

/* Plaintext after the STARTTLS answer: TLS is refused. */
START_TEST(test_tls_plaintext_buffered)
{
	struct net_tls_ctx *ctx;
	struct tls_server s;
	struct net_conn *c;
	char err[256] = "";

	ctx = net_tls_ctx_new(pki.ca_path, false, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "err: %s", err);
	server_start(&s, SRV_ECHO, "a1 OK Begin TLS\r\n* injected\r\n");
	c = net_connect("127.0.0.1", s.port, T_LONG_MS, err, sizeof(err));
	ck_assert_msg(c != NULL, "err: %s", err);
	expect_line(c, "a1 OK Begin TLS");
	ck_assert_uint_eq(net_buffered(c), strlen("* injected\r\n"));
	ck_assert_int_eq(net_start_tls(c, ctx, "localhost", err, sizeof(err)),
			 -EPROTO);
	ck_assert_msg(strstr(err, "plaintext"), "err: %s", err);
	ck_assert(!net_is_tls(c));
	ck_assert_int_eq(net_write(c, "x", 1), -EPROTO);
	net_close(c);
	server_stop(&s);
	net_tls_ctx_free(ctx);
}
END_TEST

/* A plaintext server where TLS was expected: a clear handshake error. */
START_TEST(test_tls_plaintext_server)
{
	struct net_tls_ctx *ctx;
	struct net_conn *c;
	char err[256] = "";
	const char *greet = "* OK IMAP4rev1 ready\r\n";
	int sv[2];

	ctx = net_tls_ctx_new(pki.ca_path, false, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "err: %s", err);
	make_pair(sv);
	c = net_conn_from_fd(sv[0], T_LONG_MS);
	ck_assert_ptr_nonnull(c);
	send_all(sv[1], greet, strlen(greet));
	ck_assert_int_eq(net_start_tls(c, ctx, "localhost", err, sizeof(err)),
			 -EPROTO);
	ck_assert_msg(strstr(err, "TLS handshake with localhost failed: ") ==
			      err,
		      "err: %s", err);
	net_close(c);
	close(sv[1]);
	net_tls_ctx_free(ctx);
}
END_TEST

/* A server that accepts TCP but never answers the ClientHello. */
START_TEST(test_tls_handshake_timeout)
{
	struct net_tls_ctx *ctx;
	struct net_conn *c;
	char err[256] = "", port[16];
	int lfd = listen_loopback(1, port, sizeof(port));
	long t0, dt;

	ctx = net_tls_ctx_new(pki.ca_path, false, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "err: %s", err);
	c = net_connect("127.0.0.1", port, T_SHORT_MS, err, sizeof(err));
	ck_assert_msg(c != NULL, "err: %s", err);
	t0 = now_ms();
	ck_assert_int_eq(net_start_tls(c, ctx, "localhost", err, sizeof(err)),
			 -ETIMEDOUT);
	dt = now_ms() - t0;
	ck_assert_msg(strstr(err, "timed out in TLS handshake with localhost"),
		      "err: %s", err);
	ck_assert_int_ge(dt, T_SHORT_MS - 20);
	ck_assert_int_lt(dt, 3 * T_SHORT_MS);
	net_close(c);
	close(lfd);
	net_tls_ctx_free(ctx);
}
END_TEST

/* TLS 1.3 key update requested by the server: SSL_read must write. */
START_TEST(test_tls_key_update)
{
	struct net_tls_ctx *ctx;
	struct tls_server s;
	struct net_conn *c;
	char err[256] = "";

	ctx = net_tls_ctx_new(pki.ca_path, false, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "err: %s", err);
	server_start(&s, SRV_KEYUPDATE, NULL);
	ck_assert_msg(tls_connect(&s, ctx, "localhost", &c, err, sizeof(err)) ==
			      0,
		      "err: %s", err);
	echo_bytes(c, 100000);
	net_close(c);
	server_stop(&s);
	net_tls_ctx_free(ctx);
}
END_TEST

/* TLS 1.2 renegotiation started by the server in mid-stream. */
START_TEST(test_tls_renegotiation)
{
	struct net_tls_ctx *ctx;
	struct tls_server s;
	struct net_conn *c;
	char err[256] = "";

	ctx = net_tls_ctx_new(pki.ca_path, false, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "err: %s", err);
	server_start(&s, SRV_RENEG, NULL);
	ck_assert_msg(tls_connect(&s, ctx, "localhost", &c, err, sizeof(err)) ==
			      0,
		      "err: %s", err);
	ck_assert_int_eq(net_write(c, "ping\r\n", 6), 0);
	expect_line(c, "ping");
	ck_assert_int_eq(net_write(c, "pong\r\n", 6), 0);
	expect_line(c, "pong");
	echo_bytes(c, 50000);
	net_close(c);
	server_stop(&s);
	ck_assert(s.reneg_ok);
	net_tls_ctx_free(ctx);
}
END_TEST

/* Writing TLS to a vanished peer fails cleanly, without SIGPIPE. */
START_TEST(test_tls_peer_gone_no_sigpipe)
{
	struct net_tls_ctx *ctx;
	struct tls_server s;
	struct net_conn *c;
	char err[256] = "", chunk[4096];
	int rc = 0, i;

	ctx = net_tls_ctx_new(pki.ca_path, false, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "err: %s", err);
	server_start(&s, SRV_CLOSE, NULL);
	ck_assert_msg(tls_connect(&s, ctx, "localhost", &c, err, sizeof(err)) ==
			      0,
		      "err: %s", err);
	server_stop(&s);
	memset(chunk, 'x', sizeof(chunk));
	for (i = 0; i < 100 && rc == 0; i++) {
		rc = net_write(c, chunk, sizeof(chunk));
		usleep(1000);
	}
	ck_assert_int_eq(rc, -ECONNRESET);
	net_close(c); /* no close_notify attempt after the fatal error */
	net_tls_ctx_free(ctx);
}
END_TEST

/* Several threads, one shared context, each its own connection. */
struct tls_job {
	struct net_tls_ctx *ctx; /* borrowed */
	struct tls_server srv;
	int failures;
	char err[256];
};

/* One client thread: connect, TLS, 50 round trips; counts failures. */
static void *tls_job_main(void *arg)
{
	struct tls_job *j = arg;
	struct net_conn *c;
	char line[64], want[64];
	size_t len;
	int i;

	c = net_connect("127.0.0.1", j->srv.port, T_LONG_MS, j->err,
			sizeof(j->err));
	if (!c ||
	    net_start_tls(c, j->ctx, "localhost", j->err, sizeof(j->err)) < 0) {
		j->failures++;
		goto out;
	}
	if (net_read_line(c, line, sizeof(line), &len) < 0)
		j->failures++;
	for (i = 0; i < 50; i++) {
		len = (size_t)snprintf(want, sizeof(want), "a%d NOOP", i);
		memcpy(want + len, "\r\n", 3);
		if (net_write(c, want, len + 2) < 0 ||
		    net_read_line(c, line, sizeof(line), &len) < 0 ||
		    strncmp(line, want, len) != 0)
			j->failures++;
	}
out:
	net_close(c);
	return NULL;
}

/* Four threads at once, one shared net_tls_ctx. */
START_TEST(test_tls_threads_share_ctx)
{
	struct tls_job jobs[4];
	pthread_t th[4];
	struct net_tls_ctx *ctx;
	char err[256] = "";
	int i;

	ctx = net_tls_ctx_new(pki.ca_path, false, err, sizeof(err));
	ck_assert_msg(ctx != NULL, "err: %s", err);
	for (i = 0; i < 4; i++) {
		memset(&jobs[i], 0, sizeof(jobs[i]));
		jobs[i].ctx = ctx;
		server_start(&jobs[i].srv, SRV_ECHO, NULL);
	}
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(
			pthread_create(&th[i], NULL, tls_job_main, &jobs[i]),
			0);
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		server_stop(&jobs[i].srv);
		ck_assert_msg(jobs[i].failures == 0, "job %d: %s", i,
			      jobs[i].err);
	}
	net_tls_ctx_free(ctx);
}
END_TEST

/* Declared for -Wmissing-prototypes; the runner finds the definition. */
Suite *net_suite(void);

/* The suite: plain TCP cases, then TLS cases sharing one PKI. */
Suite *net_suite(void)
{
	Suite *s = suite_create("net");
	TCase *tc = tcase_create("tcp");
	TCase *tls = tcase_create("tls");

	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_connect_refused);
	tcase_add_test(tc, test_connect_unresolvable);
	tcase_add_test(tc, test_connect_ok_and_options);
	tcase_add_test(tc, test_connect_next_address);
	tcase_add_test(tc, test_connect_ipv6_message);
	tcase_add_test(tc, test_connect_timeout);
	tcase_add_test(tc, test_read_timeout);
	tcase_add_test(tc, test_read_timeout_eintr);
	tcase_add_test(tc, test_read_line_fragments);
	tcase_add_test(tc, test_read_line_then_read);
	tcase_add_test(tc, test_read_line_exact_fit);
	tcase_add_test(tc, test_read_line_too_long);
	tcase_add_test(tc, test_read_line_too_long_no_lf);
	tcase_add_test(tc, test_read_line_eof_mid_line);
	tcase_add_test(tc, test_read_line_longer_than_buffer);
	tcase_add_test(tc, test_read_buffered_then_big);
	tcase_add_test(tc, test_write_peer_gone_no_sigpipe);
	tcase_add_test(tc, test_write_timeout);
	tcase_add_test(tc, test_close_null);
	tcase_add_test(tc, test_stop_all_ends_every_wait);
	tcase_add_test(tc, test_deflate_roundtrip);
	tcase_add_test(tc, test_deflate_corrupt);
	tcase_add_test(tc, test_deflate_too_much_pending);
	tcase_add_test(tc, test_deflate_empty_input_bounded);
	tcase_add_test(tc, test_deflate_bomb_bounded);
	tcase_add_test(tc, test_deflate_stream_end);
	suite_add_tcase(s, tc);

	tcase_set_timeout(tls, 20);
	tcase_add_unchecked_fixture(tls, pki_setup, pki_teardown);
	tcase_add_test(tls, test_tls_ctx_files);
	tcase_add_test(tls, test_tls_verified_roundtrip);
	tcase_add_test(tls, test_tls_ip_literal);
	tcase_add_test(tls, test_tls_untrusted);
	tcase_add_test(tls, test_tls_wrong_name);
	tcase_add_test(tls, test_tls_insecure);
	tcase_add_test(tls, test_tls_starttls);
	tcase_add_test(tls, test_tls_deflate);
	tcase_add_test(tls, test_tls_plaintext_buffered);
	tcase_add_test(tls, test_tls_plaintext_server);
	tcase_add_test(tls, test_tls_handshake_timeout);
	tcase_add_test(tls, test_tls_key_update);
	tcase_add_test(tls, test_tls_renegotiation);
	tcase_add_test(tls, test_tls_peer_gone_no_sigpipe);
	tcase_add_test(tls, test_tls_threads_share_ctx);
	suite_add_tcase(s, tls);
	return s;
}
