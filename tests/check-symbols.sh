#!/bin/sh
# Each library exports exactly what its symbol list names, and the lists
# name exactly the functions the sources mark: libshmetrics (the writers'
# library, writer/shmetrics.sym) the SHMET_API functions of
# include/shmetrics.h, libshmetrics-reader (lib/shmetrics-reader.sym) the
# SHMET_EXPORT functions of lib/*.c.  No global symbol of a shared or a
# static library lacks the shmet_ prefix (as libevdev's static-symbol-leak
# test checks), so linking an archive cannot clash with an application's
# own names.
# usage: check-symbols.sh SRCDIR WRITER.so WRITER.a READER.so READER.a
set -eu
srcdir=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat "$srcdir/include/shmetrics.h" "$srcdir/include/shmetrics/inline-impl.h" |
	tr '\n' ' ' |
	grep -o 'SHMET_API [a-z0-9_ *]*shmet_[a-z0-9_]*(' |
	sed 's/.*[ *]\(shmet_[a-z0-9_]*\)($/\1/' | sort -u > "$tmp/writer.sources"
grep -h -A1 '^SHMET_EXPORT' "$srcdir"/lib/*.c | grep -o '^shmet_[a-z0-9_]*' |
	sort -u > "$tmp/reader.sources"
status=0
# check NAME MAP LIB STATIC
check() {
	# shmet_impl_rseq_tls is data (the hot path's thread-local
	# pointer), not a function.
	sed -n 's/^[[:space:]]*\(shmet_[a-z0-9_]*\);.*/\1/p' "$2" |
		grep -vx shmet_impl_rseq_tls | sort -u > "$tmp/$1.map"
	nm -D --defined-only "$3" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' |
		sort -u > "$tmp/$1.exported"
	if ! diff -u "$tmp/$1.map" "$tmp/$1.sources"; then
		echo "$2 and the sources' marks disagree" >&2
		status=1
	fi
	if ! diff -u "$tmp/$1.map" "$tmp/$1.exported"; then
		echo "$3 exports other symbols than $2 lists" >&2
		status=1
	fi
	# Global (upper-case type) defined symbols of every object in the
	# archive.  ASan adds an ODR indicator, __odr_asan.NAME, for each
	# global variable of ours: ours too, so named.
	nm --defined-only "$4" | awk 'NF == 3 && $2 ~ /^[A-Z]$/ { print $3 }' |
		sed 's/^__odr_asan\.//' | sort -u > "$tmp/$1.static"
	if grep -v '^shmet_' "$tmp/$1.static"; then
		echo "$4 defines the global symbols above without the shmet_ prefix" >&2
		status=1
	fi
	echo "$1: $(wc -l < "$tmp/$1.map") exported, $(wc -l < "$tmp/$1.static") global in the archive"
}
check writer "$srcdir/writer/shmetrics.sym" "$2" "$3"
check reader "$srcdir/lib/shmetrics-reader.sym" "$4" "$5"
[ "$status" = 0 ] && echo "symbols ok"
exit $status
