// Hand-written Raft scenarios: the situations the paper's figures and etcd-raft's tests single
// out, each driven step by step on the in-process test network.

#include <algorithm>

#include "raft_test_util.h"

namespace rill::raft::testing {
namespace {

void WithPreVoteAndCheckQuorum(RaftConfig& c) {
  c.pre_vote = true;
  c.check_quorum = true;
}

int CountDelivered(Network& net, MessageType t, bool reject = false) {
  int n = 0;
  for (const Message& m : net.delivered()) n += (m.type == t && m.reject == reject) ? 1 : 0;
  return n;
}

TEST(RaftScenario, DuelingCandidatesResolveToOneLeader) {
  Network net(3);
  // Nodes 1 and 3 time out together; node 2 grants the first request it sees.
  net[1].Campaign();
  net[3].Campaign();
  net.Settle();
  int leaders = 0;
  for (int id : {1, 2, 3}) leaders += net[id].role() == Role::kLeader ? 1 : 0;
  EXPECT_EQ(leaders, 1);
  int leader = net.Leader();
  ASSERT_NE(leader, 0);
  for (int id : {1, 2, 3}) {
    EXPECT_EQ(net[id].term(), Term(1));
    EXPECT_EQ(net[id].leader(), NodeId(leader)) << "node " << id;
  }
  ASSERT_TRUE(net.Propose(leader, "x").ok());
  for (int id : {1, 2, 3}) EXPECT_EQ(net.AppliedData(id), std::vector<std::string>{"x"});
}

TEST(RaftScenario, CandidateWithStaleLogCannotWinAfterPartitionHeals) {
  // etcd-raft's TestDuelingCandidates: 1 wins while cut off from 3; 3's own campaign fails
  // (node 2's log is newer), and after healing 3 still cannot win; the cluster converges.
  Network net(3);
  net.Cut(1, 3);
  net.Campaign(1);
  ASSERT_EQ(net[1].role(), Role::kLeader);
  net.Campaign(3);
  EXPECT_EQ(net[3].role(), Role::kCandidate);
  EXPECT_EQ(net[2].role(), Role::kFollower);
  net.Heal();
  net.Campaign(3);  // term 3: its log lacks the term-1 no-op, so 1 and 2 refuse
  EXPECT_NE(net[3].role(), Role::kLeader);
  for (int i = 0; i < 100 && net.Leader() == 0; ++i) net.TickAll();
  int leader = net.Leader();
  ASSERT_TRUE(leader == 1 || leader == 2) << leader;
  net.TickAll(2);
  for (int id : {1, 2, 3}) EXPECT_EQ(net[id].last_index(), net[leader].last_index());
}

TEST(RaftScenario, IsolatedLeaderStepsDownAndDoesNotDisruptWhenItReturns) {
  Network net(3, WithPreVoteAndCheckQuorum);
  net.Campaign(1);
  ASSERT_EQ(net[1].role(), Role::kLeader);
  ASSERT_TRUE(net.Propose(1, "a").ok());
  net.Isolate(1);
  // Check-quorum: within two election timeouts the isolated leader notices and steps down.
  net.Tick(1, 2 * 10);
  EXPECT_NE(net[1].role(), Role::kLeader);
  // The others elect a new leader.
  for (int i = 0; i < 100 && net.Leader() == 0; ++i) {
    net.Tick(2);
    net.Tick(3);
  }
  int leader = net.Leader();
  ASSERT_TRUE(leader == 2 || leader == 3);
  Term new_term = net[leader].term();
  EXPECT_EQ(new_term, Term(2));
  // The isolated node keeps timing out, but pre-vote keeps its term from growing.
  net.Tick(1, 10 * 10);
  EXPECT_EQ(net[1].term(), Term(1)) << "pre-vote must not let an isolated node raise its term";
  ASSERT_TRUE(net.Propose(leader, "b").ok());
  net.Heal();
  net.TickAll(3 * 10);
  EXPECT_EQ(net.Leader(), leader) << "the returning node must not disrupt the leader";
  EXPECT_EQ(net[leader].term(), new_term);
  EXPECT_EQ(net[1].role(), Role::kFollower);
  EXPECT_EQ(net[1].leader(), NodeId(leader));
  EXPECT_EQ(net.AppliedData(1), (std::vector<std::string>{"a", "b"}));
}

TEST(RaftScenario, ReturningFollowerWithoutPreVoteWouldDisruptButWithItDoesNot) {
  for (bool pre_vote : {false, true}) {
    Network net(3, [pre_vote](RaftConfig& c) {
      c.pre_vote = pre_vote;
      c.check_quorum = true;
    });
    net.Campaign(1);
    net.Isolate(3);
    net.Tick(3, 5 * 10);
    net.Heal();
    // The leader's heartbeats reach 3; whatever 3 does next, count the terms.
    net.TickAll(1);
    if (pre_vote) {
      EXPECT_EQ(net[1].term(), Term(1));
      EXPECT_EQ(net[1].role(), Role::kLeader);
    } else {
      EXPECT_GT(net[3].term(), Term(1)) << "without pre-vote the isolated node inflates its term";
    }
  }
}

TEST(RaftScenario, FollowerWithDivergentUncommittedSuffixIsTruncated) {
  Network net(3);
  net.Campaign(1);
  ASSERT_TRUE(net.Propose(1, "a").ok());
  // Leader 1 is cut off and appends entries nobody else gets: they can never commit.
  net.Isolate(1);
  ASSERT_TRUE(net.Propose(1, "x").ok());
  ASSERT_TRUE(net.Propose(1, "y").ok());
  ASSERT_TRUE(net.Propose(1, "z").ok());
  LogIndex old_last = net[1].last_index();
  net.Campaign(2);
  ASSERT_EQ(net[2].role(), Role::kLeader);
  ASSERT_TRUE(net.Propose(2, "b").ok());
  net.Heal();
  net.TickAll(2);  // 2's heartbeats make 1 a follower; its suffix is replaced
  EXPECT_EQ(net[1].role(), Role::kFollower);
  EXPECT_LT(net[1].last_index(), old_last);
  for (LogIndex i(1); i <= net[2].last_index(); ++i) {
    EXPECT_EQ(*net[1].EntryAt(i), *net[2].EntryAt(i)) << "index " << i;
  }
  for (int id : {1, 2, 3}) {
    EXPECT_EQ(net.AppliedData(id), (std::vector<std::string>{"a", "b"})) << "node " << id;
  }
  // The storage of node 1 was overwritten too: a restart brings back no "x".
  net.Restart(1);
  for (LogIndex i(1); i <= net[1].last_index(); ++i) EXPECT_NE(net[1].EntryAt(i)->data, "x");
}

TEST(RaftScenario, FastBackOffNeedsOneRoundTripPerTermNotPerEntry) {
  Network net(3);
  std::vector<uint64_t> leader_terms = {1}, follower_terms = {1};
  for (int i = 0; i < 50; ++i) leader_terms.push_back(3);
  for (int i = 0; i < 60; ++i) follower_terms.push_back(2);
  auto seed = [&](int id, const std::vector<uint64_t>& terms) {
    ASSERT_TRUE(net.storage(id).Append(EntriesWithTerms(terms)).ok());
    ASSERT_TRUE(net.storage(id).SaveHardState(HardState{Term(3), kNoNode, LogIndex(1)}).ok());
    ASSERT_TRUE(net.storage(id).Sync().ok());
    net.Start(id);
  };
  seed(1, leader_terms);
  seed(2, leader_terms);
  seed(3, follower_terms);
  net.Campaign(1);
  ASSERT_EQ(net[1].role(), Role::kLeader);
  net.TickAll(2);
  EXPECT_EQ(net[3].last_index(), net[1].last_index());
  EXPECT_EQ(net[3].TermAt(LogIndex(2)), Term(3));
  int rejections = 0;
  for (const Message& m : net.delivered()) {
    rejections += (m.type == MessageType::kAppendResponse && m.reject && m.from == NodeId(3));
  }
  EXPECT_LE(rejections, 3) << "60 divergent entries in one term should cost ~1 rejection";
}

TEST(RaftScenario, SnapshotBringsFarBehindFollowerUpToDate) {
  Network net(3);
  net.Campaign(1);
  net.Stop(3);
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(net.Propose(1, "e" + std::to_string(i)).ok());
  LogIndex applied = net[1].applied_index();
  ASSERT_EQ(applied, LogIndex(31));
  ASSERT_TRUE(net[1].CompactLog(applied, "state-at-31").ok());
  ASSERT_TRUE(net.storage(1).SaveSnapshot(*net[1].snapshot()).ok());
  EXPECT_EQ(net[1].first_index(), LogIndex(32));
  EXPECT_FALSE(net[1].CompactLog(applied + 5, "x").ok()) << "cannot compact beyond applied";
  ASSERT_TRUE(net.Propose(1, "after").ok());
  net.Start(3);
  net.TickAll(3);
  EXPECT_GE(CountDelivered(net, MessageType::kInstallSnapshot), 1);
  EXPECT_EQ(net[3].snapshot_index(), LogIndex(31));
  ASSERT_TRUE(net[3].snapshot().has_value());
  EXPECT_EQ(net[3].snapshot()->data, "state-at-31");
  EXPECT_EQ(net[3].last_index(), net[1].last_index());
  EXPECT_EQ(net[3].commit_index(), net[1].commit_index());
  // It applied the snapshot, then what came after it.
  EXPECT_EQ(net.AppliedData(3), std::vector<std::string>{"after"});
  // And its storage holds the snapshot durably.
  ASSERT_TRUE(net.storage(3).durable().snapshot.has_value());
  EXPECT_EQ(net.storage(3).durable().snapshot->metadata.index, LogIndex(31));
  // A restart comes back from the snapshot.
  net.Restart(3);
  EXPECT_EQ(net[3].snapshot_index(), LogIndex(31));
  EXPECT_EQ(net[3].last_index(), net[1].last_index());
}

TEST(RaftScenario, LeadershipTransferToUpToDateFollower) {
  Network net(3, WithPreVoteAndCheckQuorum);
  net.Campaign(1);
  ASSERT_TRUE(net.Propose(1, "a").ok());
  ASSERT_TRUE(net[1].TransferLeadership(NodeId(2)).ok());
  net.Settle();
  EXPECT_EQ(net[2].role(), Role::kLeader) << "the lease is bypassed for a transfer";
  EXPECT_EQ(net[2].term(), Term(2));
  EXPECT_EQ(net[1].role(), Role::kFollower);
  ASSERT_TRUE(net.Propose(2, "b").ok());
  for (int id : {1, 2, 3}) EXPECT_EQ(net.AppliedData(id), (std::vector<std::string>{"a", "b"}));
}

TEST(RaftScenario, LeadershipTransferWaitsForLaggingTargetToCatchUp) {
  Network net(3);
  net.Campaign(1);
  net.CutOneWay(1, 3);
  ASSERT_TRUE(net.Propose(1, "a").ok());
  ASSERT_TRUE(net.Propose(1, "b").ok());
  ASSERT_LT(net[3].last_index(), net[1].last_index());
  ASSERT_TRUE(net[1].TransferLeadership(NodeId(3)).ok());
  net.Settle();
  EXPECT_EQ(net[1].role(), Role::kLeader);
  auto refused = net[1].Propose("during");
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable) << "no proposals while transferring";
  net.Heal();
  net.TickAll(
      1);  // the heartbeat response reveals the lag; the leader catches 3 up, then hands over
  EXPECT_EQ(net[3].role(), Role::kLeader);
  EXPECT_EQ(net.AppliedData(3), (std::vector<std::string>{"a", "b"}));
}

TEST(RaftScenario, LeadershipTransferTimesOutIfTargetIsUnreachable) {
  Network net(3);
  net.Campaign(1);
  net.Isolate(3);
  ASSERT_TRUE(net[1].TransferLeadership(NodeId(3)).ok());
  net.Settle();
  EXPECT_FALSE(net[1].Propose("x").ok());
  net.Tick(1, 10);
  EXPECT_EQ(net[1].lead_transferee(), kNoNode);
  EXPECT_TRUE(net.Propose(1, "y").ok()) << "after the transfer times out proposals resume";
}

TEST(RaftScenario, ProposalToFollowerIsRefusedWithLeaderHint) {
  Network net(3);
  net.Campaign(2);
  auto r = net[1].Propose("x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("leader is 2"), std::string::npos) << r.status().message();
  EXPECT_EQ(net[1].leader(), NodeId(2));
}

TEST(RaftScenario, SingleNodeClusterCommitsAlone) {
  Network net(1);
  net.Campaign(1);
  ASSERT_EQ(net[1].role(), Role::kLeader);
  ASSERT_TRUE(net.Propose(1, "solo").ok());
  EXPECT_EQ(net.AppliedData(1), std::vector<std::string>{"solo"});
}

TEST(RaftScenario, RestartKeepsTermAndVoteSoNoSecondVoteInTheTerm) {
  Network net(3);
  ASSERT_TRUE(net[1].Step(Msg(MessageType::kVote, 2, 1, 5)).ok());
  net.Process();  // persisted with the vote
  net.Restart(1);
  EXPECT_EQ(net[1].term(), Term(5));
  EXPECT_EQ(net[1].vote(), NodeId(2));
  ASSERT_TRUE(net[1].Step(Msg(MessageType::kVote, 3, 1, 5)).ok());
  EXPECT_EQ(net[1].vote(), NodeId(2));
}

TEST(RaftScenario, UncommittedEntriesAreBounded) {
  Network net(3, [](RaftConfig& c) { c.max_uncommitted_entries = 4; });
  net.Campaign(1);
  net.Isolate(1);
  Status last;
  int accepted = 0;
  for (int i = 0; i < 10; ++i) {
    auto r = net[1].Propose("x");
    if (r.ok()) {
      ++accepted;
    } else {
      last = r.status();
    }
  }
  EXPECT_EQ(accepted, 4);  // the no-op committed before the isolation
  EXPECT_EQ(last.code(), StatusCode::kResourceExhausted);
}

TEST(RaftScenario, ReadyContractPersistBeforeSendAndOnlyCommittedApplied) {
  Network net(3);
  net.Campaign(1);
  // A proposal's entry is handed out to persist, with the appends to send, but not to apply.
  ASSERT_TRUE(net[1].Propose("p").ok());
  Ready rd = net[1].GetReady();
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_TRUE(rd.must_sync);
  EXPECT_FALSE(rd.messages.empty());
  EXPECT_TRUE(rd.committed_entries.empty());
  net[1].Advance();
}

// ---- MemoryRaftStorage ----

TEST(MemoryRaftStorage, CrashDropsUnsyncedWritesAndKeepsAnOrderedPrefix) {
  MemoryRaftStorage s;
  ASSERT_TRUE(s.Append(EntriesWithTerms({1, 1})).ok());
  ASSERT_TRUE(s.SaveHardState(HardState{Term(1), NodeId(1), LogIndex(1)}).ok());
  ASSERT_TRUE(s.Sync().ok());
  ASSERT_TRUE(s.Append({Entry{Term(2), LogIndex(3), EntryType::kNormal, "c"}}).ok());
  ASSERT_TRUE(s.SaveHardState(HardState{Term(2), NodeId(2), LogIndex(1)}).ok());
  s.Crash(/*keep_unsynced=*/1);
  auto st = s.Load();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->entries.size(), 3u) << "the first unsynced write reached the disk";
  EXPECT_EQ(st->hard_state.term, Term(1)) << "the second did not";
  s.Crash();
  EXPECT_EQ(s.Load()->entries.size(), 3u);
}

TEST(MemoryRaftStorage, AppendOverwritesSuffixAndSnapshotCompacts) {
  MemoryRaftStorage s;
  ASSERT_TRUE(s.Append(EntriesWithTerms({1, 1, 1, 1})).ok());
  ASSERT_TRUE(s.Append({Entry{Term(2), LogIndex(3), EntryType::kNormal, "new"}}).ok());
  EXPECT_EQ(s.Load()->entries.size(), 3u);
  EXPECT_EQ(s.Load()->entries[2].term, Term(2));
  // A snapshot of an entry we hold keeps the suffix after it.
  ASSERT_TRUE(
      s.SaveSnapshot(Snapshot{SnapshotMetadata{LogIndex(2), Term(1), Voters(3)}, "s"}).ok());
  auto st = s.Load();
  ASSERT_EQ(st->entries.size(), 1u);
  EXPECT_EQ(st->entries[0].index, LogIndex(3));
  // A snapshot beyond our log replaces it.
  ASSERT_TRUE(
      s.SaveSnapshot(Snapshot{SnapshotMetadata{LogIndex(9), Term(4), Voters(3)}, "t"}).ok());
  st = s.Load();
  EXPECT_TRUE(st->entries.empty());
  EXPECT_EQ(st->snapshot->metadata.index, LogIndex(9));
  EXPECT_EQ(st->hard_state.commit, LogIndex(9));
}

}  // namespace
}  // namespace rill::raft::testing
