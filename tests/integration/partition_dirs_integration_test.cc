// The real rill-broker process and its partition directories across a restart: a directory
// whose identity file names another topic id is not served (the broker starts that partition
// afresh and says why), stray partition directories left by a crash are removed once the
// metadata image is current, and everything else in the data dir is left alone.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "broker_process.h"
#include "rill/proto/record_batch.h"
#include "support/poll.h"

namespace rill::testing {
namespace {

namespace fs = std::filesystem;

class PartitionDirsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ =
        (fs::temp_directory_path() / ("rill_it_" + std::to_string(::getpid()) + "_" + info->name()))
            .string();
    fs::remove_all(dir_);
    broker_ = std::make_unique<BrokerProcess>(dir_);
  }
  void TearDown() override {
    if ((::testing::Test::HasFailure() || getenv("RILL_IT_SHOW_LOG")) && broker_) {
      std::cerr << "---- broker log ----\n" << broker_->log() << "--------------------\n";
    }
    broker_.reset();
    fs::remove_all(dir_);
  }

  fs::path data() const { return fs::path(dir_) / "data"; }

  void CreateTopic(const std::string& name, int partitions) {
    auto r = broker_->CreateTopic(name, partitions);
    ASSERT_EQ(r.error(), v1::NONE) << r.error_message();
  }

  // Produces `n` records (values "<topic>-<partition>-<i>") in one batch, acks=all.
  void Produce(const std::string& topic, int partition, int n) {
    batch::BatchBuilder b(batch::Compression::kNone);
    for (int i = 0; i < n; ++i) {
      std::string v = topic + "-" + std::to_string(partition) + "-" + std::to_string(i);
      ASSERT_TRUE(b.Add(std::string_view("k"), std::string_view(v), 1000 + i).ok());
    }
    auto built = b.Build();
    ASSERT_TRUE(built.ok());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ProduceRequest req;
    req.set_acks(-1);
    auto* p = req.add_partitions();
    p->set_topic(topic);
    p->set_partition(partition);
    p->set_records(std::move(built).value());
    v1::ProduceResponse resp;
    auto st = broker_->producer->Produce(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(resp.partitions_size(), 1);
    ASSERT_EQ(resp.partitions(0).error(), v1::NONE) << resp.partitions(0).error_message();
  }

  // Every record value of the partition from offset 0, and its high watermark.
  std::vector<std::string> ReadAll(const std::string& topic, int partition, int64_t* hw) {
    std::vector<std::string> values;
    for (auto& r : broker_->ReadAll(topic, partition, hw))
      values.push_back(r.record.value.value_or(""));
    return values;
  }

  std::string dir_;
  std::unique_ptr<BrokerProcess> broker_;
};

std::string ReadText(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteText(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
}

TEST_F(PartitionDirsIntegrationTest, RestartDropsStrayAndForeignLogsAndKeepsTheRest) {
  broker_->Start();
  CreateTopic("kept", 2);
  CreateTopic("tampered", 1);
  Produce("kept", 0, 10);
  Produce("kept", 1, 7);
  Produce("tampered", 0, 5);
  // No group was used: the offsets store was never opened.
  EXPECT_FALSE(fs::exists(data() / "__groups"));
  ASSERT_EQ(broker_->Stop(), 0);

  // Each partition directory names its topic's id.
  std::string identity = ReadText(data() / "tampered-0" / "partition.metadata");
  ASSERT_EQ(identity.rfind("version: 1\ntopic: tampered\ntopic_id: ", 0), 0u) << identity;
  EXPECT_NE(ReadText(data() / "kept-1" / "partition.metadata").find("partition: 1\n"),
            std::string::npos);
  // Another topic id, as if "tampered" had been deleted and re-created while this broker was
  // down: its old records must not be served as the new topic's.
  WriteText(data() / "tampered-0" / "partition.metadata",
            "version: 1\ntopic: tampered\ntopic_id: old-topic-id\npartition: 0\n");
  // Stray logs of deleted topics whose removal a crash interrupted: one from before identity
  // files (segments only), one with an identity file.
  fs::create_directories(data() / "ghost-0");
  fs::copy_file(data() / "kept-0" / "00000000000000000000.log",
                data() / "ghost-0" / "00000000000000000000.log");
  fs::create_directories(data() / "deleted.topic-3");
  WriteText(data() / "deleted.topic-3" / "partition.metadata",
            "version: 1\ntopic: deleted.topic\ntopic_id: gone\npartition: 3\n");
  // Not partition logs: left alone.
  fs::create_directories(data() / "operator-notes-1");
  WriteText(data() / "operator-notes-1" / "todo.txt", "keep me");
  WriteText(data() / "README-0", "a file");

  broker_->Start();
  test::PollUntil(
      [&] { return !fs::exists(data() / "ghost-0") && !fs::exists(data() / "deleted.topic-3"); },
      std::chrono::seconds(30), std::chrono::milliseconds(10));
  EXPECT_FALSE(fs::exists(data() / "ghost-0"));
  EXPECT_FALSE(fs::exists(data() / "deleted.topic-3"));
  EXPECT_EQ(ReadText(data() / "operator-notes-1" / "todo.txt"), "keep me");
  EXPECT_EQ(ReadText(data() / "README-0"), "a file");
  EXPECT_TRUE(fs::exists(data() / "__cluster_metadata-0"));

  // The foreign log is gone: the partition starts empty under the topic's real id.
  int64_t hw = -1;
  EXPECT_TRUE(ReadAll("tampered", 0, &hw).empty());
  EXPECT_EQ(hw, 0);
  EXPECT_EQ(ReadText(data() / "tampered-0" / "partition.metadata"), identity);
  std::string log = broker_->log();
  EXPECT_NE(log.find("removing the log of topic tampered id old-topic-id"), std::string::npos);
  EXPECT_NE(log.find("removed stray partition log " + (data() / "ghost-0").string()),
            std::string::npos);
  EXPECT_NE(log.find("stray partition log scan done: 2 removed"), std::string::npos);

  // The untouched topic keeps every record.
  auto p0 = ReadAll("kept", 0, &hw);
  ASSERT_EQ(p0.size(), 10u);
  EXPECT_EQ(hw, 10);
  EXPECT_EQ(p0.front(), "kept-0-0");
  EXPECT_EQ(p0.back(), "kept-0-9");
  auto p1 = ReadAll("kept", 1, &hw);
  ASSERT_EQ(p1.size(), 7u);
  EXPECT_EQ(p1.back(), "kept-1-6");

  // The fresh log takes new records from offset 0.
  Produce("tampered", 0, 2);
  auto t0 = ReadAll("tampered", 0, &hw);
  ASSERT_EQ(t0.size(), 2u);
  EXPECT_EQ(t0[0], "tampered-0-0");
  EXPECT_EQ(broker_->Stop(), 0);
}

// Losing the metadata log (a wiped or moved __cluster_metadata-0) must not turn every partition
// directory into a "stray": the new metadata log knows none of them, and deleting them would
// lose acknowledged records. They are left alone, and the broker says so.
TEST_F(PartitionDirsIntegrationTest, ANewMetadataLogLeavesExistingPartitionDirsAlone) {
  broker_->Start();
  CreateTopic("precious", 1);
  Produce("precious", 0, 6);
  ASSERT_EQ(broker_->Stop(), 0);
  const std::string segment = ReadText(data() / "precious-0" / "00000000000000000000.log");
  ASSERT_FALSE(segment.empty());
  fs::remove_all(data() / "__cluster_metadata-0");

  broker_->Start();
  ASSERT_TRUE(test::PollUntil([&] {
    return broker_->log().find("stray partition logs are not scanned for: the metadata log") !=
           std::string::npos;
  })) << "the broker did not say why it skipped the scan";
  EXPECT_EQ(broker_->log().find("stray partition log scan done"), std::string::npos);
  EXPECT_EQ(ReadText(data() / "precious-0" / "00000000000000000000.log"), segment);
  // Its identity file (naming the old topic id) stays too.
  EXPECT_TRUE(fs::exists(data() / "precious-0" / "partition.metadata"));
  EXPECT_EQ(broker_->Stop(), 0);
}

// A deleted topic's directory is renamed away at once and its files are shrunk and removed in
// the background (storage.remove_step_bytes); a directory such a removal left behind when the
// broker stopped is finished after the next start. The same name can be created again at once.
TEST_F(PartitionDirsIntegrationTest, DeletedTopicsAreRemovedInTheBackground) {
  // Leftover of an interrupted removal, with a file larger than one step.
  fs::create_directories(data() / "old-0.12345.deleted");
  WriteText(data() / "old-0.12345.deleted" / "00000000000000000000.log", std::string(200000, 'x'));
  broker_->Start({"--storage.remove_step_bytes", "65536"});
  CreateTopic("doomed", 1);
  for (int i = 0; i < 20; ++i) Produce("doomed", 0, 50);
  ASSERT_TRUE(fs::exists(data() / "doomed-0"));
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::DeleteTopicsRequest req;
    req.add_topics("doomed");
    v1::DeleteTopicsResponse resp;
    ASSERT_TRUE(broker_->admin->DeleteTopics(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.results_size(), 1);
    ASSERT_EQ(resp.results(0).error(), v1::NONE) << resp.results(0).error_message();
  }
  auto leftovers = [&] {
    int n = 0;
    for (const auto& e : fs::directory_iterator(data())) {
      const std::string name = e.path().filename().string();
      if (name.ends_with(".deleted") || name == "doomed-0") ++n;
    }
    return n;
  };
  EXPECT_TRUE(test::PollUntil([&] { return leftovers() == 0; }, std::chrono::seconds(30),
                              std::chrono::milliseconds(10)));
  // The name is free again.
  CreateTopic("doomed", 1);
  Produce("doomed", 0, 3);
  int64_t hw = -1;
  auto values = ReadAll("doomed", 0, &hw);
  ASSERT_EQ(values.size(), 3u);
  EXPECT_EQ(values[0], "doomed-0-0");
  EXPECT_EQ(broker_->Stop(), 0);
}

}  // namespace
}  // namespace rill::testing
