#!/usr/bin/python3
"""The alert rules and the demo fleet, end to end, with a real Prometheus
(and Alertmanager): everything on 127.0.0.1, on free ports, started and
stopped here.

  worker-down    every webhook worker is killed (--kill-workers): the
                 exporter renders webhook_active_workers 0 and
                 WebhookWorkerDown goes pending, then firing (test copy of
                 the rules: `for` 3 s, evaluation and scrape every second)
  alertmanager   fault flags drive HighCampaignFailureRate,
                 SlowCampaignProcessing and HighWebhookFailureRate through
                 Prometheus into Alertmanager: read back from its API
                 (/api/v2/alerts) and from the webhook receiver
  demo           a default fleet for 20 s (60 s with SHMETRICS_E2E_LONG=1):
                 every one of the 23 families has a sample within 15 s, no
                 alert is ever pending or firing (the shipped rules,
                 evaluated every second), and, with the fleet held
                 (SIGUSR1), every gauge equals what its status file says

usage: alerts.py BUILD_DIR SOURCE_DIR worker-down|alertmanager|demo
"""
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa
from harness import (copy_rules, ctl, curl, Exporter, Failures, free_port, get_json, Proc, read_status, samples, wait_until)  # noqa

BUILD, SOURCE, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
SEGMENT = "/shmet-e2e-alerts-%d" % os.getpid()
T = Failures()

FAMILIES = [
    "campaign_calls_initiated_total", "campaign_calls_completed_total",
    "campaign_calls_failed_total", "campaign_cost_total",
    "campaign_active_campaigns", "campaign_pending_leads",
    "campaign_concurrent_calls", "campaign_success_rate",
    "campaign_call_duration_seconds", "campaign_processing_latency_seconds",
    "campaign_poll_cycle_duration_seconds", "webhook_queued_total",
    "webhook_delivered_total", "webhook_failed_total",
    "webhook_dead_letter_total", "webhook_retry_attempts_total",
    "webhook_worker_processed_total", "webhook_queue_size",
    "webhook_queue_oldest_age_seconds", "webhook_active_workers",
    "webhook_worker_uptime_seconds", "webhook_delivery_latency_seconds",
    "webhook_queue_processing_duration_seconds",
]
GAUGES = {
    "webhook_queue_size": None, "webhook_queue_oldest_age_seconds": None,
    "webhook_active_workers": None, "campaign_concurrent_calls": None,
    "campaign_active_campaigns": "user_id",
    "campaign_pending_leads": "campaign_id",
    "campaign_success_rate": "campaign_id",
    "webhook_worker_uptime_seconds": "worker_id",
}


def start_prometheus(workdir, exporter_port, am_port=None):
    alerting = ""
    if am_port:
        alerting = """alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:%d']
""" % am_port
    with open(os.path.join(workdir, "prometheus.yml"), "w") as f:
        f.write("""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [alerts.yml, recording.yml]
%sscrape_configs:
  - job_name: shmetrics
    static_configs:
      - targets: ['127.0.0.1:%d']
""" % (alerting, exporter_port))
    return harness.start_prometheus(
        workdir, os.path.join(workdir, "prometheus.yml"))


def start_fleet(workdir, *args):
    status = os.path.join(workdir, "status.json")
    p = Proc([os.path.join(BUILD, "tools", "shmetrics-fleet"), "--segment",
              SEGMENT, "--status", status, *args],
             os.path.join(workdir, "fleet.log"))
    p.status = status
    return p




def alerts(prom):
    """{alertname: state} of Prometheus's active alerts."""
    r = get_json(prom.port, "/api/v1/alerts")
    if not r or r.get("status") != "success":
        return {}
    return {a["labels"]["alertname"]: a["state"]
            for a in r["data"]["alerts"]}


def exporter_samples(exp):
    status, _, body = curl(exp.url("/metrics"))
    if status != 200:
        return {}
    return samples(body.decode())


def families_with_samples(smp):
    names = {name for name, _ in smp}
    return {f for f in FAMILIES
            if f in names or f + "_count" in names}


# ---------------------------------------------------------------------
def test_worker_down(workdir, exp):
    copy_rules(SOURCE, workdir, short_for=True)
    prom = start_prometheus(workdir, exp.port)
    fleet = start_fleet(workdir, "--kill-workers", "8", "--quiet")
    try:
        T.check(wait_until(lambda: (exporter_samples(exp).get(
            ("webhook_active_workers", frozenset())) == 3.0), 15),
            "3 workers active before the kill")
        T.check("WebhookWorkerDown" not in alerts(prom),
                "no WebhookWorkerDown while workers live")
        killed = wait_until(lambda: (read_status(fleet.status) or {}).get(
            "workers_alive") == 0, 20, 0.2)
        T.check(killed, "the fleet reports every worker dead")
        zero = wait_until(lambda: exporter_samples(exp).get(
            ("webhook_active_workers", frozenset())) == 0.0, 10)
        T.check(zero, "the exporter renders webhook_active_workers 0: %s"
                % exporter_samples(exp).get(("webhook_active_workers",
                                             frozenset())))
        seen = []

        def firing():
            state = alerts(prom).get("WebhookWorkerDown")
            if state and (not seen or seen[-1] != state):
                seen.append(state)
            return state == "firing"
        T.check(wait_until(firing, 30, 0.1),
                "WebhookWorkerDown fires: states seen %s" % seen)
        T.check(seen[:1] == ["pending"],
                "WebhookWorkerDown was pending before firing: %s" % seen)
    finally:
        fleet.stop()
        prom.stop()


# ---------------------------------------------------------------------
WANTED = ["HighCampaignFailureRate", "SlowCampaignProcessing",
          "HighWebhookFailureRate"]


def test_alertmanager(workdir, exp):
    if not shutil.which("prometheus-alertmanager"):
        print("prometheus-alertmanager not installed")
        sys.exit(77)
    copy_rules(SOURCE, workdir, short_for=True)
    recv_port, am_port = free_port(), free_port()
    received = os.path.join(workdir, "received.jsonl")
    cfg = open(os.path.join(SOURCE, "tools", "prometheus",
                            "alertmanager.yml")).read()
    cfg = cfg.replace("http://127.0.0.1:9095/",
                      "http://127.0.0.1:%d/" % recv_port)
    cfg = re.sub(r"group_wait: \d+s", "group_wait: 1s", cfg)
    cfg = re.sub(r"group_interval: \d+s", "group_interval: 1s", cfg)
    T.check("127.0.0.1:%d" % recv_port in cfg, "receiver url rewritten")
    with open(os.path.join(workdir, "alertmanager.yml"), "w") as f:
        f.write(cfg)
    recv = Proc(["/usr/bin/python3", os.path.join(
        SOURCE, "tools", "prometheus", "alert-receiver.py"), "--listen",
        "127.0.0.1:%d" % recv_port, "--log", received],
        os.path.join(workdir, "receiver.log"))
    am = Proc(["prometheus-alertmanager",
               "--config.file=" + os.path.join(workdir, "alertmanager.yml"),
               "--storage.path=" + os.path.join(workdir, "am"),
               "--web.listen-address=127.0.0.1:%d" % am_port,
               "--cluster.listen-address="],
              os.path.join(workdir, "alertmanager.log"))
    prom = fleet = None
    try:
        T.check(wait_until(lambda: get_json(am_port, "/api/v2/status"), 20,
                           0.2), "alertmanager up")
        prom = start_prometheus(workdir, exp.port, am_port)
        fleet = start_fleet(workdir, "--rate-call-fail", "60",
                            "--rate-slow-setup", "60", "--rate-5xx", "60",
                            "--quiet")

        def in_am():
            r = get_json(am_port, "/api/v2/alerts") or []
            return {a["labels"]["alertname"] for a in r}

        def in_receiver():
            names = set()
            try:
                for line in open(received):
                    for a in json.loads(line)["alerts"]:
                        if a["status"] == "firing":
                            names.add(a["labels"]["alertname"])
            except OSError:
                pass
            return names
        ok = wait_until(lambda: set(WANTED) <= in_am() and
                        set(WANTED) <= in_receiver(), 60, 0.5)
        T.check(ok, "alerts in Alertmanager %s, received %s, want %s"
                % (sorted(in_am()), sorted(in_receiver()), WANTED))
        for a in get_json(am_port, "/api/v2/alerts") or []:
            if a["labels"]["alertname"] in WANTED:
                T.check(a["status"]["state"] == "active",
                        "%s active in Alertmanager: %s"
                        % (a["labels"]["alertname"], a["status"]))
                T.check(a["annotations"].get("summary"),
                        "%s has its summary" % a["labels"]["alertname"])
    finally:
        for p in (fleet, prom, am, recv):
            if p:
                p.stop()


# ---------------------------------------------------------------------
def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def compare_gauges(smp, status):
    g = status["gauges"]
    for name, label in GAUGES.items():
        got = {dict(labels).get(label): v for (n, labels), v in smp.items()
               if n == name}
        want = g[name] if label else {None: g[name]}
        T.check(set(got) == set(want), "%s series %s, fleet knows %s"
                % (name, sorted(map(str, got)), sorted(map(str, want))))
        for k, v in want.items():
            T.check(k in got and close(got[k], v),
                    "%s{%s} = %s, fleet knows %s" % (name, k, got.get(k), v))


def total(smp, name):
    return sum(v for (n, _), v in smp.items() if n == name)


def test_demo(workdir, exp):
    seconds = 60 if os.environ.get("SHMETRICS_E2E_LONG") == "1" else 20
    copy_rules(SOURCE, workdir, short_for=False)
    prom = start_prometheus(workdir, exp.port)
    fleet = start_fleet(workdir)
    started = time.monotonic()
    try:
        have = wait_until(lambda: len(families_with_samples(
            exporter_samples(exp))) == 23, 15, 0.25)
        T.check(have, "all 23 families have a sample within 15 s: "
                "missing %s" % sorted(set(FAMILIES) - families_with_samples(
                    exporter_samples(exp))))
        ever = set()
        while time.monotonic() - started < seconds:
            for name, state in alerts(prom).items():
                ever.add((name, state))
            time.sleep(0.5)
        # the last evaluations included
        time.sleep(2)
        for name, state in alerts(prom).items():
            ever.add((name, state))
        T.check(not ever, "alerts pending or firing in a default run: %s"
                % sorted(ever))
        rules = get_json(prom.port, "/api/v1/rules")["data"]["groups"]
        T.check(all(r["health"] == "ok" for g in rules for r in g["rules"]),
                "every rule evaluates")
        # hold the fleet: its status and the exporter describe one instant
        fleet.proc.send_signal(signal.SIGUSR1)
        status = wait_until(lambda: (read_status(fleet.status) or {}).get(
            "held") and read_status(fleet.status), 10, 0.1)
        T.check(status, "the fleet holds and writes its status")
        if status:
            # A page that gets its first write is seen up to 100 ms late
            # (the reader caches which pages hold data): read until the
            # counters agree or 5 s pass, so a busy machine cannot fail it.
            def counts_agree():
                s = exporter_samples(exp)
                n = status["counts"]
                return s if total(s, "campaign_calls_failed_total") == \
                    n["calls_failed"] and total(
                        s, "webhook_delivered_total") == n["delivered"] \
                    else None
            smp = wait_until(counts_agree, 5, 0.1) or exporter_samples(exp)
            print("status:", json.dumps(status["counts"]), flush=True)
            compare_gauges(smp, status)
            n = status["counts"]
            T.check(status["workers_alive"] == 3 and
                    status["engines_alive"] == 2, "all children alive")
            T.check(n["events_dropped"] == 0, "no event dropped")
            T.check(status["gauges"]["webhook_queue_size"] <
                    status["queue_cap"] / 10,
                    "queue well below its cap: %s"
                    % status["gauges"]["webhook_queue_size"])
            for fam, want in (
                    ("campaign_calls_initiated_total", n["calls_initiated"]),
                    ("campaign_calls_failed_total", n["calls_failed"]),
                    ("campaign_calls_completed_total", n["calls_completed"]),
                    ("webhook_delivered_total", n["delivered"]),
                    ("webhook_failed_total", n["failed_attempts"]),
                    ("webhook_retry_attempts_total", n["retries"]),
                    ("webhook_worker_processed_total", n["deliveries"]),
                    ("webhook_dead_letter_total",
                     n["dead_letters"] + n["events_dropped"])):
                T.check(total(smp, fam) == want, "%s = %s, fleet counted %s"
                        % (fam, total(smp, fam), want))
            T.check(n["calls_completed"] > 0 and n["delivered"] > 0,
                    "the fleet did work")
    finally:
        fleet.stop()
        prom.stop()
    final = read_status(fleet.status)
    T.check(final and final["final"], "a final status at exit")


def main():
    if not shutil.which("prometheus"):
        print("prometheus not installed")
        sys.exit(77)
    ctl(BUILD, SEGMENT, "destroy")
    workdir = tempfile.mkdtemp(prefix="shmetrics-alerts-")
    exp = Exporter(BUILD, SEGMENT)
    try:
        {"worker-down": test_worker_down, "alertmanager": test_alertmanager,
         "demo": test_demo}[MODE](workdir, exp)
    finally:
        exp.stop()
        ctl(BUILD, SEGMENT, "destroy")
        if T.items:
            for log in sorted(os.listdir(workdir)):
                if log.endswith(".log"):
                    print("==", log)
                    print(open(os.path.join(workdir, log),
                               errors="replace").read()[-3000:])
        shutil.rmtree(workdir, ignore_errors=True)
    T.exit()


if __name__ == "__main__":
    main()
