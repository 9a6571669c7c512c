#!/bin/sh
# Draw bench/RESULTS.md's plots from the raw benchmark output:
#   bench/data/writer.txt  output of ./build/bench/bench-writer
#   bench/data/render.txt  output of sh bench/run-render.sh
# into bench/writer.svg (ns per op of each operation and its baselines),
# bench/scaling.svg (CPU ns per increment of one series by 1-8 threads
# and processes) and bench/scrape.svg (scrape ms by series and writers:
# shmetrics with 1, 16 and 64 processes and 64 processes x 4 threads, Go,
# Python).  RUN=1 re-runs both benchmarks first (build/ must be built,
# or the directory BUILD names; the scrape run takes minutes).  Needs gnuplot (Debian gnuplot-nox).
# Run from the top of the tree.
set -eu
data=bench/data
if [ "${RUN:-0}" = 1 ]; then
	"${BUILD:-build}/bench/bench-writer" 9 20000000 > "$data/writer.txt"
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
/^baseline: bare atomic/                 { l = "bare atomic add" }
/^baseline: plain add/                   { l = "plain add, shared cell" }
/^baseline: minimal rseq add/            { l = "minimal rseq add (by hand)" }
/^counter inc \(1 thread, rseq/          { l = "inc (rseq)" }
/^counter inc \(1 thread, atomic/        { l = "inc (fallback)" }
/^counter inc, 2 threads \(rseq/         { l = "inc, 2 threads (rseq)" }
/^counter inc, 2 threads \(atomic/       { l = "inc, 2 threads (fallback)" }
/^counter inc, 2 processes \(same/        { l = "inc, 2 processes" }
/^counter add_double/                    { l = "add_double" }
/^gauge set/                             { l = "gauge set" }
/^histogram observe, 12/                 { l = "observe 12" }
/^observe 12, values at random/          { l = "observe 12, random values" }
/^observe 12, 2 threads \(rseq/          { l = "observe 12, 2 threads (rseq)" }
/^observe 12, 2 threads \(atomic/        { l = "observe 12, 2 threads (fallback)" }
l != "" && $0 ~ /ns/ {
	n = 0
	for (i = 1; i <= NF; i++)
		if ($i ~ /^[0-9.]+ns$/) { sub(/ns$/, "", $i); v[++n] = $i }
	printf "\"%s\" %s %s %s\n", l, v[1], v[2], v[3]
	l = ""
}' "$data/writer.txt" > "$tmp/writer.dat"

# scaling: x = writers, median min max, threads and processes
awk '
/^counter inc, [0-9]+ threads?, CPU per op/   { f = "threads" }
/^counter inc, [0-9]+ process(es)?, CPU per op/ { f = "procs" }
f != "" {
	n = 0
	for (i = 1; i <= NF; i++)
		if ($i ~ /^[0-9.]+ns$/) { sub(/ns$/, "", $i); v[++n] = $i }
	printf "%s %s %s %s\n", $3, v[1], v[2], v[3] > (tmp "/" f ".dat")
	f = ""
}' tmp="$tmp" "$data/writer.txt"
[ -s "$tmp/threads.dat" ] ||
	{ echo "plot: $data/writer.txt has no scaling rows (re-run bench-writer)" >&2; exit 1; }

# scrape: x = series, one column file per line of the plot
awk '
$1 == "series" {
	th = $(NF - 3) == "threads" ? $(NF - 2) : 1
	g = $(NF - 1) == "gauges" ? $NF : "all"
	k = th == 1 ? $4 : $4 "x" th "-" g
	printf "%s %s\n", $2, $11 > (tmp "/shm" k ".dat")
}
$1 == "python" && $2 == "normal" { printf "%s %s\n", $4, $9 > (tmp "/py.dat") }
$1 == "python" && $2 == "multiprocess" { printf "%s %s\n", $4, $9 > (tmp "/pymp.dat") }
$1 == "go" { printf "%s %s\n", $4, $7 > (tmp "/go.dat") }
' tmp="$tmp" "$data/render.txt"

gnuplot <<GP
set terminal svg size 900,480 dynamic font "sans,11"
set termoption noenhanced
set output "bench/writer.svg"
set title "Writer hot path: ns per op, per thread or process (median, min-max; log scale)"
set style fill solid 0.6
set boxwidth 0.6
set logscale y
set yrange [0.1:300]
set ylabel "ns per op"
set xtics rotate by -20 left font ",9"
set grid ytics
set bmargin 6
set rmargin 16
plot "$tmp/writer.dat" using 0:2:xtic(1) with boxes notitle lc rgb "#4477aa", \
     "" using 0:2:3:4 with yerrorbars notitle lc rgb "black" pt 0

unset logscale y
set output "bench/scaling.svg"
set title "One counter series, N writers: CPU ns per increment (median, min-max)"
set xtics rotate by 0 font ",10"
set xrange [0.5:9]
set yrange [0:*]
set xtics ("1" 1, "2" 2, "4" 4, "8" 8)
set xlabel "writers (this machine has 2 CPUs)"
set ylabel "CPU ns per increment"
set key right bottom
set bmargin 4
plot "$tmp/threads.dat" using 1:2:3:4 with yerrorlines title "threads of one process", \
     "$tmp/procs.dat" using (\$1 * 1.04):2:3:4 with yerrorlines title "processes"
unset xtics
set xtics
set xlabel

set output "bench/scrape.svg"
set title "Scrape (collect + render text): ms by series, log-log"
set logscale xy
set xrange [700:140000]
set yrange [0.05:1e6]
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
     "$tmp/shm64x4-all.dat" using 1:2 with linespoints title "shmetrics, 64 x 4 threads, every gauge in each", \
     "$tmp/shm64x4-own.dat" using 1:2 with linespoints title "shmetrics, 64 x 4 threads, own gauges", \
     "$tmp/go.dat" using 1:2 with linespoints title "Go client_golang", \
     "$tmp/py.dat" using 1:2 with linespoints title "Python prometheus_client", \
     "$tmp/pymp.dat" using 1:2 with linespoints title "Python multiprocess, 8 writers"
GP
echo "plot: wrote bench/writer.svg bench/scaling.svg bench/scrape.svg"
