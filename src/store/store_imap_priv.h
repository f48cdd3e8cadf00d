/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store_imap_priv: what the files of the IMAP store share: store_imap.c
 * (the session pool, listings, push and the operation table),
 * store_imap_read.c (bodies, parts, search, quota) and
 * store_imap_write.c (flags, moves, removals, folders, new messages).
 * Not for other modules.
 */
#ifndef MAILFS_STORE_IMAP_PRIV_H
#define MAILFS_STORE_IMAP_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "store.h"

struct imap_session;

/*
 * An operation on one session. Returns 0 on success, STORE_IMAP_FAILED
 * when an IMAP command failed (imap_error() says how), or a negative
 * errno decided by the operation itself.
 */
#define STORE_IMAP_FAILED 1
typedef int (*store_imap_op)(struct imap_session *s, void *arg);

/*
 * Runs op on a pooled session of st (preferring one with folder
 * selected). When repeatable, a pooled session found dropped (not timed
 * out) gives one more try on a new session. Returns 0 or a negative
 * errno; IMAP errors are logged and mapped by store_errno_imap().
 */
int store_imap_run(struct store *st, const char *folder, bool repeatable,
		   store_imap_op op, void *arg);
/* Selects folder (read-write unless readonly) and checks that its
 * UIDVALIDITY is still uidvalidity: -ESTALE if not, STORE_IMAP_FAILED
 * when the SELECT failed. */
int store_imap_select(struct imap_session *s, const char *folder, bool readonly,
		      uint32_t uidvalidity);

/* store_imap_read.c: the operations of the same names (store.h). */
int store_imap_read_fetch(struct store *st, const char *folder,
			  uint32_t uidvalidity, const uint32_t *uids, size_t n,
			  uint64_t offset, uint64_t len,
			  void (*cb)(void *ctx, const struct store_piece *p),
			  void *ctx);
int store_imap_read_fetch_many(struct store *st, struct store_fetch_req *reqs,
			       size_t n);
int store_imap_read_quota(struct store *st, uint64_t *used_r,
			  uint64_t *limit_r);
int store_imap_read_search(struct store *st, const char *const *folders,
			   size_t n, const struct search_query *q,
			   void (*cb)(void *ctx,
				      const struct store_search_hit *h),
			   void *ctx);
int store_imap_read_summary(
	struct store *st, const char *folder, uint32_t uidvalidity,
	void (*cb)(void *ctx, const struct store_summary *m), void *ctx);
int store_imap_read_structure(struct store *st, const char *folder,
			      uint32_t uidvalidity, uint32_t uid,
			      struct msgstruct **ms_r);
int store_imap_read_fetch_section(
	struct store *st, const char *folder, uint32_t uidvalidity,
	uint32_t uid, const char *section, bool binary, uint64_t offset,
	uint64_t len, void (*cb)(void *ctx, const char *data, size_t len),
	void *ctx);

/* store_imap_write.c: the operations of the same names (store.h). */
int store_imap_write_set_flags(struct store *st, const char *folder,
			       uint32_t uidvalidity,
			       const struct store_msg *msg, const char *flags,
			       char **result_r);
int store_imap_write_change_flags(struct store *st, const char *folder,
				  uint32_t uidvalidity,
				  const struct store_msg *msg, const char *add,
				  const char *remove, char **result_r);
int store_imap_write_move(struct store *st, const char *folder,
			  uint32_t uidvalidity, const struct store_msg *msg,
			  const char *target, uint32_t *uid_r,
			  uint32_t *uidvalidity_r);
int store_imap_write_expunge(struct store *st, const char *folder,
			     uint32_t uidvalidity, const struct store_msg *msg);
int store_imap_write_create_folder(struct store *st, const char *name);
int store_imap_write_delete_folder(struct store *st, const char *name);
int store_imap_write_rename_folder(struct store *st, const char *from,
				   const char *to);
int store_imap_write_append(struct store *st, const char *folder,
			    const char *flags, time_t date, uint64_t size,
			    long (*read)(void *ctx, char *buf, size_t len),
			    void *ctx, uint32_t *uid_r,
			    uint32_t *uidvalidity_r);

#endif
