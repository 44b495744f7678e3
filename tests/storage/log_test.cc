// Unit tests of the partition log: append, read, roll, indexes, timestamps, truncation,
// retention, reopen (clean and unclean), flush policies and the log manager.

#include "rill/storage/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>

#include "rill/proto/batch_header.h"
#include "rill/storage/faulty_file_system.h"
#include "rill/storage/log_manager.h"
#include "test_batches.h"

namespace rill::storage {
namespace {

using testing::MakeBatch;
using namespace std::chrono_literals;

auto Deadline() { return std::chrono::steady_clock::now() + 30s; }

// Reads everything from `from` to the end, batch by batch.
std::string ReadAll(Log& log, Offset from) {
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

class LogTest : public ::testing::Test {
 protected:
  LogConfig Config() {
    LogConfig c;
    c.segment_bytes = 64 * 1024;
    c.index_interval_bytes = 512;
    c.flush_policy = FlushPolicy::kNone;
    c.preallocate_bytes = 0;
    return c;
  }
  std::unique_ptr<Log> OpenLog(const LogConfig& c) {
    auto r = Log::Open(&fs_, "data/t-0", "t-0", c, [this] { return now_.load(); });
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return std::move(r).value();
  }
  // Appends a batch of `records` records; returns the stored bytes (offset and epoch stamped).
  std::string Append(Log& log, int32_t records, size_t payload, int64_t ts = 1000, int epoch = 1) {
    std::string b = MakeBatch(records, payload, ts, seq_++);
    auto r = log.Append(std::span<char>(b.data(), b.size()), LeaderEpoch(epoch));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return b;
  }

  FaultyFileSystem fs_{7};
  std::atomic<int64_t> now_{1'000'000};
  uint64_t seq_ = 1;
};

TEST_F(LogTest, AppendAssignsOffsetsAndReadReturnsWholeBatches) {
  auto log = OpenLog(Config());
  std::vector<std::string> stored;
  for (int i = 0; i < 50; ++i) stored.push_back(Append(*log, 1 + i % 5, 100 + i * 10));
  EXPECT_EQ(log->log_start_offset(), Offset(0));
  int64_t expected_end = 0;
  for (int i = 0; i < 50; ++i) expected_end += 1 + i % 5;
  EXPECT_EQ(log->log_end_offset(), Offset(expected_end));

  // Every offset reads back the batch that contains it, byte for byte.
  int64_t base = 0;
  for (int i = 0; i < 50; ++i) {
    auto h = batch::Validate(stored[i]);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->base_offset, base);
    EXPECT_EQ(h->partition_leader_epoch, 1);
    for (int64_t o = base; o <= h->last_offset(); ++o) {
      auto r = log->Read(Offset(o), 1);  // max_bytes 1: still one whole batch
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->data, stored[i]) << "offset " << o;
      EXPECT_EQ(r->next_offset, Offset(h->last_offset() + 1));
    }
    base = h->last_offset() + 1;
  }
  std::string all;
  for (auto& s : stored) all += s;
  EXPECT_EQ(ReadAll(*log, Offset(0)), all);
  // At the end: empty; beyond: out of range.
  auto at_end = log->Read(log->log_end_offset(), 1000);
  ASSERT_TRUE(at_end.ok());
  EXPECT_TRUE(at_end->data.empty());
  EXPECT_EQ(log->Read(log->log_end_offset() + 1, 1000).status().code(), StatusCode::kOutOfRange);
}

TEST_F(LogTest, ReadHonoursMaxBytesAndMaxOffset) {
  auto log = OpenLog(Config());
  for (int i = 0; i < 10; ++i) Append(*log, 2, 200);  // 261 bytes each, offsets 2i, 2i+1
  auto r = log->Read(Offset(0), 600);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data.size(), 2 * 261u);
  EXPECT_EQ(r->next_offset, Offset(4));
  r = log->Read(Offset(0), 1 << 20, Offset(5));  // batches with base <= 5: 0, 2, 4
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->data.size(), 3 * 261u);
  EXPECT_EQ(r->next_offset, Offset(6));
}

TEST_F(LogTest, RejectsBadBatchesAndWritesNothing) {
  auto log = OpenLog(Config());
  std::string b = MakeBatch(3, 100, 1);
  b[100] ^= 1;  // payload bit flip: CRC mismatch
  auto r = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(0));
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("t-0"), std::string::npos);
  std::string big = MakeBatch(1, 2 << 20, 1);
  r = log->Append(std::span<char>(big.data(), big.size()), LeaderEpoch(0));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  std::string partial = MakeBatch(1, 10, 1).substr(0, 50);
  r = log->Append(std::span<char>(partial.data(), partial.size()), LeaderEpoch(0));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(log->log_end_offset(), Offset(0));
  EXPECT_EQ(log->size_bytes(), 0u);
}

TEST_F(LogTest, AppendManyBatchesInOneBuffer) {
  auto log = OpenLog(Config());
  std::string buf = MakeBatch(3, 50, 1, 1) + MakeBatch(2, 70, 2, 2) + MakeBatch(1, 10, 3, 3);
  auto r = log->Append(std::span<char>(buf.data(), buf.size()), LeaderEpoch(4));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->base_offset, Offset(0));
  EXPECT_EQ(r->last_offset, Offset(5));
  EXPECT_EQ(ReadAll(*log, Offset(0)), buf);
  auto x = log->Read(Offset(4), 1);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(batch::DecodeHeader(x->data.data()).base_offset, 3);
}

TEST_F(LogTest, RollsAtSegmentBytesAndReadsAcrossSegments) {
  auto log = OpenLog(Config());
  std::string all;
  for (int i = 0; i < 300; ++i) all += Append(*log, 1, 1000);  // ~1 KiB each, 64 KiB segments
  EXPECT_GE(log->segment_count(), 4u);
  EXPECT_EQ(ReadAll(*log, Offset(0)), all);
  auto names = fs_.ListDir("data/t-0");
  ASSERT_TRUE(names.ok());
  int logs = 0;
  for (auto& n : *names) logs += n.ends_with(".log");
  EXPECT_EQ(logs, static_cast<int>(log->segment_count()));
  EXPECT_TRUE(fs_.Exists("data/t-0/00000000000000000000.log"));
  // Closed segments hold no preallocated space: file size == data size.
  EXPECT_EQ(log->size_bytes(), all.size());
}

TEST_F(LogTest, RollsAtSegmentMs) {
  LogConfig c = Config();
  c.segment_ms = 1000;
  auto log = OpenLog(c);
  Append(*log, 1, 10);
  Append(*log, 1, 10);
  EXPECT_EQ(log->segment_count(), 1u);
  now_ += 1000;
  Append(*log, 1, 10);
  EXPECT_EQ(log->segment_count(), 2u);
  EXPECT_TRUE(fs_.Exists("data/t-0/00000000000000000002.log"));
}

TEST_F(LogTest, IndexLookupFindsEveryOffsetAndSurvivesReopen) {
  LogConfig c = Config();
  c.index_interval_bytes = 256;
  auto log = OpenLog(c);
  std::vector<std::string> stored;
  for (int i = 0; i < 400; ++i) stored.push_back(Append(*log, 3, 90 + i % 7));
  auto check = [&](Log& l) {
    int64_t base = 0;
    for (const auto& s : stored) {
      auto r = l.Read(Offset(base + 1), 1);
      ASSERT_TRUE(r.ok());
      ASSERT_EQ(r->data, s) << "offset " << base + 1;
      base += 3;
    }
  };
  check(*log);
  ASSERT_TRUE(log->Close().ok());
  log.reset();
  log = OpenLog(c);  // clean reopen: indexes loaded from files
  check(*log);
  ASSERT_TRUE(log->Close().ok());
  log.reset();
  // A missing or corrupt index is rebuilt.
  ASSERT_TRUE(fs_.Remove("data/t-0/00000000000000000000.index").ok());
  fs_.FlipBit("data/t-0/00000000000000000215.index", 5, 3);
  log = OpenLog(c);
  check(*log);
}

// log_timestamp_test.cc has the record-level cases; this one covers many index entries.
TEST_F(LogTest, OffsetForTimestamp) {
  LogConfig c = Config();
  c.index_interval_bytes = 300;
  auto log = OpenLog(c);
  // Batch i has 2 records with timestamps 1000 + 10 * i and 1000 + 10 * i + 1.
  for (int i = 0; i < 200; ++i) {
    std::string b = testing::MakeRecordBatch({1000 + 10 * i, 1000 + 10 * i + 1});
    ASSERT_TRUE(log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1)).ok());
  }
  for (int i = 0; i < 200; i += 7) {
    auto o = log->OffsetForTimestamp(1000 + 10 * i);
    ASSERT_TRUE(o.ok()) << o.status().ToString();
    EXPECT_EQ(o->offset, Offset(2 * i));
    EXPECT_EQ(o->timestamp_ms, 1000 + 10 * i);
    o = log->OffsetForTimestamp(1000 + 10 * i - 5);
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(o->offset, Offset(2 * i));
    o = log->OffsetForTimestamp(1000 + 10 * i + 1);
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(o->offset, Offset(2 * i + 1));
    EXPECT_EQ(o->timestamp_ms, 1000 + 10 * i + 1);
  }
  EXPECT_EQ(log->OffsetForTimestamp(0)->offset, Offset(0));
  EXPECT_TRUE(log->OffsetForTimestamp(1000 + 10 * 200).status().IsNotFound());
  ASSERT_TRUE(log->Close().ok());
  log = OpenLog(c);
  EXPECT_EQ(log->OffsetForTimestamp(1000 + 10 * 150)->offset, Offset(300));
}

TEST_F(LogTest, TruncateWithinAndAcrossSegments) {
  auto log = OpenLog(Config());
  std::vector<std::string> stored;
  for (int i = 0; i < 200; ++i) stored.push_back(Append(*log, 2, 1000));
  size_t segs = log->segment_count();
  ASSERT_GE(segs, 3u);
  // Offset 301 is inside batch 150 (offsets 300-301): the whole batch goes.
  ASSERT_TRUE(log->TruncateTo(Offset(301)).ok());
  EXPECT_EQ(log->log_end_offset(), Offset(300));
  EXPECT_LT(log->segment_count(), segs);
  std::string expect;
  for (int i = 0; i < 150; ++i) expect += stored[i];
  EXPECT_EQ(ReadAll(*log, Offset(0)), expect);
  // Appends continue at the truncation point.
  auto b = Append(*log, 1, 10);
  EXPECT_EQ(batch::DecodeHeader(b.data()).base_offset, 300);
  // Survives a reopen (clean and unclean).
  ASSERT_TRUE(log->Close().ok());
  log = OpenLog(Config());
  EXPECT_EQ(log->log_end_offset(), Offset(301));
  ASSERT_TRUE(log->TruncateTo(Offset(100)).ok());
  log.reset();
  log = OpenLog(Config());
  EXPECT_EQ(log->log_end_offset(), Offset(100));
  expect.clear();
  for (int i = 0; i < 50; ++i) expect += stored[i];
  EXPECT_EQ(ReadAll(*log, Offset(0)), expect);
  // Truncating at or below the start empties the log and restarts it there.
  ASSERT_TRUE(log->TruncateTo(Offset(0)).ok());
  EXPECT_EQ(log->log_end_offset(), Offset(0));
  EXPECT_EQ(log->size_bytes(), 0u);
}

TEST_F(LogTest, RetentionByBytesDeletesWholeClosedSegments) {
  LogConfig c = Config();
  c.retention_bytes = 150 * 1024;
  c.retention_ms = -1;
  auto log = OpenLog(c);
  for (int i = 0; i < 400; ++i) Append(*log, 1, 1000);
  uint64_t before = log->size_bytes();
  auto n = log->ApplyRetention(now_);
  ASSERT_TRUE(n.ok());
  EXPECT_GT(n->segments, 0);
  EXPECT_GE(log->size_bytes(), 150u * 1024 - 64 * 1024);
  EXPECT_LT(log->size_bytes(), before);
  EXPECT_GT(log->log_start_offset(), Offset(0));
  EXPECT_EQ(log->Read(Offset(0), 100).status().code(), StatusCode::kOutOfRange);
  auto r = log->Read(log->log_start_offset(), 100);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(batch::DecodeHeader(r->data.data()).base_offset, log->log_start_offset().value());
  EXPECT_FALSE(fs_.Exists("data/t-0/00000000000000000000.log"));
  // Reopen keeps the start offset.
  Offset start = log->log_start_offset();
  ASSERT_TRUE(log->Close().ok());
  log = OpenLog(c);
  EXPECT_EQ(log->log_start_offset(), start);
}

TEST_F(LogTest, RetentionByTimeNeverDeletesTheActiveSegment) {
  LogConfig c = Config();
  c.retention_ms = 10'000;
  auto log = OpenLog(c);
  for (int i = 0; i < 100; ++i) Append(*log, 1, 1000, /*ts=*/1000 + i);  // segment 0..~62
  for (int i = 0; i < 100; ++i) Append(*log, 1, 1000, /*ts=*/50'000 + i);
  size_t segs = log->segment_count();
  auto n = log->ApplyRetention(/*now=*/20'000);  // deletes segments whose max ts < 10'000
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->segments, 1);
  EXPECT_EQ(log->segment_count(), segs - 1);
  n = log->ApplyRetention(/*now=*/1'000'000'000);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(log->segment_count(), 1u);  // the active one stays
  EXPECT_GT(log->size_bytes(), 0u);
}

TEST_F(LogTest, UncleanReopenScansAndContinues) {
  auto log = OpenLog(Config());
  std::string all;
  for (int i = 0; i < 100; ++i) all += Append(*log, 2, 500);
  log.reset();  // no Close: no checkpoint
  EXPECT_FALSE(fs_.Exists("data/t-0/recovery-checkpoint"));
  log = OpenLog(Config());
  EXPECT_EQ(log->log_end_offset(), Offset(200));
  EXPECT_EQ(ReadAll(*log, Offset(0)), all);
  auto b = Append(*log, 1, 1);
  EXPECT_EQ(batch::DecodeHeader(b.data()).base_offset, 200);
}

TEST_F(LogTest, CorruptBatchTruncatesTheLogThereAndLaterSegmentsGo) {
  auto log = OpenLog(Config());
  std::vector<AppendResult> res;
  for (int i = 0; i < 150; ++i) {
    std::string b = MakeBatch(1, 1000, 1, i);
    res.push_back(*log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(0)));
  }
  ASSERT_GE(log->segment_count(), 3u);
  log.reset();
  // Flip a payload bit of batch 10 in the first segment.
  fs_.FlipBit("data/t-0/00000000000000000000.log", res[10].position + 500, 2);
  log = OpenLog(Config());
  EXPECT_EQ(log->log_end_offset(), Offset(10));
  EXPECT_EQ(log->segment_count(), 1u);
  auto b = Append(*log, 1, 1);
  EXPECT_EQ(batch::DecodeHeader(b.data()).base_offset, 10);
}

TEST_F(LogTest, GroupPolicyWaitDurableAndOnDurable) {
  LogConfig c = Config();
  c.flush_policy = FlushPolicy::kGroup;
  c.preallocate_bytes = 8192;
  c.preallocate_chunk_bytes = 4096;
  c.preallocate_idle_ms = 0;  // exercise zero-filled space
  auto log = OpenLog(c);
  std::string b = MakeBatch(5, 100, 1);
  auto r = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(0));
  ASSERT_TRUE(r.ok());
  std::atomic<int> called{0};
  Status got;
  std::mutex mu;
  log->OnDurable(r->last_offset, [&](Status st) {
    std::lock_guard l(mu);
    got = st;
    called++;
  });
  ASSERT_TRUE(log->WaitDurable(r->last_offset, Deadline()).ok());
  EXPECT_GE(log->durable_offset(), Offset(5));
  // The callback runs on the flusher before WaitDurable's waiters wake, or inline.
  auto until = Deadline();
  while (called.load() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  std::lock_guard l(mu);
  EXPECT_EQ(called.load(), 1);
  EXPECT_TRUE(got.ok());
  EXPECT_EQ(fs_.UnsyncedBytes("data/t-0/00000000000000000000.log"), 0u);
  EXPECT_EQ(log->WaitDurable(Offset(100), std::chrono::steady_clock::now() + 1ms).code(),
            StatusCode::kTimeout);
}

TEST_F(LogTest, IntervalPolicyFlushes) {
  LogConfig c = Config();
  c.flush_policy = FlushPolicy::kInterval;
  c.flush_interval_ms = 5;
  auto log = OpenLog(c);
  Append(*log, 3, 100);
  EXPECT_TRUE(log->WaitDurable(Offset(2), Deadline()).ok());
}

TEST_F(LogTest, NonePolicyIsDurableOnAppend) {
  auto log = OpenLog(Config());
  Append(*log, 3, 100);
  EXPECT_EQ(log->durable_offset(), Offset(3));
  EXPECT_TRUE(log->WaitDurable(Offset(2), Deadline()).ok());
  EXPECT_GT(fs_.UnsyncedBytes("data/t-0/00000000000000000000.log"), 0u);
  ASSERT_TRUE(log->Flush().ok());
  EXPECT_EQ(fs_.UnsyncedBytes("data/t-0/00000000000000000000.log"), 0u);
}

TEST(LogManagerTest, CreatesReopensAndDeletesPartitions) {
  FaultyFileSystem fs;
  LogConfig c;
  c.flush_policy = FlushPolicy::kNone;
  c.segment_bytes = 4096;
  {
    auto m = LogManager::Open(&fs, "data", c);
    ASSERT_TRUE(m.ok());
    auto a = (*m)->CreateLog("orders", 0, c);
    auto b = (*m)->CreateLog("my-topic-with-dashes", 12, c);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ((*m)->CreateLog("orders", 0, c).status().code(), StatusCode::kAlreadyExists);
    EXPECT_FALSE((*m)->CreateLog("bad/name", 0, c).ok());
    for (int i = 0; i < 20; ++i) {
      std::string x = MakeBatch(1, 500, 1, i);
      ASSERT_TRUE((*a)->Append(std::span<char>(x.data(), x.size()), LeaderEpoch(0)).ok());
    }
    std::string y = MakeBatch(4, 5, 1);
    ASSERT_TRUE((*b)->Append(std::span<char>(y.data(), y.size()), LeaderEpoch(0)).ok());
    ASSERT_TRUE((*m)->Close().ok());
  }
  auto m = LogManager::Open(&fs, "data", c);
  ASSERT_TRUE(m.ok());
  auto parts = (*m)->Partitions();
  ASSERT_EQ(parts.size(), 2u);
  auto a = (*m)->GetLog("orders", 0);
  auto b = (*m)->GetLog("my-topic-with-dashes", 12);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->log_end_offset(), Offset(20));
  EXPECT_EQ(b->log_end_offset(), Offset(4));
  EXPECT_EQ((*m)->GetLog("orders", 1), nullptr);
  ASSERT_TRUE((*m)->DeleteLog("orders", 0).ok());
  EXPECT_FALSE(fs.Exists("data/orders-0"));
  EXPECT_EQ((*m)->GetLog("orders", 0), nullptr);
  EXPECT_TRUE((*m)->DeleteLog("orders", 0).IsNotFound());
  TopicPartition tp;
  EXPECT_TRUE(ParseLogDirName("a-b-c-7", &tp));
  EXPECT_EQ(tp.topic, "a-b-c");
  EXPECT_EQ(tp.partition, 7);
  EXPECT_FALSE(ParseLogDirName("nodash", &tp));
  EXPECT_FALSE(ParseLogDirName("x-", &tp));
  EXPECT_FALSE(ParseLogDirName("x-1a", &tp));
}

TEST(LogPosixTest, RealFilesWithPreallocationRecoverExactly) {
  std::string dir =
      (std::filesystem::temp_directory_path() / ("rill-log-test-" + std::to_string(::getpid())))
          .string();
  std::filesystem::remove_all(dir);
  LogConfig c;
  c.segment_bytes = 1 << 20;
  c.preallocate_bytes = 512 * 1024;
  c.preallocate_chunk_bytes = 128 * 1024;
  c.preallocate_idle_ms = 0;  // exercise zero-filled space
  std::string all;
  {
    auto log = Log::Open(DefaultFileSystem(), dir, "p-0", c);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    for (int i = 0; i < 300; ++i) {
      std::string b = MakeBatch(2, 4000, i, i);
      auto r = (*log)->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(3));
      ASSERT_TRUE(r.ok());
      ASSERT_TRUE((*log)->WaitDurable(r->last_offset, Deadline()).ok());
      all += b;
    }
    // Destroyed without Close: the active segment may end in zero-filled space.
  }
  {
    auto log = Log::Open(DefaultFileSystem(), dir, "p-0", c);
    ASSERT_TRUE(log.ok());
    EXPECT_EQ((*log)->log_end_offset(), Offset(600));
    EXPECT_EQ(ReadAll(**log, Offset(0)), all);
    ASSERT_TRUE((*log)->Close().ok());
  }
  // After a clean close every segment file is exactly its data.
  uint64_t total = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".log") total += e.file_size();
  }
  EXPECT_EQ(total, all.size());
  std::filesystem::remove_all(dir);
}

// cache_behind_bytes: after group fsyncs, synced data older than the newest cache_behind_bytes
// leaves the page cache (checked with mincore on the real file); the content is unchanged.
TEST(LogCacheTest, SyncedDataBehindTheWindowLeavesThePageCache) {
  std::string dir = ::testing::TempDir() + "/rill-cache-" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  LogConfig c;
  c.segment_bytes = 64 << 20;
  c.flush_policy = FlushPolicy::kGroup;
  c.preallocate_bytes = 0;
  c.cache_behind_bytes = 1 << 20;
  auto log = Log::Open(DefaultFileSystem(), dir, "p-0", c);
  ASSERT_TRUE(log.ok()) << log.status().ToString();
  std::string all;
  for (int i = 0; all.size() < (12u << 20); ++i) {  // 12 MiB of batches, each made durable
    std::string b = MakeBatch(4, 16000, i, i);
    auto r = (*log)->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE((*log)->WaitDurable(r->last_offset, Deadline()).ok());
    all += b;
  }
  std::string path = dir + "/00000000000000000000.log";
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t len = all.size();
  void* map = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(map, MAP_FAILED);
  std::vector<unsigned char> resident((len + page - 1) / page);
  ASSERT_EQ(::mincore(map, len, resident.data()), 0);
  size_t head = 0, head_pages = (8u << 20) / page;  // the first 8 MiB: behind the window
  for (size_t i = 0; i < head_pages; ++i) head += resident[i] & 1;
  ASSERT_GT(resident.size(), head_pages);
  std::string by_mib;
  for (size_t m = 0; m * (1u << 20) / page < resident.size(); ++m) {
    size_t n = 0, b = m * (1u << 20) / page, e = std::min(resident.size(), b + (1u << 20) / page);
    for (size_t i = b; i < e; ++i) n += resident[i] & 1;
    by_mib += std::to_string(n) + " ";
  }
  ::munmap(map, len);
  ::close(fd);
  EXPECT_LT(head, head_pages / 10) << "cached pages per MiB: " << by_mib << "; " << head
                                   << " of the first " << head_pages << " pages still cached";
  // Reading the dropped range goes to disk and returns the same bytes.
  EXPECT_EQ(ReadAll(**log, Offset(0)), all);
  ASSERT_TRUE((*log)->Close().ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rill::storage
