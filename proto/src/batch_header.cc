#include "rill/proto/batch_header.h"

#include <string>

#include "rill/proto/crc32c.h"
#include "rill/proto/endian.h"

namespace rill::batch {

Header DecodeHeader(const void* data) {
  const auto* p = static_cast<const char*>(data);
  Header h;
  h.base_offset = static_cast<int64_t>(be::Load64(p + kBaseOffsetPos));
  h.batch_length = static_cast<int32_t>(be::Load32(p + kLengthPos));
  h.partition_leader_epoch = static_cast<int32_t>(be::Load32(p + kLeaderEpochPos));
  h.magic = static_cast<int8_t>(p[kMagicPos]);
  h.crc = be::Load32(p + kCrcPos);
  h.attributes = static_cast<int16_t>(be::Load16(p + kAttributesPos));
  h.last_offset_delta = static_cast<int32_t>(be::Load32(p + kLastOffsetDeltaPos));
  h.base_timestamp = static_cast<int64_t>(be::Load64(p + kBaseTimestampPos));
  h.max_timestamp = static_cast<int64_t>(be::Load64(p + kMaxTimestampPos));
  h.producer_id = static_cast<int64_t>(be::Load64(p + kProducerIdPos));
  h.producer_epoch = static_cast<int16_t>(be::Load16(p + kProducerEpochPos));
  h.base_sequence = static_cast<int32_t>(be::Load32(p + kBaseSequencePos));
  h.record_count = static_cast<int32_t>(be::Load32(p + kRecordCountPos));
  return h;
}

Result<Header> ParseHeader(std::string_view bytes) {
  if (bytes.size() < kHeaderSize) {
    return Status::Corruption("truncated batch header: " + std::to_string(bytes.size()) +
                              " bytes, need " + std::to_string(kHeaderSize));
  }
  Header h = DecodeHeader(bytes.data());
  if (h.magic != kMagic) {
    return Status::Corruption("unsupported batch magic " + std::to_string(h.magic) +
                              " (only magic 2 is supported)");
  }
  if (h.batch_length < static_cast<int32_t>(kHeaderSize - kLogOverhead) ||
      h.batch_length > kMaxBatchSize) {
    return Status::Corruption("bad batch length " + std::to_string(h.batch_length));
  }
  if (bytes.size() < h.total_size()) {
    return Status::Corruption("truncated batch: header says " + std::to_string(h.total_size()) +
                              " bytes, only " + std::to_string(bytes.size()) + " present");
  }
  if (h.last_offset_delta < 0) {
    return Status::Corruption("negative lastOffsetDelta " + std::to_string(h.last_offset_delta));
  }
  if (h.record_count < 0) {
    return Status::Corruption("negative record count " + std::to_string(h.record_count));
  }
  return h;
}

bool CrcMatches(std::string_view batch) {
  uint32_t stored = be::Load32(batch.data() + kCrcPos);
  return crc32c::Value(batch.data() + kAttributesPos, batch.size() - kAttributesPos) == stored;
}

void SetProducerFields(std::span<char> batch, int64_t producer_id, int16_t producer_epoch,
                       int32_t base_sequence) {
  be::Store64(batch.data() + kProducerIdPos, static_cast<uint64_t>(producer_id));
  be::Store16(batch.data() + kProducerEpochPos, static_cast<uint16_t>(producer_epoch));
  be::Store32(batch.data() + kBaseSequencePos, static_cast<uint32_t>(base_sequence));
  UpdateCrc(batch);
}

void UpdateCrc(std::span<char> batch) {
  uint32_t crc = crc32c::Value(batch.data() + kAttributesPos, batch.size() - kAttributesPos);
  be::Store32(batch.data() + kCrcPos, crc);
}

Result<Header> Validate(std::string_view batch) {
  auto h = ParseHeader(batch);
  if (!h.ok()) return h;
  if (h->total_size() != batch.size()) {
    return Status::Corruption("batch size mismatch: header says " +
                              std::to_string(h->total_size()) + ", got " +
                              std::to_string(batch.size()));
  }
  if (!CrcMatches(batch)) return Status::Corruption("batch CRC32C mismatch");
  return h;
}

void SetBaseOffset(std::span<char> batch, int64_t base_offset) {
  be::Store64(batch.data() + kBaseOffsetPos, static_cast<uint64_t>(base_offset));
}

void SetPartitionLeaderEpoch(std::span<char> batch, int32_t epoch) {
  be::Store32(batch.data() + kLeaderEpochPos, static_cast<uint32_t>(epoch));
}

void SetLogAppendTime(std::span<char> batch, int64_t timestamp_ms) {
  auto attrs = static_cast<int16_t>(be::Load16(batch.data() + kAttributesPos));
  attrs |= kTimestampTypeBit;
  be::Store16(batch.data() + kAttributesPos, static_cast<uint16_t>(attrs));
  be::Store64(batch.data() + kMaxTimestampPos, static_cast<uint64_t>(timestamp_ms));
  UpdateCrc(batch);
}

bool BatchIterator::Next() {
  if (!status_.ok() || next_ >= bytes_.size()) return false;
  pos_ = next_;
  auto h = ParseHeader(bytes_.substr(pos_));
  if (!h.ok()) {
    status_ = Status(h.status().code(),
                     h.status().message() + " at position " + std::to_string(pos_));
    return false;
  }
  current_ = bytes_.substr(pos_, h->total_size());
  if (verify_crc_ && !CrcMatches(current_)) {
    status_ = Status::Corruption("batch CRC32C mismatch at position " + std::to_string(pos_));
    return false;
  }
  header_ = *h;
  next_ = pos_ + current_.size();
  return true;
}

}  // namespace rill::batch
