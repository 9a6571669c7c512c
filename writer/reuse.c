/*
 * shmetrics writer: reusing a removed or expired series' record, cells and
 * label bytes for a new series, when the segment has no room left for it
 * (series records, cells or strings), so that a segment whose label values
 * come and go (a campaign_id a day) serves them for as long as it lives.
 *
 * A record is reused no sooner than SHMET_REUSE_NS after its removal, and
 * only for a family with as many cells per series as the record owns (its
 * own count, layout 5: its family record may have been reclaimed and
 * rebuilt with another shape since, reclaim.c).  By then every handle
 * kept across the removal drops its writes (remove.c moved the record's
 * incarnation), and a write that had passed its check before the removal
 * has landed: on the per-CPU path the check and the add are one rseq
 * section, which the kernel restarts if the thread is preempted, so a
 * thread would have to run two instructions for a whole second; the
 * fallback path (no rseq) and gauges check, then store, and a thread
 * stopped between the two for longer than a second is the one case left
 * (docs/DESIGN.md, "Reuse").
 *
 * Steps, holding the family gate of the new series, and what a kill
 * (SIGKILL) after each leaves; the next holder of that gate finishes:
 *   reuse.journaled  gate_series names a candidate record with
 *                    SHMET_GATE_REUSING: nothing changed yet (a claim
 *                    of it, if any, is another family's, and stays)
 *   reuse.claimed    the record is CLAIMED for this family (no other
 *                    process takes it): the next holder puts it back,
 *                    REMOVED from now (reusable a second later)
 *   reuse.zeroed     its cells read zero in every block: the same
 *   reuse.filled     it holds the new series, state LIVE, unpublished:
 *                    the same (the journal still says reusing until the
 *                    creation's own journal replaces it)
 * then the creation's steps (gate.c) with the record as the one built: a
 * kill there leaves the record removed, for reuse again.
 */
#include "writer-private.h"

/* How long after a removal a record may be reused: SHMET_REUSE_NS, or
 * in a test build SHMETRICS_TEST_REUSE_MS (churn tests). */
static uint64_t
shmet_impl_reuse_after_ns(void)
{
#ifdef SHMET_TEST_POINTS
	const char *ms = getenv("SHMETRICS_TEST_REUSE_MS");

	if (ms && *ms)
		return (uint64_t)strtoull(ms, NULL, 10) * UINT64_C(1000000);
#endif
	return SHMET_REUSE_NS;
}

/*
 * Zero cells [cell, cell + n) in every value block, through the file:
 * other writers' blocks are not mapped here.  Only pages that hold data
 * are written (SEEK_DATA): a hole reads zero already, and writing it
 * would take memory.  0, or a negative errno.
 */
static int
shmet_impl_zero_cells(struct shmet_segment *seg, uint32_t cell, uint32_t n)
{
	static const unsigned char zeros[8u * (SHMET_MAX_BOUNDS + 2)];
	const struct shmet_seg_header *h = seg->hdr;
	const struct shmet_seg_writer *w = shmet_impl_writers(seg);
	size_t len = 8u * (size_t)n;

	for (uint32_t b = 0; b < shmet_seg_blocks(h); b++) {
		off_t at = (off_t)(h->values_off + (uint64_t)b * h->block_stride +
				   8ull * cell);
		off_t data;

		/* Acquire: a slot claimed since has its block's pages. */
		if (b < h->max_writers &&
		    SHMET_AT(load_explicit)(&w[b].state, SHMET_MO(acquire)) ==
			    SHMET_WRITER_UNUSED)
			continue;       /* never claimed: all zero */
		data = lseek(seg->fd, at, SEEK_DATA);
		if (data < 0 ? errno == ENXIO : data >= at + (off_t)len)
			continue;       /* a hole */
		if (data < 0)
			return -errno;
		for (size_t done = 0; done < len;) {
			ssize_t k = pwrite(seg->fd, zeros + done, len - done,
					   at + (off_t)done);

			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				return k < 0 ? -errno : -EIO;
			done += (size_t)k;
		}
	}
	return 0;
}

/*
 * Claim, for family record f (id fam, `count` series), a removed record
 * that a series of `cells` cells and a blob of `size` bytes may take now;
 * its id, or UINT32_MAX.  Records whose label bytes fit come first.  Each
 * candidate is named in the family's journal before the claim's CAS, and
 * the claim carries the family, so the journal's recovery puts back only
 * a claim of this family (the gate serialises them), never another
 * family's reuser's.
 */
static uint32_t
shmet_impl_claim_reusable(struct shmet_segment *seg,
			  struct shmet_seg_family *f, uint32_t fam,
			  uint32_t count, uint32_t cells, uint32_t size)
{
	struct shmet_seg_series *table = shmet_impl_series_table(seg);
	/* Relaxed: records below the cursor are complete or unpublished;
	 * the claim's CAS decides. */
	uint32_t used = SHMET_AT(load_explicit)(&seg->hdr->series_used,
						SHMET_MO(relaxed));
	uint64_t now = shmet_impl_clock_ns(CLOCK_MONOTONIC);
	uint64_t wait = shmet_impl_reuse_after_ns();

	if (used > seg->hdr->max_series)
		used = seg->hdr->max_series;
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t k = 0; k < used; k++) {
			uint32_t id = (seg->reuse_cursor + k) % used;
			struct shmet_seg_series *r = &table[id];
			uint32_t state = SHMET_SERIES_REMOVED;
			/* Acquire: pairs with the remover's release. */
			uint64_t removed = SHMET_AT(load_explicit)(
				&r->removed_ns, SHMET_MO(acquire));

			if (SHMET_AT(load_explicit)(&r->state,
						    SHMET_MO(relaxed)) !=
				    SHMET_SERIES_REMOVED ||
			    removed == 0 || now < removed + wait ||
			    r->cells != cells ||
			    (pass == 0 && r->blob_cap < size))
				continue;
			/* Relaxed count: only gate holders write it;
			 * release journal: a recovering holder sees it. */
			SHMET_AT(store_explicit)(&f->gate_count, count,
						 SHMET_MO(relaxed));
			SHMET_AT(store_explicit)(&f->gate_series,
						 (id + 1) | SHMET_GATE_REUSING,
						 SHMET_MO(release));
			SHMET_POINT("reuse.journaled");
			/* Acq_rel: one claimer wins; it sees the remover's
			 * writes, and its own come after. */
			if (!SHMET_AT(compare_exchange_strong_explicit)(
				    &r->state, &state,
				    shmet_impl_claim_value(fam),
				    SHMET_MO(acq_rel), SHMET_MO(relaxed)))
				continue;
			seg->reuse_cursor = id + 1;
			return id;
		}
	SHMET_AT(store_explicit)(&f->gate_series, 0, SHMET_MO(release));
	return UINT32_MAX;
}

/* A reuse that cannot go on: the record back, the journal cleared. */
static int
shmet_impl_reuse_abandon(struct shmet_segment *seg,
			 struct shmet_seg_family *f, uint32_t id)
{
	shmet_impl_unclaim(seg, id);
	/* Release: as every store of the journal. */
	SHMET_AT(store_explicit)(&f->gate_series, 0, SHMET_MO(release));
	return -ENOSPC;
}

/* The segment has no room for one more series of fam with a blob of
 * size bytes. */
SHMET_W int
shmet_impl_segment_short(const struct shmet_segment *seg,
			 const struct shmet_family *fam, uint32_t size)
{
	const struct shmet_seg_header *h = seg->hdr;

	/* Relaxed: a hint; allocation decides (state.c). */
	return SHMET_AT(load_explicit)(&h->series_used, SHMET_MO(relaxed)) >=
		       h->max_series ||
	       (uint64_t)SHMET_AT(load_explicit)(&h->cells_used,
						 SHMET_MO(relaxed)) +
			       fam->cells >
		       h->cells_per_block ||
	       (uint64_t)SHMET_AT(load_explicit)(&h->strings_used,
						 SHMET_MO(relaxed)) +
			       shmet_seg_align(size, 16) >
		       h->string_bytes;
}

/*
 * Under fam's gate, with the family's count `count`: take a removed
 * record for the series of values (hash), as build_series would build one.
 * 0 and *out, or -ENOSPC if none may be reused now.
 */
SHMET_W int
shmet_impl_reuse_series(const struct shmet_family *fam, uint32_t count,
			uint32_t n, const char *const *values,
			const size_t *lens, uint64_t hash, uint32_t *out)
{
	struct shmet_segment *seg = fam->seg;
	struct shmet_seg_family *f = &shmet_impl_families(seg)[fam->id];
	uint32_t size = shmet_seg_blob_size(n, lens), id;
	struct shmet_seg_series *r;
	struct shmet_seg_str blob;
	uint32_t cap;

	id = shmet_impl_claim_reusable(seg, f, fam->id, count, fam->cells,
				       size);
	if (id == UINT32_MAX)
		return -ENOSPC;
	SHMET_POINT("reuse.claimed");
	r = &shmet_impl_series_table(seg)[id];
	/* Release: resolvers and readers that read the record's fields
	 * now see another incarnation and pass it over (series.c).  A
	 * handle kept across the removal drops its writes already. */
	SHMET_AT(fetch_add_explicit)(&r->gen, 1, SHMET_MO(release));
	/* Relaxed: a claimed record is nobody else's to reuse; the claim's
	 * CAS, not this, keeps other claimers off. */
	SHMET_AT(store_explicit)(&r->removed_ns, 0, SHMET_MO(relaxed));
	if (shmet_impl_zero_cells(seg, r->first_cell, fam->cells) < 0)
		return shmet_impl_reuse_abandon(seg, f, id);
	SHMET_POINT("reuse.zeroed");
	if (size <= r->blob_cap) {
		blob.off = r->labels.off;
		blob.len = size;
		cap = r->blob_cap;
	} else if (shmet_impl_put_blob(seg, n, values, lens, &blob, &cap) < 0) {
		return shmet_impl_reuse_abandon(seg, f, id);
	}
	shmet_seg_blob_write(shmet_impl_pool(seg) + blob.off, n, values, lens);
	r->labels = blob;
	r->blob_cap = cap;
	r->family = fam->id;
	r->hash = hash;
	/* Relaxed: the sweep's figures (expire.c), published with the
	 * state's release below. */
	SHMET_AT(store_explicit)(&r->digest, 0, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&r->changed_ns,
				 shmet_impl_clock_ns(CLOCK_MONOTONIC),
				 SHMET_MO(relaxed));
	/* Release: whoever sees it LIVE sees the fields above. */
	SHMET_AT(store_explicit)(&r->state, SHMET_SERIES_LIVE,
				 SHMET_MO(release));
	SHMET_POINT("reuse.filled");
	*out = id;
	return 0;
}
