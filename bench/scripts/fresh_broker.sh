# Sourced by bench scripts: starts a fresh rill-broker with its data in a new temp dir (under
# RILL_BENCH_TMP, else the working directory) and ports chosen by the kernel, and waits until it
# has written its ports. Sets D (the temp dir), BP (the broker's pid), PORT (client listener)
# and HTTP (the /metrics port). On exit the broker is stopped, D removed and the removal synced
# (bench/scripts/broker_run.sh says why).
# usage: start_fresh_broker <rill-broker> <temp dir prefix> [broker args...]
export -n RILL_BENCH_TMP RILL_BENCH_ARGS  # ours: a broker started here would warn of RILL_* it does not know
start_fresh_broker() {
  local broker=$1 prefix=$2
  shift 2
  D=$(mktemp -d "${RILL_BENCH_TMP:-$PWD}/$prefix.XXXX")
  $broker --data-dir $D/data --listeners.client 127.0.0.1:0 --listeners.internal 127.0.0.1:0 \
    --listeners.http 127.0.0.1:0 --ports-file $D/ports --log.level warn "$@" > $D/broker.log 2>&1 &
  BP=$!
  trap 'kill $BP 2>/dev/null; wait $BP 2>/dev/null; rm -rf $D; sync' EXIT
  for _ in $(seq 100); do grep -q http= $D/ports 2>/dev/null && break; sleep 0.1; done
  PORT=$(sed -n 's/^client=//p' $D/ports)
  HTTP=$(sed -n 's/^http=//p' $D/ports)
}
