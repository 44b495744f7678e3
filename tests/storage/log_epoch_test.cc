// The leader-epoch history of a Log and the follower's AppendReplicated: the history that
// appends build, truncation and retention trim, the leader-epoch-checkpoint file across reopen,
// its rebuild from the segments when missing, damaged or stale, crashes on FaultyFileSystem
// (the history must match the recovered log), AppendReplicated's refusals (nothing written) and
// byte-identical replication. RILL_SEED=<seed> replays the randomised crash test.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "recording_file_system.h"
#include "rill/proto/batch_header.h"
#include "rill/storage/faulty_file_system.h"
#include "rill/storage/leader_epoch.h"
#include "rill/storage/log.h"
#include "test_batches.h"

namespace rill::storage {

// For gtest's messages.
void PrintTo(const EpochEntry& e, std::ostream* os) {
  *os << "{epoch " << e.epoch.value() << ", start " << e.start_offset.value() << "}";
}

namespace {

using testing::MakeBatch;
using namespace std::chrono_literals;

constexpr const char* kDir = "data/t-0";
constexpr const char* kCheckpoint = "data/t-0/leader-epoch-checkpoint";

using History = std::vector<EpochEntry>;

EpochEntry E(int32_t epoch, int64_t start) { return {LeaderEpoch(epoch), Offset(start)}; }

std::string Describe(const History& h) {
  std::string s = "[";
  for (const auto& e : h) {
    s += "(" + std::to_string(e.epoch.value()) + "," + std::to_string(e.start_offset.value()) + ")";
  }
  return s + "]";
}

// Reads everything from `from` to the end, batch by batch.
std::string ReadAll(const Log& log, Offset from) {
  std::string out;
  while (from < log.log_end_offset()) {
    auto r = log.Read(from, 1 << 20);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || r->data.empty()) break;
    out += r->data;
    from = r->next_offset;
  }
  return out;
}

// The history the rule in leader_epoch.h gives for the log's batches from its start on, with
// the first entry (if it started below the log start) at the log start: what a rebuild finds.
History HistoryOfContents(const Log& log) {
  History h;
  std::string data = ReadAll(log, log.log_start_offset());
  batch::BatchIterator it(data);
  while (it.Next()) {
    LeaderEpoch e(it.header().partition_leader_epoch);
    if (e > kNoEpoch && (h.empty() || e > h.back().epoch)) {
      h.push_back({e, Offset(it.header().base_offset)});
    }
  }
  EXPECT_TRUE(it.status().ok()) << it.status().ToString();
  return h;
}

class LogEpochTest : public ::testing::Test {
 protected:
  LogConfig Config() {
    LogConfig c;
    c.segment_bytes = 16 * 1024;
    c.index_interval_bytes = 512;
    c.flush_policy = FlushPolicy::kNone;
    c.preallocate_bytes = 0;
    c.retention_ms = -1;
    c.retention_bytes = -1;
    return c;
  }
  std::unique_ptr<Log> OpenLog(FileSystem* fs, const LogConfig& c, const char* dir = kDir) {
    auto r = Log::Open(fs, dir, "t-0", c, [] { return int64_t{1'000'000}; });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }
  std::unique_ptr<Log> OpenLog(const LogConfig& c) { return OpenLog(&fs_, c); }
  // Appends one batch of `records` records as leader in `epoch`; returns the stored bytes.
  std::string Append(Log& log, int32_t records, int epoch, size_t payload = 200) {
    std::string b = MakeBatch(records, payload, 1000, seq_++);
    auto r = log.Append(std::span<char>(b.data(), b.size()), LeaderEpoch(epoch));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return b;
  }
  // A batch as a leader would have stored it: offsets from `base`, epoch stamped.
  std::string LeaderBatch(int64_t base, int32_t records, int epoch, size_t payload = 200) {
    std::string b = MakeBatch(records, payload, 1000, seq_++);
    batch::SetBaseOffset(std::span<char>(b.data(), b.size()), base);
    batch::SetPartitionLeaderEpoch(std::span<char>(b.data(), b.size()), epoch);
    return b;
  }
  Status Replicate(Log& log, const std::string& bytes) {
    auto r = log.AppendReplicated(std::span<const char>(bytes.data(), bytes.size()));
    return r.ok() ? Status::OK() : r.status();
  }

  FaultyFileSystem fs_{11};
  uint64_t seq_ = 1;
};

TEST(LeaderEpochFormatTest, RoundTripsAndRefusesDamage) {
  History h = {E(0, 0), E(3, 17), E(7, 1'000'000'000'000)};
  std::string text = EncodeEpochCheckpoint(h);
  auto back = DecodeEpochCheckpoint(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, h);
  auto empty = DecodeEpochCheckpoint(EncodeEpochCheckpoint({}));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  // Every single-byte change is caught (the CRC covers the body; the crc line parses or not).
  for (size_t i = 0; i < text.size(); ++i) {
    std::string bad = text;
    bad[i] ^= 0x04;
    auto r = DecodeEpochCheckpoint(bad);
    EXPECT_FALSE(r.ok()) << "byte " << i;
  }
  EXPECT_EQ(DecodeEpochCheckpoint("").status().code(), StatusCode::kCorruption);
  EXPECT_FALSE(DecodeEpochCheckpoint(text.substr(0, text.size() / 2)).ok());
  // Well sealed but out of order.
  EXPECT_FALSE(DecodeEpochCheckpoint(EncodeEpochCheckpoint({E(3, 10), E(2, 20)})).ok());
  EXPECT_FALSE(DecodeEpochCheckpoint(EncodeEpochCheckpoint({E(2, 20), E(3, 20)})).ok());
}

TEST(LeaderEpochFormatTest, TruncateAndTrim) {
  History h = {E(1, 0), E(2, 10), E(4, 20)};
  EXPECT_FALSE(TruncateEpochHistory(&h, Offset(21)));
  EXPECT_TRUE(TruncateEpochHistory(&h, Offset(20)));
  EXPECT_EQ(h, (History{E(1, 0), E(2, 10)}));

  h = {E(1, 0), E(2, 10), E(4, 20)};
  EXPECT_FALSE(TrimEpochHistoryBelow(&h, Offset(0)));
  EXPECT_TRUE(TrimEpochHistoryBelow(&h, Offset(5)));
  EXPECT_EQ(h, (History{E(1, 5), E(2, 10), E(4, 20)}));
  EXPECT_TRUE(TrimEpochHistoryBelow(&h, Offset(10)));
  EXPECT_EQ(h, (History{E(2, 10), E(4, 20)}));
  EXPECT_TRUE(TrimEpochHistoryBelow(&h, Offset(25)));
  EXPECT_EQ(h, (History{E(4, 25)}));
  History later = {E(4, 30)};
  EXPECT_FALSE(TrimEpochHistoryBelow(&later, Offset(25)));
}

TEST_F(LogEpochTest, AppendsWithRisingEpochsBuildTheHistory) {
  auto log = OpenLog(Config());
  EXPECT_TRUE(log->epoch_history().empty());
  EXPECT_EQ(log->latest_epoch(), kNoEpoch);
  Append(*log, 3, 1);  // 0..2
  Append(*log, 2, 1);  // 3..4
  Append(*log, 4, 3);  // 5..8
  Append(*log, 1, 2);  // 9: a lower epoch adds nothing
  Append(*log, 1, 3);  // 10
  Append(*log, 5, 6);  // 11..15
  EXPECT_EQ(log->epoch_history(), (History{E(1, 0), E(3, 5), E(6, 11)}))
      << Describe(log->epoch_history());
  EXPECT_EQ(log->latest_epoch(), LeaderEpoch(6));
  ASSERT_TRUE(log->Close().ok());
}

TEST_F(LogEpochTest, AnAppendInTheLatestEpochDoesNotWriteTheCheckpoint) {
  testing::RecordingFileSystem fs;
  auto log = OpenLog(&fs, Config());
  Append(*log, 1, 4);
  auto count = [&] {
    int renames = 0;
    for (const auto& ev : fs.events()) renames += ev.op == "rename" && ev.path == kCheckpoint;
    return renames;
  };
  EXPECT_EQ(count(), 1);
  for (int i = 0; i < 100; ++i) Append(*log, 2, i % 2 ? 4 : 3);  // same or lower epoch
  EXPECT_EQ(count(), 1);
  // A new epoch: the checkpoint is renamed into place (durably) before the batch is written.
  const size_t before = fs.events().size();
  Append(*log, 1, 5);
  auto events = fs.events();
  int rename_at = -1, syncdir_after = -1, write_at = -1;
  for (size_t i = before; i < events.size(); ++i) {
    if (events[i].op == "rename" && events[i].path == kCheckpoint) rename_at = static_cast<int>(i);
    if (rename_at >= 0 && syncdir_after < 0 && events[i].op == "syncdir") {
      syncdir_after = static_cast<int>(i);
    }
    if (write_at < 0 && events[i].op == "write" && events[i].path.ends_with(".log")) {
      write_at = static_cast<int>(i);
    }
  }
  ASSERT_GE(rename_at, 0);
  ASSERT_GE(syncdir_after, 0);
  ASSERT_GE(write_at, 0);
  EXPECT_LT(syncdir_after, write_at);
  EXPECT_EQ(count(), 2);
  ASSERT_TRUE(log->Close().ok());
}

TEST_F(LogEpochTest, ReplicatedBatchesKeepOffsetsAndEpochsAndReadBackIdentically) {
  auto leader = OpenLog(&fs_, Config(), "data/leader");
  std::mt19937_64 rng(5);
  int epoch = 0;
  for (int i = 0; i < 200; ++i) {
    if (rng() % 20 == 0) epoch += 1 + static_cast<int>(rng() % 3);
    std::string b = MakeBatch(1 + static_cast<int32_t>(rng() % 6), rng() % 900, 1000 + i, seq_++);
    auto r = leader->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(epoch));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  auto follower = OpenLog(Config());
  // Fetch-sized chunks, as a follower would copy them.
  Offset from(0);
  while (from < leader->log_end_offset()) {
    auto r = leader->Read(from, 1 + rng() % 6000);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    auto a = follower->AppendReplicated(std::span<const char>(r->data.data(), r->data.size()));
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    EXPECT_EQ(a->base_offset, from);
    EXPECT_EQ(a->last_offset + 1, r->next_offset);
    from = r->next_offset;
  }
  EXPECT_EQ(follower->log_end_offset(), leader->log_end_offset());
  EXPECT_GT(follower->segment_count(), 1u);  // rolled like the leader
  EXPECT_EQ(ReadAll(*follower, Offset(0)), ReadAll(*leader, Offset(0)));
  EXPECT_EQ(follower->epoch_history(), leader->epoch_history());
  EXPECT_EQ(follower->epoch_history(), HistoryOfContents(*follower));
  EXPECT_GT(follower->epoch_history().size(), 3u);
  // Reads in the middle of the log agree too (indexes were built for replicated batches).
  for (int64_t o = 0; o < leader->log_end_offset().value(); o += 37) {
    auto l = leader->Read(Offset(o), 3000);
    auto f = follower->Read(Offset(o), 3000);
    ASSERT_TRUE(l.ok() && f.ok());
    EXPECT_EQ(l->data, f->data) << "offset " << o;
  }
  ASSERT_TRUE(follower->Close().ok());
  follower = OpenLog(Config());
  EXPECT_EQ(ReadAll(*follower, Offset(0)), ReadAll(*leader, Offset(0)));
  EXPECT_EQ(follower->epoch_history(), leader->epoch_history());
  ASSERT_TRUE(leader->Close().ok());
}

TEST_F(LogEpochTest, AppendReplicatedRefusesBadInputAndWritesNothing) {
  LogConfig c = Config();
  c.max_batch_bytes = 8192;
  auto log = OpenLog(c);
  ASSERT_TRUE(Replicate(*log, LeaderBatch(0, 5, 2) + LeaderBatch(5, 5, 4)).ok());
  const History history = {E(2, 0), E(4, 5)};
  ASSERT_EQ(log->epoch_history(), history);
  const std::string contents = ReadAll(*log, Offset(0));
  auto unchanged = [&](const char* what) {
    SCOPED_TRACE(what);
    EXPECT_EQ(log->log_end_offset(), Offset(10));
    EXPECT_EQ(log->epoch_history(), history);
    EXPECT_EQ(log->latest_epoch(), LeaderEpoch(4));
    EXPECT_EQ(ReadAll(*log, Offset(0)), contents);
    EXPECT_EQ(log->size_bytes(), contents.size());
    EXPECT_TRUE(log->health().ok());
  };
  auto expect = [&](const std::string& bytes, StatusCode code, const char* what,
                    const char* mention) {
    Status st = Replicate(*log, bytes);
    EXPECT_EQ(st.code(), code) << what << ": " << st.ToString();
    EXPECT_NE(st.message().find(mention), std::string::npos) << what << ": " << st.ToString();
    unchanged(what);
  };
  // A gap after the log end, and an overlap with it.
  expect(LeaderBatch(11, 2, 4), StatusCode::kInvalidArgument, "gap", "offset 11");
  expect(LeaderBatch(8, 2, 4), StatusCode::kInvalidArgument, "overlap", "log ends at 10");
  // Not contiguous inside one call (gap, overlap); the good first batch is not written either.
  expect(LeaderBatch(10, 2, 4) + LeaderBatch(13, 1, 4), StatusCode::kInvalidArgument,
         "gap between batches", "offset 13");
  expect(LeaderBatch(10, 2, 4) + LeaderBatch(11, 1, 4), StatusCode::kInvalidArgument,
         "overlap between batches", "offset 11");
  // An epoch below the latest, at the start or after a new epoch in the same call.
  expect(LeaderBatch(10, 2, 3), StatusCode::kCorruption, "old epoch", "epoch 3");
  expect(LeaderBatch(10, 2, 6) + LeaderBatch(12, 1, 5), StatusCode::kCorruption, "epoch going back",
         "epoch 5");
  // A bad CRC (in the second batch), a torn batch, nothing at all.
  std::string bad = LeaderBatch(12, 1, 4);
  bad[bad.size() - 1] ^= 1;
  expect(LeaderBatch(10, 2, 4) + bad, StatusCode::kCorruption, "bad crc", "CRC");
  std::string torn = LeaderBatch(10, 2, 4);
  expect(torn.substr(0, torn.size() - 3), StatusCode::kCorruption, "torn", "");
  Status st = Replicate(*log, "");
  EXPECT_FALSE(st.ok());
  unchanged("empty");
  // Too large for max.message.bytes.
  expect(LeaderBatch(10, 2, 4, 20'000), StatusCode::kInvalidArgument, "too large",
         "max.message.bytes");
  // And the log still takes the right batches (an equal epoch, then a new one).
  ASSERT_TRUE(Replicate(*log, LeaderBatch(10, 2, 4) + LeaderBatch(12, 3, 9)).ok());
  EXPECT_EQ(log->log_end_offset(), Offset(15));
  EXPECT_EQ(log->epoch_history(), (History{E(2, 0), E(4, 5), E(9, 12)}));
  ASSERT_TRUE(log->Close().ok());
}

TEST_F(LogEpochTest, ReplicatedAppendsAreDurableLikeLeaderAppends) {
  LogConfig c = Config();
  c.flush_policy = FlushPolicy::kGroup;
  auto log = OpenLog(c);
  ASSERT_TRUE(Replicate(*log, LeaderBatch(0, 3, 1)).ok());
  std::atomic<bool> done{false};
  log->OnDurable(Offset(2), [&](Status s) {
    EXPECT_TRUE(s.ok()) << s.ToString();
    done = true;
  });
  EXPECT_TRUE(log->WaitDurable(Offset(2), std::chrono::steady_clock::now() + 30s).ok());
  EXPECT_GE(log->durable_offset(), Offset(3));
  ASSERT_TRUE(log->Close().ok());
  EXPECT_TRUE(done.load());
}

TEST_F(LogEpochTest, TruncationTrimsTheHistoryDurably) {
  auto log = OpenLog(Config());
  for (int i = 0; i < 10; ++i) Append(*log, 2, 1);  // 0..19
  for (int i = 0; i < 10; ++i) Append(*log, 2, 2);  // 20..39
  for (int i = 0; i < 10; ++i) Append(*log, 2, 5);  // 40..59
  ASSERT_EQ(log->epoch_history(), (History{E(1, 0), E(2, 20), E(5, 40)}));
  ASSERT_TRUE(log->TruncateTo(Offset(45)).ok());  // inside epoch 5: unchanged
  EXPECT_EQ(log->epoch_history(), (History{E(1, 0), E(2, 20), E(5, 40)}));
  ASSERT_TRUE(log->TruncateTo(Offset(41)).ok());  // the batch 40..41 goes whole: so does epoch 5
  EXPECT_EQ(log->log_end_offset(), Offset(40));
  EXPECT_EQ(log->epoch_history(), (History{E(1, 0), E(2, 20)}));
  EXPECT_EQ(log->latest_epoch(), LeaderEpoch(2));
  // New epochs after the truncation start where the log now ends.
  Append(*log, 2, 3);
  EXPECT_EQ(log->epoch_history(), (History{E(1, 0), E(2, 20), E(3, 40)}));
  // A crash right now (nothing flushed under `none`, but the checkpoint is durable) and reopen.
  log.reset();
  log = OpenLog(Config());
  EXPECT_EQ(log->epoch_history(), HistoryOfContents(*log));
  // Truncating to the log start empties the log; the history restarts with it.
  ASSERT_TRUE(log->TruncateTo(Offset(0)).ok());
  EXPECT_TRUE(log->epoch_history().empty());
  EXPECT_EQ(log->latest_epoch(), kNoEpoch);
  Append(*log, 1, 1);  // a lower epoch than before is new again
  EXPECT_EQ(log->epoch_history(), (History{E(1, 0)}));
  ASSERT_TRUE(log->Close().ok());
  log = OpenLog(Config());
  EXPECT_EQ(log->epoch_history(), (History{E(1, 0)}));
  ASSERT_TRUE(log->Close().ok());
}

TEST_F(LogEpochTest, OffsetsWrittenAgainAfterATruncationDoNotInheritTheOldEntry) {
  // The case the truncation's durable checkpoint write exists for: offsets removed and written
  // again in an epoch that starts no entry must not be claimed by the removed entry after a crash.
  LogConfig c = Config();
  c.flush_policy = FlushPolicy::kGroup;
  auto log = OpenLog(c);
  for (int i = 0; i < 5; ++i) Append(*log, 2, 1);  // 0..9
  for (int i = 0; i < 5; ++i) Append(*log, 2, 3);  // 10..19
  ASSERT_TRUE(log->Flush().ok());
  ASSERT_TRUE(log->TruncateTo(Offset(6)).ok());
  for (int i = 0; i < 5; ++i) Append(*log, 2, 1);  // 6..15, still epoch 1: no new entry
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(log->epoch_history(), (History{E(1, 0)}));
  log.reset();
  fs_.Crash(FaultyFileSystem::CrashMode::kDropUnsynced);
  log = OpenLog(c);
  EXPECT_EQ(log->log_end_offset(), Offset(16));
  EXPECT_EQ(log->epoch_history(), (History{E(1, 0)}));
  // Then a new epoch at the end.
  Append(*log, 2, 2);
  ASSERT_TRUE(log->Flush().ok());
  log.reset();
  fs_.Crash(FaultyFileSystem::CrashMode::kDropUnsynced);
  log = OpenLog(c);
  EXPECT_EQ(log->epoch_history(), (History{E(1, 0), E(2, 16)}));
}

TEST_F(LogEpochTest, RetentionTrimsTheHistory) {
  LogConfig c = Config();
  c.segment_bytes = 2048;
  auto log = OpenLog(c);
  // About 8 batches per segment; a new epoch every 5 batches.
  for (int i = 0; i < 60; ++i) Append(*log, 1, i / 5);
  ASSERT_GT(log->segment_count(), 5u);
  ASSERT_EQ(log->epoch_history().size(), 12u);
  LogConfig r = c;
  r.retention_bytes = 3 * 2048;
  ASSERT_TRUE(log->ApplyConfig(r).ok());
  auto removed = log->ApplyRetention(2'000'000);
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  ASSERT_GT(removed->segments, 0);
  const Offset start = log->log_start_offset();
  ASSERT_GT(start, Offset(0));
  History h = log->epoch_history();
  ASSERT_FALSE(h.empty());
  EXPECT_EQ(h.front().start_offset, start) << Describe(h);
  EXPECT_EQ(h.front().epoch, LeaderEpoch(static_cast<int32_t>(start.value() / 5)));
  EXPECT_EQ(h, HistoryOfContents(*log));
  EXPECT_EQ(h.back(), E(11, 55));
  ASSERT_TRUE(log->Close().ok());
  log = OpenLog(r);
  EXPECT_EQ(log->epoch_history(), h);
  ASSERT_TRUE(log->Close().ok());
}

TEST_F(LogEpochTest, TheCheckpointSurvivesCleanAndUncleanReopen) {
  auto log = OpenLog(Config());
  for (int i = 0; i < 30; ++i) Append(*log, 3, 2 * (i / 7));
  const History h = log->epoch_history();
  ASSERT_EQ(h.size(), 5u);
  ASSERT_TRUE(log->Close().ok());
  log = OpenLog(Config());
  EXPECT_EQ(log->epoch_history(), h);
  EXPECT_EQ(log->latest_epoch(), h.back().epoch);
  // Unclean: destroyed without Close.
  Append(*log, 1, 9);
  log.reset();
  log = OpenLog(Config());
  History more = h;
  more.push_back(E(9, 90));
  EXPECT_EQ(log->epoch_history(), more);
  ASSERT_TRUE(log->Close().ok());
}

TEST_F(LogEpochTest, AMissingOrDamagedCheckpointIsRebuiltFromTheSegments) {
  LogConfig c = Config();
  c.segment_bytes = 4096;
  auto log = OpenLog(c);
  for (int i = 0; i < 80; ++i) Append(*log, 2, i / 9);
  const History h = log->epoch_history();
  ASSERT_EQ(h.size(), 9u);
  ASSERT_TRUE(log->Close().ok());

  ASSERT_TRUE(fs_.Remove(kCheckpoint).ok());
  log = OpenLog(c);
  EXPECT_EQ(log->epoch_history(), h);
  ASSERT_TRUE(log->Close().ok());
  EXPECT_TRUE(fs_.Exists(kCheckpoint));  // written back
  auto text = ReadWholeFile(&fs_, kCheckpoint);
  ASSERT_TRUE(text.ok());
  auto parsed = DecodeEpochCheckpoint(*text);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, h);

  // A flipped bit anywhere in the file.
  std::mt19937_64 rng(3);
  for (int round = 0; round < 10; ++round) {
    fs_.FlipBit(kCheckpoint, rng() % text->size(), static_cast<int>(rng() % 8));
    log = OpenLog(c);
    EXPECT_EQ(log->epoch_history(), h) << "round " << round;
    ASSERT_TRUE(log->Close().ok());
  }
  // Garbage.
  ASSERT_TRUE(WriteFileAtomically(&fs_, kCheckpoint, "not a checkpoint").ok());
  log = OpenLog(c);
  EXPECT_EQ(log->epoch_history(), h);
  ASSERT_TRUE(log->Close().ok());
}

TEST_F(LogEpochTest, AStaleCheckpointIsCompletedAndAnOverlongOneCut) {
  auto log = OpenLog(Config());
  for (int i = 0; i < 40; ++i) Append(*log, 1, i / 10);  // epochs 0..3 at 0, 10, 20, 30
  const History h = log->epoch_history();
  ASSERT_EQ(h, (History{E(0, 0), E(1, 10), E(2, 20), E(3, 30)}));
  ASSERT_TRUE(log->Close().ok());
  // As if the last entries never reached the file: the last batch's epoch gives it away.
  ASSERT_TRUE(
      WriteFileAtomically(&fs_, kCheckpoint, EncodeEpochCheckpoint({E(0, 0), E(1, 10)})).ok());
  log = OpenLog(Config());
  EXPECT_EQ(log->epoch_history(), h);
  ASSERT_TRUE(log->Close().ok());
  auto text = ReadWholeFile(&fs_, kCheckpoint);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*DecodeEpochCheckpoint(*text), h);
  // Entries beyond the log end (their batches never made it to disk) are dropped.
  ASSERT_TRUE(WriteFileAtomically(&fs_, kCheckpoint,
                                  EncodeEpochCheckpoint(
                                      {E(0, 0), E(1, 10), E(2, 20), E(3, 30), E(4, 40), E(8, 100)}))
                  .ok());
  log = OpenLog(Config());
  EXPECT_EQ(log->epoch_history(), h);
  ASSERT_TRUE(log->Close().ok());
}

// Random appends (leader and replicated, rising epochs), truncations, flushes and crashes on
// FaultyFileSystem: after each reopen the history equals what the recovered batches give, and
// a further append in a new epoch lands in it.
TEST_F(LogEpochTest, CrashesLeaveAHistoryConsistentWithTheRecoveredLog) {
  const uint64_t seed = testing::TestSeed();
  std::printf("LogEpochTest seed=%llu (replay with RILL_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  FaultyFileSystem fs(seed);
  LogConfig c = Config();
  c.flush_policy = FlushPolicy::kGroup;
  c.segment_bytes = 4096;
  c.retention_bytes = 2 * 4096;
  int epoch = 0;
  for (int round = 0; round < 60 && !HasFailure(); ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto log = OpenLog(&fs, c);
    ASSERT_NE(log, nullptr);
    ASSERT_EQ(log->epoch_history(), HistoryOfContents(*log))
        << Describe(log->epoch_history()) << " vs " << Describe(HistoryOfContents(*log));
    epoch = std::max(epoch, log->latest_epoch().value());
    const int ops = 1 + static_cast<int>(rng() % 30);
    for (int op = 0; op < ops; ++op) {
      const uint64_t kind = rng() % 100;
      if (rng() % 6 == 0) ++epoch;
      if (kind < 50) {
        Append(*log, 1 + static_cast<int32_t>(rng() % 4), epoch, rng() % 600);
      } else if (kind < 80) {
        std::string bytes;
        int64_t base = log->log_end_offset().value();
        for (int n = 1 + static_cast<int>(rng() % 3); n > 0; --n) {
          int32_t records = 1 + static_cast<int32_t>(rng() % 4);
          bytes += LeaderBatch(base, records, epoch, rng() % 600);
          base += records;
          if (rng() % 4 == 0) ++epoch;
        }
        ASSERT_TRUE(Replicate(*log, bytes).ok());
      } else if (kind < 88) {
        int64_t span = log->log_end_offset() - log->log_start_offset();
        if (span > 0) {
          ASSERT_TRUE(log->TruncateTo(log->log_end_offset() - 1 -
                                      static_cast<int64_t>(rng() % static_cast<uint64_t>(span)))
                          .ok());
        }
      } else if (kind < 95) {
        ASSERT_TRUE(log->Flush().ok());
      } else {
        ASSERT_TRUE(log->ApplyRetention(0).ok());
      }
      ASSERT_EQ(log->epoch_history(), HistoryOfContents(*log))
          << "op " << op << ": " << Describe(log->epoch_history()) << " vs "
          << Describe(HistoryOfContents(*log));
    }
    if (rng() % 5 == 0) {
      ASSERT_TRUE(log->Close().ok());
      log.reset();
    } else {
      log.reset();
      fs.Crash(rng() % 2 ? FaultyFileSystem::CrashMode::kDropUnsynced
                         : FaultyFileSystem::CrashMode::kTornLastWrite);
    }
  }
}

TEST_F(LogEpochTest, ReadersSeeTheHistoryWhileTheWriterChangesIt) {
  auto log = OpenLog(Config());
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop.load()) {
      History h = log->epoch_history();
      for (size_t i = 1; i < h.size(); ++i) {
        ASSERT_LT(h[i - 1].epoch, h[i].epoch);
        ASSERT_LT(h[i - 1].start_offset, h[i].start_offset);
      }
      (void)log->latest_epoch();
    }
  });
  for (int i = 0; i < 300; ++i) {
    Append(*log, 1, i / 3);
    if (i % 50 == 49) {
      EXPECT_TRUE(log->TruncateTo(log->log_end_offset() - 10).ok());  // no early return: join
    }
  }
  stop = true;
  reader.join();
  EXPECT_EQ(log->epoch_history(), HistoryOfContents(*log));
  ASSERT_TRUE(log->Close().ok());
}

}  // namespace
}  // namespace rill::storage
