/*
 * shmetrics writer: where a new series' value cells go.  Counters and
 * histograms take theirs from cells_used; gauges from the current gauge
 * chunk (format.h, "Gauge chunks"; layout.h "Cells"), so that each writer
 * block's gauges, all that a scrape reads of it, lie in a few dense pages.
 *
 * The chunk cursor (header gauge_chunk: next free cell, chunk end) is
 * shared by every process and moved by CAS, relaxed like the other
 * allocation cursors (writer-private.h, "Allocation cursors"): it hands
 * out disjoint ranges and orders nothing.  When the chunk is full, a
 * process carves a new one from cells_used and installs it.  Two that do
 * so at once each carved one; the loser gives its chunk back if nothing
 * was carved after it (cells_used still ends where the chunk ends), else
 * it stays unused: a lost cell range, as a kill between a carve and the
 * install leaves one.  Neither makes two series share a cell.
 *
 * Steps of a gauge's cells, and what a kill after each leaves (the
 * series is not built yet: the registration's record and label bytes
 * leak with its cells, as writer-private.h says of any registration
 * killed before it published):
 *   cells.carved     a chunk carved from cells_used, not installed: a
 *                    lost range of one chunk (and up to 7 cells of
 *                    alignment before it); the cursor still hands out
 *                    the old chunk's cells, or the next carver's
 *   cells.installed  the cursor names our chunk, our n cells taken
 *                    from its start: n cells lost, the rest of the chunk
 *                    handed out to the next gauges
 *   cells.taken      n cells taken from the current chunk: n cells lost
 *   cells.returned   a carved chunk that lost the install race went back
 *                    to cells_used (or stayed lost if something was
 *                    carved after it); our n cells came from the winner's
 *                    chunk: n cells lost
 * In every case no cell is handed out twice: the cursor and cells_used
 * only move by CAS over ranges nobody else holds, and cells_used only
 * goes back over a chunk that was never installed and is still its last
 * carve.  A cancel cannot stop a thread here (no cancellation point; the
 * registration runs with cancellation off).
 *
 * A removed series' record is reused for a series of any type with as
 * many cells (reuse.c), so churn across types can put a counter in a
 * chunk or a gauge outside one: counted and read right, only read as
 * gauges were before layout 6.
 */
#include "writer-private.h"

/*
 * Put the unused chunk [start, start + size) back into cells_used if it
 * is still the last thing carved from it.
 */
static void
shmet_impl_return_chunk(struct shmet_segment *seg, uint32_t start,
			uint32_t size)
{
	uint32_t end = start + size;

	/* Relaxed: see the top of the file. */
	SHMET_AT(compare_exchange_strong_explicit)(&seg->hdr->cells_used, &end,
						   start, SHMET_MO(relaxed),
						   SHMET_MO(relaxed));
}

/* n cells for a gauge series from the gauge chunk; -1 when they do not
 * fit in the segment. */
static int
shmet_impl_alloc_chunked(struct shmet_segment *seg, uint32_t n, uint32_t *out)
{
	SHMET_ATOMIC(uint64_t) *cursor = &seg->hdr->gauge_chunk;
	uint32_t cap = seg->hdr->cells_per_block, fresh = UINT32_MAX;
	uint32_t size = shmet_seg_gauge_chunk_cells(cap);
	/* Relaxed: see the top of the file. */
	uint64_t cur = SHMET_AT(load_explicit)(cursor, SHMET_MO(relaxed));

	for (;;) {
		uint32_t next = shmet_seg_gauge_chunk_next(cur);
		uint32_t end = shmet_seg_gauge_chunk_end(cur);

		/* room in the current chunk (a corrupt cursor has none) */
		if (end <= cap && next <= end && end - next >= n) {
			if (SHMET_AT(compare_exchange_weak_explicit)(
				    cursor, &cur,
				    shmet_seg_gauge_chunk(next + n, end),
				    SHMET_MO(relaxed), SHMET_MO(relaxed))) {
				SHMET_POINT("cells.taken");
				if (fresh != UINT32_MAX) {
					shmet_impl_return_chunk(seg, fresh, size);
					SHMET_POINT("cells.returned");
				}
				*out = next;
				return 0;
			}
			continue;
		}
		if (fresh == UINT32_MAX) {
			if (shmet_impl_alloc(&seg->hdr->cells_used, cap, size,
					     SHMET_GAUGE_CHUNK_ALIGN,
					     &fresh) < 0)
				/* no room for a chunk: the cells alone, if
				 * they fit */
				return shmet_impl_alloc(&seg->hdr->cells_used,
							cap, n, 1, out);
			SHMET_POINT("cells.carved");
		}
		if (SHMET_AT(compare_exchange_weak_explicit)(
			    cursor, &cur,
			    shmet_seg_gauge_chunk(fresh + n, fresh + size),
			    SHMET_MO(relaxed), SHMET_MO(relaxed))) {
			SHMET_POINT("cells.installed");
			*out = fresh;
			return 0;
		}
	}
}

/* Cells for a new series of family fam: 0 and *out, or -1 when the
 * segment has no room for them. */
SHMET_W int
shmet_impl_alloc_cells(struct shmet_segment *seg,
		       const struct shmet_family *fam, uint32_t *out)
{
	if (shmet_seg_cells_chunked(fam->type) &&
	    fam->cells <= shmet_seg_gauge_chunk_cells(seg->hdr->cells_per_block))
		return shmet_impl_alloc_chunked(seg, fam->cells, out);
	return shmet_impl_alloc(&seg->hdr->cells_used,
				seg->hdr->cells_per_block, fam->cells, 1, out);
}

/*
 * The spare of a failed registration (series.c) keeps its cells for the
 * next series that needs as many from the same place: a counter taking a
 * gauge chunk's cells, or a gauge a counter's, would be counted right but
 * read as if gauges were scattered again.
 */
SHMET_W uint32_t
shmet_impl_cells_kind(const struct shmet_family *fam)
{
	return fam->cells | (shmet_seg_cells_chunked(fam->type) ? 1u << 31 : 0);
}
