#!/bin/sh
# The library exports exactly what lib/shmetrics.sym lists, and the map
# lists exactly the functions the sources mark SHMET_EXPORT.
set -eu
srcdir=$1
lib=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep -h -A1 '^SHMET_EXPORT' "$srcdir"/lib/*.c | grep -o '^shmet_[a-z0-9_]*' |
	sort -u > "$tmp/sources"
sed -n 's/^[[:space:]]*\(shmet_[a-z0-9_]*\);.*/\1/p' "$srcdir/lib/shmetrics.sym" |
	sort -u > "$tmp/map"
nm -D --defined-only "$lib" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' |
	sort -u > "$tmp/exported"
status=0
if ! diff -u "$tmp/map" "$tmp/sources"; then
	echo "shmetrics.sym and SHMET_EXPORT in lib/*.c disagree" >&2
	status=1
fi
if ! diff -u "$tmp/map" "$tmp/exported"; then
	echo "the library exports other symbols than shmetrics.sym lists" >&2
	status=1
fi
[ "$status" = 0 ] && echo "symbols ok: $(wc -l < "$tmp/map") exported"
exit $status
