#!/bin/sh
# Same-run A/B of the Python hot path (bench/python_ops.py's shmetrics
# child: inc, labels().inc, set, observe, time()) between two builds'
# modules.  The builds run interleaved ROUNDS times (default 7), each a
# fresh interpreter timing every operation RUNS times (default 5); for
# each operation, the median over every timing of each build and the
# ratio B/A.
#
# usage: compare-python.sh BUILD_A BUILD_B
set -eu
a=$(cd "$1" && pwd)/python
b=$(cd "$2" && pwd)/python
here=$(cd "$(dirname "$0")" && pwd)
rounds=${ROUNDS:-7}
runs=${RUNS:-5}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
i=0
while [ "$i" -lt "$rounds" ]; do
	PYTHONPATH=$a /usr/bin/python3 "$here/python_ops.py" --child shmetrics \
		"$runs" >>"$out/a"
	PYTHONPATH=$b /usr/bin/python3 "$here/python_ops.py" --child shmetrics \
		"$runs" >>"$out/b"
	i=$((i + 1))
done
/usr/bin/python3 - "$out/a" "$out/b" <<'PY'
import json, statistics, sys
sides = []
for path in sys.argv[1:]:
    acc = {}
    for line in open(path):
        for op, ts in json.loads(line).items():
            acc.setdefault(op, []).extend(ts)
    sides.append(acc)
a, b = sides
print('%-32s %10s %10s %7s' % ('operation (ns, median)', 'A', 'B', 'B/A'))
for op in a:
    ma, mb = statistics.median(a[op]), statistics.median(b[op])
    print('%-32s %10.1f %10.1f %7.3f' % (op, ma, mb, mb / ma))
PY
