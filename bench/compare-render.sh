#!/bin/sh
# Same-run A/B of the scrape benchmark between two builds, e.g. the tree
# before and after a change:
#   git worktree add /tmp/base <commit> && meson setup /tmp/base/build ... &&
#   ninja -C /tmp/base/build bench/bench-render
#   sh bench/compare-render.sh /tmp/base/build build
# The two builds run interleaved (A, B, A, B, ...) for each size, so slow
# spells of a shared host hit both alike; the ratio of the medians of the
# per-call medians (in ms) is what RESULTS.md records.  ROUNDS (default 7)
# is the pairs per configuration, RUNS (default 5) the renders per
# bench-render call.  The index build (one per call) is compared the same
# way.  `compare-render.sh build build` measures the noise (A/A).
# THREADS (default 1) is the threads of each writer process, GAUGES
# (all or own, default all) who holds the gauges (bench-render.c), FORMAT
# (text or openmetrics, default text) the page; bench-render's other
# settings (BENCH_RENDER_EXEMPLARS, BENCH_RENDER_IDLE_MS) pass through.
# COLLECT=1 compares the collect's median instead of the render's.
set -eu
a=$1/bench/bench-render
b=$2/bench/bench-render
rounds=${ROUNDS:-7}
runs=${RUNS:-5}
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
# bench-render's line: "series S writers W index I ms render text median M ms ..."
run() {
	"$1" "$2" "$3" "$runs" "${FORMAT:-text}" "${THREADS:-1}" "${GAUGES:-all}" |
	awk -v ti="$4" -v tr="$5" -v col="${COLLECT:-0}" '/ median / {
		for (i = 1; i <= NF; i++) {
			if ($i == "index") print $(i + 1) >>ti
			if ($i == (col == "1" ? "collect" : "median"))
				print $(i + 1) >>tr
		} }'
}
printf '%-8s %-7s %10s %10s %7s %10s %10s %7s\n' series writers \
	"render A" "render B" "B/A" "index A" "index B" "B/A"
for s in ${SERIES:-1000 10000 100000}; do
	for w in ${WRITERS:-1 16 64}; do
		t=$(mktemp -d)
		i=0
		while [ "$i" -lt "$rounds" ]; do
			run "$a" "$s" "$w" "$t/ia" "$t/ra"
			run "$b" "$s" "$w" "$t/ib" "$t/rb"
			i=$((i + 1))
		done
		awk -v s="$s" -v w="$w" -v ra="$(median <"$t/ra")" \
			-v rb="$(median <"$t/rb")" -v ia="$(median <"$t/ia")" \
			-v ib="$(median <"$t/ib")" 'BEGIN {
			printf "%-8s %-7s %10.3f %10.3f %6.2fx %10.2f %10.2f %6.2fx\n",
				s, w, ra, rb, rb / ra, ia, ib, ib / ia }'
		rm -rf "$t"
	done
done
