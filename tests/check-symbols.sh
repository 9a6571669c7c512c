#!/bin/sh
# The library exports exactly what lib/shmetrics.sym lists; the map lists
# exactly the functions the sources mark SHMET_EXPORT (reader, lib/*.c) or
# SHMET_API (writer, include/shmetrics.h); and no global symbol of the
# shared or the static library lacks the shmet_ prefix (as libevdev's
# static-symbol-leak test checks), so linking libshmetrics.a cannot clash
# with an application's own names.
set -eu
srcdir=$1
lib=$2
static=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
	grep -h -A1 '^SHMET_EXPORT' "$srcdir"/lib/*.c | grep -o '^shmet_[a-z0-9_]*'
	cat "$srcdir/include/shmetrics.h" "$srcdir/include/shmetrics/inline-impl.h" |
		tr '\n' ' ' |
		grep -o 'SHMET_API [a-z0-9_ *]*shmet_[a-z0-9_]*(' |
		sed 's/.*[ *]\(shmet_[a-z0-9_]*\)($/\1/'
} | sort -u > "$tmp/sources"
# shmet_impl_rseq_tls is data (the hot path's thread-local pointer), not a function.
sed -n 's/^[[:space:]]*\(shmet_[a-z0-9_]*\);.*/\1/p' "$srcdir/lib/shmetrics.sym" |
	grep -vx shmet_impl_rseq_tls | sort -u > "$tmp/map"
nm -D --defined-only "$lib" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' |
	sort -u > "$tmp/exported"
status=0
if ! diff -u "$tmp/map" "$tmp/sources"; then
	echo "shmetrics.sym and SHMET_EXPORT/SHMET_API in the sources disagree" >&2
	status=1
fi
if ! diff -u "$tmp/map" "$tmp/exported"; then
	echo "the library exports other symbols than shmetrics.sym lists" >&2
	status=1
fi
# Global (upper-case type) defined symbols of every object in the archive.
# ASan adds an ODR indicator, __odr_asan.NAME, for each global variable of
# ours (the slow path's process-wide state): ours too, so named.
nm --defined-only "$static" | awk 'NF == 3 && $2 ~ /^[A-Z]$/ { print $3 }' |
	sed 's/^__odr_asan\.//' | sort -u > "$tmp/static"
if grep -v '^shmet_' "$tmp/static"; then
	echo "libshmetrics.a defines the global symbols above without the shmet_ prefix" >&2
	status=1
fi
[ "$status" = 0 ] && echo "symbols ok: $(wc -l < "$tmp/map") exported, $(wc -l < "$tmp/static") global in the archive"
exit $status
