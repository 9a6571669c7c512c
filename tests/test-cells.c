/*
 * Where series' cells go (writer/cells.c, format.h "Gauge chunks"):
 * gauges from dense chunks, the other types around them, no cell shared,
 * every cell of a segment still usable by some series.
 */
#include "test-common.h"

#include <errno.h>

#include <shmetrics/format.h>

static const char *const one[] = { "id" };

/* Series i of the snapshot's first cell and cells (by its family). */
static void
series_cells(const struct test_snapshot *s, uint32_t i, uint32_t *first,
	     uint32_t *n, uint32_t *type)
{
	const struct shmet_index_series *x = shmet_index_series(s->index, i);
	const struct shmet_index_family *f =
		shmet_index_family(s->index, x->family);

	*first = x->first_cell;
	*n = f->cells_per_series;
	*type = f->type;
}

/* No two series of the snapshot share a cell. */
static void
assert_disjoint(const struct test_snapshot *s)
{
	uint32_t n = shmet_index_series_count(s->index);
	uint32_t *lo = calloc(n, sizeof *lo), *hi = calloc(n, sizeof *hi);

	ck_assert_ptr_nonnull(lo);
	ck_assert_ptr_nonnull(hi);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t c, k, t;

		series_cells(s, i, &c, &k, &t);
		lo[i] = c;
		hi[i] = c + k;
	}
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = i + 1; j < n; j++)
			ck_assert_msg(hi[i] <= lo[j] || hi[j] <= lo[i],
				      "series %u [%u,%u) and %u [%u,%u) overlap",
				      i, lo[i], hi[i], j, lo[j], hi[j]);
	free(lo);
	free(hi);
}

/* Interleaved registrations: the gauges' cells are one dense run per
 * chunk, starting on a cache line, and the others' fill in around them;
 * every value reads back. */
START_TEST(test_gauges_take_dense_chunks)
{
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct shmet_family fc, fg, fh;
	struct shmet_counter c;
	struct shmet_gauge g;
	struct shmet_histogram h;
	struct test_snapshot s;
	double b[] = { 1, 2, 3 };
	char v[32];
	const char *vals[1] = { v };
	uint32_t chunk = shmet_seg_gauge_chunk_cells(65536), prev = 0, runs = 0;

	ck_assert_uint_eq(chunk, 1024);         /* a 64th */
	o.cells_per_block = 65536;
	test_open(&seg, &o);
	ck_assert_int_eq(shmet_counter_family(&seg, &fc, "c_total", "c", 1,
					      one), 0);
	ck_assert_int_eq(shmet_gauge_family(&seg, &fg, "g", "g",
					    SHMET_GAUGE_LIVESUM, 1, one), 0);
	ck_assert_int_eq(shmet_histogram_family(&seg, &fh, "h_seconds", "h",
						3, b, 1, one), 0);
	/* 600 of each, in turn: 1200 gauge cells, two chunks */
	for (int i = 0; i < 600; i++) {
		snprintf(v, sizeof v, "%d", i);
		ck_assert_int_eq(shmet_counter_labels(&fc, &c, 1, vals), 0);
		ck_assert_int_eq(shmet_gauge_labels(&fg, &g, 1, vals), 0);
		ck_assert_int_eq(shmet_histogram_labels(&fh, &h, 1, vals), 0);
		shmet_counter_add(&c, (uint64_t)i + 1);
		shmet_gauge_set(&g, i + 0.5);
		shmet_histogram_observe(&h, 2);
	}
	test_snapshot_take(&s);
	assert_disjoint(&s);
	for (int i = 0; i < 600; i++) {
		uint32_t first, n, type;
		int pos;

		snprintf(v, sizeof v, "%d", i);
		pos = test_find_series(&s, "c_total", 1, vals);
		ck_assert_int_ge(pos, 0);
		ck_assert_double_eq(shmet_values_counter(s.values, s.index,
							 (uint32_t)pos),
				    i + 1);
		ck_assert_uint_eq(test_hist_count("h_seconds", 1, vals), 1);
		pos = test_find_series(&s, "g", 1, vals);
		ck_assert_int_ge(pos, 0);
		ck_assert_double_eq(test_gauge(&s, (uint32_t)pos), i + 0.5);
		/* in registration order, a gauge follows the one before
		 * it, except where a new chunk starts (on a cache line) */
		series_cells(&s, (uint32_t)pos, &first, &n, &type);
		ck_assert_uint_eq(type, SHMET_TYPE_GAUGE);
		if (i == 0 || first != prev + 2) {
			runs++;
			ck_assert_uint_eq(first % SHMET_GAUGE_CHUNK_ALIGN, 0);
			ck_assert_uint_eq(i % (chunk / 2), 0);
		}
		prev = first;
	}
	ck_assert_uint_eq(runs, 2);
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

static uint32_t
cells_used(void)
{
	struct shmet_reader *r;
	struct shmet_reader_info info;
	char err[256];

	ck_assert_int_eq(shmet_reader_open(test_segment_name, &r, err,
					   sizeof err), 0);
	shmet_reader_info(r, &info);
	shmet_reader_close(r);
	return info.cells_used;
}

/* A small segment's chunks are a 64th of it.  When no chunk fits, a
 * gauge still gets the two cells that do; other series cannot use a
 * chunk's free cells, gauges can, to the segment's last cell. */
START_TEST(test_small_segment_fills_every_cell)
{
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct shmet_family fc, fg;
	struct shmet_counter c;
	struct shmet_gauge g;
	struct test_snapshot s;
	char v[32];
	const char *vals[1] = { v };
	int i, rc, gauges = 0;

	ck_assert_uint_eq(shmet_seg_gauge_chunk_cells(512), 8);
	ck_assert_uint_eq(shmet_seg_gauge_chunk_cells(4096), 64);
	ck_assert_uint_eq(shmet_seg_gauge_chunk_cells(100), 8);
	ck_assert_uint_eq(shmet_seg_gauge_chunk_cells(524288), 8192);
	ck_assert_uint_eq(shmet_seg_gauge_chunk_cells(1u << 30), 8192);
	o.cells_per_block = 512;

	/* 255 counters (510 cells), then a gauge: no chunk fits */
	test_open(&seg, &o);
	ck_assert_int_eq(shmet_counter_family(&seg, &fc, "c_total", "c", 1,
					      one), 0);
	ck_assert_int_eq(shmet_gauge_family(&seg, &fg, "g", "g",
					    SHMET_GAUGE_LIVESUM, 1, one), 0);
	for (i = 0; i < 255; i++) {
		snprintf(v, sizeof v, "c%d", i);
		ck_assert_int_eq(shmet_counter_labels(&fc, &c, 1, vals), 0);
	}
	strcpy(v, "g0");
	ck_assert_int_eq(shmet_gauge_labels(&fg, &g, 1, vals), 0);
	shmet_gauge_set(&g, 7);
	ck_assert_uint_eq(cells_used(), 512);
	strcpy(v, "g1");
	ck_assert_int_eq(shmet_gauge_labels(&fg, &g, 1, vals), -ENOSPC);
	test_snapshot_take(&s);
	assert_disjoint(&s);
	strcpy(v, "g0");
	ck_assert_double_eq(test_gauge(&s, (uint32_t)test_find_series(
						   &s, "g", 1, vals)),
			    7);
	test_snapshot_free(&s);
	shmet_close(&seg);
	shmet_unlink(test_segment_name);

	/* A counter (cells 0-1), then gauges and counters in turn: each
	 * 8-cell chunk starts on a line (cells 2-7 are lost) and holds 4
	 * gauges; the counters run out when the last chunk is carved
	 * (cells 504-511), whose other 3 gauges still fit. */
	test_open(&seg, &o);
	ck_assert_int_eq(shmet_counter_family(&seg, &fc, "c_total", "c", 1,
					      one), 0);
	ck_assert_int_eq(shmet_gauge_family(&seg, &fg, "g", "g",
					    SHMET_GAUGE_LIVESUM, 1, one), 0);
	strcpy(v, "x");
	ck_assert_int_eq(shmet_counter_labels(&fc, &c, 1, vals), 0);
	for (i = 0, rc = 0; rc == 0; i++) {
		snprintf(v, sizeof v, "%d", i);
		rc = i % 2 ? shmet_counter_labels(&fc, &c, 1, vals)
			   : shmet_gauge_labels(&fg, &g, 1, vals);
		gauges += rc == 0 && i % 2 == 0;
	}
	ck_assert_int_eq(i - 1, 249);           /* the 125th counter */
	ck_assert_int_eq(gauges, 125);
	for (rc = 0; rc == 0; i++) {
		snprintf(v, sizeof v, "%d", i);
		rc = shmet_gauge_labels(&fg, &g, 1, vals);
		gauges += rc == 0;
	}
	ck_assert_int_eq(rc, -ENOSPC);
	ck_assert_int_eq(gauges, 128);          /* 32 chunks of 4 */
	ck_assert_uint_eq(cells_used(), 512);
	test_snapshot_take(&s);
	assert_disjoint(&s);
	ck_assert_uint_eq(shmet_index_series_count(s.index), 1 + 124 + 128);
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

TEST_SUITE(cells)
{
	Suite *s = suite_create("cells");
	TCase *tc;

	tc = tcase_create("Gauge chunks");
	tcase_add_checked_fixture(tc, test_segment_setup, test_segment_teardown);
	tcase_add_test(tc, test_gauges_take_dense_chunks);
	tcase_add_test(tc, test_small_segment_fills_every_cell);
	suite_add_tcase(s, tc);
	return s;
}
