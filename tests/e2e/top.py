#!/usr/bin/python3
"""shmetrics-top end to end (issue 14).

  once/json   golden-writer's segment (NaN, infinities, nasty labels,
              histograms): every row of --once and --json equals the
              sample `shmetrics-ctl dump` prints; histogram quantiles equal
              histogram_quantile computed here from the dump's buckets;
              --fold sums, --sort value orders, --filter filters
  tmux        the demo fleet held (SIGUSR1) while shmetrics-top starts in a
              detached tmux session of fixed size, resumed for a few
              seconds, held again: keys fold, sort, filter (and an invalid
              regex), pause, help and quit; the screen shows each
              counter's value equal to the fleet's status file, a rate of 0
              over an interval in which the fleet was held, and a rate
              since start that times the elapsed time gives exactly what
              the fleet did; after q the terminal is the shell's again
  hostile     tests/hostile-writer's label values (escape sequences, a
              \\r) in the tmux view: each row whole, escaped; the pane
              title unchanged
  follow      a tiny terminal, then resized; no segment yet (waiting),
              created, destroyed and recreated (followed), then replaced by
              garbage (a clear message); q exits 0

No wall-clock durations are asserted: only values, and bounded waits.
usage: top.py BUILD_DIR
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ctl, Failures, read_status, samples, wait_until, Writer)  # noqa

BUILD = sys.argv[1]
TOP = os.path.join(BUILD, "tools", "shmetrics-top")
FLEET = os.path.join(BUILD, "tools", "shmetrics-fleet")
PID = os.getpid()
T = Failures()


def top(*args):
    return subprocess.run([TOP, *args], capture_output=True, text=True,
                          timeout=30)


def quantile(q, bounds, counts):
    """Prometheus histogram_quantile over non-cumulative counts."""
    total = sum(counts)
    if total == 0:
        return None
    rank, cum = q * total, 0
    for b, bound in enumerate(bounds):
        if cum + counts[b] >= rank:
            if b == 0 and bound <= 0:
                return bound
            lower = 0 if b == 0 else bounds[b - 1]
            if counts[b] == 0:
                return bound
            return lower + (bound - lower) * (rank - cum) / counts[b]
        cum += counts[b]
    return bounds[-1]


def same(a, b):
    if a is None or b is None:
        return a is None and b is None
    if a != a or b != b:
        return a != a and b != b
    return a == b or abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def histograms(smp):
    """{(name, labels): (bounds, counts)} from a dump's _bucket samples."""
    out = {}
    for (name, labels), v in smp.items():
        if not name.endswith("_bucket"):
            continue
        d = dict(labels)
        le = float(d.pop("le"))
        out.setdefault((name[:-7], frozenset(d.items())), []).append((le, v))
    res = {}
    for k, pts in out.items():
        pts.sort()
        bounds = [le for le, _ in pts if le != float("inf")]
        cum = [v for _, v in pts]
        counts = [cum[0]] + [cum[i] - cum[i - 1] for i in range(1, len(cum))]
        res[k] = (bounds, counts)
    return res


def test_once_json():
    seg = "/shmet-e2e-top-golden-%d" % PID
    r = subprocess.run([os.path.join(BUILD, "tests", "golden-writer"), seg])
    T.check(r.returncode == 0, "golden-writer")
    try:
        # titles as both tools show them (escaped alike), and the values
        # parsed from the exposition's bytes (--raw: a tab stays a tab)
        dump = ctl(BUILD, seg, "dump").stdout
        smp = samples(ctl(BUILD, seg, "dump", "--raw").stdout)
        lines = {}
        for line in dump.splitlines():
            if line and not line.startswith("#"):
                key, _, val = line.rpartition(" ")
                lines[key] = val
        hist = histograms(smp)

        # --once: titles and values as the exposition prints them
        r = top("--segment", seg, "--once", "-d", "0.05")
        T.check(r.returncode == 0 and r.stderr == "", "--once: %s" % r.stderr)
        rows = [ln for ln in r.stdout.splitlines()[3:] if ln]
        T.check(rows, "--once prints rows")
        seen = 0
        for ln in rows:
            m = re.match(r"(.*\S)\s+(counter|gauge|histogram)\s+\d+\s+"
                         r"(\S+)\s+(\S+)" + r"\s+\S+" * 5 + "$", ln)
            if not T.check(m, "--once row %r" % ln):
                continue
            title, typ, value, rate = m.group(1, 2, 3, 4)
            if typ == "histogram":
                name, brace, rest = title.partition("{")
                key = name + "_count" + brace + rest
            else:
                key = title
            if T.check(key in lines, "--once row %r is in the dump" % key):
                T.check(lines[key] == value, "--once %s = %s, dump says %s"
                        % (key, value, lines[key]))
                seen += 1
            T.check(typ == "gauge" or rate == "0.000",
                    "--once %s: a static segment's rate is 0 (%s)"
                    % (title, rate))
        T.check(seen == len(rows), "--once: %d of %d rows in the dump"
                % (seen, len(rows)))

        # --json: the same samples, by labels, and the quantiles
        r = top("--segment", seg, "--json", "-d", "0.05")
        T.check(r.returncode == 0, "--json exits 0: %s" % r.stderr)
        doc = json.loads(r.stdout)
        T.check(doc["segment"] == seg and doc["fill"]["series"][0] > 0,
                "--json header: %s" % doc["fill"])
        count = 0
        for row in doc["rows"]:
            labels = frozenset(row["labels"].items())
            val = row["value"]
            if isinstance(val, str):
                val = float(val.replace("Inf", "inf"))
            if row["type"] == "histogram":
                want = smp.get((row["name"] + "_count", labels))
                T.check(same(val, want), "--json %s%s count %s, dump %s"
                        % (row["name"], dict(labels), val, want))
                T.check(same(row["sum"], smp.get((row["name"] + "_sum",
                                                  labels))),
                        "--json %s sum" % row["name"])
                bounds, counts = hist[(row["name"], labels)]
                for q, k in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
                    T.check(same(row[k], quantile(q, bounds, counts)),
                            "--json %s%s %s = %s, histogram_quantile %s"
                            % (row["name"], dict(labels), k, row[k],
                               quantile(q, bounds, counts)))
            else:
                want = smp.get((row["name"], labels))
                T.check(same(val, want), "--json %s%s = %s, dump %s"
                        % (row["name"], dict(labels), val, want))
            count += 1
        T.check(count == len(rows), "--json and --once have the same rows")

        # --fold: a counter family's row is the sum of its samples
        r = top("--segment", seg, "--json", "--fold", "-d", "0.05")
        doc = json.loads(r.stdout)
        for row in doc["rows"]:
            if row["type"] == "counter":
                want = sum(v for (n, _), v in smp.items() if n == row["name"])
                T.check(same(row["value"], want), "--fold %s = %s, sum %s"
                        % (row["name"], row["value"], want))
        # --sort value: non-increasing, rows without a figure last
        r = top("--segment", seg, "--json", "--sort", "value", "-d", "0.05")
        vals = [float(str(row["value"]).replace("Inf", "inf"))
                for row in json.loads(r.stdout)["rows"]]
        nums = [v for v in vals if v == v]
        T.check(nums == sorted(nums, reverse=True) and
                vals[:len(nums)] == nums, "--sort value orders: %s" % vals)
        # --filter: only matching rows
        r = top("--segment", seg, "--json", "--filter", "_total", "-d",
                "0.05")
        names = {row["name"] for row in json.loads(r.stdout)["rows"]}
        T.check(names and all("_total" in n for n in names),
                "--filter _total: %s" % sorted(names))
    finally:
        ctl(BUILD, seg, "destroy")


class Tmux:
    """One detached session on a private server, of a fixed size."""

    def __init__(self, cols, lines, command):
        self.base = ["tmux", "-L", "shmet-top-%d" % PID, "-f", "/dev/null"]
        # the shell prints top's exit status and keeps the pane open
        script = "%s; echo top-exit $?; sleep 120" % command
        subprocess.run(self.base + ["new-session", "-d", "-s", "t", "-x",
                                    str(cols), "-y", str(lines), script],
                       check=True, env=dict(os.environ, TERM="xterm"))

    def keys(self, *keys):
        subprocess.run(self.base + ["send-keys", "-t", "t", *keys],
                       check=True)

    def screen(self):
        return subprocess.run(self.base + ["capture-pane", "-p", "-t", "t"],
                              capture_output=True, text=True).stdout

    def wait(self, pattern, timeout=10):
        return wait_until(lambda: re.search(pattern, self.screen(), re.M),
                          timeout, 0.1)

    def resize(self, cols, lines):
        subprocess.run(self.base + ["resize-window", "-t", "t", "-x",
                                    str(cols), "-y", str(lines)])

    def close(self):
        subprocess.run(self.base + ["kill-server"], capture_output=True)




def held_status(fleet, path):
    fleet.send_signal(signal.SIGUSR1)
    return wait_until(lambda: (read_status(path) or {}).get("held") and
                      read_status(path), 10, 0.1)


def rows_of(screen):
    """{family: (value, rate, rate since start)} of a folded screen."""
    out = {}
    for ln in screen.splitlines():
        m = re.match(r"(\S+) \(\d+\)\s+[cgh]\s+(\S+)\s+(\S+)\s+(\S+)", ln)
        if m:
            out[m.group(1)] = m.group(2, 3, 4)
    return out


def number(text):
    mult = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    if text and text[-1] in mult:
        return float(text[:-1]) * mult[text[-1]]
    return float(text)


def test_tmux(workdir):
    seg = "/shmet-e2e-top-fleet-%d" % PID
    status = os.path.join(workdir, "status.json")
    fleet = subprocess.Popen([FLEET, "--segment", seg, "--status", status,
                              "--quiet", "--duration", "120"])
    tm = None
    try:
        T.check(wait_until(lambda: read_status(status), 15, 0.1),
                "the fleet writes its status")
        time.sleep(1)
        first = held_status(fleet, status)
        T.check(first, "the fleet holds")
        tm = Tmux(160, 45, "%s --segment %s -d 1" % (TOP, seg))
        T.check(tm.wait(r"campaign_calls_initiated_total"),
                "the table shows: %s" % tm.screen())
        tm.keys("f")
        T.check(tm.wait(r"fold on"), "f folds")
        fleet.send_signal(signal.SIGUSR2)
        running = wait_until(lambda: any(
            number(r[1]) > 0 for r in rows_of(tm.screen()).values()
            if r[1] != "-"), 10, 0.2)
        T.check(running, "rates over the last interval while the fleet "
                "runs: %s" % tm.screen())
        time.sleep(2)
        last = held_status(fleet, status)
        T.check(last, "the fleet holds again")
        time.sleep(2.5)         # two refreshes: the last interval is held
        tm.keys("r")
        T.check(tm.wait(r"sort rate"), "r sorts by rate")
        tm.keys("/", "C-u", "calls_initiated|webhook_delivered_total",
                "Enter")
        T.check(tm.wait(r"filter calls_initiated\|webhook_delivered_total"),
                "/ filters: %s" % tm.screen())
        screen = tm.screen()
        print(screen, flush=True)
        rows = rows_of(screen)
        T.check(set(rows) == {"campaign_calls_initiated_total",
                              "webhook_delivered_total"},
                "the filter keeps two families: %s" % sorted(rows))
        up = re.search(r"up ([0-9.]+)s", screen)
        elapsed = float(up.group(1)) if up else 0
        for fam, key in (("campaign_calls_initiated_total",
                          "calls_initiated"),
                         ("webhook_delivered_total", "delivered")):
            if fam not in rows or not first or not last:
                continue
            value, rate, rate0 = rows[fam]
            did = last["counts"][key] - first["counts"][key]
            T.check(number(value) == last["counts"][key],
                    "%s shows %s, the fleet counted %s"
                    % (fam, value, last["counts"][key]))
            T.check(number(rate) == 0, "%s: rate %s over an interval in "
                    "which the fleet was held" % (fam, rate))
            T.check(did > 0 and abs(number(rate0) * elapsed - did) <=
                    0.02 * did + 1,
                    "%s: %s/s since start over %.1f s = %.1f, the fleet "
                    "did %d" % (fam, rate0, elapsed,
                                number(rate0) * elapsed, did))
        # an invalid regex: a message, the filter and table unchanged
        tm.keys("/", "C-u", "(", "Enter")
        T.check(tm.wait(r"invalid regex"), "invalid regex message: %s"
                % tm.screen())
        T.check(set(rows_of(tm.screen())) == set(rows),
                "the filter stays after an invalid regex")
        # clear the filter, sort by value: non-increasing
        tm.keys("/", "C-u", "Enter", "v")
        T.check(tm.wait(r"sort value.*filter -"), "v sorts by value")
        vals = [number(v[0]) for v in rows_of(tm.screen()).values()]
        T.check(len(vals) > 10 and vals == sorted(vals, reverse=True),
                "values non-increasing: %s" % vals)
        tm.keys("p")
        T.check(tm.wait(r"\[PAUSED\]"), "p pauses")
        tm.keys("p", "?")
        T.check(tm.wait(r"shmetrics-top keys"), "? shows help")
        tm.keys("x")
        T.check(wait_until(lambda: "shmetrics-top keys" not in tm.screen(),
                           5, 0.1), "any key closes the help")
        tm.keys("q")
        T.check(tm.wait(r"^top-exit 0$"), "q exits 0")
        T.check("NAME" not in tm.screen() and
                "shmetrics-top" not in tm.screen(),
                "the terminal is restored: %s" % tm.screen())
    finally:
        if tm:
            tm.close()
        fleet.send_signal(signal.SIGTERM)
        fleet.wait(20)
        ctl(BUILD, seg, "destroy")


def test_follow():
    seg = "/shmet-e2e-top-follow-%d" % PID
    tm = Tmux(30, 5, "%s --segment %s -d 0.2" % (TOP, seg))
    writers = []
    try:
        T.check(tm.wait(r"terminal too small"), "tiny terminal: %s"
                % tm.screen())
        tm.resize(120, 30)
        T.check(tm.wait(r"waiting for segment %s" % seg),
                "waits for the segment: %s" % tm.screen())
        writers.append(Writer(BUILD, seg, 5))
        T.check(tm.wait(r'e2e_events_total\{kind="a"\}\s+c\s+5 '),
                "the segment appears: %s" % tm.screen())
        writers.pop().stop()
        ctl(BUILD, seg, "destroy")
        T.check(tm.wait(r"waiting for segment"), "destroyed: waiting")
        writers.append(Writer(BUILD, seg, 7))
        T.check(tm.wait(r'e2e_events_total\{kind="a"\}\s+c\s+7 '),
                "the recreated segment is followed: %s" % tm.screen())
        writers.pop().stop()
        ctl(BUILD, seg, "destroy")
        with open("/dev/shm" + seg, "wb") as f:
            f.write(b"\0" * 8192)
        T.check(tm.wait(r"bad magic"), "garbage: a clear message: %s"
                % tm.screen())
        tm.keys("q")
        T.check(tm.wait(r"^top-exit 0$"), "q exits 0 after all that")
    finally:
        for w in writers:
            w.stop()
        tm.close()
        try:
            os.unlink("/dev/shm" + seg)
        except OSError:
            pass


def test_hostile():
    """The ncurses view of tests/hostile-writer's segment: a \\r in a label
    value does not send the rest of its row to the start of the line, and
    no escape sequence reaches the terminal (the pane title stays)."""
    seg = "/wt-tools-top-hostile-%d" % PID
    r = subprocess.run([os.path.join(BUILD, "tests", "hostile-writer"), seg])
    T.check(r.returncode == 0, "hostile-writer")
    tm = Tmux(160, 20, "%s --segment %s -d 0.2" % (TOP, seg))
    try:
        row = r'^hostile_total\{v="AAAA\\rBB"\} +c +4 '
        T.check(tm.wait(row), "the \\r row, escaped and whole: %s"
                % tm.screen())
        screen = tm.screen()
        T.check(not re.search(r'^BB"', screen, re.M),
                "no row starts with what followed a \\r: %s" % screen)
        for shown, n in ((r"title\x1b]0;pwned-title\x07", 1),
                         (r"clear\x1b[2J", 2),
                         (r"clip\x1b]52;c;cHduZWQ=\x07", 3),
                         (r"csi\xc2\x9b31m", 5)):
            T.check(re.search(r'^hostile_total\{v="%s"\} +c +%d '
                              % (re.escape(shown), n), screen, re.M),
                    "the row of %s: %s" % (shown, screen))
        title = subprocess.run(tm.base + ["display-message", "-p", "-t", "t",
                                          "#{pane_title}"],
                               capture_output=True, text=True).stdout
        T.check("pwned" not in title, "the pane title is %r" % title)
        tm.keys("q")
        T.check(tm.wait(r"^top-exit 0$"), "q exits 0")
    finally:
        tm.close()
        ctl(BUILD, seg, "destroy")


def main():
    workdir = "/tmp/shmet-e2e-top-%d" % PID
    os.makedirs(workdir, exist_ok=True)
    try:
        test_once_json()
        test_follow()
        test_hostile()
        test_tmux(workdir)
    finally:
        subprocess.run(["rm", "-rf", workdir])
    T.exit()


main()
