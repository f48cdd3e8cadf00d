/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * newmsg: messages being created through the mount (cp, cat >), held in
 * an unlinked temporary file until the file is closed and the message is
 * APPENDed. Local I/O only: the network is the store's.
 *
 * A table maps paths to the new messages, so that lookups, listings and
 * a second open find them while they are written. Each message is
 * reference counted: the table holds one reference while it is
 * registered, each open handle one more.
 */
#ifndef MAILFS_NEWMSG_H
#define MAILFS_NEWMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct newmsg;
struct newmsg_table;

struct newmsg_table *newmsg_table_new(void);
void newmsg_table_free(struct newmsg_table *t);

/*
 * Registers a new, empty message at path, in folder (server name), with
 * its bytes in an unlinked file under tmpdir. temporary: a temporary
 * whatever its name (a file in a Maildir tmp/). Returns it with one
 * reference for the caller, or NULL with *err_r set (-EEXIST if path is
 * taken, -errno of the temporary file).
 */
struct newmsg *newmsg_create(struct newmsg_table *t, const char *path,
			     const char *folder, const char *tmpdir,
			     pid_t creator, bool temporary, int *err_r);
/* The process (as FUSE names it) that created the file: its close
 * stores the message; closes by others (forked children, readers) do
 * not store a half-written one. */
pid_t newmsg_creator(const struct newmsg *m);
/* True when the caller's reference is the only open handle left. */
bool newmsg_last_handle(struct newmsg_table *t, const struct newmsg *m);
/* The registered message at path, with a new reference; NULL if none. */
struct newmsg *newmsg_get(struct newmsg_table *t, const char *path);
/* Drops a reference; the last one frees the message. */
void newmsg_put(struct newmsg_table *t, struct newmsg *m);
/* Unregisters m (once stored, or abandoned): path lookups no longer find
 * it; open handles keep it until they are released. */
void newmsg_forget(struct newmsg_table *t, struct newmsg *m);

/* What stat shows for a registered path. Returns false if none. */
/* m's size and date (now, when none was set). */
void newmsg_size(struct newmsg *m, uint64_t *size_r, time_t *mtime_r);
bool newmsg_stat(struct newmsg_table *t, const char *path, uint64_t *size_r,
		 time_t *mtime_r);
/* Calls fill(ctx, name, size, mtime) for each message registered in
 * the directory dir (a mount path, "/" for the root). The table is
 * locked meanwhile: fill must not call back into it. */
void newmsg_list(struct newmsg_table *t, const char *dir,
		 void (*fill)(void *ctx, const char *name, uint64_t size,
			      time_t mtime),
		 void *ctx);

/* Writes at off; -EFBIG beyond limit bytes (0: no limit), -EROFS once
 * the message was stored. Returns the bytes written or a negative
 * errno. */
ssize_t newmsg_write(struct newmsg *m, const char *buf, size_t size, off_t off,
		     uint64_t limit);
int newmsg_truncate(struct newmsg *m, uint64_t size, uint64_t limit);
void newmsg_set_date(struct newmsg *m, time_t date);
/* Flags to store the message with (already validated); -EROFS once it
 * is being stored. */
int newmsg_set_flags(struct newmsg *m, const char *flags);

const char *newmsg_folder(const struct newmsg *m);
const char *newmsg_path(const struct newmsg *m);

/*
 * Starts storing: returns true when this caller is to APPEND the
 * message now (it has data and no store was attempted yet: a failed
 * APPEND, which the server may have executed all the same, is not sent
 * again), and then fills the
 * snapshot: size with bare LFs turned into CRLF, date (0: now), the
 * names_msgid_hash() of its Message-ID and flags (a copy, owned by the
 * caller).
 */
bool newmsg_begin_store(struct newmsg *m, uint64_t *size_r, time_t *date_r,
			uint32_t *idhash_r, char **flags_r, int *err_r);
/* Ends a store that sent nothing (refused before APPEND): the message
 * may still be stored later. */
void newmsg_cancel_store(struct newmsg *m);
/* Ends storing; stored tells whether the server has the message. */
void newmsg_end_store(struct newmsg *m, bool stored);
/* True when the message holds no byte yet. */
bool newmsg_empty(struct newmsg *m);

/*
 * Reads the message with bare LF turned into CRLF, from the start, for
 * the APPEND literal: newmsg_rewind() first, then newmsg_read() as the
 * store's reader (ctx is the struct newmsg). Returns bytes, 0 at the
 * end, -1 on an error.
 */
void newmsg_rewind(struct newmsg *m);
long newmsg_read(void *ctx, char *buf, size_t len);

/*
 * Temporaries: a file whose name starts with '.' (rsync's .NAME.XXXXXX)
 * is a temporary. Closing it stores nothing and it stays registered,
 * with the times and flags set on it, until it is renamed (to another
 * temporary name with newmsg_rename(), or stored by the caller under a
 * name without the dot), unlinked (newmsg_forget()) or swept.
 */
bool newmsg_temporary(const struct newmsg *m);
/* Registers m under a new path and folder; -EEXIST if path is taken. */
int newmsg_rename(struct newmsg_table *t, struct newmsg *m, const char *path,
		  const char *folder);
/* Discards, with a log line, every temporary that no handle holds and
 * that was not used for max_idle seconds. */
void newmsg_sweep(struct newmsg_table *t, unsigned max_idle);
/* Discards every temporary left (at unmount), with a log line each. */
void newmsg_discard_temporaries(struct newmsg_table *t);

#endif
