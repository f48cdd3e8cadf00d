/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tree_priv: what the parts of tree (tree.c, tree_folders.c,
 * tree_listing.c, tree_maildir.c, tree_ino.c) share: the records of
 * the tree and the functions one part calls in another. Not for use
 * outside them: the rest of mailfs uses tree.h.
 */
#ifndef MAILFS_TREE_PRIV_H
#define MAILFS_TREE_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <uthash.h>

#include "maildir.h"
#include "store.h"
#include "tree.h"

struct tree_msg {
	uint32_t uid;
	uint32_t idhash; /* what the name is made of, with date */
	uint64_t listed_size; /* and the size as listed */
	uint64_t size; /* what stat shows */
	time_t date;
	const char *flags; /* interned (tree_listing_intern()): never freed */
	char *name; /* owned */
	char *ref; /* owned: the store's own id (POP3 UIDL), or NULL */
	char *base; /* owned: Maildir layout: the default layout's name,
		     * which the name is made from (NULL for an alias) */
	bool alias; /* another name for a message: found, not listed */
	bool user_named; /* Maildir layout: a name this mount gave it
			  * (delivered or moved under), listed instead of
			  * its own until its flags change
			  * (tree_maildir_keep_user_names()) */
	bool size_fixed; /* size corrected from the bytes: kept over the
			   * server's RFC822.SIZE in later listings */
	bool gone; /* removed since the listing: neither */
	bool extra; /* in tree_listing.extras: a struct tree_extra */
	struct tree_msg *next_extra; /* in tree_listing.extras */
	UT_hash_handle hh; /* by name */
};

/* One folder's listing; messages sorted by UID. */
struct tree_listing {
	struct store_listing state; /* msgs == NULL */
	struct tree_msg *msgs; /* owned array */
	size_t n;
	/* The content identities of msgs (store_msg.oid), index for
	 * index; owned, NULL when no message of the listing has one (a
	 * server without OBJECTID or X-GM-MSGID pays nothing). */
	struct store_oid *oids;
	struct tree_msg *by_name; /* uthash over msgs and extras */
	/* Messages added by this mount since the listing (moved or
	 * appended here), each allocated alone; owned. */
	struct tree_msg *extras;
	bool maildir; /* named by the Maildir layout */
	uint32_t hi; /* its messages' inode numbers' upper half */
};

/* A folder's state as the server tells it: what changes whenever its
 * content does (HIGHESTMODSEQ only with CONDSTORE). */
struct tree_state {
	uint32_t uidvalidity, uidnext, exists;
	uint64_t modseq;
};

struct tree_folder {
	char *name; /* owned: server name */
	char *path; /* owned: mount path, "" for the root's own messages */
	const char *base; /* borrowed from path: last component */
	char delim;
	unsigned attrs;
	uint32_t messages; /* from the folder list, or STORE_COUNT_UNKNOWN */
	uint64_t id;
	unsigned subfolders;
	bool implied; /* a parent the server did not list */
	struct tree_listing *listing; /* owned, NULL until listed */
	time_t listed_at;
	/* Wall clock: when its content was last seen to change (for a
	 * directory without messages: its subfolders); what its
	 * directory, cur/ and new/ show as mtime. Never goes back. */
	time_t mtime;
	/* The last state the folder list or a listing told (has_seen):
	 * another one means the content changed meanwhile. */
	struct tree_state seen;
	bool has_seen;
	/* The folder list told a new state (seen) and moved mtime for it:
	 * the listing that then shows that state is the change already
	 * told, and moves mtime no more (tree_listing_moved()). */
	bool seen_moved;
	UT_hash_handle hh_path;
	UT_hash_handle hh_name;
};

struct tree {
	pthread_rwlock_t lock; /* folders, listings, timestamps */
	struct tree_folder *by_path;
	struct tree_folder *by_name;
	bool folders_listed;
	bool folders_known; /* a folder list was set once (never reset) */
	time_t folders_at;
	time_t root_mtime; /* the mount's start, moved when top-level
			    * folders come or go */
	unsigned top_folders;
	/* Refresh coordination; taken before lock, never after it. */
	pthread_mutex_t busy_lock;
	pthread_cond_t busy_cond;
	struct tree_busy *busy;
	bool maildir; /* the Maildir layout (tree_set_maildir()) */
	uint64_t gen; /* counts write locks: what the index below is of */
	/* Which folder a message inode number's upper half names
	 * (tree_ino_path()); rebuilt at first use after any change. Taken
	 * inside a read lock of `lock`, never across anything else. */
	pthread_mutex_t hi_lock;
	struct tree_hi *hi_index;
	uint64_t hi_gen;
	bool hi_built;
	/* Which folder incarnation each upper half was given to, for the
	 * tree's life (under the write lock of `lock`; see tree_ino_bind()). */
	struct tree_bind *binds_by_key; /* live incarnations */
	struct tree_bind *binds_by_hi; /* every upper half ever given */
	/* Told what each new listing changed (tree_set_hook()). */
	void (*hook)(void *ctx, const struct tree_change *c);
	void *hook_ctx;
};

/* Change reports gathered under the write lock, told after it. */
struct tree_changes {
	struct tree_change *c; /* owned */
	size_t n, cap;
};

/* tree.c: the tree, lookups, change reports */
void tree_wrlock(struct tree *t);
bool tree_change_gone(struct tree_change *c, const char *name);
bool tree_change_init(struct tree_change *c, const struct tree_folder *f);
time_t tree_wall(void);
bool tree_move_mtime(struct tree *t, struct tree_folder *f, time_t at);
struct tree_state tree_state_of(uint32_t uidvalidity, uint32_t uidnext,
				uint32_t exists, uint64_t modseq);
bool tree_see_state(struct tree_folder *f, struct tree_state s);
void tree_changes_add(struct tree *t, struct tree_changes *cs,
		      const struct tree_folder *f);
void tree_unlock_tell(struct tree *t, struct tree_changes *cs);
int tree_folder_info(const struct tree *t, const struct tree_folder *f,
		     struct tree_info *info);
int tree_msg_info(const struct tree_folder *f, const struct tree_msg *m,
		  struct tree_info *info);
bool tree_fresh(const struct tree_folder *f, time_t now, unsigned max_age);
struct tree_folder *tree_msg_folder(struct tree *t, const char *path,
				    size_t len);
int tree_fill_msg(struct tree *t, const struct tree_folder *dir,
		  const char *path, const struct tree_msg *m,
		  enum maildir_sub in,
		  int (*fill)(void *ctx, const char *name,
			      const struct tree_info *info),
		  void *ctx);
void tree_content_changed(struct tree *t, const char *folder,
			  struct tree_changes *cs);

/* tree_ino.c: inode numbers */
uint64_t tree_ino_msg(const struct tree_listing *l, uint32_t uid);
uint32_t tree_ino_bind(struct tree *t, uint64_t folder_id,
		       uint32_t uidvalidity);
void tree_ino_retire(struct tree *t, uint32_t hi);
uint64_t tree_ino_folder(const struct tree_folder *f);
void tree_ino_free(struct tree *t);

/* tree_folders.c: the folder table */
void tree_folders_free(struct tree_folder *by_path);
unsigned tree_folders_count_subfolders(struct tree_folder *by_path);
int tree_folders_build(struct tree *t, const struct store_folder *fl, size_t n,
		       struct tree_folder **by_path_r,
		       struct tree_folder **by_name_r,
		       struct tree_skipped *skipped);
void tree_folders_carry(struct tree *t, struct tree_folder *by_path,
			time_t wall, struct tree_changes *cs);
void tree_folders_parents(struct tree *t, struct tree_folder *by_path,
			  struct tree_folder *by_name, time_t wall,
			  struct tree_changes *cs);

/* tree_listing.c: listings and their messages */
void tree_listing_free(struct tree_listing *l);
struct store_oid tree_listing_msg_oid(const struct tree_listing *l,
				      const struct tree_msg *m);
const struct tree_msg *tree_listing_by_uid(const struct tree_listing *l,
					   uint32_t uid);
void tree_listing_keep_fixed_sizes(struct tree_listing *old,
				   struct tree_listing *nl);
void tree_listing_diff(const struct tree_folder *f,
		       const struct tree_listing *old,
		       const struct tree_listing *nl, struct tree_change *c);
void tree_listing_moved(struct tree *t, struct tree_folder *f,
			const struct tree_listing *nl, struct tree_change *c);
struct tree_listing *tree_listing_build(struct store_listing *l, bool maildir);
int tree_listing_copy(struct tree *t, const char *folder, uint32_t uidvalidity,
		      struct store_listing *base);
struct tree_msg *tree_listing_find_uid(struct tree_listing *l, uint32_t uid,
				       size_t *pos_r);
struct tree_listing *tree_listing_of(struct tree *t, const char *folder,
				     uint32_t uidvalidity);
int tree_listing_add_extra(struct tree_listing *l, const struct store_msg *sm,
			   const char *name, bool alias, char *name_r,
			   struct tree_msg **m_r);
bool tree_listing_own_name(const struct store_msg *m, const char *name);
bool tree_listing_update_flags(struct tree_listing *l, uint32_t uid,
			       const char *flags, const char *from_key,
			       const char *to_key);

/* tree_maildir.c: the Maildir layout */
int tree_maildir_lookup(struct tree *t, const char *path, time_t now,
			unsigned max_age, struct tree_info *info);
int tree_maildir_fill_subs(const struct tree_folder *f,
			   int (*fill)(void *ctx, const char *name,
				       const struct tree_info *info),
			   void *ctx);
int tree_maildir_readdir(struct tree *t, const char *path,
			 int (*fill)(void *ctx, const char *name,
				     const struct tree_info *info),
			 void *ctx);
char *tree_maildir_msg_name(const struct tree_listing *l, struct tree_msg *m);
int tree_maildir_names(struct tree_listing *l);
void tree_maildir_keep_user_names(struct tree_listing *old,
				  struct tree_listing *nl);
int tree_maildir_add(struct tree_listing *l, const struct store_msg *m,
		     const char *alias);

#endif
