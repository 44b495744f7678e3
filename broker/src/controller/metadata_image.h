#pragma once

// Replaying metadata records into a MetadataImage (controller.h), and the image's snapshot form.
// These are pure functions: every node applies the same committed records in the same order and
// reaches the same image, which is what the tests check without any Raft.
//
// Thread-safety: pure functions over the arguments; callers own the image they mutate.

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "controller.h"
#include "rill/internal/v1/metadata.pb.h"
#include "rill/proto/status.h"

namespace rill::broker {

// Applies one record to `image`. A record that does not fit the image leaves it unchanged and
// returns: AlreadyExists (a TopicRecord for an existing name), NotFound (unknown topic, topic id,
// partition or broker), InvalidArgument (a partition number that is not the next one, empty
// replicas, a node id <= 0). When `changes` is given, the topic the record names is added to it,
// so that what a run of records touched is known from the records, without comparing images.
Status ApplyMetadataRecord(MetadataImage& image, const internal::v1::MetadataRecord& record,
                           ImageChanges* changes = nullptr);

// Applies the records of `batch` in order and stops at the first that does not fit, returning its
// status. The controller builds batches whose only record that can fail is the first, so an
// operation is applied whole or not at all.
Status ApplyMetadataBatch(MetadataImage& image, const internal::v1::MetadataBatch& batch,
                          ImageChanges* changes = nullptr);

// The records that rebuild `image` from an empty one (cluster id, brokers, topics with their
// partitions and configs), with image.applied_index.
internal::v1::MetadataSnapshot SnapshotOfImage(const MetadataImage& image);
// Rebuilds an image from a snapshot. Corruption when a record does not apply.
Result<MetadataImage> ImageFromSnapshot(const internal::v1::MetadataSnapshot& snapshot);

// Registered brokers that are not fenced, by ascending id.
std::vector<NodeId> UnfencedBrokers(const MetadataImage& image);

// The unfenced brokers in placement order: ascending id when no broker names a rack (node.rack);
// otherwise alternating between racks (racks by name, ascending id within each: a1 b1 c1 a2 b2
// ...), so that consecutive brokers of the order sit in different racks.
std::vector<NodeId> PlacementOrder(const MetadataImage& image);

// Replica lists for partitions first_partition .. first_partition + count - 1 over `brokers`
// (replication_factor <= brokers.size()). Partition first_partition + i is led by
// brokers[(start + first_partition + i) % size], so leaders go round-robin; each further replica
// is the next broker in order whose rack no earlier replica of the list has, or, when every rack
// is taken, simply the next broker not in the list. Without racks (`racks` null or all racks
// equal) replica j is brokers[(first + j) % size]. The first replica of each list is the
// preferred leader.
std::vector<std::vector<NodeId>> AssignReplicas(const std::vector<NodeId>& brokers,
                                                int32_t first_partition, int32_t count,
                                                int32_t replication_factor, size_t start,
                                                const std::map<NodeId, std::string>* racks =
                                                    nullptr);
// The rack of every registered broker ("" when it names none).
std::map<NodeId, std::string> BrokerRacks(const MetadataImage& image);

// The records that fence the brokers in `fence` (FenceBrokerRecords first) and repair partition
// leadership (PartitionChangeRecords): a partition whose leader is fenced, about to be, or -1
// gets as leader its first replica (in replica order) that is in the ISR and live, or -1 when
// there is none (clean election only: never a replica outside the ISR); brokers being fenced
// leave every ISR they are in, unless they are its last member (Kafka keeps the last ISR member
// so that a clean election stays possible). At most `max_changes` partition changes.
std::vector<internal::v1::MetadataRecord> FenceAndElect(const MetadataImage& image,
                                                        const std::set<NodeId>& fence,
                                                        size_t max_changes);

// The records of a controlled shutdown of `node`: it is fenced, and every partition it leads
// moves to its first other live ISR replica; it leaves every ISR it is not the last member of
// (FenceAndElect with no bound). A partition it alone is in the ISR of is left without a leader
// (-1) until it returns: no other replica is known to hold every acknowledged record. Nothing
// when `node` is unknown or fenced already.
std::vector<internal::v1::MetadataRecord> ControlledShutdownRecords(const MetadataImage& image,
                                                                    NodeId node);

// The partition changes that go with the registration of a new incarnation of `node` (it
// restarted): it leaves every ISR it is not the last member of, and a partition it led there
// moves to the first replica of the remaining ISR that is live (registered, unfenced), or to
// none (-1) when no such replica is left. Where it is the last ISR member it stays, and a
// partition it leads gets a new leader epoch, so it never appends at an epoch it used before
// with different data behind it. Why: a restarted broker may hold less than it reported durable
// before (its disk was lost or damaged), and only this incarnation's own fetches can show what
// it holds; the leader adds it back once they do (Kafka's KIP-966 treatment of an unclean
// shutdown; docs/ARCHITECTURE.md §7a). Nothing when `node` is not registered.
std::vector<internal::v1::MetadataRecord> RejoinRecords(const MetadataImage& image, NodeId node);

// The outcome of a preferred-leader election for one partition.
enum class ElectionOutcome : uint8_t {
  kElect,              // the first replica is live and in the ISR but does not lead: move it
  kNotNeeded,          // the first replica leads already
  kNotAvailable,       // the first replica is fenced, unregistered or not in the ISR
  kUnknownTopic,       // no such topic
  kUnknownPartition,   // no such partition
};
struct ElectionPlan {
  std::string topic;
  int32_t partition = 0;
  ElectionOutcome outcome = ElectionOutcome::kNotNeeded;
};
// Classifies every partition `targets` names (in topic, then partition order).
std::vector<ElectionPlan> PlanPreferredElection(const MetadataImage& image,
                                                const ElectionTargets& targets);
// The PartitionChangeRecords moving leadership to the first replica for the plans with outcome
// kElect, at most `max_changes` of them.
std::vector<internal::v1::MetadataRecord> PreferredLeaderRecords(
    const MetadataImage& image, const std::vector<ElectionPlan>& plans, size_t max_changes);

// Record builders.
internal::v1::MetadataRecord TopicRecordOf(const std::string& name, const std::string& topic_id,
                                           bool internal);
// A new partition led by replicas[0] with ISR = replicas and leader epoch 0.
internal::v1::MetadataRecord PartitionRecordOf(const std::string& topic,
                                               const std::string& topic_id, int32_t partition,
                                               const std::vector<NodeId>& replicas);
internal::v1::MetadataRecord ConfigRecordOf(const std::string& topic, const std::string& topic_id,
                                            const std::string& key, const std::string& value,
                                            bool remove);
internal::v1::MetadataRecord RemoveTopicRecordOf(const std::string& name,
                                                 const std::string& topic_id);
internal::v1::MetadataRecord RegisterBrokerRecordOf(const BrokerRegistration& broker);
internal::v1::MetadataRecord ClusterIdRecordOf(const std::string& cluster_id);

}  // namespace rill::broker
