/*
 * shmetrics writer: validation, label blobs, families: find or register
 * and publish.
 *
 * Building a record: from the cursors, or a reclaimed record's whose
 * strings fit (writer/reclaim.c).  Finding and publishing it, and the
 * steps a kill can cut: writer/register.c.
 */
#include "writer-private.h"

SHMET_W size_t
shmet_impl_strlen0(const char *s)
{
	return s ? strlen(s) : 0;
}

SHMET_W int
shmet_impl_validate_desc(struct shmet_segment *seg,
			 const struct shmet_family_desc *d)
{
	const char *name = d->name ? d->name : "(null)";
	size_t name_len = shmet_impl_strlen0(d->name);
	int bad;

	if (!shmet_seg_metric_name_valid(d->name, name_len))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_NAME, -EINVAL,
				       "invalid metric name '%.200s': must match "
				       "[a-zA-Z_:][a-zA-Z0-9_:]* (at most %u "
				       "characters)", name, SHMET_MAX_NAME_LEN);
	if (!shmet_seg_type_valid(d->type))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_NAME, -EINVAL,
				       "%s: unknown metric type %u", name,
				       d->type);
	if (shmet_impl_strlen0(d->help) > SHMET_MAX_HELP_LEN)
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_NAME, -EINVAL,
				       "%s: help longer than %u bytes", name,
				       SHMET_MAX_HELP_LEN);
	if (shmet_impl_strlen0(d->unit) > SHMET_MAX_NAME_LEN ||
	    !shmet_seg_unit_valid(d->name, name_len, d->unit,
				  shmet_impl_strlen0(d->unit), d->type))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_NAME, -EINVAL,
				       "%s: unit '%.64s' must be a valid name "
				       "that the metric name ends with", name,
				       d->unit);
	if (d->type == SHMET_TYPE_GAUGE && d->gauge_mode != 0 &&
	    !shmet_seg_gauge_mode_valid(d->gauge_mode))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_NAME, -EINVAL,
				       "%s: unknown gauge mode %u", name,
				       d->gauge_mode);
	if (d->label_count > SHMET_MAX_LABELS ||
	    (d->label_count > 0 && !d->label_names))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_LABELS, -EINVAL,
				       "%s: at most %u label names", name,
				       SHMET_MAX_LABELS);
	for (uint32_t i = 0; i < d->label_count; i++) {
		const char *l = d->label_names[i];
		size_t len = shmet_impl_strlen0(l);

		if (!shmet_seg_label_name_valid(l, len))
			return shmet_impl_fail(
				seg, SHMET_FAIL_INVALID_LABELS, -EINVAL,
				"%s: invalid label name '%.200s': must match "
				"[a-zA-Z_][a-zA-Z0-9_]* and not start with __",
				name, l ? l : "(null)");
		if (shmet_seg_label_name_reserved(d->type, d->gauge_mode, l,
						  len))
			return shmet_impl_fail(seg, SHMET_FAIL_INVALID_LABELS,
					       -EINVAL,
					       "%s: label name '%s' is reserved",
					       name, l);
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(l, d->label_names[j]) == 0)
				return shmet_impl_fail(
					seg, SHMET_FAIL_INVALID_LABELS, -EINVAL,
					"%s: duplicate label name '%s'", name,
					l);
	}
	if (d->type != SHMET_TYPE_HISTOGRAM)
		return 0;
	bad = shmet_seg_bounds_check(d->bounds, d->bound_count);
	if (bad == -2)
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_BUCKETS, -EINVAL,
				       "%s: a histogram needs 1 to %u bucket "
				       "bounds", name, SHMET_MAX_BOUNDS);
	if (bad >= 0)
		return shmet_impl_fail(
			seg, SHMET_FAIL_INVALID_BUCKETS, -EINVAL,
			"%s: bucket bounds must be finite and strictly "
			"increasing (bound %d is %g)", name, bad,
			d->bounds[bad]);
	return 0;
}

/* ---------------------------------------------------------------- */
/* Label blobs: label_count entries of {uint16 length, bytes}.      */

/* Copy n bytes to p (pool offset *off) as string *out; the next p. */
SHMET_W unsigned char *
shmet_impl_carve(struct shmet_seg_str *out, unsigned char *p, uint32_t *off,
		 const void *src, size_t n)
{
	out->off = *off;
	out->len = (uint32_t)n;
	if (n > 0)
		memcpy(p, src, n);
	*off += (uint32_t)n;
	return p + n;
}

/* ---------------------------------------------------------------- */
/* Families                                                         */

SHMET_W void
shmet_impl_failed_family(struct shmet_segment *seg, struct shmet_family *f,
			 int rc)
{
	memset(f, 0, sizeof *f);
	f->seg = seg;
	f->id = UINT32_MAX;
	f->error = rc;
}

/*
 * Record r counts what d describes: same type, gauge mode, label names in
 * the same order and buckets.  Help and unit do not change what a series
 * holds (see shmet_impl_same_text).
 */
SHMET_W int
shmet_impl_same_shape(const struct shmet_segment *seg,
		      const struct shmet_seg_family *r,
		      const struct shmet_family_desc *d, uint32_t mode,
		      const size_t *lens)
{
	return r->type == d->type && r->gauge_mode == mode &&
	       r->label_count == d->label_count &&
	       r->bound_count == (d->type == SHMET_TYPE_HISTOGRAM ?
					  d->bound_count : 0) &&
	       shmet_impl_blob_equals(seg, r->label_names, d->label_count,
				      d->label_names, lens) &&
	       (d->type != SHMET_TYPE_HISTOGRAM ||
		shmet_impl_str_equals(seg, r->bounds, d->bounds,
				      8u * d->bound_count));
}

/* Record r has d's help and unit. */
SHMET_W int
shmet_impl_same_text(const struct shmet_segment *seg,
		     const struct shmet_seg_family *r,
		     const struct shmet_family_desc *d)
{
	const char *help = d->help ? d->help : "";
	const char *unit = d->unit ? d->unit : "";

	return shmet_impl_str_equals(seg, r->help, help, strlen(help)) &&
	       shmet_impl_str_equals(seg, r->unit, unit, strlen(unit));
}

/*
 * Record r has d's type and label names, in another order: the two would
 * show one label set as two series, which a page cannot hold.
 */
SHMET_W int
shmet_impl_labels_reordered(const struct shmet_segment *seg,
			    const struct shmet_seg_family *r,
			    const struct shmet_family_desc *d,
			    const size_t *lens)
{
	uint32_t found = 0;

	if (r->type != d->type || r->label_count != d->label_count ||
	    d->label_count < 2)
		return 0;
	for (uint32_t i = 0; i < d->label_count; i++) {
		const unsigned char *p = shmet_impl_str(seg, r->label_names);
		const unsigned char *end, *v;
		uint32_t len;

		if (!p)
			return 0;
		end = p + r->label_names.len;
		while (shmet_seg_blob_next(&p, end, &v, &len))
			if (len == lens[i] &&
			    memcmp(v, d->label_names[i], len) == 0) {
				found++;
				break;
			}
	}
	return found == d->label_count &&
	       !shmet_impl_blob_equals(seg, r->label_names, d->label_count,
				       d->label_names, lens);
}

/* Bytes of the one string allocation of d's record. */
SHMET_W uint64_t
shmet_impl_family_strings(const struct shmet_family_desc *d,
			  const size_t *lens)
{
	uint32_t bounds = d->type == SHMET_TYPE_HISTOGRAM ? d->bound_count : 0;

	return 8ull * bounds + strlen(d->name) +
	       shmet_impl_strlen0(d->help) + shmet_impl_strlen0(d->unit) +
	       shmet_seg_blob_size(d->label_count, lens);
}

/*
 * Fill record id from d, its strings at pool offset off (8-aligned, room
 * for shmet_impl_family_strings(d)), bounds first.
 */
static void
shmet_impl_fill_family(struct shmet_segment *seg, uint32_t id,
		       const struct shmet_family_desc *d, uint32_t mode,
		       const size_t *lens, uint64_t hash, uint32_t off)
{
	struct shmet_seg_family *r = &shmet_impl_families(seg)[id];
	uint32_t bounds = d->type == SHMET_TYPE_HISTOGRAM ? d->bound_count : 0;
	const char *help = d->help ? d->help : "";
	const char *unit = d->unit ? d->unit : "";
	unsigned char *p = shmet_impl_pool(seg) + off;

	r->type = d->type;
	r->gauge_mode = mode;
	r->label_count = d->label_count;
	r->bound_count = bounds;
	r->cells_per_series = d->type == SHMET_TYPE_COLLECTOR
				      ? 0 : shmet_seg_cells_for(d->type, bounds);
	r->max_series = d->max_series ? d->max_series
				      : seg->hdr->max_series_per_family;
	r->hash = hash;
	r->base = 0;
	/* Relaxed, here and below: published with the record (the index
	 * CAS); only the gate's holder writes the count and the journal,
	 * and a rebuilt record's are 0 since its reclaim. */
	SHMET_AT(store_explicit)(&r->registered_ns,
				 shmet_impl_clock_ns(CLOCK_REALTIME),
				 SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&r->series_count, 0, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&r->gate_series, 0, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&r->pinned, 0, SHMET_MO(relaxed));
	p = shmet_impl_carve(&r->bounds, p, &off, d->bounds, 8u * bounds);
	p = shmet_impl_carve(&r->name, p, &off, d->name, strlen(d->name));
	p = shmet_impl_carve(&r->help, p, &off, help, strlen(help));
	p = shmet_impl_carve(&r->unit, p, &off, unit, strlen(unit));
	shmet_seg_blob_write(p, d->label_count, d->label_names, lens);
	r->label_names.off = off;
	r->label_names.len = shmet_seg_blob_size(d->label_count, lens);
}

/*
 * A new record from the cursors: 0 with its gate held and its state
 * CLAIMED, as a reclaimed record's (reclaim.c), so that a kill before its
 * publication leaves it for the next holder of its gate to free, not
 * leaked; or -1 with *reason the capacity that is full.  A pool too full
 * for the strings takes nothing, and the record is free for any
 * registration, with no strings.
 */
static int
shmet_impl_new_family(struct shmet_segment *seg, uint64_t total,
		      uint32_t *out, uint32_t *off, uint32_t *reason)
{
	uint32_t id = UINT32_MAX;
	struct shmet_seg_family *r;

	/* A multiple of 32 bytes: a later registration of another shape of
	 * the name (a label, a help text a few bytes longer) mostly fits
	 * in the allocation once the record is reclaimed (reclaim.c). */
	total = shmet_seg_align(total, 32);
	*off = 0;
	if (shmet_impl_alloc(&seg->hdr->families_used, seg->hdr->max_families,
			     1, 1, &id) < 0) {
		*reason = SHMET_FAIL_FAMILIES_FULL;
		return -1;
	}
	r = &shmet_impl_families(seg)[id];
	/* Nobody else knows the record: its gate is free unless another
	 * thread of ours holds a gate (waited for); if it is not ours
	 * anyway, the record is given up free. */
	if (shmet_impl_gate_try_other(seg, id) < 0) {
		r->strings_cap = 0;
		shmet_impl_family_unbuilt(seg, id);
		*reason = SHMET_FAIL_FAMILIES_FULL;
		return -1;
	}
	/* Relaxed: under the gate; the record is in no index. */
	SHMET_AT(store_explicit)(&r->state, SHMET_FAMILY_CLAIMED,
				 SHMET_MO(relaxed));
	r->strings_cap = 0;
	if (total > 0 &&
	    (total > seg->hdr->string_bytes ||
	     shmet_impl_alloc(&seg->hdr->strings_used, seg->hdr->string_bytes,
			      (uint32_t)total, 8, off) < 0)) {
		shmet_impl_family_unclaim(seg, id);
		*reason = SHMET_FAIL_STRINGS_FULL;
		return -1;
	}
	r->strings_cap = (uint32_t)total;
	*out = id;
	return 0;
}

/*
 * Allocate and fill (not publish) a family record: a reclaimed record
 * whose strings fit first (reclaim.c: the pool stops growing), else a new
 * one; when the segment is full, reclaim what can be and try again.
 * The record is built holding its gate, state CLAIMED, and the caller publishes and settles it (shmet_impl_family_settle) or
 * gives it back free (shmet_impl_family_unclaim).
 */
SHMET_W int
shmet_impl_build_family(struct shmet_segment *seg,
			const struct shmet_family_desc *d, uint32_t mode,
			const size_t *lens, uint64_t hash, uint32_t *out)
{
	uint64_t total = shmet_impl_family_strings(d, lens);
	uint32_t id = UINT32_MAX, off = 0, reason = SHMET_FAIL_FAMILIES_FULL;

	for (int round = 0; round < 2 && id == UINT32_MAX; round++) {
		if (total <= seg->hdr->string_bytes &&
		    shmet_impl_claim_free_family(seg, (uint32_t)total, round,
						 &id, &off) == 0)
			break;
		if (shmet_impl_new_family(seg, total, &id, &off, &reason) == 0)
			break;
		id = UINT32_MAX;
		if (round == 0)
			shmet_impl_reclaim_sweep(seg);
	}
	if (id == UINT32_MAX) {
		if (reason == SHMET_FAIL_STRINGS_FULL)
			return shmet_impl_fail(seg, SHMET_FAIL_STRINGS_FULL,
					       -ENOSPC,
					       "%s: segment string pool is "
					       "full (%u bytes)", d->name,
					       seg->hdr->string_bytes);
		return shmet_impl_fail(seg, SHMET_FAIL_FAMILIES_FULL, -ENOSPC,
				       "%s: segment has no room for another "
				       "family (capacity %u)", d->name,
				       seg->hdr->max_families);
	}
	shmet_impl_fill_family(seg, id, d, mode, lens, hash, off);
	shmet_impl_family_filled(seg, id);
	*out = id;
	return 0;
}

/* Fill the process-side family handle from a published record. */
SHMET_W int
shmet_impl_resolve_family(struct shmet_segment *seg, uint32_t id,
			  struct shmet_family *f)
{
	const struct shmet_seg_family *r = &shmet_impl_families(seg)[id];
	const unsigned char *bounds = shmet_impl_str(seg, r->bounds);

	const char *bad = shmet_seg_family_shape_invalid(
		r->type, r->gauge_mode, r->label_count, r->bound_count,
		r->bounds.off, r->bounds.len, r->cells_per_series);

	if (bad || !bounds) {
		shmet_impl_failed_family(seg, f, -EPROTO);
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPROTO,
				       "family record %u is corrupt: %s", id,
				       bad ? bad : "bounds out of the pool");
	}
	f->seg = seg;
	f->id = id;
	f->type = r->type;
	f->label_count = r->label_count;
	f->bound_count = r->bound_count;
	f->cells = r->cells_per_series;
	f->gauge_mode = r->gauge_mode;
	f->bounds = (const double *)(const void *)bounds;
	f->error = 0;
	return 0;
}

/* The published family named name[0..len) of this type, or UINT32_MAX. */
SHMET_W uint32_t
shmet_impl_find_family(const struct shmet_segment *seg, uint32_t type,
		       const char *name, size_t len)
{
	SHMET_ATOMIC(uint32_t) *index =
		shmet_impl_index(seg, seg->hdr->family_index_off);
	uint32_t mask = seg->hdr->family_index_slots - 1;
	uint64_t hash = shmet_seg_name_hash(name, len);

	for (uint32_t probe = 0; probe <= mask; probe++) {
		uint32_t i = (uint32_t)(hash + probe) & mask;
		/* Acquire: pairs with the release CAS that published it. */
		uint32_t v = SHMET_AT(load_explicit)(&index[i],
						     SHMET_MO(acquire));
		const struct shmet_seg_family *r;

		if (v == 0)
			return UINT32_MAX;
		if (v - 1 >= seg->hdr->max_families)
			continue;
		r = &shmet_impl_families(seg)[v - 1];
		if (r->hash == hash && r->type == type &&
		    shmet_impl_family_shown(seg, v - 1) &&
		    shmet_impl_str_equals(seg, r->name, name, len))
			return v - 1;
	}
	return UINT32_MAX;
}

/*
 * Refuse a family that would put a name on the page that another family
 * (or the exporter) puts there too: strict parsers reject the whole page
 * for one such pair.  Each name the new family exposes is looked up under
 * every registered name that could expose it (format.h).  Two processes
 * registering colliding families at the same instant can both pass; the
 * reader drops the later one (lib/index.c), so the page stays valid.
 */
SHMET_W int
shmet_impl_check_collisions(struct shmet_segment *seg,
			    const struct shmet_family_desc *d)
{
	size_t len = strlen(d->name);
	const char *reserved = shmet_seg_name_reserved(d->name, len);
	struct shmet_seg_exposed ex;

	if (reserved)
		return shmet_impl_fail(seg, SHMET_FAIL_SHAPE_MISMATCH, -EEXIST,
				       "%s: names starting with %s are "
				       "reserved for the exporter's own "
				       "families", d->name, reserved);
	shmet_seg_exposed_names(d->type, d->name, len, &ex);
	for (uint32_t e = 0; e < ex.count; e++) {
		struct shmet_seg_owner own[SHMET_SEG_MAX_OWNERS];
		char exposed[SHMET_MAX_NAME_LEN + 16];
		size_t elen;
		uint32_t n;

		elen = (size_t)snprintf(exposed, sizeof exposed, "%.*s%s",
					(int)ex.base_len, d->name,
					ex.suffix[e]);
		n = shmet_seg_possible_owners(exposed, elen, own);
		for (uint32_t o = 0; o < n; o++) {
			char owner[SHMET_MAX_NAME_LEN + 16];
			size_t olen = (size_t)snprintf(
				owner, sizeof owner, "%.*s%s",
				(int)own[o].prefix_len, exposed, own[o].add);

			if (olen > SHMET_MAX_NAME_LEN ||
			    (olen == len && memcmp(owner, d->name, len) == 0))
				continue;       /* ourselves */
			if (shmet_impl_find_family(seg, own[o].type, owner,
						   olen) == UINT32_MAX)
				continue;
			return shmet_impl_fail(
				seg, SHMET_FAIL_SHAPE_MISMATCH, -EEXIST,
				"%s would expose %s, which family %s already "
				"exposes", d->name, exposed, owner);
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- */
