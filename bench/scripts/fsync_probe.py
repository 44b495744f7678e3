#!/usr/bin/env python3
"""fdatasync latency of 4 KiB appends (the file grows) and of 4 KiB overwrites (written space),
2000 each, in a file under the given directory (default: the current one): the disk's own floor
for a group commit, measured in the same run as the broker."""
import os, sys, time

path = os.path.join(sys.argv[1] if len(sys.argv) > 1 else '.', 'rill-fsync-probe')
fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
buf = b'x' * 4096


def run(name):
    lat = []
    for _ in range(2000):
        os.write(fd, buf)
        t = time.perf_counter()
        os.fdatasync(fd)
        lat.append(time.perf_counter() - t)
    lat.sort()
    print('%s 4k fdatasync ms p50 %.3f p99 %.3f p999 %.3f max %.3f' %
          (name, lat[1000] * 1e3, lat[1980] * 1e3, lat[1998] * 1e3, lat[-1] * 1e3))


try:
    run('append')
    os.lseek(fd, 0, 0)
    run('overwrite')
finally:
    os.close(fd)
    os.unlink(path)
