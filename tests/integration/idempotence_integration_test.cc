// Idempotent producers through real brokers (docs/IDEMPOTENCE.md):
//   - the broker's answers to raw idempotent batches: a retry is answered with the original
//     offsets and not appended again, a sequence gap, a stale epoch and inconsistent producer
//     fields each get their own error and change nothing, and the state survives a restart;
//   - InitProducerId never gives an id twice, across brokers and a controller restart;
//   - the client, on by default, under repeated kill -9 of the partition leader while it writes:
//     every value is in the partition exactly once, in the order it was sent.

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker_process.h"
#include "cluster_fixture.h"
#include "rill/client/producer.h"
#include "rill/proto/batch_header.h"
#include "rill/proto/record_batch.h"
#include "rill/v1/producer.grpc.pb.h"
#include "support/poll.h"

namespace rill::client {
namespace {

using rill::testing::BrokerProcess;

// One batch of `count` records "<tag>-<i>" with the given producer fields.
std::string IdempotentBatch(int64_t producer_id, int16_t epoch, int32_t base_sequence, int count,
                            const std::string& tag) {
  batch::BatchBuilder b(batch::Compression::kNone, producer_id, epoch, base_sequence);
  for (int i = 0; i < count; ++i) {
    std::string v = tag + "-" + std::to_string(i);
    EXPECT_TRUE(b.Add(std::nullopt, std::string_view(v), 1000 + i).ok());
  }
  auto built = b.Build();
  EXPECT_TRUE(built.ok()) << built.status().ToString();
  return built.ok() ? *built : std::string();
}

class IdempotentBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("rill_idempotence_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    broker_ = std::make_unique<BrokerProcess>(dir_);
    broker_->Start();
    if (HasFatalFailure()) return;
    ASSERT_EQ(broker_->CreateTopic("t", 1).error(), v1::NONE);
  }
  void TearDown() override {
    if (HasFailure() && broker_) std::cerr << broker_->log();
    broker_.reset();
    std::filesystem::remove_all(dir_);
  }

  v1::InitProducerIdResponse Init() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::InitProducerIdRequest req;
    req.set_client_id("test");
    v1::InitProducerIdResponse resp;
    grpc::Status st = broker_->producer->InitProducerId(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  v1::PartitionProduceResult Produce(const std::string& records, const std::string& topic = "t") {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    v1::ProduceRequest req;
    req.set_acks(-1);
    auto* p = req.add_partitions();
    p->set_topic(topic);
    p->set_partition(0);
    p->set_records(records);
    v1::ProduceResponse resp;
    grpc::Status st = broker_->producer->Produce(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    if (resp.partitions_size() != 1) {
      ADD_FAILURE() << "no result";
      return {};
    }
    return resp.partitions(0);
  }

  int64_t LogEnd() {
    int64_t hw = -1;
    broker_->ReadAll("t", 0, &hw);
    return hw;
  }

  std::string dir_;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(IdempotentBrokerTest, RetryIsAnsweredWithOriginalOffsetsAndBadSequencesChangeNothing) {
  const v1::InitProducerIdResponse id = Init();
  ASSERT_EQ(id.error(), v1::NONE) << id.error_message();
  ASSERT_GE(id.producer_id(), 0);
  ASSERT_EQ(id.producer_epoch(), 0);
  const int64_t pid = id.producer_id();

  auto first = Produce(IdempotentBatch(pid, 0, 0, 3, "a"));
  ASSERT_EQ(first.error(), v1::NONE) << first.error_message();
  EXPECT_EQ(first.base_offset(), 0);
  auto second = Produce(IdempotentBatch(pid, 0, 3, 2, "b"));
  ASSERT_EQ(second.error(), v1::NONE) << second.error_message();
  EXPECT_EQ(second.base_offset(), 3);

  // The retry of the first batch (the ack was lost): its original offsets, nothing appended.
  auto retry = Produce(IdempotentBatch(pid, 0, 0, 3, "a"));
  ASSERT_EQ(retry.error(), v1::NONE) << retry.error_message();
  EXPECT_EQ(retry.base_offset(), 0);
  EXPECT_EQ(retry.last_offset(), 2);
  EXPECT_EQ(LogEnd(), 5);

  // A gap: sequence 7 where 5 is next.
  auto gap = Produce(IdempotentBatch(pid, 0, 7, 1, "gap"));
  EXPECT_EQ(gap.error(), v1::OUT_OF_ORDER_SEQUENCE_NUMBER);
  EXPECT_NE(gap.error_message().find("5"), std::string::npos) << gap.error_message();
  // A new epoch must start at sequence 0.
  auto new_epoch_late = Produce(IdempotentBatch(pid, 1, 5, 1, "e1"));
  EXPECT_EQ(new_epoch_late.error(), v1::OUT_OF_ORDER_SEQUENCE_NUMBER);
  // Producer fields that cannot be valid.
  auto bad_fields = Produce(IdempotentBatch(pid, -1, 5, 1, "bad"));
  EXPECT_EQ(bad_fields.error(), v1::INVALID_PRODUCER_FIELDS) << bad_fields.error_message();
  EXPECT_EQ(LogEnd(), 5) << "a refused batch was appended";

  // Epoch 1 at sequence 0 takes over; epoch 0 is fenced from then on.
  auto bumped = Produce(IdempotentBatch(pid, 1, 0, 1, "c"));
  ASSERT_EQ(bumped.error(), v1::NONE) << bumped.error_message();
  EXPECT_EQ(bumped.base_offset(), 5);
  auto stale = Produce(IdempotentBatch(pid, 0, 5, 1, "stale"));
  EXPECT_EQ(stale.error(), v1::INVALID_PRODUCER_EPOCH);
  EXPECT_NE(stale.error_message().find("epoch"), std::string::npos) << stale.error_message();
  EXPECT_EQ(LogEnd(), 6);

  // The state survives a restart (rebuilt from the log and its snapshot): the retry of the last
  // batch is still recognised, and the next sequence still expected.
  ASSERT_EQ(broker_->Stop(), 0);
  broker_->Start();
  ASSERT_TRUE(test::PollUntil([&] { return Produce(IdempotentBatch(pid, 1, 0, 1, "c")).error() ==
                                           v1::NONE; },
                              30s, 50ms));
  auto after = Produce(IdempotentBatch(pid, 1, 0, 1, "c"));
  EXPECT_EQ(after.base_offset(), 5) << "the retry after a restart was appended again";
  auto next = Produce(IdempotentBatch(pid, 1, 1, 1, "d"));
  ASSERT_EQ(next.error(), v1::NONE) << next.error_message();
  EXPECT_EQ(next.base_offset(), 6);
  auto gap_after = Produce(IdempotentBatch(pid, 1, 9, 1, "gap"));
  EXPECT_EQ(gap_after.error(), v1::OUT_OF_ORDER_SEQUENCE_NUMBER);
  EXPECT_EQ(LogEnd(), 7);
}

// producer.id.expiration.ms is applied by the broker: once a producer has been idle that long
// (the housekeeper checks every 100 ms here), the partition forgets it, and its next batch is
// accepted at any sequence (an unknown producer, Kafka's KIP-360) where a gap was refused before.
TEST_F(IdempotentBrokerTest, IdleProducersExpireByTheTopicSetting) {
  ASSERT_EQ(broker_->Stop(), 0);
  broker_->Start({"--log.retention.check.interval.ms", "100"});
  ASSERT_EQ(broker_->CreateTopic("expiring", 1, {{"producer.id.expiration.ms", "2000"}}).error(),
            v1::NONE);
  const v1::InitProducerIdResponse id = Init();
  ASSERT_EQ(id.error(), v1::NONE) << id.error_message();
  const int64_t pid = id.producer_id();
  ASSERT_EQ(Produce(IdempotentBatch(pid, 0, 0, 3, "a"), "expiring").error(), v1::NONE);
  // Remembered: a gap is refused (checked at once, well inside the 2 s).
  EXPECT_EQ(Produce(IdempotentBatch(pid, 0, 7, 1, "gap"), "expiring").error(),
            v1::OUT_OF_ORDER_SEQUENCE_NUMBER);
  // The same producer on topic "t" (default expiry, one day) is remembered all along.
  ASSERT_EQ(Produce(IdempotentBatch(pid, 0, 0, 1, "t0")).error(), v1::NONE);
  // Expired: the same batch is accepted.
  EXPECT_TRUE(test::PollUntil(
      [&] {
        return Produce(IdempotentBatch(pid, 0, 7, 1, "gap"), "expiring").error() == v1::NONE;
      },
      20s, 100ms))
      << "the producer was never expired";
  EXPECT_EQ(Produce(IdempotentBatch(pid, 0, 7, 1, "gap")).error(),
            v1::OUT_OF_ORDER_SEQUENCE_NUMBER)
      << "a topic with the default expiry forgot the producer";
}

// Ids come in blocks committed to the metadata log: a restarted broker never hands out an id
// it gave before.
TEST_F(IdempotentBrokerTest, ProducerIdsAreNeverGivenTwiceAcrossRestarts) {
  std::set<int64_t> seen;
  for (int i = 0; i < 50; ++i) {
    auto r = Init();
    ASSERT_EQ(r.error(), v1::NONE) << r.error_message();
    EXPECT_TRUE(seen.insert(r.producer_id()).second) << "id " << r.producer_id() << " twice";
  }
  for (int restart = 0; restart < 2; ++restart) {
    ASSERT_EQ(broker_->Stop(), 0);
    broker_->Start();
    for (int i = 0; i < 10; ++i) {
      auto r = Init();
      ASSERT_EQ(r.error(), v1::NONE) << r.error_message();
      EXPECT_TRUE(seen.insert(r.producer_id()).second) << "id " << r.producer_id() << " twice";
    }
  }
}

// The client with its defaults (idempotence on) against a broker: acks 0/1 with idempotence
// asked for explicitly is a configuration error, and a plain producer's records get sequences
// (the broker answers its retries as duplicates).
TEST_F(IdempotentBrokerTest, ClientConfigurationRules) {
  ProducerConfig pc;
  pc.bootstrap = "127.0.0.1:" + std::to_string(broker_->client_port());
  pc.enable_idempotence = true;
  pc.acks = 1;
  auto bad = Producer::Create(pc);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("acks"), std::string::npos) << bad.status().ToString();
  pc.acks = -1;
  auto good = Producer::Create(pc);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  for (int i = 0; i < 10; ++i) {
    auto md = (*good)->Send(ToPartition("t", 0, "x" + std::to_string(i))).get();
    ASSERT_TRUE(md.ok()) << md.status().ToString();
  }
  // The batches carry one producer id, epoch 0 and consecutive sequences from 0.
  int64_t hw = -1;
  ASSERT_EQ(broker_->ReadAll("t", 0, &hw).size(), 10u);
  std::string records;
  for (int64_t next = 0; next < hw;) {
    v1::FetchPartitionResult f = broker_->Fetch("t", 0, next);
    ASSERT_EQ(f.error(), v1::NONE) << f.error_message();
    ASSERT_FALSE(f.records().empty());
    batch::BatchIterator it(f.records());
    while (it.Next()) {
      records.append(it.batch().data(), it.batch().size());
      next = it.header().last_offset() + 1;
    }
  }
  batch::BatchIterator it(records);
  int64_t producer_id = -1;
  int32_t expected_sequence = 0;
  while (it.Next()) {
    const batch::Header& h = it.header();
    if (producer_id < 0) producer_id = h.producer_id;
    EXPECT_GE(h.producer_id, 0);
    EXPECT_EQ(h.producer_id, producer_id);
    EXPECT_EQ(h.producer_epoch, 0);
    EXPECT_EQ(h.base_sequence, expected_sequence);
    expected_sequence += h.record_count;
  }
  EXPECT_EQ(expected_sequence, 10);
}

// ---- the client under repeated leader kills ----

class IdempotentClusterTest : public ClusterTest {};

TEST_F(IdempotentClusterTest, LeaderKilledRepeatedlyEveryValueOnceInOrder) {
  CreateTopic("exactly-once", 1);
  ProducerConfig pc;
  pc.bootstrap = Bootstrap();
  pc.linger_ms = 1;
  pc.batch_size = 2048;  // many small batches, several in flight when the leader dies
  pc.retry_backoff_ms = 50;
  pc.retry_backoff_max_ms = 200;
  pc.request_timeout_ms = 5000;
  pc.delivery_timeout_ms = 120000;
  pc.metadata_max_age_ms = 1000;
  auto created = Producer::Create(pc);  // idempotence on by default
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::unique_ptr<Producer> producer = std::move(created).value();

  std::atomic<int64_t> acked{0};
  std::atomic<int64_t> failed{0};
  std::mutex mu;
  std::string first_error;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> sent{0};
  std::thread writer([&] {
    for (int64_t i = 0; !stop.load(); ++i) {
      producer->Send(ToPartition("exactly-once", 0, "v" + std::to_string(i)),
                     [&](const Result<RecordMetadata>& md) {
                       if (md.ok()) {
                         acked++;
                       } else {
                         std::lock_guard lock(mu);
                         if (failed++ == 0) first_error = md.status().ToString();
                       }
                     });
      sent = i + 1;
      // Keep a bounded number outstanding so the run stays short and each kill hits traffic.
      while (!stop.load() && sent.load() - acked.load() - failed.load() > 2000) {
        std::this_thread::yield();
      }
    }
  });
  StopAndJoin join_on_exit{stop, writer};

  constexpr int kKills = 3;
  for (int round = 0; round < kKills; ++round) {
    const int64_t before = acked.load();
    ASSERT_TRUE(test::PollUntil([&] { return acked.load() >= before + 3000; }, 60s, 2ms))
        << "round " << round << ": the producer made no progress";
    const int leader = WaitForLeader("exactly-once", 0);
    ASSERT_GT(leader, 0);
    Node(leader).Kill9();
    const int64_t at_kill = acked.load();
    ASSERT_TRUE(test::PollUntil([&] { return acked.load() > at_kill + 100; }, 60s, 2ms))
        << "round " << round << ": no write succeeded after the leader was killed";
    Launch(leader);
    Node(leader).WaitReady();
    ASSERT_GT(WaitForLeader("exactly-once", 0, kNodes), 0)
        << "round " << round << ": the restarted node did not rejoin the ISR";
  }
  stop = true;
  writer.join();
  producer->Flush();
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(failed.load(), 0) << "first failure: " << first_error;
  }
  const int64_t total = sent.load();
  ASSERT_EQ(acked.load(), total);

  const int leader = WaitForLeader("exactly-once", 0);
  ASSERT_GT(leader, 0);
  int64_t hw = -1;
  auto read = Node(leader).ReadAll("exactly-once", 0, &hw);
  std::map<std::string, int> count;
  int64_t expected = 0;
  int64_t out_of_order = 0;
  int64_t duplicates = 0;
  for (const auto& r : read) {
    const std::string v = r.record.value.value_or("");
    if (++count[v] > 1) {
      ++duplicates;
      continue;
    }
    if (v != "v" + std::to_string(expected)) ++out_of_order;
    ++expected;
  }
  int64_t duplicate_batches = 0;
  for (int n = 1; n <= kNodes; ++n) {
    if (!Node(n).running()) continue;
    const std::string body = rill::testing::HttpGet(Node(n).http_port(), "/metrics");
    const std::string key = "\nrill_produce_duplicate_batches_total ";
    auto pos = body.find(key);
    if (pos != std::string::npos) duplicate_batches += std::stoll(body.substr(pos + key.size()));
  }
  std::cout << "idempotence under " << kKills << " leader kills: " << total
            << " records acknowledged, " << duplicate_batches
            << " retried batches answered as duplicates by the brokers that are up\n";
  EXPECT_EQ(duplicates, 0) << "values written twice";
  EXPECT_EQ(out_of_order, 0) << "values out of the order they were sent";
  EXPECT_EQ(static_cast<int64_t>(count.size()), total) << "acknowledged values missing";
}

}  // namespace
}  // namespace rill::client
