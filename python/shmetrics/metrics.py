"""Counter, Gauge and Histogram with prometheus_client's API.

The classes subclass the C bases of _shmetrics, so inc, dec, set and
observe are one C call (an atomic add in this process's block of the
segment).  What is Python here is what is Python-shaped in
prometheus_client: names, validation, labels(), time(),
count_exceptions(), track_inprogress().  Names, errors and messages follow
prometheus_client 0.16 (metrics.py), so the same mistakes raise the same
exceptions.
"""

import functools
import inspect
import re
import threading
import time as _time

from . import _shmetrics
from .registry import REGISTRY, segment_for, segment_name

INF = float('inf')
CONTENT_TYPE_LATEST = 'text/plain; version=0.0.4; charset=utf-8'

METRIC_NAME_RE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*$')
METRIC_LABEL_NAME_RE = re.compile(r'^[a-zA-Z_][a-zA-Z0-9_]*$')
RESERVED_METRIC_LABEL_NAME_RE = re.compile(r'^__.*$')

# prometheus_client's multiprocess_mode names -> the segment's gauge modes.
_GAUGE_MODES = {
    'all': _shmetrics.GAUGE_ALL,
    'liveall': _shmetrics.GAUGE_LIVEALL,
    'sum': _shmetrics.GAUGE_SUM,
    'livesum': _shmetrics.GAUGE_LIVESUM,
    'max': _shmetrics.GAUGE_MAX,
    'min': _shmetrics.GAUGE_MIN,
    'mostrecent': _shmetrics.GAUGE_MOSTRECENT,
    'livemostrecent': _shmetrics.GAUGE_LIVEMOSTRECENT,
}
_PROMETHEUS_ONLY_MODES = ('livemin', 'livemax')


def _build_full_name(metric_type, name, namespace, subsystem, unit):
    full_name = ''
    if namespace:
        full_name += namespace + '_'
    if subsystem:
        full_name += subsystem + '_'
    full_name += name
    if metric_type == 'counter' and full_name.endswith('_total'):
        full_name = full_name[:-6]  # Munge to OpenMetrics.
    if unit and not full_name.endswith("_" + unit):
        full_name += "_" + unit
    return full_name


def _refuse_nul(what, s):
    """The segment keeps C strings, which a NUL would end early ('a\\0b'
    would register as 'a'): refused, named, before the checks below turn
    it into a vaguer 'Invalid metric name'."""
    if isinstance(s, str) and '\0' in s:
        raise ValueError('%s contains a NUL character: %r' % (what, s))


def _validate_labelname(l):
    if not METRIC_LABEL_NAME_RE.match(l):
        raise ValueError('Invalid label metric name: ' + l)
    if RESERVED_METRIC_LABEL_NAME_RE.match(l):
        raise ValueError('Reserved label metric name: ' + l)


def _validate_labelnames(cls, labelnames):
    labelnames = tuple(labelnames)
    for l in labelnames:
        _validate_labelname(l)
        if l in cls._reserved_labelnames:
            raise ValueError('Reserved label metric name: ' + l)
    return labelnames


def _wrap(f, context):
    """f, each call of it run inside context() (a context manager made per
    call).  A coroutine function stays one, with the context around the
    whole await: a timer measures the coroutine, not its creation."""
    if inspect.iscoroutinefunction(f):
        @functools.wraps(f)
        async def awaited(*args, **kwargs):
            with context():
                return await f(*args, **kwargs)
        return awaited

    @functools.wraps(f)
    def wrapped(*args, **kwargs):
        with context():
            return f(*args, **kwargs)
    return wrapped


class _Timer:
    """Context manager and decorator: calls metric.<callback>(seconds)."""

    def __init__(self, metric, callback_name):
        self._metric = metric
        self._callback_name = callback_name

    def _new_timer(self):
        return self.__class__(self._metric, self._callback_name)

    def __enter__(self):
        self._start = _time.perf_counter()
        return self

    def __exit__(self, typ, value, traceback):
        duration = max(_time.perf_counter() - self._start, 0)
        getattr(self._metric, self._callback_name)(duration)

    def labels(self, *args, **kw):
        self._metric = self._metric.labels(*args, **kw)

    def __call__(self, f):
        return _wrap(f, self._new_timer)


class _ExceptionCounter:
    def __init__(self, counter, exception):
        self._counter = counter
        self._exception = exception

    def __enter__(self):
        return self

    def __exit__(self, typ, value, traceback):
        if isinstance(value, self._exception):
            self._counter.inc()

    def __call__(self, f):
        return _wrap(f, lambda: self)


class _InprogressTracker:
    def __init__(self, gauge):
        self._gauge = gauge

    def __enter__(self):
        self._gauge.inc()

    def __exit__(self, typ, value, traceback):
        self._gauge.dec()

    def __call__(self, f):
        return _wrap(f, lambda: self)


class _Metric:
    """What Counter, Gauge and Histogram share (the Python half)."""

    _type = None
    _family_type = None
    _reserved_labelnames = ()
    _metrics = {}   # a parent's own dict of children replaces it; never
                    # written here (labels() checks before it stores)

    def __init__(self, name, documentation, labelnames=(), namespace='',
                 subsystem='', unit='', registry=REGISTRY,
                 _labelvalues=None, segment=None):
        for what, s in (('metric name', name), ('namespace', namespace),
                        ('subsystem', subsystem), ('unit', unit),
                        ('documentation', documentation)):
            _refuse_nul(what, s)
        labelnames = tuple(labelnames)  # may be an iterator
        for l in labelnames:
            _refuse_nul('label name', l)
        self._name = _build_full_name(self._type, name, namespace,
                                      subsystem, unit)
        self._labelnames = _validate_labelnames(self, labelnames)
        self._labelvalues = tuple(_labelvalues or ())
        self._documentation = documentation
        self._unit = unit
        if not hasattr(self, '_kwargs'):
            self._kwargs = {}
        if not METRIC_NAME_RE.match(self._name):
            raise ValueError('Invalid metric name: ' + self._name)
        if registry is not None and registry is not REGISTRY:
            raise NotImplementedError(
                'shmetrics has one registry per process: custom '
                'registries are not supported (use the default, or None)')
        if self._labelvalues:
            raise ValueError('_labelvalues is internal to labels()')
        if registry is not None:
            registry.register(self)
        try:
            self._segment = segment_for(segment)
            self._family = _shmetrics.Family(
                self._segment, self._family_type, self._family_name(),
                documentation, self._labelnames, **self._family_kwargs())
        except Exception:
            if registry is not None:
                registry.unregister(self)
            raise
        if self._labelnames:
            self._lock = threading.Lock()
            self._metrics = {}
            self._removals = self._family.removals
        else:
            self._bind(self._family, ())

    def _family_name(self):
        return self._name

    def _family_kwargs(self):
        return {}

    def _sample_names(self):
        return (self._name,)

    def __str__(self):
        return f"{self._type}:{self._name}"

    def __repr__(self):
        t = type(self)
        return f"{t.__module__}.{t.__name__}({self._name})"

    def _is_parent(self):
        return self._labelnames and not self._labelvalues

    def _raise_if_not_observable(self):
        if self._is_parent():
            raise ValueError('%s metric is missing label values' %
                             str(self._type))

    def labels(self, *labelvalues, **labelkwargs):
        """The child of these label values (positional or by name)."""
        if self._labelnames and \
                self._family.removals != self._removals:
            self._forget_removed()
        if labelvalues and not labelkwargs:
            # Fast path: children are keyed by tuples of str, and no
            # other type compares equal to a str.
            try:
                child = self._metrics.get(labelvalues)
            except TypeError:   # unhashable values: str() them below
                child = None
            if child is not None:
                return child
        if not self._labelnames:
            raise ValueError('No label names were set when constructing %s'
                             % self)
        if self._labelvalues:
            raise ValueError('{} already has labels set ({}); can not chain '
                             'calls to .labels()'.format(
                                 self, dict(zip(self._labelnames,
                                                self._labelvalues))))
        if labelvalues and labelkwargs:
            raise ValueError("Can't pass both *args and **kwargs")
        if labelkwargs:
            if sorted(labelkwargs) != sorted(self._labelnames):
                raise ValueError('Incorrect label names')
            labelvalues = tuple(str(labelkwargs[l])
                                for l in self._labelnames)
        else:
            if len(labelvalues) != len(self._labelnames):
                raise ValueError('Incorrect label count')
            labelvalues = tuple(str(l) for l in labelvalues)
        child = self._metrics.get(labelvalues)
        if child is None:
            with self._lock:
                child = self._metrics.get(labelvalues)
                if child is None:
                    child = self._child(labelvalues)
                    self._metrics[labelvalues] = child
        return child

    def _forget_removed(self):
        # Another process removed series of the family: the cached
        # children may hold removed ones, whose writes nobody would see.
        # Bound again on the next labels(), they start their series anew.
        with self._lock:
            self._removals = self._family.removals
            self._metrics = {}

    def _child(self, labelvalues):
        cls = self.__class__
        child = cls.__new__(cls)
        d = dict(self.__dict__)
        del d['_lock'], d['_metrics']
        d['_labelvalues'] = labelvalues
        child.__dict__.update(d)
        child._bind(self._family, labelvalues)
        return child

    def remove(self, *labelvalues):
        """Remove the series of these label values, as prometheus_client
        does, for the whole fleet: it leaves the pages, and labels() with
        the same values starts it again from zero.  KeyError if neither
        this process nor the segment has it."""
        if not self._labelnames:
            raise ValueError('No label names were set when constructing %s'
                             % self)
        if len(labelvalues) != len(self._labelnames):
            raise ValueError('Incorrect label count (expected %d, got %s)'
                             % (len(self._labelnames), labelvalues))
        labelvalues = tuple(str(l) for l in labelvalues)
        with self._lock:
            child = self._metrics.pop(labelvalues, None)
            removed = self._family.remove(labelvalues)
        if child is None and not removed:
            raise KeyError(labelvalues)

    def clear(self):
        """Remove every series of the family, for the whole fleet."""
        with self._lock:
            self._metrics = {}
            self._family.clear()


class Counter(_Metric, _shmetrics.CounterBase):
    """A counter, as prometheus_client.Counter: inc(amount=1),
    count_exceptions(); samples are named <name>_total."""

    _type = 'counter'
    _family_type = _shmetrics.TYPE_COUNTER

    def _family_name(self):
        return self._name + '_total'

    def _sample_names(self):
        return (self._name, self._name + '_total', self._name + '_created')

    def count_exceptions(self, exception=Exception):
        """Count exceptions of that type raised in a block or function."""
        self._raise_if_not_observable()
        return _ExceptionCounter(self, exception)


class Gauge(_Metric, _shmetrics.GaugeBase):
    """A gauge, as prometheus_client.Gauge; multiprocess_mode picks how
    the processes' values combine (all, liveall, sum, livesum, min, max,
    mostrecent, livemostrecent)."""

    _type = 'gauge'
    _family_type = _shmetrics.TYPE_GAUGE
    _MULTIPROC_MODES = frozenset(_GAUGE_MODES) | frozenset(
        _PROMETHEUS_ONLY_MODES)

    def __init__(self, name, documentation, labelnames=(), namespace='',
                 subsystem='', unit='', registry=REGISTRY,
                 _labelvalues=None, multiprocess_mode='all', segment=None):
        self._multiprocess_mode = multiprocess_mode
        if multiprocess_mode not in self._MULTIPROC_MODES:
            raise ValueError('Invalid multiprocess mode: ' +
                             multiprocess_mode)
        if multiprocess_mode in _PROMETHEUS_ONLY_MODES:
            raise NotImplementedError(
                'multiprocess_mode %r: the segment has min and max over '
                'every process, not over live ones only' % multiprocess_mode)
        self._kwargs = {'multiprocess_mode': multiprocess_mode}
        super().__init__(name, documentation, labelnames, namespace,
                         subsystem, unit, registry, _labelvalues, segment)

    def _family_kwargs(self):
        return {'gauge_mode': _GAUGE_MODES[self._multiprocess_mode]}

    def track_inprogress(self):
        """inc() on entry, dec() on exit: context manager or decorator."""
        self._raise_if_not_observable()
        return _InprogressTracker(self)

    def time(self):
        """Set the gauge to a block's or function's duration (seconds)."""
        return _Timer(self, 'set')

    def set_function(self, f):
        raise NotImplementedError(
            'set_function: a callback cannot be read from shared memory; '
            'set() the value instead')


DEFAULT_BUCKETS = (.005, .01, .025, .05, .075, .1, .25, .5, .75, 1.0, 2.5,
                   5.0, 7.5, 10.0, INF)


class Histogram(_Metric, _shmetrics.HistogramBase):
    """A histogram, as prometheus_client.Histogram: observe(amount),
    time(); buckets= as there (+Inf added), at most 128 finite bounds."""

    _type = 'histogram'
    _family_type = _shmetrics.TYPE_HISTOGRAM
    _reserved_labelnames = ('le',)

    def __init__(self, name, documentation, labelnames=(), namespace='',
                 subsystem='', unit='', registry=REGISTRY,
                 _labelvalues=None, buckets=DEFAULT_BUCKETS, segment=None):
        self._prepare_buckets(buckets)
        self._kwargs = {'buckets': buckets}
        super().__init__(name, documentation, labelnames, namespace,
                         subsystem, unit, registry, _labelvalues, segment)

    def _prepare_buckets(self, source_buckets):
        buckets = [float(b) for b in source_buckets]
        if buckets != sorted(buckets):
            raise ValueError('Buckets not in sorted order')
        if buckets and buckets[-1] != INF:
            buckets.append(INF)
        if len(buckets) < 2:
            raise ValueError('Must have at least two buckets')
        self._upper_bounds = buckets

    def _family_kwargs(self):
        return {'buckets': tuple(self._upper_bounds[:-1])}

    def _sample_names(self):
        return (self._name, self._name + '_bucket', self._name + '_sum',
                self._name + '_count', self._name + '_created')

    def time(self):
        """Observe a block's or function's duration (seconds)."""
        return _Timer(self, 'observe')


def _unsupported(what, why):
    def init(self, *args, **kwargs):
        raise NotImplementedError('%s is not supported by shmetrics: %s'
                                  % (what, why))
    return init


class Summary:
    """Not supported: quantiles cannot be summed across processes (as in
    prometheus_client's multiprocess mode).  Use a Histogram."""
    __init__ = _unsupported('Summary', 'use a Histogram')


class Info:
    """Not supported (prometheus_client's multiprocess mode lacks it too)."""
    __init__ = _unsupported('Info', 'use a Gauge set to 1 with labels')


class Enum:
    """Not supported (prometheus_client's multiprocess mode lacks it too)."""
    __init__ = _unsupported('Enum', 'use a Gauge per state')


def generate_latest(registry=REGISTRY):
    """The default segment in the text format (every process summed)."""
    if registry is not REGISTRY:
        raise NotImplementedError('custom registries are not supported')
    return _shmetrics.render(segment_name(), 'text')


def _use_exporter(*args, **kwargs):
    raise NotImplementedError(
        'serve the segment with shmetrics-exporter, or register the Flask '
        'blueprint shmetrics.routes.metrics_bp')


start_http_server = _use_exporter
start_wsgi_server = _use_exporter
make_wsgi_app = _use_exporter
