#!/usr/bin/python3
"""Per-operation cost of the Python module against prometheus_client
(normal and multiprocess modes), measured in the same run, and one scrape
of the render benchmark's workload.

usage: PYTHONPATH=build/python python3 bench/python_ops.py [RUNS]
                                             [--scrape SERIES WRITERS]

Each client runs in its own interpreter (prometheus_client picks its
value class at import, from PROMETHEUS_MULTIPROC_DIR).  Each operation is
timed with timeit as application code writes it (c.inc(), h.observe(v),
c.labels('a', 'b').inc()), RUNS times; the table shows medians in ns per
operation and the ratios of prometheus_client to shmetrics.
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import timeit

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
OPS = [
    ('counter inc', 'c.inc()'),
    ('counter inc(2.5)', 'c.inc(2.5)'),
    ('labelled child inc', 'child.inc()'),
    ("labels('a', 'b').inc()", "lc.labels('a', 'b').inc()"),
    ('gauge set', 'g.set(3.5)'),
    ('gauge inc', 'g.inc()'),
    ('histogram observe, 12 buckets', 'h.observe(0.3)'),
    ('with histogram.time()', 'with h.time(): pass'),
    ('baseline: empty loop', 'pass'),
]


def measure(mode, runs):
    if mode == 'shmetrics':
        import shmetrics as pc
        # SHMETRICS_BENCH_PREFIX: where a shared machine wants it.
        seg = '%s-%d' % (os.environ.get('SHMETRICS_BENCH_PREFIX',
                                        '/shmetrics-bench-py'), os.getpid())
        os.environ['SHMETRICS_SEGMENT'] = seg
        kw = {'registry': None}
        n = 1000000
    else:
        import prometheus_client as pc
        kw = {'registry': pc.CollectorRegistry()}
        n = 200000
    gkw = {} if mode == 'normal' else {'multiprocess_mode': 'livesum'}
    ns = {
        'c': pc.Counter('bench_c', 'c', **kw),
        'lc': pc.Counter('bench_lc', 'c', ['x', 'y'], **kw),
        'g': pc.Gauge('bench_g', 'g', **gkw, **kw),
        'h': pc.Histogram('bench_h_seconds', 'h', buckets=BOUNDS, **kw),
    }
    ns['child'] = ns['lc'].labels('a', 'b')
    out = {}
    for name, stmt in OPS:
        t = timeit.Timer(stmt, globals=ns)
        out[name] = [t.timeit(n) / n * 1e9 for _ in range(runs)]
    if mode == 'shmetrics':
        try:
            pc.unlink(seg)
        except FileNotFoundError:   # registry=None wrote a private one
            pass
    return out


def run_mode(mode, runs):
    env = dict(os.environ)
    tmp = None
    if mode == 'multiprocess':
        tmp = tempfile.mkdtemp(prefix='pc-multiproc-')
        env['PROMETHEUS_MULTIPROC_DIR'] = tmp
    else:
        env.pop('PROMETHEUS_MULTIPROC_DIR', None)
    try:
        r = subprocess.run([sys.executable, __file__, '--child', mode,
                            str(runs)], env=env, check=True,
                           capture_output=True, text=True)
        return json.loads(r.stdout)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def scrape(series, writers, runs):
    """The render benchmark's families (bench/python_render.py) written by
    WRITERS live forked processes through shmetrics; times render() of
    the text format, as the Flask blueprint does per scrape."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import python_render
    import shmetrics
    seg = '/shmetrics-bench-scrape-%d' % os.getpid()
    shmetrics.use_segment(seg)
    # python_render picks livesum gauges when this is set, as for
    # prometheus_client's multiprocess run.
    os.environ['PROMETHEUS_MULTIPROC_DIR'] = 'unused'
    fams = python_render.families(shmetrics, None)
    r, w = os.pipe()
    pids = []
    for k in range(writers):
        pid = os.fork()
        if pid == 0:
            python_render.touch_all(series, fams, k)
            os.write(w, b'x')
            signal.pause()      # live writer until the parent kills it
            os._exit(0)
        pids.append(pid)
    for _ in pids:
        os.read(r, 1)
    times = []
    for _ in range(runs):
        t0 = timeit.default_timer()
        text = shmetrics._shmetrics.render(seg, 'text')
        times.append((timeit.default_timer() - t0) * 1000)
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    os.close(r)
    os.close(w)
    shmetrics.unlink(seg)
    return statistics.median(times), min(times), len(text)


def main():
    if sys.argv[1:2] == ['--child']:
        print(json.dumps(measure(sys.argv[2], int(sys.argv[3]))))
        return
    runs = int(sys.argv[1]) if len(sys.argv) > 1 and \
        sys.argv[1].isdigit() else 7
    res = {m: run_mode(m, runs) for m in ('shmetrics', 'normal',
                                          'multiprocess')}
    print('%-32s %10s %10s %10s %8s %8s' % (
        'operation (ns, median of %d)' % runs, 'shmetrics', 'pc normal',
        'pc multi', 'normal/', 'multi/'))
    for name, _ in OPS:
        s, n, m = (statistics.median(res[k][name])
                   for k in ('shmetrics', 'normal', 'multiprocess'))
        print('%-32s %10.1f %10.1f %10.1f %7.1fx %7.1fx' % (
            name, s, n, m, n / s, m / s))
    if '--scrape' in sys.argv:
        i = sys.argv.index('--scrape')
        series, writers = int(sys.argv[i + 1]), int(sys.argv[i + 2])
        med, low, size = scrape(series, writers, 5)
        print('scrape shmetrics render() series %d writers %d  median '
              '%.2f ms  min %.2f  bytes %d' % (series, writers, med, low,
                                               size))
        here = os.path.dirname(os.path.abspath(__file__))
        r = subprocess.run([sys.executable,
                            os.path.join(here, 'python_render.py'),
                            str(series), '3', '--multiprocess',
                            str(writers)], capture_output=True, text=True,
                           check=True)
        print('scrape prometheus_client: ' + r.stdout.strip())


if __name__ == '__main__':
    main()
