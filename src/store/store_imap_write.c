// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * store_imap_write: the store vtable's changes over IMAP: flags, moves
 * and removals of one message, folders created, deleted and renamed,
 * and new messages (APPEND). Each runs on a pooled session through
 * store_imap_run() (store_imap.c). Setting flags can be repeated and is
 * retried once on a new session when the pooled one was dropped; the
 * others are never repeated: a repeat could copy or store a message
 * twice.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap.h"
#include "log.h"
#include "store.h"
#include "store_imap_priv.h"

/* Arguments of the operations on one message. */
struct store_imap_write_msg {
	const char *folder;
	uint32_t uidvalidity;
	uint32_t uid;
	const char *flags; /* set_flags; change_flags: those to add */
	const char *remove; /* change_flags: the flags to remove */
	char *result; /* set_flags, change_flags: owned */
	const char *target; /* move */
	uint32_t new_uid, new_uidvalidity;
};

/* True when every flag of want appears in have (space separated). */
static bool store_imap_write_flags_kept(const char *want, const char *have)
{
	char *dup = strdup(want), *tok, *save = NULL;
	bool ok = dup != NULL;

	for (tok = dup ? strtok_r(dup, " ", &save) : NULL; tok && ok;
	     tok = strtok_r(NULL, " ", &save)) {
		const char *p = have;
		size_t len = strlen(tok);

		ok = false;
		while (p && *p && !ok) {
			ok = strncasecmp(p, tok, len) == 0 &&
			     (p[len] == ' ' || p[len] == '\0');
			p = strchr(p, ' ');
			if (p)
				p++;
		}
	}
	free(dup);
	return ok;
}

/* After a STORE: the flags the server reports must hold every flag
 * asked for (a flag it does not keep fails with EINVAL). */
static int store_imap_write_flags_result(const struct store_imap_write_msg *m)
{
	if (!m->result)
		return -ENOENT;
	if (!store_imap_write_flags_kept(m->flags, m->result)) {
		log_warnx("the server did not keep all of the flags '%s' "
			  "(it has '%s')",
			  m->flags, m->result);
		return -EINVAL;
	}
	return 0;
}

/* Replaces the message's flags (UID STORE FLAGS) once each is known to
 * be allowed in the folder. */
static int store_imap_write_set_flags_op(struct imap_session *s, void *arg)
{
	struct store_imap_write_msg *m = arg;
	char *dup, *tok, *save = NULL;
	int rc;

	rc = store_imap_select(s, m->folder, false, m->uidvalidity);
	if (rc)
		return rc == -ESTALE ? -ENOENT : rc;
	dup = strdup(m->flags);
	if (!dup)
		return -ENOMEM;
	for (tok = strtok_r(dup, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		if (!imap_write_flag_allowed(s, tok)) {
			log_warnx("flag '%s' is not allowed here", tok);
			free(dup);
			return -EINVAL;
		}
	}
	free(dup);
	free(m->result);
	m->result = NULL;
	if (imap_write_flags(s, m->uid, m->flags, &m->result) < 0)
		return STORE_IMAP_FAILED;
	return store_imap_write_flags_result(m);
}

/* store_ops.set_flags: the message's flags become flags; *result_r gets
 * those the server then reports. */
int store_imap_write_set_flags(struct store *st, const char *folder,
			       uint32_t uidvalidity,
			       const struct store_msg *msg, const char *flags,
			       char **result_r)
{
	struct store_imap_write_msg m = {.folder = folder,
					 .uidvalidity = uidvalidity,
					 .uid = msg->uid,
					 .flags = flags};
	int rc;

	rc = store_imap_run(st, folder, true, store_imap_write_set_flags_op,
			    &m);
	if (rc < 0) {
		free(m.result);
		return rc;
	}
	*result_r = m.result;
	return 0;
}

/* True when the server may store every flag of flags (space
 * separated) in the selected mailbox. */
static bool store_imap_write_flags_allowed(struct imap_session *s,
					   const char *flags)
{
	char *dup = strdup(flags), *tok, *save = NULL;
	bool ok = dup != NULL;

	for (tok = dup ? strtok_r(dup, " ", &save) : NULL; tok && ok;
	     tok = strtok_r(NULL, " ", &save)) {
		ok = imap_write_flag_allowed(s, tok);
		if (!ok)
			log_warnx("flag '%s' is not allowed here", tok);
	}
	free(dup);
	return ok;
}

/* +FLAGS then -FLAGS, each only when it has flags: the message's other
 * flags (keywords) are never sent, so they stay whatever they are. */
static int store_imap_write_change_flags_op(struct imap_session *s, void *arg)
{
	struct store_imap_write_msg *m = arg;
	int rc;

	rc = store_imap_select(s, m->folder, false, m->uidvalidity);
	if (rc)
		return rc == -ESTALE ? -ENOENT : rc;
	if (!store_imap_write_flags_allowed(s, m->flags))
		return -EINVAL;
	free(m->result);
	m->result = NULL;
	if (*m->flags &&
	    imap_write_flags_mode(s, m->uid, '+', m->flags, &m->result) < 0)
		return STORE_IMAP_FAILED;
	if (*m->remove) {
		free(m->result);
		m->result = NULL;
		if (imap_write_flags_mode(s, m->uid, '-', m->remove,
					  &m->result) < 0)
			return STORE_IMAP_FAILED;
	}
	return store_imap_write_flags_result(m);
}

/* store_ops.change_flags: adds and removes flags, leaving the others;
 * *result_r gets those the server then reports. */
int store_imap_write_change_flags(struct store *st, const char *folder,
				  uint32_t uidvalidity,
				  const struct store_msg *msg, const char *add,
				  const char *remove, char **result_r)
{
	struct store_imap_write_msg m = {.folder = folder,
					 .uidvalidity = uidvalidity,
					 .uid = msg->uid,
					 .flags = add,
					 .remove = remove};
	int rc;

	if (!*add && !*remove)
		return -EINVAL;
	rc = store_imap_run(st, folder, true, store_imap_write_change_flags_op,
			    &m);
	if (rc < 0) {
		free(m.result);
		return rc;
	}
	*result_r = m.result;
	return 0;
}

/* With UIDPLUS, a MOVE or COPY answered without a COPYUID for the
 * message moved or copied nothing: the message was gone (another client
 * expunged it). */
static bool store_imap_write_moved_nothing(struct imap_session *s,
					   const struct store_imap_write_msg *m)
{
	if (!(imap_caps(s) & IMAP_CAP_UIDPLUS) || m->new_uid)
		return false;
	log_info("message %u of %s is gone: nothing was moved", m->uid,
		 m->folder);
	return true;
}

/*
 * Moves one message: UID MOVE where the server has MOVE, else UID COPY,
 * then \Deleted and UID EXPUNGE of that UID alone. Cut at any point, the
 * message is in the source, the target, or both.
 */
static int store_imap_write_move_op(struct imap_session *s, void *arg)
{
	struct store_imap_write_msg *m = arg;
	unsigned caps = imap_caps(s);
	int rc;

	if (!(caps & (IMAP_CAP_MOVE | IMAP_CAP_UIDPLUS))) {
		log_warnx("the server has neither MOVE nor UIDPLUS: moving "
			  "would need an EXPUNGE of every deleted message, "
			  "so it is refused");
		return -EPERM;
	}
	rc = store_imap_select(s, m->folder, false, m->uidvalidity);
	if (rc)
		return rc == -ESTALE ? -ENOENT : rc;
	if (caps & IMAP_CAP_MOVE) {
		if (imap_write_copy(s, m->uid, m->target, true, &m->new_uid,
				    &m->new_uidvalidity) < 0)
			return STORE_IMAP_FAILED;
		return store_imap_write_moved_nothing(s, m) ? -ENOENT : 0;
	}
	if (imap_write_copy(s, m->uid, m->target, false, &m->new_uid,
			    &m->new_uidvalidity) < 0)
		return STORE_IMAP_FAILED;
	/* Nothing was copied: nothing may be removed. */
	if (store_imap_write_moved_nothing(s, m))
		return -ENOENT;
	if (imap_write_expunge(s, m->uid) < 0) {
		log_warnx("message %u was copied to %s but could not be "
			  "removed from %s: it is now in both",
			  m->uid, m->target, m->folder);
		return STORE_IMAP_FAILED;
	}
	return 0;
}

/* store_ops.move: moves one message to target; *uid_r and
 * *uidvalidity_r get its new UID where the server tells it (COPYUID),
 * else 0. */
int store_imap_write_move(struct store *st, const char *folder,
			  uint32_t uidvalidity, const struct store_msg *msg,
			  const char *target, uint32_t *uid_r,
			  uint32_t *uidvalidity_r)
{
	struct store_imap_write_msg m = {
		.folder = folder, .uidvalidity = uidvalidity, .uid = msg->uid};
	int rc;

	m.target = target;
	rc = store_imap_run(st, folder, false, store_imap_write_move_op, &m);
	*uid_r = rc == 0 ? m.new_uid : 0;
	*uidvalidity_r = rc == 0 ? m.new_uidvalidity : 0;
	return rc;
}

/* Expunges one message (UID EXPUNGE of its UID alone). */
static int store_imap_write_expunge_op(struct imap_session *s, void *arg)
{
	struct store_imap_write_msg *m = arg;
	int rc;

	rc = store_imap_select(s, m->folder, false, m->uidvalidity);
	if (rc)
		return rc == -ESTALE ? -ENOENT : rc;
	return imap_write_expunge(s, m->uid) < 0 ? STORE_IMAP_FAILED : 0;
}

/* store_ops.expunge: removes one message for good. */
int store_imap_write_expunge(struct store *st, const char *folder,
			     uint32_t uidvalidity, const struct store_msg *msg)
{
	struct store_imap_write_msg m = {
		.folder = folder, .uidvalidity = uidvalidity, .uid = msg->uid};

	return store_imap_run(st, folder, false, store_imap_write_expunge_op,
			      &m);
}

/* Arguments of the folder operations. */
struct store_imap_write_folder_args {
	const char *name;
	const char *to;
};

/* CREATE on one session. */
static int store_imap_write_create_op(struct imap_session *s, void *arg)
{
	struct store_imap_write_folder_args *a = arg;

	return imap_mailbox_create(s, a->name) < 0 ? STORE_IMAP_FAILED : 0;
}

/* store_ops.create_folder. */
int store_imap_write_create_folder(struct store *st, const char *name)
{
	struct store_imap_write_folder_args a = {name, NULL};

	return store_imap_run(st, NULL, false, store_imap_write_create_op, &a);
}

/* Deletes a folder only if it has no messages: IMAP's DELETE would
 * take them along. The check and the DELETE use one session, back to
 * back, to keep the window for another client's delivery small. */
static int store_imap_write_delete_op(struct imap_session *s, void *arg)
{
	struct store_imap_write_folder_args *a = arg;
	struct imap_mailbox mb;

	if (imap_mailbox_select(s, a->name, true, true, &mb) < 0) {
		unsigned attrs;
		struct imap_error refused;
		int e;

		/* Only a \Noselect folder may be deleted unexamined: it
		 * cannot hold messages. Any other refusal (no right to read,
		 * in use...) stands, since DELETE would take the messages. */
		if (imap_error(s)->kind != IMAP_ERR_NO)
			return STORE_IMAP_FAILED;
		refused = *imap_error(s);
		if (imap_mailbox_attrs(s, a->name, &attrs) < 0)
			return STORE_IMAP_FAILED;
		if (!(attrs & IMAP_MBOX_NOSELECT)) {
			log_warnx("%s: not deleted, it cannot be examined: %s",
				  a->name, refused.text);
			e = store_errno_imap(&refused);
			return e == EIO ? -EACCES : -e;
		}
	} else if (mb.exists > 0) {
		return -ENOTEMPTY;
	}
	return imap_mailbox_delete(s, a->name) < 0 ? STORE_IMAP_FAILED : 0;
}

/* store_ops.delete_folder: -ENOTEMPTY when the folder holds messages. */
int store_imap_write_delete_folder(struct store *st, const char *name)
{
	struct store_imap_write_folder_args a = {name, NULL};

	return store_imap_run(st, name, false, store_imap_write_delete_op, &a);
}

/* RENAME on one session. */
static int store_imap_write_rename_op(struct imap_session *s, void *arg)
{
	struct store_imap_write_folder_args *a = arg;

	return imap_mailbox_rename(s, a->name, a->to) < 0 ? STORE_IMAP_FAILED
							  : 0;
}

/* store_ops.rename_folder. */
int store_imap_write_rename_folder(struct store *st, const char *from,
				   const char *to)
{
	struct store_imap_write_folder_args a = {from, to};

	return store_imap_run(st, from, false, store_imap_write_rename_op, &a);
}

/* Arguments of APPEND. */
struct store_imap_write_append {
	const char *folder;
	const char *flags;
	time_t date;
	uint64_t size;
	long (*read)(void *ctx, char *buf, size_t len);
	void *ctx;
	uint32_t uid, uidvalidity;
};

/* APPEND on one session, the bytes pulled through a->read. */
static int store_imap_write_append_op(struct imap_session *s, void *arg)
{
	struct store_imap_write_append *a = arg;

	return imap_write_append(s, a->folder, a->flags, a->date, a->size,
				 a->read, a->ctx, &a->uid, &a->uidvalidity) < 0
		       ? STORE_IMAP_FAILED
		       : 0;
}

/* store_ops.append: a new message in folder; *uid_r and *uidvalidity_r
 * get its UID where the server tells it (APPENDUID), else 0. */
int store_imap_write_append(struct store *st, const char *folder,
			    const char *flags, time_t date, uint64_t size,
			    long (*read)(void *ctx, char *buf, size_t len),
			    void *ctx, uint32_t *uid_r, uint32_t *uidvalidity_r)
{
	struct store_imap_write_append a = {folder, flags, date, size,
					    read,   ctx,   0,	 0};
	int rc;

	rc = store_imap_run(st, NULL, false, store_imap_write_append_op, &a);
	*uid_r = a.uid;
	*uidvalidity_r = a.uidvalidity;
	return rc;
}
