/*
 * shmetrics writer: writer slots: claim, takeover and the fold of a dead
 * writer's gauges.
 *
 * Claim steps, and what a kill after each leaves (the kernel drops the
 * dead claimer's OFD locks, so the slot is free again):
 *   claim.mapped     the block mapped and its pages reserved: nothing the
 *                    next owner must undo
 *   takeover.*       see shmet_impl_reset_gauges: the fold is journaled
 *   claim.active     the slot says ACTIVE with our pid, no liveness lock
 *                    yet: readers count it dead, as it is
 *   claim.live       claimed
 */
#include "writer-private.h"

/*
 * Reserve (fallocate) block slot's pages up to cell end (see initialise);
 * `reserved` is this process's note of how far that block is reserved.
 * The block is ours, mapped at seg->block.
 */
SHMET_W int
shmet_impl_reserve_block(struct shmet_segment *seg, uint32_t slot,
			 SHMET_ATOMIC(uint64_t) *reserved, uint64_t end_cell)
{
	/* Relaxed: a process-local hint, see the CAS below. */
	uint64_t have = SHMET_AT(load_explicit)(reserved, SHMET_MO(relaxed));
	uint64_t want = shmet_impl_reserve_end(end_cell, seg->block_size);
	uint64_t block_off;
	int rc;

	if (end_cell * 8 <= have)
		return 0;
	block_off = seg->hdr->values_off + (uint64_t)slot *
					   seg->hdr->block_stride;
	rc = shmet_impl_fallocate(seg->fd, block_off + have, want - have);
	if (rc != 0)
		return -rc;
	/* Relaxed: a process-local hint; racing threads only repeat work. */
	while (have < want &&
	       !SHMET_AT(compare_exchange_weak_explicit)(
		       reserved, &have, want, SHMET_MO(relaxed),
		       SHMET_MO(relaxed)))
		;
	shmet_impl_publish_extent(seg, slot, want);
	return 0;
}

/* Reserve the process block up to cell end. */
SHMET_W int
shmet_impl_reserve(struct shmet_segment *seg, uint64_t end_cell)
{
	return shmet_impl_reserve_block(seg, seg->slot, &seg->reserved,
					end_cell);
}

/*
 * Fold a dead writer's gauge value (v, stamp) into the retired cells of
 * one series, r its first, by the family's mode (the rule book's
 * shmet_seg_gauge_fold: sum adds, max and min keep the extreme,
 * mostrecent keeps the newer stamp).  Called with the retire lock held, so
 * folds never race each other; readers may load the two cells between our
 * stores and pair a value with its neighbour's stamp for one scrape, as
 * with any gauge.  Relaxed: see "Value cells".
 */
SHMET_W void
shmet_impl_fold(shmet_impl_cell *r, uint32_t mode, double v, uint64_t stamp)
{
	shmet_impl_cell *value = &r[shmet_seg_cell_gauge_value(0)];
	shmet_impl_cell *stamp_cell = &r[shmet_seg_cell_gauge_stamp(0)];
	uint64_t have = SHMET_AT(load_explicit)(stamp_cell, SHMET_MO(relaxed));
	uint64_t acc_stamp = have;
	double acc = shmet_impl_bitsd(
		SHMET_AT(load_explicit)(value, SHMET_MO(relaxed)));

	if (!shmet_seg_gauge_fold(mode, !have, &acc, &acc_stamp, v, stamp))
		return;
	SHMET_AT(store_explicit)(value, shmet_impl_dbits(acc),
				 SHMET_MO(relaxed));
	if (acc_stamp != have)
		SHMET_AT(store_explicit)(stamp_cell, acc_stamp,
					 SHMET_MO(relaxed));
}

/*
 * The stamp of gauge cell c in block `slot`, read from the file: only our
 * own block and the retired block are mapped (segment.c).  Under the
 * retire lock the cell is stable: only a folder zeroes a dead block's
 * gauges.  0 if it cannot be read (then the fold stands).
 */
static uint64_t
shmet_impl_dead_stamp(const struct shmet_segment *seg, uint32_t slot,
		      uint32_t c)
{
	const struct shmet_seg_header *h = seg->hdr;
	uint64_t stamp = 0;
	off_t off = (off_t)(h->values_off + (uint64_t)slot * h->block_stride +
			    8u * (uint64_t)shmet_seg_cell_gauge_stamp(c));

	if (pread(seg->fd, &stamp, sizeof stamp, off) != (ssize_t)sizeof stamp)
		return 0;
	return stamp;
}

/*
 * Under the retire lock: finish what a folder that died mid-fold left in
 * the journal.  If it zeroed the dead writer's stamp, its fold stands;
 * else the retired cells are put back as they were, and the series stays
 * in that block for the next takeover of it to fold (exactly once).
 */
static void
shmet_impl_fold_recover(struct shmet_segment *seg, shmet_impl_cell *retired)
{
	struct shmet_seg_header *h = seg->hdr;
	uint32_t slot, c;

	/* Acquire: pairs with the release that armed the journal. */
	if (SHMET_AT(load_explicit)(&h->fold_state, SHMET_MO(acquire)) != 1)
		return;
	slot = SHMET_AT(load_explicit)(&h->fold_slot, SHMET_MO(relaxed));
	c = SHMET_AT(load_explicit)(&h->fold_cell, SHMET_MO(relaxed));
	if (slot < h->max_writers &&
	    (uint64_t)c + shmet_seg_cells_for(SHMET_TYPE_GAUGE, 0) <=
		    h->cells_per_block &&
	    shmet_impl_dead_stamp(seg, slot, c) != 0) {
		SHMET_AT(store_explicit)(
			&retired[c],
			SHMET_AT(load_explicit)(&h->fold_value,
						SHMET_MO(relaxed)),
			SHMET_MO(relaxed));
		SHMET_AT(store_explicit)(
			&retired[shmet_seg_cell_gauge_stamp(c)],
			SHMET_AT(load_explicit)(&h->fold_stamp,
						SHMET_MO(relaxed)),
			SHMET_MO(relaxed));
	}
	SHMET_AT(store_explicit)(&h->fold_state, 0, SHMET_MO(release));
}

/*
 * Fold one gauge series (first cell c, of a mode that retires) of dead
 * block `slot` into the retired block, then zero it for us; journaled, so
 * a kill at any step neither loses the value nor folds it twice.
 * Relaxed cells: see "Value cells"; the journal's order is by release.
 */
static void
shmet_impl_fold_series(struct shmet_segment *seg, shmet_impl_cell *block,
		       shmet_impl_cell *retired, uint32_t slot, uint32_t c,
		       uint32_t mode, uint64_t stamp)
{
	struct shmet_seg_header *h = seg->hdr;
	uint64_t bits = SHMET_AT(load_explicit)(&block[c], SHMET_MO(relaxed));

	SHMET_AT(store_explicit)(&h->fold_slot, slot, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&h->fold_cell, c, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(
		&h->fold_value,
		SHMET_AT(load_explicit)(&retired[c], SHMET_MO(relaxed)),
		SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(
		&h->fold_stamp,
		SHMET_AT(load_explicit)(&retired[shmet_seg_cell_gauge_stamp(c)], SHMET_MO(relaxed)),
		SHMET_MO(relaxed));
	/* Release: a recovering folder that sees 1 sees the fields. */
	SHMET_AT(store_explicit)(&h->fold_state, 1, SHMET_MO(release));
	SHMET_POINT("takeover.journaled");
	shmet_impl_fold(&retired[c], mode, shmet_impl_bitsd(bits), stamp);
	SHMET_POINT("takeover.folded");
	/* The stamp first: a stamp of 0 is what says "folded" to recovery
	 * and "no value" to readers. */
	SHMET_AT(store_explicit)(&block[shmet_seg_cell_gauge_stamp(c)], 0, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&block[c], 0, SHMET_MO(relaxed));
	SHMET_POINT("takeover.zeroed");
	SHMET_AT(store_explicit)(&h->fold_state, 0, SHMET_MO(release));
}

/*
 * Takeover: our block (slot) belonged to a dead writer.  Its gauges of
 * modes that keep dead writers' values (format.h) are folded into the
 * retired block, so that a scrape shows the same before and after the
 * takeover; every other gauge cell of the block is zeroed for us.  The
 * retire lock (on the owner-only claim file) serialises folds.  Steps and
 * what a kill after each leaves (any kill: the lock is dropped, the slot
 * is free again, the next takeover of it resumes the fold):
 *   takeover.journaled   the journal holds the retired cells before the
 *                        fold: the next folder restores them
 *   takeover.folded      the same (the dead writer's stamp is not zero)
 *   takeover.zeroed      this series is done; the journal is void
 * Returns 0, or -EAGAIN when the retire lock stayed busy (a stopped
 * holder) for about a second: then nothing is zeroed and the caller takes
 * another slot, since zeroing without folding would lose the values.
 * Async-signal-safe: the fork child claims slots too.
 */
SHMET_W int
shmet_impl_reset_gauges(struct shmet_segment *seg, shmet_impl_cell *block,
			uint32_t slot, uint64_t reserved)
{
	const struct shmet_seg_header *h = seg->hdr;
	const struct shmet_seg_family *fams = shmet_impl_families(seg);
	const struct shmet_seg_series *series = shmet_impl_series_table(seg);
	uint64_t retired_off = h->values_off +
			       (uint64_t)shmet_seg_retired_block(h) *
				       h->block_stride;
	shmet_impl_cell *retired = shmet_impl_retired(seg);
	int lock_fd = seg->claim_fd >= 0 ? seg->claim_fd : seg->fd;
	struct flock fl;
	int locked = 0;
	/*
	 * Relaxed: records allocated after this load belong to registrations
	 * still running; their cells in our block are zero (never written by
	 * the dead owner), so they need no reset.  Every record is
	 * bounds-checked below.
	 */
	uint32_t nseries = SHMET_AT(load_explicit)(&seg->hdr->series_used,
						   SHMET_MO(relaxed));

	if (reserved == 0)
		return 0;       /* the dead writer wrote no page of it */
	if (nseries > h->max_series)
		nseries = h->max_series;
	/*
	 * Reserve the retired cells up to what we reserved of our block
	 * (one call, before the lock), then take the retire lock: another
	 * takeover holds it only while it folds, but a stopped process could
	 * hold it forever, so wait at most about a second.
	 */
	if (shmet_impl_fallocate(seg->fd, retired_off, reserved) != 0)
		return -ENOSPC;
	for (int tries = 0; tries < 1000 && !locked; tries++) {
		locked = shmet_seg_lock_op(lock_fd, SHMET_LOCK_RETIRE, F_WRLCK,
					   F_OFD_SETLK, &fl) == 0;
		if (!locked)
			shmet_impl_sleep_ms(1);
	}
	if (!locked)
		return -EAGAIN;
	SHMET_POINT("takeover.locked");
	shmet_impl_fold_recover(seg, retired);
	for (uint32_t i = 0; i < nseries; i++) {
		const struct shmet_seg_series *s = &series[i];
		uint32_t c = s->first_cell, mode;
		uint64_t stamp;

		/* Cells past our reservation were never written: leave
		 * them alone (touching one would fault in a tmpfs page). */
		if (s->family >= h->max_families ||
		    fams[s->family].type != SHMET_TYPE_GAUGE ||
		    8ull * ((uint64_t)c +
			   shmet_seg_cells_for(SHMET_TYPE_GAUGE, 0)) > reserved)
			continue;
		mode = fams[s->family].gauge_mode;
		/* Relaxed: we own this block now ("Value cells"). */
		stamp = SHMET_AT(load_explicit)(&block[shmet_seg_cell_gauge_stamp(c)],
						SHMET_MO(relaxed));
		if (stamp && shmet_seg_gauge_mode_retires(mode)) {
			shmet_impl_fold_series(seg, block, retired, slot, c,
					       mode, stamp);
		} else {
			SHMET_AT(store_explicit)(&block[shmet_seg_cell_gauge_stamp(c)], 0,
						 SHMET_MO(relaxed));
			SHMET_AT(store_explicit)(&block[c], 0,
						 SHMET_MO(relaxed));
		}
	}
	shmet_seg_lock_op(lock_fd, SHMET_LOCK_RETIRE, F_UNLCK, F_OFD_SETLK,
			  &fl);
	return 0;
}

/*
 * Map value block `slot` at seg->block (MAP_FIXED when remapping after a
 * fork, so every handle now points into the new block) and reserve the
 * pages of every cell allocated so far.
 */
SHMET_W int
shmet_impl_map_block(struct shmet_segment *seg, uint32_t slot, int fixed)
{
	uint64_t off = seg->hdr->values_off +
		       (uint64_t)slot * seg->hdr->block_stride;
	/* Relaxed: a cursor; registrations after this reserve their own. */
	uint64_t want = shmet_impl_reserve_end(
		SHMET_AT(load_explicit)(&seg->hdr->cells_used,
					SHMET_MO(relaxed)),
		seg->hdr->block_stride);
	void *p;
	int rc;

	/*
	 * Reserve the block's pages first, by file offset: if tmpfs is full
	 * this fails before anything changed, and a fork child's handles
	 * keep writing where they did (never into a block it does not
	 * hold, never to an unreserved page).
	 */
	if (want > 0) {
		rc = shmet_impl_fallocate(seg->fd, off, want);
		if (rc != 0)
			return -rc;
	}
	p = mmap(fixed ? (void *)seg->block : NULL, (size_t)seg->hdr->block_stride,
		 PROT_READ | PROT_WRITE, MAP_SHARED | (fixed ? MAP_FIXED : 0),
		 seg->fd, (off_t)off);
	if (p == MAP_FAILED)
		return -errno;
	seg->block = (shmet_impl_cell *)p;
	seg->block_size = (size_t)seg->hdr->block_stride;
	seg->slot = slot;
	/* Relaxed: process-local, before any registration uses the block. */
	SHMET_AT(store_explicit)(&seg->reserved, want, SHMET_MO(relaxed));
	shmet_impl_publish_extent(seg, slot, want);
	return 0;
}

/* Make slot ours, with our lock on it held.  -EAGAIN or -ENOSPC: the
 * dead writer's gauges could not be folded; the slot stays as it was. */
SHMET_W int
shmet_impl_take_slot(struct shmet_segment *seg, uint32_t slot,
		     shmet_impl_cell *block, uint64_t reserved)
{
	struct shmet_seg_writer *w = &shmet_impl_writers(seg)[slot];
	uint64_t now = shmet_impl_clock_ns(CLOCK_REALTIME);

	/* Acquire: pairs with the previous owner's release of state. */
	if (SHMET_AT(load_explicit)(&w->state, SHMET_MO(acquire)) !=
	    SHMET_WRITER_UNUSED) {
		int rc = shmet_impl_reset_gauges(seg, block, slot, reserved);

		if (rc < 0)
			return rc;
		SHMET_AT(fetch_add_explicit)(&w->takeovers, 1,
					     SHMET_MO(relaxed));
	}
	/* The family records a dead owner registered are not ours. */
	shmet_impl_registrants_clear_slot(seg, slot);
	SHMET_AT(store_explicit)(&w->pid, (int64_t)getpid(), SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&w->claimed_ns, now, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&w->last_gauge_ns, now, SHMET_MO(relaxed));
	/* Release: readers that see ACTIVE see the fields above. */
	SHMET_AT(store_explicit)(&w->state, SHMET_WRITER_ACTIVE,
				 SHMET_MO(release));
	SHMET_POINT("claim.active");
	return 0;
}

/*
 * Take (or retake) our slot's liveness lock on the segment file, where
 * readers look (lock.h).  A reader's read lock may stand in the way; we
 * keep the slot (the claim file decides that) and try again at the next
 * registration.  Async-signal-safe (the fork child calls it).
 */
SHMET_W void
shmet_impl_hold_liveness(struct shmet_segment *seg)
{
	if (seg->slot >= seg->hdr->max_writers)
		return;
	/* Relaxed: a hint that only saves a syscall; fcntl is the truth. */
	SHMET_AT(store_explicit)(
		&seg->live_locked,
		seg->claim_fd < 0 ||
			shmet_seg_lock(seg->fd, SHMET_LOCK_SLOT(seg->slot),
				       F_WRLCK) == 0,
		SHMET_MO(relaxed));
}

/*
 * Claim the first slot whose OFD lock we can take (never used, released,
 * or its holder died), else the shared fallback block.  Returns the slot
 * (max_writers for the fallback block) or a negative errno, and formats
 * nothing: the fork child handler calls it too (see shmet_impl_after_fork).
 */
/*
 * Give up the mapping of a slot whose takeover was refused.  A fresh
 * mapping is unmapped; a fork child's (fixed: at the address its handles
 * use) goes back to the block it had, the parent's, as when its claim
 * fails (fork.c).
 */
static int
shmet_impl_unmap_refused(struct shmet_segment *seg, int fixed,
			 uint32_t old_slot)
{
	if (!fixed) {
		munmap((void *)seg->block, seg->block_size);
		seg->block = NULL;
		seg->slot = old_slot;
		return 0;
	}
	return shmet_impl_map_block(seg, old_slot, 1);
}

SHMET_W int64_t
shmet_impl_claim(struct shmet_segment *seg, int fixed)
{
	uint32_t n = seg->hdr->max_writers, old_slot = seg->slot;
	int rc;

	for (uint32_t i = 0; i < n; i++) {
		int claim = seg->claim_fd >= 0 ? seg->claim_fd : seg->fd;

		if (shmet_seg_lock(claim, SHMET_LOCK_SLOT(i), F_WRLCK) < 0)
			continue;
		/*
		 * A claim file deleted and recreated under running writers
		 * would let us win a slot someone holds: a live writer's
		 * liveness lock on the segment says so.
		 */
		if (seg->claim_fd >= 0 &&
		    shmet_seg_slot_held(seg->fd, i) == 1) {
			shmet_seg_lock(claim, SHMET_LOCK_SLOT(i), F_UNLCK);
			continue;
		}
		rc = shmet_impl_map_block(seg, i, fixed);
		if (rc < 0) {
			shmet_seg_lock(claim, SHMET_LOCK_SLOT(i), F_UNLCK);
			shmet_impl_count(seg, SHMET_FAIL_NO_MEMORY);
			return rc;
		}
		SHMET_POINT("claim.mapped");
		/* Relaxed: process-local; map_block reserved this far. */
		if (shmet_impl_take_slot(seg, i, seg->block,
					 SHMET_AT(load_explicit)(
						 &seg->reserved,
						 SHMET_MO(relaxed))) < 0) {
			/* Its gauges wait for a folder: try the next slot. */
			shmet_seg_lock(claim, SHMET_LOCK_SLOT(i), F_UNLCK);
			if (shmet_impl_unmap_refused(seg, fixed, old_slot) < 0)
				return -EAGAIN;
			continue;
		}
		shmet_impl_claimed_counts(seg, i, old_slot, fixed);
		shmet_impl_hold_liveness(seg);
		seg->owner_pid = getpid();
		SHMET_POINT("claim.live");
		return i;
	}
	rc = shmet_impl_map_block(seg, n, fixed);
	if (rc < 0) {
		shmet_impl_count(seg, SHMET_FAIL_NO_MEMORY);
		return rc;
	}
	/* Release: readers skip the fallback block until this count is
	 * non-zero (acquire), so it must be visible before our writes. */
	SHMET_AT(fetch_add_explicit)(&seg->hdr->failures[SHMET_FAIL_WRITERS_FULL],
				     1, SHMET_MO(release));
	return n;
}

/* shmet_open's claim: the same, with its outcome as a message. */
SHMET_W int
shmet_impl_claim_reporting(struct shmet_segment *seg)
{
	int64_t slot = shmet_impl_claim(seg, 0);

	if (slot < 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, (int)slot,
				       "cannot map or reserve a writer block "
				       "of %s: %s", seg->name,
				       strerror((int)-slot));
	if (slot == seg->hdr->max_writers)
		shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, 0,
				"all %u writer slots of %s are held by live "
				"processes; writing to the shared fallback "
				"block", seg->hdr->max_writers, seg->name);
	return 0;
}

/* ---------------------------------------------------------------- */
