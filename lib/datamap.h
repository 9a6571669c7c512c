/*
 * Which byte ranges of a segment file hold data, so that a reader never
 * reads a hole.  Reading a hole of a tmpfs file through a shared mapping
 * allocates a page there: a sparse file with a hostile header (capacities
 * at their maximum, 10 GiB of metadata that is nearly all hole) would make
 * an index build materialise hundreds of MiB of tmpfs.  The map is taken
 * once per index build with lseek(SEEK_DATA/SEEK_HOLE), which touches
 * nothing; its extents are maximal, and at most one per data page, which
 * the file's owner pays for.
 */
#ifndef SHMETRICS_DATAMAP_H
#define SHMETRICS_DATAMAP_H

#include <stddef.h>
#include <stdint.h>

struct shmet_priv_datamap {
	uint64_t (*ext)[2];     /* [start, end), sorted, disjoint */
	size_t n;
	int all;                /* no file (memory reader) or no SEEK_DATA */
	/* Bytes an index build may still copy out of the string pool: no
	 * more than its data pages hold, so records that share strings
	 * cannot turn a small file into a large index. */
	uint64_t copy_left;
};

/*
 * The first data extent of fd in [off, end): 1 with it in [*d, *h), 0 if
 * there is none, -1 if the file system cannot tell (no SEEK_DATA), which
 * callers read as "all data".  The one walk both maps use (this one and
 * values.c's per-block page bits).
 */
int shmet_priv_data_next(int fd, uint64_t off, uint64_t end, uint64_t *d,
			 uint64_t *h);

/* The data extents of fd in [0, end).  -ENOMEM, else 0 (a file system
 * without SEEK_DATA gives a map that says "all data"). */
int shmet_priv_datamap_build(struct shmet_priv_datamap *m, int fd,
			     uint64_t end);
void shmet_priv_datamap_free(struct shmet_priv_datamap *m);

/* 1 if [off, off + len) is all data (len 0: always). */
int shmet_priv_datamap_has(const struct shmet_priv_datamap *m, uint64_t off,
			   uint64_t len);

/* The bytes of [off, off + len) that are data. */
uint64_t shmet_priv_datamap_bytes(const struct shmet_priv_datamap *m,
				  uint64_t off, uint64_t len);

/* Take len bytes from m->copy_left: 1, or 0 if fewer are left. */
int shmet_priv_datamap_take(struct shmet_priv_datamap *m, uint64_t len);

/* off if it holds data, else the start of the next data extent, or
 * UINT64_MAX if none follows. */
uint64_t shmet_priv_datamap_next(const struct shmet_priv_datamap *m,
				 uint64_t off);

#endif
