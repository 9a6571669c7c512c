/*
 * The index: every published family and series of a segment, validated,
 * copied out of the segment and sorted (families by name, series by label
 * values), so that renderers produce a stable order and never touch
 * untrusted strings.  Built when the segment's generation moves.
 *
 * Corrupt records are left out and counted, not fatal: one bad record
 * must not hide a fleet's other metrics.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "datamap.h"
#include "reader-private.h"

/* Untrusted pool string -> arena copy; ptr NULL if out of bounds. */
static struct shmet_str
copy_str(const struct shmet_reader *r, struct shmet_priv_datamap *m,
	 struct arena *a, struct shmet_seg_str s)
{
	struct shmet_str out = { NULL, 0 };
	char *p;

	if ((uint64_t)s.off + s.len > r->hdr.string_bytes ||
	    !shmet_priv_datamap_has(m, r->hdr.strings_off + s.off, s.len) ||
	    !shmet_priv_datamap_take(m, s.len))
		return out;
	p = shmet_priv_arena_alloc(a, (size_t)s.len + 1);
	if (!p)
		return out;
	memcpy(p, r->base + r->hdr.strings_off + s.off, s.len);
	p[s.len] = '\0';
	out.ptr = p;
	out.len = s.len;
	return out;
}

static int
valid_name(struct shmet_str s, int metric)
{
	return metric ? shmet_seg_metric_name_valid(s.ptr, s.len)
		      : shmet_seg_label_name_valid(s.ptr, s.len);
}

/*
 * Parse a label blob of exactly n {u16 len, bytes} entries filling the
 * whole reference; copies into an arena array.  NULL if malformed.
 */
static struct shmet_str *
copy_blob(const struct shmet_reader *r, struct shmet_priv_datamap *m,
	  struct arena *a, struct shmet_seg_str s, uint32_t n, int names)
{
	const unsigned char *p, *end;
	struct shmet_str *out;

	if ((uint64_t)s.off + s.len > r->hdr.string_bytes ||
	    !shmet_priv_datamap_has(m, r->hdr.strings_off + s.off, s.len) ||
	    !shmet_priv_datamap_take(m, s.len))
		return NULL;
	p = r->base + r->hdr.strings_off + s.off;
	end = p + s.len;
	out = shmet_priv_arena_alloc(a, sizeof *out * (n ? n : 1));
	if (!out)
		return NULL;
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *v;
		uint32_t len;
		char *copy;
		size_t fixed;

		if (!shmet_seg_blob_next(&p, end, &v, &len))
			return NULL;
		/* Values as writers store them: invalid UTF-8 repaired
		 * (format.h), so two values that differ only there are
		 * one series here too, and sort and compare as shown. */
		fixed = names ? len
			      : shmet_seg_utf8_repaired_len((const char *)v,
							    len);
		copy = shmet_priv_arena_alloc(a, fixed + 1);
		if (!copy)
			return NULL;
		if (fixed == len)
			memcpy(copy, v, len);
		else
			shmet_seg_utf8_repair((const char *)v, len, copy);
		copy[fixed] = '\0';
		out[i].ptr = copy;
		out[i].len = fixed;
		if (names && !valid_name(out[i], 0))
			return NULL;
	}
	return p == end ? out : NULL;
}

static const double *
copy_bounds(const struct shmet_reader *r, struct shmet_priv_datamap *m,
	    struct arena *a, const struct shmet_seg_family *f)
{
	double *b;

	if (f->bounds.len != 8u * f->bound_count || (f->bounds.off & 7) ||
	    (uint64_t)f->bounds.off + f->bounds.len > r->hdr.string_bytes ||
	    !shmet_priv_datamap_has(m, r->hdr.strings_off + f->bounds.off,
				    f->bounds.len) ||
	    !shmet_priv_datamap_take(m, f->bounds.len))
		return NULL;
	b = shmet_priv_arena_alloc(a, (size_t)f->bounds.len + 8);
	if (!b)
		return NULL;
	memcpy(b, r->base + r->hdr.strings_off + f->bounds.off, f->bounds.len);
	if (f->bound_count > 0 &&
	    shmet_seg_bounds_check(b, f->bound_count) != -1)
		return NULL;
	return b;
}

static int
cmp_str(struct shmet_str a, struct shmet_str b)
{
	int c = memcmp(a.ptr, b.ptr, MIN(a.len, b.len));

	if (c)
		return c;
	return (a.len > b.len) - (a.len < b.len);
}

/* Family record id lies in pages that hold data (datamap.h). */
static int
record_has_data(const struct shmet_reader *r,
		struct shmet_priv_datamap *m, uint32_t id)
{
	return shmet_priv_datamap_has(m, r->hdr.families_off +
					      (uint64_t)id *
						      sizeof(struct shmet_seg_family),
				      sizeof(struct shmet_seg_family));
}

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

/* Validate and copy family record id's fields; 0 on success. */
static int
load_family_fields(const struct shmet_reader *r, struct shmet_priv_datamap *m,
	    struct arena *a, uint32_t id, struct shmet_index_family *out)
{
	const struct shmet_seg_family *src =
		(const struct shmet_seg_family *)(r->base +
						  r->hdr.families_off) + id;
	struct shmet_seg_family f;

	if (!record_has_data(r, m, id))
		return -1;
	/* One copy of the record: later changes cannot bypass the checks. */
	memcpy(&f, src, offsetof(struct shmet_seg_family, series_count));
	/* Not the gate's journal after hash: writers change it at will. */
	memcpy(&f.name, &src->name,
	       offsetof(struct shmet_seg_family, gate_count) -
		       offsetof(struct shmet_seg_family, name));
	if (!shmet_seg_type_valid(f.type) ||
	    f.label_count > SHMET_MAX_LABELS ||
	    (f.type == SHMET_TYPE_HISTOGRAM) !=
		    (f.bound_count >= 1 && f.bound_count <= SHMET_MAX_BOUNDS) ||
	    (f.type != SHMET_TYPE_HISTOGRAM && f.bound_count != 0) ||
	    (f.type == SHMET_TYPE_GAUGE) !=
		    shmet_seg_gauge_mode_valid(f.gauge_mode) ||
	    (f.type != SHMET_TYPE_GAUGE && f.gauge_mode != 0) ||
	    f.cells_per_series != shmet_seg_cells_for(f.type, f.bound_count) ||
	    f.help.len > SHMET_MAX_HELP_LEN)
		return -1;
	/* The record's version fields (layout.h, version 4), read once.
	 * Relaxed: a hint that orders nothing. */
	f.base = src->base;
	f.registered_ns = atomic_load_explicit(&src->registered_ns,
					       memory_order_relaxed);
	if (f.base != 0 && (f.base - 1 >= r->hdr.max_families ||
			    f.base - 1 == id))
		return -1;
	memset(out, 0, sizeof *out);
	out->registered_ns = f.registered_ns;
	out->name = copy_str(r, m, a, f.name);
	out->help = copy_str(r, m, a, f.help);
	out->unit = copy_str(r, m, a, f.unit);
	out->label_names = copy_blob(r, m, a, f.label_names, f.label_count, 1);
	out->bounds = copy_bounds(r, m, a, &f);
	if (!valid_name(out->name, 1) || !out->help.ptr || !out->unit.ptr ||
	    !shmet_seg_unit_valid(out->name.ptr, out->name.len, out->unit.ptr,
				  out->unit.len, f.type) ||
	    shmet_seg_name_reserved(out->name.ptr, out->name.len) ||
	    !out->label_names || !out->bounds)
		return -1;
	/* Labels a page cannot carry: reserved or twice in one family. */
	for (uint32_t i = 0; i < f.label_count; i++) {
		const struct shmet_str *l = &out->label_names[i];

		if (shmet_seg_label_name_reserved(f.type, f.gauge_mode, l->ptr,
						  l->len))
			return -1;
		for (uint32_t j = 0; j < i; j++)
			if (cmp_str(*l, out->label_names[j]) == 0)
				return -1;
	}
	out->type = f.type;
	out->gauge_mode = f.gauge_mode;
	out->label_count = f.label_count;
	out->bound_count = f.bound_count;
	out->cells_per_series = f.cells_per_series;
	out->first_series = id;         /* segment id until sorted */
	return 0;
}

/*
 * Validate and copy family record id: 0, -1 corrupt, 1 not there (being
 * reclaimed or rebuilt, layout 5: its incarnation odd or moved while we
 * copied it, or its state FREE; not counted).  Read as a sequence lock's
 * reader, as series records are.
 */
static int
load_family(const struct shmet_reader *r, struct shmet_priv_datamap *m,
	    struct arena *a, uint32_t id, struct shmet_index_family *out)
{
	const struct shmet_seg_family *src =
		(const struct shmet_seg_family *)(r->base +
						  r->hdr.families_off) + id;
	uint32_t inc, st;
	int rc;

	if (!record_has_data(r, m, id))
		return -1;
	/* Acquire: a rebuilt record's fields before its even incarnation. */
	inc = atomic_load_explicit(&src->incarnation, memory_order_acquire);
	st = atomic_load_explicit(&src->state, memory_order_acquire);
	if (st > SHMET_FAMILY_CLAIMED)
		return -1;
	if ((inc & 1) || st == SHMET_FAMILY_FREE)
		return 1;
	rc = load_family_fields(r, m, a, id, out);
	shmet_seg_record_read_fence();
	if (atomic_load_explicit(&src->incarnation, memory_order_relaxed) !=
	    inc)
		return 1;
	return rc;
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

/*
 * A collector record (layout.h): "@" + a label-name-like name, and a blob
 * of member family names.  0 on success.
 */
static int
load_collector(const struct shmet_reader *r, struct shmet_priv_datamap *m,
	       struct arena *a, uint32_t id, struct shmet_index_collector *out)
{
	const struct shmet_seg_family *src =
		(const struct shmet_seg_family *)(r->base +
						  r->hdr.families_off) + id;
	struct shmet_seg_family f;
	struct shmet_str name;

	if (!record_has_data(r, m, id))
		return -1;
	memcpy(&f, src, offsetof(struct shmet_seg_family, series_count));
	/* Not the gate's journal after hash: writers change it at will. */
	memcpy(&f.name, &src->name,
	       offsetof(struct shmet_seg_family, gate_count) -
		       offsetof(struct shmet_seg_family, name));
	if (f.label_count > SHMET_MAX_COLLECTOR_FAMILIES || f.bound_count ||
	    f.gauge_mode || f.cells_per_series)
		return -1;
	name = copy_str(r, m, a, f.name);
	if (!name.ptr || name.len < 2 || name.ptr[0] != SHMET_COLLECTOR_PREFIX ||
	    !shmet_seg_label_name_valid(name.ptr + 1, name.len - 1))
		return -1;
	out->name.ptr = name.ptr + 1;
	out->name.len = name.len - 1;
	out->family_count = f.label_count;
	out->families = copy_blob(r, m, a, f.label_names, f.label_count, 0);
	if (!out->families)
		return -1;
	for (uint32_t i = 0; i < f.label_count; i++)
		if (!valid_name(out->families[i], 1))
			return -1;
	return 0;
}

static int
cmp_collector(const void *pa, const void *pb)
{
	const struct shmet_index_collector *a = pa, *b = pb;

	return cmp_str(a->name, b->name);
}

/* The record's type, read once (0 if its page is a hole). */
static uint32_t
record_type(const struct shmet_reader *r, struct shmet_priv_datamap *m,
	    uint32_t id)
{
	const struct shmet_seg_family *src =
		(const struct shmet_seg_family *)(r->base +
						  r->hdr.families_off) + id;

	return record_has_data(r, m, id) ? src->type : 0;
}

/* One name a family puts on the page (format.h, exposed names). */
struct exposed {
	struct shmet_str name;
	uint32_t family;                /* position in idx->families */
	uint32_t id;                    /* segment id: the older wins */
};

static int
cmp_exposed(const void *pa, const void *pb)
{
	const struct exposed *a = pa, *b = pb;
	int c = cmp_str(a->name, b->name);

	return c ? c : (a->id > b->id) - (a->id < b->id);
}

/*
 * Leave out every family that puts a name on the page that an older
 * family (lower record id) puts there too.  Registration refuses such
 * families, but two processes registering at the same instant, or a
 * corrupt segment, can still hold a pair; one pair would make strict
 * parsers reject the whole page.  Called with families sorted by name and
 * their segment id in first_series.
 */
static int
drop_colliding(struct shmet_index *idx, uint32_t *pos_of_id)
{
	struct exposed *ex;
	uint8_t *drop;
	uint32_t n = 0, kept = 0;

	ex = malloc(sizeof *ex * idx->nfamilies * SHMET_SEG_MAX_EXPOSED + 1);
	drop = calloc(idx->nfamilies + 1, 1);
	if (!ex || !drop) {
		free(ex);
		free(drop);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < idx->nfamilies; i++) {
		const struct shmet_index_family *f = &idx->families[i];
		struct shmet_seg_exposed e;

		shmet_seg_exposed_names(f->type, f->name.ptr, f->name.len, &e);
		for (uint32_t k = 0; k < e.count; k++) {
			size_t sl = strlen(e.suffix[k]);
			char *p = shmet_priv_arena_alloc(&idx->arena,
							 e.base_len + sl + 1);

			if (!p) {
				free(ex);
				free(drop);
				return -ENOMEM;
			}
			memcpy(p, f->name.ptr, e.base_len);
			memcpy(p + e.base_len, e.suffix[k], sl + 1);
			ex[n].name.ptr = p;
			ex[n].name.len = (uint32_t)(e.base_len + sl);
			ex[n].family = i;
			ex[n].id = f->first_series;
			n++;
		}
	}
	qsort(ex, n, sizeof *ex, cmp_exposed);
	/* Versions of one name expose the same names: not a collision.
	 * Equal exposed names sort together; each is compared with the
	 * first of its run that is kept. */
	for (uint32_t i = 1, first = 0; i < n; i++) {
		if (cmp_str(ex[i].name, ex[first].name) != 0) {
			first = i;
			continue;
		}
		if (cmp_str(idx->families[ex[i].family].name,
			    idx->families[ex[first].family].name) != 0)
			drop[ex[i].family] = 1;
	}
	for (uint32_t i = 0; i < idx->nfamilies; i++) {
		uint32_t id = idx->families[i].first_series;

		if (drop[i]) {
			pos_of_id[id] = UINT32_MAX;
			idx->skipped_families++;
			continue;
		}
		pos_of_id[id] = kept;
		idx->families[kept++] = idx->families[i];
	}
	idx->nfamilies = kept;
	free(ex);
	free(drop);
	return 0;
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

/* A series record's label blob, for the overlap check of collect_series. */
struct blob_ref {
	uint32_t off, len;
	uint32_t series;                /* index into idx->series */
};

static int
cmp_blob_ref(const void *a, const void *b)
{
	const struct blob_ref *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static int
collect_series(const struct shmet_reader *r,
	       struct shmet_priv_datamap *m, struct shmet_index *idx,
	       const uint32_t *pos_of_id)
{
	const _Atomic uint32_t *slots =
		(const _Atomic uint32_t *)(r->base + r->hdr.series_index_off);
	const struct shmet_seg_series *table =
		(const struct shmet_seg_series *)(r->base + r->hdr.series_off);
	struct blob_ref *refs;
	uint8_t *seen;          /* record ids met: a record counts once */
	uint32_t n = 0, kept = 0, end = 0;

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
		const struct shmet_index_family *f;
		uint32_t pos, g;

		if (v == 0 || v == SHMET_INDEX_TOMB)    /* empty, removed */
			continue;
		if (v - 1 >= r->hdr.max_series || n >= r->hdr.max_series ||
		    (seen[(v - 1) / 8] >> ((v - 1) % 8) & 1) ||
		    !shmet_priv_datamap_has(m, r->hdr.series_off +
						    (uint64_t)(v - 1) * sizeof s,
					    sizeof s)) {
			idx->skipped_series++;
			continue;
		}
		/* Slots naming one record (a zero-label one has no blob for
		 * the overlap check below) add it once. */
		seen[(v - 1) / 8] |= (uint8_t)(1u << ((v - 1) % 8));
		/*
		 * A removed series is not on pages; a record being reused
		 * (writer/reuse.c) is read whole or not at all: its
		 * incarnation before and after the copy, as a sequence
		 * lock's reader (the writer moves it before it rewrites the
		 * record, stores state LIVE with release after).  A record
		 * passed over is seen at the next build, which the writer's
		 * generation bump asks for.
		 */
		g = atomic_load_explicit(&table[v - 1].gen,
					 memory_order_acquire);
		if (atomic_load_explicit(&table[v - 1].state,
					 memory_order_acquire) !=
		    SHMET_SERIES_LIVE)
			continue;
		memcpy(&s, &table[v - 1], sizeof s);
		shmet_seg_record_read_fence();
		if (atomic_load_explicit(&table[v - 1].gen,
					 memory_order_relaxed) != g)
			continue;
		pos = s.family < r->hdr.max_families ? pos_of_id[s.family]
						     : UINT32_MAX;
		if (pos == UINT32_MAX) {
			idx->skipped_series++;
			continue;
		}
		f = &idx->families[pos];
		if ((uint64_t)s.first_cell + f->cells_per_series >
		    r->hdr.cells_per_block) {
			idx->skipped_series++;
			continue;
		}
		idx->series[n].family = pos;
		idx->series[n].merge = UINT32_MAX;
		idx->series[n].first_cell = s.first_cell;
		idx->series[n].label_values = NULL;
		refs[n].off = s.labels.off;
		refs[n].len = s.labels.len;
		refs[n].series = n;
		n++;
	}
	/*
	 * Every series a writer publishes has a label blob of its own in the
	 * string pool.  Blobs that overlap (slots naming one record, records
	 * sharing a blob) are a broken or hostile segment, and copying each
	 * would turn a small file into gigabytes (16 KiB blobs a thousand
	 * times over): only the first of overlapping blobs is kept.  So the
	 * bytes copied never exceed the string pool's.
	 */
	qsort(refs, n, sizeof *refs, cmp_blob_ref);
	for (uint32_t i = 0; i < n; i++) {
		struct shmet_index_series *x = &idx->series[refs[i].series];
		const struct shmet_index_family *f = &idx->families[x->family];
		struct shmet_seg_str blob = { refs[i].off, refs[i].len };

		if (blob.len > 0 && blob.off < end)
			continue;
		x->label_values = copy_blob(r, m, &idx->arena, blob,
					    f->label_count, 0);
		if (x->label_values && blob.len > 0)
			end = blob.off + blob.len;
	}
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
static int
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
			ncells = MAX(ncells, idx->merges[i].part_cells[p] +
						     idx->merges[i].part_bounds[p] + 2);
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
			/* counter [1] and histogram [bounds + 1] are floats */
			idx->dcells[idx->ndcells++] =
				s->first_cell + f->cells_per_series - 1;
	}
	for (uint32_t i = 0; i < idx->nmerges; i++)
		for (uint32_t p = 1; p < idx->merges[i].nparts; p++)
			idx->dcells[idx->ndcells++] =
				idx->merges[i].part_cells[p] +
				idx->merges[i].part_bounds[p] + 1;
	/* In cell order: the scrape goes through the cells chunk by chunk. */
	qsort(idx->dcells, idx->ndcells, sizeof *idx->dcells, cmp_u32);
	qsort_r(idx->gauge_series, idx->ngauges, sizeof *idx->gauge_series,
		cmp_series_cell, idx->series);
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
