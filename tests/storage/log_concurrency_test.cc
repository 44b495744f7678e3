// Readers, durability waiters and retention running while writers append (ThreadSanitizer).
// Every read must return whole, CRC-valid batches with contiguous offsets starting at the batch
// that contains the requested offset. Waits use deadlines; nothing sleeps.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>
#include <unistd.h>

#include "rill/proto/batch_header.h"
#include "rill/storage/log.h"
#include "test_batches.h"

namespace rill::storage {
namespace {

using namespace std::chrono_literals;

TEST(LogConcurrencyTest, ReadersAndWaitersRunWhileWritersAppend) {
  std::string dir = (std::filesystem::temp_directory_path() /
                     ("rill-conc-" + std::to_string(::getpid()))).string();
  std::filesystem::remove_all(dir);
  LogConfig c;
  c.segment_bytes = 256 * 1024;
  c.index_interval_bytes = 1024;
  c.preallocate_bytes = 128 * 1024;
  c.preallocate_chunk_bytes = 64 * 1024;
  c.preallocate_idle_ms = 0;  // exercise zero-filled space
  c.retention_bytes = 1 << 20;
  auto opened = Log::Open(DefaultFileSystem(), dir, "c-0", c);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Log& log = **opened;

  constexpr int kWriters = 2;
  constexpr int kBatchesPerWriter = 1500;
  std::atomic<int> writers_done{0};
  std::atomic<int64_t> reads{0}, durable_acks{0}, callbacks{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(w);
      for (int i = 0; i < kBatchesPerWriter; ++i) {
        std::string b = testing::MakeBatch(1 + static_cast<int>(rng() % 4), rng() % 3000, i, rng());
        auto r = log.Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        if (i % 4 == 0) {
          ASSERT_TRUE(log.WaitDurable(r->last_offset, std::chrono::steady_clock::now() + 60s).ok());
          durable_acks++;
        } else if (i % 4 == 1) {
          log.OnDurable(r->last_offset, [&](Status st) {
            EXPECT_TRUE(st.ok()) << st.ToString();
            callbacks++;
          });
        }
      }
      writers_done++;
    });
  }
  for (int rd = 0; rd < 2; ++rd) {
    threads.emplace_back([&, rd] {
      std::mt19937_64 rng(100 + rd);
      while (writers_done.load() < kWriters) {
        Offset start = log.log_start_offset(), end = log.log_end_offset();
        if (end == start) continue;
        Offset from = start + static_cast<int64_t>(rng() % (end - start));
        auto r = log.Read(from, 1 + rng() % 50'000);
        if (!r.ok()) {
          // Retention may have moved the start past `from` meanwhile.
          ASSERT_EQ(r.status().code(), StatusCode::kOutOfRange) << r.status().ToString();
          continue;
        }
        ASSERT_FALSE(r->data.empty());
        batch::BatchIterator it(r->data);
        int64_t expect = -1;
        while (it.Next()) {
          if (expect < 0) {
            ASSERT_LE(it.header().base_offset, from.value());
            ASSERT_GE(it.header().last_offset(), from.value());
          } else {
            ASSERT_EQ(it.header().base_offset, expect);
          }
          expect = it.header().last_offset() + 1;
        }
        ASSERT_TRUE(it.status().ok()) << it.status().ToString();
        ASSERT_EQ(Offset(expect), r->next_offset);
        reads++;
      }
    });
  }
  threads.emplace_back([&] {
    while (writers_done.load() < kWriters) {
      auto r = log.ApplyRetention(0);
      ASSERT_TRUE(r.ok());
      (void)log.OffsetForTimestamp(100);
      (void)log.size_bytes();
    }
  });
  for (auto& t : threads) t.join();
  Offset end = log.log_end_offset();
  ASSERT_TRUE(log.WaitDurable(end - 1, std::chrono::steady_clock::now() + 60s).ok());
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(durable_acks.load(), kWriters * kBatchesPerWriter / 4);
  ASSERT_TRUE(log.Close().ok());
  EXPECT_EQ(callbacks.load(), kWriters * kBatchesPerWriter / 4);
  opened->reset();
  std::filesystem::remove_all(dir);
}

// Lookups by timestamp decode batches while a writer appends and retention deletes segments.
// Record o has timestamp 10 * (o / 2) + 5 * (o % 2) (two records a batch, increasing), so the
// answer for t is the first such offset, or the log start if retention passed it.
TEST(LogConcurrencyTest, LookupsByTimestampWhileAppendingAndRetaining) {
  std::string dir = (std::filesystem::temp_directory_path() /
                     ("rill-conc-ts-" + std::to_string(::getpid()))).string();
  std::filesystem::remove_all(dir);
  LogConfig c;
  c.segment_bytes = 16 * 1024;
  c.index_interval_bytes = 512;
  c.flush_policy = FlushPolicy::kNone;
  c.preallocate_bytes = 0;
  c.retention_ms = -1;
  c.retention_bytes = 64 * 1024;
  auto opened = Log::Open(DefaultFileSystem(), dir, "ts-0", c);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Log& log = **opened;
  auto ts_of = [](int64_t o) { return 10 * (o / 2) + 5 * (o % 2); };
  auto first_at = [](int64_t t) {
    int64_t i = t / 10;
    return t == 10 * i ? 2 * i : t <= 10 * i + 5 ? 2 * i + 1 : 2 * i + 2;
  };
  constexpr int kBatches = 3000;
  std::atomic<bool> done{false};
  std::atomic<int64_t> found{0};
  std::thread writer([&] {
    for (int64_t i = 0; i < kBatches; ++i) {
      std::string b = testing::MakeRecordBatch(
          {10 * i, 10 * i + 5}, i % 2 ? batch::Compression::kLz4 : batch::Compression::kNone);
      auto r = log.Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      if (i % 50 == 0) {
        ASSERT_TRUE(log.ApplyRetention(0).ok());
      }
    }
    done = true;
  });
  std::vector<std::thread> readers;
  for (int rd = 0; rd < 2; ++rd) {
    readers.emplace_back([&, rd] {
      std::mt19937_64 rng(200 + rd);
      while (!done.load()) {
        int64_t end = log.log_end_offset().value();
        int64_t t = static_cast<int64_t>(rng() % (10 * (end / 2) + 20));
        auto r = log.OffsetForTimestamp(t);
        if (!r.ok()) {
          ASSERT_TRUE(r.status().IsNotFound()) << r.status().ToString();
          ASSERT_TRUE(end == 0 || t > ts_of(end - 1)) << t;
          continue;
        }
        int64_t o = r->offset.value();
        ASSERT_EQ(r->timestamp_ms, ts_of(o)) << t;
        ASSERT_GE(o, first_at(t)) << t;
        if (o > first_at(t)) {
          ASSERT_LE(o, log.log_start_offset().value()) << t;
        }
        found++;
      }
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_GT(found.load(), 0);
  EXPECT_GT(log.log_start_offset().value(), 0);
  ASSERT_TRUE(log.Close().ok());
  opened->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rill::storage
