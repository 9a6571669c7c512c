"""shmetrics: prometheus_client's instrumentation API on a shared-memory
segment.  Change the import, keep the code:

    from shmetrics import Counter, Gauge, Histogram

    c = Counter('requests', 'Requests served', ['path'])
    c.labels('/').inc()

Every process of a fleet (gunicorn workers, multiprocessing, os.fork())
writes into the segment $SHMETRICS_SEGMENT or "/shmetrics"; the exporter
(shmetrics-exporter) or the Flask blueprint shmetrics.routes.metrics_bp
serves the sums.  The hot path (inc, observe, set) is one C call with an
atomic add.  The specification's collectors are in
shmetrics.campaign_collector and shmetrics.webhook_collector.
"""

from . import _shmetrics
from ._shmetrics import Segment, unlink, now_ns
from .registry import (REGISTRY, CollectorRegistry, default_segment,
                       use_segment, segment_name)
from .metrics import (Counter, Gauge, Histogram, Summary, Info, Enum,
                      generate_latest, start_http_server, start_wsgi_server,
                      make_wsgi_app, CONTENT_TYPE_LATEST)
from .campaign_collector import CampaignMetricsCollector
from .webhook_collector import WebhookMetricsCollector

__all__ = ['Counter', 'Gauge', 'Histogram', 'Summary', 'Info', 'Enum',
           'REGISTRY', 'CollectorRegistry', 'Segment', 'unlink', 'now_ns',
           'default_segment', 'use_segment', 'segment_name',
           'generate_latest', 'start_http_server', 'start_wsgi_server',
           'make_wsgi_app', 'CONTENT_TYPE_LATEST',
           'CampaignMetricsCollector', 'WebhookMetricsCollector']
