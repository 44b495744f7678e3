#!/usr/bin/env bash
# The docker-compose cluster end to end (docker/README.md): starts a private Docker engine, builds
# the image, brings up docker/docker-compose.yml's three nodes, produces with acks=all while the
# leader of partition 0 is killed and restarted, and reads every acknowledged record back; then
# checks that `down` + `up` keeps the data and `down -v` removes it.
#
# usage: docker/test-compose.sh [--prebuilt DIR] [--allow-skip]
#   --prebuilt DIR  image from already-built binaries in DIR (build/rel, or a directory holding
#                   rill-broker, rillctl and rill-bench; docker/Dockerfile.prebuilt) instead of
#                   compiling them in docker/Dockerfile's builder stage (JOBS=n limits that build)
#   --allow-skip    exit 0 when this machine cannot run a Docker engine at all (not root, dockerd
#                   cannot be installed or started); `make test` passes it, `make test-docker` not
# Needs root: the engine it starts runs without bridge networking or iptables (these hosts have
# neither) and is stopped, with its state directory, on every exit.
set -euo pipefail
cd "$(dirname "$0")/.."

PREBUILT=""
ALLOW_SKIP=0
while [ $# -gt 0 ]; do
  case $1 in
    --prebuilt) PREBUILT=$2; shift 2 ;;
    --allow-skip) ALLOW_SKIP=1; shift ;;
    *) echo "usage: $0 [--prebuilt DIR] [--allow-skip]" >&2; exit 2 ;;
  esac
done
JOBS=${JOBS:-$(nproc)}

TOPIC=compose-test
PROJECT=rilltest
# docker/docker-compose.yml's nodes, then docker-compose.node4.yml's broker-only node
PORTS=(19092 19093 19094 19192 19193 19194 19644 19645 19646 19095 19195 19647)
BOOT=127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094
CACHE=build/docker-cache/bookworm-slim.tar  # the debootstrapped base image, kept for reruns

STEP="setup"
T0=$(date +%s.%N)
PHASE_START=$T0
SUMMARY=()
phase() {  # phase NAME: ends the current phase (its time goes to the summary) and starts NAME
  local now; now=$(date +%s.%N)
  if [ "$STEP" != setup ] || [ ${#SUMMARY[@]} -gt 0 ]; then
    SUMMARY+=("$(awk -v a="$PHASE_START" -v b="$now" -v s="$STEP" 'BEGIN {printf "%7.1f s  %s", b - a, s}')")
  fi
  STEP=$1
  PHASE_START=$now
  echo "== test-compose: $STEP =="
}
fail() { echo "test-compose: FAILED in step '$STEP': $*" >&2; exit 1; }
skip() {  # skip REASON: this machine cannot run a Docker engine
  if [ "$ALLOW_SKIP" = 1 ]; then
    echo "test-compose: SKIPPED: this machine cannot run a Docker engine: $*"
    exit 0
  fi
  echo "test-compose: cannot run a Docker engine here: $*" >&2
  exit 1
}

# ---------------------------------------------------------------- engine and cleanup

T=""
ENGINE_PID=""
COMPOSE_UP=0
cleanup() {
  local rc=$?
  set +e
  if [ -n "$ENGINE_PID" ]; then
    docker rm -f "$PROJECT-client" >/dev/null 2>&1
    if [ "$COMPOSE_UP" = 1 ]; then $COMPOSE4 down -v -t 5 >/dev/null 2>&1; fi
    kill "$ENGINE_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$ENGINE_PID" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$ENGINE_PID" 2>/dev/null; then
      echo "test-compose: dockerd $ENGINE_PID did not stop; killing it" >&2
      kill -9 "$ENGINE_PID" 2>/dev/null
    fi
  fi
  if [ -n "$T" ]; then
    # The engine leaves mounts behind (netns/default, overlay layers): unmount the deepest first.
    grep -o " $T/[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
    rm -rf "$T"
  fi
  if [ $rc -ne 0 ]; then
    echo "test-compose: FAILED in step '$STEP' (exit $rc)" >&2
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # so that a Ctrl-C or kill still runs cleanup

phase "engine"
if [ "$(id -u)" -ne 0 ]; then skip "not root"; fi
bash scripts/install-docker-deps.sh || skip "docker.io, docker-compose or debootstrap cannot be installed"
for p in "${PORTS[@]}"; do
  if [ -n "$(ss -ltnH "sport = :$p")" ]; then
    fail "port $p (docker/docker-compose.yml) is in use: $(ss -ltnpH "sport = :$p")"
  fi
done
T=$(mktemp -d /tmp/rill-docker-test.XXXXXX)
# docker.io's client speaks the engine's API version; a newer one on PATH works as well.
DOCKER_BIN=$(command -v /usr/bin/docker || command -v docker)
docker() { "$DOCKER_BIN" "$@"; }
export DOCKER_HOST=unix://$T/docker.sock DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
COMPOSE="docker-compose -p $PROJECT -f docker/docker-compose.yml"
COMPOSE4="$COMPOSE -f docker/docker-compose.node4.yml"
dockerd --bridge=none --iptables=false --ip-masq=false --data-root "$T/root" --exec-root "$T/exec" \
  -H "$DOCKER_HOST" --pidfile "$T/pid" >"$T/dockerd.log" 2>&1 &
ENGINE_PID=$!
for i in $(seq 300); do  # up to 60 s
  if docker info >/dev/null 2>&1; then break; fi
  if ! kill -0 "$ENGINE_PID" 2>/dev/null || [ "$i" = 300 ]; then
    tail -20 "$T/dockerd.log" >&2
    skip "dockerd did not start (log above)"
  fi
  sleep 0.2
done
echo "dockerd $ENGINE_PID on $DOCKER_HOST ($(docker version -f '{{.Server.Version}}'))"

# ---------------------------------------------------------------- images

phase "base image debian:bookworm-slim"
if [ ! -s "$CACHE" ]; then
  MIRROR=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
  echo "debootstrap --variant=minbase bookworm from $MIRROR"
  debootstrap --variant=minbase bookworm "$T/rootfs" "$MIRROR" >"$T/debootstrap.log" 2>&1 ||
    { tail -20 "$T/debootstrap.log" >&2; fail "debootstrap"; }
  # The host's apt sources (bookworm-updates, security) when it has them; then slim it down like
  # the official -slim images: no package cache, lists, documentation.
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$T/rootfs/etc/apt/sources.list.d/"
    rm -f "$T/rootfs/etc/apt/sources.list"
  fi
  rm -rf "$T"/rootfs/var/cache/apt/archives/*.deb "$T"/rootfs/var/lib/apt/lists/* \
    "$T"/rootfs/usr/share/doc/* "$T"/rootfs/usr/share/man/* "$T"/rootfs/usr/share/info/*
  mkdir -p "$(dirname "$CACHE")"
  tar -C "$T/rootfs" -cf "$CACHE.tmp" . && mv "$CACHE.tmp" "$CACHE"
  rm -rf "$T/rootfs"
else
  echo "from $CACHE (delete it to debootstrap again)"
fi
docker image inspect debian:bookworm-slim >/dev/null 2>&1 ||
  docker import "$CACHE" debian:bookworm-slim >/dev/null

if [ -n "$PREBUILT" ]; then
  phase "image rill:dev from prebuilt binaries in $PREBUILT"
  mkdir -p "$T/bin"
  for b in rill-broker rillctl rill-bench; do
    for f in "$PREBUILT/$b" "$PREBUILT/broker/$b" "$PREBUILT/client/$b"; do
      # Without their debug sections, as docker/Dockerfile's builder stage and `make package`
      # install them (symbols stay for stack traces and perf).
      if [ -x "$f" ]; then strip --strip-debug -o "$T/bin/$b" "$f"; break; fi
    done
    [ -x "$T/bin/$b" ] || fail "no $b in $PREBUILT (nor in its broker/ or client/)"
  done
  docker build -q --network host --target runtime-base -t rill-runtime-base:dev \
    -f docker/Dockerfile . >/dev/null || fail "docker build --target runtime-base"
  docker build -q --network host --build-arg BASE=rill-runtime-base:dev -t rill:dev \
    -f docker/Dockerfile.prebuilt "$T/bin" >/dev/null || fail "docker build -f docker/Dockerfile.prebuilt"
else
  phase "image rill:dev from source (JOBS=$JOBS)"
  docker build --network host --build-arg JOBS="$JOBS" -t rill:dev -f docker/Dockerfile . ||
    fail "docker build -f docker/Dockerfile"
fi
SIZE=$(docker image inspect -f '{{.Size}}' rill:dev)
echo "rill:dev: $((SIZE / 1000000)) MB ($(docker run --rm rill:dev --version))"
user=$(docker run --rm --entrypoint id rill:dev -un)
[ "$user" = rill ] || fail "the image runs as '$user', not rill"
for b in rillctl rill-bench; do
  docker run --rm --entrypoint "$b" rill:dev --help >/dev/null || fail "$b is not on the image's PATH"
done
echo "runs as user rill; rill-broker, rillctl and rill-bench on PATH"

# ---------------------------------------------------------------- cluster helpers

rillctl() { docker exec -i "$PROJECT-client" rillctl -b "$BOOT" "$@"; }
container() { $COMPOSE4 ps -q "$1"; }  # container() SERVICE: its container id
wait_healthy() {  # wait_healthy SECONDS [SERVICE...]: their HEALTHCHECK (/readyz) passes
  local deadline=$((SECONDS + $1)) n s states want=""
  shift
  [ $# -gt 0 ] || set -- node1 node2 node3
  for n in "$@"; do want+="$n=healthy "; done
  while :; do
    states=""
    for n in "$@"; do
      s=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' \
        "$(container $n)" 2>/dev/null || echo missing)
      states+="$n=$s "
    done
    if [ "$states" = "$want" ]; then
      echo "healthy: $states"; return 0
    fi
    if [ $SECONDS -ge $deadline ]; then
      $COMPOSE logs --tail 30 >&2 || true
      fail "nodes not healthy after $1 s: $states"
    fi
    sleep 1
  done
}
describe() { rillctl --json topic describe "$TOPIC"; }
BATCHES=$T/batches.tsv
: >"$BATCHES"
produce_batch() {  # produce_batch NAME COUNT: one `rillctl produce` run of NAME-0 .. NAME-(COUNT-1)
  local name=$1 count=$2 start rc=0
  start=$(date +%s.%N)
  seq 0 $((count - 1)) | sed "s/.*/$name-&:$name-&/" |
    rillctl --timeout-ms 15000 produce "$TOPIC" -k : --acks all >"$T/produce-$name.log" 2>&1 || rc=$?
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$count" "$rc" "$start" "$(date +%s.%N)" >>"$BATCHES"
  return $rc
}
acked_count() { awk '$3 == 0 {n += $2} END {print n + 0}' "$BATCHES"; }

# ---------------------------------------------------------------- the cluster

phase "compose up"
$COMPOSE4 config -q || fail "docker-compose config"
COMPOSE_UP=1
$COMPOSE up -d 2>&1 | sed 's/^/  /'
docker run -d --name "$PROJECT-client" --network host --entrypoint sleep rill:dev infinity >/dev/null
wait_healthy 90

phase "create topic (6 partitions, RF 3)"
# As docker/README.md does it: rillctl in node1's container, brokers from RILL_BOOTSTRAP.
$COMPOSE exec -T node1 rillctl cluster info
deadline=$((SECONDS + 60))
until $COMPOSE exec -T node1 rillctl topic create "$TOPIC" -p 6 -r 3 >"$T/create.log" 2>&1; do
  [ $SECONDS -lt $deadline ] || { cat "$T/create.log" >&2; fail "rillctl topic create"; }
  sleep 1
done
cat "$T/create.log"

phase "produce before the kill"
for i in $(seq 10); do produce_batch "a$i" 200 || fail "produce run a$i: $(cat "$T/produce-a$i.log")"; done
echo "$(acked_count) records acknowledged"

phase "kill the leader of partition 0 while producing"
LEADER=$(describe | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["partitions"][0]["leader"])')
[[ $LEADER =~ ^[123]$ ]] || fail "partition 0 has no leader ($LEADER)"
VICTIM=node$LEADER
rm -f "$T/stop"
(
  i=0
  while [ ! -e "$T/stop" ]; do i=$((i + 1)); produce_batch "b$i" 200 || true; done
) &
LOOP=$!
sleep 2
KILL_TIME=$(date +%s.%N)
docker kill "$(container $VICTIM)" >/dev/null
echo "killed $VICTIM (leader of partition 0); $(docker inspect -f '{{.State.Status}}' "$(container $VICTIM)")"
# Keep producing until five runs that started after the kill are fully acknowledged: the
# partitions it led have new leaders and the client found them.
deadline=$((SECONDS + 60))
while [ "$(awk -v k="$KILL_TIME" '$3 == 0 && $4 > k' "$BATCHES" | wc -l)" -lt 5 ]; do
  [ $SECONDS -lt $deadline ] || { touch "$T/stop"; wait $LOOP; cat "$BATCHES" >&2; fail "producing did not recover within 60 s of the kill"; }
  sleep 0.5
done
touch "$T/stop"
wait $LOOP
awk -v k="$KILL_TIME" '$4 <= k && $5 >= k {print "  run " $1 " in flight at the kill: exit " $3}
  $4 > k {n++; ok += ($3 == 0)} END {print "  " n " runs after the kill, " ok " fully acknowledged"}' "$BATCHES"

phase "restart $VICTIM and wait for every ISR to be 3"
# `docker kill` counts as stopped by hand: restart: unless-stopped leaves it down.
echo "$VICTIM: $(docker inspect -f '{{.State.Status}}' "$(container $VICTIM)"); docker start"
docker start "$(container $VICTIM)" >/dev/null
wait_healthy 90
deadline=$((SECONDS + 90))
until describe >"$T/describe.json" 2>/dev/null &&
  python3 - "$T/describe.json" <<'PY'
import json, sys
parts = json.load(open(sys.argv[1]))[0]["partitions"]
sys.exit(0 if len(parts) == 6 and all(len(p["isr"]) == 3 for p in parts) else 1)
PY
do
  [ $SECONDS -lt $deadline ] || { cat "$T/describe.json" >&2; fail "ISRs not back to 3 within 90 s"; }
  sleep 1
done
rillctl topic describe "$TOPIC" | sed '/^Configs:/,$d'

phase "produce after the restart"
for i in $(seq 5); do produce_batch "c$i" 200 || fail "produce run c$i: $(cat "$T/produce-c$i.log")"; done

read_back() {  # read_back FILE: every partition from the start, and the topic's description
  local n
  describe >"$FILE_DESCRIBE" || fail "rillctl topic describe"
  n=$(python3 -c 'import json,sys; print(sum(p["high_watermark"] - p["log_start_offset"] for p in json.load(open(sys.argv[1]))[0]["partitions"]))' "$FILE_DESCRIBE")
  # Up to the high watermarks' sum; fewer (a gap) ends after 10 s idle and fails the check.
  rillctl consume "$TOPIC" --format json -n "$n" --idle-timeout 10000 >"$1" || fail "rillctl consume"
}
phase "read back and check"
FILE_DESCRIBE=$T/describe.json
read_back "$T/read1.jsonl"
python3 docker/check-records.py "$BATCHES" "$KILL_TIME" "$FILE_DESCRIBE" "$T/read1.jsonl" ||
  fail "the records read back (above)"

phase "compose down, up: the data stays"
# stop first, to see that every broker shuts down cleanly on SIGTERM (exit 0) within the timeout.
stop_start=$SECONDS
$COMPOSE stop -t 20 2>&1 | sed 's/^/  /'
for n in node1 node2 node3; do
  code=$(docker inspect -f '{{.State.ExitCode}}' "$(container $n)")
  [ "$code" = 0 ] || { $COMPOSE logs --tail 20 "$n" >&2; fail "$n exited $code on docker-compose stop"; }
done
echo "stopped in $((SECONDS - stop_start)) s, every broker exited 0"
$COMPOSE down 2>&1 | sed 's/^/  /'
$COMPOSE up -d 2>&1 | sed 's/^/  /'
wait_healthy 90
deadline=$((SECONDS + 60))
until describe >"$T/describe.json" 2>/dev/null &&
  python3 -c 'import json,sys; sys.exit(0 if all(p["leader"] >= 0 for p in json.load(open(sys.argv[1]))[0]["partitions"]) else 1)' "$T/describe.json"
do
  [ $SECONDS -lt $deadline ] || { cat "$T/describe.json" >&2; fail "topic $TOPIC not back with leaders after down/up"; }
  sleep 1
done
read_back "$T/read2.jsonl"
python3 docker/check-records.py "$BATCHES" "$KILL_TIME" "$FILE_DESCRIBE" "$T/read2.jsonl" "$T/read1.jsonl" ||
  fail "the records read back after down/up (above)"

phase "a fourth node, broker-only (docker-compose.node4.yml)"
$COMPOSE4 up -d node4 2>&1 | sed 's/^/  /'
wait_healthy 90 node1 node2 node3 node4
deadline=$((SECONDS + 30))
until [ "$(rillctl --json cluster info | python3 -c 'import json,sys; print(sorted(b["node_id"] for b in json.load(sys.stdin)["brokers"]))')" = "[1, 2, 3, 4]" ]; do
  [ $SECONDS -lt $deadline ] || { rillctl cluster info >&2; fail "node4 not among the brokers"; }
  sleep 1
done
rillctl topic create "$TOPIC-4" -p 4 -r 3 >/dev/null || fail "creating a topic with node4 up"
rillctl --json topic describe "$TOPIC-4" | python3 -c '
import json, sys
on4 = sum(4 in p["replicas"] for p in json.load(sys.stdin)[0]["partitions"])
print(f"brokers 1-4; node4 holds replicas of {on4} of the 4 partitions of a new topic")
sys.exit(0 if on4 > 0 else 1)' || fail "node4 got no replicas of a new topic"

phase "compose down -v: the volumes go"
$COMPOSE4 down -v -t 10 2>&1 | sed 's/^/  /'
COMPOSE_UP=0
left=$(docker volume ls -q | grep "^${PROJECT}_" || true)
[ -z "$left" ] || fail "volumes left after down -v: $left"
echo "no ${PROJECT}_* volumes left"

phase "done"
echo "test-compose: PASSED in $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.0f", b - a}') s; image rill:dev $((SIZE / 1000000)) MB"
printf '%s\n' "${SUMMARY[@]}"
