/*
 * A writer of exemplars for end-to-end tests (tests/e2e/exemplars.py),
 * driven line by line on standard input until it closes:
 *
 *   c TRACE VALUE   e2e_calls_total += VALUE with exemplar {trace_id=TRACE}
 *   h TRACE VALUE   e2e_setup_seconds observes VALUE, same exemplar
 *
 * answering "ok RC" (the call's return value) for each line.
 *
 *   exemplar-writer SEGMENT
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmetrics.h>

int
main(int argc, char **argv)
{
	static const double bounds[] = { 0.5, 1, 5, 10 };
	static const char *const names[] = { "trace_id" };
	struct shmet_options o;
	struct shmet_segment seg;
	struct shmet_counter c;
	struct shmet_histogram h;
	char line[256], what, trace[128];
	double v;

	if (argc != 2) {
		fprintf(stderr, "usage: exemplar-writer SEGMENT\n");
		return 2;
	}
	memset(&o, 0, sizeof o);
	o.name = argv[1];
	o.max_series = 4096;
	o.max_writers = 64;
	o.cells_per_block = 65536;
	if (shmet_open(&seg, &o) < 0 ||
	    shmet_counter_new(&seg, &c, "e2e_calls_total", "Calls") < 0 ||
	    shmet_histogram_new(&seg, &h, "e2e_setup_seconds", "Call setup",
				4, bounds) < 0) {
		fprintf(stderr, "exemplar-writer: %s\n",
			shmet_last_error(&seg));
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	while (fgets(line, sizeof line, stdin)) {
		const char *values[] = { trace };
		int rc;

		if (sscanf(line, "%c %127s %lf", &what, trace, &v) != 3) {
			printf("bad line\n");
			continue;
		}
		rc = what == 'c'
			     ? shmet_counter_add_exemplar(&c, v, 1, names, values)
			     : shmet_histogram_observe_exemplar(&h, v, 1, names,
								values);
		printf("ok %d\n", rc);
	}
	shmet_close(&seg);
	return 0;
}
