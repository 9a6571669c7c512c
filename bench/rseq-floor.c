/*
 * The floor of any rseq add, for bench-writer's baseline row: a section
 * written by hand with nothing a metrics library needs.  The CPU is read
 * once, outside the loop, and the cell's address computed once; each add
 * is the descriptor's store, a compare of cpu_id with that CPU, and an
 * `addq $1` to a fixed address (an abort reads the CPU again).  No
 * handle, no incarnation, no bounds check, no fallback: what remains is
 * what every restartable add pays (issue 22: "counter inc <= 2x a plain
 * add"; bench/RESULTS.md, issue 22's inline path).  Self-contained (its
 * own descriptor and abort handler), so that a base tree's build runs it
 * too.
 *
 * x86-64 only; elsewhere, or in a thread without rseq, the row is left
 * out (bench_rseq_floor_ready() returns 0).
 */
#include "config.h"

#include <stdint.h>
#include <sys/mman.h>

#include <shmetrics.h>

#include "bench-writer.h"

#define FLOOR_CPUS 1024
#define FLOOR_STRIDE 64         /* one cache line per CPU */

static unsigned char *floor_cells;

#if defined(__GNUC__) && defined(__linux__) && defined(__x86_64__) && \
	!defined(SHMETRICS_NO_RSEQ_ASM)
static struct shmet_impl_rseq *
floor_area(void)
{
	struct shmet_impl_rseq *rs = shmet_impl_rseq_tls;

	return rs ? rs : shmet_impl_rseq_resolve();
}

int
bench_rseq_floor_ready(void)
{
	struct shmet_impl_rseq *rs = floor_area();

	if (rs->cpu_id < 0 || rs->cpu_id >= FLOOR_CPUS)
		return 0;
	floor_cells = mmap(NULL, (size_t)FLOOR_CPUS * FLOOR_STRIDE,
			   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			   -1, 0);
	return floor_cells != MAP_FAILED;
}

void
op_rseq_floor(long n)
{
	struct shmet_impl_rseq *rs = floor_area();
	uint32_t cpu = (uint32_t)rs->cpu_id % FLOOR_CPUS;
	unsigned char *p = floor_cells + (size_t)cpu * FLOOR_STRIDE;

	for (long i = 0; i < n; i++) {
again:
		/* struct rseq_cs: version, flags, start, length, abort;
		 * the abort handler preceded by glibc's RSEQ_SIG */
		__asm__ __volatile__ goto(
			".pushsection __rseq_cs, \"aw\"\n\t"
			".balign 32\n\t"
			"3:\n\t"
			".long 0x0, 0x0\n\t"
			".quad 1f, (2f - 1f), 4f\n\t"
			".popsection\n\t"
			"leaq 3b(%%rip), %%rax\n\t"
			"1:\n\t"
			"movq %%rax, 8(%[rs])\n\t"
			"cmpl %[cpu], 4(%[rs])\n\t"
			"jne 4f\n\t"
			"addq $1, (%[p])\n\t"
			"2:\n\t"
			".pushsection __rseq_failure, \"ax\"\n\t"
			".byte 0x0f, 0xb9, 0x3d\n\t"
			".long 0x53053053\n\t"
			"4:\n\t"
			"jmp %l[aborted]\n\t"
			".popsection\n\t"
			:
			: [rs] "r"(rs), [cpu] "r"(cpu), [p] "r"(p)
			: "memory", "cc", "rax"
			: aborted);
		continue;
aborted:
		cpu = (uint32_t)rs->cpu_id % FLOOR_CPUS;
		p = floor_cells + (size_t)cpu * FLOOR_STRIDE;
		goto again;
	}
}
#else
int
bench_rseq_floor_ready(void)
{
	(void)floor_cells;
	return 0;
}

void
op_rseq_floor(long n)
{
	(void)n;
}
#endif
