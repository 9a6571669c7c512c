#!/usr/bin/python3
"""Containers: a writer and an exporter in separate mount namespaces
(`unshare -m`, each with its own private /dev/shm, as two containers of a
pod have) share a segment at a file path on one tmpfs directory mounted
into both (a Kubernetes emptyDir with medium: Memory).

1. The exporter serves exactly what the writer wrote, through the path.
2. A POSIX shm name created in the writer's namespace is invisible from
   the exporter's: the reason segments at paths exist.
3. Liveness crosses namespaces: `shmetrics-ctl writers`, run in a third
   namespace, sees the writer's slot live (OFD locks are on the file).
4. Stopping the writer leaves its counts in place.
5. docs/kubernetes/sidecar.yaml says the same: both containers mount one
   emptyDir with medium: Memory (the exporter read-only), and the
   application's SHMETRICS_SEGMENT is the exporter's --segment, a path
   on that volume.

Needs root (unshare, mount); skipped (77) otherwise.  The test re-execs
itself in a private mount namespace, so that its tmpfs mounts vanish with
it.

usage: containers.py BUILD_DIR SOURCE_DIR
"""
import os
import socket
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Failures, curl, free_port, samples, value, wait_until  # noqa

BUILD, SOURCE = sys.argv[1], sys.argv[2]
T = Failures()
COUNT = 1000
POSIX_NAME = "/shmet-e2e-ns-posix-%d" % os.getpid()
CTL = os.path.join(BUILD, "tools", "shmetrics-ctl")

# A "container": a new mount namespace with its own empty /dev/shm; the
# shared tmpfs directory is still mounted in it.
CONTAINER = ["unshare", "-m", "sh", "-c",
             "mount --make-rprivate / && "
             "mount -t tmpfs -o size=16m tmpfs /dev/shm && exec \"$@\"",
             "container"]


def in_container(*cmd, **kw):
    return subprocess.run(CONTAINER + list(cmd), capture_output=True,
                          text=True, timeout=30, **kw)


def listening(port, proc):
    if proc.poll() is not None:
        raise RuntimeError("exporter exited %d" % proc.returncode)
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True
    except OSError:
        return False


def run(shared):
    seg = os.path.join(shared, "app.seg")
    # the writer's container also makes a POSIX shm segment of its own
    writer = subprocess.Popen(
        ["unshare", "-m", "sh", "-c",
         "mount --make-rprivate / && "
         "mount -t tmpfs -o size=16m tmpfs /dev/shm && "
         "%s --segment %s create --max-series 64 --cells 1024 "
         "--max-writers 2 >/dev/null && exec \"$@\"" % (CTL, POSIX_NAME),
         "writer", os.path.join(BUILD, "tests", "e2e-writer"), seg,
         str(COUNT)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    exporter = None
    log = open(os.path.join(shared, "..", "exporter.log"), "wb")
    try:
        line = writer.stdout.readline()
        T.check(line == b"ready\n", "writer in its namespace: %r" % line)
        port = free_port()
        exporter = subprocess.Popen(
            CONTAINER + [os.path.join(BUILD, "exporter",
                                      "shmetrics-exporter"),
                         "--segment", seg, "--listen",
                         "127.0.0.1:%d" % port], stderr=log)
        T.check(wait_until(lambda: listening(port, exporter), 10),
                "exporter listens")
        url = "http://127.0.0.1:%d/metrics" % port

        def events():
            st, _, body = curl(url)
            if st != 200:
                return None
            smp = samples(body.decode())
            return (value(smp, "e2e_events_total", kind="a"),
                    value(smp, "e2e_events_total", kind="b"))
        got = wait_until(lambda: events() == (COUNT, 2 * COUNT) and
                         events(), 10)
        T.check(got, "exporter (other namespace) serves the writer's "
                "counts through %s: %r" % (seg, events()))
        print("exporter in its own namespace: e2e_events_total = %r"
              % (events(),), flush=True)

        r = in_container(CTL, "--segment", POSIX_NAME, "info")
        T.check(r.returncode != 0 and "No such file" in r.stderr,
                "a POSIX shm name does not cross namespaces: %r"
                % (r.stderr.strip() or r.stdout[:80]))
        r = in_container(CTL, "--segment", seg, "writers")
        live = [ln for ln in r.stdout.splitlines()[1:]
                if ln.split()[2:3] == ["yes"]]
        T.check(r.returncode == 0 and len(live) == 1,
                "one live writer seen from a third namespace: %r"
                % r.stdout)
        writer.stdin.close()
        writer.wait(10)
        T.check(events() == (COUNT, 2 * COUNT),
                "counts stay after the writer exits: %r" % (events(),))
        r = in_container(CTL, "--segment", seg, "writers")
        T.check(r.returncode == 0 and "yes" not in r.stdout,
                "no live writer once it exited: %r" % r.stdout)
        exporter.terminate()
        T.check(exporter.wait(10) == 0, "exporter exits 0")
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
        if exporter and exporter.poll() is None:
            exporter.kill()
            exporter.wait()
        log.close()


def check_manifest():
    path = os.path.join(SOURCE, "docs", "kubernetes", "sidecar.yaml")
    dep = yaml.safe_load(open(path))
    pod = dep["spec"]["template"]["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    app, exp = pod["containers"]
    env = {e["name"]: e["value"] for e in app["env"]}
    seg = env.get("SHMETRICS_SEGMENT", "")
    args = exp["args"]
    T.check(args[args.index("--segment") + 1] == seg,
            "sidecar.yaml: exporter --segment is the app's segment")
    for c in (app, exp):
        m = [m for m in c["volumeMounts"]
             if seg.startswith(m["mountPath"] + "/")]
        T.check(len(m) == 1 and vols[m[0]["name"]]["emptyDir"].get(
            "medium") == "Memory", "sidecar.yaml: %s mounts the segment's "
            "memory volume" % c["name"])
        T.check(bool(m and m[0].get("readOnly")) == (c is exp),
                "sidecar.yaml: only the exporter's mount is read-only")


def main():
    if os.environ.get("SHMETRICS_CONTAINERS_NS") != "1":
        if os.geteuid() != 0:
            print("needs root for mount namespaces")
            sys.exit(77)
        env = dict(os.environ, SHMETRICS_CONTAINERS_NS="1")
        sys.exit(subprocess.call(
            ["unshare", "-m", "sh", "-c",
             "mount --make-rprivate / && exec \"$@\"", "sh",
             sys.executable, *sys.argv], env=env))
    check_manifest()
    top = tempfile.mkdtemp(prefix="shmet-containers-")
    shared = os.path.join(top, "shared")
    os.mkdir(shared)
    # the volume both containers mount: one tmpfs
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0750",
                    "tmpfs", shared], check=True)
    try:
        run(shared)
    finally:
        subprocess.run(["umount", shared])
        subprocess.run(["rm", "-rf", top])
    T.exit()


if __name__ == "__main__":
    main()
