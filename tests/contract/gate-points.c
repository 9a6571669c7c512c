/*
 * The series creation gate, step by step (writer/gate.c), with the test
 * points of writer/points.c (needs a build with -Dtest_points=true; exits
 * 77, a skip, without).  Every scenario runs on a family whose limit is
 * one series, where a wrong count shows at once:
 *
 * - paused after its probe: a registrant stops between its lookup and the
 *   gate; another creates the series meanwhile; the first, continued,
 *   finds it (it is not refused at the limit and does not create it
 *   twice);
 * - paused under the gate: a registrant stops after counting, before its
 *   CAS; another waits at the busy gate; both then get the one series;
 * - killed at each step of a creation: a later registrant gets the
 *   series, the family's count is 1, and the series is counted exactly;
 * - killed between the CAS and the generation bump after it, while a
 *   reader built its index between the announcing bump and the CAS: the
 *   reader does not call that index current, and its next build shows the
 *   series.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmetrics.h>

#include "raw.h"
#include "snapshot.h"

static char name[64];
static int failures;

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr); \
		failures++; \
	} \
} while (0)

static const char *const label_names[] = { "campaign_id" };

/* Register {campaign_id="x"} (limit 1) and count once; exit 0 if the
 * registration returned 0.  point: SHMETRICS_TEST_POINT, or NULL. */
static pid_t
registrant(const char *point)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct shmet_segment seg;
		struct shmet_options o = { .name = name,
					   .flags = SHMET_OPEN_NO_CREATE };
		struct shmet_family_desc d = {
			.name = "gate_total", .help = "gate",
			.type = SHMET_TYPE_COUNTER, .label_count = 1,
			.label_names = label_names, .max_series = 1,
		};
		struct shmet_family fam;
		struct shmet_counter c;
		int rc;

		if (point)
			setenv("SHMETRICS_TEST_POINT", point, 1);
		if (shmet_open(&seg, &o) != 0 ||
		    shmet_family_register(&seg, &d, &fam) != 0)
			_exit(3);
		rc = shmet_counter_labels(&fam, &c, SHMET_VALUES("x"));
		shmet_counter_inc(&c);
		if (rc != 0)
			fprintf(stderr, "registrant: %s\n",
				shmet_last_error(NULL));
		_exit(rc == 0 ? 0 : 1);
	}
	return pid;
}

static void
wait_stopped(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, WUNTRACED) != pid || !WIFSTOPPED(status)) {
		fprintf(stderr, "FAIL: %d did not stop (status %#x)\n",
			(int)pid, status);
		exit(1);
	}
}

/* One series {x}, counted `want` times, and the family's count is 1. */
static void
check_one_series(const char *what, uint64_t want)
{
	struct snapshot s;

	snapshot_take(name, &s);
	CHECK(shmet_index_series_count(s.index) == 1, "%s: %u series", what,
	      shmet_index_series_count(s.index));
	if (shmet_index_series_count(s.index) == 1) {
		uint64_t got = snapshot_cell(
			&s, shmet_index_series(s.index, 0)->first_cell);

		CHECK(got == want, "%s: counted %llu, want %llu", what,
		      (unsigned long long)got, (unsigned long long)want);
	}
	snapshot_free(&s);
	CHECK(raw_family(name, "gate_total").series_count == 1,
	      "%s: family count %u, want 1", what,
	      raw_family(name, "gate_total").series_count);
}

static void
fresh(const char *scenario)
{
	struct shmet_segment seg;
	struct shmet_options o = { 0 };

	snprintf(name, sizeof name, "/shmet-gate-%d-%s", (int)getpid(),
		 scenario);
	shmet_unlink(name);
	o.name = name;
	o.max_series = 64;
	o.max_writers = 16;
	o.cells_per_block = 1024;
	o.flags = SHMET_OPEN_NO_WRITER;
	if (shmet_open(&seg, &o) != 0) {
		fprintf(stderr, "create: %s\n", shmet_last_error(NULL));
		exit(1);
	}
	shmet_close(&seg);
}

static void
paused_after_probe(void)
{
	pid_t a, b;

	fresh("probe");
	a = registrant("series.probed:stop");
	wait_stopped(a);
	b = registrant(NULL);
	CHECK(wait_exit(b) == 0, "probe: the creator failed");
	kill(a, SIGCONT);
	CHECK(wait_exit(a) == 0, "probe: the paused registrant failed");
	check_one_series("probe", 2);
	shmet_unlink(name);
}

static void
paused_under_gate(void)
{
	pid_t a, b;

	fresh("gate");
	a = registrant("series.counted:stop");
	wait_stopped(a);
	b = registrant("series.gate_busy:stop");
	wait_stopped(b);                /* b found the gate busy */
	kill(a, SIGCONT);
	CHECK(wait_exit(a) == 0, "gate: the holder failed");
	kill(b, SIGCONT);
	CHECK(wait_exit(b) == 0, "gate: the waiter failed");
	check_one_series("gate", 2);
	shmet_unlink(name);
}

static void
killed_at(const char *point)
{
	char spec[64];
	pid_t a, b;

	fresh("kill");
	snprintf(spec, sizeof spec, "%s:kill", point);
	a = registrant(spec);
	CHECK(wait_exit(a) == 128 + SIGKILL, "%s: not killed there", point);
	b = registrant(NULL);
	CHECK(wait_exit(b) == 0, "%s: the next registrant failed", point);
	check_one_series(point, 1);
	shmet_unlink(name);
}

static void
hidden_by_kill(void)
{
	struct shmet_reader *r;
	struct shmet_index *before, *after;
	char err[256];
	pid_t a;

	fresh("hidden");
	if (shmet_reader_open(name, &r, err, sizeof err) != 0) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	a = registrant("series.announced:stop,series.published:kill");
	wait_stopped(a);
	/* a build between the announcing bump and the CAS */
	if (shmet_index_build(r, &before, err, sizeof err) != 0)
		exit(1);
	kill(a, SIGCONT);
	CHECK(wait_exit(a) == 128 + SIGKILL, "hidden: not killed after CAS");
	CHECK(!shmet_index_current(before, r),
	      "hidden: an index built before the CAS is called current");
	if (shmet_index_build(r, &after, err, sizeof err) != 0)
		exit(1);
	CHECK(shmet_index_series_count(after) == 1,
	      "hidden: the next build shows %u series, want 1",
	      shmet_index_series_count(after));
	CHECK(shmet_index_current(after, r), "hidden: never settles");
	shmet_index_free(before);
	shmet_index_free(after);
	shmet_reader_close(r);
	shmet_unlink(name);
}

int
main(void)
{
	static const char *const steps[] = {
		"series.probed", "series.gated", "series.built",
		"series.journaled", "series.counted", "series.announced",
		"series.published", "series.settled",
	};
	unsigned n = 0;

#ifndef SHMET_TEST_POINTS
	puts("built without test points (-Dtest_points=false)");
	return 77;
#endif
	paused_after_probe();
	paused_under_gate();
	for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++, n++)
		killed_at(steps[i]);
	hidden_by_kill();
	printf("gate-points: 2 pauses, %u kill points, 1 hidden-series "
	       "check: %d failures\n", n, failures);
	return failures ? 1 : 0;
}
