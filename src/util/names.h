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
 * written as %2E. The names the mount reserves for its virtual
 * directories and files (".search", ".parts", ".summary", see fsvirt.h)
 * have their leading dot written %2E too ("%2Esearch"), so that no folder
 * is ever shown under one of them. Unescaping turns %XX (hex) back into the byte; a '%'
 * not followed by two hex digits stays a literal '%'.
 */
#ifndef MAILFS_NAMES_H
#define MAILFS_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Decodes modified UTF-7 into UTF-8. Returns a malloc'd string (owned
 * by the caller), or NULL if in is not valid modified UTF-7 or out of
 * memory. Only the canonical encoding is valid, so that decoding and
 * names_mutf7_encode() are exact inverses. Refused:
 *  - a byte outside 0x20-0x7e (8-bit, control characters, DEL);
 *  - a base64 run with a byte outside [A-Za-z0-9+,] or without its
 *    closing '-' ("&-" is '&', not an empty run);
 *  - an odd number of bytes or a superfluous character (6 or more bits
 *    left over), or non-zero leftover bits;
 *  - an unpaired surrogate;
 *  - U+0000 or any printable ASCII character (0x20-0x7e) inside a run:
 *    those must be written as themselves;
 *  - a run starting right where the previous one ended, as in
 *    "&ZeU-&Zyw-": the encoder writes one run, "&ZeVnLA-".
 */
char *names_mutf7_decode(const char *in);

/* Encodes UTF-8 into modified UTF-7. Returns a malloc'd string, or NULL
 * if in is not valid UTF-8 (stray or missing continuation bytes,
 * overlong forms, surrogates, above U+10FFFF) or out of memory. */
char *names_mutf7_encode(const char *in);

/* True when the n bytes at s are exactly one of the reserved names
 * ".search", ".parts", ".summary" (case matters). */
bool names_reserved(const char *s, size_t n);

/* Escapes one decoded component for display. Returns a malloc'd string
 * (NULL only when out of memory). */
char *names_escape(const char *component);

/* The name of an account's local directory (the POP3 store, the IMAP
 * disk cache): "USER@HOST" or "USER@HOST:PORT" (port NULL leaves it
 * out), escaped by names_escape() so that it is one safe path level.
 * Returns a malloc'd string, NULL when out of memory. */
char *names_account_key(const char *user, const char *host, const char *port);

/*
 * Server mailbox name (modified UTF-7, delim-separated) to mount path
 * (UTF-8, '/'-separated, each component escaped, no leading '/').
 * delim may be '\0' for a flat namespace. A component that is not
 * valid modified UTF-7 is shown byte for byte (escaped), so that it can
 * still be reached. names_from_path() does not map such a component
 * back (it encodes what it is given), so a caller must keep the server
 * name it listed for each path. A name with an empty component (a
 * leading, trailing or doubled delimiter, as "INBOX.") is shown as one
 * component, as with a flat namespace. Returns a malloc'd string or
 * NULL when out of memory.
 */
char *names_to_path(const char *mailbox, char delim);
/* The longest component names_to_path() makes: a longer one is cut and
 * ends in "~" and 8 hex digits of the SHA-256 of the server's component. */
#define NAMES_MAX_COMPONENT 255

/*
 * Mount path (as names_to_path() makes) back to the server's mailbox
 * name. Returns NULL if a component holds the delimiter itself
 * (when delim is not '/'; in its modified UTF-7 form too, as any
 * non-ASCII component does with the delimiter '&') or is empty, or on
 * invalid UTF-8. Also NULL for a component that is literally "." or
 * ".." or a reserved name (names_to_path() writes those with %2E), one that unescapes to a
 * NUL byte, a path of more than one component when delim is '\0', and
 * when out of memory.
 */
char *names_from_path(const char *path, char delim);

/*
 * POP3 UIDLs (RFC 1939 7: 1 to 70 bytes in 0x21-0x7e) and the names of
 * the local files that hold their messages, one to one. A file name
 * keeps 'a'-'z', '0'-'9', '-' and '_' as they are and writes every other
 * byte, upper-case letters included, as %XX with two upper-case hex
 * digits: "GmailId18f3" is "%47mail%49d18f3". So a name is at most 210
 * bytes, never holds '/' or '.' (nor starts with a dot), and two UIDLs
 * that differ only in case still get names that differ on a file system
 * that folds case (FAT, NTFS, HFS+).
 */

/* File name (without extension) for uidl. Returns a malloc'd string,
 * owned by the caller, or NULL if uidl is not a valid UIDL (empty, over
 * 70 bytes, a byte outside 0x21-0x7e) or out of memory. */
char *names_uidl_to_file(const char *uidl);

/* Reverses names_uidl_to_file(). Returns a malloc'd string, owned by
 * the caller, or NULL if file is no name names_uidl_to_file() makes: a
 * byte that must be escaped written as itself, a '%' without two
 * upper-case hex digits after it, an escape of a byte that is kept as
 * itself or is not valid in a UIDL, or a UIDL over 70 bytes. Also NULL
 * for "" and when out of memory. */
char *names_file_to_uidl(const char *file);

/*
 * Message file names (IMAP): they name the message, not its slot, so
 * that a message keeps its name when it is copied or moved to another
 * folder or account, backed up and restored:
 *
 *   YYYYMMDDTHHMMSSZ-<size>-<h8>[-<n>].eml
 *
 * the INTERNALDATE in UTC, the RFC822.SIZE as listed, the first 8 hex
 * digits of the SHA-256 of the Message-ID header's value (unfolded and
 * trimmed; of "" when there is none) and, for the second and later
 * messages of one folder that share the rest, "-2", "-3", ... in
 * ascending UID order (n >= 2; n < 2 means no suffix). Only
 * [0-9A-Za-z.-] appear. Writes at most NAMES_MESSAGE_MAX bytes with
 * the NUL.
 */
#define NAMES_MESSAGE_MAX 64
void names_message(char *buf, time_t date, uint64_t size, uint32_t idhash,
		   unsigned n);

/*
 * The <h8> of a message: the first 32 bits of the SHA-256 of the value
 * of the first Message-ID field in hdr (len bytes of header fields, as
 * BODY[HEADER.FIELDS (MESSAGE-ID)] returns them or as a message starts;
 * the search stops at the blank line ending the header). The value is
 * unfolded (CR and LF removed) and trimmed of spaces and tabs.
 */
uint32_t names_msgid_hash(const char *hdr, size_t len);

#endif
