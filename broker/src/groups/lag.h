#pragma once

// Consumer lag: how far a group's committed offsets trail the partitions' log end offsets.
//
//   lag = log_end_offset - committed_offset            when an offset is committed
//   lag = log_end_offset - log_start_offset            when none is (committed == -1): the group
//                                                       would read everything still retained
// A committed offset beyond the log end (the log was truncated) counts as lag 0, and a committed
// offset below the log start still counts every offset up to the end (what the group missed to
// retention is lag it can never consume, but it is shown).

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "groups/group_types.h"

namespace rill::groups {

struct PartitionOffsets {
  TopicPartition tp;
  int64_t committed_offset = -1;  // -1: nothing committed
  int64_t log_start_offset = 0;
  int64_t log_end_offset = 0;
};

int64_t PartitionLag(const PartitionOffsets& p);

struct PartitionLagEntry {
  TopicPartition tp;
  int64_t lag = 0;
};

struct GroupLag {
  std::vector<PartitionLagEntry> partitions;  // in input order
  int64_t total = 0;
  int64_t max = 0;
};

GroupLag ComputeGroupLag(std::span<const PartitionOffsets> partitions);

}  // namespace rill::groups
