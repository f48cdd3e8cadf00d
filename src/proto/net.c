// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * net: TCP connections, TLS and timeouts; the contract is in net.h.
 *
 * Design:
 * - Every socket is non-blocking. Whenever the kernel or OpenSSL would
 *   block, we poll() for the wanted direction with a deadline taken from
 *   the connection's timeout, so no call here can hang for ever.
 * - TLS goes through a small BIO of our own instead of OpenSSL's socket
 *   BIO. The socket BIO writes with write(2), which raises SIGPIPE when
 *   the peer has gone; ours uses send(2) with MSG_NOSIGNAL, exactly like
 *   the plaintext path. That keeps SIGPIPE away without touching the
 *   process's signal handlers or any thread's signal mask, both of which
 *   belong to the program, not to a library module.
 * - One read buffer per connection (NET_RBUF_SIZE) serves net_read and
 *   net_read_line, so the two can be mixed freely on one stream (a line
 *   announcing a literal, then the literal's bytes). Big net_read calls
 *   on an empty buffer go straight into the caller's memory.
 * - The only global state is the stop switch (net_stop_all()): a flag
 *   and an eventfd made once, which every poll() here watches beside
 *   its socket, so that one call at exit ends every wait of every
 *   thread at once. OpenSSL 3 initialises itself; its per-thread error
 *   queue is cleared before each TLS call so that SSL_get_error() sees
 *   only the error of that call.
 * - COMPRESS=DEFLATE (zlib) is one layer between the read buffer and
 *   TLS: net_recv_once() inflates what net_recv_raw() got, net_write()
 *   deflates into a fixed buffer that net_write_raw() sends. Inflating
 *   never produces more than the space it is given (the read buffer or
 *   the caller's), so hostile input cannot grow memory; compressed
 *   input that inflates to nothing counts against the read's deadline.
 */
#include "clock.h"
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define ZLIB_CONST
#include <zlib.h>

/* Size of the per-connection read buffer. */
#define NET_RBUF_SIZE 65536

/* Compressed bytes read but not inflated yet, and deflated bytes on
 * their way out: one TLS record each. */
#define NET_ZBUF_SIZE 16384
/* Raw deflate with the largest window (RFC 4978): the server may use
 * any window, so inflating must allow the largest. */
#define NET_ZWBITS (-15)
/* Internal to the read path: compressed input was consumed but gave no
 * output yet; call again (no wait needed) while the deadline allows. */
#define NET_EPROGRESS (-EINPROGRESS)

/* Room for "host:port" with IPv6 brackets, for messages. */
#define NET_ADDR_MAX (NI_MAXHOST + 16)

struct net_tls_ctx {
	SSL_CTX *ssl_ctx; /* owned; only read once made */
	bool insecure;
};

/* COMPRESS=DEFLATE state of one connection (net_start_deflate()). */
struct net_zlib {
	z_stream in; /* inflates the server's stream; next_in is in ibuf */
	z_stream out; /* deflates ours */
	unsigned char ibuf[NET_ZBUF_SIZE]; /* compressed, received */
	unsigned char obuf[NET_ZBUF_SIZE]; /* compressed, to send */
};

struct net_conn {
	int fd; /* owned */
	int timeout_ms; /* bound of each wait, >= 0 */
	SSL *ssl; /* owned; NULL until net_start_tls() succeeds */
	BIO_METHOD *bio_meth; /* owned; must outlive ssl's BIO */
	int bio_errno; /* errno of the last failed socket call in the BIO */
	bool bio_eof; /* the BIO saw end of stream */
	bool tls_fatal; /* OpenSSL failed fatally: no close_notify then */
	int dead; /* 0, or the -errno that every later read/write gives */
	struct net_zlib *z; /* owned; NULL unless compression is on */
	size_t rpos; /* first unconsumed byte in rbuf */
	size_t rlen; /* end of the received bytes in rbuf */
	unsigned char rbuf[NET_RBUF_SIZE];
};

static void net_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The stop switch: set once by net_stop_all(), never cleared. */
static atomic_bool net_stopped;
/* Made readable for good by net_stop_all(); -1 if it could not be made
 * (the flag alone then ends each wait within NET_STOP_POLL_MS). */
static int net_stop_fd = -1;
static pthread_once_t net_stop_once = PTHREAD_ONCE_INIT;
#define NET_STOP_POLL_MS 100

/*
 * Writes one message line into the caller's err buffer, if there is one.
 * Every public function reports through here so a NULL err is allowed.
 */
static void net_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/*
 * Thread-safe strerror(): uses the caller's buffer (GNU strerror_r, which
 * _GNU_SOURCE selects) because plain strerror() may share a static one.
 */
static const char *net_strerror(int errnum, char *buf, size_t len)
{
	return strerror_r(errnum, buf, len);
}

/*
 * Formats a duration in seconds for messages: 30000 -> "30",
 * 200 -> "0.2", so short test timeouts do not read as "0 s".
 */
static void net_fmt_secs(int ms, char *buf, size_t len)
{
	snprintf(buf, len, "%g", ms / 1000.0);
}

/*
 * Formats host and port as "host:port", bracketing IPv6 literals, so that
 * messages name the endpoint the way a user would write it.
 */
static void net_fmt_addr(const char *host, const char *port, char *buf,
			 size_t len)
{
	if (strchr(host, ':'))
		snprintf(buf, len, "[%s]:%s", host, port);
	else
		snprintf(buf, len, "%s:%s", host, port);
}

/* The deadline of a wait that starts now and may last timeout_ms, or
 * the end of the FUSE request being served, if sooner (clock.h). */
static int64_t net_deadline(int timeout_ms)
{
	long left = clock_request_left_ms();
	int64_t ms = timeout_ms > 0 ? timeout_ms : 0;

	return clock_now_ms() + (ms < left ? ms : left);
}

/* Makes the stop switch's eventfd (once, before the first wait). */
static void net_stop_init(void)
{
	net_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void net_stop_all(void)
{
	uint64_t one = 1;

	pthread_once(&net_stop_once, net_stop_init);
	atomic_store(&net_stopped, true);
	/* Never read back: the eventfd stays readable, so every poll(),
	 * now or later, returns at once. */
	if (net_stop_fd >= 0 && write(net_stop_fd, &one, sizeof(one)) < 0) {
		/* only an overflowing counter fails: it is readable */
	}
}

bool net_stopping(void)
{
	return atomic_load(&net_stopped);
}

/*
 * Waits until fd is ready for events or the deadline passes. Returns 0
 * when ready (an error or hang-up also counts: the next I/O call reports
 * it), -ETIMEDOUT, -ECANCELED once net_stop_all() was called, or
 * -errno. A signal only restarts the wait with the time that is left,
 * so EINTR never stretches the bound.
 */
static int net_wait_until(int fd, short events, int64_t deadline)
{
	struct pollfd pfd[2] = {{.fd = fd, .events = events},
				{.fd = -1, .events = POLLIN}};

	pthread_once(&net_stop_once, net_stop_init);
	pfd[1].fd = net_stop_fd;
	for (;;) {
		int64_t left = deadline - clock_now_ms();
		int r;

		if (atomic_load(&net_stopped))
			return -ECANCELED;
		if (left < 0)
			left = 0;
		if (net_stop_fd < 0 && left > NET_STOP_POLL_MS)
			left = NET_STOP_POLL_MS;
		if (left > INT_MAX)
			left = INT_MAX;
		r = poll(pfd, 2, (int)left);
		if (r > 0 && pfd[0].revents)
			return 0;
		if (r == 0 && deadline - clock_now_ms() <= 0)
			return -ETIMEDOUT;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/*
 * Allocates the connection object around a connected non-blocking
 * socket. Takes ownership of fd only on success.
 */
static struct net_conn *net_conn_new(int fd, int timeout_ms)
{
	struct net_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = fd;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
	return c;
}

/*
 * Wraps a socket made elsewhere (a socketpair in the tests). The socket
 * is switched to non-blocking mode because every wait here relies on it.
 */
struct net_conn *net_conn_from_fd(int fd, int timeout_ms)
{
	struct net_conn *c;
	int flags;

	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return NULL;
	c = net_conn_new(fd, timeout_ms);
	if (!c)
		errno = ENOMEM;
	return c;
}

/*
 * Tells whether a connect() error only says that this address family or
 * route is unusable here (say IPv6 on an IPv4-only host). Such an error
 * should not hide the more telling error of another address.
 */
static bool net_err_is_boring(int e)
{
	return e == EAFNOSUPPORT || e == EPROTONOSUPPORT || e == ENETUNREACH ||
	       e == EADDRNOTAVAIL;
}

/*
 * Connects a fresh non-blocking socket to one resolved address, waiting
 * at most timeout_ms. Returns the socket (owned by the caller) or -errno
 * (-ETIMEDOUT when the wait ran out).
 */
static int net_connect_one(const struct addrinfo *ai, int timeout_ms)
{
	int fd, r, soerr = 0;
	socklen_t sl = sizeof(soerr);

	fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	/* A non-blocking connect() carries on in the background even if a
	 * signal interrupted the call, so EINTR is waited out the same way. */
	if (errno != EINPROGRESS && errno != EINTR) {
		r = -errno;
		goto fail_close;
	}
	r = net_wait_until(fd, POLLOUT, net_deadline(timeout_ms));
	if (r < 0)
		goto fail_close;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) {
		r = -errno;
		goto fail_close;
	}
	if (soerr) {
		r = -soerr;
		goto fail_close;
	}
	return fd;

fail_close:
	close(fd);
	return r;
}

/*
 * Resolves host and connects to the first address that answers. Each
 * attempt is bounded by timeout_ms; name resolution itself is bounded by
 * the system resolver's own timeouts (resolv.conf), as getaddrinfo()
 * offers no way to cancel a lookup.
 */
struct net_conn *net_connect(const char *host, const char *port, int timeout_ms,
			     char *err, size_t errlen)
{
	struct addrinfo hints = {0};
	struct addrinfo *res = NULL; /* owned */
	struct addrinfo *ai;
	struct net_conn *c;
	char addr[NET_ADDR_MAX];
	char ebuf[128];
	int fd = -1, rc, last = 0;
	int one = 1;

	net_fmt_addr(host, port, addr, sizeof(addr));
	if (atomic_load(&net_stopped)) {
		net_err(err, errlen, "not connecting to %s: mailfs is stopping",
			addr);
		return NULL;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		net_err(err, errlen, "cannot resolve %s: %s", host,
			rc == EAI_SYSTEM
				? net_strerror(errno, ebuf, sizeof(ebuf))
				: gai_strerror(rc));
		goto fail;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = net_connect_one(ai, timeout_ms);
		if (fd >= 0)
			break;
		if (last == 0 || !net_err_is_boring(-fd))
			last = -fd;
	}
	if (fd < 0) {
		if (last == 0)
			last = ENOENT; /* resolved to nothing usable */
		if (last == ETIMEDOUT) {
			net_fmt_secs(timeout_ms, ebuf, sizeof(ebuf));
			net_err(err, errlen,
				"timed out connecting to %s after %s s", addr,
				ebuf);
		} else {
			net_err(err, errlen, "cannot connect to %s: %s", addr,
				net_strerror(last, ebuf, sizeof(ebuf)));
		}
		goto fail_free_res;
	}
	/* Best effort: a mail session still works without these. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	c = net_conn_new(fd, timeout_ms);
	if (!c) {
		net_err(err, errlen, "cannot connect to %s: out of memory",
			addr);
		goto fail_close;
	}
	freeaddrinfo(res);
	return c;

fail_close:
	close(fd);
fail_free_res:
	freeaddrinfo(res);
fail:
	return NULL;
}

/*
 * Describes the newest OpenSSL error of this thread, so that failures
 * read as "certificate verify failed" rather than as a bare code.
 */
static const char *net_ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	const char *r;

	if (e == 0)
		return "unknown error";
	r = ERR_reason_error_string(e);
	if (r)
		return r;
	ERR_error_string_n(e, buf, len);
	return buf;
}

/*
 * Counts the certificates in a store, so that a CA file holding none
 * (only CRLs, say) is refused instead of silently trusting nothing.
 */
static int net_count_certs(X509_STORE *store)
{
	int i, n = 0;

	for (i = 0; i < sk_X509_OBJECT_num(X509_STORE_get0_objects(store));
	     i++) {
		X509_OBJECT *o =
			sk_X509_OBJECT_value(X509_STORE_get0_objects(store), i);

		if (X509_OBJECT_get_type(o) == X509_LU_X509)
			n++;
	}
	return n;
}

/*
 * Makes the shared client SSL_CTX: TLS 1.2 or newer, peer verification
 * against cafile or the system store unless insecure. The CA file is
 * checked up front so that a typo gives "No such file" rather than an
 * OpenSSL code.
 */
struct net_tls_ctx *net_tls_ctx_new(const char *cafile, bool insecure,
				    char *err, size_t errlen)
{
	struct net_tls_ctx *t; /* owned until returned */
	char ebuf[256];
	int fd;

	t = calloc(1, sizeof(*t));
	if (!t) {
		net_err(err, errlen, "cannot set up TLS: out of memory");
		goto fail;
	}
	t->insecure = insecure;
	ERR_clear_error();
	t->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ssl_ctx) {
		net_err(err, errlen, "cannot set up TLS: %s",
			net_ssl_reason(ebuf, sizeof(ebuf)));
		goto fail_free_t;
	}
	if (!SSL_CTX_set_min_proto_version(t->ssl_ctx, TLS1_2_VERSION)) {
		net_err(err, errlen, "cannot set up TLS: %s",
			net_ssl_reason(ebuf, sizeof(ebuf)));
		goto fail_free_ssl_ctx;
	}
	/*
	 * A peer that closes TCP without close_notify gives a plain end of
	 * stream. Mail protocols frame every response (tagged completions,
	 * counted literals), so a truncation is caught one level up, and
	 * many servers skip close_notify after LOGOUT/QUIT.
	 */
	SSL_CTX_set_options(t->ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Let OpenSSL pull whole socket reads instead of a record header
	 * then its body: fewer system calls on big FETCH responses. */
	SSL_CTX_set_read_ahead(t->ssl_ctx, 1);
	SSL_CTX_set_verify(t->ssl_ctx,
			   insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	if (cafile) {
		fd = open(cafile, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			net_err(err, errlen, "cannot read CA file %s: %s",
				cafile,
				net_strerror(errno, ebuf, sizeof(ebuf)));
			goto fail_free_ssl_ctx;
		}
		close(fd);
		if (!SSL_CTX_load_verify_file(t->ssl_ctx, cafile)) {
			net_err(err, errlen, "cannot load CA file %s: %s",
				cafile, net_ssl_reason(ebuf, sizeof(ebuf)));
			goto fail_free_ssl_ctx;
		}
		if (net_count_certs(SSL_CTX_get_cert_store(t->ssl_ctx)) == 0) {
			net_err(err, errlen, "no certificates in CA file %s",
				cafile);
			goto fail_free_ssl_ctx;
		}
	} else if (!insecure && !SSL_CTX_set_default_verify_paths(t->ssl_ctx)) {
		net_err(err, errlen,
			"cannot load the system CA certificates: %s",
			net_ssl_reason(ebuf, sizeof(ebuf)));
		goto fail_free_ssl_ctx;
	}
	ERR_clear_error();
	return t;

fail_free_ssl_ctx:
	SSL_CTX_free(t->ssl_ctx);
fail_free_t:
	free(t);
fail:
	ERR_clear_error();
	return NULL;
}

/*
 * Frees the shared context. Connections made with it keep working: each
 * SSL holds its own reference to the SSL_CTX.
 */
void net_tls_ctx_free(struct net_tls_ctx *ctx)
{
	if (!ctx)
		return;
	SSL_CTX_free(ctx->ssl_ctx);
	free(ctx);
}

/*
 * BIO write: sends with MSG_NOSIGNAL so that a vanished peer gives EPIPE
 * instead of killing the process, and tells OpenSSL to retry (after our
 * poll) when the socket buffer is full.
 */
static int net_bio_write(BIO *b, const char *data, size_t len, size_t *written)
{
	struct net_conn *c = BIO_get_data(b); /* borrowed */
	ssize_t n;

	BIO_clear_retry_flags(b);
	do
		n = send(c->fd, data, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		*written = 0;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_write(b);
		else
			c->bio_errno = errno;
		return 0;
	}
	*written = (size_t)n;
	return 1;
}

/*
 * BIO read: one recv(). End of stream is remembered for BIO_CTRL_EOF,
 * which OpenSSL asks to tell EOF apart from a socket error.
 */
static int net_bio_read(BIO *b, char *data, size_t len, size_t *readbytes)
{
	struct net_conn *c = BIO_get_data(b); /* borrowed */
	ssize_t n;

	BIO_clear_retry_flags(b);
	do
		n = recv(c->fd, data, len, 0);
	while (n < 0 && errno == EINTR);
	*readbytes = 0;
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_read(b);
		else
			c->bio_errno = errno;
		return 0;
	}
	if (n == 0) {
		c->bio_eof = true;
		return 0;
	}
	*readbytes = (size_t)n;
	return 1;
}

/* BIO control: only flush (nothing is buffered here) and EOF matter. */
static long net_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct net_conn *c = BIO_get_data(b); /* borrowed */

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_EOF:
		return c && c->bio_eof;
	default:
		return 0;
	}
}

/*
 * Makes the method table of our socket BIO. One per connection, owned
 * by it: no global state, and the connection does not depend on the
 * lifetime of the net_tls_ctx it was made with.
 */
static BIO_METHOD *net_bio_method_new(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "mailfs socket");

	if (!m)
		return NULL;
	if (!BIO_meth_set_write_ex(m, net_bio_write) ||
	    !BIO_meth_set_read_ex(m, net_bio_read) ||
	    !BIO_meth_set_ctrl(m, net_bio_ctrl)) {
		BIO_meth_free(m);
		return NULL;
	}
	return m;
}

/* Tells whether host is an IPv4 or IPv6 address literal. */
static bool net_is_ip_literal(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, a) == 1 ||
	       inet_pton(AF_INET6, host, a) == 1;
}

/*
 * Appends one certificate name to a ", "-separated list, dropping
 * anything unprintable that a hostile certificate might carry.
 */
static void net_names_add(char *buf, size_t len, const unsigned char *s,
			  size_t n)
{
	size_t at = strlen(buf);
	size_t i;

	if (at > 0 && at + 2 < len) {
		memcpy(buf + at, ", ", 2);
		at += 2;
	}
	for (i = 0; i < n && at + 1 < len; i++)
		buf[at++] = s[i] > 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
	buf[at] = '\0';
}

/*
 * Lists the DNS and IP names of the server's certificate (or its CN when
 * it has no subjectAltName), so that a name mismatch says what the
 * certificate is actually for. After a failed verification the peer
 * certificate is not set yet, but the received chain is.
 */
static void net_cert_names(SSL *ssl, char *buf, size_t len)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl); /* borrowed */
	GENERAL_NAMES *gens; /* owned */
	X509 *leaf; /* borrowed */
	char ip[INET6_ADDRSTRLEN];
	char cn[256];
	int i, n;

	buf[0] = '\0';
	leaf = chain && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0)
					       : SSL_get0_peer_certificate(ssl);
	if (!leaf)
		return;
	gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_STRING *s;
		int af;

		if (g->type == GEN_DNS) {
			s = g->d.dNSName;
			net_names_add(buf, len, ASN1_STRING_get0_data(s),
				      (size_t)ASN1_STRING_length(s));
		} else if (g->type == GEN_IPADD) {
			s = g->d.iPAddress;
			af = ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6;
			if ((ASN1_STRING_length(s) == 4 ||
			     ASN1_STRING_length(s) == 16) &&
			    inet_ntop(af, ASN1_STRING_get0_data(s), ip,
				      sizeof(ip)))
				net_names_add(buf, len,
					      (const unsigned char *)ip,
					      strlen(ip));
		}
	}
	GENERAL_NAMES_free(gens);
	if (buf[0] == '\0') {
		n = X509_NAME_get_text_by_NID(X509_get_subject_name(leaf),
					      NID_commonName, cn, sizeof(cn));
		if (n > 0)
			net_names_add(buf, len, (const unsigned char *)cn,
				      (size_t)n);
	}
}

/* The SHA-256 fingerprint of the server's certificate, as
 * "AB:CD:...", so that a user can compare it with what they expect
 * before trusting it ("" if there is none). */
static void net_cert_fingerprint(SSL *ssl, char *buf, size_t len)
{
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl); /* borrowed */
	X509 *leaf = chain && sk_X509_num(chain) > 0
			     ? sk_X509_value(chain, 0)
			     : SSL_get0_peer_certificate(ssl); /* borrowed */
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0, i;

	buf[0] = '\0';
	if (!leaf || !X509_digest(leaf, EVP_sha256(), md, &n) ||
	    len < (size_t)n * 3)
		return;
	for (i = 0; i < n; i++)
		snprintf(buf + 3 * i, len - 3 * i, "%02X%s", md[i],
			 i + 1 < n ? ":" : "");
}

/*
 * Explains a failed handshake in one line and picks the errno: a
 * certificate problem names the host and the reason, a silent peer
 * reads as a timeout, anything else quotes OpenSSL.
 */
static int net_tls_fail(struct net_conn *c, SSL *ssl, bool insecure, int sslerr,
			int wait, const char *host, char *err, size_t errlen)
{
	/* Unchecked when insecure: the result is computed but ignored. */
	long v = insecure ? X509_V_OK : SSL_get_verify_result(ssl);
	unsigned long e = ERR_peek_last_error();
	char names[256];
	char ebuf[256];

	if (wait == -ETIMEDOUT) {
		net_fmt_secs(c->timeout_ms, ebuf, sizeof(ebuf));
		net_err(err, errlen,
			"timed out in TLS handshake with %s after %s s", host,
			ebuf);
		return -ETIMEDOUT;
	}
	if (wait < 0) {
		net_err(err, errlen, "TLS handshake with %s failed: %s", host,
			net_strerror(-wait, ebuf, sizeof(ebuf)));
		return wait;
	}
	if (v == X509_V_ERR_HOSTNAME_MISMATCH ||
	    v == X509_V_ERR_IP_ADDRESS_MISMATCH) {
		net_cert_names(ssl, names, sizeof(names));
		net_err(err, errlen,
			"TLS certificate of %s does not match %s%s%s%s", host,
			v == X509_V_ERR_HOSTNAME_MISMATCH ? "host name"
							  : "IP address",
			names[0] ? " (it is for " : "", names,
			names[0] ? ")" : "");
		return -EPROTO;
	}
	if (v != X509_V_OK) {
		net_cert_fingerprint(ssl, names, sizeof(names));
		net_err(err, errlen,
			"TLS certificate of %s not trusted: %s%s%s%s; if you "
			"trust its issuer, give its CA with -o cafile=PATH",
			host, X509_verify_cert_error_string(v),
			names[0] ? " (SHA-256 fingerprint " : "", names,
			names[0] ? ")" : "");
		return -EPROTO;
	}
	if (e == 0 &&
	    (sslerr == SSL_ERROR_ZERO_RETURN || sslerr == SSL_ERROR_SYSCALL)) {
		if (c->bio_errno == 0 || c->bio_errno == EPIPE ||
		    c->bio_errno == ECONNRESET) {
			net_err(err, errlen,
				"%s closed the connection during the TLS "
				"handshake",
				host);
			return -ECONNRESET;
		}
		net_err(err, errlen, "TLS handshake with %s failed: %s", host,
			net_strerror(c->bio_errno, ebuf, sizeof(ebuf)));
		return -c->bio_errno;
	}
	net_err(err, errlen, "TLS handshake with %s failed: %s%s", host,
		net_ssl_reason(ebuf, sizeof(ebuf)),
		ERR_GET_LIB(e) == ERR_LIB_SSL &&
				ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER
			? " (the server speaks plaintext on this port: use "
			  "imap:// or pop3://, which start TLS with STARTTLS "
			  "or STLS, or the TLS port)"
			: "");
	return -EPROTO;
}

/*
 * Runs the client handshake over our BIO. The whole handshake shares
 * one deadline; a server that dribbles it out cannot stretch it.
 * Refuses when plaintext is buffered: bytes an attacker placed after
 * the STARTTLS answer would otherwise be taken as if they came over
 * TLS. Any failure leaves the connection dead: the caller must close
 * it and must not go on in plaintext.
 */
int net_start_tls(struct net_conn *c, struct net_tls_ctx *ctx, const char *host,
		  char *err, size_t errlen)
{
	SSL *ssl; /* owned until handed to c */
	BIO *bio; /* owned until handed to ssl */
	int64_t deadline;
	int r, sslerr, wait = 0, ret;

	if (c->ssl || c->z) {
		net_err(err, errlen, "TLS %s with %s",
			c->ssl ? "is already active" : "cannot follow COMPRESS",
			host);
		return -EINVAL;
	}
	if (c->dead) {
		net_err(err, errlen, "connection to %s is no longer usable",
			host);
		return c->dead;
	}
	if (c->rpos < c->rlen) {
		net_err(err, errlen,
			"refusing TLS with %s: %zu bytes of plaintext arrived "
			"before the handshake (possible injection attack)",
			host, c->rlen - c->rpos);
		ret = -EPROTO;
		goto fail;
	}
	ERR_clear_error();
	c->bio_meth = net_bio_method_new();
	ssl = c->bio_meth ? SSL_new(ctx->ssl_ctx) : NULL;
	if (!ssl) {
		net_err(err, errlen, "cannot set up TLS with %s: out of memory",
			host);
		ret = -ENOMEM;
		goto fail_free_meth;
	}
	bio = BIO_new(c->bio_meth);
	if (!bio) {
		net_err(err, errlen, "cannot set up TLS with %s: out of memory",
			host);
		ret = -ENOMEM;
		goto fail_free_ssl;
	}
	BIO_set_data(bio, c);
	BIO_set_init(bio, 1);
	SSL_set_bio(ssl, bio, bio); /* ssl owns bio from here */
	/* SNI is for names only (RFC 6066 forbids address literals). */
	if (!net_is_ip_literal(host) && !SSL_set_tlsext_host_name(ssl, host)) {
		net_err(err, errlen, "cannot set up TLS with %s: bad name",
			host);
		ret = -EINVAL;
		goto fail_free_ssl;
	}
	if (!ctx->insecure) {
		if (net_is_ip_literal(host))
			r = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
							  host);
		else {
			SSL_set_hostflags(ssl,
					  X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			r = SSL_set1_host(ssl, host);
		}
		if (!r) {
			net_err(err, errlen,
				"cannot set up TLS with %s: bad host name",
				host);
			ret = -EINVAL;
			goto fail_free_ssl;
		}
	}
	SSL_set_connect_state(ssl);
	deadline = net_deadline(c->timeout_ms);
	for (;;) {
		ERR_clear_error();
		c->bio_errno = 0;
		r = SSL_do_handshake(ssl);
		if (r == 1)
			break;
		sslerr = SSL_get_error(ssl, r);
		if (sslerr == SSL_ERROR_WANT_READ)
			wait = net_wait_until(c->fd, POLLIN, deadline);
		else if (sslerr == SSL_ERROR_WANT_WRITE)
			wait = net_wait_until(c->fd, POLLOUT, deadline);
		else
			wait = 0;
		if (wait < 0 || (sslerr != SSL_ERROR_WANT_READ &&
				 sslerr != SSL_ERROR_WANT_WRITE)) {
			ret = net_tls_fail(c, ssl, ctx->insecure, sslerr, wait,
					   host, err, errlen);
			goto fail_free_ssl;
		}
	}
	c->ssl = ssl;
	ERR_clear_error();
	return 0;

fail_free_ssl:
	SSL_free(ssl);
fail_free_meth:
	BIO_meth_free(c->bio_meth);
	c->bio_meth = NULL;
fail:
	ERR_clear_error();
	c->dead = ret;
	return ret;
}

/* Tells whether the connection runs TLS. */
bool net_is_tls(const struct net_conn *c)
{
	return c && c->ssl;
}

/* Sets the bound of later waits; a negative value means "do not wait". */
void net_set_timeout(struct net_conn *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
}

/*
 * Turns a failed SSL_read_ex/SSL_write_ex into what to do next:
 * -EAGAIN with *events set means "poll, then call again" (either
 * direction, since a renegotiation or key update can make a read write
 * and a write read); 0 means the peer closed TLS; anything else is the
 * final -errno. A fatal error is remembered so close skips
 * close_notify, which OpenSSL forbids after one.
 */
static ssize_t net_tls_result(struct net_conn *c, int r, short *events)
{
	int e = SSL_get_error(c->ssl, r);

	switch (e) {
	case SSL_ERROR_WANT_READ:
		*events = POLLIN;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		*events = POLLOUT;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		c->tls_fatal = true;
		ERR_clear_error();
		if (c->bio_errno == 0 || c->bio_errno == EPIPE)
			return -ECONNRESET;
		return -c->bio_errno;
	default:
		c->tls_fatal = true;
		ERR_clear_error();
		return -EPROTO;
	}
}

/*
 * One attempt to read what the peer sent (decrypted, still compressed
 * if compression is on), without waiting: bytes (> 0), 0 at end of
 * stream, -EAGAIN with *events to poll for, or -errno.
 */
static ssize_t net_recv_raw(struct net_conn *c, void *buf, size_t len,
			    short *events)
{
	size_t got = 0;
	ssize_t n;
	int r;

	if (c->ssl) {
		ERR_clear_error();
		c->bio_errno = 0;
		r = SSL_read_ex(c->ssl, buf, len, &got);
		if (r == 1)
			return (ssize_t)got;
		/* No bytes with WANT_READ (a session ticket, a key update)
		 * is not an end of stream: net_tls_result says "poll". */
		return net_tls_result(c, r, events);
	}
	do
		n = recv(c->fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		*events = POLLIN;
		return -EAGAIN;
	}
	return -errno;
}

/*
 * Inflates what zlib holds into buf (at most len bytes): bytes (> 0),
 * 0 when the server ended its stream (no more data can come, read as
 * end of stream), -EAGAIN when more input is needed, or -EPROTO
 * (-ENOMEM) for corrupt input, which kills the connection.
 */
static ssize_t net_z_inflate(struct net_conn *c, void *buf, size_t len)
{
	z_stream *zs = &c->z->in;
	int r;

	zs->next_out = buf;
	zs->avail_out = len > UINT_MAX ? UINT_MAX : (uInt)len;
	len = zs->avail_out;
	r = inflate(zs, Z_SYNC_FLUSH);
	if (zs->avail_out < len)
		return (ssize_t)(len - zs->avail_out);
	if (r == Z_STREAM_END)
		return 0;
	/* With room left, inflate() stops only when the input is used up,
	 * so input left over here is as bad as an error code. */
	if ((r != Z_OK && r != Z_BUF_ERROR) || zs->avail_in > 0) {
		c->dead = r == Z_MEM_ERROR ? -ENOMEM : -EPROTO;
		return c->dead;
	}
	return -EAGAIN;
}

/*
 * One attempt to read, without waiting: bytes (> 0), 0 at end of
 * stream, -EAGAIN with *events to poll for, NET_EPROGRESS (compression:
 * input was taken that gave no output yet), or -errno. With compression
 * at most one raw read is made per call, so the caller's deadline
 * bounds a peer that sends endless input that inflates to nothing.
 */
static ssize_t net_recv_once(struct net_conn *c, void *buf, size_t len,
			     short *events)
{
	struct net_zlib *z = c->z; /* borrowed */
	ssize_t n;

	if (!z)
		return net_recv_raw(c, buf, len, events);
	n = net_z_inflate(c, buf, len);
	if (n != -EAGAIN)
		return n;
	n = net_recv_raw(c, z->ibuf, sizeof(z->ibuf), events);
	if (n <= 0)
		return n;
	z->in.next_in = z->ibuf;
	z->in.avail_in = (uInt)n;
	n = net_z_inflate(c, buf, len);
	return n == -EAGAIN ? NET_EPROGRESS : n;
}

/*
 * Reads at least one byte into buf, polling as needed until the
 * timeout runs out. Always tries the read before polling: OpenSSL (and
 * zlib) may hold bytes that poll() cannot see.
 */
static ssize_t net_recv_some(struct net_conn *c, void *buf, size_t len)
{
	int64_t deadline = net_deadline(c->timeout_ms);
	short events = POLLIN;
	ssize_t n;
	int w;

	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	for (;;) {
		n = net_recv_once(c, buf, len, &events);
		if (n == NET_EPROGRESS) {
			if (clock_now_ms() >= deadline)
				return -ETIMEDOUT;
			continue;
		}
		if (n != -EAGAIN)
			return n;
		w = net_wait_until(c->fd, events, deadline);
		if (w < 0)
			return w;
	}
}

/*
 * Copies buffered bytes first; an empty buffer is refilled by one read,
 * or bypassed when the caller's buffer is at least as big as ours.
 * len 0 returns 0, as read(2) does.
 */
ssize_t net_read(struct net_conn *c, void *buf, size_t len)
{
	size_t avail;
	ssize_t n;

	if (c->dead)
		return c->dead;
	if (len == 0)
		return 0;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	avail = c->rlen - c->rpos;
	if (avail == 0) {
		c->rpos = 0;
		c->rlen = 0;
		if (len >= NET_RBUF_SIZE)
			return net_recv_some(c, buf, len);
		n = net_recv_some(c, c->rbuf, NET_RBUF_SIZE);
		if (n <= 0)
			return n;
		c->rlen = (size_t)n;
		avail = (size_t)n;
	}
	if (avail > len)
		avail = len;
	memcpy(buf, c->rbuf + c->rpos, avail);
	c->rpos += avail;
	return (ssize_t)avail;
}

/*
 * Reads one line. A partial line stays in our buffer while it fits, so
 * a timeout loses nothing and the call can simply be repeated; only a
 * line longer than the buffer is moved piecewise into the caller's
 * buffer, and an error after that kills the connection since part of
 * the line is gone.
 */
int net_read_line(struct net_conn *c, char *buf, size_t max, size_t *len_r)
{
	size_t n = 0; /* bytes of this line already moved to buf */
	unsigned char *start, *lf;
	size_t avail, k;
	ssize_t got;
	int ret;

	if (c->dead)
		return c->dead;
	if (max == 0)
		return -EINVAL;
	for (;;) {
		start = c->rbuf + c->rpos;
		avail = c->rlen - c->rpos;
		lf = memchr(start, '\n', avail);
		if (lf) {
			k = (size_t)(lf - start);
			if (k > max - n) {
				ret = -EMSGSIZE;
				goto fail;
			}
			memcpy(buf + n, start, k);
			n += k;
			c->rpos += k + 1;
			if (n > 0 && buf[n - 1] == '\r')
				n--;
			if (n > max - 1) {
				ret = -EMSGSIZE;
				goto fail;
			}
			buf[n] = '\0';
			*len_r = n;
			return 0;
		}
		if (n == 0 && avail <= max && avail < NET_RBUF_SIZE) {
			/* Keep the partial line, at the front of rbuf. */
			if (c->rpos > 0) {
				memmove(c->rbuf, start, avail);
				c->rpos = 0;
				c->rlen = avail;
			}
		} else {
			if (avail > max - n) {
				ret = -EMSGSIZE;
				goto fail;
			}
			memcpy(buf + n, start, avail);
			n += avail;
			c->rpos = 0;
			c->rlen = 0;
		}
		got = net_recv_some(c, c->rbuf + c->rlen,
				    NET_RBUF_SIZE - c->rlen);
		if (got <= 0) {
			ret = got == 0 ? -ECONNRESET : (int)got;
			goto fail;
		}
		c->rlen += (size_t)got;
	}

fail:
	if (ret == -EMSGSIZE || n > 0)
		c->dead = ret;
	return ret;
}

/*
 * One attempt to write, without waiting: bytes written (> 0),
 * -EAGAIN with *events to poll for, or -errno. A peer that is gone
 * gives -ECONNRESET (never SIGPIPE: MSG_NOSIGNAL here and in our BIO).
 */
static ssize_t net_send_once(struct net_conn *c, const void *buf, size_t len,
			     short *events)
{
	size_t done = 0;
	ssize_t n;
	int r;

	if (c->ssl) {
		ERR_clear_error();
		c->bio_errno = 0;
		r = SSL_write_ex(c->ssl, buf, len, &done);
		if (r == 1)
			return (ssize_t)done;
		n = net_tls_result(c, r, events);
		return n == 0 ? -ECONNRESET : n;
	}
	do
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK) {
		*events = POLLOUT;
		return -EAGAIN;
	}
	return errno == EPIPE ? -ECONNRESET : -errno;
}

/*
 * Writes everything as it is (TLS encrypts it), each wait bounded by
 * the timeout (so a long upload that keeps moving is fine). After a
 * failure the peer may have part of the data, and OpenSSL insists that
 * an interrupted write be retried with the same bytes, so the
 * connection is marked dead.
 */
static int net_write_raw(struct net_conn *c, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	short events = POLLOUT;
	ssize_t n;
	int w;

	while (len > 0) {
		n = net_send_once(c, p, len > SSIZE_MAX ? SSIZE_MAX : len,
				  &events);
		if (n == -EAGAIN) {
			w = net_wait_until(c->fd, events,
					   net_deadline(c->timeout_ms));
			if (w < 0) {
				c->dead = w;
				return w;
			}
			continue;
		}
		if (n < 0) {
			c->dead = (int)n;
			return (int)n;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Deflates len bytes and sends them through a fixed buffer, the last
 * piece with a sync flush: the server can then inflate all of it, so
 * a command is never left waiting in zlib. A deflate error (which only
 * a broken stream gives) kills the connection like a failed send.
 */
static int net_z_write(struct net_conn *c, const void *buf, size_t len)
{
	struct net_zlib *z = c->z; /* borrowed */
	const unsigned char *p = buf;
	uInt chunk;
	int r, rc;

	while (len > 0) {
		chunk = len > NET_ZBUF_SIZE ? NET_ZBUF_SIZE : (uInt)len;
		z->out.next_in = p;
		z->out.avail_in = chunk;
		do {
			z->out.next_out = z->obuf;
			z->out.avail_out = sizeof(z->obuf);
			r = deflate(&z->out,
				    chunk == len ? Z_SYNC_FLUSH : Z_NO_FLUSH);
			if (r == Z_STREAM_ERROR) {
				c->dead = -EPROTO;
				return c->dead;
			}
			rc = net_write_raw(c, z->obuf,
					   sizeof(z->obuf) - z->out.avail_out);
			if (rc < 0)
				return rc;
		} while (z->out.avail_out == 0);
		p += chunk;
		len -= chunk;
	}
	return 0;
}

/* Writes everything, deflated first when compression is on. */
int net_write(struct net_conn *c, const void *buf, size_t len)
{
	if (c->dead)
		return c->dead;
	return c->z ? net_z_write(c, buf, len) : net_write_raw(c, buf, len);
}

/* Bytes received and buffered here but not consumed yet: with
 * compression, compressed bytes zlib still holds count too. */
size_t net_buffered(const struct net_conn *c)
{
	if (!c)
		return 0;
	return c->rlen - c->rpos + (c->z ? c->z->in.avail_in : 0);
}

/*
 * Turns compression on (see net.h). The compressed stream starts with
 * the caller's pending bytes, followed by whatever this connection had
 * buffered, which all go into zlib's input buffer.
 */
int net_start_deflate(struct net_conn *c, const void *pending, size_t len,
		      char *err, size_t errlen)
{
	size_t held = c->rlen - c->rpos;
	struct net_zlib *z; /* owned until handed to c */

	if (c->z || c->dead) {
		net_err(err, errlen, "cannot start compression: %s",
			c->z ? "it is on already" : "connection unusable");
		return c->z ? -EINVAL : c->dead;
	}
	if (len > NET_ZBUF_SIZE || held > NET_ZBUF_SIZE - len) {
		net_err(err, errlen,
			"%zu bytes arrived with the answer to COMPRESS "
			"(the most allowed is %d)",
			len + held, NET_ZBUF_SIZE);
		c->dead = -EPROTO;
		return c->dead;
	}
	z = calloc(1, sizeof(*z));
	if (!z || inflateInit2(&z->in, NET_ZWBITS) != Z_OK) {
		free(z);
		goto fail_nomem;
	}
	if (deflateInit2(&z->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, NET_ZWBITS,
			 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		inflateEnd(&z->in);
		free(z);
		goto fail_nomem;
	}
	if (len > 0) /* pending may be NULL then */
		memcpy(z->ibuf, pending, len);
	memcpy(z->ibuf + len, c->rbuf + c->rpos, held);
	z->in.next_in = z->ibuf;
	z->in.avail_in = (uInt)(len + held);
	c->rpos = c->rlen = 0;
	c->z = z;
	return 0;

fail_nomem:
	net_err(err, errlen, "cannot start compression: out of memory");
	c->dead = -ENOMEM;
	return c->dead;
}

/* Tells whether COMPRESS=DEFLATE is on (see net_start_deflate()). */
bool net_is_compressed(const struct net_conn *c)
{
	return c && c->z;
}

/*
 * Sends close_notify once without waiting (a full socket buffer or a
 * dead peer just means no close_notify), then frees everything. Never
 * blocks: the socket is non-blocking and nothing here polls.
 */
void net_close(struct net_conn *c)
{
	if (!c)
		return;
	if (c->ssl) {
		if (!c->tls_fatal) {
			ERR_clear_error();
			SSL_shutdown(c->ssl);
		}
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	BIO_meth_free(c->bio_meth);
	if (c->z) {
		inflateEnd(&c->z->in);
		deflateEnd(&c->z->out);
		free(c->z);
	}
	close(c->fd);
	free(c);
}

/* One-shot digest; EVP_Digest fails only when out of memory, and then
 * the output is zeros, which only makes names collide (harmless). */
void net_sha256(const void *data, size_t len, unsigned char out[NET_SHA256_LEN])
{
	unsigned int n = NET_SHA256_LEN;

	if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL))
		memset(out, 0, NET_SHA256_LEN);
}

bool net_peer_gone(const struct net_conn *c)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLRDHUP};

	if (poll(&p, 1, 0) <= 0)
		return false;
	return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

/*
 * net_wait_readable() with compression: inflates into the (empty) read
 * buffer until something comes out, so that 1 means a read finds data
 * at once; compressed bytes that inflate to nothing (a flush marker
 * arriving alone) do not wake the caller up. End of stream gives 1 (the
 * read reports it).
 */
static int net_z_wait_readable(struct net_conn *c, int ms)
{
	int64_t deadline = clock_now_ms() + (ms > 0 ? ms : 0);
	short events = POLLIN;
	ssize_t n;
	int w;

	if (c->dead)
		return c->dead;
	c->rpos = c->rlen = 0;
	for (;;) {
		n = net_recv_once(c, c->rbuf, NET_RBUF_SIZE, &events);
		if (n >= 0) {
			c->rlen = (size_t)n;
			return 1;
		}
		if (n == NET_EPROGRESS) {
			if (clock_now_ms() >= deadline)
				return 0;
			continue;
		}
		if (n != -EAGAIN)
			return (int)n;
		w = net_wait_until(c->fd, events, deadline);
		if (w < 0)
			return w == -ETIMEDOUT ? 0 : w;
	}
}

int net_wait_readable(struct net_conn *c, int ms)
{
	int r;

	if (c->rpos < c->rlen)
		return 1;
	if (c->z)
		return net_z_wait_readable(c, ms);
	if (c->ssl && SSL_pending(c->ssl) > 0)
		return 1;
	r = net_wait_until(c->fd, POLLIN, clock_now_ms() + (ms > 0 ? ms : 0));
	return r == 0 ? 1 : r == -ETIMEDOUT ? 0 : r;
}
