// DiskRaftStorage: what is written and synced comes back after reopening; a torn tail is
// truncated; unsynced writes may be lost but never corrupt what was synced; a failed sync fails
// the storage.

#include "rill/replication/disk_raft_storage.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "raft_test_util.h"
#include "rill/proto/crc32c.h"
#include "rill/proto/endian.h"
#include "rill/storage/faulty_file_system.h"

namespace rill::raft::testing {
namespace {

using storage::FaultyFileSystem;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/rill-raft-disk-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { (void)storage::DefaultFileSystem()->RemoveDirAll(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<Entry> Entries(uint64_t from, uint64_t to, uint64_t term, const std::string& tag) {
  std::vector<Entry> v;
  for (uint64_t i = from; i <= to; ++i) {
    v.push_back(Entry{Term(term), LogIndex(i), EntryType::kNormal, tag + std::to_string(i)});
  }
  return v;
}

std::unique_ptr<DiskRaftStorage> OpenOrDie(storage::FileSystem* fs, const std::string& dir) {
  auto s = DiskRaftStorage::Open(fs, dir);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

TEST(DiskRaftStorage, WriteReopenReadBack) {
  TempDir dir;
  auto fs = storage::DefaultFileSystem();
  {
    auto s = OpenOrDie(fs, dir.path());
    ASSERT_TRUE(s->Append(Entries(1, 5, 1, "a")).ok());
    ASSERT_TRUE(s->SaveHardState(HardState{Term(1), NodeId(2), LogIndex(3)}).ok());
    ASSERT_TRUE(s->SaveHardState(HardState{Term(1), NodeId(2), LogIndex(4)}).ok());  // commit only
    ASSERT_TRUE(s->Sync().ok());
  }
  auto s = OpenOrDie(fs, dir.path());
  auto st = s->Load();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->entries, Entries(1, 5, 1, "a"));
  EXPECT_EQ(st->hard_state, (HardState{Term(1), NodeId(2), LogIndex(4)}));
  EXPECT_FALSE(st->snapshot.has_value());
  EXPECT_EQ(s->truncated_tail_bytes(), 0u);
}

TEST(DiskRaftStorage, OverwrittenSuffixStaysOverwrittenAfterReopen) {
  TempDir dir;
  auto fs = storage::DefaultFileSystem();
  {
    auto s = OpenOrDie(fs, dir.path());
    ASSERT_TRUE(s->Append(Entries(1, 6, 1, "old")).ok());
    ASSERT_TRUE(s->Append(Entries(4, 5, 2, "new")).ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  auto st = OpenOrDie(fs, dir.path())->Load();
  ASSERT_EQ(st->entries.size(), 5u);
  EXPECT_EQ(st->entries[2].data, "old3");
  EXPECT_EQ(st->entries[3].data, "new4");
  EXPECT_EQ(st->entries[4].term, Term(2));
}

TEST(DiskRaftStorage, SnapshotCompactsLogAndSurvivesReopen) {
  TempDir dir;
  auto fs = storage::DefaultFileSystem();
  Snapshot local{SnapshotMetadata{LogIndex(4), Term(1), Voters(3)}, "state@4"};
  {
    auto s = OpenOrDie(fs, dir.path());
    ASSERT_TRUE(s->Append(Entries(1, 8, 1, "e")).ok());
    ASSERT_TRUE(s->SaveSnapshot(local).ok());
    ASSERT_TRUE(s->Append(Entries(9, 9, 2, "e")).ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  {
    auto s = OpenOrDie(fs, dir.path());
    auto st = s->Load();
    ASSERT_TRUE(st->snapshot.has_value());
    EXPECT_EQ(*st->snapshot, local);
    ASSERT_EQ(st->entries.size(), 5u);
    EXPECT_EQ(st->entries.front().index, LogIndex(5));
    EXPECT_EQ(st->entries.back().index, LogIndex(9));
    EXPECT_EQ(st->hard_state.commit, LogIndex(4));
    // A snapshot from the leader that our log does not hold replaces the whole log.
    Snapshot remote{SnapshotMetadata{LogIndex(20), Term(3), Voters(3)}, "state@20"};
    ASSERT_TRUE(s->SaveSnapshot(remote).ok());
    ASSERT_TRUE(s->Append(Entries(21, 22, 3, "r")).ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  auto st = OpenOrDie(fs, dir.path())->Load();
  EXPECT_EQ(st->snapshot->metadata.index, LogIndex(20));
  EXPECT_EQ(st->entries, Entries(21, 22, 3, "r"));
  EXPECT_EQ(st->hard_state.commit, LogIndex(20));
}

TEST(DiskRaftStorage, TornTailIsTruncatedAndLogContinuesAfterIt) {
  TempDir dir;
  auto fs = storage::DefaultFileSystem();
  {
    auto s = OpenOrDie(fs, dir.path());
    ASSERT_TRUE(s->Append(Entries(1, 3, 1, "e")).ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  std::string log_path = storage::JoinPath(dir.path(), "log");
  uint64_t good_size;
  {
    auto f = fs->Open(log_path, false);
    ASSERT_TRUE(f.ok());
    good_size = *(*f)->Size();
    // Half of a fourth record: a length that promises more than is there.
    std::string torn("\x00\x00\x00\x40\x12\x34\x56\x78\x01\x00\x00", 11);
    ASSERT_TRUE((*f)->WriteAt(good_size, torn).ok());
  }
  {
    auto s = OpenOrDie(fs, dir.path());
    EXPECT_EQ(s->truncated_tail_bytes(), 11u);
    EXPECT_EQ(s->Load()->entries, Entries(1, 3, 1, "e"));
    ASSERT_TRUE(s->Append(Entries(4, 4, 1, "e")).ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  auto s = OpenOrDie(fs, dir.path());
  EXPECT_EQ(s->truncated_tail_bytes(), 0u);
  EXPECT_EQ(s->Load()->entries, Entries(1, 4, 1, "e"));
}

TEST(DiskRaftStorage, BadCrcEndsTheLogAtTheLastGoodRecord) {
  TempDir dir;
  auto fs = storage::DefaultFileSystem();
  {
    auto s = OpenOrDie(fs, dir.path());
    ASSERT_TRUE(s->Append(Entries(1, 3, 1, "e")).ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  {
    auto f = fs->Open(storage::JoinPath(dir.path(), "log"), false);
    uint64_t size = *(*f)->Size();
    ASSERT_TRUE((*f)->WriteAt(size - 1, "X").ok());  // flip the last byte of entry 3
  }
  auto s = OpenOrDie(fs, dir.path());
  EXPECT_GT(s->truncated_tail_bytes(), 0u);
  EXPECT_EQ(s->Load()->entries, Entries(1, 2, 1, "e"));
}

TEST(DiskRaftStorage, CrashLosesOnlyUnsyncedEntriesAndHardStateIsDurableAtOnce) {
  FaultyFileSystem fs(7);
  {
    auto s = OpenOrDie(&fs, "/raft");
    ASSERT_TRUE(s->Append(Entries(1, 3, 1, "e")).ok());
    ASSERT_TRUE(s->Sync().ok());
    ASSERT_TRUE(s->Append(Entries(4, 6, 1, "e")).ok());  // never synced
    ASSERT_TRUE(s->SaveHardState(HardState{Term(2), NodeId(3), LogIndex(0)}).ok());
  }
  fs.Crash(FaultyFileSystem::CrashMode::kDropUnsynced);
  auto st = OpenOrDie(&fs, "/raft")->Load();
  // The vote was fsynced by SaveHardState (and the log before it), so all of it survives.
  EXPECT_EQ(st->hard_state.term, Term(2));
  EXPECT_EQ(st->hard_state.vote, NodeId(3));
  EXPECT_EQ(st->entries, Entries(1, 6, 1, "e"));

  auto s = OpenOrDie(&fs, "/raft");
  ASSERT_TRUE(s->Append(Entries(7, 9, 2, "u")).ok());  // unsynced, then a torn crash
  s.reset();
  fs.Crash(FaultyFileSystem::CrashMode::kTornLastWrite);
  auto after = OpenOrDie(&fs, "/raft")->Load();
  ASSERT_GE(after->entries.size(), 6u);
  EXPECT_EQ(std::vector<Entry>(after->entries.begin(), after->entries.begin() + 6),
            Entries(1, 6, 1, "e"));
  for (size_t i = 6; i < after->entries.size(); ++i) {
    EXPECT_EQ(after->entries[i], Entries(7, 9, 2, "u")[i - 6]) << "only whole records survive";
  }
}

TEST(DiskRaftStorage, FailedSyncFailsTheStorage) {
  FaultyFileSystem fs(3);
  auto s = OpenOrDie(&fs, "/raft");
  ASSERT_TRUE(s->Append(Entries(1, 1, 1, "e")).ok());
  fs.FailNextSyncs(1);
  EXPECT_FALSE(s->Sync().ok());
  Status again = s->Append(Entries(2, 2, 1, "e"));
  EXPECT_EQ(again.code(), StatusCode::kFailed) << again.ToString();
  EXPECT_TRUE(s->Load().ok()) << "reads keep working";
}

TEST(DiskRaftStorage, RaftNodeRestartsFromDisk) {
  TempDir dir;
  auto fs = storage::DefaultFileSystem();
  RaftConfig c = TestConfig(1, 1);
  {
    auto s = OpenOrDie(fs, dir.path());
    auto n = NewNode(c, *s->Load());
    n->Campaign();
    ASSERT_TRUE(n->Propose("x").ok());
    ASSERT_TRUE(n->Propose("y").ok());
    while (n->HasReady()) {
      Ready rd = n->GetReady();
      ASSERT_TRUE(PersistReady(*s, rd).ok());
      n->Advance();
    }
    ASSERT_EQ(n->commit_index(), LogIndex(3));
  }
  auto s = OpenOrDie(fs, dir.path());
  auto n = NewNode(c, *s->Load());
  EXPECT_EQ(n->term(), Term(1));
  EXPECT_EQ(n->vote(), NodeId(1));
  EXPECT_EQ(n->last_index(), LogIndex(3));
  EXPECT_EQ(n->commit_index(), LogIndex(3));
  EXPECT_EQ(n->EntryAt(LogIndex(3))->data, "y");
  // It re-applies the committed entries to a fresh state machine.
  Ready rd = n->GetReady();
  EXPECT_EQ(rd.committed_entries.size(), 3u);
  n->Advance();
}

// The snapshot file as written before learners existed: crc32c | index u64 | term u64 |
// voter count u32 | voters u32... | data (big-endian).
std::string OldFormatSnapshotFile(uint64_t index, uint64_t term, const std::vector<int>& voters,
                                  const std::string& data) {
  std::string p;
  char b[8];
  be::Store64(b, index);
  p.append(b, 8);
  be::Store64(b, term);
  p.append(b, 8);
  be::Store32(b, static_cast<uint32_t>(voters.size()));
  p.append(b, 4);
  for (int v : voters) {
    be::Store32(b, static_cast<uint32_t>(v));
    p.append(b, 4);
  }
  p += data;
  be::Store32(b, crc32c::Value(p));
  return std::string(b, 4) + p;
}

TEST(DiskRaftStorage, SnapshotWithLearnersSurvivesReopen) {
  TempDir dir;
  auto fs = storage::DefaultFileSystem();
  Snapshot snap{SnapshotMetadata{LogIndex(4), Term(2), VotersAndLearners(3, 2)}, "state@4"};
  {
    auto s = OpenOrDie(fs, dir.path());
    ASSERT_TRUE(s->Append(Entries(1, 6, 2, "e")).ok());
    ASSERT_TRUE(s->SaveSnapshot(snap).ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  auto st = OpenOrDie(fs, dir.path())->Load();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ASSERT_TRUE(st->snapshot.has_value());
  EXPECT_EQ(*st->snapshot, snap);
  EXPECT_EQ(st->snapshot->metadata.configuration.learners,
            (std::vector<NodeId>{NodeId(4), NodeId(5)}));
  EXPECT_EQ(st->entries, Entries(5, 6, 2, "e"));
}

TEST(DiskRaftStorage, SnapshotWrittenBeforeLearnersDecodesWithNoLearners) {
  TempDir dir;
  auto fs = storage::DefaultFileSystem();
  std::string old_file = OldFormatSnapshotFile(7, 3, {1, 2, 3}, "old-state");
  ASSERT_TRUE(
      storage::WriteFileAtomically(fs, storage::JoinPath(dir.path(), "snapshot"), old_file).ok());
  auto st = OpenOrDie(fs, dir.path())->Load();
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  ASSERT_TRUE(st->snapshot.has_value());
  EXPECT_EQ(st->snapshot->metadata.index, LogIndex(7));
  EXPECT_EQ(st->snapshot->metadata.term, Term(3));
  EXPECT_EQ(st->snapshot->metadata.configuration, Voters(3));
  EXPECT_TRUE(st->snapshot->metadata.configuration.learners.empty());
  EXPECT_EQ(st->snapshot->data, "old-state");

  // A snapshot without learners is still written byte for byte in the old format, so a node
  // that has not been upgraded reads it.
  TempDir dir2;
  {
    auto s = OpenOrDie(fs, dir2.path());
    ASSERT_TRUE(
        s->SaveSnapshot(Snapshot{SnapshotMetadata{LogIndex(7), Term(3), Voters(3)}, "old-state"})
            .ok());
    ASSERT_TRUE(s->Sync().ok());
  }
  auto written = storage::ReadWholeFile(fs, storage::JoinPath(dir2.path(), "snapshot"));
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(*written, old_file);
}

TEST(DiskRaftStorage, TruncatedLearnerListIsCorruption) {
  TempDir dir;
  auto fs = storage::DefaultFileSystem();
  // Voter count with the learner flag set, one voter, then a learner count of 3 but one id.
  std::string p;
  char b[8];
  be::Store64(b, 5);
  p.append(b, 8);
  be::Store64(b, 1);
  p.append(b, 8);
  for (uint32_t v : {0x80000001u, 1u, 3u, 2u}) {
    be::Store32(b, v);
    p.append(b, 4);
  }
  be::Store32(b, crc32c::Value(p));
  std::string file = std::string(b, 4) + p;
  ASSERT_TRUE(
      storage::WriteFileAtomically(fs, storage::JoinPath(dir.path(), "snapshot"), file).ok());
  auto s = DiskRaftStorage::Open(fs, dir.path());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kCorruption) << s.status().ToString();
}

}  // namespace
}  // namespace rill::raft::testing
