/*
 * shmetrics lock protocol: which process holds which writer slot, shared by
 * writers (to claim slots) and readers (to tell live writers from dead).
 *
 * Advisory OFD locks on the segment's file, never on its bytes: the
 * offsets lie far beyond any segment size.  An OFD lock belongs to an open
 * file description, so it survives pid reuse, works across PID namespaces
 * and is released by the kernel when the holder dies.
 *
 * Two files, three jobs:
 * - Claims.  A slot belongs to whoever holds the write lock on its byte of
 *   the claim file, "<segment>.claim", which only the segment's owner can
 *   open (mode 0600 whatever the segment's mode).  Readers of a group-
 *   readable segment can therefore neither deny a slot to a writer nor
 *   hold one.
 * - Liveness, for readers.  The owner of a slot also holds a write lock on
 *   the slot's byte of the segment itself, where readers can see it.  Only
 *   a description opened for writing can take a write lock, so a read
 *   lock there (anyone who can read the file can place one) proves
 *   nothing: liveness is a write lock, never a read lock.  A reader's read
 *   lock can keep a writer from taking its liveness lock (the writer then
 *   looks dead to readers until it retakes it, which it tries at each
 *   registration), but never makes a dead writer look alive.
 * - Series creation.  A process creating a series holds its family's
 *   gate, the write lock on SHMET_LOCK_GATE(family) of the claim file, so
 *   a family's series count is exact and a dead creator's step is undone
 *   by the next one (writer/gate.c).
 */
#ifndef SHMETRICS_LOCK_H
#define SHMETRICS_LOCK_H

#include <fcntl.h>
#include <stdint.h>
#include <string.h>

/* Linux OFD lock commands, in case the feature macros hide them. */
#ifndef F_OFD_GETLK
#define F_OFD_GETLK 36
#endif
#ifndef F_OFD_SETLK
#define F_OFD_SETLK 37
#endif
#ifndef F_OFD_SETLKW
#define F_OFD_SETLKW 38
#endif

#define SHMET_LOCK_INIT         (UINT64_C(1) << 40)     /* initialiser */
#define SHMET_LOCK_RETIRE       (SHMET_LOCK_INIT - 1u)  /* retired block */
#define SHMET_CLAIM_SUFFIX      ".claim"
#define SHMET_LOCK_SLOT(i)      (SHMET_LOCK_INIT + 1u + (uint64_t)(i))
/* A family's series creation gate, on the claim file (writer/gate.c). */
#define SHMET_LOCK_GATE(f)      ((UINT64_C(1) << 41) + (uint64_t)(f))
/* Publishing a family record in the family index, on the claim file
 * (writer/register.c): one at a time, so that a record may take a
 * reclaimed record's tombstone without a racer of the same name
 * publishing in another slot. */
#define SHMET_LOCK_FAMILY_INDEX (UINT64_C(1) << 42)

/* fcntl(fd, cmd) on the one-byte lock at off; fl gets the answer. */
static inline int
shmet_seg_lock_op(int fd, uint64_t off, short type, int cmd,
		  struct flock *fl)
{
	memset(fl, 0, sizeof *fl);      /* l_pid must be 0 for OFD locks */
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = (off_t)off;
	fl->l_len = 1;
	return fcntl(fd, cmd, fl);
}

static inline int
shmet_seg_lock(int fd, uint64_t off, short type)
{
	struct flock fl;

	return shmet_seg_lock_op(fd, off, type, F_OFD_SETLK, &fl);
}

/*
 * 1 if a writer holds slot's lock (as seen through fd, which holds no lock
 * there itself), 0 if none does, -1 if it cannot tell.
 */
static inline int
shmet_seg_slot_held(int fd, uint32_t slot)
{
	struct flock fl;

	if (shmet_seg_lock_op(fd, SHMET_LOCK_SLOT(slot), F_WRLCK, F_OFD_GETLK,
			      &fl) < 0)
		return -1;
	return fl.l_type == F_WRLCK;
}

#endif /* SHMETRICS_LOCK_H */
