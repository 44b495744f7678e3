#!/bin/bash
# The producer's resident memory over a run: a fresh broker (ports from the kernel), then one
# rill-bench produce run of N keyed 100 B records over P partitions, its VmRSS, VmData and minor
# page faults sampled from /proc every EVERY seconds (bench/RESULTS.md, session 17).
# usage: bench/scripts/producer_rss.sh <rill-broker> <rill-bench> <partitions> <records> \
#          [rill-bench args...]   (env: EVERY=1 SAMPLES=12 RILL_BENCH_TMP=dir)
set -u
export -n RILL_BENCH_TMP RILL_BENCH_ARGS  # ours: a broker started here would warn of RILL_* it does not know
B=$1; BENCH=$2; P=$3; N=$4; shift 4
EVERY=${EVERY:-1}; SAMPLES=${SAMPLES:-12}
D=$(mktemp -d "${RILL_BENCH_TMP:-$PWD}/producer-rss.XXXX")
$B --data-dir $D/data --listeners.client 127.0.0.1:0 --listeners.internal 127.0.0.1:0 \
  --listeners.http 127.0.0.1:0 --ports-file $D/ports --log.level warn > $D/broker.log 2>&1 &
BP=$!
cleanup() { kill $BP 2>/dev/null; wait $BP 2>/dev/null; rm -rf $D; }
trap cleanup EXIT
for i in $(seq 100); do grep -q http= $D/ports 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/^client=//p' $D/ports)
$BENCH -b 127.0.0.1:$PORT -t s --mode produce -p $P --key-size 8 -n $N -s 100 "$@" \
  > $D/bench.out 2>&1 &
CP=$!
start=$(date +%s%N)
for i in $(seq $SAMPLES); do
  sleep $EVERY
  [ -r /proc/$CP/status ] || break
  printf '%6.1f s  %s  %s  minflt %s\n' "$(( ($(date +%s%N) - start) / 1000000 ))e-3" \
    "$(grep VmRSS /proc/$CP/status | tr -s ' \t' ' ')" \
    "$(grep VmData /proc/$CP/status | tr -s ' \t' ' ')" "$(awk '{print $10}' /proc/$CP/stat)"
done
wait $CP
grep -E "produce:" $D/bench.out
