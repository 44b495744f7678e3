#!/bin/bash
# 100 B produce to one partition against the same load spread over many partitions, in one run
# with the cases interleaved, each against a fresh rill-broker (data in a temp dir, ports chosen
# by the kernel), with throughput and CPU per record of rill-bench and of the broker:
#   one:        rill-bench -t one -n N -s 100 --mode produce
#   one keyed:  the same with --key-size 16
#   spread:     rill-bench -t spread --topics T --partitions P --key-size 16 -n N -s 100 --mode produce
# each with --broker-pid of its broker. The broker's thread count and resident memory at the end
# of the run come from its /metrics (process_threads, process_resident_memory_bytes).
# usage: [BROKER=path] [BENCH=path] [N=3000000] [TOPICS=10] [PARTITIONS=100] [ROUNDS=2]
#        [RILL_BENCH_TMP=dir] bench/scripts/spread_compare.sh
set -u
cd "$(dirname "$0")/../.." || exit 1
export -n RILL_BENCH_TMP RILL_BENCH_ARGS  # ours: a broker started here would warn of RILL_* it does not know
BROKER=${BROKER:-build/rel/broker/rill-broker}
BENCH=${BENCH:-build/rel/client/rill-bench}
N=${N:-3000000}
TOPICS=${TOPICS:-10}
PARTITIONS=${PARTITIONS:-100}
ROUNDS=${ROUNDS:-2}
D=$(mktemp -d "${RILL_BENCH_TMP:-$PWD}/rill-spread.XXXX")
BP=""
cleanup() {
  [ -n "$BP" ] && kill "$BP" 2>/dev/null && wait "$BP" 2>/dev/null
  rm -rf "$D"
  sync
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run() {  # run <label> <rill-bench args...>
  local label=$1 port hp
  shift
  $BROKER --data-dir "$D/data" --listeners.client 127.0.0.1:0 --listeners.internal 127.0.0.1:0 \
    --listeners.http 127.0.0.1:0 --ports-file "$D/ports" --log.level warn > "$D/broker.log" 2>&1 &
  BP=$!
  for _ in $(seq 100); do grep -q http= "$D/ports" 2>/dev/null && break; sleep 0.1; done
  port=$(sed -n 's/^client=//p' "$D/ports"); hp=$(sed -n 's/^http=//p' "$D/ports")
  sleep 0.5
  echo "### $label: rill-bench $* (load $(cut -d' ' -f1-3 /proc/loadavg))"
  $BENCH -b "127.0.0.1:$port" --mode produce -n "$N" -s 100 --broker-pid "$BP" "$@" |
    grep -E "^produce:|^cpu"
  echo "broker at the end: $(curl -s "http://127.0.0.1:$hp/metrics" |
    awk '/^process_threads /{t=$2} /^process_resident_memory_bytes /{r=$2}
         END{printf "%d threads, %.0f MiB resident", t, r/1048576}')"
  kill "$BP"; wait "$BP"; BP=""
  rm -rf "$D/data" "$D/ports"
  sync
}

echo "start $(date -u '+%F %T') UTC"
for r in $(seq "$ROUNDS"); do
  run "round $r, 1 partition" -t one
  run "round $r, 1 partition, keyed" -t one --key-size 16
  run "round $r, $TOPICS x $PARTITIONS partitions, keyed" -t spread --topics "$TOPICS" \
    --partitions "$PARTITIONS" --key-size 16
done
echo "end $(date -u '+%F %T') UTC"
