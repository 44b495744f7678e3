#include "group_rpc.h"

#include "grpc_util.h"
#include "rill/proto/crc32c.h"

namespace rill::client::internal {

GroupRpc::GroupRpc(MetadataCache* meta, std::string group_id, int32_t timeout_ms)
    : meta_(meta),
      group_id_(std::move(group_id)),
      timeout_ms_(timeout_ms),
      address_(meta->LiveAddress()),
      stub_(v1::Groups::NewStub(MakeChannel(address_))) {}

std::shared_ptr<v1::Groups::Stub> GroupRpc::stub() const {
  std::lock_guard lk(mu_);
  return stub_;
}

std::string GroupRpc::address() const {
  std::lock_guard lk(mu_);
  return address_;
}

void GroupRpc::FindCoordinator() {
  std::string address;
  static const std::string kOffsets = "__consumer_offsets";
  auto r = meta_->Refresh({kOffsets});
  if (r.ok()) {
    const int32_t n = meta_->PartitionCount(kOffsets);
    if (n > 0) {
      const uint32_t h = crc32c::Value(group_id_) & 0x7fffffffu;
      const int32_t leader =
          meta_->LeaderOf({kOffsets, static_cast<int32_t>(h % static_cast<uint32_t>(n))});
      if (leader >= 0) address = meta_->AddressOf(leader);
    }
  }
  // No leader known (no metadata, the topic not created yet, an election under way): the
  // active controller, the broker that creates __consumer_offsets on a group's first request
  // (another answers COORDINATOR_NOT_AVAILABLE until someone asks the controller); else a live
  // broker. Either answers NOT_COORDINATOR or COORDINATOR_NOT_AVAILABLE if it is not the one.
  if (address.empty()) address = meta_->ControllerAddress();
  if (address.empty()) address = meta_->LiveAddress();
  std::lock_guard lk(mu_);
  if (address != address_) {
    address_ = address;
    stub_ = v1::Groups::NewStub(MakeChannel(address_));
  }
}

Status GroupRpc::Failed(const grpc::Status& status, std::string_view what) {
  const std::string at = address();
  // A coordinator that cannot be reached is likely dead: the lookup that follows asks another
  // broker, and the cache forgets what it led.
  if (IsConnectionFailure(status)) meta_->ReportUnreachable(at);
  return FromGrpc(status, what, at);
}

void RpcCanceller::Cancel() {
  std::lock_guard lk(mu_);
  cancelled_ = true;
  if (ctx_ != nullptr) ctx_->TryCancel();
}

bool RpcCanceller::Register(grpc::ClientContext* ctx) {
  std::lock_guard lk(mu_);
  if (cancelled_) return false;
  ctx_ = ctx;
  return true;
}

void RpcCanceller::Unregister() {
  std::lock_guard lk(mu_);
  ctx_ = nullptr;
}

Result<v1::GroupHeartbeatResponse> GroupRpc::Heartbeat(const v1::GroupHeartbeatRequest& request,
                                                       int32_t timeout_ms,
                                                       RpcCanceller* canceller) {
  auto s = stub();
  v1::GroupHeartbeatResponse resp;
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout_ms);
  if (canceller != nullptr && !canceller->Register(&ctx)) {
    return Status::Failed("heartbeat cancelled: the consumer is closing");
  }
  grpc::Status st = s->GroupHeartbeat(&ctx, request, &resp);
  if (canceller != nullptr) canceller->Unregister();
  if (!st.ok()) return Failed(st, "Groups.GroupHeartbeat");
  return resp;
}

Result<v1::CommitOffsetsResponse> GroupRpc::Commit(const v1::CommitOffsetsRequest& request) {
  auto s = stub();
  v1::CommitOffsetsResponse resp;
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout_ms_);
  grpc::Status st = s->CommitOffsets(&ctx, request, &resp);
  if (!st.ok()) return Failed(st, "Groups.CommitOffsets");
  return resp;
}

Result<v1::FetchOffsetsResponse> GroupRpc::FetchOffsets(const v1::FetchOffsetsRequest& request) {
  auto s = stub();
  v1::FetchOffsetsResponse resp;
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout_ms_);
  grpc::Status st = s->FetchOffsets(&ctx, request, &resp);
  if (!st.ok()) return Failed(st, "Groups.FetchOffsets");
  return resp;
}

}  // namespace rill::client::internal
