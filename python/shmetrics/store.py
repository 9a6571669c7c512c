"""Where a metric's values live, and how they are read back.

SharedStore: a named segment the fleet shares (the default one, or one
given with segment=); read by name, as the exporter reads it, with every
process's block and the liveness of each (modes live*).

PrivateStore: a segment of this process alone (a private
CollectorRegistry's, or the one registry=None metrics write into), under
a name unique to it (<default segment>-p<pid>-<n>), unlinked when the
store is garbage collected or the process exits; a process killed by
SIGKILL leaves it in /dev/shm, as any writer leaves its segment.  Read by
name like a shared one: the reader sees a write as soon as it is made
(the data-page cache is keyed on what writers reserved).  Forked children
write into it as into any segment (each with its own slot).
"""

import itertools
import os
import threading
import weakref

from . import _shmetrics
from .registry import segment_for, segment_name

_seq = itertools.count()
_lock = threading.Lock()
_shared = {}            # Segment -> SharedStore
_pool = None            # registry=None metrics' PrivateStore


class SharedStore:
    private = False

    def __init__(self, segment):
        self.segment = segment

    def collect(self, names=None):
        return _shmetrics.collect(self.segment.name, names)


class PrivateStore:
    private = True

    def __init__(self):
        self.names = set()      # family names registered here
        # Named after the default segment, so that /dev/shm tells whose
        # it is; removed when the store is collected or the process
        # exits (not in forked children, which share it).
        name = '%s-p%d-%d' % (segment_name()[:200], os.getpid(),
                               next(_seq))
        self.segment = _shmetrics.Segment(name)
        self.name = self.segment.name
        weakref.finalize(self, _unlink_if_mine, self.name, os.getpid())

    def collect(self, names=None):
        return _shmetrics.collect(self.name, names)


def _unlink_if_mine(name, pid):
    if os.getpid() == pid:
        try:
            _shmetrics.unlink(name)
        except OSError:
            pass


def shared(segment=None):
    """The store of segment (None: the default; a name; a Segment)."""
    seg = segment_for(segment)
    with _lock:
        st = _shared.get(seg)
        if st is None:
            st = _shared[seg] = SharedStore(seg)
        return st


def pool(fresh=False):
    """registry=None metrics' store; fresh: a new one (a name that the
    current one holds with another shape)."""
    global _pool
    with _lock:
        if _pool is None or fresh:
            _pool = PrivateStore()
        return _pool


def _after_fork():
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)
