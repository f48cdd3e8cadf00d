/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * push: changes made by other clients, reported as they happen. A
 * thread keeps its own IMAP session (apart from the pool, so that
 * foreground calls never wait for it) and calls back with a folder's
 * server name when the server reports a new, expunged or re-flagged
 * message there: with NOTIFY (RFC 5465), for INBOX and every folder
 * listed in the last 10 minutes; without, in IDLE on one folder. A dropped session is reopened
 * after a pause. Events flow up: the callback must not block.
 */
#ifndef MAILFS_PUSH_H
#define MAILFS_PUSH_H

struct imap_config;
struct push;

/* Starts watching folder (copied). cfg must outlive the push. NULL if
 * the thread cannot start. */
struct push *push_start(const struct imap_config *cfg, const char *folder,
			void (*changed)(void *ctx, const char *folder),
			void *ctx);
/* Tells that folder was just listed: with NOTIFY it is watched for the
 * next 10 minutes. Memory only; p may be NULL. */
void push_listed(struct push *p, const char *folder);
/* Stops the thread (within about half a second) and frees p. */
void push_stop(struct push *p);

#endif
