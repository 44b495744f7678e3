// rill-broker: one Rill node. Reads the TOML config (--config), RILL_* environment variables
// and command-line overrides, serves until SIGTERM or SIGINT, then shuts down gracefully and
// exits 0. `--version` prints the version, git revision and build type and exits 0. Exit codes:
// 0 after a clean shutdown, 1 when the start fails (a listener's port in use, a data dir of
// another node, ...), 2 for a bad configuration.

#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>

#include "server/broker.h"
#include "rill/broker/config.h"
#include "partition/storage_log_store.h"
#include "rill_version.h"

int main(int argc, char** argv) {
  // Requests and their record buffers are often hundreds of KiB to MiBs. glibc serves such
  // blocks with a fresh mmap and unmaps them on free, so every request paid page faults and
  // zeroing of new pages (on this VM also a host fault per page: the copy into a request buffer
  // ran at first-touch speed). Keep them on the heap and keep freed heap memory for reuse.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--version") == 0) {
      std::printf("rill-broker %s\n", RILL_VERSION_LINE);
      return 0;
    }
  }
  auto config = rill::broker::ParseBrokerConfig(argc, argv);
  if (!config.ok()) {
    if (config.status().IsNotFound()) {  // --help
      std::fputs(config.status().message().c_str(), stdout);
      return 0;
    }
    std::fprintf(stderr, "rill-broker: %s\n", config.status().message().c_str());
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%t] %v");

  // Signals are taken synchronously by the main thread; every other thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  rill::broker::Broker broker(
      *config,
      [](rill::broker::ControllerConfig c) { return rill::broker::MakeController(std::move(c)); },
      std::make_unique<rill::broker::StorageLogStore>(
          config->data_dir, config->preallocate_bytes, config->cache_behind_bytes,
          config->standby_segment_bytes, config->remove_step_bytes, config->remove_bytes_per_sec,
          config->flush_threads, config->shared_sync_min_logs, config->standby_budget_bytes));
  rill::Status st = broker.Start();
  if (!st.ok()) {
    spdlog::critical("start failed: {}", st.ToString());
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("received signal {}", sig);
  broker.Shutdown();
  return 0;
}
