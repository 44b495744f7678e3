#pragma once

// One partition this node hosts: its log, its role and leader epoch, its high watermark, and the
// waiters (long polls, subscriptions) that want to hear when the high watermark moves.
//
// Thread-safety: all methods may be called from any thread. Appends are serialised by the
// partition's append lock (the single writer); readers never take it.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "partition_log.h"
#include "rill/proto/status.h"
#include "rill/proto/types.h"

namespace rill::broker {

enum class PartitionRole { kLeader, kFollower };

// Woken when a partition's high watermark may have advanced. One-shot: a waiter re-registers
// if it still wants to wait. Implementations must not block.
class HighWatermarkWaiter {
 public:
  virtual ~HighWatermarkWaiter() = default;
  virtual void OnHighWatermark() = 0;
};

// The per-topic settings the data path checks, parsed from the effective config.
struct PartitionLimits {
  int32_t max_message_bytes = 1048588;  // Kafka's default
  int32_t min_insync_replicas = 1;
  bool log_append_time = false;  // message.timestamp.type=LogAppendTime
};

PartitionLimits LimitsFromConfig(const TopicConfigMap& config);

class Partition {
 public:
  Partition(std::string topic, int32_t partition, std::shared_ptr<PartitionLog> log);

  const std::string& topic() const { return topic_; }
  int32_t partition() const { return partition_; }
  PartitionLog& log() { return *log_; }

  PartitionRole role() const { return role_.load(std::memory_order_acquire); }
  LeaderEpoch leader_epoch() const { return LeaderEpoch(leader_epoch_.load(std::memory_order_acquire)); }
  int32_t isr_size() const { return isr_size_.load(std::memory_order_acquire); }
  // Updates role, epoch and ISR size from a metadata image.
  void SetLeadership(PartitionRole role, LeaderEpoch epoch, int32_t isr_size);

  PartitionLimits limits() const;
  void set_limits(PartitionLimits limits);

  // The high watermark: consumers read below it. A leader with ISR {self} uses the durable end
  // offset of its log; with followers it will be the smallest ISR log end offset.
  Offset high_watermark() const { return log_->durable_end_offset(); }

  // Appends validated batches as the single writer, stamping the leader epoch. After a
  // successful append the log is asked to report durability; waiters are woken then.
  Result<AppendInfo> Append(std::span<char> batches);

  // Registers a one-shot waiter; holds it weakly. Woken on the next high watermark advance.
  void AddWaiter(std::weak_ptr<HighWatermarkWaiter> waiter);
  // Wakes every registered waiter (called when the high watermark may have moved).
  void NotifyWaiters();

  // Bytes appended since start; used by /metrics.
  uint64_t bytes_in() const { return bytes_in_.load(std::memory_order_relaxed); }

 private:
  const std::string topic_;
  const int32_t partition_;
  const std::shared_ptr<PartitionLog> log_;
  std::atomic<PartitionRole> role_{PartitionRole::kLeader};
  std::atomic<int32_t> leader_epoch_{0};
  std::atomic<int32_t> isr_size_{1};
  std::atomic<uint64_t> bytes_in_{0};

  mutable std::mutex limits_mu_;
  PartitionLimits limits_;

  std::mutex append_mu_;  // the single-writer lock

  std::mutex waiters_mu_;
  std::vector<std::weak_ptr<HighWatermarkWaiter>> waiters_;
};

}  // namespace rill::broker
