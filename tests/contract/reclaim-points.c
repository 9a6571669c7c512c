/*
 * Reclaiming a family record and rebuilding it for another registration,
 * killed at each step (writer/reclaim.c, writer/register.c; the harness
 * of kill-points.c and lifecycle-points.c).  Needs a build with test
 * points (exit 77 without).
 *
 * Before each run a setup process makes a segment of 4 family records:
 * kp_keep_total{k="x"} counted 7, and kp_old_total, whose one series it
 * counted and cleared; it exits, so kp_old_total has no series and no
 * registrant.  The victim sweeps (shmet_expire: kp_old_total is
 * reclaimed), then registers kp_new_total, whose strings fit the freed
 * record's (it takes it), and counts 5 in z; then kp_fresh_total, a new
 * record from the cursor, built the same way, and counts 4 in f.  It
 * reports each step that
 * returned on a pipe.  A traced run lists the reclaim's and the
 * registration's points; then one run is killed (SIGKILL) at each.  After
 * each, from outside:
 *   - kp_keep_total x is 7; kp_new_total, if shown, holds what was
 *     reported; kp_old_total shows no series; every record shown is whole
 *     (the reader skipped none: one family per name, each valid);
 *   - a later writer sweeps (the gates' recovery finishes any journal),
 *     registers kp_new_total, kp_fresh_total and kp_more_total and counts
 *     1 in each: each must get a record of the four (nothing leaked, no
 *     record left free), and then no record
 *     is left RECLAIMING, CLAIMED or half rebuilt, kp_old_total is gone
 *     and every count is exact.
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

#define MAX_POINTS 64

static char segname[64];
static int failures, runs;
static const char *const k_names[] = { "k" };

static int
open_seg(struct shmet_segment *seg)
{
	struct shmet_options o = { .name = segname, .max_families = 4,
				   .string_bytes = 4096, .max_series = 16 };

	return shmet_open(seg, &o);
}

static int
setup(void)
{
	struct shmet_segment seg;
	struct shmet_family keep, old;
	struct shmet_counter c;

	if (open_seg(&seg) != 0 ||
	    shmet_counter_family(&seg, &keep, "kp_keep_total", "kept", 1,
				 k_names) != 0 ||
	    shmet_counter_labels(&keep, &c, SHMET_VALUES("x")) != 0)
		return 3;
	shmet_counter_add(&c, 7);
	if (shmet_counter_family(&seg, &old, "kp_old_total", "older", 1,
				 k_names) != 0 ||
	    shmet_counter_labels(&old, &c, SHMET_VALUES("y")) != 0)
		return 4;
	shmet_counter_add(&c, 2);
	if (shmet_family_clear(&old) != 0)
		return 5;
	shmet_close(&seg);
	return 0;
}

static int
victim(void)
{
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter z;

	if (open_seg(&seg) != 0)
		return 3;
	if (shmet_expire(&seg) != 0)
		return 4;
	victim_report("S\n");
	if (shmet_counter_family(&seg, &f, "kp_new_total", "newer", 1,
				 k_names) != 0)
		return 5;
	victim_report("F\n");
	if (shmet_counter_labels(&f, &z, SHMET_VALUES("z")) != 0)
		return 6;
	shmet_counter_add(&z, 5);
	victim_report("I z 5\n");
	/* a new record from the cursor, built the same way */
	if (shmet_counter_family(&seg, &f, "kp_fresh_total", "fresh", 1,
				 k_names) != 0 ||
	    shmet_counter_labels(&f, &z, SHMET_VALUES("f")) != 0)
		return 7;
	shmet_counter_add(&z, 4);
	victim_report("I f 4\n");
	shmet_close(&seg);
	return 0;
}

/* The later writer: sweep, then one count in each of two families. */
static int
later_writer(void)
{
	struct shmet_segment seg;
	struct shmet_family f, g;
	struct shmet_counter c;

	if (open_seg(&seg) != 0 || shmet_expire(&seg) != 0)
		return 3;
	if (shmet_counter_family(&seg, &f, "kp_new_total", "newer", 1,
				 k_names) != 0 ||
	    shmet_counter_labels(&f, &c, SHMET_VALUES("z")) != 0)
		return 4;
	shmet_counter_inc(&c);
	if (shmet_counter_family(&seg, &f, "kp_fresh_total", "fresh", 1,
				 k_names) != 0 ||
	    shmet_counter_labels(&f, &c, SHMET_VALUES("f")) != 0)
		return 6;
	shmet_counter_inc(&c);
	if (shmet_counter_family(&seg, &g, "kp_more_total", "more", 1,
				 k_names) != 0 ||
	    shmet_counter_labels(&g, &c, SHMET_VALUES("m")) != 0) {
		fprintf(stderr, "later writer: %s\n", shmet_last_error(&seg));
		return 5;
	}
	shmet_counter_inc(&c);
	shmet_close(&seg);
	return 0;
}

/* name{k="v"} on the page: its value, -1 if the family has no such
 * series, -2 if the name is shown more than once (a record twice). */
static long long
value(const struct snapshot *s, const char *name, const char *v,
      uint32_t *series)
{
	long long out = -1;
	uint32_t seen = 0;

	*series = 0;
	for (uint32_t fi = 0; fi < shmet_index_family_count(s->index); fi++) {
		const struct shmet_index_family *f =
			shmet_index_family(s->index, fi);

		if (f->name.len != strlen(name) ||
		    memcmp(f->name.ptr, name, f->name.len))
			continue;
		seen++;
		*series += f->series_count;
		for (uint32_t i = 0; i < f->series_count; i++) {
			const struct shmet_index_series *se =
				shmet_index_series(s->index,
						   f->first_series + i);

			if (se->label_values[0].len == strlen(v) &&
			    !memcmp(se->label_values[0].ptr, v, strlen(v)))
				out = (long long)shmet_values_counter_int(
					s->values, s->index,
					f->first_series + i);
		}
	}
	return seen > 1 ? -2 : out;
}

static void
check(const char *ctx, const char *rep)
{
	struct snapshot s;
	struct raw_families rf;
	uint32_t n;
	long long v;

	snapshot_take(segname, &s);
	if (value(&s, "kp_keep_total", "x", &n) != 7) {
		fprintf(stderr, "FAIL %s: kp_keep_total x is not 7\n", ctx);
		failures++;
	}
	if (value(&s, "kp_old_total", "y", &n) != -1 || n != 0) {
		fprintf(stderr, "FAIL %s: kp_old_total shows a series\n", ctx);
		failures++;
	}
	v = value(&s, "kp_fresh_total", "f", &n);
	if (v == -2 || (v >= 0 && v != (strstr(rep, "I f 4\n") ? 4 : 0)) ||
	    (v < 0 && strstr(rep, "I f 4\n"))) {
		fprintf(stderr, "FAIL %s: kp_fresh_total f = %lld\n", ctx, v);
		failures++;
	}
	v = value(&s, "kp_new_total", "z", &n);
	if (v == -2 || (v >= 0 && v != (strstr(rep, "I z 5\n") ? 5 : 0)) ||
	    (v < 0 && strstr(rep, "I z 5\n"))) {
		fprintf(stderr, "FAIL %s: kp_new_total z = %lld\n", ctx, v);
		failures++;
	}
	snapshot_free(&s);
	if (victim_later_writer(later_writer, ctx)) {
		failures++;
		return;
	}
	rf = raw_families(segname, "kp_old_total");
	if (rf.named != 0 || rf.reclaiming || rf.claimed || rf.torn ||
	    rf.used != 4 || rf.freed != 0) {
		fprintf(stderr, "FAIL %s: after the later writer: kp_old_total "
			"%u, %u reclaiming, %u claimed, %u torn, %u records\n",
			ctx, rf.named, rf.reclaiming, rf.claimed, rf.torn,
			rf.used);
		failures++;
	}
	snapshot_take(segname, &s);
	if (value(&s, "kp_keep_total", "x", &n) != 7 ||
	    value(&s, "kp_new_total", "z", &n) !=
		    (strstr(rep, "I z 5\n") ? 6 : 1) ||
	    value(&s, "kp_fresh_total", "f", &n) !=
		    (strstr(rep, "I f 4\n") ? 5 : 1) ||
	    value(&s, "kp_more_total", "m", &n) != 1) {
		fprintf(stderr, "FAIL %s: after the later writer, the counts "
			"are not exact\n", ctx);
		failures++;
	}
	snapshot_free(&s);
}

int
main(void)
{
	static const char *const prefixes[] = { "reclaim.", "family.", NULL };
	struct victim_point pts[MAX_POINTS];
	char rep[1024];
	unsigned npts = 0;
	int fd;

	snprintf(segname, sizeof segname, "/shmet-fm-points-%d",
		 (int)getpid());
	shmet_unlink(segname);
	if (victim_in_child(setup) != 0) {
		fprintf(stderr, "setup failed\n");
		return 1;
	}
	fd = victim_traced(victim, rep, sizeof rep, &failures);
	check("traced", rep);
	shmet_unlink(segname);
	npts = victim_points(fd, prefixes, pts, MAX_POINTS);
	close(fd);
	if (npts == 0) {
		fprintf(stderr, "no test points: a build without them\n");
		return 77;
	}
	for (unsigned i = 0; i < npts; i++) {
		char ctx[128];

		if (victim_in_child(setup) != 0) {
			fprintf(stderr, "setup failed\n");
			return 1;
		}
		snprintf(ctx, sizeof ctx, "killed at %.47s #%u", pts[i].name,
			 pts[i].nth);
		if (getenv("RECLAIM_POINTS_TRACE"))
			printf("%s\n", ctx);
		victim_run(victim, pts[i].name, "kill", pts[i].nth, -1, rep,
			   sizeof rep);
		check(ctx, rep);
		shmet_unlink(segname);
		runs++;
	}
	printf("reclaim-points: %u points killed, %d runs, %d invariant "
	       "violations\n", npts, runs, failures);
	return failures ? 1 : 0;
}
