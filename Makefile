# Rill: `make run` starts a single-node broker, `make test` runs the whole suite.
# Every target installs the Debian packages it needs first (scripts/install-deps.sh, a no-op
# when they are present).

BUILD_DIR ?= build/rel
# Optimised with line tables only (-g1): enough for perf and stack traces, and much less to
# compile and link than full -g (scripts/test.sh uses the same flags for build/rel).
RELWITHDEBINFO_FLAGS ?= -O2 -g1 -DNDEBUG
JOBS ?= $(shell nproc)

.PHONY: all deps configure build test test-fast test-docker test-fault bench run package clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		"-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$(RELWITHDEBINFO_FLAGS)" >/dev/null

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Sanitizer runs first (ASan+UBSan for the codec and log, TSan for concurrent readers), then the
# whole suite in the optimised build, then the docker-compose cluster with the image made from
# build/rel's binaries (docker/test-compose.sh; skipped, saying why, where no Docker engine runs).
test: deps
	@bash scripts/test.sh

# The 3-node docker-compose cluster (docker/README.md) on a private Docker engine: the image built
# from source (docker/Dockerfile, JOBS parallel compiles), a leader killed while producing, every
# acknowledged record read back. Root only; `make test` runs it with build/rel's binaries.
test-docker: deps
	@JOBS=$(JOBS) bash docker/test-compose.sh

# The long fault-injection run (tests/fault/README.md): 100 faults of every kind against three
# real brokers under acks=all load, then every acknowledged record checked. ARGS adds options
# (ARGS="--seed S" replays a run's faults). Root for the network partitions (iptables).
test-fault: configure
	cmake --build $(BUILD_DIR) -j $(JOBS) --target rill-chaos
	$(BUILD_DIR)/tests/fault/rill-chaos --cycles 100 $(ARGS)

bench: build
	@bash scripts/bench.sh

run: build
	@bash scripts/run.sh $(ARGS)

# Debian packages rill-broker, librill-client1 and librill-client-dev in $(BUILD_DIR)/packages
# (cmake/RillPackage.cmake); builds only what they hold.
package: configure
	@BUILD_DIR=$(BUILD_DIR) JOBS=$(JOBS) bash scripts/package.sh

clean:
	rm -rf build
