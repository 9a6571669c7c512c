#!/usr/bin/python3
"""Exemplars across processes, end to end (layout 6, writer/exemplar.c).

Two writer processes (tests/exemplar-writer) store exemplars into one
counter series and one histogram; the exporter serves them; a real
Prometheus (Debian's, started here with --enable-feature=exemplar-storage)
scrapes the OpenMetrics page, and /api/v1/query_exemplars returns the
exemplars of both processes for the histogram and for the counter.

Every page along the way: prometheus_client's OpenMetrics parser accepts
it and reads the exemplars the test wrote (value, bucket, trace id); the
text 0.0.4 page has no exemplar and promtool check metrics is clean on it.

usage: exemplars.py BUILD_DIR
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (curl, Exporter, Failures, get_json, parse_openmetrics,  # noqa
                     parse_text, start_prometheus, wait_until)

BUILD = sys.argv[1]
SEGMENT = "/shmet-ex-e2e-%d" % os.getpid()
T = Failures()


def port_in_range(lo=19100, hi=19199, avoid=()):
    """A free loopback port of this test's range (SHMETRICS_TEST_PORTS
    overrides it as LO-HI)."""
    rng = os.environ.get("SHMETRICS_TEST_PORTS")
    if rng:
        lo, hi = (int(x) for x in rng.split("-"))
    for p in range(lo, hi + 1):
        if p in avoid:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
            return p
    raise RuntimeError("no free port in %d-%d" % (lo, hi))


class ExemplarWriter:
    def __init__(self):
        self.proc = subprocess.Popen(
            [os.path.join(BUILD, "tests", "exemplar-writer"), SEGMENT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline() != "ready\n":
            raise RuntimeError("exemplar-writer did not start")

    def write(self, what, trace, value):
        self.proc.stdin.write("%s %s %r\n" % (what, trace, value))
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(10)


def pages(exporter):
    """(OpenMetrics page, text page) as strings."""
    _, h1, om = curl(exporter.url("/metrics"), "-H",
                     "Accept: application/openmetrics-text; version=1.0.0")
    _, h2, text = curl(exporter.url("/metrics"), "-H",
                       "Accept: text/plain; version=0.0.4")
    T.check("openmetrics" in h1.get("content-type", ""),
            "OpenMetrics negotiated: %s" % h1.get("content-type"))
    T.check("text/plain" in h2.get("content-type", ""), "text negotiated")
    return om.decode(), text.decode()


def om_exemplars(om):
    """{(sample name, le or None): (trace_id, value)} parsed by
    prometheus_client's OpenMetrics parser (which must accept the page)."""
    out = {}
    try:
        for fam in parse_openmetrics(om):
            for s in fam.samples:
                if s.exemplar:
                    out[(s.name, s.labels.get("le"))] = (
                        s.exemplar.labels.get("trace_id"), s.exemplar.value)
    except Exception as e:   # noqa: the parser raises ValueError and others
        T.check(False, "prometheus_client refused the OpenMetrics page: "
                "%r\n%s" % (e, om))
    return out


def check_text(text, workdir):
    T.check("# {" not in text and "trace_id" not in text,
            "no exemplar on the text page")
    list(parse_text(text))      # raises if prometheus_client refuses it
    path = os.path.join(workdir, "page.txt")
    with open(path, "w") as f:
        f.write(text)
    with open(path) as f:
        r = subprocess.run(["promtool", "check", "metrics"], stdin=f,
                           capture_output=True, text=True)
    T.check(r.returncode == 0 and r.stdout.strip() == "" and
            r.stderr.strip() == "",
            "promtool check metrics clean: %r %r" % (r.stdout, r.stderr))


def check_pages(exporter, workdir, want):
    om, text = pages(exporter)
    ex = om_exemplars(om)
    for key, val in want.items():
        T.check(ex.get(key) == val, "page exemplar %s: %s, want %s"
                % (key, ex.get(key), val))
    check_text(text, workdir)


def query_exemplars(prom_port, expr):
    """{trace_id: value} Prometheus stored for expr's series."""
    now = time.time()
    r = get_json(prom_port, "/api/v1/query_exemplars", query=expr,
                 start="%.3f" % (now - 600), end="%.3f" % (now + 60))
    out = {}
    if not r or r.get("status") != "success":
        return out
    for series in r["data"]:
        for e in series["exemplars"]:
            out[e["labels"].get("trace_id")] = float(e["value"])
    return out


def wait_stored(prom_port, expr, trace, value):
    ok = wait_until(lambda: query_exemplars(prom_port, expr).get(trace)
                    == value, 30, 0.25)
    return T.check(ok, "Prometheus stored %s=%s for %s: %s" % (
        trace, value, expr, query_exemplars(prom_port, expr)))


def main():
    workdir = tempfile.mkdtemp(prefix="shmet-ex-e2e-", dir="/tmp")
    writers = []
    exporter = prom = None
    try:
        a, b = ExemplarWriter(), ExemplarWriter()
        writers = [a, b]
        exporter = Exporter(BUILD, SEGMENT, port=port_in_range())
        # one process writes each; both go into the segment
        T.check(a.write("h", "trace-a-h", 0.25) == "ok 0", "a observes")
        T.check(a.write("c", "trace-a-c", 2) == "ok 0", "a counts")
        check_pages(exporter, workdir, {
            ("e2e_calls_total", None): ("trace-a-c", 2.0),
            ("e2e_setup_seconds_bucket", "0.5"): ("trace-a-h", 0.25)})

        prom_port = port_in_range(avoid=(exporter.port,))
        cfg = os.path.join(workdir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: shmetrics
    static_configs:
      - targets: ['127.0.0.1:%d']
""" % exporter.port)
        prom = start_prometheus(workdir, cfg, prom_port,
                                ["--enable-feature=exemplar-storage"])
        wait_stored(prom_port, "e2e_setup_seconds_bucket", "trace-a-h", 0.25)
        wait_stored(prom_port, "e2e_calls_total", "trace-a-c", 2.0)

        # the other process: a slower call in another bucket, and the
        # counter's next exemplar (one slot per series: it replaces a's)
        T.check(b.write("h", "trace-b-h", 7.5) == "ok 0", "b observes")
        T.check(b.write("c", "trace-b-c", 1) == "ok 0", "b counts")
        check_pages(exporter, workdir, {
            ("e2e_calls_total", None): ("trace-b-c", 1.0),
            ("e2e_setup_seconds_bucket", "0.5"): ("trace-a-h", 0.25),
            ("e2e_setup_seconds_bucket", "10.0"): ("trace-b-h", 7.5)})
        wait_stored(prom_port, "e2e_setup_seconds_bucket", "trace-b-h", 7.5)
        wait_stored(prom_port, "e2e_calls_total", "trace-b-c", 1.0)
        # both processes' exemplars, for the histogram and the counter
        hist = query_exemplars(prom_port, "e2e_setup_seconds_bucket")
        ctr = query_exemplars(prom_port, "e2e_calls_total")
        print("query_exemplars: histogram %s, counter %s" % (hist, ctr))
        T.check(hist.get("trace-a-h") == 0.25 and
                hist.get("trace-b-h") == 7.5,
                "histogram exemplars of both processes: %s" % hist)
        T.check(ctr.get("trace-a-c") == 2.0 and ctr.get("trace-b-c") == 1.0,
                "counter exemplars of both processes: %s" % ctr)
        # and the counts under them: 3 calls, 2 observations
        r = get_json(prom_port, "/api/v1/query", query="e2e_calls_total")
        T.check(r and r["data"]["result"] and
                float(r["data"]["result"][0]["value"][1]) == 3.0,
                "e2e_calls_total is 3: %s" % r)
    finally:
        if prom:
            prom.stop()
        if exporter:
            exporter.stop()
        for w in writers:
            w.stop()
        subprocess.run([os.path.join(BUILD, "tools", "shmetrics-ctl"),
                        "--segment", SEGMENT, "destroy"], capture_output=True)
    T.exit()


main()
