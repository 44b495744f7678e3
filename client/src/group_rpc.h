#pragma once

// GroupRpc: calls to a consumer group's coordinator (Groups.GroupHeartbeat, CommitOffsets,
// FetchOffsets). The coordinator of group G is the leader of partition crc32c(G) mod N of
// `__consumer_offsets`; it starts as a live broker (MetadataCache::LiveAddress) and
// FindCoordinator() looks it up again through Metadata, asked of any live broker (after
// NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE or a transport failure; a coordinator that could not
// be reached is reported to the MetadataCache, which then asks other brokers first).
//
// Thread-safety: every method may be called from any thread.

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "metadata_cache.h"
#include "rill/proto/status.h"
#include "rill/v1/groups.grpc.pb.h"

namespace rill::client::internal {

// Lets another thread cancel a heartbeat in flight (Close).
class RpcCanceller {
 public:
  // Cancels the call in flight and every later one.
  void Cancel();
  // False (and nothing registered) once Cancel() was called.
  bool Register(grpc::ClientContext* ctx);
  void Unregister();

 private:
  std::mutex mu_;
  grpc::ClientContext* ctx_ = nullptr;
  bool cancelled_ = false;
};

class GroupRpc {
 public:
  GroupRpc(MetadataCache* meta, std::string group_id, int32_t timeout_ms);

  // Transport failures come back as a Status; coordinator errors are in the response's `error`.
  // `canceller` (may be null) can cancel the call from another thread.
  Result<v1::GroupHeartbeatResponse> Heartbeat(const v1::GroupHeartbeatRequest& request,
                                               int32_t timeout_ms,
                                               RpcCanceller* canceller = nullptr);
  Result<v1::CommitOffsetsResponse> Commit(const v1::CommitOffsetsRequest& request);
  Result<v1::FetchOffsetsResponse> FetchOffsets(const v1::FetchOffsetsRequest& request);

  // Looks the coordinator up again (falls back to a live broker when metadata names none).
  void FindCoordinator();
  std::string address() const;

 private:
  std::shared_ptr<v1::Groups::Stub> stub() const;
  // The Status of a failed call to the coordinator; reports a connection failure to meta_.
  Status Failed(const grpc::Status& status, std::string_view what);

  MetadataCache* const meta_;
  const std::string group_id_;
  const int32_t timeout_ms_;
  mutable std::mutex mu_;
  std::string address_;                     // guarded by mu_
  std::shared_ptr<v1::Groups::Stub> stub_;  // guarded by mu_
};

}  // namespace rill::client::internal
