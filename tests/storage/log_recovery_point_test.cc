// The recovery point (docs/STORAGE.md): written only after the segments below it are durable,
// removed before a truncation changes them, and on an unclean open the segments below it are
// loaded without a scan, so bit rot in an old segment no longer cuts the log there.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <string>

#include "recording_file_system.h"
#include "rill/proto/batch_header.h"
#include "rill/proto/crc32c.h"
#include "rill/storage/faulty_file_system.h"
#include "rill/storage/log.h"
#include "support/poll.h"
#include "test_batches.h"

namespace rill::storage {
namespace {

using namespace std::chrono_literals;
using ::rill::test::PollUntil;

constexpr char kPoint[] = "d/p-0/recovery-point";

LogConfig SmallSegments() {
  LogConfig c;
  c.flush_policy = FlushPolicy::kGroup;
  c.segment_bytes = 4096;
  c.index_interval_bytes = 512;
  c.preallocate_bytes = 0;
  c.standby_min_bytes = 0;
  c.recycle_segments = false;
  c.retention_ms = -1;
  c.retention_bytes = -1;
  return c;
}

std::string SegmentPath(int64_t base) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "d/p-0/%020lld.log", static_cast<long long>(base));
  return buf;
}

// Appends `n` batches of 3 records and ~1 KB, each acknowledged durable; returns their bytes.
std::vector<std::string> AppendDurably(Log* log, int n, uint64_t seed) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string b = testing::MakeBatch(3, 1000, i, seed + i);
    auto r = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) break;
    EXPECT_TRUE(log->WaitDurable(r->last_offset, std::chrono::steady_clock::now() + 30s).ok());
    out.push_back(std::move(b));
  }
  return out;
}

std::string ReadAll(Log* log) {
  std::string got;
  Offset from = log->log_start_offset();
  while (from < log->log_end_offset()) {
    auto r = log->Read(from, 1 << 20);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) break;
    got += r->data;
    from = r->next_offset;
  }
  return got;
}

int64_t PointIn(FileSystem* fs) {
  auto f = fs->Open(kPoint, /*create=*/false);
  if (!f.ok()) return -1;
  std::string text(256, '\0');
  auto n = (*f)->ReadAt(0, text.data(), text.size());
  if (!n.ok()) return -1;
  text.resize(*n);
  const auto at = text.find("offset ");
  return at == std::string::npos ? -1 : std::stoll(text.substr(at + 7));
}

TEST(LogRecoveryPointTest, IsRecordedOnlyAfterTheSegmentsBelowItAreDurable) {
  testing::RecordingFileSystem fs;
  // No sync until Flush: the rolls close segments whose data is not durable yet.
  LogConfig c = SmallSegments();
  c.flush_policy = FlushPolicy::kInterval;
  c.flush_interval_ms = 3600 * 1000;
  auto log = std::move(Log::Open(&fs, "d/p-0", "p-0", c)).value();
  for (int i = 0; i < 12; ++i) {  // ~12 KB: at least two rolls
    std::string b = testing::MakeBatch(3, 1000, i, i);
    ASSERT_TRUE(log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1)).ok());
  }
  ASSERT_EQ(PointIn(&fs), -1);
  ASSERT_TRUE(log->Flush().ok());
  ASSERT_GT(PointIn(&fs), 0);
  const int64_t point = PointIn(&fs);
  log.reset();
  const auto events = fs.events();
  // The first time the point names a value >= `point`'s segment: the rename that published it.
  size_t published = events.size();
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].op == "rename" && events[i].path == kPoint) published = i;
  }
  ASSERT_LT(published, events.size());
  // Every segment file below the point was written, then synced, before the point was published.
  int checked = 0;
  for (int64_t base = 0; base < point;) {
    const std::string path = SegmentPath(base);
    size_t last_write = events.size(), last_sync = events.size();
    for (size_t i = 0; i < published; ++i) {
      if (events[i].path != path) continue;
      if (events[i].op == "write" || events[i].op == "truncate") last_write = i;
      if (events[i].op == "sync") last_sync = i;
    }
    ASSERT_LT(last_write, published) << path << " was never written before the point";
    ASSERT_LT(last_sync, published) << path << " was not synced before the point";
    EXPECT_GT(last_sync, last_write) << path << " changed after its last sync";
    ++checked;
    // The next segment's base: the next .log path written after this one.
    int64_t next = point;
    for (const auto& e : events) {
      int64_t b;
      if (e.op == "write" && e.path.ends_with(".log") &&
          std::sscanf(e.path.c_str(), "d/p-0/%" SCNd64 ".log", &b) == 1 && b > base) {
        next = std::min(next, b);
      }
    }
    base = next;
  }
  EXPECT_GE(checked, 1);
}

TEST(LogRecoveryPointTest, BitRotBelowThePointDoesNotCutTheLog) {
  for (bool with_point : {true, false}) {
    SCOPED_TRACE(with_point ? "with the recovery point" : "without it");
    FaultyFileSystem fs(5);
    auto log = std::move(Log::Open(&fs, "d/p-0", "p-0", SmallSegments())).value();
    auto batches = AppendDurably(log.get(), 16, 7);
    ASSERT_TRUE(PollUntil([&] { return PointIn(&fs) >= 6; }));
    const int64_t end = log->log_end_offset().value();
    log.reset();  // no clean Close: the next open is unclean
    fs.Crash(FaultyFileSystem::CrashMode::kDropUnsynced);
    if (!with_point) {
      ASSERT_TRUE(fs.Remove(kPoint).ok());
    }
    // A bit flips in the payload of the second batch of the first segment (long durable).
    fs.FlipBit(SegmentPath(0), batches[0].size() + 200, 3);

    log = std::move(Log::Open(&fs, "d/p-0", "p-0", SmallSegments())).value();
    if (with_point) {
      // Nothing acknowledged is lost; the damaged batch is still there for a consumer's CRC
      // check to report.
      EXPECT_EQ(log->log_end_offset().value(), end);
      const std::string got = ReadAll(log.get());
      std::string all;
      for (const auto& b : batches) all += b;
      ASSERT_EQ(got.size(), all.size());
      EXPECT_NE(got, all);
      EXPECT_EQ(got.substr(0, batches[0].size()), batches[0]);
      EXPECT_FALSE(batch::CrcMatches(
          std::string_view(got).substr(batches[0].size(), batches[1].size())));
      EXPECT_EQ(got.substr(batches[0].size() + batches[1].size()),
                all.substr(batches[0].size() + batches[1].size()));
    } else {
      // A full scan ends the log at the damaged batch: everything after it is dropped.
      EXPECT_EQ(log->log_end_offset().value(), 3);
    }
  }
}

// A recovery point that is damaged (a bad crc, garbage, a wrong magic line, no offset) is
// ignored with a warning: the open scans every segment, and nothing acknowledged is lost.
TEST(LogRecoveryPointTest, ADamagedPointMeansAFullScanAndLosesNothing) {
  auto sealed = [](std::string body) {
    return body + "crc " + std::to_string(crc32c::Value(body)) + "\n";
  };
  const std::string damaged[] = {
      "rill-recovery-point 1\noffset 6\ncrc 1\n",            // crc mismatch
      "\x01\x02 not a recovery point at all",                  // no crc line
      sealed("rill-recovery-checkpoint 1\noffset 6\n"),       // another file's magic
      sealed("rill-recovery-point 1\n"),                       // no offset
  };
  for (const std::string& text : damaged) {
    SCOPED_TRACE(text);
    FaultyFileSystem fs(9);
    auto log = std::move(Log::Open(&fs, "d/p-0", "p-0", SmallSegments())).value();
    auto batches = AppendDurably(log.get(), 16, 31);
    ASSERT_TRUE(PollUntil([&] { return PointIn(&fs) >= 6; }));
    const int64_t end = log->log_end_offset().value();
    log.reset();
    fs.Crash(FaultyFileSystem::CrashMode::kDropUnsynced);
    ASSERT_TRUE(WriteFileAtomically(&fs, kPoint, text).ok());
    log = std::move(Log::Open(&fs, "d/p-0", "p-0", SmallSegments())).value();
    EXPECT_EQ(log->log_end_offset().value(), end);
    std::string all;
    for (const auto& b : batches) all += b;
    EXPECT_EQ(ReadAll(log.get()), all);
    // Appends continue, and the next rolls write a good point again.
    AppendDurably(log.get(), 8, 41);
    EXPECT_TRUE(PollUntil([&] { return PointIn(&fs) > end; }));
  }
}

TEST(LogRecoveryPointTest, ATruncationBelowThePointRemovesItFirst) {
  testing::RecordingFileSystem fs;
  auto log = std::move(Log::Open(&fs, "d/p-0", "p-0", SmallSegments())).value();
  AppendDurably(log.get(), 16, 11);
  ASSERT_TRUE(PollUntil([&] { return PointIn(&fs) >= 6; }));
  const size_t before = fs.events().size();
  ASSERT_TRUE(log->TruncateTo(Offset(3)).ok());
  EXPECT_EQ(PointIn(&fs), -1);
  // The point was gone, durably, before any segment file changed. (Only segment files count:
  // the flusher may write a new recovery point of its own meanwhile, on its thread.)
  const auto events = fs.events();
  auto is_segment_file = [](const std::string& path) {
    return path.ends_with(".log") || path.ends_with(".index") || path.ends_with(".timeindex");
  };
  size_t first_change = events.size(), dir_sync = events.size();
  for (size_t i = before; i < events.size(); ++i) {
    if (events[i].op == "syncdir" && dir_sync == events.size()) dir_sync = i;
    if ((events[i].op == "truncate" || events[i].op == "write") &&
        is_segment_file(events[i].path) && first_change == events.size()) {
      first_change = i;
    }
  }
  EXPECT_LT(dir_sync, first_change);
  // New rolls record a new point, and an unclean open keeps every acknowledged batch.
  AppendDurably(log.get(), 16, 21);
  ASSERT_TRUE(PollUntil([&] { return PointIn(&fs) > 3; }));
  const int64_t end = log->log_end_offset().value();
  log.reset();
  log = std::move(Log::Open(&fs, "d/p-0", "p-0", SmallSegments())).value();
  EXPECT_EQ(log->log_end_offset().value(), end);
}

}  // namespace
}  // namespace rill::storage
