/*
 * Writer hot-path benchmark: ns per operation, median and spread of
 * several runs, with the baselines measured in the same run.
 *
 *   bench-writer [runs] [ops-per-run]
 *
 * Then the scaling rows (writer-scale.c): 1, 2, 4 and 8 threads and
 * processes on one series, CPU time per op, with ops-per-run / 2 each.
 *
 * Baselines: a bare atomic_fetch_add_explicit(relaxed) on a private cell,
 * and a plain (non-atomic) add on a cell of a MAP_SHARED segment.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmetrics.h>

#include "bench-writer.h"

/* The first row, every row's "x atomic". */
#define ATOMIC_ROW "baseline: bare atomic_fetch_add relaxed"

static int runs = 9;
static long ops = 20000000;
static struct shmet_segment seg;
static char segname[64];

static double
now_s(void)
{
	return (double)shmet_now_ns() / 1e9;
}

static _Atomic uint64_t baseline_cell __attribute__((aligned(64)));
static volatile uint64_t *shared_plain;
static struct shmet_counter counter;
static struct shmet_gauge gauge;
static struct shmet_histogram hist;
static struct shmet_family fam2;
static double observe_values[64];
static double random_values[4096];      /* spread at random (fixed seed) */

typedef void (*bench_fn)(long n);

static void
op_atomic(long n)
{
	for (long i = 0; i < n; i++)
		atomic_fetch_add_explicit(&baseline_cell, 1,
					  memory_order_relaxed);
}

static void
op_plain_shared(long n)
{
	for (long i = 0; i < n; i++)
		*shared_plain += 1;
}

static void
op_counter_inc(long n)
{
	for (long i = 0; i < n; i++)
		shmet_counter_inc(&counter);
}

/*
 * The fallback: what a thread without rseq runs (SHMETRICS_NO_RSEQ=1,
 * valgrind, a kernel that refuses it): the writer gives such a thread an
 * area whose cpu_id is -1, and its writes add with a relaxed atomic to
 * the handle's fallback cell, every thread on the same cell.
 */
static __thread struct shmet_impl_rseq no_rseq = { 0, -1, 0, 0, 0, 0, 0 };

static void
op_counter_inc_shared(long n)
{
	struct shmet_impl_rseq *mine = shmet_impl_rseq_tls;

	shmet_impl_rseq_tls = &no_rseq;
	for (long i = 0; i < n; i++)
		shmet_counter_inc(&counter);
	shmet_impl_rseq_tls = mine;
}

static void
op_observe12_shared(long n)
{
	struct shmet_impl_rseq *mine = shmet_impl_rseq_tls;

	shmet_impl_rseq_tls = &no_rseq;
	for (long i = 0; i < n; i++)
		shmet_histogram_observe(&hist, observe_values[i & 63]);
	shmet_impl_rseq_tls = mine;
}

static void
op_counter_add_double(long n)
{
	for (long i = 0; i < n; i++)
		shmet_counter_add_double(&counter, 0.25);
}

static void
op_gauge_set(long n)
{
	for (long i = 0; i < n; i++)
		shmet_gauge_set(&gauge, (double)i);
}

static void
op_observe12(long n)
{
	for (long i = 0; i < n; i++)
		shmet_histogram_observe(&hist, observe_values[i & 63]);
}

/* Values at random over the buckets: a search's branches are then
 * mispredicted, as in an application's spread of latencies. */
static void
op_observe12_random(long n)
{
	for (long i = 0; i < n; i++)
		shmet_histogram_observe(&hist, random_values[i & 4095]);
}

static const char *campaigns[64];

/*
 * Exemplars (writer/exemplar.c): one label, a W3C trace id of 32 hex
 * digits, as an application attaches to a call.  Out of line: the fork
 * list's lock, the slot's sequence lock, the label checks, 2 clock reads.
 */
static const char *const trace_name[1] = { "trace_id" };
static const char *const trace_value[1] = {
	"4bf92f3577b34da6a3ce929d0e0e4736"
};

static void
op_counter_inc_exemplar(long n)
{
	for (long i = 0; i < n; i++)
		shmet_counter_inc_exemplar(&counter, 1, trace_name,
					   trace_value);
}

static void
op_observe12_exemplar(long n)
{
	for (long i = 0; i < n; i++)
		shmet_histogram_observe_exemplar(&hist, observe_values[i & 63],
						 1, trace_name, trace_value);
}

static void
op_lookup2(long n)
{
	struct shmet_counter c;

	for (long i = 0; i < n; i++) {
		const char *v[2] = { campaigns[i & 63], "user-000042" };

		shmet_counter_labels(&fam2, &c, 2, v);
	}
}

static double
time_ns_per_op(bench_fn fn, long n)
{
	double t0 = now_s();

	fn(n);
	return (now_s() - t0) * 1e9 / (double)n;
}

static void
bench(const char *name, bench_fn fn, long n)
{
	double ns[MAX_RUNS];

	fn(n / 10);     /* warm up */
	for (int r = 0; r < runs; r++)
		ns[r] = time_ns_per_op(fn, n);
	bench_report(name, ns);
}

struct thread_arg {
	bench_fn fn;
	double ns;
};

static double
thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * Thread CPU time, not wall time: this 2-core machine is shared, and a
 * thread descheduled for another job would otherwise count the wait.
 * Cache-line contention stalls the thread on its core and so counts.
 */
/* The baselines, rseq counter inc and the atomic fallback, run by run in
 * turn (same-run ratios); with rseq, also the floor of any rseq add. */
static void
bench_baseline_and_inc(void)
{
	double ns[5][MAX_RUNS];
	int floor = bench_rseq_floor_ready();

	op_atomic(ops / 10);
	op_counter_inc(ops / 10);
	op_plain_shared(ops / 10);
	op_counter_inc_shared(ops / 10);
	if (floor)
		op_rseq_floor(ops / 10);
	for (int r = 0; r < runs; r++) {
		ns[0][r] = time_ns_per_op(op_atomic, ops);
		ns[1][r] = time_ns_per_op(op_counter_inc, ops);
		ns[2][r] = time_ns_per_op(op_plain_shared, ops);
		ns[3][r] = time_ns_per_op(op_counter_inc_shared, ops);
		if (floor)
			ns[4][r] = time_ns_per_op(op_rseq_floor, ops);
	}
	bench_report(ATOMIC_ROW, ns[0]);
	bench_report("counter inc (1 thread, rseq per-CPU)", ns[1]);
	bench_report("baseline: plain add on a MAP_SHARED cell", ns[2]);
	bench_report("counter inc (1 thread, atomic fallback)", ns[3]);
	if (floor)
		bench_report("baseline: minimal rseq add (by hand)", ns[4]);
}

static void *
thread_main(void *arg)
{
	struct thread_arg *a = arg;
	double t0;

	a->fn(ops / 10);        /* warm up (and attach this thread) */
	t0 = thread_cpu_s();
	a->fn(ops);
	a->ns = (thread_cpu_s() - t0) * 1e9 / (double)ops;
	return NULL;
}

/* nthreads fresh threads of one process on one handle: per-thread ns/op
 * (fresh threads, so each attaches as an application's would). */
static double
run_threads(bench_fn fn, int nthreads)
{
	pthread_t t[4];
	struct thread_arg a[4];
	double sum = 0;

	for (int i = 0; i < nthreads; i++) {
		a[i].fn = fn;
		pthread_create(&t[i], NULL, thread_main, &a[i]);
	}
	for (int i = 0; i < nthreads; i++) {
		pthread_join(t[i], NULL);
		sum += a[i].ns;
	}
	return sum / nthreads;
}

/*
 * 1 and 2 threads, per-CPU cells (rseq) and the atomic fallback on the
 * process block (the layout before per-CPU cells), interleaved run by run so that a change in the
 * machine's load hits all four alike.
 */
static void
bench_threads(const char *what, bench_fn own, bench_fn shared)
{
	double ns[4][MAX_RUNS];
	bench_fn fns[4] = { own, own, shared, shared };

	for (int r = 0; r < runs; r++)
		for (int k = 0; k < 4; k++)
			ns[k][r] = run_threads(fns[k], 1 + k % 2);
	for (int k = 0; k < 4; k++) {
		char *name = malloc(64);

		if (!name)
			exit(1);
		snprintf(name, 64, "%s, %d thread%s (%s)", what, 1 + k % 2,
			 k % 2 ? "s" : "", k < 2 ? "rseq per-CPU" : "atomic fallback");
		bench_report(name, ns[k]);
	}
}

/*
 * Two processes on one series: each writes its own block, so this should
 * cost what one process does.  Per-process ns/op through a shared page.
 */
static void
bench_two_processes(void)
{
	double ns[MAX_RUNS];
	double *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	for (int r = 0; r < runs; r++) {
		pid_t pid[2];

		for (int i = 0; i < 2; i++) {
			pid[i] = fork();
			if (pid[i] == 0) {
				/* The child has its own slot (atfork). */
				shared[i] = time_ns_per_op(op_counter_inc, ops);
				_exit(0);
			}
		}
		for (int i = 0; i < 2; i++)
			waitpid(pid[i], NULL, 0);
		ns[r] = (shared[0] + shared[1]) / 2;
	}
	bench_report("counter inc, 2 processes (same series)", ns);
}

static void
setup(void)
{
	static const char *const labels[] = { "campaign_id", "user_id" };
	static const double bounds12[] = { 0.005, 0.01, 0.025, 0.05, 0.1,
					   0.25,  0.5,  1,     2.5,  5,
					   10,    30 };
	struct shmet_options o;
	struct shmet_family f;

	snprintf(segname, sizeof segname, "/shmet-bench-%d", (int)getpid());
	memset(&o, 0, sizeof o);
	o.name = segname;
	o.max_writers = 8;
	o.cells_per_block = 65536;
	if (shmet_open(&seg, &o) < 0) {
		fprintf(stderr, "bench: %s\n", shmet_last_error(&seg));
		exit(1);
	}
	shmet_counter_family(&seg, &f, "bench_total", "b", 2, labels);
	shmet_counter_labels(&f, &counter, SHMET_VALUES("c1", "u1"));
	shmet_gauge_new(&seg, &gauge, "bench_gauge", "g", 0);
	shmet_histogram_new(&seg, &hist, "bench_seconds", "h", 12, bounds12);
	shmet_counter_family(&seg, &fam2, "lookup_total", "l", 2, labels);
	for (int i = 0; i < 64; i++) {
		char *name = malloc(32);
		struct shmet_counter c;
		const char *v[2];

		snprintf(name, 32, "campaign-%06d", i * 7919);
		campaigns[i] = name;
		v[0] = name;
		v[1] = "user-000042";
		shmet_counter_labels(&fam2, &c, 2, v);
		observe_values[i] = bounds12[i % 12] * 0.9 + (i / 12) * 0.001;
	}
	for (uint32_t i = 0, x = 12345; i < 4096; i++) {
		x = x * 1103515245u + 12345u;   /* a fixed LCG */
		random_values[i] = bounds12[(x >> 16) % 12] *
				   (0.5 + (double)((x >> 4) & 1023) / 2048);
	}
	/* The plain-add baseline: a cell of our MAP_SHARED value block. */
	shared_plain = (volatile uint64_t *)(void *)&seg.block[60000];
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		runs = atoi(argv[1]);
	if (argc > 2)
		ops = atol(argv[2]);
	if (runs < 1 || runs > MAX_RUNS || ops < 1000) {
		fprintf(stderr, "usage: bench-writer [runs 1-64] [ops >= 1000]\n");
		return 2;
	}
	bench_set_runs(runs);
	setup();
	bench_baseline_and_inc();
	bench_threads("counter inc", op_counter_inc, op_counter_inc_shared);
	bench_two_processes();
	bench("counter add_double", op_counter_add_double, ops);
	bench("gauge set", op_gauge_set, ops);
	bench("histogram observe, 12 buckets", op_observe12, ops);
	bench("observe 12, values at random", op_observe12_random, ops);
	bench_threads("observe 12", op_observe12, op_observe12_shared);
	bench("lookup existing series, 2 labels", op_lookup2, ops / 10);
	bench("counter inc with an exemplar (1 label)",
	      op_counter_inc_exemplar, ops / 20);
	bench("observe 12 with an exemplar (1 label)", op_observe12_exemplar,
	      ops / 20);
	bench_scaling(&counter, runs, ops / 2);

	bench_print_rows();
	printf("runs: %d, ops per run: %ld\n", runs, ops);
	printf("ratio counter inc (rseq) / atomic add: %.2f\n",
	       bench_median("counter inc (1 thread, rseq per-CPU)") /
		       bench_median(ATOMIC_ROW));
	printf("ratio counter inc (rseq) / plain shared add: %.2f\n",
	       bench_median("counter inc (1 thread, rseq per-CPU)") /
		       bench_median("baseline: plain add on a MAP_SHARED cell"));
	if (bench_median("baseline: minimal rseq add (by hand)") > 0)
		printf("ratio minimal rseq add / plain shared add: %.2f\n",
		       bench_median("baseline: minimal rseq add (by hand)") /
			       bench_median("baseline: plain add on a "
					    "MAP_SHARED cell"));
	printf("ratio counter inc (atomic fallback) / atomic add: %.2f\n",
	       bench_median("counter inc (1 thread, atomic fallback)") /
		       bench_median(ATOMIC_ROW));
	printf("ratio counter inc 2 threads / 1 thread (rseq per-CPU): %.2f\n",
	       bench_median("counter inc, 2 threads (rseq per-CPU)") /
		       bench_median("counter inc, 1 thread (rseq per-CPU)"));
	printf("ratio counter inc 2 threads / 1 thread (atomic fallback): %.2f\n",
	       bench_median("counter inc, 2 threads (atomic fallback)") /
		       bench_median("counter inc, 1 thread (atomic fallback)"));
	printf("ratio observe 12 2 threads / 1 thread (rseq per-CPU): %.2f\n",
	       bench_median("observe 12, 2 threads (rseq per-CPU)") /
		       bench_median("observe 12, 1 thread (rseq per-CPU)"));
	printf("ratio observe 12 2 threads / 1 thread (atomic fallback): %.2f\n",
	       bench_median("observe 12, 2 threads (atomic fallback)") /
		       bench_median("observe 12, 1 thread (atomic fallback)"));
	bench_scaling_ratios();
	shmet_close(&seg);
	shmet_unlink(segname);
	return 0;
}
