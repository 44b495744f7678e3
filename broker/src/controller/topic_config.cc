#include "topic_config.h"

#include <charconv>
#include <limits>
#include <optional>

namespace rill::broker {
namespace {

constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// How a key's value is checked: an integer in [min, max], or one of a list of words.
struct Rule {
  TopicConfigDef def;
  bool is_int = true;
  int64_t min = 0;
  int64_t max = kInt64Max;
  std::vector<std::string_view> words;  // allowed values when !is_int
  std::string_view rejected_note;       // extra explanation for a known but unsupported word
};

Rule IntRule(TopicConfigDef def, int64_t min, int64_t max) {
  return Rule{def, true, min, max, {}, {}};
}

Rule WordRule(TopicConfigDef def, std::vector<std::string_view> words,
              std::string_view rejected_note = {}) {
  return Rule{def, false, 0, 0, std::move(words), rejected_note};
}

const std::vector<Rule>& Rules() {
  static const std::vector<Rule> kRules = {
      WordRule(
          {"cleanup.policy", "delete",
           "What happens to old segments: 'delete' removes whole closed segments past retention.ms "
           "or retention.bytes. ('compact' is not supported yet.)"},
          {"delete"}, "log compaction (cleanup.policy=compact) is not supported yet; use 'delete'"),
      IntRule({"flush.interval.ms", "1000",
               "With flush.policy=interval: the longest time in milliseconds between fsyncs of a "
               "partition's log."},
              1, kInt64Max),
      WordRule(
          {"flush.policy", "group",
           "When appends are made durable before they are acknowledged: 'group' (fsync once per "
           "group of appends that arrived during the previous fsync), 'interval' (every "
           "flush.interval.ms; acknowledged before the fsync), or 'none' (page cache only; rely on "
           "replication)."},
          {"group", "interval", "none"}),
      IntRule({"index.interval.bytes", "4096",
               "Bytes of log between two entries of the sparse offset and time indexes."},
              0, kInt32Max),
      IntRule(
          {"max.message.bytes", "1048588",
           "The largest record batch (after compression) the broker accepts for this topic; larger "
           "ones fail with MESSAGE_TOO_LARGE."},
          0, kInt32Max),
      WordRule(
          {"message.timestamp.type", "CreateTime",
           "The timestamp stored with records: 'CreateTime' (the producer's) or 'LogAppendTime' "
           "(the broker's when it appends the batch)."},
          {"CreateTime", "LogAppendTime"}),
      IntRule({"min.insync.replicas", "1",
               "With acks=all, the fewest in-sync replicas (leader included) a write needs; fewer "
               "fail with NOT_ENOUGH_REPLICAS."},
              1, kInt32Max),
      IntRule({"producer.id.expiration.ms", "86400000",
               "How long in milliseconds a partition keeps the state of an idempotent producer "
               "that has not written to it (default 1 day); a producer that writes again after "
               "that starts over with a new sequence check."},
              1, kInt64Max),
      IntRule(
          {"retention.bytes", "-1",
           "The largest size in bytes a partition's log may keep before its oldest closed segments "
           "are deleted; -1 means no size limit."},
          -1, kInt64Max),
      IntRule({"retention.ms", "604800000",
               "How long in milliseconds records are kept before their closed segment is deleted "
               "(default 7 days); -1 means forever."},
              -1, kInt64Max),
      IntRule({"segment.bytes", "1073741824",
               "The size in bytes at which the active segment is closed and a new one begun."},
              100, kInt32Max),
      IntRule({"segment.ms", "604800000",
               "The age in milliseconds after which the active segment is closed even if not full "
               "(default 7 days)."},
              1, kInt64Max),
  };
  return kRules;
}

const Rule* FindRule(std::string_view key) {
  for (const Rule& r : Rules()) {
    if (r.def.name == key) return &r;
  }
  return nullptr;
}

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

const std::vector<TopicConfigDef>& TopicConfigDefs() {
  static const std::vector<TopicConfigDef> kDefs = [] {
    std::vector<TopicConfigDef> defs;
    for (const Rule& r : Rules()) defs.push_back(r.def);
    return defs;
  }();
  return kDefs;
}

Status ValidateTopicConfigEntry(const std::string& key, const std::string& value) {
  const Rule* rule = FindRule(key);
  if (rule == nullptr) {
    std::string known;
    for (const Rule& r : Rules()) {
      if (!known.empty()) known += ", ";
      known += r.def.name;
    }
    return Status::InvalidArgument("unknown topic config '" + key + "' (known: " + known + ")");
  }
  if (rule->is_int) {
    std::optional<int64_t> v = ParseInt(value);
    if (!v || *v < rule->min || *v > rule->max) {
      return Status::InvalidArgument("invalid value '" + value + "' for topic config '" + key +
                                     "': expected an integer in [" + std::to_string(rule->min) +
                                     ", " + std::to_string(rule->max) + "]");
    }
    return Status::OK();
  }
  for (std::string_view w : rule->words) {
    if (w == value) return Status::OK();
  }
  if (!rule->rejected_note.empty() && value == "compact") {
    return Status::InvalidArgument("invalid value '" + value + "' for topic config '" + key +
                                   "': " + std::string(rule->rejected_note));
  }
  std::string allowed;
  for (std::string_view w : rule->words) {
    if (!allowed.empty()) allowed += ", ";
    allowed += w;
  }
  return Status::InvalidArgument("invalid value '" + value + "' for topic config '" + key +
                                 "': expected one of " + allowed);
}

Status ValidateTopicConfigs(const std::map<std::string, std::string>& overrides) {
  for (const auto& [key, value] : overrides) {
    RILL_RETURN_IF_ERROR(ValidateTopicConfigEntry(key, value));
  }
  return Status::OK();
}

std::map<std::string, std::string> EffectiveTopicConfigs(
    const std::map<std::string, std::string>& overrides) {
  std::map<std::string, std::string> out;
  for (const Rule& r : Rules()) {
    auto it = overrides.find(std::string(r.def.name));
    out.emplace(r.def.name, it == overrides.end() ? std::string(r.def.default_value) : it->second);
  }
  return out;
}

std::vector<DescribedTopicConfig> DescribeTopicConfigs(
    const std::map<std::string, std::string>& overrides) {
  std::vector<DescribedTopicConfig> out;
  for (const Rule& r : Rules()) {
    auto it = overrides.find(std::string(r.def.name));
    DescribedTopicConfig d;
    d.name = r.def.name;
    d.is_default = it == overrides.end();
    d.value = d.is_default ? std::string(r.def.default_value) : it->second;
    d.doc = r.def.doc;
    out.push_back(std::move(d));
  }
  return out;
}

Result<TopicConfig> ParseTopicConfig(const std::map<std::string, std::string>& overrides) {
  RILL_RETURN_IF_ERROR(ValidateTopicConfigs(overrides));
  std::map<std::string, std::string> e = EffectiveTopicConfigs(overrides);
  auto num = [&](const char* key) { return *ParseInt(e.at(key)); };
  TopicConfig c;
  c.retention_ms = num("retention.ms");
  c.retention_bytes = num("retention.bytes");
  c.segment_bytes = num("segment.bytes");
  c.segment_ms = num("segment.ms");
  const std::string& fp = e.at("flush.policy");
  c.flush_policy = fp == "group"      ? TopicFlushPolicy::kGroup
                   : fp == "interval" ? TopicFlushPolicy::kInterval
                                      : TopicFlushPolicy::kNone;
  c.flush_interval_ms = num("flush.interval.ms");
  c.max_message_bytes = static_cast<int32_t>(num("max.message.bytes"));
  c.timestamp_type = e.at("message.timestamp.type") == "LogAppendTime"
                         ? TopicTimestampType::kLogAppendTime
                         : TopicTimestampType::kCreateTime;
  c.min_insync_replicas = static_cast<int32_t>(num("min.insync.replicas"));
  c.index_interval_bytes = static_cast<int32_t>(num("index.interval.bytes"));
  c.producer_id_expiration_ms = num("producer.id.expiration.ms");
  return c;
}

}  // namespace rill::broker
