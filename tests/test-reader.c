/*
 * The reader against good, corrupted and foreign segments.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reader-private.h"
#include "test-common.h"

static const char *const two_labels[] = { "campaign_id", "user_id" };

/* A small real segment with a few families, copied into memory. */
static unsigned char *
make_image(size_t *size)
{
	struct shmet_options o = test_options();
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;
	struct shmet_gauge g;
	struct shmet_histogram h;
	double b[] = { 0.1, 1, 10 };
	unsigned char *img;

	o.max_writers = 4;
	o.cells_per_block = 1024;
	o.cpu_blocks = 2;       /* below SHMET_MAX_CPU_BLOCKS: see header_breaks */
	o.max_series = 256;
	test_open(&seg, &o);
	shmet_counter_family(&seg, &f, "a_total", "A", 2, two_labels);
	shmet_counter_labels(&f, &c, SHMET_VALUES("c1", "u1"));
	shmet_counter_add(&c, 3);
	shmet_counter_labels(&f, &c, SHMET_VALUES("c0", "u1"));
	shmet_counter_add(&c, 4);
	shmet_gauge_new(&seg, &g, "b_gauge", "B", 0);
	shmet_gauge_set(&g, 2.5);
	shmet_histogram_new(&seg, &h, "c_seconds", "C", 3, b);
	shmet_histogram_observe(&h, 0.5);
	/* The whole file: the writer maps only the metadata and its block. */
	*size = (size_t)seg.hdr->total_size;
	img = malloc(*size);
	ck_assert_int_eq(pread(seg.fd, img, *size, 0), (ssize_t)*size);
	shmet_close(&seg);
	return img;
}

static int
open_image(unsigned char *img, size_t size, char *err)
{
	struct shmet_reader *r;
	int rc = shmet_reader_open_memory(img, size, &r, err, 256);

	if (rc == 0)
		shmet_reader_close(r);
	return rc;
}

static double
gauge_of(const struct shmet_values *v, uint32_t series)
{
	double g;

	ck_assert_int_eq(shmet_values_gauge(v, series, &g), 1);
	return g;
}

START_TEST(test_reader_open_missing)
{
	struct shmet_reader *r;
	char err[256];

	ck_assert_int_eq(shmet_reader_open(test_segment_name, &r, err,
					   sizeof err), -ENOENT);
	ck_assert_ptr_null(r);
	ck_assert_ptr_nonnull(strstr(err, "cannot open segment"));
}
END_TEST

START_TEST(test_reader_reads_good_image)
{
	size_t size;
	unsigned char *img = make_image(&size);
	struct shmet_reader *r;
	struct shmet_index *idx;
	struct shmet_values *v = shmet_values_new();
	const struct shmet_index_family *f;
	char err[256];
	ck_assert_int_eq(shmet_reader_open_memory(img, size, &r, err,
						  sizeof err), 0);
	ck_assert_int_eq(shmet_index_build(r, &idx, err, sizeof err), 0);
	ck_assert_uint_eq(shmet_index_family_count(idx), 3);
	/* Sorted: families by name, series by label values. */
	ck_assert_str_eq(shmet_index_family(idx, 0)->name.ptr, "a_total");
	ck_assert_str_eq(shmet_index_family(idx, 2)->name.ptr, "c_seconds");
	f = shmet_index_family(idx, 0);
	ck_assert_uint_eq(f->series_count, 2);
	ck_assert_str_eq(shmet_index_series(idx, 0)->label_values[0].ptr, "c0");
	ck_assert_str_eq(f->label_names[1].ptr, "user_id");
	ck_assert_int_eq(shmet_values_collect(r, idx, v), 0);
	ck_assert_double_eq(shmet_values_counter(v, idx, 0), 4);
	ck_assert_double_eq(shmet_values_counter(v, idx, 1), 3);
	ck_assert_double_eq(gauge_of(v, 2), 2.5);
	ck_assert_uint_eq(shmet_values_hist_count(v, idx, 3), 1);
	ck_assert_uint_eq(shmet_values_bucket(v, idx, 3, 1), 1);
	ck_assert_ptr_null(shmet_index_find(idx, "zzz"));
	ck_assert_ptr_eq(shmet_index_find(idx, "b_gauge"),
			 shmet_index_family(idx, 1));
	shmet_values_free(v);
	shmet_index_free(idx);
	shmet_reader_close(r);
	free(img);
}
END_TEST

/*
 * Layout 4 (layout.h, "Fallback cells"): a writer block's counter and
 * histogram cells are summed only when its slot says counts_here, and
 * the fallback block when the header says fallback_counts; otherwise
 * only the writer block's gauge cells are read.  Counts are planted in
 * the image, the flags set either way: the scrape follows the flags.
 */
START_TEST(test_reader_reads_counts_where_flagged)
{
	size_t size;
	unsigned char *img = make_image(&size);
	struct shmet_seg_header *h = (struct shmet_seg_header *)(void *)img;
	struct shmet_seg_writer *w =
		(struct shmet_seg_writer *)(void *)(img + h->writers_off);
	struct shmet_reader *r;
	struct shmet_index *idx;
	struct shmet_values *v = shmet_values_new();
	uint64_t *block0, *fallback, in_cpus;
	uint32_t c;
	char err[256];

	ck_assert_int_eq(shmet_reader_open_memory(img, size, &r, err,
						  sizeof err), 0);
	ck_assert_int_eq(shmet_index_build(r, &idx, err, sizeof err), 0);
	c = shmet_index_series(idx, 0)->first_cell;     /* a_total{c0}: 4 */
	block0 = (uint64_t *)(void *)(img + h->values_off);
	fallback = (uint64_t *)(void *)(img + h->values_off +
					(uint64_t)h->max_writers *
						h->block_stride);
	/* the writer's 4, wherever it counted (CPU blocks with rseq; a
	 * fallback cell without, or for an aborted section) */
	atomic_store(&w[0].counts_here, 1);
	atomic_store(&h->fallback_counts, 1);
	ck_assert_int_eq(shmet_values_collect(r, idx, v), 0);
	ck_assert_uint_eq(shmet_values_counter_int(v, idx, 0), 4);
	in_cpus = 4 - block0[c] - fallback[c];
	block0[c] += 1000;
	fallback[c] += 20000;
	for (int flags = 0; flags < 4; flags++) {
		atomic_store(&w[0].counts_here, (uint32_t)(flags & 1));
		atomic_store(&h->fallback_counts, (uint32_t)(flags >> 1));
		ck_assert_int_eq(shmet_values_collect(r, idx, v), 0);
		ck_assert_uint_eq(shmet_values_counter_int(v, idx, 0),
				  in_cpus + ((flags & 1) ? block0[c] : 0) +
					  ((flags & 2) ? fallback[c] : 0));
		/* the gauge of block 0 is read either way */
		ck_assert_double_eq(gauge_of(v, 2), 2.5);
	}
	shmet_values_free(v);
	shmet_index_free(idx);
	shmet_reader_close(r);
	free(img);
}
END_TEST

/* Break one header field; the error must name the problem. */
struct header_break {
	size_t offset;
	size_t width;
	uint64_t value;
	int rc;
	const char *msg;
};

#define HB(field, v, rc, msg)                                                 \
	{ offsetof(struct shmet_seg_header, field),                           \
	  sizeof(((struct shmet_seg_header *)0)->field), (v), (rc), (msg) }

static const struct header_break header_breaks[] = {
	HB(magic, 0x1234, -EPROTO, "bad magic"),
	HB(layout_version, 1, -EPROTONOSUPPORT, "layout version 1"),
	HB(header_size, 512, -EPROTO, "header size 512"),
	HB(init_state, 0, -EAGAIN, "not initialised"),
	HB(total_size, 12345, -EPROTO, "header says 12345 bytes"),
	HB(max_families, 0, -EPROTO, "capacities out of range"),
	HB(max_series, 1u << 30, -EPROTO, "capacities out of range"),
	HB(max_writers, 3, -EPROTO, "families_off"),
	HB(cells_per_block, 2048, -EPROTO, "block_stride"),
	HB(string_bytes, 1u << 16, -EPROTO, "exemplar_map_off"),
	HB(family_index_slots, 8, -EPROTO, "family_index_slots"),
	HB(series_index_slots, 1u << 20, -EPROTO, "series_index_slots"),
	HB(writers_off, 0, -EPROTO, "writers_off"),
	HB(families_off, 1, -EPROTO, "families_off"),
	HB(family_index_off, 1u << 31, -EPROTO, "family_index_off"),
	HB(series_off, 7, -EPROTO, "series_off"),
	HB(series_index_off, 0, -EPROTO, "series_index_off"),
	HB(strings_off, UINT64_MAX, -EPROTO, "strings_off"),
	HB(values_off, 4096, -EPROTO, "values_off"),
	HB(block_stride, 1, -EPROTO, "block_stride"),
	HB(cpu_blocks, 0, -EPROTO, "capacities out of range"),
	HB(cpu_blocks, SHMET_MAX_CPU_BLOCKS + 1, -EPROTO,
	   "capacities out of range"),
	/* more CPU blocks than the file holds: the exemplar region (after
	 * them) moves, and the size no longer adds up */
	HB(cpu_blocks, SHMET_MAX_CPU_BLOCKS, -EPROTO, "exemplars_off"),
	HB(cpu_off, 4096, -EPROTO, "cpu_off"),
	/* layout 6: the exemplar map and region are geometry too */
	HB(exemplar_map_off, 4096, -EPROTO, "exemplar_map_off"),
	HB(exemplars_off, 0, -EPROTO, "exemplars_off"),
	HB(exemplars_off, UINT64_MAX, -EPROTO, "exemplars_off"),
	HB(max_series_per_family, 0, -EPROTO, "max_series_per_family"),
};

START_TEST(test_reader_each_header_field)
{
	const struct header_break *hb = &header_breaks[_i];
	size_t size;
	unsigned char *img = make_image(&size);
	char err[256] = "";

	memcpy(img + hb->offset, &hb->value, hb->width);
	ck_assert_int_eq(open_image(img, size, err), hb->rc);
	ck_assert_msg(strstr(err, hb->msg), "error '%s' lacks '%s'", err,
		      hb->msg);
	free(img);
}
END_TEST

START_TEST(test_reader_truncated)
{
	size_t size;
	unsigned char *img = make_image(&size);
	char err[256];

	ck_assert_int_eq(open_image(img, 100, err), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "smaller than a segment header"));
	ck_assert_int_eq(open_image(img, size - 4096, err), -EPROTO);
	ck_assert_ptr_nonnull(strstr(err, "header says"));
	free(img);
}
END_TEST

static struct shmet_seg_family *
image_family(unsigned char *img, uint32_t id)
{
	const struct shmet_seg_header *h = (void *)img;

	return (struct shmet_seg_family *)(img + h->families_off) + id;
}

static struct shmet_seg_series *
image_series(unsigned char *img, uint32_t id)
{
	const struct shmet_seg_header *h = (void *)img;

	return (struct shmet_seg_series *)(img + h->series_off) + id;
}

/* Corrupt records are left out and counted; the rest stays readable. */
static void
expect_skips(unsigned char *img, size_t size, uint32_t families,
	     uint32_t skipped_families, uint32_t skipped_series)
{
	struct shmet_reader *r;
	struct shmet_index *idx;
	struct shmet_values *v = shmet_values_new();
	char err[256];
	ck_assert_int_eq(shmet_reader_open_memory(img, size, &r, err,
						  sizeof err), 0);
	ck_assert_int_eq(shmet_index_build(r, &idx, err, sizeof err), 0);
	ck_assert_uint_eq(shmet_index_family_count(idx), families);
	ck_assert_uint_eq(idx->skipped_families, skipped_families);
	ck_assert_uint_eq(idx->skipped_series, skipped_series);
	ck_assert_int_eq(shmet_values_collect(r, idx, v), 0);
	shmet_values_free(v);
	shmet_index_free(idx);
	shmet_reader_close(r);
}

START_TEST(test_reader_corrupt_family_records)
{
	size_t size;
	unsigned char *img;

	/* family 0 is a_total with two series */
	img = make_image(&size);
	image_family(img, 0)->type = 9;
	expect_skips(img, size, 2, 1, 2);
	free(img);
	img = make_image(&size);
	image_family(img, 0)->name.off = 0xfffffff0;
	expect_skips(img, size, 2, 1, 2);
	free(img);
	img = make_image(&size);
	image_family(img, 0)->label_names.len += 1;
	expect_skips(img, size, 2, 1, 2);
	free(img);
	img = make_image(&size);
	image_family(img, 2)->bound_count = 200;
	expect_skips(img, size, 2, 1, 1);
	free(img);
	img = make_image(&size);
	image_family(img, 1)->gauge_mode = 0;
	expect_skips(img, size, 2, 1, 1);
	free(img);
	img = make_image(&size);
	image_family(img, 0)->cells_per_series = 7;
	expect_skips(img, size, 2, 1, 2);
	free(img);
}
END_TEST

START_TEST(test_reader_corrupt_series_records)
{
	size_t size;
	unsigned char *img;

	img = make_image(&size);
	image_series(img, 0)->family = 1000000;
	expect_skips(img, size, 3, 0, 1);
	free(img);
	img = make_image(&size);
	image_series(img, 0)->first_cell = UINT32_MAX - 1;
	expect_skips(img, size, 3, 0, 1);
	free(img);
	img = make_image(&size);
	image_series(img, 0)->labels.len = 3;
	expect_skips(img, size, 3, 0, 1);
	free(img);
	img = make_image(&size);
	/* Both a_total series point at the same label values. */
	image_series(img, 1)->labels = image_series(img, 0)->labels;
	expect_skips(img, size, 3, 0, 1);
	free(img);
}
END_TEST

/* The permissions of the mapping that contains addr, from /proc. */
static void
mapping_perms(const void *addr, char perms[5])
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	uintptr_t a = (uintptr_t)addr;

	ck_assert_ptr_nonnull(f);
	perms[0] = '\0';
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char p[5];

		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3 && a >= lo &&
		    a < hi) {
			memcpy(perms, p, 5);
			break;
		}
	}
	fclose(f);
}

/* Overwrite the first occurrence of `from` in the string pool. */
static void
patch_pool(struct shmet_segment *seg, const char *from, const char *to)
{
	unsigned char *pool = seg->base + seg->hdr->strings_off;
	size_t n = strlen(from);

	for (uint32_t i = 0; i + n <= seg->hdr->string_bytes; i++) {
		if (memcmp(pool + i, from, n) == 0) {
			memcpy(pool + i, to, n);
			return;
		}
	}
	ck_abort_msg("%s not in the pool", from);
}

static const char *
health_status(struct test_snapshot *s)
{
	static char out[16];
	struct shmet_buf b = { 0 };
	struct shmet_reader_info in;

	shmet_reader_info(s->reader, &in);
	shmet_render_health(s->index, &in, &b);
	snprintf(out, sizeof out, "%s",
		 strstr(b.data, "\"degraded\"") ? "degraded" : "healthy");
	shmet_buf_free(&b);
	return out;
}

/*
 * Records that would break a page (a histogram label renamed le, a label
 * twice, two families exposing one name) are left out, counted, and turn
 * health degraded, even though they pass every other check.
 */
START_TEST(test_reader_refuses_page_breaking_records)
{
	static const char *const lz[] = { "zz" };
	static const char *const ab[] = { "aq", "ar" };
	static const double b[] = { 1 };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;
	struct shmet_gauge g;
	struct test_snapshot s;

	test_open(&seg, NULL);
	shmet_counter_new(&seg, &c, "ok_total", "ok");
	shmet_histogram_family(&seg, &f, "hq_seconds", "h", 1, b, 1, lz);
	shmet_counter_family(&seg, &f, "dq_total", "d", 2, ab);
	shmet_counter_new(&seg, &c, "xq_total", "x");
	shmet_gauge_new(&seg, &g, "xq_createz", "w", 0);
	shmet_gauge_set(&g, 1);
	test_snapshot_take(&s);
	ck_assert_uint_eq(shmet_index_family_count(s.index), 5);
	ck_assert_str_eq(health_status(&s), "healthy");
	test_snapshot_free(&s);

	patch_pool(&seg, "zz", "le");           /* reserved on histograms */
	patch_pool(&seg, "ar", "aq");           /* a label twice */
	patch_pool(&seg, "xq_createz", "xq_created"); /* xq_total's sample */
	test_snapshot_take(&s);
	ck_assert_uint_eq(shmet_index_family_count(s.index), 2);
	ck_assert_ptr_nonnull(shmet_index_find(s.index, "ok_total"));
	ck_assert_ptr_nonnull(shmet_index_find(s.index, "xq_total"));
	ck_assert_str_eq(health_status(&s), "degraded");
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_reader_mapping_is_read_only)
{
	struct shmet_segment seg;
	struct shmet_reader *r;
	char err[256], perms[5];

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_reader_open(test_segment_name, &r, err,
					   sizeof err), 0);
	/* The exporter cannot write the segment: no write permission on
	 * the mapping and a read-only descriptor. */
	mapping_perms(r->base, perms);
	ck_assert_str_eq(perms, "r--s");
	mapping_perms(r->base + r->size - 1, perms);
	ck_assert_str_eq(perms, "r--s");
	ck_assert_int_eq(fcntl(r->fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	mapping_perms(seg.base, perms);
	ck_assert_str_eq(perms, "rw-s");
	shmet_reader_close(r);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_reader_sees_growth)
{
	struct shmet_segment seg;
	struct shmet_reader *r;
	struct shmet_counter c;
	struct shmet_index *idx;
	char err[256];
	uint64_t gen;

	test_open(&seg, NULL);
	ck_assert_int_eq(shmet_reader_open(test_segment_name, &r, err,
					   sizeof err), 0);
	gen = shmet_reader_generation(r);
	shmet_counter_new(&seg, &c, "late_total", "l");
	ck_assert_uint_gt(shmet_reader_generation(r), gen);
	ck_assert_int_eq(shmet_index_build(r, &idx, err, sizeof err), 0);
	ck_assert_ptr_nonnull(shmet_index_find(idx, "late_total"));
	shmet_index_free(idx);
	shmet_reader_close(r);
	shmet_close(&seg);
}
END_TEST

TEST_SUITE(reader)
{
	Suite *s = suite_create("reader");
	TCase *tc;

	tc = tcase_create("Validation");
	tcase_add_checked_fixture(tc, test_segment_setup, test_segment_teardown);
	tcase_add_test(tc, test_reader_open_missing);
	tcase_add_test(tc, test_reader_reads_good_image);
	tcase_add_loop_test(tc, test_reader_each_header_field, 0,
			    sizeof header_breaks / sizeof header_breaks[0]);
	tcase_add_test(tc, test_reader_truncated);
	tcase_add_test(tc, test_reader_reads_counts_where_flagged);
	tcase_add_test(tc, test_reader_corrupt_family_records);
	tcase_add_test(tc, test_reader_corrupt_series_records);
	tcase_add_test(tc, test_reader_sees_growth);
	tcase_add_test(tc, test_reader_mapping_is_read_only);
	tcase_add_test(tc, test_reader_refuses_page_breaking_records);
	suite_add_tcase(s, tc);
	return s;
}
