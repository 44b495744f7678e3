#pragma once

// BrokerLifecycle: this node's broker registration and the liveness of every broker
// (docs/ARCHITECTURE.md §7 "Liveness").
//
// Every node registers its broker (a RegisterBroker operation) once a leader exists, and again
// whenever its address changes or it finds itself fenced; a learner, which knows no leader until
// it is registered, asks the voters in turn (QuorumController). A node that is not the leader
// heartbeats to the active controller every third of broker_session_timeout_ms. The leader
// tracks heartbeats (not replicated: a new leader first grants every broker a full session),
// fences a broker silent for its session timeout and, in the same batch, moves leadership of
// that broker's partitions to the first live ISR replica (FenceAndElect, clean election only);
// now and then it also elects leaders for partitions left without one, and (auto leader
// rebalance) moves leadership back to each partition's first replica once it is live and in the
// ISR, so leaders stay balanced after restarts.
//
// Owns: the registration and heartbeat state of this node, and (on the leader) the last
// heartbeat tick of every broker. Reads the working image it is given; never changes it.
//
// Thread-safety: driver thread only (constructed before the driver thread starts).

#include <algorithm>
#include <cstdint>
#include <map>

#include "controller.h"
#include "quorum_controller.h"
#include "raft_driver.h"

namespace rill::broker {

class BrokerLifecycle {
 public:
  // `config`, `driver`, `working` (the image as of the last applied entry) and `operations`
  // must outlive this.
  BrokerLifecycle(const ControllerConfig& config, RaftDriver& driver, const MetadataImage& working,
                  QuorumController& operations);

  // Registers this broker when needed; on the leader, fences silent brokers and elects
  // leaders, elsewhere sends a heartbeat when one is due. After each round of Ready handling.
  void Tick();
  // The active controller heard from broker `id`.
  void RecordHeartbeat(NodeId id);
  // This broker is shutting down (controlled shutdown): it no longer registers itself again once
  // fenced, and no longer heartbeats.
  void StopRegistering() { shutting_down_ = true; }

 private:
  // Leader: fences brokers whose session expired and elects leaders for partitions without a
  // live one.
  void MaybeFenceAndElect();
  // Leader: moves leadership back to preferred replicas (auto_leader_rebalance), a bounded number
  // of partitions per round.
  void MaybeRebalanceLeaders();
  bool SelfRegistered() const;
  uint64_t RebalanceTicks() const {
    return std::max<int64_t>(1, config_.leader_rebalance_interval_ms / config_.tick_ms);
  }
  uint64_t SessionTicks() const {
    return std::max<int64_t>(1, config_.broker_session_timeout_ms / config_.tick_ms);
  }

  const ControllerConfig& config_;
  RaftDriver& driver_;
  const MetadataImage& working_;
  QuorumController& operations_;

  bool registration_in_flight_ = false;
  uint64_t next_registration_tick_ = 0;
  // Broker liveness, kept by the leader only.
  bool was_leader_ = false;
  std::map<NodeId, uint64_t> last_heartbeat_tick_;
  // While a follower: the controller leader it last knew and the tick it last heard from it.
  // That node's Raft messages were its proof of life, so once this node leads, the old leader's
  // session counts from then rather than from this node's activation (a combined node killed
  // while it led the quorum is fenced a session timeout after it died, not after the election).
  NodeId previous_leader_{-1};
  uint64_t previous_leader_heard_tick_ = 0;
  bool repair_in_flight_ = false;
  bool heartbeat_in_flight_ = false;
  uint64_t next_heartbeat_tick_ = 0;
  bool shutting_down_ = false;
  bool rebalance_in_flight_ = false;
  uint64_t next_rebalance_tick_ = 0;
};

}  // namespace rill::broker
