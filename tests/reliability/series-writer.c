/*
 * A writer for the trust-boundary tests: registers COUNT series of a
 * 12-bucket histogram (14 cells each) and observes each once, then exits,
 * or with --stay waits until its standard input closes.
 *
 *   series-writer SEGMENT COUNT [--stay]
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmetrics.h>

int
main(int argc, char **argv)
{
	static const char *const id[] = { "id" };
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_options o;
	double b[12];
	long count;
	int failed = 0;

	if (argc < 3 || (count = atol(argv[2])) < 0) {
		fprintf(stderr, "usage: series-writer SEGMENT COUNT [--stay]\n");
		return 2;
	}
	memset(&o, 0, sizeof o);
	o.name = argv[1];
	o.flags = SHMET_OPEN_NO_CREATE;
	if (shmet_open(&seg, &o) < 0) {
		fprintf(stderr, "series-writer: %s\n", shmet_last_error(&seg));
		return 1;
	}
	shmet_exponential_bounds(0.001, 2, 12, b);
	shmet_histogram_family(&seg, &f, "trust_series_seconds", "t", 12, b, 1,
			       id);
	for (long i = 0; i < count; i++) {
		char v[32];
		const char *vals[1] = { v };
		struct shmet_histogram h;

		snprintf(v, sizeof v, "%ld", i);
		if (shmet_histogram_labels(&f, &h, 1, vals) < 0)
			failed++;
		shmet_histogram_observe(&h, 0.01);
	}
	printf("ready %d failed\n", failed);
	fflush(stdout);
	if (argc > 3 && !strcmp(argv[3], "--stay"))
		while (getchar() != EOF)
			;
	shmet_close(&seg);
	return 0;
}
