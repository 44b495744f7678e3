#pragma once

// What a change of the metadata image means for the partitions one node hosts: a pure function
// from (the image last applied, the new image, the topics the records between them touched) to
// per-partition transitions, which the partition manager applies (docs/ARCHITECTURE.md §7).
// Only the touched topics are compared, so the work follows the size of the change, not of the
// cluster; a partition whose assignment and topic config are unchanged does not appear.
//
// Thread-safety: pure functions over their arguments.

#include <map>
#include <string>
#include <vector>

#include "controller/controller.h"

namespace rill::broker {

struct LocalPartitionChange {
  enum class Kind : uint8_t {
    kAdded,    // this node became a replica: a new topic or partition, or a reassignment here
    kRemoved,  // it no longer is: the topic was deleted (or re-created under a new id), or the
               // partition was reassigned away
    kChanged,  // still a replica; its leader, leader epoch, replicas or ISR changed
  };
  Kind kind = Kind::kAdded;
  std::string topic;
  std::string topic_id;
  PartitionAssignment assignment;  // the new one; for kRemoved the last one this node had
};

// A topic that keeps local partitions and whose config overrides changed.
struct TopicConfigChange {
  std::string topic;
  std::map<std::string, std::string> overrides;
};

struct LocalDelta {
  // Every kRemoved before any kAdded or kChanged (a topic re-created under the same name removes
  // the old log before opening the new one).
  std::vector<LocalPartitionChange> partitions;
  std::vector<TopicConfigChange> configs;
  bool empty() const { return partitions.empty() && configs.empty(); }
};

// The transitions of node `self` from `prev` (null: nothing hosted yet) to `next`, looking only
// at the topics `changes` names (every topic of both images when prev is null or changes.all).
// `changes` must cover every topic whose records were applied between the two images.
LocalDelta DiffForNode(const MetadataImage* prev, const MetadataImage& next, NodeId self,
                       const ImageChanges& changes = ImageChanges::All());

}  // namespace rill::broker
