/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsctx: the services every kind of node uses (fsctx.c): the calling
 * request's mount, finding what a path names with listings refreshed
 * when stale, and the attributes the tree's nodes show. Below the kinds,
 * above fswatch and fswalk (which it calls).
 */
#ifndef MAILFS_FSCTX_H
#define MAILFS_FSCTX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "fsstate.h"

/* The mount of the calling request (a FUSE request thread). */
struct fsmount *fsctx_get(void);
/* The mount's timeout in milliseconds: how long a wait for another
 * thread may last. */
int fsctx_wait_ms(const struct fsmount *fs);
/* Finds what path names, listing what is stale; 0 or -errno. info is
 * initialised on every path (tree_info_clear() is always safe). */
int fsctx_resolve(struct fsmount *fs, const char *path, struct tree_info *info);
/* Lists a folder again if its listing is older than max_age. */
int fsctx_refresh_listing(struct fsmount *fs, const char *folder,
			  unsigned max_age);
/* The folder list, listed again (store->folders()) if older than
 * max_age, one thread at a time; folders the tree leaves out are
 * logged. 0 or -errno. */
int fsctx_refresh_folders(struct fsmount *fs, unsigned max_age);
/* Checks that a resolved directory can hold messages (clears it if
 * not). */
int fsctx_holds_messages(struct tree_info *info);
/* -EEXIST if path exists, else resolves its directory into dir (dir is
 * initialised on every path). */
int fsctx_new_name(struct fsmount *fs, const char *path, struct tree_info *dir);
/* The size limit of a new message (0: none). */
uint64_t fsctx_append_limit(const struct fsmount *fs);
/* The mode bits a node of mode (type and bits) shows. */
mode_t fsctx_mode(const struct fsmount *fs, mode_t mode);
/* Fills st from what the tree knows. */
void fsctx_stat(const struct fsmount *fs, const struct tree_info *info,
		struct stat *st);
/* Fills st for a file being created at path, of size bytes. */
void fsctx_newmsg_fill(struct fsmount *fs, const char *path, uint64_t size,
		       time_t mtime, struct stat *st);
/* Fills st for the file being created at path; false if there is none. */
bool fsctx_newmsg_stat(struct fsmount *fs, const char *path, struct stat *st);
/* True when the store holds a message's whole body locally (store.h:
 * local): fetched without the network. */
bool fsctx_local(const struct fsmount *fs, const char *folder,
		 uint32_t uidvalidity, uint32_t uid);
/* The cache key of message uid of folder (server name; folder_id its
 * tree_folder_id()) under uidvalidity: with the message's content
 * identity when its listing gives one (tree_message_oid()), so that
 * copies of one message share one cached body. */
void fsctx_msg_key(struct fsmount *fs, const char *folder, uint64_t folder_id,
		   uint32_t uidvalidity, uint32_t uid, struct cache_key *k);
/* A message moved to target (new UID uid, 0 if not told): the tree and
 * the memory cache follow it. */
void fsctx_moved(struct fsmount *fs, const struct tree_info *msg,
		 const char *target, uint32_t uidvalidity, uint32_t uid,
		 const char *alias);

#endif
