#!/usr/bin/env bash
# Starts one broker in the foreground with its data in ./data.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x build/rel/broker/rill-broker ]; then
  echo "rill-broker is not built yet (the broker arrives with issue 4)" >&2
  exit 1
fi
exec build/rel/broker/rill-broker --config config/rill.toml --data-dir ./data "$@"
