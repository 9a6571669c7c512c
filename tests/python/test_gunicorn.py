"""A gunicorn prefork fleet (4 sync workers, app preloaded in the master so
that its metrics are registered before the fork): after N requests from a
load generator, shmetrics-exporter and the app's own /metrics both show
exactly N.  Everything listens on 127.0.0.1 on free ports, and everything
started here is stopped here."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import shmetrics
from shmetrics.registry import parse_text

N = 400
HERE = Path(__file__).parent
EXPORTER = Path(os.environ.get('SHMETRICS_BUILD_ROOT', 'build')) / \
    'exporter' / 'shmetrics-exporter'


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def get(port, path='/'):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    try:
        conn.request('GET', path)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def wait_http(port, proc, path='/'):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, 'exited early'
        try:
            status, _ = get(port, path)
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError('port %d never answered' % port)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def count(text):
    for name, labels, v in parse_text(text):
        if name == 'demo_requests_total' and labels == {'path': '/'}:
            return v
    return None


@pytest.fixture
def fleet():
    seg = '/shmetrics-py-gunicorn-%d' % os.getpid()
    env = dict(os.environ, SHMETRICS_SEGMENT=seg)
    port = free_port()
    procs = []
    try:
        gunicorn = subprocess.Popen(
            [sys.executable, '-m', 'gunicorn', '--workers', '4',
             '--preload', '--bind', '127.0.0.1:%d' % port,
             '--chdir', str(HERE), '--log-level', 'warning',
             'gunicorn_app:app'], env=env)
        procs.append(gunicorn)
        wait_http(port, gunicorn, '/metrics/health')
        yield seg, port, procs
    finally:
        for p in procs:
            stop(p)
        try:
            shmetrics.unlink(seg)
        except OSError:
            pass


def test_gunicorn_prefork_counts_exactly(fleet):
    seg, port, procs = fleet
    pids = set()
    errors = []
    lock = threading.Lock()

    def load(n):
        for _ in range(n):
            try:
                status, body = get(port)
                assert status == 200
                with lock:
                    pids.add(body.split()[-1])
            except Exception as e:   # reported below
                errors.append(e)

    threads = [threading.Thread(target=load, args=(N // 8,))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(pids) >= 2, 'one worker served everything: %s' % pids

    status, text = get(port, '/metrics')
    assert status == 200
    assert count(text) == N
    # the blueprint's own scrapes are not counted: only '/' is

    if not EXPORTER.exists():
        pytest.skip('shmetrics-exporter not built')
    eport = free_port()
    exporter = subprocess.Popen(
        [str(EXPORTER), '--segment', seg, '--listen',
         '127.0.0.1:%d' % eport], stdout=subprocess.DEVNULL)
    procs.append(exporter)
    wait_http(eport, exporter, '/metrics')
    status, text = get(eport, '/metrics')
    assert status == 200
    assert count(text) == N
    hist = {n: v for n, l, v in parse_text(text)
            if n == 'demo_request_seconds_count'}
    assert hist == {'demo_request_seconds_count': N}
