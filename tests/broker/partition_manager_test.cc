// PartitionManager follows metadata images: opens hosted partitions with effective configs,
// sets leadership, applies config changes, removes deleted or re-created topics.

#include "partition/partition_manager.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "memory_log.h"
#include "support/poll.h"

namespace rill::broker::testing {
namespace {

PartitionAssignment Assign(int32_t p, int32_t leader, std::vector<int32_t> replicas,
                           int32_t epoch = 1) {
  PartitionAssignment a;
  a.partition = p;
  a.leader = NodeId(leader);
  a.leader_epoch = LeaderEpoch(epoch);
  for (auto r : replicas) a.replicas.push_back(NodeId(r));
  a.isr = a.replicas;
  return a;
}

std::shared_ptr<MetadataImage> Image(std::vector<TopicMetadata> topics) {
  auto img = std::make_shared<MetadataImage>();
  for (auto& t : topics) img->topics[t.name] = t;
  return img;
}

TEST(PartitionManager, OpensOnlyHostedPartitionsWithRoles) {
  MemoryLogStore store;
  PartitionManager pm(NodeId(1), &store, {{"flush.policy", "none"}});
  EXPECT_FALSE(pm.ready());
  TopicMetadata t{"t", "id1", false,
                  {Assign(0, 1, {1}), Assign(1, 2, {2, 1}, 7), Assign(2, 2, {2, 3})},
                  {{"retention.ms", "5"}}};
  pm.ApplyImage(Image({t}));
  EXPECT_TRUE(pm.ready());
  ASSERT_NE(pm.Get("t", 0), nullptr);
  ASSERT_NE(pm.Get("t", 1), nullptr);
  EXPECT_EQ(pm.Get("t", 2), nullptr);  // not a replica here
  EXPECT_EQ(pm.Get("t", 9), nullptr);
  EXPECT_EQ(pm.Get("t", -1), nullptr);
  EXPECT_EQ(pm.Get("u", 0), nullptr);
  EXPECT_EQ(pm.Get("t", 0)->role(), PartitionRole::kLeader);
  EXPECT_EQ(pm.Get("t", 1)->role(), PartitionRole::kFollower);
  EXPECT_EQ(pm.Get("t", 1)->leader_epoch(), LeaderEpoch(7));
  EXPECT_EQ(pm.All().size(), 2u);
  // Broker defaults below topic overrides.
  auto cfg = store.Get("t", 0)->config();
  EXPECT_EQ(cfg.at("flush.policy"), "none");
  EXPECT_EQ(cfg.at("retention.ms"), "5");
  // A follower refuses appends.
  std::string b = "x";
  EXPECT_FALSE(
      pm.Get("t", 1)->Append(std::span<char>(b.data(), b.size()), /*acks=*/0, nullptr).ok());
}

TEST(PartitionManager, AppliesConfigChangesAndLeadershipMoves) {
  MemoryLogStore store;
  PartitionManager pm(NodeId(1), &store, {});
  TopicMetadata t{"t", "id1", false, {Assign(0, 1, {1, 2})}, {}};
  pm.ApplyImage(Image({t}));
  auto part = pm.Get("t", 0);
  EXPECT_EQ(part->limits().max_message_bytes, 1048588);
  t.configs["max.message.bytes"] = "100";
  t.configs["message.timestamp.type"] = "LogAppendTime";
  t.partitions[0] = Assign(0, 2, {1, 2}, 2);
  pm.ApplyImage(Image({t}));
  EXPECT_EQ(pm.Get("t", 0), part);  // same log, not reopened
  EXPECT_EQ(store.opens(), 1);
  EXPECT_EQ(part->limits().max_message_bytes, 100);
  EXPECT_TRUE(part->limits().log_append_time);
  EXPECT_EQ(store.Get("t", 0)->config().at("max.message.bytes"), "100");
  EXPECT_EQ(part->role(), PartitionRole::kFollower);
  EXPECT_EQ(part->leader_epoch(), LeaderEpoch(2));
}

TEST(PartitionManager, DeletedAndRecreatedTopicsLoseTheirLogs) {
  MemoryLogStore store;
  PartitionManager pm(NodeId(1), &store, {});
  TopicMetadata t{"t", "id1", false, {Assign(0, 1, {1}), Assign(1, 1, {1})}, {}};
  pm.ApplyImage(Image({t}));
  pm.ApplyImage(Image({}));
  EXPECT_EQ(pm.Get("t", 0), nullptr);
  EXPECT_EQ(store.removes(), 2);
  pm.ApplyImage(Image({t}));
  auto before = pm.Get("t", 0);
  t.topic_id = "id2";  // deleted and re-created between two images
  pm.ApplyImage(Image({t}));
  EXPECT_EQ(store.removes(), 4);
  ASSERT_NE(pm.Get("t", 0), nullptr);
  EXPECT_NE(pm.Get("t", 0), before);
  // Added partitions open.
  t.partitions.push_back(Assign(2, 1, {1}));
  pm.ApplyImage(Image({t}));
  EXPECT_NE(pm.Get("t", 2), nullptr);
}

// A partition reassigned away from this node is closed and its log removed; it no longer shows
// as local (nor keeps its last role).
TEST(PartitionManager, PartitionsReassignedAwayAreRemoved) {
  MemoryLogStore store;
  PartitionManager pm(NodeId(1), &store, {});
  TopicMetadata t{"t", "id1", false, {Assign(0, 1, {1}), Assign(1, 1, {1, 2})}, {}};
  pm.ApplyImage(Image({t}));
  auto moved = pm.Get("t", 1);
  ASSERT_NE(moved, nullptr);
  t.partitions[1] = Assign(1, 2, {2, 3}, 2);
  pm.ApplyImage(Image({t}));
  EXPECT_EQ(pm.Get("t", 1), nullptr);
  EXPECT_EQ(moved->role(), PartitionRole::kFollower) << "a request still holding it cannot append";
  EXPECT_EQ(store.removes(), 1);
  EXPECT_EQ(store.Get("t", 1), nullptr);
  ASSERT_NE(pm.Get("t", 0), nullptr);
  EXPECT_EQ(pm.All().size(), 1u);
  EXPECT_EQ(store.opens(), 2) << "the partition that stayed was not reopened";
}

// Only what changed is touched: an image that changes nothing local reopens nothing and
// re-applies no config.
TEST(PartitionManager, UnchangedPartitionsAreLeftAlone) {
  MemoryLogStore store;
  PartitionManager pm(NodeId(1), &store, {});
  TopicMetadata t{"t", "id1", false, {Assign(0, 1, {1})}, {{"retention.ms", "5"}}};
  TopicMetadata other{"u", "id2", false, {Assign(0, 2, {2})}, {}};
  pm.ApplyImage(Image({t, other}));
  (void)store.Get("t", 0)->ApplyConfig({{"marker", "kept"}});
  other.configs["retention.ms"] = "1";  // a topic this node does not host
  other.partitions[0].leader_epoch = LeaderEpoch(9);
  pm.ApplyImage(Image({t, other}));
  EXPECT_EQ(store.opens(), 1);
  EXPECT_EQ(store.Get("t", 0)->config().count("marker"), 1u) << "config was re-applied";
}

// A log that fails to open leaves the manager not ready; a later image tries it again.
TEST(PartitionManager, ALogThatFailsToOpenIsRetriedWithTheNextImage) {
  MemoryLogStore store;
  PartitionManager pm(NodeId(1), &store, {});
  TopicMetadata t{"t", "id1", false, {Assign(0, 1, {1})}, {}};
  store.SetOpenError(Status::Corruption("injected: segment does not recover"));
  pm.ApplyImage(Image({t}));
  EXPECT_FALSE(pm.ready());
  EXPECT_EQ(pm.Get("t", 0), nullptr);
  store.SetOpenError(Status::OK());
  TopicMetadata other{"u", "id2", false, {}, {}};
  pm.ApplyImage(Image({t, other}));  // an unrelated change
  EXPECT_TRUE(pm.ready());
  ASSERT_NE(pm.Get("t", 0), nullptr);
  EXPECT_EQ(pm.Get("t", 0)->role(), PartitionRole::kLeader);
}

// Images reach the manager from the controller without blocking it; its thread applies the
// newest, and WhenApplied reports once an index is applied (or the manager stops).
TEST(PartitionManager, ItsThreadAppliesEnqueuedImagesAndReportsWhenApplied) {
  MemoryLogStore store;
  PartitionManager pm(NodeId(1), &store, {});
  pm.Start();
  std::atomic<int> applied{0};
  for (int i = 1; i <= 50; ++i) {
    TopicMetadata t{"t", "id1", false, {}, {}};
    for (int p = 0; p < i % 7 + 1; ++p) t.partitions.push_back(Assign(p, 1, {1}));
    auto img = Image({t});
    img->applied_index = i;
    pm.Enqueue(img);
    pm.WhenApplied(i, [&](bool ok) { applied += ok ? 1 : 0; });
  }
  std::promise<bool> last;
  pm.WhenApplied(50, [&](bool ok) { last.set_value(ok); });
  ASSERT_TRUE(last.get_future().get());
  EXPECT_EQ(pm.image()->applied_index, 50u);
  EXPECT_EQ(pm.All().size(), static_cast<size_t>(50 % 7 + 1));
  ASSERT_TRUE(test::PollUntil([&] { return applied.load() == 50; }));
  // Already applied: at once, on this thread.
  bool now = false;
  pm.WhenApplied(10, [&](bool ok) { now = ok; });
  EXPECT_TRUE(now);
  // Stopping fails those still waiting.
  std::promise<bool> never;
  pm.WhenApplied(1000, [&](bool ok) { never.set_value(ok); });
  pm.Stop();
  EXPECT_FALSE(never.get_future().get());
}

}  // namespace
}  // namespace rill::broker::testing
