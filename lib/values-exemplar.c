/*
 * One scrape's exemplars (layout.h, "Exemplars"; writer/exemplar.c):
 * for every counter series and every bucket of a histogram series, the
 * slot of its cell index, read as a sequence lock's reader and checked
 * before it is kept: the slot must name the series' record and the
 * incarnation the index saw, its checksum must match, its labels be
 * valid.  Anything else (never written, a writer inside, a slot of the
 * record's or the cells' earlier series, garbage) reads as no exemplar.
 */
#include "config.h"

#include <errno.h>

#include "reader-private.h"
#include "values-private.h"

#define read_exemplars shmet_priv_read_exemplars

/* Copies of a slot that a writer changed under us before we give up on it
 * for this scrape (the next scrape reads it again). */
#define EXEMPLAR_TRIES 4

struct slot_copy {
	uint32_t series, gen, count, len;
	uint64_t value, ts_ns, sum;
	uint64_t blob[SHMET_EXEMPLAR_BLOB / 8];
};

/* 1 if c is a consistent copy of x, 0 if x has none to give now. */
static int
copy_slot(const struct shmet_seg_exemplar *x, struct slot_copy *c)
{
	for (int t = 0; t < EXEMPLAR_TRIES; t++) {
		/* Acquire: pairs with the writer's release CAS that made seq
		 * even, so the fields it stored before are seen. */
		uint32_t s1 = atomic_load_explicit(&x->seq,
						   memory_order_acquire);
		uint32_t s2;

		if (s1 == 0)
			return 0;       /* never written */
		if (s1 & 1u)
			continue;       /* a writer is in it */
		/* Relaxed, all: the fence and the second seq load below
		 * decide whether they are one write's. */
		c->series = atomic_load_explicit(&x->series,
						 memory_order_relaxed);
		c->gen = atomic_load_explicit(&x->gen, memory_order_relaxed);
		c->count = atomic_load_explicit(&x->label_count,
						memory_order_relaxed);
		c->len = atomic_load_explicit(&x->blob_len,
					      memory_order_relaxed);
		c->value = atomic_load_explicit(&x->value,
						memory_order_relaxed);
		c->ts_ns = atomic_load_explicit(&x->ts_ns,
						memory_order_relaxed);
		c->sum = atomic_load_explicit(&x->sum, memory_order_relaxed);
		if (c->len > SHMET_EXEMPLAR_BLOB)
			c->len = SHMET_EXEMPLAR_BLOB + 1; /* refused below */
		memset(c->blob, 0, sizeof c->blob);
		for (uint32_t i = 0; i < (MIN(c->len, SHMET_EXEMPLAR_BLOB) + 7) / 8;
		     i++)
			c->blob[i] = atomic_load_explicit(&x->blob[i],
							  memory_order_relaxed);
		/* Acquire fence: if a load above saw a store a writer made
		 * after its release fence (inside the lock), the load of seq
		 * below sees that writer's odd seq or later (Boehm's seqlock
		 * reader), so the copy is thrown away. */
		shmet_seg_record_read_fence();
		s2 = atomic_load_explicit(&x->seq, memory_order_relaxed);
		if (s1 == s2)
			return 1;
	}
	return 0;
}

/* 1 if the copy is an exemplar of the index's series si. */
static int
slot_is_series(const struct slot_copy *c, const struct shmet_index_series *s)
{
	return c->series == s->record + 1 && c->gen == s->gen &&
	       c->len <= SHMET_EXEMPLAR_BLOB &&
	       c->sum == shmet_seg_exemplar_sum(c->series, c->gen, c->count,
						c->len, c->value, c->ts_ns,
						c->blob) &&
	       shmet_seg_exemplar_blob_valid((const unsigned char *)c->blob,
					     c->len, c->count);
}

/* The key of series si's bucket b: keys grow in the order read_all and
 * the renderers walk (series, then buckets). */
static uint64_t
ex_key(uint32_t si, uint32_t b)
{
	return (uint64_t)si << 8 | b;  /* b <= SHMET_MAX_BOUNDS < 256 */
}

/* Keep c as the exemplar of series si's bucket b; 0 or -ENOMEM. */
static int
keep(struct shmet_values *v, uint32_t si, uint32_t b,
     const struct slot_copy *c)
{
	struct shmet_exemplar *e;
	double d;
	size_t cap = v->cap_ex;

	if (grow((void **)&v->ex_key, &cap, v->nex + 1,
		 sizeof *v->ex_key) < 0 ||
	    grow((void **)&v->ex, &v->cap_ex, v->nex + 1, sizeof *v->ex) < 0 ||
	    grow((void **)&v->ex_bytes, &v->cap_ex_bytes,
		 v->nex_bytes + c->len + 1, 1) < 0)
		return -ENOMEM;
	memcpy(v->ex_bytes + v->nex_bytes, c->blob, c->len);
	e = &v->ex[v->nex];
	/* labels point into ex_bytes, which may move: fixed up after */
	e->labels = (const unsigned char *)(uintptr_t)v->nex_bytes;
	e->labels_len = c->len;
	e->label_count = c->count;
	memcpy(&d, &c->value, sizeof d);
	e->value = d;
	e->ts_ns = c->ts_ns;
	v->nex_bytes += c->len;
	v->ex_key[v->nex++] = ex_key(si, b);
	return 0;
}

/* The slots of series si's buckets: a counter's one, a histogram's. */
static int
series_slots(const struct shmet_reader *r, const struct shmet_index *idx,
	     struct shmet_values *v, uint32_t si)
{
	const struct shmet_index_series *s = &idx->series[si];
	const struct shmet_index_family *f = &idx->families[s->family];
	const _Atomic uint64_t *map =
		(const _Atomic uint64_t *)(const void *)(r->base +
							  r->hdr.exemplar_map_off);
	const struct shmet_seg_exemplar *slots =
		(const struct shmet_seg_exemplar *)(const void *)(r->base +
								   r->hdr.exemplars_off);
	uint32_t buckets;

	if (f->type == SHMET_TYPE_COUNTER)
		buckets = 1;
	else if (f->type == SHMET_TYPE_HISTOGRAM && s->merge == UINT32_MAX)
		buckets = f->bound_count + 1;
	else
		return 0;       /* gauges; merged histograms show none */
	for (uint32_t b = 0; b < buckets; b++) {
		uint64_t slot = shmet_seg_exemplar_slot(s->first_cell, b);
		struct slot_copy c;

		/* The index checked first_cell + cells_per_series against
		 * cells_per_block (trust.c), so slot is in the region. */
		if (slot >= r->hdr.cells_per_block)
			return 0;
		/* Acquire: pairs with the writer's release OR after it
		 * reserved the page: a set bit means a page that exists. */
		if (!(atomic_load_explicit(&map[shmet_seg_exemplar_map_word(slot)],
					   memory_order_acquire) &
		      shmet_seg_exemplar_map_bit(slot)))
			continue;
		if (copy_slot(&slots[slot], &c) && slot_is_series(&c, s) &&
		    keep(v, si, b, &c) < 0)
			return -ENOMEM;
	}
	return 0;
}

/*
 * 1 if a page of the slots the index's cells use was ever reserved: a
 * segment nobody wrote an exemplar to costs its scrapes one pass over
 * the map's words (a word covers 256 cells), not one look per series
 * and bucket.  Relaxed: a bit missed here is seen at the next scrape;
 * series_slots loads each bit again with acquire before it reads.
 */
static int
any_reserved(const struct shmet_reader *r, const struct shmet_index *idx)
{
	const _Atomic uint64_t *map =
		(const _Atomic uint64_t *)(const void *)(r->base +
							  r->hdr.exemplar_map_off);
	uint64_t words = shmet_seg_exemplar_map_words(idx->ncells);
	uint64_t any = 0;

	for (uint64_t w = 0; w < words; w++)
		any |= atomic_load_explicit(&map[w], memory_order_relaxed);
	return any != 0;
}

static int
read_all(const struct shmet_reader *r, const struct shmet_index *idx,
	 struct shmet_values *v)
{
	if (!any_reserved(r, idx))
		return 0;
	for (uint32_t si = 0; si < idx->nseries; si++) {
		int rc = series_slots(r, idx, v, si);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * The scrape's exemplars into v (after its cells), under the SIGBUS
 * guard: 0, -ENOMEM, or -ESTALE if the file shrank.
 */
int
read_exemplars(const struct shmet_reader *r, const struct shmet_index *idx,
	       struct shmet_values *v)
{
	struct shmet_priv_guard guard;
	int rc;

	v->nex = 0;
	v->nex_bytes = 0;
	if (sigsetjmp(guard.jb, 0)) {
		v->nex = 0;             /* nothing read is trusted */
		return -ESTALE;
	}
	shmet_priv_guard_enter(&guard, r);
	rc = read_all(r, idx, v);
	shmet_priv_guard_leave(&guard);
	for (size_t i = 0; i < v->nex; i++)
		v->ex[i].labels = v->ex_bytes + (uintptr_t)v->ex[i].labels;
	return rc;
}

SHMET_EXPORT int
shmet_values_exemplar(const struct shmet_values *v,
		      const struct shmet_index *idx, uint32_t series,
		      uint32_t bucket, struct shmet_exemplar *out)
{
	uint64_t key = ex_key(series, bucket);
	size_t lo = 0, hi = v->nex;

	(void)idx;
	if (bucket > SHMET_MAX_BOUNDS)
		return 0;
	while (lo < hi) {               /* the first key >= key */
		size_t mid = lo + (hi - lo) / 2;

		if (v->ex_key[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == v->nex || v->ex_key[lo] != key)
		return 0;
	*out = v->ex[lo];
	return 1;
}
