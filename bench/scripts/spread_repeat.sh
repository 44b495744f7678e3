#!/bin/bash
# One fresh broker, RUNS runs of a million keyed 100 B records over the same topic of P
# partitions: each run's throughput and CPU (rill-bench's line), then the broker's flush and
# shared-sync counters, and the data dir's size at the end. Shows what accumulates as partitions
# fill (standby segments, shared syncs writing back other dirty pages).
# usage: bench/scripts/spread_repeat.sh <rill-broker> <rill-bench> [broker args...]
#        (env: P=1000 RUNS=5)
B=$1; BENCH=$2; shift 2
P=${P:-1000}; RUNS=${RUNS:-5}
D=$(mktemp -d "${RILL_BENCH_TMP:-$PWD}/spread-repeat.XXXX")
export -n RILL_BENCH_TMP RILL_BENCH_ARGS  # ours: a broker started here would warn of RILL_* it does not know
$B --data-dir $D/data --listeners.client 127.0.0.1:0 --listeners.internal 127.0.0.1:0 --listeners.http 127.0.0.1:0 --ports-file $D/ports --log.level warn "$@" > $D/broker.log 2>&1 &
BP=$!
for i in $(seq 100); do grep -q http= $D/ports 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/^client=//p' $D/ports); HP=$(sed -n 's/^http=//p' $D/ports)
for i in $(seq "$RUNS"); do
  r=$($BENCH -b 127.0.0.1:$PORT -t s --mode produce -p $P --key-size 8 -n 1000000 -s 100 --broker-pid $BP 2>&1 |
      grep -E "produce:|cpu over" | tr '\n' ' ')
  m=$(curl -s http://127.0.0.1:$HP/metrics |
      grep -E "^rill_log_shared_syncs_total|^rill_log_flush_latency_seconds_(count|sum)" |
      awk '{printf "%s=%s ", $1, $2}' | sed 's/rill_log_//g; s/{}//g')
  echo "run $i: $r $m"
done
echo "data dir: $(du -sh $D/data | cut -f1)"
kill $BP; wait $BP 2>/dev/null
rm -rf $D; sync
