/*
 * shmetrics writer: what the files of the slow path (writer/) share.
 * The slow path is compiled once per program: into libshmetrics, one
 * protocol per file, or, for a program that links nothing, as the
 * amalgamated header <shmetrics/writer-impl.h> that the build generates
 * from these same files (writer/amalgamate.py) and that <shmetrics.h>
 * includes where SHMETRICS_IMPLEMENTATION is defined.  Its process-wide
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
 *   strings_used, gauge_chunk: cells.c) are relaxed: they hand out
 *   disjoint ranges and order nothing; publication orders the contents.
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
 * - Hot path: counters and histograms add in an rseq critical section to
 *   the cell of the CPU the thread runs on (wait-free: an aborted section
 *   falls back once); without rseq, integer adds and sets are wait-free
 *   relaxed atomics and float adds a CAS loop on a cell of this process:
 *   lock-free, retries only on a race between threads of this process.
 *   A thread's first counting write resolves its rseq area once
 *   (docs/DESIGN.md, "Per-CPU cells").
 * - Finding a family or series is lock-free.  Publishing a new family
 *   record holds the family index lock (register.c) and creating a series
 *   the family's gate (gate.c), each for microseconds; both are OFD locks,
 *   so a process killed at any point blocks nobody and leaks at most one
 *   series record and its cells and label bytes (a family record it was
 *   building is CLAIMED under its gate and freed by the next holder).
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
 * and never waits.  (Series records.  A family record that lost is free
 * at once, for any process's next registration: reclaim.c.)
 */
#ifndef SHMETRICS_WRITER_PRIVATE_H
#define SHMETRICS_WRITER_PRIVATE_H

#ifndef SHMET_AMALGAMATION
#include "config.h"
#include <shmetrics.h>
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "shmetrics/format.h"
#include "shmetrics/lock.h"
#include "shmetrics/name.h"

/*
 * Linkage of what the files share: hidden in libshmetrics (the symbol map
 * exports only the API), file-local in the amalgamated header, so that a
 * program that compiles the slow path itself exports nothing new.
 */
#ifdef SHMET_AMALGAMATION
#define SHMET_W static
#define SHMET_W_EXTERN static
#define SHMET_W_DEF static
#else
#define SHMET_W __attribute__((visibility("hidden")))
#define SHMET_W_EXTERN extern __attribute__((visibility("hidden")))
#define SHMET_W_DEF __attribute__((visibility("hidden")))
#endif

#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS 0x20
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0x4000
#endif

#define SHMET_THREAD_LOCAL _Thread_local

#if defined(__GNUC__)
#define SHMET_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define SHMET_UNLIKELY(x) (x)
#endif

typedef SHMET_ATOMIC(uint64_t) shmet_impl_cell;

/* A failure that no SHMET_FAIL_* reason counts. */
#define SHMET_IMPL_NO_REASON SHMET_FAIL_SLOTS

/* For messages: the family's name as "%.*s" arguments. */
#define SHMET_IMPL_FAM(seg, id) \
	(int)shmet_impl_families(seg)[id].name.len, \
	(const char *)shmet_impl_str_or_empty(seg, \
					       shmet_impl_families(seg)[id].name)

/* Attached segments, for the fork child handler (state.c). */
struct shmet_impl_forklist {
	pthread_mutex_t lock;
	struct shmet_segment *head;
	int registered;
	int cancel_state;               /* the forking thread's, under lock */
};

/* Process-wide state, defined once (state.c). */
SHMET_W_EXTERN shmet_impl_cell shmet_impl_scratch_cells[SHMET_MAX_BOUNDS + 2];
SHMET_W_EXTERN SHMET_ATOMIC(uint32_t) shmet_impl_scratch_gen;
SHMET_W_EXTERN struct shmet_impl_forklist shmet_impl_forklist;
SHMET_W_EXTERN SHMET_THREAD_LOCAL char shmet_impl_error[256];

/*
 * Named steps of the protocols, where the kill-point harness can make the
 * process die, stop or be cancelled (writer/points.c, tests/crash/).
 */
#ifdef SHMET_TEST_POINTS
SHMET_W void shmet_impl_point(const char *name);
SHMET_W void shmet_impl_points_forked(void);
#define SHMET_POINT(name) shmet_impl_point(name)
#else
#define SHMET_POINT(name) ((void)0)
#define shmet_impl_points_forked() ((void)0)
#endif

/* API entries are not cancellation points (state.c). */
SHMET_W int shmet_impl_cancel_off(void);
SHMET_W void shmet_impl_cancel_restore(int old);

/* The series creation gate and the index lock (gate.c). */
SHMET_W int shmet_impl_gate_lock(struct shmet_segment *seg, uint32_t fam);
SHMET_W int shmet_impl_gate_try(struct shmet_segment *seg, uint32_t fam);
SHMET_W int shmet_impl_gate_try_other(struct shmet_segment *seg,
				      uint32_t fam);
SHMET_W int shmet_impl_indexed(const struct shmet_segment *seg,
			       uint64_t index_off, uint32_t slots,
			       uint64_t hash, uint32_t id);
SHMET_W int shmet_impl_series_indexed(const struct shmet_segment *seg,
				      uint32_t id);
SHMET_W int shmet_impl_family_indexed(const struct shmet_segment *seg,
				      uint32_t id);
/* Record id's index slot becomes a tombstone. */
SHMET_W void shmet_impl_unindex(struct shmet_segment *seg, uint64_t index_off,
				uint32_t slots, uint64_t hash, uint32_t id);
SHMET_W void shmet_impl_gate_unlock(struct shmet_segment *seg, uint32_t fam);
SHMET_W int shmet_impl_index_lock(struct shmet_segment *seg);
SHMET_W void shmet_impl_index_unlock(struct shmet_segment *seg);

/* The gate's journal: entering the gate finishes a dead holder's step
 * (journal.c, below every protocol that journals). */
SHMET_W int shmet_impl_gate_enter(struct shmet_segment *seg, uint32_t fam,
				  const char *what, const char *point);
SHMET_W void shmet_impl_gate_recover(struct shmet_segment *seg, uint32_t fam);
/* Under the gate: take record id off the pages (a removal's last step). */
SHMET_W void shmet_impl_mark_removed(struct shmet_segment *seg, uint32_t id);
/* Under the gate: finish a dead remover's, reuser's, reclaimer's step. */
SHMET_W void shmet_impl_remove_recover(struct shmet_segment *seg,
				       struct shmet_seg_family *r,
				       uint32_t pending);
SHMET_W void shmet_impl_reuse_recover(struct shmet_segment *seg,
				      struct shmet_seg_family *f,
				      uint32_t fam, uint32_t pending);
SHMET_W void shmet_impl_reclaim_recover(struct shmet_segment *seg,
					uint32_t fam);
/* The state a reuse's claim for family record fam leaves (layout.h), and
 * putting claimed record id back. */
SHMET_W uint32_t shmet_impl_claim_value(uint32_t fam);
SHMET_W void shmet_impl_unclaim(struct shmet_segment *seg, uint32_t id);
/* Family record id freed (a reclaim's end). */
SHMET_W void shmet_impl_family_free(struct shmet_segment *seg, uint32_t id);

/* Finding a series without a lock (lookup.c). */
SHMET_W uint64_t shmet_impl_series_hash(uint32_t fam, uint32_t n,
					const char *const *values,
					const size_t *lens);
SHMET_W int shmet_impl_series_find(const struct shmet_family *fam,
				   uint64_t hash, uint32_t n,
				   const char *const *values,
				   const size_t *lens, uint32_t *cell,
				   uint32_t *empty, uint32_t *id,
				   uint32_t *gen);
/* Reusing removed records when the segment is full (reuse.c). */
SHMET_W int shmet_impl_segment_short(const struct shmet_segment *seg,
				     const struct shmet_family *fam,
				     uint32_t size);
SHMET_W int shmet_impl_reuse_series(const struct shmet_family *fam,
				    uint32_t count, uint32_t n,
				    const char *const *values,
				    const size_t *lens, uint64_t hash,
				    uint32_t *out);
/* Under the gate: remove live record id of family record r (remove.c). */
SHMET_W void shmet_impl_remove_one(struct shmet_segment *seg,
				   struct shmet_seg_family *r, uint32_t id);
/* A sweep of idle series, if one is due (expire.c). */
SHMET_W void shmet_impl_expire_due(struct shmet_segment *seg);

/* The functions the files share (one file defines each). */
SHMET_W shmet_impl_cell *
shmet_impl_scratch(void);

SHMET_W uint64_t
shmet_impl_clock_ns(clockid_t clock);

SHMET_W void
shmet_impl_count(struct shmet_segment *seg, uint32_t reason);

SHMET_W int
shmet_impl_fail(struct shmet_segment *seg, uint32_t reason, int rc,
		const char *fmt, ...);

SHMET_W int
shmet_impl_alloc(SHMET_ATOMIC(uint32_t) *cursor, uint32_t cap, uint32_t n,
		 uint32_t align, uint32_t *out);

/* What a spare's cells fit (cells.c): as many, from the same place. */
SHMET_W uint32_t
shmet_impl_cells_kind(const struct shmet_family *fam);

/* A new series' cells (cells.c). */
SHMET_W int
shmet_impl_alloc_cells(struct shmet_segment *seg,
		       const struct shmet_family *fam, uint32_t *out);

SHMET_W struct shmet_seg_writer *
shmet_impl_writers(const struct shmet_segment *seg);

SHMET_W struct shmet_seg_family *
shmet_impl_families(const struct shmet_segment *seg);

SHMET_W struct shmet_seg_series *
shmet_impl_series_table(const struct shmet_segment *seg);

SHMET_W SHMET_ATOMIC(uint32_t) *
shmet_impl_index(const struct shmet_segment *seg, uint64_t off);

SHMET_W unsigned char *
shmet_impl_pool(const struct shmet_segment *seg);

SHMET_W const unsigned char *
shmet_impl_str(const struct shmet_segment *seg, struct shmet_seg_str s);

SHMET_W int
shmet_impl_resolve_name(struct shmet_segment *seg, const char *name);

SHMET_W uint32_t
shmet_impl_opt(uint32_t v, uint32_t def);

SHMET_W int
shmet_impl_initialise(struct shmet_segment *seg,
		      const struct shmet_options *o);

SHMET_W int
shmet_impl_fsize_ok(int fd, uint64_t end);

SHMET_W int
shmet_impl_fallocate(int fd, uint64_t off, uint64_t len);

SHMET_W uint64_t
shmet_impl_reserve_end(uint64_t end_cell, uint64_t limit);

SHMET_W int
shmet_impl_check_fsize(struct shmet_segment *seg, uint64_t size);

SHMET_W int
shmet_impl_mark_ours(struct shmet_segment *seg);

SHMET_W int
shmet_impl_claimable(int fd);

SHMET_W int
shmet_impl_is_ready(int fd);

SHMET_W void
shmet_impl_sleep_ms(long ms);

SHMET_W int
shmet_impl_wait_ready(struct shmet_segment *seg,
		      const struct shmet_options *o);

SHMET_W int
shmet_impl_check_owner(struct shmet_segment *seg, mode_t mode);

SHMET_W int
shmet_impl_open_fd(struct shmet_segment *seg, const struct shmet_options *o);

SHMET_W int
shmet_impl_open_claim(struct shmet_segment *seg);

SHMET_W int
shmet_impl_check_header(struct shmet_segment *seg,
			const struct shmet_seg_header *h, uint64_t size);

SHMET_W int
shmet_impl_map(struct shmet_segment *seg);

SHMET_W shmet_impl_cell *
shmet_impl_retired(const struct shmet_segment *seg);

SHMET_W void
shmet_impl_retire_block(void *block, size_t size, uint64_t reach);

SHMET_W void
shmet_impl_mark_pages(const struct shmet_segment *seg, unsigned char *map,
		      const unsigned char *p, size_t len, size_t page);

SHMET_W void
shmet_impl_unmap_run(unsigned char *at, size_t n, int keep);

SHMET_W void
shmet_impl_retire_meta(struct shmet_segment *seg);

SHMET_W void
shmet_impl_publish_extent(struct shmet_segment *seg, uint32_t slot,
			  uint64_t bytes);

SHMET_W void
shmet_impl_touch(unsigned char *block, uint64_t from, uint64_t to);

SHMET_W int
shmet_impl_reserve_block(struct shmet_segment *seg, uint32_t slot,
			 SHMET_ATOMIC(uint64_t) *reserved, uint64_t end_cell);

SHMET_W int
shmet_impl_reserve(struct shmet_segment *seg, uint64_t end_cell);

SHMET_W shmet_impl_cell *
shmet_impl_fallback_cells(const struct shmet_segment *seg);

SHMET_W void
shmet_impl_claimed_counts(struct shmet_segment *seg, uint32_t slot,
			  uint32_t old_slot, int fixed);

SHMET_W shmet_impl_cell *
shmet_impl_count_cell(struct shmet_segment *seg, uint32_t cell, uint32_t cells);

SHMET_W uint64_t
shmet_impl_fallback_reach(const struct shmet_segment *seg);

SHMET_W void
shmet_impl_fold(shmet_impl_cell *r, uint32_t mode, double v, uint64_t stamp);

SHMET_W int
shmet_impl_reset_gauges(struct shmet_segment *seg, shmet_impl_cell *block,
			uint32_t slot, uint64_t reserved);

SHMET_W int
shmet_impl_map_block(struct shmet_segment *seg, uint32_t slot, int fixed);

SHMET_W int
shmet_impl_take_slot(struct shmet_segment *seg, uint32_t slot,
		     shmet_impl_cell *block, uint64_t reserved);

SHMET_W void
shmet_impl_hold_liveness(struct shmet_segment *seg);

SHMET_W int64_t
shmet_impl_claim(struct shmet_segment *seg, int fixed);

SHMET_W int
shmet_impl_claim_reporting(struct shmet_segment *seg);

SHMET_W uint32_t
shmet_impl_host_cpus(void);

SHMET_W int
shmet_impl_reserve_cpus(struct shmet_segment *seg, uint64_t end_cell);

SHMET_W void
shmet_impl_fork_prepare(void);

SHMET_W void
shmet_impl_fork_parent(void);

SHMET_W void
shmet_impl_fd_path(char *buf, int fd);

SHMET_W int
shmet_impl_after_fork(struct shmet_segment *seg);

SHMET_W void
shmet_impl_fork_child(void);

SHMET_W void
shmet_impl_forklist_add(struct shmet_segment *seg);

SHMET_W void
shmet_impl_forklist_remove(struct shmet_segment *seg);

/* exemplar.c: unmap the exemplar region (the segment left the list). */
SHMET_W void
shmet_impl_exemplars_close(struct shmet_segment *seg);

SHMET_W size_t
shmet_impl_strlen0(const char *s);

SHMET_W int
shmet_impl_validate_desc(struct shmet_segment *seg,
			 const struct shmet_family_desc *d);

SHMET_W int
shmet_impl_blob_equals(const struct shmet_segment *seg, struct shmet_seg_str s,
		       uint32_t n, const char *const *strs, const size_t *lens);

SHMET_W int
shmet_impl_put_blob(struct shmet_segment *seg, uint32_t n,
		    const char *const *strs, const size_t *lens,
		    struct shmet_seg_str *out, uint32_t *cap);

SHMET_W unsigned char *
shmet_impl_carve(struct shmet_seg_str *out, unsigned char *p, uint32_t *off,
		 const void *src, size_t n);

SHMET_W int
shmet_impl_str_equals(const struct shmet_segment *seg, struct shmet_seg_str s,
		      const void *b, size_t len);

SHMET_W void
shmet_impl_failed_family(struct shmet_segment *seg, struct shmet_family *f,
			 int rc);

SHMET_W int
shmet_impl_label_lens(uint32_t n, const char *const *strs, size_t *lens);

SHMET_W int
shmet_impl_same_shape(const struct shmet_segment *seg,
		      const struct shmet_seg_family *r,
		      const struct shmet_family_desc *d, uint32_t mode,
		      const size_t *lens);

SHMET_W int
shmet_impl_spare_lock(struct shmet_segment *seg);

SHMET_W void
shmet_impl_spare_unlock(struct shmet_segment *seg);


SHMET_W int
shmet_impl_build_family(struct shmet_segment *seg,
			const struct shmet_family_desc *d, uint32_t mode,
			const size_t *lens, uint64_t hash, uint32_t *out);

SHMET_W uint64_t
shmet_impl_family_strings(const struct shmet_family_desc *d,
			  const size_t *lens);

SHMET_W int
shmet_impl_same_text(const struct shmet_segment *seg,
		     const struct shmet_seg_family *r,
		     const struct shmet_family_desc *d);

SHMET_W int
shmet_impl_labels_reordered(const struct shmet_segment *seg,
			    const struct shmet_seg_family *r,
			    const struct shmet_family_desc *d,
			    const size_t *lens);

/* Registrants: who holds which family record (registrants.c). */
SHMET_W void shmet_impl_registrants_open(struct shmet_segment *seg);
SHMET_W void shmet_impl_registrants_close(struct shmet_segment *seg);
SHMET_W void shmet_impl_registrants_clear_slot(struct shmet_segment *seg,
					       uint32_t slot);
SHMET_W void shmet_impl_registrant_mark(struct shmet_segment *seg,
					uint32_t id);
SHMET_W int shmet_impl_registrant_held(const struct shmet_segment *seg,
				       uint32_t id);
SHMET_W int shmet_impl_stale_family(struct shmet_segment *seg);
SHMET_W void shmet_impl_registrants_forked(struct shmet_segment *seg,
					   int claimed);
SHMET_W int shmet_impl_registrant_live(struct shmet_segment *seg,
				       uint32_t id);

/* Record id is shown: incarnation even, not free (state.c). */
SHMET_W int shmet_impl_family_shown(const struct shmet_segment *seg,
				    uint32_t id);
/* Reclaiming family records (reclaim.c). */
SHMET_W int shmet_impl_reclaim_sweep(struct shmet_segment *seg);
SHMET_W void shmet_impl_reclaim_outdated(struct shmet_segment *seg,
					 uint32_t id);
SHMET_W int shmet_impl_claim_free_family(struct shmet_segment *seg,
					 uint32_t need, int any, uint32_t *out,
					 uint32_t *off);
SHMET_W void shmet_impl_family_filled(struct shmet_segment *seg,
				      uint32_t id);
SHMET_W void shmet_impl_family_settle(struct shmet_segment *seg,
				      uint32_t id);
SHMET_W void shmet_impl_family_unclaim(struct shmet_segment *seg,
				       uint32_t id);
SHMET_W void shmet_impl_family_unbuilt(struct shmet_segment *seg,
				       uint32_t id);

SHMET_W int
shmet_impl_resolve_family(struct shmet_segment *seg, uint32_t id,
			  struct shmet_family *f);

SHMET_W int
shmet_impl_register(struct shmet_segment *seg,
		    const struct shmet_family_desc *d, uint32_t mode,
		    const size_t *lens, uint32_t *id);

SHMET_W uint32_t
shmet_impl_find_family(const struct shmet_segment *seg, uint32_t type,
		       const char *name, size_t len);

SHMET_W int
shmet_impl_check_collisions(struct shmet_segment *seg,
			    const struct shmet_family_desc *d);

SHMET_W const unsigned char *
shmet_impl_str_or_empty(const struct shmet_segment *seg, struct shmet_seg_str s);

SHMET_W void
shmet_impl_take_spare_series(struct shmet_segment *seg, uint32_t kind,
			     uint32_t blob_size, uint32_t *id, uint32_t *cell,
			     struct shmet_seg_str *blob);

SHMET_W void
shmet_impl_keep_spare_series(struct shmet_segment *seg, uint32_t id,
			     uint32_t cell, uint32_t kind,
			     struct shmet_seg_str blob);

SHMET_W void
shmet_impl_keep_spare_record(struct shmet_segment *seg, uint32_t id,
			     uint32_t kind);

SHMET_W int
shmet_impl_build_series(struct shmet_segment *seg,
			const struct shmet_family *fam, uint32_t n,
			const char *const *values, const size_t *lens,
			uint64_t hash, uint32_t *out);

SHMET_W int
shmet_impl_series_of(const struct shmet_family *fam, uint32_t n,
		     const char *const *values, const size_t *lens,
		     int repaired, uint32_t *cell, uint32_t *id,
		     uint32_t *gen);

SHMET_W int
shmet_impl_series_repaired(const struct shmet_family *fam, uint32_t n,
			   const char *const *values, const size_t *lens,
			   uint32_t *cell, uint32_t *id, uint32_t *gen);

SHMET_W int
shmet_impl_series(const struct shmet_family *fam, uint32_t n,
		  const char *const *values, uint32_t *cell, uint32_t *id,
		  uint32_t *gen);

SHMET_W int
shmet_impl_values_valid(const struct shmet_family *fam, uint32_t n,
			const char *const *values, size_t *lens);

SHMET_W int
shmet_impl_repair_values(const struct shmet_family *fam, uint32_t n,
			 const char *const *values, const size_t *lens,
			 const char **fixed, size_t *fixed_lens, char **copy);

/* Where a handle's series keeps its incarnation, and the one resolved. */
struct shmet_impl_gen {
	const SHMET_ATOMIC(uint32_t) *at;
	uint32_t expect;
};

SHMET_W shmet_impl_cell *
shmet_impl_resolve(const struct shmet_family *fam, uint32_t type, uint32_t n,
		   const char *const *values, int *rc, unsigned char **cpu0,
		   struct shmet_impl_gen *gen);

#endif /* SHMETRICS_WRITER_PRIVATE_H */
