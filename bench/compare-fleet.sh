#!/bin/sh
# Issue 22's scrape figure, same run: S series written by one process
# against the same series (the same page, byte for byte) written by 64
# processes x 4 threads each, with every process holding every gauge
# (gauges all) or each gauge held by one process (gauges own), and Go's
# client_golang rendering the same page, for S = 10k and 100k.  One more
# row, an experiment: every gauge in each process, the gauges registered
# first (BENCH_RENDER_GAUGES_FIRST=1), so that each process's gauge cells
# are contiguous, as a layout that packed them would make them.
#   sh bench/compare-fleet.sh [BUILD]     (default build/)
# ROUNDS (default 5) rounds, each running every configuration once, in
# turn, so slow spells of a shared host hit all alike; RUNS (default 9)
# scrapes per call.  Prints each call's line, then per configuration the
# median of the per-call medians (scrape = collect + render text, and
# the collect alone) and its ratio to one process.  Needs golang-go and
# golang-github-prometheus-client-golang-dev for the Go rows.
set -eu
build=${1:-build}
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
i=0
while [ "$i" -lt "$rounds" ]; do
	for s in $series; do
		for c in "1 1 all" "64 4 all" "64 4 own" "64 4 first"; do
			set -- $c
			g=$3
			first=
			[ "$g" = first ] && g=all && first=1
			BENCH_RENDER_GAUGES_FIRST=$first \
			"$build/bench/bench-render" "$s" "$1" "$runs" text "$2" "$g" |
				tee -a "$t/raw" | awk -v f="$t/$s-$1x$2-$3" '{
				for (i = 1; i <= NF; i++) {
					if ($i == "median") print $(i + 1) >>(f ".scrape")
					if ($i == "collect") print $(i + 1) >>(f ".collect")
				} }'
		done
		if [ -n "$go" ]; then
			"$go" "$s" "$runs" | tee -a "$t/raw" |
				awk -v f="$t/$s-go" '{ for (i = 1; i <= NF; i++)
					if ($i == "median") print $(i + 1) >>(f ".scrape") }'
		fi
	done
	i=$((i + 1))
done
cat "$t/raw"
printf '\n%-8s %-26s %11s %11s %12s\n' series writers "scrape ms" "collect ms" "x 1 process"
for s in $series; do
	one=$(median <"$t/$s-1x1-all.scrape")
	for c in 1x1-all 64x4-all 64x4-own 64x4-first go; do
		[ -f "$t/$s-$c.scrape" ] || continue
		sc=$(median <"$t/$s-$c.scrape")
		co=-
		[ -f "$t/$s-$c.collect" ] && co=$(median <"$t/$s-$c.collect")
		case $c in
		1x1-all) w="1 process" ;;
		64x4-all) w="64 x 4, every gauge each" ;;
		64x4-own) w="64 x 4, own gauges" ;;
		64x4-first) w="64 x 4, every gauge, packed" ;;
		go) w="Go client_golang" ;;
		esac
		awk -v s="$s" -v w="$w" -v sc="$sc" -v co="$co" -v one="$one" \
			'BEGIN { printf "%-8s %-26s %11.3f %11s %11.2fx\n", s, w, sc, co, sc / one }'
	done
done
