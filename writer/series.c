/*
 * shmetrics writer: Series: find or create and publish, and the handles.
 */
#include "writer-private.h"

/* Take the spare series record into *id, *cell and *blob as they fit
 * (kind: shmet_impl_cells_kind() of the family, cells.c). */
SHMET_W void
shmet_impl_take_spare_series(struct shmet_segment *seg, uint32_t kind,
			     uint32_t blob_size, uint32_t *id, uint32_t *cell,
			     struct shmet_seg_str *blob)
{
	if (!shmet_impl_spare_lock(seg))
		return;
	if (seg->spare_series != UINT32_MAX) {
		*id = seg->spare_series;
		if (seg->spare_cells == kind)
			*cell = seg->spare_cell;        /* else they leak */
		if (blob_size <= seg->spare_blob.len) {
			blob->off = seg->spare_blob.off;
			blob->len = blob_size;
		}
		seg->spare_series = UINT32_MAX;
	}
	shmet_impl_spare_unlock(seg);
}

/* Keep what a series registration took and did not publish (kind: of
 * its cells, as taken). */
SHMET_W void
shmet_impl_keep_spare_series(struct shmet_segment *seg, uint32_t id,
			     uint32_t cell, uint32_t kind,
			     struct shmet_seg_str blob)
{
	if (!shmet_impl_spare_lock(seg))
		return;
	if (seg->spare_series == UINT32_MAX) {
		seg->spare_series = id;
		seg->spare_cell = cell;
		seg->spare_cells = cell == UINT32_MAX ? 0 : kind;
		seg->spare_blob = blob.len == UINT32_MAX
					  ? (struct shmet_seg_str){ 0, 0 }
					  : blob;
	}
	shmet_impl_spare_unlock(seg);
}

/* Keep a built record that lost its publication race. */
SHMET_W void
shmet_impl_keep_spare_record(struct shmet_segment *seg, uint32_t id,
			     uint32_t kind)
{
	const struct shmet_seg_series *r = &shmet_impl_series_table(seg)[id];

	shmet_impl_keep_spare_series(seg, id, r->first_cell, kind, r->labels);
}

/*
 * Allocate and fill (not publish) a series record.  On failure everything
 * it took (record, cells, label bytes) becomes the process's spare, which
 * the next registration reuses: failed registrations do not eat capacity.
 */
SHMET_W int
shmet_impl_build_series(struct shmet_segment *seg,
			const struct shmet_family *fam, uint32_t n,
			const char *const *values, const size_t *lens,
			uint64_t hash, uint32_t *out)
{
	struct shmet_seg_series *r;
	struct shmet_seg_str blob = { 0, UINT32_MAX };
	uint32_t id = UINT32_MAX, cell = UINT32_MAX;
	uint32_t size = shmet_seg_blob_size(n, lens), cap = 0;

	shmet_impl_take_spare_series(seg, shmet_impl_cells_kind(fam), size, &id,
				     &cell, &blob);
	if (id == UINT32_MAX &&
	    shmet_impl_alloc(&seg->hdr->series_used, seg->hdr->max_series, 1,
			     1, &id) < 0)
		return shmet_impl_fail(seg, SHMET_FAIL_SERIES_FULL, -ENOSPC,
				       "%.*s: segment has no room for another "
				       "series (capacity %u)",
				       SHMET_IMPL_FAM(seg, fam->id),
				       seg->hdr->max_series);
	if (cell == UINT32_MAX &&
	    shmet_impl_alloc_cells(seg, fam, &cell) < 0) {
		shmet_impl_keep_spare_series(seg, id, UINT32_MAX, 0, blob);
		return shmet_impl_fail(seg, SHMET_FAIL_CELLS_FULL, -ENOSPC,
				       "%.*s: segment has no room for %u more "
				       "value cells (capacity %u)",
				       SHMET_IMPL_FAM(seg, fam->id), fam->cells,
				       seg->hdr->cells_per_block);
	}
	if (blob.len != UINT32_MAX)
		cap = blob.len;         /* the spare's, as far as we know */
	else if (shmet_impl_put_blob(seg, n, values, lens, &blob, &cap) < 0) {
		shmet_impl_keep_spare_series(seg, id, cell,
					     shmet_impl_cells_kind(fam),
					     (struct shmet_seg_str){ 0, 0 });
		return shmet_impl_fail(seg, SHMET_FAIL_STRINGS_FULL, -ENOSPC,
				       "%.*s: segment string pool is full (%u "
				       "bytes)", SHMET_IMPL_FAM(seg, fam->id),
				       seg->hdr->string_bytes);
	}
	r = &shmet_impl_series_table(seg)[id];
	shmet_seg_blob_write(shmet_impl_pool(seg) + blob.off, n, values, lens);
	r->labels = blob;
	/* Relaxed: published with the record (the index CAS).  Only
	 * published records are ever removed (writer/remove.c), and a
	 * spare is never published, so this is a new record's state. */
	SHMET_AT(store_explicit)(&r->state, SHMET_SERIES_LIVE,
				 SHMET_MO(relaxed));
	r->family = fam->id;
	r->first_cell = cell;
	r->cells = fam->cells;
	r->hash = hash;
	r->blob_cap = cap;
	/* Relaxed: published with the record; an expiry sweep starts its
	 * idle time at the creation (writer/expire.c). */
	SHMET_AT(store_explicit)(&r->removed_ns, 0, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&r->digest, 0, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&r->changed_ns,
				 shmet_impl_clock_ns(CLOCK_MONOTONIC),
				 SHMET_MO(relaxed));
	*out = id;
	return 0;
}

/* Raise the header's series_probe_max to at least probe. */
static void
shmet_impl_raise_probe_max(struct shmet_segment *seg, uint32_t probe)
{
	uint32_t cur = SHMET_AT(load_explicit)(&seg->hdr->series_probe_max,
					       SHMET_MO(relaxed));

	/* Relaxed: the gate orders it for the lookups that rely on it
	 * (shmet_impl_series_find); program order puts it before the CAS
	 * that publishes the series, so a kill between the two leaves a
	 * bound too large, never too small. */
	while (cur < probe &&
	       !SHMET_AT(compare_exchange_weak_explicit)(
		       &seg->hdr->series_probe_max, &cur, probe,
		       SHMET_MO(relaxed), SHMET_MO(relaxed)))
		;
}

/* Put record id in the first empty or removed series' slot from index
 * slot `from` on: 1 if it is in.  Slots taken meanwhile hold other
 * families' series (only the gate's holder creates this family's), so
 * the probe goes on past them. */
static int
shmet_impl_series_insert(struct shmet_segment *seg, uint64_t hash,
			 uint32_t from, uint32_t id)
{
	SHMET_ATOMIC(uint32_t) *index =
		shmet_impl_index(seg, seg->hdr->series_index_off);
	uint32_t mask = seg->hdr->series_index_slots - 1;
	uint32_t start = (from - (uint32_t)hash) & mask;

	for (uint32_t probe = start; probe <= mask; probe++) {
		uint32_t i = (uint32_t)(hash + probe) & mask;
		/* Acquire: as every index load. */
		uint32_t v = SHMET_AT(load_explicit)(&index[i],
						     SHMET_MO(acquire));

		if (v != 0 && v != SHMET_INDEX_TOMB)
			continue;
		shmet_impl_raise_probe_max(seg, probe);
		/* Release: publishes the record, written before; acquire on
		 * failure, as every index load. */
		if (SHMET_AT(compare_exchange_strong_explicit)(
			    &index[i], &v, id + 1, SHMET_MO(release),
			    SHMET_MO(acquire)))
			return 1;
	}
	return 0;
}

/*
 * Create the series, holding the family's gate (writer/gate.c lists the
 * steps and what a kill after each leaves).  First a second lookup: a
 * creator that published while we waited is found, never duplicated and
 * never refused at the limit.
 */
static int
shmet_impl_series_create(const struct shmet_family *fam, uint64_t hash,
			 uint32_t n, const char *const *values,
			 const size_t *lens, uint32_t *cell, uint32_t *id,
			 uint32_t *gen)
{
	struct shmet_segment *seg = fam->seg;
	struct shmet_seg_family *r = &shmet_impl_families(seg)[fam->id];
	uint32_t empty = 0, mine = UINT32_MAX, count;
	int rc;

	rc = shmet_impl_series_find(fam, hash, n, values, lens, cell, &empty,
				    id, gen);
	if (rc != 1)
		return rc == -ENOSPC ? shmet_impl_fail(
			seg, SHMET_FAIL_SERIES_FULL, -ENOSPC,
			"%.*s: series index is full",
			SHMET_IMPL_FAM(seg, fam->id)) : rc;
	/* Relaxed: only holders of the gate write it, and the gate (an OFD
	 * lock and the process flag's acquire) orders us after them. */
	count = SHMET_AT(load_explicit)(&r->series_count, SHMET_MO(relaxed));
	if (count >= r->max_series)
		return shmet_impl_fail(seg, SHMET_FAIL_CARDINALITY, -E2BIG,
				       "%.*s reached its limit of %u series",
				       SHMET_IMPL_FAM(seg, fam->id),
				       r->max_series);
	/* A full segment gives a series that left its record (reuse.c). */
	rc = -ENOSPC;
	if (shmet_impl_segment_short(seg, fam, shmet_seg_blob_size(n, lens)))
		rc = shmet_impl_reuse_series(fam, count, n, values, lens, hash,
					     &mine);
	if (rc < 0)
		rc = shmet_impl_build_series(seg, fam, n, values, lens, hash,
					     &mine);
	if (rc < 0)
		return rc;
	SHMET_POINT("series.built");
	SHMET_AT(store_explicit)(&r->gate_count, count, SHMET_MO(relaxed));
	/* Release: a recovering holder that reads the journal sees the
	 * record complete and gate_count. */
	SHMET_AT(store_explicit)(&r->gate_series, mine + 1, SHMET_MO(release));
	SHMET_POINT("series.journaled");
	SHMET_AT(store_explicit)(&r->series_count, count + 1,
				 SHMET_MO(relaxed));
	SHMET_POINT("series.counted");
	/* Release: readers rebuild on this and once more after it
	 * (lib/index.c), so a kill between the CAS and the second bump
	 * below cannot hide the series from a running reader. */
	SHMET_AT(fetch_add_explicit)(&seg->hdr->generation, 1,
				     SHMET_MO(release));
	SHMET_POINT("series.announced");
	if (!shmet_impl_series_insert(seg, hash, empty, mine)) {
		SHMET_AT(store_explicit)(&r->series_count, count,
					 SHMET_MO(relaxed));
		SHMET_AT(store_explicit)(&r->gate_series, 0,
					 SHMET_MO(release));
		shmet_impl_keep_spare_record(seg, mine,
					     shmet_impl_cells_kind(fam));
		return shmet_impl_fail(seg, SHMET_FAIL_SERIES_FULL, -ENOSPC,
				       "%.*s: series index is full",
				       SHMET_IMPL_FAM(seg, fam->id));
	}
	SHMET_POINT("series.published");
	/* Release: a reader that sees it finds the record. */
	SHMET_AT(fetch_add_explicit)(&seg->hdr->generation, 1,
				     SHMET_MO(release));
	SHMET_POINT("series.settled");
	SHMET_AT(store_explicit)(&r->gate_series, 0, SHMET_MO(release));
	*cell = shmet_impl_series_table(seg)[mine].first_cell;
	*id = mine;
	/* Relaxed: only holders of the gate move it (remove.c, reuse.c). */
	*gen = SHMET_AT(load_explicit)(&shmet_impl_series_table(seg)[mine].gen,
				       SHMET_MO(relaxed));
	return 0;
}

/*
 * Find or create a series of values (lengths in lens).  Unless `repaired`,
 * the values are the caller's: before creating a series from them, they
 * are checked for invalid UTF-8, and 1 is returned if they have some (the
 * caller repairs them and asks again).  Looking up an existing series
 * costs no check and takes no lock: a stored value is valid, so raw bytes
 * that match it are.
 */
SHMET_W int
shmet_impl_series_of(const struct shmet_family *fam, uint32_t n,
		     const char *const *values, const size_t *lens,
		     int repaired, uint32_t *cell, uint32_t *found,
		     uint32_t *gen)
{
	struct shmet_segment *seg = fam->seg;
	uint32_t empty;
	uint64_t hash;
	int rc;

	hash = shmet_impl_series_hash(fam->id, n, values, lens);
	rc = shmet_impl_series_find(fam, hash, n, values, lens, cell, &empty,
				    found, gen);
	if (rc == 0 || (rc < 0 && rc != -ENOSPC))
		return rc;
	SHMET_POINT("series.probed");
	if (!repaired)
		for (uint32_t k = 0; k < n; k++)
			if (shmet_seg_utf8_repaired_len(values[k], lens[k]) !=
			    lens[k])
				return 1;
	/* Series that nobody wrote for the segment's TTL leave first, so a
	 * full segment has records to give (expire.c, reuse.c). */
	shmet_impl_expire_due(seg);
	rc = shmet_impl_gate_enter(seg, fam->id, "create a series",
				   "series.gated");
	if (rc < 0)
		return rc;
	rc = shmet_impl_series_create(fam, hash, n, values, lens, cell, found,
				      gen);
	shmet_impl_gate_unlock(seg, fam->id);
	return rc;
}

/* The rare path of shmet_impl_series: values with invalid UTF-8, stored
 * repaired from a copy (kept out of line: the lookup stays lean). */
#if defined(__GNUC__)
__attribute__((noinline, cold))
#endif
SHMET_W int
shmet_impl_series_repaired(const struct shmet_family *fam, uint32_t n,
			   const char *const *values, const size_t *lens,
			   uint32_t *cell, uint32_t *id, uint32_t *gen)
{
	const char *fixed[SHMET_MAX_LABELS];
	size_t fixed_lens[SHMET_MAX_LABELS];
	char *copy;
	int rc = shmet_impl_repair_values(fam, n, values, lens, fixed,
					  fixed_lens, &copy);

	if (rc < 0)
		return rc;
	rc = shmet_impl_series_of(fam, n, fixed, fixed_lens, 1, cell, id,
				  gen);
	free(copy);
	return rc;
}

/*
 * Find or create a series; *cell is its first cell.  Values with invalid
 * UTF-8 are stored repaired (format.h: each invalid byte U+FFFD), so two
 * values that differ only in invalid bytes are the one series a page
 * would show.
 */
SHMET_W int
shmet_impl_series(const struct shmet_family *fam, uint32_t n,
		  const char *const *values, uint32_t *cell, uint32_t *id,
		  uint32_t *gen)
{
	size_t lens[SHMET_MAX_LABELS];    /* [0, n) filled below */
	int rc = shmet_impl_values_valid(fam, n, values, lens);

	if (rc < 0)
		return rc;
	rc = shmet_impl_series_of(fam, n, values, lens, 0, cell, id, gen);
	return rc == 1 ? shmet_impl_series_repaired(fam, n, values, lens, cell,
						    id, gen)
		       : rc;
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
