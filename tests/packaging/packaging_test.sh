#!/usr/bin/env bash
# The client library and the binaries as users get them (ctest packaging_test; `make test`):
#
#   1. `cmake --install` into a temporary prefix: the expected files, self-contained public headers
#      that include no generated protobuf/gRPC code, the SONAME and the exported symbols.
#   2. An application (tests/packaging/app) copied outside the source tree and built against that
#      prefix three ways: find_package(Rill) with Rill::client, with Rill::client_static, and
#      pkg-config; each produces records to a real broker (the installed rill-broker, on ports it
#      picks itself) and consumes them back.
#   3. The Debian packages (cpack): names, Depends, contents, conffiles, maintainer scripts,
#      SONAME and shlibs; then all three are unpacked into a throwaway root (dpkg -x) and the same
#      application is built against it (CMake shared and static, pkg-config) and run, as is the
#      packaged rillctl.
#
#   tests/packaging/packaging_test.sh BUILD_DIR      (an optimised build with the client built)
#
# Everything lives in one temporary directory, removed on exit with the broker stopped.
set -euo pipefail

BUILD=$(cd "${1:?usage: packaging_test.sh BUILD_DIR}" && pwd)
SRC=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rill-packaging.XXXXXX")
BROKER_PID=""

cleanup() {
  if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "== $*"; }
# expect_file ROOT PATH...: each PATH exists under ROOT (as a file or a link that resolves).
expect_file() {
  local root=$1; shift
  for f in "$@"; do [ -e "$root/$f" ] || fail "$root/$f missing"; done
}

VERSION=$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")$/\1/p' "$BUILD/packaging/RillConfigVersion.cmake")
[ -n "$VERSION" ] || fail "no version in $BUILD/packaging/RillConfigVersion.cmake"
step "version $VERSION, work dir $WORK"

# ------------------------------------------------------------------ 1. install into a prefix
PREFIX=$WORK/prefix
step "cmake --install $BUILD --prefix $PREFIX"
cmake --install "$BUILD" --prefix "$PREFIX" >"$WORK/install.log" || { cat "$WORK/install.log"; fail "install"; }
SO1=$(find "$PREFIX" -name librill-client.so.1)
[ -n "$SO1" ] || fail "no librill-client.so.1 under $PREFIX"
LIBDIR=$(dirname "$SO1")
LIBREL=${LIBDIR#"$PREFIX"/}
expect_file "$PREFIX" bin/rill-broker bin/rillctl bin/rill-bench share/doc/rill/examples/rill.toml \
  "$LIBREL/librill-client.so.$VERSION" "$LIBREL/librill-client.so" "$LIBREL/librill-client.a" \
  "$LIBREL/cmake/Rill/RillConfig.cmake" "$LIBREL/cmake/Rill/RillConfigVersion.cmake" \
  "$LIBREL/cmake/Rill/RillTargets.cmake" "$LIBREL/pkgconfig/rill-client.pc" \
  include/rill/client/producer.h include/rill/client/consumer.h include/rill/client/admin.h \
  include/rill/client/version.h include/rill/proto/status.h
[ "$(readlink "$LIBDIR/librill-client.so")" = librill-client.so.1 ] || fail "librill-client.so does not link to .so.1"
[ "$(readlink "$LIBDIR/librill-client.so.1")" = "librill-client.so.$VERSION" ] || fail "librill-client.so.1 does not link to .so.$VERSION"
# The Debian-only files (systemd unit, /etc config) stay out of a plain install.
if [ -e "$PREFIX/etc" ] || [ -e "$PREFIX/lib/systemd" ]; then
  fail "a plain install got the Debian-only files"
fi

step "public headers: self-contained, no generated protobuf/gRPC code"
if grep -rnE '#include .*(\.pb\.h|grpc|google/protobuf|absl/)' "$PREFIX/include"; then
  fail "an installed header includes protobuf/gRPC headers"
fi
for h in $(cd "$PREFIX/include" && find rill -name '*.h' | sort); do
  echo "#include <$h>" | c++ -std=c++20 -fsyntax-only -I"$PREFIX/include" -x c++ - ||
    fail "installed header $h does not compile alone against $PREFIX/include"
done

step "librill-client.so: SONAME and exports"
readelf -d "$SO1" | grep -q 'SONAME.*\[librill-client\.so\.1\]' || fail "SONAME is not librill-client.so.1"
nm -D --defined-only -C "$SO1" >"$WORK/exports.txt"
grep -q 'rill::client::Producer::Create' "$WORK/exports.txt" || fail "Producer::Create is not exported"
grep -q 'rill::client::Version()' "$WORK/exports.txt" || fail "Version() is not exported"
if grep -E 'rill::v1::|google::|rill::client::internal::|grpc::' "$WORK/exports.txt" | head -5; then
  fail "librill-client.so exports internal symbols (client/librill-client.map)"
fi
echo "   $(wc -l <"$WORK/exports.txt") exported symbols"

# ------------------------------------------------------------------ a broker
step "start the installed rill-broker on free ports"
mkdir -p "$WORK/broker"
"$PREFIX/bin/rill-broker" --data.dir "$WORK/broker/data" \
  --listeners.client 127.0.0.1:0 --listeners.internal 127.0.0.1:0 --listeners.http 127.0.0.1:0 \
  --controller.voters 1@127.0.0.1:0 --ports-file "$WORK/broker/ports" \
  --storage.min_free_bytes 0 >"$WORK/broker/log" 2>&1 &
BROKER_PID=$!
# Poll the ports file (written once every listener is bound) and then /readyz, with a deadline.
deadline=$((SECONDS + 60))
until [ -f "$WORK/broker/ports" ] &&
  curl -sf "http://127.0.0.1:$(sed -n 's/^http=//p' "$WORK/broker/ports")/readyz" >/dev/null; do
  kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/broker/log"; fail "rill-broker exited"; }
  [ "$SECONDS" -lt "$deadline" ] || { cat "$WORK/broker/log"; fail "rill-broker not ready in 60 s"; }
  sleep 0.05  # the poll interval
done
BOOTSTRAP=127.0.0.1:$(sed -n 's/^client=//p' "$WORK/broker/ports")
echo "   ready at $BOOTSTRAP"

# app_copy DIR: a fresh copy of the example application, outside the source tree.
app_copy() {
  mkdir -p "$1"
  cp "$SRC/tests/packaging/app/main.cc" "$SRC/tests/packaging/app/CMakeLists.txt" \
    "$SRC/tests/packaging/app/Makefile" "$1/"
}
# build_cmake_app NAME PREFIX_PATH [cmake args]: configures and builds it; prints the binary.
build_cmake_app() {
  local name=$1 prefix=$2; shift 2
  app_copy "$WORK/$name/src"
  cmake -S "$WORK/$name/src" -B "$WORK/$name/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF "$@" \
    >"$WORK/$name/configure.log" 2>&1 || { cat "$WORK/$name/configure.log" >&2; fail "$name: configure"; }
  cmake --build "$WORK/$name/build" >"$WORK/$name/build.log" 2>&1 ||
    { cat "$WORK/$name/build.log" >&2; fail "$name: build"; }
  echo "$WORK/$name/build/rill-packaging-app"
}
# build_pkgconfig_app NAME PKG_CONFIG_DIR: builds it with the Makefile; prints the binary.
build_pkgconfig_app() {
  local name=$1 pcdir=$2
  app_copy "$WORK/$name"
  PKG_CONFIG_PATH=$pcdir make -C "$WORK/$name" >"$WORK/$name/build.log" 2>&1 ||
    { cat "$WORK/$name/build.log" >&2; fail "$name: build"; }
  echo "$WORK/$name/rill-packaging-app"
}
# run_app BINARY TOPIC: produces 300 records to a new topic and reads them back.
run_app() {
  "$1" "$BOOTSTRAP" "$2" 300 || fail "$1 against $BOOTSTRAP (topic $2)"
}
# linked_client BINARY: the file of the librill-client the binary loads, links resolved (empty
# when it is linked statically).
linked_client() {
  local so
  so=$(ldd "$1" | sed -n 's/^\s*librill-client\.so\.1 => \(\S*\).*/\1/p')
  if [ -n "$so" ]; then realpath "$so"; fi
}

# ------------------------------------------------------------------ 2. applications
step "application with find_package(Rill), Rill::client"
app=$(build_cmake_app cmake-shared "$PREFIX")
[ "$(linked_client "$app")" = "$(realpath "$SO1")" ] || fail "cmake-shared does not load $SO1: $(ldd "$app")"
run_app "$app" cmake-shared

step "application with find_package(Rill), Rill::client_static"
app=$(build_cmake_app cmake-static "$PREFIX" -DRILL_APP_STATIC=ON)
[ -z "$(linked_client "$app")" ] || fail "cmake-static loads librill-client.so"
run_app "$app" cmake-static

step "application with pkg-config rill-client"
app=$(build_pkgconfig_app pkgconfig "$LIBDIR/pkgconfig")
[ "$(linked_client "$app")" = "$(realpath "$SO1")" ] || fail "pkgconfig app does not load $SO1: $(ldd "$app")"
run_app "$app" pkgconfig

# ------------------------------------------------------------------ 3. Debian packages
step "cpack: the Debian packages"
cpack --config "$BUILD/CPackConfig.cmake" -B "$WORK/debs" >"$WORK/cpack.log" 2>&1 ||
  { cat "$WORK/cpack.log" >&2; fail "cpack"; }
ARCH=$(dpkg --print-architecture)
BROKER_DEB=$WORK/debs/rill-broker_${VERSION}_$ARCH.deb
LIB_DEB=$WORK/debs/librill-client1_${VERSION}_$ARCH.deb
DEV_DEB=$WORK/debs/librill-client-dev_${VERSION}_$ARCH.deb
expect_file / "$BROKER_DEB" "$LIB_DEB" "$DEV_DEB"

# deb_field DEB FIELD; deb_has DEB PATH... (in its data); deb_lacks DEB REGEX
deb_field() { dpkg-deb -f "$1" "$2"; }
deb_has() {
  local deb=$1; shift
  dpkg-deb -c "$deb" | awk '{print $6}' >"$WORK/contents.txt"
  for p in "$@"; do grep -qx "\./$p" "$WORK/contents.txt" || fail "$(basename "$deb") lacks /$p"; done
}
deb_lacks() {
  if dpkg-deb -c "$1" | awk '{print $6}' | grep -E "$2"; then fail "$(basename "$1") holds $2"; fi
}
# depends_on DEB REGEX...: each regex matches one of the package's Depends entries.
depends_on() {
  local deb=$1; shift
  local deps
  deps=$(deb_field "$deb" Depends | tr ',' '\n' | sed 's/^ *//')
  for r in "$@"; do
    grep -qE "^($r)" <<<"$deps" || fail "$(basename "$deb") Depends lacks $r: $deps"
  done
}

for deb in "$BROKER_DEB" "$LIB_DEB" "$DEV_DEB"; do
  echo "   $(basename "$deb"): $(stat -c %s "$deb") bytes; Depends: $(deb_field "$deb" Depends)"
done

step "rill-broker package"
[ "$(deb_field "$BROKER_DEB" Package)" = rill-broker ] || fail "rill-broker: wrong Package"
deb_has "$BROKER_DEB" usr/bin/rill-broker usr/bin/rillctl usr/bin/rill-bench \
  etc/rill/rill.toml lib/systemd/system/rill-broker.service usr/share/doc/rill/examples/rill.toml
deb_lacks "$BROKER_DEB" 'librill-client|/include/'
depends_on "$BROKER_DEB" adduser libc6 'libgrpc\+\+' libprotobuf libspdlog
mkdir -p "$WORK/control/broker"
dpkg-deb -e "$BROKER_DEB" "$WORK/control/broker"
for s in postinst prerm postrm; do
  [ -x "$WORK/control/broker/$s" ] || fail "rill-broker: no executable $s"
  sh -n "$WORK/control/broker/$s" || fail "rill-broker: $s is not valid sh"
done
grep -qx /etc/rill/rill.toml "$WORK/control/broker/conffiles" || fail "rill-broker: /etc/rill/rill.toml is not a conffile"
grep -q 'adduser --system' "$WORK/control/broker/postinst" || fail "rill-broker: postinst creates no user"

# Read whole, then matched: `deb_field | head -1 | grep -q` fails now and then under pipefail
# (grep -q and head exit early and dpkg-deb dies of SIGPIPE while the match succeeded).
BROKER_DESCRIPTION=$(deb_field "$BROKER_DEB" Description)
[[ "${BROKER_DESCRIPTION%%$'\n'*}" == "Rill commit-log broker"* ]] ||
  fail "rill-broker: Description: $BROKER_DESCRIPTION"

step "librill-client1 package"
deb_has "$LIB_DEB" "usr/$LIBREL/librill-client.so.1" "usr/$LIBREL/librill-client.so.$VERSION"
deb_lacks "$LIB_DEB" 'librill-client\.so$|\.a$|/include/|\.pc$|cmake'
depends_on "$LIB_DEB" libc6 'libgrpc\+\+' libprotobuf libsnappy liblz4 libzstd zlib1g
mkdir -p "$WORK/control/lib"
dpkg-deb -e "$LIB_DEB" "$WORK/control/lib"
grep -qE "^librill-client 1 librill-client1 \(>= $VERSION\)" "$WORK/control/lib/shlibs" ||
  fail "librill-client1: shlibs: $(cat "$WORK/control/lib/shlibs" 2>/dev/null)"
grep -qs ldconfig "$WORK/control/lib/triggers" "$WORK/control/lib/postinst" ||
  fail "librill-client1: runs no ldconfig (trigger or postinst)"

step "librill-client-dev package"
deb_has "$DEV_DEB" usr/include/rill/client/producer.h usr/include/rill/client/version.h \
  usr/include/rill/proto/status.h "usr/$LIBREL/librill-client.so" "usr/$LIBREL/librill-client.a" \
  "usr/$LIBREL/cmake/Rill/RillConfig.cmake" "usr/$LIBREL/pkgconfig/rill-client.pc"
depends_on "$DEV_DEB" "librill-client1 \\(= $VERSION\\)" 'libgrpc\+\+-dev' libprotobuf-dev \
  protobuf-compiler-grpc

step "the three packages unpacked into a throwaway root (dpkg -x)"
ROOT=$WORK/root
for deb in "$BROKER_DEB" "$LIB_DEB" "$DEV_DEB"; do dpkg-deb -x "$deb" "$ROOT"; done
readelf -d "$ROOT/usr/$LIBREL/librill-client.so.1" | grep -q 'SONAME.*\[librill-client\.so\.1\]' ||
  fail "packaged SONAME"
grep -q '^ExecStart=/usr/bin/rill-broker --config /etc/rill/rill.toml$' \
  "$ROOT/lib/systemd/system/rill-broker.service" || fail "unit: ExecStart"
grep -q '^User=rill$' "$ROOT/lib/systemd/system/rill-broker.service" || fail "unit: User"
grep -q '^dir = "/var/lib/rill"' "$ROOT/etc/rill/rill.toml" || fail "/etc/rill/rill.toml: data.dir"
"$ROOT/usr/bin/rill-broker" --help >/dev/null || fail "packaged rill-broker --help"
"$ROOT/usr/bin/rillctl" --bootstrap "$BOOTSTRAP" topic describe cmake-shared >/dev/null ||
  fail "packaged rillctl against $BOOTSTRAP"

step "application against the unpacked packages: find_package(Rill)"
app=$(build_cmake_app deb-cmake "$ROOT/usr")
PACKAGED_SO=$(realpath "$ROOT/usr/$LIBREL/librill-client.so.1")
[ "$(linked_client "$app")" = "$PACKAGED_SO" ] ||
  fail "deb-cmake does not load the packaged library: $(ldd "$app")"
run_app "$app" deb-cmake

step "application against the unpacked packages: find_package(Rill), Rill::client_static"
app=$(build_cmake_app deb-cmake-static "$ROOT/usr" -DRILL_APP_STATIC=ON)
[ -z "$(linked_client "$app")" ] || fail "deb-cmake-static loads librill-client.so"
run_app "$app" deb-cmake-static

step "application against the unpacked packages: pkg-config"
app=$(build_pkgconfig_app deb-pkgconfig "$ROOT/usr/$LIBREL/pkgconfig")
[ "$(linked_client "$app")" = "$PACKAGED_SO" ] ||
  fail "deb-pkgconfig does not load the packaged library: $(ldd "$app")"
run_app "$app" deb-pkgconfig

step "stop the broker"
kill -TERM "$BROKER_PID"
wait "$BROKER_PID" || fail "rill-broker exited with $? on SIGTERM"
BROKER_PID=""
echo "packaging_test: OK"
