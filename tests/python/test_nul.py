"""A NUL inside a string refused wherever a Python string enters the C
writer: the writer takes NUL-terminated strings, so 'a\\0b' would be
stored as 'a' (one series with 'a\\0c'), and '/seg\\0x' would open
'/seg'.  Each entry point raises ValueError naming what was refused; the
same calls without the NUL work and store exactly what they were given."""

import os

import pytest

import shmetrics
from shmetrics import _shmetrics
from conftest import value

NUL_SEGMENT = '/wt-pyweb-nul-%d\0x' % os.getpid()


def nul(what):
    """pytest.raises for '<what> contains a NUL character'."""
    return pytest.raises(ValueError, match='^%s contains a NUL character: '
                         % what)


@pytest.mark.parametrize('cls', [shmetrics.Counter, shmetrics.Gauge,
                                 shmetrics.Histogram])
def test_label_values(segment, cls):
    m = cls('nul_values', 'h', ['path', 'code'])
    with nul("label 'path' value"):
        m.labels('a\0b', '200')
    with nul("label 'code' value"):
        m.labels(path='a', code='2\0c')

    class Str:
        def __str__(self):
            return 'a\0c'
    with nul("label 'path' value"):
        m.labels(Str(), '200')
    # nothing was stored for them: 'a' and 'b' are two series of their own
    for v in ('a', 'b'):
        child = m.labels(v, '200')
        if cls is shmetrics.Histogram:
            child.observe(1)
        else:
            child.inc(2 if v == 'b' else 1)
    name = {shmetrics.Counter: 'nul_values_total',
            shmetrics.Gauge: 'nul_values',
            shmetrics.Histogram: 'nul_values_count'}[cls]
    pid = {'pid': str(os.getpid())} if cls is shmetrics.Gauge else {}
    assert value(name, {'path': 'a', 'code': '200', **pid}) == 1
    assert value(name, {'path': 'b', 'code': '200', **pid}) == \
        (1 if cls is shmetrics.Histogram else 2)
    text = shmetrics.generate_latest().decode()
    assert text.count('nul_values') > 0 and 'path="a\\' not in text


def test_names_help_and_unit(segment):
    with nul('metric name'):
        shmetrics.Counter('nul\0name', 'h')
    with nul('namespace'):
        shmetrics.Counter('n', 'h', namespace='a\0b')
    with nul('subsystem'):
        shmetrics.Gauge('n', 'h', subsystem='a\0b')
    with nul('unit'):
        shmetrics.Histogram('n', 'h', unit='sec\0onds')
    with nul('documentation'):
        shmetrics.Counter('n', 'help\0text')
    with nul('label name'):
        shmetrics.Counter('n', 'h', ['a\0b'])
    with nul('label name'):
        shmetrics.Counter('n', 'h', iter(['ok', 'a\0b']))
    # the refused ones registered nothing: the name is free
    shmetrics.Counter('n', 'h', ['a'], unit='bytes').labels('x').inc()
    assert value('n_bytes_total', {'a': 'x'}) == 1


def test_family_directly(segment):
    """The C Family the classes use, called as-is."""
    t = _shmetrics.TYPE_COUNTER
    with nul('metric name'):
        _shmetrics.Family(segment, t, 'a\0b_total', 'h', ())
    with nul('help'):
        _shmetrics.Family(segment, t, 'a_total', 'h\0i', ())
    with nul('label name'):
        _shmetrics.Family(segment, t, 'a_total', 'h', ['l', 'x\0y'])
    with pytest.raises(TypeError, match='metric name must be str'):
        _shmetrics.Family(segment, t, b'a_total', 'h', ())
    f = _shmetrics.Family(segment, t, 'a_total', 'h', ['l'])
    c = shmetrics.Counter('unused', 'h', registry=None)
    with nul("label 'l' value"):
        c._bind(f, ('x\0y',))


def test_segment_names(segment):
    with nul('segment name'):
        shmetrics.Segment(NUL_SEGMENT)
    with nul('segment name'):
        shmetrics.use_segment(NUL_SEGMENT)
    with nul('segment name'):
        shmetrics.Counter('seg_c', 'h', segment=NUL_SEGMENT,
                          registry=None)
    with nul('segment name'):
        shmetrics.unlink(NUL_SEGMENT)
    with nul('segment name'):
        _shmetrics.render(NUL_SEGMENT, 'text')
    with nul('format'):
        _shmetrics.render(segment.name, 'text\0x')
    # the name before the NUL was never created
    with pytest.raises(FileNotFoundError):
        shmetrics.Segment(NUL_SEGMENT.split('\0')[0], create=False)
    # and the default segment is still the fixture's
    assert shmetrics.segment_name() == segment.name


def test_campaign_collector(segment):
    c = shmetrics.CampaignMetricsCollector()
    calls = [
        ("campaign_id", lambda v: c.record_call_initiated(v, 'u')),
        ("user_id", lambda v: c.record_call_initiated('c', v)),
        ("campaign_id", lambda v: c.time_processing(v)),
        ("outcome", lambda v: c.record_call_completed('c', 'u', v, 1.0)),
        ("error_type", lambda v: c.record_call_failed('c', 'u', v)),
        ("user_id", lambda v: c.update_active_campaigns(v, 1)),
        ("campaign_id", lambda v: c.update_pending_leads(v, 1)),
        ("campaign_id", lambda v: c.update_success_rate(v, 0.5)),
    ]
    for label, call in calls:
        with nul("label '%s' value" % label):
            call('a\0b')
    c.record_call_initiated('a', 'u')
    c.record_call_initiated('b', 'u')
    c.record_call_initiated('b', 'u')
    name = 'campaign_calls_initiated_total'
    assert value(name, {'campaign_id': 'a', 'user_id': 'u'}) == 1
    assert value(name, {'campaign_id': 'b', 'user_id': 'u'}) == 2


def test_webhook_collector(segment):
    with nul("label 'worker_id' value"):
        shmetrics.WebhookMetricsCollector('w\0x')
    w = shmetrics.WebhookMetricsCollector('w1')
    calls = [
        ("event_type", lambda v: w.record_queued(v, 'p')),
        ("partner_id", lambda v: w.record_queued('e', v)),
        ("partner_id", lambda v: w.record_dead_letter('e', v)),
        ("partner_id", lambda v: w.time_delivery(v)),
        ("partner_id", lambda v: w.record_retry(v, 1)),
    ]
    for label, call in calls:
        with nul("label '%s' value" % label):
            call('a\0b')
    with w.time_delivery('p') as t:
        with nul("label 'event_type' value"):
            t.set_success('a\0b')
        with nul("label 'event_type' value"):
            t.set_failed('a\0b', 500)
        t.set_success('ok')
    w.record_queued('e', 'a')
    w.record_queued('e', 'b')
    text = shmetrics.generate_latest().decode()
    assert 'partner_id="a"' in text and 'partner_id="b"' in text
    assert '\0' not in text


def test_keyword_names_in_full(segment):
    """inc(**{'amount\\0x': 2}) is not inc(amount=2)."""
    c = shmetrics.Counter('kw', 'h')
    with pytest.raises(TypeError, match='unexpected keyword argument'):
        c.inc(**{'amount\0x': 2})
    c.inc(amount=3)
    assert value('kw_total') == 3
