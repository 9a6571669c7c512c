/*
 * One thread forks 1,000 times while others loop in malloc and stdio.  The
 * fork child handler runs in a child of a multi-threaded parent, where
 * only async-signal-safe calls are allowed: a malloc or stdio lock held by
 * another thread at fork time stays locked in the child forever, so a
 * handler that formats a message or allocates can hang.  Each child
 * registers and counts, then exits; the test finishes (meson's timeout
 * catches a hang) and every child's count arrives: in its CPU's cell
 * (rseq) or in its own process block (SHMETRICS_NO_RSEQ=1, the other
 * variant of this test).
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

#include "snapshot.h"

#define FORKS 1000

static atomic_int stop;

static void *
churn(void *arg)
{
	FILE *f = fopen("/dev/null", "w");
	unsigned n = 0;

	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		char *p = malloc(64 + n % 4096);

		if (p)
			memset(p, 1, 64);
		fprintf(f ? f : stderr, "%u %s\n", n++, p ? "x" : "");
		free(p);
	}
	if (f)
		fclose(f);
	return NULL;
}

int
main(void)
{
	struct shmet_options o = { 0 };
	struct shmet_segment seg;
	struct shmet_counter parent;
	pthread_t t[2];
	char name[64];
	int failures = 0;

	snprintf(name, sizeof name, "/shmet-forkthr-%d", (int)getpid());
	o.name = name;
	o.max_writers = 8;
	o.cells_per_block = 1024;
	o.max_series = 64;
	if (shmet_open(&seg, &o) < 0 ||
	    shmet_counter_new(&seg, &parent, "forks_total", "f") < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&seg));
		return 1;
	}
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, churn, NULL);
	for (int i = 0; i < FORKS; i++) {
		int status;
		pid_t pid = fork();

		if (pid == 0) {
			/* the inherited handle: our CPU's cell, or (no rseq)
			 * our own block */
			shmet_counter_inc(&parent);
			_exit(0);
		}
		if (pid < 0 || waitpid(pid, &status, 0) != pid ||
		    !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			failures++;
	}
	atomic_store_explicit(&stop, 1, memory_order_relaxed);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);

	{
		struct snapshot snap;
		uint64_t got;

		snapshot_take(name, &snap);
		got = shmet_values_counter_int(snap.values, snap.index, 0);
		printf("forks %d, failed children %d, counted %llu\n", FORKS,
		       failures, (unsigned long long)got);
		if (got != FORKS)
			failures++;
		snapshot_free(&snap);
	}
	shmet_close(&seg);
	shmet_unlink(name);
	return failures ? 1 : 0;
}
