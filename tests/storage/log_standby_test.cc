// Standby segments: with small groups the flusher writes a standby file of zeros (never more
// than twice the bytes appended since the last roll), and the log rolls into it once the active
// segment would grow, so group fsyncs overwrite written space. Sizes double up to segment_bytes;
// large groups prepare nothing; a crash mid-standby loses nothing; a store-wide budget bounds the
// standbys of all logs together.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <string>

#include "rill/storage/faulty_file_system.h"
#include "rill/storage/log.h"
#include "support/poll.h"
#include "test_batches.h"

namespace rill::storage {
namespace {

using testing::MakeBatch;
using namespace std::chrono_literals;

constexpr char kDir[] = "data/t-0";
constexpr char kStandby[] = "data/t-0/00000000000000000000.recycle";

auto Deadline() { return std::chrono::steady_clock::now() + 30s; }

class LogStandbyTest : public ::testing::Test {
 protected:
  static LogConfig Config() {
    LogConfig c;
    c.flush_policy = FlushPolicy::kGroup;
    c.segment_bytes = 1 << 20;
    c.index_interval_bytes = 4096;
    c.preallocate_bytes = 0;
    c.preallocate_idle_ms = 0;
    c.preallocate_piece_bytes = 4096;
    c.group_commit_poll_us = 0;
    c.standby_min_bytes = 64 << 10;
    return c;
  }
  std::unique_ptr<Log> OpenLog(const LogConfig& c) {
    auto r = Log::Open(&fs_, kDir, "t-0", c, [] { return int64_t{1'000'000}; });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return std::move(r).value();
  }
  // Appends one batch of `payload` bytes and waits until it is durable (one small group).
  void AppendDurable(Log& log, size_t payload) {
    std::string b = MakeBatch(1, payload, 1000, seq_++);
    auto r = log.Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(log.WaitDurable(r->last_offset, Deadline()).ok());
    appended_ += b.size();
  }
  // Appends 1,000-byte batches (at most max_appends) until a 64 KiB standby is complete.
  void AppendUntilAStandbyIsComplete(Log& log, int max_appends) {
    for (int i = 0; i < max_appends && fs_.Contents(kStandby).size() < (64u << 10); ++i) {
      AppendDurable(log, 1000);
    }
    ASSERT_EQ(fs_.Contents(kStandby).size(), 64u << 10) << "no complete standby";
  }
  // Sizes of the segment files by base offset.
  std::map<std::string, size_t> SegmentFiles() {
    std::map<std::string, size_t> out;
    auto names = fs_.ListDir(kDir);
    EXPECT_TRUE(names.ok());
    for (const auto& n : *names) {
      if (n.size() == 24 && n.ends_with(".log")) out[n] = fs_.Contents(std::string(kDir) + "/" + n).size();
    }
    return out;
  }

  FaultyFileSystem fs_{5};
  uint64_t seq_ = 1;
  uint64_t appended_ = 0;
};

TEST_F(LogStandbyTest, StandbyStaysWithinTwiceTheAppendedBytesAndTheLogRollsIntoIt) {
  auto log = OpenLog(Config());
  size_t max_seen = 0;
  while (log->recycled_count() == 0 && appended_ < (512u << 10)) {
    AppendDurable(*log, 1000);
    // The flusher may be writing a piece right now: one piece of slack.
    const size_t standby = fs_.Contents(kStandby).size();
    // Twice the appended bytes plus a quarter of standby_min_bytes, plus one piece of slack
    // (the flusher may be writing one right now).
    EXPECT_LE(standby, 2 * appended_ + (16 << 10) + 4096) << "after " << appended_ << " bytes";
    max_seen = std::max(max_seen, standby);
  }
  ASSERT_EQ(log->recycled_count(), 1u) << "standby " << fs_.Contents(kStandby).size() << " exists " << fs_.Exists(kStandby) << "; no roll into the standby after " << appended_
                                       << " appended bytes";
  // The first standby is standby_min_bytes; it was complete (64 KiB) before the roll took it
  // (the new segment's size below). Between two appends we saw it at least up to its last piece:
  // the append right after the last piece may roll into it before we look.
  EXPECT_GE(max_seen, (64u << 10) - 4096);
  EXPECT_EQ(log->segment_count(), 2u);
  auto files = SegmentFiles();
  ASSERT_EQ(files.size(), 2u);
  // The new active segment is the standby: 64 KiB of written space, batches at its start.
  EXPECT_EQ(files.rbegin()->second, 64u << 10);
  // Everything reads back across the roll.
  for (int64_t o = 0; o < log->log_end_offset().value(); ++o) {
    auto r = log->Read(Offset(o), 1 << 20);
    ASSERT_TRUE(r.ok()) << o << ": " << r.status().ToString();
    ASSERT_FALSE(r->data.empty()) << o;
  }
}

TEST_F(LogStandbyTest, EachStandbyIsTwiceTheLastUpToSegmentBytes) {
  LogConfig c = Config();
  c.segment_bytes = 256 << 10;
  auto log = OpenLog(c);
  // Right after each roll the new active segment is the whole standby file (data at its start).
  std::vector<size_t> standby_sizes;
  while (log->recycled_count() < 4 && appended_ < (8u << 20)) {
    const uint64_t rolls = log->recycled_count();
    AppendDurable(*log, 1000);
    if (log->recycled_count() > rolls) standby_sizes.push_back(SegmentFiles().rbegin()->second);
  }
  EXPECT_EQ(standby_sizes, (std::vector<size_t>{64 << 10, 128 << 10, 256 << 10, 256 << 10}));
  EXPECT_EQ(log->segment_count(), 5u);
}

TEST_F(LogStandbyTest, LargeGroupsPrepareNoStandby) {
  LogConfig c = Config();
  c.standby_max_group_bytes = 8 << 10;
  auto log = OpenLog(c);
  for (int i = 0; i < 40; ++i) AppendDurable(*log, 16 << 10);
  EXPECT_FALSE(fs_.Exists(kStandby));
  EXPECT_EQ(log->recycled_count(), 0u);
}

TEST_F(LogStandbyTest, OffWhenStandbyMinBytesIsZero) {
  LogConfig c = Config();
  c.standby_min_bytes = 0;
  auto log = OpenLog(c);
  for (int i = 0; i < 300; ++i) AppendDurable(*log, 1000);
  EXPECT_FALSE(fs_.Exists(kStandby));
  EXPECT_EQ(log->segment_count(), 1u);
}

TEST_F(LogStandbyTest, CrashWithAStandbyUnderWayLosesNothing) {
  LogConfig c = Config();
  c.standby_min_bytes = 512 << 10;  // still being written when the crash comes
  Offset durable_end;
  {
    auto log = OpenLog(c);
    while (fs_.Contents(kStandby).size() < (16u << 10)) AppendDurable(*log, 1000);
    durable_end = log->durable_offset();
    fs_.Crash(FaultyFileSystem::CrashMode::kDropUnsynced);
  }
  auto log = OpenLog(c);
  EXPECT_GE(log->log_end_offset(), durable_end);
  for (int64_t o = 0; o < durable_end.value(); ++o) {
    auto r = log->Read(Offset(o), 1 << 20);
    ASSERT_TRUE(r.ok()) << o << ": " << r.status().ToString();
    ASSERT_FALSE(r->data.empty()) << o;
  }
  // The log goes on, preparing and using standbys again.
  const uint64_t before = appended_;
  while (log->recycled_count() == 0 && appended_ - before < (2u << 20)) AppendDurable(*log, 1000);
  EXPECT_EQ(log->recycled_count(), 1u);
  ASSERT_TRUE(log->Close().ok());
}

// Two logs share a budget of one standby: the second starts none while the first holds it, and
// starts one once the first closes and gives it back.
TEST_F(LogStandbyTest, AStoreWideBudgetBoundsTheStandbysOfAllLogs) {
  StandbyBudget budget(64 << 10);
  LogConfig c = Config();
  c.standby_budget = &budget;
  auto a = OpenLog(c);
  auto rb = Log::Open(&fs_, "data/t-1", "t-1", c, [] { return int64_t{1'000'000}; });
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  std::unique_ptr<Log> b = std::move(rb).value();
  constexpr char kStandbyB[] = "data/t-1/00000000000000000000.recycle";
  for (int i = 0; i < 20; ++i) AppendDurable(*a, 1000);
  ASSERT_TRUE(test::PollUntil([&] { return fs_.Exists(kStandby); }, 10s, 1ms));
  EXPECT_EQ(budget.used(), 64 << 10);
  for (int i = 0; i < 40; ++i) AppendDurable(*b, 1000);
  EXPECT_FALSE(fs_.Exists(kStandbyB)) << "the budget had no room for a second standby";
  EXPECT_EQ(budget.used(), 64 << 10);
  ASSERT_TRUE(a->Close().ok());
  a.reset();
  // A closed log gives its standby's bytes back: the other log's next round takes them (its
  // flusher may do so at once, without another append).
  for (int i = 0; i < 20 && !fs_.Exists(kStandbyB); ++i) AppendDurable(*b, 1000);
  ASSERT_TRUE(test::PollUntil([&] { return fs_.Exists(kStandbyB); }, 10s, 1ms))
      << "the closed log did not give its standby's bytes back: " << budget.used() << " used";
  EXPECT_EQ(budget.used(), 64 << 10);
  // Rolling into its standby gives the bytes back; the next standby takes them again.
  while (b->recycled_count() == 0 && appended_ < (4u << 20)) AppendDurable(*b, 1000);
  ASSERT_EQ(b->recycled_count(), 1u);
  EXPECT_LE(budget.used(), 64 << 10);
  ASSERT_TRUE(b->Close().ok());
  EXPECT_EQ(budget.used(), 0);
}

// A standby left on disk by the last run counts against the budget when the log opens again,
// like one it starts; with no room left in the budget the reopened log removes it.
TEST_F(LogStandbyTest, AStandbyLeftByTheLastRunCountsAgainstTheBudget) {
  StandbyBudget budget(64 << 10);
  LogConfig c = Config();
  c.standby_budget = &budget;
  auto log = OpenLog(c);
  ASSERT_NO_FATAL_FAILURE(AppendUntilAStandbyIsComplete(*log, 100));
  ASSERT_TRUE(log->Close().ok());
  log.reset();
  EXPECT_EQ(budget.used(), 0);
  ASSERT_TRUE(fs_.Exists(kStandby));

  log = OpenLog(c);
  EXPECT_EQ(budget.used(), 64 << 10) << "the standby found at open is not counted";
  ASSERT_TRUE(log->Close().ok());
  log.reset();
  EXPECT_EQ(budget.used(), 0);

  StandbyBudget spent(64 << 10);
  ASSERT_EQ(spent.TakeUpTo(1, 1), 1);  // another log holds part of it
  c.standby_budget = &spent;
  log = OpenLog(c);
  EXPECT_FALSE(fs_.Exists(kStandby)) << "kept a standby the budget has no room for";
  EXPECT_EQ(spent.used(), 1);
  ASSERT_TRUE(log->Close().ok());
}

TEST_F(LogStandbyTest, AnUnreadableStandbyIsRemovedAtOpenAndTheLogServes) {
  StandbyBudget budget(64 << 10);
  LogConfig c = Config();
  c.standby_budget = &budget;
  auto log = OpenLog(c);
  ASSERT_NO_FATAL_FAILURE(AppendUntilAStandbyIsComplete(*log, 100));
  const int64_t end = log->log_end_offset().value();
  ASSERT_TRUE(log->Close().ok());
  log.reset();

  // The standby holds no data: failing to read it must not keep the partition from opening.
  fs_.FailOpensAndRenamesOf(kStandby);
  log = OpenLog(c);
  ASSERT_NE(log, nullptr);
  EXPECT_FALSE(fs_.Exists(kStandby));
  EXPECT_EQ(budget.used(), 0) << "counted a standby it removed";
  EXPECT_EQ(log->log_end_offset().value(), end);
  AppendDurable(*log, 1000);
  ASSERT_TRUE(log->Close().ok());
}

TEST_F(LogStandbyTest, ARollIntoAnUnusableStandbyFallsBackToANewSegment) {
  StandbyBudget budget(64 << 10);
  LogConfig c = Config();
  c.standby_budget = &budget;
  c.segment_bytes = 64 << 10;
  auto log = OpenLog(c);
  // Appends until a standby is complete, then make it unusable before the log rolls into it.
  ASSERT_NO_FATAL_FAILURE(AppendUntilAStandbyIsComplete(*log, 60));
  const int64_t appended = log->log_end_offset().value();
  ASSERT_EQ(SegmentFiles().size(), 1u) << "rolled before the standby was complete";
  fs_.FailOpensAndRenamesOf(kStandby);
  for (int i = 0; i < 80; ++i) AppendDurable(*log, 1000);  // past segment_bytes: a roll
  EXPECT_GE(SegmentFiles().size(), 2u);
  EXPECT_EQ(log->recycled_count(), 0u);  // the roll went to a new file
  EXPECT_EQ(budget.used(), 0) << "an unusable standby kept its budget";
  // Every record is there, at its offset.
  const int64_t end = log->log_end_offset().value();
  EXPECT_EQ(end, appended + 80);
  int64_t next = 0;
  while (next < end) {
    auto r = log->Read(Offset(next), 1 << 20);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_GT(r->next_offset.value(), next) << "no progress at " << next;
    next = r->next_offset.value();
  }
  EXPECT_EQ(next, end);
  fs_.FailOpensAndRenamesOf(kStandby, false);
  ASSERT_TRUE(log->Close().ok());
}

}  // namespace
}  // namespace rill::storage
