/*
 * The exhaustion test's writer: keeps incrementing a counter it resolved
 * first while it registers series until the segment is full, then keeps
 * going; prints the increments it made and the failure codes it saw.
 *
 *   exhaust-writer SEGMENT ROUNDS
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmetrics.h>

int
main(int argc, char **argv)
{
	static const char *const lbl[] = { "id" };
	struct shmet_options o;
	struct shmet_segment seg;
	struct shmet_family fa, fb;
	struct shmet_counter keep, c;
	long rounds = argc > 2 ? atol(argv[2]) : 0;
	long ok = 0, enospc = 0, e2big = 0, other = 0;
	char v[200];
	const char *vals[1] = { v };

	if (argc != 3)
		return 2;
	memset(&o, 0, sizeof o);
	o.name = argv[1];
	o.max_series = 600;
	o.max_series_per_family = 400;
	o.string_bytes = 32768;
	o.max_writers = 4;
	o.cells_per_block = 4096;
	if (shmet_open(&seg, &o) < 0) {
		fprintf(stderr, "%s\n", shmet_last_error(&seg));
		return 1;
	}
	shmet_counter_new(&seg, &keep, "kept_total", "k");
	shmet_counter_family(&seg, &fa, "a_total", "f", 1, lbl);
	shmet_counter_family(&seg, &fb, "b_total", "f", 1, lbl);
	for (long i = 0; i < rounds; i++) {
		int rc;

		snprintf(v, sizeof v, "%08ld", i % 5000);
		/* a reaches its cardinality limit, then b fills the series */
		rc = shmet_counter_labels(i % 4 ? &fa : &fb, &c, 1, vals);
		if (rc == 0)
			ok++;
		else if (rc == -ENOSPC)
			enospc++;
		else if (rc == -E2BIG)
			e2big++;
		else
			other++;
		shmet_counter_inc(&c);          /* works even when failed */
		shmet_counter_inc(&keep);
	}
	/*
	 * The series are full; a failed registration gives back what it took,
	 * so the string pool fills only through what succeeds: families with
	 * long help texts.
	 */
	for (int j = 0; j < 1000; j++) {
		char name[64], help[1000];
		int rc;

		snprintf(name, sizeof name, "filler_%d_total", j);
		memset(help, 'h', sizeof help - 1);
		help[sizeof help - 1] = '\0';
		rc = shmet_counter_family(&seg, &fa, name, help, 0, NULL);
		if (rc == -ENOSPC) {
			enospc++;
			break;
		}
		if (rc < 0)
			other++;
	}
	printf("increments %ld ok %ld enospc %ld e2big %ld other %ld\n",
	       rounds, ok, enospc, e2big, other);
	shmet_close(&seg);
	return 0;
}
