/*
 * shmetrics writer: validation, label blobs, families: find or register
 * and publish.
 *
 * A family's registration, and what a kill after each step leaves:
 *   family.built      a built record nobody knows: at most one leaked
 *   family.announced  the same, and the generation moved: readers build
 *                     twice and find nothing new
 *   family.published  the record is in the index, the generation not
 *                     bumped after it: readers that built after the
 *                     announce build once more and find it (lib/index.c)
 * Lock-free: racing registrations find each other's record in the index.
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

SHMET_W int
shmet_impl_blob_equals(const struct shmet_segment *seg, struct shmet_seg_str s,
		       uint32_t n, const char *const *strs, const size_t *lens)
{
	const unsigned char *p = shmet_impl_str(seg, s), *end, *v;
	uint32_t len;

	if (!p || s.len != shmet_seg_blob_size(n, lens))
		return 0;
	end = p + s.len;
	for (uint32_t i = 0; i < n; i++)
		if (!shmet_seg_blob_next(&p, end, &v, &len) ||
		    len != lens[i] || memcmp(v, strs[i], len) != 0)
			return 0;
	return 1;
}

/*
 * Copy a blob into the pool; -1 if the pool is full.  Series blobs take
 * a multiple of 16 bytes (*cap), so that a record reused for another
 * series (reuse.c) mostly finds room for its values in place.
 */
SHMET_W int
shmet_impl_put_blob(struct shmet_segment *seg, uint32_t n,
		    const char *const *strs, const size_t *lens,
		    struct shmet_seg_str *out, uint32_t *cap)
{
	uint32_t size = shmet_seg_blob_size(n, lens), off = 0;

	*cap = (uint32_t)shmet_seg_align(size, 16);
	if (size > 0 && shmet_impl_alloc(&seg->hdr->strings_used,
					 seg->hdr->string_bytes, *cap, 1,
					 &off) < 0)
		return -1;
	shmet_seg_blob_write(shmet_impl_pool(seg) + off, n, strs, lens);
	out->off = off;
	out->len = size;
	return 0;
}

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

SHMET_W int
shmet_impl_str_equals(const struct shmet_segment *seg, struct shmet_seg_str s,
		      const void *b, size_t len)
{
	const unsigned char *p = shmet_impl_str(seg, s);

	return p && s.len == len && memcmp(p, b, len) == 0;
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

SHMET_W int
shmet_impl_label_lens(uint32_t n, const char *const *strs, size_t *lens)
{
	for (uint32_t i = 0; i < n; i++) {
		if (!strs[i])
			return -1;
		lens[i] = strlen(strs[i]);
		if (lens[i] > SHMET_MAX_LABEL_VALUE_LEN)
			return -1;
	}
	return 0;
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
static int
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
static int
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

SHMET_W int
shmet_impl_spare_lock(struct shmet_segment *seg)
{
	int expected = 0;

	/* Acquire/release: the spare fields are handed between threads. */
	return SHMET_AT(compare_exchange_strong_explicit)(
		&seg->spare_busy, &expected, 1, SHMET_MO(acquire),
		SHMET_MO(relaxed));
}

SHMET_W void
shmet_impl_spare_unlock(struct shmet_segment *seg)
{
	SHMET_AT(store_explicit)(&seg->spare_busy, 0, SHMET_MO(release));
}

/* Take the spare family record, or UINT32_MAX. */
SHMET_W uint32_t
shmet_impl_take_spare_family(struct shmet_segment *seg)
{
	uint32_t id = UINT32_MAX;

	if (shmet_impl_spare_lock(seg)) {
		id = seg->spare_family;
		seg->spare_family = UINT32_MAX;
		shmet_impl_spare_unlock(seg);
	}
	return id;
}

SHMET_W void
shmet_impl_keep_spare_family(struct shmet_segment *seg, uint32_t id)
{
	if (shmet_impl_spare_lock(seg)) {
		if (seg->spare_family == UINT32_MAX)
			seg->spare_family = id;
		shmet_impl_spare_unlock(seg);
	}
}

/* Allocate and fill (not publish) a family record. */
SHMET_W int
shmet_impl_build_family(struct shmet_segment *seg,
			const struct shmet_family_desc *d, uint32_t mode,
			const size_t *lens, uint64_t hash, uint32_t base,
			uint32_t *out)
{
	struct shmet_seg_family *r;
	uint32_t id, bounds = d->type == SHMET_TYPE_HISTOGRAM ? d->bound_count : 0;
	const char *help = d->help ? d->help : "";
	const char *unit = d->unit ? d->unit : "";

	id = shmet_impl_take_spare_family(seg);
	if (id == UINT32_MAX &&
	    shmet_impl_alloc(&seg->hdr->families_used, seg->hdr->max_families,
			     1, 1, &id) < 0)
		return shmet_impl_fail(seg, SHMET_FAIL_FAMILIES_FULL, -ENOSPC,
				       "%s: segment has no room for another "
				       "family (capacity %u)", d->name,
				       seg->hdr->max_families);
	r = &shmet_impl_families(seg)[id];
	r->type = d->type;
	r->gauge_mode = mode;
	r->label_count = d->label_count;
	r->bound_count = bounds;
	r->cells_per_series = d->type == SHMET_TYPE_COLLECTOR
				      ? 0 : shmet_seg_cells_for(d->type, bounds);
	r->max_series = d->max_series ? d->max_series
				      : seg->hdr->max_series_per_family;
	r->hash = hash;
	r->base = base;
	/* Relaxed: published with the record (the index CAS). */
	SHMET_AT(store_explicit)(&r->registered_ns,
				 shmet_impl_clock_ns(CLOCK_REALTIME),
				 SHMET_MO(relaxed));
	/*
	 * One allocation for all of the record's strings, bounds first (the
	 * start is 8-aligned): a pool too full for them takes nothing, and
	 * the record goes back as our spare.
	 */
	{
		size_t name_len = strlen(d->name), help_len = strlen(help);
		size_t unit_len = strlen(unit);
		uint32_t blob = shmet_seg_blob_size(d->label_count, lens);
		uint64_t total = 8ull * bounds + name_len + help_len +
				 unit_len + blob;
		uint32_t off = 0;
		unsigned char *p;

		if (total > 0 &&
		    (total > seg->hdr->string_bytes ||
		     shmet_impl_alloc(&seg->hdr->strings_used,
				      seg->hdr->string_bytes, (uint32_t)total,
				      8, &off) < 0)) {
			shmet_impl_keep_spare_family(seg, id);
			return shmet_impl_fail(seg, SHMET_FAIL_STRINGS_FULL,
					       -ENOSPC,
					       "%s: segment string pool is "
					       "full (%u bytes)", d->name,
					       seg->hdr->string_bytes);
		}
		p = shmet_impl_pool(seg) + off;
		p = shmet_impl_carve(&r->bounds, p, &off, d->bounds,
				     8u * bounds);
		p = shmet_impl_carve(&r->name, p, &off, d->name, name_len);
		p = shmet_impl_carve(&r->help, p, &off, help, help_len);
		p = shmet_impl_carve(&r->unit, p, &off, unit, unit_len);
		shmet_seg_blob_write(p, d->label_count, d->label_names, lens);
		r->label_names.off = off;
		r->label_names.len = blob;
	}
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

/*
 * Publish record id in an empty index slot (*v is 0): true if it is in.
 * False if another process won the slot; *v is then the winner's entry.
 */
SHMET_W int
shmet_impl_publish(struct shmet_segment *seg, SHMET_ATOMIC(uint32_t) *slot,
		   uint32_t *v, uint32_t id)
{
	/* Announce first: readers rebuild on a change and once more after
	 * it (lib/index.c), so a kill between the CAS and the bump after it
	 * cannot hide the record from a running reader.  Relaxed: the bump
	 * after the CAS is the one that publishes. */
	SHMET_AT(fetch_add_explicit)(&seg->hdr->generation, 1,
				     SHMET_MO(relaxed));
	SHMET_POINT("family.announced");
	/* Release: publishes the record's contents, written before; acquire
	 * on failure: the winner's record is complete when we compare it. */
	if (!SHMET_AT(compare_exchange_strong_explicit)(
		    slot, v, id + 1, SHMET_MO(release), SHMET_MO(acquire)))
		return 0;
	SHMET_POINT("family.published");
	/* Release: a reader that sees the new generation finds the record. */
	SHMET_AT(fetch_add_explicit)(&seg->hdr->generation, 1,
				     SHMET_MO(release));
	return 1;
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
 * Find the record of d (name and shape), or build and publish one:
 * lock-free, racing registrations of one shape get one record.  A name
 * may have several records (layout.h, version 4): one per shape that
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
	uint32_t mask, mine = UINT32_MAX, base = 0;
	SHMET_ATOMIC(uint32_t) *index;
	size_t name_len = strlen(d->name);
	uint64_t hash;
	int rc;

	hash = shmet_seg_name_hash(d->name, name_len);
	index = shmet_impl_index(seg, seg->hdr->family_index_off);
	mask = seg->hdr->family_index_slots - 1;
	for (uint32_t probe = 0; probe <= mask; probe++) {
		uint32_t i = (uint32_t)(hash + probe) & mask;
		/* Acquire: pairs with the release CAS that published it. */
		uint32_t v = SHMET_AT(load_explicit)(&index[i],
						     SHMET_MO(acquire));
		const struct shmet_seg_family *r;

		if (v == 0) {
			if (mine == UINT32_MAX) {
				rc = shmet_impl_build_family(seg, d, mode, lens,
							     hash, base, &mine);
				if (rc < 0)
					return rc;
				SHMET_POINT("family.built");
			}
			/* Ours, unpublished: an alias of the base we met
			 * (a record built before a lost race may predate
			 * it). */
			shmet_impl_families(seg)[mine].base = base;
			if (shmet_impl_publish(seg, &index[i], &v, mine)) {
				*id = base ? base - 1 : mine;
				return 0;
			}
			/* Lost the slot: v is the winner, compare it. */
		}
		if (v - 1 >= seg->hdr->max_families)
			continue;       /* corrupt slot: skip it */
		r = &shmet_impl_families(seg)[v - 1];
		if (r->hash != hash ||
		    !shmet_impl_str_equals(seg, r->name, d->name, name_len))
			continue;
		if (d->type == SHMET_TYPE_COLLECTOR) {
			if (mine != UINT32_MAX)
				shmet_impl_keep_spare_family(seg, mine);
			if (!shmet_impl_same_shape(seg, r, d, mode, lens))
				return shmet_impl_fail(
					seg, SHMET_FAIL_SHAPE_MISMATCH, -EEXIST,
					"collector %s is already declared "
					"with another list of families",
					d->name + 1);
			*id = v - 1;
			return 0;
		}
		if (shmet_impl_labels_reordered(seg, r, d, lens)) {
			if (mine != UINT32_MAX)
				shmet_impl_keep_spare_family(seg, mine);
			return shmet_impl_fail(
				seg, SHMET_FAIL_SHAPE_MISMATCH, -EEXIST,
				"%s is registered with the same label names "
				"in another order: a page would show one "
				"label set twice", d->name);
		}
		if (!shmet_impl_same_shape(seg, r, d, mode, lens) ||
		    (r->base != 0 && r->base - 1 >= seg->hdr->max_families))
			continue;       /* another version of the name */
		if (!shmet_impl_same_text(seg, r, d)) {
			if (base == 0)  /* the shape's series live there */
				base = r->base ? r->base : v;
			continue;
		}
		if (mine != UINT32_MAX)
			shmet_impl_keep_spare_family(seg, mine);
		shmet_impl_touch_registered(seg, v - 1);
		*id = r->base ? r->base - 1 : v - 1;
		return 0;
	}
	if (mine != UINT32_MAX)
		shmet_impl_keep_spare_family(seg, mine);
	return shmet_impl_fail(seg, SHMET_FAIL_FAMILIES_FULL, -ENOSPC,
			       "%s: family index is full", d->name);
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

/* ---------------------------------------------------------------- */
