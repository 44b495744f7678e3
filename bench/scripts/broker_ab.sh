#!/bin/bash
# Two (or more) rill-broker builds side by side at a fixed produce rate: each round starts a fresh
# broker of each build in turn (data in a temp dir, ports chosen by the kernel), warms it up with
# 20,000 records, then runs
#   rill-bench -t ab --mode produce -n N -s 100 --rate RATE --broker-pid PID ARGS
# and prints the ack latency, the broker's CPU over the run, and the context switches (voluntary
# plus involuntary, from /proc/PID/task/*/status) of the whole broker and of its rill-flush
# threads alone. Rounds interleave the builds, so the host's drift lands on each alike.
#
# usage: BROKERS="path/a path/b" [BENCH=path] [RATE=10000] [N=100000] [ROUNDS=2]
#        [RILL_BENCH_ARGS="--linger-ms 0"] [RILL_BENCH_TMP=dir] bench/scripts/broker_ab.sh
set -u
cd "$(dirname "$0")/../.." || exit 1
export -n RILL_BENCH_TMP RILL_BENCH_ARGS  # ours: a broker started here would warn of RILL_* it does not know
BROKERS=${BROKERS:?set BROKERS to two or more rill-broker binaries}
BENCH=${BENCH:-build/rel/client/rill-bench}
RATE=${RATE:-10000}
N=${N:-100000}
ROUNDS=${ROUNDS:-2}
RILL_BENCH_ARGS=${RILL_BENCH_ARGS:-}

for b in $BROKERS "$BENCH"; do
  [ -x "$b" ] || { echo "missing $b"; exit 1; }
done

P=""
D=""
cleanup() {
  [ -n "$P" ] && kill "$P" 2>/dev/null && wait "$P" 2>/dev/null
  [ -n "$D" ] && rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# switches <pid> [comm]: context switches of the process's threads (named comm, if given).
switches() {
  local s=0 t n
  for t in /proc/"$1"/task/*; do
    [ -n "${2:-}" ] && [ "$(cat "$t/comm" 2>/dev/null)" != "$2" ] && continue
    n=$(awk '/^(voluntary|nonvoluntary)_ctxt_switches/ {s += $2} END {print s + 0}' \
      "$t/status" 2>/dev/null)
    s=$((s + ${n:-0}))
  done
  echo "$s"
}

echo "| round | broker | p50 ms | p99 ms | p99.9 ms | max ms | broker cores | context switches (flush threads) |"
echo "|---|---|---|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  for broker in $BROKERS; do
    D=$(mktemp -d "${RILL_BENCH_TMP:-${TMPDIR:-/tmp}}/rill-broker-ab.XXXX")
    "$broker" --data.dir "$D/data" --listeners.client 127.0.0.1:0 \
      --listeners.internal 127.0.0.1:0 --listeners.http 127.0.0.1:0 --ports-file "$D/ports" \
      --log.level warn > "$D/broker.log" 2>&1 &
    P=$!
    for _ in $(seq 100); do grep -q http= "$D/ports" 2>/dev/null && break; sleep 0.1; done
    port=$(sed -n 's/^client=//p' "$D/ports")
    [ -n "$port" ] || { echo "$broker did not start:"; tail -5 "$D/broker.log"; exit 1; }
    "$BENCH" -b "127.0.0.1:$port" -t ab --mode produce -n 20000 -s 100 --rate "$RATE" \
      > /dev/null || echo "warm-up failed ($broker)"
    all0=$(switches "$P")
    flush0=$(switches "$P" rill-flush)
    # shellcheck disable=SC2086
    out=$("$BENCH" -b "127.0.0.1:$port" -t ab --mode produce -n "$N" -s 100 --rate "$RATE" \
      --broker-pid "$P" $RILL_BENCH_ARGS 2>&1)
    all1=$(switches "$P")
    flush1=$(switches "$P" rill-flush)
    lat=$(echo "$out" | sed -n 's/.*produce-to-ack latency ms: //p')
    cores=$(echo "$out" | sed -n 's/.*; broker [0-9.]* s = \([0-9.]*\) cores.*/\1/p')
    read -r p50 p99 p999 max <<< "$(echo "$lat" | awk '{print $2, $4, $6, $8}')"
    echo "| $round | $broker | ${p50:-?} | ${p99:-?} | ${p999:-?} | ${max:-?} | ${cores:-?} |" \
      "$((all1 - all0)) ($((flush1 - flush0))) |"
    kill "$P"
    wait "$P" 2>/dev/null
    P=""
    rm -rf "$D"
    D=""
  done
done
