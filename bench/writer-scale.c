/*
 * bench-writer's scaling rows (issue 22): N threads of one process, and N
 * single-threaded processes, all incrementing one counter series, for
 * N = 1, 2, 4 and 8 (more than this machine's CPUs).  Each row is CPU
 * time per increment (the thread's or process's own CPU clock, user and
 * system), averaged over the N writers: on a shared 2-core machine a
 * writer waiting for a CPU costs no CPU, while one stalled on a cache
 * line that others write does.  The rows run interleaved, run by run, so
 * a change in the machine's load hits all alike; ratios to N = 1 are
 * printed at the end.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-writer.h"

#define SCALE_MAX 8

static const struct shmet_counter *scale_counter;
static long scale_ops;

static double
cpu_s(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Count scale_ops on the series; CPU ns per op on this clock. */
static double
count_cpu_ns(clockid_t clock)
{
	double t0;

	for (long i = 0; i < scale_ops / 10; i++)       /* warm up */
		shmet_counter_inc(scale_counter);
	t0 = cpu_s(clock);
	for (long i = 0; i < scale_ops; i++)
		shmet_counter_inc(scale_counter);
	return (cpu_s(clock) - t0) * 1e9 / (double)scale_ops;
}

static void *
scale_thread(void *arg)
{
	*(double *)arg = count_cpu_ns(CLOCK_THREAD_CPUTIME_ID);
	return NULL;
}

static double
run_threads(int n)
{
	pthread_t t[SCALE_MAX];
	double ns[SCALE_MAX], sum = 0;

	for (int i = 0; i < n; i++)
		pthread_create(&t[i], NULL, scale_thread, &ns[i]);
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		sum += ns[i];
	}
	return sum / n;
}

/* Children of this process: each takes its own writer slot (atfork). */
static double
run_processes(int n, double *shared)
{
	pid_t pid[SCALE_MAX];
	double sum = 0;

	for (int i = 0; i < n; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			shared[i] = count_cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
			_exit(0);
		}
	}
	for (int i = 0; i < n; i++) {
		waitpid(pid[i], NULL, 0);
		sum += shared[i];
	}
	return sum / n;
}

void
bench_scaling(const struct shmet_counter *c, int runs, long ops)
{
	static const int ns_of[] = { 1, 2, 4, 8 };
	double ns[8][MAX_RUNS];
	double *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (shared == MAP_FAILED)
		exit(1);
	scale_counter = c;
	scale_ops = ops;
	for (int r = 0; r < runs; r++)
		for (int k = 0; k < 4; k++) {
			ns[k][r] = run_threads(ns_of[k]);
			ns[4 + k][r] = run_processes(ns_of[k], shared);
		}
	for (int k = 0; k < 8; k++) {
		char *name = malloc(64);

		if (!name)
			exit(1);
		snprintf(name, 64, "counter inc, %d %s%s, CPU per op (one series)",
			 ns_of[k % 4], k < 4 ? "thread" : "process",
			 ns_of[k % 4] > 1 ? (k < 4 ? "s" : "es") : "");
		bench_report(name, ns[k]);
	}
	munmap(shared, 4096);
}

void
bench_scaling_ratios(void)
{
	static const int ns_of[] = { 2, 4, 8 };
	double one = bench_median("counter inc, 1 thread, CPU per op (one series)");

	for (int k = 0; k < 3; k++) {
		char t[64], p[64];

		snprintf(t, sizeof t, "counter inc, %d threads, CPU per op (one series)",
			 ns_of[k]);
		snprintf(p, sizeof p, "counter inc, %d processes, CPU per op (one series)",
			 ns_of[k]);
		printf("ratio CPU per op %d threads / 1 thread: %.2f\n", ns_of[k],
		       bench_median(t) / one);
		printf("ratio CPU per op %d processes / 1 thread: %.2f\n", ns_of[k],
		       bench_median(p) / one);
	}
}
