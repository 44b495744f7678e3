#include "partition/partition_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <utility>

#include "metadata/image_delta.h"
#include "rill/proto/thread_name.h"

namespace rill::broker {

PartitionManager::PartitionManager(NodeId self, LogStore* store, TopicConfigMap topic_defaults)
    : self_(self), store_(store), topic_defaults_(std::move(topic_defaults)) {}

PartitionManager::~PartitionManager() { Stop(); }

TopicConfigMap PartitionManager::EffectiveConfig(const TopicMetadata& topic) const {
  TopicConfigMap c = topic_defaults_;
  for (const auto& [k, v] : topic.configs) c[k] = v;
  // min.insync.replicas set nowhere: a majority of the replicas from three on (as Redpanda's Raft
  // gives), so acks=all survives the loss of any one broker; 1 below that.
  if (c.count("min.insync.replicas") == 0 && !topic.partitions.empty()) {
    const size_t rf = topic.partitions[0].replicas.size();
    c["min.insync.replicas"] = std::to_string(rf >= 3 ? rf / 2 + 1 : 1);
  }
  return c;
}

void PartitionManager::Start() {
  thread_ = std::thread([this] {
    SetCurrentThreadName("rill-replicas");
    Run();
  });
}

void PartitionManager::Stop() {
  std::multimap<uint64_t, std::function<void(bool)>> waiters;
  {
    std::lock_guard lock(queue_mu_);
    stopping_ = true;
    waiters.swap(waiters_);
  }
  queue_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& [index, done] : waiters) done(false);
}

void PartitionManager::Enqueue(std::shared_ptr<const MetadataImage> image,
                               const ImageChanges& changes) {
  if (!image) return;
  {
    std::lock_guard lock(queue_mu_);
    if (stopping_) return;
    pending_ = std::move(image);
    pending_changes_.Merge(changes);
  }
  queue_cv_.notify_all();
}

void PartitionManager::Run() {
  while (true) {
    std::shared_ptr<const MetadataImage> image;
    ImageChanges changes;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [this] { return stopping_ || pending_ != nullptr; });
      if (stopping_) return;
      image = std::move(pending_);
      pending_ = nullptr;
      changes = std::exchange(pending_changes_, ImageChanges{});
    }
    ApplyImage(image, changes);
  }
}

void PartitionManager::WhenApplied(uint64_t index, std::function<void(bool)> done) {
  {
    std::lock_guard lock(queue_mu_);
    if (!stopping_ && !(applied_any_ && applied_index_ >= index)) {
      waiters_.emplace(index, std::move(done));
      return;
    }
  }
  done(!stopping_);
}

bool PartitionManager::SelfCurrent(const MetadataImage& image) const {
  if (incarnation_.empty()) return true;
  auto it = image.brokers.find(self_);
  return it != image.brokers.end() && it->second.incarnation_id == incarnation_;
}

void PartitionManager::SetLeadership(Partition& part, const PartitionAssignment& a, NodeId self,
                                     bool current) {
  ReplicaState s;
  s.self = self;
  s.role = a.leader == self && current ? PartitionRole::kLeader : PartitionRole::kFollower;
  s.leader = a.leader;
  s.leader_epoch = a.leader_epoch;
  s.replicas = a.replicas;
  s.isr = a.isr;
  s.partition_epoch = a.partition_epoch;
  part.SetReplicaState(std::move(s));
}

bool PartitionManager::OpenPartition(const TopicMetadata& t, const PartitionAssignment& a,
                                     bool current) {
  const TopicConfigMap config = EffectiveConfig(t);
  auto limits = LimitsFromConfig(config);
  if (!limits.ok()) {
    spdlog::error("opening log {}-{}: config: {}", t.name, a.partition, limits.status().ToString());
    return false;
  }
  auto log = store_->Open(t.name, t.topic_id, a.partition, config);
  if (!log.ok()) {
    spdlog::error("opening log {}-{}: {}", t.name, a.partition, log.status().ToString());
    return false;
  }
  auto part = std::make_shared<Partition>(t.name, a.partition, std::move(log).value(),
                                          /*replicated=*/true);
  part->set_limits(*limits);
  part->set_replication_settings(replication_);
  part->set_on_isr_change(on_isr_change_);
  SetLeadership(*part, a, self_, current);
  spdlog::info("opened {}-{}: log start {}, end {}, {}", t.name, a.partition,
               part->log().log_start_offset().value(), part->log().log_end_offset().value(),
               a.leader == self_ ? "leader" : "follower");
  std::unique_lock lock(mu_);
  LocalTopic& local = topics_[t.name];
  if (local.topic_id != t.topic_id) local = LocalTopic{t.topic_id, config, {}};
  local.config = config;
  if (local.partitions.size() <= static_cast<size_t>(a.partition)) {
    local.partitions.resize(a.partition + 1);
  }
  local.partitions[a.partition] = std::move(part);
  return true;
}

void PartitionManager::ClosePartition(const std::string& topic, const std::string& topic_id,
                                      int32_t partition) {
  std::shared_ptr<Partition> part;
  {
    std::unique_lock lock(mu_);
    auto it = topics_.find(topic);
    if (it != topics_.end() && it->second.topic_id == topic_id &&
        static_cast<size_t>(partition) < it->second.partitions.size()) {
      part = std::move(it->second.partitions[partition]);
      auto& parts = it->second.partitions;
      if (std::none_of(parts.begin(), parts.end(), [](const auto& p) { return p != nullptr; })) {
        topics_.erase(it);
      }
    }
  }
  if (part) {
    // Requests holding it see a closed log (STORAGE_ERROR); long polls on it end now.
    ReplicaState gone = part->replica_state();
    gone.role = PartitionRole::kFollower;
    gone.isr.clear();
    part->SetReplicaState(std::move(gone));
    part->NotifyWaiters();
  }
  Status s = store_->Remove(topic, partition);
  if (!s.ok()) {
    spdlog::error("removing log {}-{}: {}", topic, partition, s.ToString());
  } else {
    spdlog::info("removed log {}-{}: no longer a replica here", topic, partition);
  }
}

void PartitionManager::ApplyImage(const std::shared_ptr<const MetadataImage>& image,
                                  const ImageChanges& changes) {
  if (!image) return;
  std::lock_guard apply_lock(apply_mu_);
  const std::shared_ptr<const MetadataImage> prev = this->image();
  const bool current = SelfCurrent(*image);
  // This incarnation was just registered: every partition it leads changed role (the
  // controller bumped their epochs too, but compare them all rather than rely on it).
  const bool became_current = current && (prev == nullptr || !SelfCurrent(*prev));
  const LocalDelta delta =
      DiffForNode(prev.get(), *image, self_, became_current ? ImageChanges::All() : changes);
  std::set<std::pair<std::string, int32_t>> tried;  // opened (or failed to) by this image

  for (const LocalPartitionChange& c : delta.partitions) {
    const TopicMetadata* t = image->FindTopic(c.topic);
    switch (c.kind) {
      case LocalPartitionChange::Kind::kRemoved:
        failed_opens_.erase({c.topic, c.assignment.partition});
        ClosePartition(c.topic, c.topic_id, c.assignment.partition);
        break;
      case LocalPartitionChange::Kind::kAdded:
      case LocalPartitionChange::Kind::kChanged: {
        if (std::shared_ptr<Partition> part = Get(c.topic, c.assignment.partition)) {
          SetLeadership(*part, c.assignment, self_, current);
        } else if (OpenPartition(*t, c.assignment, current)) {
          failed_opens_.erase({c.topic, c.assignment.partition});
        } else {
          failed_opens_.insert({c.topic, c.assignment.partition});
        }
        tried.insert({c.topic, c.assignment.partition});
        break;
      }
    }
  }
  // Logs that would not open before are tried again with the assignment of this image.
  for (auto it = failed_opens_.begin(); it != failed_opens_.end();) {
    if (tried.count(*it) > 0) {
      ++it;
      continue;
    }
    const TopicMetadata* t = image->FindTopic(it->first);
    const PartitionAssignment* a = nullptr;
    if (t != nullptr && static_cast<size_t>(it->second) < t->partitions.size()) {
      a = &t->partitions[it->second];
      if (std::find(a->replicas.begin(), a->replicas.end(), self_) == a->replicas.end())
        a = nullptr;
    }
    if (a == nullptr || Get(it->first, it->second) != nullptr || OpenPartition(*t, *a, current)) {
      it = failed_opens_.erase(it);
    } else {
      ++it;
    }
  }
  for (const TopicConfigChange& c : delta.configs) {
    const TopicMetadata* t = image->FindTopic(c.topic);
    const TopicConfigMap config = EffectiveConfig(*t);
    const auto limits = LimitsFromConfig(config);
    if (!limits.ok()) {
      // The controller validated the overrides; the broker its defaults. Keep what is applied.
      spdlog::error("altering config of {}: {}", c.topic, limits.status().ToString());
      continue;
    }
    std::vector<std::shared_ptr<Partition>> open;
    {
      std::unique_lock lock(mu_);
      auto it = topics_.find(c.topic);
      if (it == topics_.end()) continue;
      it->second.config = config;
      open = it->second.partitions;
    }
    for (auto& part : open) {
      if (!part) continue;
      Status s = part->log().ApplyConfig(config);
      if (!s.ok()) {
        spdlog::error("altering config of {}-{}: {}", c.topic, part->partition(), s.ToString());
      }
      part->set_limits(*limits);
    }
  }

  {
    std::unique_lock lock(mu_);
    image_ = image;
  }
  ready_.store(failed_opens_.empty(), std::memory_order_release);

  std::vector<std::function<void(bool)>> done;
  {
    std::lock_guard lock(queue_mu_);
    applied_any_ = true;
    applied_index_ = std::max(applied_index_, image->applied_index);
    auto end = waiters_.upper_bound(applied_index_);
    for (auto it = waiters_.begin(); it != end; ++it) done.push_back(std::move(it->second));
    waiters_.erase(waiters_.begin(), end);
  }
  for (auto& d : done) d(true);
  if (on_applied_) on_applied_();
}

Result<std::vector<std::string>> PartitionManager::RemoveStrayLogs(
    uint64_t min_applied_index, const std::set<std::string>& reserved) {
  std::lock_guard apply_lock(apply_mu_);
  std::shared_ptr<const MetadataImage> img = image();
  if (!img || img->applied_index < min_applied_index) {
    return Status::Unavailable("the metadata image is not current yet");
  }
  std::set<std::string> keep = reserved;
  for (const auto& [name, t] : img->topics) {
    for (const auto& pa : t.partitions) {
      if (std::find(pa.replicas.begin(), pa.replicas.end(), self_) != pa.replicas.end()) {
        keep.insert(name + "-" + std::to_string(pa.partition));
      }
    }
  }
  return store_->RemoveStrayLogs(keep);
}

std::shared_ptr<Partition> PartitionManager::Get(const std::string& topic,
                                                 int32_t partition) const {
  std::shared_lock lock(mu_);
  auto it = topics_.find(topic);
  if (it == topics_.end() || partition < 0 ||
      static_cast<size_t>(partition) >= it->second.partitions.size()) {
    return nullptr;
  }
  return it->second.partitions[partition];
}

std::vector<std::shared_ptr<Partition>> PartitionManager::All() const {
  std::vector<std::shared_ptr<Partition>> out;
  std::shared_lock lock(mu_);
  for (const auto& [name, t] : topics_) {
    for (const auto& p : t.partitions) {
      if (p) out.push_back(p);
    }
  }
  return out;
}

std::shared_ptr<const MetadataImage> PartitionManager::image() const {
  std::shared_lock lock(mu_);
  return image_;
}

}  // namespace rill::broker
