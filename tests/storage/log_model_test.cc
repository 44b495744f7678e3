// Randomised operation test: a Log on a FaultyFileSystem against an in-memory model (a vector of
// batches). Operations: append (one or several batches), read at random offsets, truncate,
// retention, clock advance (time-based rolls), clean close + reopen, unclean stop + reopen.
// After every operation the log's offsets must match the model; every 250 operations the whole
// log is read back and compared byte for byte. RILL_SEED=<seed> replays a run; RILL_TRACE=1
// prints each operation.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <random>

#include "rill/proto/batch_header.h"
#include "rill/storage/faulty_file_system.h"
#include "rill/storage/log.h"
#include "test_batches.h"

namespace rill::storage {
namespace {

struct ModelBatch {
  int64_t base, last;
  std::string bytes;  // as stored: offset and epoch stamped
};

class Model {
 public:
  int64_t start = 0, end = 0;
  std::vector<ModelBatch> batches;

  void Append(const ModelBatch& b) {
    batches.push_back(b);
    end = b.last + 1;
  }
  void Truncate(int64_t offset) {
    if (offset >= end) return;
    if (offset <= start) {
      batches.clear();
      start = end = offset;
      return;
    }
    while (!batches.empty() && batches.back().last >= offset) batches.pop_back();
    end = batches.empty() ? start : batches.back().last + 1;
  }
  // Drops batches below `new_start`, which must be a batch boundary (or the end).
  bool AdvanceStart(int64_t new_start) {
    size_t i = 0;
    while (i < batches.size() && batches[i].base < new_start) ++i;
    if (i < batches.size() ? batches[i].base != new_start : new_start != end) return false;
    batches.erase(batches.begin(), batches.begin() + static_cast<ptrdiff_t>(i));
    start = new_start;
    return true;
  }
  size_t IndexOf(int64_t offset) const {
    size_t lo = 0, hi = batches.size();
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (batches[mid].last < offset) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
};

TEST(LogModelTest, RandomOperationsMatchTheModel) {
  const uint64_t seed = testing::TestSeed();
  std::printf("LogModelTest seed=%llu (replay with RILL_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  SCOPED_TRACE("seed " + std::to_string(seed) + " (replay with RILL_SEED=" +
               std::to_string(seed) + ")");
  std::mt19937_64 rng(seed);
  auto pick = [&](uint64_t n) { return rng() % n; };

  FaultyFileSystem fs(seed);
  std::atomic<int64_t> now{1'000'000};
  LogConfig config;
  config.segment_bytes = 16 * 1024 + static_cast<int64_t>(pick(16 * 1024));
  config.segment_ms = 50'000;
  config.index_interval_bytes = 256 + static_cast<int64_t>(pick(2048));
  config.retention_bytes = 64 * 1024 + static_cast<int64_t>(pick(64 * 1024));
  config.retention_ms = 500'000;
  config.max_batch_bytes = 8192;
  config.preallocate_bytes = 8192;
  config.preallocate_chunk_bytes = 4096;
  config.preallocate_idle_ms = 0;  // exercise zero-filled space
  auto open = [&] {
    LogConfig c = config;
    c.flush_policy = pick(3) == 0 ? FlushPolicy::kGroup : FlushPolicy::kNone;
    auto r = Log::Open(&fs, "d/t-1", "t-1", c, [&] { return now.load(); });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return std::move(r).value();
  };
  auto log = open();
  Model model;
  uint64_t fill = 0;
  int64_t ts = 1'000'000;

  auto check_all = [&] {
    std::string got, want;
    Offset from(model.start);
    while (from < log->log_end_offset()) {
      auto r = log->Read(from, 1 + pick(20000));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_FALSE(r->data.empty());
      got += r->data;
      from = r->next_offset;
    }
    for (const auto& b : model.batches) want += b.bytes;
    ASSERT_EQ(got.size(), want.size());
    ASSERT_TRUE(got == want) << "log contents differ from the model";
  };

  constexpr int kOps = 10'000;
  for (int op = 0; op < kOps && !::testing::Test::HasFatalFailure(); ++op) {
    SCOPED_TRACE("operation " + std::to_string(op));
    uint64_t kind = pick(100);
    if (std::getenv("RILL_TRACE")) std::printf("op %d kind %d end %lld\n", op, (int)kind, (long long)model.end);
    if (kind < 60) {
      int n = 1 + static_cast<int>(pick(3));
      std::string buf;
      std::vector<std::pair<size_t, int32_t>> parts;
      for (int i = 0; i < n; ++i) {
        int32_t records = 1 + static_cast<int32_t>(pick(5));
        ts += static_cast<int64_t>(pick(100));
        parts.emplace_back(buf.size(), records);
        buf += testing::MakeBatch(records, pick(2000), ts, ++fill);
      }
      int epoch = static_cast<int>(pick(5));
      auto r = log->Append(std::span<char>(buf.data(), buf.size()), LeaderEpoch(epoch));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_EQ(r->base_offset, Offset(model.end));
      for (size_t i = 0; i < parts.size(); ++i) {
        size_t e = i + 1 < parts.size() ? parts[i + 1].first : buf.size();
        std::string b = buf.substr(parts[i].first, e - parts[i].first);
        auto h = batch::Validate(b);
        ASSERT_TRUE(h.ok());
        ASSERT_EQ(h->base_offset, model.end);
        ASSERT_EQ(h->partition_leader_epoch, epoch);
        model.Append({h->base_offset, h->last_offset(), b});
      }
    } else if (kind < 80) {
      if (model.batches.empty()) continue;
      int64_t from = model.start + static_cast<int64_t>(pick(model.end - model.start));
      size_t max_bytes = pick(10000);
      auto r = log->Read(Offset(from), max_bytes);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      size_t i = model.IndexOf(from);
      ASSERT_LT(i, model.batches.size());
      // A prefix of the model's batches from the one containing `from`: at least one,
      // never more than max_bytes unless it is just the first.
      size_t used = 0, count = 0;
      while (used < r->data.size()) {
        ASSERT_LT(i + count, model.batches.size());
        const auto& b = model.batches[i + count];
        ASSERT_EQ(r->data.compare(used, b.bytes.size(), b.bytes), 0) << "batch at " << b.base;
        used += b.bytes.size();
        ++count;
      }
      ASSERT_GE(count, 1u);
      ASSERT_TRUE(count == 1 || r->data.size() <= max_bytes);
      ASSERT_EQ(r->next_offset, Offset(model.batches[i + count - 1].last + 1));
    } else if (kind < 85) {
      int64_t to = model.start - 2 + static_cast<int64_t>(pick(model.end - model.start + 4));
      if (to < 0) to = 0;
      ASSERT_TRUE(log->TruncateTo(Offset(to)).ok());
      model.Truncate(to);
    } else if (kind < 90) {
      auto r = log->ApplyRetention(now.load());
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_TRUE(model.AdvanceStart(log->log_start_offset().value()))
          << "log start " << log->log_start_offset() << " is not a batch boundary";
      if (config.retention_bytes >= 0 && log->segment_count() > 1) {
        // Retention stopped because dropping the oldest segment would go below the bound.
        ASSERT_GT(log->size_bytes(), 0u);
      }
    } else if (kind < 95) {
      now += static_cast<int64_t>(pick(30'000));
    } else if (kind < 98) {
      ASSERT_TRUE(log->Close().ok());
      log.reset();
      log = open();
    } else {
      log.reset();  // unclean: no checkpoint, full scan
      log = open();
    }
    ASSERT_EQ(log->log_end_offset(), Offset(model.end));
    ASSERT_EQ(log->log_start_offset(), Offset(model.start));
    if (op % 250 == 0) check_all();
  }
  check_all();
  if (::testing::Test::HasFailure()) {
    std::printf("LogModelTest FAILED with seed=%llu\n", static_cast<unsigned long long>(seed));
  }
}

}  // namespace
}  // namespace rill::storage
