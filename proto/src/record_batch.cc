#include "rill/proto/record_batch.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "rill/proto/crc32c.h"
#include "rill/proto/endian.h"
#include "rill/proto/varint.h"

namespace rill::batch {
namespace {

// Signed arithmetic that wraps instead of overflowing: deltas are encoded modulo 2^64 so any
// pair of timestamps round-trips, and hostile offsets or deltas cannot cause UB.
inline int64_t WrapSub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
inline int64_t WrapAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

inline size_t BytesFieldSize(std::optional<std::string_view> s) {
  return s ? varint::VarintSize(static_cast<int32_t>(s->size())) + s->size() : 1;
}
inline char* PutBytesField(char* p, std::optional<std::string_view> s) {
  if (!s) return varint::EncodeVarint(p, -1);
  p = varint::EncodeVarint(p, static_cast<int32_t>(s->size()));
  if (!s->empty()) std::memcpy(p, s->data(), s->size());
  return p + s->size();
}

inline std::string_view HeaderKey(const RecordHeader& h) { return h.key; }
inline std::string_view HeaderKey(const RecordHeaderView& h) { return h.key; }
inline std::optional<std::string_view> HeaderValue(const RecordHeader& h) {
  if (!h.value) return std::nullopt;
  return std::string_view(*h.value);
}
inline std::optional<std::string_view> HeaderValue(const RecordHeaderView& h) { return h.value; }

constexpr size_t kMaxFieldSize = static_cast<size_t>(kMaxBatchSize);

}  // namespace

// ---------------------------------------------------------------- BatchBuilder

BatchBuilder::BatchBuilder(Compression compression, int64_t producer_id, int16_t producer_epoch,
                           int32_t base_sequence)
    : compression_(compression),
      producer_id_(producer_id),
      producer_epoch_(producer_epoch),
      base_sequence_(base_sequence) {
  buf_.resize(kHeaderSize);
}

void BatchBuilder::Reset() {
  buf_.resize(kHeaderSize);
  count_ = 0;
  base_timestamp_ = 0;
  max_timestamp_ = 0;
}

void BatchBuilder::Recycle(std::string buffer) {
  buf_ = std::move(buffer);
  buf_.clear();
  Reset();
}

void BatchBuilder::Reserve(size_t bytes) {
  if (bytes <= buf_.capacity()) return;
  std::string grown;
  grown.reserve(bytes);  // from an empty string: exactly `bytes`
  grown.append(buf_);
  buf_.swap(grown);
}

std::string BatchBuilder::TakeBuffer() {
  std::string out = std::move(buf_);
  buf_ = std::string();
  count_ = 0;
  base_timestamp_ = 0;
  max_timestamp_ = 0;
  return out;
}

Status BatchBuilder::Add(const Record& r) {
  // Headers are passed as a span of owned RecordHeaders: no conversion needed.
  std::optional<std::string_view> key, value;
  if (r.key) key = *r.key;
  if (r.value) value = *r.value;
  return Add(key, value, r.timestamp_ms, r.headers);
}

Status BatchBuilder::Add(std::optional<std::string_view> key, std::optional<std::string_view> value,
                         int64_t timestamp_ms, std::span<const RecordHeader> headers) {
  return AddRecord(key, value, timestamp_ms, headers);
}

Status BatchBuilder::Add(std::optional<std::string_view> key, std::optional<std::string_view> value,
                         int64_t timestamp_ms, std::span<const RecordHeaderView> headers) {
  return AddRecord(key, value, timestamp_ms, headers);
}

template <typename H>
Status BatchBuilder::AddRecord(std::optional<std::string_view> key,
                               std::optional<std::string_view> value, int64_t timestamp_ms,
                               std::span<const H> headers) {
  if (count_ >= static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return Status::ResourceExhausted("batch already holds INT32_MAX records");
  }
  if ((key && key->size() > kMaxFieldSize) || (value && value->size() > kMaxFieldSize) ||
      headers.size() > kMaxFieldSize) {
    return Status::ResourceExhausted("record field larger than the maximum batch size");
  }
  const int64_t ts_delta = count_ == 0 ? 0 : WrapSub(timestamp_ms, base_timestamp_);
  const auto offset_delta = static_cast<int32_t>(count_);

  size_t body = 1 + varint::VarlongSize(ts_delta) + varint::VarintSize(offset_delta) +
                BytesFieldSize(key) + BytesFieldSize(value) +
                varint::VarintSize(static_cast<int32_t>(headers.size()));
  for (const H& h : headers) {
    std::string_view hk = HeaderKey(h);
    std::optional<std::string_view> hv = HeaderValue(h);
    if (hk.size() > kMaxFieldSize || (hv && hv->size() > kMaxFieldSize)) {
      return Status::ResourceExhausted("record header larger than the maximum batch size");
    }
    body += BytesFieldSize(hk) + BytesFieldSize(hv);
  }
  if (body > kMaxFieldSize ||
      buf_.size() + varint::kMaxVarintBytes + body > static_cast<size_t>(kMaxBatchSize)) {
    return Status::ResourceExhausted("record would make the batch exceed " +
                                     std::to_string(kMaxBatchSize) + " bytes");
  }

  if (buf_.size() < kHeaderSize) buf_.resize(kHeaderSize);  // after Build(Next::kNoBuffer)
  const size_t at = buf_.size();
  const size_t total = varint::VarintSize(static_cast<int32_t>(body)) + body;
  buf_.resize(at + total);
  char* p = buf_.data() + at;
  p = varint::EncodeVarint(p, static_cast<int32_t>(body));
  *p++ = 0;  // record attributes: unused
  p = varint::EncodeVarlong(p, ts_delta);
  p = varint::EncodeVarint(p, offset_delta);
  p = PutBytesField(p, key);
  p = PutBytesField(p, value);
  p = varint::EncodeVarint(p, static_cast<int32_t>(headers.size()));
  for (const H& h : headers) {
    p = PutBytesField(p, HeaderKey(h));
    p = PutBytesField(p, HeaderValue(h));
  }
  RILL_ASSERT(p == buf_.data() + at + total, "record size miscomputed: %zu vs %zu",
              static_cast<size_t>(p - (buf_.data() + at)), total);

  if (count_ == 0) {
    base_timestamp_ = timestamp_ms;
    max_timestamp_ = timestamp_ms;
  } else if (timestamp_ms > max_timestamp_) {
    max_timestamp_ = timestamp_ms;
  }
  ++count_;
  return Status::OK();
}

Result<std::string> BatchBuilder::Build(Next next) {
  if (count_ == 0) return Status::InvalidArgument("cannot build an empty batch");
  std::string out;
  if (compression_ == Compression::kNone) {
    out = std::move(buf_);
  } else {
    RILL_ASSIGN_OR_RETURN(std::string compressed,
                          Compress(compression_, std::string_view(buf_).substr(kHeaderSize)));
    out.reserve(kHeaderSize + compressed.size());
    out.resize(kHeaderSize);
    out.append(compressed);
  }
  if (out.size() > static_cast<size_t>(kMaxBatchSize) + kLogOverhead) {
    Reset();
    return Status::ResourceExhausted("compressed batch exceeds " + std::to_string(kMaxBatchSize) +
                                     " bytes");
  }
  char* p = out.data();
  be::Store64(p + kBaseOffsetPos, 0);
  be::Store32(p + kLengthPos, static_cast<uint32_t>(out.size() - kLogOverhead));
  be::Store32(p + kLeaderEpochPos, static_cast<uint32_t>(-1));
  p[kMagicPos] = kMagic;
  be::Store16(p + kAttributesPos, static_cast<uint16_t>(compression_));
  be::Store32(p + kLastOffsetDeltaPos, static_cast<uint32_t>(count_ - 1));
  be::Store64(p + kBaseTimestampPos, static_cast<uint64_t>(base_timestamp_));
  be::Store64(p + kMaxTimestampPos, static_cast<uint64_t>(max_timestamp_));
  be::Store64(p + kProducerIdPos, static_cast<uint64_t>(producer_id_));
  be::Store16(p + kProducerEpochPos, static_cast<uint16_t>(producer_epoch_));
  be::Store32(p + kBaseSequencePos, static_cast<uint32_t>(base_sequence_));
  be::Store32(p + kRecordCountPos, static_cast<uint32_t>(count_));
  UpdateCrc(std::span<char>(out.data(), out.size()));
  count_ = 0;
  base_timestamp_ = 0;
  max_timestamp_ = 0;
  if (compression_ != Compression::kNone && next == Next::kReserve) {
    buf_.resize(kHeaderSize);
  } else if (next == Next::kReserve) {
    // The buffer moved out with the batch; the next batch is likely as large as this one.
    buf_ = std::string();
    buf_.reserve(out.size());
    buf_.resize(kHeaderSize);
  } else {
    buf_ = std::string();  // empty: the next Add (or Recycle) gives it a buffer
  }
  return out;
}

// ---------------------------------------------------------------- BatchReader

Result<BatchReader> BatchReader::Open(std::string_view batch, const DecodeOptions& options) {
  RILL_ASSIGN_OR_RETURN(Header h, ParseHeader(batch));
  if (h.total_size() != batch.size()) {
    return Status::Corruption("trailing " + std::to_string(batch.size() - h.total_size()) +
                              " bytes after the batch (batchLength " +
                              std::to_string(h.batch_length) + ")");
  }
  if (options.verify_crc && !CrcMatches(batch)) {
    uint32_t computed = crc32c::Value(batch.data() + kAttributesPos, batch.size() - kAttributesPos);
    return Status::Corruption("batch CRC32C mismatch: stored " + std::to_string(h.crc) +
                              ", computed " + std::to_string(computed));
  }
  const int codec = h.attributes & kCompressionMask;
  if (codec > static_cast<int>(Compression::kZstd)) {
    return Status::Corruption("unknown compression codec " + std::to_string(codec) +
                              " in batch attributes");
  }
  if (static_cast<int64_t>(h.record_count) > static_cast<int64_t>(h.last_offset_delta) + 1) {
    return Status::Corruption("recordCount " + std::to_string(h.record_count) +
                              " exceeds lastOffsetDelta + 1 (" +
                              std::to_string(int64_t{h.last_offset_delta} + 1) + ")");
  }
  BatchReader r;
  r.header_ = h;
  std::string_view body = batch.substr(kHeaderSize);
  if (codec == static_cast<int>(Compression::kNone)) {
    r.raw_records_ = body;
  } else {
    auto d = Decompress(static_cast<Compression>(codec), body, options.max_decompressed_bytes);
    if (!d.ok()) {
      return Status(d.status().code(), "records section: " + d.status().message());
    }
    r.decompressed_ = std::move(d).value();
    r.compressed_ = true;
  }
  return r;
}

Result<bool> BatchReader::Next(RecordView* out) {
  if (!error_.ok()) return error_;
  if (done_) return false;
  const std::string_view recs = records();
  const char* const base = recs.data();
  const char* const end = base + recs.size();
  const char* p = base + pos_;
  const int32_t i = index_;

  auto fail = [&](const std::string& what) -> Status {
    error_ = Status::Corruption("record " + std::to_string(i) + ": " + what +
                                " (records section offset " + std::to_string(pos_) + ")");
    return error_;
  };

  if (p == end) {
    if (index_ != header_.record_count) {
      error_ = Status::Corruption("batch holds " + std::to_string(index_) +
                                  " records but recordCount says " +
                                  std::to_string(header_.record_count));
      return error_;
    }
    done_ = true;
    return false;
  }
  if (index_ >= header_.record_count) {
    error_ =
        Status::Corruption(std::to_string(end - p) + " bytes left after the " +
                           std::to_string(header_.record_count) + " records recordCount announces");
    return error_;
  }

  int32_t length;
  p = varint::DecodeVarint(p, end, &length);
  if (p == nullptr) return fail("bad or truncated length varint");
  if (length < 0) return fail("negative record length " + std::to_string(length));
  if (static_cast<size_t>(length) > static_cast<size_t>(end - p)) {
    return fail("record length " + std::to_string(length) + " overruns the batch (" +
                std::to_string(end - p) + " bytes left)");
  }
  const char* const rec_end = p + length;

  if (p == rec_end) return fail("truncated: missing attributes");
  ++p;  // record attributes: unused in magic 2
  int64_t ts_delta;
  p = varint::DecodeVarlong(p, rec_end, &ts_delta);
  if (p == nullptr) return fail("bad or truncated timestampDelta varlong");
  int32_t offset_delta;
  p = varint::DecodeVarint(p, rec_end, &offset_delta);
  if (p == nullptr) return fail("bad or truncated offsetDelta varint");
  if (offset_delta <= last_delta_) {
    return fail("offsetDelta " + std::to_string(offset_delta) + " does not increase (previous " +
                std::to_string(last_delta_) + ")");
  }
  if (offset_delta > header_.last_offset_delta) {
    return fail("offsetDelta " + std::to_string(offset_delta) + " exceeds lastOffsetDelta " +
                std::to_string(header_.last_offset_delta));
  }

  // Reads a length-prefixed byte field; -1 is null when allowed.
  auto bytes_field = [&](const char* what, bool nullable,
                         std::optional<std::string_view>* field) -> bool {
    int32_t n;
    const char* q = varint::DecodeVarint(p, rec_end, &n);
    if (q == nullptr) {
      (void)fail(std::string("bad or truncated ") + what + " length varint");
      return false;
    }
    p = q;
    if (n == -1 && nullable) {
      field->reset();
      return true;
    }
    if (n < 0) {
      (void)fail(std::string("invalid ") + what + " length " + std::to_string(n));
      return false;
    }
    if (static_cast<size_t>(n) > static_cast<size_t>(rec_end - p)) {
      (void)fail(std::string(what) + " length " + std::to_string(n) + " overruns the record");
      return false;
    }
    *field = std::string_view(p, static_cast<size_t>(n));
    p += n;
    return true;
  };

  if (!bytes_field("key", true, &out->key)) return error_;
  if (!bytes_field("value", true, &out->value)) return error_;
  int32_t header_count;
  p = varint::DecodeVarint(p, rec_end, &header_count);
  if (p == nullptr) return fail("bad or truncated header count varint");
  if (header_count < 0) return fail("negative header count " + std::to_string(header_count));
  out->headers.clear();
  for (int32_t h = 0; h < header_count; ++h) {
    std::optional<std::string_view> hk, hv;
    if (!bytes_field("header key", false, &hk)) return error_;
    if (!bytes_field("header value", true, &hv)) return error_;
    out->headers.emplace_back(*hk, hv);
  }
  if (p != rec_end) {
    return fail(std::to_string(rec_end - p) + " unread bytes at the end of the record");
  }

  out->offset = WrapAdd(header_.base_offset, offset_delta);
  out->timestamp_ms = (header_.attributes & kTimestampTypeBit)
                          ? header_.max_timestamp
                          : WrapAdd(header_.base_timestamp, ts_delta);
  last_delta_ = offset_delta;
  pos_ = static_cast<size_t>(rec_end - base);
  ++index_;
  return true;
}

Result<std::vector<Record>> DecodeRecords(std::string_view batch, const DecodeOptions& options) {
  RILL_ASSIGN_OR_RETURN(BatchReader reader, BatchReader::Open(batch, options));
  std::vector<Record> records;
  // recordCount is untrusted: reserve at most a modest amount up front.
  records.reserve(std::min<size_t>(static_cast<size_t>(reader.header().record_count), 4096));
  RecordView v;
  for (;;) {
    RILL_ASSIGN_OR_RETURN(bool more, reader.Next(&v));
    if (!more) break;
    Record r;
    if (v.key) r.key.emplace(*v.key);
    if (v.value) r.value.emplace(*v.value);
    r.timestamp_ms = v.timestamp_ms;
    r.headers.reserve(v.headers.size());
    for (const auto& [k, hv] : v.headers) {
      r.headers.push_back(
          RecordHeader{std::string(k), hv ? std::optional<std::string>(*hv) : std::nullopt});
    }
    records.push_back(std::move(r));
  }
  return records;
}

}  // namespace rill::batch
