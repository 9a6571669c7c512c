/*
 * The rule book of what a segment's values mean, for writers (writer/),
 * readers (lib/) and shmetrics-top alike; the sibling of format.h (the
 * rules of the segment's shape: geometry, names, blobs, bounds, modes),
 * which includes it.
 *
 *   cell roles       which cell of a series holds what (layout.h, "Cells"),
 *                    in cells.h, included here
 *   gauge folding    how the values of several writers become one, by mode
 *   page names       the suffix a counter's samples carry, the type names
 *   record shape     whether a family record's shape holds, and why not
 *
 * Nothing outside this file and cells.h computes a cell's position from
 * a series' first cell: tests/check-cells.sh refuses it.  Every function
 * is pure.
 */
#ifndef SHMETRICS_RULES_H
#define SHMETRICS_RULES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "format.h"

/* Cell roles: cells.h, the one part the writers' hot path includes by
 * itself (<shmetrics.h> includes it, and it depends on nothing). */
#include "cells.h"

/* ---------------------------------------------------------------- */
/* Gauge folding                                                    */

/*
 * Fold one writer's gauge value x (stamp its write stamp) into the value
 * folded so far, *acc with *acc_stamp (first: nothing folded yet), by the
 * family's mode: the sum modes add, max and min keep the extreme (a NaN
 * never replaces), the mostrecent modes keep the value of the newest
 * stamp (a tie: the later fold).  The modes all and liveall are not
 * folded: each writer's value is a sample of its own.  The reader's
 * scrape (lib/values.c), the writer's fold of a dead writer's gauges
 * into the retired block (writer/slot.c) and shmetrics-top's family rows
 * fold with this.  Returns 1 if *acc changed.
 */
static inline int
shmet_seg_gauge_fold(uint32_t mode, int first, double *acc,
		     uint64_t *acc_stamp, double x, uint64_t stamp)
{
	double out = x;

	/* A sum starts from 0 (so a lone -0 folds to 0, as pages show it). */
	if (mode == SHMET_GAUGE_SUM || mode == SHMET_GAUGE_LIVESUM)
		out = (first ? 0.0 : *acc) + x;
	else if (!first) {
		switch (mode) {
		case SHMET_GAUGE_MAX:
			if (!(x > *acc))
				return 0;
			break;
		case SHMET_GAUGE_MIN:
			if (!(x < *acc))
				return 0;
			break;
		default:        /* mostrecent, livemostrecent */
			if (stamp < *acc_stamp)
				return 0;
			break;
		}
	}
	*acc = out;
	if (first || stamp > *acc_stamp)
		*acc_stamp = stamp;
	return 1;
}

/* ---------------------------------------------------------------- */
/* Names on a page                                                  */

/* The type's name on TYPE lines and in JSON. */
static inline const char *
shmet_seg_type_name(uint32_t type)
{
	return type == SHMET_TYPE_COUNTER   ? "counter" :
	       type == SHMET_TYPE_GAUGE     ? "gauge" :
	       type == SHMET_TYPE_HISTOGRAM ? "histogram" :
					      "unknown";
}

/* 1 if a name of len bytes ends in "_total". */
static inline int
shmet_seg_has_total(const char *name, size_t len)
{
	return len >= 6 && memcmp(name + len - 6, "_total", 6) == 0;
}

/*
 * The suffix a family's samples carry after its registered name: a
 * counter's samples always end in _total (as OpenMetrics and Python's
 * client have it), so "_total" unless the name already ends in it; ""
 * for every other type.  format.h's exposed names (the family name
 * without _total) follow from the same rule.
 */
static inline const char *
shmet_seg_sample_suffix(uint32_t type, const char *name, size_t len)
{
	return type == SHMET_TYPE_COUNTER && !shmet_seg_has_total(name, len)
		       ? "_total"
		       : "";
}

/* ---------------------------------------------------------------- */
/* Record shape                                                     */

/*
 * Whether a family record's shape holds: its type, gauge mode, label and
 * bound counts, its bounds reference and cells per series agree with each
 * other.  NULL if they do, else what is wrong.  The reader's trust
 * boundary (lib/trust.c) and the writer's attach to a published record
 * (writer/family.c) ask the same question; names, help and unit are
 * checked where their bytes are read.
 */
static inline const char *
shmet_seg_family_shape_invalid(uint32_t type, uint32_t gauge_mode,
			       uint32_t label_count, uint32_t bound_count,
			       uint32_t bounds_off, uint32_t bounds_len,
			       uint32_t cells_per_series)
{
	if (!shmet_seg_type_valid(type))
		return "unknown type";
	if (label_count > SHMET_MAX_LABELS)
		return "too many labels";
	if (type == SHMET_TYPE_HISTOGRAM
		    ? bound_count < 1 || bound_count > SHMET_MAX_BOUNDS
		    : bound_count != 0)
		return "bound count does not fit the type";
	if (bounds_len != 8u * bound_count || (bounds_off & 7))
		return "bounds reference does not match the bound count";
	if (type == SHMET_TYPE_GAUGE ? !shmet_seg_gauge_mode_valid(gauge_mode)
				     : gauge_mode != 0)
		return "gauge mode does not fit the type";
	if (cells_per_series != shmet_seg_cells_for(type, bound_count))
		return "cells per series do not match the type";
	return NULL;
}

#endif /* SHMETRICS_RULES_H */
