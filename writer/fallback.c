/*
 * shmetrics writer: where a counter's or histogram's atomic fallback
 * counts (layout.h, "Fallback cells"; docs/DESIGN.md, "Fallback cells").
 *
 * The hot path adds to a CPU's cell inside an rseq section; when it
 * cannot (a thread without rseq, a CPU beyond cpu_blocks, a section the
 * kernel aborted) it adds with a relaxed atomic to the handle's `cell`.
 * For a process with rseq that happens rarely, so its handles' `cell` is
 * in the shared fallback block: its own block then holds only gauges, and
 * a reader reads only the gauge cells of it, so a scrape does not grow
 * with processes.  A process without rseq counts everything in its own
 * block (no contention between processes) and sets its slot's
 * counts_here, so that readers sum that block whole.
 */
#include "writer-private.h"

/*
 * Our mapping of the fallback block, right after the retired block in
 * seg->base (segment.c, shmet_impl_map), or NULL before the map.
 */
SHMET_W shmet_impl_cell *
shmet_impl_fallback_cells(const struct shmet_segment *seg)
{
	if (!seg->base)
		return NULL;
	return (shmet_impl_cell *)(void *)(seg->base + seg->hdr->values_off +
					   seg->hdr->block_stride);
}

/* The calling thread has no rseq (SHMETRICS_NO_RSEQ=1, valgrind, refused). */
static int
shmet_impl_thread_without_rseq(void)
{
	struct shmet_impl_rseq *rs = shmet_impl_rseq_tls;

	if (!rs)
		rs = shmet_impl_rseq_resolve();
	return *(volatile const int32_t *)&rs->cpu_id < 0;
}

/*
 * A claim of slot (slot.c) decides where this process's counts fall
 * back: into its own block when it has no rseq or no mapping of the CPU
 * blocks (then nearly every write falls back, and the shared block would
 * make processes contend), or when it is a fork child (fixed) whose
 * parent counted in its own block: the child's inherited handles point
 * into the block the fork just remapped to the child's slot (a parent in
 * the fallback slot counted there too).  Called before any handle can
 * write the block.
 */
SHMET_W void
shmet_impl_claimed_counts(struct shmet_segment *seg, uint32_t slot,
			  uint32_t old_slot, int fixed)
{
	struct shmet_seg_writer *w = shmet_impl_writers(seg);
	uint32_t n = seg->hdr->max_writers;
	int here;

	if (slot >= n)
		return;                 /* the fallback block: read when used */
	if (fixed)
		/* Relaxed: our parent's flag, stored before the fork by the
		 * parent or its slot's earlier owner. */
		here = old_slot >= n ||
		       SHMET_AT(load_explicit)(&w[old_slot].counts_here,
					       SHMET_MO(relaxed)) != 0;
	else
		here = !seg->cpus || shmet_impl_thread_without_rseq();
	/*
	 * Release: pairs with readers' acquire load, after which they sum
	 * the block's counter cells; stored before any of our handles can
	 * write them.  Never cleared: a dead writer's counts stay, and a
	 * takeover's new owner finds it set and counts here too.
	 */
	if (here && !SHMET_AT(load_explicit)(&w[slot].counts_here,
					     SHMET_MO(relaxed)))
		SHMET_AT(store_explicit)(&w[slot].counts_here, 1,
					 SHMET_MO(release));
}

/*
 * Reserve (fallocate) the fallback block's pages below end_cell.  The
 * header's fallback_reserved_bytes says how far it is reserved; it is
 * raised (a CAS-max, slot.c) only after a fallocate returned, so a
 * registration below it makes no syscall.  Racing processes may
 * fallocate a range twice, which is harmless.  The reserved pages are
 * then touched (slot.c, shmet_impl_touch), as the CPU blocks' are: a
 * reader trusts SEEK_DATA for 100 ms, and an abort's count in a page that
 * was a hole would show that much later.  So readers read this one block
 * as far as cells are in use, whatever the processes.
 */
static int
shmet_impl_reserve_fallback(struct shmet_segment *seg, uint64_t end_cell)
{
	const struct shmet_seg_header *h = seg->hdr;
	/* Acquire: pairs with the release CAS of shmet_impl_publish_extent
	 * (that writer's fallocate returned before it). */
	uint64_t have = SHMET_AT(load_explicit)(&seg->hdr->fallback_reserved_bytes,
						SHMET_MO(acquire));
	uint64_t want = shmet_impl_reserve_end(end_cell, h->block_stride);
	int rc;

	if (end_cell * 8 <= have)
		return 0;
	if (have > want)
		have = 0;               /* an extent past the block: not ours */
	rc = shmet_impl_fallocate(seg->fd,
				  h->values_off + (uint64_t)h->max_writers *
							  h->block_stride +
					  have,
				  want - have);
	if (rc != 0)
		return -rc;
	shmet_impl_touch((unsigned char *)shmet_impl_fallback_cells(seg), have,
			 want);
	shmet_impl_publish_extent(seg, h->max_writers, want);
	return 0;
}

/*
 * The `cell` of a new counter or histogram handle whose series spans
 * [cell, cell + cells): our own block if our slot counts here (or is the
 * fallback slot, whose block is the fallback block), else the shared
 * fallback block.  If that cannot be reserved, our slot starts counting
 * here instead: exact either way, as readers read both.
 */
SHMET_W shmet_impl_cell *
shmet_impl_count_cell(struct shmet_segment *seg, uint32_t cell, uint32_t cells)
{
	shmet_impl_cell *fb = shmet_impl_fallback_cells(seg);
	struct shmet_seg_writer *w;

	if (seg->slot >= seg->hdr->max_writers)
		return &seg->block[cell];
	w = &shmet_impl_writers(seg)[seg->slot];
	/* Relaxed: our own flag (claimed_counts), or an earlier owner's. */
	if (SHMET_AT(load_explicit)(&w->counts_here, SHMET_MO(relaxed)))
		return &seg->block[cell];
	if (!fb || shmet_impl_reserve_fallback(seg, (uint64_t)cell + cells) < 0) {
		/* Release: as in claimed_counts, before the handle exists. */
		SHMET_AT(store_explicit)(&w->counts_here, 1, SHMET_MO(release));
		return &seg->block[cell];
	}
	/* Release: pairs with readers' acquire, after which they read the
	 * fallback block; stored before the handle is returned. */
	if (!SHMET_AT(load_explicit)(&seg->hdr->fallback_counts,
				     SHMET_MO(relaxed)))
		SHMET_AT(store_explicit)(&seg->hdr->fallback_counts, 1,
					 SHMET_MO(release));
	return &fb[cell];
}

/*
 * How far into the fallback block handles may reach: its reserved
 * extent (close.c keeps that much mapped, as zero pages).
 */
SHMET_W uint64_t
shmet_impl_fallback_reach(const struct shmet_segment *seg)
{
	/* Relaxed: close runs alone; a later raise is no handle's of ours. */
	uint64_t r = SHMET_AT(load_explicit)(&seg->hdr->fallback_reserved_bytes,
					     SHMET_MO(relaxed));

	return r < seg->hdr->block_stride ? r : seg->hdr->block_stride;
}

/*
 * An observation that no CPU cell took (inline-impl.h; the hot path's
 * slow path, out of line): into the handle's fallback cells, unless the
 * handle's series was removed.
 */
void
shmet_impl_observe_fallback(const struct shmet_histogram *h, uint32_t i,
			    double sum, int bucket)
{
	if (!shmet_impl_stale(h->gen, h->expect))
		shmet_impl_observe_atomic(h, i, sum, bucket);
}

/* The bucket of v among n bounds by bisection (inline-impl.h, for more
 * than 16 bounds): the first bound v does not exceed, NaN past them all. */
uint32_t
shmet_impl_bucket_search(const double *b, uint32_t n, double v)
{
	uint32_t i = 0;

	while (i < n) {
		uint32_t mid = (i + n) / 2;

		if (v <= b[mid])
			n = mid;
		else
			i = mid + 1;
	}
	return i;
}
