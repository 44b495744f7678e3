#include "raft_service.h"

#include <grpcpp/grpcpp.h>

#include <utility>
#include <vector>

#include "raft_codec.h"

namespace rill::broker {

namespace pb = internal::v1;

RaftService::RaftService(StepHandler step, ForwardHandler forward)
    : step_(std::move(step)), forward_(std::move(forward)) {}

grpc::ServerUnaryReactor* RaftService::Step(grpc::CallbackServerContext* context,
                                            const pb::RaftMessageBatch* request,
                                            pb::RaftAck* response) {
  step_(*request);
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* RaftService::Forward(grpc::CallbackServerContext* context,
                                               const pb::ForwardRequest* request,
                                               pb::ForwardResponse* response) {
  auto* reactor = context->DefaultReactor();
  forward_(*request, [reactor, response](std::vector<TopicOpResult> results) {
    EncodeForwardResults(results, response);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

}  // namespace rill::broker
