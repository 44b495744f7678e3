// The materializer on the RocksDB-backed store: apply, close, reopen, reload with a suffix.

#include "groups/kv_offset_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "groups/offsets_materializer.h"

namespace rill::groups {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "rill-groups-kv-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::vector<OffsetsLogRecord> CommitLog(int64_t first, int n) {
  std::vector<OffsetsLogRecord> log;
  for (int i = 0; i < n; ++i) {
    pb::OffsetCommitValue v;
    v.set_offset(100 + i);
    EncodedGroupRecord e = Encode(MakeOffsetCommitRecord("g", "t", i % 3, v));
    log.push_back({Offset(first + i), e.key, e.value});
  }
  return log;
}

TEST(KvOffsetStoreTest, SurvivesReopenAndReplaysSuffix) {
  TempDir dir;
  const auto log = CommitLog(0, 10);
  {
    auto kv = storage::KvStore::Open(dir.path());
    ASSERT_TRUE(kv.ok()) << kv.status().ToString();
    KvOffsetStore store(kv->get(), /*sync=*/true);
    OffsetsMaterializer m(&store, 3);
    ASSERT_TRUE(m.Apply(std::span(log).first(6)).ok());
    EXPECT_FALSE(store.Get("absent").value().has_value());
  }
  auto kv = storage::KvStore::Open(dir.path());
  ASSERT_TRUE(kv.ok()) << kv.status().ToString();
  KvOffsetStore store(kv->get());
  OffsetsMaterializer m(&store, 3);
  EXPECT_EQ(m.AppliedOffset().value(), Offset(5));
  auto loaded = m.Load(log);  // overlapping suffix: records 0..5 are skipped
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->applied_offset, Offset(9));
  const auto& offsets = loaded->groups.at("g").offsets;
  ASSERT_EQ(offsets.size(), 3u);
  EXPECT_EQ(offsets.at(TopicPartition{"t", 0}).offset(), 109);
  EXPECT_EQ(offsets.at(TopicPartition{"t", 1}).offset(), 107);
  EXPECT_EQ(offsets.at(TopicPartition{"t", 2}).offset(), 108);
}

}  // namespace
}  // namespace rill::groups
