/*
 * Per-thread cells (docs/DESIGN.md, "Threads"): every counting thread
 * writes a block of its own, and nothing is lost when threads come and go.
 *   - 8 threads x 10 M increments on one counter (and observations on one
 *     histogram) sum exactly, each thread's cells are in its own block,
 *     and a gauge set from any thread is the process's one value;
 *   - 10,000 threads created and destroyed while counting: exact total,
 *     and the writer slots used stay bounded by the threads alive at once;
 *   - a fork from a counting thread: the child's thread counts in a block
 *     of its own, and parent and child totals are exact;
 *   - one thread alternating between two segments counts exactly.
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

#include "shmetrics-reader.h"

#define THREADS 8
#define CHURN_CYCLES 10000
#define CHURN_AT_ONCE 2
#define CHURN_INCS 1000

static struct shmet_segment seg;
static struct shmet_counter ctr;
static struct shmet_histogram hist;
static struct shmet_gauge gauge;
static long incs = 10000000;
static uintptr_t cells[THREADS];
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
slots_used(void)
{
	const struct shmet_seg_writer *w =
		(const struct shmet_seg_writer *)(const void *)(
			seg.base + seg.hdr->writers_off);
	uint32_t n = 0;

	for (uint32_t i = 0; i < seg.hdr->max_writers; i++)
		/* Acquire: pairs with the claimer's release of state. */
		n += atomic_load_explicit(&w[i].state, memory_order_acquire) !=
		     SHMET_WRITER_UNUSED;
	return n;
}

/* The summed cell c of the segment, as a scrape sees it. */
static uint64_t
scrape_cell(size_t c, double *gauge_out)
{
	struct shmet_reader *r;
	struct shmet_index *idx;
	struct shmet_values *v = shmet_values_new();
	const uint64_t *u;
	const double *d;
	char err[256];
	uint64_t got = 0;

	if (!v || shmet_reader_open(name, &r, err, sizeof err) < 0 ||
	    shmet_index_build(r, &idx, err, sizeof err) < 0 ||
	    shmet_values_collect(r, idx, v) < 0) {
		fprintf(stderr, "reader: %s\n", err);
		exit(1);
	}
	if (shmet_values_cells(v, &u, &d) > c)
		got = u[c];
	if (gauge_out) {
		const struct shmet_index_family *f =
			shmet_index_find(idx, "t_gauge");

		*gauge_out = -1;
		if (!f || f->series_count != 1 ||
		    shmet_values_gauge(v, f->first_series, gauge_out) != 1)
			*gauge_out = -1;
	}
	shmet_values_free(v);
	shmet_index_free(idx);
	shmet_reader_close(r);
	return got;
}

static size_t
cell_of(const SHMET_ATOMIC(uint64_t) *cell)
{
	return (size_t)(cell - seg.block);
}

static void *
hammer(void *arg)
{
	long me = (long)(intptr_t)arg;

	shmet_counter_inc(&ctr);
	cells[me] = (uintptr_t)SHMET_IMPL_CELL(&ctr);
	/* all alive at once: a block is reused only after its thread exits */
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
		/* the child's one thread: a block of its own, not the
		 * parent thread's */
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
	for (int i = 0; i < THREADS; i++)
		for (int j = 0; j < i; j++)
			CHECK(cells[i] - cells[j] + 63 > 126,
			      "threads %d and %d share a cache line", i, j);
	CHECK(g >= 0 && g < THREADS, "gauge %g is not one thread's set", g);
	shmet_gauge_set(&gauge, 42);
	scrape_cell(0, &g);
	CHECK(g == 42, "gauge %g: a set from main is not the process's", g);
	used = slots_used();
	printf("slots used after 8 threads: %u\n", used);
	CHECK(used <= 1 + THREADS, "too many slots: %u", used);

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
	CHECK(slots_used() <= used, "churn grew the slots used");

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
		{
			char keep[sizeof name];

			memcpy(keep, name, sizeof name);
			snprintf(name, sizeof name, "%s", name2);
			got = scrape_cell((size_t)(ctr2.cell - seg2.block), NULL);
			memcpy(name, keep, sizeof name);
			CHECK(got == 100000, "second segment: %llu, not 100000",
			      (unsigned long long)got);
		}
		shmet_close(&seg2);
		shmet_unlink(name2);
	}

	shmet_close(&seg);
	shmet_unlink(name);
	printf("%s\n", failures ? "FAIL" : "ok");
	return failures ? 1 : 0;
}
