/*
 * kill -9 mid-run (docs/DESIGN.md, "Per-CPU cells", what a kill leaves).
 * Run with rseq and with SHMETRICS_NO_RSEQ=1.
 *
 * 1. Anywhere: PROCS processes of THREADS threads each count on one
 *    series in batches of BATCH increments and, after each batch, report
 *    the thread's completed increments through a pipe (one atomic write).
 *    Once every thread has reported at least twice, every process is
 *    killed with SIGKILL, wherever it is.  A completed commit is in its
 *    cell and an aborted section wrote nothing, so the total lies between
 *    the increments reported and those plus one batch in flight per
 *    thread.
 * 2. Exact: a fleet of F processes x T threads x N increments each (16 x
 *    4 x 200,000 here; `percpu-kill --long`, from tools/run-reliability.sh
 *    --long: 16 x 4 x 10,000,000), where every process forks a child from
 *    a counting thread a third of the way through, which counts N / 4 more
 *    in its one thread, and a quarter of the processes and of the children
 *    are killed with SIGKILL mid-run while the rest count on.  Each thread
 *    records its completed increments after every batch in a private
 *    shared page; a victim stops at a batch boundary (a different one for
 *    each), says so, and is killed there, so what it completed is known to
 *    the increment.  The writer slots are fewer than the processes, so
 *    children take over the slots of the killed (and some find none and
 *    count in the fallback block).  The scrape must equal the sum of every
 *    thread's record exactly.  SHMETRICS_TEST_QUICK=1 divides N by 10.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmetrics.h>

#include "percpu.h"
#include "snapshot.h"

#define PROCS 4
#define THREADS 3
#define BATCH 1000

struct report {
	int32_t proc, thread;
	int64_t done;
};

static struct shmet_segment seg;
static struct shmet_counter ctr;
static int report_fd;
static int me;

static void *
counting(void *arg)
{
	struct report r = { me, (int32_t)(intptr_t)arg, 0 };

	for (;;) {
		for (int i = 0; i < BATCH; i++)
			shmet_counter_inc(&ctr);
		r.done += BATCH;
		/* < PIPE_BUF: one atomic write */
		if (write(report_fd, &r, sizeof r) != (ssize_t)sizeof r)
			_exit(3);
	}
	return NULL;
}

static void
worker(void)
{
	pthread_t t[THREADS];

	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, counting, (void *)i);
	for (;;)
		pause();                /* until SIGKILL */
}

static int
bounded_kill(void)
{
	struct shmet_options o = { 0 };
	int64_t done[PROCS][THREADS];
	int reports[PROCS][THREADS];
	pid_t pids[PROCS];
	struct snapshot snap;
	struct report r;
	char name[64];
	int p[2], ready = 0, failures = 0;
	uint64_t got, lo = 0, hi;

	snprintf(name, sizeof name, "/shmet-pckill-%d", (int)getpid());
	o.name = name;
	o.max_writers = 16;
	o.cells_per_block = 1024;
	o.max_series = 16;
	if (pipe(p) < 0 || shmet_open(&seg, &o) < 0 ||
	    shmet_counter_new(&seg, &ctr, "k_total", "k") < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&seg));
		return 1;
	}
	memset(done, 0, sizeof done);
	memset(reports, 0, sizeof reports);
	for (int i = 0; i < PROCS; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(p[0]);
			report_fd = p[1];
			me = i;
			worker();
		}
	}
	close(p[1]);
	/* every thread at least twice: all are counting when the kill lands */
	while (ready < PROCS * THREADS &&
	       read(p[0], &r, sizeof r) == (ssize_t)sizeof r) {
		if (r.proc < 0 || r.proc >= PROCS || r.thread < 0 ||
		    r.thread >= THREADS)
			return 1;
		done[r.proc][r.thread] = r.done;
		if (++reports[r.proc][r.thread] == 2)
			ready++;
	}
	for (int i = 0; i < PROCS; i++)
		kill(pids[i], SIGKILL);
	for (int i = 0; i < PROCS; i++) {
		int status;

		if (waitpid(pids[i], &status, 0) != pids[i] ||
		    !WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
			fprintf(stderr, "worker %d did not die of SIGKILL\n", i);
			failures++;
		}
	}
	/* the reports written before the kill */
	while (read(p[0], &r, sizeof r) == (ssize_t)sizeof r)
		if (r.proc >= 0 && r.proc < PROCS && r.thread >= 0 &&
		    r.thread < THREADS && r.done > done[r.proc][r.thread])
			done[r.proc][r.thread] = r.done;
	for (int i = 0; i < PROCS; i++)
		for (int t = 0; t < THREADS; t++)
			lo += (uint64_t)done[i][t];
	hi = lo + (uint64_t)PROCS * THREADS * BATCH;
	snapshot_take(name, &snap);
	got = snapshot_cell(&snap, percpu_cell_index(&seg, ctr.cell));
	snapshot_free(&snap);
	printf("killed %d processes x %d threads: counted %llu, reported "
	       "%llu, at most %llu\n", PROCS, THREADS,
	       (unsigned long long)got, (unsigned long long)lo,
	       (unsigned long long)hi);
	if (ready != PROCS * THREADS || got < lo || got > hi) {
		fprintf(stderr, "FAIL: the total is outside what was reported\n");
		failures++;
	}
	shmet_close(&seg);
	shmet_unlink(name);
	return failures;
}

/* ---------------------------------------------------------------- */
/* 2. Exact                                                          */

#define FLEET_MAX 16                    /* processes */
#define FLEET_THREADS_MAX 4
#define FLEET_BATCH 1000

/*
 * The private shared page (MAP_SHARED | MAP_ANONYMOUS, made before the
 * first fork): per process (0..F-1) and per child (F..2F-1), each
 * thread's completed increments, how many of its threads stopped, and its
 * pid.  A thread stores its record after its batch's increments (program
 * order; the parent reads it after the process is dead, or after it saw
 * the thread's stop with acquire), so the record never runs ahead of the
 * cells.
 */
struct fleet {
	_Atomic int64_t done[2 * FLEET_MAX][FLEET_THREADS_MAX];
	_Atomic int stopped[2 * FLEET_MAX];
	_Atomic int pid[2 * FLEET_MAX];
};

static struct fleet *fleet;
static int fleet_procs, fleet_threads;
static long fleet_incs;

/* A quarter of the processes, and of the children (of others), die. */
static int
fleet_victim(int p)
{
	return p < fleet_procs ? p % 4 == 1 : (p - fleet_procs) % 4 == 2;
}

/* Where victim p stops: a batch boundary between 1/8 and 7/8 of n. */
static long
fleet_stop_at(int p, int t, long n)
{
	long batches = n / FLEET_BATCH;

	return (batches / 8 + (long)(p * 7 + t * 3) % (batches * 3 / 4 + 1)) *
	       FLEET_BATCH;
}

/* Count n in batches as thread t of fleet process p; a victim stops. */
static void
fleet_count(int p, int t, long n, long fork_at, pid_t *child)
{
	long stop = fleet_victim(p) ? fleet_stop_at(p, t, n) : -1;

	for (long done = 0; done < n; done += FLEET_BATCH) {
		if (done == stop) {
			/* Release: our record (stored before) is seen by
			 * whoever sees the stop.  Then wait for the kill. */
			atomic_fetch_add_explicit(&fleet->stopped[p], 1,
						  memory_order_release);
			for (;;)
				pause();
		}
		if (done == fork_at) {
			*child = fork();
			if (*child == 0) {
				int c = fleet_procs + p;

				/* Relaxed: read after the parent sees the
				 * child's stop (acquire) or death. */
				atomic_store_explicit(&fleet->pid[c],
						      (int)getpid(),
						      memory_order_relaxed);
				fleet_count(c, 0, n / 4, -1, NULL);
				_exit(0);
			}
		}
		for (int i = 0; i < FLEET_BATCH; i++)
			shmet_counter_inc(&ctr);
		/* Relaxed: ordered by the stop's release or by our death. */
		atomic_store_explicit(&fleet->done[p][t], done + FLEET_BATCH,
				      memory_order_relaxed);
	}
}

struct fleet_thread {
	int p, t;
	pid_t child;
};

static void *
fleet_thread_main(void *arg)
{
	struct fleet_thread *ft = arg;

	fleet_count(ft->p, ft->t, fleet_incs,
		    ft->t == 0 ? fleet_incs / FLEET_BATCH / 3 * FLEET_BATCH
			       : -1,
		    &ft->child);
	return NULL;
}

/* Fleet process p: T counting threads; thread 0 forks the child. */
static void
fleet_process(int p)
{
	struct fleet_thread ft[FLEET_THREADS_MAX];
	pthread_t th[FLEET_THREADS_MAX];
	int status = 0;

	for (int t = 0; t < fleet_threads; t++) {
		ft[t].p = p;
		ft[t].t = t;
		ft[t].child = -1;
		if (pthread_create(&th[t], NULL, fleet_thread_main, &ft[t]))
			_exit(2);
	}
	for (int t = 0; t < fleet_threads; t++)
		pthread_join(th[t], NULL);
	/* a child that was a victim died of SIGKILL: the parent reaps it */
	if (ft[0].child > 0 && waitpid(ft[0].child, &status, 0) == ft[0].child &&
	    !(WIFEXITED(status) && WEXITSTATUS(status) == 0) &&
	    !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
		_exit(3);
	_exit(0);
}

/* Kill every victim once all its threads stopped; 0 when none is left. */
static int
fleet_kill_stopped(int *killed)
{
	int left = 0;

	for (int p = 0; p < 2 * fleet_procs; p++) {
		int want = p < fleet_procs ? fleet_threads : 1;
		pid_t pid;

		if (!fleet_victim(p) || killed[p])
			continue;
		/* Acquire: pairs with the stop's release, so the records
		 * and the pid are complete. */
		if (atomic_load_explicit(&fleet->stopped[p],
					 memory_order_acquire) < want) {
			left++;
			continue;
		}
		pid = atomic_load_explicit(&fleet->pid[p], memory_order_relaxed);
		if (pid <= 0 || kill(pid, SIGKILL) < 0) {
			fprintf(stderr, "FAIL: cannot kill fleet process %d\n", p);
			exit(1);
		}
		killed[p] = 1;
	}
	return left;
}

static int
exact_fleet(int procs, int threads, long incs)
{
	struct shmet_options o = { 0 };
	struct timespec ms = { 0, 1000000 };
	int killed[2 * FLEET_MAX] = { 0 }, nkilled = 0, failures = 0, status;
	struct snapshot snap;
	uint64_t want = 0, got;
	char name[64];
	pid_t pid;

	fleet_procs = procs;
	fleet_threads = threads;
	fleet_incs = incs;
	fleet = mmap(NULL, sizeof *fleet, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (fleet == MAP_FAILED)
		return 1;
	/* orphans (children of killed processes) are ours to reap */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	snprintf(name, sizeof name, "/shmet-pckill2-%d", (int)getpid());
	o.name = name;
	o.max_writers = (uint32_t)procs + 2;    /* fewer than processes */
	o.cells_per_block = 1024;
	o.max_series = 16;
	if (shmet_open(&seg, &o) < 0 ||
	    shmet_counter_new(&seg, &ctr, "k2_total", "k") < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&seg));
		return 1;
	}
	for (int p = 0; p < procs; p++) {
		pid = fork();
		if (pid == 0)
			fleet_process(p);
		if (pid < 0)
			return 1;
		atomic_store_explicit(&fleet->pid[p], (int)pid,
				      memory_order_relaxed);
	}
	/* no wall-clock bound: the test's timeout is the only one */
	while (fleet_kill_stopped(killed) > 0)
		nanosleep(&ms, NULL);
	/* every process, child and orphan, exited or killed */
	while ((pid = wait(&status)) > 0) {
		int bad = !(WIFEXITED(status) && WEXITSTATUS(status) == 0) &&
			  !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

		if (bad) {
			fprintf(stderr, "FAIL: process %d ended with status "
				"%#x\n", (int)pid, status);
			failures++;
		}
	}
	for (int p = 0; p < 2 * procs; p++) {
		nkilled += killed[p];
		for (int t = 0; t < threads; t++)
			want += (uint64_t)atomic_load_explicit(
				&fleet->done[p][t], memory_order_relaxed);
	}
	snapshot_take(name, &snap);
	got = snapshot_cell(&snap, percpu_cell_index(&seg, ctr.cell));
	snapshot_free(&snap);
	printf("%d processes x %d threads x %ld (+ %d forks x %ld), %d killed "
	       "mid-run, rseq %s: counted %llu, completed %llu\n", procs,
	       threads, incs, procs, incs / 4, nkilled,
	       percpu_forced_off() ? "off" : "on", (unsigned long long)got,
	       (unsigned long long)want);
	if (got != want) {
		fprintf(stderr, "FAIL: the total is not exact\n");
		failures++;
	}
	shmet_close(&seg);
	shmet_unlink(name);
	munmap(fleet, sizeof *fleet);
	return failures;
}

int
main(int argc, char **argv)
{
	long incs = 200000;
	int failures;

	if (argc > 1 && !strcmp(argv[1], "--long"))
		incs = 10000000;
	else if (getenv("SHMETRICS_TEST_QUICK"))
		incs /= 10;
	failures = bounded_kill();
	failures += exact_fleet(FLEET_MAX, FLEET_THREADS_MAX, incs);
	printf("%s\n", failures ? "FAIL" : "ok");
	return failures ? 1 : 0;
}
