// FileRemover: large files are renamed away at once, then shrunk step by step (each step synced)
// and unlinked; small and absent files are handled at once; a held file is not shrunk until its
// holder lets go. A Log with a remover sends the segments retention drops through it, and hands
// back a ".deleted" file left by a crash when it opens.

#include "rill/storage/file_remover.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rill/storage/faulty_file_system.h"
#include "recording_file_system.h"
#include "rill/storage/log.h"
#include "support/poll.h"
#include "test_batches.h"

namespace rill::storage {
namespace {

using ::rill::test::PollUntil;
using testing::RecordingFileSystem;

constexpr uint64_t kStep = 4096;

void MakeFile(FileSystem* fs, const std::string& path, uint64_t size) {
  ASSERT_TRUE(fs->CreateDir("d").ok());
  auto f = fs->Open(path, /*create=*/true);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->WriteAt(0, std::string(size, 'x')).ok());
  ASSERT_TRUE((*f)->Sync().ok());
}

// Paths of the files in `dir` that wait for the remover ("<name>.<n>.deleted").
std::vector<std::string> Deleted(FileSystem& fs, const std::string& dir) {
  std::vector<std::string> out;
  auto names = fs.ListDir(dir);
  if (!names.ok()) return out;
  for (const auto& n : *names) {
    if (n.ends_with(FileRemover::kDeletedSuffix)) out.push_back(JoinPath(dir, n));
  }
  return out;
}

FileRemover::Options TestOptions() {
  FileRemover::Options o;
  o.step_bytes = kStep;
  o.rate_bytes_per_sec = 0;
  return o;
}

TEST(FileRemoverTest, ShrinksALargeFileInSyncedStepsThenRemovesIt) {
  RecordingFileSystem fs;
  MakeFile(&fs, "d/big", 5 * kStep + 100);
  const size_t before = fs.events().size();
  {
    FileRemover remover(&fs, TestOptions());
    ASSERT_TRUE(remover.Remove("d/big").ok());
    EXPECT_FALSE(fs.Exists("d/big"));  // the name is free at once
    remover.WaitIdle();
  }
  EXPECT_TRUE(Deleted(fs, "d").empty());
  const auto all = fs.events();
  ASSERT_GT(all.size(), before);
  // The .deleted name is made durable before anything is shrunk: a crash must not bring the
  // file back under its old name, shortened.
  ASSERT_GT(all.size(), before + 2);
  EXPECT_EQ(all[before].op, "rename");
  EXPECT_TRUE(all[before].path.ends_with(".deleted")) << all[before].path;
  EXPECT_EQ(all[before + 1].op, "syncdir");
  EXPECT_EQ(all[before + 1].path, "d");
  std::vector<RecordingFileSystem::Event> steps(all.begin() + static_cast<ptrdiff_t>(before) + 2,
                                                all.end());
  const std::vector<uint64_t> sizes = {
      4 * kStep + 100, 3 * kStep + 100, 2 * kStep + 100, kStep + 100, 100, 0};
  ASSERT_EQ(steps.size(), 2 * sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(steps[2 * i].op, "truncate");
    EXPECT_TRUE(steps[2 * i].path.starts_with("d/big.")) << steps[2 * i].path;
    EXPECT_TRUE(steps[2 * i].path.ends_with(".deleted")) << steps[2 * i].path;
    EXPECT_EQ(steps[2 * i].size, sizes[i]);
    EXPECT_EQ(steps[2 * i + 1].op, "sync") << "step " << i << " is made durable before the next";
  }
}

TEST(FileRemoverTest, SmallAndAbsentFilesGoAtOnce) {
  RecordingFileSystem fs;
  MakeFile(&fs, "d/small", kStep - 1);
  const size_t before = fs.events().size();
  FileRemover remover(&fs, TestOptions());
  ASSERT_TRUE(remover.Remove("d/small").ok());
  EXPECT_FALSE(fs.Exists("d/small"));
  EXPECT_TRUE(Deleted(fs, "d").empty());
  EXPECT_TRUE(remover.Remove("d/never-was").ok());
  remover.WaitIdle();
  EXPECT_EQ(fs.events().size(), before);  // no truncation, no sync
}

TEST(FileRemoverTest, AHeldFileIsNotShrunkUntilItsHolderLetsGo) {
  RecordingFileSystem fs;
  MakeFile(&fs, "d/read", 3 * kStep);
  FileRemover remover(&fs, TestOptions());
  auto reader = std::make_shared<int>(1);  // stands for a reader's reference to the segment
  fs.allow_truncate = false;
  ASSERT_TRUE(remover.Remove("d/read", reader).ok());
  // The remover looks again every 10 ms; let it look twice while the reader holds on.
  ASSERT_TRUE(PollUntil([&] { return remover.deferrals() >= 2; }));
  ASSERT_EQ(Deleted(fs, "d").size(), 1u);
  auto f = fs.Open(Deleted(fs, "d")[0], /*create=*/false);
  ASSERT_TRUE(f.ok());
  std::string buf(3 * kStep, '\0');
  auto n = (*f)->ReadAt(0, buf.data(), buf.size());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3 * kStep);  // the reader still sees every byte
  fs.allow_truncate = true;
  reader.reset();
  remover.WaitIdle();
  EXPECT_TRUE(Deleted(fs, "d").empty());
  EXPECT_EQ(fs.early_truncates.load(), 0);
}

TEST(FileRemoverTest, StoppingLeavesTheQueuedFileForTheNextOpen) {
  FaultyFileSystem fs;
  MakeFile(&fs, "d/big", 4 * kStep);
  {
    FileRemover::Options slow = TestOptions();
    slow.rate_bytes_per_sec = 1;  // one step per 4096 s: it is stopped mid-way
    FileRemover remover(&fs, slow);
    ASSERT_TRUE(remover.Remove("d/big").ok());
    ASSERT_TRUE(PollUntil([&] {
      auto left = Deleted(fs, "d");
      return left.size() == 1 && fs.Contents(left[0]).size() == 3 * kStep;
    }));
    // The same name again, while the first removal is under way: a second file, not a
    // replacement of the first.
    MakeFile(&fs, "d/big", 2 * kStep);
    ASSERT_TRUE(remover.Remove("d/big").ok());
    ASSERT_EQ(Deleted(fs, "d").size(), 2u);
  }
  auto left = Deleted(fs, "d");
  ASSERT_EQ(left.size(), 2u);
  FileRemover again(&fs, TestOptions());
  for (const auto& path : left) again.Enqueue(path);
  again.WaitIdle();
  EXPECT_TRUE(Deleted(fs, "d").empty());
  EXPECT_FALSE(fs.Exists("d/big"));
}

// Step 0: every removal happens at once, on the caller's thread, and leaves no .deleted name.
TEST(FileRemoverTest, StepZeroRemovesEverythingAtOnce) {
  RecordingFileSystem fs;
  MakeFile(&fs, "d/big", 5 * kStep);
  MakeFile(&fs, "d/left.5.deleted", 5 * kStep);
  FileRemover::Options at_once;
  at_once.step_bytes = 0;
  FileRemover remover(&fs, at_once);
  ASSERT_TRUE(remover.Remove("d/big").ok());
  EXPECT_FALSE(fs.Exists("d/big"));
  EXPECT_TRUE(remover.Remove("d/never-was").ok());
  remover.Enqueue("d/left.5.deleted");
  EXPECT_FALSE(fs.Exists("d/left.5.deleted"));
  EXPECT_TRUE(Deleted(fs, "d").empty());
  for (const auto& e : fs.events()) EXPECT_NE(e.op, "truncate") << e.path;
  remover.WaitIdle();
}

// A directory (a deleted partition's) on the real filesystem: renamed at once, emptied, removed.
TEST(FileRemoverTest, RemovesADirectoryAndWhatIsInIt) {
  FileSystem* fs = DefaultFileSystem();
  const std::string root = "file_remover_test_" + std::to_string(::getpid());
  (void)fs->RemoveDirAll(root);
  ASSERT_TRUE(fs->CreateDir(JoinPath(root, "t-0")).ok());
  for (const auto& [name, size] : {std::pair<std::string, uint64_t>{"a.log", 5 * kStep + 7},
                                   {"a.index", 10},
                                   {"b.log", kStep}}) {
    auto f = fs->Open(JoinPath(JoinPath(root, "t-0"), name), /*create=*/true);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->WriteAt(0, std::string(size, 'x')).ok());
  }
  FileRemover remover(fs, TestOptions());
  ASSERT_TRUE(remover.RemoveDir(JoinPath(root, "t-0")).ok());
  EXPECT_FALSE(fs->Exists(JoinPath(root, "t-0")));  // the name is free at once
  EXPECT_TRUE(remover.RemoveDir(JoinPath(root, "never-was")).ok());
  remover.WaitIdle();
  auto left = fs->ListDir(root);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty()) << left->front();
  ASSERT_TRUE(fs->RemoveDirAll(root).ok());
}

// A log with a remover: retention's segments go through it, and a leftover .deleted file is
// handed to it when the log opens.
TEST(FileRemoverTest, LogRetentionAndOpenUseTheRemover) {
  FaultyFileSystem fs;
  FileRemover remover(&fs, TestOptions());
  LogConfig c;
  c.segment_bytes = 16 << 10;
  c.retention_bytes = 16 << 10;
  c.recycle_segments = false;
  c.preallocate_bytes = 0;
  c.remover = &remover;
  ASSERT_TRUE(fs.CreateDir("data/t-0").ok());
  MakeFile(&fs, "data/t-0/00000000000000000077.log.deleted", 3 * kStep);
  auto opened = Log::Open(&fs, "data/t-0", "t-0", c, [] { return int64_t{1'000'000}; });
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto log = std::move(opened).value();
  remover.WaitIdle();
  EXPECT_FALSE(fs.Exists("data/t-0/00000000000000000077.log.deleted"));
  for (int i = 0; i < 40; ++i) {
    std::string b = testing::MakeBatch(1, 2000, 1000, i);
    ASSERT_TRUE(log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1)).ok());
  }
  ASSERT_TRUE(log->Flush().ok());
  auto dropped = log->ApplyRetention(1'000'000);
  ASSERT_TRUE(dropped.ok()) << dropped.status().ToString();
  ASSERT_GT(dropped->segments, 0);
  remover.WaitIdle();
  auto names = fs.ListDir("data/t-0");
  ASSERT_TRUE(names.ok());
  int logs = 0;
  for (const auto& n : *names) {
    EXPECT_FALSE(n.ends_with(".deleted")) << n;
    if (n.ends_with(".log")) ++logs;
  }
  EXPECT_EQ(static_cast<size_t>(logs), log->segment_count());
  EXPECT_GT(log->log_start_offset().value(), 0);
  ASSERT_TRUE(log->Close().ok());
}

}  // namespace
}  // namespace rill::storage
