#!/bin/bash
# Rill against Redis Streams with `appendfsync always`, in one run: produce-to-ack (Rill) and
# XADD-to-reply (Redis) latency p50/p99/p99.9 at fixed open-loop rates of 100 B records, and the
# CPU per record of both the server and the load generator. Rounds are interleaved (Rill then
# Redis at each rate, the order flipped every round) so the host's drift lands on both alike.
#
# Each Rill round: a fresh rill-broker (data in a temp dir, ports chosen by the kernel), then
#   rill-bench -t lat --mode produce -n RATE*SECS -s 100 --rate RATE --acks -1 --broker-pid PID
# Each Redis round: a fresh redis-server (Debian's package) in its own temp dir on a free port
# with `appendonly yes`, `appendfsync always`, no RDB snapshots, then
#   redis-xadd-bench --rate RATE --records RATE*SECS --value-size 100 --senders K --server-pid PID
# (bench/redis/redis_xadd_bench.cc: K pipelined connections (REDIS_SENDERS, default 4), each with
# a pacer writing each XADD at its intended time and a reader timing each reply from that time,
# like rill-bench's --rate). Several connections, because Redis reads at most 16 KiB (~115 XADDs)
# per connection per event-loop pass and fsyncs once per pass: one connection caps it near
# 115 records per fsync, which at 50,000/s on a slow disk falls behind by seconds.
# A 4 KiB fdatasync probe (bench/scripts/fsync_probe.py) runs first, on the same disk.
# Everything started is stopped on exit (also on ^C) and the temp dirs are removed.
#
# usage: [BROKER=path] [BENCH=path] [RXB=path] [RATES="10000 50000"] [SECS=10] [ROUNDS=1]
#        [RILL_BENCH_TMP=dir] [RILL_BENCH_ARGS="--linger-ms 1"] [PAUSE_PROBE=1]
#        bench/scripts/redis_compare.sh
# PAUSE_PROBE=1 runs each load generator under bench/scripts/vm_pause_probe.py and adds a column:
# how much of the run a 0.5 ms sleep loop woke up more than 3 ms late, and how many such late
# wake-ups were spaced by a multiple of 100 ms (the host throttling the whole VM; RESULTS.md,
# session 19).
# RILL_BENCH_ARGS: more rill-bench flags for the Rill rounds (with --rate rill-bench lingers 0 ms,
# so every record goes as soon as the sender is free; --linger-ms 1 batches a paced load).
# Needs redis-server (Debian: apt-get install redis-server; installed here when run as root) and
# redis-xadd-bench (built by `cmake --build build/rel --target redis-xadd-bench` when
# libhiredis-dev is installed; otherwise compiled here from its source if hiredis is present).
set -u
cd "$(dirname "$0")/../.." || exit 1
export -n RILL_BENCH_TMP RILL_BENCH_ARGS  # ours: a broker started here would warn of RILL_* it does not know
BROKER=${BROKER:-build/rel/broker/rill-broker}
BENCH=${BENCH:-build/rel/client/rill-bench}
RXB=${RXB:-build/rel/bench/redis/redis-xadd-bench}
RATES=${RATES:-10000 50000}
RILL_BENCH_ARGS=${RILL_BENCH_ARGS:-}
PAUSE_PROBE=${PAUSE_PROBE:-}

probe_run() {  # probe_run <pause.json> -- CMD ARGS...: CMD, under the pause probe if asked
  local json=$1
  shift 2
  if [ -n "$PAUSE_PROBE" ]; then
    python3 bench/scripts/vm_pause_probe.py --json "$json" -- "$@"
  else
    "$@"
  fi
}
SECS=${SECS:-10}
ROUNDS=${ROUNDS:-1}
REDIS_SENDERS=${REDIS_SENDERS:-4}

D=$(mktemp -d "${RILL_BENCH_TMP:-$PWD}/rill-redis-compare.XXXX")
BP=""
RP=""
cleanup() {
  for p in $BP $RP; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$D"
  sync
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need_pkg() {  # need_pkg <package>: installs a Debian package when root, else explains and fails
  if [ "$(id -u)" -eq 0 ] && command -v apt-get > /dev/null; then
    echo "installing $1 (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1" > /dev/null ||
      { echo "could not install $1"; exit 1; }
  else
    echo "needs $1: sudo apt-get install $1"; exit 1
  fi
}
command -v redis-server > /dev/null || need_pkg redis-server
for b in "$BROKER" "$BENCH"; do
  [ -x "$b" ] || { echo "missing $b: cmake --build build/rel -j1 --target rill-broker rill-bench"; exit 1; }
done
if [ ! -x "$RXB" ]; then
  [ -e /usr/include/hiredis/hiredis.h ] || need_pkg libhiredis-dev
  echo "compiling redis-xadd-bench into $D"
  c++ -O2 -std=c++20 -o "$D/redis-xadd-bench" bench/redis/redis_xadd_bench.cc -lhiredis -pthread ||
    exit 1
  RXB=$D/redis-xadd-bench
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

rill_round() {  # rill_round <rate> <out.json>
  local rate=$1 out=$2 port
  mkdir -p "$D/rill"
  $BROKER --data-dir "$D/rill/data" --listeners.client 127.0.0.1:0 --listeners.internal 127.0.0.1:0 \
    --listeners.http 127.0.0.1:0 --ports-file "$D/rill/ports" --log.level warn > "$D/rill/broker.log" 2>&1 &
  BP=$!
  for _ in $(seq 100); do grep -q http= "$D/rill/ports" 2>/dev/null && break; sleep 0.1; done
  port=$(sed -n 's/^client=//p' "$D/rill/ports")
  sleep 0.5
  probe_run "$out.pause" -- $BENCH -b "127.0.0.1:$port" -t lat --mode produce -n $((rate * SECS)) -s 100 --rate "$rate" \
    --acks -1 --broker-pid "$BP" $RILL_BENCH_ARGS --json > "$out" || echo "rill-bench failed (rate $rate)"
  kill "$BP"; wait "$BP"; BP=""
  rm -rf "$D/rill"
  sync
}

redis_round() {  # redis_round <rate> <out.json>
  local rate=$1 out=$2 port
  for _ in 1 2 3; do
    mkdir -p "$D/redis"
    port=$(free_port)
    redis-server --bind 127.0.0.1 --port "$port" --dir "$D/redis" --appendonly yes \
      --appendfsync always --save "" --daemonize no --logfile "$D/redis/redis.log" &
    RP=$!
    for _ in $(seq 100); do
      redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break
      kill -0 "$RP" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$RP" 2>/dev/null && break  # else the port was taken meanwhile: try another
    wait "$RP"; RP=""
  done
  [ -n "$RP" ] || { echo "redis-server did not start: $(tail -3 "$D/redis/redis.log")"; exit 1; }
  sleep 0.5
  probe_run "$out.pause" -- $RXB --port "$port" --rate "$rate" --records $((rate * SECS)) --value-size 100 \
    --senders "$REDIS_SENDERS" --server-pid "$RP" --json > "$out" || echo "redis-xadd-bench failed (rate $rate)"
  kill "$RP"; wait "$RP"; RP=""
  rm -rf "$D/redis"
  sync
}

echo "start $(date -u '+%F %T') UTC, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(redis-server --version | cut -d' ' -f1-3), $REDIS_SENDERS connections; rill-broker $BROKER; rate x ${SECS} s per run; rill-bench extra flags: ${RILL_BENCH_ARGS:-none}"
python3 bench/scripts/fsync_probe.py "$D"
for r in $(seq "$ROUNDS"); do
  for rate in $RATES; do
    if [ $((r % 2)) -eq 1 ]; then
      rill_round "$rate" "$D/rill-$rate-$r.json"; redis_round "$rate" "$D/redis-$rate-$r.json"
    else
      redis_round "$rate" "$D/redis-$rate-$r.json"; rill_round "$rate" "$D/rill-$rate-$r.json"
    fi
    echo "round $r rate $rate done, load: $(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
echo "end $(date -u '+%F %T') UTC"

python3 - "$D" "$ROUNDS" "$RATES" <<'PY'
import json, os, statistics, sys
d, rounds, rates = sys.argv[1], int(sys.argv[2]), [int(x) for x in sys.argv[3].split()]
def load(name):
    p = os.path.join(d, name)
    try:
        return json.load(open(p))
    except (OSError, ValueError):
        return None
def row(system, j):
    """(p50, p99, p999, server us/rec, server cores, client us/rec, client cores) or None"""
    if j is None:
        return None
    if system == 'Rill':
        lat, srv, cli = j['produce']['ack_latency_ms'], j['cpu']['broker'], j['cpu']['bench']
    else:
        lat, srv, cli = j['latency_ms'], j['cpu']['server'], j['cpu']['bench']
    srv = srv or {'us_per_record': float('nan'), 'cores': float('nan')}
    return (lat['p50'], lat['p99'], lat['p999'], srv['us_per_record'], srv['cores'],
            cli['us_per_record'], cli['cores'])
print()
probe = any(f.endswith('.pause') for f in os.listdir(d))
def pause(name):
    j = load(name + '.pause')
    if not probe:
        return ''
    if j is None:
        return ' - |'
    return ' %.1f%% (%d late, max %.1f ms, %d of %d gaps x100 ms) |' % (
        j['paused_pct'], j['late'], j['max_ms'], j['spaced_by_100ms'], j['gaps'])
print('| rate (records/s) | system | round | p50 ms | p99 ms | p99.9 ms | server core-us/record (cores) | client core-us/record (cores) |' + (' VM paused |' if probe else ''))
print('|---|---|---|---|---|---|---|---|' + ('---|' if probe else ''))
for rate in rates:
    for system, prefix in (('Rill', 'rill'), ('Redis AOF always', 'redis')):
        rows = []
        for r in range(1, rounds + 1):
            name = '%s-%d-%d.json' % (prefix, rate, r)
            x = row(system if system == 'Rill' else 'Redis', load(name))
            label = str(r)
            if x is None:
                print('| %d | %s | %s | failed | | | | |' % (rate, system, label))
                continue
            rows.append(x)
            print('| %d | %s | %s | %.3f | %.3f | %.3f | %.1f (%.2f) | %.1f (%.2f) |' % ((rate, system, label) + x)
                  + pause(name))
        if len(rows) > 1:
            m = tuple(statistics.median(c) for c in zip(*rows))
            print('| %d | %s | median | %.3f | %.3f | %.3f | %.1f (%.2f) | %.1f (%.2f) |' % ((rate, system) + m)
                  + (' |' if probe else ''))
PY
