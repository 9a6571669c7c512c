"""What the hot and request paths promise (issue 23): a read after a
write sees it, decorators keep signatures, exemplars are accepted, long
label values never raise."""

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


def test_exemplars_are_checked_and_accepted(segment):
    c = Counter('ex', 'h')
    h = Histogram('exh', 'h')
    c.inc(exemplar={'trace_id': 'abc'})
    h.observe(1, exemplar={'trace_id': 'abc'})
    assert value('ex_total') == 1 and value('exh_count') == 1
    with pytest.raises(ValueError):
        c.inc(exemplar={':o)': 'x'})
    with pytest.raises(ValueError):
        h.observe(1, exemplar={'a': 'x' * 128})


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
