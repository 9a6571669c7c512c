/*
 * Versions of a name (docs/DESIGN.md, "Shapes across releases"): the
 * records a name has from releases that registered it with other shapes.
 * Gauge series of an older version hidden by a newer one with the same
 * label set; histogram series counted by versions with other buckets
 * merged over the bounds they all have.  Part of the index build
 * (index.c calls join_versions after linking).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "reader-private.h"
#include "versions.h"

/* One series' label set as name=value pairs in name order, for the
 * comparison of versions (label names differ in order or number). */
struct label_key {
	uint32_t head;                  /* the name's first family */
	uint32_t family;                /* newer versions first */
	uint32_t series;
	const struct shmet_index_series *s;
	const struct shmet_index_family *f;
	uint8_t order[SHMET_MAX_LABELS];
};

static int
cmp_label_key(const void *pa, const void *pb)
{
	const struct label_key *a = pa, *b = pb;
	uint32_t n;

	if (a->head != b->head)
		return (a->head > b->head) - (a->head < b->head);
	n = MIN(a->f->label_count, b->f->label_count);
	for (uint32_t i = 0; i < n; i++) {
		int c = cmp_str(a->f->label_names[a->order[i]],
				b->f->label_names[b->order[i]]);

		if (!c)
			c = cmp_str(a->s->label_values[a->order[i]],
				    b->s->label_values[b->order[i]]);
		if (c)
			return c;
	}
	if (a->f->label_count != b->f->label_count)
		return (a->f->label_count > b->f->label_count) -
		       (a->f->label_count < b->f->label_count);
	return (a->family > b->family) - (a->family < b->family);
}

/* The bounds two sorted bound lists share, into out; their count. */
static uint32_t
common_bounds(const double *a, uint32_t na, const double *b, uint32_t nb,
	      double *out)
{
	uint32_t i = 0, j = 0, n = 0;

	while (i < na && j < nb) {
		if (a[i] < b[j])
			i++;
		else if (b[j] < a[i])
			j++;
		else {
			out[n++] = a[i];
			i++;
			j++;
		}
	}
	return n;
}

/*
 * The merge of histogram series keys[0..n) (one label set, newest version
 * first) over the bounds all of them have; -ENOMEM.
 */
static int
merge_histograms(struct shmet_index *idx, const struct label_key *keys,
		 uint32_t n, uint32_t *out)
{
	struct shmet_index_merge *m = &idx->merges[idx->nmerges];
	double *bounds = shmet_priv_arena_alloc(&idx->arena,
						8u * SHMET_MAX_BOUNDS + 8);
	uint32_t *cells = shmet_priv_arena_alloc(&idx->arena, 4u * n);
	uint32_t *nb = shmet_priv_arena_alloc(&idx->arena, 4u * n);
	uint8_t **to = shmet_priv_arena_alloc(&idx->arena, sizeof *to * n);
	uint32_t count;

	if (!bounds || !cells || !nb || !to)
		return -ENOMEM;
	count = keys[0].f->bound_count;
	memcpy(bounds, keys[0].f->bounds, 8u * count);
	for (uint32_t p = 1; p < n; p++)
		count = common_bounds(bounds, count, keys[p].f->bounds,
				      keys[p].f->bound_count, bounds);
	for (uint32_t p = 0; p < n; p++) {
		const struct shmet_index_family *f = keys[p].f;
		uint32_t mb = 0;

		cells[p] = keys[p].s->first_cell;
		nb[p] = f->bound_count;
		to[p] = shmet_priv_arena_alloc(&idx->arena, f->bound_count + 1);
		if (!to[p])
			return -ENOMEM;
		/* bucket k (upper bound f->bounds[k], the last +Inf) counts
		 * in the first merged bucket whose bound is at least its */
		for (uint32_t k = 0; k <= f->bound_count; k++) {
			while (mb < count && (k == f->bound_count ||
					      bounds[mb] < f->bounds[k]))
				mb++;
			to[p][k] = (uint8_t)mb;
		}
	}
	m->bound_count = count;
	m->bounds = bounds;
	m->nparts = n;
	m->part_cells = cells;
	m->part_bounds = nb;
	m->part_to = (const uint8_t *const *)to;
	*out = idx->nmerges++;
	return 0;
}

/*
 * A label set that two versions of a name both have (only the buckets or
 * the gauge mode changed between releases) would be one series twice on
 * a page.  A histogram's versions are merged into the newest one's series
 * (exact at the bounds they share); of a gauge's, the newest version's is
 * shown and the others are counted as shadowed.
 */
int
join_versions(struct shmet_index *idx)
{
	uint32_t *head, n = 0, kept = 0, versions = 0;
	struct label_key *keys;
	uint8_t *drop;
	int rc = 0;

	for (uint32_t i = 1; i < idx->nfamilies; i++)
		versions += cmp_str(idx->families[i].name,
				    idx->families[i - 1].name) == 0;
	if (versions == 0)
		return 0;
	head = malloc(sizeof *head * idx->nfamilies);
	keys = malloc(sizeof *keys * (idx->nseries + 1));
	drop = calloc(idx->nseries + 1, 1);
	idx->merges = shmet_priv_arena_alloc(&idx->arena, sizeof *idx->merges *
					     (idx->nseries / 2 + 1));
	if (!head || !keys || !drop || !idx->merges) {
		free(head);
		free(keys);
		free(drop);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < idx->nfamilies; i++)
		head[i] = i > 0 && cmp_str(idx->families[i].name,
					   idx->families[i - 1].name) == 0
				  ? head[i - 1] : i;
	for (uint32_t i = 0; i < idx->nseries; i++) {
		const struct shmet_index_series *s = &idx->series[i];
		const struct shmet_index_family *f = &idx->families[s->family];
		struct label_key *k = &keys[n];
		uint32_t h = head[s->family];

		/* Only names with more than one version. */
		if (h == s->family && (s->family + 1 >= idx->nfamilies ||
				       head[s->family + 1] != h))
			continue;
		k->head = h;
		k->family = s->family;
		k->series = i;
		k->s = s;
		k->f = f;
		/* insertion sort of the label names: at most 16 */
		for (uint32_t a = 0; a < f->label_count; a++) {
			uint32_t b = a;

			while (b > 0 && cmp_str(f->label_names[k->order[b - 1]],
						f->label_names[a]) > 0) {
				k->order[b] = k->order[b - 1];
				b--;
			}
			k->order[b] = (uint8_t)a;
		}
		n++;
	}
	qsort(keys, n, sizeof *keys, cmp_label_key);
	for (uint32_t i = 0; i < n && rc == 0;) {
		uint32_t j = i + 1;

		for (; j < n; j++) {
			struct label_key a = keys[i], b = keys[j];

			a.family = b.family = 0;
			if (cmp_label_key(&a, &b) != 0)
				break;
		}
		/* keys[i..j): one label set, newest version first */
		for (uint32_t k = i + 1; k < j; k++)
			drop[keys[k].series] = 1;
		if (j - i > 1 && keys[i].f->type == SHMET_TYPE_HISTOGRAM)
			rc = merge_histograms(idx, keys + i, j - i,
					      &idx->series[keys[i].series].merge);
		else if (j - i > 1)
			idx->shadowed_series += j - i - 1;
		i = j;
	}
	for (uint32_t i = 0; i < idx->nseries; i++)
		if (!drop[i])
			idx->series[kept++] = idx->series[i];
	idx->nseries = kept;
	free(head);
	free(keys);
	free(drop);
	return rc;
}

SHMET_EXPORT uint32_t
shmet_index_series_bounds(const struct shmet_index *idx, uint32_t series,
			  const double **bounds)
{
	const struct shmet_index_series *s = &idx->series[series];

	if (s->merge != UINT32_MAX) {
		*bounds = idx->merges[s->merge].bounds;
		return idx->merges[s->merge].bound_count;
	}
	*bounds = idx->families[s->family].bounds;
	return idx->families[s->family].bound_count;
}

SHMET_EXPORT void
shmet_index_versions(const struct shmet_index *idx,
		     struct shmet_index_versions *out)
{
	out->type_conflicts = idx->type_conflicts;
	out->shadowed_series = idx->shadowed_series;
	out->merged_series = idx->nmerges;
}
