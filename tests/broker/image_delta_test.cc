// DiffForNode: what a new metadata image means for one node's partitions, and nothing more.

#include "metadata/image_delta.h"

#include <gtest/gtest.h>

#include "controller/metadata_image.h"

namespace rill::broker::testing {
namespace {

using Kind = LocalPartitionChange::Kind;

PartitionAssignment Assign(int32_t p, int32_t leader, std::vector<int32_t> replicas,
                           int32_t epoch = 1, std::vector<int32_t> isr = {}) {
  PartitionAssignment a;
  a.partition = p;
  a.leader = NodeId(leader);
  a.leader_epoch = LeaderEpoch(epoch);
  for (auto r : replicas) a.replicas.push_back(NodeId(r));
  if (isr.empty()) {
    a.isr = a.replicas;
  } else {
    for (auto r : isr) a.isr.push_back(NodeId(r));
  }
  return a;
}

MetadataImage Image(std::vector<TopicMetadata> topics) {
  MetadataImage img;
  for (auto& t : topics) img.topics[t.name] = t;
  return img;
}

// "kind topic-partition" of each change, in order.
std::vector<std::string> Summary(const LocalDelta& d) {
  std::vector<std::string> out;
  for (const auto& c : d.partitions) {
    const char* k = c.kind == Kind::kAdded ? "add" : c.kind == Kind::kRemoved ? "remove" : "change";
    out.push_back(std::string(k) + " " + c.topic + "-" + std::to_string(c.assignment.partition));
  }
  return out;
}

using V = std::vector<std::string>;

TEST(ImageDelta, FirstImageAddsEveryHostedPartition) {
  auto next = Image(
      {{"t", "id1", false, {Assign(0, 1, {1}), Assign(1, 2, {2}), Assign(2, 2, {2, 1})}, {}}});
  auto d = DiffForNode(nullptr, next, NodeId(1));
  EXPECT_EQ(Summary(d), (V{"add t-0", "add t-2"}));
  EXPECT_TRUE(d.configs.empty());
  EXPECT_EQ(d.partitions[1].topic_id, "id1");
  EXPECT_EQ(d.partitions[1].assignment.leader, NodeId(2));
}

TEST(ImageDelta, AnUnchangedImageIsAnEmptyDelta) {
  auto img = Image({{"t", "id1", false, {Assign(0, 1, {1})}, {{"retention.ms", "5"}}}});
  EXPECT_TRUE(DiffForNode(&img, img, NodeId(1)).empty());
}

TEST(ImageDelta, LeaderEpochAndIsrChangesAreChanges) {
  auto prev = Image({{"t",
                      "id1",
                      false,
                      {Assign(0, 1, {1, 2}), Assign(1, 2, {1, 2}), Assign(2, 1, {1, 2})},
                      {}}});
  auto next = prev;
  next.topics["t"].partitions[0] = Assign(0, 2, {1, 2}, 2);       // leader moved
  next.topics["t"].partitions[1] = Assign(1, 2, {1, 2}, 1, {2});  // ISR shrank
  auto d = DiffForNode(&prev, next, NodeId(1));
  EXPECT_EQ(Summary(d), (V{"change t-0", "change t-1"}));
  EXPECT_EQ(d.partitions[0].assignment.leader_epoch, LeaderEpoch(2));
  EXPECT_EQ(d.partitions[1].assignment.isr, std::vector<NodeId>{NodeId(2)});
}

TEST(ImageDelta, DeletionRecreationAndReassignmentRemoveBeforeAdding) {
  auto prev = Image({{"a", "idA", false, {Assign(0, 1, {1})}, {}},
                     {"b", "idB", false, {Assign(0, 1, {1}), Assign(1, 1, {1, 2})}, {}},
                     {"c", "idC", false, {Assign(0, 1, {1})}, {}}});
  auto next = Image({{"b", "idB", false, {Assign(0, 1, {1}), Assign(1, 2, {2, 3})}, {}},
                     {"c", "idC2", false, {Assign(0, 1, {1})}, {}},  // re-created
                     {"d", "idD", false, {Assign(0, 1, {3, 1})}, {}}});
  auto d = DiffForNode(&prev, next, NodeId(1));
  // Removals first (in topic order), then additions.
  EXPECT_EQ(Summary(d), (V{"remove a-0", "remove b-1", "remove c-0", "add c-0", "add d-0"}));
  EXPECT_EQ(d.partitions[2].topic_id, "idC") << "the removal names the old topic id";
  EXPECT_EQ(d.partitions[3].topic_id, "idC2");
}

TEST(ImageDelta, ConfigChangesOnlyForTopicsThatKeepLocalPartitions) {
  auto prev = Image(
      {{"t", "id1", false, {Assign(0, 1, {1})}, {}}, {"u", "id2", false, {Assign(0, 2, {2})}, {}}});
  auto next = prev;
  next.topics["t"].configs["retention.ms"] = "5";
  next.topics["u"].configs["retention.ms"] = "5";  // not hosted here
  auto d = DiffForNode(&prev, next, NodeId(1));
  EXPECT_TRUE(d.partitions.empty());
  ASSERT_EQ(d.configs.size(), 1u);
  EXPECT_EQ(d.configs[0].topic, "t");
  EXPECT_EQ(d.configs[0].overrides.at("retention.ms"), "5");
  // A topic whose only local partitions are new opens them with the new config: no change.
  auto grow = next;
  grow.topics["u"].partitions.push_back(Assign(1, 1, {1}));
  grow.topics["u"].configs["retention.ms"] = "7";
  auto d2 = DiffForNode(&next, grow, NodeId(1));
  EXPECT_EQ(Summary(d2), (V{"add u-1"}));
  EXPECT_TRUE(d2.configs.empty());
}

std::vector<NodeId> Nodes(std::vector<int32_t> ids) {
  std::vector<NodeId> out;
  for (int32_t id : ids) out.push_back(NodeId(id));
  return out;
}

// The changes come from the records: replaying a run of records with ApplyMetadataRecord names
// exactly the topics they touch, and the delta over those topics is the full comparison's.
TEST(ImageDelta, ChangesFromRecordsGiveTheFullComparisonsDelta) {
  MetadataImage prev;
  for (const char* name : {"a", "b", "c", "d"}) {
    ASSERT_TRUE(
        ApplyMetadataRecord(prev, TopicRecordOf(name, std::string("id-") + name, false)).ok());
    ASSERT_TRUE(ApplyMetadataRecord(
                    prev, PartitionRecordOf(name, std::string("id-") + name, 0, Nodes({1, 2})))
                    .ok());
  }
  // Runs of records, each applied to the image the previous one left; a mix of every kind.
  std::vector<std::vector<internal::v1::MetadataRecord>> runs;
  runs.push_back({PartitionRecordOf("a", "id-a", 1, Nodes({2, 1}))});
  runs.push_back({ConfigRecordOf("b", "id-b", "retention.ms", "5", false)});
  runs.push_back({RemoveTopicRecordOf("c", "id-c"), TopicRecordOf("c", "id-c2", false),
                  PartitionRecordOf("c", "id-c2", 0, Nodes({1}))});
  {
    internal::v1::MetadataRecord move;
    auto* pc = move.mutable_partition_change();
    pc->set_topic("d");
    pc->set_topic_id("id-d");
    pc->set_partition(0);
    pc->set_leader(2);
    pc->mutable_replicas()->add_ids(2);
    pc->mutable_isr()->add_ids(2);
    runs.push_back({move, RegisterBrokerRecordOf(
                              BrokerRegistration{NodeId(3), "h", 1, 2, "", false, "", ""})});
  }
  runs.push_back({RemoveTopicRecordOf("b", "id-b")});

  std::vector<std::vector<std::string>> expected_touched = {{"a"}, {"b"}, {"c"}, {"d"}, {"b"}};
  for (size_t i = 0; i < runs.size(); ++i) {
    MetadataImage next = prev;
    ImageChanges changes;
    for (const auto& r : runs[i]) ASSERT_TRUE(ApplyMetadataRecord(next, r, &changes).ok()) << i;
    EXPECT_FALSE(changes.all);
    EXPECT_EQ(std::vector<std::string>(changes.topics.begin(), changes.topics.end()),
              expected_touched[i]);
    for (int32_t node : {1, 2, 3}) {
      const LocalDelta full = DiffForNode(&prev, next, NodeId(node));
      const LocalDelta from_records = DiffForNode(&prev, next, NodeId(node), changes);
      EXPECT_EQ(Summary(from_records), Summary(full)) << "run " << i << " node " << node;
      ASSERT_EQ(from_records.configs.size(), full.configs.size()) << i;
    }
    prev = std::move(next);
  }
}

// Only the named topics are compared: a difference elsewhere (which records would have named)
// is not looked at, so a publish costs what it changed, not what the cluster holds.
TEST(ImageDelta, OnlyTheTouchedTopicsAreCompared) {
  auto prev = Image(
      {{"t", "id1", false, {Assign(0, 1, {1})}, {}}, {"u", "id2", false, {Assign(0, 1, {1})}, {}}});
  auto next = prev;
  next.topics["t"].partitions[0] = Assign(0, 1, {1}, 2);
  next.topics["u"].partitions[0] = Assign(0, 1, {1}, 2);
  ImageChanges only_t;
  only_t.topics.insert("t");
  EXPECT_EQ(Summary(DiffForNode(&prev, next, NodeId(1), only_t)), (V{"change t-0"}));
  EXPECT_EQ(Summary(DiffForNode(&prev, next, NodeId(1))), (V{"change t-0", "change u-0"}));
  // Merging: all absorbs names; names accumulate.
  ImageChanges merged = only_t;
  ImageChanges u;
  u.topics.insert("u");
  merged.Merge(u);
  EXPECT_TRUE(merged.Touches("t") && merged.Touches("u") && !merged.Touches("v"));
  merged.Merge(ImageChanges::All());
  EXPECT_TRUE(merged.all && merged.Touches("v"));
}

}  // namespace
}  // namespace rill::broker::testing
