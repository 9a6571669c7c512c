/*
 * Per-CPU cells under load (docs/DESIGN.md, "Per-CPU cells"): PROCS
 * processes x THREADS threads count on one counter series and one
 * histogram series, while threads exit and are replaced mid-run and every
 * process forks a child mid-run that counts too.  Every total must be
 * exact: the counter's integer and float parts, the histogram's buckets
 * and its sum.  Run with rseq and with SHMETRICS_NO_RSEQ=1 (the fallback):
 * with rseq the CPU blocks hold counts, without they hold none.
 * SHMETRICS_TEST_QUICK=1 divides the increments by 10 (sanitizers).
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmetrics.h>

#include "percpu.h"
#include "snapshot.h"

#define PROCS 8
#define THREADS 4
#define CHILD_INCS 1000

static struct shmet_segment seg;
static struct shmet_counter ctr;
static struct shmet_histogram hist;
static long incs = 200000;              /* per thread, in two halves */
static const double bounds[3] = { 1, 2, 3 };

/* Observations: 0.5, 1.5, 2.5, 3.5 in turn (exact in binary). */
static void
count_some(long n, long base)
{
	for (long i = 0; i < n; i++) {
		shmet_counter_inc(&ctr);
		shmet_counter_add_double(&ctr, 0.25);
		if ((base + i) % 8 == 0)
			shmet_histogram_observe(&hist,
						0.5 + (double)((base + i) / 8 % 4));
	}
}

static void *
first_half(void *arg)
{
	long me = (long)(intptr_t)arg;

	count_some(incs / 2, 0);
	if (me == 0) {
		/* a fork from a counting thread, while the others count */
		pid_t pid = fork();
		int status;

		if (pid == 0) {
			count_some(CHILD_INCS, 0);
			_exit(0);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "fork child failed\n");
			exit(1);
		}
	}
	return NULL;                    /* the thread exits mid-run */
}

static void *
second_half(void *arg)
{
	(void)arg;
	count_some(incs - incs / 2, incs / 2);
	return NULL;
}

static void
worker(void)
{
	pthread_t t[THREADS];

	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, first_half, (void *)(intptr_t)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	/* fresh threads (their rseq areas resolved anew) for the rest */
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, second_half, (void *)(intptr_t)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
}

/* Observations and their sum of count_some(n, 0). */
static void
expect_hist(long n, uint64_t per_bucket[4], double *sum)
{
	for (long i = 0; i < n; i += 8) {
		per_bucket[i / 8 % 4]++;
		*sum += 0.5 + (double)(i / 8 % 4);
	}
}

int
main(void)
{
	struct shmet_options o = { 0 };
	struct snapshot snap;
	char name[64];
	pid_t pids[PROCS];
	uint64_t want, got, want_b[4] = { 0 }, got_b[4];
	double want_sum = 0, got_sum, want_f, got_f;
	size_t cc, hc;
	uint64_t cpu_part;
	int failures = 0;

	if (getenv("SHMETRICS_TEST_QUICK"))
		incs /= 10;
	snprintf(name, sizeof name, "/shmet-pcstress-%d", (int)getpid());
	o.name = name;
	o.max_writers = 32;
	o.cells_per_block = 1024;
	o.max_series = 16;
	if (shmet_open(&seg, &o) < 0 ||
	    shmet_counter_new(&seg, &ctr, "ps_total", "c") < 0 ||
	    shmet_histogram_new(&seg, &hist, "ps_seconds", "h", 3, bounds) < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&seg));
		return 1;
	}
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			worker();
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int status;

		if (pids[p] < 0 || waitpid(pids[p], &status, 0) != pids[p] ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "worker %d failed\n", p);
			failures++;
		}
	}
	cc = percpu_cell_index(&seg, ctr.cell);
	hc = percpu_cell_index(&seg, hist.cell);
	want = (uint64_t)PROCS * THREADS * (uint64_t)incs +
	       (uint64_t)PROCS * CHILD_INCS;
	want_f = 0.25 * (double)want;
	for (int p = 0; p < PROCS; p++) {
		for (int t = 0; t < THREADS; t++) {
			/* both halves of a thread: one run of incs */
			expect_hist(incs, want_b, &want_sum);
		}
		expect_hist(CHILD_INCS, want_b, &want_sum);
	}
	snapshot_take(name, &snap);
	got = snapshot_cell(&snap, cc);
	got_f = snap.d[cc + 1];
	for (int b = 0; b < 4; b++)
		got_b[b] = snapshot_cell(&snap, hc + (size_t)b);
	got_sum = snap.d[hc + 4];
	snapshot_free(&snap);
	cpu_part = percpu_sum(&seg, cc);
	printf("%d x %d threads x %ld (+ %d forks x %d), rseq %s: counter "
	       "%llu of %llu (%llu in CPU blocks), float %g of %g, buckets "
	       "%llu %llu %llu %llu, sum %g of %g\n", PROCS, THREADS, incs,
	       PROCS, CHILD_INCS, percpu_forced_off() ? "off" : "on",
	       (unsigned long long)got, (unsigned long long)want,
	       (unsigned long long)cpu_part, got_f, want_f,
	       (unsigned long long)got_b[0], (unsigned long long)got_b[1],
	       (unsigned long long)got_b[2], (unsigned long long)got_b[3],
	       got_sum, want_sum);
	if (got != want || got_f != want_f || got_sum != want_sum) {
		fprintf(stderr, "FAIL: totals are not exact\n");
		failures++;
	}
	for (int b = 0; b < 4; b++)
		if (got_b[b] != want_b[b]) {
			fprintf(stderr, "FAIL: bucket %d: %llu, want %llu\n", b,
				(unsigned long long)got_b[b],
				(unsigned long long)want_b[b]);
			failures++;
		}
	if (percpu_forced_off() ? cpu_part != 0 : cpu_part == 0) {
		fprintf(stderr, "FAIL: %llu counts in CPU blocks with rseq %s\n",
			(unsigned long long)cpu_part,
			percpu_forced_off() ? "off" : "on");
		failures++;
	}
	shmet_close(&seg);
	shmet_unlink(name);
	printf("%s\n", failures ? "FAIL" : "ok");
	return failures ? 1 : 0;
}
