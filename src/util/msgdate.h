/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * msgdate: the time a raw message's Date: header gives. Pure functions,
 * no I/O, no global state, no locale.
 *
 * Used where the server tells no date of its own (POP3), to give a
 * message file its time stamp.
 */
#ifndef MAILFS_MSGDATE_H
#define MAILFS_MSGDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Only this much of a message is looked at for its Date: header. */
#define MSGDATE_MAX_HEADER (64 * 1024)

/*
 * Finds the first Date: header of the raw message msg (len bytes, not
 * NUL-terminated, may hold NUL bytes; the caller keeps ownership) and
 * stores the time it gives, in UTC, in *t_r. Returns false, leaving *t_r
 * alone, when there is no Date: header, or the first one does not parse.
 *
 * The header section ends at the first empty line (CRLF or LF) or after
 * MSGDATE_MAX_HEADER bytes, whichever comes first; a Date: header after
 * that is not found, nor one that reaches that limit (it might go on
 * past it) unless the message ends there too. Field names are matched
 * without regard to case, white space before the colon is allowed, and
 * folded lines are joined.
 *
 * The date-time is read as RFC 5322 (section 3.3) has it, obsolete
 * forms (4.3) included, and a little more liberally:
 *  - comments in parentheses, nested or unterminated, count as space
 *    wherever space may go;
 *  - an optional day name (English, "Mon" or "Monday", any case; not
 *    checked against the date), then an optional comma;
 *  - day (1 or 2 digits), month (English, "Jan" or "January", any
 *    case), year; day, month and year apart by space or one '-';
 *  - a year of 2 digits is 20xx below 50, 19xx else; of 3 digits, +1900;
 *  - hh:mm or hh:mm:ss, the hour of 1 or 2 digits, space allowed around
 *    the colons; second 60 (a leap second) is the next minute's 0;
 *  - zone: +hhmm or -hhmm (hh up to 23, mm up to 59; -0000 is +0000),
 *    UT, UTC, GMT, Z, EST, EDT, CST, CDT, MST, MDT, PST, PDT; a military
 *    letter (A-Z but J) or other name of 2-5 letters, meaning unknown,
 *    counts as +0000 as RFC 5322 4.3 says; no zone at all is +0000.
 *    Nothing but space and comments may follow the zone.
 * Refused: a field out of range (day 0 or past the end of its month,
 * hour 24, minute 60, second 61, ...), an unknown day or month name, any
 * other text, and a time before 1970-01-01T00:00:00Z or after the year
 * 9999 (UTC), or not representable in time_t.
 */
bool msgdate_parse(const char *msg, size_t len, time_t *t_r);

#endif
