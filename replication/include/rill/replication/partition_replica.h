#pragma once

// The partition leader/follower (ISR) protocol as pure state machines: no threads, clocks,
// sockets or disks (docs/ARCHITECTURE.md §7a). Time comes in as `now_ms` arguments; the log is
// described by offsets and its leader-epoch history, which the caller reads from storage and
// passes in. broker/ carries the fetch messages and applies the decisions to the log; the
// replication simulator (tests/replication/replica_sim.*) drives the same code with seeded
// faults.
//
// Durability is stronger than Kafka's: every offset a replica reports is the end of what it has
// made *durable* under its flush policy, not its log end, so the high watermark (the smallest
// durable end over the ISR) never passes a record that some ISR member could lose in a crash.

#include <cstdint>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "rill/proto/types.h"

namespace rill::replication {

// One entry of a log's leader-epoch history: `epoch` wrote the batches from `start_offset` up to
// the next entry's start (or the log end). Entries are sorted by epoch and by start offset, both
// strictly increasing.
struct EpochEntry {
  LeaderEpoch epoch{0};
  Offset start_offset{0};
  friend bool operator==(const EpochEntry&, const EpochEntry&) = default;
};

// The answer to "where does epoch E end in your log?" (Kafka's OffsetsForLeaderEpoch).
struct EpochEndOffset {
  LeaderEpoch epoch{-1};   // the largest epoch <= the one asked for; -1 when none is known
  Offset end_offset{-1};   // exclusive end of that epoch's batches; -1 when unknown
  friend bool operator==(const EpochEndOffset&, const EpochEndOffset&) = default;
};

// Looks up `requested` in `history` of a log whose end is `log_end`:
//   - requested is the latest epoch in the history (or later): {latest epoch, log_end};
//   - otherwise the largest epoch <= requested, ending where the next epoch starts;
//   - requested older than every entry: {requested, first entry's start offset};
//   - empty history or requested < 0: {-1, -1}.
EpochEndOffset EndOffsetForEpoch(std::span<const EpochEntry> history, LeaderEpoch requested,
                                 Offset log_end);

// The epoch of the last batch below `log_end` per `history` (-1 for an empty log).
LeaderEpoch LastEpochBefore(std::span<const EpochEntry> history, Offset log_end);

struct ReplicaConfig {
  int64_t replica_lag_time_max_ms = 30000;  // Kafka's default
  int32_t min_insync_replicas = 1;
};

// What a follower says in a fetch, per partition.
struct FollowerFetch {
  NodeId follower{-1};
  LeaderEpoch current_leader_epoch{-1};  // the leader epoch the follower believes in
  Offset fetch_offset{0};                // its log end: the next offset it wants
  LeaderEpoch last_fetched_epoch{-1};    // epoch of its last batch (-1: empty log)
  Offset durable_end{0};                 // everything below is durable on the follower
};

// The leader's answer to one partition of a fetch, before any bytes are read.
struct FetchDecision {
  enum class Kind {
    kRead,            // read the log from `read_from` (may be empty: nothing new)
    kDiverging,       // the follower's last epoch ends elsewhere here: truncate to `diverging`
    kFencedEpoch,     // current_leader_epoch older than ours: the follower must refresh metadata
    kUnknownEpoch,    // current_leader_epoch newer than ours: this leader is stale
    kNotReplica,      // the fetcher is not an assigned replica
    kOutOfRange,      // fetch_offset below our log start or beyond our log end
  };
  Kind kind = Kind::kRead;
  Offset read_from{-1};
  EpochEndOffset diverging;
};

// The leader side of one partition: each follower's durable end and last caught-up time, the
// high watermark, and the ISR changes to ask the controller for.
//
// The ISR used for the high watermark while a change is in flight is the *maximal* one (Kafka's
// KIP-497 rule): a shrink counts the old members until the controller committed it, an expand
// counts the new member at once. So the high watermark never depends on a member the controller
// has not (yet) recorded, and a follower joins only once it durably holds everything below the
// high watermark.
class LeaderReplica {
 public:
  // `history` is the leader's epoch history *after* it stamped `epoch` (the broker appends the
  // epoch entry when it takes leadership). `hw` is the high watermark this node knew (it never
  // moves back; a new leader starts from its own and lets the followers' fetches raise it).
  LeaderReplica(NodeId self, LeaderEpoch epoch, std::vector<NodeId> replicas,
                std::vector<NodeId> isr, Offset log_end, Offset durable_end, Offset hw,
                int64_t now_ms, ReplicaConfig config);

  // Handles one partition of a follower's fetch. `leader_epoch_end` is
  // EndOffsetForEpoch(leader history, fetch.last_fetched_epoch, leader log end), computed by
  // the caller. Records the follower's durable end and caught-up time when the fetch is valid
  // and does not diverge; may raise the high watermark.
  FetchDecision OnFetch(const FollowerFetch& fetch, EpochEndOffset leader_epoch_end,
                        Offset log_start, int64_t now_ms);

  // The leader's own log: appended up to `log_end` / durable up to `durable_end`.
  void OnLocalAppend(Offset log_end);
  void OnLocalDurable(Offset durable_end);

  Offset high_watermark() const { return hw_; }
  LeaderEpoch epoch() const { return epoch_; }
  const std::vector<NodeId>& isr() const { return isr_; }          // as the controller has it
  std::vector<NodeId> maximal_isr() const;                          // what the HW counts
  bool isr_change_in_flight() const { return pending_isr_.has_value(); }

  // The ISR to ask the controller for now, if it should change: followers not caught up for
  // replica_lag_time_max_ms leave; followers whose durable end reached the high watermark (and
  // this epoch's start offset) join, unless `fenced` names them (the metadata has their broker
  // fenced or shut down: the controller would refuse them, and while the request is in flight
  // the maximal ISR would hold the high watermark back for a broker that is gone; Kafka's
  // KIP-841). Nothing while a change is in flight. The caller sends it (with the partition's
  // leader epoch) and reports the outcome below.
  std::optional<std::vector<NodeId>> WantedIsr(int64_t now_ms, const std::set<NodeId>& fenced = {});
  void OnIsrChangeSent(std::vector<NodeId> isr);
  // The controller committed `isr` (or metadata shows it): it becomes the ISR. A follower that
  // left it must fetch again before it can rejoin.
  void OnIsrCommitted(std::vector<NodeId> isr);
  // The change was refused or lost; the next WantedIsr recomputes it.
  void OnIsrChangeFailed();

  // acks=all is admitted only while the ISR (as the controller has it) has at least
  // min_insync_replicas members.
  bool CanAcceptAcksAll() const;

  // For /metrics and describe: followers' lag behind the leader's log end, in offsets.
  struct FollowerView {
    NodeId id{-1};
    Offset durable_end{-1};
    int64_t last_caught_up_ms = -1;
    bool in_isr = false;
  };
  std::vector<FollowerView> followers() const;

 private:
  struct Follower {
    NodeId id{-1};
    Offset durable_end{-1};
    int64_t last_caught_up_ms = 0;
    int64_t last_fetch_ms = 0;
    Offset leader_end_at_last_fetch{-1};
  };
  Follower* Find(NodeId id);
  void MaybeAdvanceHighWatermark();

  NodeId self_;
  LeaderEpoch epoch_;
  Offset epoch_start_;  // the leader's log end when it took this epoch
  std::vector<NodeId> replicas_;
  std::vector<NodeId> isr_;
  std::optional<std::vector<NodeId>> pending_isr_;
  Offset log_end_;
  Offset durable_end_;
  Offset hw_;
  ReplicaConfig config_;
  std::vector<Follower> followers_;
};

// The follower side of one partition: what to fetch next and what to do with an answer.
class FollowerReplica {
 public:
  FollowerReplica(NodeId self, NodeId leader, LeaderEpoch epoch, Offset log_end,
                  LeaderEpoch last_epoch, Offset durable_end, Offset hw);

  NodeId leader() const { return leader_; }
  LeaderEpoch epoch() const { return epoch_; }

  // The next fetch for this partition.
  FollowerFetch NextFetch() const;

  // The local log changed: appended up to `log_end` with last batch epoch `last_epoch`, or
  // became durable up to `durable_end`.
  void OnLocalAppend(Offset log_end, LeaderEpoch last_epoch);
  void OnLocalDurable(Offset durable_end);

  // The leader answered kDiverging: the offset to truncate the local log to, which is
  // min(leader's end for the epoch, local end for that epoch) -- `local_epoch_end` is
  // EndOffsetForEpoch(local history, diverging.epoch, local log end). The caller truncates,
  // then reports the new end with OnTruncated.
  Offset TruncationOffset(EpochEndOffset diverging, EpochEndOffset local_epoch_end) const;
  // The leader answered kOutOfRange with its log start: below it, the follower truncates all
  // and restarts at the leader's start; otherwise it truncates to the leader's end.
  Offset OutOfRangeOffset(Offset leader_log_start, Offset leader_log_end) const;
  void OnTruncated(Offset log_end, LeaderEpoch last_epoch, Offset durable_end);

  // The leader's high watermark arrived: the follower's is min(leader's, local log end) and
  // never moves back.
  void OnLeaderHighWatermark(Offset leader_hw);
  Offset high_watermark() const { return hw_; }

 private:
  NodeId self_;
  NodeId leader_;
  LeaderEpoch epoch_;
  Offset log_end_;
  LeaderEpoch last_epoch_;
  Offset durable_end_;
  Offset hw_;
};

}  // namespace rill::replication
