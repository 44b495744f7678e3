#pragma once

// RaftTransport: carries a controller's outgoing Raft messages to its peers over
// rill.internal.v1.Raft/Step, and its forwarded admin operations over Raft/Forward.
//
// Peers are the voters given at construction plus any added later with SetPeer (the learners:
// brokers that are not controllers, found in the metadata's broker registrations).
//
// One sender thread per peer drains that peer's queue and sends what it holds as one
// RaftMessageBatch per call (bounded by kMaxBatchBytes). Queues are bounded
// (max_queued_messages per peer): when one is full new messages are dropped, which Raft
// tolerates (it resends). A failed call drops its batch for the same reason.
//
// Thread-safety: Send and Forward may be called from any thread. Stop() joins the sender
// threads, cancels forwarded calls in flight and waits for their callbacks.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "controller.h"
#include "rill/internal/v1/raft.grpc.pb.h"
#include "rill/replication/raft_types.h"

namespace rill::broker {

class RaftTransport {
 public:
  static constexpr size_t kMaxBatchBytes = 4u << 20;
  static constexpr int kCallTimeoutMs = 2000;

  // `voters` holds every voter's internal address; the entry of `self` is ignored.
  RaftTransport(NodeId self, const std::vector<VoterAddress>& voters,
                size_t max_queued_messages = 4096);
  ~RaftTransport();

  void Start();
  void Stop();

  // Adds a peer at `host:port`, or points a known one there (a restarted broker may listen on
  // another port). Messages already queued for it are kept. No-op once stopping.
  void SetPeer(NodeId id, const std::string& host, int32_t port);
  // True when `id` is a peer (a voter or a learner added with SetPeer).
  bool HasPeer(NodeId id) const;

  // Queues `messages` for their destinations. Never blocks; drops messages to unknown peers
  // and to full queues.
  void Send(std::vector<raft::Message> messages);

  using ForwardCallback =
      std::function<void(const grpc::Status&, internal::v1::ForwardResponse response)>;
  // Calls Raft/Forward on `peer`; `done` runs on a gRPC thread (or inline when `peer` is
  // unknown or the transport is stopped) exactly once.
  void Forward(NodeId peer, internal::v1::ForwardRequest request, int timeout_ms,
               ForwardCallback done);

  // Messages dropped so far (full queues, failed calls), for logs and tests.
  uint64_t dropped() const;

 private:
  struct Peer {
    NodeId id;
    std::string target;                              // guarded by mu_
    std::shared_ptr<internal::v1::Raft::Stub> stub;  // guarded by mu_ (copied to call)
    std::deque<raft::Message> queue;                 // guarded by mu_
    std::thread thread;
  };
  static std::shared_ptr<internal::v1::Raft::Stub> MakeStub(const std::string& target);
  void StartSenderLocked(Peer* peer);  // mu_ held
  void RunSender(Peer* peer);

  NodeId self_;
  size_t max_queued_messages_;
  mutable std::mutex mu_;
  std::map<NodeId, std::unique_ptr<Peer>> peers_;  // guarded by mu_; entries never removed

  std::condition_variable cv_;
  bool started_ = false;
  bool stopping_ = false;
  uint64_t dropped_ = 0;
  // Forwarded calls in flight, cancelled by Stop().
  std::map<uint64_t, std::shared_ptr<grpc::ClientContext>> forwards_;
  uint64_t next_forward_id_ = 0;
  std::condition_variable forwards_cv_;
};

}  // namespace rill::broker
