/*
 * shmetrics format rules: every rule that writers and readers must agree
 * on, defined once.  layout.h says where things are; this file says what
 * is valid and how values are derived:
 *
 *   geometry       every offset and size from the capacities
 *   cells          cells per series for a family type
 *   label blobs    the {uint16 length, bytes} codec
 *   names          metric, label and unit names; reserved names
 *   exposed names  the sample names a family puts on a page, for the
 *                  collision check (both at registration and in readers)
 *   bounds         histogram bucket bounds
 *   gauge modes    which modes need liveness, which stamp writes
 *   failures       the names of SHMET_FAIL_* reasons
 *   hash           family and series placement in the indexes
 *   exemplars      slots, the map, label checks, the checksum (exemplar.h)
 *
 * Writers (writer/) and readers (lib/) include this
 * file; neither keeps a copy of any of these rules.  Changing a rule that
 * decides what a segment holds means a new SHMET_LAYOUT_VERSION.
 *
 * Every function here is pure: it reads only its arguments, takes lengths
 * explicitly (readers hold strings that are not NUL-terminated) and never
 * trusts a length it did not check.
 */
#ifndef SHMETRICS_FORMAT_H
#define SHMETRICS_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "layout.h"

/*
 * Reading a series record under its incarnation (layout.h, gen) is a
 * sequence lock's read: gen, the fields, this fence, gen again; the fence
 * keeps the fields' loads before the second load of gen.  Writers and
 * readers both use it.  GCC's ThreadSanitizer refuses fences (and models
 * none): that build reads without it.
 */
#if defined(__SANITIZE_THREAD__)
#define SHMET_SEG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHMET_SEG_TSAN 1
#endif
#endif

static inline void
shmet_seg_record_read_fence(void)
{
#ifndef SHMET_SEG_TSAN
	atomic_thread_fence(memory_order_acquire);
#endif
}

/* ---------------------------------------------------------------- */
/* Geometry                                                         */

static inline uint64_t
shmet_seg_align(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

static inline uint32_t
shmet_seg_pow2_at_least(uint64_t v)
{
	uint64_t p = 16;

	while (p < v)
		p <<= 1;
	return (uint32_t)p;
}

/* 64-bit words of one writer slot's registrant bitmap (layout.h). */
static inline uint64_t
shmet_seg_registrant_words(uint32_t families)
{
	return ((uint64_t)families + 63u) / 64u;
}

/*
 * Fill h's capacities, index sizes, region offsets and total size from the
 * six capacities (cpus: per-CPU value blocks).  -EINVAL (as -22) if a capacity is out of range.  A
 * reader validates a header by recomputing it: every derived field must
 * equal what this function gives.
 */
/*
 * The exemplar map's words: one bit per page of the exemplar region,
 * which holds one slot per cell index (layout.h, "Exemplars").
 */
static inline uint64_t
shmet_seg_exemplar_map_words(uint32_t cells)
{
	uint64_t per_page = SHMET_PAGE / SHMET_EXEMPLAR_SIZE;
	uint64_t pages = ((uint64_t)cells + per_page - 1) / per_page;

	return (pages + 63) / 64;
}

static inline int
shmet_seg_geometry(struct shmet_seg_header *h, uint32_t families,
		   uint32_t series, uint32_t writers, uint32_t cells,
		   uint32_t strings, uint32_t cpus)
{
	uint64_t off;

	if (families < 1 || families > (1u << 20) || series < 1 ||
	    series > (1u << 26) || writers < 1 || writers > (1u << 16) ||
	    cells < 16 || cells > (1u << 28) || strings < 4096 ||
	    strings > (1u << 31) || cpus < 1 || cpus > SHMET_MAX_CPU_BLOCKS)
		return -22;
	h->max_families = families;
	h->family_index_slots = shmet_seg_pow2_at_least(2ull * families);
	h->max_series = series;
	h->series_index_slots = shmet_seg_pow2_at_least(2ull * series);
	h->max_writers = writers;
	h->cells_per_block = cells;
	h->string_bytes = strings;
	h->cpu_blocks = cpus;

	off = SHMET_HEADER_SIZE;
	h->writers_off = off;
	off += (uint64_t)writers * sizeof(struct shmet_seg_writer);
	h->families_off = off;
	off += (uint64_t)families * sizeof(struct shmet_seg_family);
	h->family_index_off = off;
	off = shmet_seg_align(off + 4ull * h->family_index_slots,
			      SHMET_CACHELINE);
	h->registrants_off = off;
	off += 8ull * writers * shmet_seg_registrant_words(families);
	h->series_off = off;
	off += (uint64_t)series * sizeof(struct shmet_seg_series);
	h->series_index_off = off;
	off = shmet_seg_align(off + 4ull * h->series_index_slots,
			      SHMET_CACHELINE);
	h->strings_off = off;
	off = shmet_seg_align(off + strings, SHMET_CACHELINE);
	h->exemplar_map_off = off;
	off += 8ull * shmet_seg_exemplar_map_words(cells);
	h->values_off = shmet_seg_align(off, SHMET_PAGE);
	h->block_stride = shmet_seg_align(8ull * cells, SHMET_PAGE);
	h->cpu_off = h->values_off +
		     (writers + SHMET_EXTRA_BLOCKS) * h->block_stride;
	h->exemplars_off = h->cpu_off + (uint64_t)cpus * h->block_stride;
	h->total_size = h->exemplars_off +
			(uint64_t)cells * SHMET_EXEMPLAR_SIZE;
	return 0;
}

/* Block numbers after the writers' own (layout.h, "Value blocks"). */
static inline uint32_t
shmet_seg_fallback_block(const struct shmet_seg_header *h)
{
	return h->max_writers;
}

static inline uint32_t
shmet_seg_retired_block(const struct shmet_seg_header *h)
{
	return h->max_writers + 1u;
}

/* CPU cpu's block: block number max_writers + 2 + cpu, at cpu_off. */
static inline uint32_t
shmet_seg_cpu_block(const struct shmet_seg_header *h, uint32_t cpu)
{
	return h->max_writers + SHMET_EXTRA_BLOCKS + cpu;
}

/* Every value block: writers', fallback, retired, then the CPUs'. */
static inline uint32_t
shmet_seg_blocks(const struct shmet_seg_header *h)
{
	return h->max_writers + SHMET_EXTRA_BLOCKS + h->cpu_blocks;
}

/*
 * The first derived header field that differs from the geometry of h's
 * capacities, by name, or NULL if all agree.  *got and *want are its
 * values.  "capacities" if the capacities themselves are out of range.
 */
static inline const char *
shmet_seg_geometry_mismatch(const struct shmet_seg_header *h, uint64_t *got,
			    uint64_t *want)
{
	struct shmet_seg_header g;

	memset((void *)&g, 0, sizeof g);
	*got = *want = 0;
	if (shmet_seg_geometry(&g, h->max_families, h->max_series,
			       h->max_writers, h->cells_per_block,
			       h->string_bytes, h->cpu_blocks) < 0)
		return "capacities";
#define SHMET_SEG_CHECK(field)                                                \
	do {                                                                  \
		if ((uint64_t)h->field != (uint64_t)g.field) {                \
			*got = h->field;                                      \
			*want = g.field;                                      \
			return #field;                                        \
		}                                                             \
	} while (0)
	SHMET_SEG_CHECK(family_index_slots);
	SHMET_SEG_CHECK(series_index_slots);
	SHMET_SEG_CHECK(writers_off);
	SHMET_SEG_CHECK(families_off);
	SHMET_SEG_CHECK(family_index_off);
	SHMET_SEG_CHECK(registrants_off);
	SHMET_SEG_CHECK(series_off);
	SHMET_SEG_CHECK(series_index_off);
	SHMET_SEG_CHECK(strings_off);
	SHMET_SEG_CHECK(exemplar_map_off);
	SHMET_SEG_CHECK(values_off);
	SHMET_SEG_CHECK(block_stride);
	SHMET_SEG_CHECK(cpu_off);
	SHMET_SEG_CHECK(exemplars_off);
	SHMET_SEG_CHECK(total_size);
#undef SHMET_SEG_CHECK
	return NULL;
}

/* ---------------------------------------------------------------- */
/* Types and cells                                                  */

static inline int
shmet_seg_type_valid(uint32_t type)
{
	return type >= SHMET_TYPE_COUNTER && type <= SHMET_TYPE_HISTOGRAM;
}

/* Value cells per series (see layout.h "Cells"). */
static inline uint32_t
shmet_seg_cells_for(uint32_t type, uint32_t bound_count)
{
	return type == SHMET_TYPE_HISTOGRAM ? bound_count + 2 : 2;
}

/*
 * Gauge chunks (layout 6, layout.h "Cells"): a gauge series' cells come
 * from the current gauge chunk, a run of shmet_seg_gauge_chunk_cells()
 * cells starting on a cache line, carved from cells_used when the chunk
 * is full; every other series' cells come from cells_used itself.
 * Writer blocks hold only gauges (unless counts_here), so a scrape reads
 * each writer block's gauges from a few dense runs: a line holds 4
 * gauges, where among the other series' cells it held about one, and a
 * block's data pages (lib/values.c, SEEK_DATA) are a few extents, not one
 * per chunk of a page.  The header's gauge_chunk cursor packs the chunk's
 * next free cell (low 32 bits) and its end (high 32); 0: no chunk yet.
 */
#define SHMET_GAUGE_CHUNK_CELLS 8192u   /* 64 KiB, 4,096 gauges */
#define SHMET_GAUGE_CHUNK_ALIGN 8u      /* cells: a cache line */

/* A chunk's cells in a segment of cells_per_block cells: at most a 64th
 * of the segment (the unused rest of the last chunk is lost to other
 * series), in whole cache lines. */
static inline uint32_t
shmet_seg_gauge_chunk_cells(uint32_t cells_per_block)
{
	uint32_t c = cells_per_block / 64u / SHMET_GAUGE_CHUNK_ALIGN *
		     SHMET_GAUGE_CHUNK_ALIGN;

	return c < SHMET_GAUGE_CHUNK_ALIGN   ? SHMET_GAUGE_CHUNK_ALIGN
	       : c > SHMET_GAUGE_CHUNK_CELLS ? SHMET_GAUGE_CHUNK_CELLS
					     : c;
}

static inline int
shmet_seg_cells_chunked(uint32_t type)
{
	return type == SHMET_TYPE_GAUGE;
}

static inline uint64_t
shmet_seg_gauge_chunk(uint32_t next, uint32_t end)
{
	return (uint64_t)end << 32 | next;
}

static inline uint32_t
shmet_seg_gauge_chunk_next(uint64_t chunk)
{
	return (uint32_t)chunk;
}

static inline uint32_t
shmet_seg_gauge_chunk_end(uint64_t chunk)
{
	return (uint32_t)(chunk >> 32);
}

/* ---------------------------------------------------------------- */
/* Gauge modes                                                      */

static inline int
shmet_seg_gauge_mode_valid(uint32_t mode)
{
	return mode >= SHMET_GAUGE_ALL && mode <= SHMET_GAUGE_LIVEMOSTRECENT;
}

/* The mode a family gets when it asks for 0. */
#define SHMET_GAUGE_DEFAULT SHMET_GAUGE_LIVESUM

/* Only writers that are alive now count. */
static inline int
shmet_seg_gauge_mode_live(uint32_t mode)
{
	return mode == SHMET_GAUGE_LIVEALL || mode == SHMET_GAUGE_LIVESUM ||
	       mode == SHMET_GAUGE_LIVEMOSTRECENT;
}

/* Writes store a CLOCK_MONOTONIC stamp (cell [1]) to order writers. */
static inline int
shmet_seg_gauge_mode_timed(uint32_t mode)
{
	return mode == SHMET_GAUGE_MOSTRECENT ||
	       mode == SHMET_GAUGE_LIVEMOSTRECENT;
}

/*
 * A dead writer's value keeps counting (non-live modes other than all):
 * at takeover it is folded into the retired block (writer/slot.c,
 * "Takeover"), so what a scrape shows never depends on when a slot is
 * reused.
 */
static inline int
shmet_seg_gauge_mode_retires(uint32_t mode)
{
	return mode == SHMET_GAUGE_SUM || mode == SHMET_GAUGE_MAX ||
	       mode == SHMET_GAUGE_MIN || mode == SHMET_GAUGE_MOSTRECENT;
}

/* One sample per writer, with a pid label. */
static inline int
shmet_seg_gauge_mode_per_writer(uint32_t mode)
{
	return mode == SHMET_GAUGE_ALL || mode == SHMET_GAUGE_LIVEALL;
}

/* The value is a sum over writers (0 when nobody holds it). */
static inline int
shmet_seg_gauge_mode_sum(uint32_t mode)
{
	return mode == SHMET_GAUGE_SUM || mode == SHMET_GAUGE_LIVESUM;
}

static inline const char *
shmet_seg_gauge_mode_name(uint32_t mode)
{
	static const char *const names[] = {
		"", "all", "liveall", "sum", "livesum", "max", "min",
		"mostrecent", "livemostrecent",
	};

	return mode <= SHMET_GAUGE_LIVEMOSTRECENT ? names[mode] : "";
}

/* ---------------------------------------------------------------- */
/* Names                                                            */

/* [a-zA-Z_:][a-zA-Z0-9_:]*, 1 to SHMET_MAX_NAME_LEN bytes. */
static inline int
shmet_seg_metric_name_valid(const char *s, size_t len)
{
	if (!s || len == 0 || len > SHMET_MAX_NAME_LEN)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 c == '_' || c == ':' || (i > 0 && c >= '0' && c <= '9');

		if (!ok)
			return 0;
	}
	return 1;
}

/* [a-zA-Z_][a-zA-Z0-9_]*, 1 to SHMET_MAX_NAME_LEN bytes, no "__" start. */
static inline int
shmet_seg_label_name_valid(const char *s, size_t len)
{
	if (!s || len == 0 || len > SHMET_MAX_NAME_LEN ||
	    (len >= 2 && s[0] == '_' && s[1] == '_'))
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 c == '_' || (i > 0 && c >= '0' && c <= '9');

		if (!ok)
			return 0;
	}
	return 1;
}

static inline int
shmet_seg_str_is(const char *s, size_t len, const char *lit)
{
	return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

/*
 * Label names a family of this type and gauge mode may not use, beyond
 * the "__" prefix: "quantile" (summaries) everywhere, "le" on histograms
 * and "pid" on gauges of the per-writer modes (the exposition adds them).
 */
static inline int
shmet_seg_label_name_reserved(uint32_t type, uint32_t gauge_mode,
			      const char *s, size_t len)
{
	return shmet_seg_str_is(s, len, "quantile") ||
	       (type == SHMET_TYPE_HISTOGRAM && shmet_seg_str_is(s, len, "le")) ||
	       (type == SHMET_TYPE_GAUGE &&
		(gauge_mode == SHMET_GAUGE_ALL ||
		 gauge_mode == SHMET_GAUGE_LIVEALL) &&
		shmet_seg_str_is(s, len, "pid"));
}

static inline int
shmet_seg_ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

/*
 * A unit is a label-name-like word the metric name ends with: "_<unit>";
 * for a counter named "..._total", "_<unit>_total" (OpenMetrics: the
 * family name, without _total, ends with the unit).  An empty unit is
 * always valid.
 */
static inline int
shmet_seg_unit_valid(const char *name, size_t name_len, const char *unit,
		     size_t unit_len, uint32_t type)
{
	size_t end = name_len;

	if (unit_len == 0)
		return 1;
	if (!shmet_seg_label_name_valid(unit, unit_len))
		return 0;
	/* A counter's family name is its name without _total: the unit is
	 * a suffix of that (x_seconds_total: seconds), never "total". */
	if (type == SHMET_TYPE_COUNTER &&
	    shmet_seg_ends_with(name, name_len, "_total"))
		end = name_len - 6;
	return end >= unit_len + 1 && name[end - unit_len - 1] == '_' &&
	       memcmp(name + end - unit_len, unit, unit_len) == 0;
}

/*
 * Name prefixes reserved for the exporter's own families (process_* as
 * every Prometheus client library exposes them, shmetrics_* for the
 * exporter's figures): an application family there would put one name on
 * the page twice.
 */
static const char *const shmet_seg_reserved_prefixes[] = {
	"process_", "shmetrics_",
};
#define SHMET_SEG_RESERVED_PREFIXES 2u

static inline const char *
shmet_seg_name_reserved(const char *s, size_t len)
{
	for (uint32_t i = 0; i < SHMET_SEG_RESERVED_PREFIXES; i++) {
		const char *p = shmet_seg_reserved_prefixes[i];
		size_t n = strlen(p);

		if (len >= n && memcmp(s, p, n) == 0)
			return p;
	}
	return NULL;
}

/* ---------------------------------------------------------------- */
/* Exposed names                                                    */

/*
 * The names a family puts on a page: the family name of its TYPE line
 * and every sample name (OpenMetrics and text 0.0.4 together).  Two
 * families may not share any of them, or strict parsers reject the whole
 * page.  A counter's family name is its name without "_total"; its
 * samples are <base>_total and <base>_created.  A histogram h exposes h,
 * h_bucket, h_count, h_sum and h_created; a gauge only its name.
 *
 * Each exposed name is a base (a prefix of the registered name) and a
 * suffix from the list below.
 */
#define SHMET_SEG_MAX_EXPOSED 5u

struct shmet_seg_exposed {
	uint32_t count;
	size_t base_len;                /* bytes of the name that are the base */
	const char *suffix[SHMET_SEG_MAX_EXPOSED];
};

static inline size_t
shmet_seg_family_base_len(uint32_t type, const char *name, size_t len)
{
	if (type == SHMET_TYPE_COUNTER && shmet_seg_ends_with(name, len, "_total"))
		return len - 6;
	return len;
}

static inline void
shmet_seg_exposed_names(uint32_t type, const char *name, size_t len,
			struct shmet_seg_exposed *out)
{
	static const char *const counter[] = { "", "_total", "_created" };
	static const char *const gauge[] = { "" };
	static const char *const histogram[] = {
		"", "_bucket", "_count", "_sum", "_created"
	};
	const char *const *list = gauge;
	uint32_t n = 1;

	if (type == SHMET_TYPE_COUNTER) {
		list = counter;
		n = 3;
	} else if (type == SHMET_TYPE_HISTOGRAM) {
		list = histogram;
		n = 5;
	}
	out->count = n;
	out->base_len = shmet_seg_family_base_len(type, name, len);
	for (uint32_t i = 0; i < n; i++)
		out->suffix[i] = list[i];
}

/*
 * For a name that may be on a page, the registered names of the families
 * that could expose it, by type: at most SHMET_SEG_MAX_OWNERS candidates
 * {type, registered name = prefix of `name` of prefix_len bytes + add}.
 * Registration looks each one up to find a collision in a few probes.
 */
#define SHMET_SEG_MAX_OWNERS 8u

struct shmet_seg_owner {
	uint32_t type;
	size_t prefix_len;
	const char *add;                /* "" or "_total" */
};

static inline uint32_t
shmet_seg_possible_owners(const char *name, size_t len,
			  struct shmet_seg_owner *out)
{
	static const char *const hist_suffixes[] = {
		"_bucket", "_count", "_sum", "_created"
	};
	uint32_t n = 0;

	/* the family itself: a gauge, a histogram or a counter base */
	out[n++] = (struct shmet_seg_owner){ SHMET_TYPE_GAUGE, len, "" };
	out[n++] = (struct shmet_seg_owner){ SHMET_TYPE_HISTOGRAM, len, "" };
	out[n++] = (struct shmet_seg_owner){ SHMET_TYPE_COUNTER, len, "" };
	out[n++] = (struct shmet_seg_owner){ SHMET_TYPE_COUNTER, len,
					     "_total" };
	/* <base>_total or <base>_created of a counter */
	if (shmet_seg_ends_with(name, len, "_total")) {
		out[n++] = (struct shmet_seg_owner){ SHMET_TYPE_COUNTER,
						     len - 6, "" };
	} else if (shmet_seg_ends_with(name, len, "_created")) {
		out[n++] = (struct shmet_seg_owner){ SHMET_TYPE_COUNTER,
						     len - 8, "" };
		out[n++] = (struct shmet_seg_owner){ SHMET_TYPE_COUNTER,
						     len - 8, "_total" };
	}
	/* a histogram's samples */
	for (uint32_t i = 0; i < 4; i++) {
		if (shmet_seg_ends_with(name, len, hist_suffixes[i])) {
			out[n++] = (struct shmet_seg_owner){
				SHMET_TYPE_HISTOGRAM,
				len - strlen(hist_suffixes[i]), ""
			};
			break;
		}
	}
	return n;
}

/* ---------------------------------------------------------------- */
/* Histogram bounds                                                 */

/* 1 to SHMET_MAX_BOUNDS bounds, finite, strictly increasing.  Returns the
 * index of the first bad bound, or -1 if all are valid (count: -2). */
static inline int
shmet_seg_bounds_check(const double *b, uint32_t n)
{
	if (n == 0 || n > SHMET_MAX_BOUNDS || !b)
		return -2;
	for (uint32_t i = 0; i < n; i++)
		if (!(b[i] - b[i] == 0.0) ||    /* NaN or infinite */
		    (i > 0 && !(b[i] > b[i - 1])))
			return (int)i;
	return -1;
}

/* Label blobs and label values as UTF-8: labels.h. */
#include "labels.h"

/* ---------------------------------------------------------------- */
/* Registration failure reasons                                     */

static inline const char *
shmet_seg_failure_name(uint32_t reason)
{
	static const char *const names[SHMET_FAIL_COUNT] = {
		"invalid_name",   "invalid_labels", "label_value",
		"invalid_buckets", "shape_mismatch", "families_full",
		"series_full",    "cells_full",     "strings_full",
		"cardinality_limit", "no_memory",   "writers_full",
	};

	return reason < SHMET_FAIL_COUNT ? names[reason] : "unknown";
}

/* ---------------------------------------------------------------- */
/* Hash: where families and series sit in the indexes.  Every       */
/* process must compute the same value.                             */

#define SHMET_HASH_K1 UINT64_C(0x9e3779b97f4a7c15)
#define SHMET_HASH_K2 UINT64_C(0xbf58476d1ce4e5b9)
#define SHMET_HASH_K3 UINT64_C(0x94d049bb133111eb)

static inline uint64_t
shmet_seg_mix(uint64_t h)
{
	h ^= h >> 30;
	h *= SHMET_HASH_K2;
	h ^= h >> 27;
	h *= SHMET_HASH_K3;
	h ^= h >> 31;
	return h;
}

/* Bytes b[0..8) as a little-endian uint64 (one load on such hosts). */
static inline uint64_t
shmet_seg_load_le64(const unsigned char *b)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint64_t w;

	memcpy(&w, b, sizeof w);
	return w;
#else
	uint64_t w = 0;

	for (unsigned i = 0; i < 8; i++)
		w |= (uint64_t)b[i] << (8 * i);
	return w;
#endif
}

/*
 * Continue hash h over len bytes at p: one multiply per 8 bytes; callers
 * finish with shmet_seg_mix, which does the avalanche once.
 */
static inline uint64_t
shmet_seg_hash_bytes(uint64_t h, const void *p, size_t len)
{
	const unsigned char *b = (const unsigned char *)p;

	h ^= (uint64_t)len * SHMET_HASH_K1;
	while (len >= 8) {
		uint64_t w = shmet_seg_load_le64(b);

		h = (h ^ w) * SHMET_HASH_K2;
		h = (h << 23) | (h >> 41);
		b += 8;
		len -= 8;
	}
	if (len > 0) {
		uint64_t w = 0;

		for (unsigned i = 0; i < len; i++)
			w |= (uint64_t)b[i] << (8 * i);
		h = (h ^ w) * SHMET_HASH_K3;
		h = (h << 23) | (h >> 41);
	}
	return h;
}

static inline uint64_t
shmet_seg_name_hash(const char *name, size_t len)
{
	return shmet_seg_mix(shmet_seg_hash_bytes(SHMET_HASH_K3, name, len));
}

/* Series hash: family index, then each label value in order, then mix. */
static inline uint64_t
shmet_seg_series_hash_start(uint32_t family)
{
	return shmet_seg_mix((uint64_t)family + SHMET_HASH_K1);
}

/* The rules of what values mean: cell roles, gauge folding, page names,
 * record shape. */
#include "rules.h"

/* Exemplar slots, labels and checksum. */
#include "exemplar.h"

#endif /* SHMETRICS_FORMAT_H */
