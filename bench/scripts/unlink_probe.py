#!/usr/bin/env python3
"""Does deleting a large file stall other files' fsyncs on this disk?

Writes a file of --mb MiB (fdatasync'ed), then times --n 4 KiB append+fdatasync rounds on a
second file, twice: once alone, once while the large file is unlinked a little after the start
(and a `sync` forces the journal commit that carries the unlink, which with ext4's `discard`
mount option also trims the freed blocks). Prints p50/p99/max of both runs and the unlink's own
time. Run it in a directory on the disk under test, with nothing else on the machine:

    python3 bench/scripts/unlink_probe.py [--dir build] [--mb 1024] [--n 3000]
"""
import argparse
import os
import threading
import time


def fsync_rounds(path, n, during=None):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    buf = b"x" * 4096
    lat = []
    try:
        for i in range(n):
            if during is not None and i == n // 10:
                during.start()
            os.write(fd, buf)
            t = time.perf_counter()
            os.fdatasync(fd)
            lat.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    return lat[len(lat) // 2] * 1e3, lat[len(lat) * 99 // 100] * 1e3, lat[-1] * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="build")
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--chunk-mb", type=int, default=0,
                    help="also: shrink the file by this much per step (ftruncate + fdatasync) "
                         "before the unlink, the way storage deletes segments")
    a = ap.parse_args()
    big = os.path.join(a.dir, "unlink_probe.big")
    probe = os.path.join(a.dir, "unlink_probe.fsync")
    with open("/proc/mounts") as m:
        opts = [l.split()[3] for l in m if l.split()[1] == "/"]
    print("root mount options:", opts[0] if opts else "?")

    def make_big():
        fd = os.open(big, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        chunk = b"\1" * (1 << 20)
        for _ in range(a.mb):
            os.write(fd, chunk)
        os.fdatasync(fd)
        os.close(fd)

    make_big()
    p50, p99, mx = fsync_rounds(probe, a.n)
    print("alone:          4k fdatasync ms p50 %.3f p99 %.3f max %.3f" % (p50, p99, mx))
    def during(removal, label, what):
        """fsync rounds while `removal` (then a sync) runs on another thread."""
        make_big()
        took = {}

        def run():
            t = time.perf_counter()
            removal()
            os.sync()
            took["s"] = time.perf_counter() - t

        th = threading.Thread(target=run)
        p50, p99, mx = fsync_rounds(probe, a.n, during=th)
        th.join()
        print("%-15s 4k fdatasync ms p50 %.3f p99 %.3f max %.3f  (%s: %.0f ms)"
              % (label, p50, p99, mx, what, took["s"] * 1e3))

    during(lambda: os.unlink(big), "during unlink:", "unlink+sync of %d MiB" % a.mb)
    if a.chunk_mb <= 0:
        return

    def shrink_then_remove():
        fd = os.open(big, os.O_WRONLY)
        size = os.fstat(fd).st_size
        while size > 0:
            size = max(0, size - a.chunk_mb * (1 << 20))
            os.ftruncate(fd, size)
            os.fdatasync(fd)
        os.close(fd)
        os.unlink(big)

    during(shrink_then_remove, "during shrink:", "%d MiB steps, then unlink" % a.chunk_mb)

if __name__ == "__main__":
    main()
