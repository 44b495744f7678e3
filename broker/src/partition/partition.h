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

#include "partition/partition_log.h"
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

// The limits of an effective topic config, parsed by the one topic config parser
// (ParseTopicConfig, controller/topic_config.h, which the log's config comes from too): a bad
// value is an error naming it, never a silent default.
Result<PartitionLimits> LimitsFromConfig(const TopicConfigMap& config);

// The replication state of a partition on this node, as the metadata last assigned it. Kept
// whole in one place so that role, epoch, replica set and ISR never disagree.
struct ReplicaState {
  PartitionRole role = PartitionRole::kLeader;
  NodeId leader{-1};
  LeaderEpoch leader_epoch{0};
  std::vector<NodeId> replicas;
  std::vector<NodeId> isr;  // members (the leader included), not a count
};

class Partition : public std::enable_shared_from_this<Partition> {
 public:
  // Always held by shared_ptr (std::make_shared): durability callbacks keep it alive.
  Partition(std::string topic, int32_t partition, std::shared_ptr<PartitionLog> log);

  const std::string& topic() const { return topic_; }
  int32_t partition() const { return partition_; }
  PartitionLog& log() { return *log_; }

  ReplicaState replica_state() const;
  PartitionRole role() const;
  LeaderEpoch leader_epoch() const;
  int32_t isr_size() const;
  // Replaces the replication state (from a metadata image). No append straddles the change: an
  // append in progress finishes under the old epoch first.
  void SetReplicaState(ReplicaState state);

  PartitionLimits limits() const;
  void set_limits(PartitionLimits limits);

  // The high watermark: consumers read below it, and an acks=1/-1 write is acknowledged once it
  // passes the write. With the ISR this node alone it is the durable end of the local log (per
  // the topic's flush policy); replication will make it the smallest ISR member's durable end.
  // It only moves forward, and only here (Append's durability callbacks).
  Offset high_watermark() const { return Offset(high_watermark_.load(std::memory_order_acquire)); }

  // Appends validated batches (concatenated) as the single writer, stamping the leader epoch;
  // kUnavailable unless this node leads. This is the one ack rule for every writer (produce and
  // the group coordinator): `acked` runs once the batches may be acknowledged under `acks` --
  // for 1 and -1 when the high watermark passes them, or with the error that prevents it; for
  // 0 it is not called (the writer answers after the append). `acked` may run inline, before
  // Append returns, or on a storage thread; it must not block. Waiters are woken whenever the
  // high watermark moves.
  Result<AppendInfo> Append(std::span<char> batches, int acks, std::function<void(Status)> acked);

  // Registers a one-shot waiter; holds it weakly. Woken on the next high watermark advance.
  void AddWaiter(std::weak_ptr<HighWatermarkWaiter> waiter);
  // Wakes every registered waiter (called when the high watermark may have moved).
  void NotifyWaiters();

  // Bytes appended since start; used by /metrics.
  uint64_t bytes_in() const { return bytes_in_.load(std::memory_order_relaxed); }

 private:
  void AdvanceHighWatermark(Offset end);

  const std::string topic_;
  const int32_t partition_;
  const std::shared_ptr<PartitionLog> log_;
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<int64_t> high_watermark_;

  mutable std::mutex state_mu_;
  ReplicaState state_;  // guarded by state_mu_

  mutable std::mutex limits_mu_;
  PartitionLimits limits_;

  std::mutex append_mu_;  // the single-writer lock; taken before state_mu_

  std::mutex waiters_mu_;
  std::vector<std::weak_ptr<HighWatermarkWaiter>> waiters_;
};

}  // namespace rill::broker
