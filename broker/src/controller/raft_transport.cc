#include "raft_transport.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <chrono>

#include "raft_codec.h"
#include "rill/proto/thread_name.h"

namespace rill::broker {

namespace pb = internal::v1;

std::shared_ptr<pb::Raft::Stub> RaftTransport::MakeStub(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // Reconnect quickly after a peer restarts: elections depend on it.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return pb::Raft::NewStub(
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
}

RaftTransport::RaftTransport(NodeId self, const std::vector<VoterAddress>& voters,
                             size_t max_queued_messages)
    : self_(self), max_queued_messages_(max_queued_messages) {
  for (const VoterAddress& v : voters) {
    if (v.node_id == self) continue;
    auto peer = std::make_unique<Peer>();
    peer->id = v.node_id;
    peer->target = v.host + ":" + std::to_string(v.port);
    peer->stub = MakeStub(peer->target);
    peers_.emplace(v.node_id, std::move(peer));
  }
}

RaftTransport::~RaftTransport() { Stop(); }

void RaftTransport::StartSenderLocked(Peer* peer) {
  peer->thread = std::thread([this, peer] {
    SetCurrentThreadName("rill-raft-send");
    RunSender(peer);
  });
}

void RaftTransport::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stopping_) return;
  started_ = true;
  for (auto& [id, peer] : peers_) StartSenderLocked(peer.get());
}

void RaftTransport::SetPeer(NodeId id, const std::string& host, int32_t port) {
  if (id == self_) return;
  const std::string target = host + ":" + std::to_string(port);
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  auto it = peers_.find(id);
  if (it != peers_.end()) {
    if (it->second->target == target) return;
    spdlog::info("raft: node {} moved from {} to {}", id.value(), it->second->target, target);
    it->second->target = target;
    it->second->stub = MakeStub(target);
    return;
  }
  auto peer = std::make_unique<Peer>();
  peer->id = id;
  peer->target = target;
  peer->stub = MakeStub(target);
  Peer* p = peer.get();
  peers_.emplace(id, std::move(peer));
  spdlog::info("raft: added peer node {} at {}", id.value(), target);
  if (started_) StartSenderLocked(p);
}

bool RaftTransport::HasPeer(NodeId id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return peers_.count(id) > 0;
}

void RaftTransport::Stop() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
    for (auto& [id, ctx] : forwards_) ctx->TryCancel();
    forwards_cv_.wait(lock, [this] { return forwards_.empty(); });
  }
  // No peer is added once stopping_ is set, so the map is stable here.
  for (auto& [id, peer] : peers_) {
    if (peer->thread.joinable()) peer->thread.join();
  }
}

void RaftTransport::Send(std::vector<raft::Message> messages) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  for (raft::Message& m : messages) {
    auto it = peers_.find(m.to);
    if (it == peers_.end() || it->second->queue.size() >= max_queued_messages_) {
      ++dropped_;
      continue;
    }
    it->second->queue.push_back(std::move(m));
  }
  cv_.notify_all();
}

uint64_t RaftTransport::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

void RaftTransport::RunSender(Peer* peer) {
  bool last_failed = false;
  while (true) {
    pb::RaftMessageBatch batch;
    std::shared_ptr<pb::Raft::Stub> stub;
    std::string target;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !peer->queue.empty(); });
      if (stopping_) return;
      stub = peer->stub;
      target = peer->target;
      size_t bytes = 0;
      while (!peer->queue.empty() && (bytes < kMaxBatchBytes || batch.messages_size() == 0)) {
        pb::RaftMessage* m = batch.add_messages();
        EncodeRaftMessage(peer->queue.front(), m);
        peer->queue.pop_front();
        bytes += m->ByteSizeLong();
      }
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(kCallTimeoutMs));
    pb::RaftAck ack;
    grpc::Status st = stub->Step(&ctx, batch, &ack);
    if (!st.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        dropped_ += batch.messages_size();
      }
      // Log the first failure of a run of failures, not each one.
      if (!last_failed) {
        spdlog::debug("raft: sending to node {} at {} failed: {}", peer->id.value(), target,
                      st.error_message());
      }
    }
    last_failed = !st.ok();
  }
}

void RaftTransport::Forward(NodeId peer_id, pb::ForwardRequest request, int timeout_ms,
                            ForwardCallback done) {
  struct Call {
    std::shared_ptr<grpc::ClientContext> ctx = std::make_shared<grpc::ClientContext>();
    pb::ForwardRequest request;
    pb::ForwardResponse response;
  };
  auto call = std::make_shared<Call>();
  call->request = std::move(request);
  call->ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  uint64_t id;
  std::shared_ptr<pb::Raft::Stub> stub;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_) {
      lock.unlock();
      done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "controller is stopping"), {});
      return;
    }
    auto it = peers_.find(peer_id);
    if (it == peers_.end()) {
      lock.unlock();
      done(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "node " + std::to_string(peer_id.value()) + " is not a known peer"),
           {});
      return;
    }
    stub = it->second->stub;
    id = next_forward_id_++;
    forwards_.emplace(id, call->ctx);
  }
  stub->async()->Forward(call->ctx.get(), &call->request, &call->response,
                         [this, call, stub, id, done = std::move(done)](grpc::Status st) {
                           done(st, std::move(call->response));
                           std::lock_guard<std::mutex> lock(mu_);
                           forwards_.erase(id);
                           forwards_cv_.notify_all();
                         });
}

}  // namespace rill::broker
