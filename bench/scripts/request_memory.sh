#!/bin/bash
# Resident memory and throughput of a broker under many concurrent 4 MiB unary producers and 16
# subscribers that grant no credit (issue 13), before/after rounds interleaved in one run.
# Drives tests/integration/request_memory_integration_test (its RILL_MEM_* variables): each run
# starts a fresh broker, produces for SECS seconds and prints the broker's peak VmRSS (sampled
# every 10 ms) and the acknowledged MB/s.
#
#   bench/scripts/request_memory.sh [build dir, default build/rel]
#   ROUNDS=3 SECS=6 CONNECTIONS=16 PRODUCERS="64 256" MODE=unary (or stream: each producer keeps
#   one ProduceStream open, as the client library does)
#
# "before" turns both new limits off (the broker as it was before them); "after" is the
# defaults.
set -euo pipefail
BUILD=${1:-build/rel}
TEST=$BUILD/tests/integration/request_memory_integration_test
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-6}
CONNECTIONS=${CONNECTIONS:-16}
PRODUCERS=${PRODUCERS:-"64 256"}
MODE=${MODE:-unary}
declare -A ARGS=(
  [before]="--limits.max_request_memory_bytes 0 --limits.max_concurrent_streams_per_connection 0"
  [after]=" "
)
for round in $(seq 1 "$ROUNDS"); do
  for p in $PRODUCERS; do
    for side in before after; do
      line=$(RILL_MEM_MODE=$MODE RILL_MEM_VERIFY=0 RILL_MEM_PRODUCERS=$p RILL_MEM_CONNECTIONS=$CONNECTIONS \
        RILL_MEM_SECONDS=$SECS RILL_MEM_BROKER_ARGS="${ARGS[$side]}" \
        "$TEST" --gtest_filter='*StayUnderTheBound' 2>&1 | grep '^RESULT' || echo "RESULT failed")
      echo "round=$round side=$side ${line#RESULT }"
    done
  done
done
