/*
 * The rule book (include/shmetrics/rules.h): cell roles, gauge folding,
 * page names, record shape.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include <shmetrics/rules.h>

#include "test-common.h"

START_TEST(test_rules_cells)
{
	/* layout.h, "Cells" */
	ck_assert_uint_eq(shmet_seg_cell_counter_int(10), 10);
	ck_assert_uint_eq(shmet_seg_cell_counter_float(10), 11);
	ck_assert_uint_eq(shmet_seg_cell_gauge_value(10), 10);
	ck_assert_uint_eq(shmet_seg_cell_gauge_stamp(10), 11);
	ck_assert_uint_eq(shmet_seg_cell_bucket(10, 3), 13);
	ck_assert_uint_eq(shmet_seg_cell_hist_sum(10, 3), 14);
	/* the float-sum cell is the last of the series' cells */
	ck_assert_uint_eq(shmet_seg_cell_float_sum(
		10, shmet_seg_cells_for(SHMET_TYPE_COUNTER, 0)),
		shmet_seg_cell_counter_float(10));
	ck_assert_uint_eq(shmet_seg_cell_float_sum(
		10, shmet_seg_cells_for(SHMET_TYPE_HISTOGRAM, 3)),
		shmet_seg_cell_hist_sum(10, 3));
	/* in bytes, for the rseq sections: bucket 1 of 3 bounds at 8, the
	 * sum 3 cells further (buckets 2, +Inf, then the sum) */
	ck_assert_uint_eq(shmet_seg_cell_bucket_bytes(1), 8);
	ck_assert_uint_eq(shmet_seg_cell_bucket_to_sum_bytes(3, 1), 24);
	ck_assert_uint_eq(shmet_seg_cell_bucket_to_sum_bytes(3, 3), 8);
	/* the rseq float add's constant 8 (inline-impl.h, both arches) */
	ck_assert_uint_eq(8u * shmet_seg_cell_counter_float(0), 8);
}
END_TEST

/* Fold xs (stamps ts) by mode; the result and its stamp. */
static double
fold(uint32_t mode, const double *xs, const uint64_t *ts, int n,
     uint64_t *stamp)
{
	double acc = 12345;
	uint64_t s = 999;

	for (int i = 0; i < n; i++)
		shmet_seg_gauge_fold(mode, i == 0, &acc, &s, xs[i], ts[i]);
	*stamp = s;
	return acc;
}

START_TEST(test_rules_gauge_fold)
{
	const double xs[] = { 3, -1, 7, 2 };
	const uint64_t ts[] = { 50, 90, 20, 90 };
	const double nan_first[] = { NAN, 1 }, nan_later[] = { 1, NAN };
	const double negzero[] = { -0.0 };
	uint64_t st;
	double acc;

	ck_assert_double_eq(fold(SHMET_GAUGE_SUM, xs, ts, 4, &st), 11);
	ck_assert_uint_eq(st, 90);
	ck_assert_double_eq(fold(SHMET_GAUGE_LIVESUM, xs, ts, 4, &st), 11);
	ck_assert_double_eq(fold(SHMET_GAUGE_MAX, xs, ts, 4, &st), 7);
	ck_assert_double_eq(fold(SHMET_GAUGE_MIN, xs, ts, 4, &st), -1);
	/* the newest stamp wins; of two equal ones, the later fold */
	ck_assert_double_eq(fold(SHMET_GAUGE_MOSTRECENT, xs, ts, 4, &st), 2);
	ck_assert_uint_eq(st, 90);
	ck_assert_double_eq(fold(SHMET_GAUGE_LIVEMOSTRECENT, xs, ts, 3, &st),
			    -1);
	/* not the mean (shmetrics-top once averaged mostrecent) */
	ck_assert_double_ne(fold(SHMET_GAUGE_MOSTRECENT, xs, ts, 4, &st),
			    (3 - 1 + 7 + 2) / 4.0);
	/* a NaN never replaces an extreme; a first NaN stands until a
	 * number compares (it never does) */
	acc = fold(SHMET_GAUGE_MAX, nan_later, ts, 2, &st);
	ck_assert_double_eq(acc, 1);
	acc = fold(SHMET_GAUGE_MAX, nan_first, ts, 2, &st);
	ck_assert(isnan(acc));
	/* a sum starts from 0: a lone -0 is 0 */
	acc = fold(SHMET_GAUGE_SUM, negzero, ts, 1, &st);
	ck_assert(!signbit(acc));
	acc = fold(SHMET_GAUGE_MOSTRECENT, negzero, ts, 1, &st);
	ck_assert(signbit(acc));
	/* the return says whether the value changed */
	acc = 5;
	st = 10;
	ck_assert_int_eq(shmet_seg_gauge_fold(SHMET_GAUGE_MAX, 0, &acc, &st,
					      4, 20), 0);
	ck_assert_double_eq(acc, 5);
	ck_assert_uint_eq(st, 10);
}
END_TEST

START_TEST(test_rules_names)
{
	ck_assert_str_eq(shmet_seg_type_name(SHMET_TYPE_COUNTER), "counter");
	ck_assert_str_eq(shmet_seg_type_name(SHMET_TYPE_GAUGE), "gauge");
	ck_assert_str_eq(shmet_seg_type_name(SHMET_TYPE_HISTOGRAM),
			 "histogram");
	ck_assert_str_eq(shmet_seg_type_name(99), "unknown");
	ck_assert_str_eq(shmet_seg_sample_suffix(SHMET_TYPE_COUNTER, "a", 1),
			 "_total");
	ck_assert_str_eq(shmet_seg_sample_suffix(SHMET_TYPE_COUNTER,
						 "a_total", 7), "");
	ck_assert_str_eq(shmet_seg_sample_suffix(SHMET_TYPE_GAUGE, "a", 1),
			 "");
	ck_assert_str_eq(shmet_seg_sample_suffix(SHMET_TYPE_GAUGE,
						 "a_total", 7), "");
	ck_assert_int_eq(shmet_seg_has_total("_total", 6), 1);
	ck_assert_int_eq(shmet_seg_has_total("total", 5), 0);
	/* the family name of a TYPE line follows from the same rule */
	ck_assert_uint_eq(shmet_seg_family_base_len(SHMET_TYPE_COUNTER,
						    "a_total", 7), 1);
}
END_TEST

START_TEST(test_rules_record_shape)
{
	const uint32_t H = SHMET_TYPE_HISTOGRAM, G = SHMET_TYPE_GAUGE,
		       C = SHMET_TYPE_COUNTER;

	ck_assert_ptr_null(shmet_seg_family_shape_invalid(C, 0, 2, 0, 0, 0,
							  2));
	ck_assert_ptr_null(shmet_seg_family_shape_invalid(
		G, SHMET_GAUGE_MAX, 0, 0, 0, 0, 2));
	ck_assert_ptr_null(shmet_seg_family_shape_invalid(H, 0, 1, 3, 16, 24,
							  5));
	ck_assert_str_eq(shmet_seg_family_shape_invalid(7, 0, 0, 0, 0, 0, 2),
			 "unknown type");
	ck_assert_str_eq(shmet_seg_family_shape_invalid(
				 C, 0, SHMET_MAX_LABELS + 1, 0, 0, 0, 2),
			 "too many labels");
	ck_assert_str_eq(shmet_seg_family_shape_invalid(H, 0, 0, 0, 0, 0, 2),
			 "bound count does not fit the type");
	ck_assert_str_eq(shmet_seg_family_shape_invalid(C, 0, 0, 1, 0, 8, 3),
			 "bound count does not fit the type");
	ck_assert_str_eq(shmet_seg_family_shape_invalid(H, 0, 0, 3, 4, 24, 5),
			 "bounds reference does not match the bound count");
	ck_assert_str_eq(shmet_seg_family_shape_invalid(H, 0, 0, 3, 8, 16, 5),
			 "bounds reference does not match the bound count");
	ck_assert_str_eq(shmet_seg_family_shape_invalid(G, 0, 0, 0, 0, 0, 2),
			 "gauge mode does not fit the type");
	ck_assert_str_eq(shmet_seg_family_shape_invalid(
				 C, SHMET_GAUGE_SUM, 0, 0, 0, 0, 2),
			 "gauge mode does not fit the type");
	ck_assert_str_eq(shmet_seg_family_shape_invalid(H, 0, 0, 3, 8, 24, 4),
			 "cells per series do not match the type");
}
END_TEST

TEST_SUITE(rules)
{
	Suite *s = suite_create("rules");
	TCase *tc = tcase_create("rules");

	tcase_add_test(tc, test_rules_cells);
	tcase_add_test(tc, test_rules_gauge_fold);
	tcase_add_test(tc, test_rules_names);
	tcase_add_test(tc, test_rules_record_shape);
	suite_add_tcase(s, tc);
	return s;
}
