#!/usr/bin/python3
"""Segment text on a terminal: shmetrics-ctl dump and shmetrics-top.

tests/hostile-writer puts in a help text and label values what a terminal
acts on (OSC 0 title, CSI 2J, OSC 52 clipboard, CR, C1 CSI, tab, DEL, a
newline) and, for contrast, a value whose own text is backslash-x-1-b.

  bytes    every output of `shmetrics-ctl dump` (each format) and of
           `shmetrics-top --once` and `--json` holds no C0 byte but \\n,
           no DEL and no C1 (U+0080-U+009F)
  exact    the text outputs show each value and the help text escaped
           exactly as tools/escape.h spells them, with each value's count;
           a value's own backslash shows as \\\\ so \\x1b is unambiguous
  json     the JSON outputs decode to the very values written (escaping
           there is JSON's, lossless)
  raw      `dump --raw` gives the exposition's bytes unchanged

usage: escapes.py BUILD_DIR
"""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ctl, Failures  # noqa

BUILD = sys.argv[1]
TOP = os.path.join(BUILD, "tools", "shmetrics-top")
SEGMENT = "/wt-tools-escapes-%d" % os.getpid()
T = Failures()

# tests/hostile-writer.c's values (count i + 1) and how the text outputs
# must show them inside v="...": written out, not computed, so that the
# spelling itself is what is tested.
VALUES = [
    ("title\x1b]0;pwned-title\x07", r"title\x1b]0;pwned-title\x07"),
    ("clear\x1b[2J", r"clear\x1b[2J"),
    ("clip\x1b]52;c;cHduZWQ=\x07", r"clip\x1b]52;c;cHduZWQ=\x07"),
    ("AAAA\rBB", r"AAAA\rBB"),
    ("csi\u009b31m", r"csi\xc2\x9b31m"),
    ("tab\tdel\x7f", r"tab\tdel\x7f"),
    ("lit\\x1b", r"lit\\x1b"),
    ("nl\nx", r"nl\nx"),
]
HELP = (r"help \x1b]0;pwned-title\x07 and \x1b[2J and \xc2\x9b31m and "
        r"\\ end")
# a C0 byte other than \n, DEL, or a C1 code point in UTF-8
UNSAFE = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")


def run(*args):
    r = subprocess.run(list(args), capture_output=True, timeout=30)
    T.check(r.returncode == 0 and r.stderr == b"",
            "%s: exit %d %r" % (" ".join(args[1:]), r.returncode, r.stderr))
    return r.stdout


def check_bytes(what, out):
    bad = UNSAFE.findall(out)
    T.check(out and not bad, "%s: unsafe bytes %r" % (what, bad[:5]))


def dump(fmt, *args):
    return run(os.path.join(BUILD, "tools", "shmetrics-ctl"), "--segment",
               SEGMENT, "dump", "--format", fmt, *args)


def test_dump():
    for fmt in ("text", "openmetrics", "json", "health"):
        check_bytes("dump --format " + fmt, dump(fmt))
    text = dump("text").decode().split("\n")
    T.check("# HELP hostile_total " + HELP in text,
            "dump: the help line, escaped: %r" % text[:1])
    for i, (_, shown) in enumerate(VALUES):
        line = 'hostile_total{v="%s"} %d' % (shown, i + 1)
        T.check(line in text, "dump: %r in %r" % (line, text))
    om = dump("openmetrics").decode().split("\n")
    T.check("# HELP hostile " + HELP in om,
            "dump openmetrics: the help line: %r" % om[:1])
    for i, (_, shown) in enumerate(VALUES):
        line = 'hostile_total{v="%s"} %d' % (shown, i + 1)
        T.check(line in om, "dump openmetrics: %r in %r" % (line, om))
    # JSON: the keys decode to the values written (a key escapes
    # \ , = } of a value with a backslash)
    metrics = json.loads(dump("json"))["metrics"]
    want = {}
    for i, (raw, _) in enumerate(VALUES):
        key = re.sub(r"([\\,=}])", r"\\\1", raw)
        want["hostile_total{v=%s}" % key] = i + 1
    T.check(metrics == want, "dump json: %r, want %r" % (metrics, want))
    raw = dump("text", "--raw").decode().split("\n")  # not at \r
    T.check('hostile_total{v="title\x1b]0;pwned-title\x07"} 1' in raw and
            'hostile_total{v="AAAA\rBB"} 4' in raw,
            "dump --raw: the bytes as served: %r" % raw)


def test_top():
    once = run(TOP, "--segment", SEGMENT, "--once", "-d", "0.05")
    check_bytes("top --once", once)
    rows = {}
    for ln in once.decode().split("\n")[3:-1]:     # [-1]: after the last \n
        m = re.match(r"(\S+)\s+counter\s+1\s+(\d+)\s", ln)
        if T.check(m, "top --once row %r" % ln):
            rows[m.group(1)] = int(m.group(2))
    want = {'hostile_total{v="%s"}' % shown: i + 1
            for i, (_, shown) in enumerate(VALUES)}
    T.check(rows == want, "top --once rows: %r, want %r" % (rows, want))
    js = run(TOP, "--segment", SEGMENT, "--json", "-d", "0.05")
    check_bytes("top --json", js)
    got = {r["labels"]["v"]: r["value"] for r in json.loads(js)["rows"]}
    want = {raw: i + 1 for i, (raw, _) in enumerate(VALUES)}
    T.check(got == want, "top --json: %r, want %r" % (got, want))


def main():
    w = subprocess.run([os.path.join(BUILD, "tests", "hostile-writer"),
                        SEGMENT])
    T.check(w.returncode == 0, "hostile-writer")
    try:
        test_dump()
        test_top()
    finally:
        ctl(BUILD, SEGMENT, "destroy")
    T.exit()


main()
