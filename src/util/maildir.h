/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * maildir: the naming rules of the Maildir layout (-o layout=maildir).
 * Pure functions, no I/O, no global state.
 *
 * A folder is a directory holding cur/, new/ and tmp/; a real folder
 * level named "cur", "new" or "tmp" is shown as "%63ur", "%6Eew",
 * "%74mp" (names_from_path() turns them back). A message of a folder is
 * cur/<NAME>,U=<uid>:2,<letters>, NAME being the default layout's name
 * without ".eml" and the letters those of its system flags, sorted:
 * D \Draft, F \Flagged, P $Forwarded, R \Answered, S \Seen, T \Deleted.
 * Keywords are not shown.
 */
#ifndef MAILFS_MAILDIR_H
#define MAILFS_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The flags the letters stand for, one bit each. */
enum maildir_flag {
	MAILDIR_DRAFT = 1u << 0, /* D */
	MAILDIR_FLAGGED = 1u << 1, /* F */
	MAILDIR_FORWARDED = 1u << 2, /* P */
	MAILDIR_ANSWERED = 1u << 3, /* R */
	MAILDIR_SEEN = 1u << 4, /* S */
	MAILDIR_DELETED = 1u << 5, /* T */
};

/* The subdirectories of a folder. */
enum maildir_sub {
	MAILDIR_SUB_NONE = 0,
	MAILDIR_SUB_CUR,
	MAILDIR_SUB_NEW,
	MAILDIR_SUB_TMP,
};

/* Longest message name made here, with the NUL. */
#define MAILDIR_NAME_MAX 96

/* Which subdirectory a path component names ("cur", "new", "tmp"). */
enum maildir_sub maildir_sub_of(const char *component);
/* The name of a subdirectory ("cur", ...), NULL for MAILDIR_SUB_NONE. */
const char *maildir_sub_name(enum maildir_sub sub);

/* The bits of the system flags in an IMAP flag list (space separated,
 * case-insensitive); keywords and unknown flags are left out. */
unsigned maildir_flags_mask(const char *flags);
/* The IMAP flags of mask, space separated, into buf (at least 64
 * bytes). */
void maildir_mask_flags(unsigned mask, char *buf, size_t len);
/* The sorted letters of mask into buf (at least 7 bytes). */
void maildir_mask_letters(unsigned mask, char *buf);

/*
 * The Maildir name of a message whose default name is default_name
 * (names_message(), with or without ".eml"), into buf (len bytes).
 * Returns false if it does not fit.
 */
bool maildir_name(char *buf, size_t len, const char *default_name, uint32_t uid,
		  const char *flags);

/*
 * Splits a message file name at its info: *stem_len_r gets the length
 * of what comes before ":2," (the whole name when there is no ':'),
 * *mask_r the flags of its letters (0 without info). Returns 0, or
 * -EINVAL for an info other than ":2,<letters>" (a ':' without "2,"
 * after it, a ":1," info) or a letter not in DFPRST, or one given
 * twice.
 */
int maildir_parse(const char *name, size_t *stem_len_r, unsigned *mask_r);

/* A folder level as the Maildir layout shows it: "cur", "new" and
 * "tmp" escaped (malloc'd copy; NULL when out of memory). */
char *maildir_escape_level(const char *component);
/* The same for every '/'-separated level of a path (malloc'd). */
char *maildir_escape_path(const char *path);

#endif
