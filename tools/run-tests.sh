#!/bin/sh
# Configure, build and run every test in three build directories:
#   build/        the normal build: every suite; then the writer's tests
#                 (suite memcheck: with rseq and SHMETRICS_NO_RSEQ=1, both
#                 on the fallback there, as valgrind has no rseq) under
#                 valgrind, scaled down by SHMETRICS_TEST_QUICK=1
#   build-asan/   ASan + UBSan: every suite but valgrind (which runs the
#                 exporter of build/ under memcheck)
#   build-tsan/   TSan: the concurrency (stress) suite, the writer's tests
#                 (suite writer: with rseq and SHMETRICS_NO_RSEQ=1) and
#                 the exporter
#   build-fuzz/   clang libFuzzer + ASan/UBSan: the segment fuzzer, 60 s
#                 (SHMETRICS_FUZZ_SECONDS)
# Prints 'N passed, N failed' as its last line; exits non-zero on failure.
# Set SHMETRICS_TEST_QUICK=1 to skip the sanitizer builds.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
sh tools/install-deps.sh || exit 1

passed=0
failed=0
failure_logs=$(mktemp)
trap 'rm -f "$failure_logs"' EXIT

# setup DIR [meson options...]: configure once, reconfigure if options change
setup() {
	dir=$1
	shift
	if [ -f "$dir/build.ninja" ]; then
		meson configure "$dir" "$@" >/dev/null || return 1
	else
		meson setup "$dir" "$@" >/dev/null || return 1
	fi
	ninja -C "$dir" >/dev/null || ninja -C "$dir"
}

# run DIR [meson test args...]: run, then count results from testlog.json
# (testlog-SETUP.json for a --setup run: set LOG=testlog-SETUP)
run() {
	dir=$1
	shift
	echo "== $dir: meson test $*"
	meson test -C "$dir" --print-errorlogs "$@" | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Timeout):'
	log="$dir/meson-logs/${LOG:-testlog}.json"
	ok=$(grep -c '"result": "OK"' "$log")
	total=$(grep -c '"result":' "$log")
	passed=$((passed + ok))
	failed=$((failed + total - ok))
	# --print-errorlogs went through the grep above: keep the end of
	# each failed test's output, printed again just before the summary
	# so a CI log that keeps only its end still says why it failed.
	/usr/bin/python3 - "$log" <<-'EOF' | tee -a "$failure_logs" || true
	import json, sys
	for line in open(sys.argv[1], errors="replace"):
	    t = json.loads(line)
	    if t.get("result") not in ("OK", "SKIP", "EXPECTEDFAIL"):
	        out = (t.get("stdout") or "") + (t.get("stderr") or "")
	        print("== output of %s (%s), last 60 lines:" % (t["name"], t["result"]))
	        print("\n".join(out.splitlines()[-60:]))
	EOF
	# A skip (exit 77: a tool missing) is not a pass: name it.
	grep '"result": "SKIP"' "$log" | sed -n 's/^{"name": "\([^"]*\)".*/== skipped, counted as failed: \1/p'
}

record_build_failure() {
	echo "== $1: build failed"
	failed=$((failed + 1))
}

if setup build; then run build; else record_build_failure build; fi

if [ "${SHMETRICS_TEST_QUICK:-0}" != 1 ]; then
	if [ -f build/build.ninja ] && command -v valgrind >/dev/null; then
		SHMETRICS_TEST_QUICK=1 LOG=testlog-valgrind \
			run build --setup valgrind --suite memcheck
	fi
	if setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debug; then
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
			run build-asan --no-suite valgrind
	else
		record_build_failure build-asan
	fi
	if setup build-tsan -Db_sanitize=thread -Db_lundef=false \
		-Dbuildtype=debugoptimized; then
		# the multi-process stress suite, and the exporter's threads
		# (RCU views, shared renders) through its end-to-end test
		TSAN_OPTIONS="halt_on_error=1 suppressions=$top/tests/tsan.supp" \
			run build-tsan --suite stress --suite writer
		TSAN_OPTIONS="halt_on_error=1 suppressions=$top/tests/tsan.supp" \
			run build-tsan exporter
	else
		record_build_failure build-tsan
	fi
	# libFuzzer with ASan+UBSan over the segment reader and renderers,
	# when clang is there (it is installed by install-deps.sh).
	if command -v clang >/dev/null && CC=clang setup build-fuzz \
		-Dfuzz=true -Dfuzz_seconds="${SHMETRICS_FUZZ_SECONDS:-60}" \
		-Db_sanitize=address,undefined -Db_lundef=false \
		-Dbuildtype=debugoptimized; then
		run build-fuzz --suite fuzz
	else
		record_build_failure build-fuzz
	fi
fi

cat "$failure_logs"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
