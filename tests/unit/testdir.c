// SPDX-License-Identifier: GPL-2.0-or-later
/* testdir: the unit tests' throwaway directories; see testdir.h. */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "testdir.h"

/* nftw's callback: removes what it is handed (depth first). */
static int testdir_rm(const char *p, const struct stat *st, int f,
		      struct FTW *w)
{
	(void)st;
	(void)f;
	(void)w;
	return remove(p);
}

void testdir_make(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/tmp/mailfs-%s-XXXXXX", tag);
	ck_assert_ptr_nonnull(mkdtemp(buf));
	chmod(buf, 0700);
}

void testdir_remove(const char *dir)
{
	nftw(dir, testdir_rm, 16, FTW_DEPTH | FTW_PHYS);
}
