#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "controller.h"
#include "controller_test_util.h"

namespace rill::broker {
namespace {

using namespace controller_test;  // NOLINT

size_t UnfencedCount(const MetadataImage& img) {
  size_t n = 0;
  for (const auto& [id, b] : img.brokers) n += b.fenced ? 0 : 1;
  return n;
}

// Raft and session timing of ThreeVoters. The defaults are generous: sanitizer builds on a loaded
// 2-core machine must not see spurious elections or fencing.
struct Timing {
  int32_t tick_ms = 20;
  int32_t election_ticks = 25;
  int32_t heartbeat_ticks = 3;
  int32_t session_timeout_ms = 2000;
};

// Three controller voters in one process, each with its own gRPC server on a free loopback port.
class ThreeVoters {
 public:
  explicit ThreeVoters(const std::string& dir, Timing timing = {}) {
    std::vector<VoterAddress> voters;
    for (int id = 1; id <= 3; ++id) voters.push_back({NodeId(id), "127.0.0.1", FreePort()});
    for (int id = 1; id <= 3; ++id) {
      ControllerConfig c;
      c.node_id = NodeId(id);
      c.voters = voters;
      c.metadata_dir = dir + "/node" + std::to_string(id);
      c.cluster_id = "three";
      c.tick_ms = timing.tick_ms;
      c.election_ticks = timing.election_ticks;
      c.heartbeat_ticks = timing.heartbeat_ticks;
      c.default_partitions = 3;
      c.default_replication_factor = 3;
      c.broker_session_timeout_ms = timing.session_timeout_ms;
      c.self.node_id = NodeId(id);
      c.self.host = "127.0.0.1";
      c.self.port = 20000 + id;
      c.self.internal_port = voters[id - 1].port;
      nodes_.push_back(std::make_unique<Node>());
      Node& n = *nodes_.back();
      n.controller = MakeController(c);
      grpc::ServerBuilder b;
      b.AddListeningPort("127.0.0.1:" + std::to_string(voters[id - 1].port),
                         grpc::InsecureServerCredentials());
      b.RegisterService(n.controller->internal_service());
      n.server = b.BuildAndStart();
      EXPECT_NE(n.server, nullptr);
      waiter_.Watch(n.controller.get());
    }
    for (auto& n : nodes_) EXPECT_TRUE(n->controller->Start().ok());
  }
  ~ThreeVoters() {
    for (size_t i = 0; i < nodes_.size(); ++i) StopNode(i);
  }

  Controller* node(size_t i) { return nodes_[i]->controller.get(); }
  bool running(size_t i) const { return nodes_[i]->server != nullptr; }

  void StopNode(size_t i) {
    Node& n = *nodes_[i];
    if (n.server == nullptr) return;
    n.controller->Stop();
    n.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    n.server.reset();
  }

  // Index of the single active node among the running ones, or -1.
  int Active() {
    int active = -1;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!running(i) || !node(i)->IsActive()) continue;
      if (active != -1) return -1;
      active = static_cast<int>(i);
    }
    return active;
  }

  bool WaitFor(const std::function<bool()>& pred) { return waiter_.WaitFor(pred); }

  // Each node's view, for failure messages.
  std::string Describe() {
    std::string out;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      out += "node " + std::to_string(i + 1) + (running(i) ? "" : " (stopped)") +
             (node(i)->IsActive() ? " active" : "");
      if (auto img = node(i)->image()) {
        out += " controller=" + std::to_string(img->controller_id.value()) +
               " applied=" + std::to_string(img->applied_index) + " brokers=";
        for (const auto& [id, b] : img->brokers) {
          out += std::to_string(id.value()) + (b.fenced ? "(fenced)" : "") + ",";
        }
        out += " cluster=" + img->cluster_id;
      }
      out += "\n";
    }
    return out;
  }

  // True when every running node's image satisfies `pred`.
  bool AllImages(const std::function<bool(const MetadataImage&)>& pred) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!running(i)) continue;
      auto img = node(i)->image();
      if (img == nullptr || !pred(*img)) return false;
    }
    return true;
  }

 private:
  struct Node {
    std::unique_ptr<Controller> controller;
    std::unique_ptr<grpc::Server> server;
  };
  Waiter waiter_;
  std::vector<std::unique_ptr<Node>> nodes_;
};

TEST(ControllerTest, ThreeVotersElectReplicateForwardAndFailOver) {
  TempDir dir;
  ThreeVoters cluster(dir.path());

  // A leader emerges, every broker registers, and all images agree on the controller.
  ASSERT_TRUE(cluster.WaitFor([&] {
    int a = cluster.Active();
    return a >= 0 && cluster.AllImages([&](const MetadataImage& img) {
      return img.brokers.size() == 3 && img.cluster_id == "three" &&
             img.controller_id == NodeId(a + 1);
    });
  })) << "no leader with three registered brokers:\n"
      << cluster.Describe();
  int leader = cluster.Active();
  ASSERT_GE(leader, 0);
  int follower = (leader + 1) % 3;

  // Created on the leader: visible in all three images.
  auto results = Await(
      [&](auto done) { cluster.node(leader)->CreateTopics({Topic("orders", 3)}, false, done); });
  ASSERT_EQ(results.size(), 1u);
  ASSERT_EQ(results[0].error, TopicOpError::kNone) << results[0].message;
  auto leader_image = cluster.node(leader)->image();  // keeps the image (and `t`) alive
  const TopicMetadata* t = leader_image->FindTopic("orders");
  ASSERT_NE(t, nullptr);
  // Round-robin over the three brokers: each leads one partition; RF 3 = all replicas.
  std::set<int> leaders;
  for (const PartitionAssignment& p : t->partitions) {
    leaders.insert(p.leader.value());
    EXPECT_EQ(p.replicas.size(), 3u);
    EXPECT_EQ(p.leader, p.replicas[0]);
  }
  EXPECT_EQ(leaders.size(), 3u);
  ASSERT_TRUE(cluster.WaitFor([&] {
    return cluster.AllImages(
        [](const MetadataImage& img) { return img.FindTopic("orders") != nullptr; });
  }));

  // Submitted on a follower: forwarded to the leader, and its result comes back.
  results = Await([&](auto done) {
    cluster.node(follower)->CreateTopics(
        {Topic("from-follower", 1), Topic("orders", 1), Topic("too-many-replicas", 1, 4)}, false,
        done);
  });
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].error, TopicOpError::kNone) << results[0].message;
  EXPECT_EQ(results[1].error, TopicOpError::kTopicAlreadyExists);
  EXPECT_EQ(results[2].error, TopicOpError::kInvalidReplicationFactor);
  results = Await([&](auto done) {
    cluster.node(follower)->AlterConfigs("orders", {{"retention.ms", "5000"}}, {}, false, done);
  });
  EXPECT_EQ(results[0].error, TopicOpError::kNone) << results[0].message;
  ASSERT_TRUE(cluster.WaitFor([&] {
    return cluster.AllImages([](const MetadataImage& img) {
      const TopicMetadata* o = img.FindTopic("orders");
      return img.FindTopic("from-follower") != nullptr && o != nullptr &&
             o->configs.count("retention.ms") == 1;
    });
  }));

  // Stop the leader: one of the other two takes over and the topics survive.
  cluster.StopNode(leader);
  ASSERT_TRUE(cluster.WaitFor([&] {
    int a = cluster.Active();
    return a >= 0 && a != leader && cluster.AllImages([&](const MetadataImage& img) {
      return img.controller_id == NodeId(a + 1);
    });
  })) << "no new leader:\n"
      << cluster.Describe();
  int next = cluster.Active();
  ASSERT_NE(next, leader);
  EXPECT_TRUE(cluster.AllImages([](const MetadataImage& img) {
    return img.FindTopic("orders") != nullptr && img.FindTopic("from-follower") != nullptr &&
           img.FindTopic("orders")->configs.at("retention.ms") == "5000";
  }));
  // The old leader's broker misses its heartbeats: it is fenced, and every partition it led
  // gets a live leader from its ISR, with a new leader epoch.
  NodeId gone(leader + 1);
  ASSERT_TRUE(cluster.WaitFor([&] {
    return cluster.AllImages([&](const MetadataImage& img) {
      const TopicMetadata* o = img.FindTopic("orders");
      if (!img.brokers.at(gone).fenced || o == nullptr) return false;
      for (const PartitionAssignment& p : o->partitions) {
        if (p.leader == gone || p.leader.value() < 0) return false;
        if (std::find(p.isr.begin(), p.isr.end(), gone) != p.isr.end()) return false;
      }
      return true;
    });
  })) << "the stopped broker was not fenced:\n"
      << cluster.Describe();
  {
    auto img = cluster.node(next)->image();
    for (const PartitionAssignment& p : img->FindTopic("orders")->partitions) {
      EXPECT_EQ(p.isr.size(), 2u);
      EXPECT_EQ(p.replicas.size(), 3u);
      if (p.replicas[0] == gone) {
        EXPECT_EQ(p.leader_epoch, LeaderEpoch(1));  // moved once
      } else {
        EXPECT_EQ(p.leader, p.replicas[0]);
        EXPECT_EQ(p.leader_epoch, LeaderEpoch(0));
      }
    }
  }
  // The live brokers keep heartbeating, so they stay unfenced.
  EXPECT_TRUE(cluster.AllImages([&](const MetadataImage& img) { return UnfencedCount(img) == 2; }));

  // The new leader still commits with two of three voters.
  results = Await([&](auto done) {
    cluster.node(next)->CreateTopics({Topic("after-failover", 2, 2)}, false, done);
  });
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].error, TopicOpError::kNone) << results[0].message;
  ASSERT_TRUE(cluster.WaitFor([&] {
    return cluster.AllImages(
        [](const MetadataImage& img) { return img.FindTopic("after-failover") != nullptr; });
  }));
}

// A killed controller leader's broker is fenced a session timeout after the last Raft message the
// others had from it, not a session timeout after the election that replaced it
// (BrokerLifecycle::previous_leader_heard_tick_). Here an election takes 1-2 s (50 ticks of 20 ms,
// randomized up to twice that, plus the votes) and the session is 3 s: counting from the new
// leader's activation would fence the old leader no sooner than 4 s after it stopped; counting
// from its last message, about 3 s after.
TEST(ControllerTest, AKilledLeaderIsFencedASessionAfterItsLastMessageNotAfterTheElection) {
  // When a survivor first published an image with the old leader fenced (set on its controller
  // thread). Declared before the cluster, whose nodes call the listeners until they stop.
  std::mutex mu;
  std::optional<std::chrono::steady_clock::time_point> fenced_at;
  TempDir dir;
  ThreeVoters cluster(dir.path(), Timing{20, 50, 3, 3000});
  ASSERT_TRUE(cluster.WaitFor([&] {
    int a = cluster.Active();
    return a >= 0 && cluster.AllImages([&](const MetadataImage& img) {
      return img.brokers.size() == 3 && img.controller_id == NodeId(a + 1) &&
             UnfencedCount(img) == 3;
    });
  })) << cluster.Describe();
  const int leader = cluster.Active();
  ASSERT_GE(leader, 0);
  const NodeId gone(leader + 1);

  for (int i = 0; i < 3; ++i) {
    if (i == leader) continue;
    cluster.node(i)->AddListener([&, gone](std::shared_ptr<const MetadataImage> img,
                                           const ImageChanges&) {
      auto b = img->brokers.find(gone);
      if (b == img->brokers.end() || !b->second.fenced) return;
      std::lock_guard lock(mu);
      if (!fenced_at) fenced_at = std::chrono::steady_clock::now();
    });
  }
  const auto stopped = std::chrono::steady_clock::now();
  cluster.StopNode(leader);  // no leadership transfer: its messages just stop
  ASSERT_TRUE(cluster.WaitFor([&] {
    return cluster.AllImages(
        [&](const MetadataImage& img) { return img.brokers.at(gone).fenced; });
  })) << "the stopped leader was not fenced:\n"
      << cluster.Describe();
  std::chrono::milliseconds elapsed;
  {
    std::lock_guard lock(mu);
    ASSERT_TRUE(fenced_at.has_value());
    elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(*fenced_at - stopped);
  }
  EXPECT_GE(elapsed.count(), 2900) << "fenced before its session ran out";
  EXPECT_LT(elapsed.count(), 3800)
      << "fenced a session timeout after the election rather than after its last message";
  // The two live brokers stayed unfenced throughout.
  EXPECT_TRUE(cluster.AllImages([&](const MetadataImage& img) { return UnfencedCount(img) == 2; }));
}

// Producer id blocks (ProducerIdsRecord) asked of the active controller and of a follower, then
// after the active controller stops: every block is new, so no id is given twice.
TEST(ControllerTest, ProducerIdBlocksAreUniqueAcrossFailover) {
  TempDir dir;
  ThreeVoters cluster(dir.path());
  ASSERT_TRUE(cluster.WaitFor([&] { return cluster.Active() >= 0; })) << cluster.Describe();
  const int leader = cluster.Active();
  std::vector<std::pair<int64_t, int64_t>> blocks;
  auto allocate = [&](int node) {
    auto results = Await([&](auto done) { cluster.node(node)->AllocateProducerIds(done); });
    EXPECT_EQ(results.size(), 1u);
    if (results.size() != 1) return false;
    EXPECT_EQ(results[0].error, TopicOpError::kNone) << results[0].message;
    if (results[0].error != TopicOpError::kNone) return false;
    EXPECT_GT(results[0].producer_ids_count, 0);
    blocks.emplace_back(results[0].producer_ids_first, results[0].producer_ids_count);
    return true;
  };
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(allocate(leader));
    ASSERT_TRUE(allocate((leader + 1) % 3));  // forwarded
  }
  cluster.StopNode(leader);
  ASSERT_TRUE(cluster.WaitFor([&] {
    int a = cluster.Active();
    return a >= 0 && a != leader;
  })) << cluster.Describe();
  const int next = cluster.Active();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(allocate(next));
    ASSERT_TRUE(allocate(3 - leader - next));  // the remaining follower
  }
  std::sort(blocks.begin(), blocks.end());
  for (size_t i = 1; i < blocks.size(); ++i) {
    EXPECT_GE(blocks[i].first, blocks[i - 1].first + blocks[i - 1].second)
        << "blocks " << i - 1 << " and " << i << " overlap";
  }
  // Every running image agrees on the next free id, past the last block.
  const int64_t end = blocks.back().first + blocks.back().second;
  EXPECT_TRUE(cluster.WaitFor([&] {
    return cluster.AllImages([&](const MetadataImage& img) { return img.next_producer_id >= end; });
  }));
}

// Producer id blocks asked of both followers without pause while the active controller stops.
// A new leader must not act on its image before it has applied what earlier leaders committed:
// computed from a stale image, a block overlaps the old leader's last one and the image refuses
// it (kInvalidRequest). Each operation succeeds with a new block or fails with an error that
// says retry; no block is given twice.
TEST(ControllerTest, OperationsDuringAFailoverWaitForTheNewLeaderToCatchUp) {
  TempDir dir;
  ThreeVoters cluster(dir.path());
  ASSERT_TRUE(cluster.WaitFor([&] { return cluster.Active() >= 0; })) << cluster.Describe();
  const int leader = cluster.Active();
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> blocks;  // guarded by mu
  std::vector<std::string> refused;                 // guarded by mu
  std::atomic<bool> stop{false};
  auto hammer = [&](int node) {
    while (!stop.load()) {
      auto results = Await([&](auto done) { cluster.node(node)->AllocateProducerIds(done); });
      if (results.size() != 1) continue;  // Await reported it
      std::lock_guard lock(mu);
      switch (results[0].error) {
        case TopicOpError::kNone:
          blocks.emplace_back(results[0].producer_ids_first, results[0].producer_ids_count);
          break;
        case TopicOpError::kNotController:  // forwarded to the leader as it stopped
        case TopicOpError::kControllerFailed:
        case TopicOpError::kTimeout:
          break;
        default:
          refused.push_back(std::string(TopicOpErrorName(results[0].error)) + ": " +
                            results[0].message);
      }
    }
  };
  auto count = [&] {
    std::lock_guard lock(mu);
    return blocks.size();
  };
  std::vector<std::thread> threads;
  for (int i = 1; i <= 2; ++i) threads.emplace_back(hammer, (leader + i) % 3);
  ASSERT_TRUE(cluster.WaitFor([&] { return count() >= 40; }));
  cluster.StopNode(leader);
  const size_t before = count();
  EXPECT_TRUE(cluster.WaitFor([&] { return count() >= before + 40; })) << cluster.Describe();
  stop = true;
  for (std::thread& t : threads) t.join();
  std::lock_guard lock(mu);
  EXPECT_TRUE(refused.empty()) << refused.size() << " refused, the first: " << refused[0];
  std::sort(blocks.begin(), blocks.end());
  for (size_t i = 1; i < blocks.size(); ++i) {
    EXPECT_GE(blocks[i].first, blocks[i - 1].first + blocks[i - 1].second)
        << "blocks " << i - 1 << " and " << i << " overlap";
  }
}

}  // namespace
}  // namespace rill::broker
