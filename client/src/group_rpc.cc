#include "group_rpc.h"

#include "grpc_util.h"
#include "rill/proto/crc32c.h"

namespace rill::client::internal {

GroupRpc::GroupRpc(MetadataCache* meta, std::string group_id, int32_t timeout_ms)
    : meta_(meta),
      group_id_(std::move(group_id)),
      timeout_ms_(timeout_ms),
      address_(meta->bootstrap()),
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
  std::string address = meta_->bootstrap();
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
  std::lock_guard lk(mu_);
  if (address != address_) {
    address_ = address;
    stub_ = v1::Groups::NewStub(MakeChannel(address_));
  }
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
  if (!st.ok()) return FromGrpc(st, "Groups.GroupHeartbeat", address());
  return resp;
}

Result<v1::CommitOffsetsResponse> GroupRpc::Commit(const v1::CommitOffsetsRequest& request) {
  auto s = stub();
  v1::CommitOffsetsResponse resp;
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout_ms_);
  grpc::Status st = s->CommitOffsets(&ctx, request, &resp);
  if (!st.ok()) return FromGrpc(st, "Groups.CommitOffsets", address());
  return resp;
}

Result<v1::FetchOffsetsResponse> GroupRpc::FetchOffsets(const v1::FetchOffsetsRequest& request) {
  auto s = stub();
  v1::FetchOffsetsResponse resp;
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout_ms_);
  grpc::Status st = s->FetchOffsets(&ctx, request, &resp);
  if (!st.ok()) return FromGrpc(st, "Groups.FetchOffsets", address());
  return resp;
}

}  // namespace rill::client::internal
