#include "controller.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <tuple>

#include "rill/replication/disk_raft_storage.h"
#include "rill/storage/file_system.h"
#include "topic_config.h"

namespace rill::broker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr auto kDeadline = 30s;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "rill-controller-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Waits (without sleeping) for a condition over controllers' images: every image listener
// wakes the waiter, which re-evaluates the condition.
class Waiter {
 public:
  void Watch(Controller* c) {
    c->AddListener([this](std::shared_ptr<const MetadataImage>) {
      std::lock_guard<std::mutex> lock(mu_);
      ++version_;
      cv_.notify_all();
    });
  }
  bool WaitFor(const std::function<bool()>& pred, std::chrono::seconds timeout = kDeadline) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      lock.unlock();
      bool ok = pred();
      lock.lock();
      if (ok) return true;
      uint64_t seen = version_;
      // Listeners fire on every image; the bounded wait also covers IsActive(), which flips
      // together with an image whose controller_id changed.
      if (!cv_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + 100ms),
                          [&] { return version_ != seen; }) &&
          std::chrono::steady_clock::now() >= deadline) {
        lock.unlock();
        return pred();
      }
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t version_ = 0;
};

std::vector<TopicOpResult> Await(const std::function<void(Controller::ResultsCallback)>& op) {
  auto promise = std::make_shared<std::promise<std::vector<TopicOpResult>>>();
  auto future = promise->get_future();
  op([promise](std::vector<TopicOpResult> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(kDeadline) != std::future_status::ready) {
    ADD_FAILURE() << "operation did not complete";
    return {};
  }
  return future.get();
}

NewTopicSpec Topic(std::string name, int32_t partitions, int32_t rf = 0,
                   std::map<std::string, std::string> configs = {}) {
  NewTopicSpec s;
  s.name = std::move(name);
  s.partitions = partitions;
  s.replication_factor = rf;
  s.configs = std::move(configs);
  return s;
}

ControllerConfig SingleNodeConfig(const std::string& dir) {
  ControllerConfig c;
  c.node_id = NodeId(1);
  c.voters = {{NodeId(1), "127.0.0.1", 0}};
  c.metadata_dir = dir;
  c.cluster_id = "test-cluster";
  c.tick_ms = 10;
  c.election_ticks = 10;
  c.heartbeat_ticks = 1;
  c.default_partitions = 3;
  c.max_partitions_per_topic = 100;
  c.self.node_id = NodeId(1);
  c.self.host = "127.0.0.1";
  c.self.port = 19092;
  c.self.internal_port = 19093;
  return c;
}

TEST(ControllerTest, SingleNodeBootstrapsRegistersAndCreatesTopics) {
  TempDir dir;
  auto c = MakeController(SingleNodeConfig(dir.path() + "/meta"));
  ASSERT_TRUE(c->Start().ok());
  // A quorum of one is active, with its cluster id and registration committed, as Start returns.
  EXPECT_TRUE(c->IsActive());
  auto img = c->image();
  ASSERT_NE(img, nullptr);
  EXPECT_EQ(img->cluster_id, "test-cluster");
  EXPECT_EQ(img->controller_id, NodeId(1));
  ASSERT_EQ(img->brokers.count(NodeId(1)), 1u);
  EXPECT_EQ(img->brokers.at(NodeId(1)).port, 19092);
  EXPECT_EQ(img->brokers.at(NodeId(1)).internal_port, 19093);

  auto results = Await([&](auto done) {
    c->CreateTopics({Topic("orders", 0, 0, {{"retention.ms", "1000"}}), Topic("bad/name", 1),
                     Topic("__internal", 1), Topic("big", 101), Topic("rf", 1, 2),
                     Topic("cfg", 1, 1, {{"flush.policy", "sometimes"}}),
                     Topic("compact", 1, 1, {{"cleanup.policy", "compact"}})},
                    false, done);
  });
  ASSERT_EQ(results.size(), 7u);
  EXPECT_EQ(results[0].topic, "orders");
  EXPECT_EQ(results[0].error, v1::NONE) << results[0].message;
  EXPECT_EQ(results[1].error, v1::INVALID_TOPIC);
  EXPECT_EQ(results[2].error, v1::INVALID_TOPIC);
  EXPECT_EQ(results[3].error, v1::INVALID_PARTITIONS);
  EXPECT_EQ(results[4].error, v1::INVALID_REPLICATION_FACTOR);
  EXPECT_EQ(results[5].error, v1::INVALID_CONFIG);
  EXPECT_NE(results[5].message.find("flush.policy"), std::string::npos);
  EXPECT_EQ(results[6].error, v1::INVALID_CONFIG);

  // The image is published before the callback runs.
  img = c->image();
  const TopicMetadata* t = img->FindTopic("orders");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->partitions.size(), 3u);  // default_partitions
  for (const PartitionAssignment& p : t->partitions) {
    EXPECT_EQ(p.leader, NodeId(1));
    EXPECT_EQ(p.replicas, std::vector<NodeId>{NodeId(1)});
    EXPECT_EQ(p.isr, std::vector<NodeId>{NodeId(1)});
    EXPECT_EQ(p.leader_epoch, LeaderEpoch(0));
  }
  EXPECT_EQ(t->configs.at("retention.ms"), "1000");
  EXPECT_EQ(img->FindTopic("bad/name"), nullptr);

  // Again: exists. Names that differ only by '.' and '_' collide. Internal topics may use "__".
  results = Await([&](auto done) {
    NewTopicSpec internal = Topic("__consumer_offsets", 2);
    internal.internal = true;
    c->CreateTopics({Topic("orders", 1), Topic("a.b", 1), Topic("a_b", 1), internal,
                     Topic("dup", 1), Topic("dup", 1)},
                    false, done);
  });
  ASSERT_EQ(results.size(), 6u);
  EXPECT_EQ(results[0].error, v1::TOPIC_ALREADY_EXISTS);
  EXPECT_EQ(results[1].error, v1::NONE);
  EXPECT_EQ(results[2].error, v1::INVALID_TOPIC);
  EXPECT_NE(results[2].message.find("collides"), std::string::npos) << results[2].message;
  EXPECT_EQ(results[3].error, v1::NONE) << results[3].message;
  EXPECT_EQ(results[4].error, v1::INVALID_REQUEST);
  EXPECT_EQ(results[5].error, v1::INVALID_REQUEST);
  img = c->image();
  ASSERT_NE(img->FindTopic("__consumer_offsets"), nullptr);
  EXPECT_TRUE(img->FindTopic("__consumer_offsets")->internal);
  EXPECT_EQ(img->FindTopic("a_b"), nullptr);

  // validate_only checks everything and changes nothing.
  results = Await([&](auto done) {
    c->CreateTopics({Topic("dry", 2), Topic("dry2", 0, 5)}, true, done);
  });
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].error, v1::NONE);
  EXPECT_EQ(results[1].error, v1::INVALID_REPLICATION_FACTOR);
  EXPECT_EQ(c->image()->FindTopic("dry"), nullptr);
  c->Stop();

  // After Stop every operation fails at once with BROKER_NOT_AVAILABLE.
  results = Await([&](auto done) { c->CreateTopics({Topic("late", 1)}, false, done); });
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].error, v1::BROKER_NOT_AVAILABLE);
}

// Everything the image holds, as text, to compare two images.
std::string Dump(const MetadataImage& img) {
  std::string out = "cluster=" + img.cluster_id + "\n";
  for (const auto& [id, b] : img.brokers) {
    out += "broker " + std::to_string(id.value()) + " " + b.host + ":" + std::to_string(b.port) +
           " internal " + std::to_string(b.internal_port) + (b.fenced ? " fenced" : "") + "\n";
  }
  for (const auto& [name, t] : img.topics) {
    out += "topic " + name + " id=" + t.topic_id + (t.internal ? " internal" : "") + "\n";
    for (const PartitionAssignment& p : t.partitions) {
      out += "  p" + std::to_string(p.partition) + " leader=" + std::to_string(p.leader.value()) +
             " epoch=" + std::to_string(p.leader_epoch.value()) + " replicas=";
      for (NodeId n : p.replicas) out += std::to_string(n.value()) + ",";
      out += " isr=";
      for (NodeId n : p.isr) out += std::to_string(n.value()) + ",";
      out += "\n";
    }
    for (const auto& [k, v] : t.configs) out += "  " + k + "=" + v + "\n";
  }
  return out;
}

TEST(ControllerTest, SingleNodeAltersConfigsAddsPartitionsDeletesAndRestarts) {
  TempDir dir;
  std::string meta = dir.path() + "/meta";
  std::string before;
  {
    auto c = MakeController(SingleNodeConfig(meta));
    ASSERT_TRUE(c->Start().ok());
    auto results = Await([&](auto done) {
      c->CreateTopics({Topic("orders", 2, 1, {{"retention.ms", "1000"}}), Topic("gone", 1)}, false,
                      done);
    });
    ASSERT_EQ(results.size(), 2u);
    ASSERT_EQ(results[0].error, v1::NONE);
    ASSERT_EQ(results[1].error, v1::NONE);
    std::string orders_id = c->image()->FindTopic("orders")->topic_id;
    EXPECT_FALSE(orders_id.empty());
    EXPECT_NE(orders_id, c->image()->FindTopic("gone")->topic_id);

    // Alter: set one key, drop another back to its default.
    results = Await([&](auto done) {
      c->AlterConfigs("orders", {{"segment.bytes", "1048576"}, {"flush.policy", "none"}},
                      {"retention.ms"}, false, done);
    });
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].error, v1::NONE) << results[0].message;
    auto configs = c->image()->FindTopic("orders")->configs;
    EXPECT_EQ(configs, (std::map<std::string, std::string>{{"segment.bytes", "1048576"},
                                                           {"flush.policy", "none"}}));
    EXPECT_EQ(EffectiveTopicConfigs(configs).at("retention.ms"), "604800000");

    // Bad alterations change nothing.
    for (auto& [set, remove, code] :
         std::vector<std::tuple<std::map<std::string, std::string>, std::vector<std::string>,
                                v1::ErrorCode>>{
             {{{"segment.bytes", "-5"}}, {}, v1::INVALID_CONFIG},
             {{{"no.such.key", "1"}}, {}, v1::INVALID_CONFIG},
             {{}, {"no.such.key"}, v1::INVALID_CONFIG},
             {{{"segment.ms", "5"}}, {"segment.ms"}, v1::INVALID_CONFIG}}) {
      results = Await([&](auto done) { c->AlterConfigs("orders", set, remove, false, done); });
      ASSERT_EQ(results.size(), 1u);
      EXPECT_EQ(results[0].error, code) << results[0].message;
    }
    results = Await([&](auto done) {
      c->AlterConfigs("nope", {{"segment.ms", "5"}}, {}, false, done);
    });
    EXPECT_EQ(results[0].error, v1::UNKNOWN_TOPIC);
    results = Await([&](auto done) {
      c->AlterConfigs("orders", {{"segment.ms", "5"}}, {}, /*validate_only=*/true, done);
    });
    EXPECT_EQ(results[0].error, v1::NONE);
    EXPECT_EQ(c->image()->FindTopic("orders")->configs, configs);

    // Partitions: grow only.
    results = Await([&](auto done) { c->CreatePartitions("orders", 5, done); });
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].error, v1::NONE) << results[0].message;
    ASSERT_EQ(c->image()->FindTopic("orders")->partitions.size(), 5u);
    EXPECT_EQ(c->image()->FindTopic("orders")->partitions[4].partition, 4);
    EXPECT_EQ(c->image()->FindTopic("orders")->partitions[4].leader, NodeId(1));
    results = Await([&](auto done) { c->CreatePartitions("orders", 3, done); });
    EXPECT_EQ(results[0].error, v1::INVALID_PARTITIONS);
    results = Await([&](auto done) { c->CreatePartitions("orders", 101, done); });
    EXPECT_EQ(results[0].error, v1::INVALID_PARTITIONS);
    results = Await([&](auto done) { c->CreatePartitions("nope", 3, done); });
    EXPECT_EQ(results[0].error, v1::UNKNOWN_TOPIC);

    // Delete.
    results = Await([&](auto done) { c->DeleteTopics({"gone", "never"}, done); });
    ASSERT_EQ(results.size(), 2u);
    EXPECT_EQ(results[0].error, v1::NONE);
    EXPECT_EQ(results[1].error, v1::UNKNOWN_TOPIC);
    EXPECT_EQ(c->image()->FindTopic("gone"), nullptr);

    before = Dump(*c->image());
    c->Stop();
  }
  // A new controller on the same directory replays the log into the same image.
  auto c = MakeController(SingleNodeConfig(meta));
  ASSERT_TRUE(c->Start().ok());
  EXPECT_EQ(Dump(*c->image()), before);
  EXPECT_NE(before.find("topic orders"), std::string::npos);
  EXPECT_EQ(before.find("topic gone"), std::string::npos);
  // And keeps working: the re-created topic gets a new id.
  auto results = Await([&](auto done) { c->CreateTopics({Topic("gone", 1)}, false, done); });
  EXPECT_EQ(results[0].error, v1::NONE);
  c->Stop();
}

TEST(ControllerTest, SnapshotsBoundTheLogAndRestartFromThem) {
  TempDir dir;
  std::string meta = dir.path() + "/meta";
  ControllerConfig config = SingleNodeConfig(meta);
  config.snapshot_every_records = 5;
  std::string before;
  {
    auto c = MakeController(config);
    ASSERT_TRUE(c->Start().ok());
    for (int i = 0; i < 23; ++i) {
      auto results = Await(
          [&](auto done) { c->CreateTopics({Topic("t" + std::to_string(i), 1)}, false, done); });
      ASSERT_EQ(results.size(), 1u);
      ASSERT_EQ(results[0].error, v1::NONE) << results[0].message;
    }
    auto results = Await([&](auto done) {
      c->AlterConfigs("t3", {{"retention.bytes", "12345"}}, {}, false, done);
    });
    ASSERT_EQ(results[0].error, v1::NONE);
    before = Dump(*c->image());
    c->Stop();
  }
  {
    // The stored log starts from a snapshot and holds fewer entries than were written.
    auto storage =
        std::move(raft::DiskRaftStorage::Open(storage::DefaultFileSystem(), meta)).value();
    auto state = storage->Load();
    ASSERT_TRUE(state.ok());
    ASSERT_TRUE(state->snapshot.has_value());
    EXPECT_GE(state->snapshot->metadata.index.value(), 20u);
    EXPECT_LT(state->entries.size(), 10u);
  }
  auto c = MakeController(config);
  ASSERT_TRUE(c->Start().ok());
  EXPECT_EQ(Dump(*c->image()), before);
  EXPECT_EQ(c->image()->topics.size(), 23u);
  c->Stop();
}

size_t UnfencedCount(const MetadataImage& img) {
  size_t n = 0;
  for (const auto& [id, b] : img.brokers) n += b.fenced ? 0 : 1;
  return n;
}

// Three controller voters in one process, each with its own gRPC server on a free loopback port.
class ThreeVoters {
 public:
  explicit ThreeVoters(const std::string& dir) {
    std::vector<VoterAddress> voters;
    for (int id = 1; id <= 3; ++id) voters.push_back({NodeId(id), "127.0.0.1", FreePort()});
    for (int id = 1; id <= 3; ++id) {
      ControllerConfig c;
      c.node_id = NodeId(id);
      c.voters = voters;
      c.metadata_dir = dir + "/node" + std::to_string(id);
      c.cluster_id = "three";
      c.tick_ms = 10;
      c.election_ticks = 20;
      c.heartbeat_ticks = 2;
      c.default_partitions = 3;
      c.default_replication_factor = 3;
      c.broker_session_timeout_ms = 1000;
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
  ASSERT_EQ(results[0].error, v1::NONE) << results[0].message;
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
  EXPECT_EQ(results[0].error, v1::NONE) << results[0].message;
  EXPECT_EQ(results[1].error, v1::TOPIC_ALREADY_EXISTS);
  EXPECT_EQ(results[2].error, v1::INVALID_REPLICATION_FACTOR);
  results = Await([&](auto done) {
    cluster.node(follower)->AlterConfigs("orders", {{"retention.ms", "5000"}}, {}, false, done);
  });
  EXPECT_EQ(results[0].error, v1::NONE) << results[0].message;
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
  EXPECT_EQ(results[0].error, v1::NONE) << results[0].message;
  ASSERT_TRUE(cluster.WaitFor([&] {
    return cluster.AllImages(
        [](const MetadataImage& img) { return img.FindTopic("after-failover") != nullptr; });
  }));
}

}  // namespace
}  // namespace rill::broker
