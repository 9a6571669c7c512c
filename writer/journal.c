/*
 * shmetrics writer: the gate's journal.  A creation, removal, reuse or
 * reclaim that holds a family's gate (gate.c) names what it is doing in
 * the family record (gate_series, gate_count, the record's state) before
 * it does it; whoever takes the gate next finishes or undoes what a dead
 * holder left, here, before doing anything of its own.  The steps that
 * write the journal are in series.c, remove.c, reuse.c and reclaim.c;
 * the recoveries are all in this file, below those protocols, so that
 * each of them can enter the gate without calling back into another.
 */
#include "writer-private.h"

/*
 * Under the gate: finish what a dead holder left (the steps are in gate.c).
 * Its record was complete before gate_series named it.
 */
SHMET_W void
shmet_impl_gate_recover(struct shmet_segment *seg, uint32_t fam)
{
	struct shmet_seg_family *r = &shmet_impl_families(seg)[fam];
	/* Acquire: pairs with the dead holder's release of the journal. */
	uint32_t pending = SHMET_AT(load_explicit)(&r->gate_series,
						   SHMET_MO(acquire));
	uint32_t before, id;

	shmet_impl_reclaim_recover(seg, fam);
	if (pending == 0)
		return;
	if (pending & SHMET_GATE_REMOVING) {
		shmet_impl_remove_recover(seg, r, pending);
		return;
	}
	if (pending & SHMET_GATE_REUSING) {
		shmet_impl_reuse_recover(seg, r, fam, pending);
		return;
	}
	id = pending - 1;
	/* Relaxed, here and in the stores below: written before the
	 * journal's release (seen through its acquire), and only by holders
	 * of the gate, which orders them (an OFD lock, the flag's acquire). */
	before = SHMET_AT(load_explicit)(&r->gate_count, SHMET_MO(relaxed));
	if (id < seg->hdr->max_series && shmet_impl_series_indexed(seg, id)) {
		SHMET_AT(store_explicit)(&r->series_count, before + 1,
					 SHMET_MO(relaxed));
	} else {
		SHMET_AT(store_explicit)(&r->series_count, before,
					 SHMET_MO(relaxed));
		/* A complete record nobody published: removed, so that any
		 * process reuses it when the segment is full (reuse.c). */
		if (id < seg->hdr->max_series)
			shmet_impl_mark_removed(seg, id);
	}
	/* Readers that rebuilt between the dead holder's CAS and its
	 * generation bump see the series now. */
	SHMET_AT(fetch_add_explicit)(&seg->hdr->generation, 1,
				     SHMET_MO(release));
	SHMET_AT(store_explicit)(&r->gate_series, 0, SHMET_MO(release));
}

/*
 * Take fam's gate to `what` (for the message) and finish what a dead
 * holder left: 0, or the error, counted and described.  `point` names the
 * step after the lock (the kill-point harness's).
 */
SHMET_W int
shmet_impl_gate_enter(struct shmet_segment *seg, uint32_t fam,
		      const char *what, const char *point)
{
	int rc = shmet_impl_gate_lock(seg, fam);

	if (rc < 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, rc,
				       "%.*s: cannot %s: %s",
				       SHMET_IMPL_FAM(seg, fam), what,
				       rc == -EAGAIN
					       ? "another process holds the "
						 "family's creation gate"
					       : strerror(-rc));
	SHMET_POINT(point);
	(void)point;
	shmet_impl_gate_recover(seg, fam);
	return 0;
}

/* The record is free: incarnation odd (a reader that read it before sees
 * it moved), readers rebuild, then FREE. */
SHMET_W void
shmet_impl_family_free(struct shmet_segment *seg, uint32_t id)
{
	struct shmet_seg_family *r = &shmet_impl_families(seg)[id];

	/* Release: readers and lookups that see the new generation or the
	 * odd incarnation see the tombstone. */
	SHMET_AT(fetch_add_explicit)(&seg->hdr->generation, 1,
				     SHMET_MO(release));
	if (!(SHMET_AT(load_explicit)(&r->incarnation, SHMET_MO(relaxed)) & 1))
		SHMET_AT(fetch_add_explicit)(&r->incarnation, 1,
					     SHMET_MO(release));
	SHMET_POINT("reclaim.moved");
	/* Release: a registration that claims it sees all of the above. */
	SHMET_AT(store_explicit)(&r->state, SHMET_FAMILY_FREE,
				 SHMET_MO(release));
}

/* Under fam's gate: finish what a dead holder left in the state. */
SHMET_W void
shmet_impl_reclaim_recover(struct shmet_segment *seg, uint32_t fam)
{
	struct shmet_seg_family *r = &shmet_impl_families(seg)[fam];
	/* Acquire: the dead holder's writes before its state. */
	uint32_t st = SHMET_AT(load_explicit)(&r->state, SHMET_MO(acquire));

	if (st != SHMET_FAMILY_RECLAIMING && st != SHMET_FAMILY_CLAIMED)
		return;
	if (shmet_impl_family_indexed(seg, fam) &&
	    !(SHMET_AT(load_explicit)(&r->incarnation, SHMET_MO(relaxed)) &
	      1)) {
		/* A reclaim that stopped before the tombstone, or a rebuilt
		 * record published: LIVE.  Release: its fields. */
		SHMET_AT(store_explicit)(&r->state, SHMET_FAMILY_LIVE,
					 SHMET_MO(release));
		return;
	}
	shmet_impl_family_free(seg, fam);
}

/*
 * The record leaves: its state (readers drop it; relaxed, they learn of
 * it through the generation's release that follows), then its incarnation
 * (handles kept across the removal drop their writes from now on; a
 * write already past the check lands in cells nobody reads, and the cells
 * go to another series only SHMET_REUSE_NS after removed_ns, reuse.c),
 * then the time, which a reuser needs non-zero.  Again after a kill:
 * moving gen twice is harmless.
 */
SHMET_W void
shmet_impl_mark_removed(struct shmet_segment *seg, uint32_t id)
{
	struct shmet_seg_series *s = &shmet_impl_series_table(seg)[id];

	SHMET_AT(store_explicit)(&s->state, SHMET_SERIES_REMOVED,
				 SHMET_MO(relaxed));
	SHMET_AT(fetch_add_explicit)(&s->gen, 1, SHMET_MO(release));
	/* Its index slot becomes a tombstone, which a creation may take
	 * (series.c). */
	shmet_impl_unindex(seg, seg->hdr->series_index_off,
			   seg->hdr->series_index_slots, s->hash, id);
	SHMET_AT(store_explicit)(&s->removed_ns,
				 shmet_impl_clock_ns(CLOCK_MONOTONIC),
				 SHMET_MO(release));
}

SHMET_W void
shmet_impl_remove_recover(struct shmet_segment *seg,
			  struct shmet_seg_family *r, uint32_t pending)
{
	uint32_t id = (pending & ~SHMET_GATE_REMOVING) - 1;
	/* Relaxed: written before the journal's release, which the
	 * caller's acquire load saw; only gate holders write them. */
	uint32_t before = SHMET_AT(load_explicit)(&r->gate_count,
						  SHMET_MO(relaxed));
	int removed = id < seg->hdr->max_series &&
		      SHMET_AT(load_explicit)(
			      &shmet_impl_series_table(seg)[id].state,
			      SHMET_MO(relaxed)) == SHMET_SERIES_REMOVED;

	SHMET_AT(store_explicit)(&r->series_count,
				 removed && before > 0 ? before - 1 : before,
				 SHMET_MO(relaxed));
	if (removed) {  /* finish what the dead remover may not have */
		shmet_impl_mark_removed(seg, id);
		SHMET_AT(fetch_add_explicit)(&r->removals, 1,
					     SHMET_MO(relaxed));
	}
	/* Release: readers that see the generation see the state. */
	SHMET_AT(fetch_add_explicit)(&seg->hdr->generation, 1,
				     SHMET_MO(release));
	SHMET_AT(store_explicit)(&r->gate_series, 0, SHMET_MO(release));
}

/* The state a claim for family record fam leaves (layout.h). */
SHMET_W uint32_t
shmet_impl_claim_value(uint32_t fam)
{
	return SHMET_SERIES_CLAIMED | fam << 8;
}

/* Put claimed record id back: removed as of now. */
SHMET_W void
shmet_impl_unclaim(struct shmet_segment *seg, uint32_t id)
{
	struct shmet_seg_series *r = &shmet_impl_series_table(seg)[id];

	/* Release, as a removal's (mark_removed, above): handles and
	 * lookups that read the record after see another incarnation; a
	 * claimer's acquire of removed_ns sees the quarantine restart. */
	SHMET_AT(fetch_add_explicit)(&r->gen, 1, SHMET_MO(release));
	SHMET_AT(store_explicit)(&r->removed_ns,
				 shmet_impl_clock_ns(CLOCK_MONOTONIC),
				 SHMET_MO(release));
	/* Release: a later claimer sees the record as we leave it. */
	SHMET_AT(store_explicit)(&r->state, SHMET_SERIES_REMOVED,
				 SHMET_MO(release));
}

SHMET_W void
shmet_impl_reuse_recover(struct shmet_segment *seg, struct shmet_seg_family *f,
			 uint32_t fam, uint32_t pending)
{
	uint32_t id = (pending & ~SHMET_GATE_REUSING) - 1;

	const struct shmet_seg_series *r;
	uint32_t state;

	if (id >= seg->hdr->max_series) {
		SHMET_AT(store_explicit)(&f->gate_series, 0, SHMET_MO(release));
		return;
	}
	r = &shmet_impl_series_table(seg)[id];
	/* Acquire: the dead reuser's claim.  Ours, or filled (LIVE, this
	 * family's) but never published: put back.  Another family's claim
	 * stays (its own journal covers it). */
	state = SHMET_AT(load_explicit)(&r->state, SHMET_MO(acquire));
	if (state == shmet_impl_claim_value(fam) ||
	    (state == SHMET_SERIES_LIVE && r->family == fam &&
	     !shmet_impl_series_indexed(seg, id)))
		shmet_impl_unclaim(seg, id);
	SHMET_AT(store_explicit)(&f->gate_series, 0, SHMET_MO(release));
}
