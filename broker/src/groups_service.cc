#include "groups_service.h"

namespace rill::broker {

namespace {
GroupCoordinator::Done FinishOk(grpc::ServerUnaryReactor* reactor) {
  return [reactor] { reactor->Finish(grpc::Status::OK); };
}
}  // namespace

grpc::ServerUnaryReactor* GroupsService::GroupHeartbeat(grpc::CallbackServerContext* context,
                                                        const v1::GroupHeartbeatRequest* request,
                                                        v1::GroupHeartbeatResponse* response) {
  auto* reactor = context->DefaultReactor();
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
