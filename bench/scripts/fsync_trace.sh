#!/bin/bash
# One paced latency run (50,000 x 100 B records/s, 20 s) with `perf trace -a` recording every
# fdatasync/fsync/rename on the machine: prints the fsync-family calls slower than SLOW_MS (default
# 5) and the broker's renames (segment rolls, recovery-point writes) with their times, so a long
# ack stall can be matched to what the broker and the disk were doing. Needs root (perf).
# usage: BROKER=path BENCH=path [BROKER_ARGS="--storage.x y"] bench/scripts/fsync_trace.sh
set -u
export -n RILL_BENCH_TMP RILL_BENCH_ARGS  # ours: a broker started here would warn of RILL_* it does not know
BROKER=${BROKER:-build/rel/broker/rill-broker}
BENCH=${BENCH:-build/rel/client/rill-bench}
SLOW_MS=${SLOW_MS:-5}
D=$(mktemp -d "${RILL_BENCH_TMP:-$PWD}/rill-fsync-trace.XXXX")
$BROKER --data-dir $D/data --listeners.client 127.0.0.1:0 --listeners.internal 127.0.0.1:0 \
  --listeners.http 127.0.0.1:0 --ports-file $D/ports --log.level warn ${BROKER_ARGS:-} > $D/broker.log 2>&1 &
BP=$!
for i in $(seq 100); do grep -q http= $D/ports 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/^client=//p' $D/ports)
perf trace -a -e fdatasync,fsync,rename,renameat2 -o $D/trace.txt 2>/dev/null &
TP=$!
sleep 1
$BENCH -b 127.0.0.1:$PORT -t lat --mode produce -n 1000000 -s 100 --rate 50000 | grep latency
kill -INT $TP; wait $TP 2>/dev/null
# Lines: "<ms since start> (<duration> ms): <thread>/<tid> <syscall>(...) = <ret>". Durations
# perf cannot pair show up as huge numbers and are skipped.
awk -v slow=$SLOW_MS '{d=$2; gsub(/[()]/,"",d);
  if ((d+0 > slow && d+0 < 1e6) || ($0 ~ /rename/ && $0 !~ /grpc/)) print}' $D/trace.txt | cut -c1-120
kill $BP; wait $BP
rm -rf $D
sync
