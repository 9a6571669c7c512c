#!/bin/sh
# The scrape benchmark of bench/RESULTS.md, all in one run:
# bench-render for 1k/10k/100k series x 1/16/64 writers, and 64 writer
# processes x 4 threads (every process holding every gauge, then each
# gauge held by one process; the page is the same), then the same
# workload with Python's prometheus_client (normal; multiprocess with 8
# writers up to 10k series) and, when Debian's golang-go and
# golang-github-prometheus-client-golang-dev are installed, Go's
# client_golang.  Run from the top of the tree after building build/ (or
# the build directory BUILD names).
set -u
runs=${RUNS:-9}
build=${BUILD:-build}
for s in 1000 10000 100000; do
	for w in 1 16 64; do
		"$build/bench/bench-render" "$s" "$w" "$runs"
	done
	"$build/bench/bench-render" "$s" 64 "$runs" text 4 all
	"$build/bench/bench-render" "$s" 64 "$runs" text 4 own
done
for s in 1000 10000 100000; do
	/usr/bin/python3 bench/python_render.py "$s" 5
done
for s in 1000 10000; do
	/usr/bin/python3 bench/python_render.py "$s" 3 --multiprocess 8
done
if command -v go >/dev/null && [ -d /usr/share/gocode/src/github.com/prometheus/client_golang ]; then
	tmp=$(mktemp -d)
	(cd bench/go && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$tmp" \
		go build -o "$tmp/go-render" render.go) &&
	for s in 1000 10000 100000; do
		"$tmp/go-render" "$s" 5
	done
	rm -rf "$tmp"
else
	echo "go: not installed (apt-get install golang-go golang-github-prometheus-client-golang-dev)"
fi
