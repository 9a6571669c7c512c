/*
 * shmetrics writer: close.  Handles the application still holds stay
 * safe and record nothing: what they can reach of the process block, the
 * per-CPU blocks and the string pool (a histogram's bounds) becomes
 * private zero pages, the rest of the segment is unmapped, so 1,000
 * open/close cycles cost no address space (tests/test-segment.c).
 *
 * Steps, and what a kill after each leaves:
 *   close.released   the slot is RELEASED, the descriptions still open:
 *                    the kernel drops their locks with the process
 */
#include "writer-private.h"

#define MIN_U32(a, b) ((a) < (b) ? (a) : (b))

/*
 * After close, a block mapping holds only what handles can still reach:
 * a handle is returned once its cells are reserved, so every handle's
 * cells (and a thread's, at the same cells of its own block) lie below
 * `reach`, our reservation of the block.  Those pages become private
 * zero pages (writes record nothing and cannot fault); the rest of the
 * block is unmapped.  What a closed segment keeps of the address space
 * is therefore its reserved extent (a multiple of 64 KiB), per block, and
 * nothing for a segment nobody registered in; its memory, the pages
 * written after close.
 */
SHMET_W void
shmet_impl_retire_block(void *block, size_t size, uint64_t reach)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t keep = reach < size ? (size_t)reach : size;

	keep = (keep + page - 1) / page * page;
	if (keep > size)
		keep = size;
	if (keep > 0)
		mmap(block, keep, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		     -1, 0);
	if (keep < size)
		munmap((unsigned char *)block + keep, size - keep);
}

/* Mark in map (one bit a page of seg->base) the pages [p, p + len). */
SHMET_W void
shmet_impl_mark_pages(const struct shmet_segment *seg, unsigned char *map,
		      const unsigned char *p, size_t len, size_t page)
{
	size_t first = (size_t)(p - seg->base) / page, last;

	if (len == 0)
		return;
	last = ((size_t)(p - seg->base) + len - 1) / page;
	for (size_t i = first; i <= last; i++)
		map[i / 8] |= (unsigned char)(1u << (i % 8));
}

/*
 * Replace the run of `n` pages at `at`: with zero pages if keep, else
 * with nothing.
 */
SHMET_W void
shmet_impl_unmap_run(unsigned char *at, size_t n, int keep)
{
	if (keep)
		mmap(at, n, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		     -1, 0);
	else
		munmap(at, n);
}

/*
 * Close's part of the metadata mapping.  A histogram handle reads its
 * bucket bounds from the string pool on every observation (the inline
 * hot path), so the pages that hold some histogram family's bounds stay
 * mapped, as zero pages: bounds of 0 still send every observation to one
 * of the handle's own cells; so do the fallback block's reserved pages,
 * where counter and histogram handles may fall back (fallback.c), and the
 * series records in use.  The rest (metadata, retired block) is
 * unmapped.  Without memory for the page map, all of it becomes zero
 * pages: safe, at the cost of the address space.
 */
SHMET_W void
shmet_impl_retire_meta(struct shmet_segment *seg)
{
	const struct shmet_seg_header *h = seg->hdr;
	const struct shmet_seg_family *fams = shmet_impl_families(seg);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t pages = (seg->size + page - 1) / page, run = 0;
	uint32_t n = SHMET_AT(load_explicit)(&seg->hdr->families_used,
					     SHMET_MO(relaxed));
	unsigned char *map = (unsigned char *)calloc(pages / 8 + 1, 1);

	if (!map) {
		shmet_impl_unmap_run(seg->base, seg->size, 1);
		return;
	}
	/* Relaxed above: close runs alone; a record allocated later is no
	 * handle's of ours. */
	for (uint32_t i = 0; i < n && i < h->max_families; i++) {
		const unsigned char *b = shmet_impl_str(seg, fams[i].bounds);

		if (fams[i].type == SHMET_TYPE_HISTOGRAM && b)
			shmet_impl_mark_pages(seg, map, b, fams[i].bounds.len,
					      page);
	}
	/* Every handle compares its series record's incarnation (layout.h,
	 * gen) before it writes: the records in use stay, as zero pages
	 * (handles then drop their writes, or write their zero pages). */
	shmet_impl_mark_pages(
		seg, map, (const unsigned char *)shmet_impl_series_table(seg),
		(size_t)MIN_U32(SHMET_AT(load_explicit)(&h->series_used,
							SHMET_MO(relaxed)),
				h->max_series) *
			sizeof(struct shmet_seg_series),
		page);
	shmet_impl_mark_pages(seg, map,
			      (const unsigned char *)shmet_impl_fallback_cells(seg),
			      (size_t)shmet_impl_fallback_reach(seg), page);
	for (size_t i = 1; i <= pages; i++) {
		int keep = (map[run / 8] >> (run % 8)) & 1;

		if (i < pages && ((map[i / 8] >> (i % 8)) & 1) == keep)
			continue;
		shmet_impl_unmap_run(seg->base + run * page,
				     (i - run) * page, keep);
		run = i;
	}
	free(map);
}

/*
 * Close's part of the CPU blocks: a handle reaches the cells below the
 * reserved watermark of each (percpu.c), which become zero pages; the
 * rest is unmapped.  A closed segment keeps cpu_blocks x the watermark
 * of address space, none if it had no counter or histogram.
 */
static void
shmet_impl_retire_cpus(struct shmet_segment *seg)
{
	uint64_t stride = seg->hdr->block_stride;
	/* Relaxed: close runs alone; a later raise is no handle's of ours. */
	uint64_t mark = SHMET_AT(load_explicit)(&seg->hdr->cpu_reserved_bytes,
						SHMET_MO(relaxed));

	if (!seg->cpus)
		return;
	for (uint32_t cpu = 0; cpu < seg->hdr->cpu_blocks; cpu++)
		shmet_impl_retire_block(seg->cpus + cpu * stride,
					(size_t)stride, mark);
	seg->cpus = NULL;
}

static void
shmet_close_steps(struct shmet_segment *seg)
{
	if (!seg->attached)
		return;
	shmet_impl_forklist_remove(seg);
	/* Only the process that took the slot releases it: a fork child
	 * whose own claim failed still points at its parent's slot. */
	if (seg->block && seg->slot < seg->hdr->max_writers &&
	    seg->owner_pid == getpid()) {
		/* Our registrant bits stay (registrants.c): they stop
		 * counting when the last description holding our slot's
		 * lock closes, which is not ours if a fork child is still
		 * setting them in its own slot. */
		/* Release: pairs with the acquire in take_slot and readers. */
		SHMET_AT(store_explicit)(
			&shmet_impl_writers(seg)[seg->slot].state,
			SHMET_WRITER_RELEASED, SHMET_MO(release));
	}
	SHMET_POINT("close.released");
	/*
	 * Handles the application still holds must stay safe and record
	 * nothing: the block's cells they can reach become private zero
	 * pages, the rest of it is unmapped.  Every call but the hot path
	 * checks seg->attached first; the hot path reads only a histogram's
	 * bounds from the metadata (shmet_impl_retire_meta).
	 */
	if (seg->block)
		/* Relaxed: process-local; close runs alone. */
		shmet_impl_retire_block(
			(void *)seg->block, seg->block_size,
			SHMET_AT(load_explicit)(&seg->reserved,
						SHMET_MO(relaxed)));
	shmet_impl_retire_cpus(seg);     /* reads the header: before */
	/* No exemplar write is in it: they run under the fork list's lock,
	 * and the segment left the list above. */
	shmet_impl_exemplars_close(seg);
	shmet_impl_retire_meta(seg);
	close(seg->fd);                 /* drops the liveness lock */
	if (seg->claim_fd >= 0)
		close(seg->claim_fd);   /* drops the claim */
	seg->fd = -1;
	seg->claim_fd = -1;
	seg->base = NULL;
	seg->hdr = NULL;
	seg->attached = 0;
	shmet_impl_registrants_close(seg);
}

/* Not a cancellation point (docs/DESIGN.md, "Cancellation"). */
void
shmet_close(struct shmet_segment *seg)
{
	int old = shmet_impl_cancel_off();

	shmet_close_steps(seg);
	shmet_impl_cancel_restore(old);
}
