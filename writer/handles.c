/*
 * shmetrics writer: Handles: resolving a family's label values to a
 * series's cells (found or created by series.c), the per-CPU and
 * incarnation fields the inline hot path uses, and the label-less
 * shortcuts and bucket helpers.
 */
#include "writer-private.h"

/* Find or create, then make sure our block's pages for it are reserved. */
static shmet_impl_cell *
shmet_impl_resolve_steps(const struct shmet_family *fam, uint32_t type,
			 uint32_t n, const char *const *values, int *rc,
			 unsigned char **cpu0, struct shmet_impl_gen *gen)
{
	struct shmet_segment *seg = fam->seg;
	uint32_t cell = 0, id = UINT32_MAX;

	*cpu0 = NULL;
	gen->at = &shmet_impl_scratch_gen;
	gen->expect = 0;

	if (fam->id != UINT32_MAX && fam->type != type) {
		*rc = shmet_impl_fail(seg, SHMET_FAIL_SHAPE_MISMATCH, -EINVAL,
				      "%.*s is not of the handle's type",
				      SHMET_IMPL_FAM(seg, fam->id));
		return shmet_impl_scratch();
	}
	*rc = shmet_impl_series(fam, n, values, &cell, &id, &gen->expect);
	if (*rc < 0) {
		gen->expect = 0;
		return shmet_impl_scratch();
	}
	if (type == SHMET_TYPE_GAUGE &&
	    seg->slot == shmet_seg_fallback_block(seg->hdr)) {
		/* The fallback block mixes processes: a gauge there would be
		 * nobody's value (layout.h, "Value blocks"). */
		*rc = shmet_impl_fail(seg, SHMET_FAIL_WRITERS_FULL, -ENOSPC,
				      "%.*s: no writer slot was free when this "
				      "process attached; its gauges are not "
				      "recorded (counters and histograms are)",
				      SHMET_IMPL_FAM(seg, fam->id));
		return shmet_impl_scratch();
	}
	/* Relaxed: see shmet_impl_hold_liveness. */
	if (SHMET_UNLIKELY(!SHMET_AT(load_explicit)(&seg->live_locked,
						    SHMET_MO(relaxed))))
		shmet_impl_hold_liveness(seg);
	*rc = shmet_impl_reserve(seg, (uint64_t)cell + fam->cells);
	if (*rc < 0) {
		*rc = shmet_impl_fail(seg, SHMET_FAIL_NO_MEMORY, -ENOMEM,
				      "%.*s: cannot reserve shared memory for "
				      "a series: %s", SHMET_IMPL_FAM(seg, fam->id),
				      strerror(-*rc));
		return shmet_impl_scratch();
	}
	if (type == SHMET_TYPE_GAUGE && seg->block) {
		/* The gauge's pages of our block are data to readers before
		 * its first set (slot.c, shmet_impl_touch): a set is read at
		 * once, not up to 100 ms late.  Both cells: they may straddle
		 * a page boundary. */
		uint64_t stamp = shmet_seg_cell_gauge_stamp(cell);

		shmet_impl_touch((unsigned char *)seg->block, 8ull * cell,
				 8ull * cell + 1);
		shmet_impl_touch((unsigned char *)seg->block, 8ull * stamp,
				 8ull * stamp + 1);
	}
	if (type != SHMET_TYPE_GAUGE) { /* gauges stay per process */
		*rc = shmet_impl_reserve_cpus(seg, (uint64_t)cell + fam->cells);
		if (*rc < 0) {
			*rc = shmet_impl_fail(seg, SHMET_FAIL_NO_MEMORY, -ENOMEM,
					      "%.*s: cannot reserve shared "
					      "memory for a series in the "
					      "per-CPU blocks: %s",
					      SHMET_IMPL_FAM(seg, fam->id),
					      strerror(-*rc));
			return shmet_impl_scratch();
		}
		*cpu0 = seg->cpus ? seg->cpus + 8ull * cell : NULL;
	}
	gen->at = &shmet_impl_series_table(seg)[id].gen;
	if (type != SHMET_TYPE_GAUGE)
		return shmet_impl_count_cell(seg, cell, fam->cells);
	return &seg->block[cell];
}

/* Not a cancellation point (docs/DESIGN.md, "Cancellation"). */
SHMET_W shmet_impl_cell *
shmet_impl_resolve(const struct shmet_family *fam, uint32_t type, uint32_t n,
		   const char *const *values, int *rc, unsigned char **cpu0,
		   struct shmet_impl_gen *gen)
{
	int old = shmet_impl_cancel_off();
	shmet_impl_cell *ret =
		shmet_impl_resolve_steps(fam, type, n, values, rc, cpu0, gen);

	shmet_impl_cancel_restore(old);
	return ret;
}

/* A handle's per-CPU fields: none (the fallback) for a failed one. */
static void
shmet_impl_percpu_fields(const struct shmet_family *fam, unsigned char *cpu0,
			 unsigned char **out_cpu0, uint64_t *stride,
			 uint32_t *cpus)
{
	*out_cpu0 = cpu0;
	*stride = cpu0 ? fam->seg->hdr->block_stride : 0;
	*cpus = cpu0 ? fam->seg->hdr->cpu_blocks : 0;
}

int
shmet_counter_labels(const struct shmet_family *fam, struct shmet_counter *out,
		     uint32_t count, const char *const *values)
{
	struct shmet_impl_gen gen;
	unsigned char *cpu0;
	int rc;

	out->cell = shmet_impl_resolve(fam, SHMET_TYPE_COUNTER, count, values,
				       &rc, &cpu0, &gen);
	out->gen = gen.at;
	out->expect = gen.expect;
	shmet_impl_percpu_fields(fam, rc == 0 ? cpu0 : NULL, &out->cpu0,
				 &out->stride, &out->cpus);
	return rc;
}

int
shmet_gauge_labels(const struct shmet_family *fam, struct shmet_gauge *out,
		   uint32_t count, const char *const *values)
{
	struct shmet_impl_gen gen;
	unsigned char *cpu0;
	int rc;

	out->cell = shmet_impl_resolve(fam, SHMET_TYPE_GAUGE, count, values,
				       &rc, &cpu0, &gen);
	out->gen = gen.at;
	out->expect = gen.expect;
	out->timed = rc == 0 && (fam->gauge_mode == SHMET_GAUGE_MOSTRECENT ||
				 fam->gauge_mode == SHMET_GAUGE_LIVEMOSTRECENT);
	return rc;
}

int
shmet_histogram_labels(const struct shmet_family *fam,
		       struct shmet_histogram *out, uint32_t count,
		       const char *const *values)
{
	struct shmet_impl_gen gen;
	unsigned char *cpu0;
	int rc;

	out->cell = shmet_impl_resolve(fam, SHMET_TYPE_HISTOGRAM, count, values,
				       &rc, &cpu0, &gen);
	out->gen = gen.at;
	out->expect = gen.expect;
	out->bounds = rc == 0 ? fam->bounds : NULL;
	out->bound_count = rc == 0 ? fam->bound_count : 0;
	shmet_impl_percpu_fields(fam, rc == 0 ? cpu0 : NULL, &out->cpu0,
				 &out->stride, &out->cpus);
	return rc;
}

int
shmet_counter_new(struct shmet_segment *seg, struct shmet_counter *out,
		  const char *name, const char *help)
{
	struct shmet_family f;
	int rc = shmet_counter_family(seg, &f, name, help, 0, NULL);
	int rc2 = shmet_counter_labels(&f, out, 0, NULL);

	return rc < 0 ? rc : rc2;
}

int
shmet_gauge_new(struct shmet_segment *seg, struct shmet_gauge *out,
		const char *name, const char *help, uint32_t gauge_mode)
{
	struct shmet_family f;
	int rc = shmet_gauge_family(seg, &f, name, help, gauge_mode, 0, NULL);
	int rc2 = shmet_gauge_labels(&f, out, 0, NULL);

	return rc < 0 ? rc : rc2;
}

int
shmet_histogram_new(struct shmet_segment *seg, struct shmet_histogram *out,
		    const char *name, const char *help, uint32_t bound_count,
		    const double *bounds)
{
	struct shmet_family f;
	int rc = shmet_histogram_family(seg, &f, name, help, bound_count,
					bounds, 0, NULL);
	int rc2 = shmet_histogram_labels(&f, out, 0, NULL);

	return rc < 0 ? rc : rc2;
}

uint32_t
shmet_linear_bounds(double start, double width, uint32_t count, double *out)
{
	if (count == 0 || count > SHMET_MAX_BOUNDS || !(width > 0))
		return 0;
	for (uint32_t i = 0; i < count; i++)
		out[i] = start + width * i;
	return count;
}

uint32_t
shmet_exponential_bounds(double start, double factor, uint32_t count,
			 double *out)
{
	if (count == 0 || count > SHMET_MAX_BOUNDS || !(start > 0) ||
	    !(factor > 1))
		return 0;
	out[0] = start;
	for (uint32_t i = 1; i < count; i++)
		out[i] = out[i - 1] * factor;
	return count;
}
