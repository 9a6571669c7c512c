/*
 * shmetrics: Prometheus metrics for multi-process fleets through POSIX shared
 * memory.  This is the only header an instrumented application includes.
 * The hot path (inc, add, set, observe) is inline here; everything else
 * (attach, slot claim, fork handling, registration) is compiled once per
 * program, in one of two ways:
 *
 *   - link libshmetrics:  cc app.c $(pkg-config --cflags --libs shmetrics)
 *   - or, with nothing to link, define SHMETRICS_IMPLEMENTATION in exactly
 *     one source file before including this header (the single-header
 *     library convention).  That file needs POSIX 2008 (-std=gnu11, or
 *     _GNU_SOURCE / _POSIX_C_SOURCE 200809L defined before any include;
 *     the header defines _GNU_SOURCE itself when it comes first).
 *
 * The header itself needs no feature macro and compiles as C11 -pedantic
 * and as C++17.  README.md shows a first program; docs/DESIGN.md the design.
 *
 * Errors (registration, attach): functions return 0 or a negative errno and
 * ALWAYS fill their out-handle with something safe to use: a failed handle
 * points at a per-process scratch cell, so the hot path never checks.
 * shmet_last_error() holds a one-line message for the calling thread's
 * latest failure.
 *	-EINVAL     invalid metric name, label name, label count, label value
 *		    longer than SHMET_MAX_LABEL_VALUE_LEN, bucket bounds, options
 *	-EEXIST     a name the family would put on a page (x_total,
 *		    h_bucket, ...) is another family's, or is reserved
 *		    (process_*, shmetrics_*); the name is registered with the
 *		    same label names in another order; a collector is
 *		    declared again with other families
 * Registering a name again with other label names, buckets, gauge mode,
 * type, help or unit (a new release) succeeds: each shape counts in
 * series of its own, and pages show one family with the newest help and
 * type (docs/DESIGN.md, "Shapes across releases").
 *	-EPERM      the segment belongs to another user or is writable by
 *		    more users than the mode asked for
 *	-ENOSPC     the segment is full (families, series, cells, strings)
 *	-E2BIG      the family reached its cardinality limit
 *	-ENOMEM     shared memory for the values could not be reserved
 *	-EFBIG      creating the segment would pass the file size limit
 *		    (RLIMIT_FSIZE): refused rather than die of SIGXFSZ
 *	-ENODEV     the segment is not attached
 *	-EPROTO     the segment has another layout version, or the name is
 *		    a file that is not a shmetrics segment (left untouched)
 *	-ETIMEDOUT  the segment's creator did not finish initialising in time
 * Every registration failure is also counted in the segment by reason, so
 * the exporter can expose it.  Nothing here aborts, blocks indefinitely or
 * raises a signal.
 *
 * Synchronization table (which calls may run concurrently, from any threads
 * and processes on one segment):
 *	shmet_open / shmet_close      one call per struct shmet_segment at a
 *				      time, and not while other threads use
 *				      that segment or its handles' families
 *	*_family, *_labels, *_new,    any number, any threads and processes,
 *	shmet_collector_register      including their error paths
 *	shmet_last_error              any thread: its own latest failure
 *	hot path (inc/add/set/observe) any number; wait-free except the
 *				      CAS loops of float adds (lock-free)
 *	fork()                        any time, from any thread, also while
 *				      others register: the child gets its own
 *				      writer slot before fork() returns in it
 */
#ifndef SHMETRICS_H
#define SHMETRICS_H

#if defined(SHMETRICS_IMPLEMENTATION) && !defined(_POSIX_C_SOURCE) && \
	!defined(_XOPEN_SOURCE) && !defined(_GNU_SOURCE) && \
	!defined(_DEFAULT_SOURCE)
#define _GNU_SOURCE 1   /* only in the file that compiles the slow path */
#endif

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shmetrics/layout.h"

#ifdef __cplusplus
#define SHMET_MO(x) std::memory_order_##x
#define SHMET_AT(fn) std::atomic_##fn
extern "C" {
#else
#define SHMET_MO(x) memory_order_##x
#define SHMET_AT(fn) atomic_##fn
#endif

/* The slow path's functions: defined once, in libshmetrics or in the file
 * that defines SHMETRICS_IMPLEMENTATION. */
#if defined(__GNUC__)
#define SHMET_API extern __attribute__((visibility("default")))
#else
#define SHMET_API extern
#endif

/* Capacities used when struct shmet_options leaves a field 0. */
#define SHMET_DEFAULT_MAX_FAMILIES      1024u
#define SHMET_DEFAULT_MAX_SERIES        131072u
#define SHMET_DEFAULT_MAX_WRITERS       256u
#define SHMET_DEFAULT_CELLS_PER_BLOCK   524288u         /* 4 MiB a writer */
#define SHMET_DEFAULT_STRING_BYTES      (8u << 20)
#define SHMET_DEFAULT_MAX_SERIES_PER_FAMILY 10000u
#define SHMET_DEFAULT_MODE              0600u
#define SHMET_DEFAULT_INIT_TIMEOUT_MS   5000u

/* shmet_options.flags */
#define SHMET_OPEN_NO_CREATE    1u      /* attach only; -ENOENT if missing */
#define SHMET_OPEN_NO_WRITER    2u      /* map but claim no writer slot */
#define SHMET_OPEN_SET_GROUP    4u      /* on creation, chown to .group */
#define SHMET_OPEN_ONE_BLOCK    8u      /* accepted, no effect (was: per-thread
					   blocks off; threads count per CPU) */

struct shmet_options {
	const char *name;               /* NULL: $SHMETRICS_SEGMENT or "/shmetrics" */
	uint32_t max_families;          /* 0: default, for each capacity */
	uint32_t max_series;
	uint32_t max_writers;
	uint32_t cells_per_block;
	uint32_t string_bytes;
	uint32_t max_series_per_family;
	uint32_t mode;                  /* file mode on creation; 0: 0600 */
	uint32_t init_timeout_ms;       /* wait for another creator; 0: 5000 */
	uint32_t flags;                 /* SHMET_OPEN_* */
	uint32_t group;                 /* gid, with SHMET_OPEN_SET_GROUP */
	uint32_t max_thread_blocks;     /* accepted, no effect (per-thread
					   blocks gave way to per-CPU cells) */
	uint32_t cpu_blocks;            /* on creation: per-CPU value blocks;
					   0: the host's possible CPUs, at
					   most SHMET_MAX_CPU_BLOCKS (tests) */
	uint32_t series_ttl_s;          /* on creation: a series no process
					   wrote for this long expires (off
					   the pages, its record reused);
					   0: never (the default) */
};

/* An attached segment (fields in shmetrics/inline-impl.h are private);
 * keep its address stable. */
struct shmet_segment;

struct shmet_family {
	struct shmet_segment *seg;
	uint32_t id;                    /* UINT32_MAX: failed registration */
	uint32_t type;
	uint32_t label_count;
	uint32_t bound_count;
	uint32_t cells;                 /* per series */
	uint32_t gauge_mode;
	const double *bounds;
	int error;                      /* registration result */
};

/*
 * Hot-path handles (docs/DESIGN.md, "Per-CPU cells"): cell is the
 * series' first cell in the process block (gauges; counters' and
 * histograms' fallback), cpu0 the same cell in CPU block 0, stride the
 * bytes between two CPUs' blocks and cpus their number.  A failed handle
 * has cpus 0 (and cpu0 NULL): its rseq sections abort, and it writes its
 * scratch cell.  Every write first compares the series record's
 * incarnation (*gen) with the one the handle resolved (expect): a handle
 * kept across a removal or expiry drops its writes (counted), and never
 * writes into cells another series has since.
 */
struct shmet_counter {
	SHMET_ATOMIC(uint64_t) *cell;
	unsigned char *cpu0;
	uint64_t stride;
	uint32_t cpus;
	uint32_t expect;                /* the series' incarnation ... */
	const SHMET_ATOMIC(uint32_t) *gen; /* ... and where it is kept */
};

struct shmet_gauge {
	SHMET_ATOMIC(uint64_t) *cell;
	uint32_t timed;                 /* mostrecent modes stamp writes */
	uint32_t expect;
	const SHMET_ATOMIC(uint32_t) *gen;
};

struct shmet_histogram {
	SHMET_ATOMIC(uint64_t) *cell;
	const double *bounds;
	uint32_t bound_count;
	uint32_t cpus;
	unsigned char *cpu0;
	uint64_t stride;
	uint32_t expect;
	const SHMET_ATOMIC(uint32_t) *gen;
};

/* A full description of a family, for shmet_family_register(). */
struct shmet_family_desc {
	const char *name;               /* [a-zA-Z_:][a-zA-Z0-9_:]* */
	const char *help;               /* any text; NULL: empty */
	const char *unit;               /* NULL or "": none; name must end in it */
	uint32_t type;                  /* SHMET_TYPE_* */
	uint32_t gauge_mode;            /* SHMET_GAUGE_*; 0: livesum */
	uint32_t label_count;
	const char *const *label_names;
	uint32_t bound_count;           /* histograms: finite, increasing */
	const double *bounds;
	uint32_t max_series;            /* cardinality limit; 0: segment default */
};

/*
 * Create or attach the segment and claim a writer slot.  When many processes
 * start at once, exactly one initialises and the others wait (at most
 * init_timeout_ms) and attach.  opts may be NULL.
 *
 * @return 0, or a negative errno (see the top of this file); seg is then
 * safe to register on: everything returns scratch handles.
 */
SHMET_API int shmet_open(struct shmet_segment *seg,
			 const struct shmet_options *opts);

/*
 * Detach: release the writer slot (its counter cells keep counting in every
 * sum).  Handles obtained from seg stay safe to use and record nothing.
 */
SHMET_API void shmet_close(struct shmet_segment *seg);

/*
 * The message of the calling thread's latest failure (any call, any
 * segment), or "" if it had none.  Thread-local: threads never see each
 * other's messages.  seg is kept for the API's shape and may be NULL.
 */
SHMET_API const char *shmet_last_error(const struct shmet_segment *seg);

/* Unlink a segment (and its claim file) by name (NULL: default). */
SHMET_API int shmet_unlink(const char *name);

/* Find or register a family; fam is always usable, see errors above. */
SHMET_API int shmet_family_register(struct shmet_segment *seg,
				    const struct shmet_family_desc *desc,
				    struct shmet_family *fam);
SHMET_API int shmet_counter_family(struct shmet_segment *seg,
				   struct shmet_family *fam, const char *name,
				   const char *help, uint32_t label_count,
				   const char *const *label_names);
SHMET_API int shmet_gauge_family(struct shmet_segment *seg,
				 struct shmet_family *fam, const char *name,
				 const char *help, uint32_t gauge_mode,
				 uint32_t label_count,
				 const char *const *label_names);
SHMET_API int shmet_histogram_family(struct shmet_segment *seg,
				     struct shmet_family *fam,
				     const char *name, const char *help,
				     uint32_t bound_count, const double *bounds,
				     uint32_t label_count,
				     const char *const *label_names);

/*
 * Find or create the series of fam with these label values (count must be
 * the family's label count).  Lock-free across processes: concurrent
 * creators of one label set all get the same series.  The handle is always
 * usable; on failure it records into a scratch cell.
 */
SHMET_API int shmet_counter_labels(const struct shmet_family *fam,
				   struct shmet_counter *out, uint32_t count,
				   const char *const *values);
SHMET_API int shmet_gauge_labels(const struct shmet_family *fam,
				 struct shmet_gauge *out, uint32_t count,
				 const char *const *values);
SHMET_API int shmet_histogram_labels(const struct shmet_family *fam,
				     struct shmet_histogram *out,
				     uint32_t count, const char *const *values);

/*
 * Remove one series of fam (these label values), or every series of it,
 * as prometheus_client's remove() and clear() do: they leave the pages,
 * and a later *_labels() with the same values starts a new series from
 * zero.  A handle still held on a removed series stays safe: its writes
 * are not shown and never reach another series.  Removals of one family
 * are serialised with its series creations (a lock held for
 * microseconds), not with the hot path.
 * @return 0; -ENOENT if fam has no series with these values; -EINVAL for
 * a wrong label count; the family's registration error for a failed
 * handle.
 */
SHMET_API int shmet_family_remove(const struct shmet_family *fam,
				  uint32_t count, const char *const *values);
SHMET_API int shmet_family_clear(const struct shmet_family *fam);
/*
 * How many series of fam any process removed so far: a cache of handles
 * by label values drops its entries when this moves (a handle of a
 * removed series counts unseen).  0 for a failed handle.
 */
SHMET_API uint32_t shmet_family_removals(const struct shmet_family *fam);

/*
 * Expire now every series that no process wrote for the segment's
 * series_ttl_s (docs/DESIGN.md, "Idle expiry").  Writers also do it by
 * themselves when they create series, at most every ttl/2; call this from
 * a timer where series are rarely created, or run `shmetrics-ctl expire`.
 * @return the number of series expired, or a negative errno; 0 if the
 * segment has no TTL.
 */
SHMET_API int shmet_expire(struct shmet_segment *seg);

/* Label values as (count, array) from a list of strings (C only). */
#define SHMET_VALUES(...) \
	(uint32_t)(sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(char *)), \
	(const char *const *)(const char *[]){ __VA_ARGS__ }

/* Zero-label families: register and resolve the single series in one call. */
SHMET_API int shmet_counter_new(struct shmet_segment *seg,
				struct shmet_counter *out, const char *name,
				const char *help);
SHMET_API int shmet_gauge_new(struct shmet_segment *seg,
			      struct shmet_gauge *out, const char *name,
			      const char *help, uint32_t gauge_mode);
SHMET_API int shmet_histogram_new(struct shmet_segment *seg,
				  struct shmet_histogram *out,
				  const char *name, const char *help,
				  uint32_t bound_count, const double *bounds);

/*
 * Declare a collector: a named group of families that the application
 * registers together (e.g. "campaign_metrics").  The health endpoint
 * reports each declared collector as registered, partial or
 * not_registered by which of its families exist.  Declaring the same name
 * again with the same families is a no-op; with others, -EEXIST.
 */
SHMET_API int shmet_collector_register(struct shmet_segment *seg,
				       const char *name, uint32_t family_count,
				       const char *const *family_names);

/* Bucket bound helpers: fill out[0..count) and return count (0 if invalid). */
SHMET_API uint32_t shmet_linear_bounds(double start, double width,
				       uint32_t count, double *out);
SHMET_API uint32_t shmet_exponential_bounds(double start, double factor,
					    uint32_t count, double *out);

/*
 * Hot path.  Counters and histograms add to the cells of the CPU the
 * thread runs on, in a restartable sequence (rseq: plain instructions, no
 * atomic, no loop); without rseq (or with SHMETRICS_NO_RSEQ=1) to the
 * process's cells with a relaxed atomic.  Gauges write the process's
 * cells.  Wait-free, or lock-free for float adds without rseq (a CAS
 * loop); no lock, allocation or error branch; a thread's first write
 * makes one call to find its rseq area (docs/DESIGN.md).  Counters ignore negative, NaN and infinite increments;
 * a histogram counts every observation in its bucket (NaN and +Inf in
 * +Inf, -Inf in the first) but sums only finite values; gauges take any.
 */

/*
 * Exemplars (OpenMetrics): count as shmet_counter_add_double /
 * shmet_counter_inc / shmet_histogram_observe do, then keep
 * names[i]=values[i] (count pairs: label names, UTF-8 values, at most 128
 * characters in all) with the amount or observed value and the time as
 * the latest exemplar of the series (a histogram: of v's bucket), shown
 * on the OpenMetrics page whichever process wrote it.  Out of line (a
 * lock-free sequence lock per slot, no syscall after a slot's first
 * write); the count is made whatever the exemplar's fate.  Returns 0 if
 * the exemplar was stored (or count is 0: no exemplar, as
 * prometheus_client's empty one), -EINVAL if its labels are invalid (see
 * shmet_last_error), -EBUSY if another writer was storing one into the
 * same slot at that moment (theirs is kept), -ESTALE for a failed
 * handle, a closed segment or a removed series, -ENOMEM if its page
 * could not be reserved.  Any thread or process, but not a signal
 * handler: they take the process's attached-segments lock briefly.
 */
SHMET_API int shmet_counter_inc_exemplar(const struct shmet_counter *c,
					 uint32_t count,
					 const char *const *names,
					 const char *const *values);
SHMET_API int shmet_counter_add_exemplar(const struct shmet_counter *c,
					 double v, uint32_t count,
					 const char *const *names,
					 const char *const *values);
SHMET_API int shmet_histogram_observe_exemplar(const struct shmet_histogram *h,
					       double v, uint32_t count,
					       const char *const *names,
					       const char *const *values);

/* Timing on CLOCK_MONOTONIC (vDSO: no syscall). */
SHMET_API uint64_t shmet_now_ns(void);
/* Seconds since the Unix epoch, as Python's set_to_current_time(). */
SHMET_API void shmet_gauge_set_to_current_time(const struct shmet_gauge *g);

#include "shmetrics/inline-impl.h"

static inline void
shmet_counter_add(const struct shmet_counter *c, uint64_t n)
{
	/*
	 * An amount of 2^32 or more is counted in the float cell: an integer
	 * cell then needs 2^32 adds to wrap at 2^64, not a few (4,096 adds
	 * of 2^52 read 0), and the page shows a double anyway.  Constant for
	 * inc, so no branch there.
	 */
	if (n >= (UINT64_C(1) << 32)) {
		double x = (double)n;

		SHMET_IMPL_PERCPU_ADD(
			c, f64, x,
			shmet_impl_add_double(
				&c->cell[shmet_seg_cell_counter_float(0)], x));
		return;
	}
	/* Relaxed fallback: atomicity only (a cell orders nothing). */
	SHMET_IMPL_PERCPU_ADD(
		c, u64, n,
		SHMET_AT(fetch_add_explicit)(
			&c->cell[shmet_seg_cell_counter_int(0)], n,
			SHMET_MO(relaxed)));
}

static inline void
shmet_counter_inc(const struct shmet_counter *c)
{
	shmet_counter_add(c, 1);
}

static inline void
shmet_counter_add_double(const struct shmet_counter *c, double v)
{
	/* A clamp, not a branch: NaN, infinities and negatives add 0. */
	double x = v > 0.0 ? shmet_impl_finite_or_zero(v) : 0.0;

	SHMET_IMPL_PERCPU_ADD(
		c, f64, x,
		shmet_impl_add_double(
			&c->cell[shmet_seg_cell_counter_float(0)], x));
}

static inline void
shmet_gauge_set(const struct shmet_gauge *g, double v)
{
	if (SHMET_IMPL_UNLIKELY_(shmet_impl_stale(g->gen, g->expect)))
		return;
	/* Relaxed: see shmet_impl_gauge_stamp. */
	SHMET_AT(store_explicit)(&g->cell[shmet_seg_cell_gauge_value(0)],
				 shmet_impl_dbits(v), SHMET_MO(relaxed));
	shmet_impl_gauge_stamp(g);
}

static inline void
shmet_gauge_add(const struct shmet_gauge *g, double v)
{
	if (SHMET_IMPL_UNLIKELY_(shmet_impl_stale(g->gen, g->expect)))
		return;
	shmet_impl_add_double(&g->cell[shmet_seg_cell_gauge_value(0)], v);
	shmet_impl_gauge_stamp(g);
}

static inline void
shmet_gauge_inc(const struct shmet_gauge *g)
{
	shmet_gauge_add(g, 1.0);
}

static inline void
shmet_gauge_dec(const struct shmet_gauge *g)
{
	shmet_gauge_add(g, -1.0);
}

static inline void
shmet_histogram_observe(const struct shmet_histogram *h, double v)
{
	uint32_t n = h->bound_count;
	uint32_t i = shmet_impl_bucket(h->bounds, n, v);
	double sum = shmet_impl_finite_or_zero(v);

	/* The count is derived from the buckets, so buckets and count always
	 * agree; the sum may lag by in-flight observations. */
#ifdef SHMET_IMPL_RSEQ
	struct shmet_impl_rseq *rs = shmet_impl_rseq_area();
	int rc = 1;

	if (SHMET_IMPL_LIKELY(shmet_impl_rseq_on(rs)))
		rc = shmet_impl_rseq_observe(
			rs, h->cpu0, h->stride, h->cpus, h->gen, h->expect,
			shmet_seg_cell_bucket_bytes(i),
			shmet_seg_cell_bucket_to_sum_bytes(n, i), sum);
	if (SHMET_IMPL_UNLIKELY_(rc != 0))
		shmet_impl_observe_fallback(h, i, sum, rc == 1);
#else
	if (SHMET_IMPL_LIKELY(!shmet_impl_stale(h->gen, h->expect)))
		shmet_impl_observe_atomic(h, i, sum, 1);
#endif
}

static inline void
shmet_histogram_observe_since(const struct shmet_histogram *h,
			      uint64_t start_ns)
{
	shmet_histogram_observe(h, (double)(shmet_now_ns() - start_ns) / 1e9);
}

/*
 * Scoped timer: SHMET_TIME(&hist) { ... } observes the block's duration in
 * seconds once, however the block is left (end, break, return, goto), as
 * Python's `with` does; GCC's or Clang's cleanup attribute does it.  In
 * C++ or elsewhere only the normal end observes; longjmp never does.
 */
#if defined(__GNUC__) && !defined(__cplusplus)
#define SHMET_TIME(hist) \
	for (struct shmet_impl_timer shmet_impl_timer_ \
	     __attribute__((cleanup(shmet_impl_timer_end))) = \
		{ (hist), shmet_now_ns(), 1 }; \
	     shmet_impl_timer_.once; shmet_impl_timer_.once = 0)
#else
#define SHMET_TIME(hist) \
	for (struct shmet_impl_timer shmet_impl_timer_ = \
		{ (hist), shmet_now_ns(), 1 }; \
	     shmet_impl_timer_.once; \
	     shmet_impl_timer_.once = 0, \
	     shmet_impl_timer_end(&shmet_impl_timer_))
#endif

#ifdef __cplusplus
}
#endif

#endif /* SHMETRICS_H */

/*
 * The slow path, in the one file that defines SHMETRICS_IMPLEMENTATION
 * (outside the include guard, so that it works even if this header was
 * included before in that file).
 */
#if defined(SHMETRICS_IMPLEMENTATION) && !defined(SHMETRICS_IMPLEMENTATION_DONE)
#define SHMETRICS_IMPLEMENTATION_DONE
#include "shmetrics/writer-impl.h"
#endif
