#!/bin/bash
# One broker run: a fresh rill-broker (data in a temp dir on this disk, ports chosen by the
# kernel), one rill-bench run against it, then the broker's view from /metrics (produce_stream
# request and append-to-durable latency histograms, and the log fsync rounds above 1.6 ms) and
# both processes' CPU time. The data dir is removed and `sync`ed at the end: on a disk mounted
# with `discard` the removal's journal commit trims the freed blocks and stalls every fsync for
# ~90 ms per GiB (bench/scripts/unlink_probe.py), which must not land in the next run.
# usage: BROKER=path BENCH=path broker_run.sh "<broker extra args>" <rill-bench args...>
# With MODE=produce-consume the bench runs twice (--mode produce, then --mode consume).
set -u
export -n RILL_BENCH_TMP RILL_BENCH_ARGS  # ours: a broker started here would warn of RILL_* it does not know
BROKER=${BROKER:-build/rel/broker/rill-broker}
BENCH=${BENCH:-build/rel/client/rill-bench}
BEXTRA="$1"; shift
D=$(mktemp -d "${RILL_BENCH_TMP:-$PWD}/rill-bench-run.XXXX")
$BROKER --data-dir $D/data --listeners.client 127.0.0.1:0 --listeners.internal 127.0.0.1:0 --listeners.http 127.0.0.1:0 --ports-file $D/ports --log.level warn $BEXTRA > $D/broker.log 2>&1 &
BP=$!
for i in $(seq 100); do grep -q http= $D/ports 2>/dev/null && break; sleep 0.1; done
PORT=$(sed -n 's/^client=//p' $D/ports); HP=$(sed -n 's/^http=//p' $D/ports)
sleep 0.5
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
CS0=$(awk '/^ctxt/{print $2}' /proc/stat)
if [ "${MODE:-}" = produce-consume ]; then
  /usr/bin/time -f "bench_cpu_s: %U user %S sys" $BENCH -b 127.0.0.1:$PORT --mode produce "$@"
  /usr/bin/time -f "bench_cpu_s: %U user %S sys" $BENCH -b 127.0.0.1:$PORT --mode consume "$@"
else
  /usr/bin/time -f "bench_cpu_s: %U user %S sys" $BENCH -b 127.0.0.1:$PORT "$@"
fi
CS1=$(awk '/^ctxt/{print $2}' /proc/stat)
echo "context switches: $((CS1-CS0))"
curl -s http://127.0.0.1:$HP/metrics | grep -E '^rill_(request_latency_seconds_bucket\{api="produce_stream"|produce_durable_latency_seconds_bucket|log_flush_latency_seconds_bucket|requests_total\{api="produce_stream")' > $D/m
python3 - $D/m <<'PY'
import sys,re
h={}
for line in open(sys.argv[1]):
    m=re.match(r'(\w+)_bucket\{(.*?)le="([^"]+)"\} (\d+)',line)
    if m: h.setdefault((m.group(1),m.group(2)),[]).append((float('inf') if m.group(3)=='+Inf' else float(m.group(3)),int(m.group(4))))
    elif 'requests_total' in line: print(line.strip())
for k,b in h.items():
    tot=b[-1][1]
    def q(p):
        for le,c in b:
            if c>=p*tot: return le
    print(k[0],k[1],'n',tot,'p50<=%gms p99<=%gms p999<=%gms'%(q(.5)*1e3,q(.99)*1e3,q(.999)*1e3),
          'above:',' '.join('>%gms:%d'%(le*1e3,tot-c) for le,c in b if tot-c>0 and le>=0.0016))
PY
echo "broker_cpu_s: $(awk '{printf "%.2f user %.2f sys", $14/100, $15/100}' /proc/$BP/stat)"
kill $BP; wait $BP
rm -rf $D
sync
