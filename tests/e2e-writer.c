/*
 * A writer for end-to-end tests that records known amounts and stays
 * alive (a live writer) until its standard input closes.
 *
 *   e2e-writer SEGMENT COUNT
 * e2e_events_total{kind="a"} += COUNT, {kind="b"} += 2 * COUNT,
 * e2e_latency_seconds observes 0.3 COUNT times, e2e_workers (livesum) = 1.
 * Prints "ready" when done writing.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmetrics.h>

int
main(int argc, char **argv)
{
	static const char *const kind[] = { "kind" };
	static const double bounds[] = { 0.1, 0.25, 0.5, 1 };
	struct shmet_options o;
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter a, b;
	struct shmet_histogram h;
	struct shmet_gauge g;
	long count;
	char c;
	int rc = 0;

	if (argc != 3 || (count = atol(argv[2])) < 0) {
		fprintf(stderr, "usage: e2e-writer SEGMENT COUNT\n");
		return 2;
	}
	memset(&o, 0, sizeof o);
	o.name = argv[1];
	o.max_series = 4096;
	o.max_writers = 64;
	o.cells_per_block = 65536;
	if (shmet_open(&seg, &o) < 0) {
		fprintf(stderr, "e2e-writer: %s\n", shmet_last_error(&seg));
		return 1;
	}
	rc |= shmet_counter_family(&seg, &f, "e2e_events_total", "Events", 1,
				   kind);
	rc |= shmet_counter_labels(&f, &a, SHMET_VALUES("a"));
	rc |= shmet_counter_labels(&f, &b, SHMET_VALUES("b"));
	rc |= shmet_histogram_new(&seg, &h, "e2e_latency_seconds", "Latency",
				  4, bounds);
	rc |= shmet_gauge_new(&seg, &g, "e2e_workers", "Live writers",
			      SHMET_GAUGE_LIVESUM);
	if (rc) {
		fprintf(stderr, "e2e-writer: %s\n", shmet_last_error(&seg));
		return 1;
	}
	for (long i = 0; i < count; i++) {
		shmet_counter_inc(&a);
		shmet_counter_add(&b, 2);
		shmet_histogram_observe(&h, 0.3);
	}
	shmet_gauge_set(&g, 1);
	printf("ready\n");
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	return 0;
}
