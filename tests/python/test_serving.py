"""generate_latest, CONTENT_TYPE_LATEST and the WSGI, ASGI and HTTP
servers (issue 23): what prometheus_client serves, byte for byte."""

import asyncio
import errno
import socket
import time
import urllib.request

import prometheus_client
import prometheus_client.core
import pytest

import shmetrics


def _same_operations(m, registry):
    c = m.Counter('req', 'Requests', ['path'], registry=registry)
    c.labels('/a').inc(3)
    m.Gauge('temp', 'T\nwith "quotes"', registry=registry).set(-1.5)
    h = m.Histogram('lat_seconds', 'L', buckets=[0.1, 1, 10],
                    registry=registry)
    h.observe(0.5)
    h.observe(20)
    m.Summary('sz', 'S', ['k'], registry=registry).labels('x').observe(4)
    m.Info('build', 'B', registry=registry).info({'v': '1'})
    m.Enum('st', 'E', states=['up', 'down'], registry=registry)
    registry.register(_Custom(m))


class _Custom:
    def __init__(self, m):
        self.m = m

    def collect(self):
        yield self.m.core.CounterMetricFamily('ext', 'X', value=2)


def test_generate_latest_is_prometheus_clients(segment, monkeypatch):
    monkeypatch.setattr(time, 'time', lambda: 1234.5)
    pc = prometheus_client.CollectorRegistry()
    sm = shmetrics.CollectorRegistry()
    _same_operations(prometheus_client, pc)
    _same_operations(shmetrics, sm)
    assert shmetrics.generate_latest(sm) == \
        prometheus_client.generate_latest(pc)
    assert shmetrics.CONTENT_TYPE_LATEST == \
        prometheus_client.CONTENT_TYPE_LATEST


def _wsgi_get(app, accept=''):
    got = {}

    def start(status, headers):
        got['status'], got['headers'] = status, dict(headers)
    body = b''.join(app({'PATH_INFO': '/metrics', 'QUERY_STRING': '',
                         'HTTP_ACCEPT': accept}, start))
    return got['status'], got['headers'], body


def test_wsgi_app(segment):
    shmetrics.Counter('w', 'h').inc()
    status, headers, body = _wsgi_get(shmetrics.make_wsgi_app())
    assert status == '200 OK'
    assert headers['Content-Type'] == shmetrics.CONTENT_TYPE_LATEST
    assert body == shmetrics.generate_latest()
    _, headers, body = _wsgi_get(shmetrics.make_wsgi_app(),
                                 'application/openmetrics-text')
    assert headers['Content-Type'].startswith('application/openmetrics')
    assert body == b'# HELP w h\n# TYPE w counter\nw_total 1.0\n# EOF\n'


def test_asgi_app(segment):
    shmetrics.Counter('a', 'h').inc(2)
    app = shmetrics.make_asgi_app()
    sent = []

    async def receive():
        return {'type': 'http.request'}

    async def send(msg):
        sent.append(msg)
    asyncio.run(app({'type': 'http', 'headers': [], 'query_string': b''},
                    receive, send))
    assert sent[0]['status'] == 200
    assert sent[1]['body'] == shmetrics.generate_latest()


def _free_port():
    """A port of this project's range (19200-19299) nobody holds."""
    for port in range(19200, 19300):
        with socket.socket() as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError as e:
                if e.errno == errno.EADDRINUSE:
                    continue
                raise
            return port
    pytest.skip('no free port in 19200-19299')


def test_start_http_server(segment):
    shmetrics.Gauge('served', 'h', multiprocess_mode='max').set(4)
    port = _free_port()
    shmetrics.start_http_server(port, addr='127.0.0.1')
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port,
                                timeout=30) as r:
        assert r.headers['Content-Type'] == shmetrics.CONTENT_TYPE_LATEST
        assert r.read() == shmetrics.generate_latest()
