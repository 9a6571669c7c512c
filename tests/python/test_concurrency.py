"""Threads and processes: exact totals, handles inherited through fork."""

import multiprocessing
import os
import subprocess
import threading
from pathlib import Path

import pytest

import shmetrics
from conftest import value
from shmetrics import REGISTRY

PROCS = 8
N = 100000


def _wait_all(pids):
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0


def _fork(fn):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        finally:
            os._exit(code)
    return pid


def test_eight_forked_processes_exact_totals(segment):
    c = shmetrics.Counter('forked', 'h', ['k'])
    h = shmetrics.Histogram('forked_seconds', 'h', buckets=[1, 2])
    child = c.labels('a')

    def work():
        for _ in range(N):
            child.inc()
        for i in range(1000):
            h.observe(i % 3)
        c.labels('made-in-child').inc(3)

    _wait_all([_fork(work) for _ in range(PROCS)])
    assert value('forked_total', {'k': 'a'}) == PROCS * N
    assert value('forked_total', {'k': 'made-in-child'}) == PROCS * 3
    assert value('forked_seconds_count') == PROCS * 1000
    assert value('forked_seconds_bucket', {'le': '1.0'}) == PROCS * 667


def test_sum_gauge_keeps_exited_children(segment):
    """16 children, one after another, each set a 'sum' gauge to 1 and
    exit: their slots are reused, and each takeover folds the dead
    child's value into the segment's retired block, so the sum is 16 (as
    prometheus_client's multiprocess 'sum' keeps dead processes)."""
    g = shmetrics.Gauge('seq_children', 'h', multiprocess_mode='sum')

    for _ in range(16):
        _wait_all([_fork(lambda: g.set(1))])
    assert value('seq_children') == 16


def test_fork_after_registration_gets_own_slot(segment):
    c = shmetrics.Counter('after', 'h')
    c.inc(5)
    r, w = os.pipe()

    def work():
        os.close(r)
        os.write(w, str(segment.slot).encode())
        c.inc(7)

    pid = _fork(work)
    os.close(w)
    child_slot = int(os.read(r, 32))
    os.close(r)
    _wait_all([pid])
    assert child_slot != segment.slot
    c.inc()
    # The child's counts stay in the sum after it exited.
    assert value('after_total') == 13


def _pool_work(n):
    c = _POOL_COUNTER
    for _ in range(n):
        c.inc()
    return os.getpid()


def test_multiprocessing_pool(segment):
    global _POOL_COUNTER
    _POOL_COUNTER = shmetrics.Counter('pool', 'h')
    ctx = multiprocessing.get_context('fork')
    with ctx.Pool(4) as pool:
        pids = pool.map(_pool_work, [10000] * 16)
    assert os.getpid() not in pids
    assert value('pool_total') == 160000


def test_threads_exact_totals(segment):
    c = shmetrics.Counter('threads', 'h', ['k'])
    h = shmetrics.Histogram('threads_seconds', 'h', buckets=[0.5])
    g = shmetrics.Gauge('threads_gauge', 'h', multiprocess_mode='sum')
    start = threading.Barrier(8)

    def work():
        start.wait()
        child = c.labels('same')
        for _ in range(N // 4):
            child.inc()
            h.observe(0.25)
            g.inc()
        # racing creators of fresh series get one series
        for i in range(50):
            c.labels('race-%d' % i).inc()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert value('threads_total', {'k': 'same'}) == 8 * (N // 4)
    assert value('threads_seconds_count') == 8 * (N // 4)
    assert value('threads_seconds_sum') == 8 * (N // 4) * 0.25
    assert value('threads_gauge') == 8 * (N // 4)
    for i in range(50):
        assert value('threads_total', {'k': 'race-%d' % i}) == 8


CTL = Path(os.environ.get('SHMETRICS_BUILD_ROOT', 'build')) / 'tools' / \
    'shmetrics-ctl'


def _live_slots_of(pid, segment_name):
    """Writer slots held live by pid, as shmetrics-ctl writers lists them."""
    out = subprocess.run([str(CTL), '--segment', segment_name, 'writers'],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in out.splitlines()[1:]]
    return sum(1 for r in rows if len(r) >= 4 and r[2] == 'yes' and
               r[3] == str(pid))


@pytest.mark.parametrize('blocks,want', [(None, 1), (0, 1), (2, 1)])
def test_thread_blocks(blocks, want):
    """Threads count in per-CPU cells and take no writer slot: the
    process holds one, whatever thread_blocks says (accepted, no effect)."""
    name = '/shmetrics-py-blocks-%d' % os.getpid()
    seg = shmetrics.use_segment(name, thread_blocks=blocks)
    try:
        c = shmetrics.Counter('blocks', 'h')
        counted = threading.Barrier(5)
        release = threading.Event()

        def work():
            for _ in range(1000):
                c.inc()
            counted.wait()
            release.wait()

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        c.inc()
        counted.wait()
        held = _live_slots_of(os.getpid(), seg.name)
        release.set()
        for t in threads:
            t.join()
        assert value('blocks_total') == 4001
        assert held == want
    finally:
        REGISTRY._reset()
        shmetrics.unlink(name)
