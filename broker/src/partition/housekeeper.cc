#include "partition/housekeeper.h"

#include <spdlog/spdlog.h>

#include <cinttypes>
#include <cstdio>

#include "partition/partition_manager.h"
#include "rill/proto/thread_name.h"

namespace rill::broker {

namespace {
int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Housekeeper::Housekeeper(PartitionManager* partitions, std::chrono::milliseconds interval,
                         Clock now_ms)
    : partitions_(partitions),
      interval_(interval),
      now_ms_(now_ms ? std::move(now_ms) : Clock(SystemNowMs)) {}

Housekeeper::~Housekeeper() { Stop(); }

void Housekeeper::Start() {
  thread_ = std::thread([this] {
    SetCurrentThreadName("rill-housekeep");
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, interval_, [this] { return stop_; })) {
      lock.unlock();
      (void)RunOnce();
      lock.lock();
    }
  });
}

void Housekeeper::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

RetentionInfo Housekeeper::RunOnce() {
  std::lock_guard pass(pass_mu_);
  const int64_t now = now_ms_();
  RetentionInfo total;
  int partitions_trimmed = 0;
  for (const auto& part : partitions_->All()) {
    auto r = part->log().ApplyRetention(now);
    if (!r.ok()) {
      // A failed log is read-only until a restart; a log closed under this pass (its topic was
      // just deleted) has nothing left to trim. Either way the other partitions still run.
      errors_.fetch_add(1, std::memory_order_relaxed);
      spdlog::error("retention of {}-{}: {}", part->topic(), part->partition(),
                    r.status().ToString());
      continue;
    }
    if (r->segments == 0) continue;
    ++partitions_trimmed;
    total.segments += r->segments;
    total.bytes += r->bytes;
    segments_deleted_.fetch_add(static_cast<uint64_t>(r->segments), std::memory_order_relaxed);
    bytes_deleted_.fetch_add(r->bytes, std::memory_order_relaxed);
  }
  passes_.fetch_add(1, std::memory_order_relaxed);
  if (total.segments > 0) {
    spdlog::info("retention pass: {} segment(s), {} bytes removed from {} partition(s)",
                 total.segments, total.bytes, partitions_trimmed);
  }
  return total;
}

void Housekeeper::RenderMetrics(std::string* out) const {
  char buf[256];
  auto counter = [&](const char* name, const char* help, uint64_t value) {
    snprintf(buf, sizeof buf, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name,
             name, value);
    *out += buf;
  };
  counter("rill_retention_passes_total", "Retention passes over every local partition.",
          passes_.load(std::memory_order_relaxed));
  counter("rill_retention_segments_deleted_total",
          "Segments deleted by retention.ms or retention.bytes.",
          segments_deleted_.load(std::memory_order_relaxed));
  counter("rill_retention_bytes_deleted_total", "Bytes of the segments retention deleted.",
          bytes_deleted_.load(std::memory_order_relaxed));
  counter("rill_retention_errors_total", "Partitions whose retention failed in a pass.",
          errors_.load(std::memory_order_relaxed));
}

}  // namespace rill::broker
