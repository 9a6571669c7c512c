"""The specification's CampaignMetricsCollector, on the segment.

    from shmetrics.campaign_collector import CampaignMetricsCollector

Every method is C (libshmetrics-collectors): record_call_initiated,
time_processing (a context manager), record_call_completed,
record_call_failed, update_active_campaigns, update_pending_leads,
update_concurrent_calls, update_success_rate, time_poll_cycle.
"""

from . import _shmetrics
from .registry import segment_for


class CampaignMetricsCollector(_shmetrics.CampaignCollector):
    """The campaign engine's families, registered on `segment` (default:
    the process's default segment)."""

    def __init__(self, segment=None):
        super().__init__(segment_for(segment))
