#pragma once

// QuorumController: the controller's operations (docs/ARCHITECTURE.md §7 "Operations").
//
// Runs each operation (a ForwardRequest: create/delete topics, create partitions, alter
// configs, register a broker, a broker heartbeat) on the driver thread. On the active controller
// it validates the operation against the working image (names, '.'/'_' collisions, counts,
// replication factor against unfenced brokers, config keys and values), turns it into one
// MetadataBatch per outcome and proposes it through the RaftDriver; the results come back when
// the entry is applied and the image holding it is published. On another node it forwards the
// operation to the leader over Raft/Forward (never twice); with no leader known it waits for one
// (bounded in count and time). The first leader of an empty log also proposes the cluster id.
//
// Owns: the operations waiting for a leader, and the round-robin over the voters that a learner
// uses to register. Reads the working image it is given; never changes it.
//
// Thread-safety: Submit may be called from any thread (it posts to the driver). Everything else
// runs on the driver thread, and so do the result callbacks.

#include <cstdint>
#include <deque>
#include <functional>

#include "controller.h"
#include "raft_driver.h"
#include "rill/internal/v1/metadata.pb.h"
#include "rill/internal/v1/raft.pb.h"

namespace rill::broker {

class QuorumController {
 public:
  using ResultsCallback = Controller::ResultsCallback;
  // Called with the id of each broker whose heartbeat this (active) controller receives.
  using HeartbeatSink = std::function<void(NodeId)>;

  // `config`, `driver` and `working` (the image as of the last applied entry) must outlive this.
  QuorumController(const ControllerConfig& config, RaftDriver& driver, const MetadataImage& working,
                   HeartbeatSink heartbeat_sink);

  // Runs `op` on the driver thread; `forwarded` ops (received over Raft/Forward) are never
  // forwarded again. `done` gets one result per topic named. Any thread.
  void Submit(internal::v1::ForwardRequest op, ResultsCallback done, bool forwarded);

  // ---- driver thread ----
  // Runs `op` now: the active controller validates and proposes it; another node forwards it
  // to the leader (unless `forwarded`: then NOT_COORDINATOR) or, with no leader known, queues it
  // until one is. Every failure is a per-topic result; `done` runs exactly once.
  void Execute(const internal::v1::ForwardRequest& op, ResultsCallback done, bool forwarded);
  // Bootstrap: the first leader of a new metadata log proposes the cluster id (first one wins).
  void MaybeBootstrapClusterId();
  // Fails the operations that waited for a leader too long.
  void ExpireWaiting();
  // Runs the operations that waited for a leader once there is an active controller to take
  // them (this node, or a known leader elsewhere).
  void RunWaiting();
  // Fails every operation waiting for a leader, or deferred behind partition changes, with `st`
  // (the driver stops or failed).
  void FailWaiting(const Status& st);

  // Proposes `batch`, counting its partition changes until they are applied (or fail).
  // PartitionChangeRecords are computed from the applied image, so a later one computed while
  // another is in flight would undo it when applied. A restarted broker's registration (its
  // RejoinRecords take it out of ISRs) therefore waits until no partition change is in flight,
  // and ISR changes, controlled shutdowns, elections and the lifecycle's repairs wait while a
  // registration waits or is in flight (docs/ARCHITECTURE.md, Restarts).
  void Propose(const internal::v1::MetadataBatch& batch, std::function<void(const Status&)> done,
               bool rejoin = false);
  // A restarted broker's registration waits or is in flight: partition changes wait for it.
  bool rejoin_pending() const { return rejoin_waiting_ || rejoins_in_flight_ > 0; }

 private:
  void ExecuteCreateTopics(const internal::v1::ForwardRequest& op, ResultsCallback done);
  void ExecuteDeleteTopics(const v1::DeleteTopicsRequest& req, ResultsCallback done);
  void ExecuteCreatePartitions(const v1::CreatePartitionsRequest& req, ResultsCallback done);
  void ExecuteAlterConfigs(const v1::AlterConfigsRequest& req, ResultsCallback done);
  void ExecuteAlterPartition(const internal::v1::ForwardAlterPartition& req,
                             ResultsCallback done);
  void ExecuteRegisterBroker(const internal::v1::ForwardRegisterBroker& req, ResultsCallback done);
  void ExecuteControlledShutdown(const internal::v1::ForwardControlledShutdown& req,
                                 ResultsCallback done);
  void ExecuteElectLeaders(const internal::v1::ForwardElectLeaders& req, ResultsCallback done);
  void ExecuteAllocateProducerIds(const internal::v1::ForwardAllocateProducerIds& req,
                                  ResultsCallback done);
  // Whether `op` must wait for partition changes in flight (see Propose); if so it is queued.
  bool DeferredForPartitionChanges(const internal::v1::ForwardRequest& op, ResultsCallback& done,
                                   bool forwarded);
  void RunDeferred();

  const ControllerConfig& config_;
  RaftDriver& driver_;
  const MetadataImage& working_;
  HeartbeatSink heartbeat_sink_;

  // ---- driver thread only ----
  size_t next_voter_to_ask_ = 0;
  // End of the last producer id block this node proposed (docs/IDEMPOTENCE.md, Producer ids).
  int64_t proposed_producer_ids_end_ = 0;  // a learner's registration round-robin over the voters
  struct Waiting {
    uint64_t deadline_tick;
    RaftDriver::Task task;
  };
  std::deque<Waiting> waiting_for_leader_;  // at most kMaxWaitingForLeader
  Term cluster_id_proposed_term_{0};
  int partition_changes_in_flight_ = 0;  // proposed batches with PartitionChangeRecords
  int rejoins_in_flight_ = 0;            // of which restarted brokers' registrations
  bool rejoin_waiting_ = false;          // a restarted broker's registration is deferred
  struct Deferred {
    internal::v1::ForwardRequest op;
    ResultsCallback done;
    bool forwarded;
  };
  std::deque<Deferred> deferred_;
};

}  // namespace rill::broker
