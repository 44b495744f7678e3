// Integration tests against the real rill-broker process: round trips with every codec, many
// partitions, long polls, Subscribe credit, ListOffsets, restart, kill -9 under load, bad input.

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "broker_process.h"
#include "rill/proto/record_batch.h"
#include "rill/v1/groups.grpc.pb.h"
#include "support/poll.h"

namespace rill::testing {
namespace {

using batch::Compression;

class BrokerIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (std::filesystem::temp_directory_path() /
            ("rill_it_" + std::to_string(::getpid()) + "_" + info->name()))
               .string();
    std::filesystem::remove_all(dir_);
    broker_ = std::make_unique<BrokerProcess>(dir_);
  }
  void TearDown() override {
    if ((::testing::Test::HasFailure() || getenv("RILL_IT_SHOW_LOG")) && broker_) {
      std::cerr << "---- broker log ----\n" << broker_->log() << "--------------------\n";
    }
    broker_.reset();
    std::filesystem::remove_all(dir_);
  }

  v1::TopicResult CreateTopic(const std::string& name, int partitions,
                              std::map<std::string, std::string> configs = {}) {
    return broker_->CreateTopic(name, partitions, configs);
  }

  v1::PartitionProduceResult Produce(const std::string& topic, int partition, std::string records,
                                     int acks = 1, grpc::Status* status = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ProduceRequest req;
    req.set_acks(acks);
    auto* p = req.add_partitions();
    p->set_topic(topic);
    p->set_partition(partition);
    p->set_records(std::move(records));
    v1::ProduceResponse resp;
    grpc::Status st = broker_->producer->Produce(&ctx, req, &resp);
    if (status) {
      *status = st;
    } else {
      EXPECT_TRUE(st.ok()) << st.error_message();
    }
    return resp.partitions_size() == 1 ? resp.partitions(0) : v1::PartitionProduceResult();
  }

  v1::FetchPartitionResult Fetch(const std::string& topic, int partition, int64_t offset,
                                 int max_wait_ms = 0, int min_bytes = 0) {
    return broker_->Fetch(topic, partition, offset, max_wait_ms, min_bytes);
  }
  std::vector<BrokerProcess::FetchedRecord> ReadAll(const std::string& topic, int partition) {
    return broker_->ReadAll(topic, partition);
  }

  std::string dir_;
  std::unique_ptr<BrokerProcess> broker_;
};

batch::Record Rec(std::optional<std::string> key, std::optional<std::string> value, int64_t ts,
                  std::vector<batch::RecordHeader> headers = {}) {
  batch::Record r;
  r.key = std::move(key);
  r.value = std::move(value);
  r.timestamp_ms = ts;
  r.headers = std::move(headers);
  return r;
}

std::string Build(const std::vector<batch::Record>& records, Compression c = Compression::kNone) {
  batch::BatchBuilder b(c);
  for (const auto& r : records) EXPECT_TRUE(b.Add(r).ok());
  auto out = b.Build();
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return std::move(out).value();
}

TEST_F(BrokerIntegrationTest, RoundTripEveryCodecWithKeysHeadersAndNulls) {
  broker_->Start();
  ASSERT_EQ(CreateTopic("codecs", 1).error(), v1::NONE);
  std::vector<batch::Record> expected;
  int64_t ts = 1700000000000;
  for (Compression c : {Compression::kNone, Compression::kGzip, Compression::kSnappy,
                        Compression::kLz4, Compression::kZstd}) {
    std::vector<batch::Record> recs = {
        Rec("key-" + std::to_string(int(c)), std::string(300, 'a' + int(c)), ts++,
            {{"h1", "v1"}, {"h2", std::nullopt}}),
        Rec(std::nullopt, "null key", ts++),
        Rec("tombstone", std::nullopt, ts++),
        Rec(std::nullopt, std::nullopt, ts++),
        Rec("", "", ts++),
    };
    auto r = Produce("codecs", 0, Build(recs, c));
    ASSERT_EQ(r.error(), v1::NONE) << r.error_message();
    EXPECT_EQ(r.base_offset(), static_cast<int64_t>(expected.size()));
    expected.insert(expected.end(), recs.begin(), recs.end());
  }
  auto got = ReadAll("codecs", 0);
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].offset, static_cast<int64_t>(i));
    EXPECT_EQ(got[i].record, expected[i]) << "record " << i;
  }
}

TEST_F(BrokerIntegrationTest, ManyPartitionsInOneFetch) {
  broker_->Start();
  const int kPartitions = 24;
  ASSERT_EQ(CreateTopic("wide", kPartitions).error(), v1::NONE);
  for (int p = 0; p < kPartitions; ++p) {
    std::vector<batch::Record> recs;
    for (int i = 0; i <= p; ++i)
      recs.push_back(Rec("p" + std::to_string(p), "v" + std::to_string(i), 1));
    ASSERT_EQ(Produce("wide", p, Build(recs)).error(), v1::NONE);
  }
  grpc::ClientContext ctx;
  v1::FetchRequest req;
  for (int p = 0; p < kPartitions; ++p) {
    auto* fp = req.add_partitions();
    fp->set_topic("wide");
    fp->set_partition(p);
    fp->set_fetch_offset(0);
  }
  v1::FetchResponse resp;
  ASSERT_TRUE(broker_->consumer->Fetch(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.partitions_size(), kPartitions);
  for (int p = 0; p < kPartitions; ++p) {
    const auto& r = resp.partitions(p);
    EXPECT_EQ(r.partition(), p);
    EXPECT_EQ(r.high_watermark(), p + 1);
    auto recs = batch::DecodeRecords(r.records());
    ASSERT_TRUE(recs.ok());
    EXPECT_EQ(recs->size(), static_cast<size_t>(p + 1));
  }
}

TEST_F(BrokerIntegrationTest, LongPollWakesOnProduceAndSubscribeHonoursCredit) {
  broker_->Start();
  ASSERT_EQ(CreateTopic("lp", 1).error(), v1::NONE);
  auto parked = std::async(std::launch::async, [&] { return Fetch("lp", 0, 0, 60000, 1); });
  std::string b = Build({Rec("k", "wake up", 5)});
  ASSERT_EQ(Produce("lp", 0, b).error(), v1::NONE);
  auto f = parked.get();
  ASSERT_EQ(f.error(), v1::NONE);
  auto recs = batch::DecodeRecords(f.records());
  ASSERT_TRUE(recs.ok());
  ASSERT_EQ(recs->size(), 1u);
  EXPECT_EQ(*(*recs)[0].value, "wake up");

  // Subscribe: one batch of credit yields one batch; more credit yields the next.
  ASSERT_EQ(Produce("lp", 0, b).error(), v1::NONE);
  grpc::ClientContext ctx;
  auto stream = broker_->consumer->Subscribe(&ctx);
  v1::SubscribeRequest start;
  auto* fp = start.mutable_start()->add_partitions();
  fp->set_topic("lp");
  fp->set_partition(0);
  fp->set_fetch_offset(0);
  ASSERT_TRUE(stream->Write(start));
  v1::SubscribeRequest credit;
  credit.mutable_credit()->set_bytes(static_cast<int64_t>(b.size()));
  ASSERT_TRUE(stream->Write(credit));
  v1::SubscribeResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_EQ(resp.partitions_size(), 1);
  EXPECT_EQ(resp.partitions(0).records().size(), b.size());
  ASSERT_TRUE(stream->Write(credit));
  ASSERT_TRUE(stream->Read(&resp));
  batch::BatchIterator it(resp.partitions(0).records());
  ASSERT_TRUE(it.Next());
  EXPECT_EQ(it.header().base_offset, 1);
  stream->WritesDone();
  while (stream->Read(&resp)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(BrokerIntegrationTest, ListOffsets) {
  broker_->Start();
  ASSERT_EQ(CreateTopic("lo", 1).error(), v1::NONE);
  ASSERT_EQ(Produce("lo", 0, Build({Rec("a", "1", 1000), Rec("b", "2", 1001)})).error(), v1::NONE);
  ASSERT_EQ(Produce("lo", 0, Build({Rec("c", "3", 9000)})).error(), v1::NONE);
  // One compressed batch (offsets 3-6) whose record timestamps are out of order.
  ASSERT_EQ(Produce("lo", 0,
                    Build({Rec("d", "4", 20000), Rec("e", "5", 30000), Rec("f", "6", 25000),
                           Rec("g", "7", 40000)},
                          Compression::kZstd))
                .error(),
            v1::NONE);
  grpc::ClientContext ctx;
  v1::ListOffsetsRequest req;
  for (int64_t ts : {-1L, -2L, 5000L, 1001L, 26000L, 30001L, 50000L}) {
    auto* p = req.add_partitions();
    p->set_topic("lo");
    p->set_partition(0);
    p->set_timestamp(ts);
  }
  v1::ListOffsetsResponse resp;
  ASSERT_TRUE(broker_->consumer->ListOffsets(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.partitions_size(), 7);
  for (const auto& r : resp.partitions()) EXPECT_EQ(r.error(), v1::NONE) << r.error_message();
  EXPECT_EQ(resp.partitions(0).offset(), 7);
  EXPECT_EQ(resp.partitions(1).offset(), 0);
  // By timestamp: the first record whose own timestamp is >= the request's, and its timestamp;
  // inside a batch, not the batch's base offset.
  EXPECT_EQ(resp.partitions(2).offset(), 2);
  EXPECT_EQ(resp.partitions(2).timestamp(), 9000);
  EXPECT_EQ(resp.partitions(3).offset(), 1);
  EXPECT_EQ(resp.partitions(3).timestamp(), 1001);
  EXPECT_EQ(resp.partitions(4).offset(), 4);  // 30000, not 20000 (offset 3, too old)
  EXPECT_EQ(resp.partitions(4).timestamp(), 30000);
  EXPECT_EQ(resp.partitions(5).offset(), 6);  // 40000: 25000 at offset 5 is too old
  EXPECT_EQ(resp.partitions(5).timestamp(), 40000);
  EXPECT_EQ(resp.partitions(6).offset(), -1);
  EXPECT_EQ(resp.partitions(6).timestamp(), -1);
}

TEST_F(BrokerIntegrationTest, RestartKeepsTopicsConfigsAndData) {
  broker_->Start();
  ASSERT_EQ(CreateTopic("keep", 3, {{"retention.ms", "123456789"}}).error(), v1::NONE);
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Produce("keep", i % 3, Build({Rec("k", "v" + std::to_string(i), i)})).error(),
              v1::NONE);
  }
  ASSERT_EQ(broker_->Stop(), 0);
  broker_->Start();
  grpc::ClientContext ctx;
  v1::DescribeTopicsRequest req;
  req.add_topics("keep");
  v1::DescribeTopicsResponse resp;
  ASSERT_TRUE(broker_->admin->DescribeTopics(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.topics_size(), 1);
  ASSERT_EQ(resp.topics(0).error(), v1::NONE);
  EXPECT_EQ(resp.topics(0).partitions_size(), 3);
  EXPECT_EQ(resp.topics(0).configs().at("retention.ms"), "123456789");
  EXPECT_EQ(ReadAll("keep", 0).size(), 2u);
  EXPECT_EQ(ReadAll("keep", 1).size(), 2u);
  auto p2 = ReadAll("keep", 2);
  ASSERT_EQ(p2.size(), 1u);
  EXPECT_EQ(*p2[0].record.value, "v2");
  // New appends continue after the recovered end.
  EXPECT_EQ(Produce("keep", 2, Build({Rec("k", "later", 9)})).base_offset(), 1);
}

// kill -9 while producers are acknowledged (acks=1, flush.policy group): after a restart every
// acknowledged record is read back exactly once, in order, at its acknowledged offset.
TEST_F(BrokerIntegrationTest, Kill9UnderLoadLosesNothingAcknowledged) {
  broker_->Start();
  const int kPartitions = 3;
  const int kRecordsPerBatch = 20;
  ASSERT_EQ(CreateTopic("crash", kPartitions).error(), v1::NONE);
  struct Acked {
    int64_t base_offset;
    int batch_id;
  };
  std::mutex mu;
  std::vector<std::vector<Acked>> acked(kPartitions);
  std::atomic<bool> stop{false};
  std::atomic<int> total_acked{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kPartitions; ++p) {
    producers.emplace_back([&, p] {
      for (int id = 0; !stop.load(); ++id) {
        std::vector<batch::Record> recs;
        for (int i = 0; i < kRecordsPerBatch; ++i) {
          recs.push_back(Rec(std::to_string(p), std::to_string(id) + ":" + std::to_string(i), id));
        }
        grpc::Status st;
        auto r = Produce("crash", p, Build(recs), 1, &st);
        if (!st.ok()) break;  // the broker is gone
        if (r.error() != v1::NONE) continue;
        std::lock_guard lock(mu);
        acked[p].push_back({r.base_offset(), id});
        total_acked.fetch_add(1);
      }
    });
  }
  ASSERT_TRUE(test::PollUntil([&] { return total_acked.load() >= 300; }, std::chrono::seconds(60)))
      << "only " << total_acked.load() << " records acknowledged before the kill";
  broker_->Kill9();  // mid-load: requests are in flight
  stop = true;
  for (auto& t : producers) t.join();
  ASSERT_GE(total_acked.load(), 300);

  broker_->Start();
  for (int p = 0; p < kPartitions; ++p) {
    auto got = ReadAll("crash", p);
    // Offsets are dense from 0, and every batch id appears at most once.
    std::map<int, int64_t> first_offset_of_batch;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].offset, static_cast<int64_t>(i));
      const std::string& v = *got[i].record.value;
      int id = std::stoi(v.substr(0, v.find(':')));
      int idx = std::stoi(v.substr(v.find(':') + 1));
      if (idx == 0) {
        ASSERT_FALSE(first_offset_of_batch.count(id)) << "batch " << id << " appears twice";
        first_offset_of_batch[id] = got[i].offset;
      }
    }
    for (const auto& a : acked[p]) {
      ASSERT_LT(a.base_offset + kRecordsPerBatch - 1, static_cast<int64_t>(got.size()))
          << "acknowledged batch " << a.batch_id << " of partition " << p << " lost";
      for (int i = 0; i < kRecordsPerBatch; ++i) {
        EXPECT_EQ(*got[a.base_offset + i].record.value,
                  std::to_string(a.batch_id) + ":" + std::to_string(i));
      }
    }
  }
}

// Topic config changes apply to the open logs: while a producer is acknowledged throughout,
// segment.bytes, flush.policy and max.message.bytes change; no produce fails and every
// acknowledged record reads back at its offset.
TEST_F(BrokerIntegrationTest, AlterConfigUnderLoadKeepsServing) {
  broker_->Start();
  ASSERT_EQ(CreateTopic("live", 1).error(), v1::NONE);
  std::atomic<bool> stop{false};
  std::atomic<int> acked{0};
  std::mutex mu;
  std::vector<std::pair<int64_t, int>> bases;  // base offset, batch id
  std::vector<std::string> errors;
  std::thread producer([&] {
    for (int id = 0; !stop.load(); ++id) {
      std::vector<batch::Record> recs;
      for (int i = 0; i < 10; ++i) {
        recs.push_back(Rec("k", std::to_string(id) + ":" + std::string(100, 'x'), id));
      }
      grpc::Status st;
      auto r = Produce("live", 0, Build(recs), 1, &st);
      std::lock_guard lock(mu);
      if (!st.ok() || r.error() != v1::NONE) {
        errors.push_back(st.ok() ? v1::ErrorCode_Name(r.error()) + ": " + r.error_message()
                                 : st.error_message());
        continue;
      }
      bases.emplace_back(r.base_offset(), id);
      acked.fetch_add(1);
    }
  });
  auto alter = [&](const std::map<std::string, std::string>& set) {
    grpc::ClientContext ctx;
    v1::AlterConfigsRequest req;
    req.set_topic("live");
    for (const auto& [k, v] : set) (*req.mutable_set())[k] = v;
    v1::AlterConfigsResponse resp;
    auto st = broker_->admin->AlterConfigs(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(resp.result().error(), v1::NONE) << resp.result().error_message();
    // Let some acknowledged batches land under the new setting.
    const int seen = acked.load();
    ASSERT_TRUE(test::PollUntil([&] { return acked.load() >= seen + 20; }))
        << "the producer stalled after altering " << set.begin()->first;
  };
  alter({{"segment.bytes", "16384"}});
  alter({{"flush.policy", "none"}});
  alter({{"flush.policy", "interval"}, {"flush.interval.ms", "5"}});
  alter({{"flush.policy", "group"}, {"max.message.bytes", "100000"}});
  alter({{"retention.bytes", "100000000"}});
  stop = true;
  producer.join();
  {
    std::lock_guard lock(mu);
    EXPECT_TRUE(errors.empty()) << errors.size() << " produce errors, first: " << errors.front();
  }
  // The segment.bytes change rolled the open log: many small segments, no restart.
  int segments = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_ + "/data/live-0")) {
    if (e.path().extension() == ".log") ++segments;
  }
  EXPECT_GT(segments, 3);
  auto got = ReadAll("live", 0);
  for (const auto& [base, id] : bases) {
    ASSERT_LT(base + 9, static_cast<int64_t>(got.size())) << "batch " << id << " lost";
    const std::string& v = *got[base].record.value;
    EXPECT_EQ(v.substr(0, v.find(':')), std::to_string(id));
  }
}

// One request may carry a partition in several entries (the producer sends one per batch): they
// are appended in the order given, each with its own result.
TEST_F(BrokerIntegrationTest, OnePartitionInSeveralEntriesOfOneRequest) {
  broker_->Start();
  ASSERT_EQ(CreateTopic("multi", 2).error(), v1::NONE);
  grpc::ClientContext ctx;
  v1::ProduceRequest req;
  req.set_acks(1);
  const std::vector<std::pair<int, int>> entries = {{0, 3}, {1, 2}, {0, 4}, {0, 1}};
  for (size_t e = 0; e < entries.size(); ++e) {
    auto* p = req.add_partitions();
    p->set_topic("multi");
    p->set_partition(entries[e].first);
    std::vector<batch::Record> recs;
    for (int i = 0; i < entries[e].second; ++i) {
      recs.push_back(Rec("k", "e" + std::to_string(e) + "-" + std::to_string(i), 1000));
    }
    p->set_records(Build(recs));
  }
  v1::ProduceResponse resp;
  ASSERT_TRUE(broker_->producer->Produce(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.partitions_size(), 4);
  const int64_t expected_base[] = {0, 0, 3, 7};
  for (int e = 0; e < 4; ++e) {
    EXPECT_EQ(resp.partitions(e).error(), v1::NONE) << resp.partitions(e).error_message();
    EXPECT_EQ(resp.partitions(e).partition(), entries[e].first);
    EXPECT_EQ(resp.partitions(e).base_offset(), expected_base[e]) << "entry " << e;
  }
  auto p0 = ReadAll("multi", 0);
  ASSERT_EQ(p0.size(), 8u);
  EXPECT_EQ(*p0[0].record.value, "e0-0");
  EXPECT_EQ(*p0[3].record.value, "e2-0");
  EXPECT_EQ(*p0[7].record.value, "e3-0");
  EXPECT_EQ(ReadAll("multi", 1).size(), 2u);
}

// /metrics reports each log fsync round (flush group): its latency and the bytes made durable.
TEST_F(BrokerIntegrationTest, MetricsReportLogFlushes) {
  broker_->Start();
  ASSERT_EQ(CreateTopic("flushed", 1).error(), v1::NONE);
  std::string batch = Build({Rec("k", std::string(5000, 'v'), 1000)});
  ASSERT_EQ(Produce("flushed", 0, batch).error(), v1::NONE);
  ASSERT_EQ(Produce("flushed", 0, batch).error(), v1::NONE);
  const std::string m = HttpGet(broker_->http_port(), "/metrics");
  ASSERT_EQ(m.substr(0, 3), "200");
  auto value_of = [&](const std::string& name) -> int64_t {
    const size_t at = m.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stoll(m.substr(at + name.size() + 2));
  };
  // acks=1 with flush group: each acknowledged append was covered by a sync round.
  EXPECT_GE(value_of("rill_log_flush_latency_seconds_count{}"), 1) << m;
  EXPECT_GE(value_of("rill_log_flush_bytes_total"), static_cast<int64_t>(2 * batch.size())) << m;
  EXPECT_NE(m.find("rill_log_flush_latency_seconds_bucket{le=\"+Inf\"}"), std::string::npos);
}

// Every metric family on a live broker's /metrics says what it measures: a "# HELP name text"
// line before its "# TYPE name" line.
TEST_F(BrokerIntegrationTest, EveryMetricFamilyHasHelpText) {
  broker_->Start();
  ASSERT_EQ(CreateTopic("described", 1).error(), v1::NONE);
  ASSERT_EQ(Produce("described", 0, Build({Rec("k", "v", 1000)})).error(), v1::NONE);
  const std::string m = HttpGet(broker_->http_port(), "/metrics");
  ASSERT_EQ(m.substr(0, 3), "200");
  std::set<std::string> helped, typed;
  std::istringstream lines(m.substr(4));
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    std::string hash, kind, name, text;
    words >> hash >> kind >> name;
    if (hash != "#") continue;
    std::getline(words, text);
    if (kind == "HELP") {
      EXPECT_GT(text.size(), 5u) << line;
      helped.insert(name);
    } else if (kind == "TYPE") {
      EXPECT_TRUE(helped.count(name)) << name << " has no HELP line before its TYPE line";
      typed.insert(name);
    }
  }
  // The families of the partition just written are there too.
  EXPECT_TRUE(typed.count("rill_partition_high_watermark")) << m;
  EXPECT_TRUE(typed.count("rill_bytes_in_total")) << m;
  EXPECT_GE(typed.size(), 20u) << m;
}

// Bytes and records in and out per topic: what producers appended and what fetches served.
TEST_F(BrokerIntegrationTest, TrafficIsCountedPerTopic) {
  broker_->Start();
  ASSERT_EQ(CreateTopic("counted", 2).error(), v1::NONE);
  ASSERT_EQ(CreateTopic("quiet", 1).error(), v1::NONE);
  const std::string batch = Build({Rec("a", "1", 1000), Rec("b", "2", 1000), Rec("c", "3", 1000)});
  ASSERT_EQ(Produce("counted", 0, batch).error(), v1::NONE);
  ASSERT_EQ(Produce("counted", 1, batch).error(), v1::NONE);
  // A fetch from offset 1 serves the whole batch and advances over offsets 1 and 2.
  auto f = Fetch("counted", 0, 1);
  ASSERT_EQ(f.error(), v1::NONE);
  ASSERT_EQ(f.records().size(), batch.size());
  const std::string m = HttpGet(broker_->http_port(), "/metrics");
  const auto value = [&](const std::string& series) -> int64_t {
    const size_t at = m.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stoll(m.substr(at + series.size() + 2));
  };
  EXPECT_EQ(value("rill_topic_records_in_total{topic=\"counted\"}"), 6) << m;
  EXPECT_EQ(value("rill_topic_bytes_in_total{topic=\"counted\"}"),
            static_cast<int64_t>(2 * batch.size()));
  EXPECT_EQ(value("rill_topic_records_out_total{topic=\"counted\"}"), 2);
  EXPECT_EQ(value("rill_topic_bytes_out_total{topic=\"counted\"}"),
            static_cast<int64_t>(batch.size()));
  EXPECT_EQ(value("rill_topic_records_in_total{topic=\"quiet\"}"), 0);
  EXPECT_EQ(value("rill_topic_bytes_out_total{topic=\"quiet\"}"), 0);
}

// Every completed Fetch is split into time waiting for data and time serving it.
TEST_F(BrokerIntegrationTest, FetchLatencyIsSplitIntoWaitingAndServing) {
  broker_->Start();
  ASSERT_EQ(CreateTopic("split", 1).error(), v1::NONE);
  ASSERT_EQ(Produce("split", 0, Build({Rec("k", "v", 1000)})).error(), v1::NONE);
  ASSERT_EQ(Fetch("split", 0, 0).error(), v1::NONE);         // data at once
  ASSERT_EQ(Fetch("split", 0, 1, 50, 1).error(), v1::NONE);  // waits out max_wait_ms
  const std::string m = HttpGet(broker_->http_port(), "/metrics");
  const auto value = [&](const std::string& series) -> int64_t {
    const size_t at = m.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stoll(m.substr(at + series.size() + 2));
  };
  EXPECT_EQ(value("rill_fetch_wait_seconds_count{}"), 2) << m;
  EXPECT_EQ(value("rill_fetch_serve_seconds_count{}"), 2) << m;
  EXPECT_EQ(value("rill_request_latency_seconds_count{api=\"fetch\"}"), 2) << m;
}

// Group calls are counted per API like the others (requests, errors, latency).
TEST_F(BrokerIntegrationTest, GroupCallsAreCountedPerApi) {
  broker_->Start();
  auto groups = v1::Groups::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(broker_->client_port()), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    v1::ListGroupsResponse resp;
    ASSERT_TRUE(groups->ListGroups(&ctx, v1::ListGroupsRequest(), &resp).ok());
  }
  {
    // No such group (and no coordinator yet): an error outcome.
    grpc::ClientContext ctx;
    v1::DescribeGroupRequest req;
    req.set_group_id("nobody");
    v1::DescribeGroupResponse resp;
    ASSERT_TRUE(groups->DescribeGroup(&ctx, req, &resp).ok());
    ASSERT_NE(resp.error(), v1::NONE);
  }
  const std::string m = HttpGet(broker_->http_port(), "/metrics");
  EXPECT_NE(m.find("\nrill_requests_total{api=\"list_groups\"} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\nrill_request_errors_total{api=\"list_groups\"} 0\n"), std::string::npos);
  EXPECT_NE(m.find("\nrill_requests_total{api=\"describe_group\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("\nrill_request_errors_total{api=\"describe_group\"} 1\n"), std::string::npos);
  EXPECT_NE(m.find("rill_request_latency_seconds_count{api=\"describe_group\"} 1\n"),
            std::string::npos);
  EXPECT_NE(m.find("\nrill_requests_total{api=\"group_heartbeat\"} 0\n"), std::string::npos);
}

// monitoring/rill-dashboard.json and monitoring/rill-alerts.yml query only metrics that a live
// broker exposes: every rill_* and process_* name in a query is a family of its /metrics (or a
// histogram family's _bucket, _sum or _count series).
TEST_F(BrokerIntegrationTest, EveryMetricTheDashboardAndAlertsQueryExists) {
  broker_->Start();
  ASSERT_EQ(CreateTopic("watched", 1).error(), v1::NONE);
  ASSERT_EQ(Produce("watched", 0, Build({Rec("k", "v", 1000)})).error(), v1::NONE);
  const std::string m = HttpGet(broker_->http_port(), "/metrics");
  ASSERT_EQ(m.substr(0, 3), "200");
  std::map<std::string, std::string> families;  // name -> type
  {
    std::istringstream lines(m.substr(4));
    for (std::string line; std::getline(lines, line);) {
      std::istringstream words(line);
      std::string hash, kind, name, type;
      words >> hash >> kind >> name >> type;
      if (hash == "#" && kind == "TYPE") families[name] = type;
    }
  }
  const auto exists = [&](const std::string& name) {
    if (families.count(name)) return true;
    for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
      if (name.size() > suffix.size() && name.ends_with(suffix)) {
        auto it = families.find(name.substr(0, name.size() - suffix.size()));
        if (it != families.end() && it->second == "histogram") return true;
      }
    }
    return false;
  };
  const std::regex dashboard_expr(R"re("expr":\s*"((?:[^"\\]|\\.)*)")re");
  const std::regex alert_expr(R"re(^\s*expr:\s*(.+)$)re");
  const std::regex metric(R"re(\b((?:rill|process)_[a-zA-Z0-9_]*))re");
  for (const auto& [file, expr_re] : {std::pair{"/monitoring/rill-dashboard.json", dashboard_expr},
                                      std::pair{"/monitoring/rill-alerts.yml", alert_expr}}) {
    SCOPED_TRACE(file);
    std::ifstream in(std::string(RILL_SOURCE_DIR) + file);
    ASSERT_TRUE(in) << "cannot read " << file;
    std::set<std::string> queried;
    int exprs = 0;
    for (std::string line; std::getline(in, line);) {
      std::smatch e;
      if (!std::regex_search(line, e, expr_re)) continue;
      ++exprs;
      const std::string expr = e[1];
      for (std::sregex_iterator it(expr.begin(), expr.end(), metric), end; it != end; ++it) {
        queried.insert((*it)[1]);
      }
    }
    EXPECT_GE(exprs, 8);
    EXPECT_GE(queried.size(), 8u);
    for (const auto& name : queried) {
      EXPECT_TRUE(exists(name)) << name << " is queried but not on a live broker's /metrics";
    }
  }
}

TEST_F(BrokerIntegrationTest, BadInputGetsDocumentedErrorsAndBrokerKeepsServing) {
  broker_->Start();
  ASSERT_EQ(CreateTopic("bad", 1, {{"max.message.bytes", "4096"}}).error(), v1::NONE);
  std::mt19937 rng(7);
  for (int i = 0; i < 20; ++i) {
    std::string junk(1 + rng() % 500, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    EXPECT_EQ(Produce("bad", 0, junk).error(), v1::CORRUPT_BATCH);
  }
  std::string good = Build({Rec("k", "v", 1)});
  std::string bad_crc = good;
  bad_crc.back() ^= 1;
  EXPECT_EQ(Produce("bad", 0, bad_crc).error(), v1::CORRUPT_BATCH);
  std::vector<batch::Record> big;
  for (int i = 0; i < 10; ++i) big.push_back(Rec("k", std::string(1000, 'x'), 1));
  EXPECT_EQ(Produce("bad", 0, Build(big)).error(), v1::MESSAGE_TOO_LARGE);
  EXPECT_EQ(Produce("nope", 0, good).error(), v1::UNKNOWN_TOPIC);
  EXPECT_EQ(Produce("bad", 3, good).error(), v1::UNKNOWN_PARTITION);
  for (std::string name : {std::string("bad name"), std::string(""), std::string(".."),
                           std::string(300, 'a'), std::string("sl/ash")}) {
    EXPECT_EQ(CreateTopic(name, 1).error(), v1::INVALID_TOPIC) << "'" << name << "'";
  }
  {
    grpc::ClientContext ctx;
    v1::CreateTopicsRequest req;
    auto* t = req.add_topics();
    t->set_name("neg");
    t->set_partitions(-1);
    v1::CreateTopicsResponse resp;
    EXPECT_EQ(broker_->admin->CreateTopics(&ctx, req, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  EXPECT_EQ(Fetch("bad", 0, -1).error(), v1::OFFSET_OUT_OF_RANGE);
  EXPECT_EQ(Fetch("bad", 0, INT64_MAX).error(), v1::OFFSET_OUT_OF_RANGE);
  {
    grpc::ClientContext ctx;
    v1::FetchRequest req;
    req.add_partitions()->set_partition(0);
    v1::FetchResponse resp;
    auto st = broker_->consumer->Fetch(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("topic"), std::string::npos);
  }
  // Still serving.
  auto r = Produce("bad", 0, good);
  EXPECT_EQ(r.error(), v1::NONE);
  EXPECT_EQ(r.base_offset(), 0);
  EXPECT_EQ(ReadAll("bad", 0).size(), 1u);
  EXPECT_TRUE(broker_->running());
  EXPECT_EQ(broker_->Stop(), 0);
}

}  // namespace
}  // namespace rill::testing
