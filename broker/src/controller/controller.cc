// ControllerImpl: the Controller (controller.h) wired from its parts, one concern each
// (docs/CONVENTIONS.md §11):
//   raft_driver.h       the Raft node, its storage and transport, and the `rill-controller` thread
//   quorum_controller.h operations: validation, proposals, forwarding to the active controller
//   broker_lifecycle.h  this broker's registration, heartbeats, fencing and leader election
//   raft_service.h      the rill.internal.v1.Raft gRPC service (Step, Forward)
// ControllerImpl itself holds the working MetadataImage: it applies committed batches to it
// (the driver's applier), and publishes it to image() and the listeners.

#include "controller.h"

#include <spdlog/spdlog.h>

#include <mutex>
#include <utility>

#include "broker_lifecycle.h"
#include "metadata_image.h"
#include "quorum_controller.h"
#include "raft_driver.h"
#include "raft_service.h"
#include "rill/internal/v1/metadata.pb.h"
#include "rill/internal/v1/raft.pb.h"

namespace rill::broker {
namespace {

namespace pb = internal::v1;

class ControllerImpl final : public Controller, private RaftDriver::Callbacks {
 public:
  explicit ControllerImpl(ControllerConfig config)
      : config_(std::move(config)),
        driver_(config_, this),
        operations_(config_, driver_, working_,
                    [this](NodeId id) { lifecycle_.RecordHeartbeat(id); }),
        lifecycle_(config_, driver_, working_, operations_),
        service_([this](const pb::RaftMessageBatch& batch) { driver_.Deliver(batch); },
                 [this](pb::ForwardRequest op, ResultsCallback done) {
                   operations_.Submit(std::move(op), std::move(done), /*forwarded=*/true);
                 }) {
    if (config_.self.node_id.value() <= 0) config_.self.node_id = config_.node_id;
    if (config_.voters.empty()) config_.voters.push_back({config_.node_id, "127.0.0.1", 0});
  }
  ~ControllerImpl() override { Stop(); }

  Status Start() override {
    RILL_RETURN_IF_ERROR(driver_.Open());
    // The learners the snapshot knows; the log replay adds the rest.
    driver_.SyncLearners(working_.brokers);
    RILL_ASSIGN_OR_RETURN(RaftDriver::Recovery recovered, driver_.Recover());
    spdlog::info(
        "controller {}: recovered {} (snapshot at {}, {} log entries), {} topics, {} voters; "
        "this node is a {}",
        config_.node_id.value(), config_.metadata_dir, recovered.snapshot_index,
        recovered.log_entries, working_.topics.size(), recovered.voters,
        recovered.voter ? "voter" : "learner (it follows the metadata log and never votes)");
    return driver_.StartThread();
  }

  void Stop() override { driver_.Stop(); }

  void CreateTopics(std::vector<NewTopicSpec> topics, bool validate_only,
                    ResultsCallback done) override {
    pb::ForwardRequest op;
    auto* req = op.mutable_create_topics();
    req->set_validate_only(validate_only);
    for (NewTopicSpec& spec : topics) {
      v1::NewTopic* t = req->add_topics();
      t->set_name(spec.name);
      t->set_partitions(spec.partitions);
      t->set_replication_factor(spec.replication_factor);
      for (auto& [k, v] : spec.configs) (*t->mutable_configs())[k] = v;
      if (spec.internal) op.add_internal_topics(spec.name);
    }
    operations_.Submit(std::move(op), std::move(done), /*forwarded=*/false);
  }

  void DeleteTopics(std::vector<std::string> topics, ResultsCallback done) override {
    pb::ForwardRequest op;
    for (std::string& t : topics) op.mutable_delete_topics()->add_topics(std::move(t));
    operations_.Submit(std::move(op), std::move(done), false);
  }

  void CreatePartitions(std::string topic, int32_t new_total_count, ResultsCallback done) override {
    pb::ForwardRequest op;
    op.mutable_create_partitions()->set_topic(std::move(topic));
    op.mutable_create_partitions()->set_new_total_count(new_total_count);
    operations_.Submit(std::move(op), std::move(done), false);
  }

  void AlterConfigs(std::string topic, std::map<std::string, std::string> set,
                    std::vector<std::string> remove, bool validate_only,
                    ResultsCallback done) override {
    pb::ForwardRequest op;
    auto* req = op.mutable_alter_configs();
    req->set_topic(std::move(topic));
    for (auto& [k, v] : set) (*req->mutable_set())[k] = v;
    for (std::string& k : remove) req->add_delete_(std::move(k));
    req->set_validate_only(validate_only);
    operations_.Submit(std::move(op), std::move(done), false);
  }

  void AlterPartition(AlterPartitionSpec spec, ResultsCallback done) override {
    pb::ForwardRequest op;
    auto* req = op.mutable_alter_partition();
    req->set_topic(std::move(spec.topic));
    req->set_topic_id(std::move(spec.topic_id));
    req->set_partition(spec.partition);
    req->set_leader_id(spec.leader.value());
    req->set_leader_epoch(spec.leader_epoch.value());
    req->set_partition_epoch(spec.partition_epoch);
    for (NodeId n : spec.new_isr) req->add_new_isr(n.value());
    operations_.Submit(std::move(op), std::move(done), false);
  }

  void ControlledShutdown(ResultsCallback done) override {
    driver_.Post([this, done = std::move(done)](const Status& st) mutable {
      if (!st.ok()) {
        done({{"", TopicOpErrorOf(st, TopicOpError::kControllerFailed), st.message()}});
        return;
      }
      lifecycle_.StopRegistering();
      pb::ForwardRequest op;
      op.mutable_controlled_shutdown()->set_node_id(config_.self.node_id.value());
      op.mutable_controlled_shutdown()->set_incarnation_id(config_.self.incarnation_id);
      operations_.Execute(op, std::move(done), /*forwarded=*/false);
    });
  }

  void ElectPreferredLeaders(ElectionTargets targets, ResultsCallback done) override {
    pb::ForwardRequest op;
    for (auto& [topic, partitions] : targets) {
      v1::TopicPartitions* t = op.mutable_elect_leaders()->add_targets();
      t->set_topic(topic);
      for (int32_t p : partitions) t->add_partitions(p);
    }
    op.mutable_elect_leaders();  // an empty target list names every partition
    operations_.Submit(std::move(op), std::move(done), false);
  }

  void AllocateProducerIds(ResultsCallback done) override {
    pb::ForwardRequest op;
    op.mutable_allocate_producer_ids()->set_node_id(config_.self.node_id.value());
    operations_.Submit(std::move(op), std::move(done), false);
  }

  std::shared_ptr<const MetadataImage> image() const override {
    std::lock_guard<std::mutex> lock(image_mu_);
    return image_;
  }

  void AddListener(ImageListener listener) override {
    driver_.Post([this, listener = std::move(listener)](const Status& st) mutable {
      if (!st.ok()) return;
      listeners_.push_back(std::move(listener));
      if (auto img = image()) listeners_.back()(img, ImageChanges::All());
    });
  }

  bool IsActive() const override { return driver_.IsActive(); }

  grpc::Service* internal_service() override { return &service_; }

 private:
  // ---- RaftDriver::Callbacks, on the driver thread ----
  Status RestoreSnapshot(const raft::Snapshot& snapshot, const std::string& origin) override {
    pb::MetadataSnapshot snap;
    if (!snap.ParseFromString(snapshot.data)) {
      return Status::Corruption("metadata snapshot " + origin + " does not parse");
    }
    RILL_ASSIGN_OR_RETURN(MetadataImage img, ImageFromSnapshot(snap));
    img.applied_index = snapshot.metadata.index.value();
    working_ = std::move(img);
    changes_ = ImageChanges::All();
    image_dirty_ = true;
    return Status::OK();
  }

  Status ApplyEntry(const raft::Entry& entry) override {
    Status outcome;
    if (entry.type == raft::EntryType::kNormal) {
      pb::MetadataBatch batch;
      if (!batch.ParseFromString(entry.data)) {
        // Every node skips the same bytes the same way, so images stay identical.
        outcome = Status::Corruption("raft entry " + std::to_string(entry.index.value()) +
                                     " is not a metadata batch");
        spdlog::error("controller {}: {}", config_.node_id.value(), outcome.ToString());
      } else {
        outcome = ApplyMetadataBatch(working_, batch, &changes_);
      }
    }
    working_.applied_index = entry.index.value();
    image_dirty_ = true;
    return outcome;
  }

  std::string SnapshotData() const override {
    return SnapshotOfImage(working_).SerializeAsString();
  }

  void OnTick() override { operations_.ExpireWaiting(); }

  void Housekeeping() override {
    operations_.MaybeBootstrapClusterId();
    operations_.RunWaiting();
    lifecycle_.Tick();
  }

  void FailWaiting(const Status& st) override { operations_.FailWaiting(st); }

  void Publish(NodeId raft_leader) override {
    NodeId leader = raft_leader == raft::kNoNode ? NodeId(-1) : raft_leader;
    if (image_dirty_) driver_.SyncLearners(working_.brokers);
    if (image_dirty_ || leader != published_controller_) {
      working_.controller_id = leader;
      published_controller_ = leader;
      image_dirty_ = false;
      auto img = std::make_shared<const MetadataImage>(working_);
      const ImageChanges changes = std::exchange(changes_, ImageChanges{});
      {
        std::lock_guard<std::mutex> lock(image_mu_);
        image_ = img;
      }
      for (ImageListener& l : listeners_) l(img, changes);
    }
  }

  ControllerConfig config_;

  // ---- driver thread only ----
  MetadataImage working_;    // the image as of the last applied entry
  bool image_dirty_ = true;  // working_ changed since it was last published
  // What the records applied since the last publication touched (all until the first one).
  ImageChanges changes_ = ImageChanges::All();
  NodeId published_controller_ = NodeId(-1);
  std::vector<ImageListener> listeners_;

  // ---- shared ----
  mutable std::mutex image_mu_;
  std::shared_ptr<const MetadataImage> image_;  // guarded by image_mu_

  // The parts; each one's header says what it owns and on which thread it runs.
  RaftDriver driver_;
  QuorumController operations_;
  BrokerLifecycle lifecycle_;
  RaftService service_;
};

}  // namespace

std::unique_ptr<Controller> MakeController(ControllerConfig config) {
  return std::make_unique<ControllerImpl>(std::move(config));
}

}  // namespace rill::broker
