/*
 * shmetrics writer: Process-wide state and the small helpers every protocol uses.
 */
#include "writer-private.h"

/*
 * Failed handles point here.  Atomic, so concurrent use from threads is
 * defined; nobody reads it.  Large enough for any histogram.
 */
SHMET_W_DEF shmet_impl_cell shmet_impl_scratch_cells[SHMET_MAX_BOUNDS + 2];
/* The incarnation a failed handle compares: never moves. */
SHMET_W_DEF SHMET_ATOMIC(uint32_t) shmet_impl_scratch_gen;

SHMET_W shmet_impl_cell *
shmet_impl_scratch(void)
{
	return shmet_impl_scratch_cells;
}

/* Attached segments, for the fork child handler. */
SHMET_W_DEF struct shmet_impl_forklist shmet_impl_forklist = {
	PTHREAD_MUTEX_INITIALIZER, NULL, 0, PTHREAD_CANCEL_ENABLE
};

/*
 * The calling thread's latest failure message.  Per thread, so that
 * registrations failing in many threads at once neither race on one
 * buffer nor read each other's text.
 */
SHMET_W_DEF SHMET_THREAD_LOCAL char shmet_impl_error[256];

/* ---------------------------------------------------------------- */
/* Small helpers                                                    */

SHMET_W uint64_t
shmet_impl_clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

uint64_t
shmet_now_ns(void)
{
	return shmet_impl_clock_ns(CLOCK_MONOTONIC);
}

void
shmet_gauge_set_to_current_time(const struct shmet_gauge *g)
{
	shmet_gauge_set(g, (double)shmet_impl_clock_ns(CLOCK_REALTIME) / 1e9);
}

const char *
shmet_last_error(const struct shmet_segment *seg)
{
	(void)seg;
	return shmet_impl_error;
}

/* Count a registration failure in the segment (async-signal-safe). */
SHMET_W void
shmet_impl_count(struct shmet_segment *seg, uint32_t reason)
{
	/* Relaxed: a statistic, ordered with nothing. */
	if (seg && seg->attached && reason < SHMET_FAIL_COUNT)
		SHMET_AT(fetch_add_explicit)(&seg->hdr->failures[reason], 1,
					     SHMET_MO(relaxed));
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
SHMET_W int
shmet_impl_fail(struct shmet_segment *seg, uint32_t reason, int rc,
		const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(shmet_impl_error, sizeof shmet_impl_error, fmt, ap);
	va_end(ap);
	shmet_impl_count(seg, reason);
	return rc;
}


/* Bounded allocation from a relaxed cursor; -1 when it does not fit. */
SHMET_W int
shmet_impl_alloc(SHMET_ATOMIC(uint32_t) *cursor, uint32_t cap, uint32_t n,
		 uint32_t align, uint32_t *out)
{
	/* Relaxed: see "Allocation cursors" at the top. */
	uint32_t cur = SHMET_AT(load_explicit)(cursor, SHMET_MO(relaxed));

	for (;;) {
		uint64_t start = shmet_seg_align(cur, align);

		if (start + n > cap)
			return -1;
		/* Relaxed: the cursor orders no contents ("Allocation
		 * cursors"). */
		if (SHMET_AT(compare_exchange_weak_explicit)(
			    cursor, &cur, (uint32_t)(start + n),
			    SHMET_MO(relaxed), SHMET_MO(relaxed))) {
			*out = (uint32_t)start;
			return 0;
		}
	}
}

/* Region accessors on an attached (validated) segment. */
SHMET_W struct shmet_seg_writer *
shmet_impl_writers(const struct shmet_segment *seg)
{
	return (struct shmet_seg_writer *)(void *)(seg->base +
						   seg->hdr->writers_off);
}

SHMET_W struct shmet_seg_family *
shmet_impl_families(const struct shmet_segment *seg)
{
	return (struct shmet_seg_family *)(void *)(seg->base +
						   seg->hdr->families_off);
}

SHMET_W struct shmet_seg_series *
shmet_impl_series_table(const struct shmet_segment *seg)
{
	return (struct shmet_seg_series *)(void *)(seg->base +
						   seg->hdr->series_off);
}

SHMET_W SHMET_ATOMIC(uint32_t) *
shmet_impl_index(const struct shmet_segment *seg, uint64_t off)
{
	return (SHMET_ATOMIC(uint32_t) *)(void *)(seg->base + off);
}

SHMET_W unsigned char *
shmet_impl_pool(const struct shmet_segment *seg)
{
	return seg->base + seg->hdr->strings_off;
}

/* A string reference checked against the pool: NULL if out of bounds. */
SHMET_W const unsigned char *
shmet_impl_str(const struct shmet_segment *seg, struct shmet_seg_str s)
{
	if ((uint64_t)s.off + s.len > seg->hdr->string_bytes)
		return NULL;
	return shmet_impl_pool(seg) + s.off;
}

/* ---------------------------------------------------------------- */

/*
 * No call of the API is a cancellation point: each entry that can reach
 * one (open, close, unlink, registration) runs with cancellation
 * disabled, and a pending cancel is acted on at the application's next
 * cancellation point after the call returned.  So a cancel never leaves
 * a lock, a gate, a description or a fork-list entry mid-protocol
 * (docs/DESIGN.md, "Cancellation").  pthread_setcancelstate is not a
 * cancellation point itself.
 */
SHMET_W int
shmet_impl_cancel_off(void)
{
	int old = PTHREAD_CANCEL_ENABLE;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	return old;
}

SHMET_W void
shmet_impl_cancel_restore(int old)
{
	int ignored;

	pthread_setcancelstate(old, &ignored);
}

SHMET_W void
shmet_impl_sleep_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/* The retired block's cells: mapped after the metadata (shmet_impl_map). */
SHMET_W shmet_impl_cell *
shmet_impl_retired(const struct shmet_segment *seg)
{
	return (shmet_impl_cell *)(void *)(seg->base + seg->hdr->values_off);
}

/*
 * A write through a handle of a removed or expired series (the hot path's
 * shmet_impl_stale): counted in the segment that holds gen, found among
 * the process's attached segments.  A failed handle's scratch gen never
 * moves, so it never comes here.
 */
void
shmet_impl_stale_write(const SHMET_ATOMIC(uint32_t) *gen)
{
	const unsigned char *at = (const unsigned char *)gen;

	/* A try: the hot path never waits (a signal handler may count
	 * while its thread holds the lock in shmet_open); a busy list
	 * leaves one drop uncounted. */
	if (pthread_mutex_trylock(&shmet_impl_forklist.lock) != 0)
		return;
	for (struct shmet_segment *s = shmet_impl_forklist.head; s;
	     s = s->next) {
		const unsigned char *t =
			(const unsigned char *)shmet_impl_series_table(s);

		if (s->attached && at >= t &&
		    at < t + (size_t)s->hdr->max_series *
				     sizeof(struct shmet_seg_series)) {
			/* Relaxed: a statistic. */
			SHMET_AT(fetch_add_explicit)(&s->hdr->stale_writes, 1,
						     SHMET_MO(relaxed));
			break;
		}
	}
	pthread_mutex_unlock(&shmet_impl_forklist.lock);
}

SHMET_W const unsigned char *
shmet_impl_str_or_empty(const struct shmet_segment *seg, struct shmet_seg_str s)
{
	const unsigned char *p = shmet_impl_str(seg, s);

	return p ? p : (const unsigned char *)"";
}

/* Record id is shown (layout.h): its incarnation even, not free. */
SHMET_W int
shmet_impl_family_shown(const struct shmet_segment *seg, uint32_t id)
{
	const struct shmet_seg_family *r = &shmet_impl_families(seg)[id];

	/* Acquire: a rebuilt record's fields were written before its
	 * incarnation became even again (reclaim.c). */
	return !(SHMET_AT(load_explicit)(&r->incarnation, SHMET_MO(acquire)) &
		 1) &&
	       SHMET_AT(load_explicit)(&r->state, SHMET_MO(acquire)) !=
		       SHMET_FAMILY_FREE;
}
