/* The exemplar and gauge chunk tests' shared reads: see probe.h. */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <shmetrics/layout.h>
#include <shmetrics/format.h>

#include "probe.h"

int
probe_open(struct probe *p, const char *segname)
{
	char err[SHMET_READER_ERRLEN];

	memset(p, 0, sizeof *p);
	p->v = shmet_values_new();
	if (!p->v || shmet_reader_open(segname, &p->r, err, sizeof err) != 0) {
		fprintf(stderr, "probe: %s: %s\n", segname, err);
		return -1;
	}
	return probe_collect(p);
}

int
probe_collect(struct probe *p)
{
	char err[SHMET_READER_ERRLEN];

	for (int i = 0; i < 100 && (!p->idx || !shmet_index_current(p->idx, p->r));
	     i++) {
		shmet_index_free(p->idx);
		p->idx = NULL;
		if (shmet_index_build(p->r, &p->idx, err, sizeof err) != 0) {
			fprintf(stderr, "probe: index: %s\n", err);
			return -1;
		}
	}
	if (shmet_values_collect(p->r, p->idx, p->v) != 0) {
		fprintf(stderr, "probe: cannot collect\n");
		return -1;
	}
	return 0;
}

void
probe_close(struct probe *p)
{
	shmet_values_free(p->v);
	shmet_index_free(p->idx);
	if (p->r)
		shmet_reader_close(p->r);
	memset(p, 0, sizeof *p);
}

uint32_t
probe_series(const struct probe *p, const char *family, const char *label)
{
	const struct shmet_index_family *f = shmet_index_find(p->idx, family);

	for (uint32_t s = 0; f && s < f->series_count; s++) {
		const struct shmet_index_series *se =
			shmet_index_series(p->idx, f->first_series + s);

		if (!label ||
		    (f->label_count && se->label_values[0].len == strlen(label) &&
		     !memcmp(se->label_values[0].ptr, label, strlen(label))))
			return f->first_series + s;
	}
	return UINT32_MAX;
}

void
probe_ex_make(struct probe_ex *x, char tag, uint64_t k)
{
	snprintf(x->name0, sizeof x->name0, "%cid", tag);
	snprintf(x->val0, sizeof x->val0, "%c-%llu", tag, (unsigned long long)k);
	for (int i = 0; i < PROBE_PAD; i++)
		x->pad[i] = (char)('a' + (k * 7 + (uint64_t)i) % 26);
	x->pad[PROBE_PAD] = 0;
	x->names[0] = x->name0;
	x->names[1] = "pad";
	x->values[0] = x->val0;
	x->values[1] = x->pad;
}

int
probe_ex_shown(const struct probe *p, uint32_t si, uint32_t b, char tag,
	       uint64_t *k, const char *ctx)
{
	return probe_ex_shown_value(p, si, b, tag, 0, k, ctx);
}

int
probe_ex_shown_value(const struct probe *p, uint32_t si, uint32_t b,
		     char tag, double value, uint64_t *k, const char *ctx)
{
	struct shmet_exemplar e;
	const unsigned char *q, *end;
	struct probe_ex want;
	const char *want_s[4];
	size_t n[4];
	const char *s[4];

	if (si == UINT32_MAX || !shmet_values_exemplar(p->v, p->idx, si, b, &e))
		return 0;
	*k = (uint64_t)e.value;
	if (value != 0) {
		/* k from the first label's value, "<tag>-<k>" */
		char digits[24];
		size_t dn;

		if (e.labels_len < 2 + 3 + 2 + 3)
			goto bad;
		dn = (size_t)e.labels[5] | (size_t)e.labels[6] << 8;
		if (dn < 3 || dn > 22 || 7 + dn > e.labels_len ||
		    e.labels[7] != (unsigned char)tag || e.labels[8] != '-')
			goto bad;
		memcpy(digits, e.labels + 9, dn - 2);
		digits[dn - 2] = 0;
		*k = strtoull(digits, NULL, 10);
		if (e.value != value)
			goto bad;
	}
	if (*k < 1 || (value == 0 && (double)*k != e.value) ||
	    e.label_count != 2)
		goto bad;
	probe_ex_make(&want, tag, *k);
	want_s[0] = want.names[0];
	want_s[1] = want.values[0];
	want_s[2] = want.names[1];
	want_s[3] = want.values[1];
	q = e.labels;
	end = e.labels + e.labels_len;
	for (int i = 0; i < 4; i++) {
		if (end - q < 2)
			goto bad;
		n[i] = (size_t)q[0] | (size_t)q[1] << 8;
		s[i] = (const char *)q + 2;
		q += 2 + n[i];
		if (q > end || n[i] != strlen(want_s[i]) ||
		    memcmp(s[i], want_s[i], n[i]))
			goto bad;
	}
	if (q != end)
		goto bad;
	return 1;
bad:
	fprintf(stderr, "FAIL %s: TORN or FOREIGN exemplar on a '%c' series: "
		"value %.17g, %u labels, %u bytes\n", ctx, tag, e.value,
		e.label_count, e.labels_len);
	return -1;
}

struct probe_map {
	const unsigned char *p;
	size_t size;
};

static struct probe_map
map_seg(const char *segname)
{
	char path[256];
	struct stat st;
	struct probe_map m;
	int fd;

	snprintf(path, sizeof path, "/dev/shm%s", segname);
	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "cannot open %s\n", path);
		exit(1);
	}
	m.size = (size_t)st.st_size;
	m.p = mmap(NULL, m.size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (m.p == MAP_FAILED) {
		fprintf(stderr, "cannot map %s\n", path);
		exit(1);
	}
	return m;
}

struct probe_slot
probe_slot(const char *segname, uint32_t cell)
{
	struct probe_map m = map_seg(segname);
	const struct shmet_seg_header *h = (const void *)m.p;
	const struct shmet_seg_exemplar *x =
		(const void *)(m.p + h->exemplars_off +
			       (uint64_t)cell * SHMET_EXEMPLAR_SIZE);
	const _Atomic uint64_t *map =
		(const void *)(m.p + h->exemplar_map_off);
	struct probe_slot out = { 0, 0 };

	/* an unreserved page reads as zeros, but is not touched */
	if (atomic_load(&map[shmet_seg_exemplar_map_word(cell)]) &
	    shmet_seg_exemplar_map_bit(cell)) {
		out.seq = atomic_load(&x->seq);
		out.busy_ns = atomic_load(&x->busy_ns);
	}
	munmap((void *)m.p, m.size);
	return out;
}

struct probe_cells
probe_cells(const char *segname)
{
	struct probe_map m = map_seg(segname);
	const struct shmet_seg_header *h = (const void *)m.p;
	const struct shmet_seg_series *tab =
		(const void *)(m.p + h->series_off);
	const _Atomic uint32_t *index =
		(const void *)(m.p + h->series_index_off);
	const struct shmet_seg_family *fams =
		(const void *)(m.p + h->families_off);
	uint64_t chunk = atomic_load(&h->gauge_chunk);
	struct probe_cells c;
	uint32_t *first = calloc(h->max_series, sizeof *first);
	uint32_t *ncell = calloc(h->max_series, sizeof *ncell);
	uint32_t n = 0;

	memset(&c, 0, sizeof c);
	c.cells_per_block = h->cells_per_block;
	c.cells_used = atomic_load(&h->cells_used);
	c.chunk_next = shmet_seg_gauge_chunk_next(chunk);
	c.chunk_end = shmet_seg_gauge_chunk_end(chunk);
	c.chunk_size = shmet_seg_gauge_chunk_cells(h->cells_per_block);
	for (uint32_t i = 0; i < h->series_index_slots && first && ncell; i++) {
		uint32_t v = atomic_load(&index[i]);
		const struct shmet_seg_series *s;

		if (v == 0 || v == SHMET_INDEX_TOMB || v > h->max_series)
			continue;
		s = &tab[v - 1];
		if (s->family >= h->max_families ||
		    fams[s->family].type == SHMET_TYPE_COLLECTOR)
			continue;
		first[n] = s->first_cell;
		ncell[n] = s->cells;
		c.series_cells += s->cells;
		if ((uint64_t)s->first_cell + s->cells > c.cells_used ||
		    (s->first_cell < c.chunk_end &&
		     s->first_cell + s->cells > c.chunk_next))
			c.beyond++;
		n++;
	}
	c.series = n;
	for (uint32_t i = 0; i < n; i++)
		for (uint32_t j = i + 1; j < n; j++)
			if (first[i] < first[j] + ncell[j] &&
			    first[j] < first[i] + ncell[i])
				c.shared++;
	free(first);
	free(ncell);
	munmap((void *)m.p, m.size);
	return c;
}

uint64_t
probe_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
