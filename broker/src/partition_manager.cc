#include "partition_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>

namespace rill::broker {

PartitionManager::PartitionManager(NodeId self, LogStore* store, TopicConfigMap topic_defaults)
    : self_(self), store_(store), topic_defaults_(std::move(topic_defaults)) {}

TopicConfigMap PartitionManager::EffectiveConfig(const TopicMetadata& topic) const {
  TopicConfigMap c = topic_defaults_;
  for (const auto& [k, v] : topic.configs) c[k] = v;
  return c;
}

void PartitionManager::ApplyImage(const std::shared_ptr<const MetadataImage>& image) {
  if (!image) return;
  std::lock_guard apply_lock(apply_mu_);
  bool all_open = true;

  // Topics gone (or re-created under a new id): drop them from the map first, then remove logs
  // outside the lock.
  std::vector<std::pair<std::string, int32_t>> to_remove;
  {
    std::unique_lock lock(mu_);
    for (auto it = topics_.begin(); it != topics_.end();) {
      const TopicMetadata* t = image->FindTopic(it->first);
      if (t == nullptr || t->topic_id != it->second.topic_id) {
        for (size_t p = 0; p < it->second.partitions.size(); ++p) {
          if (it->second.partitions[p]) to_remove.emplace_back(it->first, static_cast<int32_t>(p));
        }
        it = topics_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& [topic, p] : to_remove) {
    Status s = store_->Remove(topic, p);
    if (!s.ok()) {
      spdlog::error("removing log {}-{}: {}", topic, p, s.ToString());
    } else {
      spdlog::info("removed log {}-{} (topic deleted)", topic, p);
    }
  }

  for (const auto& [name, t] : image->topics) {
    TopicConfigMap config = EffectiveConfig(t);
    PartitionLimits limits = LimitsFromConfig(config);
    LocalTopic* local = nullptr;
    {
      std::unique_lock lock(mu_);
      auto [it, inserted] = topics_.try_emplace(name);
      local = &it->second;
      if (inserted) {
        local->topic_id = t.topic_id;
        local->config = config;
      }
    }
    // Config changes apply to open logs.
    if (local->config != config) {
      std::vector<std::shared_ptr<Partition>> open;
      {
        std::shared_lock lock(mu_);
        open = local->partitions;
      }
      for (auto& part : open) {
        if (!part) continue;
        Status s = part->log().ApplyConfig(config);
        if (!s.ok()) spdlog::error("altering config of {}-{}: {}", name, part->partition(), s.ToString());
        part->set_limits(limits);
      }
      std::unique_lock lock(mu_);
      local->config = config;
    }
    for (const auto& pa : t.partitions) {
      bool hosted = std::find(pa.replicas.begin(), pa.replicas.end(), self_) != pa.replicas.end();
      if (!hosted) continue;
      std::shared_ptr<Partition> part;
      {
        std::shared_lock lock(mu_);
        if (static_cast<size_t>(pa.partition) < local->partitions.size()) {
          part = local->partitions[pa.partition];
        }
      }
      if (!part) {
        auto log = store_->Open(name, t.topic_id, pa.partition, config);
        if (!log.ok()) {
          spdlog::error("opening log {}-{}: {}", name, pa.partition, log.status().ToString());
          all_open = false;
          continue;
        }
        part = std::make_shared<Partition>(name, pa.partition, std::move(log).value());
        part->set_limits(limits);
        spdlog::info("opened {}-{}: log start {}, end {}", name, pa.partition,
                     part->log().log_start_offset().value(), part->log().log_end_offset().value());
        std::unique_lock lock(mu_);
        if (local->partitions.size() <= static_cast<size_t>(pa.partition)) {
          local->partitions.resize(pa.partition + 1);
        }
        local->partitions[pa.partition] = part;
      }
      PartitionRole role = pa.leader == self_ ? PartitionRole::kLeader : PartitionRole::kFollower;
      part->SetLeadership(role, pa.leader_epoch, static_cast<int32_t>(pa.isr.size()));
    }
  }

  {
    std::unique_lock lock(mu_);
    image_ = image;
  }
  ready_.store(all_open, std::memory_order_release);
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
