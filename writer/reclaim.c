/*
 * shmetrics writer: reclaiming family records.  A family record (one per
 * name and shape, "Shapes across releases") that has no published series
 * and no live registrant (registrants.c) is freed: its family index slot
 * becomes a tombstone, and the record and its string allocation go to a
 * later registration whose strings fit (family.c), so a segment that sees
 * a release a day neither fills its family table nor its string pool.
 *
 * A reclaim holds the record's gate (gate.c: nobody creates, removes or
 * reuses a series of it meanwhile) and, for its checks and the tombstone,
 * the family index lock (register.c: nobody publishes an alias of it
 * meanwhile).  Steps, and what a kill (SIGKILL) after each leaves; the
 * next holder of the gate (shmet_impl_reclaim_recover, journal.c, which
 * every gate entry runs first) finishes from the record's state:
 *   reclaim.gated      nothing changed
 *   reclaim.marked     state RECLAIMING, the record still in the index:
 *                      the next holder makes it LIVE again (registrations
 *                      that find it meanwhile go through the gate)
 *   reclaim.unindexed  its index slot is a tombstone, readers and
 *                      lookups pass over it: the next holder moves the
 *                      incarnation (odd) and the generation and frees it
 *   reclaim.moved      the same
 *   reclaim.freed      done
 * Rebuilding a free record for a registration, under its gate
 * (shmet_impl_claim_free_family, register.c; a new record from the cursor
 * is built the same way, CLAIMED under its gate, family.c):
 *   reclaim.claimed    state CLAIMED, incarnation odd, not in the index:
 *                      the next holder frees it again (state FREE)
 *   family.built       filled, incarnation even: the same (and makes the
 *                      incarnation odd again)
 *   family.published   in the index, still CLAIMED: the next holder makes
 *                      it LIVE
 * No capacity is lost at any step: the record and its strings are FREE
 * or LIVE again.
 *
 * Why a registration never holds a freed record (the Dekker pair): a
 * registration stores its bit (seq_cst), then loads the record's state
 * (seq_cst); a reclaim stores RECLAIMING (seq_cst), then loads every
 * bit (seq_cst).  All four are seq_cst, so they fall in one total order:
 * if the registration's load comes before the reclaim's store, its store
 * came earlier still, and the reclaim sees the bit and gives up; if it
 * comes after, the registration sees RECLAIMING (or FREE, or another
 * incarnation) and goes through the gate or probes again.  Both may see
 * each other (the reclaim gives up, the registration waits at the gate
 * and finds the record LIVE); neither can miss the other.
 */
#include "writer-private.h"

/* A record (not FREE, in the index) whose base is fam: an alias. */
static int
shmet_impl_family_aliased(const struct shmet_segment *seg, uint32_t fam)
{
	/* Relaxed: records below the cursor; the index lock we hold
	 * orders every alias's publication with us. */
	uint32_t used = SHMET_AT(load_explicit)(&seg->hdr->families_used,
						SHMET_MO(relaxed));

	for (uint32_t i = 0; i < used && i < seg->hdr->max_families; i++)
		if (shmet_impl_families(seg)[i].base == fam + 1 && i != fam &&
		    shmet_impl_family_shown(seg, i) &&
		    shmet_impl_family_indexed(seg, i))
			return 1;
	return 0;
}

/*
 * Under fam's gate (recovered): free record fam if it is empty and
 * unheld.  1 freed, 0 not.
 */
static int
shmet_impl_reclaim_one(struct shmet_segment *seg, uint32_t fam)
{
	struct shmet_seg_family *r = &shmet_impl_families(seg)[fam];
	int freed = 0;

	/* Relaxed: the gate orders its holders' writes of these; the
	 * state's other writers hold the gate too. */
	if (SHMET_AT(load_explicit)(&r->state, SHMET_MO(relaxed)) !=
		    SHMET_FAMILY_LIVE ||
	    (SHMET_AT(load_explicit)(&r->incarnation, SHMET_MO(relaxed)) &
	     1) ||
	    r->type == SHMET_TYPE_COLLECTOR ||
	    SHMET_AT(load_explicit)(&r->series_count, SHMET_MO(relaxed)) ||
	    SHMET_AT(load_explicit)(&r->gate_series, SHMET_MO(relaxed)) ||
	    SHMET_AT(load_explicit)(&r->pinned, SHMET_MO(relaxed)))
		return 0;
	if (shmet_impl_index_lock(seg) < 0)
		return 0;
	/* A record not in the index is a builder's (being published, or a
	 * spare): not ours to free. */
	if (!shmet_impl_family_indexed(seg, fam) ||
	    shmet_impl_family_aliased(seg, fam))
		goto out;
	/* Seq_cst: our half of the Dekker pair (the top of this file). */
	SHMET_AT(store_explicit)(&r->state, SHMET_FAMILY_RECLAIMING,
				 SHMET_MO(seq_cst));
	SHMET_POINT("reclaim.marked");
	if (shmet_impl_registrant_live(seg, fam)) {
		SHMET_AT(store_explicit)(&r->state, SHMET_FAMILY_LIVE,
					 SHMET_MO(release));
		goto out;
	}
	shmet_impl_unindex(seg, seg->hdr->family_index_off,
			   seg->hdr->family_index_slots,
			   shmet_impl_families(seg)[fam].hash, fam);
	SHMET_POINT("reclaim.unindexed");
	shmet_impl_family_free(seg, fam);
	SHMET_POINT("reclaim.freed");
	freed = 1;
out:
	shmet_impl_index_unlock(seg);
	return freed;
}

/*
 * Record fam is a version of another type than its name's newest (the
 * reader hides it as a type conflict, lib/index.c): the newest is the one
 * registered last (ties: the higher id).
 */
static int
shmet_impl_family_outdated(const struct shmet_segment *seg, uint32_t fam)
{
	const struct shmet_seg_family *f = &shmet_impl_families(seg)[fam];
	uint32_t used = SHMET_AT(load_explicit)(&seg->hdr->families_used,
						SHMET_MO(relaxed));
	/* Relaxed: a hint (see register.c, touch_registered). */
	uint64_t mine = SHMET_AT(load_explicit)(&f->registered_ns,
						SHMET_MO(relaxed));
	const struct shmet_seg_family *newest = NULL;
	uint64_t best = 0;
	uint32_t best_id = 0;

	for (uint32_t i = 0; i < used && i < seg->hdr->max_families; i++) {
		const struct shmet_seg_family *g = &shmet_impl_families(seg)[i];
		uint64_t ns;

		if (g->hash != f->hash || !shmet_impl_family_shown(seg, i) ||
		    !shmet_impl_family_indexed(seg, i) ||
		    g->name.len != f->name.len ||
		    !shmet_impl_str_equals(seg, g->name,
					   shmet_impl_str_or_empty(seg, f->name),
					   f->name.len))
			continue;
		ns = SHMET_AT(load_explicit)(&g->registered_ns,
					     SHMET_MO(relaxed));
		if (!newest || ns > best || (ns == best && i > best_id)) {
			newest = g;
			best = ns;
			best_id = i;
		}
	}
	(void)mine;
	return newest && newest->type != f->type &&
	       newest->type != SHMET_TYPE_COLLECTOR;
}

/* Under fam's gate: remove every published live series of record fam. */
static void
shmet_impl_reclaim_series(struct shmet_segment *seg, uint32_t fam)
{
	SHMET_ATOMIC(uint32_t) *index =
		shmet_impl_index(seg, seg->hdr->series_index_off);
	const struct shmet_seg_series *table = shmet_impl_series_table(seg);

	for (uint32_t i = 0; i < seg->hdr->series_index_slots; i++) {
		/* Acquire: as every index load (a complete record). */
		uint32_t v = SHMET_AT(load_explicit)(&index[i],
						     SHMET_MO(acquire));

		if (v == 0 || v - 1 >= seg->hdr->max_series ||
		    table[v - 1].family != fam ||
		    SHMET_AT(load_explicit)(&table[v - 1].state,
					    SHMET_MO(relaxed)) !=
			    SHMET_SERIES_LIVE)
			continue;
		shmet_impl_remove_one(seg, &shmet_impl_families(seg)[fam],
				      v - 1);
	}
}

/*
 * One pass over the records: free every one that can be, empty and
 * unheld, or a version of an outdated type that no live process holds
 * (its series leave first).  A record whose gate is busy is passed over
 * (a sweep never waits).  The number freed.
 */
static int
shmet_impl_reclaim_pass(struct shmet_segment *seg)
{
	uint32_t used = SHMET_AT(load_explicit)(&seg->hdr->families_used,
						SHMET_MO(relaxed));
	int freed = 0;

	for (uint32_t fam = 0; fam < used && fam < seg->hdr->max_families;
	     fam++) {
		struct shmet_seg_family *r = &shmet_impl_families(seg)[fam];

		/* Relaxed: a hint; decided again under the gate.  A record
		 * that is not LIVE (a dead builder's, a dead reclaimer's) is
		 * recovered whatever it is. */
		uint32_t st = SHMET_AT(load_explicit)(&r->state,
						      SHMET_MO(relaxed));

		if (st == SHMET_FAMILY_FREE ||
		    (st == SHMET_FAMILY_LIVE &&
		     (r->type == SHMET_TYPE_COLLECTOR ||
		      SHMET_AT(load_explicit)(&r->pinned,
					      SHMET_MO(relaxed)))) ||
		    shmet_impl_gate_try_other(seg, fam) < 0)
			continue;
		SHMET_POINT("reclaim.gated");
		shmet_impl_gate_recover(seg, fam);
		if (SHMET_AT(load_explicit)(&r->series_count,
					    SHMET_MO(relaxed)) &&
		    SHMET_AT(load_explicit)(&r->state, SHMET_MO(relaxed)) ==
			    SHMET_FAMILY_LIVE &&
		    shmet_impl_family_outdated(seg, fam) &&
		    !shmet_impl_registrant_live(seg, fam))
			shmet_impl_reclaim_series(seg, fam);
		freed += shmet_impl_reclaim_one(seg, fam);
		shmet_impl_gate_unlock(seg, fam);
	}
	return freed;
}

/*
 * After a registration of record id: its name's versions of another type
 * (a type conflict) whose registrants are all gone leave now, series and
 * record, rather than at the next sweep, so a page stops showing the
 * conflict soon after the last process of the old type is gone (fleets
 * start processes all the time).  Costs a pass over the records' hashes
 * when there is nothing to do.
 */
SHMET_W void
shmet_impl_reclaim_outdated(struct shmet_segment *seg, uint32_t id)
{
	const struct shmet_seg_family *mine = &shmet_impl_families(seg)[id];
	uint32_t used = SHMET_AT(load_explicit)(&seg->hdr->families_used,
						SHMET_MO(relaxed));

	for (uint32_t fam = 0; fam < used && fam < seg->hdr->max_families;
	     fam++) {
		struct shmet_seg_family *r = &shmet_impl_families(seg)[fam];

		/* Relaxed: hints; decided again under the gate. */
		if (r->hash != mine->hash || r->type == mine->type ||
		    r->type == SHMET_TYPE_COLLECTOR || fam == id ||
		    SHMET_AT(load_explicit)(&r->state, SHMET_MO(relaxed)) !=
			    SHMET_FAMILY_LIVE ||
		    SHMET_AT(load_explicit)(&r->pinned, SHMET_MO(relaxed)) ||
		    r->name.len != mine->name.len ||
		    !shmet_impl_str_equals(seg, r->name,
					   shmet_impl_str_or_empty(seg,
								   mine->name),
					   mine->name.len) ||
		    shmet_impl_registrant_live(seg, fam) ||
		    shmet_impl_gate_try_other(seg, fam) < 0)
			continue;
		SHMET_POINT("reclaim.gated");
		shmet_impl_gate_recover(seg, fam);
		if (SHMET_AT(load_explicit)(&r->state, SHMET_MO(relaxed)) ==
			    SHMET_FAMILY_LIVE &&
		    shmet_impl_family_outdated(seg, fam) &&
		    !shmet_impl_registrant_live(seg, fam))
			shmet_impl_reclaim_series(seg, fam);
		(void)shmet_impl_reclaim_one(seg, fam);
		shmet_impl_gate_unlock(seg, fam);
	}
}

/* Passes until one frees nothing: an alias goes in one, its base (a
 * lower id, passed over while the alias stood) in the next. */
SHMET_W int
shmet_impl_reclaim_sweep(struct shmet_segment *seg)
{
	int freed = 0, n;

	for (int pass = 0; pass < 4 && (n = shmet_impl_reclaim_pass(seg)) > 0;
	     pass++)
		freed += n;
	return freed;
}

/*
 * A free record for a registration whose strings take `need` bytes:
 * one whose allocation fits (the pool does not grow), else, if any, the
 * first free one with a new allocation.  Returns 0 with its gate held and
 * its state CLAIMED (*off: where its strings go), or -1.
 */
SHMET_W int
shmet_impl_claim_free_family(struct shmet_segment *seg, uint32_t need,
			     int any, uint32_t *out, uint32_t *off)
{
	uint32_t used = SHMET_AT(load_explicit)(&seg->hdr->families_used,
						SHMET_MO(relaxed));

	for (int pass = 0; pass < (any ? 2 : 1); pass++) {
		for (uint32_t id = 0; id < used && id < seg->hdr->max_families;
		     id++) {
			struct shmet_seg_family *r =
				&shmet_impl_families(seg)[id];
			uint32_t at = r->bounds.off;

			/* Relaxed: a hint; decided again under the gate. */
			if (SHMET_AT(load_explicit)(&r->state,
						    SHMET_MO(relaxed)) !=
				    SHMET_FAMILY_FREE ||
			    (pass == 0 && r->strings_cap < need) ||
			    shmet_impl_gate_try_other(seg, id) < 0)
				continue;
			shmet_impl_gate_recover(seg, id);
			if (SHMET_AT(load_explicit)(&r->state,
						    SHMET_MO(relaxed)) !=
			    SHMET_FAMILY_FREE) {
				shmet_impl_gate_unlock(seg, id);
				continue;
			}
			if (r->strings_cap < need) {
				/* Its old allocation is lost: the one case
				 * in which a reclaimed record's strings do
				 * not go back (the table is full and no
				 * free record's allocation fits). */
				uint32_t cap = (uint32_t)shmet_seg_align(need,
									 32);

				if (cap > seg->hdr->string_bytes ||
				    shmet_impl_alloc(&seg->hdr->strings_used,
						     seg->hdr->string_bytes,
						     cap, 8, &at) < 0) {
					shmet_impl_gate_unlock(seg, id);
					return -1;
				}
				r->strings_cap = cap;
			}
			/* Relaxed: under the gate; the incarnation is odd,
			 * so nobody reads the fields we write next. */
			SHMET_AT(store_explicit)(&r->state,
						 SHMET_FAMILY_CLAIMED,
						 SHMET_MO(relaxed));
			SHMET_POINT("reclaim.claimed");
			*out = id;
			*off = at;
			return 0;
		}
	}
	return -1;
}

/*
 * The rebuilt record is filled: its incarnation becomes even (release:
 * whoever sees it even sees the fields), before it is published.
 */
SHMET_W void
shmet_impl_family_filled(struct shmet_segment *seg, uint32_t id)
{
	struct shmet_seg_family *r = &shmet_impl_families(seg)[id];

	/* Odd for a reclaimed record, 0 for a new one (in no index:
	 * nobody reads it before its publication's release). */
	if (SHMET_AT(load_explicit)(&r->incarnation, SHMET_MO(relaxed)) & 1)
		SHMET_AT(fetch_add_explicit)(&r->incarnation, 1,
					     SHMET_MO(release));
}

/* The rebuilt record is published: LIVE, and its gate goes. */
SHMET_W void
shmet_impl_family_settle(struct shmet_segment *seg, uint32_t id)
{
	/* Release: registrations that see LIVE see the record. */
	SHMET_AT(store_explicit)(&shmet_impl_families(seg)[id].state,
				 SHMET_FAMILY_LIVE, SHMET_MO(release));
	shmet_impl_gate_unlock(seg, id);
}

/*
 * A new record from the cursor that was never published (a racer
 * published its shape first, or the pool had no room for its strings):
 * nobody else knows it, so it is free at once, for any registration.
 */
SHMET_W void
shmet_impl_family_unbuilt(struct shmet_segment *seg, uint32_t id)
{
	struct shmet_seg_family *r = &shmet_impl_families(seg)[id];

	/* Relaxed: ours alone until the state's release below. */
	if (!(SHMET_AT(load_explicit)(&r->incarnation, SHMET_MO(relaxed)) & 1))
		SHMET_AT(fetch_add_explicit)(&r->incarnation, 1,
					     SHMET_MO(relaxed));
	/* Release: a registration that claims it sees its capacity. */
	SHMET_AT(store_explicit)(&r->state, SHMET_FAMILY_FREE,
				 SHMET_MO(release));
}

/* A racer published d first: the rebuilt record is free again. */
SHMET_W void
shmet_impl_family_unclaim(struct shmet_segment *seg, uint32_t id)
{
	shmet_impl_family_free(seg, id);
	shmet_impl_gate_unlock(seg, id);
}
