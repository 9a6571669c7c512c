#!/bin/sh
# The shipped systemd files (tools/systemd/): both units pass
# `systemd-analyze verify` (silent: an unknown key or a missing binary is a
# failure) with ExecStart pointed at this build; the exporter's sandbox
# scores at most 2.0 in `systemd-analyze security` (0 safest, 10 unsafe);
# the sysusers.d snippet makes user shmetrics-exporter with primary group
# shmetrics, and the tmpfiles.d snippet the sticky setgid /run/shmetrics,
# in a scratch root, where (as root) two users of the group cannot delete
# or replace each other's segments.  Skipped (77) only if systemd-analyze
# is absent (Debian package systemd, installed by tools/install-deps.sh).
# usage: systemd.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1/tools/systemd
build=$2
command -v systemd-analyze >/dev/null || { echo "no systemd-analyze"; exit 77; }
tmp=$(mktemp -d /tmp/shmet-systemd-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for u in shmetrics-exporter.service shmetrics-segment@.service; do
	sed -e "s|@bindir@/shmetrics-exporter|$build/exporter/shmetrics-exporter|" \
	    -e "s|@bindir@/shmetrics-ctl|$build/tools/shmetrics-ctl|" \
	    "$src/$u.in" >"$tmp/$u"
	! grep -n '@[a-z]*@' "$tmp/$u" || { echo "$u: unsubstituted"; exit 1; }
done
cd "$tmp"
# verify: the exporter and an instance of the segment template
out=$(systemd-analyze verify ./shmetrics-exporter.service \
	./shmetrics-segment@app.service 2>&1) || { echo "$out"; exit 1; }
[ -z "$out" ] || { echo "verify complained:"; echo "$out"; exit 1; }
echo "verify: ok"
systemd-analyze security --offline=true --threshold=20 \
	./shmetrics-exporter.service >security.txt 2>&1 ||
	{ cat security.txt; echo "exposure above 2.0"; exit 1; }
echo "figure: $(grep 'Overall exposure' security.txt)"
mkdir -p root/etc
systemd-sysusers --root="$tmp/root" "$src/shmetrics.sysusers"
gid=$(awk -F: '$1 == "shmetrics" { print $3 }' root/etc/group)
[ -n "$gid" ] || { echo "no group shmetrics"; exit 1; }
awk -F: -v g="$gid" '$1 == "shmetrics-exporter" && $4 == g && $7 ~ /nologin/ \
	{ found = 1 } END { exit !found }' root/etc/passwd ||
	{ cat root/etc/passwd; echo "shmetrics-exporter not in shmetrics"; exit 1; }
echo "sysusers: ok"
systemd-tmpfiles --root="$tmp/root" --create "$src/shmetrics.tmpfiles"
[ "$(stat -c '%a %g' root/run/shmetrics)" = "3770 $gid" ] ||
	{ stat root/run/shmetrics; exit 1; }
echo "tmpfiles: ok"
[ "$(id -u)" = 0 ] && command -v setpriv >/dev/null ||
	{ echo "sticky: skipped (needs root and setpriv)"; exit 0; }
# Two applications in group shmetrics (uids 19101 and 19102, primary
# groups of their own): each creates its segment there, with the group
# shmetrics (setgid); neither can delete or replace the other's (sticky);
# each can delete its own.
as() { uid=$1; shift; setpriv --reuid "$uid" --regid "$uid" \
	--groups "$gid" -- "$@"; }
chmod 755 "$tmp"
dir=root/run/shmetrics
as 19101 sh -c "umask 027; echo a >$dir/a.seg"
as 19102 sh -c "umask 027; echo b >$dir/b.seg"
[ "$(stat -c '%u %g %a' $dir/a.seg)" = "19101 $gid 640" ] ||
	{ stat $dir/a.seg; echo "a.seg is not in group shmetrics"; exit 1; }
! as 19102 rm -f $dir/a.seg 2>/dev/null ||
	{ echo "19102 deleted 19101's segment"; exit 1; }
! as 19102 mv -f $dir/b.seg $dir/a.seg 2>/dev/null ||
	{ echo "19102 replaced 19101's segment"; exit 1; }
[ "$(cat $dir/a.seg)" = a ] || { echo "a.seg changed"; exit 1; }
as 19101 rm $dir/a.seg || { echo "19101 cannot delete its own"; exit 1; }
echo "sticky: ok"
