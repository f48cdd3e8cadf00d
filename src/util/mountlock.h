/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mountlock: the lock a mount holds on a directory of its own (the disk
 * cache, the POP3 store), so that two mounts never use one at once, and
 * the mount table lookups that go with it.
 *
 * The lock is flock() on the file `lock` in that directory. Its holder
 * writes there who it is and how far it got, one line
 *
 *   mailfs PID STATE
 *
 * (STATE: starting, mounted or exiting), and for `mounted` a second
 * line with the mount point. A mailfs that finds the lock taken asks
 * whether its holder is alive and serving: its process exists and it
 * is starting, or mounted with that mount still in its mount table.
 * Then it gives up at once ("in use by another mailfs"). Otherwise the
 * holder is on its way out (unmounted, exiting, or a mailfs that writes
 * no such line) and the lock is waited for, at most wait_ms: a mount
 * right after an unmount gets the directory its predecessor is still
 * letting go of.
 *
 * The state is process-wide: mountlock_announce() writes it into every
 * lock this process holds.
 */
#ifndef MAILFS_MOUNTLOCK_H
#define MAILFS_MOUNTLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum mountlock_state {
	MOUNTLOCK_STARTING,
	MOUNTLOCK_MOUNTED,
	MOUNTLOCK_EXITING,
};

/*
 * Takes the lock of the directory dirfd (shown as dir, named `what`,
 * "cache" or "store", in messages), waiting at most wait_ms while its
 * holder is exiting. Returns the lock's descriptor (hold it; release
 * with mountlock_release()), or -1 with err filled.
 */
int mountlock_take(int dirfd, const char *dir, const char *what, int wait_ms,
		   char *err, size_t errlen);
/* Lets the lock go (closes fd). */
void mountlock_release(int fd);

/* Writes state (and for MOUNTLOCK_MOUNTED the mount point) into every
 * lock this process holds, and into those it takes later. Thread-safe. */
void mountlock_announce(enum mountlock_state state, const char *mountpoint);

/*
 * True when path is a mount point in the mount table of process pid
 * (0: this one), by any file system other than skip_type (NULL: any),
 * read from /proc/PID/mountinfo.
 */
bool mountlock_is_mounted(pid_t pid, const char *path, const char *skip_type);

#endif
