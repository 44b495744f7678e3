// The client library against a cluster of three real rill-broker processes (a three-voter
// controller quorum on free loopback ports): partitions are led by different nodes, and a
// consumer bootstrapped at one node reads each partition from its leader.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <set>

#include "broker_process.h"
#include "rill/client/admin.h"
#include "rill/client/consumer.h"
#include "rill/client/producer.h"
#include "support/poll.h"

namespace rill::client {
namespace {

using namespace std::chrono_literals;
using rill::testing::BrokerProcess;

constexpr int kNodes = 3;

class ClientClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (std::filesystem::temp_directory_path() /
            ("rill_client_cluster_" + std::to_string(::getpid()) + "_" + info->name()))
               .string();
    std::filesystem::remove_all(dir_);
    std::vector<int> internal_ports;
    std::string voters;
    for (int id = 1; id <= kNodes; ++id) {
      const int port = rill::testing::FreePort();
      ASSERT_NE(port, 0);
      internal_ports.push_back(port);
      if (!voters.empty()) voters += ",";
      voters += std::to_string(id) + "@127.0.0.1:" + std::to_string(port);
    }
    for (int id = 1; id <= kNodes; ++id) {
      brokers_.push_back(std::make_unique<BrokerProcess>(dir_ + "/node" + std::to_string(id)));
      brokers_.back()->Launch({}, BrokerProcess::ClusterMember{id, internal_ports[id - 1], voters});
    }
    for (auto& b : brokers_) {
      b->WaitReady();
      if (HasFatalFailure()) return;
    }
    bootstrap_ = "127.0.0.1:" + std::to_string(brokers_[0]->client_port());
    // Every node has registered with the controller, as seen from the bootstrap node.
    ASSERT_TRUE(test::PollUntil(
        [&] {
          v1::MetadataResponse md;
          return Metadata({}, &md) && md.brokers_size() == kNodes;
        },
        60s, 20ms))
        << "the cluster did not list " << kNodes << " brokers";
    AdminConfig ac;
    ac.bootstrap = bootstrap_;
    auto a = Admin::Create(ac);
    ASSERT_TRUE(a.ok());
    admin_ = std::move(a).value();
  }

  void TearDown() override {
    if (::testing::Test::HasFailure()) {
      for (size_t i = 0; i < brokers_.size(); ++i) {
        std::cerr << "---- broker " << i + 1 << " log ----\n" << brokers_[i]->log();
      }
      std::cerr << "--------------------\n";
    }
    admin_.reset();
    brokers_.clear();
    std::filesystem::remove_all(dir_);
  }

  // Metadata.Get on the bootstrap node.
  bool Metadata(const std::vector<std::string>& topics, v1::MetadataResponse* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    v1::MetadataRequest req;
    for (const auto& t : topics) req.add_topics(t);
    return brokers_[0]->metadata->Get(&ctx, req, out).ok();
  }

  // Leader node of each partition of `topic` once every partition has one (empty on timeout).
  std::map<int32_t, int32_t> WaitForLeaders(const std::string& topic, int partitions) {
    std::map<int32_t, int32_t> leaders;
    test::PollUntil(
        [&] {
          leaders.clear();
          v1::MetadataResponse md;
          if (!Metadata({topic}, &md) || md.topics_size() != 1) return false;
          for (const auto& p : md.topics(0).partitions()) {
            if (p.error() == v1::NONE && p.leader_id() >= 0) leaders[p.partition()] = p.leader_id();
          }
          return static_cast<int>(leaders.size()) == partitions;
        },
        60s, 20ms);
    if (static_cast<int>(leaders.size()) != partitions) leaders.clear();
    return leaders;
  }

  std::string dir_;
  std::string bootstrap_;
  std::vector<std::unique_ptr<BrokerProcess>> brokers_;
  std::unique_ptr<Admin> admin_;
};

TEST_F(ClientClusterTest, ConsumerBootstrappedAtOneNodeReadsEveryPartitionFromItsLeader) {
  constexpr int kPartitions = 6;
  constexpr int kPerPartition = 200;
  auto created = admin_->CreateTopics({NewTopic{
      .name = "spread", .partitions = kPartitions, .replication_factor = 1, .configs = {}}});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ASSERT_TRUE(Admin::FirstError(*created).ok()) << Admin::FirstError(*created).ToString();
  const std::map<int32_t, int32_t> leaders = WaitForLeaders("spread", kPartitions);
  ASSERT_EQ(static_cast<int>(leaders.size()), kPartitions) << "partitions without a leader";
  std::set<int32_t> leader_nodes;
  for (const auto& [p, node] : leaders) leader_nodes.insert(node);
  // The point of the test: some partitions are led by nodes other than the bootstrap node.
  ASSERT_GE(leader_nodes.size(), 2u) << "every partition landed on one node";

  // (partition, offset) -> value of every acknowledged record.
  std::map<std::pair<int32_t, int64_t>, std::string> acked;
  {
    ProducerConfig pc;
    pc.bootstrap = bootstrap_;
    pc.batch_size = 2048;  // several batches per partition
    auto producer = Producer::Create(pc);
    ASSERT_TRUE(producer.ok()) << producer.status().ToString();
    std::mutex mu;
    std::vector<std::pair<std::string, Result<RecordMetadata>>> done;
    for (int p = 0; p < kPartitions; ++p) {
      for (int i = 0; i < kPerPartition; ++i) {
        ProducerRecord r;
        r.topic = "spread";
        r.partition = p;
        r.value = "p" + std::to_string(p) + "-" + std::to_string(i);
        (*producer)->Send(r, [&, value = *r.value](const Result<RecordMetadata>& md) {
          std::lock_guard lk(mu);
          done.emplace_back(value, md);
        });
      }
    }
    (*producer)->Flush();
    ASSERT_EQ(done.size(), static_cast<size_t>(kPartitions * kPerPartition));
    for (auto& [value, md] : done) {
      ASSERT_TRUE(md.ok()) << md.status().ToString();
      EXPECT_TRUE(acked.emplace(std::make_pair(md->partition, md->offset), value).second)
          << "offset acknowledged twice";
    }
  }

  ConsumerConfig cc;
  cc.bootstrap = bootstrap_;
  cc.auto_offset_reset = OffsetReset::kEarliest;
  cc.fetch_max_wait_ms = 100;
  cc.max_partition_fetch_bytes = 4096;  // many fetches per partition
  auto consumer = Consumer::Create(cc);
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
  std::vector<TopicPartition> all;
  for (int p = 0; p < kPartitions; ++p) all.push_back({"spread", p});
  ASSERT_TRUE((*consumer)->Assign(all).ok());
  std::map<std::pair<int32_t, int64_t>, int> seen;  // times each record came back
  std::map<int32_t, int64_t> next;
  size_t received = 0;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (received < acked.size() && std::chrono::steady_clock::now() < deadline) {
    auto rs = (*consumer)->Poll(200ms);
    ASSERT_TRUE(rs.ok()) << rs.status().ToString();
    for (const auto& r : *rs) {
      ++received;
      EXPECT_EQ(r.offset, next[r.partition]) << "gap or duplicate in partition " << r.partition;
      next[r.partition] = r.offset + 1;
      ++seen[{r.partition, r.offset}];
      auto it = acked.find({r.partition, r.offset});
      ASSERT_NE(it, acked.end()) << "unacknowledged record at " << r.partition << "@" << r.offset;
      EXPECT_EQ(r.value, it->second);
    }
  }
  EXPECT_EQ(received, acked.size()) << "records delivered (duplicates counted) vs acknowledged";
  std::map<int32_t, int64_t> per_partition;
  for (const auto& [key, times] : seen) {
    EXPECT_EQ(times, 1) << "record " << key.first << "@" << key.second << " came back " << times
                        << " times";
    ++per_partition[key.first];
  }
  for (int p = 0; p < kPartitions; ++p) {
    EXPECT_EQ(per_partition[p], kPerPartition)
        << "partition " << p << " (led by node " << leaders.at(p) << ")";
  }
  for (int p = 0; p < kPartitions; ++p) {
    auto pos = (*consumer)->Position({"spread", p});
    ASSERT_TRUE(pos.ok()) << pos.status().ToString();
    EXPECT_EQ(*pos, kPerPartition) << "partition " << p;
  }
}

}  // namespace
}  // namespace rill::client
