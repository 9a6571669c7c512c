/* Data extents of a segment file: see datamap.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "datamap.h"

int
shmet_priv_datamap_build(struct shmet_priv_datamap *m, int fd, uint64_t end)
{
	size_t cap = 0;
	off_t off = 0;

	m->ext = NULL;
	m->n = 0;
	m->all = fd < 0;
	m->copy_left = UINT64_MAX;
	while (!m->all && (uint64_t)off < end) {
		off_t d = lseek(fd, off, SEEK_DATA), h;

		if (d < 0) {
			if (errno != ENXIO)     /* no SEEK_DATA: read it all */
				m->all = 1;
			break;
		}
		if ((uint64_t)d >= end)
			break;
		h = lseek(fd, d, SEEK_HOLE);
		if (h < 0) {
			m->all = 1;
			break;
		}
		if (m->n == cap) {
			size_t ncap = cap ? 2 * cap : 16;
			void *p = realloc(m->ext, ncap * sizeof *m->ext);

			if (!p) {
				shmet_priv_datamap_free(m);
				return -ENOMEM;
			}
			m->ext = p;
			cap = ncap;
		}
		m->ext[m->n][0] = (uint64_t)d;
		m->ext[m->n][1] = (uint64_t)h < end ? (uint64_t)h : end;
		m->n++;
		off = h;
	}
	return 0;
}

void
shmet_priv_datamap_free(struct shmet_priv_datamap *m)
{
	free(m->ext);
	m->ext = NULL;
	m->n = 0;
}

/* The first extent whose end is past off (m->n if none). */
static size_t
first_ending_after(const struct shmet_priv_datamap *m, uint64_t off)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->ext[mid][1] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
shmet_priv_datamap_has(const struct shmet_priv_datamap *m, uint64_t off,
		       uint64_t len)
{
	size_t i;

	if (m->all || len == 0)
		return 1;
	i = first_ending_after(m, off);
	return i < m->n && m->ext[i][0] <= off && off + len <= m->ext[i][1];
}

uint64_t
shmet_priv_datamap_next(const struct shmet_priv_datamap *m, uint64_t off)
{
	size_t i;

	if (m->all)
		return off;
	i = first_ending_after(m, off);
	if (i == m->n)
		return UINT64_MAX;
	return m->ext[i][0] > off ? m->ext[i][0] : off;
}

uint64_t
shmet_priv_datamap_bytes(const struct shmet_priv_datamap *m, uint64_t off,
			 uint64_t len)
{
	uint64_t end = off + len, sum = 0;

	if (m->all)
		return len;
	for (size_t i = first_ending_after(m, off); i < m->n; i++) {
		uint64_t lo = m->ext[i][0] > off ? m->ext[i][0] : off;
		uint64_t hi = m->ext[i][1] < end ? m->ext[i][1] : end;

		if (lo >= end)
			break;
		sum += hi - lo;
	}
	return sum;
}

int
shmet_priv_datamap_take(struct shmet_priv_datamap *m, uint64_t len)
{
	if (len > m->copy_left)
		return 0;
	m->copy_left -= len;
	return 1;
}
