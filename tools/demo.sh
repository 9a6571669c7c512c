#!/bin/sh
# The main job: build, then run the demo fleet writing into a segment and
# the exporter serving it, until Ctrl-C (or --duration S) stops both.
#   --prometheus   also start Prometheus (Debian's package) on
#                  127.0.0.1:9090 with tools/prometheus/ config and rules
# Other arguments go to shmetrics-fleet (see its --help).
# Environment: SHMETRICS_SEGMENT (default /shmetrics-demo),
#              SHMETRICS_LISTEN (default 127.0.0.1:5000).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
sh tools/install-deps.sh || exit 1
if [ ! -f build/build.ninja ]; then
	meson setup build >/dev/null || exit 1
fi
ninja -C build >/dev/null || ninja -C build || exit 1

segment=${SHMETRICS_SEGMENT:-/shmetrics-demo}
listen=${SHMETRICS_LISTEN:-127.0.0.1:5000}
with_prometheus=0
for a in "$@"; do
	[ "$a" = --prometheus ] && with_prometheus=1
done
pids=""
promdir=""
cleanup() {
	trap - INT TERM EXIT
	[ -n "$pids" ] && kill $pids 2>/dev/null
	wait 2>/dev/null
	[ -n "$promdir" ] && rm -rf "$promdir"
}
trap cleanup INT TERM EXIT

./build/exporter/shmetrics-exporter --segment "$segment" --listen "$listen" &
pids="$!"
if [ "$with_prometheus" = 1 ]; then
	promdir=$(mktemp -d)
	sed "s/localhost:5000/$listen/" tools/prometheus/prometheus.yml \
		> "$promdir/prometheus.yml"
	cp tools/prometheus/alerts.yml tools/prometheus/recording.yml "$promdir/"
	prometheus --config.file="$promdir/prometheus.yml" \
		--storage.tsdb.path="$promdir/data" \
		--web.listen-address=127.0.0.1:9090 >"$promdir/log" 2>&1 &
	pids="$pids $!"
fi
echo "shmetrics demo: segment $segment"
echo "  http://$listen/metrics"
echo "  http://$listen/metrics/json"
echo "  http://$listen/metrics/health"
[ "$with_prometheus" = 1 ] && echo "  Prometheus: http://127.0.0.1:9090"
echo "Ctrl-C stops everything."
fleet_args=""
for a in "$@"; do
	[ "$a" = --prometheus ] || fleet_args="$fleet_args $a"
done
# shellcheck disable=SC2086
./build/tools/shmetrics-fleet --segment "$segment" $fleet_args
