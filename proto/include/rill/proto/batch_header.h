#pragma once

// The 61-byte header of a Kafka RecordBatch v2 (magic 2), and the operations the broker and the
// log perform on stored batches without decoding their records: parse and validate the header,
// check the CRC, stamp the base offset and partition leader epoch in place.
//
// Layout (big-endian), see docs/FORMAT.md:
//   0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8 |
//   17 crc u32 | 21 attributes i16 | 23 lastOffsetDelta i32 | 27 baseTimestamp i64 |
//   35 maxTimestamp i64 | 43 producerId i64 | 51 producerEpoch i16 | 53 baseSequence i32 |
//   57 recordCount i32 | 61 records...
// batchLength counts the bytes after the batchLength field (total size = 12 + batchLength).
// The CRC32C covers bytes [21, end): attributes through the last record, so baseOffset and
// partitionLeaderEpoch can be rewritten without recomputing it.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "rill/proto/compression.h"
#include "rill/proto/status.h"
#include "rill/proto/types.h"

namespace rill::batch {

inline constexpr size_t kBaseOffsetPos = 0;
inline constexpr size_t kLengthPos = 8;
inline constexpr size_t kLeaderEpochPos = 12;
inline constexpr size_t kMagicPos = 16;
inline constexpr size_t kCrcPos = 17;
inline constexpr size_t kAttributesPos = 21;
inline constexpr size_t kLastOffsetDeltaPos = 23;
inline constexpr size_t kBaseTimestampPos = 27;
inline constexpr size_t kMaxTimestampPos = 35;
inline constexpr size_t kProducerIdPos = 43;
inline constexpr size_t kProducerEpochPos = 51;
inline constexpr size_t kBaseSequencePos = 53;
inline constexpr size_t kRecordCountPos = 57;
inline constexpr size_t kHeaderSize = 61;
// Bytes needed to know a batch's total size: baseOffset + batchLength.
inline constexpr size_t kLogOverhead = 12;
inline constexpr int8_t kMagic = 2;
// Hard upper bound on one batch; configurable limits (max.message.bytes) sit below it.
inline constexpr int32_t kMaxBatchSize = 256 << 20;

// attributes bits
inline constexpr int16_t kCompressionMask = 0x07;
inline constexpr int16_t kTimestampTypeBit = 0x08;  // 1 = log append time
inline constexpr int16_t kTransactionalBit = 0x10;
inline constexpr int16_t kControlBit = 0x20;

struct Header {
  int64_t base_offset;
  int32_t batch_length;  // bytes after the length field
  int32_t partition_leader_epoch;
  int8_t magic;
  uint32_t crc;
  int16_t attributes;
  int32_t last_offset_delta;
  int64_t base_timestamp;
  int64_t max_timestamp;
  int64_t producer_id;
  int16_t producer_epoch;
  int32_t base_sequence;
  int32_t record_count;

  size_t total_size() const { return kLogOverhead + static_cast<size_t>(batch_length); }
  int64_t last_offset() const { return base_offset + last_offset_delta; }
  Compression compression() const { return static_cast<Compression>(attributes & kCompressionMask); }
};

// Decodes the header fields from at least kHeaderSize bytes. Checks nothing.
Header DecodeHeader(const void* p);

// Parses and validates the header of the batch that starts at bytes[0]: enough bytes for the
// header, magic 2, batchLength within [kHeaderSize - kLogOverhead, kMaxBatchSize], the whole
// batch present, lastOffsetDelta >= 0, recordCount >= 0. Does not check the CRC.
Result<Header> ParseHeader(std::string_view bytes);

// CRC32C of bytes [kAttributesPos, total) compared with the stored crc.
// `bytes` must hold exactly one whole batch (use ParseHeader first).
bool CrcMatches(std::string_view batch);
// Computes and stores the CRC of a whole batch.
void UpdateCrc(std::span<char> batch);

// Full validation of one batch: ParseHeader + exact size + CRC. Corruption on any failure,
// with a message naming the check that failed.
Result<Header> Validate(std::string_view batch);

// Rewrites fields outside the CRC-covered range; the CRC stays valid.
void SetBaseOffset(std::span<char> batch, int64_t base_offset);
void SetPartitionLeaderEpoch(std::span<char> batch, int32_t epoch);
// An idempotent producer's fields (producerId, producerEpoch, baseSequence), then the CRC.
void SetProducerFields(std::span<char> batch, int64_t producer_id, int16_t producer_epoch,
                       int32_t base_sequence);
// Log-append time: sets the timestamp-type bit and maxTimestamp, then recomputes the CRC.
void SetLogAppendTime(std::span<char> batch, int64_t timestamp_ms);

// Walks a byte range holding consecutive whole batches (a fetch response, a segment slice).
// Next() returns false at the end; status() is not OK if the range ended in a malformed batch.
class BatchIterator {
 public:
  explicit BatchIterator(std::string_view bytes, bool verify_crc = true)
      : bytes_(bytes), verify_crc_(verify_crc) {}
  bool Next();
  const Header& header() const { return header_; }
  std::string_view batch() const { return current_; }
  size_t position() const { return pos_; }  // position of the current batch in the range
  const Status& status() const { return status_; }

 private:
  std::string_view bytes_;
  bool verify_crc_;
  size_t pos_ = 0;
  size_t next_ = 0;
  Header header_{};
  std::string_view current_;
  Status status_;
};

}  // namespace rill::batch
