#include "topic_rules.h"

#include <cstdio>
#include <string>

namespace rill::broker {

Status ValidateTopicName(std::string_view name, bool internal) {
  if (name.empty()) return Status::InvalidArgument("topic name is empty");
  if (name.size() > kMaxTopicNameLength) {
    return Status::InvalidArgument("topic name is " + std::to_string(name.size()) +
                                   " characters long; the limit is " +
                                   std::to_string(kMaxTopicNameLength));
  }
  if (name == "." || name == "..") {
    return Status::InvalidArgument("topic name cannot be '" + std::string(name) + "'");
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      char shown[8];
      if (c >= 0x20 && c < 0x7f) {
        std::snprintf(shown, sizeof(shown), "%c", c);
      } else {
        std::snprintf(shown, sizeof(shown), "\\x%02x", static_cast<unsigned>(uint8_t(c)));
      }
      return Status::InvalidArgument("topic name '" + std::string(name) + "' contains '" +
                                     std::string(shown) +
                                     "'; only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
  }
  if (!internal && name.substr(0, 2) == "__") {
    return Status::InvalidArgument("topic name '" + std::string(name) +
                                   "' starts with '__', which is reserved for internal topics");
  }
  return Status::OK();
}

std::string CollisionKey(std::string_view name) {
  std::string key(name);
  for (char& c : key) {
    if (c == '.') c = '_';
  }
  return key;
}

Status ValidatePartitionCount(int32_t partitions, int32_t max_partitions) {
  if (partitions < 1 || partitions > max_partitions) {
    return Status::InvalidArgument("partition count " + std::to_string(partitions) +
                                   " is outside [1, " + std::to_string(max_partitions) + "]");
  }
  return Status::OK();
}

Status ValidateReplicationFactor(int32_t replication_factor, size_t available_brokers) {
  if (replication_factor < 1 || static_cast<size_t>(replication_factor) > available_brokers) {
    return Status::InvalidArgument("replication factor " + std::to_string(replication_factor) +
                                   " is outside [1, " + std::to_string(available_brokers) +
                                   "] (the number of available brokers)");
  }
  return Status::OK();
}

}  // namespace rill::broker
