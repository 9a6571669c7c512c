/*
 * One scrape's gauges (values.c reads the blocks): each writer block's
 * gauge cells, and the retired block's, combined by their family's mode
 * (include/shmetrics/rules.h, shmet_seg_gauge_fold), or kept as a sample
 * per writer (the modes all and liveall).
 *
 * A writer's gauges lie in dense chunks (format.h, "Gauge chunks"), and
 * the walk goes in cell order, so each block is read as a few sequential
 * runs, which the hardware prefetches (a software prefetch ahead measured
 * slower).  The fold goes into a dense array by gauge, not into v's
 * arrays by series (five times as many), and the mode's questions are
 * answered once a scrape, not once per gauge and block.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "reader-private.h"
#include "values-private.h"

static int
add_sample(struct shmet_values *v, uint32_t series, int64_t pid, double value)
{
	struct shmet_gauge_sample *s;

	if (v->nsamples == v->samples_cap &&
	    grow((void **)&v->samples, &v->samples_cap,
		 MAX(64, v->samples_cap * 2), sizeof *v->samples) < 0)
		return -ENOMEM;
	s = &v->samples[v->nsamples++];
	s->series = series;
	s->pid = pid;
	s->value = value;
	return 0;
}

/* One gauge series as gauge_block reads it, gathered once a scrape:
 * its mode's questions answered once (GAUGE_*), not per block. */
struct gauge_ref {
	uint32_t cell;                  /* first cell */
	uint32_t series;                /* position in the index */
	uint32_t mode;                  /* SHMET_GAUGE_* */
	uint32_t how;                   /* GAUGE_* */
};

enum {
	GAUGE_LIVE = 1,                 /* a dead writer's value: left out */
	GAUGE_KEPT = 2,                 /* the retired block's: taken */
	GAUGE_SAMPLE = 4,               /* each writer's value its own */
	GAUGE_TIMED = 8,                /* folded by stamp */
};

/* Per gauge (the order of ref): the value folded so far and its stamp
 * (0: no block set it yet), put into v by series once the blocks are
 * read: dense, where v's arrays hold every series. */
struct gauge_acc {
	double x;
	uint64_t stamp;
};

/* Gauge g's pages [lo, hi) into gs's runs (gauges come in cell order,
 * so a run grows or a new one starts); 0 or -ENOMEM. */
static int
add_pages(struct gauge_scratch *gs, uint32_t lo, uint32_t hi)
{
	uint32_t *run = gs->npages ? &gs->pages[2 * (gs->npages - 1)] : NULL;

	if (run && lo <= run[1] && hi >= run[0]) {
		run[0] = MIN(run[0], lo);
		run[1] = MAX(run[1], hi);
		return 0;
	}
	if (grow((void **)&gs->pages, &gs->pages_cap, 2 * (gs->npages + 1),
		 sizeof *gs->pages) < 0)
		return -ENOMEM;
	gs->pages[2 * gs->npages] = lo;
	gs->pages[2 * gs->npages + 1] = hi;
	gs->npages++;
	return 0;
}

int
gauge_refs(struct gauge_scratch *gs, const struct shmet_index *idx)
{
	gs->npages = 0;
	if (grow((void **)&gs->ref, &gs->ref_cap, idx->ngauges,
		 sizeof *gs->ref) < 0 ||
	    grow((void **)&gs->acc, &gs->acc_cap, idx->ngauges,
		 sizeof *gs->acc) < 0)
		return -ENOMEM;
	memset(gs->acc, 0, idx->ngauges * sizeof *gs->acc);
	for (uint32_t g = 0; g < idx->ngauges; g++) {
		uint32_t si = idx->gauge_series[g];
		const struct shmet_index_series *s = &idx->series[si];
		uint32_t mode = idx->families[s->family].gauge_mode;

		gs->ref[g].cell = s->first_cell;
		gs->ref[g].series = si;
		gs->ref[g].mode = mode;
		gs->ref[g].how =
			(shmet_seg_gauge_mode_live(mode) ? GAUGE_LIVE : 0) |
			(shmet_seg_gauge_mode_retires(mode) ? GAUGE_KEPT : 0) |
			(shmet_seg_gauge_mode_per_writer(mode) ? GAUGE_SAMPLE
								: 0) |
			(shmet_seg_gauge_mode_timed(mode) ? GAUGE_TIMED : 0);
		{
			uint32_t pv = shmet_seg_cell_gauge_value(s->first_cell) /
				      PAGE_CELLS;
			uint32_t ps = shmet_seg_cell_gauge_stamp(s->first_cell) /
				      PAGE_CELLS;

			if (add_pages(gs, MIN(pv, ps), MAX(pv, ps) + 1) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

/*
 * The gauges (in cell order) of one block, combined by their mode.  A
 * writer's gauges lie in dense chunks (format.h, "Gauge chunks"), so the
 * walk streams a few pages of each block; a page's data bit is looked up
 * once for all its gauges.
 */
int
gauge_block(struct shmet_values *v, const struct used_block *ub,
	    uint32_t ngauges, struct gauge_scratch *gs)
{
	const _Atomic uint64_t *cells = ub->cells;
	/* the gauges this block does not count in, by their GAUGE_ bits */
	uint32_t skip = (ub->live ? 0u : (uint32_t)GAUGE_LIVE);
	uint32_t need = ub->kind == BLOCK_RETIRED ? (uint32_t)GAUGE_KEPT : 0;
	uint32_t page = UINT32_MAX;
	int data = 1;

	if (ub->kind == BLOCK_FALLBACK || ub->kind == BLOCK_CPU)
		return 0;               /* holds no gauges */

	for (uint32_t g = 0; g < ngauges; g++) {
		const struct gauge_ref *ref = &gs->ref[g];
		uint32_t si = ref->series, c = ref->cell;
		uint32_t sc = shmet_seg_cell_gauge_stamp(c);

		if ((ref->how & skip) || (ref->how & need) != need)
			continue;
		/* A hole (a page this writer never wrote) reads as zeros:
		 * its gauges were never set.  Not read, as it has no page. */
		if (ub->data) {
			if (c / PAGE_CELLS != page) {
				page = c / PAGE_CELLS;
				data = has_data(ub, c);
			}
			if (!data ||
			    (sc / PAGE_CELLS != page && !has_data(ub, sc)))
				continue;
		}
		/* Relaxed: value and stamp are each atomic; a mostrecent
		 * race may pair a value with a neighbouring stamp. */
		uint64_t bits = atomic_load_explicit(
			&cells[shmet_seg_cell_gauge_value(c)],
			memory_order_relaxed);
		uint64_t stamp = atomic_load_explicit(&cells[sc],
						      memory_order_relaxed);

		if (ub->fold_pending && c == ub->fold_cell) {
			bits = ub->fold_bits;
			stamp = ub->fold_stamp;
		}
		struct gauge_acc *a = &gs->acc[g];
		double x;

		memcpy(&x, &bits, sizeof x);
		if (stamp == 0)
			continue;       /* this writer never set it */
		if (ref->how & GAUGE_SAMPLE) {
			if (add_sample(v, si, ub->pid, x) < 0)
				return -ENOMEM;
			a->stamp = stamp;
		} else
			shmet_seg_gauge_fold(ref->mode, !a->stamp, &a->x,
					     &a->stamp, x, stamp);
	}
	return 0;
}

/* The folded gauges into v, by series.  Only the mostrecent modes'
 * stamps mean anything after the fold: the others' are left 0. */
void
gauge_scatter(struct shmet_values *v, uint32_t ngauges,
	      const struct gauge_scratch *gs)
{
	for (uint32_t g = 0; g < ngauges; g++) {
		uint32_t si = gs->ref[g].series;

		if (!gs->acc[g].stamp)
			continue;
		v->gauge[si] = gs->acc[g].x;
		if (gs->ref[g].how & GAUGE_TIMED)
			v->gauge_stamp[si] = gs->acc[g].stamp;
		v->gauge_set[si] = 1;
	}
}

void
gauge_scratch_free(struct gauge_scratch *gs)
{
	free(gs->ref);
	free(gs->acc);
	free(gs->pages);
}
