#!/usr/bin/env bash
# Installs every Debian package Rill's build, tests and benchmarks need.
# Idempotent: a quick no-op when everything is already present. Works as root or through sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  lld             # the linker (CMakeLists.txt, RILL_LLD)
  clang libclang-rt-14-dev
  libboost-dev libboost-system-dev
  libspdlog-dev libfmt-dev
  libprotobuf-dev protobuf-compiler
  libgrpc++-dev protobuf-compiler-grpc
  librocksdb-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev
  liblz4-dev libzstd-dev libsnappy-dev zlib1g-dev
  curl procps iproute2
  iptables        # rill-chaos's network partitions (tests/fault/README.md)
  dpkg-dev file   # `make package`: dpkg-shlibdeps computes Depends, CPack's DEB generator uses file
  libhiredis-dev  # bench/redis: redis-xadd-bench, the Redis Streams peer's load generator
)
# redis-server itself is not listed: its package registers a system service (a Redis on port 6379
# wherever systemd runs). bench/scripts/redis_compare.sh installs it on demand and starts its own.

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
