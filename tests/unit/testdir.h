/* SPDX-License-Identifier: GPL-2.0-or-later */
/* testdir: a throwaway directory for a unit test (tests/unit only). */
#ifndef MAILFS_TESTDIR_H
#define MAILFS_TESTDIR_H

#include <stddef.h>

/* Makes /tmp/mailfs-TAG-XXXXXX (mode 0700) into buf; the test fails if
 * it cannot. */
void testdir_make(char *buf, size_t len, const char *tag);
/* Removes dir and everything below it (links are not followed). */
void testdir_remove(const char *dir);

#endif
