/*
 * One scrape's exemplars (layout.h, "Exemplars"; writer/exemplar.c).
 * The scrape walks the exemplar map's set bits, each a page of 4 slots a
 * writer reserved, and finds the series whose buckets those slots are
 * through the index's ranges by cell (index.c, ex_ranges): its cost is
 * the map's data words and the pages exemplars were written to, not the
 * series (a segment without any exemplar: no word read).  Neither the
 * map nor its bits are believed alone: the map's words and the slots'
 * pages are read only where lseek(SEEK_DATA) finds data, so a hostile map
 * never makes a scrape read (allocate) a hole.  Each written slot is read
 * as a sequence lock's reader and checked before it is kept: the slot
 * must name the series' record and the incarnation the index saw, its
 * checksum must match, its labels be valid.  Anything else (never
 * written, a writer inside, a slot of the record's or the cells' earlier
 * series, garbage) reads as no exemplar.
 */
#include "config.h"

#include <errno.h>

#include "datamap.h"
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

#define PER_PAGE (SHMET_PAGE / SHMET_EXEMPLAR_SIZE)   /* slots */

static const _Atomic uint64_t *
ex_map(const struct shmet_reader *r)
{
	return (const _Atomic uint64_t *)(const void *)(r->base +
							 r->hdr.exemplar_map_off);
}

static const struct shmet_seg_exemplar *
ex_slots(const struct shmet_reader *r)
{
	return (const struct shmet_seg_exemplar *)(const void *)(r->base +
								  r->hdr.exemplars_off);
}

/* Mark pages [p, q) of the exemplar region as holding data. */
static void
mark_data(const struct shmet_reader *r, uint64_t p, uint64_t q)
{
	for (; p < q; p++)
		/* Relaxed: a fact about the file (reader-private.h). */
		atomic_fetch_or_explicit(&r->ex_data[p / 64],
					 UINT64_C(1) << (p % 64),
					 memory_order_relaxed);
}

/*
 * 1 if page p (of pages) of the exemplar region may be read: its map bit
 * is the writer's claim, lseek(SEEK_DATA / SEEK_HOLE) the file's word.
 * A page found holding data is remembered with the extent it starts (the
 * next set bits there cost nothing, now or at later scrapes); a hole is
 * remembered for this scrape up to the next data (*hole_end), so a
 * hostile map of set bits over holes costs a call per data extent, and
 * no read of a hole (which would allocate a tmpfs page, or raise SIGBUS
 * when tmpfs is full).
 */
static int
page_readable(const struct shmet_reader *r, uint64_t p, uint64_t pages,
	      uint64_t *hole_end)
{
	uint64_t base = r->hdr.exemplars_off, off, d, h;
	int rc;

	if (r->fd < 0 || !r->ex_data)
		return 1;               /* a memory reader: no holes */
	/* Relaxed: see mark_data. */
	if ((atomic_load_explicit(&r->ex_data[p / 64], memory_order_relaxed) >>
	     (p % 64)) & 1)
		return 1;
	if (p < *hole_end)
		return 0;
	off = base + p * SHMET_PAGE;
	rc = shmet_priv_data_next(r->fd, off, base + pages * SHMET_PAGE, &d,
				  &h);
	if (rc < 0) {                   /* cannot tell: data, as values.c */
		mark_data(r, p, p + 1);
		return 1;
	}
	if (rc == 0) {
		*hole_end = pages;
		return 0;
	}
	if (d > off) {
		*hole_end = (d - base) / SHMET_PAGE;
		return 0;
	}
	if (h < off + SHMET_PAGE)       /* a partial page: not to be read */
		return 0;
	mark_data(r, p, (h - base) / SHMET_PAGE);
	return 1;
}

/* The first range at or after j that ends after slot lo (ranges
 * disjoint, so ends grow): a gallop from j, then a bisection. */
static uint32_t
first_ending_after(const struct shmet_index *idx, uint32_t j, uint64_t lo)
{
	const struct shmet_index_ex_range *x = idx->ex_ranges;
	uint32_t n = idx->nex_ranges, step = 1, hi;

	while (j + step < n && x[j + step].end <= lo) {
		j += step;
		step *= 2;
	}
	hi = MIN(n, j + step);
	while (j < hi) {                /* the first in [j, hi) ending > lo */
		uint32_t mid = j + (hi - j) / 2;

		if (x[mid].end <= lo)
			j = mid + 1;
		else
			hi = mid;
	}
	return j;
}

/* Add key to the scrape's candidates; 0 or -ENOMEM. */
static int
add_cand(struct shmet_values *v, size_t *n, uint64_t key)
{
	if (grow((void **)&v->ex_cand, &v->cap_ex_cand, *n + 1,
		 sizeof *v->ex_cand) < 0)
		return -ENOMEM;
	v->ex_cand[(*n)++] = key;
	return 0;
}

/* 1 if slot x was ever written.  Relaxed: a filter; copy_slot reads it
 * again with acquire before it trusts anything. */
static int
slot_written(const struct shmet_seg_exemplar *x)
{
	return atomic_load_explicit(&x->seq, memory_order_relaxed) != 0;
}

/*
 * The map's words [0, words) that lie on data pages, as word ranges
 * [ext[2i], ext[2i + 1]) in v->ex_ext: the map is sparse too (its pages
 * are holes until a writer sets a bit there), and a hostile index that
 * claims 2^28 cells would otherwise have a scrape read 8 MiB of holes.
 * A segment nobody wrote an exemplar to has none: its scrape reads no
 * word.  0 or -ENOMEM.
 */
static int
map_extents(const struct shmet_reader *r, uint64_t words,
	    struct shmet_values *v, size_t *next)
{
	uint64_t base = r->hdr.exemplar_map_off, end = base + 8 * words;
	uint64_t o = base, d, h;
	int rc;

	*next = 0;
	while (o < end) {
		if (r->fd < 0)
			rc = -1;        /* a memory reader: no holes */
		else
			rc = shmet_priv_data_next(r->fd, o, end, &d, &h);
		if (rc == 0)
			break;
		if (rc < 0) {           /* cannot tell: all of it */
			d = o;
			h = end;
		}
		if (grow((void **)&v->ex_ext, &v->cap_ex_ext, 2 * (*next + 1),
			 sizeof *v->ex_ext) < 0)
			return -ENOMEM;
		/* extents start and end on pages, words on 8 bytes */
		v->ex_ext[2 * *next] = (d - base + 7) / 8;
		v->ex_ext[2 * *next + 1] = (h - base) / 8;
		(*next)++;
		o = h;
	}
	return 0;
}

/* 1 if map word w is on a data page (ext: map_extents'). */
static int
word_readable(const uint64_t *ext, size_t next, uint64_t w)
{
	size_t lo = 0, hi = next;

	while (lo < hi) {               /* the first extent ending after w */
		size_t mid = lo + (hi - lo) / 2;

		if (ext[2 * mid + 1] <= w)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < next && ext[2 * lo] <= w;
}

/* Slots [lo, hi) of range x that were written: candidates. */
static int
range_cands(const struct shmet_seg_exemplar *slots,
	    const struct shmet_index_ex_range *x, uint64_t lo, uint64_t hi,
	    struct shmet_values *v, size_t *n)
{
	for (uint64_t c = MAX(lo, x->first); c < MIN(hi, x->end); c++)
		if (slot_written(&slots[c]) &&
		    add_cand(v, n, ex_key(x->series,
					  (uint32_t)(c - x->first))) < 0)
			return -ENOMEM;
	return 0;
}

/*
 * The candidates of disjoint ranges: for each set bit of the map (a page
 * of PER_PAGE slots) that holds data, the written slots of the series
 * whose ranges cross the page.  A scrape costs the map's data words (one
 * per 256 cells) and the pages that exemplars were written to, whatever
 * the series: a hostile map of set bits over holes costs a call per data
 * extent, the bits of a hole skipped by the word.
 */
static int
cands_by_page(const struct shmet_reader *r, const struct shmet_index *idx,
	      struct shmet_values *v, const uint64_t *ext, size_t next,
	      size_t *n)
{
	const _Atomic uint64_t *map = ex_map(r);
	const struct shmet_seg_exemplar *slots = ex_slots(r);
	const struct shmet_index_ex_range *x = idx->ex_ranges;
	uint64_t pages = ((uint64_t)idx->ncells + PER_PAGE - 1) / PER_PAGE;
	uint64_t hole_end = 0;
	uint32_t j = 0;

	for (size_t e = 0; e < next; e++)
		for (uint64_t w = MAX(ext[2 * e], hole_end / 64);
		     w < ext[2 * e + 1]; w++) {
			/* Acquire: pairs with the writer's release OR after
			 * it reserved the page: a set bit means a page it
			 * reserved (page_readable asks the file too). */
			uint64_t bits = atomic_load_explicit(
				&map[w], memory_order_acquire);

			while (bits) {
				uint64_t p = w * 64 +
					     (uint64_t)__builtin_ctzll(bits);
				uint64_t lo = p * PER_PAGE;
				uint64_t hi = MIN(lo + PER_PAGE,
						  (uint64_t)idx->ncells);

				bits &= bits - 1;
				if (p >= pages ||
				    !page_readable(r, p, pages, &hole_end))
					continue;
				j = first_ending_after(idx, j, lo);
				for (uint32_t k = j; k < idx->nex_ranges &&
						     x[k].first < hi;
				     k++)
					if (range_cands(slots, &x[k], lo, hi, v,
							n) < 0)
						return -ENOMEM;
			}
			if (hole_end / 64 > w + 1)
				w = hole_end / 64 - 1;  /* a hole's words */
		}
	return 0;
}

/*
 * The candidates when ranges overlap (a hostile or torn segment): every
 * series' every slot whose page bit is set, in series order, as before
 * the page walk; bounded by the cells of the index.
 */
static int
cands_by_series(const struct shmet_reader *r, const struct shmet_index *idx,
		struct shmet_values *v, const uint64_t *ext, size_t next,
		size_t *n)
{
	const _Atomic uint64_t *map = ex_map(r);
	const struct shmet_seg_exemplar *slots = ex_slots(r);
	uint64_t pages = ((uint64_t)idx->ncells + PER_PAGE - 1) / PER_PAGE;

	for (uint32_t k = 0; k < idx->nex_ranges; k++) {
		const struct shmet_index_ex_range *x = &idx->ex_ranges[k];
		uint64_t hole_end = 0;  /* grows along one series' pages */

		for (uint64_t c = x->first; c < x->end && c < idx->ncells; c++) {
			uint64_t w = shmet_seg_exemplar_map_word(c);

			/* Acquire: as in cands_by_page. */
			if (!word_readable(ext, next, w) ||
			    !(atomic_load_explicit(&map[w],
						   memory_order_acquire) &
			      shmet_seg_exemplar_map_bit(c)) ||
			    !page_readable(r, c / PER_PAGE, pages, &hole_end))
				continue;
			if (range_cands(slots, x, c, c + 1, v, n) < 0)
				return -ENOMEM;
		}
	}
	return 0;
}

/* a[0..n) ascending; tmp: as large.  Already sorted (cells in series
 * order): one pass.  Else a radix sort on the key's 11-bit digits up to
 * max's. */
static void
sort_keys(uint64_t *a, uint64_t *tmp, size_t n, uint64_t max)
{
	uint64_t *src = a, *dst = tmp;
	size_t i;

	for (i = 1; i < n && a[i - 1] <= a[i]; i++)
		;
	if (i >= n)
		return;
	for (unsigned shift = 0; shift < 64 && (max >> shift); shift += 11) {
		size_t count[2048] = { 0 }, sum = 0;
		uint64_t *t;

		for (i = 0; i < n; i++)
			count[(src[i] >> shift) & 2047]++;
		for (i = 0; i < 2048; i++) {
			size_t c = count[i];

			count[i] = sum;
			sum += c;
		}
		for (i = 0; i < n; i++)
			dst[count[(src[i] >> shift) & 2047]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof *a);
}

static int
read_all(const struct shmet_reader *r, const struct shmet_index *idx,
	 struct shmet_values *v)
{
	const struct shmet_seg_exemplar *slots = ex_slots(r);
	size_t n = 0, next;
	int rc;

	if (!idx->nex_ranges)
		return 0;
	rc = map_extents(r, shmet_seg_exemplar_map_words(idx->ncells), v,
			 &next);
	if (rc == 0)
		rc = idx->ex_disjoint
			     ? cands_by_page(r, idx, v, v->ex_ext, next, &n)
			     : cands_by_series(r, idx, v, v->ex_ext, next, &n);
	if (rc < 0)
		return rc;
	if (n > 1) {
		if (grow((void **)&v->ex_tmp, &v->cap_ex_tmp, n,
			 sizeof *v->ex_tmp) < 0)
			return -ENOMEM;
		sort_keys(v->ex_cand, v->ex_tmp, n,
			  ex_key(idx->nseries, SHMET_MAX_BOUNDS));
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t si = (uint32_t)(v->ex_cand[i] >> 8);
		uint32_t b = (uint32_t)(v->ex_cand[i] & 255);
		const struct shmet_index_series *s = &idx->series[si];
		struct slot_copy c;

		/* first_cell + b < ncells <= cells_per_block (values.c):
		 * in the region, on a page checked above */
		if (copy_slot(&slots[shmet_seg_exemplar_slot(s->first_cell, b)],
			      &c) &&
		    slot_is_series(&c, s) && keep(v, si, b, &c) < 0)
			return -ENOMEM;
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

int
shmet_priv_values_exemplar_from(const struct shmet_values *v, uint32_t series,
				uint32_t bucket, size_t *at,
				struct shmet_exemplar *out)
{
	uint64_t key = ex_key(series, bucket);
	size_t i = *at;

	if (bucket > SHMET_MAX_BOUNDS)
		return 0;
	if (i > v->nex || (i > 0 && v->ex_key[i - 1] >= key)) {
		size_t lo = 0, hi = v->nex;     /* behind: bisect */

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (v->ex_key[mid] < key)
				lo = mid + 1;
			else
				hi = mid;
		}
		i = lo;
	}
	while (i < v->nex && v->ex_key[i] < key)
		i++;
	*at = i;
	if (i == v->nex || v->ex_key[i] != key)
		return 0;
	*out = v->ex[i];
	return 1;
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
