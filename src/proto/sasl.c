// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sasl: client responses for PLAIN, XOAUTH2 and OAUTHBEARER; see sasl.h.
 *
 * The messages (before base64):
 *   PLAIN        "" NUL user NUL password                  (RFC 4616)
 *   XOAUTH2      "user=" user ^A "auth=Bearer " token ^A ^A
 *   OAUTHBEARER  "n,a=" saslname "," ^A "host=" host ^A "port=" port ^A
 *                "auth=Bearer " token ^A ^A                 (RFC 7628)
 * where ^A is the byte 0x01. On failure an OAuth2 server sends one
 * challenge, a JSON object with a "status", and waits for the client to
 * acknowledge it before it fails the command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sasl.h"
#include "strbuf.h"

char *sasl_secret_get(const struct sasl_credential *cred, char *err,
		      size_t errlen)
{
	char *buf = malloc(SASL_SECRET_MAX);

	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	err[0] = '\0';
	if (!cred->get ||
	    cred->get(cred->ctx, buf, SASL_SECRET_MAX, err, errlen) < 0) {
		if (!err[0])
			snprintf(err, errlen, "no password or token to log in");
		sasl_secret_free(buf);
		return NULL;
	}
	buf[SASL_SECRET_MAX - 1] = '\0';
	return buf;
}

void sasl_secret_free(char *secret)
{
	if (!secret)
		return;
	explicit_bzero(secret, SASL_SECRET_MAX);
	free(secret);
}

static const char *const sasl_mech_names[] = {
	[SASL_MECH_PLAIN] = "PLAIN",
	[SASL_MECH_XOAUTH2] = "XOAUTH2",
	[SASL_MECH_OAUTHBEARER] = "OAUTHBEARER",
};

#define SASL_N_MECHS (sizeof(sasl_mech_names) / sizeof(sasl_mech_names[0]))

const char *sasl_mech_name(enum sasl_mech mech)
{
	return (size_t)mech < SASL_N_MECHS ? sasl_mech_names[mech] : "?";
}

bool sasl_mech_lookup(const char *name, size_t len, enum sasl_mech *mech_r)
{
	size_t i;

	for (i = 0; i < SASL_N_MECHS; i++) {
		if (strlen(sasl_mech_names[i]) == len &&
		    strncasecmp(name, sasl_mech_names[i], len) == 0) {
			*mech_r = (enum sasl_mech)i;
			return true;
		}
	}
	return false;
}

bool sasl_auth_mech(enum sasl_auth auth, enum sasl_mech *mech_r)
{
	switch (auth) {
	case SASL_AUTH_PLAIN:
		*mech_r = SASL_MECH_PLAIN;
		return true;
	case SASL_AUTH_XOAUTH2:
		*mech_r = SASL_MECH_XOAUTH2;
		return true;
	case SASL_AUTH_OAUTHBEARER:
		*mech_r = SASL_MECH_OAUTHBEARER;
		return true;
	case SASL_AUTH_DEFAULT:
	case SASL_AUTH_LOGIN:
		break;
	}
	return false;
}

bool sasl_auth_is_oauth(enum sasl_auth auth)
{
	return auth == SASL_AUTH_XOAUTH2 || auth == SASL_AUTH_OAUTHBEARER;
}

const char *sasl_auth_name(enum sasl_auth auth)
{
	switch (auth) {
	case SASL_AUTH_DEFAULT:
		break;
	case SASL_AUTH_PLAIN:
		return "plain";
	case SASL_AUTH_LOGIN:
		return "login";
	case SASL_AUTH_XOAUTH2:
		return "xoauth2";
	case SASL_AUTH_OAUTHBEARER:
		return "oauthbearer";
	}
	return "default";
}

void sasl_client_init(struct sasl_client *c, enum sasl_mech mech,
		      const char *user, const char *secret, const char *host,
		      const char *port)
{
	memset(c, 0, sizeof(*c));
	c->mech = mech;
	c->user = user;
	c->secret = secret;
	c->host = host;
	c->port = port;
	c->state = SASL_STATE_START;
}

/* Gives up the exchange with a reason; always returns -1. */
static int sasl_client_abort(struct sasl_client *c, const char *why)
{
	snprintf(c->error, sizeof(c->error), "%s: %s", sasl_mech_name(c->mech),
		 why);
	c->state = SASL_STATE_ABORTED;
	c->secret_out = false;
	return -1;
}

/*
 * Checks that the OAuth2 fields fit their message: the user must hold no
 * control byte (^A separates the fields), the token must be a non-empty
 * run of visible ASCII (RFC 6750's b64token is narrower still). A token
 * with a space or a line break in it usually means the token command
 * printed something else, so that is said.
 */
static int sasl_client_check_oauth(struct sasl_client *c)
{
	const unsigned char *p;

	for (p = (const unsigned char *)c->user; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return sasl_client_abort(
				c, "the user name holds a control character");
	if (!c->secret[0])
		return sasl_client_abort(c, "the access token is empty");
	for (p = (const unsigned char *)c->secret; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return sasl_client_abort(
				c, "the access token holds a space or a "
				   "character that is not ASCII (does the "
				   "token command print only the token?)");
	return 0;
}

/* Appends user as an RFC 5801 saslname: ',' and '=' escaped. */
static void sasl_client_saslname(struct strbuf *b, const char *user)
{
	for (; *user; user++) {
		if (*user == ',')
			strbuf_puts(b, "=2C");
		else if (*user == '=')
			strbuf_puts(b, "=3D");
		else
			strbuf_append(b, user, 1);
	}
}

/* Appends the mechanism's initial message (not yet base64) to raw. */
static void sasl_client_message(const struct sasl_client *c, struct strbuf *raw)
{
	switch (c->mech) {
	case SASL_MECH_PLAIN:
		strbuf_append(raw, "", 1);
		strbuf_puts(raw, c->user);
		strbuf_append(raw, "", 1);
		strbuf_puts(raw, c->secret);
		break;
	case SASL_MECH_XOAUTH2:
		strbuf_printf(raw, "user=%s\001auth=Bearer %s\001\001", c->user,
			      c->secret);
		break;
	case SASL_MECH_OAUTHBEARER:
		strbuf_puts(raw, "n,a=");
		sasl_client_saslname(raw, c->user);
		strbuf_printf(raw,
			      ",\001host=%s\001port=%s\001auth=Bearer %s"
			      "\001\001",
			      c->host, c->port, c->secret);
		break;
	}
}

/* Appends the base64 initial response to out: 0, or -1 when memory ran
 * out. The plain message is wiped. */
static int sasl_client_initial(struct sasl_client *c, struct strbuf *out)
{
	struct strbuf raw = {0};
	bool failed;

	sasl_client_message(c, &raw);
	strbuf_base64(out, raw.data, raw.len);
	failed = strbuf_failed(&raw) || strbuf_failed(out);
	strbuf_wipe(&raw);
	if (failed)
		return sasl_client_abort(c, "out of memory");
	c->state = SASL_STATE_SENT;
	c->secret_out = true;
	return 0;
}

int sasl_client_start(struct sasl_client *c, size_t max, struct strbuf *out)
{
	struct strbuf raw = {0};
	size_t b64len;

	if (c->mech != SASL_MECH_PLAIN && sasl_client_check_oauth(c) < 0)
		return -1;
	/* The length the message will have in base64, without making it. */
	sasl_client_message(c, &raw);
	b64len = (raw.len + 2) / 3 * 4;
	strbuf_wipe(&raw);
	if (b64len > max) {
		c->state = SASL_STATE_WAIT_EMPTY;
		c->secret_out = false;
		return 0;
	}
	return sasl_client_initial(c, out);
}

/* Reads a JSON string starting at its opening quote s[*i]: its contents
 * (escapes reduced to the escaped byte) go to out, cut to size. *i ends
 * after the closing quote. False when the string does not end. */
static bool sasl_json_string(const char *s, size_t len, size_t *i, char *out,
			     size_t size)
{
	size_t n = 0;

	for ((*i)++; *i < len; (*i)++) {
		char ch = s[*i];

		if (ch == '"') {
			(*i)++;
			if (size)
				out[n] = '\0';
			return true;
		}
		if (ch == '\\' && ++(*i) >= len)
			break;
		ch = s[*i];
		if (n + 1 < size)
			out[n++] = ch;
	}
	return false;
}

/* Skips JSON white space. */
static void sasl_json_space(const char *s, size_t len, size_t *i)
{
	while (*i < len && s[*i] && strchr(" \t\r\n", s[*i]))
		(*i)++;
}

/*
 * Finds the value of the top-level member "status" of the JSON object
 * [s, s+len) (a string, or a bare number): copied to out with anything
 * but printable ASCII replaced by '?'. out is "" when there is none.
 */
static void sasl_json_status(const char *s, size_t len, char *out, size_t size)
{
	char key[16], val[64];
	size_t i = 0, j, n;
	int depth = 0;

	out[0] = '\0';
	while (i < len) {
		if (s[i] == '{' || s[i] == '[') {
			depth++;
			i++;
			continue;
		}
		if (s[i] == '}' || s[i] == ']') {
			depth--;
			i++;
			continue;
		}
		if (s[i] != '"') {
			i++;
			continue;
		}
		if (!sasl_json_string(s, len, &i, key, sizeof(key)))
			return;
		sasl_json_space(s, len, &i);
		if (depth != 1 || i >= len || s[i] != ':' ||
		    strcmp(key, "status") != 0)
			continue;
		i++;
		sasl_json_space(s, len, &i);
		if (i < len && s[i] == '"') {
			if (!sasl_json_string(s, len, &i, val, sizeof(val)))
				return;
		} else {
			for (n = 0; i < len && n + 1 < sizeof(val) && s[i] &&
				    !strchr(",}] \t\r\n", s[i]);
			     i++)
				val[n++] = s[i];
			val[n] = '\0';
		}
		for (j = 0; val[j] && j + 1 < size; j++)
			out[j] = (val[j] >= 0x20 && val[j] < 0x7f) ? val[j]
								   : '?';
		out[j] = '\0';
		return;
	}
}

/* Reads an OAuth2 error challenge and acknowledges it. */
static int sasl_client_oauth_error(struct sasl_client *c, const char *chal,
				   size_t len, struct strbuf *out)
{
	struct strbuf json = {0};

	if (strbuf_unbase64(&json, chal, len) && !strbuf_failed(&json))
		sasl_json_status(json.data ? json.data : "", json.len,
				 c->server_status, sizeof(c->server_status));
	strbuf_free(&json);
	/* RFC 7628 3.2.3: the dummy client response is a lone ^A (base64
	 * "AQ=="); Google's XOAUTH2 wants an empty response. */
	if (c->mech == SASL_MECH_OAUTHBEARER)
		strbuf_puts(out, "AQ==");
	if (strbuf_failed(out))
		return sasl_client_abort(c, "out of memory");
	c->state = SASL_STATE_ACKED;
	c->secret_out = false;
	return 0;
}

int sasl_client_step(struct sasl_client *c, const char *challenge, size_t len,
		     struct strbuf *out)
{
	switch (c->state) {
	case SASL_STATE_WAIT_EMPTY:
		if (len != 0)
			return sasl_client_abort(
				c, "the server sent a challenge before the "
				   "credentials");
		return sasl_client_initial(c, out);
	case SASL_STATE_SENT:
		if (c->mech == SASL_MECH_PLAIN)
			return sasl_client_abort(
				c, "the server sent a challenge after the "
				   "credentials");
		return sasl_client_oauth_error(c, challenge, len, out);
	case SASL_STATE_ACKED:
		return sasl_client_abort(
			c, "the server sent another challenge after its error");
	case SASL_STATE_START:
	case SASL_STATE_ABORTED:
		break;
	}
	return sasl_client_abort(c, "challenge out of turn");
}
