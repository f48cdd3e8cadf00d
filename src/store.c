// SPDX-License-Identifier: GPL-2.0-or-later
/* store: helpers shared by every store, and the protocol errno mapping. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap.h"
#include "store.h"

void store_folders_free(struct store_folder *f, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(f[i].name);
	free(f);
}

void store_listing_clear(struct store_listing *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->msgs[i].flags);
		free(l->msgs[i].name);
		free(l->msgs[i].ref);
	}
	free(l->msgs);
	l->msgs = NULL;
	l->n = 0;
}

int store_errno_imap(const struct imap_error *e)
{
	static const struct {
		const char *code;
		int errnum;
	} codes[] = {
		{"NONEXISTENT", ENOENT},   {"TRYCREATE", ENOENT},
		{"EXPUNGEISSUED", ENOENT}, {"ALREADYEXISTS", EEXIST},
		{"NOPERM", EACCES},	   {"AUTHORIZATIONFAILED", EACCES},
		{"OVERQUOTA", EDQUOT},	   {"LIMIT", EFBIG},
		{"TOOBIG", EFBIG},	   {"INUSE", EBUSY},
		{"CANNOT", EPERM},	   {"HASCHILDREN", ENOTEMPTY},
	};
	size_t i;

	switch (e->kind) {
	case IMAP_ERR_NONE:
		return 0;
	case IMAP_ERR_NO:
		for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
			if (strcasecmp(e->code, codes[i].code) == 0)
				return codes[i].errnum;
		return EIO;
	case IMAP_ERR_AUTH:
		return EACCES;
	case IMAP_ERR_NOMEM:
		return ENOMEM;
	case IMAP_ERR_BAD:
	case IMAP_ERR_NET:
	case IMAP_ERR_PROTO:
		break;
	}
	return EIO;
}

/* True for one of the five system flags a client may set. */
static bool store_system_flag(const char *flag, size_t len)
{
	static const char *const flags[] = {"\\Answered", "\\Flagged",
					    "\\Deleted", "\\Seen", "\\Draft"};
	size_t i;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (strlen(flags[i]) == len &&
		    strncasecmp(flag, flags[i], len) == 0)
			return true;
	return false;
}

char *store_flags_normalize(const char *in)
{
	char *out = malloc(strlen(in) + 1), *o = out;
	const char *p = in;

	if (!out)
		return NULL;
	while (*p) {
		size_t len, i;

		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (!*p)
			break;
		len = strcspn(p, " \t\r\n");
		if (*p == '\\') {
			if (!store_system_flag(p, len))
				goto bad;
		} else {
			for (i = 0; i < len; i++) {
				unsigned char c = p[i];

				if (c <= 0x20 || c >= 0x7f ||
				    strchr("(){%*\"\\]", c))
					goto bad;
			}
		}
		if (o != out)
			*o++ = ' ';
		memcpy(o, p, len);
		o += len;
		p += len;
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* A wrapping store (the disk cache) shows its connection's figures. */
const struct store_stats *store_get_stats(const struct store *st)
{
	while (st->inner)
		st = st->inner;
	return &st->stats;
}
