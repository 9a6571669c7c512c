"""prometheus_client parity: the documented instrumentation API gives the
same values and raises the same exceptions for the same mistakes.  Cases
marked with both clients run against prometheus_client (its own registry)
and shmetrics, and compare."""

import asyncio
import inspect
import time

import prometheus_client
import pytest

import shmetrics
from conftest import value


def test_counter_inc_and_total_naming(segment):
    c = shmetrics.Counter('my_failures', 'Description of counter')
    c.inc()
    c.inc(1.6)
    assert value('my_failures_total') == 2.6
    # prometheus_client strips _total from the name and adds it back.
    d = shmetrics.Counter('jobs_total', 'Jobs')
    d.inc(3)
    assert value('jobs_total') == 3
    assert d._name == 'jobs'


def test_counter_large_and_float_amounts(segment):
    c = shmetrics.Counter('big', 'Big')
    c.inc(2 ** 40)
    c.inc(0.25)
    c.inc(amount=2)
    assert value('big_total') == 2 ** 40 + 2.25


def test_counter_count_exceptions(segment):
    c = shmetrics.Counter('exc', 'Exceptions')

    @c.count_exceptions()
    def f(fail):
        if fail:
            raise ValueError()

    f(False)
    with pytest.raises(ValueError):
        f(True)
    with c.count_exceptions(KeyError):
        pass
    with pytest.raises(TypeError):
        with c.count_exceptions(KeyError):
            raise TypeError()
    assert value('exc_total') == 1


def test_gauge_operations(segment):
    g = shmetrics.Gauge('in_progress', 'Gauge', multiprocess_mode='livesum')
    g.inc()
    g.inc(10)
    g.dec()
    g.dec(10)
    g.set(4.2)
    assert value('in_progress') == 4.2
    before = time.time()
    g.set_to_current_time()
    assert before <= value('in_progress') <= time.time() + 1


def test_gauge_default_mode_is_all_with_pid(segment):
    import os
    g = shmetrics.Gauge('g_all', 'Per process')
    g.set(7)
    assert value('g_all', {'pid': str(os.getpid())}) == 7


def test_gauge_track_inprogress_and_time(segment):
    g = shmetrics.Gauge('inprog', 'Gauge', multiprocess_mode='livesum')

    @g.track_inprogress()
    def f():
        assert value('inprog') == 1

    f()
    with g.track_inprogress():
        assert value('inprog') == 1
    assert value('inprog') == 0
    t = shmetrics.Gauge('last_duration', 'Gauge', multiprocess_mode='max')
    with t.time():
        time.sleep(0.01)
    assert 0.005 < value('last_duration') < 5


def test_histogram_buckets_and_time(segment):
    h = shmetrics.Histogram('req_seconds', 'Latency', buckets=[1, 2, 5])
    for v in (0.5, 1, 1.5, 7):
        h.observe(v)
    assert value('req_seconds_bucket', {'le': '1.0'}) == 2
    assert value('req_seconds_bucket', {'le': '2.0'}) == 3
    assert value('req_seconds_bucket', {'le': '+Inf'}) == 4
    assert value('req_seconds_count') == 4
    assert value('req_seconds_sum') == 10

    @h.time()
    def slow():
        time.sleep(0.01)
        return 42

    assert slow() == 42
    assert slow.__name__ == 'slow'
    with h.time():
        pass
    assert value('req_seconds_count') == 6


def test_decorators_on_coroutines(segment):
    """time(), track_inprogress() and count_exceptions() on an async def
    measure the awaited coroutine, not its creation, and keep it one."""
    h = shmetrics.Histogram('async_seconds', 'L', buckets=[0.005, 10])
    g = shmetrics.Gauge('async_inprog', 'G', multiprocess_mode='livesum')
    c = shmetrics.Counter('async_errors', 'E')
    seen = []

    @h.time()
    @g.track_inprogress()
    @c.count_exceptions(ValueError)
    async def work(fail):
        seen.append(value('async_inprog'))
        await asyncio.sleep(0.02)
        if fail:
            raise ValueError('no')
        return 7

    assert inspect.iscoroutinefunction(work)
    assert work.__name__ == 'work'
    assert asyncio.run(work(False)) == 7
    with pytest.raises(ValueError):
        asyncio.run(work(True))
    assert seen == [1, 1]
    assert value('async_inprog') == 0
    assert value('async_errors_total') == 1
    assert value('async_seconds_count') == 2
    # both awaited 20 ms: none in the 5 ms bucket (creation alone would be)
    assert value('async_seconds_bucket', {'le': '0.005'}) == 0
    assert value('async_seconds_sum') >= 0.04


def test_histogram_default_buckets(segment):
    h = shmetrics.Histogram('dflt', 'Default buckets')
    h.observe(0.3)
    assert value('dflt_bucket', {'le': '0.5'}) == 1
    assert value('dflt_bucket', {'le': '0.25'}) == 0
    assert value('dflt_bucket', {'le': '10.0'}) == 1


def test_labels_positional_keyword_and_str(segment):
    c = shmetrics.Counter('lab', 'Labels', ['method', 'code'])
    c.labels('get', 200).inc()
    c.labels(method='get', code='200').inc()
    c.labels(code=200, method='get').inc()
    assert c.labels('get', '200') is c.labels(method='get', code=200)
    assert value('lab_total', {'method': 'get', 'code': '200'}) == 3


def test_namespace_subsystem_unit(segment):
    h = shmetrics.Histogram('latency', 'L', namespace='app',
                            subsystem='http', unit='seconds')
    h.observe(1)
    assert value('app_http_latency_seconds_count') == 1


def test_timer_labels(segment):
    h = shmetrics.Histogram('tl', 'L', ['k'])
    with h.time() as t:
        t.labels('v')
    assert value('tl_count', {'k': 'v'}) == 1


MISTAKES = {
    'wrong label count': lambda m: m.Counter(
        'c1', 'h', ['a', 'b'], registry=None).labels('x'),
    'wrong label names': lambda m: m.Counter(
        'c2', 'h', ['a'], registry=None).labels(b='x'),
    'args and kwargs': lambda m: m.Counter(
        'c3', 'h', ['a', 'b'], registry=None).labels('x', b='y'),
    'labels without labelnames': lambda m: m.Counter(
        'c4', 'h', registry=None).labels('x'),
    'chained labels': lambda m: m.Counter(
        'c5', 'h', ['a'], registry=None).labels('x').labels('y'),
    'parent inc': lambda m: m.Counter('c6', 'h', ['a'],
                                      registry=None).inc(),
    'parent observe': lambda m: m.Histogram('h7', 'h', ['a'],
                                            registry=None).observe(1),
    'parent set': lambda m: m.Gauge('g8', 'h', ['a'], registry=None).set(1),
    'negative counter': lambda m: m.Counter('c9', 'h',
                                            registry=None).inc(-1),
    'bad metric name': lambda m: m.Counter('9c', 'h', registry=None),
    'bad metric name dash': lambda m: m.Gauge('a-b', 'h', registry=None),
    'bad label name': lambda m: m.Counter('c10', 'h', ['1a'],
                                          registry=None),
    'reserved label name': lambda m: m.Counter('c11', 'h', ['__a'],
                                               registry=None),
    'histogram le': lambda m: m.Histogram('h12', 'h', ['le'],
                                          registry=None),
    'unsorted buckets': lambda m: m.Histogram('h13', 'h', buckets=[2, 1],
                                              registry=None),
    'one bucket': lambda m: m.Histogram('h14', 'h', buckets=[float('inf')],
                                        registry=None),
    'bad gauge mode': lambda m: m.Gauge('g15', 'h', registry=None,
                                        multiprocess_mode='avg'),
    'counter amount type': lambda m: m.Counter('c16', 'h',
                                               registry=None).inc('x'),
    'observe type': lambda m: m.Histogram('h17', 'h',
                                          registry=None).observe(None),
}


def _raised(fn, module):
    try:
        fn(module)
    except Exception as e:
        return type(e), str(e)
    return None, None


@pytest.mark.parametrize('case', sorted(MISTAKES))
def test_same_exception_as_prometheus_client(segment, case):
    expected, message = _raised(MISTAKES[case], prometheus_client)
    got, got_message = _raised(MISTAKES[case], shmetrics)
    assert expected is not None
    assert got is expected, (case, got_message, message)
    if expected is ValueError:
        assert got_message == message


def test_duplicate_registration_is_value_error(segment):
    for m in (prometheus_client, shmetrics):
        reg = prometheus_client.CollectorRegistry() \
            if m is prometheus_client else shmetrics.REGISTRY
        m.Counter('dup', 'h', registry=reg)
        with pytest.raises(ValueError, match='Duplicated timeseries'):
            m.Gauge('dup_total', 'h', registry=reg)


def test_shapes_with_c_writer_family(segment):
    # The campaign collector is C (libshmetrics-collectors): its counter
    # family campaign_calls_initiated_total is in the segment.
    shmetrics.CampaignMetricsCollector()
    # Other label names: another release's shape of the name, which
    # counts in series of its own (docs/DESIGN.md, "Shapes across
    # releases"), where prometheus_client's multiprocess mode would keep
    # both in files of their own.
    other = shmetrics.Counter('campaign_calls_initiated', 'new release',
                              ['campaign_id'], registry=None,
                              segment=segment)
    other.labels('b').inc(2)
    assert value('campaign_calls_initiated_total', {'campaign_id': 'b'}) == 2
    # The same shape is the same family, shared with the C writer.
    c = shmetrics.Counter('campaign_calls_initiated', 'shared',
                          ['campaign_id', 'user_id'], registry=None,
                          segment=segment)
    c.labels('a', 'u').inc()
    assert value('campaign_calls_initiated_total',
                 {'campaign_id': 'a', 'user_id': 'u'}) == 1
    # Names that two families would both put on a page stay refused.
    with pytest.raises(ValueError):
        shmetrics.Gauge('campaign_calls_initiated', 'clash', registry=None,
                        segment=segment)




def test_generate_latest_parses_with_prometheus_client(segment):
    from prometheus_client.parser import text_string_to_metric_families
    c = shmetrics.Counter('gl', 'h', ['a'])
    c.labels('x"y\n').inc(5)
    fams = {f.name: f for f in text_string_to_metric_families(
        shmetrics.generate_latest().decode())}
    sample = fams['gl'].samples[0]
    assert sample.labels == {'a': 'x"y\n'} and sample.value == 5


def test_segment_selection(segment, monkeypatch):
    assert shmetrics.segment_name() == segment.name
    other = shmetrics.Segment(segment.name + '-x')
    try:
        c = shmetrics.Counter('sel', 'h', segment=other, registry=None)
        c.inc()
        assert value('sel_total', segment=other.name) == 1
        assert value('sel_total') is None
    finally:
        shmetrics.unlink(other.name)
    with pytest.raises(FileNotFoundError):
        shmetrics.Segment('/shmetrics-py-missing-x', create=False)


def test_labels_fast_path_keeps_str_semantics(segment):
    c = shmetrics.Counter('fast', 'h', ['a'])
    c.labels('1').inc()
    c.labels(1).inc()
    c.labels(['x']).inc()
    assert c.labels(1) is c.labels('1')
    assert value('fast_total', {'a': '1'}) == 2
    assert value('fast_total', {'a': "['x']"}) == 1
    with pytest.raises(ValueError, match='can not chain'):
        c.labels('1').labels('2')
