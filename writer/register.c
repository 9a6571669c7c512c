/*
 * shmetrics writer: registration: find a family record in the family
 * index, or publish one, and hold it (registrants.c) so that no reclaim
 * frees it while this process lives.
 *
 * Finding is lock-free.  Publishing holds the family index lock (lock.h):
 * under it the registration probes again and publishes in the first
 * tombstone (a reclaimed record's slot, reclaim.c) or empty slot of its
 * probe sequence.  Without the lock two registrations of one name could
 * publish two records of one shape, in a tombstone and in an empty slot
 * after it.  Registrations that find their record take no lock: the lock
 * is held for microseconds, when a release registers a shape first.
 *
 * A registration's steps, and what a kill after each leaves:
 *   family.built      a built record in no index, CLAIMED under its gate
 *                     (a new one or a reclaimed one): the next holder of
 *                     the gate (a sweep) frees it; nothing leaked
 *   family.announced  the same, and the generation moved: readers build
 *                     twice and find nothing new
 *   family.published  the record is in the index, the generation not
 *                     bumped after it: readers that built after the
 *                     announce build once more and find it (lib/index.c);
 *                     the record is still CLAIMED: the next holder of its
 *                     gate (a sweep) makes it LIVE
 * Our bit (registrants.c) is set before the record is published or, for
 * a record found, before the registration checks that it is still live.
 */
#include "writer-private.h"

/* What a probe of the family index found. */
struct shmet_impl_probe {
	uint32_t found;         /* the record of d (name, shape, text) */
	uint32_t found_inc;     /* its incarnation when compared */
	uint32_t base;          /* 0, or id + 1 of the shape's series record */
	uint32_t base_inc;
	uint32_t slot;          /* where to publish, or UINT32_MAX */
};

static uint32_t
shmet_impl_incarnation(const struct shmet_segment *seg, uint32_t id)
{
	/* Acquire: as shmet_impl_family_shown. */
	return SHMET_AT(load_explicit)(
		&shmet_impl_families(seg)[id].incarnation, SHMET_MO(acquire));
}

/*
 * Look for d's record: 1 found (p->found), 0 not (p->slot: the first
 * tombstone or empty slot, UINT32_MAX if the index is full), or an error
 * (-EEXIST: a collector with another list, or label names reordered).
 */
static int
shmet_impl_probe_family(struct shmet_segment *seg,
			const struct shmet_family_desc *d, uint32_t mode,
			const size_t *lens, uint64_t hash,
			struct shmet_impl_probe *p)
{
	SHMET_ATOMIC(uint32_t) *index =
		shmet_impl_index(seg, seg->hdr->family_index_off);
	uint32_t mask = seg->hdr->family_index_slots - 1;
	size_t name_len = strlen(d->name);

	p->found = UINT32_MAX;
	p->base = 0;
	p->slot = UINT32_MAX;
	for (uint32_t probe = 0; probe <= mask; probe++) {
		uint32_t i = (uint32_t)(hash + probe) & mask;
		/* Acquire: pairs with the release CAS that published it. */
		uint32_t v = SHMET_AT(load_explicit)(&index[i],
						     SHMET_MO(acquire));
		const struct shmet_seg_family *r;
		uint32_t inc;

		if (v == 0 || v == SHMET_INDEX_TOMB) {
			if (p->slot == UINT32_MAX)
				p->slot = i;
			if (v == 0)
				return 0;
			continue;
		}
		if (v - 1 >= seg->hdr->max_families)
			continue;       /* corrupt slot: skip it */
		r = &shmet_impl_families(seg)[v - 1];
		inc = shmet_impl_incarnation(seg, v - 1);
		if ((inc & 1) || !shmet_impl_family_shown(seg, v - 1) ||
		    r->hash != hash ||
		    !shmet_impl_str_equals(seg, r->name, d->name, name_len))
			continue;
		if (d->type == SHMET_TYPE_COLLECTOR) {
			if (!shmet_impl_same_shape(seg, r, d, mode, lens))
				return shmet_impl_fail(
					seg, SHMET_FAIL_SHAPE_MISMATCH, -EEXIST,
					"collector %s is already declared "
					"with another list of families",
					d->name + 1);
			p->found = v - 1;
			p->found_inc = inc;
			return 1;
		}
		if (shmet_impl_labels_reordered(seg, r, d, lens))
			return shmet_impl_fail(
				seg, SHMET_FAIL_SHAPE_MISMATCH, -EEXIST,
				"%s is registered with the same label names "
				"in another order: a page would show one "
				"label set twice", d->name);
		if (!shmet_impl_same_shape(seg, r, d, mode, lens) ||
		    (r->base != 0 && r->base - 1 >= seg->hdr->max_families))
			continue;       /* another version of the name */
		if (!shmet_impl_same_text(seg, r, d)) {
			if (p->base == 0) {  /* the shape's series live there */
				p->base = r->base ? r->base : v;
				p->base_inc = r->base ? shmet_impl_incarnation(
						   seg, r->base - 1) : inc;
			}
			continue;
		}
		p->found = v - 1;
		p->found_inc = inc;
		return 1;
	}
	return 0;
}

/*
 * Publish record id in index slot `slot` (empty or a tombstone), holding
 * the family index lock, so nobody else publishes meanwhile.
 */
static void
shmet_impl_publish(struct shmet_segment *seg, uint32_t slot, uint32_t id)
{
	SHMET_ATOMIC(uint32_t) *index =
		shmet_impl_index(seg, seg->hdr->family_index_off);

	/* Announce first: readers rebuild on a change and once more after
	 * it (lib/index.c), so a kill between the store and the bump after
	 * it cannot hide the record from a running reader.  Relaxed: the
	 * bump after the store is the one that publishes. */
	SHMET_AT(fetch_add_explicit)(&seg->hdr->generation, 1,
				     SHMET_MO(relaxed));
	SHMET_POINT("family.announced");
	/* Seq_cst (a release at least: publishes the record's contents,
	 * written before): only holders of the index lock store into an
	 * empty slot or a tombstone, so a plain store does. */
	SHMET_AT(store_explicit)(&index[slot], id + 1, SHMET_MO(seq_cst));
	SHMET_POINT("family.published");
	/* Release: a reader that sees the new generation finds the record. */
	SHMET_AT(fetch_add_explicit)(&seg->hdr->generation, 1,
				     SHMET_MO(release));
}

/* A registration found record id: it is the newest of its name now. */
static void
shmet_impl_touch_registered(struct shmet_segment *seg, uint32_t id)
{
	struct shmet_seg_family *r = &shmet_impl_families(seg)[id];
	uint64_t now = shmet_impl_clock_ns(CLOCK_REALTIME);

	/* Relaxed: a hint for readers' choice of help and type, ordered
	 * with nothing.  Stored at most once a second: a fleet starting at
	 * once does not bounce the record's line between CPUs. */
	if (now > SHMET_AT(load_explicit)(&r->registered_ns,
					  SHMET_MO(relaxed)) +
			  UINT64_C(1000000000))
		SHMET_AT(store_explicit)(&r->registered_ns, now,
					 SHMET_MO(relaxed));
}

/*
 * Hold record id, found at incarnation inc: our bit, then (seq_cst, the
 * Dekker pair with reclaim.c) its state and incarnation.  1 held; 0 it
 * was reclaimed (or rebuilt) meanwhile: the caller probes again.  A
 * reclaim in progress (RECLAIMING) is waited for through the gate: it
 * sees our bit and gives up, or it had passed the bits and frees it.
 */
static int
shmet_impl_hold(struct shmet_segment *seg, uint32_t id, uint32_t inc)
{
	struct shmet_seg_family *r = &shmet_impl_families(seg)[id];
	uint32_t st;
	int held;

	shmet_impl_registrant_mark(seg, id);
	st = SHMET_AT(load_explicit)(&r->state, SHMET_MO(seq_cst));

	/* CLAIMED at an even incarnation: published, not yet marked LIVE;
	 * no reclaim can start before it is. */
	held = (st == SHMET_FAMILY_LIVE || st == SHMET_FAMILY_CLAIMED) &&
	       SHMET_AT(load_explicit)(&r->incarnation, SHMET_MO(seq_cst)) ==
		       inc;
	if (st == SHMET_FAMILY_RECLAIMING &&
	    shmet_impl_gate_enter(seg, id, "register", "family.gated") == 0) {
		/* Relaxed: under the gate, which orders its holders. */
		held = SHMET_AT(load_explicit)(&r->state, SHMET_MO(relaxed)) ==
			       SHMET_FAMILY_LIVE &&
		       SHMET_AT(load_explicit)(&r->incarnation,
					       SHMET_MO(relaxed)) == inc;
		shmet_impl_gate_unlock(seg, id);
	}
	return held;     /* our bit stays either way (registrants.c) */
}

/*
 * Publish a new record of d: build it (outside the lock: it may reclaim,
 * which takes gates), then under the index lock probe again and publish,
 * unless a racer published d first.  1 with *out the record found or
 * published (*inc its incarnation, *base its series record), or an error.
 */
static int
shmet_impl_register_new(struct shmet_segment *seg,
			const struct shmet_family_desc *d, uint32_t mode,
			const size_t *lens, uint64_t hash,
			struct shmet_impl_probe *p)
{
	uint32_t mine = UINT32_MAX;
	int rc;

	rc = shmet_impl_build_family(seg, d, mode, lens, hash, &mine);
	if (rc < 0)
		return rc;
	SHMET_POINT("family.built");
	rc = shmet_impl_index_lock(seg);
	if (rc < 0) {
		rc = shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, rc,
				     "%s: cannot register: another process "
				     "holds the family index lock", d->name);
	} else {
		rc = shmet_impl_probe_family(seg, d, mode, lens, hash, p);
		if (rc == 0 && p->slot == UINT32_MAX)
			rc = shmet_impl_fail(seg, SHMET_FAIL_FAMILIES_FULL,
					     -ENOSPC, "%s: family index is "
					     "full", d->name);
		if (rc == 0) {
			/* Ours, unpublished: an alias of the base we met
			 * (a record built before a lost race may predate
			 * it).  Our bit before it is in the index: a
			 * reclaim (which holds this lock for its checks)
			 * never sees it published and not held. */
			shmet_impl_families(seg)[mine].base = p->base;
			shmet_impl_registrant_mark(seg, mine);
			shmet_impl_publish(seg, p->slot, mine);
			p->found = mine;
			p->found_inc = shmet_impl_incarnation(seg, mine);
			rc = 2;
		}
		shmet_impl_index_unlock(seg);
	}
	/* Lost to a racer, or the index is full: the record is free for
	 * any registration (a spare kept by one process was lost at its
	 * exit, one per racer of a new shape). */
	if (rc == 2)
		shmet_impl_family_settle(seg, mine);
	else
		shmet_impl_family_unclaim(seg, mine);
	return rc;
}

/*
 * Find the record of d (name and shape), or build and publish one.  A
 * name may have several records (layout.h, version 4): one per shape that
 * releases registered under it (label names, buckets, gauge mode, type),
 * and aliases of a shape for another help or unit.  *id is the record
 * whose series the shape counts in.  -EEXIST for a collector with
 * another list of families, or label names reordered.
 */
static int
shmet_impl_register_steps(struct shmet_segment *seg,
			  const struct shmet_family_desc *d, uint32_t mode,
			  const size_t *lens, uint32_t *id)
{
	uint64_t hash = shmet_seg_name_hash(d->name, strlen(d->name));

	/* A record reclaimed between our probe and our hold sends us
	 * round again; a reclaim needs the record empty and unheld, so a
	 * few rounds are more than any race takes. */
	for (int round = 0; round < 16; round++) {
		struct shmet_impl_probe p;
		uint32_t target, target_inc;
		int rc = shmet_impl_probe_family(seg, d, mode, lens, hash, &p);

		if (rc == 0)
			rc = shmet_impl_register_new(seg, d, mode, lens, hash,
						     &p);
		if (rc < 0)
			return rc;
		/* Collectors have no series and are never reclaimed. */
		if (d->type == SHMET_TYPE_COLLECTOR) {
			*id = p.found;
			return 0;
		}
		target = p.found;
		target_inc = p.found_inc;
		if (rc == 2 && p.base) {        /* our new alias */
			target = p.base - 1;
			target_inc = p.base_inc;
		} else if (rc == 1 &&
			   shmet_impl_families(seg)[p.found].base) {
			target = shmet_impl_families(seg)[p.found].base - 1;
			target_inc = shmet_impl_incarnation(seg, target);
		}
		if (!shmet_impl_hold(seg, p.found, p.found_inc) ||
		    (target != p.found &&
		     !shmet_impl_hold(seg, target, target_inc)))
			continue;
		if (rc == 1)
			shmet_impl_touch_registered(seg, p.found);
		shmet_impl_reclaim_outdated(seg, target);
		*id = target;
		return 0;
	}
	return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EAGAIN,
			       "%s: its record was reclaimed under every try",
			       d->name);
}

/* Not a cancellation point (docs/DESIGN.md, "Cancellation"). */
SHMET_W int
shmet_impl_register(struct shmet_segment *seg,
		    const struct shmet_family_desc *d, uint32_t mode,
		    const size_t *lens, uint32_t *id)
{
	int old = shmet_impl_cancel_off();
	int ret = shmet_impl_register_steps(seg, d, mode, lens, id);

	shmet_impl_cancel_restore(old);
	return ret;
}

int
shmet_family_register(struct shmet_segment *seg,
		      const struct shmet_family_desc *d,
		      struct shmet_family *fam)
{
	size_t lens[SHMET_MAX_LABELS] = { 0 };
	uint32_t mode, id = UINT32_MAX;
	int rc;

	shmet_impl_failed_family(seg, fam, -ENODEV);
	if (!seg || !seg->attached)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -ENODEV,
				       "segment is not attached");
	rc = shmet_impl_validate_desc(seg, d);
	if (rc == 0 &&
	    shmet_impl_label_lens(d->label_count, d->label_names, lens) < 0)
		rc = -EINVAL;
	mode = d->type != SHMET_TYPE_GAUGE ? 0 :
	       d->gauge_mode ? d->gauge_mode : SHMET_GAUGE_DEFAULT;
	if (rc == 0 && shmet_impl_find_family(seg, d->type, d->name,
					      strlen(d->name)) == UINT32_MAX)
		rc = shmet_impl_check_collisions(seg, d);
	if (rc == 0)
		rc = shmet_impl_register(seg, d, mode, lens, &id);
	if (rc == 0)
		rc = shmet_impl_resolve_family(seg, id, fam);
	fam->error = rc;
	return rc;
}

int
shmet_collector_register(struct shmet_segment *seg, const char *name,
			 uint32_t family_count, const char *const *family_names)
{
	size_t lens[SHMET_MAX_COLLECTOR_FAMILIES];
	char record_name[SHMET_MAX_NAME_LEN + 2];
	struct shmet_family_desc d;
	size_t len = shmet_impl_strlen0(name);
	uint32_t id;

	if (!seg || !seg->attached)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -ENODEV,
				       "segment is not attached");
	if (!shmet_seg_label_name_valid(name, len))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_NAME, -EINVAL,
				       "invalid collector name '%.200s': must "
				       "match [a-zA-Z_][a-zA-Z0-9_]*",
				       name ? name : "(null)");
	if (family_count > SHMET_MAX_COLLECTOR_FAMILIES ||
	    (family_count > 0 && !family_names))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_LABELS, -EINVAL,
				       "collector %s: 0 to %u families", name,
				       SHMET_MAX_COLLECTOR_FAMILIES);
	for (uint32_t i = 0; i < family_count; i++) {
		lens[i] = shmet_impl_strlen0(family_names[i]);
		if (!shmet_seg_metric_name_valid(family_names[i], lens[i]))
			return shmet_impl_fail(
				seg, SHMET_FAIL_INVALID_NAME, -EINVAL,
				"collector %s: invalid family name '%.200s'",
				name, family_names[i] ? family_names[i]
						      : "(null)");
	}
	record_name[0] = SHMET_COLLECTOR_PREFIX;
	memcpy(record_name + 1, name, len + 1);
	memset(&d, 0, sizeof d);
	d.name = record_name;
	d.type = SHMET_TYPE_COLLECTOR;
	d.label_count = family_count;
	d.label_names = family_names;
	return shmet_impl_register(seg, &d, 0, lens, &id);
}

/* The three constructors are shmet_family_register() with one type's
 * fields; the C11 implementation file may use designated initializers. */
int
shmet_counter_family(struct shmet_segment *seg, struct shmet_family *fam,
		     const char *name, const char *help, uint32_t label_count,
		     const char *const *label_names)
{
	const struct shmet_family_desc d = {
		.name = name, .help = help, .type = SHMET_TYPE_COUNTER,
		.label_count = label_count, .label_names = label_names,
	};

	return shmet_family_register(seg, &d, fam);
}

int
shmet_gauge_family(struct shmet_segment *seg, struct shmet_family *fam,
		   const char *name, const char *help, uint32_t gauge_mode,
		   uint32_t label_count, const char *const *label_names)
{
	const struct shmet_family_desc d = {
		.name = name, .help = help, .type = SHMET_TYPE_GAUGE,
		.gauge_mode = gauge_mode,
		.label_count = label_count, .label_names = label_names,
	};

	return shmet_family_register(seg, &d, fam);
}

int
shmet_histogram_family(struct shmet_segment *seg, struct shmet_family *fam,
		       const char *name, const char *help,
		       uint32_t bound_count, const double *bounds,
		       uint32_t label_count, const char *const *label_names)
{
	const struct shmet_family_desc d = {
		.name = name, .help = help, .type = SHMET_TYPE_HISTOGRAM,
		.bound_count = bound_count, .bounds = bounds,
		.label_count = label_count, .label_names = label_names,
	};

	return shmet_family_register(seg, &d, fam);
}
