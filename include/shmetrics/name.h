/*
 * shmetrics segment names: what a name means and how to open it, shared
 * by writers (writer/) and readers (lib/, the
 * exporter, shmetrics-ctl), so that both sides always open the same
 * object.
 *
 *   "/name"            a POSIX shared memory object (shm_open), which
 *                      lives in the /dev/shm of the mount namespace
 *   "/dir/.../file"    a name with a second '/' is a file path: a file on
 *                      some tmpfs, opened with open(2).  A tmpfs directory
 *                      mounted into two containers (a Kubernetes emptyDir
 *                      with medium: Memory, a shared /run directory) lets
 *                      a writer and an exporter that do not share /dev/shm
 *                      share a segment.
 *
 * Both are opened as shm_open(3) does it: O_NOFOLLOW (a symbolic link
 * planted at the name is refused) and O_CLOEXEC.  The writer also refuses
 * a path that is not on a tmpfs (shmet_name_check_fd): a disk-backed file
 * would be written back to disk, and an emptyDir without medium: Memory
 * is exactly that mistake.
 */
#ifndef SHMETRICS_NAME_H
#define SHMETRICS_NAME_H

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

/* Longest name, path or not (the writer keeps it in a char[256]). */
#define SHMET_NAME_MAX 255

/* tmpfs's f_type (<linux/magic.h>), without the kernel header. */
#define SHMET_TMPFS_MAGIC 0x01021994

/* Where a name nobody gave comes from, for writers and readers alike. */
#define SHMET_DEFAULT_SEGMENT   "/shmetrics"
#define SHMET_ENV_SEGMENT       "SHMETRICS_SEGMENT"

/*
 * The segment a caller means: name, or when it is NULL or empty
 * $SHMETRICS_SEGMENT, or when that is unset or empty "/shmetrics".  The
 * one place the default is resolved (writer, reader, exporter, tools,
 * Python), so that every side opens the same object.
 */
static inline const char *
shmet_name_resolve(const char *name)
{
	if (!name || !*name)
		name = getenv(SHMET_ENV_SEGMENT);
	return name && *name ? name : SHMET_DEFAULT_SEGMENT;
}

/* 1 if name is a file path (it has a '/' after the first), else 0. */
static inline int
shmet_name_is_path(const char *name)
{
	return name[0] == '/' && strchr(name + 1, '/') != NULL;
}

/*
 * 0 if name is a valid segment name: '/' then 1 to 254 characters; a
 * path must not end in '/'.  -EINVAL otherwise.
 */
static inline int
shmet_name_check(const char *name)
{
	size_t len = strlen(name);

	if (name[0] != '/' || len < 2 || len > SHMET_NAME_MAX ||
	    name[len - 1] == '/')
		return -EINVAL;
	return 0;
}

/*
 * open(2) or shm_open(3) of name: a descriptor of a regular file, or -1
 * with errno set (EINVAL: something else is there).  /dev/shm is world-
 * writable, so anyone can put a FIFO at a segment's name: opened without
 * O_NONBLOCK it would block the opener (an application in shmet_open, the
 * exporter's refresher) until someone opens the other end.  O_NONBLOCK
 * makes that open return; the type check refuses it; and the flag is
 * cleared again (it means nothing to a regular file's reads and writes,
 * but the descriptor should say what it is).
 */
static inline int
shmet_name_open(const char *name, int flags, mode_t mode)
{
	struct stat st;
	int fd;
	int e, fl;

	if (shmet_name_is_path(name))
		fd = open(name, flags | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC |
				O_NOCTTY, mode);
	else
		fd = shm_open(name, flags | O_NONBLOCK, mode);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		e = errno;
	} else if (!S_ISREG(st.st_mode)) {
		e = EINVAL;
	} else {
		fl = fcntl(fd, F_GETFL);
		if (fl >= 0 && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0)
			return fd;
		e = errno;
	}
	close(fd);
	errno = e;
	return -1;
}

/* unlink(2) or shm_unlink(3) of name: 0, or -1 with errno set. */
static inline int
shmet_name_unlink(const char *name)
{
	return shmet_name_is_path(name) ? unlink(name) : shm_unlink(name);
}

/*
 * 0 if fd, opened from name, may hold a segment: a POSIX shm object
 * always; a path only if it is a regular file on a tmpfs (-EXDEV
 * otherwise, or -errno if fstatfs fails).
 */
static inline int
shmet_name_check_fd(const char *name, int fd)
{
	struct statfs sfs;
	struct stat st;

	if (!shmet_name_is_path(name))
		return 0;
	if (fstatfs(fd, &sfs) < 0 || fstat(fd, &st) < 0)
		return -errno;
	if ((unsigned long)sfs.f_type != SHMET_TMPFS_MAGIC ||
	    !S_ISREG(st.st_mode))
		return -EXDEV;
	return 0;
}

#endif /* SHMETRICS_NAME_H */
