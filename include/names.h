/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * names: mapping between IMAP mailbox names and paths in the mount.
 * Pure functions, no I/O, no global state.
 *
 * Server side: a mailbox name in modified UTF-7 (RFC 3501 5.1.3) whose
 * hierarchy levels are separated by the server's delimiter.
 * Mount side: UTF-8 path components separated by '/'.
 *
 * A component that cannot be shown as is gets escaped reversibly with
 * %XX (two upper-case hex digits): the bytes '%', '/', 0x01-0x1f and
 * 0x7f, and a component that is exactly "." or ".." has its dots
 * written as %2E. Unescaping turns %XX (hex) back into the byte; a '%'
 * not followed by two hex digits stays a literal '%'.
 */
#ifndef MAILFS_NAMES_H
#define MAILFS_NAMES_H

#include <stddef.h>

/*
 * Decodes modified UTF-7 into UTF-8. Returns a malloc'd string (owned
 * by the caller), or NULL if in is not valid modified UTF-7 (bad
 * base64, non-zero padding bits, an unpaired surrogate, "&-" quirks
 * aside, a directly encoded non-ASCII byte, or a base64 run that
 * encodes only printable ASCII).
 */
char *names_mutf7_decode(const char *in);

/* Encodes UTF-8 into modified UTF-7. Returns a malloc'd string, or NULL
 * if in is not valid UTF-8. */
char *names_mutf7_encode(const char *in);

/* Escapes one decoded component for display. Returns a malloc'd string. */
char *names_escape(const char *component);

/* Reverses names_escape(). Returns a malloc'd string, NULL if the result
 * would contain a NUL byte. */
char *names_unescape(const char *component);

/*
 * Server mailbox name (modified UTF-7, delim-separated) to mount path
 * (UTF-8, '/'-separated, each component escaped, no leading '/').
 * delim may be '\0' for a flat namespace. A name that is not valid
 * modified UTF-7 is shown byte for byte (escaped), so that it can still
 * be reached. Returns a malloc'd string or NULL when out of memory.
 */
char *names_to_path(const char *mailbox, char delim);

/*
 * Mount path (as names_to_path() makes) back to the server's mailbox
 * name. Returns NULL if a component holds the delimiter itself
 * (when delim is not '/') or is empty, or on invalid UTF-8.
 */
char *names_from_path(const char *path, char delim);

#endif
