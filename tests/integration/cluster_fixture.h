#pragma once

// ClusterTest: a gtest fixture running three real rill-broker processes as one cluster on free
// loopback ports (docs/ARCHITECTURE.md §7a), with helpers to find partition leaders, create
// replicated topics and read per-partition gauges. Used by replication_integration_test and
// cluster_operations_test.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker_process.h"
#include "rill/client/admin.h"
#include "rill/client/producer.h"
#include "support/poll.h"

namespace rill::client {

using namespace std::chrono_literals;
using rill::testing::BrokerProcess;

constexpr int kNodes = 3;

// A record for one partition (designated initializers would leave fields unnamed).
inline ProducerRecord ToPartition(std::string topic, int32_t partition, std::string value) {
  ProducerRecord r;
  r.topic = std::move(topic);
  r.partition = partition;
  r.value = std::move(value);
  return r;
}

// Sets `stop` and joins `thread` when it goes out of scope, so a test that fails an ASSERT while
// a writer thread runs returns without leaving the thread behind.
struct StopAndJoin {
  std::atomic<bool>& stop;
  std::thread& thread;
  ~StopAndJoin() {
    stop = true;
    if (thread.joinable()) thread.join();
  }
};

// Three combined broker+controller nodes (a three-voter quorum), started fresh for each test in
// their own directory; every produce in these tests uses the client's bootstrap list of all three.
class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (std::filesystem::temp_directory_path() /
            ("rill_replication_" + std::to_string(::getpid()) + "_" + info->name()))
               .string();
    std::filesystem::remove_all(dir_);
    std::string voters;
    for (int id = 1; id <= kNodes; ++id) {
      const int port = rill::testing::FreePort();
      ASSERT_NE(port, 0);
      internal_ports_.push_back(port);
      if (!voters.empty()) voters += ",";
      voters += std::to_string(id) + "@127.0.0.1:" + std::to_string(port);
    }
    voters_ = voters;
    for (int id = 1; id <= kNodes; ++id) {
      brokers_.push_back(std::make_unique<BrokerProcess>(dir_ + "/node" + std::to_string(id)));
      Launch(id);
    }
    for (auto& b : brokers_) {
      b->WaitReady();
      if (HasFatalFailure()) return;
    }
    ASSERT_TRUE(test::PollUntil(
        [&] {
          v1::MetadataResponse md;
          return Metadata(1, {}, &md) && md.brokers_size() == kNodes;
        },
        60s, 20ms))
        << "the cluster did not list " << kNodes << " brokers";
    AdminConfig ac;
    ac.bootstrap = Bootstrap();
    auto a = Admin::Create(ac);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    admin_ = std::move(a).value();
  }

  void TearDown() override {
    if (::testing::Test::HasFailure()) {
      for (size_t i = 0; i < brokers_.size(); ++i) {
        std::cerr << "---- broker " << i + 1 << " log ----\n" << brokers_[i]->log();
      }
      std::cerr << "--------------------\n";
    }
    for (auto& b : brokers_) {
      if (b->running()) b->Signal(SIGCONT);
    }
    admin_.reset();
    brokers_.clear();
    std::filesystem::remove_all(dir_);
  }

  // Flags every node of the test starts with, after the fixture's own.
  virtual std::vector<std::string> ExtraArgs() const { return {}; }
  // Flags node `id` alone starts with, after ExtraArgs.
  virtual std::vector<std::string> NodeArgs(int /*id*/) const { return {}; }

  // Starts node `id` (1-based) with the test's replication settings.
  void Launch(int id) {
    // Session timeout 3 s rather than the default 1.5 s: these tests share two cores with other
    // clusters under `make test`, and a heartbeat starved for 1.5 s would fence a live broker.
    std::vector<std::string> args = {"--replica.lag.time.max.ms", "1500",
                                     "--broker.session.timeout.ms", "3000",
                                     "--topic.replication_factor", "3"};
    for (const std::string& a : ExtraArgs()) args.push_back(a);
    for (const std::string& a : NodeArgs(id)) args.push_back(a);
    brokers_[id - 1]->Launch(args,
                             BrokerProcess::ClusterMember{id, internal_ports_[id - 1], voters_});
  }

  BrokerProcess& Node(int id) { return *brokers_[id - 1]; }

  // Every running node's client address, comma-separated.
  std::string Bootstrap() {
    std::string out;
    for (auto& b : brokers_) {
      if (!b->running()) continue;
      if (!out.empty()) out += ",";
      out += "127.0.0.1:" + std::to_string(b->client_port());
    }
    return out;
  }

  bool Metadata(int node, const std::vector<std::string>& topics, v1::MetadataResponse* out) {
    if (!Node(node).running()) return false;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    v1::MetadataRequest req;
    for (const auto& t : topics) req.add_topics(t);
    return Node(node).metadata->Get(&ctx, req, out).ok();
  }

  // The partition's metadata as node `node` has it.
  std::optional<v1::PartitionMetadata> PartitionOf(int node, const std::string& topic, int p) {
    v1::MetadataResponse md;
    if (!Metadata(node, {topic}, &md) || md.topics_size() != 1) return std::nullopt;
    for (const auto& pm : md.topics(0).partitions()) {
      if (pm.partition() == p && pm.error() == v1::NONE) return pm;
    }
    return std::nullopt;
  }

  // Waits until some running node reports a leader for the partition that is running and the
  // ISR has `isr_size` members; returns the leader (-1 on timeout).
  int WaitForLeader(const std::string& topic, int p, int isr_size = kNodes,
                    std::chrono::seconds timeout = 60s) {
    int leader = -1;
    test::PollUntil(
        [&] {
          for (int n = 1; n <= kNodes; ++n) {
            auto pm = PartitionOf(n, topic, p);
            if (!pm || pm->leader_id() <= 0 || pm->isr_size() != isr_size) continue;
            if (!Node(pm->leader_id()).running()) continue;
            leader = pm->leader_id();
            return true;
          }
          return false;
        },
        timeout, 20ms);
    return leader;
  }

  void CreateTopic(const std::string& name, int partitions,
                   std::map<std::string, std::string> configs = {}) {
    auto created = admin_->CreateTopics({NewTopic{.name = name,
                                                  .partitions = partitions,
                                                  .replication_factor = 3,
                                                  .configs = std::move(configs)}});
    ASSERT_TRUE(created.ok()) << created.status().ToString();
    ASSERT_TRUE(Admin::FirstError(*created).ok()) << Admin::FirstError(*created).ToString();
    for (int p = 0; p < partitions; ++p) {
      ASSERT_GT(WaitForLeader(name, p), 0);
      ASSERT_TRUE(WaitUntilEveryBrokerKnows(name, p));
    }
  }

  // Each broker applies the controller's records on its own: one may still lack a new topic when
  // another already names its leader (a test that asked the new leader itself right after
  // WaitForLeader failed so). Waits until every running broker has the partition with a leader.
  bool WaitUntilEveryBrokerKnows(const std::string& topic, int p) {
    return test::PollUntil(
        [&] {
          for (int n = 1; n <= kNodes; ++n) {
            if (!Node(n).running()) continue;
            auto pm = PartitionOf(n, topic, p);
            if (!pm || pm->leader_id() <= 0) return false;
          }
          return true;
        },
        60s, 20ms);
  }

  std::unique_ptr<Producer> MakeProducer(int32_t delivery_timeout_ms = 60000) {
    ProducerConfig pc;
    pc.bootstrap = Bootstrap();
    pc.acks = -1;
    pc.linger_ms = 1;
    pc.max_in_flight = 1;
    pc.retry_backoff_ms = 50;
    pc.retry_backoff_max_ms = 200;
    pc.request_timeout_ms = 5000;
    pc.delivery_timeout_ms = delivery_timeout_ms;
    pc.metadata_max_age_ms = 1000;
    auto p = Producer::Create(pc);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? std::move(p).value() : nullptr;
  }

  // A gauge of /metrics on node `node` for one partition; -1 when absent.
  int64_t PartitionGauge(int node, const std::string& name, const std::string& topic, int p) {
    const std::string body = rill::testing::HttpGet(Node(node).http_port(), "/metrics");
    const std::string key = name + "{topic=\"" + topic + "\",partition=\"" + std::to_string(p) +
                            "\"} ";
    auto pos = body.find(key);
    if (pos == std::string::npos) return -1;
    return std::stoll(body.substr(pos + key.size()));
  }

  std::string dir_;
  std::string voters_;
  std::vector<int> internal_ports_;
  std::vector<std::unique_ptr<BrokerProcess>> brokers_;
  std::unique_ptr<Admin> admin_;
};

}  // namespace rill::client
