#!/bin/bash
# acks=all produce on a replicated partition (RF=3) against an unreplicated one (RF=1), in one
# run on one three-broker cluster: throughput of 100 B and 1 KiB records in interleaved rounds
# (rf1, rf3, rf1, rf3, ... so the host's drift lands on both alike), their ratio, and then the
# produce-to-ack latency of RF=3 (and RF=1 for reference) at a fixed open-loop rate.
#
# The cluster: three rill-broker processes on loopback, a three-voter controller quorum (all nine
# ports picked free beforehand, distinct), each with its own data dir under
# a temp dir; all stopped on exit (also on ^C) and the temp dir removed. Topics, one partition
# each: rf1 (RF=1) and rf3 (RF=3, waited for until its ISR has all three). Each round:
#   rill-bench -b ALL3 -t TOPIC --mode produce -n N -s SIZE --acks -1 --json
# and the latency runs (rf1 as the baseline, then rf3):
#   rill-bench -b ALL3 -t TOPIC --mode produce -n RATE*SECS -s 100 --acks -1 --rate RATE \
#     --linger-ms L --json        (L in LINGERS, default "0 1 2")
#
# IDEMPOTENCE=compare measures the idempotent producer's cost instead (docs/IDEMPOTENCE.md): each
# round runs every topic with `--idempotence off` and then `--idempotence on`, and the tables
# compare on against off per topic (the fixed-rate runs are skipped).
#
# usage: [BROKER=path] [BENCH=path] [RILLCTL=path] [ROUNDS=2] [N100=2000000] [N1K=300000]
#        [RATE=50000] [SECS=10] [LINGERS="0 1 2"] [IDEMPOTENCE=compare] [RILL_BENCH_TMP=dir]
#        [PAUSE_PROBE=1] bench/scripts/replicated_compare.sh
# PAUSE_PROBE=1 runs each fixed-rate rill-bench under bench/scripts/vm_pause_probe.py and adds a
# column: how much of the run the VM was stopped (late wake-ups of a 0.5 ms sleep loop; how many
# of them were spaced by a multiple of 100 ms, the host's throttling periods; RESULTS.md, session
# 19).
set -u
cd "$(dirname "$0")/../.." || exit 1
export -n RILL_BENCH_TMP RILL_BENCH_ARGS  # ours: a broker started here would warn of RILL_* it does not know
BROKER=${BROKER:-build/broker/rill-broker}
BENCH=${BENCH:-build/client/rill-bench}
RILLCTL=${RILLCTL:-build/client/rillctl}
ROUNDS=${ROUNDS:-2}
N100=${N100:-2000000}
N1K=${N1K:-300000}
RATE=${RATE:-50000}
SECS=${SECS:-10}
# The producer's linger in the fixed-rate runs, each value in turn: 0 sends every record as soon
# as the sender is free (about one request per record at 10,000/s), 1-2 ms batch a paced load.
LINGERS=${LINGERS:-0 1 2}
IDEMPOTENCE=${IDEMPOTENCE:-}

for b in "$BROKER" "$BENCH" "$RILLCTL"; do
  [ -x "$b" ] || { echo "missing $b: cmake --build build -j1 --target rill-broker rill-bench rillctl"; exit 1; }
done

D=$(mktemp -d "${RILL_BENCH_TMP:-${TMPDIR:-/tmp}}/rill-replicated-compare.XXXX")
PIDS=""
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Nine distinct free ports, all held open until all are chosen: every listener of the three
# brokers gets one, so no broker's kernel-chosen port can land on another's internal port (which
# the voters list must name before any broker starts).
free_ports() {
  python3 -c '
import socket
socks = [socket.socket() for _ in range(9)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))'
}

# ---- the cluster ----
read -r -a PORTS <<< "$(free_ports)"
declare -a INTERNAL CLIENT HTTP
VOTERS=""
for id in 1 2 3; do
  CLIENT[$id]=${PORTS[$((3 * id - 3))]}
  INTERNAL[$id]=${PORTS[$((3 * id - 2))]}
  HTTP[$id]=${PORTS[$((3 * id - 1))]}
  VOTERS+="${VOTERS:+,}$id@127.0.0.1:${INTERNAL[$id]}"
done
for id in 1 2 3; do
  mkdir -p "$D/node$id"
  $BROKER --node.id "$id" --controller.voters "$VOTERS" \
    --data.dir "$D/node$id/data" --listeners.client "127.0.0.1:${CLIENT[$id]}" \
    --listeners.internal "127.0.0.1:${INTERNAL[$id]}" --listeners.http "127.0.0.1:${HTTP[$id]}" \
    --ports-file "$D/node$id/ports" --log.level warn \
    > "$D/node$id/broker.log" 2>&1 &
  PIDS+=" $!"
done
BOOT=""
for id in 1 2 3; do
  for _ in $(seq 300); do grep -q http= "$D/node$id/ports" 2>/dev/null && break; sleep 0.1; done
  port=$(sed -n 's/^client=//p' "$D/node$id/ports")
  [ -n "$port" ] || { echo "broker $id did not start:"; tail -5 "$D/node$id/broker.log"; exit 1; }
  BOOT+="${BOOT:+,}127.0.0.1:$port"
done
echo "cluster: $BOOT (voters $VOTERS), data under $D"

for _ in $(seq 300); do
  n=$($RILLCTL -b "$BOOT" --json cluster info 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["brokers"]))' 2>/dev/null)
  [ "${n:-0}" = 3 ] && break
  sleep 0.2
done
[ "${n:-0}" = 3 ] || { echo "the cluster did not list 3 brokers"; exit 1; }

$RILLCTL -b "$BOOT" topic create rf1 --partitions 1 --replication-factor 1 > /dev/null || exit 1
$RILLCTL -b "$BOOT" topic create rf3 --partitions 1 --replication-factor 3 > /dev/null || exit 1
for _ in $(seq 300); do
  isr=$($RILLCTL -b "$BOOT" --json topic describe rf3 2>/dev/null |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)[0]["partitions"][0]["isr"]))' 2>/dev/null)
  [ "${isr:-0}" = 3 ] && break
  sleep 0.2
done
[ "${isr:-0}" = 3 ] || { echo "rf3 did not get an ISR of 3"; exit 1; }
$RILLCTL -b "$BOOT" topic describe rf1 rf3

# ---- throughput rounds ----
field() {  # field <json file> <python expression on j>
  python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null
}
RESULTS="$D/results.txt"
: > "$RESULTS"
for size in 100 1024; do
  n=$N100
  [ "$size" = 1024 ] && n=$N1K
  for round in $(seq "$ROUNDS"); do
    variants="rf1 rf3"
    [ "$IDEMPOTENCE" = compare ] && variants="rf1:off rf1:on rf3:off rf3:on"
    for variant in $variants; do
      topic=${variant%%:*}
      extra=()
      [ "$topic" != "$variant" ] && extra=(--idempotence "${variant#*:}")
      out="$D/${variant/:/-}-$size-$round.json"
      $BENCH -b "$BOOT" -t "$topic" --mode produce -n "$n" -s "$size" --acks -1 "${extra[@]}" \
        --json > "$out" || echo "rill-bench failed ($variant, $size B, round $round)"
      rps=$(field "$out" 'round(j["produce"]["records_per_sec"])')
      mbs=$(field "$out" 'j["produce"]["mb_per_sec"]')
      p99=$(field "$out" 'j["produce"]["ack_latency_ms"]["p99"]')
      failed=$(field "$out" 'j["produce"]["failed"]')
      echo "$size $round $variant ${rps:-0} ${mbs:-0} ${p99:-0} ${failed:-?}" | tee -a "$RESULTS"
    done
  done
done

if [ "$IDEMPOTENCE" = compare ]; then
  echo
  echo "## acks=-1 produce throughput, one partition, idempotence on against off (same run, interleaved)"
  echo
  echo "| record | topic | round | off records/s (MB/s) | on records/s (MB/s) | on/off | ack p99 ms off / on |"
  echo "|---|---|---|---|---|---|---|"
  python3 - "$RESULTS" <<'EOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    size, rnd, variant, rps, mbs, p99, failed = line.split()
    topic, mode = variant.split(":")
    rows.setdefault((int(size), topic, int(rnd)), {})[mode] = (float(rps), float(mbs), float(p99), failed)
tot = {}
for (size, topic, rnd), r in sorted(rows.items()):
    a, b = r.get("off"), r.get("on")
    if not a or not b:
        continue
    t = tot.setdefault((size, topic), [0.0, 0.0])
    t[0] += a[0]; t[1] += b[0]
    print(f"| {size} B | {topic} | {rnd} | {a[0]:,.0f} ({a[1]:.1f}) | {b[0]:,.0f} ({b[1]:.1f}) | "
          f"{b[0] / a[0] if a[0] else 0:.1%} | {a[2]:.2f} / {b[2]:.2f} |")
    if a[3] not in ("0", "?") or b[3] not in ("0", "?"):
        print(f"|  |  | failed records: off {a[3]}, on {b[3]} | | | | |")
for (size, topic), (a, b) in sorted(tot.items()):
    print(f"| {size} B | {topic} | all | {a:,.0f} (sum) | {b:,.0f} (sum) | {b / a if a else 0:.1%} | |")
EOF
  exit 0
fi

# ---- fixed rate: rf1 as the baseline, then rf3, for each producer linger ----
for linger in $LINGERS; do
  for topic in rf1 rf3; do
    probe=()
    [ -n "${PAUSE_PROBE:-}" ] &&
      probe=(python3 bench/scripts/vm_pause_probe.py --json "$D/$topic-rate-$linger.pause" --)
    "${probe[@]}" $BENCH -b "$BOOT" -t "$topic" --mode produce -n $((RATE * SECS)) -s 100 --acks -1 \
      --rate "$RATE" --linger-ms "$linger" --json > "$D/$topic-rate-$linger.json" ||
      echo "rill-bench failed ($topic, rate $RATE, linger $linger)"
  done
done

echo
echo "## acks=-1 produce throughput, one partition, RF=3 against RF=1 (same run, interleaved)"
echo
echo "| record | round | RF=1 records/s (MB/s) | RF=3 records/s (MB/s) | RF=3/RF=1 | ack p99 ms RF=1 / RF=3 |"
echo "|---|---|---|---|---|---|"
python3 - "$RESULTS" <<'EOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    size, rnd, topic, rps, mbs, p99, failed = line.split()
    rows.setdefault((int(size), int(rnd)), {})[topic] = (float(rps), float(mbs), float(p99), failed)
tot = {}
for (size, rnd), r in sorted(rows.items()):
    a, b = r.get("rf1"), r.get("rf3")
    if not a or not b:
        continue
    ratio = b[0] / a[0] if a[0] else 0
    tot.setdefault(size, [0.0, 0.0])
    tot[size][0] += a[0]; tot[size][1] += b[0]
    print(f"| {size} B | {rnd} | {a[0]:,.0f} ({a[1]:.1f}) | {b[0]:,.0f} ({b[1]:.1f}) | "
          f"{ratio:.0%} | {a[2]:.2f} / {b[2]:.2f} |")
    if a[3] not in ("0", "?") or b[3] not in ("0", "?"):
        print(f"|  | failed records: rf1 {a[3]}, rf3 {b[3]} | | | | |")
for size, (a, b) in sorted(tot.items()):
    print(f"| {size} B | all | {a:,.0f} (sum) | {b:,.0f} (sum) | {b / a if a else 0:.0%} | |")
EOF
echo
echo "## $RATE records/s for ${SECS} s, 100 B, acks=-1, produce-to-ack latency"
echo
pause_h="" pause_s=""
[ -n "${PAUSE_PROBE:-}" ] && pause_h=" VM paused |" && pause_s="---|"
echo "| topic | linger ms | achieved records/s | p50 ms | p99 ms | p99.9 ms | max ms | failed |$pause_h"
echo "|---|---|---|---|---|---|---|---|$pause_s"
for linger in $LINGERS; do
for topic in rf1 rf3; do
  LAT="$D/$topic-rate-$linger.json"
  pause=""
  [ -n "${PAUSE_PROBE:-}" ] && pause=" $(field "$D/$topic-rate-$linger.pause" \
    '"%.1f%% (%d late, max %.1f ms, %d of %d gaps x100 ms)" % (j["paused_pct"], j["late"], j["max_ms"], j["spaced_by_100ms"], j["gaps"])') |"
  echo "| $topic | $linger | $(field "$LAT" 'round(j["produce"]["records_per_sec"])') |" \
    "$(field "$LAT" 'j["produce"]["ack_latency_ms"]["p50"]') |" \
    "$(field "$LAT" 'j["produce"]["ack_latency_ms"]["p99"]') |" \
    "$(field "$LAT" 'j["produce"]["ack_latency_ms"]["p999"]') |" \
    "$(field "$LAT" 'j["produce"]["ack_latency_ms"]["max"]') |" \
    "$(field "$LAT" 'j["produce"]["failed"]') |$pause"
done
done
