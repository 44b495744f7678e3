// Consumer against an in-process fake broker: positions, seeks, decoding every codec, skipping
// records below the position, OFFSET_OUT_OF_RANGE handling, errors, long-poll wake-up; and
// against two fake brokers as one cluster: each partition read at its leader, following it when
// it moves.

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

// Two fake brokers as one cluster: node 1 (the bootstrap) and node 2, with the same view of who
// leads what; "t" has two partitions.
struct TwoBrokers {
  TwoBrokers() {
    b.SetNodeId(2);
    for (FakeBroker* x : {&a, &b}) {
      x->SetBrokers({{1, a.address()}, {2, b.address()}});
      x->AddTopic("t", 2);
    }
  }
  void SetLeader(const TopicPartition& tp, int32_t node) {
    a.SetLeader(tp, node);
    b.SetLeader(tp, node);
  }
  FakeBroker a;
  FakeBroker b;
};

// The offsets of `records` of partition `p`, in the order they came.
std::vector<int64_t> OffsetsOf(const std::vector<ConsumerRecord>& records, int32_t p) {
  std::vector<int64_t> out;
  for (const auto& r : records) {
    if (r.partition == p) out.push_back(r.offset);
  }
  return out;
}

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t i = from; i < to; ++i) out.push_back(i);
  return out;
}

TEST(ConsumerLeaderTest, ReadsAndListsEachPartitionAtItsLeader) {
  TwoBrokers cluster;
  cluster.SetLeader({"t", 1}, 2);
  AppendRecords(cluster.a, {"t", 0}, 0, 10);
  AppendRecords(cluster.b, {"t", 1}, 100, 15);
  auto c = Consumer::Create(Config(cluster.a));  // bootstrapped at node 1 only
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"t", 0}, {"t", 1}}).ok());
  auto records = PollN(**c, 25);
  ASSERT_EQ(records.size(), 25u);
  EXPECT_EQ(OffsetsOf(records, 0), Range(0, 10));
  EXPECT_EQ(OffsetsOf(records, 1), Range(0, 15));
  for (const auto& r : records) {
    if (r.partition == 1) {
      EXPECT_EQ(r.value, "v" + std::to_string(100 + r.offset));
    }
  }
  // Only node 2 holds records of partition 1: its end comes from there.
  ASSERT_TRUE((*c)->SeekToEnd({{"t", 1}}).ok());
  EXPECT_EQ(*(*c)->Position({"t", 1}), 15);
  EXPECT_EQ(cluster.a.fetches_of({"t", 1}), 0);
  EXPECT_EQ(cluster.b.fetches_of({"t", 0}), 0);
  EXPECT_EQ(cluster.a.not_leader_answers({"t", 1}), 0);
}

TEST(ConsumerLeaderTest, FollowsTheLeaderAfterNotLeaderWithoutLosingOrRepeatingRecords) {
  TwoBrokers cluster;
  cluster.SetLeader({"t", 1}, 2);
  // Partition 1 is replicated on both nodes: the same records at the same offsets.
  for (FakeBroker* x : {&cluster.a, &cluster.b}) {
    AppendRecords(*x, {"t", 1}, 0, 10);
    AppendRecords(*x, {"t", 1}, 10, 10);
  }
  auto cfg = Config(cluster.a);
  cfg.fetch_max_wait_ms = 5000;  // the fetch to node 2 is a long poll when leadership moves
  auto c = Consumer::Create(cfg);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"t", 1}}).ok());
  auto first = PollN(**c, 20);
  ASSERT_EQ(OffsetsOf(first, 1), Range(0, 20));
  EXPECT_EQ(cluster.a.fetches_of({"t", 1}), 0);

  // Node 1 takes over; node 2 now answers NOT_LEADER. New records land on the new leader only.
  const int metadata_before = cluster.a.metadata_requests();
  cluster.SetLeader({"t", 1}, 1);
  AppendRecords(cluster.a, {"t", 1}, 20, 10);
  auto second = PollN(**c, 10);
  EXPECT_EQ(OffsetsOf(second, 1), Range(20, 30));
  for (const auto& r : second) EXPECT_EQ(r.value, "v" + std::to_string(r.offset));
  EXPECT_GT(cluster.b.not_leader_answers({"t", 1}), 0);
  EXPECT_GT(cluster.a.fetches_of({"t", 1}), 0);
  EXPECT_GT(cluster.a.metadata_requests(), metadata_before);
  // Nothing more, in particular no record delivered a second time.
  auto more = (*c)->Poll(300ms);
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(more->empty());
  EXPECT_EQ(*(*c)->Position({"t", 1}), 30);
}

TEST(ConsumerLeaderTest, MovesToTheNewLeaderWhenTheOldOneCannotBeReached) {
  TwoBrokers cluster;
  cluster.SetLeader({"t", 0}, 2);
  for (FakeBroker* x : {&cluster.a, &cluster.b}) AppendRecords(*x, {"t", 0}, 0, 5);
  auto c = Consumer::Create(Config(cluster.a));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"t", 0}}).ok());
  ASSERT_EQ(OffsetsOf(PollN(**c, 5), 0), Range(0, 5));

  // Node 2 dies; the cluster (node 1's metadata) moves the leadership to node 1.
  cluster.b.Shutdown();
  cluster.a.SetLeader({"t", 0}, 1);
  AppendRecords(cluster.a, {"t", 0}, 5, 5);
  EXPECT_EQ(OffsetsOf(PollN(**c, 5), 0), Range(5, 10));
  EXPECT_EQ(*(*c)->Position({"t", 0}), 10);
}

TEST(ConsumerLeaderTest, SeekToBeginningFollowsAMovedLeader) {
  TwoBrokers cluster;
  cluster.SetLeader({"t", 0}, 2);
  for (FakeBroker* x : {&cluster.a, &cluster.b}) AppendRecords(*x, {"t", 0}, 0, 10);
  cluster.a.SetLogStart({"t", 0}, 3);  // the two nodes disagree on where the log starts
  cluster.b.SetLogStart({"t", 0}, 7);
  auto c = Consumer::Create(Config(cluster.a));
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"t", 0}}).ok());
  ASSERT_TRUE((*c)->SeekToBeginning().ok());
  EXPECT_EQ(*(*c)->Position({"t", 0}), 7);
  // Leadership moves back to node 1: node 2's NOT_LEADER sends the consumer there.
  cluster.SetLeader({"t", 0}, 1);
  ASSERT_TRUE((*c)->SeekToBeginning().ok());
  EXPECT_EQ(*(*c)->Position({"t", 0}), 3);
  EXPECT_GT(cluster.b.not_leader_answers({"t", 0}), 0);
}

}  // namespace
}  // namespace rill::client
