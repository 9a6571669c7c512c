"""The specification's Python code, run as written: spec-examples.md holds
it verbatim (Quick Start steps 2-4 and the two integration examples); only
the "from backend.metrics.X import" lines become "from shmetrics.X
import".  Names the examples leave to their application (campaign_id,
requests, queue helpers) are supplied here as stubs."""

import asyncio
import logging
import re
import sys
import time
import types
from pathlib import Path

import pytest

from conftest import value

SPEC = Path(__file__).with_name('spec-examples.md').read_text()
BLOCKS = re.findall(r'```python\n(.*?)```', SPEC, re.S)
PORTED = {
    'backend.metrics.routes': 'shmetrics.routes',
    'backend.metrics.campaign_collector': 'shmetrics.campaign_collector',
    'backend.metrics.webhook_collector': 'shmetrics.webhook_collector',
}


def run_block(i, **names):
    code = BLOCKS[i]
    for old, new in PORTED.items():
        code = code.replace('from %s import' % old, 'from %s import' % new)
    assert 'import' not in ''.join(
        l for l in code.splitlines() if 'backend' in l)
    ns = {'__name__': 'spec_example_%d' % i, 'logging': logging,
          'asyncio': asyncio, 'time': time}
    ns.update(names)
    exec(compile(code, 'spec-examples.md block %d' % i, 'exec'), ns)
    return ns


class Response:
    def __init__(self, status_code):
        self.status_code = status_code


@pytest.fixture
def requests(monkeypatch):
    """A requests module that answers from a script, without network."""
    mod = types.ModuleType('requests')

    class RequestException(Exception):
        pass

    mod.RequestException = RequestException
    mod.answers = []

    def post(url, *args, **kwargs):
        a = mod.answers.pop(0)
        if isinstance(a, Exception):
            raise a
        return Response(a)

    mod.post = post
    monkeypatch.setitem(sys.modules, 'requests', mod)
    return mod


def test_blocks_found():
    assert len(BLOCKS) == 5


def test_step2_flask_blueprint(segment):
    import shmetrics
    ns = run_block(0)
    shmetrics.Counter('campaign_calls_initiated', 'Total number of '
                      'campaign calls initiated',
                      ['campaign_id', 'user_id']).labels(
                          'abc123', 'user456').inc(145)
    client = ns['app'].test_client()
    r = client.get('/metrics')
    assert r.status_code == 200
    assert r.content_type.startswith('text/plain; version=0.0.4')
    assert ('campaign_calls_initiated_total{campaign_id="abc123",'
            'user_id="user456"} 145') in r.get_data(as_text=True)
    r = client.get('/metrics', headers={
        'Accept': 'application/openmetrics-text'})
    assert r.get_data(as_text=True).endswith('# EOF\n')
    r = client.get('/metrics/json')
    assert r.status_code == 200
    key = 'campaign_calls_initiated_total{campaign_id=abc123,user_id=user456}'
    assert r.get_json()['metrics'][key] == 145
    r = client.get('/metrics/health')
    assert r.status_code == 200
    assert r.get_json()['status'] == 'healthy'


def test_step2_health_without_segment(segment, monkeypatch):
    import shmetrics.registry
    ns = run_block(0)
    monkeypatch.setattr(shmetrics.registry, '_segment', None)
    monkeypatch.setenv('SHMETRICS_SEGMENT', '/shmetrics-py-none-x')
    r = ns['app'].test_client().get('/metrics/health')
    assert r.status_code == 503
    assert r.get_json()['status'] == 'unhealthy'


def test_step3_campaign_engine(segment):
    ns = run_block(1, campaign_id='abc123', outcome='success', duration=42,
                   error_type='no_answer')
    engine = ns['CampaignEngine']()
    asyncio.run(engine.create_outbound_call('call1', '+15550100', 'agent7',
                                            'user456'))
    cu = {'campaign_id': 'abc123', 'user_id': 'user456'}
    assert value('campaign_calls_initiated_total', cu) == 1
    assert value('campaign_calls_completed_total',
                 dict(cu, outcome='success')) == 1
    assert value('campaign_calls_failed_total',
                 dict(cu, error_type='no_answer')) == 1
    assert value('campaign_processing_latency_seconds_count',
                 {'campaign_id': 'abc123'}) == 1
    assert value('campaign_call_duration_seconds_sum',
                 {'campaign_id': 'abc123', 'outcome': 'success'}) == 42


def test_step4_webhook_worker(segment, requests):
    ns = run_block(2, requests=requests, queue_size=12, oldest_age=3.5)
    worker = ns['WebhookWorker']('worker-1')
    hook = types.SimpleNamespace(event_type='call_ended', partner_id='p1',
                                 url='http://127.0.0.1:1/')
    requests.answers = [200, 500]
    worker.process_webhook(hook)
    worker.process_webhook(hook)
    ep = {'event_type': 'call_ended', 'partner_id': 'p1'}
    assert value('webhook_queued_total', ep) == 2
    assert value('webhook_delivered_total', ep) == 1
    assert value('webhook_failed_total', dict(ep, status_code='500')) == 1
    assert value('webhook_delivery_latency_seconds_count',
                 {'partner_id': 'p1'}) == 2
    assert value('webhook_queue_size') == 12
    assert value('webhook_queue_oldest_age_seconds') == 3.5
    assert value('webhook_active_workers') == 1


def test_full_campaign_engine(segment):
    ns = run_block(3)
    campaign = types.SimpleNamespace(id=7, user_id='u1', agent_id='a1')
    leads = [types.SimpleNamespace(id=i, phone='+1555%04d' % i)
             for i in range(3)]

    class Engine(ns['CampaignEngine']):
        poll_interval = 0
        cycles = 1

        @property
        def running(self):
            self.cycles -= 1
            return self.cycles >= 0

        def get_active_campaigns(self):
            return [campaign]

        def count_campaigns_by_user(self, campaigns):
            return {'u1': len(campaigns)}

        def get_active_call_count(self):
            return 2

        def get_pending_leads(self, campaign_id):
            return leads

        async def create_outbound_call(self, **kw):
            ok = kw['campaign_call_id'] != 1
            return {'success': ok, 'error': None if ok else 'busy'}

        def classify_error(self, error):
            return error

        def calculate_success_rate(self, campaign_id):
            return 0.75

    engine = Engine()
    asyncio.run(engine.run())
    engine.on_call_completed(types.SimpleNamespace(
        campaign_id=7, user_id='u1', outcome='success',
        duration_seconds=95, cost=0.42))
    cu = {'campaign_id': '7', 'user_id': 'u1'}
    assert value('campaign_calls_initiated_total', cu) == 3
    assert value('campaign_calls_failed_total',
                 dict(cu, error_type='busy')) == 1
    assert value('campaign_calls_completed_total',
                 dict(cu, outcome='success')) == 1
    assert value('campaign_cost_total', cu) == 0.42
    assert value('campaign_pending_leads', {'campaign_id': '7'}) == 3
    assert value('campaign_active_campaigns', {'user_id': 'u1'}) == 1
    assert value('campaign_concurrent_calls') == 2
    assert value('campaign_success_rate', {'campaign_id': '7'}) == 0.75
    assert value('campaign_poll_cycle_duration_seconds_count') == 1
    assert value('campaign_processing_latency_seconds_count',
                 {'campaign_id': '7'}) == 3


def test_full_webhook_worker(segment, requests):
    ns = run_block(4)
    hooks = [types.SimpleNamespace(id=i, event_type='call_ended',
                                   partner_id='p9', url='http://x/',
                                   payload={}, attempt_count=n)
             for i, n in enumerate((1, 2, 5))]
    done = []

    class Worker(ns['WebhookWorker']):
        poll_interval = 0
        max_retries = 5
        cycles = 1

        @property
        def running(self):
            self.cycles -= 1
            return self.cycles >= 0

        def get_queue_info(self):
            return {'size': 3, 'oldest_age': 60}

        def fetch_pending_webhooks(self, batch_size):
            return hooks

        def generate_headers(self, webhook):
            return {}

        def mark_webhook_delivered(self, id):
            done.append(('delivered', id))

        def schedule_retry(self, webhook):
            done.append(('retry', webhook.id))

        def move_to_dead_letter(self, id):
            done.append(('dead', id))

    requests.answers = [200, 503, requests.RequestException('refused')]
    Worker('w-9').run()
    assert done == [('delivered', 0), ('retry', 1), ('retry', 2),
                    ('dead', 2)]
    ep = {'event_type': 'call_ended', 'partner_id': 'p9'}
    assert value('webhook_delivered_total', ep) == 1
    assert value('webhook_failed_total', dict(ep, status_code='503')) == 1
    assert value('webhook_failed_total', dict(ep, status_code='0')) == 1
    assert value('webhook_dead_letter_total', ep) == 1
    assert value('webhook_retry_attempts_total',
                 {'partner_id': 'p9', 'attempt_number': '2'}) == 1
    assert value('webhook_queue_processing_duration_seconds_count',
                 {'partner_id': 'p9'}) == 3
    assert value('webhook_worker_uptime_seconds',
                 {'worker_id': 'w-9'}) >= 0
    assert value('webhook_queue_size') == 3
