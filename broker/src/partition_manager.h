#pragma once

// Keeps the set of local partitions in step with the controller's metadata image: for every
// partition whose replicas include this node it opens the log with the topic's effective config
// and sets the role and leader epoch; deleted topics have their logs removed; altered configs
// are applied to the open logs.
//
// Thread-safety: ApplyImage() is called by the controller's listener thread (one at a time);
// Get() and the other readers may be called from any thread.

#include <atomic>
#include <memory>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "partition.h"
#include "partition_log.h"
#include "controller/controller.h"

namespace rill::broker {

class PartitionManager {
 public:
  // `topic_defaults` are the broker-wide topic config defaults (BrokerTopicDefaults).
  PartitionManager(NodeId self, LogStore* store, TopicConfigMap topic_defaults);

  // Reconciles local partitions with `image`. Errors opening a log are logged; the partition
  // is then absent (clients get NOT_LEADER) and the manager is not ready.
  void ApplyImage(const std::shared_ptr<const MetadataImage>& image);

  // The local partition, or null.
  std::shared_ptr<Partition> Get(const std::string& topic, int32_t partition) const;
  // Every local partition (for /metrics and shutdown).
  std::vector<std::shared_ptr<Partition>> All() const;

  // The image last applied (null before the first).
  std::shared_ptr<const MetadataImage> image() const;
  // True once an image has been applied and every local partition it names is open.
  bool ready() const { return ready_.load(std::memory_order_acquire); }

  // Effective config of a topic: broker defaults below the topic's overrides.
  TopicConfigMap EffectiveConfig(const TopicMetadata& topic) const;

 private:
  struct LocalTopic {
    std::string topic_id;
    TopicConfigMap config;  // effective config the logs were opened/altered with
    std::vector<std::shared_ptr<Partition>> partitions;  // index = partition; null if not local
  };

  const NodeId self_;
  LogStore* const store_;
  const TopicConfigMap topic_defaults_;

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, LocalTopic> topics_;
  std::shared_ptr<const MetadataImage> image_;
  std::atomic<bool> ready_{false};
};

}  // namespace rill::broker
