/*
 * The takeover fold (writer/slot.c), killed at each of its steps: a dead
 * writer's gauges of the modes that keep dead writers' values (sum, max,
 * min, mostrecent) are shown before, during and after any number of
 * interrupted takeovers, each exactly once.  Needs test points (exit 77
 * without).  Then a retire lock held by a stopped process: the takeover
 * is refused (another slot is taken) instead of zeroing unfolded values.
 *
 * Scenario: writer 1 (slot 0) sets sum=5, max=7, min=3, mostrecent=9 and
 * dies (SIGKILL).  Writer 2 takes slot 0 over and is killed at step P,
 * the n-th time (n = 1..4: one series each).  Writer 3 takes slot 0 over
 * cleanly.  After each death and at the end, a scrape shows exactly the
 * four values.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmetrics.h>
#include <shmetrics/lock.h>

#include "raw.h"
#include "shmetrics-reader.h"

static char name[64];
static int failures, scenarios;

static const struct {
	const char *name;
	uint32_t mode;
	double value;
} gauges[] = {
	{ "g_sum", SHMET_GAUGE_SUM, 5 },
	{ "g_max", SHMET_GAUGE_MAX, 7 },
	{ "g_min", SHMET_GAUGE_MIN, 3 },
	{ "g_recent", SHMET_GAUGE_MOSTRECENT, 9 },
};
#define NGAUGES (sizeof gauges / sizeof gauges[0])

/* A writer: attach, register the gauges, set them if `set`, then wait
 * for the parent's SIGKILL (set) or exit (not set). */
static pid_t
writer(const char *point, int set)
{
	int ready[2];
	pid_t pid;
	char c;

	if (pipe(ready) < 0)
		exit(1);
	pid = fork();
	if (pid == 0) {
		struct shmet_segment seg;
		struct shmet_options o = { .name = name,
					   .flags = SHMET_OPEN_NO_CREATE };

		close(ready[0]);
		if (point)
			setenv("SHMETRICS_TEST_POINT", point, 1);
		if (shmet_open(&seg, &o) != 0)
			_exit(3);
		for (size_t i = 0; i < NGAUGES; i++) {
			struct shmet_gauge g;

			if (shmet_gauge_new(&seg, &g, gauges[i].name, "t",
					    gauges[i].mode) != 0)
				_exit(4);
			if (set)
				shmet_gauge_set(&g, gauges[i].value);
		}
		if (write(ready[1], "r", 1) != 1)
			_exit(5);
		if (set)
			for (;;)
				pause();
		_exit(0);
	}
	close(ready[1]);
	if (read(ready[0], &c, 1) != 1)
		c = 0;          /* it died before it was ready */
	close(ready[0]);
	return pid;
}

/* Every gauge shows its value exactly. */
static void
check_values(const char *when)
{
	struct shmet_reader *r;
	struct shmet_index *idx;
	struct shmet_values *v = shmet_values_new();
	char err[256];

	if (!v || shmet_reader_open(name, &r, err, sizeof err) != 0 ||
	    shmet_index_build(r, &idx, err, sizeof err) != 0 ||
	    shmet_values_collect(r, idx, v) != 0) {
		fprintf(stderr, "FAIL %s: cannot scrape: %s\n", when, err);
		exit(1);
	}
	for (size_t i = 0; i < NGAUGES; i++) {
		const struct shmet_index_family *f =
			shmet_index_find(idx, gauges[i].name);
		double got = -1;

		if (!f || f->series_count != 1 ||
		    !shmet_values_gauge(v, f->first_series, &got) ||
		    got != gauges[i].value) {
			fprintf(stderr, "FAIL %s: %s = %g, want %g\n", when,
				gauges[i].name, got, gauges[i].value);
			failures++;
		}
	}
	shmet_values_free(v);
	shmet_index_free(idx);
	shmet_reader_close(r);
}

static void
fresh(void)
{
	struct shmet_segment seg;
	struct shmet_options o = { 0 };

	shmet_unlink(name);
	o.name = name;
	o.max_writers = 8;
	o.max_series = 64;
	o.cells_per_block = 1024;
	o.flags = SHMET_OPEN_NO_WRITER;
	if (shmet_open(&seg, &o) != 0)
		exit(1);
	shmet_close(&seg);
}

static void
first_writer_dies(void)
{
	pid_t w1 = writer(NULL, 1);

	kill(w1, SIGKILL);
	wait_exit(w1);
	check_values("writer 1 dead");
}

static void
killed_at(const char *point, unsigned nth)
{
	char spec[64], when[160];
	pid_t w2, w3;

	fresh();
	first_writer_dies();
	snprintf(spec, sizeof spec, "%s:kill:%u", point, nth);
	w2 = writer(spec, 0);
	if (wait_exit(w2) != 128 + SIGKILL) {
		fprintf(stderr, "FAIL %s: writer 2 was not killed there\n",
			spec);
		failures++;
	}
	snprintf(when, sizeof when, "after a kill at %s", spec);
	check_values(when);
	w3 = writer(NULL, 0);
	if (wait_exit(w3) != 0) {
		fprintf(stderr, "FAIL %s: writer 3 failed\n", spec);
		failures++;
	}
	snprintf(when, sizeof when, "after the takeover that followed %s",
		 spec);
	check_values(when);
	scenarios++;
}

/* The retire lock held (as by a stopped process): no takeover. */
static void
retire_lock_held(void)
{
	char claim[160];
	int fd;
	pid_t w2, w3;

	fresh();
	first_writer_dies();
	snprintf(claim, sizeof claim, "/dev/shm%s" SHMET_CLAIM_SUFFIX, name);
	fd = open(claim, O_RDWR);
	if (fd < 0 || shmet_seg_lock(fd, SHMET_LOCK_RETIRE, F_WRLCK) < 0) {
		fprintf(stderr, "FAIL: cannot hold the retire lock\n");
		exit(1);
	}
	w2 = writer(NULL, 0);
	if (wait_exit(w2) != 0) {
		fprintf(stderr, "FAIL: writer 2 failed beside a held lock\n");
		failures++;
	}
	check_values("a takeover refused under a held retire lock");
	close(fd);
	w3 = writer(NULL, 0);
	wait_exit(w3);
	check_values("the takeover after the lock was freed");
	scenarios++;
}

int
main(void)
{
	static const char *const steps[] = {
		"takeover.locked", "takeover.journaled", "takeover.folded",
		"takeover.zeroed",
	};

#ifndef SHMET_TEST_POINTS
	puts("built without test points (-Dtest_points=false)");
	return 77;
#endif
	snprintf(name, sizeof name, "/shmet-takeover-%d", (int)getpid());
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
		for (unsigned nth = 1; nth <= (i == 0 ? 1u : NGAUGES); nth++)
			killed_at(steps[i], nth);
	retire_lock_held();
	shmet_unlink(name);
	printf("takeover-points: %d scenarios, %d failures\n", scenarios,
	       failures);
	return failures ? 1 : 0;
}
