#pragma once

// DiskSpaceGuard: refuses produce before the disk holding the data dir fills up.
//
// A log that meets ENOSPC mid-write fails and turns read-only until the broker restarts, and a
// broker on a full disk cannot even start (its controller writes its state at start). So produce
// is refused with RESOURCE_EXHAUSTED (retriable: the client's retries wait for space) once the
// filesystem's available bytes fall below `min_free_bytes`, and accepted again as soon as
// retention, a topic deletion or an operator frees space; nothing already written is touched.
// Redpanda's storage_min_free_bytes works the same way; Kafka has no such guard.
//
// The free space is read (statvfs) lazily on the produce path: at most every 100 ms, or sooner
// once min_free_bytes / 8 bytes were admitted since the last reading, so a fast producer cannot
// run far past the threshold between two readings.
//
// Thread-safety: every method may be called from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "rill/proto/status.h"

namespace rill::broker {

class DiskSpaceGuard {
 public:
  // Bytes available to the broker on the filesystem holding `dir` (statvfs f_bavail).
  using Probe = std::function<Result<uint64_t>(const std::string& dir)>;
  static Result<uint64_t> StatvfsProbe(const std::string& dir);

  static constexpr std::chrono::milliseconds kRefreshInterval{100};

  // min_free_bytes 0 turns the guard off (the free space is still read for the metrics).
  // Reads the free space once at construction.
  DiskSpaceGuard(std::string dir, uint64_t min_free_bytes, Probe probe = StatvfsProbe);

  // OK when `bytes` more may be appended; ResourceExhausted with a message naming the directory,
  // the free space and the setting when the disk is below the threshold.
  Status Admit(uint64_t bytes);

  uint64_t min_free_bytes() const { return min_free_; }
  // The last reading.
  uint64_t free_bytes() const { return free_.load(std::memory_order_relaxed); }
  // True while produce is refused.
  bool refusing() const { return refusing_.load(std::memory_order_relaxed); }
  // rill_storage_free_bytes, rill_storage_min_free_bytes and rill_storage_produce_refused
  // (Prometheus text format), from a reading at most kRefreshInterval old.
  void RenderMetrics(std::string* out);

 private:
  // Reads the free space when the last reading is kRefreshInterval old, or min_free_bytes / 8
  // bytes were admitted since.
  void MaybeRefresh();
  void Refresh(int64_t now_ns);

  const std::string dir_;
  const uint64_t min_free_;
  const Probe probe_;
  std::mutex refresh_mu_;  // one reading at a time; others use the last one
  std::atomic<int64_t> checked_ns_{INT64_MIN / 2};
  std::atomic<uint64_t> admitted_since_{0};
  std::atomic<uint64_t> free_{0};
  std::atomic<bool> refusing_{false};
  bool probe_failed_ = false;  // guarded by refresh_mu_: log a failing statvfs once
};

}  // namespace rill::broker
