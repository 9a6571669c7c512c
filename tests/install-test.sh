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
[ -f "$pc/shmetrics-reader.pc" ] || { echo "shmetrics-reader.pc not installed"; exit 1; }
for h in shmetrics.h shmetrics/layout.h shmetrics/format.h shmetrics/rules.h \
	shmetrics/cells.h shmetrics/labels.h shmetrics/exemplar.h shmetrics/inline-impl.h \
	shmetrics/lock.h shmetrics/writer-impl.h shmetrics-collectors.h \
	shmetrics-reader.h; do
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
	/* the writer's slow path comes from libshmetrics */
	o.name = "/shmet-install-test-none";
	o.flags = SHMET_OPEN_NO_CREATE;
	if (shmet_open(&seg, &o) != -ENOENT)
		return 1;
	return rc < 0 ? 0 : 1;
}
C
flags=$(PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$tmp pkg-config --cflags --libs shmetrics shmetrics-reader)
# shellcheck disable=SC2086
cc -std=gnu11 -Wall -Werror "$tmp/prog.c" -o "$tmp/prog" $flags
# a writer links libshmetrics alone: the reader is not in it
cat > "$tmp/writer.c" <<'C'
#include <shmetrics.h>
#include <errno.h>
int main(void)
{
	struct shmet_options o = { 0 };
	struct shmet_segment seg;

	o.name = "/shmet-install-test-none";
	o.flags = SHMET_OPEN_NO_CREATE;
	return shmet_open(&seg, &o) == -ENOENT ? 0 : 1;
}
C
flags=$(PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$tmp pkg-config --cflags --libs shmetrics)
# shellcheck disable=SC2086
cc -std=gnu11 -Wall -Werror -Wl,--no-undefined "$tmp/writer.c" -o "$tmp/writer" $flags
if nm -D "$tmp$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir shmetrics)/libshmetrics.so" |
	grep -q ' T shmet_reader_open'; then
	echo "libshmetrics carries the reader"; exit 1
fi
libdir=$tmp$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir shmetrics)
LD_LIBRARY_PATH=$libdir "$tmp/prog" | grep -q "cannot open segment"
LD_LIBRARY_PATH=$libdir "$tmp/writer"
# the collectors, through their own pkg-config name
cat > "$tmp/coll.c" <<'C'
#include <shmetrics.h>
#include <shmetrics-collectors.h>
#include <stdio.h>
#include <unistd.h>
int main(void)
{
	struct shmet_options o = { 0 };
	struct shmet_segment seg;
	struct shmet_campaign_collector c;
	char name[64];
	int rc;

	snprintf(name, sizeof name, "/shmet-install-coll-%d", (int)getpid());
	o.name = name;
	o.max_series = 64;
	o.cells_per_block = 1024;
	o.max_writers = 2;
	rc = shmet_open(&seg, &o);
	if (rc == 0)
		rc = shmet_campaign_collector_init(&c, &seg);
	SHMET_TIMED(shmet_campaign_time_poll_cycle(&c)) {
		shmet_campaign_record_call_initiated(&c, "c", "u");
	}
	shmet_close(&seg);
	shmet_unlink(name);
	printf("collectors %d\n", rc);
	return rc ? 1 : 0;
}
C
flags=$(PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$tmp pkg-config --cflags --libs shmetrics-collectors)
# shellcheck disable=SC2086
cc -std=gnu11 -Wall -Werror "$tmp/coll.c" -o "$tmp/coll" $flags
LD_LIBRARY_PATH=$libdir "$tmp/coll" | grep -q "collectors 0"
# the Python package, where Debian's python3 finds it, importable as
# installed (its extension finds libshmetrics through its rpath)
if [ -d "$build/python/shmetrics" ]; then
	init=$(find "$tmp" -path '*/shmetrics/__init__.py' | head -1)
	[ -n "$init" ] || { echo "Python package not installed"; exit 1; }
	pkgdir=$(dirname "$(dirname "$init")")
	/usr/bin/python3 -c 'import sys; sys.exit(sys.argv[1] not in sys.path)' \
		"${pkgdir#"$tmp"}" ||
		{ echo "Python package in ${pkgdir#"$tmp"}: not on python3's path"; exit 1; }
	LD_LIBRARY_PATH=$libdir PYTHONPATH=$pkgdir /usr/bin/python3 -c '
import shmetrics, shmetrics.routes
print(shmetrics.__file__)' | grep -q "^$pkgdir/shmetrics/"
	echo "the Python package works from ${pkgdir#"$tmp"}"
fi
echo "installed headers, libraries, shmetrics.pc, shmetrics-reader.pc and shmetrics-collectors.pc work"
