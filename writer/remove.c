/*
 * shmetrics writer: removing series (shmet_family_remove and
 * shmet_family_clear, prometheus_client's remove() and clear()).
 *
 * A removed series leaves the pages at the readers' next index build;
 * its index slot becomes a tombstone (SHMET_INDEX_TOMB) that lookups pass
 * over and creations take, and a later lookup of the same label values
 * creates a new series that starts from zero (Prometheus sees a new
 * series; rate() and increase() handle it).  The record's incarnation
 * moves, so a handle a thread still holds drops its writes (counted);
 * the record, its cells and label bytes go to another series when the
 * segment is full, SHMET_REUSE_NS later at the earliest (reuse.c).
 *
 * A removal holds the family's creation gate (gate.c), so the family's
 * series_count stays the exact count of its live series.  Steps, and what
 * a kill (SIGKILL) after each leaves; the next holder of the gate finishes
 * from the journal (shmet_impl_remove_recover, journal.c):
 *   remove.gated      nothing changed
 *   remove.journaled  gate_series names the record with
 *                     SHMET_GATE_REMOVING, gate_count the count before:
 *                     the series is still live; the count is restored
 *   remove.marked     the record is removed and its incarnation moved
 *                     (handles kept across it drop their writes): the
 *                     next holder marks it again (a kill may have come
 *                     between the two), sets the count to gate_count - 1
 *                     and moves the generation, so readers drop it
 *   remove.counted    the same
 *   remove.announced  done but the journal
 * A cancel: none of the steps is a cancellation point (API entries turn
 * cancellation off, state.c).
 */
#include "writer-private.h"

/* Under the gate: remove published live record id of family record r. */
SHMET_W void
shmet_impl_remove_one(struct shmet_segment *seg, struct shmet_seg_family *r,
		      uint32_t id)
{
	/* Relaxed: only gate holders write the count (gate.c). */
	uint32_t count = SHMET_AT(load_explicit)(&r->series_count,
						 SHMET_MO(relaxed));

	SHMET_AT(store_explicit)(&r->gate_count, count, SHMET_MO(relaxed));
	/* Release: a recovering holder that reads the journal sees
	 * gate_count. */
	SHMET_AT(store_explicit)(&r->gate_series,
				 (id + 1) | SHMET_GATE_REMOVING,
				 SHMET_MO(release));
	SHMET_POINT("remove.journaled");
	shmet_impl_mark_removed(seg, id);
	SHMET_POINT("remove.marked");
	/* Relaxed: a hint to handle caches (layout.h); a cache that reads
	 * it late keeps a stale handle one call longer. */
	SHMET_AT(fetch_add_explicit)(&r->removals, 1, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&r->series_count, count > 0 ? count - 1 : 0,
				 SHMET_MO(relaxed));
	SHMET_POINT("remove.counted");
	/* Release: a reader that sees the new generation sees the state. */
	SHMET_AT(fetch_add_explicit)(&seg->hdr->generation, 1,
				     SHMET_MO(release));
	SHMET_POINT("remove.announced");
	SHMET_AT(store_explicit)(&r->gate_series, 0, SHMET_MO(release));
}

static int
shmet_impl_gate_for_removal(const struct shmet_family *fam)
{
	struct shmet_segment *seg = fam->seg;

	if (fam->id == UINT32_MAX || !seg || !seg->attached)
		return fam->error ? fam->error : -ENODEV;
	if (!shmet_impl_registrant_held(seg, fam->id))
		return shmet_impl_stale_family(seg);
	return shmet_impl_gate_enter(seg, fam->id, "remove series",
				     "remove.gated");
}

static int
shmet_impl_remove_steps(const struct shmet_family *fam, uint32_t n,
			const char *const *values)
{
	struct shmet_segment *seg = fam->seg;
	size_t lens[SHMET_MAX_LABELS], fixed_lens[SHMET_MAX_LABELS];
	const char *fixed[SHMET_MAX_LABELS];
	uint32_t cell, empty, id, gen;
	char *copy = NULL;
	int rc = shmet_impl_values_valid(fam, n, values, lens);

	/* Stored values are repaired UTF-8 (format.h): look for those. */
	if (rc == 0)
		rc = shmet_impl_repair_values(fam, n, values, lens, fixed,
					      fixed_lens, &copy);
	if (rc == 0)
		rc = shmet_impl_gate_for_removal(fam);
	if (rc == 0) {
		rc = shmet_impl_series_find(
			fam, shmet_impl_series_hash(fam->id, n, fixed,
						    fixed_lens),
			n, fixed, fixed_lens, &cell, &empty, &id, &gen);
		if (rc == 0)
			shmet_impl_remove_one(
				seg, &shmet_impl_families(seg)[fam->id], id);
		else if (rc == 1 || rc == -ENOSPC)
			rc = shmet_impl_fail(seg, SHMET_IMPL_NO_REASON,
					     -ENOENT, "%.*s has no series with "
					     "these label values",
					     SHMET_IMPL_FAM(seg, fam->id));
		shmet_impl_gate_unlock(seg, fam->id);
	}
	free(copy);
	return rc;
}

int
shmet_family_remove(const struct shmet_family *fam, uint32_t count,
		    const char *const *values)
{
	int old = shmet_impl_cancel_off();
	int rc = shmet_impl_remove_steps(fam, count, values);

	shmet_impl_cancel_restore(old);
	return rc;
}

/* Every published live series of the family, from the index (a record
 * not in it may be another thread's spare, being built). */
static int
shmet_impl_clear_steps(const struct shmet_family *fam)
{
	struct shmet_segment *seg = fam->seg;
	SHMET_ATOMIC(uint32_t) *index;
	const struct shmet_seg_series *table;
	int rc = shmet_impl_gate_for_removal(fam);

	if (rc < 0)
		return rc;
	index = shmet_impl_index(seg, seg->hdr->series_index_off);
	table = shmet_impl_series_table(seg);
	for (uint32_t i = 0; i < seg->hdr->series_index_slots; i++) {
		/* Acquire: as every index load (a complete record). */
		uint32_t v = SHMET_AT(load_explicit)(&index[i],
						     SHMET_MO(acquire));

		if (v == 0 || v - 1 >= seg->hdr->max_series ||
		    table[v - 1].family != fam->id ||
		    SHMET_AT(load_explicit)(&table[v - 1].state,
					    SHMET_MO(relaxed)) !=
			    SHMET_SERIES_LIVE)
			continue;
		shmet_impl_remove_one(seg, &shmet_impl_families(seg)[fam->id],
				      v - 1);
	}
	shmet_impl_gate_unlock(seg, fam->id);
	return 0;
}

int
shmet_family_clear(const struct shmet_family *fam)
{
	int old = shmet_impl_cancel_off();
	int rc = shmet_impl_clear_steps(fam);

	shmet_impl_cancel_restore(old);
	return rc;
}

uint32_t
shmet_family_removals(const struct shmet_family *fam)
{
	if (fam->id == UINT32_MAX || !fam->seg || !fam->seg->attached ||
	    !shmet_impl_registrant_held(fam->seg, fam->id))
		return 0;
	/* Relaxed: see shmet_impl_remove_one. */
	return SHMET_AT(load_explicit)(
		&shmet_impl_families(fam->seg)[fam->id].removals,
		SHMET_MO(relaxed));
}
