// SPDX-License-Identifier: GPL-2.0-or-later
/* store: helpers shared by every store, and the protocol errno mapping. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "grow.h"
#include "imap.h"
#include "sha256.h"
#include "store.h"

static _Thread_local bool store_background;
/* The calling thread's last failure's scope (store_fail()). */
static _Thread_local enum store_scope store_scope_tls;

int store_fail(int err, enum store_scope scope)
{
	store_scope_tls = scope;
	return err;
}

enum store_scope store_scope_last(void)
{
	return store_scope_tls;
}

void store_scope_clear(void)
{
	store_scope_tls = STORE_SCOPE_NONE;
}

enum store_scope store_scope_imap(const struct imap_error *e)
{
	switch (e->kind) {
	case IMAP_ERR_NONE:
		return STORE_SCOPE_NONE;
	case IMAP_ERR_NET:
	case IMAP_ERR_PROTO:
	case IMAP_ERR_AUTH:
		return STORE_SCOPE_CONNECTION;
	default:
		if (strcasecmp(e->code, "NONEXISTENT") == 0 ||
		    strcasecmp(e->code, "TRYCREATE") == 0)
			return STORE_SCOPE_FOLDER;
		return STORE_SCOPE_MESSAGE;
	}
}

void store_set_background(bool on)
{
	store_background = on;
}

bool store_is_background(void)
{
	return store_background;
}

struct store_oid store_oid_make(const char *kind, const char *id, uint64_t size)
{
	unsigned char md[NET_SHA256_LEN];
	struct store_oid o = {0, 0};
	char buf[64 + 2 * 256];
	int n;
	size_t i;

	/* kind, id and size, each ending in a byte the others cannot
	 * hold, so that no two triples give the same text. */
	n = snprintf(buf, sizeof(buf), "mailfs-oid:%s:%s:%llu", kind, id,
		     (unsigned long long)size);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(buf))
		n = (int)sizeof(buf) - 1;
	net_sha256(buf, (size_t)n, md);
	for (i = 0; i < 8; i++) {
		o.a = o.a << 8 | md[i];
		o.b = o.b << 8 | md[8 + i];
	}
	if (store_oid_none(&o))
		o.b = 1;
	return o;
}

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
	l->delta = l->complete = l->have_present = false;
	store_ranges_free(&l->vanished);
	store_ranges_free(&l->present);
}

bool store_ranges_add(struct store_ranges *rs, uint32_t lo, uint32_t hi)
{
	struct store_uid_range *r;

	if (rs->n == STORE_MAX_MESSAGES)
		return false;
	r = grow_reserve(rs->r, &rs->cap, rs->n + 1, sizeof(*r));
	if (!r)
		return false;
	rs->r = r;
	rs->r[rs->n].lo = lo <= hi ? lo : hi;
	rs->r[rs->n].hi = lo <= hi ? hi : lo;
	rs->n++;
	return true;
}

static int store_ranges_cmp(const void *a, const void *b)
{
	const struct store_uid_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void store_ranges_normalize(struct store_ranges *rs)
{
	size_t i, out = 0;

	if (rs->n < 2)
		return;
	qsort(rs->r, rs->n, sizeof(*rs->r), store_ranges_cmp);
	for (i = 1; i < rs->n; i++) {
		struct store_uid_range *last = &rs->r[out];

		if ((uint64_t)rs->r[i].lo <= (uint64_t)last->hi + 1) {
			if (rs->r[i].hi > last->hi)
				last->hi = rs->r[i].hi;
		} else {
			rs->r[++out] = rs->r[i];
		}
	}
	rs->n = out + 1;
}

bool store_ranges_has(const struct store_ranges *rs, uint32_t uid)
{
	size_t lo = 0, hi = rs->n;

	/* The last range starting at or before uid. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rs->r[mid].lo <= uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && rs->r[lo - 1].hi >= uid;
}

/* A delta's messages in UID order, the later report first among equal
 * UIDs (it is the newer). */
struct store_delta_ref {
	struct store_msg *m;
	size_t at;
};

static int store_delta_cmp(const void *a, const void *b)
{
	const struct store_delta_ref *x = a, *y = b;

	if (x->m->uid != y->m->uid)
		return x->m->uid < y->m->uid ? -1 : 1;
	return x->at > y->at ? -1 : x->at < y->at;
}

/* The first of refs (sorted) with uid, or n. */
static size_t store_delta_find(const struct store_delta_ref *refs, size_t n,
			       uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (refs[mid].m->uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && refs[lo].m->uid == uid ? lo : n;
}

static int store_msg_uid_cmp(const void *a, const void *b)
{
	const struct store_msg *x = a, *y = b;

	return x->uid < y->uid ? -1 : x->uid > y->uid;
}

/* Copies what survives of base, with the delta's flags, into out. */
static int store_merge_base(const struct store_listing *base,
			    const struct store_listing *d,
			    const struct store_delta_ref *refs,
			    struct store_listing *out)
{
	size_t i, j;

	for (i = 0; i < base->n; i++) {
		const struct store_msg *m = &base->msgs[i];
		const struct store_msg *u = NULL;
		struct store_msg *sm;

		if (store_ranges_has(&d->vanished, m->uid) ||
		    (d->have_present && !store_ranges_has(&d->present, m->uid)))
			continue;
		for (j = store_delta_find(refs, d->n, m->uid);
		     j < d->n && refs[j].m->uid == m->uid && !u; j++)
			if (refs[j].m->flags_only)
				u = refs[j].m;
		if (!u && d->complete)
			continue;
		sm = &out->msgs[out->n];
		*sm = (struct store_msg){.uid = m->uid,
					 .size = m->size,
					 .date = m->date,
					 .idhash = m->idhash,
					 .oid = m->oid};
		sm->flags = strdup(u ? u->flags : m->flags ? m->flags : "");
		if (!sm->flags)
			return -ENOMEM;
		out->n++;
	}
	return 0;
}

int store_listing_merge(const struct store_listing *base,
			struct store_listing *d, struct store_listing *out)
{
	struct store_delta_ref *refs;
	size_t i, n_new = 0, n_old;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (base->uidvalidity != d->uidvalidity)
		return -ESTALE;
	refs = calloc(d->n + 1, sizeof(*refs));
	if (!refs)
		return -ENOMEM;
	for (i = 0; i < d->n; i++) {
		refs[i] = (struct store_delta_ref){&d->msgs[i], i};
		n_new += !d->msgs[i].flags_only;
	}
	qsort(refs, d->n, sizeof(*refs), store_delta_cmp);
	out->msgs = calloc(base->n + n_new + 1, sizeof(*out->msgs));
	if (!out->msgs)
		rc = -ENOMEM;
	if (rc == 0)
		rc = store_merge_base(base, d, refs, out);
	n_old = out->n;
	if (rc == 0)
		qsort(out->msgs, n_old, sizeof(*out->msgs), store_msg_uid_cmp);
	/* New messages, once each (the newest report), none known. */
	for (i = 0; rc == 0 && i < d->n; i++) {
		struct store_msg *m = refs[i].m, key = {.uid = m->uid};

		if (m->flags_only || (i > 0 && refs[i - 1].m->uid == m->uid &&
				      !refs[i - 1].m->flags_only))
			continue;
		if (bsearch(&key, out->msgs, n_old, sizeof(*out->msgs),
			    store_msg_uid_cmp))
			continue;
		out->msgs[out->n] = *m;
		m->flags = m->name = m->ref = NULL;
		out->n++;
	}
	free(refs);
	if (rc == 0 && d->exists <= STORE_MAX_MESSAGES && out->n != d->exists)
		rc = -EAGAIN;
	if (rc < 0) {
		store_listing_clear(out);
		return rc;
	}
	out->uidvalidity = d->uidvalidity;
	out->uidnext = d->uidnext;
	out->exists = d->exists;
	out->modseq = d->modseq;
	out->mtime = d->mtime;
	return 0;
}

void store_ranges_free(struct store_ranges *rs)
{
	free(rs->r);
	memset(rs, 0, sizeof(*rs));
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
