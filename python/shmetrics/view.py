"""Families read from a segment (_shmetrics.collect) as prometheus_client's
Metric objects.

Two readings, as prometheus_client has two modes:
- fleet: its multiprocess mode's (MultiProcessCollector): values summed
  over processes, gauges of modes all and liveall one sample per process
  with a pid label, no _created samples;
- private: its single-process mode's, for a private registry's segment:
  one value per series, _created from when this process made the child.

A histogram whose only finite bound is the largest double is a Summary
(metrics.py stores one so: count and sum, as the multiprocess mode keeps
them; the segment has no summary type, and Python refuses histograms with
fewer than two buckets, so no Python Histogram looks like one).
"""

import sys
import weakref

from . import _shmetrics
from ._pc import Exemplar, Metric, floatToGoString

INF = float('inf')
SUMMARY_BOUND = sys.float_info.max

# Gauges of this process that the segment cannot describe alone: modes
# livemin/livemax (stored as liveall, reduced here) by family name, and
# set_function() gauges, whose function runs before each read.
mode_overrides = {}
function_gauges = weakref.WeakSet()


def refresh_functions():
    """Write each set_function() gauge's current value to its segment."""
    for g in list(function_gauges):
        g._refresh()


def is_summary(bounds):
    return len(bounds) == 1 and bounds[0] == SUMMARY_BOUND


def _entries(labelnames, bounds, series):
    """(label values, value, label names, bounds, exemplars) of each
    series entry: an entry of another version of the name, or a histogram
    merged over its versions' common bounds, carries its own names and
    bounds, and one with exemplars ({bucket: (labels, value, timestamp)},
    layout 6) those too (collect.c)."""
    for e in series:
        if len(e) == 2:
            yield e[0], e[1], labelnames, bounds, None
        elif len(e) == 4:
            yield e + (None,)
        else:
            yield e


def _exemplar(exemplars, bucket):
    """prometheus_client's Exemplar of a bucket (0: a counter's), or None:
    its OpenMetrics encoder shows it, its text encoder never does."""
    e = exemplars.get(bucket) if exemplars else None
    return Exemplar(*e) if e else None


def _counter(m, base, labelnames, series, created):
    for lv, v, names, _, ex in _entries(labelnames, (), series):
        labels = dict(zip(names, lv))
        m.add_sample(base + '_total', labels, v, None, _exemplar(ex, 0))
        if lv in created:
            m.add_sample(base + '_created', dict(labels), created[lv])


def _gauge(m, name, labelnames, series, private, override):
    for lv, v, names, _, _ in _entries(labelnames, (), series):
        labels = dict(zip(names, lv))
        if v is None:           # no writer holds it (any more)
            continue
        if not isinstance(v, list):
            m.add_sample(name, labels, v)
        elif not v:
            continue
        elif override in ('livemin', 'livemax'):
            pick = min if override == 'livemin' else max
            m.add_sample(name, labels, pick(x for _, x in v))
        elif private and len(v) == 1:
            m.add_sample(name, labels, v[0][1])
        else:
            for pid, x in v:
                m.add_sample(name, dict(labels, pid=str(pid)), x)


def _histogram(m, name, labelnames, bounds, series, created, summary):
    for lv, (buckets, total), names, bnds, ex in _entries(labelnames, bounds,
                                                          series):
        labels = dict(zip(names, lv))
        if summary:
            m.add_sample(name + '_count', labels, float(sum(buckets)))
        else:
            acc = 0
            for i, (b, c) in enumerate(zip(bnds + (INF,), buckets)):
                acc += c
                m.add_sample(name + '_bucket',
                             dict(labels, le=floatToGoString(b)), float(acc),
                             None, _exemplar(ex, i))
            m.add_sample(name + '_count', dict(labels), float(acc))
        m.add_sample(name + '_sum', dict(labels), total)
        if lv in created:
            m.add_sample(name + '_created', dict(labels), created[lv])


def metric(fam, private=False, created=None, name=None, doc=None, unit=''):
    """One family tuple as a Metric.  name, doc, unit: the Python
    metric's, when it is known (else the segment's)."""
    fname, help_, typ, _mode, labelnames, bounds, series = fam
    created = created or {}
    if doc is None:
        doc = help_
    if typ == _shmetrics.TYPE_COUNTER:
        base = name or (fname[:-6] if fname.endswith('_total') else fname)
        m = Metric(base, doc, 'counter', unit)
        _counter(m, base, labelnames, series, created)
    elif typ == _shmetrics.TYPE_GAUGE:
        m = Metric(fname, doc, 'gauge', unit)
        _gauge(m, fname, labelnames, series, private,
               mode_overrides.get(fname))
    else:
        summary = is_summary(bounds)
        m = Metric(fname, doc, 'summary' if summary else 'histogram', unit)
        _histogram(m, fname, labelnames, bounds, series, created, summary)
    return m


def fleet(source):
    """Every family of the segment source (a name) as Metric objects, as
    prometheus_client's MultiProcessCollector shows its files.  No
    segment: nothing."""
    try:
        fams = _shmetrics.collect(source)
    except FileNotFoundError:
        return
    for fam in fams:
        yield metric(fam)


def in_fleet_segment(collector):
    """collector is a shmetrics metric whose values are in the default
    segment, which the default registry reads whole."""
    from .registry import segment_name
    store = getattr(collector, '_store', None)
    return store is not None and not store.private and \
        store.segment.name == segment_name()
