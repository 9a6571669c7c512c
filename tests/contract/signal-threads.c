/*
 * Counting from a signal handler while threads come and go: a 0.5 ms
 * interval timer's handler increments a counter, and 20,000 threads
 * each count WORK_INCS times and exit (so handlers land in a thread's
 * first write, its rseq area being resolved, and inside rseq critical
 * sections, which the kernel aborts: the interrupted add must then count
 * once, in the fallback, and the handler's own add in its CPU's cell).
 * The process must neither crash nor hang, and both totals must be exact;
 * and the handler leaves errno as it found it (TSan checks that).
 * Run with and without SHMETRICS_NO_RSEQ=1.
 * SHMETRICS_TEST_QUICK=1 runs 2,000 threads (for the sanitizers).
 */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <shmetrics.h>

#include "percpu.h"
#include "snapshot.h"

static struct shmet_segment seg;
static struct shmet_counter sigs, work;
/* Handler runs, counted apart.  Lock-free atomic: the process-directed
 * timer signal runs the handler in any thread. */
static atomic_int handled;
static char name[64];

static void
on_timer(int signo)
{
	(void)signo;
	shmet_counter_inc(&sigs);
	atomic_fetch_add_explicit(&handled, 1, memory_order_relaxed);
}

#define WORK_INCS 100

static void *
worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < WORK_INCS; i++)
		shmet_counter_inc(&work);
	return NULL;
}

int
main(void)
{
	struct shmet_options o = { 0 };
	struct itimerval on = { { 0, 500 }, { 0, 500 } }, off;
	struct sigaction sa;
	sigset_t alrm;
	int threads = getenv("SHMETRICS_TEST_QUICK") ? 2000 : 20000;
	uint64_t s, w;

	snprintf(name, sizeof name, "/shmet-sigthr-%d", (int)getpid());
	o.name = name;
	o.max_writers = 16;
	o.cells_per_block = 1024;
	o.max_series = 16;
	if (shmet_open(&seg, &o) < 0 ||
	    shmet_counter_new(&seg, &sigs, "sig_handled_total", "s") < 0 ||
	    shmet_counter_new(&seg, &work, "sig_work_total", "w") < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&seg));
		return 1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_timer;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &on, NULL);
	for (int i = 0; i < threads; i++) {
		pthread_t t;

		while (pthread_create(&t, NULL, worker, NULL) != 0)
			;
		pthread_join(t, NULL);
	}
	memset(&off, 0, sizeof off);
	setitimer(ITIMER_REAL, &off, NULL);
	/* a timer signal still pending lands before the count is read */
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &alrm, NULL);
	{
		struct snapshot snap;

		snapshot_take(name, &snap);
		s = snapshot_cell(&snap, percpu_cell_index(&seg, sigs.cell));
		w = snapshot_cell(&snap, percpu_cell_index(&seg, work.cell));
		snapshot_free(&snap);
	}
	printf("%d threads, %d handler runs: counted %llu and %llu\n", threads,
	       atomic_load(&handled), (unsigned long long)w, (unsigned long long)s);
	shmet_close(&seg);
	shmet_unlink(name);
	if (w != (uint64_t)threads * WORK_INCS || s != (uint64_t)atomic_load(&handled) ||
	    atomic_load(&handled) == 0) {
		printf("FAIL\n");
		return 1;
	}
	printf("ok\n");
	return 0;
}
