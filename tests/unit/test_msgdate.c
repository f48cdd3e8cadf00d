// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for msgdate: Date: values from a table, valid and not,
 * then where in a message the Date: header is looked for. Every message
 * is handed over in a buffer of exactly its length, without a final
 * NUL, so that a read past the end shows under ASan.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msgdate.h"

/* Called by the runner (tests/unit/main.c). */
Suite *msgdate_suite(void);

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* A bit more than MSGDATE_MAX_HEADER, for the headers that are longer. */
#define LONG_HEADER (MSGDATE_MAX_HEADER + 4096)

/* "YYYY-MM-DDThh:mm:ss" (UTC) as time_t, by timegm(), which msgdate.c
 * does not use, so that the expected values come from elsewhere. */
static time_t utc(const char *iso)
{
	struct tm tm = {0};
	int n = 0;

	ck_assert_int_eq(sscanf(iso, "%d-%d-%dT%d:%d:%d%n", &tm.tm_year,
				&tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
				&tm.tm_min, &tm.tm_sec, &n),
			 6);
	ck_assert_uint_eq((size_t)n, strlen(iso));
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return timegm(&tm);
}

/* Runs msgdate_parse() on a malloc'd copy of the len bytes at msg, with
 * no NUL after them. Returns what it returns; *t_r is left alone on
 * failure, as it should be, and checked to be. */
static bool parse_copy(const char *msg, size_t len, time_t *t_r)
{
	const time_t unset = (time_t)-12345;
	char *copy = malloc(len ? len : 1);
	bool ok;

	ck_assert_ptr_nonnull(copy);
	memcpy(copy, msg, len);
	*t_r = unset;
	ok = msgdate_parse(copy, len, t_r);
	if (!ok)
		ck_assert(*t_r == unset);
	free(copy);
	return ok;
}

/* A Date: value and the UTC time it gives, NULL if refused. */
static const struct {
	const char *date;
	const char *utc;
} dates[] = {
	/* the plain RFC 5322 form, and its optional parts */
	{"Mon, 01 Jan 2024 10:00:00 +0000", "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00:00 +0000", "2024-01-01T10:00:00"},
	{"1 Jan 2024 10:00:00 +0000", "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00 +0000", "2024-01-01T10:00:00"},
	{"Mon 1 Jan 2024 10:00:00 +0000", "2024-01-01T10:00:00"},
	{"Mon,1 Jan 2024 10:00:00 +0000", "2024-01-01T10:00:00"},
	{"  Mon,\t 1  Jan\t2024   10:00:00   +0000  ", "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 9:05:07 +0000", "2024-01-01T09:05:07"},
	{"Mon, 1 Jan 2024 10 : 00 : 00 +0000", "2024-01-01T10:00:00"},
	/* names in any case, full names too, day name not checked */
	{"mon, 01 jan 2024 10:00:00 +0000", "2024-01-01T10:00:00"},
	{"MON, 01 JAN 2024 10:00:00 +0000", "2024-01-01T10:00:00"},
	{"Monday, 1 January 2024 10:00:00 +0000", "2024-01-01T10:00:00"},
	{"Fri, 1 Jan 2024 10:00:00 +0000", "2024-01-01T10:00:00"},
	{"Wed, 18 Sep 2024 10:00:00 +0000", "2024-09-18T10:00:00"},
	{"1-Jan-2024 10:00:00 +0000", "2024-01-01T10:00:00"},
	/* numeric zones */
	{"Mon, 1 Jan 2024 12:00:00 +0200", "2024-01-01T10:00:00"},
	{"Sun, 31 Dec 2023 23:30:00 -0130", "2024-01-01T01:00:00"},
	{"Mon, 1 Jan 2024 00:15:00 +0545", "2023-12-31T18:30:00"},
	{"Mon, 1 Jan 2024 10:00:00 -0000", "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00:00 +2359", "2023-12-31T10:01:00"},
	/* named zones, obsolete but still seen */
	{"Mon, 1 Jan 2024 10:00:00 GMT", "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00:00 UT", "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00:00 UTC", "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00:00 Z", "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00:00 gmt", "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 05:00:00 EST", "2024-01-01T10:00:00"},
	{"Mon, 1 Jul 2024 06:00:00 EDT", "2024-07-01T10:00:00"},
	{"Mon, 1 Jan 2024 04:00:00 CST", "2024-01-01T10:00:00"},
	{"Mon, 1 Jul 2024 05:00:00 CDT", "2024-07-01T10:00:00"},
	{"Mon, 1 Jan 2024 03:00:00 MST", "2024-01-01T10:00:00"},
	{"Mon, 1 Jul 2024 04:00:00 MDT", "2024-07-01T10:00:00"},
	{"Mon, 1 Jan 2024 02:00:00 PST", "2024-01-01T10:00:00"},
	{"Mon, 1 Jul 2024 03:00:00 PDT", "2024-07-01T10:00:00"},
	/* military letters and unknown names: +0000 (RFC 5322 4.3) */
	{"Mon, 1 Jan 2024 10:00:00 A", "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00:00 m", "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00:00 Y", "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00:00 CET", "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00:00 CEST", "2024-01-01T10:00:00"},
	/* no zone */
	{"Mon, 1 Jan 2024 10:00:00", "2024-01-01T10:00:00"},
	{"1 Jan 2024 10:00", "2024-01-01T10:00:00"},
	/* comments */
	{"Mon, 1 Jan 2024 11:00:00 +0100 (CET)", "2024-01-01T10:00:00"},
	{"(a)Mon(b),(c)1(d)Jan(e)2024(f)10(g):(h)00(i):(j)00(k)+0000(l)",
	 "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00:00 +0000 (a (nested) comment)",
	 "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00:00 +0000 (quoted \\) paren)",
	 "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00:00 +0000 (not closed", "2024-01-01T10:00:00"},
	{"Mon, 1 Jan 2024 10:00:00 +0000 (a) (b)", "2024-01-01T10:00:00"},
	/* years of 2 and 3 digits */
	{"Mon, 01 Jan 24 10:00:00 +0000", "2024-01-01T10:00:00"},
	{"Mon, 01 Jan 00 10:00:00 +0000", "2000-01-01T10:00:00"},
	{"Tue, 01 Jan 49 10:00:00 +0000", "2049-01-01T10:00:00"},
	{"Fri, 31 Dec 99 23:59:59 +0000", "1999-12-31T23:59:59"},
	{"Sat, 1 Jan 70 00:00:00 +0000", "1970-01-01T00:00:00"},
	{"Sat, 1 Jan 100 00:00:00 GMT", "2000-01-01T00:00:00"},
	{"Sat, 1 Jan 124 00:00:00 GMT", "2024-01-01T00:00:00"},
	/* calendar and range edges */
	{"Thu, 29 Feb 2024 12:00:00 +0000", "2024-02-29T12:00:00"},
	{"Tue, 29 Feb 2000 12:00:00 +0000", "2000-02-29T12:00:00"},
	{"Sat, 31 Dec 2016 23:59:60 +0000", "2017-01-01T00:00:00"},
	{"Thu, 01 Jan 1970 00:00:00 +0000", "1970-01-01T00:00:00"},
	{"Thu, 01 Jan 1970 01:00:00 +0100", "1970-01-01T00:00:00"},
	{"Wed, 31 Dec 1969 23:00:00 -0100", "1970-01-01T00:00:00"},
	{"Tue, 19 Jan 2038 03:14:08 +0000", "2038-01-19T03:14:08"},
	{"Fri, 31 Dec 9999 23:59:59 +0000", "9999-12-31T23:59:59"},
	{"Fri, 31 Dec 9999 23:59:59 +0100", "9999-12-31T22:59:59"},

	/* refused: nothing, or no date */
	{"", NULL},
	{"   ", NULL},
	{"(only a comment)", NULL},
	{"garbage", NULL},
	{"yesterday", NULL},
	{"2024-01-01T10:00:00Z", NULL},
	{"Mon Jan  1 10:00:00 2024", NULL},
	/* fields out of range */
	{"Mon, 32 Jan 2024 10:00:00 +0000", NULL},
	{"Mon, 0 Jan 2024 10:00:00 +0000", NULL},
	{"Fri, 30 Feb 2024 10:00:00 +0000", NULL},
	{"Wed, 29 Feb 2023 10:00:00 +0000", NULL},
	{"Mon, 29 Feb 2100 10:00:00 +0000", NULL},
	{"Wed, 31 Apr 2024 10:00:00 +0000", NULL},
	{"Mon, 1 Jan 2024 25:00:00 +0000", NULL},
	{"Mon, 1 Jan 2024 24:00:00 +0000", NULL},
	{"Mon, 1 Jan 2024 10:60:00 +0000", NULL},
	{"Mon, 1 Jan 2024 10:00:61 +0000", NULL},
	{"Mon, 1 Jan 2024 10:00:00 +0060", NULL},
	{"Mon, 1 Jan 2024 10:00:00 +2400", NULL},
	/* bad names */
	{"Mon, 1 Foo 2024 10:00:00 +0000", NULL},
	{"Mon, 1 Ja 2024 10:00:00 +0000", NULL},
	{"Mon, 1 Janu 2024 10:00:00 +0000", NULL},
	{"Foo, 1 Jan 2024 10:00:00 +0000", NULL},
	{"Mo, 1 Jan 2024 10:00:00 +0000", NULL},
	{"Mon, 1 Jan 2024 10:00:00 J", NULL},
	{"Mon, 1 Jan 2024 10:00:00 Europe", NULL},
	/* bad numbers */
	{"Mon, 001 Jan 2024 10:00:00 +0000", NULL},
	{"Mon, 1 Jan 2 10:00:00 +0000", NULL},
	{"Mon, 1 Jan 12024 10:00:00 +0000", NULL},
	{"Mon, 1 Jan 202410:00:00 +0000", NULL},
	{"Mon, 1 Jan 2024 100:00:00 +0000", NULL},
	{"Mon, 1 Jan 2024 10:0:00 +0000", NULL},
	{"Mon, 1 Jan 2024 10:00:0 +0000", NULL},
	{"Mon, 1 Jan 2024 10:00:00 +000", NULL},
	{"Mon, 1 Jan 2024 10:00:00 +00000", NULL},
	{"Mon, 1 Jan 2024 10:00:00 0000", NULL},
	{"Mon, 1 Jan 2024 10:00:00 + 0000", NULL},
	{"Mon, 99999999999 Jan 2024 10:00:00 +0000", NULL},
	/* missing parts */
	{"Mon, 1 Jan 2024", NULL},
	{"Mon, 1 Jan 2024 10 +0000", NULL},
	{"Mon, 1 Jan 2024 10: +0000", NULL},
	{"Mon, 1 Jan 2024 +0000", NULL},
	{"Mon, Jan 2024 10:00:00 +0000", NULL},
	{"Mon, 1 2024 10:00:00 +0000", NULL},
	{"Mon, 1 Jan 10:00:00 +0000", NULL},
	/* more than space and comments after the zone */
	{"Mon, 1 Jan 2024 10:00:00 +0000 +0000", NULL},
	{"Mon, 1 Jan 2024 10:00:00 +0100 CET", NULL},
	{"Mon, 1 Jan 2024 10:00:00 +0000,", NULL},
	{"Mon, 1 Jan 2024 10:00:00 +0000 (a) b", NULL},
	{"Mon, 1 Jan 2024 10:00:00 +0000 x)", NULL},
	{"Mon, 1 Jan 2024 10:00:00:00 +0000", NULL},
	{"Mon,, 1 Jan 2024 10:00:00 +0000", NULL},
	{"Mon, 1 - - Jan 2024 10:00:00 +0000", NULL},
	/* before 1970 or after 9999 (UTC) */
	{"Wed, 31 Dec 1969 23:59:59 +0000", NULL},
	{"Thu, 01 Jan 1970 00:30:00 +0100", NULL},
	{"Mon, 1 Jan 1900 10:00:00 +0000", NULL},
	{"Mon, 1 Jan 0000 10:00:00 +0000", NULL},
	{"Fri, 31 Dec 69 23:59:59 +0000", NULL},
	{"Sat, 1 Jan 50 00:00:00 +0000", NULL},
	{"Fri, 1 Jan 000 00:00:00 +0000", NULL},
	{"Fri, 31 Dec 9999 23:00:00 -0100", NULL},
	{"Fri, 31 Dec 9999 23:59:60 +0000", NULL},
};

/* Each Date: value of the table, in a message of its own. */
START_TEST(test_dates)
{
	char msg[256];
	time_t t;
	bool ok;
	int n;

	n = snprintf(msg, sizeof(msg), "From: a@b\r\nDate: %s\r\n\r\nbody\r\n",
		     dates[_i].date);
	ck_assert(n > 0 && (size_t)n < sizeof(msg));
	ok = parse_copy(msg, (size_t)n, &t);
	if (!dates[_i].utc) {
		ck_assert_msg(!ok, "\"%s\" gave %lld", dates[_i].date,
			      (long long)t);
		return;
	}
	ck_assert_msg(ok, "\"%s\" refused", dates[_i].date);
	ck_assert_msg(t == utc(dates[_i].utc), "\"%s\" gave %lld, not %s",
		      dates[_i].date, (long long)t, dates[_i].utc);
}
END_TEST

/* A string literal and its length, NUL bytes inside it included. */
#define LIT(s) s, sizeof(s) - 1

/* A whole message, its length, and the UTC time of its Date: header,
 * NULL if none is found. */
static const struct {
	const char *msg;
	size_t len;
	const char *utc;
} messages[] = {
	/* found in the headers, in any case, CRLF or LF */
	{LIT("Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"),
	 "2024-01-01T10:00:00"},
	{LIT("DATE: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"),
	 "2024-01-01T10:00:00"},
	{LIT("date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"),
	 "2024-01-01T10:00:00"},
	{LIT("dAtE:Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"),
	 "2024-01-01T10:00:00"},
	{LIT("Date : Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"),
	 "2024-01-01T10:00:00"},
	{LIT("From: a@b\nSubject: x\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\n"
	     "Date: Tue, 2 Jan 2024 10:00:00 +0000\n"),
	 "2024-01-01T10:00:00"},
	{LIT("Received: from x\r\n\tby y; Tue, 2 Jan 2024 10:00:00 +0000\r\n"
	     "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\nbody"),
	 "2024-01-01T10:00:00"},
	/* headers only, with or without a final line end */
	{LIT("Subject: x\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"),
	 "2024-01-01T10:00:00"},
	{LIT("Subject: x\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000"),
	 "2024-01-01T10:00:00"},
	{LIT("Date: Mon, 1 Jan 2024 10:00:00 +0000\n"), "2024-01-01T10:00:00"},
	/* folded */
	{LIT("Date: Mon, 1 Jan 2024\r\n 10:00:00 +0000\r\n\r\n"),
	 "2024-01-01T10:00:00"},
	{LIT("Date:\r\n\tMon, 1 Jan 2024\r\n\t10:00:00\r\n +0000\r\n"
	     "X: y\r\n\r\n"),
	 "2024-01-01T10:00:00"},
	{LIT("Date: Mon, 1 Jan 2024 10:00:00\n +0000 (folded\n comment)\n\n"),
	 "2024-01-01T10:00:00"},
	{LIT("Date: Mon, 1 Jan 2024 10:00:00\r\n \r\n +0000\r\n\r\n"),
	 "2024-01-01T10:00:00"},
	/* the first Date: decides, even when it does not parse */
	{LIT("Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
	     "Date: Tue, 2 Jan 2024 10:00:00 +0000\r\n\r\n"),
	 "2024-01-01T10:00:00"},
	{LIT("Date: soon\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\n\r\n"),
	 NULL},
	/* a fold does not go on after its field ends */
	{LIT("Date: Mon, 1 Jan 2024 10:00:00\r\n+0000\r\n\r\n"),
	 "2024-01-01T10:00:00"},
	/* not a Date: field */
	{LIT("Dated: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"), NULL},
	{LIT("X-Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"), NULL},
	{LIT("Resent-Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"), NULL},
	{LIT(" Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"), NULL},
	{LIT("Subject: x\r\n Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"),
	 NULL},
	{LIT("Date Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"), NULL},
	{LIT("Date"), NULL},
	{LIT("Date:"), NULL},
	/* in the body only: not found */
	{LIT("From: a@b\r\n\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"),
	 NULL},
	{LIT("From: a@b\n\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n"), NULL},
	{LIT("\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n"), NULL},
	{LIT("\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n"), NULL},
	{LIT("From: a@b\r\nSubject: x\r\n"), NULL},
	{LIT(""), NULL},
	/* a lone CR is no empty line */
	{LIT("From: a@b\r\n\rDate: x\r\n"
	     "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"),
	 "2024-01-01T10:00:00"},
	/* NUL bytes: elsewhere harmless, in the value fatal */
	{LIT("X: a\0b\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"),
	 "2024-01-01T10:00:00"},
	{LIT("Date: Mon, 1 Jan 2024\0 10:00:00 +0000\r\n\r\n"), NULL},
	/* len is obeyed: what lies past it is not part of the message */
	{"Date: Mon, 1 Jan 2024 10:00:00 +0000 junk", 36,
	 "2024-01-01T10:00:00"},
	{"Date: Mon, 1 Jan 2024 10:00:00 +0000", 30, "2024-01-01T10:00:00"},
	{"Date: Mon, 1 Jan 2024 10:00:00 +0000", 26, NULL},
	{"Date: Mon, 1 Jan 2024 10:00:00 +0000", 4, NULL},
	{"Date: Mon, 1 Jan 2024 10:00:00 +0000", 5, NULL},
	{"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n", 1, NULL},
};

/* Each message of the table. */
START_TEST(test_messages)
{
	time_t t;
	bool ok = parse_copy(messages[_i].msg, messages[_i].len, &t);

	if (!messages[_i].utc) {
		ck_assert_msg(!ok, "message #%d gave %lld", _i, (long long)t);
		return;
	}
	ck_assert_msg(ok, "message #%d: no date", _i);
	ck_assert_msg(t == utc(messages[_i].utc), "message #%d gave %lld", _i,
		      (long long)t);
}
END_TEST

/* A NULL message of length 0 is no message, and no crash. */
START_TEST(test_empty)
{
	time_t t = 7;

	ck_assert(!msgdate_parse(NULL, 0, &t));
	ck_assert(t == 7);
}
END_TEST

/*
 * Builds a message: an X-Long: header of about pad bytes (written by
 * itself, a CRLF line of its own), then date_line, then an empty line
 * and a body; or date_line first when date_first is set. Returns the
 * malloc'd message, *len_r its length (no final NUL counts).
 */
static char *long_message(size_t pad, const char *date_line, bool date_first,
			  size_t *len_r)
{
	size_t dl = strlen(date_line), len = pad + dl + 32;
	char *m = malloc(len), *p = m;

	ck_assert_ptr_nonnull(m);
	if (date_first) {
		memcpy(p, date_line, dl);
		p += dl;
	}
	memcpy(p, "X-Long: ", 8);
	memset(p + 8, 'x', pad - 10);
	memcpy(p + pad - 2, "\r\n", 2);
	p += pad;
	if (!date_first) {
		memcpy(p, date_line, dl);
		p += dl;
	}
	memcpy(p, "\r\nbody\r\n", 8);
	p += 8;
	*len_r = (size_t)(p - m);
	return m;
}

/* Headers longer than MSGDATE_MAX_HEADER: a Date: inside the limit is
 * found, one past it or cut by it is not. */
START_TEST(test_long_headers)
{
	static const char date[] = "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n";
	const size_t dl = sizeof(date) - 1;
	const size_t max = MSGDATE_MAX_HEADER;
	time_t t;
	size_t len;
	char *m;

	/* before a long header */
	m = long_message(LONG_HEADER, date, true, &len);
	ck_assert(len > max);
	ck_assert(parse_copy(m, len, &t));
	ck_assert(t == utc("2024-01-01T10:00:00"));
	free(m);

	/* after a long header: past the limit */
	m = long_message(LONG_HEADER, date, false, &len);
	ck_assert(!parse_copy(m, len, &t));
	free(m);

	/* the line ends exactly at the limit: could go on, so refused */
	m = long_message(max - dl, date, false, &len);
	ck_assert(!parse_copy(m, len, &t));
	/* ... unless the message ends there too */
	ck_assert(parse_copy(m, max, &t));
	ck_assert(t == utc("2024-01-01T10:00:00"));
	free(m);

	/* all but its CRLF fit: cut, even though the value would parse */
	m = long_message(max - dl + 2, date, false, &len);
	ck_assert(!parse_copy(m, len, &t));
	free(m);

	/* cut in the middle of the time */
	m = long_message(max - dl + 10, date, false, &len);
	ck_assert(!parse_copy(m, len, &t));
	free(m);

	/* its line end and the first byte after it fit */
	m = long_message(max - dl - 1, date, false, &len);
	ck_assert(parse_copy(m, len, &t));
	ck_assert(t == utc("2024-01-01T10:00:00"));
	free(m);

	/* a long message with short headers */
	m = long_message(200, date, false, &len);
	m = realloc(m, len + LONG_HEADER);
	ck_assert_ptr_nonnull(m);
	memset(m + len, 'b', LONG_HEADER);
	ck_assert(parse_copy(m, len + LONG_HEADER, &t));
	ck_assert(t == utc("2024-01-01T10:00:00"));
	free(m);
}
END_TEST

/* The msgdate test suite, registered by the Makefile. */
Suite *msgdate_suite(void)
{
	Suite *s = suite_create("msgdate");
	TCase *tc = tcase_create("tables");

	tcase_add_loop_test(tc, test_dates, 0, N_OF(dates));
	tcase_add_loop_test(tc, test_messages, 0, N_OF(messages));
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_long_headers);
	suite_add_tcase(s, tc);
	return s;
}
