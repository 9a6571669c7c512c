#!/bin/sh
# Draw bench/RESULTS.md's plots from the raw benchmark output:
#   bench/data/writer.txt  output of ./build/bench/bench-writer
#   bench/data/render.txt  output of sh bench/run-render.sh
# into bench/writer.svg (ns per op by threads and processes) and
# bench/scrape.svg (scrape ms by series and writers: shmetrics, Go,
# Python).  RUN=1 re-runs both benchmarks first (build/ must be built;
# the scrape run takes minutes).  Needs gnuplot (Debian gnuplot-nox).
# Run from the top of the tree.
set -eu
data=bench/data
if [ "${RUN:-0}" = 1 ]; then
	./build/bench/bench-writer 9 20000000 > "$data/writer.txt"
	RUNS=${RUNS:-9} sh bench/run-render.sh > "$data/render.txt"
fi
for f in "$data/writer.txt" "$data/render.txt"; do
	[ -s "$f" ] || { echo "plot: $f is missing (RUN=1 makes it)" >&2; exit 1; }
done
command -v gnuplot >/dev/null ||
	{ echo "plot: gnuplot missing (apt-get install gnuplot-nox)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# writer: one bar per operation: label, median, min, max (ns)
awk '
/^baseline: bare atomic/            { l = "bare atomic add" }
/^counter inc \(1 thread\)/         { l = "inc, 1 thread" }
/^counter inc, 2 threads \(own/     { l = "inc, 2 threads" }
/^counter inc, 2 threads \(shared/  { l = "inc, 2 threads, before" }
/^counter inc, 2 processes/         { l = "inc, 2 processes" }
/^observe 12, 1 thread \(own/       { l = "observe, 1 thread" }
/^observe 12, 2 threads \(own/      { l = "observe, 2 threads" }
/^observe 12, 2 threads \(shared/   { l = "observe, 2 threads, before" }
l != "" && $0 ~ /ns/ {
	n = 0
	for (i = 1; i <= NF; i++)
		if ($i ~ /^[0-9.]+ns$/) { sub(/ns$/, "", $i); v[++n] = $i }
	printf "\"%s\" %s %s %s\n", l, v[1], v[2], v[3]
	l = ""
}' "$data/writer.txt" > "$tmp/writer.dat"

# scrape: x = series, one column file per line of the plot
awk '
$1 == "series" { printf "%s %s\n", $2, $11 > (tmp "/shm" $4 ".dat") }
$1 == "python" && $2 == "normal" { printf "%s %s\n", $4, $9 > (tmp "/py.dat") }
$1 == "python" && $2 == "multiprocess" { printf "%s %s\n", $4, $9 > (tmp "/pymp.dat") }
$1 == "go" { printf "%s %s\n", $4, $7 > (tmp "/go.dat") }
' tmp="$tmp" "$data/render.txt"

gnuplot <<GP
set terminal svg size 900,480 dynamic font "sans,11"
set termoption noenhanced
set output "bench/writer.svg"
set title "Writer hot path: ns per op, per thread or process (median, min-max)"
set style fill solid 0.6
set boxwidth 0.6
set yrange [0:*]
set ylabel "ns per op"
set xtics rotate by -20 left font ",9"
set grid ytics
set bmargin 6
set rmargin 16
plot "$tmp/writer.dat" using 0:2:xtic(1) with boxes notitle lc rgb "#4477aa", \
     "" using 0:2:3:4 with yerrorbars notitle lc rgb "black" pt 0

set output "bench/scrape.svg"
set title "Scrape (collect + render text): ms by series, log-log"
set logscale xy
set xrange [700:140000]
set xlabel "series"
set ylabel "ms per scrape"
set xtics rotate by 0 font ",10"
set bmargin 4
set rmargin 4
set key left top
set format x "%.0s%c"
plot "$tmp/shm1.dat" using 1:2 with linespoints title "shmetrics, 1 writer", \
     "$tmp/shm16.dat" using 1:2 with linespoints title "shmetrics, 16 writers", \
     "$tmp/shm64.dat" using 1:2 with linespoints title "shmetrics, 64 writers", \
     "$tmp/go.dat" using 1:2 with linespoints title "Go client_golang", \
     "$tmp/py.dat" using 1:2 with linespoints title "Python prometheus_client", \
     "$tmp/pymp.dat" using 1:2 with linespoints title "Python multiprocess, 8 writers"
GP
echo "plot: wrote bench/writer.svg bench/scrape.svg"
