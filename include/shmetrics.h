/*
 * shmetrics: Prometheus metrics for multi-process fleets through POSIX shared
 * memory.  This is the only header an instrumented application includes.
 * Everything is static inline: link nothing beyond libc.
 *
 * Include it first (or build with _POSIX_C_SOURCE >= 200809L, _DEFAULT_SOURCE
 * or _GNU_SOURCE, as gnu11 does): it needs shm_open, mmap, fcntl and
 * clock_gettime.
 *
 * Usage:
 *
 *	struct shmet_segment seg;
 *	struct shmet_family calls;
 *	struct shmet_counter c;
 *	const char *labels[] = { "campaign_id", "user_id" };
 *
 *	shmet_open(&seg, NULL);                  // create or attach "/shmetrics"
 *	shmet_counter_family(&seg, &calls, "campaign_calls_initiated_total",
 *			     "Total calls initiated", 2, labels);
 *	shmet_counter_labels(&calls, &c, SHMET_VALUES("abc123", "user456"));
 *	shmet_counter_inc(&c);                   // one relaxed atomic add
 *
 * Errors (registration, attach): functions return 0 or a negative errno and
 * ALWAYS fill their out-handle with something safe to use: a failed handle
 * points at a per-process scratch cell, so the hot path never checks.
 * shmet_last_error() holds a one-line message for the latest failure.
 *	-EINVAL     invalid metric name, label name, label count, label value
 *		    longer than SHMET_MAX_LABEL_VALUE_LEN, bucket bounds, options
 *	-EEXIST     the name is registered with another shape
 *	-ENOSPC     the segment is full (families, series, cells, strings)
 *	-E2BIG      the family reached its cardinality limit
 *	-ENOMEM     shared memory for the values could not be reserved
 *	-ENODEV     the segment is not attached
 *	-EPROTO     the segment has another layout version or is not ours
 *	-ETIMEDOUT  the segment's creator did not finish initialising in time
 * Every registration failure is also counted in the segment by reason, so
 * the exporter can expose it.  Nothing here aborts, blocks indefinitely or
 * raises a signal.
 *
 * Synchronization table (which calls may run concurrently, from any threads
 * and processes on one segment):
 *	shmet_open / shmet_close      one call per struct shmet_segment at a time
 *	*_family, *_labels, *_new     any number, any threads and processes
 *	hot path (inc/add/set/observe) any number; wait-free except the
 *				      CAS loops of float adds (lock-free)
 *	fork()                        any time: the child gets its own writer
 *				      slot before fork() returns in it
 */
#ifndef SHMETRICS_H
#define SHMETRICS_H

#if !defined(_POSIX_C_SOURCE) && !defined(_XOPEN_SOURCE) && \
	!defined(_GNU_SOURCE) && !defined(_DEFAULT_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmetrics/layout.h"

#define SHMET_DEFAULT_SEGMENT   "/shmetrics"
#define SHMET_ENV_SEGMENT       "SHMETRICS_SEGMENT"

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
};

/* An attached segment.  Fields are private; keep its address stable. */
struct shmet_segment {
	int fd;                         /* O_RDWR; holds our slot's OFD lock */
	uint32_t slot;                  /* writer slot, max_writers = fallback */
	unsigned char *base;            /* whole segment, read-write */
	size_t size;
	struct shmet_seg_header *hdr;
	SHMET_ATOMIC(uint64_t) *block;  /* our value block (own mapping) */
	size_t block_size;
	SHMET_ATOMIC(uint64_t) reserved; /* bytes of our block fallocated */
	/*
	 * Records this process built but lost a publication race with (see
	 * impl.h, "Spare records"), guarded by a try-lock.
	 */
	SHMET_ATOMIC(int) spare_busy;
	uint32_t spare_series, spare_cell, spare_cells;
	struct shmet_seg_str spare_blob;
	uint32_t spare_family;
	uint32_t flags;
	int attached;
	struct shmet_segment *next;     /* fork list of this translation unit */
	char name[256];
	char error[256];
};

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

/* Hot-path handles: resolved pointers into this process's value block. */
struct shmet_counter {
	SHMET_ATOMIC(uint64_t) *cell;
};

struct shmet_gauge {
	SHMET_ATOMIC(uint64_t) *cell;
	uint32_t timed;                 /* mostrecent modes stamp writes */
};

struct shmet_histogram {
	SHMET_ATOMIC(uint64_t) *cell;
	const double *bounds;
	uint32_t bound_count;
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
static inline int shmet_open(struct shmet_segment *seg,
			     const struct shmet_options *opts);

/*
 * Detach: release the writer slot (its counter cells keep counting in every
 * sum).  Handles obtained from seg stay safe to use and record nothing.
 */
static inline void shmet_close(struct shmet_segment *seg);

/* The latest failure's message, or "" if none. */
static inline const char *shmet_last_error(const struct shmet_segment *seg);

/* Unlink a segment by name (NULL: default).  Mappings stay valid. */
static inline int shmet_unlink(const char *name);

/* Find or register a family; fam is always usable, see errors above. */
static inline int shmet_family_register(struct shmet_segment *seg,
					const struct shmet_family_desc *desc,
					struct shmet_family *fam);
static inline int shmet_counter_family(struct shmet_segment *seg,
				       struct shmet_family *fam,
				       const char *name, const char *help,
				       uint32_t label_count,
				       const char *const *label_names);
static inline int shmet_gauge_family(struct shmet_segment *seg,
				     struct shmet_family *fam,
				     const char *name, const char *help,
				     uint32_t gauge_mode, uint32_t label_count,
				     const char *const *label_names);
static inline int shmet_histogram_family(struct shmet_segment *seg,
					 struct shmet_family *fam,
					 const char *name, const char *help,
					 uint32_t bound_count,
					 const double *bounds,
					 uint32_t label_count,
					 const char *const *label_names);

/*
 * Find or create the series of fam with these label values (count must be
 * the family's label count).  Lock-free across processes: concurrent
 * creators of one label set all get the same series.  The handle is always
 * usable; on failure it records into a scratch cell.
 */
static inline int shmet_counter_labels(const struct shmet_family *fam,
				       struct shmet_counter *out,
				       uint32_t count,
				       const char *const *values);
static inline int shmet_gauge_labels(const struct shmet_family *fam,
				     struct shmet_gauge *out, uint32_t count,
				     const char *const *values);
static inline int shmet_histogram_labels(const struct shmet_family *fam,
					 struct shmet_histogram *out,
					 uint32_t count,
					 const char *const *values);

/* Label values as (count, array) from a list of strings (C only). */
#define SHMET_VALUES(...) \
	(uint32_t)(sizeof((const char *[]){ __VA_ARGS__ }) / sizeof(char *)), \
	(const char *const *)(const char *[]){ __VA_ARGS__ }

/* Zero-label families: register and resolve the single series in one call. */
static inline int shmet_counter_new(struct shmet_segment *seg,
				    struct shmet_counter *out,
				    const char *name, const char *help);
static inline int shmet_gauge_new(struct shmet_segment *seg,
				  struct shmet_gauge *out, const char *name,
				  const char *help, uint32_t gauge_mode);
static inline int shmet_histogram_new(struct shmet_segment *seg,
				      struct shmet_histogram *out,
				      const char *name, const char *help,
				      uint32_t bound_count,
				      const double *bounds);

/* Bucket bound helpers: fill out[0..count) and return count (0 if invalid). */
static inline uint32_t shmet_linear_bounds(double start, double width,
					   uint32_t count, double *out);
static inline uint32_t shmet_exponential_bounds(double start, double factor,
						uint32_t count, double *out);

/*
 * Hot path.  Each is wait-free (integer ops, set) or lock-free (float adds:
 * a CAS loop on a cell that only this process writes, so it retries only
 * when two threads of this process race on one series).  No syscall, lock,
 * allocation or error branch.
 */
static inline void shmet_counter_inc(const struct shmet_counter *c);
static inline void shmet_counter_add(const struct shmet_counter *c,
				     uint64_t n);
/* Negative and NaN increments are ignored: counters never go backwards. */
static inline void shmet_counter_add_double(const struct shmet_counter *c,
					    double v);
static inline void shmet_gauge_set(const struct shmet_gauge *g, double v);
static inline void shmet_gauge_add(const struct shmet_gauge *g, double v);
static inline void shmet_gauge_inc(const struct shmet_gauge *g);
static inline void shmet_gauge_dec(const struct shmet_gauge *g);
/* Seconds since the Unix epoch, as Python's set_to_current_time(). */
static inline void shmet_gauge_set_to_current_time(const struct shmet_gauge *g);
static inline void shmet_histogram_observe(const struct shmet_histogram *h,
					   double v);

/* Timing on CLOCK_MONOTONIC (vDSO: no syscall). */
static inline uint64_t shmet_now_ns(void);
static inline void shmet_histogram_observe_since(const struct shmet_histogram *h,
						 uint64_t start_ns);

/*
 * Scoped timer: SHMET_TIME(&hist) { ... } observes the block's duration in
 * seconds.  Leaving the block with break, goto or return skips the
 * observation (as an exception would skip Python's context manager exit).
 */
#define SHMET_TIME(h) \
	for (uint64_t shmet_impl_t0_ = shmet_now_ns(), shmet_impl_once_ = 1; \
	     shmet_impl_once_; \
	     shmet_impl_once_ = 0, \
	     shmet_histogram_observe_since((h), shmet_impl_t0_))

#include "shmetrics/impl.h"

#endif /* SHMETRICS_H */
