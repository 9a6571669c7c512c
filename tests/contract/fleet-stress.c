/*
 * A fleet at once (writer/cells.c, writer/exemplar.c and the slot
 * protocols around them): worker processes of THREADS threads each start,
 * register gauges of new label values (gauge chunks), set them, count with
 * exemplars into shared counters and a shared histogram (exemplar slots),
 * and end four ways while others start:
 *   exit      close after a random amount of work;
 *   point     SIGKILL themselves at a random visit of a random step of the
 *             two protocols (test points; in a build without them, they
 *             exit);
 *   killed    SIGKILLed by the harness after a random 0-30 ms;
 *   survive   the last SURVIVORS started do their work and wait.
 * A reader process scrapes all along and checks every exemplar shown.
 * At the end, with only the survivors left:
 *   - every gauge of a survivor is exactly its last set, every other one
 *     0 (livesum: a dead or closed writer's value is not shown);
 *   - the counter of workers that exit or survive ("kept") is exactly
 *     their increments; the counter of the others ("doomed") and the
 *     histogram lie between the calls that returned and those that
 *     started (a thread killed inside a call may or may not have
 *     counted), each in-flight call at most one;
 *   - no two series share a cell, none past cells_used or in the gauge
 *     chunk's free range;
 *   - no exemplar shown, during the run or at the end, is torn or
 *     another series' (each derives labels and value from one number).
 * Prints per repetition the workers by fate, the writes, the exemplars
 * the reader checked and those dropped as -EBUSY.
 *
 * Usage: fleet-stress [reps [workers [seconds-per-rep]]]
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmetrics.h>

#include "probe.h"

#define THREADS 3
#define CONCURRENT 8
#define SURVIVORS 4
#define MAX_WORKERS 512
#define MAX_GAUGES 8            /* per thread */

enum fate { EXIT, POINT, KILLED, SURVIVE };
static const char *const fate_names[] = { "exit", "point", "killed",
					  "survive" };

/* What each worker's threads did, in memory shared with the harness. */
struct tally {
	atomic_ullong started, done;    /* counter calls (kept or doomed) */
	atomic_ullong hstarted, hdone;  /* histogram calls */
	atomic_uint gauges;             /* gauges registered and last set */
	atomic_ullong busy;             /* exemplars dropped: -EBUSY */
};
struct worker {
	atomic_int pid, fate, ready;
	struct tally t[THREADS];
};
struct shared {
	struct worker w[MAX_WORKERS];
	atomic_ullong checked, torn;    /* by the reader */
	atomic_int stop_reader;
};

static struct shared *sh;
static char segname[64];
static int failures;

static int
check(int cond, const char *what)
{
	if (!cond) {
		fprintf(stderr, "FAIL: %s\n", what);
		failures++;
	}
	return cond;
}

struct fams {
	struct shmet_segment seg;
	struct shmet_family g, c;
	struct shmet_histogram h;
};

static const char *const k_names[] = { "k" };
static const double bounds[] = { 10.0, 1e18 };

static int
open_fams(struct fams *f)
{
	struct shmet_options o = { .name = segname, .max_writers = 32,
				   .max_families = 16, .max_series = 16384,
				   .max_series_per_family = 16000,
				   .cells_per_block = 65536,
				   .string_bytes = 1 << 20 };

	if (shmet_open(&f->seg, &o) != 0)
		return -1;
	if (shmet_gauge_family(&f->seg, &f->g, "fs_gauge", "g",
			       SHMET_GAUGE_LIVESUM, 1, k_names) != 0 ||
	    shmet_counter_family(&f->seg, &f->c, "fs_calls_total", "c", 1,
				 k_names) != 0 ||
	    shmet_histogram_new(&f->seg, &f->h, "fs_seconds", "h", 2,
				bounds) != 0) {
		shmet_close(&f->seg);
		return -1;
	}
	return 0;
}

static double
value_of(unsigned w, unsigned t, unsigned i, unsigned round)
{
	return (double)(w * 1000 + t * 100 + i) + round * 0.25;
}

/* ------------------------------------------------------------------ */
/* Workers                                                            */

static struct fams wf;
static unsigned me;
static int my_fate, my_rounds;

struct targ {
	unsigned t;
};

static void *
work(void *arg)
{
	unsigned t = ((struct targ *)arg)->t;
	struct tally *ty = &sh->w[me].t[t];
	struct shmet_counter c;
	const char *kind = my_fate == EXIT || my_fate == SURVIVE ? "kept"
								  : "doomed";
	unsigned i = 0;

	if (shmet_counter_labels(&wf.c, &c, 1, &kind) != 0)
		_exit(3);
	for (int r = 0; my_fate == KILLED || my_fate == POINT || r < my_rounds;
	     r++) {
		struct probe_ex x;
		uint64_t k = ((uint64_t)me << 24) | ((uint64_t)t << 20) |
			     (uint64_t)(r & 0xfffff);
		int rc;

		if (r > 4000)
			break;          /* a point that never came */
		if (r % 16 == 15) {
			/* a worker lives some ms, as the fleet around it */
			struct timespec ts = { 0, 100000 };

			nanosleep(&ts, NULL);
		}
		if (i < MAX_GAUGES && r % 2 == 0) {
			struct shmet_gauge g;
			char key[32];
			const char *kp = key;

			snprintf(key, sizeof key, "w%ut%ui%u", me, t, i);
			if (shmet_gauge_labels(&wf.g, &g, 1, &kp) != 0)
				_exit(4);
			for (unsigned round = 0; round < 3; round++)
				shmet_gauge_set(&g, value_of(me, t, i, round));
			atomic_store(&ty->gauges, ++i);
		}
		probe_ex_make(&x, kind[0], k + 1);
		atomic_fetch_add(&ty->started, 1);
		rc = shmet_counter_inc_exemplar(&c, 2, x.names, x.values);
		atomic_fetch_add(&ty->done, 1);
		if (rc == -EBUSY)
			atomic_fetch_add(&ty->busy, 1);
		else if (rc != 0)
			_exit(5);
		probe_ex_make(&x, 'h', k + 1);
		atomic_fetch_add(&ty->hstarted, 1);
		rc = shmet_histogram_observe_exemplar(&wf.h, (double)(k + 1), 2,
						      x.names, x.values);
		atomic_fetch_add(&ty->hdone, 1);
		if (rc == -EBUSY)
			atomic_fetch_add(&ty->busy, 1);
		else if (rc != 0)
			_exit(6);
	}
	return NULL;
}

static int
worker(void)
{
	pthread_t th[THREADS];
	struct targ a[THREADS];

	alarm(120);
	if (open_fams(&wf) != 0)
		return 2;
	for (unsigned t = 0; t < THREADS; t++) {
		a[t].t = t;
		if (pthread_create(&th[t], NULL, work, &a[t]) != 0)
			return 3;
	}
	for (unsigned t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	if (my_fate == SURVIVE) {
		atomic_store(&sh->w[me].ready, 1);
		for (;;)
			pause();        /* until the harness's SIGTERM */
	}
	shmet_close(&wf.seg);
	return 0;
}

static const char *const points[] = {
	"exemplar.reserved", "exemplar.locked", "exemplar.stored",
	"exemplar.shown", "cells.carved", "cells.installed", "cells.taken",
};

static pid_t
spawn(unsigned w, int fate)
{
	pid_t pid;
	char spec[64];

	/* chosen before the fork: rand() is the harness's */
	snprintf(spec, sizeof spec, "%s:kill:%d",
		 points[rand() % (int)(sizeof points / sizeof points[0])],
		 1 + rand() % 60);
	my_rounds = 20 + rand() % 400;
	pid = fork();
	if (pid == 0) {
		me = w;
		my_fate = fate;
		if (fate == POINT)
			setenv("SHMETRICS_TEST_POINT", spec, 1);
		_exit(worker());
	}
	atomic_store(&sh->w[w].pid, pid);
	atomic_store(&sh->w[w].fate, fate);
	return pid;
}

/* ------------------------------------------------------------------ */
/* The reader process                                                 */

static void
check_exemplars(const struct probe *p, int report)
{
	static const char *const kinds[] = { "kept", "doomed" };
	uint32_t hs = probe_series(p, "fs_seconds", NULL);
	uint64_t k;

	for (int i = 0; i < 2; i++) {
		uint32_t s = probe_series(p, "fs_calls_total", kinds[i]);
		int rc = probe_ex_shown_value(p, s, 0, kinds[i][0], 1.0, &k,
					      "scrape");

		if (rc < 0)
			atomic_fetch_add(&sh->torn, 1);
		else if (rc > 0)
			atomic_fetch_add(&sh->checked, 1);
	}
	for (uint32_t b = 0; b < 3; b++) {
		int rc = probe_ex_shown(p, hs, b, 'h', &k, "scrape");

		if (rc < 0)
			atomic_fetch_add(&sh->torn, 1);
		else if (rc > 0)
			atomic_fetch_add(&sh->checked, 1);
	}
	(void)report;
}

static int
reader(void)
{
	struct probe p;

	alarm(300);
	if (probe_open(&p, segname) != 0)
		return 2;
	while (!atomic_load(&sh->stop_reader)) {
		if (probe_collect(&p) != 0)
			return 3;
		check_exemplars(&p, 0);
	}
	probe_close(&p);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The harness                                                        */

static int
setup(void)
{
	struct fams f;

	if (open_fams(&f) != 0)
		return 2;
	shmet_close(&f.seg);
	return 0;
}

static void
final_check(unsigned nworkers)
{
	struct probe p;
	struct probe_cells c = probe_cells(segname);
	uint64_t kept = 0, dstarted = 0, ddone = 0, hstarted = 0, hdone = 0;
	uint64_t got_k, got_d, got_h, gauges_live = 0, gauges_dead = 0;
	const struct shmet_index_family *f;
	uint32_t ks, ds, hs;
	unsigned doomed = 0;
	char what[256];

	snprintf(what, sizeof what, "%u pairs of series share a cell, %u past "
		 "cells_used or in the chunk's free range (chunk [%u, %u), "
		 "cells_used %u)", c.shared, c.beyond, c.chunk_next,
		 c.chunk_end, c.cells_used);
	check(!c.shared && !c.beyond && c.chunk_next <= c.chunk_end &&
	      c.chunk_end <= c.cells_used, what);
	if (!check(probe_open(&p, segname) == 0, "no final reader"))
		return;
	for (unsigned w = 0; w < nworkers; w++)
		for (unsigned t = 0; t < THREADS; t++) {
			struct tally *ty = &sh->w[w].t[t];
			int fate = atomic_load(&sh->w[w].fate);

			if (fate == EXIT || fate == SURVIVE) {
				snprintf(what, sizeof what, "worker %u (%s) "
					 "thread %u: a call did not return",
					 w, fate_names[fate], t);
				check(atomic_load(&ty->started) ==
				      atomic_load(&ty->done), what);
				kept += atomic_load(&ty->done);
			} else {
				doomed += t == 0;
				dstarted += atomic_load(&ty->started);
				ddone += atomic_load(&ty->done);
			}
			hstarted += atomic_load(&ty->hstarted);
			hdone += atomic_load(&ty->hdone);
		}
	ks = probe_series(&p, "fs_calls_total", "kept");
	ds = probe_series(&p, "fs_calls_total", "doomed");
	hs = probe_series(&p, "fs_seconds", NULL);
	got_k = ks == UINT32_MAX ? 0 : shmet_values_counter_int(p.v, p.idx, ks);
	got_d = ds == UINT32_MAX ? 0 : shmet_values_counter_int(p.v, p.idx, ds);
	got_h = hs == UINT32_MAX ? 0 : shmet_values_hist_count(p.v, p.idx, hs);
	snprintf(what, sizeof what, "kept counter %llu, its calls %llu",
		 (unsigned long long)got_k, (unsigned long long)kept);
	check(got_k == kept, what);
	snprintf(what, sizeof what, "doomed counter %llu outside [%llu, %llu]",
		 (unsigned long long)got_d, (unsigned long long)ddone,
		 (unsigned long long)dstarted);
	check(got_d >= ddone && got_d <= dstarted, what);
	snprintf(what, sizeof what, "%llu calls in flight, more than one a "
		 "thread of the %u doomed workers", (unsigned long long)
		 (dstarted - ddone), doomed);
	check(dstarted - ddone <= (uint64_t)THREADS * doomed, what);
	snprintf(what, sizeof what, "histogram count %llu outside [%llu, %llu]",
		 (unsigned long long)got_h, (unsigned long long)hdone,
		 (unsigned long long)hstarted);
	check(got_h >= hdone && got_h <= hstarted, what);
	f = shmet_index_find(p.idx, "fs_gauge");
	for (uint32_t s = 0; f && s < f->series_count; s++) {
		const struct shmet_index_series *se =
			shmet_index_series(p.idx, f->first_series + s);
		unsigned w, t, i;
		double got = -1, want = 0;
		char key[48];

		snprintf(key, sizeof key, "%.*s", (int)se->label_values[0].len,
			 se->label_values[0].ptr);
		if (sscanf(key, "w%ut%ui%u", &w, &t, &i) != 3 ||
		    w >= nworkers || t >= THREADS) {
			check(0, "a gauge nobody registered");
			continue;
		}
		shmet_values_gauge(p.v, f->first_series + s, &got);
		if (atomic_load(&sh->w[w].fate) == SURVIVE) {
			want = value_of(w, t, i, 2);
			gauges_live++;
		} else {
			gauges_dead++;
		}
		snprintf(what, sizeof what, "fs_gauge{k=\"%s\"} = %.2f, want "
			 "%.2f (%s)", key, got, want,
			 fate_names[atomic_load(&sh->w[w].fate)]);
		check(got == want, what);
	}
	/* every survivor's gauge is there */
	for (unsigned w = 0; w < nworkers; w++) {
		uint64_t n = 0;

		if (atomic_load(&sh->w[w].fate) != SURVIVE)
			continue;
		for (unsigned t = 0; t < THREADS; t++)
			n += atomic_load(&sh->w[w].t[t].gauges);
		gauges_live -= n;
	}
	check(gauges_live == 0, "a survivor's gauge is missing");
	check_exemplars(&p, 1);
	probe_close(&p);
	printf("  counters: kept %llu exact; doomed %llu in [%llu, %llu]; "
	       "histogram %llu in [%llu, %llu]; cells_used %u, %u series; "
	       "%llu gauges of the dead read 0\n",
	       (unsigned long long)got_k, (unsigned long long)got_d,
	       (unsigned long long)ddone, (unsigned long long)dstarted,
	       (unsigned long long)got_h, (unsigned long long)hdone,
	       (unsigned long long)hstarted, c.cells_used, c.series,
	       (unsigned long long)gauges_dead);
}

static void
one_rep(int rep, unsigned total, double seconds)
{
	unsigned started = 0, running = 0, by_fate[4] = { 0 };
	pid_t pids[MAX_WORKERS], rpid;
	uint64_t kill_at[MAX_WORKERS];
	uint64_t end = probe_now_ns() + (uint64_t)(seconds * 1e9);
	/* starts spread over the time: a dead writer's exemplar lock
	 * (SHMET_REUSE_NS) is taken over while others still run */
	uint64_t every = (uint64_t)(seconds * 1e9) / total, next = 0;
	unsigned long long busy = 0;
	int st;

	memset(sh, 0, sizeof *sh);
	snprintf(segname, sizeof segname, "/shmet-kill-fleet-%d", (int)getpid());
	shmet_unlink(segname);
	{
		pid_t s = fork();

		if (s == 0)
			_exit(setup());
		waitpid(s, &st, 0);
		if (!check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "setup"))
			return;
	}
	rpid = fork();
	if (rpid == 0)
		_exit(reader());
	/* start workers, CONCURRENT at once, until total or the time */
	while (started < total || running > 0) {
		pid_t pid;

		while (running < CONCURRENT && started < total &&
		       probe_now_ns() >= next &&
		       (probe_now_ns() < end || started + SURVIVORS >= total)) {
			int fate = started + SURVIVORS >= total
					   ? SURVIVE
					   : rand() % 3;

			/* survivors come last: the others end around them */
			if (fate != SURVIVE && probe_now_ns() >= end)
				break;
			pids[started] = spawn(started, fate);
			kill_at[started] = probe_now_ns() +
					   (uint64_t)(rand() % 30) * 1000000u;
			by_fate[fate]++;
			next = probe_now_ns() + every;
			started++;
			running++;
		}
		if (probe_now_ns() >= end && started < total - SURVIVORS)
			total = started + SURVIVORS;    /* out of time */
		for (unsigned w = 0; w < started; w++) {
			int fate = atomic_load(&sh->w[w].fate);

			if (fate == KILLED && pids[w] > 0 &&
			    probe_now_ns() >= kill_at[w]) {
				kill(pids[w], SIGKILL);
				kill_at[w] = UINT64_MAX;
			}
			if (fate == SURVIVE && pids[w] > 0 &&
			    atomic_load(&sh->w[w].ready)) {
				running--;
				pids[w] = -pids[w];     /* waits at the end */
			}
		}
		while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
			for (unsigned w = 0; w < started; w++)
				if (pids[w] == pid) {
					int fate = atomic_load(&sh->w[w].fate);
					char what[96];

					snprintf(what, sizeof what, "worker %u "
						 "(%s) ended with status %d", w,
						 fate_names[fate], st);
					if (fate == EXIT || fate == SURVIVE)
						check(WIFEXITED(st) &&
						      WEXITSTATUS(st) == 0,
						      what);
					else
						check(WIFEXITED(st) ?
						      WEXITSTATUS(st) == 0 :
						      WTERMSIG(st) == SIGKILL,
						      what);
					pids[w] = 0;
					running--;
				}
		}
		{
			struct timespec ts = { 0, 1000000 };

			nanosleep(&ts, NULL);
		}
	}
	atomic_store(&sh->stop_reader, 1);
	waitpid(rpid, &st, 0);
	check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the reader failed");
	final_check(started);
	for (unsigned w = 0; w < started; w++)
		for (unsigned t = 0; t < THREADS; t++)
			busy += atomic_load(&sh->w[w].t[t].busy);
	printf("rep %d: %u workers (exit %u, point %u, killed %u, survive %u); "
	       "%llu exemplars checked by the reader, %llu torn; %llu "
	       "dropped as -EBUSY\n", rep, started, by_fate[EXIT],
	       by_fate[POINT], by_fate[KILLED], by_fate[SURVIVE],
	       (unsigned long long)atomic_load(&sh->checked),
	       (unsigned long long)atomic_load(&sh->torn), busy);
	check(atomic_load(&sh->torn) == 0, "torn or foreign exemplars shown");
	for (unsigned w = 0; w < started; w++)
		if (pids[w] < 0) {
			kill(-pids[w], SIGTERM);
			waitpid(-pids[w], &st, 0);
		}
	shmet_unlink(segname);
}

int
main(int argc, char **argv)
{
	int reps = argc > 1 ? atoi(argv[1]) : 2;
	unsigned workers = argc > 2 ? (unsigned)atoi(argv[2]) : 40;
	double seconds = argc > 3 ? atof(argv[3]) : 1.5;

	/* line-buffered: forked children never repeat a buffered line */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (workers > MAX_WORKERS)
		workers = MAX_WORKERS;
	if (workers < SURVIVORS + 1)
		workers = SURVIVORS + 1;
	sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	srand((unsigned)getpid());
	for (int rep = 0; rep < reps; rep++)
		one_rep(rep, workers, seconds);
	printf("fleet-stress: %d reps, %d failures\n", reps, failures);
	return failures ? 1 : 0;
}
