#pragma once

// Partition choice, compatible with Kafka's Java client so keys land where Kafka clients put them.

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

namespace rill::client {

// Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2): seed 0x9747b28c.
int32_t Murmur2(std::string_view data);

// Kafka's toPositive: clears the sign bit (not abs(), which overflows on INT32_MIN).
inline int32_t ToPositive(int32_t x) { return x & 0x7fffffff; }

// The partition of a keyed record: toPositive(murmur2(key)) % num_partitions.
inline int32_t KeyPartition(std::string_view key, int32_t num_partitions) {
  return ToPositive(Murmur2(key)) % num_partitions;
}

// Null-key records stick to one partition per topic until that partition's batch is closed
// (full or sent); then the next batch goes to another partition chosen at random. Not
// thread-safe: the record accumulator calls it under its lock.
class StickyPartitioner {
 public:
  explicit StickyPartitioner(uint64_t seed = std::random_device{}()) : rng_(seed) {}

  // The current sticky partition of `topic`, choosing one if there is none.
  int32_t Partition(const std::string& topic, int32_t num_partitions);
  // Called when the batch of `topic`/`partition` is closed: if it was the sticky partition,
  // a different one (when num_partitions > 1) becomes sticky.
  void OnBatchClosed(const std::string& topic, int32_t partition, int32_t num_partitions);

 private:
  std::unordered_map<std::string, int32_t> sticky_;
  std::mt19937_64 rng_;
};

}  // namespace rill::client
