// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fsll_node: fsll's table of the nodes it stores (see fsll.h): by id and
 * by (parent, name), and the paths of node ids built from it and from
 * the resolver. Memory only.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "fsll.h"
#include "fsll_priv.h"

/* The table key of (parent, name) in buf (8 + NAME_MAX + 1 bytes);
 * its length, 0 when the name is too long. */
static size_t fsll_node_key(char *buf, uint64_t parent, const char *name)
{
	size_t n = strlen(name);

	if (n > NAME_MAX)
		return 0;
	memcpy(buf, &parent, 8);
	memcpy(buf + 8, name, n + 1);
	return 8 + n;
}

/* The stored node named name in parent; the lock is held. */
struct fsll_node *fsll_node_find_name(struct fsll *ll, uint64_t parent,
				      const char *name)
{
	char key[8 + NAME_MAX + 1];
	size_t len = fsll_node_key(key, parent, name);
	struct fsll_node *n = NULL;

	if (len)
		HASH_FIND(hh_name, ll->by_name, key, len, n);
	return n;
}

struct fsll_node *fsll_node_find_id(struct fsll *ll, uint64_t id)
{
	struct fsll_node *n;

	HASH_FIND(hh_id, ll->by_id, &id, sizeof(id), n);
	return n;
}

/* Adds a node (parent, name) with id; the lock is held. */
struct fsll_node *fsll_node_add(struct fsll *ll, uint64_t id, uint64_t parent,
				const char *name)
{
	size_t n = strlen(name);
	struct fsll_node *node;

	if (n > NAME_MAX)
		return NULL;
	node = calloc(1, sizeof(*node) + 8 + n + 1);
	if (!node)
		return NULL;
	node->id = id;
	node->parent = parent;
	node->keylen = fsll_node_key(node->key, parent, name);
	HASH_ADD(hh_id, ll->by_id, id, sizeof(node->id), node);
	HASH_ADD_KEYPTR(hh_name, ll->by_name, node->key, node->keylen, node);
	return node;
}

/* Drops a node from both tables and frees it; the lock is held. */
void fsll_node_drop(struct fsll *ll, struct fsll_node *n)
{
	HASH_DELETE(hh_id, ll->by_id, n);
	if (!n->unlinked)
		HASH_DELETE(hh_name, ll->by_name, n);
	free(n);
}

/* Takes a node out of its name (unlink, rmdir, a rename's target); it
 * stays known by id until forgotten. The lock is held. */
void fsll_node_unname(struct fsll *ll, struct fsll_node *n)
{
	if (!n || n->unlinked)
		return;
	HASH_DELETE(hh_name, ll->by_name, n);
	n->unlinked = true;
}

/* Builds the path of a stored node; NULL for an unlinked one (or in an
 * unlinked directory); the lock is held. *err_r: why not. */
static char *fsll_node_stored_path(struct fsll *ll, struct fsll_node *n,
				   int *err_r)
{
	const struct fsll_node *chain[PATH_MAX / 2];
	size_t depth = 0, len = 0, i;
	char *p, *w;

	/* up to the root; a removed node or a missing parent on the way
	 * means the node has no path any more */
	for (;;) {
		if (!n || n->unlinked ||
		    depth == sizeof(chain) / sizeof(*chain)) {
			*err_r = ESTALE;
			return NULL;
		}
		chain[depth++] = n;
		len += 1 + (n->keylen - 8);
		if (n->parent == FUSE_ROOT_ID)
			break;
		n = fsll_node_find_id(ll, n->parent);
	}
	p = malloc(len + 1);
	if (!p) {
		*err_r = ENOMEM;
		return NULL;
	}
	w = p;
	for (i = depth; i-- > 0;) {
		*w++ = '/';
		memcpy(w, chain[i]->key + 8, chain[i]->keylen - 8);
		w += chain[i]->keylen - 8;
	}
	*w = '\0';
	return p;
}

/*
 * The path of node id (malloc'd), or NULL with *err_r set: ESTALE when
 * the node is unknown or unlinked, or a message no longer listed (an
 * open file's requests then run with a NULL path, as with libfuse's
 * hard_remove; others fail with ESTALE, as libfuse's high-level API
 * answers), ENOMEM.
 */
char *fsll_node_path(struct fsll *ll, uint64_t id, int *err_r)
{
	struct fsll_node *n;
	char buf[PATH_MAX], *p;

	*err_r = ESTALE;
	if (id == FUSE_ROOT_ID) {
		p = strdup("/");
		if (!p)
			*err_r = ENOMEM;
		return p;
	}
	pthread_mutex_lock(&ll->lock);
	n = fsll_node_find_id(ll, id);
	p = n ? fsll_node_stored_path(ll, n, err_r) : NULL;
	pthread_mutex_unlock(&ll->lock);
	if (n || id < FSLL_COMPUTED_MIN || !ll->resolve)
		return p;
	if (!ll->resolve(ll->resolve_ctx, id, buf, sizeof(buf)))
		return NULL;
	p = strdup(buf);
	if (!p)
		*err_r = ENOMEM;
	return p;
}

/* dir's path joined with name (malloc'd), or NULL with *err_r. */
char *fsll_node_child_path(struct fsll *ll, uint64_t dir, const char *name,
			   int *err_r)
{
	char *d = fsll_node_path(ll, dir, err_r), *p;
	size_t dl, nl = strlen(name);

	if (!d)
		return NULL;
	if (nl > NAME_MAX) {
		free(d);
		*err_r = ENAMETOOLONG;
		return NULL;
	}
	dl = strcmp(d, "/") ? strlen(d) : 0;
	p = malloc(dl + 1 + nl + 1);
	if (!p) {
		free(d);
		*err_r = ENOMEM;
		return NULL;
	}
	memcpy(p, d, dl);
	p[dl] = '/';
	memcpy(p + dl + 1, name, nl + 1);
	free(d);
	return p;
}

/* Walks path's components through the stored nodes: the node id of
 * the whole path, or 0. The last component may be a message's own id.
 * Memory only: no operation is called. */
uint64_t fsll_node_path_id(struct fsll *ll, const char *path)
{
	char comp[NAME_MAX + 1];
	uint64_t id = FUSE_ROOT_ID;
	const char *p = path, *slash;
	struct fsll_node *n;
	size_t len;

	while (*p == '/')
		p++;
	while (*p) {
		slash = strchr(p, '/');
		len = slash ? (size_t)(slash - p) : strlen(p);
		if (len > NAME_MAX)
			return 0;
		memcpy(comp, p, len);
		comp[len] = '\0';
		pthread_mutex_lock(&ll->lock);
		n = fsll_node_find_name(ll, id, comp);
		id = n ? n->id : 0;
		pthread_mutex_unlock(&ll->lock);
		p += len;
		while (*p == '/')
			p++;
		if (!id) {
			uint64_t ino;

			/* a message: its node id is its inode number, when
			 * the tree maps that back to this path */
			if (*p || !ll->path_ino)
				return 0;
			ino = ll->path_ino(ll->resolve_ctx, path);
			return ino && fsll_node_computed(ll, ino, path) ? ino
									: 0;
		}
	}
	return id;
}

/* True when ino is a message inode number the tree maps to path (no
 * allocation: readdirplus asks this for every entry). */
bool fsll_node_computed(struct fsll *ll, uint64_t ino, const char *path)
{
	char buf[PATH_MAX];

	if (ino < FSLL_COMPUTED_MIN || !ll->resolve)
		return false;
	return ll->resolve(ll->resolve_ctx, ino, buf, sizeof(buf)) &&
	       !strcmp(buf, path);
}
