#!/bin/sh
# Install into a temporary root, then build a program against the
# installed headers and libshmetrics through pkg-config, as a user would.
set -eu
build=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp" --no-rebuild >/dev/null
pc=$(dirname "$(find "$tmp" -name shmetrics.pc | head -1)")
[ -n "$pc" ] || { echo "shmetrics.pc not installed"; exit 1; }
for h in shmetrics.h shmetrics/layout.h shmetrics/format.h \
	shmetrics/lock.h shmetrics/writer-impl.h shmetrics-reader.h; do
	[ -n "$(find "$tmp" -path "*/include/$h")" ] || { echo "missing $h"; exit 1; }
done
cat > "$tmp/prog.c" <<'C'
#include <shmetrics.h>
#include <shmetrics-reader.h>
#include <errno.h>
#include <stdio.h>
int main(void)
{
	struct shmet_reader *r;
	char err[SHMET_READER_ERRLEN];
	int rc = shmet_reader_open("/shmet-install-test-none", &r, err,
				   sizeof err);
	struct shmet_options o = { 0 };
	struct shmet_segment seg;

	printf("%s\n", err);
	/* the writer's slow path comes from libshmetrics too */
	o.name = "/shmet-install-test-none";
	o.flags = SHMET_OPEN_NO_CREATE;
	if (shmet_open(&seg, &o) != -ENOENT)
		return 1;
	return rc < 0 ? 0 : 1;
}
C
flags=$(PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$tmp pkg-config --cflags --libs shmetrics)
# shellcheck disable=SC2086
cc -std=gnu11 -Wall -Werror "$tmp/prog.c" -o "$tmp/prog" $flags
libdir=$tmp$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir shmetrics)
LD_LIBRARY_PATH=$libdir "$tmp/prog" | grep -q "cannot open segment"
echo "installed headers, library and shmetrics.pc work"
