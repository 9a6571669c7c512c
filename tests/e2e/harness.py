"""Shared pieces of the end-to-end tests: real processes, real HTTP.

Everything listens on 127.0.0.1 only, on ports the kernel picks; every
process a test starts is stopped by the test.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from prometheus_client.openmetrics.parser import \
    text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text


class Failures:
    """Collects failed checks; a test exits non-zero if any."""

    def __init__(self):
        self.items = []

    def check(self, cond, msg):
        if not cond:
            self.items.append(msg)
            print("FAIL:", msg, flush=True)
        return cond

    def exit(self):
        print("%d failures" % len(self.items))
        sys.exit(1 if self.items else 0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(step)
    return cond()


def curl(url, *args, timeout=10):
    """(status, headers dict lower-cased, body bytes) via the curl binary."""
    r = subprocess.run(["curl", "-s", "-S", "-D", "-", "--max-time",
                        str(timeout), *args, url], capture_output=True)
    if r.returncode != 0:
        return None, {}, r.stderr
    raw = r.stdout
    # skip interim responses; headers end at the first blank line
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def samples(text, openmetrics=False):
    """{(name, frozenset(labels)): value} of an exposition."""
    parse = parse_openmetrics if openmetrics else parse_text
    out = {}
    for fam in parse(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def scrape(url, *args):
    """samples() of a GET, or {} when the request fails (not up yet)."""
    status, _, body = curl(url, *args)
    if status != 200:
        return {}
    try:
        return samples(body.decode())
    except ValueError:
        return {}


def value(smp, name, **labels):
    return smp.get((name, frozenset(labels.items())))


class Exporter:
    def __init__(self, build, segment, *args, port=None):
        self.port = port or free_port()
        self.cmd = [os.path.join(build, "exporter", "shmetrics-exporter"),
                    "--segment", segment, "--listen",
                    "127.0.0.1:%d" % self.port, *args]
        self.log = open("/tmp/shmetrics-e2e-exporter-%d.log" % os.getpid(),
                        "ab")
        self.proc = subprocess.Popen(self.cmd, stderr=self.log)
        ok = wait_until(self._listening, 10)
        if not ok:
            raise RuntimeError("exporter did not start: %s" % self.cmd)
        self.scheme = "https" if "--tls-cert" in args else "http"

    def _listening(self):
        if self.proc.poll() is not None:
            raise RuntimeError("exporter exited %d" % self.proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.2):
                return True
        except OSError:
            return False

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM):
        """Signal it; returns (exit code, seconds it took)."""
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.log.close()
        return code, time.monotonic() - t0


class Writer:
    """tests/e2e-writer: writes COUNT, then stays alive until stopped."""

    def __init__(self, build, segment, count):
        self.proc = subprocess.Popen(
            [os.path.join(build, "tests", "e2e-writer"), segment,
             str(count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if line != b"ready\n":
            raise RuntimeError("e2e-writer failed: %r" % line)

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(10)

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)


def ctl(build, segment, *args):
    return subprocess.run([os.path.join(build, "tools", "shmetrics-ctl"),
                           "--segment", segment, *args],
                          capture_output=True, text=True)


class Proc:
    """A background process whose output goes to a log file."""

    def __init__(self, cmd, log):
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def read_status(path):
    """The demo fleet's --status file, or None while it is being written."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def make_cert(d):
    """A self-signed certificate for 127.0.0.1: server.crt, server.key."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", os.path.join(d, "server.key"),
                    "-out", os.path.join(d, "server.crt"), "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)


def get_json(port, path, **params):
    """GET http://127.0.0.1:port/path?params as JSON, or None."""
    url = "http://127.0.0.1:%d%s" % (port, path)
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def copy_rules(source, dest, short_for=False):
    """The shipped Prometheus rules into dest, evaluated every second; with
    short_for, every `for:` is 3 s."""
    for name in ("alerts.yml", "recording.yml"):
        with open(os.path.join(source, "tools", "prometheus", name)) as f:
            text = f.read().replace("interval: 30s", "interval: 1s")
        if short_for:
            text = re.sub(r"for: \d+m", "for: 3s", text)
        with open(os.path.join(dest, name), "w") as f:
            f.write(text)


def start_prometheus(workdir, config, port=None, extra=()):
    """A real Prometheus on port (default: a free loopback port; its
    .port), storing in workdir/data and logging to workdir/prometheus.log,
    once it answers; extra: more arguments (feature flags)."""
    port = port or free_port()
    p = Proc(["prometheus", "--config.file=" + config,
              "--storage.tsdb.path=" + os.path.join(workdir, "data"),
              "--web.listen-address=127.0.0.1:%d" % port, *extra],
             os.path.join(workdir, "prometheus.log"))
    p.port = port
    if not wait_until(lambda: get_json(port, "/api/v1/status/config"), 30,
                      0.2):
        p.stop()
        raise RuntimeError("prometheus did not start")
    return p
