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
	 * writer/writer-private.h, "Spare records"), guarded by a try-lock.
	 */
	SHMET_ATOMIC(int) spare_busy;
	uint32_t spare_series, spare_cell, spare_cells;
	struct shmet_seg_str spare_blob;
	uint32_t spare_family;
	SHMET_ATOMIC(int) gate_busy;    /* a thread holds a creation gate */
	uint32_t flags;
	int attached;
	int owner_pid;                  /* the process that took the slot */
	SHMET_ATOMIC(int) live_locked;  /* our liveness lock is held */
	uint64_t key;                   /* this open's id in the process; 0: none */
	struct shmet_impl_threads *threads; /* per-thread blocks (writer/thread.c) */
	struct shmet_segment *next;     /* the process's fork list */
	char name[256];
};

/*
 * The calling thread's counting block for one segment (docs/DESIGN.md,
 * "Threads"): a handle holds a cell of the process block and the segment's
 * key; the thread's own cell is at cell + delta.  One entry per thread,
 * initial-exec so the hot path reads it fs-relative even from a shared
 * libshmetrics.  A fresh thread has key 0, delta 0, which is also what a
 * failed handle carries: scratch cells stay scratch cells.
 */
struct shmet_impl_tls {
	uint64_t key;
	uintptr_t delta;
};

#if defined(__GNUC__)
#define SHMET_IMPL_LIKELY(x) __builtin_expect(!!(x), 1)
extern __thread struct shmet_impl_tls shmet_impl_tls
	__attribute__((tls_model("initial-exec"), visibility("default")));
#else
#define SHMET_IMPL_LIKELY(x) (x)
extern _Thread_local struct shmet_impl_tls shmet_impl_tls;
#endif

typedef SHMET_ATOMIC(uint64_t) shmet_impl_acell;

/* Slow path of shmet_impl_mine: attach this thread, or switch segments. */
SHMET_API shmet_impl_acell *shmet_impl_thread_cell(shmet_impl_acell *cell,
						  uint64_t key);

static inline SHMET_ATOMIC(uint64_t) *
shmet_impl_mine(SHMET_ATOMIC(uint64_t) *cell, uint64_t key)
{
	/* One predictable branch: a thread counts in one segment almost
	 * always, so the key matches after its first write. */
	if (SHMET_IMPL_LIKELY(shmet_impl_tls.key == key))
		return (SHMET_ATOMIC(uint64_t) *)((uintptr_t)cell +
						  shmet_impl_tls.delta);
	return shmet_impl_thread_cell(cell, key);
}

/* The calling thread's copy of a counter's or histogram's cells. */
#define SHMET_IMPL_CELL(h) shmet_impl_mine((h)->cell, (h)->key)

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
