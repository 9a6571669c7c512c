/*
 * Writers racing a reader on one exemplar slot (writer/exemplar.c, lib/
 * values-exemplar.c): a torn exemplar is never shown.
 *
 * Every write derives all it stores from one number k: the value is k,
 * the label trace_id is "k-<k>", and the label pad is a 100-character
 * string whose characters depend on k (it spans most of the slot's blob
 * words).  Any exemplar the reader shows whose labels and value do not
 * come from the same k is a torn read, and fails the test.
 *
 * Writers: two threads of this process (TSan sees them race the reader
 * thread) and one child process, on one counter series and on one
 * histogram bucket, for SECONDS (argv[1], default 10).  The reader
 * collects as fast as it can and checks every exemplar it is shown; it
 * must have been shown many different ones (the race really ran).
 *
 * The check fails when the lock is left out: with the reader's seq
 * comparison and checksum removed (lib/values-exemplar.c), a 5 s run
 * showed "TORN exemplar: value 150524, 2 labels, 127 bytes" and failed.
 *
 * Usage: exemplar-race [seconds]
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmetrics.h>

#include "shmetrics-reader.h"

static char seg_name[64];
static atomic_int stop;

#define PAD_LEN 100

/* The labels of write k (into id and pad). */
static void
labels_of(uint64_t k, char *id, size_t idlen, char *pad)
{
	snprintf(id, idlen, "k-%llu", (unsigned long long)k);
	for (int i = 0; i < PAD_LEN; i++)
		pad[i] = (char)('a' + (k + (uint64_t)i) % 26);
	pad[PAD_LEN] = 0;
}

struct handles {
	struct shmet_segment seg;
	struct shmet_counter c;
	struct shmet_histogram h;
};

static const double bounds[] = { 1e18 };

static void
open_handles(struct handles *hs)
{
	struct shmet_options o;

	memset(&o, 0, sizeof o);
	o.name = seg_name;
	o.max_families = 16;
	o.max_series = 64;
	o.max_writers = 8;
	o.cells_per_block = 1024;
	o.string_bytes = 1 << 16;
	if (shmet_open(&hs->seg, &o) != 0 ||
	    shmet_counter_new(&hs->seg, &hs->c, "race_total", "R.") != 0 ||
	    shmet_histogram_new(&hs->seg, &hs->h, "race_seconds", "R.", 1,
				bounds) != 0) {
		fprintf(stderr, "open: %s\n", shmet_last_error(&hs->seg));
		exit(2);
	}
}

/* Writer w: k = w, w + 3, w + 6, ... (writers never write one k). */
static uint64_t
write_loop(struct handles *hs, uint64_t w)
{
	const char *names[] = { "trace_id", "pad" };
	char id[32], pad[PAD_LEN + 1];
	const char *values[] = { id, pad };
	uint64_t n = 0;

	for (uint64_t k = w + 3; !atomic_load_explicit(&stop,
						       memory_order_relaxed);
	     k += 3, n++) {
		labels_of(k, id, sizeof id, pad);
		/* -EBUSY (another writer in the slot) is fine; nothing else */
		int rc = k % 2 ? shmet_counter_add_exemplar(&hs->c, (double)k, 2,
							    names, values)
			       : shmet_histogram_observe_exemplar(
					 &hs->h, (double)k, 2, names, values);

		if (rc != 0 && rc != -EBUSY) {
			fprintf(stderr, "write %llu: %d\n",
				(unsigned long long)k, rc);
			exit(3);
		}
	}
	return n;
}

static struct handles shared;

static void *
writer_thread(void *arg)
{
	write_loop(&shared, (uint64_t)(uintptr_t)arg);
	return NULL;
}

struct tally {
	uint64_t shown, distinct, scrapes;
	uint64_t last;
};

/* 0 if e is write k's exemplar for some k, else 1 (and why). */
static int
check(const struct shmet_exemplar *e, struct tally *t)
{
	const unsigned char *p = e->labels, *end = e->labels + e->labels_len;
	char want_id[32], want_pad[PAD_LEN + 1];
	uint64_t k = (uint64_t)e->value;
	uint32_t n[4];
	const char *s[4];

	if (e->label_count != 2 || (double)k != e->value)
		goto torn;
	for (int i = 0; i < 4; i++) {
		if (end - p < 2)
			goto torn;
		n[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8;
		s[i] = (const char *)p + 2;
		p += 2 + n[i];
		if (p > end)
			goto torn;
	}
	labels_of(k, want_id, sizeof want_id, want_pad);
	if (n[0] != 8 || memcmp(s[0], "trace_id", 8) ||
	    n[1] != strlen(want_id) || memcmp(s[1], want_id, n[1]) ||
	    n[2] != 3 || memcmp(s[2], "pad", 3) || n[3] != PAD_LEN ||
	    memcmp(s[3], want_pad, PAD_LEN))
		goto torn;
	t->shown++;
	if (k != t->last)
		t->distinct++;
	t->last = k;
	return 0;
torn:
	fprintf(stderr, "TORN exemplar: value %.17g, %u labels, %u bytes\n",
		e->value, e->label_count, e->labels_len);
	return 1;
}

int
main(int argc, char **argv)
{
	int seconds = argc > 1 ? atoi(argv[1]) : 10;
	struct shmet_reader *r;
	struct shmet_index *idx = NULL;
	struct shmet_values *v = shmet_values_new();
	struct tally t[2] = { { 0 }, { 0 } };
	char err[SHMET_READER_ERRLEN];
	pthread_t th[2];
	pid_t child;
	time_t end;
	int torn = 0, status;

	snprintf(seg_name, sizeof seg_name, "/shmet-ex-race-%d", (int)getpid());
	open_handles(&shared);
	child = fork();
	if (child == 0) {
		struct handles own;

		signal(SIGTERM, SIG_DFL);
		open_handles(&own);
		/* until the parent's SIGTERM */
		for (;;)
			write_loop(&own, 0);
	}
	for (uintptr_t w = 1; w <= 2; w++)
		pthread_create(&th[w - 1], NULL, writer_thread, (void *)w);
	if (shmet_reader_open(seg_name, &r, err, sizeof err) != 0 ||
	    shmet_index_build(r, &idx, err, sizeof err) != 0 || !v) {
		fprintf(stderr, "reader: %s\n", err);
		return 2;
	}
	end = time(NULL) + seconds;
	while (time(NULL) < end && !torn) {
		struct shmet_exemplar e;

		if (shmet_values_collect(r, idx, v) != 0) {
			fprintf(stderr, "collect failed\n");
			return 2;
		}
		t[0].scrapes++;
		/* series 0 and 1: sorted by name, race_seconds first */
		for (uint32_t si = 0; si < 2; si++)
			for (uint32_t b = 0; b <= 1; b++)
				if (shmet_values_exemplar(v, idx, si, b, &e))
					torn |= check(&e, &t[si]);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	kill(child, SIGTERM);
	waitpid(child, &status, 0);
	printf("%d s, %llu scrapes: histogram %llu exemplars shown (%llu "
	       "changes), counter %llu (%llu changes), torn %d\n",
	       seconds, (unsigned long long)t[0].scrapes,
	       (unsigned long long)t[0].shown,
	       (unsigned long long)t[0].distinct,
	       (unsigned long long)t[1].shown,
	       (unsigned long long)t[1].distinct, torn);
	shmet_values_free(v);
	shmet_index_free(idx);
	shmet_reader_close(r);
	shmet_close(&shared.seg);
	shmet_unlink(seg_name);
	if (torn)
		return 1;
	/* the race ran: both slots were shown changing many times */
	if (t[0].distinct < 100 || t[1].distinct < 100) {
		fprintf(stderr, "too few exemplars seen changing to have "
				"raced\n");
		return 1;
	}
	return 0;
}
