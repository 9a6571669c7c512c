/*
 * One of the processes of the concurrent-start test: waits for the start
 * file to appear, then attaches (the segment does not exist yet when they
 * all start), registers a shared family, a shared labeled family with the
 * same label sets as every racer, and a family of its own.
 *
 *   start-racer SEGMENT GO_FILE INDEX
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <shmetrics.h>

int
main(int argc, char **argv)
{
	static const char *const lbl[] = { "k" };
	struct shmet_options o;
	struct shmet_segment seg;
	struct shmet_family f;
	struct shmet_counter c;
	char name[64];
	int rc = 0;

	if (argc != 4)
		return 2;
	while (access(argv[2], F_OK) != 0)
		;       /* spin: start all at the same instant */
	memset(&o, 0, sizeof o);
	o.name = argv[1];
	o.max_series = 8192;
	o.max_writers = 64;
	o.cells_per_block = 65536;
	rc |= shmet_open(&seg, &o);
	rc |= shmet_counter_new(&seg, &c, "started_total", "s");
	shmet_counter_inc(&c);
	rc |= shmet_counter_family(&seg, &f, "shared_total", "s", 1, lbl);
	for (int i = 0; i < 100; i++) {
		char v[16];
		const char *vals[1] = { v };

		snprintf(v, sizeof v, "%d", i);
		rc |= shmet_counter_labels(&f, &c, 1, vals);
		shmet_counter_inc(&c);
	}
	snprintf(name, sizeof name, "own_%s_total", argv[3]);
	rc |= shmet_counter_new(&seg, &c, name, "o");
	shmet_counter_inc(&c);
	if (rc)
		fprintf(stderr, "start-racer %s: %s\n", argv[3],
			shmet_last_error(&seg));
	shmet_close(&seg);
	return rc ? 1 : 0;
}
