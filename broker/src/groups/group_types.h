#pragma once

// Value types shared by the consumer-group core: topic partitions and assignments.
// Everything is kept in ordered containers so that iteration order, and therefore every
// decision the assignors and the group state machine make, is deterministic.

#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace rill::groups {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

// topic -> partitions. Invariant kept by every helper below: no topic maps to an empty set.
using Assignment = std::map<std::string, std::set<int32_t>>;

// topic -> partition count, for the topics that exist. The broker builds it from the metadata
// image; the group core only reads it.
using TopicPartitionCounts = std::map<std::string, int32_t>;

inline size_t PartitionCount(const Assignment& a) {
  size_t n = 0;
  for (const auto& [topic, parts] : a) n += parts.size();
  return n;
}

inline bool Contains(const Assignment& a, const std::string& topic, int32_t partition) {
  auto it = a.find(topic);
  return it != a.end() && it->second.contains(partition);
}

inline void Add(Assignment& a, const std::string& topic, int32_t partition) {
  a[topic].insert(partition);
}

inline void Remove(Assignment& a, const std::string& topic, int32_t partition) {
  auto it = a.find(topic);
  if (it == a.end()) return;
  it->second.erase(partition);
  if (it->second.empty()) a.erase(it);
}

// a ∪ b, a ∩ b, a \ b.
Assignment Union(const Assignment& a, const Assignment& b);
Assignment Intersect(const Assignment& a, const Assignment& b);
Assignment Minus(const Assignment& a, const Assignment& b);
// Every partition of `a` is in `b`.
bool IsSubset(const Assignment& a, const Assignment& b);
// "t0-[0,1,2] t1-[4]" for logs and test messages.
std::string ToString(const Assignment& a);

}  // namespace rill::groups
