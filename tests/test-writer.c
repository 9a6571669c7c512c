/*
 * The writer API in one process: every operation and every error path.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmetrics/name.h>

#include "test-common.h"

static const char *const two_labels[] = { "campaign_id", "user_id" };

static uint64_t
failures(uint32_t reason)
{
	struct shmet_reader *r;
	struct shmet_reader_info info;
	char err[256];

	ck_assert_int_eq(shmet_reader_open(test_segment_name, &r, err,
					   sizeof err), 0);
	shmet_reader_info(r, &info);
	shmet_reader_close(r);
	return info.failures[reason];
}

START_TEST(test_open_creates_0600)
{
	struct shmet_segment seg;
	struct stat st;
	char path[128];

	test_open(&seg, NULL);
	snprintf(path, sizeof path, "/dev/shm%s", test_segment_name);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_uint_lt(seg.slot, 32);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_open_mode_ignores_umask)
{
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct stat st;
	char path[128];
	mode_t old = umask(077);

	o.mode = 0640;
	test_open(&seg, &o);
	umask(old);
	snprintf(path, sizeof path, "/dev/shm%s", test_segment_name);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0640);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_open_env_overrides_default)
{
	struct shmet_segment seg;
	struct shmet_options o;

	memset(&o, 0, sizeof o);
	o.max_series = 1024;
	o.cells_per_block = 4096;
	o.max_writers = 4;
	setenv(SHMET_ENV_SEGMENT, test_segment_name, 1);
	ck_assert_int_eq(shmet_open(&seg, &o), 0);
	ck_assert_str_eq(seg.name, test_segment_name);
	unsetenv(SHMET_ENV_SEGMENT);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_open_bad_name_gives_safe_handles)
{
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct shmet_counter c;
	struct shmet_histogram h;
	double b[] = { 1, 2 };

	o.name = "no-slash";
	ck_assert_int_eq(shmet_open(&seg, &o), -EINVAL);
	ck_assert_ptr_nonnull(strstr(shmet_last_error(&seg), "segment name"));
	ck_assert_int_eq(shmet_counter_new(&seg, &c, "x_total", "h"), -ENODEV);
	shmet_counter_inc(&c);          /* must not crash */
	ck_assert_int_eq(shmet_histogram_new(&seg, &h, "h", "h", 2, b),
			 -ENODEV);
	shmet_histogram_observe(&h, 1e9);
}
END_TEST

/*
 * A name with a second '/' is a file on a tmpfs (include/shmetrics/name.h):
 * created there with the mode asked for, read back through lib/ by the same
 * name, and removed by shmet_unlink.  test_segment_name holds the path so
 * that the readers of test-common.c open it.
 */
START_TEST(test_open_path_segment)
{
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct shmet_counter c;
	struct stat st;
	char dir[40];

	snprintf(dir, sizeof dir, "/dev/shm/shmet-path-%d", (int)getpid());
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	snprintf(test_segment_name, sizeof test_segment_name,
		 "%s/metrics.seg", dir);
	o.name = test_segment_name;
	o.mode = 0640;
	test_open(&seg, &o);
	ck_assert_int_eq(stat(test_segment_name, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0640);
	ck_assert_int_eq(shmet_counter_new(&seg, &c, "path_total", "h"), 0);
	shmet_counter_add(&c, 7);
	ck_assert_double_eq(test_counter("path_total", 0, NULL), 7);
	shmet_close(&seg);
	/* attached again by the same path: same object, same count */
	test_open(&seg, &o);
	ck_assert_int_eq(shmet_counter_new(&seg, &c, "path_total", "h"), 0);
	shmet_counter_inc(&c);
	ck_assert_double_eq(test_counter("path_total", 0, NULL), 8);
	shmet_close(&seg);
	ck_assert_int_eq(shmet_unlink(test_segment_name), 0);
	ck_assert_int_eq(stat(test_segment_name, &st), -1);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* A path off tmpfs (here the build directory) is refused, and nothing is
 * left behind; so are a path ending in '/' and a missing directory. */
START_TEST(test_open_path_refusals)
{
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct statfs sfs;
	char cwd[200], path[256];

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
	ck_assert_int_eq(statfs(cwd, &sfs), 0);
	if ((unsigned long)sfs.f_type != SHMET_TMPFS_MAGIC) {
		snprintf(path, sizeof path, "%s/shmet-path-%d.seg", cwd,
			 (int)getpid());
		o.name = path;
		ck_assert_int_eq(shmet_open(&seg, &o), -EXDEV);
		ck_assert_ptr_nonnull(strstr(shmet_last_error(&seg),
					     "not a file on a tmpfs"));
		ck_assert_int_eq(access(path, F_OK), -1);
	}
	o.name = "/dev/shm/";
	ck_assert_int_eq(shmet_open(&seg, &o), -EINVAL);
	o.name = "/dev/shm/no-such-dir-shmet/seg";
	ck_assert_int_eq(shmet_open(&seg, &o), -ENOENT);
}
END_TEST

START_TEST(test_open_no_create_missing)
{
	struct shmet_options o = test_options();
	struct shmet_segment seg;

	o.flags = SHMET_OPEN_NO_CREATE;
	ck_assert_int_eq(shmet_open(&seg, &o), -ENOENT);
	ck_assert_ptr_nonnull(strstr(shmet_last_error(&seg), "cannot open"));
}
END_TEST

START_TEST(test_open_foreign_segment)
{
	struct shmet_segment seg;
	int fd = shm_open(test_segment_name, O_RDWR | O_CREAT, 0600);
	char junk[8192];

	memset(junk, 'x', sizeof junk);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, junk, sizeof junk), (int)sizeof junk);
	/* Not a segment: refused at once, never waited for nor rewritten
	 * (tests/test-segment.c has the other cases). */
	{
		struct shmet_options o = test_options();
		struct stat st;
		char back[sizeof junk];

		o.init_timeout_ms = 50;
		o.flags = SHMET_OPEN_NO_CREATE;
		ck_assert_int_eq(shmet_open(&seg, &o), -EPROTO);
		o.flags = 0;
		ck_assert_int_eq(shmet_open(&seg, &o), -EPROTO);
		ck_assert_int_eq(fstat(fd, &st), 0);
		ck_assert_int_eq(st.st_size, sizeof junk);
		ck_assert_int_eq(pread(fd, back, sizeof back, 0),
				 (int)sizeof back);
		ck_assert_int_eq(memcmp(back, junk, sizeof junk), 0);
	}
	close(fd);
}
END_TEST

START_TEST(test_open_newer_version_refused)
{
	struct shmet_segment seg, seg2;
	struct shmet_seg_header *h;

	test_open(&seg, NULL);
	h = seg.hdr;
	h->layout_version = SHMET_LAYOUT_VERSION + 1;
	{
		struct shmet_options o = test_options();

		ck_assert_int_eq(shmet_open(&seg2, &o), -EPROTO);
		ck_assert_ptr_nonnull(strstr(shmet_last_error(&seg2),
					     "layout version"));
	}
	h->layout_version = SHMET_LAYOUT_VERSION;
	shmet_close(&seg);
}
END_TEST

START_TEST(test_counter_inc_add)
{
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_counter_family(&seg, &f,
					      "campaign_calls_initiated_total",
					      "Total calls", 2, two_labels), 0);
	ck_assert_int_eq(shmet_counter_labels(&f, &c,
					      SHMET_VALUES("abc", "u1")), 0);
	shmet_counter_inc(&c);
	shmet_counter_add(&c, 41);
	ck_assert_double_eq(test_counter("campaign_calls_initiated_total",
					 SHMET_VALUES("abc", "u1")), 42);
	shmet_counter_add_double(&c, 0.5);
	shmet_counter_add_double(&c, -10);      /* ignored */
	shmet_counter_add_double(&c, NAN);      /* ignored */
	shmet_counter_add_double(&c, INFINITY); /* ignored */
	ck_assert_double_eq(test_counter("campaign_calls_initiated_total",
					 SHMET_VALUES("abc", "u1")), 42.5);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_counter_same_labels_same_series)
{
	struct shmet_segment seg;
	struct shmet_family f, f2;
	struct shmet_counter a, b, c;

	test_open(&seg, NULL);
	shmet_counter_family(&seg, &f, "x_total", "x", 2, two_labels);
	shmet_counter_family(&seg, &f2, "x_total", "x", 2, two_labels);
	ck_assert_uint_eq(f.id, f2.id);
	shmet_counter_labels(&f, &a, SHMET_VALUES("1", "2"));
	shmet_counter_labels(&f2, &b, SHMET_VALUES("1", "2"));
	shmet_counter_labels(&f, &c, SHMET_VALUES("12", ""));
	ck_assert_ptr_eq(a.cell, b.cell);
	ck_assert_ptr_ne(a.cell, c.cell);
	shmet_close(&seg);
}
END_TEST

/* Values that differ only in invalid UTF-8 look the same on a page: one
 * series, stored repaired; and readers repair what older writers stored. */
START_TEST(test_invalid_utf8_is_one_series)
{
	static const char *const one[] = { "path" };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter a, b, c, d;
	struct test_snapshot s;
	struct shmet_buf page = { 0 };
	char longv[SHMET_MAX_LABEL_VALUE_LEN + 1];
	const char *lv[1] = { longv };
	const struct shmet_seg_header *h;
	unsigned char *pool, *hit;

	test_open(&seg, NULL);
	shmet_counter_family(&seg, &f, "u_total", "u", 1, one);
	ck_assert_int_eq(shmet_counter_labels(&f, &a, SHMET_VALUES("caf\xe9")), 0);
	ck_assert_int_eq(shmet_counter_labels(&f, &b, SHMET_VALUES("caf\xe8")), 0);
	ck_assert_int_eq(shmet_counter_labels(&f, &c,
					      SHMET_VALUES("caf\xef\xbf\xbd")), 0);
	ck_assert_ptr_eq(a.cell, b.cell);
	ck_assert_ptr_eq(a.cell, c.cell);
	/* 1,024 bytes, one of them invalid: 1,026 once repaired */
	memset(longv, 'x', SHMET_MAX_LABEL_VALUE_LEN);
	longv[0] = (char)0xff;
	longv[SHMET_MAX_LABEL_VALUE_LEN] = '\0';
	ck_assert_int_eq(shmet_counter_labels(&f, &d, 1, lv), -EINVAL);
	ck_assert_ptr_nonnull(strstr(shmet_last_error(&seg), "U+FFFD"));
	/* an older writer's raw bytes: "ab1" patched to "ab\xe9" in the
	 * pool reads as "ab\uFFFD", the same as a repaired one */
	shmet_counter_inc(&a);
	shmet_counter_labels(&f, &b, SHMET_VALUES("ab\xef\xbf\xbd"));
	shmet_counter_add(&b, 2);
	shmet_counter_labels(&f, &c, SHMET_VALUES("ab1"));
	shmet_counter_add(&c, 4);
	h = (const struct shmet_seg_header *)(const void *)seg.base;
	pool = (unsigned char *)seg.base + h->strings_off;
	hit = memmem(pool, h->strings_used, "ab1", 3);
	ck_assert_ptr_nonnull(hit);
	hit[2] = 0xe9;
	test_snapshot_take(&s);
	ck_assert_int_eq(shmet_render_text(s.index, s.values, &page), 0);
	ck_assert_ptr_nonnull(strstr(page.data,
				     "u_total{path=\"caf\xef\xbf\xbd\"} 1\n"));
	/* the two "ab\uFFFD" series: one line, the first kept, health
	 * counts the other as skipped */
	ck_assert_ptr_nonnull(strstr(page.data, "u_total{path=\"ab\xef\xbf\xbd\"}"));
	ck_assert_ptr_eq(strstr(strstr(page.data, "path=\"ab") + 1,
				"path=\"ab"), NULL);
	shmet_buf_free(&page);
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

/* Large amounts do not wrap a counter at 2^64: 4,096 adds of 2^52 read
 * 2^64 (prometheus_client: 1.8e19), not 0; small ones stay exact. */
START_TEST(test_counter_large_adds_do_not_wrap)
{
	struct shmet_segment seg;
	struct shmet_counter big, small;
	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_counter_new(&seg, &big, "big_total", "b"), 0);
	ck_assert_int_eq(shmet_counter_new(&seg, &small, "small_total", "s"),
			 0);
	for (int i = 0; i < 4096; i++)
		shmet_counter_add(&big, UINT64_C(1) << 52);
	shmet_counter_add(&small, (UINT64_C(1) << 32) - 1);
	shmet_counter_add(&small, 1);
	ck_assert(test_counter("big_total", 0, NULL) ==
		  18446744073709551616.0);
	ck_assert(test_counter("small_total", 0, NULL) == 4294967296.0);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_counter_zero_labels)
{
	struct shmet_segment seg;
	struct shmet_counter c;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_counter_new(&seg, &c, "plain_total", "p"), 0);
	for (int i = 0; i < 1000; i++)
		shmet_counter_inc(&c);
	ck_assert_double_eq(test_counter("plain_total", 0, NULL), 1000);
	shmet_close(&seg);
}
END_TEST

static double
gauge_value(const char *name)
{
	struct test_snapshot s;
	double v;
	int i;

	test_snapshot_take(&s);
	i = test_find_series(&s, name, 0, NULL);
	ck_assert_int_ge(i, 0);
	v = test_gauge(&s, i);
	test_snapshot_free(&s);
	return v;
}

START_TEST(test_gauge_ops)
{
	struct shmet_segment seg;
	struct shmet_gauge g;
	double now;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_gauge_new(&seg, &g, "queue_size", "q", 0), 0);
	shmet_gauge_set(&g, 10);
	shmet_gauge_inc(&g);
	shmet_gauge_inc(&g);
	shmet_gauge_dec(&g);
	shmet_gauge_add(&g, -0.25);
	ck_assert_double_eq(gauge_value("queue_size"), 10.75);
	shmet_gauge_set(&g, -3e300);
	ck_assert_double_eq(gauge_value("queue_size"), -3e300);
	now = (double)time(NULL);
	shmet_gauge_set_to_current_time(&g);
	ck_assert_double_le(fabs(gauge_value("queue_size") - now), 2.0);
	shmet_close(&seg);
}
END_TEST

/* The sum of no live writer is 0: webhook_active_workers < 1 can fire. */
START_TEST(test_sum_gauge_without_writers_is_zero)
{
	static const char *const l[] = { "k" };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_gauge g;
	struct test_snapshot s;
	int i;

	test_open(&seg, NULL);
	shmet_gauge_new(&seg, &g, "workers", "w", SHMET_GAUGE_LIVESUM);
	shmet_gauge_family(&seg, &f, "per_k", "p", SHMET_GAUGE_LIVESUM, 1, l);
	shmet_gauge_labels(&f, &g, 1, l);
	shmet_gauge_set(&g, 3);
	shmet_close(&seg);              /* no live writer holds either */
	test_snapshot_take(&s);
	i = test_find_series(&s, "workers", 0, NULL);
	ck_assert_int_ge(i, 0);
	ck_assert_int_eq(test_gauge_set(&s, i), 1);
	ck_assert_double_eq(test_gauge(&s, i), 0);
	i = test_find_series(&s, "per_k", 1, l);
	ck_assert_int_eq(test_gauge_set(&s, i), 0);     /* labelled: absent */
	test_snapshot_free(&s);
}
END_TEST

START_TEST(test_gauge_unset_is_absent)
{
	struct shmet_segment seg;
	struct shmet_gauge g;
	struct test_snapshot s;
	int i;

	test_open(&seg, NULL);
	shmet_gauge_new(&seg, &g, "never_set", "n", SHMET_GAUGE_MAX);
	test_snapshot_take(&s);
	i = test_find_series(&s, "never_set", 0, NULL);
	ck_assert_int_ge(i, 0);
	ck_assert_int_eq(test_gauge_set(&s, i), 0);
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_histogram_buckets)
{
	struct shmet_segment seg;
	struct shmet_histogram h;
	struct test_snapshot s;
	double b[] = { 0.1, 0.5, 1, 5 };
	int i;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_histogram_new(&seg, &h, "lat_seconds", "l", 4,
					     b), 0);
	shmet_histogram_observe(&h, 0.05);      /* bucket 0 */
	shmet_histogram_observe(&h, 0.1);       /* le is inclusive: 0 */
	shmet_histogram_observe(&h, 0.7);       /* 2 */
	shmet_histogram_observe(&h, 5);         /* 3 */
	shmet_histogram_observe(&h, 1e9);       /* +Inf */
	shmet_histogram_observe(&h, -1);        /* 0 */
	test_snapshot_take(&s);
	i = test_find_series(&s, "lat_seconds", 0, NULL);
	ck_assert_int_ge(i, 0);
	ck_assert_uint_eq(shmet_values_bucket(s.values, s.index, i, 0), 3);
	ck_assert_uint_eq(shmet_values_bucket(s.values, s.index, i, 1), 0);
	ck_assert_uint_eq(shmet_values_bucket(s.values, s.index, i, 2), 1);
	ck_assert_uint_eq(shmet_values_bucket(s.values, s.index, i, 3), 1);
	ck_assert_uint_eq(shmet_values_bucket(s.values, s.index, i, 4), 1);
	ck_assert_uint_eq(shmet_values_hist_count(s.values, s.index, i), 6);
	ck_assert_double_eq_tol(shmet_values_hist_sum(s.values, s.index, i),
				0.05 + 0.1 + 0.7 + 5 + 1e9 - 1, 1e-6);
	test_snapshot_free(&s);
	/* Non-finite observations count in their bucket (NaN and +Inf in
	 * +Inf, -Inf in the first) and leave the sum a number. */
	shmet_histogram_observe(&h, NAN);
	shmet_histogram_observe(&h, INFINITY);
	shmet_histogram_observe(&h, -INFINITY);
	test_snapshot_take(&s);
	ck_assert_uint_eq(shmet_values_bucket(s.values, s.index, i, 0), 4);
	ck_assert_uint_eq(shmet_values_bucket(s.values, s.index, i, 4), 3);
	ck_assert_uint_eq(shmet_values_hist_count(s.values, s.index, i), 9);
	ck_assert_double_eq_tol(shmet_values_hist_sum(s.values, s.index, i),
				0.05 + 0.1 + 0.7 + 5 + 1e9 - 1, 1e-6);
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_histogram_many_bounds_binary_search)
{
	struct shmet_segment seg;
	struct shmet_histogram h;
	struct test_snapshot s;
	double b[100];
	int i;

	ck_assert_uint_eq(shmet_linear_bounds(1, 1, 100, b), 100);
	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_histogram_new(&seg, &h, "big", "b", 100, b), 0);
	for (int v = 0; v <= 101; v++)
		shmet_histogram_observe(&h, v);       /* 0,1 -> b0; k -> b(k-1) */
	shmet_histogram_observe(&h, 50.5);            /* -> bound 51: b50 */
	test_snapshot_take(&s);
	i = test_find_series(&s, "big", 0, NULL);
	ck_assert_uint_eq(shmet_values_bucket(s.values, s.index, i, 0), 2);
	ck_assert_uint_eq(shmet_values_bucket(s.values, s.index, i, 1), 1);
	ck_assert_uint_eq(shmet_values_bucket(s.values, s.index, i, 50), 2);
	ck_assert_uint_eq(shmet_values_bucket(s.values, s.index, i, 99), 1);
	ck_assert_uint_eq(shmet_values_bucket(s.values, s.index, i, 100), 1);
	ck_assert_uint_eq(shmet_values_hist_count(s.values, s.index, i), 103);
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_bound_helpers)
{
	double b[8];

	ck_assert_uint_eq(shmet_linear_bounds(0.5, 0.5, 4, b), 4);
	ck_assert_double_eq(b[3], 2.0);
	ck_assert_uint_eq(shmet_exponential_bounds(0.1, 2, 5, b), 5);
	ck_assert_double_eq_tol(b[4], 1.6, 1e-12);
	ck_assert_uint_eq(shmet_linear_bounds(0, 0, 4, b), 0);
	ck_assert_uint_eq(shmet_exponential_bounds(0, 2, 4, b), 0);
	ck_assert_uint_eq(shmet_exponential_bounds(1, 1, 4, b), 0);
	ck_assert_uint_eq(shmet_linear_bounds(0, 1, 0, b), 0);
	ck_assert_uint_eq(shmet_linear_bounds(0, 1, SHMET_MAX_BOUNDS + 1, b), 0);
}
END_TEST

/* Leave the block through break and return: SHMET_TIME still observes. */
static int
timed_return(struct shmet_histogram *h)
{
	SHMET_TIME(h) {
		return 1;
	}
	return 0;
}

START_TEST(test_time_macro_every_exit)
{
	struct shmet_segment seg;
	struct shmet_histogram h;
	double b[] = { 10 };

	test_open(&seg, NULL);
	shmet_histogram_new(&seg, &h, "te_seconds", "t", 1, b);
	for (int i = 0; i < 3; i++) {
		SHMET_TIME(&h) {
			if (i == 1)
				break;
		}
	}
	/* break leaves the timed block, not the loop: 3 observations */
	ck_assert_uint_eq(test_hist_count("te_seconds", 0, NULL), 3);
	ck_assert_int_eq(timed_return(&h), 1);
	ck_assert_uint_eq(test_hist_count("te_seconds", 0, NULL), 4);
	shmet_close(&seg);
}
END_TEST

/* Every pair the issue found makes strict parsers reject the page. */
START_TEST(test_exposed_name_collisions)
{
	static const struct {
		uint32_t type1;
		const char *name1;
		uint32_t type2;
		const char *name2;
	} pairs[] = {
		{ SHMET_TYPE_COUNTER, "x", SHMET_TYPE_COUNTER, "x_total" },
		{ SHMET_TYPE_COUNTER, "y_total", SHMET_TYPE_COUNTER, "y" },
		{ SHMET_TYPE_HISTOGRAM, "h", SHMET_TYPE_GAUGE, "h_bucket" },
		{ SHMET_TYPE_HISTOGRAM, "h2", SHMET_TYPE_GAUGE, "h2_count" },
		{ SHMET_TYPE_GAUGE, "h3_sum", SHMET_TYPE_HISTOGRAM, "h3" },
		{ SHMET_TYPE_COUNTER, "c_total", SHMET_TYPE_GAUGE, "c" },
		{ SHMET_TYPE_COUNTER, "d_total", SHMET_TYPE_GAUGE, "d_created" },
		{ SHMET_TYPE_GAUGE, "e_total", SHMET_TYPE_COUNTER, "e" },
	};
	struct shmet_segment seg;
	double b[] = { 1 };

	test_open(&seg, NULL);
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		struct shmet_family_desc d;
		struct shmet_family f;
		int rc;

		memset(&d, 0, sizeof d);
		d.name = pairs[i].name1;
		d.type = pairs[i].type1;
		d.help = "h";
		d.bound_count = 1;
		d.bounds = b;
		ck_assert_int_eq(shmet_family_register(&seg, &d, &f), 0);
		d.name = pairs[i].name2;
		d.type = pairs[i].type2;
		rc = shmet_family_register(&seg, &d, &f);
		ck_assert_msg(rc == -EEXIST, "%s after %s: %d", pairs[i].name2,
			      pairs[i].name1, rc);
		/* the message names both families by name */
		ck_assert_msg(strstr(shmet_last_error(&seg), pairs[i].name1) &&
			      strstr(shmet_last_error(&seg), pairs[i].name2),
			      "%s", shmet_last_error(&seg));
	}
	shmet_close(&seg);
}
END_TEST

START_TEST(test_reserved_names)
{
	static const char *const pid[] = { "pid" };
	struct shmet_segment seg;
	struct shmet_counter c;
	struct shmet_family f;

	test_open(&seg, NULL);
	/* the per-writer modes add a pid label themselves */
	ck_assert_int_eq(shmet_gauge_family(&seg, &f, "per_pid", "p",
					    SHMET_GAUGE_ALL, 1, pid), -EINVAL);
	ck_assert_int_eq(shmet_gauge_family(&seg, &f, "per_pid", "p",
					    SHMET_GAUGE_LIVEALL, 1, pid),
			 -EINVAL);
	ck_assert_int_eq(shmet_gauge_family(&seg, &f, "sum_pid", "p",
					    SHMET_GAUGE_SUM, 1, pid), 0);
	ck_assert_int_eq(shmet_counter_new(&seg, &c, "process_cpu_seconds",
					   "x"), -EEXIST);
	ck_assert_int_eq(shmet_counter_new(&seg, &c, "shmetrics_renders",
					   "x"), -EEXIST);
	ck_assert_ptr_nonnull(strstr(shmet_last_error(&seg), "reserved"));
	shmet_close(&seg);
}
END_TEST

/* A registration that fails after taking a record gives it back. */
START_TEST(test_failed_registration_gives_back)
{
	static const char *const one[] = { "id" };
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;
	struct shmet_reader_info in;
	struct shmet_reader *r;
	char v[1000], err[256];
	const char *vals[1] = { v };
	uint32_t series_before;

	o.string_bytes = 4096;
	test_open(&seg, &o);
	shmet_counter_family(&seg, &f, "g_total", "g", 1, one);
	memset(v, 'x', sizeof v - 1);
	v[sizeof v - 1] = '\0';
	for (int i = 0; i < 10; i++) {
		v[0] = (char)('A' + i);
		if (shmet_counter_labels(&f, &c, 1, vals) < 0)
			break;
	}
	ck_assert_int_eq(shmet_reader_open(test_segment_name, &r, err,
					   sizeof err), 0);
	shmet_reader_info(r, &in);
	series_before = in.series_used;
	/* 100 attempts that cannot fit take nothing for good */
	for (int i = 0; i < 100; i++) {
		v[0] = (char)('d' + i % 20);
		v[1] = (char)('a' + i / 20);
		ck_assert_int_eq(shmet_counter_labels(&f, &c, 1, vals),
				 -ENOSPC);
	}
	shmet_reader_info(r, &in);
	ck_assert_uint_le(in.series_used, series_before + 1);
	/* a short value still fits: the record and cells came back */
	ck_assert_int_eq(shmet_counter_labels(&f, &c, 1,
					      (const char *const[]){ "s" }),
			 0);
	shmet_reader_close(r);
	shmet_close(&seg);
}
END_TEST

/* Another user created the name first: refuse it (StrictModes). */
START_TEST(test_open_refuses_squatted_segment)
{
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	int status;
	pid_t pid;

	if (geteuid() != 0)
		return;         /* needs a second user */
	pid = fork();
	if (pid == 0) {
		int fd;

		if (setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		fd = shm_open(test_segment_name, O_RDWR | O_CREAT | O_EXCL,
			      0666);
		_exit(fd >= 0 && fchmod(fd, 0666) == 0 ? 0 : 3);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(shmet_open(&seg, &o), -EPERM);
	ck_assert_ptr_nonnull(strstr(shmet_last_error(&seg), "uid 65534"));
	shm_unlink(test_segment_name);
	/* ours, but writable by others beyond the asked 0600 */
	{
		int fd = shm_open(test_segment_name,
				  O_RDWR | O_CREAT | O_EXCL, 0600);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(fchmod(fd, 0666), 0);
		close(fd);
	}
	ck_assert_int_eq(shmet_open(&seg, &o), -EPERM);
	ck_assert_ptr_nonnull(strstr(shmet_last_error(&seg), "0666"));
}
END_TEST

START_TEST(test_time_macro_observes_once)
{
	struct shmet_segment seg;
	struct shmet_histogram h;
	double b[] = { 10 };
	int ran = 0;

	test_open(&seg, NULL);
	shmet_histogram_new(&seg, &h, "t_seconds", "t", 1, b);
	SHMET_TIME(&h) {
		ran++;
	}
	ck_assert_int_eq(ran, 1);
	ck_assert_uint_eq(test_hist_count("t_seconds", 0, NULL), 1);
	{
		uint64_t t0 = shmet_now_ns();

		shmet_histogram_observe_since(&h, t0);
	}
	ck_assert_uint_eq(test_hist_count("t_seconds", 0, NULL), 2);
	shmet_close(&seg);
}
END_TEST

/* Each invalid registration: error code, message, counted reason, and a
 * handle that works and changes nothing. */
static void
expect_family_error(struct shmet_segment *seg,
		    const struct shmet_family_desc *d, int rc, uint32_t reason,
		    const char *msg)
{
	struct shmet_family f;
	struct shmet_counter c;
	uint64_t before = failures(reason);

	ck_assert_int_eq(shmet_family_register(seg, d, &f), rc);
	ck_assert_msg(strstr(shmet_last_error(seg), msg),
		      "message '%s' lacks '%s'", shmet_last_error(seg), msg);
	ck_assert_uint_eq(failures(reason), before + 1);
	ck_assert_int_eq(shmet_counter_labels(&f, &c, 0, NULL), rc);
	shmet_counter_inc(&c);
}

START_TEST(test_invalid_names)
{
	static const char *const bad_label[] = { "__reserved" };
	static const char *const le[] = { "le" };
	static const char *const quantile[] = { "quantile" };
	static const char *const dup[] = { "a", "a" };
	static const char *const digit[] = { "1a" };
	struct shmet_segment seg;
	struct shmet_family_desc d;
	double bounds[] = { 1, 2 };

	test_open(&seg, NULL);
	memset(&d, 0, sizeof d);
	d.type = SHMET_TYPE_COUNTER;
	d.name = "1starts_with_digit";
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_NAME,
			    "invalid metric name");
	d.name = "has-dash";
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_NAME,
			    "invalid metric name");
	d.name = "";
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_NAME,
			    "invalid metric name");
	d.name = "ok:name_total";
	d.unit = "bytes";
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_NAME,
			    "unit");
	/* a counter's family is "req": unit "total" would break OpenMetrics */
	d.name = "req_total";
	d.unit = "total";
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_NAME,
			    "unit");
	{
		struct shmet_family f;

		d.name = "req_seconds_total";
		d.unit = "seconds";
		ck_assert_int_eq(shmet_family_register(&seg, &d, &f), 0);
		d.name = "resp_bytes";
		d.unit = "bytes";
		ck_assert_int_eq(shmet_family_register(&seg, &d, &f), 0);
	}
	d.unit = NULL;
	d.label_count = 1;
	d.label_names = bad_label;
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_LABELS,
			    "invalid label name");
	d.label_names = digit;
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_LABELS,
			    "invalid label name");
	d.label_names = quantile;
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_LABELS,
			    "reserved");
	d.label_count = 2;
	d.label_names = dup;
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_LABELS,
			    "duplicate");
	d.label_count = SHMET_MAX_LABELS + 1;
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_LABELS,
			    "label names");
	d.type = SHMET_TYPE_HISTOGRAM;
	d.name = "h_seconds";
	d.label_count = 1;
	d.label_names = le;
	d.bound_count = 2;
	d.bounds = bounds;
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_LABELS,
			    "reserved");
	d.label_count = 0;
	d.type = 7;
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_NAME,
			    "unknown metric type");
	shmet_close(&seg);
}
END_TEST

START_TEST(test_invalid_buckets)
{
	struct shmet_segment seg;
	struct shmet_family_desc d;
	double dec[] = { 1, 0.5 }, dup[] = { 1, 1 }, inf[] = { 1, INFINITY },
	       nan_[] = { NAN };

	test_open(&seg, NULL);
	memset(&d, 0, sizeof d);
	d.type = SHMET_TYPE_HISTOGRAM;
	d.name = "h_seconds";
	d.bound_count = 2;
	d.bounds = dec;
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_BUCKETS,
			    "strictly increasing");
	d.bounds = dup;
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_BUCKETS,
			    "strictly increasing");
	d.bounds = inf;
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_BUCKETS,
			    "finite");
	d.bound_count = 1;
	d.bounds = nan_;
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_BUCKETS,
			    "finite");
	d.bound_count = 0;
	expect_family_error(&seg, &d, -EINVAL, SHMET_FAIL_INVALID_BUCKETS,
			    "bucket bounds");
	shmet_close(&seg);
}
END_TEST

START_TEST(test_shape_mismatch)
{
	/* Another shape of a name is another version of it (test-shapes.c):
	 * registered, never refused, and nothing counted before is lost. */
	static const char *const one[] = { "a" };
	static const char *const other[] = { "b" };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_family_desc d;
	struct shmet_counter c;
	double b1[] = { 1, 2 }, b2[] = { 1, 3 };

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_counter_family(&seg, &f, "m_total", "m", 1, one),
			 0);
	shmet_counter_labels(&f, &c, SHMET_VALUES("v"));
	shmet_counter_add(&c, 7);
	memset(&d, 0, sizeof d);
	d.name = "m_total";
	d.type = SHMET_TYPE_GAUGE;
	d.label_count = 1;
	d.label_names = one;
	ck_assert_int_eq(shmet_family_register(&seg, &d, &f), 0);
	d.type = SHMET_TYPE_COUNTER;
	d.label_names = other;
	ck_assert_int_eq(shmet_family_register(&seg, &d, &f), 0);
	d.label_count = 0;
	ck_assert_int_eq(shmet_family_register(&seg, &d, &f), 0);
	/* Histograms with other buckets; gauges with another mode. */
	ck_assert_int_eq(shmet_histogram_family(&seg, &f, "h", "h", 2, b1, 0,
						NULL), 0);
	memset(&d, 0, sizeof d);
	d.name = "h";
	d.type = SHMET_TYPE_HISTOGRAM;
	d.bound_count = 2;
	d.bounds = b2;
	ck_assert_int_eq(shmet_family_register(&seg, &d, &f), 0);
	ck_assert_int_eq(shmet_gauge_family(&seg, &f, "g", "g",
					    SHMET_GAUGE_MAX, 0, NULL), 0);
	memset(&d, 0, sizeof d);
	d.name = "g";
	d.type = SHMET_TYPE_GAUGE;
	d.gauge_mode = SHMET_GAUGE_MIN;
	ck_assert_int_eq(shmet_family_register(&seg, &d, &f), 0);
	/* Nothing recorded was lost. */
	ck_assert_double_eq(test_counter("m_total", SHMET_VALUES("v")), 7);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_label_errors)
{
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;
	char *longv = malloc(SHMET_MAX_LABEL_VALUE_LEN + 2);
	const char *vals[2];
	uint64_t before;

	test_open(&seg, NULL);
	shmet_counter_family(&seg, &f, "l_total", "l", 2, two_labels);
	before = failures(SHMET_FAIL_INVALID_LABELS);
	ck_assert_int_eq(shmet_counter_labels(&f, &c, SHMET_VALUES("only")),
			 -EINVAL);
	ck_assert_ptr_nonnull(strstr(shmet_last_error(&seg), "takes 2"));
	shmet_counter_inc(&c);
	ck_assert_uint_eq(failures(SHMET_FAIL_INVALID_LABELS), before + 1);
	memset(longv, 'v', SHMET_MAX_LABEL_VALUE_LEN + 1);
	longv[SHMET_MAX_LABEL_VALUE_LEN + 1] = '\0';
	vals[0] = longv;
	vals[1] = "x";
	ck_assert_int_eq(shmet_counter_labels(&f, &c, 2, vals), -EINVAL);
	ck_assert_uint_eq(failures(SHMET_FAIL_LABEL_VALUE), 1);
	longv[SHMET_MAX_LABEL_VALUE_LEN] = '\0';        /* exactly the max */
	ck_assert_int_eq(shmet_counter_labels(&f, &c, 2, vals), 0);
	vals[1] = NULL;
	ck_assert_int_eq(shmet_counter_labels(&f, &c, 2, vals), -EINVAL);
	/* Arbitrary bytes round-trip. */
	vals[0] = "quote\" back\\slash\nnewline ünïcödé";
	vals[1] = "";
	ck_assert_int_eq(shmet_counter_labels(&f, &c, 2, vals), 0);
	shmet_counter_inc(&c);
	ck_assert_double_eq(test_counter("l_total", 2, vals), 1);
	free(longv);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_cardinality_limit)
{
	static const char *const one[] = { "id" };
	struct shmet_segment seg;
	struct shmet_family_desc d;
	struct shmet_family f;
	struct shmet_counter c;
	char v[16];
	const char *vals[1] = { v };

	test_open(&seg, NULL);
	memset(&d, 0, sizeof d);
	d.name = "card_total";
	d.type = SHMET_TYPE_COUNTER;
	d.label_count = 1;
	d.label_names = one;
	d.max_series = 10;
	ck_assert_int_eq(shmet_family_register(&seg, &d, &f), 0);
	for (int i = 0; i < 10; i++) {
		snprintf(v, sizeof v, "%d", i);
		ck_assert_int_eq(shmet_counter_labels(&f, &c, 1, vals), 0);
		shmet_counter_inc(&c);
	}
	snprintf(v, sizeof v, "overflow");
	ck_assert_int_eq(shmet_counter_labels(&f, &c, 1, vals), -E2BIG);
	ck_assert_ptr_nonnull(strstr(shmet_last_error(&seg), "limit of 10"));
	shmet_counter_inc(&c);
	ck_assert_uint_eq(failures(SHMET_FAIL_CARDINALITY), 1);
	/* Existing series still resolve and count. */
	snprintf(v, sizeof v, "3");
	ck_assert_int_eq(shmet_counter_labels(&f, &c, 1, vals), 0);
	shmet_counter_inc(&c);
	ck_assert_double_eq(test_counter("card_total", 1, vals), 2);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_segment_full)
{
	static const char *const one[] = { "id" };
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c, first;
	char v[32];
	const char *vals[1] = { v };
	int rc = 0, i;

	o.max_series = 100;
	o.max_families = 4;
	test_open(&seg, &o);
	shmet_counter_family(&seg, &f, "full_total", "f", 1, one);
	shmet_counter_labels(&f, &first, SHMET_VALUES("first"));
	shmet_counter_add(&first, 5);
	for (i = 0; i < 200 && rc == 0; i++) {
		snprintf(v, sizeof v, "s%d", i);
		rc = shmet_counter_labels(&f, &c, 1, vals);
	}
	ck_assert_int_eq(rc, -ENOSPC);
	ck_assert_int_eq(i, 100);
	shmet_counter_inc(&c);
	ck_assert_uint_ge(failures(SHMET_FAIL_SERIES_FULL), 1);
	/* Families: 4 fit. */
	ck_assert_int_eq(shmet_counter_family(&seg, &f, "b_total", "", 0, NULL), 0);
	ck_assert_int_eq(shmet_counter_family(&seg, &f, "c_total", "", 0, NULL), 0);
	ck_assert_int_eq(shmet_counter_family(&seg, &f, "d_total", "", 0, NULL), 0);
	ck_assert_int_eq(shmet_counter_family(&seg, &f, "e_total", "", 0, NULL),
			 -ENOSPC);
	ck_assert_uint_eq(failures(SHMET_FAIL_FAMILIES_FULL), 1);
	ck_assert_double_eq(test_counter("full_total", SHMET_VALUES("first")), 5);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_cells_and_strings_full)
{
	static const char *const one[] = { "id" };
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_histogram h;
	struct shmet_counter c;
	double b[SHMET_MAX_BOUNDS];
	char v[1000];
	const char *vals[1] = { v };
	int rc = 0;

	o.cells_per_block = 512;
	o.string_bytes = 8192;
	test_open(&seg, &o);
	shmet_linear_bounds(1, 1, SHMET_MAX_BOUNDS, b);
	/* 130 cells each: the 4th does not fit in 512. */
	shmet_histogram_family(&seg, &f, "hh", "h", SHMET_MAX_BOUNDS, b, 1, one);
	for (int i = 0; i < 4; i++) {
		snprintf(v, sizeof v, "%d", i);
		rc = shmet_histogram_labels(&f, &h, 1, vals);
	}
	ck_assert_int_eq(rc, -ENOSPC);
	ck_assert_uint_eq(failures(SHMET_FAIL_CELLS_FULL), 1);
	shmet_histogram_observe(&h, 3);
	/* Strings: 1000-byte label values exhaust 8 KiB. */
	shmet_counter_family(&seg, &f, "s_total", "s", 1, one);
	memset(v, 'x', sizeof v - 1);
	v[sizeof v - 1] = '\0';
	rc = 0;
	for (int i = 0; i < 20 && rc == 0; i++) {
		v[0] = (char)('a' + i);
		rc = shmet_counter_labels(&f, &c, 1, vals);
	}
	ck_assert_int_eq(rc, -ENOSPC);
	ck_assert_msg(failures(SHMET_FAIL_STRINGS_FULL) >= 1, "%s",
		      shmet_last_error(&seg));
	shmet_counter_inc(&c);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_close_leaves_safe_handles)
{
	struct shmet_segment seg;
	struct shmet_counter c;
	struct shmet_histogram h;
	struct shmet_gauge g;
	double b[] = { 1, 2, 3 };

	test_open(&seg, NULL);
	shmet_counter_new(&seg, &c, "closed_total", "c");
	shmet_histogram_new(&seg, &h, "closed_h", "h", 3, b);
	shmet_gauge_new(&seg, &g, "closed_g", "g", 0);
	shmet_counter_inc(&c);
	shmet_close(&seg);
	shmet_counter_inc(&c);
	shmet_histogram_observe(&h, 2);
	shmet_gauge_set(&g, 3);
	ck_assert_double_eq(test_counter("closed_total", 0, NULL), 1);
	shmet_close(&seg);              /* twice is harmless */
}
END_TEST

START_TEST(test_fallback_block_when_slots_full)
{
	struct shmet_options o = test_options();
	struct shmet_segment a, b, c;
	struct shmet_counter ca, cb, cc;

	o.max_writers = 2;
	test_open(&a, &o);
	test_open(&b, &o);
	test_open(&c, &o);              /* own fd: its own writer */
	ck_assert_uint_ne(a.slot, b.slot);
	ck_assert_uint_eq(c.slot, 2);   /* the fallback block */
	shmet_counter_new(&a, &ca, "fb_total", "f");
	shmet_counter_new(&b, &cb, "fb_total", "f");
	shmet_counter_new(&c, &cc, "fb_total", "f");
	shmet_counter_add(&ca, 1);
	shmet_counter_add(&cb, 10);
	shmet_counter_add(&cc, 100);
	ck_assert_double_eq(test_counter("fb_total", 0, NULL), 111);
	ck_assert_uint_eq(failures(SHMET_FAIL_WRITERS_FULL), 1);
	shmet_close(&a);
	shmet_close(&b);
	shmet_close(&c);
}
END_TEST

/*
 * A dead writer's gauges read the same before and after its slot is taken
 * over (the takeover folds them into the retired block by mode), and its
 * counters keep counting: what a scrape shows never depends on when a
 * slot is reused.
 */
START_TEST(test_takeover_folds_gauges_keeps_counters)
{
	static const struct {
		const char *name;
		uint32_t mode;
		double a, b, dead, after;       /* a's value, b's; readings */
	} cases[] = {
		{ "g_sum", SHMET_GAUGE_SUM, 9, 2, 9, 11 },
		{ "g_max", SHMET_GAUGE_MAX, 9, 2, 9, 9 },
		{ "g_min", SHMET_GAUGE_MIN, 9, 2, 9, 2 },
		{ "g_recent", SHMET_GAUGE_MOSTRECENT, 9, 2, 9, 2 },
		{ "g_livesum", SHMET_GAUGE_LIVESUM, 9, 2, 0, 2 },
	};
	const size_t n = sizeof cases / sizeof cases[0];
	struct shmet_options o = test_options();
	struct shmet_segment a, b;
	struct shmet_counter c;
	struct shmet_gauge g;
	uint32_t slot;

	o.max_writers = 1;
	test_open(&a, &o);
	slot = a.slot;
	shmet_counter_new(&a, &c, "keep_total", "k");
	shmet_counter_add(&c, 5);
	for (size_t i = 0; i < n; i++) {
		shmet_gauge_new(&a, &g, cases[i].name, "g", cases[i].mode);
		shmet_gauge_set(&g, cases[i].a);
	}
	shmet_close(&a);                /* released */
	for (size_t i = 0; i < n; i++)
		ck_assert_double_eq(gauge_value(cases[i].name),
				    cases[i].dead);
	test_open(&b, &o);              /* takes the slot over */
	ck_assert_uint_eq(b.slot, slot);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(gauge_value(cases[i].name) == cases[i].dead,
			      "%s changed at takeover: %g", cases[i].name,
			      gauge_value(cases[i].name));
	for (size_t i = 0; i < n; i++) {
		shmet_gauge_new(&b, &g, cases[i].name, "g", cases[i].mode);
		shmet_gauge_set(&g, cases[i].b);
		ck_assert_msg(gauge_value(cases[i].name) == cases[i].after,
			      "%s: %g, want %g", cases[i].name,
			      gauge_value(cases[i].name), cases[i].after);
	}
	shmet_counter_new(&b, &c, "keep_total", "k");
	shmet_counter_add(&c, 1);
	ck_assert_double_eq(test_counter("keep_total", 0, NULL), 6);
	shmet_close(&b);
}
END_TEST

/* The fallback block mixes processes: it takes no gauges. */
START_TEST(test_fallback_block_takes_no_gauges)
{
	struct shmet_options o = test_options();
	struct shmet_segment a, b;
	struct shmet_counter c;
	struct shmet_gauge g;

	o.max_writers = 1;
	test_open(&a, &o);
	test_open(&b, &o);              /* every slot live: the fallback */
	ck_assert_uint_eq(b.slot, 1);
	ck_assert_int_eq(shmet_gauge_new(&b, &g, "fb_gauge", "f", 0), -ENOSPC);
	ck_assert_ptr_nonnull(strstr(shmet_last_error(&b), "fb_gauge"));
	shmet_gauge_set(&g, 5);         /* safe, recorded nowhere */
	ck_assert_int_eq(shmet_counter_new(&b, &c, "fb_total", "f"), 0);
	shmet_counter_inc(&c);
	ck_assert_double_eq(test_counter("fb_total", 0, NULL), 1);
	ck_assert_double_eq(gauge_value("fb_gauge"), 0);     /* livesum: 0 */
	shmet_close(&b);
	shmet_close(&a);
}
END_TEST

TEST_SUITE(writer)
{
	Suite *s = suite_create("writer");
	TCase *tc;

	tc = tcase_create("Segment open and close");
	tcase_add_checked_fixture(tc, test_segment_setup, test_segment_teardown);
	tcase_add_test(tc, test_open_creates_0600);
	tcase_add_test(tc, test_open_mode_ignores_umask);
	tcase_add_test(tc, test_open_env_overrides_default);
	tcase_add_test(tc, test_open_bad_name_gives_safe_handles);
	tcase_add_test(tc, test_open_path_segment);
	tcase_add_test(tc, test_open_path_refusals);
	tcase_add_test(tc, test_open_no_create_missing);
	tcase_add_test(tc, test_open_foreign_segment);
	tcase_add_test(tc, test_open_newer_version_refused);
	tcase_add_test(tc, test_open_refuses_squatted_segment);
	tcase_add_test(tc, test_close_leaves_safe_handles);
	tcase_add_test(tc, test_fallback_block_when_slots_full);
	tcase_add_test(tc, test_takeover_folds_gauges_keeps_counters);
	tcase_add_test(tc, test_fallback_block_takes_no_gauges);
	suite_add_tcase(s, tc);

	tc = tcase_create("Hot path operations");
	tcase_add_checked_fixture(tc, test_segment_setup, test_segment_teardown);
	tcase_add_test(tc, test_counter_inc_add);
	tcase_add_test(tc, test_counter_same_labels_same_series);
	tcase_add_test(tc, test_invalid_utf8_is_one_series);
	tcase_add_test(tc, test_counter_zero_labels);
	tcase_add_test(tc, test_counter_large_adds_do_not_wrap);
	tcase_add_test(tc, test_gauge_ops);
	tcase_add_test(tc, test_gauge_unset_is_absent);
	tcase_add_test(tc, test_sum_gauge_without_writers_is_zero);
	tcase_add_test(tc, test_histogram_buckets);
	tcase_add_test(tc, test_histogram_many_bounds_binary_search);
	tcase_add_test(tc, test_bound_helpers);
	tcase_add_test(tc, test_time_macro_observes_once);
	tcase_add_test(tc, test_time_macro_every_exit);
	suite_add_tcase(s, tc);

	tc = tcase_create("Registration errors");
	tcase_add_checked_fixture(tc, test_segment_setup, test_segment_teardown);
	tcase_add_test(tc, test_invalid_names);
	tcase_add_test(tc, test_invalid_buckets);
	tcase_add_test(tc, test_shape_mismatch);
	tcase_add_test(tc, test_label_errors);
	tcase_add_test(tc, test_cardinality_limit);
	tcase_add_test(tc, test_segment_full);
	tcase_add_test(tc, test_cells_and_strings_full);
	tcase_add_test(tc, test_exposed_name_collisions);
	tcase_add_test(tc, test_reserved_names);
	tcase_add_test(tc, test_failed_registration_gives_back);
	suite_add_tcase(s, tc);
	return s;
}
