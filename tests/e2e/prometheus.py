#!/usr/bin/python3
"""A real Prometheus (Debian's package) scrapes the exporter.

1. Writers record known amounts; a PromQL query through Prometheus's HTTP
   API returns exactly them, and up is 1.
2. The demo fleet runs into the same segment: all 23 families of the
   specification arrive with the right types and label names, every alert
   and recording rule evaluates without error, and every expression of the
   Grafana dashboard is accepted by the query API; "Exporters Up" counts
   the exporter and not Prometheus's own target, and every panel with more
   than one query names each in its legend.

usage: prometheus.py BUILD_DIR SOURCE_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (copy_rules, ctl, Exporter, Failures, free_port, start_prometheus, wait_until, Writer)  # noqa

BUILD, SOURCE = sys.argv[1], sys.argv[2]
SEGMENT = "/shmet-e2e-prom-%d" % os.getpid()
T = Failures()

SPEC = {
    "campaign_calls_initiated_total": ("counter", {"campaign_id", "user_id"}),
    "campaign_calls_completed_total":
        ("counter", {"campaign_id", "user_id", "outcome"}),
    "campaign_calls_failed_total":
        ("counter", {"campaign_id", "user_id", "error_type"}),
    "campaign_cost_total": ("counter", {"campaign_id", "user_id"}),
    "campaign_active_campaigns": ("gauge", {"user_id"}),
    "campaign_pending_leads": ("gauge", {"campaign_id"}),
    "campaign_concurrent_calls": ("gauge", set()),
    "campaign_success_rate": ("gauge", {"campaign_id"}),
    "campaign_call_duration_seconds":
        ("histogram", {"campaign_id", "outcome"}),
    "campaign_processing_latency_seconds": ("histogram", {"campaign_id"}),
    "campaign_poll_cycle_duration_seconds": ("histogram", set()),
    "webhook_queued_total": ("counter", {"event_type", "partner_id"}),
    "webhook_delivered_total": ("counter", {"event_type", "partner_id"}),
    "webhook_failed_total":
        ("counter", {"event_type", "partner_id", "status_code"}),
    "webhook_dead_letter_total": ("counter", {"event_type", "partner_id"}),
    "webhook_retry_attempts_total":
        ("counter", {"partner_id", "attempt_number"}),
    "webhook_worker_processed_total": ("counter", {"worker_id"}),
    "webhook_queue_size": ("gauge", set()),
    "webhook_queue_oldest_age_seconds": ("gauge", set()),
    "webhook_active_workers": ("gauge", set()),
    "webhook_worker_uptime_seconds": ("gauge", {"worker_id"}),
    "webhook_delivery_latency_seconds": ("histogram", {"partner_id"}),
    "webhook_queue_processing_duration_seconds":
        ("histogram", {"partner_id"}),
}


class Prometheus:
    def __init__(self, exporter_port, workdir):
        cfgdir = os.path.join(workdir, "cfg")
        os.makedirs(cfgdir)
        copy_rules(SOURCE, cfgdir)
        port = free_port()
        # Prometheus scrapes itself too, as the shipped prometheus.yml
        # does: the dashboard must not count that target as an exporter.
        with open(os.path.join(cfgdir, "prometheus.yml"), "w") as f:
            f.write("""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml, recording.yml]
scrape_configs:
  - job_name: shmetrics
    static_configs:
      - targets: ['127.0.0.1:%d']
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:%d']
""" % (exporter_port, port))
        self.proc = start_prometheus(workdir,
                                     os.path.join(cfgdir, "prometheus.yml"),
                                     port)
        self.port = self.proc.port

    def get(self, path, **params):
        url = "http://127.0.0.1:%d%s" % (self.port, path)
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = r.read()
        except OSError:
            return None
        return json.loads(body) if path.startswith("/api/") else body

    def query(self, expr):
        r = self.get("/api/v1/query", query=expr)
        return r["data"]["result"] if r and r["status"] == "success" else None

    def scalar(self, expr):
        res = self.query(expr)
        return float(res[0]["value"][1]) if res else None

    def stop(self):
        self.proc.stop()


def test_exact_values(prom):
    T.check(wait_until(lambda: prom.scalar('up{job="shmetrics"}') == 1, 20),
            "up is 1")
    ok = wait_until(lambda: prom.scalar(
        'e2e_events_total{kind="a"}') == 1000.0, 20)
    T.check(ok, "PromQL a = %s" % prom.scalar('e2e_events_total{kind="a"}'))
    T.check(prom.scalar('e2e_events_total{kind="b"}') == 2000.0, "PromQL b")
    T.check(prom.scalar("e2e_latency_seconds_count") == 1000.0, "count")
    T.check(prom.scalar("e2e_workers") == 2.0, "live gauge")


def family_types(prom):
    """Types by sample name.  Prometheus asks for OpenMetrics, whose
    counter families are named without _total; map them back."""
    meta = prom.get("/api/v1/metadata")["data"]
    types = {}
    for name, m in meta.items():
        types[name] = m[0]["type"]
        if m[0]["type"] == "counter":
            types[name + "_total"] = "counter"
    return types


def family_labels(prom, name, mtype):
    sample = name + "_bucket" if mtype == "histogram" else name
    res = prom.get("/api/v1/series", **{"match[]": sample})["data"]
    labels = set()
    for s in res:
        labels |= set(s) - {"__name__", "instance", "job", "le"}
    return labels, len(res)


def test_fleet(prom, workdir):
    fleet = subprocess.Popen(
        [os.path.join(BUILD, "tools", "shmetrics-fleet"), "--segment",
         SEGMENT, "--engines", "2", "--workers", "2", "--speed", "300",
         "--duration", "40", "--rate-5xx", "30", "--max-retries", "2",
         "--quiet"])
    try:
        ok = wait_until(lambda: all(n in family_types(prom) for n in SPEC),
                        30, 0.5)
        types = family_types(prom)
        T.check(ok, "all 23 families arrive: missing %s"
                % sorted(set(SPEC) - set(types)))
        # every family has series once the fleet has done everything once
        wait_until(lambda: all(family_labels(prom, n, t)[1] > 0
                               for n, (t, _) in SPEC.items()), 30, 0.5)
        for name, (mtype, labels) in SPEC.items():
            T.check(types.get(name) == mtype, "%s type %s, want %s"
                    % (name, types.get(name), mtype))
            got, n = family_labels(prom, name, mtype)
            T.check(n > 0 and got == labels, "%s labels %s, want %s"
                    % (name, sorted(got), sorted(labels)))
    finally:
        fleet.terminate()
        fleet.wait(30)


def test_rules(prom):
    def evaluated():
        groups = prom.get("/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(
            not r["lastEvaluation"].startswith("0001") for r in rules) \
            else None
    rules = wait_until(evaluated, 15, 0.5)
    T.check(rules and len(rules) == 18, "18 rules evaluated")
    for r in rules or []:
        T.check(r["health"] == "ok", "rule %s: %s %s" % (
            r.get("name"), r["health"], r.get("lastError")))


def test_dashboard(prom):
    dash = json.load(open(os.path.join(SOURCE, "tools", "grafana",
                                       "shmetrics-dashboard.json")))
    # $instance as Grafana sends it with "All" selected (allValue)
    exprs = [t["expr"].replace("$instance", ".*")
             for p in dash["panels"] for t in p["targets"]]
    T.check([v["name"] for v in dash["templating"]["list"]] ==
            ["datasource", "instance"], "dashboard variables")
    T.check(len(dash["panels"]) >= 24, "dashboard panels")
    for e in exprs:
        r = prom.get("/api/v1/query", query=e)
        T.check(r is not None and r["status"] == "success",
                "dashboard query rejected: %s" % e)
    panels = {p["title"]: p for p in dash["panels"]}
    # one exporter, and Prometheus scraping itself: exactly 1
    T.check(wait_until(lambda: prom.scalar(
        'count(up{job="prometheus"} == 1)') == 1, 20),
            "Prometheus's own target is up")
    up = panels["Exporters Up"]["targets"][0]["expr"].replace(
        "$instance", ".*")
    T.check(prom.scalar(up) == 1.0,
            "Exporters Up: %s, want 1 (Prometheus's own target counted?)"
            % prom.scalar(up))
    for title, p in panels.items():
        if len(p["targets"]) < 2:
            continue
        legends = [t.get("legendFormat") for t in p["targets"]]
        T.check(all(legends) and len(set(legends)) == len(legends),
                "%s: a legend per query: %s" % (title, legends))
    T.check([t.get("legendFormat") for t in
             panels["Call Duration (p50, p95)"]["targets"]] == ["p50", "p95"],
            "Call Duration legends p50, p95")


def main():
    if not shutil.which("prometheus"):
        print("prometheus not installed")
        sys.exit(77)
    ctl(BUILD, SEGMENT, "destroy")
    workdir = tempfile.mkdtemp(prefix="shmetrics-prom-")
    exp = Exporter(BUILD, SEGMENT)
    writers, prom = [], None
    try:
        writers = [Writer(BUILD, SEGMENT, 500) for _ in range(2)]
        prom = Prometheus(exp.port, workdir)
        test_exact_values(prom)
        test_fleet(prom, workdir)
        test_rules(prom)
        test_dashboard(prom)
    finally:
        if prom:
            prom.stop()
        for w in writers:
            w.stop()
        exp.stop()
        ctl(BUILD, SEGMENT, "destroy")
        shutil.rmtree(workdir, ignore_errors=True)
    T.exit()


if __name__ == "__main__":
    main()
