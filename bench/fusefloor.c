// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fusefloor: the thinnest read-only FUSE file system over a local
 * directory, for `make bench` only. It answers each call with one system
 * call on the directory below, on libfuse's high-level API with the
 * settings mailfs uses (multithreaded, its own inode numbers, attributes
 * and entries kept 30 s, pages kept between opens), so that a grep
 * through it measures what FUSE alone costs on this machine: the floor
 * under mailfs's own figures for cached mail. Its memory per file is
 * what the high-level API's nodes cost, which mailfs (on the low-level
 * API, src/fsll.c) does not pay for listed messages.
 *
 *   fusefloor SOURCE_DIR MOUNTPOINT [FUSE options]
 */
#define FUSE_USE_VERSION 314
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fusefloor_root = -1; /* the source directory */

/* The source-relative form of a FUSE path ("/" is "."). */
static const char *fusefloor_rel(const char *path)
{
	return path[1] ? path + 1 : ".";
}

static void *fusefloor_init(struct fuse_conn_info *conn,
			    struct fuse_config *cfg)
{
	(void)conn;
	cfg->use_ino = 1;
	cfg->readdir_ino = 1;
	cfg->entry_timeout = 30;
	cfg->attr_timeout = 30;
	cfg->negative_timeout = 0;
	return NULL;
}

static int fusefloor_getattr(const char *path, struct stat *st,
			     struct fuse_file_info *fi)
{
	(void)fi;
	if (fstatat(fusefloor_root, fusefloor_rel(path), st,
		    AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return 0;
}

static int fusefloor_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
			     off_t off, struct fuse_file_info *fi,
			     enum fuse_readdir_flags flags)
{
	struct dirent *e;
	DIR *d;
	int fd;

	(void)off;
	(void)fi;
	fd = openat(fusefloor_root, fusefloor_rel(path),
		    O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	/* With the attributes (readdirplus), as mailfs answers: ls -l then
	 * needs no request per file. */
	while ((e = readdir(d))) {
		struct stat st = {.st_ino = e->d_ino,
				  .st_mode = (mode_t)DTTOIF(e->d_type)};
		enum fuse_fill_dir_flags ff = 0;

		if ((flags & FUSE_READDIR_PLUS) &&
		    fstatat(fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			ff = FUSE_FILL_DIR_PLUS;
		if (fill(buf, e->d_name, &st, 0, ff))
			break;
	}
	closedir(d);
	return 0;
}

static int fusefloor_open(const char *path, struct fuse_file_info *fi)
{
	int fd;

	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	fd = openat(fusefloor_root, fusefloor_rel(path), O_RDONLY);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	fi->keep_cache = 1;
	return 0;
}

static int fusefloor_read(const char *path, char *buf, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	ssize_t n = pread((int)fi->fh, buf, size, off);

	(void)path;
	return n < 0 ? -errno : (int)n;
}

static int fusefloor_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	close((int)fi->fh);
	return 0;
}

static const struct fuse_operations fusefloor_ops = {
	.init = fusefloor_init,
	.getattr = fusefloor_getattr,
	.readdir = fusefloor_readdir,
	.open = fusefloor_open,
	.read = fusefloor_read,
	.release = fusefloor_release,
};

int main(int argc, char *argv[])
{
	/* The same malloc settings as mailfs (main.c), so that memory
	 * figures compare. */
	mallopt(M_ARENA_MAX, 2);
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	if (argc < 3) {
		fprintf(stderr, "usage: fusefloor SOURCE_DIR MOUNTPOINT "
				"[FUSE options]\n");
		return 2;
	}
	fusefloor_root = open(argv[1], O_RDONLY | O_DIRECTORY);
	if (fusefloor_root < 0) {
		perror(argv[1]);
		return 1;
	}
	/* FUSE sees: fusefloor MOUNTPOINT [options]. */
	argv[1] = argv[0];
	return fuse_main(argc - 1, argv + 1, &fusefloor_ops, NULL);
}
