// The corrupt-tail and lost-disk damage on hand-made data dirs (no broker).

#include "disk_faults.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace rill::fault {
namespace {

namespace fs = std::filesystem;

class DiskFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("rill_disk_faults_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A batch-shaped blob: base offset, big-endian length of the rest, then `rest` bytes of 0x11.
  static std::string Batch(int64_t base, uint32_t rest) {
    std::string b(12 + rest, '\x11');
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(base >> (56 - 8 * i));
    for (int i = 0; i < 4; ++i) b[8 + i] = static_cast<char>(rest >> (24 - 8 * i));
    return b;
  }
  static std::string Read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  fs::path dir_;
};

TEST_F(DiskFaultsTest, CorruptionChangesOnlyTheLastBatchOfTheActiveSegment) {
  const fs::path part = dir_ / "chaos-0";
  fs::create_directories(part);
  const std::string older = Batch(0, 100) + Batch(1, 100);
  const std::string first = Batch(2, 80), last = Batch(3, 120);
  std::ofstream(part / "00000000000000000000.log", std::ios::binary) << older;
  // The active segment: two batches, then preallocated zeros.
  std::ofstream(part / "00000000000000000002.log", std::ios::binary)
      << first << last << std::string(4096, '\0');
  for (uint64_t seed = 0; seed < 20; ++seed) {  // both kinds of damage
    std::ofstream(part / "00000000000000000002.log", std::ios::binary)
        << first << last << std::string(4096, '\0');
    std::mt19937_64 rng(seed);
    std::string what;
    ASSERT_TRUE(CorruptActiveSegmentTail(part.string(), rng, &what));
    EXPECT_NE(what.find("00000000000000000002.log"), std::string::npos) << what;
    const std::string after = Read(part / "00000000000000000002.log");
    ASSERT_EQ(after.size(), first.size() + last.size() + 4096);
    EXPECT_EQ(after.substr(0, first.size() + 17), first + last.substr(0, 17)) << what;
    EXPECT_NE(after.substr(first.size(), last.size()), last) << what;
    EXPECT_EQ(after.substr(first.size() + last.size()), std::string(4096, '\0')) << what;
  }
  EXPECT_EQ(Read(part / "00000000000000000000.log"), older);
}

TEST_F(DiskFaultsTest, SegmentWithoutBatchesIsLeftAlone) {
  const fs::path part = dir_ / "chaos-1";
  fs::create_directories(part);
  std::ofstream(part / "00000000000000000000.log", std::ios::binary) << std::string(4096, '\0');
  std::mt19937_64 rng(1);
  std::string what;
  EXPECT_FALSE(CorruptActiveSegmentTail(part.string(), rng, &what));
  EXPECT_FALSE(CorruptActiveSegmentTail((dir_ / "missing").string(), rng, &what));
}

TEST_F(DiskFaultsTest, LostDiskRemovesOnlyTheNamedTopicsPartitions) {
  for (const char* d : {"chaos-0", "chaos-12", "__consumer_offsets-3", "other-0",
                        "__cluster_metadata-0", "chaos-x", "__groups"}) {
    fs::create_directories(dir_ / d);
  }
  std::ofstream(dir_ / "chaos-1") << "a file, not a partition";
  auto removed = RemovePartitionDirs(dir_.string(), {"chaos", "__consumer_offsets"});
  EXPECT_EQ(removed, (std::vector<std::string>{"__consumer_offsets-3", "chaos-0", "chaos-12"}));
  for (const char* kept : {"other-0", "__cluster_metadata-0", "chaos-x", "__groups", "chaos-1"}) {
    EXPECT_TRUE(fs::exists(dir_ / kept)) << kept;
  }
}

}  // namespace
}  // namespace rill::fault
