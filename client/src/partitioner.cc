#include "rill/client/partitioner.h"

#include <cstring>

namespace rill::client {

int32_t Murmur2(std::string_view data) {
  // Kafka's implementation works on Java ints; unsigned arithmetic gives the same bits.
  const uint32_t length = static_cast<uint32_t>(data.size());
  constexpr uint32_t kSeed = 0x9747b28c;
  constexpr uint32_t m = 0x5bd1e995;
  constexpr int r = 24;
  uint32_t h = kSeed ^ length;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const uint32_t length4 = length / 4;
  for (uint32_t i = 0; i < length4; ++i) {
    const uint32_t i4 = i * 4;
    uint32_t k = static_cast<uint32_t>(p[i4]) | (static_cast<uint32_t>(p[i4 + 1]) << 8) |
                 (static_cast<uint32_t>(p[i4 + 2]) << 16) |
                 (static_cast<uint32_t>(p[i4 + 3]) << 24);
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }
  const uint32_t tail = length & ~3u;
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(p[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(p[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(p[tail]);
      h *= m;
  }
  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return static_cast<int32_t>(h);
}

int32_t StickyPartitioner::Partition(const std::string& topic, int32_t num_partitions) {
  auto it = sticky_.find(topic);
  if (it != sticky_.end() && it->second < num_partitions) return it->second;
  const auto p = static_cast<int32_t>(rng_() % static_cast<uint64_t>(num_partitions));
  sticky_[topic] = p;
  return p;
}

void StickyPartitioner::OnBatchClosed(const std::string& topic, int32_t partition,
                                      int32_t num_partitions) {
  auto it = sticky_.find(topic);
  if (it == sticky_.end() || it->second != partition) return;
  if (num_partitions <= 1) return;
  // Any partition but the current one, uniformly.
  auto next = static_cast<int32_t>(rng_() % static_cast<uint64_t>(num_partitions - 1));
  if (next >= partition) ++next;
  it->second = next;
}

}  // namespace rill::client
