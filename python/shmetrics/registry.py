"""The process's default segment and a process-local registry of names.

prometheus_client keeps metrics in a CollectorRegistry; shmetrics keeps
them in a shared-memory segment that every process of the fleet writes and
the exporter (or the Flask blueprint) reads.  What stays per process is the
duplicate check prometheus_client does at registration, so that the same
mistake raises the same ValueError.
"""

import os
import threading

from . import _shmetrics

_lock = threading.Lock()
_segment = None
_by_name = {}           # segments attached by segment='name', under _lock


def _reinit_lock():
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reinit_lock)


def default_segment():
    """The segment metrics use when none is given: the one use_segment()
    chose, else $SHMETRICS_SEGMENT or "/shmetrics", attached on first use
    (created if missing)."""
    global _segment
    seg = _segment
    if seg is None:
        with _lock:
            if _segment is None:
                _segment = _shmetrics.Segment(None)
            seg = _segment
    return seg


def segment_for(segment):
    """What a metric's or collector's segment= names: None, the default
    segment; a name, that segment, attached once per process and then
    shared (every attach takes a writer slot); a Segment, itself."""
    if segment is None:
        return default_segment()
    if isinstance(segment, str):
        with _lock:
            seg = _by_name.get(segment)
            if seg is None:
                seg = _by_name[segment] = _shmetrics.Segment(segment)
        return seg
    return segment


def use_segment(name=None, thread_blocks=None):
    """Attach the segment `name` (None: $SHMETRICS_SEGMENT or
    "/shmetrics") and make it the default for metrics and collectors
    created from now on.  Returns it.  thread_blocks: accepted and
    ignored (threads count in per-CPU cells and take no writer slot)."""
    global _segment
    seg = _shmetrics.Segment(name, thread_blocks=thread_blocks)
    with _lock:
        _segment = seg
    return seg


def segment_name():
    """The name readers should open: the default segment's if attached,
    else $SHMETRICS_SEGMENT or "/shmetrics"."""
    seg = _segment
    if seg is not None:
        return seg.name
    return os.environ.get('SHMETRICS_SEGMENT') or '/shmetrics'


def _unescape(s):
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == '\\' and i + 1 < len(s):
            i += 1
            out.append({'n': '\n', '\\': '\\', '"': '"'}.get(s[i], s[i]))
        else:
            out.append(c)
        i += 1
    return ''.join(out)


def parse_text(text):
    """Samples of a text exposition: [(name, {label: value}, value)]."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith('#'):
            continue
        labels = {}
        brace = line.find('{')
        space = line.find(' ')
        if brace != -1 and brace < space:
            name = line[:brace]
            i = brace + 1
            while line[i] != '}':
                eq = line.index('=', i)
                key = line[i:eq].strip(' ,')
                j = eq + 2
                val = []
                while line[j] != '"':
                    if line[j] == '\\':
                        val.append(line[j:j + 2])
                        j += 2
                    else:
                        val.append(line[j])
                        j += 1
                labels[key] = _unescape(''.join(val))
                i = j + 1
                while line[i] == ',' or line[i] == ' ':
                    i += 1
            rest = line[i + 1:].split()
        else:
            name = line[:space]
            rest = line[space + 1:].split()
        samples.append((name, labels, float(rest[0])))
    return samples


class CollectorRegistry:
    """The registry of this process's metric names.  Custom registries
    are not supported: a metric's values live in the segment, which every
    process shares; construct metrics with the default registry (or
    registry=None to skip the duplicate check)."""

    def __init__(self, auto_describe=False, target_info=None, _default=False):
        if not _default:
            raise NotImplementedError(
                'shmetrics has one registry per process (REGISTRY): '
                'custom registries are not supported')
        self._names = {}
        self._lock = threading.Lock()

    def register(self, metric):
        names = metric._sample_names()
        with self._lock:
            dups = set(self._names) & set(names)
            if dups:
                raise ValueError(
                    'Duplicated timeseries in CollectorRegistry: {}'.format(
                        dups))
            for n in names:
                self._names[n] = metric

    def unregister(self, metric):
        with self._lock:
            for n in metric._sample_names():
                if self._names.get(n) is metric:
                    del self._names[n]

    def get_sample_value(self, name, labels=None, segment=None):
        """The value of one sample in the segment (all processes summed),
        or None, as prometheus_client's get_sample_value."""
        labels = labels or {}
        text = _shmetrics.render(segment or segment_name(), 'text')
        for n, l, v in parse_text(text.decode()):
            if n == name and l == labels:
                return v
        return None

    def collect(self):
        raise NotImplementedError(
            'shmetrics renders in C: use generate_latest(), the Flask '
            'blueprint shmetrics.routes.metrics_bp or shmetrics-exporter')


REGISTRY = CollectorRegistry(_default=True)
