/*
 * The reader's trust boundary: every decision about what in a segment
 * may be believed is made in this file.  A segment is written by other
 * processes, possibly of another build, buggy or hostile; nothing read
 * from it is used before it passes here, and what passes is a copy, so
 * later changes in the segment cannot undo a check.
 *
 *   header       trust_header: immutable fields copied once, the
 *                geometry recomputed from the capacities and compared
 *                (size, offsets, strides), -EAGAIN while being created
 *   records      load_family, load_collector, load_series: types, modes,
 *                label and bound counts, cells per series, names (the
 *                rule book's validity checks, format.h), record ids and
 *                cell ranges within the header's capacities; a reused
 *                series record read as a sequence lock's reader
 *   blobs        copy_str, copy_blob, copy_bounds: inside the string
 *                pool, in pages that hold data, within the copy budget,
 *                blobs exactly filled, values' UTF-8 repaired, bounds
 *                increasing
 *   overlaps     keep_disjoint_blobs: overlapping label blobs are copied
 *                once (no amplification of a small file)
 *   collisions   drop_colliding: two families putting one name on the
 *                page (format.h's exposed names): the newer is left out
 *   values       trust_fold_journal: the retired block's fold journal
 *
 * Corrupt records are left out and counted (health says "degraded"),
 * never fatal: one bad record must not hide a fleet's other metrics.
 * The mechanisms these checks stand on: guard.c (a file cut short under
 * a read returns -ESTALE instead of SIGBUS), datamap.c (hole pages are
 * never touched, so a sparse file cannot make a reader allocate), and
 * values.c reads cells only within the ranges checked here.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datamap.h"
#include "reader-private.h"
#include "trust.h"

int
set_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Copy the immutable header fields one by one (the cursors are atomics). */
static void
copy_header(struct shmet_seg_header *dst, const struct shmet_seg_header *src)
{
	memset(dst, 0, sizeof *dst);
	dst->magic = src->magic;
	dst->layout_version = src->layout_version;
	dst->header_size = src->header_size;
	dst->total_size = src->total_size;
	dst->created_ns = src->created_ns;
	dst->max_families = src->max_families;
	dst->family_index_slots = src->family_index_slots;
	dst->max_series = src->max_series;
	dst->series_index_slots = src->series_index_slots;
	dst->max_writers = src->max_writers;
	dst->cells_per_block = src->cells_per_block;
	dst->string_bytes = src->string_bytes;
	dst->max_series_per_family = src->max_series_per_family;
	dst->series_ttl_s = src->series_ttl_s;
	dst->writers_off = src->writers_off;
	dst->families_off = src->families_off;
	dst->family_index_off = src->family_index_off;
	dst->registrants_off = src->registrants_off;
	dst->series_off = src->series_off;
	dst->series_index_off = src->series_index_off;
	dst->strings_off = src->strings_off;
	dst->values_off = src->values_off;
	dst->block_stride = src->block_stride;
	dst->cpu_blocks = src->cpu_blocks;
	dst->cpu_off = src->cpu_off;
	dst->exemplar_map_off = src->exemplar_map_off;
	dst->exemplars_off = src->exemplars_off;
}

static int
validate_header(const struct shmet_seg_header *h, const void *live_header,
		size_t size, const char *what, char *err, size_t errlen)
{
	const struct shmet_seg_header *live = live_header;
	uint64_t got, want;
	const char *field;

	if (size < SHMET_HEADER_SIZE)
		return set_err(err, errlen, -EPROTO,
			       "%s: %zu bytes, smaller than a segment header "
			       "(%u)", what, size, SHMET_HEADER_SIZE);
	if (h->magic != SHMET_MAGIC)
		return set_err(err, errlen, -EPROTO,
			       "%s: not a shmetrics segment (bad magic "
			       "0x%016llx)", what,
			       (unsigned long long)h->magic);
	if (h->layout_version != SHMET_LAYOUT_VERSION)
		return set_err(err, errlen, -EPROTONOSUPPORT,
			       "%s: layout version %u is not supported (this "
			       "reader speaks %u)", what, h->layout_version,
			       SHMET_LAYOUT_VERSION);
	if (h->header_size != SHMET_HEADER_SIZE)
		return set_err(err, errlen, -EPROTO,
			       "%s: header size %u, expected %u", what,
			       h->header_size, SHMET_HEADER_SIZE);
	/* Acquire: pairs with the creator's release once it initialised. */
	if (atomic_load_explicit(&live->init_state, memory_order_acquire) !=
	    SHMET_INIT_READY)
		return set_err(err, errlen, -EAGAIN,
			       "%s: segment is not initialised yet", what);
	if (h->total_size != size)
		return set_err(err, errlen, -EPROTO,
			       "%s: header says %llu bytes but the segment has "
			       "%zu", what, (unsigned long long)h->total_size,
			       size);
	field = shmet_seg_geometry_mismatch(h, &got, &want);
	if (field && strcmp(field, "capacities") == 0)
		return set_err(err, errlen, -EPROTO,
			       "%s: capacities out of range (families %u, "
			       "series %u, writers %u, cells %u, strings %u, "
			       "cpu blocks %u)",
			       what, h->max_families, h->max_series,
			       h->max_writers, h->cells_per_block,
			       h->string_bytes, h->cpu_blocks);
	if (field)
		return set_err(err, errlen, -EPROTO,
			       "%s: header field %s is %llu, expected %llu for "
			       "these capacities", what, field,
			       (unsigned long long)got,
			       (unsigned long long)want);
	if (h->max_series_per_family == 0)
		return set_err(err, errlen, -EPROTO,
			       "%s: header field max_series_per_family is 0",
			       what);
	return 0;
}

/*
 * The header: a copy of its immutable fields into *copy, then checked by
 * recomputing the geometry from the capacities (every later offset the
 * reader uses comes from the copy, never again from the segment).
 * -EAGAIN while its creator has not finished.
 */
int
trust_header(struct shmet_seg_header *copy, const void *base, size_t size,
	     const char *what, char *err, size_t errlen)
{
	memset(copy, 0, sizeof *copy);
	/* Acquire before copying: pairs with the creator's release of
	 * init_state, so a ready header is copied whole. */
	if (size >= SHMET_HEADER_SIZE &&
	    atomic_load_explicit(&((const struct shmet_seg_header *)base)
					  ->init_state,
				 memory_order_acquire) != SHMET_INIT_READY &&
	    ((const struct shmet_seg_header *)base)->magic == SHMET_MAGIC)
		return set_err(err, errlen, -EAGAIN,
			       "%s: segment is not initialised yet", what);
	if (size >= SHMET_HEADER_SIZE)
		copy_header(copy, base);
	return validate_header(copy, base, size, what, err, errlen);
}

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

	/* (the reference's length and alignment: load_family's shape) */
	if ((uint64_t)f->bounds.off + f->bounds.len > r->hdr.string_bytes ||
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
 * One copy of family (or collector) record id into *f, so that later
 * changes in the segment cannot bypass the checks made on it; -1 if the
 * record is in a hole page.
 */
static int
copy_record(const struct shmet_reader *r, struct shmet_priv_datamap *m,
	    uint32_t id, struct shmet_seg_family *f)
{
	const struct shmet_seg_family *src =
		(const struct shmet_seg_family *)(r->base +
						  r->hdr.families_off) + id;

	if (!record_has_data(r, m, id))
		return -1;
	memcpy(f, src, offsetof(struct shmet_seg_family, series_count));
	/* Not the gate's journal after hash: writers change it at will. */
	memcpy(&f->name, &src->name,
	       offsetof(struct shmet_seg_family, gate_count) -
		       offsetof(struct shmet_seg_family, name));
	return 0;
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

	if (copy_record(r, m, id, &f) < 0)
		return -1;
	/* The rule book's shape (rules.h), as the writer checks it too. */
	if (shmet_seg_family_shape_invalid(f.type, f.gauge_mode,
					   f.label_count, f.bound_count,
					   f.bounds.off, f.bounds.len,
					   f.cells_per_series) ||
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
int
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

/*
 * A collector record (layout.h): "@" + a label-name-like name, and a blob
 * of member family names.  0 on success.
 */
int
load_collector(const struct shmet_reader *r, struct shmet_priv_datamap *m,
	       struct arena *a, uint32_t id, struct shmet_index_collector *out)
{
	struct shmet_seg_family f;
	struct shmet_str name;

	if (copy_record(r, m, id, &f) < 0)
		return -1;
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

/* The record's type, read once (0 if its page is a hole). */
uint32_t
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
int
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

/*
 * Series record v (an index slot's value, v - 1 its id) read once into *s
 * and checked, its family's sorted position in *pos.  1: shown; 0: passed
 * over (removed, or being reused: the next build sees it); -1: corrupt
 * (counted).  seen marks the record ids met: slots naming one record (a
 * zero-label one has no blob for the overlap check) add it once.
 */
int
load_series(const struct shmet_reader *r, struct shmet_priv_datamap *m,
	    const struct shmet_index *idx, const uint32_t *pos_of_id,
	    uint8_t *seen, uint32_t v, struct shmet_seg_series *s,
	    uint32_t *pos)
{
	const struct shmet_seg_series *table =
		(const struct shmet_seg_series *)(r->base + r->hdr.series_off);
	uint32_t g;

	if (v - 1 >= r->hdr.max_series ||
	    (seen[(v - 1) / 8] >> ((v - 1) % 8) & 1) ||
	    !shmet_priv_datamap_has(m, r->hdr.series_off +
					    (uint64_t)(v - 1) * sizeof *s,
				    sizeof *s))
		return -1;
	seen[(v - 1) / 8] |= (uint8_t)(1u << ((v - 1) % 8));
	/*
	 * A removed series is not on pages; a record being reused
	 * (writer/reuse.c) is read whole or not at all: its incarnation
	 * before and after the copy, as a sequence lock's reader (the writer
	 * moves it before it rewrites the record, stores state LIVE with
	 * release after).  A record passed over is seen at the next build,
	 * which the writer's generation bump asks for.
	 */
	g = atomic_load_explicit(&table[v - 1].gen, memory_order_acquire);
	if (atomic_load_explicit(&table[v - 1].state, memory_order_acquire) !=
	    SHMET_SERIES_LIVE)
		return 0;
	memcpy(s, &table[v - 1], sizeof *s);
	shmet_seg_record_read_fence();
	if (atomic_load_explicit(&table[v - 1].gen, memory_order_relaxed) != g)
		return 0;
	*pos = s->family < r->hdr.max_families ? pos_of_id[s->family]
					       : UINT32_MAX;
	if (*pos == UINT32_MAX ||
	    (uint64_t)s->first_cell + idx->families[*pos].cells_per_series >
		    r->hdr.cells_per_block)
		return -1;
	return 1;
}

static int
cmp_blob_ref(const void *a, const void *b)
{
	const struct blob_ref *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/*
 * Label values for the n series of refs.  Every series a writer publishes
 * has a label blob of its own in the string pool.  Blobs that overlap
 * (slots naming one record, records sharing a blob) are a broken or
 * hostile segment, and copying each would turn a small file into
 * gigabytes (16 KiB blobs a thousand times over): only the first of
 * overlapping blobs is kept (the others' label_values stay NULL: left
 * out).  So the bytes copied never exceed the string pool's.
 */
void
keep_disjoint_blobs(const struct shmet_reader *r,
		    struct shmet_priv_datamap *m, struct shmet_index *idx,
		    struct blob_ref *refs, uint32_t n)
{
	uint32_t end = 0;

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
}

/*
 * The fold journal (layout.h, line 6) of the retired block: its numbers
 * are the writers', so each is checked before use.  1 with *slot and
 * *cell if a fold is pending and both are in range.
 */
int
trust_fold_journal(const struct shmet_reader *r, uint32_t ncells,
		   uint32_t *slot, uint32_t *cell)
{
	/* the live header (its journal is mutable), not the checked copy */
	const struct shmet_seg_header *h =
		(const struct shmet_seg_header *)r->base;

	/* Acquire: pairs with the folder's release of the journal. */
	if (atomic_load_explicit(&h->fold_state, memory_order_acquire) != 1)
		return 0;
	*slot = atomic_load_explicit(&h->fold_slot, memory_order_relaxed);
	*cell = atomic_load_explicit(&h->fold_cell, memory_order_relaxed);
	return *slot < r->hdr.max_writers && *cell < ncells &&
	       (uint64_t)*cell + shmet_seg_cells_for(SHMET_TYPE_GAUGE, 0) <=
		       ncells;
}
