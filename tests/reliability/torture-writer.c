/*
 * A writer for the kill-torture test.  It hammers a labeled counter, an
 * unlabeled counter and a histogram, registers a new series every 2,000
 * rounds, and after each round records its progress in a shared progress
 * file, so that the supervisor knows the exact total up to one round per
 * kill (a SIGKILL between the increments and the progress store).
 *
 *   torture-writer SEGMENT PROGRESS_FILE SLOT
 * progress[SLOT] (uint64) counts completed rounds; SLOT is unique per
 * incarnation.  Runs until killed.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <shmetrics.h>

#define MAX_SLOTS 65536

int
main(int argc, char **argv)
{
	static const char *const lbl[] = { "kind" };
	static const char *const rnd[] = { "round" };
	static const double bounds[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	struct shmet_options o;
	struct shmet_segment seg;
	struct shmet_family f, fr;
	struct shmet_counter lab, unlab, fresh;
	struct shmet_histogram h;
	_Atomic uint64_t *progress;
	long slot;
	int fd;

	if (argc != 4 || (slot = atol(argv[3])) < 0 || slot >= MAX_SLOTS) {
		fprintf(stderr, "usage: torture-writer SEGMENT PROGRESS SLOT\n");
		return 2;
	}
	fd = open(argv[2], O_RDWR);
	progress = fd < 0 ? MAP_FAILED
			  : mmap(NULL, MAX_SLOTS * 8, PROT_READ | PROT_WRITE,
				 MAP_SHARED, fd, 0);
	if (progress == MAP_FAILED) {
		perror("torture-writer: progress");
		return 1;
	}
	memset(&o, 0, sizeof o);
	o.name = argv[1];
	o.max_writers = 16;
	o.max_series = 65536;
	o.cells_per_block = 262144;
	if (shmet_open(&seg, &o) < 0) {
		fprintf(stderr, "torture-writer: %s\n", shmet_last_error(&seg));
		return 1;
	}
	shmet_counter_family(&seg, &f, "torture_total", "t", 1, lbl);
	shmet_counter_labels(&f, &lab, SHMET_VALUES("labeled"));
	shmet_counter_new(&seg, &unlab, "torture_plain_total", "t");
	shmet_histogram_new(&seg, &h, "torture_seconds", "t", 12, bounds);
	shmet_counter_family(&seg, &fr, "torture_rounds_total", "t", 1, rnd);
	shmet_counter_labels(&fr, &fresh, SHMET_VALUES("0"));
	for (uint64_t i = 0;; i++) {
		if (i % 2000 == 1999) {
			char r[24];
			const char *v[1] = { r };

			/* new series: registration under fire */
			snprintf(r, sizeof r, "%llu",
				 (unsigned long long)(i / 2000) % 500);
			shmet_counter_labels(&fr, &fresh, 1, v);
		}
		shmet_counter_inc(&lab);
		shmet_counter_inc(&unlab);
		shmet_counter_inc(&fresh);
		shmet_histogram_observe(&h, (double)(i % 13));
		/* Release: the supervisor reads progress after our kill;
		 * the round's increments precede the count. */
		atomic_fetch_add_explicit(&progress[slot], 1,
					  memory_order_release);
	}
}
