#!/usr/bin/env python3
"""Checks what docker/test-compose.sh read back from its topic against what it produced.

usage: check-records.py BATCHES KILL_TIME DESCRIBE_JSON CONSUMED_JSONL [BASELINE_JSONL]

BATCHES: one line per `rillctl produce` run: name, record count, exit code, start and end time
(seconds since the epoch), tab-separated; the run's values are name-0 .. name-(count-1), each
record keyed by its value. A run that exited 0 had every record acknowledged (acks=all).
KILL_TIME: when a partition leader was killed (0 = none).
DESCRIBE_JSON: `rillctl --json topic describe TOPIC` taken just before the read.
CONSUMED_JSONL: `rillctl consume TOPIC --format json` of every partition from the start.
BASELINE_JSONL: an earlier read; every record in it must still be at its partition and offset.

Fails (exit 1, naming each problem) when an acknowledged record is missing, a record is present
twice, a partition's offsets are not exactly log start .. high watermark, or a record's value was
never produced. The producer retries without idempotence (client/include/rill/client/config.h),
so a record whose request was in flight when its leader was killed may be written twice: a
duplicate is allowed, and reported, only for a run that was under way at KILL_TIME.
"""
import collections
import json
import sys


def main():
    batches_path, kill_time, describe_path, consumed_path = sys.argv[1:5]
    baseline_path = sys.argv[5] if len(sys.argv) > 5 else None
    kill_time = float(kill_time)
    problems = []

    produced = {}  # value -> (batch name, acked, overlapped the kill)
    acked_batches = failed_batches = 0
    with open(batches_path) as f:
        for line in f:
            name, count, rc, start, end = line.split()
            acked = rc == "0"
            overlap = kill_time > 0 and float(start) <= kill_time <= float(end)
            acked_batches += acked
            failed_batches += not acked
            for i in range(int(count)):
                produced[f"{name}-{i}"] = (name, acked, overlap)

    with open(describe_path) as f:
        topic = json.load(f)[0]
    bounds = {p["partition"]: (p["log_start_offset"], p["high_watermark"])
              for p in topic["partitions"]}

    records = []
    with open(consumed_path) as f:
        for line in f:
            if line.strip():
                records.append(json.loads(line))

    by_partition = collections.defaultdict(list)
    seen = collections.Counter()
    for r in records:
        by_partition[r["partition"]].append(r["offset"])
        seen[r["value"]] += 1
        if r["key"] != r["value"]:
            problems.append(f"p{r['partition']}@{r['offset']}: key {r['key']!r} != value "
                            f"{r['value']!r}")
        if r["value"] not in produced:
            problems.append(f"p{r['partition']}@{r['offset']}: value {r['value']!r} was never "
                            f"produced")

    for p, (start, hw) in sorted(bounds.items()):
        offsets = sorted(by_partition.get(p, []))
        if offsets != list(range(start, hw)):
            dup = [o for o, n in collections.Counter(offsets).items() if n > 1]
            problems.append(f"partition {p}: read {len(offsets)} records at offsets "
                            f"{offsets[:1]}..{offsets[-1:]} (duplicated offsets {dup[:5]}), "
                            f"expected exactly {start}..{hw - 1}")
    extra = set(by_partition) - set(bounds)
    if extra:
        problems.append(f"records from partitions {sorted(extra)} the topic does not have")

    missing = [v for v, (_, acked, _) in produced.items() if acked and seen[v] == 0]
    if missing:
        problems.append(f"{len(missing)} acknowledged records missing, e.g. {missing[:5]}")
    allowed_dups, bad_dups = [], []
    for v, n in seen.items():
        if n > 1 and v in produced:
            (allowed_dups if produced[v][2] else bad_dups).append(v)
    if bad_dups:
        problems.append(f"{len(bad_dups)} records present more than once, e.g. {bad_dups[:5]}")

    if baseline_path:
        now = {(r["partition"], r["offset"]): r["value"] for r in records}
        moved = 0
        with open(baseline_path) as f:
            for line in f:
                if not line.strip():
                    continue
                r = json.loads(line)
                if now.get((r["partition"], r["offset"])) != r["value"]:
                    moved += 1
                    if moved <= 5:
                        problems.append(f"p{r['partition']}@{r['offset']}: was {r['value']!r}, now "
                                        f"{now.get((r['partition'], r['offset']))!r}")
        if moved:
            problems.append(f"{moved} records of the earlier read not at their offsets any more")

    acked_records = sum(1 for _, a, _ in produced.values() if a)
    print(f"check: {len(records)} records read from {len(bounds)} partitions; "
          f"{acked_records} acknowledged in {acked_batches} produce runs, "
          f"{failed_batches} runs not fully acknowledged; "
          f"{len(allowed_dups)} duplicates from runs in flight at the kill"
          + (f"; every record of the earlier read at its offset" if baseline_path and not problems
             else ""))
    for p in problems:
        print(f"check: FAIL: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
