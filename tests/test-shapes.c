/*
 * Shapes across releases (docs/DESIGN.md): a name registered again with
 * other label names, buckets, help, unit, gauge mode or type counts, and
 * pages show one family with the newest help and type.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "test-common.h"

/* The text page of the test segment, NUL-terminated (caller frees). */
static char *
text_page(void)
{
	struct test_snapshot s;
	struct shmet_buf b = { 0 };
	char *out;

	test_snapshot_take(&s);
	ck_assert_int_eq(shmet_render_text(s.index, s.values, &b), 0);
	out = strndup(b.data ? b.data : "", b.len);
	shmet_buf_free(&b);
	test_snapshot_free(&s);
	return out;
}

static unsigned
occurrences(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void
assert_line(const char *page, const char *line)
{
	char want[512];

	snprintf(want, sizeof want, "\n%s\n", line);
	ck_assert_msg(strstr(page, want) ||
		      (strncmp(page, want + 1, strlen(want + 1)) == 0),
		      "no line '%s' in:\n%s", line, page);
}

START_TEST(test_other_label_names)
{
	static const char *const v1[] = { "route" };
	static const char *const v2[] = { "route", "status" };
	struct shmet_segment seg;
	struct shmet_family f1, f2, f0;
	struct shmet_counter c1, c2, c0;
	char *page;

	test_open(&seg, NULL);
	/* release 1 */
	ck_assert_int_eq(shmet_counter_family(&seg, &f1, "requests_total",
					      "old help", 1, v1), 0);
	ck_assert_int_eq(shmet_counter_labels(&f1, &c1, SHMET_VALUES("/a")), 0);
	for (int i = 0; i < 1000; i++)
		shmet_counter_inc(&c1);
	/* release 2, while release 1 still counts */
	ck_assert_int_eq(shmet_counter_family(&seg, &f2, "requests_total",
					      "new help", 2, v2), 0);
	ck_assert_uint_ne(f2.id, f1.id);
	ck_assert_int_eq(shmet_counter_labels(&f2, &c2,
					      SHMET_VALUES("/a", "200")), 0);
	for (int i = 0; i < 1000; i++)
		shmet_counter_inc(&c2);
	shmet_counter_add(&c1, 5);
	/* and one with no labels at all */
	ck_assert_int_eq(shmet_counter_new(&seg, &c0, "requests_total",
					   "newest help"), 0);
	shmet_counter_add(&c0, 3);
	(void)f0;

	page = text_page();
	ck_assert_uint_eq(occurrences(page, "# TYPE requests_total "), 1);
	ck_assert_uint_eq(occurrences(page, "# HELP requests_total "), 1);
	assert_line(page, "# HELP requests_total newest help");
	assert_line(page, "requests_total{route=\"/a\"} 1005");
	assert_line(page, "requests_total{route=\"/a\",status=\"200\"} 1000");
	assert_line(page, "requests_total 3");
	free(page);
	/* registering release 1's shape again finds its record */
	ck_assert_int_eq(shmet_counter_family(&seg, &f0, "requests_total",
					      "old help", 1, v1), 0);
	ck_assert_uint_eq(f0.id, f1.id);
	ck_assert_double_eq(test_counter("requests_total", SHMET_VALUES("/a")),
			    1005);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_other_buckets)
{
	static const char *const v1[] = { "campaign_id" };
	static const char *const v2[] = { "campaign_id", "region" };
	const double b1[] = { 1, 2 }, b2[] = { 0.5, 5, 10 };
	struct shmet_segment seg;
	struct shmet_family f1, f2;
	struct shmet_histogram h1, h2;
	char *page;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_histogram_family(&seg, &f1, "setup_seconds",
						"s", 2, b1, 1, v1), 0);
	ck_assert_int_eq(shmet_histogram_family(&seg, &f2, "setup_seconds",
						"s", 3, b2, 2, v2), 0);
	shmet_histogram_labels(&f1, &h1, SHMET_VALUES("7"));
	shmet_histogram_labels(&f2, &h2, SHMET_VALUES("7", "eu"));
	shmet_histogram_observe(&h1, 1.5);
	shmet_histogram_observe(&h2, 7);
	shmet_histogram_observe(&h2, 0.1);
	page = text_page();
	ck_assert_uint_eq(occurrences(page, "# TYPE setup_seconds histogram"),
			  1);
	/* each series with its own buckets */
	assert_line(page, "setup_seconds_bucket{campaign_id=\"7\",le=\"1.0\"} 0");
	assert_line(page, "setup_seconds_bucket{campaign_id=\"7\",le=\"2.0\"} 1");
	assert_line(page, "setup_seconds_count{campaign_id=\"7\"} 1");
	assert_line(page, "setup_seconds_bucket{campaign_id=\"7\",region=\"eu\","
			  "le=\"0.5\"} 1");
	assert_line(page, "setup_seconds_bucket{campaign_id=\"7\",region=\"eu\","
			  "le=\"10.0\"} 2");
	assert_line(page, "setup_seconds_count{campaign_id=\"7\",region=\"eu\"} 2");
	free(page);
	shmet_close(&seg);
}
END_TEST

/* One label set in two versions (only the buckets changed): one series,
 * over the bounds both versions have, exact there; nothing lost. */
START_TEST(test_same_labels_other_buckets)
{
	static const char *const k[] = { "k" };
	const double b1[] = { 1, 2, 5 }, b2[] = { 0.5, 2, 5, 10 };
	const double b3[] = { 2, 3 };
	struct shmet_segment seg;
	struct shmet_family f1, f2, f3;
	struct shmet_histogram h1, h2, h3;
	char *page;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_histogram_family(&seg, &f1, "lat", "l", 3, b1,
						1, k), 0);
	shmet_histogram_labels(&f1, &h1, SHMET_VALUES("x"));
	shmet_histogram_observe(&h1, 0.5);
	shmet_histogram_observe(&h1, 1.5);
	shmet_histogram_observe(&h1, 4);
	shmet_histogram_observe(&h1, 7);
	ck_assert_int_eq(shmet_histogram_family(&seg, &f2, "lat", "l", 4, b2,
						1, k), 0);
	shmet_histogram_labels(&f2, &h2, SHMET_VALUES("x"));
	shmet_histogram_observe(&h2, 0.3);
	shmet_histogram_observe(&h2, 2);
	shmet_histogram_observe(&h2, 9);
	page = text_page();
	ck_assert_uint_eq(occurrences(page, "lat_count{"), 1);
	assert_line(page, "lat_bucket{k=\"x\",le=\"2.0\"} 4");
	assert_line(page, "lat_bucket{k=\"x\",le=\"5.0\"} 5");
	assert_line(page, "lat_bucket{k=\"x\",le=\"+Inf\"} 7");
	assert_line(page, "lat_count{k=\"x\"} 7");
	assert_line(page, "lat_sum{k=\"x\"} 24.3");
	ck_assert_ptr_null(strstr(page, "le=\"1.0\""));
	ck_assert_ptr_null(strstr(page, "le=\"10.0\""));
	free(page);
	/* a third release: only 2 is common to all three */
	ck_assert_int_eq(shmet_histogram_family(&seg, &f3, "lat", "l", 2, b3,
						1, k), 0);
	shmet_histogram_labels(&f3, &h3, SHMET_VALUES("x"));
	shmet_histogram_observe(&h3, 2.5);
	page = text_page();
	assert_line(page, "lat_bucket{k=\"x\",le=\"2.0\"} 4");
	assert_line(page, "lat_bucket{k=\"x\",le=\"+Inf\"} 8");
	ck_assert_uint_eq(occurrences(page, "lat_bucket{"), 2);
	free(page);
	ck_assert_uint_eq(test_hist_count("lat", SHMET_VALUES("x")), 8);
	shmet_close(&seg);
}
END_TEST

/* A gauge whose mode changed: the newest version's value only. */
START_TEST(test_same_labels_other_mode)
{
	struct shmet_segment seg;
	struct shmet_gauge g1, g2;
	char *page;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_gauge_new(&seg, &g1, "temp", "t",
					 SHMET_GAUGE_MAX), 0);
	shmet_gauge_set(&g1, 5);
	ck_assert_int_eq(shmet_gauge_new(&seg, &g2, "temp", "t",
					 SHMET_GAUGE_LIVESUM), 0);
	shmet_gauge_set(&g2, 2);
	page = text_page();
	ck_assert_uint_eq(occurrences(page, "\ntemp "), 1);
	assert_line(page, "temp 2");
	free(page);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_help_and_unit)
{
	struct shmet_segment seg;
	struct shmet_counter a, b;
	struct shmet_family_desc d;
	struct shmet_family f;
	char *page;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_counter_new(&seg, &a, "jobs_total", "first"), 0);
	shmet_counter_add(&a, 2);
	/* another help: the same series (an alias record), the newest help */
	ck_assert_int_eq(shmet_counter_new(&seg, &b, "jobs_total", "second"),
			 0);
	ck_assert_ptr_eq(a.cell, b.cell);
	shmet_counter_add(&b, 3);
	page = text_page();
	assert_line(page, "# HELP jobs_total second");
	assert_line(page, "jobs_total 5");
	ck_assert_uint_eq(occurrences(page, "# HELP jobs_total"), 1);
	free(page);
	/* a unit: the same series too */
	memset(&d, 0, sizeof d);
	d.name = "wait_seconds";
	d.type = SHMET_TYPE_GAUGE;
	d.gauge_mode = SHMET_GAUGE_SUM;
	ck_assert_int_eq(shmet_family_register(&seg, &d, &f), 0);
	{
		struct shmet_family g;
		struct shmet_gauge g1, g2;

		d.unit = "seconds";
		ck_assert_int_eq(shmet_family_register(&seg, &d, &g), 0);
		ck_assert_uint_eq(g.id, f.id);
		shmet_gauge_labels(&f, &g1, 0, NULL);
		shmet_gauge_labels(&g, &g2, 0, NULL);
		ck_assert_ptr_eq(g1.cell, g2.cell);
	}
	shmet_close(&seg);
}
END_TEST

START_TEST(test_type_change)
{
	struct shmet_segment seg;
	struct shmet_counter c;
	struct shmet_gauge g;
	char *page;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_counter_new(&seg, &c, "queue_depth", "c"), 0);
	shmet_counter_add(&c, 4);
	ck_assert_int_eq(shmet_gauge_new(&seg, &g, "queue_depth", "g",
					 SHMET_GAUGE_LIVESUM), 0);
	shmet_gauge_set(&g, 9);
	page = text_page();
	/* the newest type only: one TYPE line, no counter sample */
	assert_line(page, "# TYPE queue_depth gauge");
	assert_line(page, "queue_depth 9");
	ck_assert_ptr_null(strstr(page, "counter"));
	ck_assert_ptr_null(strstr(page, "queue_depth_total"));
	free(page);
	/* health reports the conflict */
	{
		struct test_snapshot s;
		struct shmet_reader_info in;
		struct shmet_index_versions ver;
		struct shmet_buf b = { 0 };
		char *h;

		test_snapshot_take(&s);
		ck_assert_int_eq(shmet_reader_info(s.reader, &in), 0);
		ck_assert_int_eq(shmet_render_health(s.index, &in, &b), 0);
		h = strndup(b.data, b.len);
		ck_assert_ptr_nonnull(strstr(h, "\"status\": \"degraded\""));
		ck_assert_ptr_nonnull(strstr(h, "\"type_conflicts\": 1,"));
		shmet_index_versions(s.index, &ver);
		ck_assert_uint_eq(ver.type_conflicts, 1);
		free(h);
		shmet_buf_free(&b);
		test_snapshot_free(&s);
	}
	/* the counter's release is the newest again: it is shown */
	/* registration times are kept to the second (family.c) */
	usleep(1100 * 1000);
	ck_assert_int_eq(shmet_counter_new(&seg, &c, "queue_depth", "c"), 0);
	page = text_page();
	assert_line(page, "# TYPE queue_depth_total counter");
	assert_line(page, "queue_depth_total 4");
	free(page);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_reordered_labels_refused)
{
	static const char *const ab[] = { "a", "b" };
	static const char *const ba[] = { "b", "a" };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_counter_family(&seg, &f, "x_total", "x", 2, ab),
			 0);
	ck_assert_int_eq(shmet_counter_family(&seg, &f, "x_total", "x", 2, ba),
			 -EEXIST);
	ck_assert_ptr_nonnull(strstr(shmet_last_error(&seg), "another order"));
	/* the failed handle is safe */
	ck_assert_int_eq(shmet_counter_labels(&f, &c, SHMET_VALUES("1", "2")),
			 -EEXIST);
	shmet_counter_inc(&c);
	shmet_close(&seg);
}
END_TEST

/* Two processes of two releases register and count at once. */
static void
release_child(int i, void *arg)
{
	static const char *const one[] = { "k" };
	static const char *const two[] = { "k", "v" };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;
	int rc;

	(void)arg;
	test_open(&seg, NULL);
	rc = i % 2 ? shmet_counter_family(&seg, &f, "roll_total", "r2", 2, two)
		   : shmet_counter_family(&seg, &f, "roll_total", "r1", 1, one);
	if (rc != 0)
		_exit(2);
	rc = i % 2 ? shmet_counter_labels(&f, &c, SHMET_VALUES("x", "y"))
		   : shmet_counter_labels(&f, &c, SHMET_VALUES("x"));
	if (rc != 0)
		_exit(3);
	for (int n = 0; n < 100000; n++)
		shmet_counter_inc(&c);
	shmet_close(&seg);
}

START_TEST(test_releases_at_once)
{
	struct shmet_segment seg;

	test_open(&seg, NULL);
	test_fork_all_at_once(8, release_child, NULL);
	ck_assert_double_eq(test_counter("roll_total", SHMET_VALUES("x")),
			    400000);
	ck_assert_double_eq(test_counter("roll_total", SHMET_VALUES("x", "y")),
			    400000);
	shmet_close(&seg);
}
END_TEST

TEST_SUITE(shapes)
{
	Suite *s = suite_create("shapes");
	TCase *tc = tcase_create("versions");

	tcase_add_checked_fixture(tc, test_segment_setup,
				  test_segment_teardown);
	tcase_add_test(tc, test_other_label_names);
	tcase_add_test(tc, test_other_buckets);
	tcase_add_test(tc, test_same_labels_other_buckets);
	tcase_add_test(tc, test_same_labels_other_mode);
	tcase_add_test(tc, test_help_and_unit);
	tcase_add_test(tc, test_type_change);
	tcase_add_test(tc, test_reordered_labels_refused);
	tcase_add_test(tc, test_releases_at_once);
	suite_add_tcase(s, tc);
	return s;
}
