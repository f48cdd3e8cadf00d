// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_pop3_session: one POP3 session (pop3.c) against a server whose
 * answers come from the fuzzer, over the fake network of fuzz_net.h.
 *
 * The server sends "+OK" and an answer to CAPA first; the first input
 * byte picks which capabilities (see fuzz_pop3_session_greeting()); the
 * rest of the input is everything it sends after that, from the answer
 * to the login on. The client logs in, lists (UIDL + LIST), retrieves
 * the first messages (pipelined when the server allows), deletes one,
 * then QUIT, as the POP3 store does. The callbacks check what
 * pop3.h promises; ASan, UBSan and LeakSanitizer the rest.
 *
 * Kept apart from the other targets: the login API is expected to
 * change, and only this file would need to follow.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_net.h"
#include "pop3.h"
#include "log.h"

/* The session's credential callback: the secret is its context. */
static int fuzz_pop3_session_secret(void *ctx, char *buf, size_t len, char *err,
				    size_t errlen)
{
	(void)err;
	(void)errlen;
	snprintf(buf, len, "%s", (const char *)ctx);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_POP3_SESSION_TIMEOUT_MS 100
/* The most RETR may deliver here: small, so the bound is reached. */
#define FUZZ_POP3_SESSION_MAX 4096

/* Stops the run, naming the promise that was broken. */
#define FUZZ_POP3_SESSION_CHECK(cond)                                     \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "fuzz_pop3_session: %s:%d: %s\n", \
				__FILE__, __LINE__, #cond);               \
			abort();                                          \
		}                                                         \
	} while (0)

/* Where read bytes are summed to, so that reading them is not
 * optimised away. */
static volatile unsigned char fuzz_pop3_session_sink;

/* What one RETR handed to its writer. */
struct fuzz_pop3_session_retr {
	uint64_t got;
	unsigned calls;
	unsigned abort_after; /* 0: never abort */
};

/* RETR's writer: counts the bytes (reading each, for ASan), and aborts
 * after abort_after calls when asked to. */
static int fuzz_pop3_session_write(void *ctx, const char *data, size_t len)
{
	struct fuzz_pop3_session_retr *r = ctx;
	unsigned char sum = 0;
	size_t i;

	FUZZ_POP3_SESSION_CHECK(data != NULL || len == 0);
	for (i = 0; i < len; i++)
		sum += (unsigned char)data[i];
	fuzz_pop3_session_sink = sum;
	if (r->abort_after && ++r->calls >= r->abort_after)
		return -1; /* these bytes are not delivered */
	r->got += len;
	FUZZ_POP3_SESSION_CHECK(r->got <= FUZZ_POP3_SESSION_MAX);
	return 0;
}

/* Checks a listing as pop3_list() promises it: sorted by number, sizes
 * and UIDLs within bounds, no UIDL twice. */
static void fuzz_pop3_session_check_list(const struct pop3_msg *m, size_t n)
{
	size_t i, j, len;

	FUZZ_POP3_SESSION_CHECK(n <= POP3_MAX_COUNT);
	for (i = 0; i < n; i++) {
		len = strnlen(m[i].uidl, sizeof(m[i].uidl));
		FUZZ_POP3_SESSION_CHECK(len > 0 && len <= POP3_MAX_UIDL);
		FUZZ_POP3_SESSION_CHECK(m[i].size <= POP3_MAX_MESSAGE);
		FUZZ_POP3_SESSION_CHECK(m[i].num >= 1 &&
					m[i].num <= POP3_MAX_COUNT);
		if (i)
			FUZZ_POP3_SESSION_CHECK(m[i - 1].num < m[i].num);
		for (j = 0; j < i && n <= 64; j++)
			FUZZ_POP3_SESSION_CHECK(strcmp(m[i].uidl, m[j].uidl));
	}
}

/*
 * The greeting and the answer to CAPA. The bits of sel: SASL PLAIN,
 * PIPELINING, CAPA refused (-ERR, an old server), and RETR's writer
 * aborting after its first call.
 */
static size_t fuzz_pop3_session_greeting(unsigned sel, char *buf, size_t size)
{
	if (sel & 4)
		return (size_t)snprintf(buf, size,
					"+OK fuzz ready\r\n-ERR no CAPA\r\n");
	return (size_t)snprintf(buf, size,
				"+OK fuzz ready\r\n+OK\r\nTOP\r\nUIDL\r\n"
				"USER\r\n%s%s.\r\n",
				sel & 1 ? "SASL PLAIN\r\n" : "",
				sel & 2 ? "PIPELINING\r\n" : "");
}

/* Lists, retrieves and deletes as the POP3 store does, then QUIT. */
static void fuzz_pop3_session_run(struct pop3_session *s, unsigned sel)
{
	struct fuzz_pop3_session_retr r = {0, 0, sel & 8 ? 1 : 0};
	struct pop3_msg *msgs = NULL;
	unsigned first = 1, second = 2;
	uint64_t got = 0;
	size_t n = 0;

	if (pop3_list(s, &msgs, &n) == 0) {
		FUZZ_POP3_SESSION_CHECK((n == 0) == (msgs == NULL));
		fuzz_pop3_session_check_list(msgs, n);
		if (n > 0)
			first = msgs[0].num;
		if (n > 1)
			second = msgs[1].num;
	} else {
		FUZZ_POP3_SESSION_CHECK(msgs == NULL && n == 0);
	}
	free(msgs);
	if (pop3_retr_send(s, first) == 0)
		pop3_retr_read(s, first, FUZZ_POP3_SESSION_MAX,
			       fuzz_pop3_session_write, &r, &got);
	FUZZ_POP3_SESSION_CHECK(got == r.got);
	if (pop3_usable(s) && pop3_can_pipeline(s)) {
		r = (struct fuzz_pop3_session_retr){0, 0, 0};
		if (pop3_retr_send(s, second) == 0 &&
		    pop3_dele_send(s, first) == 0) {
			pop3_retr_read(s, second, FUZZ_POP3_SESSION_MAX,
				       fuzz_pop3_session_write, &r, NULL);
			pop3_status_read(s);
		}
	} else {
		pop3_dele(s, first);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pop3_config cfg = {
		.host = "fuzz.invalid",
		.port = "110",
		.user = "user",
		.credential = {fuzz_pop3_session_secret, (void *)"secret"},
		.tls = POP3_TLS_NONE,
		.timeout_ms = FUZZ_POP3_SESSION_TIMEOUT_MS,
	};
	struct pop3_session *s = NULL;
	struct pop3_error err;
	char *script;
	size_t n;

	if (size == 0)
		return 0;
	/* The trace is always built (that code sees every response too);
	 * FUZZ_TRACE=1 shows it, to check what a seed reaches. */
	cfg.trace = true;
	if (getenv("FUZZ_TRACE"))
		log_init(true);
	script = malloc(256 + size);
	if (!script)
		return 0;
	n = fuzz_pop3_session_greeting(data[0], script, 256);
	memcpy(script + n, data + 1, size - 1);
	if (fuzz_net_script(script, n + size - 1) < 0) {
		free(script);
		return 0;
	}
	free(script);
	if (pop3_open(&cfg, &s, &err) == 0) {
		FUZZ_POP3_SESSION_CHECK(s != NULL);
		fuzz_pop3_session_run(s, data[0]);
		if (pop3_quit(s, &err) < 0)
			FUZZ_POP3_SESSION_CHECK(err.kind != POP3_ERR_NONE);
	} else {
		FUZZ_POP3_SESSION_CHECK(s == NULL);
		FUZZ_POP3_SESSION_CHECK(err.kind != POP3_ERR_NONE);
	}
	FUZZ_POP3_SESSION_CHECK(memchr(err.text, '\0', sizeof(err.text)));
	fuzz_net_end();
	return 0;
}
