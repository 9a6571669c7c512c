/*
 * shmetrics writer: Per-CPU cells (docs/DESIGN.md, "Per-CPU cells"): each
 * thread's struct rseq, found once, and the reservation of every CPU
 * block's cells before a registration returns its handle.
 */
#include "writer-private.h"

#include <sys/syscall.h>

/* The hot path's pointer (declared in inline-impl.h). */
#if defined(__GNUC__)
__thread struct shmet_impl_rseq *shmet_impl_rseq_tls
	__attribute__((tls_model("initial-exec"), visibility("default")));
#else
_Thread_local struct shmet_impl_rseq *shmet_impl_rseq_tls;
#endif

/*
 * glibc 2.35 and later register an rseq area for every thread and export
 * where it is: thread pointer + __rseq_offset, __rseq_size bytes (0 when
 * its rseq is off, e.g. glibc.pthread.rseq=0).  Weak, so that a program
 * built here still runs on an older glibc (both are then NULL).
 */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

/* The signature abort handlers are preceded by (inline-impl.h): glibc's. */
#if defined(__x86_64__)
#define SHMET_IMPL_RSEQ_SIG 0x53053053u
#elif defined(__aarch64__)
#define SHMET_IMPL_RSEQ_SIG 0xd428bc00u
#endif

/*
 * A thread without rseq: cpu_id -1 sends every write to the fallback.
 * Shared, and never written: the hot path looks at cpu_id before it runs
 * a section (inline-impl.h, shmet_impl_rseq_on), so no section stores
 * its descriptor here.  Not thread-local: taking the address of a
 * general-dynamic TLS variable may allocate (TSan under RLIMIT_AS could
 * not), and a thread's first write must not.
 */
static struct shmet_impl_rseq shmet_impl_rseq_none = { 0, -1, 0, 0, 0, 0, 0 };

#ifdef SHMET_IMPL_RSEQ
/* The area we register for a thread when glibc did not (older glibc, or
 * its rseq off).  The kernel writes it while the thread lives. */
static __thread struct shmet_impl_rseq shmet_impl_rseq_own
	__attribute__((aligned(32)));

/* -1: not looked at yet; 0: rseq allowed; 1: SHMETRICS_NO_RSEQ=1. */
static SHMET_ATOMIC(int) shmet_impl_no_rseq = -1;

static void *
shmet_impl_thread_pointer(void)
{
	void *tp;

#if defined(__x86_64__)
	__asm__("mov %%fs:0, %0" : "=r"(tp));
#else
	__asm__("mrs %0, tpidr_el0" : "=r"(tp));
#endif
	return tp;
}

static struct shmet_impl_rseq *
shmet_impl_rseq_find(void)
{
	/* Relaxed: a process-wide flag computed the same by every thread. */
	int off = SHMET_AT(load_explicit)(&shmet_impl_no_rseq,
					  SHMET_MO(relaxed));
	struct shmet_impl_rseq *rs;

	if (off < 0) {
		const char *e = getenv("SHMETRICS_NO_RSEQ");

		off = e && *e && strcmp(e, "0") != 0;
		SHMET_AT(store_explicit)(&shmet_impl_no_rseq, off,
					 SHMET_MO(relaxed));
	}
	if (off)
		return &shmet_impl_rseq_none;
	if (&__rseq_size && &__rseq_offset && __rseq_size >= 20) {
		rs = (struct shmet_impl_rseq *)(void *)(
			(char *)shmet_impl_thread_pointer() + __rseq_offset);
		if (*(volatile int32_t *)&rs->cpu_id >= 0)
			return rs;
	}
#ifdef __NR_rseq
	rs = &shmet_impl_rseq_own;
	memset((void *)rs, 0, sizeof *rs);
	rs->cpu_id = -1;                /* RSEQ_CPU_ID_UNINITIALIZED */
	if (syscall(__NR_rseq, rs, (unsigned)sizeof *rs, 0,
		    SHMET_IMPL_RSEQ_SIG) == 0 &&
	    *(volatile int32_t *)&rs->cpu_id >= 0)
		return rs;
#endif
	/* refused (seccomp, valgrind, an rseq already registered elsewhere) */
	return &shmet_impl_rseq_none;
}
#endif

/*
 * The hot path's one slow call per thread.  errno is kept: a signal
 * handler that counts must leave it as the interrupted code had it.
 */
struct shmet_impl_rseq *
shmet_impl_rseq_resolve(void)
{
	int saved = errno;
	struct shmet_impl_rseq *rs = &shmet_impl_rseq_none;

#ifdef SHMET_IMPL_RSEQ
	rs = shmet_impl_rseq_find();
#endif
	shmet_impl_rseq_tls = rs;
	errno = saved;
	return rs;
}

/* The CPU blocks a new segment gets: the host's possible CPUs. */
SHMET_W uint32_t
shmet_impl_host_cpus(void)
{
	char buf[256];
	long n = 0;
	int fd = open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		ssize_t len = read(fd, buf, sizeof buf - 1);

		close(fd);
		/* "0-3,8-11": the highest id + 1 */
		if (len > 0) {
			long cur = 0;

			buf[len] = '\0';
			for (char *p = buf; *p; p++) {
				if (*p >= '0' && *p <= '9') {
					cur = cur * 10 + (*p - '0');
					if (cur >= n)
						n = cur + 1;
					if (cur > 1000000)
						break;
				} else {
					cur = 0;
				}
			}
		}
	}
	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_CONF);
	if (n <= 0)
		n = 1;
	return n > (long)SHMET_MAX_CPU_BLOCKS ? SHMET_MAX_CPU_BLOCKS
					      : (uint32_t)n;
}

/*
 * Reserve (fallocate) cells below end_cell in every CPU block before a
 * handle can write them (a write to an unreserved tmpfs page is SIGBUS
 * when tmpfs is full).  The header's watermark says how far every CPU
 * block is reserved; it is raised, with a CAS-max, only after all of them
 * were, so a registration below it makes no syscall.  Racing processes
 * may fallocate the same range twice, which is harmless.
 *
 * Each reserved page is then touched (shmet_impl_touch), so that readers
 * see it as data before any handle can write it.  The touch changes no
 * count, even racing a section's plain read-modify-write on another CPU:
 * it fails, or stores what the section read, which the section's commit
 * then overwrites.
 */
SHMET_W int
shmet_impl_reserve_cpus(struct shmet_segment *seg, uint64_t end_cell)
{
	const struct shmet_seg_header *h = seg->hdr;
	SHMET_ATOMIC(uint64_t) *mark = &seg->hdr->cpu_reserved_bytes;
	/* Acquire: pairs with the release CAS below (another process's
	 * fallocates returned before it raised the mark). */
	uint64_t have = SHMET_AT(load_explicit)(mark, SHMET_MO(acquire));
	uint64_t want = shmet_impl_reserve_end(end_cell, h->block_stride);

	if (end_cell * 8 <= have)
		return 0;
	if (have > want)
		have = 0;               /* a mark past the block: not ours */
	if (!seg->cpus)
		return -ENODEV;
	for (uint32_t cpu = 0; cpu < h->cpu_blocks; cpu++) {
		int rc = shmet_impl_fallocate(
			seg->fd,
			h->cpu_off + (uint64_t)cpu * h->block_stride + have,
			want - have);

		if (rc != 0)
			return -rc;
	}
	/* through our mapping of the CPU blocks (segment.c) */
	for (uint32_t cpu = 0; cpu < h->cpu_blocks; cpu++)
		shmet_impl_touch(seg->cpus + (uint64_t)cpu * h->block_stride,
				 have, want);
	while (have < want &&
	       !SHMET_AT(compare_exchange_weak_explicit)(
		       mark, &have, want, SHMET_MO(release),
		       SHMET_MO(acquire)))
		;
	return 0;
}
