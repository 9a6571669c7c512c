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

/* Which cell of a series holds what (shmet_seg_cell_*, the rule book's
 * cells.h): the handles keep a series' first cell, and every write below
 * finds its role's cell through the rule book with first 0 (constants,
 * folded at compile time). */
#include "cells.h"

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
	unsigned char *cpus;            /* the per-CPU blocks, one mapping */
	size_t cpus_size;
	SHMET_ATOMIC(uint64_t) reserved; /* bytes of our block fallocated */
	/*
	 * Records this process built but lost a publication race with (see
	 * writer/writer-private.h, "Spare records"), guarded by a try-lock.
	 * spare_cells is the kind of the spare run of cells (writer/cells.c,
	 * shmet_impl_cells_kind: its count, with bit 31 set when it came
	 * from a gauge chunk), so only a family of that kind reuses it.
	 */
	SHMET_ATOMIC(int) spare_busy;
	uint32_t spare_series, spare_cell, spare_cells;
	struct shmet_seg_str spare_blob;
	uint32_t spare_family;
	SHMET_ATOMIC(int) gate_busy;    /* a thread holds a creation gate */
	uint32_t reuse_cursor;          /* where reuse.c looks next (gated) */
	uint32_t flags;
	int attached;
	int owner_pid;                  /* the process that took the slot */
	SHMET_ATOMIC(int) live_locked;  /* our liveness lock is held */
	/* family records this process registered, one bit each (writer/
	 * registrants.c): what a fork child sets again in its own slot */
	SHMET_ATOMIC(uint64_t) *registered;
	SHMET_ATOMIC(int) index_busy;   /* a thread holds the family index lock */
	struct shmet_segment *next;     /* the process's fork list */
	/* the exemplar region, mapped by the first exemplar write
	 * (writer/exemplar.c, under the fork list's lock) */
	unsigned char *exemplars;
	char name[256];
};

/*
 * Per-CPU cells (docs/DESIGN.md, "Per-CPU cells").  Counters and
 * histograms add to the cell of the current CPU's block inside a
 * restartable sequence (Linux rseq(2)): the kernel aborts the section if
 * the thread is preempted, migrated or signalled before its last store
 * (the commit), so one CPU's cell is only ever written by one thread at a
 * time, with plain instructions.  The section also compares the series'
 * incarnation (layout.h, gen): an aborted section checks it again.
 * Threads without rseq, CPUs beyond the segment's cpu_blocks, aborted
 * sections, failed handles and other architectures take the fallback: a
 * relaxed atomic on the handle's fallback cell (docs/DESIGN.md, "Fallback
 * cells").
 *
 * The kernel's struct rseq (the ABI, linux/rseq.h); only cpu_id and
 * rseq_cs are used here.
 */
struct shmet_impl_rseq {
	uint32_t cpu_id_start;
	int32_t cpu_id;                 /* < 0: not registered */
	uint64_t rseq_cs;               /* the critical section's descriptor */
	uint32_t flags;
	uint32_t node_id;
	uint32_t mm_cid;
	uint32_t padding;
};

/* x86-64 and aarch64 with GCC or Clang on Linux; elsewhere (or with
 * SHMETRICS_NO_RSEQ_ASM defined) every write takes the fallback. */
#if defined(__GNUC__) && !defined(SHMETRICS_NO_RSEQ_ASM) && \
	defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#define SHMET_IMPL_RSEQ 1
#endif

/*
 * The thread's struct rseq: glibc's area, one the writer registered for
 * this thread, or a dummy whose cpu_id is -1 (no rseq: the fallback).
 * NULL in a new thread; shmet_impl_rseq_resolve() fills it once.  Initial-
 * exec, so the hot path reads it fs-relative even from a shared
 * libshmetrics; the single-header build defines it in the program.
 */
#if defined(__GNUC__)
#define SHMET_IMPL_LIKELY(x) __builtin_expect(!!(x), 1)
#define SHMET_IMPL_UNLIKELY_(x) __builtin_expect(!!(x), 0)
extern __thread struct shmet_impl_rseq *shmet_impl_rseq_tls
	__attribute__((tls_model("initial-exec"), visibility("default")));
#else
#define SHMET_IMPL_LIKELY(x) (x)
#define SHMET_IMPL_UNLIKELY_(x) (x)
extern _Thread_local struct shmet_impl_rseq *shmet_impl_rseq_tls;
#endif

/* Slow path: the calling thread's struct rseq, resolved once (writer/). */
SHMET_API struct shmet_impl_rseq *shmet_impl_rseq_resolve(void);

/* Slow path: count a write through a handle of a removed series. */
SHMET_API void shmet_impl_stale_write(const SHMET_ATOMIC(uint32_t) *gen);

/* Slow path (writer/fallback.c): the bucket of v among n > 16 bounds. */
SHMET_API uint32_t shmet_impl_bucket_search(const double *b, uint32_t n,
					    double v);

/*
 * Slow path (writer/fallback.c): an observation the CPU cells did not
 * take, into the handle's fallback cells: bucket i (if bucket) and the
 * sum, unless the handle is stale.  Out of line, so that the observation
 * stays small enough to be inlined where it is made.
 */
SHMET_API void shmet_impl_observe_fallback(const struct shmet_histogram *h,
					   uint32_t i, double sum, int bucket);

/*
 * 1 (and the write is counted as dropped) if the handle's series was
 * removed or expired since the handle resolved it.  Relaxed: the record's
 * incarnation is one word, compared with the handle's; the removal that
 * moves it orders nothing else a writer reads (see layout.h, gen, and
 * SHMET_REUSE_NS for a write already past this check).
 */
static inline int
shmet_impl_stale(const SHMET_ATOMIC(uint32_t) *gen, uint32_t expect)
{
	if (SHMET_IMPL_LIKELY(SHMET_AT(load_explicit)(gen, SHMET_MO(relaxed)) ==
			      expect))
		return 0;
	shmet_impl_stale_write(gen);
	return 1;
}

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

/*
 * A histogram's bucket for v: the number of bounds v is above, which for
 * increasing bounds is the first bucket whose bound v does not exceed.
 * "!(v <= b)" sends NaN above every bound, to the +Inf bucket.  Always
 * at most n, whatever the bounds hold (after shmet_close they read 0).
 *
 * Up to 16 bounds are counted, all of them, two per vector compare and no
 * branch per bound: with observations spread over the buckets a search's
 * branches are mispredicted, and 12 bounds cost 2.6-3.5 ns counted
 * against 4.0-8.7 ns searched (bench/RESULTS.md, issue 22's inline path).
 * More bounds are searched by bisection, out of line (writer/fallback.c),
 * so that an observation stays small enough to be inlined.
 */
#if defined(__GNUC__) && (defined(__SSE2__) || defined(__ARM_NEON))
typedef double shmet_impl_v2d __attribute__((vector_size(16)));
typedef int64_t shmet_impl_v2i __attribute__((vector_size(16)));
#define SHMET_IMPL_V2 1
#endif

static inline uint32_t
shmet_impl_bucket(const double *b, uint32_t n, double v)
{
	uint32_t i = 0;

	if (SHMET_IMPL_LIKELY(n <= 16)) {
#ifdef SHMET_IMPL_V2
		shmet_impl_v2d x = { v, v }, b0, b1;
		/* -1 in a lane per bound at or above v (two running sums,
		 * so that the adds of neighbours do not wait on each other) */
		shmet_impl_v2i below0 = { 0, 0 }, below1 = { 0, 0 };
		uint32_t above;

		for (; i + 4 <= n; i += 4) {
			memcpy(&b0, b + i, sizeof b0);
			memcpy(&b1, b + i + 2, sizeof b1);
			below0 += (shmet_impl_v2i)(x <= b0);
			below1 += (shmet_impl_v2i)(x <= b1);
		}
		if (i + 2 <= n) {
			memcpy(&b0, b + i, sizeof b0);
			below0 += (shmet_impl_v2i)(x <= b0);
			i += 2;
		}
		below0 += below1;
		above = i + (uint32_t)(below0[0] + below0[1]);
		if (i < n)
			above += !(v <= b[i]);
		return above;
#else
		uint32_t above = 0;

		for (; i < n; i++)
			above += !(v <= b[i]);
		return above;
#endif
	}
	return shmet_impl_bucket_search(b, n, v);
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

/*
 * An observation into the handle's fallback cells (the bucket's count if
 * bucket, and the sum).  Relaxed: atomicity only, a cell orders nothing.
 */
static inline void
shmet_impl_observe_atomic(const struct shmet_histogram *h, uint32_t i,
			  double sum, int bucket)
{
	if (bucket)
		SHMET_AT(fetch_add_explicit)(
			&h->cell[shmet_seg_cell_bucket(0, i)], 1,
			SHMET_MO(relaxed));
	shmet_impl_add_double(
		&h->cell[shmet_seg_cell_hist_sum(0, h->bound_count)], sum);
}

/*
 * The rseq critical sections.  Each adds to the calling thread's current
 * CPU's cell of a series and returns 0 if it committed; else (the kernel
 * aborted it: preemption, migration, signal; the thread has no rseq; its
 * CPU is beyond the segment's blocks; the series' incarnation moved) it
 * wrote nothing and returns non-zero, and the caller takes the fallback.
 *
 * A section, in order:
 *  1. stores the address of its descriptor (struct rseq_cs in section
 *     __rseq_cs: version 0, flags 0, start_ip, post_commit_offset,
 *     abort_ip) into rs->rseq_cs.  That store is the section's first
 *     instruction, not before it: a signal handler that counts between
 *     that store and the section would leave its own descriptor there, and
 *     our section would run unprotected.  Interrupted at the store, the
 *     thread either finds its own descriptor from an earlier pass (abort:
 *     harmless) or another one (nothing to abort yet; the store follows).
 *  2. loads rs->cpu_id once, inside: from here to the commit the kernel
 *     aborts the section rather than let the thread run anywhere else, so
 *     the value read is the CPU the commit runs on (no second read and
 *     compare).  Compared unsigned with the handle's cpus: a thread
 *     without rseq (cpu_id -1: the dummy area), a CPU beyond the blocks
 *     and a handle without CPU cells (cpus 0) all abort here.
 *  3. computes the cell's address, cpu0 + cpu * stride + offset, into a
 *     register, and addresses the cell through that register alone (no
 *     index register): on the Intel core this was measured on, a read-
 *     modify-write through (base,index) took 2.0 ns where the same through
 *     a base register took 0.3-0.6 ns (bench/RESULTS.md, issue 22's
 *     inline path).
 *  4. compares the series' incarnation (layout.h, gen) with the handle's:
 *     one load and compare.  A plain load, i.e. relaxed: the removal that
 *     moves it orders nothing a writer reads, and a write past this check
 *     lands long before the cells can be reused (SHMET_REUSE_NS: the
 *     section runs without a stop or is aborted).
 *  5. commits with its last instruction, a plain store (on x86-64 the
 *     integer add is load, lea, store: the same store, and measured as
 *     fast with an amount in a register as with a constant, where
 *     `addq reg, mem` was 2.2 ns against 0.9).  Plain loads and stores,
 *     no fence and no lock: one CPU runs one thread at a time, so no other
 *     writer touched the cell between the section's load and its store;
 *     readers load the cell with one aligned 8-byte atomic load, which
 *     sees each commit whole; and a counter orders nothing else.  The
 *     descriptor's store needs no fence either: only the kernel reads it,
 *     on this thread, on entry from this thread's own instruction stream.
 *
 * The abort handler is preceded by the signature the thread registered
 * with (RSEQ_SIG; glibc's and the writer's).  "memory" is clobbered: the
 * section writes a cell the compiler cannot name (its address is computed
 * inside) and reads words the kernel or other processes write.
 */
/*
 * "asm inline": the compiler then counts a section as the few instructions
 * it runs, not as the lines of its template (the descriptor, the abort
 * handler), which made GCC 12 call shmet_histogram_observe out of line
 * (5.9 ns against 4.6 ns inlined).  GCC 9 and Clang 11 have it.
 */
#if (defined(__clang__) && __clang_major__ >= 11) || \
	(!defined(__clang__) && defined(__GNUC__) && __GNUC__ >= 9)
#define SHMET_IMPL_ASM_INLINE inline
#else
#define SHMET_IMPL_ASM_INLINE
#endif

#if defined(SHMET_IMPL_RSEQ) && defined(__x86_64__)
/*
 * The handle's fields as operands: GCC folds their loads into the
 * section's instructions when a memory operand is allowed (counter inc
 * 1.0 ns; 1.13 in registers); Clang spills such operands to the stack
 * and reloads them (1.44 ns; 1.08 in registers).
 */
#if defined(__clang__)
#define SHMET_IMPL_RM "r"
#else
#define SHMET_IMPL_RM "rm"
#endif
#define SHMET_IMPL_RSEQ_CS(desc, start, end, abort_)                          \
	".pushsection __rseq_cs, \"aw\"\n\t"                                  \
	".balign 32\n\t"                                                      \
	desc ":\n\t"                                                          \
	".long 0x0, 0x0\n\t"                                                  \
	".quad " start "f, (" end "f - " start "f), " abort_ "f\n\t"          \
	".popsection\n\t"
#define SHMET_IMPL_RSEQ_ABORT(at, label)                                      \
	".pushsection __rseq_failure, \"ax\"\n\t"                             \
	/* ud1 0x53053053(%rip), %edi: RSEQ_SIG, as glibc registers it */     \
	".byte 0x0f, 0xb9, 0x3d\n\t"                                          \
	".long 0x53053053\n\t"                                                \
	at ":\n\t"                                                            \
	"jmp %l[" label "]\n\t"                                               \
	".popsection\n\t"
/* Steps 1-4 of a section (descriptor 3, start 1, abort 4): leaves this
 * CPU's cell of the series (cpu0 + cpu * stride) in %rax, the CPU in %ecx. */
#define SHMET_IMPL_RSEQ_ENTER                                                 \
	SHMET_IMPL_RSEQ_CS("3", "1", "2", "4")                                \
	"leaq 3b(%%rip), %%rax\n\t"                                           \
	"1:\n\t"                                                              \
	"movq %%rax, 8(%[rs])\n\t"      /* 1. arm */                          \
	"movl 4(%[rs]), %%ecx\n\t"      /* 2. cpu_id */                       \
	"cmpl %[cpus], %%ecx\n\t"                                             \
	"jae 4f\n\t"                                                          \
	"movl %%ecx, %%eax\n\t"         /* 3. the cell */                     \
	"imulq %[stride], %%rax\n\t"                                          \
	"addq %[cpu0], %%rax\n\t"                                             \
	"cmpl %[expect], (%[gen])\n\t"  /* 4. the series' incarnation */      \
	"jne 4f\n\t"

static inline int
shmet_impl_rseq_add_u64(struct shmet_impl_rseq *rs, unsigned char *cpu0,
			uint64_t stride, uint32_t cpus,
			const SHMET_ATOMIC(uint32_t) *gen, uint32_t expect,
			uint64_t n)
{
	__asm__ __volatile__ SHMET_IMPL_ASM_INLINE goto(
		SHMET_IMPL_RSEQ_ENTER
		"movq (%%rax), %%rcx\n\t"
		"leaq (%%rcx, %[n]), %%rcx\n\t"
		"movq %%rcx, (%%rax)\n\t"       /* 5. the commit */
		"2:\n\t"
		SHMET_IMPL_RSEQ_ABORT("4", "aborted")
		:
		: [rs] "r"(rs), [cpus] SHMET_IMPL_RM(cpus),
		  [stride] SHMET_IMPL_RM(stride), [cpu0] SHMET_IMPL_RM(cpu0),
		  [gen] "r"(gen), [expect] "r"(expect),
		  [n] "r"(n)
		: "memory", "cc", "rax", "rcx"
		: aborted);
	return 0;
aborted:
	return 1;
}

/* The float cell (counter add_double): at cpu0 + 8, the byte offset of
 * shmet_seg_cell_counter_float(0) written as an assembler constant
 * (tests/test-rules.c holds the two equal). */
static inline int
shmet_impl_rseq_add_f64(struct shmet_impl_rseq *rs, unsigned char *cpu0,
			uint64_t stride, uint32_t cpus,
			const SHMET_ATOMIC(uint32_t) *gen, uint32_t expect,
			double v)
{
	__asm__ __volatile__ SHMET_IMPL_ASM_INLINE goto(
		SHMET_IMPL_RSEQ_ENTER
		"movsd 8(%%rax), %%xmm15\n\t"
		"addsd %[v], %%xmm15\n\t"
		"movsd %%xmm15, 8(%%rax)\n\t"   /* 5. the commit */
		"2:\n\t"
		SHMET_IMPL_RSEQ_ABORT("4", "aborted")
		:
		: [rs] "r"(rs), [cpus] SHMET_IMPL_RM(cpus),
		  [stride] SHMET_IMPL_RM(stride), [cpu0] SHMET_IMPL_RM(cpu0),
		  [gen] "r"(gen), [expect] "r"(expect),
		  [v] "x"(v)
		: "memory", "cc", "rax", "rcx", "xmm15"
		: aborted);
	return 0;
aborted:
	return 1;
}

/*
 * A histogram observation: two sections in a row, the bucket's count (the
 * cell at byte offset bucket) then the sum (to_sum bytes further).  Two,
 * because a section has one commit: after an abort between two stores of
 * one section nothing tells whether the first was done.  The second
 * section does not read the CPU again: it compares cpu_id with the
 * first's (a thread moved in between aborts it), goes on from the first's
 * cell address, and checks the incarnation again (the thread may have
 * stopped between the two).  0: both committed; 1: neither (take the
 * whole fallback); 2: the bucket committed and the sum did not (add the
 * sum in the fallback).
 */
static inline int
shmet_impl_rseq_observe(struct shmet_impl_rseq *rs, unsigned char *cpu0,
			uint64_t stride, uint32_t cpus,
			const SHMET_ATOMIC(uint32_t) *gen, uint32_t expect,
			uint64_t bucket, uint64_t to_sum, double v)
{
	__asm__ __volatile__ SHMET_IMPL_ASM_INLINE goto(
		SHMET_IMPL_RSEQ_ENTER
		"addq %[bucket], %%rax\n\t"
		"addq $1, (%%rax)\n\t"         /* 5. the bucket's commit */
		"2:\n\t"
		SHMET_IMPL_RSEQ_CS("7", "5", "6", "8")
		"leaq 7b(%%rip), %%rdx\n\t"
		"5:\n\t"
		"movq %%rdx, 8(%[rs])\n\t"
		"cmpl %%ecx, 4(%[rs])\n\t"
		"jne 8f\n\t"
		"cmpl %[expect], (%[gen])\n\t"
		"jne 8f\n\t"
		"addq %[to_sum], %%rax\n\t"
		"movsd (%%rax), %%xmm15\n\t"
		"addsd %[v], %%xmm15\n\t"
		"movsd %%xmm15, (%%rax)\n\t"   /* the sum's commit */
		"6:\n\t"
		SHMET_IMPL_RSEQ_ABORT("4", "neither")
		SHMET_IMPL_RSEQ_ABORT("8", "no_sum")
		:
		: [rs] "r"(rs), [cpus] SHMET_IMPL_RM(cpus),
		  [stride] SHMET_IMPL_RM(stride), [cpu0] SHMET_IMPL_RM(cpu0),
		  [gen] "r"(gen), [expect] "r"(expect),
		  [bucket] SHMET_IMPL_RM(bucket),
		  [to_sum] SHMET_IMPL_RM(to_sum), [v] "x"(v)
		: "memory", "cc", "rax", "rcx", "rdx", "xmm15"
		: neither, no_sum);
	return 0;
neither:
	return 1;
no_sum:
	return 2;
}
#elif defined(SHMET_IMPL_RSEQ) && defined(__aarch64__)
#define SHMET_IMPL_RSEQ_CS(desc, start, end, abort_)                          \
	".pushsection __rseq_cs, \"aw\"\n\t"                                  \
	".balign 32\n\t"                                                      \
	desc ":\n\t"                                                          \
	".long 0x0, 0x0\n\t"                                                  \
	".quad " start "f, (" end "f - " start "f), " abort_ "f\n\t"          \
	".popsection\n\t"
/* Inline, skipped over: b.ne reaches only 1 MiB.  brk #0x45e0 is RSEQ_SIG. */
#define SHMET_IMPL_RSEQ_ABORT(at, label)                                      \
	".inst 0xd428bc00\n\t"                                                \
	at ":\n\t"                                                            \
	"b %l[" label "]\n\t"
/* Steps 1-4 (see above; descriptor 3, start 1, abort 4): leaves this
 * CPU's cell of the series in x15, the CPU in w17. */
#define SHMET_IMPL_RSEQ_ENTER                                                 \
	SHMET_IMPL_RSEQ_CS("3", "1", "2", "4")                                \
	"adrp x15, 3b\n\t"                                                    \
	"add x15, x15, :lo12:3b\n\t"                                          \
	"1:\n\t"                                                              \
	"str x15, [%[rs], #8]\n\t"      /* 1. arm */                          \
	"ldr w17, [%[rs], #4]\n\t"      /* 2. cpu_id (zero-extended) */       \
	"cmp w17, %w[cpus]\n\t"                                               \
	"b.hs 4f\n\t"                                                         \
	"madd x15, x17, %[stride], %[cpu0]\n\t" /* 3. the cell */             \
	"ldr w16, [%[gen]]\n\t"         /* 4. the series' incarnation */      \
	"cmp w16, %w[expect]\n\t"                                             \
	"b.ne 4f\n\t"

static inline int
shmet_impl_rseq_add_u64(struct shmet_impl_rseq *rs, unsigned char *cpu0,
			uint64_t stride, uint32_t cpus,
			const SHMET_ATOMIC(uint32_t) *gen, uint32_t expect,
			uint64_t n)
{
	__asm__ __volatile__ SHMET_IMPL_ASM_INLINE goto(
		SHMET_IMPL_RSEQ_ENTER
		"ldr x16, [x15]\n\t"
		"add x16, x16, %[n]\n\t"
		"str x16, [x15]\n\t"            /* 5. the commit */
		"2:\n\t"
		"b 9f\n\t"
		SHMET_IMPL_RSEQ_ABORT("4", "aborted")
		"9:\n\t"
		:
		: [rs] "r"(rs), [cpus] "r"(cpus), [stride] "r"(stride),
		  [cpu0] "r"(cpu0), [gen] "r"(gen), [expect] "r"(expect),
		  [n] "r"(n)
		: "memory", "cc", "x15", "x16", "x17"
		: aborted);
	return 0;
aborted:
	return 1;
}

static inline int
shmet_impl_rseq_add_f64(struct shmet_impl_rseq *rs, unsigned char *cpu0,
			uint64_t stride, uint32_t cpus,
			const SHMET_ATOMIC(uint32_t) *gen, uint32_t expect,
			double v)
{
	__asm__ __volatile__ SHMET_IMPL_ASM_INLINE goto(
		SHMET_IMPL_RSEQ_ENTER
		"ldr d16, [x15, #8]\n\t"
		"fadd d16, d16, %d[v]\n\t"
		"str d16, [x15, #8]\n\t"        /* 5. the commit */
		"2:\n\t"
		"b 9f\n\t"
		SHMET_IMPL_RSEQ_ABORT("4", "aborted")
		"9:\n\t"
		:
		: [rs] "r"(rs), [cpus] "r"(cpus), [stride] "r"(stride),
		  [cpu0] "r"(cpu0), [gen] "r"(gen), [expect] "r"(expect),
		  [v] "w"(v)
		: "memory", "cc", "x15", "x16", "x17", "v16"
		: aborted);
	return 0;
aborted:
	return 1;
}

static inline int
shmet_impl_rseq_observe(struct shmet_impl_rseq *rs, unsigned char *cpu0,
			uint64_t stride, uint32_t cpus,
			const SHMET_ATOMIC(uint32_t) *gen, uint32_t expect,
			uint64_t bucket, uint64_t to_sum, double v)
{
	__asm__ __volatile__ SHMET_IMPL_ASM_INLINE goto(
		SHMET_IMPL_RSEQ_ENTER
		"add x15, x15, %[bucket]\n\t"
		"ldr x16, [x15]\n\t"
		"add x16, x16, #1\n\t"
		"str x16, [x15]\n\t"          /* 5. the bucket's commit */
		"2:\n\t"
		SHMET_IMPL_RSEQ_CS("7", "5", "6", "8")
		"adrp x16, 7b\n\t"
		"add x16, x16, :lo12:7b\n\t"
		"5:\n\t"
		"str x16, [%[rs], #8]\n\t"
		"ldr w16, [%[rs], #4]\n\t"
		"cmp w16, w17\n\t"
		"b.ne 8f\n\t"
		"ldr w16, [%[gen]]\n\t"
		"cmp w16, %w[expect]\n\t"
		"b.ne 8f\n\t"
		"add x15, x15, %[to_sum]\n\t"
		"ldr d16, [x15]\n\t"
		"fadd d16, d16, %d[v]\n\t"
		"str d16, [x15]\n\t"          /* the sum's commit */
		"6:\n\t"
		"b 9f\n\t"
		SHMET_IMPL_RSEQ_ABORT("4", "neither")
		SHMET_IMPL_RSEQ_ABORT("8", "no_sum")
		"9:\n\t"
		:
		: [rs] "r"(rs), [cpus] "r"(cpus), [stride] "r"(stride),
		  [cpu0] "r"(cpu0), [gen] "r"(gen), [expect] "r"(expect),
		  [bucket] "r"(bucket), [to_sum] "r"(to_sum), [v] "w"(v)
		: "memory", "cc", "x15", "x16", "x17", "v16"
		: neither, no_sum);
	return 0;
neither:
	return 1;
no_sum:
	return 2;
}
#endif

#ifdef SHMET_IMPL_RSEQ
/* The calling thread's struct rseq (resolved on its first write). */
static inline struct shmet_impl_rseq *
shmet_impl_rseq_area(void)
{
	struct shmet_impl_rseq *rs = shmet_impl_rseq_tls;

	if (SHMET_IMPL_UNLIKELY_(!rs))
		rs = shmet_impl_rseq_resolve();
	return rs;
}

/*
 * 1 if the thread has rseq.  Sections check that themselves (step 2);
 * looking first spares a thread without rseq the section and its abort,
 * 2 ns a write (bench/RESULTS.md, issue 22's inline path), for a load of
 * the word the section reads next anyway, and keeps sections from storing
 * into the writer's dummy area, which all such threads share
 * (writer/percpu.c).  volatile: the kernel writes it.
 */
static inline int
shmet_impl_rseq_on(const struct shmet_impl_rseq *rs)
{
	return *(volatile const int32_t *)&rs->cpu_id >= 0;
}

/*
 * Add val to the series' cell of kind (u64, f64) on this CPU, else run
 * fallback (an atomic on the handle's fallback cell) unless the handle is
 * stale.  A handle without CPU cells has cpus 0: its sections abort.
 */
#define SHMET_IMPL_PERCPU_ADD(h, kind, val, fallback)                         \
	do {                                                                  \
		struct shmet_impl_rseq *rs_ = shmet_impl_rseq_area();         \
                                                                              \
		if (SHMET_IMPL_LIKELY(shmet_impl_rseq_on(rs_)) &&             \
		    SHMET_IMPL_LIKELY(shmet_impl_rseq_add_##kind(             \
			    rs_, (h)->cpu0, (h)->stride, (h)->cpus, (h)->gen, \
			    (h)->expect, (val)) == 0))                        \
			break;                                                \
		if (!shmet_impl_stale((h)->gen, (h)->expect))                 \
			fallback;                                             \
	} while (0)
#else
#define SHMET_IMPL_PERCPU_ADD(h, kind, val, fallback)              \
	do {                                                        \
		if (!shmet_impl_stale((h)->gen, (h)->expect))       \
			fallback;                                   \
	} while (0)
#endif

static inline void
shmet_impl_gauge_stamp(const struct shmet_gauge *g)
{
	uint64_t stamp = 1;

	if (g->timed)           /* fixed per handle: perfectly predicted */
		stamp = shmet_now_ns() + 1;
	/* Relaxed: value and stamp are independent atomics; a reader may
	 * pair a value with the previous stamp. */
	SHMET_AT(store_explicit)(&g->cell[shmet_seg_cell_gauge_stamp(0)],
				 stamp, SHMET_MO(relaxed));
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
