// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of pop3: a scripted POP3 server in a thread on a loopback
 * TCP socket, and the real session code (pop3_open() connects to it in
 * cleartext; TLS is covered by the integration tests).
 *
 * A script is a list of steps: lines the server expects from the client
 * and bytes it sends back, whole, in small pieces or endlessly. After
 * the script the server records whatever else the client sends until
 * the client closes, so that a test can check what was (not) sent.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "pop3.h"
#include "strbuf.h"

/* Bound of every wait that should succeed at once. */
#define T_LONG_MS 5000
/* Timeout of the client in the tests that expect it to run out. */
#define T_SHORT_MS 300

/* ---- the scripted server ---- */

enum step_op {
	S_END,
	S_SEND, /* sends str (len bytes, or strlen) in one write */
	S_SPLIT, /* sends str in pieces of arg bytes, pausing between */
	S_EXPECT, /* reads one line, which must be str (CRLF removed) */
	S_SLEEP, /* pauses arg ms */
	S_FLOOD, /* sends str again and again until the client leaves */
	S_GEN_UIDL, /* sends "+OK", arg UIDL lines and "." */
	S_SHUT, /* shuts down the sending side: the client sees EOF */
	S_RECV, /* waits for any bytes from the client (not a line) */
};

struct step {
	enum step_op op;
	const char *str;
	size_t len; /* of str; 0 means strlen(str) */
	int arg;
};

/* Steps, for scripts that read like a dialogue. */
/* clang-format off */
#define STEP(op, str) { (op), (str), 0, 0 }
#define SEND(str) { S_SEND, (str), 0, 0 }
#define SENDN(str, len) { S_SEND, (str), (len), 0 }
#define SPLIT(str, len, piece) { S_SPLIT, (str), (len), (piece) }
#define EXPECT(str) { S_EXPECT, (str), 0, 0 }
#define SLEEP(ms) { S_SLEEP, NULL, 0, (ms) }
#define FLOOD(str) { S_FLOOD, (str), 0, 0 }
#define GEN_UIDL(count) { S_GEN_UIDL, NULL, 0, (count) }
#define SHUT { S_SHUT, NULL, 0, 0 }
#define RECV { S_RECV, NULL, 0, 0 }
#define END { S_END, NULL, 0, 0 }
/* clang-format on */

struct fake {
	int lfd; /* owned: the listening socket */
	char port[16];
	const struct step *steps; /* borrowed, ended by S_END */
	pthread_t thread;
	char got[8192]; /* every line received, each ended by "\n" */
	size_t got_len;
	char fail[512]; /* the first way the client broke the script */
};

/* Milliseconds on the monotonic clock. */
static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Sends all of buf; false once the client is gone (or stalls 5 s). */
static bool send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

/*
 * Reads one line from the client into buf (CRLF or LF removed, NUL
 * terminated) and records it in f->got. Returns false at end of stream,
 * on an error or after the 5 s receive timeout.
 */
static bool fake_read_line(struct fake *f, int fd, char *buf, size_t size)
{
	size_t n = 0;
	char c;

	for (;;) {
		ssize_t r = recv(fd, &c, 1, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		if (c == '\n')
			break;
		if (n + 1 < size)
			buf[n++] = c;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (f->got_len + n + 2 < sizeof(f->got)) {
		memcpy(f->got + f->got_len, buf, n);
		f->got_len += n;
		f->got[f->got_len++] = '\n';
		f->got[f->got_len] = '\0';
	}
	return true;
}

/*
 * Sends count UIDL lines between "+OK" and ".", in big writes: line i is
 * "N ui" with N counting from 1 to POP3_MAX_COUNT and again from 1, so
 * that only the count (not a number) is out of bounds.
 */
static bool fake_gen_uidl(int fd, int count)
{
	static char buf[64 * 1024];
	size_t len = 0;
	int i;

	if (!send_all(fd, "+OK\r\n", 5))
		return false;
	for (i = 1; i <= count; i++) {
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					"%d u%d\r\n",
					(i - 1) % POP3_MAX_COUNT + 1, i);
		if (len > sizeof(buf) - 64) {
			if (!send_all(fd, buf, len))
				return false;
			len = 0;
		}
	}
	return send_all(fd, buf, len) && send_all(fd, ".\r\n", 3);
}

/*
 * Runs one step on the connection; false when the script cannot go on
 * (f->fail then says why, unless the client simply left).
 */
static bool fake_step(struct fake *f, int fd, const struct step *st)
{
	size_t len = st->str ? (st->len ? st->len : strlen(st->str)) : 0;
	char line[1024];
	size_t i, k;

	switch (st->op) {
	case S_END:
		break;
	case S_SEND:
		return send_all(fd, st->str, len);
	case S_SPLIT:
		for (i = 0; i < len; i += k) {
			k = len - i < (size_t)st->arg ? len - i
						      : (size_t)st->arg;
			if (!send_all(fd, st->str + i, k))
				return false;
			usleep(1000);
		}
		break;
	case S_EXPECT:
		if (!fake_read_line(f, fd, line, sizeof(line))) {
			snprintf(f->fail, sizeof(f->fail),
				 "expected \"%s\", got nothing", st->str);
			return false;
		}
		if (strcmp(line, st->str) != 0) {
			snprintf(f->fail, sizeof(f->fail),
				 "expected \"%s\", got \"%.400s\"", st->str,
				 line);
			return false;
		}
		break;
	case S_SLEEP:
		usleep((useconds_t)st->arg * 1000);
		break;
	case S_FLOOD:
		while (send_all(fd, st->str, len))
			;
		return false;
	case S_GEN_UIDL:
		return fake_gen_uidl(fd, st->arg);
	case S_SHUT:
		shutdown(fd, SHUT_WR);
		break;
	case S_RECV:
		if (recv(fd, line, sizeof(line), 0) <= 0) {
			snprintf(f->fail, sizeof(f->fail),
				 "expected bytes, got nothing");
			return false;
		}
		break;
	}
	return true;
}

/* The server thread: one connection, the script, then whatever the
 * client still sends until it closes. */
static void *fake_main(void *arg)
{
	struct fake *f = arg;
	struct timeval tv = {T_LONG_MS / 1000, 0};
	struct pollfd pfd = {f->lfd, POLLIN, 0};
	const struct step *st;
	char line[1024];
	int fd, one = 1;

	if (poll(&pfd, 1, T_LONG_MS) != 1) {
		snprintf(f->fail, sizeof(f->fail), "no connection");
		return NULL;
	}
	fd = accept(f->lfd, NULL, NULL);
	if (fd < 0) {
		snprintf(f->fail, sizeof(f->fail), "accept: %s",
			 strerror(errno));
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (st = f->steps; st->op != S_END; st++)
		if (!fake_step(f, fd, st))
			break;
	while (fake_read_line(f, fd, line, sizeof(line)))
		;
	close(fd);
	return NULL;
}

/* Starts a server on 127.0.0.1 (a kernel-chosen port) for steps. */
static void fake_start(struct fake *f, const struct step *steps)
{
	struct sockaddr_in sa = {0};
	socklen_t sl = sizeof(sa);

	memset(f, 0, sizeof(*f));
	f->steps = steps;
	f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(f->lfd, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(f->lfd, 1), 0);
	ck_assert_int_eq(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
	snprintf(f->port, sizeof(f->port), "%u", ntohs(sa.sin_port));
	ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

/* Waits for the server (the client must have closed by now) and checks
 * that the client followed the script. */
static void fake_finish(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->lfd);
	ck_assert_msg(f->fail[0] == '\0', "server: %s", f->fail);
}

/* True when the server received exactly this line at some point. */
static bool fake_got(const struct fake *f, const char *line)
{
	size_t n = strlen(line);
	const char *p = f->got;

	for (; (p = strstr(p, line)) != NULL; p++)
		if ((p == f->got || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

/* What the tests' credential callback hands out, and how often it was
 * asked. */
struct test_cred {
	const char *secret; /* NULL: the callback fails */
	int calls;
};

static struct test_cred test_password = {"s3cret", 0};

/* The credential callback of the tests (see sasl.h). */
static int test_credential(void *ctx, char *buf, size_t len, char *err,
			   size_t errlen)
{
	struct test_cred *tc = ctx;

	tc->calls++;
	if (!tc->secret) {
		snprintf(err, errlen, "token_command failed (exit status 7)");
		return -1;
	}
	snprintf(buf, len, "%s", tc->secret);
	return 0;
}

/* A client configuration for the server f. */
static struct pop3_config fake_cfg(const struct fake *f, enum pop3_tls tls,
				   int timeout_ms)
{
	struct pop3_config c = {0};

	c.host = "127.0.0.1";
	c.port = f->port;
	c.user = "alice";
	c.credential =
		(struct sasl_credential){test_credential, &test_password};
	c.tls = tls;
	c.timeout_ms = timeout_ms;
	return c;
}

/* Opens a session that must succeed. */
static struct pop3_session *open_ok(const struct pop3_config *c)
{
	struct pop3_session *s = NULL;
	struct pop3_error err = {0};

	ck_assert_msg(pop3_open(c, &s, &err) == 0, "open: %s", err.text);
	ck_assert_ptr_nonnull(s);
	ck_assert(pop3_usable(s));
	return s;
}

/* Checks an error's kind and that its text holds want. */
static void check_err(const struct pop3_error *e, enum pop3_err_kind kind,
		      const char *want)
{
	ck_assert_msg(e->kind == kind, "kind %d, want %d (%s)", e->kind, kind,
		      e->text);
	ck_assert_msg(strstr(e->text, want) != NULL, "\"%s\" lacks \"%s\"",
		      e->text, want);
}

/* Greeting, and a CAPA answer listing caps (lines with CRLF). */
#define GREET(caps)                                                   \
	SEND("+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n"), \
		EXPECT("CAPA"), SEND("+OK\r\n" caps ".\r\n")
/* A successful USER/PASS login. */
#define USER_PASS                                                     \
	EXPECT("USER alice"), SEND("+OK\r\n"), EXPECT("PASS s3cret"), \
		SEND("+OK 2 messages\r\n")
#define LOGIN GREET("TOP\r\nUSER\r\nUIDL\r\n"), USER_PASS
#define LOGIN_PIPE GREET("USER\r\nPIPELINING\r\nUIDL\r\n"), USER_PASS
/* base64("\0alice\0s3cret") */
#define PLAIN_B64 "AGFsaWNlAHMzY3JldA=="

/* ---- greeting and login ---- */

/* Greetings that must fail, and how. */
static const struct {
	const char *greeting;
	size_t len;
	enum pop3_err_kind kind;
	const char *want;
} bad_greetings[] = {
	{"-ERR too busy, try later\r\n", 0, POP3_ERR_ERR, ":" /* port */},
	{"* OK IMAP4rev1 ready\r\n", 0, POP3_ERR_PROTO,
	 "speaks IMAP, not POP3: use imaps:// or imap://"},
	{"+OKAY\r\n", 0, POP3_ERR_PROTO, "did not greet as a POP3 server"},
	{"-ERR \x1b[31mred\x07\r\n", 0, POP3_ERR_ERR,
	 "refused the session: ?[31mred?"},
	{"", 0, POP3_ERR_NET, "127.0.0.1 closed the connection"},
	{"+OK no line end", 0, POP3_ERR_NET, "closed the connection"},
};

/* A greeting other than +OK fails open with a clear error. */
START_TEST(test_greeting_bad)
{
	const struct step steps[] = {
		SENDN(bad_greetings[_i].greeting, bad_greetings[_i].len),
		SHUT,
		END,
	};
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s = (void *)1;
	struct pop3_error err = {0};

	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	ck_assert_int_eq(pop3_open(&c, &s, &err), -1);
	ck_assert_ptr_null(s);
	check_err(&err, bad_greetings[_i].kind, bad_greetings[_i].want);
	if (_i == 0)
		check_err(&err, POP3_ERR_ERR,
			  "refused the session: too busy, try later");
	ck_assert_msg(strchr(err.text, '\x1b') == NULL, "%s", err.text);
	fake_finish(&f);
	ck_assert_uint_eq(f.got_len, 0);
}
END_TEST

/* A greeting longer than a status line may be is a protocol error. */
START_TEST(test_greeting_overlong)
{
	static char big[10000];
	const struct step steps[] = {
		SEND(big),
		END,
	};
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	struct pop3_error err;

	memset(big, 'x', sizeof(big) - 3);
	memcpy(big, "+OK ", 4);
	memcpy(big + sizeof(big) - 3, "\r\n", 3);
	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	ck_assert_int_eq(pop3_open(&c, &s, &err), -1);
	check_err(&err, POP3_ERR_PROTO, "sent a line longer than 8192 bytes");
	ck_assert_int_eq(err.errnum, EMSGSIZE);
	fake_finish(&f);
}
END_TEST

/* How each CAPA answer makes the client log in. */
static const struct {
	const char *capa; /* the whole answer to CAPA */
	const char *first; /* the line the client must send first */
} logins[] = {
	{"+OK\r\nUSER\r\nUIDL\r\n.\r\n", "USER alice"},
	{"-ERR unknown command\r\n", "USER alice"},
	{"+OK\r\n.\r\n", "USER alice"},
	{"+OK\r\nSASL LOGIN CRAM-MD5\r\n.\r\n", "USER alice"},
	{"+OK\r\nSASL PLAIN\r\n.\r\n", "AUTH PLAIN " PLAIN_B64},
	{"+OK\r\nsasl login plain\r\nUSER\r\n.\r\n", "AUTH PLAIN " PLAIN_B64},
	{"+OK\r\nSASLX PLAIN\r\n.\r\n", "USER alice"},
	{"+OK\r\nIMPLEMENTATION PLAIN\r\n.\r\n", "USER alice"},
};

/*
 * Logs in with AUTH PLAIN (the exact base64 checked) when CAPA lists
 * SASL PLAIN, else with USER/PASS, and ends with QUIT.
 */
START_TEST(test_login)
{
	bool plain = strncmp(logins[_i].first, "AUTH", 4) == 0;
	/* Room for QUIT after either login; the rest is S_END. */
	struct step steps[10] = {
		SEND("+OK hello\r\n"),
		EXPECT("CAPA"),
		SEND(logins[_i].capa),
		EXPECT(logins[_i].first),
		SEND("+OK\r\n"),
		STEP(plain ? S_END : S_EXPECT, "PASS s3cret"),
		SEND("+OK logged in\r\n"),
		END,
	};
	struct step quit[] = {
		EXPECT("QUIT"),
		SEND("+OK bye\r\n"),
		END,
	};
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	struct pop3_error err;

	memcpy(plain ? &steps[5] : &steps[7], quit, sizeof(quit));
	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	s = open_ok(&c);
	ck_assert_int_eq(pop3_quit(s, &err), 0);
	ck_assert_int_eq(err.kind, POP3_ERR_NONE);
	fake_finish(&f);
}
END_TEST

/* Refusals at each step of the login: POP3_ERR_AUTH naming the user. */
static const struct {
	const char *capa;
	const char *user_answer;
	const char *pass_answer;
	const char *want;
} refusals[] = {
	{"", "+OK\r\n", "-ERR [AUTH] invalid credentials\r\n",
	 "login as alice on 127.0.0.1 failed: [AUTH] invalid credentials"},
	{"", "-ERR no such user\r\n", NULL,
	 "login as alice on 127.0.0.1 failed: no such user"},
	{"SASL PLAIN\r\n", "-ERR [AUTH] bad\x01 password\r\n", NULL,
	 "login as alice on 127.0.0.1 failed: [AUTH] bad? password"},
	{"", "+OK\r\n", "-ERR\r\n",
	 "login as alice on 127.0.0.1 failed: 127.0.0.1 answered -ERR"},
};

/* A refused login gives POP3_ERR_AUTH with the server's reason. */
START_TEST(test_login_refused)
{
	bool plain = refusals[_i].capa[0] != '\0';
	char capa[128];
	const struct step steps[] = {
		SEND("+OK\r\n"),
		EXPECT("CAPA"),
		SEND(capa),
		EXPECT(plain ? "AUTH PLAIN " PLAIN_B64 : "USER alice"),
		SEND(refusals[_i].user_answer),
		STEP(refusals[_i].pass_answer ? S_EXPECT : S_END,
		     "PASS s3cret"),
		SEND(refusals[_i].pass_answer),
		END,
	};
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	struct pop3_error err;

	snprintf(capa, sizeof(capa), "+OK\r\n%s.\r\n", refusals[_i].capa);
	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	ck_assert_int_eq(pop3_open(&c, &s, &err), -1);
	check_err(&err, POP3_ERR_AUTH, refusals[_i].want);
	fake_finish(&f);
	ck_assert(!fake_got(&f, "QUIT"));
}
END_TEST

/* A user name with a line break is never sent (command injection). */
START_TEST(test_login_line_break)
{
	const struct step steps[] = {
		SEND("+OK\r\n"),
		EXPECT("CAPA"),
		SEND("+OK\r\nUSER\r\n.\r\n"),
		END,
	};
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	struct pop3_error err;

	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	c.user = "alice\r\nDELE 1";
	ck_assert_int_eq(pop3_open(&c, &s, &err), -1);
	check_err(&err, POP3_ERR_AUTH, "line break");
	fake_finish(&f);
	ck_assert_str_eq(f.got, "CAPA\n");
}
END_TEST

/* After a challenge that follows AUTH PLAIN's credentials: how the
 * server goes on, and the error the login fails with. */
static const struct {
	const char *after_cancel;
	enum pop3_err_kind kind;
	const char *want;
} challenges[] = {
	{"-ERR canceled\r\n", POP3_ERR_AUTH,
	 "login as alice on 127.0.0.1 failed (PLAIN: the server sent a "
	 "challenge after the credentials): canceled"},
	{"+ \r\n", POP3_ERR_PROTO,
	 "127.0.0.1 went on with AUTH after it was cancelled"},
};

/*
 * A SASL challenge after AUTH PLAIN with its initial response makes the
 * client cancel the exchange ("*"); the server's -ERR then fails the
 * login with the client's reason, and a server that challenges again
 * breaks the protocol.
 */
START_TEST(test_login_challenge)
{
	const struct step steps[] = {
		GREET("SASL PLAIN\r\n"),
		EXPECT("AUTH PLAIN " PLAIN_B64),
		SEND("+ \r\n"),
		EXPECT("*"),
		SEND(challenges[_i].after_cancel),
		END,
	};
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	struct pop3_error err;

	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	ck_assert_int_eq(pop3_open(&c, &s, &err), -1);
	check_err(&err, challenges[_i].kind, challenges[_i].want);
	fake_finish(&f);
}
END_TEST

/* ---- SASL mechanisms, forced ways, credentials ---- */

static struct test_cred test_token = {"ya29.tok-1", 0};

/* The base64 initial response of an OAuth2 mechanism for alice, made
 * here from the message the mechanism defines. */
static void oauth_b64(char *out, size_t size, enum sasl_mech mech,
		      const char *token, const char *port)
{
	struct strbuf raw = {0}, b64 = {0};

	if (mech == SASL_MECH_XOAUTH2)
		strbuf_printf(&raw, "user=alice\001auth=Bearer %s\001\001",
			      token);
	else
		strbuf_printf(&raw,
			      "n,a=alice,\001host=127.0.0.1\001port=%s\001"
			      "auth=Bearer %s\001\001",
			      port, token);
	strbuf_base64(&b64, raw.data, raw.len);
	snprintf(out, size, "%s", strbuf_str(&b64));
	strbuf_free(&raw);
	strbuf_free(&b64);
}

/* A session config for f logging in with an OAuth2 mechanism. */
static struct pop3_config oauth_cfg(const struct fake *f, enum sasl_mech mech)
{
	struct pop3_config c = fake_cfg(f, POP3_TLS_NONE, T_LONG_MS);

	c.auth = mech == SASL_MECH_XOAUTH2 ? SASL_AUTH_XOAUTH2
					   : SASL_AUTH_OAUTHBEARER;
	c.credential = (struct sasl_credential){test_credential, &test_token};
	return c;
}

/*
 * auth=xoauth2 / oauthbearer: AUTH with the initial response on the
 * line (the exact message checked), the token asked for once.
 */
START_TEST(test_oauth_login)
{
	enum sasl_mech mech = _i ? SASL_MECH_OAUTHBEARER : SASL_MECH_XOAUTH2;
	char line[600], b64[512];
	const struct step steps[] = {
		GREET("SASL PLAIN XOAUTH2 OAUTHBEARER\r\nUSER\r\n"),
		EXPECT(line),
		SEND("+OK\r\n"),
		EXPECT("QUIT"),
		SEND("+OK\r\n"),
		END,
	};
	struct fake f;
	struct pop3_config c;
	struct pop3_error err;

	fake_start(&f, steps);
	c = oauth_cfg(&f, mech);
	oauth_b64(b64, sizeof(b64), mech, test_token.secret, f.port);
	snprintf(line, sizeof(line), "AUTH %s %s", sasl_mech_name(mech), b64);
	test_token.calls = 0;
	ck_assert_int_eq(pop3_quit(open_ok(&c), &err), 0);
	fake_finish(&f);
	ck_assert_int_eq(test_token.calls, 1);
}
END_TEST

/*
 * RFC 5034: an AUTH line with its initial response may be 255 bytes at
 * most. A token of 155 bytes makes XOAUTH2's line exactly 255; one byte
 * more and the response follows the server's empty challenge instead.
 */
START_TEST(test_oauth_long_token)
{
	char token[200], first[600], second[600], b64[512];
	const struct step inline_steps[] = {
		GREET("SASL XOAUTH2\r\n"),
		EXPECT(first),
		SEND("+OK\r\n"),
		END,
	};
	const struct step deferred_steps[] = {
		GREET("SASL XOAUTH2\r\n"),
		EXPECT("AUTH XOAUTH2"),
		SEND("+ \r\n"),
		EXPECT(second),
		SEND("+OK\r\n"),
		END,
	};
	struct test_cred cred = {token, 0};
	struct fake f;
	struct pop3_config c;

	memset(token, 'x', sizeof(token));
	token[155 + _i] = '\0';
	oauth_b64(b64, sizeof(b64), SASL_MECH_XOAUTH2, token, NULL);
	snprintf(first, sizeof(first), "AUTH XOAUTH2 %s", b64);
	snprintf(second, sizeof(second), "%s", b64);
	if (_i == 0)
		ck_assert_uint_eq(strlen(first) + 2, 255);
	fake_start(&f, _i == 0 ? inline_steps : deferred_steps);
	c = oauth_cfg(&f, SASL_MECH_XOAUTH2);
	c.credential.ctx = &cred;
	pop3_close(open_ok(&c));
	fake_finish(&f);
}
END_TEST

/*
 * A refused token: the server's error challenge is acknowledged (an
 * empty line for XOAUTH2, "AQ==" that is ^A for OAUTHBEARER), and the
 * -ERR that follows fails the login with the error's status.
 */
START_TEST(test_oauth_refused)
{
	enum sasl_mech mech = _i ? SASL_MECH_OAUTHBEARER : SASL_MECH_XOAUTH2;
	char line[600], b64[512];
	const struct step steps[] = {
		GREET("SASL XOAUTH2 OAUTHBEARER\r\n"),
		EXPECT(line),
		/* {"status":"401","schemes":"bearer","scope":"mail"} and
		 * {"status":"invalid_token"}, as Dovecot sends them */
		SEND(_i ? "+ eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=\r\n"
			: "+ "
			  "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2Nv"
			  "cGUiOiJtYWlsIn0=\r\n"),
		EXPECT(_i ? "AQ==" : ""),
		SEND("-ERR [AUTH] Authentication failed.\r\n"),
		END,
	};
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	struct pop3_error err;

	fake_start(&f, steps);
	c = oauth_cfg(&f, mech);
	oauth_b64(b64, sizeof(b64), mech, test_token.secret, f.port);
	snprintf(line, sizeof(line), "AUTH %s %s", sasl_mech_name(mech), b64);
	ck_assert_int_eq(pop3_open(&c, &s, &err), -1);
	check_err(&err, POP3_ERR_AUTH,
		  _i ? "login as alice on 127.0.0.1 failed (OAUTHBEARER "
		       "error status: invalid_token): [AUTH] Authentication "
		       "failed."
		     : "login as alice on 127.0.0.1 failed (XOAUTH2 error "
		       "status: 401): [AUTH] Authentication failed.");
	fake_finish(&f);
	ck_assert(!fake_got(&f, "QUIT"));
}
END_TEST

/* How -o auth= picks the way to log in from what CAPA lists: the first
 * line sent, or the error (and then nothing is sent after CAPA). */
static const struct {
	const char *capa;
	enum sasl_auth auth;
	const char *first;
	const char *want;
} ways[] = {
	{"SASL PLAIN\r\n", SASL_AUTH_XOAUTH2, NULL,
	 "127.0.0.1 does not offer SASL XOAUTH2 (-o auth=xoauth2); it offers "
	 "PLAIN"},
	{"USER\r\n", SASL_AUTH_OAUTHBEARER, NULL,
	 "127.0.0.1 does not offer SASL OAUTHBEARER (-o auth=oauthbearer); it "
	 "offers no SASL mechanism"},
	{"SASL LOGIN \x1b[2J CRAM-MD5\r\n", SASL_AUTH_PLAIN, NULL,
	 "127.0.0.1 does not offer SASL PLAIN (-o auth=plain); it offers LOGIN "
	 "?[2J CRAM-MD5"},
	{"SASL PLAIN\r\nUSER\r\n", SASL_AUTH_LOGIN, "USER alice", NULL},
	{"SASL LOGIN PLAIN\r\n", SASL_AUTH_PLAIN, "AUTH PLAIN " PLAIN_B64,
	 NULL},
	{"SASL xoauth2\r\n", SASL_AUTH_DEFAULT, "USER alice", NULL},
};

START_TEST(test_login_way)
{
	char capa[128];
	bool user = ways[_i].first && strncmp(ways[_i].first, "USER", 4) == 0;
	const struct step fail_steps[] = {
		SEND("+OK\r\n"),
		EXPECT("CAPA"),
		SEND(capa),
		END,
	};
	const struct step ok_steps[] = {
		SEND("+OK\r\n"), EXPECT("CAPA"),
		SEND(capa),	 EXPECT(ways[_i].first),
		SEND("+OK\r\n"), STEP(user ? S_EXPECT : S_END, "PASS s3cret"),
		SEND("+OK\r\n"), END,
	};
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	struct pop3_error err;

	snprintf(capa, sizeof(capa), "+OK\r\n%s.\r\n", ways[_i].capa);
	fake_start(&f, ways[_i].want ? fail_steps : ok_steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	c.auth = ways[_i].auth;
	test_password.calls = 0;
	if (ways[_i].want) {
		ck_assert_int_eq(pop3_open(&c, &s, &err), -1);
		check_err(&err, POP3_ERR_AUTH, ways[_i].want);
		/* Refused before the secret was even asked for. */
		ck_assert_int_eq(test_password.calls, 0);
	} else {
		pop3_close(open_ok(&c));
		ck_assert_int_eq(test_password.calls, 1);
	}
	fake_finish(&f);
	if (ways[_i].want)
		ck_assert_str_eq(f.got, "CAPA\n");
}
END_TEST

/*
 * The credential callback runs at every login, so that a refreshed token
 * is used; when it fails, its message is the error and nothing is sent.
 */
START_TEST(test_credential_each_login)
{
	char b64[2][512], line[2][600];
	const struct step steps[2][6] = {
		{GREET("SASL XOAUTH2\r\n"), EXPECT(line[0]), SEND("+OK\r\n"),
		 END},
		{GREET("SASL XOAUTH2\r\n"), EXPECT(line[1]), SEND("+OK\r\n"),
		 END},
	};
	const struct step fail_steps[] = {
		GREET("SASL XOAUTH2\r\n"),
		END,
	};
	struct test_cred cred = {"first-token", 0};
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	struct pop3_error err;
	int i;

	for (i = 0; i < 2; i++) {
		oauth_b64(b64[i], sizeof(b64[i]), SASL_MECH_XOAUTH2,
			  i ? "second-token" : "first-token", NULL);
		snprintf(line[i], sizeof(line[i]), "AUTH XOAUTH2 %s", b64[i]);
		fake_start(&f, steps[i]);
		c = oauth_cfg(&f, SASL_MECH_XOAUTH2);
		c.credential.ctx = &cred;
		pop3_close(open_ok(&c));
		fake_finish(&f);
		ck_assert_int_eq(cred.calls, i + 1);
		cred.secret = "second-token";
	}
	cred.secret = NULL;
	fake_start(&f, fail_steps);
	c = oauth_cfg(&f, SASL_MECH_XOAUTH2);
	c.credential.ctx = &cred;
	ck_assert_int_eq(pop3_open(&c, &s, &err), -1);
	check_err(&err, POP3_ERR_AUTH, "token_command failed (exit status 7)");
	fake_finish(&f);
	ck_assert_str_eq(f.got, "CAPA\n");
}
END_TEST

/*
 * The trace of OAuth2 logins shows the commands and the server's error,
 * never the token nor the response that carries it, inline or not.
 */
START_TEST(test_trace_hides_token)
{
	char token[300], b64[600], line[700];
	const struct step inline_steps[] = {
		GREET("SASL XOAUTH2\r\n"),
		EXPECT(line),
		SEND("+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2Nv"
		     "cGUiOiJtYWlsIn0=\r\n"),
		EXPECT(""),
		SEND("-ERR [AUTH] Authentication failed.\r\n"),
		END,
	};
	const struct step deferred_steps[] = {
		GREET("SASL XOAUTH2\r\n"),
		EXPECT("AUTH XOAUTH2"),
		SEND("+ \r\n"),
		EXPECT(b64),
		SEND("+OK\r\n"),
		END,
	};
	struct test_cred cred = {token, 0};
	char path[] = "/tmp/test_pop3_traceXXXXXX";
	char out[16384];
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	struct pop3_error err;
	int fd = mkstemp(path), saved = dup(2);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	unlink(path);
	snprintf(token, sizeof(token), "%s", "ya29.short-token");
	oauth_b64(b64, sizeof(b64), SASL_MECH_XOAUTH2, token, NULL);
	snprintf(line, sizeof(line), "AUTH XOAUTH2 %s", b64);
	log_init(true);
	fflush(stderr);
	dup2(fd, 2);

	fake_start(&f, inline_steps);
	c = oauth_cfg(&f, SASL_MECH_XOAUTH2);
	c.credential.ctx = &cred;
	c.trace = true;
	ck_assert_int_eq(pop3_open(&c, &s, &err), -1);
	fake_finish(&f);
	memset(token, 'Q', 250);
	token[250] = '\0';
	oauth_b64(b64, sizeof(b64), SASL_MECH_XOAUTH2, token, NULL);
	fake_start(&f, deferred_steps);
	c = oauth_cfg(&f, SASL_MECH_XOAUTH2);
	c.credential.ctx = &cred;
	c.trace = true;
	pop3_close(open_ok(&c));
	fake_finish(&f);

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	log_init(false);
	n = pread(fd, out, sizeof(out) - 1, 0);
	close(fd);
	ck_assert_int_gt(n, 0);
	out[n] = '\0';
	ck_assert_msg(strstr(out, "C: AUTH XOAUTH2 <credentials hidden>"), "%s",
		      out);
	ck_assert_msg(strstr(out, "C: (empty response)"), "%s", out);
	ck_assert_msg(strstr(out, "C: AUTH XOAUTH2\n"), "%s", out);
	ck_assert_msg(strstr(out, "C: <credentials hidden>"), "%s", out);
	ck_assert_msg(strstr(out, "S: -ERR [AUTH] Authentication failed."),
		      "%s", out);
	ck_assert_msg(!strstr(out, "short-token"), "%s", out);
	ck_assert_msg(!strstr(out, "QQQQ"), "%s", out);
	ck_assert_msg(!strstr(out, b64), "%s", out);
	ck_assert_msg(!strstr(out, line), "%s", out);
}
END_TEST

/*
 * The trace shows commands but never the password or the AUTH PLAIN
 * response: the log (stderr) is caught in a file while logging in.
 */
START_TEST(test_trace_hides_credentials)
{
	const struct step steps[] = {
		GREET("USER\r\n"), USER_PASS, EXPECT("QUIT"),
		SEND("+OK\r\n"),   END,
	};
	const struct step steps2[] = {
		GREET("SASL PLAIN\r\n"),
		EXPECT("AUTH PLAIN " PLAIN_B64),
		SEND("+OK\r\n"),
		END,
	};
	char path[] = "/tmp/test_pop3_traceXXXXXX";
	char out[8192];
	struct fake f;
	struct pop3_config c;
	struct pop3_error err;
	int fd = mkstemp(path), saved = dup(2);
	ssize_t n;

	ck_assert_int_ge(fd, 0);
	unlink(path);
	log_init(true);
	fflush(stderr);
	dup2(fd, 2);

	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	c.trace = true;
	pop3_quit(open_ok(&c), &err);
	fake_finish(&f);
	fake_start(&f, steps2);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	c.trace = true;
	pop3_close(open_ok(&c));
	fake_finish(&f);

	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	log_init(false);
	n = pread(fd, out, sizeof(out) - 1, 0);
	close(fd);
	ck_assert_int_gt(n, 0);
	out[n] = '\0';
	ck_assert_msg(strstr(out, "C: USER alice") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "C: PASS <hidden>") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "C: AUTH PLAIN <credentials hidden>"), "%s",
		      out);
	ck_assert_msg(strstr(out, "S: +OK POP3 ready") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "s3cret") == NULL, "%s", out);
	ck_assert_msg(strstr(out, PLAIN_B64) == NULL, "%s", out);
}
END_TEST

/* ---- STLS ---- */

/* Servers that give no safe way to go on with tls=STLS. */
static const struct {
	const char *capa; /* answer to CAPA */
	const char *stls; /* answer to STLS, NULL if not asked */
	enum pop3_err_kind kind;
	const char *want;
} stls_refusals[] = {
	{"+OK\r\nUSER\r\n.\r\n", NULL, POP3_ERR_AUTH,
	 "does not offer STLS; refusing to log in without TLS (use "
	 "pop3s://, or -o tls=none"},
	{"-ERR what?\r\n", NULL, POP3_ERR_AUTH, "does not offer STLS"},
	{"+OK\r\nSTLS\r\n.\r\n", "-ERR not now\r\n", POP3_ERR_AUTH,
	 "refused STLS (not now); refusing to log in without TLS"},
	{"+OK\r\nSTLS\r\n.\r\n", "+OK go\r\n+OK injected\r\n", POP3_ERR_PROTO,
	 "sent data after STLS (possible attack)"},
};

/* With tls=STLS the client never logs in in cleartext. */
START_TEST(test_stls_refusal)
{
	const struct step steps[] = {
		SEND("+OK\r\n"),
		EXPECT("CAPA"),
		SEND(stls_refusals[_i].capa),
		STEP(stls_refusals[_i].stls ? S_EXPECT : S_END, "STLS"),
		SEND(stls_refusals[_i].stls),
		END,
	};
	char msg[256];
	struct net_tls_ctx *ctx = net_tls_ctx_new(NULL, true, msg, sizeof(msg));
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	struct pop3_error err;

	/* A real context, so that a client going on anyway would try. */
	ck_assert_msg(ctx != NULL, "%s", msg);
	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_STLS, T_LONG_MS);
	c.tls_ctx = ctx;
	ck_assert_int_eq(pop3_open(&c, &s, &err), -1);
	check_err(&err, stls_refusals[_i].kind, stls_refusals[_i].want);
	fake_finish(&f);
	ck_assert(!fake_got(&f, "USER alice"));
	ck_assert(strstr(f.got, "s3cret") == NULL);
	net_tls_ctx_free(ctx);
}
END_TEST

/* STLS accepted but no TLS server behind it: the handshake fails and
 * nothing is sent in cleartext. */
START_TEST(test_stls_handshake_fails)
{
	const struct step steps[] = {
		GREET("STLS\r\nUSER\r\n"),
		EXPECT("STLS"),
		SEND("+OK begin TLS\r\n"),
		RECV, /* the ClientHello: so the junk comes after the check */
		SEND("this is not TLS\r\n\r\n\r\n\r\n\r\n\r\n\r\n"),
		SHUT,
		END,
	};
	char msg[256];
	struct net_tls_ctx *ctx = net_tls_ctx_new(NULL, true, msg, sizeof(msg));
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	struct pop3_error err;

	ck_assert_msg(ctx != NULL, "%s", msg);
	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_STLS, T_LONG_MS);
	c.tls_ctx = ctx;
	ck_assert_int_eq(pop3_open(&c, &s, &err), -1);
	ck_assert_msg(err.kind == POP3_ERR_AUTH, "%d %s", err.kind, err.text);
	fake_finish(&f);
	ck_assert(!fake_got(&f, "USER alice"));
	ck_assert(strstr(f.got, "s3cret") == NULL);
	net_tls_ctx_free(ctx);
}
END_TEST

/* ---- UIDL and LIST ---- */

/* Listings that are fine, with and without PIPELINING. */
static const struct {
	const char *uidl, *list;
	size_t n;
	const char *want; /* "num uidl size" of each message, "\n" after */
} listings[] = {
	{"+OK\r\n1 whqtswO00WBw418f9t5JxYwZ\r\n2 QhdPYR:00WBw1Ph7x7\r\n"
	 ".\r\n",
	 "+OK 2 messages\r\n1 120\r\n2 200000\r\n.\r\n", 2,
	 "1 whqtswO00WBw418f9t5JxYwZ 120\n2 QhdPYR:00WBw1Ph7x7 200000\n"},
	/* Out of order, gaps (deleted messages), extra text after a
	 * size, several spaces, dots, a longest UIDL and a huge size. */
	{"+OK\r\n5 .dotted\r\n2  b\r\n"
	 "9 0123456789012345678901234567890123456789012345678901234567"
	 "890123456789\r\n.\r\n",
	 "+OK\r\n9 1073741824\r\n2 7 extra info\r\n5 0\r\n.\r\n", 3,
	 "2 b 7\n5 .dotted 0\n"
	 "9 0123456789012345678901234567890123456789012345678901234567"
	 "890123456789 1073741824\n"},
	{"+OK\r\n.\r\n", "+OK 0 messages\r\n.\r\n", 0, ""},
};

/* pop3_list() merges UIDL and LIST sorted by number. _i: bit 0 selects
 * pipelining, the rest the listing. */
START_TEST(test_list_ok)
{
	bool piped = _i & 1;
	const struct step steps_pipe[] = {
		LOGIN_PIPE,
		EXPECT("UIDL"),
		EXPECT("LIST"),
		SEND(listings[_i / 2].uidl),
		SEND(listings[_i / 2].list),
		END,
	};
	const struct step steps_nopipe[] = {
		LOGIN,
		EXPECT("UIDL"),
		SEND(listings[_i / 2].uidl),
		EXPECT("LIST"),
		SEND(listings[_i / 2].list),
		END,
	};
	char buf[1024] = "";
	size_t n = 99, i, len = 0;
	struct pop3_msg *msgs = (void *)1;
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;

	fake_start(&f, piped ? steps_pipe : steps_nopipe);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	s = open_ok(&c);
	ck_assert_msg(pop3_list(s, &msgs, &n) == 0, "%s", pop3_error(s)->text);
	ck_assert_uint_eq(n, listings[_i / 2].n);
	if (n == 0)
		ck_assert_ptr_null(msgs);
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					"%u %s %llu\n", msgs[i].num,
					msgs[i].uidl,
					(unsigned long long)msgs[i].size);
	ck_assert_str_eq(buf, listings[_i / 2].want);
	free(msgs);
	ck_assert(pop3_usable(s));
	pop3_close(s);
	fake_finish(&f);
}
END_TEST

#define NUL_UIDL "+OK\r\n1 ab\0cd\r\n.\r\n"
#define U10 "0123456789"
#define U70 U10 U10 U10 U10 U10 U10 U10 /* the longest UIDL allowed */

/* Bogus listings: each fails pop3_list() with a clear error and breaks
 * the session. The server offers PIPELINING, so it gets both commands
 * before answering, whichever listing the client rejects. */
static const struct {
	const char *uidl, *list;
	size_t uidl_len; /* when the UIDL answer holds a NUL */
	enum pop3_err_kind kind;
	const char *want;
} bogus[] = {
	{"+OK\r\n1 a\r\n.\r\n", "+OK\r\n1 1073741825\r\n.\r\n", 0,
	 POP3_ERR_PROTO,
	 "lists message 1 bigger than the limit of "
	 "1073741824 bytes"},
	{"+OK\r\n1 a\r\n.\r\n", "+OK\r\n1 99999999999999999999999\r\n.\r\n", 0,
	 POP3_ERR_PROTO, "bigger than the limit"},
	{"+OK\r\n1 a\r\n.\r\n", "+OK\r\n1 abc\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "sent a bad LIST line: \"1 abc\""},
	{"+OK\r\n1 a\r\n.\r\n", "+OK\r\n1 -5\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "bad LIST line"},
	{"+OK\r\n1 a\r\n.\r\n", "+OK\r\n1 12x\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "bad LIST line"},
	{"+OK\r\n1 a\r\n.\r\n", "+OK\r\n1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "bad LIST line"},
	{"+OK\r\nx a\r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "sent a bad UIDL line: \"x a\""},
	{"+OK\r\n-1 a\r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "bad UIDL line"},
	{"+OK\r\n0 a\r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "bad UIDL line"},
	{"+OK\r\n1000001 a\r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "bad UIDL line"},
	{"+OK\r\n1\ta\r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "bad UIDL line: \"1?a\""},
	{"+OK\r\n1 " U70 "x\r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "UIDL of 71 characters for message 1"},
	{"+OK\r\n1 \r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "UIDL of 0 characters for message 1"},
	{"+OK\r\n1\r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "bad UIDL line"},
	{"+OK\r\n1 ab c\r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "UIDL with a space or control character for message 1"},
	{"+OK\r\n1 abc \r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "space or control character"},
	{"+OK\r\n1 ab\x01\r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "space or control character"},
	{"+OK\r\n1 ab\x7f\r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "space or control character"},
	{"+OK\r\n1 ab\xc3\xa9\r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0,
	 POP3_ERR_PROTO, "space or control character"},
	{NUL_UIDL, "+OK\r\n1 1\r\n.\r\n", sizeof(NUL_UIDL) - 1, POP3_ERR_PROTO,
	 "space or control character"},
	{"+OK\r\n1 same\r\n2 other\r\n3 same\r\n.\r\n",
	 "+OK\r\n1 1\r\n2 2\r\n3 3\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "gives messages 1 and 3 the same UIDL"},
	{"+OK\r\n1 a\r\n1 b\r\n.\r\n", "+OK\r\n1 1\r\n2 2\r\n.\r\n", 0,
	 POP3_ERR_PROTO, "lists message 1 twice"},
	{"+OK\r\n1 a\r\n2 b\r\n.\r\n", "+OK\r\n2 1\r\n2 2\r\n.\r\n", 0,
	 POP3_ERR_PROTO, "lists message 2 twice"},
	{"+OK\r\n1 a\r\n2 b\r\n.\r\n", "+OK\r\n1 1\r\n3 2\r\n.\r\n", 0,
	 POP3_ERR_PROTO, "different messages in UIDL (2) and LIST (2)"},
	{"+OK\r\n1 a\r\n2 b\r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "different messages in UIDL (2) and LIST (1)"},
	{"+OK\r\n1 a\r\n.\r\n", "+OK\r\n1 1\r\n2 2\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "different messages in UIDL (1) and LIST (2)"},
	{"+OK\r\n.\r\n", "+OK\r\n1 1\r\n.\r\n", 0, POP3_ERR_PROTO,
	 "different messages in UIDL (0) and LIST (1)"},
	{"+OK\r\n1 a\r\n2 b\r\n", "", 0, POP3_ERR_NET,
	 "127.0.0.1 closed the connection"},
	{"+OK\r\n1 a\r\n.\r\n", "+OK\r\n1 1\r\n", 0, POP3_ERR_NET,
	 "closed the connection"},
	{"+OK\r\n1 a\r\n.\r\n", "+OK\r\n1 1\r\n.", 0, POP3_ERR_NET,
	 "closed the connection"},
	{"OK\r\n1 a\r\n.\r\n", "", 0, POP3_ERR_PROTO,
	 "sent a bad status line: \"OK\""},
	{"+OK\r\n1 a\r\n.\r\n", "+0K\r\n", 0, POP3_ERR_PROTO,
	 "bad status line"},
};

/* A bogus listing fails with a protocol error and breaks the session. */
START_TEST(test_list_bogus)
{
	const struct step steps[] = {
		LOGIN_PIPE,
		EXPECT("UIDL"),
		EXPECT("LIST"),
		SENDN(bogus[_i].uidl, bogus[_i].uidl_len),
		SEND(bogus[_i].list),
		SHUT,
		END,
	};
	struct pop3_msg *msgs = (void *)1;
	size_t n = 99;
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	struct pop3_error err;

	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	s = open_ok(&c);
	ck_assert_int_eq(pop3_list(s, &msgs, &n), -1);
	ck_assert_ptr_null(msgs);
	ck_assert_uint_eq(n, 0);
	check_err(pop3_error(s), bogus[_i].kind, bogus[_i].want);
	ck_assert(!pop3_usable(s));
	/* Nothing more goes out on a broken session, QUIT included. */
	ck_assert_int_eq(pop3_dele(s, 1), -1);
	ck_assert_int_eq(pop3_error(s)->errnum, ENOTCONN);
	ck_assert_int_eq(pop3_quit(s, &err), -1);
	check_err(&err, POP3_ERR_NET, "nothing was deleted");
	fake_finish(&f);
	ck_assert(!fake_got(&f, "DELE 1"));
	ck_assert(!fake_got(&f, "QUIT"));
}
END_TEST

/* An overlong UIDL line is a protocol error. */
START_TEST(test_list_overlong_line)
{
	static char big[9000];
	const struct step steps[] = {
		LOGIN,	   EXPECT("UIDL"),    SEND("+OK\r\n1 "),
		SEND(big), SEND("\r\n.\r\n"), END,
	};
	struct pop3_msg *msgs;
	size_t n;
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;

	memset(big, 'u', sizeof(big) - 1);
	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	s = open_ok(&c);
	ck_assert_int_eq(pop3_list(s, &msgs, &n), -1);
	check_err(pop3_error(s), POP3_ERR_PROTO, "longer than 8192 bytes");
	ck_assert(!pop3_usable(s));
	pop3_close(s);
	fake_finish(&f);
}
END_TEST

/* More than POP3_MAX_COUNT messages is refused before the end. */
START_TEST(test_list_too_many)
{
	const struct step steps[] = {
		LOGIN,
		EXPECT("UIDL"),
		GEN_UIDL(POP3_MAX_COUNT + 1),
		END,
	};
	struct pop3_msg *msgs;
	size_t n;
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;

	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	s = open_ok(&c);
	ck_assert_int_eq(pop3_list(s, &msgs, &n), -1);
	check_err(pop3_error(s), POP3_ERR_PROTO,
		  "lists more than 1000000 messages in UIDL");
	pop3_close(s);
	fake_finish(&f);
}
END_TEST

/*
 * -ERR to UIDL is an -ERR: the session stays usable and in step, also
 * when LIST was pipelined behind it (its answer is read and dropped).
 * _i: 0 without pipelining, 1 with and LIST +OK, 2 with and LIST -ERR.
 */
START_TEST(test_list_uidl_err)
{
	const struct step steps[] = {
		LOGIN,
		EXPECT("UIDL"),
		SEND("-ERR UIDL not supported\r\n"),
		EXPECT("DELE 1"),
		SEND("+OK\r\n"),
		END,
	};
	const struct step steps_pipe[] = {
		LOGIN_PIPE,
		EXPECT("UIDL"),
		EXPECT("LIST"),
		SEND("-ERR UIDL not supported\r\n"),
		SEND(_i == 1 ? "+OK\r\n1 10\r\n..x\r\n2 20\r\n.\r\n"
			     : "-ERR no\r\n"),
		EXPECT("DELE 1"),
		SEND("+OK\r\n"),
		END,
	};
	struct pop3_msg *msgs;
	size_t n;
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;

	fake_start(&f, _i ? steps_pipe : steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	s = open_ok(&c);
	ck_assert_int_eq(pop3_list(s, &msgs, &n), -1);
	check_err(pop3_error(s), POP3_ERR_ERR, "UIDL not supported");
	ck_assert(pop3_usable(s));
	ck_assert_msg(pop3_dele(s, 1) == 0, "%s", pop3_error(s)->text);
	ck_assert_int_eq(pop3_error(s)->kind, POP3_ERR_NONE);
	pop3_close(s);
	fake_finish(&f);
}
END_TEST

/* ---- RETR ---- */

/* Collects what pop3_retr_read() hands out. */
struct sink {
	char buf[1024 * 1024];
	size_t len; /* bytes kept in buf */
	uint64_t total; /* bytes handed over */
	size_t calls;
	size_t fail_at; /* call number that returns -1, 0 for none */
};

/* The write callback of the tests: keeps the bytes, counts the calls. */
static int sink_write(void *ctx, const char *data, size_t len)
{
	struct sink *k = ctx;
	size_t keep = sizeof(k->buf) - k->len;

	ck_assert_uint_gt(len, 0);
	if (keep > len)
		keep = len;
	memcpy(k->buf + k->len, data, keep);
	k->len += keep;
	k->total += len;
	k->calls++;
	return k->calls == k->fail_at ? -1 : 0;
}

/* RETR of one message through the entry points the POP3 store uses:
 * the command, then its answer. */
static int test_pop3_retr(struct pop3_session *s, unsigned num, uint64_t max,
			  int (*write)(void *ctx, const char *data, size_t len),
			  void *ctx, uint64_t *size_r)
{
	if (pop3_retr_send(s, num) < 0) {
		*size_r = 0;
		return -1;
	}
	return pop3_retr_read(s, num, max, write, ctx, size_r);
}

/*
 * Messages (what follows "+OK\r\n") and how they must come out. The
 * fragments are written one by one with pauses between them, the first
 * one in pieces of `split` bytes when split is set.
 */
static const struct {
	const char *name;
	const char *frags[7]; /* NULL after the last */
	size_t len0; /* of frags[0] when it holds a NUL */
	int split;
	const char *want;
	size_t want_len; /* when want holds a NUL */
} messages[] = {
	{.name = "plain",
	 .frags = {"Subject: hi\r\n\r\nHello\r\n.\r\n"},
	 .want = "Subject: hi\r\n\r\nHello\r\n"},
	{.name = "dot-stuffed",
	 .frags = {"..leading dot\r\n...two\r\n..\r\n.x\r\nmid.dle\r\n"
		   ". \r\n.\r\n"},
	 .want = ".leading dot\r\n..two\r\n.\r\nx\r\nmid.dle\r\n \r\n"},
	{.name = "empty", .frags = {".\r\n"}, .want = ""},
	{.name = "empty lines", .frags = {"\r\n\r\n.\r\n"}, .want = "\r\n\r\n"},
	{.name = "bare LF",
	 .frags = {"bare\nline\r\n\n..\nlast\r\n.\r\n"},
	 .want = "bare\nline\r\n\n.\nlast\r\n"},
	{.name = "bare LF terminator", .frags = {"a\r\n.\n"}, .want = "a\r\n"},
	{.name = "CR inside a line",
	 .frags = {"a\rb\r\r\nc\r\n.\r\n"},
	 .want = "a\rb\r\r\nc\r\n"},
	{.name = "NUL byte",
	 .frags = {"a\0b\r\n.\r\n"},
	 .len0 = 8,
	 .want = "a\0b\r\n",
	 .want_len = 5},
	{.name = "byte by byte",
	 .frags = {"Subject: x\r\n..dot\r\n\r\nbody\r\n.\r\n"},
	 .split = 1,
	 .want = "Subject: x\r\n.dot\r\n\r\nbody\r\n"},
	{.name = "pieces of 2",
	 .frags = {"ab\r\n..\r\n.c\r\nlf\n.\r\n"},
	 .split = 2,
	 .want = "ab\r\n.\r\nc\r\nlf\n"},
	{.name = "pieces of 3",
	 .frags = {"ab\r\n..\r\n.c\r\nlf\n.\r\n"},
	 .split = 3,
	 .want = "ab\r\n.\r\nc\r\nlf\n"},
	{.name = "pieces of 7",
	 .frags = {"abcdefgh\r\n..\r\n.c\r\n\r\n.\r\n"},
	 .split = 7,
	 .want = "abcdefgh\r\n.\r\nc\r\n\r\n"},
	{.name = "CR|LF split",
	 .frags = {"line one\r", "\nline two\r", "\n", ".", "\r", "\n"},
	 .want = "line one\r\nline two\r\n"},
	{.name = "split stuffed dot",
	 .frags = {"x\r\n.", ".y\r\n.", "\r\n"},
	 .want = "x\r\n.y\r\n"},
	{.name = "split terminator",
	 .frags = {"x\r\n", ".", "\r", "\n"},
	 .want = "x\r\n"},
	{.name = "split dot line",
	 .frags = {"x\r\n.", "z\r", "\n.\r\n"},
	 .want = "x\r\nz\r\n"},
	{.name = "dot CR then text",
	 .frags = {".\rq\r\n", ".\r\n"},
	 .want = "\rq\r\n"},
};

/* RETR delivers the message unstuffed, with its line ends as sent,
 * however the server splits it; then the session goes on (a missing
 * fragment makes its step a pause of 0 ms). */
START_TEST(test_retr)
{
	const char *const *fr = messages[_i].frags;
	const struct step steps[] = {
		LOGIN,
		EXPECT("RETR 3"),
		SEND("+OK message follows\r\n"),
		SPLIT(fr[0], messages[_i].len0,
		      messages[_i].split ? messages[_i].split : 1 << 20),
		SLEEP(2),
		STEP(fr[1] ? S_SEND : S_SLEEP, fr[1]),
		SLEEP(2),
		STEP(fr[2] ? S_SEND : S_SLEEP, fr[2]),
		SLEEP(2),
		STEP(fr[3] ? S_SEND : S_SLEEP, fr[3]),
		SLEEP(2),
		STEP(fr[4] ? S_SEND : S_SLEEP, fr[4]),
		SLEEP(2),
		STEP(fr[5] ? S_SEND : S_SLEEP, fr[5]),
		EXPECT("DELE 1"),
		SEND("+OK\r\n"),
		END,
	};
	size_t want_len = messages[_i].want_len ? messages[_i].want_len
						: strlen(messages[_i].want);
	static struct sink k;
	uint64_t size = 12345;
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;

	memset(&k, 0, sizeof(k));
	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	s = open_ok(&c);
	ck_assert_msg(test_pop3_retr(s, 3, 1000, sink_write, &k, &size) == 0,
		      "%s: %s", messages[_i].name, pop3_error(s)->text);
	ck_assert_uint_eq(size, want_len);
	ck_assert_uint_eq(k.total, want_len);
	ck_assert_msg(k.len == want_len &&
			      memcmp(k.buf, messages[_i].want, want_len) == 0,
		      "%s: got \"%.*s\"", messages[_i].name, (int)k.len, k.buf);
	/* The terminator was taken, nothing more: the next answer fits. */
	ck_assert_msg(pop3_dele(s, 1) == 0, "%s", pop3_error(s)->text);
	pop3_close(s);
	fake_finish(&f);
}
END_TEST

/*
 * A big message in one write arrives in few pieces (lines next to each
 * other are joined), byte for byte. Lines of 59 characters and one of
 * 60000 (still below the 64 KiB bound).
 */
START_TEST(test_retr_big)
{
	static char msg[600 * 1024], want[600 * 1024];
	static struct sink k;
	const struct step steps[] = {
		LOGIN, EXPECT("RETR 1"), SEND("+OK\r\n"), SEND(msg), END,
	};
	size_t mlen = 0, wlen = 0, i;
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	uint64_t size;

	for (i = 0; i < 8000; i++) {
		size_t d = i % 100 == 0; /* a stuffed dot to drop */
		size_t n = (size_t)snprintf(msg + mlen, 64, "%s%056zu\r\n",
					    d ? ".." : "", i);

		memcpy(want + wlen, msg + mlen + d, n - d);
		mlen += n;
		wlen += n - d;
	}
	memset(msg + mlen, 'z', 60000);
	memset(want + wlen, 'z', 60000);
	mlen += 60000;
	wlen += 60000;
	memcpy(msg + mlen, "\r\n.\r\n", 6);
	memcpy(want + wlen, "\r\n", 2);
	wlen += 2;
	memset(&k, 0, sizeof(k));
	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	s = open_ok(&c);
	ck_assert_msg(test_pop3_retr(s, 1, wlen, sink_write, &k, &size) == 0,
		      "%s", pop3_error(s)->text);
	ck_assert_uint_eq(size, wlen);
	ck_assert_uint_eq(k.len, wlen);
	ck_assert(memcmp(k.buf, want, wlen) == 0);
	ck_assert_msg(k.calls < 8000 / 10, "%zu calls", k.calls);
	pop3_close(s);
	fake_finish(&f);
}
END_TEST

/* A message of exactly max bytes is fine; one byte more is not. */
START_TEST(test_retr_max)
{
	const struct step steps[] = {
		LOGIN,
		EXPECT("RETR 1"),
		SEND("+OK\r\n..1234567\r\n.\r\n"), /* 10 bytes */
		EXPECT("RETR 1"),
		SEND("+OK\r\n..1234567\r\n.\r\n"),
		END,
	};
	static struct sink k;
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	uint64_t size;

	memset(&k, 0, sizeof(k));
	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	s = open_ok(&c);
	ck_assert_int_eq(test_pop3_retr(s, 1, 10, sink_write, &k, &size), 0);
	ck_assert_uint_eq(size, 10);
	ck_assert_int_eq(test_pop3_retr(s, 1, 9, sink_write, &k, &size), -1);
	check_err(pop3_error(s), POP3_ERR_PROTO,
		  "message 1 from 127.0.0.1 is longer than 9 bytes");
	ck_assert_uint_eq(size, 0);
	ck_assert(!pop3_usable(s));
	pop3_close(s);
	fake_finish(&f);
}
END_TEST

/*
 * An endless message (or an endless line) ends in a protocol error once
 * the bound is passed; the client holds no more than its buffer, and
 * write() never got more than max bytes.
 */
START_TEST(test_retr_endless)
{
	const struct step steps[] = {
		LOGIN,
		EXPECT("RETR 2"),
		SEND("+OK\r\n"),
		FLOOD(_i ? "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
			 : "0123456789012345678901234567890123456789\r\n"),
		END,
	};
	static struct sink k;
	uint64_t max = 3u << 20, size = 12345;
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;

	memset(&k, 0, sizeof(k));
	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	s = open_ok(&c);
	ck_assert_int_eq(test_pop3_retr(s, 2, _i ? POP3_MAX_MESSAGE : max,
					sink_write, &k, &size),
			 -1);
	if (_i) {
		check_err(pop3_error(s), POP3_ERR_PROTO,
			  "message 2 from 127.0.0.1 has a line longer than "
			  "65536 bytes");
		ck_assert_uint_eq(k.total, 0);
	} else {
		check_err(pop3_error(s), POP3_ERR_PROTO,
			  "is longer than 3145728 bytes");
		ck_assert_uint_le(k.total, max);
		ck_assert_uint_gt(k.total, max - 128 * 1024);
	}
	ck_assert_int_eq(pop3_error(s)->errnum, EMSGSIZE);
	ck_assert_uint_eq(size, k.total);
	ck_assert(!pop3_usable(s));
	pop3_close(s);
	fake_finish(&f);
}
END_TEST

/* -ERR to RETR leaves the session usable; an abort by write() breaks it. */
START_TEST(test_retr_err_and_abort)
{
	const struct step steps[] = {
		LOGIN,
		EXPECT("RETR 9"),
		SEND("-ERR no such message\r\n"),
		EXPECT("RETR 1"),
		SEND("+OK\r\nline\r\n"),
		SLEEP(20),
		SEND("more\r\n.\r\n"),
		END,
	};
	static struct sink k;
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	uint64_t size = 12345;

	memset(&k, 0, sizeof(k));
	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	s = open_ok(&c);
	ck_assert_int_eq(test_pop3_retr(s, 9, 100, sink_write, &k, &size), -1);
	check_err(pop3_error(s), POP3_ERR_ERR, "no such message");
	ck_assert_uint_eq(size, 0);
	ck_assert(pop3_usable(s));
	k.fail_at = 1;
	ck_assert_int_eq(test_pop3_retr(s, 1, 100, sink_write, &k, &size), -1);
	check_err(pop3_error(s), POP3_ERR_NET,
		  "reading message 1 from 127.0.0.1 was aborted");
	ck_assert_int_eq(pop3_error(s)->errnum, ECANCELED);
	ck_assert_uint_eq(k.calls, 1);
	ck_assert(!pop3_usable(s));
	pop3_close(s);
	fake_finish(&f);
}
END_TEST

/* A server that stalls mid-message: ETIMEDOUT after the timeout. */
START_TEST(test_retr_timeout)
{
	const struct step steps[] = {
		LOGIN,
		EXPECT("RETR 1"),
		SEND("+OK\r\nSubject: x\r\n\r\nhalf a li"),
		END,
	};
	static struct sink k;
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	uint64_t size;
	long t0, dt;

	memset(&k, 0, sizeof(k));
	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_SHORT_MS);
	s = open_ok(&c);
	t0 = now_ms();
	ck_assert_int_eq(test_pop3_retr(s, 1, 1000, sink_write, &k, &size), -1);
	dt = now_ms() - t0;
	check_err(pop3_error(s), POP3_ERR_NET,
		  "127.0.0.1 did not answer within 0.3 s");
	ck_assert_int_eq(pop3_error(s)->errnum, ETIMEDOUT);
	ck_assert_msg(dt >= T_SHORT_MS - 20 && dt < 3 * T_SHORT_MS + 500,
		      "%ld ms", dt);
	/* What came before the stall was delivered. */
	ck_assert_uint_eq(size, 14);
	ck_assert_uint_eq(k.len, 14);
	ck_assert(memcmp(k.buf, "Subject: x\r\n\r\n", 14) == 0);
	ck_assert(!pop3_usable(s));
	pop3_close(s);
	fake_finish(&f);
}
END_TEST

/* ---- DELE, QUIT ---- */

/*
 * DELE then pop3_close(): no QUIT reaches the server, so nothing is
 * deleted. _i 1: pop3_quit() sends QUIT and reports the +OK.
 */
START_TEST(test_dele_close_or_quit)
{
	const struct step steps[] = {
		LOGIN,
		EXPECT("DELE 1"),
		SEND("+OK message 1 deleted\r\n"),
		EXPECT("DELE 7"),
		SEND("-ERR message 7 already deleted\r\n"),
		STEP(_i ? S_EXPECT : S_END, "QUIT"),
		SEND("+OK dewey POP3 server signing off (1 message "
		     "left)\r\n"),
		END,
	};
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	struct pop3_error err;

	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	s = open_ok(&c);
	ck_assert_int_eq(pop3_dele(s, 1), 0);
	ck_assert_int_eq(pop3_dele(s, 7), -1);
	check_err(pop3_error(s), POP3_ERR_ERR, "message 7 already deleted");
	ck_assert(pop3_usable(s));
	if (_i) {
		ck_assert_msg(pop3_quit(s, &err) == 0, "%s", err.text);
		ck_assert_int_eq(err.kind, POP3_ERR_NONE);
	} else {
		pop3_close(s);
	}
	fake_finish(&f);
	ck_assert(fake_got(&f, "DELE 1"));
	ck_assert(fake_got(&f, "QUIT") == (_i == 1));
}
END_TEST

/* -ERR or silence after QUIT: -1, and the session is freed anyway. */
START_TEST(test_quit_fails)
{
	const struct step steps[] = {
		LOGIN,
		EXPECT("QUIT"),
		STEP(_i ? S_END : S_SEND,
		     "-ERR some deleted messages not removed\r\n"),
		END,
	};
	struct fake f;
	struct pop3_config c;
	struct pop3_session *s;
	struct pop3_error err;

	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, _i ? T_SHORT_MS : T_LONG_MS);
	s = open_ok(&c);
	ck_assert_int_eq(pop3_quit(s, &err), -1);
	if (_i)
		check_err(&err, POP3_ERR_NET, "did not answer within 0.3 s");
	else
		check_err(&err, POP3_ERR_ERR,
			  "answered QUIT with -ERR (some deletions may not "
			  "be done): some deleted messages not removed");
	fake_finish(&f);
}
END_TEST

/* pop3_close(NULL) and pop3_quit() without err are fine. */
START_TEST(test_close_null)
{
	const struct step steps[] = {
		LOGIN,
		EXPECT("QUIT"),
		SEND("+OK\r\n"),
		END,
	};
	struct fake f;
	struct pop3_config c;

	pop3_close(NULL);
	fake_start(&f, steps);
	c = fake_cfg(&f, POP3_TLS_NONE, T_LONG_MS);
	ck_assert_int_eq(pop3_quit(open_ok(&c), NULL), 0);
	fake_finish(&f);
}
END_TEST

Suite *pop3_suite(void)
{
	Suite *s = suite_create("pop3");
	TCase *tc = tcase_create("pop3");

	/* Valgrind and the sanitizers slow everything down. */
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_greeting_bad, 0,
			    sizeof(bad_greetings) / sizeof(bad_greetings[0]));
	tcase_add_test(tc, test_greeting_overlong);
	tcase_add_loop_test(tc, test_login, 0,
			    sizeof(logins) / sizeof(logins[0]));
	tcase_add_loop_test(tc, test_login_refused, 0,
			    sizeof(refusals) / sizeof(refusals[0]));
	tcase_add_test(tc, test_login_line_break);
	tcase_add_loop_test(tc, test_login_challenge, 0,
			    sizeof(challenges) / sizeof(challenges[0]));
	tcase_add_loop_test(tc, test_oauth_login, 0, 2);
	tcase_add_loop_test(tc, test_oauth_long_token, 0, 2);
	tcase_add_loop_test(tc, test_oauth_refused, 0, 2);
	tcase_add_loop_test(tc, test_login_way, 0,
			    sizeof(ways) / sizeof(ways[0]));
	tcase_add_test(tc, test_credential_each_login);
	tcase_add_test(tc, test_trace_hides_token);
	tcase_add_test(tc, test_trace_hides_credentials);
	tcase_add_loop_test(tc, test_stls_refusal, 0,
			    sizeof(stls_refusals) / sizeof(stls_refusals[0]));
	tcase_add_test(tc, test_stls_handshake_fails);
	tcase_add_loop_test(tc, test_list_ok, 0,
			    2 * sizeof(listings) / sizeof(listings[0]));
	tcase_add_loop_test(tc, test_list_bogus, 0,
			    sizeof(bogus) / sizeof(bogus[0]));
	tcase_add_test(tc, test_list_overlong_line);
	tcase_add_test(tc, test_list_too_many);
	tcase_add_loop_test(tc, test_list_uidl_err, 0, 3);
	tcase_add_loop_test(tc, test_retr, 0,
			    sizeof(messages) / sizeof(messages[0]));
	tcase_add_test(tc, test_retr_big);
	tcase_add_test(tc, test_retr_max);
	tcase_add_loop_test(tc, test_retr_endless, 0, 2);
	tcase_add_test(tc, test_retr_err_and_abort);
	tcase_add_test(tc, test_retr_timeout);
	tcase_add_loop_test(tc, test_dele_close_or_quit, 0, 2);
	tcase_add_loop_test(tc, test_quit_fails, 0, 2);
	tcase_add_test(tc, test_close_null);
	suite_add_tcase(s, tc);
	return s;
}
