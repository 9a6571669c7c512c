#!/usr/bin/python3
"""--web.config.file: the Prometheus exporter-toolkit web configuration.

1. A file with tls_server_config and bcrypt basic_auth_users (relative
   paths, as the toolkit resolves them): HTTPS only, 401 without or with
   wrong credentials, 200 with each user's password, through curl.
2. Bad files are refused at start, exit 1, with FILE:LINE and the reason:
   a bcrypt cost above 14 (31 used to hang the start: each case is
   bounded by a timeout), a second YAML document, a NUL in a user name,
   hash, key or path, missing certificate, missing key_file, bad hash,
   non-bcrypt hash, unknown key, a key the toolkit has but we do not,
   broken YAML, and the file combined with the old flags.
3. Credentials that passed are cached and crypt runs one attempt at a
   time: 20 scrapes with a cost-12 bcrypt user cost the exporter about
   one bcrypt of CPU, not 20; a flood of wrong passwords keeps the
   exporter to about one core while the right password still gets 200.
(Prometheus' own basic_auth/tls_config against such a file: fleet.py.)

usage: webconfig.py BUILD_DIR
"""
import base64
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (curl, Exporter, Failures, free_port, make_cert, samples, value, Writer)  # noqa

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

BUILD = sys.argv[1]
SEGMENT = "/shmet-e2e-webconfig-%d" % os.getpid()
EXPORTER = os.path.join(BUILD, "exporter", "shmetrics-exporter")
T = Failures()


def bcrypt(password, cost=4):
    """A $2b$ hash (cost 4: the test stays fast; use 10+ in production)."""
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH,
                                              rounds=2 ** cost))



def write(d, name, text):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def refused(path, *extra):
    """(exit code, stderr) of an exporter started with this file.  One
    that has not exited after 20 s is killed and reported as (None,
    'timed out'): a refused file exits at once, so only an exporter that
    hangs (a check at bcrypt cost 31 takes days) gets that far."""
    try:
        r = subprocess.run([EXPORTER, "--segment", SEGMENT, "--listen",
                            "127.0.0.1:%d" % free_port(),
                            "--web.config.file", path, *extra],
                           capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    return r.returncode, r.stderr.strip()


def test_good(d):
    alice, bob = bcrypt("s3cret"), bcrypt("hunter2")
    path = write(d, "web.yml", """# as node_exporter takes it
tls_server_config:
  cert_file: server.crt
  key_file: server.key
basic_auth_users:
  alice: %s
  bob: '%s'
""" % (alice, bob))
    w = Writer(BUILD, SEGMENT, 42)
    exp = Exporter(BUILD, SEGMENT, "--web.config.file", path)
    exp.scheme = "https"
    ca = ["--cacert", os.path.join(d, "server.crt")]
    try:
        st, hdr, _ = curl(exp.url("/metrics"), *ca)
        T.check(st == 401 and hdr.get("www-authenticate", "").startswith(
            "Basic"), "no credentials: %r" % st)
        st, _, _ = curl(exp.url("/metrics"), *ca, "-u", "alice:wrong")
        T.check(st == 401, "wrong password: %r" % st)
        st, _, _ = curl(exp.url("/metrics"), *ca, "-u", "carol:s3cret")
        T.check(st == 401, "unknown user: %r" % st)
        for user, pw in (("alice", "s3cret"), ("bob", "hunter2")):
            st, _, body = curl(exp.url("/metrics"), *ca, "-u",
                               "%s:%s" % (user, pw))
            T.check(st == 200, "%s: status %r" % (user, st))
            if st == 200:
                smp = samples(body.decode())
                T.check(value(smp, "e2e_events_total", kind="a") == 42,
                        "%s: e2e_events_total %r" % (
                            user, value(smp, "e2e_events_total", kind="a")))
        st, _, _ = curl("http://127.0.0.1:%d/metrics" % exp.port)
        T.check(st != 200, "plain HTTP answered %r" % st)
        code, _ = exp.stop()
        T.check(code == 0, "exporter exit %r" % code)
    finally:
        if exp.alive():
            exp.stop()
        w.stop()
        subprocess.run([os.path.join(BUILD, "tools", "shmetrics-ctl"),
                        "--segment", SEGMENT, "destroy"],
                       capture_output=True)


def with_cost(h, cost):
    """Hash h with its bcrypt cost field replaced (salt and digest kept)."""
    return h[:4] + "%02d" % cost + h[6:]


def test_bad(d):
    good_hash = bcrypt("x")
    cases = [
        # refused before anything runs crypt at that cost: without the
        # limit, cost 31 hangs the start (refused() reports the timeout)
        ("bcrypt cost 31", "basic_auth_users:\n  alice: %s\n" %
         with_cost(good_hash, 31), ":2: ",
         "user alice: bcrypt cost 31 is above the maximum, 14"),
        ("bcrypt cost 15", "basic_auth_users:\n  bob: %s\n" %
         with_cost(good_hash, 15), ":2: ",
         "user bob: bcrypt cost 15 is above the maximum, 14"),
        # cost 14 passes: the refusal is of the key on the next line
        ("bcrypt cost 14", "basic_auth_users:\n  alice: %s\nnope: 1\n" %
         with_cost(good_hash, 14), ":3: ", "unknown key 'nope'"),
        ("second document", "basic_auth_users:\n  alice: %s\n---\n"
         "basic_auth_users:\n  eve: %s\n" % (good_hash, good_hash), ":3: ",
         "a second YAML document"),
        ("empty second document", "basic_auth_users:\n  alice: %s\n---\n"
         % good_hash, ":3: ", "a second YAML document"),
        ("NUL in a user name", 'basic_auth_users:\n  "ali\\0ce": %s\n'
         % good_hash, ":2: ", 'basic_auth_users: user name: "ali\\0ce" '
         "contains a NUL character"),
        ("NUL in a hash", 'basic_auth_users:\n  alice: "%s\\0x"\n'
         % good_hash, ":2: ", "basic_auth_users: alice: hash: "
         '"%s\\0x" contains a NUL character' % good_hash),
        ("NUL in a key", 'tls_server_config:\n  "cert_file\\0x": a\n',
         ":2: ", 'tls_server_config: key: "cert_file\\0x" contains a '
         "NUL character"),
        ("NUL in a path", 'tls_server_config:\n  cert_file: '
         '"server.crt\\0x"\n  key_file: server.key\n', ":2: ",
         'cert_file: "server.crt\\0x" contains a NUL character'),
        ("missing cert", "tls_server_config:\n  cert_file: nope.crt\n"
         "  key_file: server.key\n", ":2: ", "nope.crt"),
        ("missing key_file", "tls_server_config:\n"
         "  cert_file: server.crt\n", ":2: ", "key_file is required"),
        ("bad hash", "basic_auth_users:\n  alice: $2b$04$tooShort\n",
         ":2: ", "not a bcrypt hash"),
        ("sha-512 hash", "basic_auth_users:\n  alice: '%s'\n" %
         crypt.crypt("x", crypt.METHOD_SHA512), ":2: ", "not a bcrypt"),
        ("unknown key", "basic_auth_users:\n  alice: %s\nbasic_auth: x\n"
         % good_hash, ":3: ", "unknown key 'basic_auth'"),
        ("unknown tls key", "tls_server_config:\n  cert_file: server.crt"
         "\n  key_file: server.key\n  certfile: x\n", ":4: ",
         "unknown key 'certfile'"),
        ("unsupported key", "tls_server_config:\n"
         "  cert_file: server.crt\n  key_file: server.key\n"
         "  client_ca_file: ca.crt\n", ":4: ", "not supported"),
        ("duplicate user", "basic_auth_users:\n  a: %s\n  a: %s\n" %
         (good_hash, good_hash), ":3: ", "duplicate key 'a'"),
        ("broken YAML", "tls_server_config:\n  cert_file: [server.crt\n",
         ":", "YAML"),
        ("not a mapping", "- tls_server_config\n", ":1: ",
         "expected a mapping"),
    ]
    for name, text, line, reason in cases:
        path = write(d, "bad.yml", text)
        code, err = refused(path)
        T.check(code == 1 and (path + line) in err and reason in err,
                "%s: exit %r, %r" % (name, code, err))
        print("refused: %s: %s" % (name, err.split(": ", 2)[-1]))
    # the cost limit is auth.c's: --basic-auth-file has it too
    path = write(d, "users", "alice:%s\n" % with_cost(good_hash, 31))
    try:
        r = subprocess.run([EXPORTER, "--segment", SEGMENT, "--listen",
                            "127.0.0.1:%d" % free_port(),
                            "--basic-auth-file", path],
                           capture_output=True, text=True, timeout=20)
        code, err = r.returncode, r.stderr.strip()
    except subprocess.TimeoutExpired:
        code, err = None, "timed out"
    T.check(code == 1 and (path + ":1: ") in err and
            "user alice: bcrypt cost 31 is above the maximum, 14" in err,
            "--basic-auth-file at cost 31: exit %r, %r" % (code, err))
    code, err = refused(os.path.join(d, "absent.yml"))
    T.check(code == 1 and "absent.yml" in err, "absent file: %r" % err)
    code, err = refused(write(d, "ok.yml", ""), "--tls-cert",
                        os.path.join(d, "server.crt"))
    T.check(code == 2 and "replaces" in err, "with --tls-cert: %r" % err)


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def get(url, user, pw):
    req = urllib.request.Request(url, headers={
        "Authorization": "Basic " + base64.b64encode(
            ("%s:%s" % (user, pw)).encode()).decode()})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def test_auth_cost(d):
    hashed = bcrypt("right", cost=12)
    t0 = time.process_time()
    crypt.crypt("right", hashed)
    one = time.process_time() - t0
    path = write(d, "web-cost.yml", "basic_auth_users:\n  prom: %s\n" %
                 hashed)
    w = Writer(BUILD, SEGMENT, 7)
    exp = Exporter(BUILD, SEGMENT, "--web.config.file", path)
    url = exp.url("/metrics")
    try:
        c0 = cpu_seconds(exp.proc.pid)
        codes = [get(url, "prom", "right") for _ in range(20)]
        used = cpu_seconds(exp.proc.pid) - c0
        print("figure: one bcrypt (cost 12) %.3f s; exporter CPU for 20 "
              "authorized scrapes %.3f s" % (one, used), flush=True)
        T.check(codes == [200] * 20, "authorized scrapes: %r" % codes)
        T.check(used < 5 * one, "20 scrapes cost %.2f s of CPU, %.1f "
                "bcrypts" % (used, used / one))
        T.check(get(url, "prom", "wrong") == 401, "wrong password after "
                "a cached right one")
        # a flood of wrong passwords, while the right one scrapes
        stop = threading.Event()

        def flood():
            while not stop.is_set():
                get(url, "prom", "nope")
        threads = [threading.Thread(target=flood) for _ in range(16)]
        c0, t0 = cpu_seconds(exp.proc.pid), time.monotonic()
        for t in threads:
            t.start()
        time.sleep(0.5)
        during = [get(url, "prom", "right") for _ in range(5)]
        time.sleep(2)
        cores = (cpu_seconds(exp.proc.pid) - c0) / (time.monotonic() - t0)
        stop.set()
        for t in threads:
            t.join()
        print("figure: exporter cores busy under 16 wrong-password "
              "clients: %.2f" % cores, flush=True)
        T.check(during == [200] * 5, "right password during the flood: %r"
                % during)
        T.check(cores < 1.5, "the flood kept %.2f cores busy" % cores)
    finally:
        exp.stop()
        w.stop()
        subprocess.run([os.path.join(BUILD, "tools", "shmetrics-ctl"),
                        "--segment", SEGMENT, "destroy"],
                       capture_output=True)


def main():
    with tempfile.TemporaryDirectory(prefix="shmet-webconfig-") as d:
        make_cert(d)
        test_bad(d)
        test_good(d)
        test_auth_cost(d)
    T.exit()


main()
