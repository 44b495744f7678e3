#!/usr/bin/env bash
# Builds the Debian packages into $BUILD_DIR/packages (`make package` configures the build and
# installs the dependencies first): rill-broker, librill-client1, librill-client-dev. Builds only
# what they hold (target rill_installables), not the tests; CPack does the rest
# (cmake/RillPackage.cmake). Install them with `sudo apt install ./build/rel/packages/*.deb`.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/rel}
JOBS=${JOBS:-$(nproc)}

cmake --build "$BUILD_DIR" -j "$JOBS" --target rill_installables
(cd "$BUILD_DIR" && cpack --config CPackConfig.cmake)
for deb in "$BUILD_DIR"/packages/*.deb; do
  echo "$deb: $(dpkg-deb -f "$deb" Depends)"
done
