#!/bin/sh
# The exporters of two builds over HTTP, in the same run, one after the
# other, on the same segment (bench-render's SERIES series, default
# 10,000, with 16 live writers):
#   - wrk, 16 kept-alive connections, 5 s, plain and gzip: back-to-back
#     requests on each connection (req/s, p50)
#   - the scrape duration a real Prometheus reports
#     (scrape_duration_seconds), scraping every second over one kept-alive
#     connection for DURATION seconds (default 30): median and maximum of
#     the last 20 s.  It includes Prometheus's own parsing and appending.
#   sh bench/compare-http.sh BUILD_A BUILD_B
# Ports: EXPORTER_PORT and PROMETHEUS_PORT (default: picked by the kernel).
set -u
[ $# = 2 ] || { echo "usage: $0 BUILD_A BUILD_B" >&2; exit 2; }
SERIES=${SERIES:-10000}
SECONDS_PER_BUILD=${DURATION:-30}
tmp=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ep=${EXPORTER_PORT:-$(port)}
pp=${PROMETHEUS_PORT:-$(port)}

# query Q: the value of a PromQL instant query, in ms
query() {
	curl -s "http://127.0.0.1:$pp/api/v1/query" --data-urlencode "query=$1" |
		/usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print("%.2f" % (float(r[0]["value"][1])*1000) if r else "none")'
}

mkfifo "$tmp/hold"
"$1/bench/bench-render" "$SERIES" 16 hold < "$tmp/hold" > "$tmp/ready" &
exec 3>"$tmp/hold"
while ! grep -q ready "$tmp/ready" 2>/dev/null; do sleep 0.2; done
seg=$(awk '{print $2}' "$tmp/ready")
for build in "$1" "$2"; do
	"$build/exporter/shmetrics-exporter" --segment "$seg" \
		--listen "127.0.0.1:$ep" --threads 16 2>"$tmp/exporter.log" &
	epid=$!
	sleep 1
	for enc in identity gzip; do
		out=$(wrk -t2 -c16 -d5s --latency -H "Accept-Encoding: $enc" \
			"http://127.0.0.1:$ep/metrics" 2>&1)
		printf '%-40s wrk 16 connections, %-8s %9s req/s  p50 %s\n' \
			"$build" "$enc" \
			"$(echo "$out" | awk '/Requests\/sec/ {print $2}')" \
			"$(echo "$out" | awk '$1 == "50%" {print $2}')"
	done
	rm -rf "$tmp/prom"
	mkdir -p "$tmp/prom"
	cat > "$tmp/prom/prometheus.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: shmetrics
    static_configs: [{targets: ['127.0.0.1:$ep']}]
YML
	prometheus --config.file="$tmp/prom/prometheus.yml" \
		--storage.tsdb.path="$tmp/prom/data" \
		--web.listen-address="127.0.0.1:$pp" >"$tmp/prom.log" 2>&1 &
	ppid=$!
	sleep "$SECONDS_PER_BUILD"
	med=$(query 'quantile_over_time(0.5, scrape_duration_seconds{job="shmetrics"}[20s])')
	max=$(query 'max_over_time(scrape_duration_seconds{job="shmetrics"}[20s])')
	n=$(curl -s "http://127.0.0.1:$pp/api/v1/query" --data-urlencode \
		'query=count_over_time(scrape_duration_seconds{job="shmetrics"}[20s])' |
		/usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
	printf '%-40s scrape_duration_seconds over 20 s (%s scrapes): median %s ms, max %s ms\n' \
		"$build" "$n" "$med" "$max"
	kill $ppid $epid
	wait $ppid $epid 2>/dev/null
done
exec 3>&-
wait
