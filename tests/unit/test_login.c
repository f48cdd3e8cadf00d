// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of login, the login driver IMAP and POP3 share, against a
 * scripted protocol: the way chosen from -o auth= and the offer, the
 * lines it sends and what the trace shows of them, the failure texts,
 * and that the secret is not asked for when no way to log in is left.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "login.h"
#include "sasl.h"

/* The scripted protocol: the challenges it hands out, what it got. */
struct test_login_proto {
	const char *const *chals; /* NULL-ended; then the final answer */
	size_t next;
	int final; /* 0: logged in; -1: refused with said */
	const char *said;
	bool refused; /* the last failure was a refusal */
	char lines[4][128], traces[4][128];
	enum login_line kinds[4];
	size_t n_lines;
	bool password_used;
	enum login_err kind;
	char text[512];
	unsigned secrets; /* how often the credential was asked */
};

/* The credential: always "secret", counting the calls. */
static int test_login_secret(void *ctx, char *buf, size_t len, char *err,
			     size_t errlen)
{
	struct test_login_proto *t = ctx;

	(void)err;
	(void)errlen;
	t->secrets++;
	snprintf(buf, len, "secret");
	return 0;
}

/* The password command: always refused. */
static int test_login_password(void *ctx, const char *user, const char *secret)
{
	struct test_login_proto *t = ctx;

	ck_assert_str_eq(user, "alice");
	ck_assert_str_eq(secret, "secret");
	t->password_used = true;
	t->refused = true;
	return -1;
}

/* Keeps each line sent and its trace ("" when the line itself). */
static int test_login_send(void *ctx, const char *line, const char *trace,
			   enum login_line kind)
{
	struct test_login_proto *t = ctx;

	ck_assert((kind != LOGIN_LINE_RESPONSE) == (t->n_lines == 0));
	ck_assert_uint_lt(t->n_lines, 4);
	t->kinds[t->n_lines] = kind;
	snprintf(t->lines[t->n_lines], sizeof(t->lines[0]), "%s", line);
	snprintf(t->traces[t->n_lines], sizeof(t->traces[0]), "%s",
		 trace ? trace : "");
	t->n_lines++;
	return 0;
}

/* Hands out the scripted challenges, then the final answer. */
static int test_login_challenge(void *ctx, const char **chal_r, size_t *len_r)
{
	struct test_login_proto *t = ctx;

	if (t->chals && t->chals[t->next]) {
		*chal_r = t->chals[t->next++];
		*len_r = strlen(*chal_r);
		return 1;
	}
	t->refused = t->final < 0;
	return t->final;
}

/* A failure is a refusal when the script says so. */
static bool test_login_refused(void *ctx, char *text, size_t size)
{
	struct test_login_proto *t = ctx;

	snprintf(text, size, "%s", t->said ? t->said : "");
	return t->refused;
}

/* Keeps the failure recorded. */
static void test_login_fail(void *ctx, enum login_err kind, int errnum,
			    const char *text)
{
	struct test_login_proto *t = ctx;

	(void)errnum;
	t->kind = kind;
	snprintf(t->text, sizeof(t->text), "%s", text);
}

/* The operations login_run() drives, in struct login_ops order. */
static const struct login_ops test_login_ops = {
	"AUTHENTICATE",	      "AUTH=",
	test_login_password,  test_login_send,
	test_login_challenge, test_login_refused,
	test_login_fail};

/* Runs one login as alice on h with auth, the mechanisms mechs offered
 * (named offered), room ir_line_max for the initial response. */
static int test_login_run(struct test_login_proto *t, enum sasl_auth auth,
			  unsigned mechs, const char *offered,
			  size_t ir_line_max, const char *disabled)
{
	const struct sasl_credential cred = {test_login_secret, t};
	const struct login_user who = {"h", "143", "alice", auth, &cred};
	const struct login_offer offer = {mechs, offered, ir_line_max,
					  disabled};

	return login_run(&test_login_ops, t, &who, &offer);
}

/* A forced mechanism the server does not offer fails naming what it
 * offers, before the secret is asked for. */
START_TEST(test_login_not_offered)
{
	struct test_login_proto t = {0};

	ck_assert_int_eq(test_login_run(&t, SASL_AUTH_XOAUTH2,
					1u << SASL_MECH_PLAIN, "PLAIN LOGIN",
					SIZE_MAX, NULL),
			 -1);
	ck_assert_int_eq(t.kind, LOGIN_ERR_AUTH);
	ck_assert_str_eq(t.text, "h does not offer AUTH=XOAUTH2 (-o "
				 "auth=xoauth2); it offers PLAIN LOGIN");
	ck_assert_uint_eq(t.secrets, 0);
	ck_assert_uint_eq(t.n_lines, 0);

	memset(&t, 0, sizeof(t));
	ck_assert_int_eq(
		test_login_run(&t, SASL_AUTH_DEFAULT, 0, "", 0, "LOGIN"), -1);
	ck_assert_str_eq(t.text, "h disables LOGIN and offers no AUTH=PLAIN");
	ck_assert_uint_eq(t.secrets, 0);
}
END_TEST

/* PLAIN with room for the initial response: one line, its trace
 * without the credentials; the whole exchange (a command may go with
 * it: imap_open_then()). */
START_TEST(test_login_plain_inline)
{
	struct test_login_proto t = {0};

	ck_assert_int_eq(test_login_run(&t, SASL_AUTH_DEFAULT,
					1u << SASL_MECH_PLAIN, "PLAIN",
					SIZE_MAX, NULL),
			 0);
	ck_assert_uint_eq(t.n_lines, 1);
	ck_assert_str_eq(t.lines[0], "AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==");
	ck_assert_str_eq(t.traces[0],
			 "AUTHENTICATE PLAIN <credentials hidden>");
	ck_assert_int_eq(t.kinds[0], LOGIN_LINE_WHOLE);
	ck_assert_uint_eq(t.secrets, 1);
}
END_TEST

/* Without room, the response follows the server's empty challenge; a
 * refusal then names the user, the host and what the server said. */
START_TEST(test_login_plain_deferred_refused)
{
	static const char *const chals[] = {"", NULL};
	struct test_login_proto t = {
		.chals = chals, .final = -1, .said = "wrong password"};

	ck_assert_int_eq(test_login_run(&t, SASL_AUTH_PLAIN,
					1u << SASL_MECH_PLAIN, "PLAIN", 0,
					NULL),
			 -1);
	ck_assert_uint_eq(t.n_lines, 2);
	ck_assert_str_eq(t.lines[0], "AUTHENTICATE PLAIN");
	ck_assert_str_eq(t.traces[0], "AUTHENTICATE PLAIN");
	ck_assert_int_eq(t.kinds[0], LOGIN_LINE_START);
	ck_assert_str_eq(t.lines[1], "AGFsaWNlAHNlY3JldA==");
	ck_assert_str_eq(t.traces[1], "<credentials hidden>");
	ck_assert_int_eq(t.kind, LOGIN_ERR_REFUSED);
	ck_assert_str_eq(t.text, "login as alice on h failed: wrong password");
}
END_TEST

/* A challenge after PLAIN's credentials is answered with "*" (cancel);
 * the refusal that follows says why the client gave up. */
START_TEST(test_login_cancel)
{
	static const char *const chals[] = {"Zm9v", NULL};
	struct test_login_proto t = {
		.chals = chals, .final = -1, .said = "cancelled"};

	ck_assert_int_eq(test_login_run(&t, SASL_AUTH_DEFAULT,
					1u << SASL_MECH_PLAIN, "PLAIN",
					SIZE_MAX, NULL),
			 -1);
	ck_assert_uint_eq(t.n_lines, 2);
	ck_assert_str_eq(t.lines[1], "*");
	ck_assert_str_eq(t.traces[1], "");
	ck_assert_str_eq(t.text, "login as alice on h failed (PLAIN: the "
				 "server sent a challenge after the "
				 "credentials): cancelled");
}
END_TEST

/* The password command when SASL PLAIN is not offered; its refusal is
 * made clear the same way. */
START_TEST(test_login_password_refused)
{
	struct test_login_proto t = {.said = "no"};

	ck_assert_int_eq(test_login_run(&t, SASL_AUTH_DEFAULT, 0, "", 0, NULL),
			 -1);
	ck_assert(t.password_used);
	ck_assert_uint_eq(t.n_lines, 0);
	ck_assert_str_eq(t.text, "login as alice on h failed: no");
}
END_TEST

/* Server text is cleaned to printable ASCII; the list of mechanisms
 * grows while it fits. */
START_TEST(test_login_text)
{
	char buf[8], list[12] = "";

	login_clean_text(buf, sizeof(buf), "a\033[1mb\n", 7);
	ck_assert_str_eq(buf, "a?[1mb?");
	login_add_mech(list, sizeof(list), "PLAIN", 5);
	login_add_mech(list, sizeof(list), "", 0);
	login_add_mech(list, sizeof(list), "X\001", 2);
	login_add_mech(list, sizeof(list), "TOOLONG", 7);
	ck_assert_str_eq(list, "PLAIN X?");
}
END_TEST

Suite *login_suite(void)
{
	Suite *s = suite_create("login");
	TCase *tc = tcase_create("login");

	tcase_add_test(tc, test_login_not_offered);
	tcase_add_test(tc, test_login_plain_inline);
	tcase_add_test(tc, test_login_plain_deferred_refused);
	tcase_add_test(tc, test_login_cancel);
	tcase_add_test(tc, test_login_password_refused);
	tcase_add_test(tc, test_login_text);
	suite_add_tcase(s, tc);
	return s;
}
