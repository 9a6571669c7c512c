/*
 * Registration from many threads at once, error paths included, with a
 * fork in the middle.  8 threads x 10,000 registrations over 100 label
 * sets of one family; every fourth call is invalid (a wrong label count
 * that names the thread), and the thread then reads shmet_last_error():
 * it must read its own call's message.  A ninth thread forks, and the
 * child registers every set once.  Run under TSan in CI: no report; every
 * set is one series; every valid registration counted exactly once.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmetrics.h>

#include "snapshot.h"

#define THREADS 8
#define CALLS 10000
#define SETS 100

static struct shmet_segment seg;
static struct shmet_family fam;
static int wrong_text[THREADS];
static int failed_valid[THREADS];

static void
set_name(char *buf, size_t len, unsigned set)
{
	snprintf(buf, len, "set-%03u", set);
}

static void *
registrar(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;

	for (unsigned i = 0; i < CALLS; i++) {
		char v[32];
		const char *vals[THREADS + 2];
		struct shmet_counter c;
		unsigned set = (i * 7 + t) % SETS;

		set_name(v, sizeof v, set);
		for (unsigned k = 0; k < THREADS + 2; k++)
			vals[k] = v;
		if (i % 4 == 0) {
			/* invalid: t + 2 values for a one-label family */
			char want[64];
			int rc = shmet_counter_labels(&fam, &c, t + 2, vals);

			snprintf(want, sizeof want, "got %u", t + 2);
			if (rc != -EINVAL ||
			    !strstr(shmet_last_error(&seg), want))
				wrong_text[t]++;
			continue;
		}
		if (shmet_counter_labels(&fam, &c, 1, vals) < 0)
			failed_valid[t]++;
		shmet_counter_inc(&c);
	}
	return NULL;
}

static void *
forker(void *arg)
{
	int status;
	pid_t pid = fork();

	(void)arg;
	if (pid == 0) {
		int bad = 0;

		for (unsigned s = 0; s < SETS; s++) {
			char v[32];
			const char *vals[1] = { v };
			struct shmet_counter c;

			set_name(v, sizeof v, s);
			if (shmet_counter_labels(&fam, &c, 1, vals) < 0)
				bad++;
			shmet_counter_inc(&c);
		}
		_exit(bad ? 1 : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid ||
	    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return (void *)1;
	return NULL;
}

static int
check_counts(const char *name)
{
	uint64_t want[SETS] = { 0 };
	struct snapshot snap;
	const struct shmet_index *idx;
	const struct shmet_values *v;
	int bad = 0;

	for (unsigned t = 0; t < THREADS; t++)
		for (unsigned i = 0; i < CALLS; i++)
			if (i % 4)
				want[(i * 7 + t) % SETS]++;
	for (unsigned s = 0; s < SETS; s++)
		want[s]++;              /* the fork child */
	snapshot_take(name, &snap);
	idx = snap.index;
	v = snap.values;
	if (shmet_index_series_count(idx) != SETS) {
		fprintf(stderr, "%u series, want %u\n",
			shmet_index_series_count(idx), SETS);
		bad++;
	}
	for (uint32_t i = 0; i < shmet_index_series_count(idx); i++) {
		const struct shmet_index_series *s = shmet_index_series(idx, i);
		unsigned set = (unsigned)atoi(s->label_values[0].ptr + 4);

		if (set >= SETS ||
		    shmet_values_counter_int(v, idx, i) != want[set]) {
			fprintf(stderr, "set %u: %llu, want %llu\n", set,
				(unsigned long long)shmet_values_counter_int(
					v, idx, i),
				(unsigned long long)want[set < SETS ? set : 0]);
			bad++;
		}
	}
	snapshot_free(&snap);
	return bad;
}

int
main(void)
{
	static const char *const labels[] = { "set" };
	struct shmet_options o = { 0 };
	pthread_t t[THREADS], f;
	void *forked;
	char name[64];
	int bad = 0;

	snprintf(name, sizeof name, "/shmet-regthr-%d", (int)getpid());
	o.name = name;
	o.max_writers = 8;
	o.max_series = 4096;
	o.cells_per_block = 65536;
	if (shmet_open(&seg, &o) < 0 ||
	    shmet_counter_family(&seg, &fam, "reg_total", "r", 1, labels) < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&seg));
		return 1;
	}
	for (unsigned i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, registrar, (void *)(uintptr_t)i);
	pthread_create(&f, NULL, forker, NULL);
	for (unsigned i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	pthread_join(f, &forked);
	for (unsigned i = 0; i < THREADS; i++) {
		if (wrong_text[i] || failed_valid[i])
			fprintf(stderr, "thread %u: %d wrong messages, %d "
				"failed valid calls\n", i, wrong_text[i],
				failed_valid[i]);
		bad += wrong_text[i] + failed_valid[i];
	}
	if (forked) {
		fprintf(stderr, "fork child failed\n");
		bad++;
	}
	bad += check_counts(name);
	shmet_close(&seg);
	shmet_unlink(name);
	printf("%u threads x %u registrations, fork: %s\n", THREADS, CALLS,
	       bad ? "FAILED" : "ok");
	return bad ? 1 : 0;
}
