/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * msgstruct: a message's structure and envelope as the server describes
 * them (IMAP BODYSTRUCTURE and ENVELOPE, RFC 3501 7.4.2), parsed from
 * the parser's tokens into plain C, and the names .parts shows for the
 * parts. Pure: no I/O, no global state. Every bound is checked: nesting
 * deeper than MSGSTRUCT_MAX_DEPTH is refused, parts beyond
 * MSGSTRUCT_MAX_PARTS are left out (truncated), sizes are clamped,
 * missing or malformed fields give defaults, never a crash.
 */
#ifndef MAILFS_MSGSTRUCT_H
#define MAILFS_MSGSTRUCT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "strbuf.h"

struct imap_tok;

#define MSGSTRUCT_MAX_DEPTH 24
#define MSGSTRUCT_MAX_PARTS 1000
/* A section: at most MSGSTRUCT_MAX_DEPTH levels of numbers. */
#define MSGSTRUCT_SECTION_MAX 160
/* Sizes beyond this are lies (as RFC822.SIZE is taken). */
#define MSGSTRUCT_MAX_SIZE (1ull << 40)
/* A header block up to this size is kept with the structure. */
#define MSGSTRUCT_HEADER_KEEP (64u * 1024)

enum msgstruct_enc {
	MSGSTRUCT_ENC_IDENTITY, /* 7bit, 8bit, binary, or none given */
	MSGSTRUCT_ENC_BASE64,
	MSGSTRUCT_ENC_QP,
	MSGSTRUCT_ENC_OTHER, /* unknown: shown as is */
};

enum msgstruct_role {
	MSGSTRUCT_ATTACHMENT, /* a file under its own name */
	MSGSTRUCT_TEXT, /* "text" */
	MSGSTRUCT_HTML, /* "html" */
};

/* One leaf part (or attached message) of a message. */
struct msgstruct_part {
	char section[MSGSTRUCT_SECTION_MAX]; /* "1", "2.1", ... */
	char type[32]; /* lower case: "text" ("" if not given) */
	char subtype[64]; /* lower case: "plain" */
	char *charset; /* owned: the charset parameter, or NULL */
	char *filename; /* owned: decoded file name (UTF-8), or NULL */
	enum msgstruct_enc enc;
	bool disp_attachment; /* Content-Disposition: attachment */
	bool is_message; /* message/rfc822: shown as part-N.eml */
	uint64_t size; /* octets in its transfer encoding, clamped */
	enum msgstruct_role role; /* set by msgstruct_name_parts() */
	char *name; /* owned: its .parts file name (name_parts) */
	/* Filled by the store: the exact decoded size (BINARY.SIZE). */
	bool exact;
	uint64_t exact_size;
	/* Filled by fsparts once the part was read whole: the size of its
	 * file (text and html: after conversion to UTF-8). */
	bool known;
	uint64_t known_size;
};

struct msgstruct {
	struct msgstruct_part *parts; /* owned */
	size_t n;
	bool truncated; /* more parts than MSGSTRUCT_MAX_PARTS */
	bool binary; /* the server can undo transfer encodings (BINARY) */
	/* The header block (BODY[HEADER]), filled by the store when the
	 * server sent it with the structure (or by fsparts once read):
	 * its exact size, and its bytes when no more than
	 * MSGSTRUCT_HEADER_KEEP (else NULL). */
	bool header_known;
	uint64_t header_size;
	char *header; /* owned */
};

/*
 * Parses a BODYSTRUCTURE (the list token) into *ms_r (owned by the
 * caller: msgstruct_free()), and names the parts. Returns 0, -EINVAL
 * when body is not a body structure or nests too deep, -ENOMEM.
 */
int msgstruct_parse(const struct imap_tok *body, struct msgstruct **ms_r);
void msgstruct_free(struct msgstruct *ms);

/*
 * Names the parts (see msgstruct_part.name): "text" is the first
 * text/plain leaf that is neither a Content-Disposition attachment nor
 * named; "html" the first such text/html; every other part its file
 * name made safe (mime_safe_name()), or "part-<section>" with an
 * extension from its type ("part-2.eml" for message/rfc822). A name
 * equal to "header", "text", "html" or an earlier one gets "-2", "-3"
 * ... before its extension. Deterministic. 0 or -ENOMEM.
 */
int msgstruct_name_parts(struct msgstruct *ms);

/* What .summary needs of an ENVELOPE: borrowed from the tokens. */
struct msgstruct_envelope {
	const char *subject; /* raw (may hold RFC 2047 words), or NULL */
	size_t subject_len;
	const char *from_name, *from_mailbox, *from_host; /* NULL if NIL */
	size_t from_name_len, from_mailbox_len, from_host_len;
};

/* Parses an ENVELOPE list token; false when it is not one (fields that
 * are missing or of the wrong type are left NULL). */
bool msgstruct_envelope(const struct imap_tok *env,
			struct msgstruct_envelope *e);

/*
 * Appends one line of .summary (with its LF):
 * NAME TAB DATE TAB FLAGS TAB SIZE TAB FROM TAB SUBJECT, DATE in UTC as
 * YYYY-MM-DDTHH:MM:SSZ, FROM "Name <mailbox@host>" or "mailbox@host",
 * From's name and Subject decoded (RFC 2047) to UTF-8; every control
 * character (C0, DEL) inside a field becomes a space.
 */
void msgstruct_summary_line(struct strbuf *out, const char *name, time_t date,
			    const char *flags, uint64_t size,
			    const struct msgstruct_envelope *e);

#endif
