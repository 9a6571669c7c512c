/*
 * The memory of a values object (shmetrics-reader.h, struct shmet_values):
 * its cell arrays, sized by the index and zeroed before every scrape, its
 * per-series gauge arrays, and its life.  values.c fills it.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "reader-private.h"
#include "values-private.h"

int
grow(void **p, size_t *cap, size_t want, size_t elem)
{
	void *n;

	if (want <= *cap)
		return 0;
	n = realloc(*p, want * elem);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = want;
	return 0;
}

/*
 * The cell arrays u[] and d[] are anonymous mappings, zeroed before every
 * scrape.  Their size comes from the segment (the highest cell a series
 * names), which a hostile or broken segment can make huge while the file
 * stays tiny and sparse: memset would make all of it resident on every
 * scrape (4 GiB for 2^28 cells).  Up to CELLS_MEMSET_MAX bytes they are
 * zeroed with memset (fastest for the dense arrays of real segments);
 * beyond, with MADV_DONTNEED, which gives the pages back, so that only
 * pages a scrape touches (cells of data pages, the cells series name)
 * become resident.  MAP_NORESERVE: address space only, until touched.
 */
#define CELLS_MEMSET_MAX ((size_t)16 << 20)

static int
cells_reserve(void **p, size_t *cap_bytes, size_t bytes)
{
	void *n;

	if (bytes > *cap_bytes) {
		n = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (n == MAP_FAILED)
			return -ENOMEM;
		if (*p)
			munmap(*p, *cap_bytes);
		*p = n;
		*cap_bytes = bytes;
		return 0;       /* fresh anonymous pages read as zero */
	}
	if (bytes <= CELLS_MEMSET_MAX)
		memset(*p, 0, bytes);
	else if (madvise(*p, bytes, MADV_DONTNEED) < 0)
		memset(*p, 0, bytes);
	return 0;
}

void
cells_free(void *p, size_t cap_bytes)
{
	if (p)
		munmap(p, cap_bytes);
}

int
reserve_values(struct shmet_values *v, const struct shmet_index *idx)
{
	size_t cells = idx->ncells ? idx->ncells : 1;
	size_t series = idx->nseries ? idx->nseries : 1;
	size_t cap;

	if (cells_reserve((void **)&v->u, &v->cap_u_bytes,
			  cells * sizeof *v->u) < 0 ||
	    cells_reserve((void **)&v->d, &v->cap_d_bytes,
			  cells * sizeof *v->d) < 0)
		return -ENOMEM;
	v->cap_cells = cells;
	if (series > v->cap_series) {
		cap = v->cap_series;
		if (grow((void **)&v->gauge, &cap, series, sizeof *v->gauge) < 0)
			return -ENOMEM;
		cap = v->cap_series;
		if (grow((void **)&v->gauge_stamp, &cap, series,
			 sizeof *v->gauge_stamp) < 0)
			return -ENOMEM;
		cap = v->cap_series;
		if (grow((void **)&v->gauge_set, &cap, series,
			 sizeof *v->gauge_set) < 0)
			return -ENOMEM;
		v->cap_series = series;
	}
	v->ncells = idx->ncells;
	v->nsamples = 0;
	v->blocks_read = 0;
	memset(v->gauge, 0, series * sizeof *v->gauge);
	memset(v->gauge_stamp, 0, series * sizeof *v->gauge_stamp);
	memset(v->gauge_set, 0, series * sizeof *v->gauge_set);
	return 0;
}

SHMET_EXPORT void
shmet_values_free(struct shmet_values *v)
{
	if (!v)
		return;
	cells_free(v->u, v->cap_u_bytes);
	cells_free(v->d, v->cap_d_bytes);
	free(v->gauge);
	free(v->gauge_stamp);
	free(v->gauge_set);
	free(v->samples);
	free(v->ex);
	free(v->ex_key);
	free(v->ex_bytes);
	free(v->ex_cand);
	free(v->ex_tmp);
	free(v->ex_ext);
	free(v);
}

SHMET_EXPORT struct shmet_values *
shmet_values_new(void)
{
	return calloc(1, sizeof(struct shmet_values));
}

