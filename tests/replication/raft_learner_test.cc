// Learners (non-voting members): a broker that is not a controller follows the metadata log as a
// learner. The leader replicates to learners like to followers; learners never campaign, never
// vote, never lead and never count for commit or check-quorum. The rules follow etcd-raft's
// learners, except that a learner asked for a vote rejects it (see RaftNode::is_learner).

#include <algorithm>

#include "raft_test_util.h"

namespace rill::raft::testing {
namespace {

void WithPreVoteAndCheckQuorum(RaftConfig& c) {
  c.pre_vote = true;
  c.check_quorum = true;
}

bool IsElectionMessage(const Message& m) {
  return m.type == MessageType::kVote || m.type == MessageType::kPreVote;
}

int CountDelivered(Network& net, MessageType t, int from, int to) {
  int n = 0;
  for (const Message& m : net.delivered()) {
    n += (m.type == t && m.from == NodeId(from) && m.to == NodeId(to)) ? 1 : 0;
  }
  return n;
}

// ---- configuration ----

TEST(RaftLearner, ConfigurationKeepsLearnersApartFromVoters) {
  Configuration c = Configuration::Of({NodeId(3), NodeId(1), NodeId(2), NodeId(1)},
                                      {NodeId(5), NodeId(4), NodeId(5)});
  EXPECT_EQ(c.voters, (std::vector<NodeId>{NodeId(1), NodeId(2), NodeId(3)}));
  EXPECT_EQ(c.learners, (std::vector<NodeId>{NodeId(4), NodeId(5)}));
  EXPECT_TRUE(c.Validate().ok());
  EXPECT_TRUE(c.IsVoter(NodeId(2)));
  EXPECT_FALSE(c.IsVoter(NodeId(4)));
  EXPECT_TRUE(c.IsLearner(NodeId(4)));
  EXPECT_FALSE(c.IsLearner(NodeId(2)));
  EXPECT_TRUE(c.IsMember(NodeId(5)));
  EXPECT_FALSE(c.IsMember(NodeId(6)));
  EXPECT_EQ(c.QuorumSize(), 2u) << "learners do not enlarge the quorum";
  // The voter-only form still works (it is what existing callers use).
  EXPECT_EQ(Configuration::Of({NodeId(2), NodeId(1)}).learners.size(), 0u);

  Configuration overlap = Configuration::Of({NodeId(1), NodeId(2)}, {NodeId(2), NodeId(3)});
  EXPECT_EQ(overlap.Validate().code(), StatusCode::kInvalidArgument);
  Configuration learners_only = Configuration::Of({}, {NodeId(1), NodeId(2)});
  EXPECT_EQ(learners_only.Validate().code(), StatusCode::kInvalidArgument);
  Configuration bad_id;
  bad_id.voters = {NodeId(1)};
  bad_id.learners = {NodeId(0)};
  EXPECT_EQ(bad_id.Validate().code(), StatusCode::kInvalidArgument);
  Configuration unsorted;
  unsorted.voters = {NodeId(1)};
  unsorted.learners = {NodeId(3), NodeId(2)};
  EXPECT_EQ(unsorted.Validate().code(), StatusCode::kInvalidArgument);
}

TEST(RaftLearner, NodeMayBeALearnerButMustBeAMember) {
  RaftConfig c = TestConfig(4, 3, /*learners=*/1);
  EXPECT_TRUE(c.Validate().ok());
  auto n = NewNode(c);
  EXPECT_TRUE(n->is_learner());
  EXPECT_EQ(n->role(), Role::kFollower);
  c.id = NodeId(5);
  EXPECT_EQ(c.Validate().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(RaftNode::Create(c, {}).ok());
  EXPECT_FALSE(NewNode(TestConfig(1, 3, 1))->is_learner());
}

// ---- replication and commit ----

TEST(RaftLearner, LearnerReceivesAndCommitsEntries) {
  Network net(3, /*learners=*/1);
  net.Campaign(1);
  ASSERT_EQ(net[1].role(), Role::kLeader);
  ASSERT_TRUE(net.Propose(1, "a").ok());
  ASSERT_TRUE(net.Propose(1, "b").ok());
  net.TickAll();  // a heartbeat carries the final commit index
  for (int id : {1, 2, 3, 4}) {
    EXPECT_EQ(net.AppliedData(id), (std::vector<std::string>{"a", "b"})) << "node " << id;
    EXPECT_EQ(net[id].commit_index(), net[1].commit_index()) << "node " << id;
  }
  EXPECT_EQ(net[4].role(), Role::kFollower);
  EXPECT_EQ(net[4].leader(), NodeId(1));
  EXPECT_EQ(net[4].term(), net[1].term());
  // A learner is not a candidate and is never asked for a vote.
  for (const Message& m : net.delivered()) {
    EXPECT_FALSE(IsElectionMessage(m) && (m.to == NodeId(4) || m.from == NodeId(4)))
        << m.ToString();
  }
  // It refuses proposals like a follower and names the leader.
  auto r = net[4].Propose("x");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("leader is 1"), std::string::npos) << r.status().message();
}

TEST(RaftLearner, OneVoterAndTwoLearnersCommitWithOnlyTheVoter) {
  Network net(1, /*learners=*/2);
  net.Campaign(1);
  ASSERT_EQ(net[1].role(), Role::kLeader) << "a sole voter wins alone; learners have no vote";
  net.Isolate(1);
  ASSERT_TRUE(net.Propose(1, "alone").ok());
  EXPECT_EQ(net.AppliedData(1), std::vector<std::string>{"alone"});
  EXPECT_TRUE(net.AppliedData(2).empty());
  EXPECT_TRUE(net.AppliedData(3).empty());
  net.Heal();
  net.TickAll(2);
  for (int id : {2, 3}) {
    EXPECT_EQ(net.AppliedData(id), std::vector<std::string>{"alone"}) << "learner " << id;
    EXPECT_EQ(net[id].last_index(), net[1].last_index());
  }
}

TEST(RaftLearner, PartitionedLearnerDoesNotStopTheVotersFromCommitting) {
  Network net(3, /*learners=*/1, WithPreVoteAndCheckQuorum);
  net.Campaign(1);
  ASSERT_EQ(net[1].role(), Role::kLeader);
  net.Isolate(4);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(net.Propose(1, "v" + std::to_string(i)).ok());
  net.TickAll(3 * 10);  // several check-quorum rounds: the missing learner does not matter
  EXPECT_EQ(net[1].role(), Role::kLeader);
  for (int id : {1, 2, 3}) EXPECT_EQ(net.AppliedData(id).size(), 5u) << "node " << id;
  EXPECT_TRUE(net.AppliedData(4).empty());
  EXPECT_EQ(net[4].term(), Term(1)) << "an isolated learner never raises its term";
  net.Heal();
  net.TickAll(3);
  EXPECT_EQ(net.AppliedData(4), net.AppliedData(1));
}

TEST(RaftLearner, LearnersDoNotMakeUpAMissingQuorum) {
  // Voters 1, 2, 3 and learners 4, 5; with 2 and 3 down only the leader and the learners
  // remain: three of five members, but one of three voters.
  Network net(3, /*learners=*/2);
  net.Campaign(1);
  ASSERT_TRUE(net.Propose(1, "before").ok());
  LogIndex commit = net[1].commit_index();
  net.Stop(2);
  net.Stop(3);
  ASSERT_TRUE(net.Propose(1, "stuck").ok());
  net.TickAll(5 * 10);
  for (int id : {4, 5}) {
    EXPECT_EQ(net[id].last_index(), net[1].last_index()) << "learner " << id << " has the entry";
    EXPECT_EQ(net[id].commit_index(), commit) << "learner " << id;
    EXPECT_EQ(net.AppliedData(id), std::vector<std::string>{"before"}) << "learner " << id;
  }
  EXPECT_EQ(net[1].commit_index(), commit) << "learners' copies do not count";
  EXPECT_EQ(net.AppliedData(1), std::vector<std::string>{"before"});
  // One voter back makes a quorum again.
  net.Start(2);
  net.TickAll(2);
  for (int id : {1, 4, 5}) {
    EXPECT_EQ(net.AppliedData(id), (std::vector<std::string>{"before", "stuck"})) << "node " << id;
  }
}

TEST(RaftLearner, LearnerDoesNotCountForCheckQuorum) {
  Network net(3, /*learners=*/1, WithPreVoteAndCheckQuorum);
  net.Campaign(1);
  ASSERT_EQ(net[1].role(), Role::kLeader);
  net.Cut(1, 2);
  net.Cut(1, 3);
  // The learner keeps answering heartbeats, which is not a quorum: the leader steps down.
  net.Tick(1, 2 * 10);
  EXPECT_NE(net[1].role(), Role::kLeader);
  EXPECT_GT(CountDelivered(net, MessageType::kHeartbeatResponse, 4, 1), 0);
}

// ---- elections ----

TEST(RaftLearner, LearnerNeverCampaignsEvenAfterLongSilence) {
  for (bool pre_vote : {false, true}) {
    RaftConfig c = TestConfig(4, 3, /*learners=*/1);
    c.pre_vote = pre_vote;
    c.check_quorum = pre_vote;
    auto n = NewNode(c);
    for (int i = 0; i < 100 * c.election_tick; ++i) {
      n->Tick();
      for (const Message& m : ReadMessages(*n)) ADD_FAILURE() << "learner sent " << m.ToString();
    }
    n->Campaign();
    EXPECT_TRUE(ReadMessages(*n).empty());
    ASSERT_TRUE(n->Step(Msg(MessageType::kTimeoutNow, 1, 4, 0)).ok());
    EXPECT_TRUE(ReadMessages(*n).empty());
    EXPECT_EQ(n->role(), Role::kFollower);
    EXPECT_EQ(n->term(), Term(0));
    EXPECT_EQ(n->vote(), kNoNode);
  }
}

TEST(RaftLearner, LearnerCannotBeElectedWhenEveryVoterIsGone) {
  Network net(3, /*learners=*/1, WithPreVoteAndCheckQuorum);
  net.Campaign(1);
  ASSERT_TRUE(net.Propose(1, "x").ok());
  Term term = net[4].term();
  for (int id : {1, 2, 3}) net.Stop(id);
  net.Tick(4, 50 * 10);
  EXPECT_EQ(net[4].role(), Role::kFollower);
  EXPECT_EQ(net[4].term(), term);
  EXPECT_EQ(net.Leader(), 0);
  // The voters come back and elect one of themselves; the learner follows.
  for (int id : {1, 2, 3}) net.Start(id);
  for (int i = 0; i < 200 && net.Leader() == 0; ++i) net.TickAll();
  int leader = net.Leader();
  ASSERT_TRUE(leader >= 1 && leader <= 3) << leader;
  net.TickAll(2);
  EXPECT_EQ(net[4].leader(), NodeId(leader));
}

TEST(RaftLearner, LearnerRejectsVoteAndPreVoteRequestsWithoutChangingTerm) {
  auto n = NewNode(TestConfig(4, 3, /*learners=*/1));
  for (MessageType t : {MessageType::kVote, MessageType::kPreVote}) {
    Message req = Msg(t, 2, 4, 7);
    req.log_index = LogIndex(100);
    req.log_term = Term(7);
    ASSERT_TRUE(n->Step(req).ok());
    auto out = ReadMessages(*n);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].type,
              t == MessageType::kVote ? MessageType::kVoteResponse : MessageType::kPreVoteResponse);
    EXPECT_EQ(out[0].to, NodeId(2));
    EXPECT_TRUE(out[0].reject);
    EXPECT_EQ(n->term(), Term(0));
    EXPECT_EQ(n->vote(), kNoNode);
  }
}

TEST(RaftLearner, VoterRejectsVoteRequestFromALearner) {
  // Only possible when configurations disagree; a voter must not help a learner lead.
  auto n = NewNode(TestConfig(1, 3, /*learners=*/1));
  Message req = Msg(MessageType::kVote, 4, 1, 3);
  req.log_index = LogIndex(10);
  req.log_term = Term(3);
  ASSERT_TRUE(n->Step(req).ok());
  auto out = ReadMessages(*n);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].reject);
  EXPECT_EQ(n->term(), Term(0)) << "the learner's term is not adopted";
  EXPECT_EQ(n->vote(), kNoNode);
}

TEST(RaftLearner, CandidateDoesNotCountALearnerVote) {
  // A 3-voter candidate with one granted voter (itself) plus a learner's grant is no majority.
  auto n = NewNode(TestConfig(1, 3, /*learners=*/1));
  n->Campaign();
  ASSERT_EQ(n->role(), Role::kCandidate);
  for (const Message& m : ReadMessages(*n)) EXPECT_NE(m.to, NodeId(4)) << m.ToString();
  ASSERT_TRUE(n->Step(Msg(MessageType::kVoteResponse, 4, 1, n->term().value())).ok());
  EXPECT_EQ(n->role(), Role::kCandidate);
  ASSERT_TRUE(n->Step(Msg(MessageType::kVoteResponse, 2, 1, n->term().value())).ok());
  EXPECT_EQ(n->role(), Role::kLeader);
}

TEST(RaftLearner, LeadershipCannotBeTransferredToALearner) {
  Network net(3, /*learners=*/1);
  net.Campaign(1);
  EXPECT_EQ(net[1].TransferLeadership(NodeId(4)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(net[1].lead_transferee(), kNoNode);
  EXPECT_TRUE(net[1].Propose("still leader").ok());
}

// ---- flow control and snapshots ----

TEST(RaftLearner, AppendsToALearnerAreBoundedByMaxInflight) {
  Network net(1, /*learners=*/1, [](RaftConfig& c) {
    c.max_inflight_appends = 2;
    c.max_entries_per_append = 1;
  });
  net.Campaign(1);
  net.TickAll();  // the learner is in replicate state now
  int before = CountDelivered(net, MessageType::kAppend, 1, 2);
  net.DropType(MessageType::kAppendResponse);  // no acknowledgement comes back
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(net[1].Propose("e" + std::to_string(i)).ok());
  net.Settle();
  EXPECT_EQ(CountDelivered(net, MessageType::kAppend, 1, 2) - before, 2);
  EXPECT_EQ(net.AppliedData(1).size(), 10u) << "the voter commits without the learner";
  net.ClearDrops();
  net.TickAll(12);
  EXPECT_EQ(net.AppliedData(2), net.AppliedData(1));
}

TEST(RaftLearner, LaggingLearnerCatchesUpBySnapshot) {
  Network net(3, /*learners=*/1);
  net.Campaign(1);
  net.Stop(4);
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(net.Propose(1, "e" + std::to_string(i)).ok());
  LogIndex applied = net[1].applied_index();
  ASSERT_EQ(applied, LogIndex(31));
  ASSERT_TRUE(net[1].CompactLog(applied, "state-at-31").ok());
  ASSERT_TRUE(net.storage(1).SaveSnapshot(*net[1].snapshot()).ok());
  EXPECT_EQ(net[1].snapshot()->metadata.configuration, VotersAndLearners(3, 1));
  ASSERT_TRUE(net.Propose(1, "after").ok());
  net.Start(4);
  net.TickAll(3);
  EXPECT_GE(CountDelivered(net, MessageType::kInstallSnapshot, 1, 4), 1);
  ASSERT_TRUE(net[4].snapshot().has_value());
  EXPECT_EQ(net[4].snapshot()->data, "state-at-31");
  EXPECT_EQ(net[4].snapshot()->metadata.configuration, VotersAndLearners(3, 1));
  EXPECT_EQ(net[4].last_index(), net[1].last_index());
  EXPECT_EQ(net[4].commit_index(), net[1].commit_index());
  EXPECT_EQ(net.AppliedData(4), std::vector<std::string>{"after"});
  // It restarts from the snapshot, still a learner.
  net.Restart(4);
  EXPECT_TRUE(net[4].is_learner());
  EXPECT_EQ(net[4].snapshot_index(), LogIndex(31));
  EXPECT_EQ(net[4].last_index(), net[1].last_index());
}

}  // namespace
}  // namespace rill::raft::testing

// ---- learners added at run time (the controller adds registered brokers) ----

namespace rill::raft::testing {
namespace {

// Voters start without knowing the learners (only each learner knows it is one), as a broker
// that registers later.
void VotersKnowNoLearners(RaftConfig& c) {
  if (c.configuration.IsVoter(c.id)) c.configuration.learners.clear();
}

TEST(RaftLearner, LeaderReplicatesToALearnerAddedAtRunTime) {
  Network net(1, /*learners=*/1, VotersKnowNoLearners);
  net.Campaign(1);
  ASSERT_EQ(net[1].role(), Role::kLeader);
  ASSERT_TRUE(net.Propose(1, "before").ok());
  net.TickAll(3);
  EXPECT_TRUE(net.AppliedData(2).empty()) << "the leader does not know node 2 yet";

  ASSERT_TRUE(net[1].AddLearner(NodeId(2)).ok());
  EXPECT_TRUE(net[1].configuration().IsLearner(NodeId(2)));
  ASSERT_TRUE(net[1].AddLearner(NodeId(2)).ok()) << "adding it again changes nothing";
  EXPECT_EQ(net[1].configuration().learners.size(), 1u);
  net.TickAll(2);
  ASSERT_TRUE(net.Propose(1, "after").ok());
  net.TickAll(2);
  EXPECT_EQ(net.AppliedData(2), (std::vector<std::string>{"before", "after"}));
  EXPECT_EQ(net[2].leader(), NodeId(1));
  EXPECT_EQ(net[1].role(), Role::kLeader) << "a learner changes no quorum";
}

TEST(RaftLearner, AddLearnerRefusesVotersItselfAndBadIds) {
  Network net(3, VotersKnowNoLearners);
  EXPECT_EQ(net[1].AddLearner(NodeId(2)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(net[1].AddLearner(NodeId(1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(net[1].AddLearner(NodeId(0)).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(net[1].configuration().learners.empty());
}

TEST(RaftLearner, AFollowerThatAddedALearnerReplicatesToItOnceItLeads) {
  Network net(3, /*learners=*/1, VotersKnowNoLearners);
  // Every voter learns of node 4, as every controller applies the same registrations.
  for (int id : {1, 2, 3}) ASSERT_TRUE(net[id].AddLearner(NodeId(4)).ok());
  net.Campaign(1);
  ASSERT_EQ(net[1].role(), Role::kLeader);
  ASSERT_TRUE(net.Propose(1, "a").ok());
  net.TickAll();
  EXPECT_EQ(net.AppliedData(4), std::vector<std::string>{"a"});
  // Leadership moves; the new leader already tracks the learner.
  net.Stop(1);
  net.ElectByTimeout(2);
  int leader = net.Leader();
  ASSERT_TRUE(leader == 2 || leader == 3) << leader;
  ASSERT_TRUE(net.Propose(leader, "b").ok());
  net.TickAll(2);
  EXPECT_EQ(net.AppliedData(4), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(net[4].leader(), NodeId(leader));
}

}  // namespace
}  // namespace rill::raft::testing
