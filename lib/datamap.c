/* Data extents of a segment file: see datamap.h. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "datamap.h"

int
shmet_priv_data_next(int fd, uint64_t off, uint64_t end, uint64_t *d,
		     uint64_t *h)
{
	off_t dd, hh;

	if (off >= end)
		return 0;
	dd = lseek(fd, (off_t)off, SEEK_DATA);
	if (dd < 0)
		return errno == ENXIO ? 0 : -1;  /* ENXIO: no data after off */
	if ((uint64_t)dd >= end)
		return 0;
	hh = lseek(fd, dd, SEEK_HOLE);
	if (hh < 0)
		return -1;
	*d = (uint64_t)dd;
	*h = (uint64_t)hh < end ? (uint64_t)hh : end;
	return 1;
}

int
shmet_priv_datamap_build(struct shmet_priv_datamap *m, int fd, uint64_t end)
{
	size_t cap = 0;
	uint64_t off = 0, d, h;
	int rc;

	m->ext = NULL;
	m->n = 0;
	m->all = fd < 0;
	m->copy_left = UINT64_MAX;
	while (!m->all && (rc = shmet_priv_data_next(fd, off, end, &d, &h))) {
		if (rc < 0) {
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
		m->ext[m->n][0] = d;
		m->ext[m->n][1] = h;
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
