#pragma once

// RaftService: the rill.internal.v1.Raft gRPC service that the controller's peers call
// (docs/ARCHITECTURE.md §7). An adapter only: Step hands the Raft messages to the driver's
// inbox; Forward runs an operation forwarded by another node on this one (which must be the
// active controller) and answers with its per-topic results.
//
// Thread-safety: the handlers run on gRPC threads and only call the handlers given at
// construction, which must be callable from any thread and never block. Owned by the
// controller; the broker shuts down the internal gRPC server before destroying it.

#include <functional>

#include "controller.h"
#include "rill/internal/v1/raft.grpc.pb.h"

namespace rill::broker {

class RaftService final : public internal::v1::Raft::CallbackService {
 public:
  using StepHandler = std::function<void(const internal::v1::RaftMessageBatch&)>;
  // Runs a forwarded operation; the callback runs once with its results, on any thread.
  using ForwardHandler =
      std::function<void(internal::v1::ForwardRequest, Controller::ResultsCallback)>;

  RaftService(StepHandler step, ForwardHandler forward);

  grpc::ServerUnaryReactor* Step(grpc::CallbackServerContext* context,
                                 const internal::v1::RaftMessageBatch* request,
                                 internal::v1::RaftAck* response) override;
  grpc::ServerUnaryReactor* Forward(grpc::CallbackServerContext* context,
                                    const internal::v1::ForwardRequest* request,
                                    internal::v1::ForwardResponse* response) override;

 private:
  StepHandler step_;
  ForwardHandler forward_;
};

}  // namespace rill::broker
