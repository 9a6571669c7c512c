#!/bin/sh
# The long reliability suite of tests/RELIABILITY.md:
#   sh tools/run-reliability.sh --long    1,000 kills, 100 starts of 50
#                                         processes, 10 min soak, 10M fuzz
#                                         executions, 16 processes x 4
#                                         threads x 10M increments with
#                                         forks and kill -9 (with rseq and
#                                         without), 1M series churn, ...
#   sh tools/run-reliability.sh           the short versions (as in CI)
# Builds build/ and build-fuzz/ first (tools/run-tests.sh does the same).
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
long=""
[ "${1:-}" = --long ] && long=--long
sh tools/install-deps.sh || exit 1
[ -f build/build.ninja ] || meson setup build >/dev/null || exit 1
ninja -C build >/dev/null || exit 1
failed=0
for t in torture start exhaustion http-abuse soak restarts access valgrind; do
	echo "== $t $long"
	/usr/bin/python3 tests/reliability/reliability.py build . "$t" $long ||
		failed=$((failed + 1))
done
if [ -n "$long" ]; then
	# series churn: 1,000,000 campaign_id series through 1,000 records
	# (about 35 minutes; CI runs 8,000 as the 'churn' test)
	echo "== churn: 1,000,000 series"
	CHURN_SERIES=1000000 build/tests/contract/churn || failed=$((failed + 1))
	# issue 22's exactness: every completed increment of the killed too
	for mode in rseq no-rseq; do
		echo "== percpu-kill --long ($mode)"
		if [ "$mode" = rseq ]; then
			build/tests/contract/percpu-kill --long
		else
			SHMETRICS_NO_RSEQ=1 build/tests/contract/percpu-kill --long
		fi || failed=$((failed + 1))
	done
	[ -f build-fuzz/build.ninja ] || CC=clang meson setup build-fuzz \
		-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
	ninja -C build-fuzz >/dev/null || exit 1
	echo "== fuzz: 10,000,000 executions"
	work=$(mktemp -d)
	mkdir -p "$work/corpus"
	# libFuzzer exits non-zero on a finding and leaves crash-* here
	if ! (cd "$work" && "$top/build-fuzz/tests/fuzz/fuzz-segment" \
		-runs=10000000 -max_len=262144 -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 corpus "$top/tests/fuzz/corpus" \
		> fuzz.log 2>&1); then
		failed=$((failed + 1))
		tail -40 "$work/fuzz.log"
	fi
	grep -E '^(Done|stat::)' "$work/fuzz.log"
	rm -rf "$work"
fi
echo "$failed failed"
[ "$failed" = 0 ]
