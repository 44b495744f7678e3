// Crash tests on FaultyFileSystem. Each round appends (and sometimes truncates, flushes, closes
// and reopens) under the `group` policy, then "loses power" at a random point: unsynced data is
// dropped, or the last write is torn at a sector boundary, or bits flip in the unsynced ranges.
// After reopening, the log must hold exactly the longest prefix of the appended batches that is
// intact on "disk", every append acknowledged durable must be in it, and appends must continue
// at the right offset. Half of the rounds drop files through a FileRemover (small steps with a
// pause, so a stop often leaves a file half shrunk under its .deleted name); the crash comes
// after the remover stopped, and the reopened log must finish every leftover. Also: ENOSPC and
// fsync EIO put the log into a failed, read-only state.
// RILL_SEED=<seed> replays a run.

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <chrono>
#include <cstdio>
#include <random>

#include "rill/proto/batch_header.h"
#include "rill/storage/faulty_file_system.h"
#include "rill/storage/file_remover.h"
#include "rill/storage/log.h"
#include "test_batches.h"

namespace rill::storage {
namespace {

using namespace std::chrono_literals;
auto Deadline() { return std::chrono::steady_clock::now() + 30s; }

std::string SegmentPath(Offset base) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "d/p-0/%020lld.log", static_cast<long long>(base.value()));
  return buf;
}

// partitionLeaderEpoch (bytes 12..16) is outside the CRC in the Kafka format, so a flipped bit
// there is undetectable by design; compare everything else.
bool SameBatch(std::string_view a, std::string_view b) {
  return a.size() == b.size() && a.substr(0, 12) == b.substr(0, 12) && a.substr(16) == b.substr(16);
}

struct Appended {
  int64_t base, last;
  Offset segment_base;
  uint64_t position;
  std::string bytes;
};

LogConfig CrashConfig(std::mt19937_64& rng) {
  LogConfig c;
  c.flush_policy = FlushPolicy::kGroup;
  c.segment_bytes = 8 * 1024 + static_cast<int64_t>(rng() % (24 * 1024));
  // Dense indexes, or one entry per segment (then a recovery that trusts a segment has only the
  // first batch and the final time entry to check it against).
  c.index_interval_bytes = rng() % 2 ? 512 : 1 << 20;
  c.max_batch_bytes = 8192;
  c.preallocate_bytes = rng() % 2 ? 16 * 1024 : 0;
  c.preallocate_chunk_bytes = 4096;
  c.preallocate_idle_ms = 0;  // exercise zero-filled space
  // Retention by size so that retired segment files are recycled (when recycling is on).
  c.retention_ms = -1;
  c.retention_bytes = rng() % 4 == 0 ? -1 : c.segment_bytes * 2;
  c.recycle_segments = rng() % 4 != 0;
  c.recycle_pool_files = 1 + static_cast<int>(rng() % 3);
  // Standby segments (written between groups, rolled into early), half of the time.
  c.standby_min_bytes = rng() % 2 ? 8 * 1024 : 0;
  c.preallocate_piece_bytes = 4096;
  return c;
}

TEST(LogCrashTest, RecoversExactlyTheLongestValidPrefix) {
  const uint64_t seed = testing::TestSeed();
  std::printf("LogCrashTest seed=%llu (replay with RILL_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::mt19937_64 master(seed);
  constexpr int kRounds = 300;
  uint64_t recycled = 0;
  int leftovers_finished = 0;  // .deleted files a crash left, finished by the reopened log
  for (int round = 0; round < kRounds && !::testing::Test::HasFailure(); ++round) {
    const uint64_t round_seed = master();
    SCOPED_TRACE("seed " + std::to_string(seed) + " round " + std::to_string(round));
    std::mt19937_64 rng(round_seed);
    FaultyFileSystem fs(round_seed);
    LogConfig config = CrashConfig(rng);
    // 4 KiB steps, 1 ms apart: segments are 8-32 KiB, so a file takes 2-8 steps.
    const FileRemover::Options remove_options{4096, 4096 * 1000};
    std::unique_ptr<FileRemover> remover;
    if (rng() % 2 == 0) {
      remover = std::make_unique<FileRemover>(&fs, remove_options);
      config.remover = remover.get();
    }
    auto open = [&] {
      auto r = Log::Open(&fs, "d/p-0", "p-0", config);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      return std::move(r).value();
    };
    auto log = open();
    std::vector<Appended> appended;
    int64_t start = 0;  // log start offset: every batch in `appended` is at or above it
    // Highest offset acknowledged durable. A truncation bumps `generation` so that callbacks
    // still in flight for offsets it removed do not count.
    std::mutex ack_mu;
    int64_t acked_value = -1;
    uint64_t generation = 0;
    auto ack = [&](int64_t last, uint64_t gen) {
      std::lock_guard l(ack_mu);
      if (gen == generation) acked_value = std::max(acked_value, last);
    };
    int ops = 5 + static_cast<int>(rng() % 150);
    for (int op = 0; op < ops; ++op) {
      uint64_t kind = rng() % 100;
      if (kind < 75) {
        int n = 1 + static_cast<int>(rng() % 2);
        std::string buf;
        std::vector<size_t> starts;
        for (int i = 0; i < n; ++i) {
          starts.push_back(buf.size());
          buf += testing::MakeBatch(1 + static_cast<int32_t>(rng() % 3), rng() % 3000, op, rng());
        }
        auto r = log->Append(std::span<char>(buf.data(), buf.size()), LeaderEpoch(1));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        starts.push_back(buf.size());
        for (int i = 0; i < n; ++i) {
          std::string b = buf.substr(starts[i], starts[i + 1] - starts[i]);
          auto h = batch::DecodeHeader(b.data());
          appended.push_back({h.base_offset, h.last_offset(), r->segment_base,
                              r->position + starts[i], std::move(b)});
        }
        uint64_t wait = rng() % 10;
        if (wait < 3) {
          ASSERT_TRUE(log->WaitDurable(r->last_offset, Deadline()).ok());
          ack(r->last_offset.value(), generation);
        } else if (wait < 5) {
          int64_t last = r->last_offset.value();
          uint64_t gen;
          {
            std::lock_guard l(ack_mu);
            gen = generation;
          }
          log->OnDurable(r->last_offset, [&ack, last, gen](Status st) {
            if (st.ok()) ack(last, gen);
          });
        }
      } else if (kind < 80 && !appended.empty()) {
        int64_t to = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(appended.back().last + 1));
        ASSERT_TRUE(log->TruncateTo(Offset(to)).ok());
        while (!appended.empty() && appended.back().last >= to) appended.pop_back();
        start = std::min(start, to);
        int64_t end = appended.empty() ? start : appended.back().last + 1;
        ASSERT_EQ(log->log_end_offset(), Offset(end));
        std::lock_guard l(ack_mu);
        ++generation;
        acked_value = std::min(acked_value, end - 1);
      } else if (kind < 88) {
        ASSERT_TRUE(log->ApplyRetention(0).ok());
        start = log->log_start_offset().value();
        std::erase_if(appended, [&](const Appended& a) { return a.last < start; });
      } else if (kind < 91) {
        recycled += log->recycled_count();
        ASSERT_TRUE(log->Close().ok());
        log.reset();
        log = open();
        std::lock_guard l(ack_mu);
        if (!appended.empty()) acked_value = appended.back().last;
      }
    }
    // Power loss at this point: the flusher may be anywhere in its work.
    recycled += log->recycled_count();
    log.reset();  // joins the flusher: no callback runs after this
    // The remover stops between two steps (its files stay under their .deleted names), so the
    // crash finds no file in use.
    remover.reset();
    const int64_t acked = acked_value;
    auto mode = static_cast<FaultyFileSystem::CrashMode>(rng() % 3);
    fs.Crash(mode);

    // The expected survivors: the longest prefix of batches intact where they were written.
    size_t k = 0;
    std::map<int64_t, std::string> files;
    for (; k < appended.size(); ++k) {
      const auto& a = appended[k];
      auto it = files.find(a.segment_base.value());
      if (it == files.end()) {
        it = files.emplace(a.segment_base.value(), fs.Contents(SegmentPath(a.segment_base))).first;
      }
      const std::string& f = it->second;
      if (f.size() < a.position + a.bytes.size() ||
          !SameBatch(std::string_view(f).substr(a.position, a.bytes.size()), a.bytes)) {
        break;
      }
    }
    int64_t expected_end = k == 0 ? start : appended[k - 1].last + 1;
    auto deleted_files = [&] {
      auto names = fs.ListDir("d/p-0");
      EXPECT_TRUE(names.ok());
      return std::count_if(names->begin(), names->end(), [](const std::string& n) {
        return n.ends_with(FileRemover::kDeletedSuffix);
      });
    };
    const auto left_by_crash = deleted_files();
    if (config.remover != nullptr) {
      remover = std::make_unique<FileRemover>(&fs, remove_options);
      config.remover = remover.get();
    }
    log = open();
    SCOPED_TRACE("crash mode " + std::to_string(static_cast<int>(mode)));
    ASSERT_EQ(log->log_start_offset(), Offset(start));
    ASSERT_EQ(log->log_end_offset(), Offset(expected_end));
    ASSERT_GT(expected_end, acked) << "an acknowledged append was lost";
    std::string got;
    Offset from(start);
    while (from < log->log_end_offset()) {
      auto r = log->Read(from, 1 << 16);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      got += r->data;
      from = r->next_offset;
    }
    size_t pos = 0;
    for (size_t i = 0; i < k; ++i) {
      ASSERT_TRUE(SameBatch(std::string_view(got).substr(pos, appended[i].bytes.size()),
                            appended[i].bytes));
      pos += appended[i].bytes.size();
    }
    ASSERT_EQ(pos, got.size());
    // Appends continue at the recovered end and become durable.
    std::string b = testing::MakeBatch(2, 100, 1, 99);
    auto r = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(2));
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->base_offset, Offset(expected_end));
    ASSERT_TRUE(log->WaitDurable(r->last_offset, Deadline()).ok());
    ASSERT_TRUE(log->Close().ok());
    // Whatever the crash left half removed is gone once the remover is done with it.
    if (remover != nullptr) {
      remover->WaitIdle();
      EXPECT_EQ(deleted_files(), 0);
      if (left_by_crash > 0) ++leftovers_finished;
    } else {
      EXPECT_EQ(left_by_crash, 0);
    }
  }
  // The recycling and removal paths were really exercised (and crashed into).
  EXPECT_GT(recycled, 0u);
  EXPECT_GT(leftovers_finished, 0);
  std::printf("LogCrashTest: %llu segment(s) created from recycled files; %d round(s) finished "
              "files a crash left half removed\n",
              static_cast<unsigned long long>(recycled), leftovers_finished);
  if (::testing::Test::HasFailure()) {
    std::printf("LogCrashTest FAILED with seed=%llu\n", static_cast<unsigned long long>(seed));
  }
}

// The worst case for recycling: every batch has the same size and record count, so the old
// batches in a recycled file sit exactly at the positions where new ones are written, with valid
// CRCs. Rounds of appends, retention (filling the pool and reusing it), TruncateTo below the
// log start offset (which must clear the pool) and re-appends, then a crash in a random mode.
// After reopening the log must be exactly the longest intact prefix of what was appended since
// the last truncation below the start, with every byte equal to what was written: no batch
// from a retired file or from before a truncation may come back.
TEST(LogCrashTest, RecycledFilesNeverResurrectStaleBatches) {
  const uint64_t seed = testing::TestSeed();
  std::printf("LogCrashTest.Recycled seed=%llu (replay with RILL_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::mt19937_64 master(seed);
  uint64_t recycled = 0;
  for (int round = 0; round < 100 && !::testing::Test::HasFailure(); ++round) {
    const uint64_t round_seed = master();
    SCOPED_TRACE("seed " + std::to_string(seed) + " round " + std::to_string(round));
    std::mt19937_64 rng(round_seed);
    FaultyFileSystem fs(round_seed);
    LogConfig c;
    c.flush_policy = FlushPolicy::kGroup;
    c.segment_bytes = 4096;
    c.retention_ms = -1;
    c.retention_bytes = 8192;
    c.index_interval_bytes = 512;
    c.preallocate_bytes = 0;
    c.recycle_pool_files = 2;
    auto open = [&] {
      auto r = Log::Open(&fs, "d/p-0", "p-0", c);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      return std::move(r).value();
    };
    auto log = open();
    std::vector<std::string> live;  // batches from log start to end, as written
    int64_t start = 0;
    uint64_t fill = round_seed;
    int ops = 20 + static_cast<int>(rng() % 200);
    for (int op = 0; op < ops; ++op) {
      uint64_t kind = rng() % 100;
      if (kind < 85) {
        std::string b = testing::MakeBatch(3, 500, op, ++fill);
        auto r = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        live.push_back(b);
        if (rng() % 4 == 0) {
          ASSERT_TRUE(log->WaitDurable(r->last_offset, Deadline()).ok());
        }
      } else if (kind < 95) {
        ASSERT_TRUE(log->ApplyRetention(0).ok());
        int64_t s = log->log_start_offset().value();
        live.erase(live.begin(), live.begin() + (s - start) / 3);
        start = s;
      } else if (start > 0) {
        // Below the log start: the offsets of the pooled files will be assigned again.
        int64_t to = static_cast<int64_t>(rng() % static_cast<uint64_t>(start));
        ASSERT_TRUE(log->TruncateTo(Offset(to)).ok());
        auto names = fs.ListDir("d/p-0");
        ASSERT_TRUE(names.ok());
        for (const auto& n : *names) ASSERT_FALSE(n.ends_with(".recycle")) << n;
        live.clear();
        start = to;
      }
    }
    recycled += log->recycled_count();
    log.reset();
    fs.Crash(static_cast<FaultyFileSystem::CrashMode>(rng() % 3));
    log = open();
    ASSERT_EQ(log->log_start_offset(), Offset(start));
    std::string got;
    Offset from(start);
    while (from < log->log_end_offset()) {
      auto r = log->Read(from, 1 << 16);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      got += r->data;
      from = r->next_offset;
    }
    // A prefix of `live`, batch by batch, at the offsets they were given.
    size_t pos = 0, i = 0;
    for (; pos < got.size(); ++i) {
      ASSERT_LT(i, live.size()) << "more batches than were appended";
      ASSERT_TRUE(SameBatch(std::string_view(got).substr(pos, live[i].size()), live[i]))
          << "batch " << i << " differs from what was written";
      pos += live[i].size();
    }
    ASSERT_EQ(log->log_end_offset(), Offset(start + 3 * static_cast<int64_t>(i)));
    ASSERT_TRUE(log->Close().ok());
  }
  EXPECT_GT(recycled, 0u);
}

TEST(LogCrashTest, NoSpaceFailsTheLogAndLosesNothingAcknowledged) {
  FaultyFileSystem fs(3);
  LogConfig c;
  c.segment_bytes = 16 * 1024;
  c.preallocate_bytes = 0;
  auto log = std::move(Log::Open(&fs, "d/p-0", "p-0", c)).value();
  std::string all;
  for (int i = 0; i < 20; ++i) {
    std::string b = testing::MakeBatch(1, 1000, i, i);
    auto r = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(0));
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(log->WaitDurable(r->last_offset, Deadline()).ok());
    all += b;
  }
  fs.FailWritesWithNoSpace(1);
  std::string b = testing::MakeBatch(1, 1000, 0, 77);
  auto r = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(0));
  ASSERT_EQ(r.status().code(), StatusCode::kNoSpace);
  EXPECT_NE(r.status().message().find("p-0"), std::string::npos) << r.status().ToString();
  // Failed and read-only: appends refuse with kFailed naming the partition and the cause.
  r = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(0));
  ASSERT_EQ(r.status().code(), StatusCode::kFailed);
  EXPECT_NE(r.status().message().find("p-0"), std::string::npos);
  EXPECT_NE(r.status().message().find("No space"), std::string::npos) << r.status().ToString();
  EXPECT_EQ(log->WaitDurable(Offset(1000), Deadline()).code(), StatusCode::kFailed);
  auto read = log->Read(Offset(0), 1 << 20);  // reads still work
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(all.compare(0, read->data.size(), read->data), 0);
  EXPECT_EQ(log->log_end_offset(), Offset(20));
  log.reset();
  fs.Crash(FaultyFileSystem::CrashMode::kDropUnsynced);
  log = std::move(Log::Open(&fs, "d/p-0", "p-0", c)).value();
  EXPECT_EQ(log->log_end_offset(), Offset(20));
  std::string got;
  Offset from(0);
  while (from < log->log_end_offset()) {
    auto x = log->Read(from, 1 << 20);
    ASSERT_TRUE(x.ok());
    got += x->data;
    from = x->next_offset;
  }
  EXPECT_EQ(got, all);
  r = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(0));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->base_offset, Offset(20));
}

TEST(LogCrashTest, FsyncErrorFailsEveryWaiterAndNeverReportsSuccess) {
  FaultyFileSystem fs(4);
  LogConfig c;
  c.preallocate_bytes = 0;
  auto log = std::move(Log::Open(&fs, "d/p-0", "p-0", c)).value();
  std::string b = testing::MakeBatch(3, 100, 1);
  auto r = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(0));
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(log->WaitDurable(r->last_offset, Deadline()).ok());
  Offset durable_before = log->durable_offset();

  fs.FailNextSyncs(1);
  std::atomic<int> callbacks{0};
  std::atomic<bool> callback_ok{false};
  r = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(0));
  ASSERT_TRUE(r.ok());
  log->OnDurable(r->last_offset, [&](Status st) {
    callback_ok = st.ok();
    callbacks++;
  });
  Status st = log->WaitDurable(r->last_offset, Deadline());
  ASSERT_EQ(st.code(), StatusCode::kFailed) << st.ToString();
  EXPECT_NE(st.message().find("p-0"), std::string::npos);
  EXPECT_NE(st.message().find("Input/output error"), std::string::npos) << st.ToString();
  auto until = Deadline();
  while (callbacks.load() == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
  EXPECT_EQ(callbacks.load(), 1);
  EXPECT_FALSE(callback_ok.load());
  EXPECT_EQ(log->durable_offset(), durable_before);
  EXPECT_EQ(log->health().code(), StatusCode::kFailed);
  // Later appends, waiters and callbacks all fail; reads still work.
  auto again = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(0));
  EXPECT_EQ(again.status().code(), StatusCode::kFailed);
  Status late;
  log->OnDurable(Offset(4), [&](Status s) { late = s; });
  EXPECT_EQ(late.code(), StatusCode::kFailed);
  EXPECT_TRUE(log->Read(Offset(0), 100).ok());
  EXPECT_EQ(log->TruncateTo(Offset(0)).code(), StatusCode::kFailed);
  EXPECT_EQ(log->Close().code(), StatusCode::kFailed);
  // Recovery is the way out: reopening scans and continues.
  log.reset();
  fs.Crash(FaultyFileSystem::CrashMode::kDropUnsynced);
  log = std::move(Log::Open(&fs, "d/p-0", "p-0", c)).value();
  EXPECT_GE(log->log_end_offset(), Offset(3));
}

}  // namespace
}  // namespace rill::storage
