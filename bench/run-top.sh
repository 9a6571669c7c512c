#!/bin/sh
# shmetrics-top's refresh cost (bench/RESULTS.md): a segment of SERIES
# series written by WRITERS live processes (bench-render ... hold), then
# bench-top on it.  Run from the top of the tree after building build/,
# or through `meson test -C build --benchmark top`.
#   run-top.sh [BUILD_DIR] [SERIES] [WRITERS] [RUNS]
set -u
build=${1:-build}
series=${2:-100000}
writers=${3:-64}
runs=${4:-${RUNS:-15}}
dir=$(mktemp -d) || exit 1
mkfifo "$dir/in" || exit 1
# the holder keeps its writers alive until its standard input closes
"$build/bench/bench-render" "$series" "$writers" hold <"$dir/in" \
	>"$dir/out" &
holder=$!
exec 3>"$dir/in"
seg=""
for _ in $(seq 1200); do
	seg=$(sed -n 's/^ready //p' "$dir/out" 2>/dev/null)
	[ -n "$seg" ] && break
	kill -0 "$holder" 2>/dev/null || break
	sleep 0.5
done
rc=1
if [ -n "$seg" ]; then
	"$build/bench/bench-top" "$seg" "$runs"
	rc=$?
else
	echo "run-top: the segment was not set up" >&2
fi
exec 3>&-
wait "$holder"
rm -rf "$dir"
exit $rc
