/*
 * Real processes: fork, races, churn, SIGKILL, a reader polling throughout.
 * Invariants are written into the data (exact totals), so a lost, doubled
 * or torn update fails the test.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test-common.h"

#include <shmetrics/format.h>

static const char *const one_label[] = { "worker" };
static const double bounds12[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
				   0.5,   1,    2.5,   5,    10,  30 };

#define INCS (1000000 * STRESS_SCALE)

/* A page shared by the test and its children (not a segment). */
static void *
shared_page(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	return p;
}

static void
hammer_child(int i, void *arg)
{
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c, fc;
	struct shmet_histogram h;

	(void)i;
	(void)arg;
	test_open(&seg, NULL);
	shmet_counter_family(&seg, &f, "hammer_total", "h", 1, one_label);
	shmet_counter_labels(&f, &c, SHMET_VALUES("shared"));
	shmet_counter_new(&seg, &fc, "hammer_float_total", "f");
	shmet_histogram_new(&seg, &h, "hammer_seconds", "h", 12, bounds12);
	for (int k = 0; k < INCS; k++) {
		shmet_counter_inc(&c);
		shmet_counter_add_double(&fc, 0.5);
		if ((k & 7) == 0)
			shmet_histogram_observe(&h, (k % 40) * 0.01);
	}
	shmet_close(&seg);
}

/*
 * Poll until *stop, checking that no counter, bucket or count ever
 * decreases between two scrapes.  Exits non-zero on a decrease.
 */
static void
monotonic_reader(volatile int *stop, int *scrapes)
{
	double last_c = 0, last_f = 0;
	uint64_t last_n = 0;

	while (!*stop) {
		struct test_snapshot s;
		int ci, fi, hi;
		double cv, fv;
		uint64_t n;

		test_snapshot_take(&s);
		ci = test_find_series(&s, "hammer_total", SHMET_VALUES("shared"));
		fi = test_find_series(&s, "hammer_float_total", 0, NULL);
		hi = test_find_series(&s, "hammer_seconds", 0, NULL);
		cv = ci < 0 ? 0 : shmet_values_counter(s.values, s.index, ci);
		fv = fi < 0 ? 0 : shmet_values_counter(s.values, s.index, fi);
		n = hi < 0 ? 0 : shmet_values_hist_count(s.values, s.index, hi);
		test_snapshot_free(&s);
		if (cv < last_c || fv < last_f || n < last_n)
			_exit(3);
		last_c = cv;
		last_f = fv;
		last_n = n;
		(*scrapes)++;
	}
}

START_TEST(test_eight_writers_exact_totals)
{
	struct shmet_segment seg;
	int *shared = shared_page(4096);
	pid_t reader;
	int status;

	test_open(&seg, NULL);          /* create before the race */
	reader = fork();
	if (reader == 0) {
		monotonic_reader((volatile int *)&shared[0], &shared[1]);
		_exit(0);
	}
	test_fork_all(8, hammer_child, NULL);
	shared[0] = 1;
	ck_assert_int_eq(waitpid(reader, &status, 0), reader);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "reader saw a decrease (status 0x%x)", status);
	ck_assert_int_gt(shared[1], 0);
	ck_assert_double_eq(test_counter("hammer_total",
					 SHMET_VALUES("shared")),
			    8.0 * INCS);
	ck_assert_double_eq(test_counter("hammer_float_total", 0, NULL),
			    8.0 * INCS * 0.5);
	ck_assert_uint_eq(test_hist_count("hammer_seconds", 0, NULL),
			  8u * ((INCS + 7) / 8));
	shmet_close(&seg);
}
END_TEST

#define RACE_SERIES 1000

/*
 * Register RACE_SERIES label sets of family `name` in this process,
 * starting at label set `first`, and count each once.
 */
static void
race_labels(const char *name, int first)
{
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;
	char v[32];
	const char *vals[1] = { v };

	test_open(&seg, NULL);
	if (shmet_counter_family(&seg, &f, name, "r", 1, one_label) != 0)
		_exit(2);
	for (int k = 0; k < RACE_SERIES; k++) {
		snprintf(v, sizeof v, "w%d", (k + first) % RACE_SERIES);
		if (shmet_counter_labels(&f, &c, 1, vals) != 0)
			_exit(3);
		shmet_counter_inc(&c);
	}
	shmet_close(&seg);
}

/* Each child walks the label sets from a different start. */
static void
register_race_child(int i, void *arg)
{
	(void)arg;
	race_labels("race_total", i * 61);
}

/* Same label sets, same order, all at once: the worst case for races. */
static void
lockstep_child(int i, void *arg)
{
	(void)i;
	(void)arg;
	race_labels("lockstep_total", 0);
}

START_TEST(test_racing_processes_leak_at_most_one_record_each)
{
	struct shmet_segment seg;
	struct shmet_reader *r;
	struct shmet_reader_info info;
	struct test_snapshot s;
	const struct shmet_index_family *f;
	char err[256];

	test_open(&seg, NULL);          /* exists before the race */
	test_fork_all_at_once(16, lockstep_child, NULL);
	ck_assert_int_eq(shmet_reader_open(test_segment_name, &r, err,
					   sizeof err), 0);
	shmet_reader_info(r, &info);
	shmet_reader_close(r);
	ck_assert_uint_le(info.series_used, RACE_SERIES + 16);
	ck_assert_uint_le(info.families_used, 1 + 16);
	test_snapshot_take(&s);
	f = shmet_index_find(s.index, "lockstep_total");
	ck_assert_uint_eq(f->series_count, RACE_SERIES);
	for (uint32_t i = 0; i < f->series_count; i++)
		ck_assert_double_eq(shmet_values_counter(s.values, s.index,
							 f->first_series + i),
				    16);
	test_snapshot_free(&s);
	shmet_close(&seg);
}
END_TEST

/*
 * Gauge chunks under a race (writer/cells.c): 16 processes register the
 * same gauges and counters in turn, at one instant, so that chunks fill
 * and are replaced while others carve theirs.  Every series has cells of
 * its own, every value adds up, and the gauges' cells stay dense: no more
 * cache lines than their cells need, plus a line per chunk boundary and
 * per record a lost race left as a process's spare (at most one each).
 */
#define CHUNK_RACE 2000

static void
chunk_race_child(int i, void *arg)
{
	struct shmet_segment seg;
	struct shmet_family fg, fc;
	struct shmet_gauge g;
	struct shmet_counter c;
	char v[32];
	const char *vals[1] = { v };

	(void)i;
	(void)arg;
	test_open(&seg, NULL);
	if (shmet_gauge_family(&seg, &fg, "chunk_gauge", "g",
			       SHMET_GAUGE_LIVESUM, 1, one_label) != 0 ||
	    shmet_counter_family(&seg, &fc, "chunk_total", "c", 1,
				 one_label) != 0)
		_exit(2);
	for (int k = 0; k < CHUNK_RACE; k++) {
		snprintf(v, sizeof v, "w%d", k);
		if (shmet_gauge_labels(&fg, &g, 1, vals) != 0 ||
		    shmet_counter_labels(&fc, &c, 1, vals) != 0)
			_exit(3);
		shmet_gauge_set(&g, 1);
		shmet_counter_inc(&c);
	}
	/* stay alive until the parent has read (livesum) */
	pause();
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

START_TEST(test_gauge_chunks_race)
{
	struct shmet_segment seg;
	struct test_snapshot s;
	const struct shmet_index_family *fg, *fc;
	uint32_t *lo, n, lines = 0, chunk;
	struct shmet_options o = test_options();
	pid_t pids[16];
	int ready[2];

	/* no slot here: a fork child of a writer would take one more each */
	o.flags = SHMET_OPEN_NO_WRITER;
	test_open(&seg, &o);
	chunk = shmet_seg_gauge_chunk_cells(test_options().cells_per_block);
	ck_assert_int_eq(pipe(ready), 0);
	for (int p = 0; p < 16; p++) {
		pids[p] = fork();
		ck_assert_int_ge(pids[p], 0);
		if (pids[p] == 0) {
			char go;

			close(ready[1]);
			if (read(ready[0], &go, 1) != 0)
				_exit(4);
			chunk_race_child(p, NULL);
			_exit(0);
		}
	}
	close(ready[0]);
	close(ready[1]);                /* all start at once */
	/* the children pause when done: wait until every series adds up */
	for (int tries = 0;; tries++) {
		int done = 0;

		test_snapshot_take(&s);
		fg = shmet_index_find(s.index, "chunk_gauge");
		fc = shmet_index_find(s.index, "chunk_total");
		if (fg && fc && fg->series_count == CHUNK_RACE &&
		    fc->series_count == CHUNK_RACE) {
			done = 1;
			for (uint32_t i = 0; i < CHUNK_RACE && done; i++)
				done = test_gauge(&s, fg->first_series + i) ==
					       16 &&
				       shmet_values_counter(
					       s.values, s.index,
					       fc->first_series + i) == 16;
		}
		if (done)
			break;
		test_snapshot_free(&s);
		ck_assert_msg(tries < 6000, "the children did not finish: %u %u",
			      fg ? fg->series_count : 0,
			      fc ? fc->series_count : 0);
		usleep(10000);
	}
	/* every series' cells its own */
	n = shmet_index_series_count(s.index);
	lo = calloc(n, sizeof *lo);
	ck_assert_ptr_nonnull(lo);
	for (uint32_t i = 0; i < n; i++)
		lo[i] = shmet_index_series(s.index, i)->first_cell;
	qsort(lo, n, sizeof *lo, cmp_u32);
	for (uint32_t i = 1; i < n; i++)
		ck_assert_uint_ge(lo[i], lo[i - 1] + 2);    /* 2 cells each */
	/* the gauges' lines */
	for (uint32_t i = 0; i < CHUNK_RACE; i++)
		lo[i] = shmet_index_series(s.index, fg->first_series + i)
				->first_cell;
	qsort(lo, CHUNK_RACE, sizeof *lo, cmp_u32);
	for (uint32_t i = 0; i < CHUNK_RACE; i++)
		lines += i == 0 || lo[i] / 8 != lo[i - 1] / 8;
	ck_assert_msg(lines <= 2 * CHUNK_RACE / 8 + 2 * CHUNK_RACE / chunk +
				       1 + 16,
		      "%u gauges on %u lines", CHUNK_RACE, lines);
	free(lo);
	test_snapshot_free(&s);
	for (int p = 0; p < 16; p++) {
		kill(pids[p], SIGKILL);
		waitpid(pids[p], NULL, 0);
	}
	shmet_close(&seg);
}
END_TEST

START_TEST(test_sixteen_processes_race_registration)
{
	struct test_snapshot s;
	const struct shmet_index_family *f;

	test_fork_all(16, register_race_child, NULL);
	test_snapshot_take(&s);
	f = shmet_index_find(s.index, "race_total");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(shmet_index_family_count(s.index), 1);
	ck_assert_uint_eq(f->series_count, RACE_SERIES);
	for (uint32_t i = 0; i < f->series_count; i++)
		ck_assert_double_eq(shmet_values_counter(s.values, s.index,
							 f->first_series + i),
				    16);
	test_snapshot_free(&s);
}
END_TEST

struct churn {
	int per_process;
};

static void
churn_child(int i, void *arg)
{
	struct shmet_options o = test_options();
	struct churn *ch = arg;
	struct shmet_segment seg;
	struct shmet_counter c;
	struct shmet_gauge g;
	struct shmet_histogram h;

	(void)i;
	o.max_writers = 16;
	test_open(&seg, &o);
	if (seg.slot >= 16)
		_exit(4);               /* never the fallback: slots recycle */
	shmet_counter_new(&seg, &c, "churn_total", "c");
	shmet_gauge_new(&seg, &g, "churn_live", "g", SHMET_GAUGE_LIVESUM);
	shmet_histogram_new(&seg, &h, "churn_seconds", "h", 12, bounds12);
	shmet_gauge_set(&g, 1);
	for (int k = 0; k < ch->per_process; k++) {
		shmet_counter_inc(&c);
		shmet_histogram_observe(&h, 0.3);
	}
	/* Half exit without shmet_close, as crashing workers do. */
	if (i % 2 == 0)
		shmet_close(&seg);
}

START_TEST(test_three_hundred_short_lived_processes)
{
	struct churn ch = { 1000 };
	struct shmet_reader *r;
	struct shmet_reader_info info;
	struct test_snapshot s;
	char err[256];
	int gi;

	/* 300 processes in waves of 10: never more than 10 alive. */
	for (int wave = 0; wave < 30; wave++)
		test_fork_all(10, churn_child, &ch);
	ck_assert_double_eq(test_counter("churn_total", 0, NULL), 300 * 1000);
	ck_assert_uint_eq(test_hist_count("churn_seconds", 0, NULL),
			  300 * 1000);
	ck_assert_int_eq(shmet_reader_open(test_segment_name, &r, err,
					   sizeof err), 0);
	shmet_reader_info(r, &info);
	shmet_reader_close(r);
	ck_assert_uint_eq(info.writers_live, 0);
	ck_assert_uint_le(info.writers_dead, 10);
	ck_assert_uint_eq(info.failures[SHMET_FAIL_WRITERS_FULL], 0);
	/* Nobody is alive: the live gauge sums to nothing. */
	test_snapshot_take(&s);
	gi = test_find_series(&s, "churn_live", 0, NULL);
	ck_assert_int_ge(gi, 0);
	ck_assert_double_eq(test_gauge(&s, gi), 0);
	test_snapshot_free(&s);
}
END_TEST

START_TEST(test_sigkill_mid_loop_keeps_increments)
{
	volatile uint64_t *done = shared_page(4096);
	struct shmet_segment seg;
	struct shmet_counter c;
	struct shmet_reader *r;
	struct shmet_writer_info w[32];
	char err[256];
	pid_t pid;
	double total;
	int status, n, takeovers = 0;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct shmet_segment cs;
		struct shmet_counter cc;

		test_open(&cs, NULL);
		shmet_counter_new(&cs, &cc, "killed_total", "k");
		for (;;) {
			shmet_counter_inc(&cc);
			/* Record after the increment: the segment holds
			 * done or done + 1. */
			__atomic_store_n(done, *done + 1, __ATOMIC_RELEASE);
		}
	}
	while (__atomic_load_n(done, __ATOMIC_ACQUIRE) < 200000)
		usleep(1000);
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
	total = test_counter("killed_total", 0, NULL);
	ck_assert_msg(total >= (double)*done && total <= (double)*done + 1,
		      "total %.0f, child recorded %llu", total,
		      (unsigned long long)*done);
	/* The segment is usable; a newcomer takes the dead slot over. */
	{
		struct shmet_options o = test_options();

		o.max_writers = 32;
		test_open(&seg, &o);
	}
	shmet_counter_new(&seg, &c, "killed_total", "k");
	shmet_counter_add(&c, 10);
	ck_assert_double_eq(test_counter("killed_total", 0, NULL), total + 10);
	ck_assert_int_eq(shmet_reader_open(test_segment_name, &r, err,
					   sizeof err), 0);
	n = shmet_reader_writers(r, w, 32);
	for (int i = 0; i < n; i++)
		takeovers += (int)w[i].takeovers;
	ck_assert_int_eq(w[seg.slot].live, 1);
	ck_assert_int_eq(takeovers, 1);
	shmet_reader_close(r);
	shmet_close(&seg);
}
END_TEST

START_TEST(test_fork_child_gets_own_slot)
{
	struct shmet_segment seg;
	struct shmet_counter c;
	struct shmet_gauge g;
	struct shmet_reader *r;
	struct shmet_writer_info w[32];
	int *shared = shared_page(4096);
	char err[256];
	pid_t pid;
	int status, live = 0;

	test_open(&seg, NULL);
	shmet_counter_new(&seg, &c, "forked_total", "f");
	shmet_gauge_new(&seg, &g, "forked_workers", "w", SHMET_GAUGE_LIVESUM);
	shmet_gauge_set(&g, 1);
	shmet_counter_add(&c, 100);
	pid = fork();
	if (pid == 0) {
		/* Inherited handles, no new registration. */
		shared[0] = (int)seg.slot;
		shmet_counter_add(&c, 5);
		shmet_gauge_set(&g, 1);
		shared[1] = 1;
		while (!shared[2])
			usleep(1000);
		_exit(0);
	}
	while (!shared[1])
		usleep(1000);
	ck_assert_int_ne(shared[0], (int)seg.slot);
	ck_assert_double_eq(test_counter("forked_total", 0, NULL), 105);
	ck_assert_int_eq(shmet_reader_open(test_segment_name, &r, err,
					   sizeof err), 0);
	for (int i = shmet_reader_writers(r, w, 32); i-- > 0;)
		live += w[i].live;
	ck_assert_int_eq(live, 2);
	{
		struct test_snapshot s;
		int gi;

		test_snapshot_take(&s);
		gi = test_find_series(&s, "forked_workers", 0, NULL);
		ck_assert_double_eq(test_gauge(&s, gi), 2);
		test_snapshot_free(&s);
	}
	shared[2] = 1;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	live = 0;
	for (int i = shmet_reader_writers(r, w, 32); i-- > 0;)
		live += w[i].live;
	ck_assert_int_eq(live, 1);
	shmet_reader_close(r);
	shmet_close(&seg);
}
END_TEST

/* Gauge modes across processes: each child sets its index + 1. */
static void
gauge_child(int i, void *arg)
{
	static const struct {
		const char *name;
		uint32_t mode;
	} modes[] = {
		{ "g_all", SHMET_GAUGE_ALL },
		{ "g_liveall", SHMET_GAUGE_LIVEALL },
		{ "g_sum", SHMET_GAUGE_SUM },
		{ "g_livesum", SHMET_GAUGE_LIVESUM },
		{ "g_max", SHMET_GAUGE_MAX },
		{ "g_min", SHMET_GAUGE_MIN },
		{ "g_mostrecent", SHMET_GAUGE_MOSTRECENT },
		{ "g_livemostrecent", SHMET_GAUGE_LIVEMOSTRECENT },
	};
	int *shared = arg;
	struct shmet_segment seg;

	test_open(&seg, NULL);
	for (unsigned m = 0; m < sizeof modes / sizeof modes[0]; m++) {
		struct shmet_gauge g;

		shmet_gauge_new(&seg, &g, modes[m].name, "g", modes[m].mode);
		shmet_gauge_set(&g, i + 1);
	}
	/* All four hold their slots at once; then 2 and 3 exit (dead
	 * writers whose slots nobody takes over) and 0 and 1 stay. */
	__atomic_add_fetch(&shared[0], 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&shared[0], __ATOMIC_SEQ_CST) < 4)
		usleep(1000);
	while (i < 2 && !__atomic_load_n(&shared[1], __ATOMIC_SEQ_CST))
		usleep(1000);
}

static double
gauge_of(const struct test_snapshot *s, const char *name)
{
	int i = test_find_series(s, name, 0, NULL);

	ck_assert_int_ge(i, 0);
	return test_gauge(s, i);
}

static int
samples_of(const struct test_snapshot *s, const char *name)
{
	int i = test_find_series(s, name, 0, NULL), n = 0;
	const struct shmet_gauge_sample *smp;
	size_t count = shmet_values_samples(s->values, &smp);

	for (size_t k = 0; k < count; k++)
		n += smp[k].series == (uint32_t)i;
	return n;
}

START_TEST(test_gauge_modes_across_processes)
{
	int *shared = shared_page(4096);
	struct test_snapshot s;
	pid_t pids[4];

	/*
	 * 0 and 1 start and stay; then 3 and 2 write and exit, so the dead
	 * writers' slots are not taken over and the newest write is 2's.
	 */
	for (int k = 0; k < 4; k++) {
		int i = (int[]){ 0, 1, 3, 2 }[k];

		pids[i] = fork();
		if (pids[i] == 0) {
			gauge_child(i, shared);
			_exit(0);
		}
		while (__atomic_load_n(&shared[0], __ATOMIC_SEQ_CST) < k + 1)
			usleep(1000);
	}
	waitpid(pids[2], NULL, 0);
	waitpid(pids[3], NULL, 0);
	test_snapshot_take(&s);
	ck_assert_int_eq(samples_of(&s, "g_all"), 4);
	ck_assert_int_eq(samples_of(&s, "g_liveall"), 2);
	ck_assert_double_eq(gauge_of(&s, "g_sum"), 1 + 2 + 3 + 4);
	ck_assert_double_eq(gauge_of(&s, "g_livesum"), 1 + 2);
	ck_assert_double_eq(gauge_of(&s, "g_max"), 4);
	ck_assert_double_eq(gauge_of(&s, "g_min"), 1);
	ck_assert_double_eq(gauge_of(&s, "g_mostrecent"), 3);
	ck_assert_double_eq(gauge_of(&s, "g_livemostrecent"), 2);
	test_snapshot_free(&s);
	__atomic_store_n(&shared[1], 1, __ATOMIC_SEQ_CST);
	waitpid(pids[0], NULL, 0);
	waitpid(pids[1], NULL, 0);
	test_snapshot_take(&s);
	ck_assert_int_eq(samples_of(&s, "g_liveall"), 0);
	ck_assert_double_eq(gauge_of(&s, "g_livesum"), 0);
	ck_assert_double_eq(gauge_of(&s, "g_sum"), 10);
	test_snapshot_free(&s);
}
END_TEST

static void
start_race_child(int i, void *arg)
{
	struct shmet_segment seg;
	struct shmet_counter c;
	char name[32];

	(void)arg;
	test_open(&seg, NULL);
	shmet_counter_new(&seg, &c, "started_total", "s");
	shmet_counter_inc(&c);
	snprintf(name, sizeof name, "own_%d_total", i);
	shmet_counter_new(&seg, &c, name, "o");
	shmet_counter_inc(&c);
	shmet_close(&seg);
}

START_TEST(test_fifty_processes_start_at_once)
{
	struct test_snapshot s;

	test_fork_all_at_once(50, start_race_child, NULL);
	test_snapshot_take(&s);
	ck_assert_uint_eq(shmet_index_family_count(s.index), 51);
	test_snapshot_free(&s);
	ck_assert_double_eq(test_counter("started_total", 0, NULL), 50);
}
END_TEST

TEST_SUITE(multiproc)
{
	Suite *s = suite_create("multiproc");
	TCase *tc;

	tc = tcase_create("Concurrent writers");
	tcase_add_checked_fixture(tc, test_segment_setup, test_segment_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_eight_writers_exact_totals);
	tcase_add_test(tc, test_sixteen_processes_race_registration);
	tcase_add_test(tc, test_racing_processes_leak_at_most_one_record_each);
	tcase_add_test(tc, test_fifty_processes_start_at_once);
	tcase_add_test(tc, test_gauge_chunks_race);
	suite_add_tcase(s, tc);

	tc = tcase_create("Process lifecycle");
	tcase_add_checked_fixture(tc, test_segment_setup, test_segment_teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_three_hundred_short_lived_processes);
	tcase_add_test(tc, test_sigkill_mid_loop_keeps_increments);
	tcase_add_test(tc, test_fork_child_gets_own_slot);
	tcase_add_test(tc, test_gauge_modes_across_processes);
	suite_add_tcase(s, tc);
	return s;
}
