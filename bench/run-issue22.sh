#!/bin/sh
# Issue 22's benchmark runs for bench/RESULTS.md, in one go, each output
# in OUT (default a new temporary directory), with the time and load
# average at each step in OUT/meta.txt:
#   sh bench/run-issue22.sh BASE BUILD [OUT]
# BUILD is this tree's build directory, BASE the tree before the change
# (e.g. git worktree add /tmp/base <commit>, with this tree's
# bench/bench-render.c copied in so both run the same workload, then
# meson setup /tmp/base/build --buildtype=debugoptimized and
# ninja -C /tmp/base/build bench/bench-render bench/bench-writer).
# About 5 minutes on 2 cores.  Then copy OUT/writer.txt and
# OUT/render.txt to bench/data/ and run sh bench/plot.sh.
set -u
base=$1
build=$2
out=${3:-$(mktemp -d)}
mkdir -p "$out"
stamp() { echo "$1 $(date -u +%H:%M:%S) $(cat /proc/loadavg)" >> "$out/meta.txt"; }
git log --oneline -1 > "$out/meta.txt"
stamp start
"$build/bench/bench-writer" 9 20000000 > "$out/writer.txt"
stamp writer-done
ROUNDS=5 RUNS=9 sh bench/compare-fleet.sh "$build" > "$out/fleet.txt" 2>&1
stamp fleet-done
ROUNDS=3 RUNS=5 SERIES="10000 100000" WRITERS=64 THREADS=4 \
	sh bench/compare-render.sh "$base" "$build" > "$out/ab-64x4.txt" 2>&1
ROUNDS=3 RUNS=5 SERIES="10000 100000" WRITERS=1 THREADS=1 \
	sh bench/compare-render.sh "$base" "$build" > "$out/ab-1.txt" 2>&1
stamp ab-done
ROUNDS=3 RUNS=5 OPS=10000000 sh bench/compare-writer.sh "$base" "$build" \
	> "$out/ab-writer.txt" 2>&1
stamp ab-writer-done
BUILD=$build RUNS=9 sh bench/run-render.sh > "$out/render.txt" 2>&1
stamp render-done
echo "$out"
