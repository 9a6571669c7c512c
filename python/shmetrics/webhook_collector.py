"""The specification's WebhookMetricsCollector, on the segment.

    from shmetrics.webhook_collector import WebhookMetricsCollector

Every method is C (libshmetrics-collectors): record_queued,
time_delivery (a context manager whose timer has set_success and
set_failed), time_processing, record_retry, record_dead_letter,
update_queue_health, update_worker_uptime, record_processed.  The process
counts as one webhook_active_workers until it exits.
"""

from . import _shmetrics
from .registry import segment_for


class WebhookMetricsCollector(_shmetrics.WebhookCollector):
    """The webhook worker's families, registered on `segment` (default:
    the process's default segment), for the worker `worker_id`."""

    def __init__(self, worker_id, segment=None):
        super().__init__(worker_id, segment_for(segment))
        self.worker_id = worker_id
