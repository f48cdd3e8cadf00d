/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tree: what the mount shows, in memory. No I/O. Folders (from LIST)
 * are directories named by names_to_path(); each folder's messages (from
 * its last listing) are files named by one naming policy,
 * tree_listing_name(), from what names the message rather than its slot
 * (names_message(): date, size, Message-ID), or by the store's own name
 * (POP3). Identity (folder, UIDVALIDITY, UID) is kept apart from the
 * name: inodes, cache keys and every change to the server use identity.
 *
 * Thread-safe: one read-write lock guards the folder table and listings.
 * It is only held for lookups and for swapping in a listing built
 * beforehand, never across network I/O. Callers get copies (struct
 * tree_info), never pointers into the tree.
 */
#ifndef MAILFS_TREE_H
#define MAILFS_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "maildir.h"
#include "store.h"

enum tree_kind {
	TREE_NONE, /* no such path */
	TREE_ROOT,
	TREE_FOLDER,
	TREE_MESSAGE,
	TREE_UNLISTED, /* a name inside a folder whose listing is stale or
			* missing: list the folder, then look again */
};

/* A copy of what a lookup found; release with tree_info_clear(). */
struct tree_info {
	enum tree_kind kind;
	uint64_t ino;
	uint64_t size;
	time_t mtime;
	unsigned nlink;
	unsigned attrs; /* folder: enum store_folder_attr */
	char *folder; /* owned: server name of the folder (or of
			     * the message's folder) */
	char *folder_path; /* owned: its path in the mount */
	uint64_t folder_id; /* stable hash of the server name */
	uint32_t uidvalidity;
	uint32_t uid; /* message: its identity, with folder and
			  * uidvalidity */
	uint32_t idhash; /* message: what its name is made of (see
			  * names_message()), with mtime and listed_size */
	uint64_t listed_size;
	/* message: its content identity (store_msg.oid), or none: what
	 * its body is cached under (cache.h) when set */
	struct store_oid oid;
	char *flags; /* owned: message flags, space separated */
	char *store_ref; /* owned: the store's own name for the message, if
			  * it has one (POP3 UIDL) */
	bool maybe_folder; /* TREE_NONE: no folder holding messages is the
			    * name's directory, so only a folder could be
			    * called so (a folder list made since may show
			    * one) */
	enum maildir_sub sub; /* Maildir layout: a folder's cur/, new/ or
			       * tmp/ (kind TREE_FOLDER, folder set) */
};

struct tree;

/* root_mtime: the mount's start (wall clock): what the root directory
 * shows as its mtime until top-level folders come or go, and what the
 * folders of the first folder list show when the store tells no time. */
struct tree *tree_new(time_t root_mtime);
void tree_free(struct tree *t);
/*
 * Switches the tree to the Maildir layout (before any folder is set):
 * each folder is a directory without messages of its own (shown as
 * \Noselect) holding cur/, new/ and tmp/; its messages are listed in
 * cur/ under maildir_name() names, folder levels named cur, new or tmp
 * are escaped (maildir_escape_level()). A name given to a message by
 * this mount (tree_add_message()'s alias) is listed in its place until
 * the next listing; "new/NAME" puts it in new/.
 */
void tree_set_maildir(struct tree *t);

/*
 * Folder mtimes. Each folder's directory (and in the Maildir layout its
 * cur/, new/ and tmp/) shows as mtime the time (wall clock) its content
 * was last seen to change, as a local Maildir's does: the store's time
 * for it (store_folder.mtime, store_listing.mtime: kept across mounts),
 * moved to now when a listing shows messages that came, went or changed
 * flags, when a listing or the folder list tells another state
 * (UIDVALIDITY, UIDNEXT, message count, HIGHESTMODSEQ) than the one told
 * before, at every change this mount makes (tree_remove_message(),
 * tree_add_message(), tree_set_flags(), tree_maildir_rename()), and at
 * tree_mark_changed(). A directory without messages moves when a
 * subfolder comes or goes. An mtime never goes back; without a time
 * from the store, a folder shows the mount's start (or, when it
 * appears later, the time it appeared): never 0.
 */

/*
 * What changed in a folder: for a new listing against the one it
 * replaced, the names the kernel may hold that now name nothing,
 * another message or a message of another size ("NAME", or "new/NAME"
 * in the Maildir layout), and whether messages came, went or changed
 * flags; for any change, the folder's mtime when it moved.
 */
struct tree_change {
	char *folder; /* server name; NULL for the root directory */
	char *dir; /* the folder's directory in the mount: "/F" */
	char **gone;
	size_t n_gone, cap_gone;
	bool content;
	bool nomem; /* some names may be missing from gone */
	time_t mtime; /* the folder's new mtime; 0: it did not move */
};

/* Sets the hook told of every listing that changed something and of
 * every move of a directory's mtime, after the tree's lock is
 * released, in the thread that made the change; it must only queue
 * work (it may not call into the tree). */
void tree_set_hook(struct tree *t,
		   void (*hook)(void *ctx, const struct tree_change *c),
		   void *ctx);
void tree_info_clear(struct tree_info *i);
/* A message's identity and what the mount shows of it (uid, flags, size,
 * date, idhash), as a store change takes it: msg borrows i's flags. */
void tree_info_msg(const struct tree_info *i, struct store_msg *msg);

/* The 64-bit FNV-1a hash of data, continued from seed (use
 * TREE_HASH_SEED to start). Stable across runs and machines. */
#define TREE_HASH_SEED 0xcbf29ce484222325ull
uint64_t tree_hash(const void *data, size_t len, uint64_t seed);
/* The id of a folder (its server name), as tree_info.folder_id and cache
 * keys use it. */
uint64_t tree_folder_id(const char *folder);

/* Bounds of the folder table (a hostile server's LIST): a folder
 * deeper than TREE_MAX_DEPTH levels, whose path in the mount is longer
 * than TREE_MAX_PATH bytes (it could not be used through the mount:
 * PATH_MAX) or whose server name is longer than STORE_MAX_FOLDER_NAME
 * is left out, and so is every folder once the table (names, paths and
 * records, implied parents included) holds TREE_MAX_FOLDER_BYTES. Each
 * implied parent costs a copy of a prefix of the name, so these keep
 * the table linear in what the server sent. */
#define TREE_MAX_DEPTH 64
#define TREE_MAX_PATH 4095
#define TREE_MAX_FOLDER_BYTES (64u * 1024 * 1024)

/* What tree_set_folders() left out, by the bound each folder exceeded
 * (the first one checked, in this order). */
struct tree_skipped {
	size_t long_name; /* server name over STORE_MAX_FOLDER_NAME */
	size_t deep; /* more than TREE_MAX_DEPTH levels */
	size_t long_path; /* path over TREE_MAX_PATH bytes */
	size_t over_budget; /* after TREE_MAX_FOLDER_BYTES were used */
};

/*
 * Replaces the folder list. Folders that stay keep their listings;
 * parents the server did not list (A for A/B) are added as \Noselect
 * directories. now is a monotonic time in seconds. Folders beyond the
 * bounds above are left out; skipped (may be NULL) counts them.
 */
int tree_set_folders(struct tree *t, const struct store_folder *f, size_t n,
		     time_t now, struct tree_skipped *skipped);
/* True when the folder list is older than max_age seconds (or absent). */
bool tree_folders_stale(struct tree *t, time_t now, unsigned max_age);

/*
 * Looks a path up ("/" is the root; components are separated by '/').
 * When the last component may be a message of a folder whose listing is
 * older than max_age, returns TREE_UNLISTED with info->folder set.
 */
enum tree_kind tree_lookup(struct tree *t, const char *path, time_t now,
			   unsigned max_age, struct tree_info *info);

/*
 * Calls fill for each entry of the directory at path: subfolders first,
 * then messages in listing order (their info with uid and uidvalidity,
 * so that a UID can be mapped to its name). fill returns non-zero to stop. The
 * tree's read lock is held during the calls: fill must not call back
 * into the tree. A message's info carries its uid and uidvalidity.
 * Returns 0, or -ENOENT / -ENOTDIR.
 */
int tree_readdir(struct tree *t, const char *path,
		 int (*fill)(void *ctx, const char *name,
			     const struct tree_info *info),
		 void *ctx);

/* Installs a folder's new listing (the tree takes the messages, which
 * the caller must not use afterwards) and marks it fresh. */
int tree_set_listing(struct tree *t, const char *folder,
		     struct store_listing *l, time_t now);
/*
 * Merges a delta (store_listing.delta) into the folder's listing, which
 * must be of the same UIDVALIDITY (else -ESTALE), and installs the
 * result as tree_set_listing() does; names stay those the messages had.
 * -EAGAIN when the result does not hold as many messages as the server
 * said it has (the caller then lists the folder in full). Takes the
 * delta's messages; the caller clears it.
 */
int tree_apply_delta(struct tree *t, const char *folder,
		     struct store_listing *d, time_t now);
/* Up to max selectable folders never listed, in folder-list order from
 * the one after folder (wrapping round), as malloc'd server names in
 * names_r; returns how many. Folders whose size the folder list gave
 * are taken while their messages fit in budget (all together); those of
 * unknown size only from folder's own directory. */
size_t tree_unlisted_after(struct tree *t, const char *folder, size_t max,
			   uint64_t budget, char **names_r);
/* Up to max selectable folders that follow folder in folder-list order
 * (no wrapping), as long as each has a listing (the first one without
 * ends them), as malloc'd server names in names_r with the UIDVALIDITY
 * of their listings; returns how many. */
size_t tree_listed_after(struct tree *t, const char *folder, size_t max,
			 char **names_r, uint32_t *uidvalidity_r);
/* Marks a folder's listing fresh without changing it. */
void tree_touch_listing(struct tree *t, const char *folder, time_t now);
/* Another client changed folder's content (push said so): its mtime
 * moves to now. */
void tree_mark_changed(struct tree *t, const char *folder);
/* Forgets that a folder was listed, so that the next lookup lists it. */
void tree_expire_listing(struct tree *t, const char *folder);
/* The state of a folder's current listing (no messages), for the
 * store's "unchanged since" check. Returns false if it has none. */
bool tree_listing_state(struct tree *t, const char *folder,
			struct store_listing *state_r);

/*
 * Refresh coordination: returns true when the caller should refresh the
 * folder (or, with folder NULL, the folder list) and marks it as being
 * refreshed; false when it is fresh, or when another thread is already
 * refreshing it, in which case this waits (at most wait_ms) for that.
 * A true return must be followed by tree_end_refresh().
 */
bool tree_begin_refresh(struct tree *t, const char *folder, time_t now,
			unsigned max_age, int wait_ms);
void tree_end_refresh(struct tree *t, const char *folder);

/* Corrects a message's size after its bytes were found to disagree. */
void tree_set_size(struct tree *t, const char *folder, uint32_t uidvalidity,
		   uint32_t uid, uint64_t size);

/* The content identity of a message of the folder's listing (moved in
 * by this mount too), into *oid_r: true when it has one; false (and
 * *oid_r none) when it has none or is not listed. */
bool tree_message_oid(struct tree *t, const char *folder, uint32_t uidvalidity,
		      uint32_t uid, struct store_oid *oid_r);

/*
 * Messages that follow uid in the folder's listing order: up to max of
 * them, of at most max_size bytes each, as UIDs and sizes. Returns the
 * count. Used to prefetch a scan's next messages in one batch.
 */
size_t tree_next_messages(struct tree *t, const char *folder,
			  uint32_t uidvalidity, uint32_t uid, size_t max,
			  uint64_t max_size, uint32_t *uids_r,
			  uint64_t *sizes_r);

/*
 * Changes made by this mount, applied to the listings at once so that
 * the mount shows them before the next listing (which then replaces
 * them with the server's view; each change also makes that listing
 * happen at the next refresh).
 */
/* Hides a message (moved away or expunged). */
void tree_remove_message(struct tree *t, const char *folder,
			 uint32_t uidvalidity, uint32_t uid);
/* Shows a message under the name the naming policy gives it and, if
 * alias is not NULL and free, also finds it (without listing it) under
 * alias. Does nothing when the
 * folder has no listing of that UIDVALIDITY yet. */
int tree_add_message(struct tree *t, const char *folder, uint32_t uidvalidity,
		     const struct store_msg *m, const char *alias);
void tree_set_flags(struct tree *t, const char *folder, uint32_t uidvalidity,
		    uint32_t uid, const char *flags);
/*
 * Maildir layout: sets a message's flags as tree_set_flags() does (its
 * names follow its flags) after a rename from the name from_key to
 * to_key (names in cur/, or "new/NAME"): a name this mount gave it
 * (an alias) moves to to_key, unless to_key is the name the message
 * now has anyway.
 */
void tree_maildir_rename(struct tree *t, const char *folder,
			 uint32_t uidvalidity, uint32_t uid, const char *flags,
			 const char *from_key, const char *to_key);

/* The mount path (without the leading '/') of the folder of that server
 * name, malloc'd; NULL if there is none. */
char *tree_folder_path(struct tree *t, const char *folder);
/*
 * Writes the mount path ("/F/NAME") of the listed message whose inode
 * number is ino into buf (size bytes), from the listings in memory alone
 * (never refreshed); its length, or 0 when there is none, when two
 * listed folders share the inode numbers' upper half, in the Maildir
 * layout, or when it does not fit.
 */
size_t tree_ino_path(struct tree *t, uint64_t ino, char *buf, size_t size);
/*
 * The inode number of the listed message (folder, uidvalidity, uid), as
 * tree_ino_path() maps it back to it, and what stat shows as its size
 * (*size_r); 0 when there is none of that kind (not listed under that
 * UIDVALIDITY, gone, an alias, the upper half shared, or the Maildir
 * layout, whose messages fsll numbers itself).
 */
uint64_t tree_ino_of(struct tree *t, const char *folder, uint32_t uidvalidity,
		     uint32_t uid, uint64_t *size_r);

/* True when the folder list has a folder of that server name ("" is a
 * flat store's root). */
bool tree_has_folder(struct tree *t, const char *folder);

/* The server name of the Trash folder (\Trash special use, else the
 * top-level folder named Trash, else INBOX/Trash), malloc'd; NULL if
 * there is none. */
char *tree_trash(struct tree *t);
/* The hierarchy delimiter new folder names are made with ('\0' if the
 * server has a flat namespace or no folder is known yet). */
char tree_delimiter(struct tree *t);

#endif
