/*
 * The values object's memory (values-mem.c), shared with the scrape that
 * fills it (values.c).  Internal to lib/.
 */
#ifndef SHMETRICS_VALUES_PRIVATE_H
#define SHMETRICS_VALUES_PRIVATE_H

#include "reader-private.h"

/* The prefix every global of the library has (tests/check-symbols.sh). */
#define grow shmet_priv_grow
#define reserve_values shmet_priv_reserve_values
#define cells_free shmet_priv_cells_free

/* *p an array of at least want elems (realloc'd); 0 or -ENOMEM. */
int grow(void **p, size_t *cap, size_t want, size_t elem);
/* v's arrays sized for idx and zeroed for a scrape; 0 or -ENOMEM. */
int reserve_values(struct shmet_values *v, const struct shmet_index *idx);
void cells_free(void *p, size_t cap_bytes);
/* values-exemplar.c: the scrape's exemplars into v, after its cells. */
int shmet_priv_read_exemplars(const struct shmet_reader *r,
			      const struct shmet_index *idx,
			      struct shmet_values *v);

/* A block the scrape reads (values.c), as the gauges' walk reads it too
 * (values-gauge.c). */
struct used_block {
	const _Atomic uint64_t *cells;
	const _Atomic uint8_t *data;    /* pages holding data; NULL: all */
	int kind;                       /* BLOCK_* */
	int counts;                     /* its counter cells can be non-zero */
	int live;
	int64_t pid;
	/*
	 * Retired block only: a fold in progress, or left by a folder that
	 * died (writer/slot.c).  Until the dead writer's stamp of fold_cell
	 * is zero, that series still counts in the dead writer's block, so
	 * its retired cells are read as they were before the fold.
	 */
	int fold_pending;
	uint32_t fold_cell;
	uint64_t fold_bits, fold_stamp;
};

/*
 * A writer's own block; the fallback block (counters and histograms of
 * processes without a slot, never gauges); the retired block (dead
 * writers' gauges folded at takeover, layout.h "Value blocks"); a CPU's
 * block (counters and histograms counted under rseq, never gauges).
 */
enum { BLOCK_WRITER, BLOCK_FALLBACK, BLOCK_RETIRED, BLOCK_CPU };

/* Cells per page of a value block (page-aligned, 8-byte cells). */
#define PAGE_CELLS (SHMET_PAGE / 8u)

static inline int
has_data(const struct used_block *ub, uint32_t cell)
{
	uint32_t page = cell / PAGE_CELLS;

	/* Relaxed: see data_pages() in values.c. */
	return !ub->data ||
	       (atomic_load_explicit(&ub->data[page / 8],
				     memory_order_relaxed) >> (page % 8)) & 1;
}

/*
 * The gauges' walk (values-gauge.c): per gauge series, its cell, series
 * and mode, and the value folded so far, gathered once a scrape
 * (gauge_refs), folded block by block (gauge_block), then put into v by
 * series (gauge_scatter).
 */
#define gauge_refs shmet_priv_gauge_refs
#define gauge_block shmet_priv_gauge_block
#define gauge_scatter shmet_priv_gauge_scatter
#define gauge_scratch_free shmet_priv_gauge_scratch_free

struct gauge_scratch {
	struct gauge_ref *ref;
	size_t ref_cap;
	struct gauge_acc *acc;
	size_t acc_cap;
	/* the pages that hold gauge cells, as runs [pages[2i], pages[2i +
	 * 1]) (values.c looks only there in a block read for its gauges) */
	uint32_t *pages;
	size_t npages, pages_cap;
};

int gauge_refs(struct gauge_scratch *gs, const struct shmet_index *idx);
int gauge_block(struct shmet_values *v, const struct used_block *ub,
		uint32_t ngauges, struct gauge_scratch *gs);
void gauge_scatter(struct shmet_values *v, uint32_t ngauges,
		   const struct gauge_scratch *gs);
void gauge_scratch_free(struct gauge_scratch *gs);

#endif /* SHMETRICS_VALUES_PRIVATE_H */
