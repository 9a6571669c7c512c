/*
 * What the per-CPU tests read straight from a writer's own mapping: a
 * cell summed over the CPU blocks (docs/DESIGN.md, "Per-CPU cells").
 */
#ifndef SHMETRICS_CONTRACT_PERCPU_H
#define SHMETRICS_CONTRACT_PERCPU_H

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <shmetrics.h>

/* Cell c (an index in a value block) summed over every CPU block. */
static inline uint64_t
percpu_sum(const struct shmet_segment *s, size_t c)
{
	const struct shmet_seg_header *h = s->hdr;
	uint64_t sum = 0;

	for (uint32_t cpu = 0; cpu < h->cpu_blocks; cpu++)
		sum += atomic_load_explicit(
			(const _Atomic uint64_t *)(const void *)(
				s->cpus + (uint64_t)cpu * h->block_stride +
				8 * c),
			memory_order_relaxed);
	return sum;
}

/* The same for a float cell. */
static inline double
percpu_sum_double(const struct shmet_segment *s, size_t c)
{
	const struct shmet_seg_header *h = s->hdr;
	double sum = 0;

	for (uint32_t cpu = 0; cpu < h->cpu_blocks; cpu++) {
		uint64_t u = atomic_load_explicit(
			(const _Atomic uint64_t *)(const void *)(
				s->cpus + (uint64_t)cpu * h->block_stride +
				8 * c),
			memory_order_relaxed);
		double d;

		memcpy(&d, &u, sizeof d);
		sum += d;
	}
	return sum;
}

/*
 * The index in a value block of a handle's cell (a series' first cell):
 * the handle points into the process block, or, for a counter or
 * histogram of a process with rseq, into the shared fallback block,
 * mapped right after the retired block (writer/fallback.c).  Before
 * shmet_close.
 */
static inline size_t
percpu_cell_index(const struct shmet_segment *s,
		  const SHMET_ATOMIC(uint64_t) *cell)
{
	const unsigned char *p = (const unsigned char *)(const void *)cell;
	const unsigned char *own = (const unsigned char *)(const void *)s->block;

	if (own && p >= own && p < own + s->block_size)
		return (size_t)(p - own) / 8;
	return (size_t)(p - (s->base + s->hdr->values_off +
			     s->hdr->block_stride)) / 8;
}

/* The handle's cell is in the shared fallback block. */
static inline int
percpu_in_fallback_block(const struct shmet_segment *s,
			 const SHMET_ATOMIC(uint64_t) *cell)
{
	const unsigned char *p = (const unsigned char *)(const void *)cell;
	const unsigned char *fb = s->base + s->hdr->values_off +
				  s->hdr->block_stride;

	return p >= fb && p < fb + s->hdr->block_stride;
}

/*
 * No rseq to be had, so the fallback takes every write:
 * SHMETRICS_NO_RSEQ=1 in the environment, or valgrind, which implements
 * no rseq (its preload library is in LD_PRELOAD; the suite 'writer' runs
 * under it in CI, tools/run-tests.sh).
 */
static inline int
percpu_forced_off(void)
{
	const char *e = getenv("SHMETRICS_NO_RSEQ");
	const char *pre = getenv("LD_PRELOAD");

	return (e && *e && strcmp(e, "0") != 0) ||
	       (pre && strstr(pre, "vgpreload"));
}

#endif
