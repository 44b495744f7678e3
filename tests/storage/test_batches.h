#pragma once

// Test helpers: RecordBatch v2 batches built by hand (61-byte header + opaque payload + CRC),
// for the paths that never decode records, and batches of real records with chosen timestamps
// (MakeRecordBatch), for the lookup by timestamp, which decodes the batch holding its answer.

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "rill/proto/batch_header.h"
#include "rill/proto/endian.h"
#include "rill/proto/record_batch.h"

namespace rill::storage::testing {

inline std::string MakeBatch(int32_t record_count, size_t payload_bytes, int64_t max_timestamp,
                             uint64_t fill_seed = 0) {
  std::string b(batch::kHeaderSize + payload_bytes, '\0');
  char* p = b.data();
  be::Store64(p + batch::kBaseOffsetPos, 0);
  be::Store32(p + batch::kLengthPos, static_cast<uint32_t>(b.size() - batch::kLogOverhead));
  be::Store32(p + batch::kLeaderEpochPos, 0);
  p[batch::kMagicPos] = batch::kMagic;
  be::Store16(p + batch::kAttributesPos, 0);
  be::Store32(p + batch::kLastOffsetDeltaPos, static_cast<uint32_t>(record_count - 1));
  be::Store64(p + batch::kBaseTimestampPos, static_cast<uint64_t>(max_timestamp));
  be::Store64(p + batch::kMaxTimestampPos, static_cast<uint64_t>(max_timestamp));
  be::Store64(p + batch::kProducerIdPos, static_cast<uint64_t>(-1));
  be::Store16(p + batch::kProducerEpochPos, static_cast<uint16_t>(-1));
  be::Store32(p + batch::kBaseSequencePos, static_cast<uint32_t>(-1));
  be::Store32(p + batch::kRecordCountPos, static_cast<uint32_t>(record_count));
  std::mt19937_64 rng(fill_seed);
  for (size_t i = batch::kHeaderSize; i < b.size(); ++i) b[i] = static_cast<char>(rng());
  batch::UpdateCrc(std::span<char>(b.data(), b.size()));
  return b;
}

// One batch of records whose timestamps are `timestamps` in order (record i: key "k<i>"), so
// record i gets timestampDelta timestamps[i] - timestamps[0]; compressed with `codec`. With
// `log_append_time` >= 0 the batch is stamped LogAppendTime with that time, as the broker does.
inline std::string MakeRecordBatch(const std::vector<int64_t>& timestamps,
                                   batch::Compression codec = batch::Compression::kNone,
                                   int64_t log_append_time = -1) {
  batch::BatchBuilder builder(codec);
  for (size_t i = 0; i < timestamps.size(); ++i) {
    std::string key = "k" + std::to_string(i);
    Status st = builder.Add(std::string_view(key), std::string_view("value of " + key),
                            timestamps[i]);
    if (!st.ok()) return {};
  }
  auto b = builder.Build();
  if (!b.ok()) return {};
  std::string out = std::move(b).value();
  if (log_append_time >= 0) {
    batch::SetLogAppendTime(std::span<char>(out.data(), out.size()), log_append_time);
  }
  return out;
}

// Seed for randomised tests: RILL_SEED when set, else a fresh one.
inline uint64_t TestSeed() {
  if (const char* s = std::getenv("RILL_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32);
}

}  // namespace rill::storage::testing
