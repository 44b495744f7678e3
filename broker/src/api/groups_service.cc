#include "api/groups_service.h"

#include <chrono>
#include <string>
#include <string_view>

#include "api/wire_errors.h"

namespace rill::broker {

namespace {
// Writes a group outcome into a message's error fields: the only place a group response gets
// its wire error (api/wire_errors.h).
template <typename Message>
void SetError(Message* m, const groups::GroupStatus& st) {
  m->set_error(WireError(st));
  m->set_error_message(st.message);
}

using Clock = std::chrono::steady_clock;

// Finishes the call once the coordinator has filled `response`'s data: writes the call's error
// and, for responses with per-partition entries (CommitOffsets' partitions, ResetOffsets'
// offsets), each entry's error; counts the call in `metrics` (an error when its outcome is not OK).
template <typename Response>
GroupCoordinator::Done Finish(grpc::ServerUnaryReactor* reactor, Response* response,
                              Metrics* metrics, Api api, Clock::time_point start) {
  return [reactor, response, metrics, api, start](GroupCallResult r) {
    SetError(response, r.status);
    metrics->RecordRequest(api, start, !r.status.ok());
    if constexpr (requires(Response * m) { m->mutable_partitions(0); }) {
      RILL_ASSERT(r.partitions.size() == static_cast<size_t>(response->partitions_size()),
                  "%zu partition outcomes for %d partitions", r.partitions.size(),
                  response->partitions_size());
      for (size_t i = 0; i < r.partitions.size(); ++i) {
        SetError(response->mutable_partitions(static_cast<int>(i)), r.partitions[i]);
      }
    } else if constexpr (requires(Response * m) { m->mutable_offsets(0); }) {
      RILL_ASSERT(r.partitions.size() == static_cast<size_t>(response->offsets_size()),
                  "%zu partition outcomes for %d offsets", r.partitions.size(),
                  response->offsets_size());
      for (size_t i = 0; i < r.partitions.size(); ++i) {
        SetError(response->mutable_offsets(static_cast<int>(i)), r.partitions[i]);
      }
    }
    reactor->Finish(grpc::Status::OK);
  };
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
  const auto start = Clock::now();
  auto* reactor = context->DefaultReactor();
  if (request->client_host().empty()) {
    // As Kafka does: a member that does not name its host is shown with its connection's address.
    v1::GroupHeartbeatRequest named = *request;
    named.set_client_host(PeerHost(context->peer()));
    coordinator_->Heartbeat(named, response,
                            Finish(reactor, response, metrics_, Api::kGroupHeartbeat, start));
    return reactor;
  }
  coordinator_->Heartbeat(*request, response,
                          Finish(reactor, response, metrics_, Api::kGroupHeartbeat, start));
  return reactor;
}

grpc::ServerUnaryReactor* GroupsService::CommitOffsets(grpc::CallbackServerContext* context,
                                                       const v1::CommitOffsetsRequest* request,
                                                       v1::CommitOffsetsResponse* response) {
  const auto start = Clock::now();
  auto* reactor = context->DefaultReactor();
  coordinator_->CommitOffsets(*request, response,
                              Finish(reactor, response, metrics_, Api::kCommitOffsets, start));
  return reactor;
}

grpc::ServerUnaryReactor* GroupsService::FetchOffsets(grpc::CallbackServerContext* context,
                                                      const v1::FetchOffsetsRequest* request,
                                                      v1::FetchOffsetsResponse* response) {
  const auto start = Clock::now();
  auto* reactor = context->DefaultReactor();
  const groups::GroupStatus st = coordinator_->FetchOffsets(*request, response);
  SetError(response, st);
  metrics_->RecordRequest(Api::kFetchOffsets, start, !st.ok());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* GroupsService::ListGroups(grpc::CallbackServerContext* context,
                                                    const v1::ListGroupsRequest*,
                                                    v1::ListGroupsResponse* response) {
  const auto start = Clock::now();
  auto* reactor = context->DefaultReactor();
  coordinator_->ListGroups(response);
  metrics_->RecordRequest(Api::kListGroups, start, false);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* GroupsService::DescribeGroup(grpc::CallbackServerContext* context,
                                                       const v1::DescribeGroupRequest* request,
                                                       v1::DescribeGroupResponse* response) {
  const auto start = Clock::now();
  auto* reactor = context->DefaultReactor();
  const groups::GroupStatus st = coordinator_->DescribeGroup(*request, response);
  SetError(response, st);
  metrics_->RecordRequest(Api::kDescribeGroup, start, !st.ok());
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* GroupsService::ResetOffsets(grpc::CallbackServerContext* context,
                                                      const v1::ResetOffsetsRequest* request,
                                                      v1::ResetOffsetsResponse* response) {
  const auto start = Clock::now();
  auto* reactor = context->DefaultReactor();
  coordinator_->ResetOffsets(*request, response,
                             Finish(reactor, response, metrics_, Api::kResetOffsets, start));
  return reactor;
}

grpc::ServerUnaryReactor* GroupsService::DeleteGroup(grpc::CallbackServerContext* context,
                                                     const v1::DeleteGroupRequest* request,
                                                     v1::DeleteGroupResponse* response) {
  const auto start = Clock::now();
  auto* reactor = context->DefaultReactor();
  coordinator_->DeleteGroup(*request,
                            Finish(reactor, response, metrics_, Api::kDeleteGroup, start));
  return reactor;
}

}  // namespace rill::broker
