// The housekeeper applies retention to every local partition: by time against its clock, by
// size, on its own thread every interval, keeps going past a partition that fails, and counts
// what it removed in /metrics.

#include "partition/housekeeper.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "memory_log.h"
#include "partition/partition_manager.h"
#include "rill/proto/record_batch.h"
#include "support/poll.h"

namespace rill::broker::testing {
namespace {

std::shared_ptr<MetadataImage> OneTopic(const std::string& name, int partitions,
                                        std::map<std::string, std::string> configs) {
  TopicMetadata t{name, name + "-id", false, {}, std::move(configs)};
  for (int p = 0; p < partitions; ++p) {
    PartitionAssignment a;
    a.partition = p;
    a.leader = NodeId(1);
    a.leader_epoch = LeaderEpoch(1);
    a.replicas = {NodeId(1)};
    a.isr = a.replicas;
    t.partitions.push_back(a);
  }
  auto img = std::make_shared<MetadataImage>();
  img->topics[name] = t;
  return img;
}

// Appends one batch of one ~100-byte record stamped `ts`.
void AppendAt(Partition& p, int64_t ts) {
  batch::BatchBuilder b(batch::Compression::kNone);
  ASSERT_TRUE(b.Add(std::string_view("k"), std::string_view(std::string(100, 'v')), ts).ok());
  auto built = b.Build();
  ASSERT_TRUE(built.ok());
  std::string bytes = std::move(built).value();
  auto r = p.Append(std::span<char>(bytes.data(), bytes.size()), /*acks=*/0, nullptr);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

int64_t Counter(const Housekeeper& h, const std::string& name) {
  std::string out;
  h.RenderMetrics(&out);
  size_t pos = out.find("\n" + name + " ");
  return pos == std::string::npos ? -1 : std::stoll(out.substr(pos + name.size() + 2));
}

TEST(Housekeeper, RemovesWhatIsOlderThanRetentionMsOnEveryPartition) {
  MemoryLogStore store;
  PartitionManager pm(NodeId(1), &store, {});
  pm.ApplyImage(OneTopic("t", 2, {{"retention.ms", "1000"}}));
  int64_t now = 10'000;
  Housekeeper h(&pm, std::chrono::hours(1), [&] { return now; });
  for (int p = 0; p < 2; ++p) {
    for (int64_t ts : {1000, 2000, 8500, 9500}) AppendAt(*pm.Get("t", p), ts);
  }
  // Older than 9000: the batches at 1000, 2000 and 8500 on each partition.
  RetentionInfo r = h.RunOnce();
  EXPECT_EQ(r.segments, 6);
  EXPECT_GT(r.bytes, 0u);
  for (int p = 0; p < 2; ++p) {
    EXPECT_EQ(pm.Get("t", p)->log().log_start_offset(), Offset(3));
    EXPECT_EQ(pm.Get("t", p)->log().log_end_offset(), Offset(4));
  }
  // The newest batch is the active segment and stays, however old it gets.
  now = 1'000'000;
  EXPECT_EQ(h.RunOnce().segments, 0);
  EXPECT_EQ(Counter(h, "rill_retention_passes_total"), 2);
  EXPECT_EQ(Counter(h, "rill_retention_segments_deleted_total"), 6);
  EXPECT_EQ(Counter(h, "rill_retention_bytes_deleted_total"), static_cast<int64_t>(r.bytes));
  EXPECT_EQ(Counter(h, "rill_retention_errors_total"), 0);
}

TEST(Housekeeper, KeepsASizeBoundedPartitionWithinRetentionBytes) {
  MemoryLogStore store;
  PartitionManager pm(NodeId(1), &store, {});
  pm.ApplyImage(OneTopic("t", 1, {{"retention.bytes", "1000"}, {"retention.ms", "-1"}}));
  Housekeeper h(&pm, std::chrono::hours(1), [] { return int64_t{0}; });
  auto part = pm.Get("t", 0);
  for (int i = 0; i < 50; ++i) {
    AppendAt(*part, 0);
    (void)h.RunOnce();
    EXPECT_LE(part->log().size_bytes(), 1000u + 200u) << "after append " << i;
  }
  EXPECT_GT(part->log().log_start_offset(), Offset(0));
  EXPECT_EQ(part->log().log_end_offset(), Offset(50));
}

TEST(Housekeeper, APartitionThatFailsIsCountedAndTheOthersStillRun) {
  MemoryLogStore store;
  PartitionManager pm(NodeId(1), &store, {});
  pm.ApplyImage(OneTopic("t", 2, {{"retention.ms", "0"}}));
  Housekeeper h(&pm, std::chrono::hours(1), [] { return int64_t{100}; });
  for (int p = 0; p < 2; ++p) {
    AppendAt(*pm.Get("t", p), 1);
    AppendAt(*pm.Get("t", p), 2);
  }
  store.Get("t", 0)->SetRetentionError(Status::IOError("injected: disk gone"));
  EXPECT_EQ(h.RunOnce().segments, 1);
  EXPECT_EQ(pm.Get("t", 0)->log().log_start_offset(), Offset(0));
  EXPECT_EQ(pm.Get("t", 1)->log().log_start_offset(), Offset(1));
  EXPECT_EQ(Counter(h, "rill_retention_errors_total"), 1);
  // Once the log works again, the next pass trims it.
  store.Get("t", 0)->SetRetentionError(Status::OK());
  EXPECT_EQ(h.RunOnce().segments, 1);
  EXPECT_EQ(pm.Get("t", 0)->log().log_start_offset(), Offset(1));
  EXPECT_EQ(Counter(h, "rill_retention_errors_total"), 1);
}

TEST(Housekeeper, ItsThreadRunsEveryIntervalWhileAppendsGoOn) {
  MemoryLogStore store;
  PartitionManager pm(NodeId(1), &store, {});
  pm.ApplyImage(OneTopic("t", 1, {{"retention.bytes", "2000"}, {"retention.ms", "-1"}}));
  auto part = pm.Get("t", 0);
  Housekeeper h(&pm, std::chrono::milliseconds(1));
  h.Start();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 2000 && !stop.load(); ++i) AppendAt(*part, 0);
  });
  ASSERT_TRUE(test::PollUntil([&] { return Counter(h, "rill_retention_passes_total") >= 5; }));
  ASSERT_TRUE(test::PollUntil([&] { return part->log().log_start_offset() > Offset(0); }));
  stop = true;
  writer.join();
  h.Stop();
  h.Stop();  // idempotent
  const int64_t passes = Counter(h, "rill_retention_passes_total");
  EXPECT_GE(Counter(h, "rill_retention_segments_deleted_total"), 1);
  // Stopped: no more passes.
  (void)h.RunOnce();
  EXPECT_EQ(Counter(h, "rill_retention_passes_total"), passes + 1);
}

}  // namespace
}  // namespace rill::broker::testing
