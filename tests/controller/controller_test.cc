#include "controller.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "controller_test_util.h"
#include "rill/replication/disk_raft_storage.h"
#include "rill/storage/file_system.h"
#include "topic_config.h"

namespace rill::broker {
namespace {

using namespace controller_test;  // NOLINT

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
  EXPECT_EQ(results[0].error, TopicOpError::kNone) << results[0].message;
  EXPECT_EQ(results[1].error, TopicOpError::kInvalidTopic);
  EXPECT_EQ(results[2].error, TopicOpError::kInvalidTopic);
  EXPECT_EQ(results[3].error, TopicOpError::kInvalidPartitions);
  EXPECT_EQ(results[4].error, TopicOpError::kInvalidReplicationFactor);
  EXPECT_EQ(results[5].error, TopicOpError::kInvalidConfig);
  EXPECT_NE(results[5].message.find("flush.policy"), std::string::npos);
  EXPECT_EQ(results[6].error, TopicOpError::kInvalidConfig);

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
  EXPECT_EQ(results[0].error, TopicOpError::kTopicAlreadyExists);
  EXPECT_EQ(results[1].error, TopicOpError::kNone);
  EXPECT_EQ(results[2].error, TopicOpError::kInvalidTopic);
  EXPECT_NE(results[2].message.find("collides"), std::string::npos) << results[2].message;
  EXPECT_EQ(results[3].error, TopicOpError::kNone) << results[3].message;
  EXPECT_EQ(results[4].error, TopicOpError::kInvalidRequest);
  EXPECT_EQ(results[5].error, TopicOpError::kInvalidRequest);
  img = c->image();
  ASSERT_NE(img->FindTopic("__consumer_offsets"), nullptr);
  EXPECT_TRUE(img->FindTopic("__consumer_offsets")->internal);
  EXPECT_EQ(img->FindTopic("a_b"), nullptr);

  // validate_only checks everything and changes nothing.
  results = Await([&](auto done) {
    c->CreateTopics({Topic("dry", 2), Topic("dry2", 0, 5)}, true, done);
  });
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].error, TopicOpError::kNone);
  EXPECT_EQ(results[1].error, TopicOpError::kInvalidReplicationFactor);
  EXPECT_EQ(c->image()->FindTopic("dry"), nullptr);
  c->Stop();

  // After Stop every operation fails at once with BROKER_NOT_AVAILABLE.
  results = Await([&](auto done) { c->CreateTopics({Topic("late", 1)}, false, done); });
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].error, TopicOpError::kControllerFailed);
}

// A leader's ISR change names the leader epoch and partition epoch it saw: one the controller no
// longer has is StaleEpoch (the leader waits for metadata), a malformed one InvalidRequest, and
// a current one that asks for the ISR the partition has is answered without a change.
TEST(ControllerTest, AlterPartitionRefusesStaleEpochsWithTheirOwnError) {
  TempDir dir;
  auto c = MakeController(SingleNodeConfig(dir.path() + "/meta"));
  ASSERT_TRUE(c->Start().ok());
  auto created = Await([&](auto done) { c->CreateTopics({Topic("orders", 1, 1)}, false, done); });
  ASSERT_EQ(created.size(), 1u);
  ASSERT_EQ(created[0].error, TopicOpError::kNone) << created[0].message;
  const TopicMetadata* t = c->image()->FindTopic("orders");
  ASSERT_NE(t, nullptr);
  const PartitionAssignment p = t->partitions[0];
  auto spec = [&](int32_t leader, LeaderEpoch leader_epoch, int32_t partition_epoch,
                  std::vector<NodeId> isr) {
    AlterPartitionSpec s;
    s.topic = "orders";
    s.topic_id = t->topic_id;
    s.partition = 0;
    s.leader = NodeId(leader);
    s.leader_epoch = leader_epoch;
    s.partition_epoch = partition_epoch;
    s.new_isr = std::move(isr);
    return s;
  };
  auto alter = [&](AlterPartitionSpec s) {
    auto r = Await([&](auto done) { c->AlterPartition(std::move(s), done); });
    EXPECT_EQ(r.size(), 1u);
    return r.empty() ? TopicOpResult{} : r[0];
  };

  TopicOpResult r = alter(spec(1, p.leader_epoch, p.partition_epoch + 1, {NodeId(1)}));
  EXPECT_EQ(r.error, TopicOpError::kStaleEpoch) << r.message;
  EXPECT_NE(r.message.find("partition epoch"), std::string::npos) << r.message;
  r = alter(spec(1, LeaderEpoch(p.leader_epoch.value() + 1), p.partition_epoch, {NodeId(1)}));
  EXPECT_EQ(r.error, TopicOpError::kStaleEpoch) << r.message;
  r = alter(spec(2, p.leader_epoch, p.partition_epoch, {NodeId(1)}));
  EXPECT_EQ(r.error, TopicOpError::kStaleEpoch) << r.message;
  r = alter(spec(1, p.leader_epoch, p.partition_epoch, {NodeId(1), NodeId(7)}));
  EXPECT_EQ(r.error, TopicOpError::kInvalidRequest) << r.message;
  EXPECT_NE(r.message.find("not a replica"), std::string::npos) << r.message;
  // None of these changed anything.
  EXPECT_EQ(c->image()->FindTopic("orders")->partitions[0].partition_epoch, p.partition_epoch);

  r = alter(spec(1, p.leader_epoch, p.partition_epoch, {NodeId(1)}));
  EXPECT_EQ(r.error, TopicOpError::kNone) << r.message;
  EXPECT_EQ(c->image()->FindTopic("orders")->partitions[0].partition_epoch, p.partition_epoch);
  c->Stop();
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
    ASSERT_EQ(results[0].error, TopicOpError::kNone);
    ASSERT_EQ(results[1].error, TopicOpError::kNone);
    std::string orders_id = c->image()->FindTopic("orders")->topic_id;
    EXPECT_FALSE(orders_id.empty());
    EXPECT_NE(orders_id, c->image()->FindTopic("gone")->topic_id);

    // Alter: set one key, drop another back to its default.
    results = Await([&](auto done) {
      c->AlterConfigs("orders", {{"segment.bytes", "1048576"}, {"flush.policy", "none"}},
                      {"retention.ms"}, false, done);
    });
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].error, TopicOpError::kNone) << results[0].message;
    auto configs = c->image()->FindTopic("orders")->configs;
    EXPECT_EQ(configs, (std::map<std::string, std::string>{{"segment.bytes", "1048576"},
                                                           {"flush.policy", "none"}}));
    EXPECT_EQ(EffectiveTopicConfigs(configs).at("retention.ms"), "604800000");

    // Bad alterations change nothing.
    for (auto& [set, remove, code] :
         std::vector<std::tuple<std::map<std::string, std::string>, std::vector<std::string>,
                                TopicOpError>>{
             {{{"segment.bytes", "-5"}}, {}, TopicOpError::kInvalidConfig},
             {{{"no.such.key", "1"}}, {}, TopicOpError::kInvalidConfig},
             {{}, {"no.such.key"}, TopicOpError::kInvalidConfig},
             {{{"segment.ms", "5"}}, {"segment.ms"}, TopicOpError::kInvalidConfig}}) {
      results = Await([&](auto done) { c->AlterConfigs("orders", set, remove, false, done); });
      ASSERT_EQ(results.size(), 1u);
      EXPECT_EQ(results[0].error, code) << results[0].message;
    }
    results = Await([&](auto done) {
      c->AlterConfigs("nope", {{"segment.ms", "5"}}, {}, false, done);
    });
    EXPECT_EQ(results[0].error, TopicOpError::kUnknownTopic);
    results = Await([&](auto done) {
      c->AlterConfigs("orders", {{"segment.ms", "5"}}, {}, /*validate_only=*/true, done);
    });
    EXPECT_EQ(results[0].error, TopicOpError::kNone);
    EXPECT_EQ(c->image()->FindTopic("orders")->configs, configs);

    // Partitions: grow only.
    results = Await([&](auto done) { c->CreatePartitions("orders", 5, done); });
    ASSERT_EQ(results.size(), 1u);
    EXPECT_EQ(results[0].error, TopicOpError::kNone) << results[0].message;
    ASSERT_EQ(c->image()->FindTopic("orders")->partitions.size(), 5u);
    EXPECT_EQ(c->image()->FindTopic("orders")->partitions[4].partition, 4);
    EXPECT_EQ(c->image()->FindTopic("orders")->partitions[4].leader, NodeId(1));
    results = Await([&](auto done) { c->CreatePartitions("orders", 3, done); });
    EXPECT_EQ(results[0].error, TopicOpError::kInvalidPartitions);
    results = Await([&](auto done) { c->CreatePartitions("orders", 101, done); });
    EXPECT_EQ(results[0].error, TopicOpError::kInvalidPartitions);
    results = Await([&](auto done) { c->CreatePartitions("nope", 3, done); });
    EXPECT_EQ(results[0].error, TopicOpError::kUnknownTopic);

    // Delete.
    results = Await([&](auto done) { c->DeleteTopics({"gone", "never"}, done); });
    ASSERT_EQ(results.size(), 2u);
    EXPECT_EQ(results[0].error, TopicOpError::kNone);
    EXPECT_EQ(results[1].error, TopicOpError::kUnknownTopic);
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
  EXPECT_EQ(results[0].error, TopicOpError::kNone);
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
      ASSERT_EQ(results[0].error, TopicOpError::kNone) << results[0].message;
    }
    auto results = Await([&](auto done) {
      c->AlterConfigs("t3", {{"retention.bytes", "12345"}}, {}, false, done);
    });
    ASSERT_EQ(results[0].error, TopicOpError::kNone);
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

}  // namespace
}  // namespace rill::broker
