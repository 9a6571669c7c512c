"""MultiProcessCollector: the fleet's segment in a registry, as
prometheus_client's multiprocess recipe reads its files:

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    data = generate_latest(registry)

The segment is every process's already: no directory, no files to merge.
"""

import os

from . import view
from .registry import segment_name

def _segment_path(path):
    """path as a segment name (shm_open's: one slash, then no other), or
    None for a directory or nothing."""
    if path and path.startswith('/') and '/' not in path[1:] and \
            not os.path.isdir(path):
        return path
    return None


class MultiProcessCollector:
    """Collects the fleet's segment (path: a segment name such as
    "/shmetrics"; a directory, such as $PROMETHEUS_MULTIPROC_DIR, is
    accepted and means the default segment, so that code written for
    prometheus_client runs unchanged)."""

    def __init__(self, registry, path=None):
        if path is None:
            path = os.environ.get('PROMETHEUS_MULTIPROC_DIR')
        self._path = _segment_path(path)
        # The default registry shows the fleet already; adding it again
        # would show every family twice (prometheus_client warns against
        # this registration too).
        if registry is not None and not getattr(registry, '_default', False):
            registry.register(self)

    def collect(self):
        return view.fleet(self._path or segment_name())
