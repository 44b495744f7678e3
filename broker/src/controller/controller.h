#pragma once

// The controller: the Raft-replicated metadata of the cluster (docs/ARCHITECTURE.md §7).
//
// Every broker runs a Controller. On controller voters it drives the Raft core
// (replication/raft) over the metadata log stored with storage/; every node replays committed
// metadata records into an in-memory MetadataImage and tells its listeners. A single node runs
// a quorum of one: the same code, no shortcut.
//
// Thread-safety: every public method may be called from any thread. Callbacks run on the
// controller's own thread and must not block.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "controller/topic_op_error.h"
#include "rill/proto/status.h"
#include "rill/proto/types.h"

namespace grpc {
class Service;
}  // namespace grpc

namespace rill::broker {

struct PartitionAssignment {
  int32_t partition = 0;
  NodeId leader{-1};
  LeaderEpoch leader_epoch{0};
  std::vector<NodeId> replicas;
  std::vector<NodeId> isr;
  // Bumped by every change of the partition (leader, ISR, replicas): an ISR change a leader asks
  // for names the epoch it saw, so a stale request is refused (Controller::AlterPartition).
  int32_t partition_epoch = 0;
};

struct TopicMetadata {
  std::string name;
  std::string topic_id;  // random id given at creation; a re-created topic gets a new one
  bool internal = false;
  std::vector<PartitionAssignment> partitions;  // index == partition number
  std::map<std::string, std::string> configs;   // overrides only; defaults are in topic_config.h
};

// Where a broker is reached: the advertised addresses of its listeners
// (listeners.advertised_client and listeners.advertised_internal), not necessarily what it binds.
struct BrokerRegistration {
  NodeId node_id{-1};
  std::string host;           // client API host
  int32_t port = 0;           // client API port
  int32_t internal_port = 0;  // controller + replication port
  std::string rack;
  bool fenced = false;
  // Random per process start (RegisterBrokerRecord.incarnation_id): a partition's leadership
  // is taken up only by the incarnation the metadata names (PartitionManager).
  std::string incarnation_id;
  std::string internal_host;  // host of internal_port; empty = `host` (see InternalHost())

  const std::string& InternalHost() const { return internal_host.empty() ? host : internal_host; }
};

// An immutable snapshot of the committed metadata. Shared, never modified after publication.
struct MetadataImage {
  uint64_t applied_index = 0;  // Raft index of the last record applied
  std::string cluster_id;
  NodeId controller_id{-1};  // current Raft leader, -1 when unknown
  std::map<std::string, TopicMetadata> topics;
  std::map<NodeId, BrokerRegistration> brokers;
  // The first idempotent producer id no block has covered yet (ProducerIdsRecord).
  int64_t next_producer_id = 0;

  const TopicMetadata* FindTopic(const std::string& name) const {
    auto it = topics.find(name);
    return it == topics.end() ? nullptr : &it->second;
  }
};

// What the metadata records applied between two published images touched: the names of the topics
// they created, changed or removed, or `all` when the image was rebuilt whole (a snapshot was
// loaded) and anything may differ. A superset is always safe; it only costs comparisons.
struct ImageChanges {
  bool all = false;
  std::set<std::string> topics;

  static ImageChanges All() { return ImageChanges{true, {}}; }
  void Merge(const ImageChanges& other) {
    all = all || other.all;
    if (all) {
      topics.clear();
    } else {
      topics.insert(other.topics.begin(), other.topics.end());
    }
  }
  bool Touches(const std::string& topic) const { return all || topics.count(topic) > 0; }
};

struct NewTopicSpec {
  std::string name;
  int32_t partitions = 0;          // 0 = default
  int32_t replication_factor = 0;  // 0 = default
  std::map<std::string, std::string> configs;
  bool internal = false;  // e.g. __consumer_offsets
};

struct TopicOpResult {
  std::string topic;
  TopicOpError error = TopicOpError::kNone;
  std::string message;
  // The active controller's applied index when the outcome was known: an image at or past it
  // shows the outcome (0 = unknown, e.g. the operation never reached the active controller).
  uint64_t applied_index = 0;
  // AllocateProducerIds only: the block [producer_ids_first, + producer_ids_count) committed.
  int64_t producer_ids_first = -1;
  int64_t producer_ids_count = 0;
};

// A partition leader's request for a new ISR (Kafka's AlterPartition).
struct AlterPartitionSpec {
  std::string topic;
  std::string topic_id;
  int32_t partition = 0;
  NodeId leader{-1};
  LeaderEpoch leader_epoch{0};
  int32_t partition_epoch = 0;
  std::vector<NodeId> new_isr;
};

// Which partitions a preferred-leader election names: topic -> partitions (empty = every
// partition of the topic); an empty map names every partition of every topic.
using ElectionTargets = std::map<std::string, std::vector<int32_t>>;

struct VoterAddress {
  NodeId node_id{-1};
  std::string host;  // internal listener
  int32_t port = 0;
};

struct ControllerConfig {
  NodeId node_id{1};
  std::vector<VoterAddress> voters;  // the static quorum; {self} for a single node
  std::string metadata_dir;          // <data_dir>/__cluster_metadata-0
  std::string cluster_id;            // used when the quorum bootstraps a new cluster
  int32_t default_partitions = 1;
  int32_t default_replication_factor = 1;
  int32_t max_partitions_per_topic = 10000;
  int32_t tick_ms = 50;
  int32_t election_ticks = 20;
  int32_t heartbeat_ticks = 2;
  uint64_t snapshot_every_records = 10000;
  // Brokers heartbeat to the active controller; one not heard from for this long is fenced and
  // its partitions get new leaders from their ISR (Kafka's broker.session.timeout.ms).
  int32_t broker_session_timeout_ms = 9000;
  // Preferred-leader balancing (Kafka's auto.leader.rebalance.enable): every this often the
  // active controller moves leadership back to each partition's first replica once that replica
  // is live and in the ISR (a bounded number of partitions per round).
  bool auto_leader_rebalance = true;
  int32_t leader_rebalance_interval_ms = 30000;
  BrokerRegistration self;  // registered on start
};

class Controller {
 public:
  using ResultsCallback = std::function<void(std::vector<TopicOpResult>)>;
  // Called with each published image and what changed since the image published before it.
  using ImageListener =
      std::function<void(std::shared_ptr<const MetadataImage>, const ImageChanges&)>;

  virtual ~Controller() = default;

  // Recovers the metadata log (snapshot + log) and starts the Raft driver thread.
  virtual Status Start() = 0;
  // Stops the driver; pending operations complete with kNotController or kControllerFailed.
  virtual void Stop() = 0;

  // Each operation validates (topic name rules, counts, config keys and values), proposes the
  // records, and calls `done` once they are committed and applied (or with a per-topic error).
  virtual void CreateTopics(std::vector<NewTopicSpec> topics, bool validate_only,
                            ResultsCallback done) = 0;
  virtual void DeleteTopics(std::vector<std::string> topics, ResultsCallback done) = 0;
  virtual void CreatePartitions(std::string topic, int32_t new_total_count,
                                ResultsCallback done) = 0;
  virtual void AlterConfigs(std::string topic, std::map<std::string, std::string> set,
                            std::vector<std::string> remove, bool validate_only,
                            ResultsCallback done) = 0;

  // A partition leader asks for a new ISR. Refused (kInvalidRequest, the message says why)
  // unless `spec.leader` leads the partition at `spec.leader_epoch`, `spec.partition_epoch` is
  // current, every new member is a replica and unfenced (or already in the ISR) and the leader
  // stays in it. One result, named after the topic; done once the change is committed.
  virtual void AlterPartition(AlterPartitionSpec spec, ResultsCallback done) = 0;

  // Controlled shutdown of this broker (it is about to stop): from now on it no longer registers
  // itself, and the active controller fences it and moves the leadership of every partition it
  // leads to another live ISR member (ControlledShutdownRecords, metadata_image.h). One result
  // (topic ""); done once the change is committed. Refused when this broker is not registered.
  virtual void ControlledShutdown(ResultsCallback done) = 0;
  // Preferred-leader election of the partitions `targets` names (PlanPreferredElection,
  // metadata_image.h). One result (topic ""); done once the moves are committed.
  virtual void ElectPreferredLeaders(ElectionTargets targets, ResultsCallback done) = 0;
  // The next block of idempotent producer ids for this broker (ProducerIdsRecord): one result
  // (topic "") carrying the block, done once it is committed, so no id is given twice even
  // across a controller failover.
  virtual void AllocateProducerIds(ResultsCallback done) = 0;

  // The latest applied image; never null after Start() succeeded.
  virtual std::shared_ptr<const MetadataImage> image() const = 0;
  // `listener` is called with every newly applied image (and once at registration, with
  // ImageChanges::All()).
  virtual void AddListener(ImageListener listener) = 0;
  // True when this node is the active controller (Raft leader).
  virtual bool IsActive() const = 0;

  // The rill.internal.v1 Raft service that peers call; the broker registers it on the internal
  // listener (port 9093) before Start(). Owned by the controller.
  virtual grpc::Service* internal_service() = 0;
};

// Creates the Raft-backed controller.
std::unique_ptr<Controller> MakeController(ControllerConfig config);

}  // namespace rill::broker
