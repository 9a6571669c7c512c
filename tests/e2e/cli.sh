#!/bin/sh
# The command-line contract of DESIGN.md and tools/cli.h: every binary
# prints --help and --version and exits 0; on an error it prints exactly
# one line naming it and exits 2 if the command line is wrong (a bad value
# names the option and the value), 1 if the work failed.
set -u
build=$1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# expect_status STATUS DESCRIPTION PATTERN COMMAND...: exit STATUS, one
# stderr line matching PATTERN
expect_status() {
	want=$1 what=$2 pattern=$3
	shift 3
	err=$("$@" 2>&1 >/dev/null)
	rc=$?
	lines=$(printf '%s\n' "$err" | grep -c .)
	[ "$rc" -eq "$want" ] || fail "$what: exit $rc, not $want"
	[ "$lines" -eq 1 ] || fail "$what: $lines lines: $err"
	printf '%s' "$err" | grep -q -- "$pattern" || fail "$what: '$err' lacks '$pattern'"
}
# a wrong command line: 2; a failure of the work: 1 (tools/cli.h)
expect_usage() { expect_status 2 "$@"; }
expect_error() { expect_status 1 "$@"; }

ctl=$build/tools/shmetrics-ctl
fleet=$build/tools/shmetrics-fleet
exporter=$build/exporter/shmetrics-exporter
top=$build/tools/shmetrics-top
for b in "$ctl" "$fleet" "$exporter" "$top"; do
	"$b" --help | grep -q usage || fail "$b --help"
	"$b" --version | grep -q "layout" || fail "$b --version"
	expect_usage "$b unknown option" "'--bogus'" "$b" --bogus
	expect_usage "$b missing value" "'--segment'" "$b" --segment
	expect_usage "$b stray argument" "unexpected argument 'stray'\|one command expected" "$b" stray extra
	# one message for a segment name, whichever program reads it
	expect_usage "$b relative segment" "invalid value 'relative' for --segment: must start with /" \
		"$b" --segment relative info
	expect_usage "$b segment ending in /" "invalid value '/run/x/' for --segment: a path must not end with /" \
		"$b" --segment /run/x/ info
done
# the layout version the sources define, not a copy of it
layout=$(sed -n 's/^#define SHMET_LAYOUT_VERSION *\([0-9]*\)u.*/\1/p' \
	"$(dirname "$0")/../../include/shmetrics/layout.h")
[ -n "$layout" ] || fail "SHMET_LAYOUT_VERSION not found"
"$ctl" --version | grep -q "layout $layout" || fail "ctl --version"
"$exporter" --version | grep -q "layout $layout" || fail "exporter --version"
"$top" --version | grep -q "layout $layout" || fail "top --version"
"$fleet" --version | grep -q "layout $layout" || fail "fleet --version"
seg=/shmet-cli-$$
expect_usage "ctl without command" "no command" "$ctl"
expect_usage "ctl unknown command" "unknown command 'frobnicate'" "$ctl" frobnicate
expect_error "ctl info, missing segment" "cannot open segment" "$ctl" --segment "$seg" info
expect_error "ctl destroy, missing segment" "No such file" "$ctl" --segment "$seg" destroy
expect_error "ctl expire, missing segment" "expire:" "$ctl" --segment "$seg" expire
expect_usage "ctl bad ttl" "invalid value 'soon' for --series-ttl" "$ctl" --segment "$seg" --series-ttl soon create
# the series TTL: set at creation, shown by info, a sweep on demand
"$ctl" --segment "$seg" --series-ttl 30 create >/dev/null || fail "ctl create --series-ttl"
"$ctl" --segment "$seg" info | grep -q "^series ttl *30 s (0 expired)" || fail "ctl info: series ttl"
"$ctl" --segment "$seg" expire | grep -q "^0 series expired (ttl 30 s)" || fail "ctl expire"
"$ctl" --segment "$seg" destroy || fail "ctl destroy"
expect_usage "ctl bad segment name" "invalid value 'no-slash' for --segment: must start with /" "$ctl" --segment no-slash create
expect_usage "ctl bad format" "invalid value 'xml' for --format" "$ctl" --segment "$seg" dump --format xml
expect_usage "ctl bad capacity" "invalid value 'x' for --max-series: not a positive number" "$ctl" create --max-series x
expect_error "ctl bad group" "no group" "$ctl" create --group no-such-group-here
expect_usage "fleet bad speed" "invalid value '-1' for --speed" "$fleet" --speed -1
expect_usage "fleet non-numeric engines" "invalid value 'abc' for --engines" "$fleet" --engines abc
expect_usage "fleet trailing garbage" "invalid value '3x' for --workers" "$fleet" --workers 3x
expect_usage "fleet rate out of range" "invalid value '101' for --rate-5xx" "$fleet" --rate-5xx 101
expect_usage "fleet rates over 100" "add up to more than 100" "$fleet" --rate-4xx 60 --rate-5xx 60
# a status file the fleet could never write: said at once, not ignored
expect_error "fleet status in a missing directory" "cannot write --status /nonexistent/dir/s.json" \
	"$fleet" --segment "$seg" --status /nonexistent/dir/s.json --duration 1
[ -e "/dev/shm$seg" ] && fail "fleet created the segment before refusing --status"
# the exporter: every bad value named with its option
expect_usage "exporter listen without port" "invalid value 'notaport' for --listen: expected HOST:PORT" "$exporter" --listen notaport
expect_usage "exporter port out of range" "invalid value '127.0.0.1:99999' for --listen: port not in 1..65535" "$exporter" --listen 127.0.0.1:99999
expect_usage "exporter port not a number" "invalid value '127.0.0.1:http' for --listen: the port is not a number" "$exporter" --listen 127.0.0.1:http
expect_usage "exporter zero threads" "invalid value '0' for --threads: not in 1..1024" "$exporter" --threads 0
expect_usage "exporter threads not a number" "invalid value 'abc' for --threads: not an integer" "$exporter" --threads abc
expect_usage "exporter negative timeout" "invalid value '-1' for --request-timeout: not in 1..3600" "$exporter" --request-timeout -1
expect_usage "exporter key without cert" "--tls-key needs --tls-cert" "$exporter" --tls-key /nonexistent
expect_usage "exporter web config and cert" "give one or the other" "$exporter" --web.config.file /x --tls-cert /y
expect_usage "exporter empty owner" "--segment-owner is empty" "$exporter" --segment-owner ""
expect_error "exporter unknown owner" "no such user" "$exporter" --segment-owner no-such-user-here --segment "$seg"
expect_error "exporter missing certificate" "cannot read the TLS certificate file /nonexistent: No such file" \
	"$exporter" --tls-cert /nonexistent --listen 127.0.0.1:1
expect_error "exporter missing key" "cannot read the TLS key file /nonexistent-key: No such file" \
	"$exporter" --tls-cert /etc/hostname --tls-key /nonexistent-key --listen 127.0.0.1:1
printf 'not a certificate\n' > /tmp/shmet-cli-cert-$$
expect_error "exporter unusable certificate" "TLS certificate file /tmp/shmet-cli-cert-$$" \
	"$exporter" --tls-cert /tmp/shmet-cli-cert-$$ --segment "$seg" --listen 127.0.0.1:1
rm -f /tmp/shmet-cli-cert-$$
expect_error "exporter bad auth file" "cannot read" "$exporter" --basic-auth-file /nonexistent
printf 'x:y\n' > /tmp/shmet-cli-users-$$
expect_error "exporter malformed auth file" "expected 'user:" "$exporter" --basic-auth-file /tmp/shmet-cli-users-$$
rm -f /tmp/shmet-cli-users-$$
expect_error "top missing segment" "cannot open segment" "$top" --segment "$seg" --once
expect_usage "top invalid regex" "invalid value '(' for --filter: not a regex" "$top" --filter '(' --once
expect_usage "top bad delay" "invalid value '0' for -d" "$top" -d 0 --once
expect_usage "top bad sort" "invalid value 'size' for --sort" "$top" --sort size --json
expect_usage "top once and json" "exclude each other" "$top" --once --json
expect_usage "top stray argument" "unexpected argument" "$top" --once extra
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
