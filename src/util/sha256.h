/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * sha256: the one digest mailfs computes (content identities, Message-ID
 * hashes, the tails of cut folder names), for the modules that need it
 * and nothing of the network. Defined in net.c, the one module that
 * uses OpenSSL; pure, no I/O.
 */
#ifndef MAILFS_SHA256_H
#define MAILFS_SHA256_H

#include <stddef.h>

/* Named after net.c, which implements the digest. */
#define NET_SHA256_LEN 32
/* The SHA-256 digest of len bytes of data into out. */
void net_sha256(const void *data, size_t len,
		unsigned char out[NET_SHA256_LEN]);

#endif
