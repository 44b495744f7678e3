// A broker-only node (node.roles = ["broker"]) with real rill-broker processes: it follows a
// one-controller quorum's metadata log as a non-voting learner, registers, leads partitions and
// serves them, forwards admin operations, and carries on through a restart of the controller
// and a restart of its own.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>

#include "broker_process.h"
#include "rill/proto/record_batch.h"
#include "support/poll.h"

namespace rill::testing {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class BrokerOnlyNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ =
        (fs::temp_directory_path() / ("rill_it_" + std::to_string(::getpid()) + "_" + info->name()))
            .string();
    fs::remove_all(dir_);
    const int controller_port = FreePort();
    const int broker_port = FreePort();
    ASSERT_NE(controller_port, 0);
    ASSERT_NE(broker_port, 0);
    const std::string voters = "1@127.0.0.1:" + std::to_string(controller_port);
    controller_member_ = {1, controller_port, voters};
    broker_member_ = {2, broker_port, voters};
    controller_ = std::make_unique<BrokerProcess>(dir_ + "/node1");
    broker_ = std::make_unique<BrokerProcess>(dir_ + "/node2");
    controller_->Launch({}, controller_member_);
    ASSERT_NO_FATAL_FAILURE(controller_->WaitReady());
    broker_->Launch({"--node.roles", "broker"}, broker_member_);
    ASSERT_NO_FATAL_FAILURE(broker_->WaitReady());
  }

  void TearDown() override {
    if (::testing::Test::HasFailure() || getenv("RILL_IT_SHOW_LOG")) {
      if (controller_) std::cerr << "---- node 1 (controller) log ----\n" << controller_->log();
      if (broker_) std::cerr << "---- node 2 (broker only) log ----\n" << broker_->log();
      std::cerr << "--------------------\n";
    }
    broker_.reset();
    controller_.reset();
    fs::remove_all(dir_);
  }

  static bool GetMetadata(BrokerProcess& b, const std::vector<std::string>& topics,
                          v1::MetadataResponse* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    v1::MetadataRequest req;
    for (const auto& t : topics) req.add_topics(t);
    return b.metadata->Get(&ctx, req, out).ok();
  }

  // Waits until `b` sees `topic` with every partition led; returns partition -> leader.
  static std::map<int32_t, int32_t> Leaders(BrokerProcess& b, const std::string& topic,
                                            int partitions) {
    std::map<int32_t, int32_t> leaders;
    test::PollUntil(
        [&] {
          leaders.clear();
          v1::MetadataResponse md;
          if (!GetMetadata(b, {topic}, &md) || md.topics_size() != 1) return false;
          for (const auto& p : md.topics(0).partitions()) {
            if (p.error() == v1::NONE && p.leader_id() >= 0) leaders[p.partition()] = p.leader_id();
          }
          return static_cast<int>(leaders.size()) == partitions;
        },
        60s, 20ms);
    return leaders;
  }

  // Produces `n` records "<tag>-<i>" to one partition through `b`; returns the error.
  static v1::ErrorCode Produce(BrokerProcess& b, const std::string& topic, int partition,
                               const std::string& tag, int n) {
    batch::BatchBuilder builder(batch::Compression::kNone);
    for (int i = 0; i < n; ++i) {
      std::string v = tag + "-" + std::to_string(i);
      EXPECT_TRUE(builder.Add(std::string_view("k"), std::string_view(v), 1000 + i).ok());
    }
    auto built = builder.Build();
    EXPECT_TRUE(built.ok());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    v1::ProduceRequest req;
    req.set_acks(-1);
    auto* p = req.add_partitions();
    p->set_topic(topic);
    p->set_partition(partition);
    p->set_records(std::move(built).value());
    v1::ProduceResponse resp;
    auto st = b.producer->Produce(&ctx, req, &resp);
    if (!st.ok() || resp.partitions_size() != 1) return v1::UNKNOWN;
    return resp.partitions(0).error();
  }

  static std::vector<std::string> Values(BrokerProcess& b, const std::string& topic, int p) {
    std::vector<std::string> out;
    for (auto& r : b.ReadAll(topic, p)) out.push_back(r.record.value.value_or(""));
    return out;
  }

  std::string dir_;
  BrokerProcess::ClusterMember controller_member_, broker_member_;
  std::unique_ptr<BrokerProcess> controller_, broker_;
};

TEST_F(BrokerOnlyNodeTest, FollowsTheQuorumServesATopicAndSurvivesAControllerRestart) {
  // It registered: both nodes list both brokers, and node 1 is the controller.
  ASSERT_TRUE(test::PollUntil(
      [&] {
        v1::MetadataResponse a, b;
        return GetMetadata(*controller_, {}, &a) && GetMetadata(*broker_, {}, &b) &&
               a.brokers_size() == 2 && b.brokers_size() == 2 && b.controller_id() == 1;
      },
      60s, 20ms));
  EXPECT_NE(broker_->log().find("learner"), std::string::npos);
  EXPECT_NE(controller_->log().find("broker 2"), std::string::npos);

  // Created through the broker-only node (forwarded to the controller); leaders spread over
  // both brokers, so node 2 leads at least one partition.
  constexpr int kPartitions = 4;
  auto r = broker_->CreateTopic("events", kPartitions, {}, /*replication_factor=*/1);
  ASSERT_EQ(r.error(), v1::NONE) << r.error_message();
  auto leaders = Leaders(*broker_, "events", kPartitions);
  ASSERT_EQ(static_cast<int>(leaders.size()), kPartitions);
  int on_broker = -1, on_controller = -1;
  for (auto [p, leader] : leaders) (leader == 2 ? on_broker : on_controller) = p;
  ASSERT_GE(on_broker, 0) << "no partition is led by the broker-only node";
  ASSERT_GE(on_controller, 0) << "no partition is led by the controller";

  ASSERT_EQ(Produce(*broker_, "events", on_broker, "a", 10), v1::NONE);
  // The topic was created through node 2, which answered once its own partitions had it; node 1
  // applies the same image on its own schedule (a client retries UNKNOWN_TOPIC meanwhile).
  ASSERT_TRUE(test::PollUntil(
      [&] { return Produce(*controller_, "events", on_controller, "c", 5) == v1::NONE; }, 30s,
      20ms));
  // Each node serves what it leads and sends clients to the other for the rest.
  EXPECT_EQ(Values(*broker_, "events", on_broker).size(), 10u);
  EXPECT_EQ(Values(*controller_, "events", on_controller).size(), 5u);
  EXPECT_EQ(Produce(*controller_, "events", on_broker, "x", 1), v1::NOT_LEADER);

  // The controller stops: the broker keeps serving reads of what it has.
  ASSERT_EQ(controller_->Stop(), 0);
  EXPECT_EQ(Values(*broker_, "events", on_broker).size(), 10u);

  // It comes back (same id, data dir and internal port): the broker follows it again, writes
  // resume, and new metadata (a topic created through the broker) reaches the broker.
  controller_->Launch({}, controller_member_);
  ASSERT_NO_FATAL_FAILURE(controller_->WaitReady());
  ASSERT_TRUE(test::PollUntil(
      [&] { return Produce(*broker_, "events", on_broker, "b", 10) == v1::NONE; }, 60s, 50ms))
      << "the broker-only node did not accept writes after the controller restarted";
  ASSERT_TRUE(test::PollUntil([&] { return broker_->CreateTopic("after", 1).error() == v1::NONE; },
                              60s, 100ms));
  EXPECT_EQ(Leaders(*broker_, "after", 1).size(), 1u) << "the new topic did not reach node 2";
  auto values = Values(*broker_, "events", on_broker);
  ASSERT_GE(values.size(), 20u);
  EXPECT_EQ(values.front(), "a-0");
  EXPECT_EQ(values[10], "b-0");

  // Its metadata is not fenced: the controller still lists it as a live broker after a full
  // session, and it still leads its partition.
  v1::MetadataResponse md;
  ASSERT_TRUE(GetMetadata(*controller_, {"events"}, &md));
  ASSERT_EQ(md.topics_size(), 1);
  EXPECT_EQ(md.topics(0).partitions(on_broker).leader_id(), 2);
}

TEST_F(BrokerOnlyNodeTest, RestartsAndRejoinsWithItsData) {
  // Node 2 answers /readyz before the controller has registered it; a topic created before that
  // would be placed on node 1 alone.
  ASSERT_TRUE(test::PollUntil(
      [&] {
        v1::MetadataResponse md;
        return GetMetadata(*controller_, {}, &md) && md.brokers_size() == 2;
      },
      60s, 20ms));
  auto r = controller_->CreateTopic("kept", 2, {}, /*replication_factor=*/1);
  ASSERT_EQ(r.error(), v1::NONE) << r.error_message();
  auto leaders = Leaders(*broker_, "kept", 2);
  ASSERT_EQ(leaders.size(), 2u);
  int on_broker = -1;
  for (auto [p, leader] : leaders) {
    if (leader == 2) on_broker = p;
  }
  ASSERT_GE(on_broker, 0);
  ASSERT_EQ(Produce(*broker_, "kept", on_broker, "v", 7), v1::NONE);

  ASSERT_EQ(broker_->Stop(), 0);
  broker_->Launch({"--node.roles", "broker"}, broker_member_);
  ASSERT_NO_FATAL_FAILURE(broker_->WaitReady());
  ASSERT_TRUE(test::PollUntil(
      [&] { return Produce(*broker_, "kept", on_broker, "w", 3) == v1::NONE; }, 60s, 50ms));
  auto values = Values(*broker_, "kept", on_broker);
  ASSERT_EQ(values.size(), 10u);
  EXPECT_EQ(values[0], "v-0");
  EXPECT_EQ(values[7], "w-0");
}

// A broker-only node whose id is in the voter list, or a controller that is not, is refused at
// start with a message naming the mismatch.
TEST(BrokerOnlyNodeConfig, RolesThatContradictTheVotersStopTheBroker) {
  const std::string dir =
      (fs::temp_directory_path() / ("rill_it_" + std::to_string(::getpid()) + "_roles")).string();
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto p = Process::Spawn(
      {RILL_BROKER_BINARY, "--data.dir", dir + "/data", "--node.id", "1", "--node.roles", "broker",
       "--controller.voters", "1@127.0.0.1:1", "--listeners.client", "127.0.0.1:0",
       "--listeners.internal", "127.0.0.1:0", "--listeners.http", "127.0.0.1:0"},
      dir + "/broker.log");
  ASSERT_NE(p, nullptr);
  auto code = p->Wait(std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0);
  EXPECT_NE(ReadFile(dir + "/broker.log").find("lacks controller"), std::string::npos)
      << ReadFile(dir + "/broker.log");
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rill::testing
