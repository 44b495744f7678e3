#include "rill/proto/record_batch.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <string>
#include <vector>

#include "rill/proto/batch_header.h"
#include "rill/proto/endian.h"
#include "rill/proto/varint.h"
#include "test_seed.h"

namespace rill::batch {
namespace {

constexpr Compression kCodecs[] = {Compression::kNone, Compression::kGzip, Compression::kSnappy,
                                   Compression::kLz4, Compression::kZstd};

// Bit-at-a-time CRC32C, independent of the library's implementations.
uint32_t ReferenceCrc32c(std::string_view s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

std::string RandomString(std::mt19937_64& rng, size_t max_len) {
  std::string s(rng() % (max_len + 1), '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

std::optional<std::string> RandomNullable(std::mt19937_64& rng, size_t max_len) {
  switch (rng() % 6) {
    case 0:
      return std::nullopt;
    case 1:
      return std::string();
    default:
      return RandomString(rng, max_len);
  }
}

Record RandomRecord(std::mt19937_64& rng, int64_t base_ts) {
  Record r;
  r.key = RandomNullable(rng, 40);
  r.value = RandomNullable(rng, rng() % 50 == 0 ? 70000 : 300);
  size_t nh = rng() % 4;
  for (size_t i = 0; i < nh; ++i) {
    r.headers.push_back(RecordHeader{RandomString(rng, 20), RandomNullable(rng, 30)});
  }
  switch (rng() % 8) {
    case 0:
      r.timestamp_ms = static_cast<int64_t>(rng());
      break;  // anything, even negative
    case 1:
      r.timestamp_ms = std::numeric_limits<int64_t>::min();
      break;
    case 2:
      r.timestamp_ms = std::numeric_limits<int64_t>::max();
      break;
    default:
      r.timestamp_ms = base_ts + static_cast<int64_t>(rng() % 20000) - 10000;
      break;
  }
  return r;
}

Result<std::string> BuildBatch(Compression c, const std::vector<Record>& records) {
  BatchBuilder b(c);
  for (const Record& r : records) RILL_RETURN_IF_ERROR(b.Add(r));
  return b.Build();
}

std::string MustBuild(Compression c, const std::vector<Record>& records) {
  auto b = BuildBatch(c, records);
  RILL_ASSERT(b.ok(), "%s", b.status().ToString().c_str());
  return std::move(b).value();
}

std::vector<Record> SimpleRecords(int n) {
  std::vector<Record> v;
  for (int i = 0; i < n; ++i) {
    v.push_back(Record{"key" + std::to_string(i), "value" + std::to_string(i), {}, 1000 + i});
  }
  return v;
}

// --------------------------------------------------------------- round trips

TEST(RecordBatch, RandomRoundTripEveryCodec) {
  uint64_t seed = rill::testing::TestSeed();
  SCOPED_TRACE(rill::testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  for (Compression c : kCodecs) {
    for (int round = 0; round < 40; ++round) {
      SCOPED_TRACE(std::string(CompressionName(c)) + " round " + std::to_string(round));
      int64_t base_ts = 1700000000000 + static_cast<int64_t>(rng() % 1000000);
      size_t n = 1 + rng() % (round % 10 == 0 ? 2000 : 30);
      std::vector<Record> records;
      for (size_t i = 0; i < n; ++i) records.push_back(RandomRecord(rng, base_ts));
      auto batch = BuildBatch(c, records);
      ASSERT_TRUE(batch.ok()) << batch.status().ToString();
      auto h = Validate(*batch);
      ASSERT_TRUE(h.ok()) << h.status().ToString();
      EXPECT_EQ(h->record_count, static_cast<int32_t>(n));
      EXPECT_EQ(h->last_offset_delta, static_cast<int32_t>(n - 1));
      EXPECT_EQ(h->compression(), c);
      EXPECT_EQ(h->base_timestamp, records[0].timestamp_ms);
      int64_t max_ts = records[0].timestamp_ms;
      for (const Record& r : records) max_ts = std::max(max_ts, r.timestamp_ms);
      EXPECT_EQ(h->max_timestamp, max_ts);

      auto decoded = DecodeRecords(*batch);
      ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
      ASSERT_EQ(decoded->size(), records.size());
      for (size_t i = 0; i < n; ++i) ASSERT_EQ((*decoded)[i], records[i]) << "record " << i;

      // Offsets follow the (stamped) base offset.
      std::string stamped = *batch;
      int64_t base = static_cast<int64_t>(rng() % (int64_t{1} << 40));
      SetBaseOffset(stamped, base);
      auto reader = BatchReader::Open(stamped);
      ASSERT_TRUE(reader.ok()) << reader.status().ToString();
      RecordView v;
      for (size_t i = 0; i < n; ++i) {
        auto more = reader->Next(&v);
        ASSERT_TRUE(more.ok() && *more) << more.status().ToString();
        EXPECT_EQ(v.offset, base + static_cast<int64_t>(i));
        EXPECT_EQ(v.timestamp_ms, records[i].timestamp_ms);
      }
      auto end = reader->Next(&v);
      ASSERT_TRUE(end.ok()) << end.status().ToString();
      EXPECT_FALSE(*end);
    }
  }
}

TEST(RecordBatch, BuilderHeaderFields) {
  BatchBuilder b(Compression::kNone, 42, 7, 100);
  ASSERT_TRUE(b.Add("k", "v", 5000).ok());
  ASSERT_TRUE(b.Add(std::nullopt, std::nullopt, 4000).ok());
  ASSERT_TRUE(b.Add("k", std::nullopt, 6000).ok());
  auto batch = b.Build();
  ASSERT_TRUE(batch.ok());
  auto h = Validate(*batch);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->base_offset, 0);
  EXPECT_EQ(h->partition_leader_epoch, -1);
  EXPECT_EQ(h->magic, 2);
  EXPECT_EQ(h->attributes, 0);
  EXPECT_EQ(h->last_offset_delta, 2);
  EXPECT_EQ(h->base_timestamp, 5000);
  EXPECT_EQ(h->max_timestamp, 6000);
  EXPECT_EQ(h->producer_id, 42);
  EXPECT_EQ(h->producer_epoch, 7);
  EXPECT_EQ(h->base_sequence, 100);
  EXPECT_EQ(h->record_count, 3);
  EXPECT_EQ(h->total_size(), batch->size());
}

TEST(RecordBatch, BuilderEstimatedSizeResetAndReuse) {
  BatchBuilder b(Compression::kLz4);
  EXPECT_EQ(b.record_count(), 0u);
  EXPECT_EQ(b.estimated_size(), kHeaderSize);
  ASSERT_TRUE(b.Add("key", std::string(100, 'v'), 1).ok());
  EXPECT_EQ(b.record_count(), 1u);
  size_t one = b.estimated_size();
  EXPECT_GT(one, kHeaderSize + 100);
  ASSERT_TRUE(b.Add("key", std::string(100, 'v'), 2).ok());
  EXPECT_EQ(b.estimated_size() - one, one - kHeaderSize);
  b.Reset();
  EXPECT_EQ(b.record_count(), 0u);
  EXPECT_EQ(b.estimated_size(), kHeaderSize);
  EXPECT_EQ(b.Build().status().code(), StatusCode::kInvalidArgument);
  // Build() resets: the second batch holds only its own records.
  ASSERT_TRUE(b.Add("a", "1", 10).ok());
  ASSERT_TRUE(b.Build().ok());
  ASSERT_TRUE(b.Add("b", "2", 20).ok());
  auto second = b.Build();
  ASSERT_TRUE(second.ok());
  auto recs = DecodeRecords(*second);
  ASSERT_TRUE(recs.ok()) << recs.status().ToString();
  ASSERT_EQ(recs->size(), 1u);
  EXPECT_EQ((*recs)[0].key, "b");
  EXPECT_EQ((*recs)[0].timestamp_ms, 20);
}

TEST(RecordBatch, HeaderViewsEncodeLikeOwnedHeaders) {
  std::vector<RecordHeader> owned{{"a", "1"}, {"b", std::nullopt}, {"", ""}};
  std::vector<RecordHeaderView> views{{"a", "1"}, {"b", std::nullopt}, {"", ""}};
  BatchBuilder b1, b2;
  ASSERT_TRUE(b1.Add("k", "v", 7, owned).ok());
  ASSERT_TRUE(b2.Add("k", "v", 7, views).ok());
  auto x = b1.Build();
  auto y = b2.Build();
  ASSERT_TRUE(x.ok() && y.ok());
  EXPECT_EQ(*x, *y);
  auto recs = DecodeRecords(*y);
  ASSERT_TRUE(recs.ok()) << recs.status().ToString();
  EXPECT_EQ((*recs)[0].headers, owned);
}

TEST(RecordBatch, LogAppendTimeGivesEveryRecordMaxTimestamp) {
  for (Compression c : kCodecs) {
    std::string batch = MustBuild(c, SimpleRecords(5));
    SetLogAppendTime(batch, 99999);
    auto recs = DecodeRecords(batch);
    ASSERT_TRUE(recs.ok()) << recs.status().ToString();
    for (const Record& r : *recs) EXPECT_EQ(r.timestamp_ms, 99999);
  }
}

TEST(RecordBatch, StampingOffsetAndEpochKeepsCrcValid) {
  std::string batch = MustBuild(Compression::kNone, SimpleRecords(3));
  SetBaseOffset(batch, 123456789);
  SetPartitionLeaderEpoch(batch, 17);
  auto h = Validate(batch);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->base_offset, 123456789);
  EXPECT_EQ(h->partition_leader_epoch, 17);
  EXPECT_EQ(h->last_offset(), 123456791);
  auto reader = BatchReader::Open(batch);
  ASSERT_TRUE(reader.ok());
  RecordView v;
  ASSERT_TRUE(*reader->Next(&v));
  EXPECT_EQ(v.offset, 123456789);
}

TEST(RecordBatch, BuilderWithoutABufferAfterBuildAndRecycledBuffersBuildTheSameBytes) {
  const std::string expected = MustBuild(Compression::kNone, SimpleRecords(3));
  for (Compression c : {Compression::kNone, Compression::kLz4}) {
    BatchBuilder b(c);
    for (const Record& r : SimpleRecords(3)) ASSERT_TRUE(b.Add(r).ok());
    auto first = b.Build(BatchBuilder::Next::kNoBuffer);
    ASSERT_TRUE(first.ok()) << first.status().ToString();
    // The next batch starts with no buffer: its first Add makes one.
    for (const Record& r : SimpleRecords(3)) ASSERT_TRUE(b.Add(r).ok());
    auto second = b.Build(BatchBuilder::Next::kNoBuffer);
    ASSERT_TRUE(second.ok()) << second.status().ToString();
    EXPECT_EQ(*second, *first);
    if (c == Compression::kNone) {
      EXPECT_EQ(*first, expected);
    }
    // A recycled buffer's old contents are dropped and its storage kept.
    std::string recycled = std::move(*first);
    recycled.reserve(1 << 16);
    const char* storage = recycled.data();
    b.Recycle(std::move(recycled));
    EXPECT_EQ(b.record_count(), 0u);
    for (const Record& r : SimpleRecords(3)) ASSERT_TRUE(b.Add(r).ok());
    auto third = b.Build(BatchBuilder::Next::kNoBuffer);
    ASSERT_TRUE(third.ok());
    EXPECT_EQ(*third, *second);
    if (c == Compression::kNone) {
      EXPECT_EQ(third->data(), storage);
    }
  }
}

// ------------------------------------------------------------- compatibility

// A batch of two records written out byte by byte from the Kafka protocol documentation
// (RecordBatch v2, uncompressed): the builder must produce exactly these bytes.
TEST(RecordBatch, MatchesHandEncodedKafkaBatch) {
  std::string records;
  // Record 0: key "k1", value "v1", timestamp 1000 (delta 0), no headers. Body 10 bytes.
  records += std::string("\x14", 1);          // length 10 (zigzag 20)
  records += std::string("\x00\x00\x00", 3);  // attributes, timestampDelta 0, offsetDelta 0
  records += "\x04k1\x04v1";                  // keyLength 2, key, valueLength 2, value
  records += std::string("\x00", 1);          // 0 headers
  // Record 1: null key, value "hello", timestamp 1005 (delta 5), header h=x. Body 15 bytes.
  records += "\x1e";                          // length 15
  records += std::string("\x00\x0a\x02", 3);  // attributes, timestampDelta 5, offsetDelta 1
  records += "\x01";                          // keyLength -1 (null)
  records += "\x0ahello";                     // valueLength 5, value
  records += "\x02\x02h\x02x";                // 1 header: keyLength 1 "h", valueLength 1 "x"
  ASSERT_EQ(records.size(), 27u);

  std::string after_crc;
  after_crc += std::string("\x00\x00", 2);                          // attributes
  after_crc += std::string("\x00\x00\x00\x01", 4);                  // lastOffsetDelta 1
  after_crc += std::string("\x00\x00\x00\x00\x00\x00\x03\xe8", 8);  // baseTimestamp 1000
  after_crc += std::string("\x00\x00\x00\x00\x00\x00\x03\xed", 8);  // maxTimestamp 1005
  after_crc += std::string(8, '\xff');                              // producerId -1
  after_crc += std::string(2, '\xff');                              // producerEpoch -1
  after_crc += std::string(4, '\xff');                              // baseSequence -1
  after_crc += std::string("\x00\x00\x00\x02", 4);                  // recordCount 2
  after_crc += records;

  std::string expected;
  expected += std::string(8, '\0');                // baseOffset 0
  expected += std::string("\x00\x00\x00\x4c", 4);  // batchLength 76 = 88 - 12
  expected += std::string(4, '\xff');              // partitionLeaderEpoch -1
  expected += "\x02";                              // magic
  char crc[4];
  be::Store32(crc, ReferenceCrc32c(after_crc));
  expected += std::string(crc, 4);
  expected += after_crc;
  ASSERT_EQ(expected.size(), 88u);

  BatchBuilder b(Compression::kNone);
  ASSERT_TRUE(b.Add("k1", "v1", 1000).ok());
  std::vector<RecordHeader> headers{{"h", "x"}};
  ASSERT_TRUE(b.Add(std::nullopt, "hello", 1005, headers).ok());
  auto built = b.Build();
  ASSERT_TRUE(built.ok());
  EXPECT_EQ(*built, expected);

  auto recs = DecodeRecords(expected);
  ASSERT_TRUE(recs.ok()) << recs.status().ToString();
  ASSERT_EQ(recs->size(), 2u);
  EXPECT_EQ((*recs)[0], (Record{"k1", "v1", {}, 1000}));
  EXPECT_EQ((*recs)[1], (Record{std::nullopt, "hello", {{"h", "x"}}, 1005}));
}

// -------------------------------------------------------------- batch iterator

TEST(RecordBatch, IteratorWalksConcatenatedBatches) {
  std::string log;
  std::vector<size_t> starts;
  int64_t next_offset = 0;
  for (int i = 0; i < 5; ++i) {
    std::string b = MustBuild(kCodecs[i], SimpleRecords(i + 1));
    SetBaseOffset(b, next_offset);
    next_offset += i + 1;
    starts.push_back(log.size());
    log += b;
  }
  BatchIterator it(log);
  int n = 0;
  int64_t expect_offset = 0;
  while (it.Next()) {
    EXPECT_EQ(it.position(), starts[n]);
    EXPECT_EQ(it.header().base_offset, expect_offset);
    EXPECT_EQ(it.header().record_count, n + 1);
    auto recs = DecodeRecords(it.batch());
    ASSERT_TRUE(recs.ok()) << recs.status().ToString();
    EXPECT_EQ(recs->size(), static_cast<size_t>(n + 1));
    expect_offset += n + 1;
    ++n;
  }
  EXPECT_TRUE(it.status().ok()) << it.status().ToString();
  EXPECT_EQ(n, 5);
}

TEST(RecordBatch, IteratorStopsAtTruncatedTail) {
  std::string a = MustBuild(Compression::kNone, SimpleRecords(2));
  std::string b = MustBuild(Compression::kNone, SimpleRecords(3));
  for (size_t cut = 1; cut < b.size(); cut += 7) {
    std::string log = a + b.substr(0, cut);
    BatchIterator it(log);
    ASSERT_TRUE(it.Next());
    EXPECT_EQ(it.batch(), a);
    EXPECT_FALSE(it.Next());
    EXPECT_TRUE(it.status().IsCorruption()) << "cut " << cut;
    EXPECT_NE(it.status().message().find("truncated"), std::string::npos) << it.status().ToString();
  }
}

TEST(RecordBatch, IteratorStopsAtCorruptBatch) {
  std::string a = MustBuild(Compression::kNone, SimpleRecords(2));
  std::string b = MustBuild(Compression::kNone, SimpleRecords(3));
  std::string log = a + b;
  log[a.size() + 70] ^= 1;
  BatchIterator it(log);
  ASSERT_TRUE(it.Next());
  EXPECT_FALSE(it.Next());
  EXPECT_TRUE(it.status().IsCorruption());
  EXPECT_NE(it.status().message().find("CRC"), std::string::npos);
}

// ------------------------------------------------------------- malformed input

// A batch around hand-made record bytes, with a valid CRC, so the record checks are reached.
std::string RawBatch(std::string_view records, int32_t record_count, int32_t last_offset_delta,
                     int16_t attributes = 0) {
  std::string b(kHeaderSize, '\0');
  b += records;
  be::Store32(b.data() + kLengthPos, static_cast<uint32_t>(b.size() - kLogOverhead));
  be::Store32(b.data() + kLeaderEpochPos, static_cast<uint32_t>(-1));
  b[kMagicPos] = kMagic;
  be::Store16(b.data() + kAttributesPos, static_cast<uint16_t>(attributes));
  be::Store32(b.data() + kLastOffsetDeltaPos, static_cast<uint32_t>(last_offset_delta));
  be::Store32(b.data() + kRecordCountPos, static_cast<uint32_t>(record_count));
  UpdateCrc(b);
  return b;
}

// One record's bytes with the given body (attributes onwards).
std::string Rec(std::string_view body) {
  std::string s;
  varint::AppendVarint(&s, static_cast<int32_t>(body.size()));
  s += body;
  return s;
}

// A valid record body: offsetDelta d, key "k", value "v", no headers.
std::string Body(int32_t delta) {
  std::string s("\x00\x00", 2);
  varint::AppendVarint(&s, delta);
  s += "\x02k\x02v";
  s += std::string("\x00", 1);
  return s;
}

// Decodes all records; returns the first error.
Status DecodeAll(std::string_view batch, const DecodeOptions& options = {}) {
  auto r = DecodeRecords(batch, options);
  return r.ok() ? Status::OK() : r.status();
}

void ExpectCorruption(const Status& s, std::string_view needle) {
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_NE(s.message().find(needle), std::string::npos)
      << "message \"" << s.message() << "\" does not mention \"" << needle << "\"";
}

TEST(RecordBatchMalformed, RawBatchHelperIsValid) {
  auto recs = DecodeRecords(RawBatch(Rec(Body(0)) + Rec(Body(1)), 2, 1));
  ASSERT_TRUE(recs.ok()) << recs.status().ToString();
  EXPECT_EQ(recs->size(), 2u);
}

TEST(RecordBatchMalformed, TruncatedHeader) {
  std::string b = MustBuild(Compression::kNone, SimpleRecords(1));
  for (size_t n = 0; n < kHeaderSize; ++n) {
    ExpectCorruption(DecodeAll(b.substr(0, n)), "truncated batch header");
  }
}

TEST(RecordBatchMalformed, TruncatedBatch) {
  std::string b = MustBuild(Compression::kNone, SimpleRecords(3));
  for (size_t n = kHeaderSize; n < b.size(); ++n) {
    ExpectCorruption(DecodeAll(b.substr(0, n)), "truncated batch");
  }
}

TEST(RecordBatchMalformed, TrailingGarbage) {
  std::string b = MustBuild(Compression::kNone, SimpleRecords(3)) + "xyz";
  ExpectCorruption(DecodeAll(b), "trailing 3 bytes");
}

TEST(RecordBatchMalformed, BadMagic) {
  std::string b = MustBuild(Compression::kNone, SimpleRecords(1));
  b[kMagicPos] = 1;
  ExpectCorruption(DecodeAll(b), "magic");
}

TEST(RecordBatchMalformed, BadBatchLength) {
  std::string b = MustBuild(Compression::kNone, SimpleRecords(1));
  for (int32_t len : {-1, 0, 48, std::numeric_limits<int32_t>::max()}) {
    std::string c = b;
    be::Store32(c.data() + kLengthPos, static_cast<uint32_t>(len));
    ExpectCorruption(DecodeAll(c), "batch length");
  }
}

TEST(RecordBatchMalformed, BadCrc) {
  std::string b = MustBuild(Compression::kNone, SimpleRecords(3));
  for (size_t pos = kAttributesPos; pos < b.size(); ++pos) {
    std::string c = b;
    c[pos] ^= 0x10;
    Status s = DecodeAll(c);
    EXPECT_FALSE(s.ok()) << "flip at " << pos;
    if (pos >= kHeaderSize || pos == kAttributesPos + 1) {
      // Record and attribute bytes reach the CRC check (header fields may fail earlier).
      ExpectCorruption(s, "CRC32C mismatch");
    }
  }
  std::string c = b;
  be::Store32(c.data() + kCrcPos, be::Load32(c.data() + kCrcPos) + 1);
  ExpectCorruption(DecodeAll(c), "CRC32C mismatch");
}

TEST(RecordBatchMalformed, CrcCheckCanBeSkippedSafely) {
  std::string b = MustBuild(Compression::kNone, SimpleRecords(3));
  b[kHeaderSize + 5] ^= 0x7f;
  DecodeOptions opts;
  opts.verify_crc = false;
  (void)DecodeAll(b, opts);  // may succeed or fail, must not crash
  ExpectCorruption(DecodeAll(b), "CRC32C mismatch");
}

TEST(RecordBatchMalformed, UnknownCodec) {
  ExpectCorruption(DecodeAll(RawBatch(Rec(Body(0)), 1, 0, 5)), "unknown compression codec 5");
  ExpectCorruption(DecodeAll(RawBatch(Rec(Body(0)), 1, 0, 7)), "unknown compression codec 7");
}

TEST(RecordBatchMalformed, BadRecordLengthVarint) {
  ExpectCorruption(DecodeAll(RawBatch(std::string(6, '\xff'), 1, 0)), "length varint");
}

TEST(RecordBatchMalformed, TruncatedRecordLengthVarint) {
  ExpectCorruption(DecodeAll(RawBatch("\x80", 1, 0)), "length varint");
}

TEST(RecordBatchMalformed, NegativeRecordLength) {
  ExpectCorruption(DecodeAll(RawBatch("\x01", 1, 0)), "negative record length -1");
}

TEST(RecordBatchMalformed, RecordLengthOverrunsBatch) {
  std::string r = Rec(Body(0));
  r[0] = 0x7e;  // length 63, only ~8 bytes follow
  ExpectCorruption(DecodeAll(RawBatch(r, 1, 0)), "overruns the batch");
}

TEST(RecordBatchMalformed, TruncatedRecordBody) {
  ExpectCorruption(DecodeAll(RawBatch(Rec(""), 1, 0)), "missing attributes");
  ExpectCorruption(DecodeAll(RawBatch(Rec(std::string("\x00", 1)), 1, 0)), "timestampDelta");
  ExpectCorruption(DecodeAll(RawBatch(Rec(std::string("\x00\x00", 2)), 1, 0)), "offsetDelta");
  ExpectCorruption(DecodeAll(RawBatch(Rec(std::string("\x00\x00\x00", 3)), 1, 0)), "key");
}

TEST(RecordBatchMalformed, BadTimestampDeltaVarlong) {
  std::string body("\x00", 1);
  body += std::string(11, '\xff');
  ExpectCorruption(DecodeAll(RawBatch(Rec(body), 1, 0)), "timestampDelta");
}

TEST(RecordBatchMalformed, KeyLengthOverrunsRecord) {
  std::string body("\x00\x00\x00\x20k", 5);  // key length 16, one byte present
  ExpectCorruption(DecodeAll(RawBatch(Rec(body), 1, 0)), "key length 16 overruns the record");
}

TEST(RecordBatchMalformed, InvalidKeyLength) {
  std::string body("\x00\x00\x00\x03", 4);  // key length -2
  ExpectCorruption(DecodeAll(RawBatch(Rec(body), 1, 0)), "invalid key length -2");
}

TEST(RecordBatchMalformed, ValueLengthOverrunsRecord) {
  std::string body("\x00\x00\x00\x01\x10vv", 7);  // null key, value length 8, 2 present
  ExpectCorruption(DecodeAll(RawBatch(Rec(body), 1, 0)), "value length 8 overruns");
}

TEST(RecordBatchMalformed, NegativeHeaderCount) {
  std::string body("\x00\x00\x00\x01\x01\x03", 6);  // null key, null value, -2 headers
  ExpectCorruption(DecodeAll(RawBatch(Rec(body), 1, 0)), "negative header count -2");
}

TEST(RecordBatchMalformed, HeaderCountOverrunsRecord) {
  std::string body("\x00\x00\x00\x01\x01\x7e", 6);  // 63 headers, none present
  ExpectCorruption(DecodeAll(RawBatch(Rec(body), 1, 0)), "header key");
}

TEST(RecordBatchMalformed, NullHeaderKey) {
  std::string body("\x00\x00\x00\x01\x01\x02\x01\x01", 8);  // 1 header, key length -1
  ExpectCorruption(DecodeAll(RawBatch(Rec(body), 1, 0)), "invalid header key length -1");
}

TEST(RecordBatchMalformed, HeaderValueOverrunsRecord) {
  std::string body("\x00\x00\x00\x01\x01\x02\x02h\x08", 9);
  ExpectCorruption(DecodeAll(RawBatch(Rec(body), 1, 0)), "header value length 4 overruns");
}

TEST(RecordBatchMalformed, UnreadBytesInRecord) {
  ExpectCorruption(DecodeAll(RawBatch(Rec(Body(0) + "zz"), 1, 0)), "2 unread bytes");
}

TEST(RecordBatchMalformed, FewerRecordsThanRecordCount) {
  ExpectCorruption(DecodeAll(RawBatch(Rec(Body(0)) + Rec(Body(1)), 3, 2)),
                   "batch holds 2 records but recordCount says 3");
}

TEST(RecordBatchMalformed, MoreRecordsThanRecordCount) {
  ExpectCorruption(DecodeAll(RawBatch(Rec(Body(0)) + Rec(Body(1)), 1, 1)),
                   "left after the 1 records");
}

TEST(RecordBatchMalformed, RecordCountExceedsLastOffsetDelta) {
  ExpectCorruption(DecodeAll(RawBatch(Rec(Body(0)) + Rec(Body(1)), 2, 0)),
                   "exceeds lastOffsetDelta");
}

TEST(RecordBatchMalformed, OffsetDeltaNotIncreasing) {
  ExpectCorruption(DecodeAll(RawBatch(Rec(Body(0)) + Rec(Body(0)), 2, 1)), "does not increase");
  ExpectCorruption(DecodeAll(RawBatch(Rec(Body(-1)), 1, 0)), "does not increase");
}

TEST(RecordBatchMalformed, OffsetDeltaBeyondLastOffsetDelta) {
  ExpectCorruption(DecodeAll(RawBatch(Rec(Body(0)) + Rec(Body(5)), 2, 3)),
                   "offsetDelta 5 exceeds lastOffsetDelta 3");
}

// Compacted batches keep gaps in their offset deltas: that is valid.
TEST(RecordBatchMalformed, OffsetDeltaGapsAreValid) {
  auto recs = DecodeRecords(RawBatch(Rec(Body(1)) + Rec(Body(4)), 2, 6));
  ASSERT_TRUE(recs.ok()) << recs.status().ToString();
  EXPECT_EQ(recs->size(), 2u);
}

TEST(RecordBatchMalformed, CorruptCompressedRecords) {
  for (Compression c :
       {Compression::kGzip, Compression::kSnappy, Compression::kLz4, Compression::kZstd}) {
    std::string junk = "this is not compressed data at all, not in any codec";
    Status s = DecodeAll(RawBatch(junk, 1, 0, static_cast<int16_t>(c)));
    ExpectCorruption(s, "records section");
    ExpectCorruption(s, std::string(CompressionName(c)));
  }
}

TEST(RecordBatchMalformed, CompressedRecordsThemselvesMalformed) {
  for (Compression c :
       {Compression::kGzip, Compression::kSnappy, Compression::kLz4, Compression::kZstd}) {
    std::string inner = Rec(Body(0)) + Rec(Body(0));  // offset deltas do not increase
    ExpectCorruption(DecodeAll(RawBatch(*Compress(c, inner), 2, 1, static_cast<int16_t>(c))),
                     "does not increase");
  }
}

TEST(RecordBatchMalformed, OversizedDecompression) {
  std::vector<Record> records;
  for (int i = 0; i < 200; ++i) records.push_back(Record{"k", std::string(10000, 'a'), {}, i});
  for (Compression c :
       {Compression::kGzip, Compression::kSnappy, Compression::kLz4, Compression::kZstd}) {
    std::string batch = MustBuild(c, records);
    DecodeOptions opts;
    opts.max_decompressed_bytes = 1 << 20;
    auto r = DecodeRecords(batch, opts);
    ASSERT_FALSE(r.ok()) << CompressionName(c);
    EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
    EXPECT_NE(r.status().message().find("exceeds the limit of 1048576"), std::string::npos)
        << r.status().ToString();
    opts.max_decompressed_bytes = 4 << 20;
    EXPECT_TRUE(DecodeRecords(batch, opts).ok()) << CompressionName(c);
  }
}

TEST(RecordBatchMalformed, ErrorIsSticky) {
  std::string batch = RawBatch(Rec(Body(0)) + Rec(Body(0)), 2, 1);
  auto reader = BatchReader::Open(batch);
  ASSERT_TRUE(reader.ok());
  RecordView v;
  EXPECT_TRUE(*reader->Next(&v));
  auto e1 = reader->Next(&v);
  auto e2 = reader->Next(&v);
  ASSERT_FALSE(e1.ok());
  ASSERT_FALSE(e2.ok());
  EXPECT_EQ(e1.status().message(), e2.status().message());
}

// Random byte flips and cuts of valid batches (CRC check off, so the record decoder sees them):
// every outcome is a clean success or a Corruption/ResourceExhausted status.
TEST(RecordBatchMalformed, RandomMutationsNeverCrash) {
  uint64_t seed = rill::testing::TestSeed();
  SCOPED_TRACE(rill::testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  DecodeOptions opts;
  opts.verify_crc = false;
  opts.max_decompressed_bytes = 1 << 20;
  for (Compression c : kCodecs) {
    std::vector<Record> records;
    for (int i = 0; i < 20; ++i) records.push_back(RandomRecord(rng, 1000));
    std::string batch = MustBuild(c, records);
    for (int i = 0; i < 500; ++i) {
      std::string m = batch;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) m[rng() % m.size()] = static_cast<char>(rng());
      if (rng() % 4 == 0) m.resize(rng() % m.size());
      Status s = DecodeAll(m, opts);
      if (!s.ok()) {
        EXPECT_TRUE(s.IsCorruption() || s.code() == StatusCode::kResourceExhausted) << s.ToString();
        EXPECT_FALSE(s.message().empty());
      }
    }
  }
}

}  // namespace
}  // namespace rill::batch
