// FlushScheduler: rounds run one at a time per task, wake-ups during a round are not lost, timers
// fire, Remove waits for a running round; and many logs sharing a two-thread scheduler all become
// durable under every flush policy, with the process's thread count independent of the number of
// logs. Shared syncs: many logs waiting at once are made durable by one WholeSync, which a power
// loss right after shows to be real; a failed one falls back to each log's own sync. Waits use
// deadlines; nothing sleeps.

#include "rill/storage/flush_scheduler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rill/storage/faulty_file_system.h"
#include "rill/storage/log.h"
#include "test_batches.h"

namespace rill::storage {
namespace {

using namespace std::chrono_literals;
using SClock = FlushScheduler::Clock;

// A task that counts its rounds, checks that no two overlap, and returns what the test says.
class CountingTask : public FlushScheduler::Task {
 public:
  SClock::time_point RunFlushRound() override {
    EXPECT_EQ(inside_.fetch_add(1), 0) << "two rounds of one task at once";
    if (hold_) {
      std::unique_lock lock(mu_);
      held_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !hold_; });
    }
    SClock::time_point next = FlushScheduler::kIdle;
    {
      std::lock_guard lock(mu_);
      if (again_ > 0) {
        --again_;
        next = FlushScheduler::kAgain;
      } else if (after_ > 0ms) {
        next = SClock::now() + after_;
        after_ = 0ms;
      }
      ++rounds_;
    }
    inside_.fetch_sub(1);
    cv_.notify_all();
    return next;
  }
  bool WaitRounds(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 10s, [&] { return rounds_ >= n; });
  }
  int rounds() {
    std::lock_guard lock(mu_);
    return rounds_;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int rounds_ = 0;
  int again_ = 0;
  std::chrono::milliseconds after_{0};
  bool hold_ = false;
  bool held_ = false;
  std::atomic<int> inside_{0};
};

TEST(FlushSchedulerTest, RunsOnAddAgainOnWakeAndOnItsTimer) {
  FlushScheduler s(2);
  CountingTask t;
  t.again_ = 2;  // the first round asks twice to run again at once
  s.Add(&t);
  ASSERT_TRUE(t.WaitRounds(3));
  {
    std::lock_guard lock(t.mu_);
    t.after_ = 20ms;
  }
  s.Wake(&t);                    // round 4 asks for a timer
  ASSERT_TRUE(t.WaitRounds(5));  // round 5 is the timer's
  s.Remove(&t);
  const int rounds = t.rounds();
  s.Wake(&t);  // ignored once removed
  EXPECT_EQ(t.rounds(), rounds);
}

TEST(FlushSchedulerTest, AWakeDuringARoundRunsAnotherAndRemoveWaitsForTheRound) {
  FlushScheduler s(2);
  CountingTask t;
  t.hold_ = true;
  s.Add(&t);
  {
    std::unique_lock lock(t.mu_);
    ASSERT_TRUE(t.cv_.wait_for(lock, 10s, [&] { return t.held_; }));
  }
  s.Wake(&t);  // during the round: must not be lost, must not run concurrently
  s.Wake(&t);  // coalesced with the first
  {
    std::lock_guard lock(t.mu_);
    t.hold_ = false;
  }
  t.cv_.notify_all();
  ASSERT_TRUE(t.WaitRounds(2));
  // Remove while a round holds: returns only after it ends.
  {
    std::lock_guard lock(t.mu_);
    t.hold_ = true;
    t.held_ = false;
  }
  s.Wake(&t);
  {
    std::unique_lock lock(t.mu_);
    ASSERT_TRUE(t.cv_.wait_for(lock, 10s, [&] { return t.held_; }));
  }
  std::atomic<bool> removed{false};
  std::thread remover([&] {
    s.Remove(&t);
    removed = true;
  });
  // The remover cannot finish while the round is held.
  EXPECT_FALSE(removed.load());
  {
    std::lock_guard lock(t.mu_);
    t.hold_ = false;
  }
  t.cv_.notify_all();
  remover.join();
  EXPECT_TRUE(removed.load());
  EXPECT_EQ(t.inside_.load(), 0);
}

// Threads of this process named rill-flush (sanitizers start threads of their own, so the total
// is not compared).
int FlushThreads() {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream in(e.path() / "comm");
    std::string comm;
    std::getline(in, comm);
    if (comm == "rill-flush") ++n;
  }
  return n;
}

// 200 logs on one two-thread scheduler: every append becomes durable under group, interval and a
// switch from none to group; the process gains the scheduler's threads, not one per log.
TEST(FlushSchedulerTest, ManyLogsShareTwoThreadsAndAllBecomeDurable) {
  const std::string root =
      (std::filesystem::temp_directory_path() / ("rill-sched-" + std::to_string(::getpid())))
          .string();
  std::filesystem::remove_all(root);
  const int before = FlushThreads();
  {
    FlushScheduler scheduler(2);
    constexpr int kLogs = 200;
    std::vector<std::unique_ptr<Log>> logs;
    for (int i = 0; i < kLogs; ++i) {
      LogConfig c;
      c.segment_bytes = 64 * 1024;
      c.preallocate_bytes = 0;
      c.flush_scheduler = &scheduler;
      c.flush_policy = i % 3 == 0   ? FlushPolicy::kGroup
                       : i % 3 == 1 ? FlushPolicy::kInterval
                                    : FlushPolicy::kNone;
      c.flush_interval_ms = 5;
      auto log = Log::Open(DefaultFileSystem(), root + "/t-" + std::to_string(i),
                           "t-" + std::to_string(i), c);
      ASSERT_TRUE(log.ok()) << log.status().ToString();
      logs.push_back(std::move(log).value());
    }
    EXPECT_EQ(FlushThreads(), before + 2) << "the logs must not start threads of their own";
    std::mutex cb_mu;
    std::condition_variable cb_cv;
    int callbacks = 0;  // guarded by cb_mu
    for (int round = 0; round < 5; ++round) {
      for (int i = 0; i < kLogs; ++i) {
        std::string b = testing::MakeBatch(3, 100, round, static_cast<uint64_t>(i));
        auto r = logs[i]->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        logs[i]->OnDurable(r->last_offset, [&](Status st) {
          EXPECT_TRUE(st.ok()) << st.ToString();
          std::lock_guard lock(cb_mu);
          ++callbacks;
          cb_cv.notify_all();
        });
      }
    }
    for (int i = 0; i < kLogs; ++i) {
      ASSERT_TRUE(logs[i]->WaitDurable(Offset(14), std::chrono::steady_clock::now() + 30s).ok())
          << i;
    }
    {
      // Callbacks run just after the durable offset moves (WaitDurable may return first).
      std::unique_lock lock(cb_mu);
      EXPECT_TRUE(cb_cv.wait_for(lock, 30s, [&] { return callbacks == kLogs * 5; })) << callbacks;
    }
    // A `none` log switched to `group` is flushed by the shared threads from then on.
    LogConfig g = logs[2]->config();
    g.flush_policy = FlushPolicy::kGroup;
    ASSERT_TRUE(logs[2]->ApplyConfig(g).ok());
    std::string b = testing::MakeBatch(1, 100, 9, 9);
    auto r = logs[2]->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(logs[2]->WaitDurable(r->last_offset, std::chrono::steady_clock::now() + 30s).ok());
    const uint64_t syncs = logs[2]->sync_count();
    EXPECT_GE(syncs, 1u);
    for (auto& log : logs) ASSERT_TRUE(log->Close().ok());
    logs.clear();
  }
  EXPECT_EQ(FlushThreads(), before);
  std::filesystem::remove_all(root);
}

// Holds the scheduler's only thread in a round until Release, so that the appends of a test queue
// up behind it and the next round finds them all ready at once. Hold it before the logs open:
// a blocker added while their first rounds are still queued can run inside the same batch as
// some of them, and those take their snapshots only after it lets go, in a batch of their own
// (seen once under TSan: two shared syncs where the test expects one).
class Blocker {
 public:
  explicit Blocker(FlushScheduler& s) : s_(s) {
    t_.hold_ = true;
    s_.Add(&t_);
    std::unique_lock lock(t_.mu_);
    EXPECT_TRUE(t_.cv_.wait_for(lock, 10s, [&] { return t_.held_; }));
  }
  void Release() {
    {
      std::lock_guard lock(t_.mu_);
      t_.hold_ = false;
    }
    t_.cv_.notify_all();
  }
  ~Blocker() {
    Release();
    s_.Remove(&t_);
  }

 private:
  FlushScheduler& s_;
  CountingTask t_;
};

std::chrono::steady_clock::time_point Deadline() { return std::chrono::steady_clock::now() + 30s; }

struct SharedSyncFixture {
  static constexpr int kLogs = 24;
  FaultyFileSystem fs{7};
  std::unique_ptr<WholeSync> whole;
  std::vector<std::unique_ptr<Log>> logs;
  std::vector<std::string> written;
  std::vector<bool> unacknowledged;  // a failed log: its data is not checked after a crash

  LogConfig Config(FlushScheduler* s) {
    LogConfig c;
    c.preallocate_bytes = 0;
    c.standby_min_bytes = 0;
    c.flush_scheduler = s;
    c.whole_sync = whole.get();
    return c;
  }
  void Open(FlushScheduler* s) {
    whole = std::move(fs.OpenWholeSync("d")).value();
    for (int i = 0; i < kLogs; ++i) {
      auto log = Log::Open(&fs, "d/p-" + std::to_string(i), "p-" + std::to_string(i), Config(s));
      ASSERT_TRUE(log.ok()) << log.status().ToString();
      logs.push_back(std::move(log).value());
    }
    written.assign(kLogs, "");
    unacknowledged.assign(kLogs, false);
  }
  // One batch of 2 records appended to every log; returns its last offset per log.
  std::vector<Offset> AppendToAll(int round) {
    std::vector<Offset> last;
    for (int i = 0; i < kLogs; ++i) {
      std::string b = testing::MakeBatch(2, 100, round, static_cast<uint64_t>(i));
      auto r = logs[i]->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(0));
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (!r.ok()) return last;
      written[i] += b;
      last.push_back(r->last_offset);
    }
    return last;
  }
  // A power loss, then every log reopened: each holds exactly what was written to it (a log
  // marked unacknowledged is skipped: recovery may keep or drop its unsynced batch).
  void CrashAndCheckEverythingSurvived(FlushScheduler* s) {
    for (auto& log : logs) log.reset();
    fs.Crash(FaultyFileSystem::CrashMode::kDropUnsynced);
    for (int i = 0; i < kLogs; ++i) {
      if (unacknowledged[i]) continue;
      auto log = Log::Open(&fs, "d/p-" + std::to_string(i), "p-" + std::to_string(i), Config(s));
      ASSERT_TRUE(log.ok()) << log.status().ToString();
      std::string got;
      Offset from(0);
      while (from < (*log)->log_end_offset()) {
        auto x = (*log)->Read(from, 1 << 20);
        ASSERT_TRUE(x.ok());
        got += x->data;
        from = x->next_offset;
      }
      EXPECT_EQ(got, written[i]) << "log p-" << i << " lost acknowledged data in the crash";
      ASSERT_TRUE((*log)->Close().ok());
    }
  }
};

TEST(FlushSchedulerTest, ManyLogsWaitingAtOnceShareOneWholeSyncThatSurvivesAPowerLoss) {
  FlushScheduler s(1, /*shared_sync_min=*/4);
  SharedSyncFixture f;
  std::vector<Offset> last;
  {
    Blocker blocker(s);
    // Opened behind the blocker: their first rounds and their appends all wait for it.
    ASSERT_NO_FATAL_FAILURE(f.Open(&s));
    last = f.AppendToAll(1);
    ASSERT_EQ(last.size(), size_t{SharedSyncFixture::kLogs});
    for (int i = 0; i < SharedSyncFixture::kLogs; ++i) {
      EXPECT_LT(f.logs[i]->durable_offset(), last[i]) << "durable before any sync ran";
    }
  }
  for (int i = 0; i < SharedSyncFixture::kLogs; ++i) {
    ASSERT_TRUE(f.logs[i]->WaitDurable(last[i], Deadline()).ok()) << i;
  }
  // All 24 logs were ready behind the blocker: one round of the thread took them as one batch.
  EXPECT_EQ(s.shared_syncs(), 1u);
  EXPECT_EQ(s.shared_sync_rounds(), uint64_t{SharedSyncFixture::kLogs});
  EXPECT_EQ(f.fs.whole_syncs(), 1);
  // Nothing else synced the files: the WholeSync alone made the acknowledged data durable.
  ASSERT_NO_FATAL_FAILURE(f.CrashAndCheckEverythingSurvived(&s));
}

TEST(FlushSchedulerTest, AFailedWholeSyncFallsBackToEachLogsOwnSyncAndFailsOnlyTheLogThatFails) {
  FlushScheduler s(1, /*shared_sync_min=*/4);
  SharedSyncFixture f;
  std::vector<Offset> last;
  {
    Blocker blocker(s);
    // Opened behind the blocker: their first rounds and their appends all wait for it.
    ASSERT_NO_FATAL_FAILURE(f.Open(&s));
    last = f.AppendToAll(1);
    ASSERT_EQ(last.size(), size_t{SharedSyncFixture::kLogs});
    // The WholeSync fails, and so does the first log's own fdatasync after it.
    f.fs.FailNextSyncs(2);
  }
  int failed = 0;
  for (int i = 0; i < SharedSyncFixture::kLogs; ++i) {
    Status st = f.logs[i]->WaitDurable(last[i], Deadline());
    if (!st.ok()) {
      ++failed;
      EXPECT_EQ(st.code(), StatusCode::kFailed) << st.ToString();
      EXPECT_NE(st.message().find("Input/output error"), std::string::npos) << st.ToString();
      f.unacknowledged[i] = true;
    }
  }
  EXPECT_EQ(failed, 1) << "exactly the log whose own sync failed must fail";
  EXPECT_EQ(s.shared_syncs(), 1u);
  EXPECT_EQ(s.shared_sync_rounds(), 0u) << "a failed WholeSync serves no round";
  // The 23 logs that reported success synced their own files: a power loss keeps their data.
  ASSERT_NO_FATAL_FAILURE(f.CrashAndCheckEverythingSurvived(&s));
}

// A task whose rounds take part in shared syncs, each step steered by the test.
class SharedRoundTask : public FlushScheduler::Task {
 public:
  WholeSync* BeginSharedSync() override {
    if (on_begin) on_begin();
    return whole;
  }
  SClock::time_point EndSharedSync(bool) override { return on_end(); }
  SClock::time_point RunFlushRound() override { return on_round(); }

  WholeSync* whole = nullptr;
  std::function<void()> on_begin;
  std::function<SClock::time_point()> on_end;
  std::function<SClock::time_point()> on_round;
};

// One batch ends with a task to run again at once and another's timer armed, the timer's task
// first in the batch. The worker takes the re-queued task itself; the other worker, asleep with
// no timer to wait for, must be woken to wait for the new one. Otherwise the timer fires only when
// the busy worker's round ends (here: never within the 10 s the round waits for it).
TEST(FlushSchedulerTest, ATimerArmedBesideARequeuedTaskWakesTheSleepingWorker) {
  FlushScheduler s(2, /*shared_sync_min=*/2);
  FaultyFileSystem fs{7};
  auto whole = fs.OpenWholeSync("d");
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  std::mutex mu;
  std::condition_variable cv;
  bool in_batch = false, resume = false, timer_round_ran = false;
  bool timer_ran_meanwhile = false, requeued_round_done = false;

  SharedRoundTask timed, again;
  timed.whole = again.whole = whole->get();
  timed.on_begin = [&] {
    std::unique_lock lock(mu);
    in_batch = true;
    cv.notify_all();
    EXPECT_TRUE(cv.wait_for(lock, 10s, [&] { return resume; }));
  };
  timed.on_end = [] { return SClock::now() + 20ms; };
  timed.on_round = [&] {
    std::lock_guard lock(mu);
    timer_round_ran = true;
    cv.notify_all();
    return FlushScheduler::kIdle;
  };
  again.on_end = [] { return FlushScheduler::kAgain; };
  again.on_round = [&] {
    std::unique_lock lock(mu);
    timer_ran_meanwhile = cv.wait_for(lock, 10s, [&] { return timer_round_ran; });
    requeued_round_done = true;
    cv.notify_all();
    return FlushScheduler::kIdle;
  };

  std::optional<Blocker> first, second;
  first.emplace(s);
  second.emplace(s);  // both workers held
  s.Add(&timed);      // ready in this order: the next free worker takes both as one batch
  s.Add(&again);
  first.reset();  // its worker takes the batch and stops inside `timed`'s BeginSharedSync
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return in_batch; }));
  }
  second.reset();  // the other worker finds nothing ready and no timer: it sleeps
  {
    std::lock_guard lock(mu);
    resume = true;
  }
  cv.notify_all();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return requeued_round_done; }));
    EXPECT_TRUE(timer_ran_meanwhile)
        << "the timer armed in the batch did not fire while its worker ran the re-queued task";
  }
  EXPECT_EQ(fs.whole_syncs(), 1);
  EXPECT_EQ(s.shared_sync_rounds(), 2u);
  s.Remove(&timed);
  s.Remove(&again);
}

// Logs that become ready while a shared sync runs wait for it to end and then share the next
// one, rather than a second worker starting a sync that overlaps the first: concurrent syncfs
// calls on one filesystem wait for each other's writeback in the kernel (docs/STORAGE.md,
// Flushing).
TEST(FlushSchedulerTest, LogsReadyDuringASharedSyncWaitForItAndShareTheNextOne) {
  FlushScheduler s(3, /*shared_sync_min=*/2);
  FaultyFileSystem fs{7};
  auto whole = fs.OpenWholeSync("d");
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  std::mutex mu;
  std::condition_variable cv;
  bool in_first = false, resume = false;
  int later_began = 0, later_ended = 0, later_began_when_first_ended = -1;

  SharedRoundTask a, b, c, d;
  for (SharedRoundTask* t : {&a, &b, &c, &d}) {
    t->whole = whole->get();
    t->on_round = [] {
      ADD_FAILURE() << "a log ran a round of its own though enough were ready for a batch";
      return FlushScheduler::kIdle;
    };
  }
  a.on_begin = [&] {
    std::unique_lock lock(mu);
    in_first = true;
    cv.notify_all();
    EXPECT_TRUE(cv.wait_for(lock, 10s, [&] { return resume; }));
  };
  a.on_end = [&] {
    std::lock_guard lock(mu);
    later_began_when_first_ended = later_began;
    return FlushScheduler::kIdle;
  };
  b.on_end = [] { return FlushScheduler::kIdle; };
  for (SharedRoundTask* t : {&c, &d}) {
    t->on_begin = [&] {
      std::lock_guard lock(mu);
      ++later_began;
      cv.notify_all();
    };
    t->on_end = [&] {
      std::lock_guard lock(mu);
      ++later_ended;
      cv.notify_all();
      return FlushScheduler::kIdle;
    };
  }

  std::optional<Blocker> first, second, third;
  first.emplace(s);
  second.emplace(s);
  third.emplace(s);  // every worker held
  s.Add(&a);
  s.Add(&b);
  first.reset();  // its worker takes a and b as one batch and stops inside a's BeginSharedSync
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return in_first; }));
  }
  s.Add(&c);
  s.Add(&d);
  second.reset();  // two free workers, two logs ready, a batch running: they wait
  third.reset();
  {
    std::unique_lock lock(mu);
    // Bounded: with overlapping batches a free worker begins c's round within microseconds.
    EXPECT_FALSE(cv.wait_for(lock, 300ms, [&] { return later_began > 0; }))
        << "a second shared sync began while the first ran";
    resume = true;
  }
  cv.notify_all();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 30s, [&] { return later_ended == 2; }));
    EXPECT_EQ(later_began_when_first_ended, 0);
  }
  EXPECT_EQ(fs.whole_syncs(), 2) << "c and d did not share one sync after a and b's";
  EXPECT_EQ(s.shared_sync_rounds(), 4u);
  for (SharedRoundTask* t : {&a, &b, &c, &d}) s.Remove(t);
}

TEST(FlushSchedulerTest, FewerLogsThanTheMinimumSyncTheirOwnFiles) {
  FlushScheduler s(1, /*shared_sync_min=*/64);
  SharedSyncFixture f;
  std::vector<Offset> last;
  {
    Blocker blocker(s);
    // Opened behind the blocker: their first rounds and their appends all wait for it.
    ASSERT_NO_FATAL_FAILURE(f.Open(&s));
    last = f.AppendToAll(1);
  }
  for (int i = 0; i < SharedSyncFixture::kLogs; ++i) {
    ASSERT_TRUE(f.logs[i]->WaitDurable(last[i], Deadline()).ok()) << i;
  }
  EXPECT_EQ(s.shared_syncs(), 0u);
  EXPECT_EQ(f.fs.whole_syncs(), 0);
  ASSERT_NO_FATAL_FAILURE(f.CrashAndCheckEverythingSurvived(&s));
}

TEST(FlushSchedulerTest, ThePosixWholeSyncCoversItsOwnFilesystemOnly) {
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("rill-whole-" + std::to_string(::getpid())))
          .string();
  std::filesystem::create_directories(dir);
  auto ws = DefaultFileSystem()->OpenWholeSync(dir);
  if (ws.status().code() == StatusCode::kUnavailable) {
    std::filesystem::remove_all(dir);
    GTEST_SKIP() << ws.status().ToString();
  }
  ASSERT_TRUE(ws.ok()) << ws.status().ToString();
  EXPECT_TRUE((*ws)->Covers(dir));
  EXPECT_FALSE((*ws)->Covers("/proc/self")) << "procfs is another filesystem";
  EXPECT_FALSE((*ws)->Covers(dir + "/does-not-exist"));
  EXPECT_TRUE((*ws)->Sync().ok());
  EXPECT_EQ(DefaultFileSystem()->OpenWholeSync(dir + "/does-not-exist").status().code(),
            StatusCode::kNotFound);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rill::storage
