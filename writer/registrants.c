/*
 * shmetrics writer: registrants, which live processes hold a handle on
 * each family record, so that a record is reclaimed (reclaim.c) only
 * once none does.
 *
 * Each writer slot has a bitmap of max_families bits in the registrants
 * region (layout.h, version 5).  A registration sets its slot's bit of the
 * record it returns (and of an alias's base) before it returns.  A bit
 * counts only while the slot's claim lock (lock.h) is held, so a process
 * that closes, or is killed with SIGKILL, stops holding its records the
 * moment the kernel drops its lock; the next claimer of the slot clears
 * the bitmap before it registers anything.  A clean close does not clear
 * it: the process keeps a copy of its bits, and a fork child sets them
 * again in the slot it claims before it lets go of the parent's
 * description (fork.c), whose lock keeps the parent's slot, and its bits,
 * counting until then even if the parent closed and exited first.  (A
 * close that cleared them lost a fork child's records in that window.)
 *
 * A process without a slot (every slot held, SHMET_OPEN_NO_WRITER, a fork
 * child whose claim failed) has no bitmap whose liveness anyone can see:
 * it pins the record instead, which is then never reclaimed.
 */
#include "writer-private.h"

static SHMET_ATOMIC(uint64_t) *
shmet_impl_registrant_map(const struct shmet_segment *seg, uint32_t slot)
{
	return (SHMET_ATOMIC(uint64_t) *)(void *)(
		seg->base + seg->hdr->registrants_off +
		8u * (size_t)slot *
			shmet_seg_registrant_words(seg->hdr->max_families));
}

/* Our slot, when we own one whose bits other processes can trust. */
static int
shmet_impl_has_own_slot(const struct shmet_segment *seg)
{
	return seg->slot < seg->hdr->max_writers && seg->block &&
	       seg->owner_pid == (int)getpid();
}

/* At open: the process's copy of its bits (NULL: it pins instead). */
SHMET_W void
shmet_impl_registrants_open(struct shmet_segment *seg)
{
	seg->registered = (SHMET_ATOMIC(uint64_t) *)calloc(
		(size_t)shmet_seg_registrant_words(seg->hdr->max_families), 8);
}

SHMET_W void
shmet_impl_registrants_close(struct shmet_segment *seg)
{
	free((void *)seg->registered);
	seg->registered = NULL;
}

/*
 * Clear slot's bitmap: it is ours now, and its bits are a previous
 * owner's.  Relaxed: only the slot's owner sets its bits, and
 * we are it (the claim lock); a reclaim that reads a bit late counts a
 * registrant too many, which only delays it.  Async-signal-safe.
 */
SHMET_W void
shmet_impl_registrants_clear_slot(struct shmet_segment *seg, uint32_t slot)
{
	SHMET_ATOMIC(uint64_t) *map = shmet_impl_registrant_map(seg, slot);
	uint64_t words = shmet_seg_registrant_words(seg->hdr->max_families);

	for (uint64_t w = 0; w < words; w++)
		SHMET_AT(store_explicit)(&map[w], 0, SHMET_MO(relaxed));
}

/*
 * Say that this process holds record id, before the registration checks
 * that the record is still live (register.c).  Never taken back until
 * the process closes: a registration that finds the record reclaimed
 * after all leaves its bit, which only delays a reclaim of the record's
 * next incarnation while we live; taking it back could take another
 * thread's, set for that next incarnation.
 *
 * Seq_cst, the bit and the pin: the registration's half of the Dekker
 * pair with a reclaim (reclaim.c): we store the bit, then load the
 * record's state; the reclaimer stores the state, then loads the bits.
 * In the single order of seq_cst operations one of the two comes first,
 * so either the reclaimer sees our bit (and gives up) or we see its
 * state (and go through the gate).
 */
SHMET_W void
shmet_impl_registrant_mark(struct shmet_segment *seg, uint32_t id)
{
	uint64_t bit = UINT64_C(1) << (id % 64);

	if (seg->registered)
		/* Relaxed: process-local; a fork copies it whole (fork runs
		 * with the fork-list lock, which registrations do not take,
		 * but a handle is returned only after this). */
		SHMET_AT(fetch_or_explicit)(&seg->registered[id / 64], bit,
					    SHMET_MO(relaxed));
	if (!seg->registered || !shmet_impl_has_own_slot(seg)) {
		SHMET_AT(store_explicit)(&shmet_impl_families(seg)[id].pinned,
					 1, SHMET_MO(seq_cst));
		return;
	}
	SHMET_AT(fetch_or_explicit)(
		&shmet_impl_registrant_map(seg, seg->slot)[id / 64], bit,
		SHMET_MO(seq_cst));
}

/*
 * Did this process register record id through seg since it attached?  A
 * family handle kept across a close and a new open of the same segment
 * handle names a record that may have been reclaimed and rebuilt for
 * another name since: its calls fail (-ESTALE) instead of creating or
 * removing that one's series.  1 when the process keeps no copy.
 */
SHMET_W int
shmet_impl_registrant_held(const struct shmet_segment *seg, uint32_t id)
{
	if (id >= seg->hdr->max_families)
		return 0;
	/* Relaxed: our own registrations, sequenced before the handle. */
	return !seg->registered ||
	       (SHMET_AT(load_explicit)(&seg->registered[id / 64],
					SHMET_MO(relaxed)) >>
		(id % 64)) & 1;
}

/* A family handle from before the segment handle's latest open. */
SHMET_W int
shmet_impl_stale_family(struct shmet_segment *seg)
{
	return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -ESTALE,
			       "family handle registered before the segment "
			       "was closed: register the family again");
}

/*
 * In a fork child, once it claimed a slot of its own (claimed: 1) or
 * failed to (0): set our bits in that slot, or pin every record we hold.
 * Before the child closes the parent's description, whose locks keep the
 * parent's slot (and its bits) alive while the child holds it.
 * Async-signal-safe: atomics on memory only.
 */
SHMET_W void
shmet_impl_registrants_forked(struct shmet_segment *seg, int claimed)
{
	uint64_t words = shmet_seg_registrant_words(seg->hdr->max_families);
	SHMET_ATOMIC(uint64_t) *map =
		claimed && shmet_impl_has_own_slot(seg)
			? shmet_impl_registrant_map(seg, seg->slot) : NULL;

	if (!seg->registered)
		return;
	for (uint64_t w = 0; w < words; w++) {
		/* Relaxed: the child's one thread wrote its copy. */
		uint64_t bits = SHMET_AT(load_explicit)(&seg->registered[w],
							SHMET_MO(relaxed));

		if (bits == 0)
			continue;
		if (map) {
			/* Seq_cst: as a registration's bit. */
			SHMET_AT(fetch_or_explicit)(&map[w], bits,
						    SHMET_MO(seq_cst));
			continue;
		}
		for (uint32_t b = 0; b < 64; b++)
			if (bits & (UINT64_C(1) << b))
				SHMET_AT(store_explicit)(
					&shmet_impl_families(seg)[w * 64 + b]
						 .pinned,
					1, SHMET_MO(seq_cst));
	}
}

/*
 * Does a live process hold record id?  Its pin, or its bit in the bitmap
 * of a slot whose owner lives (ours included: we are alive).  Seq_cst
 * loads: the reclaimer's half of the Dekker pair (see _mark above).  A
 * slot whose liveness cannot be told counts as live.
 */
SHMET_W int
shmet_impl_registrant_live(struct shmet_segment *seg, uint32_t id)
{
	uint64_t bit = UINT64_C(1) << (id % 64);

	if (SHMET_AT(load_explicit)(&shmet_impl_families(seg)[id].pinned,
				    SHMET_MO(seq_cst)))
		return 1;
	for (uint32_t slot = 0; slot < seg->hdr->max_writers; slot++) {
		if (!(SHMET_AT(load_explicit)(
			      &shmet_impl_registrant_map(seg, slot)[id / 64],
			      SHMET_MO(seq_cst)) &
		      bit))
			continue;
		/* Our own slot: the lock is our description's, which the
		 * query would not report; we are alive.  Another slot's
		 * owner lives if either of its locks is held: the claim
		 * (a reader's read lock may keep a live writer from its
		 * liveness lock) or the liveness lock (a claim file deleted
		 * and made again under running writers, as slot.c checks). */
		if (slot == seg->slot ||
		    (seg->claim_fd >= 0 &&
		     shmet_seg_slot_held(seg->claim_fd, slot) != 0) ||
		    shmet_seg_slot_held(seg->fd, slot) != 0)
			return 1;
	}
	return 0;
}
