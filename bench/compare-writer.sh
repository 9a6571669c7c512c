#!/bin/sh
# Same-run A/B of the writer benchmark between two builds (see
# compare-render.sh for how to build the base).  The builds run
# interleaved ROUNDS times (default 7), each call `bench-writer RUNS OPS`
# (default 5 x 20M); for every row both builds print, the median of the
# per-call medians and the ratio B/A.  Rows only one build has are left
# out (a benchmark added by the change has no base to compare with).
set -eu
a=$1/bench/bench-writer
b=$2/bench/bench-writer
rounds=${ROUNDS:-7}
runs=${RUNS:-5}
ops=${OPS:-20000000}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
i=0
while [ "$i" -lt "$rounds" ]; do
	"$a" "$runs" "$ops" >>"$out/a"
	"$b" "$runs" "$ops" >>"$out/b"
	i=$((i + 1))
done
# Rows are "name<2+ spaces>12.34ns ..."; the name itself holds single spaces.
awk -F '  +' '
	FNR == 1 { side = (FILENAME ~ /\/a$/) ? "a" : "b" }
	$2 ~ /ns$/ { v = $2; sub(/ns$/, "", v); key = side SUBSEP $1;
		n[key]++; val[key, n[key]] = v; names[$1] = 1 }
	function median(key,   m, i, j, t, x) {
		m = n[key]
		for (i = 1; i <= m; i++) x[i] = val[key, i] + 0
		for (i = 2; i <= m; i++) for (j = i; j > 1 && x[j-1] > x[j]; j--) {
			t = x[j]; x[j] = x[j-1]; x[j-1] = t }
		return (m % 2) ? x[(m+1)/2] : (x[m/2] + x[m/2+1]) / 2
	}
	END {
		printf "%-52s %9s %9s %7s\n", "operation (ns, median of medians)", "A", "B", "B/A"
		for (r in names) if ((("a", r) in n) && (("b", r) in n)) {
			ma = median("a" SUBSEP r); mb = median("b" SUBSEP r)
			printf "%-52s %9.2f %9.2f %6.2fx\n", r, ma, mb, mb / ma
		}
	}' "$out/a" "$out/b" | { IFS= read -r head; echo "$head"; sort; }
