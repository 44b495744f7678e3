#include "api/groups_service.h"

#include <string>
#include <string_view>

namespace rill::broker {

namespace {
GroupCoordinator::Done FinishOk(grpc::ServerUnaryReactor* reactor) {
  return [reactor] { reactor->Finish(grpc::Status::OK); };
}

// The address part of a gRPC peer URI: "ipv4:127.0.0.1:5000" -> "127.0.0.1",
// "ipv6:[::1]:5000" -> "::1"; other schemes (unix:...) as they are.
std::string PeerHost(const std::string& peer) {
  std::string_view p = peer;
  if (p.starts_with("ipv4:")) {
    p.remove_prefix(5);
    return std::string(p.substr(0, p.rfind(':')));
  }
  if (p.starts_with("ipv6:")) {
    p.remove_prefix(5);
    if (p.starts_with("[")) {
      auto end = p.find(']');
      if (end != std::string_view::npos) return std::string(p.substr(1, end - 1));
    }
    return std::string(p);
  }
  return peer;
}
}  // namespace

grpc::ServerUnaryReactor* GroupsService::GroupHeartbeat(grpc::CallbackServerContext* context,
                                                        const v1::GroupHeartbeatRequest* request,
                                                        v1::GroupHeartbeatResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (request->client_host().empty()) {
    // As Kafka does: a member that does not name its host is shown with its connection's address.
    v1::GroupHeartbeatRequest named = *request;
    named.set_client_host(PeerHost(context->peer()));
    coordinator_->Heartbeat(named, response, FinishOk(reactor));
    return reactor;
  }
  coordinator_->Heartbeat(*request, response, FinishOk(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* GroupsService::CommitOffsets(grpc::CallbackServerContext* context,
                                                       const v1::CommitOffsetsRequest* request,
                                                       v1::CommitOffsetsResponse* response) {
  auto* reactor = context->DefaultReactor();
  coordinator_->CommitOffsets(*request, response, FinishOk(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* GroupsService::FetchOffsets(grpc::CallbackServerContext* context,
                                                      const v1::FetchOffsetsRequest* request,
                                                      v1::FetchOffsetsResponse* response) {
  auto* reactor = context->DefaultReactor();
  coordinator_->FetchOffsets(*request, response);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* GroupsService::ListGroups(grpc::CallbackServerContext* context,
                                                    const v1::ListGroupsRequest*,
                                                    v1::ListGroupsResponse* response) {
  auto* reactor = context->DefaultReactor();
  coordinator_->ListGroups(response);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* GroupsService::DescribeGroup(grpc::CallbackServerContext* context,
                                                       const v1::DescribeGroupRequest* request,
                                                       v1::DescribeGroupResponse* response) {
  auto* reactor = context->DefaultReactor();
  coordinator_->DescribeGroup(*request, response);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* GroupsService::ResetOffsets(grpc::CallbackServerContext* context,
                                                      const v1::ResetOffsetsRequest* request,
                                                      v1::ResetOffsetsResponse* response) {
  auto* reactor = context->DefaultReactor();
  coordinator_->ResetOffsets(*request, response, FinishOk(reactor));
  return reactor;
}

grpc::ServerUnaryReactor* GroupsService::DeleteGroup(grpc::CallbackServerContext* context,
                                                     const v1::DeleteGroupRequest* request,
                                                     v1::DeleteGroupResponse* response) {
  auto* reactor = context->DefaultReactor();
  coordinator_->DeleteGroup(*request, response, FinishOk(reactor));
  return reactor;
}

}  // namespace rill::broker
