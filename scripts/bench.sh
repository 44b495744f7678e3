#!/usr/bin/env bash
# Runs every Google Benchmark binary of the optimised build. Figures go into bench/RESULTS.md
# by hand, with the command that produced them.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for b in build/rel/bench/*/rill_bench_*; do
  [ -x "$b" ] || continue
  echo "== $b =="
  "$b" --benchmark_counters_tabular=true "$@" || status=1
done
exit $status
