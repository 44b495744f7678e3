#!/bin/bash
# Failover after kill -9 of a partition leader (issue 14's aim: under 2 s), measured with
# rill-chaos's kill-leader fault (tests/fault/README.md): three real rill-broker processes on
# loopback with the brokers' default session timeout (1,500 ms; rill-chaos's own default is a
# more forgiving 3,000 ms), idempotent acks=all producers and a consumer group, one kill -9 of a
# partition leader per cycle, each followed by a restart of the killed broker and its return to
# every ISR. A fault's unavailability is the time from the kill until every partition has had an
# acks=all write acknowledged that was sent after the kill, so it covers the fencing after the
# missed heartbeats, the election, the new leader's image, the producer learning of it and the
# write's replication to the ISR. The report's kill-leader line gives the median, the longest and
# the total over the cycles; every acknowledged record is also checked (none lost or duplicated).
#
# usage: [CHAOS=path] [BROKER=path] [CYCLES=10] [SEED=1] [SESSION_MS=1500]
#        bench/scripts/failover.sh
set -u
cd "$(dirname "$0")/../.." || exit 1
CHAOS=${CHAOS:-build/rel/tests/fault/rill-chaos}
BROKER=${BROKER:-build/rel/broker/rill-broker}
CYCLES=${CYCLES:-10}
SEED=${SEED:-1}
SESSION_MS=${SESSION_MS:-1500}
for b in "$CHAOS" "$BROKER"; do
  [ -x "$b" ] || { echo "missing $b: make build"; exit 1; }
done
echo "# $CHAOS --broker $BROKER --faults kill-leader --cycles $CYCLES --seed $SEED" \
     "--session-timeout-ms $SESSION_MS --fail-on-duplicates"
"$CHAOS" --broker "$BROKER" --faults kill-leader --cycles "$CYCLES" --seed "$SEED" \
  --session-timeout-ms "$SESSION_MS" --fail-on-duplicates 2>&1 |
  grep -E "^(cycles|  kill-leader|out of order|run |seed|PASS|FAIL)|lost|unavailable"
exit "${PIPESTATUS[0]}"
