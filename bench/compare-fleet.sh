#!/bin/sh
# Issue 22's scrape figure, same run: S series written by one process
# against the same series (the same page, byte for byte) written by 64
# processes x 4 threads each, with every process holding every gauge
# (gauges all) or each gauge held by one process (gauges own), and Go's
# client_golang rendering the same page, for S = 10k and 100k.  One more
# row, an experiment from before layout 6's gauge chunks: every gauge in
# each process, the gauges registered first (BENCH_RENDER_GAUGES_FIRST=1),
# so that each process's gauge cells are contiguous whatever the layout.
#   sh bench/compare-fleet.sh [BUILD [BASE]]     (default build/)
# With BASE (another tree's build directory, e.g. the tree before a
# change, or BUILD itself for an A/A), every call runs with both builds
# in turn, BASE first, and the table gains BASE's columns and B/A.
# ROUNDS (default 5) rounds, each running every configuration once, in
# turn, so slow spells of a shared host hit all alike; RUNS (default 9)
# scrapes per call.  Prints each call's line, then per configuration the
# median of the per-call medians (scrape = collect + render text, and
# the collect alone) and its ratio to one process of the same build.
# Needs golang-go and golang-github-prometheus-client-golang-dev for the
# Go rows.  SHMETRICS_BENCH_PREFIX names the segments (bench-render).
set -eu
build=${1:-build}
base=${2:-}
rounds=${ROUNDS:-5}
runs=${RUNS:-9}
series=${SERIES:-10000 100000}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
go=""
if command -v go >/dev/null &&
	[ -d /usr/share/gocode/src/github.com/prometheus/client_golang ]; then
	(cd bench/go && GO111MODULE=off GOPATH=/usr/share/gocode \
		GOCACHE="$t/gocache" go build -o "$t/go-render" render.go) &&
		go="$t/go-render"
fi
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
builds=B
[ -n "$base" ] && builds="A B"
dir() { if [ "$1" = A ]; then echo "$base"; else echo "$build"; fi; }
i=0
while [ "$i" -lt "$rounds" ]; do
	for s in $series; do
		for c in "1 1 all" "64 4 all" "64 4 own" "64 4 first"; do
			set -- $c
			g=$3
			first=
			[ "$g" = first ] && g=all && first=1
			for x in $builds; do
				BENCH_RENDER_GAUGES_FIRST=$first \
				"$(dir $x)/bench/bench-render" "$s" "$1" "$runs" \
					text "$2" "$g" |
					sed "s/^/$x /" | tee -a "$t/raw" |
					awk -v f="$t/$x-$s-$1x$2-$3" '{
					for (i = 1; i <= NF; i++) {
						if ($i == "median") print $(i + 1) >>(f ".scrape")
						if ($i == "collect") print $(i + 1) >>(f ".collect")
					} }'
			done
		done
		if [ -n "$go" ]; then
			"$go" "$s" "$runs" | tee -a "$t/raw" |
				awk -v f="$t/B-$s-go" '{ for (i = 1; i <= NF; i++)
					if ($i == "median") print $(i + 1) >>(f ".scrape")
					}'
		fi
	done
	i=$((i + 1))
done
cat "$t/raw"
# row X S CONFIG: "scrape collect ratio" of build X, or "- - -"
row() {
	if [ ! -f "$t/$1-$2-$3.scrape" ]; then
		echo "- - -"
		return
	fi
	one=$(median <"$t/$1-$2-1x1-all.scrape")
	sc=$(median <"$t/$1-$2-$3.scrape")
	co=-
	[ -f "$t/$1-$2-$3.collect" ] && co=$(median <"$t/$1-$2-$3.collect")
	echo "$sc $co $(awk -v a="$sc" -v b="$one" 'BEGIN { printf "%.2fx", a / b }')"
}
if [ -n "$base" ]; then
	echo
	echo "A = $base, B = $build (medians; x 1 process = the same build's)"
	printf '%-8s %-28s %10s %10s %9s  %10s %10s %9s  %6s\n' series writers \
		"A scrape" "A collect" "A x 1" "B scrape" "B collect" "B x 1" "B/A"
else
	printf '\n%-8s %-28s %11s %11s %12s\n' series writers "scrape ms" \
		"collect ms" "x 1 process"
fi
for s in $series; do
	for c in 1x1-all 64x4-all 64x4-own 64x4-first go; do
		case $c in
		1x1-all) w="1 process" ;;
		64x4-all) w="64 x 4, every gauge each" ;;
		64x4-own) w="64 x 4, own gauges" ;;
		64x4-first) w="64 x 4, every gauge, first" ;;
		go) w="Go client_golang" ;;
		esac
		b=$(row B "$s" "$c")
		[ "$b" = "- - -" ] && continue
		if [ -n "$base" ]; then
			a=$(row A "$s" "$c")
			echo "$s|$w|$a|$b" | awk -F'|' '{
				split($3, a, " "); split($4, b, " ")
				r = (a[1] != "-" && a[1] > 0) ? sprintf("%.2fx", b[1] / a[1]) : "-"
				printf "%-8s %-28s %10s %10s %9s  %10s %10s %9s  %6s\n",
					$1, $2, a[1], a[2], a[3], b[1], b[2], b[3], r }'
		else
			echo "$s|$w|$b" | awk -F'|' '{ split($3, b, " ")
				printf "%-8s %-28s %11s %11s %12s\n", $1, $2, b[1], b[2], b[3] }'
		fi
	done
done
