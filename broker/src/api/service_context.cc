#include "api/service_context.h"

namespace rill::broker {

void FillLeaderHint(const ServiceContext& ctx, const std::string& topic, int32_t partition,
                    v1::LeaderHint* hint) {
  if (hint == nullptr) return;
  hint->set_leader_id(-1);
  auto image = ctx.partitions->image();
  if (!image) return;
  const TopicMetadata* t = image->FindTopic(topic);
  if (t == nullptr || partition < 0 || static_cast<size_t>(partition) >= t->partitions.size()) {
    return;
  }
  const auto& pa = t->partitions[partition];
  hint->set_leader_id(pa.leader.value());
  hint->set_leader_epoch(pa.leader_epoch.value());
  auto b = image->brokers.find(pa.leader);
  if (b != image->brokers.end()) {
    hint->set_host(b->second.host);
    hint->set_port(b->second.port);
  }
}

v1::ErrorCode MissingPartitionError(const ServiceContext& ctx, const std::string& topic,
                                    int32_t partition, std::string* message,
                                    v1::LeaderHint* hint) {
  auto image = ctx.partitions->image();
  const TopicMetadata* t = image ? image->FindTopic(topic) : nullptr;
  if (t == nullptr) {
    *message = "topic '" + topic + "' does not exist";
    return v1::UNKNOWN_TOPIC;
  }
  if (partition < 0 || static_cast<size_t>(partition) >= t->partitions.size()) {
    *message = "topic '" + topic + "' has " + std::to_string(t->partitions.size()) +
               " partitions; there is no partition " + std::to_string(partition);
    return v1::UNKNOWN_PARTITION;
  }
  *message = "this broker does not lead " + topic + "-" + std::to_string(partition);
  FillLeaderHint(ctx, topic, partition, hint);
  return v1::NOT_LEADER;
}

}  // namespace rill::broker
