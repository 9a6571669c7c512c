/* One scrape of a segment for the contract tests: see snapshot.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "snapshot.h"

void
snapshot_take(const char *name, struct snapshot *s)
{
	char err[256] = "out of memory";

	s->values = shmet_values_new();
	if (!s->values ||
	    shmet_reader_open(name, &s->reader, err, sizeof err) < 0 ||
	    shmet_index_build(s->reader, &s->index, err, sizeof err) < 0 ||
	    shmet_values_collect(s->reader, s->index, s->values) < 0) {
		fprintf(stderr, "reader: %s\n", err);
		exit(1);
	}
	s->ncells = shmet_values_cells(s->values, &s->u, &s->d);
}

uint64_t
snapshot_cell(const struct snapshot *s, size_t c)
{
	return c < s->ncells ? s->u[c] : 0;
}

void
snapshot_free(struct snapshot *s)
{
	shmet_values_free(s->values);
	shmet_index_free(s->index);
	shmet_reader_close(s->reader);
}
