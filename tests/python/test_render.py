"""render() (the Flask blueprint's scrape) keeps the segment's mapping and
index between calls: what it serves must still follow the segment as it
grows, is destroyed, replaced or cut short."""

import os

import pytest

import shmetrics
from shmetrics import _shmetrics
from shmetrics.registry import parse_text

from conftest import value


def samples(name):
    text = _shmetrics.render(name, 'text').decode()
    return {(n, tuple(sorted(l.items()))): v for n, l, v in parse_text(text)}


def test_new_family_and_series_appear(segment):
    c = shmetrics.Counter('render_a', 'h', ['k'])
    c.labels('x').inc()
    assert samples(segment.name)[('render_a_total', (('k', 'x'),))] == 1
    # a new series and a new family move the generation: both are served
    c.labels('y').inc(2)
    g = shmetrics.Gauge('render_b', 'h', multiprocess_mode='sum')
    g.set(5)
    s = samples(segment.name)
    assert s[('render_a_total', (('k', 'y'),))] == 2
    assert s[('render_b', ())] == 5
    # values move without a new generation
    c.labels('x').inc(10)
    assert samples(segment.name)[('render_a_total', (('k', 'x'),))] == 11


def test_replaced_segment_is_reopened(segment):
    name = segment.name
    shmetrics.Counter('render_old', 'h').inc()
    assert ('render_old_total', ()) in samples(name)
    # a new object under the same name, with other families, and no
    # render in between to notice the name was gone
    shmetrics.unlink(name)
    new = shmetrics.Segment(name)
    shmetrics.Counter('render_new', 'h', segment=new, registry=None).inc(3)
    s = samples(name)
    assert ('render_old_total', ()) not in s
    assert s[('render_new_total', ())] == 3
    shmetrics.unlink(name)
    with pytest.raises(OSError):
        _shmetrics.render(name, 'text')


def test_cut_short_is_an_error_not_a_crash(segment):
    name = segment.name
    shmetrics.Counter('render_cut', 'h').inc()
    samples(name)
    path = '/dev/shm' + name
    size = os.path.getsize(path)
    os.truncate(path, size // 2)
    try:
        with pytest.raises(OSError):
            _shmetrics.render(name, 'text')
    finally:
        os.truncate(path, size)


def test_segment_by_name():
    """segment= takes a name: attached once per process and shared."""
    name = '/shmetrics-py-byname-%d' % os.getpid()
    try:
        a = shmetrics.Counter('byname_a', 'h', segment=name, registry=None)
        b = shmetrics.Counter('byname_b', 'h', segment=name, registry=None)
        a.inc()
        b.inc(2)
        assert a._segment is b._segment
        assert value('byname_a_total', segment=name) == 1
        assert value('byname_b_total', segment=name) == 2
    finally:
        shmetrics.unlink(name)
