#pragma once

// Encoding and decoding the records of a Kafka RecordBatch v2 (see docs/FORMAT.md).
//
// BatchBuilder appends records into one buffer and Build()s a complete, CRC-valid batch with
// baseOffset 0 and partitionLeaderEpoch -1 (the broker stamps both in place, see
// batch_header.h). BatchReader validates a batch (magic, lengths, CRC, codec), decompresses it
// within a bound, and iterates its records as views. Every malformed input yields a Corruption
// (or ResourceExhausted for the decompression bound) Status naming what is wrong; no input can
// make the reader read out of bounds, overflow or crash.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rill/proto/batch_header.h"
#include "rill/proto/compression.h"
#include "rill/proto/status.h"

namespace rill::batch {

// A record header. Kafka allows null header values but not null header keys.
struct RecordHeader {
  std::string key;
  std::optional<std::string> value;
  bool operator==(const RecordHeader&) const = default;
};

// A record header by reference, for adding records without copying header bytes first.
struct RecordHeaderView {
  std::string_view key;
  std::optional<std::string_view> value;
};

// An owned record, as a producer hands it over or DecodeRecords returns it.
struct Record {
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<RecordHeader> headers;
  int64_t timestamp_ms = 0;
  bool operator==(const Record&) const = default;
};

// Builds one RecordBatch v2. Not thread-safe. Records are encoded into a single growing buffer
// as they are added (no per-record allocation beyond the buffer's amortised growth); Build()
// compresses the records section if a codec is set and fills in the header.
class BatchBuilder {
 public:
  explicit BatchBuilder(Compression compression = Compression::kNone, int64_t producer_id = -1,
                        int16_t producer_epoch = -1, int32_t base_sequence = -1);

  // Appends a record; its offset delta is its index in the batch. Timestamps may go backwards
  // (deltas are signed). Fails with ResourceExhausted if the batch would exceed kMaxBatchSize
  // bytes or INT32_MAX records; the builder is unchanged then.
  Status Add(std::optional<std::string_view> key, std::optional<std::string_view> value,
             int64_t timestamp_ms, std::span<const RecordHeader> headers = {});
  Status Add(std::optional<std::string_view> key, std::optional<std::string_view> value,
             int64_t timestamp_ms, std::span<const RecordHeaderView> headers);
  Status Add(const Record& record);

  size_t record_count() const { return count_; }
  // Header plus uncompressed record bytes so far: the size a batch.size decision compares.
  size_t estimated_size() const { return buf_.size(); }
  // The buffer's capacity: what the batch holds of memory, which a producer accounts for.
  size_t capacity() const { return buf_.capacity(); }
  // Grows the buffer to exactly `bytes` of capacity (std::string's reserve may round up to
  // twice the old capacity); no-op if it has that much.
  void Reserve(size_t bytes);
  // Drops the records added so far and gives up the buffer (the builder has none until Recycle
  // or the next Add), for a producer to recycle.
  std::string TakeBuffer();
  Compression compression() const { return compression_; }
  // The producer fields of the batches built from now on (an idempotent producer sets them
  // when it assigns the batch its sequence).
  void SetProducer(int64_t producer_id, int16_t producer_epoch, int32_t base_sequence) {
    producer_id_ = producer_id;
    producer_epoch_ = producer_epoch;
    base_sequence_ = base_sequence;
  }

  // What Build leaves the builder for the next batch: a buffer reserved for one as large as
  // this one (a builder reused batch after batch), or none (a builder used once: its buffer
  // left with the batch, or with compression was freed, and Recycle or the first Add gives it
  // another).
  enum class Next { kReserve, kNoBuffer };
  // Returns the finished batch and resets the builder for the next one (same codec and
  // producer fields). InvalidArgument for an empty batch; compression failures as Failed.
  Result<std::string> Build(Next next = Next::kReserve);
  // Drops the records added so far.
  void Reset();
  // Drops the records added so far and builds the next batch in `buffer`'s storage (its
  // contents are dropped): a producer recycles the buffers of batches it sent.
  void Recycle(std::string buffer);

 private:
  template <typename H>
  Status AddRecord(std::optional<std::string_view> key, std::optional<std::string_view> value,
                   int64_t timestamp_ms, std::span<const H> headers);

  Compression compression_;
  int64_t producer_id_;
  int16_t producer_epoch_;
  int32_t base_sequence_;
  std::string buf_;  // kHeaderSize placeholder bytes, then the encoded records
  size_t count_ = 0;
  int64_t base_timestamp_ = 0;
  int64_t max_timestamp_ = 0;
};

// A record inside a batch being read. The views point into the batch passed to
// BatchReader::Open (uncompressed) or into the reader's own buffer (compressed): valid until the
// reader is destroyed or moved.
struct RecordView {
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  std::vector<std::pair<std::string_view, std::optional<std::string_view>>> headers;
};

struct DecodeOptions {
  // Bound on the records section after decompression; larger batches fail ResourceExhausted.
  size_t max_decompressed_bytes = 64u << 20;
  bool verify_crc = true;
};

// Iterates the records of one batch. Not thread-safe. The batch bytes passed to Open must stay
// alive while the reader is used.
class BatchReader {
 public:
  // Validates the batch: exactly one whole batch (no trailing bytes), magic 2, lengths, CRC
  // (if options.verify_crc), a known codec; decompresses the records if needed.
  static Result<BatchReader> Open(std::string_view batch, const DecodeOptions& options = {});

  const Header& header() const { return header_; }

  // Decodes the next record into *out (reusing its headers vector). Returns false after the last
  // record, once it has checked that the batch held exactly recordCount records, that offset
  // deltas increase and stay within lastOffsetDelta, and that no bytes are left over. Any
  // malformation is a Corruption naming the record index and the field. After an error or the
  // end, further calls return the same result.
  Result<bool> Next(RecordView* out);

 private:
  BatchReader() = default;
  std::string_view records() const {
    return compressed_ ? std::string_view(decompressed_) : raw_records_;
  }

  Header header_{};
  bool compressed_ = false;
  std::string_view raw_records_;
  std::string decompressed_;
  size_t pos_ = 0;
  int32_t index_ = 0;
  int64_t last_delta_ = -1;
  bool done_ = false;
  Status error_;
};

// Decodes every record of one batch into owned Records.
Result<std::vector<Record>> DecodeRecords(std::string_view batch,
                                          const DecodeOptions& options = {});

}  // namespace rill::batch
