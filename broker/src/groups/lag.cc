#include "groups/lag.h"

#include <algorithm>

namespace rill::groups {

int64_t PartitionLag(const PartitionOffsets& p) {
  const int64_t from = p.committed_offset < 0 ? p.log_start_offset : p.committed_offset;
  return std::max<int64_t>(0, p.log_end_offset - from);
}

GroupLag ComputeGroupLag(std::span<const PartitionOffsets> partitions) {
  GroupLag g;
  g.partitions.reserve(partitions.size());
  for (const auto& p : partitions) {
    const int64_t lag = PartitionLag(p);
    g.partitions.push_back({p.tp, lag});
    g.total += lag;
    g.max = std::max(g.max, lag);
  }
  return g;
}

}  // namespace rill::groups
