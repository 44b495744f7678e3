#pragma once

// RaftDriver: the controller's Raft driver (docs/ARCHITECTURE.md §4 `rill-controller`, §7).
//
// Owns the RaftNode, its DiskRaftStorage (the metadata log under metadata_dir), the
// RaftTransport to the peers and the `rill-controller` thread. The thread ticks the node every
// tick_ms, steps the messages peers sent, runs the tasks posted to it, and handles every Ready:
// persist (and fsync when Raft asks) before sending, install a snapshot from the leader, apply
// committed entries in log order, then snapshot and compact the log every
// snapshot_every_records applied entries. What the entries mean is its Callbacks' business: the
// driver hands them committed entries and snapshots, and completes each proposal with the
// outcome of its entry once Callbacks::Publish has published the state that holds it.
//
// A storage failure (write or fsync error) stops the driver from acting: it fails every pending
// proposal and every later task with that error (the state on disk is unknown; LevelDB's rule).
//
// Thread-safety: Deliver, Post and IsActive may be called from any thread; Stop from any thread
// but the driver's. Open, Recover and StartThread run on the thread that starts the controller,
// before the driver thread exists. Everything else, the Callbacks and the completions run on the
// driver thread only (during Open and Recover on the starting thread; in Stop, once the driver
// thread has ended, on the stopping thread). No lock guards the Raft node: it has one owner at
// a time.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controller.h"
#include "raft_transport.h"
#include "rill/internal/v1/raft.pb.h"
#include "rill/proto/status.h"
#include "rill/replication/raft.h"
#include "rill/replication/raft_storage.h"

namespace rill::broker {

class RaftDriver {
 public:
  // What the driver calls on its thread; implemented by the controller that owns it.
  class Callbacks {
   public:
    virtual ~Callbacks() = default;
    // Replaces the applied state with `snapshot` (loaded at start, or sent by the leader).
    // `origin` says where it came from, for the error message.
    virtual Status RestoreSnapshot(const raft::Snapshot& snapshot, const std::string& origin) = 0;
    // Applies one committed entry; the result is the outcome given to the entry's proposer.
    virtual Status ApplyEntry(const raft::Entry& entry) = 0;
    // The applied state serialised, for a snapshot at the last applied index.
    virtual std::string SnapshotData() const = 0;
    // Once per tick, after the driver expired its overdue proposals.
    virtual void OnTick() = 0;
    // After each round of Ready handling; may propose (what it proposes is handled at once).
    virtual void Housekeeping() = 0;
    // The driver stopped or failed with `status`: complete whatever waits on the callee's side
    // (after the driver failed its pending proposals).
    virtual void FailWaiting(const Status& status) = 0;
    // Publishes the applied state when it changed (`leader` is the Raft leader, kNoNode when
    // unknown). Proposals applied since the last call complete right after it.
    virtual void Publish(NodeId leader) = 0;
  };

  // A unit of work for the driver thread. It runs with OK, or with the error it must complete
  // its callbacks with (the controller stopped, or the metadata log failed).
  using Task = std::function<void(const Status&)>;

  struct Recovery {
    uint64_t snapshot_index = 0;  // of the snapshot loaded, 0 for none
    size_t log_entries = 0;       // entries loaded after it
    size_t voters = 0;
    bool voter = false;  // this node is a voter (else a learner)
  };

  // `config` and `callbacks` must outlive the driver.
  RaftDriver(const ControllerConfig& config, Callbacks* callbacks);
  ~RaftDriver();

  // Start, in three steps on the caller's thread: Open loads the metadata log (the snapshot
  // goes to Callbacks::RestoreSnapshot) and creates the node and the transport; Recover replays
  // the committed log (a quorum of one also elects itself and runs one Housekeeping, so its
  // cluster id and registration are committed before Start returns) and publishes; StartThread
  // hands everything to the driver thread.
  Status Open();
  Result<Recovery> Recover();
  Status StartThread();
  // Stops the thread and the transport; queued tasks run with an error, applied proposals
  // complete, pending ones and the callee's waiting ones fail (Callbacks::FailWaiting).
  void Stop();

  // Decodes peers' Raft messages and queues them for the driver (bounded; Raft resends what is
  // dropped). Any thread.
  void Deliver(const internal::v1::RaftMessageBatch& batch);
  // Queues `task` for the driver thread, or runs it here with the error that refused it
  // (stopping, or too many queued). Any thread.
  bool Post(Task task);
  // True when this node is the active controller (IsLeader). Any thread.
  bool IsActive() const { return active_.load(std::memory_order_acquire); }

  // ---- driver thread ----
  // Proposes `data`; `done` runs with the outcome of its application (Callbacks::ApplyEntry),
  // or why it was not applied (refused, leadership lost, timed out, snapshot, stopped).
  void Propose(std::string data, std::function<void(const Status&)> done);
  // Calls Raft/Forward on `peer`; see RaftTransport::Forward (the callback runs on a gRPC
  // thread).
  void Forward(NodeId peer, internal::v1::ForwardRequest request, int timeout_ms,
               RaftTransport::ForwardCallback done);
  // Every registered broker that is not a voter is a learner: the transport learns its
  // internal address and the Raft node replicates to it (any voter may lead next, so all of
  // them track the learners).
  void SyncLearners(const std::map<NodeId, BrokerRegistration>& brokers);

  // Leader only: hands the Raft leadership to voter `target` (raft::RaftNode::TransferLeadership).
  Status TransferLeadership(NodeId target) { return raft_->TransferLeadership(target); }

  const raft::RaftNode& raft() const { return *raft_; }
  // The active controller: the Raft leader once it has applied an entry of its own term (its
  // no-op). Before that its image may lack entries that earlier leaders committed, and anything
  // computed from it (a producer id block, a placement, a fencing decision) could contradict
  // them; KRaft's new leader waits the same way (docs/ARCHITECTURE.md §7, Operations).
  bool IsLeader() const {
    return raft_->role() == raft::Role::kLeader && applied_term_ == raft_->term();
  }
  // The Raft leader, caught up or not.
  bool IsRaftLeader() const { return raft_->role() == raft::Role::kLeader; }
  uint64_t ticks() const { return ticks_; }
  // Not OK once the metadata log failed.
  const Status& failed() const { return failed_; }

 private:
  void Run();
  Status ProcessReady();  // handles every Ready the node has
  Status MaybeSnapshot();
  void ExpireDeadlines();
  void FailPending(const Status& st);
  void FailOverwrittenProposals();
  void PublishAndComplete();
  bool IsVoter() const;

  const ControllerConfig& config_;
  Callbacks* callbacks_;

  // ---- driver thread only ----
  std::unique_ptr<raft::RaftLogStorage> storage_;
  std::unique_ptr<raft::RaftNode> raft_;
  std::unique_ptr<RaftTransport> transport_;
  size_t recovered_entries_ = 0;
  uint64_t applied_index_ = 0;  // Raft index of the last entry applied (or snapshot installed)
  Term applied_term_{0};        // and its term
  uint64_t snapshot_index_ = 0;
  struct Pending {
    Term term;
    uint64_t deadline_tick;
    std::function<void(const Status&)> done;
  };
  std::map<raft::LogIndex, Pending> pending_;     // proposals not applied yet, by index
  std::vector<std::function<void()>> completed_;  // applied proposals, run after Publish
  uint64_t ticks_ = 0;
  Status failed_;  // the storage failed: the node no longer persists or applies

  // ---- shared ----
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<raft::Message> inbox_;  // guarded by mu_
  std::deque<Task> tasks_;            // guarded by mu_
  bool started_ = false;              // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  std::thread thread_;
  std::atomic<bool> active_{false};
};

}  // namespace rill::broker
