// Log::OffsetForTimestamp: Kafka's ListOffsets by timestamp. The answer is the first record (in
// offset order, at or after the log start) whose own timestamp is >= the target, found by
// looking inside the batch, for every codec, LogAppendTime batches, out-of-order timestamps,
// retention, truncation, reopen, and corrupt batches; plus a randomised check against a model.

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "rill/proto/batch_header.h"
#include "rill/proto/compression.h"
#include "rill/proto/endian.h"
#include "rill/storage/faulty_file_system.h"
#include "rill/storage/log.h"
#include "test_batches.h"

namespace rill::storage {
namespace {

using batch::Compression;
using testing::MakeBatch;
using testing::MakeRecordBatch;

class LogTimestampTest : public ::testing::Test {
 protected:
  LogConfig Config() {
    LogConfig c;
    c.segment_bytes = 16 * 1024;
    c.index_interval_bytes = 256;
    c.flush_policy = FlushPolicy::kNone;
    c.preallocate_bytes = 0;
    c.retention_ms = -1;
    return c;
  }
  std::unique_ptr<Log> OpenLog(const LogConfig& c) {
    auto r = Log::Open(&fs_, "data/t-0", "t-0", c, [] { return int64_t{1'000'000}; });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return std::move(r).value();
  }
  AppendResult Append(Log& log, std::string b) {
    auto r = log.Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : AppendResult{};
  }
  // The lookup as {offset, timestamp}; {-1, -1} for kNotFound; fails the test on other errors.
  static std::pair<int64_t, int64_t> Find(const Log& log, int64_t ts) {
    auto r = log.OffsetForTimestamp(ts);
    if (!r.ok()) {
      EXPECT_TRUE(r.status().IsNotFound()) << r.status().ToString();
      return {-1, -1};
    }
    return {r->offset.value(), r->timestamp_ms};
  }

  FaultyFileSystem fs_{11};
};

using Found = std::pair<int64_t, int64_t>;

TEST_F(LogTimestampTest, EmptyLogFindsNothing) {
  auto log = OpenLog(Config());
  EXPECT_TRUE(log->OffsetForTimestamp(0).status().IsNotFound());
  EXPECT_TRUE(log->OffsetForTimestamp(-5).status().IsNotFound());
  EXPECT_TRUE(log->OffsetForTimestamp(INT64_MAX).status().IsNotFound());
}

// Record timestamps inside one batch go up and down; the answer is the first record that is
// late enough, not the batch's base offset, for every codec.
class LogTimestampCodecTest : public LogTimestampTest,
                              public ::testing::WithParamInterface<Compression> {};

TEST_P(LogTimestampCodecTest, FirstRecordAtOrAfterTheTimestampInsideTheBatch) {
  auto log = OpenLog(Config());
  Append(*log, MakeRecordBatch({10, 20}, GetParam()));                   // offsets 0-1
  Append(*log, MakeRecordBatch({100, 300, 200, 400, 250}, GetParam()));  // offsets 2-6
  Append(*log, MakeRecordBatch({500, 450, 600}, GetParam()));            // offsets 7-9
  EXPECT_EQ(Find(*log, -1), Found(0, 10));
  EXPECT_EQ(Find(*log, 10), Found(0, 10));
  EXPECT_EQ(Find(*log, 11), Found(1, 20));
  EXPECT_EQ(Find(*log, 21), Found(2, 100));
  EXPECT_EQ(Find(*log, 100), Found(2, 100));
  // The first record (100) is older than 150; the second (300) is the answer.
  EXPECT_EQ(Find(*log, 150), Found(3, 300));
  EXPECT_EQ(Find(*log, 200), Found(3, 300));  // record 4 (200) comes after record 3 (300)
  EXPECT_EQ(Find(*log, 300), Found(3, 300));
  EXPECT_EQ(Find(*log, 301), Found(5, 400));  // skips 200, finds 400 before the later 250
  EXPECT_EQ(Find(*log, 400), Found(5, 400));
  EXPECT_EQ(Find(*log, 401), Found(7, 500));
  EXPECT_EQ(Find(*log, 460), Found(7, 500));
  EXPECT_EQ(Find(*log, 501), Found(9, 600));
  EXPECT_EQ(Find(*log, 600), Found(9, 600));
  EXPECT_EQ(Find(*log, 601), Found(-1, -1));
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, LogTimestampCodecTest,
                         ::testing::Values(Compression::kNone, Compression::kGzip,
                                           Compression::kSnappy, Compression::kLz4,
                                           Compression::kZstd),
                         [](const auto& info) {
                           return std::string(batch::CompressionName(info.param));
                         });

TEST_F(LogTimestampTest, LogAppendTimeBatchesUseTheBatchTimeForEveryRecord) {
  auto log = OpenLog(Config());
  Append(*log, MakeRecordBatch({1000, 1001}));  // CreateTime, offsets 0-1
  // Producer timestamps 10..30 are ignored: every record's timestamp is the append time 5000.
  Append(*log, MakeRecordBatch({10, 30, 20}, Compression::kNone, /*log_append_time=*/5000));
  Append(*log, MakeRecordBatch({1, 2}, Compression::kLz4, /*log_append_time=*/7000));
  EXPECT_EQ(Find(*log, 1001), Found(1, 1001));
  EXPECT_EQ(Find(*log, 1002), Found(2, 5000));
  EXPECT_EQ(Find(*log, 5000), Found(2, 5000));
  EXPECT_EQ(Find(*log, 5001), Found(5, 7000));
  EXPECT_EQ(Find(*log, 7001), Found(-1, -1));
}

// A batch whose header claims a later maxTimestamp than any of its records has: the scan goes
// on to the next batch instead of answering with a record that is too old.
TEST_F(LogTimestampTest, HeaderMaxTimestampWithoutSuchARecordMovesOn) {
  auto log = OpenLog(Config());
  std::string lying = MakeRecordBatch({100, 200});
  be::Store64(lying.data() + batch::kMaxTimestampPos, 900);
  batch::UpdateCrc(std::span<char>(lying.data(), lying.size()));
  Append(*log, std::move(lying));             // offsets 0-1
  Append(*log, MakeRecordBatch({300, 800}));  // offsets 2-3
  EXPECT_EQ(Find(*log, 150), Found(1, 200));
  EXPECT_EQ(Find(*log, 250), Found(2, 300));
  EXPECT_EQ(Find(*log, 500), Found(3, 800));
  EXPECT_EQ(Find(*log, 850), Found(-1, -1));
}

// Many batches over several segments and index entries: every record's timestamp finds that
// record, before and after a clean reopen (indexes loaded) and an unclean one (rebuilt).
TEST_F(LogTimestampTest, AcrossSegmentsAndIndexesBeforeAndAfterReopen) {
  LogConfig c = Config();
  c.segment_bytes = 8192;
  auto log = OpenLog(c);
  // Batch i: 4 records with timestamps 1000 + 10i + {2, 0, 3, 1}, so record order != time
  // order; offsets 4i..4i+3.
  const std::vector<int64_t> order = {2, 0, 3, 1};
  const Compression codecs[] = {Compression::kNone, Compression::kZstd, Compression::kGzip};
  for (int i = 0; i < 300; ++i) {
    std::vector<int64_t> ts;
    for (int64_t d : order) ts.push_back(1000 + 10 * i + d);
    Append(*log, MakeRecordBatch(ts, codecs[i % 3]));
  }
  ASSERT_GT(log->segment_count(), 3u);
  auto check = [&](const Log& l) {
    for (int i = 0; i < 300; i += 7) {
      const int64_t t = 1000 + 10 * i;
      EXPECT_EQ(Find(l, t), Found(4 * i, t + 2)) << i;
      EXPECT_EQ(Find(l, t + 2), Found(4 * i, t + 2)) << i;
      // Records 0 (t+2) and 1 (t) are older than t+3: the third record is the answer.
      EXPECT_EQ(Find(l, t + 3), Found(4 * i + 2, t + 3)) << i;
      EXPECT_EQ(Find(l, t + 4), Found(4 * (i + 1), t + 12)) << i;  // into the next batch
    }
    EXPECT_EQ(Find(l, 0), Found(0, 1002));
    EXPECT_EQ(Find(l, 1000 + 10 * 299 + 4), Found(-1, -1));
  };
  check(*log);
  ASSERT_TRUE(log->Close().ok());
  log = OpenLog(c);
  check(*log);
  log.reset();  // unclean: the next open scans and rebuilds the indexes
  ASSERT_TRUE(fs_.Remove("data/t-0/00000000000000000000.timeindex").ok());
  log = OpenLog(c);
  check(*log);
}

// Retention removed the oldest segments: a timestamp older than everything answers the log
// start offset's first record, never a record below the log start.
TEST_F(LogTimestampTest, NeverBelowTheLogStartAfterRetention) {
  LogConfig c = Config();
  c.segment_bytes = 4096;
  c.retention_bytes = 8 * 1024;
  auto log = OpenLog(c);
  for (int i = 0; i < 200; ++i) {
    Append(*log, MakeRecordBatch({2000 + 10 * i + 5, 2000 + 10 * i}, Compression::kSnappy));
  }
  auto n = log->ApplyRetention(1'000'000);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_GT(n->segments, 0);
  const int64_t start = log->log_start_offset().value();
  ASSERT_GT(start, 0);
  ASSERT_EQ(start % 2, 0);
  const int64_t first_ts = 2000 + 10 * (start / 2) + 5;  // the start batch's first record
  EXPECT_EQ(Find(*log, 0), Found(start, first_ts));
  EXPECT_EQ(Find(*log, 2000), Found(start, first_ts));  // older records were deleted
  EXPECT_EQ(Find(*log, first_ts), Found(start, first_ts));
  EXPECT_EQ(Find(*log, first_ts + 1), Found(start + 2, first_ts + 10));
  // Truncation below the log start empties the log: nothing to find.
  ASSERT_TRUE(log->TruncateTo(Offset(start)).ok());
  EXPECT_EQ(Find(*log, 0), Found(-1, -1));
}

// After a truncation inside the active segment the remaining batches (newer than the segment's
// last time-index entry) are still found.
TEST_F(LogTimestampTest, FindsTheRemainingBatchesAfterTruncation) {
  LogConfig c = Config();
  c.segment_bytes = 1 << 20;
  c.index_interval_bytes = 4096;
  auto log = OpenLog(c);
  for (int i = 0; i < 40; ++i) Append(*log, MakeRecordBatch({100 + i}));  // offsets 0-39
  ASSERT_TRUE(log->TruncateTo(Offset(30)).ok());
  EXPECT_EQ(Find(*log, 125), Found(25, 125));
  EXPECT_EQ(Find(*log, 129), Found(29, 129));
  EXPECT_EQ(Find(*log, 130), Found(-1, -1));
  Append(*log, MakeRecordBatch({50, 500}));  // offsets 30-31
  EXPECT_EQ(Find(*log, 130), Found(31, 500));
  ASSERT_TRUE(log->TruncateTo(Offset(0)).ok());
  EXPECT_EQ(Find(*log, 0), Found(-1, -1));
}

// A batch whose records do not decode, or whose bytes were flipped on disk, is reported as
// kCorruption naming the partition and the position; lookups answered before it still work.
TEST_F(LogTimestampTest, CorruptBatchIsAClearError) {
  auto log = OpenLog(Config());
  Append(*log, MakeRecordBatch({100, 200}));  // offsets 0-1
  // Valid header and CRC, garbage records (the log accepts it: it never decodes on append).
  AppendResult garbage = Append(*log, MakeBatch(3, 200, /*max_timestamp=*/300, 5));      // 2-4
  AppendResult flipped = Append(*log, MakeRecordBatch({400, 500}, Compression::kZstd));  // 5-6
  Append(*log, MakeRecordBatch({600}));                                                  // 7

  EXPECT_EQ(Find(*log, 150), Found(1, 200));
  auto r = log->OffsetForTimestamp(250);
  ASSERT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
  EXPECT_NE(r.status().message().find("t-0"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("position " + std::to_string(garbage.position)),
            std::string::npos)
      << r.status().message();

  EXPECT_EQ(Find(*log, 450), Found(6, 500));
  fs_.FlipBit("data/t-0/00000000000000000000.log", flipped.position + batch::kHeaderSize + 3, 1);
  r = log->OffsetForTimestamp(450);
  ASSERT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().ToString();
  EXPECT_NE(r.status().message().find("CRC"), std::string::npos) << r.status().message();
  // A lookup whose answer lies after the damaged batches skips them by their headers.
  EXPECT_EQ(Find(*log, 550), Found(7, 600));
}

// Random batches (random codecs, record counts and timestamps, some LogAppendTime) against a
// model that walks every record in offset order.
TEST_F(LogTimestampTest, RandomisedAgainstAModel) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE("seed " + std::to_string(seed) + " (replay with RILL_SEED)");
  std::mt19937_64 rng(seed);
  LogConfig c = Config();
  c.segment_bytes = 4096;
  auto log = OpenLog(c);
  std::vector<std::pair<int64_t, int64_t>> model;  // (offset, timestamp) in offset order
  const Compression codecs[] = {Compression::kNone, Compression::kGzip, Compression::kSnappy,
                                Compression::kLz4, Compression::kZstd};
  int64_t clock = 10'000;
  for (int b = 0; b < 150; ++b) {
    int n = 1 + static_cast<int>(rng() % 6);
    std::vector<int64_t> ts;
    for (int i = 0; i < n; ++i) ts.push_back(clock + static_cast<int64_t>(rng() % 200) - 100);
    clock += static_cast<int64_t>(rng() % 30);
    bool append_time = rng() % 8 == 0;
    AppendResult a = Append(*log, MakeRecordBatch(ts, codecs[rng() % 5], append_time ? clock : -1));
    for (int i = 0; i < n; ++i) {
      model.emplace_back(a.base_offset.value() + i, append_time ? clock : ts[i]);
    }
  }
  auto expect = [&](int64_t t) {
    for (const auto& [o, ts] : model) {
      if (ts >= t) return Found(o, ts);
    }
    return Found(-1, -1);
  };
  for (int q = 0; q < 400; ++q) {
    int64_t t = 9'800 + static_cast<int64_t>(rng() % (clock - 9'800 + 300));
    ASSERT_EQ(Find(*log, t), expect(t)) << "timestamp " << t;
  }
}

}  // namespace
}  // namespace rill::storage
