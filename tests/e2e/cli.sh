#!/bin/sh
# The command-line contract of DESIGN.md: every binary prints --help and
# exits 0; on an error it exits non-zero with exactly one line naming it.
set -u
build=$1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_error DESCRIPTION PATTERN COMMAND...: non-zero, one stderr line
expect_error() {
	what=$1 pattern=$2
	shift 2
	err=$("$@" 2>&1 >/dev/null)
	rc=$?
	lines=$(printf '%s\n' "$err" | grep -c .)
	[ "$rc" -ne 0 ] || fail "$what: exit 0"
	[ "$lines" -eq 1 ] || fail "$what: $lines lines: $err"
	printf '%s' "$err" | grep -q -- "$pattern" || fail "$what: '$err' lacks '$pattern'"
}

ctl=$build/tools/shmetrics-ctl
fleet=$build/tools/shmetrics-fleet
exporter=$build/exporter/shmetrics-exporter
top=$build/tools/shmetrics-top
for b in "$ctl" "$fleet" "$exporter" "$top"; do
	"$b" --help | grep -q usage || fail "$b --help"
	expect_error "$b unknown option" "'--bogus'" "$b" --bogus
	expect_error "$b missing value" "'--segment'" "$b" --segment
done
"$ctl" --version | grep -q 'layout 3' || fail "ctl --version"
"$exporter" --version | grep -q 'layout 3' || fail "exporter --version"
"$top" --version | grep -q 'layout 3' || fail "top --version"
seg=/shmet-cli-$$
expect_error "ctl without command" "no command" "$ctl"
expect_error "ctl unknown command" "unknown command 'frobnicate'" "$ctl" frobnicate
expect_error "ctl info, missing segment" "cannot open segment" "$ctl" --segment "$seg" info
expect_error "ctl destroy, missing segment" "No such file" "$ctl" --segment "$seg" destroy
expect_error "ctl bad segment name" "segment name" "$ctl" --segment no-slash create
expect_error "ctl bad format" "unknown format" "$ctl" --segment "$seg" dump --format xml
expect_error "ctl bad capacity" "not a positive number" "$ctl" create --max-series x
expect_error "ctl bad group" "no group" "$ctl" create --group no-such-group-here
expect_error "fleet bad speed" "invalid value '-1' for --speed" "$fleet" --speed -1
expect_error "fleet non-numeric engines" "invalid value 'abc' for --engines" "$fleet" --engines abc
expect_error "fleet trailing garbage" "invalid value '3x' for --workers" "$fleet" --workers 3x
expect_error "fleet rate out of range" "invalid value '101' for --rate-5xx" "$fleet" --rate-5xx 101
expect_error "fleet rates over 100" "add up to more than 100" "$fleet" --rate-4xx 60 --rate-5xx 60
expect_error "exporter bad listen" "invalid option value" "$exporter" --listen nonsense
expect_error "exporter bad auth file" "cannot read" "$exporter" --basic-auth-file /nonexistent
printf 'x:y\n' > /tmp/shmet-cli-users-$$
expect_error "exporter malformed auth file" "expected 'user:" "$exporter" --basic-auth-file /tmp/shmet-cli-users-$$
rm -f /tmp/shmet-cli-users-$$
expect_error "top missing segment" "cannot open segment" "$top" --segment "$seg" --once
expect_error "top invalid regex" "invalid regex '(' for --filter" "$top" --filter '(' --once
expect_error "top bad delay" "invalid value '0' for -d" "$top" -d 0 --once
expect_error "top bad sort" "invalid value 'size' for --sort" "$top" --sort size --json
expect_error "top once and json" "exclude each other" "$top" --once --json
expect_error "top stray argument" "unexpected argument" "$top" --once extra
expect_error "top not a terminal" "not a terminal" "$top" --segment "$seg"
# a foreign file under the name: a clear error, not a crash
printf 'not a segment at all' > "/dev/shm$seg"
expect_error "ctl on a foreign segment" "smaller than a segment header" "$ctl" --segment "$seg" info
expect_error "top on a foreign segment" "smaller than a segment header" "$top" --segment "$seg" --json
head -c 8192 /dev/zero > "/dev/shm$seg"
expect_error "ctl on zeros" "bad magic" "$ctl" --segment "$seg" dump
expect_error "top on zeros" "bad magic" "$top" --segment "$seg" --once -d 0.05
rm -f "/dev/shm$seg"
echo "$failures failures"
[ "$failures" = 0 ]
