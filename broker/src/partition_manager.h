#pragma once

// Keeps the set of local partitions in step with the controller's metadata image: for every
// partition whose replicas include this node it opens the log with the topic's effective config
// and sets the role and leader epoch; deleted topics have their logs removed; altered configs
// are applied to the open logs.
//
// Thread-safety: ApplyImage() is called by the controller's listener thread (one at a time);
// RemoveStrayLogs() may be called from any thread (it excludes ApplyImage while it runs); Get()
// and the other readers may be called from any thread.

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
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

  // Removes the stored logs the last applied image does not assign to this node (stray logs:
  // a topic deleted or re-created while its removal was pending when the broker stopped),
  // except those named in `reserved` ("<name>-<int>" directories that are not partition logs).
  // Call once the applied image is known to be current; Unavailable while the applied image is
  // older than `min_applied_index` (retry later). Returns the names removed.
  Result<std::vector<std::string>> RemoveStrayLogs(uint64_t min_applied_index,
                                                   const std::set<std::string>& reserved);

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

  // Held by ApplyImage and RemoveStrayLogs for their whole run: a stray scan never sees a log
  // that an image being applied is about to open.
  std::mutex apply_mu_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, LocalTopic> topics_;
  std::shared_ptr<const MetadataImage> image_;
  std::atomic<bool> ready_{false};
};

}  // namespace rill::broker
