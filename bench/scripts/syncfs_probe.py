#!/usr/bin/env python3
"""Many small fdatasyncs against one syncfs (docs/STORAGE.md, shared syncs).

Writes SIZE bytes to each of FILES files in a temp dir on the current directory's filesystem,
then makes them durable with an fdatasync per file on THREADS threads; then writes again and
makes them durable with one syncfs(2). Three rounds; prints both times per round.
usage: python3 bench/scripts/syncfs_probe.py [FILES=1000] [SIZE=1600] [THREADS=4]
"""
import ctypes
import os
import shutil
import sys
import tempfile
import threading
import time

files = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
size = int(sys.argv[2]) if len(sys.argv) > 2 else 1600
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
libc = ctypes.CDLL(None, use_errno=True)
d = tempfile.mkdtemp(prefix="syncfs-probe.", dir=".")
try:
    fds = [os.open(f"{d}/f{i}", os.O_CREAT | os.O_WRONLY | os.O_TRUNC) for i in range(files)]
    buf = b"x" * size
    for rnd in range(3):
        for fd in fds:
            os.write(fd, buf)
        t0 = time.time()
        ths = [threading.Thread(target=lambda k: [os.fdatasync(fds[j]) for j in range(k, files, threads)],
                                args=(k,)) for k in range(threads)]
        [t.start() for t in ths]
        [t.join() for t in ths]
        t1 = time.time()
        for fd in fds:
            os.write(fd, buf)
        t2 = time.time()
        if libc.syncfs(fds[0]) != 0:
            raise OSError(ctypes.get_errno(), "syncfs")
        t3 = time.time()
        print(f"round {rnd + 1}: fdatasync x{files} on {threads} threads {1000 * (t1 - t0):.1f} ms, "
              f"one syncfs {1000 * (t3 - t2):.1f} ms")
    for fd in fds:
        os.close(fd)
finally:
    shutil.rmtree(d)
