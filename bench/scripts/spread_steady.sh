#!/bin/bash
# Keyed 100 B produce over P partitions of one topic in steady state: a fresh broker (ports from
# the kernel), a warm-up run that creates the topic and writes WARMUP records (the first writes
# to P new segment files allocate their blocks), then RUNS measured runs of N records each to
# the same topic, each with rill-bench's CPU line for both processes.
# usage: bench/scripts/spread_steady.sh <rill-broker> <rill-bench> <partitions> [broker args...]
#        (env: N=3000000 RUNS=3 WARMUP=300000 RILL_BENCH_TMP=dir; KEY_SIZE=8, 0 for records
#        without keys; BENCH_ARGS="..." more rill-bench arguments, e.g. "--partitioner random")
set -u
B=$1; BENCH=$2; P=$3; shift 3
N=${N:-3000000}; RUNS=${RUNS:-3}; WARMUP=${WARMUP:-300000}; KEY_SIZE=${KEY_SIZE:-8}
read -r -a EXTRA <<< "${BENCH_ARGS:-}"
source "$(dirname "$0")/fresh_broker.sh"
start_fresh_broker $B spread-steady "$@"
$BENCH -b 127.0.0.1:$PORT -t s --mode produce -p $P --key-size $KEY_SIZE "${EXTRA[@]}" -n $WARMUP -s 100 > /dev/null 2>&1
for r in $(seq $RUNS); do
  echo "partitions $P run $r: $($BENCH -b 127.0.0.1:$PORT -t s --mode produce -p $P --key-size $KEY_SIZE "${EXTRA[@]}" -n $N -s 100 \
    --broker-pid $BP 2>&1 | grep -E "produce:|cpu over" | sed 's/(0 failed)//' | tr '\n' ' ')"
done
