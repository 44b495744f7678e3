#pragma once

// rill.v1.Groups over gRPC's callback API: a thin adapter onto GroupCoordinator. Handlers never
// wait for durability on a gRPC thread; they finish from the coordinator's completion. The
// coordinator fills a response's data and hands back its outcome (groups::GroupStatus); this
// service writes every error field of a group response, through api/wire_errors.h.

#include "groups/group_coordinator.h"
#include "http/metrics.h"
#include "rill/v1/groups.grpc.pb.h"

namespace rill::broker {

class GroupsService final : public v1::Groups::CallbackService {
 public:
  // `coordinator` and `metrics` (every call is counted there: requests, errors, latency) must
  // outlive the service.
  GroupsService(GroupCoordinator* coordinator, Metrics* metrics)
      : coordinator_(coordinator), metrics_(metrics) {}

  grpc::ServerUnaryReactor* GroupHeartbeat(grpc::CallbackServerContext* context,
                                           const v1::GroupHeartbeatRequest* request,
                                           v1::GroupHeartbeatResponse* response) override;
  grpc::ServerUnaryReactor* CommitOffsets(grpc::CallbackServerContext* context,
                                          const v1::CommitOffsetsRequest* request,
                                          v1::CommitOffsetsResponse* response) override;
  grpc::ServerUnaryReactor* FetchOffsets(grpc::CallbackServerContext* context,
                                         const v1::FetchOffsetsRequest* request,
                                         v1::FetchOffsetsResponse* response) override;
  grpc::ServerUnaryReactor* ListGroups(grpc::CallbackServerContext* context,
                                       const v1::ListGroupsRequest* request,
                                       v1::ListGroupsResponse* response) override;
  grpc::ServerUnaryReactor* DescribeGroup(grpc::CallbackServerContext* context,
                                          const v1::DescribeGroupRequest* request,
                                          v1::DescribeGroupResponse* response) override;
  grpc::ServerUnaryReactor* ResetOffsets(grpc::CallbackServerContext* context,
                                         const v1::ResetOffsetsRequest* request,
                                         v1::ResetOffsetsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteGroup(grpc::CallbackServerContext* context,
                                        const v1::DeleteGroupRequest* request,
                                        v1::DeleteGroupResponse* response) override;

 private:
  GroupCoordinator* coordinator_;
  Metrics* metrics_;
};

}  // namespace rill::broker
