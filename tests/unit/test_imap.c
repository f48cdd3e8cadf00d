// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of imap (the session) against a scripted server: a thread
 * on a loopback TCP socket that sends its whole script at once, closes
 * its sending side, and reads whatever the client writes until the
 * client leaves. The session reads the script in order, as it would
 * read a server's answers, so a script is the answers to the commands
 * the test makes (tagged M1, M2, ...). These are regression tests of
 * what the fuzzers (tests/fuzz) found.
 *
 * Leaks: under AddressSanitizer (make asan-check) a test runs
 * LeakSanitizer itself and fails on a leak; without it, the test still
 * runs the path.
 */
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "imap.h"

#define ZLIB_CONST
#include <zlib.h>

/* Bound of every wait that should succeed at once. */
#define TEST_IMAP_WAIT_MS 5000

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_IMAP_LSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define TEST_IMAP_LSAN 1
#endif
#ifdef TEST_IMAP_LSAN
/* From <sanitizer/lsan_interface.h>: nonzero when leaks were found. */
int __lsan_do_recoverable_leak_check(void);
#endif

/* The scripted server: one connection, one script. */
struct test_imap_server {
	int lfd; /* owned: the listening socket */
	char port[16];
	const char *script; /* borrowed */
	size_t len;
	const char *script2; /* borrowed: a second connection's, or NULL */
	char got[8192]; /* the first bytes the client sent */
	size_t got_len;
	pthread_t thread;
};

/* Serves one connection: the script, then end of stream, then reads
 * until the client closes (bounded). */
static void test_imap_server_one(struct test_imap_server *srv,
				 const char *script, size_t len)
{
	struct pollfd pfd = {srv->lfd, POLLIN, 0};
	char buf[4096];
	size_t off = 0;
	ssize_t n;
	int fd;

	if (poll(&pfd, 1, TEST_IMAP_WAIT_MS) != 1)
		return;
	fd = accept(srv->lfd, NULL, NULL);
	if (fd < 0)
		return;
	while (off < len) {
		n = send(fd, script + off, len - off, MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	shutdown(fd, SHUT_WR);
	pfd = (struct pollfd){fd, POLLIN, 0};
	while (poll(&pfd, 1, TEST_IMAP_WAIT_MS) == 1 &&
	       (n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		if ((size_t)n > sizeof(srv->got) - srv->got_len)
			n = (ssize_t)(sizeof(srv->got) - srv->got_len);
		memcpy(srv->got + srv->got_len, buf, (size_t)n);
		srv->got_len += (size_t)n;
	}
	close(fd);
}

/* Serves the script's connection, then script2's if there is one. */
static void *test_imap_server_run(void *arg)
{
	struct test_imap_server *srv = arg;

	test_imap_server_one(srv, srv->script, srv->len);
	if (srv->script2)
		test_imap_server_one(srv, srv->script2, strlen(srv->script2));
	return NULL;
}

/* Listens on a free loopback port and starts serving the len bytes of
 * script, then script2 (a string, or NULL) to a second connection. */
static void test_imap_server_serve(struct test_imap_server *srv,
				   const char *script, size_t len,
				   const char *script2)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t alen = sizeof(a);

	srv->script = script;
	srv->len = len;
	srv->script2 = script2;
	srv->got_len = 0;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	srv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(srv->lfd, 0);
	ck_assert_int_eq(bind(srv->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(srv->lfd, 1), 0);
	ck_assert_int_eq(getsockname(srv->lfd, (struct sockaddr *)&a, &alen),
			 0);
	snprintf(srv->port, sizeof(srv->port), "%u", ntohs(a.sin_port));
	ck_assert_int_eq(
		pthread_create(&srv->thread, NULL, test_imap_server_run, srv),
		0);
}

/* Starts serving the len bytes of script to one connection. */
static void test_imap_server_start_len(struct test_imap_server *srv,
				       const char *script, size_t len)
{
	test_imap_server_serve(srv, script, len, NULL);
}

/* Starts serving a script that is a string. */
static void test_imap_server_start(struct test_imap_server *srv,
				   const char *script)
{
	test_imap_server_serve(srv, script, strlen(script), NULL);
}

/* Starts serving two connections, one script each (strings). */
static void test_imap_server_start2(struct test_imap_server *srv,
				    const char *script, const char *script2)
{
	test_imap_server_serve(srv, script, strlen(script), script2);
}

/* Waits for the server thread and closes its socket. */
static void test_imap_server_stop(struct test_imap_server *srv)
{
	pthread_join(srv->thread, NULL);
	close(srv->lfd);
}

/* The session's credential callback: the secret is its context. */
static int test_imap_secret(void *ctx, char *buf, size_t len, char *err,
			    size_t errlen)
{
	(void)err;
	(void)errlen;
	snprintf(buf, len, "%s", (const char *)ctx);
	return 0;
}

/* A cleartext session's settings for the scripted server. */
static struct imap_config test_imap_config(const struct test_imap_server *srv)
{
	return (struct imap_config){
		.host = "127.0.0.1",
		.port = srv->port,
		.user = "user",
		.credential = {test_imap_secret, (void *)"secret"},
		.tls = IMAP_TLS_NONE,
		.timeout_ms = TEST_IMAP_WAIT_MS,
		.max_literal = 1024 * 1024,
	};
}

/* Fails the test when LeakSanitizer finds unreachable memory (only in a
 * sanitizer build). */
static void test_imap_no_leaks(void)
{
#ifdef TEST_IMAP_LSAN
	ck_assert_msg(__lsan_do_recoverable_leak_check() == 0,
		      "LeakSanitizer found leaks (see its report)");
#endif
}

/*
 * A PERMANENTFLAGS code in the greeting fills the session's flag list;
 * a login that then fails must free it with the rest of the session.
 * Found by tests/fuzz/fuzz_imap_session (a leak in imap_open's failure
 * path).
 */
START_TEST(test_imap_open_failure_frees_permflags)
{
	static const char *const scripts[] = {
		/* the greeting's code, then CAPABILITY refused */
		"* OK [PERMANENTFLAGS (\\Seen)] hi\r\nM1 NO go away\r\n",
		/* an untagged code during the login, then the login refused */
		"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] hi\r\n"
		"* OK [PERMANENTFLAGS (\\Seen \\*)] x\r\nM1 NO [AUTHFAILED] "
		"no\r\n",
	};
	struct test_imap_server srv;
	struct imap_config cfg;
	struct imap_session *s = NULL;
	struct imap_error err;
	size_t i;

	for (i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
		test_imap_server_start(&srv, scripts[i]);
		cfg = test_imap_config(&srv);
		ck_assert_int_eq(imap_open(&cfg, &s, &err), -1);
		test_imap_server_stop(&srv);
		ck_assert_msg(strstr(err.text, i ? "failed: no" : "go away"),
			      "error: %s", err.text);
	}
	test_imap_no_leaks();
}
END_TEST

/* Logs in (SASL-IR), selects INBOX (one message): M1 and M2. */
#define TEST_IMAP_SELECTED                                           \
	"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n"   \
	"M1 OK [CAPABILITY IMAP4rev1 LITERAL+] logged in\r\n"        \
	"* 1 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\nM2 OK [READ-ONLY] " \
	"done\r\n"

/* What the body callback saw. */
struct test_imap_body {
	unsigned calls;
	uint64_t offset;
	char data[16];
};

/* Records the piece FETCH handed out. */
static void test_imap_body_cb(void *ctx, const struct imap_body_part *p)
{
	struct test_imap_body *b = ctx;

	b->calls++;
	b->offset = p->offset;
	snprintf(b->data, sizeof(b->data), "%.*s", (int)p->len, p->data);
}

/* The origin each FETCH response gives, for a FETCH asked at offset
 * `at`; ok: the piece is taken. */
static const struct {
	uint64_t at;
	const char *origin;
	int ok;
} test_imap_origins[] = {
	{0, "<0>", 1},
	{0, "", 1}, /* no origin: from the start */
	{131072, "<131072>", 1},
	{0, "<-1>", 0}, /* strtoull would take it as 2^64 - 1 */
	{0, "<-0>", 0},
	{0, "<+0>", 0},
	{0, "<0x0>", 0},
	{0, "<>", 0},
	{0, "<0", 0},
	{0, "<0>x", 0},
	{0, "<18446744073709551616>", 0}, /* 2^64 */
	{0, "<99999999999999999999999>", 0},
	{0, "<131072>", 0}, /* not where it was asked */
	{131072, "<0>", 0},
	{131072, "", 0},
	/* asked where the piece's end would not fit in 64 bits */
	{UINT64_MAX - 2, "<18446744073709551613>", 0},
};

/*
 * A body piece must start where it was asked for, its BODY[]<origin>
 * written in digits only; otherwise (as "<-1>", which strtoull took as
 * 2^64 - 1) the FETCH fails as a protocol error and no byte is handed
 * out, since they would land at the wrong place of the file. Checked by
 * tests/fuzz/fuzz_imap_session too.
 */
START_TEST(test_imap_body_origin)
{
	struct test_imap_body body = {0};
	struct test_imap_server srv;
	struct imap_config cfg;
	struct imap_session *s = NULL;
	struct imap_mailbox mb;
	struct imap_error err;
	char script[1024];
	int rc;

	snprintf(script, sizeof(script),
		 TEST_IMAP_SELECTED "* 1 FETCH (UID 1 BODY[]%s {5}\r\n"
				    "hello)\r\nM3 OK done\r\n",
		 test_imap_origins[_i].origin);
	test_imap_server_start(&srv, script);
	cfg = test_imap_config(&srv);
	ck_assert_int_eq(imap_open(&cfg, &s, &err), 0);
	ck_assert_int_eq(imap_mailbox_select(s, "INBOX", true, false, &mb), 0);
	rc = imap_fetch_body(s, "1", test_imap_origins[_i].at, 4096,
			     test_imap_body_cb, &body);
	if (test_imap_origins[_i].ok) {
		ck_assert_msg(rc == 0, "%s: %s", test_imap_origins[_i].origin,
			      imap_error(s)->text);
		ck_assert_uint_eq(body.calls, 1);
		ck_assert_uint_eq(body.offset, test_imap_origins[_i].at);
		ck_assert_str_eq(body.data, "hello");
		ck_assert(imap_usable(s));
	} else {
		ck_assert_msg(rc == -1, "%s accepted",
			      test_imap_origins[_i].origin);
		ck_assert_uint_eq(body.calls, 0);
		ck_assert_int_eq(imap_error(s)->kind, IMAP_ERR_PROTO);
		ck_assert(!imap_usable(s));
	}
	imap_close(s);
	test_imap_server_stop(&srv);
}
END_TEST

/* INTERNALDATEs as servers send them, and what each is in UTC (0: the
 * date cannot be read, and the message shows as 1970). */
static const struct {
	const char *date;
	long long utc;
} test_imap_dates[] = {
	{"17-Jul-1996 02:44:25 -0700", 837596665},
	{" 7-Jul-1996 02:44:25 +0000", 836707465},
	{"7-Jul-1996 02:44:25 +0000", 836707465},
	{"01-jan-2024 00:00:00 +0130", 1704061800},
	{"31-Dec-1999 23:59:60 -1200", 946728000},
	{"17-Jul-1996 02:44:25 0700", 0},
	{"17-Jly-1996 02:44:25 +0000", 0},
	{"17-Jul-96 02:44:25 +0000", 0},
	{"32-Jul-1996 02:44:25 +0000", 0},
	{"17-Jul-1996 24:00:00 +0000", 0},
	{"17-Jul-1996 02:44:25 +00000", 0},
	{"17-Jul-1996 02:44 +0000", 0},
	{"", 0},
};

static void test_imap_date_cb(void *ctx, const struct imap_msg_meta *m)
{
	*(long long *)ctx = (long long)m->date;
}

/* The listing's INTERNALDATE parser (by hand, one per message). */
START_TEST(test_imap_internaldate)
{
	struct test_imap_server srv;
	struct imap_config cfg;
	struct imap_session *s = NULL;
	struct imap_mailbox mb;
	struct imap_error err;
	char script[1024];
	long long got = -1;

	snprintf(script, sizeof(script),
		 "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n"
		 "M1 OK [CAPABILITY IMAP4rev1 LITERAL+] logged in\r\n"
		 "* 1 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n"
		 "M2 OK [READ-ONLY] done\r\n"
		 "* 1 FETCH (UID 4 FLAGS () RFC822.SIZE 10 "
		 "INTERNALDATE \"%s\")\r\nM3 OK done\r\n",
		 test_imap_dates[_i].date);
	test_imap_server_start(&srv, script);
	cfg = test_imap_config(&srv);
	ck_assert_int_eq(imap_open(&cfg, &s, &err), 0);
	ck_assert_int_eq(
		imap_sync_list(s, "INBOX", test_imap_date_cb, &got, &mb), 0);
	ck_assert_msg(got == test_imap_dates[_i].utc, "%s: %lld",
		      test_imap_dates[_i].date, got);
	imap_close(s);
	test_imap_server_stop(&srv);
}
END_TEST

static void test_imap_flags_cb(void *ctx, const struct imap_msg_meta *m)
{
	snprintf(ctx, 256, "%s", m->flags);
}

/*
 * Flags from a hostile server (found by fuzz_imap_session): "x[a" is a
 * keyword that ends at its space, "\Recent" is left out, and what is no
 * flag by the grammar ("b]", a string, NIL, a lone "\", "a%b") is left
 * out too, in PERMANENTFLAGS, a listing's FLAGS and a STORE's answer.
 * Before, "x[a \Recent b]" was taken as one flag, with spaces, that
 * could not be written back.
 */
START_TEST(test_imap_hostile_flags)
{
	static const char script[] =
		"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n"
		"* OK [PERMANENTFLAGS (\\Seen x[a \\Draft \"q\" a%b)] hi\r\n"
		"M1 OK [CAPABILITY IMAP4rev1] logged in\r\n"
		"* 1 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n"
		"M2 OK [READ-ONLY] done\r\n"
		"* 1 FETCH (UID 4 FLAGS (\\Seen x[a \\Recent b] \"q\" NIL \\ "
		"a%b $Junk) RFC822.SIZE 10 "
		"INTERNALDATE \"17-Jul-1996 02:44:25 -0700\")\r\n"
		"M3 OK done\r\n"
		"* 1 FETCH (UID 4 FLAGS (\\Seen x[a \\Recent b]))\r\n"
		"M4 OK stored\r\n";
	struct test_imap_server srv;
	struct imap_config cfg;
	struct imap_session *s = NULL;
	struct imap_mailbox mb;
	struct imap_error err;
	char flags[256] = "";
	char *stored = NULL;

	test_imap_server_start(&srv, script);
	cfg = test_imap_config(&srv);
	ck_assert_int_eq(imap_open(&cfg, &s, &err), 0);
	ck_assert(imap_write_flag_allowed(s, "x[a"));
	ck_assert(imap_write_flag_allowed(s, "\\Draft"));
	ck_assert(!imap_write_flag_allowed(s, "\\Flagged"));
	ck_assert(!imap_write_flag_allowed(s, "q"));
	ck_assert_int_eq(
		imap_sync_list(s, "INBOX", test_imap_flags_cb, flags, &mb), 0);
	ck_assert_str_eq(flags, "\\Seen x[a $Junk");
	ck_assert_int_eq(imap_write_flags(s, 4, "\\Seen", &stored), 0);
	ck_assert_ptr_nonnull(stored);
	ck_assert_str_eq(stored, "\\Seen x[a");
	free(stored);
	imap_close(s);
	test_imap_server_stop(&srv);
}
END_TEST

/* What the identity test's listing got: each message's identity. */
struct test_imap_oids {
	char got[4][64];
	const char *kind[4];
	size_t n;
};

static void test_imap_oid_cb(void *ctx, const struct imap_msg_meta *m)
{
	struct test_imap_oids *o = ctx;

	if (o->n >= 4)
		return;
	snprintf(o->got[o->n], sizeof(o->got[0]), "%s", m->oid ? m->oid : "-");
	o->kind[o->n++] = m->oid_kind;
}

/*
 * Content identity: a server with OBJECTID is asked for EMAILID in the
 * listing's FETCH, one with X-GM-EXT-1 for X-GM-MSGID, one with neither
 * for nothing; a malformed identity (a character RFC 8474 does not
 * allow, a bare atom for EMAILID, letters in an X-GM-MSGID, one too
 * long) is no identity.
 */
START_TEST(test_imap_content_identity)
{
	static const char *const caps[] = {"OBJECTID", "X-GM-EXT-1", "IDLE"};
	static const char *const asked[] = {"EMAILID ", "X-GM-MSGID ", NULL};
	static const char *const items[] = {
		"EMAILID (M1a-_Z) ", "EMAILID (M.x) ",
		"EMAILID Mbare ",    "X-GM-MSGID 1278455344230334865 ",
		"X-GM-MSGID 12a ",   "X-GM-MSGID 123456789012345678901 "};
	static const char *const want[3][3] = {
		{"M1a-_Z", "-", "-"},
		{"1278455344230334865", "-", "-"},
		{"-", "-", "-"}};
	size_t k, i;

	for (k = 0; k < 3; k++) {
		struct test_imap_server srv;
		struct test_imap_oids got = {0};
		struct imap_config cfg;
		struct imap_session *s = NULL;
		struct imap_mailbox mb;
		struct imap_error err;
		char script[2048];
		int n;

		n = snprintf(script, sizeof(script),
			     "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] "
			     "hi\r\nM1 OK [CAPABILITY IMAP4rev1 %s] in\r\n"
			     "* 3 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n"
			     "M2 OK [READ-ONLY] done\r\n",
			     caps[k]);
		for (i = 0; i < 3; i++)
			n += snprintf(script + n, sizeof(script) - (size_t)n,
				      "* %zu FETCH (UID %zu FLAGS () %s"
				      "RFC822.SIZE 10 INTERNALDATE "
				      "\"17-Jul-1996 02:44:25 -0700\")\r\n",
				      i + 1, i + 1, items[3 * (k == 1) + i]);
		snprintf(script + n, sizeof(script) - (size_t)n,
			 "M3 OK done\r\n");
		test_imap_server_start(&srv, script);
		cfg = test_imap_config(&srv);
		ck_assert_int_eq(imap_open(&cfg, &s, &err), 0);
		ck_assert_int_eq(
			imap_sync_list(s, "INBOX", test_imap_oid_cb, &got, &mb),
			0);
		ck_assert_uint_eq(got.n, 3);
		for (i = 0; i < 3; i++)
			ck_assert_str_eq(got.got[i], want[k][i]);
		if (k < 2)
			ck_assert_str_eq(got.kind[0], imap_oid_kind(s));
		ck_assert_ptr_null(got.kind[1]);
		imap_close(s);
		test_imap_server_stop(&srv);
		srv.got[srv.got_len < sizeof(srv.got) ? srv.got_len
						      : sizeof(srv.got) - 1] =
			'\0';
		if (asked[k])
			ck_assert_ptr_nonnull(strstr(srv.got, asked[k]));
		ck_assert_ptr_null(
			strstr(srv.got, k == 0 ? "X-GM" : "EMAILID"));
		if (k == 2)
			ck_assert_ptr_null(strstr(srv.got, "X-GM"));
	}
}
END_TEST

/* The greeting and login of the COMPRESS tests: M1. */
#define TEST_IMAP_COMPRESS_LOGIN                                           \
	"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR COMPRESS=DEFLATE] " \
	"hi\r\nM1 OK [CAPABILITY IMAP4rev1 COMPRESS=DEFLATE] in\r\n"

/* Raw-deflates text with a sync flush into out; returns the length. */
static size_t test_imap_deflate(const char *text, unsigned char *out,
				size_t cap)
{
	z_stream z = {0};

	ck_assert_int_eq(
		deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY),
		Z_OK);
	z.next_in = (const Bytef *)text;
	z.avail_in = (uInt)strlen(text);
	z.next_out = out;
	z.avail_out = (uInt)cap;
	ck_assert_int_eq(deflate(&z, Z_SYNC_FLUSH), Z_OK);
	ck_assert_uint_eq(z.avail_in, 0);
	deflateEnd(&z);
	return cap - z.avail_out;
}

/*
 * COMPRESS=DEFLATE offered: sent after login; the server's compressed
 * answer, which arrives in the same read as its OK, is read through
 * the inflater, and the next command goes out deflated.
 */
START_TEST(test_imap_compress)
{
	static const char head[] =
		TEST_IMAP_COMPRESS_LOGIN "M2 OK DEFLATE active\r\n";
	struct test_imap_server srv;
	struct imap_config cfg;
	struct imap_session *s = NULL;
	struct imap_error err;
	unsigned char script[512], plain[256];
	z_stream z = {0};
	size_t n = strlen(head);
	const char *at;

	memcpy(script, head, n);
	n += test_imap_deflate("M3 OK noop done\r\n", script + n,
			       sizeof(script) - n);
	test_imap_server_start_len(&srv, (const char *)script, n);
	cfg = test_imap_config(&srv);
	cfg.compress = true;
	ck_assert_int_eq(imap_open(&cfg, &s, &err), 0);
	ck_assert_msg(imap_noop(s) == 0, "noop: %s", imap_error(s)->text);
	imap_close(s);
	test_imap_server_stop(&srv);
	at = memmem(srv.got, srv.got_len, "M2 COMPRESS DEFLATE\r\n", 21);
	ck_assert_ptr_nonnull(at);
	at += 21;
	ck_assert_int_eq(inflateInit2(&z, -15), Z_OK);
	z.next_in = (const Bytef *)at;
	z.avail_in = (uInt)(srv.got + srv.got_len - at);
	z.next_out = plain;
	z.avail_out = sizeof(plain) - 1;
	ck_assert_int_eq(inflate(&z, Z_SYNC_FLUSH), Z_OK);
	inflateEnd(&z);
	plain[sizeof(plain) - 1 - z.avail_out] = '\0';
	ck_assert_msg(strncmp((char *)plain, "M3 NOOP\r\n", 9) == 0,
		      "sent after COMPRESS: %s", plain);
}
END_TEST

/* compress=no, or a refusal: no compression, and the session goes on. */
START_TEST(test_imap_compress_off_or_refused)
{
	static const char *const scripts[] = {
		TEST_IMAP_COMPRESS_LOGIN "M2 OK noop done\r\n",
		TEST_IMAP_COMPRESS_LOGIN "M2 NO [COMPRESSIONACTIVE] no\r\n"
					 "M3 OK noop done\r\n",
	};
	struct test_imap_server srv;
	struct imap_config cfg;
	struct imap_session *s = NULL;
	struct imap_error err;

	test_imap_server_start(&srv, scripts[_i]);
	cfg = test_imap_config(&srv);
	cfg.compress = _i == 1;
	ck_assert_int_eq(imap_open(&cfg, &s, &err), 0);
	ck_assert_msg(imap_noop(s) == 0, "noop: %s", imap_error(s)->text);
	imap_close(s);
	test_imap_server_stop(&srv);
	ck_assert_ptr_nonnull(memmem(srv.got, srv.got_len,
				     _i ? "M3 NOOP\r\n" : "M2 NOOP\r\n", 9));
	ck_assert_int_eq(memmem(srv.got, srv.got_len, "COMPRESS", 8) != NULL,
			 _i == 1);
}
END_TEST

/* What a folder list sent with the login told (imap_open_listing()). */
struct test_imap_listed {
	unsigned folders, states;
	uint32_t messages;
	uint64_t modseq;
};

static void test_imap_listed_cb(void *ctx, const struct imap_list_entry *e)
{
	struct test_imap_listed *l = ctx;

	if (!e->status_only) {
		l->folders++;
		return;
	}
	l->states++;
	l->messages = e->messages;
	l->modseq = e->modseq;
}

#define TEST_IMAP_DOVECOT_HI \
	"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] Dovecot ready.\r\n"
#define TEST_IMAP_RICH_CAPS                                            \
	"[CAPABILITY IMAP4rev1 LIST-EXTENDED LIST-STATUS SPECIAL-USE " \
	"CONDSTORE]"
#define TEST_IMAP_LIST_ANSWER                                 \
	"* LIST (\\HasNoChildren) \".\" INBOX\r\n"            \
	"* STATUS INBOX (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 7 " \
	"HIGHESTMODSEQ 9)\r\n"
#define TEST_IMAP_LIST_SENT                                                \
	"M2 LIST \"\" \"*\" RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT " \
	"UIDVALIDITY HIGHESTMODSEQ))\r\n"

/*
 * The folder list goes in the same write as a login the server answers
 * without a challenge (AUTHENTICATE PLAIN with SASL-IR, or LOGIN), on
 * Dovecot; its answer serves only in the form the capabilities after
 * the login call for, and a refusal of it leaves the session usable:
 *   0  AUTHENTICATE PLAIN, the list serves;
 *   1  LOGIN, the list serves;
 *   2  a greeting that is not Dovecot's: nothing sent with the login;
 *   3  no LIST-STATUS after the login: answered, but does not serve;
 *   4  the list refused (BAD): does not serve.
 */
START_TEST(test_imap_list_with_login)
{
	static const char *const scripts[] = {
		TEST_IMAP_DOVECOT_HI "M1 OK " TEST_IMAP_RICH_CAPS
				     " in\r\n" TEST_IMAP_LIST_ANSWER
				     "M2 OK listed\r\nM3 OK noop\r\n",
		"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n"
		"M1 OK " TEST_IMAP_RICH_CAPS " in\r\n" TEST_IMAP_LIST_ANSWER
		"M2 OK listed\r\nM3 OK noop\r\n",
		"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] hi\r\n"
		"M1 OK " TEST_IMAP_RICH_CAPS " in\r\nM2 OK noop\r\n",
		TEST_IMAP_DOVECOT_HI
		"M1 OK [CAPABILITY IMAP4rev1 LIST-EXTENDED SPECIAL-USE] in\r\n"
		"* LIST (\\HasNoChildren) \".\" INBOX\r\n"
		"M2 OK listed\r\nM3 OK noop\r\n",
		TEST_IMAP_DOVECOT_HI "M1 OK " TEST_IMAP_RICH_CAPS
				     " in\r\nM2 BAD what\r\nM3 OK noop\r\n",
	};
	struct test_imap_listed l = {0};
	struct test_imap_server srv;
	struct imap_config cfg;
	struct imap_session *s = NULL;
	struct imap_error err;
	bool listed = true;

	test_imap_server_start(&srv, scripts[_i]);
	cfg = test_imap_config(&srv);
	ck_assert_msg(imap_open_listing(&cfg, &s, &err, test_imap_listed_cb, &l,
					&listed) == 0,
		      "open: %s", err.text);
	ck_assert_int_eq(listed, _i <= 1);
	ck_assert_msg(imap_noop(s) == 0, "noop: %s", imap_error(s)->text);
	imap_close(s);
	test_imap_server_stop(&srv);
	ck_assert_ptr_nonnull(memmem(srv.got, srv.got_len,
				     _i == 1 ? "M1 LOGIN "
					     : "M1 AUTHENTICATE "
					       "PLAIN ",
				     _i == 1 ? 9 : 20));
	ck_assert_int_eq(memmem(srv.got, srv.got_len, TEST_IMAP_LIST_SENT,
				strlen(TEST_IMAP_LIST_SENT)) != NULL,
			 _i != 2);
	ck_assert_ptr_nonnull(memmem(srv.got, srv.got_len,
				     _i == 2 ? "M2 NOOP" : "M3 NOOP", 7));
	if (_i <= 1) {
		ck_assert_uint_eq(l.folders, 1);
		ck_assert_uint_eq(l.states, 1);
		ck_assert_uint_eq(l.messages, 3);
		ck_assert_uint_eq(l.modseq, 9);
	}
	test_imap_no_leaks();
}
END_TEST

/* A refused login fails as the refusal, whatever went with it; a
 * session that the command sent with the login throws out of step (as
 * Cyrus 3.6 is, which reads AUTHENTICATE again), or that the server
 * closes, logs in once more without it. */
START_TEST(test_imap_list_with_login_fails_safe)
{
	static const char *const again[] = {
		TEST_IMAP_DOVECOT_HI "M1 OK " TEST_IMAP_RICH_CAPS
				     " in\r\nM1 BAD Already authenticated\r\n",
		TEST_IMAP_DOVECOT_HI "M1 OK " TEST_IMAP_RICH_CAPS " in\r\n",
	};
	struct test_imap_listed l = {0};
	struct test_imap_server srv;
	struct imap_config cfg;
	struct imap_session *s = NULL;
	struct imap_error err;
	bool listed = true;
	size_t i;

	test_imap_server_start(&srv, TEST_IMAP_DOVECOT_HI
			       "M1 NO [AUTHENTICATIONFAILED] no\r\n");
	cfg = test_imap_config(&srv);
	ck_assert_int_eq(imap_open_listing(&cfg, &s, &err, test_imap_listed_cb,
					   &l, &listed),
			 -1);
	ck_assert_int_eq(err.kind, IMAP_ERR_AUTH);
	test_imap_server_stop(&srv);

	/* Out of step (Cyrus's answer), then closed after the login. */
	for (i = 0; i < 2; i++) {
		test_imap_server_start2(
			&srv, again[i],
			"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN "
			"SASL-IR] hi\r\nM1 OK " TEST_IMAP_RICH_CAPS
			" in\r\nM2 OK noop\r\n");
		cfg = test_imap_config(&srv);
		ck_assert_msg(imap_open_listing(&cfg, &s, &err,
						test_imap_listed_cb, &l,
						&listed) == 0,
			      "open: %s", err.text);
		ck_assert(!listed);
		ck_assert_msg(imap_noop(s) == 0, "noop: %s",
			      imap_error(s)->text);
		imap_close(s);
		test_imap_server_stop(&srv);
		ck_assert_ptr_nonnull(
			memmem(srv.got, srv.got_len, "M2 NOOP", 7));
	}
	test_imap_no_leaks();
}
END_TEST

/*
 * The new UID of a moved message comes from COPYUID only when its source
 * UID is the one moved: the disk and memory caches re-key the body to
 * it, and another message's UID would attach these bytes to it.
 */
START_TEST(test_imap_copyuid_source_checked)
{
	static const char script[] =
		"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN SASL-IR] ready\r\n"
		"M1 OK [CAPABILITY IMAP4rev1 LITERAL+ MOVE UIDPLUS] in\r\n"
		"* 2 EXISTS\r\n* OK [UIDVALIDITY 5] x\r\n"
		"M2 OK [READ-WRITE] done\r\n"
		"* OK [COPYUID 77 9 31] moved\r\n* 1 EXPUNGE\r\n"
		"M3 OK done\r\n"
		"* OK [COPYUID 77 6 32] moved\r\n* 1 EXPUNGE\r\n"
		"M4 OK done\r\n"
		"M5 OK [COPYUID 78 7 33] copied\r\n";
	struct test_imap_server srv;
	struct imap_config cfg;
	struct imap_session *s = NULL;
	struct imap_mailbox mb;
	struct imap_error err;
	uint32_t uid = 1, uv = 1;

	test_imap_server_start(&srv, script);
	cfg = test_imap_config(&srv);
	ck_assert_int_eq(imap_open(&cfg, &s, &err), 0);
	ck_assert_int_eq(imap_mailbox_select(s, "INBOX", false, false, &mb), 0);
	ck_assert_int_eq(imap_write_copy(s, 5, "Dst", true, &uid, &uv), 0);
	ck_assert_uint_eq(uid, 0);
	ck_assert_uint_eq(uv, 0);
	ck_assert_int_eq(imap_write_copy(s, 6, "Dst", true, &uid, &uv), 0);
	ck_assert_uint_eq(uid, 32);
	ck_assert_uint_eq(uv, 77);
	ck_assert_int_eq(imap_write_copy(s, 7, "Dst", false, &uid, &uv), 0);
	ck_assert_uint_eq(uid, 33);
	ck_assert_uint_eq(uv, 78);
	imap_close(s);
	test_imap_server_stop(&srv);
}
END_TEST

/* The session's test suite, registered by the Makefile. */
Suite *test_imap_suite(void)
{
	Suite *s = suite_create("imap");
	TCase *tc = tcase_create("scripted");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_imap_open_failure_frees_permflags);
	tcase_add_test(tc, test_imap_hostile_flags);
	tcase_add_test(tc, test_imap_content_identity);
	tcase_add_loop_test(tc, test_imap_body_origin, 0,
			    sizeof(test_imap_origins) /
				    sizeof(test_imap_origins[0]));
	tcase_add_loop_test(tc, test_imap_internaldate, 0,
			    sizeof(test_imap_dates) /
				    sizeof(test_imap_dates[0]));
	tcase_add_test(tc, test_imap_compress);
	tcase_add_test(tc, test_imap_copyuid_source_checked);
	tcase_add_loop_test(tc, test_imap_compress_off_or_refused, 0, 2);
	tcase_add_loop_test(tc, test_imap_list_with_login, 0, 5);
	tcase_add_test(tc, test_imap_list_with_login_fails_safe);
	suite_add_tcase(s, tc);
	return s;
}
