#!/bin/sh
# The exporter benchmark of bench/RESULTS.md: wrk against /metrics at
# 1,000 and 10,000 series with 16 live writers, plain and gzip: req/s,
# p50, p99 and the exporter's RSS; in the same run Python's
# prometheus_client HTTP server and (when installed) Go's promhttp on the
# same workload; and a real Prometheus scraping the exporter.
# Needs wrk (Debian); run from the top of the tree after building build/.
set -u
DUR=${DUR:-10}
CONN=${CONN:-16}
top=$(pwd)
tmp=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# wrk NAME URL [header]: one line of req/s, p50, p99
bench_url() {
	name=$1 url=$2
	shift 2
	out=$(wrk -t2 -c"$CONN" -d"${DUR}s" --latency "$@" "$url" 2>&1)
	rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
	p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
	p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
	errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {printf "%s ", $0}')
	printf '%-44s %9s req/s  p50 %8s  p99 %8s  %s\n' "$name" "$rps" "$p50" "$p99" "$errs"
}

for series in 1000 10000; do
	mkfifo "$tmp/hold$series"
	./build/bench/bench-render "$series" 16 hold < "$tmp/hold$series" > "$tmp/ready$series" &
	exec 3>"$tmp/hold$series"
	while ! grep -q ready "$tmp/ready$series" 2>/dev/null; do sleep 0.2; done
	seg=$(awk '{print $2}' "$tmp/ready$series")
	p=$(port)
	./build/exporter/shmetrics-exporter --segment "$seg" --listen 127.0.0.1:$p --threads 16 2>/dev/null &
	epid=$!
	sleep 1
	bench_url "shmetrics $series series, 16 writers, plain" "http://127.0.0.1:$p/metrics"
	bench_url "shmetrics $series series, 16 writers, gzip" "http://127.0.0.1:$p/metrics" -H 'Accept-Encoding: gzip'
	echo "  exporter RSS $(rss_kb $epid) kB"
	if [ "$series" = 10000 ] && command -v prometheus >/dev/null; then
		pp=$(port)
		mkdir -p "$tmp/prom"
		cat > "$tmp/prom/prometheus.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: shmetrics
    static_configs: [{targets: ['127.0.0.1:$p']}]
YML
		prometheus --config.file="$tmp/prom/prometheus.yml" --storage.tsdb.path="$tmp/prom/data" \
			--web.listen-address=127.0.0.1:$pp >/dev/null 2>&1 &
		ppid=$!
		sleep 15
		curl -s "http://127.0.0.1:$pp/api/v1/query" --data-urlencode \
			'query=max_over_time(scrape_duration_seconds{job="shmetrics"}[10s])' |
			/usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print("  Prometheus scrape_duration_seconds, max over 10 s: %.1f ms" % (float(r[0]["value"][1])*1000) if r else "  no scrape")'
		curl -s "http://127.0.0.1:$pp/api/v1/query" --data-urlencode \
			'query=quantile_over_time(0.5, scrape_duration_seconds{job="shmetrics"}[10s])' |
			/usr/bin/python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print("  Prometheus scrape_duration_seconds, median over 10 s: %.1f ms" % (float(r[0]["value"][1])*1000) if r else "")'
		kill $ppid; wait $ppid 2>/dev/null
	fi
	kill $epid; wait $epid 2>/dev/null
	exec 3>&-
	wait
	# Python's HTTP server, one process, same workload
	p=$(port)
	mkfifo "$tmp/py$series"
	/usr/bin/python3 bench/python_render.py "$series" serve "$p" < "$tmp/py$series" > "$tmp/pyready$series" &
	exec 4>"$tmp/py$series"
	while ! grep -q ready "$tmp/pyready$series" 2>/dev/null; do sleep 0.2; done
	pypid=$(jobs -p | tail -1)
	bench_url "python prometheus_client $series series, plain" "http://127.0.0.1:$p/metrics"
	bench_url "python prometheus_client $series series, gzip" "http://127.0.0.1:$p/metrics" -H 'Accept-Encoding: gzip'
	exec 4>&-
	wait
	if command -v go >/dev/null && [ -d /usr/share/gocode/src/github.com/prometheus/client_golang ]; then
		[ -x "$tmp/go-render" ] || (cd bench/go && GO111MODULE=off GOPATH=/usr/share/gocode \
			GOCACHE="$tmp/gocache" go build -o "$tmp/go-render" render.go)
		p=$(port)
		"$tmp/go-render" "$series" 1 serve "$p" &
		gpid=$!
		sleep 2
		bench_url "go promhttp $series series, plain" "http://127.0.0.1:$p/metrics"
		bench_url "go promhttp $series series, gzip" "http://127.0.0.1:$p/metrics" -H 'Accept-Encoding: gzip'
		echo "  go RSS $(rss_kb $gpid) kB"
		kill $gpid; wait $gpid 2>/dev/null
	fi
done
