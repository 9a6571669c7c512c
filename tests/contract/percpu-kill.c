/*
 * kill -9 mid-run (docs/DESIGN.md, "Per-CPU cells", what a kill leaves):
 * PROCS processes of THREADS threads each count on one series in batches
 * of BATCH increments and, after each batch, report the thread's
 * completed increments through a pipe (one atomic write).  Once every
 * thread has reported at least twice, every process is killed with
 * SIGKILL.  A completed commit is in its cell and an aborted section wrote
 * nothing, so the total lies between the increments reported and those
 * plus one batch in flight per thread.  Run with rseq and with
 * SHMETRICS_NO_RSEQ=1.
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

int
main(void)
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
	printf("%s\n", failures ? "FAIL" : "ok");
	return failures ? 1 : 0;
}
