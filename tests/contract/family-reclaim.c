/*
 * Reclaiming family records (docs/DESIGN.md, "Reclaiming families";
 * writer/reclaim.c, writer/registrants.c), with real processes:
 *   closed   a record whose last series was removed is kept while its
 *            registrant lives, and reclaimed once it closes; a later
 *            registration of another name takes the freed record; a
 *            family handle kept across a close and an open is refused
 *   killed   the same when the registrant is killed with SIGKILL
 *   fork     a fork child holds what its parent registered, after the
 *            parent closed and exited; it creates and counts a series
 *            through the inherited handle (exact on the page)
 *   alias    an alias (another help) and its base: kept while either's
 *            registrant lives, both reclaimed after
 *   conflict a version of another type than the newest whose registrant
 *            is gone: at the next registration of the name (no sweep),
 *            its series leave, the record is reclaimed, the conflict is
 *            no longer counted
 *   pinned   a record registered by a process without a writer slot (all
 *            held) is never reclaimed: nobody can tell when it exits
 *   reshape  a removed series of a reclaimed record keeps its cell count:
 *            a histogram rebuilt in the record never takes it for its
 *            own, wider series (which would overwrite the next series)
 *   race     RACE_WORKERS processes register, count, check the page and
 *            remove one name in a loop while another reclaims: every
 *            count through a handle is on the page, exactly
 *   year     365 releases, each registering new shapes of three families
 *            in a segment of 8 family records and 4 KiB of strings while
 *            the release before exits: 0 registration failures; the
 *            high-water marks are printed (tests/RELIABILITY.md)
 * Each asserts exact outcomes; none depends on timing.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmetrics.h>

#include "raw.h"
#include "snapshot.h"

#define RACE_WORKERS 4
#define RACE_ROUNDS 150
#define YEAR 365

static char segname[64];
static int failures;

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "FAIL %s:%d: ", __func__, __LINE__);  \
			fprintf(stderr, __VA_ARGS__);                         \
			fputc('\n', stderr);                                  \
			failures++;                                           \
		}                                                             \
	} while (0)

/* A child and two pipes: it says "ready", we say "go". */
struct kid {
	pid_t pid;
	int to, from;
	int my_in, my_out;      /* the child's ends */
};

static struct kid
spawn(int (*fn)(struct kid *, const void *), const void *arg)
{
	int a[2], b[2];
	struct kid k;

	if (pipe(a) < 0 || pipe(b) < 0)
		exit(1);
	k.my_in = a[0];
	k.my_out = b[1];
	k.to = a[1];
	k.from = b[0];
	k.pid = fork();
	if (k.pid < 0)
		exit(1);
	if (k.pid == 0) {
		close(k.to);
		close(k.from);
		_exit(fn(&k, arg));
	}
	close(k.my_in);
	close(k.my_out);
	return k;
}

static void
kid_ready(struct kid *k)
{
	if (write(k->my_out, "r", 1) != 1)
		_exit(9);
}

static void
kid_wait_go(struct kid *k)
{
	char c;

	if (read(k->my_in, &c, 1) != 1)
		_exit(0);       /* the test is gone */
}

/* 1 once the child said ready, 0 if it exited first. */
static int
wait_ready(struct kid *k)
{
	char c;

	return read(k->from, &c, 1) == 1;
}

static void
go(struct kid *k)
{
	if (write(k->to, "g", 1) != 1)
		exit(1);
}

static int
finish(struct kid *k)
{
	close(k->to);
	close(k->from);
	return wait_exit(k->pid);
}

static void
kill9(struct kid *k)
{
	kill(k->pid, SIGKILL);
	CHECK(finish(k) == 128 + SIGKILL, "child %d not killed", k->pid);
}

static int
open_seg(struct shmet_segment *seg, uint32_t flags)
{
	struct shmet_options o = { .name = segname, .flags = flags };

	return shmet_open(seg, &o);
}

/* What shmetrics-ctl expire does: a sweep, which reclaims. */
static void
sweep(void)
{
	struct shmet_segment seg;

	if (open_seg(&seg, SHMET_OPEN_NO_CREATE | SHMET_OPEN_NO_WRITER) != 0) {
		fprintf(stderr, "cannot open %s\n", segname);
		exit(1);
	}
	CHECK(shmet_expire(&seg) >= 0, "shmet_expire: %s",
	      shmet_last_error(&seg));
	shmet_close(&seg);
}

static void
fresh_segment_series(const char *tag, uint32_t families, uint32_t strings,
		     uint32_t series)
{
	struct shmet_options o = { .max_families = families,
				   .string_bytes = strings, .max_series = series,
				   .max_writers = 16 };
	struct shmet_segment seg;

	snprintf(segname, sizeof segname, "/shmet-fm-%d-%s", (int)getpid(),
		 tag);
	shmet_unlink(segname);
	o.name = segname;
	if (shmet_open(&seg, &o) != 0) {
		fprintf(stderr, "cannot create %s: %s\n", segname,
			shmet_last_error(&seg));
		exit(1);
	}
	shmet_close(&seg);
}

static void
fresh_segment(const char *tag, uint32_t families, uint32_t strings)
{
	fresh_segment_series(tag, families, strings, 256);
}

/* The value of series name{...,label="v"} (label: the last label's name,
 * NULL any) over every version of the name; -1 if none. */
static double
shown_labelled(const char *name, const char *label, const char *v)
{
	struct snapshot s;
	double out = -1;

	snapshot_take(segname, &s);
	for (uint32_t fi = 0; fi < shmet_index_family_count(s.index); fi++) {
		const struct shmet_index_family *f =
			shmet_index_family(s.index, fi);

		if (f->name.len != strlen(name) ||
		    memcmp(f->name.ptr, name, f->name.len))
			continue;
		for (uint32_t i = 0; i < f->series_count; i++) {
			const struct shmet_index_series *se =
				shmet_index_series(s.index,
						   f->first_series + i);
			const struct shmet_str *lv =
				&se->label_values[f->label_count - 1];

			if (f->label_count == 0 || lv->len != strlen(v) ||
			    memcmp(lv->ptr, v, lv->len) ||
			    (label && (f->label_names[f->label_count - 1]
						       .len != strlen(label) ||
				       memcmp(f->label_names[f->label_count -
							     1].ptr,
					      label, strlen(label)))))
				continue;
			if (f->type != SHMET_TYPE_GAUGE)
				out = (double)shmet_values_counter_int(
					s.values, s.index, f->first_series + i);
			else if (!shmet_values_gauge(s.values,
						     f->first_series + i, &out))
				out = -1;
		}
	}
	snapshot_free(&s);
	return out;
}

static double
shown_value(const char *name, const char *v)
{
	return shown_labelled(name, NULL, v);
}

static uint32_t
type_conflicts(void)
{
	struct shmet_index_versions v;
	struct snapshot s;

	snapshot_take(segname, &s);
	shmet_index_versions(s.index, &v);
	snapshot_free(&s);
	return v.type_conflicts;
}

/* Health's records_skipped is 0: the reader counted nothing a writer
 * left (a tombstone, a record reclaimed or rebuilt) as corrupt. */
static int
nothing_skipped(void)
{
	struct shmet_reader_info info;
	struct shmet_buf b = { 0 };
	struct snapshot s;
	int ok;

	snapshot_take(segname, &s);
	ok = shmet_reader_info(s.reader, &info) == 0 &&
	     shmet_render_health(s.index, &info, &b) == 0 && b.data &&
	     strstr(b.data, "\"records_skipped\": 0,") != NULL;
	shmet_buf_free(&b);
	snapshot_free(&s);
	return ok;
}

static uint32_t
named(const char *name)
{
	return raw_families(segname, name).named;
}

/* ------------------------------------------------------------------ */

struct holder_arg {
	const char *name, *help;
	uint32_t type;
	uint64_t add;
};

/* Register, count arg->add in series x, ready; go: remove x, ready; go:
 * close and exit. */
static int
holder(struct kid *k, const void *p)
{
	const struct holder_arg *a = p;
	static const char *const kn[] = { "k" };
	struct shmet_family_desc d = { .name = a->name, .help = a->help,
				       .type = a->type, .label_count = 1,
				       .label_names = kn };
	struct shmet_segment seg;
	struct shmet_family f;

	if (open_seg(&seg, SHMET_OPEN_NO_CREATE) != 0 ||
	    shmet_family_register(&seg, &d, &f) != 0)
		return 3;
	if (a->type == SHMET_TYPE_GAUGE) {
		struct shmet_gauge g;

		if (shmet_gauge_labels(&f, &g, SHMET_VALUES("x")) != 0)
			return 4;
		shmet_gauge_set(&g, (double)a->add);
	} else {
		struct shmet_counter c;

		if (shmet_counter_labels(&f, &c, SHMET_VALUES("x")) != 0)
			return 4;
		shmet_counter_add(&c, a->add);
	}
	kid_ready(k);
	kid_wait_go(k);
	if (shmet_family_remove(&f, SHMET_VALUES("x")) != 0)
		return 5;
	kid_ready(k);
	kid_wait_go(k);
	shmet_close(&seg);
	return 0;
}

static void
test_closed_or_killed(int killed)
{
	struct holder_arg a = { "ra_total", "one", SHMET_TYPE_COUNTER, 5 };
	struct raw_families before, after;
	struct shmet_segment seg;
	struct shmet_family f;
	struct kid k;

	fresh_segment(killed ? "killed" : "closed", 4, 4096);
	k = spawn(holder, &a);
	CHECK(wait_ready(&k), "holder died");
	CHECK(shown_value("ra_total", "x") == 5, "x is not 5");
	go(&k);
	CHECK(wait_ready(&k), "holder died removing");
	sweep();
	CHECK(named("ra_total") == 1,
	      "reclaimed while its registrant lives (%u records)",
	      named("ra_total"));
	if (killed) {
		kill9(&k);
	} else {
		go(&k);
		CHECK(finish(&k) == 0, "holder failed");
	}
	sweep();
	before = raw_families(segname, "ra_total");
	CHECK(before.named == 0 && before.freed == 1 && before.tombs == 1 &&
		      before.reclaiming + before.claimed + before.torn == 0,
	      "not reclaimed: %u named, %u free, %u tombstones", before.named,
	      before.freed, before.tombs);
	CHECK(shown_value("ra_total", "x") == -1, "x still shown");
	CHECK(nothing_skipped(), "a reclaimed record counted as skipped");
	/* a later registration takes the freed record and its strings */
	if (open_seg(&seg, SHMET_OPEN_NO_CREATE) != 0 ||
	    shmet_counter_family(&seg, &f, "rb_total", "two", 0, NULL) != 0) {
		CHECK(0, "rb_total: %s", shmet_last_error(&seg));
		return;
	}
	after = raw_families(segname, "rb_total");
	CHECK(nothing_skipped(), "a rebuilt record counted as skipped");
	CHECK(after.used == before.used && after.freed == 0 &&
		      after.strings_used == before.strings_used &&
		      after.named == 1,
	      "the freed record was not reused: used %u -> %u, strings %u -> "
	      "%u", before.used, after.used, before.strings_used,
	      after.strings_used);
	shmet_close(&seg);
	/* a family handle kept across a close and a new open of the same
	 * segment handle names a record that may be another name's by
	 * now: refused, not used */
	if (open_seg(&seg, SHMET_OPEN_NO_CREATE) == 0) {
		struct shmet_counter c;

		CHECK(shmet_counter_labels(&f, &c, 0, NULL) == -ESTALE &&
			      shmet_family_clear(&f) == -ESTALE,
		      "a handle from before the close was used");
		shmet_close(&seg);
	}
}

/* ------------------------------------------------------------------ */

/* Register; fork a child; say its pid; close and exit.  The child waits
 * for go, counts 7 in y through the inherited handle, says ready; go:
 * removes y, closes and says ready again. */
static int
forker(struct kid *k, const void *p)
{
	static const char *const kn[] = { "k" };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;
	pid_t child;

	(void)p;
	if (open_seg(&seg, SHMET_OPEN_NO_CREATE) != 0 ||
	    shmet_counter_family(&seg, &f, "fk_total", "f", 1, kn) != 0)
		return 3;
	child = fork();
	if (child < 0)
		return 4;
	if (child == 0) {
		kid_wait_go(k);
		if (shmet_counter_labels(&f, &c, SHMET_VALUES("y")) != 0)
			_exit(5);
		shmet_counter_add(&c, 7);
		kid_ready(k);
		kid_wait_go(k);
		if (shmet_family_remove(&f, SHMET_VALUES("y")) != 0)
			_exit(6);
		shmet_close(&seg);
		kid_ready(k);
		_exit(0);
	}
	shmet_close(&seg);
	return 0;
}

static void
test_fork(void)
{
	struct kid k;

	fresh_segment("fork", 4, 4096);
	k = spawn(forker, NULL);
	/* the parent closed and exited; the child holds the record */
	CHECK(wait_exit(k.pid) == 0, "forker failed");
	sweep();
	CHECK(named("fk_total") == 1, "reclaimed under a live fork child");
	go(&k);
	CHECK(wait_ready(&k), "fork child died");
	CHECK(shown_value("fk_total", "y") == 7,
	      "the fork child's count is not on the page");
	sweep();
	CHECK(named("fk_total") == 1, "reclaimed with a series");
	go(&k);
	CHECK(wait_ready(&k), "fork child died removing");
	close(k.to);
	close(k.from);
	/* it said ready after its close: it holds nothing now */
	sweep();
	CHECK(named("fk_total") == 0 &&
		      raw_families(segname, NULL).freed == 1,
	      "not reclaimed after the fork child closed");
}

/* ------------------------------------------------------------------ */

static void
test_alias(void)
{
	struct holder_arg one = { "al_total", "one", SHMET_TYPE_COUNTER, 2 };
	struct holder_arg two = { "al_total", "two", SHMET_TYPE_COUNTER, 3 };
	struct kid a, b;

	fresh_segment("alias", 4, 4096);
	a = spawn(holder, &one);
	CHECK(wait_ready(&a), "a died");
	b = spawn(holder, &two);
	CHECK(wait_ready(&b), "b died");
	CHECK(named("al_total") == 2, "no alias record");
	CHECK(shown_value("al_total", "x") == 5, "x is not 2 + 3");
	kill9(&a);
	sweep();
	CHECK(named("al_total") == 2, "reclaimed while b holds them");
	go(&b);         /* b removes x (its base's series) */
	CHECK(wait_ready(&b), "b died removing");
	sweep();
	CHECK(named("al_total") == 2, "reclaimed while b holds them");
	go(&b);
	CHECK(finish(&b) == 0, "b failed");
	sweep();
	CHECK(named("al_total") == 0 &&
		      raw_families(segname, NULL).freed == 2,
	      "alias and base not both reclaimed (%u left)",
	      named("al_total"));
}

/* ------------------------------------------------------------------ */

static void
test_conflict(void)
{
	struct holder_arg ctr = { "tc_value", "c", SHMET_TYPE_COUNTER, 4 };
	struct holder_arg gau = { "tc_value", "g", SHMET_TYPE_GAUGE, 6 };
	struct kid a, b, c;

	fresh_segment("conflict", 4, 4096);
	a = spawn(holder, &ctr);
	CHECK(wait_ready(&a), "a died");
	b = spawn(holder, &gau);
	CHECK(wait_ready(&b), "b died");
	CHECK(type_conflicts() == 1, "no type conflict counted");
	sweep();
	CHECK(named("tc_value") == 2 && type_conflicts() == 1,
	      "the old type left while its process lives");
	kill9(&a);
	CHECK(named("tc_value") == 2 && type_conflicts() == 1,
	      "the old type left before anyone registered or swept");
	/* no sweep: a process of the new type starts (fleets do, all the
	 * time) and its registration takes the old type away */
	c = spawn(holder, &gau);
	CHECK(wait_ready(&c), "c died");
	CHECK(named("tc_value") == 1, "the old type's record stays");
	CHECK(type_conflicts() == 0, "the conflict is still counted");
	/* livesum of b's 6 and c's 6 */
	CHECK(shown_value("tc_value", "x") == 12, "the gauge is not 12");
	kill9(&c);
	go(&b);
	CHECK(wait_ready(&b), "b died");
	go(&b);
	CHECK(finish(&b) == 0, "b failed");
}

/* ------------------------------------------------------------------ */

/* Takes the segment's one writer slot; go: closes. */
static int
slot_taker(struct kid *k, const void *p)
{
	struct shmet_segment seg;

	(void)p;
	if (open_seg(&seg, SHMET_OPEN_NO_CREATE) != 0)
		return 3;
	kid_ready(k);
	kid_wait_go(k);
	shmet_close(&seg);
	return 0;
}

/* Every slot held: pn_total registered from the fallback block is pinned,
 * and stays after its process was killed. */
static void
test_pinned(void)
{
	struct holder_arg a = { "pn_total", "p", SHMET_TYPE_COUNTER, 2 };
	struct shmet_options o = { .max_families = 4, .max_writers = 1 };
	struct shmet_segment seg;
	struct kid t, k;

	snprintf(segname, sizeof segname, "/shmet-fm-%d-pinned", (int)getpid());
	shmet_unlink(segname);
	o.name = segname;
	if (shmet_open(&seg, &o) != 0)
		exit(1);
	shmet_close(&seg);
	t = spawn(slot_taker, NULL);
	CHECK(wait_ready(&t), "the slot taker died");
	k = spawn(holder, &a);
	CHECK(wait_ready(&k), "holder died");
	go(&k);
	CHECK(wait_ready(&k), "holder died removing");
	kill9(&k);
	go(&t);
	CHECK(finish(&t) == 0, "the slot taker failed");
	sweep();
	CHECK(named("pn_total") == 1,
	      "a record registered without a slot was reclaimed");
}

/* ------------------------------------------------------------------ */

/* cx_total{k="a"} (2 cells), then kp_total (2 cells, counted 5); a is
 * removed; exit. */
static int
reshape_first(struct kid *k, const void *p)
{
	static const char *const kn[] = { "k" };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter a, keep;

	(void)k;
	(void)p;
	if (open_seg(&seg, SHMET_OPEN_NO_CREATE) != 0 ||
	    shmet_counter_family(&seg, &f, "cx_total", "c", 1, kn) != 0 ||
	    shmet_counter_labels(&f, &a, SHMET_VALUES("a")) != 0 ||
	    shmet_counter_new(&seg, &keep, "kp_total", "k") != 0)
		return 3;
	shmet_counter_add(&a, 1);
	shmet_counter_add(&keep, 5);
	if (shmet_family_remove(&f, SHMET_VALUES("a")) != 0)
		return 4;
	shmet_close(&seg);
	return 0;
}

/* A histogram of 7 cells per series in the reclaimed record; its series
 * may not take a's record of 2 cells.  Exit 0 if its creation failed
 * cleanly (no record left), 1 if it counted. */
static int
reshape_second(struct kid *k, const void *p)
{
	static const char *const kn[] = { "k" };
	static const double bounds[5] = { 1, 2, 3, 4, 5 };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_histogram h;
	int rc;

	(void)k;
	(void)p;
	if (open_seg(&seg, SHMET_OPEN_NO_CREATE) != 0 ||
	    shmet_histogram_family(&seg, &f, "hx_seconds", "h", 5, bounds, 1,
				   kn) != 0)
		return 3;
	rc = shmet_histogram_labels(&f, &h, SHMET_VALUES("z"));
	for (int i = 0; i < 10; i++)
		shmet_histogram_observe(&h, 4.5);
	shmet_close(&seg);
	return rc == 0 ? 1 : rc == -ENOSPC ? 0 : 5;
}

static void
test_reshape(void)
{
	struct kid k;

	/* 2 family records, 2 series records */
	fresh_segment_series("reshape", 2, 4096, 2);
	k = spawn(reshape_first, NULL);
	CHECK(finish(&k) == 0, "first failed");
	CHECK(shown_value("kp_total", "") == -1, "(a zero-label family)");
	sweep();
	CHECK(named("cx_total") == 0, "cx_total not reclaimed");
	k = spawn(reshape_second, NULL);
	CHECK(finish(&k) <= 1, "the histogram's registration failed");
	{
		struct snapshot s;
		const struct shmet_index_family *f;

		snapshot_take(segname, &s);
		f = shmet_index_find(s.index, "kp_total");
		CHECK(f && f->series_count == 1 &&
			      shmet_values_counter_int(s.values, s.index,
						       f->first_series) == 5,
		      "kp_total is not 5: a series of 7 cells took a record "
		      "of 2");
		snapshot_free(&s);
	}
}

/* ------------------------------------------------------------------ */

struct race_shared {
	atomic_int stop;
	atomic_int bad;
	atomic_int rounds;
};

static int
race_worker(struct kid *k, const void *p)
{
	struct race_shared *sh = (struct race_shared *)(uintptr_t)p;
	static const char *const kn[] = { "k" };
	int me = (int)getpid();

	(void)k;
	for (int r = 0; r < RACE_ROUNDS; r++) {
		struct shmet_segment seg;
		struct shmet_family f;
		struct shmet_counter c;
		char v[32];

		snprintf(v, sizeof v, "%d-%d", me, r);
		if (open_seg(&seg, SHMET_OPEN_NO_CREATE) != 0 ||
		    shmet_counter_family(&seg, &f, "rc_total", "r", 1, kn) !=
			    0 ||
		    shmet_counter_labels(&f, &c, 1,
					 (const char *const[]){ v }) != 0) {
			fprintf(stderr, "race: %s\n", shmet_last_error(&seg));
			atomic_fetch_add(&sh->bad, 1);
			return 3;
		}
		shmet_counter_add(&c, 3);
		/* a handle on a freed record would count where no page
		 * shows it, or under another name */
		if (shown_value("rc_total", v) != 3) {
			fprintf(stderr, "race: %s = %g, counted 3\n", v,
				shown_value("rc_total", v));
			atomic_fetch_add(&sh->bad, 1);
		}
		if (shmet_family_remove(&f, 1, (const char *const[]){ v }) !=
		    0)
			atomic_fetch_add(&sh->bad, 1);
		shmet_close(&seg);
		atomic_fetch_add(&sh->rounds, 1);
		/* moments when nobody holds the record, for the reclaimer
		 * (no outcome depends on them) */
		usleep((useconds_t)((me * 7919 + r * 104729) % 400));
	}
	return 0;
}

static int
race_reclaimer(struct kid *k, const void *p)
{
	struct race_shared *sh = (struct race_shared *)(uintptr_t)p;

	(void)k;
	failures = 0;   /* the parent's, copied by fork */
	while (!atomic_load(&sh->stop))
		sweep();
	return failures ? 4 : 0;
}

static void
test_race(void)
{
	struct race_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
				      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct kid w[RACE_WORKERS], rec;
	struct raw_families rf;

	if (sh == MAP_FAILED)
		exit(1);
	memset(sh, 0, sizeof *sh);
	fresh_segment("race", 8, 1 << 16);
	rec = spawn(race_reclaimer, sh);
	for (int i = 0; i < RACE_WORKERS; i++)
		w[i] = spawn(race_worker, sh);
	for (int i = 0; i < RACE_WORKERS; i++)
		CHECK(finish(&w[i]) == 0, "worker %d failed", i);
	atomic_store(&sh->stop, 1);
	CHECK(finish(&rec) == 0, "the reclaimer failed");
	rf = raw_families(segname, "rc_total");
	printf("race: %d rounds, %u reclaims during them\n",
	       atomic_load(&sh->rounds), rf.reclaims);
	CHECK(atomic_load(&sh->bad) == 0 &&
		      atomic_load(&sh->rounds) == RACE_WORKERS * RACE_ROUNDS,
	      "%d wrong counts or failures", atomic_load(&sh->bad));
	sweep();
	rf = raw_families(segname, "rc_total");
	CHECK(rf.named == 0 && rf.reclaiming + rf.claimed + rf.torn == 0 &&
		      rf.freed == rf.used,
	      "after the race: %u named, %u of %u free", rf.named, rf.freed,
	      rf.used);
	munmap(sh, sizeof *sh);
}

/* ------------------------------------------------------------------ */

/* Release r: new shapes of three names; counts r + 1 (and observes);
 * ready; go: clears them, closes. */
static int
release(struct kid *k, const void *p)
{
	int r = (int)(intptr_t)p;
	char label[16], help[48];
	const char *req_labels[2] = { "route", label };
	static const char *const route[] = { "route" };
	double bounds[3] = { 0.05 * (1 + r % 7), 1, 10 };
	struct shmet_segment seg;
	struct shmet_family req, lat, up;
	struct shmet_counter c;
	struct shmet_histogram h;
	struct shmet_gauge g;

	snprintf(label, sizeof label, "l%d", r);
	snprintf(help, sizeof help, "Requests, release %d", r);
	if (open_seg(&seg, SHMET_OPEN_NO_CREATE) != 0)
		return 3;
	if (shmet_counter_family(&seg, &req, "yr_requests_total", help, 2,
				 req_labels) != 0 ||
	    shmet_histogram_family(&seg, &lat, "yr_latency_seconds", help, 3,
				   bounds, 1, route) != 0 ||
	    shmet_gauge_family(&seg, &up, "yr_release", help,
			       SHMET_GAUGE_LIVEMOSTRECENT, 1, route) != 0) {
		fprintf(stderr, "release %d: %s\n", r, shmet_last_error(&seg));
		return 4;
	}
	if (shmet_counter_labels(&req, &c, SHMET_VALUES("a", "x")) != 0 ||
	    shmet_histogram_labels(&lat, &h, SHMET_VALUES("a")) != 0 ||
	    shmet_gauge_labels(&up, &g, SHMET_VALUES("a")) != 0) {
		fprintf(stderr, "release %d: %s\n", r, shmet_last_error(&seg));
		return 5;
	}
	shmet_counter_add(&c, (uint64_t)r + 1);
	shmet_histogram_observe(&h, 0.5);
	shmet_gauge_set(&g, r);
	kid_ready(k);
	kid_wait_go(k);
	if (shmet_family_clear(&req) != 0 || shmet_family_clear(&lat) != 0 ||
	    shmet_family_clear(&up) != 0)
		return 6;
	shmet_close(&seg);
	return 0;
}

static void
test_year(void)
{
	struct kid prev = { .pid = -1 };
	uint32_t hw_used = 0, hw_strings = 0, hw_tombs = 0, hw_fam = 0;
	int bad = 0;

	fresh_segment("year", 8, 4096);
	for (int r = 0; r < YEAR; r++) {
		struct kid k = spawn(release, (const void *)(intptr_t)r);
		struct raw_families rf;
		char v[16];

		if (!wait_ready(&k)) {
			CHECK(0, "release %d failed (exit %d)", r, finish(&k));
			bad++;
			break;
		}
		snprintf(v, sizeof v, "l%d", r);
		if (shown_labelled("yr_requests_total", v, "x") != r + 1 &&
		    bad++ < 5)
			CHECK(0, "release %d: its count is not %d", r, r + 1);
		if (prev.pid > 0) {
			go(&prev);
			CHECK(finish(&prev) == 0, "release %d failed", r - 1);
		}
		prev = k;
		rf = raw_families(segname, NULL);
		hw_used = rf.used > hw_used ? rf.used : hw_used;
		hw_strings = rf.strings_used > hw_strings ? rf.strings_used
							  : hw_strings;
		hw_tombs = rf.tombs > hw_tombs ? rf.tombs : hw_tombs;
		hw_fam = rf.family_strings > hw_fam ? rf.family_strings
						    : hw_fam;
		if (getenv("FAMILY_RECLAIM_TRACE"))
			printf("release %d: used %u strings %u (families' %u) "
			       "free %u\n", r, rf.used, rf.strings_used,
			       rf.family_strings, rf.freed);
	}
	if (prev.pid > 0) {
		go(&prev);
		CHECK(finish(&prev) == 0, "the last release failed");
	}
	for (uint32_t reason = 0; reason < SHMET_FAIL_COUNT; reason++)
		CHECK(raw_failures(segname, reason) == 0,
		      "registrations failed: %llu for reason %u",
		      (unsigned long long)raw_failures(segname, reason),
		      reason);
	printf("year: %d releases x 3 shapes, 8 family records, 4096 string "
	       "bytes: high-water families_used %u, strings_used %u (family "
	       "records' %u; series label blobs take the rest, reused once "
	       "the pool is full), index tombstones %u, reclaims %u\n", YEAR,
	       hw_used, hw_strings, hw_fam, hw_tombs,
	       raw_families(segname, NULL).reclaims);
}

int
main(int argc, char **argv)
{
	const char *only = argc > 1 ? argv[1] : NULL;

	/* removed series records are reused at once (writer/reuse.c) */
	setenv("SHMETRICS_TEST_REUSE_MS", "0", 1);
#define RUN(name, call)                                                       \
	do {                                                                  \
		if (!only || !strcmp(only, name)) {                           \
			call;                                                 \
			shmet_unlink(segname);                                \
		}                                                             \
	} while (0)
	RUN("closed", test_closed_or_killed(0));
	RUN("killed", test_closed_or_killed(1));
	RUN("fork", test_fork());
	RUN("alias", test_alias());
	RUN("conflict", test_conflict());
	RUN("reshape", test_reshape());
	RUN("pinned", test_pinned());
	RUN("race", test_race());
	RUN("year", test_year());
	if (failures) {
		fprintf(stderr, "%d failures\n", failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}
