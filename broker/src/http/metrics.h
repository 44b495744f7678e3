#pragma once

// Broker metrics in Prometheus text format: request counts and latency histograms per API,
// bytes in and out, produce durability (flush) latency. Partition gauges (sizes, offsets, and the
// replication gauges: leadership, under-replication, follower lag) are rendered at scrape time
// from the PartitionManager; the ISR change counters are fed by OnIsrChange.
//
// Thread-safety: every method may be called from any thread; counters are relaxed atomics.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace rill::broker {

class PartitionManager;
class ReplicaFetcherManager;

enum class Api : int {
  kProduce = 0,
  kProduceStream,  // per streamed request
  kFetch,
  kSubscribe,  // per pushed message
  kListOffsets,
  kCreateTopics,
  kDeleteTopics,
  kListTopics,
  kDescribeTopics,
  kCreatePartitions,
  kDescribeConfigs,
  kAlterConfigs,
  kDescribeCluster,
  kMetadata,
  kElectLeaders,
  kInitProducerId,
  // rill.v1.Groups
  kGroupHeartbeat,
  kCommitOffsets,
  kFetchOffsets,
  kListGroups,
  kDescribeGroup,
  kResetOffsets,
  kDeleteGroup,
  kCount
};

const char* ApiName(Api api);

// Latency histogram with fixed exponential buckets from 50 us to ~52 s.
class Histogram {
 public:
  static constexpr int kBuckets = 21;
  static double BucketBound(int i);  // seconds, upper bound of bucket i
  void Observe(double seconds);
  void Render(std::string* out, const std::string& name, const std::string& labels) const;

 private:
  std::array<std::atomic<uint64_t>, kBuckets + 1> buckets_{};  // last = +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_us_{0};
};

class Metrics {
 public:
  void RecordRequest(Api api, std::chrono::steady_clock::time_point start, bool error);
  void AddBytesIn(uint64_t n) { bytes_in_.fetch_add(n, std::memory_order_relaxed); }
  // An idempotent producer's retry answered with its original offsets, nothing appended.
  void AddDuplicateBatch() { duplicate_batches_.fetch_add(1, std::memory_order_relaxed); }
  void AddBytesOut(uint64_t n) { bytes_out_.fetch_add(n, std::memory_order_relaxed); }
  void RecordDurable(std::chrono::steady_clock::time_point appended);
  // A completed Fetch split in two: from its arrival to the attempt that answered it (parked in
  // a long poll waiting for data, or for max_wait_ms), and that attempt (reading the logs and
  // building the response). rill_fetch_wait_seconds, rill_fetch_serve_seconds.
  void RecordFetch(std::chrono::steady_clock::time_point arrived,
                   std::chrono::steady_clock::time_point answering);
  // One log fsync round (storage::LogConfig::on_sync): its duration and the bytes it covered.
  void RecordFlush(std::chrono::nanoseconds elapsed, uint64_t bytes);
  // The source of rill_log_shared_syncs_total and rill_log_shared_sync_rounds_total (the flush
  // scheduler's filesystem-wide syncs and the log rounds they served). Set before the HTTP server
  // starts; must be thread-safe.
  void set_shared_syncs(std::function<std::pair<uint64_t, uint64_t>()> source) {
    shared_syncs_ = std::move(source);
  }
  // The source of rill_inflight_produce_bytes, rill_produce_reserved_bytes,
  // rill_produce_streams_waiting and rill_produce_stream_waits_total (the ProduceStreams' read
  // gate, docs/ARCHITECTURE.md §12). Set before the HTTP server starts; must be thread-safe.
  struct ProduceGateGauges {
    int64_t accepted_bytes = 0;  // received and not yet answered
    int64_t reserved_bytes = 0;
    uint64_t waiting = 0;
    uint64_t waits = 0;
  };
  void set_produce_gate(std::function<ProduceGateGauges()> source) {
    produce_gate_ = std::move(source);
  }
  // The committed ISR of a partition this node leads changed under the same leader epoch (a new
  // metadata image shows it): `shrink` when a member left, else a member joined. Called once per
  // committed change by whoever applies the image to the partition (rill_isr_shrinks_total,
  // rill_isr_expands_total).
  void OnIsrChange(bool shrink);
  // The source of rill_replica_fetchers; rendered only once set. `fetchers` must outlive every
  // later Render (set it before the HTTP server starts, clear it before destroying them).
  void set_replica_fetchers(const ReplicaFetcherManager* fetchers) {
    fetchers_.store(fetchers, std::memory_order_release);
  }

  // Prometheus text exposition; `partitions` may be null.
  std::string Render(const PartitionManager* partitions) const;

 private:
  struct PerApi {
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> errors{0};
    Histogram latency;
  };
  std::array<PerApi, static_cast<int>(Api::kCount)> apis_;
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> duplicate_batches_{0};
  std::atomic<uint64_t> bytes_out_{0};
  Histogram durable_latency_;
  Histogram fetch_wait_;
  Histogram fetch_serve_;
  Histogram flush_latency_;
  std::atomic<uint64_t> flush_bytes_{0};
  std::atomic<uint64_t> isr_shrinks_{0};
  std::atomic<uint64_t> isr_expands_{0};
  std::atomic<const ReplicaFetcherManager*> fetchers_{nullptr};
  std::function<std::pair<uint64_t, uint64_t>()> shared_syncs_;
  std::function<ProduceGateGauges()> produce_gate_;
};

}  // namespace rill::broker
