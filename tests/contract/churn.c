/*
 * Series churn (docs/DESIGN.md, "Idle expiry", "Reuse"): a segment of
 * 1,000 series with a TTL of one second serves CHURN_SERIES (default
 * 8,000: past the point where every slot of its series index has held a
 * series; tools/run-reliability.sh --long: 1,000,000) distinct campaign_id
 * series, created over time by long-lived and short-lived processes, with
 * at most 500 live at once (a worker creates only while the family has
 * fewer, and while records are free: a fleet's campaigns come and go at
 * their own pace).
 *
 * Each series is counted 1 to 3 times and then left idle; it expires and
 * its record, cells and label bytes go to a later series.  A tenth of the
 * series are written once more, 2.5 s later, through the handle kept from
 * before their expiry (a stale handle), which must land nowhere.  Checked, from a
 * monitor that scrapes all along and at the end:
 *   - every series shown whose counting finished holds exactly its count
 *     (a stale write into a reused record would show as one more);
 *   - no registration failed (the segment's failure counters stay 0);
 *   - capacity is stable: series, cells and string bytes in use stay
 *     within what 1,000 series take (high-water marks printed);
 *   - the stale writes were dropped and counted, at least one.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmetrics.h>

#include "raw.h"
#include "snapshot.h"

#define MAX_SERIES 1000u
#define LIVE_CAP 500u
#define LONG_WORKERS 2
#define SHORT_AT_ONCE 2
#define SHORT_BATCH 200u
/* done[]: a kept handle wrote once more, maybe while its series lived */
#define STALE_MAY_COUNT 0x80u
#define MAX_STALE 64

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char segname[64];

/* Shared with the workers (an anonymous shared mapping). */
struct shared {
	_Atomic uint32_t next;          /* the next campaign to create */
	_Atomic uint32_t failures;      /* a worker's own check failed */
	_Atomic uint8_t done[];         /* per campaign: its final count */
};

static struct shared *sh;
static uint32_t total;

static uint32_t
live_series(const struct shmet_segment *seg, const struct shmet_family *f)
{
	const struct shmet_seg_family *fams =
		(const void *)((const unsigned char *)seg->hdr +
			       seg->hdr->families_off);

	return atomic_load(&fams[f->id].series_count);
}

/*
 * Records a new series may take now: never used, or removed more than
 * SHMET_REUSE_NS ago.  The workload keeps within the segment as a sized
 * fleet does (live series plus those removed in the last second fit in
 * it); a creation beyond that fails, and the test counts failures.
 */
static uint32_t
takeable(const struct shmet_segment *seg)
{
	const struct shmet_seg_header *h = seg->hdr;
	const struct shmet_seg_series *t =
		(const void *)((const unsigned char *)h + h->series_off);
	uint32_t used = atomic_load(&h->series_used), n = h->max_series - used;
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	for (uint32_t i = 0; i < used; i++) {
		uint64_t rn = atomic_load(&t[i].removed_ns);

		n += atomic_load(&t[i].state) == SHMET_SERIES_REMOVED && rn &&
		     now >= rn + SHMET_REUSE_NS;
	}
	return n;
}

/* Create and count campaigns until `quota` (or all) are done. */
static void
worker(unsigned seed, uint32_t quota)
{
	static const char *const k[] = { "campaign_id" };
	struct shmet_options o = { .name = segname,
				   .flags = SHMET_OPEN_NO_CREATE };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter stale[MAX_STALE];
	uint32_t stale_id[MAX_STALE];
	uint64_t stale_ms[MAX_STALE];
	unsigned nstale = 0;

	if (shmet_open(&seg, &o) != 0 ||
	    shmet_counter_family(&seg, &f, "churn_total", "c", 1, k) != 0)
		_exit(2);
	for (uint32_t made = 0; made < quota; made++) {
		struct shmet_counter c;
		uint32_t id = atomic_fetch_add(&sh->next, 1);
		char v[16];
		const char *vals[1] = { v };
		unsigned n = 1 + rand_r(&seed) % 3;

		if (id >= total)
			break;
		/* at the cap, a worker waits for series to expire, and runs
		 * the sweep itself (a fleet's timer, shmet_expire) */
		while (live_series(&seg, &f) >= LIVE_CAP ||
		       takeable(&seg) < 2 * (LONG_WORKERS + SHORT_AT_ONCE)) {
			if (shmet_expire(&seg) < 0)
				_exit(3);
			usleep(20000);
		}
		snprintf(v, sizeof v, "c%07u", id);
		if (shmet_counter_labels(&f, &c, 1, vals) != 0) {
			fprintf(stderr, "campaign %u: %s\n", id,
				shmet_last_error(&seg));
			atomic_fetch_add(&sh->failures, 1);
			continue;
		}
		for (unsigned i = 0; i < n; i++)
			shmet_counter_inc(&c);
		/* Release: the monitor that sees the count sees the adds
		 * done (they are in the segment before this store). */
		atomic_store_explicit(&sh->done[id], (uint8_t)n,
				      memory_order_release);
		/* Keep some handles: written again long after, when their
		 * series has expired and its record may be another's. */
		/* Write each kept handle once more 2.5 s after: its series
		 * has expired by then and its record is likely another's. */
		for (unsigned i = 0; i < nstale;) {
			if (now_ms() - stale_ms[i] < 2500) {
				i++;
				continue;
			}
			/* counts only if its series still lives: then
			 * STALE_MAY_COUNT allows the one more */
			atomic_fetch_or(&sh->done[stale_id[i]], STALE_MAY_COUNT);
			shmet_counter_inc(&stale[i]);
			nstale--;
			stale[i] = stale[nstale];
			stale_id[i] = stale_id[nstale];
			stale_ms[i] = stale_ms[nstale];
		}
		if (id % 10 == 0 && nstale < MAX_STALE) {
			stale_id[nstale] = id;
			stale_ms[nstale] = now_ms();
			stale[nstale++] = c;
		}
	}
	shmet_close(&seg);
	_exit(0);
}

static pid_t
spawn(unsigned seed, uint32_t quota)
{
	pid_t pid = fork();

	if (pid == 0)
		worker(seed, quota);
	return pid;
}

/* Check every finished series shown: exactly its count.  Its misses. */
static unsigned
check_scrape(uint32_t *hwm_series, uint32_t *hwm_cells, uint32_t *hwm_strings)
{
	struct snapshot s;
	struct shmet_reader_info in;
	const struct shmet_index_family *f;
	unsigned bad = 0;

	snapshot_take(segname, &s);
	shmet_reader_info(s.reader, &in);
	if (in.series_used > *hwm_series)
		*hwm_series = in.series_used;
	if (in.cells_used > *hwm_cells)
		*hwm_cells = in.cells_used;
	if (in.strings_used > *hwm_strings)
		*hwm_strings = in.strings_used;
	f = shmet_index_find(s.index, "churn_total");
	for (uint32_t i = 0; f && i < f->series_count; i++) {
		uint32_t si = f->first_series + i;
		const struct shmet_index_series *se =
			shmet_index_series(s.index, si);
		uint32_t id = (uint32_t)strtoul(se->label_values[0].ptr + 1,
						NULL, 10);
		uint8_t want;
		uint64_t got;

		if (id >= total)
			continue;
		want = atomic_load_explicit(&sh->done[id],
					    memory_order_acquire);
		got = shmet_values_counter_int(s.values, s.index, si);
		/* once its counting finished, exact: one more only from its
		 * own kept handle, if it wrote while the series lived; a
		 * stale write into a reused record would show one more on
		 * another campaign */
		if (want && got != (want & 0x7fu) &&
		    !((want & STALE_MAY_COUNT) && got == (want & 0x7fu) + 1u)) {
			fprintf(stderr, "FAIL: campaign %u shows %llu, "
				"counted %u\n", id, (unsigned long long)got,
				want);
			bad++;
		}
	}
	snapshot_free(&s);
	return bad;
}

int
main(int argc, char **argv)
{
	struct shmet_options o = { .max_series = MAX_SERIES,
				   .max_families = 16,
				   .cells_per_block = 4096,
				   .string_bytes = 1 << 20,
				   .series_ttl_s = 1 };
	struct shmet_segment seg;
	const char *env = getenv("CHURN_SERIES");
	uint32_t hwm_series = 0, hwm_cells = 0, hwm_strings = 0;
	pid_t longs[LONG_WORKERS], shorts[SHORT_AT_ONCE] = { 0 };
	unsigned bad = 0, seed = 1, scrapes = 0;
	int failed = 0;
	struct timespec t0, t1;

	(void)argc;
	(void)argv;
	total = env ? (uint32_t)strtoul(env, NULL, 10) : 8000;
	snprintf(segname, sizeof segname, "/shmet-churn-%d", (int)getpid());
	shmet_unlink(segname);
	sh = mmap(NULL, sizeof *sh + total, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	o.name = segname;
	if (shmet_open(&seg, &o) != 0) {
		fprintf(stderr, "open: %s\n", shmet_last_error(&seg));
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < LONG_WORKERS; i++)
		longs[i] = spawn(seed++, UINT32_MAX);
	/* short-lived workers, two at a time, until every campaign is made;
	 * the monitor scrapes all along */
	while (atomic_load(&sh->next) < total) {
		for (int i = 0; i < SHORT_AT_ONCE; i++) {
			int st;

			if (shorts[i] && waitpid(shorts[i], &st, WNOHANG) == 0)
				continue;
			if (shorts[i] && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
				failed++;
			shorts[i] = spawn(seed++, SHORT_BATCH);
		}
		bad += check_scrape(&hwm_series, &hwm_cells, &hwm_strings);
		scrapes++;
		usleep(200 * 1000);
	}
	for (int i = 0; i < LONG_WORKERS; i++)
		failed += wait_exit(longs[i]) != 0;
	for (int i = 0; i < SHORT_AT_ONCE; i++)
		if (shorts[i])
			failed += wait_exit(shorts[i]) != 0;
	bad += check_scrape(&hwm_series, &hwm_cells, &hwm_strings);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (uint32_t r = 0; r < SHMET_FAIL_COUNT; r++)
		if (raw_failures(segname, r)) {
			fprintf(stderr, "FAIL: %llu registration failures "
				"(reason %u)\n",
				(unsigned long long)raw_failures(segname, r),
				r);
			bad++;
		}
	if (atomic_load(&sh->failures))
		bad++;
	if (atomic_load(&seg.hdr->stale_writes) == 0) {
		fprintf(stderr, "FAIL: no stale write was counted\n");
		bad++;
	}
	/* 1,000 series of 2 cells and a 16-byte blob each, plus the family */
	if (hwm_series > MAX_SERIES || hwm_cells > 2 * MAX_SERIES ||
	    hwm_strings > 16 * MAX_SERIES + 256) {
		fprintf(stderr, "FAIL: capacity grew\n");
		bad++;
	}
	printf("churn: %u series in %.1f s, %u scrapes; high-water: %u "
	       "series records, %u cells, %u string bytes; %llu expired, "
	       "%llu stale writes dropped; %u violations, %d workers "
	       "failed\n", total,
	       (double)(t1.tv_sec - t0.tv_sec) +
		       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       scrapes, hwm_series, hwm_cells, hwm_strings,
	       (unsigned long long)atomic_load(&seg.hdr->expired),
	       (unsigned long long)atomic_load(&seg.hdr->stale_writes), bad,
	       failed);
	shmet_close(&seg);
	shmet_unlink(segname);
	return bad || failed ? 1 : 0;
}
