// Log::ApplyConfig: topic config changes take effect on the open log (no reopen), flush-policy
// switches keep every append's durability promise, and appends may run throughout.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "rill/storage/faulty_file_system.h"
#include "rill/storage/log.h"
#include "support/poll.h"
#include "test_batches.h"

namespace rill::storage {
namespace {

using testing::MakeBatch;
using namespace std::chrono_literals;

constexpr char kActiveFile[] = "data/t-0/00000000000000000000.log";

auto Deadline() { return std::chrono::steady_clock::now() + 30s; }

class LogConfigTest : public ::testing::Test {
 protected:
  static LogConfig Config(FlushPolicy policy) {
    LogConfig c;
    c.segment_bytes = 64 * 1024;
    c.index_interval_bytes = 512;
    c.flush_policy = policy;
    c.flush_interval_ms = 3600 * 1000;  // an interval log syncs only when told to
    c.preallocate_bytes = 0;
    return c;
  }
  std::unique_ptr<Log> OpenLog(const LogConfig& c) {
    auto r = Log::Open(&fs_, "data/t-0", "t-0", c, [this] { return now_.load(); });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return std::move(r).value();
  }
  Result<AppendResult> Append(Log& log, size_t payload, int64_t ts = 1000) {
    std::string b = MakeBatch(1, payload, ts, seq_++);
    return log.Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
  }

  FaultyFileSystem fs_{11};
  std::atomic<int64_t> now_{1'000'000};
  uint64_t seq_ = 1;
};

TEST_F(LogConfigTest, SegmentBytesChangeRollsTheOpenLog) {
  auto log = OpenLog(Config(FlushPolicy::kNone));
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(Append(*log, 1000).ok());
  ASSERT_EQ(log->segment_count(), 1u);

  LogConfig c = Config(FlushPolicy::kNone);
  c.segment_bytes = 4096;
  ASSERT_TRUE(log->ApplyConfig(c).ok());
  EXPECT_EQ(log->config().segment_bytes, 4096);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(Append(*log, 1000).ok());
  // 8 more batches of ~1 KiB in segments of at most 4 KiB: the open log rolled.
  EXPECT_GE(log->segment_count(), 3u);
  EXPECT_EQ(log->log_end_offset(), Offset(16));
  // Every offset still reads back.
  for (int64_t o = 0; o < 16; ++o) {
    auto r = log->Read(Offset(o), 1 << 20);
    ASSERT_TRUE(r.ok()) << o << ": " << r.status().ToString();
    EXPECT_FALSE(r->data.empty()) << o;
  }
}

TEST_F(LogConfigTest, MaxMessageBytesChangeAppliesToTheNextAppend) {
  auto log = OpenLog(Config(FlushPolicy::kNone));
  ASSERT_TRUE(Append(*log, 2000).ok());
  LogConfig c = Config(FlushPolicy::kNone);
  c.max_batch_bytes = 1024;
  ASSERT_TRUE(log->ApplyConfig(c).ok());
  auto refused = Append(*log, 2000);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("max.message.bytes 1024"), std::string::npos)
      << refused.status().ToString();
  EXPECT_TRUE(Append(*log, 500).ok());
  c.max_batch_bytes = 1 << 20;
  ASSERT_TRUE(log->ApplyConfig(c).ok());
  EXPECT_TRUE(Append(*log, 2000).ok());
  EXPECT_EQ(log->log_end_offset(), Offset(3));
}

TEST_F(LogConfigTest, RetentionChangeAppliesToTheNextRetentionPass) {
  LogConfig c = Config(FlushPolicy::kNone);
  c.segment_bytes = 4096;
  auto log = OpenLog(c);
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(Append(*log, 1000, 1000 + i).ok());
  const size_t segments = log->segment_count();
  ASSERT_GE(segments, 3u);
  auto none = log->ApplyRetention(now_.load());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->segments, 0);  // retention unlimited by bytes; 7 days by time

  c.retention_bytes = 4096;
  ASSERT_TRUE(log->ApplyConfig(c).ok());
  auto dropped = log->ApplyRetention(now_.load());
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  EXPECT_GT(dropped->segments, 0);
  EXPECT_GT(dropped->bytes, 0u);
  EXPECT_LT(log->segment_count(), segments);
  EXPECT_GT(log->log_start_offset(), Offset(0));
  EXPECT_EQ(log->log_end_offset(), Offset(12));
}

TEST_F(LogConfigTest, SwitchToNoneFirstSyncsWhatWasAppendedUnderTheOldPolicy) {
  // An interval log with an hour-long interval: nothing is synced unless ApplyConfig does it.
  auto log = OpenLog(Config(FlushPolicy::kInterval));
  ASSERT_TRUE(Append(*log, 700).ok());
  ASSERT_TRUE(Append(*log, 700).ok());
  std::atomic<int> done{0};
  log->OnDurable(Offset(1), [&](Status s) {
    EXPECT_TRUE(s.ok()) << s.ToString();
    done.fetch_add(1);
  });
  EXPECT_GT(fs_.UnsyncedBytes(kActiveFile), 0u);
  EXPECT_EQ(log->durable_offset(), Offset(0));

  ASSERT_TRUE(log->ApplyConfig(Config(FlushPolicy::kNone)).ok());
  // The two appends got the fsync their policy promised before `none` took over.
  EXPECT_EQ(fs_.UnsyncedBytes(kActiveFile), 0u);
  EXPECT_EQ(log->durable_offset(), Offset(2));
  EXPECT_EQ(done.load(), 1);

  // From now on appends are durable (by `none`'s promise) on return, without an fsync.
  ASSERT_TRUE(Append(*log, 700).ok());
  EXPECT_EQ(log->durable_offset(), Offset(3));
  EXPECT_GT(fs_.UnsyncedBytes(kActiveFile), 0u);
}

TEST_F(LogConfigTest, SwitchFromNoneToGroupSyncsLaterAppends) {
  auto log = OpenLog(Config(FlushPolicy::kNone));
  ASSERT_TRUE(Append(*log, 700).ok());
  EXPECT_GT(fs_.UnsyncedBytes(kActiveFile), 0u);
  const uint64_t syncs = log->sync_count();

  ASSERT_TRUE(log->ApplyConfig(Config(FlushPolicy::kGroup)).ok());
  auto r = Append(*log, 700);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(log->WaitDurable(r->last_offset, Deadline()).ok());
  EXPECT_GT(log->sync_count(), syncs);
  EXPECT_EQ(fs_.UnsyncedBytes(kActiveFile), 0u);
}

TEST_F(LogConfigTest, SwitchFromIntervalToGroupWakesTheFlusher) {
  // The flusher sleeps for the hour-long interval; the switch must wake it.
  auto log = OpenLog(Config(FlushPolicy::kInterval));
  auto r = Append(*log, 700);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(log->durable_offset(), Offset(0));
  ASSERT_TRUE(log->ApplyConfig(Config(FlushPolicy::kGroup)).ok());
  ASSERT_TRUE(log->WaitDurable(r->last_offset, Deadline()).ok());
  auto r2 = Append(*log, 700);
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(log->WaitDurable(r2->last_offset, Deadline()).ok());
}

TEST_F(LogConfigTest, SwitchFromGroupToAShortIntervalKeepsSyncing) {
  auto log = OpenLog(Config(FlushPolicy::kGroup));
  ASSERT_TRUE(Append(*log, 700).ok());
  LogConfig c = Config(FlushPolicy::kInterval);
  c.flush_interval_ms = 5;
  ASSERT_TRUE(log->ApplyConfig(c).ok());
  auto r = Append(*log, 700);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(log->WaitDurable(r->last_offset, Deadline()).ok());
  EXPECT_EQ(log->config().flush_policy, FlushPolicy::kInterval);
}

TEST_F(LogConfigTest, InvalidSettingsChangeNothing) {
  auto log = OpenLog(Config(FlushPolicy::kNone));
  LogConfig bad = Config(FlushPolicy::kGroup);
  bad.segment_bytes = 10;
  Status s = log->ApplyConfig(bad);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  bad = Config(FlushPolicy::kGroup);
  bad.max_batch_bytes = 0;
  EXPECT_EQ(log->ApplyConfig(bad).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(log->config().segment_bytes, 64 * 1024);
  EXPECT_EQ(log->config().flush_policy, FlushPolicy::kNone);
  EXPECT_TRUE(Append(*log, 100).ok());
}

TEST_F(LogConfigTest, ClosedLogRefusesAChange) {
  auto log = OpenLog(Config(FlushPolicy::kGroup));
  ASSERT_TRUE(log->Close().ok());
  EXPECT_EQ(log->ApplyConfig(Config(FlushPolicy::kNone)).code(), StatusCode::kUnavailable);
}

TEST_F(LogConfigTest, AppendsRunWhileThePolicyFlips) {
  auto log = OpenLog(Config(FlushPolicy::kGroup));
  constexpr int kThreads = 2;
  constexpr int kPerThread = 300;
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::atomic<bool> stop{false};
  std::thread flipper([&] {
    const FlushPolicy order[] = {FlushPolicy::kNone, FlushPolicy::kInterval, FlushPolicy::kGroup};
    int i = 0;
    while (!stop.load()) {
      LogConfig c = Config(order[i++ % 3]);
      c.flush_interval_ms = 2;
      c.segment_bytes = (i % 2) ? 8192 : 64 * 1024;
      Status s = log->ApplyConfig(c);
      EXPECT_TRUE(s.ok()) << s.ToString();
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> appenders;
  for (int t = 0; t < kThreads; ++t) {
    appenders.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string b = MakeBatch(1, 200, 1000 + i, uint64_t(t) * 100000 + i);
        auto r = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        log->OnDurable(r->last_offset, [&](Status s) { (s.ok() ? ok : failed).fetch_add(1); });
      }
    });
  }
  for (auto& a : appenders) a.join();
  stop.store(true);
  flipper.join();
  // End on `group` so every pending append gets its sync.
  ASSERT_TRUE(log->ApplyConfig(Config(FlushPolicy::kGroup)).ok());
  ASSERT_TRUE(log->WaitDurable(Offset(kThreads * kPerThread - 1), Deadline()).ok());
  // Callbacks run just after the durable offset moves: wait for the last of them.
  EXPECT_TRUE(rill::test::PollUntil([&] { return ok.load() + failed.load() == kThreads * kPerThread; }))
      << ok.load() << " ok, " << failed.load() << " failed";
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(log->log_end_offset(), Offset(kThreads * kPerThread));
  EXPECT_TRUE(log->Close().ok());
}

}  // namespace
}  // namespace rill::storage
