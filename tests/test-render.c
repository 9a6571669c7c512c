/*
 * Renderer details that golden files do not pin down: number formatting,
 * escaping, invalid UTF-8, buffer growth, and JSON that jansson parses.
 */
#include "config.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-common.h"

static const char *
fmt(double d)
{
	static char out[64];

	shmet_format_double(out, d);
	return out;
}

START_TEST(test_render_numbers_round_trip)
{
	static const double values[] = { 0.1, 1.0 / 3, 1e-300, 5e-324, 1e21,
					 123456789.125, -2.5e-8, 0.3,
					 1.7976931348623157e308, 2.2250738585072014e-308 };

	ck_assert_str_eq(fmt(42), "42");
	ck_assert_str_eq(fmt(-7), "-7");
	ck_assert_str_eq(fmt(0.1), "0.1");
	ck_assert_str_eq(fmt(5e-324), "5e-324");
	ck_assert_str_eq(fmt(INFINITY), "+Inf");
	ck_assert_str_eq(fmt(-INFINITY), "-Inf");
	ck_assert_str_eq(fmt(NAN), "NaN");
	ck_assert_str_eq(fmt(-0.0), "-0");
	for (unsigned i = 0; i < sizeof values / sizeof values[0]; i++)
		ck_assert_msg(strtod(fmt(values[i]), NULL) == values[i],
			      "%s does not round-trip", fmt(values[i]));
}
END_TEST

START_TEST(test_render_buffer_grows)
{
	struct shmet_buf b = { 0 };

	for (int i = 0; i < 100000; i++)
		ck_assert_int_eq(shmet_buf_printf(&b, "%d,", i), 0);
	ck_assert_uint_gt(b.len, 500000);
	ck_assert_uint_eq(strlen(b.data), b.len);
	ck_assert(strncmp(b.data + b.len - 6, "99999,", 6) == 0);
	shmet_buf_free(&b);
}
END_TEST

START_TEST(test_render_json_escaping_and_utf8)
{
	struct shmet_buf b = { 0 };

	shmet_buf_put_json_escaped(&b, "a\"b\\c\nd\te\x01 \xff\xfe ok ✓");
	ck_assert_str_eq(b.data, "a\\\"b\\\\c\\nd\\u0009e\\u0001 "
				 "\xef\xbf\xbd\xef\xbf\xbd ok ✓");
	shmet_buf_free(&b);
}
END_TEST

START_TEST(test_render_json_parses_with_jansson)
{
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;
	struct shmet_gauge g;
	struct test_snapshot s;
	struct shmet_buf b = { 0 };
	static const struct {
		struct shmet_reader_info in;
		const char *status;
	} fills[] = {
		{ { .max_series = 10, .series_used = 10, .series_in_use = 10 },
		  "degraded" },
		/* 10 handed out, 5 removed and waiting: the pools of cells
		 * and strings are full, and reuse takes them back */
		{ { .max_series = 10, .series_used = 10, .series_in_use = 5,
		    .cells_per_block = 100, .cells_used = 100,
		    .string_bytes = 100, .strings_used = 100 },
		  "healthy" },
		/* nothing to reuse: a full pool of strings is full */
		{ { .max_series = 10, .series_used = 5, .series_in_use = 5,
		    .string_bytes = 100, .strings_used = 95 },
		  "degraded" },
		{ { .max_families = 10, .families_used = 10,
		    .families_in_use = 9 },
		  "healthy" },
		{ { .max_families = 10, .families_used = 10,
		    .families_in_use = 10 },
		  "degraded" },
	};
	json_error_t jerr;
	json_t *doc, *m;
	static const char *const l[] = { "k" };
	const char *bad[1] = { "bad \xff utf8 \"q\"" };

	test_open(&seg, NULL);
	shmet_counter_family(&seg, &f, "j_total", "j", 1, l);
	shmet_counter_labels(&f, &c, 1, bad);
	shmet_counter_add(&c, UINT64_MAX);
	shmet_gauge_new(&seg, &g, "j_gauge", "g", SHMET_GAUGE_SUM);
	shmet_gauge_set(&g, NAN);
	test_snapshot_take(&s);
	ck_assert_int_eq(shmet_render_json(s.index, s.values, 0, &b), 0);
	doc = json_loads(b.data, 0, &jerr);
	ck_assert_msg(doc != NULL, "jansson: %s at line %d: %s", jerr.text,
		      jerr.line, b.data);
	ck_assert_str_eq(json_string_value(json_object_get(doc, "timestamp")),
			 "1970-01-01T00:00:00Z");
	ck_assert_str_eq(json_string_value(json_object_get(doc, "registry")),
			 "application");
	m = json_object_get(doc, "metrics");
	ck_assert_int_eq(json_object_size(m), 2);
	ck_assert_str_eq(json_string_value(json_object_get(m, "j_gauge")),
			 "NaN");
	ck_assert(json_is_real(json_object_get(
		m, "j_total{k=bad \xef\xbf\xbd utf8 \"q\"}")));
	json_decref(doc);
	/* full is what is in use: churn keeps the high-water marks at the
	 * capacity while removed records are reused */
	for (unsigned i = 0; i < sizeof fills / sizeof *fills; i++) {
		shmet_buf_reset(&b);
		ck_assert_int_eq(shmet_render_health(s.index, &fills[i].in,
						     &b), 0);
		doc = json_loads(b.data, 0, &jerr);
		ck_assert_ptr_nonnull(doc);
		ck_assert_msg(strcmp(json_string_value(json_object_get(
					     doc, "status")),
				     fills[i].status) == 0,
			      "fill %u: %s", i, b.data);
		ck_assert_int_eq(shmet_health_degraded(&fills[i].in),
				 strcmp(fills[i].status, "degraded") == 0);
		ck_assert_uint_eq(json_integer_value(json_object_get(
					  json_object_get(doc, "segment"),
					  "series_in_use")),
				  fills[i].in.series_in_use);
		json_decref(doc);
	}
	shmet_buf_free(&b);
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_render_text_sorted_and_stable)
{
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;
	struct test_snapshot s;
	struct shmet_buf a = { 0 }, b = { 0 };
	static const char *const l[] = { "k" };
	const char *names[] = { "zeta_total", "alpha_total", "mid_total" };

	test_open(&seg, NULL);
	for (int i = 0; i < 3; i++) {
		shmet_counter_family(&seg, &f, names[i], "h", 1, l);
		shmet_counter_labels(&f, &c, SHMET_VALUES("b"));
		shmet_counter_labels(&f, &c, SHMET_VALUES("a"));
	}
	test_snapshot_take(&s);
	shmet_render_text(s.index, s.values, &a);
	shmet_render_text(s.index, s.values, &b);
	ck_assert_str_eq(a.data, b.data);
	ck_assert(strstr(a.data, "alpha_total{k=\"a\"}") <
		  strstr(a.data, "alpha_total{k=\"b\"}"));
	ck_assert(strstr(a.data, "# HELP alpha") < strstr(a.data, "# HELP mid"));
	ck_assert(strstr(a.data, "# HELP mid") < strstr(a.data, "# HELP zeta"));
	shmet_buf_free(&a);
	shmet_buf_free(&b);
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_render_extra_families)
{
	struct shmet_segment seg;
	struct shmet_counter c;
	struct test_snapshot s;
	struct shmet_buf b = { 0 };
	static const struct shmet_extra_label state[] = {
		{ "state", "a\"b\\c\nd" },
	};
	static const struct shmet_extra_sample one = { NULL, 0, 1.5 };
	static const struct shmet_extra_sample labeled = { state, 1, 3 };
	const struct shmet_extra_family fams[] = {
		{ "own_events_total", "Own \\ events\n.", SHMET_TYPE_COUNTER,
		  &one, 1 },
		{ "own_state", NULL, SHMET_TYPE_GAUGE, &labeled, 1 },
		/* the segment has seg_calls (samples seg_calls_total) */
		{ "seg_calls_total", "dup", SHMET_TYPE_COUNTER, &one, 1 },
	};
	struct shmet_extra_family bad = fams[0];

	test_open(&seg, NULL);
	shmet_counter_new(&seg, &c, "seg_calls", "calls");
	shmet_counter_inc(&c);
	test_snapshot_take(&s);
	ck_assert_int_eq(shmet_render_families_text(s.index, s.values, fams,
						    3, &b), 0);
	ck_assert_str_eq(b.data,
		"# HELP seg_calls_total calls\n"
		"# TYPE seg_calls_total counter\n"
		"seg_calls_total 1\n"
		"# HELP own_events_total Own \\\\ events\\n.\n"
		"# TYPE own_events_total counter\n"
		"own_events_total 1.5\n"
		"# HELP own_state \n"
		"# TYPE own_state gauge\n"
		"own_state{state=\"a\\\"b\\\\c\\nd\"} 3\n");
	shmet_buf_reset(&b);
	ck_assert_int_eq(shmet_render_families_openmetrics(s.index, s.values,
							   fams, 3, &b), 0);
	ck_assert_str_eq(b.data,
		"# TYPE seg_calls counter\n"
		"# HELP seg_calls calls\n"
		"seg_calls_total 1\n"
		"# TYPE own_events counter\n"
		"# HELP own_events Own \\\\ events\\n.\n"
		"own_events_total 1.5\n"
		"# TYPE own_state gauge\n"
		"# HELP own_state \n"
		"own_state{state=\"a\\\"b\\\\c\\nd\"} 3\n"
		"# EOF\n");
	/* Without a segment: the described families and one # EOF. */
	shmet_buf_reset(&b);
	ck_assert_int_eq(shmet_render_families_openmetrics(NULL, NULL,
							   &fams[2], 1, &b),
			 0);
	ck_assert_str_eq(b.data, "# TYPE seg_calls counter\n"
				 "# HELP seg_calls dup\n"
				 "seg_calls_total 1.5\n# EOF\n");
	shmet_buf_reset(&b);
	bad.type = SHMET_TYPE_HISTOGRAM;
	ck_assert_int_eq(shmet_render_families_text(NULL, NULL, &bad, 1, &b),
			 -EINVAL);
	ck_assert_uint_eq(b.len, 0);
	shmet_buf_free(&b);
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

/* /metrics/json keys are "name{k=v,...}": a value with , = } \ in it is
 * escaped, so two label sets never share a key (one value would be lost). */
START_TEST(test_render_json_keys_distinct)
{
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;
	struct test_snapshot s;
	struct shmet_buf b = { 0 };
	static const char *const l[] = { "a", "b" };
	json_t *doc, *m;
	json_error_t jerr;

	test_open(&seg, NULL);
	shmet_counter_family(&seg, &f, "k_total", "k", 2, l);
	shmet_counter_labels(&f, &c, SHMET_VALUES("1,b=2", "3"));
	shmet_counter_inc(&c);
	shmet_counter_labels(&f, &c, SHMET_VALUES("1", "2,b=3"));
	shmet_counter_add(&c, 2);
	shmet_counter_labels(&f, &c, SHMET_VALUES("plain", "x\\y}"));
	shmet_counter_add(&c, 3);
	test_snapshot_take(&s);
	ck_assert_int_eq(shmet_render_json(s.index, s.values, 0, &b), 0);
	doc = json_loads(b.data, 0, &jerr);
	ck_assert_msg(doc != NULL, "jansson: %s: %s", jerr.text, b.data);
	m = json_object_get(doc, "metrics");
	ck_assert_int_eq(json_object_size(m), 3);
	ck_assert(json_is_number(json_object_get(m, "k_total{a=1\\,b\\=2,b=3}")));
	ck_assert(json_is_number(json_object_get(m, "k_total{a=1,b=2\\,b\\=3}")));
	ck_assert(json_is_number(json_object_get(m,
		"k_total{a=plain,b=x\\\\y\\}}")));
	json_decref(doc);
	shmet_buf_free(&b);
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

/* Observations OpenMetrics has no _sum for: the page must still parse. */
START_TEST(test_render_openmetrics_sum_rules)
{
	struct shmet_segment seg;
	struct shmet_histogram neg, big, fine;
	struct test_snapshot s;
	struct shmet_buf om = { 0 }, text = { 0 };
	static const double negb[] = { -1, 0, 1 }, posb[] = { 1, 2 };
	/* No rseq for this thread (and the fork child): the +Inf sum stays
	 * in our process block and the -Inf in the child's, whatever CPUs
	 * we run on (per-CPU cells would add both in one cell: +Inf). */
	static struct shmet_impl_rseq none = { 0, -1, 0, 0, 0, 0, 0 };
	struct shmet_impl_rseq *mine = shmet_impl_rseq_tls;

	shmet_impl_rseq_tls = &none;
	test_open(&seg, NULL);
	shmet_histogram_new(&seg, &neg, "om_neg", "negative buckets", 3, negb);
	shmet_histogram_observe(&neg, 0.5);
	shmet_histogram_new(&seg, &big, "om_nan", "sum goes NaN", 2, posb);
	shmet_histogram_observe(&big, DBL_MAX);
	shmet_histogram_observe(&big, DBL_MAX);          /* this block: +Inf */
	{
		pid_t pid = fork();
		int status;

		if (pid == 0) {
			shmet_histogram_observe(&big, -DBL_MAX);
			shmet_histogram_observe(&big, -DBL_MAX); /* -Inf */
			_exit(0);
		}
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	}
	shmet_histogram_new(&seg, &fine, "om_fine", "a plain one", 2, posb);
	shmet_histogram_observe(&fine, 1.5);
	shmet_impl_rseq_tls = mine;
	test_snapshot_take(&s);
	ck_assert_int_eq(shmet_render_openmetrics(s.index, s.values, &om), 0);
	ck_assert_int_eq(shmet_render_text(s.index, s.values, &text), 0);
	ck_assert_ptr_null(strstr(om.data, "om_neg_sum"));
	ck_assert_ptr_null(strstr(om.data, "om_nan_sum"));
	ck_assert_ptr_null(strstr(om.data, "om_neg_count"));
	ck_assert_ptr_null(strstr(om.data, "om_nan_count"));
	ck_assert_ptr_nonnull(strstr(om.data, "om_nan_bucket{le=\"+Inf\"} 4\n"));
	ck_assert_ptr_nonnull(strstr(om.data, "om_fine_sum 1.5\n"));
	/* the text format has no such rule and keeps every _sum */
	ck_assert_ptr_nonnull(strstr(text.data, "om_neg_sum 0.5\n"));
	ck_assert_ptr_nonnull(strstr(text.data, "om_nan_sum NaN\n"));
	shmet_buf_free(&om);
	shmet_buf_free(&text);
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

TEST_SUITE(render)
{
	Suite *s = suite_create("render");
	TCase *tc = tcase_create("Formatting");

	tcase_add_checked_fixture(tc, test_segment_setup, test_segment_teardown);
	tcase_add_test(tc, test_render_numbers_round_trip);
	tcase_add_test(tc, test_render_buffer_grows);
	tcase_add_test(tc, test_render_json_escaping_and_utf8);
	tcase_add_test(tc, test_render_json_parses_with_jansson);
	tcase_add_test(tc, test_render_text_sorted_and_stable);
	tcase_add_test(tc, test_render_extra_families);
	tcase_add_test(tc, test_render_openmetrics_sum_rules);
	tcase_add_test(tc, test_render_json_keys_distinct);
	suite_add_tcase(s, tc);
	return s;
}
