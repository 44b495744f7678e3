// Producer against an in-process fake broker (a real gRPC server on a free loopback port):
// delivery, offsets, ordering, retries on retriable errors, failures, backpressure, codecs.

#include "rill/client/producer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <mutex>

#include "fake_broker.h"
#include "rill/client/errors.h"
#include "rill/client/partitioner.h"
#include "support/free_port.h"

namespace rill::client {
namespace {

using testing::FakeBroker;

ProducerConfig Config(const FakeBroker& broker) {
  ProducerConfig c;
  c.bootstrap = broker.address();
  c.linger_ms = 0;
  c.retry_backoff_ms = 1;
  c.retry_backoff_max_ms = 5;
  c.request_timeout_ms = 10000;
  return c;
}

// Collects callback results in completion order.
struct Results {
  std::mutex mu;
  std::vector<std::pair<int, Result<RecordMetadata>>> done;
  SendCallback For(int i) {
    return [this, i](const Result<RecordMetadata>& r) {
      std::lock_guard lk(mu);
      done.emplace_back(i, r);
    };
  }
};

ProducerRecord Rec(const std::string& topic, std::optional<int32_t> partition, std::string value) {
  ProducerRecord r;
  r.topic = topic;
  r.partition = partition;
  r.value = std::move(value);
  return r;
}

TEST(ProducerTest, DeliversWithOffsetsKeysHeadersAndNulls) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  auto p = Producer::Create(Config(broker));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ProducerRecord r1 = Rec("t", 0, "v1");
  r1.key = "k1";
  r1.headers = {{"h", "x"}, {"n", std::nullopt}};
  r1.timestamp_ms = 1234;
  ProducerRecord r2;
  r2.topic = "t";  // null key and value
  auto f1 = (*p)->Send(r1);
  auto f2 = (*p)->Send(r2);
  auto m1 = f1.get();
  auto m2 = f2.get();
  ASSERT_TRUE(m1.ok()) << m1.status().ToString();
  ASSERT_TRUE(m2.ok()) << m2.status().ToString();
  EXPECT_EQ(m1->topic, "t");
  EXPECT_EQ(m1->partition, 0);
  EXPECT_EQ(m1->offset, 0);
  EXPECT_EQ(m1->timestamp_ms, 1234);
  EXPECT_EQ(m2->offset, 1);
  auto stored = broker.Records({"t", 0});
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].key, "k1");
  EXPECT_EQ(stored[0].value, "v1");
  EXPECT_EQ(stored[0].timestamp_ms, 1234);
  ASSERT_EQ(stored[0].headers.size(), 2u);
  EXPECT_EQ(stored[0].headers[1].value, std::nullopt);
  EXPECT_EQ(stored[1].key, std::nullopt);
  EXPECT_EQ(stored[1].value, std::nullopt);
}

TEST(ProducerTest, KeyedRecordsLandOnTheirMurmur2Partition) {
  FakeBroker broker;
  broker.AddTopic("t", 5);
  auto p = Producer::Create(Config(broker));
  ASSERT_TRUE(p.ok());
  for (const std::string key : {"21", "foobar", "a", "b", "c"}) {
    ProducerRecord r = Rec("t", std::nullopt, "v");
    r.key = key;
    auto md = (*p)->Send(r).get();
    ASSERT_TRUE(md.ok()) << md.status().ToString();
    EXPECT_EQ(md->partition, KeyPartition(key, 5)) << key;
  }
}

TEST(ProducerTest, RetriesNotLeaderAndDeliversInOrder) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  broker.FailNextProduces(3, v1::NOT_LEADER);
  ProducerConfig c = Config(broker);
  c.max_in_flight = 1;
  c.batch_size = 200;  // a few records per batch: many batches must stay in order
  auto p = Producer::Create(c);
  ASSERT_TRUE(p.ok());
  Results results;
  constexpr int kRecords = 200;
  for (int i = 0; i < kRecords; ++i) (*p)->Send(Rec("t", 0, std::to_string(i)), results.For(i));
  (*p)->Flush();
  ASSERT_EQ(results.done.size(), static_cast<size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) {
    const auto& [idx, r] = results.done[i];
    EXPECT_EQ(idx, i);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->offset, i);
  }
  auto stored = broker.Records({"t", 0});
  ASSERT_EQ(stored.size(), static_cast<size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) EXPECT_EQ(stored[i].value, std::to_string(i));
  // Three refused requests were sent again, and NOT_LEADER made it refresh metadata.
  EXPECT_GE(broker.produce_requests(), 4);
  EXPECT_GE(broker.metadata_requests(), 2);
}

// One request carries several batches of two partitions, each batch its own entry; the broker
// fails one partition's entries and appends the other's. The failed batches are retried (their
// bytes recovered from the request), the others complete once, and every record lands once, in
// order, at the offset its callback reports. Whichever partition comes first in the request.
TEST(ProducerTest, PartlyFailedRequestRetriesOnlyTheFailedEntries) {
  for (int32_t failing = 0; failing < 2; ++failing) {
    FakeBroker broker;
    broker.AddTopic("t", 2);
    broker.FailNextProducesOf({"t", failing}, 2, v1::NOT_LEADER);
    ProducerConfig c = Config(broker);
    c.max_in_flight = 1;
    c.batch_size = 200;  // several batches per partition in one request
    c.linger_ms = 1000;  // everything is sent together, at Flush
    auto p = Producer::Create(c);
    ASSERT_TRUE(p.ok());
    Results results;
    constexpr int kPerPartition = 40;
    for (int i = 0; i < 2 * kPerPartition; ++i) {
      (*p)->Send(Rec("t", i % 2, std::to_string(i)), results.For(i));
    }
    (*p)->Flush();
    ASSERT_EQ(results.done.size(), static_cast<size_t>(2 * kPerPartition)) << "failing " << failing;
    for (const auto& [i, r] : results.done) {
      ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
      EXPECT_EQ(r->partition, i % 2);
      EXPECT_EQ(r->offset, i / 2) << "record " << i;
    }
    for (int32_t part = 0; part < 2; ++part) {
      auto stored = broker.Records({"t", part});
      ASSERT_EQ(stored.size(), static_cast<size_t>(kPerPartition)) << "partition " << part;
      for (int k = 0; k < kPerPartition; ++k) {
        EXPECT_EQ(stored[k].value, std::to_string(2 * k + part));
      }
    }
  }
}

// The broker is asked to answer (REQUEST_TIMED_OUT at worst) a little before the client's own
// request timeout would break the stream.
TEST(ProducerTest, AsksTheBrokerForAnAckTimeoutBelowItsOwn) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  for (auto [client_ms, broker_ms] : {std::pair{30000, 29000}, {5000, 4500}, {2000, 1800}}) {
    ProducerConfig c = Config(broker);
    c.request_timeout_ms = client_ms;
    auto p = Producer::Create(c);
    ASSERT_TRUE(p.ok());
    Results results;
    (*p)->Send(Rec("t", 0, "v"), results.For(0));
    (*p)->Flush();
    EXPECT_EQ(broker.last_produce_timeout_ms(), broker_ms) << client_ms;
  }
}

TEST(ProducerTest, RetriesBrokenStreamsAndTimeouts) {
  FakeBroker broker;
  broker.AddTopic("t", 2);
  broker.BreakNextStreams(2);
  broker.FailNextProduces(2, v1::REQUEST_TIMED_OUT);
  ProducerConfig c = Config(broker);
  c.max_in_flight = 1;
  auto p = Producer::Create(c);
  ASSERT_TRUE(p.ok());
  Results results;
  for (int i = 0; i < 50; ++i) (*p)->Send(Rec("t", i % 2, std::to_string(i)), results.For(i));
  (*p)->Flush();
  ASSERT_EQ(results.done.size(), 50u);
  for (const auto& [i, r] : results.done) ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
  auto p0 = broker.Records({"t", 0});
  auto p1 = broker.Records({"t", 1});
  ASSERT_EQ(p0.size(), 25u);
  ASSERT_EQ(p1.size(), 25u);
  for (int i = 0; i < 25; ++i) {
    EXPECT_EQ(p0[i].value, std::to_string(2 * i));
    EXPECT_EQ(p1[i].value, std::to_string(2 * i + 1));
  }
}

TEST(ProducerTest, PipelinedRequestsDeliverEverything) {
  FakeBroker broker;
  broker.AddTopic("t", 3);
  broker.FailNextProduces(2, v1::RESOURCE_EXHAUSTED);
  ProducerConfig c = Config(broker);
  c.max_in_flight = 5;
  c.batch_size = 1000;
  auto p = Producer::Create(c);
  ASSERT_TRUE(p.ok());
  std::atomic<int> ok{0}, failed{0};
  constexpr int kRecords = 5000;
  for (int i = 0; i < kRecords; ++i) {
    (*p)->Send(Rec("t", std::nullopt, std::string(50, 'x')),
               [&](const Result<RecordMetadata>& r) { (r.ok() ? ok : failed)++; });
  }
  (*p)->Flush();
  EXPECT_EQ(ok.load(), kRecords);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(broker.end_offset({"t", 0}) + broker.end_offset({"t", 1}) + broker.end_offset({"t", 2}),
            kRecords);
}

TEST(ProducerTest, NonRetriableErrorFailsTheRecordsOnce) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  broker.FailNextProduces(1, v1::MESSAGE_TOO_LARGE);
  auto p = Producer::Create(Config(broker));
  ASSERT_TRUE(p.ok());
  auto r = (*p)->Send(Rec("t", 0, "v")).get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("MESSAGE_TOO_LARGE"), std::string::npos)
      << r.status().ToString();
  EXPECT_EQ(broker.produce_requests(), 1);
  EXPECT_EQ(broker.end_offset({"t", 0}), 0);
}

TEST(ProducerTest, GivesUpAfterRetries) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  broker.FailNextProduces(1000, v1::NOT_LEADER);
  ProducerConfig c = Config(broker);
  c.retries = 2;
  auto p = Producer::Create(c);
  ASSERT_TRUE(p.ok());
  auto r = (*p)->Send(Rec("t", 0, "v")).get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("NOT_LEADER"), std::string::npos);
  EXPECT_NE(r.status().message().find("3 attempts"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(broker.produce_requests(), 3);
}

// A batch still waiting for its next retry when delivery_timeout_ms expires fails with a Timeout
// that says why it was being retried (here: the broker refusing produce for disk space).
TEST(ProducerTest, DeliveryTimeoutNamesTheLastRetriedError) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  broker.FailNextProduces(100000, v1::RESOURCE_EXHAUSTED);
  ProducerConfig c = Config(broker);
  c.retry_backoff_ms = 100;
  c.retry_backoff_max_ms = 100;
  c.delivery_timeout_ms = 250;
  auto p = Producer::Create(c);
  ASSERT_TRUE(p.ok());
  auto r = (*p)->Send(Rec("t", 0, "v")).get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kTimeout) << r.status().ToString();
  EXPECT_NE(r.status().message().find("delivery_timeout_ms (250)"), std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("RESOURCE_EXHAUSTED"), std::string::npos)
      << r.status().ToString();
  EXPECT_GE(broker.produce_requests(), 2);
}

TEST(ProducerTest, UnknownTopicAndBadPartitionFailFast) {
  FakeBroker broker;
  broker.AddTopic("t", 2);
  auto p = Producer::Create(Config(broker));
  ASSERT_TRUE(p.ok());
  auto r = (*p)->Send(Rec("nope", std::nullopt, "v")).get();
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound());
  EXPECT_NE(r.status().message().find("UNKNOWN_TOPIC"), std::string::npos);
  auto bad = (*p)->Send(Rec("t", 7, "v")).get();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(ProducerTest, ConnectionRefusedIsAClearError) {
  // A port nobody listens on.
  const int port = rill::test::FreePort();
  ASSERT_GT(port, 0);
  ProducerConfig c;
  c.bootstrap = "127.0.0.1:" + std::to_string(port);
  auto p = Producer::Create(c);
  ASSERT_TRUE(p.ok());
  auto r = (*p)->Send(Rec("t", 0, "v")).get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("cannot reach broker"), std::string::npos)
      << r.status().ToString();
}

TEST(ProducerTest, FullBufferBlocksThenFailsWithAClearError) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  broker.SetSilent(true);  // requests are never answered: nothing frees the buffer
  ProducerConfig c = Config(broker);
  c.buffer_memory = 2000;
  c.max_block_ms = 50;
  c.delivery_timeout_ms = 2000;  // bounds Close() once the broker is gone
  auto p = Producer::Create(c);
  ASSERT_TRUE(p.ok());
  Results results;
  int sent = 0;
  Status error;
  // Outlives the producer: the callbacks of the unanswered records run at Close().
  std::atomic<bool> failed_now{false};
  for (; sent < 100; ++sent) {
    (*p)->Send(Rec("t", 0, std::string(300, 'x')), [&](const Result<RecordMetadata>& r) {
      if (!r.ok() && r.status().code() == StatusCode::kResourceExhausted) {
        failed_now = true;
        error = r.status();
      }
    });
    if (failed_now) break;
  }
  EXPECT_LT(sent, 10);  // ~2000 / 324 bytes fit
  EXPECT_EQ(error.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(error.message().find("buffer full"), std::string::npos) << error.ToString();
  broker.Shutdown();  // lets Close() give up on the unanswered records
  (*p)->Close();
}

TEST(ProducerTest, EveryCodecRoundTrips) {
  for (auto codec :
       {batch::Compression::kNone, batch::Compression::kGzip, batch::Compression::kSnappy,
        batch::Compression::kLz4, batch::Compression::kZstd}) {
    SCOPED_TRACE(std::string(batch::CompressionName(codec)));
    FakeBroker broker;
    broker.AddTopic("t", 1);
    ProducerConfig c = Config(broker);
    c.compression = codec;
    c.linger_ms = 1000;  // one batch, sent by Flush
    auto p = Producer::Create(c);
    ASSERT_TRUE(p.ok());
    for (int i = 0; i < 100; ++i) (*p)->Send(Rec("t", 0, "value-" + std::to_string(i)), nullptr);
    (*p)->Flush();
    auto stored = broker.Records({"t", 0});
    ASSERT_EQ(stored.size(), 100u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(stored[i].value, "value-" + std::to_string(i));
  }
}

TEST(ProducerTest, AcksZeroCompletesWithoutOffsets) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  ProducerConfig c = Config(broker);
  c.acks = 0;
  auto p = Producer::Create(c);
  ASSERT_TRUE(p.ok());
  auto r = (*p)->Send(Rec("t", 0, "v")).get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->offset, -1);
}

TEST(ProducerTest, ClosedProducerRejectsSends) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  auto p = Producer::Create(Config(broker));
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->Send(Rec("t", 0, "v")).get().ok());
  (*p)->Close();
  auto r = (*p)->Send(Rec("t", 0, "v")).get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("closed"), std::string::npos);
}

TEST(ProducerTest, InvalidConfigIsRejected) {
  ProducerConfig c;
  c.acks = 2;
  EXPECT_FALSE(Producer::Create(c).ok());
  c.acks = 1;
  c.batch_size = 0;
  EXPECT_FALSE(Producer::Create(c).ok());
  c.batch_size = 1024;
  for (double linger : {-0.001, 900'001.0, std::nan("")}) {
    c.linger_ms = linger;
    auto p = Producer::Create(c);
    ASSERT_FALSE(p.ok()) << linger;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find("linger_ms must be from 0 to 900000"), std::string::npos)
        << p.status().message();
  }
}

// A linger below a millisecond (librdkafka's linger.ms takes fractions too): the sender waits
// for it in microseconds, and everything is delivered in order.
TEST(ProducerTest, ASubMillisecondLingerDeliversInOrder) {
  FakeBroker broker;
  broker.AddTopic("t", 1);
  ProducerConfig c = Config(broker);
  c.linger_ms = 0.25;
  auto p = Producer::Create(c);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  Results res;
  for (int i = 0; i < 200; ++i) (*p)->Send(Rec("t", 0, "v" + std::to_string(i)), res.For(i));
  (*p)->Flush();
  std::lock_guard lk(res.mu);
  ASSERT_EQ(res.done.size(), 200u);
  for (size_t i = 0; i < res.done.size(); ++i) {
    ASSERT_TRUE(res.done[i].second.ok()) << res.done[i].second.status().ToString();
    EXPECT_EQ(res.done[i].second->offset, static_cast<int64_t>(i));
  }
}

}  // namespace
}  // namespace rill::client
