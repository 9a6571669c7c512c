#!/bin/sh
# The main job: build, then run the demo fleet writing into a segment and
# the exporter serving it, until Ctrl-C (or --duration S) stops both.
#   --prometheus   also start Prometheus (Debian's package) on
#                  127.0.0.1:9090 with tools/prometheus/ config and rules,
#                  Alertmanager on 127.0.0.1:9093 with alertmanager.yml,
#                  and its webhook receiver on 127.0.0.1:9095, which
#                  prints every alert notification it receives
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
exporter=$!
pids="$exporter"
# Serve or say why not: a busy port makes the exporter exit at once, and
# the URLs below would then reach whatever else listens there.
tries=0
until curl -s -o /dev/null "http://$listen/" && kill -0 "$exporter" 2>/dev/null; do
	tries=$((tries + 1))
	if ! kill -0 "$exporter" 2>/dev/null || [ "$tries" -ge 50 ]; then
		echo "shmetrics demo: the exporter did not start on $listen" \
			"(see above); choose another with SHMETRICS_LISTEN=host:port" >&2
		exit 1
	fi
	sleep 0.1
done
sleep 0.2
if ! kill -0 "$exporter" 2>/dev/null; then
	echo "shmetrics demo: the exporter exited; is $listen taken?" \
		"Choose another with SHMETRICS_LISTEN=host:port" >&2
	exit 1
fi
if [ "$with_prometheus" = 1 ]; then
	promdir=$(mktemp -d)
	sed -e "s/localhost:5000/$listen/" -e "s/localhost:9093/127.0.0.1:9093/" \
		tools/prometheus/prometheus.yml > "$promdir/prometheus.yml"
	cp tools/prometheus/alerts.yml tools/prometheus/recording.yml "$promdir/"
	python3 tools/prometheus/alert-receiver.py --listen 127.0.0.1:9095 &
	pids="$pids $!"
	# --cluster.listen-address= : a single Alertmanager, no gossip port
	prometheus-alertmanager \
		--config.file=tools/prometheus/alertmanager.yml \
		--storage.path="$promdir/alertmanager" \
		--web.listen-address=127.0.0.1:9093 \
		--cluster.listen-address= >"$promdir/alertmanager.log" 2>&1 &
	pids="$pids $!"
	prometheus --config.file="$promdir/prometheus.yml" \
		--storage.tsdb.path="$promdir/data" \
		--web.listen-address=127.0.0.1:9090 >"$promdir/log" 2>&1 &
	pids="$pids $!"
fi
echo "shmetrics demo: segment $segment"
echo "  http://$listen/metrics"
echo "  http://$listen/metrics/json"
echo "  http://$listen/metrics/health"
if [ "$with_prometheus" = 1 ]; then
	echo "  Prometheus: http://127.0.0.1:9090 (alerts: /alerts)"
	echo "  Alertmanager: http://127.0.0.1:9093"
fi
echo "  live view: ./build/tools/shmetrics-top --segment $segment (q quits)"
echo "Ctrl-C stops everything."
fleet_args=""
for a in "$@"; do
	[ "$a" = --prometheus ] || fleet_args="$fleet_args $a"
done
# shellcheck disable=SC2086
./build/tools/shmetrics-fleet --segment "$segment" $fleet_args
