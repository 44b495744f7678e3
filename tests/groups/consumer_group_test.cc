// ConsumerGroup unit tests: join, heartbeat, incremental reconciliation, epochs and fencing,
// static membership, metadata changes, commits, restore from records.

#include "groups/consumer_group.h"

#include <gtest/gtest.h>

#include "group_test_util.h"

namespace rill::groups {
namespace {

using testing::AssignmentOf;
using testing::BeatRequest;
using testing::CountingIds;
using testing::JoinRequest;

GroupConfig TestConfig() {
  GroupConfig c;
  c.default_session_timeout_ms = 10000;
  c.min_session_timeout_ms = 100;
  c.default_rebalance_timeout_ms = 20000;
  return c;
}

// A member as a client sees itself.
struct Client {
  std::string id;
  int32_t epoch = 0;
  Assignment owned;
};

class ConsumerGroupTest : public ::testing::Test {
 protected:
  ConsumerGroupTest() : group_("g", TestConfig(), CountingIds()) {}

  Client Join(const std::vector<std::string>& topics, const std::string& instance = "") {
    auto res = group_.Heartbeat(JoinRequest(topics, instance), now_, topics_);
    EXPECT_EQ(res.status.error, GroupError::kNone) << res.status.message;
    EXPECT_TRUE(res.response.has_assignment());
    return Client{res.response.member_id(), res.response.member_epoch(),
                  AssignmentOf(res.response)};
  }

  // Heartbeats with what the client owns; applies the answer (releasing at once).
  HeartbeatResult Beat(Client& c) {
    auto res = group_.Heartbeat(BeatRequest(c.id, c.epoch, c.owned), now_, topics_);
    if (res.status.ok()) {
      c.epoch = res.response.member_epoch();
      if (res.response.has_assignment()) c.owned = AssignmentOf(res.response);
    }
    return res;
  }

  // Heartbeats every client until nothing changes; returns the rounds it took.
  int Settle(std::vector<Client*> clients, int max_rounds = 10) {
    for (int round = 1; round <= max_rounds; ++round) {
      now_ += 1000;
      for (Client* c : clients) EXPECT_EQ(Beat(*c).status.error, GroupError::kNone);
      if (group_.state() == GroupState::kStable) return round;
    }
    ADD_FAILURE() << "group did not settle in " << max_rounds
                  << " rounds: " << GroupStateName(group_.state());
    return max_rounds;
  }

  ConsumerGroup group_;
  int64_t now_ = 1000;
  TopicPartitionCounts topics_ = {{"t", 6}, {"u", 2}};
};

TEST_F(ConsumerGroupTest, FirstMemberGetsEverythingAtOnce) {
  EXPECT_EQ(group_.state(), GroupState::kEmpty);
  Client a = Join({"t"});
  EXPECT_EQ(a.id, "m1");
  EXPECT_EQ(a.epoch, 1);
  EXPECT_EQ(ToString(a.owned), "t-[0,1,2,3,4,5]");
  EXPECT_EQ(group_.state(), GroupState::kStable);
  EXPECT_EQ(group_.group_epoch(), 1);
}

TEST_F(ConsumerGroupTest, SecondMemberWaitsForRevocation) {
  Client a = Join({"t"});
  Client b = Join({"t"});
  // b's target is half of t, but a still owns it: b gets nothing yet.
  EXPECT_TRUE(b.owned.empty());
  EXPECT_EQ(group_.state(), GroupState::kReconciling);
  EXPECT_EQ(PartitionCount(group_.FindMember(b.id)->target), 3u);

  // a's heartbeat: told to keep only its target (epoch bump), the rest pending revocation.
  auto r = Beat(a).response;
  EXPECT_EQ(r.member_epoch(), 2);
  EXPECT_TRUE(r.has_assignment());
  EXPECT_EQ(PartitionCount(a.owned), 3u);
  EXPECT_EQ(PartitionCount(group_.FindMember(a.id)->pending_revocation), 3u);

  // b still gets nothing: a has not confirmed the release (its heartbeat has not come).
  r = Beat(b).response;
  EXPECT_TRUE(b.owned.empty());

  // a confirms (heartbeat without the revoked partitions); then b gets them.
  Beat(a);
  EXPECT_TRUE(group_.FindMember(a.id)->pending_revocation.empty());
  r = Beat(b).response;
  EXPECT_EQ(PartitionCount(b.owned), 3u);
  EXPECT_EQ(r.member_epoch(), 2);
  EXPECT_TRUE(Intersect(a.owned, b.owned).empty());
  EXPECT_EQ(group_.state(), GroupState::kStable);
}

TEST_F(ConsumerGroupTest, PartialReleaseFreesOnlyWhatWasReleased) {
  Client a = Join({"t"});
  Client b = Join({"t"});
  Beat(a);  // a told to revoke 3
  const Assignment revoking = group_.FindMember(a.id)->pending_revocation;
  ASSERT_EQ(PartitionCount(revoking), 3u);
  // a releases one of the three.
  Assignment still = revoking;
  const int32_t released = *still.at("t").begin();
  still.at("t").erase(released);
  Client a_view = a;
  a_view.owned = Union(a.owned, still);
  group_.Heartbeat(BeatRequest(a.id, a.epoch, a_view.owned), now_, topics_);
  Beat(b);
  EXPECT_EQ(ToString(b.owned), "t-[" + std::to_string(released) + "]");
}

TEST_F(ConsumerGroupTest, StaleEpochIsFenced) {
  Client a = Join({"t"});
  Client b = Join({"t"});
  Beat(a);  // epoch 2
  ASSERT_EQ(a.epoch, 2);
  Beat(a);  // releases, epoch stays 2
  // Epoch 1 is now the previous epoch, but a reports owning partitions it no longer may.
  auto res = group_.Heartbeat(BeatRequest(a.id, 1, group_.FindMember(a.id)->target), now_, topics_);
  EXPECT_EQ(res.status.error, GroupError::kNone)
      << "previous epoch owning only its own is accepted";
  res = group_.Heartbeat(BeatRequest(a.id, 1, {{"t", {0, 1, 2, 3, 4, 5}}}), now_, topics_);
  EXPECT_EQ(res.status.error, GroupError::kFencedMemberEpoch);
  res = group_.Heartbeat(BeatRequest(a.id, 7, a.owned), now_, topics_);
  EXPECT_EQ(res.status.error, GroupError::kFencedMemberEpoch);
  res = group_.Heartbeat(BeatRequest("nobody", 1, {}), now_, topics_);
  EXPECT_EQ(res.status.error, GroupError::kUnknownMemberId);
}

TEST_F(ConsumerGroupTest, LostResponseIsResent) {
  Client a = Join({"t"});
  Client b = Join({"t"});
  // a's heartbeat response (epoch 2, revoke) is lost: a heartbeats again with epoch 1.
  group_.Heartbeat(BeatRequest(a.id, a.epoch, a.owned), now_, topics_);
  auto res = Beat(a);
  ASSERT_EQ(res.status.error, GroupError::kNone);
  const auto& r = res.response;
  EXPECT_TRUE(r.has_assignment());
  EXPECT_EQ(r.member_epoch(), 2);
  EXPECT_EQ(PartitionCount(a.owned), 3u);
  Settle({&a, &b});
  EXPECT_TRUE(Intersect(a.owned, b.owned).empty());
  EXPECT_EQ(PartitionCount(Union(a.owned, b.owned)), 6u);
}

TEST_F(ConsumerGroupTest, OwningUnassignedPartitionIsFenced) {
  Client a = Join({"t"});
  Client b = Join({"u"});
  auto res = group_.Heartbeat(BeatRequest(b.id, b.epoch, {{"t", {0}}}), now_, topics_);
  EXPECT_EQ(res.status.error, GroupError::kFencedMemberEpoch);
  (void)a;
}

TEST_F(ConsumerGroupTest, LeaveFreesPartitions) {
  Client a = Join({"t"});
  Client b = Join({"t"});
  Settle({&a, &b});
  const int32_t epoch = group_.group_epoch();
  auto leave = BeatRequest(a.id, -1, {});
  auto res = group_.Heartbeat(leave, now_, topics_);
  EXPECT_EQ(res.status.error, GroupError::kNone);
  EXPECT_EQ(res.response.member_epoch(), -1);
  EXPECT_EQ(group_.group_epoch(), epoch + 1);
  EXPECT_EQ(group_.FindMember(a.id), nullptr);
  Settle({&b});
  EXPECT_EQ(ToString(b.owned), "t-[0,1,2,3,4,5]");
  res = group_.Heartbeat(BeatRequest(b.id, -1, {}), now_, topics_);
  EXPECT_EQ(group_.state(), GroupState::kEmpty);
}

TEST_F(ConsumerGroupTest, SessionExpiryFencesZombie) {
  Client a = Join({"t"});
  Client b = Join({"t"});
  Settle({&a, &b});
  // a's heartbeats stop. b keeps going; a expires after its 10 s session.
  for (int i = 0; i < 12; ++i) {
    now_ += 1000;
    Beat(b);
    group_.Tick(now_);
  }
  EXPECT_EQ(group_.FindMember(a.id), nullptr);
  Settle({&b});
  EXPECT_EQ(PartitionCount(b.owned), 6u);
  // The zombie commits and heartbeats with its old epoch: fenced.
  v1::CommitOffsetsRequest commit;
  commit.set_group_id("g");
  commit.set_member_id(a.id);
  commit.set_member_epoch(a.epoch);
  auto* o = commit.add_offsets();
  o->set_topic("t");
  o->set_partition(*a.owned.at("t").begin());
  o->set_offset(42);
  auto v = group_.ValidateCommit(commit, now_, topics_);
  EXPECT_EQ(v.status.error, GroupError::kFencedMemberEpoch);
  EXPECT_TRUE(v.records.empty());
  EXPECT_EQ(Beat(a).status.error, GroupError::kFencedMemberEpoch);
  // It may rejoin with epoch 0 (same member id) and gets a fresh assignment.
  auto join = JoinRequest({"t"});
  join.set_member_id(a.id);
  auto res = group_.Heartbeat(join, now_, topics_);
  EXPECT_EQ(res.status.error, GroupError::kNone);
  EXPECT_EQ(res.response.member_id(), a.id);
}

TEST_F(ConsumerGroupTest, CommitFromExpiredButNotYetTickedMemberIsFenced) {
  Client a = Join({"t"});
  now_ += 11000;  // past the session, before any Tick
  v1::CommitOffsetsRequest commit;
  commit.set_member_id(a.id);
  commit.set_member_epoch(a.epoch);
  auto* o = commit.add_offsets();
  o->set_topic("t");
  o->set_partition(0);
  o->set_offset(1);
  EXPECT_EQ(group_.ValidateCommit(commit, now_, topics_).status.error,
            GroupError::kFencedMemberEpoch);
}

TEST_F(ConsumerGroupTest, CommitValidation) {
  Client a = Join({"t"});
  Client b = Join({"t"});
  Settle({&a, &b});
  v1::CommitOffsetsRequest commit;
  commit.set_group_id("g");
  commit.set_member_id(a.id);
  commit.set_member_epoch(a.epoch);
  auto add = [&](const std::string& topic, int32_t p, int64_t offset, std::string meta = "") {
    auto* o = commit.add_offsets();
    o->set_topic(topic);
    o->set_partition(p);
    o->set_offset(offset);
    o->set_metadata(std::move(meta));
  };
  const int32_t mine = *a.owned.at("t").begin();
  const int32_t theirs = *b.owned.at("t").begin();
  add("t", mine, 10, "m");
  add("t", theirs, 10);
  add("nope", 0, 10);
  add("t", 99, 10);
  add("t", mine, -5);
  add("t", mine, 3, std::string(5000, 'x'));
  auto v = group_.ValidateCommit(commit, now_, topics_);
  ASSERT_EQ(v.status.error, GroupError::kNone);
  ASSERT_EQ(v.partitions.size(), 6u);
  EXPECT_EQ(v.partitions[0].status.error, GroupError::kNone);
  EXPECT_EQ(v.partitions[1].status.error, GroupError::kFencedMemberEpoch);
  EXPECT_EQ(v.partitions[2].status.error, GroupError::kUnknownTopic);
  EXPECT_EQ(v.partitions[3].status.error, GroupError::kUnknownPartition);
  EXPECT_EQ(v.partitions[4].status.error, GroupError::kInvalidOffset);
  EXPECT_EQ(v.partitions[5].status.error, GroupError::kInvalidRequest);
  ASSERT_EQ(v.records.size(), 1u);
  EXPECT_EQ(v.records[0].key.offset_commit().partition(), mine);
  EXPECT_EQ(v.records[0].value->offset_commit().offset(), 10);
  EXPECT_EQ(v.records[0].value->offset_commit().metadata(), "m");
  EXPECT_EQ(v.records[0].value->offset_commit().commit_timestamp_ms(), now_);

  commit.set_member_epoch(a.epoch + 5);
  EXPECT_EQ(group_.ValidateCommit(commit, now_, topics_).status.error,
            GroupError::kFencedMemberEpoch);
  commit.set_member_epoch(0);
  EXPECT_EQ(group_.ValidateCommit(commit, now_, topics_).status.error,
            GroupError::kFencedMemberEpoch);
  commit.set_member_id("");
  commit.set_member_epoch(-1);
  EXPECT_EQ(group_.ValidateCommit(commit, now_, topics_).status.error, GroupError::kUnknownMemberId)
      << "outside commits only to a group without members";
}

TEST_F(ConsumerGroupTest, OutsideCommitToEmptyGroup) {
  v1::CommitOffsetsRequest commit;
  commit.set_member_epoch(-1);
  auto* o = commit.add_offsets();
  o->set_topic("t");
  o->set_partition(5);
  o->set_offset(7);
  auto v = group_.ValidateCommit(commit, now_, topics_);
  EXPECT_EQ(v.status.error, GroupError::kNone);
  EXPECT_EQ(v.records.size(), 1u);
}

TEST_F(ConsumerGroupTest, StaticMemberRejoinsWithoutRebalance) {
  Client a = Join({"t"}, "instance-a");
  Client b = Join({"t"}, "instance-b");
  Settle({&a, &b});
  const int32_t epoch = group_.group_epoch();
  const Assignment a_parts = a.owned;

  // a leaves as a static member: its partitions stay reserved, b does not get them.
  auto res = group_.Heartbeat(BeatRequest(a.id, -2, {}), now_, topics_);
  ASSERT_EQ(res.status.error, GroupError::kNone);
  EXPECT_EQ(res.response.member_epoch(), -2);
  Settle({&b});
  EXPECT_EQ(PartitionCount(b.owned), 3u);
  EXPECT_EQ(group_.group_epoch(), epoch);

  // Another client may not take the instance id while it is... free to be taken back: a rejoins.
  now_ += 3000;
  Client a2 = Join({"t"}, "instance-a");
  EXPECT_NE(a2.id, a.id);
  EXPECT_EQ(a2.owned, a_parts);
  EXPECT_EQ(group_.group_epoch(), epoch) << "no rebalance";
  EXPECT_EQ(group_.FindMember(a.id), nullptr);
  EXPECT_EQ(Beat(a).status.error, GroupError::kFencedMemberEpoch)
      << "the old incarnation is fenced";

  // While a2 is active, a third process with the same instance id is refused.
  auto dup = group_.Heartbeat(JoinRequest({"t"}, "instance-a"), now_, topics_);
  EXPECT_EQ(dup.status.error, GroupError::kUnreleasedInstanceId);
}

TEST_F(ConsumerGroupTest, StaticMemberNotBackInTimeLosesPartitions) {
  Client a = Join({"t"}, "instance-a");
  Client b = Join({"t"}, "instance-b");
  Settle({&a, &b});
  group_.Heartbeat(BeatRequest(a.id, -2, {}), now_, topics_);
  for (int i = 0; i < 12; ++i) {
    now_ += 1000;
    Beat(b);
    group_.Tick(now_);
  }
  Settle({&b});
  EXPECT_EQ(PartitionCount(b.owned), 6u);
  Client a2 = Join({"t"}, "instance-a");
  EXPECT_TRUE(a2.owned.empty()) << "b still owns them";
}

TEST_F(ConsumerGroupTest, NewPartitionsAndDeletedTopics) {
  topics_ = {{"t", 2}};
  Client a = Join({"t", "later"});
  Client b = Join({"t", "later"});
  Settle({&a, &b});
  int32_t epoch = group_.group_epoch();
  topics_["t"] = 4;
  group_.OnTopicsChanged(topics_, now_);
  EXPECT_EQ(group_.group_epoch(), epoch + 1);
  Settle({&a, &b});
  EXPECT_EQ(PartitionCount(Union(a.owned, b.owned)), 4u);
  topics_["later"] = 2;  // a subscribed topic appears
  Settle({&a, &b});
  EXPECT_EQ(PartitionCount(Union(a.owned, b.owned)), 6u);
  epoch = group_.group_epoch();
  group_.OnTopicsChanged(topics_, now_);
  EXPECT_EQ(group_.group_epoch(), epoch) << "no change, no bump";
  topics_.erase("t");
  group_.OnTopicsChanged(topics_, now_);
  Settle({&a, &b});
  EXPECT_EQ(ToString(Union(a.owned, b.owned)), "later-[0,1]");
}

TEST_F(ConsumerGroupTest, RegexSubscriptionPicksUpNewTopics) {
  auto join = JoinRequest({});
  join.set_subscribed_topic_regex("orders-.*");
  topics_ = {{"orders-eu", 2}, {"payments", 2}, {"__orders-internal", 1}};
  auto res = group_.Heartbeat(join, now_, topics_);
  ASSERT_EQ(res.status.error, GroupError::kNone);
  Client a{res.response.member_id(), res.response.member_epoch(), AssignmentOf(res.response)};
  EXPECT_EQ(ToString(a.owned), "orders-eu-[0,1]");
  topics_["orders-us"] = 1;
  Beat(a);
  EXPECT_EQ(ToString(a.owned), "orders-eu-[0,1] orders-us-[0]");

  join.set_subscribed_topic_regex("(unclosed");
  EXPECT_EQ(group_.Heartbeat(join, now_, topics_).status.error, GroupError::kInvalidRequest);
}

TEST_F(ConsumerGroupTest, InvalidJoins) {
  EXPECT_EQ(group_.Heartbeat(JoinRequest({}), now_, topics_).status.error,
            GroupError::kInvalidRequest);
  EXPECT_EQ(group_.Heartbeat(JoinRequest({"t"}, "", "magic"), now_, topics_).status.error,
            GroupError::kInvalidRequest);
  auto r = JoinRequest({"t"});
  r.set_member_epoch(-7);
  EXPECT_EQ(group_.Heartbeat(r, now_, topics_).status.error, GroupError::kInvalidRequest);
  // A heartbeat that changes the subscription is checked like a join.
  Client a = Join({"t"});
  auto beat = BeatRequest(a.id, a.epoch, a.owned);
  beat.set_subscribed_topic_regex("[bad");
  EXPECT_EQ(group_.Heartbeat(beat, now_, topics_).status.error, GroupError::kInvalidRequest);
  beat.set_subscribed_topic_regex("");
  beat.set_server_assignor("magic");
  EXPECT_EQ(group_.Heartbeat(beat, now_, topics_).status.error, GroupError::kInvalidRequest);
  beat.set_server_assignor("range");
  EXPECT_EQ(group_.Heartbeat(beat, now_, topics_).status.error, GroupError::kNone);
  EXPECT_EQ(group_.assignor(), "range");
}

TEST_F(ConsumerGroupTest, MemberLimit) {
  GroupConfig c = TestConfig();
  c.max_members = 2;
  ConsumerGroup g("g", c, CountingIds());
  EXPECT_EQ(g.Heartbeat(JoinRequest({"t"}), now_, topics_).status.error, GroupError::kNone);
  EXPECT_EQ(g.Heartbeat(JoinRequest({"t"}), now_, topics_).status.error, GroupError::kNone);
  EXPECT_EQ(g.Heartbeat(JoinRequest({"t"}), now_, topics_).status.error,
            GroupError::kTooManyMembers);
}

TEST_F(ConsumerGroupTest, RangeAssignorChosenByMembers) {
  Client a = [&] {
    auto res = group_.Heartbeat(JoinRequest({"t"}, "", "range"), now_, topics_);
    return Client{res.response.member_id(), res.response.member_epoch(),
                  AssignmentOf(res.response)};
  }();
  EXPECT_EQ(group_.assignor(), "range");
  auto res = group_.Heartbeat(JoinRequest({"t"}, "", "range"), now_, topics_);
  Client b{res.response.member_id(), res.response.member_epoch(), AssignmentOf(res.response)};
  Settle({&a, &b});
  EXPECT_EQ(ToString(a.owned), "t-[0,1,2]");
  EXPECT_EQ(ToString(b.owned), "t-[3,4,5]");
}

TEST_F(ConsumerGroupTest, MemberThatNeverRevokesIsRemoved) {
  Client a = Join({"t"});
  Client b = Join({"t"});
  Beat(a);  // told to revoke
  ASSERT_FALSE(group_.FindMember(a.id)->pending_revocation.empty());
  // a keeps heartbeating but never releases; its rebalance timeout is 20 s.
  const Assignment stuck = group_.FindMember(a.id)->Owned();
  for (int i = 0; i < 25; ++i) {
    now_ += 1000;
    group_.Heartbeat(BeatRequest(a.id, a.epoch, stuck), now_, topics_);
    Beat(b);
    group_.Tick(now_);
  }
  EXPECT_EQ(group_.FindMember(a.id), nullptr);
  Settle({&b});
  EXPECT_EQ(PartitionCount(b.owned), 6u);
}

TEST_F(ConsumerGroupTest, RestoreFromSnapshotRecords) {
  Client a = Join({"t", "u"}, "instance-a");
  Client b = Join({"t"});
  Beat(a);  // mid-reconciliation: a has partitions pending revocation
  std::map<std::string, pb::MemberValue> members;
  pb::GroupMetadataValue metadata;
  for (const auto& r : group_.SnapshotRecords()) {
    if (r.key.has_group_metadata()) metadata = r.value->group_metadata();
    if (r.key.has_member()) members[r.key.member().member_id()] = r.value->member();
  }
  auto restored =
      ConsumerGroup::Restore("g", TestConfig(), CountingIds("r"), metadata, members, now_);
  ASSERT_TRUE(restored.ok()) << restored.status().ToString();
  auto& g2 = restored.value();
  EXPECT_EQ(g2.group_epoch(), group_.group_epoch());
  EXPECT_EQ(g2.state(), group_.state());
  ASSERT_EQ(g2.members().size(), 2u);
  for (const auto& [id, m] : group_.members()) {
    const GroupMember* m2 = g2.FindMember(id);
    ASSERT_NE(m2, nullptr);
    EXPECT_EQ(m2->member_epoch, m.member_epoch);
    EXPECT_EQ(m2->assigned, m.assigned);
    EXPECT_EQ(m2->pending_revocation, m.pending_revocation);
    EXPECT_EQ(m2->target, m.target);
    EXPECT_EQ(m2->instance_id, m.instance_id);
  }
  // Records of the two are identical.
  auto r1 = group_.SnapshotRecords();
  auto r2 = g2.SnapshotRecords();
  ASSERT_EQ(r1.size(), r2.size());
  for (size_t i = 0; i < r1.size(); ++i) {
    EXPECT_EQ(Encode(r1[i]).key, Encode(r2[i]).key);
    EXPECT_EQ(Encode(r1[i]).value, Encode(r2[i]).value);
  }

  // Contradictory records are corruption, not a crash.
  auto bad = members;
  auto* clash = bad.begin()->second.add_assigned();
  clash->set_topic("t");
  for (const auto& [id, m] : group_.members()) {
    if (id != bad.begin()->first && !m.assigned.empty()) {
      clash->add_partitions(*m.assigned.begin()->second.begin());
    }
  }
  if (clash->partitions_size() > 0) {
    EXPECT_TRUE(ConsumerGroup::Restore("g", TestConfig(), CountingIds(), metadata, bad, now_)
                    .status()
                    .IsCorruption());
  }
}

TEST_F(ConsumerGroupTest, DeleteOnlyWhenEmpty) {
  Client a = Join({"t"});
  std::vector<GroupRecord> records;
  EXPECT_EQ(group_.Delete(&records), GroupError::kGroupNotEmpty);
  EXPECT_TRUE(records.empty());
  group_.Heartbeat(BeatRequest(a.id, -1, {}), now_, topics_);
  EXPECT_EQ(group_.Delete(&records), GroupError::kNone);
  EXPECT_EQ(group_.state(), GroupState::kDead);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_FALSE(records[0].value.has_value());
  EXPECT_EQ(group_.Heartbeat(JoinRequest({"t"}), now_, topics_).status.error,
            GroupError::kGroupIdNotFound);
}

TEST_F(ConsumerGroupTest, EveryChangeProducesRecords) {
  auto res = group_.Heartbeat(JoinRequest({"t"}), now_, topics_);
  // Join: group metadata + the member.
  ASSERT_EQ(res.records.size(), 2u);
  EXPECT_TRUE(res.records[0].key.has_group_metadata());
  EXPECT_TRUE(res.records[1].key.has_member());
  // A heartbeat that changes nothing writes nothing.
  Client a{res.response.member_id(), res.response.member_epoch(), AssignmentOf(res.response)};
  auto beat = group_.Heartbeat(BeatRequest(a.id, a.epoch, a.owned), now_ + 1000, topics_);
  EXPECT_TRUE(beat.records.empty());
  // Leaving: group metadata + member tombstone.
  auto leave = group_.Heartbeat(BeatRequest(a.id, -1, {}), now_ + 2000, topics_);
  ASSERT_EQ(leave.records.size(), 2u);
  EXPECT_FALSE(leave.records[1].value.has_value());
}

}  // namespace
}  // namespace rill::groups
