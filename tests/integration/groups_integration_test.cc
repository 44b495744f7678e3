// Consumer groups against the real rill-broker process: committed offsets and membership survive
// a graceful restart and a kill -9 (an acknowledged commit is durable), and a zombie member
// (session expired, then commits) is fenced.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "broker_process.h"
#include "rill/v1/groups.grpc.pb.h"
#include "support/poll.h"

namespace rill::testing {
namespace {

class GroupsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (std::filesystem::temp_directory_path() /
            ("rill_git_" + std::to_string(::getpid()) + "_" + info->name()))
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

  void StartBroker() {
    broker_->Start({"--groups.offsets_partitions", "3", "--groups.min_session_timeout_ms", "100"});
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(broker_->client_port()),
                                       grpc::InsecureChannelCredentials());
    groups_ = v1::Groups::NewStub(channel);
  }

  void CreateTopic(const std::string& name, int partitions) {
    auto r = broker_->CreateTopic(name, partitions);
    ASSERT_EQ(r.error(), v1::NONE) << r.error_message();
  }

  // Polls `f` (which returns an error code) while the coordinator is not available yet.
  template <typename F>
  v1::ErrorCode Retry(F f) {
    v1::ErrorCode e;
    test::PollUntil(
        [&] {
          e = f();
          return e != v1::COORDINATOR_NOT_AVAILABLE && e != v1::NOT_COORDINATOR;
        },
        std::chrono::seconds(30), std::chrono::milliseconds(5));
    return e;
  }

  struct Member {
    std::string id;
    int32_t epoch = 0;
    std::set<int32_t> owned;
  };

  v1::ErrorCode Beat(const std::string& group, const std::string& topic, Member& m,
                     int session_timeout_ms) {
    return Retry([&] {
      v1::GroupHeartbeatRequest req;
      req.set_group_id(group);
      req.set_member_id(m.id);
      req.set_member_epoch(m.epoch);
      req.set_session_timeout_ms(session_timeout_ms);
      if (m.epoch == 0) req.add_subscribed_topic_names(topic);
      auto* tp = req.add_owned_partitions();
      tp->set_topic(topic);
      for (int32_t p : m.owned) tp->add_partitions(p);
      grpc::ClientContext ctx;
      v1::GroupHeartbeatResponse resp;
      EXPECT_TRUE(groups_->GroupHeartbeat(&ctx, req, &resp).ok());
      if (resp.error() == v1::NONE) {
        m.id = resp.member_id();
        m.epoch = resp.member_epoch();
        if (resp.has_assignment()) {
          m.owned.clear();
          for (const auto& a : resp.assignment()) {
            for (int32_t p : a.partitions()) m.owned.insert(p);
          }
        }
      }
      return resp.error();
    });
  }

  // Joins and heartbeats until the member owns `partitions` partitions.
  Member JoinAndOwn(const std::string& group, const std::string& topic, size_t partitions,
                    int session_timeout_ms) {
    Member m;
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < end) {
      EXPECT_EQ(Beat(group, topic, m, session_timeout_ms), v1::NONE);
      if (m.owned.size() == partitions) break;
    }
    EXPECT_EQ(m.owned.size(), partitions);
    return m;
  }

  v1::ErrorCode Commit(const std::string& group, const Member& m, const std::string& topic,
                       int32_t partition, int64_t offset) {
    return Retry([&] {
      v1::CommitOffsetsRequest req;
      req.set_group_id(group);
      req.set_member_id(m.id);
      req.set_member_epoch(m.epoch);
      auto* o = req.add_offsets();
      o->set_topic(topic);
      o->set_partition(partition);
      o->set_offset(offset);
      grpc::ClientContext ctx;
      v1::CommitOffsetsResponse resp;
      EXPECT_TRUE(groups_->CommitOffsets(&ctx, req, &resp).ok());
      return resp.error();
    });
  }

  std::map<int32_t, int64_t> FetchAll(const std::string& group) {
    std::map<int32_t, int64_t> out;
    EXPECT_EQ(Retry([&] {
                v1::FetchOffsetsRequest req;
                req.set_group_id(group);
                grpc::ClientContext ctx;
                v1::FetchOffsetsResponse resp;
                EXPECT_TRUE(groups_->FetchOffsets(&ctx, req, &resp).ok());
                out.clear();
                for (const auto& o : resp.offsets()) out[o.partition()] = o.offset();
                return resp.error();
              }),
              v1::NONE);
    return out;
  }

  v1::DescribeGroupResponse Describe(const std::string& group) {
    v1::DescribeGroupResponse resp;
    Retry([&] {
      v1::DescribeGroupRequest req;
      req.set_group_id(group);
      grpc::ClientContext ctx;
      resp.Clear();
      EXPECT_TRUE(groups_->DescribeGroup(&ctx, req, &resp).ok());
      return resp.error();
    });
    return resp;
  }

  std::string dir_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<v1::Groups::Stub> groups_;
};

TEST_F(GroupsIntegrationTest, CommittedOffsetsAndMembershipSurviveRestart) {
  StartBroker();
  CreateTopic("orders", 4);
  Member m = JoinAndOwn("billing", "orders", 4, 60000);
  for (int32_t p = 0; p < 4; ++p) ASSERT_EQ(Commit("billing", m, "orders", p, 10 + p), v1::NONE);
  ASSERT_EQ(broker_->Stop(), 0);

  StartBroker();
  auto offsets = FetchAll("billing");
  ASSERT_EQ(offsets.size(), 4u);
  for (int32_t p = 0; p < 4; ++p) EXPECT_EQ(offsets[p], 10 + p);
  auto d = Describe("billing");
  ASSERT_EQ(d.error(), v1::NONE) << d.error_message();
  ASSERT_EQ(d.members_size(), 1);
  EXPECT_EQ(d.members(0).member_id(), m.id);
  // The member named no host: the coordinator shows its connection's address.
  EXPECT_EQ(d.members(0).client_host(), "127.0.0.1");
  // The member carries on with its epoch and assignment.
  EXPECT_EQ(Beat("billing", "orders", m, 60000), v1::NONE);
  EXPECT_EQ(m.owned.size(), 4u);
  EXPECT_EQ(Commit("billing", m, "orders", 0, 20), v1::NONE);
  EXPECT_EQ(FetchAll("billing")[0], 20);
}

TEST_F(GroupsIntegrationTest, AcknowledgedCommitsSurviveKill9) {
  StartBroker();
  CreateTopic("events", 3);
  Member m = JoinAndOwn("etl", "events", 3, 60000);
  std::map<int32_t, int64_t> acked;
  for (int i = 1; i <= 60; ++i) {
    int32_t p = i % 3;
    ASSERT_EQ(Commit("etl", m, "events", p, i), v1::NONE);
    acked[p] = i;
  }
  broker_->Kill9();

  StartBroker();
  auto offsets = FetchAll("etl");
  EXPECT_EQ(offsets, acked);
}

// The materialised store is a cache of the log: without it, a restart replays
// __consumer_offsets from the start and rebuilds the same offsets and membership.
TEST_F(GroupsIntegrationTest, LostStoreIsRebuiltFromTheLog) {
  StartBroker();
  CreateTopic("logs", 2);
  Member m = JoinAndOwn("rebuild", "logs", 2, 60000);
  ASSERT_EQ(Commit("rebuild", m, "logs", 0, 7), v1::NONE);
  ASSERT_EQ(Commit("rebuild", m, "logs", 1, 8), v1::NONE);
  ASSERT_EQ(broker_->Stop(), 0);
  std::filesystem::remove_all(dir_ + "/data/__groups");

  StartBroker();
  auto offsets = FetchAll("rebuild");
  EXPECT_EQ(offsets, (std::map<int32_t, int64_t>{{0, 7}, {1, 8}}));
  auto d = Describe("rebuild");
  ASSERT_EQ(d.members_size(), 1);
  EXPECT_EQ(d.members(0).member_id(), m.id);
  EXPECT_NE(broker_->log().find("replayed"), std::string::npos);
}

TEST_F(GroupsIntegrationTest, ZombieMemberIsFenced) {
  StartBroker();
  CreateTopic("z", 2);
  Member zombie = JoinAndOwn("gz", "z", 2, 200);
  ASSERT_EQ(Commit("gz", zombie, "z", 0, 1), v1::NONE);
  // The zombie stops heartbeating; the coordinator expires its session.
  ASSERT_TRUE(test::PollUntil([&] { return Describe("gz").members_size() == 0; },
                              std::chrono::seconds(30), std::chrono::milliseconds(10)))
      << "the zombie's session never expired";
  EXPECT_EQ(Commit("gz", zombie, "z", 0, 2), v1::FENCED_MEMBER_EPOCH);
  EXPECT_EQ(Beat("gz", "z", zombie, 200), v1::FENCED_MEMBER_EPOCH);
  EXPECT_EQ(FetchAll("gz")[0], 1);
}

}  // namespace
}  // namespace rill::testing
