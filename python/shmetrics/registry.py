"""The process's default segment, and CollectorRegistry.

Two kinds of registry, both with prometheus_client's API (register,
unregister, collect, get_sample_value, restricted_registry, target_info):

- REGISTRY, the default: a view of the fleet's segment ($SHMETRICS_SEGMENT
  or "/shmetrics") as prometheus_client's multiprocess mode shows its
  files: every process summed, gauges by multiprocess_mode, no _created
  samples.  Metrics registered here write into that segment, which the
  exporter serves; collectors registered here (custom ones, Info, Enum)
  join what this process's Python pages show (generate_latest,
  make_wsgi_app, start_http_server).
- CollectorRegistry(): a private registry, as prometheus_client's single
  process one: its metrics write into a segment of its own, made on the
  first metric and unlinked at once (nothing in /dev/shm to leak; this
  process and its forked children write it through their mappings), and
  read back exactly, with _created samples.  MultiProcessCollector(r)
  adds the fleet's segment to it (the multiprocess recipe).

Metrics made with registry=None write into a private segment that no
registry shows, as in prometheus_client, until registered in one.
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
    return _shmetrics.segment_name()


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



class _EmptyCollector:
    """Holds the name target_info while target_info is set."""

    def collect(self):
        return []


_TYPE_SUFFIXES = {
    'counter': ['_total', '_created'],
    'summary': ['_sum', '_count', '_created'],
    'histogram': ['_bucket', '_sum', '_count', '_created'],
    'gaugehistogram': ['_bucket', '_gsum', '_gcount'],
    'info': ['_info'],
}


class CollectorRegistry:
    """A registry of collectors, as prometheus_client's (see the module's
    docstring for where its metrics' values live)."""

    def __init__(self, auto_describe=False, target_info=None,
                 _default=False):
        self._collector_to_names = {}
        self._names_to_collectors = {}
        self._auto_describe = auto_describe
        self._lock = threading.Lock()
        self._target_info = {}
        self._default = _default
        self._store = None              # private: made on first use
        self.set_target_info(target_info)

    # -- names ---------------------------------------------------------

    def register(self, collector):
        """Add a collector; ValueError if one of its names is taken."""
        with self._lock:
            names = self._get_names(collector)
            duplicates = set(self._names_to_collectors).intersection(names)
            if duplicates:
                raise ValueError(
                    'Duplicated timeseries in CollectorRegistry: {}'.format(
                        duplicates))
            for name in names:
                self._names_to_collectors[name] = collector
            self._collector_to_names[collector] = names

    def unregister(self, collector):
        """Remove a collector: its names are free again."""
        with self._lock:
            for name in self._collector_to_names[collector]:
                del self._names_to_collectors[name]
            del self._collector_to_names[collector]

    def _get_names(self, collector):
        desc_func = getattr(collector, 'describe', None)
        if not desc_func and self._auto_describe:
            desc_func = collector.collect
        if not desc_func:
            return []
        result = []
        for metric in desc_func():
            result.append(metric.name)
            for suffix in _TYPE_SUFFIXES.get(metric.type, []):
                result.append(metric.name + suffix)
        return result

    def _reset(self):
        """Forget every collector (tests: one segment per test)."""
        with self._lock:
            self._collector_to_names.clear()
            self._names_to_collectors.clear()
            self._target_info = {}

    # -- values --------------------------------------------------------

    def _private_store(self, fresh=False):
        """This registry's own segment (private registries only); fresh:
        a new one, for a family name the current one already holds (its
        metrics keep theirs, and collect() asks each metric)."""
        from .store import PrivateStore
        with self._lock:
            if self._store is None or fresh:
                self._store = PrivateStore()
            return self._store

    def collect(self):
        """Metric objects, as prometheus_client's collect()."""
        from . import view
        with self._lock:
            collectors = list(self._collector_to_names)
            ti = self._target_info_metric() if self._target_info else None
        view.refresh_functions()
        if ti:
            yield ti
        if self._default:
            # The fleet's segment, then what it does not hold.
            yield from view.fleet(segment_name())
            collectors = [c for c in collectors
                          if not view.in_fleet_segment(c)]
        # Each segment read once per collect, however many of its
        # metrics this registry holds.
        snapshots = {}
        for collector in collectors:
            st = getattr(collector, '_store', None)
            if st is None:
                yield from collector.collect()
                continue
            if st not in snapshots:
                snapshots[st] = {f[0]: f for f in st.collect()}
            yield from collector._from_family(
                snapshots[st].get(collector._family_name()))

    def _extras(self):
        """What this process adds to the fleet's segment on its pages
        (the default registry): target_info and the collectors whose
        samples the segment does not hold (custom ones, Info, Enum,
        metrics of other segments).  None if there is nothing."""
        from . import view
        with self._lock:
            collectors = [c for c in self._collector_to_names
                          if not view.in_fleet_segment(c)]
            ti = bool(self._target_info)
        return _Extras(self, collectors) if collectors or ti else None

    def restricted_registry(self, names):
        """A registry whose collect() yields only the samples named."""
        return RestrictedRegistry(names, self)

    def set_target_info(self, labels):
        with self._lock:
            if labels:
                if (not self._target_info and
                        'target_info' in self._names_to_collectors):
                    raise ValueError('CollectorRegistry already contains '
                                     'a target_info metric')
                self._names_to_collectors['target_info'] = _EmptyCollector()
            elif self._target_info:
                self._names_to_collectors.pop('target_info', None)
            self._target_info = labels

    def get_target_info(self):
        with self._lock:
            return self._target_info

    def _target_info_metric(self):
        from ._pc import Metric
        m = Metric('target', 'Target metadata', 'info')
        m.add_sample('target_info', self._target_info, 1)
        return m

    def get_sample_value(self, name, labels=None, segment=None):
        """The value of one sample, or None, as prometheus_client's
        (meant for tests).  segment: read that segment's families instead
        (a name), as the exporter shows them."""
        if labels is None:
            labels = {}
        if segment is not None:
            from . import view
            metrics = view.fleet(segment)
        else:
            metrics = self.collect()
        for metric in metrics:
            for s in metric.samples:
                if s.name == name and s.labels == labels:
                    return s.value
        return None


class _Extras:
    """A registry's collectors outside the fleet's segment (_extras)."""

    def __init__(self, registry, collectors):
        self._registry = registry
        self._collectors = collectors

    def collect(self):
        reg = self._registry
        with reg._lock:
            ti = reg._target_info_metric() if reg._target_info else None
        if ti:
            yield ti
        for c in self._collectors:
            yield from c.collect()


class RestrictedRegistry:
    """The samples of some names only (prometheus_client's ?name[]=)."""

    def __init__(self, names, registry):
        self._name_set = set(names)
        self._registry = registry

    def collect(self):
        reg = self._registry
        collectors = []
        ti = None
        with reg._lock:
            if 'target_info' in self._name_set and reg._target_info:
                ti = reg._target_info_metric()
            for name in self._name_set:
                if name != 'target_info' and \
                        name in reg._names_to_collectors:
                    c = reg._names_to_collectors[name]
                    if c not in collectors:
                        collectors.append(c)
        if ti:
            yield ti
        if reg._default:
            from . import view
            for m in view.fleet(segment_name()):
                m = m._restricted_metric(self._name_set)
                if m:
                    yield m
            collectors = [c for c in collectors
                          if not view.in_fleet_segment(c)]
        for collector in collectors:
            for metric in collector.collect():
                m = metric._restricted_metric(self._name_set)
                if m:
                    yield m


REGISTRY = CollectorRegistry(_default=True)
