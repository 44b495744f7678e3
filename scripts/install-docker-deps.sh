#!/usr/bin/env bash
# Installs what docker/test-compose.sh needs on top of scripts/install-deps.sh: the Docker engine
# (docker.io: dockerd and a docker client), Debian's docker-compose v1 and debootstrap (the test
# builds its debian:bookworm-slim base image itself; docker/README.md).
# Idempotent: a quick no-op when everything is already present. Works as root or through sudo.
set -euo pipefail

PACKAGES=(docker.io docker-compose debootstrap)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-docker-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
# docker.io's postinst starts the docker system service through invoke-rc.d where no systemd runs
# (a dockerd with the default bridge network, which these hosts cannot create). A policy-rc.d
# that answers 101 ("action forbidden") keeps it from starting; one is put in place only for this
# install, and only if the host has none.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ] && [ ! -d /run/systemd/system ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  own_policy=1
fi
cleanup() { if [ "$own_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
