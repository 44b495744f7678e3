#!/usr/bin/env bash
# Starts one broker in the foreground with its data in ./data (`make run` builds it first).
# Extra arguments are passed to rill-broker, e.g. `make run ARGS="--log.level debug"` or
# `scripts/run.sh --listeners.client 127.0.0.1:19092`.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p data
exec build/rel/broker/rill-broker --config config/rill.toml --data-dir ./data "$@"
