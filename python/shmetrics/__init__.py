"""shmetrics: prometheus_client's instrumentation API on a shared-memory
segment.  Change the import, keep the code:

    from shmetrics import Counter, Gauge, Histogram

    c = Counter('requests', 'Requests served', ['path'])
    c.labels('/').inc()

Every process of a fleet (gunicorn workers, multiprocessing, os.fork())
writes into the segment $SHMETRICS_SEGMENT or "/shmetrics"; the exporter
(shmetrics-exporter) or the Flask blueprint shmetrics.routes.metrics_bp
serves the sums; REGISTRY, CollectorRegistry, generate_latest and the
HTTP apps work as prometheus_client's (registry.py says where values
live).  The hot path (inc, observe, set) is one C call with an
atomic add.  The specification's collectors are in
shmetrics.campaign_collector and shmetrics.webhook_collector.
"""

from . import _shmetrics
from ._shmetrics import Segment, unlink, now_ns
from .registry import (REGISTRY, CollectorRegistry, default_segment,
                       use_segment, segment_name)
from .metrics import Counter, Gauge, Histogram, Summary, Info, Enum
from .exposition import (CONTENT_TYPE_LATEST, generate_latest,
                         make_wsgi_app, make_asgi_app, start_http_server,
                         start_wsgi_server, write_to_textfile,
                         MetricsHandler, choose_encoder)
from .multiprocess import MultiProcessCollector
from . import core, exposition, multiprocess, metrics
from .core import (Metric, CounterMetricFamily, GaugeMetricFamily,
                   SummaryMetricFamily, HistogramMetricFamily,
                   GaugeHistogramMetricFamily, InfoMetricFamily,
                   StateSetMetricFamily, UnknownMetricFamily,
                   UntypedMetricFamily)
from .campaign_collector import CampaignMetricsCollector
from .webhook_collector import WebhookMetricsCollector

__all__ = ['Counter', 'Gauge', 'Histogram', 'Summary', 'Info', 'Enum',
           'REGISTRY', 'CollectorRegistry', 'MultiProcessCollector',
           'Segment', 'unlink', 'now_ns',
           'default_segment', 'use_segment', 'segment_name',
           'generate_latest', 'start_http_server', 'start_wsgi_server',
           'make_wsgi_app', 'make_asgi_app', 'write_to_textfile',
           'MetricsHandler', 'choose_encoder', 'CONTENT_TYPE_LATEST',
           'Metric', 'CounterMetricFamily', 'GaugeMetricFamily',
           'SummaryMetricFamily', 'HistogramMetricFamily',
           'GaugeHistogramMetricFamily', 'InfoMetricFamily',
           'StateSetMetricFamily', 'UnknownMetricFamily',
           'UntypedMetricFamily',
           'CampaignMetricsCollector', 'WebhookMetricsCollector']
