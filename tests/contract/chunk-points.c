/*
 * Gauge chunks (writer/cells.c), each step killed and cancelled, then
 * the cells and every gauge checked from outside and after a later
 * writer reopened the segment.  Needs a build with test points (exit 77
 * without).
 *
 * The segment has 1,024 cells a block, so a gauge chunk is 16 cells, 8
 * gauges.  Two scenarios:
 *   one  a victim registers 12 gauges and sets each (a counter's cells,
 *        from cells_used, between the 4th and the 5th, so the next chunk
 *        is carved after them and aligned); a traced run lists the
 *        cells.* points it reaches (carved, installed, taken), and one
 *        run is killed and one cancelled at each;
 *   race the loser's path, made with stops (points.c "stop"): the chunk
 *        is full; W carves and stops, L carves and stops, W installs its
 *        chunk and exits, then L's install fails, it takes its cells from
 *        W's chunk (cells.taken) and gives its own back (cells.returned),
 *        which succeeds when L carved last ("last") and leaves L's chunk
 *        lost when W carved last ("first"); L is run whole, killed and
 *        cancelled at both points.
 * After each run, and again after a later writer (a new process that
 * takes over a writer slot, registers 8 new gauges, sets them and adds to
 * one of the victim's):
 *   - no two published series share a cell, none reaches past cells_used
 *     or into the chunk's free range [next, end), and next <= end <=
 *     cells_used <= cells_per_block: nothing is handed out twice;
 *   - the leak, cells_used minus the series' cells minus the chunk's free
 *     cells, is at most the alignment (7 cells a chunk) plus one chunk
 *     and one gauge's cells per process killed inside, and exactly one
 *     chunk (+ alignment) where a loser's return must fail;
 *   - every gauge (sum mode: dead writers' values stay) is exactly the
 *     sum of the sets reported for it; one never reported reads 0.
 * Prints the runs, the violations and the largest leak seen.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmetrics.h>
#include <shmetrics/layout.h>

#include "probe.h"
#include "raw.h"
#include "victim.h"

#define MAX_POINTS 64

static char segname[64];
static int failures, runs;
static uint32_t worst_leak;

static int
check(int cond, const char *what, const char *ctx)
{
	if (!cond) {
		fprintf(stderr, "FAIL %s: %s\n", ctx, what);
		failures++;
	}
	return cond;
}

struct fams {
	struct shmet_segment seg;
	struct shmet_family g, g2, c;
};

static const char *const k_names[] = { "k" };

static int
open_fams(struct fams *f)
{
	struct shmet_options o = { .name = segname, .max_writers = 3,
				   .max_families = 8, .max_series = 256,
				   .cells_per_block = 1024,
				   .string_bytes = 65536 };

	if (shmet_open(&f->seg, &o) != 0)
		return -1;
	if (shmet_gauge_family(&f->seg, &f->g, "cg_value", "g",
			       SHMET_GAUGE_SUM, 1, k_names) != 0 ||
	    shmet_gauge_family(&f->seg, &f->g2, "cg_other", "g",
			       SHMET_GAUGE_SUM, 1, k_names) != 0 ||
	    shmet_counter_family(&f->seg, &f->c, "cc_total", "c", 1,
				 k_names) != 0) {
		shmet_close(&f->seg);
		return -1;
	}
	return 0;
}

/* Reports: "S key" once a gauge registered, "G key v" once set.  Each
 * process writes its lines whole to one pipe (under PIPE_BUF: atomic). */
static int report_fd = -1;

static void
report(const char *fmt, const char *key, double v)
{
	char line[96];
	int n = snprintf(line, sizeof line, fmt, key, v);

	/* write() is a cancellation point: a cancelled thread ends here */
	if (n > 0 && write(report_fd, line, (size_t)n) != n)
		_exit(9);
}

/* A gauge key's value: derived from its name, so every set differs. */
static double
value_of(const char *key)
{
	double v = 0;

	for (const char *p = key; *p; p++)
		v = v * 31 + (unsigned char)*p;
	return (double)((uint64_t)v % 1000000) + 0.5;
}

/* Keys starting with 'l' are cg_other's (the race's loser creates its
 * series under another family's gate than the winner, which holds
 * cg_value's while it is stopped), the rest cg_value's. */
static void
gauge(struct fams *f, const char *key)
{
	struct shmet_gauge g;

	if (shmet_gauge_labels(key[0] == 'l' ? &f->g2 : &f->g, &g, 1,
			       &key) != 0)
		return;
	report("S %s\n", key, 0);
	shmet_gauge_set(&g, value_of(key));
	report("G %s %.1f\n", key, value_of(key));
}

/* ------------------------------------------------------------------ */
/* Victims                                                            */

static struct fams vf;          /* static: a cancelled thread's stays */
static const char *victim_prefix = "v";

static void *
protocol_one(void *arg)
{
	(void)arg;
	if (open_fams(&vf) != 0)
		_exit(3);
	for (int i = 0; i < 12; i++) {
		char key[16];

		snprintf(key, sizeof key, "%s%d", victim_prefix, i);
		gauge(&vf, key);
		if (i == 3) {
			struct shmet_counter c;
			const char *k = victim_prefix;

			if (shmet_counter_labels(&vf.c, &c, 1, &k) == 0)
				shmet_counter_inc(&c);
		}
	}
	shmet_close(&vf.seg);
	return NULL;
}

static void *
protocol_race(void *arg)
{
	(void)arg;
	if (open_fams(&vf) != 0)
		_exit(3);
	gauge(&vf, victim_prefix);
	shmet_close(&vf.seg);
	return NULL;
}

/* Run proto in a thread (a cancel ends it), then prove the process
 * whole: it forks, opens and closes (no lock left held). */
static int
run_thread(void *(*proto)(void *))
{
	struct fams later;
	pthread_t t;
	pid_t child;

	if (pthread_create(&t, NULL, proto, NULL) != 0 ||
	    pthread_join(t, NULL) != 0)
		return 4;
	unsetenv("SHMETRICS_TEST_POINT");
	unsetenv("SHMETRICS_TEST_POINT_TRACE");
	alarm(60);
	child = fork();
	if (child == 0)
		_exit(0);
	if (child < 0 || waitpid(child, NULL, 0) != child)
		return 5;
	if (open_fams(&later) != 0)
		return 6;
	shmet_close(&later.seg);
	report("A %s\n", "alive", 0);
	return 0;
}

/* Start a process running proto under spec (NULL: none), reporting to
 * fd; with trace_fd >= 0, traced into it. */
static pid_t
start(void *(*proto)(void *), const char *prefix, const char *spec, int fd,
      int trace_fd)
{
	pid_t pid = fork();

	if (pid == 0) {
		char t[16];

		report_fd = fd;
		victim_prefix = prefix;
		if (spec)
			setenv("SHMETRICS_TEST_POINT", spec, 1);
		if (trace_fd >= 0) {
			snprintf(t, sizeof t, "%d", trace_fd);
			setenv("SHMETRICS_TEST_POINT_TRACE", t, 1);
		}
		_exit(run_thread(proto));
	}
	return pid;
}

/* Wait for pid to stop (1) or end (0). */
static int
stopped(pid_t pid, int *status)
{
	if (waitpid(pid, status, WUNTRACED) != pid)
		return 0;
	return WIFSTOPPED(*status);
}

/* Read what the pipe holds so far (nonblocking end: all writers gone). */
static void
drain(int fd, char *buf, size_t cap)
{
	size_t got = strlen(buf);
	ssize_t n;

	while (got + 1 < cap && (n = read(fd, buf + got, cap - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
}

/* ------------------------------------------------------------------ */
/* Checks                                                             */

/* The sum of the sets reported for key. */
static double
reported(const char *reports, const char *key)
{
	char want[48];
	double sum = 0;

	snprintf(want, sizeof want, "G %s ", key);
	for (const char *p = reports; (p = strstr(p, want)); p++)
		if (p == reports || p[-1] == '\n')
			sum += atof(p + strlen(want));
	return sum;
}

/* Cells and gauges; `kills`: processes killed inside a registration;
 * `lost`: chunks a failed return leaves lost. */
static void
check_all(const char *reports, unsigned kills, unsigned lost,
	  const char *ctx)
{
	struct probe_cells c = probe_cells(segname);
	struct probe p;
	const struct shmet_index_family *f;
	uint32_t free_cells, leak, chunks, bound;
	char what[200];

	snprintf(what, sizeof what, "cursors inconsistent: chunk [%u, %u), "
		 "cells_used %u of %u", c.chunk_next, c.chunk_end,
		 c.cells_used, c.cells_per_block);
	if (!check(c.chunk_next <= c.chunk_end &&
		   c.chunk_end <= c.cells_used &&
		   c.cells_used <= c.cells_per_block, what, ctx))
		return;
	snprintf(what, sizeof what, "%u pairs of series share a cell, %u "
		 "series past cells_used or in the chunk's free range",
		 c.shared, c.beyond);
	check(!c.shared && !c.beyond, what, ctx);
	free_cells = c.chunk_end - c.chunk_next;
	leak = c.cells_used - c.series_cells - free_cells;
	chunks = (c.cells_used + c.chunk_size - 1) / c.chunk_size;
	bound = 7 * chunks + (c.chunk_size + 2) * (kills + lost);
	snprintf(what, sizeof what, "%u cells leaked (cells_used %u, series "
		 "cells %u, chunk free %u), more than %u", leak, c.cells_used,
		 c.series_cells, free_cells, bound);
	check(leak <= bound, what, ctx);
	if (lost) {
		snprintf(what, sizeof what, "%u cells leaked, not the lost "
			 "chunk of %u (+ alignment)", leak, c.chunk_size);
		check(leak >= lost * c.chunk_size, what, ctx);
	}
	if (leak > worst_leak)
		worst_leak = leak;
	if (!check(probe_open(&p, segname) == 0, "no reader", ctx))
		return;
	for (int fi = 0; fi < 2; fi++) {
	f = shmet_index_find(p.idx, fi ? "cg_other" : "cg_value");
	for (uint32_t s = 0; f && s < f->series_count; s++) {
		const struct shmet_index_series *se =
			shmet_index_series(p.idx, f->first_series + s);
		char key[48];
		double got = -1;

		snprintf(key, sizeof key, "%.*s", (int)se->label_values[0].len,
			 se->label_values[0].ptr);
		shmet_values_gauge(p.v, f->first_series + s, &got);
		snprintf(what, sizeof what, "cg_value{k=\"%s\"} = %.1f, "
			 "reported %.1f", key, got, reported(reports, key));
		check(got == reported(reports, key), what, ctx);
	}
	}
	/* every reported gauge is shown */
	for (const char *q = reports; (q = strstr(q, "S ")); q++) {
		char key[48];

		if ((q != reports && q[-1] != '\n') ||
		    sscanf(q, "S %47s", key) != 1)
			continue;
		snprintf(what, sizeof what, "cg_value{k=\"%s\"} reported but "
			 "not shown", key);
		check(probe_series(&p, key[0] == 'l' ? "cg_other" : "cg_value",
				   key) != UINT32_MAX, what, ctx);
	}
	probe_close(&p);
}

/* The later writer: 8 new gauges, and 7 added to an existing one. */
static int later_fd;
static const char *later_existing;

static void *
protocol_later(void *arg)
{
	struct shmet_gauge g;

	(void)arg;
	if (open_fams(&vf) != 0)
		_exit(3);
	for (int i = 0; i < 8; i++) {
		char key[16];

		snprintf(key, sizeof key, "new%d", i);
		gauge(&vf, key);
	}
	if (later_existing &&
	    shmet_gauge_labels(&vf.g, &g, 1, &later_existing) == 0) {
		shmet_gauge_set(&g, 7);
		report("G %s %.1f\n", later_existing, 7);
	}
	shmet_close(&vf.seg);
	return NULL;
}

static void
later(char *reports, size_t cap, const char *existing, unsigned kills,
      unsigned lost, const char *ctx)
{
	int p[2], status;
	pid_t pid;

	if (pipe(p) < 0)
		exit(1);
	later_fd = p[1];
	later_existing = existing;
	pid = start(protocol_later, "new", NULL, p[1], -1);
	close(p[1]);
	drain(p[0], reports, cap);
	close(p[0]);
	check(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0, "the later writer failed", ctx);
	check_all(reports, kills, lost, ctx);
}

/* Create the segment and its families; fill the first chunk with 8
 * gauges "f0".."f7" if full. */
static int full_chunk;

static int
setup(void)
{
	struct fams f;

	if (open_fams(&f) != 0)
		return 3;
	for (int i = 0; full_chunk && i < 8; i++) {
		struct shmet_gauge g;
		char key[8];
		const char *k = key;

		snprintf(key, sizeof key, "f%d", i);
		if (shmet_gauge_labels(&f.g, &g, 1, &k) != 0)
			return 4;
	}
	shmet_close(&f.seg);
	return 0;
}

static int
fresh_segment(int full, const char *ctx)
{
	snprintf(segname, sizeof segname, "/shmet-kill-chunk-%d",
		 (int)getpid());
	shmet_unlink(segname);
	full_chunk = full;
	return check(victim_in_child(setup) == 0, "cannot create the segment",
		     ctx);
}

/* ------------------------------------------------------------------ */
/* Scenario one                                                       */

static void
one_run(const char *point, unsigned nth, const char *action)
{
	char spec[96], ctx[128], reports[8192] = "";
	int p[2], status, killed = !strcmp(action, "kill");
	pid_t pid;

	snprintf(ctx, sizeof ctx, "one: %.8s at %.47s #%u", action, point,
		 nth);
	if (!fresh_segment(0, ctx) || pipe(p) < 0)
		return;
	snprintf(spec, sizeof spec, "%.47s:%.8s:%u", point, action, nth);
	pid = start(protocol_one, "v", spec, p[1], -1);
	close(p[1]);
	drain(p[0], reports, sizeof reports);
	close(p[0]);
	waitpid(pid, &status, 0);
	if (killed)
		check(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
		      "the victim was not killed", ctx);
	else
		check(WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
		      strstr(reports, "A alive"),
		      "after the cancel, the victim's process is not whole",
		      ctx);
	check_all(reports, killed, 0, ctx);
	later(reports, sizeof reports, "v0", killed, 0, ctx);
	runs++;
}

/* ------------------------------------------------------------------ */
/* Scenario race                                                      */

/* L's fate at point (NULL: none).  last: L carves after W (its return
 * succeeds); else W carves after L (L's chunk stays lost). */
static void
race_run(int last, const char *point, const char *action)
{
	char spec[128], ctx[128], reports[8192] = "";
	int p[2], sw, sl;
	pid_t w, l;
	int killed = point && !strcmp(action, "kill");

	snprintf(ctx, sizeof ctx, "race (L carves %s): %.8s at %.40s",
		 last ? "last" : "first", point ? action : "none",
		 point ? point : "-");
	if (!fresh_segment(1, ctx) || pipe(p) < 0)
		return;
	if (point)
		snprintf(spec, sizeof spec, "cells.carved:stop:1,%s:%s:1", point,
			 action);
	else
		snprintf(spec, sizeof spec, "cells.carved:stop:1");
	if (last) {
		w = start(protocol_race, "w", "cells.carved:stop:1", p[1], -1);
		check(stopped(w, &sw), "W did not stop carved", ctx);
		l = start(protocol_race, "l", spec, p[1], -1);
		check(stopped(l, &sl), "L did not stop carved", ctx);
	} else {
		l = start(protocol_race, "l", spec, p[1], -1);
		check(stopped(l, &sl), "L did not stop carved", ctx);
		w = start(protocol_race, "w", "cells.carved:stop:1", p[1], -1);
		check(stopped(w, &sw), "W did not stop carved", ctx);
	}
	close(p[1]);
	kill(w, SIGCONT);
	check(waitpid(w, &sw, 0) == w && WIFEXITED(sw) &&
	      WEXITSTATUS(sw) == 0, "W failed", ctx);
	kill(l, SIGCONT);
	waitpid(l, &sl, 0);
	drain(p[0], reports, sizeof reports);
	close(p[0]);
	if (killed)
		check(WIFSIGNALED(sl) && WTERMSIG(sl) == SIGKILL,
		      "L was not killed", ctx);
	else
		check(WIFEXITED(sl) && WEXITSTATUS(sl) == 0 &&
		      strstr(reports, "A alive"), "L's process is not whole",
		      ctx);
	check_all(reports, killed, last ? 0 : 1, ctx);
	later(reports, sizeof reports, "w", killed, last ? 0 : 1, ctx);
	runs++;
}

int
main(void)
{
	static const char *const actions[] = { "kill", "cancel" };
	static const char *const prefixes[] = { "cells.", NULL };
	static const char *const loser[] = { "cells.taken", "cells.returned" };
	struct victim_point pts[MAX_POINTS];
	char reports[8192] = "";
	unsigned n;
	int fd, p[2];
	char path[] = "/tmp/shmet-kill-chunk-trace-XXXXXX";
	pid_t pid;

	/* line-buffered: forked children never repeat a buffered line */
	setvbuf(stdout, NULL, _IOLBF, 0);
#ifndef SHMET_TEST_POINTS
	puts("built without test points (-Dtest_points=false)");
	return 77;
#endif
	if (!fresh_segment(0, "trace") || pipe(p) < 0)
		return 1;
	fd = mkstemp(path);
	if (fd < 0)
		return 1;
	unlink(path);
	pid = start(protocol_one, "v", NULL, p[1], fd);
	close(p[1]);
	drain(p[0], reports, sizeof reports);
	close(p[0]);
	waitpid(pid, NULL, 0);
	n = victim_points(fd, prefixes, pts, MAX_POINTS);
	close(fd);
	printf("one: %u points\n", n);
	check(n >= 12, "fewer points than 12 gauges reach", "trace");
	check_all(reports, 0, 0, "one: whole");
	for (unsigned i = 0; i < n; i++)
		for (size_t a = 0; a < 2; a++)
			one_run(pts[i].name, pts[i].nth, actions[a]);
	for (int last = 0; last < 2; last++) {
		race_run(last, NULL, NULL);
		for (size_t i = 0; i < 2; i++)
			for (size_t a = 0; a < 2; a++)
				race_run(last, loser[i], actions[a]);
	}
	shmet_unlink(segname);
	printf("chunk-points: %u points x 2 actions + 10 races: %d runs, %d "
	       "invariant violations, largest leak %u cells\n", n, runs,
	       failures, worst_leak);
	return failures ? 1 : 0;
}
