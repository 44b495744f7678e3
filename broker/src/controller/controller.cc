#include "controller.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "api/wire_errors.h"
#include "metadata_image.h"
#include "raft_codec.h"
#include "raft_transport.h"
#include "rill/internal/v1/raft.grpc.pb.h"
#include "rill/proto/thread_name.h"
#include "rill/replication/disk_raft_storage.h"
#include "rill/replication/raft.h"
#include "rill/replication/raft_storage.h"
#include "rill/storage/file_system.h"
#include "topic_config.h"
#include "topic_rules.h"

namespace rill::broker {
namespace {

namespace pb = internal::v1;
using Clock = std::chrono::steady_clock;
using Results = std::vector<TopicOpResult>;
using ResultsCallback = Controller::ResultsCallback;

// Bounds (docs/STYLE.md §9: a limit on everything).
constexpr size_t kMaxInboxMessages = 8192;     // Raft messages received, not yet stepped
constexpr size_t kMaxQueuedTasks = 4096;       // operations waiting for the driver thread
constexpr size_t kMaxWaitingForLeader = 4096;  // operations waiting for a leader to be known
constexpr int kForwardTimeoutMs = 10000;

std::string RandomId() {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::random_device rd;
  std::mt19937_64 gen((uint64_t(rd()) << 32) ^ rd());
  std::string id(22, ' ');
  for (char& c : id) c = kAlphabet[gen() % 64];
  return id;
}

// The topics an operation names, one result each.
std::vector<std::string> TopicsOf(const pb::ForwardRequest& op) {
  switch (op.op_case()) {
    case pb::ForwardRequest::kCreateTopics: {
      std::vector<std::string> out;
      for (const auto& t : op.create_topics().topics()) out.push_back(t.name());
      return out;
    }
    case pb::ForwardRequest::kDeleteTopics:
      return {op.delete_topics().topics().begin(), op.delete_topics().topics().end()};
    case pb::ForwardRequest::kCreatePartitions:
      return {op.create_partitions().topic()};
    case pb::ForwardRequest::kAlterConfigs:
      return {op.alter_configs().topic()};
    case pb::ForwardRequest::kRegisterBroker:
    case pb::ForwardRequest::kBrokerHeartbeat:
      return {""};
    case pb::ForwardRequest::OP_NOT_SET:
      break;
  }
  return {};
}

// Operations cut short by Stop() (mapped to BROKER_NOT_AVAILABLE).
Status Stopped() { return Status::Failed("the controller is shutting down"); }

Results FailAll(const pb::ForwardRequest& op, v1::ErrorCode code, const std::string& message) {
  Results out;
  for (std::string& t : TopicsOf(op)) out.push_back({std::move(t), code, message});
  return out;
}

// Collects the per-topic results of one operation and calls `done` once all are in.
class ResultCollector {
 public:
  ResultCollector(size_t n, ResultsCallback done)
      : results_(n), remaining_(n), done_(std::move(done)) {
    if (n == 0) Finish();
  }
  void Set(size_t i, TopicOpResult r) {
    results_[i] = std::move(r);
    if (--remaining_ == 0) Finish();
  }

 private:
  void Finish() {
    if (done_) done_(std::move(results_));
    done_ = nullptr;
  }
  Results results_;
  size_t remaining_;
  ResultsCallback done_;
};

class ControllerImpl;

// rill.internal.v1.Raft: Step hands messages to the driver thread; Forward runs an operation
// on this node (which must be the active controller).
class RaftService final : public pb::Raft::CallbackService {
 public:
  explicit RaftService(ControllerImpl* controller) : controller_(controller) {}
  grpc::ServerUnaryReactor* Step(grpc::CallbackServerContext* context,
                                 const pb::RaftMessageBatch* request,
                                 pb::RaftAck* response) override;
  grpc::ServerUnaryReactor* Forward(grpc::CallbackServerContext* context,
                                    const pb::ForwardRequest* request,
                                    pb::ForwardResponse* response) override;

 private:
  ControllerImpl* controller_;
};

class ControllerImpl final : public Controller {
 public:
  explicit ControllerImpl(ControllerConfig config) : config_(std::move(config)), service_(this) {
    if (config_.self.node_id.value() <= 0) config_.self.node_id = config_.node_id;
    if (config_.voters.empty()) config_.voters.push_back({config_.node_id, "127.0.0.1", 0});
  }
  ~ControllerImpl() override { Stop(); }

  Status Start() override;
  void Stop() override;

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
    Submit(std::move(op), std::move(done), /*forwarded=*/false);
  }

  void DeleteTopics(std::vector<std::string> topics, ResultsCallback done) override {
    pb::ForwardRequest op;
    for (std::string& t : topics) op.mutable_delete_topics()->add_topics(std::move(t));
    Submit(std::move(op), std::move(done), false);
  }

  void CreatePartitions(std::string topic, int32_t new_total_count, ResultsCallback done) override {
    pb::ForwardRequest op;
    op.mutable_create_partitions()->set_topic(std::move(topic));
    op.mutable_create_partitions()->set_new_total_count(new_total_count);
    Submit(std::move(op), std::move(done), false);
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
    Submit(std::move(op), std::move(done), false);
  }

  std::shared_ptr<const MetadataImage> image() const override {
    std::lock_guard<std::mutex> lock(image_mu_);
    return image_;
  }

  void AddListener(ImageListener listener) override {
    Post([this, listener = std::move(listener)](const Status& st) mutable {
      if (!st.ok()) return;
      listeners_.push_back(std::move(listener));
      if (auto img = image()) listeners_.back()(img);
    });
  }

  bool IsActive() const override { return active_.load(std::memory_order_acquire); }

  grpc::Service* internal_service() override { return &service_; }

  // Called by RaftService on gRPC threads.
  void Deliver(const pb::RaftMessageBatch& batch);
  // Runs `op` here; `forwarded` ops are never forwarded again.
  void Submit(pb::ForwardRequest op, ResultsCallback done, bool forwarded);

 private:
  // A unit of work for the driver thread. It runs with OK, or with the error it must complete
  // its callbacks with (Unavailable: the controller stopped; Timeout).
  using Task = std::function<void(const Status&)>;
  bool Post(Task task);

  void Run();
  Status ProcessReady();  // handles every Ready the node has; driver thread
  void ApplyCommitted(const raft::Entry& entry);
  void Publish();
  Status MaybeSnapshot();
  void ExpireDeadlines();
  // Bootstrap of the cluster id and registration of this broker; driver thread.
  void Housekeeping();
  void FailPending(const Status& st);
  void FailOverwrittenProposals();

  // Operations, on the driver thread.
  void Execute(const pb::ForwardRequest& op, ResultsCallback done, bool forwarded);
  void ExecuteCreateTopics(const pb::ForwardRequest& op, ResultsCallback done);
  void ExecuteDeleteTopics(const v1::DeleteTopicsRequest& req, ResultsCallback done);
  void ExecuteCreatePartitions(const v1::CreatePartitionsRequest& req, ResultsCallback done);
  void ExecuteAlterConfigs(const v1::AlterConfigsRequest& req, ResultsCallback done);
  void ExecuteRegisterBroker(const pb::ForwardRegisterBroker& req, ResultsCallback done);
  // Leader: fences brokers whose session expired and elects leaders for partitions without a
  // live one.
  void MaybeFenceAndElect();
  uint64_t SessionTicks() const {
    return std::max<int64_t>(1, config_.broker_session_timeout_ms / config_.tick_ms);
  }
  // Proposes `batch`; `done` runs with the status of its application (or why it was not).
  void Propose(const pb::MetadataBatch& batch, std::function<void(const Status&)> done);
  bool SelfRegistered() const;
  // True when this node is a controller voter; otherwise it follows the metadata log as a
  // learner (a broker-only node).
  bool IsVoter() const;
  // Every registered broker that is not a voter is a learner: the transport learns its internal
  // address and the Raft node replicates to it (any voter may lead next, so all of them track
  // the learners). Driver thread, after each change of the image.
  void SyncLearners();

  ControllerConfig config_;
  RaftService service_;

  // ---- driver thread only ----
  std::unique_ptr<raft::RaftLogStorage> storage_;
  std::unique_ptr<raft::RaftNode> raft_;
  std::unique_ptr<RaftTransport> transport_;
  size_t next_voter_to_ask_ = 0;  // a learner's registration round-robin over the voters
  MetadataImage working_;  // the image as of the last applied entry
  bool image_dirty_ = false;
  NodeId published_controller_ = NodeId(-1);
  struct Pending {
    Term term;
    uint64_t deadline_tick;
    std::function<void(const Status&)> done;
  };
  std::map<raft::LogIndex, Pending> pending_;     // proposals not applied yet, by index
  std::vector<std::function<void()>> completed_;  // applied proposals, run by Publish()
  struct Waiting {
    uint64_t deadline_tick;
    Task task;
  };
  std::deque<Waiting> waiting_for_leader_;
  std::vector<ImageListener> listeners_;
  uint64_t ticks_ = 0;
  uint64_t snapshot_index_ = 0;
  bool registration_in_flight_ = false;
  uint64_t next_registration_tick_ = 0;
  Term cluster_id_proposed_term_{0};
  // Broker liveness, kept by the leader only (not replicated: a new leader gives every broker a
  // full session before fencing it).
  bool was_leader_ = false;
  std::map<NodeId, uint64_t> last_heartbeat_tick_;
  bool repair_in_flight_ = false;
  bool heartbeat_in_flight_ = false;
  uint64_t next_heartbeat_tick_ = 0;
  Status failed_;  // the storage failed: the node no longer persists or applies

  // ---- shared ----
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<raft::Message> inbox_;
  std::deque<Task> tasks_;
  bool started_ = false;
  bool stopping_ = false;
  std::thread thread_;

  mutable std::mutex image_mu_;
  std::shared_ptr<const MetadataImage> image_;
  std::atomic<bool> active_{false};
};

grpc::ServerUnaryReactor* RaftService::Step(grpc::CallbackServerContext* context,
                                            const pb::RaftMessageBatch* request,
                                            pb::RaftAck* response) {
  controller_->Deliver(*request);
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* RaftService::Forward(grpc::CallbackServerContext* context,
                                               const pb::ForwardRequest* request,
                                               pb::ForwardResponse* response) {
  auto* reactor = context->DefaultReactor();
  controller_->Submit(
      *request,
      [reactor, response](Results results) {
        for (TopicOpResult& r : results) {
          v1::TopicResult* out = response->add_results();
          out->set_topic(r.topic);
          out->set_error(r.error);
          out->set_error_message(r.message);
        }
        reactor->Finish(grpc::Status::OK);
      },
      /*forwarded=*/true);
  return reactor;
}

Status ControllerImpl::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return Status::Failed("controller already started");
    if (stopping_) return Status::Failed("controller stopped");
  }
  if (config_.node_id.value() <= 0) {
    return Status::InvalidArgument("controller node id must be > 0");
  }
  if (config_.tick_ms <= 0) return Status::InvalidArgument("controller tick_ms must be > 0");
  std::vector<NodeId> voter_ids;
  for (const VoterAddress& v : config_.voters) voter_ids.push_back(v.node_id);

  RILL_ASSIGN_OR_RETURN(auto storage, raft::DiskRaftStorage::Open(storage::DefaultFileSystem(),
                                                                  config_.metadata_dir));
  RILL_ASSIGN_OR_RETURN(raft::RaftInitialState initial, storage->Load());
  storage_ = std::move(storage);
  if (initial.snapshot) {
    pb::MetadataSnapshot snap;
    if (!snap.ParseFromString(initial.snapshot->data)) {
      return Status::Corruption("metadata snapshot at raft index " +
                                std::to_string(initial.snapshot->metadata.index.value()) + " in " +
                                config_.metadata_dir + " does not parse");
    }
    RILL_ASSIGN_OR_RETURN(working_, ImageFromSnapshot(snap));
    working_.applied_index = initial.snapshot->metadata.index.value();
    snapshot_index_ = working_.applied_index;
  }
  size_t recovered_entries = initial.entries.size();

  raft::RaftConfig rc;
  rc.id = config_.node_id;
  const bool voter = IsVoter();
  rc.configuration = voter ? raft::Configuration::Of(voter_ids)
                           : raft::Configuration::Of(voter_ids, {config_.node_id});
  rc.election_tick = config_.election_ticks;
  rc.heartbeat_tick = config_.heartbeat_ticks;
  rc.random_seed = (uint64_t(std::random_device()()) << 32) ^ std::random_device()();
  RILL_ASSIGN_OR_RETURN(raft_, raft::RaftNode::Create(rc, std::move(initial)));

  transport_ = std::make_unique<RaftTransport>(config_.node_id, config_.voters);
  transport_->Start();
  SyncLearners();  // the learners the snapshot knows; the log replay adds the rest

  // Replay the committed log into the image before anyone reads it.
  image_dirty_ = true;
  RILL_RETURN_IF_ERROR(ProcessReady());
  // A quorum of one need not wait for an election timeout.
  // It also commits its cluster id and registration before Start returns.
  if (voter && rc.configuration.voters.size() == 1) {
    raft_->Campaign();
    RILL_RETURN_IF_ERROR(ProcessReady());
    Housekeeping();
    RILL_RETURN_IF_ERROR(ProcessReady());
  }
  Publish();
  spdlog::info(
      "controller {}: recovered {} (snapshot at {}, {} log entries), {} topics, {} voters; this "
      "node is a {}",
      config_.node_id.value(), config_.metadata_dir, snapshot_index_, recovered_entries,
      working_.topics.size(), rc.configuration.voters.size(),
      voter ? "voter" : "learner (it follows the metadata log and never votes)");

  std::lock_guard<std::mutex> lock(mu_);
  started_ = true;
  thread_ = std::thread([this] {
    SetCurrentThreadName("rill-controller");
    Run();
  });
  return Status::OK();
}

void ControllerImpl::Stop() {
  std::deque<Task> leftover;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  if (transport_) transport_->Stop();  // forwarded calls complete (and find us stopping)
  {
    std::lock_guard<std::mutex> lock(mu_);
    leftover.swap(tasks_);
  }
  Status stopped = Stopped();
  for (Task& t : leftover) t(stopped);
  std::vector<std::function<void()>> completed;
  completed.swap(completed_);
  for (auto& c : completed) c();
  FailPending(stopped);
  active_.store(false, std::memory_order_release);
}

bool ControllerImpl::Post(Task task) {
  Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && tasks_.size() < kMaxQueuedTasks) {
      tasks_.push_back(std::move(task));
      cv_.notify_all();
      return true;
    }
    refused = stopping_ ? Stopped()
                        : Status::ResourceExhausted("more than " + std::to_string(kMaxQueuedTasks) +
                                                    " controller operations are queued");
  }
  task(refused);
  return false;
}

void ControllerImpl::Deliver(const pb::RaftMessageBatch& batch) {
  std::vector<raft::Message> decoded;
  decoded.reserve(batch.messages_size());
  for (const pb::RaftMessage& m : batch.messages()) {
    Result<raft::Message> msg = DecodeRaftMessage(m);
    if (!msg.ok()) {
      spdlog::warn("controller {}: dropping a raft message from node {}: {}",
                   config_.node_id.value(), m.from(), msg.status().ToString());
      continue;
    }
    decoded.push_back(std::move(msg).value());
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  for (raft::Message& m : decoded) {
    if (inbox_.size() >= kMaxInboxMessages) break;  // Raft resends what is lost
    inbox_.push_back(std::move(m));
  }
  cv_.notify_all();
}

void ControllerImpl::Submit(pb::ForwardRequest op, ResultsCallback done, bool forwarded) {
  auto shared_op = std::make_shared<pb::ForwardRequest>(std::move(op));
  Post([this, shared_op, done = std::move(done), forwarded](const Status& st) mutable {
    if (!st.ok()) {
      done(FailAll(*shared_op, MetadataOpError(st, v1::UNKNOWN), st.message()));
      return;
    }
    Execute(*shared_op, std::move(done), forwarded);
  });
}

void ControllerImpl::Run() {
  auto next_tick = Clock::now() + std::chrono::milliseconds(config_.tick_ms);
  while (true) {
    std::vector<raft::Message> inbox;
    std::deque<Task> tasks;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, next_tick,
                     [this] { return stopping_ || !inbox_.empty() || !tasks_.empty(); });
      if (stopping_) return;
      inbox.swap(inbox_);
      tasks.swap(tasks_);
    }
    if (!failed_.ok()) {
      for (Task& t : tasks) t(failed_);
      continue;
    }
    for (const raft::Message& m : inbox) {
      Status st = raft_->Step(m);
      if (!st.ok()) {
        spdlog::warn("controller {}: raft rejected {}: {}", config_.node_id.value(), m.ToString(),
                     st.ToString());
      }
    }
    for (Task& t : tasks) t(Status::OK());
    auto now = Clock::now();
    if (now >= next_tick) {
      next_tick += std::chrono::milliseconds(config_.tick_ms);
      // After a stall, do not tick a burst to catch up.
      if (next_tick < now) next_tick = now + std::chrono::milliseconds(config_.tick_ms);
      raft_->Tick();
      ++ticks_;
      ExpireDeadlines();
    }
    Status st = ProcessReady();
    if (st.ok()) {
      Housekeeping();
      st = ProcessReady();
    }
    if (st.ok()) st = MaybeSnapshot();
    if (!st.ok()) {
      // The metadata log's state on disk is unknown: stop acting on it (LevelDB's rule).
      spdlog::error("controller {}: the metadata log failed; this controller stops: {}",
                    config_.node_id.value(), st.ToString());
      failed_ = Status::Failed("the metadata log failed: " + st.ToString());
      FailPending(failed_);
      active_.store(false, std::memory_order_release);
    }
    Publish();
  }
}

Status ControllerImpl::ProcessReady() {
  while (raft_->HasReady()) {
    raft::Ready rd = raft_->GetReady();
    // Persist (and fsync) before anything is sent: a vote or an ack promises durable state.
    RILL_RETURN_IF_ERROR(raft::PersistReady(*storage_, rd));
    if (!rd.messages.empty()) transport_->Send(std::move(rd.messages));
    if (rd.snapshot) {
      pb::MetadataSnapshot snap;
      if (!snap.ParseFromString(rd.snapshot->data)) {
        return Status::Corruption("metadata snapshot from the leader at raft index " +
                                  std::to_string(rd.snapshot->metadata.index.value()) +
                                  " does not parse");
      }
      RILL_ASSIGN_OR_RETURN(MetadataImage img, ImageFromSnapshot(snap));
      img.applied_index = rd.snapshot->metadata.index.value();
      working_ = std::move(img);
      snapshot_index_ = working_.applied_index;
      image_dirty_ = true;
      // Proposals the snapshot covers: their outcome is not known here.
      while (!pending_.empty() && pending_.begin()->first <= rd.snapshot->metadata.index) {
        auto done = std::move(pending_.begin()->second.done);
        pending_.erase(pending_.begin());
        done(
            Status::Timeout("the outcome is unknown (a snapshot replaced the log); check and "
                            "retry"));
      }
    }
    for (const raft::Entry& e : rd.committed_entries) ApplyCommitted(e);
    raft_->Advance();
  }
  bool leader = raft_->role() == raft::Role::kLeader;
  active_.store(leader, std::memory_order_release);
  if (!leader) FailOverwrittenProposals();
  return Status::OK();
}

void ControllerImpl::FailOverwrittenProposals() {
  // A proposal whose entry is no longer in the log with its term was replaced by a new leader:
  // it will never commit. (One still there may yet commit; it waits to be applied.)
  for (auto it = pending_.begin(); it != pending_.end();) {
    std::optional<Term> term = raft_->TermAt(it->first);
    if (it->first > raft_->snapshot_index() && (!term || *term != it->second.term)) {
      auto done = std::move(it->second.done);
      it = pending_.erase(it);
      done(Status::Unavailable(
          "the controller lost its leadership before the operation committed; retry"));
    } else {
      ++it;
    }
  }
}

void ControllerImpl::ApplyCommitted(const raft::Entry& entry) {
  Status outcome;
  if (entry.type == raft::EntryType::kNormal) {
    pb::MetadataBatch batch;
    if (!batch.ParseFromString(entry.data)) {
      // Every node skips the same bytes the same way, so images stay identical.
      outcome = Status::Corruption("raft entry " + std::to_string(entry.index.value()) +
                                   " is not a metadata batch");
      spdlog::error("controller {}: {}", config_.node_id.value(), outcome.ToString());
    } else {
      outcome = ApplyMetadataBatch(working_, batch);
    }
  }
  working_.applied_index = entry.index.value();
  image_dirty_ = true;

  auto it = pending_.find(entry.index);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (p.term != entry.term) {
    outcome = Status::Unavailable(
        "the controller lost its leadership before the operation committed; retry");
  }
  // Completed after the image that holds the outcome is published (see Publish).
  completed_.push_back([done = std::move(p.done), outcome] { done(outcome); });
}

void ControllerImpl::Publish() {
  NodeId leader = raft_->leader() == raft::kNoNode ? NodeId(-1) : raft_->leader();
  if (image_dirty_) SyncLearners();
  if (image_dirty_ || leader != published_controller_) {
    working_.controller_id = leader;
    published_controller_ = leader;
    image_dirty_ = false;
    auto img = std::make_shared<const MetadataImage>(working_);
    {
      std::lock_guard<std::mutex> lock(image_mu_);
      image_ = img;
    }
    for (ImageListener& l : listeners_) l(img);
  }
  // Operations complete once image() shows their outcome.
  std::vector<std::function<void()>> completed;
  completed.swap(completed_);
  for (auto& c : completed) c();
}

Status ControllerImpl::MaybeSnapshot() {
  if (config_.snapshot_every_records == 0) return Status::OK();
  if (working_.applied_index < snapshot_index_ + config_.snapshot_every_records) {
    return Status::OK();
  }
  raft::LogIndex index(working_.applied_index);
  std::string data = SnapshotOfImage(working_).SerializeAsString();
  RILL_RETURN_IF_ERROR(raft_->CompactLog(index, std::move(data)));
  RILL_RETURN_IF_ERROR(storage_->SaveSnapshot(*raft_->snapshot()));
  spdlog::info("controller {}: snapshot of the metadata image at raft index {}",
               config_.node_id.value(), working_.applied_index);
  snapshot_index_ = working_.applied_index;
  return Status::OK();
}

void ControllerImpl::ExpireDeadlines() {
  // Proposals and waiting operations that outlived their deadline.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (ticks_ >= it->second.deadline_tick) {
      auto done = std::move(it->second.done);
      it = pending_.erase(it);
      done(Status::Timeout("the operation did not commit in time; it may still be applied"));
    } else {
      ++it;
    }
  }
  while (!waiting_for_leader_.empty() && ticks_ >= waiting_for_leader_.front().deadline_tick) {
    Task t = std::move(waiting_for_leader_.front().task);
    waiting_for_leader_.pop_front();
    t(Status::Timeout("no active controller was elected in time"));
  }
}

void ControllerImpl::Housekeeping() {
  bool leader = raft_->role() == raft::Role::kLeader;
  // Bootstrap: the first leader of a new metadata log writes the cluster id (first one wins).
  if (leader && working_.cluster_id.empty() && cluster_id_proposed_term_ != raft_->term()) {
    cluster_id_proposed_term_ = raft_->term();
    pb::MetadataBatch batch;
    *batch.add_records() =
        ClusterIdRecordOf(config_.cluster_id.empty() ? RandomId() : config_.cluster_id);
    Propose(batch, [](const Status&) {});
  }
  // Register this broker once a leader exists (and again if its address changed).
  // A learner hears of the leader only once the leader replicates to it, which it does once the
  // registration is committed: it registers through the voters in turn (see Execute).
  if (!registration_in_flight_ && ticks_ >= next_registration_tick_ &&
      (raft_->leader() != raft::kNoNode || raft_->is_learner()) && !SelfRegistered()) {
    registration_in_flight_ = true;
    pb::ForwardRequest op;
    auto* r = op.mutable_register_broker();
    r->set_node_id(config_.self.node_id.value());
    r->set_host(config_.self.host);
    r->set_port(config_.self.port);
    r->set_internal_port(config_.self.internal_port);
    r->set_rack(config_.self.rack);
    Execute(
        op,
        [this](Results results) {
          registration_in_flight_ = false;
          if (!results.empty() && results[0].error != v1::NONE) {
            spdlog::info("controller {}: broker registration not done yet: {}",
                         config_.node_id.value(), results[0].message);
            next_registration_tick_ = ticks_ + config_.heartbeat_ticks * 2 + 1;
          } else if (raft_->is_learner()) {
            // Committed on the leader; this node's image shows it once the leader replicates
            // the record here. Give it an election timeout before registering again.
            next_registration_tick_ = ticks_ + config_.election_ticks;
          }
        },
        false);
  }
  // Broker liveness: the leader tracks heartbeats and fences; the others send them.
  if (leader) {
    if (!was_leader_) {
      was_leader_ = true;
      last_heartbeat_tick_.clear();
      for (const auto& [id, b] : working_.brokers) last_heartbeat_tick_[id] = ticks_;
    }
    last_heartbeat_tick_[config_.self.node_id] = ticks_;
    if (!repair_in_flight_) MaybeFenceAndElect();
  } else {
    was_leader_ = false;
    if (raft_->leader() != raft::kNoNode && !heartbeat_in_flight_ &&
        ticks_ >= next_heartbeat_tick_) {
      heartbeat_in_flight_ = true;
      pb::ForwardRequest op;
      op.mutable_broker_heartbeat()->set_node_id(config_.self.node_id.value());
      Execute(
          op,
          [this](Results) {
            heartbeat_in_flight_ = false;
            next_heartbeat_tick_ = ticks_ + std::max<uint64_t>(1, SessionTicks() / 3);
          },
          false);
    }
  }
}

void ControllerImpl::MaybeFenceAndElect() {
  std::set<NodeId> fence;
  for (const auto& [id, b] : working_.brokers) {
    if (b.fenced || id == config_.self.node_id) continue;
    auto [it, inserted] = last_heartbeat_tick_.emplace(id, ticks_);
    if (ticks_ - it->second > SessionTicks()) fence.insert(id);
  }
  // Without a fencing, scan for leaderless partitions only now and then.
  if (fence.empty() && ticks_ % 10 != 0) return;
  constexpr size_t kMaxPartitionChangesPerBatch = 1000;
  std::vector<pb::MetadataRecord> records =
      FenceAndElect(working_, fence, kMaxPartitionChangesPerBatch);
  if (records.empty()) return;
  for (NodeId id : fence) {
    spdlog::warn("controller {}: fencing broker {}: no heartbeat for {} ms",
                 config_.node_id.value(), id.value(), config_.broker_session_timeout_ms);
  }
  pb::MetadataBatch batch;
  for (pb::MetadataRecord& r : records) *batch.add_records() = std::move(r);
  repair_in_flight_ = true;
  Propose(batch, [this](const Status& st) {
    repair_in_flight_ = false;
    if (!st.ok()) {
      spdlog::info("controller {}: fencing/leader election not applied: {}",
                   config_.node_id.value(), st.ToString());
    }
  });
}

bool ControllerImpl::IsVoter() const {
  for (const VoterAddress& v : config_.voters) {
    if (v.node_id == config_.node_id) return true;
  }
  return false;
}

void ControllerImpl::SyncLearners() {
  for (const auto& [id, b] : working_.brokers) {
    if (id == config_.node_id || raft_->configuration().IsVoter(id)) continue;
    transport_->SetPeer(id, b.host, b.internal_port);
    if (!raft_->configuration().IsLearner(id)) {
      Status st = raft_->AddLearner(id);
      if (!st.ok()) {
        spdlog::warn("controller {}: broker {} cannot follow the metadata log: {}",
                     config_.node_id.value(), id.value(), st.ToString());
        continue;
      }
      spdlog::info("controller {}: broker {} ({}:{}) follows the metadata log as a learner",
                   config_.node_id.value(), id.value(), b.host, b.internal_port);
    }
  }
}

bool ControllerImpl::SelfRegistered() const {
  auto it = working_.brokers.find(config_.self.node_id);
  if (it == working_.brokers.end()) return false;
  const BrokerRegistration& b = it->second;
  return !b.fenced && b.host == config_.self.host && b.port == config_.self.port &&
         b.internal_port == config_.self.internal_port && b.rack == config_.self.rack;
}

void ControllerImpl::FailPending(const Status& st) {
  std::map<raft::LogIndex, Pending> pending;
  pending.swap(pending_);
  for (auto& [index, p] : pending) p.done(st);
  std::deque<Waiting> waiting;
  waiting.swap(waiting_for_leader_);
  for (Waiting& w : waiting) w.task(st);
}

void ControllerImpl::Propose(const pb::MetadataBatch& batch,
                             std::function<void(const Status&)> done) {
  Result<raft::LogIndex> index = raft_->Propose(batch.SerializeAsString());
  if (!index.ok()) {
    done(index.status());
    return;
  }
  uint64_t timeout_ticks =
      std::max<uint64_t>(4 * uint64_t(config_.election_ticks), 30000 / uint64_t(config_.tick_ms));
  pending_.emplace(*index, Pending{raft_->term(), ticks_ + timeout_ticks, std::move(done)});
}

void ControllerImpl::Execute(const pb::ForwardRequest& op, ResultsCallback done, bool forwarded) {
  if (!failed_.ok()) {
    done(FailAll(op, v1::BROKER_NOT_AVAILABLE, failed_.message()));
    return;
  }
  if (raft_->role() != raft::Role::kLeader) {
    NodeId leader = raft_->leader();
    if (forwarded) {
      done(FailAll(
          op, v1::NOT_COORDINATOR,
          "node " + std::to_string(config_.node_id.value()) + " is not the active controller"));
      return;
    }
    if (leader == raft::kNoNode && raft_->is_learner() &&
        op.op_case() == pb::ForwardRequest::kRegisterBroker) {
      // A learner not yet registered knows no leader: ask the voters in turn; the one that
      // leads takes it, the others answer NOT_COORDINATOR and the next attempt asks another.
      const auto& voters = raft_->configuration().voters;
      leader = voters[next_voter_to_ask_++ % voters.size()];
    }
    if (leader == raft::kNoNode) {
      // Wait for an election (bounded in count and time).
      if (waiting_for_leader_.size() >= kMaxWaitingForLeader) {
        done(FailAll(op, v1::RESOURCE_EXHAUSTED, "too many operations wait for a controller"));
        return;
      }
      auto shared_op = std::make_shared<pb::ForwardRequest>(op);
      uint64_t wait_ticks = std::max<uint64_t>(4 * uint64_t(config_.election_ticks),
                                               10000 / uint64_t(config_.tick_ms));
      waiting_for_leader_.push_back(
          {ticks_ + wait_ticks, [this, shared_op, done](const Status& st) mutable {
             if (!st.ok()) {
               done(FailAll(*shared_op, MetadataOpError(st, v1::UNKNOWN), st.message()));
               return;
             }
             Execute(*shared_op, std::move(done), false);
           }});
      return;
    }
    // Hand it to the active controller; its answer comes back on this thread.
    auto shared_op = std::make_shared<pb::ForwardRequest>(op);
    transport_->Forward(
        leader, op, kForwardTimeoutMs,
        [this, shared_op, done, leader](const grpc::Status& st, pb::ForwardResponse resp) {
          Post([shared_op, done, st, resp = std::move(resp), leader](const Status& post) {
            if (!post.ok()) {
              done(FailAll(*shared_op, MetadataOpError(post, v1::UNKNOWN), post.message()));
              return;
            }
            if (!st.ok()) {
              v1::ErrorCode code = st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                                       ? v1::REQUEST_TIMED_OUT
                                       : v1::NOT_COORDINATOR;
              done(FailAll(*shared_op, code,
                           "forwarding to the active controller (node " +
                               std::to_string(leader.value()) + ") failed: " + st.error_message()));
              return;
            }
            Results results;
            for (const v1::TopicResult& r : resp.results()) {
              results.push_back({r.topic(), r.error(), r.error_message()});
            }
            done(std::move(results));
          });
        });
    return;
  }
  switch (op.op_case()) {
    case pb::ForwardRequest::kCreateTopics:
      return ExecuteCreateTopics(op, std::move(done));
    case pb::ForwardRequest::kDeleteTopics:
      return ExecuteDeleteTopics(op.delete_topics(), std::move(done));
    case pb::ForwardRequest::kCreatePartitions:
      return ExecuteCreatePartitions(op.create_partitions(), std::move(done));
    case pb::ForwardRequest::kAlterConfigs:
      return ExecuteAlterConfigs(op.alter_configs(), std::move(done));
    case pb::ForwardRequest::kRegisterBroker:
      return ExecuteRegisterBroker(op.register_broker(), std::move(done));
    case pb::ForwardRequest::kBrokerHeartbeat:
      last_heartbeat_tick_[NodeId(op.broker_heartbeat().node_id())] = ticks_;
      return done({{"", v1::NONE, ""}});
    case pb::ForwardRequest::OP_NOT_SET:
      break;
  }
  done({});
}

void ControllerImpl::ExecuteCreateTopics(const pb::ForwardRequest& op, ResultsCallback done) {
  const v1::CreateTopicsRequest& req = op.create_topics();
  std::set<std::string> internal(op.internal_topics().begin(), op.internal_topics().end());
  auto collector = std::make_shared<ResultCollector>(req.topics_size(), std::move(done));
  std::vector<NodeId> brokers = UnfencedBrokers(working_);
  std::map<std::string, int> seen;
  for (const v1::NewTopic& t : req.topics()) seen[t.name()]++;
  std::map<std::string, std::string> accepted_keys;  // collision key -> name, in this request

  for (int i = 0; i < req.topics_size(); ++i) {
    const v1::NewTopic& t = req.topics(i);
    auto fail = [&](v1::ErrorCode code, std::string message) {
      collector->Set(i, {t.name(), code, std::move(message)});
    };
    bool is_internal = internal.count(t.name()) != 0;
    if (Status st = ValidateTopicName(t.name(), is_internal); !st.ok()) {
      fail(v1::INVALID_TOPIC, st.message());
      continue;
    }
    if (seen[t.name()] > 1) {
      fail(v1::INVALID_REQUEST, "topic '" + t.name() + "' is listed more than once");
      continue;
    }
    if (working_.FindTopic(t.name()) != nullptr) {
      fail(v1::TOPIC_ALREADY_EXISTS, "topic '" + t.name() + "' already exists");
      continue;
    }
    std::string collides;
    std::string key = CollisionKey(t.name());
    for (const auto& [name, topic] : working_.topics) {
      if (CollisionKey(name) == key) collides = name;
    }
    if (auto it = accepted_keys.find(key); collides.empty() && it != accepted_keys.end()) {
      collides = it->second;
    }
    if (!collides.empty()) {
      fail(v1::INVALID_TOPIC, "topic '" + t.name() + "' collides with topic '" + collides +
                                  "' ('.' and '_' are treated alike)");
      continue;
    }
    int32_t partitions = t.partitions() == 0 ? config_.default_partitions : t.partitions();
    if (Status st = ValidatePartitionCount(partitions, config_.max_partitions_per_topic);
        !st.ok()) {
      fail(v1::INVALID_PARTITIONS, st.message());
      continue;
    }
    int32_t rf =
        t.replication_factor() == 0 ? config_.default_replication_factor : t.replication_factor();
    if (Status st = ValidateReplicationFactor(rf, brokers.size()); !st.ok()) {
      fail(v1::INVALID_REPLICATION_FACTOR, st.message());
      continue;
    }
    std::map<std::string, std::string> configs(t.configs().begin(), t.configs().end());
    if (Status st = ValidateTopicConfigs(configs); !st.ok()) {
      fail(v1::INVALID_CONFIG, st.message());
      continue;
    }
    accepted_keys.emplace(key, t.name());
    if (req.validate_only()) {
      fail(v1::NONE, "");
      continue;
    }
    std::string topic_id = RandomId();
    pb::MetadataBatch batch;
    *batch.add_records() = TopicRecordOf(t.name(), topic_id, is_internal);
    size_t start = std::hash<std::string>()(topic_id);
    auto assignment = AssignReplicas(brokers, 0, partitions, rf, start);
    for (int32_t p = 0; p < partitions; ++p) {
      *batch.add_records() = PartitionRecordOf(t.name(), topic_id, p, assignment[p]);
    }
    for (const auto& [k, v] : configs) {
      *batch.add_records() = ConfigRecordOf(t.name(), topic_id, k, v, false);
    }
    std::string name = t.name();
    Propose(batch, [collector, i, name](const Status& st) {
      collector->Set(i,
                     {name, MetadataOpError(st, v1::INVALID_REQUEST), st.ok() ? "" : st.message()});
    });
  }
}

void ControllerImpl::ExecuteDeleteTopics(const v1::DeleteTopicsRequest& req, ResultsCallback done) {
  auto collector = std::make_shared<ResultCollector>(req.topics_size(), std::move(done));
  for (int i = 0; i < req.topics_size(); ++i) {
    const std::string& name = req.topics(i);
    const TopicMetadata* t = working_.FindTopic(name);
    if (t == nullptr) {
      collector->Set(i, {name, v1::UNKNOWN_TOPIC, "unknown topic '" + name + "'"});
      continue;
    }
    pb::MetadataBatch batch;
    *batch.add_records() = RemoveTopicRecordOf(name, t->topic_id);
    Propose(batch, [collector, i, name](const Status& st) {
      collector->Set(i,
                     {name, MetadataOpError(st, v1::INVALID_REQUEST), st.ok() ? "" : st.message()});
    });
  }
}

void ControllerImpl::ExecuteCreatePartitions(const v1::CreatePartitionsRequest& req,
                                             ResultsCallback done) {
  const std::string& name = req.topic();
  auto finish = [&](v1::ErrorCode code, std::string message) {
    done({{name, code, std::move(message)}});
  };
  const TopicMetadata* t = working_.FindTopic(name);
  if (t == nullptr) return finish(v1::UNKNOWN_TOPIC, "unknown topic '" + name + "'");
  int32_t current = static_cast<int32_t>(t->partitions.size());
  int32_t total = req.new_total_count();
  if (total <= current) {
    return finish(v1::INVALID_PARTITIONS, "topic '" + name + "' has " + std::to_string(current) +
                                              " partitions; the new count " +
                                              std::to_string(total) +
                                              " must be larger (partitions cannot be removed)");
  }
  if (Status st = ValidatePartitionCount(total, config_.max_partitions_per_topic); !st.ok()) {
    return finish(v1::INVALID_PARTITIONS, st.message());
  }
  // New partitions keep the topic's replication factor.
  int32_t rf = t->partitions.empty() ? 1 : static_cast<int32_t>(t->partitions[0].replicas.size());
  std::vector<NodeId> brokers = UnfencedBrokers(working_);
  if (Status st = ValidateReplicationFactor(rf, brokers.size()); !st.ok()) {
    return finish(v1::INVALID_REPLICATION_FACTOR, st.message());
  }
  size_t start = std::hash<std::string>()(t->topic_id);
  auto assignment = AssignReplicas(brokers, current, total - current, rf, start);
  pb::MetadataBatch batch;
  for (int32_t p = current; p < total; ++p) {
    *batch.add_records() = PartitionRecordOf(name, t->topic_id, p, assignment[p - current]);
  }
  Propose(batch, [done = std::move(done), name](const Status& st) {
    done({{name, MetadataOpError(st, v1::INVALID_PARTITIONS), st.ok() ? "" : st.message()}});
  });
}

void ControllerImpl::ExecuteAlterConfigs(const v1::AlterConfigsRequest& req, ResultsCallback done) {
  const std::string& name = req.topic();
  const TopicMetadata* t = working_.FindTopic(name);
  if (t == nullptr) {
    done({{name, v1::UNKNOWN_TOPIC, "unknown topic '" + name + "'"}});
    return;
  }
  std::map<std::string, std::string> set(req.set().begin(), req.set().end());
  if (Status st = ValidateTopicConfigs(set); !st.ok()) {
    done({{name, v1::INVALID_CONFIG, st.message()}});
    return;
  }
  for (const std::string& key : req.delete_()) {
    bool known = false;
    for (const TopicConfigDef& d : TopicConfigDefs()) known |= d.name == key;
    if (!known) {
      done({{name, v1::INVALID_CONFIG, "unknown topic config '" + key + "'"}});
      return;
    }
    if (set.count(key) != 0) {
      done({{name, v1::INVALID_CONFIG, "topic config '" + key + "' is both set and deleted"}});
      return;
    }
  }
  if (req.validate_only() || (set.empty() && req.delete__size() == 0)) {
    done({{name, v1::NONE, ""}});
    return;
  }
  pb::MetadataBatch batch;
  for (const auto& [k, v] : set)
    *batch.add_records() = ConfigRecordOf(name, t->topic_id, k, v, false);
  for (const std::string& k : req.delete_()) {
    *batch.add_records() = ConfigRecordOf(name, t->topic_id, k, "", true);
  }
  Propose(batch, [done = std::move(done), name](const Status& st) {
    done({{name, MetadataOpError(st, v1::INVALID_CONFIG), st.ok() ? "" : st.message()}});
  });
}

void ControllerImpl::ExecuteRegisterBroker(const pb::ForwardRegisterBroker& req,
                                           ResultsCallback done) {
  if (req.node_id() <= 0) {
    done({{"", v1::INVALID_REQUEST, "broker id must be > 0"}});
    return;
  }
  BrokerRegistration b;
  b.node_id = NodeId(req.node_id());
  b.host = req.host();
  b.port = req.port();
  b.internal_port = req.internal_port();
  b.rack = req.rack();
  pb::MetadataBatch batch;
  *batch.add_records() = RegisterBrokerRecordOf(b);
  Propose(batch, [done = std::move(done)](const Status& st) {
    done({{"", MetadataOpError(st, v1::INVALID_REQUEST), st.ok() ? "" : st.message()}});
  });
}

}  // namespace

std::unique_ptr<Controller> MakeController(ControllerConfig config) {
  return std::make_unique<ControllerImpl>(std::move(config));
}

}  // namespace rill::broker
