// SPDX-License-Identifier: GPL-2.0-or-later
/* maildir: the naming rules of the Maildir layout; see maildir.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "maildir.h"

/* Letters in the order Maildir sorts them, with their IMAP flags. */
static const struct maildir_letter {
	char letter;
	unsigned bit;
	const char *flag;
} maildir_letters[] = {
	{'D', MAILDIR_DRAFT, "\\Draft"},
	{'F', MAILDIR_FLAGGED, "\\Flagged"},
	{'P', MAILDIR_FORWARDED, "$Forwarded"},
	{'R', MAILDIR_ANSWERED, "\\Answered"},
	{'S', MAILDIR_SEEN, "\\Seen"},
	{'T', MAILDIR_DELETED, "\\Deleted"},
};

#define MAILDIR_NLETTERS (sizeof(maildir_letters) / sizeof(maildir_letters[0]))

enum maildir_sub maildir_sub_of(const char *component)
{
	if (strcmp(component, "cur") == 0)
		return MAILDIR_SUB_CUR;
	if (strcmp(component, "new") == 0)
		return MAILDIR_SUB_NEW;
	if (strcmp(component, "tmp") == 0)
		return MAILDIR_SUB_TMP;
	return MAILDIR_SUB_NONE;
}

const char *maildir_sub_name(enum maildir_sub sub)
{
	switch (sub) {
	case MAILDIR_SUB_CUR:
		return "cur";
	case MAILDIR_SUB_NEW:
		return "new";
	case MAILDIR_SUB_TMP:
		return "tmp";
	default:
		return NULL;
	}
}

/* The bit of one IMAP flag (len bytes), 0 if it has no letter. */
static unsigned maildir_flag_bit(const char *flag, size_t len)
{
	size_t i;

	for (i = 0; i < MAILDIR_NLETTERS; i++)
		if (strlen(maildir_letters[i].flag) == len &&
		    strncasecmp(maildir_letters[i].flag, flag, len) == 0)
			return maildir_letters[i].bit;
	return 0;
}

unsigned maildir_flags_mask(const char *flags)
{
	unsigned mask = 0;
	size_t len;

	while (flags && *flags) {
		flags += strspn(flags, " ");
		len = strcspn(flags, " ");
		mask |= maildir_flag_bit(flags, len);
		flags += len;
	}
	return mask;
}

void maildir_mask_flags(unsigned mask, char *buf, size_t len)
{
	size_t i, at = 0;

	if (len)
		buf[0] = '\0';
	for (i = 0; i < MAILDIR_NLETTERS; i++) {
		int n;

		if (!(mask & maildir_letters[i].bit))
			continue;
		n = snprintf(buf + at, len - at, "%s%s", at ? " " : "",
			     maildir_letters[i].flag);
		if (n < 0 || (size_t)n >= len - at)
			return;
		at += (size_t)n;
	}
}

void maildir_mask_letters(unsigned mask, char *buf)
{
	size_t i, at = 0;

	for (i = 0; i < MAILDIR_NLETTERS; i++)
		if (mask & maildir_letters[i].bit)
			buf[at++] = maildir_letters[i].letter;
	buf[at] = '\0';
}

bool maildir_name(char *buf, size_t len, const char *default_name, uint32_t uid,
		  const char *flags)
{
	size_t stem = strlen(default_name);
	char letters[MAILDIR_NLETTERS + 1];
	int n;

	if (stem >= 4 && strcmp(default_name + stem - 4, ".eml") == 0)
		stem -= 4;
	maildir_mask_letters(maildir_flags_mask(flags), letters);
	n = snprintf(buf, len, "%.*s,U=%u:2,%s", (int)stem, default_name, uid,
		     letters);
	return n >= 0 && (size_t)n < len;
}

int maildir_parse(const char *name, size_t *stem_len_r, unsigned *mask_r)
{
	const char *colon = strchr(name, ':'), *p;
	unsigned mask = 0;

	*stem_len_r = colon ? (size_t)(colon - name) : strlen(name);
	*mask_r = 0;
	if (!colon)
		return 0;
	if (strncmp(colon, ":2,", 3) != 0)
		return -EINVAL;
	for (p = colon + 3; *p; p++) {
		unsigned bit = 0;
		size_t i;

		for (i = 0; i < MAILDIR_NLETTERS; i++)
			if (maildir_letters[i].letter == *p)
				bit = maildir_letters[i].bit;
		if (!bit || (mask & bit))
			return -EINVAL;
		mask |= bit;
	}
	*mask_r = mask;
	return 0;
}

char *maildir_escape_level(const char *component)
{
	char *out;

	if (maildir_sub_of(component) == MAILDIR_SUB_NONE)
		return strdup(component);
	/* "%63ur", "%6Eew", "%74mp": the first letter as names.c escapes. */
	if (asprintf(&out, "%%%02X%s", (unsigned char)component[0],
		     component + 1) < 0)
		return NULL;
	return out;
}

char *maildir_escape_path(const char *path)
{
	size_t cap = strlen(path) * 3 + 1, at = 0;
	char *out = malloc(cap), *dup = strdup(path), *tok, *save = NULL;
	const char *sep = "";

	if (!out || !dup) {
		free(out);
		free(dup);
		return NULL;
	}
	out[0] = '\0';
	for (tok = strtok_r(dup, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		char *level = maildir_escape_level(tok);

		if (!level) {
			free(out);
			out = NULL;
			break;
		}
		at += (size_t)snprintf(out + at, cap - at, "%s%s", sep, level);
		sep = "/";
		free(level);
	}
	free(dup);
	return out;
}
