// Unit tests for the partition leader/follower (ISR) state machines: one test per rule of
// partition_replica.h.

#include "rill/replication/partition_replica.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace rill::replication {
namespace {

using Kind = FetchDecision::Kind;

LeaderEpoch E(int32_t e) { return LeaderEpoch(e); }
Offset O(int64_t o) { return Offset(o); }
NodeId N(int32_t n) { return NodeId(n); }
std::vector<NodeId> Ids(std::vector<int32_t> v) {
  std::vector<NodeId> ids;
  for (int32_t i : v) ids.push_back(N(i));
  return ids;
}
std::vector<NodeId> Sorted(std::vector<NodeId> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// ---- EndOffsetForEpoch / LastEpochBefore ------------------------------------------------------

// Epoch 1 wrote [0, 10), epoch 3 wrote [10, 25), epoch 4 from 25 to the log end (30).
const std::vector<EpochEntry> kHistory = {{E(1), O(0)}, {E(3), O(10)}, {E(4), O(25)}};

TEST(EndOffsetForEpoch, LatestEpochEndsAtLogEnd) {
  EXPECT_EQ(EndOffsetForEpoch(kHistory, E(4), O(30)), (EpochEndOffset{E(4), O(30)}));
}

TEST(EndOffsetForEpoch, LaterThanLatestAnswersLatestAtLogEnd) {
  EXPECT_EQ(EndOffsetForEpoch(kHistory, E(9), O(30)), (EpochEndOffset{E(4), O(30)}));
}

TEST(EndOffsetForEpoch, OlderEpochEndsWhereTheNextStarts) {
  EXPECT_EQ(EndOffsetForEpoch(kHistory, E(1), O(30)), (EpochEndOffset{E(1), O(10)}));
  EXPECT_EQ(EndOffsetForEpoch(kHistory, E(3), O(30)), (EpochEndOffset{E(3), O(25)}));
}

TEST(EndOffsetForEpoch, UnknownEpochAnswersTheLargestSmallerOne) {
  // Epoch 2 never led here: epoch 1 is the largest <= 2, and it ends where epoch 3 starts.
  EXPECT_EQ(EndOffsetForEpoch(kHistory, E(2), O(30)), (EpochEndOffset{E(1), O(10)}));
}

TEST(EndOffsetForEpoch, OlderThanEveryEntryAnswersTheFirstStart) {
  const std::vector<EpochEntry> h = {{E(5), O(100)}, {E(7), O(120)}};
  EXPECT_EQ(EndOffsetForEpoch(h, E(2), O(130)), (EpochEndOffset{E(2), O(100)}));
}

TEST(EndOffsetForEpoch, EmptyHistoryOrNegativeEpochIsUnknown) {
  EXPECT_EQ(EndOffsetForEpoch({}, E(3), O(0)), (EpochEndOffset{E(-1), O(-1)}));
  EXPECT_EQ(EndOffsetForEpoch(kHistory, E(-1), O(30)), (EpochEndOffset{E(-1), O(-1)}));
}

TEST(EndOffsetForEpoch, StampedEpochWithoutBatchesEndsAtLogEnd) {
  // A new leader stamps its epoch at its log end before writing anything.
  const std::vector<EpochEntry> h = {{E(1), O(0)}, {E(2), O(10)}};
  EXPECT_EQ(EndOffsetForEpoch(h, E(2), O(10)), (EpochEndOffset{E(2), O(10)}));
  EXPECT_EQ(EndOffsetForEpoch(h, E(1), O(10)), (EpochEndOffset{E(1), O(10)}));
}

TEST(LastEpochBefore, EpochOfTheLastBatch) {
  EXPECT_EQ(LastEpochBefore(kHistory, O(30)), E(4));
  EXPECT_EQ(LastEpochBefore(kHistory, O(25)), E(3));
  EXPECT_EQ(LastEpochBefore(kHistory, O(11)), E(3));
  EXPECT_EQ(LastEpochBefore(kHistory, O(10)), E(1));
  EXPECT_EQ(LastEpochBefore(kHistory, O(0)), E(-1));
  EXPECT_EQ(LastEpochBefore({}, O(5)), E(-1));
}

// ---- LeaderReplica ----------------------------------------------------------------------------

ReplicaConfig Config(int min_isr = 2) {
  ReplicaConfig c;
  c.replica_lag_time_max_ms = 1000;
  c.min_insync_replicas = min_isr;
  return c;
}

// Leader 1 of epoch 5 over replicas {1,2,3}, all in the ISR; epoch 5 starts at `log_end`.
LeaderReplica MakeLeader(int64_t log_end = 10, int64_t hw = 0, std::vector<int32_t> isr = {1, 2, 3},
                         int64_t now_ms = 0) {
  return LeaderReplica(N(1), E(5), Ids({1, 2, 3}), Ids(isr), O(log_end), O(log_end), O(hw), now_ms,
                       Config());
}

FollowerFetch Fetch(int32_t follower, int64_t offset, int64_t durable, int32_t last_epoch = 5,
                    int32_t current_epoch = 5) {
  FollowerFetch f;
  f.follower = N(follower);
  f.current_leader_epoch = E(current_epoch);
  f.fetch_offset = O(offset);
  f.last_fetched_epoch = E(last_epoch);
  f.durable_end = O(durable);
  return f;
}

// What the broker passes for a follower whose last epoch is the leader's: {5, leader log end}.
EpochEndOffset Same(int64_t leader_log_end) { return {E(5), O(leader_log_end)}; }

TEST(LeaderReplica, HighWatermarkIsTheSmallestDurableEndOverTheIsr) {
  LeaderReplica l = MakeLeader(10, 0);
  EXPECT_EQ(l.high_watermark(), O(0));
  EXPECT_EQ(l.OnFetch(Fetch(2, 10, 8), Same(10), O(0), 1).kind, Kind::kRead);
  EXPECT_EQ(l.high_watermark(), O(0)) << "follower 3 has not reported";
  l.OnFetch(Fetch(3, 10, 6), Same(10), O(0), 1);
  EXPECT_EQ(l.high_watermark(), O(6));
  l.OnFetch(Fetch(3, 10, 10), Same(10), O(0), 2);
  EXPECT_EQ(l.high_watermark(), O(8));
}

TEST(LeaderReplica, HighWatermarkCountsTheLeadersOwnDurableEnd) {
  LeaderReplica l(N(1), E(5), Ids({1, 2, 3}), Ids({1, 2, 3}), O(10), O(4), O(0), 0, Config());
  l.OnLocalAppend(O(12));
  l.OnFetch(Fetch(2, 12, 12), Same(12), O(0), 1);
  l.OnFetch(Fetch(3, 12, 12), Same(12), O(0), 1);
  EXPECT_EQ(l.high_watermark(), O(4));
  l.OnLocalDurable(O(11));
  EXPECT_EQ(l.high_watermark(), O(11));
}

TEST(LeaderReplica, FollowerDurableEndIsCappedAtItsFetchOffset) {
  // A durable end beyond the fetch offset says nothing about entries the leader has not
  // matched against its log.
  LeaderReplica l = MakeLeader(10, 0, {1, 2});
  l.OnFetch(Fetch(2, 7, 9), Same(10), O(0), 1);
  EXPECT_EQ(l.high_watermark(), O(7));
}

TEST(LeaderReplica, HighWatermarkIgnoresReplicasOutsideTheIsr) {
  LeaderReplica l = MakeLeader(10, 0, {1, 2});
  l.OnFetch(Fetch(2, 10, 10), Same(10), O(0), 1);
  EXPECT_EQ(l.high_watermark(), O(10)) << "follower 3 is not in the ISR";
}

TEST(LeaderReplica, HighWatermarkNeverMovesBack) {
  LeaderReplica l = MakeLeader(10, 0, {1, 2});
  l.OnFetch(Fetch(2, 10, 9), Same(10), O(0), 1);
  EXPECT_EQ(l.high_watermark(), O(9));
  // The follower truncated (or a reordered older fetch arrived): lower durable end.
  l.OnFetch(Fetch(2, 5, 5), Same(10), O(0), 2);
  EXPECT_EQ(l.high_watermark(), O(9));
  // A starting hw above what the ISR holds is kept too.
  LeaderReplica l2 = MakeLeader(10, 7);
  EXPECT_EQ(l2.high_watermark(), O(7));
}

TEST(LeaderReplica, MaximalIsrDuringShrinkCountsTheLeavingMember) {
  LeaderReplica l = MakeLeader(10, 0);
  l.OnFetch(Fetch(2, 10, 10), Same(10), O(0), 1);
  l.OnFetch(Fetch(3, 10, 3), Same(10), O(0), 1);
  ASSERT_EQ(l.high_watermark(), O(3));
  l.OnIsrChangeSent(Ids({1, 2}));
  EXPECT_TRUE(l.isr_change_in_flight());
  EXPECT_EQ(Sorted(l.maximal_isr()), Ids({1, 2, 3}));
  EXPECT_EQ(l.high_watermark(), O(3)) << "3 counts until the controller commits the shrink";
  l.OnIsrCommitted(Ids({1, 2}));
  EXPECT_FALSE(l.isr_change_in_flight());
  EXPECT_EQ(Sorted(l.maximal_isr()), Ids({1, 2}));
  EXPECT_EQ(l.high_watermark(), O(10));
}

TEST(LeaderReplica, MaximalIsrDuringExpandCountsTheJoiningMemberAtOnce) {
  LeaderReplica l = MakeLeader(10, 0, {1, 2});
  l.OnFetch(Fetch(3, 10, 10), Same(10), O(0), 1);
  l.OnIsrChangeSent(Ids({1, 2, 3}));
  EXPECT_EQ(Sorted(l.maximal_isr()), Ids({1, 2, 3}));
  l.OnLocalAppend(O(20));
  l.OnLocalDurable(O(20));
  l.OnFetch(Fetch(2, 20, 20), Same(20), O(0), 2);
  EXPECT_EQ(l.high_watermark(), O(10)) << "3 (joining) holds only 10";
  l.OnFetch(Fetch(3, 20, 15), Same(20), O(0), 2);
  EXPECT_EQ(l.high_watermark(), O(15));
}

TEST(LeaderReplica, FailedChangeRestoresTheCommittedIsr) {
  LeaderReplica l = MakeLeader(10, 0, {1, 2});
  l.OnIsrChangeSent(Ids({1, 2, 3}));
  l.OnIsrChangeFailed();
  EXPECT_FALSE(l.isr_change_in_flight());
  EXPECT_EQ(Sorted(l.maximal_isr()), Ids({1, 2}));
}

TEST(LeaderReplica, CaughtUpWhenDurableEndReachesTheLogEnd) {
  LeaderReplica l = MakeLeader(10, 0);
  l.OnFetch(Fetch(2, 10, 10), Same(10), O(0), 500);
  auto f = l.followers();
  ASSERT_EQ(f[0].id, N(2));
  EXPECT_EQ(f[0].last_caught_up_ms, 500);
  EXPECT_EQ(f[0].durable_end, O(10));
  EXPECT_TRUE(f[0].in_isr);
}

TEST(LeaderReplica, CaughtUpAtThePreviousFetchWhenItReachesTheEndThen) {
  LeaderReplica l = MakeLeader(10, 0);
  l.OnFetch(Fetch(2, 10, 10), Same(10), O(0), 100);  // caught up at 100; leader end 10
  l.OnLocalAppend(O(20));
  l.OnFetch(Fetch(2, 10, 10), Same(20), O(0), 300);  // leader end 20 now: behind, but has 10
  EXPECT_EQ(l.followers()[0].last_caught_up_ms, 100);
  l.OnLocalAppend(O(30));
  l.OnFetch(Fetch(2, 20, 20), Same(30), O(0), 700);  // reached the end of its previous fetch
  EXPECT_EQ(l.followers()[0].last_caught_up_ms, 300);
  l.OnFetch(Fetch(2, 25, 25), Same(30), O(0), 900);  // below 30, the previous fetch's end
  EXPECT_EQ(l.followers()[0].last_caught_up_ms, 300);
}

TEST(LeaderReplica, CaughtUpCountsTheDurableEndNotTheFetchOffset) {
  LeaderReplica l = MakeLeader(10, 0);
  l.OnFetch(Fetch(2, 10, 4), Same(10), O(0), 100);  // has all of it, not durably
  EXPECT_EQ(l.followers()[0].last_caught_up_ms, 0) << "ISR member since the epoch start (0)";
}

TEST(LeaderReplica, ShrinksAFollowerNotCaughtUpForTheLagTime) {
  LeaderReplica l = MakeLeader(10, 0);
  l.OnFetch(Fetch(2, 10, 10), Same(10), O(0), 900);
  l.OnFetch(Fetch(3, 10, 10), Same(10), O(0), 100);
  EXPECT_EQ(l.WantedIsr(1000), std::nullopt);
  EXPECT_EQ(l.WantedIsr(1100), std::nullopt) << "exactly the lag time is still in";
  auto want = l.WantedIsr(1101);
  ASSERT_TRUE(want.has_value());
  EXPECT_EQ(Sorted(*want), Ids({1, 2}));
}

TEST(LeaderReplica, ShrinksAFollowerThatNeverFetched) {
  LeaderReplica l = MakeLeader(10, 0, {1, 2, 3}, /*now_ms=*/5000);
  l.OnFetch(Fetch(2, 10, 10), Same(10), O(0), 5900);
  EXPECT_EQ(l.WantedIsr(6000), std::nullopt) << "a full lag time from the epoch start";
  auto want = l.WantedIsr(6001);
  ASSERT_TRUE(want.has_value());
  EXPECT_EQ(Sorted(*want), Ids({1, 2}));
}

TEST(LeaderReplica, NeverShrinksItselfAndKeepsOneChangeInFlight) {
  LeaderReplica l = MakeLeader(10, 0);
  auto want = l.WantedIsr(100000);
  ASSERT_TRUE(want.has_value());
  EXPECT_EQ(*want, Ids({1})) << "both followers are gone, the leader stays";
  l.OnIsrChangeSent(*want);
  EXPECT_EQ(l.WantedIsr(200000), std::nullopt) << "one change in flight";
  l.OnIsrChangeFailed();
  EXPECT_TRUE(l.WantedIsr(200000).has_value()) << "recomputed after a failure";
}

TEST(LeaderReplica, ExpandsAFollowerThatDurablyReachedTheHighWatermark) {
  LeaderReplica l = MakeLeader(10, 0, {1, 2});
  l.OnFetch(Fetch(2, 10, 10), Same(10), O(0), 1);
  ASSERT_EQ(l.high_watermark(), O(10));
  l.OnFetch(Fetch(3, 10, 9), Same(10), O(0), 2);
  EXPECT_EQ(l.WantedIsr(3), std::nullopt) << "durable end 9 < hw 10";
  l.OnFetch(Fetch(3, 10, 10), Same(10), O(0), 4);
  auto want = l.WantedIsr(5);
  ASSERT_TRUE(want.has_value());
  EXPECT_EQ(Sorted(*want), Ids({1, 2, 3}));
}

// A caught-up follower whose broker the metadata has fenced (a controlled shutdown, or a
// missed session) is not asked for: the controller would refuse it, and while the request was
// in flight the maximal ISR would hold the high watermark back for a broker that is gone.
TEST(LeaderReplica, DoesNotExpandToAFencedBroker) {
  LeaderReplica l = MakeLeader(10, 0, {1, 2});
  l.OnFetch(Fetch(2, 10, 10), Same(10), O(0), 1);
  l.OnFetch(Fetch(3, 10, 10), Same(10), O(0), 2);
  EXPECT_EQ(l.WantedIsr(3, {NodeId(3)}), std::nullopt);
  EXPECT_EQ(l.high_watermark(), O(10));
  // A fenced member of the ISR is not this rule's business (it leaves by lag, or by the
  // controller's own records): 3 joins.
  auto want = l.WantedIsr(4, {NodeId(2)});
  ASSERT_TRUE(want.has_value());
  EXPECT_EQ(Sorted(*want), Ids({1, 2, 3}));
}

TEST(LeaderReplica, ExpandRequiresTheEpochStartOffsetToo) {
  // A new leader whose hw (3) lags the previous leader's commits: a follower at hw 3 but
  // below the epoch start (10) may lack committed entries and must not join.
  LeaderReplica l = MakeLeader(10, 3, {1, 2});
  l.OnFetch(Fetch(3, 5, 5, /*last_epoch=*/4), {E(4), O(10)}, O(0), 1);
  EXPECT_EQ(l.WantedIsr(2), std::nullopt);
  l.OnFetch(Fetch(3, 10, 10, /*last_epoch=*/4), {E(4), O(10)}, O(0), 3);
  auto want = l.WantedIsr(4);
  ASSERT_TRUE(want.has_value());
  EXPECT_EQ(Sorted(*want), Ids({1, 2, 3}));
}

TEST(LeaderReplica, AFollowerThatLeftTheIsrRejoinsOnlyAfterAFreshFetch) {
  // Follower 3 was caught up; then the controller took it out of the ISR (it restarted, and may
  // have lost its disk). Its old fetch must not bring it back: only a new one that shows it
  // durably holds the high watermark.
  LeaderReplica l = MakeLeader(10, 0);
  l.OnFetch(Fetch(2, 10, 10), Same(10), O(0), 1);
  l.OnFetch(Fetch(3, 10, 10), Same(10), O(0), 1);
  ASSERT_EQ(l.high_watermark(), O(10));
  l.OnIsrCommitted(Ids({1, 2}));
  EXPECT_EQ(l.WantedIsr(2), std::nullopt) << "3's durable end 10 is from before it left";
  // The restarted follower fetches from an empty log: still out.
  l.OnFetch(Fetch(3, 0, 0, /*last_epoch=*/-1), {E(-1), O(-1)}, O(0), 3);
  EXPECT_EQ(l.WantedIsr(4), std::nullopt);
  // Caught up again: it rejoins.
  l.OnFetch(Fetch(3, 10, 10), Same(10), O(0), 5);
  auto want = l.WantedIsr(6);
  ASSERT_TRUE(want.has_value());
  EXPECT_EQ(Sorted(*want), Ids({1, 2, 3}));
}

TEST(LeaderReplica, AcksAllNeedsMinInsyncInTheCommittedIsr) {
  LeaderReplica l = MakeLeader(10, 0, {1, 2});
  EXPECT_TRUE(l.CanAcceptAcksAll());
  l.OnIsrChangeSent(Ids({1}));
  EXPECT_TRUE(l.CanAcceptAcksAll()) << "the controller still has {1,2}";
  l.OnIsrCommitted(Ids({1}));
  EXPECT_FALSE(l.CanAcceptAcksAll());
}

TEST(LeaderReplica, FencesByEpochAndRejectsNonReplicas) {
  LeaderReplica l = MakeLeader(10, 0);
  EXPECT_EQ(l.OnFetch(Fetch(4, 10, 10), Same(10), O(0), 1).kind, Kind::kNotReplica);
  EXPECT_EQ(l.OnFetch(Fetch(2, 10, 10, 4, /*current=*/4), Same(10), O(0), 1).kind,
            Kind::kFencedEpoch);
  EXPECT_EQ(l.OnFetch(Fetch(2, 10, 10, 5, /*current=*/6), Same(10), O(0), 1).kind,
            Kind::kUnknownEpoch);
  EXPECT_EQ(l.high_watermark(), O(0)) << "nothing recorded from refused fetches";
  EXPECT_EQ(l.followers()[0].durable_end, O(-1));
}

TEST(LeaderReplica, DivergingWhenTheFollowersEpochEndsEarlierHere) {
  LeaderReplica l = MakeLeader(30, 0);
  // Follower's last epoch 3 ends at 25 here, it is at 28: truncate to {3, 25}.
  FetchDecision d = l.OnFetch(Fetch(2, 28, 28, 3), {E(3), O(25)}, O(0), 1);
  EXPECT_EQ(d.kind, Kind::kDiverging);
  EXPECT_EQ(d.diverging, (EpochEndOffset{E(3), O(25)}));
  EXPECT_EQ(l.followers()[0].durable_end, O(-1)) << "a diverging fetch records nothing";
  // The leader never had epoch 4: the largest epoch <= 4 here is 3.
  d = l.OnFetch(Fetch(2, 20, 20, 4), {E(3), O(25)}, O(0), 1);
  EXPECT_EQ(d.kind, Kind::kDiverging);
  EXPECT_EQ(d.diverging, (EpochEndOffset{E(3), O(25)}));
  // Epoch 3 ends at 25 here and the follower is at 25: a prefix.
  d = l.OnFetch(Fetch(2, 25, 25, 3), {E(3), O(25)}, O(0), 1);
  EXPECT_EQ(d.kind, Kind::kRead);
  EXPECT_EQ(d.read_from, O(25));
}

TEST(LeaderReplica, EmptyFollowerLogNeverDiverges) {
  LeaderReplica l = MakeLeader(30, 0);
  FetchDecision d = l.OnFetch(Fetch(2, 0, 0, -1), {E(-1), O(-1)}, O(0), 1);
  EXPECT_EQ(d.kind, Kind::kRead);
  EXPECT_EQ(d.read_from, O(0));
}

TEST(LeaderReplica, OutOfRange) {
  LeaderReplica l = MakeLeader(30, 0);
  EXPECT_EQ(l.OnFetch(Fetch(2, 5, 5, -1), {}, O(10), 1).kind, Kind::kOutOfRange);
  EXPECT_EQ(l.OnFetch(Fetch(2, 31, 31, -1), {}, O(0), 1).kind, Kind::kOutOfRange);
}

// ---- FollowerReplica ---------------------------------------------------------------------------

TEST(FollowerReplica, NextFetchDescribesTheLocalLog) {
  FollowerReplica f(N(2), N(1), E(5), O(12), E(4), O(9), O(3));
  FollowerFetch x = f.NextFetch();
  EXPECT_EQ(x.follower, N(2));
  EXPECT_EQ(x.current_leader_epoch, E(5));
  EXPECT_EQ(x.fetch_offset, O(12));
  EXPECT_EQ(x.last_fetched_epoch, E(4));
  EXPECT_EQ(x.durable_end, O(9));
  f.OnLocalAppend(O(15), E(5));
  f.OnLocalDurable(O(14));
  x = f.NextFetch();
  EXPECT_EQ(x.fetch_offset, O(15));
  EXPECT_EQ(x.last_fetched_epoch, E(5));
  EXPECT_EQ(x.durable_end, O(14));
}

TEST(FollowerReplica, TruncatesToTheSmallerEndOfASharedEpoch) {
  FollowerReplica f(N(2), N(1), E(5), O(30), E(3), O(30), O(0));
  // Leader's epoch 3 ends at 25, ours at 30.
  EXPECT_EQ(f.TruncationOffset({E(3), O(25)}, {E(3), O(30)}), O(25));
  // Ours ends first (the leader's is longer: not diverging there, but never beyond our end).
  EXPECT_EQ(f.TruncationOffset({E(3), O(28)}, {E(3), O(20)}), O(20));
}

TEST(FollowerReplica, EpochUnknownLocallyTruncatesToOurOlderEpochsEnd) {
  // Leader answers epoch 3; our largest epoch <= 3 is 2, ending at 18 here. Keep [0, 18) and
  // ask again with epoch 2.
  FollowerReplica f(N(2), N(1), E(5), O(30), E(4), O(30), O(0));
  EXPECT_EQ(f.TruncationOffset({E(3), O(25)}, {E(2), O(18)}), O(18));
}

TEST(FollowerReplica, OlderThanOurWholeHistoryTruncatesToTheSmallerEnd) {
  // Our log starts with epoch 4 at offset 10; the leader's epoch 2 ends at 12: EndOffsetForEpoch
  // answers {2, 10} locally, so we keep [0, 10).
  FollowerReplica f(N(2), N(1), E(5), O(30), E(4), O(30), O(0));
  EXPECT_EQ(f.TruncationOffset({E(2), O(12)}, {E(2), O(10)}), O(10));
}

TEST(FollowerReplica, UnknownAnswersTruncateConservatively) {
  FollowerReplica f(N(2), N(1), E(5), O(30), E(4), O(30), O(0));
  // The leader knows no epoch <= ours: nothing of ours can be matched.
  EXPECT_EQ(f.TruncationOffset({E(-1), O(-1)}, {E(4), O(30)}), O(0));
  // We have no epoch history: the leader's end for its epoch.
  EXPECT_EQ(f.TruncationOffset({E(3), O(25)}, {E(-1), O(-1)}), O(25));
  // Never beyond our log end.
  FollowerReplica g(N(2), N(1), E(5), O(7), E(-1), O(7), O(0));
  EXPECT_EQ(g.TruncationOffset({E(3), O(25)}, {E(-1), O(-1)}), O(7));
}

TEST(FollowerReplica, OutOfRangeOffset) {
  FollowerReplica f(N(2), N(1), E(5), O(30), E(4), O(30), O(0));
  EXPECT_EQ(f.OutOfRangeOffset(O(0), O(20)), O(20)) << "beyond the leader's end";
  FollowerReplica g(N(2), N(1), E(5), O(5), E(4), O(5), O(0));
  EXPECT_EQ(g.OutOfRangeOffset(O(10), O(40)), O(10)) << "below the leader's start";
}

TEST(FollowerReplica, HighWatermarkIsCappedByTheLocalLogAndNeverMovesBack) {
  FollowerReplica f(N(2), N(1), E(5), O(10), E(5), O(10), O(2));
  EXPECT_EQ(f.high_watermark(), O(2));
  f.OnLeaderHighWatermark(O(20));
  EXPECT_EQ(f.high_watermark(), O(10));
  f.OnLeaderHighWatermark(O(5));
  EXPECT_EQ(f.high_watermark(), O(10));
  f.OnLocalAppend(O(25), E(5));
  f.OnLeaderHighWatermark(O(20));
  EXPECT_EQ(f.high_watermark(), O(20));
}

TEST(FollowerReplica, TruncationCapsDurableEndAndHighWatermark) {
  FollowerReplica f(N(2), N(1), E(5), O(30), E(4), O(28), O(0));
  f.OnLeaderHighWatermark(O(12));
  f.OnTruncated(O(20), E(3), O(28));
  FollowerFetch x = f.NextFetch();
  EXPECT_EQ(x.fetch_offset, O(20));
  EXPECT_EQ(x.last_fetched_epoch, E(3));
  EXPECT_EQ(x.durable_end, O(20));
  EXPECT_EQ(f.high_watermark(), O(12));
}

}  // namespace
}  // namespace rill::replication
