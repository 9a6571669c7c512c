/*
 * Shared test scaffolding: every tests/test-<area>.c ends in
 * TEST_SUITE(area) { ... } which registers the suite in a linker section
 * that test-main.c walks (as libevdev's test-common.h does).
 */
#ifndef SHMETRICS_TEST_COMMON_H
#define SHMETRICS_TEST_COMMON_H

#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <stdint.h>
#include <sys/types.h>

#include <shmetrics.h>

#include "shmetrics-reader.h"

struct test_suite {
	const char *name;
	Suite *(*setup)(void);
};

#define TEST_SUITE(name_)                                                     \
	static Suite *suite_##name_(void);                                    \
	static const struct test_suite test_suite_##name_                     \
		__attribute__((used, section("test_suite_section"))) = {      \
		.name = #name_,                                               \
		.setup = suite_##name_,                                       \
	};                                                                    \
	static Suite *suite_##name_(void)

/* Multiply stress iteration counts (meson -Dstress_scale=N). */
#ifndef STRESS_SCALE
#define STRESS_SCALE 1
#endif

/* A unique segment name for this test; unlinked by test_segment_teardown. */
extern char test_segment_name[64];
void test_segment_setup(void);
void test_segment_teardown(void);

/* Options for test_segment_name with small capacities unless given. */
struct shmet_options test_options(void);

/* Open test_segment_name as a writer, asserting success. */
void test_open(struct shmet_segment *seg, const struct shmet_options *opts);

/* Read back through lib/: a full snapshot of test_segment_name. */
struct test_snapshot {
	struct shmet_reader *reader;
	struct shmet_index *index;
	struct shmet_values *values;
};
void test_snapshot_take(struct test_snapshot *s);
void test_snapshot_free(struct test_snapshot *s);
/* A gauge series' value (0 if no writer holds it) and whether one does. */
double test_gauge(const struct test_snapshot *s, uint32_t series);
int test_gauge_set(const struct test_snapshot *s, uint32_t series);
/* Sorted series position of family `name` with these values, or -1. */
int test_find_series(const struct test_snapshot *s, const char *name,
		     uint32_t n, const char *const *values);
/* The same in one family record (a version of a name) only. */
int test_find_in_family(const struct test_snapshot *s,
			const struct shmet_index_family *f, uint32_t n,
			const char *const *values);
double test_counter(const char *name, uint32_t n, const char *const *values);
/* A series of name with these values is on the page (any version). */
int test_shown(const char *name, uint32_t n, const char *const *values);
/* Series the newest version of family name shows. */
uint32_t test_series_shown(const char *name);
uint64_t test_hist_count(const char *name, uint32_t n,
			 const char *const *values);

/* fork() n children running fn(i, arg); wait for all, assert exit 0. */
void test_fork_all(int n, void (*fn)(int i, void *arg), void *arg);
/* The same, all children released at one instant (a race start). */
void test_fork_all_at_once(int n, void (*fn)(int i, void *arg), void *arg);

#endif
