#include "metadata/image_delta.h"

#include <algorithm>
#include <set>

namespace rill::broker {

namespace {

bool Hosts(const PartitionAssignment& a, NodeId self) {
  return std::find(a.replicas.begin(), a.replicas.end(), self) != a.replicas.end();
}

bool SameAssignment(const PartitionAssignment& a, const PartitionAssignment& b) {
  return a.leader == b.leader && a.leader_epoch == b.leader_epoch && a.replicas == b.replicas &&
         a.isr == b.isr && a.partition_epoch == b.partition_epoch;
}

// The partitions of `topic` this node hosts, by number.
std::map<int32_t, const PartitionAssignment*> Local(const TopicMetadata& topic, NodeId self) {
  std::map<int32_t, const PartitionAssignment*> out;
  for (const PartitionAssignment& a : topic.partitions) {
    if (Hosts(a, self)) out.emplace(a.partition, &a);
  }
  return out;
}

}  // namespace

LocalDelta DiffForNode(const MetadataImage* prev, const MetadataImage& next, NodeId self,
                       const ImageChanges& changes) {
  LocalDelta delta;
  std::vector<LocalPartitionChange> added_or_changed;
  auto change = [](LocalPartitionChange::Kind kind, const TopicMetadata& t,
                   const PartitionAssignment& a) {
    return LocalPartitionChange{kind, t.name, t.topic_id, a};
  };

  // The topics to compare: those the records touched, or every one on either side.
  std::set<std::string> names;
  if (prev == nullptr || changes.all) {
    if (prev != nullptr) {
      for (const auto& [name, t] : prev->topics) names.insert(name);
    }
    for (const auto& [name, t] : next.topics) names.insert(name);
  } else {
    names = changes.topics;
  }

  for (const std::string& name : names) {
    const TopicMetadata* old_topic = prev != nullptr ? prev->FindTopic(name) : nullptr;
    const TopicMetadata* topic = next.FindTopic(name);
    if (old_topic != nullptr && (topic == nullptr || topic->topic_id != old_topic->topic_id)) {
      // Gone, or now another topic of the same name: every local partition of the old one goes.
      for (const auto& [p, a] : Local(*old_topic, self)) {
        delta.partitions.push_back(change(LocalPartitionChange::Kind::kRemoved, *old_topic, *a));
      }
      old_topic = nullptr;
    }
    if (topic == nullptr) continue;
    const auto now = Local(*topic, self);
    const auto before = old_topic != nullptr ? Local(*old_topic, self)
                                             : std::map<int32_t, const PartitionAssignment*>{};
    for (const auto& [p, a] : before) {
      if (now.count(p) == 0) {
        delta.partitions.push_back(change(LocalPartitionChange::Kind::kRemoved, *old_topic, *a));
      }
    }
    for (const auto& [p, a] : now) {
      auto it = before.find(p);
      if (it == before.end()) {
        added_or_changed.push_back(change(LocalPartitionChange::Kind::kAdded, *topic, *a));
      } else if (!SameAssignment(*it->second, *a)) {
        added_or_changed.push_back(change(LocalPartitionChange::Kind::kChanged, *topic, *a));
      }
    }
    // New partitions open with the new config; the ones kept need it applied.
    bool keeps_some = false;
    for (const auto& [p, a] : now) keeps_some = keeps_some || before.count(p) > 0;
    if (keeps_some && old_topic->configs != topic->configs) {
      delta.configs.push_back({name, topic->configs});
    }
  }
  delta.partitions.insert(delta.partitions.end(), added_or_changed.begin(), added_or_changed.end());
  return delta;
}

}  // namespace rill::broker
