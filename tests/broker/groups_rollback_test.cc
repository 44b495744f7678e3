// A failed append to __consumer_offsets leaves no in-memory change in the group coordinator:
// a join, commit or delete whose batch could not be appended (or made durable) is not visible
// afterwards, the coordinator answers COORDINATOR_NOT_AVAILABLE until it has rebuilt the
// partition's groups from the store and the log, and then serves the durable state. Faults come
// from the MemoryLog seams (SetAppendError, SetDurabilityError).

#include "broker_fixture.h"
#include "groups/group_coordinator.h"
#include "rill/v1/groups.grpc.pb.h"

namespace rill::broker::testing {
namespace {

constexpr int kOffsetsPartitions = 4;

class GroupsRollbackTest : public BrokerFixture {
 protected:
  void SetUp() override {
    config_.groups_offsets_partitions = kOffsetsPartitions;
    StartBroker();
    groups_ = v1::Groups::NewStub(channel_);
    CreateTopic("t", 2);
    // Group "g" with offset 5 on partition 0: creates and loads __consumer_offsets.
    ASSERT_TRUE(PollUntil([&] { return Commit(5).error() != v1::COORDINATOR_NOT_AVAILABLE; }));
    ASSERT_EQ(Committed(), 5);
    log_ = store_->Get(kConsumerOffsetsTopic, OffsetsPartitionFor("g", kOffsetsPartitions));
    ASSERT_NE(log_, nullptr);
  }

  v1::CommitOffsetsResponse Commit(int64_t offset) {
    v1::CommitOffsetsRequest req;
    req.set_group_id("g");
    req.set_member_epoch(-1);
    auto* o = req.add_offsets();
    o->set_topic("t");
    o->set_partition(0);
    o->set_offset(offset);
    grpc::ClientContext ctx;
    v1::CommitOffsetsResponse resp;
    EXPECT_TRUE(groups_->CommitOffsets(&ctx, req, &resp).ok());
    return resp;
  }

  v1::GroupHeartbeatResponse Join() {
    v1::GroupHeartbeatRequest req;
    req.set_group_id("g");
    req.set_member_epoch(0);
    req.set_session_timeout_ms(30000);
    req.add_subscribed_topic_names("t");
    grpc::ClientContext ctx;
    v1::GroupHeartbeatResponse resp;
    EXPECT_TRUE(groups_->GroupHeartbeat(&ctx, req, &resp).ok());
    return resp;
  }

  v1::DescribeGroupResponse Describe() {
    v1::DescribeGroupRequest req;
    req.set_group_id("g");
    grpc::ClientContext ctx;
    v1::DescribeGroupResponse resp;
    EXPECT_TRUE(groups_->DescribeGroup(&ctx, req, &resp).ok());
    return resp;
  }

  // The committed offset of t-0 (-1: none; -100: the coordinator did not answer with one).
  int64_t Committed() {
    v1::FetchOffsetsRequest req;
    req.set_group_id("g");
    grpc::ClientContext ctx;
    v1::FetchOffsetsResponse resp;
    EXPECT_TRUE(groups_->FetchOffsets(&ctx, req, &resp).ok());
    if (resp.error() != v1::NONE) return -100;
    for (const auto& o : resp.offsets()) {
      if (o.topic() == "t" && o.partition() == 0) return o.offset();
    }
    return -1;
  }

  std::map<std::string, int32_t> ListedMembers() {
    grpc::ClientContext ctx;
    v1::ListGroupsResponse resp;
    EXPECT_TRUE(groups_->ListGroups(&ctx, v1::ListGroupsRequest(), &resp).ok());
    std::map<std::string, int32_t> out;
    for (const auto& g : resp.groups()) out[g.group_id()] = g.members();
    return out;
  }

  // Waits until the coordinator serves "g" again (it reloads the partition on its ticker).
  v1::DescribeGroupResponse DescribeAfterReload() {
    v1::DescribeGroupResponse d;
    EXPECT_TRUE(PollUntil([&] {
      d = Describe();
      return d.error() != v1::COORDINATOR_NOT_AVAILABLE;
    }));
    return d;
  }

  std::unique_ptr<v1::Groups::Stub> groups_;
  std::shared_ptr<MemoryLog> log_;
};

TEST_F(GroupsRollbackTest, JoinAndCommitWhoseAppendFailsLeaveNoTrace) {
  log_->SetAppendError(Status::IOError("injected append failure"));
  auto joined = Join();
  EXPECT_EQ(joined.error(), v1::COORDINATOR_NOT_AVAILABLE) << joined.error_message();
  EXPECT_EQ(Commit(9).error(), v1::COORDINATOR_NOT_AVAILABLE);
  log_->SetAppendError(Status::OK());

  auto d = DescribeAfterReload();
  ASSERT_EQ(d.error(), v1::NONE) << d.error_message();
  EXPECT_EQ(d.members_size(), 0) << "the member whose join was not appended is still there";
  EXPECT_EQ(d.state(), "Empty");
  ASSERT_EQ(d.offsets_size(), 1);
  EXPECT_EQ(d.offsets(0).committed_offset(), 5);
  EXPECT_EQ(Committed(), 5);
  EXPECT_EQ(ListedMembers()["g"], 0);

  // The coordinator works again: a join and a commit go through.
  joined = Join();
  EXPECT_EQ(joined.error(), v1::NONE) << joined.error_message();
  EXPECT_EQ(Describe().members_size(), 1);
}

TEST_F(GroupsRollbackTest, DeleteWhoseAppendFailsKeepsTheGroup) {
  log_->SetAppendError(Status::IOError("injected append failure"));
  {
    v1::DeleteGroupRequest req;
    req.set_group_id("g");
    grpc::ClientContext ctx;
    v1::DeleteGroupResponse resp;
    ASSERT_TRUE(groups_->DeleteGroup(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.error(), v1::COORDINATOR_NOT_AVAILABLE) << resp.error_message();
  }
  log_->SetAppendError(Status::OK());
  auto d = DescribeAfterReload();
  ASSERT_EQ(d.error(), v1::NONE) << d.error_message();
  EXPECT_EQ(Committed(), 5);
  EXPECT_EQ(ListedMembers().count("g"), 1u) << "the group vanished from memory";
}

TEST_F(GroupsRollbackTest, JoinWhoseBatchNeverBecomesDurableLeavesNoTrace) {
  log_->SetDurabilityError(Status::IOError("injected fsync failure"));
  auto joined = Join();
  EXPECT_EQ(joined.error(), v1::COORDINATOR_NOT_AVAILABLE) << joined.error_message();
  EXPECT_EQ(ListedMembers().count("g"), 0u);
  // The batch is in the log but not durable: the coordinator waits rather than replay it.
  EXPECT_EQ(Describe().error(), v1::COORDINATOR_NOT_AVAILABLE);
  // Recovery drops the non-durable tail; then the coordinator rebuilds from what is durable.
  log_->DropNonDurable();
  log_->SetDurabilityError(Status::OK());
  auto d = DescribeAfterReload();
  ASSERT_EQ(d.error(), v1::NONE) << d.error_message();
  EXPECT_EQ(d.members_size(), 0);
  EXPECT_EQ(Committed(), 5);
  EXPECT_EQ(Commit(7).error(), v1::NONE);
  EXPECT_EQ(Committed(), 7);
}

}  // namespace
}  // namespace rill::broker::testing
