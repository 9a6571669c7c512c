"""prometheus_client.core's names: the metrics, the registry and the
collection data model for custom collectors (Metric, Sample, the
MetricFamily classes, which are prometheus_client's own: _pc.py)."""

from ._pc import Exemplar, Metric, Sample, Timestamp, metrics_core as _mc
from .metrics import Counter, Enum, Gauge, Histogram, Info, Summary
from .registry import REGISTRY, CollectorRegistry

UnknownMetricFamily = _mc.UnknownMetricFamily
UntypedMetricFamily = _mc.UntypedMetricFamily
CounterMetricFamily = _mc.CounterMetricFamily
GaugeMetricFamily = _mc.GaugeMetricFamily
SummaryMetricFamily = _mc.SummaryMetricFamily
HistogramMetricFamily = _mc.HistogramMetricFamily
GaugeHistogramMetricFamily = _mc.GaugeHistogramMetricFamily
InfoMetricFamily = _mc.InfoMetricFamily
StateSetMetricFamily = _mc.StateSetMetricFamily

__all__ = (
    'CollectorRegistry', 'Counter', 'CounterMetricFamily', 'Enum',
    'Exemplar', 'Gauge', 'GaugeHistogramMetricFamily', 'GaugeMetricFamily',
    'Histogram', 'HistogramMetricFamily', 'Info', 'InfoMetricFamily',
    'Metric', 'REGISTRY', 'Sample', 'StateSetMetricFamily', 'Summary',
    'SummaryMetricFamily', 'Timestamp', 'UnknownMetricFamily',
    'UntypedMetricFamily',
)
