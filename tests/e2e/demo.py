#!/usr/bin/python3
"""tools/demo.sh as an operator meets it (issue 26 item 1).

usage: demo.py BUILD_DIR SOURCE_DIR

- A segment left by an earlier run (killed, so never cleaned up) is
  removed first: held, the page's counts are exactly the fleet's own.
- A segment a live writer holds (another demo) is refused.
- Every port is configurable and printed; a port in use stops the demo
  at once, exit 1, naming the variable that moves it, and nothing of the
  demo stays running.
- With --prometheus: Prometheus, Alertmanager and the receiver on the
  ports given; Prometheus's data stays in SHMETRICS_DEMO_DIR; a piece that
  starts and dies (a second Prometheus on that data) stops the demo with
  its log shown and exit 1.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Failures, ctl, curl, free_port, read_status, samples,  # noqa
                     wait_until)

BUILD, SOURCE = sys.argv[1], sys.argv[2]
SEGMENT = "/shmet-e2e-demo-%d" % os.getpid()
T = Failures()


class Demo:
    """sh tools/demo.sh with its own ports, segment and directory."""

    def __init__(self, workdir, *args):
        self.ports = {k: free_port() for k in
                      ("LISTEN", "PROMETHEUS_LISTEN", "ALERTMANAGER_LISTEN",
                       "RECEIVER_LISTEN")}
        self.dir = os.path.join(workdir, "demo")
        self.status = os.path.join(workdir, "status.json")
        env = dict(os.environ, SHMETRICS_DEMO_NO_BUILD="1",
                   SHMETRICS_BUILD_DIR=BUILD, SHMETRICS_SEGMENT=SEGMENT,
                   SHMETRICS_DEMO_DIR=self.dir)
        for k, port in self.ports.items():
            env["SHMETRICS_" + k] = "127.0.0.1:%d" % port
        self.args = ["sh", os.path.join(SOURCE, "tools", "demo.sh"), *args]
        self.env = env

    def start(self, *args):
        self.out = tempfile.TemporaryFile()
        # a session of its own: Ctrl-C is SIGINT to the whole group
        self.proc = subprocess.Popen(self.args + list(args), env=self.env,
                                     stdout=self.out,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def interrupt(self):
        os.killpg(self.proc.pid, signal.SIGINT)

    def wait(self, timeout=60):
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            code = self.proc.wait(30)
        self.out.seek(0)
        self.text = self.out.read().decode(errors="replace")
        return code

    def url(self, key, path=""):
        return "http://127.0.0.1:%d%s" % (self.ports[key], path)


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_fresh_segment(workdir):
    # what a run killed with SIGKILL leaves: a segment with counts
    subprocess.run([os.path.join(BUILD, "tests", "golden-writer"), SEGMENT],
                   check=True)
    d = Demo(workdir).start("--duration", "30", "--status",
                            os.path.join(workdir, "status.json"), "--quiet")
    try:
        status = wait_until(lambda: read_status(d.status), 20, 0.2)
        T.check(status, "the demo's fleet writes its status")
        page = wait_until(lambda: curl(d.url("LISTEN", "/metrics"))[0] ==
                          200, 10)
        T.check(page, "the exporter serves on SHMETRICS_LISTEN")
        time.sleep(3)
        os.kill(status["pid"], signal.SIGUSR1)
        held = wait_until(lambda: (read_status(d.status) or {}).get(
            "held") and read_status(d.status), 40, 0.1)
        T.check(held, "the fleet holds")

        def agree():
            smp = samples(curl(d.url("LISTEN", "/metrics"))[2].decode())
            got = sum(v for (n, _), v in smp.items()
                      if n == "campaign_calls_initiated_total")
            return got == held["counts"]["calls_initiated"] and smp
        smp = wait_until(agree, 5, 0.1)
        T.check(smp, "calls initiated on the page equal the fleet's own "
                "%d: the earlier run's counts are gone"
                % held["counts"]["calls_initiated"])
        T.check(smp and not any(n.startswith("odd_values") for n, _ in smp),
                "none of the earlier run's families on the page")
        os.kill(status["pid"], signal.SIGUSR2)
    finally:
        d.interrupt()
        code = d.wait()
    T.check(re.search(r"removed the previous run's segment", d.text),
            "the reset is said: %s" % d.text[:300])
    T.check("http://127.0.0.1:%d/metrics" % d.ports["LISTEN"] in d.text,
            "the exporter's URL printed")
    T.check(code in (0, 130), "Ctrl-C: exit %s" % code)
    T.check(not listening(d.ports["LISTEN"]), "nothing left on the port")


def test_live_segment_refused(workdir):
    w = subprocess.Popen([os.path.join(BUILD, "tests", "e2e-writer"),
                          SEGMENT, "1"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE)
    try:
        T.check(w.stdout.readline() == b"ready\n", "a live writer")
        d = Demo(workdir).start("--duration", "5")
        code = d.wait(30)
        T.check(code == 1 and "live writers" in d.text and
                "SHMETRICS_SEGMENT" in d.text,
                "a segment in use is refused: %s %s" % (code, d.text))
        T.check(not listening(d.ports["LISTEN"]), "no exporter left")
    finally:
        w.stdin.close()
        w.wait(10)
    ctl(BUILD, SEGMENT, "destroy")


def test_busy_ports(workdir):
    for key, args in (("LISTEN", []),
                      ("PROMETHEUS_LISTEN", ["--prometheus"]),
                      ("ALERTMANAGER_LISTEN", ["--prometheus"]),
                      ("RECEIVER_LISTEN", ["--prometheus"])):
        d = Demo(workdir)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", d.ports[key]))
            s.listen()
            d.start(*args, "--duration", "5")
            code = d.wait(30)
        T.check(code == 1 and "127.0.0.1:%d is in use" % d.ports[key]
                in d.text and "SHMETRICS_" + key in d.text,
                "%s in use: exit %s, %r" % (key, code, d.text[-400:]))
        T.check(not any(listening(p) for k, p in d.ports.items()
                        if k != key), "%s in use: nothing left running" % key)


def test_prometheus(workdir):
    d = Demo(workdir, "--prometheus").start("--duration", "6", "--quiet")
    code = d.wait(120)
    T.check(code == 0, "--prometheus --duration 6: exit %s %r"
            % (code, d.text[-600:]))
    for key in d.ports:
        T.check("http://127.0.0.1:%d" % d.ports[key] in d.text,
                "%s printed" % key)
    data = os.path.join(d.dir, "prometheus-data")
    T.check(os.path.isdir(os.path.join(data, "wal")),
            "Prometheus's data kept in %s" % data)
    T.check(data in d.text, "where the data is, printed")
    for log in ("exporter.log", "prometheus.log", "alertmanager.log"):
        T.check(os.path.exists(os.path.join(d.dir, log)), log + " kept")
    T.check(not any(listening(p) for p in d.ports.values()),
            "everything stopped")
    # A second Prometheus on the same data: ours starts, then exits
    # (lock), and the demo stops with its log.
    other = subprocess.Popen(
        ["prometheus", "--config.file=" + os.path.join(d.dir, "config",
                                                       "prometheus.yml"),
         "--storage.tsdb.path=" + data, "--storage.tsdb.use-lockfile",
         "--web.listen-address=127.0.0.1:%d" % free_port()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        T.check(wait_until(lambda: os.path.exists(os.path.join(data, "lock")),
                           20, 0.1), "the other Prometheus holds the data")
        d2 = Demo(workdir, "--prometheus").start("--duration", "6")
        code = d2.wait(120)
        T.check(code == 1 and "Prometheus did not start" in d2.text and
                "lock DB directory" in d2.text,
                "a Prometheus that dies: its log and exit 1: %s %r"
                % (code, d2.text[-600:]))
        T.check(not any(listening(p) for p in d2.ports.values()),
                "nothing of the stopped demo left running")
    finally:
        other.terminate()
        other.wait(30)


def main():
    ctl(BUILD, SEGMENT, "destroy")
    workdir = tempfile.mkdtemp(prefix="shmetrics-demo-")
    try:
        test_fresh_segment(workdir)
        test_live_segment_refused(workdir)
        test_busy_ports(workdir)
        if shutil.which("prometheus") and \
                shutil.which("prometheus-alertmanager"):
            test_prometheus(workdir)
        else:
            T.check(False, "prometheus and prometheus-alertmanager needed")
    finally:
        ctl(BUILD, SEGMENT, "destroy")
        shutil.rmtree(workdir, ignore_errors=True)
    T.exit()


if __name__ == "__main__":
    main()
