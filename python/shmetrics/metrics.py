"""Counter, Gauge, Histogram, Summary, Info and Enum with
prometheus_client's API.

Counter, Gauge, Histogram and Summary subclass the C bases of _shmetrics,
so inc, dec, set and observe are one C call (an atomic add in this
process's block of a segment).  What is Python here is what is
Python-shaped in prometheus_client: names, validation, labels(), time(),
count_exceptions(), track_inprogress(), describe() and collect().  Names,
errors and messages follow prometheus_client 0.16 (metrics.py), so the
same mistakes raise the same exceptions.

Which segment a metric writes (store.py): segment= if given; else its
registry's: the default REGISTRY's is the fleet's segment, a private
CollectorRegistry's its own, registry=None a private one no registry
shows.  Info and Enum hold their value in Python, as prometheus_client
does in both modes (its multiprocess mode does not aggregate them): they
show on this process's pages only, not on the exporter's.
"""

import os
import re
import sys
import threading
import time as _time

from . import _shmetrics, store, view
from ._pc import Metric
from .decorator import decorate
from .registry import REGISTRY

INF = float('inf')

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
# The segment has min and max over every process, dead ones included
# (retired block); over live ones only, it keeps each live process's
# value (liveall) and the Python views take the min or max of those
# (view.py).  The C exporter, which cannot tell, shows each with its pid.
_LIVE_EXTREMES = {'livemin': _shmetrics.GAUGE_LIVEALL,
                  'livemax': _shmetrics.GAUGE_LIVEALL}


def _get_use_created():
    """PROMETHEUS_DISABLE_CREATED_SERIES, as prometheus_client reads it."""
    return os.environ.get('PROMETHEUS_DISABLE_CREATED_SERIES',
                          'False').lower() not in ('true', '1', 't')


# Private registries show _created samples unless this is False (tests
# set it as they set prometheus_client's).  The fleet's view never does,
# as prometheus_client's multiprocess mode never does.
_use_created = _get_use_created()


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
    if unit and metric_type in ('info', 'stateset'):
        raise ValueError('Metric name is of a type that cannot have a '
                         'unit: ' + full_name)
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


def _validate_exemplar(exemplar):
    """prometheus_client's check of an exemplar's labels: valid names, at
    most 128 characters in all.  The C inc() and observe() call it when
    an exemplar is passed, after counting (as prometheus_client), then
    store it in the segment (the OpenMetrics page shows it)."""
    runes = 0
    for k, v in exemplar.items():
        _validate_labelname(k)
        runes += len(k)
        runes += len(v)
    if runes > 128:
        raise ValueError('Exemplar labels have %d UTF-8 characters, '
                         'exceeding the limit of 128' % runes)


_shmetrics._set_exemplar_check(_validate_exemplar)


def _wrap(f, context):
    """f with its signature, each call inside context() (decorator.py)."""
    return decorate(f, context)


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
    """What every metric shares (the Python half)."""

    _type = None
    _family_type = None
    _stored = True          # values in a segment (Info, Enum: in Python)
    _reserved_labelnames = ()
    _removals = None    # a segment family's removals, as last seen
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
        if self._labelvalues:
            raise ValueError('_labelvalues is internal to labels()')
        self._check_limits()
        if registry is not None:
            registry.register(self)
        try:
            if self._stored:
                self._open(registry, segment)
        except Exception:
            if registry is not None:
                registry.unregister(self)
            raise
        if self._labelnames:
            self._lock = threading.Lock()
            self._metrics = {}
            if self._stored:
                self._removals = self._family.removals
        else:
            self._init_child(())

    def _check_limits(self):
        """What the segment cannot hold, refused where the metric is
        made (import time, as a rule), never in labels() or on the hot
        path."""
        if self._stored and len(self._labelnames) > _shmetrics.MAX_LABELS:
            raise ValueError(
                '%s: at most %d label names (the segment\'s limit), got %d'
                % (self._name, _shmetrics.MAX_LABELS, len(self._labelnames)))

    def _open(self, registry, segment):
        """Pick the store (store.py) and find or register the family.  A
        private store that already had this family name (a metric made
        again after unregister, or one more registry=None metric of the
        name) is not reused: prometheus_client's new metric starts at 0."""
        fname = self._family_name()
        if segment is not None:
            st = store.shared(segment)
        elif registry is None:
            st = store.pool()
        elif getattr(registry, '_default', False):
            st = store.shared(None)
        elif hasattr(registry, '_private_store'):
            st = registry._private_store()
        else:                           # another library's registry
            st = store.pool()
        if st.private and fname in st.names:
            st = registry._private_store(fresh=True) \
                if hasattr(registry, '_private_store') and \
                not getattr(registry, '_default', False) \
                else store.pool(fresh=True)
        try:
            self._family = self._register_family(st, fname)
        except ValueError:
            if not st.private:
                raise           # a fleet's family is fixed
            # A name this one's family would show (s_count beside a
            # summary s) taken in the private segment by a metric since
            # unregistered: as in prometheus_client, the name is free.
            st = registry._private_store(fresh=True) \
                if hasattr(registry, '_private_store') \
                else store.pool(fresh=True)
            self._family = self._register_family(st, fname)
        if st.private:
            st.names.add(fname)
        self._store = st
        self._segment = st.segment

    def _register_family(self, st, fname):
        return _shmetrics.Family(
            st.segment, self._family_type, fname, self._documentation,
            self._labelnames, **self._family_kwargs())

    def _family_name(self):
        return self._name

    def _family_kwargs(self):
        return {}

    def _init_child(self, labelvalues):
        self._created = _time.time()
        if self._stored:
            self._bind(self._family, labelvalues)
        else:
            self._metric_init()

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
        if self._removals is not None and \
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
        child._init_child(labelvalues)
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
            removed = self._stored and self._family.remove(labelvalues)
        if child is None and not removed:
            raise KeyError(labelvalues)

    def clear(self):
        """Remove every series of the family, for the whole fleet."""
        with self._lock:
            self._metrics = {}
            if self._stored:
                self._family.clear()

    # -- collection (prometheus_client's Collector) ---------------------

    def describe(self):
        return [Metric(self._name, self._documentation, self._type,
                       self._unit)]

    def collect(self):
        """This metric's family as a Metric: from its private segment as
        prometheus_client's single-process mode shows it (with _created),
        or from a shared one as its multiprocess mode does."""
        fams = self._store.collect([self._family_name()])
        return self._from_family(fams[0] if fams else None)

    def _from_family(self, fam):
        """collect() from the family tuple read (None: not there)."""
        if fam is None:
            return [self.describe()[0]]
        created = self._created_times() \
            if self._store.private and _use_created else {}
        return [view.metric(fam, self._store.private, created,
                            name=self._name, doc=self._documentation,
                            unit=self._unit)]

    def _created_times(self):
        if not self._labelnames:
            return {(): self._created}
        with self._lock:
            return {lv: c._created for lv, c in self._metrics.items()}


class Counter(_Metric, _shmetrics.CounterBase):
    """A counter, as prometheus_client.Counter: inc(amount=1),
    count_exceptions(); samples are named <name>_total."""

    _type = 'counter'
    _family_type = _shmetrics.TYPE_COUNTER

    def _family_name(self):
        return self._name + '_total'

    def count_exceptions(self, exception=Exception):
        """Count exceptions of that type raised in a block or function."""
        self._raise_if_not_observable()
        return _ExceptionCounter(self, exception)


class Gauge(_Metric, _shmetrics.GaugeBase):
    """A gauge, as prometheus_client.Gauge; multiprocess_mode picks how
    the processes' values combine (all, liveall, sum, livesum, min, max,
    livemin, livemax, mostrecent, livemostrecent)."""

    _type = 'gauge'
    _family_type = _shmetrics.TYPE_GAUGE
    _MULTIPROC_MODES = frozenset(_GAUGE_MODES) | frozenset(_LIVE_EXTREMES)

    def __init__(self, name, documentation, labelnames=(), namespace='',
                 subsystem='', unit='', registry=REGISTRY,
                 _labelvalues=None, multiprocess_mode='all', segment=None):
        self._multiprocess_mode = multiprocess_mode
        if multiprocess_mode not in self._MULTIPROC_MODES:
            raise ValueError('Invalid multiprocess mode: ' +
                             multiprocess_mode)
        self._kwargs = {'multiprocess_mode': multiprocess_mode}
        self._function = None
        super().__init__(name, documentation, labelnames, namespace,
                         subsystem, unit, registry, _labelvalues, segment)
        if multiprocess_mode in _LIVE_EXTREMES:
            view.mode_overrides[self._name] = multiprocess_mode

    def _family_kwargs(self):
        mode = self._multiprocess_mode
        return {'gauge_mode': _LIVE_EXTREMES.get(mode) or _GAUGE_MODES[mode]}

    def track_inprogress(self):
        """inc() on entry, dec() on exit: context manager or decorator."""
        self._raise_if_not_observable()
        return _InprogressTracker(self)

    def time(self):
        """Set the gauge to a block's or function's duration (seconds)."""
        return _Timer(self, 'set')

    def set_function(self, f):
        """The gauge's value is f(), called whenever this process
        collects (generate_latest, get_sample_value, its HTTP pages) and
        written to the segment then, so the exporter shows the value of
        this process's latest collection."""
        self._raise_if_not_observable()
        self._function = f
        view.function_gauges.add(self)

    def _refresh(self):
        f = self._function
        if f is not None:
            self.set(float(f()))


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
        if len(buckets) - 1 > _shmetrics.MAX_BOUNDS:
            raise ValueError('at most %d buckets besides +Inf (the '
                             'segment\'s limit), got %d'
                             % (_shmetrics.MAX_BOUNDS, len(buckets) - 1))
        self._upper_bounds = buckets

    def _family_kwargs(self):
        return {'buckets': tuple(self._upper_bounds[:-1])}

    def time(self):
        """Observe a block's or function's duration (seconds)."""
        return _Timer(self, 'observe')


class Summary(_Metric, _shmetrics.HistogramBase):
    """A summary as prometheus_client's multiprocess mode keeps one: a
    count and a sum (no quantiles).  observe(amount), time().  Stored as
    a histogram with one bucket bounded by the largest double, which the
    Python views show as a summary (view.py); the C exporter, which has
    no summary type, shows it as that histogram."""

    _type = 'summary'
    _family_type = _shmetrics.TYPE_HISTOGRAM
    _reserved_labelnames = ('quantile',)

    def _family_kwargs(self):
        return {'buckets': (sys.float_info.max,)}

    def time(self):
        """Observe a block's or function's duration (seconds)."""
        return _Timer(self, 'observe')


class _PyMetric(_Metric):
    """Info and Enum: the value is Python state of this process, as in
    prometheus_client (whose multiprocess mode does not aggregate them);
    collect() yields it."""

    _stored = False

    def collect(self):
        m = self.describe()[0]
        if self._labelnames:
            with self._lock:
                children = list(self._metrics.items())
        else:
            children = [((), self)]
        for lv, child in children:
            for suffix, labels, value in child._child_samples():
                m.add_sample(self._name + suffix,
                             dict(dict(zip(self._labelnames, lv)), **labels),
                             value)
        return [m]


class Info(_PyMetric):
    """Info metric, key-value pairs: info({'version': '1.2.3'})."""

    _type = 'info'

    def _metric_init(self):
        self._labelname_set = set(self._labelnames)
        self._value_lock = threading.Lock()
        self._value = {}

    def info(self, val):
        """Set the info."""
        if self._labelname_set.intersection(val.keys()):
            raise ValueError('Overlapping labels for Info metric, metric: '
                             '{} child: {}'.format(self._labelnames, val))
        with self._value_lock:
            self._value = dict(val)

    def _child_samples(self):
        with self._value_lock:
            return (('_info', self._value, 1.0),)


class Enum(_PyMetric):
    """Which of a set of states is true: state('running')."""

    _type = 'stateset'

    def __init__(self, name, documentation, labelnames=(), namespace='',
                 subsystem='', unit='', registry=REGISTRY,
                 _labelvalues=None, states=None):
        # Checked before registering (prometheus_client registers first,
        # and leaves the name taken by a metric that does not exist).
        labelnames = tuple(labelnames)
        if name in labelnames:
            raise ValueError(f'Overlapping labels for Enum metric: {name}')
        if not states:
            raise ValueError(f'No states provided for Enum metric: {name}')
        self._kwargs = {'states': states}
        self._states = states
        super().__init__(name, documentation, labelnames, namespace,
                         subsystem, unit, registry, _labelvalues)

    def _metric_init(self):
        self._value = 0
        self._value_lock = threading.Lock()

    def state(self, state):
        """Set the state."""
        self._raise_if_not_observable()
        with self._value_lock:
            self._value = self._states.index(state)

    def _child_samples(self):
        with self._value_lock:
            return [('', {self._name: s}, 1 if i == self._value else 0)
                    for i, s in enumerate(self._states)]
