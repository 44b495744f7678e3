#!/usr/bin/env bash
# The whole test suite: `make test` runs this after installing dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}

configure() {  # configure DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
}

echo "== sanitizer build: address,undefined =="
# Sanitizer and optimised builds keep line tables only (-g1): reports still name file and line,
# and compiling and linking take much less than with full -g.
configure build/asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 \
  -DRILL_SANITIZE=address,undefined
cmake --build build/asan -j "$JOBS" --target rill_asan_tests
(cd build/asan && ctest -L asan -j "$JOBS" --output-on-failure --no-tests=ignore)

echo "== sanitizer build: thread =="
configure build/tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 -DRILL_SANITIZE=thread
cmake --build build/tsan -j "$JOBS" --target rill_tsan_tests
(cd build/tsan && ctest -L tsan -j "$JOBS" --output-on-failure --no-tests=ignore)

echo "== optimised build: the whole suite =="
configure build/rel -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG"
cmake --build build/rel -j "$JOBS"
(cd build/rel && ctest -j "$JOBS" --output-on-failure)

echo "== docker-compose cluster: the image with build/rel's binaries =="
# Skipped (with a message saying why) only where no Docker engine can run: not root, or dockerd
# cannot be installed or started (docker/README.md).
bash docker/test-compose.sh --prebuilt build/rel --allow-skip
