// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_account: account_load() (account.h) on a file holding the input,
 * for the account [work], with the real table of option keys. A file
 * that loads must give a url and well-formed options; one that does not
 * must say why. The file is made once, unlinked at once, and reached as
 * /proc/self/fd/N, so no run leaves one behind; its mode (0600, 0640 or
 * 0664) follows the input's length, so the permission checks run too.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "account.h"
#include "opts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Stops the run, naming the property that failed. */
#define FUZZ_ACCOUNT_CHECK(cond)                                               \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz_account: %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			abort();                                               \
		}                                                              \
	} while (0)

/* The unlinked file the inputs are written to, and its /proc path. */
static int fuzz_account_fd = -1;
static char fuzz_account_path[64];

/* Makes the file, once per process. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("TMPDIR");
	char tmpl[4096];

	(void)argc;
	(void)argv;
	snprintf(tmpl, sizeof(tmpl), "%s/fuzz_account.XXXXXX",
		 dir && *dir ? dir : "/tmp");
	fuzz_account_fd = mkstemp(tmpl);
	if (fuzz_account_fd < 0) {
		perror("fuzz_account: mkstemp");
		exit(1);
	}
	unlink(tmpl);
	snprintf(fuzz_account_path, sizeof(fuzz_account_path),
		 "/proc/self/fd/%d", fuzz_account_fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const mode_t modes[] = {0600, 0640, 0664};
	struct account a;
	char err[512];
	size_t i;

	if (ftruncate(fuzz_account_fd, 0) < 0 ||
	    pwrite(fuzz_account_fd, data, size, 0) != (ssize_t)size ||
	    fchmod(fuzz_account_fd, modes[size % 3]) < 0)
		abort();
	err[0] = '\0';
	if (account_load(fuzz_account_path, "work", opts_known_key, &a, err,
			 sizeof(err)) < 0) {
		FUZZ_ACCOUNT_CHECK(err[0] != '\0');
		FUZZ_ACCOUNT_CHECK(!a.url && !a.mountpoint && !a.opts);
		return 0;
	}
	FUZZ_ACCOUNT_CHECK(a.url != NULL);
	FUZZ_ACCOUNT_CHECK(a.n_opts == 0 || a.opts != NULL);
	for (i = 0; i < a.n_opts; i++) {
		FUZZ_ACCOUNT_CHECK(a.opts[i] && a.opts[i][0]);
		FUZZ_ACCOUNT_CHECK(!strchr(a.opts[i], '\n'));
	}
	account_free(&a);
	return 0;
}
