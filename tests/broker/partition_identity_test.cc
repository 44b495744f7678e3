// Partition identity files and stray log removal, with PartitionManager over the real
// StorageLogStore on a temporary data dir: a log is never served as another topic's (a topic
// deleted and re-created while the broker was down), logs from before identity files are
// adopted, and the stray scan removes only unassigned partition logs.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "partition/partition_manager.h"
#include "rill/proto/record_batch.h"
#include "partition/storage_log_store.h"

namespace rill::broker::testing {
namespace {

namespace fs = std::filesystem;

std::string MakeBatch(int n) {
  batch::BatchBuilder b(batch::Compression::kNone);
  for (int i = 0; i < n; ++i) {
    std::string v = "v" + std::to_string(i);
    EXPECT_TRUE(b.Add(std::string_view("k"), std::string_view(v), 1000 + i).ok());
  }
  auto r = b.Build();
  EXPECT_TRUE(r.ok());
  return std::move(r).value();
}

std::shared_ptr<MetadataImage> ImageOf(const std::string& topic, const std::string& id,
                                       int32_t partitions, uint64_t applied_index = 1) {
  auto img = std::make_shared<MetadataImage>();
  img->applied_index = applied_index;
  TopicMetadata t;
  t.name = topic;
  t.topic_id = id;
  for (int32_t p = 0; p < partitions; ++p) {
    PartitionAssignment a;
    a.partition = p;
    a.leader = NodeId(1);
    a.leader_epoch = LeaderEpoch(1);
    a.replicas = {NodeId(1)};
    a.isr = a.replicas;
    t.partitions.push_back(a);
  }
  img->topics[topic] = t;
  return img;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// One broker "process": a store and a manager over the data dir, closed on destruction.
struct Node {
  explicit Node(const std::string& dir) : store(dir, 0), pm(NodeId(1), &store, {}) {}
  ~Node() { EXPECT_TRUE(store.CloseAll().ok()); }
  StorageLogStore store;
  PartitionManager pm;
};

class PartitionIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/rill-partition-identity-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Opens topic-0 under `id` and appends `records` records.
  void WriteRecords(const std::string& topic, const std::string& id, int records) {
    Node node(dir_);
    node.pm.ApplyImage(ImageOf(topic, id, 1));
    ASSERT_TRUE(node.pm.ready());
    auto part = node.pm.Get(topic, 0);
    ASSERT_NE(part, nullptr);
    std::string b = MakeBatch(records);
    ASSERT_TRUE(part->Append(std::span<char>(b.data(), b.size()), /*acks=*/0, nullptr).ok());
  }

  std::string dir_;
};

TEST(PartitionIdentityCodec, RoundTripsAndRejectsDamage) {
  PartitionIdentity id{"orders.v2-x", "AbC123", 17};
  std::string text = EncodePartitionIdentity(id);
  EXPECT_EQ(text, "version: 1\ntopic: orders.v2-x\ntopic_id: AbC123\npartition: 17\n");
  auto back = DecodePartitionIdentity(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, id);
  // Unknown keys are ignored.
  EXPECT_TRUE(DecodePartitionIdentity(text + "future: 1\n").ok());
  EXPECT_TRUE(DecodePartitionIdentity("version: 2\ntopic: t\ntopic_id: a\npartition: 0\n")
                  .status()
                  .IsCorruption());
  EXPECT_TRUE(
      DecodePartitionIdentity("version: 1\ntopic: t\npartition: 0\n").status().IsCorruption());
  EXPECT_TRUE(DecodePartitionIdentity("version: 1\ntopic: t\ntopic_id: a\npartition: x\n")
                  .status()
                  .IsCorruption());
  EXPECT_TRUE(DecodePartitionIdentity("garbage").status().IsCorruption());
  EXPECT_TRUE(DecodePartitionIdentity("").status().IsCorruption());
}

TEST_F(PartitionIdentityTest, NewLogGetsAnIdentityFile) {
  WriteRecords("x", "id1", 3);
  EXPECT_EQ(ReadFile(fs::path(dir_) / "x-0" / "partition.metadata"),
            "version: 1\ntopic: x\ntopic_id: id1\npartition: 0\n");
}

TEST_F(PartitionIdentityTest, RecreatedTopicIdReplacesTheOldLog) {
  WriteRecords("x", "id1", 5);
  Node node(dir_);
  node.pm.ApplyImage(ImageOf("x", "id2", 1));
  ASSERT_TRUE(node.pm.ready());
  auto part = node.pm.Get("x", 0);
  ASSERT_NE(part, nullptr);
  EXPECT_EQ(part->log().log_start_offset(), Offset(0));
  EXPECT_EQ(part->log().log_end_offset(), Offset(0));
  EXPECT_EQ(ReadFile(fs::path(dir_) / "x-0" / "partition.metadata"),
            "version: 1\ntopic: x\ntopic_id: id2\npartition: 0\n");
  // The new topic's log starts at 0 and holds only its own records.
  std::string b = MakeBatch(2);
  auto appended = part->Append(std::span<char>(b.data(), b.size()), /*acks=*/0, nullptr);
  ASSERT_TRUE(appended.ok()) << appended.status().ToString();
  EXPECT_EQ(appended->base_offset, Offset(0));
}

TEST_F(PartitionIdentityTest, SameTopicIdKeepsTheLog) {
  WriteRecords("x", "id1", 5);
  Node node(dir_);
  node.pm.ApplyImage(ImageOf("x", "id1", 1));
  auto part = node.pm.Get("x", 0);
  ASSERT_NE(part, nullptr);
  EXPECT_EQ(part->log().log_end_offset(), Offset(5));
  auto read = part->log().Read(Offset(0), 1 << 20, Offset(5));
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->next_offset, Offset(5));
}

TEST_F(PartitionIdentityTest, DirectoryWithoutIdentityFileIsAdopted) {
  WriteRecords("x", "id1", 4);
  fs::path id_file = fs::path(dir_) / "x-0" / "partition.metadata";
  ASSERT_TRUE(fs::remove(id_file));  // as written before identity files existed
  Node node(dir_);
  node.pm.ApplyImage(ImageOf("x", "id7", 1));
  auto part = node.pm.Get("x", 0);
  ASSERT_NE(part, nullptr);
  EXPECT_EQ(part->log().log_end_offset(), Offset(4));
  EXPECT_EQ(ReadFile(id_file), "version: 1\ntopic: x\ntopic_id: id7\npartition: 0\n");
}

TEST_F(PartitionIdentityTest, DamagedIdentityFileIsNeitherServedNorRemoved) {
  WriteRecords("x", "id1", 3);
  fs::path id_file = fs::path(dir_) / "x-0" / "partition.metadata";
  std::ofstream(id_file, std::ios::trunc) << "version: 1\ntopic: y\ntopic_id: id1\npartition: 0\n";
  {
    Node node(dir_);
    node.pm.ApplyImage(ImageOf("x", "id2", 1));
    EXPECT_FALSE(node.pm.ready());
    EXPECT_EQ(node.pm.Get("x", 0), nullptr);
  }
  // The data is still there for an operator to look at.
  std::ofstream(id_file, std::ios::trunc) << "version: 1\ntopic: x\ntopic_id: id2\npartition: 0\n";
  Node node(dir_);
  node.pm.ApplyImage(ImageOf("x", "id2", 1));
  ASSERT_NE(node.pm.Get("x", 0), nullptr);
  EXPECT_EQ(node.pm.Get("x", 0)->log().log_end_offset(), Offset(3));
}

TEST_F(PartitionIdentityTest, StrayScanRemovesOnlyUnassignedPartitionLogs) {
  WriteRecords("x", "id1", 3);
  WriteRecords("gone", "id9", 1);  // deleted while the broker was down
  fs::path d(dir_);
  // A stray log from before identity files: only a segment.
  fs::create_directories(d / "ghost-0");
  std::ofstream(d / "ghost-0" / "00000000000000000000.log") << "bytes";
  // Not partition logs: kept whatever their names.
  fs::create_directories(d / "__groups");
  std::ofstream(d / "__groups" / "000003.log") << "rocksdb wal";
  fs::create_directories(d / "__cluster_metadata-0");
  std::ofstream(d / "__cluster_metadata-0" / "00000000000000000000.log") << "raft";
  fs::create_directories(d / "notes-1");  // no segment, no identity file
  std::ofstream(d / "notes-1" / "readme.txt") << "keep";
  fs::create_directories(d / "backup");
  std::ofstream(d / "backup" / "00000000000000000000.log") << "keep";
  std::ofstream(d / "stray-3") << "a file, not a directory";
  fs::create_directories(d / "elsewhere" / "real-0");
  std::ofstream(d / "elsewhere" / "real-0" / "00000000000000000000.log") << "keep";
  fs::create_directory_symlink(d / "elsewhere" / "real-0", d / "link-0");

  Node node(dir_);
  auto img = ImageOf("x", "id1", 1, /*applied_index=*/10);
  node.pm.ApplyImage(img);
  // An image older than the current one is refused.
  auto early = node.pm.RemoveStrayLogs(11, {"__cluster_metadata-0", "__groups"});
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(fs::exists(d / "ghost-0"));

  auto removed = node.pm.RemoveStrayLogs(10, {"__cluster_metadata-0", "__groups"});
  ASSERT_TRUE(removed.ok()) << removed.status().ToString();
  EXPECT_EQ(*removed, (std::vector<std::string>{"ghost-0", "gone-0"}));
  EXPECT_FALSE(fs::exists(d / "ghost-0"));
  EXPECT_FALSE(fs::exists(d / "gone-0"));
  EXPECT_TRUE(fs::exists(d / "x-0" / "partition.metadata"));
  EXPECT_EQ(node.pm.Get("x", 0)->log().log_end_offset(), Offset(3));
  EXPECT_TRUE(fs::exists(d / "__groups" / "000003.log"));
  EXPECT_TRUE(fs::exists(d / "__cluster_metadata-0" / "00000000000000000000.log"));
  EXPECT_TRUE(fs::exists(d / "notes-1" / "readme.txt"));
  EXPECT_TRUE(fs::exists(d / "backup"));
  EXPECT_TRUE(fs::exists(d / "stray-3"));
  EXPECT_TRUE(fs::exists(d / "elsewhere" / "real-0" / "00000000000000000000.log"));
  EXPECT_TRUE(fs::is_symlink(d / "link-0"));
}

TEST_F(PartitionIdentityTest, StrayScanNeverRemovesAnOpenLog) {
  Node node(dir_);
  node.pm.ApplyImage(ImageOf("x", "id1", 1));
  auto part = node.pm.Get("x", 0);
  ASSERT_NE(part, nullptr);
  // Even when the caller's keep set omits it (a scan racing an image being applied).
  auto removed = node.store.RemoveStrayLogs({});
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(removed->empty());
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "x-0" / "partition.metadata"));
}

}  // namespace
}  // namespace rill::broker::testing
