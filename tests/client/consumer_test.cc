// Consumer against an in-process fake broker: positions, seeks, decoding every codec, skipping
// records below the position, OFFSET_OUT_OF_RANGE handling, errors, long-poll wake-up.

#include "rill/client/consumer.h"

#include <gtest/gtest.h>

#include <thread>

#include "fake_broker.h"

namespace rill::client {
namespace {

using namespace std::chrono_literals;
using testing::FakeBroker;

ConsumerConfig Config(const FakeBroker& broker, OffsetReset reset = OffsetReset::kEarliest) {
  ConsumerConfig c;
  c.bootstrap = broker.address();
  c.auto_offset_reset = reset;
  c.fetch_max_wait_ms = 50;
  return c;
}

// Appends a batch of `n` records "v<first>".."v<first+n-1>" with keys and a header.
void AppendRecords(FakeBroker& broker, const TopicPartition& tp, int first, int n,
                   batch::Compression codec = batch::Compression::kNone) {
  batch::BatchBuilder b(codec);
  for (int i = first; i < first + n; ++i) {
    std::vector<batch::RecordHeader> hs = {{"i", std::to_string(i)}};
    ASSERT_TRUE(b.Add("k" + std::to_string(i), "v" + std::to_string(i), 1000 + i, hs).ok());
  }
  auto bytes = b.Build();
  ASSERT_TRUE(bytes.ok());
  broker.AppendBatch(tp, std::move(bytes).value());
}

// Polls until `n` records arrived or a deadline passes.
std::vector<ConsumerRecord> PollN(Consumer& c, size_t n) {
  std::vector<ConsumerRecord> all;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (all.size() < n && std::chrono::steady_clock::now() < deadline) {
    auto r = c.Poll(100ms);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) break;
    for (auto& rec : *r) all.push_back(std::move(rec));
  }
  return all;
}

TEST(ConsumerTest, ReadsFromTheBeginningInOrderWithKeysHeadersAndTimestamps) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  AppendRecords(broker, {"t", 0}, 0, 10);
  AppendRecords(broker, {"t", 0}, 10, 10);
  auto c = Consumer::Create(Config(broker));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"t", 0}}).ok());
  auto records = PollN(**c, 20);
  ASSERT_EQ(records.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(records[i].offset, i);
    EXPECT_EQ(records[i].key, "k" + std::to_string(i));
    EXPECT_EQ(records[i].value, "v" + std::to_string(i));
    EXPECT_EQ(records[i].timestamp_ms, 1000 + i);
    ASSERT_EQ(records[i].headers.size(), 1u);
    EXPECT_EQ(records[i].headers[0].second, std::to_string(i));
  }
  auto pos = (*c)->Position({"t", 0});
  ASSERT_TRUE(pos.ok());
  EXPECT_EQ(*pos, 20);
}

TEST(ConsumerTest, SeekIntoABatchSkipsRecordsBelowThePosition) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  AppendRecords(broker, {"t", 0}, 0, 10);
  auto c = Consumer::Create(Config(broker));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"t", 0}}).ok());
  ASSERT_TRUE((*c)->Seek({"t", 0}, 7).ok());
  auto records = PollN(**c, 3);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].offset, 7);
  EXPECT_EQ(records[2].value, "v9");
}

TEST(ConsumerTest, DecodesEveryCodec) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  int first = 0;
  for (auto codec :
       {batch::Compression::kGzip, batch::Compression::kSnappy, batch::Compression::kLz4,
        batch::Compression::kZstd, batch::Compression::kNone}) {
    AppendRecords(broker, {"t", 0}, first, 5, codec);
    first += 5;
  }
  auto c = Consumer::Create(Config(broker));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"t", 0}}).ok());
  auto records = PollN(**c, 25);
  ASSERT_EQ(records.size(), 25u);
  for (int i = 0; i < 25; ++i) EXPECT_EQ(records[i].value, "v" + std::to_string(i));
}

TEST(ConsumerTest, LatestResetReadsOnlyNewRecordsAndLongPollWakesUp) {
  FakeBroker broker;
  broker.AddTopic("t", 2);
  AppendRecords(broker, {"t", 0}, 0, 5);
  auto cfg = Config(broker, OffsetReset::kLatest);
  cfg.fetch_max_wait_ms = 5000;  // the fetch waits in the broker until data arrives
  auto c = Consumer::Create(cfg);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"t", 0}, {"t", 1}}).ok());
  // Wait until the position is resolved to the end, then produce.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!(*c)->Position({"t", 0}).ok() && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE((*c)->Poll(10ms).ok());
  }
  ASSERT_EQ(*(*c)->Position({"t", 0}), 5);
  AppendRecords(broker, {"t", 1}, 100, 1);
  auto records = PollN(**c, 1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].partition, 1);
  EXPECT_EQ(records[0].value, "v100");
}

TEST(ConsumerTest, OutOfRangeResetsToEarliest) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  AppendRecords(broker, {"t", 0}, 0, 3);
  auto c = Consumer::Create(Config(broker, OffsetReset::kEarliest));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"t", 0}}).ok());
  ASSERT_TRUE((*c)->Seek({"t", 0}, 1000).ok());
  auto records = PollN(**c, 3);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].offset, 0);
}

TEST(ConsumerTest, OutOfRangeWithResetErrorIsReported) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  AppendRecords(broker, {"t", 0}, 0, 3);
  auto c = Consumer::Create(Config(broker, OffsetReset::kError));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"t", 0}}).ok());
  ASSERT_TRUE((*c)->Seek({"t", 0}, 1000).ok());
  Status error;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (error.ok() && std::chrono::steady_clock::now() < deadline) {
    auto r = (*c)->Poll(50ms);
    if (!r.ok()) error = r.status();
  }
  EXPECT_EQ(error.code(), StatusCode::kOutOfRange);
  EXPECT_NE(error.message().find("t-0"), std::string::npos) << error.ToString();
  // Seeking again resumes the partition.
  ASSERT_TRUE((*c)->Seek({"t", 0}, 0).ok());
  EXPECT_EQ(PollN(**c, 3).size(), 3u);
}

TEST(ConsumerTest, UnknownTopicIsReported) {
  FakeBroker broker;
  auto c = Consumer::Create(Config(broker));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"missing", 0}}).ok());
  Status error;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (error.ok() && std::chrono::steady_clock::now() < deadline) {
    auto r = (*c)->Poll(50ms);
    if (!r.ok()) error = r.status();
  }
  EXPECT_TRUE(error.IsNotFound()) << error.ToString();
  EXPECT_NE(error.message().find("UNKNOWN_TOPIC"), std::string::npos) << error.ToString();
}

TEST(ConsumerTest, SeekToTimestampAndEnd) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  AppendRecords(broker, {"t", 0}, 0, 10);  // timestamps 1000..1009
  auto c = Consumer::Create(Config(broker));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"t", 0}}).ok());
  ASSERT_TRUE((*c)->SeekToTimestamp({{"t", 0}}, 1004).ok());
  EXPECT_EQ(*(*c)->Position({"t", 0}), 4);
  ASSERT_TRUE((*c)->SeekToTimestamp({{"t", 0}}, 999999).ok());
  EXPECT_EQ(*(*c)->Position({"t", 0}), 10);
  ASSERT_TRUE((*c)->SeekToBeginning().ok());
  EXPECT_EQ(*(*c)->Position({"t", 0}), 0);
  ASSERT_TRUE((*c)->SeekToEnd().ok());
  EXPECT_EQ(*(*c)->Position({"t", 0}), 10);
  EXPECT_FALSE((*c)->Seek({"other", 0}, 1).ok());
  EXPECT_TRUE((*c)->Position({"other", 0}).status().IsNotFound());
}

TEST(ConsumerTest, ProducedRecordsComeBack) {
  // Many partitions, bounded prefetch: everything arrives exactly once per offset.
  FakeBroker broker;
  broker.AddTopic("t", 4);
  for (int p = 0; p < 4; ++p) {
    for (int b = 0; b < 20; ++b) AppendRecords(broker, {"t", p}, b * 50, 50);
  }
  auto cfg = Config(broker);
  cfg.max_prefetch_bytes = 4096;
  cfg.max_partition_fetch_bytes = 2048;
  cfg.max_poll_records = 100;
  auto c = Consumer::Create(cfg);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"t", 0}, {"t", 1}, {"t", 2}, {"t", 3}}).ok());
  auto records = PollN(**c, 4000);
  ASSERT_EQ(records.size(), 4000u);
  std::vector<int64_t> next(4, 0);
  for (const auto& r : records) {
    EXPECT_EQ(r.offset, next[r.partition]) << "partition " << r.partition;
    next[r.partition] = r.offset + 1;
  }
}

}  // namespace
}  // namespace rill::client
