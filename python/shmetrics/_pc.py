"""What shmetrics takes from prometheus_client: its collection data model
(Metric, Sample, the MetricFamily classes for custom collectors) and its
encoders and HTTP handlers, so that what a shmetrics registry yields and
serves is byte for byte what prometheus_client would.  The hot path, the
storage and the reading of segments are shmetrics' own (C); this is the
Python-shaped part prometheus_client already gets right.

Imported once, here, by module path, so that a test harness that puts
shmetrics in prometheus_client's place in sys.modules afterwards
(tests/python/upstream/conftest.py) does not turn these into shmetrics.
"""

import prometheus_client.asgi as asgi
import prometheus_client.exposition as exposition
import prometheus_client.metrics_core as metrics_core
import prometheus_client.openmetrics.exposition as om_exposition
import prometheus_client.samples as samples
import prometheus_client.utils as utils

Metric = metrics_core.Metric
Sample = samples.Sample
Exemplar = samples.Exemplar
Timestamp = samples.Timestamp
floatToGoString = utils.floatToGoString

FAMILIES = ('UnknownMetricFamily', 'UntypedMetricFamily',
            'CounterMetricFamily', 'GaugeMetricFamily',
            'SummaryMetricFamily', 'HistogramMetricFamily',
            'GaugeHistogramMetricFamily', 'InfoMetricFamily',
            'StateSetMetricFamily')
