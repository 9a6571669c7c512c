/*
 * The index: every published family and series of a segment, copied out
 * of the segment and sorted (families by name, series by label values),
 * so that renderers produce a stable order and never touch untrusted
 * strings.  Built when the segment's generation moves.
 *
 * This file only builds, sorts and links: what in a record may be
 * believed is decided in trust.c (the trust boundary), and the versions
 * of a name are joined in versions.c.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "datamap.h"
#include "reader-private.h"
#include "trust.h"
#include "versions.h"

/*
 * Slot i of an index array at file offset base, or the first slot at or
 * after it whose page holds data; n (the end) if none.  Hole pages read
 * as empty slots without being touched.
 */
static uint32_t
next_slot(struct shmet_priv_datamap *m, uint64_t base, uint32_t i,
	  uint32_t n)
{
	uint64_t at = base + 4 * (uint64_t)i, next;

	if (i >= n || shmet_priv_datamap_has(m, at, 4))
		return i;
	next = shmet_priv_datamap_next(m, at);
	if (next == UINT64_MAX || next >= base + 4 * (uint64_t)n)
		return n;
	return (uint32_t)((next - base + 3) / 4);
}

/* By name; a name's versions newest first (then the later record). */
static int
cmp_family(const void *pa, const void *pb)
{
	const struct shmet_index_family *a = pa, *b = pb;
	int c = cmp_str(a->name, b->name);

	if (c)
		return c;
	if (a->registered_ns != b->registered_ns)
		return a->registered_ns < b->registered_ns ? 1 : -1;
	return (a->first_series < b->first_series) -
	       (a->first_series > b->first_series);
}

/* families: the sorted family array, for the label count. */
static int
cmp_series(const void *pa, const void *pb, void *families)
{
	const struct shmet_index_series *a = pa, *b = pb;
	const struct shmet_index_family *fams = families;
	uint32_t n;

	if (a->family != b->family)
		return (a->family > b->family) - (a->family < b->family);
	n = fams[a->family].label_count;
	for (uint32_t i = 0; i < n; i++) {
		int c = cmp_str(a->label_values[i], b->label_values[i]);

		if (c)
			return c;
	}
	return 0;
}

static int
cmp_collector(const void *pa, const void *pb)
{
	const struct shmet_index_collector *a = pa, *b = pb;

	return cmp_str(a->name, b->name);
}

static int
collect_families(const struct shmet_reader *r,
		 struct shmet_priv_datamap *m, struct shmet_index *idx,
		 uint32_t *pos_of_id)
{
	const _Atomic uint32_t *slots =
		(const _Atomic uint32_t *)(r->base + r->hdr.family_index_off);
	uint32_t n = 0, kept = 0;
	int rc;

	idx->families = shmet_priv_arena_alloc(
		&idx->arena, sizeof *idx->families * r->hdr.max_families);
	idx->collectors = shmet_priv_arena_alloc(
		&idx->arena, sizeof *idx->collectors * r->hdr.max_families);
	if (!idx->families || !idx->collectors)
		return -ENOMEM;
	for (uint32_t i = 0; (i = next_slot(m, r->hdr.family_index_off, i,
					     r->hdr.family_index_slots)) <
			     r->hdr.family_index_slots;
	     i++) {
		/* Acquire: pairs with the writer's release CAS. */
		uint32_t v = atomic_load_explicit(&slots[i],
						  memory_order_acquire);

		if (v == 0 || v == SHMET_INDEX_TOMB)
			continue;       /* empty, a reclaimed record's */
		if (v - 1 < r->hdr.max_families &&
		    record_type(r, m, v - 1) == SHMET_TYPE_COLLECTOR) {
			if (pos_of_id[v - 1] != UINT32_MAX ||
			    load_collector(r, m, &idx->arena, v - 1,
					   &idx->collectors[idx->ncollectors]) <
				    0)
				idx->skipped_families++;
			else
				idx->ncollectors++;
			pos_of_id[v - 1] = UINT32_MAX - 1; /* no series */
			continue;
		}
		if (v - 1 >= r->hdr.max_families ||
		    pos_of_id[v - 1] != UINT32_MAX || n >= r->hdr.max_families ||
		    (rc = load_family(r, m, &idx->arena, v - 1,
				      &idx->families[n])) < 0) {
			idx->skipped_families++;
			continue;
		}
		if (rc > 0)
			continue;       /* being reclaimed or rebuilt */
		pos_of_id[v - 1] = 0;   /* seen */
		n++;
	}
	qsort(idx->collectors, idx->ncollectors, sizeof *idx->collectors,
	      cmp_collector);
	/* A name twice (writers register a collector once per name) would
	 * be a key twice in health's JSON: the first is kept. */
	{
		uint32_t ck = 0;

		for (uint32_t i = 0; i < idx->ncollectors; i++) {
			if (ck > 0 && cmp_str(idx->collectors[ck - 1].name,
					      idx->collectors[i].name) == 0) {
				idx->skipped_families++;
				continue;
			}
			idx->collectors[ck++] = idx->collectors[i];
		}
		idx->ncollectors = ck;
	}
	qsort(idx->families, n, sizeof *idx->families, cmp_family);
	/* A name's versions of another type than its newest cannot share
	 * its TYPE line: left out, and counted as a conflict. */
	for (uint32_t i = 0, head = 0; i < n; i++) {
		struct shmet_index_family *f = &idx->families[i];

		if (i == 0 || cmp_str(idx->families[head].name, f->name) != 0)
			head = i;
		else if (f->type != idx->families[head].type) {
			pos_of_id[f->first_series] = UINT32_MAX;
			idx->type_conflicts++;
			continue;
		}
		pos_of_id[f->first_series] = kept;
		idx->families[kept++] = *f;
	}
	idx->nfamilies = kept;
	for (uint32_t i = 0; i < r->hdr.max_families; i++)
		if (pos_of_id[i] == UINT32_MAX - 1)
			pos_of_id[i] = UINT32_MAX;
	return drop_colliding(idx, pos_of_id);
}

static int
collect_series(const struct shmet_reader *r,
	       struct shmet_priv_datamap *m, struct shmet_index *idx,
	       const uint32_t *pos_of_id)
{
	const _Atomic uint32_t *slots =
		(const _Atomic uint32_t *)(r->base + r->hdr.series_index_off);
	struct blob_ref *refs;
	uint8_t *seen;          /* record ids met: a record counts once */
	uint32_t n = 0, kept = 0;

	idx->series = shmet_priv_arena_alloc(&idx->arena,
				  sizeof *idx->series * r->hdr.max_series);
	refs = malloc(sizeof *refs * (r->hdr.max_series ? r->hdr.max_series
							 : 1));
	seen = calloc(r->hdr.max_series / 8 + 1, 1);
	if (!idx->series || !refs || !seen) {
		free(refs);
		free(seen);
		return -ENOMEM;
	}
	for (uint32_t i = 0; (i = next_slot(m, r->hdr.series_index_off, i,
					     r->hdr.series_index_slots)) <
			     r->hdr.series_index_slots;
	     i++) {
		/* Acquire: pairs with the writer's release CAS. */
		uint32_t v = atomic_load_explicit(&slots[i],
						  memory_order_acquire);
		struct shmet_seg_series s;
		uint32_t pos;
		int rc;

		if (v == 0 || v == SHMET_INDEX_TOMB)    /* empty, removed */
			continue;
		rc = n < r->hdr.max_series
			     ? load_series(r, m, idx, pos_of_id, seen, v, &s,
					   &pos)
			     : -1;
		if (rc < 0)
			idx->skipped_series++;
		if (rc <= 0)
			continue;
		idx->series[n].family = pos;
		idx->series[n].merge = UINT32_MAX;
		idx->series[n].first_cell = s.first_cell;
		idx->series[n].record = v - 1;
		/* the copy's incarnation, checked unchanged by load_series */
		idx->series[n].gen = atomic_load_explicit(&s.gen,
							  memory_order_relaxed);
		idx->series[n].label_values = NULL;
		refs[n].off = s.labels.off;
		refs[n].len = s.labels.len;
		refs[n].series = n;
		n++;
	}
	keep_disjoint_blobs(r, m, idx, refs, n);
	free(refs);
	free(seen);
	for (uint32_t i = 0; i < n; i++) {
		if (!idx->series[i].label_values) {
			idx->skipped_series++;
			continue;
		}
		idx->series[kept++] = idx->series[i];
	}
	qsort_r(idx->series, kept, sizeof *idx->series, cmp_series,
		idx->families);
	idx->nseries = kept;
	return 0;
}

/*
 * Drop duplicate series (corrupt segments), link families to series and
 * mark each family that continues its predecessor's name.
 */
static void
link_series(struct shmet_index *idx)
{
	uint32_t kept = 0;

	for (uint32_t i = 0; i < idx->nfamilies; i++)
		idx->families[i].continues =
			i > 0 && cmp_str(idx->families[i].name,
					 idx->families[i - 1].name) == 0;

	for (uint32_t i = 0; i < idx->nfamilies; i++)
		idx->families[i].series_count = 0;
	for (uint32_t i = 0; i < idx->nseries; i++) {
		struct shmet_index_series *s = &idx->series[i];

		if (kept > 0 &&
		    cmp_series(&idx->series[kept - 1], s, idx->families) == 0) {
			idx->skipped_series++;
			continue;
		}
		idx->series[kept++] = *s;
	}
	idx->nseries = kept;
	for (uint32_t i = idx->nseries; i-- > 0;) {
		struct shmet_index_family *f = &idx->families[idx->series[i].family];

		f->first_series = i;
		f->series_count++;
	}
	for (uint32_t i = 0; i < idx->nfamilies; i++)
		if (idx->families[i].series_count == 0)
			idx->families[i].first_series = idx->nseries;
}

/* Escape each series' labels once, for every scrape of this index. */
static int
build_label_texts(struct shmet_index *idx)
{
	struct shmet_buf tmp = { 0 };

	for (uint32_t i = 0; i < idx->nseries; i++) {
		struct shmet_index_series *s = &idx->series[i];
		const struct shmet_index_family *f = &idx->families[s->family];
		char *copy;

		shmet_buf_reset(&tmp);
		for (uint32_t k = 0; k < f->label_count; k++) {
			if (k)
				buf_putc(&tmp, ',');
			buf_put_str(&tmp, f->label_names[k]);
			buf_put(&tmp, "=\"", 2);
			shmet_priv_buf_put_escaped(&tmp, s->label_values[k], ESC_LABEL);
			buf_putc(&tmp, '"');
		}
		copy = shmet_priv_arena_alloc(&idx->arena, tmp.len + 1);
		if (tmp.failed || !copy) {
			shmet_buf_free(&tmp);
			return -ENOMEM;
		}
		memcpy(copy, tmp.data ? tmp.data : "", tmp.len + 1);
		s->label_text.ptr = copy;
		s->label_text.len = (uint32_t)tmp.len;
	}
	shmet_buf_free(&tmp);
	return 0;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

static int
cmp_series_cell(const void *a, const void *b, void *series)
{
	const struct shmet_index_series *s = series;
	uint32_t x = s[*(const uint32_t *)a].first_cell;
	uint32_t y = s[*(const uint32_t *)b].first_cell;

	return (x > y) - (x < y);
}

/* Which cells are float sums, and which series are gauges. */
static int
classify_cells(struct shmet_index *idx)
{
	uint32_t ncells = 0, ngauges = 0;

	for (uint32_t i = 0; i < idx->nseries; i++) {
		const struct shmet_index_series *s = &idx->series[i];
		const struct shmet_index_family *f = &idx->families[s->family];

		ncells = MAX(ncells, s->first_cell + f->cells_per_series);
		ngauges += f->type == SHMET_TYPE_GAUGE;
	}
	/* a merged histogram's other parts (join_versions) are read too */
	for (uint32_t i = 0; i < idx->nmerges; i++)
		for (uint32_t p = 1; p < idx->merges[i].nparts; p++)
			ncells = MAX(ncells,
				     idx->merges[i].part_cells[p] +
					     shmet_seg_cells_for(
						     SHMET_TYPE_HISTOGRAM,
						     idx->merges[i].part_bounds[p]));
	idx->ncells = ncells;
	idx->dcells = shmet_priv_arena_alloc(
		&idx->arena, 4u * (idx->nseries + 2 * idx->nmerges + 1));
	idx->gauge_series = shmet_priv_arena_alloc(&idx->arena,
					4u * (ngauges ? ngauges : 1));
	if (!idx->dcells || !idx->gauge_series)
		return -ENOMEM;
	for (uint32_t i = 0; i < idx->nseries; i++) {
		const struct shmet_index_series *s = &idx->series[i];
		const struct shmet_index_family *f = &idx->families[s->family];

		if (f->type == SHMET_TYPE_GAUGE) {
			idx->gauge_series[idx->ngauges++] = i;
			idx->live_modes |=
				shmet_seg_gauge_mode_live(f->gauge_mode);
		}
		else
			/* counter and histogram: one float-sum cell each */
			idx->dcells[idx->ndcells++] = shmet_seg_cell_float_sum(
				s->first_cell, f->cells_per_series);
	}
	for (uint32_t i = 0; i < idx->nmerges; i++)
		for (uint32_t p = 1; p < idx->merges[i].nparts; p++)
			idx->dcells[idx->ndcells++] = shmet_seg_cell_hist_sum(
				idx->merges[i].part_cells[p],
				idx->merges[i].part_bounds[p]);
	/* In cell order: the scrape goes through the cells chunk by chunk. */
	qsort(idx->dcells, idx->ndcells, sizeof *idx->dcells, cmp_u32);
	qsort_r(idx->gauge_series, idx->ngauges, sizeof *idx->gauge_series,
		cmp_series_cell, idx->series);
	return 0;
}

static int
cmp_ex_range(const void *pa, const void *pb)
{
	const struct shmet_index_ex_range *a = pa, *b = pb;

	if (a->first != b->first)
		return (a->first > b->first) - (a->first < b->first);
	return (a->end > b->end) - (a->end < b->end);
}

/*
 * The series that can show exemplars, by first slot (values-exemplar.c):
 * a counter's one slot, an unmerged histogram's one per bucket.  A
 * scrape finds the series of a set bit of the exemplar map here, so it
 * costs the exemplars that exist, not the series.  Whether the ranges
 * are disjoint is the index's to check: trust.c bounds each series'
 * cells, not how series share them.
 */
static int
exemplar_ranges(struct shmet_index *idx)
{
	idx->ex_ranges = shmet_priv_arena_alloc(
		&idx->arena, sizeof *idx->ex_ranges * (idx->nseries + 1u));
	if (!idx->ex_ranges)
		return -ENOMEM;
	for (uint32_t i = 0; i < idx->nseries; i++) {
		const struct shmet_index_series *s = &idx->series[i];
		const struct shmet_index_family *f = &idx->families[s->family];
		uint32_t buckets;

		if (f->type == SHMET_TYPE_COUNTER)
			buckets = 1;
		else if (f->type == SHMET_TYPE_HISTOGRAM &&
			 s->merge == UINT32_MAX)
			buckets = f->bound_count + 1;
		else
			continue;       /* gauges; merged histograms show none */
		idx->ex_ranges[idx->nex_ranges++] =
			(struct shmet_index_ex_range){ s->first_cell,
						       s->first_cell + buckets,
						       i };
	}
	qsort(idx->ex_ranges, idx->nex_ranges, sizeof *idx->ex_ranges,
	      cmp_ex_range);
	idx->ex_disjoint = 1;
	for (uint32_t k = 1; k < idx->nex_ranges; k++)
		if (idx->ex_ranges[k].first < idx->ex_ranges[k - 1].end)
			idx->ex_disjoint = 0;
	return 0;
}

/*
 * Every read of the mapping an index build makes, under the SIGBUS guard
 * (guard.c): -ESTALE with a message if the file shrank.  On a jump the
 * arena keeps what was allocated; shmet_index_free releases it.
 */
static int
collect_guarded(const struct shmet_reader *r, struct shmet_index *idx,
		uint32_t *pos_of_id, char *err, size_t errlen)
{
	struct shmet_priv_guard g;
	/* volatile: read again after a siglongjmp out of the guard */
	struct shmet_priv_datamap m, *volatile mp = &m;
	int rc;

	rc = shmet_priv_reader_check_size(r, err, errlen);
	if (rc < 0)
		return rc;
	/* Metadata is everything before the value blocks (values.c has its
	 * own per-block map for those). */
	rc = shmet_priv_datamap_build(&m, r->fd, r->hdr.values_off);
	if (rc < 0)
		return rc;
	m.copy_left = shmet_priv_datamap_bytes(&m, r->hdr.strings_off,
					       r->hdr.string_bytes);
	if (sigsetjmp(g.jb, 0)) {
		shmet_priv_datamap_free(mp);
		if (err && errlen)
			snprintf(err, errlen, "%s: the segment shrank while "
				 "it was read; reopen it", r->name);
		return -ESTALE;
	}
	shmet_priv_guard_enter(&g, r);
	rc = collect_families(r, &m, idx, pos_of_id);
	if (rc == 0)
		rc = collect_series(r, &m, idx, pos_of_id);
	shmet_priv_guard_leave(&g);
	shmet_priv_datamap_free(&m);
	return rc;
}

SHMET_EXPORT int
shmet_index_build(const struct shmet_reader *r, struct shmet_index **out,
		  char *err, size_t errlen)
{
	struct shmet_index *idx = calloc(1, sizeof *idx);
	uint32_t *pos_of_id = NULL;
	int rc = -ENOMEM;

	*out = NULL;
	if (!idx)
		goto fail;
	/* Read the generation first: a later change makes the next check
	 * rebuild, never miss an update. */
	idx->generation = shmet_reader_generation(r);
	/* The reader is the caller's and const to it; this memo is the one
	 * field an index build writes (reader-private.h, built_gen). */
	idx->settled = atomic_exchange_explicit(
			       &((struct shmet_reader *)r)->built_gen,
			       idx->generation, memory_order_relaxed) ==
		       idx->generation;
	pos_of_id = malloc(sizeof *pos_of_id * r->hdr.max_families);
	if (!pos_of_id)
		goto fail;
	memset(pos_of_id, 0xff, sizeof *pos_of_id * r->hdr.max_families);
	rc = collect_guarded(r, idx, pos_of_id, err, errlen);
	if (rc == -ESTALE) {
		free(pos_of_id);
		shmet_index_free(idx);
		return rc;
	}
	if (rc < 0)
		goto fail;
	link_series(idx);
	rc = join_versions(idx);
	if (rc == 0) {
		link_series(idx);
		rc = classify_cells(idx);
	}
	if (rc == 0)
		rc = exemplar_ranges(idx);
	if (rc == 0)
		rc = build_label_texts(idx);
	if (rc < 0)
		goto fail;
	free(pos_of_id);
	*out = idx;
	return 0;

fail:
	free(pos_of_id);
	shmet_index_free(idx);
	if (err && errlen)
		snprintf(err, errlen, "%s: cannot build index: %s", r->name,
			 strerror(-rc));
	return rc;
}

SHMET_EXPORT void
shmet_index_free(struct shmet_index *idx)
{
	if (!idx)
		return;
	shmet_priv_arena_free(&idx->arena);
	free(idx);
}

SHMET_EXPORT uint64_t
shmet_index_generation(const struct shmet_index *idx)
{
	return idx->generation;
}

SHMET_EXPORT int
shmet_index_current(const struct shmet_index *idx,
		    const struct shmet_reader *r)
{
	return idx && idx->settled &&
	       shmet_reader_generation(r) == idx->generation;
}

SHMET_EXPORT uint32_t
shmet_index_family_count(const struct shmet_index *idx)
{
	return idx->nfamilies;
}

SHMET_EXPORT const struct shmet_index_family *
shmet_index_family(const struct shmet_index *idx, uint32_t i)
{
	return i < idx->nfamilies ? &idx->families[i] : NULL;
}

SHMET_EXPORT uint32_t
shmet_index_series_count(const struct shmet_index *idx)
{
	return idx->nseries;
}

SHMET_EXPORT const struct shmet_index_series *
shmet_index_series(const struct shmet_index *idx, uint32_t i)
{
	return i < idx->nseries ? &idx->series[i] : NULL;
}

SHMET_EXPORT const struct shmet_index_family *
shmet_index_find(const struct shmet_index *idx, const char *name)
{
	struct shmet_str key = { name, (uint32_t)strlen(name) };
	uint32_t lo = 0, hi = idx->nfamilies;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = cmp_str(idx->families[mid].name, key);

		if (c == 0) {
			/* the newest version: the first of the name */
			while (mid > 0 && idx->families[mid].continues)
				mid--;
			return &idx->families[mid];
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}
