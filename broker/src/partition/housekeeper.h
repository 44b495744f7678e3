#pragma once

// Housekeeping of the local partition logs: every `interval` (log.retention.check.interval.ms,
// Kafka's name and default of 5 minutes) one pass applies each partition's retention.ms and
// retention.bytes (PartitionLog::ApplyRetention), advancing its log start offset; the segments
// it drops are removed through the log store's stepwise remover. What a pass removed is logged
// and counted in /metrics (docs/ARCHITECTURE.md §9).
//
// Thread-safety: Start and Stop are called from one thread (the broker's); RunOnce and
// RenderMetrics from any thread. Passes never overlap.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "partition/partition_log.h"

namespace rill::broker {

class PartitionManager;

class Housekeeper {
 public:
  // Wall-clock milliseconds (record timestamps are wall-clock); tests pass their own.
  using Clock = std::function<int64_t()>;

  Housekeeper(PartitionManager* partitions, std::chrono::milliseconds interval, Clock now_ms = {});
  ~Housekeeper();

  // Runs a pass every interval on the thread "rill-housekeep" until Stop().
  void Start();
  // Ends the thread (a pass in progress finishes first). Idempotent.
  void Stop();

  // One retention pass over every local partition now; returns what it removed in total.
  // A partition whose log fails is logged and counted, and the others still run.
  RetentionInfo RunOnce();

  // rill_retention_* counters in Prometheus text format.
  void RenderMetrics(std::string* out) const;

 private:
  PartitionManager* const partitions_;
  const std::chrono::milliseconds interval_;
  const Clock now_ms_;

  std::mutex pass_mu_;  // one pass at a time (the thread and direct RunOnce calls)
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_

  std::atomic<uint64_t> passes_{0};
  std::atomic<uint64_t> segments_deleted_{0};
  std::atomic<uint64_t> bytes_deleted_{0};
  std::atomic<uint64_t> errors_{0};
};

}  // namespace rill::broker
