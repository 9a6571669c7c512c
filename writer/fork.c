/*
 * shmetrics writer: fork: the child gets a writer slot of its own.
 *
 * In the child, and what a kill after each step leaves:
 *   fork.reopened    new descriptions of the segment and claim file, the
 *                    parent's slot still mapped: nothing held
 *   claim.*          a claim (slot.c)
 *   fork.claimed     the child's own slot; the parent's descriptions are
 *                    closed next (their locks are the parent's too)
 *   fork.registered  the child's family records are set in its slot's
 *                    registrant bitmap (registrants.c); the parent's
 *                    slot held them until now
 * Counters and histograms need nothing: they count in the per-CPU cells,
 * which the child shares.  The handlers run with cancellation off.
 */
#include "writer-private.h"

SHMET_W void
shmet_impl_fork_prepare(void)
{
	/* fork() is the application's call, not ours: the handlers reach
	 * cancellation points (open, close) with the fork-list lock held,
	 * so they run with cancellation off, restored by the parent and
	 * child handlers (state.c, "not a cancellation point"). */
	int old = shmet_impl_cancel_off();

	pthread_mutex_lock(&shmet_impl_forklist.lock);
	shmet_impl_forklist.cancel_state = old;
}

SHMET_W void
shmet_impl_fork_parent(void)
{
	int old = shmet_impl_forklist.cancel_state;

	pthread_mutex_unlock(&shmet_impl_forklist.lock);
	shmet_impl_cancel_restore(old);
}

/* Format "/proc/self/fd/N" without stdio (we run in a fork child). */
SHMET_W void
shmet_impl_fd_path(char *buf, int fd)
{
	static const char prefix[] = "/proc/self/fd/";
	char digits[16];
	int n = 0;

	do {
		digits[n++] = (char)('0' + fd % 10);
		fd /= 10;
	} while (fd > 0 && n < 15);
	memcpy(buf, prefix, sizeof prefix - 1);
	buf += sizeof prefix - 1;
	while (n > 0)
		*buf++ = digits[--n];
	*buf = '\0';
}

/*
 * In a fork child: our fd shares the parent's open file description and so
 * its slot lock.  Open a description of our own, claim a slot with it and
 * remap our block in place, so every handle the child inherited now writes
 * to the child's block.  On failure the child keeps writing into the
 * parent's block: attribution is wrong, totals stay right (the failure is
 * counted in the segment).
 *
 * A child of a multi-threaded parent may only make async-signal-safe calls
 * until it execs: this path uses open, fcntl, mmap, fallocate, getpid,
 * clock_gettime, close and plain memory (no stdio, no malloc, no
 * strerror); no message is formatted.
 */
SHMET_W int
shmet_impl_after_fork(struct shmet_segment *seg)
{
	char path[48];
	int old = seg->fd, old_claim = seg->claim_fd, fd, claim = -1;

	if (!seg->attached || !seg->block)
		return -1;
	/*
	 * The spare records (and their try-lock, which a parent thread may
	 * have held at fork time) are the parent's: a child reusing them
	 * would fill the records the parent fills, twice published.  The
	 * child starts without; it leaks at most what the parent kept.
	 */
	seg->spare_series = UINT32_MAX;
	seg->spare_family = UINT32_MAX;
	SHMET_AT(store_explicit)(&seg->spare_busy, 0, SHMET_MO(relaxed));
	/* The gate a parent thread held is the parent's description's. */
	SHMET_AT(store_explicit)(&seg->gate_busy, 0, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&seg->index_busy, 0, SHMET_MO(relaxed));
	shmet_impl_fd_path(path, old);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0 && old_claim >= 0) {
		shmet_impl_fd_path(path, old_claim);
		claim = open(path, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0 || (old_claim >= 0 && claim < 0)) {
		if (fd >= 0)
			close(fd);
		shmet_impl_count(seg, SHMET_FAIL_NO_MEMORY);
		return -1;
	}
	seg->fd = fd;
	seg->claim_fd = claim;
	SHMET_POINT("fork.reopened");
	if (shmet_impl_claim(seg, 1) < 0) {
		/* The parent's slot, whose bits are the parent's: ours
		 * are pinned (registrants.c). */
		shmet_impl_registrants_forked(seg, 0);
		seg->fd = old;
		seg->claim_fd = old_claim;
		close(fd);
		if (claim >= 0)
			close(claim);
		return -1;
	}
	SHMET_POINT("fork.claimed");
	/* Our family records, held in our own slot before we let go of
	 * the parent's description: until then its locks keep the parent's
	 * slot, and its bits, alive even if the parent exited. */
	shmet_impl_registrants_forked(seg, 1);
	SHMET_POINT("fork.registered");
	close(old);
	if (old_claim >= 0)
		close(old_claim);
	return 0;
}

SHMET_W void
shmet_impl_fork_child(void)
{
	int old = shmet_impl_forklist.cancel_state;

	shmet_impl_points_forked();
	/* The CPU blocks are shared: the child counts there as the parent
	 * did (its forking thread keeps its rseq registration, at the same
	 * address).  Only the process block moves. */
	for (struct shmet_segment *s = shmet_impl_forklist.head; s; s = s->next)
		shmet_impl_after_fork(s);
	pthread_mutex_unlock(&shmet_impl_forklist.lock);
	shmet_impl_cancel_restore(old);
}

SHMET_W void
shmet_impl_forklist_add(struct shmet_segment *seg)
{
	pthread_mutex_lock(&shmet_impl_forklist.lock);
	if (!shmet_impl_forklist.registered &&
	    pthread_atfork(shmet_impl_fork_prepare, shmet_impl_fork_parent,
			   shmet_impl_fork_child) == 0)
		shmet_impl_forklist.registered = 1;
	seg->next = shmet_impl_forklist.head;
	shmet_impl_forklist.head = seg;
	pthread_mutex_unlock(&shmet_impl_forklist.lock);
}

SHMET_W void
shmet_impl_forklist_remove(struct shmet_segment *seg)
{
	pthread_mutex_lock(&shmet_impl_forklist.lock);
	for (struct shmet_segment **p = &shmet_impl_forklist.head; *p;
	     p = &(*p)->next) {
		if (*p == seg) {
			*p = seg->next;
			break;
		}
	}
	pthread_mutex_unlock(&shmet_impl_forklist.lock);
}
