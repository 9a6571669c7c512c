#!/usr/bin/python3
"""The render benchmark's workload with Python's prometheus_client, for
comparison in the same run as bench-render.

usage: python_render.py SERIES [RUNS] [--multiprocess WRITERS]
       python_render.py SERIES serve PORT     (start_http_server on 127.0.0.1)

60% counters, 20% gauges, 20% histograms with 12 buckets over 10 families,
labels campaign_id and user_id, every series touched by every writer.
Prints the median generate_latest() time in ms and the bytes.
"""
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]


def families(pc, registry):
    fams = []
    for k in range(10):
        if k < 6:
            fams.append(pc.Counter("bench_counter_%d" % k, "A counter",
                                   ["campaign_id", "user_id"],
                                   registry=registry))
        elif k < 8:
            kw = {"multiprocess_mode": "livesum"} \
                if "PROMETHEUS_MULTIPROC_DIR" in os.environ else {}
            fams.append(pc.Gauge("bench_gauge_%d" % k, "A gauge",
                                 ["campaign_id", "user_id"],
                                 registry=registry, **kw))
        else:
            fams.append(pc.Histogram("bench_histogram_%d_seconds" % k,
                                     "A histogram",
                                     ["campaign_id", "user_id"],
                                     buckets=BOUNDS, registry=registry))
    return fams


def touch_all(series, fams, writer_id=0):
    for i in range(series):
        k = i % 10
        child = fams[k].labels("campaign-%08d" % i, "user-%04d" % (i % 1000))
        if k < 6:
            child.inc(i + writer_id)
        elif k < 8:
            child.set(i * 0.5)
        else:
            child.observe((i % 40) * 0.13)


def writer(series, writer_id, ready, done):
    import prometheus_client as pc
    fams = families(pc, None)
    touch_all(series, fams, writer_id)
    ready.put(1)
    done.wait()


def serve(series, port):
    import prometheus_client as pc
    registry = pc.CollectorRegistry()
    touch_all(series, families(pc, registry))
    pc.start_http_server(port, addr="127.0.0.1", registry=registry)
    print("ready", flush=True)
    sys.stdin.read()


def main():
    series = int(sys.argv[1])
    if len(sys.argv) > 3 and sys.argv[2] == "serve":
        return serve(series, int(sys.argv[3]))
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    writers = 0
    if "--multiprocess" in sys.argv:
        writers = int(sys.argv[sys.argv.index("--multiprocess") + 1])
    tmp = None
    procs = []
    if writers:
        tmp = tempfile.mkdtemp(prefix="pc-multiproc-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tmp
    import prometheus_client as pc
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client import multiprocess
    try:
        if writers:
            ready, done = multiprocessing.Queue(), multiprocessing.Event()
            procs = [multiprocessing.Process(target=writer,
                                             args=(series, w, ready, done))
                     for w in range(writers)]
            for p in procs:
                p.start()
            for _ in procs:
                ready.get()
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = CollectorRegistry()
            touch_all(series, families(pc, registry))
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            out = generate_latest(registry)
            times.append((time.perf_counter() - t0) * 1000)
        print("python %s series %7d writers %3d  render median %9.2f ms  "
              "min %9.2f  bytes %d" % (
                  "multiprocess" if writers else "normal", series,
                  writers or 1, statistics.median(times), min(times),
                  len(out)))
    finally:
        if procs:
            done.set()
            for p in procs:
                p.join()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
