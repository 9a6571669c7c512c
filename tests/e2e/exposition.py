#!/usr/bin/python3
"""Rendered expositions against golden files and independent validators.

golden-writer writes a deterministic segment; `shmetrics-ctl dump` renders
it in every format.  Each output must equal its golden file in tests/data/
(SHMETRICS_UPDATE_GOLDEN=1 rewrites them), pass `promtool check metrics`,
and parse with prometheus_client's text and OpenMetrics parsers and Python's
json module to exactly the values golden-writer wrote.

usage: exposition.py BUILD_DIR SOURCE_DIR
"""
import json
import math
import os
import re
import subprocess
import sys

from prometheus_client.openmetrics.parser import \
    text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

BUILD, SOURCE = sys.argv[1], sys.argv[2]
SEGMENT = "/shmet-expo-%d" % os.getpid()
CTL = os.path.join(BUILD, "tools", "shmetrics-ctl")
failures = []

NASTY_1 = (("campaign_id", 'q"uo\\te\nline'), ("user_id", ""))
NASTY_2 = (("campaign_id", "ünïcödé ✓ 日本"), ("user_id", "tab\there"))
ABC = (("campaign_id", "abc123"), ("user_id", "user456"))
# (sample name, labels) -> value, as golden-writer wrote them
EXPECTED = {
    ("campaign_calls_initiated_total", ABC): 145,
    ("campaign_calls_initiated_total",
     (("campaign_id", "xyz789"), ("user_id", "user456"))): 89,
    ("campaign_calls_initiated_total", NASTY_1): 1,
    # an add of 2^64 - 1 counts in the float cell (no wrap at 2^64)
    ("campaign_calls_initiated_total", NASTY_2): float(2 ** 64),
    ("campaign_cost_total", ABC): 3.3000000000000003,
    ("odd_values", (("value", "nan"),)): math.nan,
    ("odd_values", (("value", "pinf"),)): math.inf,
    ("odd_values", (("value", "ninf"),)): -math.inf,
    ("odd_values", (("value", "tiny"),)): 5e-324,
    ("odd_values", (("value", "small"),)): 1e-300,
    ("odd_values", (("value", "huge"),)): 1.7976931348623157e308,
    ("odd_values", (("value", "tenth"),)): 0.1,
    ("odd_values", (("value", "third"),)): 1.0 / 3,
    ("odd_values", (("value", "big_int"),)): 9007199254740992,
    ("odd_values", (("value", "million"),)): 1e6,
    ("odd_values", (("value", "neg"),)): -42.5,
    ("webhook_queue_size", ()): 17,
    ("plain_events_total", ()): 7,
    ("webhook_delivery_latency_seconds_bucket",
     (("partner_id", "p1"), ("le", "0.5"))): 4,
    ("webhook_delivery_latency_seconds_bucket",
     (("partner_id", "p1"), ("le", "+Inf"))): 6,
    ("webhook_delivery_latency_seconds_count", (("partner_id", "p1"),)): 6,
    ("webhook_delivery_latency_seconds_sum", (("partner_id", "p1"),)):
        0.001 + 0.05 + 0.3 + 0.3 + 7 + 2e6,
    ("webhook_delivery_latency_seconds_count", (("partner_id", "p2"),)): 0,
}


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def same(a, b):
    if isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    return a == b or (isinstance(a, float) and isinstance(b, (int, float))
                      and abs(a - b) <= 1e-9 * max(1.0, abs(b)))


def dump(fmt, raw=True):
    """The renderers' bytes (--raw, as the exporter serves them); without
    --raw, what a terminal may act on is escaped (escapes.py tests it)."""
    out = subprocess.run([CTL, "--segment", SEGMENT, "dump", "--format", fmt]
                         + (["--raw"] if raw else []),
                         check=True, capture_output=True)
    return out.stdout.decode("utf-8")


def golden(fmt, text):
    path = os.path.join(SOURCE, "tests", "data", "dump." + fmt)
    if fmt == "json":
        text = re.sub(r'"timestamp": "[^"]*"', '"timestamp": "T"', text)
    if os.environ.get("SHMETRICS_UPDATE_GOLDEN") == "1":
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    with open(path, encoding="utf-8") as f:
        if f.read() != text:
            fail("%s differs from %s (SHMETRICS_UPDATE_GOLDEN=1 to accept)"
                 % (fmt, path))


def check_samples(fmt, families, le_key=lambda le: le):
    got = {}
    for fam in families:
        for s in fam.samples:
            labels = tuple((k, le_key(v) if k == "le" else v)
                           for k, v in s.labels.items())
            got[(s.name, labels)] = s.value
    for key, want in EXPECTED.items():
        # the parsers keep label order; compare as sets
        match = [v for k, v in got.items()
                 if k[0] == key[0] and set(k[1]) == set(key[1])]
        if len(match) != 1 or not same(match[0], want):
            fail("%s: %s %r = %r, want %r" % (fmt, key[0], key[1],
                                             match, want))


def main():
    subprocess.run([os.path.join(BUILD, "tests", "golden-writer"), SEGMENT],
                   check=True)
    try:
        text, om = dump("text"), dump("openmetrics")
        js, health = dump("json"), dump("health")
        for fmt, out in (("text", text), ("openmetrics", om), ("json", js),
                         ("health", health)):
            golden(fmt, out)
        # the default dump differs from the bytes only in the one control
        # character golden-writer's labels hold: a tab, shown as \t
        for fmt, out in (("text", text), ("openmetrics", om)):
            want = out.replace('"tab\there"', '"tab\\there"')
            if out.count("\t") != 1 or dump(fmt, raw=False) != want:
                fail("%s: the default dump is not the bytes with the tab "
                     "escaped" % fmt)
        for fmt, out in (("json", js), ("health", health)):
            if re.sub(r'"timestamp": "[^"]*"', "", dump(fmt, raw=False)) \
                    != re.sub(r'"timestamp": "[^"]*"', "", out):
                fail("%s: the default dump differs from the bytes" % fmt)
        for fmt, out in (("text", text),):
            r = subprocess.run(["promtool", "check", "metrics"], input=out,
                               capture_output=True, text=True)
            if r.returncode != 0:
                fail("promtool check metrics (%s): %s%s"
                     % (fmt, r.stdout, r.stderr))
        check_samples("text", parse_text(text))
        # OpenMetrics le is canonical (1.0, 1e+06); map back for lookup.
        check_samples("openmetrics", parse_openmetrics(om),
                      lambda le: {"1.0": "1", "1e+06": "1000000"}.get(le, le))
        doc = json.loads(js)
        if set(doc) != {"timestamp", "metrics", "registry"}:
            fail("json keys: %s" % sorted(doc))
        m = doc["metrics"]
        for key, want in (
                ("campaign_calls_initiated_total{campaign_id=abc123,"
                 "user_id=user456}", 145),
                ("odd_values{value=nan}", "NaN"),
                ("odd_values{value=pinf}", "+Inf"),
                ("webhook_queue_size", 17),
                ("webhook_delivery_latency_seconds_bucket{partner_id=p1,"
                 "le=+Inf}", 6),
                ("campaign_calls_initiated_total{campaign_id=ünïcödé ✓ 日本,"
                 "user_id=tab\there}", 1.8446744073709552e+19)):
            if m.get(key) != want:
                fail("json %s = %r, want %r" % (key, m.get(key), want))
        h = json.loads(health)
        if h["status"] != "healthy" or h["metric_families"] != 7:
            fail("health: %s" % health)
        # Each count says what it counts, and is that: metric_families the
        # families on the page (# TYPE lines), total_metrics their series
        # (label sets: a histogram's lines share one), fewer than the
        # sample entries of /metrics/json; the segment's records are named
        # records (its 2 collector declarations take 2 more).
        types = [ln for ln in text.splitlines() if ln.startswith("# TYPE ")]
        series = {(f.name, frozenset((k, v) for k, v in x.labels.items()
                                     if k != "le"))
                  for f in parse_text(text) for x in f.samples}
        if h["metric_families"] != len(types):
            fail("metric_families %d, the page has %d families"
                 % (h["metric_families"], len(types)))
        if h["total_metrics"] != len(series) or \
                h["total_metrics"] >= len(m):
            fail("total_metrics %d: %d series on the page, %d json entries"
                 % (h["total_metrics"], len(series), len(m)))
        if set(h.get("definitions", {})) != {"metric_families",
                                             "total_metrics"}:
            fail("health defines its counts: %s" % h.get("definitions"))
        seg = h["segment"]
        if "families_used" in seg or seg.get("family_records_used") != \
                h["metric_families"] + len(h["collectors"]):
            fail("segment family records: %s" % seg)
    finally:
        subprocess.run([CTL, "--segment", SEGMENT, "destroy"])
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
