#!/bin/bash
# Keyed 100 B produce spread over P partitions of one topic against a fresh broker (ports from
# the kernel): rill-bench's throughput and its CPU line (both processes, during the produce run
# only), then the broker's thread count, resident memory and total CPU (topic creation included)
# from /proc.
# usage: bench/scripts/partitions_spread.sh <rill-broker> <rill-bench> <partitions> [broker args...]
B=$1; BENCH=$2; P=$3; shift 3
D=$(mktemp -d "${RILL_BENCH_TMP:-$PWD}/spread.XXXX")
export -n RILL_BENCH_TMP RILL_BENCH_ARGS  # ours: a broker started here would warn of RILL_* it does not know
$B --data-dir $D/data --listeners.client 127.0.0.1:0 --listeners.internal 127.0.0.1:0 --listeners.http 127.0.0.1:0 --ports-file $D/ports --log.level warn "$@" > $D/broker.log 2>&1 &
BP=$!
for i in $(seq 100); do grep -q http= $D/ports 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/^client=//p' $D/ports)
$BENCH -b 127.0.0.1:$PORT -t s --mode produce -p $P --key-size 8 -n 1000000 -s 100 --broker-pid $BP 2>&1 |
  grep -E "produce:|cpu over" | sed 's/(0 failed)//'
echo "  threads $(awk '/^Threads/{print $2}' /proc/$BP/status)  rss_mb $(awk '/^VmRSS/{print int($2/1024)}' /proc/$BP/status)  broker_cpu_s $(awk '{printf "%.2f", ($14+$15)/100}' /proc/$BP/stat)"
kill $BP; wait $BP 2>/dev/null
rm -rf $D; sync
