"""CollectorRegistry (issue 23): private registries, registry=None,
unregister, custom collectors, the multiprocess recipe, restricted
registries and target_info, as prometheus_client's."""

import gc
import os

import pytest

import shmetrics
from shmetrics import REGISTRY, CollectorRegistry, Counter, Gauge, Summary
from shmetrics import GaugeMetricFamily, MultiProcessCollector

from conftest import value


def test_private_registries_are_isolated(segment):
    r1, r2 = CollectorRegistry(), CollectorRegistry()
    Counter('iso', 'h', registry=r1).inc(2)
    Counter('iso', 'h', registry=r2).inc(5)
    assert r1.get_sample_value('iso_total') == 2
    assert r2.get_sample_value('iso_total') == 5
    # Neither is in the fleet's segment.
    assert value('iso_total') is None


def test_private_segment_goes_with_its_registry(segment):
    r = CollectorRegistry()
    c = Counter('gone', 'h', registry=r)
    path = '/dev/shm' + r._store.name
    assert os.path.exists(path)
    del c, r
    gc.collect()
    assert not os.path.exists(path)


def test_registry_none_is_isolated(segment):
    a = Counter('loose', 'h', registry=None)
    b = Counter('loose', 'h', registry=None)    # prometheus_client: fine
    a.inc()
    b.inc(5)
    assert value('loose_total') is None
    assert b'loose' not in shmetrics.generate_latest()
    assert [s.value for s in a.collect()[0].samples
            if s.name == 'loose_total'] == [1]
    assert [s.value for s in b.collect()[0].samples
            if s.name == 'loose_total'] == [5]
    # Registered later, it shows in that registry.
    r = CollectorRegistry()
    r.register(b)
    assert r.get_sample_value('loose_total') == 5


def test_unregister_frees_the_name(segment):
    c = Counter('freed', 'h')
    with pytest.raises(ValueError, match='Duplicated timeseries'):
        Counter('freed', 'h')
    REGISTRY.unregister(c)
    Counter('freed', 'h')               # the same family in the segment
    # A private registry: a name a summary showed, now a gauge's.
    r = CollectorRegistry()
    s = Summary('s', 'h', registry=r)
    s.observe(3)
    r.unregister(s)
    Gauge('s_count', 'h', registry=r).set(4)
    assert r.get_sample_value('s_count') == 4
    # A name made again starts at 0, as in prometheus_client.
    c1 = Counter('again', 'h', registry=r)
    c1.inc(7)
    r.unregister(c1)
    Counter('again', 'h', registry=r)
    assert r.get_sample_value('again_total') == 0


class _Custom:
    def collect(self):
        yield GaugeMetricFamily('custom_g', 'Custom', value=7)


def test_custom_collector_joins_the_pages(segment):
    Counter('seg_c', 'h').inc()
    custom = _Custom()
    REGISTRY.register(custom)
    try:
        text = shmetrics.generate_latest()
        assert b'seg_c_total 1.0\n' in text
        assert b'custom_g 7.0\n' in text
        body = b''.join(shmetrics.make_wsgi_app()(
            {'PATH_INFO': '/metrics', 'QUERY_STRING': ''},
            lambda status, headers: None))
        assert body == text
    finally:
        REGISTRY.unregister(custom)
    assert b'custom_g' not in shmetrics.generate_latest()


def test_multiprocess_recipe(segment, tmp_path):
    c = Counter('mp', 'h')
    pids = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            c.inc()
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0
    c.inc()
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    assert registry.get_sample_value('mp_total') == 4
    # prometheus_client's docs make this registry per scrape: it must not
    # make a segment of its own (about 8 ms) when no metric writes to it.
    assert registry._store is None
    assert b'\nmp_total 4.0\n' in shmetrics.generate_latest(registry)
    # A PROMETHEUS_MULTIPROC_DIR-style directory means the default segment.
    r2 = CollectorRegistry()
    MultiProcessCollector(r2, path=str(tmp_path))
    assert r2.get_sample_value('mp_total') == 4


def test_restricted_registry(segment):
    Counter('ra', 'h').inc(3)
    Gauge('rb', 'h', multiprocess_mode='max').set(2)
    got = list(REGISTRY.restricted_registry(['ra_total']).collect())
    assert [(m.name, [(s.name, s.labels, s.value) for s in m.samples])
            for m in got] == [('ra', [('ra_total', {}, 3.0)])]


def test_target_info(segment):
    REGISTRY.set_target_info({'service': 'api'})
    assert value('target_info', {'service': 'api'}) == 1
    assert shmetrics.generate_latest().startswith(
        b'# HELP target_info Target metadata\n# TYPE target_info gauge\n'
        b'target_info{service="api"} 1.0\n')
    with pytest.raises(ValueError):
        shmetrics.Info('target', 'h')


def test_custom_collector_joins_the_flask_page(segment):
    import flask
    from shmetrics.routes import metrics_bp
    app = flask.Flask(__name__)
    app.register_blueprint(metrics_bp)
    Counter('fl', 'h').inc()
    custom = _Custom()
    REGISTRY.register(custom)
    try:
        client = app.test_client()
        text = client.get('/metrics').data
        assert text == (b'# HELP fl_total h\n# TYPE fl_total counter\n'
                        b'fl_total 1\n'
                        b'# HELP custom_g Custom\n# TYPE custom_g gauge\n'
                        b'custom_g 7.0\n')
        om = client.get('/metrics', headers={
            'Accept': 'application/openmetrics-text'}).data
        assert om.count(b'# EOF') == 1 and om.endswith(b'custom_g 7.0\n'
                                                      b'# EOF\n')
    finally:
        REGISTRY.unregister(custom)
