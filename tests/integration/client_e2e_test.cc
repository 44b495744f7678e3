// The client library and rillctl against a real rill-broker process (free loopback ports).

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

#include "broker_process.h"
#include "process.h"
#include "rill/client/admin.h"
#include "rill/client/consumer.h"
#include "rill/client/partitioner.h"
#include "rill/client/producer.h"

namespace rill::client {
namespace {

using namespace std::chrono_literals;
using rill::testing::BrokerProcess;
using rill::testing::Process;
using rill::testing::ReadFile;

class ClientE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (std::filesystem::temp_directory_path() /
            ("rill_client_e2e_" + std::to_string(::getpid()) + "_" + info->name()))
               .string();
    std::filesystem::remove_all(dir_);
    broker_ = std::make_unique<BrokerProcess>(dir_);
    broker_->Start();
    bootstrap_ = "127.0.0.1:" + std::to_string(broker_->client_port());
    AdminConfig ac;
    ac.bootstrap = bootstrap_;
    auto a = Admin::Create(ac);
    ASSERT_TRUE(a.ok());
    admin_ = std::move(a).value();
  }
  void TearDown() override {
    if (::testing::Test::HasFailure() && broker_) {
      std::cerr << "---- broker log ----\n" << broker_->log() << "--------------------\n";
    }
    admin_.reset();
    broker_.reset();
    std::filesystem::remove_all(dir_);
  }

  void CreateTopic(const std::string& name, int partitions) {
    auto r =
        admin_->CreateTopics({NewTopic{.name = name, .partitions = partitions, .configs = {}}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(Admin::FirstError(*r).ok()) << Admin::FirstError(*r).ToString();
  }

  // Runs rillctl with args; returns {exit code, stdout+stderr}.
  std::pair<int, std::string> Rillctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {RILLCTL_BINARY, "--bootstrap", bootstrap_};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string log = dir_ + "/rillctl-" + std::to_string(runs_++) + ".out";
    auto p = Process::Spawn(argv, log);
    EXPECT_NE(p, nullptr);
    if (!p) return {-1, ""};
    auto code = p->Wait(60s);
    EXPECT_TRUE(code.has_value()) << "rillctl did not finish";
    return {code.value_or(-1), ReadFile(log)};
  }

  std::string dir_;
  std::string bootstrap_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<Admin> admin_;
  int runs_ = 0;
};

TEST_F(ClientE2ETest, EveryCodecRoundTripsAtItsAcknowledgedOffset) {
  CreateTopic("rt", 3);
  std::map<std::pair<int32_t, int64_t>, ProducerRecord> acked;  // (partition, offset) -> record
  for (auto codec :
       {batch::Compression::kNone, batch::Compression::kGzip, batch::Compression::kSnappy,
        batch::Compression::kLz4, batch::Compression::kZstd}) {
    ProducerConfig pc;
    pc.bootstrap = bootstrap_;
    pc.compression = codec;
    pc.batch_size = 4096;  // several batches per partition
    auto producer = Producer::Create(pc);
    ASSERT_TRUE(producer.ok());
    std::mutex mu;
    std::vector<std::pair<ProducerRecord, Result<RecordMetadata>>> done;
    for (int i = 0; i < 300; ++i) {
      ProducerRecord r;
      r.topic = "rt";
      if (i % 7 != 0) r.key = "key-" + std::to_string(i % 50);
      if (i % 11 != 0)
        r.value = std::string(batch::CompressionName(codec)) + "-" + std::to_string(i);
      if (i % 3 == 0) r.headers = {{"h", "v" + std::to_string(i)}, {"null", std::nullopt}};
      (*producer)->Send(r, [&, r](const Result<RecordMetadata>& md) {
        std::lock_guard lk(mu);
        done.emplace_back(r, md);
      });
    }
    (*producer)->Flush();
    ASSERT_EQ(done.size(), 300u);
    for (auto& [r, md] : done) {
      ASSERT_TRUE(md.ok()) << md.status().ToString();
      if (r.key) {
        EXPECT_EQ(md->partition, KeyPartition(*r.key, 3));
      }
      EXPECT_TRUE(acked.emplace(std::make_pair(md->partition, md->offset), r).second)
          << "offset acknowledged twice";
    }
  }

  ConsumerConfig cc;
  cc.bootstrap = bootstrap_;
  cc.auto_offset_reset = OffsetReset::kEarliest;
  auto consumer = Consumer::Create(cc);
  ASSERT_TRUE(consumer.ok());
  ASSERT_TRUE((*consumer)->Assign({{"rt", 0}, {"rt", 1}, {"rt", 2}}).ok());
  size_t seen = 0;
  std::map<int32_t, int64_t> next;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (seen < acked.size() && std::chrono::steady_clock::now() < deadline) {
    auto rs = (*consumer)->Poll(200ms);
    ASSERT_TRUE(rs.ok()) << rs.status().ToString();
    for (const auto& r : *rs) {
      EXPECT_EQ(r.offset, next[r.partition]) << "gap or duplicate in partition " << r.partition;
      next[r.partition] = r.offset + 1;
      auto it = acked.find({r.partition, r.offset});
      ASSERT_NE(it, acked.end()) << "unacknowledged record at " << r.partition << "@" << r.offset;
      const ProducerRecord& want = it->second;
      EXPECT_EQ(r.key.has_value(), want.key.has_value());
      if (want.key) {
        EXPECT_EQ(*r.key, *want.key);
      }
      EXPECT_EQ(r.value.has_value(), want.value.has_value());
      if (want.value) {
        EXPECT_EQ(*r.value, *want.value);
      }
      ASSERT_EQ(r.headers.size(), want.headers.size());
      for (size_t h = 0; h < want.headers.size(); ++h) {
        EXPECT_EQ(r.headers[h].first, want.headers[h].key);
        EXPECT_EQ(r.headers[h].second.has_value(), want.headers[h].value.has_value());
      }
      ++seen;
    }
  }
  EXPECT_EQ(seen, acked.size());
}

TEST_F(ClientE2ETest, ASmallBufferMemoryOverManyPartitionsDeliversEverything) {
  // buffer_memory bounds the batches' buffers by their capacity: 200 partitions that each want
  // a 16 KiB batch need 3.2 MB, twelve times this producer's 256 KiB. Sends block while
  // batches are in flight and go on as their answers free memory; nothing is lost or stuck.
  constexpr int kPartitions = 200, kRecords = 10000;
  CreateTopic("spread", kPartitions);
  ProducerConfig pc;
  pc.bootstrap = bootstrap_;
  pc.buffer_memory = 256 << 10;
  pc.max_block_ms = 30000;
  auto producer = Producer::Create(pc);
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  std::mutex mu;
  int acked = 0;
  std::vector<std::string> errors;
  for (int i = 0; i < kRecords; ++i) {
    ProducerRecord r;
    r.topic = "spread";
    r.key = "key-" + std::to_string(i);
    r.value = std::string(200, static_cast<char>('a' + i % 26));
    (*producer)->Send(r, [&, i](const Result<RecordMetadata>& md) {
      std::lock_guard lk(mu);
      if (md.ok()) {
        ++acked;
      } else {
        errors.push_back("record " + std::to_string(i) + ": " + md.status().ToString());
      }
    });
  }
  (*producer)->Flush();
  {
    std::lock_guard lk(mu);
    EXPECT_EQ(acked, kRecords);
    EXPECT_TRUE(errors.empty()) << errors.size() << " failed, the first " << errors.front();
  }
  auto described = admin_->DescribeTopics({"spread"});
  ASSERT_TRUE(described.ok()) << described.status().ToString();
  ASSERT_EQ(described->size(), 1u);
  int64_t stored = 0;
  for (const PartitionInfo& p : (*described)[0].partitions) stored += p.high_watermark;
  EXPECT_EQ(stored, kRecords);
}

TEST_F(ClientE2ETest, AdminCoversTopicsConfigsPartitionsAndCluster) {
  CreateTopic("adm", 2);
  auto again = admin_->CreateTopics({NewTopic{.name = "adm", .partitions = 2, .configs = {}}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Admin::FirstError(*again).code(), StatusCode::kAlreadyExists)
      << Admin::FirstError(*again).ToString();

  auto list = admin_->ListTopics();
  ASSERT_TRUE(list.ok());
  bool found = false;
  for (const auto& t : *list) found |= t.name == "adm" && t.partitions == 2;
  EXPECT_TRUE(found);

  ASSERT_TRUE(admin_->AlterConfigs("adm", {{"retention.ms", "123456"}}).ok());
  auto configs = admin_->DescribeConfigs("adm");
  ASSERT_TRUE(configs.ok()) << configs.status().ToString();
  bool retention = false;
  for (const auto& e : *configs) retention |= e.name == "retention.ms" && e.value == "123456";
  EXPECT_TRUE(retention);
  Status bad = admin_->AlterConfigs("adm", {{"no.such.config", "1"}});
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument) << bad.ToString();

  ASSERT_TRUE(admin_->CreatePartitions("adm", 4).ok());
  auto desc = admin_->DescribeTopics({"adm", "missing"});
  ASSERT_TRUE(desc.ok());
  ASSERT_EQ(desc->size(), 2u);
  EXPECT_EQ((*desc)[0].partitions.size(), 4u);
  EXPECT_TRUE((*desc)[1].status.IsNotFound()) << (*desc)[1].status.ToString();

  auto cluster = admin_->DescribeCluster();
  ASSERT_TRUE(cluster.ok());
  EXPECT_EQ(cluster->brokers.size(), 1u);
  auto md = admin_->Metadata({"adm"});
  ASSERT_TRUE(md.ok());
  ASSERT_EQ(md->topics.size(), 1u);
  EXPECT_EQ(md->topics[0].partitions.size(), 4u);

  auto del = admin_->DeleteTopics({"adm"});
  ASSERT_TRUE(del.ok());
  EXPECT_TRUE(Admin::FirstError(*del).ok());
  auto gone = admin_->DescribeTopics({"adm"});
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone->empty() || !(*gone)[0].status.ok());
}

TEST_F(ClientE2ETest, RillctlProducesAndConsumesAFile) {
  auto [rc, out] = Rillctl({"topic", "create", "cli", "--partitions", "1"});
  ASSERT_EQ(rc, 0) << out;
  const std::string input = dir_ + "/lines.txt";
  {
    std::ofstream f(input);
    for (int i = 0; i < 100; ++i) f << "k" << i << ":value " << i << "\n";
  }
  // A linger below a millisecond (the producer keeps it to the microsecond).
  std::tie(rc, out) =
      Rillctl({"produce", "cli", "--file", input, "--key-separator", ":", "--linger-ms", "0.5"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("produced 100 records"), std::string::npos) << out;
  std::tie(rc, out) =
      Rillctl({"consume", "cli", "--from", "earliest", "--count", "100", "--format", "key=value"});
  ASSERT_EQ(rc, 0) << out;
  std::string expected;
  for (int i = 0; i < 100; ++i)
    expected += "k" + std::to_string(i) + "=value " + std::to_string(i) + "\n";
  EXPECT_EQ(out, expected);
  std::tie(rc, out) =
      Rillctl({"consume", "cli", "--from", "offset:98", "--count", "2", "--format", "json"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"offset\":98"), std::string::npos) << out;
  EXPECT_NE(out.find("\"key\":\"k99\""), std::string::npos) << out;
  std::tie(rc, out) = Rillctl({"--json", "topic", "describe", "cli"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"high_watermark\":100"), std::string::npos) << out;
  // Global options may also follow the subcommand.
  std::tie(rc, out) = Rillctl({"topic", "describe", "cli", "--json"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"high_watermark\":100"), std::string::npos) << out;
  std::tie(rc, out) = Rillctl({"topic", "describe", "cli", "--no-such-option"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("--no-such-option"), std::string::npos) << out;
  // A later --bootstrap wins over the one the helper puts first.
  std::tie(rc, out) = Rillctl({"topic", "list", "--bootstrap", bootstrap_});
  EXPECT_EQ(rc, 0) << out;
}

TEST_F(ClientE2ETest, RillctlErrorsHaveClearMessagesAndExitCodes) {
  auto [rc, out] = Rillctl({"consume", "nope", "--count", "1"});
  EXPECT_EQ(rc, 3) << out;
  EXPECT_NE(out.find("UNKNOWN_TOPIC"), std::string::npos) << out;
  std::tie(rc, out) = Rillctl({"topic", "create", "bad name!"});
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("error"), std::string::npos) << out;
  std::tie(rc, out) = Rillctl({"produce", "nope", "--linger-ms", "-0.5"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("--linger-ms"), std::string::npos) << out;
  // A port with nothing listening: broker unreachable.
  broker_->Stop();
  std::tie(rc, out) = Rillctl({"topic", "list"});
  EXPECT_EQ(rc, 4) << out;
  EXPECT_NE(out.find("cannot reach broker"), std::string::npos) << out;
}

}  // namespace
}  // namespace rill::client
