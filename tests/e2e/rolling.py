#!/usr/bin/python3
"""A rolling deploy under a real Prometheus (docs/DESIGN.md, "Shapes
across releases").

Release 1 counts deploy_requests_total{route} and observes
deploy_seconds{route} with buckets 0.1, 1; release 2 changed both:
deploy_requests_total{route,status}, deploy_seconds{route,region} with
buckets 0.05, 0.5, 5.  Four processes of each write at once for
ROLLING_SECONDS (default 60) while Prometheus scrapes every second: the
releases start ten seconds apart, as a deploy replaces processes, and each
process reports what it counted.  Then:
  - sum(increase(...)) over the deploy, at the last scrape, equals what
    both releases counted, exactly, for the counter and for the histogram's
    count (each series is scraped at 0 before it counts, so Prometheus
    extrapolates nothing);
  - up stayed 1: no failed scrape;
  - every page fetched during the deploy passes promtool check metrics
    (text) and prometheus_client's OpenMetrics parser, and shows one
    family per name with the newest release's HELP.

usage: rolling.py BUILD_DIR
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request
import json

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ctl, curl, Exporter, Failures, free_port, start_prometheus, wait_until)  # noqa

BUILD = sys.argv[1]
SEGMENT = "/shmet-e2e-rolling-%d" % os.getpid()
SECONDS = float(os.environ.get("ROLLING_SECONDS", "60"))
T = Failures()

RELEASE = textwrap.dedent('''
    import os, random, sys, time
    import shmetrics
    release, seconds = int(sys.argv[1]), float(sys.argv[2])
    if release == 1:
        c = shmetrics.Counter('deploy_requests', 'Requests (release 1)',
                              ['route'])
        h = shmetrics.Histogram('deploy_seconds', 'Latency (release 1)',
                                ['route'], buckets=(0.1, 1))
        cs = [c.labels(r) for r in ('/a', '/b')]
        hs = [h.labels(r) for r in ('/a', '/b')]
    else:
        c = shmetrics.Counter('deploy_requests', 'Requests (release 2)',
                              ['route', 'status'])
        h = shmetrics.Histogram('deploy_seconds', 'Latency (release 2)',
                                ['route', 'region'], buckets=(0.05, 0.5, 5))
        cs = [c.labels(r, s) for r in ('/a', '/b') for s in ('200', '500')]
        hs = [h.labels(r, g) for r in ('/a', '/b') for g in ('eu', 'us')]
    print('ready', flush=True)
    time.sleep(2.5)             # scraped at 0 first: nothing extrapolated
    n = obs = 0
    end = time.monotonic() + seconds
    rnd = random.Random(os.getpid())
    while time.monotonic() < end:
        k = rnd.randrange(1, 4)
        rnd.choice(cs).inc(k)
        n += k
        rnd.choice(hs).observe(rnd.random() * 2)
        obs += 1
        time.sleep(0.002)
    print(n, obs, flush=True)
''')


class Prometheus:
    def __init__(self, exporter_port, workdir):
        port = free_port()
        cfg = os.path.join(workdir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: shmetrics\n"
                    "    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % exporter_port)
        self.proc = start_prometheus(workdir, cfg, port)
        self.port = port

    def query(self, expr, at=None):
        params = {"query": expr}
        if at is not None:
            params["time"] = "%.3f" % at
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (
            self.port, urllib.parse.urlencode(params))
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = json.loads(r.read())
        except (OSError, ValueError):
            return None
        return body["data"]["result"] if body.get("status") == "success" \
            else None

    def scalar(self, expr, at=None):
        res = self.query(expr, at)
        return float(res[0]["value"][1]) if res else None


def start(release):
    env = dict(os.environ, SHMETRICS_SEGMENT=SEGMENT,
               PYTHONPATH=os.path.join(BUILD, "python"))
    p = subprocess.Popen([sys.executable, "-c", RELEASE, str(release),
                          str(SECONDS - 10)],
                         stdout=subprocess.PIPE, text=True, env=env)
    T.check(p.stdout.readline().strip() == "ready",
            "release %d process did not start" % release)
    return p


def check_page(exporter):
    from prometheus_client.openmetrics.parser import \
        text_string_to_metric_families as om_parse
    text = curl(exporter.url("/metrics"))[2]
    r = subprocess.run(["promtool", "check", "metrics"],
                       input=text.decode(), capture_output=True, text=True)
    T.check(r.returncode == 0, "promtool: %s%s" % (r.stdout, r.stderr))
    page = text.decode()
    T.check(page.count("# TYPE deploy_requests_total counter") <= 1 and
            page.count("# TYPE deploy_seconds histogram") <= 1,
            "one TYPE line per family")
    om = curl(exporter.url("/metrics"), "-H",
              "Accept: application/openmetrics-text; version=1.0.0")[2]
    try:
        names = [f.name for f in om_parse(om.decode())]
        T.check(len(names) == len(set(names)), "OpenMetrics families once")
    except ValueError as e:
        T.check(False, "OpenMetrics parser: %s" % e)


def main():
    work = tempfile.mkdtemp(prefix="shmet-rolling-")
    ctl(BUILD, SEGMENT, "destroy")
    T.check(ctl(BUILD, SEGMENT, "create").returncode == 0, "create")
    exporter = Exporter(BUILD, SEGMENT)
    prom = Prometheus(exporter.port, work)
    procs = []
    try:
        T.check(wait_until(lambda: prom.scalar('up') == 1, 30), "up")
        procs += [(1, start(1)) for _ in range(4)]
        time.sleep(10)                  # the deploy: release 2 arrives
        procs += [(2, start(2)) for _ in range(4)]
        pages = 0
        while any(p.poll() is None for _, p in procs):
            check_page(exporter)
            pages += 1
            time.sleep(2)
        counted = obs = 0
        for _, p in procs:
            n, o = p.stdout.read().split()
            counted += int(n)
            obs += int(o)
            T.check(p.wait() == 0, "a release process failed")
        # the last scrape: after every process finished counting
        time.sleep(2.5)
        at = prom.scalar("max(timestamp(deploy_requests_total))")
        T.check(at is not None, "no samples")
        got = prom.scalar("sum(increase(deploy_requests_total[10m]))", at)
        T.check(got == counted, "sum(increase(requests)) = %s, counted %d"
                % (got, counted))
        got = prom.scalar("sum(increase(deploy_seconds_count[10m]))", at)
        T.check(got == obs, "sum(increase(seconds_count)) = %s, observed %d"
                % (got, obs))
        got = prom.scalar("sum(deploy_requests_total)", at)
        T.check(got == counted, "sum(requests) = %s, counted %d"
                % (got, counted))
        T.check(prom.scalar('min_over_time(up[10m])', at) == 1,
                "a scrape failed")
        n1 = prom.scalar('count(deploy_requests_total{status=""})', at)
        n2 = prom.scalar('count(deploy_requests_total{status!=""})', at)
        T.check(n1 == 2 and n2 == 4, "series of both releases: %s, %s"
                % (n1, n2))
        page = curl(exporter.url("/metrics"))[2].decode()
        T.check("# HELP deploy_requests_total Requests (release 2)" in page,
                "the newest release's help")
        print("rolling: %d increments, %d observations, %d pages checked"
              % (counted, obs, pages))
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
        prom.proc.stop()
        exporter.stop()
        ctl(BUILD, SEGMENT, "destroy")
    T.exit()


main()
