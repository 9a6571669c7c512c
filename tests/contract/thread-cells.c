/*
 * Threads count in per-CPU cells (docs/DESIGN.md, "Per-CPU cells"), or in
 * the process block without rseq, and nothing is lost when threads come
 * and go.  Run with and without SHMETRICS_NO_RSEQ=1:
 *   - 8 threads x 10 M increments on one counter (and observations on one
 *     histogram) sum exactly, and a gauge set from any thread is the
 *     process's one value;
 *   - threads take no writer slot: the process holds one, however many
 *     threads count (8 at once, 10,000 created and destroyed);
 *   - 10,000 threads created and destroyed while counting: exact total;
 *   - a fork from a counting thread: parent and child totals are exact;
 *   - one thread alternating between two segments counts exactly;
 *   - max_thread_blocks and SHMET_OPEN_ONE_BLOCK are accepted and change
 *     nothing: exact totals, one slot;
 *   - one thread in 10 segments counts exactly, and resolves its rseq
 *     area once (the thread-local pointer stays set).
 * SHMETRICS_TEST_QUICK=1 divides the 10 M by 10 (for the sanitizers).
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmetrics.h>

#include "percpu.h"
#include "snapshot.h"

#define THREADS 8
#define CHURN_CYCLES 10000
#define CHURN_AT_ONCE 2
#define CHURN_INCS 1000

static struct shmet_segment seg;
static struct shmet_counter ctr;
static struct shmet_histogram hist;
static struct shmet_gauge gauge;
static long incs = 10000000;
static char name[64];
static int failures;
static pthread_barrier_t all_attached;

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, __VA_ARGS__); \
			fputc('\n', stderr); \
			failures++; \
		} \
	} while (0)

/* Writer slots ever used (not UNUSED), from the segment's slot table. */
static uint32_t
slots_used_in(const struct shmet_segment *s)
{
	const struct shmet_seg_writer *w =
		(const struct shmet_seg_writer *)(const void *)(
			s->base + s->hdr->writers_off);
	uint32_t n = 0;

	for (uint32_t i = 0; i < s->hdr->max_writers; i++)
		/* Acquire: pairs with the claimer's release of state. */
		n += atomic_load_explicit(&w[i].state, memory_order_acquire) !=
		     SHMET_WRITER_UNUSED;
	return n;
}

static uint32_t
slots_used(void)
{
	return slots_used_in(&seg);
}

/* The summed cell c of segment `segname`, as a scrape sees it, and the
 * t_gauge's value (-1 if not exactly one set series). */
static uint64_t
scrape_cell_of(const char *segname, size_t c, double *gauge_out)
{
	struct snapshot snap;
	uint64_t got;

	snapshot_take(segname, &snap);
	got = snapshot_cell(&snap, c);
	if (gauge_out) {
		const struct shmet_index_family *f =
			shmet_index_find(snap.index, "t_gauge");

		*gauge_out = -1;
		if (!f || f->series_count != 1 ||
		    shmet_values_gauge(snap.values, f->first_series,
				       gauge_out) != 1)
			*gauge_out = -1;
	}
	snapshot_free(&snap);
	return got;
}

static uint64_t
scrape_cell(size_t c, double *gauge_out)
{
	return scrape_cell_of(name, c, gauge_out);
}

static size_t
cell_of(const SHMET_ATOMIC(uint64_t) *cell)
{
	return percpu_cell_index(&seg, cell);
}

static void *
hammer(void *arg)
{
	long me = (long)(intptr_t)arg;

	shmet_counter_inc(&ctr);
	/* all alive at once: none of them takes a slot */
	pthread_barrier_wait(&all_attached);
	for (long i = 1; i < incs; i++) {
		shmet_counter_inc(&ctr);
		if (i % 64 == 0)
			shmet_histogram_observe(&hist, (double)(i % 13));
	}
	shmet_histogram_observe(&hist, 0.5);    /* the i = 0 observation */
	shmet_gauge_set(&gauge, (double)me);
	return NULL;
}

/* Two segments in one thread: the entry switches on every write. */
static struct shmet_segment seg2;
static struct shmet_counter ctr2;

static void *
alternate(void *arg)
{
	(void)arg;
	for (int i = 0; i < 100000; i++) {
		shmet_counter_inc(&ctr);
		shmet_counter_inc(&ctr2);
	}
	return NULL;
}

static void *
churn(void *arg)
{
	(void)arg;
	for (int i = 0; i < CHURN_INCS; i++)
		shmet_counter_inc(&ctr);
	return NULL;
}

static void *
forker(void *arg)
{
	pid_t pid;
	int status;

	(void)arg;
	shmet_counter_add(&ctr, 5);
	pid = fork();
	if (pid == 0) {
		/* the child's one thread: the same CPU blocks, its own
		 * process block */
		for (int i = 0; i < 1000; i++)
			shmet_counter_inc(&ctr);
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		CHECK(0, "fork child failed");
	shmet_counter_add(&ctr, 5);
	return NULL;
}

/* Section 5: THREADS threads, all counting at once, in a segment opened
 * with the per-thread options of old: accepted, no effect. */
static struct shmet_segment capseg;
static struct shmet_counter capctr;
static pthread_barrier_t cap_all_counting;

static void *
cap_hammer(void *arg)
{
	(void)arg;
	shmet_counter_inc(&capctr);
	pthread_barrier_wait(&cap_all_counting);
	for (int i = 1; i < 100000; i++)
		shmet_counter_inc(&capctr);
	return NULL;
}

static void
cap_case(const char *what, uint32_t max_writers, uint32_t flags,
	 uint32_t cap)
{
	struct shmet_options o = { 0 };
	pthread_t t[THREADS];
	char capname[64];
	uint64_t got;
	uint32_t used;

	snprintf(capname, sizeof capname, "/shmet-thrcap-%d", (int)getpid());
	o.name = capname;
	o.max_writers = max_writers;
	o.cells_per_block = 1024;
	o.max_series = 16;
	o.flags = flags;
	o.max_thread_blocks = cap;
	if (shmet_open(&capseg, &o) < 0 ||
	    shmet_counter_new(&capseg, &capctr, "cap_total", "c") < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&capseg));
		exit(1);
	}
	shmet_counter_inc(&capctr);
	pthread_barrier_init(&cap_all_counting, NULL, THREADS);
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, cap_hammer, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&cap_all_counting);
	used = slots_used_in(&capseg);
	got = scrape_cell_of(capname, percpu_cell_index(&capseg, capctr.cell),
			     NULL);
	printf("%s: %d threads, %u slots used, total %llu\n", what, THREADS,
	       used, (unsigned long long)got);
	CHECK(used == 1, "%s: %u slots used, want 1", what, used);
	CHECK(got == 1 + (uint64_t)THREADS * 100000, "%s: total %llu", what,
	      (unsigned long long)got);
	shmet_close(&capseg);
	shmet_unlink(capname);
}

/* Section 6: one thread in SEGS segments (the old design had 8 entries). */
#define SEGS 10

static void
many_segments(void)
{
	static struct shmet_segment s[SEGS];
	static struct shmet_counter c[SEGS];
	char n[SEGS][64];
	int resolved = 1;

	for (int i = 0; i < SEGS; i++) {
		struct shmet_options o = { 0 };

		snprintf(n[i], sizeof n[i], "/shmet-thrsegs-%d-%d",
			 (int)getpid(), i);
		o.name = n[i];
		o.max_writers = 4;
		o.cells_per_block = 1024;
		o.max_series = 16;
		if (shmet_open(&s[i], &o) < 0 ||
		    shmet_counter_new(&s[i], &c[i], "segs_total", "s") < 0) {
			fprintf(stderr, "%s\n", shmet_last_error(&s[i]));
			exit(1);
		}
	}
	/* the thread's rseq area is resolved by its first write, once */
	for (int i = 0; i < SEGS; i++) {
		shmet_counter_inc(&c[i]);
		resolved &= shmet_impl_rseq_tls != NULL;
	}
	for (int k = 0; k < 1000; k++)
		for (int i = 0; i < SEGS; i++)
			shmet_counter_add(&c[i], 2);
	for (int i = 0; i < SEGS; i++) {
		uint64_t got = scrape_cell_of(
			n[i], percpu_cell_index(&s[i], c[i].cell), NULL);

		CHECK(got == 2001, "segment %d of %d: %llu, not 2001", i, SEGS,
		      (unsigned long long)got);
		shmet_close(&s[i]);
		shmet_unlink(n[i]);
	}
	printf("%d segments in one thread: rseq area %s\n", SEGS,
	       resolved ? "resolved" : "not resolved");
	CHECK(resolved, "the thread's rseq pointer is not cached");
}

int
main(void)
{
	static const double bounds[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
					   12 };
	struct shmet_options o = { 0 };
	pthread_t t[THREADS];
	uint64_t want, got, before;
	double g;
	uint32_t used;

	if (getenv("SHMETRICS_TEST_QUICK"))
		incs /= 10;
	snprintf(name, sizeof name, "/shmet-thrcells-%d", (int)getpid());
	o.name = name;
	o.max_writers = 32;
	o.cells_per_block = 4096;
	o.max_series = 64;
	if (shmet_open(&seg, &o) < 0 ||
	    shmet_counter_new(&seg, &ctr, "t_total", "t") < 0 ||
	    shmet_histogram_new(&seg, &hist, "t_seconds", "t", 12, bounds) < 0 ||
	    shmet_gauge_new(&seg, &gauge, "t_gauge", "t", SHMET_GAUGE_LIVESUM) < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&seg));
		return 1;
	}

	/* 1. 8 threads on one series */
	pthread_barrier_init(&all_attached, NULL, THREADS);
	shmet_counter_inc(&ctr);        /* main takes the process block */
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, hammer, (void *)(intptr_t)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	want = 1 + (uint64_t)THREADS * (uint64_t)incs;
	got = scrape_cell(cell_of(ctr.cell), &g);
	printf("8 threads x %ld: want %llu, got %llu\n", incs,
	       (unsigned long long)want, (unsigned long long)got);
	CHECK(got == want, "8-thread total is not exact");
	{
		uint64_t obs = 0;

		for (uint32_t b = 0; b <= 12; b++)
			obs += scrape_cell(cell_of(hist.cell) + b, NULL);
		CHECK(obs == (uint64_t)THREADS * (uint64_t)((incs + 63) / 64),
		      "histogram count %llu is not exact",
		      (unsigned long long)obs);
	}
	CHECK(g >= 0 && g < THREADS, "gauge %g is not one thread's set", g);
	shmet_gauge_set(&gauge, 42);
	scrape_cell(0, &g);
	CHECK(g == 42, "gauge %g: a set from main is not the process's", g);
	used = slots_used();
	printf("slots used after 8 threads: %u\n", used);
	CHECK(used == 1, "threads took slots: %u used", used);

	/* 2. thread churn */
	before = want;
	for (int c = 0; c < CHURN_CYCLES / CHURN_AT_ONCE; c++) {
		for (int i = 0; i < CHURN_AT_ONCE; i++)
			pthread_create(&t[i], NULL, churn, NULL);
		for (int i = 0; i < CHURN_AT_ONCE; i++)
			pthread_join(t[i], NULL);
	}
	want = before + (uint64_t)CHURN_CYCLES * CHURN_INCS;
	got = scrape_cell(cell_of(ctr.cell), NULL);
	printf("churn %d threads: want %llu, got %llu, slots used %u\n",
	       CHURN_CYCLES, (unsigned long long)want,
	       (unsigned long long)got, slots_used());
	CHECK(got == want, "churn total is not exact");
	CHECK(slots_used() == 1, "churn took slots: %u used", slots_used());

	/* 3. fork from a counting thread */
	pthread_create(&t[0], NULL, forker, NULL);
	pthread_join(t[0], NULL);
	want += 10 + 1000;
	got = scrape_cell(cell_of(ctr.cell), NULL);
	printf("fork: want %llu, got %llu, slots used %u\n",
	       (unsigned long long)want, (unsigned long long)got,
	       slots_used());
	CHECK(got == want, "fork total is not exact");

	/* 4. two segments, one thread alternating between them */
	{
		char name2[64];

		snprintf(name2, sizeof name2, "/shmet-thrcells-b-%d", (int)getpid());
		o.name = name2;
		if (shmet_open(&seg2, &o) < 0 ||
		    shmet_counter_new(&seg2, &ctr2, "t2_total", "t") < 0) {
			fprintf(stderr, "%s\n", shmet_last_error(&seg2));
			return 1;
		}
		pthread_create(&t[0], NULL, alternate, NULL);
		pthread_join(t[0], NULL);
		want += 100000;
		got = scrape_cell(cell_of(ctr.cell), NULL);
		printf("two segments: want %llu, got %llu\n",
		       (unsigned long long)want, (unsigned long long)got);
		CHECK(got == want, "two-segment total is not exact");
		got = scrape_cell_of(name2, percpu_cell_index(&seg2, ctr2.cell),
				     NULL);
		CHECK(got == 100000, "second segment: %llu, not 100000",
		      (unsigned long long)got);
		shmet_close(&seg2);
		shmet_unlink(name2);
	}

	/* 5. the per-thread options of old: no effect */
	cap_case("max_thread_blocks 3", 64, 0, 3);
	cap_case("SHMET_OPEN_ONE_BLOCK", 64, SHMET_OPEN_ONE_BLOCK, 0);

	/* 6. many segments in one thread (main, which counts in two) */
	many_segments();

	shmet_close(&seg);
	shmet_unlink(name);
	printf("%s\n", failures ? "FAIL" : "ok");
	return failures ? 1 : 0;
}
