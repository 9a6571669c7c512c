/*
 * Scrape benchmark: collect + render time and bytes for S series written
 * by W live writer processes of T threads each.
 *
 *   bench-render SERIES WRITERS [RUNS] [text|openmetrics|json] [THREADS]
 *                [all|own]
 *   bench-render SERIES WRITERS hold
 *     sets the workload up, prints "ready SEGMENT" and keeps the writers
 *     alive until standard input closes (for the exporter benchmark)
 *
 * Workload (as issue 3 specifies): 60% counters, 20% gauges, 20%
 * histograms with 12 buckets, labels campaign_id and user_id, spread over
 * 10 families.  The page is the same whatever W and T (and the same as
 * bench/go/render.go's), so that only the reading differs: of the N = W x
 * T writers (thread t of process p is writer p x T + t), every one adds
 * its share of counter i's total i; every process sets every gauge (the
 * process i % W to i x 0.5, the others to 0: a livesum of i x 0.5), from
 * its thread i % T; writer i % N makes histogram i's one observation.
 * With "own", gauge i is registered and set by process i % W only (each
 * process holds its own gauges, not every one).
 * Each process resolves its handles once and its threads share them.
 * BENCH_RENDER_GAUGES_FIRST=1 registers the gauges first (see below).
 * BENCH_RENDER_EXEMPLARS=P: histogram i's observation carries an exemplar
 * (a trace_id of 32 hex digits) for P % of the histogram series (those
 * with (i / 10) % 100 < P).  BENCH_RENDER_IDLE_MS=M: each scrape (the
 * warm-ups too) comes M ms after the previous one, as an exporter polled
 * every 15 s sees it (the reader's caches older than 100 ms).
 * Prints one line: series, writers, index build ms, render median / min /
 * max ms, bytes, blocks read, the machine's atomic add, the collect
 * median (part of the render), threads.
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmetrics.h>

#include "shmetrics-reader.h"

#define FAMILIES 10
#define MAX_RUNS 64
#define MAX_THREADS 16

static const double bounds12[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
				   0.5,   1,    2.5,   5,    10,  30 };
static const char *const labels[] = { "campaign_id", "user_id" };

/* Family k: 0-5 counters, 6-7 gauges, 8-9 histograms. */
static void
register_family(struct shmet_segment *seg, int k, struct shmet_family *f)
{
	char name[64];

	if (k < 6) {
		snprintf(name, sizeof name, "bench_counter_%d_total", k);
		shmet_counter_family(seg, f, name, "A counter", 2, labels);
	} else if (k < 8) {
		snprintf(name, sizeof name, "bench_gauge_%d", k);
		shmet_gauge_family(seg, f, name, "A gauge", SHMET_GAUGE_LIVESUM,
				   2, labels);
	} else {
		snprintf(name, sizeof name, "bench_histogram_%d_seconds", k);
		shmet_histogram_family(seg, f, name, "A histogram", 12,
				       bounds12, 2, labels);
	}
}

/* A process's handle of series i (kind: i % FAMILIES). */
union handle {
	struct shmet_counter c;
	struct shmet_gauge g;
	struct shmet_histogram h;
};

struct share {
	const union handle *h;
	long series;
	int writers, threads, p, t;
	pthread_t thread;
};

/* "own": process p holds only the gauges i with i % W == p. */
static int own_gauges;
/* BENCH_RENDER_GAUGES_FIRST=1: the gauge series are registered first,
 * so their cells are contiguous, 4 gauges to a cache line: what packing
 * each process's gauge cells together would give the reader (an
 * experiment; the writer allocates cells in registration order). */
static int gauges_first;
/* BENCH_RENDER_EXEMPLARS: the percentage of histogram series with one. */
static long exemplar_pct;

static int
holds_gauge(long i, int p, int writers)
{
	return !own_gauges || i % writers == p;
}

/* Writer p x T + t's share of every series (see the top of the file). */
static void *
write_share(void *arg)
{
	const struct share *s = arg;
	long n = (long)s->writers * s->threads, j = (long)s->p * s->threads + s->t;

	for (long i = 0; i < s->series; i++) {
		int k = (int)(i % FAMILIES);

		if (k < 6)
			shmet_counter_add(&s->h[i].c,
					  (uint64_t)(i / n + (j < i % n)));
		else if (k < 8) {
			if (s->t == i % s->threads &&
			    holds_gauge(i, s->p, s->writers))
				shmet_gauge_set(&s->h[i].g,
						s->p == i % s->writers
							? (double)i * 0.5
							: 0.0);
		} else if (j == i % n) {
			char id[40];
			const char *name[] = { "trace_id" }, *val[] = { id };

			if ((i / FAMILIES) % 100 < exemplar_pct) {
				snprintf(id, sizeof id, "%016lx%016lx",
					 (unsigned long)i * 0x9e3779b97f4a7c15ul,
					 (unsigned long)i);
				shmet_histogram_observe_exemplar(
					&s->h[i].h, (double)(i % 40) * 0.13, 1,
					name, val);
			} else
				shmet_histogram_observe(&s->h[i].h,
							(double)(i % 40) * 0.13);
		}
	}
	return NULL;
}

/* Resolve every series, write this process's share from its threads,
 * then wait to be killed (a live writer). */
static void
writer(const char *segname, long series, int id, int writers, int threads,
       int ready_fd)
{
	struct shmet_options o;
	struct shmet_segment seg;
	struct shmet_family fam[FAMILIES];
	struct share sh[MAX_THREADS];
	union handle *h = calloc((size_t)series, sizeof *h);
	char c = 'r';

	memset(&o, 0, sizeof o);
	o.name = segname;
	o.flags = SHMET_OPEN_NO_CREATE;
	if (shmet_open(&seg, &o) < 0)
		_exit(1);
	if (!h)
		_exit(1);
	for (int k = 0; k < FAMILIES; k++)
		register_family(&seg, k, &fam[k]);
	for (long q = 0; q < 2 * series; q++) {
		long i = q % series;
		char campaign[32], user[32];
		const char *v[2] = { campaign, user };
		int k = (int)(i % FAMILIES);

		/* in order, or gauges first, then the rest */
		if (gauges_first ? (q < series) != (k >= 6 && k < 8)
				 : q >= series)
			continue;
		snprintf(campaign, sizeof campaign, "campaign-%08ld", i);
		snprintf(user, sizeof user, "user-%04ld", i % 1000);
		if (k < 6)
			shmet_counter_labels(&fam[k], &h[i].c, 2, v);
		else if (k < 8) {
			if (holds_gauge(i, id, writers))
				shmet_gauge_labels(&fam[k], &h[i].g, 2, v);
		}
		else
			shmet_histogram_labels(&fam[k], &h[i].h, 2, v);
	}
	for (int t = 0; t < threads; t++) {
		sh[t] = (struct share){ h, series, writers, threads, id, t, 0 };
		if (pthread_create(&sh[t].thread, NULL, write_share, &sh[t]))
			_exit(1);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(sh[t].thread, NULL);
	if (write(ready_fd, &c, 1) != 1)
		_exit(1);
	pause();
	_exit(0);
}

/* ns per relaxed atomic add: this run's machine speed, for comparing
 * runs on a shared machine whose speed drifts. */
static double
atomic_baseline_ns(void)
{
	static _Atomic uint64_t cell;
	uint64_t t0 = shmet_now_ns();

	for (int i = 0; i < 20000000; i++)
		atomic_fetch_add_explicit(&cell, 1, memory_order_relaxed);
	return (double)(shmet_now_ns() - t0) / 20000000.0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int
main(int argc, char **argv)
{
	long series = argc > 1 ? atol(argv[1]) : 10000;
	int writers = argc > 2 ? atoi(argv[2]) : 16;
	int hold = argc > 3 && !strcmp(argv[3], "hold");
	int runs = argc > 3 && !hold ? atoi(argv[3]) : 15;
	const char *format = argc > 4 ? argv[4] : "text";
	int threads = argc > 5 ? atoi(argv[5]) : 1;

	own_gauges = argc > 6 && !strcmp(argv[6], "own");
	exemplar_pct = getenv("BENCH_RENDER_EXEMPLARS")
			       ? atol(getenv("BENCH_RENDER_EXEMPLARS"))
			       : 0;
	long idle_ms = getenv("BENCH_RENDER_IDLE_MS")
			       ? atol(getenv("BENCH_RENDER_IDLE_MS"))
			       : 0;
	gauges_first = getenv("BENCH_RENDER_GAUGES_FIRST") &&
		       *getenv("BENCH_RENDER_GAUGES_FIRST") &&
		       strcmp(getenv("BENCH_RENDER_GAUGES_FIRST"), "0") != 0;
	char segname[64], err[SHMET_READER_ERRLEN];
	struct shmet_options o;
	struct shmet_segment seg;
	struct shmet_reader *r;
	struct shmet_index *idx;
	struct shmet_values *v = shmet_values_new();
	struct shmet_buf b = { 0 };
	pid_t pids[256];
	double ms[MAX_RUNS], cms[MAX_RUNS], index_ms;
	int pipefd[2];
	uint64_t t0;

	if (series < FAMILIES || writers < 1 || writers > 256 || runs < 1 ||
	    runs > MAX_RUNS || threads < 1 || threads > MAX_THREADS) {
		fprintf(stderr, "usage: bench-render SERIES WRITERS [RUNS 1-64] "
				"[text|openmetrics|json] [THREADS 1-16]\n");
		return 2;
	}
	/* SHMETRICS_BENCH_PREFIX: where a shared machine wants it */
	snprintf(segname, sizeof segname, "%.40s-%d",
		 getenv("SHMETRICS_BENCH_PREFIX") ? getenv("SHMETRICS_BENCH_PREFIX")
						  : "/shmet-bench-render",
		 (int)getpid());
	memset(&o, 0, sizeof o);
	o.name = segname;
	o.max_series = (uint32_t)series + 16;
	o.max_series_per_family = (uint32_t)series;
	o.max_writers = (uint32_t)writers + 1;
	o.cells_per_block = (uint32_t)(series * 5 + 1024);
	o.string_bytes = (uint32_t)(series * 40 + 65536);
	o.flags = SHMET_OPEN_NO_WRITER;
	if (shmet_open(&seg, &o) < 0) {
		fprintf(stderr, "bench-render: %s\n", shmet_last_error(&seg));
		return 1;
	}
	if (pipe(pipefd) < 0)
		return 1;
	for (int w = 0; w < writers; w++) {
		pids[w] = fork();
		if (pids[w] == 0)
			writer(segname, series, w, writers, threads,
			       pipefd[1]);
	}
	for (int w = 0; w < writers; w++) {
		char c;

		if (read(pipefd[0], &c, 1) != 1)
			return 1;
	}
	if (hold) {
		char c;

		printf("ready %s\n", segname);
		fflush(stdout);
		while (read(0, &c, 1) > 0)
			;
		for (int w = 0; w < writers; w++)
			kill(pids[w], SIGKILL);
		for (int w = 0; w < writers; w++)
			waitpid(pids[w], NULL, 0);
		shmet_close(&seg);
		shmet_unlink(segname);
		return 0;
	}
	if (shmet_reader_open(segname, &r, err, sizeof err) < 0) {
		fprintf(stderr, "bench-render: %s\n", err);
		return 1;
	}
	t0 = shmet_now_ns();
	if (shmet_index_build(r, &idx, err, sizeof err) < 0)
		return 1;
	index_ms = (double)(shmet_now_ns() - t0) / 1e6;
	for (int i = -2; i < runs; i++) {      /* two warm-up runs */
		if (idle_ms > 0)
			usleep((useconds_t)(idle_ms * 1000));
		shmet_buf_reset(&b);
		t0 = shmet_now_ns();
		shmet_values_collect(r, idx, v);
		if (i >= 0)
			cms[i] = (double)(shmet_now_ns() - t0) / 1e6;
		if (!strcmp(format, "openmetrics"))
			shmet_render_openmetrics(idx, v, &b);
		else if (!strcmp(format, "json"))
			shmet_render_json(idx, v, 0, &b);
		else
			shmet_render_text(idx, v, &b);
		if (i >= 0)
			ms[i] = (double)(shmet_now_ns() - t0) / 1e6;
	}
	qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
	qsort(cms, (size_t)runs, sizeof *cms, cmp_double);
	printf("series %7ld  writers %3d  index %8.2f ms  render %s median "
	       "%8.3f ms  min %8.3f  max %8.3f  bytes %zu  blocks %u  "
	       "(atomic add %.2f ns)  collect %.3f ms  threads %d  gauges %s  "
	       "exemplars %ld%%  idle %ld ms\n",
	       series, writers, index_ms, format, ms[runs / 2], ms[0],
	       ms[runs - 1], b.len, shmet_values_blocks_read(v),
	       atomic_baseline_ns(), cms[runs / 2], threads,
	       own_gauges ? "own" : "all", exemplar_pct, idle_ms);
	if (getenv("BENCH_RENDER_DUMP")) {
		FILE *f = fopen(getenv("BENCH_RENDER_DUMP"), "w");

		if (f) {
			fwrite(b.data, 1, b.len, f);
			fclose(f);
		}
	}
	for (int w = 0; w < writers; w++)
		kill(pids[w], SIGKILL);
	for (int w = 0; w < writers; w++)
		waitpid(pids[w], NULL, 0);
	shmet_buf_free(&b);
	shmet_values_free(v);
	shmet_index_free(idx);
	shmet_reader_close(r);
	shmet_close(&seg);
	shmet_unlink(segname);
	return 0;
}
