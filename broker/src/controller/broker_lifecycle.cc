#include "broker_lifecycle.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <vector>

#include "metadata_image.h"
#include "rill/internal/v1/metadata.pb.h"
#include "rill/internal/v1/raft.pb.h"

namespace rill::broker {

namespace pb = internal::v1;
using Results = std::vector<TopicOpResult>;

BrokerLifecycle::BrokerLifecycle(const ControllerConfig& config, RaftDriver& driver,
                                 const MetadataImage& working, QuorumController& operations)
    : config_(config), driver_(driver), working_(working), operations_(operations) {}

void BrokerLifecycle::RecordHeartbeat(NodeId id) { last_heartbeat_tick_[id] = driver_.ticks(); }

void BrokerLifecycle::Tick() {
  const raft::RaftNode& raft = driver_.raft();
  const bool leader = driver_.IsLeader();
  // Register this broker once a leader exists (and again if its address changed).
  // A learner hears of the leader only once the leader replicates to it, which it does once the
  // registration is committed: it registers through the voters in turn (see
  // QuorumController::Execute).
  if (!shutting_down_ && !registration_in_flight_ && driver_.ticks() >= next_registration_tick_ &&
      (raft.leader() != raft::kNoNode || raft.is_learner()) && !SelfRegistered()) {
    registration_in_flight_ = true;
    pb::ForwardRequest op;
    auto* r = op.mutable_register_broker();
    r->set_node_id(config_.self.node_id.value());
    r->set_host(config_.self.host);
    r->set_port(config_.self.port);
    r->set_internal_host(config_.self.InternalHost());
    r->set_internal_port(config_.self.internal_port);
    r->set_rack(config_.self.rack);
    r->set_incarnation_id(config_.self.incarnation_id);
    operations_.Execute(
        op,
        [this](Results results) {
          registration_in_flight_ = false;
          if (!results.empty() && results[0].error != TopicOpError::kNone) {
            spdlog::info("controller {}: broker registration not done yet: {}",
                         config_.node_id.value(), results[0].message);
            next_registration_tick_ = driver_.ticks() + config_.heartbeat_ticks * 2 + 1;
          } else if (driver_.raft().is_learner()) {
            // Committed on the leader; this node's image shows it once the leader replicates
            // the record here. Give it an election timeout before registering again.
            next_registration_tick_ = driver_.ticks() + config_.election_ticks;
          }
        },
        false);
  }
  // Broker liveness: the leader tracks heartbeats and fences; the others send them.
  if (!leader && raft.role() == raft::Role::kFollower && raft.leader() != raft::kNoNode &&
      raft.leader() != config_.node_id) {
    previous_leader_ = raft.leader();
    const uint64_t since = static_cast<uint64_t>(std::max(0, raft.ticks_since_leader_heard()));
    previous_leader_heard_tick_ = driver_.ticks() - std::min(driver_.ticks(), since);
  }
  if (leader) {
    if (!was_leader_) {
      was_leader_ = true;
      last_heartbeat_tick_.clear();
      for (const auto& [id, b] : working_.brokers) last_heartbeat_tick_[id] = driver_.ticks();
      // The previous leader's session runs from when this node last heard from it, if that
      // was within a session timeout and two election timeouts (else this node was cut off
      // itself, and knows nothing of the old leader's last contact with the others).
      const uint64_t window = SessionTicks() + 2 * static_cast<uint64_t>(config_.election_ticks);
      auto prev = last_heartbeat_tick_.find(previous_leader_);
      if (prev != last_heartbeat_tick_.end() && previous_leader_ != config_.self.node_id &&
          driver_.ticks() - previous_leader_heard_tick_ <= window) {
        prev->second = previous_leader_heard_tick_;
        spdlog::info("controller {}: active; node {}, the previous leader, last heard from {} ms ago",
                     config_.node_id.value(), previous_leader_.value(),
                     (driver_.ticks() - previous_leader_heard_tick_) * config_.tick_ms);
      }
      previous_leader_ = NodeId(-1);
      next_rebalance_tick_ = driver_.ticks() + RebalanceTicks();
    }
    last_heartbeat_tick_[config_.self.node_id] = driver_.ticks();
    // Both compute partition changes from the applied image: not while a restarted broker's
    // registration is about to take it out of ISRs (QuorumController::Propose).
    const bool rejoin = operations_.rejoin_pending();
    if (!repair_in_flight_ && !rejoin) MaybeFenceAndElect();
    if (!repair_in_flight_ && !rebalance_in_flight_ && !rejoin && config_.auto_leader_rebalance &&
        driver_.ticks() >= next_rebalance_tick_) {
      next_rebalance_tick_ = driver_.ticks() + RebalanceTicks();
      MaybeRebalanceLeaders();
    }
  } else {
    was_leader_ = false;
    if (!shutting_down_ && raft.leader() != raft::kNoNode && !heartbeat_in_flight_ &&
        driver_.ticks() >= next_heartbeat_tick_) {
      heartbeat_in_flight_ = true;
      pb::ForwardRequest op;
      op.mutable_broker_heartbeat()->set_node_id(config_.self.node_id.value());
      operations_.Execute(
          op,
          [this](Results results) {
            heartbeat_in_flight_ = false;
            // A heartbeat that did not arrive (the controller moved or stopped, or it timed out)
            // is retried soon, at the leader this node knows by then.
            const bool arrived = !results.empty() && results[0].error == TopicOpError::kNone;
            next_heartbeat_tick_ =
                driver_.ticks() + (arrived ? std::max<uint64_t>(1, SessionTicks() / 3)
                                           : std::max<uint64_t>(1, config_.heartbeat_ticks));
          },
          false);
    }
  }
}

void BrokerLifecycle::MaybeFenceAndElect() {
  std::set<NodeId> fence;
  for (const auto& [id, b] : working_.brokers) {
    if (b.fenced || id == config_.self.node_id) continue;
    auto [it, inserted] = last_heartbeat_tick_.emplace(id, driver_.ticks());
    if (driver_.ticks() - it->second > SessionTicks()) fence.insert(id);
  }
  // Without a fencing, scan for leaderless partitions only now and then.
  if (fence.empty() && driver_.ticks() % 10 != 0) return;
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
  operations_.Propose(batch, [this](const Status& st) {
    repair_in_flight_ = false;
    if (!st.ok()) {
      spdlog::info("controller {}: fencing/leader election not applied: {}",
                   config_.node_id.value(), st.ToString());
    }
  });
}

void BrokerLifecycle::MaybeRebalanceLeaders() {
  // Each move makes the partition's producers and consumers look up the new leader, so a round
  // moves a bounded number; the next round comes a rebalance interval later.
  constexpr size_t kMaxMovesPerRound = 100;
  std::vector<pb::MetadataRecord> records = PreferredLeaderRecords(
      working_, PlanPreferredElection(working_, {}), kMaxMovesPerRound);
  if (records.empty()) return;
  spdlog::info("controller {}: moving {} partition leaderships back to their preferred replicas",
               config_.node_id.value(), records.size());
  pb::MetadataBatch batch;
  for (pb::MetadataRecord& r : records) *batch.add_records() = std::move(r);
  rebalance_in_flight_ = true;
  operations_.Propose(batch, [this](const Status& st) {
    rebalance_in_flight_ = false;
    if (!st.ok()) {
      spdlog::info("controller {}: preferred-leader election not applied: {}",
                   config_.node_id.value(), st.ToString());
    }
  });
}

bool BrokerLifecycle::SelfRegistered() const {
  auto it = working_.brokers.find(config_.self.node_id);
  if (it == working_.brokers.end()) return false;
  const BrokerRegistration& b = it->second;
  return !b.fenced && b.host == config_.self.host && b.port == config_.self.port &&
         b.InternalHost() == config_.self.InternalHost() &&
         b.internal_port == config_.self.internal_port && b.rack == config_.self.rack &&
         b.incarnation_id == config_.self.incarnation_id;
}

}  // namespace rill::broker
