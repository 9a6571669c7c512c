/*
 * shmetrics writer: idle expiry.  In a segment created with series_ttl_s,
 * a series that no process wrote for that long leaves the pages and its
 * record, cells and label bytes become reusable (reuse.c): label values
 * that come and go (a campaign_id) do not fill the segment.
 *
 * "Wrote" is seen from outside, without a cost on the hot path: a sweep
 * sums each series' cells over every block into a digest and keeps it in
 * the series record with the time it last changed.  A gauge that a live
 * process holds is never idle (a gauge set to the same value changes
 * nothing a sweep could see; its owner is alive), so gauges expire only
 * once their writers are gone.  A counter that stops counting does
 * expire: a handle still held on it drops its writes from then on
 * (counted), and resolving the label values again starts a new series.
 *
 * One sweep at a time: a sweeper claims it by moving the header's
 * sweep_ns with a CAS.  Expiring one series is a removal under its
 * family's gate (remove.c: journaled, every step kill-safe); a sweeper
 * killed between two of them leaves nothing half done.
 */
#include "writer-private.h"

/* How often writers sweep by themselves: half the TTL, within limits. */
static uint64_t
shmet_impl_sweep_every_ns(uint64_t ttl)
{
	uint64_t every = ttl / 2;

	if (every < UINT64_C(100000000))
		every = UINT64_C(100000000);            /* 100 ms */
	if (every > UINT64_C(60000000000))
		every = UINT64_C(60000000000);          /* 60 s */
	return every;
}

/*
 * Sum cells [0, ncells) of every block into sum (wrapping: a digest), and
 * mark in live[] the cells that are non-zero in the block of a live
 * writer (for gauges' stamps).  Through the file: other writers' blocks
 * are not mapped here.  0 or a negative errno.
 */
static int
shmet_impl_sweep_read(struct shmet_segment *seg, uint32_t ncells,
		      uint64_t *sum, uint8_t *live, uint64_t *buf)
{
	const struct shmet_seg_header *h = seg->hdr;
	const struct shmet_seg_writer *w = shmet_impl_writers(seg);

	for (uint32_t b = 0; b < shmet_seg_blocks(h); b++) {
		off_t at = (off_t)(h->values_off + (uint64_t)b * h->block_stride);
		size_t len = 8u * (size_t)ncells, got = 0;
		int alive = 0;

		if (b < h->max_writers) {
			/* Acquire: a claimed slot's block is written. */
			uint32_t st = SHMET_AT(load_explicit)(
				&w[b].state, SHMET_MO(acquire));

			if (st == SHMET_WRITER_UNUSED)
				continue;
			alive = b == seg->slot ||
				(st == SHMET_WRITER_ACTIVE &&
				 shmet_seg_slot_held(seg->fd, b) != 0);
		}
		while (got < len) {
			ssize_t k = pread(seg->fd, (unsigned char *)buf + got,
					  len - got, at + (off_t)got);

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				return -errno;
			if (k == 0) {           /* past the end: zeros */
				memset((unsigned char *)buf + got, 0,
				       len - got);
				break;
			}
			got += (size_t)k;
		}
		for (uint32_t c = 0; c < ncells; c++) {
			sum[c] += buf[c];
			if (alive && buf[c])
				live[c] = 1;
		}
	}
	return 0;
}

/* Expire record id of family fam if it still is the series swept: 1 if
 * it was. */
static int
shmet_impl_expire_one(struct shmet_segment *seg, uint32_t fam, uint32_t id,
		      uint32_t gen)
{
	struct shmet_seg_series *s = &shmet_impl_series_table(seg)[id];
	int done = 0;

	if (shmet_impl_gate_try(seg, fam) < 0)
		return 0;       /* busy: the next sweep (a sweep never waits) */
	SHMET_POINT("expire.gated");
	shmet_impl_gate_recover(seg, fam);
	/* Acquire: as every reader of a record's state and incarnation. */
	if (SHMET_AT(load_explicit)(&s->state, SHMET_MO(acquire)) ==
		    SHMET_SERIES_LIVE &&
	    SHMET_AT(load_explicit)(&s->gen, SHMET_MO(acquire)) == gen) {
		shmet_impl_remove_one(seg, &shmet_impl_families(seg)[fam], id);
		/* Relaxed: a statistic. */
		SHMET_AT(fetch_add_explicit)(&seg->hdr->expired, 1,
					     SHMET_MO(relaxed));
		done = 1;
	}
	shmet_impl_gate_unlock(seg, fam);
	return done;
}

static int
shmet_impl_sweep(struct shmet_segment *seg, uint64_t now, uint64_t ttl)
{
	const struct shmet_seg_header *h = seg->hdr;
	const struct shmet_seg_family *fams = shmet_impl_families(seg);
	struct shmet_seg_series *table = shmet_impl_series_table(seg);
	SHMET_ATOMIC(uint32_t) *index =
		shmet_impl_index(seg, h->series_index_off);
	/* Relaxed: cells past it belong to no published series. */
	uint32_t ncells = SHMET_AT(load_explicit)(&h->cells_used,
						  SHMET_MO(relaxed));
	uint64_t *sum, *buf;
	uint8_t *live;
	int rc, expired = 0;

	if (ncells > h->cells_per_block)
		ncells = h->cells_per_block;
	sum = (uint64_t *)calloc((size_t)ncells + 1, sizeof *sum);
	buf = (uint64_t *)malloc(((size_t)ncells + 1) * sizeof *buf);
	live = (uint8_t *)calloc((size_t)ncells + 1, 1);
	if (!sum || !buf || !live) {
		free(sum);
		free(buf);
		free(live);
		return -ENOMEM;
	}
	rc = shmet_impl_sweep_read(seg, ncells, sum, live, buf);
	for (uint32_t i = 0; rc == 0 && i < h->series_index_slots; i++) {
		/* Acquire: as every index load (a complete record). */
		uint32_t v = SHMET_AT(load_explicit)(&index[i],
						     SHMET_MO(acquire));
		struct shmet_seg_series *s;
		uint32_t fam, cells, first, gen;
		uint64_t digest = UINT64_C(0x9e3779b97f4a7c15);
		int held = 0;

		if (v == 0 || v - 1 >= h->max_series)
			continue;       /* empty, tombstone */
		s = &table[v - 1];
		gen = SHMET_AT(load_explicit)(&s->gen, SHMET_MO(acquire));
		if (SHMET_AT(load_explicit)(&s->state, SHMET_MO(acquire)) !=
		    SHMET_SERIES_LIVE)
			continue;
		fam = s->family;
		first = s->first_cell;
		if (fam >= h->max_families)
			continue;
		cells = fams[fam].cells_per_series;
		if ((uint64_t)first + cells > ncells)
			continue;       /* newer than what we read */
		for (uint32_t c = 0; c < cells; c++)
			digest = shmet_seg_mix(digest ^ sum[first + c]) + c;
		/* a gauge's stamp in a live writer's block: its owner lives */
		if (fams[fam].type == SHMET_TYPE_GAUGE)
			held = live[shmet_seg_cell_gauge_stamp(first)];
		/* Relaxed, the digest and its time: only sweepers (one at a
		 * time) write them, and a race costs one sweep's delay. */
		if (digest != SHMET_AT(load_explicit)(&s->digest,
						      SHMET_MO(relaxed)) ||
		    held) {
			SHMET_AT(store_explicit)(&s->digest, digest,
						 SHMET_MO(relaxed));
			SHMET_AT(store_explicit)(&s->changed_ns, now,
						 SHMET_MO(relaxed));
			continue;
		}
		if (now - SHMET_AT(load_explicit)(&s->changed_ns,
						  SHMET_MO(relaxed)) < ttl)
			continue;
		expired += shmet_impl_expire_one(seg, fam, v - 1, gen);
	}
	free(sum);
	free(buf);
	free(live);
	return rc < 0 ? rc : expired;
}

/* The sweep, if one is due (force: now) and no one else runs it. */
static int
shmet_impl_expire_steps(struct shmet_segment *seg, int force)
{
	uint64_t ttl, now, last;
	int rc;

	if (!seg || !seg->attached)
		return -ENODEV;
	ttl = (uint64_t)seg->hdr->series_ttl_s * UINT64_C(1000000000);
	if (ttl == 0) {
		if (force)      /* shmet_expire: reclaim what is empty */
			shmet_impl_reclaim_sweep(seg);
		return 0;
	}
	now = shmet_impl_clock_ns(CLOCK_MONOTONIC);
	/* Relaxed: the CAS below decides who sweeps; it orders nothing. */
	last = SHMET_AT(load_explicit)(&seg->hdr->sweep_ns, SHMET_MO(relaxed));
	if (!force && now - last < shmet_impl_sweep_every_ns(ttl))
		return 0;
	if (!SHMET_AT(compare_exchange_strong_explicit)(
		    &seg->hdr->sweep_ns, &last, now, SHMET_MO(relaxed),
		    SHMET_MO(relaxed)))
		return 0;       /* another sweeper just started */
	rc = shmet_impl_sweep(seg, now, ttl);
	/* The family records the sweep emptied, and any other empty and
	 * unheld (reclaim.c): a sweep that expired nothing frees nothing
	 * new unless asked. */
	if (rc > 0 || force)
		shmet_impl_reclaim_sweep(seg);
	return rc;
}

/* From the creation path, before it takes a gate (gate.c): a sweep if
 * one is due.  Not a cancellation point (the API entry turned it off). */
SHMET_W void
shmet_impl_expire_due(struct shmet_segment *seg)
{
	if (seg->hdr->series_ttl_s)
		(void)shmet_impl_expire_steps(seg, 0);
}

int
shmet_expire(struct shmet_segment *seg)
{
	int old = shmet_impl_cancel_off();
	int rc = shmet_impl_expire_steps(seg, 1);

	shmet_impl_cancel_restore(old);
	return rc;
}
