#pragma once

// rill.v1.Admin and rill.v1.Metadata over gRPC's callback API, on top of the controller: topic
// changes are forwarded to it and answered when committed; descriptions come from the latest
// metadata image plus the local logs (offsets, sizes).

#include "rill/v1/admin.grpc.pb.h"
#include "rill/v1/metadata.grpc.pb.h"
#include "api/service_context.h"

namespace rill::broker {

class AdminService final : public v1::Admin::CallbackService {
 public:
  explicit AdminService(ServiceContext* ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* CreateTopics(grpc::CallbackServerContext*,
                                         const v1::CreateTopicsRequest*,
                                         v1::CreateTopicsResponse*) override;
  grpc::ServerUnaryReactor* DeleteTopics(grpc::CallbackServerContext*,
                                         const v1::DeleteTopicsRequest*,
                                         v1::DeleteTopicsResponse*) override;
  grpc::ServerUnaryReactor* ListTopics(grpc::CallbackServerContext*, const v1::ListTopicsRequest*,
                                       v1::ListTopicsResponse*) override;
  grpc::ServerUnaryReactor* DescribeTopics(grpc::CallbackServerContext*,
                                           const v1::DescribeTopicsRequest*,
                                           v1::DescribeTopicsResponse*) override;
  grpc::ServerUnaryReactor* CreatePartitions(grpc::CallbackServerContext*,
                                             const v1::CreatePartitionsRequest*,
                                             v1::CreatePartitionsResponse*) override;
  grpc::ServerUnaryReactor* DescribeConfigs(grpc::CallbackServerContext*,
                                            const v1::DescribeConfigsRequest*,
                                            v1::DescribeConfigsResponse*) override;
  grpc::ServerUnaryReactor* AlterConfigs(grpc::CallbackServerContext*,
                                         const v1::AlterConfigsRequest*,
                                         v1::AlterConfigsResponse*) override;
  grpc::ServerUnaryReactor* DescribeCluster(grpc::CallbackServerContext*,
                                            const v1::DescribeClusterRequest*,
                                            v1::DescribeClusterResponse*) override;
  grpc::ServerUnaryReactor* ElectLeaders(grpc::CallbackServerContext*,
                                         const v1::ElectLeadersRequest*,
                                         v1::ElectLeadersResponse*) override;

 private:
  ServiceContext* ctx_;
};

class MetadataService final : public v1::Metadata::CallbackService {
 public:
  explicit MetadataService(ServiceContext* ctx) : ctx_(ctx) {}
  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext*, const v1::MetadataRequest*,
                                v1::MetadataResponse*) override;

 private:
  ServiceContext* ctx_;
};

}  // namespace rill::broker
