#pragma once

// The replica manager: keeps the partitions this node hosts in step with the metadata image.
// The controller hands it each new image (Enqueue, from the Raft driver thread, never blocking);
// its own thread "rill-replicas" works out what changed for this node from the topics the
// image's records touched (DiffForNode, metadata/image_delta.h) and applies only that: opens
// (recovering) the logs of partitions that became local, sets role, leader epoch, replicas and ISR
// where they changed, applies changed topic configs, and closes and removes the logs of partitions
// that are no longer local. Its applied image is the one image the broker's services read
// (docs/ARCHITECTURE.md §7).
//
// Thread-safety: Enqueue, WhenApplied, Get, All, image and the other readers may be called from
// any thread. ApplyImage runs on the manager's thread (or the test's, when the thread is not
// started); RemoveStrayLogs excludes it while it runs.

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "controller/controller.h"
#include "partition/partition.h"
#include "partition/partition_log.h"

namespace rill::broker {

class PartitionManager {
 public:
  // `topic_defaults` are the broker-wide topic config defaults (BrokerTopicDefaults).
  PartitionManager(NodeId self, LogStore* store, TopicConfigMap topic_defaults);
  ~PartitionManager();

  // Replication settings for the partitions opened from now on. Call before Start.
  void set_replication_settings(ReplicationSettings s) { replication_ = s; }
  // This process's incarnation (BrokerRegistration::incarnation_id). A partition the image
  // says this node leads is led only once the image registers this incarnation: until then
  // (a restart, before the controller recorded it and bumped the leader epochs) it is a
  // follower that fetches from nobody, and clients get NOT_LEADER. Empty: no check (tests).
  // Call before Start.
  void set_incarnation(std::string id) { incarnation_ = std::move(id); }
  // True when `image` registers this node with this incarnation (or no incarnation is set).
  bool SelfCurrent(const MetadataImage& image) const;

  // Called on the manager's thread after every applied image (the replica fetchers re-read
  // which partitions follow which leader). Call before Start; must not block.
  void set_on_applied(std::function<void()> hook) { on_applied_ = std::move(hook); }
  // Handed to every partition opened from now on (Partition::set_on_isr_change). Before Start.
  void set_on_isr_change(std::function<void(bool shrink)> hook) {
    on_isr_change_ = std::move(hook);
  }

  // Starts the thread that applies enqueued images. Stop ends it (an image being applied is
  // finished first) and fails the WhenApplied waiters. Stop is idempotent.
  void Start();
  void Stop();

  // Hands `image` to the manager's thread and returns at once; `changes` names what the records
  // since the previously enqueued image touched (All(): compare everything). Images that arrive
  // while one is applied are coalesced: the newest is applied, with the union of their changes.
  void Enqueue(std::shared_ptr<const MetadataImage> image,
               const ImageChanges& changes = ImageChanges::All());

  // Calls `done(true)` once an image whose applied_index >= `index` has been applied here (at
  // once, on the caller's thread, if one has), or `done(false)` when the manager stops first.
  // Otherwise `done` runs on the manager's thread and must not block.
  void WhenApplied(uint64_t index, std::function<void(bool)> done);

  // Applies `image` on the calling thread: the transitions from the last applied image of the
  // topics `changes` names (every topic the first time). Logs that fail to open are logged and
  // retried with every later image; until they open the partition is absent (clients get
  // NOT_LEADER) and ready() is false.
  void ApplyImage(const std::shared_ptr<const MetadataImage>& image,
                  const ImageChanges& changes = ImageChanges::All());

  // Removes the stored logs the last applied image does not assign to this node (stray logs:
  // a topic deleted or re-created while its removal was pending when the broker stopped),
  // except those named in `reserved` ("<name>-<int>" directories that are not partition logs).
  // Call once the applied image is known to be current; Unavailable while the applied image is
  // older than `min_applied_index` (retry later). Returns the names removed.
  Result<std::vector<std::string>> RemoveStrayLogs(uint64_t min_applied_index,
                                                   const std::set<std::string>& reserved);

  // The local partition, or null.
  std::shared_ptr<Partition> Get(const std::string& topic, int32_t partition) const;
  // Every local partition (for /metrics, housekeeping and shutdown).
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

  void Run();
  // Opens the log of a partition that became local; false (logged) when it cannot.
  bool OpenPartition(const TopicMetadata& topic, const PartitionAssignment& assignment,
                     bool current);
  void ClosePartition(const std::string& topic, const std::string& topic_id, int32_t partition);
  // Sets the partition's role and replica state from `a`; leads only when `current` (the
  // applied image registers this incarnation).
  static void SetLeadership(Partition& part, const PartitionAssignment& a, NodeId self,
                            bool current);
  ReplicationSettings replication_;
  std::string incarnation_;
  std::function<void()> on_applied_;
  std::function<void(bool shrink)> on_isr_change_;

  const NodeId self_;
  LogStore* const store_;
  const TopicConfigMap topic_defaults_;

  // Held by ApplyImage and RemoveStrayLogs for their whole run: a stray scan never sees a log
  // that an image being applied is about to open.
  std::mutex apply_mu_;
  std::set<std::pair<std::string, int32_t>> failed_opens_;  // guarded by apply_mu_

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, LocalTopic> topics_;
  std::shared_ptr<const MetadataImage> image_;
  std::atomic<bool> ready_{false};

  // The manager's thread, its inbox and the WhenApplied waiters.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::shared_ptr<const MetadataImage> pending_;                // guarded by queue_mu_
  ImageChanges pending_changes_;                                // guarded by queue_mu_
  bool stopping_ = false;                                       // guarded by queue_mu_
  uint64_t applied_index_ = 0;                                  // guarded by queue_mu_
  bool applied_any_ = false;                                    // guarded by queue_mu_
  std::multimap<uint64_t, std::function<void(bool)>> waiters_;  // guarded by queue_mu_
  std::thread thread_;
};

}  // namespace rill::broker
