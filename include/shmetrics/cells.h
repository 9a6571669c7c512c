/*
 * The rule book's first part (rules.h includes it): which cell of a
 * series holds what (layout.h, "Cells"), as positions relative to the
 * series' first cell.  A part of its own because the writers' inline hot
 * path (<shmetrics.h>) includes it alone: it depends on nothing and is
 * C and C++ alike.  Every function is pure; with a constant argument
 * each is a constant, folded at compile time.
 */
#ifndef SHMETRICS_CELLS_H
#define SHMETRICS_CELLS_H

#include <stdint.h>

/* A counter: the integer increments, and the float increments' sum. */
static inline uint32_t
shmet_seg_cell_counter_int(uint32_t first)
{
	return first;
}

static inline uint32_t
shmet_seg_cell_counter_float(uint32_t first)
{
	return first + 1;
}

/* A gauge: the value's bits, and its write stamp (0: never written by
 * this block's writer; else 1, or CLOCK_MONOTONIC ns + 1 of the last
 * write in the mostrecent modes). */
static inline uint32_t
shmet_seg_cell_gauge_value(uint32_t first)
{
	return first;
}

static inline uint32_t
shmet_seg_cell_gauge_stamp(uint32_t first)
{
	return first + 1;
}

/* A histogram: bucket b's count (b = bound_count: +Inf, not cumulative),
 * and the observations' sum. */
static inline uint32_t
shmet_seg_cell_bucket(uint32_t first, uint32_t b)
{
	return first + b;
}

static inline uint32_t
shmet_seg_cell_hist_sum(uint32_t first, uint32_t bound_count)
{
	return first + bound_count + 1;
}

/* The same roles in bytes, for the hot path's rseq sections, which
 * address a CPU's cells from the series' first one: bucket b's offset,
 * and how far the sum lies beyond it.  A counter's float cell is the
 * sections' assembler constant 8 (8(%rax) on x86-64, [x15, #8] on
 * aarch64: inline-impl.h), which tests/test-rules.c holds to
 * shmet_seg_cell_counter_float. */
static inline uint64_t
shmet_seg_cell_bucket_bytes(uint32_t b)
{
	return 8ull * shmet_seg_cell_bucket(0, b);
}

static inline uint64_t
shmet_seg_cell_bucket_to_sum_bytes(uint32_t bound_count, uint32_t b)
{
	return 8ull * (shmet_seg_cell_hist_sum(0, bound_count) -
		       shmet_seg_cell_bucket(0, b));
}

/* The one float-sum cell of a counter or histogram series (its last),
 * which readers sum as doubles; every other such cell is an integer. */
static inline uint32_t
shmet_seg_cell_float_sum(uint32_t first, uint32_t cells_per_series)
{
	return first + cells_per_series - 1;
}

#endif
