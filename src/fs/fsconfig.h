/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsconfig: what a mount is made with (main fills it from the options;
 * fsmount_new() copies it).
 */
#ifndef MAILFS_FSCONFIG_H
#define MAILFS_FSCONFIG_H

#include <stdbool.h>
#include <stdint.h>

struct store;

struct fsmount_config {
	struct store *store; /* borrowed */
	unsigned refresh; /* seconds a listing may be reused */
	unsigned timeout; /* seconds; bounds waits for other threads */
	uint64_t cache_size; /* bytes of message bodies kept in memory */
	bool readonly;
	bool owner_only; /* -o allow_other: modes for the owner alone */
	bool expunge_on_delete; /* rm expunges instead of moving to Trash */
	bool maildir; /* -o layout=maildir: a Maildir tree */
	uint64_t max_append; /* largest new message, 0: the server's */
	const char *tmpdir; /* borrowed: where new messages are held */
	const char *account; /* borrowed: the URL, for the status */
	unsigned temp_idle; /* seconds an unused temporary (.NAME) file
			     * is kept before it is discarded */
};

#endif
