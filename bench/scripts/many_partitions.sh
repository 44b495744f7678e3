#!/bin/bash
# One broker hosting T topics x P partitions (default 100 x 100 = 10,000): its threads and
# resident memory once every partition has been written, then kill -9 and a restart on the same
# data: how long until /readyz answers 200, and until 1,000 acks=all records keyed over every
# topic (about 1,000 partitions) have been acknowledged; then threads and memory again (issue 13's 10,000-partition
# aim: at most 64 threads, under 2 GiB, serving within 10 s of the restart).
#
# usage: [TOPICS=100] [PARTITIONS=100] [RECORDS=200000] [RILL_BENCH_TMP=dir]
#        bench/scripts/many_partitions.sh <rill-broker> <rill-bench>
set -u
export -n RILL_BENCH_TMP RILL_BENCH_ARGS  # ours: a broker started here would warn of RILL_* it does not know
B=$1; BENCH=$2
TOPICS=${TOPICS:-100}; PARTITIONS=${PARTITIONS:-100}; RECORDS=${RECORDS:-200000}
D=$(mktemp -d "${RILL_BENCH_TMP:-${TMPDIR:-/tmp}}/many-partitions.XXXX")
BP=""
cleanup() { [ -n "$BP" ] && kill -9 "$BP" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
ms() { date +%s%3N; }
start_broker() {
  rm -f "$D/ports"
  $B --data-dir "$D/data" --listeners.client 127.0.0.1:0 --listeners.internal 127.0.0.1:0 \
     --listeners.http 127.0.0.1:0 --ports-file "$D/ports" --log.level warn >> "$D/broker.log" 2>&1 &
  BP=$!
  for _ in $(seq 600); do grep -q http= "$D/ports" 2>/dev/null && break; sleep 0.05; done
  PORT=$(sed -n 's/^client=//p' "$D/ports"); HTTP=$(sed -n 's/^http=//p' "$D/ports")
}
report() {
  echo "  $1: threads $(awk '/^Threads/{print $2}' /proc/$BP/status)," \
       "rss $(awk '/^VmRSS/{print int($2/1024)}' /proc/$BP/status) MiB," \
       "peak rss $(awk '/^VmHWM/{print int($2/1024)}' /proc/$BP/status) MiB," \
       "broker cpu $(awk '{printf "%.2f", ($14+$15)/100}' /proc/$BP/stat) s"
}
spread() {  # an acks=all keyed produce spread over the partitions of every topic
  $BENCH -b 127.0.0.1:$PORT -t mp --topics "$TOPICS" -p "$PARTITIONS" --mode produce \
    -n "$1" -s 100 --key-size 8 --acks -1 2>&1 | grep "produce:" | sed 's/^/  /'
}

echo "many_partitions: $TOPICS topics x $PARTITIONS partitions, $(nproc) cores, $(date -u +%FT%TZ)"
start_broker
report "fresh broker"
T0=$(ms); spread "$RECORDS"; echo "  first write (creates the topics): $(( $(ms) - T0 )) ms"
report "every partition written"
kill -9 "$BP"; wait "$BP" 2>/dev/null
T0=$(ms)
start_broker
until curl -sf -o /dev/null "http://127.0.0.1:$HTTP/readyz"; do sleep 0.02; done
T1=$(ms)
spread 1000
T2=$(ms)
echo "  after kill -9: /readyz 200 in $(( T1 - T0 )) ms; 1,000 acks=all keyed records over the topics acknowledged $(( T2 - T0 )) ms after the restart"
report "restarted"
