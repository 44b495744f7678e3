#include "partition/partition.h"

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

Partition::Partition(std::string topic, int32_t partition, std::shared_ptr<PartitionLog> log)
    : topic_(std::move(topic)),
      partition_(partition),
      log_(std::move(log)),
      high_watermark_(log_->durable_end_offset().value()) {}

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
  std::lock_guard append(append_mu_);  // no append straddles an epoch change
  std::lock_guard lock(state_mu_);
  state_ = std::move(state);
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

Result<AppendInfo> Partition::Append(std::span<char> batches, int acks,
                                     std::function<void(Status)> acked) {
  Result<AppendInfo> r = Status::Unavailable("not appended");
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
    r = log_->Append(batches, epoch);
  }
  if (!r.ok()) return r;
  bytes_in_.fetch_add(batches.size(), std::memory_order_relaxed);
  const Offset end = r->last_offset + 1;
  log_->OnDurable(end, [self = shared_from_this(), end, acks, acked = std::move(acked)](Status s) {
    if (s.ok()) self->AdvanceHighWatermark(end);
    self->NotifyWaiters();
    if (acks != 0 && acked) acked(s);
  });
  return r;
}

void Partition::AddWaiter(std::weak_ptr<HighWatermarkWaiter> waiter) {
  std::lock_guard lock(waiters_mu_);
  if (waiters_.size() >= 64) {
    std::erase_if(waiters_, [](const auto& w) { return w.expired(); });
  }
  for (const auto& w : waiters_) {
    if (!w.owner_before(waiter) && !waiter.owner_before(w)) return;  // already registered
  }
  waiters_.push_back(std::move(waiter));
}

void Partition::NotifyWaiters() {
  std::vector<std::weak_ptr<HighWatermarkWaiter>> woken;
  {
    std::lock_guard lock(waiters_mu_);
    if (waiters_.empty()) return;
    woken.swap(waiters_);
  }
  for (auto& w : woken) {
    if (auto s = w.lock()) s->OnHighWatermark();
  }
}

}  // namespace rill::broker
