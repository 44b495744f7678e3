#pragma once

// Topic configuration: the keys a Kafka user expects, their documented defaults and validation.
// A topic stores only its overrides (TopicMetadata::configs); the effective configuration is the
// defaults below with the overrides on top.
//
// Thread-safety: every function is pure and may be called from any thread.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "rill/proto/status.h"

namespace rill::broker {

// One config key: its name, default value (as text) and documentation.
struct TopicConfigDef {
  std::string_view name;
  std::string_view default_value;
  std::string_view doc;
};

// Every known key, in a stable order (the order Describe returns them).
const std::vector<TopicConfigDef>& TopicConfigDefs();

// InvalidArgument naming the key (and the value and what was expected) for an unknown key or a
// bad value; OK when every entry is valid. Also checks cross-key rules
// (flush.interval.ms is used only with flush.policy=interval, so any positive value is fine).
Status ValidateTopicConfigEntry(const std::string& key, const std::string& value);
Status ValidateTopicConfigs(const std::map<std::string, std::string>& overrides);

// The full map: every key, its override if present, else its default. Unknown override keys are
// dropped (they cannot be stored: Validate rejects them).
std::map<std::string, std::string> EffectiveTopicConfigs(
    const std::map<std::string, std::string>& overrides);

struct DescribedTopicConfig {
  std::string name;
  std::string value;
  bool is_default = true;
  std::string doc;
};
std::vector<DescribedTopicConfig> DescribeTopicConfigs(
    const std::map<std::string, std::string>& overrides);

enum class TopicFlushPolicy : uint8_t { kGroup, kInterval, kNone };
enum class TopicTimestampType : uint8_t { kCreateTime, kLogAppendTime };

// The effective configuration as typed values.
struct TopicConfig {
  int64_t retention_ms = 604800000;  // -1 = keep forever
  int64_t retention_bytes = -1;      // per partition; -1 = no size limit
  int64_t segment_bytes = 1073741824;
  int64_t segment_ms = 604800000;
  int64_t producer_id_expiration_ms = 86400000;
  TopicFlushPolicy flush_policy = TopicFlushPolicy::kGroup;
  int64_t flush_interval_ms = 1000;
  int32_t max_message_bytes = 1048588;
  TopicTimestampType timestamp_type = TopicTimestampType::kCreateTime;
  int32_t min_insync_replicas = 1;
  int32_t index_interval_bytes = 4096;
};

// Validates `overrides` and returns the typed effective configuration.
Result<TopicConfig> ParseTopicConfig(const std::map<std::string, std::string>& overrides);

}  // namespace rill::broker
