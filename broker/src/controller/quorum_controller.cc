#include "quorum_controller.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "metadata_image.h"
#include "raft_codec.h"
#include "topic_config.h"
#include "topic_rules.h"

namespace rill::broker {
namespace {

namespace pb = internal::v1;
using Results = std::vector<TopicOpResult>;
using ResultsCallback = Controller::ResultsCallback;

// Bounds (docs/CONVENTIONS.md §9: a limit on everything).
constexpr size_t kMaxWaitingForLeader = 4096;  // operations waiting for a leader to be known
constexpr int kForwardTimeoutMs = 10000;
constexpr size_t kMaxElectionsPerBatch = 10000;  // partitions one explicit election moves
constexpr int64_t kProducerIdBlockSize = 1000;   // ids in one ProducerIdsRecord block

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
    case pb::ForwardRequest::kAlterPartition:
      return {op.alter_partition().topic()};
    case pb::ForwardRequest::kRegisterBroker:
    case pb::ForwardRequest::kBrokerHeartbeat:
    case pb::ForwardRequest::kControlledShutdown:
    case pb::ForwardRequest::kElectLeaders:
    case pb::ForwardRequest::kAllocateProducerIds:
      return {""};
    case pb::ForwardRequest::OP_NOT_SET:
      break;
  }
  return {};
}

Results FailAll(const pb::ForwardRequest& op, TopicOpError code, const std::string& message) {
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

}  // namespace

QuorumController::QuorumController(const ControllerConfig& config, RaftDriver& driver,
                                   const MetadataImage& working, HeartbeatSink heartbeat_sink)
    : config_(config),
      driver_(driver),
      working_(working),
      heartbeat_sink_(std::move(heartbeat_sink)) {}

void QuorumController::Submit(pb::ForwardRequest op, ResultsCallback done, bool forwarded) {
  auto shared_op = std::make_shared<pb::ForwardRequest>(std::move(op));
  driver_.Post([this, shared_op, done = std::move(done), forwarded](const Status& st) mutable {
    if (!st.ok()) {
      done(FailAll(*shared_op, TopicOpErrorOf(st, TopicOpError::kUnknown), st.message()));
      return;
    }
    Execute(*shared_op, std::move(done), forwarded);
  });
}

void QuorumController::MaybeBootstrapClusterId() {
  const raft::RaftNode& raft = driver_.raft();
  // Bootstrap: the first leader of a new metadata log writes the cluster id (first one wins).
  if (driver_.IsLeader() && working_.cluster_id.empty() &&
      cluster_id_proposed_term_ != raft.term()) {
    cluster_id_proposed_term_ = raft.term();
    pb::MetadataBatch batch;
    *batch.add_records() =
        ClusterIdRecordOf(config_.cluster_id.empty() ? RandomId() : config_.cluster_id);
    Propose(batch, [](const Status&) {});
  }
}

void QuorumController::ExpireWaiting() {
  // Operations that waited for a leader beyond their deadline.
  const uint64_t ticks = driver_.ticks();
  while (!waiting_for_leader_.empty() && ticks >= waiting_for_leader_.front().deadline_tick) {
    RaftDriver::Task t = std::move(waiting_for_leader_.front().task);
    waiting_for_leader_.pop_front();
    t(Status::Timeout("no active controller was elected in time"));
  }
}

void QuorumController::RunWaiting() {
  // Once a controller is there to take them: this node when it is active, else a known leader.
  const bool ready =
      driver_.IsLeader() || (driver_.raft().leader() != raft::kNoNode && !driver_.IsRaftLeader());
  if (waiting_for_leader_.empty() || !ready) return;
  std::deque<Waiting> waiting;
  waiting.swap(waiting_for_leader_);
  for (Waiting& w : waiting) w.task(Status::OK());
}

void QuorumController::FailWaiting(const Status& st) {
  std::deque<Waiting> waiting;
  waiting.swap(waiting_for_leader_);
  for (Waiting& w : waiting) w.task(st);
  // Operations deferred behind partition changes: the driver is stopping or failed, so the
  // changes they wait for will never be applied here.
  std::deque<Deferred> deferred;
  deferred.swap(deferred_);
  rejoin_waiting_ = false;
  for (Deferred& d : deferred) {
    d.done(FailAll(d.op, TopicOpErrorOf(st, TopicOpError::kUnknown), st.message()));
  }
}

void QuorumController::Propose(const pb::MetadataBatch& batch,
                               std::function<void(const Status&)> done, bool rejoin) {
  const bool changes_partitions =
      std::any_of(batch.records().begin(), batch.records().end(), [](const auto& r) {
        return r.record_case() == pb::MetadataRecord::kPartitionChange;
      });
  if (!changes_partitions) {
    driver_.Propose(batch.SerializeAsString(), std::move(done));
    return;
  }
  ++partition_changes_in_flight_;
  if (rejoin) ++rejoins_in_flight_;
  driver_.Propose(batch.SerializeAsString(),
                  [this, rejoin, done = std::move(done)](const Status& st) {
                    --partition_changes_in_flight_;
                    if (rejoin) --rejoins_in_flight_;
                    done(st);
                    RunDeferred();
                  });
}

bool QuorumController::DeferredForPartitionChanges(const pb::ForwardRequest& op,
                                                   ResultsCallback& done, bool forwarded) {
  bool wait = false;
  switch (op.op_case()) {
    case pb::ForwardRequest::kRegisterBroker: {
      auto it = working_.brokers.find(NodeId(op.register_broker().node_id()));
      const bool restarted = it != working_.brokers.end() &&
                             it->second.incarnation_id != op.register_broker().incarnation_id();
      wait = restarted && (partition_changes_in_flight_ > 0 || rejoins_in_flight_ > 0);
      if (wait) rejoin_waiting_ = true;
      break;
    }
    case pb::ForwardRequest::kAlterPartition:
    case pb::ForwardRequest::kControlledShutdown:
    case pb::ForwardRequest::kElectLeaders:
      wait = rejoin_pending();
      break;
    default:
      break;
  }
  if (wait) deferred_.push_back({op, std::move(done), forwarded});
  return wait;
}

void QuorumController::RunDeferred() {
  if (deferred_.empty() || (rejoin_waiting_ ? partition_changes_in_flight_ > 0
                                            : rejoins_in_flight_ > 0)) {
    return;
  }
  // Registrations first (they were waiting for the others to drain), in arrival order; each is
  // executed again, so it may be deferred again behind the one before it.
  std::deque<Deferred> ready;
  ready.swap(deferred_);
  rejoin_waiting_ = false;
  std::stable_partition(ready.begin(), ready.end(), [](const Deferred& d) {
    return d.op.op_case() == pb::ForwardRequest::kRegisterBroker;
  });
  for (Deferred& d : ready) Execute(d.op, std::move(d.done), d.forwarded);
}

void QuorumController::Execute(const pb::ForwardRequest& op, ResultsCallback done, bool forwarded) {
  if (!driver_.failed().ok()) {
    done(FailAll(op, TopicOpError::kControllerFailed, driver_.failed().message()));
    return;
  }
  const raft::RaftNode& raft = driver_.raft();
  if (!driver_.IsLeader()) {
    NodeId leader = raft.leader();
    // Elected but not yet caught up with what earlier leaders committed (RaftDriver::IsLeader):
    // it will be the active controller within a round trip, so its operations wait here.
    const bool catching_up = driver_.IsRaftLeader();
    if (forwarded && !catching_up) {
      done(FailAll(
          op, TopicOpError::kNotController,
          "node " + std::to_string(config_.node_id.value()) + " is not the active controller"));
      return;
    }
    if (leader == raft::kNoNode && raft.is_learner() &&
        op.op_case() == pb::ForwardRequest::kRegisterBroker) {
      // A learner not yet registered knows no leader: ask the voters in turn; the one that
      // leads takes it, the others answer NOT_COORDINATOR and the next attempt asks another.
      const auto& voters = raft.configuration().voters;
      leader = voters[next_voter_to_ask_++ % voters.size()];
    }
    if (leader == raft::kNoNode || catching_up) {
      // Wait for an election, or for the new leader to catch up (bounded in count and time);
      // RunWaiting resumes it.
      if (waiting_for_leader_.size() >= kMaxWaitingForLeader) {
        done(FailAll(op, TopicOpError::kTooManyOperations,
                     "too many operations wait for a controller"));
        return;
      }
      auto shared_op = std::make_shared<pb::ForwardRequest>(op);
      uint64_t wait_ticks = std::max<uint64_t>(4 * uint64_t(config_.election_ticks),
                                               10000 / uint64_t(config_.tick_ms));
      waiting_for_leader_.push_back(
          {driver_.ticks() + wait_ticks,
           [this, shared_op, done, forwarded](const Status& st) mutable {
             if (!st.ok()) {
               done(FailAll(*shared_op, TopicOpErrorOf(st, TopicOpError::kUnknown), st.message()));
               return;
             }
             Execute(*shared_op, std::move(done), forwarded);
           }});
      return;
    }
    // Hand it to the active controller; its answer comes back on this thread. A heartbeat is
    // worth nothing once the next one is due: it gets that long, so a heartbeat stuck on a
    // controller that stopped (SIGSTOP, a partition) never holds back the ones to its successor
    // until this broker's session expires.
    const int timeout_ms =
        op.op_case() == pb::ForwardRequest::kBrokerHeartbeat
            ? std::max(config_.tick_ms, config_.broker_session_timeout_ms / 3)
            : kForwardTimeoutMs;
    auto shared_op = std::make_shared<pb::ForwardRequest>(op);
    driver_.Forward(
        leader, op, timeout_ms,
        [this, shared_op, done, leader](const grpc::Status& st, pb::ForwardResponse resp) {
          driver_.Post([shared_op, done, st, resp = std::move(resp), leader](const Status& post) {
            if (!post.ok()) {
              done(FailAll(*shared_op, TopicOpErrorOf(post, TopicOpError::kUnknown),
                           post.message()));
              return;
            }
            if (!st.ok()) {
              TopicOpError code = st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED
                                      ? TopicOpError::kTimeout
                                      : TopicOpError::kNotController;
              done(FailAll(*shared_op, code,
                           "forwarding to the active controller (node " +
                               std::to_string(leader.value()) + ") failed: " + st.error_message()));
              return;
            }
            Results results = DecodeForwardResults(resp);
            if (results.size() != TopicsOf(*shared_op).size()) {
              done(FailAll(*shared_op, TopicOpError::kUnknown,
                           "the active controller (node " + std::to_string(leader.value()) +
                               ") answered " + std::to_string(results.size()) + " results for " +
                               std::to_string(TopicsOf(*shared_op).size()) + " topics"));
              return;
            }
            done(std::move(results));
          });
        });
    return;
  }
  if (DeferredForPartitionChanges(op, done, forwarded)) return;
  // On the active controller: every result carries the index its outcome is visible at.
  done = [this, done = std::move(done)](Results results) {
    for (TopicOpResult& r : results) r.applied_index = working_.applied_index;
    done(std::move(results));
  };
  switch (op.op_case()) {
    case pb::ForwardRequest::kCreateTopics:
      return ExecuteCreateTopics(op, std::move(done));
    case pb::ForwardRequest::kDeleteTopics:
      return ExecuteDeleteTopics(op.delete_topics(), std::move(done));
    case pb::ForwardRequest::kCreatePartitions:
      return ExecuteCreatePartitions(op.create_partitions(), std::move(done));
    case pb::ForwardRequest::kAlterConfigs:
      return ExecuteAlterConfigs(op.alter_configs(), std::move(done));
    case pb::ForwardRequest::kAlterPartition:
      return ExecuteAlterPartition(op.alter_partition(), std::move(done));
    case pb::ForwardRequest::kRegisterBroker:
      return ExecuteRegisterBroker(op.register_broker(), std::move(done));
    case pb::ForwardRequest::kBrokerHeartbeat:
      heartbeat_sink_(NodeId(op.broker_heartbeat().node_id()));
      return done({{"", TopicOpError::kNone, ""}});
    case pb::ForwardRequest::kControlledShutdown:
      return ExecuteControlledShutdown(op.controlled_shutdown(), std::move(done));
    case pb::ForwardRequest::kElectLeaders:
      return ExecuteElectLeaders(op.elect_leaders(), std::move(done));
    case pb::ForwardRequest::kAllocateProducerIds:
      return ExecuteAllocateProducerIds(op.allocate_producer_ids(), std::move(done));
    case pb::ForwardRequest::OP_NOT_SET:
      break;
  }
  done({});
}

void QuorumController::ExecuteCreateTopics(const pb::ForwardRequest& op, ResultsCallback done) {
  const v1::CreateTopicsRequest& req = op.create_topics();
  std::set<std::string> internal(op.internal_topics().begin(), op.internal_topics().end());
  auto collector = std::make_shared<ResultCollector>(req.topics_size(), std::move(done));
  std::vector<NodeId> brokers = PlacementOrder(working_);  // rack-alternating
  const std::map<NodeId, std::string> racks = BrokerRacks(working_);
  std::map<std::string, int> seen;
  for (const v1::NewTopic& t : req.topics()) seen[t.name()]++;
  std::map<std::string, std::string> accepted_keys;  // collision key -> name, in this request

  for (int i = 0; i < req.topics_size(); ++i) {
    const v1::NewTopic& t = req.topics(i);
    auto fail = [&](TopicOpError code, std::string message) {
      collector->Set(i, {t.name(), code, std::move(message)});
    };
    bool is_internal = internal.count(t.name()) != 0;
    if (Status st = ValidateTopicName(t.name(), is_internal); !st.ok()) {
      fail(TopicOpError::kInvalidTopic, st.message());
      continue;
    }
    if (seen[t.name()] > 1) {
      fail(TopicOpError::kInvalidRequest, "topic '" + t.name() + "' is listed more than once");
      continue;
    }
    if (working_.FindTopic(t.name()) != nullptr) {
      fail(TopicOpError::kTopicAlreadyExists, "topic '" + t.name() + "' already exists");
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
      fail(TopicOpError::kInvalidTopic, "topic '" + t.name() + "' collides with topic '" +
                                            collides + "' ('.' and '_' are treated alike)");
      continue;
    }
    int32_t partitions = t.partitions() == 0 ? config_.default_partitions : t.partitions();
    if (Status st = ValidatePartitionCount(partitions, config_.max_partitions_per_topic);
        !st.ok()) {
      fail(TopicOpError::kInvalidPartitions, st.message());
      continue;
    }
    int32_t rf =
        t.replication_factor() != 0 ? t.replication_factor()
        : config_.default_replication_factor != 0
            ? config_.default_replication_factor
            : static_cast<int32_t>(std::min<size_t>(3, std::max<size_t>(1, brokers.size())));
    if (Status st = ValidateReplicationFactor(rf, brokers.size()); !st.ok()) {
      fail(TopicOpError::kInvalidReplicationFactor, st.message());
      continue;
    }
    std::map<std::string, std::string> configs(t.configs().begin(), t.configs().end());
    if (Status st = ValidateTopicConfigs(configs); !st.ok()) {
      fail(TopicOpError::kInvalidConfig, st.message());
      continue;
    }
    accepted_keys.emplace(key, t.name());
    if (req.validate_only()) {
      fail(TopicOpError::kNone, "");
      continue;
    }
    std::string topic_id = RandomId();
    pb::MetadataBatch batch;
    *batch.add_records() = TopicRecordOf(t.name(), topic_id, is_internal);
    size_t start = std::hash<std::string>()(topic_id);
    auto assignment = AssignReplicas(brokers, 0, partitions, rf, start, &racks);
    for (int32_t p = 0; p < partitions; ++p) {
      *batch.add_records() = PartitionRecordOf(t.name(), topic_id, p, assignment[p]);
    }
    for (const auto& [k, v] : configs) {
      *batch.add_records() = ConfigRecordOf(t.name(), topic_id, k, v, false);
    }
    std::string name = t.name();
    Propose(batch, [collector, i, name](const Status& st) {
      collector->Set(i, {name, TopicOpErrorOf(st, TopicOpError::kInvalidRequest),
                         st.ok() ? "" : st.message()});
    });
  }
}

void QuorumController::ExecuteDeleteTopics(const v1::DeleteTopicsRequest& req,
                                           ResultsCallback done) {
  auto collector = std::make_shared<ResultCollector>(req.topics_size(), std::move(done));
  for (int i = 0; i < req.topics_size(); ++i) {
    const std::string& name = req.topics(i);
    const TopicMetadata* t = working_.FindTopic(name);
    if (t == nullptr) {
      collector->Set(i, {name, TopicOpError::kUnknownTopic, "unknown topic '" + name + "'"});
      continue;
    }
    pb::MetadataBatch batch;
    *batch.add_records() = RemoveTopicRecordOf(name, t->topic_id);
    Propose(batch, [collector, i, name](const Status& st) {
      collector->Set(i, {name, TopicOpErrorOf(st, TopicOpError::kInvalidRequest),
                         st.ok() ? "" : st.message()});
    });
  }
}

void QuorumController::ExecuteCreatePartitions(const v1::CreatePartitionsRequest& req,
                                               ResultsCallback done) {
  const std::string& name = req.topic();
  auto finish = [&](TopicOpError code, std::string message) {
    done({{name, code, std::move(message)}});
  };
  const TopicMetadata* t = working_.FindTopic(name);
  if (t == nullptr) return finish(TopicOpError::kUnknownTopic, "unknown topic '" + name + "'");
  int32_t current = static_cast<int32_t>(t->partitions.size());
  int32_t total = req.new_total_count();
  if (total <= current) {
    return finish(TopicOpError::kInvalidPartitions,
                  "topic '" + name + "' has " + std::to_string(current) +
                      " partitions; the new count " + std::to_string(total) +
                      " must be larger (partitions cannot be removed)");
  }
  if (Status st = ValidatePartitionCount(total, config_.max_partitions_per_topic); !st.ok()) {
    return finish(TopicOpError::kInvalidPartitions, st.message());
  }
  // New partitions keep the topic's replication factor.
  int32_t rf = t->partitions.empty() ? 1 : static_cast<int32_t>(t->partitions[0].replicas.size());
  std::vector<NodeId> brokers = PlacementOrder(working_);  // rack-alternating
  const std::map<NodeId, std::string> racks = BrokerRacks(working_);
  if (Status st = ValidateReplicationFactor(rf, brokers.size()); !st.ok()) {
    return finish(TopicOpError::kInvalidReplicationFactor, st.message());
  }
  size_t start = std::hash<std::string>()(t->topic_id);
  auto assignment = AssignReplicas(brokers, current, total - current, rf, start, &racks);
  pb::MetadataBatch batch;
  for (int32_t p = current; p < total; ++p) {
    *batch.add_records() = PartitionRecordOf(name, t->topic_id, p, assignment[p - current]);
  }
  Propose(batch, [done = std::move(done), name](const Status& st) {
    done({{name, TopicOpErrorOf(st, TopicOpError::kInvalidPartitions),
           st.ok() ? "" : st.message()}});
  });
}

void QuorumController::ExecuteAlterConfigs(const v1::AlterConfigsRequest& req,
                                           ResultsCallback done) {
  const std::string& name = req.topic();
  const TopicMetadata* t = working_.FindTopic(name);
  if (t == nullptr) {
    done({{name, TopicOpError::kUnknownTopic, "unknown topic '" + name + "'"}});
    return;
  }
  std::map<std::string, std::string> set(req.set().begin(), req.set().end());
  if (Status st = ValidateTopicConfigs(set); !st.ok()) {
    done({{name, TopicOpError::kInvalidConfig, st.message()}});
    return;
  }
  for (const std::string& key : req.delete_()) {
    bool known = false;
    for (const TopicConfigDef& d : TopicConfigDefs()) known |= d.name == key;
    if (!known) {
      done({{name, TopicOpError::kInvalidConfig, "unknown topic config '" + key + "'"}});
      return;
    }
    if (set.count(key) != 0) {
      done({{name, TopicOpError::kInvalidConfig,
             "topic config '" + key + "' is both set and deleted"}});
      return;
    }
  }
  if (req.validate_only() || (set.empty() && req.delete__size() == 0)) {
    done({{name, TopicOpError::kNone, ""}});
    return;
  }
  pb::MetadataBatch batch;
  for (const auto& [k, v] : set)
    *batch.add_records() = ConfigRecordOf(name, t->topic_id, k, v, false);
  for (const std::string& k : req.delete_()) {
    *batch.add_records() = ConfigRecordOf(name, t->topic_id, k, "", true);
  }
  Propose(batch, [done = std::move(done), name](const Status& st) {
    done({{name, TopicOpErrorOf(st, TopicOpError::kInvalidConfig), st.ok() ? "" : st.message()}});
  });
}

void QuorumController::ExecuteAlterPartition(const pb::ForwardAlterPartition& req,
                                             ResultsCallback done) {
  const std::string where = req.topic() + "-" + std::to_string(req.partition());
  auto refuse = [&](const std::string& why) {
    done({{req.topic(), TopicOpError::kInvalidRequest, "ISR change of " + where + ": " + why}});
  };
  const TopicMetadata* t = working_.FindTopic(req.topic());
  if (t == nullptr || t->topic_id != req.topic_id()) return refuse("unknown topic");
  if (req.partition() < 0 || static_cast<size_t>(req.partition()) >= t->partitions.size()) {
    return refuse("unknown partition");
  }
  const PartitionAssignment& p = t->partitions[req.partition()];
  auto stale = [&](const std::string& why) {
    done({{req.topic(), TopicOpError::kStaleEpoch, "ISR change of " + where + ": " + why}});
  };
  if (p.leader.value() != req.leader_id() || p.leader_epoch.value() != req.leader_epoch()) {
    return stale("node " + std::to_string(req.leader_id()) + " at leader epoch " +
                  std::to_string(req.leader_epoch()) + " is not the leader (leader " +
                  std::to_string(p.leader.value()) + ", epoch " +
                  std::to_string(p.leader_epoch.value()) + ")");
  }
  if (p.partition_epoch != req.partition_epoch()) {
    return stale("stale partition epoch " + std::to_string(req.partition_epoch()) +
                  " (current " + std::to_string(p.partition_epoch) + ")");
  }
  std::vector<NodeId> isr;
  for (int32_t id : req.new_isr()) {
    NodeId n(id);
    if (std::find(isr.begin(), isr.end(), n) != isr.end()) return refuse("a member is repeated");
    if (std::find(p.replicas.begin(), p.replicas.end(), n) == p.replicas.end()) {
      return refuse("node " + std::to_string(id) + " is not a replica");
    }
    bool was_member = std::find(p.isr.begin(), p.isr.end(), n) != p.isr.end();
    auto b = working_.brokers.find(n);
    if (!was_member && (b == working_.brokers.end() || b->second.fenced)) {
      return refuse("node " + std::to_string(id) + " is fenced");
    }
    isr.push_back(n);
  }
  if (std::find(isr.begin(), isr.end(), p.leader) == isr.end()) {
    return refuse("the leader must stay in the ISR");
  }
  if (isr == p.isr) return done({{req.topic(), TopicOpError::kNone, ""}});
  pb::MetadataBatch batch;
  pb::PartitionChangeRecord* c = batch.add_records()->mutable_partition_change();
  c->set_topic(req.topic());
  c->set_topic_id(req.topic_id());
  c->set_partition(req.partition());
  for (NodeId n : isr) c->mutable_isr()->add_ids(n.value());
  Propose(batch, [done = std::move(done), topic = req.topic()](const Status& st) {
    done({{topic, TopicOpErrorOf(st, TopicOpError::kInvalidRequest), st.ok() ? "" : st.message()}});
  });
}

void QuorumController::ExecuteRegisterBroker(const pb::ForwardRegisterBroker& req,
                                             ResultsCallback done) {
  if (req.node_id() <= 0) {
    done({{"", TopicOpError::kInvalidRequest, "broker id must be > 0"}});
    return;
  }
  BrokerRegistration b;
  b.node_id = NodeId(req.node_id());
  b.host = req.host();
  b.port = req.port();
  b.internal_host = req.internal_host().empty() ? req.host() : req.internal_host();
  b.internal_port = req.internal_port();
  b.rack = req.rack();
  b.incarnation_id = req.incarnation_id();
  // A registration is proof of life: without this a broker fenced for missed heartbeats would
  // be fenced again right after it re-registers (its last heartbeat is still the old one), and
  // fence/register would alternate.
  heartbeat_sink_(b.node_id);
  pb::MetadataBatch batch;
  *batch.add_records() = RegisterBrokerRecordOf(b);
  bool rejoin_changes = false;
  // A new incarnation of a known broker: it restarted, and may hold less than it reported
  // durable before. It leaves the ISRs it is not the last member of, and partitions it led there
  // get a new leader, in the same batch (RejoinRecords), so no election can pick it before its
  // own fetches showed what it holds.
  if (auto it = working_.brokers.find(b.node_id);
      it != working_.brokers.end() && it->second.incarnation_id != b.incarnation_id) {
    std::vector<pb::MetadataRecord> rejoin = RejoinRecords(working_, b.node_id);
    if (!rejoin.empty()) {
      spdlog::info("controller {}: broker {} restarted (new incarnation): {} partition changes",
                   config_.node_id.value(), b.node_id.value(), rejoin.size());
    }
    rejoin_changes = !rejoin.empty();
    for (pb::MetadataRecord& r : rejoin) *batch.add_records() = std::move(r);
  }
  Propose(
      batch,
      [done = std::move(done)](const Status& st) {
        done({{"", TopicOpErrorOf(st, TopicOpError::kInvalidRequest),
               st.ok() ? "" : st.message()}});
      },
      rejoin_changes);
}

void QuorumController::ExecuteControlledShutdown(const pb::ForwardControlledShutdown& req,
                                                 ResultsCallback done) {
  NodeId node(req.node_id());
  auto it = working_.brokers.find(node);
  if (it == working_.brokers.end() || it->second.incarnation_id != req.incarnation_id()) {
    done({{"", TopicOpError::kInvalidRequest,
           "controlled shutdown of broker " + std::to_string(req.node_id()) +
               ": not registered with this incarnation"}});
    return;
  }
  std::vector<pb::MetadataRecord> records = ControlledShutdownRecords(working_, node);
  if (records.empty()) return done({{"", TopicOpError::kNone, ""}});  // fenced, leads nothing
  pb::MetadataBatch batch;
  for (pb::MetadataRecord& r : records) *batch.add_records() = std::move(r);
  spdlog::info("controller {}: controlled shutdown of broker {}: {} records",
               config_.node_id.value(), node.value(), batch.records_size());
  Propose(batch, [this, node, done = std::move(done)](const Status& st) {
    // The active controller itself is going away: hand the Raft leadership to another live
    // voter now rather than leave the quorum an election timeout without a controller.
    if (st.ok() && node == config_.node_id && driver_.IsLeader()) {
      for (const NodeId voter : driver_.raft().configuration().voters) {
        auto b = working_.brokers.find(voter);
        if (voter == node || b == working_.brokers.end() || b->second.fenced) continue;
        Status moved = driver_.TransferLeadership(voter);
        spdlog::info("controller {}: handing the active controller to node {}: {}",
                     config_.node_id.value(), voter.value(), moved.ToString());
        break;
      }
    }
    done({{"", TopicOpErrorOf(st, TopicOpError::kInvalidRequest), st.ok() ? "" : st.message()}});
  });
}

void QuorumController::ExecuteElectLeaders(const pb::ForwardElectLeaders& req,
                                           ResultsCallback done) {
  ElectionTargets targets;
  for (const v1::TopicPartitions& t : req.targets()) {
    auto& partitions = targets[t.topic()];
    partitions.insert(partitions.end(), t.partitions().begin(), t.partitions().end());
  }
  std::vector<pb::MetadataRecord> records = PreferredLeaderRecords(
      working_, PlanPreferredElection(working_, targets), kMaxElectionsPerBatch);
  if (records.empty()) return done({{"", TopicOpError::kNone, ""}});
  pb::MetadataBatch batch;
  for (pb::MetadataRecord& r : records) *batch.add_records() = std::move(r);
  Propose(batch, [done = std::move(done)](const Status& st) {
    done({{"", TopicOpErrorOf(st, TopicOpError::kInvalidRequest), st.ok() ? "" : st.message()}});
  });
}

void QuorumController::ExecuteAllocateProducerIds(const pb::ForwardAllocateProducerIds& req,
                                                  ResultsCallback done) {
  // Blocks proposed but not applied yet count as given: two requests in a row get two blocks.
  const int64_t first = std::max(working_.next_producer_id, proposed_producer_ids_end_);
  if (first > INT64_MAX - kProducerIdBlockSize) {
    return done({{"", TopicOpError::kInvalidRequest, "producer ids are exhausted"}});
  }
  proposed_producer_ids_end_ = first + kProducerIdBlockSize;
  pb::MetadataBatch batch;
  pb::ProducerIdsRecord* r = batch.add_records()->mutable_producer_ids();
  r->set_node_id(req.node_id());
  r->set_first_id(first);
  r->set_count(kProducerIdBlockSize);
  Propose(batch, [first, done = std::move(done)](const Status& st) {
    TopicOpResult r{"", TopicOpErrorOf(st, TopicOpError::kInvalidRequest),
                    st.ok() ? "" : st.message()};
    if (st.ok()) {
      r.producer_ids_first = first;
      r.producer_ids_count = kProducerIdBlockSize;
    }
    done({std::move(r)});
  });
}

}  // namespace rill::broker
