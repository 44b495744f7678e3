// One test per claim of the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable
// Consensus Algorithm", extended version), in the manner of etcd-raft's raft_paper_test.go.
// Section numbers refer to the paper.

#include <algorithm>

#include "raft_test_util.h"

namespace rill::raft::testing {
namespace {

std::vector<Message> OfType(const std::vector<Message>& msgs, MessageType t) {
  std::vector<Message> out;
  for (const Message& m : msgs) {
    if (m.type == t) out.push_back(m);
  }
  return out;
}

// §5.1: "If one server's current term is smaller than the other's, then it updates its current
// term to the larger value. If a candidate or leader discovers that its term is out of date, it
// immediately reverts to follower state."
TEST(RaftPaper, AnyRoleUpdatesTermAndBecomesFollowerOnHigherTerm) {
  for (Role start : {Role::kFollower, Role::kCandidate, Role::kLeader}) {
    auto n = NewNode(TestConfig(1, 3));
    if (start == Role::kCandidate) n->Campaign();
    if (start == Role::kLeader) MakeLeader(*n);
    ASSERT_EQ(n->role(), start);
    Message m = Msg(MessageType::kAppend, 2, 1, 7);
    ASSERT_TRUE(n->Step(m).ok());
    EXPECT_EQ(n->term(), Term(7)) << RoleName(start);
    EXPECT_EQ(n->role(), Role::kFollower) << RoleName(start);
    EXPECT_EQ(n->leader(), NodeId(2)) << RoleName(start);
  }
}

// §5.1: "If a server receives a request with a stale term number, it rejects the request."
TEST(RaftPaper, RejectsRequestWithStaleTerm) {
  auto n = NewNode(TestConfig(1, 3),
                   RaftInitialState{HardState{Term(5), kNoNode, LogIndex(0)}, std::nullopt, {}});
  Message m = Msg(MessageType::kAppend, 2, 1, 4);
  m.entries = {Entry{Term(4), LogIndex(1), EntryType::kNormal, "stale"}};
  ASSERT_TRUE(n->Step(m).ok());
  EXPECT_EQ(n->last_index(), LogIndex(0)) << "stale entries must not be appended";
  EXPECT_EQ(n->leader(), kNoNode);
  Message v = Msg(MessageType::kVote, 3, 1, 4);
  ASSERT_TRUE(n->Step(v).ok());
  EXPECT_EQ(n->vote(), kNoNode) << "no vote for a candidate of a stale term";
  EXPECT_EQ(n->term(), Term(5));
}

// §5.2: "When servers start up, they begin as followers."
TEST(RaftPaper, StartsAsFollower) {
  auto n = NewNode(TestConfig(1, 3));
  EXPECT_EQ(n->role(), Role::kFollower);
  EXPECT_EQ(n->term(), Term(0));
}

// §5.2: "Leaders send periodic heartbeats to all followers in order to maintain their
// authority."
TEST(RaftPaper, LeaderBroadcastsHeartbeatEveryHeartbeatTick) {
  RaftConfig c = TestConfig(1, 3);
  c.heartbeat_tick = 2;
  auto n = NewNode(c);
  MakeLeader(*n);
  n->Tick();
  EXPECT_TRUE(OfType(ReadMessages(*n), MessageType::kHeartbeat).empty());
  n->Tick();
  auto hb = OfType(ReadMessages(*n), MessageType::kHeartbeat);
  ASSERT_EQ(hb.size(), 2u);
  EXPECT_EQ(hb[0].to, NodeId(2));
  EXPECT_EQ(hb[1].to, NodeId(3));
  EXPECT_EQ(hb[0].term, n->term());
}

// §5.2: "If a follower receives no communication over a period of time called the election
// timeout, then it ... begins an election": it increments its term, votes for itself and sends
// RequestVote to every other server.
TEST(RaftPaper, FollowerStartsElectionAfterTimeout) {
  auto n = NewNode(TestConfig(1, 3));
  for (int i = 0; i < 2 * 10; ++i) n->Tick();
  EXPECT_EQ(n->role(), Role::kCandidate);
  EXPECT_EQ(n->term(), Term(1));
  EXPECT_EQ(n->vote(), NodeId(1));
  auto votes = OfType(ReadMessages(*n), MessageType::kVote);
  ASSERT_EQ(votes.size(), 2u);
  for (const Message& m : votes) {
    EXPECT_EQ(m.term, Term(1));
    EXPECT_EQ(m.log_index, LogIndex(0));
  }
}

// §5.2: "A candidate wins an election if it receives votes from a majority of the servers in
// the full cluster for the same term."
TEST(RaftPaper, CandidateBecomesLeaderOnlyWithMajority) {
  struct Case {
    int size;
    std::map<int, bool> votes;
    Role want;
  };
  std::vector<Case> cases = {
      {1, {}, Role::kLeader},
      {3, {{2, true}, {3, true}}, Role::kLeader},
      {3, {{2, true}}, Role::kLeader},
      {5, {{2, true}, {3, true}, {4, true}, {5, true}}, Role::kLeader},
      {5, {{2, true}, {3, true}}, Role::kLeader},
      {3, {{2, false}, {3, false}}, Role::kFollower},
      {5, {{2, false}, {3, false}, {4, false}}, Role::kFollower},
      {5, {{2, true}}, Role::kCandidate},
      {5, {{2, true}, {3, false}}, Role::kCandidate},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    auto n = NewNode(TestConfig(1, cases[i].size));
    n->Campaign();
    for (auto [from, granted] : cases[i].votes) {
      Message m = Msg(MessageType::kVoteResponse, from, 1, 1);
      m.reject = !granted;
      ASSERT_TRUE(n->Step(m).ok());
    }
    EXPECT_EQ(n->role(), cases[i].want) << "case " << i;
    EXPECT_EQ(n->term(), Term(1)) << "case " << i;
  }
}

// §5.2: "Each server will vote for at most one candidate in a given term, on a first-come-first-
// served basis."
TEST(RaftPaper, FollowerVotesAtMostOncePerTerm) {
  struct Case {
    NodeId voted;
    int candidate;
    bool reject;
  };
  std::vector<Case> cases = {{kNoNode, 2, false},   {kNoNode, 3, false},  {NodeId(2), 2, false},
                             {NodeId(3), 3, false}, {NodeId(2), 3, true}, {NodeId(3), 2, true}};
  for (const Case& c : cases) {
    auto n = NewNode(TestConfig(1, 3),
                     RaftInitialState{HardState{Term(1), c.voted, LogIndex(0)}, std::nullopt, {}});
    ASSERT_TRUE(n->Step(Msg(MessageType::kVote, c.candidate, 1, 1)).ok());
    auto r = OfType(ReadMessages(*n), MessageType::kVoteResponse);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].reject, c.reject) << "voted " << c.voted << " candidate " << c.candidate;
  }
  // And the vote is durable before it is sent: the Ready that carries the grant carries the vote.
  auto n = NewNode(TestConfig(1, 3));
  ASSERT_TRUE(n->Step(Msg(MessageType::kVote, 2, 1, 1)).ok());
  Ready rd = Drain(*n);
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote, NodeId(2));
  EXPECT_TRUE(rd.must_sync);
  ASSERT_EQ(rd.messages.size(), 1u);
}

// §5.2: "While waiting for votes, a candidate may receive an AppendEntries RPC from another
// server claiming to be leader. If the leader's term is at least as large as the candidate's
// current term, then the candidate ... returns to follower state."
TEST(RaftPaper, CandidateFallsBackOnAppendFromLeaderOfSameTerm) {
  auto n = NewNode(TestConfig(1, 3));
  n->Campaign();
  ASSERT_EQ(n->role(), Role::kCandidate);
  ASSERT_TRUE(n->Step(Msg(MessageType::kAppend, 2, 1, n->term().value())).ok());
  EXPECT_EQ(n->role(), Role::kFollower);
  EXPECT_EQ(n->leader(), NodeId(2));
  EXPECT_EQ(n->term(), Term(1));
}

// §5.2: "Raft uses randomized election timeouts ... chosen randomly from a fixed interval".
TEST(RaftPaper, ElectionTimeoutIsRandomizedInElectionTickToTwiceIt) {
  std::set<int> seen;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    RaftConfig c = TestConfig(1, 3);
    c.random_seed = seed;
    auto n = NewNode(c);
    int ticks = 0;
    while (n->role() == Role::kFollower && ticks < 100) {
      n->Tick();
      ++ticks;
    }
    seen.insert(ticks);
  }
  EXPECT_EQ(*seen.begin(), 10);
  EXPECT_EQ(*seen.rbegin(), 19);
  EXPECT_GE(seen.size(), 8u) << "timeouts should spread over [election_tick, 2*election_tick)";
}

// §5.3: "The leader appends the command to its log as a new entry, then issues AppendEntries
// RPCs in parallel to each of the other servers to replicate the entry."
TEST(RaftPaper, LeaderAppendsProposalAndReplicatesIt) {
  auto n = NewNode(TestConfig(1, 3));
  MakeLeader(*n);  // log: [noop@1]
  // Followers acknowledge the no-op so they enter pipelined replication.
  for (int f : {2, 3}) {
    Message ack = Msg(MessageType::kAppendResponse, f, 1, 1);
    ack.log_index = LogIndex(1);
    ASSERT_TRUE(n->Step(ack).ok());
  }
  Drain(*n);
  auto idx = n->Propose("cmd");
  ASSERT_TRUE(idx.ok());
  EXPECT_EQ(*idx, LogIndex(2));
  Ready rd = Drain(*n);
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(rd.entries[0].data, "cmd");
  EXPECT_TRUE(rd.must_sync);
  auto apps = OfType(rd.messages, MessageType::kAppend);
  ASSERT_EQ(apps.size(), 2u);
  for (const Message& m : apps) {
    EXPECT_EQ(m.log_index, LogIndex(1));
    EXPECT_EQ(m.log_term, Term(1));
    ASSERT_EQ(m.entries.size(), 1u);
    EXPECT_EQ(m.entries[0].data, "cmd");
  }
  EXPECT_TRUE(rd.committed_entries.empty() || rd.committed_entries.back().index < LogIndex(2));
}

// §5.3: "A log entry is committed once the leader that created the entry has replicated it on
// a majority of the servers", and the leader then applies it.
TEST(RaftPaper, LeaderCommitsEntryReplicatedOnMajority) {
  for (int size : {3, 5}) {
    auto n = NewNode(TestConfig(1, size));
    MakeLeader(*n);
    ASSERT_TRUE(n->Propose("x").ok());
    Drain(*n);
    int acks_needed = size / 2;  // plus the leader itself
    for (int f = 2; f < 2 + acks_needed; ++f) {
      EXPECT_EQ(n->commit_index(), LogIndex(0)) << "committed before a majority acked";
      Message ack = Msg(MessageType::kAppendResponse, f, 1, 1);
      ack.log_index = LogIndex(2);
      ASSERT_TRUE(n->Step(ack).ok());
    }
    EXPECT_EQ(n->commit_index(), LogIndex(2)) << "size " << size;
    Ready rd = Drain(*n);
    ASSERT_EQ(rd.committed_entries.size(), 2u);
    EXPECT_EQ(rd.committed_entries[1].data, "x");
  }
}

// §5.3: "This also commits all preceding entries in the leader's log, including entries created
// by previous leaders."
TEST(RaftPaper, CommittingAnEntryCommitsPrecedingEntriesOfEarlierTerms) {
  RaftInitialState init{HardState{Term(2), kNoNode, LogIndex(0)}, std::nullopt,
                        EntriesWithTerms({1, 2})};
  auto n = NewNode(TestConfig(1, 3), init);
  MakeLeader(*n);  // term 3, appends no-op at 3
  ASSERT_EQ(n->last_index(), LogIndex(3));
  Message ack = Msg(MessageType::kAppendResponse, 2, 1, 3);
  ack.log_index = LogIndex(3);
  ASSERT_TRUE(n->Step(ack).ok());
  EXPECT_EQ(n->commit_index(), LogIndex(3));
  Ready rd = Drain(*n);
  ASSERT_EQ(rd.committed_entries.size(), 3u);
  EXPECT_EQ(rd.committed_entries[0].term, Term(1));
  EXPECT_EQ(rd.committed_entries[1].term, Term(2));
}

// §5.3: "Once a follower learns that a log entry is committed, it applies the entry to its local
// state machine (in log order)."
TEST(RaftPaper, FollowerAppliesWhatLeaderCommitted) {
  auto n = NewNode(TestConfig(1, 3));
  Message m = Msg(MessageType::kAppend, 2, 1, 1);
  m.entries = {Entry{Term(1), LogIndex(1), EntryType::kNormal, "a"},
               Entry{Term(1), LogIndex(2), EntryType::kNormal, "b"}};
  m.commit = LogIndex(1);
  ASSERT_TRUE(n->Step(m).ok());
  EXPECT_EQ(n->commit_index(), LogIndex(1));
  Ready rd = Drain(*n);
  ASSERT_EQ(rd.entries.size(), 2u);
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  EXPECT_EQ(rd.committed_entries[0].data, "a");
}

// §5.3: "If the follower does not find an entry in its log with the same index and term [as
// prevLogIndex/prevLogTerm], then it refuses the new entries."
TEST(RaftPaper, FollowerRejectsAppendWhosePreviousEntryDoesNotMatch) {
  RaftInitialState init{HardState{Term(3), kNoNode, LogIndex(1)}, std::nullopt,
                        EntriesWithTerms({1, 2, 3})};
  struct Case {
    uint64_t prev_index, prev_term;
    bool reject;
  };
  std::vector<Case> cases = {{0, 0, false}, {1, 1, false}, {2, 2, false}, {3, 3, false},
                             {2, 1, true},  {3, 2, true},  {4, 3, true}};
  for (const Case& c : cases) {
    auto n = NewNode(TestConfig(1, 3), init);
    Message m = Msg(MessageType::kAppend, 2, 1, 3);
    m.log_index = LogIndex(c.prev_index);
    m.log_term = Term(c.prev_term);
    ASSERT_TRUE(n->Step(m).ok());
    auto r = OfType(ReadMessages(*n), MessageType::kAppendResponse);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].reject, c.reject) << c.prev_index << "/" << c.prev_term;
  }
}

// §5.3: "If an existing entry conflicts with a new one (same index but different terms), delete
// the existing entry and all that follow it; append any new entries not already in the log."
TEST(RaftPaper, FollowerDeletesConflictingSuffixAndAppends) {
  RaftInitialState init{HardState{Term(3), kNoNode, LogIndex(0)}, std::nullopt,
                        EntriesWithTerms({1, 2, 2})};
  auto n = NewNode(TestConfig(1, 3), init);
  Message m = Msg(MessageType::kAppend, 2, 1, 3);
  m.log_index = LogIndex(1);
  m.log_term = Term(1);
  m.entries = {Entry{Term(3), LogIndex(2), EntryType::kNormal, "new"}};
  ASSERT_TRUE(n->Step(m).ok());
  EXPECT_EQ(n->last_index(), LogIndex(2));
  EXPECT_EQ(n->TermAt(LogIndex(2)), Term(3));
  Ready rd = Drain(*n);
  ASSERT_EQ(rd.entries.size(), 1u) << "the driver must overwrite from index 2";
  EXPECT_EQ(rd.entries[0].index, LogIndex(2));
  // A duplicate of an older append does not truncate what matches.
  Message old = m;
  old.entries = {};
  ASSERT_TRUE(n->Step(old).ok());
  EXPECT_EQ(n->last_index(), LogIndex(2));
}

// §5.3: the leader brings every follower's log, whatever it holds, to match its own.
TEST(RaftPaper, LeaderMakesEveryFollowerLogMatchItsOwn) {
  // Figure 7 (a)-(f): followers with missing and extraneous entries.
  std::vector<std::vector<uint64_t>> followers = {{1, 1, 1, 4, 4, 5, 5, 6, 6},
                                                  {1, 1, 1, 4},
                                                  {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},
                                                  {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},
                                                  {1, 1, 1, 4, 4, 4, 4},
                                                  {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}};
  for (size_t i = 0; i < followers.size(); ++i) {
    Network net(3);
    RaftInitialState leader_state{HardState{Term(8), kNoNode, LogIndex(0)}, std::nullopt,
                                  EntriesWithTerms({1, 1, 1, 4, 4, 5, 5, 6, 6, 6})};
    RaftInitialState follower_state{HardState{Term(7), kNoNode, LogIndex(0)}, std::nullopt,
                                    EntriesWithTerms(followers[i])};
    ASSERT_TRUE(net.storage(1).Append(leader_state.entries).ok());
    ASSERT_TRUE(net.storage(1).SaveHardState(leader_state.hard_state).ok());
    ASSERT_TRUE(net.storage(2).Append(follower_state.entries).ok());
    ASSERT_TRUE(net.storage(2).SaveHardState(follower_state.hard_state).ok());
    ASSERT_TRUE(net.storage(3).Append(leader_state.entries).ok());  // a voter like the leader
    ASSERT_TRUE(net.storage(3).SaveHardState(leader_state.hard_state).ok());
    for (int id : {1, 2, 3}) {
      ASSERT_TRUE(net.storage(id).Sync().ok());
      net.Start(id);
    }
    net.Campaign(1);
    ASSERT_EQ(net[1].role(), Role::kLeader) << "case " << i;
    net.TickAll(3);
    ASSERT_EQ(net[2].last_index(), net[1].last_index()) << "case " << i;
    for (LogIndex j(1); j <= net[1].last_index(); ++j) {
      EXPECT_EQ(net[2].TermAt(j), net[1].TermAt(j)) << "case " << i << " index " << j;
    }
  }
}

// §5.4.1: "The voter denies its vote if its own log is more up-to-date than that of the
// candidate": later last term wins; with equal terms, the longer log.
TEST(RaftPaper, VoterDeniesCandidateWithLessUpToDateLog) {
  RaftInitialState init{HardState{Term(2), kNoNode, LogIndex(0)}, std::nullopt,
                        EntriesWithTerms({1, 2})};
  struct Case {
    uint64_t last_index, last_term;
    bool reject;
  };
  std::vector<Case> cases = {{2, 2, false}, {3, 2, false}, {1, 3, false}, {1, 2, true},
                             {3, 1, true},  {2, 1, true},  {0, 0, true}};
  for (const Case& c : cases) {
    auto n = NewNode(TestConfig(1, 3), init);
    Message m = Msg(MessageType::kVote, 2, 1, 3);
    m.log_index = LogIndex(c.last_index);
    m.log_term = Term(c.last_term);
    ASSERT_TRUE(n->Step(m).ok());
    auto r = OfType(ReadMessages(*n), MessageType::kVoteResponse);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r[0].reject, c.reject) << c.last_index << "/" << c.last_term;
  }
}

// §5.4.2: "Raft never commits log entries from previous terms by counting replicas. Only log
// entries from the leader's current term are committed by counting replicas."
TEST(RaftPaper, LeaderCommitsOnlyCurrentTermEntriesByCounting) {
  RaftInitialState init{HardState{Term(2), kNoNode, LogIndex(0)}, std::nullopt,
                        EntriesWithTerms({1, 2})};
  auto n = NewNode(TestConfig(1, 3), init);
  MakeLeader(*n);  // term 3; no-op at index 3
  // A majority holds index 2 (a term-2 entry): not committed.
  Message ack = Msg(MessageType::kAppendResponse, 2, 1, 3);
  ack.log_index = LogIndex(2);
  ASSERT_TRUE(n->Step(ack).ok());
  EXPECT_EQ(n->commit_index(), LogIndex(0));
  // Once the term-3 no-op is on a majority, it and everything before it commit.
  ack.log_index = LogIndex(3);
  ASSERT_TRUE(n->Step(ack).ok());
  EXPECT_EQ(n->commit_index(), LogIndex(3));
}

// §5.3 Leader Append-Only: "a leader never overwrites or deletes entries in its log".
TEST(RaftPaper, LeaderNeverOverwritesItsLog) {
  auto n = NewNode(TestConfig(1, 3));
  MakeLeader(*n);
  ASSERT_TRUE(n->Propose("a").ok());
  ASSERT_TRUE(n->Propose("b").ok());
  std::vector<Entry> before;
  for (LogIndex i(1); i <= n->last_index(); ++i) before.push_back(*n->EntryAt(i));
  // An append of the same term from a "peer" (impossible in a correct cluster) and stale
  // appends are ignored by a leader.
  Message m = Msg(MessageType::kAppend, 2, 1, n->term().value());
  m.entries = {Entry{n->term(), LogIndex(1), EntryType::kNormal, "evil"}};
  ASSERT_TRUE(n->Step(m).ok());
  Message stale = Msg(MessageType::kAppend, 2, 1, 0);
  stale.entries = m.entries;
  ASSERT_TRUE(n->Step(stale).ok());
  EXPECT_EQ(n->role(), Role::kLeader);
  std::vector<Entry> after;
  for (LogIndex i(1); i <= n->last_index(); ++i) after.push_back(*n->EntryAt(i));
  EXPECT_EQ(before, after);
}

// §5.2 Election Safety: "at most one leader can be elected in a given term", here with every
// node campaigning at once, over many seeds, on an unreliable network.
TEST(RaftPaper, AtMostOneLeaderPerTermWhenEveryoneCampaigns) {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    Network net(5, [seed](RaftConfig& c) { c.random_seed = seed * 31 + c.id.value(); });
    std::map<uint64_t, int> leader_of_term;
    for (int round = 0; round < 40; ++round) {
      for (int id = 1; id <= 5; ++id) net[id].Campaign();
      net.Settle();
      for (int id = 1; id <= 5; ++id) {
        if (net[id].role() != Role::kLeader) continue;
        auto [it, fresh] = leader_of_term.emplace(net[id].term().value(), id);
        EXPECT_EQ(it->second, id) << "two leaders in term " << net[id].term() << " seed " << seed;
      }
      net.TickAll(1 + static_cast<int>(seed % 5));
    }
  }
}

// §5.4.3 Leader Completeness and State Machine Safety: after leaders change (with crashes that
// lose only unsynced data), every node applies the same sequence and no committed entry is lost.
TEST(RaftPaper, LeaderCompletenessAndStateMachineSafetyAcrossLeaderChanges) {
  Network net(3);
  net.Campaign(1);
  ASSERT_TRUE(net.Propose(1, "a").ok());
  ASSERT_TRUE(net.Propose(1, "b").ok());
  net.Isolate(1);
  net.Campaign(2);
  ASSERT_EQ(net[2].role(), Role::kLeader);
  for (const char* d : {"a", "b"}) {
    auto data = net.AppliedData(2);
    EXPECT_NE(std::find(data.begin(), data.end(), d), data.end()) << "lost committed " << d;
  }
  ASSERT_TRUE(net.Propose(2, "c").ok());
  net.Heal();
  net.Restart(3);
  net.Campaign(3);
  ASSERT_EQ(net[3].role(), Role::kLeader);
  ASSERT_TRUE(net.Propose(3, "d").ok());
  net.TickAll(2);
  std::vector<std::string> want = {"a", "b", "c", "d"};
  for (int id : {1, 2}) EXPECT_EQ(net.AppliedData(id), want) << "node " << id;
  // Node 3 restarted: it re-applies from the start of its log.
  EXPECT_EQ(net.AppliedData(3), want);
}

}  // namespace
}  // namespace rill::raft::testing
