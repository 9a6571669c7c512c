/*
 * The rules of exemplars, part of the segment's rule book (format.h
 * includes this): which slot holds a bucket's exemplar, which page bit
 * says it may be read, what a valid exemplar label set is (as OpenMetrics
 * and prometheus_client have it) and the checksum both sides compute.
 * Writers (writer/exemplar.c) and readers (lib/values-exemplar.c) apply
 * these and keep no copy of them.
 */
#ifndef SHMETRICS_EXEMPLAR_H
#define SHMETRICS_EXEMPLAR_H

#include "format.h"

/*
 * The exemplar writer's fence after it took the slot's lock (a release
 * fence: no store after it becomes visible before the odd seq; the
 * reader's is shmet_seg_record_read_fence).  GCC's ThreadSanitizer
 * refuses fences, as format.h says: that build stores without it (every
 * field is an atomic, so it reports no race either way).
 */
static inline void
shmet_seg_exemplar_write_fence(void)
{
#ifndef SHMET_SEG_TSAN
	atomic_thread_fence(memory_order_release);
#endif
}

/* The slot of a series' bucket (a counter's only exemplar is bucket 0). */
static inline uint64_t
shmet_seg_exemplar_slot(uint32_t first_cell, uint32_t bucket)
{
	return (uint64_t)first_cell + bucket;
}

/* The page of slot, its word in the exemplar map and its bit there. */
static inline uint64_t
shmet_seg_exemplar_page(uint64_t slot)
{
	return slot / (SHMET_PAGE / SHMET_EXEMPLAR_SIZE);
}

static inline uint64_t
shmet_seg_exemplar_map_word(uint64_t slot)
{
	return shmet_seg_exemplar_page(slot) / 64;
}

static inline uint64_t
shmet_seg_exemplar_map_bit(uint64_t slot)
{
	return UINT64_C(1) << (shmet_seg_exemplar_page(slot) % 64);
}

/* Characters of a valid UTF-8 string: the bytes that start one. */
static inline uint32_t
shmet_seg_utf8_chars(const unsigned char *p, size_t n)
{
	uint32_t chars = 0;

	for (size_t i = 0; i < n; i++)
		chars += (p[i] & 0xc0) != 0x80;
	return chars;
}

/* 1 if p[0..n) is valid UTF-8 (labels.h's rule), else 0. */
static inline int
shmet_seg_utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t len = shmet_seg_utf8_len(p + i, n - i);

		if (len == 0)
			return 0;
		i += len;
	}
	return 1;
}

/*
 * Why an exemplar label pair is refused (0: it is not), for the writer's
 * error and Python's message; *chars grows by its characters.  A name is
 * a label name (format.h; "__" names are reserved), a value valid UTF-8;
 * the whole set at most SHMET_EXEMPLAR_MAX_CHARS characters, which the
 * caller checks after the last pair.
 */
#define SHMET_EXEMPLAR_OK               0
#define SHMET_EXEMPLAR_BAD_NAME         1
#define SHMET_EXEMPLAR_RESERVED_NAME    2
#define SHMET_EXEMPLAR_BAD_VALUE        3
#define SHMET_EXEMPLAR_TOO_LONG         4

static inline int
shmet_seg_exemplar_pair_check(const char *name, size_t name_len,
			      const char *value, size_t value_len,
			      uint32_t *chars)
{
	if (name_len >= 2 && name[0] == '_' && name[1] == '_')
		return SHMET_EXEMPLAR_RESERVED_NAME;
	if (!shmet_seg_label_name_valid(name, name_len))
		return SHMET_EXEMPLAR_BAD_NAME;
	if (value_len > SHMET_MAX_LABEL_VALUE_LEN ||
	    !shmet_seg_utf8_valid((const unsigned char *)value, value_len))
		return SHMET_EXEMPLAR_BAD_VALUE;
	*chars += (uint32_t)name_len +
		  shmet_seg_utf8_chars((const unsigned char *)value, value_len);
	return SHMET_EXEMPLAR_OK;
}

/*
 * 1 if blob[0..len) holds exactly count valid pairs (the blob codec,
 * labels.h) of at most SHMET_EXEMPLAR_MAX_CHARS characters in all: what
 * a reader checks before it shows a slot's labels.
 */
static inline int
shmet_seg_exemplar_blob_valid(const unsigned char *blob, uint32_t len,
			      uint32_t count)
{
	const unsigned char *p = blob, *end = blob + len;
	uint32_t chars = 0;

	if (len > SHMET_EXEMPLAR_BLOB || count > SHMET_EXEMPLAR_MAX_CHARS)
		return 0;
	for (uint32_t i = 0; i < count; i++) {
		const unsigned char *n, *v;
		uint32_t nl, vl;

		if (!shmet_seg_blob_next(&p, end, &n, &nl) ||
		    !shmet_seg_blob_next(&p, end, &v, &vl) ||
		    shmet_seg_exemplar_pair_check((const char *)n, nl,
						  (const char *)v, vl,
						  &chars) != SHMET_EXEMPLAR_OK)
			return 0;
	}
	return p == end && chars <= SHMET_EXEMPLAR_MAX_CHARS;
}

/*
 * The slot's checksum over what it says: a writer stores it last (inside
 * the lock), a reader recomputes it from its copy.  The sequence lock
 * alone already hides a write in progress; this also catches one writer
 * that resumed after its lock was taken over (layout.h, busy_ns) and
 * mixed its words into the next writer's.
 */
static inline uint64_t
shmet_seg_exemplar_sum(uint32_t series, uint32_t gen, uint32_t label_count,
		       uint32_t blob_len, uint64_t value, uint64_t ts_ns,
		       const void *blob)
{
	uint64_t h = shmet_seg_mix(((uint64_t)series << 32 | gen) ^
				   SHMET_HASH_K1);

	h = shmet_seg_mix(h ^ ((uint64_t)label_count << 32 | blob_len));
	h = shmet_seg_mix(h ^ value);
	h = shmet_seg_mix(h ^ ts_ns);
	return shmet_seg_mix(shmet_seg_hash_bytes(h, blob, blob_len));
}

#endif /* SHMETRICS_EXEMPLAR_H */
