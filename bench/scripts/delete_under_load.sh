#!/bin/bash
# Produce-to-ack latency of a paced producer while another topic with GiBs of data is deleted.
# One fresh rill-broker (data in a temp dir on this disk), topic `big` filled with --big-gb GB of
# 1 KiB records, then a 20 s paced run (50,000 x 100 B records/s, flush group) on topic `lat`
# during which `big` is deleted after 5 s. Prints rill-bench's ack latency and the broker's log
# fsync rounds above 1.6 ms.
# usage: BROKER=path BENCH=path RILLCTL=path delete_under_load.sh "<broker extra args>" [big GB]
set -u
export -n RILL_BENCH_TMP RILL_BENCH_ARGS  # ours: a broker started here would warn of RILL_* it does not know
BROKER=${BROKER:-build/rel/broker/rill-broker}
BENCH=${BENCH:-build/rel/client/rill-bench}
RILLCTL=${RILLCTL:-build/rel/client/rillctl}
BEXTRA="$1"; GB=${2:-2}
D=$(mktemp -d "${RILL_BENCH_TMP:-$PWD}/rill-bench-run.XXXX")
$BROKER --data-dir $D/data --listeners.client 127.0.0.1:0 --listeners.internal 127.0.0.1:0 --listeners.http 127.0.0.1:0 --ports-file $D/ports --log.level warn $BEXTRA > $D/broker.log 2>&1 &
BP=$!
for i in $(seq 100); do grep -q http= $D/ports 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/^client=//p' $D/ports); HP=$(sed -n 's/^http=//p' $D/ports)
$BENCH -b 127.0.0.1:$PORT -t big --mode produce -n $((GB * 1000000)) -s 1024 > /dev/null
sync
echo "big topic: $(du -sh $D/data/big-0 | cut -f1)"
$BENCH -b 127.0.0.1:$PORT -t lat --mode produce -n 1000000 -s 100 --rate 50000 > $D/bench.out 2>&1 &
NP=$!
sleep 5
T0=$(date +%s%N)
$RILLCTL -b 127.0.0.1:$PORT topic delete big > /dev/null
echo "delete answered in $(( ($(date +%s%N) - T0) / 1000000 )) ms"
wait $NP
grep latency $D/bench.out
curl -s http://127.0.0.1:$HP/metrics | grep -E '^rill_log_flush_latency_seconds_bucket' | python3 -c '
import sys,re
b=[(float("inf") if m.group(1)=="+Inf" else float(m.group(1)),int(m.group(2))) for m in (re.search(r"le=\"([^\"]+)\"\} (\d+)",l) for l in sys.stdin) if m]
tot=b[-1][1]
print("log fsync rounds", tot, "above:", " ".join(">%gms:%d"%(le*1e3,tot-c) for le,c in b if tot-c>0 and le>=0.0016))'
kill $BP; wait $BP
rm -rf $D
sync
