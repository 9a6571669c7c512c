/*
 * shmetrics: the private part of <shmetrics.h>, which includes it: the
 * segment handle's fields and the helpers of the inline hot path.  Not an
 * API: nothing here is stable.  The shmet_impl_* namespace is internal.
 */
#ifndef SHMETRICS_INLINE_IMPL_H
#define SHMETRICS_INLINE_IMPL_H

#ifndef SHMETRICS_H
#error "include <shmetrics.h> instead"
#endif

/* An attached segment.  Keep its address stable. */
struct shmet_segment {
	int fd;                         /* O_RDWR; our slot's liveness lock */
	int claim_fd;                   /* the owner-only claim file, or -1 */
	uint32_t slot;                  /* writer slot, max_writers = fallback */
	unsigned char *base;            /* whole segment, read-write */
	size_t size;
	struct shmet_seg_header *hdr;
	SHMET_ATOMIC(uint64_t) *block;  /* our value block (own mapping) */
	size_t block_size;
	SHMET_ATOMIC(uint64_t) reserved; /* bytes of our block fallocated */
	/*
	 * Records this process built but lost a publication race with (see
	 * writer-impl.h, "Spare records"), guarded by a try-lock.
	 */
	SHMET_ATOMIC(int) spare_busy;
	uint32_t spare_series, spare_cell, spare_cells;
	struct shmet_seg_str spare_blob;
	uint32_t spare_family;
	uint32_t flags;
	int attached;
	int owner_pid;                  /* the process that took the slot */
	SHMET_ATOMIC(int) live_locked;  /* our liveness lock is held */
	struct shmet_segment *next;     /* the process's fork list */
	char name[256];
};

static inline uint64_t
shmet_impl_dbits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof u);
	return u;
}

static inline double
shmet_impl_bitsd(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof d);
	return d;
}

/* v if finite, else 0 (a select, not a branch). */
static inline double
shmet_impl_finite_or_zero(double v)
{
	return v - v == 0.0 ? v : 0.0;
}

static inline void
shmet_impl_add_double(SHMET_ATOMIC(uint64_t) *cell, double v)
{
	/* Relaxed: a cell orders nothing; the CAS only needs atomicity
	 * against other threads of this process. */
	uint64_t old = SHMET_AT(load_explicit)(cell, SHMET_MO(relaxed));

	while (!SHMET_AT(compare_exchange_weak_explicit)(
		cell, &old, shmet_impl_dbits(shmet_impl_bitsd(old) + v),
		SHMET_MO(relaxed), SHMET_MO(relaxed)))
		;
}

static inline void
shmet_impl_gauge_stamp(const struct shmet_gauge *g)
{
	uint64_t stamp = 1;

	if (g->timed)           /* fixed per handle: perfectly predicted */
		stamp = shmet_now_ns() + 1;
	/* Relaxed: value and stamp are independent atomics; a reader may
	 * pair a value with the previous stamp. */
	SHMET_AT(store_explicit)(&g->cell[1], stamp, SHMET_MO(relaxed));
}

static inline void shmet_histogram_observe_since(const struct shmet_histogram *h,
						 uint64_t start_ns);

struct shmet_impl_timer {
	const struct shmet_histogram *h;
	uint64_t t0;
	int once;
};

static inline void
shmet_impl_timer_end(struct shmet_impl_timer *t)
{
	shmet_histogram_observe_since(t->h, t->t0);
}

#endif /* SHMETRICS_INLINE_IMPL_H */
