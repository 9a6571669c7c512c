/*
 * One scrape's values as callers read them (shmetrics-reader.h): gauges
 * by mode, cells, per-writer samples, counters, buckets and sums, by the
 * rule book's cell roles (shmetrics/rules.h).  values.c collects them.
 */
#include "config.h"

#include "reader-private.h"

SHMET_EXPORT uint32_t
shmet_values_blocks_read(const struct shmet_values *v)
{
	return v->blocks_read;
}

SHMET_EXPORT int
shmet_values_gauge(const struct shmet_values *v, uint32_t series,
		   double *out)
{
	if (series >= v->cap_series || !v->gauge_set[series]) {
		*out = 0;
		return 0;
	}
	*out = v->gauge[series];
	return 1;
}

SHMET_EXPORT int
shmet_values_gauge_stamp(const struct shmet_values *v, uint32_t series,
			 uint64_t *stamp)
{
	if (series >= v->cap_series || !v->gauge_set[series]) {
		*stamp = 0;
		return 0;
	}
	*stamp = v->gauge_stamp[series];
	return 1;
}

SHMET_EXPORT size_t
shmet_values_cells(const struct shmet_values *v, const uint64_t **u,
		   const double **d)
{
	*u = v->u;
	*d = v->d;
	return v->ncells;
}

SHMET_EXPORT size_t
shmet_values_samples(const struct shmet_values *v,
		     const struct shmet_gauge_sample **out)
{
	*out = v->samples;
	return v->nsamples;
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
	return v->u[shmet_seg_cell_counter_int(first_cell(idx, series))];
}

SHMET_EXPORT double
shmet_values_counter_float(const struct shmet_values *v,
			   const struct shmet_index *idx, uint32_t series)
{
	return v->d[shmet_seg_cell_counter_float(first_cell(idx, series))];
}

SHMET_EXPORT double
shmet_values_counter(const struct shmet_values *v,
		     const struct shmet_index *idx, uint32_t series)
{
	return (double)shmet_values_counter_int(v, idx, series) +
	       shmet_values_counter_float(v, idx, series);
}

/* Bucket b of a merged histogram (shmet_index_merge): each part's
 * buckets that count in it. */
static uint64_t
merged_bucket(const struct shmet_values *v, const struct shmet_index_merge *m,
	      uint32_t b)
{
	uint64_t n = 0;

	for (uint32_t p = 0; p < m->nparts; p++)
		for (uint32_t k = 0; k <= m->part_bounds[p]; k++)
			if (m->part_to[p][k] == b)
				n += v->u[shmet_seg_cell_bucket(
					m->part_cells[p], k)];
	return n;
}

SHMET_EXPORT uint64_t
shmet_values_bucket(const struct shmet_values *v,
		    const struct shmet_index *idx, uint32_t series, uint32_t b)
{
	const struct shmet_index_series *s = &idx->series[series];

	if (s->merge != UINT32_MAX)
		return merged_bucket(v, &idx->merges[s->merge], b);
	return v->u[shmet_seg_cell_bucket(first_cell(idx, series), b)];
}

SHMET_EXPORT uint64_t
shmet_values_hist_count(const struct shmet_values *v,
			const struct shmet_index *idx, uint32_t series)
{
	const double *bounds;
	uint32_t count = shmet_index_series_bounds(idx, series, &bounds);
	uint64_t n = 0;

	for (uint32_t b = 0; b <= count; b++)
		n += shmet_values_bucket(v, idx, series, b);
	return n;
}

SHMET_EXPORT double
shmet_values_hist_sum(const struct shmet_values *v,
		      const struct shmet_index *idx, uint32_t series)
{
	const struct shmet_index_series *s = &idx->series[series];
	const struct shmet_index_family *f = &idx->families[s->family];

	if (s->merge != UINT32_MAX) {
		const struct shmet_index_merge *m = &idx->merges[s->merge];
		double sum = 0;

		for (uint32_t p = 0; p < m->nparts; p++)
			sum += v->d[shmet_seg_cell_hist_sum(
				m->part_cells[p], m->part_bounds[p])];
		return sum;
	}
	return v->d[shmet_seg_cell_hist_sum(first_cell(idx, series),
					    f->bound_count)];
}
