/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * push: changes made by other clients, reported as they happen. A
 * thread keeps its own IMAP session (apart from the pool, so that
 * foreground calls never wait for it) and sends store events up
 * (store.h): CHANGED with a folder's server name when the server
 * reports a new, expunged or re-flagged message there, WATCHING when a
 * session starts reporting (with NOTIFY, RFC 5465, every folder;
 * without, IDLE on one folder) and BLIND when it stops. A dropped
 * session is reopened after a pause, and the folders listed in the
 * last 10 minutes are then reported CHANGED (what happened meanwhile
 * was not reported). The callback must not block.
 */
#ifndef MAILFS_PUSH_H
#define MAILFS_PUSH_H

#include "store.h"

struct imap_config;
struct push;

/* Starts watching folder (copied). cfg must outlive the push. NULL if
 * the thread cannot start. */
struct push *push_start(const struct imap_config *cfg, const char *folder,
			store_event_fn event, void *ctx);
/* Tells that folder was just listed: with NOTIFY it is watched for the
 * next 10 minutes. Memory only; p may be NULL. */
void push_listed(struct push *p, const char *folder);
/* Stops the thread (within about half a second) and frees p. */
void push_stop(struct push *p);

#endif
