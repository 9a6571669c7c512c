/*
 * What the exemplar and gauge chunk tests (exemplar-points.c,
 * chunk-points.c, fleet-stress.c) share: a reader's view of a segment by
 * family and label value, the exemplars they write (every field derived
 * from one number k, so that a torn or foreign one shows), and the raw
 * segment fields a page never shows (an exemplar slot's lock, the cell
 * cursors, every series' cells).
 */
#ifndef SHMETRICS_CONTRACT_PROBE_H
#define SHMETRICS_CONTRACT_PROBE_H

#include <stdint.h>

#include <shmetrics.h>

#include "shmetrics-reader.h"

/* A reader of one segment and its last collect. */
struct probe {
	struct shmet_reader *r;
	struct shmet_index *idx;
	struct shmet_values *v;
};

/* Open segname and collect once; 0, or -1 with why on stderr. */
int probe_open(struct probe *p, const char *segname);
/* Collect again (rebuilding the index until it is current); 0 or -1. */
int probe_collect(struct probe *p);
void probe_close(struct probe *p);
/* The index position of family's series whose first label value is
 * `label` (NULL: its first series), or UINT32_MAX. */
uint32_t probe_series(const struct probe *p, const char *family,
		      const char *label);

/*
 * Exemplar k of tag ('c', 'h', or any letter): labels {tag}id="{tag}-k"
 * and pad = a 100-character string of k, value k.  Writes the names and
 * values into the caller's arrays (bufs holds the strings).
 */
#define PROBE_PAD 100
struct probe_ex {
	char name0[8], val0[40], pad[PROBE_PAD + 1];
	const char *names[2], *values[2];
};
void probe_ex_make(struct probe_ex *x, char tag, uint64_t k);

/*
 * The exemplar the last collect shows for series si's bucket b: its k
 * into *k and 1 if it is exemplar k of tag; 0 if none is shown; -1 (and
 * why on stderr, with ctx) if the shown one is torn or another tag's.
 */
int probe_ex_shown(const struct probe *p, uint32_t si, uint32_t b, char tag,
		   uint64_t *k, const char *ctx);

/* The same, where every exemplar of the series has value `value` (a
 * counter's increment): k from its first label. */
int probe_ex_shown_value(const struct probe *p, uint32_t si, uint32_t b,
			 char tag, double value, uint64_t *k, const char *ctx);

/* The raw exemplar slot of a cell: its seq and busy_ns. */
struct probe_slot {
	uint32_t seq;
	uint64_t busy_ns;
};
struct probe_slot probe_slot(const char *segname, uint32_t cell);

/* The cell cursors and every published series' cells. */
struct probe_cells {
	uint32_t cells_per_block, cells_used;
	uint32_t chunk_next, chunk_end, chunk_size;
	uint32_t series;                /* published series records */
	uint32_t series_cells;          /* cells they own */
	uint32_t shared;                /* pairs of them that share a cell */
	uint32_t beyond;                /* ... with cells past cells_used or
					 * in the chunk's free range */
};
struct probe_cells probe_cells(const char *segname);

/* CLOCK_MONOTONIC now, in ns. */
uint64_t probe_now_ns(void);

#endif
