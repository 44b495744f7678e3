// The Groups service over real gRPC against an in-process broker (memory controller and log):
// joins and assignment, balanced reconciliation, commits and fetches, fencing, describe with
// lag, reset and delete rules, lag metrics.

#include <map>
#include <set>

#include "broker_fixture.h"
#include "rill/v1/groups.grpc.pb.h"

namespace rill::broker::testing {
namespace {

using Owned = std::map<std::string, std::set<int32_t>>;

class GroupsServiceTest : public BrokerFixture {
 protected:
  void SetUp() override {
    config_.groups_offsets_partitions = 4;
    config_.groups_min_session_timeout_ms = 50;
    StartBroker();
    groups_ = v1::Groups::NewStub(channel_);
  }

  // Retries while the coordinator is not available yet (the offsets topic is created lazily).
  v1::GroupHeartbeatResponse Heartbeat(const v1::GroupHeartbeatRequest& req) {
    v1::GroupHeartbeatResponse resp;
    EXPECT_TRUE(PollUntil([&] {
      grpc::ClientContext ctx;
      resp.Clear();
      EXPECT_TRUE(groups_->GroupHeartbeat(&ctx, req, &resp).ok());
      return resp.error() != v1::COORDINATOR_NOT_AVAILABLE;
    }));
    return resp;
  }

  v1::GroupHeartbeatRequest JoinRequest(const std::string& group, const std::string& topic,
                                        int session_timeout_ms = 30000) {
    v1::GroupHeartbeatRequest req;
    req.set_group_id(group);
    req.set_member_epoch(0);
    req.set_client_id("client-test");
    req.set_client_host("127.0.0.1");
    req.set_session_timeout_ms(session_timeout_ms);
    req.add_subscribed_topic_names(topic);
    return req;
  }

  struct Member {
    std::string id;
    int32_t epoch = 0;
    Owned owned;
  };

  // Sends one heartbeat for `m` reporting what it owns and applies the response.
  v1::ErrorCode Beat(const std::string& group, Member& m) {
    v1::GroupHeartbeatRequest req;
    req.set_group_id(group);
    req.set_member_id(m.id);
    req.set_member_epoch(m.epoch);
    for (const auto& [t, ps] : m.owned) {
      auto* tp = req.add_owned_partitions();
      tp->set_topic(t);
      for (int32_t p : ps) tp->add_partitions(p);
    }
    auto resp = Heartbeat(req);
    if (resp.error() != v1::NONE) return resp.error();
    Apply(resp, m);
    return v1::NONE;
  }

  static void Apply(const v1::GroupHeartbeatResponse& resp, Member& m) {
    m.id = resp.member_id();
    m.epoch = resp.member_epoch();
    if (resp.has_assignment()) {
      m.owned.clear();
      for (const auto& tp : resp.assignment()) {
        for (int32_t p : tp.partitions()) m.owned[tp.topic()].insert(p);
      }
    }
  }

  Member Join(const std::string& group, const std::string& topic, int session_timeout_ms = 30000) {
    auto resp = Heartbeat(JoinRequest(group, topic, session_timeout_ms));
    EXPECT_EQ(resp.error(), v1::NONE) << resp.error_message();
    Member m;
    Apply(resp, m);
    return m;
  }

  v1::CommitOffsetsResponse Commit(const std::string& group, const Member* m,
                                   const std::string& topic, int32_t partition, int64_t offset) {
    v1::CommitOffsetsRequest req;
    req.set_group_id(group);
    req.set_member_id(m ? m->id : "");
    req.set_member_epoch(m ? m->epoch : -1);
    auto* o = req.add_offsets();
    o->set_topic(topic);
    o->set_partition(partition);
    o->set_offset(offset);
    o->set_metadata("meta");
    grpc::ClientContext ctx;
    v1::CommitOffsetsResponse resp;
    EXPECT_TRUE(groups_->CommitOffsets(&ctx, req, &resp).ok());
    return resp;
  }

  int64_t Fetched(const std::string& group, const std::string& topic, int32_t partition) {
    v1::FetchOffsetsRequest req;
    req.set_group_id(group);
    auto* tp = req.add_partitions();
    tp->set_topic(topic);
    tp->add_partitions(partition);
    grpc::ClientContext ctx;
    v1::FetchOffsetsResponse resp;
    EXPECT_TRUE(groups_->FetchOffsets(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.error(), v1::NONE) << resp.error_message();
    if (resp.offsets_size() != 1) return -100;
    return resp.offsets(0).offset();
  }

  v1::DescribeGroupResponse Describe(const std::string& group) {
    v1::DescribeGroupRequest req;
    req.set_group_id(group);
    grpc::ClientContext ctx;
    v1::DescribeGroupResponse resp;
    EXPECT_TRUE(groups_->DescribeGroup(&ctx, req, &resp).ok());
    return resp;
  }

  std::unique_ptr<v1::Groups::Stub> groups_;
};

TEST_F(GroupsServiceTest, JoinAndHeartbeatAssignsEveryPartition) {
  CreateTopic("t", 4);
  Member m = Join("g", "t");
  EXPECT_FALSE(m.id.empty());
  EXPECT_GT(m.epoch, 0);
  ASSERT_TRUE(PollUntil([&] { return Beat("g", m) == v1::NONE && m.owned["t"].size() == 4; }));
  auto d = Describe("g");
  EXPECT_EQ(d.error(), v1::NONE);
  EXPECT_EQ(d.state(), "Stable");
  ASSERT_EQ(d.members_size(), 1);
  EXPECT_EQ(d.members(0).client_id(), "client-test");
  EXPECT_EQ(d.members(0).client_host(), "127.0.0.1");
  EXPECT_EQ(d.members(0).member_epoch(), m.epoch);
}

TEST_F(GroupsServiceTest, ThreeMembersGetBalancedDisjointAssignments) {
  CreateTopic("t12", 12);
  std::vector<Member> ms;
  for (int i = 0; i < 3; ++i) ms.push_back(Join("g3", "t12"));
  auto balanced = [&] {
    std::set<int32_t> all;
    size_t total = 0;
    for (auto& m : ms) {
      if (m.owned["t12"].size() != 4) return false;
      total += m.owned["t12"].size();
      all.insert(m.owned["t12"].begin(), m.owned["t12"].end());
    }
    return total == 12 && all.size() == 12;
  };
  for (int round = 0; round < 50 && !balanced(); ++round) {
    for (auto& m : ms) ASSERT_EQ(Beat("g3", m), v1::NONE);
    // Never two owners at once, at any step.
    std::map<int32_t, int> owners;
    for (auto& m : ms) {
      for (int32_t p : m.owned["t12"]) ASSERT_EQ(++owners[p], 1) << "partition " << p;
    }
  }
  EXPECT_TRUE(balanced());
  EXPECT_EQ(Describe("g3").state(), "Stable");
}

TEST_F(GroupsServiceTest, CommitFetchAndStaleEpochIsFenced) {
  CreateTopic("tc", 2);
  Member m = Join("gc", "tc");
  ASSERT_TRUE(PollUntil([&] { return Beat("gc", m) == v1::NONE && m.owned["tc"].size() == 2; }));
  EXPECT_EQ(Fetched("gc", "tc", 0), -1);
  auto c = Commit("gc", &m, "tc", 0, 5);
  EXPECT_EQ(c.error(), v1::NONE) << c.error_message();
  EXPECT_EQ(Fetched("gc", "tc", 0), 5);
  EXPECT_EQ(Fetched("gc", "tc", 1), -1);

  Member stale = m;
  stale.epoch = m.epoch + 7;
  c = Commit("gc", &stale, "tc", 0, 9);
  EXPECT_EQ(c.error(), v1::FENCED_MEMBER_EPOCH) << c.error_message();
  EXPECT_EQ(Fetched("gc", "tc", 0), 5);

  // Fetch of every committed partition.
  v1::FetchOffsetsRequest req;
  req.set_group_id("gc");
  grpc::ClientContext ctx;
  v1::FetchOffsetsResponse resp;
  ASSERT_TRUE(groups_->FetchOffsets(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.offsets_size(), 1);
  EXPECT_EQ(resp.offsets(0).metadata(), "meta");
}

TEST_F(GroupsServiceTest, ZombieAfterSessionExpiryIsFenced) {
  CreateTopic("tz", 1);
  Member m = Join("gz", "tz", /*session_timeout_ms=*/100);
  ASSERT_TRUE(PollUntil([&] { return Beat("gz", m) == v1::NONE && m.owned["tz"].size() == 1; }));
  // Stop heartbeating; the coordinator's ticker expires the session.
  ASSERT_TRUE(PollUntil([&] { return Describe("gz").members_size() == 0; }));
  auto c = Commit("gz", &m, "tz", 0, 3);
  EXPECT_EQ(c.error(), v1::FENCED_MEMBER_EPOCH) << c.error_message();
  EXPECT_EQ(Fetched("gz", "tz", 0), -1);
  EXPECT_EQ(Beat("gz", m), v1::FENCED_MEMBER_EPOCH);
}

TEST_F(GroupsServiceTest, DescribeAndMetricsShowLag) {
  CreateTopic("tl", 2);
  ASSERT_EQ(Produce("tl", 0, MakeBatch(10)).error(), v1::NONE);
  Member m = Join("gl", "tl");
  ASSERT_TRUE(PollUntil([&] { return Beat("gl", m) == v1::NONE && m.owned["tl"].size() == 2; }));
  ASSERT_EQ(Commit("gl", &m, "tl", 0, 3).error(), v1::NONE);
  auto d = Describe("gl");
  ASSERT_EQ(d.error(), v1::NONE);
  EXPECT_EQ(d.total_lag(), 7);
  bool seen = false;
  for (const auto& o : d.offsets()) {
    if (o.topic() == "tl" && o.partition() == 0) {
      seen = true;
      EXPECT_EQ(o.committed_offset(), 3);
      EXPECT_EQ(o.log_end_offset(), 10);
      EXPECT_EQ(o.lag(), 7);
      EXPECT_EQ(o.owner_member_id(), m.id);
    }
  }
  EXPECT_TRUE(seen);
  std::string metrics = HttpGet(broker_->http_port(), "/metrics");
  EXPECT_NE(metrics.find("rill_group_lag_sum{group=\"gl\"} 7"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("rill_group_lag_max{group=\"gl\"} 7"), std::string::npos) << metrics;
}

TEST_F(GroupsServiceTest, ResetOnlyWhenEmptyAndDelete) {
  CreateTopic("tr", 1);
  ASSERT_EQ(Produce("tr", 0, MakeBatch(10)).error(), v1::NONE);
  Member m = Join("gr", "tr");
  ASSERT_TRUE(PollUntil([&] { return Beat("gr", m) == v1::NONE && m.owned["tr"].size() == 1; }));
  ASSERT_EQ(Commit("gr", &m, "tr", 0, 4).error(), v1::NONE);

  auto reset = [&](auto set_to, bool dry_run) {
    v1::ResetOffsetsRequest req;
    req.set_group_id("gr");
    req.add_topics("tr");
    set_to(req);
    req.set_dry_run(dry_run);
    grpc::ClientContext ctx;
    v1::ResetOffsetsResponse resp;
    EXPECT_TRUE(groups_->ResetOffsets(&ctx, req, &resp).ok());
    return resp;
  };
  auto earliest = [](v1::ResetOffsetsRequest& r) { r.set_earliest(true); };
  EXPECT_EQ(reset(earliest, false).error(), v1::GROUP_NOT_EMPTY);
  v1::DeleteGroupRequest del;
  del.set_group_id("gr");
  {
    grpc::ClientContext ctx;
    v1::DeleteGroupResponse resp;
    ASSERT_TRUE(groups_->DeleteGroup(&ctx, del, &resp).ok());
    EXPECT_EQ(resp.error(), v1::GROUP_NOT_EMPTY);
  }

  // Leave.
  v1::GroupHeartbeatRequest leave;
  leave.set_group_id("gr");
  leave.set_member_id(m.id);
  leave.set_member_epoch(-1);
  EXPECT_EQ(Heartbeat(leave).error(), v1::NONE);
  EXPECT_EQ(Describe("gr").state(), "Empty");

  auto r = reset(earliest, /*dry_run=*/true);
  ASSERT_EQ(r.error(), v1::NONE) << r.error_message();
  ASSERT_EQ(r.offsets_size(), 1);
  EXPECT_EQ(r.offsets(0).offset(), 0);
  EXPECT_EQ(Fetched("gr", "tr", 0), 4);  // dry run changed nothing
  EXPECT_EQ(reset(earliest, false).error(), v1::NONE);
  EXPECT_EQ(Fetched("gr", "tr", 0), 0);
  EXPECT_EQ(reset([](auto& q) { q.set_latest(true); }, false).error(), v1::NONE);
  EXPECT_EQ(Fetched("gr", "tr", 0), 10);
  EXPECT_EQ(reset([](auto& q) { q.set_shift_by(-3); }, false).error(), v1::NONE);
  EXPECT_EQ(Fetched("gr", "tr", 0), 7);
  EXPECT_EQ(reset([](auto& q) { q.set_offset(2); }, false).error(), v1::NONE);
  EXPECT_EQ(Fetched("gr", "tr", 0), 2);
  EXPECT_EQ(reset([](auto& q) { q.set_timestamp_ms(1005); }, false).error(), v1::NONE);
  EXPECT_EQ(Fetched("gr", "tr", 0), 5);  // the first record with ts >= 1005 (ts 1000 + offset)
  EXPECT_EQ(reset([](auto& q) { q.set_timestamp_ms(99999); }, false).error(), v1::NONE);
  EXPECT_EQ(Fetched("gr", "tr", 0), 10);  // no record that late: the log end

  {
    grpc::ClientContext ctx;
    v1::DeleteGroupResponse resp;
    ASSERT_TRUE(groups_->DeleteGroup(&ctx, del, &resp).ok());
    EXPECT_EQ(resp.error(), v1::NONE) << resp.error_message();
  }
  EXPECT_EQ(Describe("gr").error(), v1::GROUP_ID_NOT_FOUND);
  EXPECT_EQ(Fetched("gr", "tr", 0), -1);
  grpc::ClientContext ctx;
  v1::ListGroupsResponse list;
  ASSERT_TRUE(groups_->ListGroups(&ctx, v1::ListGroupsRequest(), &list).ok());
  for (const auto& g : list.groups()) EXPECT_NE(g.group_id(), "gr");
}

// Reset to a timestamp: a partition whose lookup fails (a corrupt batch) reports STORAGE_ERROR
// and keeps its committed offset; the others move (no record that late: the log end).
TEST_F(GroupsServiceTest, ResetToTimestampReportsLookupErrorAndKeepsOffset) {
  CreateTopic("ts", 3);
  for (int32_t p = 0; p < 3; ++p) ASSERT_EQ(Produce("ts", p, MakeBatch(10)).error(), v1::NONE);
  for (int32_t p = 0; p < 3; ++p) {
    ASSERT_TRUE(PollUntil([&] { return Commit("gt", nullptr, "ts", p, 7).error() == v1::NONE; }));
  }
  store_->Get("ts", 1)->SetTimestampLookupError(Status::Corruption("bad crc"));

  auto reset = [&](int64_t ts, bool dry_run) {
    v1::ResetOffsetsRequest req;
    req.set_group_id("gt");
    req.add_topics("ts");
    req.set_timestamp_ms(ts);
    req.set_dry_run(dry_run);
    grpc::ClientContext ctx;
    v1::ResetOffsetsResponse resp;
    EXPECT_TRUE(groups_->ResetOffsets(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.error(), v1::NONE) << resp.error_message();
    std::map<int32_t, std::pair<v1::ErrorCode, int64_t>> by_partition;
    for (const auto& o : resp.offsets()) {
      by_partition[o.partition()] = {o.error(), o.offset()};
      // The failed partition says why; the others say nothing.
      if (o.error() == v1::NONE) {
        EXPECT_TRUE(o.error_message().empty()) << o.error_message();
      } else {
        EXPECT_NE(o.error_message().find("bad crc"), std::string::npos) << o.error_message();
      }
    }
    return by_partition;
  };
  using Outcome = std::pair<v1::ErrorCode, int64_t>;
  auto dry = reset(1003, /*dry_run=*/true);
  ASSERT_EQ(dry.size(), 3u);
  EXPECT_EQ(dry[0], Outcome(v1::NONE, 3));
  EXPECT_EQ(dry[1], Outcome(v1::STORAGE_ERROR, -1));
  EXPECT_EQ(dry[2], Outcome(v1::NONE, 3));
  for (int32_t p = 0; p < 3; ++p) EXPECT_EQ(Fetched("gt", "ts", p), 7) << p;

  auto moved = reset(1003, /*dry_run=*/false);
  EXPECT_EQ(moved[1], Outcome(v1::STORAGE_ERROR, -1));
  EXPECT_EQ(Fetched("gt", "ts", 0), 3);
  EXPECT_EQ(Fetched("gt", "ts", 1), 7);  // not sent to the log end
  EXPECT_EQ(Fetched("gt", "ts", 2), 3);

  auto late = reset(99999, /*dry_run=*/false);
  EXPECT_EQ(late[0], Outcome(v1::NONE, 10));
  EXPECT_EQ(late[1], Outcome(v1::STORAGE_ERROR, -1));
  EXPECT_EQ(Fetched("gt", "ts", 0), 10);
  EXPECT_EQ(Fetched("gt", "ts", 1), 7);

  // Once the lookup works again the partition moves like the others.
  store_->Get("ts", 1)->SetTimestampLookupError(Status::OK());
  EXPECT_EQ(reset(1004, /*dry_run=*/false)[1], Outcome(v1::NONE, 4));
  EXPECT_EQ(Fetched("gt", "ts", 1), 4);
}

TEST_F(GroupsServiceTest, MaxMembersIsEnforced) {
  broker_->Shutdown();
  broker_.reset();
  config_.groups_max_members = 2;
  StartBroker();
  groups_ = v1::Groups::NewStub(channel_);
  CreateTopic("tm", 2);
  Join("gm", "tm");
  Join("gm", "tm");
  auto resp = Heartbeat(JoinRequest("gm", "tm"));
  EXPECT_EQ(resp.error(), v1::RESOURCE_EXHAUSTED) << resp.error_message();
}

TEST_F(GroupsServiceTest, NewPartitionsAreAssigned) {
  CreateTopic("tp", 2);
  Member m = Join("gp", "tp");
  ASSERT_TRUE(PollUntil([&] { return Beat("gp", m) == v1::NONE && m.owned["tp"].size() == 2; }));
  int32_t epoch = Describe("gp").group_epoch();
  {
    grpc::ClientContext ctx;
    v1::CreatePartitionsRequest req;
    req.set_topic("tp");
    req.set_new_total_count(4);
    v1::CreatePartitionsResponse resp;
    ASSERT_TRUE(admin_->CreatePartitions(&ctx, req, &resp).ok());
  }
  // The coordinator's ticker sees the new metadata and the member is granted the new partitions.
  ASSERT_TRUE(PollUntil([&] { return Beat("gp", m) == v1::NONE && m.owned["tp"].size() == 4; }));
  EXPECT_GT(Describe("gp").group_epoch(), epoch);
}

TEST_F(GroupsServiceTest, MaxGroupsIsEnforced) {
  broker_->Shutdown();
  broker_.reset();
  config_.groups_max_groups = 1;
  StartBroker();
  groups_ = v1::Groups::NewStub(channel_);
  CreateTopic("tg", 1);
  Join("only", "tg");
  auto resp = Heartbeat(JoinRequest("second", "tg"));
  EXPECT_EQ(resp.error(), v1::RESOURCE_EXHAUSTED) << resp.error_message();
  EXPECT_NE(resp.error_message().find("groups.max_groups"), std::string::npos);
}

}  // namespace
}  // namespace rill::broker::testing
