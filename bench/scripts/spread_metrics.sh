#!/bin/bash
# Keyed 100 B produce over P partitions on a fresh broker, with what the broker's /metrics say
# about the run: produce requests and their mean latency, flush rounds and their mean length,
# and the shared syncs (syncfs calls) that served them. A warm-up run creates the topic first.
# usage: bench/scripts/spread_metrics.sh <rill-broker> <rill-bench> [broker args...]
#        (env: P=1000 N=6000000 WARMUP=300000 RILL_BENCH_TMP=dir; BENCH_ARGS="..." more
#        rill-bench arguments)
set -u
B=$1; BENCH=$2; shift 2
P=${P:-1000}; N=${N:-6000000}; WARMUP=${WARMUP:-300000}
read -r -a EXTRA <<< "${BENCH_ARGS:-}"
source "$(dirname "$0")/fresh_broker.sh"
start_fresh_broker $B spread-metrics "$@"
$BENCH -b 127.0.0.1:$PORT -t s --mode produce -p $P --key-size 8 "${EXTRA[@]}" -n $WARMUP -s 100 > /dev/null 2>&1
curl -s http://127.0.0.1:$HTTP/metrics > $D/m0
$BENCH -b 127.0.0.1:$PORT -t s --mode produce -p $P --key-size 8 "${EXTRA[@]}" -n $N -s 100 \
  --broker-pid $BP 2>&1 | grep -E "produce:|latency ms|cpu over" | sed 's/(0 failed)//'
curl -s http://127.0.0.1:$HTTP/metrics > $D/m1
python3 - $D/m0 $D/m1 <<'PY'
import sys
def load(path):
    values = {}
    for line in open(path):
        if line.startswith('#') or not line.strip():
            continue
        name, value = line.rsplit(' ', 1)
        values[name] = float(value)
    return values
a, b = load(sys.argv[1]), load(sys.argv[2])
d = lambda name: b.get(name, 0) - a.get(name, 0)
reqs = d('rill_request_latency_seconds_count{api="produce_stream"}') + \
    d('rill_request_latency_seconds_count{api="produce"}')
req_s = d('rill_request_latency_seconds_sum{api="produce_stream"}') + \
    d('rill_request_latency_seconds_sum{api="produce"}')
rounds = d('rill_log_flush_latency_seconds_count{}')
print('broker: %d produce requests, mean %.1f ms; %d flush rounds, mean %.1f ms; %d shared syncs' %
      (reqs, 1e3 * req_s / max(reqs, 1), rounds,
       1e3 * d('rill_log_flush_latency_seconds_sum{}') / max(rounds, 1),
       d('rill_log_shared_syncs_total')))
PY
