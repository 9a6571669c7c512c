/*
 * shmetrics writer: reserving a segment's pages.  Every block a writer
 * uses is fallocated (never past RLIMIT_FSIZE), its pages touched so
 * that a write never faults on a hole, and its reserved extent published
 * to readers.  Slots, CPU blocks and the fallback block all reserve
 * through here, so this file calls no other protocol.
 */
#include "writer-private.h"

/*
 * 0 if growing fd's file to `end` bytes keeps within RLIMIT_FSIZE, else
 * -EFBIG.  The kernel answers a write, ftruncate or fallocate that grows a
 * file past the limit with SIGXFSZ, whose default action kills the
 * process, and blocking it would change the application's disposition:
 * so the writer asks first.  As the kernel does, only growth past the
 * current size counts: value blocks lie inside the file, and a limit
 * lowered after creation must not refuse them.  A race remains only with
 * another thread lowering the limit, or a process shrinking the segment,
 * between the check and the call; nothing in shmetrics does either.
 */
SHMET_W int
shmet_impl_fsize_ok(int fd, uint64_t end)
{
	struct rlimit rl;
	struct stat st;

	if (getrlimit(RLIMIT_FSIZE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    end <= (uint64_t)rl.rlim_cur)
		return 0;
	if (fstat(fd, &st) == 0 && end <= (uint64_t)st.st_size)
		return 0;
	return -EFBIG;
}

/* posix_fallocate (0 or a positive errno), never past RLIMIT_FSIZE.
 * Async-signal-safe as its calls are (the fork child reserves too). */
SHMET_W int
shmet_impl_fallocate(int fd, uint64_t off, uint64_t len)
{
	if (shmet_impl_fsize_ok(fd, off + len) < 0)
		return EFBIG;
	return posix_fallocate(fd, (off_t)off, (off_t)len);
}

/*
 * Tell readers that our block's first `bytes` are reserved: they read a
 * block only that far, so a scrape never touches (and so never allocates,
 * or faults on) a page no writer reserved.  The extent only grows; it
 * survives takeovers, as the pages do.  Release: pairs with the readers'
 * acquire load, after which the pages exist (fallocate has returned).
 */
SHMET_W void
shmet_impl_publish_extent(struct shmet_segment *seg, uint32_t slot,
			  uint64_t bytes)
{
	SHMET_ATOMIC(uint64_t) *extent =
		slot < seg->hdr->max_writers
			? &shmet_impl_writers(seg)[slot].reserved_bytes
			: &seg->hdr->fallback_reserved_bytes;
	uint64_t cur = SHMET_AT(load_explicit)(extent, SHMET_MO(relaxed));

	while (cur < bytes &&
	       !SHMET_AT(compare_exchange_weak_explicit)(
		       extent, &cur, bytes, SHMET_MO(release),
		       SHMET_MO(relaxed)))
		;
}

/*
 * Make the pages [from, to) of a block we map at `block` data to readers:
 * a page fallocated but never written is a hole to SEEK_DATA, which
 * readers trust for 100 ms (docs/DESIGN.md, "Holes"), so a first write
 * there would show that much later.  Done for the per-CPU blocks
 * (percpu.c), where counters and histograms count, and for each gauge's
 * cells in the process block (series.c); not for a whole process block,
 * which holds only gauges and the fallback's counts: a touched one would
 * be read whole at every scrape, which would grow with the processes
 * again.  A compare-and-swap of a cell's value
 * with itself changes nothing, whoever else writes the cell meanwhile
 * (it fails, or stores what was there); not an add of 0, which compilers
 * may turn into a load.  Async-signal-safe.
 */
SHMET_W void
shmet_impl_touch(unsigned char *block, uint64_t from, uint64_t to)
{
	for (uint64_t b = from; b < to; b += SHMET_PAGE) {
		shmet_impl_cell *c = (shmet_impl_cell *)(void *)(block + b);
		/* Relaxed: it orders nothing. */
		uint64_t v = SHMET_AT(load_explicit)(c, SHMET_MO(relaxed));

		SHMET_AT(compare_exchange_strong_explicit)(
			c, &v, v, SHMET_MO(relaxed), SHMET_MO(relaxed));
	}
}

/*
 * How far a block is reserved so that it holds the cells below end_cell:
 * in steps of 64 KiB (a registration then rarely costs an fallocate),
 * never past limit (the block's size).
 */
SHMET_W uint64_t
shmet_impl_reserve_end(uint64_t end_cell, uint64_t limit)
{
	uint64_t want = shmet_seg_align(end_cell * 8, 65536);

	return want > limit ? limit : want;
}
