#!/bin/sh
# The main job: build, start the demo fleet writing into a segment and the
# exporter serving it; Ctrl-C stops both.  Extra arguments go to the fleet.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
sh tools/install-deps.sh || exit 1
if [ ! -f build/build.ninja ]; then
	meson setup build >/dev/null || exit 1
fi
ninja -C build >/dev/null || exit 1
export SHMETRICS_SEGMENT=${SHMETRICS_SEGMENT:-/shmetrics-demo}
exec ./build/tools/shmetrics-demo "$@"
