/*
 * Exemplars (layout 6, writer/exemplar.c, lib/values-exemplar.c): stored
 * by any process, shown on the OpenMetrics page only, checked before
 * they are shown (owner, incarnation, checksum, labels, the lock).
 */
#include "test-common.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "shmetrics/format.h"

/* The page of the test segment in OpenMetrics (om) or text 0.0.4. */
static char *
page(int om)
{
	struct test_snapshot s;
	struct shmet_buf b = { 0 };
	char *out;

	test_snapshot_take(&s);
	ck_assert_int_eq(om ? shmet_render_openmetrics(s.index, s.values, &b)
			    : shmet_render_text(s.index, s.values, &b),
			 0);
	out = strdup(b.data);
	shmet_buf_free(&b);
	test_snapshot_free(&s);
	return out;
}

/* The line of page that starts with prefix (NUL-ended copy), or NULL. */
static char *
line(const char *pg, const char *prefix)
{
	const char *p = pg;

	while (p && *p) {
		const char *end = strchr(p, '\n');

		if (strncmp(p, prefix, strlen(prefix)) == 0)
			return strndup(p, end ? (size_t)(end - p) : strlen(p));
		p = end ? end + 1 : NULL;
	}
	return NULL;
}

static void
assert_line(const char *pg, const char *prefix, const char *want_after)
{
	char *l = line(pg, prefix);

	ck_assert_msg(l, "no line %s in:\n%s", prefix, pg);
	ck_assert_msg(strncmp(l + strlen(prefix), want_after,
			      strlen(want_after)) == 0,
		      "line '%s' lacks '%s' after its prefix", l, want_after);
	free(l);
}

START_TEST(test_counter_exemplar_om_only)
{
	struct shmet_segment seg;
	struct shmet_options o = test_options();
	struct shmet_counter c;
	const char *n[] = { "trace_id" }, *v[] = { "abc123" };
	char *om, *text;

	test_open(&seg, &o);
	ck_assert_int_eq(shmet_counter_new(&seg, &c, "calls_total", "Calls."),
			 0);
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 1, n, v), 0);
	ck_assert_int_eq(shmet_counter_add_exemplar(&c, 2.0, 1, n, v), 0);
	om = page(1);
	text = page(0);
	/* count 3, the latest exemplar: 2.0 */
	assert_line(om, "calls_total ", "3 # {trace_id=\"abc123\"} 2.0 ");
	assert_line(text, "calls_total ", "3");
	ck_assert_ptr_null(strstr(text, "# {"));
	ck_assert_ptr_null(strstr(text, "trace_id"));
	free(om);
	free(text);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_histogram_bucket_exemplars)
{
	struct shmet_segment seg;
	struct shmet_options o = test_options();
	struct shmet_histogram h;
	const double bounds[] = { 0.5, 1, 5 };
	const char *n[] = { "trace_id", "span" };
	const char *v1[] = { "t-slow", "s1" }, *v2[] = { "t-fast", "s2" };
	char *om, *l;

	test_open(&seg, &o);
	ck_assert_int_eq(shmet_histogram_new(&seg, &h, "setup_seconds", "S.",
					     3, bounds),
			 0);
	ck_assert_int_eq(shmet_histogram_observe_exemplar(&h, 3.5, 2, n, v1),
			 0);
	ck_assert_int_eq(shmet_histogram_observe_exemplar(&h, 0.25, 2, n, v2),
			 0);
	shmet_histogram_observe(&h, 0.75);      /* no exemplar for le=1 */
	om = page(1);
	assert_line(om, "setup_seconds_bucket{le=\"0.5\"} ",
		    "1 # {trace_id=\"t-fast\",span=\"s2\"} 0.25 ");
	assert_line(om, "setup_seconds_bucket{le=\"1.0\"} ", "2\0");
	l = line(om, "setup_seconds_bucket{le=\"1.0\"} ");
	ck_assert_str_eq(l, "setup_seconds_bucket{le=\"1.0\"} 2");
	free(l);
	assert_line(om, "setup_seconds_bucket{le=\"5.0\"} ",
		    "3 # {trace_id=\"t-slow\",span=\"s1\"} 3.5 ");
	l = line(om, "setup_seconds_bucket{le=\"+Inf\"} ");
	ck_assert_str_eq(l, "setup_seconds_bucket{le=\"+Inf\"} 3");
	free(l);
	l = line(om, "setup_seconds_count ");
	ck_assert_str_eq(l, "setup_seconds_count 3");
	free(l);
	free(om);
	shmet_close(&seg);
}
END_TEST

static void
child_writes(int i, void *arg)
{
	struct shmet_segment seg;
	struct shmet_options o = test_options();
	struct shmet_counter c;
	const char *n[] = { "trace_id" };
	char id[32];
	const char *v[] = { id };

	(void)arg;
	snprintf(id, sizeof id, "child-%d", i);
	test_open(&seg, &o);
	ck_assert_int_eq(shmet_counter_new(&seg, &c, "jobs_total", "J."), 0);
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 1, n, v), 0);
	shmet_close(&seg);
}

/* One process writes it, another (a reader here) shows it. */
START_TEST(test_exemplar_across_processes)
{
	char *om;

	test_fork_all(1, child_writes, NULL);
	om = page(1);
	assert_line(om, "jobs_total ", "1 # {trace_id=\"child-0\"} 1.0 ");
	free(om);
}
END_TEST

START_TEST(test_exemplar_validation)
{
	struct shmet_segment seg;
	struct shmet_options o = test_options();
	struct shmet_counter c;
	char long_value[160];
	const char *n[] = { "trace_id" }, *bad[] = { "1x" },
		   *reserved[] = { "__x" }, *v[] = { long_value };
	const char *latin[] = { "\xc3\xa9" }, *broken[] = { "\xc3" };
	char *om;

	test_open(&seg, &o);
	ck_assert_int_eq(shmet_counter_new(&seg, &c, "v_total", "V."), 0);
	/* 8 + 120 = 128 characters: the limit */
	memset(long_value, 'a', 120);
	long_value[120] = 0;
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 1, n, v), 0);
	long_value[120] = 'a';
	long_value[121] = 0;
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 1, n, v), -EINVAL);
	ck_assert_ptr_nonnull(strstr(shmet_last_error(&seg), "128"));
	/* characters, not bytes: 60 two-byte é and 8 of name = 68 */
	for (int i = 0; i < 60; i++)
		memcpy(long_value + 2 * i, "\xc3\xa9", 2);
	long_value[120] = 0;
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 1, n, v), 0);
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 1, bad, latin),
			 -EINVAL);
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 1, reserved, latin),
			 -EINVAL);
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 1, n, broken),
			 -EINVAL);
	/* no labels: counted, no exemplar (prometheus_client's {}) */
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 0, NULL, NULL), 0);
	/* every call counted, the last valid exemplar kept */
	om = page(1);
	ck_assert_ptr_nonnull(strstr(om, "v_total 7 # {trace_id=\"\xc3\xa9\xc3\xa9"));
	ck_assert_ptr_nonnull(strstr(om, "\xc3\xa9\"} 1.0 "));
	free(om);
	shmet_close(&seg);
}
END_TEST

/* A removed series' exemplar never shows on the series that takes its
 * record or cells; a failed handle's exemplar goes nowhere. */
START_TEST(test_exemplar_removed_series)
{
	struct shmet_segment seg;
	struct shmet_options o = test_options();
	struct shmet_family fam;
	struct shmet_counter c, d;
	const char *ln[] = { "k" };
	const char *n[] = { "trace_id" }, *v[] = { "gone" };
	char *om;

	test_open(&seg, &o);
	ck_assert_int_eq(shmet_counter_family(&seg, &fam, "r_total", "R.", 1,
					      ln),
			 0);
	ck_assert_int_eq(shmet_counter_labels(&fam, &c, SHMET_VALUES("a")), 0);
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 1, n, v), 0);
	ck_assert_int_eq(shmet_family_remove(&fam, SHMET_VALUES("a")), 0);
	/* the stale handle's exemplar is dropped */
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 1, n, v), -ESTALE);
	ck_assert_int_eq(shmet_counter_labels(&fam, &d, SHMET_VALUES("a")), 0);
	shmet_counter_inc(&d);
	om = page(1);
	assert_line(om, "r_total{k=\"a\"} ", "1");
	ck_assert_ptr_null(strstr(om, "gone"));
	free(om);
	/* a failed registration's handle */
	ck_assert_int_ne(shmet_counter_new(&seg, &c, "bad name", "B."), 0);
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 1, n, v), -ESTALE);
	shmet_close(&seg);
	/* and a closed segment's */
	ck_assert_int_eq(shmet_counter_inc_exemplar(&d, 1, n, v), -ESTALE);
}
END_TEST

/*
 * Many series, exemplars on some: the scrape finds a set map page's
 * series by cell (values-exemplar.c), and cell order is not the page's
 * (families registered out of name order, series out of label order,
 * interleaved).  Every series and bucket has exactly the exemplar written
 * to it, identified by its value.
 */
#define MANY 240

static const double many_bounds[] = { 1, 2, 3 };

/* Series i: counter family i % 2 ("b_total", "a_total"), histogram
 * "h_seconds"; label value "v%03d" of MANY - 1 - i (descending). */
static void
many_register(struct shmet_segment *seg, struct shmet_counter *c,
	      struct shmet_histogram *h)
{
	struct shmet_family fb, fa, fh;
	const char *ln[] = { "k" };

	ck_assert_int_eq(shmet_counter_family(seg, &fb, "b_total", "B.", 1, ln),
			 0);
	ck_assert_int_eq(shmet_counter_family(seg, &fa, "a_total", "A.", 1, ln),
			 0);
	ck_assert_int_eq(shmet_histogram_family(seg, &fh, "h_seconds", "H.", 3,
						many_bounds, 1, ln),
			 0);
	for (int i = 0; i < MANY; i++) {
		char val[16];
		const char *v[] = { val };

		snprintf(val, sizeof val, "v%03d", MANY - 1 - i);
		ck_assert_int_eq(shmet_counter_labels(i % 2 ? &fa : &fb, &c[i],
						      1, v),
				 0);
		ck_assert_int_eq(shmet_histogram_labels(&fh, &h[i], 1, v), 0);
	}
}

/* Counter i has exemplar value i + 1 if i % 7 == 3; histogram i one in
 * bucket i % 4 (value bucket + 0.5) if i % 5 == 1, and in bucket 0 too
 * (value 0.25) if i % 15 == 1. */
static void
many_write(const struct shmet_counter *c, const struct shmet_histogram *h)
{
	const char *n[] = { "trace_id" }, *v[] = { "t" };

	for (int i = 0; i < MANY; i++) {
		if (i % 7 == 3)
			ck_assert_int_eq(shmet_counter_add_exemplar(
						 &c[i], i + 1.0, 1, n, v),
					 0);
		if (i % 5 == 1)
			ck_assert_int_eq(shmet_histogram_observe_exemplar(
						 &h[i], i % 4 + 0.5, 1, n, v),
					 0);
		if (i % 15 == 1 && i % 4 != 0)
			ck_assert_int_eq(shmet_histogram_observe_exemplar(
						 &h[i], 0.25, 1, n, v),
					 0);
	}
}

/* Check every series and bucket of the snapshot against many_write
 * (written: 0, before it); skip: the position of a series that must
 * show none (or -1). */
static void
many_check(const struct test_snapshot *s, int written, int skip)
{
	uint32_t shown = 0, want = 0;

	for (uint32_t si = 0; si < shmet_index_series_count(s->index); si++) {
		const struct shmet_index_series *x =
			shmet_index_series(s->index, si);
		const struct shmet_index_family *f =
			shmet_index_family(s->index, x->family);
		int i = MANY - 1 - atoi(x->label_values[0].ptr + 1);
		int hist = f->type == SHMET_TYPE_HISTOGRAM;

		for (uint32_t b = 0; b < (hist ? 4u : 1u); b++) {
			struct shmet_exemplar e;
			double v = -1;

			if (!hist && i % 7 == 3)
				v = i + 1.0;
			if (hist && i % 15 == 1 && b == 0)
				v = 0.25;
			if (hist && i % 5 == 1 && (uint32_t)(i % 4) == b)
				v = b + 0.5;
			if ((int)si == skip || !written)
				v = -1;
			want += v >= 0;
			if (!shmet_values_exemplar(s->values, s->index, si, b,
						   &e)) {
				ck_assert_msg(v < 0, "series %d bucket %u: no "
					      "exemplar, want %g", i, b, v);
				continue;
			}
			shown++;
			ck_assert_msg(v >= 0, "series %d bucket %u: exemplar "
				      "%g, want none", i, b, e.value);
			ck_assert_msg(e.value == v, "series %d bucket %u: %g, "
				      "want %g", i, b, e.value, v);
			ck_assert_uint_eq(e.label_count, 1);
		}
	}
	ck_assert_uint_eq(shown, want);
	/* 34 counters, 48 + 12 histogram buckets; less the skipped one's */
	ck_assert_uint_eq(want, !written ? 0 : skip < 0 ? 94 : 93);
}

/* The test segment mapped read-write (its header in *h). */
static unsigned char *
map_segment(struct shmet_seg_header *h, size_t *len)
{
	int fd = shm_open(test_segment_name, O_RDWR, 0);
	void *p;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, h, sizeof *h, 0), (ssize_t)sizeof *h);
	*len = (size_t)h->total_size;
	p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	ck_assert_ptr_ne(p, MAP_FAILED);
	return p;
}

/* 512-byte blocks the test segment's file holds. */
static long long
segment_blocks(void)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof path, "/dev/shm%s", test_segment_name);
	ck_assert_int_eq(stat(path, &st), 0);
	return (long long)st.st_blocks;
}

START_TEST(test_exemplars_many_series)
{
	struct shmet_segment seg;
	struct shmet_options o = test_options();
	static struct shmet_counter c[MANY];
	static struct shmet_histogram h[MANY];
	struct test_snapshot s;

	struct shmet_seg_header hdr;
	struct shmet_seg_series *rec = NULL;
	unsigned char *base;
	long long blocks;
	size_t len;
	int x = -1, y = -1;

	test_open(&seg, &o);
	many_register(&seg, c, h);
	test_snapshot_take(&s);                 /* none yet */
	many_check(&s, 0, -1);
	test_snapshot_free(&s);
	many_write(c, h);
	test_snapshot_take(&s);
	many_check(&s, 1, -1);
	test_snapshot_free(&s);
	/* the OpenMetrics page shows each once, on its line (the renderer
	 * looks them up in series order, render.c) */
	{
		char *om = page(1), *p = om;
		int shown = 0;

		while ((p = strstr(p, " # {trace_id=\"t\"} "))) {
			const char *bol = p;
			double want;

			while (bol > om && bol[-1] != '\n')
				bol--;
			/* counters: i + 1, buckets: as many_write chose */
			want = strtod(p + strlen(" # {trace_id=\"t\"} "), NULL);
			ck_assert_msg(want > 0, "line: %.80s", bol);
			ck_assert_msg(strncmp(bol, "h_seconds_bucket", 16) == 0 ||
					      strncmp(bol, "a_total", 7) == 0 ||
					      strncmp(bol, "b_total", 7) == 0,
				      "exemplar on %.60s", bol);
			shown++;
			p++;
		}
		ck_assert_int_eq(shown, 94);
		free(om);
	}

	/* A hostile map: every page's bit set, most of them holes.  The
	 * scrape reads none of them (the file gains no block) and shows the
	 * same exemplars. */
	base = map_segment(&hdr, &len);
	for (uint64_t w = 0;
	     w < shmet_seg_exemplar_map_words(hdr.cells_per_block); w++)
		((_Atomic uint64_t *)(void *)(base + hdr.exemplar_map_off))[w] =
			~UINT64_C(0);
	blocks = segment_blocks();
	test_snapshot_take(&s);
	many_check(&s, 1, -1);
	ck_assert_int_eq(segment_blocks(), blocks);

	/* Overlapping series (a hostile or torn segment): histogram y's
	 * record moved onto histogram x's cells.  The scrape looks at
	 * every series then; x's exemplars stay x's, y shows none. */
	for (uint32_t si = 0; si < shmet_index_series_count(s.index); si++) {
		const struct shmet_index_series *xs =
			shmet_index_series(s.index, si);
		int i = MANY - 1 - atoi(xs->label_values[0].ptr + 1);

		if (shmet_index_family(s.index, xs->family)->type !=
		    SHMET_TYPE_HISTOGRAM)
			continue;
		if (i == 16)
			x = (int)si;            /* buckets 0 and 0 */
		if (i == 6) {
			y = (int)si;            /* bucket 2 */
			rec = (struct shmet_seg_series *)(void *)(
				base + hdr.series_off +
				(uint64_t)xs->record * sizeof *rec);
		}
	}
	ck_assert_int_ge(x, 0);
	ck_assert_int_ge(y, 0);
	ck_assert_ptr_nonnull(rec);
	rec->first_cell = shmet_index_series(s.index, (uint32_t)x)->first_cell;
	test_snapshot_free(&s);
	test_snapshot_take(&s);
	many_check(&s, 1, y);
	ck_assert_int_eq(segment_blocks(), blocks);
	test_snapshot_free(&s);
	munmap(base, len);
	shmet_close(&seg);
}
END_TEST

/* The slot of the test segment's first counter, mapped read-write. */
static struct shmet_seg_exemplar *
map_slot(size_t *len, void **base, uint32_t slot)
{
	int fd = shm_open(test_segment_name, O_RDWR, 0);
	struct shmet_seg_header h;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
	*len = (size_t)h.total_size;
	*base = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	ck_assert_ptr_ne(*base, MAP_FAILED);
	return (struct shmet_seg_exemplar *)((unsigned char *)*base +
					     h.exemplars_off +
					     (uint64_t)slot *
						     SHMET_EXEMPLAR_SIZE);
}

static uint32_t
first_cell_of_first_series(void)
{
	struct test_snapshot s;
	uint32_t cell;

	test_snapshot_take(&s);
	ck_assert_uint_ge(shmet_index_series_count(s.index), 1);
	cell = shmet_index_series(s.index, 0)->first_cell;
	test_snapshot_free(&s);
	return cell;
}

/* What a reader must refuse: an odd lock, a wrong checksum, another
 * record's slot; and a writer takes over a lock left odd long ago. */
START_TEST(test_exemplar_slot_checks)
{
	struct shmet_segment seg;
	struct shmet_options o = test_options();
	struct shmet_counter c;
	struct shmet_seg_exemplar *x;
	const char *n[] = { "trace_id" }, *v[] = { "t1" };
	uint32_t seq;
	size_t len;
	void *base;
	char *om;

	test_open(&seg, &o);
	ck_assert_int_eq(shmet_counter_new(&seg, &c, "s_total", "S."), 0);
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 1, n, v), 0);
	x = map_slot(&len, &base, first_cell_of_first_series());
	seq = atomic_load(&x->seq);
	ck_assert_uint_eq(seq % 2, 0);
	om = page(1);
	ck_assert_ptr_nonnull(strstr(om, "trace_id=\"t1\""));
	free(om);
	/* a writer inside: not shown */
	atomic_store(&x->seq, seq + 1);
	om = page(1);
	ck_assert_ptr_null(strstr(om, "trace_id"));
	free(om);
	/* ... a live one: the next write is dropped, theirs kept */
	atomic_store(&x->busy_ns, shmet_now_ns());
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 1, n, v), -EBUSY);
	/* ... one that died in it long ago: taken over */
	atomic_store(&x->busy_ns, shmet_now_ns() - 2 * SHMET_REUSE_NS);
	ck_assert_int_eq(shmet_counter_inc_exemplar(&c, 1, n, v), 0);
	ck_assert_uint_eq(atomic_load(&x->seq), seq + 4);
	om = page(1);
	ck_assert_ptr_nonnull(strstr(om, "trace_id=\"t1\""));
	free(om);
	/* a word changed behind the checksum */
	atomic_store(&x->value, atomic_load(&x->value) ^ 1);
	om = page(1);
	ck_assert_ptr_null(strstr(om, "trace_id"));
	free(om);
	atomic_store(&x->value, atomic_load(&x->value) ^ 1);
	/* another record's */
	atomic_store(&x->series, atomic_load(&x->series) + 1);
	om = page(1);
	ck_assert_ptr_null(strstr(om, "trace_id"));
	free(om);
	munmap(base, len);
	shmet_close(&seg);
}
END_TEST

TEST_SUITE(exemplar)
{
	Suite *s = suite_create("exemplar");
	TCase *tc = tcase_create("exemplar");

	tcase_add_checked_fixture(tc, test_segment_setup,
				  test_segment_teardown);
	tcase_add_test(tc, test_counter_exemplar_om_only);
	tcase_add_test(tc, test_histogram_bucket_exemplars);
	tcase_add_test(tc, test_exemplar_across_processes);
	tcase_add_test(tc, test_exemplar_validation);
	tcase_add_test(tc, test_exemplar_removed_series);
	tcase_add_test(tc, test_exemplar_slot_checks);
	tcase_add_test(tc, test_exemplars_many_series);
	suite_add_tcase(s, tc);
	return s;
}
