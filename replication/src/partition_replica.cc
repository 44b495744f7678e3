#include "rill/replication/partition_replica.h"

#include <algorithm>

#include "rill/proto/assert.h"

namespace rill::replication {

EpochEndOffset EndOffsetForEpoch(std::span<const EpochEntry> history, LeaderEpoch requested,
                                 Offset log_end) {
  if (history.empty() || requested < LeaderEpoch(0)) return {};
  if (requested >= history.back().epoch) return {history.back().epoch, log_end};
  // The first entry whose epoch is greater than `requested` (exists: requested < latest).
  auto higher =
      std::upper_bound(history.begin(), history.end(), requested,
                       [](LeaderEpoch e, const EpochEntry& entry) { return e < entry.epoch; });
  if (higher == history.begin()) return {requested, higher->start_offset};
  return {std::prev(higher)->epoch, higher->start_offset};
}

LeaderEpoch LastEpochBefore(std::span<const EpochEntry> history, Offset log_end) {
  // The last entry that starts below log_end wrote the batch at log_end - 1.
  for (auto it = history.rbegin(); it != history.rend(); ++it) {
    if (it->start_offset < log_end) return it->epoch;
  }
  return LeaderEpoch(-1);
}

// ---------------------------------------------------------------------------------------------
// LeaderReplica

namespace {
bool Contains(const std::vector<NodeId>& v, NodeId id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}
}  // namespace

LeaderReplica::LeaderReplica(NodeId self, LeaderEpoch epoch, std::vector<NodeId> replicas,
                             std::vector<NodeId> isr, Offset log_end, Offset durable_end, Offset hw,
                             int64_t now_ms, ReplicaConfig config)
    : self_(self),
      epoch_(epoch),
      epoch_start_(log_end),
      replicas_(std::move(replicas)),
      isr_(std::move(isr)),
      log_end_(log_end),
      durable_end_(std::min(durable_end, log_end)),
      hw_(std::min(hw, log_end)),
      config_(config) {
  RILL_ASSERT(Contains(replicas_, self_), "leader %d is not a replica", self_.value());
  if (!Contains(isr_, self_)) isr_.push_back(self_);
  for (NodeId id : replicas_) {
    if (id == self_) continue;
    Follower f;
    f.id = id;
    // Kafka's resetLastCaughtUpTime: an ISR member gets a full replica_lag_time_max_ms from the
    // start of this epoch to fetch; the leader's log end "at its previous fetch" is ours now.
    f.last_caught_up_ms = Contains(isr_, id) ? now_ms : -1;
    f.last_fetch_ms = now_ms;
    f.leader_end_at_last_fetch = log_end;
    followers_.push_back(f);
  }
}

LeaderReplica::Follower* LeaderReplica::Find(NodeId id) {
  for (Follower& f : followers_) {
    if (f.id == id) return &f;
  }
  return nullptr;
}

FetchDecision LeaderReplica::OnFetch(const FollowerFetch& fetch, EpochEndOffset leader_epoch_end,
                                     Offset log_start, int64_t now_ms) {
  FetchDecision d;
  Follower* f = Find(fetch.follower);
  if (f == nullptr) {
    d.kind = FetchDecision::Kind::kNotReplica;
    return d;
  }
  if (fetch.current_leader_epoch < epoch_) {
    d.kind = FetchDecision::Kind::kFencedEpoch;
    return d;
  }
  if (fetch.current_leader_epoch > epoch_) {
    d.kind = FetchDecision::Kind::kUnknownEpoch;
    return d;
  }
  // The follower's log is a prefix of ours only if its last epoch ends, here, at or after its
  // log end (Kafka's KIP-595 diverging-epoch check in the fetch path).
  if (fetch.last_fetched_epoch >= LeaderEpoch(0) &&
      (leader_epoch_end.epoch < fetch.last_fetched_epoch ||
       leader_epoch_end.end_offset < fetch.fetch_offset)) {
    d.kind = FetchDecision::Kind::kDiverging;
    d.diverging = leader_epoch_end;
    return d;
  }
  if (fetch.fetch_offset < log_start || fetch.fetch_offset > log_end_) {
    d.kind = FetchDecision::Kind::kOutOfRange;
    return d;
  }
  d.kind = FetchDecision::Kind::kRead;
  d.read_from = fetch.fetch_offset;

  // Only what the follower durably holds *and* has shown to match our log counts.
  Offset durable = std::min(fetch.durable_end, fetch.fetch_offset);
  f->durable_end = durable;
  // Kafka's Replica.updateFetchState, on the durable end.
  if (durable >= log_end_) {
    f->last_caught_up_ms = std::max(f->last_caught_up_ms, now_ms);
  } else if (durable >= f->leader_end_at_last_fetch) {
    f->last_caught_up_ms = std::max(f->last_caught_up_ms, f->last_fetch_ms);
  }
  f->last_fetch_ms = now_ms;
  f->leader_end_at_last_fetch = log_end_;
  MaybeAdvanceHighWatermark();
  return d;
}

void LeaderReplica::OnLocalAppend(Offset log_end) {
  RILL_ASSERT(log_end >= log_end_, "leader log end moved back from %ld to %ld",
              (long)log_end_.value(), (long)log_end.value());
  log_end_ = log_end;
}

void LeaderReplica::OnLocalDurable(Offset durable_end) {
  RILL_ASSERT(durable_end <= log_end_, "durable end %ld beyond log end %ld",
              (long)durable_end.value(), (long)log_end_.value());
  if (durable_end > durable_end_) durable_end_ = durable_end;
  MaybeAdvanceHighWatermark();
}

std::vector<NodeId> LeaderReplica::maximal_isr() const {
  std::vector<NodeId> m = isr_;
  if (pending_isr_) {
    for (NodeId id : *pending_isr_) {
      if (!Contains(m, id)) m.push_back(id);
    }
  }
  return m;
}

void LeaderReplica::MaybeAdvanceHighWatermark() {
  Offset low = durable_end_;
  for (NodeId id : maximal_isr()) {
    if (id == self_) continue;
    const Follower* f = Find(id);
    // A member the leader has no state for (not a replica) holds nothing we know of.
    Offset end = f ? f->durable_end : Offset(-1);
    low = std::min(low, end);
  }
  if (low > hw_) hw_ = low;
  RILL_ASSERT(hw_ <= log_end_, "high watermark %ld beyond log end %ld", (long)hw_.value(),
              (long)log_end_.value());
}

std::optional<std::vector<NodeId>> LeaderReplica::WantedIsr(int64_t now_ms,
                                                            const std::set<NodeId>& fenced) {
  if (pending_isr_) return std::nullopt;
  // Shrink first: followers that have not caught up for replica_lag_time_max_ms leave.
  std::vector<NodeId> shrunk;
  for (NodeId id : isr_) {
    if (id == self_) {
      shrunk.push_back(id);
      continue;
    }
    const Follower* f = Find(id);
    if (f && now_ms - f->last_caught_up_ms > config_.replica_lag_time_max_ms) continue;
    shrunk.push_back(id);
  }
  if (shrunk.size() != isr_.size()) return shrunk;
  // Expand: a follower that durably holds everything below the high watermark and everything
  // of earlier epochs (this epoch's start offset: whatever a previous leader committed) joins.
  std::vector<NodeId> expanded = isr_;
  for (Follower& f : followers_) {
    if (Contains(isr_, f.id) || fenced.count(f.id) > 0) continue;
    // Only a follower that is fetching: one that stopped (SIGSTOP, a partition) after its last
    // fetch may hold everything below an idle high watermark, yet adding it back would stall
    // the high watermark and flap the ISR (shrink, expand, shrink...) every lag interval.
    const bool fetching = now_ms - f.last_fetch_ms < config_.replica_lag_time_max_ms;
    if (fetching && f.durable_end >= hw_ && f.durable_end >= epoch_start_) {
      expanded.push_back(f.id);
      // It has caught up to the high watermark now; it gets a full lag interval from here, so
      // a joiner is not shrunk again at once for having been behind the log end.
      f.last_caught_up_ms = std::max(f.last_caught_up_ms, now_ms);
    }
  }
  if (expanded.size() != isr_.size()) return expanded;
  return std::nullopt;
}

void LeaderReplica::OnIsrChangeSent(std::vector<NodeId> isr) {
  RILL_ASSERT(!pending_isr_, "ISR change sent while another is in flight");
  RILL_ASSERT(Contains(isr, self_), "ISR change without the leader %d", self_.value());
  pending_isr_ = std::move(isr);
  MaybeAdvanceHighWatermark();
}

void LeaderReplica::OnIsrCommitted(std::vector<NodeId> isr) {
  // A follower that left the ISR is known again only from its next fetch: what it reported
  // before may be gone (the controller removes a restarted broker, whose disk may have been
  // lost), so the leader never adds it back on the strength of an old fetch (Kafka's KIP-903).
  for (Follower& f : followers_) {
    if (Contains(isr_, f.id) && !Contains(isr, f.id)) f.durable_end = Offset(-1);
  }
  isr_ = std::move(isr);
  pending_isr_.reset();
  MaybeAdvanceHighWatermark();
}

void LeaderReplica::OnIsrChangeFailed() { pending_isr_.reset(); }

bool LeaderReplica::CanAcceptAcksAll() const {
  return static_cast<int64_t>(isr_.size()) >= config_.min_insync_replicas;
}

std::vector<LeaderReplica::FollowerView> LeaderReplica::followers() const {
  std::vector<FollowerView> v;
  v.reserve(followers_.size());
  for (const Follower& f : followers_) {
    v.push_back({f.id, f.durable_end, f.last_caught_up_ms, Contains(isr_, f.id)});
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// FollowerReplica

FollowerReplica::FollowerReplica(NodeId self, NodeId leader, LeaderEpoch epoch, Offset log_end,
                                 LeaderEpoch last_epoch, Offset durable_end, Offset hw)
    : self_(self),
      leader_(leader),
      epoch_(epoch),
      log_end_(log_end),
      last_epoch_(last_epoch),
      durable_end_(std::min(durable_end, log_end)),
      hw_(std::min(hw, log_end)) {}

FollowerFetch FollowerReplica::NextFetch() const {
  FollowerFetch f;
  f.follower = self_;
  f.current_leader_epoch = epoch_;
  f.fetch_offset = log_end_;
  f.last_fetched_epoch = last_epoch_;
  f.durable_end = durable_end_;
  return f;
}

void FollowerReplica::OnLocalAppend(Offset log_end, LeaderEpoch last_epoch) {
  log_end_ = log_end;
  last_epoch_ = last_epoch;
}

void FollowerReplica::OnLocalDurable(Offset durable_end) {
  durable_end_ = std::min(std::max(durable_end_, durable_end), log_end_);
}

// The truncation point after a kDiverging answer (Kafka's follower, KIP-279/KIP-595):
//   - the leader knows no epoch <= ours (diverging = {-1, -1}: its log holds nothing we can
//     match): truncate everything, to 0;
//   - we hold no epoch history (local = {-1, -1}): truncate to the leader's end for its epoch;
//   - both know diverging.epoch: it ends at the smaller of the two ends;
//   - our largest epoch <= diverging.epoch is older (we never saw diverging.epoch): keep only up
//     to where that older epoch ends here. This may keep entries the leader lacks; the next
//     fetch carries the older epoch and the leader answers again, so each round trip moves one
//     epoch back and never removes anything the leader has.
// Never beyond the local log end.
Offset FollowerReplica::TruncationOffset(EpochEndOffset diverging,
                                         EpochEndOffset local_epoch_end) const {
  Offset to;
  if (diverging.epoch < LeaderEpoch(0) || diverging.end_offset < Offset(0)) {
    to = Offset(0);
  } else if (local_epoch_end.epoch < LeaderEpoch(0) || local_epoch_end.end_offset < Offset(0)) {
    to = diverging.end_offset;
  } else if (local_epoch_end.epoch == diverging.epoch) {
    to = std::min(diverging.end_offset, local_epoch_end.end_offset);
  } else if (local_epoch_end.epoch < diverging.epoch) {
    to = local_epoch_end.end_offset;
  } else {
    // Not produced by EndOffsetForEpoch (it never answers a later epoch than asked): be
    // conservative.
    to = std::min(diverging.end_offset, local_epoch_end.end_offset);
  }
  return std::min(to, log_end_);
}

Offset FollowerReplica::OutOfRangeOffset(Offset leader_log_start, Offset leader_log_end) const {
  if (log_end_ < leader_log_start) return leader_log_start;
  return std::min(log_end_, leader_log_end);
}

void FollowerReplica::OnTruncated(Offset log_end, LeaderEpoch last_epoch, Offset durable_end) {
  log_end_ = log_end;
  last_epoch_ = last_epoch;
  durable_end_ = std::min(durable_end, log_end);
  // The high watermark never passes the log end; a truncation below it (which the protocol
  // never asks for) is the caller's to detect.
  hw_ = std::min(hw_, log_end);
}

void FollowerReplica::OnLeaderHighWatermark(Offset leader_hw) {
  Offset hw = std::min(leader_hw, log_end_);
  if (hw > hw_) hw_ = hw;
}

}  // namespace rill::replication
