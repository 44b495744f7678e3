// The settings of a Log: FlushPolicyName / ParseFlushPolicy and SystemClock (declared in
// rill/storage/log_config.h), Log::ValidateConfig, Log::config() and Log::ApplyConfig
// (docs/STORAGE.md, Writing: config changes).
// Locks: config() reads the live atomics without a lock. ApplyConfig takes write_mu_ (so a change
// falls between two appends) and, inside it, durable_mu_ to publish a new flush policy to the
// flusher; its fsync for a switch to `none` runs under write_mu_ (SyncAndAdvance, log_flush.cc).

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rill/storage/log.h"
#include "segment.h"

namespace rill::storage {

std::string_view FlushPolicyName(FlushPolicy p) {
  switch (p) {
    case FlushPolicy::kGroup:
      return "group";
    case FlushPolicy::kInterval:
      return "interval";
    case FlushPolicy::kNone:
      return "none";
  }
  return "?";
}

Result<FlushPolicy> ParseFlushPolicy(std::string_view name) {
  if (name == "group") return FlushPolicy::kGroup;
  if (name == "interval") return FlushPolicy::kInterval;
  if (name == "none") return FlushPolicy::kNone;
  return Status::InvalidArgument("unknown flush.policy '" + std::string(name) +
                                 "' (expected group, interval or none)");
}

Clock SystemClock() {
  return [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
}

Status Log::ValidateConfig(const LogConfig& config) {
  if (config.segment_bytes < 1024 || config.segment_bytes > (int64_t{1} << 32) - 1) {
    return Status::InvalidArgument("segment.bytes must be in [1 KiB, 4 GiB)");
  }
  if (config.max_batch_bytes <= 0 || config.index_interval_bytes <= 0) {
    return Status::InvalidArgument("max.message.bytes and index.interval.bytes must be > 0");
  }
  if (config.segment_ms <= 0 || config.flush_interval_ms <= 0) {
    return Status::InvalidArgument("segment.ms and flush.interval.ms must be > 0");
  }
  if (config.producer_id_expiration_ms <= 0) {
    return Status::InvalidArgument("producer.id.expiration.ms must be > 0");
  }
  return Status::OK();
}

LogConfig Log::config() const {
  LogConfig c = config_;
  c.segment_bytes = segment_bytes_.load(std::memory_order_relaxed);
  c.segment_ms = segment_ms_.load(std::memory_order_relaxed);
  c.retention_ms = retention_ms_.load(std::memory_order_relaxed);
  c.retention_bytes = retention_bytes_.load(std::memory_order_relaxed);
  c.flush_policy = flush_policy();
  c.flush_interval_ms = flush_interval_ms_.load(std::memory_order_relaxed);
  c.index_interval_bytes = index_interval_bytes_.load(std::memory_order_relaxed);
  c.max_batch_bytes = max_batch_bytes_.load(std::memory_order_relaxed);
  return c;
}

Status Log::ApplyConfig(const LogConfig& config) {
  RILL_RETURN_IF_ERROR(ValidateConfig(config));
  std::lock_guard lock(write_mu_);  // no append runs while the settings change
  if (closed_) return Status::Unavailable("partition " + name_ + ": log closed");
  if (failed_.load(std::memory_order_acquire)) return health();
  if (config.flush_policy == FlushPolicy::kNone && flush_policy() != FlushPolicy::kNone &&
      log_end_offset() > durable_offset()) {
    // Appends made under group/interval were promised an fsync: give it to them before `none`
    // lets later appends move the durable offset past them. (The flusher may sync the same
    // files at the same time; fsync is idempotent.)
    std::vector<std::shared_ptr<Segment>> segs = unsynced_closed_;
    segs.push_back(active());
    RILL_RETURN_IF_ERROR(
        SyncAndAdvance(segs, dir_dirty_, log_end_offset().value(), truncations_, -1));
  }
  segment_bytes_.store(config.segment_bytes, std::memory_order_relaxed);
  segment_ms_.store(config.segment_ms, std::memory_order_relaxed);
  retention_ms_.store(config.retention_ms, std::memory_order_relaxed);
  retention_bytes_.store(config.retention_bytes, std::memory_order_relaxed);
  flush_interval_ms_.store(config.flush_interval_ms, std::memory_order_relaxed);
  index_interval_bytes_.store(config.index_interval_bytes, std::memory_order_relaxed);
  max_batch_bytes_.store(config.max_batch_bytes, std::memory_order_relaxed);
  {
    std::lock_guard dl(durable_mu_);
    flush_policy_.store(config.flush_policy, std::memory_order_release);
    config_changed_ = true;
  }
  scheduler_->Wake(this);
  return Status::OK();
}

}  // namespace rill::storage
