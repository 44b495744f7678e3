#pragma once

// The rules a topic must follow to be created, as Kafka has them.
//
// Thread-safety: pure functions.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "rill/proto/status.h"

namespace rill::broker {

inline constexpr size_t kMaxTopicNameLength = 249;

// 1..249 characters of [a-zA-Z0-9._-], not "." or "..". Names starting with "__" are reserved
// for internal topics (e.g. __consumer_offsets): allowed only when `internal`.
// InvalidArgument with a message naming the problem.
Status ValidateTopicName(std::string_view name, bool internal);

// Kafka refuses topics whose names differ only by '.' versus '_' (they collide in metric names).
// Returns the name with every '.' replaced by '_'.
std::string CollisionKey(std::string_view name);

// 1..max_partitions. InvalidArgument otherwise.
Status ValidatePartitionCount(int32_t partitions, int32_t max_partitions);

// 1..available_brokers (unfenced). InvalidArgument otherwise.
Status ValidateReplicationFactor(int32_t replication_factor, size_t available_brokers);

}  // namespace rill::broker
