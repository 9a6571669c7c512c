#!/usr/bin/python3
"""The segment trust boundary: no state of the segment file crashes a
reader or makes it allocate (tests/RELIABILITY.md).

usage: trust.py BUILD_DIR TEST
TEST: full-tmpfs, shrink, active-slots, read-locks, fifo, huge-cells,
      aliased-series, sparse-metadata

Each test runs in a private mount namespace whose /dev/shm is a fresh
32 MiB tmpfs (as Docker's default /dev/shm is 64 MiB), so that filling
it harms nothing else.  Needs root (unshare); skipped (77) otherwise.
Prints "figure: name = value" lines and a final "N failures".
"""
import mmap
import os
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "e2e"))
from harness import Exporter, Failures, ctl, curl, samples, wait_until  # noqa

BUILD, TEST = sys.argv[1], sys.argv[2]
SEGMENT = "/shmet-trust-%s-%d" % (TEST, os.getpid())
PATH = "/dev/shm" + SEGMENT
T = Failures()
TMPFS_MB = 32

# Header and slot offsets (include/shmetrics/layout.h, pinned there by
# _Static_assert).
OFF_MAX_WRITERS, OFF_CELLS_PER_BLOCK = 80, 84
OFF_WRITERS, OFF_SERIES = 128, 152
OFF_MAX_SERIES, OFF_SERIES_SLOTS = 72, 76
OFF_SERIES_INDEX, OFF_STRINGS, OFF_STRINGS_USED = 160, 168, 204
SLOT_SIZE, SERIES_SIZE = 64, 32


def figure(name, v):
    print("figure: %s = %s" % (name, v), flush=True)


def helper(name):
    return os.path.join(BUILD, "tests", "reliability", name)


def tmpfs_used_kb():
    st = os.statvfs("/dev/shm")
    return (st.f_blocks - st.f_bfree) * st.f_frsize // 1024


def write_series(count, stay=False):
    args = [helper("series-writer"), SEGMENT, str(count)]
    if stay:
        args.append("--stay")
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    line = p.stdout.readline().decode()
    T.check(line.startswith("ready"), "series-writer: %r %r" %
            (line, p.stderr.read() if not line else ""))
    if not stay:
        p.wait(30)
    return p


def fill_tmpfs():
    """Write a file until /dev/shm is full; returns the bytes written."""
    n = 0
    with open("/dev/shm/filler", "wb") as f:
        chunk = b"\xff" * 65536
        try:
            while True:
                f.write(chunk)
                f.flush()
                n += len(chunk)
        except OSError:
            pass
    return n


def scrape_status(exp, path="/metrics"):
    status, _, body = curl(exp.url(path), timeout=5)
    return status, body


def new_segment(series, *create_args):
    """Create the segment (shmetrics-ctl create ARGS) with `series`
    histogram series in it, written by a process that has exited."""
    r = ctl(BUILD, SEGMENT, "create", *create_args)
    T.check(r.returncode == 0, "create: %s" % r.stderr)
    write_series(series)


def exporter_peak_kb(paths, rounds):
    """Start an exporter on the segment, scrape each path `rounds` times
    (each must answer 200), stop it: its peak RSS in KiB."""
    exp = Exporter(BUILD, SEGMENT)
    try:
        for _ in range(rounds):
            for path in paths:
                status, _ = scrape_status(exp, path)
                T.check(status == 200, "%s: %s" % (path, status))
        return int(open("/proc/%d/status" % exp.proc.pid).read().split(
            "VmHWM:")[1].split()[0])
    finally:
        exp.stop()


def test_full_tmpfs():
    """Writer A registers a little and exits, writer B registers 10,000
    series, /dev/shm fills: the next scrape used to read A's block up to
    B's highest cell and die of SIGBUS (exit 135)."""
    r = ctl(BUILD, SEGMENT, "create")
    T.check(r.returncode == 0, "create: %s" % r.stderr)
    a = write_series(10, stay=True)     # writer A: slot 0
    b = write_series(10000, stay=True)  # writer B: slot 1
    a.stdin.close()                     # A is gone; its block stays
    a.wait(10)
    # full before anyone reads: no earlier read may have allocated the
    # pages of A's block that B's cells reach
    filled = fill_tmpfs()
    figure("tmpfs filled with (MiB)", filled >> 20)
    exp = Exporter(BUILD, SEGMENT)
    try:
        for i in range(5):
            status, body = scrape_status(exp)
            T.check(status == 200, "scrape %d on a full tmpfs: %s" %
                    (i, status))
        smp = samples(body.decode()) if status == 200 else {}
        n = sum(v for (name, _), v in smp.items()
                if name == "trust_series_seconds_count")
        figure("observations seen with tmpfs full", n)
        T.check(n == 10010, "every observation counted: %s" % n)
        d = ctl(BUILD, SEGMENT, "dump")
        T.check(d.returncode == 0, "ctl dump on a full tmpfs: exit %d %s"
                % (d.returncode, d.stderr[-200:]))
        T.check(exp.proc.poll() is None, "exporter alive")
    finally:
        b.stdin.close()
        b.wait(10)
        exp.stop()
        os.unlink("/dev/shm/filler")


def test_shrink():
    """Another process ftruncate()s the live segment smaller: the reader
    used to map the size it saw once and die of SIGBUS."""
    new_segment(2000)
    exp = Exporter(BUILD, SEGMENT)
    codes = {}
    try:
        status, _ = scrape_status(exp)
        T.check(status == 200, "scrape before: %s" % status)
        size = os.path.getsize(PATH)
        for frac in (0.9, 0.5, 0.1, 0.001):
            os.truncate(PATH, int(size * frac))
            for path in ("/metrics", "/metrics/json", "/metrics/health"):
                status, _ = scrape_status(exp, path)
                codes[status] = codes.get(status, 0) + 1
                T.check(status in (200, 503), "%s after shrinking to "
                        "%.1f%%: %s" % (path, frac * 100, status))
            d = ctl(BUILD, SEGMENT, "dump")
            T.check(d.returncode in (0, 1) and d.returncode != -7 and
                    "\n" not in d.stderr.strip(),
                    "ctl dump after shrink: exit %d %r" %
                    (d.returncode, d.stderr))
        figure("answers after shrinking (status: count)", codes)
        T.check(exp.proc.poll() is None, "exporter alive after shrinks")
    finally:
        exp.stop()
    # a render cut short by the shrink is logged as that, not as memory
    log = open(exp.log.name, errors="replace").read()
    T.check("out of memory" not in log, "the log blames memory: %r" %
            [line for line in log.splitlines() if "memory" in line][:2])


def test_active_slots():
    """Two in-range writes: every writer slot marked active, one series
    moved to the last cell.  A dump used to read every block to the end
    (1 GiB of tmpfs materialised, 4.6 s)."""
    new_segment(100)
    with open(PATH, "r+b") as f:
        m = mmap.mmap(f.fileno(), 0)
        writers, = struct.unpack_from("<I", m, OFF_MAX_WRITERS)
        cells, = struct.unpack_from("<I", m, OFF_CELLS_PER_BLOCK)
        woff, = struct.unpack_from("<Q", m, OFF_WRITERS)
        soff, = struct.unpack_from("<Q", m, OFF_SERIES)
        for i in range(writers):
            struct.pack_into("<I", m, woff + i * SLOT_SIZE, 1)  # ACTIVE
        # series 0's first cell: the last that fits a 14-cell histogram
        struct.pack_into("<I", m, soff + 4, cells - 14)
        m.close()
    figure("writer slots marked active", writers)
    before = tmpfs_used_kb()
    t0 = time.monotonic()
    d = ctl(BUILD, SEGMENT, "dump")
    took = time.monotonic() - t0
    grown = tmpfs_used_kb() - before
    figure("dump time (s)", "%.3f" % took)
    figure("tmpfs growth during the dump (KiB)", grown)
    T.check(d.returncode == 0, "dump: %s" % d.stderr[-200:])
    T.check(grown < 1024, "tmpfs grew by %d KiB" % grown)
    T.check(took < 1.0, "dump took %.3f s" % took)


def test_huge_cells():
    """cells_per_block at the format's maximum (2^28) and one series moved
    to the last cell: a tiny, sparse file whose scrape used to allocate and
    zero 2 x 2 GiB of sum arrays (4.2 GB resident, 19 s per dump)."""
    new_segment(10, "--cells", str(1 << 28), "--max-writers", "4")
    with open(PATH, "r+b") as f:
        m = mmap.mmap(f.fileno(), 0)
        cells, = struct.unpack_from("<I", m, OFF_CELLS_PER_BLOCK)
        soff, = struct.unpack_from("<Q", m, OFF_SERIES)
        struct.pack_into("<I", m, soff + 4, cells - 14)
        m.close()
    figure("cells per block", cells)
    t0 = time.monotonic()
    p = subprocess.Popen([os.path.join(BUILD, "tools", "shmetrics-ctl"),
                          "--segment", SEGMENT, "dump"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    took = time.monotonic() - t0
    figure("dump: exit, seconds, max RSS KiB",
           (os.waitstatus_to_exitcode(status), round(took, 3), ru.ru_maxrss))
    T.check(os.waitstatus_to_exitcode(status) == 0, "dump failed: %s" %
            p.stderr.read()[-200:])
    T.check(ru.ru_maxrss < 64 * 1024, "dump resident %d KiB" % ru.ru_maxrss)
    # the exporter, several scrapes in a row (its arrays are reused)
    rss = exporter_peak_kb(("/metrics", "/metrics/json"), 3)
    figure("exporter peak RSS after 6 scrapes (KiB)", rss)
    T.check(rss < 128 * 1024, "exporter peak RSS %d KiB" % rss)


def test_aliased_series():
    """Every series-index slot names one record, whose label blob is a
    1 KiB value: each slot's copy of it used to be made (a small file read
    as hundreds of MiB of labels)."""
    new_segment(10)
    with open(PATH, "r+b") as f:
        m = mmap.mmap(f.fileno(), 0)
        slots, = struct.unpack_from("<I", m, OFF_SERIES_SLOTS)
        soff, = struct.unpack_from("<Q", m, OFF_SERIES)
        ioff, = struct.unpack_from("<Q", m, OFF_SERIES_INDEX)
        stroff, = struct.unpack_from("<Q", m, OFF_STRINGS)
        used, = struct.unpack_from("<I", m, OFF_STRINGS_USED)
        blob = struct.pack("<H", 1024) + b"x" * 1024
        m[stroff + used:stroff + used + len(blob)] = blob
        struct.pack_into("<II", m, soff + 8, used, len(blob))  # record 0
        for i in range(slots):
            struct.pack_into("<I", m, ioff + 4 * i, 1)
        m.close()
    figure("series-index slots naming record 0", slots)
    t0 = time.monotonic()
    p = subprocess.Popen([os.path.join(BUILD, "tools", "shmetrics-ctl"),
                          "--segment", SEGMENT, "dump"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate()
    took = time.monotonic() - t0
    page = out.decode(errors="replace")
    figure("dump: exit, seconds", (p.returncode, round(took, 3)))
    T.check(p.returncode == 0, "dump: %s" % err[-200:])
    n = page.count('id="' + "x" * 1024 + '"')
    T.check(n == 15, "the aliased series is served once (15 samples, not "
            "%d)" % n)
    h = ctl(BUILD, SEGMENT, "dump", "--format", "health")
    T.check('"degraded"' in h.stdout, "health degraded: %s" % h.stdout[:200])
    rss = exporter_peak_kb(("/metrics",), 3)
    figure("exporter peak RSS after 3 scrapes (KiB)", rss)
    T.check(rss < 64 * 1024, "exporter peak RSS %d KiB" % rss)


def test_sparse_metadata():
    """A header at the largest capacities and nothing else: 4.6 GiB of
    metadata that is all hole.  An index build read every index slot
    through the mapping, and a read of a tmpfs hole allocates the page:
    one dump materialised 520 MiB."""
    r = subprocess.run([helper("sparse-segment"), PATH], capture_output=True,
                       text=True)
    T.check(r.returncode == 0, "sparse-segment: %s" % r.stderr)
    figure("sparse segment", r.stdout.strip())
    before = tmpfs_used_kb()
    t0 = time.monotonic()
    d = ctl(BUILD, SEGMENT, "dump")
    took = time.monotonic() - t0
    grown = tmpfs_used_kb() - before
    figure("dump: exit, seconds, tmpfs growth KiB",
           (d.returncode, round(took, 3), grown))
    T.check(d.returncode == 0, "dump: %s" % d.stderr[-200:])
    T.check(grown < 1024, "tmpfs grew by %d KiB" % grown)
    exp = Exporter(BUILD, SEGMENT)
    try:
        status, _ = scrape_status(exp)
        T.check(status == 200, "scrape: %s" % status)
        grown = tmpfs_used_kb() - before
        figure("tmpfs growth after an exporter scrape (KiB)", grown)
        T.check(grown < 1024, "tmpfs grew by %d KiB" % grown)
    finally:
        exp.stop()


def hostile_read_locks(ready_w):
    """As nobody:nogroup, read-lock every lock byte of the segment (and try
    the claim file), then wait to be killed."""
    import fcntl
    os.setgid(65534)
    os.setuid(65534)
    fd = os.open(PATH, os.O_RDONLY)
    # struct flock: l_type, l_whence, l_start, l_len, l_pid (x86-64)
    lock = struct.pack("hhxxxxqqixxxx", fcntl.F_RDLCK, os.SEEK_SET,
                       1 << 40, 0, 0)
    fcntl.fcntl(fd, 37, lock)           # F_OFD_SETLK: to the end
    try:
        os.open(PATH + ".claim", os.O_RDONLY)
        claim = b"opened"
    except PermissionError:
        claim = b"denied"
    except FileNotFoundError:
        claim = b"missing"
    os.write(ready_w, claim)
    time.sleep(600)


def writers_table():
    """{slot: (state, live)} from ctl writers."""
    out = {}
    r = ctl(BUILD, SEGMENT, "writers")
    for line in r.stdout.splitlines()[1:]:
        f = line.split()
        out[int(f[0])] = (f[1], f[2])
    return out


def test_read_locks():
    """A read-only group member read-locks every slot byte: it used to deny
    every new writer a slot (all went to the fallback block) and make dead
    writers look alive."""
    r = ctl(BUILD, SEGMENT, "create", "--mode", "0640", "--group",
            "nogroup", "--max-writers", "4")
    T.check(r.returncode == 0, "create: %s" % r.stderr)
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            hostile_read_locks(wr)
        finally:
            os._exit(1)
    os.close(wr)
    claim = os.read(rd, 16)
    figure("hostile reader opening the claim file", claim.decode())
    T.check(claim == b"denied", "claim file readable by the group")
    try:
        dead = write_series(1, stay=True)   # slot 0, then SIGKILLed
        dead.kill()
        dead.wait(10)
        table = writers_table()
        figure("a killed writer under the read locks", table)
        T.check(table.get(0) == ("active", "no"),
                "the dead writer looks alive: %s" % (table.get(0),))
        live = [write_series(1, stay=True) for _ in range(4)]
        table = writers_table()
        figure("4 writers started under the read locks", table)
        info = ctl(BUILD, SEGMENT, "dump", "--format", "health").stdout
        T.check('"writers_full": 0' in info,
                "a writer went to the fallback block")
        T.check(all(v == ("active", "yes") for v in table.values()) and
                len(table) == 4, "4 live writers in their own slots: %s"
                % table)
        for w in live:
            w.stdin.close()
            w.wait(10)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_fifo():
    """Anyone may mkfifo in /dev/shm: a FIFO at the segment's or the claim
    file's name used to block every opener in open(2) for good (the
    exporter's refresher, so SIGTERM hung too; shmetrics-ctl; a writer's
    shmet_open)."""
    claim = PATH + ".claim"
    exp = Exporter(BUILD, SEGMENT)        # waits for the segment
    try:
        os.mkfifo(PATH, 0o666)
        time.sleep(0.5)                    # the refresher looks every 100 ms
        status, body = scrape_status(exp, "/metrics/health")
        T.check(status == 503, "health with a FIFO at the name: %s" % status)
        t0 = time.monotonic()
        r = subprocess.run([os.path.join(BUILD, "tools", "shmetrics-ctl"),
                            "--segment", SEGMENT, "info"],
                           capture_output=True, text=True, timeout=10)
        figure("ctl info on a FIFO: exit, seconds, message",
               (r.returncode, round(time.monotonic() - t0, 3),
                r.stderr.strip()))
        T.check(r.returncode != 0 and r.stderr.strip(),
                "ctl info on a FIFO: exit %d %r" % (r.returncode, r.stderr))
        # a writer refuses it at once instead of blocking in shmet_open
        w = subprocess.run([helper("series-writer"), SEGMENT, "1"],
                           capture_output=True, text=True, timeout=10)
        T.check(w.returncode != 0, "a writer attached to a FIFO")
        figure("writer on a FIFO: message", w.stderr.strip())
        # the FIFO goes, a real segment comes: served
        os.unlink(PATH)
        r = ctl(BUILD, SEGMENT, "create")
        T.check(r.returncode == 0, "create: %s" % r.stderr)
        write_series(100)
        ok = wait_until(lambda: scrape_status(exp)[0] == 200, 10)
        T.check(ok, "segment served after the FIFO went")
        # a FIFO at the claim file's name: readers and writers go on
        os.unlink(claim)
        os.mkfifo(claim, 0o666)
        r = ctl(BUILD, SEGMENT, "info")
        figure("ctl info with a FIFO claim file: exit, message",
               (r.returncode, r.stderr.strip()))
        T.check(r.returncode == 0, "ctl info with a FIFO claim file: %r" %
                r.stderr)
        time.sleep(0.3)
        T.check(scrape_status(exp)[0] == 200,
                "served with a FIFO claim file")
    finally:
        code, secs = exp.stop()
        figure("exporter SIGTERM: exit, seconds", (code, round(secs, 2)))
        T.check(code == 0 and secs < 5, "exporter stops on SIGTERM: %s in "
                "%.1f s" % (code, secs))
        for p in (PATH, claim):
            if os.path.exists(p) and not os.path.isfile(p):
                os.unlink(p)


TESTS = {
    "full-tmpfs": test_full_tmpfs, "shrink": test_shrink,
    "active-slots": test_active_slots, "read-locks": test_read_locks,
    "fifo": test_fifo, "huge-cells": test_huge_cells,
    "aliased-series": test_aliased_series,
    "sparse-metadata": test_sparse_metadata,
}


def main():
    if os.environ.get("SHMETRICS_TRUST_NS") != "1":
        if os.geteuid() != 0:
            print("needs root for a private /dev/shm")
            sys.exit(77)
        # a private mount namespace with its own small /dev/shm
        script = ("mount --make-rprivate / && "
                  "mount -t tmpfs -o size=%dm tmpfs /dev/shm && "
                  'exec "$@"' % TMPFS_MB)
        env = dict(os.environ, SHMETRICS_TRUST_NS="1")
        sys.exit(subprocess.call(
            ["unshare", "-m", "sh", "-c", script, "sh", sys.executable,
             *sys.argv], env=env))
    try:
        TESTS[TEST]()
    finally:
        ctl(BUILD, SEGMENT, "destroy")
    T.exit()


if __name__ == "__main__":
    main()
