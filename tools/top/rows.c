/*
 * shmetrics-top's rows: rates, quantiles, folding and order, from the
 * samples model.c took.
 *
 * Rates come from the cells themselves: a series owns the same cells for
 * the life of a segment, so the previous sample's and the first sample's
 * cell arrays, read at the current index's cell positions, give each
 * series' earlier value without any lookup.  A cell beyond an earlier
 * sample's reach belongs to a series created since: it was 0 then.  Which
 * cell holds what, and how gauges fold, are the rule book's
 * (shmetrics/rules.h).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <shmetrics/rules.h>

#include "model.h"

const double top_quantiles[TOP_NQ] = { 0.5, 0.95, 0.99 };

double
top_model_interval(const struct top_model *m)
{
	return m->have_prev ? (double)(m->t_cur - m->t_prev) / 1e9 : 0;
}

double
top_model_elapsed(const struct top_model *m)
{
	return m->samples ? (double)(m->t_cur - m->t_start) / 1e9 : 0;
}

struct cells {
	const uint64_t *u;
	const double *d;
	uint32_t n;
};

static uint64_t
cell_u(const struct cells *c, uint32_t i)
{
	return i < c->n ? c->u[i] : 0;
}

static double
cell_d(const struct cells *c, uint32_t i)
{
	return i < c->n ? c->d[i] : 0;
}

static double
counter_at(const struct cells *c, uint32_t first)
{
	return (double)cell_u(c, shmet_seg_cell_counter_int(first)) +
	       cell_d(c, shmet_seg_cell_counter_float(first));
}

double
top_histogram_quantile(double q, const double *bounds, uint32_t nbounds,
		       const uint64_t *counts)
{
	uint64_t total = 0, cum = 0;
	double rank, lower;

	for (uint32_t b = 0; b <= nbounds; b++)
		total += counts[b];
	if (total == 0 || q < 0 || q > 1 || nbounds == 0)
		return NAN;
	rank = q * (double)total;
	for (uint32_t b = 0; b < nbounds; b++) {
		uint64_t in = counts[b];

		if ((double)(cum + in) >= rank) {
			if (b == 0 && bounds[0] <= 0)
				return bounds[0];
			lower = b == 0 ? 0 : bounds[b - 1];
			if (in == 0)
				return bounds[b];
			return lower + (bounds[b] - lower) *
					       ((rank - (double)cum) /
						(double)in);
		}
		cum += in;
	}
	return bounds[nbounds - 1];     /* in the +Inf bucket */
}

/* What the rows of one family accumulate. */
struct acc {
	double value, rate, rate_start, sum, dsum, fvalue;
	uint64_t ivalue;
	int wrapped;                    /* ivalue overflowed: use value */
	uint64_t count, dcount, scount;
	uint64_t stamp;                 /* gauges: of the value folded */
	uint32_t nseries, ngauges;
	uint64_t *cum, *delta;          /* histogram buckets */
};

struct ctx {
	struct top_model *m;
	struct cells cur, prev, start;
	double dt, elapsed;
};

static void
add_counter(const struct ctx *c, uint32_t first, struct acc *a)
{
	double v = counter_at(&c->cur, first);

	a->value += v;
	if (__builtin_add_overflow(a->ivalue,
				   cell_u(&c->cur,
					  shmet_seg_cell_counter_int(first)),
				   &a->ivalue))
		a->wrapped = 1;
	a->fvalue += cell_d(&c->cur, shmet_seg_cell_counter_float(first));
	if (c->dt > 0)
		a->rate += (v - counter_at(&c->prev, first)) / c->dt;
	if (c->elapsed > 0)
		a->rate_start += (v - counter_at(&c->start, first)) /
				 c->elapsed;
}

static void
add_histogram(const struct ctx *c, uint32_t first, uint32_t nb,
	      struct acc *a)
{
	uint32_t sum = shmet_seg_cell_hist_sum(first, nb);
	uint64_t start = 0;

	for (uint32_t b = 0; b <= nb; b++) {
		uint32_t cell = shmet_seg_cell_bucket(first, b);
		uint64_t x = cell_u(&c->cur, cell);
		uint64_t p = cell_u(&c->prev, cell);

		a->cum[b] += x;
		a->delta[b] += x >= p ? x - p : 0;
		a->count += x;
		a->dcount += x >= p ? x - p : 0;
		start += cell_u(&c->start, cell);
	}
	a->scount += start;
	a->sum += cell_d(&c->cur, sum);
	a->dsum += cell_d(&c->cur, sum) - cell_d(&c->prev, sum);
}

/*
 * Fold a gauge value into a row by the family's mode, the rule book's
 * fold (shmetrics/rules.h), as the scrape folds writers: sums add, max and
 * min keep the extreme, mostrecent keeps the newest stamp.  The per-writer
 * samples of modes all and liveall, folded into one row, add up.
 */
static void
add_gauge(uint32_t mode, double x, uint64_t stamp, struct acc *a)
{
	if (shmet_seg_gauge_mode_per_writer(mode))
		mode = SHMET_GAUGE_SUM;
	shmet_seg_gauge_fold(mode, a->ngauges == 0, &a->value, &a->stamp, x,
			     stamp);
	a->ngauges++;
}

static void
finish(const struct ctx *c, const struct shmet_index_family *f,
       const struct acc *a, struct top_row *row)
{
	uint32_t nb = f->bound_count;

	row->nseries = a->nseries;
	row->value = a->value;
	row->rate = NAN;
	row->rate_start = NAN;
	row->sum = row->mean = NAN;
	for (int i = 0; i < TOP_NQ; i++)
		row->q[i] = NAN;
	if (f->type == SHMET_TYPE_COUNTER) {
		row->rate = c->dt > 0 ? a->rate : NAN;
		row->rate_start = c->elapsed > 0 ? a->rate_start : NAN;
		row->integral = a->fvalue == 0 && !a->wrapped;
		row->ivalue = a->ivalue;
	} else if (f->type == SHMET_TYPE_HISTOGRAM) {
		/* the last interval's observations, else all of them */
		int recent = a->dcount > 0;
		const uint64_t *b = recent ? a->delta : a->cum;
		uint64_t n = recent ? a->dcount : a->count;

		row->value = (double)a->count;
		row->integral = 1;
		row->ivalue = a->count;
		row->sum = a->sum;
		row->rate = c->dt > 0 ? (double)a->dcount / c->dt : NAN;
		row->rate_start = c->elapsed > 0 ?
			(double)(a->count - a->scount) / c->elapsed : NAN;
		if (n) {
			row->mean = (recent ? a->dsum : a->sum) / (double)n;
			for (int i = 0; i < TOP_NQ; i++)
				row->q[i] = top_histogram_quantile(
					top_quantiles[i], f->bounds, nb, b);
		}
	}
}

static struct top_row *
new_row(struct top_model *m, uint32_t fi, uint32_t si, int64_t pid)
{
	struct top_row *row = &m->rows[m->nrows++];

	memset(row, 0, sizeof *row);
	row->family = fi;
	row->series = si;
	row->pid = pid;
	return row;
}

static void
reset_acc(struct acc *a, uint32_t nb)
{
	uint64_t *cum = a->cum, *delta = a->delta;

	memset(a, 0, sizeof *a);
	a->cum = cum;
	a->delta = delta;
	memset(cum, 0, (nb + 1) * sizeof *cum);
	memset(delta, 0, (nb + 1) * sizeof *delta);
}

static int
cmp_rows(const void *pa, const void *pb, void *arg)
{
	const struct top_model *m = arg;
	uint32_t ia = *(const uint32_t *)pa, ib = *(const uint32_t *)pb;
	const struct top_row *a = &m->rows[ia], *b = &m->rows[ib];
	double x = m->sort == TOP_SORT_RATE ? a->rate : a->value;
	double y = m->sort == TOP_SORT_RATE ? b->rate : b->value;

	/* descending, rows without a figure last, then in name order */
	if (isnan(x) != isnan(y))
		return isnan(x) ? 1 : -1;
	if (!isnan(x) && x != y)
		return x > y ? -1 : 1;
	return (ia > ib) - (ia < ib);
}

int
top_model_arrange(struct top_model *m)
{
	const struct shmet_values *v = m->cur;
	const struct shmet_gauge_sample *samples;
	size_t nsamples;
	const uint64_t *cu, *pu;
	const double *cd, *pd;
	size_t cn, pn;
	struct ctx c;
	struct acc a;
	size_t want, next_sample = 0;
	uint32_t nf, ns;

	m->nrows = 0;
	if (!m->idx || m->samples == 0)
		return 0;
	nf = shmet_index_family_count(m->idx);
	ns = shmet_index_series_count(m->idx);
	nsamples = shmet_values_samples(v, &samples);
	want = (size_t)ns + nsamples + nf + 1;
	if (want > m->cap_rows) {
		struct top_row *rows = realloc(m->rows, want * sizeof *rows);
		uint32_t *order;

		if (!rows)
			return -ENOMEM;
		m->rows = rows;
		order = realloc(m->order, want * sizeof *order);
		if (!order)
			return -ENOMEM;
		m->order = order;
		m->cap_rows = want;
	}
	if (!m->hist_scratch) {
		/* at most 128 bounds + the +Inf bucket, twice */
		m->hist_scratch = calloc(2 * 129, sizeof *m->hist_scratch);
		if (!m->hist_scratch)
			return -ENOMEM;
	}
	c.m = m;
	cn = shmet_values_cells(v, &cu, &cd);
	pn = shmet_values_cells(m->prev, &pu, &pd);
	c.cur = (struct cells){ cu, cd, (uint32_t)cn };
	c.prev = m->have_prev ? (struct cells){ pu, pd, (uint32_t)pn }
			      : c.cur;
	c.start = (struct cells){ m->start.u, m->start.d, m->start.ncells };
	c.dt = top_model_interval(m);
	c.elapsed = top_model_elapsed(m);
	a.cum = m->hist_scratch;
	a.delta = m->hist_scratch + 129;

	for (uint32_t fi = 0; fi < nf; fi++) {
		const struct shmet_index_family *f =
			shmet_index_family(m->idx, fi);
		uint32_t nb = f->bound_count > 128 ? 128 : f->bound_count;
		int per_writer = f->gauge_mode == SHMET_GAUGE_ALL ||
				 f->gauge_mode == SHMET_GAUGE_LIVEALL;

		if (f->type != SHMET_TYPE_COUNTER &&
		    f->type != SHMET_TYPE_GAUGE &&
		    f->type != SHMET_TYPE_HISTOGRAM)
			continue;
		reset_acc(&a, nb);
		for (uint32_t k = 0; k < f->series_count; k++) {
			uint32_t si = f->first_series + k;
			uint32_t first =
				shmet_index_series(m->idx, si)->first_cell;

			/* per-writer samples of this series come first in
			 * v->samples (sorted by series, pid) */
			while (next_sample < nsamples &&
			       samples[next_sample].series < si)
				next_sample++;
			if (!m->match[si])
				continue;
			if (!m->fold)
				reset_acc(&a, nb);
			if (f->type == SHMET_TYPE_COUNTER) {
				add_counter(&c, first, &a);
			} else if (f->type == SHMET_TYPE_HISTOGRAM) {
				add_histogram(&c, first, nb, &a);
			} else if (per_writer) {
				size_t j = next_sample;

				for (; j < nsamples &&
				       samples[j].series == si; j++) {
					if (m->fold) {
						add_gauge(f->gauge_mode,
							  samples[j].value, 1,
							  &a);
						continue;
					}
					reset_acc(&a, nb);
					a.nseries = 1;
					add_gauge(f->gauge_mode,
						  samples[j].value, 1, &a);
					finish(&c, f, &a,
					       new_row(m, fi, si,
						       samples[j].pid));
				}
				if (j > next_sample)
					a.nseries++;
				continue;
			} else {
				uint64_t stamp;
				double g;

				if (!shmet_values_gauge(v, si, &g))
					continue;       /* no sample */
				shmet_values_gauge_stamp(v, si, &stamp);
				add_gauge(f->gauge_mode, g, stamp, &a);
			}
			a.nseries++;
			if (!m->fold)
				finish(&c, f, &a, new_row(m, fi, si, -1));
		}
		if (m->fold && a.nseries)
			finish(&c, f, &a, new_row(m, fi, TOP_FAMILY_ROW, -1));
	}
	for (size_t i = 0; i < m->nrows; i++)
		m->order[i] = (uint32_t)i;
	if (m->sort != TOP_SORT_NAME && m->nrows > 1)
		qsort_r(m->order, m->nrows, sizeof *m->order, cmp_rows, m);
	return 0;
}

