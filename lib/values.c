/*
 * One scrape: sum the counter and histogram cells of the per-CPU blocks
 * and of the blocks that take the writers' atomic fallback (the shared
 * fallback block, and the writer blocks whose counts_here is set), and
 * combine the gauge cells of every writer block by their mode.  A writer
 * block without counts_here holds only gauges (layout.h, "Fallback
 * cells"), so only its gauge cells are read: the scrape grows with the
 * gauges processes hold, not with the processes themselves.
 *
 * The sum runs block by block over contiguous cells, so it streams memory:
 * every cell adds into u[] as an integer, and the float cells (listed by
 * the index) add into d[] as doubles; an integer cell is never
 * reinterpreted as a double, so no denormal ever reaches the FPU.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "datamap.h"
#include "reader-private.h"
#include "trust.h"
#include "values-private.h"

#ifdef __has_feature
#define __has_feature_thread_sanitizer __has_feature(thread_sanitizer)
#else
#define __has_feature_thread_sanitizer 0
#endif

static const _Atomic uint64_t *
block_cells(const struct shmet_reader *r, uint32_t block)
{
	return (const _Atomic uint64_t *)(r->base + r->hdr.values_off +
					  (uint64_t)block * r->hdr.block_stride);
}

/*
 * Sum a block's cells into u[] as integers.
 *
 * Each cell must be read in one access (a torn read of a counter could go
 * backwards).  The portable loop does one relaxed 8-byte atomic load per
 * cell.  On x86-64 CPUs with AVX, Intel and AMD guarantee that an aligned
 * 16-byte SSE load is a single atomic access, so two cells at a time are
 * read as atomically as the scalar loop reads one, and the adds vectorise:
 * about 3x faster on this machine kind.  Blocks are page aligned, so cell
 * pairs from an even index are 16-byte aligned.  Under TSan the scalar
 * loop runs, so that the reads stay visible to it as atomics.
 */
static void
sum_ints_scalar(uint64_t *u, const _Atomic uint64_t *cells, uint32_t n)
{
	for (uint32_t c = 0; c < n; c++)
		/* Relaxed: see the file comment of reader.c. */
		u[c] += atomic_load_explicit(&cells[c], memory_order_relaxed);
}

#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && \
	!__has_feature_thread_sanitizer
#include <emmintrin.h>
#define HAVE_SUM_SSE 1

static void
sum_ints_sse(uint64_t *u, const _Atomic uint64_t *cells, uint32_t n)
{
	const __m128i *src = (const __m128i *)(const void *)cells;
	uint32_t pairs = n / 2;

	for (uint32_t i = 0; i < pairs; i++) {
		__m128i x = _mm_load_si128(src + i);     /* atomic, see above */
		__m128i acc = _mm_loadu_si128((const __m128i *)(u + 2 * i));

		_mm_storeu_si128((__m128i *)(u + 2 * i), _mm_add_epi64(acc, x));
	}
	if (n & 1)
		sum_ints_scalar(u + n - 1, cells + n - 1, 1);
}
#endif

static void
sum_ints(uint64_t *u, const _Atomic uint64_t *cells, uint32_t n)
{
#ifdef HAVE_SUM_SSE
	static int sse_atomic = -1;

	if (sse_atomic < 0)
		sse_atomic = __builtin_cpu_supports("avx") ? 1 : 0;
	if (sse_atomic) {
		sum_ints_sse(u, cells, n);
		return;
	}
#endif
	sum_ints_scalar(u, cells, n);
}

/* Set the bits of the data pages of [o, end) of a block at start. */
static void
scan_pages(const struct shmet_reader *r, _Atomic uint8_t *bits,
	   uint64_t start, uint64_t o, uint64_t end)
{
	uint64_t d, h;
	int rc;

	while ((rc = shmet_priv_data_next(r->fd, o, end, &d, &h))) {
		if (rc < 0) {           /* cannot tell: all of it is data */
			d = o;
			h = end;
		}
		for (uint64_t p = (d - start) / SHMET_PAGE;
		     p < (h - start + SHMET_PAGE - 1) / SHMET_PAGE; p++)
			atomic_fetch_or_explicit(&bits[p / 8],
						 (uint8_t)(1u << (p % 8)),
						 memory_order_relaxed);
		if (rc < 0)
			break;
		o = h;
	}
}

/*
 * The pages of block b's first ncells cells that hold data, from the
 * reader's cache (reader-private.h), refreshed when older than
 * DATA_CACHE_NS.  A hole (never reserved, reserved but never written, or
 * punched) reads as zeros, so leaving it out changes no sum; reading it
 * through the mapping would allocate a tmpfs page, or raise SIGBUS when
 * tmpfs is full.  SEEK_DATA tells them apart without touching them, and
 * bounds a scrape's cost by the pages writers really wrote, whatever the
 * headers claim.  The bits are set with relaxed atomic ORs, published
 * by the release store of the time.
 *
 * gauge_pages (a block read for its gauges only: gs->pages, runs of
 * pages that hold gauge cells) limits the look to those pages.  A
 * process block is reserved far past its gauges, and SEEK_DATA walks
 * each reserved but never written page of it one by one in the kernel:
 * 64 processes' blocks of 1,000 such pages made the first scrape after
 * 100 ms idle cost twice a back-to-back one.  The key tells the two
 * looks apart, so a block that starts counting is looked at whole.
 */
static const _Atomic uint8_t *
data_pages(const struct shmet_reader *r, uint32_t b, uint32_t ncells,
	   uint64_t now, uint64_t key, const struct gauge_scratch *gauge_pages)
{
	_Atomic uint8_t *bits = r->data_bits + (size_t)b * r->data_bytes;
	uint64_t start = r->hdr.values_off + (uint64_t)b * r->hdr.block_stride;
	uint64_t end = start + shmet_seg_align(8ull * ncells, SHMET_PAGE);
	/* Acquire: pairs with the release below, so bits set by the scan
	 * that stamped this time are seen with it. */
	uint64_t checked = atomic_load_explicit(&r->data_checked[b],
						memory_order_acquire);

	if (gauge_pages)
		key ^= UINT64_C(0x5bd1e9955bd1e995);
	if (checked && now - checked < DATA_CACHE_NS &&
	    atomic_load_explicit(&r->data_key[b], memory_order_relaxed) == key)
		return bits;
	if (!gauge_pages)
		scan_pages(r, bits, start, start, end);
	else
		for (size_t i = 0; i < gauge_pages->npages; i++)
			scan_pages(r, bits, start,
				   start + (uint64_t)gauge_pages->pages[2 * i] *
						   SHMET_PAGE,
				   MIN(end, start + (uint64_t)gauge_pages
							    ->pages[2 * i + 1] *
							    SHMET_PAGE));
	atomic_store_explicit(&r->data_key[b], key, memory_order_relaxed);
	/* Release: the bits set above before the time that vouches for them. */
	atomic_store_explicit(&r->data_checked[b], now, memory_order_release);
	return bits;
}

/* Every page of the first ncells cells holds data: the common case of a
 * writer that touched all its series, summed without per-cell tests. */
static int
all_data(const _Atomic uint8_t *bits, uint32_t ncells)
{
	uint32_t pages = (ncells + PAGE_CELLS - 1) / PAGE_CELLS;

	for (uint32_t p = 0; p < pages; p++)
		/* Relaxed: see data_pages(). */
		if (!((atomic_load_explicit(&bits[p / 8],
					    memory_order_relaxed) >>
		       (p % 8)) & 1))
			return 0;
	return 1;
}

/* Some page of the first ncells cells holds data.  A block without any
 * is left out of the scrape: its holes read as zeros and its gauges as
 * never set, so nothing changes, and a hostile header with many used but
 * empty blocks of many cells costs a scan of their bitmaps, not a walk of
 * their cells (65,536 such blocks of 2^26 cells took 20 s a scrape). */
static int
any_data(const _Atomic uint8_t *bits, uint32_t ncells)
{
	uint32_t bytes = ((ncells + PAGE_CELLS - 1) / PAGE_CELLS + 7) / 8;

	for (uint32_t i = 0; i < bytes; i++)
		/* Relaxed: see data_pages(). */
		if (atomic_load_explicit(&bits[i], memory_order_relaxed))
			return 1;
	return 0;
}

/* Float cells dc[0..n) of a block, added as doubles into d[]. */
static void
sum_floats(double *d, const struct used_block *ub, const uint32_t *dc,
	   uint32_t n)
{
	const _Atomic uint64_t *cells = ub->cells;

	for (uint32_t k = 0; k < n; k++) {
		uint32_t c = dc[k];

		if (!has_data(ub, c))
			continue;
		/* Relaxed: see the file comment of reader.c. */
		uint64_t x = atomic_load_explicit(&cells[c],
						  memory_order_relaxed);
		double f;

		memcpy(&f, &x, sizeof f);
		d[c] += f;
	}
}

/* Blocks worth reading: slots ever claimed, the fallback once used, the
 * retired block, and every CPU block (its data pages say if it was used). */
static int
block_in_use(const struct shmet_reader *r, uint32_t b, uint32_t *state)
{
	const struct shmet_seg_header *h = shmet_priv_reader_live_header(r);

	if (b >= shmet_seg_cpu_block(&r->hdr, 0)) {
		*state = SHMET_WRITER_ACTIVE;
		return 1;
	}
	if (b == shmet_seg_retired_block(&r->hdr)) {
		/* read when it holds data (data pages), like a dead writer */
		*state = SHMET_WRITER_RELEASED;
		return 1;
	}
	if (b == shmet_seg_fallback_block(&r->hdr)) {
		*state = SHMET_WRITER_ACTIVE;
		/* Acquire: pairs with the release increment a writer without
		 * a slot makes before it first writes to the fallback block,
		 * and with the release store of fallback_counts before a
		 * handle that falls back there exists (writer/fallback.c). */
		return atomic_load_explicit(
			       &h->failures[SHMET_FAIL_WRITERS_FULL],
			       memory_order_acquire) > 0 ||
		       atomic_load_explicit(&h->fallback_counts,
					    memory_order_acquire) != 0;
	}
	/* Acquire: pairs with the claimer's release of state. */
	*state = atomic_load_explicit(&shmet_priv_reader_writer(r, b)->state,
				      memory_order_acquire);
	return *state != SHMET_WRITER_UNUSED;
}

/* Integer cells [c0, c0 + n) of a block, its data pages only. */
static void
sum_ints_data(uint64_t *u, const struct used_block *ub, uint32_t c0,
	      uint32_t n)
{
	uint32_t end = c0 + n;

	if (!ub->data) {
		sum_ints(u + c0, ub->cells + c0, n);
		return;
	}
	for (uint32_t lo = c0; lo < end;) {
		uint32_t hi = MIN(end, (lo / PAGE_CELLS + 1) * PAGE_CELLS);

		if (has_data(ub, lo))
			sum_ints(u + lo, ub->cells + lo, hi - lo);
		lo = hi;
	}
}

/*
 * Every cell of every block that counts (used_block.counts): added as an
 * integer into u[] (the float cells' integer sums are meaningless and
 * ignored), the float cells added as doubles into d[], chunk by chunk, so
 * that each chunk of a block is read from memory once, sequentially.
 * Then the gauges, block by block (each series sees the blocks in the
 * same order as before, so sums round the same): a writer block without
 * counts_here is read only there: its gauges' dense runs (values-gauge.c).
 * The index lists float cells and gauges in cell order.
 */
#define SUM_CHUNK 2048u                 /* cells: 16 KiB; even */

static int
sum_blocks(struct shmet_values *v, const struct shmet_index *idx,
	   const struct used_block *blocks, uint32_t nblocks,
	   struct gauge_scratch *gs)
{
	uint32_t dlo = 0;

	for (uint32_t c0 = 0; c0 < idx->ncells; c0 += SUM_CHUNK) {
		uint32_t n = MIN(SUM_CHUNK, idx->ncells - c0);
		uint32_t dhi = dlo;

		while (dhi < idx->ndcells && idx->dcells[dhi] < c0 + n)
			dhi++;
		for (uint32_t b = 0; b < nblocks; b++) {
			if (blocks[b].counts) {
				sum_ints_data(v->u, &blocks[b], c0, n);
				sum_floats(v->d, &blocks[b], idx->dcells + dlo,
					   dhi - dlo);
			}
		}
		dlo = dhi;
	}
	for (uint32_t b = 0; b < nblocks && idx->ngauges; b++)
		if (gauge_block(v, &blocks[b], idx->ngauges, gs) < 0)
			return -ENOMEM;
	gauge_scatter(v, idx->ngauges, gs);
	return 0;
}

static int
cmp_sample(const void *pa, const void *pb)
{
	const struct shmet_gauge_sample *a = pa, *b = pb;

	if (a->series != b->series)
		return (a->series > b->series) - (a->series < b->series);
	return (a->pid > b->pid) - (a->pid < b->pid);
}

/*
 * What block b's writers published about its pages (reader-private.h,
 * data_key).  Acquire: pairs with the writers' release of the extent,
 * stored after the fallocate (and the touch of its pages).  *takeovers
 * sums the writer slots seen so far; the retired block comes after them.
 */
static uint64_t
data_key(const struct shmet_reader *r, uint32_t b, uint64_t *takeovers)
{
	const struct shmet_seg_header *h = shmet_priv_reader_live_header(r);

	if (b < r->hdr.max_writers) {
		const struct shmet_seg_writer *w =
			shmet_priv_reader_writer(r, b);

		/* Relaxed: a change detector; the fold it announces is
		 * read through the retired block's page map anyway. */
		*takeovers += atomic_load_explicit(&w->takeovers,
						   memory_order_relaxed);
		return atomic_load_explicit(&w->reserved_bytes,
					    memory_order_acquire);
	}
	if (b == shmet_seg_fallback_block(&r->hdr))
		return atomic_load_explicit(&h->fallback_reserved_bytes,
					    memory_order_acquire);
	if (b == shmet_seg_retired_block(&r->hdr))
		return *takeovers;
	/* a CPU block: the watermark every CPU block is reserved to */
	return atomic_load_explicit(&h->cpu_reserved_bytes,
				    memory_order_acquire);
}

/* The fold journal (layout.h, line 6) for the retired block's ub, as
 * trust.c checked it. */
static void
read_fold_journal(const struct shmet_reader *r, const struct shmet_index *idx,
		  struct used_block *ub)
{
	const struct shmet_seg_header *h = shmet_priv_reader_live_header(r);
	uint32_t slot, c;

	ub->fold_pending = 0;
	if (!trust_fold_journal(r, idx->ncells, &slot, &c))
		return;
	/* Relaxed: the dead writer's stamp, zeroed by the folder once its
	 * fold stands. */
	if (atomic_load_explicit(&block_cells(r, slot)
					 [shmet_seg_cell_gauge_stamp(c)],
				 memory_order_relaxed) == 0)
		return;
	ub->fold_pending = 1;
	ub->fold_cell = c;
	ub->fold_bits = atomic_load_explicit(&h->fold_value,
					     memory_order_relaxed);
	ub->fold_stamp = atomic_load_explicit(&h->fold_stamp,
					      memory_order_relaxed);
}

/* The reads of one scrape: block states, data pages, cells. */
static int
read_blocks(const struct shmet_reader *r, const struct shmet_index *idx,
	    struct shmet_values *v, struct used_block *blocks,
	    struct gauge_scratch *gs)
{
	uint64_t now = reader_now_ns(), takeovers = 0;

	for (uint32_t b = 0; b < shmet_seg_blocks(&r->hdr); b++) {
		struct used_block *ub = &blocks[v->blocks_read];
		uint32_t state;
		uint64_t key;

		if (!block_in_use(r, b, &state))
			continue;
		/* and the generation: a registration touches its gauge's
		 * pages (writer/series.c) after publishing, and a new series
		 * moves the generation */
		key = data_key(r, b, &takeovers) ^
		      (idx->generation * UINT64_C(0x9e3779b97f4a7c15));
		ub->cells = block_cells(r, b);
		ub->kind = b < r->hdr.max_writers ? BLOCK_WRITER
			   : b == shmet_seg_fallback_block(&r->hdr)
				   ? BLOCK_FALLBACK
			   : b == shmet_seg_retired_block(&r->hdr)
				   ? BLOCK_RETIRED
				   : BLOCK_CPU;
		ub->counts = ub->kind != BLOCK_RETIRED;
		ub->live = 0;
		ub->pid = 0;
		ub->fold_pending = 0;
		if (ub->kind == BLOCK_WRITER) {
			/* Acquire: pairs with the claimer's release store,
			 * made before any of its handles wrote a counter
			 * cell here (writer/fallback.c).  Unset: only the
			 * block's gauge cells were ever written. */
			ub->counts = atomic_load_explicit(
				&shmet_priv_reader_writer(r, b)->counts_here,
				memory_order_acquire) != 0;
		}
		/* a block read for its gauges only: their pages only */
		ub->data = r->fd >= 0 ? data_pages(r, b, idx->ncells, now, key,
						   ub->counts ? NULL : gs)
				      : NULL;
		if (ub->data && !any_data(ub->data, idx->ncells))
			continue;               /* all hole: nothing to add */
		if (ub->data && all_data(ub->data, idx->ncells))
			ub->data = NULL;        /* no per-cell tests needed */
		if (ub->kind == BLOCK_RETIRED)
			read_fold_journal(r, idx, ub);
		if (ub->kind == BLOCK_WRITER) {
			/* Liveness costs a syscall per block: when asked. */
			ub->live = !idx->live_modes ||
				   shmet_priv_reader_writer_live_cached(
					   r, b, state, now);
			/* Relaxed pid: a label, ordered by the acquire of
			 * state. */
			ub->pid = atomic_load_explicit(
				&shmet_priv_reader_writer(r, b)->pid,
				memory_order_relaxed);
		}
		v->blocks_read++;
	}
	return sum_blocks(v, idx, blocks, v->blocks_read, gs);
}

/* read_blocks under the SIGBUS guard: -ESTALE if the file shrank. */
static int
read_blocks_guarded(const struct shmet_reader *r,
		    const struct shmet_index *idx, struct shmet_values *v,
		    struct used_block *blocks, struct gauge_scratch *gs)
{
	struct shmet_priv_guard guard;
	int rc;

	if (sigsetjmp(guard.jb, 0)) {
		v->nsamples = 0;        /* nothing read is trusted */
		return -ESTALE;
	}
	shmet_priv_guard_enter(&guard, r);
	rc = read_blocks(r, idx, v, blocks, gs);
	shmet_priv_guard_leave(&guard);
	return rc;
}

SHMET_EXPORT int
shmet_values_collect(const struct shmet_reader *r,
		     const struct shmet_index *idx, struct shmet_values *v)
{
	struct gauge_scratch gs = { NULL, 0, NULL, 0, NULL, 0, 0 };
	struct used_block *blocks;
	int rc = reserve_values(v, idx);

	if (rc < 0)
		return rc;
	if (idx->ncells > r->hdr.cells_per_block)
		shmet_die("index built for another segment");
	rc = shmet_priv_reader_check_size(r, NULL, 0);
	if (rc < 0)
		return rc;
	blocks = malloc(sizeof *blocks * shmet_seg_blocks(&r->hdr));
	if (!blocks || (idx->ngauges && gauge_refs(&gs, idx) < 0)) {
		free(blocks);
		gauge_scratch_free(&gs);
		return -ENOMEM;
	}
	rc = read_blocks_guarded(r, idx, v, blocks, &gs);
	free(blocks);
	gauge_scratch_free(&gs);
	if (rc < 0)
		return rc;
	{
		int xr = shmet_priv_read_exemplars(r, idx, v);

		if (xr < 0)
			return xr;
	}
	/*
	 * A zero-label gauge in a sum mode that no (live) writer holds is the
	 * sum of nothing: 0, not absent, so that "webhook_active_workers < 1"
	 * is true when every worker died.  Labelled series stay absent: their
	 * label values name a writer's fact that no longer exists.
	 */
	for (uint32_t g = 0; g < idx->ngauges; g++) {
		uint32_t si = idx->gauge_series[g];
		const struct shmet_index_family *f =
			&idx->families[idx->series[si].family];

		if (!v->gauge_set[si] && f->label_count == 0 &&
		    shmet_seg_gauge_mode_sum(f->gauge_mode)) {
			v->gauge[si] = 0;
			v->gauge_set[si] = 1;
		}
	}
	/* Renderers walk samples in series order, pids ascending. */
	if (v->nsamples > 1)
		qsort(v->samples, v->nsamples, sizeof *v->samples, cmp_sample);
	/*
	 * One sample per pid: two slots can carry one pid (a reused pid, or
	 * pid 1 of two containers), and one pid label twice on a series
	 * would make the page invalid.  One of them is kept.
	 */
	if (v->nsamples > 1) {
		size_t kept = 1;

		for (size_t i = 1; i < v->nsamples; i++)
			if (v->samples[i].series != v->samples[kept - 1].series ||
			    v->samples[i].pid != v->samples[kept - 1].pid)
				v->samples[kept++] = v->samples[i];
		v->nsamples = kept;
	}
	return rc;
}
