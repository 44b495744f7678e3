#!/usr/bin/env python3
"""The mechanism behind standby segments, without the broker: fdatasync latency of 5000-byte
groups at ~1000 groups/s into (1) a growing file, (2) already-written space, (3) written space
while a second file is zero-filled at 10 MB/s in 256 KiB pieces, each handed to writeback with
sync_file_range (WAIT_BEFORE|WRITE|WAIT_AFTER) and never fsynced. Files in the given directory."""
import ctypes, os, sys, time

D = sys.argv[1] if len(sys.argv) > 1 else '.'
libc = ctypes.CDLL('libc.so.6', use_errno=True)
libc.sync_file_range.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]


def pct(l):
    l = sorted(l)
    n = len(l)
    return 'p50 %.3f p99 %.3f p999 %.3f max %.3f' % (l[n // 2] * 1e3, l[int(n * .99)] * 1e3,
                                                      l[int(n * .999)] * 1e3, l[-1] * 1e3)


def run(mode, n=3000, group=5000, fill_rate=10e6, piece=256 << 10):
    a_path, b_path = os.path.join(D, 'rill-probe-a'), os.path.join(D, 'rill-probe-b')
    a = os.open(a_path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    if mode != 'grow':
        z = b'\0' * (1 << 20)
        for _ in range(32):
            os.write(a, z)
        os.fdatasync(a)
        os.lseek(a, 0, 0)
    b = None
    if mode == 'standby':
        b = os.open(b_path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
        bpos, zp = 0, b'\0' * piece
    buf, lat, filled, t0 = b'x' * group, [], 0, time.time()
    for _ in range(n):
        os.write(a, buf)
        t = time.perf_counter()
        os.fdatasync(a)
        lat.append(time.perf_counter() - t)
        if b is not None and filled < fill_rate * (time.time() - t0):
            os.pwrite(b, zp, bpos)
            assert libc.sync_file_range(b, bpos, piece, 7) == 0
            bpos += piece
            filled += piece
        while time.perf_counter() - t < 0.001:
            pass
    os.close(a)
    os.unlink(a_path)
    if b is not None:
        os.close(b)
        os.unlink(b_path)
    print('%-9s fdatasync of %d B groups: %s' % (mode, group, pct(lat)))


for _ in range(3):
    for m in ['grow', 'overwrite', 'standby']:
        run(m)
