#!/bin/bash
# Before/after in one run: the single-partition figures of bench/RESULTS.md (1 KiB produce,
# 100 B produce, 100 B consume) for two builds, interleaved A, B, A, B... so that the host's
# drift (these VMs move by ~30% within an hour) lands on both alike. Each run is
# bench/scripts/broker_run.sh with that build's rill-broker and rill-bench.
# usage: A=dir_of_build_a B=dir_of_build_b ROUNDS=3 bench/scripts/ab_pairs.sh
# (a build dir holds broker/rill-broker and client/rill-bench, e.g. build/rel)
set -u
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
run() {  # run <label> <build dir> <broker_run.sh args...>
  local label=$1 dir=$2; shift 2
  echo "### $label: $*"
  BROKER=$dir/broker/rill-broker BENCH=$dir/client/rill-bench bench/scripts/broker_run.sh "" "$@" 2>&1 |
    grep -E "MB/s|records/s|rec/s|load:|cpu_s"
}
for r in $(seq "$ROUNDS"); do
  for side in A B; do
    dir=${!side}
    run "round $r $side" "$dir" -t k1 --mode produce -n 3000000 -s 1024
    MODE=produce-consume run "round $r $side" "$dir" -t c1 -n 3000000 -s 100
  done
done
