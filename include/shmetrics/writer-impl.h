/*
 * shmetrics writer: the slow path of the API in <shmetrics.h> (attach, slot
 * claim and takeover, fork handling, registration).  Compiled once per
 * program: <shmetrics.h> includes this file only where
 * SHMETRICS_IMPLEMENTATION is defined (one file of a program that links
 * nothing), and libshmetrics compiles it the same way.  Its process-wide
 * state (the fork list, the scratch cells, the error messages) therefore
 * exists once per process.  The shmet_impl_* namespace is internal only.
 * The rules it shares with readers are in format.h.
 *
 * Ordering guarantees:
 * - Publication.  A family or series record, its strings and its histogram
 *   bounds are written with plain stores, then published by a CAS on an
 *   index slot with memory_order_release.  Every load of an index slot is
 *   memory_order_acquire, so whoever finds a record sees it complete.  A
 *   record is immutable once published (except family.series_count, an
 *   atomic used only for the cardinality limit).
 * - Allocation cursors (families_used, series_used, cells_used,
 *   strings_used) are relaxed: they hand out disjoint ranges and order
 *   nothing; publication orders the contents.
 * - Initialisation.  The creator fills the header and every region, then
 *   stores init_state = READY with release; attachers load it with acquire.
 * - Value cells are relaxed: each cell is an independent quantity (a
 *   monotonic count, a last value), readers need atomicity (no torn or lost
 *   updates), not ordering between cells.  A scrape is not a consistent cut:
 *   a histogram's sum may lag its buckets by the observations in flight; its
 *   count is derived from the buckets, so count and buckets always agree.
 * - Writer slots.  Ownership is an OFD write lock (the kernel is the
 *   arbiter); the slot record's state is stored with release after the
 *   other fields, for readers that load it with acquire.
 *
 * Progress guarantees:
 * - Hot path: integer adds and sets are wait-free; float adds are a CAS loop
 *   on a cell that only this thread writes (counters, histograms) or this
 *   process (gauges, and threads that found no slot of their own):
 *   lock-free, retries only on a race between threads of this process.
 *   A thread's first counting write in a segment takes the slow path once
 *   (docs/DESIGN.md, "Threads").
 * - Registration is lock-free: a process killed at any point leaks at most
 *   one record and its strings and blocks nobody.
 * - shmet_open waits at most init_timeout_ms for a live initialiser; a dead
 *   one's OFD lock is gone, and the next process initialises instead.
 *
 * Spare records: a registration allocates its record (and cells and label
 * bytes) before it tries to publish it.  When another process published
 * an equal record first, ours is unpublished and nobody knows it; the
 * process keeps it as its spare and its next registration reuses it, so
 * that processes racing over the same label sets (a fleet starting at
 * once) leak at most one record each, not one per lost race.  The spare
 * is guarded by a try-lock: a thread that finds it busy allocates anew,
 * and never waits.
 */
#ifndef SHMETRICS_WRITER_IMPL_H
#define SHMETRICS_WRITER_IMPL_H

#ifndef SHMETRICS_H
#error "define SHMETRICS_IMPLEMENTATION and include <shmetrics.h> instead"
#endif

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "lock.h"
#include "name.h"


#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS 0x20
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0x4000
#endif

#ifdef __cplusplus
#define SHMET_THREAD_LOCAL thread_local
#else
#define SHMET_THREAD_LOCAL _Thread_local
#endif

#if defined(__GNUC__)
#define SHMET_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define SHMET_UNLIKELY(x) (x)
#endif

typedef SHMET_ATOMIC(uint64_t) shmet_impl_cell;

/* ---------------------------------------------------------------- */
/* Process-wide state: defined once, in the one file that compiles  */
/* this (see the top).                                              */

/*
 * Failed handles point here.  Atomic, so concurrent use from threads is
 * defined; nobody reads it.  Large enough for any histogram.
 */
static shmet_impl_cell shmet_impl_scratch_cells[SHMET_MAX_BOUNDS + 2];

static shmet_impl_cell *
shmet_impl_scratch(void)
{
	return shmet_impl_scratch_cells;
}

/* Attached segments, for the fork child handler. */
static struct {
	pthread_mutex_t lock;
	struct shmet_segment *head;
	int registered;
} shmet_impl_forklist = { PTHREAD_MUTEX_INITIALIZER, NULL, 0 };

/*
 * The calling thread's latest failure message.  Per thread, so that
 * registrations failing in many threads at once neither race on one
 * buffer nor read each other's text.
 */
static SHMET_THREAD_LOCAL char shmet_impl_error[256];

/* ---------------------------------------------------------------- */
/* Small helpers                                                    */

static uint64_t
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
static void
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
static int
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

#define SHMET_IMPL_NO_REASON SHMET_FAIL_SLOTS

/* Bounded allocation from a relaxed cursor; -1 when it does not fit. */
static int
shmet_impl_alloc(SHMET_ATOMIC(uint32_t) *cursor, uint32_t cap, uint32_t n,
		 uint32_t align, uint32_t *out)
{
	/* Relaxed: see "Allocation cursors" at the top. */
	uint32_t cur = SHMET_AT(load_explicit)(cursor, SHMET_MO(relaxed));

	for (;;) {
		uint64_t start = shmet_seg_align(cur, align);

		if (start + n > cap)
			return -1;
		/*
		 * Seq_cst on success: the cursor orders no contents ("Allocation
		 * cursors"), but the cells cursor is one side of the Dekker pair
		 * of shmet_impl_reserve_threads, whose other accesses are
		 * seq_cst too.  Registration is a slow path: the order costs
		 * nothing that shows.
		 */
		if (SHMET_AT(compare_exchange_weak_explicit)(
			    cursor, &cur, (uint32_t)(start + n),
			    SHMET_MO(seq_cst), SHMET_MO(relaxed))) {
			*out = (uint32_t)start;
			return 0;
		}
	}
}

/* Region accessors on an attached (validated) segment. */
static struct shmet_seg_writer *
shmet_impl_writers(const struct shmet_segment *seg)
{
	return (struct shmet_seg_writer *)(void *)(seg->base +
						   seg->hdr->writers_off);
}

static struct shmet_seg_family *
shmet_impl_families(const struct shmet_segment *seg)
{
	return (struct shmet_seg_family *)(void *)(seg->base +
						   seg->hdr->families_off);
}

static struct shmet_seg_series *
shmet_impl_series_table(const struct shmet_segment *seg)
{
	return (struct shmet_seg_series *)(void *)(seg->base +
						   seg->hdr->series_off);
}

static SHMET_ATOMIC(uint32_t) *
shmet_impl_index(const struct shmet_segment *seg, uint64_t off)
{
	return (SHMET_ATOMIC(uint32_t) *)(void *)(seg->base + off);
}

static unsigned char *
shmet_impl_pool(const struct shmet_segment *seg)
{
	return seg->base + seg->hdr->strings_off;
}

/* A string reference checked against the pool: NULL if out of bounds. */
static const unsigned char *
shmet_impl_str(const struct shmet_segment *seg, struct shmet_seg_str s)
{
	if ((uint64_t)s.off + s.len > seg->hdr->string_bytes)
		return NULL;
	return shmet_impl_pool(seg) + s.off;
}

/* ---------------------------------------------------------------- */
/* Creation and attach                                              */

static int
shmet_impl_resolve_name(struct shmet_segment *seg, const char *name)
{
	size_t len;

	if (!name)
		name = getenv(SHMET_ENV_SEGMENT);
	if (!name || !*name)
		name = SHMET_DEFAULT_SEGMENT;
	len = strlen(name);
	/* name.h: "/name" is shm_open's, "/dir/file" a file on a tmpfs. */
	if (shmet_name_check(name) < 0 || len >= sizeof seg->name)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EINVAL,
				       "segment name '%.64s' must be '/' followed "
				       "by up to 254 characters without '/', "
				       "or an absolute file path on a tmpfs",
				       name);
	memcpy(seg->name, name, len + 1);
	return 0;
}

static uint32_t
shmet_impl_opt(uint32_t v, uint32_t def)
{
	return v ? v : def;
}

/* Fill a zeroed metadata region; called with the init lock held. */
static int
shmet_impl_initialise(struct shmet_segment *seg,
		      const struct shmet_options *o)
{
	struct shmet_seg_header g, *h;
	void *meta;
	int rc;

	memset((void *)&g, 0, sizeof g);
	rc = shmet_seg_geometry(
		&g, shmet_impl_opt(o->max_families, SHMET_DEFAULT_MAX_FAMILIES),
		shmet_impl_opt(o->max_series, SHMET_DEFAULT_MAX_SERIES),
		shmet_impl_opt(o->max_writers, SHMET_DEFAULT_MAX_WRITERS),
		shmet_impl_opt(o->cells_per_block,
			       SHMET_DEFAULT_CELLS_PER_BLOCK),
		shmet_impl_opt(o->string_bytes, SHMET_DEFAULT_STRING_BYTES));
	if (rc < 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, rc,
				       "segment capacities out of range");
	if (ftruncate(seg->fd, (off_t)g.total_size) < 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				       "cannot size segment %s to %llu bytes: %s",
				       seg->name,
				       (unsigned long long)g.total_size,
				       strerror(errno));
	/*
	 * Reserve the metadata pages now: a write to a tmpfs page that cannot
	 * be allocated is SIGBUS, and the application must never see one.
	 */
	rc = posix_fallocate(seg->fd, 0, (off_t)g.values_off);
	if (rc != 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -ENOMEM,
				       "cannot reserve %llu bytes of shared "
				       "memory for %s: %s",
				       (unsigned long long)g.values_off,
				       seg->name, strerror(rc));
	meta = mmap(NULL, (size_t)g.values_off, PROT_READ | PROT_WRITE,
		    MAP_SHARED, seg->fd, 0);
	if (meta == MAP_FAILED)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				       "cannot map %s: %s", seg->name,
				       strerror(errno));
	/* A dead initialiser may have left anything behind. */
	memset(meta, 0, (size_t)g.values_off);
	h = (struct shmet_seg_header *)meta;
	g.magic = SHMET_MAGIC;
	g.layout_version = SHMET_LAYOUT_VERSION;
	g.header_size = SHMET_HEADER_SIZE;
	g.created_ns = shmet_impl_clock_ns(CLOCK_REALTIME);
	g.max_series_per_family = shmet_impl_opt(
		o->max_series_per_family, SHMET_DEFAULT_MAX_SERIES_PER_FAMILY);
	memcpy((void *)h, (const void *)&g, sizeof g);
	/* Pairs with the acquire load in shmet_impl_is_ready(). */
	SHMET_AT(store_explicit)(&h->init_state, SHMET_INIT_READY,
				 SHMET_MO(release));
	munmap(meta, (size_t)g.values_off);
	return 0;
}

static int
shmet_impl_is_ready(int fd)
{
	struct stat st;
	struct shmet_seg_header *h;
	int ready;

	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < SHMET_HEADER_SIZE)
		return 0;
	h = (struct shmet_seg_header *)mmap(NULL, SHMET_HEADER_SIZE, PROT_READ,
					    MAP_SHARED, fd, 0);
	if ((void *)h == MAP_FAILED)
		return 0;
	/* Pairs with the release store at the end of initialisation. */
	ready = SHMET_AT(load_explicit)(&h->init_state, SHMET_MO(acquire)) ==
		SHMET_INIT_READY;
	munmap((void *)h, SHMET_HEADER_SIZE);
	return ready;
}

static void
shmet_impl_sleep_ms(long ms)
{
	struct timespec ts;

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/*
 * Whoever holds the init lock while the segment is not ready initialises
 * it.  The creator usually wins the lock first; if it died mid-way its lock
 * is gone and a waiter takes over.
 */
static int
shmet_impl_wait_ready(struct shmet_segment *seg,
		      const struct shmet_options *o)
{
	uint64_t deadline = shmet_now_ns() +
		(uint64_t)shmet_impl_opt(o->init_timeout_ms,
					 SHMET_DEFAULT_INIT_TIMEOUT_MS) *
		UINT64_C(1000000);

	for (;;) {
		if (shmet_impl_is_ready(seg->fd))
			return 0;
		if (!(o->flags & SHMET_OPEN_NO_CREATE) &&
		    shmet_seg_lock(seg->fd, SHMET_LOCK_INIT, F_WRLCK) == 0) {
			int rc = 0;

			if (!shmet_impl_is_ready(seg->fd))
				rc = shmet_impl_initialise(seg, o);
			shmet_seg_lock(seg->fd, SHMET_LOCK_INIT, F_UNLCK);
			return rc;
		}
		if (shmet_now_ns() > deadline)
			return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON,
					       -ETIMEDOUT,
					       "segment %s was not initialised "
					       "in time", seg->name);
		shmet_impl_sleep_ms(1);
	}
}

/*
 * An existing segment is attached only if this user owns it and nobody
 * beyond the mode asked for may write it (as OpenSSH's StrictModes
 * checks): otherwise another local user who created the name first would
 * read and rewrite this process's metrics.
 */
static int
shmet_impl_check_owner(struct shmet_segment *seg, mode_t mode)
{
	struct stat st;
	int rc = 0;

	if (fstat(seg->fd, &st) < 0)
		rc = shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				     "cannot stat %s: %s", seg->name,
				     strerror(errno));
	else if (shmet_name_check_fd(seg->name, seg->fd) < 0)
		rc = shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EXDEV,
				     "segment %s is not a file on a tmpfs: "
				     "refusing to attach", seg->name);
	else if (st.st_uid != geteuid())
		rc = shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPERM,
				     "segment %s belongs to uid %u, not to "
				     "this user (uid %u): refusing to attach",
				     seg->name, (unsigned)st.st_uid,
				     (unsigned)geteuid());
	else if (st.st_mode & 0022 & ~mode)
		rc = shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPERM,
				     "segment %s has mode %04o, writable by "
				     "more users than mode %04o allows: "
				     "refusing to attach", seg->name,
				     (unsigned)(st.st_mode & 07777),
				     (unsigned)mode);
	if (rc < 0) {
		close(seg->fd);
		seg->fd = -1;
	}
	return rc;
}

static int
shmet_impl_open_fd(struct shmet_segment *seg, const struct shmet_options *o)
{
	mode_t mode = (mode_t)shmet_impl_opt(o->mode, SHMET_DEFAULT_MODE);

	for (int tries = 0; tries < 100; tries++) {
		if (!(o->flags & SHMET_OPEN_NO_CREATE)) {
			seg->fd = shmet_name_open(seg->name,
						  O_RDWR | O_CREAT | O_EXCL,
						  mode);
			if (seg->fd >= 0) {
				/* The umask must not narrow an explicit mode;
				 * a group lets e.g. an unprivileged exporter
				 * read the segment. */
				int bad = shmet_name_check_fd(seg->name,
							      seg->fd);

				if (bad < 0) {
					close(seg->fd);
					shmet_name_unlink(seg->name);
					seg->fd = -1;
					return shmet_impl_fail(
						seg, SHMET_IMPL_NO_REASON, bad,
						"segment %s is not a file on "
						"a tmpfs", seg->name);
				}
				if (fchmod(seg->fd, mode) < 0 ||
				    ((o->flags & SHMET_OPEN_SET_GROUP) &&
				     fchown(seg->fd, (uid_t)-1,
					    (gid_t)o->group) < 0)) {
					int rc = -errno;

					close(seg->fd);
					shmet_name_unlink(seg->name);
					seg->fd = -1;
					return shmet_impl_fail(
						seg, SHMET_IMPL_NO_REASON, rc,
						"cannot set mode or group of "
						"%s: %s", seg->name,
						strerror(-rc));
				}
				return 0;
			}
			if (errno != EEXIST)
				break;
		}
		seg->fd = shmet_name_open(seg->name, O_RDWR, 0);
		if (seg->fd >= 0)
			return shmet_impl_check_owner(seg, mode);
		if (errno != ENOENT || (o->flags & SHMET_OPEN_NO_CREATE))
			break;
		/* Unlinked between our two calls: try again. */
	}
	/* EINVAL: name.h found something other than a file (a FIFO
	 * anyone could have made in /dev/shm) */
	return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
			       "cannot open shared memory segment %s: %s",
			       seg->name, errno == EINVAL ? "not a regular file"
							  : strerror(errno));
}

/*
 * Open (creating it if needed) the claim file "<segment>.claim" that
 * arbitrates writer slots (lock.h).  Only this user may open it: its mode
 * is 0600 whatever the segment's, so readers of a group-readable segment
 * cannot lock its bytes.
 */
static int
shmet_impl_open_claim(struct shmet_segment *seg)
{
	char name[sizeof seg->name];
	size_t len = strlen(seg->name);
	struct stat st;

	if (len + sizeof SHMET_CLAIM_SUFFIX > sizeof name)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -ENAMETOOLONG,
				       "segment name %s is too long for its "
				       "claim file", seg->name);
	memcpy(name, seg->name, len);
	memcpy(name + len, SHMET_CLAIM_SUFFIX, sizeof SHMET_CLAIM_SUFFIX);
	seg->claim_fd = shmet_name_open(name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (seg->claim_fd < 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				       "cannot open the claim file %s: %s",
				       name, strerror(errno));
	if (fstat(seg->claim_fd, &st) < 0 || st.st_uid != geteuid() ||
	    (st.st_mode & 0077)) {
		close(seg->claim_fd);
		seg->claim_fd = -1;
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPERM,
				       "claim file %s must belong to this user "
				       "with mode 0600: refusing to attach",
				       name);
	}
	return 0;
}

static int
shmet_impl_map(struct shmet_segment *seg)
{
	struct stat st;
	uint64_t got, want;
	void *p;

	if (fstat(seg->fd, &st) < 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				       "cannot stat %s: %s", seg->name,
				       strerror(errno));
	if ((uint64_t)st.st_size < SHMET_HEADER_SIZE)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPROTO,
				       "%s is too small to be a segment",
				       seg->name);
	p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 seg->fd, 0);
	if (p == MAP_FAILED)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -errno,
				       "cannot map %s: %s", seg->name,
				       strerror(errno));
	seg->base = (unsigned char *)p;
	seg->size = (size_t)st.st_size;
	seg->hdr = (struct shmet_seg_header *)p;
	if (seg->hdr->magic != SHMET_MAGIC ||
	    seg->hdr->layout_version != SHMET_LAYOUT_VERSION ||
	    seg->hdr->header_size != SHMET_HEADER_SIZE ||
	    shmet_seg_geometry_mismatch(seg->hdr, &got, &want) ||
	    seg->hdr->total_size != (uint64_t)st.st_size) {
		uint32_t version = seg->hdr->layout_version;
		int ours = seg->hdr->magic == SHMET_MAGIC;

		munmap(p, seg->size);
		seg->base = NULL;
		seg->hdr = NULL;
		if (ours && version != SHMET_LAYOUT_VERSION)
			return shmet_impl_fail(
				seg, SHMET_IMPL_NO_REASON, -EPROTO,
				"%s has layout version %u; this writer speaks %u",
				seg->name, version, SHMET_LAYOUT_VERSION);
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPROTO,
				       ours ? "%s has an inconsistent header"
					    : "%s is not a shmetrics segment",
				       seg->name);
	}
	return 0;
}

/*
 * Tell readers that our block's first `bytes` are reserved: they read a
 * block only that far, so a scrape never touches (and so never allocates,
 * or faults on) a page no writer reserved.  The extent only grows; it
 * survives takeovers, as the pages do.  Release: pairs with the readers'
 * acquire load, after which the pages exist (fallocate has returned).
 */
static void
shmet_impl_publish_extent(struct shmet_segment *seg, uint32_t slot,
			  uint64_t bytes)
{
	SHMET_ATOMIC(uint64_t) *extent =
		slot < seg->hdr->max_writers
			? &shmet_impl_writers(seg)[slot].reserved_bytes
			: &seg->hdr->fallback_reserved_bytes;
	uint64_t cur = SHMET_AT(load_explicit)(extent, SHMET_MO(relaxed));

	while (cur < bytes &&
	       !SHMET_AT(compare_exchange_weak_explicit)(
		       extent, &cur, bytes, SHMET_MO(release),
		       SHMET_MO(relaxed)))
		;
}

/*
 * Reserve (fallocate) block slot's pages up to cell end (see initialise);
 * `reserved` is this process's note of how far that block is reserved.
 */
static int
shmet_impl_reserve_block(struct shmet_segment *seg, uint32_t slot,
			 SHMET_ATOMIC(uint64_t) *reserved, uint64_t end_cell)
{
	/* Relaxed: a process-local hint, see the CAS below. */
	uint64_t have = SHMET_AT(load_explicit)(reserved, SHMET_MO(relaxed));
	uint64_t want = shmet_seg_align(end_cell * 8, 65536);
	uint64_t block_off;
	int rc;

	if (end_cell * 8 <= have)
		return 0;
	if (want > seg->block_size)
		want = seg->block_size;
	block_off = seg->hdr->values_off + (uint64_t)slot *
					   seg->hdr->block_stride;
	rc = posix_fallocate(seg->fd, (off_t)(block_off + have),
			     (off_t)(want - have));
	if (rc != 0)
		return -rc;
	/* Relaxed: a process-local hint; racing threads only repeat work. */
	while (have < want &&
	       !SHMET_AT(compare_exchange_weak_explicit)(
		       reserved, &have, want, SHMET_MO(relaxed),
		       SHMET_MO(relaxed)))
		;
	shmet_impl_publish_extent(seg, slot, want);
	return 0;
}

/* Reserve the process block up to cell end. */
static int
shmet_impl_reserve(struct shmet_segment *seg, uint64_t end_cell)
{
	return shmet_impl_reserve_block(seg, seg->slot, &seg->reserved,
					end_cell);
}

/*
 * Fold a dead writer's gauge value (v, stamp) into the retired cells r by
 * the family's mode: sum adds, max and min keep the extreme, mostrecent
 * keeps the newer stamp.  Called with the retire lock held, so folds never
 * race each other; readers may load the two cells between our stores and
 * pair a value with its neighbour's stamp for one scrape, as with any
 * gauge.  Relaxed: see "Value cells".
 */
static void
shmet_impl_fold(shmet_impl_cell *r, uint32_t mode, double v, uint64_t stamp)
{
	uint64_t have = SHMET_AT(load_explicit)(&r[1], SHMET_MO(relaxed));
	double cur = shmet_impl_bitsd(
		SHMET_AT(load_explicit)(&r[0], SHMET_MO(relaxed)));
	double out = v;

	if (have && mode == SHMET_GAUGE_SUM)
		out = cur + v;
	else if (have && ((mode == SHMET_GAUGE_MAX && !(v > cur)) ||
			  (mode == SHMET_GAUGE_MIN && !(v < cur)) ||
			  (mode == SHMET_GAUGE_MOSTRECENT && stamp < have)))
		return;
	SHMET_AT(store_explicit)(&r[0], shmet_impl_dbits(out),
				 SHMET_MO(relaxed));
	if (stamp > have)
		SHMET_AT(store_explicit)(&r[1], stamp, SHMET_MO(relaxed));
}

/*
 * Takeover: our block belonged to a dead writer.  Its gauges of modes that
 * keep dead writers' values (format.h) are folded into the retired block,
 * so that a scrape shows the same before and after the takeover; then
 * every gauge cell of the block is zeroed for us.  The retire lock (on
 * the owner-only claim file) serialises folds of concurrent takeovers.
 * Async-signal-safe: the fork child claims slots too.
 */
static void
shmet_impl_reset_gauges(struct shmet_segment *seg, shmet_impl_cell *block,
			uint64_t reserved)
{
	const struct shmet_seg_header *h = seg->hdr;
	const struct shmet_seg_family *fams = shmet_impl_families(seg);
	const struct shmet_seg_series *series = shmet_impl_series_table(seg);
	uint64_t retired_off = h->values_off +
			       (uint64_t)shmet_seg_retired_block(h) *
				       h->block_stride;
	shmet_impl_cell *retired =
		(shmet_impl_cell *)(void *)(seg->base + retired_off);
	int lock_fd = seg->claim_fd >= 0 ? seg->claim_fd : seg->fd;
	struct flock fl;
	int locked = 0;
	/*
	 * Relaxed: records allocated after this load belong to registrations
	 * still running; their cells in our block are zero (never written by
	 * the dead owner), so they need no reset.  Every record is
	 * bounds-checked below.
	 */
	uint32_t nseries = SHMET_AT(load_explicit)(&seg->hdr->series_used,
						   SHMET_MO(relaxed));

	if (nseries > h->max_series)
		nseries = h->max_series;
	/*
	 * Reserve the retired cells up to what we reserved of our block
	 * (one call, before the lock), then take the retire lock: another
	 * takeover holds it only while it folds, but a stopped process could
	 * hold it forever, so wait at most about a second and fold nothing
	 * (counted) rather than block the application or a fork child.
	 */
	if (reserved > 0 &&
	    posix_fallocate(seg->fd, (off_t)retired_off, (off_t)reserved) == 0)
		for (int tries = 0; tries < 1000 && !locked; tries++) {
			locked = shmet_seg_lock_op(lock_fd, SHMET_LOCK_RETIRE,
						   F_WRLCK, F_OFD_SETLK,
						   &fl) == 0;
			if (!locked)
				shmet_impl_sleep_ms(1);
		}
	if (!locked && reserved > 0)
		shmet_impl_count(seg, SHMET_FAIL_NO_MEMORY);
	for (uint32_t i = 0; i < nseries; i++) {
		const struct shmet_seg_series *s = &series[i];
		uint32_t c = s->first_cell, mode;
		uint64_t stamp, bits;

		/* Cells past our reservation were never written: leave
		 * them alone (touching one would fault in a tmpfs page). */
		if (s->family >= h->max_families ||
		    fams[s->family].type != SHMET_TYPE_GAUGE ||
		    8ull * ((uint64_t)c + 2) > reserved)
			continue;
		mode = fams[s->family].gauge_mode;
		/*
		 * Relaxed: we own this block now ("Value cells").  The stamp
		 * is cleared before the fold, so a scrape running meanwhile
		 * sees the value in one place at most: never counted twice
		 * (it may miss it for that one scrape).
		 */
		stamp = SHMET_AT(exchange_explicit)(&block[c + 1], 0,
						    SHMET_MO(relaxed));
		bits = SHMET_AT(exchange_explicit)(&block[c], 0,
						   SHMET_MO(relaxed));
		if (locked && stamp && shmet_seg_gauge_mode_retires(mode))
			shmet_impl_fold(&retired[c], mode,
					shmet_impl_bitsd(bits), stamp);
	}
	if (locked)
		shmet_seg_lock_op(lock_fd, SHMET_LOCK_RETIRE, F_UNLCK,
				  F_OFD_SETLK, &fl);
}

/*
 * Map value block `slot` at seg->block (MAP_FIXED when remapping after a
 * fork, so every handle now points into the new block) and reserve the
 * pages of every cell allocated so far.
 */
static int
shmet_impl_map_block(struct shmet_segment *seg, uint32_t slot, int fixed)
{
	uint64_t off = seg->hdr->values_off +
		       (uint64_t)slot * seg->hdr->block_stride;
	/* Relaxed: a cursor; registrations after this reserve their own. */
	uint64_t want = shmet_seg_align(
		8ull * SHMET_AT(load_explicit)(&seg->hdr->cells_used,
					       SHMET_MO(relaxed)),
		65536);
	void *p;
	int rc;

	/*
	 * Reserve the block's pages first, by file offset: if tmpfs is full
	 * this fails before anything changed, and a fork child's handles
	 * keep writing where they did (never into a block it does not
	 * hold, never to an unreserved page).
	 */
	if (want > seg->hdr->block_stride)
		want = seg->hdr->block_stride;
	if (want > 0) {
		rc = posix_fallocate(seg->fd, (off_t)off, (off_t)want);
		if (rc != 0)
			return -rc;
	}
	p = mmap(fixed ? (void *)seg->block : NULL, (size_t)seg->hdr->block_stride,
		 PROT_READ | PROT_WRITE, MAP_SHARED | (fixed ? MAP_FIXED : 0),
		 seg->fd, (off_t)off);
	if (p == MAP_FAILED)
		return -errno;
	seg->block = (shmet_impl_cell *)p;
	seg->block_size = (size_t)seg->hdr->block_stride;
	seg->slot = slot;
	/* Relaxed: process-local, before any registration uses the block. */
	SHMET_AT(store_explicit)(&seg->reserved, want, SHMET_MO(relaxed));
	shmet_impl_publish_extent(seg, slot, want);
	return 0;
}

static void
shmet_impl_take_slot(struct shmet_segment *seg, uint32_t slot,
		     shmet_impl_cell *block, uint64_t reserved)
{
	struct shmet_seg_writer *w = &shmet_impl_writers(seg)[slot];
	uint64_t now = shmet_impl_clock_ns(CLOCK_REALTIME);

	/* Acquire: pairs with the previous owner's release of state. */
	if (SHMET_AT(load_explicit)(&w->state, SHMET_MO(acquire)) !=
	    SHMET_WRITER_UNUSED) {
		SHMET_AT(fetch_add_explicit)(&w->takeovers, 1,
					     SHMET_MO(relaxed));
		shmet_impl_reset_gauges(seg, block, reserved);
	}
	SHMET_AT(store_explicit)(&w->pid, (int64_t)getpid(), SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&w->claimed_ns, now, SHMET_MO(relaxed));
	SHMET_AT(store_explicit)(&w->last_gauge_ns, now, SHMET_MO(relaxed));
	/* Release: readers that see ACTIVE see the fields above. */
	SHMET_AT(store_explicit)(&w->state, SHMET_WRITER_ACTIVE,
				 SHMET_MO(release));
}

/*
 * Take (or retake) our slot's liveness lock on the segment file, where
 * readers look (lock.h).  A reader's read lock may stand in the way; we
 * keep the slot (the claim file decides that) and try again at the next
 * registration.  Async-signal-safe (the fork child calls it).
 */
static void
shmet_impl_hold_liveness(struct shmet_segment *seg)
{
	if (seg->slot >= seg->hdr->max_writers)
		return;
	/* Relaxed: a hint that only saves a syscall; fcntl is the truth. */
	SHMET_AT(store_explicit)(
		&seg->live_locked,
		seg->claim_fd < 0 ||
			shmet_seg_lock(seg->fd, SHMET_LOCK_SLOT(seg->slot),
				       F_WRLCK) == 0,
		SHMET_MO(relaxed));
}

/*
 * Claim the first slot whose OFD lock we can take (never used, released,
 * or its holder died), else the shared fallback block.  Returns the slot
 * (max_writers for the fallback block) or a negative errno, and formats
 * nothing: the fork child handler calls it too (see shmet_impl_after_fork).
 */
static int64_t
shmet_impl_claim(struct shmet_segment *seg, int fixed)
{
	uint32_t n = seg->hdr->max_writers;
	int rc;

	for (uint32_t i = 0; i < n; i++) {
		int claim = seg->claim_fd >= 0 ? seg->claim_fd : seg->fd;

		if (shmet_seg_lock(claim, SHMET_LOCK_SLOT(i), F_WRLCK) < 0)
			continue;
		/*
		 * A claim file deleted and recreated under running writers
		 * would let us win a slot someone holds: a live writer's
		 * liveness lock on the segment says so.
		 */
		if (seg->claim_fd >= 0 &&
		    shmet_seg_slot_held(seg->fd, i) == 1) {
			shmet_seg_lock(claim, SHMET_LOCK_SLOT(i), F_UNLCK);
			continue;
		}
		rc = shmet_impl_map_block(seg, i, fixed);
		if (rc < 0) {
			shmet_seg_lock(claim, SHMET_LOCK_SLOT(i), F_UNLCK);
			shmet_impl_count(seg, SHMET_FAIL_NO_MEMORY);
			return rc;
		}
		/* Relaxed: process-local; map_block reserved this far. */
		shmet_impl_take_slot(seg, i, seg->block,
				     SHMET_AT(load_explicit)(&seg->reserved,
							     SHMET_MO(relaxed)));
		shmet_impl_hold_liveness(seg);
		seg->owner_pid = getpid();
		return i;
	}
	rc = shmet_impl_map_block(seg, n, fixed);
	if (rc < 0) {
		shmet_impl_count(seg, SHMET_FAIL_NO_MEMORY);
		return rc;
	}
	/* Release: readers skip the fallback block until this count is
	 * non-zero (acquire), so it must be visible before our writes. */
	SHMET_AT(fetch_add_explicit)(&seg->hdr->failures[SHMET_FAIL_WRITERS_FULL],
				     1, SHMET_MO(release));
	return n;
}

/* shmet_open's claim: the same, with its outcome as a message. */
static int
shmet_impl_claim_reporting(struct shmet_segment *seg)
{
	int64_t slot = shmet_impl_claim(seg, 0);

	if (slot < 0)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, (int)slot,
				       "cannot map or reserve a writer block "
				       "of %s: %s", seg->name,
				       strerror((int)-slot));
	if (slot == seg->hdr->max_writers)
		shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, 0,
				"all %u writer slots of %s are held by live "
				"processes; writing to the shared fallback "
				"block", seg->hdr->max_writers, seg->name);
	return 0;
}

/* ---------------------------------------------------------------- */
/* Per-thread blocks (docs/DESIGN.md, "Threads")                    */

/* The hot path's thread-local entry (declared in inline-impl.h). */
#if defined(__GNUC__)
__thread struct shmet_impl_tls shmet_impl_tls
	__attribute__((tls_model("initial-exec"), visibility("default")));
#else
_Thread_local struct shmet_impl_tls shmet_impl_tls;
#endif

#define SHMET_IMPL_THREAD_SEGS 8        /* segments a thread counts in */
#define SHMET_IMPL_REC_NONE UINT32_MAX  /* shares the process block */
#define SHMET_IMPL_REC_PROC (UINT32_MAX - 1) /* counts in the process block */

/* A block a thread of this process counts in, other than the process's. */
struct shmet_impl_thr {
	shmet_impl_cell *block;         /* our mapping; NULL: record free */
	const void *owner;              /* the owner's shmet_impl_tstate */
	uint32_t slot;                  /* UINT32_MAX: maps the process block */
	int live;                       /* its liveness lock is held */
	SHMET_ATOMIC(uint64_t) reserved; /* bytes fallocated (as seg->reserved) */
};

/*
 * A segment's per-thread blocks.  The lock orders after the fork-list
 * lock; it guards the records and proc_owner, and is held across fork().
 */
struct shmet_impl_threads {
	pthread_mutex_t lock;
	const void *proc_owner;         /* the thread counting in seg->block */
	uint32_t count;                 /* shmet_impl_thread_cap() */
	struct shmet_impl_thr *rec;     /* count records */
	/* Bytes every thread block is reserved to: a registration whose
	 * cells end below needs no lock (see shmet_impl_reserve_threads). */
	SHMET_ATOMIC(uint64_t) covered;
};

/* A thread's view: one entry per segment it counts in. */
struct shmet_impl_tstate {
	int keyed;                      /* its pthread key value is set */
	struct {
		uint64_t key;           /* 0: entry free */
		uintptr_t delta;
		uint32_t rec;           /* index, or SHMET_IMPL_REC_* */
	} e[SHMET_IMPL_THREAD_SEGS];
};

static SHMET_THREAD_LOCAL struct shmet_impl_tstate shmet_impl_tstate;
static pthread_key_t shmet_impl_thread_key;
static pthread_once_t shmet_impl_thread_once = PTHREAD_ONCE_INIT;
static uint64_t shmet_impl_next_key;    /* under the fork-list lock */

/* The attached segment with this key; the fork-list lock is held. */
static struct shmet_segment *
shmet_impl_seg_by_key(uint64_t key)
{
	for (struct shmet_segment *s = shmet_impl_forklist.head; s; s = s->next)
		if (s->key == key)
			return s;
	return NULL;
}

/* 1 if our description already holds slot (OFD locks of one description
 * never conflict with each other, so the claim loop must skip these). */
static int
shmet_impl_slot_mine(const struct shmet_segment *seg, uint32_t slot)
{
	const struct shmet_impl_threads *t = seg->threads;

	if (slot == seg->slot)
		return 1;
	for (uint32_t i = 0; i < t->count; i++)
		if (t->rec[i].block && t->rec[i].slot == slot)
			return 1;
	return 0;
}

/*
 * Claim a free writer slot for record r, map its block (at r->block when
 * fixed: the fork child keeps the address every delta points to) and
 * reserve it up to every cell allocated so far, before the thread can
 * write there.  The threads lock is held.  Async-signal-safe: open-coded
 * like shmet_impl_claim, which the fork child also runs.
 */
static int
shmet_impl_thread_claim(struct shmet_segment *seg, struct shmet_impl_thr *r,
			int fixed)
{
	const struct shmet_seg_header *h = seg->hdr;
	int claim = seg->claim_fd >= 0 ? seg->claim_fd : seg->fd;

	for (uint32_t i = 0; i < h->max_writers; i++) {
		void *p;
		int rc;

		if (shmet_impl_slot_mine(seg, i) ||
		    shmet_seg_lock(claim, SHMET_LOCK_SLOT(i), F_WRLCK) < 0)
			continue;
		p = mmap(fixed ? (void *)r->block : NULL,
			 (size_t)h->block_stride, PROT_READ | PROT_WRITE,
			 MAP_SHARED | (fixed ? MAP_FIXED : 0), seg->fd,
			 (off_t)(h->values_off + (uint64_t)i * h->block_stride));
		if (p == MAP_FAILED) {
			rc = -errno;
			shmet_seg_lock(claim, SHMET_LOCK_SLOT(i), F_UNLCK);
			return rc;
		}
		/* Relaxed: process-local, under the threads lock. */
		SHMET_AT(store_explicit)(&r->reserved, 0, SHMET_MO(relaxed));
		/*
		 * Registrations must take the lock until this block is
		 * reserved: clear `covered` before reading cells_used, both
		 * seq_cst (the other half of the Dekker pair in
		 * shmet_impl_reserve_threads); the next registration that
		 * takes the lock recomputes it.
		 */
		SHMET_AT(store_explicit)(&seg->threads->covered, 0,
					 SHMET_MO(seq_cst));
		/* Seq_cst cells_used: the Dekker pair above; a registration
		 * that allocates beyond it sees covered = 0 and reserves our
		 * block itself (reserve_threads), after the lock we hold. */
		rc = shmet_impl_reserve_block(
			seg, i, &r->reserved,
			SHMET_AT(load_explicit)(&h->cells_used,
						SHMET_MO(seq_cst)));
		if (rc < 0) {
			if (!fixed)
				munmap(p, (size_t)h->block_stride);
			shmet_seg_lock(claim, SHMET_LOCK_SLOT(i), F_UNLCK);
			return rc;
		}
		r->block = (shmet_impl_cell *)p;
		r->slot = i;
		/* Relaxed: process-local, under the threads lock. */
		shmet_impl_take_slot(seg, i, r->block,
				     SHMET_AT(load_explicit)(&r->reserved,
							     SHMET_MO(relaxed)));
		r->live = seg->claim_fd < 0 ||
			  shmet_seg_lock(seg->fd, SHMET_LOCK_SLOT(i),
					 F_WRLCK) == 0;
		return 0;
	}
	return -ENOSPC;
}

/* Give r's slot back (state RELEASED, locks dropped); its counts stay
 * for the reader and for the next owner, as a dead writer's do. */
static void
shmet_impl_thread_release(struct shmet_segment *seg, struct shmet_impl_thr *r)
{
	if (r->slot >= seg->hdr->max_writers)
		return;
	/* Release: pairs with the acquire in take_slot and readers. */
	SHMET_AT(store_explicit)(&shmet_impl_writers(seg)[r->slot].state,
				 SHMET_WRITER_RELEASED, SHMET_MO(release));
	if (seg->claim_fd >= 0) {
		shmet_seg_lock(seg->fd, SHMET_LOCK_SLOT(r->slot), F_UNLCK);
		shmet_seg_lock(seg->claim_fd, SHMET_LOCK_SLOT(r->slot),
			       F_UNLCK);
	} else {
		shmet_seg_lock(seg->fd, SHMET_LOCK_SLOT(r->slot), F_UNLCK);
	}
	r->slot = UINT32_MAX;
}

/*
 * Point r's mapping at the process block: its thread keeps its delta and
 * now shares the process block (atomic, correct, as before threads had
 * blocks).  Used when r's own block cannot be reserved or claimed.
 */
static void
shmet_impl_thread_demote(struct shmet_segment *seg, struct shmet_impl_thr *r)
{
	const struct shmet_seg_header *h = seg->hdr;

	if (mmap((void *)r->block, (size_t)h->block_stride,
		 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, seg->fd,
		 (off_t)(h->values_off + (uint64_t)seg->slot *
					 h->block_stride)) == MAP_FAILED)
		/* Counts are lost, the process is not. */
		mmap((void *)r->block, (size_t)h->block_stride,
		     PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		     -1, 0);
	shmet_impl_count(seg, SHMET_FAIL_NO_MEMORY);
}

/*
 * A registration made cells up to end_cell usable: reserve them in every
 * thread block of this process before its handle is returned (a write to
 * an unreserved tmpfs page is SIGBUS).  A block that cannot grow is
 * demoted to the process block, whose reservation already succeeded.
 */
static void
shmet_impl_reserve_threads(struct shmet_segment *seg, uint64_t end_cell)
{
	struct shmet_impl_threads *t = seg->threads;
	uint64_t covered = UINT64_MAX;

	if (!t)
		return;
	/*
	 * Fast path: every thread block already covers our cells.  Our cell
	 * allocation (a seq_cst RMW of cells_used) and this seq_cst load
	 * pair with a claiming thread's seq_cst clear of `covered` and its
	 * seq_cst load of cells_used (shmet_impl_thread_claim): in the single
	 * order of seq_cst operations, either that thread reads our cells
	 * and reserves past them, or we read its clear and take the lock
	 * (Dekker).  No fences: TSan does not model them.
	 */
	if (8 * end_cell <= SHMET_AT(load_explicit)(&t->covered,
						    SHMET_MO(seq_cst)))
		return;
	pthread_mutex_lock(&t->lock);
	for (uint32_t i = 0; i < t->count; i++) {
		struct shmet_impl_thr *r = &t->rec[i];

		if (!r->block || r->slot >= seg->hdr->max_writers)
			continue;
		if (!r->live)
			r->live = shmet_seg_lock(seg->fd, SHMET_LOCK_SLOT(r->slot),
						 F_WRLCK) == 0;
		if (shmet_impl_reserve_block(seg, r->slot, &r->reserved,
					     end_cell) < 0) {
			shmet_impl_thread_demote(seg, r);
			shmet_impl_thread_release(seg, r);
			continue;
		}
		/* Relaxed: process-local, under the threads lock. */
		if (SHMET_AT(load_explicit)(&r->reserved, SHMET_MO(relaxed)) <
		    covered)
			covered = SHMET_AT(load_explicit)(&r->reserved,
							  SHMET_MO(relaxed));
	}
	/* Relaxed: read only as a hint under the fence above; the lock
	 * orders it against claims. */
	SHMET_AT(store_explicit)(&t->covered, covered, SHMET_MO(relaxed));
	pthread_mutex_unlock(&t->lock);
}

/* Drop this thread's hold on seg (entry e); the threads lock is held. */
static void
shmet_impl_thread_detach(struct shmet_segment *seg,
			 const struct shmet_impl_tstate *ts, uint32_t rec)
{
	struct shmet_impl_threads *t = seg->threads;
	struct shmet_impl_thr *r;

	if (rec == SHMET_IMPL_REC_PROC && t->proc_owner == ts)
		t->proc_owner = NULL;
	if (rec >= t->count)
		return;
	r = &t->rec[rec];
	if (!r->block || r->owner != ts)
		return;
	shmet_impl_thread_release(seg, r);
	munmap((void *)r->block, (size_t)seg->hdr->block_stride);
	r->block = NULL;
	r->owner = NULL;
}

/* pthread key destructor: the thread exits, its slots go back. */
static void
shmet_impl_thread_exit(void *arg)
{
	struct shmet_impl_tstate *ts = (struct shmet_impl_tstate *)arg;
	sigset_t all, old;

	/*
	 * No signal handler of this thread may count while its blocks are
	 * torn down: its entries would still point at a block being
	 * unmapped, and it would re-enter the locks held here.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	shmet_impl_tls.key = 0;
	shmet_impl_tls.delta = 0;
	pthread_mutex_lock(&shmet_impl_forklist.lock);
	for (int i = 0; i < SHMET_IMPL_THREAD_SEGS; i++) {
		struct shmet_segment *seg;

		if (!ts->e[i].key)
			continue;
		seg = shmet_impl_seg_by_key(ts->e[i].key);
		if (seg && seg->threads) {
			pthread_mutex_lock(&seg->threads->lock);
			shmet_impl_thread_detach(seg, ts, ts->e[i].rec);
			pthread_mutex_unlock(&seg->threads->lock);
		}
		ts->e[i].key = 0;
	}
	pthread_mutex_unlock(&shmet_impl_forklist.lock);
	ts->keyed = 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void
shmet_impl_thread_key_create(void)
{
	if (pthread_key_create(&shmet_impl_thread_key,
			       shmet_impl_thread_exit) != 0)
		shmet_impl_thread_key = (pthread_key_t)-1;
}

/*
 * The calling thread's first counting write to segment `key`: take the
 * process block if no thread counts there, else claim a block of its own;
 * with neither (none free, or the process's cap reached), share the
 * process block.  Returns the new entry, or -1 (segment closed, too many
 * segments, or no thread blocks): write the process cell.
 */
static int
shmet_impl_thread_attach(uint64_t key)
{
	struct shmet_impl_tstate *ts = &shmet_impl_tstate;
	struct shmet_segment *seg;
	struct shmet_impl_threads *t;
	int e = -1;

	/*
	 * Never wait here: this runs inside a hot-path call, perhaps from a
	 * signal handler that interrupted this very thread while it held
	 * these locks (a wait would never end).  Busy: -2, and the write
	 * goes to the process cell; the next write tries again.
	 */
	if (pthread_mutex_trylock(&shmet_impl_forklist.lock) != 0)
		return -2;
	seg = shmet_impl_seg_by_key(key);
	/* a free entry, or one of a segment closed since */
	for (int i = 0; seg && i < SHMET_IMPL_THREAD_SEGS && e < 0; i++)
		if (!ts->e[i].key || !shmet_impl_seg_by_key(ts->e[i].key))
			e = i;
	if (!seg || !seg->threads || e < 0) {
		pthread_mutex_unlock(&shmet_impl_forklist.lock);
		return -1;
	}
	t = seg->threads;
	if (pthread_mutex_trylock(&t->lock) != 0) {
		pthread_mutex_unlock(&shmet_impl_forklist.lock);
		return -2;
	}
	ts->e[e].key = key;
	ts->e[e].delta = 0;
	ts->e[e].rec = SHMET_IMPL_REC_NONE;
	if (!t->proc_owner) {
		t->proc_owner = ts;
		ts->e[e].rec = SHMET_IMPL_REC_PROC;
	} else {
		for (uint32_t i = 0; i < t->count; i++) {
			struct shmet_impl_thr *r = &t->rec[i];

			if (r->block)
				continue;
			if (shmet_impl_thread_claim(seg, r, 0) == 0) {
				r->owner = ts;
				ts->e[e].rec = i;
				ts->e[e].delta = (uintptr_t)r->block -
						 (uintptr_t)seg->block;
			}
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	pthread_mutex_unlock(&shmet_impl_forklist.lock);
	if (!ts->keyed) {
		pthread_once(&shmet_impl_thread_once,
			     shmet_impl_thread_key_create);
		ts->keyed = pthread_setspecific(shmet_impl_thread_key, ts) == 0;
	}
	return e;
}

/*
 * Point the hot path's entry at (key, delta).  A signal handler may run
 * between any two stores and count through the entry: the key is cleared
 * first and set last, so the handler never pairs a key with another
 * segment's delta (signal fences: the compiler keeps this order).
 */
static void
shmet_impl_tls_set(uint64_t key, uintptr_t delta)
{
	shmet_impl_tls.key = 0;
	atomic_signal_fence(memory_order_seq_cst);
	shmet_impl_tls.delta = delta;
	atomic_signal_fence(memory_order_seq_cst);
	shmet_impl_tls.key = key;
}

/* The hot path's slow call; errno is kept, as a signal handler that
 * counts must leave it (the interrupted code may be about to read it). */
static shmet_impl_acell *
shmet_impl_thread_cell_keep(shmet_impl_acell *cell, uint64_t key);

shmet_impl_acell *
shmet_impl_thread_cell(shmet_impl_acell *cell, uint64_t key)
{
	int saved = errno;
	shmet_impl_acell *c = shmet_impl_thread_cell_keep(cell, key);

	errno = saved;
	return c;
}

static shmet_impl_acell *
shmet_impl_thread_cell_keep(shmet_impl_acell *cell, uint64_t key)
{
	struct shmet_impl_tstate *ts = &shmet_impl_tstate;
	int e = -1;

	if (key == 0)
		return cell;    /* a failed handle: its scratch cells */
	for (int i = 0; i < SHMET_IMPL_THREAD_SEGS && e < 0; i++)
		if (ts->e[i].key == key)
			e = i;
	if (e < 0)
		e = shmet_impl_thread_attach(key);
	if (e == -2)
		return cell;    /* locks busy: this write only */
	if (e < 0) {
		/*
		 * No entry (a thread in more than SHMET_IMPL_THREAD_SEGS
		 * segments, or a segment without thread blocks): cache a
		 * zero delta, so this thread's next writes here stay on the
		 * inline path and go to the process cells.
		 */
		shmet_impl_tls_set(key, 0);
		return cell;
	}
	shmet_impl_tls_set(key, ts->e[e].delta);
	return (SHMET_ATOMIC(uint64_t) *)((uintptr_t)cell + ts->e[e].delta);
}

/*
 * Fork child, after the process block moved to the child's own slot: the
 * forking thread (the child's only one) gets a slot of its own at the
 * same address, so its delta holds; the other threads' blocks belong to
 * the parent, and are unmapped.  Async-signal-safe.
 */
static void
shmet_impl_threads_after_fork(struct shmet_segment *seg)
{
	struct shmet_impl_threads *t = seg->threads;
	const void *me = &shmet_impl_tstate;

	if (t->proc_owner != me)
		t->proc_owner = NULL;
	for (uint32_t i = 0; i < t->count; i++) {
		struct shmet_impl_thr *r = &t->rec[i];

		if (!r->block)
			continue;
		if (r->owner != me) {
			munmap((void *)r->block, (size_t)seg->hdr->block_stride);
			r->block = NULL;
			r->owner = NULL;
			continue;
		}
		r->slot = UINT32_MAX;   /* the parent's; not ours */
		if (shmet_impl_thread_claim(seg, r, 1) < 0)
			shmet_impl_thread_demote(seg, r);
	}
}

/* Close: every thread block goes back; mappings become zero pages, so a
 * thread that still writes records nothing and cannot fault. */
static void
shmet_impl_threads_free(struct shmet_segment *seg)
{
	struct shmet_impl_threads *t = seg->threads;

	if (!t)
		return;
	for (uint32_t i = 0; i < t->count; i++) {
		struct shmet_impl_thr *r = &t->rec[i];

		if (!r->block)
			continue;
		shmet_impl_thread_release(seg, r);
		mmap((void *)r->block, (size_t)seg->hdr->block_stride,
		     PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		     -1, 0);
	}
	pthread_mutex_destroy(&t->lock);
	free(t->rec);
	free(t);
	seg->threads = NULL;
}

/*
 * The writer slots this process's threads may hold beyond the process's
 * own.  Threads that count at the same time contend only while they run
 * at once, so more blocks than online CPUs buy little; and every slot a
 * thread holds is one a new process cannot have (it would count in the
 * fallback block and lose its gauges), so one process takes at most an
 * eighth of the slots.  Threads beyond the cap share the process block.
 */
static uint32_t
shmet_impl_thread_cap(const struct shmet_segment *seg,
		      const struct shmet_options *o)
{
	uint32_t share = seg->hdr->max_writers / 8;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (o->flags & SHMET_OPEN_ONE_BLOCK)
		return 0;
	if (o->max_thread_blocks)
		return o->max_thread_blocks < seg->hdr->max_writers
			       ? o->max_thread_blocks
			       : seg->hdr->max_writers;
	if (share == 0)
		share = 1;
	return cpus > 0 && (unsigned long)cpus < share ? (uint32_t)cpus
						       : share;
}

static void
shmet_impl_threads_new(struct shmet_segment *seg, uint32_t cap)
{
	struct shmet_impl_threads *t;

	if (cap == 0)
		return;         /* every thread shares the process block */
	t = (struct shmet_impl_threads *)calloc(1, sizeof *t);
	if (t)
		t->rec = (struct shmet_impl_thr *)calloc(cap, sizeof *t->rec);
	if (!t || !t->rec || pthread_mutex_init(&t->lock, NULL) != 0) {
		if (t)
			free(t->rec);
		free(t);
		return;
	}
	t->count = cap;
	seg->threads = t;
}

static void
shmet_impl_fork_prepare(void)
{
	pthread_mutex_lock(&shmet_impl_forklist.lock);
	for (struct shmet_segment *s = shmet_impl_forklist.head; s; s = s->next)
		if (s->threads)
			pthread_mutex_lock(&s->threads->lock);
}

static void
shmet_impl_fork_parent(void)
{
	for (struct shmet_segment *s = shmet_impl_forklist.head; s; s = s->next)
		if (s->threads)
			pthread_mutex_unlock(&s->threads->lock);
	pthread_mutex_unlock(&shmet_impl_forklist.lock);
}

/* Format "/proc/self/fd/N" without stdio (we run in a fork child). */
static void
shmet_impl_fd_path(char *buf, int fd)
{
	static const char prefix[] = "/proc/self/fd/";
	char digits[16];
	int n = 0;

	do {
		digits[n++] = (char)('0' + fd % 10);
		fd /= 10;
	} while (fd > 0 && n < 15);
	memcpy(buf, prefix, sizeof prefix - 1);
	buf += sizeof prefix - 1;
	while (n > 0)
		*buf++ = digits[--n];
	*buf = '\0';
}

/*
 * In a fork child: our fd shares the parent's open file description and so
 * its slot lock.  Open a description of our own, claim a slot with it and
 * remap our block in place, so every handle the child inherited now writes
 * to the child's block.  On failure the child keeps writing into the
 * parent's block: attribution is wrong, totals stay right (the failure is
 * counted in the segment).
 *
 * A child of a multi-threaded parent may only make async-signal-safe calls
 * until it execs: this path uses open, fcntl, mmap, fallocate, getpid,
 * clock_gettime, close and plain memory (no stdio, no malloc, no
 * strerror); no message is formatted.
 */
static int
shmet_impl_after_fork(struct shmet_segment *seg)
{
	char path[48];
	int old = seg->fd, old_claim = seg->claim_fd, fd, claim = -1;

	if (!seg->attached || !seg->block)
		return -1;
	/*
	 * The spare records (and their try-lock, which a parent thread may
	 * have held at fork time) are the parent's: a child reusing them
	 * would fill the records the parent fills, twice published.  The
	 * child starts without; it leaks at most what the parent kept.
	 */
	seg->spare_series = UINT32_MAX;
	seg->spare_family = UINT32_MAX;
	SHMET_AT(store_explicit)(&seg->spare_busy, 0, SHMET_MO(relaxed));
	shmet_impl_fd_path(path, old);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0 && old_claim >= 0) {
		shmet_impl_fd_path(path, old_claim);
		claim = open(path, O_RDWR | O_CLOEXEC);
	}
	if (fd < 0 || (old_claim >= 0 && claim < 0)) {
		if (fd >= 0)
			close(fd);
		shmet_impl_count(seg, SHMET_FAIL_NO_MEMORY);
		return -1;
	}
	seg->fd = fd;
	seg->claim_fd = claim;
	if (shmet_impl_claim(seg, 1) < 0) {
		seg->fd = old;
		seg->claim_fd = old_claim;
		close(fd);
		if (claim >= 0)
			close(claim);
		return -1;
	}
	close(old);
	if (old_claim >= 0)
		close(old_claim);
	return 0;
}

static void
shmet_impl_fork_child(void)
{
	for (struct shmet_segment *s = shmet_impl_forklist.head; s; s = s->next) {
		/* If the process block stayed the parent's, so do the thread
		 * blocks: our description still holds the parent's locks. */
		if (shmet_impl_after_fork(s) == 0 && s->threads)
			shmet_impl_threads_after_fork(s);
		if (s->threads)
			pthread_mutex_unlock(&s->threads->lock);
	}
	pthread_mutex_unlock(&shmet_impl_forklist.lock);
}

static void
shmet_impl_forklist_add(struct shmet_segment *seg)
{
	pthread_mutex_lock(&shmet_impl_forklist.lock);
	if (!shmet_impl_forklist.registered &&
	    pthread_atfork(shmet_impl_fork_prepare, shmet_impl_fork_parent,
			   shmet_impl_fork_child) == 0)
		shmet_impl_forklist.registered = 1;
	/* Keys are never reused, so a thread's cached entry for a closed
	 * segment can never match a new one. */
	seg->key = seg->threads ? ++shmet_impl_next_key : 0;
	seg->next = shmet_impl_forklist.head;
	shmet_impl_forklist.head = seg;
	pthread_mutex_unlock(&shmet_impl_forklist.lock);
}

static void
shmet_impl_forklist_remove(struct shmet_segment *seg)
{
	pthread_mutex_lock(&shmet_impl_forklist.lock);
	for (struct shmet_segment **p = &shmet_impl_forklist.head; *p;
	     p = &(*p)->next) {
		if (*p == seg) {
			*p = seg->next;
			break;
		}
	}
	pthread_mutex_unlock(&shmet_impl_forklist.lock);
}

int
shmet_open(struct shmet_segment *seg, const struct shmet_options *opts)
{
	struct shmet_options none;
	int rc;

	memset(&none, 0, sizeof none);
	if (!opts)
		opts = &none;
	memset((void *)seg, 0, sizeof *seg);
	seg->fd = -1;
	seg->claim_fd = -1;
	seg->slot = UINT32_MAX;
	seg->spare_series = UINT32_MAX;
	seg->spare_family = UINT32_MAX;
	seg->flags = opts->flags;
	rc = shmet_impl_resolve_name(seg, opts->name);
	if (rc == 0)
		rc = shmet_impl_open_fd(seg, opts);
	if (rc == 0)
		rc = shmet_impl_wait_ready(seg, opts);
	if (rc == 0)
		rc = shmet_impl_map(seg);
	/* even without a slot: the creator makes the claim file before any
	 * other user could take the name */
	if (rc == 0)
		rc = shmet_impl_open_claim(seg);
	if (rc == 0 && !(opts->flags & SHMET_OPEN_NO_WRITER)) {
		/* attached first so that a fallback warning is counted, and
		 * on the fork list before it has a block: a fork in between
		 * gives the child a slot of its own too */
		seg->attached = 1;
		/* before its key is given */
		shmet_impl_threads_new(seg, shmet_impl_thread_cap(seg, opts));
		shmet_impl_forklist_add(seg);
		rc = shmet_impl_claim_reporting(seg);
		if (rc < 0) {
			shmet_impl_forklist_remove(seg);
			shmet_impl_threads_free(seg);
		}
	}
	if (rc < 0) {
		if (seg->base)
			munmap(seg->base, seg->size);
		if (seg->fd >= 0)
			close(seg->fd);
		if (seg->claim_fd >= 0)
			close(seg->claim_fd);
		seg->claim_fd = -1;
		seg->base = NULL;
		seg->hdr = NULL;
		seg->fd = -1;
		seg->attached = 0;
		return rc;
	}
	if (!seg->attached)
		shmet_impl_forklist_add(seg);
	seg->attached = 1;
	return 0;
}

void
shmet_close(struct shmet_segment *seg)
{
	if (!seg->attached)
		return;
	shmet_impl_forklist_remove(seg);
	/* No thread can find seg any more (attach and thread exit look it
	 * up under the fork-list lock). */
	shmet_impl_threads_free(seg);
	/* Only the process that took the slot releases it: a fork child
	 * whose own claim failed still points at its parent's slot. */
	if (seg->block && seg->slot < seg->hdr->max_writers &&
	    seg->owner_pid == getpid())
		/* Release: pairs with the acquire in take_slot and readers. */
		SHMET_AT(store_explicit)(
			&shmet_impl_writers(seg)[seg->slot].state,
			SHMET_WRITER_RELEASED, SHMET_MO(release));
	/*
	 * Replace both mappings with private zero pages rather than unmapping
	 * them: handles the application still holds stay safe and record
	 * nothing.
	 */
	if (seg->block)
		mmap((void *)seg->block, seg->block_size,
		     PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		     -1, 0);
	mmap(seg->base, seg->size, PROT_READ | PROT_WRITE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
	close(seg->fd);                 /* drops the liveness lock */
	if (seg->claim_fd >= 0)
		close(seg->claim_fd);   /* drops the claim */
	seg->fd = -1;
	seg->claim_fd = -1;
	seg->attached = 0;
}

int
shmet_unlink(const char *name)
{
	struct shmet_segment tmp;
	int rc;

	memset((void *)&tmp, 0, sizeof tmp);
	rc = shmet_impl_resolve_name(&tmp, name);
	if (rc < 0)
		return rc;
	rc = shmet_name_unlink(tmp.name) < 0 ? -errno : 0;
	if (strlen(tmp.name) + sizeof SHMET_CLAIM_SUFFIX <= sizeof tmp.name) {
		strcat(tmp.name, SHMET_CLAIM_SUFFIX);
		shmet_name_unlink(tmp.name);    /* may not exist: writers make it */
	}
	return rc;
}

/* ---------------------------------------------------------------- */
/* Validation                                                       */

static size_t
shmet_impl_strlen0(const char *s)
{
	return s ? strlen(s) : 0;
}

static int
shmet_impl_validate_desc(struct shmet_segment *seg,
			 const struct shmet_family_desc *d)
{
	const char *name = d->name ? d->name : "(null)";
	size_t name_len = shmet_impl_strlen0(d->name);
	int bad;

	if (!shmet_seg_metric_name_valid(d->name, name_len))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_NAME, -EINVAL,
				       "invalid metric name '%.200s': must match "
				       "[a-zA-Z_:][a-zA-Z0-9_:]* (at most %u "
				       "characters)", name, SHMET_MAX_NAME_LEN);
	if (!shmet_seg_type_valid(d->type))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_NAME, -EINVAL,
				       "%s: unknown metric type %u", name,
				       d->type);
	if (shmet_impl_strlen0(d->help) > SHMET_MAX_HELP_LEN)
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_NAME, -EINVAL,
				       "%s: help longer than %u bytes", name,
				       SHMET_MAX_HELP_LEN);
	if (shmet_impl_strlen0(d->unit) > SHMET_MAX_NAME_LEN ||
	    !shmet_seg_unit_valid(d->name, name_len, d->unit,
				  shmet_impl_strlen0(d->unit), d->type))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_NAME, -EINVAL,
				       "%s: unit '%.64s' must be a valid name "
				       "that the metric name ends with", name,
				       d->unit);
	if (d->type == SHMET_TYPE_GAUGE && d->gauge_mode != 0 &&
	    !shmet_seg_gauge_mode_valid(d->gauge_mode))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_NAME, -EINVAL,
				       "%s: unknown gauge mode %u", name,
				       d->gauge_mode);
	if (d->label_count > SHMET_MAX_LABELS ||
	    (d->label_count > 0 && !d->label_names))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_LABELS, -EINVAL,
				       "%s: at most %u label names", name,
				       SHMET_MAX_LABELS);
	for (uint32_t i = 0; i < d->label_count; i++) {
		const char *l = d->label_names[i];
		size_t len = shmet_impl_strlen0(l);

		if (!shmet_seg_label_name_valid(l, len))
			return shmet_impl_fail(
				seg, SHMET_FAIL_INVALID_LABELS, -EINVAL,
				"%s: invalid label name '%.200s': must match "
				"[a-zA-Z_][a-zA-Z0-9_]* and not start with __",
				name, l ? l : "(null)");
		if (shmet_seg_label_name_reserved(d->type, d->gauge_mode, l,
						  len))
			return shmet_impl_fail(seg, SHMET_FAIL_INVALID_LABELS,
					       -EINVAL,
					       "%s: label name '%s' is reserved",
					       name, l);
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(l, d->label_names[j]) == 0)
				return shmet_impl_fail(
					seg, SHMET_FAIL_INVALID_LABELS, -EINVAL,
					"%s: duplicate label name '%s'", name,
					l);
	}
	if (d->type != SHMET_TYPE_HISTOGRAM)
		return 0;
	bad = shmet_seg_bounds_check(d->bounds, d->bound_count);
	if (bad == -2)
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_BUCKETS, -EINVAL,
				       "%s: a histogram needs 1 to %u bucket "
				       "bounds", name, SHMET_MAX_BOUNDS);
	if (bad >= 0)
		return shmet_impl_fail(
			seg, SHMET_FAIL_INVALID_BUCKETS, -EINVAL,
			"%s: bucket bounds must be finite and strictly "
			"increasing (bound %d is %g)", name, bad,
			d->bounds[bad]);
	return 0;
}

/* ---------------------------------------------------------------- */
/* Label blobs: label_count entries of {uint16 length, bytes}.      */

static int
shmet_impl_blob_equals(const struct shmet_segment *seg, struct shmet_seg_str s,
		       uint32_t n, const char *const *strs, const size_t *lens)
{
	const unsigned char *p = shmet_impl_str(seg, s), *end, *v;
	uint32_t len;

	if (!p || s.len != shmet_seg_blob_size(n, lens))
		return 0;
	end = p + s.len;
	for (uint32_t i = 0; i < n; i++)
		if (!shmet_seg_blob_next(&p, end, &v, &len) ||
		    len != lens[i] || memcmp(v, strs[i], len) != 0)
			return 0;
	return 1;
}

/* Copy a blob into the pool; -1 if the pool is full. */
static int
shmet_impl_put_blob(struct shmet_segment *seg, uint32_t n,
		    const char *const *strs, const size_t *lens,
		    struct shmet_seg_str *out)
{
	uint32_t size = shmet_seg_blob_size(n, lens), off = 0;

	if (size > 0 && shmet_impl_alloc(&seg->hdr->strings_used,
					 seg->hdr->string_bytes, size, 1,
					 &off) < 0)
		return -1;
	shmet_seg_blob_write(shmet_impl_pool(seg) + off, n, strs, lens);
	out->off = off;
	out->len = size;
	return 0;
}

/* Copy n bytes to p (pool offset *off) as string *out; the next p. */
static unsigned char *
shmet_impl_carve(struct shmet_seg_str *out, unsigned char *p, uint32_t *off,
		 const void *src, size_t n)
{
	out->off = *off;
	out->len = (uint32_t)n;
	if (n > 0)
		memcpy(p, src, n);
	*off += (uint32_t)n;
	return p + n;
}

static int
shmet_impl_str_equals(const struct shmet_segment *seg, struct shmet_seg_str s,
		      const void *b, size_t len)
{
	const unsigned char *p = shmet_impl_str(seg, s);

	return p && s.len == len && memcmp(p, b, len) == 0;
}

/* ---------------------------------------------------------------- */
/* Families                                                         */

static void
shmet_impl_failed_family(struct shmet_segment *seg, struct shmet_family *f,
			 int rc)
{
	memset(f, 0, sizeof *f);
	f->seg = seg;
	f->id = UINT32_MAX;
	f->error = rc;
}

static int
shmet_impl_label_lens(uint32_t n, const char *const *strs, size_t *lens)
{
	for (uint32_t i = 0; i < n; i++) {
		if (!strs[i])
			return -1;
		lens[i] = strlen(strs[i]);
		if (lens[i] > SHMET_MAX_LABEL_VALUE_LEN)
			return -1;
	}
	return 0;
}

static int
shmet_impl_same_shape(const struct shmet_segment *seg,
		      const struct shmet_seg_family *r,
		      const struct shmet_family_desc *d, uint32_t mode,
		      const size_t *lens)
{
	const char *unit = d->unit ? d->unit : "";

	return r->type == d->type && r->gauge_mode == mode &&
	       r->label_count == d->label_count &&
	       r->bound_count == (d->type == SHMET_TYPE_HISTOGRAM ?
					  d->bound_count : 0) &&
	       shmet_impl_str_equals(seg, r->unit, unit, strlen(unit)) &&
	       shmet_impl_blob_equals(seg, r->label_names, d->label_count,
				      d->label_names, lens) &&
	       (d->type != SHMET_TYPE_HISTOGRAM ||
		shmet_impl_str_equals(seg, r->bounds, d->bounds,
				      8u * d->bound_count));
}

static int
shmet_impl_spare_lock(struct shmet_segment *seg)
{
	int expected = 0;

	/* Acquire/release: the spare fields are handed between threads. */
	return SHMET_AT(compare_exchange_strong_explicit)(
		&seg->spare_busy, &expected, 1, SHMET_MO(acquire),
		SHMET_MO(relaxed));
}

static void
shmet_impl_spare_unlock(struct shmet_segment *seg)
{
	SHMET_AT(store_explicit)(&seg->spare_busy, 0, SHMET_MO(release));
}

/* Take the spare family record, or UINT32_MAX. */
static uint32_t
shmet_impl_take_spare_family(struct shmet_segment *seg)
{
	uint32_t id = UINT32_MAX;

	if (shmet_impl_spare_lock(seg)) {
		id = seg->spare_family;
		seg->spare_family = UINT32_MAX;
		shmet_impl_spare_unlock(seg);
	}
	return id;
}

static void
shmet_impl_keep_spare_family(struct shmet_segment *seg, uint32_t id)
{
	if (shmet_impl_spare_lock(seg)) {
		if (seg->spare_family == UINT32_MAX)
			seg->spare_family = id;
		shmet_impl_spare_unlock(seg);
	}
}

/* Allocate and fill (not publish) a family record. */
static int
shmet_impl_build_family(struct shmet_segment *seg,
			const struct shmet_family_desc *d, uint32_t mode,
			const size_t *lens, uint64_t hash, uint32_t *out)
{
	struct shmet_seg_family *r;
	uint32_t id, bounds = d->type == SHMET_TYPE_HISTOGRAM ? d->bound_count : 0;
	const char *help = d->help ? d->help : "";
	const char *unit = d->unit ? d->unit : "";

	id = shmet_impl_take_spare_family(seg);
	if (id == UINT32_MAX &&
	    shmet_impl_alloc(&seg->hdr->families_used, seg->hdr->max_families,
			     1, 1, &id) < 0)
		return shmet_impl_fail(seg, SHMET_FAIL_FAMILIES_FULL, -ENOSPC,
				       "%s: segment has no room for another "
				       "family (capacity %u)", d->name,
				       seg->hdr->max_families);
	r = &shmet_impl_families(seg)[id];
	r->type = d->type;
	r->gauge_mode = mode;
	r->label_count = d->label_count;
	r->bound_count = bounds;
	r->cells_per_series = d->type == SHMET_TYPE_COLLECTOR
				      ? 0 : shmet_seg_cells_for(d->type, bounds);
	r->max_series = d->max_series ? d->max_series
				      : seg->hdr->max_series_per_family;
	r->hash = hash;
	/*
	 * One allocation for all of the record's strings, bounds first (the
	 * start is 8-aligned): a pool too full for them takes nothing, and
	 * the record goes back as our spare.
	 */
	{
		size_t name_len = strlen(d->name), help_len = strlen(help);
		size_t unit_len = strlen(unit);
		uint32_t blob = shmet_seg_blob_size(d->label_count, lens);
		uint64_t total = 8ull * bounds + name_len + help_len +
				 unit_len + blob;
		uint32_t off = 0;
		unsigned char *p;

		if (total > 0 &&
		    (total > seg->hdr->string_bytes ||
		     shmet_impl_alloc(&seg->hdr->strings_used,
				      seg->hdr->string_bytes, (uint32_t)total,
				      8, &off) < 0)) {
			shmet_impl_keep_spare_family(seg, id);
			return shmet_impl_fail(seg, SHMET_FAIL_STRINGS_FULL,
					       -ENOSPC,
					       "%s: segment string pool is "
					       "full (%u bytes)", d->name,
					       seg->hdr->string_bytes);
		}
		p = shmet_impl_pool(seg) + off;
		p = shmet_impl_carve(&r->bounds, p, &off, d->bounds,
				     8u * bounds);
		p = shmet_impl_carve(&r->name, p, &off, d->name, name_len);
		p = shmet_impl_carve(&r->help, p, &off, help, help_len);
		p = shmet_impl_carve(&r->unit, p, &off, unit, unit_len);
		shmet_seg_blob_write(p, d->label_count, d->label_names, lens);
		r->label_names.off = off;
		r->label_names.len = blob;
	}
	*out = id;
	return 0;
}

/* Fill the process-side family handle from a published record. */
static int
shmet_impl_resolve_family(struct shmet_segment *seg, uint32_t id,
			  struct shmet_family *f)
{
	const struct shmet_seg_family *r = &shmet_impl_families(seg)[id];
	const unsigned char *bounds = shmet_impl_str(seg, r->bounds);

	if (r->label_count > SHMET_MAX_LABELS ||
	    r->bound_count > SHMET_MAX_BOUNDS || !bounds ||
	    r->bounds.len != 8u * r->bound_count || (r->bounds.off & 7) ||
	    r->cells_per_series != shmet_seg_cells_for(r->type,
							 r->bound_count)) {
		shmet_impl_failed_family(seg, f, -EPROTO);
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -EPROTO,
				       "family record %u is corrupt", id);
	}
	f->seg = seg;
	f->id = id;
	f->type = r->type;
	f->label_count = r->label_count;
	f->bound_count = r->bound_count;
	f->cells = r->cells_per_series;
	f->gauge_mode = r->gauge_mode;
	f->bounds = (const double *)(const void *)bounds;
	f->error = 0;
	return 0;
}

/*
 * Publish record id in an empty index slot (*v is 0): true if it is in.
 * False if another process won the slot; *v is then the winner's entry.
 */
static int
shmet_impl_publish(struct shmet_segment *seg, SHMET_ATOMIC(uint32_t) *slot,
		   uint32_t *v, uint32_t id)
{
	/* Release: publishes the record's contents, written before; acquire
	 * on failure: the winner's record is complete when we compare it. */
	if (!SHMET_AT(compare_exchange_strong_explicit)(
		    slot, v, id + 1, SHMET_MO(release), SHMET_MO(acquire)))
		return 0;
	/* Release: a reader that sees the new generation finds the record. */
	SHMET_AT(fetch_add_explicit)(&seg->hdr->generation, 1,
				     SHMET_MO(release));
	return 1;
}

/*
 * Find the family (or collector) record named d->name, or build and
 * publish one from d: lock-free, racing registrations of one name get one
 * record.  *id is the record; -EEXIST if the name has another shape.
 */
static int
shmet_impl_register(struct shmet_segment *seg,
		    const struct shmet_family_desc *d, uint32_t mode,
		    const size_t *lens, uint32_t *id)
{
	uint32_t mask, mine = UINT32_MAX;
	SHMET_ATOMIC(uint32_t) *index;
	size_t name_len = strlen(d->name);
	uint64_t hash;
	int rc;

	hash = shmet_seg_name_hash(d->name, name_len);
	index = shmet_impl_index(seg, seg->hdr->family_index_off);
	mask = seg->hdr->family_index_slots - 1;
	for (uint32_t probe = 0; probe <= mask; probe++) {
		uint32_t i = (uint32_t)(hash + probe) & mask;
		/* Acquire: pairs with the release CAS that published it. */
		uint32_t v = SHMET_AT(load_explicit)(&index[i],
						     SHMET_MO(acquire));
		const struct shmet_seg_family *r;

		if (v == 0) {
			if (mine == UINT32_MAX) {
				rc = shmet_impl_build_family(seg, d, mode, lens,
							     hash, &mine);
				if (rc < 0)
					return rc;
			}
			if (shmet_impl_publish(seg, &index[i], &v, mine)) {
				*id = mine;
				return 0;
			}
			/* Lost the slot: v is the winner, compare it. */
		}
		if (v - 1 >= seg->hdr->max_families)
			continue;       /* corrupt slot: skip it */
		r = &shmet_impl_families(seg)[v - 1];
		if (r->hash != hash ||
		    !shmet_impl_str_equals(seg, r->name, d->name, name_len))
			continue;
		if (mine != UINT32_MAX)
			shmet_impl_keep_spare_family(seg, mine);
		if (!shmet_impl_same_shape(seg, r, d, mode, lens))
			return shmet_impl_fail(
				seg, SHMET_FAIL_SHAPE_MISMATCH, -EEXIST,
				"%s is already registered with another %s",
				d->name, d->type == SHMET_TYPE_COLLECTOR
						 ? "list of families"
						 : "type, unit, gauge mode, "
						   "label names or buckets");
		*id = v - 1;
		return 0;
	}
	if (mine != UINT32_MAX)
		shmet_impl_keep_spare_family(seg, mine);
	return shmet_impl_fail(seg, SHMET_FAIL_FAMILIES_FULL, -ENOSPC,
			       "%s: family index is full", d->name);
}

/* The published family named name[0..len) of this type, or UINT32_MAX. */
static uint32_t
shmet_impl_find_family(const struct shmet_segment *seg, uint32_t type,
		       const char *name, size_t len)
{
	SHMET_ATOMIC(uint32_t) *index =
		shmet_impl_index(seg, seg->hdr->family_index_off);
	uint32_t mask = seg->hdr->family_index_slots - 1;
	uint64_t hash = shmet_seg_name_hash(name, len);

	for (uint32_t probe = 0; probe <= mask; probe++) {
		uint32_t i = (uint32_t)(hash + probe) & mask;
		/* Acquire: pairs with the release CAS that published it. */
		uint32_t v = SHMET_AT(load_explicit)(&index[i],
						     SHMET_MO(acquire));
		const struct shmet_seg_family *r;

		if (v == 0)
			return UINT32_MAX;
		if (v - 1 >= seg->hdr->max_families)
			continue;
		r = &shmet_impl_families(seg)[v - 1];
		if (r->hash == hash && r->type == type &&
		    shmet_impl_str_equals(seg, r->name, name, len))
			return v - 1;
	}
	return UINT32_MAX;
}

/*
 * Refuse a family that would put a name on the page that another family
 * (or the exporter) puts there too: strict parsers reject the whole page
 * for one such pair.  Each name the new family exposes is looked up under
 * every registered name that could expose it (format.h).  Two processes
 * registering colliding families at the same instant can both pass; the
 * reader drops the later one (lib/index.c), so the page stays valid.
 */
static int
shmet_impl_check_collisions(struct shmet_segment *seg,
			    const struct shmet_family_desc *d)
{
	size_t len = strlen(d->name);
	const char *reserved = shmet_seg_name_reserved(d->name, len);
	struct shmet_seg_exposed ex;

	if (reserved)
		return shmet_impl_fail(seg, SHMET_FAIL_SHAPE_MISMATCH, -EEXIST,
				       "%s: names starting with %s are "
				       "reserved for the exporter's own "
				       "families", d->name, reserved);
	shmet_seg_exposed_names(d->type, d->name, len, &ex);
	for (uint32_t e = 0; e < ex.count; e++) {
		struct shmet_seg_owner own[SHMET_SEG_MAX_OWNERS];
		char exposed[SHMET_MAX_NAME_LEN + 16];
		size_t elen;
		uint32_t n;

		elen = (size_t)snprintf(exposed, sizeof exposed, "%.*s%s",
					(int)ex.base_len, d->name,
					ex.suffix[e]);
		n = shmet_seg_possible_owners(exposed, elen, own);
		for (uint32_t o = 0; o < n; o++) {
			char owner[SHMET_MAX_NAME_LEN + 16];
			size_t olen = (size_t)snprintf(
				owner, sizeof owner, "%.*s%s",
				(int)own[o].prefix_len, exposed, own[o].add);

			if (olen > SHMET_MAX_NAME_LEN ||
			    (olen == len && memcmp(owner, d->name, len) == 0))
				continue;       /* ourselves */
			if (shmet_impl_find_family(seg, own[o].type, owner,
						   olen) == UINT32_MAX)
				continue;
			return shmet_impl_fail(
				seg, SHMET_FAIL_SHAPE_MISMATCH, -EEXIST,
				"%s would expose %s, which family %s already "
				"exposes", d->name, exposed, owner);
		}
	}
	return 0;
}

int
shmet_family_register(struct shmet_segment *seg,
		      const struct shmet_family_desc *d,
		      struct shmet_family *fam)
{
	size_t lens[SHMET_MAX_LABELS] = { 0 };
	uint32_t mode, id = UINT32_MAX;
	int rc;

	shmet_impl_failed_family(seg, fam, -ENODEV);
	if (!seg || !seg->attached)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -ENODEV,
				       "segment is not attached");
	rc = shmet_impl_validate_desc(seg, d);
	if (rc == 0 &&
	    shmet_impl_label_lens(d->label_count, d->label_names, lens) < 0)
		rc = -EINVAL;
	mode = d->type != SHMET_TYPE_GAUGE ? 0 :
	       d->gauge_mode ? d->gauge_mode : SHMET_GAUGE_DEFAULT;
	if (rc == 0 && shmet_impl_find_family(seg, d->type, d->name,
					      strlen(d->name)) == UINT32_MAX)
		rc = shmet_impl_check_collisions(seg, d);
	if (rc == 0)
		rc = shmet_impl_register(seg, d, mode, lens, &id);
	if (rc == 0)
		rc = shmet_impl_resolve_family(seg, id, fam);
	fam->error = rc;
	return rc;
}

int
shmet_collector_register(struct shmet_segment *seg, const char *name,
			 uint32_t family_count, const char *const *family_names)
{
	size_t lens[SHMET_MAX_COLLECTOR_FAMILIES];
	char record_name[SHMET_MAX_NAME_LEN + 2];
	struct shmet_family_desc d;
	size_t len = shmet_impl_strlen0(name);
	uint32_t id;

	if (!seg || !seg->attached)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -ENODEV,
				       "segment is not attached");
	if (!shmet_seg_label_name_valid(name, len))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_NAME, -EINVAL,
				       "invalid collector name '%.200s': must "
				       "match [a-zA-Z_][a-zA-Z0-9_]*",
				       name ? name : "(null)");
	if (family_count > SHMET_MAX_COLLECTOR_FAMILIES ||
	    (family_count > 0 && !family_names))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_LABELS, -EINVAL,
				       "collector %s: 0 to %u families", name,
				       SHMET_MAX_COLLECTOR_FAMILIES);
	for (uint32_t i = 0; i < family_count; i++) {
		lens[i] = shmet_impl_strlen0(family_names[i]);
		if (!shmet_seg_metric_name_valid(family_names[i], lens[i]))
			return shmet_impl_fail(
				seg, SHMET_FAIL_INVALID_NAME, -EINVAL,
				"collector %s: invalid family name '%.200s'",
				name, family_names[i] ? family_names[i]
						      : "(null)");
	}
	record_name[0] = SHMET_COLLECTOR_PREFIX;
	memcpy(record_name + 1, name, len + 1);
	memset(&d, 0, sizeof d);
	d.name = record_name;
	d.type = SHMET_TYPE_COLLECTOR;
	d.label_count = family_count;
	d.label_names = family_names;
	return shmet_impl_register(seg, &d, 0, lens, &id);
}

/* The three constructors are shmet_family_register() with one type's
 * fields; the C11 implementation file may use designated initializers. */
int
shmet_counter_family(struct shmet_segment *seg, struct shmet_family *fam,
		     const char *name, const char *help, uint32_t label_count,
		     const char *const *label_names)
{
	const struct shmet_family_desc d = {
		.name = name, .help = help, .type = SHMET_TYPE_COUNTER,
		.label_count = label_count, .label_names = label_names,
	};

	return shmet_family_register(seg, &d, fam);
}

int
shmet_gauge_family(struct shmet_segment *seg, struct shmet_family *fam,
		   const char *name, const char *help, uint32_t gauge_mode,
		   uint32_t label_count, const char *const *label_names)
{
	const struct shmet_family_desc d = {
		.name = name, .help = help, .type = SHMET_TYPE_GAUGE,
		.gauge_mode = gauge_mode,
		.label_count = label_count, .label_names = label_names,
	};

	return shmet_family_register(seg, &d, fam);
}

int
shmet_histogram_family(struct shmet_segment *seg, struct shmet_family *fam,
		       const char *name, const char *help,
		       uint32_t bound_count, const double *bounds,
		       uint32_t label_count, const char *const *label_names)
{
	const struct shmet_family_desc d = {
		.name = name, .help = help, .type = SHMET_TYPE_HISTOGRAM,
		.bound_count = bound_count, .bounds = bounds,
		.label_count = label_count, .label_names = label_names,
	};

	return shmet_family_register(seg, &d, fam);
}

/* ---------------------------------------------------------------- */
/* Series                                                           */

/* For messages: the family's name as "%.*s" arguments. */
#define SHMET_IMPL_FAM(seg, id) \
	(int)shmet_impl_families(seg)[id].name.len, \
	(const char *)shmet_impl_str_or_empty(seg, \
					       shmet_impl_families(seg)[id].name)

static const unsigned char *
shmet_impl_str_or_empty(const struct shmet_segment *seg, struct shmet_seg_str s)
{
	const unsigned char *p = shmet_impl_str(seg, s);

	return p ? p : (const unsigned char *)"";
}

/* Take the spare series record into *id, *cell and *blob as they fit. */
static void
shmet_impl_take_spare_series(struct shmet_segment *seg, uint32_t cells,
			     uint32_t blob_size, uint32_t *id, uint32_t *cell,
			     struct shmet_seg_str *blob)
{
	if (!shmet_impl_spare_lock(seg))
		return;
	if (seg->spare_series != UINT32_MAX) {
		*id = seg->spare_series;
		if (seg->spare_cells == cells)
			*cell = seg->spare_cell;        /* else they leak */
		if (blob_size <= seg->spare_blob.len) {
			blob->off = seg->spare_blob.off;
			blob->len = blob_size;
		}
		seg->spare_series = UINT32_MAX;
	}
	shmet_impl_spare_unlock(seg);
}

/* Keep what a series registration took and did not publish. */
static void
shmet_impl_keep_spare_series(struct shmet_segment *seg, uint32_t id,
			     uint32_t cell, uint32_t cells,
			     struct shmet_seg_str blob)
{
	if (!shmet_impl_spare_lock(seg))
		return;
	if (seg->spare_series == UINT32_MAX) {
		seg->spare_series = id;
		seg->spare_cell = cell;
		seg->spare_cells = cell == UINT32_MAX ? 0 : cells;
		seg->spare_blob = blob.len == UINT32_MAX
					  ? (struct shmet_seg_str){ 0, 0 }
					  : blob;
	}
	shmet_impl_spare_unlock(seg);
}

/* Keep a built record that lost its publication race. */
static void
shmet_impl_keep_spare_record(struct shmet_segment *seg, uint32_t id,
			     uint32_t cells)
{
	const struct shmet_seg_series *r = &shmet_impl_series_table(seg)[id];

	shmet_impl_keep_spare_series(seg, id, r->first_cell, cells, r->labels);
}

/*
 * Allocate and fill (not publish) a series record.  On failure everything
 * it took (record, cells, label bytes) becomes the process's spare, which
 * the next registration reuses: failed registrations do not eat capacity.
 */
static int
shmet_impl_build_series(struct shmet_segment *seg,
			const struct shmet_family *fam, uint32_t n,
			const char *const *values, const size_t *lens,
			uint64_t hash, uint32_t *out)
{
	struct shmet_seg_series *r;
	struct shmet_seg_str blob = { 0, UINT32_MAX };
	uint32_t id = UINT32_MAX, cell = UINT32_MAX;
	uint32_t size = shmet_seg_blob_size(n, lens);

	shmet_impl_take_spare_series(seg, fam->cells, size, &id, &cell, &blob);
	if (id == UINT32_MAX &&
	    shmet_impl_alloc(&seg->hdr->series_used, seg->hdr->max_series, 1,
			     1, &id) < 0)
		return shmet_impl_fail(seg, SHMET_FAIL_SERIES_FULL, -ENOSPC,
				       "%.*s: segment has no room for another "
				       "series (capacity %u)",
				       SHMET_IMPL_FAM(seg, fam->id),
				       seg->hdr->max_series);
	if (cell == UINT32_MAX &&
	    shmet_impl_alloc(&seg->hdr->cells_used, seg->hdr->cells_per_block,
			     fam->cells, 1, &cell) < 0) {
		shmet_impl_keep_spare_series(seg, id, UINT32_MAX, 0, blob);
		return shmet_impl_fail(seg, SHMET_FAIL_CELLS_FULL, -ENOSPC,
				       "%.*s: segment has no room for %u more "
				       "value cells (capacity %u)",
				       SHMET_IMPL_FAM(seg, fam->id), fam->cells,
				       seg->hdr->cells_per_block);
	}
	if (blob.len == UINT32_MAX &&
	    shmet_impl_put_blob(seg, n, values, lens, &blob) < 0) {
		shmet_impl_keep_spare_series(seg, id, cell, fam->cells,
					     (struct shmet_seg_str){ 0, 0 });
		return shmet_impl_fail(seg, SHMET_FAIL_STRINGS_FULL, -ENOSPC,
				       "%.*s: segment string pool is full (%u "
				       "bytes)", SHMET_IMPL_FAM(seg, fam->id),
				       seg->hdr->string_bytes);
	}
	r = &shmet_impl_series_table(seg)[id];
	shmet_seg_blob_write(shmet_impl_pool(seg) + blob.off, n, values, lens);
	r->labels = blob;
	r->family = fam->id;
	r->first_cell = cell;
	r->hash = hash;
	*out = id;
	return 0;
}

/* Reserve a new series slot under the family's cardinality limit. */
static int
shmet_impl_count_series(struct shmet_segment *seg,
			const struct shmet_family *fam)
{
	struct shmet_seg_family *r = &shmet_impl_families(seg)[fam->id];
	/* Relaxed: a limit check, ordered with nothing. */
	uint32_t had = SHMET_AT(fetch_add_explicit)(&r->series_count, 1,
						    SHMET_MO(relaxed));

	if (had < r->max_series)
		return 0;
	SHMET_AT(fetch_sub_explicit)(&r->series_count, 1, SHMET_MO(relaxed));
	return shmet_impl_fail(seg, SHMET_FAIL_CARDINALITY, -E2BIG,
			       "%.*s reached its limit of %u series",
			       SHMET_IMPL_FAM(seg, fam->id), r->max_series);
}

/*
 * Find or create a series of values (lengths in lens).  Unless `repaired`,
 * the values are the caller's: before creating a series from them, they
 * are checked for invalid UTF-8, and 1 is returned if they have some (the
 * caller repairs them and asks again).  Looking up an existing series
 * costs no check: a stored value is valid, so raw bytes that match it are.
 */
static int
shmet_impl_series_of(const struct shmet_family *fam, uint32_t n,
		     const char *const *values, const size_t *lens,
		     int repaired, uint32_t *cell)
{
	struct shmet_segment *seg = fam->seg;
	uint32_t mask, mine = UINT32_MAX;
	SHMET_ATOMIC(uint32_t) *index;
	struct shmet_seg_series *table;
	uint64_t hash;
	int rc;

	hash = shmet_seg_series_hash_start(fam->id);
	for (uint32_t i = 0; i < n; i++)
		hash = shmet_seg_hash_bytes(hash, values[i], lens[i]);
	hash = shmet_seg_mix(hash);

	index = shmet_impl_index(seg, seg->hdr->series_index_off);
	table = shmet_impl_series_table(seg);
	mask = seg->hdr->series_index_slots - 1;
	for (uint32_t probe = 0; probe <= mask; probe++) {
		uint32_t i = (uint32_t)(hash + probe) & mask;
		/* Acquire: pairs with the release CAS that published it. */
		uint32_t v = SHMET_AT(load_explicit)(&index[i],
						     SHMET_MO(acquire));
		const struct shmet_seg_series *r;

		if (v == 0) {
			if (mine == UINT32_MAX && !repaired)
				for (uint32_t k = 0; k < n; k++)
					if (shmet_seg_utf8_repaired_len(
						    values[k], lens[k]) !=
					    lens[k])
						return 1;
			if (mine == UINT32_MAX) {
				rc = shmet_impl_count_series(seg, fam);
				if (rc < 0)
					return rc;
				rc = shmet_impl_build_series(seg, fam, n, values,
							     lens, hash, &mine);
				if (rc < 0) {
					/* Give the series count back. */
					SHMET_AT(fetch_sub_explicit)(
						&shmet_impl_families(seg)[fam->id]
							 .series_count,
						1, SHMET_MO(relaxed));
					return rc;
				}
			}
			if (shmet_impl_publish(seg, &index[i], &v, mine)) {
				*cell = table[mine].first_cell;
				return 0;
			}
		}
		if (v - 1 >= seg->hdr->max_series)
			continue;       /* corrupt slot: skip it */
		r = &table[v - 1];
		if (r->hash != hash || r->family != fam->id ||
		    !shmet_impl_blob_equals(seg, r->labels, n, values, lens))
			continue;
		if (mine != UINT32_MAX) {
			/* Lost the race to an equal record: keep ours. */
			SHMET_AT(fetch_sub_explicit)(
				&shmet_impl_families(seg)[fam->id].series_count,
				1, SHMET_MO(relaxed));
			shmet_impl_keep_spare_record(seg, mine, fam->cells);
		}
		if ((uint64_t)r->first_cell + fam->cells >
		    seg->hdr->cells_per_block)
			return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON,
					       -EPROTO, "series record %u is "
					       "corrupt", v - 1);
		*cell = r->first_cell;
		return 0;
	}
	if (mine != UINT32_MAX) {
		SHMET_AT(fetch_sub_explicit)(
			&shmet_impl_families(seg)[fam->id].series_count, 1,
			SHMET_MO(relaxed));
		shmet_impl_keep_spare_record(seg, mine, fam->cells);
	}
	return shmet_impl_fail(seg, SHMET_FAIL_SERIES_FULL, -ENOSPC,
			       "%.*s: series index is full",
			       SHMET_IMPL_FAM(seg, fam->id));
}

/* The rare path of shmet_impl_series: values with invalid UTF-8, stored
 * repaired from a copy (kept out of line: the lookup stays lean). */
#if defined(__GNUC__)
__attribute__((noinline, cold))
#endif
static int
shmet_impl_series_repaired(const struct shmet_family *fam, uint32_t n,
			   const char *const *values, const size_t *lens,
			   uint32_t *cell)
{
	struct shmet_segment *seg = fam->seg;
	const char *fixed[SHMET_MAX_LABELS];
	size_t fixed_lens[SHMET_MAX_LABELS], total = 0;
	char *copy, *at;
	int rc;

	for (uint32_t i = 0; i < n; i++) {
		fixed_lens[i] = shmet_seg_utf8_repaired_len(values[i], lens[i]);
		total += fixed_lens[i];
		if (fixed_lens[i] > SHMET_MAX_LABEL_VALUE_LEN)
			return shmet_impl_fail(
				seg, SHMET_FAIL_LABEL_VALUE, -EINVAL,
				"%.*s: label value %u is %zu bytes once its "
				"invalid UTF-8 is replaced by U+FFFD, more "
				"than %u", SHMET_IMPL_FAM(seg, fam->id), i,
				fixed_lens[i], SHMET_MAX_LABEL_VALUE_LEN);
	}
	copy = (char *)malloc(total ? total : 1);
	if (!copy)
		return shmet_impl_fail(seg, SHMET_IMPL_NO_REASON, -ENOMEM,
				       "out of memory");
	at = copy;
	for (uint32_t i = 0; i < n; i++) {
		shmet_seg_utf8_repair(values[i], lens[i], at);
		fixed[i] = at;
		at += fixed_lens[i];
	}
	rc = shmet_impl_series_of(fam, n, fixed, fixed_lens, 1, cell);
	free(copy);
	return rc;
}

/*
 * Find or create a series; *cell is its first cell.  Values with invalid
 * UTF-8 are stored repaired (format.h: each invalid byte U+FFFD), so two
 * values that differ only in invalid bytes are the one series a page
 * would show.
 */
static int
shmet_impl_series(const struct shmet_family *fam, uint32_t n,
		  const char *const *values, uint32_t *cell)
{
	struct shmet_segment *seg = fam->seg;
	size_t lens[SHMET_MAX_LABELS];    /* [0, n) filled below */
	int rc;

	if (fam->id == UINT32_MAX || !seg || !seg->attached)
		return fam->error ? fam->error : -ENODEV;
	if (n != fam->label_count || (n > 0 && !values))
		return shmet_impl_fail(seg, SHMET_FAIL_INVALID_LABELS, -EINVAL,
				       "%.*s takes %u label values, got %u",
				       SHMET_IMPL_FAM(seg, fam->id),
				       fam->label_count, n);
	if (shmet_impl_label_lens(n, values, lens) < 0)
		return shmet_impl_fail(seg, SHMET_FAIL_LABEL_VALUE, -EINVAL,
				       "%.*s: label values must be non-NULL "
				       "and at most %u bytes",
				       SHMET_IMPL_FAM(seg, fam->id),
				       SHMET_MAX_LABEL_VALUE_LEN);
	rc = shmet_impl_series_of(fam, n, values, lens, 0, cell);
	return rc == 1 ? shmet_impl_series_repaired(fam, n, values, lens, cell)
		       : rc;
}

/* Find or create, then make sure our block's pages for it are reserved. */
static shmet_impl_cell *
shmet_impl_resolve(const struct shmet_family *fam, uint32_t type, uint32_t n,
		   const char *const *values, int *rc)
{
	struct shmet_segment *seg = fam->seg;
	uint32_t cell = 0;

	if (fam->id != UINT32_MAX && fam->type != type) {
		*rc = shmet_impl_fail(seg, SHMET_FAIL_SHAPE_MISMATCH, -EINVAL,
				      "%.*s is not of the handle's type",
				      SHMET_IMPL_FAM(seg, fam->id));
		return shmet_impl_scratch();
	}
	*rc = shmet_impl_series(fam, n, values, &cell);
	if (*rc < 0)
		return shmet_impl_scratch();
	if (type == SHMET_TYPE_GAUGE &&
	    seg->slot == shmet_seg_fallback_block(seg->hdr)) {
		/* The fallback block mixes processes: a gauge there would be
		 * nobody's value (layout.h, "Value blocks"). */
		*rc = shmet_impl_fail(seg, SHMET_FAIL_WRITERS_FULL, -ENOSPC,
				      "%.*s: no writer slot was free when this "
				      "process attached; its gauges are not "
				      "recorded (counters and histograms are)",
				      SHMET_IMPL_FAM(seg, fam->id));
		return shmet_impl_scratch();
	}
	/* Relaxed: see shmet_impl_hold_liveness. */
	if (SHMET_UNLIKELY(!SHMET_AT(load_explicit)(&seg->live_locked,
						    SHMET_MO(relaxed))))
		shmet_impl_hold_liveness(seg);
	*rc = shmet_impl_reserve(seg, (uint64_t)cell + fam->cells);
	if (*rc < 0) {
		*rc = shmet_impl_fail(seg, SHMET_FAIL_NO_MEMORY, -ENOMEM,
				      "%.*s: cannot reserve shared memory for "
				      "a series: %s", SHMET_IMPL_FAM(seg, fam->id),
				      strerror(-*rc));
		return shmet_impl_scratch();
	}
	if (type != SHMET_TYPE_GAUGE)   /* gauges stay per process */
		shmet_impl_reserve_threads(seg, (uint64_t)cell + fam->cells);
	return &seg->block[cell];
}

int
shmet_counter_labels(const struct shmet_family *fam, struct shmet_counter *out,
		     uint32_t count, const char *const *values)
{
	int rc;

	out->cell = shmet_impl_resolve(fam, SHMET_TYPE_COUNTER, count, values,
				       &rc);
	out->key = rc == 0 ? fam->seg->key : 0;
	return rc;
}

int
shmet_gauge_labels(const struct shmet_family *fam, struct shmet_gauge *out,
		   uint32_t count, const char *const *values)
{
	int rc;

	out->cell = shmet_impl_resolve(fam, SHMET_TYPE_GAUGE, count, values,
				       &rc);
	out->timed = rc == 0 && (fam->gauge_mode == SHMET_GAUGE_MOSTRECENT ||
				 fam->gauge_mode == SHMET_GAUGE_LIVEMOSTRECENT);
	return rc;
}

int
shmet_histogram_labels(const struct shmet_family *fam,
		       struct shmet_histogram *out, uint32_t count,
		       const char *const *values)
{
	int rc;

	out->cell = shmet_impl_resolve(fam, SHMET_TYPE_HISTOGRAM, count, values,
				       &rc);
	out->bounds = rc == 0 ? fam->bounds : NULL;
	out->bound_count = rc == 0 ? fam->bound_count : 0;
	out->key = rc == 0 ? fam->seg->key : 0;
	return rc;
}

int
shmet_counter_new(struct shmet_segment *seg, struct shmet_counter *out,
		  const char *name, const char *help)
{
	struct shmet_family f;
	int rc = shmet_counter_family(seg, &f, name, help, 0, NULL);
	int rc2 = shmet_counter_labels(&f, out, 0, NULL);

	return rc < 0 ? rc : rc2;
}

int
shmet_gauge_new(struct shmet_segment *seg, struct shmet_gauge *out,
		const char *name, const char *help, uint32_t gauge_mode)
{
	struct shmet_family f;
	int rc = shmet_gauge_family(seg, &f, name, help, gauge_mode, 0, NULL);
	int rc2 = shmet_gauge_labels(&f, out, 0, NULL);

	return rc < 0 ? rc : rc2;
}

int
shmet_histogram_new(struct shmet_segment *seg, struct shmet_histogram *out,
		    const char *name, const char *help, uint32_t bound_count,
		    const double *bounds)
{
	struct shmet_family f;
	int rc = shmet_histogram_family(seg, &f, name, help, bound_count,
					bounds, 0, NULL);
	int rc2 = shmet_histogram_labels(&f, out, 0, NULL);

	return rc < 0 ? rc : rc2;
}

uint32_t
shmet_linear_bounds(double start, double width, uint32_t count, double *out)
{
	if (count == 0 || count > SHMET_MAX_BOUNDS || !(width > 0))
		return 0;
	for (uint32_t i = 0; i < count; i++)
		out[i] = start + width * i;
	return count;
}

uint32_t
shmet_exponential_bounds(double start, double factor, uint32_t count,
			 double *out)
{
	if (count == 0 || count > SHMET_MAX_BOUNDS || !(start > 0) ||
	    !(factor > 1))
		return 0;
	out[0] = start;
	for (uint32_t i = 1; i < count; i++)
		out[i] = out[i - 1] * factor;
	return count;
}

#endif /* SHMETRICS_WRITER_IMPL_H */
