/*
 * The kill-point harness (anchor: SQLite's crash tests, which crash at
 * every write).  Every named step (SHMET_POINT, writer/points.c) of every
 * protocol a writer runs is made fatal once, and then the segment is
 * checked from outside.  Needs a build with test points (exit 77 without).
 *
 * Two protocols, each a victim process (and its fork child):
 *   A  create the segment, register a counter, a histogram and a sum
 *      gauge, count, fork a child that registers and counts, look up an
 *      existing series, close;
 *   B  after A ran whole: attach (a takeover of A's released slot, with
 *      the fold of its gauge), register, create a series, set the gauge,
 *      close.
 * A traced run of each lists the points its processes reach ("pid name",
 * n-th visit per process); then each (point, n) gets one run killed there
 * (SIGKILL itself) and one cancelled there (pthread_cancel of the thread
 * running the protocol; its main thread then forks, registers and closes
 * under an alarm, so a lock a cancel left held shows as a hang).  The
 * victim reports each step that returned (a series registered, an
 * increment, an observation, a gauge set) on a pipe.  After each run:
 *   - a reader that built an index before B ran (a running exporter) is
 *     current after at most one more build, and it shows every reported
 *     series;
 *   - every counter and histogram holds exactly the reported increments,
 *     the gauge the sum of the reported sets (sum mode keeps dead and
 *     closed writers' values);
 *   - each family's series count in the segment equals the series a
 *     reader finds (no unit of the cardinality limit leaked);
 *   - a later writer attaches, finds and creates series and counts, and a
 *     second scrape shows its increments exactly.
 * Prints the number of points x protocols x actions run.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
#include "shmetrics-reader.h"
#include "victim.h"

#define MAX_REPORTS 64
#define MAX_POINTS 256

static char segname[64];
static int failures, runs;

/* ------------------------------------------------------------------ */
/* Victims                                                            */

static const char *const k_names[] = { "k" };
static const double bounds[] = { 0.1, 1.0 };

static void
report(const char *fmt, const char *a, const char *b)
{
	char line[128];

	if (snprintf(line, sizeof line, fmt, a, b) > 0)
		victim_report(line);
}

struct families {
	struct shmet_family calls, seconds;
};

static int
register_families(struct shmet_segment *seg, struct families *f)
{
	return shmet_counter_family(seg, &f->calls, "kp_calls_total", "calls",
				    1, k_names) |
	       shmet_histogram_family(seg, &f->seconds, "kp_seconds", "secs",
				      2, bounds, 1, k_names);
}

/* Count once in kp_calls_total{k} (and observe in kp_seconds{k}). */
static void
count(struct families *f, const char *k, int observe)
{
	const char *vals[1] = { k };
	struct shmet_counter c;
	struct shmet_histogram h;

	if (shmet_counter_labels(&f->calls, &c, 1, vals) == 0)
		report("S kp_calls_total %s\n", k, "");
	shmet_counter_inc(&c);
	report("I kp_calls_total %s\n", k, "");
	if (!observe)
		return;
	if (shmet_histogram_labels(&f->seconds, &h, 1, vals) == 0)
		report("S kp_seconds %s\n", k, "");
	shmet_histogram_observe(&h, 0.5);
	report("O kp_seconds %s\n", k, "");
}

static void
set_gauge(struct shmet_segment *sg, const char *v)
{
	struct shmet_gauge g;

	if (shmet_gauge_new(sg, &g, "kp_workers", "workers",
			    SHMET_GAUGE_SUM) != 0)
		return;
	/* a cancellation point after every API call, before the hot path:
	 * a cancel pending from the call ends the thread here */
	report("S kp_workers %s\n", "", "");
	shmet_gauge_set(&g, atof(v));
	report("G kp_workers %s\n", v, "");
}

/* Static: a cancelled protocol thread's segment stays attached (and on
 * the fork list) after its stack is gone, as an application's would. */
static struct shmet_segment seg;

static void
protocol_a(void)
{
	struct shmet_options o = { .name = segname, .max_writers = 8,
				   .max_families = 32, .max_series = 256,
				   .cells_per_block = 4096,
				   .string_bytes = 65536 };
	struct families f;
	pid_t child;

	if (shmet_open(&seg, &o) != 0 || register_families(&seg, &f) != 0)
		_exit(3);
	count(&f, "a", 1);
	count(&f, "b", 1);
	set_gauge(&seg, "5");
	child = fork();
	if (child == 0) {
		count(&f, "child", 0);
		shmet_close(&seg);
		_exit(0);
	}
	if (child > 0) {
		int status;

		waitpid(child, &status, 0);
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			report("K child %s\n", "killed", "");
	}
	count(&f, "a", 0);
	shmet_close(&seg);
}

static void
protocol_b(void)
{
	struct shmet_options o = { .name = segname,
				   .flags = SHMET_OPEN_NO_CREATE };
	struct families f;

	if (shmet_open(&seg, &o) != 0 || register_families(&seg, &f) != 0)
		_exit(3);
	count(&f, "b", 0);
	count(&f, "c", 1);
	/* a removal (writer/remove.c): "r" before, "R" once it returned */
	report("r kp_calls_total %s\n", "c", "");
	if (shmet_family_remove(&f.calls, SHMET_VALUES("c")) == 0)
		report("R kp_calls_total %s\n", "c", "");
	set_gauge(&seg, "2");
	shmet_close(&seg);
}

static void *
protocol_thread(void *arg)
{
	if (*(const char *)arg == 'A')
		protocol_a();
	else
		protocol_b();
	return NULL;
}

/* The victim: run the protocol in a thread (a cancel ends that thread);
 * then prove that nothing it held stays held. */
static int
victim(const char *which)
{
	pthread_t t;
	struct shmet_segment later;
	struct shmet_options o = { .name = segname,
				   .flags = SHMET_OPEN_NO_CREATE };
	struct families f;
	pid_t child;

	if (pthread_create(&t, NULL, protocol_thread, (void *)which) != 0 ||
	    pthread_join(t, NULL) != 0)
		return 4;
	unsetenv("SHMETRICS_TEST_POINT");
	unsetenv("SHMETRICS_TEST_POINT_TRACE");
	alarm(60);
	child = fork();
	if (child == 0)
		_exit(0);
	if (child < 0 || waitpid(child, NULL, 0) != child)
		return 5;
	if (shmet_open(&later, &o) != 0 ||
	    register_families(&later, &f) != 0)
		return 6;
	shmet_close(&later);
	report("A alive %s\n", which, "");
	return 0;
}

/* ------------------------------------------------------------------ */
/* The harness                                                        */

/* The protocol victim_run's victim runs (victim_run takes no argument). */
static const char *victim_which;

static int
victim_protocol(void)
{
	return victim(victim_which);
}

static int
run_victim(const char *which, const char *point, const char *action,
	   unsigned nth, int trace_fd, char *reports, size_t cap)
{
	victim_which = which;
	return victim_run(victim_protocol, point, action, nth, trace_fd,
			  reports, cap);
}

/* The points a traced run of protocol `which` reaches, deduplicated as
 * (name, n-th visit in its process). */
static unsigned
trace_points(const char *which, struct victim_point *out, unsigned cap)
{
	char reports[8192];
	unsigned n;
	int fd;

	victim_which = which;
	fd = victim_traced(victim_protocol, reports, sizeof reports, NULL);
	n = victim_points(fd, NULL, out, cap);
	close(fd);
	return n;
}

static int
check(int cond, const char *what, const char *ctx)
{
	if (!cond) {
		fprintf(stderr, "FAIL %s: %s\n", ctx, what);
		failures++;
	}
	return cond;
}

/* How many report lines of kind k for family fam and label lab. */
static unsigned
reported(const char *reports, char kind, const char *fam, const char *lab)
{
	char want[96];
	unsigned n = 0;
	const char *p = reports;

	snprintf(want, sizeof want, "%c %s %s\n", kind, fam, lab);
	while ((p = strstr(p, want))) {
		if (p == reports || p[-1] == '\n')
			n++;
		p += strlen(want);
	}
	return n;
}

/* The gauge: the sum of every reported set. */
static double
reported_gauge(const char *reports)
{
	double sum = 0;

	for (const char *p = reports; (p = strstr(p, "G kp_workers "));
	     p++)
		sum += atof(p + strlen("G kp_workers "));
	return sum;
}

/*
 * The family's count is its series: exactly, once a later writer created
 * a series in it (its gate settled any journal); before, a journal left
 * by a creator that died may still say one more, and must name the count
 * it had.
 */
static void
check_count(const char *family, const struct shmet_index_family *f,
	    unsigned settled, const char *ctx)
{
	struct raw_family raw = raw_family(segname, family);
	int pending = raw.pending;
	uint32_t before = raw.gate_count, n = raw.series_count;
	uint32_t shown = f ? f->series_count : 0;
	char what[160];

	snprintf(what, sizeof what, "%s: the family's count %u (journal %d, "
		 "before %u) is not its %u series", family, n, pending,
		 before, shown);
	if (settled || !pending)
		check(n == shown && !pending, what, ctx);
	else if (raw.removing)
		/* a removal: the series goes (shown) when its record is
		 * marked, the count follows */
		check((before == shown || before == shown + 1) &&
		      (n == before || n + 1 == before), what, ctx);
	else
		/* before = the count when the creator started; the record
		 * counts once it is published (shown) */
		check((before == shown || before + 1 == shown) &&
		      (n == before || n == before + 1), what, ctx);
}

/* Every reported series shown with exactly its reported counts, plus
 * `extra` increments of kp_calls_total{a}; the families' counts exact. */
static void
check_scrape(struct shmet_reader *r, struct shmet_index **idx,
	     const char *reports, unsigned extra, const char *ctx)
{
	static const char *const labels[] = { "a", "b", "c", "child", "new" };
	struct shmet_values *v = shmet_values_new();
	const struct shmet_index_family *calls, *secs, *workers;
	char err[256];

	/* A running reader: at most one build past the one it has. */
	if (!*idx || !shmet_index_current(*idx, r)) {
		shmet_index_free(*idx);
		*idx = NULL;
		if (shmet_index_build(r, idx, err, sizeof err) != 0) {
			check(0, err, ctx);
			return;
		}
	}
	if (!shmet_index_current(*idx, r)) {
		shmet_index_free(*idx);
		if (shmet_index_build(r, idx, err, sizeof err) != 0) {
			*idx = NULL;
			check(0, err, ctx);
			return;
		}
		check(shmet_index_current(*idx, r), "never settles", ctx);
	}
	if (!v || shmet_values_collect(r, *idx, v) != 0) {
		check(0, "cannot collect", ctx);
		shmet_values_free(v);
		return;
	}
	calls = shmet_index_find(*idx, "kp_calls_total");
	secs = shmet_index_find(*idx, "kp_seconds");
	workers = shmet_index_find(*idx, "kp_workers");
	for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
		const char *k = labels[i];
		unsigned want_s = reported(reports, 'S', "kp_calls_total", k);
		unsigned want_i = reported(reports, 'I', "kp_calls_total", k) +
				  (strcmp(k, "a") ? 0 : extra) +
				  (strcmp(k, "new") ? 0 : extra);
		unsigned want_o = reported(reports, 'O', "kp_seconds", k) +
				  (strcmp(k, "new") ? 0 : extra);
		uint64_t got_i = 0, got_o = 0;
		int found_c = 0, found_h = 0;
		char what[160];

		for (uint32_t s = 0; calls && s < calls->series_count; s++) {
			const struct shmet_index_series *se =
				shmet_index_series(*idx, calls->first_series + s);

			if (se->label_values[0].len == strlen(k) &&
			    !memcmp(se->label_values[0].ptr, k, strlen(k))) {
				found_c = 1;
				got_i = shmet_values_counter_int(
					v, *idx, calls->first_series + s);
			}
		}
		for (uint32_t s = 0; secs && s < secs->series_count; s++) {
			const struct shmet_index_series *se =
				shmet_index_series(*idx, secs->first_series + s);

			if (se->label_values[0].len == strlen(k) &&
			    !memcmp(se->label_values[0].ptr, k, strlen(k))) {
				found_h = 1;
				got_o = shmet_values_hist_count(
					v, *idx, secs->first_series + s);
			}
		}
		int removed = reported(reports, 'R', "kp_calls_total", k);
		int removing = reported(reports, 'r', "kp_calls_total", k);

		/* removed: gone; a removal cut short: gone or whole */
		snprintf(what, sizeof what, "kp_calls_total{k=\"%s\"} "
			 "removed but shown, or half removed", k);
		check(!(removed && found_c) &&
		      !(removing && !found_c && got_i != 0), what, ctx);
		if (removed || (removing && !found_c))
			want_s = 0, want_i = 0;
		snprintf(what, sizeof what, "kp_calls_total{k=\"%s\"} "
			 "reported registered but not shown", k);
		check(!want_s || found_c, what, ctx);
		snprintf(what, sizeof what, "kp_calls_total{k=\"%s\"} = %llu, "
			 "reported %u", k, (unsigned long long)got_i, want_i);
		check(got_i == want_i, what, ctx);
		snprintf(what, sizeof what, "kp_seconds{k=\"%s\"} count %llu, "
			 "reported %u", k, (unsigned long long)got_o, want_o);
		check(got_o == want_o &&
		      (!reported(reports, 'S', "kp_seconds", k) || found_h),
		      what, ctx);
	}
	if (workers && workers->series_count == 1) {
		double g = 0;

		shmet_values_gauge(v, workers->first_series, &g);
		check(g == reported_gauge(reports), "kp_workers is not the "
		      "sum of the reported sets", ctx);
	} else {
		check(reported_gauge(reports) == 0, "kp_workers set but not "
		      "shown", ctx);
	}
	check_count("kp_calls_total", calls, extra, ctx);
	check_count("kp_seconds", secs, extra, ctx);
	shmet_values_free(v);
}

/* A writer after the victim: find kp_calls_total{a}, create {new}, count
 * each once.  Its exit status. */
static int
later_writer(void)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		struct shmet_segment w;
		struct shmet_options o = { .name = segname };
		struct shmet_counter c;
		struct families f;

		alarm(60);
		if (shmet_open(&w, &o) != 0 ||
		    register_families(&w, &f) != 0)
			_exit(3);
		if (shmet_counter_labels(&f.calls, &c, SHMET_VALUES("a")))
			_exit(4);
		shmet_counter_inc(&c);
		if (shmet_counter_labels(&f.calls, &c, SHMET_VALUES("new")))
			_exit(5);
		shmet_counter_inc(&c);
		{
			struct shmet_histogram h;

			if (shmet_histogram_labels(&f.seconds, &h,
						   SHMET_VALUES("new")))
				_exit(6);
			shmet_histogram_observe(&h, 0.5);
		}
		shmet_close(&w);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	return status;
}

/* One run: protocol `which` with `action` at (point, nth), then the
 * checks.  B first needs A run whole. */
static void
one_run(const char *which, const struct victim_point *pt,
	const char *action)
{
	char reports[8192], prior[8192] = "", ctx[160];
	struct shmet_reader *r = NULL;
	struct shmet_index *idx = NULL;
	char err[256];
	int status;

	snprintf(ctx, sizeof ctx, "protocol %.1s, %.6s at %.47s #%u", which, action,
		 pt->name, pt->nth);
	shmet_unlink(segname);
	if (*which == 'B') {
		run_victim("A", NULL, NULL, 0, -1, prior, sizeof prior);
		if (shmet_reader_open(segname, &r, err, sizeof err) != 0 ||
		    shmet_index_build(r, &idx, err, sizeof err) != 0) {
			check(0, err, ctx);
			return;
		}
	}
	status = run_victim(which, pt->name, action, pt->nth, -1, reports,
			    sizeof reports);
	if (!strcmp(action, "kill"))
		check((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
		      strstr(reports, "K child killed"),
		      "neither the victim nor its child was killed", ctx);
	else
		check(WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
		      strstr(reports, "A alive"),
		      "after the cancel, the victim's process is not whole "
		      "(a lock left held, or a failure)", ctx);
	if (strlen(prior) + strlen(reports) + 1 < sizeof prior)
		strcat(prior, reports);
	if (!r && shmet_reader_open(segname, &r, err, sizeof err) != 0) {
		/* killed before the segment existed: a later writer makes
		 * it (an initialiser that died is replaced) */
		check(later_writer() == 0, "a later writer cannot attach", ctx);
		runs++;
		return;
	}
	check_scrape(r, &idx, prior, 0, ctx);
	check(later_writer() == 0, "a later writer failed", ctx);
	check_scrape(r, &idx, prior, 1, ctx);
	if (getenv("KILL_POINTS_KEEP") && failures)
		exit(1);        /* keep the segment to look at */
	shmet_index_free(idx);
	shmet_reader_close(r);
	runs++;
}

int
main(void)
{
	static const char *const protocols[] = { "A", "B" };
	static const char *const actions[] = { "kill", "cancel" };
	static struct victim_point pts[MAX_POINTS];
	unsigned total_points = 0;
	/* one point's runs only, when debugging */
	const char *only = getenv("KILL_POINTS_ONLY");

#ifndef SHMET_TEST_POINTS
	puts("built without test points (-Dtest_points=false)");
	return 77;
#endif
	snprintf(segname, sizeof segname, "/shmet-kill-points-%d",
		 (int)getpid());
	for (size_t p = 0; p < 2; p++) {
		unsigned n;

		shmet_unlink(segname);
		if (*protocols[p] == 'B') {
			char ignored[8192];

			run_victim("A", NULL, NULL, 0, -1, ignored,
				   sizeof ignored);
		}
		n = trace_points(protocols[p], pts, MAX_POINTS);
		printf("protocol %s: %u points\n", protocols[p], n);
		total_points += n;
		for (unsigned i = 0; i < n; i++)
			for (size_t a = 0; a < 2; a++)
				if (!only || !strcmp(only, pts[i].name))
					one_run(protocols[p], &pts[i],
						actions[a]);
	}
	shmet_unlink(segname);
	printf("kill-points: %u points x 2 actions over 2 protocols: %d runs, "
	       "%d invariant violations\n", total_points, runs, failures);
	return failures ? 1 : 0;
}
