/*
 * One scrape: sum every cell over the writer blocks that were ever used,
 * then combine gauges by their mode.
 *
 * The sum runs block by block over contiguous cells, so it streams memory:
 * integer cells add into u[], float cells (selected by the index's mask,
 * which zeroes integer bits before they are reinterpreted, so no denormal
 * ever reaches the FPU) add into d[].
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "reader-private.h"

static int
grow(void **p, size_t *cap, size_t want, size_t elem)
{
	void *n;

	if (want <= *cap)
		return 0;
	n = realloc(*p, want * elem);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = want;
	return 0;
}

static int
reserve_values(struct shmet_values *v, const struct shmet_index *idx)
{
	size_t cells = idx->ncells ? idx->ncells : 1;
	size_t series = idx->nseries ? idx->nseries : 1;
	size_t cap;

	if (cells > v->cap_cells) {
		cap = v->cap_cells;
		if (grow((void **)&v->u, &cap, cells, sizeof *v->u) < 0)
			return -ENOMEM;
		cap = v->cap_cells;
		if (grow((void **)&v->d, &cap, cells, sizeof *v->d) < 0)
			return -ENOMEM;
		v->cap_cells = cells;
	}
	if (series > v->cap_series) {
		cap = v->cap_series;
		if (grow((void **)&v->gauge, &cap, series, sizeof *v->gauge) < 0)
			return -ENOMEM;
		cap = v->cap_series;
		if (grow((void **)&v->gauge_set, &cap, series,
			 sizeof *v->gauge_set) < 0)
			return -ENOMEM;
		v->cap_series = series;
	}
	v->ncells = idx->ncells;
	v->nsamples = 0;
	v->blocks_read = 0;
	memset(v->u, 0, cells * sizeof *v->u);
	memset(v->d, 0, cells * sizeof *v->d);
	memset(v->gauge, 0, series * sizeof *v->gauge);
	memset(v->gauge_set, 0, series * sizeof *v->gauge_set);
	return 0;
}

static const _Atomic uint64_t *
block_cells(const struct shmet_reader *r, uint32_t block)
{
	return (const _Atomic uint64_t *)(r->base + r->hdr.values_off +
					  (uint64_t)block * r->hdr.block_stride);
}

static void
sum_block(struct shmet_values *v, const struct shmet_index *idx,
	  const _Atomic uint64_t *cells)
{
	uint64_t *u = v->u;
	double *d = v->d;
	const uint64_t *mask = idx->dmask;

	for (uint32_t c = 0; c < idx->ncells; c++) {
		/* Relaxed: see the file comment of reader.c. */
		uint64_t x = atomic_load_explicit(&cells[c],
						  memory_order_relaxed);
		double f;
		uint64_t bits = x & mask[c];

		memcpy(&f, &bits, sizeof f);
		u[c] += x;
		d[c] += f;
	}
}

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

/* Latest stamp seen per gauge series, for the mostrecent modes. */
struct gauge_scratch {
	uint64_t *stamp;
	size_t cap;
};

static int
gauge_block(struct shmet_values *v, const struct shmet_index *idx,
	    const _Atomic uint64_t *cells, int live, int64_t pid,
	    struct gauge_scratch *gs)
{
	for (uint32_t g = 0; g < idx->ngauges; g++) {
		uint32_t si = idx->gauge_series[g];
		const struct shmet_index_series *s = &idx->series[si];
		uint32_t mode = idx->families[s->family].gauge_mode;
		/* Relaxed: value and stamp are each atomic; a mostrecent
		 * race may pair a value with a neighbouring stamp. */
		uint64_t bits = atomic_load_explicit(&cells[s->first_cell],
						     memory_order_relaxed);
		uint64_t stamp = atomic_load_explicit(&cells[s->first_cell + 1],
						      memory_order_relaxed);
		double x;
		int first = !v->gauge_set[si];

		memcpy(&x, &bits, sizeof x);
		if (stamp == 0)
			continue;       /* this writer never set it */
		if (!live && (mode == SHMET_GAUGE_LIVEALL ||
			      mode == SHMET_GAUGE_LIVESUM ||
			      mode == SHMET_GAUGE_LIVEMOSTRECENT))
			continue;
		switch (mode) {
		case SHMET_GAUGE_ALL:
		case SHMET_GAUGE_LIVEALL:
			if (add_sample(v, si, pid, x) < 0)
				return -ENOMEM;
			break;
		case SHMET_GAUGE_SUM:
		case SHMET_GAUGE_LIVESUM:
			v->gauge[si] += x;
			break;
		case SHMET_GAUGE_MAX:
			if (first || x > v->gauge[si])
				v->gauge[si] = x;
			break;
		case SHMET_GAUGE_MIN:
			if (first || x < v->gauge[si])
				v->gauge[si] = x;
			break;
		default:        /* mostrecent, livemostrecent */
			if (first || stamp >= gs->stamp[g]) {
				v->gauge[si] = x;
				gs->stamp[g] = stamp;
			}
			break;
		}
		v->gauge_set[si] = 1;
	}
	return 0;
}

/* Blocks worth reading: slots ever claimed, and the fallback once used. */
static int
block_in_use(const struct shmet_reader *r, uint32_t b, uint32_t *state)
{
	const struct shmet_seg_header *h = reader_live_header(r);

	if (b == r->hdr.max_writers) {
		*state = SHMET_WRITER_ACTIVE;
		/* Acquire: pairs with the release increment a writer makes
		 * before it first writes to the fallback block. */
		return atomic_load_explicit(
			       &h->failures[SHMET_FAIL_WRITERS_FULL],
			       memory_order_acquire) > 0;
	}
	/* Acquire: pairs with the claimer's release of state. */
	*state = atomic_load_explicit(&reader_writer(r, b)->state,
				      memory_order_acquire);
	return *state != SHMET_WRITER_UNUSED;
}

static int
cmp_sample(const void *pa, const void *pb)
{
	const struct shmet_gauge_sample *a = pa, *b = pb;

	if (a->series != b->series)
		return (a->series > b->series) - (a->series < b->series);
	return (a->pid > b->pid) - (a->pid < b->pid);
}

SHMET_EXPORT int
shmet_values_collect(const struct shmet_reader *r,
		     const struct shmet_index *idx, struct shmet_values *v)
{
	struct gauge_scratch gs = { NULL, 0 };
	int rc = reserve_values(v, idx);

	if (rc < 0)
		return rc;
	if (idx->ncells > r->hdr.cells_per_block)
		shmet_die("index built for another segment");
	if (idx->ngauges &&
	    grow((void **)&gs.stamp, &gs.cap, idx->ngauges, sizeof *gs.stamp) < 0)
		return -ENOMEM;
	for (uint32_t b = 0; b <= r->hdr.max_writers; b++) {
		const _Atomic uint64_t *cells = block_cells(r, b);
		uint32_t state;
		int live;

		if (!block_in_use(r, b, &state))
			continue;
		v->blocks_read++;
		sum_block(v, idx, cells);
		if (idx->ngauges == 0)
			continue;
		live = b == r->hdr.max_writers ||
		       reader_writer_live(r, b, state);
		rc = gauge_block(v, idx, cells, live,
				 b == r->hdr.max_writers ? 0 :
				 atomic_load_explicit(&reader_writer(r, b)->pid,
						      memory_order_relaxed),
				 &gs);
		if (rc < 0)
			break;
	}
	free(gs.stamp);
	/* Renderers walk samples in series order, pids ascending. */
	if (v->nsamples > 1)
		qsort(v->samples, v->nsamples, sizeof *v->samples, cmp_sample);
	return rc;
}

SHMET_EXPORT void
shmet_values_free(struct shmet_values *v)
{
	free(v->u);
	free(v->d);
	free(v->gauge);
	free(v->gauge_set);
	free(v->samples);
	memset(v, 0, sizeof *v);
}

static uint32_t
first_cell(const struct shmet_index *idx, uint32_t series)
{
	return idx->series[series].first_cell;
}

SHMET_EXPORT uint64_t
shmet_values_counter_int(const struct shmet_values *v,
			 const struct shmet_index *idx, uint32_t series)
{
	return v->u[first_cell(idx, series)];
}

SHMET_EXPORT double
shmet_values_counter_float(const struct shmet_values *v,
			   const struct shmet_index *idx, uint32_t series)
{
	return v->d[first_cell(idx, series) + 1];
}

SHMET_EXPORT double
shmet_values_counter(const struct shmet_values *v,
		     const struct shmet_index *idx, uint32_t series)
{
	return (double)shmet_values_counter_int(v, idx, series) +
	       shmet_values_counter_float(v, idx, series);
}

SHMET_EXPORT uint64_t
shmet_values_bucket(const struct shmet_values *v,
		    const struct shmet_index *idx, uint32_t series, uint32_t b)
{
	return v->u[first_cell(idx, series) + b];
}

SHMET_EXPORT uint64_t
shmet_values_hist_count(const struct shmet_values *v,
			const struct shmet_index *idx, uint32_t series)
{
	const struct shmet_index_family *f =
		&idx->families[idx->series[series].family];
	uint64_t n = 0;

	for (uint32_t b = 0; b <= f->bound_count; b++)
		n += shmet_values_bucket(v, idx, series, b);
	return n;
}

SHMET_EXPORT double
shmet_values_hist_sum(const struct shmet_values *v,
		      const struct shmet_index *idx, uint32_t series)
{
	const struct shmet_index_family *f =
		&idx->families[idx->series[series].family];

	return v->d[first_cell(idx, series) + f->bound_count + 1];
}
