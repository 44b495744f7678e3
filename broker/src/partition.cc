#include "partition.h"

#include <charconv>

namespace rill::broker {

namespace {
int32_t ParseInt(const TopicConfigMap& config, const std::string& key, int32_t def) {
  auto it = config.find(key);
  if (it == config.end()) return def;
  int32_t v = def;
  const auto& s = it->second;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() ? v : def;
}
}  // namespace

PartitionLimits LimitsFromConfig(const TopicConfigMap& config) {
  PartitionLimits l;
  l.max_message_bytes = ParseInt(config, "max.message.bytes", l.max_message_bytes);
  l.min_insync_replicas = ParseInt(config, "min.insync.replicas", l.min_insync_replicas);
  auto it = config.find("message.timestamp.type");
  l.log_append_time = it != config.end() && it->second == "LogAppendTime";
  return l;
}

Partition::Partition(std::string topic, int32_t partition, std::shared_ptr<PartitionLog> log)
    : topic_(std::move(topic)), partition_(partition), log_(std::move(log)) {}

void Partition::SetLeadership(PartitionRole role, LeaderEpoch epoch, int32_t isr_size) {
  std::lock_guard lock(append_mu_);  // no append straddles an epoch change
  role_.store(role, std::memory_order_release);
  leader_epoch_.store(epoch.value(), std::memory_order_release);
  isr_size_.store(isr_size, std::memory_order_release);
}

PartitionLimits Partition::limits() const {
  std::lock_guard lock(limits_mu_);
  return limits_;
}

void Partition::set_limits(PartitionLimits limits) {
  std::lock_guard lock(limits_mu_);
  limits_ = limits;
}

Result<AppendInfo> Partition::Append(std::span<char> batches) {
  Result<AppendInfo> r = Status::Unavailable("not appended");
  {
    std::lock_guard lock(append_mu_);
    if (role() != PartitionRole::kLeader) {
      return Status::Unavailable("not the leader of " + topic_ + "-" + std::to_string(partition_));
    }
    r = log_->Append(batches, leader_epoch());
  }
  if (r.ok()) {
    bytes_in_.fetch_add(batches.size(), std::memory_order_relaxed);
  }
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
