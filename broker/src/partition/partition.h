#pragma once

// One partition this node hosts: its log, its role and leader epoch, its high watermark, and the
// waiters (long polls, subscriptions) that want to hear when the high watermark moves.
//
// Thread-safety: all methods may be called from any thread. Appends are serialised by the
// partition's append lock (the single writer); readers never take it.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
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

// Broker-wide replication settings the partition's state machines use.
struct ReplicationSettings {
  int64_t replica_lag_time_max_ms = 30000;  // Kafka's replica.lag.time.max.ms
};

// The limits of an effective topic config, parsed by the one topic config parser
// (ParseTopicConfig, controller/topic_config.h, which the log's config comes from too): a bad
// value is an error naming it, never a silent default.
Result<PartitionLimits> LimitsFromConfig(const TopicConfigMap& config);

// The replication state of a partition on this node, as the metadata last assigned it. Kept
// whole in one place so that role, epoch, replica set and ISR never disagree.
struct ReplicaState {
  NodeId self{-1};  // this node; -1 in tests that run one node (the leader is then itself)
  PartitionRole role = PartitionRole::kLeader;
  NodeId leader{-1};
  LeaderEpoch leader_epoch{0};
  std::vector<NodeId> replicas;
  std::vector<NodeId> isr;  // members (the leader included), not a count
  int32_t partition_epoch = 0;
};

// What the leader answers one partition of a follower's fetch with (docs/ARCHITECTURE.md §7a).
struct ReplicaFetchAnswer {
  enum class Error { kNone, kNotLeader, kFencedEpoch, kUnknownEpoch, kNotReplica, kOutOfRange,
                     kDiverging, kStorage };
  Error error = Error::kNone;
  std::string message;
  Offset high_watermark{0};
  Offset log_start{0};
  Offset log_end{0};
  replication::EpochEndOffset diverging;
  std::string records;  // stored batches, from the fetch offset on
};

// An ISR change the leader wants the controller to make.
struct IsrChangeRequest {
  LeaderEpoch leader_epoch{0};
  int32_t partition_epoch = 0;
  std::vector<NodeId> new_isr;
};

class Partition : public std::enable_shared_from_this<Partition> {
 public:
  // Always held by shared_ptr (std::make_shared): durability callbacks keep it alive.
  // `replicated`: the replica manager's partitions, whose state SetReplicaState sets before any
  // use. Their high watermark starts at the log start and is re-established by replication (the
  // leader's from its ISR's durable ends, a follower's from its leader): a restarted replica's
  // durable log may end in records that were never committed, and a high watermark set past them
  // would forbid the truncation that removes them. Without it (single-node tests) the partition
  // leads alone at once and its high watermark is its durable end.
  Partition(std::string topic, int32_t partition, std::shared_ptr<PartitionLog> log,
            bool replicated = false);

  const std::string& topic() const { return topic_; }
  int32_t partition() const { return partition_; }
  PartitionLog& log() { return *log_; }

  ReplicaState replica_state() const;
  PartitionRole role() const;
  LeaderEpoch leader_epoch() const;
  int32_t isr_size() const;
  // Replaces the replication state (from a metadata image). No append straddles the change: an
  // append in progress finishes under the old epoch first. Becoming leader (or a new epoch)
  // starts a fresh leader state machine; losing leadership fails the acks=all writes still
  // waiting with kUnavailable (NOT_LEADER: the client retries on the new leader).
  void SetReplicaState(ReplicaState state);
  void set_replication_settings(ReplicationSettings s);
  // Called (outside the partition's locks) when a committed ISR of a partition this node goes
  // on leading loses (shrink = true) or gains members: for /metrics. Set before use.
  void set_on_isr_change(std::function<void(bool shrink)> hook) { on_isr_change_ = std::move(hook); }

  // ---- Leader side of replication ----
  // Serves one partition of a follower's fetch: fencing by epoch, divergence (the follower's
  // last epoch ends elsewhere here), and otherwise the stored batches from its fetch offset, at
  // most `max_bytes` (at least one whole batch). Records the follower's durable end, which may
  // raise the high watermark and complete acks=all writes.
  ReplicaFetchAnswer ServeReplicaFetch(const replication::FollowerFetch& fetch, size_t max_bytes,
                                       int64_t now_ms);
  // True when a follower fetching from `offset` would get data now (for long polls).
  bool HasDataFor(Offset offset) const { return log_->log_end_offset() > offset; }
  // The ISR change to ask the controller for, if any (followers too slow for
  // replica.lag.time.max.ms, or caught up again); marks it in flight. Call IsrChangeDone after.
  std::optional<IsrChangeRequest> TakeIsrChange(int64_t now_ms,
                                                const std::set<NodeId>& fenced = {});
  // The controller's answer to the change TakeIsrChange returned: applied; refused as it stands
  // (the next round recomputes it); refused because the leader's metadata is stale, or lost
  // (outcome unknown). In the last two cases the change may have been applied, so it stays in
  // flight -- the high watermark keeps counting a member it adds -- until metadata shows the
  // partition's next epoch, and an unknown outcome is sent again after a while.
  enum class IsrChangeOutcome { kApplied, kRefused, kStale, kUnknown };
  void IsrChangeDone(IsrChangeOutcome outcome, const std::vector<NodeId>& isr, int64_t now_ms);
  // Followers' progress, for /metrics and describe (leader only; empty otherwise).
  std::vector<replication::LeaderReplica::FollowerView> FollowerViews() const;

  // ---- Follower side ----
  // The next fetch for this partition, unless this node follows it (nullopt).
  std::optional<replication::FollowerFetch> NextReplicaFetch();
  // Applies one partition of the leader's answer (fetched at `epoch`): appends the records,
  // truncates on divergence or out of range, takes the leader's high watermark. kUnavailable
  // when this node no longer follows at `epoch` (a newer image arrived meanwhile).
  Status ApplyReplicaFetch(LeaderEpoch epoch, const ReplicaFetchAnswer& answer);

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
  // A duplicate (AppendInfo::duplicate, an idempotent producer's retry) changes nothing; its
  // `acked` runs by the same rule, for the original batch's offsets. A refused idempotent batch
  // sets *refusal (when not null), as PartitionLog::Append.
  Result<AppendInfo> Append(std::span<char> batches, int acks, std::function<void(Status)> acked,
                            storage::ProducerCheck* refusal = nullptr);

  // Registers a one-shot waiter; holds it weakly. Woken on the next high watermark advance.
  void AddWaiter(std::weak_ptr<HighWatermarkWaiter> waiter);
  // Wakes every registered waiter (called when the high watermark may have moved).
  void NotifyWaiters();
  // The same for the log end: replica fetches waiting for new data.
  void AddAppendWaiter(std::weak_ptr<HighWatermarkWaiter> waiter);
  void NotifyAppendWaiters();

  // Bytes appended since start; used by /metrics.
  uint64_t bytes_in() const { return bytes_in_.load(std::memory_order_relaxed); }

  // Client traffic since this partition object was made, for /metrics' per-topic counters:
  // what producers appended (not replication or the group coordinator) and what fetches and
  // pushes served (records: the offsets the read advanced over). Any thread; relaxed.
  struct Traffic {
    uint64_t bytes_in = 0, records_in = 0, bytes_out = 0, records_out = 0;
  };
  void CountProduced(uint64_t bytes, uint64_t records) {
    produced_bytes_.fetch_add(bytes, std::memory_order_relaxed);
    produced_records_.fetch_add(records, std::memory_order_relaxed);
  }
  void CountFetched(uint64_t bytes, uint64_t records) {
    fetched_bytes_.fetch_add(bytes, std::memory_order_relaxed);
    fetched_records_.fetch_add(records, std::memory_order_relaxed);
  }
  Traffic traffic() const {
    return {produced_bytes_.load(std::memory_order_relaxed),
            produced_records_.load(std::memory_order_relaxed),
            fetched_bytes_.load(std::memory_order_relaxed),
            fetched_records_.load(std::memory_order_relaxed)};
  }

 private:
  using Acks = std::vector<std::function<void(Status)>>;
  void AdvanceHighWatermark(Offset end);
  // Publishes the leader state machine's high watermark and collects the acks=all writes it
  // completes; repl_mu_ held. The caller runs them (and NotifyWaiters) after unlocking.
  bool PublishLeaderHighWatermarkLocked(Acks* ready);  // true when it moved
  void OnLocalDurable(Offset durable);
  // Feeds the leader state machine a durable end (clamped to leader_log_end_); repl_mu_ held.
  void FeedLeaderDurableLocked(Offset durable);
  // A leader state machine for `s` from the log's current offsets; repl_mu_ held.
  std::unique_ptr<replication::LeaderReplica> NewLeaderLocked(const ReplicaState& s);
  static void AddWaiterTo(std::mutex& mu, std::vector<std::weak_ptr<HighWatermarkWaiter>>& list,
                          std::weak_ptr<HighWatermarkWaiter> waiter);
  static void Notify(std::mutex& mu, std::vector<std::weak_ptr<HighWatermarkWaiter>>& list);

  const std::string topic_;
  const int32_t partition_;
  const std::shared_ptr<PartitionLog> log_;
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> produced_bytes_{0}, produced_records_{0};
  std::atomic<uint64_t> fetched_bytes_{0}, fetched_records_{0};
  std::atomic<int64_t> high_watermark_;

  mutable std::mutex state_mu_;
  ReplicaState state_;  // guarded by state_mu_

  mutable std::mutex limits_mu_;
  PartitionLimits limits_;

  std::mutex append_mu_;  // the single-writer lock; taken before state_mu_ and repl_mu_

  // The replication state machines (replication/partition_replica.h): exactly one of them is
  // set, matching state_.role. Taken after append_mu_ and state_mu_.
  mutable std::mutex repl_mu_;
  std::unique_ptr<replication::LeaderReplica> leader_;
  std::unique_ptr<replication::FollowerReplica> follower_;
  // The log end leader_ was told (OnLocalAppend). A durable end reported to it is clamped to
  // this: the log may already hold an append whose OnLocalAppend has not run yet.
  Offset leader_log_end_{0};
  // The ISR change in flight, kept to resend it while its outcome is unknown.
  std::optional<IsrChangeRequest> isr_request_;
  int64_t isr_request_sent_ms_ = 0;
  bool isr_request_resend_ = false;
  int64_t isr_refused_until_ms_ = 0;  // after a refusal, ask again only from then
  std::multimap<int64_t, std::function<void(Status)>> pending_acks_;  // end offset -> acked
  ReplicationSettings settings_;
  std::function<void(bool shrink)> on_isr_change_;

  std::mutex waiters_mu_;
  std::vector<std::weak_ptr<HighWatermarkWaiter>> waiters_;
  std::mutex append_waiters_mu_;
  std::vector<std::weak_ptr<HighWatermarkWaiter>> append_waiters_;
};

}  // namespace rill::broker
