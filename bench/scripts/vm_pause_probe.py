#!/usr/bin/env python3
"""Whole-VM pauses: a thread sleeps 0.5 ms in a loop and records every wake-up that came more
than --over-ms late, with its phase within a 100 ms period. A host that throttles the VM in CFS
bandwidth periods (100 ms by default) shows as late wake-ups spaced by multiples of 100 ms, at
one phase of the period; CPU contention inside the guest shows as scattered ones.

  vm_pause_probe.py --matrix            # idle, CPU burners, an fdatasync loop, and both
  vm_pause_probe.py --matrix --fsync-rates 1000,2000,3000 [--overwrite]
                                        # one burner beside an fdatasync loop paced at each rate
                                        # (appends, or overwrites of a zero-filled file)
  vm_pause_probe.py -- CMD ARGS...       # probe while CMD runs (a benchmark), then report
  vm_pause_probe.py --json F -- CMD ...  # the same, the report to stderr and as JSON to F

bench/RESULTS.md, session 19, has what it found on the CI kind of machine."""
import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time


def burn(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def fsync_loop(seconds, directory, out, rate=0, overwrite=False):
    """fdatasyncs of 170 B writes: appends, or overwrites of a zero-filled (and synced) file;
    as fast as they go, or paced at `rate` per second."""
    path = os.path.join(directory, 'rill-vm-pause-probe.%d' % os.getpid())
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    if overwrite:
        os.write(fd, bytes(64 << 20))
        os.fsync(fd)
        os.lseek(fd, 0, os.SEEK_SET)
    n = 0
    end = time.monotonic() + seconds
    due = time.monotonic()
    try:
        while time.monotonic() < end:
            os.write(fd, b'x' * 170)
            os.fdatasync(fd)
            n += 1
            if rate > 0:
                due += 1.0 / rate
                time.sleep(max(0.0, due - time.monotonic()))
    finally:
        os.close(fd)
        os.unlink(path)
    out.put(n / seconds)


def probe(stop, over_s):
    """Late wake-ups (time, lateness) until stop() is true."""
    late = []
    prev = time.monotonic()
    while not stop():
        time.sleep(0.0005)
        now = time.monotonic()
        if now - prev > over_s:
            late.append((now, now - prev))
        prev = now
    return late


def report(label, late, seconds, out=sys.stdout, json_path=None):
    lens = sorted(d * 1e3 for _, d in late)
    gaps = [round((late[i + 1][0] - late[i][0]) * 1e3) for i in range(len(late) - 1)]
    on_100 = sum(1 for g in gaps if g >= 95 and abs(g - round(g / 100) * 100) <= 5)
    phases = sorted(round((t * 1e3) % 100) for t, _ in late)
    paused = 100 * sum(lens) / 1e3 / seconds
    if json_path:
        with open(json_path, 'w') as f:
            json.dump({'late': len(late), 'max_ms': lens[-1] if lens else 0, 'paused_pct': paused,
                       'seconds': seconds, 'spaced_by_100ms': on_100, 'gaps': len(gaps)}, f)
    print('%-34s late wake-ups %4d  max %6.1f ms  paused %5.2f%% of %.0f s  '
          'spaced by a multiple of 100 ms: %d of %d  phases (ms mod 100) %s' %
          (label, len(late), lens[-1] if lens else 0, paused, seconds, on_100, len(gaps),
           [phases[0], phases[len(phases) // 2], phases[-1]] if phases else '-'), file=out)


def matrix(args):
    rows = [(0, 0, 0), (2, 0, 0), (0, 1, 0), (1, 1, 0), (2, 1, 0)]
    if args.fsync_rates:
        rows = [(1, 1, int(r)) for r in args.fsync_rates.split(',')]
    for burners, fsyncers, pace in rows:
        rates = mp.Queue()
        procs = [mp.Process(target=burn, args=(args.seconds,)) for _ in range(burners)]
        procs += [mp.Process(target=fsync_loop,
                             args=(args.seconds, args.dir, rates, pace, args.overwrite))
                  for _ in range(fsyncers)]
        for p in procs:
            p.start()
        end = time.monotonic() + args.seconds
        late = probe(lambda: time.monotonic() >= end, args.over_ms / 1e3)
        for p in procs:
            p.join()
        rate = ', %.0f fdatasyncs/s' % rates.get() if fsyncers else ''
        report('%d burner(s), %d fsync loop(s)%s' % (burners, fsyncers, rate), late, args.seconds)


def during(args):
    start = time.monotonic()
    proc = subprocess.Popen(args.cmd)
    late = probe(lambda: proc.poll() is not None, args.over_ms / 1e3)
    report('during: ' + os.path.basename(args.cmd[0]), late, time.monotonic() - start,
           sys.stderr if args.json else sys.stdout, args.json)
    return proc.returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--matrix', action='store_true', help='run the load matrix')
    ap.add_argument('--seconds', type=float, default=5, help='per matrix row')
    ap.add_argument('--fsync-rates', help='with --matrix: comma-separated paced fsync rates')
    ap.add_argument('--overwrite', action='store_true',
                    help='with --matrix: the fsync loop overwrites a zero-filled file')
    ap.add_argument('--over-ms', type=float, default=3, help='a wake-up this late counts')
    ap.add_argument('--dir', default=tempfile.gettempdir(), help='where the fsync loop writes')
    ap.add_argument('--json', help='with CMD: write the report as JSON here, and to stderr')
    ap.add_argument('cmd', nargs=argparse.REMAINDER, help='-- CMD ARGS: probe while it runs')
    args = ap.parse_args()
    if args.cmd and args.cmd[0] == '--':
        args.cmd = args.cmd[1:]
    if args.matrix:
        matrix(args)
        return 0
    if not args.cmd:
        ap.error('give --matrix or -- CMD')
    return during(args)


if __name__ == '__main__':
    sys.exit(main())
