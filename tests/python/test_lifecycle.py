"""Series that leave (remove, clear) and metrics whose shape changes
between releases, as prometheus_client users expect them."""

import os
import subprocess
import sys
import textwrap

import prometheus_client
import pytest

import shmetrics
from conftest import value


def _samples(m):
    return sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                  for f in m.collect() for s in f.samples
                  if not s.name.endswith('_created'))


def test_remove_and_clear_as_prometheus_client(segment):
    ref = prometheus_client.Counter('rc', 'h', ['a', 'b'],
                                    registry=prometheus_client.CollectorRegistry())
    ours = shmetrics.Counter('rc', 'h', ['a', 'b'])
    for m in (ref, ours):
        m.labels('x', 'y').inc(3)
        m.labels(a='u', b='v').inc(4)
        m.remove('x', 'y')
    assert value('rc_total', {'a': 'x', 'b': 'y'}) is None
    assert value('rc_total', {'a': 'u', 'b': 'v'}) == 4
    for m in (ref, ours):
        # back from zero
        m.labels('x', 'y').inc()
    assert value('rc_total', {'a': 'x', 'b': 'y'}) == 1
    for m in (ref, ours):
        with pytest.raises(ValueError, match='Incorrect label count'):
            m.remove('x')
        with pytest.raises(KeyError):
            m.remove('never', 'seen')
        m.clear()
    assert value('rc_total', {'a': 'x', 'b': 'y'}) is None
    assert value('rc_total', {'a': 'u', 'b': 'v'}) is None
    for m in (ref, ours):
        with pytest.raises(ValueError, match='No label names'):
            type(m)('nolabels_%d' % id(m), 'h').remove()


def test_gauge_and_histogram_remove(segment):
    g = shmetrics.Gauge('rg', 'h', ['k'], multiprocess_mode='livesum')
    h = shmetrics.Histogram('rh', 'h', ['k'], buckets=(1, 2))
    g.labels('a').set(5)
    h.labels('a').observe(1.5)
    g.remove('a')
    h.remove('a')
    assert value('rg', {'k': 'a'}) is None
    assert value('rh_count', {'k': 'a'}) is None
    h.labels('a').observe(0.5)
    assert value('rh_count', {'k': 'a'}) == 1
    assert value('rh_bucket', {'k': 'a', 'le': '1.0'}) == 1


def test_removal_by_another_process(segment):
    """A process that cached the child of a series another process
    removed counts in the series again, from zero, not in the removed
    one's cells (where nobody would see it)."""
    c = shmetrics.Counter('rp', 'h', ['k'])
    c.labels('x').inc(10)
    pid = os.fork()
    if pid == 0:
        try:
            shmetrics.Counter('rp', 'h', ['k'], registry=None,
                              segment=segment).remove('x')
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    assert value('rp_total', {'k': 'x'}) is None
    c.labels('x').inc(2)
    assert value('rp_total', {'k': 'x'}) == 2


RELEASE = textwrap.dedent('''
    import sys, shmetrics
    labels = sys.argv[1].split(',')
    c = shmetrics.Counter('app_requests', sys.argv[2], labels)
    c.labels(*['v%d' % i for i in range(len(labels))]).inc(int(sys.argv[3]))
    b = [float(x) for x in sys.argv[4].split(',')]
    h = shmetrics.Histogram('app_seconds', 'h', labels, buckets=b)
    h.labels(*['v%d' % i for i in range(len(labels))]).observe(0.3)
''')


def test_release_with_changed_labels_starts(segment):
    """Release 2 changed the labels and buckets: it starts without error,
    and the page keeps what release 1 counted."""
    env = dict(os.environ, SHMETRICS_SEGMENT=segment.name
               if hasattr(segment, 'name') else os.environ['SHMETRICS_SEGMENT'])
    for labels, help_, n, buckets in (('route', 'release 1', 7, '0.5,1'),
                                      ('route,status', 'release 2', 5,
                                       '0.1,0.2,5')):
        r = subprocess.run([sys.executable, '-c', RELEASE, labels, help_,
                            str(n), buckets], env=env, capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stderr
    assert value('app_requests_total', {'route': 'v0'}) == 7
    assert value('app_requests_total', {'route': 'v0', 'status': 'v1'}) == 5
    assert value('app_seconds_bucket', {'route': 'v0', 'le': '0.5'}) == 1
    assert value('app_seconds_bucket',
                 {'route': 'v0', 'status': 'v1', 'le': '0.2'}) == 0
    page = shmetrics.generate_latest().decode()
    assert page.count('# TYPE app_requests_total counter') == 1
    assert '# HELP app_requests_total release 2' in page
    from prometheus_client.parser import text_string_to_metric_families
    fams = {f.name: f for f in text_string_to_metric_families(page)}
    assert len(fams['app_requests'].samples) == 2


def test_series_ttl(segment):
    """Segment(series_ttl=...): a series no process wrote for that long
    leaves the page; the next labels() of its values starts it anew."""
    import time
    name = segment.name + '-ttl'
    seg = shmetrics.Segment(name, series_ttl=1)
    try:
        assert seg.series_ttl == 1
        c = shmetrics.Counter('ttl', 'h', ['k'], segment=seg, registry=None)
        c.labels('a').inc(5)
        c.labels('b').inc(1)
        assert seg.expire() == 0        # both seen written: idle from now
        time.sleep(1.1)
        c.labels('b').inc()
        assert seg.expire() == 1        # a, not b
        assert value('ttl_total', {'k': 'a'}, segment=name) is None
        assert value('ttl_total', {'k': 'b'}, segment=name) == 2
        c.labels('a').inc()
        assert value('ttl_total', {'k': 'a'}, segment=name) == 1
        assert shmetrics.Segment(name, create=False).series_ttl == 1
    finally:
        shmetrics.unlink(name)
    with pytest.raises(ValueError, match='series_ttl'):
        shmetrics.Segment(name, series_ttl=-1)
