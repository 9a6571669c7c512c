/*
 * One scrape of a segment, as the exporter would see it, for the contract
 * tests' final counts: reader, index and summed values together.
 */
#ifndef SHMETRICS_CONTRACT_SNAPSHOT_H
#define SHMETRICS_CONTRACT_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "shmetrics-reader.h"

struct snapshot {
	struct shmet_reader *reader;
	struct shmet_index *index;
	struct shmet_values *values;
	const uint64_t *u;              /* integer cells, summed */
	const double *d;                /* float cells, summed */
	size_t ncells;
};

/* Scrape segment `name`; on failure print the reader's message and exit
 * the test with status 1. */
void snapshot_take(const char *name, struct snapshot *s);
/* The summed integer cell c (0 past the cells the index covers). */
uint64_t snapshot_cell(const struct snapshot *s, size_t c);
void snapshot_free(struct snapshot *s);

#endif
