#!/bin/sh
# The hot path without assembly (other architectures) compiles as strict
# C11; and the rseq hot path's aarch64 assembly, compile-only (no aarch64
# machine here): the public header as strict C11 -pedantic, and a program that
# compiles the whole slow path (the amalgamated writer) and links.  It
# must produce the __rseq_cs descriptors and the RSEQ_SIG before each
# abort handler (brk #0x45e0).  Needs gcc-aarch64-linux-gnu
# (tools/install-deps.sh); 77 (skipped) without it.
set -eu
src=$1
build=$2
cc=aarch64-linux-gnu-gcc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/hot.c" <<'C'
#include <shmetrics.h>
void hot(const struct shmet_counter *c, const struct shmet_histogram *h,
	 double v);
void
hot(const struct shmet_counter *c, const struct shmet_histogram *h, double v)
{
	shmet_counter_inc(c);
	shmet_counter_add_double(c, v);
	shmet_histogram_observe(h, v);
}
C
# Other architectures: no assembly, every write takes the fallback.
${CC:-cc} -std=c11 -pedantic -Wall -Wextra -Werror -O2 -DSHMETRICS_NO_RSEQ_ASM \
	-I"$src/include" -c "$tmp/hot.c" -o "$tmp/hot-noasm.o"
if nm "$tmp/hot-noasm.o" | grep -q rseq_resolve; then
	echo "the fallback-only hot path still resolves an rseq area"
	exit 1
fi
command -v "$cc" >/dev/null || { echo "skipped: no $cc"; exit 77; }
cat > "$tmp/impl.c" <<'C'
#define SHMETRICS_IMPLEMENTATION
#include <shmetrics.h>
int
main(void)
{
	struct shmet_segment s;
	struct shmet_counter c;

	if (shmet_open(&s, 0) == 0 && shmet_counter_new(&s, &c, "x", "x") == 0)
		shmet_counter_inc(&c);
	return 0;
}
C
"$cc" -std=c11 -pedantic -Wall -Wextra -Werror -O2 -I"$src/include" \
	-c "$tmp/hot.c" -o "$tmp/hot.o"
"$cc" -std=gnu11 -Wall -Wextra -Werror -O2 -I"$src/include" \
	-I"$build/include" -pthread "$tmp/impl.c" -o "$tmp/impl"
objdump=aarch64-linux-gnu-objdump
# 4 sections in hot(): inc, add_double, and the observation's two
n=$("$objdump" -d "$tmp/hot.o" | grep -c 'brk	#0x45e0' || true)
cs=$(aarch64-linux-gnu-readelf -S "$tmp/hot.o" | grep -c '__rseq_cs' || true)
echo "aarch64: $n abort signatures, __rseq_cs sections: $cs"
[ "$n" -ge 4 ] && [ "$cs" -ge 1 ]
