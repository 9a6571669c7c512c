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
	unsigned char *cpus;            /* the per-CPU blocks, one mapping */
	size_t cpus_size;
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
	char name[256];
};

/*
 * Per-CPU cells (docs/DESIGN.md, "Per-CPU cells").  Counters and
 * histograms add to the cell of the current CPU's block inside a
 * restartable sequence (Linux rseq(2)): the kernel aborts the section if
 * the thread is preempted, migrated or signalled before its last store
 * (the commit), so one CPU's cell is only ever written by one thread at a
 * time, with plain instructions.  The section also compares the series'
 * incarnation (layout.h, gen): an aborted section checks it again.  Threads without rseq, CPUs beyond the
 * segment's cpu_blocks, aborted sections, failed handles and other
 * architectures take the fallback: a relaxed atomic on the process block.
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
 * One rseq critical section on CPU cpu's cell p: 0 if it committed, 1 if
 * the kernel aborted it (preemption, migration, signal) or the thread no
 * longer runs on cpu; then nothing was written.  The descriptor (struct
 * rseq_cs: version 0, flags 0, start_ip, post_commit_offset, abort_ip)
 * lives in section __rseq_cs; its address is stored into rs->rseq_cs,
 * the section compares rs->cpu_id with cpu, and its last instruction is
 * the commit.  The abort handler is preceded by the signature the thread
 * registered with (RSEQ_SIG; glibc's and the writer's).
 *
 * The store of the descriptor's address is the section's first
 * instruction, not before it: a signal handler that counts between that
 * store and the section would leave its own descriptor there, and our
 * section would run unprotected.  Interrupted at the store, the thread
 * either finds its own descriptor from an earlier pass (abort: harmless)
 * or another one (nothing to abort yet; the store follows).
 */
#if defined(SHMET_IMPL_RSEQ) && defined(__x86_64__)
#define SHMET_IMPL_RSEQ_CS(start, end, abort_)                                \
	".pushsection __rseq_cs, \"aw\"\n\t"                                  \
	".balign 32\n\t"                                                      \
	"3:\n\t"                                                              \
	".long 0x0, 0x0\n\t"                                                  \
	".quad " start ", (" end " - " start "), " abort_ "\n\t"              \
	".popsection\n\t"
#define SHMET_IMPL_RSEQ_ABORT(label)                                          \
	".pushsection __rseq_failure, \"ax\"\n\t"                             \
	/* ud1 0x53053053(%rip), %edi: RSEQ_SIG, as glibc registers it */     \
	".byte 0x0f, 0xb9, 0x3d\n\t"                                          \
	".long 0x53053053\n\t"                                                \
	"4:\n\t"                                                              \
	"jmp %l[" label "]\n\t"                                               \
	".popsection\n\t"

static inline int
shmet_impl_rseq_add_u64(struct shmet_impl_rseq *rs, int32_t cpu,
			const SHMET_ATOMIC(uint32_t) *gen, uint32_t expect,
			unsigned char *p, uint64_t n)
{
	__asm__ __volatile__ goto(
		SHMET_IMPL_RSEQ_CS("1f", "2f", "4f")
		"leaq 3b(%%rip), %%rax\n\t"
		"1:\n\t"
		"movq %%rax, 8(%[rs])\n\t"
		"cmpl %[cpu], 4(%[rs])\n\t"
		"jnz 4f\n\t"
		"cmpl %[expect], (%[gen])\n\t"  /* the series' incarnation */
		"jnz 4f\n\t"
		"addq %[n], (%[p])\n\t"         /* the commit */
		"2:\n\t"
		SHMET_IMPL_RSEQ_ABORT("aborted")
		:
		: [rs] "r"(rs), [cpu] "r"(cpu), [p] "r"(p), [n] "r"(n),
		  [gen] "r"(gen), [expect] "r"(expect)
		: "memory", "cc", "rax"
		: aborted);
	return 0;
aborted:
	return 1;
}

static inline int
shmet_impl_rseq_add_f64(struct shmet_impl_rseq *rs, int32_t cpu,
			const SHMET_ATOMIC(uint32_t) *gen, uint32_t expect,
			unsigned char *p, double v)
{
	__asm__ __volatile__ goto(
		SHMET_IMPL_RSEQ_CS("1f", "2f", "4f")
		"leaq 3b(%%rip), %%rax\n\t"
		"1:\n\t"
		"movq %%rax, 8(%[rs])\n\t"
		"cmpl %[cpu], 4(%[rs])\n\t"
		"jnz 4f\n\t"
		"cmpl %[expect], (%[gen])\n\t"
		"jnz 4f\n\t"
		"movsd (%[p]), %%xmm15\n\t"
		"addsd %[v], %%xmm15\n\t"
		"movsd %%xmm15, (%[p])\n\t"     /* the commit */
		"2:\n\t"
		SHMET_IMPL_RSEQ_ABORT("aborted")
		:
		: [rs] "r"(rs), [cpu] "r"(cpu), [p] "r"(p), [v] "x"(v),
		  [gen] "r"(gen), [expect] "r"(expect)
		: "memory", "cc", "rax", "xmm15"
		: aborted);
	return 0;
aborted:
	return 1;
}
#elif defined(SHMET_IMPL_RSEQ) && defined(__aarch64__)
#define SHMET_IMPL_RSEQ_CS(start, end, abort_)                                \
	".pushsection __rseq_cs, \"aw\"\n\t"                                  \
	".balign 32\n\t"                                                      \
	"3:\n\t"                                                              \
	".long 0x0, 0x0\n\t"                                                  \
	".quad " start ", (" end " - " start "), " abort_ "\n\t"              \
	".popsection\n\t"                                                     \
	"adrp x15, 3b\n\t"                                                    \
	"add x15, x15, :lo12:3b\n\t"
/* Inline, skipped over: b.ne reaches only 1 MiB.  brk #0x45e0 is RSEQ_SIG. */
#define SHMET_IMPL_RSEQ_ABORT(label)                                          \
	"b 5f\n\t"                                                            \
	".inst 0xd428bc00\n\t"                                                \
	"4:\n\t"                                                              \
	"b %l[" label "]\n\t"                                                 \
	"5:\n\t"

static inline int
shmet_impl_rseq_add_u64(struct shmet_impl_rseq *rs, int32_t cpu,
			const SHMET_ATOMIC(uint32_t) *gen, uint32_t expect,
			unsigned char *p, uint64_t n)
{
	__asm__ __volatile__ goto(
		SHMET_IMPL_RSEQ_CS("1f", "2f", "4f")
		"1:\n\t"
		"str x15, [%[rs], #8]\n\t"
		"ldr w15, [%[rs], #4]\n\t"
		"cmp w15, %w[cpu]\n\t"
		"b.ne 4f\n\t"
		"ldr w15, [%[gen]]\n\t"        /* the series' incarnation */
		"cmp w15, %w[expect]\n\t"
		"b.ne 4f\n\t"
		"ldr x16, [%[p]]\n\t"
		"add x16, x16, %[n]\n\t"
		"str x16, [%[p]]\n\t"           /* the commit */
		"2:\n\t"
		SHMET_IMPL_RSEQ_ABORT("aborted")
		:
		: [rs] "r"(rs), [cpu] "r"(cpu), [p] "r"(p), [n] "r"(n),
		  [gen] "r"(gen), [expect] "r"(expect)
		: "memory", "cc", "x15", "x16"
		: aborted);
	return 0;
aborted:
	return 1;
}

static inline int
shmet_impl_rseq_add_f64(struct shmet_impl_rseq *rs, int32_t cpu,
			const SHMET_ATOMIC(uint32_t) *gen, uint32_t expect,
			unsigned char *p, double v)
{
	__asm__ __volatile__ goto(
		SHMET_IMPL_RSEQ_CS("1f", "2f", "4f")
		"1:\n\t"
		"str x15, [%[rs], #8]\n\t"
		"ldr w15, [%[rs], #4]\n\t"
		"cmp w15, %w[cpu]\n\t"
		"b.ne 4f\n\t"
		"ldr w15, [%[gen]]\n\t"
		"cmp w15, %w[expect]\n\t"
		"b.ne 4f\n\t"
		"ldr d16, [%[p]]\n\t"
		"fadd d16, d16, %d[v]\n\t"
		"str d16, [%[p]]\n\t"           /* the commit */
		"2:\n\t"
		SHMET_IMPL_RSEQ_ABORT("aborted")
		:
		: [rs] "r"(rs), [cpu] "r"(cpu), [p] "r"(p), [v] "w"(v),
		  [gen] "r"(gen), [expect] "r"(expect)
		: "memory", "cc", "x15", "v16"
		: aborted);
	return 0;
aborted:
	return 1;
}
#endif

/*
 * Per-CPU target of a handle: the cell at byte offset off of the series in
 * the block of the CPU the thread runs on, or NULL (no rseq, a CPU beyond
 * the segment's blocks, a failed handle): take the fallback.
 */
#ifdef SHMET_IMPL_RSEQ
#define SHMET_IMPL_PERCPU_ADD(h, kind, off, val, fallback)                    \
	do {                                                                  \
		if (SHMET_IMPL_LIKELY((h)->cpu0 != NULL)) {                   \
			struct shmet_impl_rseq *rs_ = shmet_impl_rseq_tls;    \
			int32_t cpu_;                                         \
                                                                              \
			if (SHMET_IMPL_UNLIKELY_(!rs_))                       \
				rs_ = shmet_impl_rseq_resolve();              \
			cpu_ = *(volatile const int32_t *)&rs_->cpu_id;       \
			if (SHMET_IMPL_LIKELY((uint32_t)cpu_ < (h)->cpus) &&  \
			    shmet_impl_rseq_add_##kind(                       \
				    rs_, cpu_, (h)->gen, (h)->expect,         \
				    (h)->cpu0 + (off) +                       \
					    (uint64_t)(uint32_t)cpu_ *        \
						    (h)->stride,              \
				    (val)) == 0)                              \
				break;                                        \
		}                                                             \
		if (!shmet_impl_stale((h)->gen, (h)->expect))                 \
			fallback;                                             \
	} while (0)
#else
#define SHMET_IMPL_PERCPU_ADD(h, kind, off, val, fallback)         \
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
