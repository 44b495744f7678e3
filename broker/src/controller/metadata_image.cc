#include "metadata_image.h"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace rill::broker {
namespace {

namespace pb = internal::v1;

std::vector<NodeId> ToNodes(const google::protobuf::RepeatedField<int32_t>& ids) {
  std::vector<NodeId> out;
  out.reserve(ids.size());
  for (int32_t id : ids) out.emplace_back(id);
  return out;
}

void FromNodes(const std::vector<NodeId>& nodes, google::protobuf::RepeatedField<int32_t>* out) {
  out->Clear();
  for (NodeId n : nodes) out->Add(n.value());
}

// The topic named `name` whose id is `topic_id` (any id when `topic_id` is empty).
Result<TopicMetadata*> FindTopic(MetadataImage& image, const std::string& name,
                                 const std::string& topic_id) {
  auto it = image.topics.find(name);
  if (it == image.topics.end()) return Status::NotFound("unknown topic '" + name + "'");
  if (!topic_id.empty() && it->second.topic_id != topic_id) {
    return Status::NotFound("topic '" + name + "' has id " + it->second.topic_id + ", not " +
                            topic_id + " (it was deleted and re-created)");
  }
  return &it->second;
}

Status CheckNodes(const std::vector<NodeId>& nodes, const char* what) {
  for (NodeId n : nodes) {
    if (n.value() <= 0) {
      return Status::InvalidArgument(std::string(what) + " has node id " +
                                     std::to_string(n.value()) + ", not > 0");
    }
  }
  return Status::OK();
}

Status ApplyPartition(MetadataImage& image, const pb::PartitionRecord& r) {
  RILL_ASSIGN_OR_RETURN(TopicMetadata * topic, FindTopic(image, r.topic(), r.topic_id()));
  if (r.partition() != static_cast<int32_t>(topic->partitions.size())) {
    return Status::InvalidArgument(
        "topic '" + r.topic() + "' has " + std::to_string(topic->partitions.size()) +
        " partitions; partition " + std::to_string(r.partition()) + " is not the next one");
  }
  if (r.replicas().empty()) {
    return Status::InvalidArgument("partition " + std::to_string(r.partition()) + " of topic '" +
                                   r.topic() + "' has no replicas");
  }
  PartitionAssignment p;
  p.partition = r.partition();
  p.replicas = ToNodes(r.replicas());
  p.isr = ToNodes(r.isr());
  p.leader = NodeId(r.leader());
  p.leader_epoch = LeaderEpoch(r.leader_epoch());
  p.partition_epoch = r.partition_epoch();
  RILL_RETURN_IF_ERROR(CheckNodes(p.replicas, "replica list"));
  RILL_RETURN_IF_ERROR(CheckNodes(p.isr, "ISR"));
  topic->partitions.push_back(std::move(p));
  return Status::OK();
}

Status ApplyPartitionChange(MetadataImage& image, const pb::PartitionChangeRecord& r) {
  RILL_ASSIGN_OR_RETURN(TopicMetadata * topic, FindTopic(image, r.topic(), r.topic_id()));
  if (r.partition() < 0 || r.partition() >= static_cast<int32_t>(topic->partitions.size())) {
    return Status::NotFound("topic '" + r.topic() + "' has no partition " +
                            std::to_string(r.partition()));
  }
  PartitionAssignment next = topic->partitions[r.partition()];
  if (r.has_replicas()) {
    if (r.replicas().ids().empty()) {
      return Status::InvalidArgument("partition change leaves no replicas");
    }
    next.replicas = ToNodes(r.replicas().ids());
    RILL_RETURN_IF_ERROR(CheckNodes(next.replicas, "replica list"));
  }
  if (r.has_isr()) {
    next.isr = ToNodes(r.isr().ids());
    RILL_RETURN_IF_ERROR(CheckNodes(next.isr, "ISR"));
  }
  if (r.has_leader() && NodeId(r.leader()) != next.leader) {
    next.leader = NodeId(r.leader());
    next.leader_epoch += 1;
  } else if (r.bump_leader_epoch()) {
    next.leader_epoch += 1;
  }
  next.partition_epoch += 1;
  topic->partitions[r.partition()] = std::move(next);
  return Status::OK();
}

// The name of the topic a record creates, changes or removes; null for cluster and broker
// records (fencing moves leaders only through the PartitionChangeRecords that follow it).
const std::string* TopicOfRecord(const pb::MetadataRecord& record) {
  switch (record.record_case()) {
    case pb::MetadataRecord::kTopic:
      return &record.topic().name();
    case pb::MetadataRecord::kPartition:
      return &record.partition().topic();
    case pb::MetadataRecord::kPartitionChange:
      return &record.partition_change().topic();
    case pb::MetadataRecord::kRemoveTopic:
      return &record.remove_topic().name();
    case pb::MetadataRecord::kConfig:
      return &record.config().topic();
    default:
      return nullptr;
  }
}

Status Apply(MetadataImage& image, const pb::MetadataRecord& record);

}  // namespace

Status ApplyMetadataRecord(MetadataImage& image, const pb::MetadataRecord& record,
                           ImageChanges* changes) {
  // A record that does not apply changes nothing, but naming its topic anyway is harmless: the
  // changes are a superset of what differs.
  if (changes != nullptr && !changes->all) {
    if (const std::string* topic = TopicOfRecord(record)) changes->topics.insert(*topic);
  }
  return Apply(image, record);
}

namespace {

Status Apply(MetadataImage& image, const pb::MetadataRecord& record) {
  switch (record.record_case()) {
    case pb::MetadataRecord::kClusterId:
      // The first cluster id wins; a later one (two leaders racing to bootstrap) is ignored.
      if (image.cluster_id.empty()) image.cluster_id = record.cluster_id().cluster_id();
      return Status::OK();
    case pb::MetadataRecord::kRegisterBroker: {
      const auto& r = record.register_broker();
      if (r.node_id() <= 0) {
        return Status::InvalidArgument("broker id " + std::to_string(r.node_id()) + " is not > 0");
      }
      BrokerRegistration& b = image.brokers[NodeId(r.node_id())];
      b.node_id = NodeId(r.node_id());
      b.host = r.host();
      b.port = r.port();
      b.internal_host = r.internal_host().empty() ? r.host() : r.internal_host();
      b.internal_port = r.internal_port();
      b.rack = r.rack();
      b.incarnation_id = r.incarnation_id();
      b.fenced = false;
      return Status::OK();
    }
    case pb::MetadataRecord::kFenceBroker:
    case pb::MetadataRecord::kUnfenceBroker: {
      bool fence = record.record_case() == pb::MetadataRecord::kFenceBroker;
      int32_t id = fence ? record.fence_broker().node_id() : record.unfence_broker().node_id();
      auto it = image.brokers.find(NodeId(id));
      if (it == image.brokers.end()) {
        return Status::NotFound("broker " + std::to_string(id) + " is not registered");
      }
      it->second.fenced = fence;
      return Status::OK();
    }
    case pb::MetadataRecord::kTopic: {
      const auto& r = record.topic();
      if (image.topics.count(r.name()) != 0) {
        return Status::AlreadyExists("topic '" + r.name() + "' already exists");
      }
      TopicMetadata t;
      t.name = r.name();
      t.topic_id = r.topic_id();
      t.internal = r.internal();
      image.topics.emplace(r.name(), std::move(t));
      return Status::OK();
    }
    case pb::MetadataRecord::kPartition:
      return ApplyPartition(image, record.partition());
    case pb::MetadataRecord::kPartitionChange:
      return ApplyPartitionChange(image, record.partition_change());
    case pb::MetadataRecord::kRemoveTopic: {
      const auto& r = record.remove_topic();
      RILL_RETURN_IF_ERROR(FindTopic(image, r.name(), r.topic_id()).status());
      image.topics.erase(r.name());
      return Status::OK();
    }
    case pb::MetadataRecord::kConfig: {
      const auto& r = record.config();
      RILL_ASSIGN_OR_RETURN(TopicMetadata * topic, FindTopic(image, r.topic(), r.topic_id()));
      if (r.remove()) {
        topic->configs.erase(r.key());
      } else {
        topic->configs[r.key()] = r.value();
      }
      return Status::OK();
    }
    case pb::MetadataRecord::kProducerIds: {
      // Blocks only move forward; a gap (a proposal that failed) is harmless, an overlap would
      // give an id twice and is refused.
      const auto& r = record.producer_ids();
      if (r.count() <= 0 || r.first_id() < image.next_producer_id ||
          r.first_id() > INT64_MAX - r.count()) {
        return Status::InvalidArgument(
            "producer id block [" + std::to_string(r.first_id()) + ", +" +
            std::to_string(r.count()) + ") overlaps ids already given (next free id " +
            std::to_string(image.next_producer_id) + ")");
      }
      image.next_producer_id = r.first_id() + r.count();
      return Status::OK();
    }
    case pb::MetadataRecord::RECORD_NOT_SET:
      break;
  }
  return Status::InvalidArgument("metadata record of unknown kind " +
                                 std::to_string(static_cast<int>(record.record_case())));
}

}  // namespace

Status ApplyMetadataBatch(MetadataImage& image, const pb::MetadataBatch& batch,
                          ImageChanges* changes) {
  for (const pb::MetadataRecord& r : batch.records()) {
    RILL_RETURN_IF_ERROR(ApplyMetadataRecord(image, r, changes));
  }
  return Status::OK();
}

pb::MetadataSnapshot SnapshotOfImage(const MetadataImage& image) {
  pb::MetadataSnapshot s;
  s.set_applied_index(image.applied_index);
  if (!image.cluster_id.empty()) *s.add_records() = ClusterIdRecordOf(image.cluster_id);
  if (image.next_producer_id > 0) {
    pb::ProducerIdsRecord* ids = s.add_records()->mutable_producer_ids();
    ids->set_node_id(-1);
    ids->set_first_id(0);
    ids->set_count(image.next_producer_id);
  }
  for (const auto& [id, b] : image.brokers) {
    *s.add_records() = RegisterBrokerRecordOf(b);
    if (b.fenced) s.add_records()->mutable_fence_broker()->set_node_id(id.value());
  }
  for (const auto& [name, t] : image.topics) {
    *s.add_records() = TopicRecordOf(name, t.topic_id, t.internal);
    for (const PartitionAssignment& p : t.partitions) {
      pb::PartitionRecord* r = s.add_records()->mutable_partition();
      r->set_topic(name);
      r->set_topic_id(t.topic_id);
      r->set_partition(p.partition);
      FromNodes(p.replicas, r->mutable_replicas());
      FromNodes(p.isr, r->mutable_isr());
      r->set_leader(p.leader.value());
      r->set_leader_epoch(p.leader_epoch.value());
      r->set_partition_epoch(p.partition_epoch);
    }
    for (const auto& [key, value] : t.configs) {
      *s.add_records() = ConfigRecordOf(name, t.topic_id, key, value, false);
    }
  }
  return s;
}

Result<MetadataImage> ImageFromSnapshot(const pb::MetadataSnapshot& snapshot) {
  MetadataImage image;
  for (int i = 0; i < snapshot.records_size(); ++i) {
    Status st = ApplyMetadataRecord(image, snapshot.records(i));
    if (!st.ok()) {
      return Status::Corruption("metadata snapshot at index " +
                                std::to_string(snapshot.applied_index()) + ": record " +
                                std::to_string(i) + " does not apply: " + st.ToString());
    }
  }
  image.applied_index = snapshot.applied_index();
  return image;
}

std::vector<NodeId> UnfencedBrokers(const MetadataImage& image) {
  std::vector<NodeId> out;
  for (const auto& [id, b] : image.brokers) {
    if (!b.fenced) out.push_back(id);
  }
  return out;  // std::map iterates in ascending id order
}

std::vector<NodeId> PlacementOrder(const MetadataImage& image) {
  std::map<std::string, std::vector<NodeId>> by_rack;
  for (const auto& [id, b] : image.brokers) {
    if (!b.fenced) by_rack[b.rack].push_back(id);  // ascending id within each rack
  }
  std::vector<NodeId> out;
  for (size_t i = 0;; ++i) {
    bool any = false;
    for (const auto& [rack, ids] : by_rack) {
      if (i < ids.size()) {
        out.push_back(ids[i]);
        any = true;
      }
    }
    if (!any) break;
  }
  return out;
}

std::map<NodeId, std::string> BrokerRacks(const MetadataImage& image) {
  std::map<NodeId, std::string> out;
  for (const auto& [id, b] : image.brokers) out[id] = b.rack;
  return out;
}

std::vector<std::vector<NodeId>> AssignReplicas(const std::vector<NodeId>& brokers,
                                                int32_t first_partition, int32_t count,
                                                int32_t replication_factor, size_t start,
                                                const std::map<NodeId, std::string>* racks) {
  RILL_ASSERT(!brokers.empty() && replication_factor >= 1 &&
                  static_cast<size_t>(replication_factor) <= brokers.size(),
              "AssignReplicas: replication factor %d with %zu brokers", replication_factor,
              brokers.size());
  auto rack_of = [racks](NodeId id) -> std::string {
    if (racks == nullptr) return "";
    auto it = racks->find(id);
    return it == racks->end() ? "" : it->second;
  };
  std::vector<std::vector<NodeId>> out;
  out.reserve(count);
  size_t n = brokers.size();
  for (int32_t i = 0; i < count; ++i) {
    size_t first = (start + static_cast<size_t>(first_partition) + i) % n;
    std::vector<NodeId> replicas = {brokers[first]};
    std::set<std::string> used_racks = {rack_of(brokers[first])};
    while (replicas.size() < static_cast<size_t>(replication_factor)) {
      std::optional<NodeId> fallback;
      std::optional<NodeId> pick;
      for (size_t k = 1; k < n && !pick; ++k) {
        NodeId candidate = brokers[(first + k) % n];
        if (std::find(replicas.begin(), replicas.end(), candidate) != replicas.end()) continue;
        if (!fallback) fallback = candidate;
        if (used_racks.count(rack_of(candidate)) == 0) pick = candidate;
      }
      NodeId chosen = pick ? *pick : *fallback;
      replicas.push_back(chosen);
      used_racks.insert(rack_of(chosen));
    }
    out.push_back(std::move(replicas));
  }
  return out;
}

std::vector<pb::MetadataRecord> FenceAndElect(const MetadataImage& image,
                                              const std::set<NodeId>& fence, size_t max_changes) {
  std::vector<pb::MetadataRecord> out;
  std::set<NodeId> live;
  for (const auto& [id, b] : image.brokers) {
    if (!b.fenced && fence.count(id) == 0) live.insert(id);
  }
  for (NodeId id : fence) {
    if (image.brokers.count(id) == 0) continue;
    pb::MetadataRecord r;
    r.mutable_fence_broker()->set_node_id(id.value());
    out.push_back(std::move(r));
  }
  size_t changes = 0;
  for (const auto& [name, t] : image.topics) {
    for (const PartitionAssignment& p : t.partitions) {
      if (changes >= max_changes) return out;
      std::vector<NodeId> isr;
      for (NodeId n : p.isr) {
        if (fence.count(n) == 0) isr.push_back(n);
      }
      if (isr.empty()) isr = p.isr;  // keep the last member
      NodeId leader = p.leader;
      if (leader.value() < 0 || live.count(leader) == 0) {
        leader = NodeId(-1);
        for (NodeId r : p.replicas) {
          if (live.count(r) != 0 && std::find(isr.begin(), isr.end(), r) != isr.end()) {
            leader = r;
            break;
          }
        }
      }
      if (leader == p.leader && isr == p.isr) continue;
      pb::MetadataRecord r;
      pb::PartitionChangeRecord* c = r.mutable_partition_change();
      c->set_topic(name);
      c->set_topic_id(t.topic_id);
      c->set_partition(p.partition);
      if (leader != p.leader) c->set_leader(leader.value());
      if (isr != p.isr) FromNodes(isr, c->mutable_isr()->mutable_ids());
      out.push_back(std::move(r));
      ++changes;
    }
  }
  return out;
}

std::vector<pb::MetadataRecord> ControlledShutdownRecords(const MetadataImage& image,
                                                          NodeId node) {
  // Fenced already (a repeated request, or fenced for silence): its leaderships moved then.
  auto it = image.brokers.find(node);
  if (it == image.brokers.end() || it->second.fenced) return {};
  return FenceAndElect(image, {node}, std::numeric_limits<size_t>::max());
}

std::vector<pb::MetadataRecord> RejoinRecords(const MetadataImage& image, NodeId node) {
  std::vector<pb::MetadataRecord> out;
  if (image.brokers.count(node) == 0) return out;
  auto live = [&](NodeId id) {
    auto b = image.brokers.find(id);
    return id != node && b != image.brokers.end() && !b->second.fenced;
  };
  for (const auto& [name, t] : image.topics) {
    for (const PartitionAssignment& p : t.partitions) {
      const bool member = std::find(p.isr.begin(), p.isr.end(), node) != p.isr.end();
      pb::MetadataRecord r;
      pb::PartitionChangeRecord* c = r.mutable_partition_change();
      c->set_topic(name);
      c->set_topic_id(t.topic_id);
      c->set_partition(p.partition);
      if (!member || p.isr.size() == 1) {
        // Not a member, or the last one: only a partition it leads changes (a new epoch).
        if (p.leader != node) continue;
        c->set_bump_leader_epoch(true);
        out.push_back(std::move(r));
        continue;
      }
      std::vector<NodeId> isr;
      for (NodeId n : p.isr) {
        if (n != node) isr.push_back(n);
      }
      FromNodes(isr, c->mutable_isr()->mutable_ids());
      if (p.leader == node || !live(p.leader)) {
        NodeId leader(-1);
        for (NodeId candidate : p.replicas) {
          if (live(candidate) && std::find(isr.begin(), isr.end(), candidate) != isr.end()) {
            leader = candidate;
            break;
          }
        }
        if (leader != p.leader) c->set_leader(leader.value());
      }
      out.push_back(std::move(r));
    }
  }
  return out;
}

std::vector<ElectionPlan> PlanPreferredElection(const MetadataImage& image,
                                                const ElectionTargets& targets) {
  std::vector<ElectionPlan> out;
  auto classify = [&](const std::string& name, const PartitionAssignment& p) {
    ElectionPlan plan{name, p.partition, ElectionOutcome::kNotAvailable};
    if (p.replicas.empty()) return plan;
    NodeId preferred = p.replicas.front();
    auto b = image.brokers.find(preferred);
    if (p.leader == preferred) {
      plan.outcome = ElectionOutcome::kNotNeeded;
    } else if (b != image.brokers.end() && !b->second.fenced &&
               std::find(p.isr.begin(), p.isr.end(), preferred) != p.isr.end()) {
      plan.outcome = ElectionOutcome::kElect;
    }
    return plan;
  };
  if (targets.empty()) {
    for (const auto& [name, t] : image.topics) {
      for (const PartitionAssignment& p : t.partitions) out.push_back(classify(name, p));
    }
    return out;
  }
  for (const auto& [name, partitions] : targets) {
    const TopicMetadata* t = image.FindTopic(name);
    if (t == nullptr) {
      out.push_back({name, -1, ElectionOutcome::kUnknownTopic});
      continue;
    }
    if (partitions.empty()) {
      for (const PartitionAssignment& p : t->partitions) out.push_back(classify(name, p));
      continue;
    }
    for (int32_t id : partitions) {
      if (id < 0 || static_cast<size_t>(id) >= t->partitions.size()) {
        out.push_back({name, id, ElectionOutcome::kUnknownPartition});
      } else {
        out.push_back(classify(name, t->partitions[id]));
      }
    }
  }
  return out;
}

std::vector<pb::MetadataRecord> PreferredLeaderRecords(const MetadataImage& image,
                                                       const std::vector<ElectionPlan>& plans,
                                                       size_t max_changes) {
  std::vector<pb::MetadataRecord> out;
  for (const ElectionPlan& plan : plans) {
    if (out.size() >= max_changes) break;
    if (plan.outcome != ElectionOutcome::kElect) continue;
    const TopicMetadata* t = image.FindTopic(plan.topic);
    const PartitionAssignment& p = t->partitions[plan.partition];
    pb::MetadataRecord r;
    pb::PartitionChangeRecord* c = r.mutable_partition_change();
    c->set_topic(plan.topic);
    c->set_topic_id(t->topic_id);
    c->set_partition(plan.partition);
    c->set_leader(p.replicas.front().value());
    out.push_back(std::move(r));
  }
  return out;
}

pb::MetadataRecord TopicRecordOf(const std::string& name, const std::string& topic_id,
                                 bool internal) {
  pb::MetadataRecord r;
  r.mutable_topic()->set_name(name);
  r.mutable_topic()->set_topic_id(topic_id);
  r.mutable_topic()->set_internal(internal);
  return r;
}

pb::MetadataRecord PartitionRecordOf(const std::string& topic, const std::string& topic_id,
                                     int32_t partition, const std::vector<NodeId>& replicas) {
  pb::MetadataRecord r;
  pb::PartitionRecord* p = r.mutable_partition();
  p->set_topic(topic);
  p->set_topic_id(topic_id);
  p->set_partition(partition);
  FromNodes(replicas, p->mutable_replicas());
  FromNodes(replicas, p->mutable_isr());
  p->set_leader(replicas.empty() ? -1 : replicas.front().value());
  p->set_leader_epoch(0);
  return r;
}

pb::MetadataRecord ConfigRecordOf(const std::string& topic, const std::string& topic_id,
                                  const std::string& key, const std::string& value, bool remove) {
  pb::MetadataRecord r;
  pb::ConfigRecord* c = r.mutable_config();
  c->set_topic(topic);
  c->set_topic_id(topic_id);
  c->set_key(key);
  if (!remove) c->set_value(value);
  c->set_remove(remove);
  return r;
}

pb::MetadataRecord RemoveTopicRecordOf(const std::string& name, const std::string& topic_id) {
  pb::MetadataRecord r;
  r.mutable_remove_topic()->set_name(name);
  r.mutable_remove_topic()->set_topic_id(topic_id);
  return r;
}

pb::MetadataRecord RegisterBrokerRecordOf(const BrokerRegistration& broker) {
  pb::MetadataRecord r;
  pb::RegisterBrokerRecord* b = r.mutable_register_broker();
  b->set_node_id(broker.node_id.value());
  b->set_host(broker.host);
  b->set_port(broker.port);
  b->set_internal_host(broker.InternalHost());
  b->set_internal_port(broker.internal_port);
  b->set_rack(broker.rack);
  b->set_incarnation_id(broker.incarnation_id);
  return r;
}

pb::MetadataRecord ClusterIdRecordOf(const std::string& cluster_id) {
  pb::MetadataRecord r;
  r.mutable_cluster_id()->set_cluster_id(cluster_id);
  return r;
}

}  // namespace rill::broker
