#include "file_raft_storage.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace rill::broker {
namespace {

namespace fs = std::filesystem;
using raft::Entry;
using raft::LogIndex;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "rill-raftlog-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Entry E(uint64_t term, uint64_t index, std::string data = "") {
  return Entry{Term(term), LogIndex(index), raft::EntryType::kNormal, std::move(data)};
}

raft::RaftInitialState Reload(const std::string& dir) {
  auto s = FileRaftStorage::Open(dir);
  EXPECT_TRUE(s.ok());
  auto st = (*s)->Load();
  EXPECT_TRUE(st.ok()) << st.status().ToString();
  return st.ok() ? *st : raft::RaftInitialState{};
}

TEST(FileRaftStorageTest, EmptyDirectoryLoadsEmptyState) {
  TempDir dir;
  raft::RaftInitialState s = Reload(dir.path() + "/meta");
  EXPECT_TRUE(s.entries.empty());
  EXPECT_FALSE(s.snapshot.has_value());
  EXPECT_EQ(s.hard_state, raft::HardState{});
}

TEST(FileRaftStorageTest, EntriesHardStateAndOverwritesSurviveReopen) {
  TempDir dir;
  {
    auto s = std::move(FileRaftStorage::Open(dir.path())).value();
    ASSERT_TRUE(s->Load().ok());
    ASSERT_TRUE(s->Append({E(1, 1, "a"), E(1, 2, "b"), E(1, 3, "c")}).ok());
    ASSERT_TRUE(s->SaveHardState({Term(1), NodeId(1), LogIndex(1)}).ok());
    // A new leader overwrites the uncommitted suffix from index 2.
    ASSERT_TRUE(s->Append({E(2, 2, "B")}).ok());
    ASSERT_TRUE(s->SaveHardState({Term(2), NodeId(2), LogIndex(2)}).ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  raft::RaftInitialState s = Reload(dir.path());
  ASSERT_EQ(s.entries.size(), 2u);
  EXPECT_EQ(s.entries[0], E(1, 1, "a"));
  EXPECT_EQ(s.entries[1], E(2, 2, "B"));
  EXPECT_EQ(s.hard_state, (raft::HardState{Term(2), NodeId(2), LogIndex(2)}));
}

TEST(FileRaftStorageTest, SnapshotCompactsAndSurvivesReopen) {
  TempDir dir;
  {
    auto s = std::move(FileRaftStorage::Open(dir.path())).value();
    ASSERT_TRUE(s->Load().ok());
    std::vector<Entry> entries;
    for (uint64_t i = 1; i <= 10; ++i) entries.push_back(E(1, i, std::string(1000, 'x')));
    ASSERT_TRUE(s->Append(entries).ok());
    ASSERT_TRUE(s->SaveHardState({Term(1), NodeId(1), LogIndex(10)}).ok());
    ASSERT_TRUE(s->Sync().ok());
    uint64_t before = fs::file_size(dir.path() + "/raft.log");
    raft::Snapshot snap{{LogIndex(8), Term(1), raft::Configuration::Of({NodeId(1)})}, "image"};
    ASSERT_TRUE(s->SaveSnapshot(snap).ok());
    EXPECT_LT(fs::file_size(dir.path() + "/raft.log"), before);
    ASSERT_TRUE(s->Append({E(2, 11, "after")}).ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  raft::RaftInitialState s = Reload(dir.path());
  ASSERT_TRUE(s.snapshot.has_value());
  EXPECT_EQ(s.snapshot->metadata.index, LogIndex(8));
  EXPECT_EQ(s.snapshot->data, "image");
  EXPECT_EQ(s.snapshot->metadata.configuration.voters, std::vector<NodeId>{NodeId(1)});
  ASSERT_EQ(s.entries.size(), 3u);
  EXPECT_EQ(s.entries.front().index, LogIndex(9));
  EXPECT_EQ(s.entries.back(), E(2, 11, "after"));
  EXPECT_EQ(s.hard_state.commit, LogIndex(10));
}

TEST(FileRaftStorageTest, TornTailIsDroppedAndLaterAppendsFollowTheGoodPrefix) {
  TempDir dir;
  {
    auto s = std::move(FileRaftStorage::Open(dir.path())).value();
    ASSERT_TRUE(s->Load().ok());
    ASSERT_TRUE(s->Append({E(1, 1, "one")}).ok());
    ASSERT_TRUE(s->Append({E(1, 2, "two")}).ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  std::string path = dir.path() + "/raft.log";
  uint64_t size = fs::file_size(path);
  // Tear the last frame, then add garbage: a crash in the middle of an append.
  fs::resize_file(path, size - 2);
  { std::ofstream(path, std::ios::app) << "garbage!"; }
  {
    auto s = std::move(FileRaftStorage::Open(dir.path())).value();
    auto st = s->Load();
    ASSERT_TRUE(st.ok());
    ASSERT_EQ(st->entries.size(), 1u);
    EXPECT_EQ(st->entries[0], E(1, 1, "one"));
    ASSERT_TRUE(s->Append({E(1, 2, "again")}).ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  raft::RaftInitialState s = Reload(dir.path());
  ASSERT_EQ(s.entries.size(), 2u);
  EXPECT_EQ(s.entries[1], E(1, 2, "again"));

  // A flipped bit in a frame's payload ends the log there too.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(12);
    f.put('\x7f');
  }
  EXPECT_TRUE(Reload(dir.path()).entries.empty());
}

}  // namespace
}  // namespace rill::broker
