/*
 * Which path counts (docs/DESIGN.md, "Per-CPU cells"):
 *   - with rseq (the default where the kernel has it), a thread's counts
 *     go to the cells of its CPU's block: its struct rseq says a CPU, and
 *     the CPU blocks hold at least half the counts (the rest: sections
 *     the kernel aborted, which fall back to the handle's fallback cell,
 *     section 5); together exact;
 *   - with SHMETRICS_NO_RSEQ=1, every count goes to the fallback cell (in
 *     the process block) and none to a CPU block, exactly;
 *   - a CPU beyond the segment's CPU blocks (as after hotplug): a thread
 *     pinned to CPU 1 of a segment with one CPU block counts in the
 *     fallback cell only, one pinned to CPU 0 in CPU block 0 (skipped
 *     without a second CPU);
 *   - registrations reserve every CPU block as far as their cells, the
 *     watermark in 64 KiB steps, and the reserved pages are data to
 *     SEEK_DATA (touched), so readers see a CPU's first count at once;
 *   - a failed handle writes its scratch cells, never a CPU block;
 *   - where the fallback falls (writer/fallback.c): with rseq, into the
 *     shared fallback block (reserved and touched, as the CPU blocks),
 *     and the process block's counter cells are not read (a value planted there stays out of the scrape); without,
 *     into the process block, whose slot says counts_here; a slot whose
 *     writer counted there without rseq and was killed keeps its counts
 *     when a process with rseq takes it over.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include <shmetrics.h>

#include <signal.h>
#include <sys/wait.h>

#include "percpu.h"
#include "snapshot.h"

#define N 1000000

static int failures;

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "FAIL: " __VA_ARGS__); \
			fputc('\n', stderr); \
			failures++; \
		} \
	} while (0)

static uint64_t
proc_cell(const struct shmet_segment *s, const SHMET_ATOMIC(uint64_t) *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
	(void)s;
}

static double
proc_double(const SHMET_ATOMIC(uint64_t) *c)
{
	uint64_t u = atomic_load_explicit(c, memory_order_relaxed);
	double d;

	memcpy(&d, &u, sizeof d);
	return d;
}

static void
open_or_die(struct shmet_segment *s, const char *name, uint32_t cpus)
{
	struct shmet_options o = { 0 };

	o.name = name;
	o.max_writers = 4;
	o.cells_per_block = 1024;
	o.max_series = 16;
	o.cpu_blocks = cpus;
	if (shmet_open(s, &o) < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(s));
		exit(1);
	}
}

/* Section 1 and 2: where N increments, N/10 float adds and N/10
 * observations of one thread land. */
static void
where_counts_go(void)
{
	static const double bounds[1] = { 1 };
	struct shmet_segment s;
	struct shmet_counter c;
	struct shmet_histogram h;
	char name[64];
	size_t cc, hc;
	uint64_t cpu, proc, hcpu, hproc;
	double fcpu, fproc;
	int32_t cpu_id;

	snprintf(name, sizeof name, "/shmet-pcmode-%d", (int)getpid());
	open_or_die(&s, name, 0);
	if (shmet_counter_new(&s, &c, "m_total", "m") < 0 ||
	    shmet_histogram_new(&s, &h, "m_seconds", "m", 1, bounds) < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&s));
		exit(1);
	}
	{
		uint64_t mark = atomic_load_explicit(&s.hdr->cpu_reserved_bytes,
						     memory_order_acquire);

		printf("CPU blocks reserved to %llu bytes\n",
		       (unsigned long long)mark);
		CHECK(mark >= 8 * ((uint64_t)percpu_cell_index(&s, h.cell) + 3) &&
		      (mark % 65536 == 0 || mark == s.hdr->block_stride),
		      "watermark %llu does not cover the cells in 64 KiB steps",
		      (unsigned long long)mark);
		for (uint32_t b = 0; b < s.hdr->cpu_blocks; b++) {
			off_t o = (off_t)(s.hdr->cpu_off +
					  (uint64_t)b * s.hdr->block_stride);

			/* before anything wrote or read it (a read through
			 * the mapping would fault it in) */
			CHECK(lseek(s.fd, o, SEEK_DATA) == o,
			      "CPU block %u's first page is a hole", b);
		}
	}
	for (long i = 0; i < N; i++)
		shmet_counter_inc(&c);
	for (long i = 0; i < N / 10; i++) {
		shmet_counter_add_double(&c, 0.5);
		shmet_histogram_observe(&h, 0.25);
	}
	cpu_id = shmet_impl_rseq_tls ? shmet_impl_rseq_tls->cpu_id : -99;
	cc = percpu_cell_index(&s, c.cell);
	hc = percpu_cell_index(&s, h.cell);
	cpu = percpu_sum(&s, cc);
	proc = proc_cell(&s, c.cell);
	fcpu = percpu_sum_double(&s, cc + 1);
	fproc = proc_double(&c.cell[1]);
	hcpu = percpu_sum(&s, hc);
	hproc = proc_cell(&s, h.cell);
	printf("rseq %s (cpu_id %d, %u CPU blocks): counter %llu in CPU "
	       "blocks + %llu in the fallback cell; float %g + %g; "
	       "histogram %llu + %llu\n",
	       percpu_forced_off() ? "forced off" : "on", (int)cpu_id,
	       s.hdr->cpu_blocks, (unsigned long long)cpu,
	       (unsigned long long)proc, fcpu, fproc,
	       (unsigned long long)hcpu, (unsigned long long)hproc);
	CHECK(cpu + proc == N, "counter %llu, want %d",
	      (unsigned long long)(cpu + proc), N);
	CHECK(fcpu + fproc == 0.5 * (N / 10), "float %g, want %g",
	      fcpu + fproc, 0.5 * (N / 10));
	CHECK(hcpu + hproc == N / 10, "histogram %llu, want %d",
	      (unsigned long long)(hcpu + hproc), N / 10);
	if (percpu_forced_off()) {
		CHECK(cpu_id == -1, "the thread's rseq cpu_id is %d, not -1",
		      (int)cpu_id);
		CHECK(cpu == 0 && fcpu == 0 && hcpu == 0,
		      "CPU blocks written with rseq forced off");
	} else {
		CHECK(cpu_id >= 0, "rseq is not in use (cpu_id %d)",
		      (int)cpu_id);
		CHECK(cpu >= N / 2 && hcpu >= N / 20 && fcpu >= 0.25 * (N / 10),
		      "most counts did not go to the CPU blocks");
	}
	shmet_close(&s);
	shmet_unlink(name);
}

/* Section 3: CPU ids beyond the segment's CPU blocks. */
struct pinned {
	struct shmet_counter *c;
	int cpu;
	int pinned;
};

static void *
pinned_thread(void *arg)
{
	struct pinned *p = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(p->cpu, &set);
	p->pinned = sched_setaffinity(0, sizeof set, &set) == 0;
	if (p->pinned)
		for (long i = 0; i < N / 10; i++)
			shmet_counter_inc(p->c);
	return NULL;
}

static void
beyond_cpu_blocks(void)
{
	struct shmet_segment s;
	struct shmet_counter c;
	struct pinned p = { &c, 1, 0 };
	char name[64];
	pthread_t t;
	size_t cc;
	uint64_t cpu, proc;

	snprintf(name, sizeof name, "/shmet-pcmode1-%d", (int)getpid());
	open_or_die(&s, name, 1);
	if (shmet_counter_new(&s, &c, "one_total", "o") < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&s));
		exit(1);
	}
	cc = percpu_cell_index(&s, c.cell);
	pthread_create(&t, NULL, pinned_thread, &p);
	pthread_join(t, NULL);
	if (!p.pinned) {
		printf("CPU 1 is not available: section 3 skipped\n");
	} else {
		cpu = percpu_sum(&s, cc);
		proc = proc_cell(&s, c.cell);
		printf("on CPU 1 of 1 CPU block: %llu in CPU blocks, %llu in "
		       "the fallback cell\n", (unsigned long long)cpu,
		       (unsigned long long)proc);
		CHECK(cpu == 0 && proc == N / 10,
		      "a CPU beyond the blocks did not take the fallback");
		p.cpu = 0;
		pthread_create(&t, NULL, pinned_thread, &p);
		pthread_join(t, NULL);
		cpu = percpu_sum(&s, cc);
		proc = proc_cell(&s, c.cell);
		printf("then on CPU 0: %llu in CPU blocks, %llu in the fallback "
		       "cell\n", (unsigned long long)cpu,
		       (unsigned long long)proc);
		CHECK(cpu + proc == 2 * (N / 10), "total %llu, want %d",
		      (unsigned long long)(cpu + proc), 2 * (N / 10));
		if (!percpu_forced_off())
			CHECK(cpu >= N / 20, "CPU 0 did not count in its block");
		else
			CHECK(cpu == 0, "CPU block written with rseq off");
	}
	shmet_close(&s);
	shmet_unlink(name);
}

/* Section 4: a failed registration's handle. */
static void
failed_handle(void)
{
	struct shmet_segment s;
	struct shmet_counter c;
	char name[64];

	snprintf(name, sizeof name, "/shmet-pcmode2-%d", (int)getpid());
	open_or_die(&s, name, 0);
	CHECK(shmet_counter_new(&s, &c, "bad name", "b") == -EINVAL,
	      "an invalid name registered");
	/* cpus 0 is what makes its sections abort (inline-impl.h) */
	CHECK(c.cpu0 == NULL && c.cpus == 0,
	      "a failed handle points into the CPU blocks");
	for (int i = 0; i < 1000; i++)
		shmet_counter_inc(&c);
	CHECK(percpu_sum(&s, 0) == 0 && percpu_sum(&s, 1) == 0,
	      "a failed handle wrote a CPU block");
	shmet_close(&s);
	shmet_unlink(name);
}

/* Section 5: the fallback's cells, and what a scrape reads of a block. */
static void
where_the_fallback_falls(void)
{
	struct shmet_segment s;
	struct shmet_counter c;
	struct snapshot snap;
	char name[64];
	size_t cc;
	uint32_t here, shared;

	snprintf(name, sizeof name, "/shmet-pcmode3-%d", (int)getpid());
	open_or_die(&s, name, 0);
	if (shmet_counter_new(&s, &c, "fb_total", "f") < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&s));
		exit(1);
	}
	cc = percpu_cell_index(&s, c.cell);
	here = atomic_load_explicit(
		&((struct shmet_seg_writer *)(void *)(s.base +
						      s.hdr->writers_off))[s.slot]
			 .counts_here,
		memory_order_acquire);
	shared = atomic_load_explicit(&s.hdr->fallback_counts,
				      memory_order_acquire);
	/* the hot path's fallback: a relaxed add on the handle's cell */
	atomic_fetch_add_explicit(c.cell, 7, memory_order_relaxed);
	for (int i = 0; i < 1000; i++)
		shmet_counter_inc(&c);
	if (!percpu_forced_off()) {
		off_t fb = (off_t)(s.hdr->values_off +
				   (uint64_t)s.hdr->max_writers *
					   s.hdr->block_stride);

		/* reserved and touched: an abort's count is read at once */
		CHECK(lseek(s.fd, fb, SEEK_DATA) == fb,
		      "the fallback block's first page is a hole");
		CHECK(percpu_in_fallback_block(&s, c.cell) && here == 0 &&
		      shared == 1,
		      "with rseq the fallback is not the shared block "
		      "(in it %d, counts_here %u, fallback_counts %u)",
		      percpu_in_fallback_block(&s, c.cell), here, shared);
		/* a count in an unflagged process block is never read */
		atomic_store_explicit(&s.block[cc], 1000000,
				      memory_order_relaxed);
	} else {
		CHECK(!percpu_in_fallback_block(&s, c.cell) && here == 1 &&
		      shared == 0,
		      "without rseq the fallback is not the process block "
		      "(in the shared one %d, counts_here %u, "
		      "fallback_counts %u)",
		      percpu_in_fallback_block(&s, c.cell), here, shared);
	}
	snapshot_take(name, &snap);
	printf("fallback %s: scrape counts %llu, want 1007\n",
	       percpu_in_fallback_block(&s, c.cell) ? "shared block"
						    : "process block",
	       (unsigned long long)snapshot_cell(&snap, cc));
	CHECK(snapshot_cell(&snap, cc) == 1007, "scrape %llu, want 1007",
	      (unsigned long long)snapshot_cell(&snap, cc));
	snapshot_free(&snap);
	shmet_close(&s);
	shmet_unlink(name);
}

/*
 * Section 6, the child: count n in segment name without rseq (this
 * program run again with SHMETRICS_NO_RSEQ=1), say so on stdout, wait
 * for the kill.
 */
static int
count_without_rseq(const char *name, long n)
{
	struct shmet_options o = { 0 };
	struct shmet_segment s;
	struct shmet_counter c;

	o.name = name;
	o.flags = SHMET_OPEN_NO_CREATE;
	if (shmet_open(&s, &o) < 0 || shmet_counter_new(&s, &c, "tk_total",
							"t") < 0)
		return 1;
	for (long i = 0; i < n; i++)
		shmet_counter_inc(&c);
	if (write(1, "r", 1) != 1)
		return 1;
	for (;;)
		pause();
}

/* Section 6: a killed writer without rseq, its slot taken over. */
static void
takeover_keeps_counts(const char *self)
{
	struct shmet_options o = { 0 };
	struct shmet_segment s, creator;
	struct shmet_counter c;
	struct snapshot snap;
	char name[64], n[32];
	int p[2], status;
	pid_t pid;
	char r;
	uint32_t here;

	snprintf(name, sizeof name, "/shmet-pcmode4-%d", (int)getpid());
	o.name = name;
	o.max_writers = 1;
	o.cells_per_block = 1024;
	o.max_series = 16;
	o.flags = SHMET_OPEN_NO_WRITER;
	if (shmet_open(&creator, &o) < 0 || pipe(p) < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&creator));
		exit(1);
	}
	snprintf(n, sizeof n, "%d", N / 10);
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		setenv("SHMETRICS_NO_RSEQ", "1", 1);
		execl(self, self, "--count-without-rseq", name, n, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	CHECK(read(p[0], &r, 1) == 1, "the child without rseq did not count");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	close(p[0]);
	o.flags = 0;
	open_or_die(&s, name, 0);
	if (shmet_counter_new(&s, &c, "tk_total", "t") < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&s));
		exit(1);
	}
	for (int i = 0; i < 1000; i++)
		shmet_counter_inc(&c);
	here = atomic_load_explicit(
		&((struct shmet_seg_writer *)(void *)(s.base +
						      s.hdr->writers_off))[0]
			 .counts_here,
		memory_order_acquire);
	snapshot_take(name, &snap);
	printf("taken over (slot %u, counts_here %u): scrape %llu, want %d\n",
	       s.slot, here,
	       (unsigned long long)snapshot_cell(&snap,
						 percpu_cell_index(&s, c.cell)),
	       N / 10 + 1000);
	CHECK(s.slot == 0 && here == 1, "slot %u, counts_here %u", s.slot,
	      here);
	CHECK(snapshot_cell(&snap, percpu_cell_index(&s, c.cell)) ==
		      (uint64_t)(N / 10 + 1000),
	      "the killed writer's counts are lost");
	snapshot_free(&snap);
	shmet_close(&s);
	shmet_close(&creator);
	shmet_unlink(name);
}

int
main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--count-without-rseq"))
		return count_without_rseq(argv[2], atol(argv[3]));
	where_counts_go();
	beyond_cpu_blocks();
	failed_handle();
	where_the_fallback_falls();
	takeover_keeps_counts(argv[0]);
	printf("%s\n", failures ? "FAIL" : "ok");
	return failures ? 1 : 0;
}
