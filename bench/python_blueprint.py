#!/usr/bin/python3
"""The Flask blueprint's scrape, shmetrics._shmetrics.render(), with the
view it keeps between calls (warm: the same segment every call) against a
fresh mapping and index every call (cold: two segments in turn, so the one
cached view never matches), interleaved call by call in one run.

usage: PYTHONPATH=build/python python3 bench/python_blueprint.py SERIES [CALLS]

One writer (this process), the workload of python_render.py: 60% counters,
20% gauges, 20% 12-bucket histograms over 10 families, two labels.
Prints the median ms per render of each and the ratio.
"""
import os
import statistics
import sys
import time

import shmetrics
from shmetrics import _shmetrics

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]


def fill(name, series):
    seg = shmetrics.Segment(name)
    per = series // 10
    for k in range(10):
        labels = ['campaign_id', 'user_id']
        if k < 6:
            m = shmetrics.Counter('bench_counter_%d' % k, 'A counter', labels,
                                  segment=seg, registry=None)
        elif k < 8:
            m = shmetrics.Gauge('bench_gauge_%d' % k, 'A gauge', labels,
                                multiprocess_mode='livesum', segment=seg,
                                registry=None)
        else:
            m = shmetrics.Histogram('bench_histogram_%d_seconds' % k,
                                    'A histogram', labels, buckets=BOUNDS,
                                    segment=seg, registry=None)
        for i in range(per):
            child = m.labels('c%d' % (i % 100), 'u%d' % i)
            if k < 6:
                child.inc(i)
            elif k < 8:
                child.set(i)
            else:
                child.observe(i % 7)
    return seg


def main():
    series = int(sys.argv[1])
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 21
    names = ['/shmetrics-bench-bp-%d-%d' % (os.getpid(), i) for i in (0, 1)]
    keep = [fill(n, series) for n in names]
    warm, cold = [], []
    try:
        _shmetrics.render(names[0], 'text')
        for i in range(calls):
            # cold: the other name replaces the cached view, then back
            t0 = time.perf_counter()
            _shmetrics.render(names[1], 'text')
            t1 = time.perf_counter()
            _shmetrics.render(names[0], 'text')
            t2 = time.perf_counter()
            body = _shmetrics.render(names[0], 'text')
            t3 = time.perf_counter()
            cold.append((t1 - t0) * 1e3)
            cold.append((t2 - t1) * 1e3)
            warm.append((t3 - t2) * 1e3)
        w, c = statistics.median(warm), statistics.median(cold)
        print('series %7d  render() warm %8.3f ms  cold %8.3f ms  '
              'cold/warm %.2fx  bytes %d' % (series, w, c, c / w, len(body)))
    finally:
        del keep
        for n in names:
            shmetrics.unlink(n)


if __name__ == '__main__':
    main()
