#!/usr/bin/python3
"""shmetrics-exporter end to end, with real processes and curl.

usage: exporter.py BUILD_DIR
"""
import gzip
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Exporter, Failures, Writer, ctl, curl, samples,  # noqa
                     scrape as scrape_url, value, wait_until)

BUILD = sys.argv[1]
SEGMENT = "/shmet-e2e-exp-%d" % os.getpid()
T = Failures()


def scrape(exp, *args):
    status, headers, body = curl(exp.url("/metrics"), *args)
    T.check(status == 200, "scrape status %s" % status)
    return samples(body.decode()) if status == 200 else {}


def test_before_segment(exp):
    status, _, body = curl(exp.url("/metrics/health"))
    T.check(status == 503, "health without segment: %s" % status)
    T.check(b"waiting for segment" in body, "health reason: %r" % body)
    smp = scrape(exp)
    T.check(value(smp, "shmetrics_segment_up") == 0, "segment_up 0")
    T.check(value(smp, "process_cpu_seconds_total") is not None,
            "own process metrics before any writer")


def test_values(exp, writers):
    n = len(writers)
    # the exporter sees new series within its refresh period (100 ms)
    wait_until(lambda: value(scrape_url(exp.url("/metrics")), "e2e_workers")
               == n, 10)
    smp = scrape(exp)
    T.check(value(smp, "e2e_events_total", kind="a") == 1000 * n,
            "plain: a = %s" % value(smp, "e2e_events_total", kind="a"))
    T.check(value(smp, "e2e_events_total", kind="b") == 2000 * n, "plain: b")
    T.check(value(smp, "e2e_latency_seconds_count") == 1000 * n, "count")
    T.check(value(smp, "e2e_latency_seconds_bucket", le="0.25") == 0, "le")
    T.check(value(smp, "e2e_latency_seconds_bucket", le="0.5") == 1000 * n,
            "le 0.5")
    T.check(value(smp, "e2e_workers") == n, "live workers %s"
            % value(smp, "e2e_workers"))
    T.check(value(smp, "shmetrics_segment_up") == 1, "segment_up 1")
    T.check(value(smp, "shmetrics_segment_writers", state="live") == n,
            "own writers metric")

    # gzip: curl decompresses, the header says it was compressed
    status, headers, body = curl(exp.url("/metrics"), "-H",
                                 "Accept-Encoding: gzip")
    T.check(headers.get("content-encoding") == "gzip", "gzip header")
    text = gzip.decompress(body).decode()
    T.check(value(samples(text), "e2e_events_total", kind="a") == 1000 * n,
            "gzip value")
    T.check(headers.get("content-type") ==
            "text/plain; version=0.0.4; charset=utf-8", "text content type")

    status, headers, body = curl(
        exp.url("/metrics"), "-H",
        "Accept: application/openmetrics-text; version=1.0.0; charset=utf-8")
    T.check(headers.get("content-type", "").startswith(
        "application/openmetrics-text; version=1.0.0"), "OM content type")
    T.check(body.endswith(b"# EOF\n"), "OM ends with EOF")
    om = samples(body.decode(), openmetrics=True)
    T.check(value(om, "e2e_events_total", kind="a") == 1000 * n, "OM value")

    # RFC 9110 q-values (the full table is tests/test-negotiate.c)
    for enc, want in (("gzip;q=0", None), ("gzip;level=1, br;q=0", "gzip"),
                      ("*;q=0", None), ("identity;q=0", None),
                      ("gzip;q=0.5, identity", None)):
        _, headers, _ = curl(exp.url("/metrics"), "-H",
                             "Accept-Encoding: " + enc)
        T.check(headers.get("content-encoding") == want,
                "Accept-Encoding %r: %s" % (enc, headers.get(
                    "content-encoding")))
    for acc, om in (("application/openmetrics-text;q=0.1, text/plain;q=1",
                     False), ("application/openmetrics-text;q=0", False),
                    ("text/plain;q=0.5, application/openmetrics-text", True)):
        _, headers, body = curl(exp.url("/metrics"), "-H", "Accept: " + acc)
        T.check(headers.get("content-type", "").startswith(
            "application/openmetrics-text") == om and
            body.endswith(b"# EOF\n") == om, "Accept %r" % acc)

    resp = raw_request(exp.port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n"
                       b"Connection: close\r\n\r\n")
    head, _, body = resp.partition(b"\r\n\r\n")
    T.check(head.startswith(b"HTTP/1.1 200") and body == b"",
            "HEAD: %r / %r" % (head[:20], body[:20]))
    length = [ln for ln in head.split(b"\r\n")
              if ln.lower().startswith(b"content-length:")]
    T.check(length and int(length[0].split(b":")[1]) > 1000, "HEAD length")

    status, headers, body = curl(exp.url("/metrics/json"))
    import json
    doc = json.loads(body)
    T.check(doc["metrics"].get("e2e_events_total{kind=a}") == 1000 * n,
            "json value")
    T.check(headers.get("content-type") == "application/json", "json type")
    status, _, body = curl(exp.url("/metrics/health"))
    h = json.loads(body)
    T.check(status == 200 and h["status"] == "healthy", "health: %s" % body)
    T.check(h["metric_families"] == 3, "health families")
    status, headers, body = curl(exp.url("/"))
    T.check(status == 200 and b'href="/metrics/health"' in body, "landing")


def test_live_gauge_drops(exp, writers):
    writers.pop().stop()
    n = len(writers)
    ok = wait_until(lambda: value(scrape_url(exp.url("/metrics")),
                                  "e2e_workers") == n, 5)
    T.check(ok, "livesum after a writer exit")
    smp = scrape(exp)
    T.check(value(smp, "e2e_events_total", kind="a") == 1000 * (n + 1),
            "counts of an exited writer stay")


def raw_request(port, data, read=True, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.sendall(data)
        if not read:
            return b""
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out and b"Connection: close" not in data:
                    break
        except (socket.timeout, ConnectionResetError):
            pass
        return out


def test_hostile(exp):
    status, _, _ = curl(exp.url("/nope"))
    T.check(status == 404, "unknown path 404")
    status, headers, _ = curl(exp.url("/metrics"), "-X", "POST", "-d", "x")
    T.check(status == 405 and headers.get("allow") == "GET, HEAD",
            "POST: %s %s" % (status, headers.get("allow")))
    for method in ("PUT", "DELETE", "OPTIONS", "PATCH"):
        status, _, _ = curl(exp.url("/metrics"), "-X", method)
        T.check(status == 405, "%s: %s" % (method, status))
    # civetweb itself refuses TRACE before our handler sees it
    status, _, _ = curl(exp.url("/metrics"), "-X", "TRACE")
    T.check(status in (400, 405), "TRACE: %s" % status)
    for path in ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                 "/metrics/../../../etc/passwd", "//etc/passwd",
                 "/metrics%00", "/metrics/json/.."):
        resp = raw_request(exp.port, ("GET %s HTTP/1.1\r\nHost: x\r\n"
                                      "Connection: close\r\n\r\n"
                                      % path).encode())
        T.check(b"root:" not in resp and not resp.startswith(b"HTTP/1.1 200"),
                "traversal %s: %r" % (path, resp[:40]))
    huge = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 + \
        b"\r\nConnection: close\r\n\r\n"
    try:
        resp = raw_request(exp.port, huge)
    except OSError:
        resp = b""
    T.check(not resp.startswith(b"HTTP/1.1 200"), "huge header refused")
    resp = raw_request(exp.port, b"\x16\x03\x01garbage\r\n\r\n")
    T.check(not resp.startswith(b"HTTP/1.1 200"), "garbage refused")
    resp = raw_request(exp.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GARBAGE GARBAGE\r\n\r\n", timeout=3)
    T.check(resp.startswith(b"HTTP/1.1 200"), "pipelined: first answered")
    # slow clients: partial requests held open while a scrape goes through
    slow = []
    for _ in range(4):
        s = socket.create_connection(("127.0.0.1", exp.port))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost:")
        slow.append(s)
    status, _, _ = curl(exp.url("/metrics"), timeout=15)
    T.check(status == 200, "scrape while slow clients hold connections")
    for s in slow:
        s.close()
    T.check(exp.alive(), "exporter up after hostile requests")
    smp = scrape(exp)
    T.check(value(smp, "e2e_events_total", kind="a") is not None,
            "next scrape correct")


def test_read_only_mapping(exp):
    maps = open("/proc/%d/maps" % exp.proc.pid).read()
    lines = [ln for ln in maps.splitlines() if SEGMENT[1:] in ln]
    T.check(lines and all(ln.split()[1] == "r--s" for ln in lines),
            "exporter maps the segment read-only: %s" % lines)
    fds = [os.readlink("/proc/%d/fd/%s" % (exp.proc.pid, fd))
           for fd in os.listdir("/proc/%d/fd" % exp.proc.pid)]
    for fd in os.listdir("/proc/%d/fd" % exp.proc.pid):
        target = os.readlink("/proc/%d/fd/%s" % (exp.proc.pid, fd))
        if SEGMENT[1:] in target:
            flags = int(open("/proc/%d/fdinfo/%s" % (exp.proc.pid, fd))
                        .read().split("flags:")[1].split()[0], 8)
            T.check(flags & 3 == os.O_RDONLY, "segment fd is O_RDONLY")
    T.check(any(SEGMENT[1:] in f for f in fds), "exporter holds the segment")


def test_recreate(exp, writers):
    for w in writers:
        w.stop()
    ctl(BUILD, SEGMENT, "destroy")
    ok = wait_until(lambda: curl(exp.url("/metrics/health"))[0] == 503, 5)
    T.check(ok, "health 503 after destroy")
    w = Writer(BUILD, SEGMENT, 5)
    ok = wait_until(lambda: value(scrape_url(exp.url("/metrics")),
                                  "e2e_events_total", kind="a") == 5, 10)
    T.check(ok, "new segment served without restart")
    w.stop()


def yescrypt(password):
    """A $y$ hash through libxcrypt (openssl passwd has no yescrypt)."""
    import ctypes
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong,
                                  ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    setting = lib.crypt_gensalt(b"$y$", 0, None, 0)
    return lib.crypt(password.encode(), setting).decode()


def basic(user, password):
    import base64
    raw = user.encode() + b":" + password
    return "Authorization: Basic " + base64.b64encode(raw).decode()


def auth_timing(exp, cases, rounds=15):
    """Median seconds of a rejected request per case."""
    out = {}
    for name, header in cases:
        times = []
        for _ in range(rounds):
            t0 = time.monotonic()
            status, _, _ = curl(exp.url("/metrics/health"), "-H", header)
            times.append(time.monotonic() - t0)
            T.check(status == 401, "timing case %s: %s" % (name, status))
        out[name] = sorted(times)[len(times) // 2]
    return out


def test_auth():
    with tempfile.TemporaryDirectory() as d:
        hashes = {}
        for user, flag in (("prom", "-6"), ("five", "-5")):
            h = subprocess.run(["openssl", "passwd", flag, "s3cret"],
                               capture_output=True, text=True, check=True)
            hashes[user] = h.stdout.strip()
        hashes["yes"] = yescrypt("s3cret")
        path = os.path.join(d, "users")
        with open(path, "w") as f:
            f.write("# users\n")
            for user, h in hashes.items():
                f.write("%s:%s\n" % (user, h))
        exp = Exporter(BUILD, SEGMENT, "--basic-auth-file", path)
        try:
            status, headers, _ = curl(exp.url("/metrics"))
            T.check(status == 401 and headers.get(
                "www-authenticate", "").startswith("Basic"),
                "no credentials: %s %s" % (status, headers))
            for user, pw in (("prom", "wrong"), ("nobody", "s3cret"),
                             ("prom", ""), ("", ""), ("pro", "s3cret"),
                             ("promx", "s3cret")):
                status, _, _ = curl(exp.url("/metrics"), "-u",
                                    "%s:%s" % (user, pw))
                T.check(status == 401, "bad credentials %s: %s"
                        % (user, status))
            status, _, _ = curl(exp.url("/metrics"), "-H",
                                "Authorization: Basic !!!notbase64")
            T.check(status == 401, "malformed credentials")
            # crypt() stops at a NUL: the full decoded length must match
            for user in hashes:
                status, _, _ = curl(exp.url("/metrics"), "-H",
                                    basic(user, b"s3cret\0junk"))
                T.check(status == 401, "%s: password + NUL + junk: %s"
                        % (user, status))
                status, _, body = curl(exp.url("/metrics"), "-u",
                                       "%s:s3cret" % user)
                T.check(status == 200 and b"e2e_events_total" in body,
                        "good credentials for %s ($%s$)"
                        % (user, hashes[user].split("$")[1]))
            # every user, known or not, costs one crypt per hash kind
            med = auth_timing(exp, [
                ("unknown user", basic("nobody", b"wrong")),
                ("$6$ user", basic("prom", b"wrong")),
                ("$5$ user", basic("five", b"wrong")),
                ("$y$ user", basic("yes", b"wrong"))])
            for name, t in med.items():
                print("figure: auth median, %s = %.2f ms" % (name, t * 1e3))
            print("figure: auth timing spread (max - min of medians) = "
                  "%.2f ms" % ((max(med.values()) - min(med.values()))
                               * 1e3))
        finally:
            exp.stop()


def test_segment_owner():
    """--segment-owner: a segment someone else created at the name (anyone
    can, in /dev/shm) is not served."""
    me = str(os.geteuid())
    other = "nobody" if os.geteuid() == 0 else "root"
    for owner, want in ((other, 503), (me, 200)):
        exp = Exporter(BUILD, SEGMENT, "--segment-owner", owner)
        try:
            status, _, body = curl(exp.url("/metrics/health"))
            T.check(status == want, "--segment-owner %s: health %s %r" %
                    (owner, status, body[:200]))
            if want == 503:
                T.check(b"--segment-owner" in body, "the reason names "
                        "the owner check: %r" % body[:200])
        finally:
            exp.stop()
    r = subprocess.run([os.path.join(BUILD, "exporter", "shmetrics-exporter"),
                        "--segment", SEGMENT, "--segment-owner",
                        "no-such-user-x", "--listen", "127.0.0.1:1"],
                       capture_output=True, text=True, timeout=10)
    # a well-formed value naming what this system lacks: a failure (1),
    # not a wrong command line (2; tools/cli.h)
    T.check(r.returncode == 1 and "no such user" in r.stderr,
            "unknown owner: exit %d %r" % (r.returncode, r.stderr))


def test_tls():
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        exp = Exporter(BUILD, SEGMENT, "--tls-cert", cert, "--tls-key", key)
        try:
            status, _, body = curl(exp.url("/metrics"), "--cacert", cert)
            T.check(status == 200 and b"e2e_events_total" in body,
                    "https scrape: %s" % status)
            resp = raw_request(exp.port, b"GET /metrics HTTP/1.1\r\n\r\n",
                               timeout=3)
            T.check(not resp.startswith(b"HTTP/1.1 200"),
                    "plain HTTP to the TLS port is refused")
            status, _, _ = curl(exp.url("/metrics"), "--cacert", cert)
            T.check(status == 200, "https after garbage")
        finally:
            exp.stop()


def test_single_flight():
    """Concurrent scrapes share renders: 16 at once, far fewer renders."""
    hold = subprocess.Popen([os.path.join(BUILD, "bench", "bench-render"),
                             "10000", "2", "hold"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    seg = hold.stdout.readline().split()[1]
    exp = Exporter(BUILD, seg, "--threads", "16")
    try:
        def renders():
            # slow builds (TSan) may need a while for the first render
            return wait_until(lambda: value(
                scrape_url(exp.url("/metrics")), "shmetrics_renders_total",
                format="text"), 60, 0.2)
        before = renders()
        results = []

        def one():
            results.append(curl(exp.url("/metrics"), "-H",
                                "Accept-Encoding: gzip")[0])
        import threading
        threads = [threading.Thread(target=one) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # the last curl of renders() is a render of its own
        delta = renders() - before - 1
        print("figure: 16 concurrent scrapes, renders = %d" % delta)
        T.check(results == [200] * 16, "all answered: %s" % results)
        T.check(0 < delta < 16, "renders shared: %d for 16" % delta)
    finally:
        exp.stop()
        hold.stdin.close()
        hold.wait(30)


def test_idle_clients():
    """100 idle connections and 32 slowloris clients held open: a scrape
    still answers 200 within 1 s (default options)."""
    exp = Exporter(BUILD, SEGMENT)
    held = []
    try:
        wait_until(lambda: curl(exp.url("/metrics"))[0] == 200, 10)
        for _ in range(100):
            held.append(socket.create_connection(("127.0.0.1", exp.port)))
        for _ in range(32):
            s = socket.create_connection(("127.0.0.1", exp.port))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow:")
            held.append(s)
        time.sleep(0.5)     # every connection accepted and waiting
        for s in held[100:]:
            s.sendall(b"a")     # slowloris: a byte now and then
        worst = 0
        for _ in range(5):
            t0 = time.monotonic()
            status, _, _ = curl(exp.url("/metrics"), timeout=15)
            took = time.monotonic() - t0
            worst = max(worst, took)
            T.check(status == 200, "scrape with 132 idle/slow "
                    "connections: %s after %.2f s" % (status, took))
        print("figure: scrape with 100 idle + 32 slowloris connections "
              "held, worst of 5 = %.3f s" % worst)
        # the one wall-clock bound of the suite, generous on purpose
        T.check(worst < 1.0, "scrape under 1 s: %.2f s" % worst)
    finally:
        for s in held:
            s.close()
        exp.stop()


def test_bind_failure(exp):
    """A second exporter on a port in use: one line, exit non-zero, and
    no "serving segment" (the segment exists and is valid)."""
    r = subprocess.run([os.path.join(BUILD, "exporter",
                                     "shmetrics-exporter"),
                        "--segment", SEGMENT, "--listen",
                        "127.0.0.1:%d" % exp.port],
                       capture_output=True, text=True, timeout=10)
    lines = r.stderr.strip().splitlines()
    T.check(r.returncode != 0, "bind failure: exit %d" % r.returncode)
    T.check(len(lines) == 1 and "cannot listen" in r.stderr and
            "serving segment" not in r.stderr,
            "bind failure: one line: %r" % r.stderr)


def test_being_created():
    """A segment whose creator has not written the header yet (all
    zero) is waited for, not reported as foreign."""
    seg = SEGMENT + "-creating"
    path = "/dev/shm" + seg
    with open(path, "wb") as f:
        f.truncate(1 << 20)
    exp = Exporter(BUILD, seg)
    try:
        ok = wait_until(lambda: b"being created" in
                        curl(exp.url("/metrics/health"))[2], 5)
        status, _, body = curl(exp.url("/metrics/health"))
        T.check(ok and status == 503, "being created: %s %r"
                % (status, body))
    finally:
        exp.stop()
        os.unlink(path)
    log = open(exp.log.name, "rb").read()
    T.check(b"bad magic" not in log, "no 'bad magic' while being created")
    T.check(b"waiting for segment %s (being created)" % seg.encode() in log,
            "logged as waiting")


def main():
    ctl(BUILD, SEGMENT, "destroy")
    exp = Exporter(BUILD, SEGMENT, "--threads", "8", "--request-timeout", "3")
    writers = []
    try:
        test_before_segment(exp)
        writers = [Writer(BUILD, SEGMENT, 1000) for _ in range(3)]
        test_values(exp, writers)
        test_live_gauge_drops(exp, writers)
        test_hostile(exp)
        test_idle_clients()
        test_bind_failure(exp)
        test_being_created()
        test_read_only_mapping(exp)
        test_auth()
        test_segment_owner()
        test_tls()
        test_recreate(exp, writers)
        test_single_flight()
        writers = []
        code, took = exp.stop()
        T.check(code == 0 and took < 1.0,
                "SIGTERM: exit %s after %.2f s" % (code, took))
    finally:
        for w in writers:
            w.kill()
        if exp.alive():
            exp.stop()
        ctl(BUILD, SEGMENT, "destroy")
    T.exit()


if __name__ == "__main__":
    main()
