// The checker's rules, one test per anomaly, on hand-written histories (no processes).

#include "checker.h"

#include <gtest/gtest.h>

#include "history.h"

namespace rill::fault {
namespace {

Op MakeOp(int64_t t, std::string process, OpType type, std::string f, std::string value = "",
          int32_t p = -1, int64_t offset = -1, int32_t node = -1, std::string error = "") {
  return Op{t,    std::move(process), type, std::move(f), std::move(value), p, offset,
            node, std::move(error)};
}

// Builds histories: each helper appends the operations one component would have recorded.
class HistoryBuilder {
 public:
  HistoryBuilder& Acked(const std::string& value, int p, int64_t offset, int64_t t = -1,
                        const std::string& producer = "producer-0") {
    const int64_t at = Time(t);
    ops_.push_back(MakeOp(at, producer, OpType::kInvoke, "send", value, p));
    ops_.push_back(MakeOp(at + 1, producer, OpType::kOk, "send", value, p, offset));
    return *this;
  }
  HistoryBuilder& Unacked(const std::string& value, int p) {
    ops_.push_back(MakeOp(Time(-1), "producer-0", OpType::kInvoke, "send", value, p));
    ops_.push_back(
        MakeOp(Time(-1), "producer-0", OpType::kInfo, "send", value, p, -1, -1, "timeout"));
    return *this;
  }
  HistoryBuilder& Read(const std::string& value, int p, int64_t offset,
                       const std::string& consumer = "consumer-0") {
    ops_.push_back(MakeOp(Time(-1), consumer, OpType::kOk, "read", value, p, offset));
    return *this;
  }
  HistoryBuilder& Final(const std::string& value, int p, int64_t offset) {
    ops_.push_back(MakeOp(Time(-1), "final", OpType::kOk, "final-read", value, p, offset));
    return *this;
  }
  HistoryBuilder& Commit(const std::string& member, int p, int64_t offset, int64_t invoke_t,
                         int64_t ok_t) {
    ops_.push_back(MakeOp(invoke_t, member, OpType::kInvoke, "commit", "", p, offset));
    ops_.push_back(MakeOp(ok_t, member, OpType::kOk, "commit", "", p, offset));
    return *this;
  }
  HistoryBuilder& Own(const std::string& member, const std::string& f, int p, int64_t t) {
    ops_.push_back(MakeOp(t, member, OpType::kInfo, f, "", p));
    return *this;
  }
  HistoryBuilder& Nemesis(const std::string& f, const std::string& kind, int node, int p,
                          int64_t t) {
    ops_.push_back(MakeOp(t, "nemesis", OpType::kInfo, f, kind, p, -1, node));
    return *this;
  }
  const std::vector<Op>& ops() const { return ops_; }

 private:
  int64_t Time(int64_t t) { return t >= 0 ? t : (now_ += 10); }
  int64_t now_ = 0;
  std::vector<Op> ops_;
};

// Two partitions, four acknowledged values, read back by a consumer and in the final read.
HistoryBuilder Clean() {
  HistoryBuilder h;
  h.Acked("a", 0, 0).Acked("b", 1, 0).Acked("c", 0, 1).Acked("d", 1, 1);
  h.Read("a", 0, 0).Read("c", 0, 1).Read("b", 1, 0);
  h.Final("a", 0, 0).Final("c", 0, 1).Final("b", 1, 0).Final("d", 1, 1);
  return h;
}

TEST(CheckerTest, CleanHistoryPassesAndSummarises) {
  CheckResult r = Check(Clean().ops());
  EXPECT_TRUE(r.ok({})) << Report(r, 0);
  EXPECT_EQ(r.acked, 4);
  EXPECT_EQ(r.reads, 3);
  EXPECT_EQ(r.final_records, 4);
  EXPECT_EQ(SummaryLine(r, 3),
            "cycles 3, acked 4, lost 0, wrong offset 0, truncated reads 0, duplicates 0, "
            "unavailable 0.0 s total");
}

TEST(CheckerTest, AcknowledgedValueMissingFromFinalReadIsLost) {
  HistoryBuilder h = Clean();
  h.Acked("e", 0, 2);
  CheckResult r = Check(h.ops());
  EXPECT_EQ(r.lost, 1);
  EXPECT_FALSE(r.ok({}));
  ASSERT_FALSE(r.examples.empty());
  EXPECT_EQ(r.examples[0], "lost: e acknowledged at 0@2");
}

TEST(CheckerTest, PartitionTheFinalReadCouldNotReadIsNotJudgedButFails) {
  HistoryBuilder h;
  h.Acked("a", 0, 0).Acked("b", 1, 0).Read("b", 1, 0).Final("a", 0, 0);
  std::vector<Op> ops = h.ops();
  ops.push_back(MakeOp(1000, "final", OpType::kInfo, "final-unreadable", "", 1));
  CheckResult r = Check(ops);
  EXPECT_EQ(r.unreadable_partitions, 1);
  EXPECT_EQ(r.lost, 0);
  EXPECT_EQ(r.truncated_reads, 0);
  EXPECT_FALSE(r.ok({}));
}

TEST(CheckerTest, UnacknowledgedValueMayBeWrittenOrNot) {
  HistoryBuilder h = Clean();
  h.Unacked("x", 0).Unacked("y", 1).Final("x", 0, 2);
  CheckResult r = Check(h.ops());
  EXPECT_TRUE(r.ok({})) << Report(r, 0);
  EXPECT_EQ(r.unacked_written, 1);
}

TEST(CheckerTest, ValueAtAnotherOffsetThanItsAckIsWrongOffset) {
  HistoryBuilder h;
  h.Acked("a", 0, 0).Acked("b", 0, 1).Final("b", 0, 0).Final("a", 0, 1);
  CheckResult r = Check(h.ops());
  EXPECT_EQ(r.wrong_offset, 2);
  EXPECT_EQ(r.lost, 0);
  EXPECT_FALSE(r.ok({}));
}

TEST(CheckerTest, ConsumerReadOfOffsetTheLogLaterHoldsOtherwiseIsTruncatedRead) {
  HistoryBuilder h = Clean();
  h.Unacked("z", 0).Read("z", 0, 2).Acked("e", 0, 2).Final("e", 0, 2);
  CheckResult r = Check(h.ops());
  EXPECT_EQ(r.truncated_reads, 1);
  EXPECT_FALSE(r.ok({}));
  // A read past the final log's end was truncated as well.
  HistoryBuilder beyond = Clean();
  beyond.Unacked("z", 1).Read("z", 1, 2);
  EXPECT_EQ(Check(beyond.ops()).truncated_reads, 1);
}

TEST(CheckerTest, DuplicatesAreCountedAndFailOnlyWhenAsked) {
  HistoryBuilder h = Clean();
  h.Final("d", 1, 2);  // a retried batch written twice
  CheckResult r = Check(h.ops());
  EXPECT_EQ(r.duplicates, 1);
  EXPECT_TRUE(r.ok({}));
  EXPECT_FALSE(r.ok({.fail_on_duplicates = true}));
}

TEST(CheckerTest, ValueNoProducerSentIsPhantom) {
  HistoryBuilder h = Clean();
  h.Final("never", 1, 2);
  CheckResult r = Check(h.ops());
  EXPECT_EQ(r.phantoms, 1);
  EXPECT_FALSE(r.ok({}));
}

TEST(CheckerTest, OffsetsGoingBackAreOutOfOrder) {
  // A consumer reading an offset below one it read before.
  HistoryBuilder consumer = Clean();
  consumer.Read("a", 0, 0);
  EXPECT_EQ(Check(consumer.ops()).out_of_order, 1);
  // ... except after the partition was assigned to it again (it restarts at the commit).
  HistoryBuilder reassigned = Clean();
  reassigned.Own("consumer-0", "assign", 0, 1000).Read("a", 0, 0);
  EXPECT_TRUE(Check(reassigned.ops()).ok({}));
  // A record a producer sent later landed at a lower offset of the partition.
  HistoryBuilder producer;
  producer.Acked("a", 0, 1).Acked("b", 0, 0).Final("b", 0, 0).Final("a", 0, 1);
  CheckResult reordered = Check(producer.ops());
  EXPECT_EQ(reordered.reordered_sends, 1);
  EXPECT_EQ(reordered.out_of_order, 0);
  EXPECT_TRUE(reordered.ok({}));
  EXPECT_FALSE(reordered.ok({.fail_on_reorder = true}));
  // The final read itself.
  HistoryBuilder log;
  log.Acked("a", 0, 0).Acked("b", 0, 1).Final("b", 0, 1).Final("a", 0, 0);
  EXPECT_EQ(Check(log.ops()).out_of_order, 1);
}

TEST(CheckerTest, AckCompletingAfterALaterRecordsAckIsLateButInOrder) {
  std::vector<Op> ops;
  ops.push_back(MakeOp(10, "producer-0", OpType::kInvoke, "send", "a", 0));
  ops.push_back(MakeOp(20, "producer-0", OpType::kInvoke, "send", "b", 0));
  ops.push_back(MakeOp(30, "producer-0", OpType::kOk, "send", "b", 0, 1));
  ops.push_back(MakeOp(40, "producer-0", OpType::kOk, "send", "a", 0, 0));
  ops.push_back(MakeOp(50, "final", OpType::kOk, "final-read", "a", 0, 0));
  ops.push_back(MakeOp(51, "final", OpType::kOk, "final-read", "b", 0, 1));
  CheckResult r = Check(ops);
  EXPECT_EQ(r.late_acks, 1);
  EXPECT_EQ(r.out_of_order, 0);
  EXPECT_TRUE(r.ok({})) << Report(r, 0);
}

TEST(CheckerTest, CommitLowerThanOneAcknowledgedBeforeIsBackwards) {
  HistoryBuilder h = Clean();
  h.Commit("group-0", 0, 10, 100, 110).Commit("group-1", 0, 8, 120, 130);
  CheckResult r = Check(h.ops());
  EXPECT_EQ(r.commits_backwards, 1);
  EXPECT_EQ(r.commits, 2);
  // Concurrent commits (the lower one invoked before the higher one was acknowledged) may land
  // in either order.
  HistoryBuilder concurrent = Clean();
  concurrent.Commit("group-0", 0, 10, 100, 110).Commit("group-1", 0, 8, 105, 130);
  EXPECT_TRUE(Check(concurrent.ops()).ok({}));
  // The committed offset read at the end is below an acknowledged commit.
  HistoryBuilder final_read = Clean();
  final_read.Commit("group-0", 1, 2, 100, 110);
  final_read.ops();
  std::vector<Op> ops = final_read.ops();
  ops.push_back(MakeOp(200, "final", OpType::kInfo, "committed", "", 1, 1));
  EXPECT_EQ(Check(ops).commits_backwards, 1);
}

TEST(CheckerTest, TwoMembersOwningOnePartitionAtOnce) {
  // Handed over properly: revoked at 200, assigned to the other member at 210.
  HistoryBuilder handover = Clean();
  handover.Own("group-0", "assign", 0, 100).Own("group-0", "revoke", 0, 200);
  handover.Own("group-1", "assign", 0, 210);
  EXPECT_TRUE(Check(handover.ops()).ok({}));
  // Assigned to the second member before the first released it.
  HistoryBuilder overlap = Clean();
  overlap.Own("group-0", "assign", 0, 100).Own("group-1", "assign", 0, 150);
  overlap.Own("group-0", "revoke", 0, 200);
  CheckResult r = Check(overlap.ops());
  EXPECT_EQ(r.double_owners, 1);
  EXPECT_FALSE(r.ok({}));
  // A fenced member (its partitions lost) may overlap its successor: it is a zombie whose
  // commits the coordinator refuses.
  HistoryBuilder zombie = Clean();
  zombie.Own("group-0", "assign", 0, 100).Own("group-1", "assign", 0, 150);
  zombie.Own("group-0", "lost", 0, 200);
  EXPECT_TRUE(Check(zombie.ops()).ok({}));
}

TEST(CheckerTest, PartitionOfDownedLeaderMustGetAnotherLeaderBeforeTheHeal) {
  HistoryBuilder failed_over = Clean();
  failed_over.Nemesis("fault", "kill-leader", 2, -1, 1000).Nemesis("led", "", 2, 0, 1000);
  failed_over.Nemesis("led", "", 2, 1, 1000);
  failed_over.Nemesis("leader", "", 3, 0, 1500).Nemesis("leader", "", 1, 1, 1600);
  failed_over.Nemesis("heal", "kill-leader", 2, -1, 2000);
  EXPECT_TRUE(Check(failed_over.ops()).ok({}));

  HistoryBuilder waited = Clean();
  waited.Nemesis("fault", "pause", 2, -1, 1000).Nemesis("led", "", 2, 0, 1000);
  waited.Nemesis("leader", "", 2, 0, 1500);  // only the old leader again
  waited.Nemesis("heal", "pause", 2, -1, 2000);
  waited.Nemesis("leader", "", 3, 0, 2500);  // after the heal: too late
  CheckResult r = Check(waited.ops());
  EXPECT_EQ(r.missing_failovers, 1);
  EXPECT_FALSE(r.ok({}));
}

TEST(CheckerTest, KilledControllerMustBeSucceededBeforeTheHeal) {
  HistoryBuilder elected = Clean();
  elected.Nemesis("fault", "kill-controller", 1, -1, 1000).Nemesis("controller", "", 2, -1, 1500);
  elected.Nemesis("heal", "kill-controller", 1, -1, 2000);
  EXPECT_TRUE(Check(elected.ops()).ok({}));
  HistoryBuilder none = Clean();
  none.Nemesis("fault", "kill-controller", 1, -1, 1000)
      .Nemesis("heal", "kill-controller", 1, -1, 2000);
  CheckResult r = Check(none.ops());
  EXPECT_EQ(r.missing_failovers, 1);
  EXPECT_FALSE(r.ok({}));
}

TEST(CheckerTest, UnavailabilityIsTimeUntilEveryPartitionAcknowledgedAgain) {
  HistoryBuilder h;
  h.Acked("a", 0, 0, 0).Acked("b", 1, 0, 10);
  h.Nemesis("fault", "kill-leader", 1, -1, 1000).Nemesis("heal", "kill-leader", 1, -1, 5000);
  h.Acked("c", 0, 1, 1100);  // partition 0 acknowledged 101 us after the fault
  h.Acked("d", 1, 1, 3000);  // partition 1 only 2001 us after
  h.Nemesis("fault", "pause", 2, -1, 10000).Nemesis("heal", "pause", 2, -1, 11000);
  h.Acked("e", 0, 2, 10500).Acked("f", 1, 2, 10200);
  for (auto [v, p, o] :
       {std::tuple{"a", 0, 0}, {"c", 0, 1}, {"e", 0, 2}, {"b", 1, 0}, {"d", 1, 1}, {"f", 1, 2}}) {
    h.Final(v, p, o);
  }
  // Sent before the fault, acknowledged after it: proves nothing about availability.
  std::vector<Op> ops = h.ops();
  ops.push_back(MakeOp(900, "producer-1", OpType::kInvoke, "send", "early", 1));
  ops.push_back(MakeOp(1050, "producer-1", OpType::kOk, "send", "early", 1, 3));
  ops.push_back(MakeOp(20000, "final", OpType::kOk, "final-read", "early", 1, 3));
  CheckResult r = Check(ops);
  EXPECT_TRUE(r.ok({})) << Report(r, 2);
  EXPECT_EQ(r.faults, 2);
  EXPECT_EQ(r.unavailability["kill-leader"].longest_us, 2001);
  EXPECT_EQ(r.unavailability["pause"].longest_us, 501);
  EXPECT_EQ(r.unavailability["kill-leader"].each_us, std::vector<int64_t>{2001});
  EXPECT_EQ(r.unavailability["kill-leader"].median_us(), 2001);
  Unavailability three;
  three.each_us = {300, 100, 200};
  EXPECT_EQ(three.median_us(), 200);
  three.each_us.push_back(400);
  EXPECT_EQ(three.median_us(), 200);
  EXPECT_EQ(Unavailability{}.median_us(), 0);
  EXPECT_EQ(r.unavailable_total_us, 2502);
}

TEST(CheckerTest, OutOfRangeAnswerForOffsetTheLogHoldsIsCountedAndFailsWhenAsked) {
  HistoryBuilder h = Clean();
  std::vector<Op> ops = h.ops();
  const std::string error = "OutOfRange: chaos-0: offset 1 is out of range [0, 0]";
  ops.push_back(MakeOp(500, "consumer-0", OpType::kFail, "read", "", 0, 1, -1, error));
  // Past the end of the log: a legitimate answer.
  ops.push_back(MakeOp(510, "consumer-0", OpType::kFail, "read", "", 0, 9, -1, error));
  CheckResult r = Check(ops);
  EXPECT_EQ(r.spurious_out_of_range, 1);
  EXPECT_TRUE(r.ok({}));
  EXPECT_FALSE(r.ok({.fail_on_out_of_range = true}));
}

TEST(CheckerTest, ThousandsSeparators) {
  EXPECT_EQ(WithThousands(0), "0");
  EXPECT_EQ(WithThousands(999), "999");
  EXPECT_EQ(WithThousands(1000), "1,000");
  EXPECT_EQ(WithThousands(1234567), "1,234,567");
}

TEST(HistoryTest, JsonRoundTripKeepsEveryField) {
  Op op{123, "producer-1", OpType::kFail, "send", "w1-\"9\"\\\n", 4, 77, 2, "NOT_LEADER: x"};
  std::string line = ToJson(op);
  auto back = ParseJson(line);
  ASSERT_TRUE(back.has_value()) << line;
  EXPECT_EQ(back->time_us, 123);
  EXPECT_EQ(back->process, "producer-1");
  EXPECT_EQ(back->type, OpType::kFail);
  EXPECT_EQ(back->f, "send");
  EXPECT_EQ(back->value, op.value);
  EXPECT_EQ(back->partition, 4);
  EXPECT_EQ(back->offset, 77);
  EXPECT_EQ(back->node, 2);
  EXPECT_EQ(back->error, "NOT_LEADER: x");
  // Defaults are left out of the line and come back as defaults.
  Op bare = MakeOp(5, "nemesis", OpType::kInfo, "heal");
  EXPECT_EQ(ToJson(bare), R"({"time_us":5,"process":"nemesis","type":"info","f":"heal"})");
  auto bare_back = ParseJson(ToJson(bare));
  ASSERT_TRUE(bare_back.has_value());
  EXPECT_EQ(bare_back->partition, -1);
  EXPECT_EQ(bare_back->offset, -1);
}

TEST(HistoryTest, MalformedLinesAreRefused) {
  for (const char* bad : {"", "{", "{}", R"({"type":"ok"})", R"({"f":"send","type":"maybe"})",
                          R"({"f":"send","type":"ok","offset":})",
                          R"({"f":"send","type":"ok","value":"unterminated})"}) {
    EXPECT_FALSE(ParseJson(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace rill::fault
