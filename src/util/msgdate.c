// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * msgdate: the Date: header of a raw message (see msgdate.h).
 *
 * Everything is done by hand on byte ranges, never on NUL-terminated
 * strings: a message may hold NUL bytes and is not terminated, and no
 * read may go past its end. Names are compared in ASCII, so the locale
 * plays no part.
 */
#include "msgdate.h"

#include <stdint.h>
#include <string.h>

/* The first instant that is too late: 10000-01-01T00:00:00Z. */
#define MSGDATE_LIMIT INT64_C(253402300800)

/* A read position in the bytes [p, end) of a header field's value. */
struct msgdate_cursor {
	const char *p;
	const char *end;
};

/* A time zone that has a name, and its offset from UTC in minutes. */
struct msgdate_zone_name {
	const char *name; /* lower case */
	int minutes;
};

static const char *const msgdate_day_names[] = {
	"monday", "tuesday",  "wednesday", "thursday",
	"friday", "saturday", "sunday",
};

static const char *const msgdate_month_names[] = {
	"january", "february", "march",	    "april",   "may",	   "june",
	"july",	   "august",   "september", "october", "november", "december",
};

/* RFC 5322 4.3, plus "utc", which is as common and means the same. */
static const struct msgdate_zone_name msgdate_zone_names[] = {
	{"ut", 0},	  {"utc", 0},	    {"gmt", 0},	      {"z", 0},
	{"est", -5 * 60}, {"edt", -4 * 60}, {"cst", -6 * 60}, {"cdt", -5 * 60},
	{"mst", -7 * 60}, {"mdt", -6 * 60}, {"pst", -8 * 60}, {"pdt", -7 * 60},
};

/* Days in the months of a common year, and before each month. */
static const int msgdate_month_days[12] = {31, 28, 31, 30, 31, 30,
					   31, 31, 30, 31, 30, 31};
static const int msgdate_days_before[12] = {0,	 31,  59,  90,	120, 151,
					    181, 212, 243, 273, 304, 334};

/* ASCII lower case of c; every other byte as it is. */
static char msgdate_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* True for an ASCII letter. */
static bool msgdate_is_alpha(char c)
{
	return msgdate_lower(c) >= 'a' && msgdate_lower(c) <= 'z';
}

/* True for an ASCII digit. */
static bool msgdate_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* True for the white space of a (possibly folded) field value. */
static bool msgdate_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * Skips a comment, the cursor being on its '('. Comments nest and a
 * backslash quotes the next byte; one that is not closed runs to the
 * end of the value, which is taken as a sloppy but harmless ending.
 */
static void msgdate_skip_comment(struct msgdate_cursor *c)
{
	int depth = 0;
	char ch;

	while (c->p < c->end) {
		ch = *c->p++;
		if (ch == '\\') {
			if (c->p < c->end)
				c->p++;
		} else if (ch == '(') {
			depth++;
		} else if (ch == ')') {
			if (--depth == 0)
				return;
		}
	}
}

/* Skips white space and comments (CFWS in RFC 5322). */
static void msgdate_skip_cfws(struct msgdate_cursor *c)
{
	while (c->p < c->end) {
		if (msgdate_is_space(*c->p))
			c->p++;
		else if (*c->p == '(')
			msgdate_skip_comment(c);
		else
			break;
	}
}

/* Skips what may stand between day, month and year: CFWS with at most
 * one '-' in it, as in "1-Jan-2024". */
static void msgdate_skip_date_sep(struct msgdate_cursor *c)
{
	msgdate_skip_cfws(c);
	if (c->p < c->end && *c->p == '-') {
		c->p++;
		msgdate_skip_cfws(c);
	}
}

/* True when the cursor is on byte ch; if so, steps over it. */
static bool msgdate_take(struct msgdate_cursor *c, char ch)
{
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return true;
	}
	return false;
}

/*
 * Reads a run of digits into *val. Returns the number of digits, which
 * may be more than fit in an int: *val is then meaningless, and every
 * caller refuses that many digits anyway.
 */
static size_t msgdate_read_digits(struct msgdate_cursor *c, int *val)
{
	size_t n = 0;

	*val = 0;
	while (c->p < c->end && msgdate_is_digit(*c->p)) {
		if (n < 9)
			*val = *val * 10 + (*c->p - '0');
		n++;
		c->p++;
	}
	return n;
}

/* Reads a run of letters; returns its length, *w_r pointing at it. */
static size_t msgdate_read_word(struct msgdate_cursor *c, const char **w_r)
{
	*w_r = c->p;
	while (c->p < c->end && msgdate_is_alpha(*c->p))
		c->p++;
	return (size_t)(c->p - *w_r);
}

/* True when the n bytes at w are name (lower case), in any case. */
static bool msgdate_word_is(const char *w, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (name[i] == '\0' || msgdate_lower(w[i]) != name[i])
			return false;
	return name[n] == '\0';
}

/*
 * Index in names (count long, full English names in lower case) of the
 * n bytes at w, which may be the full name or its first three letters.
 * Returns -1 for a word that is neither.
 */
static int msgdate_name_index(const char *w, size_t n, const char *const *names,
			      size_t count)
{
	size_t i;

	for (i = 0; i < count; i++) {
		if (n == 3 && msgdate_lower(w[0]) == names[i][0] &&
		    msgdate_lower(w[1]) == names[i][1] &&
		    msgdate_lower(w[2]) == names[i][2])
			return (int)i;
		if (msgdate_word_is(w, n, names[i]))
			return (int)i;
	}
	return -1;
}

/*
 * Reads the zone at the cursor into *minutes (east of UTC). Numeric:
 * a sign and exactly four digits. Named: see msgdate_zone_names; a military
 * letter but 'j', or an unknown name of 2-5 letters, has no known
 * meaning and counts as +0000 (RFC 5322 4.3). No zone at all is +0000.
 */
static bool msgdate_read_zone(struct msgdate_cursor *c, int *minutes)
{
	const char *w;
	size_t i, n;
	int sign, v;

	*minutes = 0;
	if (c->p == c->end)
		return true;
	if (*c->p == '+' || *c->p == '-') {
		sign = *c->p++ == '-' ? -1 : 1;
		if (msgdate_read_digits(c, &v) != 4 || v / 100 > 23 ||
		    v % 100 > 59)
			return false;
		*minutes = sign * (v / 100 * 60 + v % 100);
		return true;
	}
	n = msgdate_read_word(c, &w);
	for (i = 0;
	     i < sizeof(msgdate_zone_names) / sizeof(msgdate_zone_names[0]);
	     i++) {
		if (msgdate_word_is(w, n, msgdate_zone_names[i].name)) {
			*minutes = msgdate_zone_names[i].minutes;
			return true;
		}
	}
	if (n == 1)
		return msgdate_lower(w[0]) != 'j';
	return n >= 2 && n <= 5;
}

/* True for a leap year of the Gregorian calendar. */
static bool msgdate_is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Leap years from year 1 up to, not including, year y (y >= 1). */
static int64_t msgdate_leaps_before(int y)
{
	return (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400;
}

/* Days from 1970-01-01 to the given date (year >= 1, mon 0-11, day from
 * 1), negative before 1970. */
static int64_t msgdate_days_since_epoch(int year, int mon, int day)
{
	int64_t d = INT64_C(365) * (year - 1970);

	d += msgdate_leaps_before(year) - msgdate_leaps_before(1970);
	d += msgdate_days_before[mon] + (mon >= 2 && msgdate_is_leap(year));
	return d + day - 1;
}

/* The date-time fields read from a Date: value, before any check. */
struct msgdate_fields {
	int day, mon, year; /* mon 0-11, year in full */
	int hour, min, sec;
	int zone; /* minutes east of UTC */
};

/*
 * Reads [day-of-week ","] day month year hour ":" min [":" sec] [zone]
 * with CFWS anywhere in between (see msgdate.h). Checks the syntax
 * only; msgdate_parse_value() checks the ranges.
 */
static bool msgdate_read_fields(struct msgdate_cursor *c,
				struct msgdate_fields *f)
{
	const char *w;
	size_t n;
	int v;

	msgdate_skip_cfws(c);
	if (c->p < c->end && msgdate_is_alpha(*c->p)) {
		n = msgdate_read_word(c, &w);
		if (msgdate_name_index(w, n, msgdate_day_names, 7) < 0)
			return false;
		msgdate_skip_cfws(c);
		msgdate_take(c, ',');
		msgdate_skip_cfws(c);
	}
	n = msgdate_read_digits(c, &f->day);
	if (n < 1 || n > 2)
		return false;
	msgdate_skip_date_sep(c);
	n = msgdate_read_word(c, &w);
	f->mon = msgdate_name_index(w, n, msgdate_month_names, 12);
	if (f->mon < 0)
		return false;
	msgdate_skip_date_sep(c);
	n = msgdate_read_digits(c, &v);
	if (n == 2)
		v += v < 50 ? 2000 : 1900;
	else if (n == 3)
		v += 1900;
	else if (n != 4)
		return false;
	f->year = v;
	msgdate_skip_cfws(c);
	n = msgdate_read_digits(c, &f->hour);
	if (n < 1 || n > 2)
		return false;
	msgdate_skip_cfws(c);
	if (!msgdate_take(c, ':'))
		return false;
	msgdate_skip_cfws(c);
	if (msgdate_read_digits(c, &f->min) != 2)
		return false;
	msgdate_skip_cfws(c);
	f->sec = 0;
	if (msgdate_take(c, ':')) {
		msgdate_skip_cfws(c);
		if (msgdate_read_digits(c, &f->sec) != 2)
			return false;
		msgdate_skip_cfws(c);
	}
	if (!msgdate_read_zone(c, &f->zone))
		return false;
	msgdate_skip_cfws(c);
	return c->p == c->end;
}

/*
 * Parses the value of a Date: field, the bytes [s, end), folds and all,
 * into UTC. False if it does not parse, a field is out of range, or the
 * time is before 1970, after 9999 or does not fit in time_t.
 */
static bool msgdate_parse_value(const char *s, const char *end, time_t *t_r)
{
	struct msgdate_cursor c = {s, end};
	struct msgdate_fields f;
	int64_t t;
	int mdays;

	if (!msgdate_read_fields(&c, &f))
		return false;
	/* Earlier years cannot reach 1970 even with a zone's help. */
	if (f.year < 1969)
		return false;
	mdays = msgdate_month_days[f.mon] +
		(f.mon == 1 && msgdate_is_leap(f.year));
	if (f.day < 1 || f.day > mdays || f.hour > 23 || f.min > 59 ||
	    f.sec > 60)
		return false;
	t = msgdate_days_since_epoch(f.year, f.mon, f.day) * 86400;
	t += f.hour * 3600 + f.min * 60 + f.sec - f.zone * 60;
	if (t < 0 || t >= MSGDATE_LIMIT || (int64_t)(time_t)t != t)
		return false;
	*t_r = (time_t)t;
	return true;
}

/*
 * If the header line at p (inside [p, end)) is a Date: field, returns
 * where its value starts, just after the colon; else NULL. The name is
 * matched in any case, and blanks may precede the colon (RFC 5322 4.5).
 */
static const char *msgdate_date_value(const char *p, const char *end)
{
	if (end - p < 4 || !msgdate_word_is(p, 4, "date"))
		return NULL;
	p += 4;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p < end && *p == ':' ? p + 1 : NULL;
}

/*
 * Where the field whose value starts at v ends: at the first LF not
 * followed by a blank (a fold), or at end. cut tells that the message
 * goes on past end; then a field that reaches end may go on too, and
 * NULL is returned rather than a part of it.
 */
static const char *msgdate_field_end(const char *v, const char *end, bool cut)
{
	const char *lf;

	for (;;) {
		lf = memchr(v, '\n', (size_t)(end - v));
		if (!lf)
			return cut ? NULL : end;
		if (lf + 1 == end)
			return cut ? NULL : lf;
		if (lf[1] != ' ' && lf[1] != '\t')
			return lf;
		v = lf + 1;
	}
}

/*
 * Finds the first Date: field in the header section (up to the first
 * empty line, within MSGDATE_MAX_HEADER bytes) and parses its value.
 * Lines that are no Date: field, continuation lines included, are
 * skipped whole.
 */
bool msgdate_parse(const char *msg, size_t len, time_t *t_r)
{
	size_t n = len < MSGDATE_MAX_HEADER ? len : MSGDATE_MAX_HEADER;
	const char *p, *end, *v, *fe;

	if (n == 0)
		return false;
	p = msg;
	end = msg + n;
	while (p < end) {
		if (*p == '\n' || (*p == '\r' && end - p > 1 && p[1] == '\n'))
			return false;
		v = msgdate_date_value(p, end);
		if (v) {
			fe = msgdate_field_end(v, end, len > n);
			return fe && msgdate_parse_value(v, fe, t_r);
		}
		p = memchr(p, '\n', (size_t)(end - p));
		if (!p)
			return false;
		p++;
	}
	return false;
}
