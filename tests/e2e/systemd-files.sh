#!/bin/sh
# The shipped systemd files say what the trust model needs, read as text
# (no systemd needed, never skipped; tests/e2e/systemd.sh applies them):
# - shmetrics.tmpfiles makes /run/shmetrics sticky and setgid (3770), so
#   a member of group shmetrics cannot delete or replace another
#   application's segment there;
# - shmetrics-exporter.service passes --segment-owner, from a required
#   SHMETRICS_SEGMENT_OWNER, so a segment someone else put at the name is
#   refused instead of served, and an unset owner stops the exporter
#   (exit 2, which the unit does not restart) with a message naming it.
# usage: systemd-files.sh SOURCE_DIR [BUILD_DIR]
set -eu
src=$1/tools/systemd
build=${2:-}
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# tmpfiles: exactly one line, and it is the sticky setgid directory
lines=$(grep -v -e '^#' -e '^[[:space:]]*$' "$src/shmetrics.tmpfiles")
[ "$lines" = "d /run/shmetrics 3770 root shmetrics -" ] ||
	bad "tmpfiles line: '$lines'"
mode=$(echo "$lines" | awk '{ print $3 }')
[ $((0$mode & 01000)) -ne 0 ] || bad "mode $mode: no sticky bit"
[ $((0$mode & 02000)) -ne 0 ] || bad "mode $mode: no setgid bit"
[ $((0$mode & 07)) -eq 0 ] || bad "mode $mode: others have access"

# the exporter unit: one ExecStart, --segment-owner and its variable as
# two words of their own (${...}: one argument even when empty)
unit=$src/shmetrics-exporter.service.in
exec_lines=$(grep -c '^ExecStart=' "$unit")
[ "$exec_lines" = 1 ] || bad "$exec_lines ExecStart lines"
grep -q '^ExecStart=@bindir@/shmetrics-exporter --segment-owner \${SHMETRICS_SEGMENT_OWNER} ' \
	"$unit" || bad "ExecStart without --segment-owner \${SHMETRICS_SEGMENT_OWNER}: $(grep '^ExecStart=' "$unit")"
grep -qx 'Environment=SHMETRICS_SEGMENT_OWNER=' "$unit" ||
	bad "SHMETRICS_SEGMENT_OWNER has a default (it must be set by the admin)"
grep -qx 'RestartPreventExitStatus=2' "$unit" ||
	bad "an exporter without owner would be restarted forever"

# what the exporter does with the unit's default (an empty owner)
exporter=$build/exporter/shmetrics-exporter
if [ -n "$build" ] && [ -x "$exporter" ]; then
	rc=0
	msg=$("$exporter" --segment /wt-tools-none --segment-owner '' \
		--listen 127.0.0.1:0 2>&1) || rc=$?
	[ "$rc" = 2 ] || bad "empty --segment-owner: exit $rc, want 2"
	case $msg in
	*"--segment-owner is empty: give the user that creates the segment (systemd: SHMETRICS_SEGMENT_OWNER)"*) ;;
	*) bad "empty --segment-owner: '$msg'" ;;
	esac
fi
[ $fail = 0 ] && echo "systemd files: ok"
exit $fail
