// DiskSpaceGuard with a scripted free-space probe: when it refuses, what it says, how often it
// reads the disk, and what a failing reading does. The real filesystem path is covered by
// tests/integration/disk_full_integration_test.cc.

#include "server/disk_space.h"

#include <gtest/gtest.h>

#include <atomic>

#include "support/poll.h"

namespace rill::broker {
namespace {

constexpr uint64_t kMiB = 1 << 20;

struct ScriptedDisk {
  std::atomic<uint64_t> free{100 * kMiB};
  std::atomic<bool> fail{false};
  std::atomic<int> reads{0};
  DiskSpaceGuard::Probe probe() {
    return [this](const std::string& dir) -> Result<uint64_t> {
      EXPECT_EQ(dir, "/data/dir");
      reads.fetch_add(1);
      if (fail.load()) return Status::IOError("statvfs /data/dir: Input/output error");
      return free.load();
    };
  }
};

TEST(DiskSpaceGuardTest, RefusesBelowTheThresholdAndAcceptsOnceSpaceIsBack) {
  ScriptedDisk disk;
  DiskSpaceGuard guard("/data/dir", 10 * kMiB, disk.probe());
  EXPECT_TRUE(guard.Admit(1000).ok());
  EXPECT_EQ(guard.free_bytes(), 100 * kMiB);

  disk.free = 5 * kMiB;
  // min_free_bytes / 8 admitted bytes force a reading, whatever the time since the last one.
  Status st = guard.Admit(10 * kMiB / 8);
  ASSERT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
  EXPECT_NE(st.message().find("/data/dir"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("5 MiB free"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("storage.min_free_bytes (10 MiB)"), std::string::npos)
      << st.ToString();
  EXPECT_TRUE(guard.refusing());
  EXPECT_EQ(guard.Admit(1).code(), StatusCode::kResourceExhausted);

  disk.free = 50 * kMiB;
  EXPECT_TRUE(guard.Admit(10 * kMiB / 8).ok());
  EXPECT_FALSE(guard.refusing());
  std::string metrics;
  guard.RenderMetrics(&metrics);
  EXPECT_NE(metrics.find("\nrill_storage_free_bytes 52428800\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nrill_storage_min_free_bytes 10485760\n"), std::string::npos);
  EXPECT_NE(metrics.find("\nrill_storage_produce_refused 0\n"), std::string::npos);
}

TEST(DiskSpaceGuardTest, ReadsTheDiskOnlyEveryIntervalOrAfterManyBytes) {
  ScriptedDisk disk;
  DiskSpaceGuard guard("/data/dir", 8 * kMiB, disk.probe());
  ASSERT_EQ(disk.reads.load(), 1);  // at construction
  // Small appends right after a reading use it.
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(guard.Admit(1000).ok());
  EXPECT_EQ(disk.reads.load(), 1);
  // 1 MiB (min_free_bytes / 8) since the last reading: read again at once.
  EXPECT_TRUE(guard.Admit(kMiB).ok());
  EXPECT_EQ(disk.reads.load(), 2);
  // Otherwise once kRefreshInterval has passed.
  disk.free = kMiB;
  EXPECT_TRUE(test::PollUntil([&] { return !guard.Admit(1).ok(); }, std::chrono::seconds(10),
                              std::chrono::milliseconds(5)));
  EXPECT_EQ(disk.reads.load(), 3);
}

TEST(DiskSpaceGuardTest, AFailedReadingKeepsTheLastVerdict) {
  ScriptedDisk disk;
  disk.free = kMiB;
  DiskSpaceGuard guard("/data/dir", 8 * kMiB, disk.probe());
  EXPECT_TRUE(guard.refusing());
  disk.fail = true;
  disk.free = 100 * kMiB;
  EXPECT_EQ(guard.Admit(kMiB).code(), StatusCode::kResourceExhausted);
  disk.fail = false;
  EXPECT_TRUE(guard.Admit(kMiB).ok());
  disk.fail = true;
  EXPECT_TRUE(guard.Admit(kMiB).ok());
  EXPECT_EQ(disk.reads.load(), 4);
}

TEST(DiskSpaceGuardTest, ZeroTurnsTheGuardOff) {
  ScriptedDisk disk;
  disk.free = 0;
  DiskSpaceGuard guard("/data/dir", 0, disk.probe());
  EXPECT_TRUE(guard.Admit(uint64_t{1} << 40).ok());
  EXPECT_FALSE(guard.refusing());
  std::string metrics;
  guard.RenderMetrics(&metrics);
  EXPECT_NE(metrics.find("\nrill_storage_produce_refused 0\n"), std::string::npos) << metrics;
}

}  // namespace
}  // namespace rill::broker
