/*
 * The series lifecycle's steps killed one by one (anchor: kill-points.c):
 * removal (writer/remove.c), reuse of a removed record when the segment is
 * full (reuse.c) and idle expiry (expire.c).  Needs a build with test
 * points (exit 77 without).
 *
 * The victim, on a segment of two series with a TTL of one second (reuse
 * after 0 ms: SHMETRICS_TEST_REUSE_MS): creates a (3) and b (4), removes a,
 * creates c in a's record (5), sweeps, waits out the TTL, counts c once
 * more and sweeps again, which expires b.  It reports each step that
 * returned on a pipe.  A traced run lists the points it reaches; then one
 * run is killed (SIGKILL) at each.  After each, from outside:
 *   - each series shown holds exactly what was reported for it; a series
 *     whose removal or expiry was cut short is shown whole or not at all;
 *   - the family's count is the series shown, once a later writer took its
 *     gate (journal recovered);
 *   - no capacity leaked: the later writer clears the family and creates
 *     two series, which must both get a record (no record stays claimed),
 *     and counts each exactly.
 * Prints the number of runs.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmetrics.h>

#include "raw.h"
#include "snapshot.h"
#include "victim.h"

#define MAX_POINTS 128

static char segname[64];
static int failures, runs;
static const char *const k_names[] = { "k" };

static int
victim(void)
{
	struct shmet_options o = { .name = segname, .max_series = 2,
				   .series_ttl_s = 1 };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter a, b, c;

	if (shmet_open(&seg, &o) != 0 ||
	    shmet_counter_family(&seg, &f, "lp_total", "l", 1, k_names) != 0 ||
	    shmet_counter_labels(&f, &a, SHMET_VALUES("a")) != 0 ||
	    shmet_counter_labels(&f, &b, SHMET_VALUES("b")) != 0)
		return 3;
	shmet_counter_add(&a, 3);
	victim_report("I a 3\n");
	shmet_counter_add(&b, 4);
	victim_report("I b 4\n");
	victim_report("r a\n");
	if (shmet_family_remove(&f, SHMET_VALUES("a")) == 0)
		victim_report("R a\n");
	if (shmet_counter_labels(&f, &c, SHMET_VALUES("c")) != 0)
		return 4;
	shmet_counter_add(&c, 5);
	victim_report("I c 5\n");
	if (shmet_expire(&seg) != 0)
		return 5;
	usleep(1100 * 1000);
	shmet_counter_inc(&c);
	victim_report("I c 1\n");
	victim_report("r b\n");
	if (shmet_expire(&seg) == 1)
		victim_report("R b\n");
	shmet_close(&seg);
	return 0;
}

static int
has(const char *rep, const char *line)
{
	char want[32];

	snprintf(want, sizeof want, "%s\n", line);
	return strstr(rep, want) != NULL;
}

/* What was reported counted into series k. */
static uint64_t
reported(const char *rep, char k)
{
	uint64_t sum = 0;

	for (const char *p = rep; (p = strstr(p, "I ")); p++)
		if ((p == rep || p[-1] == '\n') && p[2] == k)
			sum += strtoull(p + 4, NULL, 10);
	return sum;
}

/* The later writer: clear, then two new series counted once each. */
static int
later_writer(void)
{
	struct shmet_options o = { .name = segname,
				   .flags = SHMET_OPEN_NO_CREATE };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter z;

	if (shmet_open(&seg, &o) != 0 ||
	    shmet_counter_family(&seg, &f, "lp_total", "l", 1, k_names) != 0 ||
	    shmet_family_clear(&f) != 0)
		return 3;
	if (shmet_counter_labels(&f, &z, SHMET_VALUES("y")) != 0)
		return 4;
	shmet_counter_inc(&z);
	if (shmet_counter_labels(&f, &z, SHMET_VALUES("z")) != 0)
		return 5;
	shmet_counter_inc(&z);
	shmet_close(&seg);
	return 0;
}

/* Series of lp_total with label value v in s, or -1. */
static int
find(const struct snapshot *s, const char *v)
{
	const struct shmet_index_family *f =
		shmet_index_find(s->index, "lp_total");

	for (uint32_t i = 0; f && i < f->series_count; i++) {
		const struct shmet_index_series *se =
			shmet_index_series(s->index, f->first_series + i);

		if (se->label_values[0].len == strlen(v) &&
		    !memcmp(se->label_values[0].ptr, v, strlen(v)))
			return (int)(f->first_series + i);
	}
	return -1;
}

static uint64_t
counted(const struct snapshot *s, int at)
{
	return shmet_values_counter_int(s->values, s->index, (uint32_t)at);
}

static uint32_t
shown(const struct snapshot *s)
{
	const struct shmet_index_family *f =
		shmet_index_find(s->index, "lp_total");

	return f ? f->series_count : 0;
}

static void
check(const char *ctx, const char *rep)
{
	struct snapshot s;
	struct raw_family raw;

	/* before the later writer: what the victim's steps left */
	snapshot_take(segname, &s);
	{
		for (const char *k = "abc"; *k; k++) {
			char key[2] = { *k, 0 }, rm[8], cut[8];
			int at = find(&s, key);
			uint64_t got = at < 0 ? 0 : counted(&s, at);
			uint64_t want = reported(rep, *k);

			snprintf(rm, sizeof rm, "R %c", *k);
			snprintf(cut, sizeof cut, "r %c", *k);
			if (has(rep, rm)) {
				if (at >= 0) {
					fprintf(stderr, "FAIL %s: %c removed "
						"but shown\n", ctx, *k);
					failures++;
				}
			} else if (at >= 0 && got != want) {
				fprintf(stderr, "FAIL %s: %c = %llu, reported "
					"%llu\n", ctx, *k,
					(unsigned long long)got,
					(unsigned long long)want);
				failures++;
			} else if (at < 0 && want && !has(rep, cut)) {
				fprintf(stderr, "FAIL %s: %c reported but "
					"not shown\n", ctx, *k);
				failures++;
			}
		}
		snapshot_free(&s);
	}
	if (victim_later_writer(later_writer, ctx)) {
		failures++;
		return;
	}
	raw = raw_family(segname, "lp_total");
	snapshot_take(segname, &s);
	{
		int y = find(&s, "y"), z = find(&s, "z");

		if (y < 0 || z < 0 || counted(&s, y) != 1 ||
		    counted(&s, z) != 1 || shown(&s) != 2) {
			fprintf(stderr, "FAIL %s: after the later writer, "
				"y and z are not the two series, 1 each\n",
				ctx);
			failures++;
		}
		snapshot_free(&s);
	}
	if (raw.series_count != 2 || raw.pending ||
	    raw_series_in(segname, SHMET_SERIES_CLAIMED) != 0) {
		fprintf(stderr, "FAIL %s: count %u, journal %d, %u records "
			"claimed\n", ctx, raw.series_count, raw.pending,
			raw_series_in(segname, SHMET_SERIES_CLAIMED));
		failures++;
	}
}

int
main(void)
{
	static const char *const prefixes[] = { "remove.", "reuse.",
						"expire.", "series.", NULL };
	struct victim_point pts[MAX_POINTS];
	int skip[MAX_POINTS];
	char rep[4096];
	unsigned npts = 0;
	int fd;

	/* victims and later writers reuse a removed record at once */
	setenv("SHMETRICS_TEST_REUSE_MS", "0", 1);
	snprintf(segname, sizeof segname, "/shmet-lifecycle-%d",
		 (int)getpid());
	shmet_unlink(segname);
	fd = victim_traced(victim, rep, sizeof rep, &failures);
	if (!strstr(rep, "R b\n")) {
		fprintf(stderr, "the traced victim did not expire b:\n%s", rep);
		return strstr(rep, "I a") ? 1 : 77;
	}
	/* the lifecycle's steps (and the creations that reuse);
	 * kill-points.c covers the rest of the writer */
	npts = victim_points(fd, prefixes, pts, MAX_POINTS);
	close(fd);
	/* a's and b's creations are fresh records: a kill between a record's
	 * allocation and its journal leaks that one record, as
	 * writer/gate.c says (kill-points.c runs them); c's creation reuses
	 * a's record, and is tested here */
	for (unsigned i = 0; i < npts; i++)
		skip[i] = !strcmp(pts[i].name, "series.built") &&
			  pts[i].nth < 3;
	if (npts == 0) {
		fprintf(stderr, "no test points: a build without them\n");
		return 77;
	}
	shmet_unlink(segname);
	for (unsigned i = 0; i < npts; i++) {
		char ctx[128];

		if (skip[i])
			continue;
		snprintf(ctx, sizeof ctx, "killed at %.47s #%u", pts[i].name,
			 pts[i].nth);
		victim_run(victim, pts[i].name, "kill", pts[i].nth, -1, rep,
			   sizeof rep);
		check(ctx, rep);
		shmet_unlink(segname);
		runs++;
	}
	printf("lifecycle-points: %u points killed, %d runs, %d invariant "
	       "violations\n", npts, runs, failures);
	return failures ? 1 : 0;
}
