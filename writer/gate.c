/*
 * shmetrics writer: the series creation gate.  Looking up a series takes
 * no lock; creating one holds its family's gate, an OFD write lock on the
 * claim file (lock.h) plus a per-process flag (locks of one description
 * never exclude each other, so the threads of a process need the flag).
 * Under the gate, nobody else creates a series of the family, so:
 *
 * - the family's series_count is the number of its published series,
 *   exact: a lookup of a series that exists, or that a racing creator is
 *   publishing, can never fail at the family's limit (a racer either
 *   published before we took the gate, and our probe under the gate finds
 *   it, or it has not started);
 * - a creator that dies mid-step leaves a journal, which the next holder
 *   of the gate rolls forward or back, so a kill loses no capacity.
 *
 * Steps of a creation and what a kill (SIGKILL) after each leaves; the
 * kernel drops the dead creator's OFD lock, so the gate is free again:
 *   series.probed      nothing taken
 *   series.gated       nothing changed
 *   series.built       a built record that nobody knows: leaked, at most
 *                      one record, its cells and label bytes
 *   series.journaled   gate_series names the record, gate_count the
 *                      count: the next holder finds the record
 *                      unpublished, restores the count and marks the
 *                      record removed, for reuse (nothing leaked)
 *   series.counted     the same: the count is restored from gate_count
 *   series.announced   the same, and the generation moved: readers
 *                      rebuild twice (lib/index.c) and find nothing new
 *   series.published   the record is in the index: the next holder keeps
 *                      the count and moves the generation again, so
 *                      readers that rebuilt too early see it
 *   series.settled     done but the journal: cleared by the next holder
 *   (after the unlock) done
 * Removals, reuses and reclaims hold the gate too; their steps are in
 * writer/remove.c, writer/reuse.c and writer/reclaim.c (a reclaim, and
 * a registration that rebuilds a reclaimed record, journal in the
 * record's state, which the next holder finishes first).
 * A cancel: no step between taking and dropping the gate is a
 * cancellation point (no sleep, no blocking lock, no I/O), so a
 * cancelled thread cannot hold the gate; the waits for a busy gate happen
 * while holding nothing.
 */
#include "writer-private.h"

#include <sched.h>

/* How long a creation waits for a family's gate before it gives up: a
 * holder keeps it for microseconds unless it is stopped (a debugger). */
#define SHMET_IMPL_GATE_WAIT_MS 2000

static int
shmet_impl_gate_fd(const struct shmet_segment *seg)
{
	return seg->claim_fd >= 0 ? seg->claim_fd : seg->fd;
}

/* One try: the process flag, then the lock at off of the claim file.
 * 0, -EAGAIN (busy) or another negative errno. */
static int
shmet_impl_lock_try(struct shmet_segment *seg, SHMET_ATOMIC(int) *busy,
		    uint64_t off)
{
	int expected = 0, e;

	/* Acquire: what the previous holder of this process wrote. */
	if (!SHMET_AT(compare_exchange_strong_explicit)(
		    busy, &expected, 1, SHMET_MO(acquire), SHMET_MO(relaxed)))
		return -EAGAIN;
	if (shmet_seg_lock(shmet_impl_gate_fd(seg), off, F_WRLCK) == 0)
		return 0;
	e = errno;
	SHMET_AT(store_explicit)(busy, 0, SHMET_MO(release));
	return e == EAGAIN || e == EACCES ? -EAGAIN : -e;
}

SHMET_W int
shmet_impl_gate_try(struct shmet_segment *seg, uint32_t fam)
{
	return shmet_impl_lock_try(seg, &seg->gate_busy, SHMET_LOCK_GATE(fam));
}

/*
 * One try at fam's lock, after waiting (as for a gate, at most
 * SHMET_IMPL_GATE_WAIT_MS) for another thread of this process to drop its
 * gate: the reclaim sweeps and the search for a free family record pass
 * over a record another process holds, but a thread of ours creating a
 * series must not make them find nothing.  0 or -EAGAIN.
 */
SHMET_W int
shmet_impl_gate_try_other(struct shmet_segment *seg, uint32_t fam)
{
	uint64_t start = shmet_impl_clock_ns(CLOCK_MONOTONIC);
	int expected;

	for (unsigned spins = 0;; spins++) {
		expected = 0;
		/* Acquire: what the previous holder of this process wrote. */
		if (SHMET_AT(compare_exchange_strong_explicit)(
			    &seg->gate_busy, &expected, 1, SHMET_MO(acquire),
			    SHMET_MO(relaxed)))
			break;
		if (shmet_impl_clock_ns(CLOCK_MONOTONIC) - start >
		    SHMET_IMPL_GATE_WAIT_MS * UINT64_C(1000000))
			return -EAGAIN;
		if (spins < 16) {
			sched_yield();
		} else {
			struct timespec ts = { 0, 100 * 1000L };

			nanosleep(&ts, NULL);   /* holding nothing */
		}
	}
	if (shmet_seg_lock(shmet_impl_gate_fd(seg), SHMET_LOCK_GATE(fam),
			   F_WRLCK) == 0)
		return 0;
	SHMET_AT(store_explicit)(&seg->gate_busy, 0, SHMET_MO(release));
	return -EAGAIN;
}

/* Wait for the lock at off (flag busy) as for a gate: yield, then
 * sleeps, at most SHMET_IMPL_GATE_WAIT_MS. */
static int
shmet_impl_lock_wait(struct shmet_segment *seg, SHMET_ATOMIC(int) *busy,
		     uint64_t off)
{
	uint64_t start = 0;
	long pause_us = 20;
	int rc;

	for (unsigned spins = 0;; spins++) {
		rc = shmet_impl_lock_try(seg, busy, off);
		if (rc != -EAGAIN)
			return rc;
		if (spins == 0) {
			SHMET_POINT("series.gate_busy");
			start = shmet_impl_clock_ns(CLOCK_MONOTONIC);
		}
		if (spins < 16) {
			sched_yield();
			continue;
		}
		if (shmet_impl_clock_ns(CLOCK_MONOTONIC) - start >
		    SHMET_IMPL_GATE_WAIT_MS * UINT64_C(1000000))
			return -EAGAIN;
		/* Holding nothing here: a cancel in the sleep is harmless. */
		struct timespec ts = { 0, pause_us * 1000L };
		nanosleep(&ts, NULL);
		if (pause_us < 1000)
			pause_us *= 2;
	}
}

SHMET_W int
shmet_impl_gate_lock(struct shmet_segment *seg, uint32_t fam)
{
	return shmet_impl_lock_wait(seg, &seg->gate_busy,
				    SHMET_LOCK_GATE(fam));
}

/*
 * The family index lock (lock.h): publications of family records and
 * reclaims' last steps, one at a time.  Its own process flag: a reclaim
 * and a rebuilt record's publication hold a gate too.
 */
SHMET_W int
shmet_impl_index_lock(struct shmet_segment *seg)
{
	return shmet_impl_lock_wait(seg, &seg->index_busy,
				    SHMET_LOCK_FAMILY_INDEX);
}

SHMET_W void
shmet_impl_index_unlock(struct shmet_segment *seg)
{
	shmet_seg_lock(shmet_impl_gate_fd(seg), SHMET_LOCK_FAMILY_INDEX,
		       F_UNLCK);
	/* Release: our writes under the lock, for the next thread. */
	SHMET_AT(store_explicit)(&seg->index_busy, 0, SHMET_MO(release));
}

SHMET_W void
shmet_impl_gate_unlock(struct shmet_segment *seg, uint32_t fam)
{
	shmet_seg_lock(shmet_impl_gate_fd(seg), SHMET_LOCK_GATE(fam), F_UNLCK);
	/* Release: our writes under the gate, for the next thread. */
	SHMET_AT(store_explicit)(&seg->gate_busy, 0, SHMET_MO(release));
}

/*
 * 1 if entry id + 1 is in the index of `slots` slots at index_off, probed
 * from hash: the series index's and the family index's one probe for a
 * record a dead or interrupted holder may have published.
 */
SHMET_W int
shmet_impl_indexed(const struct shmet_segment *seg, uint64_t index_off,
		   uint32_t slots, uint64_t hash, uint32_t id)
{
	SHMET_ATOMIC(uint32_t) *index = shmet_impl_index(seg, index_off);
	uint32_t mask = slots - 1;

	for (uint32_t probe = 0; probe <= mask; probe++) {
		/* Acquire: as every index load. */
		uint32_t v = SHMET_AT(load_explicit)(
			&index[(uint32_t)(hash + probe) & mask],
			SHMET_MO(acquire));

		if (v == 0)
			return 0;
		if (v == id + 1)
			return 1;
	}
	return 0;
}

/*
 * Record id's slot in an index (the family or the series index) becomes
 * a tombstone, which lookups pass over and an insertion may take: the
 * index does not fill up with records that left.  Under the index lock
 * or the family's gate.  Seq_cst: a registration that loads the family
 * index's slot after this passes over the record, one that loaded it
 * before holds it (the Dekker pair of reclaim.c); the series index needs
 * only atomicity (its slot publishes nothing), and one loop serves both.
 */
SHMET_W void
shmet_impl_unindex(struct shmet_segment *seg, uint64_t index_off,
		   uint32_t slots, uint64_t hash, uint32_t id)
{
	SHMET_ATOMIC(uint32_t) *index = shmet_impl_index(seg, index_off);
	uint32_t mask = slots - 1;

	for (uint32_t probe = 0; probe <= mask; probe++) {
		uint32_t i = (uint32_t)(hash + probe) & mask;
		uint32_t v = id + 1;

		if (SHMET_AT(compare_exchange_strong_explicit)(
			    &index[i], &v, SHMET_INDEX_TOMB, SHMET_MO(seq_cst),
			    SHMET_MO(relaxed)) ||
		    v == 0)
			return;
	}
}

/* 1 if series record id is in the series index. */
SHMET_W int
shmet_impl_series_indexed(const struct shmet_segment *seg, uint32_t id)
{
	return shmet_impl_indexed(seg, seg->hdr->series_index_off,
				  seg->hdr->series_index_slots,
				  shmet_impl_series_table(seg)[id].hash, id);
}

/* 1 if record id is in the family index. */
SHMET_W int
shmet_impl_family_indexed(const struct shmet_segment *seg, uint32_t id)
{
	return shmet_impl_indexed(seg, seg->hdr->family_index_off,
				  seg->hdr->family_index_slots,
				  shmet_impl_families(seg)[id].hash, id);
}
