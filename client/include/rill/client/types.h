#pragma once

// The values the client library passes to and from its users: records, their metadata and the
// topic-partition pair. Plain structs, no behaviour.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rill/proto/record_batch.h"
#include "rill/proto/status.h"

namespace rill::client {

// A record header: a non-null key and an optional value (Kafka's rules).
using Header = batch::RecordHeader;

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  bool operator==(const TopicPartition&) const = default;
  auto operator<=>(const TopicPartition&) const = default;
  std::string ToString() const { return topic + "-" + std::to_string(partition); }
};

struct TopicPartitionHash {
  size_t operator()(const TopicPartition& tp) const noexcept {
    return std::hash<std::string>()(tp.topic) * 31 + static_cast<size_t>(tp.partition);
  }
};

// What a producer sends. Unset `partition`: the key's murmur2 hash picks it (Kafka's rule), or
// the sticky partitioner when the key is null too. Unset `timestamp_ms`: the send time.
struct ProducerRecord {
  std::string topic;
  std::optional<int32_t> partition;
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<Header> headers;
  std::optional<int64_t> timestamp_ms;
};

// Where an acknowledged record landed. offset is -1 with acks=0 (the broker does not answer).
struct RecordMetadata {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  int64_t timestamp_ms = -1;  // the record's timestamp, or the log-append time if the topic uses it
};

// Called once per record, on the producer's I/O thread: keep it short and do not block in it.
using SendCallback = std::function<void(const Result<RecordMetadata>&)>;

// A consumed record. key, value and header views point into `storage`, which the record shares
// with the other records of its batch: they stay valid as long as any copy of the record lives.
struct ConsumerRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  std::vector<std::pair<std::string_view, std::optional<std::string_view>>> headers;
  std::shared_ptr<const std::string> storage;
};

}  // namespace rill::client
