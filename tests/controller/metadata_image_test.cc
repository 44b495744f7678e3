#include "metadata_image.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

namespace rill::broker {
namespace {

namespace pb = internal::v1;

BrokerRegistration Broker(int id) {
  BrokerRegistration b;
  b.node_id = NodeId(id);
  b.host = "127.0.0.1";
  b.port = 9000 + id;
  b.internal_port = 9100 + id;
  return b;
}

pb::MetadataBatch Batch(std::vector<pb::MetadataRecord> records) {
  pb::MetadataBatch b;
  for (auto& r : records) *b.add_records() = std::move(r);
  return b;
}

std::vector<NodeId> Nodes(std::initializer_list<int> ids) {
  std::vector<NodeId> out;
  for (int id : ids) out.emplace_back(id);
  return out;
}

// An image with brokers 1..3, topic "orders" (2 partitions) and one config override.
MetadataImage Sample() {
  MetadataImage image;
  EXPECT_TRUE(ApplyMetadataRecord(image, ClusterIdRecordOf("cluster-a")).ok());
  for (int id = 1; id <= 3; ++id) {
    EXPECT_TRUE(ApplyMetadataRecord(image, RegisterBrokerRecordOf(Broker(id))).ok());
  }
  EXPECT_TRUE(ApplyMetadataBatch(
                  image, Batch({TopicRecordOf("orders", "id1", false),
                                PartitionRecordOf("orders", "id1", 0, Nodes({1, 2})),
                                PartitionRecordOf("orders", "id1", 1, Nodes({2, 3})),
                                ConfigRecordOf("orders", "id1", "retention.ms", "1000", false)}))
                  .ok());
  return image;
}

TEST(MetadataImageTest, ReplayBuildsTheImage) {
  MetadataImage image = Sample();
  EXPECT_EQ(image.cluster_id, "cluster-a");
  ASSERT_EQ(image.brokers.size(), 3u);
  EXPECT_EQ(image.brokers.at(NodeId(2)).port, 9002);
  EXPECT_EQ(image.brokers.at(NodeId(2)).internal_port, 9102);
  const TopicMetadata* t = image.FindTopic("orders");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->topic_id, "id1");
  ASSERT_EQ(t->partitions.size(), 2u);
  EXPECT_EQ(t->partitions[1].partition, 1);
  EXPECT_EQ(t->partitions[1].leader, NodeId(2));
  EXPECT_EQ(t->partitions[1].leader_epoch, LeaderEpoch(0));
  EXPECT_EQ(t->partitions[1].replicas, Nodes({2, 3}));
  EXPECT_EQ(t->partitions[1].isr, Nodes({2, 3}));
  EXPECT_EQ(t->configs.at("retention.ms"), "1000");

  // The cluster id is written once.
  ASSERT_TRUE(ApplyMetadataRecord(image, ClusterIdRecordOf("other")).ok());
  EXPECT_EQ(image.cluster_id, "cluster-a");
}

// The internal listener's advertised host travels in the registration (and snapshots); a record
// written before it existed (no internal_host) reads as the client host.
TEST(MetadataImageTest, RegistrationCarriesTheInternalHost) {
  MetadataImage image;
  BrokerRegistration b = Broker(1);
  b.host = "clients.example";
  b.internal_host = "peers.example";
  ASSERT_TRUE(ApplyMetadataRecord(image, RegisterBrokerRecordOf(b)).ok());
  pb::MetadataRecord old = RegisterBrokerRecordOf(Broker(2));
  old.mutable_register_broker()->clear_internal_host();
  ASSERT_TRUE(ApplyMetadataRecord(image, old).ok());
  EXPECT_EQ(image.brokers.at(NodeId(1)).InternalHost(), "peers.example");
  EXPECT_EQ(image.brokers.at(NodeId(1)).host, "clients.example");
  EXPECT_EQ(image.brokers.at(NodeId(2)).InternalHost(), "127.0.0.1");

  pb::MetadataSnapshot decoded;
  ASSERT_TRUE(decoded.ParseFromString(SnapshotOfImage(image).SerializeAsString()));
  Result<MetadataImage> back = ImageFromSnapshot(decoded);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->brokers.at(NodeId(1)).InternalHost(), "peers.example");
  EXPECT_EQ(back->brokers.at(NodeId(1)).host, "clients.example");
  EXPECT_EQ(back->brokers.at(NodeId(2)).InternalHost(), "127.0.0.1");
}

TEST(MetadataImageTest, RecordsThatDoNotFitAreRefusedWithoutChange) {
  MetadataImage image = Sample();
  EXPECT_EQ(ApplyMetadataRecord(image, TopicRecordOf("orders", "id2", false)).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(image.FindTopic("orders")->topic_id, "id1");
  // Partition numbers must be the next one.
  EXPECT_EQ(ApplyMetadataRecord(image, PartitionRecordOf("orders", "id1", 3, Nodes({1}))).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyMetadataRecord(image, PartitionRecordOf("orders", "id1", 1, Nodes({1}))).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ApplyMetadataRecord(image, PartitionRecordOf("orders", "id1", 2, {})).code(),
            StatusCode::kInvalidArgument);
  // A record naming an old incarnation of the topic (stale id) does not touch the new one.
  EXPECT_EQ(ApplyMetadataRecord(image, ConfigRecordOf("orders", "old", "retention.ms", "5", false))
                .code(),
            StatusCode::kNotFound);
  EXPECT_EQ(ApplyMetadataRecord(image, RemoveTopicRecordOf("orders", "old")).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(
      ApplyMetadataRecord(image, ConfigRecordOf("nope", "", "retention.ms", "5", false)).code(),
      StatusCode::kNotFound);
  pb::MetadataRecord fence;
  fence.mutable_fence_broker()->set_node_id(9);
  EXPECT_EQ(ApplyMetadataRecord(image, fence).code(), StatusCode::kNotFound);
  EXPECT_EQ(ApplyMetadataRecord(image, pb::MetadataRecord()).code(), StatusCode::kInvalidArgument);

  MetadataImage unchanged = Sample();
  EXPECT_EQ(image.FindTopic("orders")->partitions.size(), 2u);
  EXPECT_EQ(image.FindTopic("orders")->configs, unchanged.FindTopic("orders")->configs);
}

TEST(MetadataImageTest, BatchStopsAtItsFirstFailingRecord) {
  MetadataImage image = Sample();
  // A second creation of "orders" fails at its TopicRecord; its partitions (with the new id) and
  // configs must not land on the existing topic.
  Status st =
      ApplyMetadataBatch(image, Batch({TopicRecordOf("orders", "id2", false),
                                       PartitionRecordOf("orders", "id2", 2, Nodes({1})),
                                       ConfigRecordOf("orders", "", "retention.ms", "1", false)}));
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(image.FindTopic("orders")->partitions.size(), 2u);
  EXPECT_EQ(image.FindTopic("orders")->configs.at("retention.ms"), "1000");
}

TEST(MetadataImageTest, PartitionChangeBumpsLeaderEpochOnlyOnLeaderChange) {
  MetadataImage image = Sample();
  pb::MetadataRecord change;
  auto* c = change.mutable_partition_change();
  c->set_topic("orders");
  c->set_topic_id("id1");
  c->set_partition(0);
  c->mutable_isr()->add_ids(1);  // ISR shrinks to {1}, leader unchanged
  ASSERT_TRUE(ApplyMetadataRecord(image, change).ok());
  const PartitionAssignment& p = image.FindTopic("orders")->partitions[0];
  EXPECT_EQ(p.isr, Nodes({1}));
  EXPECT_EQ(p.leader_epoch, LeaderEpoch(0));
  EXPECT_EQ(p.replicas, Nodes({1, 2}));

  c->clear_isr();
  c->set_leader(2);
  ASSERT_TRUE(ApplyMetadataRecord(image, change).ok());
  EXPECT_EQ(image.FindTopic("orders")->partitions[0].leader, NodeId(2));
  EXPECT_EQ(image.FindTopic("orders")->partitions[0].leader_epoch, LeaderEpoch(1));
  EXPECT_EQ(image.FindTopic("orders")->partitions[0].isr, Nodes({1}));
  // Same leader again: no bump.
  ASSERT_TRUE(ApplyMetadataRecord(image, change).ok());
  EXPECT_EQ(image.FindTopic("orders")->partitions[0].leader_epoch, LeaderEpoch(1));

  c->set_partition(7);
  EXPECT_EQ(ApplyMetadataRecord(image, change).code(), StatusCode::kNotFound);
}

TEST(MetadataImageTest, FencingAndRemoval) {
  MetadataImage image = Sample();
  pb::MetadataRecord fence;
  fence.mutable_fence_broker()->set_node_id(2);
  ASSERT_TRUE(ApplyMetadataRecord(image, fence).ok());
  EXPECT_TRUE(image.brokers.at(NodeId(2)).fenced);
  EXPECT_EQ(UnfencedBrokers(image), Nodes({1, 3}));
  // Registering again unfences.
  ASSERT_TRUE(ApplyMetadataRecord(image, RegisterBrokerRecordOf(Broker(2))).ok());
  EXPECT_EQ(UnfencedBrokers(image), Nodes({1, 2, 3}));

  ASSERT_TRUE(ApplyMetadataRecord(image, RemoveTopicRecordOf("orders", "id1")).ok());
  EXPECT_EQ(image.FindTopic("orders"), nullptr);
  // Re-created with a new id, it starts empty.
  ASSERT_TRUE(ApplyMetadataRecord(image, TopicRecordOf("orders", "id9", false)).ok());
  EXPECT_TRUE(image.FindTopic("orders")->partitions.empty());
  EXPECT_TRUE(image.FindTopic("orders")->configs.empty());
}

TEST(MetadataImageTest, SnapshotRoundTripsTheImage) {
  MetadataImage image = Sample();
  pb::MetadataRecord fence;
  fence.mutable_fence_broker()->set_node_id(3);
  ASSERT_TRUE(ApplyMetadataRecord(image, fence).ok());
  ASSERT_TRUE(ApplyMetadataRecord(image, TopicRecordOf("__internal", "x", true)).ok());
  image.applied_index = 42;

  pb::MetadataSnapshot snap = SnapshotOfImage(image);
  pb::MetadataSnapshot decoded;
  ASSERT_TRUE(decoded.ParseFromString(snap.SerializeAsString()));
  Result<MetadataImage> back = ImageFromSnapshot(decoded);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->applied_index, 42u);
  EXPECT_EQ(back->cluster_id, "cluster-a");
  ASSERT_EQ(back->brokers.size(), 3u);
  EXPECT_TRUE(back->brokers.at(NodeId(3)).fenced);
  EXPECT_FALSE(back->brokers.at(NodeId(1)).fenced);
  EXPECT_EQ(back->brokers.at(NodeId(1)).internal_port, 9101);
  ASSERT_EQ(back->topics.size(), 2u);
  EXPECT_TRUE(back->FindTopic("__internal")->internal);
  const TopicMetadata* t = back->FindTopic("orders");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->configs, image.FindTopic("orders")->configs);
  ASSERT_EQ(t->partitions.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const PartitionAssignment& a = t->partitions[i];
    const PartitionAssignment& b = image.FindTopic("orders")->partitions[i];
    EXPECT_EQ(a.leader, b.leader);
    EXPECT_EQ(a.leader_epoch, b.leader_epoch);
    EXPECT_EQ(a.replicas, b.replicas);
    EXPECT_EQ(a.isr, b.isr);
  }

  // A snapshot whose records contradict each other is reported as corruption.
  *decoded.add_records() = TopicRecordOf("orders", "dup", false);
  EXPECT_EQ(ImageFromSnapshot(decoded).status().code(), StatusCode::kCorruption);
}

TEST(MetadataImageTest, FenceAndElectMovesLeadershipWithinTheIsr) {
  MetadataImage image = Sample();  // orders: p0 replicas {1,2}, p1 replicas {2,3}
  ASSERT_TRUE(ApplyMetadataRecord(image, TopicRecordOf("solo", "id2", false)).ok());
  ASSERT_TRUE(ApplyMetadataRecord(image, PartitionRecordOf("solo", "id2", 0, Nodes({2}))).ok());

  // Nothing to fence, every leader live: no records.
  EXPECT_TRUE(FenceAndElect(image, {}, 100).empty());

  auto records = FenceAndElect(image, {NodeId(2)}, 100);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0].fence_broker().node_id(), 2);
  for (const auto& r : records) ASSERT_TRUE(ApplyMetadataRecord(image, r).ok());
  EXPECT_TRUE(image.brokers.at(NodeId(2)).fenced);
  const TopicMetadata* orders = image.FindTopic("orders");
  // p0: follower 2 leaves the ISR; leader 1 and its epoch stay.
  EXPECT_EQ(orders->partitions[0].leader, NodeId(1));
  EXPECT_EQ(orders->partitions[0].isr, Nodes({1}));
  EXPECT_EQ(orders->partitions[0].leader_epoch, LeaderEpoch(0));
  // p1: leader 2 is replaced by 3 from the ISR, with a new epoch.
  EXPECT_EQ(orders->partitions[1].leader, NodeId(3));
  EXPECT_EQ(orders->partitions[1].isr, Nodes({3}));
  EXPECT_EQ(orders->partitions[1].leader_epoch, LeaderEpoch(1));
  // solo: no live ISR member: offline (-1), and 2 stays as the last ISR member.
  EXPECT_EQ(image.FindTopic("solo")->partitions[0].leader, NodeId(-1));
  EXPECT_EQ(image.FindTopic("solo")->partitions[0].isr, Nodes({2}));

  // Stable: running again changes nothing.
  EXPECT_TRUE(FenceAndElect(image, {}, 100).empty());

  // Broker 2 registers again (unfenced): the offline partition gets it back as leader.
  ASSERT_TRUE(ApplyMetadataRecord(image, RegisterBrokerRecordOf(Broker(2))).ok());
  records = FenceAndElect(image, {}, 100);
  ASSERT_EQ(records.size(), 1u);
  ASSERT_TRUE(ApplyMetadataRecord(image, records[0]).ok());
  EXPECT_EQ(image.FindTopic("solo")->partitions[0].leader, NodeId(2));
  // Two leader changes (2 -> none -> 2), two epochs.
  EXPECT_EQ(image.FindTopic("solo")->partitions[0].leader_epoch, LeaderEpoch(2));

  // The number of partition changes per call is bounded.
  EXPECT_EQ(FenceAndElect(image, {NodeId(1), NodeId(3)}, 1).size(), 3u);  // 2 fences + 1
}

TEST(MetadataImageTest, RejoinRecordsTakeARestartedBrokerOutOfTheIsr) {
  MetadataImage image = Sample();  // orders: p0 replicas {1,2} led by 1, p1 {2,3} led by 2
  ASSERT_TRUE(ApplyMetadataRecord(image, TopicRecordOf("solo", "id2", false)).ok());
  ASSERT_TRUE(ApplyMetadataRecord(image, PartitionRecordOf("solo", "id2", 0, Nodes({2}))).ok());
  ASSERT_TRUE(ApplyMetadataRecord(image, TopicRecordOf("wide", "id3", false)).ok());
  ASSERT_TRUE(
      ApplyMetadataRecord(image, PartitionRecordOf("wide", "id3", 0, Nodes({2, 4, 3}))).ok());
  ASSERT_TRUE(ApplyMetadataRecord(image, TopicRecordOf("other", "id4", false)).ok());
  ASSERT_TRUE(ApplyMetadataRecord(image, PartitionRecordOf("other", "id4", 0, Nodes({1, 3}))).ok());
  // wide-0's replica 4 is fenced (still in the ISR): only 3 can take over from 2.
  ASSERT_TRUE(ApplyMetadataRecord(image, RegisterBrokerRecordOf(Broker(4))).ok());
  pb::MetadataRecord fence;
  fence.mutable_fence_broker()->set_node_id(4);
  ASSERT_TRUE(ApplyMetadataRecord(image, fence).ok());

  EXPECT_TRUE(RejoinRecords(image, NodeId(9)).empty()) << "not registered";
  auto records = RejoinRecords(image, NodeId(2));
  // orders-0 (follower), orders-1 (leader), solo-0 (last member), wide-0 (leader); not other-0.
  ASSERT_EQ(records.size(), 4u);
  for (const auto& r : records) ASSERT_TRUE(ApplyMetadataRecord(image, r).ok());
  const TopicMetadata* orders = image.FindTopic("orders");
  // orders-0: follower 2 leaves the ISR; leader 1 and its epoch stay.
  EXPECT_EQ(orders->partitions[0].leader, NodeId(1));
  EXPECT_EQ(orders->partitions[0].isr, Nodes({1}));
  EXPECT_EQ(orders->partitions[0].leader_epoch, LeaderEpoch(0));
  // orders-1: leader 2 leaves; 3 leads at a new epoch.
  EXPECT_EQ(orders->partitions[1].leader, NodeId(3));
  EXPECT_EQ(orders->partitions[1].isr, Nodes({3}));
  EXPECT_EQ(orders->partitions[1].leader_epoch, LeaderEpoch(1));
  // solo-0: 2 is the last member: it stays and leads at a new epoch.
  EXPECT_EQ(image.FindTopic("solo")->partitions[0].leader, NodeId(2));
  EXPECT_EQ(image.FindTopic("solo")->partitions[0].isr, Nodes({2}));
  EXPECT_EQ(image.FindTopic("solo")->partitions[0].leader_epoch, LeaderEpoch(1));
  // wide-0: the fenced 4 is skipped; 3 leads.
  EXPECT_EQ(image.FindTopic("wide")->partitions[0].leader, NodeId(3));
  EXPECT_EQ(image.FindTopic("wide")->partitions[0].isr, Nodes({4, 3}));
  // other-0 never had 2.
  EXPECT_EQ(image.FindTopic("other")->partitions[0].leader, NodeId(1));
  EXPECT_EQ(image.FindTopic("other")->partitions[0].isr, Nodes({1, 3}));

  // The only other ISR member is fenced (still in the ISR, as the last fencing left it): the
  // partition waits without a leader rather than be led by a replica whose log may be empty.
  MetadataImage lone = Sample();  // orders-0: replicas and ISR {1,2}, led by 1
  pb::MetadataRecord fence2;
  fence2.mutable_fence_broker()->set_node_id(2);
  ASSERT_TRUE(ApplyMetadataRecord(lone, fence2).ok());
  records = RejoinRecords(lone, NodeId(1));
  for (const auto& r : records) ASSERT_TRUE(ApplyMetadataRecord(lone, r).ok());
  EXPECT_EQ(lone.FindTopic("orders")->partitions[0].leader, NodeId(-1));
  EXPECT_EQ(lone.FindTopic("orders")->partitions[0].isr, Nodes({2}));
}

TEST(MetadataImageTest, AssignmentIsRoundRobinWithFirstReplicaLeading) {
  std::vector<NodeId> brokers = Nodes({1, 2, 3});
  auto a = AssignReplicas(brokers, 0, 4, 2, 0);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_EQ(a[0], Nodes({1, 2}));
  EXPECT_EQ(a[1], Nodes({2, 3}));
  EXPECT_EQ(a[2], Nodes({3, 1}));
  EXPECT_EQ(a[3], Nodes({1, 2}));
  // Added partitions continue the rotation.
  auto more = AssignReplicas(brokers, 4, 1, 3, 0);
  EXPECT_EQ(more[0], Nodes({2, 3, 1}));
  // Leaders spread evenly over the brokers.
  auto spread = AssignReplicas(brokers, 0, 9, 1, 5);
  std::map<int, int> leaders;
  for (const auto& r : spread) leaders[r[0].value()]++;
  EXPECT_EQ(leaders, (std::map<int, int>{{1, 3}, {2, 3}, {3, 3}}));

  pb::MetadataRecord rec = PartitionRecordOf("t", "id", 0, Nodes({3, 1}));
  EXPECT_EQ(rec.partition().leader(), 3);
  EXPECT_EQ(rec.partition().leader_epoch(), 0);
  EXPECT_EQ(rec.partition().isr_size(), 2);
}

TEST(MetadataImageTest, RackAwarePlacementPutsReplicasInDifferentRacks) {
  MetadataImage image;
  // Racks a: 1, 2; b: 3, 4; c: 5, 6.
  const char* racks[] = {"", "a", "a", "b", "b", "c", "c"};
  for (int id = 1; id <= 6; ++id) {
    BrokerRegistration b = Broker(id);
    b.rack = racks[id];
    ASSERT_TRUE(ApplyMetadataRecord(image, RegisterBrokerRecordOf(b)).ok());
  }
  std::vector<NodeId> order = PlacementOrder(image);
  EXPECT_EQ(order, Nodes({1, 3, 5, 2, 4, 6}));  // alternating between racks
  auto rack_map = BrokerRacks(image);
  auto a = AssignReplicas(order, 0, 12, 3, 0, &rack_map);
  std::map<int, int> leaders;
  for (const auto& replicas : a) {
    std::set<std::string> seen;
    for (NodeId n : replicas) seen.insert(rack_map.at(n));
    EXPECT_EQ(seen.size(), 3u) << "replicas of one partition share a rack";
    leaders[replicas[0].value()]++;
  }
  EXPECT_EQ(leaders, (std::map<int, int>{{1, 2}, {2, 2}, {3, 2}, {4, 2}, {5, 2}, {6, 2}}));

  // Uneven racks (a: 1, 2, 3; b: 4): every partition of RF 2 still spans both racks.
  MetadataImage uneven;
  const char* racks2[] = {"", "a", "a", "a", "b"};
  for (int id = 1; id <= 4; ++id) {
    BrokerRegistration b = Broker(id);
    b.rack = racks2[id];
    ASSERT_TRUE(ApplyMetadataRecord(uneven, RegisterBrokerRecordOf(b)).ok());
  }
  auto racks_uneven = BrokerRacks(uneven);
  for (const auto& replicas : AssignReplicas(PlacementOrder(uneven), 0, 8, 2, 3, &racks_uneven)) {
    EXPECT_NE(racks_uneven.at(replicas[0]), racks_uneven.at(replicas[1]));
    EXPECT_NE(replicas[0], replicas[1]);
  }
  // RF 3 over two racks: both racks used, no broker twice.
  for (const auto& replicas : AssignReplicas(PlacementOrder(uneven), 0, 8, 3, 0, &racks_uneven)) {
    std::set<NodeId> distinct(replicas.begin(), replicas.end());
    EXPECT_EQ(distinct.size(), 3u);
    std::set<std::string> seen;
    for (NodeId n : replicas) seen.insert(racks_uneven.at(n));
    EXPECT_EQ(seen.size(), 2u);
  }
  // Without racks, the order is by id and placement is the plain rotation.
  MetadataImage plain = Sample();
  EXPECT_EQ(PlacementOrder(plain), Nodes({1, 2, 3}));
  auto plain_racks = BrokerRacks(plain);
  EXPECT_EQ(AssignReplicas(Nodes({1, 2, 3}), 0, 3, 2, 0, &plain_racks),
            AssignReplicas(Nodes({1, 2, 3}), 0, 3, 2, 0));
}

TEST(MetadataImageTest, ControlledShutdownFencesAndMovesLeadership) {
  MetadataImage image = Sample();  // orders: p0 replicas {1,2}, p1 replicas {2,3}
  ASSERT_TRUE(ApplyMetadataRecord(image, TopicRecordOf("solo", "id2", false)).ok());
  ASSERT_TRUE(ApplyMetadataRecord(image, PartitionRecordOf("solo", "id2", 0, Nodes({2}))).ok());
  for (const auto& r : ControlledShutdownRecords(image, NodeId(2))) {
    ASSERT_TRUE(ApplyMetadataRecord(image, r).ok());
  }
  EXPECT_TRUE(image.brokers.at(NodeId(2)).fenced);
  const TopicMetadata* orders = image.FindTopic("orders");
  EXPECT_EQ(orders->partitions[1].leader, NodeId(3));  // moved within the ISR
  EXPECT_EQ(orders->partitions[1].isr, Nodes({3}));
  EXPECT_EQ(orders->partitions[0].isr, Nodes({1}));  // left the ISR it followed in
  // Its only ISR member is going away: no other replica may hold every acknowledged record.
  EXPECT_EQ(image.FindTopic("solo")->partitions[0].leader, NodeId(-1));
  // Done already: a second request changes nothing.
  EXPECT_TRUE(ControlledShutdownRecords(image, NodeId(2)).empty());
}

TEST(MetadataImageTest, PreferredLeaderElection) {
  MetadataImage image = Sample();  // orders: p0 replicas {1,2}, p1 replicas {2,3}
  // Everything led by its first replica: nothing to do.
  auto plans = PlanPreferredElection(image, {});
  ASSERT_EQ(plans.size(), 2u);
  for (const auto& p : plans) EXPECT_EQ(p.outcome, ElectionOutcome::kNotNeeded);
  EXPECT_TRUE(PreferredLeaderRecords(image, plans, 100).empty());

  // Broker 2 is fenced: p1 moves to 3. Its preferred replica is not available until it returns.
  for (const auto& r : FenceAndElect(image, {NodeId(2)}, 100)) {
    ASSERT_TRUE(ApplyMetadataRecord(image, r).ok());
  }
  ASSERT_EQ(image.FindTopic("orders")->partitions[1].leader, NodeId(3));
  plans = PlanPreferredElection(image, {{"orders", {1}}});
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].outcome, ElectionOutcome::kNotAvailable);

  // It registers again (unfenced) but is not back in the ISR yet: still not available.
  ASSERT_TRUE(ApplyMetadataRecord(image, RegisterBrokerRecordOf(Broker(2))).ok());
  EXPECT_EQ(PlanPreferredElection(image, {{"orders", {1}}})[0].outcome,
            ElectionOutcome::kNotAvailable);

  // Back in the ISR: elected, with a new leader epoch.
  pb::MetadataRecord isr;
  isr.mutable_partition_change()->set_topic("orders");
  isr.mutable_partition_change()->set_topic_id("id1");
  isr.mutable_partition_change()->set_partition(1);
  for (int id : {3, 2}) isr.mutable_partition_change()->mutable_isr()->add_ids(id);
  ASSERT_TRUE(ApplyMetadataRecord(image, isr).ok());
  LeaderEpoch before = image.FindTopic("orders")->partitions[1].leader_epoch;
  plans = PlanPreferredElection(image, {});
  ASSERT_EQ(plans.size(), 2u);
  EXPECT_EQ(plans[0].outcome, ElectionOutcome::kNotNeeded);
  EXPECT_EQ(plans[1].outcome, ElectionOutcome::kElect);
  EXPECT_TRUE(PreferredLeaderRecords(image, plans, 0).empty());  // bounded
  auto records = PreferredLeaderRecords(image, plans, 100);
  ASSERT_EQ(records.size(), 1u);
  ASSERT_TRUE(ApplyMetadataRecord(image, records[0]).ok());
  EXPECT_EQ(image.FindTopic("orders")->partitions[1].leader, NodeId(2));
  EXPECT_GT(image.FindTopic("orders")->partitions[1].leader_epoch, before);

  // Unknown names are classified, not dropped.
  plans = PlanPreferredElection(image, {{"nope", {}}, {"orders", {7}}});
  ASSERT_EQ(plans.size(), 2u);
  EXPECT_EQ(plans[0].outcome, ElectionOutcome::kUnknownTopic);
  EXPECT_EQ(plans[1].outcome, ElectionOutcome::kUnknownPartition);
}

// Producer id blocks only move forward: an overlap is refused (no id given twice), a gap is
// accepted, and the snapshot keeps the next free id.
TEST(MetadataImageTest, ProducerIdBlocksNeverOverlapAndSurviveSnapshots) {
  auto block = [](int node, int64_t first, int64_t count) {
    pb::MetadataRecord r;
    r.mutable_producer_ids()->set_node_id(node);
    r.mutable_producer_ids()->set_first_id(first);
    r.mutable_producer_ids()->set_count(count);
    return r;
  };
  MetadataImage image = Sample();
  EXPECT_EQ(image.next_producer_id, 0);
  ASSERT_TRUE(ApplyMetadataRecord(image, block(1, 0, 1000)).ok());
  EXPECT_EQ(image.next_producer_id, 1000);
  Status overlap = ApplyMetadataRecord(image, block(2, 999, 1000));
  EXPECT_EQ(overlap.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(overlap.message().find("1000"), std::string::npos) << overlap.ToString();
  EXPECT_EQ(image.next_producer_id, 1000);
  EXPECT_FALSE(ApplyMetadataRecord(image, block(2, 1000, 0)).ok());
  EXPECT_FALSE(ApplyMetadataRecord(image, block(2, INT64_MAX - 5, 10)).ok());
  ASSERT_TRUE(ApplyMetadataRecord(image, block(2, 3000, 1000)).ok());  // a gap is harmless
  EXPECT_EQ(image.next_producer_id, 4000);

  pb::MetadataSnapshot decoded;
  ASSERT_TRUE(decoded.ParseFromString(SnapshotOfImage(image).SerializeAsString()));
  Result<MetadataImage> back = ImageFromSnapshot(decoded);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->next_producer_id, 4000);
  EXPECT_FALSE(ApplyMetadataRecord(*back, block(1, 3999, 1)).ok());
  EXPECT_TRUE(ApplyMetadataRecord(*back, block(1, 4000, 1000)).ok());
}

}  // namespace
}  // namespace rill::broker
