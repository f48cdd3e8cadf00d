// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of sasl (and of strbuf's base64, which it rests on): the
 * published examples of RFC 4616, RFC 7628 and Google's XOAUTH2 page,
 * error challenges, and every way an exchange can go wrong.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sasl.h"
#include "strbuf.h"

/* ---- base64 ---- */

/* RFC 4648 section 10, both ways. */
static const struct {
	const char *raw, *b64;
} b64_vectors[] = {
	{"", ""},
	{"f", "Zg=="},
	{"fo", "Zm8="},
	{"foo", "Zm9v"},
	{"foob", "Zm9vYg=="},
	{"fooba", "Zm9vYmE="},
	{"foobar", "Zm9vYmFy"},
};

START_TEST(test_base64_vectors)
{
	struct strbuf enc = {0}, dec = {0};

	strbuf_base64(&enc, b64_vectors[_i].raw, strlen(b64_vectors[_i].raw));
	ck_assert_str_eq(strbuf_str(&enc), b64_vectors[_i].b64);
	ck_assert(strbuf_unbase64(&dec, b64_vectors[_i].b64,
				  strlen(b64_vectors[_i].b64)));
	ck_assert_str_eq(strbuf_str(&dec), b64_vectors[_i].raw);
	strbuf_free(&enc);
	strbuf_free(&dec);
}
END_TEST

/* Decoding: padding may be left out; anything else malformed fails and
 * leaves the buffer as it was. */
static const struct {
	const char *text;
	const char *want; /* NULL: refused */
	size_t want_len;
} unb64_cases[] = {
	{"Zm8", "fo", 2},   {"Zg", "f", 1},	   {"AAEC", "\x00\x01\x02", 3},
	{"Z", NULL, 0},	    {"Zg=", NULL, 0},	   {"Zg=x", NULL, 0},
	{"=Zg=", NULL, 0},  {"Zm9vY===", NULL, 0}, {"Zm9v!", NULL, 0},
	{"Zm 9v", NULL, 0}, {"Zm9v\r\n", NULL, 0}, {"Zm9vYmFy=", NULL, 0},
};

START_TEST(test_unbase64)
{
	struct strbuf b = {0};
	const char *text = unb64_cases[_i].text;
	bool ok;

	strbuf_puts(&b, "<");
	ok = strbuf_unbase64(&b, text, strlen(text));
	if (!unb64_cases[_i].want) {
		ck_assert_msg(!ok, "'%s' accepted", text);
		ck_assert_str_eq(strbuf_str(&b), "<");
	} else {
		ck_assert_msg(ok, "'%s' refused", text);
		ck_assert_uint_eq(b.len, 1 + unb64_cases[_i].want_len);
		ck_assert(memcmp(b.data + 1, unb64_cases[_i].want,
				 unb64_cases[_i].want_len) == 0);
	}
	strbuf_free(&b);
}
END_TEST

/* ---- names ---- */

START_TEST(test_names)
{
	enum sasl_mech m;
	enum sasl_auth a;

	ck_assert(sasl_mech_lookup("xoauth2", 7, &m));
	ck_assert_int_eq(m, SASL_MECH_XOAUTH2);
	ck_assert(sasl_mech_lookup("OAUTHBEARERX", 11, &m));
	ck_assert_int_eq(m, SASL_MECH_OAUTHBEARER);
	ck_assert(sasl_mech_lookup("Plain", 5, &m));
	ck_assert_int_eq(m, SASL_MECH_PLAIN);
	ck_assert(!sasl_mech_lookup("PLAI", 4, &m));
	ck_assert(!sasl_mech_lookup("CRAM-MD5", 8, &m));
	ck_assert_str_eq(sasl_mech_name(SASL_MECH_OAUTHBEARER), "OAUTHBEARER");

	ck_assert(sasl_auth_mech(SASL_AUTH_PLAIN, &m) && m == SASL_MECH_PLAIN);
	ck_assert(sasl_auth_mech(SASL_AUTH_XOAUTH2, &m) &&
		  m == SASL_MECH_XOAUTH2);
	ck_assert(sasl_auth_mech(SASL_AUTH_OAUTHBEARER, &m) &&
		  m == SASL_MECH_OAUTHBEARER);
	ck_assert(!sasl_auth_mech(SASL_AUTH_DEFAULT, &m));
	ck_assert(!sasl_auth_mech(SASL_AUTH_LOGIN, &m));
	for (a = SASL_AUTH_DEFAULT; a <= SASL_AUTH_OAUTHBEARER; a++)
		ck_assert(
			sasl_auth_is_oauth(a) ==
			(a == SASL_AUTH_XOAUTH2 || a == SASL_AUTH_OAUTHBEARER));
	ck_assert_str_eq(sasl_auth_name(SASL_AUTH_OAUTHBEARER), "oauthbearer");
	ck_assert_str_eq(sasl_auth_name(SASL_AUTH_LOGIN), "login");
}
END_TEST

/* ---- initial responses ---- */

static const struct {
	enum sasl_mech mech;
	const char *user, *secret, *host, *port;
	const char *b64;
} initial_vectors[] = {
	/* RFC 4616 section 4, without an authorization identity. */
	{SASL_MECH_PLAIN, "tim", "tanstaaftanstaaf", "h", "1",
	 "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"},
	{SASL_MECH_PLAIN, "alice", "s3cret", "h", "1", "AGFsaWNlAHMzY3JldA=="},
	/* Google's XOAUTH2 page ("the SASL XOAUTH2 mechanism"). */
	{SASL_MECH_XOAUTH2, "someuser@example.com",
	 "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg", "h", "1",
	 "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRx"
	 "bVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="},
	/* RFC 7628 section 4.1. */
	{SASL_MECH_OAUTHBEARER, "user@example.com",
	 "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", "server.example.com",
	 "143",
	 "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9"
	 "MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZ"
	 "Mjl0Q2c9PQEB"},
	/* ',' and '=' in the user are escaped in the GS2 header. */
	{SASL_MECH_OAUTHBEARER, "a,b=c", "t", "h", "1",
	 "bixhPWE9MkNiPTNEYywBaG9zdD1oAXBvcnQ9MQFhdXRoPUJlYXJlciB0AQE="},
};

/* The initial response of each mechanism, inline, is the published
 * one; it is marked as holding credentials. */
START_TEST(test_initial_vectors)
{
	struct sasl_client c;
	struct strbuf out = {0};

	sasl_client_init(&c, initial_vectors[_i].mech, initial_vectors[_i].user,
			 initial_vectors[_i].secret, initial_vectors[_i].host,
			 initial_vectors[_i].port);
	ck_assert_int_eq(sasl_client_start(&c, 4096, &out), 0);
	ck_assert_str_eq(strbuf_str(&out), initial_vectors[_i].b64);
	ck_assert_int_eq(c.state, SASL_STATE_SENT);
	ck_assert(c.secret_out);
	strbuf_free(&out);
}
END_TEST

/*
 * An initial response longer than max waits for the server's empty
 * challenge and is then the same bytes; a challenge after it fails
 * PLAIN (the client cancels).
 */
START_TEST(test_initial_deferred)
{
	const char *want = initial_vectors[_i].b64;
	struct sasl_client c;
	struct strbuf out = {0};

	sasl_client_init(&c, initial_vectors[_i].mech, initial_vectors[_i].user,
			 initial_vectors[_i].secret, initial_vectors[_i].host,
			 initial_vectors[_i].port);
	ck_assert_int_eq(sasl_client_start(&c, strlen(want) - 1, &out), 0);
	ck_assert_uint_eq(out.len, 0);
	ck_assert_int_eq(c.state, SASL_STATE_WAIT_EMPTY);
	ck_assert(!c.secret_out);
	ck_assert_int_eq(sasl_client_step(&c, "", 0, &out), 0);
	ck_assert_str_eq(strbuf_str(&out), want);
	ck_assert(c.secret_out);
	strbuf_free(&out);
	if (initial_vectors[_i].mech != SASL_MECH_PLAIN)
		return;
	ck_assert_int_eq(sasl_client_step(&c, "", 0, &out), -1);
	ck_assert_str_eq(c.error, "PLAIN: the server sent a challenge after "
				  "the credentials");
	ck_assert_int_eq(c.state, SASL_STATE_ABORTED);
}
END_TEST

/* A non-empty first challenge, before the credentials went out, makes
 * the client cancel. */
START_TEST(test_challenge_before_credentials)
{
	struct sasl_client c;
	struct strbuf out = {0};

	sasl_client_init(&c, SASL_MECH_XOAUTH2, "u", "t", "h", "1");
	ck_assert_int_eq(sasl_client_start(&c, 0, &out), 0);
	ck_assert_int_eq(sasl_client_step(&c, "Zm9v", 4, &out), -1);
	ck_assert_ptr_nonnull(strstr(c.error, "before the credentials"));
	ck_assert_uint_eq(out.len, 0);
}
END_TEST

/* User names and tokens the OAuth2 messages cannot carry: nothing is
 * produced, and the reason says which. PLAIN carries any of them. */
static const struct {
	enum sasl_mech mech;
	const char *user, *secret, *want;
} bad_fields[] = {
	{SASL_MECH_XOAUTH2, "a\001b", "tok", "user name holds a control"},
	{SASL_MECH_OAUTHBEARER, "a\nb", "tok", "user name holds a control"},
	{SASL_MECH_XOAUTH2, "u", "", "access token is empty"},
	{SASL_MECH_XOAUTH2, "u", "tok en", "holds a space"},
	{SASL_MECH_OAUTHBEARER, "u", "tok\001", "holds a space"},
	{SASL_MECH_OAUTHBEARER, "u", "t\xc3\xa9", "not ASCII"},
	{SASL_MECH_PLAIN, "a\001b", "p w\xc3\xa9", NULL},
};

START_TEST(test_bad_fields)
{
	struct sasl_client c;
	struct strbuf out = {0};
	int rc;

	sasl_client_init(&c, bad_fields[_i].mech, bad_fields[_i].user,
			 bad_fields[_i].secret, "h", "1");
	rc = sasl_client_start(&c, 4096, &out);
	if (!bad_fields[_i].want) {
		ck_assert_int_eq(rc, 0);
		ck_assert_uint_gt(out.len, 0);
		strbuf_free(&out);
		return;
	}
	ck_assert_int_eq(rc, -1);
	ck_assert_uint_eq(out.len, 0);
	ck_assert_msg(strstr(c.error, bad_fields[_i].want), "%s", c.error);
	ck_assert_int_eq(strncmp(c.error, sasl_mech_name(bad_fields[_i].mech),
				 strlen(sasl_mech_name(bad_fields[_i].mech))),
			 0);
}
END_TEST

/* ---- error challenges ---- */

static const struct {
	enum sasl_mech mech;
	const char *challenge; /* base64, as after "+ " */
	const char *status; /* what the client keeps */
	const char *response; /* what it answers */
} error_challenges[] = {
	/* RFC 7628 section 4.3. */
	{SASL_MECH_OAUTHBEARER,
	 "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NvcGUiOiJleGFtcGxlX3Njb3BlIiwi"
	 "b3BlbmlkLWNvbmZpZ3VyYXRpb24iOiJodHRwczovL2V4YW1wbGUuY29tLy53ZWxsLWtu"
	 "b3duL29wZW5pZC1jb25maWd1cmF0aW9uIn0=",
	 "invalid_token", "AQ=="},
	/* Google's XOAUTH2 page, trailing newline included. */
	{SASL_MECH_XOAUTH2,
	 "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIG1hYyIsInNjb3BlIjoiaHR0"
	 "cHM6Ly9tYWlsLmdvb2dsZS5jb20vIn0K",
	 "401", ""},
	/* Dovecot 2.3's two answers. */
	{SASL_MECH_XOAUTH2,
	 "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=",
	 "401", ""},
	{SASL_MECH_OAUTHBEARER,
	 "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=", "invalid_token", "AQ=="},
	/* {"a":{"status":"in"},"status" : 400} : a number, nesting */
	{SASL_MECH_XOAUTH2, "eyJhIjp7InN0YXR1cyI6ImluIn0sInN0YXR1cyIgOiA0MDB9",
	 "400", ""},
	/* {"s":"\"status\":1","status":"a\"b\u0007"} : escapes */
	{SASL_MECH_OAUTHBEARER,
	 "eyJzIjoiXCJzdGF0dXNcIjoxIiwic3RhdHVzIjoiYVwiYlx1MDAwNyJ9",
	 "a\"bu0007", "AQ=="},
	/* {"status":"\u001b[31mred\u0007"} raw control bytes are cleaned */
	{SASL_MECH_OAUTHBEARER, "eyJzdGF0dXMiOiIbWzMxbXJlZAcifQ==", "?[31mred?",
	 "AQ=="},
	/* {"scope":"x"}: no status */
	{SASL_MECH_XOAUTH2, "eyJzY29wZSI6IngifQ==", "", ""},
	/* not base64 at all: still acknowledged */
	{SASL_MECH_OAUTHBEARER, "not base64!", "", "AQ=="},
	/* {"status":"unterminated */
	{SASL_MECH_XOAUTH2, "eyJzdGF0dXMiOiJ1bnRlcm1pbmF0ZWQ=", "", ""},
};

/*
 * An OAuth2 error challenge after the credentials is acknowledged as
 * RFC 7628 3.2.3 (OAUTHBEARER: ^A) and Google (XOAUTH2: empty) say, its
 * status is kept, cleaned; a second challenge makes the client cancel.
 */
START_TEST(test_error_challenge)
{
	const char *chal = error_challenges[_i].challenge;
	struct sasl_client c;
	struct strbuf out = {0};

	sasl_client_init(&c, error_challenges[_i].mech, "u", "tok", "h", "1");
	ck_assert_int_eq(sasl_client_start(&c, 4096, &out), 0);
	strbuf_reset(&out);
	ck_assert_int_eq(sasl_client_step(&c, chal, strlen(chal), &out), 0);
	ck_assert_str_eq(strbuf_str(&out), error_challenges[_i].response);
	ck_assert_str_eq(c.server_status, error_challenges[_i].status);
	ck_assert(!c.secret_out);
	ck_assert_int_eq(c.state, SASL_STATE_ACKED);
	strbuf_reset(&out);
	ck_assert_int_eq(sasl_client_step(&c, chal, strlen(chal), &out), -1);
	ck_assert_ptr_nonnull(strstr(c.error, "another challenge"));
	ck_assert_int_eq(c.state, SASL_STATE_ABORTED);
	strbuf_free(&out);
}
END_TEST

/* A status longer than the client keeps is cut, not overflowed. */
START_TEST(test_error_status_long)
{
	struct strbuf json = {0}, b64 = {0}, out = {0};
	struct sasl_client c;
	size_t i;

	strbuf_puts(&json, "{\"status\":\"");
	for (i = 0; i < 500; i++)
		strbuf_puts(&json, "x");
	strbuf_puts(&json, "\"}");
	strbuf_base64(&b64, json.data, json.len);
	sasl_client_init(&c, SASL_MECH_XOAUTH2, "u", "tok", "h", "1");
	ck_assert_int_eq(sasl_client_start(&c, 4096, &out), 0);
	ck_assert_int_eq(sasl_client_step(&c, b64.data, b64.len, &out), 0);
	ck_assert_uint_gt(strlen(c.server_status), 10);
	ck_assert_uint_lt(strlen(c.server_status), sizeof(c.server_status));
	ck_assert(strspn(c.server_status, "x") == strlen(c.server_status));
	strbuf_free(&json);
	strbuf_free(&b64);
	strbuf_free(&out);
}
END_TEST

/* ---- the credential helper ---- */

static int fake_cred(void *ctx, char *buf, size_t len, char *err, size_t errlen)
{
	int *calls = ctx;

	if (++*calls > 1) {
		snprintf(err, errlen, "no more");
		return -1;
	}
	ck_assert_uint_eq(len, SASL_SECRET_MAX);
	snprintf(buf, len, "tok%d", *calls);
	return 0;
}

/* sasl_secret_get() passes the callback's secret or its error on. */
START_TEST(test_secret_get)
{
	int calls = 0;
	struct sasl_credential cred = {fake_cred, &calls};
	char err[64];
	char *secret;

	secret = sasl_secret_get(&cred, err, sizeof(err));
	ck_assert_ptr_nonnull(secret);
	ck_assert_str_eq(secret, "tok1");
	sasl_secret_free(secret);
	ck_assert_ptr_null(sasl_secret_get(&cred, err, sizeof(err)));
	ck_assert_str_eq(err, "no more");
	cred.get = NULL;
	ck_assert_ptr_null(sasl_secret_get(&cred, err, sizeof(err)));
	ck_assert_uint_gt(strlen(err), 0);
	sasl_secret_free(NULL);
}
END_TEST

Suite *sasl_suite(void)
{
	Suite *s = suite_create("sasl");
	TCase *tc = tcase_create("sasl");

	tcase_add_loop_test(tc, test_base64_vectors, 0,
			    sizeof(b64_vectors) / sizeof(b64_vectors[0]));
	tcase_add_loop_test(tc, test_unbase64, 0,
			    sizeof(unb64_cases) / sizeof(unb64_cases[0]));
	tcase_add_test(tc, test_names);
	tcase_add_loop_test(tc, test_initial_vectors, 0,
			    sizeof(initial_vectors) /
				    sizeof(initial_vectors[0]));
	tcase_add_loop_test(tc, test_initial_deferred, 0,
			    sizeof(initial_vectors) /
				    sizeof(initial_vectors[0]));
	tcase_add_test(tc, test_challenge_before_credentials);
	tcase_add_loop_test(tc, test_bad_fields, 0,
			    sizeof(bad_fields) / sizeof(bad_fields[0]));
	tcase_add_loop_test(tc, test_error_challenge, 0,
			    sizeof(error_challenges) /
				    sizeof(error_challenges[0]));
	tcase_add_test(tc, test_error_status_long);
	tcase_add_test(tc, test_secret_get);
	suite_add_tcase(s, tc);
	return s;
}
