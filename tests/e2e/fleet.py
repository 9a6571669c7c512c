#!/usr/bin/python3
"""A fleet of hosts on a real TSDB: 3 exporters on 3 segments (3 ports
standing for 3 hosts, each with its own demo fleet), one Prometheus that
finds them through file_sd, and VictoriaMetrics receiving its
remote_write.

Prometheus runs the shipped tools/prometheus/prometheus-file-sd.yml and
recording.yml, changed only where a test must: 1 s intervals, the
targets directory, VictoriaMetrics's port, and the commented-out
scheme/tls_config/basic_auth of the job switched on, since every exporter
takes one --web.config.file (TLS + a bcrypt user).  The targets file is
written after Prometheus started (file_sd picks it up without a restart).

The fleets are then held (SIGUSR1: counters stop, the status file says
what they did), and PromQL against VictoriaMetrics must return exactly
the fleets' counts: per instance and summed, from the raw series and
from the recording rules that aggregate across instances.

usage: fleet.py BUILD_DIR SOURCE_DIR
"""
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (copy_rules, ctl, Exporter, Failures, free_port, get_json, make_cert, Proc, read_status, start_prometheus, wait_until)  # noqa

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt

BUILD, SOURCE = sys.argv[1], sys.argv[2]
HOSTS = 3
SEGMENTS = ["/shmet-e2e-fleet-%d-%d" % (os.getpid(), i) for i in range(HOSTS)]
PASSWORD = "scrape-s3cret"
T = Failures()





def query(port, expr):
    """{instance or '': value} of an instant PromQL query, or None."""
    r = get_json(port, "/api/v1/query", query=expr)
    if not r or r.get("status") != "success":
        return None
    return {s["metric"].get("instance", ""): float(s["value"][1])
            for s in r["data"]["result"]}




def web_config(d):
    make_cert(d)
    # cost 4 keeps scrapes cheap here; use 10 or more in production
    h = crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    with open(os.path.join(d, "web.yml"), "w") as f:
        f.write("tls_server_config:\n  cert_file: server.crt\n"
                "  key_file: server.key\nbasic_auth_users:\n"
                "  prometheus: %s\n" % h)
    with open(os.path.join(d, "password"), "w") as f:
        f.write(PASSWORD)
    return os.path.join(d, "web.yml")


def prometheus_config(d, vm_port):
    src = os.path.join(SOURCE, "tools", "prometheus")
    copy_rules(SOURCE, d)
    cfg = yaml.safe_load(open(os.path.join(src, "prometheus-file-sd.yml")))
    cfg["global"].update(scrape_interval="1s", evaluation_interval="1s")
    cfg.pop("alerting")
    job = cfg["scrape_configs"][0]
    job.update(scrape_interval="1s", scrape_timeout="1s", scheme="https",
               tls_config={"ca_file": os.path.join(d, "server.crt")},
               basic_auth={"username": "prometheus",
                           "password_file": os.path.join(d, "password")})
    job["file_sd_configs"][0]["files"] = [os.path.join(d, "targets",
                                                       "*.yml")]
    job["file_sd_configs"][0]["refresh_interval"] = "1s"
    rw = cfg["remote_write"][0]
    T.check(rw["url"] == "http://localhost:8428/api/v1/write",
            "shipped remote_write url: %s" % rw["url"])
    rw["url"] = "http://127.0.0.1:%d/api/v1/write" % vm_port
    rw["queue_config"]["batch_send_deadline"] = "1s"
    path = os.path.join(d, "prometheus.yml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    os.makedirs(os.path.join(d, "targets"))
    return path


def start_vm(d):
    port = free_port()
    # latencyOffset 0: samples are queryable at once (default 30 s)
    vm = Proc(["victoria-metrics", "-httpListenAddr=127.0.0.1:%d" % port,
               "-storageDataPath=" + os.path.join(d, "vm"),
               "-retentionPeriod=1d", "-search.latencyOffset=0s",
               "-search.disableCache", "-loggerLevel=ERROR"],
              os.path.join(d, "vm.log"))
    vm.port = port
    if not wait_until(lambda: get_json(port, "/api/v1/labels"), 30, 0.2):
        raise RuntimeError("victoria-metrics did not start")
    return vm


def start_fleet(d, i):
    status = os.path.join(d, "status-%d.json" % i)
    p = Proc([os.path.join(BUILD, "tools", "shmetrics-fleet"), "--segment",
              SEGMENTS[i], "--status", status, "--engines", "1",
              "--workers", "2"], os.path.join(d, "fleet-%d.log" % i))
    p.status = status
    return p


def expect_equal(port, expr, want, what):
    """Wait until the query returns exactly want ({instance: value})."""
    got = wait_until(lambda: (lambda r: r if r == want else None)(
        query(port, expr)), 30, 0.5)
    final = got or query(port, expr)
    T.check(final == want, "%s: %s = %s, the fleets say %s"
            % (what, expr, final, want))
    return final == want


def main():
    for tool in ("prometheus", "victoria-metrics"):
        if not shutil.which(tool):
            print("%s not installed" % tool)
            sys.exit(77)
    d = tempfile.mkdtemp(prefix="shmetrics-fleet-")
    procs, exporters, fleets = [], [], []
    try:
        web = web_config(d)
        for s in SEGMENTS:
            ctl(BUILD, s, "destroy")
            exporters.append(Exporter(BUILD, s, "--web.config.file", web))
        for e in exporters:
            e.scheme = "https"
        vm = start_vm(d)
        procs.append(vm)
        prom = start_prometheus(d, prometheus_config(d, vm.port))
        procs.append(prom)
        fleets = [start_fleet(d, i) for i in range(HOSTS)]
        instances = ["127.0.0.1:%d" % e.port for e in exporters]
        with open(os.path.join(d, "targets", "hosts.yml"), "w") as f:
            yaml.safe_dump([{"targets": instances,
                             "labels": {"role": "campaign-engine"}}], f)
        up = wait_until(lambda: (lambda r: r if r and len(r) == HOSTS and
                                 all(v == 1 for v in r.values()) else None)(
            query(prom.port, 'up{job="livekit-platform"}')), 30, 0.5)
        T.check(up, "3 targets up through file_sd, https and basic auth: "
                "%s" % query(prom.port, 'up{job="livekit-platform"}'))
        # let every fleet make calls and deliver webhooks, then hold them
        T.check(wait_until(lambda: all(
            ((read_status(f.status) or {}).get("counts") or {}).get(
                "delivered", 0) > 0 for f in fleets), 30, 0.5),
            "every fleet delivers")
        for f in fleets:
            f.proc.send_signal(signal.SIGUSR1)
        status = []
        for f in fleets:
            st = wait_until(lambda: (lambda s: s if s and s.get("held")
                                     else None)(read_status(f.status)),
                            15, 0.1)
            T.check(st, "fleet holds and writes its status")
            status.append(st["counts"] if st else {})
        t_held = time.monotonic()
        for name, key in (("campaign_calls_initiated_total",
                           "calls_initiated"),
                          ("webhook_delivered_total", "delivered")):
            per = {inst: float(c.get(key, -1))
                   for inst, c in zip(instances, status)}
            total = sum(per.values())
            print("fleets: %s per instance %s, sum %d"
                  % (name, sorted(per.values()), total), flush=True)
            expect_equal(vm.port, "sum by (instance) (%s)" % name, per,
                         "VictoriaMetrics per instance")
            expect_equal(vm.port, "sum(%s)" % name, {"": total},
                         "VictoriaMetrics sum")
            expect_equal(vm.port, "instance:%s:sum" % name, per,
                         "recording rule in VictoriaMetrics")
            expect_equal(vm.port, "job:%s:sum" % name, {"": total},
                         "recording rule in VictoriaMetrics")
            expect_equal(prom.port, "sum(%s)" % name, {"": total},
                         "Prometheus sum")
        print("figure: fleet hold to exact VictoriaMetrics answers = "
              "%.1f s" % (time.monotonic() - t_held))
        r = get_json(vm.port, "/api/v1/series",
                     **{"match[]": "up"})
        T.check(r and all(s.get("prometheus") == "shmetrics-1"
                          for s in r["data"]),
                "external_labels reach VictoriaMetrics: %s"
                % (r and r["data"][:1]))
        rules = get_json(prom.port, "/api/v1/rules")["data"]["groups"]
        T.check(all(r["health"] == "ok" for g in rules for r in g["rules"]),
                "every rule evaluates")
    finally:
        for p in fleets + procs[::-1]:
            p.stop()
        for e in exporters:
            e.stop()
        for s in SEGMENTS:
            ctl(BUILD, s, "destroy")
        shutil.rmtree(d, ignore_errors=True)
    T.exit()


if __name__ == "__main__":
    main()
