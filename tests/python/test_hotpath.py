"""What the hot and request paths promise (issue 23): a read after a
write sees it, decorators keep signatures, exemplars are checked as
prometheus_client checks them and stored, long label values never raise."""

import asyncio
import inspect

import pytest

from shmetrics import CollectorRegistry, Counter, Gauge, Histogram, Summary
from shmetrics import _shmetrics

from conftest import value


def test_read_after_write(segment):
    c = Counter('raw', 'h', ['l'])
    g = Gauge('rawg', 'h', multiprocess_mode='max')
    r = CollectorRegistry()
    p = Counter('rawp', 'h', registry=r)
    counts = {}
    for i in range(1, 201):
        l = str(i % 3)                  # a new series now and then
        c.labels(l).inc()
        counts[l] = counts.get(l, 0) + 1
        g.set(i)
        p.inc()
        assert value('raw_total', {'l': l}) == counts[l]
        assert value('rawg') == i
        assert r.get_sample_value('rawp_total') == i


def test_read_after_write_across_new_pages(segment):
    # 600 counter series take cells on several pages of every block: a
    # read right after the write that reserved a page sees it.
    c = Counter('pages', 'h', ['i'])
    for i in range(600):
        c.labels(str(i)).inc(i + 1)
        assert value('pages_total', {'i': str(i)}) == i + 1


def _f(a, b=2, *args, c, d=4, **kw):
    return a + b + c + d


async def _af(a, b=1):
    await asyncio.sleep(0)
    return a + b


def test_decorators_keep_the_signature(segment):
    decorators = [Counter('de', 'h').count_exceptions(),
                  Gauge('dg', 'h').track_inprogress(),
                  Gauge('dt', 'h').time(),
                  Histogram('dh', 'h').time(),
                  Summary('ds', 'h').time()]
    for dec in decorators:
        f = dec(_f)
        assert inspect.getfullargspec(f) == inspect.getfullargspec(_f)
        assert f.__name__ == '_f' and f.__wrapped__ is _f
        assert f(1, c=3) == 10
        af = dec(_af)
        assert inspect.iscoroutinefunction(af)
        assert inspect.getfullargspec(af) == inspect.getfullargspec(_af)
        assert asyncio.run(af(1)) == 2
    assert value('ds_count') == 2 and value('dh_count') == 2


def _om_exemplars(segment):
    """{(sample name, le): (labels, value)} of the segment's OpenMetrics
    page, which prometheus_client's parser must accept."""
    from prometheus_client.openmetrics.parser import \
        text_string_to_metric_families as parse
    page = _shmetrics.render(segment.name if hasattr(segment, 'name')
                             else None, 'openmetrics').decode()
    out = {}
    for fam in parse(page):
        for s in fam.samples:
            if s.exemplar:
                out[(s.name, s.labels.get('le'))] = (s.exemplar.labels,
                                                     s.exemplar.value)
    return out


def test_exemplars_are_stored_and_shown(segment):
    c = Counter('ex', 'h')
    h = Histogram('exh', 'h', buckets=(0.5, 1, 5))
    c.inc(exemplar={'trace_id': 'abc'})
    c.inc(2, exemplar={'trace_id': 'def', 'span': '\u00e9t\u00e9'})
    h.observe(0.7, exemplar={'trace_id': 'slow'})
    h.observe(0.2, exemplar={})             # an empty one is none
    h.observe(0.3)
    assert value('ex_total') == 3 and value('exh_count') == 3
    ex = _om_exemplars(segment)
    assert ex == {
        ('ex_total', None): ({'trace_id': 'def', 'span': '\u00e9t\u00e9'},
                             2.0),
        ('exh_bucket', '1.0'): ({'trace_id': 'slow'}, 0.7)}
    # 128 characters of names and values (not bytes) are allowed
    c.inc(exemplar={'t': '\u00e9' * 127})
    assert _om_exemplars(segment)[('ex_total', None)] == (
        {'t': '\u00e9' * 127}, 1.0)
    # the text page never shows them
    assert b'# {' not in _shmetrics.render(None, 'text')


def test_exemplars_are_checked_as_prometheus_client(segment):
    c = Counter('exc', 'h')
    h = Histogram('exch', 'h')
    # prometheus_client counts first, then raises: so do we
    with pytest.raises(ValueError, match='Invalid label metric name: :o\\)'):
        c.inc(exemplar={':o)': 'x'})
    with pytest.raises(ValueError, match='Reserved label metric name: __x'):
        c.inc(exemplar={'__x': 'x'})
    with pytest.raises(ValueError, match='Exemplar labels have 129 UTF-8 '
                       'characters, exceeding the limit of 128'):
        h.observe(1, exemplar={'a': 'x' * 128})
    assert value('exc_total') == 2 and value('exch_count') == 1
    assert _om_exemplars(segment) == {}
    with pytest.raises(ValueError, match='non-negative'):
        c.inc(-1, exemplar={'trace_id': 'x'})
    assert value('exc_total') == 2


def test_exemplars_of_two_processes(segment):
    """A fork child's exemplar and the parent's, one per bucket."""
    import os
    h = Histogram('exp', 'h', buckets=(1, 10))
    pid = os.fork()
    if pid == 0:
        try:
            h.observe(5, exemplar={'trace_id': 'child'})
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    h.observe(0.5, exemplar={'trace_id': 'parent'})
    ex = _om_exemplars(segment)
    assert ex[('exp_bucket', '1.0')] == ({'trace_id': 'parent'}, 0.5)
    assert ex[('exp_bucket', '10.0')] == ({'trace_id': 'child'}, 5.0)


def test_long_label_values_are_cut_and_counted(segment):
    c = Counter('lv', 'h', ['v'])
    before = _shmetrics.truncated_label_values()
    c.labels('\u00e9' * 600).inc()              # 1,200 bytes of UTF-8
    assert _shmetrics.truncated_label_values() == before + 1
    # Cut at a character's start, within the segment's 1,024 bytes.
    assert value('lv_total', {'v': '\u00e9' * 512}) == 1


def test_limits_raise_where_the_metric_is_made(segment):
    with pytest.raises(ValueError, match='at most 16 label names'):
        Counter('many', 'h', ['l%d' % i for i in range(17)])
    with pytest.raises(ValueError, match='at most 128 buckets'):
        Histogram('hb', 'h', buckets=range(1, 130))


def test_collectors_take_trace_ids(segment):
    """The specification's collectors: an optional trace id on call
    setup, call duration and webhook delivery, shown as exemplars."""
    import shmetrics
    camp = shmetrics.CampaignMetricsCollector()
    hook = shmetrics.WebhookMetricsCollector('w1')
    camp.record_call_initiated('c1', 'u1', trace_id='tr-init')
    camp.record_call_initiated('c1', 'u2')
    with camp.time_processing('c1') as t:
        t.set_trace('tr-setup')
    camp.record_call_completed('c1', 'u1', 'success', 65, 0.1,
                               trace_id='tr-call')
    with hook.time_delivery('p1') as d:
        d.set_trace('tr-hook')
        d.set_success('call_ended')
    ex = {k[0]: v[0]['trace_id'] for k, v in _om_exemplars(segment).items()}
    assert ex == {
        'campaign_calls_initiated_total': 'tr-init',
        'campaign_processing_latency_seconds_bucket': 'tr-setup',
        'campaign_calls_completed_total': 'tr-call',
        'campaign_call_duration_seconds_bucket': 'tr-call',
        'webhook_delivered_total': 'tr-hook',
        'webhook_delivery_latency_seconds_bucket': 'tr-hook'}


def test_exemplars_on_pythons_own_pages(segment):
    """generate_latest in OpenMetrics (prometheus_client's encoder over
    the registry's collect()) shows them, as prometheus_client does; the
    text encoder never does."""
    from prometheus_client.openmetrics.parser import \
        text_string_to_metric_families as parse
    import shmetrics
    from shmetrics import REGISTRY
    from shmetrics.exposition import choose_encoder
    c = Counter('pex', 'h', ['k'])
    h = Histogram('pexh', 'h', buckets=(1, 2))
    c.labels('a').inc(exemplar={'trace_id': 'ta'})
    c.labels('b').inc()
    h.observe(1.5, exemplar={'trace_id': 'th'})
    encode, _ = choose_encoder('application/openmetrics-text')
    om = encode(REGISTRY).decode()
    got = {(s.name, tuple(sorted(s.labels.items()))):
           (s.exemplar.labels, s.exemplar.value) if s.exemplar else None
           for f in parse(om) for s in f.samples
           if s.name in ('pex_total', 'pexh_bucket')}
    assert got == {
        ('pex_total', (('k', 'a'),)): ({'trace_id': 'ta'}, 1.0),
        ('pex_total', (('k', 'b'),)): None,
        ('pexh_bucket', (('le', '1.0'),)): None,
        ('pexh_bucket', (('le', '2.0'),)): ({'trace_id': 'th'}, 1.5),
        ('pexh_bucket', (('le', '+Inf'),)): None}
    assert b'# {' not in shmetrics.generate_latest(REGISTRY)
