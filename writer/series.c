/*
 * shmetrics writer: Series: find or create and publish, and the handles.
 */
#include "writer-private.h"

SHMET_W const unsigned char *
shmet_impl_str_or_empty(const struct shmet_segment *seg, struct shmet_seg_str s)
{
	const unsigned char *p = shmet_impl_str(seg, s);

	return p ? p : (const unsigned char *)"";
}

/* Take the spare series record into *id, *cell and *blob as they fit. */
SHMET_W void
shmet_impl_take_spare_series(struct shmet_segment *seg, uint32_t cells,
			     uint32_t blob_size, uint32_t *id, uint32_t *cell,
			     struct shmet_seg_str *blob)
{
	if (!shmet_impl_spare_lock(seg))
		return;
	if (seg->spare_series != UINT32_MAX) {
		*id = seg->spare_series;
		if (seg->spare_cells == cells)
			*cell = seg->spare_cell;        /* else they leak */
		if (blob_size <= seg->spare_blob.len) {
			blob->off = seg->spare_blob.off;
			blob->len = blob_size;
		}
		seg->spare_series = UINT32_MAX;
	}
	shmet_impl_spare_unlock(seg);
}

/* Keep what a series registration took and did not publish. */
SHMET_W void
shmet_impl_keep_spare_series(struct shmet_segment *seg, uint32_t id,
			     uint32_t cell, uint32_t cells,
			     struct shmet_seg_str blob)
{
	if (!shmet_impl_spare_lock(seg))
		return;
	if (seg->spare_series == UINT32_MAX) {
		seg->spare_series = id;
		seg->spare_cell = cell;
		seg->spare_cells = cell == UINT32_MAX ? 0 : cells;
		seg->spare_blob = blob.len == UINT32_MAX
					  ? (struct shmet_seg_str){ 0, 0 }
					  : blob;
	}
	shmet_impl_spare_unlock(seg);
}

/* Keep a built record that lost its publication race. */
SHMET_W void
shmet_impl_keep_spare_record(struct shmet_segment *seg, uint32_t id,
			     uint32_t cells)
{
	const struct shmet_seg_series *r = &shmet_impl_series_table(seg)[id];

	shmet_impl_keep_spare_series(seg, id, r->first_cell, cells, r->labels);
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

	shmet_impl_take_spare_series(seg, fam->cells, size, &id, &cell, &blob);
	if (id == UINT32_MAX &&
	    shmet_impl_alloc(&seg->hdr->series_used, seg->hdr->max_series, 1,
			     1, &id) < 0)
		return shmet_impl_fail(seg, SHMET_FAIL_SERIES_FULL, -ENOSPC,
				       "%.*s: segment has no room for another "
				       "series (capacity %u)",
				       SHMET_IMPL_FAM(seg, fam->id),
				       seg->hdr->max_series);
	if (cell == UINT32_MAX &&
	    shmet_impl_alloc(&seg->hdr->cells_used, seg->hdr->cells_per_block,
			     fam->cells, 1, &cell) < 0) {
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
		shmet_impl_keep_spare_series(seg, id, cell, fam->cells,
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
 * slot of its chain (slots are never emptied), so a miss means "not
 * published before the empty slot was loaded".  Removed series stay in
 * their slots as tombstones, passed over.
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

	uint32_t tomb = UINT32_MAX;

	for (uint32_t probe = 0; probe <= mask; probe++) {
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
	/* No empty slot, but a removed series' one: the whole index was
	 * probed, so the series is not there (a churned index has removed
	 * series' slots where it once had empty ones; a miss then probes
	 * every slot, a creation's cost only). */
	if (tomb != UINT32_MAX) {
		*empty = tomb;
		return 1;
	}
	return -ENOSPC;
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

		/* Release: publishes the record, written before; acquire on
		 * failure, as every index load. */
		if ((v == 0 || v == SHMET_INDEX_TOMB) &&
		    SHMET_AT(compare_exchange_strong_explicit)(
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
		shmet_impl_keep_spare_record(seg, mine, fam->cells);
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

/* Find or create, then make sure our block's pages for it are reserved. */
static shmet_impl_cell *
shmet_impl_resolve_steps(const struct shmet_family *fam, uint32_t type,
			 uint32_t n, const char *const *values, int *rc,
			 unsigned char **cpu0, struct shmet_impl_gen *gen)
{
	struct shmet_segment *seg = fam->seg;
	uint32_t cell = 0, id = UINT32_MAX;

	*cpu0 = NULL;
	gen->at = &shmet_impl_scratch_gen;
	gen->expect = 0;

	if (fam->id != UINT32_MAX && fam->type != type) {
		*rc = shmet_impl_fail(seg, SHMET_FAIL_SHAPE_MISMATCH, -EINVAL,
				      "%.*s is not of the handle's type",
				      SHMET_IMPL_FAM(seg, fam->id));
		return shmet_impl_scratch();
	}
	*rc = shmet_impl_series(fam, n, values, &cell, &id, &gen->expect);
	if (*rc < 0) {
		gen->expect = 0;
		return shmet_impl_scratch();
	}
	if (type == SHMET_TYPE_GAUGE &&
	    seg->slot == shmet_seg_fallback_block(seg->hdr)) {
		/* The fallback block mixes processes: a gauge there would be
		 * nobody's value (layout.h, "Value blocks"). */
		*rc = shmet_impl_fail(seg, SHMET_FAIL_WRITERS_FULL, -ENOSPC,
				      "%.*s: no writer slot was free when this "
				      "process attached; its gauges are not "
				      "recorded (counters and histograms are)",
				      SHMET_IMPL_FAM(seg, fam->id));
		return shmet_impl_scratch();
	}
	/* Relaxed: see shmet_impl_hold_liveness. */
	if (SHMET_UNLIKELY(!SHMET_AT(load_explicit)(&seg->live_locked,
						    SHMET_MO(relaxed))))
		shmet_impl_hold_liveness(seg);
	*rc = shmet_impl_reserve(seg, (uint64_t)cell + fam->cells);
	if (*rc < 0) {
		*rc = shmet_impl_fail(seg, SHMET_FAIL_NO_MEMORY, -ENOMEM,
				      "%.*s: cannot reserve shared memory for "
				      "a series: %s", SHMET_IMPL_FAM(seg, fam->id),
				      strerror(-*rc));
		return shmet_impl_scratch();
	}
	if (type == SHMET_TYPE_GAUGE && seg->block) {
		/* The gauge's pages of our block are data to readers before
		 * its first set (slot.c, shmet_impl_touch): a set is read at
		 * once, not up to 100 ms late.  Both cells: they may straddle
		 * a page boundary. */
		uint64_t stamp = shmet_seg_cell_gauge_stamp(cell);

		shmet_impl_touch((unsigned char *)seg->block, 8ull * cell,
				 8ull * cell + 1);
		shmet_impl_touch((unsigned char *)seg->block, 8ull * stamp,
				 8ull * stamp + 1);
	}
	if (type != SHMET_TYPE_GAUGE) { /* gauges stay per process */
		*rc = shmet_impl_reserve_cpus(seg, (uint64_t)cell + fam->cells);
		if (*rc < 0) {
			*rc = shmet_impl_fail(seg, SHMET_FAIL_NO_MEMORY, -ENOMEM,
					      "%.*s: cannot reserve shared "
					      "memory for a series in the "
					      "per-CPU blocks: %s",
					      SHMET_IMPL_FAM(seg, fam->id),
					      strerror(-*rc));
			return shmet_impl_scratch();
		}
		*cpu0 = seg->cpus ? seg->cpus + 8ull * cell : NULL;
	}
	gen->at = &shmet_impl_series_table(seg)[id].gen;
	if (type != SHMET_TYPE_GAUGE)
		return shmet_impl_count_cell(seg, cell, fam->cells);
	return &seg->block[cell];
}

/* Not a cancellation point (docs/DESIGN.md, "Cancellation"). */
SHMET_W shmet_impl_cell *
shmet_impl_resolve(const struct shmet_family *fam, uint32_t type, uint32_t n,
		   const char *const *values, int *rc, unsigned char **cpu0,
		   struct shmet_impl_gen *gen)
{
	int old = shmet_impl_cancel_off();
	shmet_impl_cell *ret =
		shmet_impl_resolve_steps(fam, type, n, values, rc, cpu0, gen);

	shmet_impl_cancel_restore(old);
	return ret;
}

/* A handle's per-CPU fields: none (the fallback) for a failed one. */
static void
shmet_impl_percpu_fields(const struct shmet_family *fam, unsigned char *cpu0,
			 unsigned char **out_cpu0, uint64_t *stride,
			 uint32_t *cpus)
{
	*out_cpu0 = cpu0;
	*stride = cpu0 ? fam->seg->hdr->block_stride : 0;
	*cpus = cpu0 ? fam->seg->hdr->cpu_blocks : 0;
}

int
shmet_counter_labels(const struct shmet_family *fam, struct shmet_counter *out,
		     uint32_t count, const char *const *values)
{
	struct shmet_impl_gen gen;
	unsigned char *cpu0;
	int rc;

	out->cell = shmet_impl_resolve(fam, SHMET_TYPE_COUNTER, count, values,
				       &rc, &cpu0, &gen);
	out->gen = gen.at;
	out->expect = gen.expect;
	shmet_impl_percpu_fields(fam, rc == 0 ? cpu0 : NULL, &out->cpu0,
				 &out->stride, &out->cpus);
	return rc;
}

int
shmet_gauge_labels(const struct shmet_family *fam, struct shmet_gauge *out,
		   uint32_t count, const char *const *values)
{
	struct shmet_impl_gen gen;
	unsigned char *cpu0;
	int rc;

	out->cell = shmet_impl_resolve(fam, SHMET_TYPE_GAUGE, count, values,
				       &rc, &cpu0, &gen);
	out->gen = gen.at;
	out->expect = gen.expect;
	out->timed = rc == 0 && (fam->gauge_mode == SHMET_GAUGE_MOSTRECENT ||
				 fam->gauge_mode == SHMET_GAUGE_LIVEMOSTRECENT);
	return rc;
}

int
shmet_histogram_labels(const struct shmet_family *fam,
		       struct shmet_histogram *out, uint32_t count,
		       const char *const *values)
{
	struct shmet_impl_gen gen;
	unsigned char *cpu0;
	int rc;

	out->cell = shmet_impl_resolve(fam, SHMET_TYPE_HISTOGRAM, count, values,
				       &rc, &cpu0, &gen);
	out->gen = gen.at;
	out->expect = gen.expect;
	out->bounds = rc == 0 ? fam->bounds : NULL;
	out->bound_count = rc == 0 ? fam->bound_count : 0;
	shmet_impl_percpu_fields(fam, rc == 0 ? cpu0 : NULL, &out->cpu0,
				 &out->stride, &out->cpus);
	return rc;
}

int
shmet_counter_new(struct shmet_segment *seg, struct shmet_counter *out,
		  const char *name, const char *help)
{
	struct shmet_family f;
	int rc = shmet_counter_family(seg, &f, name, help, 0, NULL);
	int rc2 = shmet_counter_labels(&f, out, 0, NULL);

	return rc < 0 ? rc : rc2;
}

int
shmet_gauge_new(struct shmet_segment *seg, struct shmet_gauge *out,
		const char *name, const char *help, uint32_t gauge_mode)
{
	struct shmet_family f;
	int rc = shmet_gauge_family(seg, &f, name, help, gauge_mode, 0, NULL);
	int rc2 = shmet_gauge_labels(&f, out, 0, NULL);

	return rc < 0 ? rc : rc2;
}

int
shmet_histogram_new(struct shmet_segment *seg, struct shmet_histogram *out,
		    const char *name, const char *help, uint32_t bound_count,
		    const double *bounds)
{
	struct shmet_family f;
	int rc = shmet_histogram_family(seg, &f, name, help, bound_count,
					bounds, 0, NULL);
	int rc2 = shmet_histogram_labels(&f, out, 0, NULL);

	return rc < 0 ? rc : rc2;
}

uint32_t
shmet_linear_bounds(double start, double width, uint32_t count, double *out)
{
	if (count == 0 || count > SHMET_MAX_BOUNDS || !(width > 0))
		return 0;
	for (uint32_t i = 0; i < count; i++)
		out[i] = start + width * i;
	return count;
}

uint32_t
shmet_exponential_bounds(double start, double factor, uint32_t count,
			 double *out)
{
	if (count == 0 || count > SHMET_MAX_BOUNDS || !(start > 0) ||
	    !(factor > 1))
		return 0;
	out[0] = start;
	for (uint32_t i = 1; i < count; i++)
		out[i] = out[i - 1] * factor;
	return count;
}
