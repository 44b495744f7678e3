// The idempotent producers' state kept by a Log (docs/STORAGE.md, Producer state in the log):
// Append's checks (duplicates answered with the original offsets and not written, gaps, stale
// epochs and bad fields refused with nothing written, requests of several batches), the
// follower's unchecked updates, snapshots at rolls and Close, the rebuild at Open (after a
// clean Close, after a crash without a usable snapshot, with a corrupt snapshot, with snapshots
// above the recovered end), truncation, retention and expiry. On FaultyFileSystem.

#include <gtest/gtest.h>

#include <algorithm>

#include <atomic>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "rill/proto/batch_header.h"
#include "rill/proto/endian.h"
#include "rill/storage/faulty_file_system.h"
#include "rill/storage/log.h"
#include "rill/storage/producer_state.h"
#include "test_batches.h"

namespace rill::storage {
namespace {

using testing::MakeBatch;

constexpr const char* kDir = "data/t-0";
constexpr int64_t kPid = 7;

// A batch of `records` records from producer `pid` (epoch, base sequence); CRC recomputed.
std::string IdemBatch(int64_t pid, int16_t epoch, int32_t base_seq, int32_t records,
                      uint64_t fill = 0, size_t payload = 100) {
  std::string b = MakeBatch(records, payload, 1000, fill);
  char* p = b.data();
  be::Store64(p + batch::kProducerIdPos, static_cast<uint64_t>(pid));
  be::Store16(p + batch::kProducerEpochPos, static_cast<uint16_t>(epoch));
  be::Store32(p + batch::kBaseSequencePos, static_cast<uint32_t>(base_seq));
  batch::UpdateCrc(std::span<char>(b.data(), b.size()));
  return b;
}

class LogIdempotenceTest : public ::testing::Test {
 protected:
  LogConfig Config() {
    LogConfig c;
    c.segment_bytes = 16 * 1024;
    c.index_interval_bytes = 512;
    c.flush_policy = FlushPolicy::kNone;  // nothing is synced unless the test flushes
    c.preallocate_bytes = 0;
    c.retention_ms = -1;
    c.retention_bytes = -1;
    return c;
  }
  std::unique_ptr<Log> OpenLog(const LogConfig& c) {
    auto r = Log::Open(&fs_, kDir, "t-0", c, [this] { return now_.load(); });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  std::unique_ptr<Log> OpenLog() { return OpenLog(Config()); }
  Result<AppendResult> Append(Log& log, std::string bytes, ProducerCheck* refusal = nullptr) {
    return log.Append(std::span<char>(bytes.data(), bytes.size()), LeaderEpoch(1), refusal);
  }
  // Appends and expects success at [base, last].
  void AppendAt(Log& log, const std::string& bytes, int64_t base, int64_t last) {
    auto r = Append(log, bytes);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_FALSE(r->duplicate);
    EXPECT_EQ(r->base_offset, Offset(base));
    EXPECT_EQ(r->last_offset, Offset(last));
  }
  static std::string SnapshotPath(int64_t offset) {
    return std::string(kDir) + "/" + ProducerSnapshotFileName(Offset(offset));
  }

  FaultyFileSystem fs_{17};
  std::atomic<int64_t> now_{1'000'000};
};

TEST_F(LogIdempotenceTest, DuplicateIsNotWrittenAndAnsweredWithTheOriginalOffsets) {
  auto log = OpenLog();
  AppendAt(*log, IdemBatch(kPid, 0, 0, 3), 0, 2);
  AppendAt(*log, IdemBatch(kPid, 0, 3, 2), 3, 4);
  AppendAt(*log, MakeBatch(1, 100, 1000), 5, 5);  // not idempotent
  const uint64_t size = log->size_bytes();
  for (auto [seq, records, base, last] : {std::tuple{0, 3, 0, 2}, std::tuple{3, 2, 3, 4}}) {
    ProducerCheck refusal = ProducerCheck::kAppend;
    auto r = Append(*log, IdemBatch(kPid, 0, seq, records, /*fill=*/99), &refusal);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->duplicate);
    EXPECT_EQ(r->base_offset, Offset(base));
    EXPECT_EQ(r->last_offset, Offset(last));
    EXPECT_EQ(r->log_append_time, -1);
    EXPECT_EQ(r->segment_base, Offset(-1));
    EXPECT_EQ(refusal, ProducerCheck::kAppend);  // untouched
  }
  EXPECT_EQ(log->log_end_offset(), Offset(6));
  EXPECT_EQ(log->size_bytes(), size);
  const ProducerStateTable state = log->producer_state();
  const ProducerEntry* e = state.Find(kPid);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->batches, (std::vector<ProducerBatch>{{0, 2, Offset(0), Offset(2), 1000},
                                                     {3, 4, Offset(3), Offset(4), 1000}}));
  // The next sequence goes on.
  AppendAt(*log, IdemBatch(kPid, 0, 5, 1), 6, 6);
}

TEST_F(LogIdempotenceTest, GapIsRefusedAndNothingWritten) {
  auto log = OpenLog();
  AppendAt(*log, IdemBatch(kPid, 0, 0, 2), 0, 1);
  const uint64_t size = log->size_bytes();
  const ProducerStateTable before = log->producer_state();
  ProducerCheck refusal = ProducerCheck::kAppend;
  auto r = Append(*log, IdemBatch(kPid, 0, 5, 1), &refusal);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange) << r.status().ToString();
  EXPECT_EQ(refusal, ProducerCheck::kOutOfOrderSequence);
  EXPECT_NE(r.status().message().find("partition t-0"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("expected sequence 2"), std::string::npos)
      << r.status().message();
  EXPECT_EQ(log->log_end_offset(), Offset(2));
  EXPECT_EQ(log->size_bytes(), size);
  EXPECT_EQ(log->producer_state(), before);
  AppendAt(*log, IdemBatch(kPid, 0, 2, 1), 2, 2);
}

TEST_F(LogIdempotenceTest, StaleEpochAndInvalidFieldsAreRefused) {
  auto log = OpenLog();
  AppendAt(*log, IdemBatch(kPid, 2, 0, 1), 0, 0);
  ProducerCheck refusal = ProducerCheck::kAppend;
  auto r = Append(*log, IdemBatch(kPid, 1, 1, 1), &refusal);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refusal, ProducerCheck::kInvalidProducerEpoch);
  // A newer epoch must start at sequence 0.
  r = Append(*log, IdemBatch(kPid, 3, 5, 1), &refusal);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(refusal, ProducerCheck::kOutOfOrderSequence);
  r = Append(*log, IdemBatch(kPid, -1, 0, 1), &refusal);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refusal, ProducerCheck::kInvalidRecord);
  r = Append(*log, IdemBatch(kPid + 1, 0, -1, 1), &refusal);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(refusal, ProducerCheck::kInvalidRecord);
  EXPECT_EQ(log->log_end_offset(), Offset(1));
  EXPECT_EQ(log->producer_state().size(), 1u);
  AppendAt(*log, IdemBatch(kPid, 3, 0, 1), 1, 1);
  EXPECT_EQ(log->producer_state().Find(kPid)->epoch, 3);
}

TEST_F(LogIdempotenceTest, NonIdempotentBatchesAreUnaffected) {
  auto log = OpenLog();
  const std::string b = MakeBatch(2, 100, 1000, 5);
  for (int i = 0; i < 3; ++i) AppendAt(*log, b, 2 * i, 2 * i + 1);  // the same bytes, thrice
  EXPECT_EQ(log->producer_state().size(), 0u);
  ASSERT_TRUE(log->Close().ok());
  log = OpenLog();
  EXPECT_EQ(log->producer_state().size(), 0u);
  EXPECT_EQ(log->producer_snapshot_offsets(), (std::vector<Offset>{Offset(6)}));
}

TEST_F(LogIdempotenceTest, RequestsOfSeveralBatchesAreCheckedInOrder) {
  auto log = OpenLog();
  AppendAt(*log, IdemBatch(kPid, 0, 0, 2) + IdemBatch(kPid, 0, 2, 2) + MakeBatch(1, 100, 1000), 0,
           4);
  EXPECT_EQ(log->producer_state().Find(kPid)->batches.size(), 2u);
  ProducerCheck refusal = ProducerCheck::kAppend;
  // The second batch leaves a gap after the first (which alone would be accepted).
  auto r = Append(*log, IdemBatch(kPid, 0, 4, 1) + IdemBatch(kPid, 0, 9, 1), &refusal);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(refusal, ProducerCheck::kOutOfOrderSequence);
  EXPECT_NE(r.status().message().find("batch 2 of 2"), std::string::npos) << r.status().message();
  // A retry mixed with a new batch.
  refusal = ProducerCheck::kAppend;
  r = Append(*log, IdemBatch(kPid, 0, 2, 2) + IdemBatch(kPid, 0, 4, 1), &refusal);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refusal, ProducerCheck::kDuplicate);
  // The same producer twice in one request, the second a repeat of the first.
  r = Append(*log, IdemBatch(kPid, 0, 4, 1) + IdemBatch(kPid, 0, 4, 1), &refusal);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(refusal, ProducerCheck::kDuplicate);
  EXPECT_EQ(log->log_end_offset(), Offset(5));
  // Two producers, one of them new, in one request.
  AppendAt(*log, IdemBatch(kPid, 0, 4, 1) + IdemBatch(kPid + 1, 0, 40, 3), 5, 8);
  EXPECT_EQ(log->producer_state().Find(kPid + 1)->batches,
            (std::vector<ProducerBatch>{{40, 42, Offset(6), Offset(8), 1000}}));
}

TEST_F(LogIdempotenceTest, FollowerAppendsUpdateWithoutChecks) {
  auto log = OpenLog();
  // As a leader stored them: a gap in sequences the leader accepted (say, after an expiry).
  std::string a = IdemBatch(kPid, 0, 0, 2);
  std::string b = IdemBatch(kPid, 0, 10, 1);
  batch::SetBaseOffset(std::span<char>(a.data(), a.size()), 0);
  batch::SetBaseOffset(std::span<char>(b.data(), b.size()), 2);
  std::string both = a + b;
  auto r = log->AppendReplicated(std::span<const char>(both.data(), both.size()));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(log->producer_state().Find(kPid)->batches,
            (std::vector<ProducerBatch>{{0, 1, Offset(0), Offset(1), 1000},
                                        {10, 10, Offset(2), Offset(2), 1000}}));
}

TEST_F(LogIdempotenceTest, StateSurvivesCloseAndOpenFromTheSnapshot) {
  auto log = OpenLog();
  AppendAt(*log, IdemBatch(kPid, 0, 0, 2), 0, 1);
  AppendAt(*log, IdemBatch(kPid + 1, 4, 0, 3), 2, 4);
  AppendAt(*log, IdemBatch(kPid, 0, 2, 1), 5, 5);
  const ProducerStateTable before = log->producer_state();
  ASSERT_TRUE(log->Close().ok());
  EXPECT_TRUE(fs_.Exists(SnapshotPath(6)));
  log.reset();
  now_ += 5000;  // a replay would stamp the producers with the new time; the snapshot does not
  log = OpenLog();
  EXPECT_EQ(log->producer_state(), before);
  EXPECT_EQ(log->producer_state().Find(kPid)->last_update_ms, 1'000'000);
  auto r = Append(*log, IdemBatch(kPid, 0, 2, 1));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->duplicate);
  EXPECT_EQ(r->base_offset, Offset(5));
  AppendAt(*log, IdemBatch(kPid + 1, 4, 3, 1), 6, 6);
}

TEST_F(LogIdempotenceTest, CrashWithoutSnapshotRebuildsFromTheLog) {
  LogConfig one_segment = Config();
  one_segment.segment_bytes = 1024 * 1024;  // no roll, so no snapshot
  auto log = OpenLog(one_segment);
  // Three batches more than the cache keeps, of two records each, then another producer's.
  const int n = static_cast<int>(kProducerBatchesKept) + 3;
  for (int i = 0; i < n; ++i) AppendAt(*log, IdemBatch(kPid, 0, 2 * i, 2), 2 * i, 2 * i + 1);
  AppendAt(*log, IdemBatch(kPid + 1, 1, 0, 1), 2 * n, 2 * n);
  ASSERT_TRUE(log->Flush().ok());
  const ProducerStateTable before = log->producer_state();
  // Not synced: lost in the crash.
  AppendAt(*log, IdemBatch(kPid, 0, 2 * n, 2), 2 * n + 1, 2 * n + 2);
  log.reset();
  fs_.Crash(FaultyFileSystem::CrashMode::kDropUnsynced);
  log = OpenLog(one_segment);
  ASSERT_EQ(log->log_end_offset(), Offset(2 * n + 1));
  EXPECT_TRUE(log->producer_snapshot_offsets().empty());
  EXPECT_EQ(log->producer_state(), before);  // same clock: replay stamps the same time
  EXPECT_EQ(log->producer_state().Find(kPid)->batches.size(), kProducerBatchesKept);
  EXPECT_EQ(log->producer_state().Find(kPid)->batches.front(),
            (ProducerBatch{6, 7, Offset(6), Offset(7), 1000}));
  // The lost batch is not a duplicate: it is appended again, where the log now ends.
  AppendAt(*log, IdemBatch(kPid, 0, 2 * n, 2), 2 * n + 1, 2 * n + 2);
  auto r = Append(*log, IdemBatch(kPid, 0, 2 * n - 2, 2));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->duplicate);
  EXPECT_EQ(r->base_offset, Offset(2 * n - 2));
}

TEST_F(LogIdempotenceTest, SnapshotsAtRollsAboveTheRecoveredEndAreRemoved) {
  LogConfig c = Config();
  c.segment_bytes = 2048;  // about 12 batches of 161 bytes per segment
  auto log = OpenLog(c);
  int64_t next = 0;
  int32_t seq = 0;
  auto append = [&] {
    AppendAt(*log, IdemBatch(kPid, 0, seq, 1), next, next);
    ++next;
    ++seq;
  };
  for (int i = 0; i < 30; ++i) append();
  ASSERT_TRUE(log->Flush().ok());
  const ProducerStateTable flushed = log->producer_state();
  const std::vector<Offset> flushed_snaps = log->producer_snapshot_offsets();
  ASSERT_EQ(flushed_snaps, (std::vector<Offset>{Offset(12), Offset(24)}));
  for (int i = 0; i < 20; ++i) append();  // rolls at 36 and 48, their batches unsynced
  EXPECT_EQ(log->producer_snapshot_offsets(),
            (std::vector<Offset>{Offset(24), Offset(36), Offset(48)}));
  EXPECT_FALSE(fs_.Exists(SnapshotPath(12)));  // at most three kept
  log.reset();
  fs_.Crash(FaultyFileSystem::CrashMode::kDropUnsynced);
  EXPECT_TRUE(fs_.Exists(SnapshotPath(36)));  // durable, yet above what survived
  log = OpenLog(c);
  ASSERT_EQ(log->log_end_offset(), Offset(30));
  EXPECT_FALSE(fs_.Exists(SnapshotPath(36)));
  EXPECT_FALSE(fs_.Exists(SnapshotPath(48)));
  // The removal of the snapshot at 12 (the fourth) was not durable yet: back, and harmless.
  EXPECT_EQ(log->producer_snapshot_offsets(), (std::vector<Offset>{Offset(12), Offset(24)}));
  EXPECT_EQ(log->producer_state(), flushed);
  // Sequence 30 follows; 29 is a duplicate.
  next = 30;
  seq = 30;
  append();
  auto r = Append(*log, IdemBatch(kPid, 0, 29, 1));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->duplicate);
  EXPECT_EQ(r->base_offset, Offset(29));
}

TEST_F(LogIdempotenceTest, TruncationThenTheSameSequenceIsAcceptedAgain) {
  LogConfig c = Config();
  c.segment_bytes = 2048;
  auto log = OpenLog(c);
  for (int i = 0; i < 30; ++i) AppendAt(*log, IdemBatch(kPid, 0, i, 1), i, i);
  ASSERT_EQ(log->producer_snapshot_offsets(), (std::vector<Offset>{Offset(12), Offset(24)}));
  // Into the second segment: the snapshot at 24 goes, the state comes from the one at 12.
  ASSERT_TRUE(log->TruncateTo(Offset(20)).ok());
  EXPECT_EQ(log->log_end_offset(), Offset(20));
  EXPECT_EQ(log->producer_snapshot_offsets(), (std::vector<Offset>{Offset(12)}));
  EXPECT_FALSE(fs_.Exists(SnapshotPath(24)));
  const ProducerStateTable state = log->producer_state();
  const ProducerEntry* e = state.Find(kPid);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->batches.back(), (ProducerBatch{19, 19, Offset(19), Offset(19), 1000}));
  // The oldest of the last kProducerBatchesKept of sequences 0..19.
  const int32_t oldest = std::max(0, 20 - static_cast<int32_t>(kProducerBatchesKept));
  EXPECT_EQ(e->batches.front(),
            (ProducerBatch{oldest, oldest, Offset(oldest), Offset(oldest), 1000}));
  // Sequence 20 was truncated away: its retry is new, not a duplicate; 19 still is one.
  AppendAt(*log, IdemBatch(kPid, 0, 20, 1, /*fill=*/3), 20, 20);
  auto r = Append(*log, IdemBatch(kPid, 0, 19, 1));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->duplicate);
  EXPECT_EQ(r->base_offset, Offset(19));
  const ProducerStateTable before = log->producer_state();
  ASSERT_TRUE(log->Close().ok());
  log = OpenLog(c);
  EXPECT_EQ(log->producer_state(), before);
  // Truncation to the log start empties the state.
  ASSERT_TRUE(log->TruncateTo(Offset(0)).ok());
  EXPECT_EQ(log->producer_state().size(), 0u);
  EXPECT_TRUE(log->producer_snapshot_offsets().empty());
  AppendAt(*log, IdemBatch(kPid, 0, 0, 1), 0, 0);
}

TEST_F(LogIdempotenceTest, TruncationRestoresAProducerReplacedByANewerEpoch) {
  auto log = OpenLog();
  AppendAt(*log, IdemBatch(kPid, 0, 0, 1), 0, 0);
  AppendAt(*log, IdemBatch(kPid, 0, 1, 1), 1, 1);
  ASSERT_TRUE(log->Close().ok());  // snapshot at 2
  log = OpenLog();
  AppendAt(*log, IdemBatch(kPid, 1, 0, 1), 2, 2);  // epoch bump replaces the cached batches
  ASSERT_TRUE(log->TruncateTo(Offset(2)).ok());
  const ProducerStateTable state = log->producer_state();
  const ProducerEntry* e = state.Find(kPid);
  ASSERT_NE(e, nullptr);  // the table's own TruncateTo would have dropped it
  EXPECT_EQ(e->epoch, 0);
  EXPECT_EQ(e->batches.size(), 2u);
  auto r = Append(*log, IdemBatch(kPid, 0, 5, 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
}

TEST_F(LogIdempotenceTest, CorruptSnapshotIsRemovedAndTheStateRebuiltFromTheLog) {
  auto log = OpenLog();
  for (int i = 0; i < 4; ++i) AppendAt(*log, IdemBatch(kPid, 0, 3 * i, 3), 3 * i, 3 * i + 2);
  const ProducerStateTable before = log->producer_state();
  ASSERT_TRUE(log->Close().ok());
  log.reset();
  ASSERT_TRUE(fs_.Exists(SnapshotPath(12)));
  fs_.FlipBit(SnapshotPath(12), 30, 2);
  log = OpenLog();
  EXPECT_FALSE(fs_.Exists(SnapshotPath(12)));
  EXPECT_TRUE(log->producer_snapshot_offsets().empty());
  EXPECT_EQ(log->producer_state(), before);
  auto r = Append(*log, IdemBatch(kPid, 0, 9, 3));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->duplicate);
  EXPECT_EQ(r->base_offset, Offset(9));
  EXPECT_EQ(r->last_offset, Offset(11));
}

TEST_F(LogIdempotenceTest, RetentionKeepsTheStateAndTrimsSnapshots) {
  LogConfig c = Config();
  c.segment_bytes = 2048;
  auto log = OpenLog(c);
  // Producer 7 writes only into the first segment; then plain batches fill four more.
  for (int i = 0; i < 5; ++i) AppendAt(*log, IdemBatch(kPid, 0, i, 1), i, i);
  for (int i = 5; i < 60; ++i) AppendAt(*log, MakeBatch(1, 100, 1000), i, i);
  ASSERT_EQ(log->producer_snapshot_offsets(),
            (std::vector<Offset>{Offset(24), Offset(36), Offset(48)}));
  ASSERT_TRUE(log->ApplyConfig([&] {
                    LogConfig d = c;
                    d.retention_bytes = 1;
                    return d;
                  }())
                  .ok());
  auto ret = log->ApplyRetention(now_.load());
  ASSERT_TRUE(ret.ok()) << ret.status().ToString();
  EXPECT_EQ(ret->segments, 4);
  EXPECT_EQ(log->log_start_offset(), Offset(48));
  EXPECT_EQ(log->producer_snapshot_offsets(), (std::vector<Offset>{Offset(48)}));
  EXPECT_FALSE(fs_.Exists(SnapshotPath(36)));
  ProducerStateTable state = log->producer_state();
  const ProducerEntry* e = state.Find(kPid);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->batches.back(), (ProducerBatch{4, 4, Offset(4), Offset(4), 1000}));
  // A retry of a batch retention removed is still a duplicate; the next sequence follows.
  auto r = Append(*log, IdemBatch(kPid, 0, 4, 1));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->duplicate);
  EXPECT_EQ(r->base_offset, Offset(4));
  r = Append(*log, IdemBatch(kPid, 0, 6, 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kOutOfRange);
  // The snapshot at the log start carries it across a crash.
  log.reset();
  fs_.Crash(FaultyFileSystem::CrashMode::kDropUnsynced);
  log = OpenLog(c);
  ASSERT_EQ(log->log_start_offset(), Offset(48));
  state = log->producer_state();
  e = state.Find(kPid);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->batches.back(), (ProducerBatch{4, 4, Offset(4), Offset(4), 1000}));
}

TEST_F(LogIdempotenceTest, IdleProducersExpire) {
  LogConfig c = Config();
  c.producer_id_expiration_ms = 10'000;
  auto log = OpenLog(c);
  AppendAt(*log, IdemBatch(kPid, 0, 0, 1), 0, 0);
  now_ += 6'000;
  AppendAt(*log, IdemBatch(kPid + 1, 0, 0, 1), 1, 1);
  now_ += 4'000;  // producer 7 idle for 10 s, producer 8 for 4 s
  ASSERT_TRUE(log->ApplyRetention(now_.load()).ok());
  EXPECT_EQ(log->producer_state().Find(kPid), nullptr);
  EXPECT_NE(log->producer_state().Find(kPid + 1), nullptr);
  // An expired producer is unknown: any sequence is accepted (KIP-360).
  AppendAt(*log, IdemBatch(kPid, 0, 17, 1), 2, 2);
  now_ += 10'000;
  ASSERT_TRUE(log->Close().ok());  // expires both before the snapshot
  log = OpenLog(c);
  EXPECT_EQ(log->producer_state().size(), 0u);
}

}  // namespace
}  // namespace rill::storage
