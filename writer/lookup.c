/*
 * shmetrics writer: finding a series without a lock: its hash, the probe
 * of the series index, and the check (and repair) of a caller's label
 * values.  Creation (series.c) and removal (remove.c) both look up here.
 */
#include "writer-private.h"

/* The series hash of values (format.h) in family record fam. */
SHMET_W uint64_t
shmet_impl_series_hash(uint32_t fam, uint32_t n, const char *const *values,
		       const size_t *lens)
{
	uint64_t hash = shmet_seg_series_hash_start(fam);

	for (uint32_t i = 0; i < n; i++)
		hash = shmet_seg_hash_bytes(hash, values[i], lens[i]);
	return shmet_seg_mix(hash);
}

/*
 * Look the series up: 0 and *cell (and *id, its record) if it is
 * published and live, 1 and *empty (the first empty index slot of its
 * probe chain) if not, or -ENOSPC when the chain has no empty slot.
 * Takes no lock.  A published series always lies before the first empty
 * slot of its chain (slots are never emptied) and no further than the
 * header's series_probe_max from its home, so a miss means "not published
 * before the empty slot or the bound was loaded".  Removed series stay in
 * their slots as tombstones, passed over.
 *
 * The bound is what keeps a miss short in a churned index, whose empty
 * slots have all become tombstones: an insertion takes the first free slot
 * from the home on, so the bound is the longest run of live series an
 * insertion ever met, small at the index's load (at most one half), while
 * the index may have thousands of slots.  Relaxed: a lookup that reads an
 * older, smaller bound may miss a series published meanwhile, which any
 * lock-free lookup racing a creation may; the creation path then looks
 * again under the family's gate, whose previous holders raised the bound
 * for every series of the family before they let it go (the gate's lock
 * orders us after them).  Another family's series are not looked for here.
 */
SHMET_W int
shmet_impl_series_find(const struct shmet_family *fam, uint64_t hash,
		       uint32_t n, const char *const *values,
		       const size_t *lens, uint32_t *cell, uint32_t *empty,
		       uint32_t *id, uint32_t *gen)
{
	struct shmet_segment *seg = fam->seg;
	SHMET_ATOMIC(uint32_t) *index =
		shmet_impl_index(seg, seg->hdr->series_index_off);
	const struct shmet_seg_series *table = shmet_impl_series_table(seg);
	uint32_t mask = seg->hdr->series_index_slots - 1;
	uint32_t bound = SHMET_AT(load_explicit)(&seg->hdr->series_probe_max,
						 SHMET_MO(relaxed));
	uint32_t tomb = UINT32_MAX, probe;

	if (bound > mask)
		bound = mask;   /* a corrupt bound probes the whole index */
	for (probe = 0; probe <= bound; probe++) {
		uint32_t i = (uint32_t)(hash + probe) & mask, g;
		/* Acquire: pairs with the release CAS that published it. */
		uint32_t v = SHMET_AT(load_explicit)(&index[i],
						     SHMET_MO(acquire));
		const struct shmet_seg_series *r;

		if (v == 0) {
			/* where a creation puts it: the first removed
			 * series' slot of the chain, else this one */
			*empty = tomb != UINT32_MAX ? tomb : i;
			return 1;
		}
		if (v == SHMET_INDEX_TOMB) {
			if (tomb == UINT32_MAX)
				tomb = i;
			continue;
		}
		if (v - 1 >= seg->hdr->max_series)
			continue;       /* corrupt slot: skip it */
		r = &table[v - 1];
		/*
		 * The record's incarnation, read before and after its
		 * fields, as a sequence lock's reader: a record reused for
		 * another series meanwhile (writer/reuse.c moves gen before
		 * it rewrites them, and stores state LIVE with release after)
		 * is passed over.  A removal that races with the lookup makes
		 * a handle kept across the removal: its writes are dropped.
		 */
		g = SHMET_AT(load_explicit)(&r->gen, SHMET_MO(acquire));
		if (SHMET_AT(load_explicit)(&r->state, SHMET_MO(acquire)) !=
			    SHMET_SERIES_LIVE ||
		    r->hash != hash || r->family != fam->id ||
		    !shmet_impl_blob_equals(seg, r->labels, n, values, lens))
			continue;
		shmet_seg_record_read_fence();
		if (SHMET_AT(load_explicit)(&r->gen, SHMET_MO(relaxed)) != g)
			continue;
		if ((uint64_t)r->first_cell + fam->cells >
		    seg->hdr->cells_per_block)
			return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON,
					       -EPROTO, "series record %u is "
					       "corrupt", v - 1);
		*cell = r->first_cell;
		*id = v - 1;
		*gen = g;
		return 0;
	}
	/* Past the bound, or the whole index probed: the series is not
	 * there.  A creation takes the first removed series' slot met, else
	 * looks on from here (shmet_impl_series_insert). */
	if (tomb != UINT32_MAX) {
		*empty = tomb;
		return 1;
	}
	if (probe <= mask) {
		*empty = (uint32_t)(hash + probe) & mask;
		return 1;
	}
	return -ENOSPC;
}

/*
 * values as stored (format.h: each invalid UTF-8 byte U+FFFD) in fixed[]
 * and fixed_lens[], which point into *copy (the caller frees it); 0, or
 * the error (a repaired value too long, no memory).
 */
SHMET_W int
shmet_impl_repair_values(const struct shmet_family *fam, uint32_t n,
			 const char *const *values, const size_t *lens,
			 const char **fixed, size_t *fixed_lens, char **copy)
{
	struct shmet_segment *seg = fam->seg;
	size_t total = 0;
	char *at;

	for (uint32_t i = 0; i < n; i++) {
		fixed_lens[i] = shmet_seg_utf8_repaired_len(values[i], lens[i]);
		total += fixed_lens[i];
		if (fixed_lens[i] > SHMET_MAX_LABEL_VALUE_LEN)
			return shmet_impl_fail(
				seg, SHMET_FAIL_LABEL_VALUE, -EINVAL,
				"%.*s: label value %u is %zu bytes once its "
				"invalid UTF-8 is replaced by U+FFFD, more "
				"than %u", SHMET_IMPL_FAM(seg, fam->id), i,
				fixed_lens[i], SHMET_MAX_LABEL_VALUE_LEN);
	}
	*copy = (char *)malloc(total ? total : 1);
	if (!*copy)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -ENOMEM,
				       "out of memory");
	at = *copy;
	for (uint32_t i = 0; i < n; i++) {
		shmet_seg_utf8_repair(values[i], lens[i], at);
		fixed[i] = at;
		at += fixed_lens[i];
	}
	return 0;
}

/*
 * What every call with label values checks first: the family, the count,
 * each value's presence and length (into lens).  0 or the error.
 */
SHMET_W int
shmet_impl_values_valid(const struct shmet_family *fam, uint32_t n,
			const char *const *values, size_t *lens)
{
	struct shmet_segment *seg = fam->seg;

	if (fam->id == UINT32_MAX || !seg || !seg->attached)
		return fam->error ? fam->error : -ENODEV;
	if (!shmet_impl_registrant_held(seg, fam->id))
		return shmet_impl_stale_family(seg);
	if (n != fam->label_count || (n > 0 && !values))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_LABELS, -EINVAL,
				       "%.*s takes %u label values, got %u",
				       SHMET_IMPL_FAM(seg, fam->id),
				       fam->label_count, n);
	if (shmet_impl_label_lens(n, values, lens) < 0)
		return shmet_impl_fail(seg, SHMET_FAIL_LABEL_VALUE, -EINVAL,
				       "%.*s: label values must be non-NULL "
				       "and at most %u bytes",
				       SHMET_IMPL_FAM(seg, fam->id),
				       SHMET_MAX_LABEL_VALUE_LEN);
	return 0;
}
