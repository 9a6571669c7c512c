"""Summary, Info, Enum, _created, unset gauges, set_function and the
live extremes (issue 23), with prometheus_client's semantics (its
multiprocess mode's where the two differ)."""

import os
import time

import pytest

import shmetrics
from shmetrics import REGISTRY, CollectorRegistry, Counter, Gauge
from shmetrics import _shmetrics, metrics

from conftest import value


def _fork(fn):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn()
            code = 0
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0


def test_summary_is_count_and_sum(segment):
    s = shmetrics.Summary('lat', 'h', ['p'])
    s.labels('a').observe(2)
    _fork(lambda: s.labels('a').observe(3))
    fam = [m for m in REGISTRY.collect() if m.name == 'lat'][0]
    assert fam.type == 'summary'
    assert [(x.name, x.labels, x.value) for x in fam.samples] == [
        ('lat_count', {'p': 'a'}, 2.0), ('lat_sum', {'p': 'a'}, 5.0)]
    # The exporter's page (no summary type in the segment): a histogram
    # with one bucket, the same count and sum.
    assert _shmetrics.render(segment.name).decode() == (
        '# HELP lat h\n# TYPE lat histogram\n'
        'lat_bucket{p="a",le="1.7976931348623157e+308"} 2\n'
        'lat_bucket{p="a",le="+Inf"} 2\n'
        'lat_sum{p="a"} 5\nlat_count{p="a"} 2\n')


def test_summary_not_observable_says_summary(segment):
    s = shmetrics.Summary('sl', 'h', ['a'])
    with pytest.raises(ValueError,
                       match='^summary metric is missing label values$'):
        s.observe(1)


def test_info_and_enum_are_this_process_state(segment):
    shmetrics.Info('build', 'h').info({'version': '1.2'})
    e = shmetrics.Enum('state', 'h', states=['a', 'b'])
    assert value('state', {'state': 'a'}) == 1
    e.state('b')
    assert value('build_info', {'version': '1.2'}) == 1
    assert value('state', {'state': 'a'}) == 0
    assert value('state', {'state': 'b'}) == 1
    # Not in the segment: prometheus_client's multiprocess mode does not
    # aggregate them either.
    assert _shmetrics.render(segment.name) == b''


def test_created_in_private_registries_only(segment, monkeypatch):
    monkeypatch.setattr(time, 'time', lambda: 100.5)
    r = CollectorRegistry()
    Counter('k', 'h', registry=r)
    shmetrics.Histogram('kh', 'h', registry=r)
    Counter('kf', 'h')
    assert r.get_sample_value('k_created') == 100.5
    assert r.get_sample_value('kh_created') == 100.5
    assert value('kf_created') is None      # multiprocess mode: never
    monkeypatch.setattr(metrics, '_use_created', False)
    assert r.get_sample_value('k_created') is None


MODES = ['all', 'liveall', 'sum', 'livesum', 'max', 'min', 'livemax',
         'livemin', 'mostrecent', 'livemostrecent']


@pytest.mark.parametrize('mode', MODES)
def test_unset_gauges_read_zero(segment, mode):
    Gauge('u_' + mode, 'h', ['l'], multiprocess_mode=mode).labels('x')
    Gauge('v_' + mode, 'h', multiprocess_mode=mode)
    pid = {'pid': str(os.getpid())} if mode in ('all', 'liveall') else {}
    assert value('u_' + mode, dict({'l': 'x'}, **pid)) == 0
    assert value('v_' + mode, pid) == 0
    r = CollectorRegistry()
    Gauge('w', 'h', ['l'], multiprocess_mode=mode, registry=r).labels('x')
    assert r.get_sample_value('w', {'l': 'x'}) == 0


def test_zero_of_a_later_process_loses_mostrecent(segment):
    g = Gauge('mr', 'h', ['l'], multiprocess_mode='mostrecent')
    g.labels('x').set(7)
    # A process that only binds the series writes its 0 as the oldest.
    _fork(lambda: Gauge('mr', 'h', ['l'], multiprocess_mode='mostrecent',
                        registry=None, segment=segment.name).labels('x'))
    assert value('mr', {'l': 'x'}) == 7


def test_set_function(segment):
    g = Gauge('sf', 'h', multiprocess_mode='max')
    items = []
    g.set_function(lambda: len(items))
    assert value('sf') == 0
    items.append(1)
    assert value('sf') == 1
    # Written at collection: the exporter shows the last one.
    assert b'\nsf 1\n' in _shmetrics.render(segment.name)


def test_live_extremes_leave_dead_processes_out(segment):
    hi = Gauge('lmax', 'h', multiprocess_mode='livemax')
    lo = Gauge('lmin', 'h', multiprocess_mode='livemin')

    def dead():
        hi.set(100)
        lo.set(-100)
    _fork(dead)
    ready_r, ready_w = os.pipe()       # child -> parent: values set
    done_r, done_w = os.pipe()         # parent -> child: read, exit
    pid = os.fork()
    if pid == 0:
        hi.set(3)
        lo.set(3)
        os.write(ready_w, b'.')
        os.read(done_r, 1)              # alive until the parent has read
        os._exit(0)
    os.read(ready_r, 1)
    hi.set(5)
    lo.set(5)
    try:
        assert value('lmax') == 5
        assert value('lmin') == 3
    finally:
        os.write(done_w, b'.')
        os.waitpid(pid, 0)
        for fd in (ready_r, ready_w, done_r, done_w):
            os.close(fd)
