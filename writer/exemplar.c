/*
 * shmetrics writer: exemplars (layout.h, "Exemplars"; docs/DESIGN.md).
 * An increment or an observation with an exemplar counts through the
 * inline hot path as any other, then stores the exemplar here, out of
 * line: in the exemplar slot of its series' cell index (a counter's
 * first cell, a histogram's bucket), under the slot's sequence lock, so
 * that a reader never shows one writer's labels with another's value.
 *
 * The handle names its series record through its incarnation pointer
 * (gen); the segment that holds that record is found among the process's
 * attached segments (the fork list), under the fork list's lock, which
 * close takes too: a segment is never unmapped under a write here.
 *
 * Steps of a write, and what a kill after each leaves:
 *   1. the slot's page is reserved (fallocate) and its map bit set:
 *      a reserved page, readable, whose slots read "never written"
 *   2. the lock is taken (busy_ns stamped, then seq odd): readers skip
 *      the slot; the next writer takes the lock over once busy_ns is
 *      SHMET_REUSE_NS old
 *   3. the fields and the checksum are stored: the same
 *   4. seq is made even: the exemplar is shown
 * Test points after each: exemplar.reserved (a page's first write only),
 * exemplar.locked, exemplar.stored, exemplar.shown; tests/contract/
 * exemplar-points.c kills and cancels at each.  A cancel cannot stop a
 * write inside (cancellation is off): it completes, and the thread ends
 * at its next cancellation point.  The count of an exemplar's increment
 * or observation is made before step 1, whatever the exemplar's fate.
 */
#include "writer-private.h"

/* The exemplar region, mapped on first use (address space only). */
static unsigned char *
shmet_impl_exemplars(struct shmet_segment *seg)
{
	size_t len = (size_t)seg->hdr->cells_per_block * SHMET_EXEMPLAR_SIZE;
	void *p;

	if (seg->exemplars)
		return seg->exemplars;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
		 seg->fd, (off_t)seg->hdr->exemplars_off);
	if (p == MAP_FAILED)
		return NULL;
	seg->exemplars = (unsigned char *)p;
	return seg->exemplars;
}

/* Close's part (called after the segment left the fork list). */
SHMET_W void
shmet_impl_exemplars_close(struct shmet_segment *seg)
{
	if (seg->exemplars)
		munmap(seg->exemplars, (size_t)seg->hdr->cells_per_block *
					       SHMET_EXEMPLAR_SIZE);
	seg->exemplars = NULL;
}

/* The attached segment whose series table holds gen, or NULL (a failed
 * handle's scratch incarnation, a closed segment's).  Fork list locked. */
static struct shmet_segment *
shmet_impl_exemplar_seg(const SHMET_ATOMIC(uint32_t) *gen, uint32_t *id)
{
	const unsigned char *rec = (const unsigned char *)gen -
				   offsetof(struct shmet_seg_series, gen);

	for (struct shmet_segment *s = shmet_impl_forklist.head; s;
	     s = s->next) {
		const unsigned char *t;
		uint64_t off;

		if (!s->attached)
			continue;
		t = (const unsigned char *)shmet_impl_series_table(s);
		if (rec < t)
			continue;
		off = (uint64_t)(rec - t);
		if (off % sizeof(struct shmet_seg_series) == 0 &&
		    off / sizeof(struct shmet_seg_series) < s->hdr->max_series) {
			*id = (uint32_t)(off / sizeof(struct shmet_seg_series));
			return s;
		}
	}
	return NULL;
}

/*
 * Reserve the page of slot before its first write, then set its bit.
 * Release: a reader that sees the bit (acquire) reads a page that exists;
 * two writers may both fallocate the page, which is harmless.
 */
static int
shmet_impl_exemplar_reserve(struct shmet_segment *seg, uint64_t slot)
{
	SHMET_ATOMIC(uint64_t) *map =
		(SHMET_ATOMIC(uint64_t) *)(void *)(seg->base +
						    seg->hdr->exemplar_map_off);
	uint64_t w = shmet_seg_exemplar_map_word(slot);
	uint64_t bit = shmet_seg_exemplar_map_bit(slot);

	/* Acquire: pairs with the release below, by whoever set it. */
	if (SHMET_AT(load_explicit)(&map[w], SHMET_MO(acquire)) & bit)
		return 0;
	if (shmet_impl_fallocate(seg->fd,
				 seg->hdr->exemplars_off +
					 shmet_seg_exemplar_page(slot) *
						 SHMET_PAGE,
				 SHMET_PAGE) != 0)
		return -ENOMEM;
	SHMET_AT(fetch_or_explicit)(&map[w], bit, SHMET_MO(release));
	SHMET_POINT("exemplar.reserved");
	return 0;
}

/*
 * Take the slot's lock: seq even -> odd by CAS.  A lock held odd for
 * SHMET_REUSE_NS (its writer died inside, or a process stopped there) is
 * taken over by moving seq to the next odd value, so that the old
 * holder's unlock (a CAS from its own value) fails.  *held: the odd
 * value we hold.  -EBUSY if another writer is in it now: that writer's
 * exemplar is as recent as ours, and ours is dropped.
 *
 * busy_ns is what makes a lock look held or abandoned, so it is moved to
 * now before the seq CAS that takes the lock, never after: a writer that
 * took the lock never shows an old busy_ns to the next one.  A takeover
 * claims it by a CAS from the old value it judged: of two takers (or a
 * taker and a writer that stamped it meanwhile) only one goes on.  Before
 * this, the takeover stamped busy_ns after its seq CAS, and a writer
 * arriving in between took the lock over again from a live holder
 * (tests/contract/exemplar-points.c, "takeover stopped inside").
 */
static int
shmet_impl_exemplar_lock(struct shmet_seg_exemplar *x, uint32_t *held)
{
	uint64_t now = shmet_impl_clock_ns(CLOCK_MONOTONIC);
	/* Acquire: pairs with the release CAS that made seq odd, so that
	 * busy_ns below is that holder's stamp or later, never the one
	 * before it (on a weakly ordered CPU a relaxed pair could show the
	 * new seq with the old stamp).  The CAS below decides the rest. */
	uint32_t s = SHMET_AT(load_explicit)(&x->seq, SHMET_MO(acquire));

	if (s & 1u) {
		/* Relaxed: ordered by the acquire above; a later stamp
		 * than the holder's only delays a takeover. */
		uint64_t busy = SHMET_AT(load_explicit)(&x->busy_ns,
							SHMET_MO(relaxed));

		if (now < busy + SHMET_REUSE_NS)
			return -EBUSY;
		/* Claim the takeover: busy_ns young again before seq moves.
		 * Relaxed: the release CAS on seq below publishes it. */
		if (!SHMET_AT(compare_exchange_strong_explicit)(
			    &x->busy_ns, &busy, now, SHMET_MO(relaxed),
			    SHMET_MO(relaxed)))
			return -EBUSY;
	} else {
		/* Stamped before the CAS, so a lock never looks old to a
		 * takeover while its holder is between CAS and stamp.
		 * Relaxed: as above. */
		SHMET_AT(store_explicit)(&x->busy_ns, now, SHMET_MO(relaxed));
	}
	/* Release CAS: the stamp above is visible with the odd seq to the
	 * next writer's acquire load; the release fence after it orders the
	 * data stores after the odd seq (Boehm's seqlock writer).  It fails
	 * if the holder we judged dead unlocked meanwhile (it was stopped),
	 * or another writer locked: either is as recent as ours. */
	if (!SHMET_AT(compare_exchange_strong_explicit)(
		    &x->seq, &s, s + ((s & 1u) ? 2u : 1u), SHMET_MO(release),
		    SHMET_MO(relaxed)))
		return -EBUSY;
	*held = s + ((s & 1u) ? 2u : 1u);
	SHMET_POINT("exemplar.locked");
	/* Release fence: no store below becomes visible before the odd seq
	 * to a reader that fences acquire after reading it (values-
	 * exemplar.c): such a reader then sees seq moved and drops its copy. */
	shmet_seg_exemplar_write_fence();
	return 0;
}

/* The exemplar's labels as one blob; its length, or < 0 (invalid). */
static int
shmet_impl_exemplar_blob(struct shmet_segment *seg, uint32_t count,
			 const char *const *names, const char *const *values,
			 uint64_t *words)
{
	unsigned char *dst = (unsigned char *)words;
	uint32_t chars = 0, len = 0;

	memset(words, 0, SHMET_EXEMPLAR_BLOB);
	if (count > SHMET_EXEMPLAR_MAX_CHARS || (count && (!names || !values)))
		return -EINVAL;
	for (uint32_t i = 0; i < count; i++) {
		const char *s[2] = { names[i], values[i] };
		size_t l[2];
		int why;

		if (!s[0] || !s[1])
			return -EINVAL;
		l[0] = strlen(s[0]);
		l[1] = strlen(s[1]);
		why = shmet_seg_exemplar_pair_check(s[0], l[0], s[1], l[1],
						    &chars);
		if (why != SHMET_EXEMPLAR_OK || chars > SHMET_EXEMPLAR_MAX_CHARS)
			return shmet_impl_fail(
				seg, SHMET_IMPL_NO_REASON, -EINVAL,
				"exemplar label %s: %s", s[0],
				why == SHMET_EXEMPLAR_BAD_NAME ? "invalid name"
				: why == SHMET_EXEMPLAR_RESERVED_NAME
					? "reserved name"
				: why == SHMET_EXEMPLAR_BAD_VALUE
					? "value is not UTF-8"
					: "labels exceed 128 characters");
		/* 128 characters of at most 4 bytes plus 4 bytes of lengths
		 * per pair stay below SHMET_EXEMPLAR_BLOB: never cut. */
		shmet_seg_blob_write(dst + len, 2, s, l);
		len += shmet_seg_blob_size(2, l);
	}
	return (int)len;
}

/* Store the exemplar into slot, under its lock. */
static int
shmet_impl_exemplar_store(struct shmet_seg_exemplar *x, uint32_t id,
			  uint32_t gen, uint32_t count, uint32_t len,
			  double value, const uint64_t *blob)
{
	uint64_t vbits = shmet_impl_dbits(value);
	uint64_t ts = shmet_impl_clock_ns(CLOCK_REALTIME);
	uint32_t held;

	if (shmet_impl_exemplar_lock(x, &held) < 0)
		return -EBUSY;
	/* Relaxed, all: inside the lock (the fence above, the release
	 * CAS below); atomics only so that a racing reader's loads are
	 * defined. */
	SHMET_AT(store_explicit)(&x->series, id + 1, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&x->gen, gen, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&x->label_count, count, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&x->blob_len, len, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&x->value, vbits, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&x->ts_ns, ts, SHMET_MO(relaxed));
	for (uint32_t i = 0; i < (len + 7) / 8; i++)
		SHMET_AT(store_explicit)(&x->blob[i], blob[i],
					 SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&x->sum,
				 shmet_seg_exemplar_sum(id + 1, gen, count, len,
							vbits, ts, blob),
				 SHMET_MO(relaxed));
	SHMET_POINT("exemplar.stored");
	/* Release: every store above is visible to a reader that loads the
	 * even seq with acquire.  A CAS, not a store: if our lock was taken
	 * over (we were stopped for SHMET_REUSE_NS), the new holder's unlock
	 * publishes, not ours. */
	SHMET_AT(compare_exchange_strong_explicit)(&x->seq, &held, held + 1,
						   SHMET_MO(release),
						   SHMET_MO(relaxed));
	SHMET_POINT("exemplar.shown");
	return 0;
}

/*
 * The exemplar of the series behind gen (which the handle resolved as
 * expect), for its bucket: found, checked, stored.  0 or -errno.
 */
static int
shmet_impl_exemplar(const SHMET_ATOMIC(uint32_t) *gen, uint32_t expect,
		    uint32_t bucket, double value, uint32_t count,
		    const char *const *names, const char *const *values)
{
	uint64_t blob[SHMET_EXEMPLAR_BLOB / 8];
	struct shmet_segment *seg;
	struct shmet_seg_series *rec;
	unsigned char *region;
	uint64_t slot;
	uint32_t id = 0, cells;
	int len, rc, old;

	/* No labels, no exemplar: prometheus_client's inc(exemplar={}). */
	if (count == 0)
		return 0;
	old = shmet_impl_cancel_off();
	pthread_mutex_lock(&shmet_impl_forklist.lock);
	seg = shmet_impl_exemplar_seg(gen, &id);
	if (!seg) {
		rc = -ESTALE;           /* a failed handle or a closed segment */
		goto out;
	}
	len = shmet_impl_exemplar_blob(seg, count, names, values, blob);
	if (len < 0) {
		rc = len;
		goto out;
	}
	rec = &shmet_impl_series_table(seg)[id];
	/* Relaxed: the handle's own check (inline-impl.h, shmet_impl_stale);
	 * an exemplar of a series removed since is dropped. */
	if (SHMET_AT(load_explicit)(gen, SHMET_MO(relaxed)) != expect) {
		rc = -ESTALE;
		goto out;
	}
	/* first_cell and cells were written before the record was published
	 * to the handle's resolution, which ordered them (series.c). */
	cells = rec->cells;
	slot = shmet_seg_exemplar_slot(rec->first_cell, bucket);
	if ((cells && bucket >= cells) || slot >= seg->hdr->cells_per_block) {
		rc = -EINVAL;
		goto out;
	}
	region = shmet_impl_exemplars(seg);
	rc = region ? shmet_impl_exemplar_reserve(seg, slot) : -ENOMEM;
	if (rc == 0)
		rc = shmet_impl_exemplar_store(
			(struct shmet_seg_exemplar *)(void *)(region +
							      slot * SHMET_EXEMPLAR_SIZE),
			id, expect, count, (uint32_t)len, value, blob);
out:
	pthread_mutex_unlock(&shmet_impl_forklist.lock);
	shmet_impl_cancel_restore(old);
	return rc;
}

int
shmet_counter_add_exemplar(const struct shmet_counter *c, double v,
			   uint32_t count, const char *const *names,
			   const char *const *values)
{
	double x = v > 0.0 ? shmet_impl_finite_or_zero(v) : 0.0;

	/* Whole amounts count in the integer cell, as shmet_counter_add. */
	if (x < 9007199254740992.0 && (double)(uint64_t)x == x)
		shmet_counter_add(c, (uint64_t)x);
	else
		shmet_counter_add_double(c, x);
	return shmet_impl_exemplar(c->gen, c->expect, 0, x, count, names,
				   values);
}

int
shmet_counter_inc_exemplar(const struct shmet_counter *c, uint32_t count,
			   const char *const *names, const char *const *values)
{
	return shmet_counter_add_exemplar(c, 1.0, count, names, values);
}

int
shmet_histogram_observe_exemplar(const struct shmet_histogram *h, double v,
				 uint32_t count, const char *const *names,
				 const char *const *values)
{
	shmet_histogram_observe(h, v);
	return shmet_impl_exemplar(h->gen, h->expect,
				   shmet_impl_bucket(h->bounds, h->bound_count,
						     v),
				   v, count, names, values);
}
