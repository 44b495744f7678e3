#include "partition/partition.h"

#include <algorithm>
#include <chrono>

#include "controller/topic_config.h"

namespace rill::broker {

Result<PartitionLimits> LimitsFromConfig(const TopicConfigMap& config) {
  RILL_ASSIGN_OR_RETURN(TopicConfig tc, ParseTopicConfig(config));
  PartitionLimits l;
  l.max_message_bytes = tc.max_message_bytes;
  l.min_insync_replicas = tc.min_insync_replicas;
  l.log_append_time = tc.timestamp_type == TopicTimestampType::kLogAppendTime;
  return l;
}

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A node id for the state machines: a single-node test gives none, so the leader is itself.
NodeId SelfOf(const ReplicaState& s) {
  if (s.self.value() >= 0) return s.self;
  if (s.leader.value() >= 0) return s.leader;
  return NodeId(0);
}

}  // namespace

Partition::Partition(std::string topic, int32_t partition, std::shared_ptr<PartitionLog> log,
                     bool replicated)
    : topic_(std::move(topic)),
      partition_(partition),
      log_(std::move(log)),
      high_watermark_(replicated ? log_->log_start_offset().value()
                                 : log_->durable_end_offset().value()) {
  // Single-node tests: the partition leads alone until told otherwise.
  if (!replicated) leader_ = NewLeaderLocked(state_);
}

std::unique_ptr<replication::LeaderReplica> Partition::NewLeaderLocked(const ReplicaState& s) {
  const NodeId self = SelfOf(s);
  std::vector<NodeId> replicas = s.replicas;
  std::vector<NodeId> isr = s.isr;
  if (std::find(replicas.begin(), replicas.end(), self) == replicas.end()) replicas.push_back(self);
  if (std::find(isr.begin(), isr.end(), self) == isr.end()) isr.push_back(self);
  replication::ReplicaConfig config;
  config.replica_lag_time_max_ms = settings_.replica_lag_time_max_ms;
  {
    std::lock_guard lock(limits_mu_);
    config.min_insync_replicas = limits_.min_insync_replicas;
  }
  const Offset end = log_->log_end_offset();
  leader_log_end_ = end;
  isr_request_.reset();
  const Offset durable = std::min(end, log_->durable_end_offset());
  auto leader = std::make_unique<replication::LeaderReplica>(
      self, s.leader_epoch, std::move(replicas), std::move(isr), end, durable,
      std::min(end, high_watermark()), NowMs(), config);
  // Computes the high watermark from what is known now (alone in its ISR: the durable end).
  leader->OnLocalDurable(durable);
  return leader;
}

ReplicaState Partition::replica_state() const {
  std::lock_guard lock(state_mu_);
  return state_;
}

PartitionRole Partition::role() const {
  std::lock_guard lock(state_mu_);
  return state_.role;
}

LeaderEpoch Partition::leader_epoch() const {
  std::lock_guard lock(state_mu_);
  return state_.leader_epoch;
}

int32_t Partition::isr_size() const {
  std::lock_guard lock(state_mu_);
  return static_cast<int32_t>(state_.isr.size());
}

void Partition::SetReplicaState(ReplicaState state) {
  Acks failed;
  Acks ready;
  bool shrunk = false;
  bool expanded = false;
  {
    std::lock_guard append(append_mu_);  // no append straddles an epoch change
    std::lock_guard lock(state_mu_);
    std::lock_guard repl(repl_mu_);
    const bool same_epoch = state_.role == state.role && state_.leader == state.leader &&
                            state_.leader_epoch == state.leader_epoch;
    if (state.role == PartitionRole::kLeader && state_.role == PartitionRole::kLeader &&
        state_.leader == state.leader && !state_.isr.empty()) {
      auto missing = [](const std::vector<NodeId>& from, const std::vector<NodeId>& in) {
        for (NodeId n : from) {
          if (std::find(in.begin(), in.end(), n) == in.end()) return true;
        }
        return false;
      };
      shrunk = missing(state_.isr, state.isr);
      expanded = missing(state.isr, state_.isr);
    }
    if (state.role == PartitionRole::kLeader) {
      follower_.reset();
      if (leader_ && same_epoch && state_.replicas == state.replicas) {
        std::vector<NodeId> isr = state.isr;
        const NodeId self = SelfOf(state);
        if (std::find(isr.begin(), isr.end(), self) == isr.end()) isr.push_back(self);
        leader_->OnIsrCommitted(std::move(isr));
        isr_request_.reset();
      } else {
        // Writes still waiting keep waiting: they are in this log, and the new leader state
        // counts its followers from scratch.
        leader_ = NewLeaderLocked(state);
      }
      PublishLeaderHighWatermarkLocked(&ready);
    } else {
      leader_.reset();
      for (auto& [end, acked] : pending_acks_) failed.push_back(std::move(acked));
      pending_acks_.clear();
      if (!follower_ || !same_epoch) {
        auto history = log_->epoch_history();
        const Offset end = log_->log_end_offset();
        follower_ = std::make_unique<replication::FollowerReplica>(
            SelfOf(state), state.leader, state.leader_epoch, end,
            replication::LastEpochBefore(history, end), log_->durable_end_offset(),
            high_watermark());
      }
    }
    state_ = std::move(state);
  }
  for (auto& f : failed) {
    f(Status::Unavailable("leadership of " + topic_ + "-" + std::to_string(partition_) +
                          " moved before the write was replicated"));
  }
  for (auto& f : ready) f(Status::OK());
  NotifyWaiters();
  NotifyAppendWaiters();
  if (on_isr_change_) {
    if (shrunk) on_isr_change_(true);
    if (expanded) on_isr_change_(false);
  }
}

void Partition::set_replication_settings(ReplicationSettings s) {
  std::lock_guard lock(repl_mu_);
  settings_ = s;
}

PartitionLimits Partition::limits() const {
  std::lock_guard lock(limits_mu_);
  return limits_;
}

void Partition::set_limits(PartitionLimits limits) {
  std::lock_guard lock(limits_mu_);
  limits_ = limits;
}

void Partition::AdvanceHighWatermark(Offset end) {
  int64_t cur = high_watermark_.load(std::memory_order_relaxed);
  while (cur < end.value() &&
         !high_watermark_.compare_exchange_weak(cur, end.value(), std::memory_order_acq_rel)) {
  }
}

bool Partition::PublishLeaderHighWatermarkLocked(Acks* ready) {
  if (!leader_) return false;
  const Offset hw = leader_->high_watermark();
  const bool moved = hw > high_watermark();
  AdvanceHighWatermark(hw);
  auto end = pending_acks_.upper_bound(hw.value());
  if (pending_acks_.begin() == end) return moved;
  // acks=all needs min.insync.replicas copies: an ISR that shrank below it while the write
  // waited fails it (Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND; the client may retry).
  const bool enough = leader_->CanAcceptAcksAll();
  for (auto it = pending_acks_.begin(); it != end; ++it) {
    if (enough) {
      ready->push_back(std::move(it->second));
    } else {
      auto acked = std::move(it->second);
      ready->push_back([acked = std::move(acked)](Status) {
        acked(Status::Unavailable("the ISR shrank below min.insync.replicas before the write "
                                  "was replicated"));
      });
    }
  }
  pending_acks_.erase(pending_acks_.begin(), end);
  return moved;
}

void Partition::FeedLeaderDurableLocked(Offset durable) {
  if (leader_) leader_->OnLocalDurable(std::min(durable, leader_log_end_));
}

// Runs inside the log's durability callbacks: it must not call into the log (Close holds the
// log's lock while it completes them).
void Partition::OnLocalDurable(Offset durable) {
  Acks ready;
  bool moved = false;
  {
    std::lock_guard lock(repl_mu_);
    if (leader_) {
      FeedLeaderDurableLocked(durable);
      moved = PublishLeaderHighWatermarkLocked(&ready);
    }
  }
  for (auto& f : ready) f(Status::OK());
  if (moved) NotifyWaiters();
}

Result<AppendInfo> Partition::Append(std::span<char> batches, int acks,
                                     std::function<void(Status)> acked,
                                     storage::ProducerCheck* refusal) {
  Result<AppendInfo> r = Status::Unavailable("not appended");
  bool duplicate_acked_now = false;
  {
    std::lock_guard lock(append_mu_);
    LeaderEpoch epoch;
    {
      std::lock_guard state(state_mu_);
      if (state_.role != PartitionRole::kLeader) {
        return Status::Unavailable("not the leader of " + topic_ + "-" +
                                   std::to_string(partition_));
      }
      epoch = state_.leader_epoch;
    }
    r = log_->Append(batches, epoch, refusal);
    if (r.ok() && r->duplicate) {
      // A retry of a batch the log holds: nothing was appended, so the leader state machine
      // hears nothing. The retry is acknowledged by the original's offsets under the same rule:
      // at once when the high watermark (acks=-1) is past them, else when it gets there.
      if (acks == -1 && acked) {
        std::lock_guard repl(repl_mu_);
        const Offset end = r->last_offset + 1;
        if (high_watermark() >= end) {
          duplicate_acked_now = true;
        } else {
          pending_acks_.emplace(end.value(), std::move(acked));
          acked = nullptr;
        }
      }
    } else if (r.ok()) {
      std::lock_guard repl(repl_mu_);
      const Offset end = r->last_offset + 1;
      if (leader_ && end < leader_log_end_) {
        // The log lost a tail (a failed write it rolled back): count from what it holds now.
        // state_ is read without state_mu_ (taking it after repl_mu_ would invert the lock
        // order): only SetReplicaState writes it, under append_mu_, which this thread holds.
        leader_ = NewLeaderLocked(state_);
      }
      if (leader_) leader_->OnLocalAppend(end);
      leader_log_end_ = end;
      if (acks == -1 && acked) {
        pending_acks_.emplace(r->last_offset.value() + 1, std::move(acked));
        acked = nullptr;
      }
    }
  }
  if (!r.ok()) return r;
  if (r->duplicate) {
    if (duplicate_acked_now) {
      acked(Status::OK());
    } else if (acks == 1 && acked) {
      log_->OnDurable(r->last_offset + 1, std::move(acked));
    }
    return r;
  }
  bytes_in_.fetch_add(batches.size(), std::memory_order_relaxed);
  NotifyAppendWaiters();
  const Offset end = r->last_offset + 1;
  log_->OnDurable(end, [self = shared_from_this(), end, acks, acked = std::move(acked)](Status s) {
    if (s.ok()) {
      self->OnLocalDurable(end);
    } else if (acks == -1) {
      // The log failed: the write will never be durable here.
      std::function<void(Status)> waiting;
      {
        std::lock_guard lock(self->repl_mu_);
        auto it = self->pending_acks_.find(end.value());
        if (it != self->pending_acks_.end()) {
          waiting = std::move(it->second);
          self->pending_acks_.erase(it);
        }
      }
      if (waiting) waiting(s);
      self->NotifyWaiters();
    } else {
      self->NotifyWaiters();
    }
    if (acks == 1 && acked) acked(s);
  });
  return r;
}

ReplicaFetchAnswer Partition::ServeReplicaFetch(const replication::FollowerFetch& fetch,
                                                size_t max_bytes, int64_t now_ms) {
  using Kind = replication::FetchDecision::Kind;
  ReplicaFetchAnswer out;
  const std::string name = topic_ + "-" + std::to_string(partition_);
  const auto history = log_->epoch_history();
  const Offset log_end = log_->log_end_offset();
  const Offset log_start = log_->log_start_offset();
  replication::FetchDecision d;
  Acks ready;
  bool moved = false;
  {
    std::lock_guard lock(repl_mu_);
    if (!leader_) {
      out.error = ReplicaFetchAnswer::Error::kNotLeader;
      out.message = "this broker does not lead " + name;
      return out;
    }
    FeedLeaderDurableLocked(log_->durable_end_offset());
    d = leader_->OnFetch(fetch,
                         replication::EndOffsetForEpoch(history, fetch.last_fetched_epoch, log_end),
                         log_start, now_ms);
    moved = PublishLeaderHighWatermarkLocked(&ready);
    out.high_watermark = leader_->high_watermark();
  }
  for (auto& f : ready) f(Status::OK());
  if (moved) NotifyWaiters();
  out.log_start = log_start;
  out.log_end = log_end;
  switch (d.kind) {
    case Kind::kRead:
      break;
    case Kind::kDiverging:
      out.error = ReplicaFetchAnswer::Error::kDiverging;
      out.diverging = d.diverging;
      return out;
    case Kind::kFencedEpoch:
      out.error = ReplicaFetchAnswer::Error::kFencedEpoch;
      out.message = "leader epoch " + std::to_string(fetch.current_leader_epoch.value()) +
                    " of " + name + " is older than the leader's";
      return out;
    case Kind::kUnknownEpoch:
      out.error = ReplicaFetchAnswer::Error::kUnknownEpoch;
      out.message = "leader epoch " + std::to_string(fetch.current_leader_epoch.value()) +
                    " of " + name + " is newer than this leader's";
      return out;
    case Kind::kNotReplica:
      out.error = ReplicaFetchAnswer::Error::kNotReplica;
      out.message = "node " + std::to_string(fetch.follower.value()) + " is not a replica of " +
                    name;
      return out;
    case Kind::kOutOfRange:
      out.error = ReplicaFetchAnswer::Error::kOutOfRange;
      out.message = "fetch offset " + std::to_string(fetch.fetch_offset.value()) +
                    " is outside [" + std::to_string(log_start.value()) + ", " +
                    std::to_string(log_end.value()) + "] of " + name;
      return out;
  }
  if (d.read_from >= log_end || max_bytes == 0) return out;
  auto read = log_->Read(d.read_from, max_bytes, Offset::max());
  if (!read.ok()) {
    out.error = read.status().code() == StatusCode::kOutOfRange
                    ? ReplicaFetchAnswer::Error::kOutOfRange
                    : ReplicaFetchAnswer::Error::kStorage;
    out.message = read.status().ToString();
    return out;
  }
  out.records = std::move(read->data);
  return out;
}

std::optional<IsrChangeRequest> Partition::TakeIsrChange(int64_t now_ms,
                                                         const std::set<NodeId>& fenced) {
  constexpr int64_t kResendAfterMs = 1000;
  std::lock_guard lock(state_mu_);
  std::lock_guard repl(repl_mu_);
  if (!leader_ || state_.role != PartitionRole::kLeader) return std::nullopt;
  if (leader_->isr_change_in_flight()) {
    // Resend a change whose outcome is unknown, unchanged: applied already, the controller
    // refuses it as stale and the metadata that commits it is on its way.
    if (isr_request_ && isr_request_resend_ && now_ms - isr_request_sent_ms_ >= kResendAfterMs) {
      isr_request_resend_ = false;
      isr_request_sent_ms_ = now_ms;
      return isr_request_;
    }
    return std::nullopt;
  }
  if (now_ms < isr_refused_until_ms_) return std::nullopt;
  std::optional<std::vector<NodeId>> want = leader_->WantedIsr(now_ms, fenced);
  if (!want) return std::nullopt;
  leader_->OnIsrChangeSent(*want);
  isr_request_ = IsrChangeRequest{state_.leader_epoch, state_.partition_epoch, std::move(*want)};
  isr_request_sent_ms_ = now_ms;
  isr_request_resend_ = false;
  return isr_request_;
}

void Partition::IsrChangeDone(IsrChangeOutcome outcome, const std::vector<NodeId>& isr,
                              int64_t now_ms) {
  Acks ready;
  bool moved = false;
  {
    std::lock_guard state(state_mu_);
    std::lock_guard repl(repl_mu_);
    if (!leader_ || !isr_request_ || isr_request_->new_isr != isr) return;
    switch (outcome) {
      case IsrChangeOutcome::kApplied:
        // The new image (SetReplicaState) commits it, before or after this answer; when the
        // controller found nothing to change no image comes, so commit it here.
        if (state_.isr == isr) {
          leader_->OnIsrCommitted(isr);
          isr_request_.reset();
        }
        break;
      case IsrChangeOutcome::kRefused:
        // E.g. a caught-up follower the controller still has fenced: ask again in a while.
        leader_->OnIsrChangeFailed();
        isr_request_.reset();
        isr_refused_until_ms_ = now_ms + 1000;
        break;
      case IsrChangeOutcome::kStale:
        break;  // the metadata that supersedes it commits or replaces it
      case IsrChangeOutcome::kUnknown:
        isr_request_resend_ = true;
        isr_request_sent_ms_ = now_ms;
        break;
    }
    moved = PublishLeaderHighWatermarkLocked(&ready);
  }
  for (auto& f : ready) f(Status::OK());
  if (moved) NotifyWaiters();
}

std::vector<replication::LeaderReplica::FollowerView> Partition::FollowerViews() const {
  std::lock_guard repl(repl_mu_);
  if (!leader_) return {};
  return leader_->followers();
}

std::optional<replication::FollowerFetch> Partition::NextReplicaFetch() {
  std::lock_guard repl(repl_mu_);
  if (!follower_) return std::nullopt;
  follower_->OnLocalDurable(log_->durable_end_offset());
  return follower_->NextFetch();
}

Status Partition::ApplyReplicaFetch(LeaderEpoch epoch, const ReplicaFetchAnswer& answer) {
  using Error = ReplicaFetchAnswer::Error;
  const std::string name = topic_ + "-" + std::to_string(partition_);
  std::lock_guard append(append_mu_);  // the follower's single writer
  {
    std::lock_guard repl(repl_mu_);
    if (!follower_ || follower_->epoch() != epoch) {
      return Status::Unavailable(name + " is no longer followed at epoch " +
                                 std::to_string(epoch.value()));
    }
  }
  auto local_state = [&] {
    auto history = log_->epoch_history();
    const Offset end = log_->log_end_offset();
    return std::make_pair(end, replication::LastEpochBefore(history, end));
  };
  Offset truncate_to{-1};
  switch (answer.error) {
    case Error::kNone:
      break;
    case Error::kDiverging: {
      auto history = log_->epoch_history();
      std::lock_guard repl(repl_mu_);
      truncate_to = follower_->TruncationOffset(
          answer.diverging, replication::EndOffsetForEpoch(history, answer.diverging.epoch,
                                                           log_->log_end_offset()));
      break;
    }
    case Error::kOutOfRange: {
      std::lock_guard repl(repl_mu_);
      truncate_to = follower_->OutOfRangeOffset(answer.log_start, answer.log_end);
      break;
    }
    default:
      return Status::Unavailable("leader of " + name + " refused the fetch: " + answer.message);
  }
  if (truncate_to.value() >= 0) {
    if (truncate_to < high_watermark()) {
      // Never drop what the high watermark says is committed (a leader that lost data it
      // acknowledged would be a bug elsewhere); refuse loudly instead.
      return Status::Corruption("refusing to truncate " + name + " to " +
                                std::to_string(truncate_to.value()) + " below its high watermark " +
                                std::to_string(high_watermark().value()));
    }
    RILL_RETURN_IF_ERROR(log_->TruncateTo(truncate_to));
    auto [end, last] = local_state();
    std::lock_guard repl(repl_mu_);
    follower_->OnTruncated(end, last, std::min(end, log_->durable_end_offset()));
    return Status::OK();
  }
  if (!answer.records.empty()) {
    RILL_RETURN_IF_ERROR(
        log_->AppendReplicated(std::span<const char>(answer.records.data(), answer.records.size()))
            .status());
    bytes_in_.fetch_add(answer.records.size(), std::memory_order_relaxed);
  }
  auto [end, last] = local_state();
  Offset hw;
  {
    std::lock_guard repl(repl_mu_);
    follower_->OnLocalAppend(end, last);
    follower_->OnLeaderHighWatermark(answer.high_watermark);
    hw = follower_->high_watermark();
  }
  AdvanceHighWatermark(hw);
  return Status::OK();
}

void Partition::AddWaiterTo(std::mutex& mu, std::vector<std::weak_ptr<HighWatermarkWaiter>>& list,
                            std::weak_ptr<HighWatermarkWaiter> waiter) {
  std::lock_guard lock(mu);
  if (list.size() >= 64) {
    std::erase_if(list, [](const auto& w) { return w.expired(); });
  }
  for (const auto& w : list) {
    if (!w.owner_before(waiter) && !waiter.owner_before(w)) return;  // already registered
  }
  list.push_back(std::move(waiter));
}

void Partition::Notify(std::mutex& mu, std::vector<std::weak_ptr<HighWatermarkWaiter>>& list) {
  std::vector<std::weak_ptr<HighWatermarkWaiter>> woken;
  {
    std::lock_guard lock(mu);
    if (list.empty()) return;
    woken.swap(list);
  }
  for (auto& w : woken) {
    if (auto s = w.lock()) s->OnHighWatermark();
  }
}

void Partition::AddWaiter(std::weak_ptr<HighWatermarkWaiter> waiter) {
  AddWaiterTo(waiters_mu_, waiters_, std::move(waiter));
}

void Partition::NotifyWaiters() { Notify(waiters_mu_, waiters_); }

void Partition::AddAppendWaiter(std::weak_ptr<HighWatermarkWaiter> waiter) {
  AddWaiterTo(append_waiters_mu_, append_waiters_, std::move(waiter));
}

void Partition::NotifyAppendWaiters() { Notify(append_waiters_mu_, append_waiters_); }

}  // namespace rill::broker
