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

}  // namespace
}  // namespace rill::storage
