#!/bin/sh
# The main job: build, then run the demo fleet writing into a fresh
# segment and the exporter serving it, until Ctrl-C (or --duration S).
#   --prometheus   also start Prometheus (Debian's package) with the
#                  tools/prometheus/ configuration and rules, Alertmanager
#                  with alertmanager.yml, and its webhook receiver, which
#                  prints every alert notification it receives
# Other arguments go to shmetrics-fleet (see its --help).
#
# Environment, with defaults:
#   SHMETRICS_SEGMENT              /shmetrics-demo: removed first, so that
#                                  the counts start at 0 (refused while a
#                                  fleet still writes it)
#   SHMETRICS_LISTEN               127.0.0.1:5000  the exporter
#   SHMETRICS_PROMETHEUS_LISTEN    127.0.0.1:9090
#   SHMETRICS_ALERTMANAGER_LISTEN  127.0.0.1:9093
#   SHMETRICS_RECEIVER_LISTEN      127.0.0.1:9095  the webhook receiver
#   SHMETRICS_DEMO_DIR             build/demo: this run's logs and
#                                  configuration; Prometheus's and
#                                  Alertmanager's data, kept across runs
#   SHMETRICS_BUILD_DIR            build
#   SHMETRICS_DEMO_NO_BUILD=1      use the build as it is (tests)
# Every piece must start: one that does not (a port in use, another demo
# holding the data directory) stops the demo with its log and exit 1.
# Otherwise the exit status is the fleet's (0 after --duration), or 130
# after Ctrl-C.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
build=${SHMETRICS_BUILD_DIR:-build}
if [ "${SHMETRICS_DEMO_NO_BUILD:-0}" != 1 ]; then
	sh tools/install-deps.sh || exit 1
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" >/dev/null || exit 1
	fi
	ninja -C "$build" >/dev/null || ninja -C "$build" || exit 1
fi

segment=${SHMETRICS_SEGMENT:-/shmetrics-demo}
listen=${SHMETRICS_LISTEN:-127.0.0.1:5000}
prom_listen=${SHMETRICS_PROMETHEUS_LISTEN:-127.0.0.1:9090}
am_listen=${SHMETRICS_ALERTMANAGER_LISTEN:-127.0.0.1:9093}
recv_listen=${SHMETRICS_RECEIVER_LISTEN:-127.0.0.1:9095}
dir=${SHMETRICS_DEMO_DIR:-$top/build/demo}
ctl=$build/tools/shmetrics-ctl
with_prometheus=0
fleet_args=""
for a in "$@"; do
	if [ "$a" = --prometheus ]; then
		with_prometheus=1
	else
		fleet_args="$fleet_args $a"
	fi
done
mkdir -p "$dir" || exit 1

pids=""
cleanup() {
	trap - INT TERM EXIT
	[ -n "$pids" ] && kill $pids 2>/dev/null
	wait 2>/dev/null
	"$ctl" --segment "$segment" destroy 2>/dev/null
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

say() { echo "shmetrics demo: $*" >&2; }

# give_up NAME LOG WHY: the piece's log, then stop everything, exit 1
give_up() {
	say "$1 did not start: $3"
	if [ -s "$2" ]; then
		say "the end of its log, $2:"
		tail -n 20 "$2" >&2
	fi
	exit 1
}

# port_free NAME HOST:PORT VARIABLE: refuse a port something listens on,
# whose answers would otherwise pass for this demo's
port_free() {
	python3 - "$2" 2>/dev/null <<'EOF' && return 0
import socket, sys
host, _, port = sys.argv[1].rpartition(":")
host = host.strip("[]")
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, int(port)))
EOF
	say "$1: $2 is in use (another demo?); choose another with $3=host:port"
	exit 1
}

# started NAME PID URL LOG [SECONDS]: wait until PID answers on URL, and
# is still alive a moment later (a process that lost its port exits)
started() {
	tries=0
	until curl -s -o /dev/null "$3" && kill -0 "$2" 2>/dev/null; do
		tries=$((tries + 1))
		kill -0 "$2" 2>/dev/null || give_up "$1" "$4" "it exited"
		[ "$tries" -ge $((${5:-10} * 10)) ] &&
			give_up "$1" "$4" "no answer on $3 after ${5:-10} s"
		sleep 0.1
	done
	sleep 0.3
	kill -0 "$2" 2>/dev/null || give_up "$1" "$4" "it exited"
}

# A fresh segment: a previous run's, left by a kill or a crash, would add
# its counts to this run's.  One that a fleet still writes is another demo.
if info=$("$ctl" --segment "$segment" info 2>/dev/null); then
	live=$(echo "$info" | sed -n 's/^writers *\([0-9]*\) live.*/\1/p')
	if [ "${live:-0}" -gt 0 ]; then
		say "segment $segment has $live live writers (another demo?);" \
			"choose another with SHMETRICS_SEGMENT=/name"
		exit 1
	fi
	"$ctl" --segment "$segment" destroy || exit 1
	say "removed the previous run's segment $segment: counts start at 0"
fi

port_free exporter "$listen" SHMETRICS_LISTEN
"$build/exporter/shmetrics-exporter" --segment "$segment" --listen "$listen" \
	2>"$dir/exporter.log" &
pids="$!"
started exporter "$!" "http://$listen/" "$dir/exporter.log"

if [ "$with_prometheus" = 1 ]; then
	port_free Prometheus "$prom_listen" SHMETRICS_PROMETHEUS_LISTEN
	port_free Alertmanager "$am_listen" SHMETRICS_ALERTMANAGER_LISTEN
	port_free receiver "$recv_listen" SHMETRICS_RECEIVER_LISTEN
	mkdir -p "$dir/config"
	sed -e "s/localhost:5000/$listen/" -e "s/localhost:9093/$am_listen/" \
		-e "s/localhost:9090/$prom_listen/" \
		tools/prometheus/prometheus.yml > "$dir/config/prometheus.yml"
	cp tools/prometheus/alerts.yml tools/prometheus/recording.yml \
		"$dir/config/"
	sed -e "s|http://127.0.0.1:9095/|http://$recv_listen/|" \
		tools/prometheus/alertmanager.yml > "$dir/config/alertmanager.yml"
	python3 tools/prometheus/alert-receiver.py --listen "$recv_listen" \
		2>"$dir/receiver.log" &
	pids="$pids $!"
	started receiver "$!" "http://$recv_listen/" "$dir/receiver.log"
	# --cluster.listen-address= : a single Alertmanager, no gossip port
	prometheus-alertmanager \
		--config.file="$dir/config/alertmanager.yml" \
		--storage.path="$dir/alertmanager-data" \
		--web.listen-address="$am_listen" \
		--cluster.listen-address= >"$dir/alertmanager.log" 2>&1 &
	pids="$pids $!"
	started Alertmanager "$!" "http://$am_listen/-/ready" \
		"$dir/alertmanager.log" 30
	# the lock file (off in Debian's build) refuses a second Prometheus
	# on the same data, which two demos with one SHMETRICS_DEMO_DIR
	# would otherwise both write
	prometheus --config.file="$dir/config/prometheus.yml" \
		--storage.tsdb.path="$dir/prometheus-data" \
		--storage.tsdb.use-lockfile \
		--web.listen-address="$prom_listen" >"$dir/prometheus.log" 2>&1 &
	pids="$pids $!"
	started Prometheus "$!" "http://$prom_listen/-/ready" \
		"$dir/prometheus.log" 60
fi
echo "shmetrics demo: segment $segment (fresh)"
echo "  exporter:     http://$listen/metrics"
echo "                http://$listen/metrics/json"
echo "                http://$listen/metrics/health"
if [ "$with_prometheus" = 1 ]; then
	echo "  Prometheus:   http://$prom_listen (alerts: /alerts)"
	echo "  Alertmanager: http://$am_listen"
	echo "  receiver:     http://$recv_listen (prints each notification)"
	echo "  Prometheus's data, kept across runs: $dir/prometheus-data"
fi
echo "  logs:         $dir/*.log"
echo "  live view:    ./$build/tools/shmetrics-top --segment $segment (q quits)"
echo "Ctrl-C stops everything."
# shellcheck disable=SC2086
"$build/tools/shmetrics-fleet" --segment "$segment" $fleet_args
