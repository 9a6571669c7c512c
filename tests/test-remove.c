/*
 * Removing series (writer/remove.c): shmet_family_remove and
 * shmet_family_clear, as prometheus_client's remove() and clear().
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "test-common.h"

START_TEST(test_remove_one)
{
	static const char *const k[] = { "k" };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter x, y, stale;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_counter_family(&seg, &f, "r_total", "r", 1, k),
			 0);
	shmet_counter_labels(&f, &x, SHMET_VALUES("x"));
	shmet_counter_labels(&f, &y, SHMET_VALUES("y"));
	shmet_counter_add(&x, 5);
	shmet_counter_add(&y, 7);
	stale = x;
	ck_assert_int_eq(shmet_family_remove(&f, SHMET_VALUES("x")), 0);
	ck_assert(!test_shown("r_total", SHMET_VALUES("x")));
	ck_assert_double_eq(test_counter("r_total", SHMET_VALUES("y")), 7);
	/* again: nothing to remove */
	ck_assert_int_eq(shmet_family_remove(&f, SHMET_VALUES("x")), -ENOENT);
	/* a handle kept across the removal drops its writes, counted */
	ck_assert_uint_eq(atomic_load(&seg.hdr->stale_writes), 0);
	shmet_counter_add(&stale, 100);
	ck_assert_uint_eq(atomic_load(&seg.hdr->stale_writes), 1);
	ck_assert(!test_shown("r_total", SHMET_VALUES("x")));
	ck_assert_double_eq(test_counter("r_total", SHMET_VALUES("y")), 7);
	/* the same values again: a new series, from zero */
	ck_assert_int_eq(shmet_counter_labels(&f, &x, SHMET_VALUES("x")), 0);
	ck_assert_ptr_ne(x.cell, stale.cell);
	shmet_counter_inc(&x);
	ck_assert_double_eq(test_counter("r_total", SHMET_VALUES("x")), 1);
	shmet_counter_add(&stale, 100);
	ck_assert_double_eq(test_counter("r_total", SHMET_VALUES("x")), 1);
	ck_assert_uint_eq(atomic_load(&seg.hdr->stale_writes), 2);
	ck_assert_uint_eq(test_series_shown("r_total"), 2);
	/* wrong label count; a failed family */
	ck_assert_int_eq(shmet_family_remove(&f, 0, NULL), -EINVAL);
	{
		struct shmet_family bad;

		ck_assert_int_lt(shmet_counter_family(&seg, &bad, "bad name",
						      "b", 0, NULL), 0);
		ck_assert_int_eq(shmet_family_remove(&bad, 0, NULL),
				 bad.error);
		ck_assert_int_eq(shmet_family_clear(&bad), bad.error);
	}
	shmet_close(&seg);
}
END_TEST

START_TEST(test_clear)
{
	static const char *const k[] = { "k" };
	struct shmet_segment seg;
	struct shmet_family f, other;
	struct shmet_counter c;
	char v[16];

	test_open(&seg, NULL);
	shmet_counter_family(&seg, &f, "c_total", "c", 1, k);
	shmet_counter_family(&seg, &other, "o_total", "o", 1, k);
	for (int i = 0; i < 50; i++) {
		const char *vals[1] = { v };

		snprintf(v, sizeof v, "%d", i);
		shmet_counter_labels(&f, &c, 1, vals);
		shmet_counter_inc(&c);
		shmet_counter_labels(&other, &c, 1, vals);
		shmet_counter_inc(&c);
	}
	ck_assert_uint_eq(test_series_shown("c_total"), 50);
	ck_assert_int_eq(shmet_family_clear(&f), 0);
	ck_assert_uint_eq(test_series_shown("c_total"), 0);
	ck_assert_uint_eq(test_series_shown("o_total"), 50);
	ck_assert_int_eq(shmet_family_clear(&f), 0);
	shmet_close(&seg);
}
END_TEST

/* The cardinality limit counts live series: a removal frees its unit. */
START_TEST(test_remove_frees_the_limit)
{
	static const char *const k[] = { "k" };
	struct shmet_segment seg;
	struct shmet_family_desc d;
	struct shmet_family f;
	struct shmet_counter c;

	test_open(&seg, NULL);
	memset(&d, 0, sizeof d);
	d.name = "lim_total";
	d.type = SHMET_TYPE_COUNTER;
	d.label_count = 1;
	d.label_names = k;
	d.max_series = 2;
	ck_assert_int_eq(shmet_family_register(&seg, &d, &f), 0);
	ck_assert_int_eq(shmet_counter_labels(&f, &c, SHMET_VALUES("a")), 0);
	ck_assert_int_eq(shmet_counter_labels(&f, &c, SHMET_VALUES("b")), 0);
	ck_assert_int_eq(shmet_counter_labels(&f, &c, SHMET_VALUES("c")),
			 -E2BIG);
	ck_assert_int_eq(shmet_family_remove(&f, SHMET_VALUES("a")), 0);
	ck_assert_int_eq(shmet_counter_labels(&f, &c, SHMET_VALUES("c")), 0);
	ck_assert_int_eq(shmet_counter_labels(&f, &c, SHMET_VALUES("a")),
			 -E2BIG);
	ck_assert_int_eq(shmet_family_clear(&f), 0);
	ck_assert_int_eq(shmet_counter_labels(&f, &c, SHMET_VALUES("a")), 0);
	ck_assert_int_eq(shmet_counter_labels(&f, &c, SHMET_VALUES("d")), 0);
	shmet_close(&seg);
}
END_TEST

/* Values are found as stored: invalid UTF-8 repaired. */
START_TEST(test_remove_repaired_value)
{
	static const char *const k[] = { "k" };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;

	test_open(&seg, NULL);
	shmet_counter_family(&seg, &f, "u_total", "u", 1, k);
	ck_assert_int_eq(shmet_counter_labels(&f, &c, SHMET_VALUES("a\xff")),
			 0);
	ck_assert_uint_eq(test_series_shown("u_total"), 1);
	ck_assert_int_eq(shmet_family_remove(&f, SHMET_VALUES("a\xff")), 0);
	ck_assert_uint_eq(test_series_shown("u_total"), 0);
	shmet_close(&seg);
}
END_TEST

/* Removers and creators of one family in many processes at once: the
 * family's count stays the number of its live series. */
static void
churn_child(int i, void *arg)
{
	static const char *const k[] = { "k" };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;
	char v[16];
	const char *vals[1] = { v };

	(void)arg;
	test_open(&seg, NULL);
	if (shmet_counter_family(&seg, &f, "churn_total", "c", 1, k) != 0)
		_exit(2);
	for (int n = 0; n < 200; n++) {
		snprintf(v, sizeof v, "%d", n % 10);
		if (shmet_counter_labels(&f, &c, 1, vals) != 0)
			_exit(3);
		shmet_counter_inc(&c);
		if ((n + i) % 3 == 0) {
			int rc = shmet_family_remove(&f, 1, vals);

			if (rc != 0 && rc != -ENOENT)
				_exit(4);
		}
	}
	shmet_close(&seg);
}

START_TEST(test_remove_races)
{
	static const char *const k[] = { "k" };
	struct shmet_segment seg;
	struct shmet_family f;
	struct test_snapshot s;
	const struct shmet_index_family *fi;

	test_open(&seg, NULL);
	test_fork_all_at_once(6, churn_child, NULL);
	shmet_counter_family(&seg, &f, "churn_total", "c", 1, k);
	test_snapshot_take(&s);
	fi = shmet_index_find(s.index, "churn_total");
	{
		const struct shmet_seg_family *rec =
			(const struct shmet_seg_family *)(
				(const unsigned char *)seg.hdr +
				seg.hdr->families_off) + f.id;

		ck_assert_uint_eq(atomic_load(&rec->series_count),
				  fi ? fi->series_count : 0);
		ck_assert_uint_eq(atomic_load(&rec->gate_series), 0);
	}
	ck_assert_uint_le(fi ? fi->series_count : 0, 10);
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

/* A full segment gives a new series the record, cells and label bytes of
 * one that left, a second after it left (SHMET_REUSE_NS). */
/* The reader's fill: series handed out and in use, and health. */
static void
check_fill(uint32_t used, uint32_t in_use, int degraded)
{
	struct test_snapshot s;
	struct shmet_reader_info in;

	test_snapshot_take(&s);
	ck_assert_int_eq(shmet_reader_info(s.reader, &in), 0);
	ck_assert_uint_eq(in.series_used, used);
	ck_assert_uint_eq(in.series_in_use, in_use);
	/* the fill alone: the -ENOSPC failures above degrade it too */
	ck_assert_uint_gt(in.failures[SHMET_FAIL_SERIES_FULL], 0);
	memset(in.failures, 0, sizeof in.failures);
	ck_assert_int_eq(shmet_health_degraded(&in), degraded);
	test_snapshot_free(&s);
}

START_TEST(test_reuse_when_full)
{
	static const char *const k[] = { "k" };
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter a, b, c, stale;
	uint32_t strings;

	o.max_series = 3;
	test_open(&seg, &o);
	shmet_counter_family(&seg, &f, "full_total", "f", 1, k);
	ck_assert_int_eq(shmet_counter_labels(&f, &a, SHMET_VALUES("a")), 0);
	ck_assert_int_eq(shmet_counter_labels(&f, &b, SHMET_VALUES("b")), 0);
	ck_assert_int_eq(shmet_counter_labels(&f, &c, SHMET_VALUES("c")), 0);
	shmet_counter_add(&a, 5);
	ck_assert_int_eq(shmet_counter_labels(&f, &c, SHMET_VALUES("d")),
			 -ENOSPC);
	stale = a;
	ck_assert_int_eq(shmet_family_remove(&f, SHMET_VALUES("a")), 0);
	/* not before a second has passed */
	ck_assert_int_eq(shmet_counter_labels(&f, &c, SHMET_VALUES("d")),
			 -ENOSPC);
	/* every record handed out, two in use: health is not degraded */
	check_fill(3, 2, 0);
	usleep(1100 * 1000);
	strings = atomic_load(&seg.hdr->strings_used);
	ck_assert_int_eq(shmet_counter_labels(&f, &c, SHMET_VALUES("d")), 0);
	/* a's record and cells, from zero; its label bytes too */
	ck_assert_ptr_eq(c.cell, stale.cell);
	ck_assert_uint_eq(atomic_load(&seg.hdr->strings_used), strings);
	ck_assert_double_eq(test_counter("full_total", SHMET_VALUES("d")), 0);
	/* the handle kept from a never writes into d */
	for (int i = 0; i < 1000000; i++) {
		shmet_counter_inc(&c);
		shmet_counter_inc(&stale);
	}
	ck_assert_double_eq(test_counter("full_total", SHMET_VALUES("d")),
			    1000000);
	ck_assert(!test_shown("full_total", SHMET_VALUES("a")));
	ck_assert_uint_eq(atomic_load(&seg.hdr->stale_writes), 1000000);
	ck_assert_uint_eq(test_series_shown("full_total"), 3);
	check_fill(3, 3, 1);
	shmet_close(&seg);
}
END_TEST

#ifdef SHMET_TEST_POINTS
/*
 * Churn until the series index has no empty slot left (every slot a live
 * series or a removed one's tombstone): lookups and creations still find
 * every live series once, and the probe bound stays a short run, far from
 * the index's size, so a miss does not probe the whole index.
 */
START_TEST(test_churned_index_probe_bound)
{
	static const char *const k[] = { "k" };
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c[48];
	SHMET_ATOMIC(uint32_t) *index;
	const struct shmet_seg_series *table;
	uint32_t slots, empty = 1, made = 0, bound, farthest = 0;
	char v[32];

	setenv("SHMETRICS_TEST_REUSE_MS", "0", 1);
	o.max_series = 64;
	test_open(&seg, &o);
	slots = seg.hdr->series_index_slots;
	index = (SHMET_ATOMIC(uint32_t) *)(void *)((char *)seg.hdr +
						   seg.hdr->series_index_off);
	table = (const struct shmet_seg_series *)(const void *)(
		(const char *)seg.hdr + seg.hdr->series_off);
	shmet_counter_family(&seg, &f, "churn_total", "c", 1, k);
	/* 48 live series at a time (the index at 3/8 load: runs form), each replaced in turn by a new one */
	while (empty > 0) {
		snprintf(v, sizeof v, "v%u", made);
		if (made >= 48) {
			char old[32];

			snprintf(old, sizeof old, "v%u", made - 48);
			ck_assert_int_eq(shmet_family_remove(&f, 1,
				(const char *const[]){ old }), 0);
		}
		ck_assert_int_eq(shmet_counter_labels(&f, &c[made % 48], 1,
			(const char *const[]){ v }), 0);
		shmet_counter_add(&c[made % 48], made + 1);
		made++;
		empty = 0;
		for (uint32_t i = 0; i < slots; i++)
			empty += atomic_load(&index[i]) == 0;
		ck_assert_uint_lt(made, 1000000);
	}
	/* more churn in the index without empty slots */
	for (uint32_t n = made + 4 * slots; made < n; made++) {
		char old[32];

		snprintf(old, sizeof old, "v%u", made - 48);
		ck_assert_int_eq(shmet_family_remove(&f, 1,
			(const char *const[]){ old }), 0);
		snprintf(v, sizeof v, "v%u", made);
		ck_assert_int_eq(shmet_counter_labels(&f, &c[made % 48], 1,
			(const char *const[]){ v }), 0);
		shmet_counter_add(&c[made % 48], made + 1);
	}
	/* every live series lies within the bound of its home */
	bound = atomic_load(&seg.hdr->series_probe_max);
	for (uint32_t i = 0; i < slots; i++) {
		uint32_t e = atomic_load(&index[i]), d;

		if (e == 0 || e == SHMET_INDEX_TOMB)
			continue;
		d = (i - (uint32_t)table[e - 1].hash) & (slots - 1);
		ck_assert_msg(d <= bound, "series at %u past the bound %u", d,
			      bound);
		if (d > farthest)
			farthest = d;
	}
	ck_assert_uint_gt(farthest, 0);         /* runs did form */
	ck_assert_msg(bound < slots / 4, "probe bound %u of %u slots", bound,
		      slots);
	/* the 48 live ones: found again (same cells), shown once, exact */
	for (uint32_t i = made - 48; i < made; i++) {
		struct shmet_counter again;

		snprintf(v, sizeof v, "v%u", i);
		ck_assert_int_eq(shmet_counter_labels(&f, &again, 1,
			(const char *const[]){ v }), 0);
		ck_assert_ptr_eq(again.cell, c[i % 48].cell);
		ck_assert_double_eq(test_counter("churn_total", 1,
			(const char *const[]){ v }), i + 1);
	}
	ck_assert_uint_eq(test_series_shown("churn_total"), 48);
	unsetenv("SHMETRICS_TEST_REUSE_MS");
	shmet_close(&seg);
}
END_TEST
#endif

TEST_SUITE(remove)
{
	Suite *s = suite_create("remove");
	TCase *tc = tcase_create("remove");

	tcase_add_checked_fixture(tc, test_segment_setup,
				  test_segment_teardown);
	tcase_add_test(tc, test_remove_one);
	tcase_add_test(tc, test_clear);
	tcase_add_test(tc, test_remove_frees_the_limit);
	tcase_add_test(tc, test_remove_repaired_value);
	tcase_add_test(tc, test_remove_races);
	tcase_add_test(tc, test_reuse_when_full);
#ifdef SHMET_TEST_POINTS
	tcase_add_test(tc, test_churned_index_probe_bound);
#endif
	suite_add_tcase(s, tc);
	return s;
}
